"""Fuzzing harness for the container parser and full decoding of images and audio.

    python benchmarks/fuzz.py --cases 100000 --seed 0 --target container,image \\
        --out benchmarks/results/fuzz/fuzz_image.json [--corpus tests/fuzz_corpus]
    python benchmarks/fuzz.py --cases 100000 --seed 0 --target audio \\
        --out benchmarks/results/fuzz/fuzz_audio.json [--corpus tests/fuzz_corpus]

Every case is one byte string made from a seed file by one mutator (bit flips, byte and integer
sets, inserts, deletes, truncation, splicing two files, chunk-level edits re-packed with valid
CRCs, header JSON field edits, raw header text edits, preamble and index edits, forged files
whose tiles / segments pass their symbols CRC (any geometry, tile or segment size, extreme
symbols: the synthesis runs on them), random bytes, magic + random bytes, or the seed unchanged).
Seeds written by the tiny audio model get audio flavours of the chunk, header-field and forge
mutators (SEGM heads, TAGS payloads, the audio header fields); every other seed is mutated
exactly as before the audio target existed, so image runs keep their cases. Case ``i`` of seed
``s`` is a pure function of (s, i, the seed files): ``--replay I`` rebuilds and runs one case.
Tiles and segments are decoded one after another (``threads=1`` in every case)
so that the outcome of a file does not depend on the machine's core count.

Each case goes through every selected target. A target returns normally ("ok") or raises an
``aecodec.errors.AecError`` subclass (its class name is the outcome); anything else is a crash.
Cases run in a worker process (``spawn``). Before each case its address space is capped at
its current size plus 1 GiB (``RLIMIT_AS``), so allocating over 1 GB in one case becomes a
``MemoryError``, which is a crash; the peak RSS of each case above the RSS it started from is
measured too (``VmHWM``, reset through ``/proc/self/clear_refs``). A case over 5 s of CPU time is a hang; the supervisor also kills a worker that makes
no progress for ``--hard-timeout`` wall seconds (a real hang: Numba kernels cannot be
interrupted by signals), records that case as a hang and starts a new worker after it.

Targets: "container", "image", "audio". How to add one::

    def run_audio(data: bytes) -> None:          # decode fully; raise AecError on bad input
        audio.decompress(data, model=audio_model())

    TARGETS["audio"] = Target(run_audio, audio_seeds)   # audio_seeds() -> [(name, bytes), ...]

The tiny seeded random models are ``aecodec.testing.tiny_model`` and
``aecodec.testing.tiny_audio_model`` (the ones the unit tests use); the corpus replay test
(tests/test_fuzz_corpus.py) uses the same, through :func:`image_model` and :func:`audio_model`.
The corpus manifest keeps the files of each target set (``container,image``; ``audio``) apart: a
run with ``--corpus`` replaces only the files its own target set recorded.
"""

from __future__ import annotations

import argparse
import copy
import functools
import hashlib
import io
import json
import random
import re
import resource
import struct
import sys
import time
import traceback
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from aecodec import container  # noqa: E402
from aecodec.errors import AecError  # noqa: E402

HANG_SECONDS = 5.0  # CPU seconds of one case
MEMORY_HEADROOM = 1 << 30  # bytes of address space a case may add to the warmed-up worker
MAX_CORPUS_FILES = 60
MAX_CORPUS_BYTES = 20_000
MAX_REPROS_PER_KIND = 5  # crash reproducer files (and full tracebacks) kept per kind of crash
VECTORS = ROOT / "bitstream" / "vectors"

# ---------------------------------------------------------------------------------------------
# targets


@functools.lru_cache(maxsize=None)
def image_model():
    """The seeded tiny random image model of the unit tests (N=16, M=24), built once."""
    from aecodec.testing import tiny_model

    return tiny_model()


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
    from aecodec import codec
    from aecodec.io import image as image_io

    image = codec.decompress_image(data, model=image_model(), threads=1)  # see _worker: one after another
    info = codec.read_info(data)
    if image.size != (info.width, info.height):
        raise AssertionError(f"decoded {image.size}, header says {info.width}×{info.height}")
    if info.width * info.height <= 1 << 20:  # writing big PNGs only costs time, in Pillow
        image_io.save_image(image, io.BytesIO(), "PNG")


def _smooth(w: int, h: int, seed: int = 0, channels: int = 3):
    from aecodec.testing import smooth_image

    return smooth_image(w, h, seed=seed, channels=channels)


def image_seeds() -> list[tuple[str, bytes]]:
    """Small valid image files of the tiny model: modes, tiles, metadata, 1×1, 16-bit."""
    import numpy as np
    from PIL import Image

    from aecodec import codec

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
    return [(name, codec.compress_image(im, q, model=model, tile=tile)) for name, im, q, tile in spec]


def vector_seeds() -> list[tuple[str, bytes]]:
    """The golden vectors of bitstream/vectors/ (their image names the shipped model: ModelError)."""
    return [(f"vector-{p.stem}", p.read_bytes()) for p in sorted(VECTORS.glob("*.aec"))]


AUDIO_MODEL_ID = 65534  # the registry id aecodec.testing.tiny_audio_model gives its network


@functools.lru_cache(maxsize=None)
def audio_model():
    """The seeded tiny random audio model of the unit tests (16 kHz, hop 320, align 1280), built once."""
    from aecodec.testing import tiny_audio_model

    model = tiny_audio_model()
    assert model.variant.id == AUDIO_MODEL_ID, model.variant.id
    return model


MAX_WRITTEN_SAMPLES = 1 << 18  # decoded audio up to this many samples is also written as WAV


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


AUDIO_TAGS = {"title": "fuzz \u00e9\u4e2d", "artist": "aecodec", "comment": "x" * 300, "date": "2024"}


def audio_seeds() -> list[tuple[str, bytes]]:
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
    vector = VECTORS / "audio-speech-6k-stereo.aec"
    if vector.exists():  # the shipped speech model's file: ModelError with the tiny model
        seeds.append((f"vector-{vector.stem}", vector.read_bytes()))
    return seeds


@dataclass(frozen=True)
class Target:
    run: Callable[[bytes], object]  # raises AecError on bad input; anything else is a crash
    seeds: Callable[[], list[tuple[str, bytes]]] = list


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
# building containers with any header body (non-canonical, huge integers, ...)


def pack_raw(body: bytes, chunks: list[tuple[bytes | str, bytes]], *, major: int = container.MAJOR,
             minor: int = container.MINOR, flags: int = 0) -> bytes:
    """Like container.pack but with raw header bytes and any tags; CRCs and index are valid."""
    out = bytearray(container.PREAMBLE.pack(container.MAGIC, major, minor, flags, len(body), zlib.crc32(body)))
    out += body
    index = []
    for tag, payload in chunks:
        raw_tag = tag.encode("latin-1") if isinstance(tag, str) else bytes(tag)
        index.append(container.INDEX_ENTRY.pack(len(out), len(payload), raw_tag))
        out += _chunk(raw_tag, payload)
    index_offset = len(out)
    out += _chunk(b"INDX", b"".join(index))
    out += container.TRAILER.pack(index_offset, b"AEC\x1a")
    return bytes(out)


