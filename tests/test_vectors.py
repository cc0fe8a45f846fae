"""Golden vectors of bitstream/vectors decode to their expected content; every truncation fails."""

import json
from pathlib import Path

import numpy as np
import pytest

from aecodec import container, entropy
from aecodec.entropy import reference
from aecodec.errors import FormatError, HeaderError

VECTORS = Path(__file__).resolve().parents[1] / "bitstream" / "vectors"
CODER_VECTORS = sorted(VECTORS.glob("coder-*.rc"))
CONTAINER_VECTORS = sorted(VECTORS.glob("container-*.aec"))


def _coder_case(path):
    doc = json.loads(path.with_suffix(".json").read_text())
    tables = (doc["cdfs"], doc["cdf_lengths"], doc["offsets"])
    return path.read_bytes(), np.array(doc["indexes"], np.int32), np.array(doc["symbols"], np.int32), tables, doc["precision"]


def test_vectors_exist():
    assert len(CODER_VECTORS) >= 2 and len(CONTAINER_VECTORS) >= 1


@pytest.mark.parametrize("path", CODER_VECTORS, ids=lambda p: p.name)
def test_coder_vector_decodes_and_reencodes(path):
    data, idx, sym, tables, precision = _coder_case(path)
    assert np.array_equal(entropy.decode(data, idx, *tables, precision), sym)
    assert reference.decode(data, idx, *tables, precision) == sym.tolist()
    assert entropy.encode(sym, idx, *tables, precision) == data


@pytest.mark.parametrize("path", CODER_VECTORS, ids=lambda p: p.name)
def test_coder_vector_truncations(path):
    data, idx, _, tables, precision = _coder_case(path)
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            entropy.decode(data[:cut], idx, *tables, precision)


@pytest.mark.parametrize("path", CONTAINER_VECTORS, ids=lambda p: p.name)
def test_container_vector(path):
    doc = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    header, chunks = container.unpack(data)
    assert header == doc["header"]
    assert [(t, p.hex()) for t, p in chunks] == [(c["tag"], c["payload_hex"]) for c in doc["chunks"]]
    compressed = bool(container.ContainerReader(data).flags & container.FLAG_DEFLATE_HEADER)
    # deflate bytes are zlib's at level 9 (SPEC §2.1): byte-equal with the zlib this runs on
    assert container.pack(header, chunks, compress_header=compressed) == data
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            container.unpack(data[:cut])


@pytest.mark.parametrize("path", CONTAINER_VECTORS, ids=lambda p: p.name)
def test_container_vector_flipped_bytes(path):
    data = path.read_bytes()
    MINOR_VERSION_BYTE = 5  # readers accept every minor version by design (SPEC §1)
    for pos in range(len(data)):
        if pos == MINOR_VERSION_BYTE:
            continue
        bad = bytearray(data)
        bad[pos] ^= 0x01
        with pytest.raises(FormatError):
            container.unpack(bytes(bad))


IMAGE_VECTORS = sorted(p for p in VECTORS.glob("image-*.aec") if "context-tiny" not in p.name)  # shipped models


@pytest.mark.parametrize("path", IMAGE_VECTORS, ids=lambda p: p.name)
def test_image_vector_decodes_with_the_shipped_model(path):
    from PIL import Image

    from aecodec import codec

    doc = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    image = codec.decompress_image(data)  # symbol CRCs must match: exact entropy decoding
    expected = np.asarray(Image.open(VECTORS / doc["expected"]), np.int16)
    got = np.asarray(image, np.int16)
    assert image.size == (doc["width"], doc["height"]) and image.mode == doc["mode"]
    assert np.abs(got - expected).max() <= doc["pixel_tolerance"]
    for cut in range(0, len(data), 7):
        with pytest.raises(FormatError):
            codec.decompress_image(data[:cut])


AUDIO_VECTORS = sorted(VECTORS.glob("audio-*.aec"))


@pytest.mark.parametrize("path", AUDIO_VECTORS, ids=lambda p: p.name)
def test_audio_vector_decodes_with_the_shipped_model(path):
    from aecodec import audio

    doc = json.loads(path.with_suffix(".json").read_text())
    data = path.read_bytes()
    y, rate = audio.decompress(data)  # symbol CRCs must match: exact entropy decoding
    expected = np.load(VECTORS / doc["expected"])
    assert rate == doc["sample_rate"] and y.shape == (doc["frames"], doc["channels"])
    assert np.abs(y - expected).max() <= doc["sample_tolerance"]
    for cut in range(0, len(data), 97):
        with pytest.raises(FormatError):
            audio.decompress(data[:cut])


