"""Do tile borders show? Error discontinuities across tile borders vs the model's other grid lines.

    original, decoded [H, W, 3] ─|error| averaged over channels─> e [H, W]
    jump(k) = mean over the line of |e[k] − e[k−1]|, for every row and column boundary k
    ratio(k) = jump(k) / median of all jumps (the jump between ordinary neighbouring columns)
    tile borders: k a multiple of the tile; grid lines: other multiples of 64 (the model's block)

A codec whose tiles are invisible has ratios at tile borders like those at the other grid lines.
"""

from __future__ import annotations

import numpy as np

GRID = 64  # the image models' alignment: their receptive fields repeat every 64 px


def boundary_jumps(error: np.ndarray, axis: int) -> np.ndarray:
    """error [H, W] -> jump across each boundary k = 1 .. n−1 along ``axis`` (index k−1)."""
    return np.abs(np.diff(error, axis=axis)).mean(axis=1 - axis)


def seam_ratios(original: np.ndarray, decoded: np.ndarray, tile: int) -> dict[str, list[float]]:
    """Ratios at tile borders (``tile``) and at the other 64-px grid lines, rows and columns together."""
    err = np.abs(np.asarray(original, np.float64) - np.asarray(decoded, np.float64))
    err = err.mean(axis=2) if err.ndim == 3 else err
    out: dict[str, list[float]] = {"tile_border": [], "grid": []}
    for axis in (0, 1):
        jumps = boundary_jumps(err, axis)
        ref = float(np.median(jumps)) or 1e-12
        for k in range(GRID, err.shape[axis], GRID):
            out["tile_border" if k % tile == 0 else "grid"].append(float(jumps[k - 1] / ref))
    return out


def summarize(ratios: dict[str, list[float]]) -> dict[str, float]:
    """Median and worst ratio of each kind of line."""
    return {f"{kind}_{stat}": round(float(fn(v)), 3) for kind, v in ratios.items() if v
            for stat, fn in (("median", np.median), ("max", np.max))}
