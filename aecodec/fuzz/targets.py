"""What a case runs through, and the seed files it is made from.

    target "container"  ContainerReader: every chunk streamed, then random access through the index
    target "image"      image.decompress_image with the tiny model, then a PNG written
    target "audio"      audio.decompress with the tiny audio model, then a WAV written
    outcome_of(target, data) -> ("ok" | AecError class name | "CRASH:<type>", message)

Seeds are small valid files (made here with the tiny models of ``aecodec.testing``) plus the
golden vectors of a ``vectors`` folder (bitstream/vectors/ in a checkout), which the caller
names: this package does not assume it sits in a checkout. ``build_pool`` parses them once.
"""

from __future__ import annotations

import functools
import io
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aecodec import container
from aecodec.errors import AecError

AUDIO_MODEL_ID = 65534  # the registry id aecodec.testing.tiny_audio_model gives its network
ALIGN = 1280  # the tiny audio model's alignment (segments and overlaps are multiples of it)
MAX_WRITTEN_SAMPLES = 1 << 18  # decoded audio up to this many samples is also written as WAV
AUDIO_TAGS = {"title": "fuzz \u00e9\u4e2d", "artist": "aecodec", "comment": "x" * 300, "date": "2024"}
AUDIO_VECTOR = "audio-speech-6k-stereo.aec"  # the shipped speech model's vector, an audio seed

# ---------------------------------------------------------------------------------------------
# the tiny models


@functools.cache
def image_model():
    """The seeded tiny random image model of the unit tests (N=16, M=24), built once."""
    from aecodec.testing import tiny_model

    return tiny_model()


@functools.cache
def audio_model():
    """The seeded tiny random audio model of the unit tests (16 kHz, hop 320, align 1280), built once."""
    from aecodec.testing import tiny_audio_model

    model = tiny_audio_model()
    assert model.variant.id == AUDIO_MODEL_ID, model.variant.id
    return model


# ---------------------------------------------------------------------------------------------
# targets: decode fully, raise AecError on bad input


def run_container(data: bytes) -> None:
    """Stream every chunk (CRC, index, trailer), then random access through the index."""
    reader = container.ContainerReader(data)
    for _ in reader.chunks():
        pass
    reader = container.ContainerReader(data)
    for chunk in reader.index():
        reader.read(chunk)


def run_image(data: bytes) -> None:
    """Full decode with the tiny model, then write the result as PNG (ICC/EXIF from the file)."""
    from aecodec import image as image_api
    from aecodec.io import image as image_io

    # tiles one after another: which of two bad tiles is reported first must not depend on the cores
    image = image_api.decompress_image(data, model=image_model(), threads=1)
    info = image_api.read_info(data)
    if image.size != (info.width, info.height):
        raise AssertionError(f"decoded {image.size}, header says {info.width}×{info.height}")
    if info.width * info.height <= 1 << 20:  # writing big PNGs only costs time, in Pillow
        image_io.save_image(image, io.BytesIO(), "PNG")


def run_audio(data: bytes) -> None:
    """Full decode with the tiny audio model (``audio.decompress``), checked against the header,
    then written as WAV with the file's subtype and tags (what ``aecodec decode`` does)."""
    import numpy as np

    from aecodec import audio
    from aecodec.io import audio as audio_io

    model = audio_model()
    samples, rate = audio.decompress(data, model=model, threads=1)  # one segment after another, as images
    info = audio.read_info(data)
    if rate != info.sample_rate or samples.shape != (info.frames, info.channels) or samples.dtype != np.float32:
        raise AssertionError(f"decoded {samples.shape} {samples.dtype} at {rate} Hz, header says "
                             f"{info.frames}×{info.channels} at {info.sample_rate} Hz")
    if samples.size and not (np.isfinite(samples).all() and np.abs(samples).max() <= 1.0):
        raise AssertionError("decoded samples are not finite or outside [-1, 1]")
    if samples.size <= MAX_WRITTEN_SAMPLES:
        tags = audio.decode(data, model=model).tags  # reads up to the first SEGM only
        with audio_io.open_writer(io.BytesIO(), rate, info.channels, "WAV", info.subtype, tags) as out:
            out.write(samples)


