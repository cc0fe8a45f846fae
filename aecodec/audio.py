"""Python API for audio, shaped like soundfile: arrays of shape (frames, channels) plus a rate.

    compress(data, samplerate, kbps)  ->  aec bytes        decompress(blob) -> (data, samplerate)
    write(file, data, samplerate, kbps)                    read(file)       -> (data, samplerate)
    encode(source, fileobj, ...) / decode(src) : the streaming forms the CLI uses

Data flow (streaming, block by block, so an hour of audio stays in bounded memory)::

    blocks (orig rate) ─stereo: mid/side─> soxr stream ─> model rate ─cut─> segments
        segment i = model-rate samples [i·S, i·S + S + O)   (S segment, O overlap)
        each channel ─model.analyze─> symbols ─entropy.encode─> SEGM chunk
                     ─envelope.encode─> band energies ─> ENVL chunk (SPEC §7.1)
    decode: SEGM ─> symbols (CRC-checked) ─model.synthesize─> [S + O] ─envelope.apply(ENVL)─>
        first O samples cross-faded with the previous segment's extra O ─> soxr ─> orig rate

Segments are independent (a decoder can start at any SEGM; only the cross-fade
with the previous segment is lost). Mono files code one channel, stereo files
code mid and side with the same quality (side is usually quiet and cheap).
"""

from __future__ import annotations

import io
import json
import math
import struct
import warnings
from dataclasses import dataclass
from typing import BinaryIO, Iterator

import numpy as np

from aecodec import container, content, entropy, envelope, registry
from aecodec import effort as effort_mod
from aecodec.coding import (
    decode_latents,
    encode_latents,
    int_field,
    level_for,
    model_for,
    parallel_map,
    parse_coding_fields,
    quality_text,
    single_threaded_torch,
)
from aecodec.errors import FormatError, HeaderError, InputError, LimitError, ModelError
from aecodec.io import audio as audio_io

SEGMENT_SECONDS = 10.0
OVERLAP_SECONDS = 0.08
SEGMENT_HEAD = struct.Struct("<I")  # segment index; then per channel: u32 length + latent payload
CHANNEL_HEAD = struct.Struct("<I")
# decompress() to one array refuses more decoded audio than this (46 min of 48 kHz stereo, 2.3 h of
# 16 kHz mono): a small file must not make it allocate gigabytes. decode() streams any length.
MAX_ARRAY_BYTES = 512 << 20
# Longest segment a file may declare (model-rate samples): synthesis memory grows with it, and a
# small forged file must not demand gigabytes. Encoders write 10 s (160,000 or 480,000 samples).
MAX_SEGMENT = 1 << 19  # decompress() to an array refuses more decoded audio than this
FAMILY_MODELS = {"speech": "audio-speech-v1", "music": "audio-music-v1"}

__all__ = ["compress", "decompress", "read", "write", "encode", "decode", "read_info", "AudioInfo",
           "choose", "choose_model", "ModelChoice", "quality_for_kbps"]


# ---------------------------------------------------------------------------------------------
# model and rate choices


@dataclass(frozen=True)
class ModelChoice:
    """The model an encoder uses and why: ``by`` is "request" (named), "channels" (stereo: music),
    "bitrate" (a mono request under 12 kbps: only speech reaches it), "content" (the speech/music
    decision on the signal, aecodec/content.py) or "sample rate" (too short or quiet to judge:
    speech up to 24 kHz, else music)."""

    loaded: registry.LoadedModel
    by: str
    speech_probability: float | None = None

    def describe(self) -> str:
        if self.by == "content":
            return f"by content, P(speech) {self.speech_probability:.2f}"
        return f"by {self.by}"


def choose(source: audio_io.AudioSource, kbps: float | None = None, model=None) -> ModelChoice:
    """The model for an AudioSource: the one named, else by channels, bitrate, then content (a few
    excerpts are read and the source rewound), falling back to the sample rate."""
    if model is not None:
        return ModelChoice(choose_model(source.sample_rate, source.channels, kbps, model), "request")
    if source.channels != 1:
        return ModelChoice(_load_family("music"), "channels")
    if kbps is not None and kbps < 12:
        return ModelChoice(_load_family("speech"), "bitrate")
    samples = source.excerpt(content.excerpt_plan(source.frames, source.sample_rate))
    decision = None if samples is None else content.classify(samples, source.sample_rate)
    if decision is not None:
        return ModelChoice(_load_family(decision.kind), "content", decision.speech_probability)
    return ModelChoice(choose_model(source.sample_rate, 1, kbps), "sample rate")


