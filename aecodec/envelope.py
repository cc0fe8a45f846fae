"""Band-energy envelope `aec-env-v1` (bitstream/SPEC.md §7.1): numpy only, no torch.

The audio decoders are trained with spectral losses, no adversary and few CPU hours, so they smear
energy in time and across harmonics: onsets, plosives and gaps come out flattened and 1–5 dB too
quiet (their quality is then the same at every bitrate). As CELT does with its band energies, the
encoder sends the energy of the input in 32 bands per 64 ms tile, and the decoder rescales its
own output to match::

    encoder: segment (model rate, one channel) ─STFT─> band energies per tile ─4 dB steps─> q
             q ─delta in time, then across bands─> residuals ─range coder, fixed table─> bytes
    decoder: bytes ─> q ;  synthesized segment ─STFT─> its own band energies
             gain = sqrt(target / own) per (band, tile), clamped ─> scaled STFT ─overlap-add─> segment

About 1.4 kbps per coded channel of speech. The quantized energies are exact integers in the
file; the decoder's own STFT is floating point (like the synthesis transform). Defined at the
two model rates (16 kHz speech, 48 kHz music): one layout each, same bands in time and 31.25 Hz bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from aecodec import entropy
from aecodec.errors import CorruptStreamError

NAME = "aec-env-v1"
TILE_FRAMES = 8  # 64 ms of frames share one energy per band


@dataclass(frozen=True)
class Layout:
    """STFT and bands at one model rate: 32 ms periodic Hann window, 8 ms hop (frame j is centred
    on sample j·hop of the segment, zeros outside it), 31.25 Hz bins; band k holds the rfft bins
    [band_bins[k], band_bins[k+1])."""

    n_fft: int
    band_bins: tuple[int, ...]

    @property
    def hop(self) -> int:
        return self.n_fft // 4

    @property
    def bands(self) -> int:
        return len(self.band_bins) - 1


# 32 bands: bins 0-1, then edges at 62.5·(f_max/62.5)^(k/32) Hz rounded up to a bin and at least
# one bin apart, so bands are single bins (speech harmonics) up to ~440 Hz and widen above.
# Measured on 10 speech evaluation files: 13 bands raised ViSQOL from 1.55 to 1.86, 24 to 2.62,
# 32 to 3.01; on 6 music files (48 kHz) 32 bands raised it from 2.67 to 3.35.
LAYOUTS = {
    16000: Layout(512, (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 16, 18, 21, 25, 29, 34, 40, 46, 54,
                        63, 74, 86, 101, 118, 137, 161, 188, 219, 257)),
    48000: Layout(1536, (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 17, 21, 25, 30, 36, 44, 53, 64, 77, 93,
                         113, 137, 166, 201, 243, 295, 357, 432, 524, 634, 769)),
}
BANDS = 32
assert all(lay.bands == BANDS and lay.band_bins[-1] == lay.n_fft // 2 + 1 for lay in LAYOUTS.values())
STEP_DB = 4.0
Q_MIN, Q_MAX = -25, 20  # quantized energy range: -100 dB (silence) to +80 dB
Q_START = -15  # the prediction of the first tile of every band (-60 dB)
GAIN_DB_MIN, GAIN_DB_MAX = -40.0, 15.0  # the decoder never boosts a band by more than this
PRECISION = 16
# The residual table (fixed, normative): frequencies of residuals -12..12 then the escape, at
# 16-bit precision, counted on a third of the speech training files (538 s: 2.77 bits per
# residual, 1.40 kbps). Residuals outside -12..12 are escape-coded (SPEC §5): any value round-trips.
RESIDUAL_OFFSET = -12
RESIDUAL_FREQS = (
    16, 16, 16, 16, 19, 46, 115, 341, 959, 2449, 6002, 13368, 19483,
    12736, 5717, 2455, 1031, 433, 156, 59, 23, 16, 16, 16, 16, 16,
)



@dataclass(frozen=True)
class Variant:
    """One envelope resolution (SPEC §7.1 for aec-env-v1, §7.3 for the finer ones): quantizer step,
    tile length in frames, band layout per model rate, level range, first-tile prediction and the
    residual table (frequencies of RESIDUAL_OFFSET … +12, then the escape; sum 2**16)."""

    name: str
    step_db: float
    tile_frames: int
    layouts: dict
    q_min: int
    q_max: int
    q_start: int
    freqs: tuple[int, ...]
    kbps: float  # mean rate per coded channel on speech (the rate planner's estimate)

    @property
    def bands(self) -> int:
        return next(iter(self.layouts.values())).bands


# The finer variants (bitstream 1.3, SPEC §7.3): 16 kHz only, band edges of 48 and 64 bands by the
# same rule as the 32 (single bins up to ~0.8 / 1.2 kHz, geometric above); tables counted like v1's
# on every third speech training file (benchmarks/results/audio/levers.md).
_BINS_48 = (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 28,
            31, 34, 38, 42, 46, 51, 57, 63, 69, 77, 85, 94, 104, 115, 127, 140, 155, 171, 190, 210, 232, 257)
_BINS_64 = (0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
            29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 42, 45, 49, 53, 57, 61, 66, 71, 77, 83, 89, 96, 104, 112,
            120, 130, 140, 151, 163, 176, 190, 204, 220, 238, 257)
VARIANTS: dict[str, Variant] = {
    NAME: Variant(NAME, STEP_DB, TILE_FRAMES, LAYOUTS, Q_MIN, Q_MAX, Q_START, RESIDUAL_FREQS, 1.40),
    "aec-env-v2-t32": Variant("aec-env-v2-t32", 4.0, 4, {16000: LAYOUTS[16000]}, -25, 20, -15,
                              (16, 16, 16, 18, 22, 33, 70, 204, 634, 1977, 5747, 13982, 20606,
                               13462, 5497, 2008, 721, 255, 94, 44, 24, 19, 17, 17, 17, 20), 2.62),
    "aec-env-v2-b48": Variant("aec-env-v2-b48", 3.0, 4, {16000: Layout(512, _BINS_48)}, -33, 27, -20,
                              (16, 18, 20, 28, 48, 97, 219, 551, 1381, 3197, 6852, 12511, 16205,
                               12149, 6550, 3078, 1405, 625, 283, 127, 62, 34, 22, 18, 17, 23), 4.47),
    "aec-env-v2-b64": Variant("aec-env-v2-b64", 2.0, 4, {16000: Layout(512, _BINS_64)}, -50, 40, -30,
                              (32, 46, 75, 126, 233, 443, 844, 1530, 2681, 4488, 7058, 9810, 11343,
                               9571, 6815, 4302, 2571, 1509, 868, 492, 281, 163, 95, 60, 38, 62), 7.01),
}
assert all(v.layouts[r].band_bins[-1] == v.layouts[r].n_fft // 2 + 1 for v in VARIANTS.values() for r in v.layouts)

__all__ = ["NAME", "LAYOUTS", "VARIANTS", "Variant", "variant", "layout", "tiles", "band_energies", "quantize",
           "encode", "decode", "apply"]


def variant(name: str = NAME) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown envelope {name!r}; known: {', '.join(VARIANTS)}") from None


@lru_cache(maxsize=None)
def _table(name: str = NAME):
    """The residual table in CompressAI's layout (built once: every segment and channel uses it)."""
    freqs = np.asarray(variant(name).freqs, np.int64)
    assert freqs.sum() == 1 << PRECISION, "residual frequencies must sum to 2**PRECISION"
    cdf = np.concatenate([[0], np.cumsum(freqs)]).astype(np.int32)
    return entropy.Tables(cdf[None, :], np.array([len(cdf)], np.int32), np.array([RESIDUAL_OFFSET], np.int32), PRECISION)