# ---------------------------------------------------------------------------------------------
# seed files: (name, bytes); each function gets the folder of golden vectors


def _smooth(w: int, h: int, seed: int = 0, channels: int = 3):
    from aecodec.testing import smooth_image

    return smooth_image(w, h, seed=seed, channels=channels)


def image_seeds(vectors: Path) -> list[tuple[str, bytes]]:
    """Small valid image files of the tiny model: modes, tiles, metadata, 1×1, 16-bit (all made
    here: ``vectors`` is not read)."""
    import numpy as np
    from PIL import Image

    from aecodec import image as image_api

    model = image_model()
    rgb = Image.fromarray(_smooth(40, 30))
    alpha = Image.fromarray(_smooth(40, 30, seed=3, channels=1)[:, :, 0])
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    la = Image.merge("LA", (rgb.convert("L"), alpha)).crop((0, 0, 24, 20))
    l16 = Image.fromarray(np.asarray(rgb.convert("L").crop((0, 0, 20, 12))).astype(np.uint16) * 257)
    meta = Image.fromarray(_smooth(48, 32, seed=5))
    exif = Image.Exif()
    exif[0x010F] = "aecodec fuzz"
    meta.info["icc_profile"] = b"fake icc profile bytes" * 2
    meta.info["exif"] = exif.tobytes()
    spec = [
        ("rgb-100x70-tile64-q6", _smooth(100, 70), 6, 64),
        ("rgb-130x70-tile64-q2", _smooth(130, 70, seed=1), 2, 64),
        ("rgb-72x40-q5", _smooth(72, 40, seed=2), 5, 1024),
        ("rgba-40x30-q8", rgba, 8, 1024),
        ("la-24x20-q4", la, 4, 1024),
        ("l-33x17-q3", rgb.convert("L").crop((0, 0, 33, 17)), 3, 1024),
        ("l16-20x12-q4", l16, 4, 1024),
        ("rgb-icc-exif-48x32-q4", meta, 4, 1024),
        ("rgb-1x1-q1", _smooth(1, 1), 1, 1024),
    ]
    return [(name, image_api.compress_image(im, q, model=model, tile=tile)) for name, im, q, tile in spec]


def vector_seeds(vectors: Path) -> list[tuple[str, bytes]]:
    """The golden vectors in ``vectors`` (their image names the shipped model: ModelError)."""
    return [(f"vector-{p.stem}", p.read_bytes()) for p in sorted(Path(vectors).glob("*.aec"))]


def audio_seeds(vectors: Path) -> list[tuple[str, bytes]]:
    """Small valid audio files of the tiny audio model: mono, stereo (resampled, mid/side), three
    segments, TAGS, zero length; plus the shipped-model vector (ModelError with the tiny model)."""
    import numpy as np

    from aecodec import audio
    from aecodec.io import audio as audio_io
    from aecodec.testing import gliding_tone

    model = audio_model()

    def encode(samples, rate: int, quality: float, tags=None, segment_seconds: float | None = None) -> bytes:
        source = audio_io.array_source(samples, rate)
        source.tags = dict(tags or {})
        buf = io.BytesIO()
        audio.encode(source, buf, quality=quality, model=model, segment_seconds=segment_seconds)
        return buf.getvalue()

    spec = [
        ("audio-mono-16k-0.3s-q2", gliding_tone(0.3, 16000), 16000, 2, None, None),
        ("audio-stereo-44k-0.2s-q2", gliding_tone(0.2, 44100, channels=2), 44100, 2, None, None),
        # three segments of 2,560 model-rate samples (0.16 s; the encoder's default is 10 s: such a
        # file is 20+ s long and every case made from it would cost ~0.3 s): cross-fades, order
        ("audio-mono-8k-3seg-q1", gliding_tone(0.4, 8000, seed=2), 8000, 1, None, 0.16),
        ("audio-tags-22k-0.25s-q3", gliding_tone(0.25, 22050, seed=1), 22050, 3, AUDIO_TAGS, None),
        ("audio-empty-16k", np.zeros((0, 1), np.float32), 16000, 2, None, None),
    ]
    seeds = [(name, encode(x, rate, q, tags, seg)) for name, x, rate, q, tags, seg in spec]
    vector = Path(vectors) / AUDIO_VECTOR
    if vector.exists():  # the shipped speech model's file: ModelError with the tiny model
        seeds.append((f"vector-{vector.stem}", vector.read_bytes()))
    return seeds


