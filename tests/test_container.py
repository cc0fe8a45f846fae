"""Container: round trips, random access, typed errors for every kind of damage."""

import io
import struct
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aecodec import container
from aecodec.errors import (
    BadMagicError,
    ChecksumError,
    FormatError,
    HeaderError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

HEADER = {"modality": "test", "n": 3, "nested": {"b": [1, 2], "a": "é"}}
CHUNKS = [("AAAA", b"hello"), ("BBBB", b""), ("TILE", bytes(range(256)) * 3)]


def test_round_trip_bytes_and_file(tmp_path):
    data = container.pack(HEADER, CHUNKS)
    assert data[:4] == container.MAGIC
    assert container.unpack(data) == (HEADER, CHUNKS)
    path = tmp_path / "x.aec"
    path.write_bytes(data)
    with open(path, "rb") as f:
        reader = container.ContainerReader(f)
        assert reader.header == HEADER
        index = reader.index()
        assert [c.tag for c in index] == ["AAAA", "BBBB", "TILE"]
        # random access: the last chunk first
        assert reader.read(index[2]) == CHUNKS[2][1]
        assert reader.read(index[0]) == b"hello"


def test_non_seekable_stream_reads_in_order():
    data = container.pack(HEADER, CHUNKS)

    class Pipe(io.RawIOBase):
        def __init__(self, b):
            self._b = io.BytesIO(b)

        def readable(self):
            return True

        def seekable(self):
            return False

        def readinto(self, buf):
            chunk = self._b.read(min(len(buf), 7))  # short reads, as from a pipe
            buf[: len(chunk)] = chunk
            return len(chunk)

    reader = container.ContainerReader(io.BufferedReader(Pipe(data)))
    assert list(reader.chunks()) == CHUNKS


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=20), st.booleans()), max_size=6),
    st.lists(st.tuples(st.sampled_from(["ABCD", "TILE", "EXIF", "ICCP"]), st.binary(max_size=300)), max_size=6),
)
def test_property_round_trip(header, chunks):
    assert container.unpack(container.pack(header, chunks)) == (header, chunks)


def test_header_is_canonical():
    assert b'{"a":[1,2],"b":1}' in container.pack({"b": 1, "a": [1, 2]}, [], compress_header=False)
    data = container.pack({"b": 1, "a": [1, 2]}, [])
    assert container.inflate_header(data[16:16 + container.ContainerReader(data).header_bytes]) == b'{"a":[1,2],"b":1}'


def test_every_truncation_is_a_typed_error():
    data = container.pack(HEADER, CHUNKS)
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            container.unpack(data[:cut])


@pytest.mark.parametrize("pos", range(0, 400, 7))
def test_flipped_byte_is_detected(pos):
    data = bytearray(container.pack(HEADER, CHUNKS))
    data[pos] ^= 0x40
    with pytest.raises(FormatError):
        container.unpack(bytes(data))


def test_flipped_payload_byte_is_a_checksum_error():
    data = bytearray(container.pack(HEADER, CHUNKS))
    pos = data.index(b"hello")
    data[pos] ^= 1
    with pytest.raises(ChecksumError):
        container.unpack(bytes(data))


def _preamble(data: bytes, **fields) -> bytes:
    magic, major, minor, flags, hlen, hcrc = container.PREAMBLE.unpack(data[:16])
    values = dict(magic=magic, major=major, minor=minor, flags=flags, hlen=hlen, hcrc=hcrc) | fields
    return container.PREAMBLE.pack(*values.values()) + data[16:]


@pytest.mark.parametrize(
    "edit, error",
    [
        (lambda d: b"PK\x03\x04" + d[4:], BadMagicError),
        (lambda d: b"", TruncatedError),
        (lambda d: b"hello world, this is text\n", BadMagicError),
        (lambda d: _preamble(d, major=2), UnsupportedVersionError),
        (lambda d: _preamble(d, flags=8), UnsupportedVersionError),
        (lambda d: _preamble(d, flags=0x8001), UnsupportedVersionError),
        (lambda d: _preamble(d, hlen=0xFFFFFFFF), LimitError),
        (lambda d: _preamble(d, hlen=0), LimitError),
        (lambda d: _preamble(d, hcrc=0), ChecksumError),
        (lambda d: d + b"\0", FormatError),
    ],
)
def test_bad_preamble(edit, error):
    with pytest.raises(error):
        container.unpack(edit(container.pack(HEADER, CHUNKS)))


def test_minor_version_is_accepted():
    data = _preamble(container.pack(HEADER, CHUNKS), minor=9)
    assert container.unpack(data) == (HEADER, CHUNKS)


def _with_header(body: bytes, flags: int = 0) -> bytes:
    minor = 1 if flags else 0
    return container.PREAMBLE.pack(container.MAGIC, 1, minor, flags, len(body), zlib.crc32(body)) + body


