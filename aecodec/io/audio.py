"""Audio files in and out: soundfile (libsndfile) for WAV/FLAC/Ogg/MP3/AIFF, block-wise.

Samples are float32 arrays of shape (frames, channels) in [-1, 1]. Readers
yield blocks so a one-hour file never sits in memory; NaN/Inf samples are a
typed error (they would poison the encoder), not silently zeroed.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np

from aecodec.errors import InputError
from aecodec.io.formats import AUDIO_OUTPUTS as OUTPUT_FORMATS  # noqa: F401 - the names used so far
from aecodec.io.formats import AUDIO_SUFFIXES  # noqa: F401
from aecodec.io.formats import audio_output_format as output_format  # noqa: F401

# soundfile's text metadata fields (WAV INFO / FLAC Vorbis comments / Ogg comments)
TAG_FIELDS = ("title", "copyright", "software", "artist", "comment", "date", "album", "license", "tracknumber", "genre")
MAX_TAG_CHARS = 4096
MAX_CHANNELS = 2
MIN_RATE, MAX_RATE = 1000, 768000
BLOCK = 1 << 16


@dataclass
class AudioSource:
    """An open audio input: its geometry, tags, and a block iterator (float32, (n, channels))."""

    sample_rate: int
    channels: int
    frames: int
    subtype: str
    tags: dict = field(default_factory=dict)
    _file: object = None

    def blocks(self, size: int = BLOCK) -> Iterator[np.ndarray]:
        import soundfile as sf

        f: sf.SoundFile = self._file
        done = 0
        while done < self.frames:
            try:
                block = f.read(min(size, self.frames - done), dtype="float32", always_2d=True)
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise InputError(f"cannot read audio samples: {exc}") from None
            if len(block) == 0:
                raise InputError(f"audio stream ended after {done} of {self.frames} frames")
            check_finite(block)
            done += len(block)
            yield block

    def peak(self) -> float:
        """Largest absolute sample. Integer formats cannot exceed 1.0; float ones can (headroom):
        for those one pass over the (seekable) stream, which is then rewound."""
        if self.subtype not in ("FLOAT", "DOUBLE") or not getattr(self._file, "seekable", lambda: False)():
            return 1.0
        import soundfile as sf

        peak = 0.0
        try:
            while True:
                block = self._file.read(BLOCK, dtype="float32", always_2d=True)
                if len(block) == 0:
                    break
                check_finite(block)
                peak = max(peak, float(np.abs(block).max()))
            self._file.seek(0)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise InputError(f"cannot read audio samples: {exc}") from None
        return peak

    def excerpt(self, plan) -> np.ndarray | None:
        """The frames of ``plan`` ((start, length) pairs), mixed to mono and joined, then rewound;
        None when the stream cannot seek back (the caller then decides without the samples)."""
        f = self._file
        if f is None or not getattr(f, "seekable", lambda: False)():
            return None
        import soundfile as sf

        parts = []
        try:
            for start, n in plan:
                f.seek(start)
                block = f.read(n, dtype="float32", always_2d=True)
                check_finite(block)
                parts.append(block.mean(axis=1))
            f.seek(0)
        except (RuntimeError, sf.LibsndfileError) as exc:
            raise InputError(f"cannot read audio samples: {exc}") from None
        return np.concatenate(parts) if parts else np.zeros(0, np.float32)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


def check_finite(samples: np.ndarray) -> None:
    if not np.isfinite(samples).all():
        raise InputError("audio contains NaN or infinite samples")


def open_audio(src: str | Path | bytes | BinaryIO) -> AudioSource:
    """Open an audio file (path, bytes or binary file object) for block-wise reading."""
    import soundfile as sf

    if isinstance(src, (bytes, bytearray)):
        src = io.BytesIO(src)
    try:
        f = sf.SoundFile(src if not isinstance(src, Path) else str(src))
    except (RuntimeError, sf.LibsndfileError, TypeError) as exc:
        raise InputError(f"not a readable audio file: {exc}") from None
    try:
        if f.channels < 1 or f.channels > MAX_CHANNELS:
            raise InputError(f"{f.channels} channels: aecodec codes mono and stereo audio; downmix first "
                             "(e.g. ffmpeg -ac 2)")
        if not MIN_RATE <= f.samplerate <= MAX_RATE:
            raise InputError(f"sample rate {f.samplerate} Hz outside [{MIN_RATE}, {MAX_RATE}]")
        frames = f.frames
        if (f.subtype or "").startswith("MPEG") and f.seekable():
            frames = _count_frames(f)  # libsndfile's MP3 length is an estimate (bitrate × size)
        if frames < 0 or frames > 2**32 - 1:
            raise InputError("audio length unknown or too long")
        tags = {}
        for name in TAG_FIELDS:
            try:
                value = getattr(f, name)
            except Exception:  # noqa: BLE001 - libsndfile returns odd things for broken metadata
                continue
            if isinstance(value, str) and value:
                tags[name] = value[:MAX_TAG_CHARS]
        return AudioSource(f.samplerate, f.channels, frames, f.subtype or "PCM_16", tags, f)
    except BaseException:
        f.close()
        raise


def _count_frames(f) -> int:
    """Frames a seekable stream really holds (one decoding pass, bounded memory), then rewind."""
    import soundfile as sf

    n = 0
    try:
        while True:
            got = len(f.read(BLOCK, dtype="float32", always_2d=True))
            if not got:
                break
            n += got
        f.seek(0)
    except (RuntimeError, sf.LibsndfileError) as exc:
        raise InputError(f"cannot read audio samples: {exc}") from None
    return n


def array_source(samples: np.ndarray, sample_rate: int) -> AudioSource:
    """An in-memory (frames, channels) or (frames,) array as an AudioSource."""
    a = np.asarray(samples)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise InputError(f"audio array must have shape (frames,) or (frames, channels), got {a.shape}")
    if not 1 <= a.shape[1] <= MAX_CHANNELS:
        raise InputError(f"{a.shape[1]} channels: aecodec codes mono and stereo audio")
    if not isinstance(sample_rate, (int, np.integer)) or not MIN_RATE <= int(sample_rate) <= MAX_RATE:
        raise InputError(f"sample rate must be an integer in [{MIN_RATE}, {MAX_RATE}], got {sample_rate!r}")
    if a.dtype.kind == "i":
        scale = float(2 ** (8 * a.dtype.itemsize - 1))
        subtype = {2: "PCM_16", 4: "PCM_32", 1: "PCM_S8"}.get(a.dtype.itemsize, "PCM_16")
        a = a.astype(np.float32) / scale
    elif a.dtype.kind == "f":
        subtype = "FLOAT" if a.dtype.itemsize == 4 else "DOUBLE"
        a = a.astype(np.float32)
        check_finite(a)
    else:
        raise InputError(f"audio samples must be integers or floats, got {a.dtype}")

    class _ArrayFile:
        def __init__(self, arr):
            self.arr, self.pos = arr, 0

        def read(self, n, dtype, always_2d):
            out = self.arr[self.pos : self.pos + n]
            self.pos += len(out)
            return out

        def seekable(self):
            return True

        def seek(self, pos):
            self.pos = pos

        def close(self):
            pass

    return AudioSource(int(sample_rate), a.shape[1], a.shape[0], subtype, {}, _ArrayFile(a))


# What each output format is written with. The original sample format is kept where the output
# format holds it; the input's codec (MP3's MPEG_LAYER_III, Vorbis, ADPCM, ...) is never reused
# for a PCM container: libsndfile refuses most such pairs ("unsupported encoding").
PCM_SUBTYPES = ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")
OUTPUT_SUBTYPES = {
    "WAV": ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
    "AIFF": ("PCM_S8", "PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE"),
    "FLAC": ("PCM_S8", "PCM_16", "PCM_24"),
    "OGG": ("VORBIS",),
}


def output_subtype(fmt: str, wanted: str | None) -> str:
    """The original subtype when the output format can hold it (and it is a sample format, not
    another codec), else the nearest one it holds: float to FLAC is 24-bit, the rest 16-bit."""
    allowed = OUTPUT_SUBTYPES.get(fmt.upper(), ("PCM_16",))
    if wanted in allowed:
        return wanted
    if wanted in ("FLOAT", "DOUBLE", "PCM_32") and "PCM_24" in allowed:
        return "PCM_24"
    if wanted == "PCM_S8" and "PCM_U8" in allowed:
        return "PCM_U8"
    return "PCM_16" if "PCM_16" in allowed else allowed[0]


def open_writer(fileobj: BinaryIO, sample_rate: int, channels: int, fmt: str, subtype: str | None, tags: dict):
    import soundfile as sf

    f = sf.SoundFile(fileobj, "w", samplerate=sample_rate, channels=channels, format=fmt,
                     subtype=output_subtype(fmt, subtype))
    for name, value in tags.items():
        if name in TAG_FIELDS and isinstance(value, str):
            try:
                setattr(f, name, value)
            except Exception:  # noqa: BLE001 - a format that cannot carry a tag drops it
                pass
    return f
