"""Beyond compression: anomaly scores, surprise heatmaps and latent features from the codec's models.

A model trained on some data spends few bits on what it has learned to expect and many on
what it has not; the bits are exact, because they are what the range coder spends::

    image ─io─> RGB ─pad 64─> windows (the codec's 1024² tiles, each with 128 px of context)
        ─net.analyze(x, level)─> z symbols [N,h/4,w/4], y symbols + table indexes [M,h,w]
        ─symbol_bits: −log2((cdf[t][v+1] − cdf[t][v]) / 2^precision), escapes as the coder codes them─>
        bits per latent position ─Σ channels; each z cell's bits spread over its y cells─>
        bits per 16×16 block (the window's centre kept) ─> score (bits per pixel), heatmap, hottest window

    audio ─> model rate, mid/side ─> the codec's 10 s segments ─analyze─> bits per latent frame ─> bits/s

Only the coding contract is used (``analyze``, ``z_indexes``, ``z_tables``, ``y_tables``, the
coder precision), so every model the codec can code can score. The features use the analysis
transform ``g_a`` (y before the per-quality gain, the same for every quality).

Scores (bits per pixel of the padded image over the original pixel count) equal the ideal bits
the codec spends on the latents for images up to one tile (1024×1024); larger images are scored
in windows of 1024² plus 128 px of context on each side, keeping each window's centre, so tile
borders show neither in the map nor in the score (the codec itself, coding tiles independently,
spends a little more at their borders). A file adds its header and the range coder's few bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aecodec import coding, registry
from aecodec import image as image_api
from aecodec.errors import InputError, ModelError
from aecodec.io import image as image_io

DEFAULT_CONTEXT = 128  # px of context around each scoring window (two z cells)
FEATURE_CONTEXT = 64  # px of context for latents (g_a's receptive field is 61 px)

__all__ = ["score_image", "score_audio", "image_features", "audio_features", "image_latents", "ImageScore",
           "AudioScore", "symbol_bits", "heatmap_image", "overlay_image", "resolve_model", "suggest_threshold"]


# ---------------------------------------------------------------------------------------------
# models


def resolve_model(model, modality: str) -> registry.LoadedModel:
    """None (the default model of the modality), a registry name, a model file path, or a LoadedModel."""
    from aecodec import modelfile

    if model is None:
        if modality == "audio":
            return registry.load("audio-speech-v1")
        return registry.load(registry.DEFAULT_IMAGE_MODEL)
    if isinstance(model, registry.LoadedModel):
        loaded = model
    elif isinstance(model, Path) or (isinstance(model, str) and modelfile.is_model_file(model)):
        loaded = modelfile.load_model_file(model)
    elif isinstance(model, str):
        from aecodec.audio import FAMILY_MODELS

        loaded = registry.load(FAMILY_MODELS.get(model, model))
    else:
        raise ModelError(f"model must be a name, a model file or a LoadedModel, got {type(model).__name__}")
    if loaded.variant.modality != modality:
        raise ModelError(f"model {loaded.variant.name!r} is an {loaded.variant.modality} model, not an {modality} model")
    return loaded


def _level(loaded: registry.LoadedModel, quality) -> tuple[float, float]:
    lo, hi = loaded.variant.qualities
    q = (loaded.variant.default_quality or hi) if quality is None else quality
    if isinstance(q, bool) or not isinstance(q, (int, float)) or not lo <= float(q) <= hi:
        raise InputError(f"quality must be between {lo:g} and {hi:g}, got {q!r}")
    return float(q), coding.level_for(q)


# ---------------------------------------------------------------------------------------------
# exact bits


def symbol_bits(symbols, indexes, cdfs, cdf_lengths, offsets, precision: int = 16) -> np.ndarray:
    """Bits of each symbol under its table, shaped like ``symbols`` (float64): the terms whose sum is
    ``aecodec.entropy.ideal_bits`` (escapes: the escape symbol plus the bypass bits, as the coder codes them)."""
    s = np.asarray(symbols, np.int64)
    t = np.asarray(indexes, np.int64)
    cdfs = np.asarray(cdfs, np.int64)
    cdf_lengths = np.asarray(cdf_lengths, np.int64)
    offsets = np.asarray(offsets, np.int64)
    max_value = cdf_lengths[t] - 2
    raw = s - offsets[t]
    escaped = (raw < 0) | (raw >= max_value)
    value = np.where(escaped, max_value, raw)
    freq = cdfs[t, value + 1] - cdfs[t, value]
    bits = precision - np.log2(freq.astype(np.float64))
    if escaped.any():
        r, mv = raw[escaped], max_value[escaped]
        bypass = np.where(r < 0, -2 * r - 1, 2 * (r - mv))
        nbits = np.frexp(bypass.astype(np.float64))[1]  # bit length (exact below 2^53)
        chunks = (nbits + 3) // 4
        bits[escaped] += 4 * (chunks // 15 + 1) + 4 * chunks
    return bits


def latent_bits(net, z_sym: np.ndarray, y_sym: np.ndarray, y_idx: np.ndarray) -> np.ndarray:
    """Bits per y position summed over channels, z's bits spread evenly over the y positions each z
    cell covers. Shape: y's spatial (or temporal) shape."""
    precision = net.entropy_bottleneck.entropy_coder_precision
    zb = symbol_bits(z_sym, net.z_indexes(z_sym.shape), *net.z_tables(), precision=precision).sum(0)
    yb = symbol_bits(y_sym, y_idx, *net.y_tables(), precision=precision).sum(0)
    factors = [a // b for a, b in zip(yb.shape, zb.shape)]
    for axis, f in enumerate(factors):
        zb = np.repeat(zb, f, axis=axis) / f
    return yb + zb[tuple(slice(0, n) for n in yb.shape)]


def _analyze(net, rgb: np.ndarray, level: float):
    import torch

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float().div_(255.0)
    with torch.no_grad(), coding.single_threaded_torch():
        return net.analyze(x, level)


def _windows(width: int, height: int, tile: int, context: int, align: int):
    """(window box, kept box) per codec tile, both (x, y, w, h) in padded pixels, multiples of align."""
    pw, ph = width + (-width % align), height + (-height % align)
    for x, y, tw, th in image_api.tile_grid(width, height, tile):
        x0, y0 = max(0, x - context), max(0, y - context)
        x1, y1 = min(pw, x + tw + context), min(ph, y + th + context)
        yield (x0, y0, x1 - x0, y1 - y0), (x, y, tw, th)


def _rgb(image) -> np.ndarray:
    if isinstance(image, (str, Path)):
        image = image_io.open_image(image)
    return image_io.to_planes(image).rgb


def _check_tiling(tile: int, context: int, align: int) -> None:
    if tile < align or tile % align or tile > image_api.MAX_TILE:
        raise InputError(f"tile must be a multiple of {align} in [{align}, {image_api.MAX_TILE}], got {tile}")
    if context < 0 or context % align:
        raise InputError(f"context must be a non-negative multiple of {align}, got {context}")


# ---------------------------------------------------------------------------------------------
# images


@dataclass
class ImageScore:
    """The anomaly score of one image and where its bits go.

    ``bits_map``: bits per latent cell (``cell`` × ``cell`` pixels, 16 for the shipped model) over the
    padded image, z's bits included; ``bits_per_pixel``: their sum over the original pixel count."""

    bits_per_pixel: float
    bits: float
    width: int
    height: int
    quality: float
    model: str
    cell: int
    bits_map: np.ndarray = field(repr=False)

    def to_dict(self) -> dict:
        return {"bits_per_pixel": round(self.bits_per_pixel, 6), "bits": round(self.bits, 1), "width": self.width,
                "height": self.height, "quality": self.quality, "model": self.model}

    def bpp_map(self) -> np.ndarray:
        """Bits per pixel at each pixel (H × W float32): the cell map upsampled bilinearly, cropped."""
        from PIL import Image

        m = (self.bits_map / (self.cell * self.cell)).astype(np.float32)
        h, w = m.shape
        up = Image.fromarray(m, "F").resize((w * self.cell, h * self.cell), Image.BILINEAR)
        return np.asarray(up)[: self.height, : self.width]

    def hottest_window(self, size: int = 64) -> tuple[int, int, int, int]:
        """(x, y, w, h) in pixels of the size × size window (a multiple of the cell, stepped by one cell,
        inside the image where it fits) holding the most bits."""
        k = max(1, size // self.cell)
        rows = max(1, -(-self.height // self.cell))
        cols = max(1, -(-self.width // self.cell))
        m = self.bits_map[:rows, :cols]
        kr, kc = min(k, rows), min(k, cols)
        c = np.pad(m, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
        sums = c[kr:, kc:] - c[:-kr, kc:] - c[kr:, :-kc] + c[:-kr, :-kc]
        r, q = np.unravel_index(int(np.argmax(sums)), sums.shape)
        return int(q * self.cell), int(r * self.cell), int(kc * self.cell), int(kr * self.cell)


def score_image(image, quality: float | None = None, *, model=None, tile: int = image_api.DEFAULT_TILE,
                context: int = DEFAULT_CONTEXT) -> ImageScore:
    """Anomaly score of an image (PIL image, uint8 array or path): the bits per pixel the model needs
    at ``quality`` (default: the model's default, 6 for the shipped one), with the map of where they go.
    Nothing is written; memory is bounded by the window size."""
    loaded = resolve_model(model, "image")
    q, level = _level(loaded, quality)
    net = loaded.net
    align = int(getattr(net, "align", image_api.IMAGE_ALIGN))
    _check_tiling(tile, context, align)
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    padded = image_api._pad(rgb, align)
    windows = list(_windows(width, height, tile, context, align))

    def one(item):
        (wx, wy, ww, wh), kept = item
        z, y, idx = _analyze(net, padded[wy : wy + wh, wx : wx + ww], level)
        return latent_bits(net, z, y, idx), (wx, wy, ww, wh), kept

    full = None
    cell = None
    for bits, (wx, wy, ww, wh), (x, y, tw, th) in coding.parallel_map(one, windows):
        if full is None:
            cell = ww // bits.shape[1]
            full = np.zeros((padded.shape[0] // cell, padded.shape[1] // cell))
        r0, c0 = (y - wy) // cell, (x - wx) // cell
        full[y // cell : (y + th) // cell, x // cell : (x + tw) // cell] = bits[r0 : r0 + th // cell, c0 : c0 + tw // cell]
    total = float(full.sum())
    return ImageScore(total / (width * height), total, width, height, q, loaded.variant.name, int(cell), full)


def heatmap_image(score: ImageScore, vmax: float | None = None):
    """8-bit grayscale PIL image of the input's size, brightness ∝ bits per pixel (255 = ``vmax``,
    default the map's maximum)."""
    from PIL import Image

    m = score.bpp_map()
    top = float(m.max()) if vmax is None else float(vmax)
    gray = np.clip(np.round(m * (255.0 / top if top > 0 else 0.0)), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L")


# black → purple → red → orange → yellow → white: a perceptually ordered 'hot' ramp, no matplotlib needed
_RAMP = np.array([[0, 0, 0], [80, 18, 123], [182, 54, 121], [251, 136, 97], [252, 253, 191], [255, 255, 255]], float)


def _colormap(gray: np.ndarray) -> np.ndarray:
    pos = gray.astype(float) / 255.0 * (len(_RAMP) - 1)
    lo = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
    t = (pos - lo)[..., None]
    return (_RAMP[lo] * (1 - t) + _RAMP[lo + 1] * t).round().astype(np.uint8)


def overlay_image(image, score: ImageScore, vmax: float | None = None, alpha: float = 0.6):
    """Colour overlay: the heatmap through a black-purple-yellow ramp blended over the dimmed grayscale input."""
    from PIL import Image

    rgb = _rgb(image).astype(float)
    gray = np.asarray(heatmap_image(score, vmax))
    base = rgb.mean(2, keepdims=True) * 0.8
    out = base * (1 - alpha) + _colormap(gray) * alpha
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8), "RGB")


# ---------------------------------------------------------------------------------------------
# features


def _g_a(net):
    g_a = getattr(net, "g_a", None)
    if g_a is None:
        raise ModelError(f"model {type(net).__name__} has no analysis transform g_a: no latents to return")
    return g_a


def _latent_windows(rgb: np.ndarray, net, tile: int, context: int):
    """(latent of the window's kept part [M, th/cell, tw/cell], kept box) per tile."""
    import torch

    g_a = _g_a(net)
    align = int(getattr(net, "align", image_api.IMAGE_ALIGN))
    _check_tiling(tile, context, align)
    height, width = rgb.shape[:2]
    padded = image_api._pad(rgb, align)
    for (wx, wy, ww, wh), (x, y, tw, th) in _windows(width, height, tile, context, align):
        x_in = torch.from_numpy(np.ascontiguousarray(padded[wy : wy + wh, wx : wx + ww])).permute(2, 0, 1)[None]
        x_in = x_in.float().div_(255.0)
        with torch.no_grad(), coding.single_threaded_torch():
            lat = g_a(x_in.contiguous(memory_format=torch.channels_last)).contiguous()[0].numpy()
        cell = ww // lat.shape[2]
        r0, c0 = (y - wy) // cell, (x - wx) // cell
        yield lat[:, r0 : r0 + th // cell, c0 : c0 + tw // cell], (x, y, tw, th), cell


def image_latents(image, *, model=None, tile: int = image_api.DEFAULT_TILE, context: int = FEATURE_CONTEXT) -> np.ndarray:
    """The latent y = g_a(x) of an image (PIL image, uint8 array or path), float32 [M, ⌈H/16⌉, ⌈W/16⌉]
    (M = 160 for the shipped model): the analysis transform's output before the per-quality gain and
    before quantization, so the same for every quality. Large images are computed in tiles with 64 px
    of context (g_a's receptive field), which makes the tile borders vanish."""
    loaded = resolve_model(model, "image")
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    out = None
    for lat, (x, y, tw, th), cell in _latent_windows(rgb, loaded.net, tile, context):
        if out is None:
            align = int(getattr(loaded.net, "align", image_api.IMAGE_ALIGN))
            ph, pw = height + (-height % align), width + (-width % align)
            out = np.empty((lat.shape[0], ph // cell, pw // cell), np.float32)
        out[:, y // cell : y // cell + lat.shape[1], x // cell : x // cell + lat.shape[2]] = lat
    return out[:, : -(-height // cell), : -(-width // cell)]


def _pooled(sum_: np.ndarray, sq: np.ndarray, n: int) -> np.ndarray:
    mean = sum_ / max(n, 1)
    std = np.sqrt(np.maximum(sq / max(n, 1) - mean**2, 0.0))
    v = np.concatenate([mean, std]).astype(np.float32)
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def image_features(image, *, model=None, tile: int = image_api.DEFAULT_TILE) -> np.ndarray:
    """A fixed-length descriptor of an image for retrieval, clustering and near-duplicate search:
    float32 of length 2·M (320 for the shipped model) = [per-channel mean of y, per-channel standard
    deviation of y] over the latent positions inside the image (y = ``image_latents``), L2-normalised
    (compare with a dot product: cosine similarity). Streams over tiles, so memory stays bounded."""
    loaded = resolve_model(model, "image")
    rgb = _rgb(image)
    height, width = rgb.shape[:2]
    s = sq = None
    n = 0
    for lat, (x, y, tw, th), cell in _latent_windows(rgb, loaded.net, tile, FEATURE_CONTEXT):
        rows = min(lat.shape[1], -(-(height - y) // cell))  # cells that hold image pixels, not only padding
        cols = min(lat.shape[2], -(-(width - x) // cell))
        v = lat[:, :rows, :cols].reshape(lat.shape[0], -1).astype(np.float64)
        s = v.sum(1) if s is None else s + v.sum(1)
        sq = (v**2).sum(1) if sq is None else sq + (v**2).sum(1)
        n += v.shape[1]
    return _pooled(s, sq, n)


# ---------------------------------------------------------------------------------------------
# audio


@dataclass
class AudioScore:
    """Bits per second overall and per latent frame (``frame_rate`` frames per second of the input)."""

    bits_per_second: float
    bits: float
    duration: float
    frame_rate: float
    quality: float
    model: str
    bits_per_frame: np.ndarray = field(repr=False)  # summed over the coded channels (mid and side)

    def to_dict(self) -> dict:
        return {"bits_per_second": round(self.bits_per_second, 3), "bits": round(self.bits, 1),
                "duration": round(self.duration, 4), "quality": self.quality, "model": self.model,
                "frame_rate": self.frame_rate, "bits_per_second_by_second": [round(v, 1) for v in self.over_time(1.0)]}

    def over_time(self, seconds: float = 1.0) -> np.ndarray:
        """Bits per second in consecutive windows of ``seconds`` (the last one may be shorter)."""
        k = max(1, int(round(seconds * self.frame_rate)))
        b = self.bits_per_frame
        sums = np.add.reduceat(b, np.arange(0, len(b), k)) if len(b) else np.zeros(0)
        counts = np.minimum(k, len(b) - np.arange(0, len(b), k))
        return sums / (counts / self.frame_rate)


def _audio_source(samples, rate):
    from aecodec.io import audio as audio_io

    if isinstance(samples, (str, Path)):
        return audio_io.open_audio(samples)
    if isinstance(samples, audio_io.AudioSource):
        return samples
    if rate is None:
        raise InputError("audio arrays need their sample rate")
    return audio_io.array_source(samples, rate)


def _audio_model(source, model) -> registry.LoadedModel:
    """Speech for mono up to 24 kHz, else music, unless a model is named (the sample-rate rule, not the
    codec's content decision: a set of clips is scored with one model, so the scores compare)."""
    if model is None:
        from aecodec.audio import choose_model

        return choose_model(source.sample_rate, source.channels, None)
    return resolve_model(model, "audio")


def _audio_segments(source, loaded, level=None):
    """Per codec segment: (the coded (overlapping) samples at the model rate, frames it keeps)."""
    from aecodec import audio

    net = loaded.net
    geo = audio.geometry_for(net, source.frames, source.sample_rate)
    stream = audio._resampled((audio._to_coded(b) for b in source.blocks()), source.sample_rate, net.sample_rate,
                              source.channels, geo.model_frames)
    for i, seg in enumerate(audio._segments(stream, geo, source.channels)):
        yield seg, -(-geo.output_length(i) // net.hop)


def score_audio(samples, rate: int | None = None, quality: float | None = None, *, model=None) -> AudioScore:
    """Anomaly score of audio ((frames[, channels]) array with its rate, or a path): bits per second the
    model needs (mid and side for stereo), and per latent frame over time. Segments are scored as the
    codec codes them (10 s plus 80 ms of overlap); each keeps the frames of its own 10 s."""
    import torch

    source = _audio_source(samples, rate)
    loaded = _audio_model(source, model)
    q, level = _level(loaded, quality)
    net = loaded.net
    parts = []
    try:
        for seg, keep in _audio_segments(source, loaded):
            total = None
            for c in range(seg.shape[1]):
                x = torch.from_numpy(np.ascontiguousarray(seg[:, c]))[None, None]
                with torch.no_grad(), coding.single_threaded_torch():
                    z, y, idx = net.analyze(x, level)
                b = latent_bits(net, z, y, idx)[:keep]
                total = b if total is None else total + b
            parts.append(total)
    finally:
        if isinstance(samples, (str, Path)):
            source.close()
    per_frame = np.concatenate(parts) if parts else np.zeros(0)
    duration = source.frames / source.sample_rate
    bits = float(per_frame.sum())
    return AudioScore(bits / duration if duration else 0.0, bits, duration, net.sample_rate / net.hop, q,
                      loaded.variant.name, per_frame)


def audio_features(samples, rate: int | None = None, *, model=None) -> np.ndarray:
    """A fixed-length descriptor of audio: float32 of length 2·M (128 for the speech model, 256 for music)
    = [per-channel mean, per-channel standard deviation] over time of the latent y = g_a(x) of the mid
    (mono) signal at the model rate, L2-normalised."""
    import torch

    source = _audio_source(samples, rate)
    loaded = _audio_model(source, model)
    g_a = _g_a(loaded.net)
    s = sq = None
    n = 0
    try:
        for seg, keep in _audio_segments(source, loaded):
            x = torch.from_numpy(np.ascontiguousarray(seg[:, 0]))[None, None]
            with torch.no_grad(), coding.single_threaded_torch():
                lat = g_a(x)[0, :, :keep].numpy().astype(np.float64)
            s = lat.sum(1) if s is None else s + lat.sum(1)
            sq = (lat**2).sum(1) if sq is None else sq + (lat**2).sum(1)
            n += lat.shape[1]
    finally:
        if isinstance(samples, (str, Path)):
            source.close()
    if s is None:
        raise InputError("audio has no samples")
    return _pooled(s, sq, n)


# ---------------------------------------------------------------------------------------------
# thresholds


def suggest_threshold(normal_scores, fpr: float) -> float:
    """The smallest threshold T such that at most a fraction ``fpr`` of these held-out normal scores
    lie above T (flag a new input as anomalous when its score > T). With n scores, rates below 1/n
    cannot be told apart: T is then the largest score."""
    s = np.sort(np.asarray(normal_scores, float))
    if s.size == 0:
        raise InputError("no scores to pick a threshold from")
    if not 0 <= fpr < 1:
        raise InputError(f"false-positive rate must be in [0, 1), got {fpr}")
    k = int(np.floor(fpr * s.size + 1e-9))  # scores allowed above T
    return float(s[s.size - 1 - k])
