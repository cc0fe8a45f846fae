"""Image model v7: channel-group + checkerboard context on top of a gained hyperprior.

    x ──g_a──> y ──×gain[level]──> y_q ──h_a──> z ──round──> ẑ ──h_s (float64)──> (μh, σh)
    y_q is coded in five channel groups (16, 16, 32, 64, 64 channels; He et al., ELIC, CVPR 2022),
    each in two checkerboard passes (He et al., CVPR 2021):
        group k, anchors      (row + col even): params_k = P_k(μh, σh, ŷ of groups < k)
        group k, non-anchors  (row + col odd):  params_k = P_k(μh, σh, ŷ of groups < k, ŷ_k anchors)
    ŷ_n = ŷ_q × inv_gain[level];  ŷ_n + LRP_k(μh, ŷ_n of groups ≤ k) ──g_s──> x̂
                                  (latent residual prediction, Minnen & Singh, ICIP 2020)

No serial raster context: each (group, pass) is one convolution over the whole latent,
so decoding does ten small parallel steps. The context networks see normalised latents
(× inv_gain) and predict *corrections* to the hyperprior's parameters,
``μ = μh + gain·Δμ`` and ``σ = max(σh, 0.11)·exp(Δs)``; their last layers start at zero, so a
model grown from the plain hyperprior starts out coding exactly as it did.

This module holds the transforms and the training forward; the y coding itself (the passes,
their order, LRP) is the model's y codec, ``latent_codecs.ChannelGroupCheckerboardY``, whose
parameters are the weights' ``context.*``. Every parameter the decoder needs (μ, σ → scale index)
is computed in float64 from integers and float64 values in both encoder and decoder.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from aecodec.models.hyperprior import GainedHyperprior
from aecodec.models.image import IMAGE_LAMBDAS, InferenceGDN, _conv
from aecodec.models.latent_codecs import (  # noqa: F401 - names of this model's parts, re-exported
    ChannelGroupCheckerboardY,
    GroupContext,
    anchor_mask,
    default_groups,
    group_bounds,
)

# v6's ten levels plus two higher ones for the ≥ 38.5 dB end of the curve.
CONTEXT_LAMBDAS = IMAGE_LAMBDAS + (0.36, 0.72)


def _subpixel(cin: int, cout: int) -> nn.Sequential:
    """Upsampling by 2 as a 3×3 convolution to 4·cout channels + pixel shuffle: the same
    function class as a 5×5 stride-2 transposed convolution (see ``subpixel_from_deconv``)
    but computed by the fast convolution kernels (about 3× faster on CPU than
    ``ConvTranspose2d``, forward and backward)."""
    return nn.Sequential(nn.Conv2d(cin, 4 * cout, 3, padding=1), nn.PixelShuffle(2))


def subpixel_from_deconv(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """ConvTranspose2d(k=5, stride=2, padding=2, output_padding=1) weights [cin, cout, 5, 5]
    -> the equal Conv2d(3×3, padding=1) weights [4·cout, cin, 3, 3] before PixelShuffle(2).

    out[o, 2i+a, 2j+b] = Σ x[c, i+u-1, j+v-1]·K[4o+2a+b, c, u, v] with K = W[c, o, 4-2u, 4-2v]
    for a = 0 and W[c, o, 5-2u, ...] for a = 1 (u = 0 has no tap there)."""
    cin, cout = weight.shape[:2]
    taps = {0: {0: 4, 1: 2, 2: 0}, 1: {1: 3, 2: 1}}
    k = weight.new_zeros(cout, 2, 2, cin, 3, 3)
    for a in (0, 1):
        for b in (0, 1):
            for u, p in taps[a].items():
                for v, q in taps[b].items():
                    k[:, a, b, :, u, v] = weight[:, :, p, q].t()
    return k.reshape(4 * cout, cin, 3, 3), bias.repeat_interleave(4)


class ContextHyperprior(GainedHyperprior):
    """Variable-rate image model: gained hyperprior + channel-group checkerboard context + LRP.

    Args:
        N: hidden channels of the transforms and channels of z.
        M: latent channels (the sum of ``groups``; default groups: ``default_groups(M)``).
        levels: quality levels (one gain vector each).
        inference: build without CompressAI (InferenceGDN, CodingTables); weights must be loaded.
    """

    spatial_dims = 2
    align = 64
    lambdas = CONTEXT_LAMBDAS
    Y_CODEC = "context"
    # Receptive fields in latent cells (see models.image): g_a as v6; the synthesis adds LRP's
    # two 3×3 convolutions (2 cells) to g_s's sub-pixel stack (under 2 cells).
    analysis_margin = 2
    synthesis_margin = 4
    hyper_margin = 2  # h_s as v6 (sub-pixel layers, the same reach)

    def __init__(self, N: int = 128, M: int = 192, levels: int = len(CONTEXT_LAMBDAS), precision: int = 16,
                 inference: bool = False, groups: tuple[int, ...] | None = None):
        super().__init__(N, M, levels, precision, inference)
        groups = tuple(groups) if groups is not None else default_groups(M)
        if sum(groups) != M:
            raise ValueError(f"groups {groups} must add up to M={M}")
        self.groups = tuple(groups)
        if inference:
            GDN = InferenceGDN
        else:
            from compressai.layers import GDN
        self.g_a = nn.Sequential(_conv(3, N), GDN(N), _conv(N, N), GDN(N), _conv(N, N), GDN(N), _conv(N, M))
        self.g_s = nn.Sequential(
            _subpixel(M, N), GDN(N, inverse=True), _subpixel(N, N), GDN(N, inverse=True),
            _subpixel(N, N), GDN(N, inverse=True), _subpixel(N, 3),
        )
        self.h_a = nn.Sequential(
            _conv(M, N, 3, 1), nn.LeakyReLU(inplace=True), _conv(N, N), nn.LeakyReLU(inplace=True), _conv(N, N)
        )
        self.h_s = nn.Sequential(
            _subpixel(N, M), nn.LeakyReLU(inplace=True), _subpixel(M, M * 3 // 2), nn.LeakyReLU(inplace=True),
            _conv(M * 3 // 2, M * 2, 3, 1),
        )
        self.context = ChannelGroupCheckerboardY(self.groups)

    # ---- training -----------------------------------------------------------------------------
    def forward(self, x: Tensor, level: Tensor, straight_through: bool = False) -> dict:
        """x -> x_hat and likelihoods; level [B] (0-based levels).

        Rates use additive noise; the contexts see the rounded latents (straight-through
        gradients), as the decoder will; the synthesis sees the noisy latent until
        ``straight_through``, then the rounded one."""
        out = self.entropy_forward(self._transform(self.g_a, x), level)
        y_n = out.pop("rounded_n") if straight_through else out.pop("noisy_n")
        out["x_hat"] = self._transform(self.g_s, self.context.refine(y_n, out.pop("mu_h_n")))
        return out

    def entropy_forward(self, y: Tensor, level: Tensor, rounded: bool = False) -> dict:
        """The latent codec alone: unscaled latent y (g_a's output) -> likelihoods, and the
        normalised latents the synthesis would see (noisy and rounded). Training the entropy
        model of fixed transforms needs only this (see ``train.image``, ``context_only``).
        ``rounded``: the y rate of the rounded latent (straight-through), i.e. what the coder
        will spend, instead of the noisy proxy; for training parameters of fixed latents."""
        gain, inv_gain = self.gains(level)
        y = y * gain
        z = self._transform(self.h_a, y)
        # rounded: ẑ rounded at its medians too, as the coder does (a noisy ẑ would hand the
        # context nets other hyper parameters in training than in coding)
        z_hat, z_likelihoods = self.entropy_bottleneck(z, training=False if rounded else None)
        mu_h, sigma_h = self._transform(self.h_s, z_hat).chunk(2, 1)
        y_likelihoods, noisy_n, rounded_n = self.context.likelihoods(self, y, mu_h, sigma_h, gain, inv_gain, rounded)
        return {"likelihoods": {"y": y_likelihoods, "z": z_likelihoods}, "noisy_n": noisy_n,
                "rounded_n": rounded_n, "mu_h_n": mu_h * inv_gain}

    # ---- coding (the y codec does the passes, see latent_codecs) -------------------------------
    def prepare_inference(self) -> "ContextHyperprior":
        super().prepare_inference()
        self.g_a.to(memory_format=torch.channels_last)
        self.g_s.to(memory_format=torch.channels_last)
        return self

    def y_order(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Flat indexes of y [M, h, w] in coding order (the y codec's)."""
        return self.context.order(shape)

    @torch.no_grad()
    def analyze_latent(self, x: Tensor) -> Tensor:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of 64) -> the unscaled latent y [1, M, H/16, W/16]."""
        return self.g_a(x.contiguous(memory_format=torch.channels_last)).contiguous()

    @torch.no_grad()
    def analyze(self, x: Tensor, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of 64) -> z symbols, y symbols, y indexes."""
        return self.encode_latent(self.analyze_latent(x), level)

    @torch.no_grad()
    def synthesize_input(self, latent: Tensor, level: float) -> Tensor:
        """synthesis_input (or a window of it), [ŷ_n, μh·inv_gain] -> LRP -> g_s -> x_hat
        [1, 3, 16h, 16w] clamped to [0, 1]."""
        y = self.context.to_synthesis(latent)
        return self.g_s(y.contiguous(memory_format=torch.channels_last)).contiguous().clamp_(0, 1)

    @torch.no_grad()
    def synthesize(self, y_n: Tensor, mu_h: Tensor, level: float) -> Tensor:
        """ŷ_n and μh [1, M, h, w] (float64, from the decoder's passes) -> x_hat [1, 3, 16h, 16w] clamped to [0, 1]."""
        return self.synthesize_input(self.synthesis_input(None, (y_n, mu_h), level), level)


