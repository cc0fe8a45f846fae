"""RD plot for the image benchmark: bpp vs PSNR-RGB and bpp vs MS-SSIM (dB), one line per codec.

    codec curves (CompressAI-schema dicts) + published reference curves ─plot_rd─> PNG

Drawn with matplotlib's Agg canvas. Measured codecs are solid lines with markers; published
reference curves are dashed and carry their own name (e.g. "CompressAI bmshj2018-hyperprior (published)").
"""

from __future__ import annotations

from pathlib import Path

from aecodec.bench.metrics import ms_ssim_db


def _finite_pairs(xs, ys) -> tuple[list[float], list[float]]:
    pairs = [(x, y) for x, y in zip(xs, ys) if x is not None and y is not None and abs(y) != float("inf")]
    pairs.sort()
    return [x for x, _ in pairs], [y for _, y in pairs]


def plot_rd(curves: list[dict], references: list[dict], out_path: Path, title: str) -> Path:
    """Write a two-panel RD plot to out_path; curves and references are {"name", "results": {...}} dicts."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(13, 5.5))
    FigureCanvasAgg(fig)  # Agg canvas; no pyplot, so no global backend state is touched
    ax_psnr, ax_msssim = fig.subplots(1, 2)
    for curve, style in [(c, {"marker": "o", "linestyle": "-"}) for c in curves] + [
        (r, {"marker": "", "linestyle": "--"}) for r in references
    ]:
        results = curve["results"]
        x, y = _finite_pairs(results["bpp"], results["psnr-rgb"])
        ax_psnr.plot(x, y, label=curve["name"], markersize=4, **style)
        x, y = _finite_pairs(results["bpp"], [ms_ssim_db(v) for v in results["ms-ssim"]])
        if x:
            ax_msssim.plot(x, y, label=curve["name"], markersize=4, **style)
    ax_psnr.set_ylabel("PSNR-RGB (dB)")
    ax_msssim.set_ylabel("MS-SSIM (dB) = -10·log10(1 - MS-SSIM)")
    for ax in (ax_psnr, ax_msssim):
        ax.set_xlabel("bits per pixel (file size)")
        ax.grid(True, alpha=0.4)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=120)
    return out_path
