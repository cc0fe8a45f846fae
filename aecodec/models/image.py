"""Image autoencoder: a mean-scale hyperprior with per-quality gain vectors.

One network serves every quality level. Each level ``q`` owns a channel-wise
gain vector that scales the latent before quantization (a finer or coarser
grid) and an inverse gain applied after, as in Cui et al., "Asymmetric Gained
Deep Image Compression with Continuous Rate Adaptation" (CVPR 2021)::

    x ──g_a──> y ──×gain[q]──> y_q ──h_a──> z ──round──> ẑ ──h_s──> (μ, σ)
    y_q ──round(·-μ)+μ──> ŷ_q ──×inv_gain[q]──> ŷ ──g_s──> x̂

Rates come from CompressAI's EntropyBottleneck (for z, factorized) and
GaussianConditional (for y_q given μ, σ). Fractional qualities interpolate the
gains geometrically between neighbouring levels.

The model knows nothing about files or entropy coding: it turns pixels into
integer symbols plus table indexes and back. The codec layer codes them.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from compressai.entropy_models import EntropyBottleneck, GaussianConditional
from compressai.layers import GDN
from compressai.models.utils import update_registered_buffers
from torch import Tensor, nn

# CompressAI's MSE lambdas (loss = λ·255²·MSE + bpp) for its 8 quality levels.
IMAGE_LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483, 0.0932, 0.1800)

# Scale table of the GaussianConditional: CompressAI's 64 log-spaced scales.
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64

# Each side of an image is padded to a multiple of this (four stride-2 layers
# in g_a and two more in h_a).
IMAGE_ALIGN = 64


def scale_table() -> Tensor:
    return torch.exp(torch.linspace(math.log(SCALES_MIN), math.log(SCALES_MAX), SCALES_LEVELS))


def _conv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


def _deconv(cin: int, cout: int, k: int = 5, stride: int = 2) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, k, stride=stride, output_padding=stride - 1, padding=k // 2)


class GainedMeanScaleHyperprior(nn.Module):
    """Variable-rate mean-scale hyperprior (see module docstring for the data flow).

    Args:
        N: channels of the hidden layers (and of z).
        M: channels of the latent y.
        levels: number of quality levels (one gain vector each).
        precision: bits of the quantized CDF tables used by the range coder.
    """

    def __init__(self, N: int = 96, M: int = 160, levels: int = len(IMAGE_LAMBDAS), precision: int = 16):
        super().__init__()
        self.N, self.M, self.levels = N, M, levels
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
        # Gains start log-spaced so that higher levels begin with a finer grid.
        init = torch.logspace(-1.0, 1.0, levels, base=2.0)[:, None].repeat(1, M)
        self.gain = nn.Parameter(init.clone())
        self.inv_gain = nn.Parameter((1.0 / init).clone())
        self.entropy_bottleneck = EntropyBottleneck(N, entropy_coder_precision=precision)
        self.gaussian_conditional = GaussianConditional(None, entropy_coder_precision=precision)

    # ---- gains -----------------------------------------------------------------------------
    def gains(self, quality: Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain, shape [B, M, 1, 1], for 0-based fractional levels ``quality`` [B]."""
        q = quality.to(self.gain.dtype).clamp(0, self.levels - 1)
        lo = q.floor().long().clamp(max=self.levels - 2) if self.levels > 1 else q.floor().long()
        t = (q - lo.to(q.dtype))[:, None]
        hi = (lo + 1).clamp(max=self.levels - 1)

        def interp(table: Tensor) -> Tensor:
            a, b = table[lo].abs().clamp_min(1e-6), table[hi].abs().clamp_min(1e-6)
            return (a.log() * (1 - t) + b.log() * t).exp()[:, :, None, None]

        return interp(self.gain), interp(self.inv_gain)

    # ---- training ---------------------------------------------------------------------------
    def forward(self, x: Tensor, quality: Tensor, straight_through: bool = False) -> dict:
        """x in [0, 1], shape [B, 3, H, W]; quality [B] (0-based levels) -> x_hat and likelihoods.

        The rate always uses additive uniform noise. The synthesis sees the noisy
        latent too, unless ``straight_through``: then it sees the rounded latent
        (as at test time) with identity gradients. Rounding from the start stalls
        training (latents near zero all round to zero), so runs switch late.
        """
        gain, inv_gain = self.gains(quality)
        y = self.g_a(x) * gain
        z = self.h_a(y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        means, scales = self.h_s(z_hat).chunk(2, 1)
        y_noisy, y_likelihoods = self.gaussian_conditional(y, scales, means)
        if straight_through:
            y_hat = torch.round(y - means).detach() + (y - means) - (y - means).detach() + means
        else:
            y_hat = y_noisy
        x_hat = self.g_s(y_hat * inv_gain)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    # ---- coding -----------------------------------------------------------------------------
    def prepare_inference(self) -> "GainedMeanScaleHyperprior":
        """eval mode, no gradients, and channels-last weights for the analysis and synthesis
        (about 1.5× faster convolutions on CPU; coding always uses this layout, so decoded
        pixels do not depend on how the model was loaded)."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.g_a.to(memory_format=torch.channels_last)
        self.g_s.to(memory_format=torch.channels_last)
        return self

    def update_tables(self) -> None:
        """Compute the quantized CDF tables (done once at export; shipped with the weights)."""
        self.gaussian_conditional.update_scale_table(scale_table(), force=True)
        self.entropy_bottleneck.update(force=True)

    def load_state_dict(self, state_dict, strict: bool = True):  # noqa: D102 - resizes table buffers first
        self.__dict__.pop("_h_s64", None)
        update_registered_buffers(
            self.entropy_bottleneck, "entropy_bottleneck", ["_quantized_cdf", "_offset", "_cdf_length"], state_dict
        )
        update_registered_buffers(
            self.gaussian_conditional, "gaussian_conditional",
            ["_quantized_cdf", "_offset", "_cdf_length", "scale_table"], state_dict,
        )
        return super().load_state_dict(state_dict, strict=strict)

    def z_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        eb = self.entropy_bottleneck
        return _tables(eb._quantized_cdf, eb._cdf_length, eb._offset)

    def y_tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        gc = self.gaussian_conditional
        return _tables(gc._quantized_cdf, gc._cdf_length, gc._offset)

    @torch.no_grad()
    def analyze(self, x: Tensor, quality: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of IMAGE_ALIGN) -> z, y symbols and y indexes."""
        gain, _ = self.gains(torch.tensor([quality]))
        y = self.g_a(x.contiguous(memory_format=torch.channels_last)).contiguous() * gain
        z = self.h_a(y)
        z_symbols = self.z_symbols(z)
        indexes, means = self.hyper_decode(z_symbols)
        y_symbols = torch.round(y.double() - means).to(torch.int32).numpy()
        return z_symbols, y_symbols[0], indexes

    def z_symbols(self, z: Tensor) -> np.ndarray:
        medians = self.entropy_bottleneck._get_medians().detach()
        return torch.round(z - medians).to(torch.int32)[0].numpy()

    def z_indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        """EntropyBottleneck tables are per channel: index = channel number."""
        c = shape[0]
        return np.broadcast_to(np.arange(c, dtype=np.int32)[:, None, None], shape).copy()

    @torch.no_grad()
    def hyper_decode(self, z_symbols: np.ndarray) -> tuple[np.ndarray, Tensor]:
        """z symbols [N, h, w] -> y scale-table indexes [M, 4h, 4w] and means [1, M, 4h, 4w] (float64).

        Runs in float64: the decoder must recompute exactly the indexes the
        encoder used, and double precision keeps rounding differences between
        thread counts and machines far below the spacing of the scale table.
        """
        medians = self.entropy_bottleneck._get_medians().detach().double()
        z_hat = torch.from_numpy(z_symbols).double()[None] + medians
        means, scales = self._h_s_float64()(z_hat).chunk(2, 1)
        table = self.gaussian_conditional.scale_table.double()
        # index = number of table entries strictly below the scale, as in CompressAI's build_indexes
        indexes = torch.bucketize(scales[0], table[:-1], right=False).to(torch.int32)
        return indexes.numpy(), means

    def _h_s_float64(self) -> nn.Module:
        """A float64 copy of h_s, made once (kept outside the module tree and the state dict)."""
        cached = self.__dict__.get("_h_s64")
        if cached is None:
            cached = copy.deepcopy(self.h_s).double().eval()
            self.__dict__["_h_s64"] = cached
        return cached

    @torch.no_grad()
    def synthesize(self, y_symbols: np.ndarray, means: Tensor, quality: float) -> Tensor:
        """y symbols [M, H, W] + means -> x_hat [1, 3, 16H, 16W] clamped to [0, 1]."""
        _, inv_gain = self.gains(torch.tensor([quality]))
        y_hat = (torch.from_numpy(y_symbols).double()[None] + means).float() * inv_gain
        return self.g_s(y_hat.contiguous(memory_format=torch.channels_last)).contiguous().clamp_(0, 1)


def _tables(cdf: Tensor, lengths: Tensor, offsets: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(cdf.detach().cpu().numpy(), dtype=np.int32),
        np.ascontiguousarray(lengths.detach().cpu().numpy().reshape(-1), dtype=np.int32),
        np.ascontiguousarray(offsets.detach().cpu().numpy().reshape(-1), dtype=np.int32),
    )