def _chunk(raw_tag: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(payload, zlib.crc32(raw_tag))
    return container.CHUNK_HEAD.pack(len(payload), raw_tag) + payload + container.CRC.pack(crc)


@dataclass
class Seed:
    name: str
    data: bytes
    header: dict | None = None
    chunks: list[tuple[str, bytes]] | None = None


def load_pool(named: list[tuple[str, bytes]]) -> list[Seed]:
    pool = []
    for name, data in named:
        try:
            header, chunks = container.unpack(data)
        except AecError:
            header = chunks = None
        pool.append(Seed(name, data, header, chunks))
    return pool


# ---------------------------------------------------------------------------------------------
# mutators: (rng, seed, pool) -> bytes

INTERESTING_BYTES = [0, 1, 0x7F, 0x80, 0xFE, 0xFF]
INTERESTING_INTS = [0, 1, 2, 3, 4, 12, 15, 16, 63, 64, 65, 255, 256, 1024, 4095, 4096, 4097, 65535, 65536,
                    (1 << 20), (1 << 30), (1 << 30) + 1, (1 << 31) - 1, 1 << 31, (1 << 32) - 1]


def _positions(rng: random.Random, n: int, k: int) -> list[int]:
    return [rng.randrange(n) for _ in range(k)] if n else []


def m_bitflip(rng, seed, pool):
    data = bytearray(seed.data)
    for p in _positions(rng, len(data), rng.choice([1, 1, 1, 2, 3, 8, 32])):
        data[p] ^= 1 << rng.randrange(8)
    return bytes(data)


def m_byteset(rng, seed, pool):
    data = bytearray(seed.data)
    for p in _positions(rng, len(data), rng.choice([1, 1, 2, 4])):
        data[p] = rng.choice(INTERESTING_BYTES + [rng.randrange(256)])
    return bytes(data)


def m_intset(rng, seed, pool):
    """An interesting u16/u32/u64 at a random offset, or over a length field."""
    data = bytearray(seed.data)
    if len(data) < 8:
        return bytes(data) + struct.pack("<I", rng.choice(INTERESTING_INTS))
    fmt = rng.choice(["<H", "<I", "<I", "<Q", ">I"])
    size = struct.calcsize(fmt)
    value = rng.choice(INTERESTING_INTS + [len(data), len(data) - 1, len(data) + 1, rng.getrandbits(8 * size)])
    value &= (1 << (8 * size)) - 1
    pos = rng.choice([8, 12, 6] + [rng.randrange(len(data) - size + 1)] * 3)
    data[pos : pos + size] = struct.pack(fmt, value)
    return bytes(data)


def m_insert(rng, seed, pool):
    data = seed.data
    pos = rng.randrange(len(data) + 1)
    n = rng.choice([1, 2, 4, 16, 64, 300])
    blob = rng.randbytes(n) if rng.random() < 0.5 or not data else data[rng.randrange(len(data)):][:n]
    return data[:pos] + blob + data[pos:]


def m_delete(rng, seed, pool):
    data = seed.data
    if not data:
        return data
    pos = rng.randrange(len(data))
    return data[:pos] + data[pos + rng.choice([1, 2, 4, 16, 64, 300]):]


def m_truncate(rng, seed, pool):
    data = seed.data
    r = rng.random()
    cut = rng.randrange(min(len(data), 64) + 1) if r < 0.3 else len(data) - rng.randrange(1, 40) if r < 0.6 \
        else rng.randrange(len(data) + 1)
    return data[: max(0, cut)]


def m_splice(rng, seed, pool):
    other = rng.choice(pool).data
    a, b = seed.data, other
    return a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1):]


def _valid(pool: list[Seed], seed: Seed) -> Seed | None:
    if seed.chunks is not None:
        return seed
    valid = [s for s in pool if s.chunks is not None]
    return None if not valid else valid[0]


def _small_pngs(rng: random.Random, width: int, height: int) -> bytes:
    """ALPH replacements: wrong size / mode, truncated, other formats, a claimed huge size."""
    from PIL import Image

    kind = rng.choice(["wrong-size", "wrong-mode", "truncated", "gif", "bmp", "huge-ihdr", "ok-size", "16-bit"])
    buf = io.BytesIO()
    if kind == "wrong-size":
        Image.new("L", (width + 1, height)).save(buf, "PNG")
    elif kind == "wrong-mode":
        Image.new("RGB", (width, height)).save(buf, "PNG")
    elif kind == "16-bit":
        Image.new("I;16", (width, height)).save(buf, "PNG")
    elif kind in ("gif", "bmp"):
        Image.new("L", (width, height)).save(buf, kind.upper())
    elif kind == "ok-size":
        Image.new("L", (width, height), rng.randrange(256)).save(buf, "PNG")
    else:
        Image.new("L", (width, height)).save(buf, "PNG")
        data = buf.getvalue()
        if kind == "truncated":
            return data[: rng.randrange(8, len(data))]
        ihdr = struct.pack(">II", rng.choice([width, 65535, 100_000]), rng.choice([height, 65535, 100_000]))
        body = b"IHDR" + ihdr + data[24:29]
        return data[:16] + ihdr + data[24:29] + struct.pack(">I", zlib.crc32(body)) + data[33:]
    return buf.getvalue()


CHUNK_LIST_OPS = ("truncate", "extend", "random", "foreign", "drop", "dup", "swap", "retag", "insert")
# per modality: sizes of random payloads, tags to retag to, tags and sizes of inserted chunks
IMAGE_CHUNK_SHAPES = {"random_sizes": [0, 1, 12, 13, 50, 500],
                      "retags": ["TILE", "ALPH", "ICCP", "EXIF", "INDX", "ZZZZ", "tile"],
                      "insert_tags": ["TILE", "ALPH", "ICCP", "EXIF", "INDX", "XTRA"], "insert_sizes": [0, 5, 12, 40]}
AUDIO_CHUNK_SHAPES = {"random_sizes": [0, 1, 4, 8, 16, 20, 50, 500],
                      "retags": ["SEGM", "TAGS", "TILE", "INDX", "ZZZZ", "segm"],
                      "insert_tags": ["SEGM", "TAGS", "INDX", "XTRA"], "insert_sizes": [0, 4, 8, 24, 40]}


def _chunk_list_op(op, rng, pool, chunks, i, shapes) -> None:
    """The chunk-list mutations image and audio files share (in place on ``chunks``)."""
    if op == "truncate":
        chunks[i] = (chunks[i][0], chunks[i][1][: rng.randrange(len(chunks[i][1]) + 1)])
    elif op == "extend":
        chunks[i] = (chunks[i][0], chunks[i][1] + rng.randbytes(rng.choice([1, 4, 100])))
    elif op == "random":
        chunks[i] = (chunks[i][0], bytearray(rng.randbytes(rng.choice(shapes["random_sizes"]))))
    elif op == "foreign":  # the same kind of chunk from another file (another geometry, segment, channel count)
        others = [(t, p) for s in pool if s.chunks for t, p in s.chunks if t == chunks[i][0]]
        if others:
            chunks[i] = (chunks[i][0], bytearray(rng.choice(others)[1]))
    elif op == "drop":
        del chunks[i]
    elif op == "dup":
        chunks.insert(rng.randrange(len(chunks) + 1), chunks[i])
    elif op == "swap":
        j = rng.randrange(len(chunks))
        chunks[i], chunks[j] = chunks[j], chunks[i]
    elif op == "retag":
        chunks[i] = (rng.choice(shapes["retags"]), chunks[i][1])
    else:  # insert
        tag = rng.choice(shapes["insert_tags"])
        chunks.insert(rng.randrange(len(chunks) + 1), (tag, bytearray(rng.randbytes(rng.choice(shapes["insert_sizes"])))))


def m_chunk(rng, seed, pool):
    """Edit the chunk list (payload bytes, order, tags, TILE head fields), then re-pack: valid CRCs."""
    seed = _valid(pool, seed)
    if seed is None:
        return m_bitflip(rng, pool[0], pool)
    chunks = [(t, bytearray(p)) for t, p in seed.chunks]
    if _audio_seed(seed):
        return _chunk_audio(rng, seed, pool, chunks)
    op = rng.choice(["flip", "flip", "flip-head", "tile-head", "truncate", "extend", "random", "foreign", "drop",
                     "dup", "swap", "retag", "insert", "alpha"])
    i = rng.randrange(len(chunks)) if chunks else 0
    if not chunks and op not in ("insert",):
        op = "insert"
    if op in ("flip", "flip-head"):
        _flip_payload(rng, chunks[i][1], head=16 if op == "flip-head" else None)
    elif op == "tile-head":
        payload = chunks[i][1]
        if len(payload) >= 12:
            z, y, crc = struct.unpack_from("<III", payload)
            which = rng.randrange(4)
            if which == 0:  # move the z/y split, keep the sum
                d = rng.choice([-4, -1, 1, 4, rng.randrange(-z, y + 1)])
                z, y = max(0, z + d), max(0, y - d)
            elif which == 1:
                z = rng.choice(INTERESTING_INTS)
            elif which == 2:
                y = rng.choice(INTERESTING_INTS)
            else:
                crc = rng.getrandbits(32)
            payload[:12] = struct.pack("<III", z & 0xFFFFFFFF, y & 0xFFFFFFFF, crc)
    elif op in CHUNK_LIST_OPS:
        _chunk_list_op(op, rng, pool, chunks, i, IMAGE_CHUNK_SHAPES)
    elif op == "alpha":
        img = (seed.header or {}).get("image") or {}
        payload = _small_pngs(rng, int(img.get("width", 8)), int(img.get("height", 8)))
        where = [k for k, (t, _) in enumerate(chunks) if t == "ALPH"]
        if where:
            chunks[where[0]] = ("ALPH", bytearray(payload))
        else:
            chunks.insert(rng.randrange(len(chunks) + 1), ("ALPH", bytearray(payload)))
    body = container.canonical_json(seed.header)
    return pack_raw(body, [(t, bytes(p)) for t, p in chunks])


