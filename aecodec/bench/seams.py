"""Do tile borders show? Error discontinuities across tile borders vs the model's other grid lines.

    original, decoded [H, W, 3] ─|error| averaged over channels─> e [H, W]
    jump(k) = mean over the line of |e[k] − e[k−1]|, for every row and column boundary k
    ratio(k) = jump(k) / median of all jumps (the jump between ordinary neighbouring columns)
    tile borders: k a multiple of the tile; grid lines: other multiples of 64 (the model's block)

A codec whose tiles are invisible has ratios at tile borders like those at the other grid lines,
and like those of ``whole_image_decode`` (the same model coding the image in one piece, no tiles:
what the content alone gives at those lines).
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


def whole_image_decode(loaded, image: np.ndarray, quality: float) -> np.ndarray:
    """RGB uint8 [H, W, 3] -> what the model decodes when it codes the image in one piece (no tiles,
    no file: the symbols go straight from quantize to the decoder's y codec). Memory grows with
    the image (about 1 GB per 4 MP): a reference for benchmarks, not a codec path."""
    import torch

    from aecodec import image as image_api

    net, level = loaded.net, quality - 1
    rgb = image_api._pad(image, image_api.IMAGE_ALIGN)
    with torch.no_grad():
        x = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)[None].float() / 255
        z, y_sym, _ = net.encode_latent(net.analyze_latent(x), level)
        coded = y_sym.reshape(-1)[net.y_coding_order(y_sym.shape)]  # the stream's order
        pos = [0]

        def read(indexes: np.ndarray) -> np.ndarray:  # as the range decoder hands them out
            n = indexes.size
            pos[0] += n
            return coded[pos[0] - n : pos[0]].reshape(indexes.shape)

        y_sym, state = net.decode_y_symbols(z, level, read)
        latent = net.synthesis_input(y_sym, state, level)
    return image_api._synthesize(net, latent, level)[: image.shape[0], : image.shape[1]]