# ---------------------------------------------------------------------------------------------
# the table of targets


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], object]  # raises AecError on bad input; anything else is a crash
    seeds: Callable[[Path], list[tuple[str, bytes]]] = lambda vectors: []  # (vectors folder) -> seed files


TARGETS: dict[str, Target] = {
    "container": Target(run_container, vector_seeds),
    "image": Target(run_image, image_seeds),
    "audio": Target(run_audio, audio_seeds),
}
MODEL_OF_TARGET = {"image": image_model, "audio": audio_model}  # the tiny model an outcome depends on
TINY_MODEL_NAMES = {
    "image": "aecodec.testing.tiny_model (N=16, M=24, torch.manual_seed(1234))",
    "audio": "aecodec.testing.tiny_audio_model (16 kHz, strides 2·4·5·8, M=16, N=8, 3 levels, "
             "torch.manual_seed(0))",
}
TARGET_DESCRIPTIONS = {
    "container": "the container parser",
    "image": "full image decoding (tiny seeded image model, then PNG writing)",
    "audio": "full audio decoding (audio.decompress with the tiny seeded audio model, one segment at a time, "
             "then WAV writing)",
}


def model_weights(target: str) -> str | None:
    """The tiny model's weights hash (16 hex digits) a target's outcomes depend on; None: no model."""
    return MODEL_OF_TARGET[target]().weights_sha256[:16] if target in MODEL_OF_TARGET else None


def outcome_of(target: str, data: bytes) -> tuple[str, str]:
    """("ok" | AecError class name | "CRASH:<type>", message)."""
    try:
        TARGETS[target].run(data)
    except AecError as exc:
        return type(exc).__name__, str(exc)
    except Exception as exc:  # noqa: BLE001 - the thing we are looking for
        return f"CRASH:{type(exc).__name__}", f"{exc}\n{traceback.format_exc(limit=-8)}"
    return "ok", ""


def replay(data: bytes, targets=("container", "image")) -> dict[str, str]:  # ("audio",) for audio files
    """Outcome class of each target (what the corpus manifest records)."""
    return {t: outcome_of(t, data)[0] for t in targets}


# ---------------------------------------------------------------------------------------------
# the seed pool


@dataclass
class Seed:
    name: str
    data: bytes
    header: dict | None = None  # parsed when the file unpacks (else None, and so are chunks)
    chunks: list[tuple[str, bytes]] | None = None


def load_pool(named: list[tuple[str, bytes]]) -> list[Seed]:
    """(name, bytes) -> Seeds, each unpacked once (what a worker rebuilds from the bytes it is sent)."""
    pool = []
    for name, data in named:
        try:
            header, chunks = container.unpack(data)
        except AecError:
            header = chunks = None
        pool.append(Seed(name, data, header, chunks))
    return pool


def build_pool(targets, vectors: Path) -> list[Seed]:
    """The seed files of every target in order, the same bytes kept once; ``vectors``: the golden
    vectors' folder (bitstream/vectors/ of a checkout)."""
    named = []
    for t in targets:
        named += TARGETS[t].seeds(Path(vectors))
    seen, unique = set(), []
    for name, data in named:
        if data not in seen:
            seen.add(data)
            unique.append((name, data))
    return load_pool(unique)
