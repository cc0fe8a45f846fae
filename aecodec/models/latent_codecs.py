"""The y half of the entropy models: how the latent y is coded once the hyperprior has spoken.

A ``hyperprior.GainedHyperprior`` holds one y codec (composition, as CompressAI's latent codecs
compose a hyperprior codec with a y codec; a new prior is a new codec here, not a special case in
the models or the coding core)::

    y_q ─h_a─> z ─EntropyBottleneck─> ẑ ─h_s (float64 when coding)─> (μh, σh) ─y codec─> y symbols, indexes
    MeanScaleY                 y ~ N(μh, σh) element by element, raster order (v6, the audio models)
    ChannelGroupCheckerboardY  channel groups, two checkerboard passes each, and LRP (v7, ``models.context``)

What a y codec answers (``net`` is the model holding it: its gains, h_s, scale table, g_s):

    quantize(net, y_q, z_symbols, level)      -> y symbols, y indexes              the encoder
    decode(net, z_symbols, level, read)       -> y symbols, synthesis state       the decoder
    order(shape)                              -> y's symbol order in the stream
    synthesis_input(net, y_symbols, state, level) -> what g_s reads [1, C, h, w]
    to_synthesis(latent)                      -> g_s's input (LRP for the context codec)
    relaxed(net, z_symbols, level)            -> terms(y_q, round_fn) -> (bits, g_s input)   refinement
    likelihoods(net, y, mu_h, sigma_h, gain, inv_gain, rounded)                            training

``z_symbols`` is the coded unit's own ẑ or, when an image's tiles share ẑ (SPEC §6.3), a
``ZWindow`` of the whole image's ẑ around the tile; ``net.hyper_params`` turns either into the
unit's (μh, σh). Both coding directions run the same float64 arithmetic from integers, so the
decoder recomputes every mean and scale index the encoder used.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn

# Scale table of the GaussianConditional: CompressAI's 64 log-spaced scales.
SCALES_MIN, SCALES_MAX, SCALES_LEVELS = 0.11, 256.0, 64
LRP_HIDDEN = 64
CTX_HIDDEN = 64


def scale_table() -> Tensor:
    return torch.exp(torch.linspace(math.log(SCALES_MIN), math.log(SCALES_MAX), SCALES_LEVELS))


def gaussian_bits(residual: Tensor, sigma: Tensor) -> Tensor:
    """Bits of each rounded-or-relaxed residual ŷ − μ under N(0, σ²) integrated over ±½ (the
    GaussianConditional's likelihood, bounded below by 1e-9), differentiable."""
    normal = torch.distributions.Normal(0.0, 1.0)
    r = residual.abs()
    p = normal.cdf((0.5 - r) / sigma) - normal.cdf((-0.5 - r) / sigma)
    return -torch.log2(p.clamp_min(1e-9))


class MeanScaleY:
    """y ~ N(μh, σh): one pass in raster order; g_s reads ŷ = (symbols + μh) · inv_gain. No parameters
    (so not a module: the models that use it keep their weights' names)."""

    bitstream_minor = 0  # the plain layout (SPEC §6)

    def order(self, shape: tuple[int, ...]):
        return slice(None)

    def quantize(self, net, y_q: Tensor, z_symbols: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        indexes, means = net.hyper_decode(z_symbols)
        return torch.round(y_q.double() - means).to(torch.int32)[0].numpy(), indexes

    def decode(self, net, z_symbols: np.ndarray, level: float | None, read) -> tuple[np.ndarray, Tensor]:
        indexes, means = net.hyper_decode(z_symbols)
        return read(indexes), means

    def synthesis_input(self, net, y_symbols: np.ndarray, means: Tensor, level: float) -> Tensor:
        return net.decode_latent(y_symbols, means, level)

    def to_synthesis(self, latent: Tensor) -> Tensor:
        return latent

    def relaxed(self, net, z_symbols: np.ndarray, level: float):
        # ẑ fixes μ and σ (σ as the coder's scale table gives it)
        indexes, means = net.hyper_decode(z_symbols)
        mu = means.float()
        sigma = net.gaussian_conditional.scale_table.float()[torch.from_numpy(indexes).long()][None]
        _, inv_gain = net.gains(torch.tensor([float(level)]))

        def terms(y_q: Tensor, round_fn) -> tuple[Tensor, Tensor]:
            r = round_fn(y_q - mu)
            return gaussian_bits(r, sigma), (mu + r) * inv_gain

        return terms


# ---- channel groups + checkerboard (ELIC, He et al. 2022; He et al. 2021) + LRP (Minnen & Singh 2020)

def default_groups(M: int) -> tuple[int, ...]:
    """ELIC's uneven split, 1/12, 1/12, 1/6, 1/3, 1/3 of the channels (16, 16, 32, 64, 64 for M = 192)."""
    if M % 12:
        raise ValueError(f"M={M} must be a multiple of 12 for the default channel groups")
    return (M // 12, M // 12, M // 6, M // 3, M // 3)


def group_bounds(groups: tuple[int, ...]) -> list[tuple[int, int]]:
    out, s = [], 0
    for c in groups:
        out.append((s, s + c))
        s += c
    return out


def anchor_mask(h: int, w: int) -> np.ndarray:
    """True where row + col is even: the first pass of every group."""
    return (np.add.outer(np.arange(h), np.arange(w)) % 2) == 0


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


def _hyper_n(mu_h: Tensor, sigma_h: Tensor, inv_gain: Tensor) -> Tensor:
    return torch.cat([mu_h * inv_gain, torch.log(sigma_h.clamp_min(SCALES_MIN) * inv_gain)], 1)


def _corrected(mu_h: Tensor, sigma_h: Tensor, d_mu: Tensor, d_s: Tensor, gain: Tensor) -> tuple[Tensor, Tensor]:
    # the context predicts corrections: μ = μh + gain·Δμ, σ = max(σh, 0.11)·exp(Δs)
    return mu_h + d_mu * gain, sigma_h.clamp_min(SCALES_MIN) * torch.exp(d_s.clamp(-8.0, 8.0))


class ChannelGroupCheckerboardY(nn.ModuleList):
    """One ``GroupContext`` per channel group (a ModuleList: its parameters are ``context.<k>.*``).

    Group k, anchors (row + col even): params from (μh, σh) and ŷ of groups < k; non-anchors:
    the same plus group k's anchors. Each (group, pass) is one convolution over the whole
    latent (no serial raster context): ten small parallel steps. g_s reads ŷ_n + LRP."""

    bitstream_minor = 3  # y coded pass by pass (SPEC §6.1, bitstream 1.3)

    def __init__(self, groups: tuple[int, ...]):
        super().__init__(GroupContext(s, e - s) for s, e in group_bounds(groups))
        self.groups = tuple(groups)

    def float64(self, net) -> nn.ModuleList:
        """A float64 copy of the context networks, made once per loaded weights (kept by ``net``)."""
        cached = net.__dict__.get("_context64")
        if cached is None:
            cached = copy.deepcopy(nn.ModuleList(list(self))).double().eval()
            net.__dict__["_context64"] = cached
        return cached

    def order(self, shape: tuple[int, int, int]) -> np.ndarray:
        """Flat indexes of y [M, h, w] in coding order: for each group its anchors, then its
        non-anchors; within a pass channel by channel, each in raster order."""
        m, h, w = shape
        flat = np.arange(m * h * w, dtype=np.int64).reshape(m, h, w)
        mask = anchor_mask(h, w)
        return np.concatenate([flat[s:e][:, sel].reshape(-1)
                               for s, e in group_bounds(self.groups) for sel in (mask, ~mask)])

    @torch.no_grad()
    def passes(self, net, z_symbols: np.ndarray, level: float, read) -> tuple[np.ndarray, np.ndarray, Tensor, Tensor]:
        """The coding loop both sides run. ``read(group, sel, means, indexes)`` returns the
        int32 symbols [c, n] of one pass (the encoder rounds its latent; the decoder decodes
        them from the stream with ``indexes``). Returns y symbols [M, h, w], y indexes
        [M, h, w], the normalised latent ŷ_n and the hyper means μh (both [1, M, h, w] float64)."""
        gain, inv_gain = (t.double() for t in net.gains(torch.tensor([float(level)])))
        mu_h, sigma_h = net.hyper_params(z_symbols)
        m, h, w = net.M, mu_h.shape[2], mu_h.shape[3]
        table = net.gaussian_conditional.scale_table.double()
        mask_np = anchor_mask(h, w)
        mask = torch.from_numpy(mask_np)
        y_symbols = np.zeros((m, h, w), np.int32)
        y_indexes = np.zeros((m, h, w), np.int32)
        y_n = torch.zeros(1, m, h, w, dtype=torch.float64)
        for k, ((s, e), ctx) in enumerate(zip(group_bounds(self.groups), self.float64(net))):
            g, ig = gain[:, s:e], inv_gain[:, s:e]
            shared = ctx.features(_hyper_n(mu_h[:, s:e], sigma_h[:, s:e], ig), y_n[:, :s] if s else None)
            spatial_in = None
            for sel_np, sel in ((mask_np, mask), (~mask_np, ~mask)):
                mu, sigma = _corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, spatial_in), g)
                mu_sel = mu[0][:, sel]  # [c, n]
                idx = torch.bucketize(sigma[0][:, sel], table[:-1], right=False).to(torch.int32).numpy()
                sym = read(k, sel_np, mu_sel.numpy(), idx)
                y_symbols[s:e][:, sel_np] = sym
                y_indexes[s:e][:, sel_np] = idx
                y_n[0, s:e][:, sel] = (torch.from_numpy(sym).double() + mu_sel) * ig[0, :, :, 0]
                spatial_in = y_n[:, s:e] * mask
        return y_symbols, y_indexes, y_n, mu_h

    @torch.no_grad()
    def quantize(self, net, y_q: Tensor, z_symbols: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        y64 = y_q[0].double().numpy()
        bounds = group_bounds(self.groups)

        def read(group: int, sel: np.ndarray, means: np.ndarray, indexes: np.ndarray) -> np.ndarray:
            s, e = bounds[group]
            return np.round(y64[s:e][:, sel] - means).astype(np.int32)

        y_symbols, y_indexes, _, _ = self.passes(net, z_symbols, level, read)
        return y_symbols, y_indexes

    @torch.no_grad()
    def decode(self, net, z_symbols: np.ndarray, level: float, read) -> tuple[np.ndarray, tuple[Tensor, Tensor]]:
        y_symbols, _, y_n, mu_h = self.passes(net, z_symbols, level, lambda k, sel, means, idx: read(idx))
        return y_symbols, (y_n, mu_h)

    @torch.no_grad()
    def synthesis_input(self, net, y_symbols: np.ndarray, state: tuple[Tensor, Tensor], level: float) -> Tensor:
        """(ŷ_n, μh) -> [1, 2M, h, w] float32: ŷ_n and μh·inv_gain (windows of it can be synthesised
        separately: LRP reads both)."""
        y_n, mu_h = state
        _, inv_gain = net.gains(torch.tensor([float(level)]))
        return torch.cat([y_n.float(), mu_h.float() * inv_gain], 1)

    def to_synthesis(self, latent: Tensor) -> Tensor:
        """[ŷ_n, μh_n] -> ŷ_n + LRP, group by group (each sees the latent up to and including its group)."""
        y_n, mu_h_n = latent.chunk(2, 1)
        return self.refine(y_n, mu_h_n)

    def refine(self, y_n: Tensor, mu_h_n: Tensor) -> Tensor:
        parts = []
        for (s, e), ctx in zip(group_bounds(self.groups), self):
            parts.append(y_n[:, s:e] + ctx.residual(mu_h_n[:, s:e], y_n[:, :e]))
        return torch.cat(parts, 1)

    def relaxed(self, net, z_symbols: np.ndarray, level: float):
        """The passes in float32 with ``round_fn`` rounding (or relaxing) each residual."""
        gain, inv_gain = net.gains(torch.tensor([float(level)]))
        mu_h, sigma_h = net.hyper_params(z_symbols, torch.float32)
        mask = torch.from_numpy(anchor_mask(*mu_h.shape[2:]))

        def terms(y_q: Tensor, round_fn) -> tuple[Tensor, Tensor]:
            bits, parts = [], []
            for (s, e), ctx in zip(group_bounds(self.groups), self):
                g, ig = gain[:, s:e], inv_gain[:, s:e]
                shared = ctx.features(_hyper_n(mu_h[:, s:e], sigma_h[:, s:e], ig),
                                      torch.cat(parts, 1) if s else None)
                mu_a, sig_a = _corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, None), g)
                r_a = round_fn(y_q[:, s:e] - mu_a)
                anchors_n = (r_a + mu_a) * ig * mask
                mu_n, sig_n = _corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, anchors_n), g)
                mu = torch.where(mask, mu_a, mu_n)
                r = torch.where(mask, r_a, round_fn(y_q[:, s:e] - mu_n))
                bits.append(gaussian_bits(r, torch.where(mask, sig_a, sig_n)))
                parts.append((r + mu) * ig)
            return torch.cat(bits, 1), self.refine(torch.cat(parts, 1), mu_h * inv_gain)

        return terms

    def likelihoods(self, net, y: Tensor, mu_h: Tensor, sigma_h: Tensor, gain: Tensor, inv_gain: Tensor,
                    rounded: bool) -> tuple[Tensor, Tensor, Tensor]:
        """Training: scaled latent y and the hyper parameters -> (y likelihoods, the normalised latent
        the synthesis sees with noise — or rounded when ``rounded`` — and the rounded one). Rates use
        additive noise unless ``rounded``; the contexts see the rounded latents (straight-through),
        as the decoder will."""
        mask = torch.from_numpy(anchor_mask(*y.shape[2:])).to(y.device)
        mus, sigmas, rounded_n = [], [], []
        for (s, e), ctx in zip(group_bounds(self.groups), self):
            g, ig = gain[:, s:e], inv_gain[:, s:e]
            shared = ctx.features(_hyper_n(mu_h[:, s:e], sigma_h[:, s:e], ig),
                                  torch.cat(rounded_n, 1) if s else None)
            mu_a, sig_a = _corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, None), g)
            anchors_n = (_round_ste(y[:, s:e] - mu_a) + mu_a) * ig * mask
            mu_n, sig_n = _corrected(mu_h[:, s:e], sigma_h[:, s:e], *ctx.params(shared, anchors_n), g)
            mu, sigma = torch.where(mask, mu_a, mu_n), torch.where(mask, sig_a, sig_n)
            rounded_n.append((_round_ste(y[:, s:e] - mu) + mu) * ig)
            mus.append(mu)
            sigmas.append(sigma)
        mu, sigma = torch.cat(mus, 1), torch.cat(sigmas, 1)
        rounded_n = torch.cat(rounded_n, 1)
        gc = net.gaussian_conditional
        if rounded:
            y_likelihoods = gc._likelihood(_round_ste(y - mu) + mu, sigma, mu)
            if gc.use_likelihood_bound:
                y_likelihoods = gc.likelihood_lower_bound(y_likelihoods)
            return y_likelihoods, rounded_n, rounded_n
        y_noisy, y_likelihoods = gc(y, sigma, mu)
        return y_likelihoods, y_noisy * inv_gain, rounded_n


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)

    @staticmethod
    def backward(ctx, g):
        return g


def _round_ste(x: Tensor) -> Tensor:
    return _RoundSTE.apply(x)