def choose_model(sample_rate: int, channels: int, kbps: float | None, model=None,
                 samples: np.ndarray | None = None) -> registry.LoadedModel:
    """An explicit model (name, family 'speech'/'music', or LoadedModel), else: music for stereo,
    speech for a mono request under 12 kbps, else the speech/music decision on ``samples`` (when
    given and long enough), else speech for mono audio up to 24 kHz and music above."""
    if isinstance(model, registry.LoadedModel):
        return model
    if model is None and samples is not None:
        return choose(audio_io.array_source(samples, sample_rate), kbps).loaded
    if model is None:
        speech = channels == 1 and (sample_rate <= 24000 or (kbps is not None and kbps < 12))
        model = "speech" if speech else "music"
    return _load_family(model)


def _load_family(model: str) -> registry.LoadedModel:
    name = FAMILY_MODELS.get(model, model)
    loaded = registry.load(name)
    if loaded.variant.modality != "audio":
        raise ModelError(f"model {name!r} is not an audio model")
    return loaded


ENVELOPE_KBPS = 1.4  # mean rate of the band-energy envelope per coded channel (speech training files)


def uses_envelope(net, envelope_on: bool | None) -> bool:
    """The envelope is on by default wherever it is defined (the 16 and 48 kHz model rates)."""
    defined = getattr(net, "sample_rate", None) in envelope.LAYOUTS
    if envelope_on and not defined:
        raise InputError(f"the band-energy envelope is defined for model rates {sorted(envelope.LAYOUTS)} Hz only")
    return defined if envelope_on is None else bool(envelope_on)


def quality_for_kbps(net, kbps: float, channels: int, with_envelope: bool = False) -> float:
    """1-based continuous quality whose trained rate matches kbps (stereo: side costs about half),
    after the envelope's share when it is sent."""
    per_channel = kbps / (1.0 if channels == 1 else 1.5) - (ENVELOPE_KBPS if with_envelope else 0.0)
    targets = np.log(np.asarray(net.target_kbps))
    q = np.interp(math.log(max(per_channel, 1e-3)), targets, np.arange(len(targets)))
    return round(float(q) + 1.0, 3)


# Rate ladder at the speech rate (issue 16; benchmarks/results/audio/levers.md): the speech model's
# latents buy no quality above its lowest level, a finer envelope does (SPEC §7.3). A mono rate
# request takes the lowest latent level and the finest envelope whose estimated total fits.
ENVELOPE_LADDER = {16000: ("aec-env-v1", "aec-env-v2-t32", "aec-env-v2-b48", "aec-env-v2-b64")}


def plan_for_kbps(net, kbps: float, channels: int) -> tuple[float, str]:
    """(1-based quality, envelope name) for a rate request with the envelope on."""
    ladder = ENVELOPE_LADDER.get(getattr(net, "sample_rate", None)) if channels == 1 else None
    if not ladder:
        return quality_for_kbps(net, kbps, channels, True), envelope.NAME
    fits = [n for n in ladder if net.target_kbps[0] + envelope.variant(n).kbps <= 1.05 * kbps]
    return 1.0, (fits[-1] if fits else ladder[0])


