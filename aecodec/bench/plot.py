"""RD plots: the image benchmark's bpp vs PSNR-RGB and MS-SSIM (dB), and generic rate panels for audio.

    codec curves (CompressAI-schema dicts) + published reference curves ─plot_rd─> PNG
    curves + [(metric, label), ...] ─plot_rd_panels─> PNG, kbps (log scale) vs each metric (audio)

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
    return _save(fig, title, out_path)


def plot_rd_panels(curves: list[dict], panels: list[tuple[str, str]], out_path: Path, title: str,
                   x_key: str = "kbps", x_label: str = "kbit/s (measured from file size)", log_x: bool = True) -> Path:
    """One panel per (metric key, axis label) in `panels`, rate on x; used by the audio benchmark.

    curves are {"name", "results": {x_key: [...], metric: [...]}, "style": matplotlib line options}
    dicts; points with a missing (None) or infinite value are left out of that panel.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import NullFormatter, ScalarFormatter

    fig = Figure(figsize=(6.5 * len(panels), 5.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, (key, label) in zip(axes, panels):
        for curve in curves:
            results = curve["results"]
            x, y = _finite_pairs(results.get(x_key, []), results.get(key, []))
            if x:
                style = {"marker": "o", "linestyle": "-", "markersize": 4, **curve.get("style", {})}
                ax.plot(x, y, label=curve["name"], **style)
        ax.set_ylabel(label)
        ax.set_xlabel(x_label)
        if log_x and any(line.get_xdata().size for line in ax.get_lines()):
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(ScalarFormatter())
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xticks(sorted({t for t in (3, 4.5, 6, 8, 9, 12, 16, 24, 32, 48, 64, 96)
                                  if _in_range(ax.get_xlim(), t)}) or ax.get_xticks())
        ax.grid(True, alpha=0.4, which="both")
        if ax.get_lines():
            ax.legend(fontsize=8)
    return _save(fig, title, out_path)


def _in_range(limits, value) -> bool:
    lo, hi = sorted(limits)
    return lo <= value <= hi


def _save(fig, title: str, out_path) -> Path:
    fig.suptitle(title)
    fig.tight_layout()
    out_path = Path(out_path)
    fig.savefig(out_path, dpi=120)
    return out_path
