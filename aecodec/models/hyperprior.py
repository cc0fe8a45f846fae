"""What the image and audio models share: the gained hyperprior, holding a y codec.

A subclass supplies the four transforms (g_a, g_s, h_a, h_s) for its signal
(``spatial_dims`` 2 for images [B, C, H, W], 1 for audio [B, C, T]) and, if not
the plain mean-scale one, its y codec (``latent_codecs``). This base owns the rest,
identical for both modalities::

    latent y ──×gain[q]──> y_q ──h_a──> z ──round──> ẑ ──h_s (float64)──> (μh, σh)
    y_q, (μh, σh) ──y codec──> y symbols, indexes;  decoder: symbols ──y codec──> g_s input ──g_s
    (MeanScaleY: ŷ_q = round(y_q − μh) + μh, g_s reads ŷ_q × inv_gain[q])

Each quality level ``q`` owns a channel-wise gain vector (Cui et al., CVPR
2021); fractional qualities interpolate geometrically. Rates come from
CompressAI's EntropyBottleneck (z, per channel) and GaussianConditional (y
given μ, σ). The models know nothing about files or entropy coding: they turn
signals into integer symbols plus table indexes and back.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import Tensor, nn

from aecodec import entropy
from aecodec.models.latent_codecs import (  # noqa: F401 - scale names re-exported for importers
    SCALES_LEVELS,
    SCALES_MAX,
    SCALES_MIN,
    MeanScaleY,
    gaussian_bits,
    scale_table,
)
from aecodec.models.windows import ZWindow

MEAN_SCALE = MeanScaleY()


class CodingTables(nn.Module):
    """Inference stand-in for CompressAI's EntropyBottleneck or GaussianConditional.

    Coding needs only what the shipped weights hold: the quantized CDF tables,
    the EntropyBottleneck's quantiles (its medians) and the scale table. Holding
    just those lets the codec run without importing CompressAI, whose import
    pulls torchvision and torch_geometric (about 10 s of start-up and 300 MB of
    memory per process). The other entries of the state dict under this
    module's prefix (the density model's training parameters) are skipped.
    """

    def __init__(self, precision: int, required: tuple[str, ...]):
        super().__init__()
        self.entropy_coder_precision = precision
        self.required = required

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in self.required:
            key = prefix + name
            if key in state_dict:
                self.register_buffer(name, state_dict[key].detach().clone())
            else:
                missing_keys.append(key)


EB_TABLES = ("quantiles", "_quantized_cdf", "_cdf_length", "_offset")
GC_TABLES = ("scale_table", "_quantized_cdf", "_cdf_length", "_offset")


class GainedHyperprior(nn.Module):
    """Base of the variable-rate models. Subclasses set g_a, g_s, h_a, h_s and ``spatial_dims``.

    Args:
        N: channels of z.
        M: channels of the latent y.
        levels: number of quality levels (one gain vector each).
        precision: bits of the quantized CDF tables used by the range coder.
        inference: entropy models as ``CodingTables`` (no CompressAI, cannot train; load weights).

    The y codec (how y is coded given μh, σh; ``latent_codecs``) is the submodule named
    ``Y_CODEC`` when a subclass has one with parameters (their prefix in the weights), else the
    parameter-free ``MeanScaleY``.
    """

    spatial_dims = 2
    Y_CODEC: str | None = None

    def __init__(self, N: int, M: int, levels: int, precision: int = 16, inference: bool = False):
        super().__init__()
        self.N, self.M, self.levels, self.inference = N, M, levels, inference
        self.training_dtype: torch.dtype | None = None  # e.g. torch.bfloat16: mixed-precision training
        # Gains start log-spaced so that higher levels begin with a finer grid.
        init = torch.logspace(-1.0, 1.0, levels, base=2.0)[:, None].repeat(1, M)
        self.gain = nn.Parameter(init.clone())
        self.inv_gain = nn.Parameter((1.0 / init).clone())
        if inference:
            self.entropy_bottleneck = CodingTables(precision, EB_TABLES)
            self.gaussian_conditional = CodingTables(precision, GC_TABLES)
        else:
            from compressai.entropy_models import EntropyBottleneck, GaussianConditional

            self.entropy_bottleneck = EntropyBottleneck(N, entropy_coder_precision=precision)
            self.gaussian_conditional = GaussianConditional(None, entropy_coder_precision=precision)

    def _per_channel(self, v: Tensor) -> Tensor:
        """[B, C] -> [B, C, 1(, 1)] to broadcast over the signal's spatial dimensions."""
        return v.reshape(*v.shape, *([1] * self.spatial_dims))

    # ---- gains -----------------------------------------------------------------------------
    def gains(self, level: Tensor) -> tuple[Tensor, Tensor]:
        """Gain and inverse gain, shape [B, M, 1(, 1)], for 0-based fractional levels ``level`` [B]."""
        q = level.to(self.gain.dtype).clamp(0, self.levels - 1)
        lo = q.floor().long().clamp(max=self.levels - 2) if self.levels > 1 else q.floor().long()
        t = (q - lo.to(q.dtype))[:, None]
        hi = (lo + 1).clamp(max=self.levels - 1)

        def interp(table: Tensor) -> Tensor:
            a, b = table[lo].abs().clamp_min(1e-6), table[hi].abs().clamp_min(1e-6)
            return self._per_channel((a.log() * (1 - t) + b.log() * t).exp())

        return interp(self.gain), interp(self.inv_gain)

    # ---- training ---------------------------------------------------------------------------
    def forward(self, x: Tensor, level: Tensor, straight_through: bool = False) -> dict:
        """x -> x_hat and likelihoods; level [B] (0-based levels).

        The rate always uses additive uniform noise. The synthesis sees the noisy
        latent too, unless ``straight_through``: then it sees the rounded latent
        (as at test time) with identity gradients. Rounding from the start stalls
        training (latents near zero all round to zero), so runs switch late.
        """
        gain, inv_gain = self.gains(level)
        y = self._transform(self.g_a, x) * gain
        z = self._transform(self.h_a, y)
        z_hat, z_likelihoods = self.entropy_bottleneck(z)
        means, scales = self._transform(self.h_s, z_hat).chunk(2, 1)
        y_noisy, y_likelihoods = self.gaussian_conditional(y, scales, means)
        if straight_through:
            residual = y - means
            y_hat = torch.round(residual).detach() + residual - residual.detach() + means
        else:
            y_hat = y_noisy
        x_hat = self._transform(self.g_s, y_hat * inv_gain)
        return {"x_hat": x_hat, "likelihoods": {"y": y_likelihoods, "z": z_likelihoods}}

    def _transform(self, module: nn.Module, x: Tensor) -> Tensor:
        """Run one of g_a/h_a/h_s/g_s, in ``training_dtype`` under autocast when training asks for it.

        Only the convolutional transforms run in reduced precision (bf16 halves a
        CPU training step); their outputs come back as float32, so the entropy
        models' likelihoods (differences of CDFs) stay in full precision."""
        if self.training_dtype is None or not self.training:
            return module(x)
        with torch.autocast(x.device.type, dtype=self.training_dtype):
            return module(x).float()

    def aux_loss(self) -> Tensor:
        return self.entropy_bottleneck.loss()

    # ---- tables -----------------------------------------------------------------------------
    def update_tables(self) -> None:
        """Compute the quantized CDF tables (done once at export; shipped with the weights)."""
        self.gaussian_conditional.update_scale_table(scale_table(), force=True)
        self.entropy_bottleneck.update(force=True)
        self.__dict__.pop("_z_tables", None)
        self.__dict__.pop("_y_tables", None)

    def load_state_dict(self, state_dict, strict: bool = True):  # noqa: D102 - resizes table buffers first
        for key in ("_h_s64", "_context64", "_z_tables", "_y_tables"):
            self.__dict__.pop(key, None)
        if self.inference:
            return super().load_state_dict(state_dict, strict=strict)
        from compressai.models.utils import update_registered_buffers

        update_registered_buffers(
            self.entropy_bottleneck, "entropy_bottleneck", ["_quantized_cdf", "_offset", "_cdf_length"], state_dict
        )
        update_registered_buffers(
            self.gaussian_conditional, "gaussian_conditional",
            ["_quantized_cdf", "_offset", "_cdf_length", "scale_table"], state_dict,
        )
        return super().load_state_dict(state_dict, strict=strict)

    def prepare_inference(self):
        """Inference mode; the coding tables are validated here, once, at load."""
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)
        self.z_tables(), self.y_tables()
        return self

    def z_tables(self) -> entropy.Tables:
        """The z coding tables (validated once, then cached until new weights load)."""
        return self._coding_tables("_z_tables", self.entropy_bottleneck)

    def y_tables(self) -> entropy.Tables:
        """The y coding tables (validated once, then cached until new weights load)."""
        return self._coding_tables("_y_tables", self.gaussian_conditional)

    def _coding_tables(self, key: str, module: nn.Module) -> entropy.Tables:
        cached = self.__dict__.get(key)
        if cached is None:
            cached = entropy.Tables(*_tables(module._quantized_cdf, module._cdf_length, module._offset),
                                    precision=module.entropy_coder_precision)
            self.__dict__[key] = cached
        return cached

    # ---- coding -----------------------------------------------------------------------------
    def _medians(self, dtype=torch.float32) -> Tensor:
        """EntropyBottleneck medians shaped [1, N, 1(, 1)]."""
        q = self.entropy_bottleneck.quantiles.detach()[:, 0, 1].to(dtype)
        return self._per_channel(q[None])

    @torch.no_grad()
    def encode_latent(self, y: Tensor, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unscaled latent y [1, M, ...] -> z symbols [N, ...], y symbols [M, ...], y indexes [M, ...]."""
        return self.quantize(*self.scaled_latent(y, level), level)

    @torch.no_grad()
    def scaled_latent(self, y: Tensor, level: float) -> tuple[Tensor, np.ndarray]:
        """Unscaled latent y -> (y_q = y·gain[level], the z symbols of h_a(y_q))."""
        gain, _ = self.gains(torch.tensor([float(level)]))
        y = y * gain
        return y, self.z_symbols(y)

    @torch.no_grad()
    def z_symbols(self, y_q: Tensor) -> np.ndarray:
        """Scaled latent y_q [1, M, ...] -> the z symbols [N, ...] of h_a(y_q)."""
        return torch.round(self.h_a(y_q) - self._medians()).to(torch.int32)[0].numpy()

    @torch.no_grad()
    def quantize(self, y_q: Tensor, z_symbols: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scaled latent y_q (from scaled_latent, or refined at encode time) and the z symbols it is
        coded with -> z symbols, y symbols, y indexes (the y codec's)."""
        y_symbols, indexes = self.y_codec.quantize(self, y_q, z_symbols, level)
        return z_symbols, y_symbols, indexes

    # ---- what the coding core asks of a model (aecodec.coding) -------------------------------
    @property
    def y_codec(self):
        return MEAN_SCALE if self.Y_CODEC is None else self._modules[self.Y_CODEC]

    @property
    def bitstream_minor(self) -> int:
        """The container minor version this model's coded units need (SPEC §6)."""
        return self.y_codec.bitstream_minor

    def y_coding_order(self, shape: tuple[int, ...]):
        """Flat indexes (or a slice) of y's symbols in the order they are coded."""
        return self.y_codec.order(shape)

    @torch.no_grad()
    def decode_y_symbols(self, z_symbols: np.ndarray, level: float | None, read):
        """z symbols -> (y symbols [M, ...], the decoding state ``synthesis_input`` reads), the y
        symbols read from the stream by ``read(indexes) -> int32 symbols shaped like indexes``."""
        return self.y_codec.decode(self, z_symbols, level, read)

    @torch.no_grad()
    def synthesis_input(self, y_symbols: np.ndarray, state, level: float) -> Tensor:
        """Decoded y symbols + the decoding state -> what the synthesis reads, [1, C, ...] float32
        (windows of it can be synthesised separately, see ``synthesis_margin``)."""
        return self.y_codec.synthesis_input(self, y_symbols, state, level)

    def refinement_loss(self, x: Tensor, level: float):
        """The cost refinement lowers for input x, ``loss(bits, x_hat) -> scalar``: the λ-trained
        models' training loss, bits per pixel + λ(level)·255²·MSE (λ interpolated geometrically
        between the levels' ``lambdas``). Models trained otherwise override it."""
        logs = np.log(np.asarray(self.lambdas, np.float64))
        lam = float(np.exp(np.interp(level, np.arange(len(logs)), logs))) * 255.0**2
        pixels = math.prod(x.shape[2:])
        x = x.float()
        return lambda bits, x_hat: bits.sum() / pixels + lam * torch.mean((x_hat - x) ** 2)

    def refinement(self, z_symbols: np.ndarray, level: float):
        """The differentiable cost of a scaled latent coded with these z symbols, for encode-time
        refinement (``aecodec.effort``): ``terms(y_q, round_fn) -> (bits [1, M, ...], x_hat)``;
        ``round_fn`` rounds or relaxes the residuals the coder codes."""
        relaxed = self.y_codec.relaxed(self, z_symbols, level)

        def terms(y_q: Tensor, round_fn) -> tuple[Tensor, Tensor]:
            bits, latent = relaxed(y_q, round_fn)
            return bits, self.g_s(latent)

        return terms

    def z_indexes(self, shape: tuple[int, ...]) -> np.ndarray:
        """EntropyBottleneck tables are per channel: index = channel number."""
        c = shape[0]
        return np.broadcast_to(np.arange(c, dtype=np.int32).reshape(c, *([1] * (len(shape) - 1))), shape).copy()

    @torch.no_grad()
    def hyper_decode(self, z_symbols: np.ndarray) -> tuple[np.ndarray, Tensor]:
        """z symbols [N, ...] -> y scale-table indexes [M, ...] and means [1, M, ...] (float64).

        Runs in float64: the decoder must recompute exactly the indexes the
        encoder used, and double precision keeps rounding differences between
        thread counts and machines far below the spacing of the scale table.
        """
        means, scales = self.hyper_params(z_symbols)
        table = self.gaussian_conditional.scale_table.double()
        # index = number of table entries strictly below the scale, as in CompressAI's build_indexes
        indexes = torch.bucketize(scales[0], table[:-1], right=False).to(torch.int32)
        return indexes.numpy(), means

    @torch.no_grad()
    def hyper_params(self, z, dtype=torch.float64) -> tuple[Tensor, Tensor]:
        """z symbols [N, ...] (or a ZWindow) -> h_s's (μh, σh) [1, M, ...] of the unit's y cells,
        in float64 for coding (float32: refinement's relaxed rate)."""
        symbols = z.symbols if isinstance(z, ZWindow) else z
        z_hat = torch.from_numpy(symbols).to(dtype)[None] + self._medians(dtype)
        out = (self._h_s_float64() if dtype == torch.float64 else self.h_s)(z_hat)
        if isinstance(z, ZWindow):
            top, left, rows, cols = z.box
            out = out[:, :, top : top + rows, left : left + cols].contiguous()
        return out.chunk(2, 1)

    def _h_s_float64(self) -> nn.Module:
        """A float64 copy of h_s, made once (kept outside the module tree and the state dict)."""
        cached = self.__dict__.get("_h_s64")
        if cached is None:
            cached = copy.deepcopy(self.h_s).double().eval()
            self.__dict__["_h_s64"] = cached
        return cached

    @torch.no_grad()
    def decode_latent(self, y_symbols: np.ndarray, means: Tensor, level: float) -> Tensor:
        """y symbols [M, ...] + means -> the unscaled latent ŷ [1, M, ...] (float32) for g_s."""
        _, inv_gain = self.gains(torch.tensor([float(level)]))
        return (torch.from_numpy(y_symbols).double()[None] + means).float() * inv_gain


def _tables(cdf: Tensor, lengths: Tensor, offsets: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        np.ascontiguousarray(cdf.detach().cpu().numpy(), dtype=np.int32),
        np.ascontiguousarray(lengths.detach().cpu().numpy().reshape(-1), dtype=np.int32),
        np.ascontiguousarray(offsets.detach().cpu().numpy().reshape(-1), dtype=np.int32),
    )
