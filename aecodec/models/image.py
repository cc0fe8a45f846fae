"""Image autoencoder: a mean-scale hyperprior with per-quality gain vectors.

One network serves every quality level (see ``hyperprior.GainedHyperprior`` for
the gains, the entropy models and the integer coding path)::

    x ──g_a (4 × conv5/2 + GDN)──> y ──gain──> h_a ──> z ──> h_s ──> (μ, σ)
    ŷ ──inv_gain──> g_s (4 × deconv5/2 + IGDN) ──> x̂

The architecture is CompressAI's mean-scale hyperprior (Minnen et al. 2018)
without the autoregressive context, which would serialize decoding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from aecodec.models.hyperprior import GainedHyperprior, scale_table  # noqa: F401 - scale_table re-exported

# Rate–distortion trade-off per quality level (loss = λ·255²·MSE + bpp): CompressAI's
# eight MSE lambdas, preceded by two lower ones (each half the next) so that the
# levels reach down to ~0.1 bpp on Kodak.
IMAGE_LAMBDAS = (0.00045, 0.0009, 0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)

# Each side of an image is padded to a multiple of this (four stride-2 layers
# in g_a and two more in h_a).
IMAGE_ALIGN = 64


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, output_padding=stride - 1, padding=k // 2)


class _Bound(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("bound", torch.zeros(1))


class _NonNegative(nn.Module):
    """Inference form of CompressAI's NonNegativeParametrizer: max(x, bound)² − pedestal."""

    def __init__(self):
        super().__init__()
        self.register_buffer("pedestal", torch.zeros(1))
        self.lower_bound = _Bound()

    def forward(self, x: Tensor) -> Tensor:
        return torch.max(x, self.lower_bound.bound) ** 2 - self.pedestal


class InferenceGDN(nn.Module):
    """CompressAI's GDN / inverse GDN for inference, without importing CompressAI.

    Same parameters and state-dict keys as ``compressai.layers.GDN`` and the same
    operations in the same order (so the same floats): y = x · (β + γ·x²)^(∓½).
    The codec loads shipped weights into this form; training uses CompressAI's
    layer (with its gradient-friendly bounds). Avoiding the CompressAI import
    saves ~10 s of start-up and ~300 MB per process (it pulls torchvision and
    torch_geometric)."""

    def __init__(self, channels: int, inverse: bool = False):
        super().__init__()
        self.inverse = inverse
        self.beta = nn.Parameter(torch.ones(channels))
        self.gamma = nn.Parameter(torch.zeros(channels, channels))
        self.beta_reparam = _NonNegative()
        self.gamma_reparam = _NonNegative()

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(c, c, 1, 1)
        norm = F.conv2d(x**2, gamma, beta)
        norm = torch.sqrt(norm) if self.inverse else torch.rsqrt(norm)
        return x * norm


class GainedMeanScaleHyperprior(GainedHyperprior):
    """Variable-rate mean-scale hyperprior for RGB images.

    Args:
        N: channels of the hidden layers (and of z).
        M: channels of the latent y.
        levels: number of quality levels (one gain vector each).
        precision: bits of the quantized CDF tables used by the range coder.
        inference: build without CompressAI (InferenceGDN, CodingTables); weights must be loaded.
    """

    spatial_dims = 2
    align = IMAGE_ALIGN
    lambdas = IMAGE_LAMBDAS
    # Receptive fields in latent cells (16 px): an output pixel of g_s depends on the latent
    # cells within 30 px of it, a latent cell of g_a on the pixels within 30 px of it. A
    # window that extends a region by this many cells computes the region as the whole
    # image would (see aecodec/image.py, overlapped tiles).
    analysis_margin = 2
    synthesis_margin = 2
    # h_s: a y cell's (μh, σh) depend on the ẑ cells (64 px) within 1.75 cells of it; tiles that
    # share ẑ compute theirs from a window this much wider (SPEC §6.3)
    hyper_margin = 2

    def __init__(self, N: int = 96, M: int = 160, levels: int = len(IMAGE_LAMBDAS), precision: int = 16,
                 inference: bool = False):
        super().__init__(N, M, levels, precision, inference)
        if inference:
            GDN = InferenceGDN
        else:
            from compressai.layers import GDN
        self.g_a = nn.Sequential(
            _conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M)
        )
        self.g_s = nn.Sequential(
            _deconv(M, N), GDN(N, inverse=True), _deconv(N, N), GDN(N, inverse=True),
            _deconv(N, N), GDN(N, inverse=True), _deconv(N, 3),
        )
        self.h_a = nn.Sequential(
            _conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), _conv(N, N), nn.LeakyReLU(inplace=True), _conv(N, N)
        )
        self.h_s = nn.Sequential(
            _deconv(N, M), nn.LeakyReLU(inplace=True), _deconv(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            _conv(M * 3 // 2, M * 2, 3, 1),
        )

    def prepare_inference(self) -> "GainedMeanScaleHyperprior":
        """eval mode, no gradients, and channels-last weights for the analysis and synthesis
        (about 1.5× faster convolutions on CPU; coding always uses this layout, so decoded
        pixels do not depend on how the model was loaded)."""
        super().prepare_inference()
        self.g_a.to(memory_format=torch.channels_last)
        self.g_s.to(memory_format=torch.channels_last)
        return self

    @torch.no_grad()
    def analyze_latent(self, x: Tensor) -> Tensor:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of IMAGE_ALIGN) -> the unscaled latent y [1, M, H/16, W/16]."""
        return self.g_a(x.contiguous(memory_format=torch.channels_last)).contiguous()

    @torch.no_grad()
    def analyze(self, x: Tensor, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of IMAGE_ALIGN) -> z, y symbols and y indexes."""
        return self.encode_latent(self.analyze_latent(x), level)

    @torch.no_grad()
    def synthesize_input(self, latent: Tensor, level: float) -> Tensor:
        """synthesis_input (or a window of it) [1, M, h, w] -> x_hat [1, 3, 16h, 16w] clamped to [0, 1]."""
        return self.g_s(latent.contiguous(memory_format=torch.channels_last)).contiguous().clamp_(0, 1)

    @torch.no_grad()
    def synthesize(self, y_symbols: np.ndarray, means: Tensor, level: float) -> Tensor:
        """y symbols [M, H, W] + means -> x_hat [1, 3, 16H, 16W] clamped to [0, 1]."""
        return self.synthesize_input(self.synthesis_input(y_symbols, means, level), level)