IMAGE_HEADER = {"coder": {"name": "aec-range-v1", "precision": 16},
                "image": {"bit_depth": 8, "coded_channels": 3, "height": 512, "mode": "RGB", "tile": 1024, "width": 768},
                "modality": "image", "model": {"id": 9, "name": "image-hyperprior-gain-v9", "weights": "0123456789abcdef"},
                "quality": "3"}


@pytest.mark.parametrize("header", [HEADER, IMAGE_HEADER, {}])
def test_compressed_and_plain_headers(header):
    """Default: 1.1 with a deflated header; compress_header=False: a 1.0 file. Both read back the same."""
    small, plain = container.pack(header, CHUNKS), container.pack(header, CHUNKS, compress_header=False)
    assert small[4:8] == bytes([1, 1, container.FLAG_DEFLATE_HEADER, 0]) and plain[4:8] == bytes([1, 0, 0, 0])
    assert container.unpack(small) == container.unpack(plain) == (header, CHUNKS)
    reader = container.ContainerReader(small)
    assert (reader.major, reader.minor, reader.flags) == (1, 1, 1)
    assert reader.header_bytes == len(container.deflate_header(container.canonical_json(header)))
    assert [c.tag for c in reader.index()] == [t for t, _ in CHUNKS]


def test_compressed_header_is_small():
    """The dictionary makes a typical image header ~30 bytes (it is ~250 as JSON)."""
    stored = container.deflate_header(container.canonical_json(IMAGE_HEADER))
    assert len(stored) < 60 < 240 < len(container.canonical_json(IMAGE_HEADER))
    assert container.inflate_header(stored) == container.canonical_json(IMAGE_HEADER)


def test_dictionary_is_the_one_in_the_spec():
    """The preset dictionary is normative: the code's bytes are the SPEC's (§2.1) verbatim."""
    spec = (Path(__file__).resolve().parents[1] / "bitstream" / "SPEC.md").read_text()
    block = spec.split("<!-- header-dictionary -->")[1].split("```")[1]
    assert block.strip().replace("\n", "").encode() == container.HEADER_DICTIONARY


@pytest.mark.parametrize(
    "stored, error",
    [
        (b"\xff\xfe\xfd\xfc", HeaderError),  # not deflate
        (container.deflate_header(b'{"a":1}')[:-1], HeaderError),  # ends inside the stream
        (container.deflate_header(b'{"a":1}') + b"\0", HeaderError),  # bytes after the stream
        (container.deflate_header(b'{"b":1,"a":2}'), HeaderError),  # not canonical once inflated
        (container.deflate_header(b" " * (container.MAX_HEADER_BYTES + 1)), LimitError),  # a bomb: never inflated past the bound
        (container.deflate_header(b'{"a":"' + b"x" * 10_000_000 + b'"}'), LimitError),
        (container.canonical_json(HEADER), HeaderError),  # flag set on a plain JSON header
    ],
)
def test_bad_compressed_header(stored, error):
    with pytest.raises(error):
        container.ContainerReader(_with_header(stored, flags=container.FLAG_DEFLATE_HEADER))


@pytest.mark.parametrize(
    "body",
    [b"[1,2]", b'{"a":NaN}', b'{"b":1,"a":2}', b'{"a": 1}', b"\xff\xfe", b'{"a":', b"[" * 50000],
)
def test_bad_header_json(body):
    with pytest.raises(HeaderError):
        container.ContainerReader(_with_header(body))


def test_huge_chunk_length_does_not_allocate():
    """A chunk declaring 4 GiB in a tiny stream is rejected before any allocation."""
    body = container.canonical_json(HEADER)
    data = _with_header(body) + struct.pack("<I4s", 0xFFFFFFF0, b"TILE") + b"x" * 10
    with pytest.raises(LimitError):
        container.unpack(data)
    data = _with_header(body) + struct.pack("<I4s", 1 << 29, b"TILE") + b"x" * 10
    with pytest.raises(TruncatedError):
        container.unpack(data)


def test_writer_limits():
    with pytest.raises(LimitError):
        container.pack({"x": "a" * (container.MAX_HEADER_BYTES + 1)}, [])
    with pytest.raises(HeaderError):
        container.pack({"x": float("nan")}, [])
    with pytest.raises(ValueError):
        container.pack({}, [("TOOLONG", b"")])
    with pytest.raises(ValueError):
        container.pack({}, [("INDX", b"")])


def test_index_mismatch_is_detected():
    """A chunk cut out of the middle: every CRC still holds, the index does not."""
    good = container.pack(HEADER, CHUNKS)
    start = good.index(b"BBBB") - 4
    spliced = good[:start] + good[start + 12 :]
    with pytest.raises(FormatError, match="index"):
        container.unpack(spliced)
    with pytest.raises(FormatError):
        container.ContainerReader(spliced).index()
