"""Image quality and rate metrics for the benchmark.

    encoded bytes, (W, H)          ─bpp─>       bits per pixel (real file size, headers included)
    original RGB, decoded RGB      ─psnr_rgb─>  dB, MAX = 255, MSE over all three channels
    original RGB, decoded RGB      ─ms_ssim─>   pytorch-msssim, data_range=255, or None if too small
    ms-ssim                        ─ms_ssim_db─> -10·log10(1 - ms-ssim)
    a call                         ─timed─>     (result, wall seconds by time.perf_counter)

Images are PIL RGB images or uint8 arrays of shape (H, W, 3).
"""

from __future__ import annotations

import math
import time

import numpy as np

# pytorch-msssim's default MS-SSIM uses 5 scales and an 11-tap window: the image is halved 4 times
# and the smallest scale must still hold the window, so both sides must exceed (11 - 1) * 2**4 = 160.
MS_SSIM_MIN_SIDE = 161


def _rgb_array(image) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"expected an 8-bit RGB image (H, W, 3) uint8, got shape {array.shape} dtype {array.dtype}")
    return array


def bpp(num_bytes: int, width: int, height: int) -> float:
    """Bits per pixel of a whole encoded file: 8 * bytes / (W * H)."""
    return 8.0 * num_bytes / (width * height)


def psnr_rgb(original, decoded) -> float:
    """PSNR in dB over the R, G and B channels of 8-bit images (MAX = 255); inf when identical."""
    a = _rgb_array(original).astype(np.float64)
    b = _rgb_array(decoded).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)


def ms_ssim_rgb(original, decoded) -> float | None:
    """MS-SSIM (pytorch-msssim defaults: 5 scales, 11-tap Gaussian window, data_range=255) on RGB.

    Returns None when a side is shorter than MS_SSIM_MIN_SIDE (161 px): the default 5-scale
    MS-SSIM is not defined there (pytorch-msssim refuses such images).
    """
    import torch
    from pytorch_msssim import ms_ssim

    a = _rgb_array(original)
    b = _rgb_array(decoded)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if min(a.shape[0], a.shape[1]) < MS_SSIM_MIN_SIDE:
        return None
    x = torch.from_numpy(a.astype(np.float32)).permute(2, 0, 1)[None]  # astype copies: a writable array
    y = torch.from_numpy(b.astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        return float(ms_ssim(x, y, data_range=255))


def ms_ssim_db(value: float | None) -> float | None:
    """MS-SSIM on a dB scale, -10·log10(1 - value); None stays None, 1.0 gives inf."""
    if value is None:
        return None
    if value >= 1.0:
        return math.inf
    return -10.0 * math.log10(1.0 - value)


def timed(function, *args, **kwargs):
    """Call function(*args, **kwargs) once; return (its result, wall seconds by time.perf_counter)."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start