def _audio_seed(seed: Seed) -> bool:
    """A file of the tiny audio model: the audio flavours of the mutators apply to these (only, so
    that image runs, whose pool holds the shipped speech model's vector, keep their cases)."""
    header = seed.header
    return (isinstance(header, dict) and header.get("modality") == "audio" and isinstance(header.get("model"), dict)
            and header["model"].get("id") == AUDIO_MODEL_ID)


def _tags_payload(rng: random.Random) -> bytes:
    """TAGS chunk payloads: valid, odd values, not an object, not JSON, not UTF-8, deeply nested, big."""
    kind = rng.choice(["valid", "odd", "list", "nested", "deep", "not-json", "latin-1", "huge-int", "big", "empty",
                       "nan", "dup-keys"])
    if kind == "valid":
        return container.canonical_json({rng.choice(["title", "artist", "genre"]): rng.choice(["a", "", "é" * 50])})
    if kind == "odd":
        return json.dumps({"title": _json_value(rng), "artist": "\x00\ud800", "zz": 1, "comment": "y" * 5000}
                          ).encode()
    if kind == "list":
        return rng.choice([b"[]", b'["title"]', b"null", b"1", b'"title"', b"true"])
    if kind == "nested":
        return b'{"title": ' + b"[" * 50 + b"]" * 50 + b"}"
    if kind == "deep":
        n = rng.choice([500, 999, 1000, 3000, 20_000])
        return rng.choice([b"[" * n + b"]" * n, b"[" * n, b'{"a":' * min(n, 3000) + b"1" + b"}" * min(n, 3000)])
    if kind == "not-json":
        return rng.choice([b"{", b"{'title': 'x'}", b'{"title": "x",}', rng.randbytes(20)])
    if kind == "latin-1":
        return '{"title": "caf\u00e9"}'.encode("latin-1")
    if kind == "huge-int":
        return b'{"title": ' + b"9" * 5000 + b"}"
    if kind == "big":
        return b'{"title": "' + b"t" * 19_000 + b'"}'
    if kind == "nan":
        return rng.choice([b'{"title": NaN}', b'{"title": Infinity}', b'{"title": -1e999}'])
    if kind == "dup-keys":
        return b'{"title": "a", "title": 1}'
    return b""


def _flip_payload(rng, payload: bytearray, head: int | None) -> None:
    """Flip 1–4 random bits of a chunk payload, within its first ``head`` bytes when given."""
    if payload:
        span = min(len(payload), head) if head is not None else len(payload)
        for p in _positions(rng, span, rng.choice([1, 1, 2, 4])):
            payload[p] ^= 1 << rng.randrange(8)


def _chunk_audio(rng, seed, pool, chunks):
    """m_chunk for audio files: SEGM head fields (segment index, channel lengths, the latents'
    z/y lengths and symbols CRC), TAGS payloads, audio tags in retag/insert; valid CRCs."""
    op = rng.choice(["flip", "flip", "flip-head", "segm-head", "segm-head", "truncate", "extend", "random", "foreign",
                     "drop", "dup", "swap", "retag", "insert", "tags"])
    i = rng.randrange(len(chunks)) if chunks else 0
    if not chunks and op not in ("insert", "tags"):
        op = "insert"
    if op in ("flip", "flip-head"):
        _flip_payload(rng, chunks[i][1], head=24 if op == "flip-head" else None)
    elif op == "segm-head":
        segments = [k for k, (t, _) in enumerate(chunks) if t == "SEGM"] or [i]
        payload = chunks[rng.choice(segments)][1]
        # <I index> then per channel <I length> <III z_len, y_len, crc> z y: pick a u32 field
        fields = [0]
        pos = 4
        while pos + 4 <= len(payload):
            fields.append(pos)
            fields += [f for f in (pos + 4, pos + 8, pos + 12) if f + 4 <= len(payload)]
            (n,) = struct.unpack_from("<I", payload, pos)
            pos += 4 + n
        if len(payload) >= 4:
            at = rng.choice(fields)
            (old,) = struct.unpack_from("<I", payload, at)
            new = rng.choice([old + 1, old - 1, old + 4, old - 4, rng.getrandbits(32)] + INTERESTING_INTS)
            struct.pack_into("<I", payload, at, new & 0xFFFFFFFF)
    elif op in CHUNK_LIST_OPS:
        _chunk_list_op(op, rng, pool, chunks, i, AUDIO_CHUNK_SHAPES)
    else:  # tags: replace the TAGS chunk, or add one (before, between or after the segments)
        payload = bytearray(_tags_payload(rng))
        where = [k for k, (t, _) in enumerate(chunks) if t == "TAGS"]
        if where and rng.random() < 0.7:
            chunks[where[0]] = ("TAGS", payload)
        else:
            chunks.insert(rng.choice([0, 0, rng.randrange(len(chunks) + 1)]), ("TAGS", payload))
    body = container.canonical_json(seed.header)
    return pack_raw(body, [(t, bytes(p)) for t, p in chunks])


HUGE = "__aec_fuzz_huge_int__"


def _json_value(rng: random.Random, depth: int = 0):
    r = rng.random()
    if r < 0.35:
        return rng.choice([0, 1, -1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 128, 4096, 4160, 65535, 65536, 100_000,
                           2**31, 2**32, 2**53 + 1, 2**63, 2**64, -(2**63), 10**30, HUGE])
    if r < 0.5:
        return rng.choice([0.0, -0.0, 0.5, 1.0, 4.5, 8.0, 8.0001, 64.0, 1e308, -1e308, 1e-320, 3.0e9])
    if r < 0.75:
        return rng.choice(["", "RGB", "RGBA", "L", "LA", "P", "I;16", "audio", "image", "test", "aec-range-v1",
                           "nan", "inf", "-inf", "1e999", "8", "0", "4.5", "x" * 300, "\u00e9\u4e2d", "\x00"])
    if r < 0.85:
        return rng.choice([None, True, False])
    if depth > 3:
        return []
    if r < 0.93:
        return [_json_value(rng, depth + 1) for _ in range(rng.randrange(3))]
    keys = ["width", "height", "id", "a", ""]
    return {rng.choice(keys): _json_value(rng, depth + 1) for _ in range(rng.randrange(3))}


def _paths(obj, prefix=()) -> list[tuple]:
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out.append(prefix + (k,))
            out.extend(_paths(v, prefix + (k,)))
    elif isinstance(obj, list):
        for k, v in enumerate(obj):
            out.append(prefix + (k,))
            out.extend(_paths(v, prefix + (k,)))
    return out


def _dump(header) -> bytes:
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace(json.dumps(HUGE), "9" * 5000).encode("utf-8", "surrogatepass")


