"""Codec adapters for the audio benchmark: aecodec's audio API and Opus (libopus through PyAV).

    adapter = get_audio_codec("opus", kind="speech")
    data = adapter.encode(samples, rate, kbps)           float32 (frames, channels) ─> whole file as bytes
    decoded = adapter.decode(data, rate, frames)          bytes ─> float32 (frames, channels) at `rate`

Every adapter has `name`, `points` (the default target bitrates in kbit/s, lowest first),
`description` (one line for results files) and `settings` (exact encoder options). The bytes are
the whole file a user would store (Ogg pages and Opus headers, or the aec container), so the
measured bitrate 8 · bytes / duration is the real one.

Opus: PyAV's libopus encoder in an Ogg container (what opusenc writes), VBR (libopus default),
complexity 10, application voip for speech and audio for music. Opus takes 8/12/16/24/48 kHz input
directly; other rates (44.1 kHz) are resampled to 48 kHz with soxr (HQ) inside the timed encode.
Decoding goes through PyAV (FFmpeg's Opus decoder, which always outputs 48 kHz and honours the Ogg
pre-skip and end trimming), then soxr back to the reference rate, then cut or zero-padded to the
reference length (a no-op in practice: the decoded length matches exactly).
"""

from __future__ import annotations

import io

import numpy as np

AUDIO_CODEC_NAMES = ("aec", "opus")
KINDS = ("speech", "music")
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)


def _fit_length(x: np.ndarray, frames: int) -> np.ndarray:
    if len(x) >= frames:
        return x[:frames]
    return np.concatenate([x, np.zeros((frames - len(x), x.shape[1]), x.dtype)])


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return kind


class OpusCodec:
    """libopus through PyAV, Ogg Opus in memory, at a target bit rate (VBR)."""

    name = "opus"

    def __init__(self, kind: str = "speech"):
        self.kind = _check_kind(kind)
        self.application = "voip" if kind == "speech" else "audio"
        self.complexity = 10
        # libopus takes targets under 6 kbps but floors (about 5.6 kbps measured for 16 kHz speech in Ogg);
        # the 5 kbps point (about 6.1 measured) lets aec's ~6 kbps point be compared by interpolation
        self.points = [5.0, 6.0, 8.0, 12.0, 16.0, 24.0] if kind == "speech" else [12.0, 24.0, 48.0, 64.0]

    @property
    def description(self) -> str:
        import av

        return (f"Opus (libopus via PyAV {av.__version__}), Ogg container, VBR, complexity {self.complexity}, "
                f"application {self.application}, target bit rates {', '.join(f'{p:g}' for p in self.points)} kbps")

    @property
    def settings(self) -> dict:
        import av

        return {
            "encoder": "libopus (FFmpeg wrapper) via PyAV",
            "pyav": av.__version__,
            "libavcodec": ".".join(map(str, av.library_versions.get("libavcodec", ()))),
            "container": "ogg",
            "sample_format": "flt",
            "options": {"application": self.application, "compression_level": str(self.complexity),
                        "vbr": "on (libopus default)", "frame_duration": "20 ms (default)"},
            "bit_rate": "target kbps x 1000, total over channels",
            "input_rate": "the reference rate when Opus accepts it (8/12/16/24/48 kHz), else 48 kHz via soxr HQ",
            "decoder": "FFmpeg's opus decoder via PyAV at 48 kHz (pre-skip honoured), soxr HQ to the reference rate",
        }

    def encode(self, samples: np.ndarray, rate: int, kbps: float) -> bytes:
        import av

        x = np.asarray(samples, dtype=np.float32)
        x = x[:, None] if x.ndim == 1 else x
        channels = x.shape[1]
        if channels not in (1, 2):
            raise ValueError(f"Opus adapter codes mono or stereo, got {channels} channels")
        opus_rate = rate if rate in OPUS_RATES else 48000
        if opus_rate != rate:
            import soxr

            x = soxr.resample(x, rate, opus_rate, quality="HQ").astype(np.float32)
        layout = "mono" if channels == 1 else "stereo"
        buffer = io.BytesIO()
        with av.open(buffer, "w", format="ogg") as container:
            stream = container.add_stream("libopus", rate=opus_rate, layout=layout)
            stream.codec_context.format = "flt"  # float input: no 16-bit rounding before the encoder
            stream.bit_rate = int(round(kbps * 1000))
            stream.options = {"application": self.application, "compression_level": str(self.complexity)}
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout=layout)
            frame.sample_rate = opus_rate
            for packet in stream.encode(frame):
                container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
        return buffer.getvalue()

    def decode_native(self, data: bytes) -> tuple[np.ndarray, int]:
        """bytes -> (float32 (frames, channels), the decoder's rate: 48000)."""
        import av

        blocks = []
        with av.open(io.BytesIO(data), "r") as container:
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                array = frame.to_ndarray()
                if not frame.format.is_planar:  # interleaved: (1, frames * channels)
                    array = array.reshape(-1, len(frame.layout.channels)).T
                blocks.append(array.astype(np.float32, copy=False))
            rate = stream.rate
        out = np.concatenate(blocks, axis=1).T if blocks else np.zeros((0, 1), np.float32)
        return np.ascontiguousarray(out), int(rate)

    def decode(self, data: bytes, rate: int, frames: int) -> np.ndarray:
        decoded, native_rate = self.decode_native(data)
        if native_rate != rate:
            import soxr

            decoded = soxr.resample(decoded, native_rate, rate, quality="HQ").astype(np.float32)
        decoded = decoded.reshape(len(decoded), -1)
        return _fit_length(decoded, frames)