# ---- growth from the plain hyperprior (function-preserving) -------------------------------------

CONVS = ("g_a.0", "g_a.2", "g_a.4", "g_a.6", "g_s.0", "g_s.2", "g_s.4", "g_s.6",
         "h_a.0", "h_a.2", "h_a.4", "h_s.0", "h_s.2", "h_s.4")
GDNS = ("g_a.1", "g_a.3", "g_a.5", "g_s.1", "g_s.3", "g_s.5")


def grow_from_hyperprior(old: dict, fresh: dict, order: np.ndarray | None = None) -> dict:
    """Parameters of a plain ``GainedMeanScaleHyperprior`` (N0, M0, L0 levels) written into
    ``fresh``, the state dict of a newly built ``ContextHyperprior`` (N ≥ N0, M ≥ M0, L ≥ L0),
    so that the grown model computes what the old one did.

    Every new *input* channel of a layer gets zero weights (new channels are silent
    downstream); new *output* channels keep their fresh random weights, so they receive
    gradients (new latent channels start 10× smaller: they round to zero and cost little).
    GDN: old channels ignore new ones (γ = 0 across). The hyperprior predicts mean 0 and the
    smallest scale for new latent channels. ``order`` permutes the old latent channels (most
    bits first, so the first channel groups carry most of the information). New levels
    extrapolate the last two gain vectors geometrically; new channels take each level's
    median gain. The context networks keep their init (their last layers are zero)."""
    new = {k: v.clone() for k, v in fresh.items()}
    m0, l0 = old["g_a.6.weight"].shape[0], old["gain"].shape[0]
    M, levels = new["g_a.6.weight"].shape[0], new["gain"].shape[0]
    perm = torch.as_tensor(order if order is not None else np.arange(m0), dtype=torch.long)
    for key in CONVS:
        w, b = old[key + ".weight"].clone(), old[key + ".bias"].clone()
        new_key = key
        if key.startswith(("g_s", "h_s")) and key != "h_s.4":  # transposed -> sub-pixel form
            if key == "g_s.0":
                w = w[perm]
            w, b = subpixel_from_deconv(w, b)
            new_key = key + ".0"
        elif key == "g_a.6":
            w, b = w[perm], b[perm]
        elif key == "h_a.0":
            w = w[:, perm]
        wn, bn = new[new_key + ".weight"], new[new_key + ".bias"]
        if key == "g_a.6":  # new latent channels start small: they round to zero and cost little
            wn[m0:] *= 0.1
            bn[m0:] = 0.0
        wn[:, w.shape[1]:] = 0.0  # new input channels are silent
        if key == "h_s.4":  # means then scales of the latent channels
            wn[:] = 0.0
            bn[:] = 0.0
            wn[:m0, : w.shape[1]] = w[:m0][perm]
            wn[M : M + m0, : w.shape[1]] = w[m0:][perm]
            bn[:m0], bn[M : M + m0] = b[:m0][perm], b[m0:][perm]
            continue
        # sub-pixel rows are ordered output channel first, so old outputs are a prefix
        wn[: w.shape[0], : w.shape[1]] = w
        bn[: b.shape[0]] = b
    for prefix in GDNS:
        beta, gamma = old[prefix + ".beta"], old[prefix + ".gamma"]
        n0 = beta.shape[0]
        pedestal = float(old[prefix + ".gamma_reparam.pedestal"])
        new[prefix + ".beta"][:n0] = beta
        gn = new[prefix + ".gamma"]
        gn[:n0, :] = math.sqrt(pedestal)
        gn[:, :n0] = math.sqrt(pedestal)
        gn[:n0, :n0] = gamma
    for key in ("gain", "inv_gain"):
        g = old[key].abs()[:, perm]
        rows = [g[i] for i in range(l0)]
        while len(rows) < levels:
            rows.append(rows[-1] * (rows[-1] / rows[-2]))
        g = torch.stack(rows[:levels])
        new[key] = torch.cat([g, g.median(dim=1, keepdim=True).values.expand(levels, M - m0)], 1)
    # z's per-channel densities: old channels copied; new ones copy the narrowest old density
    # and start near its median (so they cost almost nothing until they learn something)
    quantiles = old["entropy_bottleneck.quantiles"]
    n0 = quantiles.shape[0]
    narrowest = int(torch.argmin(quantiles[:, 0, 2] - quantiles[:, 0, 0]))
    for key, value in old.items():
        if key.startswith("entropy_bottleneck.") and not key.rsplit(".", 1)[-1].startswith(("_quantized", "_offset", "_cdf")):
            if value.shape[0] != n0:  # shared buffers (e.g. the likelihood bound)
                continue
            new[key][:n0] = value
            new[key][n0:] = value[narrowest]
    new["h_a.4.weight"][n0:] *= 0.01
    new["h_a.4.bias"][n0:] = quantiles[narrowest, 0, 1]
    return new


def latent_order_by_rate(old_net, images: list[Tensor], level: int) -> np.ndarray:
    """Old latent channels sorted by the bits they cost on ``images`` at ``level``, most first."""
    bits = torch.zeros(old_net.M, dtype=torch.float64)
    with torch.no_grad():
        for x in images:
            out = old_net(x, torch.tensor([float(level)]))
            bits += (-torch.log2(out["likelihoods"]["y"])).sum(dim=(0, 2, 3)).double()
    return torch.argsort(bits, descending=True).numpy()
