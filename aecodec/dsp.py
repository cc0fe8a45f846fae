"""Small signal-processing helpers shared by audio training (losses) and the benchmark (metrics).

NumPy only. The mel filterbank follows the HTK mel scale with triangular,
area-normalised ("Slaney") filters, as librosa's default does; we keep the
~20 lines here instead of pulling librosa and its dependencies into the
install for one matrix.
"""

from __future__ import annotations

import numpy as np


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """[n_mels, n_fft // 2 + 1] triangular filters, each with unit area."""
    fmax = sample_rate / 2 if fmax is None else fmax
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    lower, centre, upper = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - lower) / (centre - lower)
    down = (upper - freqs[None]) / (upper - centre)
    bank = np.maximum(0.0, np.minimum(up, down))
    bank *= (2.0 / (upper - lower))  # equal area
    return bank.astype(np.float32)


def stft_magnitude(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """|STFT| of a 1-D signal with a periodic Hann window, frames [n_frames, n_fft//2+1]."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < n_fft:
        x = np.pad(x, (0, n_fft - len(x)))
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    n = 1 + (len(x) - n_fft) // hop
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    return np.abs(np.fft.rfft(x[idx] * window, axis=1))


def log_mel_distance(ref: np.ndarray, test: np.ndarray, sample_rate: int, n_mels: int = 64) -> float:
    """Mean absolute difference of natural-log mel energies (frames of ~32 ms, hop 1/4), mono signals."""
    n_fft = 1 << int(round(np.log2(0.032 * sample_rate)))
    bank = mel_filterbank(sample_rate, n_fft, n_mels).astype(np.float64)
    n = min(len(ref), len(test))
    a = np.log(stft_magnitude(ref[:n], n_fft, n_fft // 4) ** 2 @ bank.T + 1e-5)
    b = np.log(stft_magnitude(test[:n], n_fft, n_fft // 4) ** 2 @ bank.T + 1e-5)
    return float(np.mean(np.abs(a - b)))


def si_sdr(ref: np.ndarray, test: np.ndarray) -> float:
    """Scale-invariant signal-to-distortion ratio in dB (Le Roux et al. 2019), mono signals."""
    n = min(len(ref), len(test))
    s = np.asarray(ref[:n], dtype=np.float64) - np.mean(ref[:n])
    t = np.asarray(test[:n], dtype=np.float64) - np.mean(test[:n])
    energy = np.dot(s, s)
    if energy == 0:
        return float("nan")
    target = (np.dot(t, s) / energy) * s
    noise = t - target
    return float(10 * np.log10(max(np.dot(target, target), 1e-20) / max(np.dot(noise, noise), 1e-20)))