class AecAudioCodec:
    """aecodec.audio.compress / decompress with the speech or music model (or a LoadedModel for tests)."""

    name = "aec"

    def __init__(self, kind: str = "speech", model=None):
        self.kind = _check_kind(kind)
        self.model = model if model is not None else kind  # family name, model name or LoadedModel
        self.points = [3.0, 4.5, 6.0, 9.0, 12.0] if kind == "speech" else [12.0, 24.0, 48.0]

    def _loaded(self):
        from aecodec import audio, registry

        if isinstance(self.model, registry.LoadedModel):
            return self.model
        return registry.load(audio.FAMILY_MODELS.get(self.model, self.model))

    @property
    def description(self) -> str:
        loaded = self._loaded()
        return (f"aecodec ({loaded.variant.name}, weights {loaded.weights_sha256[:16]}), target bit rates "
                f"{', '.join(f'{p:g}' for p in self.points)} kbps (quality from the model's trained rates)")

    @property
    def settings(self) -> dict:
        import torch

        loaded = self._loaded()
        return {"model": loaded.variant.name, "model_id": loaded.variant.id, "weights_sha256": loaded.weights_sha256,
                "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
                "api": "aecodec.audio.compress(samples, rate, kbps, model=...) / aecodec.audio.decompress(blob)",
                "stereo": "mid/side, kbps is the total for the file"}

    def encode(self, samples: np.ndarray, rate: int, kbps: float) -> bytes:
        from aecodec import audio

        return audio.compress(samples, rate, kbps, model=self._loaded())

    def decode(self, data: bytes, rate: int, frames: int) -> np.ndarray:
        from aecodec import audio

        decoded, decoded_rate = audio.decompress(data, model=self._loaded())
        if decoded_rate != rate:
            raise RuntimeError(f"aec decoded at {decoded_rate} Hz, expected {rate} Hz")
        return _fit_length(decoded, frames)


def get_audio_codec(name: str, kind: str = "speech", model=None):
    """The adapter for a codec name in AUDIO_CODEC_NAMES; `model` overrides aec's model (tests)."""
    if name == "aec":
        return AecAudioCodec(kind, model)
    if name == "opus":
        return OpusCodec(kind)
    raise ValueError(f"unknown audio codec {name!r}; choose from {', '.join(AUDIO_CODEC_NAMES)}")