def test_context_vector_decodes_and_reencodes():
    """The §6.1 vector (tiny seeded context model): same bytes when re-encoded, the expected
    pixels (±1) when decoded, and every truncation is refused."""
    from PIL import Image

    from aecodec import codec
    from aecodec.testing import smooth_image, tiny_context_model

    data = (VECTORS / "image-context-tiny.aec").read_bytes()
    doc = json.loads((VECTORS / "image-context-tiny.json").read_text())
    model = tiny_context_model()
    assert container.ContainerReader(data).minor == 3
    assert codec.compress_image(smooth_image(96, 48, seed=11), 2.5, model=model, tile=64, independent_tiles=True) == data
    pixels = np.asarray(codec.decompress_image(data, model=model), dtype=np.int16)
    expected = np.asarray(Image.open(VECTORS / doc["expected"]), dtype=np.int16)
    assert np.abs(pixels - expected).max() <= doc["pixel_tolerance"]
    for cut in range(0, len(data), 97):
        with pytest.raises(FormatError):
            codec.decompress_image(data[:cut], model=model)


@pytest.mark.parametrize("name, minor, flags, reencodes", [
    ("image-overlap-200x120", 4, container.FLAG_OVERLAPPED_TILES, False),  # 1.4: no longer written
    ("image-shared-hyper-200x120", 5, container.FLAG_OVERLAPPED_TILES | container.FLAG_SHARED_HYPER, True),
])
def test_overlap_vectors_decode(name, minor, flags, reencodes):
    """The §6.2 vectors (overlapped 64-px tiles, shipped model; 1.5 with shared ẑ, §6.3): their
    flags, the same bytes when re-encoded (the writer's current layout), the expected pixels (±1),
    every truncation refused; without a flag (what an older writer would have meant) the header
    is refused rather than decoded with seams or a desync."""
    from PIL import Image

    from aecodec import codec

    data = (VECTORS / f"{name}.aec").read_bytes()
    doc = json.loads((VECTORS / f"{name}.json").read_text())
    reader = container.ContainerReader(data)
    assert reader.minor == minor and reader.flags & ~container.FLAG_DEFLATE_HEADER == flags
    assert reader.header["image"]["overlap"] >= 1
    assert ("hyper_overlap" in reader.header["image"]) == bool(flags & container.FLAG_SHARED_HYPER)
    if reencodes:
        crop = Image.open(Path(__file__).resolve().parents[1] / "examples" / "kodim23.png").convert("RGB")
        assert codec.compress_image(crop.crop((250, 120, 450, 240)), 4, tile=doc["tile"]) == data
    pixels = np.asarray(codec.decompress_image(data), dtype=np.int16)
    expected = np.asarray(Image.open(VECTORS / doc["expected"]), dtype=np.int16)
    assert np.abs(pixels - expected).max() <= doc["pixel_tolerance"]
    for cut in range(0, len(data), 211):
        with pytest.raises(FormatError):
            codec.decompress_image(data[:cut])
    for flag in (container.FLAG_OVERLAPPED_TILES, container.FLAG_SHARED_HYPER) if reencodes else (
            container.FLAG_OVERLAPPED_TILES,):
        unflagged = bytearray(data)
        unflagged[6:8] = (reader.flags & ~flag).to_bytes(2, "little")
        with pytest.raises(HeaderError):
            codec.decompress_image(bytes(unflagged))


# Files written by release 0.2.0 (commit 931f075), one per model it shipped: they must decode in
# every later release to the same pixels and samples (test_*_vector_decodes_with_the_shipped_model).
# make_vectors.py never rewrites them.
RELEASE_0_2_0 = {"image-q5-72x40.aec": 8, "audio-speech-6k-stereo.aec": 2, "audio-music-24k-0.2.0.aec": 3}


@pytest.mark.parametrize("name", sorted(RELEASE_0_2_0))
def test_a_0_2_0_file_of_each_model_is_kept(name):
    from aecodec import registry

    header, _ = container.unpack((VECTORS / name).read_bytes())
    assert header["model"]["id"] == RELEASE_0_2_0[name]
    variant = registry.variant(header["model"]["id"])  # still shipped, with the same weights
    assert variant.weights_prefix == header["model"]["weights"]