ALIGN = 1280  # the tiny audio model's alignment (segments and overlaps are multiples of it)
AUDIO_FIELDS = {
    "sample_rate": [999, 1000, 1001, 8000, 16000, 22050, 44100, 48000, 96000, 767999, 768000, 768001, 0, -16000],
    "model_rate": [8000, 15999, 16000, 16001, 44100, 1000, 768000],
    "channels": [0, 1, 2, 3, -1],
    "frames": [0, 1, 2, 319, 320, 1279, 1280, 1281, 4799, 4800, 4801, 9600, 160_000, 1 << 20, 1 << 24,
               (1 << 32) - 1, 1 << 32],
    "segment": [0, 1, 320, ALIGN - 1, ALIGN, ALIGN + 1, 2 * ALIGN, 3 * ALIGN, 125 * ALIGN, 409 * ALIGN, 1 << 19,
                (1 << 19) + 1],
    "overlap": [0, 1, 320, ALIGN - 1, ALIGN, 2 * ALIGN, 3 * ALIGN, 125 * ALIGN, 1 << 19],
    "coding": ["mono", "mid-side", "stereo", "left-right", "", None, 1],
    "subtype": ["PCM_16", "PCM_24", "FLOAT", "DOUBLE", "VORBIS", "ULAW", "", "x" * 16, "x" * 17, "\x00", "\u00e9",
                None, 16],
}


def _audio_fields(rng: random.Random, header: dict) -> None:
    """1-3 audio header fields set to values near their bounds and alignments (channels and
    coding sometimes kept consistent), sometimes the quality or coder precision."""
    a = header.get("audio")
    if not isinstance(a, dict):
        return
    for _ in range(rng.choice([1, 1, 2, 3])):
        key = rng.choice(list(AUDIO_FIELDS) + ["quality", "precision"])
        if key == "quality":
            header["quality"] = rng.choice(["1", "3", "0", "-1", "3.5", "1e308", "nan", "1.5", 2])
        elif key == "precision":
            header["coder"]["precision"] = rng.choice([0, 1, 8, 12, 15, 16, 17])
        else:
            a[key] = rng.choice(AUDIO_FIELDS[key])
            if key == "channels" and a[key] in (1, 2) and rng.random() < 0.7:
                a["coding"] = "mid-side" if a[key] == 2 else "mono"


def m_header_field(rng, seed, pool):
    """One header field set to a random JSON value, deleted, or a key added; valid CRCs.
    Audio files: half the time, audio fields set to values near their bounds instead."""
    seed = _valid(pool, seed)
    if seed is None:
        return m_bitflip(rng, pool[0], pool)
    header = copy.deepcopy(seed.header)
    if _audio_seed(seed) and rng.random() < 0.5:
        _audio_fields(rng, header)
        return pack_raw(_dump(header), seed.chunks)
    paths = _paths(header)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.random()
        if op < 0.1 or not paths:
            key = rng.choice(["x", "image", "zz"])
            header = _json_value(rng) if rng.random() < 0.3 else {**header, key: _json_value(rng)}
            if not isinstance(header, dict):
                break
            paths = _paths(header)
            continue
        path = rng.choice(paths)
        parent = header
        for key in path[:-1]:
            parent = parent[key]
        if op < 0.2 and isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent[path[-1]] = _json_value(rng)
        paths = _paths(header)
    return pack_raw(_dump(header), seed.chunks)


def m_header_text(rng, seed, pool):
    """Byte edits inside the header JSON text; lengths and CRCs fixed up."""
    seed = _valid(pool, seed)
    if seed is None:
        return m_bitflip(rng, pool[0], pool)
    body = bytearray(container.canonical_json(seed.header))
    for _ in range(rng.choice([1, 1, 2, 4])):
        op = rng.randrange(4)
        p = rng.randrange(len(body))
        if op == 0:
            body[p] = rng.choice(b'{}[]",:0123456789-.eE \\u\xff\x00tfn')
        elif op == 1:
            del body[p]
        elif op == 2:
            body[p:p] = rng.choice([b" ", b"0", b"9" * 20, b"[", b"{", b"\\ud800", b",", b"\xc3", b'"a":1,'])
        else:
            body[p] ^= 1 << rng.randrange(8)
    if rng.random() < 0.1:
        body = bytearray(b"[" * 2000 + b"]" * 2000) if rng.random() < 0.5 else body + b" "
    return pack_raw(bytes(body), seed.chunks)


def m_preamble(rng, seed, pool):
    """Version, flags, header length or header CRC set to interesting values."""
    data = bytearray(seed.data if len(seed.data) >= 16 else pool[0].data)
    field_ = rng.randrange(6)
    if field_ == 0:
        data[4] = rng.choice([0, 1, 2, 255])
    elif field_ == 1:
        data[5] = rng.choice([0, 1, 2, 255])
    elif field_ == 2:
        data[6:8] = struct.pack("<H", rng.choice([1, 2, 0x8000, 0xFFFF]))
    elif field_ == 3:
        data[8:12] = struct.pack("<I", rng.choice(INTERESTING_INTS) & 0xFFFFFFFF)
    elif field_ == 4:
        data[12:16] = struct.pack("<I", rng.getrandbits(32))
    else:
        data[0:4] = rng.choice([b"\x89AEc", b"AEC\x1a", b"\x89PNG", b"\x00\x00\x00\x00"])
    return bytes(data)


