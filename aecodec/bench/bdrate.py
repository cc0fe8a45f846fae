"""Bjøntegaard-delta rate between two RD curves, with the `bjontegaard` package (akima).

    anchor (bpp[], quality[]), test (bpp[], quality[])
        ─clean─>  finite points, bpp > 0, sorted by quality, one point per quality value
        ─overlap─> quality interval both curves cover (the package integrates over it)
        ─bjontegaard.bd_rate(anchor, test, method="akima")─> percent

BD-rate is the average rate difference of test vs anchor at equal quality: negative means the
test codec needs fewer bits. The quality axis is PSNR-RGB (dB) or MS-SSIM in dB
(-10·log10(1 - ms-ssim)). Curves that cannot be compared give None and a reason, never an error.
"""

from __future__ import annotations

import math
import warnings

from aecodec.bench.metrics import ms_ssim_db

METHOD = "akima"
MIN_OVERLAP_WARNING = 0.75  # the package's own threshold for "insufficient overlap"


def _clean_points(rates, qualities) -> list[tuple[float, float]]:
    """(rate, quality) pairs that are finite with rate > 0, sorted by quality, duplicates of a quality dropped
    (the lower rate kept): the interpolation needs strictly increasing quality values."""
    points = sorted(
        (float(r), float(q))
        for r, q in zip(rates, qualities)
        if r is not None and q is not None and math.isfinite(r) and math.isfinite(q) and r > 0
    )
    by_quality: dict[float, float] = {}
    for rate, quality in points:
        by_quality.setdefault(quality, rate)  # points are in rate order: first seen is the lowest rate
    return sorted(((rate, quality) for quality, rate in by_quality.items()), key=lambda p: p[1])


def bd_rate(anchor_rates, anchor_qualities, test_rates, test_qualities, method: str = METHOD) -> dict:
    """BD-rate in percent of test vs anchor: {"bd_rate_percent", "overlap", "reason", "warning", points used}.

    bd_rate_percent is None (and reason says why) when a curve has fewer than 2 usable points or
    the curves share no quality range.
    """
    import bjontegaard

    anchor = _clean_points(anchor_rates, anchor_qualities)
    test = _clean_points(test_rates, test_qualities)
    result = {"bd_rate_percent": None, "method": method, "overlap": None, "reason": None, "warning": None,
              "anchor_points": len(anchor), "test_points": len(test)}
    if len(anchor) < 2 or len(test) < 2:
        result["reason"] = f"need at least 2 usable points per curve (anchor {len(anchor)}, test {len(test)})"
        return result
    a_lo, a_hi = anchor[0][1], anchor[-1][1]
    t_lo, t_hi = test[0][1], test[-1][1]
    overlap_lo, overlap_hi = max(a_lo, t_lo), min(a_hi, t_hi)
    overlap = max(overlap_hi - overlap_lo, 0.0) / (max(a_hi, t_hi) - min(a_lo, t_lo))
    result["overlap"] = overlap
    result["quality_range"] = [overlap_lo, overlap_hi] if overlap > 0 else None
    if overlap <= 0:
        result["reason"] = (f"curves do not overlap in quality (anchor {a_lo:.4g}..{a_hi:.4g}, "
                            f"test {t_lo:.4g}..{t_hi:.4g})")
        return result
    if overlap < MIN_OVERLAP_WARNING:
        result["warning"] = f"curves overlap over only {overlap:.0%} of their joint quality range"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # overlap is reported above
        value = bjontegaard.bd_rate(
            [r for r, _ in anchor], [q for _, q in anchor], [r for r, _ in test], [q for _, q in test],
            method=method, require_matching_points=False, min_overlap=0,
        )
    value = float(value)
    if not math.isfinite(value):
        result["reason"] = "the bjontegaard package returned a non-finite value"
        return result
    result["bd_rate_percent"] = value
    return result


def compare_curves(anchor_results: dict, test_results: dict) -> dict:
    """BD-rates of test vs anchor on PSNR-RGB and on MS-SSIM (dB), from CompressAI-schema "results" dicts."""
    return {
        "psnr-rgb": bd_rate(anchor_results["bpp"], anchor_results["psnr-rgb"],
                            test_results["bpp"], test_results["psnr-rgb"]),
        "ms-ssim-db": bd_rate(anchor_results["bpp"], [ms_ssim_db(v) for v in anchor_results["ms-ssim"]],
                              test_results["bpp"], [ms_ssim_db(v) for v in test_results["ms-ssim"]]),
    }
