"""The audio models' distortion: what training minimises and encode-time refinement too (torch).

    D(x̂, x) = mean over STFT sizes of (spectral convergence + log magnitude)
              + log-mel L1 on the largest size + w·|x̂ − x|   (+ DAC's multi-scale log-mel if asked)
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from aecodec.dsp import mel_filterbank


def default_fft_sizes(sample_rate: int) -> tuple[int, ...]:
    """Windows of about 16, 32 and 64 ms."""
    base = 1 << int(round(math.log2(0.016 * sample_rate)))
    return (base, 2 * base, 4 * base)



class SpectralDistortion(nn.Module):
    """Multi-resolution STFT loss (spectral convergence + log magnitude, Yamamoto et al. 2020)
    plus a log-mel L1 term on the largest resolution and a waveform L1 term."""

    def __init__(self, sample_rate: int, fft_sizes: tuple[int, ...], n_mels: int, waveform_weight: float,
                 mel_windows: tuple[int, ...] = ()):
        super().__init__()
        self.fft_sizes = tuple(fft_sizes)
        self.mel_windows = tuple(mel_windows)
        for n in sorted(set(self.fft_sizes) | set(self.mel_windows)):
            self.register_buffer(f"window_{n}", torch.hann_window(n), persistent=False)
        bank = mel_filterbank(sample_rate, max(self.fft_sizes), n_mels)
        self.register_buffer("mel", torch.from_numpy(bank), persistent=False)
        for n in self.mel_windows:  # DAC's multi-scale mel: fewer mel bands for short windows
            bands = max(8, min(n_mels * 2, n // 8))
            self.register_buffer(f"mel_{n}", torch.from_numpy(mel_filterbank(sample_rate, n, bands)), persistent=False)
        self.waveform_weight = waveform_weight

    def _mag(self, x: Tensor, n: int) -> Tensor:
        spec = torch.stft(x.reshape(-1, x.shape[-1]), n, hop_length=n // 4, window=getattr(self, f"window_{n}"),
                          return_complex=True)
        return spec.abs().clamp_min(1e-7)

    def terms(self, x_hat: Tensor, x: Tensor) -> dict[str, Tensor]:
        """The distortion's terms separately, each [B] (``forward`` is their v1 weighted sum)."""
        sc_sum = logmag = x.new_zeros(x.shape[0])
        for n in self.fft_sizes:
            a, b = self._mag(x_hat, n), self._mag(x, n)
            sc_sum = sc_sum + torch.linalg.norm(a - b, dim=(1, 2)) / torch.linalg.norm(b, dim=(1, 2)).clamp_min(1e-5)
            logmag = logmag + (a.log() - b.log()).abs().mean(dim=(1, 2))
            if n == max(self.fft_sizes):
                mel_a = torch.log(torch.einsum("mf,bft->bmt", self.mel, a.pow(2)) + 1e-5)
                mel_b = torch.log(torch.einsum("mf,bft->bmt", self.mel, b.pow(2)) + 1e-5)
                mel = (mel_a - mel_b).abs().mean(dim=(1, 2))
        out = {"sc": sc_sum / len(self.fft_sizes), "logmag": logmag / len(self.fft_sizes), "mel": mel,
               "waveform": (x_hat - x).abs().flatten(1).mean(1)}
        if self.mel_windows:
            multi = x.new_zeros(x.shape[0])
            for n in self.mel_windows:
                bank = getattr(self, f"mel_{n}")
                w = getattr(self, f"window_{n}")
                pa = torch.stft(x_hat.reshape(-1, x.shape[-1]), n, n // 4, window=w, return_complex=True).abs().pow(2)
                pb = torch.stft(x.reshape(-1, x.shape[-1]), n, n // 4, window=w, return_complex=True).abs().pow(2)
                ma = torch.log(torch.einsum("mf,bft->bmt", bank, pa) + 1e-5)
                mb = torch.log(torch.einsum("mf,bft->bmt", bank, pb) + 1e-5)
                multi = multi + (ma - mb).abs().mean(dim=(1, 2))
            out["multimel"] = multi / len(self.mel_windows)
        return out

    def forward(self, x_hat: Tensor, x: Tensor) -> Tensor:
        """[B, 1, T] pairs -> per-excerpt distortion [B] (the loss takes its mean)."""
        total = x.new_zeros(x.shape[0])
        for n in self.fft_sizes:
            a, b = self._mag(x_hat, n), self._mag(x, n)
            sc = torch.linalg.norm(a - b, dim=(1, 2)) / torch.linalg.norm(b, dim=(1, 2)).clamp_min(1e-5)
            total = total + sc + (a.log() - b.log()).abs().mean(dim=(1, 2))
            if n == max(self.fft_sizes):
                mel_a = torch.log(torch.einsum("mf,bft->bmt", self.mel, a.pow(2)) + 1e-5)
                mel_b = torch.log(torch.einsum("mf,bft->bmt", self.mel, b.pow(2)) + 1e-5)
                mel_term = (mel_a - mel_b).abs().mean(dim=(1, 2))
        waveform = (x_hat - x).abs().flatten(1).mean(1)
        return total / len(self.fft_sizes) + mel_term + self.waveform_weight * waveform