def m_index(rng, seed, pool):
    """Edit the INDX entries or the trailer, with the index chunk's CRC fixed up."""
    seed = _valid(pool, seed)
    if seed is None:
        return m_bitflip(rng, pool[0], pool)
    data = bytearray(pack_raw(container.canonical_json(seed.header), seed.chunks))
    index_offset = struct.unpack_from("<Q", data, len(data) - 12)[0]
    n = struct.unpack_from("<I", data, index_offset)[0]
    entries = bytearray(data[index_offset + 8 : index_offset + 8 + n])
    op = rng.randrange(5)
    if op == 0 and entries:
        k = rng.randrange(len(entries) // 16)
        pos = 16 * k + rng.choice([0, 8, 12])
        size = {0: 8, 8: 4, 12: 4}[pos - 16 * k]
        entries[pos : pos + size] = rng.getrandbits(8 * size).to_bytes(size, "little") if rng.random() < 0.5 else \
            (rng.choice(INTERESTING_INTS) % (1 << (8 * size))).to_bytes(size, "little")
    elif op == 1:
        entries = entries[: rng.randrange(len(entries) + 1)]
    elif op == 2:
        entries += rng.randbytes(rng.choice([1, 16, 32]))
    elif op == 3:
        where = rng.choice([0, 16, index_offset - 1, index_offset + 1, 2**63, len(data)])
        struct.pack_into("<Q", data, len(data) - 12, where)
        return bytes(data)
    else:
        return bytes(data[:-12]) + rng.randbytes(12)
    tail = data[index_offset + 8 + n + 4 :]
    return bytes(data[:index_offset]) + _chunk(b"INDX", bytes(entries)) + bytes(tail)


def forge_tile(net, tile_index: int, tw: int, th: int, z_sym=None, y_fill=None, precision: int = 16,
               rng: random.Random | None = None) -> bytes:
    """A TILE payload that decodes and passes its symbols CRC (what a forger can always make):
    z symbols given (or zeros) -> the decoder's own indexes -> y symbols (zeros, a constant or random)."""
    return forge_latents(net, tile_index, (net.N, th // 64, tw // 64), z_sym, y_fill, precision, rng)


def forge_latents(net, key: int, z_shape: tuple[int, ...], z_sym=None, y_fill=None, precision: int = 16,
                  rng: random.Random | None = None) -> bytes:
    """The latents of one coded unit (a TILE payload; one channel of a SEGM) passing its symbols CRC."""
    import numpy as np

    from aecodec import coding

    z_sym = np.zeros(z_shape, np.int32) if z_sym is None else np.asarray(z_sym, np.int32).reshape(z_shape)
    y_idx, _ = net.hyper_decode(z_sym)
    if y_fill == "random" and rng is not None:
        y_sym = np.random.default_rng(rng.getrandbits(32)).integers(-3, 4, y_idx.shape, dtype=np.int32)
    else:
        y_sym = np.full(y_idx.shape, 0 if y_fill is None else y_fill, np.int32)
    return coding.encode_latents(net, z_sym, y_sym, y_idx, precision, key)  # the encoder's own framing


EXTREME_SYMBOLS = [0, 1, -1, 40, -40, 1000, 2**20, -(2**20), 2**31 - 1, -(2**31)]


FORGED_SAMPLES = 3 << 20  # model-rate samples (× channels) of forged SEGMs in one case: ~3 s of synthesis


def forge_segment(net, index: int, length: int, channels: int, rng: random.Random | None = None,
                  fill=None, z_extreme: float = 0.0, precision: int = 16) -> bytes:
    """A SEGM payload of ``length`` model-rate samples whose channels pass their symbols CRC."""
    parts = [struct.pack("<I", index)]
    for c in range(channels):
        n = net.N * (length // ALIGN)
        k = min(n, 64)
        z = [rng.choice(EXTREME_SYMBOLS) if rng is not None and rng.random() < z_extreme else 0 for _ in range(k)]
        latents = forge_latents(net, (2 * index + c) & 0xFFFFFFFF, (net.N, length // ALIGN), z + [0] * (n - k),
                                fill, precision, rng)
        parts += [struct.pack("<I", len(latents)), latents]
    return b"".join(parts)


def m_forge_audio(rng, seed, pool):
    """A self-consistent audio file the encoder never wrote: any rates, length, segment and overlap
    (multiples of the alignment, or not), SEGM chunks whose symbols (extreme values included) pass
    their CRC, so the synthesis, the cross-fades and the resampling run on them."""
    from aecodec.audio import Geometry, model_frames

    net = audio_model().net
    bases = [s for s in pool if _audio_seed(s)]
    base = seed if _audio_seed(seed) else rng.choice(bases)
    header = copy.deepcopy(base.header)
    a = header["audio"]
    if rng.random() < 0.8:
        a["sample_rate"] = rng.choice([1000, 8000, 16000, 16000, 22050, 44100, 48000, 768000])
        a["channels"] = rng.choice([1, 1, 2])
        a["coding"] = "mid-side" if a["channels"] == 2 else "mono"
        a["segment"] = ALIGN * rng.choice([1, 1, 2, 3, 5, 8, 64, 125, 409])
        a["overlap"] = rng.choice([ALIGN, ALIGN, 2 * ALIGN, a["segment"]])
        segments = rng.choice([0, 1, 1, 2, 3, 4, 8])
        model_len = max(0, (segments - 1) * a["segment"] + rng.choice([1, ALIGN - 1, ALIGN, ALIGN + 1, a["segment"]]))
        if segments == 0:
            model_len = 0
        a["frames"] = model_len * a["sample_rate"] // 16000 + rng.choice([0, 0, 1])
    if rng.random() < 0.1:
        a["overlap"] = rng.choice([0, 1, ALIGN - 1, ALIGN + 1, a.get("overlap", ALIGN)])
    header["quality"] = rng.choice(["1", "2", "3", "1.001", "2.999", header.get("quality", "2")]) \
        if rng.random() < 0.9 else rng.choice(["0.999", "3.001", "0.5", "7"])
    rate, channels, segment = a.get("sample_rate"), a.get("channels"), a.get("segment")
    if not all(isinstance(v, int) and v > 0 for v in (rate, channels, segment)) or channels > 2:
        return pack_raw(_dump(header), base.chunks)
    overlap = a["overlap"] if isinstance(a.get("overlap"), int) and a["overlap"] >= 0 else ALIGN
    geo = Geometry(model_frames(a["frames"], rate, 16000), segment, overlap, ALIGN)
    fill = rng.choice([None, None, "random", rng.choice(EXTREME_SYMBOLS)])
    z_extreme = rng.choice([0.0, 0.0, 0.1, 1.0])
    chunks = []
    budget = FORGED_SAMPLES
    wanted = geo.count + rng.choice([0, 0, 0, 0, -1, 1])
    for k in range(max(0, min(wanted, 16))):
        length = geo.coded_length(min(k, max(geo.count - 1, 0))) if geo.count else ALIGN
        length = max(ALIGN, length - length % ALIGN)
        if length * channels > budget:
            break
        budget -= length * channels
        index = k if rng.random() < 0.95 else rng.choice([k + 1, k - 1, 2**32 - 1]) & 0xFFFFFFFF
        chunks.append(("SEGM", forge_segment(net, index, length, channels, rng, fill, z_extreme)))
    if rng.random() < 0.2:
        chunks.insert(rng.randrange(len(chunks) + 1), ("TAGS", _tags_payload(rng)))
    return pack_raw(_dump(header), chunks)


def m_forge(rng, seed, pool):
    """A self-consistent file the encoder never wrote: any geometry and tile size, TILE chunks whose
    symbols (extreme values included) pass their CRC, so the synthesis runs on them. Audio: a file
    of the tiny audio model, or any seed when the pool holds no image files (m_forge_audio)."""
    from aecodec import codec

    if _audio_seed(seed) or (any(_audio_seed(s) for s in pool)
                             and not any(s.header and s.header.get("modality") == "image" for s in pool)):
        return m_forge_audio(rng, seed, pool)
    model = image_model()
    net = model.net
    image_seeds_ = [s for s in pool if s.header and s.header.get("modality") == "image"
                    and s.header.get("model", {}).get("id") == model.variant.id]
    base = rng.choice(image_seeds_) if image_seeds_ else None
    header = copy.deepcopy(base.header) if base else {
        "modality": "image", "model": model.header, "coder": {"name": "aec-range-v1", "precision": 16},
        "quality": "4", "image": {"width": 64, "height": 64, "mode": "RGB", "bit_depth": 8, "tile": 1024,
                                  "coded_channels": 3}}
    img = header["image"]
    if rng.random() < 0.7:
        img["width"] = rng.choice([1, 63, 64, 65, 130, 300, 1000, 4096, 65535])
        img["height"] = rng.choice([1, 2, 64, 70, 128, 1000, 2730])
        img["tile"] = rng.choice([64, 64, 64, 64, 128, 192, 256, 512, 1024, 2048, 4096])
    if img.get("mode") in ("RGBA", "LA") and rng.random() < 0.7:
        img["mode"] = "RGB" if img["mode"] == "RGBA" else "L"
    header["quality"] = rng.choice(["1", "4", "8", "7.999", "1.001", header.get("quality", "4")])
    grid = codec.tile_grid(img["width"], img["height"], img["tile"])
    chunks = []
    fill = rng.choice([None, None, "random", rng.choice(EXTREME_SYMBOLS)])
    for k, (x, y, tw, th) in enumerate(grid[: rng.choice([1, 2, 4])]):
        if tw * th > 512 * 512 and rng.random() < 0.9:
            tw_th_ok = False  # a large tile: forge the first one only (the decoder allocates it at once)
        else:
            tw_th_ok = True
        n = net.N * (th // 64) * (tw // 64)
        z = [rng.choice(EXTREME_SYMBOLS) if rng.random() < 0.1 else 0 for _ in range(min(n, 64))] + [0] * max(0, n - 64)
        chunks.append(("TILE", forge_tile(net, k, tw, th, z, fill, rng=rng)))
        if not tw_th_ok:
            break
    if rng.random() < 0.7:  # the rest of the tiles, as the header implies (when few)
        for k in range(len(chunks), len(grid) if len(grid) <= 8 else len(chunks)):
            x, y, tw, th = grid[k]
            chunks.append(("TILE", forge_tile(net, k, tw, th)))
    if img.get("mode") in ("RGBA", "LA"):
        chunks.append(("ALPH", _small_pngs(rng, img["width"], img["height"])))
    return pack_raw(_dump(header), chunks)


def m_random(rng, seed, pool):
    return rng.randbytes(rng.choice([0, 1, 3, 4, 15, 16, 17, 64, 500, 4000]))


def m_magic_random(rng, seed, pool):
    r = rng.random()
    if r < 0.5:
        return container.MAGIC + rng.randbytes(rng.choice([0, 1, 11, 12, 100, 1000]))
    body = rng.randbytes(rng.choice([1, 10, 100]))
    if r < 0.75:  # a valid preamble, random header bytes
        return container.PREAMBLE.pack(container.MAGIC, 1, 0, 0, len(body), zlib.crc32(body)) + body
    header = seed.header if seed.header is not None else {"modality": "image"}
    return container.pack(header, []) + rng.randbytes(rng.choice([0, 8, 12, 40]))


def m_seed(rng, seed, pool):
    return seed.data


MUTATORS: dict[str, tuple[Callable, float]] = {
    "bitflip": (m_bitflip, 8),
    "byteset": (m_byteset, 4),
    "intset": (m_intset, 5),
    "insert": (m_insert, 3),
    "delete": (m_delete, 3),
    "truncate": (m_truncate, 5),
    "splice": (m_splice, 4),
    "chunk": (m_chunk, 25),
    "header_field": (m_header_field, 20),
    "header_text": (m_header_text, 8),
    "preamble": (m_preamble, 3),
    "index": (m_index, 5),
    "forge": (m_forge, 3),
    "random": (m_random, 3),
    "magic_random": (m_magic_random, 3),
    "seed": (m_seed, 1),
}
_NAMES = list(MUTATORS)
_WEIGHTS = [w for _, w in MUTATORS.values()]
STACKABLE = ["bitflip", "byteset", "intset", "insert", "delete", "truncate"]


def make_case(seed: int, i: int, pool: list[Seed]) -> tuple[str, bytes]:
    """Case i of run `seed`: (mutator name, bytes); deterministic."""
    rng = random.Random((seed << 32) ^ i)
    name = rng.choices(_NAMES, _WEIGHTS)[0]
    base = rng.choice(pool)
    data = MUTATORS[name][0](rng, base, pool)
    if name != "seed" and rng.random() < 0.1:  # occasionally a second, byte-level mutation on top
        extra = rng.choice(STACKABLE)
        data = MUTATORS[extra][0](rng, Seed("stacked", data), pool)
        name = f"{name}+{extra}"
    return name, data


# ---------------------------------------------------------------------------------------------
# running cases


def _prefix(message: str) -> str:
    """A message with its numbers and quoted parts blanked: cases that differ only there are alike."""
    text = re.sub(r"b?'[^']*'|\"[^\"]*\"|\([^)]*\)", "…", message.split("\n")[0])
    text = re.sub(r"[-+]?\d[\d.e+x×]*", "#", text)
    return " ".join(text.split()[:6])


@dataclass
class Stats:
    """What a run found; merged across worker restarts."""

    cases: int = 0
    crashes: list = field(default_factory=list)  # dicts: case, mutator, target, type, message, file
    hangs: list = field(default_factory=list)
    max_cpu: float = 0.0
    max_wall: float = 0.0
    slowest: dict = field(default_factory=dict)
    rss_jump: dict = field(default_factory=dict)  # the case whose peak RSS rose most above its start
    slow_wall_cases: int = 0  # over HANG_SECONDS of wall time but not of CPU time (a busy machine)
    cpu_seconds: float = 0.0
    mutators: Counter = field(default_factory=Counter)
    outcomes: dict = field(default_factory=dict)  # target -> Counter(class)
    interesting: dict = field(default_factory=dict)  # key -> (len, case, mutator, outcomes, data)

    def merge(self, other: "Stats") -> None:
        self.cases += other.cases
        self.crashes += other.crashes
        self.hangs += other.hangs
        if other.max_cpu > self.max_cpu:
            self.max_cpu, self.slowest = other.max_cpu, other.slowest
        if other.rss_jump.get("mib", 0) > self.rss_jump.get("mib", 0):
            self.rss_jump = other.rss_jump
        self.max_wall = max(self.max_wall, other.max_wall)
        self.slow_wall_cases += other.slow_wall_cases
        self.cpu_seconds += other.cpu_seconds
        self.mutators.update(other.mutators)
        for t, c in other.outcomes.items():
            self.outcomes.setdefault(t, Counter()).update(c)
        for k, v in other.interesting.items():
            if k not in self.interesting or v[0] < self.interesting[k][0]:
                self.interesting[k] = v


class CaseMemory:
    """Per-case memory in a worker: cap the address space at its current size + headroom, reset
    the peak RSS, and afterwards report how far the peak rose above the RSS the case started at."""

    def __init__(self, headroom: int):
        self.headroom = headroom
        self.rss0 = 0
        self.peak = self.status()["VmHWM"]  # of the worker, over all cases

    @staticmethod
    def status() -> dict[str, int]:
        out = {}
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(("VmSize:", "VmRSS:", "VmHWM:")):
                    out[line.split(":")[0]] = int(line.split()[1]) * 1024
        return out

    def before(self) -> None:
        st = self.status()
        resource.setrlimit(resource.RLIMIT_AS, (st["VmSize"] + self.headroom, resource.RLIM_INFINITY))
        with open("/proc/self/clear_refs", "w", encoding="ascii") as f:
            f.write("5")  # VmHWM := VmRSS
        self.rss0 = st["VmRSS"]

    def after(self) -> int:
        hwm = self.status()["VmHWM"]
        self.peak = max(self.peak, hwm)
        return hwm - self.rss0


def run_case(stats: Stats, i: int, mutator: str, data: bytes, targets: list[str],
             memory: CaseMemory | None = None) -> list[dict]:
    """Run one case through every target, recording it in stats; returns the crashes it caused."""
    crashes = []
    outcomes = {}
    key_parts = []
    if memory is not None:
        memory.before()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in targets:
        cls, message = outcome_of(t, data)
        outcomes[t] = cls
        stats.outcomes.setdefault(t, Counter())[cls] += 1
        key_parts.append(f"{t}={cls}:{_prefix(message)}" if cls != "ok" else f"{t}=ok")
        if cls.startswith("CRASH:"):
            crashes.append({"case": i, "mutator": mutator, "target": t, "type": cls[6:], "message": message[:2000]})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    jump = memory.after() / 2**20 if memory is not None else 0.0
    if jump > stats.rss_jump.get("mib", 0):
        stats.rss_jump = {"case": i, "mutator": mutator, "mib": round(jump, 1), "outcomes": outcomes}
    stats.cases += 1
    stats.cpu_seconds += cpu
    stats.mutators[mutator.split("+")[0]] += 1
    stats.max_wall = max(stats.max_wall, wall)
    if cpu > stats.max_cpu:
        stats.max_cpu = cpu
        stats.slowest = {"case": i, "mutator": mutator, "cpu_seconds": round(cpu, 4), "wall_seconds": round(wall, 4),
                         "outcomes": outcomes}
    if cpu > HANG_SECONDS:
        stats.hangs.append({"case": i, "mutator": mutator, "cpu_seconds": round(cpu, 3), "wall_seconds": round(wall, 3),
                            "outcomes": outcomes})
    elif wall > HANG_SECONDS:
        stats.slow_wall_cases += 1
    stats.crashes += crashes
    if len(data) <= MAX_CORPUS_BYTES:
        key = " | ".join(key_parts)
        if all(v == "ok" for v in outcomes.values()):  # decodable files: one per kind of mutation
            key += f" | {mutator.split('+')[0]}"
        old = stats.interesting.get(key)
        if old is None or len(data) < old[0]:
            stats.interesting[key] = (len(data), i, mutator, outcomes, data)
    return crashes


def fuzz(cases: int, seed: int = 0, targets=("container", "image"), start: int = 0,
         pool: list[Seed] | None = None) -> Stats:
    """Run cases [start, start + cases) in this process (no limits): the test suite's short fuzz."""
    targets = list(targets)
    pool = pool if pool is not None else build_pool(targets)
    stats = Stats()
    for i in range(start, start + cases):
        mutator, data = make_case(seed, i, pool)
        run_case(stats, i, mutator, data, targets)
    return stats


def build_pool(targets) -> list[Seed]:
    named = []
    for t in targets:
        named += TARGETS[t].seeds()
    seen, unique = set(), []
    for name, data in named:
        if data not in seen:
            seen.add(data)
            unique.append((name, data))
    return load_pool(unique)


# ---------------------------------------------------------------------------------------------
# worker process with limits, supervised


def _worker(conn, progress, seed: int, targets: list[str], named: list[tuple[str, bytes]], start: int, stop: int,
            skip: set[int], headroom: int) -> None:
    import torch

    from aecodec import coding

    torch.set_num_threads(1)
    # tiles and segments one after another (run_image/run_audio also say so): with parallel decoding,
    # whether a bad tile or a bad chunk read ahead of it is reported first depends on the number of
    # cores, and the corpus records outcomes that must be the same on every machine
    coding.CODING_THREADS = 1
    pool = load_pool(named)
    for s in pool:  # warm up: imports, Numba kernels, models
        for t in targets:
            outcome_of(t, s.data)
    rss_warm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    memory = CaseMemory(headroom)
    conn.send(("ready", {"vm_bytes": memory.status()["VmSize"], "rss_after_warmup": rss_warm}))
    stats = Stats()
    for i in range(start, stop):
        progress.value = i
        if i in skip:
            continue
        mutator, data = make_case(seed, i, pool)
        crashes = run_case(stats, i, mutator, data, targets, memory)
        for c in crashes:
            conn.send(("crash", dict(c, data=data)))
        if (i + 1 - start) % 250 == 0:  # a delta: the supervisor merges them
            conn.send(("stats", i + 1, _strip(stats), memory.peak))
            stats = Stats()
    conn.send(("stats", stop, _strip(stats), memory.peak))
    conn.send(("done", {"peak_rss": memory.peak}))


def _strip(stats: Stats) -> Stats:
    stats.crashes = [{k: v for k, v in c.items() if k != "data"} for c in stats.crashes]
    return stats


def supervise(cases: int, seed: int, targets: list[str], named, hard_timeout: float, max_seconds: float | None,
              out_dir: Path, log=print) -> tuple[Stats, dict]:
    """Run cases [0, cases) in worker processes; restart after a dead or stuck worker."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    total = Stats()
    interesting: dict = {}
    info: dict = {"worker_restarts": 0, "peak_rss": 0, "stopped_early": False}
    pool = load_pool(named)
    acked, skip = 0, set()
    reported: set = set()  # (case, target): cases re-run after a worker restart report again
    kinds: Counter = Counter()  # crashes per kind (target, type, message with numbers blanked)
    t_start = time.perf_counter()
    while acked < cases:
        progress = ctx.Value("q", acked, lock=False)
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, progress, seed, targets, named, acked, cases, set(skip),
                                                 MEMORY_HEADROOM), daemon=True)
        proc.start()
        child.close()
        last_value, last_change, ready = progress.value, time.perf_counter(), False
        done = False
        while True:
            if parent.poll(0.5):
                try:
                    kind, *payload = parent.recv()
                except EOFError:
                    kind, payload = "eof", []
                if kind == "ready":
                    ready = True
                    info.setdefault("worker", payload[0])
                    last_change = time.perf_counter()
                elif kind == "crash":
                    rec = payload[0]
                    data = rec.pop("data")
                    if (rec["case"], rec["target"]) in reported:
                        continue
                    reported.add((rec["case"], rec["target"]))
                    rec["kind"] = f"{rec['target']}: {rec['type']}: {_prefix(rec['message'])}"
                    kinds[rec["kind"]] += 1
                    if kinds[rec["kind"]] <= MAX_REPROS_PER_KIND:  # one bug found again and again: a few files
                        rec["file"] = _save_repro(out_dir, rec, data)
                        log(f"CRASH case {rec['case']} ({rec['mutator']}) {rec['target']}: {rec['type']}: "
                            f"{rec['message'].splitlines()[0][:200]}")
                    else:
                        rec["message"] = rec["message"].splitlines()[0][:200]
                    total.crashes.append(rec)
                elif kind == "stats":
                    end, st, peak = payload
                    info["peak_rss"] = max(info["peak_rss"], peak)
                    acked = end
                    for k, v in st.interesting.items():
                        if k not in interesting or v[0] < interesting[k][0]:
                            interesting[k] = v
                    st.interesting = {}
                    st.crashes = []  # reported one by one above
                    total.merge(st)
                    elapsed = time.perf_counter() - t_start
                    if acked % 5000 < 250 or acked == cases:
                        log(f"{acked}/{cases} cases, {len(total.crashes)} crashes, {len(total.hangs)} hangs, "
                            f"{acked / elapsed:.1f} cases/s, max case {total.max_cpu:.2f} s CPU")
                    if max_seconds and elapsed > max_seconds and acked < cases:
                        info["stopped_early"] = True
                        proc.kill()
                        proc.join()
                        return total, {**info, "interesting": interesting, "completed": acked}
                elif kind == "done":
                    info["peak_rss"] = max(info["peak_rss"], payload[0]["peak_rss"])
                    done = True
                    break
                elif kind == "eof":
                    pass
            if progress.value != last_value:
                last_value, last_change = progress.value, time.perf_counter()
            stuck = ready and time.perf_counter() - last_change > hard_timeout
            if not proc.is_alive() or stuck:
                break
        proc.join(timeout=5 if done else 0.1)
        if done:
            break
        # the worker died or hung on case `progress.value`
        culprit = progress.value
        if proc.is_alive():
            proc.kill()
            proc.join()
        mutator, data = make_case(seed, culprit, pool)
        rec = {"case": culprit, "mutator": mutator, "target": ",".join(targets)}
        if stuck:
            rec.update(cpu_seconds=None, wall_seconds=round(time.perf_counter() - last_change, 1),
                       note=f"killed after {hard_timeout:g} s without progress")
            rec["file"] = _save_repro(out_dir, {**rec, "type": "hang"}, data)
            total.hangs.append(rec)
        else:
            rec.update(type=f"WorkerDied(exit {proc.exitcode})", message="the worker process died")
            rec["file"] = _save_repro(out_dir, rec, data)
            total.crashes.append(rec)
        log(f"worker {'hung' if stuck else 'died'} on case {culprit}: restarting after it")
        info["worker_restarts"] += 1
        skip.add(culprit)
        total.cases += 1
        total.mutators[mutator.split("+")[0]] += 1
        # cases between the last report and the culprit are re-run by the next worker
        acked = min(acked, culprit)
        if acked == culprit:
            acked += 1
    return total, {**info, "interesting": interesting, "completed": acked}


def _save_repro(out_dir: Path, rec: dict, data: bytes) -> str:
    d = out_dir / "crashes"
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"case{rec['case']:07d}-{rec.get('type', 'x').split('(')[0].replace(':', '_')}.bin"
    path.write_bytes(data)
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------------
# corpus


def run_key(targets) -> str:
    """The manifest's name of a target set ("container,image", "audio"), in TARGETS order."""
    return ",".join(t for t in TARGETS if t in targets)


def select_corpus(interesting: dict, limit: int = MAX_CORPUS_FILES, prefix: str = "") -> list[tuple[str, dict, bytes]]:
    """First-found smallest example of each distinct outcome, round-robin over outcome classes
    so that the rarest classes are all kept when there are more than `limit` kinds."""
    by_class: dict[tuple, list] = {}
    for key in sorted(interesting):
        size, case, mutator, outcomes, data = interesting[key]
        if any(v.startswith("CRASH") for v in outcomes.values()):
            continue
        by_class.setdefault(tuple(sorted(outcomes.items())), []).append((size, key, case, mutator, outcomes, data))
    for items in by_class.values():
        items.sort(key=lambda x: (x[0], x[1]))
    chosen = []
    classes = sorted(by_class, key=lambda c: len(by_class[c]))
    rank = 0
    while len(chosen) < limit and any(rank < len(by_class[c]) for c in classes):
        for c in classes:
            if rank < len(by_class[c]) and len(chosen) < limit:
                chosen.append(by_class[c][rank])
        rank += 1
    out = []
    for size, key, case, mutator, outcomes, data in sorted(chosen, key=lambda x: x[2]):
        label = "-".join(("ok" if v == "ok" else re.sub(r"Error$", "", v)).lower() for v in outcomes.values())
        name = f"{prefix}{label}-{hashlib.sha1(data).hexdigest()[:10]}.aec"
        out.append((name, {**outcomes, "mutator": mutator, "case": case, "why": key[:300]}, data))
    return out


CORPUS_PREFIX = {"container,image": ""}  # file name prefix per run (default: the run's targets)
CORPUS_DESCRIPTION = ("Fuzz cases kept as regression tests (benchmarks/fuzz.py --corpus), from one run per target set "
                      "('runs': its command, targets and the tiny models' weights). Each file names its run and "
                      "records the expected outcome of each of that run's targets: 'ok' or the AecError subclass "
                      "raised. Replayed by tests/test_fuzz_corpus.py.")


def load_manifest(path: Path) -> dict:
    """The corpus manifest, the single-run layout of before the audio target read as one run."""
    if not path.exists():
        return {"description": CORPUS_DESCRIPTION, "runs": {}, "files": {}}
    manifest = json.loads(path.read_text())
    if "runs" not in manifest:
        key = run_key(manifest["targets"])
        weights = {"image": manifest["tiny_model_weights"]} if "image" in manifest["targets"] else {}
        manifest = {"runs": {key: {"generated_by": manifest["generated_by"], "targets": manifest["targets"],
                                   "tiny_model_weights": weights}},
                    "files": {name: {**meta, "run": key} for name, meta in manifest["files"].items()}}
    manifest["description"] = CORPUS_DESCRIPTION
    return manifest


def write_corpus(corpus_dir: Path, entries, targets, seed: int) -> int:
    """Replace the files this target set recorded before (other runs' files stay) and its manifest
    entry; returns the number of files written (entries with the same bytes are written once)."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = corpus_dir / "manifest.json"
    manifest = load_manifest(manifest_path)
    key = run_key(targets)
    for name, meta in list(manifest["files"].items()):
        if meta.get("run") == key:
            (corpus_dir / name).unlink(missing_ok=True)
            del manifest["files"][name]
    for name, meta, data in entries:
        if name in manifest["files"]:  # the same bytes and outcomes kept by another run
            continue
        (corpus_dir / name).write_bytes(data)
        manifest["files"][name] = {**meta, "run": key}
    manifest["runs"][key] = {
        "generated_by": f"python benchmarks/fuzz.py --seed {seed} --target {key} --corpus {corpus_dir}",
        "targets": key.split(","),
        "tiny_model_weights": {t: model_weights(t) for t in key.split(",") if model_weights(t)},
    }
    manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return sum(meta["run"] == key for meta in manifest["files"].values())


# ---------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target", default="container,image", help=f"comma-separated: {', '.join(TARGETS)}")
    ap.add_argument("--out", default="benchmarks/results/fuzz/fuzz_image.json",
                    help="result JSON (crash reproducers beside it)")
    ap.add_argument("--corpus", default=None, help="write interesting cases + manifest.json to this folder")
    ap.add_argument("--hard-timeout", type=float, default=120.0,
                    help="wall seconds without progress before a worker is killed")
    ap.add_argument("--max-seconds", type=float, default=None, help="stop after this long, reporting what completed")
    ap.add_argument("--replay", type=int, default=None, metavar="I",
                    help="rebuild case I, run it here, print the outcome")
    ap.add_argument("--dump", default=None, metavar="FILE", help="with --replay: also write the case's bytes")
    ap.add_argument("--limit-memory", action="store_true",
                    help="with --replay: warm up, then run the case as a worker does (address space + 1 GiB)")
    args = ap.parse_args(argv)
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        ap.error(f"unknown target(s) {unknown}; known: {', '.join(TARGETS)}")

    import torch

    torch.set_num_threads(1)
    named = []
    for t in targets:
        named += TARGETS[t].seeds()
    pool = build_pool(targets)
    named = [(s.name, s.data) for s in pool]
    if args.replay is not None:
        mutator, data = make_case(args.seed, args.replay, pool)
        if args.dump:
            Path(args.dump).write_bytes(data)
        memory = None
        if args.limit_memory:
            for s in pool:
                for t in targets:
                    outcome_of(t, s.data)
            memory = CaseMemory(MEMORY_HEADROOM)
            memory.before()
        outcomes = {t: outcome_of(t, data) for t in targets}
        for t, (cls, message) in outcomes.items():
            print(f"case {args.replay} ({mutator}, {len(data)} bytes) {t}: {cls} {message}")
        if memory is not None:
            print(f"peak RSS {memory.after() / 2**20:.0f} MiB above the case's start")
        return 1 if any(cls.startswith("CRASH") for cls, _ in outcomes.values()) else 0

    out = Path(args.out)
    out_dir = out.parent / (out.stem + "_crashes")
    t0 = time.perf_counter()
    total, info = supervise(args.cases, args.seed, targets, named, args.hard_timeout, args.max_seconds, out_dir,
                            log=lambda m: print(m, file=sys.stderr, flush=True))
    elapsed = time.perf_counter() - t0
    from aecodec.bench.machine import describe_machine

    worker = info.get("worker", {})
    result = {
        "name": "fuzz",
        "description": "Mutated, truncated, spliced and random bytes through "
                       + " and ".join(TARGET_DESCRIPTIONS[t] for t in targets) + ". "
                       "A crash is any exception outside aecodec.errors.AecError "
                       "(a MemoryError from the 1 GiB address-space headroom included); a hang is a case over "
                       f"{HANG_SECONDS:g} s of CPU time or a worker killed after {args.hard_timeout:g} s "
                       "without progress.",
        "command": "python benchmarks/fuzz.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": describe_machine(),
        "config": {
            "cases_requested": args.cases, "seed": args.seed, "targets": targets, "hang_cpu_seconds": HANG_SECONDS,
            "memory_headroom_bytes": MEMORY_HEADROOM, "worker": worker,
            **{("tiny_model" if t == "image" else f"tiny_{t}_model"): {"name": TINY_MODEL_NAMES[t],
                                                                      "weights": model_weights(t)}
               for t in targets if t in MODEL_OF_TARGET},
            "seeds": [{"name": n, "bytes": len(d), "sha256": hashlib.sha256(d).hexdigest()[:16]} for n, d in named],
            "mutators": {k: w for k, (_, w) in MUTATORS.items()},
        },
        "results": {
            "cases": total.cases,
            "completed_all": total.cases >= args.cases and not info["stopped_early"],
            "crashes": len(total.crashes),
            "hangs": len(total.hangs),
            "max_case_cpu_seconds": round(total.max_cpu, 4),
            "max_case_wall_seconds": round(total.max_wall, 4),
            "cases_over_5s_wall_not_cpu": total.slow_wall_cases,
            "slowest_case": total.slowest,
            "largest_case_peak_rss_increase": total.rss_jump,
            "peak_rss_mib": round(info["peak_rss"] / 2**20, 1),
            "rss_after_warmup_mib": round(worker.get("rss_after_warmup", 0) / 2**20, 1),
            "allocation_limit": "before each case RLIMIT_AS = the worker's VmSize + 1 GiB "
                                f"(VmSize after warm-up {worker.get('vm_bytes', 0) / 2**20:.0f} MiB)",
            "elapsed_seconds": round(elapsed, 1),
            "worker_cpu_seconds": round(total.cpu_seconds, 1),
            "cases_per_second": round(total.cases / elapsed, 2),
            "cases_per_cpu_second": round(total.cases / max(total.cpu_seconds, 1e-9), 2),
            "worker_restarts": info["worker_restarts"],
            "distinct_outcomes": len(info["interesting"]),
            "per_mutator": dict(sorted(total.mutators.items())),
            "outcomes": {t: dict(sorted(c.items(), key=lambda kv: -kv[1])) for t, c in total.outcomes.items()},
            "crash_kinds": dict(Counter(c.get("kind", c["type"]) for c in total.crashes).most_common()),
            "crash_details": total.crashes,
            "hang_details": total.hangs,
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n")
    if args.corpus:
        key = run_key(targets)
        entries = select_corpus(info["interesting"], prefix=CORPUS_PREFIX.get(key, key.replace(",", "+") + "-"))
        written = write_corpus(Path(args.corpus), entries, targets, args.seed)
        print(f"corpus: {written} files in {args.corpus}", file=sys.stderr)
    r = result["results"]
    print(f"{r['cases']} cases, {r['crashes']} crashes, {r['hangs']} hangs, max case {r['max_case_cpu_seconds']} s CPU "
          f"({r['max_case_wall_seconds']} s wall), peak RSS {r['peak_rss_mib']} MiB, {r['cases_per_second']} cases/s "
          f"-> {out}",
          file=sys.stderr)
    return 1 if r["crashes"] or r["hangs"] else 0


if __name__ == "__main__":
    sys.exit(main())
