"""Audio autoencoder: a 1-D convolutional codec with a gained mean-scale hyperprior.

Mono waveforms at the model's sample rate, in [-1, 1]::

    x [B,1,T] ──conv7──> (RU×2, ELU, conv k=2s/s)×4 ──conv3──> y [B,M,T/hop]   (hop = ∏ strides)
    y ──gain[q]──> h_a (2 × stride 2) ──> z [B,N,T/(4·hop)] ──> h_s ──> (μ, σ)
    ŷ ──inv_gain──> conv7 ──> (ELU, deconv k=2s/s, RU×2)×4 ──conv7──> x̂ [B,1,T]

RU is a residual unit (ELU, dilated conv7, ELU, conv1), as in SoundStream /
EnCodec, without their LSTM and without weight norm: small and plain so that
the speech model codes many times faster than real time on one CPU core.
Gains, entropy models and the integer coding path are shared with the image
model (``hyperprior.GainedHyperprior``). Stereo is coded by the codec layer as
two mono signals (mid and side); the model only sees mono.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from aecodec.models.audio_families import AUDIO_FAMILIES
from aecodec.models.hyperprior import GainedHyperprior


class ResidualUnit(nn.Module):
    def __init__(self, channels: int, dilation: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.ELU(), nn.Conv1d(channels, channels, 7, dilation=dilation, padding=3 * dilation),
            nn.ELU(), nn.Conv1d(channels, channels, 1),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.block(x)


def _down(cin: int, cout: int, stride: int) -> nn.Conv1d:
    # kernel 2s, padding ceil(s/2): exactly T/s outputs for T a multiple of s
    return nn.Conv1d(cin, cout, 2 * stride, stride=stride, padding=(stride + 1) // 2)


def _up(cin: int, cout: int, stride: int) -> nn.ConvTranspose1d:
    # the transpose of _down: exactly L·s outputs
    return nn.ConvTranspose1d(cin, cout, 2 * stride, stride=stride, padding=(stride + 1) // 2,
                              output_padding=stride % 2)


class AudioHyperprior(GainedHyperprior):
    """Variable-rate waveform codec (see the module docstring for the data flow).

    Args:
        sample_rate: the rate the model codes at (input is resampled to it by the codec).
        strides: downsampling factor of each encoder stage; hop = their product.
        channels: channels of each encoder stage (the decoder mirrors them, ×dec_width).
        M: latent channels; N: hyper-latent channels.
        levels: quality levels (gain vectors); target_kbps: the mono bitrate each level was trained for.
        inference: build without CompressAI (see ``hyperprior.CodingTables``); weights must be loaded.
    """

    spatial_dims = 1

    def __init__(self, sample_rate: int = 16000, strides=(2, 4, 5, 8), channels=(16, 32, 64, 128), M: int = 64,
                 N: int = 64, levels: int = 3, target_kbps=(3.0, 6.0, 12.0), dec_width: float = 1.0,
                 precision: int = 16, inference: bool = False):
        super().__init__(N, M, levels, precision, inference)
        if len(strides) != len(channels) or len(target_kbps) != levels:
            raise ValueError("strides/channels and target_kbps/levels must have matching lengths")
        self.sample_rate = int(sample_rate)
        self.strides = tuple(int(s) for s in strides)
        self.hop = int(np.prod(self.strides))
        self.target_kbps = tuple(float(k) for k in target_kbps)
        enc = [nn.Conv1d(1, channels[0], 7, padding=3)]
        for i, (s, c) in enumerate(zip(self.strides, channels)):
            c_next = channels[i + 1] if i + 1 < len(channels) else 2 * c
            enc += [ResidualUnit(c, 1), ResidualUnit(c, 3), nn.ELU(), _down(c, c_next, s)]
        enc += [nn.ELU(), nn.Conv1d(2 * channels[-1], M, 3, padding=1)]
        self.g_a = nn.Sequential(*enc)
        dch = [int(round(c * dec_width)) for c in channels]
        dec = [nn.Conv1d(M, 2 * dch[-1], 7, padding=3)]
        for i in reversed(range(len(self.strides))):
            c_in = dch[i + 1] if i + 1 < len(dch) else 2 * dch[-1]
            dec += [nn.ELU(), _up(c_in, dch[i], self.strides[i]), ResidualUnit(dch[i], 1), ResidualUnit(dch[i], 3)]
        dec += [nn.ELU(), nn.Conv1d(dch[0], 1, 7, padding=3)]
        self.g_s = nn.Sequential(*dec)
        self.h_a = nn.Sequential(
            nn.Conv1d(M, N, 3, padding=1), nn.LeakyReLU(inplace=True),
            nn.Conv1d(N, N, 4, stride=2, padding=1), nn.LeakyReLU(inplace=True),
            nn.Conv1d(N, N, 4, stride=2, padding=1),
        )
        self.h_s = nn.Sequential(
            nn.ConvTranspose1d(N, N, 4, stride=2, padding=1), nn.LeakyReLU(inplace=True),
            nn.ConvTranspose1d(N, M * 3 // 2, 4, stride=2, padding=1), nn.LeakyReLU(inplace=True),
            nn.Conv1d(M * 3 // 2, 2 * M, 3, padding=1),
        )

    @property
    def align(self) -> int:
        """Coded lengths are multiples of this (the hop times the hyper-analysis' two stride-2 layers)."""
        return 4 * self.hop

    @torch.no_grad()
    def analyze(self, x: Tensor, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [1, 1, T] (T a multiple of ``align``) -> z symbols [N, T/4hop], y symbols and indexes [M, T/hop]."""
        return self.encode_latent(self.g_a(x), level)

    # Refinement's exchange rate, kbps per unit of the training distortion: of 2 and 8 measured on
    # speech (benchmarks/audio_effort.py, 60 steps), 2 saved the most bits (−14 % of y at level 1)
    # with log-mel and STOI no worse.
    REFINEMENT_LAMBDA = 2.0

    def refinement_loss(self, x: Tensor, level: float):
        """The cost refinement lowers for x [1, 1, T]: kbps + REFINEMENT_LAMBDA · the training
        distortion (the models were trained to bitrate targets, so no λ per level exists)."""
        from aecodec.models.audio_loss import SpectralDistortion, default_fft_sizes

        sr = self.sample_rate
        distortion = SpectralDistortion(sr, default_fft_sizes(sr), 64 if sr <= 24000 else 80, 5.0)  # as trained
        kbits = x.shape[-1] / self.sample_rate * 1000
        x = x.float()
        return lambda bits, x_hat: bits.sum() / kbits + self.REFINEMENT_LAMBDA * distortion(x_hat, x).mean()

    @torch.no_grad()
    def synthesize(self, y_symbols: np.ndarray, means: Tensor, level: float) -> Tensor:
        """y symbols [M, L] + means -> waveform [1, 1, L·hop] clamped to [-1, 1]."""
        return self.g_s(self.decode_latent(y_symbols, means, level)).clamp_(-1, 1)


def build_family(family: str, inference: bool = False) -> AudioHyperprior:
    try:
        return AudioHyperprior(**AUDIO_FAMILIES[family], inference=inference)
    except KeyError:
        raise ValueError(f"unknown audio family {family!r}; known: {', '.join(AUDIO_FAMILIES)}") from None
