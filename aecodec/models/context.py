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

Every parameter the decoder needs (μ, σ → scale index) is computed in float64 from
integers and float64 values in both encoder and decoder (see ``hyperprior.hyper_decode``).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn

from aecodec.models.hyperprior import SCALES_MIN, GainedHyperprior, gaussian_bits
from aecodec.models.image import IMAGE_LAMBDAS, InferenceGDN, _conv

# v6's ten levels plus two higher ones for the ≥ 38.5 dB end of the curve.
CONTEXT_LAMBDAS = IMAGE_LAMBDAS + (0.36, 0.72)
def default_groups(M: int) -> tuple[int, ...]:
    """ELIC's uneven split, 1/12, 1/12, 1/6, 1/3, 1/3 of the channels (16, 16, 32, 64, 64 for M = 192)."""
    if M % 12:
        raise ValueError(f"M={M} must be a multiple of 12 for the default channel groups")
    return (M // 12, M // 12, M // 6, M // 3, M // 3)
LRP_HIDDEN = 64
CTX_HIDDEN = 64


def group_bounds(groups: tuple[int, ...]) -> list[tuple[int, int]]:
    out, s = [], 0
    for c in groups:
        out.append((s, s + c))
        s += c
    return out


def anchor_mask(h: int, w: int) -> np.ndarray:
    """True where row + col is even: the first pass of every group."""
    return (np.add.outer(np.arange(h), np.arange(w)) % 2) == 0


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


def _zero_last(seq: nn.Sequential) -> nn.Sequential:
    nn.init.zeros_(seq[-1].weight)
    nn.init.zeros_(seq[-1].bias)
    return seq


class GroupContext(nn.Module):
    """The networks of one channel group: channel context, checkerboard context,
    parameter aggregation and latent residual prediction."""

    def __init__(self, start: int, channels: int):
        super().__init__()
        c = channels
        self.start, self.channels = start, c
        # ŷ of the groups before this one -> features (absent for the first group)
        self.channel = (
            nn.Sequential(nn.Conv2d(start, CTX_HIDDEN, 3, padding=1), nn.ReLU(inplace=True),
                          nn.Conv2d(CTX_HIDDEN, 2 * c, 3, padding=1))
            if start else None
        )
        # anchors of this group -> features at the non-anchors (the input is zero at non-anchors)
        self.spatial = nn.Conv2d(c, 2 * c, 5, padding=2)
        n_in = 2 * c + (2 * c if start else 0) + 2 * c
        self.aggregate = _zero_last(nn.Sequential(
            nn.Conv2d(n_in, 3 * c, 1), nn.ReLU(inplace=True), nn.Conv2d(3 * c, 3 * c, 1), nn.ReLU(inplace=True),
            nn.Conv2d(3 * c, 2 * c, 1),
        ))
        self.lrp = _zero_last(nn.Sequential(
            nn.Conv2d(c + start + c, LRP_HIDDEN, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(LRP_HIDDEN, c, 3, padding=1),
        ))

    def features(self, hyper_n: Tensor, prev_n: Tensor | None) -> Tensor:
        """What both passes share: normalised hyper parameters and the channel context."""
        if self.channel is None:
            return hyper_n
        return torch.cat([hyper_n, self.channel(prev_n)], 1)

    def params(self, shared: Tensor, spatial_in: Tensor | None) -> tuple[Tensor, Tensor]:
        """(Δμ, Δs) from the shared features and the masked anchors (None: the anchor pass)."""
        if spatial_in is None:
            sp = shared.new_zeros(shared.shape[0], 2 * self.channels, *shared.shape[2:])
        else:
            sp = self.spatial(spatial_in)
        return self.aggregate(torch.cat([shared, sp], 1)).chunk(2, 1)

    def residual(self, mu_h_n: Tensor, upto_n: Tensor) -> Tensor:
        """Latent residual prediction for this group's channels (bounded to ±0.5)."""
        return 0.5 * torch.tanh(self.lrp(torch.cat([mu_h_n, upto_n], 1)))


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
    # Receptive fields in latent cells (see models.image): g_a as v6; the synthesis adds LRP's
    # two 3×3 convolutions (2 cells) to g_s's sub-pixel stack (under 2 cells).
    analysis_margin = 2
    synthesis_margin = 4

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
        self.context = nn.ModuleList(GroupContext(s, e - s) for s, e in group_bounds(self.groups))

    # ---- shared pieces ------------------------------------------------------------------------
    @staticmethod
    def _hyper_n(mu_h: Tensor, sigma_h: Tensor, inv_gain: Tensor) -> Tensor:
        return torch.cat([mu_h * inv_gain, torch.log(sigma_h.clamp_min(SCALES_MIN) * inv_gain)], 1)

    @staticmethod
    def _corrected(mu_h: Tensor, sigma_h: Tensor, d_mu: Tensor, d_s: Tensor, gain: Tensor) -> tuple[Tensor, Tensor]:
        return mu_h + d_mu * gain, sigma_h.clamp_min(SCALES_MIN) * torch.exp(d_s.clamp(-8.0, 8.0))

    # ---- training -----------------------------------------------------------------------------
    def forward(self, x: Tensor, level: Tensor, straight_through: bool = False) -> dict:
        """x -> x_hat and likelihoods; level [B] (0-based levels).

        Rates use additive noise; the contexts see the rounded latents (straight-through
        gradients), as the decoder will; the synthesis sees the noisy latent until
        ``straight_through``, then the rounded one."""
        out = self.entropy_forward(self._transform(self.g_a, x), level)
        y_n = out.pop("rounded_n") if straight_through else out.pop("noisy_n")
        out["x_hat"] = self._transform(self.g_s, self._refine(y_n, out.pop("mu_h_n")))
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
        mask = torch.from_numpy(anchor_mask(*y.shape[2:])).to(y.device)
        mus, sigmas, rounded_n = [], [], []
        for (s, e), ctx in zip(group_bounds(self.groups), self.context):
            g, ig = gain[:, s:e], inv_gain[:, s:e]
            shared = ctx.features(self._hyper_n(mu_h[:, s:e], sigma_h[:, s:e], ig),
                                  torch.cat(rounded_n, 1) if s else None)
            mu_a, sig_a = self._corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, None), g)
            anchors_n = (_round_ste(y[:, s:e] - mu_a) + mu_a) * ig * mask
            mu_n, sig_n = self._corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, anchors_n), g)
            mu, sigma = torch.where(mask, mu_a, mu_n), torch.where(mask, sig_a, sig_n)
            rounded_n.append((_round_ste(y[:, s:e] - mu) + mu) * ig)
            mus.append(mu)
            sigmas.append(sigma)
        mu, sigma = torch.cat(mus, 1), torch.cat(sigmas, 1)
        rounded_n = torch.cat(rounded_n, 1)
        gc = self.gaussian_conditional
        if rounded:
            y_likelihoods = gc._likelihood(_round_ste(y - mu) + mu, sigma, mu)
            if gc.use_likelihood_bound:
                y_likelihoods = gc.likelihood_lower_bound(y_likelihoods)
            noisy_n = rounded_n
        else:
            y_noisy, y_likelihoods = gc(y, sigma, mu)
            noisy_n = y_noisy * inv_gain
        return {"likelihoods": {"y": y_likelihoods, "z": z_likelihoods}, "noisy_n": noisy_n,
                "rounded_n": rounded_n, "mu_h_n": mu_h * inv_gain}

    def _refine(self, y_n: Tensor, mu_h_n: Tensor) -> Tensor:
        """ŷ_n + LRP, group by group (each sees the latent up to and including its group)."""
        parts = []
        for (s, e), ctx in zip(group_bounds(self.groups), self.context):
            parts.append(y_n[:, s:e] + ctx.residual(mu_h_n[:, s:e], y_n[:, :e]))
        return torch.cat(parts, 1)

    # ---- coding -------------------------------------------------------------------------------
    def prepare_inference(self) -> "ContextHyperprior":
        super().prepare_inference()
        self.g_a.to(memory_format=torch.channels_last)
        self.g_s.to(memory_format=torch.channels_last)
        return self

    def load_state_dict(self, state_dict, strict: bool = True):  # noqa: D102
        self.__dict__.pop("_context64", None)
        return super().load_state_dict(state_dict, strict=strict)

    def _context_float64(self) -> nn.ModuleList:
        """A float64 copy of the context networks, made once (outside the state dict)."""
        cached = self.__dict__.get("_context64")
        if cached is None:
            cached = copy.deepcopy(self.context).double().eval()
            self.__dict__["_context64"] = cached
        return cached

    bitstream_minor = 3  # y coded pass by pass (SPEC §6.1, bitstream 1.3)

    def y_coding_order(self, shape: tuple[int, int, int]) -> np.ndarray:
        """The coding core's name for y_order."""
        return self.y_order(shape)

    @torch.no_grad()
    def decode_y_symbols(self, z_symbols: np.ndarray, level: float, read) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        """z symbols -> (y symbols [M, h, w], (ŷ_n, μh) for synthesis_input): the passes of decode_y,
        each pass's symbols read from the stream by ``read(indexes)``."""
        y_symbols, _, y_n, mu_h = self.decode_y(z_symbols, level, lambda k, sel, means, idx: read(idx))
        return y_symbols, (y_n, mu_h)

    def y_order(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Flat indexes of y [M, h, w] in coding order: for each group its anchors, then its
        non-anchors; within a pass channel by channel, each in raster order."""
        m, h, w = shape
        flat = np.arange(m * h * w, dtype=np.int64).reshape(m, h, w)
        mask = anchor_mask(h, w)
        return np.concatenate([flat[s:e][:, sel].reshape(-1)
                               for s, e in group_bounds(self.groups) for sel in (mask, ~mask)])

    @torch.no_grad()
    def analyze_latent(self, x: Tensor) -> Tensor:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of 64) -> the unscaled latent y [1, M, H/16, W/16]."""
        return self.g_a(x.contiguous(memory_format=torch.channels_last)).contiguous()

    @torch.no_grad()
    def analyze(self, x: Tensor, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """x [1, 3, H, W] in [0, 1] (H, W multiples of 64) -> z symbols, y symbols, y indexes."""
        return self.encode_latent(self.analyze_latent(x), level)

    @torch.no_grad()
    def quantize(self, y_q: Tensor, z_symbols: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scaled latent y_q and its z symbols -> z symbols, y symbols, y indexes (the passes of decode_y)."""
        y64 = y_q[0].double().numpy()

        def read(group: int, sel: np.ndarray, means: np.ndarray, indexes: np.ndarray) -> np.ndarray:
            s, e = group_bounds(self.groups)[group]
            return np.round(y64[s:e][:, sel] - means).astype(np.int32)

        y_symbols, y_indexes, _, _ = self.decode_y(z_symbols, level, read)
        return z_symbols, y_symbols, y_indexes

    @torch.no_grad()
    def decode_y(self, z_symbols: np.ndarray, level: float, read) -> tuple[np.ndarray, np.ndarray, Tensor, Tensor]:
        """The coding loop both sides run. ``read(group, sel, means, indexes)`` returns the
        int32 symbols [c, n] of one pass (the encoder rounds its latent; the decoder decodes
        them from the stream with ``indexes``). Returns y symbols [M, h, w], y indexes
        [M, h, w], the normalised latent ŷ_n and the hyper means μh (both [1, M, h, w] float64)."""
        gain, inv_gain = (t.double() for t in self.gains(torch.tensor([float(level)])))
        z_hat = torch.from_numpy(z_symbols).double()[None] + self._medians(torch.float64)
        mu_h, sigma_h = self._h_s_float64()(z_hat).chunk(2, 1)
        m, h, w = self.M, mu_h.shape[2], mu_h.shape[3]
        table = self.gaussian_conditional.scale_table.double()
        mask_np = anchor_mask(h, w)
        mask = torch.from_numpy(mask_np)
        y_symbols = np.zeros((m, h, w), np.int32)
        y_indexes = np.zeros((m, h, w), np.int32)
        y_n = torch.zeros(1, m, h, w, dtype=torch.float64)
        for k, ((s, e), ctx) in enumerate(zip(group_bounds(self.groups), self._context_float64())):
            g, ig = gain[:, s:e], inv_gain[:, s:e]
            shared = ctx.features(self._hyper_n(mu_h[:, s:e], sigma_h[:, s:e], ig), y_n[:, :s] if s else None)
            spatial_in = None
            for sel_np, sel in ((mask_np, mask), (~mask_np, ~mask)):
                mu, sigma = self._corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, spatial_in), g)
                mu_sel = mu[0][:, sel]  # [c, n]
                idx = torch.bucketize(sigma[0][:, sel], table[:-1], right=False).to(torch.int32).numpy()
                sym = read(k, sel_np, mu_sel.numpy(), idx)
                y_symbols[s:e][:, sel_np] = sym
                y_indexes[s:e][:, sel_np] = idx
                y_n[0, s:e][:, sel] = (torch.from_numpy(sym).double() + mu_sel) * ig[0, :, :, 0]
                spatial_in = y_n[:, s:e] * mask
        return y_symbols, y_indexes, y_n, mu_h

    def refinement(self, z_symbols: np.ndarray, level: float):
        """The differentiable cost of a scaled latent coded with these z symbols, for encode-time
        refinement (``aecodec.effort``): ``terms(y_q, round_fn) -> (bits [1, M, h, w], x_hat)``,
        the passes of decode_y in float32 with ``round_fn`` rounding (or relaxing) each residual."""
        gain, inv_gain = self.gains(torch.tensor([float(level)]))
        with torch.no_grad():
            z_hat = torch.from_numpy(z_symbols).float()[None] + self._medians()
            mu_h, sigma_h = self.h_s(z_hat).chunk(2, 1)
        mask = torch.from_numpy(anchor_mask(*mu_h.shape[2:]))

        def terms(y_q: Tensor, round_fn) -> tuple[Tensor, Tensor]:
            bits, parts = [], []
            for (s, e), ctx in zip(group_bounds(self.groups), self.context):
                g, ig = gain[:, s:e], inv_gain[:, s:e]
                shared = ctx.features(self._hyper_n(mu_h[:, s:e], sigma_h[:, s:e], ig),
                                      torch.cat(parts, 1) if s else None)
                mu_a, sig_a = self._corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, None), g)
                r_a = round_fn(y_q[:, s:e] - mu_a)
                anchors_n = (r_a + mu_a) * ig * mask
                mu_n, sig_n = self._corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, anchors_n), g)
                mu = torch.where(mask, mu_a, mu_n)
                r = torch.where(mask, r_a, round_fn(y_q[:, s:e] - mu_n))
                bits.append(gaussian_bits(r, torch.where(mask, sig_a, sig_n)))
                parts.append((r + mu) * ig)
            y = self._refine(torch.cat(parts, 1), mu_h * inv_gain)
            return torch.cat(bits, 1), self.g_s(y)

        return terms

    @torch.no_grad()
    def synthesis_input(self, y_symbols: np.ndarray, state: tuple[Tensor, Tensor], level: float) -> Tensor:
        """decode_y's (ŷ_n, μh) -> what the synthesis reads, [1, 2M, h, w] float32: ŷ_n and μh·inv_gain
        (windows of it can be synthesised separately, see ``synthesis_margin``)."""
        y_n, mu_h = state
        _, inv_gain = self.gains(torch.tensor([float(level)]))
        return torch.cat([y_n.float(), mu_h.float() * inv_gain], 1)

    @torch.no_grad()
    def synthesize_input(self, latent: Tensor, level: float) -> Tensor:
        """synthesis_input (or a window of it) -> LRP -> g_s -> x_hat [1, 3, 16h, 16w] clamped to [0, 1]."""
        y_n, mu_h_n = latent.split(self.M, 1)
        y = self._refine(y_n, mu_h_n)
        return self.g_s(y.contiguous(memory_format=torch.channels_last)).contiguous().clamp_(0, 1)

    @torch.no_grad()
    def synthesize(self, y_n: Tensor, mu_h: Tensor, level: float) -> Tensor:
        """ŷ_n and μh [1, M, h, w] (float64, from decode_y) -> x_hat [1, 3, 16h, 16w] clamped to [0, 1]."""
        return self.synthesize_input(self.synthesis_input(None, (y_n, mu_h), level), level)


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def _round_ste(x: Tensor) -> Tensor:
    return _RoundSTE.apply(x)


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