@dataclass(frozen=True)
class Geometry:
    """Segment layout at the model rate (all lengths in model-rate samples)."""

    model_frames: int
    segment: int
    overlap: int
    align: int

    @property
    def count(self) -> int:
        return -(-self.model_frames // self.segment) if self.model_frames else 0

    def coded_length(self, i: int) -> int:
        """Samples segment i codes: S + O, or what is left (rounded up to the alignment) for the last."""
        left = self.model_frames - i * self.segment
        if left > self.segment:
            return self.segment + self.overlap
        return -(-left // self.align) * self.align

    def output_length(self, i: int) -> int:
        return min(self.segment, self.model_frames - i * self.segment)


def model_frames(frames: int, sample_rate: int, model_rate: int) -> int:
    return -(-frames * model_rate // sample_rate)


def geometry_for(net, frames: int, sample_rate: int, segment_seconds: float | None = None) -> Geometry:
    """Segments of ``segment_seconds`` (default SEGMENT_SECONDS) rounded to whole alignments."""
    align = net.align
    seconds = SEGMENT_SECONDS if segment_seconds is None else segment_seconds
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds < math.inf:
        raise InputError(f"segment length must be a positive number of seconds, got {seconds!r}")
    segment = max(1, round(seconds * net.sample_rate / align)) * align
    if segment > MAX_SEGMENT:
        raise InputError(f"segments of {seconds:g} s are longer than decoders accept ({MAX_SEGMENT} samples)")
    overlap = max(1, round(OVERLAP_SECONDS * net.sample_rate / align)) * align
    return Geometry(model_frames(frames, sample_rate, net.sample_rate), segment, overlap, align)


# ---------------------------------------------------------------------------------------------
# streaming helpers


def _to_coded(block: np.ndarray) -> np.ndarray:
    if block.shape[1] == 2:
        return np.stack([(block[:, 0] + block[:, 1]) * 0.5, (block[:, 0] - block[:, 1]) * 0.5], axis=1)
    return block


def _from_coded(block: np.ndarray) -> np.ndarray:
    if block.shape[1] == 2:
        return np.stack([block[:, 0] + block[:, 1], block[:, 0] - block[:, 1]], axis=1)
    return block


RESAMPLE_SLICE = 1 << 14  # model-rate samples per resampler call: bounds each output block (×48 at most)


def _slices(blocks: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    for b in blocks:
        for i in range(0, len(b), size):
            yield b[i : i + size]


def _resampled(blocks: Iterator[np.ndarray], rate_in: int, rate_out: int, channels: int, total: int) -> Iterator[np.ndarray]:
    """Stream through soxr, yielding exactly ``total`` output samples (zero-padded / trimmed at the end),
    in blocks of bounded size whatever the input blocks and the rate ratio."""
    emitted = 0

    def clip(out: np.ndarray) -> np.ndarray:
        nonlocal emitted
        out = out[: max(0, total - emitted)]
        emitted += len(out)
        return out

    if rate_in == rate_out:
        for b in _slices(blocks, 4 * RESAMPLE_SLICE):
            yield clip(np.ascontiguousarray(b, dtype=np.float32))
    else:
        import soxr

        stream = soxr.ResampleStream(rate_in, rate_out, channels, dtype="float32", quality="HQ")
        for b in _slices(blocks, RESAMPLE_SLICE):
            out = stream.resample_chunk(np.ascontiguousarray(b, dtype=np.float32), last=False)
            if len(out):
                yield clip(out.reshape(-1, channels))
        yield clip(stream.resample_chunk(np.zeros((0, channels), np.float32), last=True).reshape(-1, channels))
    while emitted < total:
        n = min(total - emitted, 4 * RESAMPLE_SLICE)
        emitted += n
        yield np.zeros((n, channels), np.float32)


def _segments(blocks: Iterator[np.ndarray], geo: Geometry, channels: int) -> Iterator[np.ndarray]:
    """Cut the model-rate stream into the coded (overlapping, zero-padded) segments."""
    buf = np.zeros((0, channels), np.float32)
    blocks = iter(blocks)
    for i in range(geo.count):
        need = geo.coded_length(i)
        while len(buf) < need:
            nxt = next(blocks, None)
            if nxt is None:
                break
            buf = np.concatenate([buf, nxt])
        seg = buf[:need]
        if len(seg) < need:
            seg = np.concatenate([seg, np.zeros((need - len(seg), channels), np.float32)])
        yield seg
        buf = buf[geo.segment :]


def _fade(length: int) -> np.ndarray:
    """Raised-cosine fade-in weights (the previous segment gets 1 − w)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(length) + 0.5) / length)).astype(np.float32)[:, None]


# ---------------------------------------------------------------------------------------------
# encoding


@dataclass
class EncodeStats:
    bytes: int
    seconds_audio: float
    kbps: float
    quality: float
    model: str
    warning: str | None = None  # the requested bitrate is outside the model's range (also a RateWarning)
    chosen_by: str = "request"  # why this model (ModelChoice.describe(): "by content, P(speech) 0.97", ...)


class RateWarning(UserWarning):
    """The requested bitrate is outside what the model reaches; the nearest quality was used."""


def encode(source: audio_io.AudioSource, fileobj: BinaryIO, kbps: float | None = None, *,
           quality: float | None = None, model=None, envelope_on: bool | None = None,
           segment_seconds: float | None = None, threads: int | None = None, effort: int = 0,
           progress=None) -> EncodeStats:
    """Stream an AudioSource into an aec file written chunk by chunk to fileobj.

    ``envelope_on``: send the band-energy envelope (None: wherever it is defined, both shipped models).
    ``segment_seconds``: length of the independently coded segments (default SEGMENT_SECONDS).
    ``threads``: segments coded side by side (default ``coding.CODING_THREADS``, else one per CPU);
    the bytes are the same for every value. ``effort`` 0..9: encode time spent refining each
    segment's latents for fewer bits (``aecodec.effort``; same decoder); ``progress(n)`` is called
    as refinement steps finish."""
    import torch

    if kbps is not None and quality is not None:
        raise InputError("give a bitrate or a quality, not both")
    effort = effort_mod.check_effort(effort)
    if kbps is not None and not (isinstance(kbps, (int, float)) and math.isfinite(kbps) and 0 < kbps <= 1000):
        raise InputError(f"bitrate must be in (0, 1000] kbps, got {kbps!r}")
    choice = choose(source, kbps, model)
    loaded = choice.loaded
    net = loaded.net
    with_envelope = uses_envelope(net, envelope_on)
    lo, hi = loaded.variant.qualities
    env_name, laddered = envelope.NAME, False
    if quality is None and kbps is not None and with_envelope:
        quality, env_name = plan_for_kbps(net, kbps, source.channels)
        laddered = source.channels == 1 and net.sample_rate in ENVELOPE_LADDER
    if quality is None:
        quality = (quality_for_kbps(net, kbps, source.channels, with_envelope) if kbps is not None
                   else loaded.variant.default_quality)
    if not isinstance(quality, (int, float)) or not lo <= float(quality) <= hi:
        raise InputError(f"audio quality must be between {lo:g} and {hi:g}, got {quality!r}")
    geo = geometry_for(net, source.frames, source.sample_rate, segment_seconds)
    if geo.model_frames > 2**32 - 1:
        raise LimitError("audio too long")
    precision = net.entropy_bottleneck.entropy_coder_precision
    header = {
        "modality": "audio",
        "model": loaded.header,
        "coder": {"name": entropy.CODER_NAME, "precision": precision},
        "quality": quality_text(quality),
        "audio": {"sample_rate": source.sample_rate, "model_rate": net.sample_rate, "channels": source.channels,
                  "frames": source.frames, "segment": geo.segment, "overlap": geo.overlap,
                  "coding": "mid-side" if source.channels == 2 else "mono", "subtype": source.subtype[:16]},
    }
    if with_envelope:
        header["audio"]["envelope"] = env_name
    scale = headroom_scale(source.peak())  # float input above full scale: coded at 1/scale (SPEC §7.2)
    if scale != 1.0:
        header["audio"]["scale"] = quality_text(scale)
    level = level_for(quality)
    counter = _CountingWriter(fileobj)
    coded_blocks = (_to_coded(b) for b in source.blocks())
    if scale != 1.0:
        coded_blocks = (b * np.float32(1.0 / scale) for b in coded_blocks)
    stream = _resampled(coded_blocks, source.sample_rate, net.sample_rate, source.channels, geo.model_frames)
    minor = 3 if scale != 1.0 or env_name != envelope.NAME else 2 if with_envelope else 0
    with container.ContainerWriter(counter, header, minor=minor) as writer:
        if source.tags:  # before the segments, so a streaming decoder knows them before any sample
            writer.add_chunk("TAGS", container.canonical_json(source.tags))
        def one(item) -> tuple[bytes, bytes | None]:
            i, seg = item
            latents, envelopes = [], []
            for c in range(source.channels):
                x = torch.from_numpy(np.ascontiguousarray(seg[:, c]))[None, None]
                with single_threaded_torch():
                    if effort:
                        y_q, z_sym = net.scaled_latent(net.g_a(x), level)
                        y_q = effort_mod.refine_latent(net, x, y_q, z_sym, level, effort, progress=progress)
                        z_sym, y_sym, y_idx = net.quantize(y_q, z_sym, level)
                    else:
                        z_sym, y_sym, y_idx = net.analyze(x, level)
                latents.append(encode_latents(net, z_sym, y_sym, y_idx, precision, _key(i, c)))
                if with_envelope:
                    envelopes.append(envelope.encode(seg[:, c], net.sample_rate, env_name))
            return _pack_channels(i, latents), _pack_channels(i, envelopes) if with_envelope else None

        for payload, env_payload in parallel_map(one, enumerate(_segments(stream, geo, source.channels)), threads):
            writer.add_chunk("SEGM", payload)
            if env_payload is not None:  # right after its segment: a streaming decoder has both together
                writer.add_chunk("ENVL", env_payload)
    seconds = source.frames / source.sample_rate
    stats = EncodeStats(counter.count, seconds, 8 * counter.count / 1000 / seconds if seconds else 0.0,
                        float(quality), loaded.variant.name, chosen_by=choice.describe())
    # on the rate ladder only a request below its lowest rung is out of range (the top rung may undershoot)
    off = kbps is not None and (stats.kbps / kbps - 1 > 0.2 if laddered else abs(stats.kbps / kbps - 1) > 0.2)
    if kbps is not None and stats.kbps and float(quality) in (lo, hi) and off:
        end = "lowest" if float(quality) == lo else "highest"
        stats.warning = (f"{kbps:g} kbps is outside the range of the {loaded.variant.name} model: its {end} "
                         f"quality measured {stats.kbps:.2f} kbps")
        warnings.warn(stats.warning, RateWarning, stacklevel=2)
    return stats


MAX_SCALE = 1 << 24  # largest audio.scale a file may declare


def headroom_scale(peak: float) -> float:
    """1.0 for audio within full scale, else the peak rounded up to 3 decimals: the encoder codes
    the samples divided by it, the decoder multiplies them back (float outputs keep the level)."""
    if not peak > 1.0:
        return 1.0
    return min(float(MAX_SCALE), math.ceil(peak * 1000.0) / 1000.0)


def _key(segment: int, channel: int) -> int:
    return (2 * segment + channel) & 0xFFFFFFFF


class _CountingWriter:
    def __init__(self, f):
        self.f, self.count = f, 0

    def write(self, b) -> int:
        self.count += len(b)
        return self.f.write(b)

    def flush(self):
        if hasattr(self.f, "flush"):
            self.f.flush()


def compress(data: np.ndarray, samplerate: int, kbps: float | None = None, *, quality: float | None = None,
             model=None, envelope_on: bool | None = None, segment_seconds: float | None = None,
             threads: int | None = None, effort: int = 0) -> bytes:
    """(frames, channels) or (frames,) int/float array -> aec bytes (options as encode's)."""
    buf = io.BytesIO()
    encode(audio_io.array_source(data, samplerate), buf, kbps, quality=quality, model=model, envelope_on=envelope_on,
           segment_seconds=segment_seconds, threads=threads, effort=effort)
    return buf.getvalue()


def write(file, data: np.ndarray, samplerate: int, kbps: float | None = None, *, quality: float | None = None,
          model=None) -> None:
    """Like soundfile.write, to an .aec path or binary file object."""
    blob = compress(data, samplerate, kbps, quality=quality, model=model)
    if hasattr(file, "write"):
        file.write(blob)
    else:
        with open(file, "wb") as f:
            f.write(blob)


# ---------------------------------------------------------------------------------------------
# decoding


@dataclass
class AudioInfo:
    header: dict
    sample_rate: int
    model_rate: int
    channels: int
    frames: int
    segment: int
    overlap: int
    subtype: str
    quality: float
    model: registry.ModelVariant | None
    envelope: bool = False  # ENVL chunks follow the SEGM chunks (SPEC §7.1)
    scale: float = 1.0  # decoded samples are multiplied by it (float input above full scale, SPEC §7.2)

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def parse_audio_header(header: dict) -> AudioInfo:
    """Validate every field that sizes work or memory before anything is decoded."""
    if header.get("modality") != "audio":
        raise HeaderError(f"not an audio file (modality {header.get('modality')!r})")
    a, model, coder = header.get("audio"), header.get("model"), header.get("coder")
    if not isinstance(a, dict) or not isinstance(model, dict) or not isinstance(coder, dict):
        raise HeaderError("audio header lacks its audio, model or coder object")
    rate = int_field(a, "sample_rate", audio_io.MIN_RATE, audio_io.MAX_RATE)
    model_rate = int_field(a, "model_rate", audio_io.MIN_RATE, audio_io.MAX_RATE)
    channels = int_field(a, "channels", 1, audio_io.MAX_CHANNELS)
    frames = int_field(a, "frames", 0, 2**32 - 1)
    segment = int_field(a, "segment", 1, MAX_SEGMENT)
    overlap = int_field(a, "overlap", 0, segment)
    if model_frames(frames, rate, model_rate) > 2**32 - 1:
        raise LimitError("audio too long at the model rate")
    if a.get("coding") != ("mid-side" if channels == 2 else "mono"):
        raise HeaderError(f"coding {a.get('coding')!r} does not fit {channels} channel(s)")
    subtype = a.get("subtype", "PCM_16")
    if not isinstance(subtype, str) or len(subtype) > 16:
        raise HeaderError("bad subtype")
    env = a.get("envelope")
    if env is not None and env not in envelope.VARIANTS:
        raise HeaderError(f"unknown envelope {env!r} (this reader knows {', '.join(envelope.VARIANTS)})")
    lay = envelope.VARIANTS[env].layouts.get(model_rate) if env is not None else None
    if env is not None and (lay is None or segment % lay.hop or overlap % lay.hop):
        rates = sorted(envelope.VARIANTS[env].layouts)
        raise HeaderError(f"envelope {env!r} needs a model rate of {rates} Hz and segments "
                          "in whole hops")
    scale = 1.0
    if "scale" in a:
        try:
            scale = float(str(a["scale"])) if isinstance(a["scale"], str) else float("nan")
        except ValueError:
            scale = float("nan")
        if not 1.0 < scale <= MAX_SCALE:
            raise HeaderError(f"bad scale {a['scale']!r} (a decimal string in (1, {MAX_SCALE}])")
    quality, variant = parse_coding_fields(header)
    return AudioInfo(header, rate, model_rate, channels, frames, segment, overlap, subtype, quality, variant,
                     env is not None, scale)


def read_info(data_or_file) -> AudioInfo:
    """Header of an aec audio file, validated; decodes nothing."""
    return parse_audio_header(container.ContainerReader(data_or_file).header)


@dataclass
class Decoded:
    """A decode in progress: geometry and tags known up front, samples as blocks (output rate)."""

    info: AudioInfo
    sample_rate: int
    tags: dict
    blocks: Iterator[np.ndarray]


def decode(data_or_file, *, sample_rate: int | None = None, model=None, start_segment: int = 0,
           threads: int | None = None) -> Decoded:
    """Start decoding: validates the header and the model, returns a block iterator.

    ``sample_rate``: output rate (default: the original rate; the model rate avoids a resampling).
    ``start_segment``: begin at that segment, found through the chunk index (seekable input);
    the output then starts at the segment's first sample (``segment_start(...)`` says where).
    ``threads``: segments decoded side by side (as encode's)."""
    reader = container.ContainerReader(data_or_file)
    info = parse_audio_header(reader.header)
    loaded = model_for(info, model)
    net = loaded.net
    if getattr(net, "sample_rate", None) != info.model_rate:
        raise HeaderError(f"model rate {info.model_rate} does not match the model's {getattr(net, 'sample_rate', None)}")
    if info.segment % net.align or info.overlap % net.align or info.overlap == 0:
        raise HeaderError(f"segment {info.segment} / overlap {info.overlap} do not fit the model's alignment {net.align}")
    out_rate = info.sample_rate if sample_rate is None else int(sample_rate)
    if not audio_io.MIN_RATE <= out_rate <= audio_io.MAX_RATE:
        raise InputError(f"output sample rate {out_rate} outside [{audio_io.MIN_RATE}, {audio_io.MAX_RATE}]")
    geo = Geometry(model_frames(info.frames, info.sample_rate, info.model_rate), info.segment, info.overlap, net.align)
    out_frames = model_frames(info.frames, info.sample_rate, out_rate) if sample_rate is not None else info.frames
    if not isinstance(start_segment, int) or not 0 <= start_segment <= max(0, geo.count - 1):
        raise InputError(f"start segment {start_segment!r} outside [0, {max(0, geo.count - 1)}]")
    if start_segment:
        out_frames -= segment_start(info, start_segment, out_rate)
    # TAGS come before the first SEGM: read them now, keep that SEGM (or a misplaced ENVL, which
    # the block iterator refuses) for the block iterator
    tags: dict = {}
    chunks = reader.chunks() if not start_segment else _indexed_chunks(reader, start_segment, tags)
    first = None
    for tag, payload in chunks:
        if tag in ("SEGM", "ENVL"):
            first = (tag, payload)
            break
        if tag == "TAGS":
            tags.update(_parse_tags(payload))

    def all_chunks():
        if first is not None:
            yield first
            yield from chunks

    def model_rate_blocks() -> Iterator[np.ndarray]:
        prev_tail = None
        n = start_segment
        def numbered():
            """(index, SEGM payload, ENVL payload or None): each ENVL right after its SEGM."""
            k = start_segment
            pending = None
            for tag, payload in all_chunks():
                if tag == "ENVL" and info.envelope:
                    if pending is None:
                        raise FormatError("ENVL chunk without its segment (SEGM) before it")
                    yield k, pending, payload
                    k, pending = k + 1, None
                if tag != "SEGM":
                    continue
                if pending is not None:
                    raise FormatError(f"SEGM chunk {k} has no ENVL chunk after it")
                if k >= geo.count:
                    raise FormatError(f"more SEGM chunks than the {geo.count} the header implies")
                if info.envelope:
                    pending = payload
                else:
                    yield k, payload, None
                    k += 1
            if pending is not None:
                raise FormatError(f"SEGM chunk {k} has no ENVL chunk after it")

        for seg in parallel_map(lambda item: _decode_segment(net, item[1], item[0], geo, info, item[2]), numbered(),
                                threads):
            keep = geo.output_length(n)
            core = seg[:keep].copy()
            if prev_tail is not None:
                o = min(len(prev_tail), keep)
                w = _fade(len(prev_tail))[:o]
                core[:o] = prev_tail[:o] * (1 - w) + core[:o] * w
            prev_tail = seg[geo.segment : geo.segment + geo.overlap] if len(seg) > geo.segment else None
            n += 1
            yield core
        if n != geo.count:
            raise FormatError(f"file has {n} SEGM chunks, the header implies {geo.count}")

    coded = _resampled(model_rate_blocks(), info.model_rate, out_rate, info.channels, out_frames)
    blocks = (np.clip(_from_coded(b), -1.0, 1.0) for b in coded)
    if info.scale != 1.0:  # the input's headroom: back to its level (float outputs keep it)
        blocks = (b * np.float32(info.scale) for b in blocks)
    return Decoded(info, out_rate, tags, blocks)


def segment_start(info: AudioInfo, index: int, rate: int) -> int:
    """First output sample (at ``rate``) of segment ``index``."""
    return model_frames(index * info.segment, info.model_rate, rate)


def _indexed_chunks(reader: container.ContainerReader, start: int, tags: dict) -> Iterator[tuple[str, bytes]]:
    """TAGS, then the chunks from SEGM number ``start`` on (with their ENVL), read through the index."""
    index = reader.index()
    for c in index:
        if c.tag == "TAGS":
            tags.update(_parse_tags(reader.read(c)))
    segments = [pos for pos, c in enumerate(index) if c.tag == "SEGM"]
    for c in index[segments[start]:] if start < len(segments) else []:
        if c.tag in ("SEGM", "ENVL"):
            yield c.tag, reader.read(c)


def _parse_tags(payload: bytes) -> dict:
    try:
        tags = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise FormatError("TAGS chunk is not UTF-8 JSON") from None
    if not isinstance(tags, dict):
        raise FormatError("TAGS chunk is not a JSON object")
    return {k: v for k, v in tags.items() if k in audio_io.TAG_FIELDS and isinstance(v, str)}


def _decode_segment(net, payload: bytes, index: int, geo: Geometry, info: AudioInfo,
                    env_payload: bytes | None = None) -> np.ndarray:
    """SEGM payload (and its ENVL payload) -> model-rate samples (coded_length, channels), float32."""
    import torch

    length = geo.coded_length(index)
    frames_latent = length // net.hop
    out = np.empty((length, info.channels), np.float32)
    for c, data in enumerate(_channel_payloads(payload, index, info.channels, "SEGM")):
        y_sym, means = decode_latents(net, data, (net.N, frames_latent // 4),
                                      info.header["coder"]["precision"], _key(index, c), "SEGM chunk")
        with torch.no_grad(), single_threaded_torch():
            out[:, c] = net.synthesize(y_sym, means, level_for(info.quality))[0, 0].numpy()
    if env_payload is not None:
        for c, data in enumerate(_channel_payloads(env_payload, index, info.channels, "ENVL")):
            name = info.header["audio"]["envelope"]
            q = envelope.decode(data, length, info.model_rate, name)
            out[:, c] = envelope.apply(out[:, c], q, info.model_rate, name)
    return out


def _pack_channels(index: int, payloads: list[bytes]) -> bytes:
    """u32 segment index | per channel: u32 n | n bytes (the layout of SEGM and ENVL chunks)."""
    return SEGMENT_HEAD.pack(index) + b"".join(CHANNEL_HEAD.pack(len(p)) + p for p in payloads)


def _channel_payloads(payload: bytes, index: int, channels: int, what: str) -> list[bytes]:
    """u32 segment index | per channel: u32 n | n bytes  ->  the channel byte strings."""
    if len(payload) < SEGMENT_HEAD.size:
        raise FormatError(f"{what} chunk shorter than its header")
    (stored,) = SEGMENT_HEAD.unpack_from(payload)
    if stored != index:
        raise FormatError(f"{what} chunk {index} says it is segment {stored}")
    pos, out = SEGMENT_HEAD.size, []
    for _ in range(channels):
        if pos + CHANNEL_HEAD.size > len(payload):
            raise FormatError(f"{what} chunk truncated")
        (n,) = CHANNEL_HEAD.unpack_from(payload, pos)
        pos += CHANNEL_HEAD.size
        if pos + n > len(payload):
            raise FormatError(f"{what} channel payload overruns its chunk")
        out.append(payload[pos : pos + n])
        pos += n
    if pos != len(payload):
        raise FormatError(f"{what} chunk has trailing bytes")
    return out


def decompress(data, *, sample_rate: int | None = None, model=None, threads: int | None = None) -> tuple[np.ndarray, int]:
    """aec bytes (or binary file object) -> (float32 array (frames, channels), samplerate).

    Samples are within [-1, 1], or [-s, s] for float input that peaked above full scale (the
    header's ``audio.scale`` s, SPEC §7.2)."""
    dec = decode(data, sample_rate=sample_rate, model=model, threads=threads)
    expected = model_frames(dec.info.frames, dec.info.sample_rate, dec.sample_rate)
    if expected * dec.info.channels * 4 > MAX_ARRAY_BYTES:
        raise LimitError(f"{expected} frames do not fit in memory as one array; decode to a file instead")
    data_out = np.empty((expected, dec.info.channels), np.float32)
    pos = 0
    for block in dec.blocks:
        if pos + len(block) > expected:
            raise FormatError("decoded more samples than the header declares")
        data_out[pos : pos + len(block)] = block
        pos += len(block)
    if pos != expected:
        raise FormatError(f"decoded {pos} frames, the header declares {expected}")
    return data_out, dec.sample_rate


def read(file, *, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Like soundfile.read for .aec files: (float32 array (frames, channels), samplerate)."""
    if hasattr(file, "read"):
        return decompress(file.read(), sample_rate=sample_rate)
    with open(file, "rb") as f:
        return decompress(f.read(), sample_rate=sample_rate)
