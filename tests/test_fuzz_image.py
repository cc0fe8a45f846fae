"""Short fuzzing of image decoding: random bytes, and mutations re-packed with valid CRCs so they
reach the header validation and the range decoder. Anything but an AecError is a bug."""

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aecodec import codec, container
from aecodec.errors import AecError
from aecodec.testing import smooth_image, tiny_model

MODEL = tiny_model()
SEED_FILE = codec.compress_image(smooth_image(100, 70), 6, model=MODEL, tile=64)
HEADER, CHUNKS = container.unpack(SEED_FILE)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


def decode_or_typed_error(data: bytes) -> None:
    try:
        image = codec.decompress_image(data, model=MODEL)
    except AecError:
        return
    assert image.size[0] >= 1 and image.size[1] >= 1


@FUZZ
@given(st.binary(max_size=300))
def test_random_bytes(data):
    decode_or_typed_error(data)


@FUZZ
@given(st.binary(max_size=200))
def test_random_bytes_after_magic(data):
    decode_or_typed_error(container.MAGIC + data)


@FUZZ
@given(st.integers(0, len(CHUNKS) - 1), st.lists(st.tuples(st.integers(0, 10_000), st.integers(1, 255)), min_size=1, max_size=4))
def test_tile_payload_mutations_with_valid_crc(which, flips):
    tag, payload = CHUNKS[which]
    payload = bytearray(payload)
    for pos, xor in flips:
        payload[pos % len(payload)] ^= xor
    chunks = list(CHUNKS)
    chunks[which] = (tag, bytes(payload))
    decode_or_typed_error(container.pack(HEADER, chunks))


@FUZZ
@given(st.integers(0, len(CHUNKS) - 1), st.integers(0, 400))
def test_truncated_payload_with_valid_crc(which, cut):
    chunks = list(CHUNKS)
    tag, payload = chunks[which]
    chunks[which] = (tag, payload[: cut % (len(payload) + 1)])
    decode_or_typed_error(container.pack(HEADER, chunks))


JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.text(max_size=6),
                        st.lists(st.integers(), max_size=2))


@FUZZ
@given(st.sampled_from(["width", "height", "tile", "mode", "bit_depth", "coded_channels"]), JSON_VALUES)
def test_image_header_fields(field, value):
    header = json.loads(json.dumps(HEADER))
    header["image"][field] = value
    decode_or_typed_error(container.pack(header, CHUNKS))


@FUZZ
@given(st.sampled_from(["quality", "modality", "model", "coder", "image"]), JSON_VALUES)
def test_top_level_header_fields(field, value):
    header = json.loads(json.dumps(HEADER))
    header[field] = value
    decode_or_typed_error(container.pack(header, CHUNKS))


@pytest.mark.parametrize("order", ["reversed", "duplicated", "dropped"])
def test_spliced_chunks(order):
    chunks = {"reversed": CHUNKS[::-1], "duplicated": CHUNKS + CHUNKS, "dropped": CHUNKS[1:]}[order]
    with pytest.raises(AecError):
        codec.decompress_image(container.pack(HEADER, chunks), model=MODEL)


def test_seed_file_decodes():
    assert np.asarray(codec.decompress_image(SEED_FILE, model=MODEL)).shape == (70, 100, 3)