def layout(rate: int, name: str = NAME) -> Layout:
    layouts = variant(name).layouts
    try:
        return layouts[rate]
    except KeyError:
        raise ValueError(f"the envelope {name} is defined for model rates {sorted(layouts)}, not {rate}") from None


def frames(length: int, lay: Layout) -> int:
    """STFT frames of a segment of ``length`` samples (a multiple of the hop)."""
    return length // lay.hop + 1


def tiles(length: int, rate: int, name: str = NAME) -> int:
    """Energy tiles of a segment of ``length`` samples: symbols per channel = bands × tiles."""
    return -(-frames(length, layout(rate, name)) // variant(name).tile_frames)


@lru_cache(maxsize=None)
def _window(n_fft: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def _stft(x: np.ndarray, lay: Layout) -> np.ndarray:
    """(frames, n_fft/2 + 1) complex spectrum; frame j is centred on sample j·hop."""
    n, n_fft = frames(len(x), lay), lay.n_fft
    padded = np.zeros((n - 1) * lay.hop + n_fft, np.float64)
    padded[n_fft // 2 : n_fft // 2 + len(x)] = x
    view = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[:: lay.hop][:n]
    return np.fft.rfft(view * _window(n_fft), axis=1)


def _overlap_add(blocks: np.ndarray, hop: int) -> np.ndarray:
    """(frames, 4·hop) -> the sum of frame j placed at j·hop (four shifted adds)."""
    n, k = blocks.shape[0], blocks.shape[1] // hop
    parts = blocks.reshape(n, k, hop)
    out = np.zeros((n + k - 1, hop))
    for i in range(k):
        out[i : i + n] += parts[:, i]
    return out.ravel()


def _istft(spec: np.ndarray, length: int, lay: Layout) -> np.ndarray:
    """Weighted overlap-add inverse of _stft: exact when spec is unchanged."""
    n, w = spec.shape[0], _window(lay.n_fft)
    out = _overlap_add(np.fft.irfft(spec, lay.n_fft, axis=1) * w, lay.hop)
    norm = _overlap_add(np.broadcast_to(w**2, (n, lay.n_fft)), lay.hop)
    core = slice(lay.n_fft // 2, lay.n_fft // 2 + length)
    return out[core] / np.maximum(norm[core], 1e-12)


def _band_tile_mean(power: np.ndarray, lay: Layout, tile: int = TILE_FRAMES) -> np.ndarray:
    """(frames, bins) power -> (bands, tiles) mean power per band and tile of ``tile`` frames."""
    n = power.shape[0]
    t = -(-n // tile)
    padded = np.zeros((t * tile, power.shape[1]))
    padded[:n] = power
    counts = np.full(t, tile, np.float64)
    counts[-1] = n - (t - 1) * tile
    per_tile = padded.reshape(t, tile, -1).sum(1) / counts[:, None]  # (tiles, bins)
    bands = np.add.reduceat(per_tile, lay.band_bins[:-1], axis=1) / np.diff(lay.band_bins)
    return bands.T


def band_energies(x: np.ndarray, rate: int, name: str = NAME) -> np.ndarray:
    """One channel of a segment (length a multiple of the hop) -> (bands, tiles) mean power."""
    lay = layout(rate, name)
    return _band_tile_mean(np.abs(_stft(np.asarray(x, np.float64), lay)) ** 2, lay, variant(name).tile_frames)


def quantize(energies: np.ndarray, name: str = NAME) -> np.ndarray:
    """Mean power -> int32 levels of the variant's step, clipped to its [q_min, q_max]."""
    v = variant(name)
    db = 10 * np.log10(np.maximum(energies, 1e-30))
    return np.clip(np.round(db / v.step_db), v.q_min, v.q_max).astype(np.int32)


def _residuals(q: np.ndarray, q_start: int = Q_START) -> np.ndarray:
    d = np.diff(q.astype(np.int64), axis=1, prepend=q_start)  # in time, per band
    r = d.copy()
    r[1:] -= d[:-1]  # then across bands, per tile
    return r


def _levels(r: np.ndarray, q_start: int = Q_START) -> np.ndarray:
    d = np.cumsum(r, axis=0)
    return np.cumsum(d, axis=1) + q_start


def encode(x: np.ndarray, rate: int, name: str = NAME) -> bytes:
    """One channel of a segment -> range-coded quantized energies (tile-major order)."""
    r = _residuals(quantize(band_energies(x, rate, name), name), variant(name).q_start)
    symbols = r.T.ravel()
    return entropy.encode(symbols, np.zeros(len(symbols), np.int32), _table(name))


def decode(data: bytes, length: int, rate: int, name: str = NAME) -> np.ndarray:
    """Bytes of one channel -> (bands, tiles) int levels; raises on data that cannot be an envelope."""
    v = variant(name)
    n, bands = tiles(length, rate, name), layout(rate, name).bands
    symbols = entropy.decode(data, np.zeros(bands * n, np.int32), _table(name))
    q = _levels(symbols.astype(np.int64).reshape(n, bands).T, v.q_start)
    if q.min() < v.q_min or q.max() > v.q_max:
        raise CorruptStreamError("envelope levels outside their range: corrupt ENVL data")
    return q.astype(np.int32)


def apply(y: np.ndarray, q: np.ndarray, rate: int, name: str = NAME) -> np.ndarray:
    """Rescale a synthesized channel so that its band energies per tile match the levels q."""
    v = variant(name)
    lay = layout(rate, name)
    spec = _stft(np.asarray(y, np.float64), lay)
    own = _band_tile_mean(np.abs(spec) ** 2, lay, v.tile_frames)
    gain_db = np.clip(q * v.step_db - 10 * np.log10(np.maximum(own, 1e-30)), GAIN_DB_MIN, GAIN_DB_MAX)
    gain = 10 ** (gain_db / 20)  # (bands, tiles)
    per_bin = np.repeat(gain, np.diff(lay.band_bins), axis=0)  # (bins, tiles)
    per_frame = np.repeat(per_bin, v.tile_frames, axis=1)[:, : spec.shape[0]]  # (bins, frames)
    return _istft(spec * per_frame.T, len(y), lay).astype(np.float32)
