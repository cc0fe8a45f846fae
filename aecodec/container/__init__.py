"""The aec container (bitstream/SPEC.md, section "Container"): bytes only, no torch.

    preamble (16 bytes) | header (canonical JSON) | chunk* | INDX chunk | trailer (12 bytes)

    preamble: magic b"\\x89AEC" | major u8 | minor u8 | flags u16 | header_len u32 | header_crc32 u32
    header:   canonical JSON, or (flag 1, bitstream 1.1) that JSON raw-deflated against
              HEADER_DICTIONARY: ~30 bytes instead of ~250, which matters at 0.1 bpp and 3 kbps
    chunk:    length u32 | tag 4×ASCII | payload | crc32(tag + payload) u32
    INDX:     one 16-byte entry per chunk before it: offset u64 | length u32 | tag
    trailer:  offset of the INDX chunk u64 | b"AEC\\x1a"

All integers are little-endian. A reader can stream through the chunks in order
(stdin) or, on a seekable file, read the trailer, then the index, then jump to
one chunk. Every declared size is checked against a bound and against the bytes
actually present before anything is allocated.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from aecodec.errors import (
    BadMagicError,
    ChecksumError,
    FormatError,
    HeaderError,
    LimitError,
    TruncatedError,
    UnsupportedVersionError,
)

MAGIC = b"\x89AEC"
TRAILER_MAGIC = b"AEC\x1a"
MAJOR, MINOR = 1, 5  # MINOR: the newest minor version this module knows
PREAMBLE = struct.Struct("<4sBBHII")  # magic, major, minor, flags, header_len, header_crc32
CHUNK_HEAD = struct.Struct("<I4s")  # payload length, tag
CRC = struct.Struct("<I")
INDEX_ENTRY = struct.Struct("<QI4s")  # offset, payload length, tag
TRAILER = struct.Struct("<Q4s")
MAX_HEADER_BYTES = 64 * 1024
MAX_CHUNK_BYTES = 1 << 30
INDEX_TAG = b"INDX"
FLAG_DEFLATE_HEADER = 0x0001  # 1.1: the header is raw deflate of the canonical JSON (SPEC §2.1)
# 1.4: image tiles are synthesised from the whole image's latent through overlapping windows
# (SPEC §6.2); a 1.3 reader would decode each tile alone and show seams, so it refuses instead
FLAG_OVERLAPPED_TILES = 0x0002
# 1.5: overlapped tiles share ẑ, each tile's y parameters come from a window of the whole image's
# ẑ (SPEC §6.3); a 1.4 reader would use tile-local ones and fail the symbol CRC, so it refuses
FLAG_SHARED_HYPER = 0x0004
KNOWN_FLAGS = FLAG_DEFLATE_HEADER | FLAG_OVERLAPPED_TILES | FLAG_SHARED_HYPER  # any other set bit: a feature this reader lacks
# Normative (SPEC §2.1): the preset dictionary of compressed headers. Never change it: files
# depend on it. Deflate matches the header against typical headers, most common ones last
# (nearest). Values that vary (sizes, frame counts, weights) are neutral placeholders.
HEADER_DICTIONARY = (
    b'"subtype":"FLOAT"PCM_24"'
    b'{"audio":{"channels":2,"coding":"mid-side","frames":0,"model_rate":48000,"overlap":1920,'
    b'"sample_rate":44100,"segment":480000,"subtype":"PCM_24"},"coder":{"name":"aec-range-v1","precision":16},'
    b'"modality":"audio","model":{"id":0,"name":"audio-music-v1","weights":"0"},"quality":"1"}'
    b'{"audio":{"channels":1,"coding":"mono","frames":0,"model_rate":16000,"overlap":1280,'
    b'"sample_rate":16000,"segment":160000,"subtype":"PCM_16"},"coder":{"name":"aec-range-v1","precision":16},'
    b'"modality":"audio","model":{"id":0,"name":"audio-speech-v1","weights":"0"},"quality":"1"}'
    b'{"coder":{"name":"aec-range-v1","precision":16},"image":{"bit_depth":8,"coded_channels":3,"height":0,'
    b'"mode":"RGB","tile":1024,"width":0},"modality":"image","model":{"id":0,"name":"image-hyperprior-gain-v",'
    b'"weights":"0"},"quality":"1"}'
)

__all__ = [
    "Chunk", "ContainerReader", "ContainerWriter", "canonical_json", "pack", "unpack",
    "MAGIC", "MAJOR", "MINOR", "MAX_HEADER_BYTES", "MAX_CHUNK_BYTES",
    "FLAG_DEFLATE_HEADER", "FLAG_OVERLAPPED_TILES", "FLAG_SHARED_HYPER", "HEADER_DICTIONARY", "deflate_header", "inflate_header",
]


@dataclass(frozen=True)
class Chunk:
    """Where a chunk lies: ``offset`` of its length field, ``length`` of its payload."""

    tag: str
    offset: int
    length: int


def canonical_json(obj: dict) -> bytes:
    """Sorted keys, no spaces, UTF-8, no NaN/Infinity: one byte string per header."""
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise HeaderError(f"header is not representable as canonical JSON: {exc}") from None


def deflate_header(body: bytes) -> bytes:
    """Canonical JSON -> raw deflate (level 9) against HEADER_DICTIONARY."""
    z = zlib.compressobj(9, zlib.DEFLATED, -15, 9, zlib.Z_DEFAULT_STRATEGY, HEADER_DICTIONARY)
    return z.compress(body) + z.flush()


def inflate_header(stored: bytes) -> bytes:
    """Stored (deflated) header -> JSON bytes; at most MAX_HEADER_BYTES are ever inflated."""
    z = zlib.decompressobj(-15, HEADER_DICTIONARY)
    try:
        body = z.decompress(stored, MAX_HEADER_BYTES + 1)
    except zlib.error as exc:
        raise HeaderError(f"compressed header is not a valid deflate stream: {exc}") from None
    if len(body) > MAX_HEADER_BYTES:
        raise LimitError(f"compressed header inflates past {MAX_HEADER_BYTES} bytes")
    if not z.eof:
        raise HeaderError("compressed header ends inside its deflate stream")
    if z.unused_data:
        raise HeaderError(f"{len(z.unused_data)} bytes follow the compressed header's deflate stream")
    return body


def _check_tag(tag: str | bytes) -> bytes:
    raw = tag.encode("ascii") if isinstance(tag, str) else bytes(tag)
    if len(raw) != 4 or not all(0x21 <= b <= 0x7E for b in raw):
        raise ValueError(f"a chunk tag is 4 printable ASCII characters, got {tag!r}")
    return raw


class ContainerWriter:
    """Writes a container to a binary file object; chunks are written as they come.

    >>> with ContainerWriter(f, {"modality": "image"}) as w:
    ...     w.add_chunk("TILE", payload)

    The header is stored deflated (bitstream 1.1) unless ``compress_header`` is False, which
    writes a 1.0 file that every reader of major version 1 reads. ``minor``: the minor version
    the content needs (a header key or chunk tag of that version); the written minor version is
    the lowest that describes the file. ``flags``: feature bits the content needs besides the
    header compression (e.g. ``FLAG_OVERLAPPED_TILES``).
    """

    def __init__(self, fileobj: BinaryIO, header: dict, compress_header: bool = True, minor: int = 0,
                 flags: int = 0):
        if not isinstance(header, dict):
            raise HeaderError("the header must be a JSON object")
        body = canonical_json(header)
        if len(body) > MAX_HEADER_BYTES:
            raise LimitError(f"header of {len(body)} bytes exceeds {MAX_HEADER_BYTES}")
        self._f = fileobj
        self._pos = 0
        self._index: list[Chunk] = []
        self._closed = False
        if not 0 <= minor <= MINOR:
            raise ValueError(f"minor version {minor} is not one this writer knows (0..{MINOR})")
        # the lowest version that describes the file (1.1 added the flag): 1.0 readers still
        # read uncompressed headers and refuse compressed ones by the flag, never misread them
        if flags & ~(KNOWN_FLAGS & ~FLAG_DEFLATE_HEADER):
            raise ValueError(f"flags 0x{flags:04x} are not content flags this writer knows")
        stored = deflate_header(body) if compress_header else body
        flags |= FLAG_DEFLATE_HEADER if compress_header else 0
        minor = max(minor, 1 if compress_header else 0)
        self._write(PREAMBLE.pack(MAGIC, MAJOR, minor, flags, len(stored), zlib.crc32(stored)) + stored)

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._pos += len(data)

    def add_chunk(self, tag: str, payload: bytes) -> None:
        raw_tag = _check_tag(tag)
        if raw_tag == INDEX_TAG:
            raise ValueError("INDX is reserved for the index the writer adds")
        if len(payload) > MAX_CHUNK_BYTES:
            raise LimitError(f"chunk of {len(payload)} bytes exceeds {MAX_CHUNK_BYTES}")
        self._index.append(Chunk(raw_tag.decode(), self._pos, len(payload)))
        self._write_chunk(raw_tag, bytes(payload))

    def _write_chunk(self, raw_tag: bytes, payload: bytes) -> None:
        crc = zlib.crc32(payload, zlib.crc32(raw_tag))
        self._write(CHUNK_HEAD.pack(len(payload), raw_tag) + payload + CRC.pack(crc))

    def close(self) -> None:
        """Write the index and trailer (does not close the file object)."""
        if self._closed:
            return
        index_offset = self._pos
        entries = b"".join(INDEX_ENTRY.pack(c.offset, c.length, c.tag.encode()) for c in self._index)
        self._write_chunk(INDEX_TAG, entries)
        self._write(TRAILER.pack(index_offset, TRAILER_MAGIC))
        self._closed = True

    def __enter__(self) -> "ContainerWriter":
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()


def pack(header: dict, chunks: list[tuple[str, bytes]], compress_header: bool = True) -> bytes:
    """Whole container as bytes."""
    buf = io.BytesIO()
    with ContainerWriter(buf, header, compress_header) as w:
        for tag, payload in chunks:
            w.add_chunk(tag, payload)
    return buf.getvalue()


def _read_exact(f: BinaryIO, n: int, what: str) -> bytes:
    """Read n bytes in bounded steps (a lying length cannot make us allocate n at once)."""
    parts, got = [], 0
    while got < n:
        part = f.read(min(n - got, 1 << 20))
        if not part:
            raise TruncatedError(f"stream ends inside {what} ({got} of {n} bytes)")
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def parse_header(body: bytes) -> dict:
    try:
        header = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        # ValueError covers UnicodeDecodeError, JSONDecodeError and integers over
        # Python's int_max_str_digits limit (a 5000-digit number is valid JSON)
        raise HeaderError(f"header is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    if canonical_json(header) != body:
        raise HeaderError("header JSON is not in canonical form (sorted keys, compact separators)")
    return header


def _reject_constant(name: str):
    raise HeaderError(f"header contains {name}, which JSON does not allow")


class ContainerReader:
    """Reads a container from bytes or a binary file object.

    ``header`` is parsed and checked on construction. ``chunks()`` streams the
    chunks in order, checking each CRC and the final index; ``index()`` and
    ``read(chunk)`` give random access on seekable inputs.
    """

    def __init__(self, source: bytes | bytearray | memoryview | BinaryIO):
        self._f: BinaryIO = io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview)) else source
        pre = self._f.read(PREAMBLE.size)
        if len(pre) < 4 and MAGIC.startswith(pre):
            raise TruncatedError(f"stream of {len(pre)} bytes is too short for an aec file")
        if pre[:4] != MAGIC:
            raise BadMagicError(f"not an aec file (starts with {pre[:4]!r}, expected {MAGIC!r})")
        if len(pre) < PREAMBLE.size:
            raise TruncatedError("stream ends inside the preamble")
        _, self.major, self.minor, self.flags, header_len, header_crc = PREAMBLE.unpack(pre)
        if self.major != MAJOR:
            raise UnsupportedVersionError(f"bitstream version {self.major}.{self.minor}; this reader knows {MAJOR}.x")
        if self.flags & ~KNOWN_FLAGS:
            raise UnsupportedVersionError(f"unknown flags 0x{self.flags:04x}")
        if header_len == 0 or header_len > MAX_HEADER_BYTES:
            raise LimitError(f"header length {header_len} is outside [1, {MAX_HEADER_BYTES}]")
        stored = _read_exact(self._f, header_len, "the header")
        if zlib.crc32(stored) != header_crc:
            raise ChecksumError("header CRC-32 mismatch")
        self.header_bytes = header_len  # as stored, compressed or not
        self.header = parse_header(inflate_header(stored) if self.flags & FLAG_DEFLATE_HEADER else stored)
        self._first_chunk = PREAMBLE.size + header_len
        self._size = self._stream_size()

    def _stream_size(self) -> int | None:
        try:
            if not self._f.seekable():
                return None
            here = self._f.tell()
            end = self._f.seek(0, os.SEEK_END)
            self._f.seek(here)
            return end
        except (OSError, AttributeError):
            return None

    def _read_chunk_at_cursor(self, offset: int) -> tuple[str, bytes]:
        head = self._f.read(CHUNK_HEAD.size)
        if len(head) < CHUNK_HEAD.size:
            raise TruncatedError(f"stream ends inside the chunk header at offset {offset}")
        length, raw_tag = CHUNK_HEAD.unpack(head)
        if length > MAX_CHUNK_BYTES:
            raise LimitError(f"chunk at offset {offset} declares {length} bytes (limit {MAX_CHUNK_BYTES})")
        if self._size is not None and offset + CHUNK_HEAD.size + length + CRC.size > self._size:
            raise TruncatedError(f"chunk at offset {offset} declares {length} bytes past the end of the stream")
        payload = _read_exact(self._f, length, f"the chunk at offset {offset}")
        crc = _read_exact(self._f, CRC.size, f"the CRC of the chunk at offset {offset}")
        if zlib.crc32(payload, zlib.crc32(raw_tag)) != CRC.unpack(crc)[0]:
            raise ChecksumError(f"CRC-32 mismatch in chunk {raw_tag!r} at offset {offset}")
        try:
            tag = raw_tag.decode("ascii")
            _check_tag(tag)
        except (UnicodeDecodeError, ValueError):
            raise FormatError(f"invalid chunk tag {raw_tag!r} at offset {offset}") from None
        return tag, payload

    def chunks(self) -> Iterator[tuple[str, bytes]]:
        """Yield (tag, payload) in stream order, then check the index and the trailer."""
        offset = self._first_chunk
        if self._f.seekable():
            self._f.seek(offset)
        seen: list[Chunk] = []
        while True:
            tag, payload = self._read_chunk_at_cursor(offset)
            if tag == INDEX_TAG.decode():
                if _parse_index(payload, offset) != seen:
                    raise FormatError("the index does not match the chunks of the stream")
                trailer = _read_exact(self._f, TRAILER.size, "the trailer")
                index_offset, magic = TRAILER.unpack(trailer)
                if magic != TRAILER_MAGIC or index_offset != offset:
                    raise FormatError("bad trailer")
                if self._f.read(1):
                    raise FormatError("bytes after the trailer")
                return
            seen.append(Chunk(tag, offset, len(payload)))
            yield tag, payload
            offset += CHUNK_HEAD.size + len(payload) + CRC.size

    def index(self) -> list[Chunk]:
        """The chunk index from the trailer (seekable inputs only)."""
        if self._size is None:
            raise FormatError("random access needs a seekable input")
        if self._size < self._first_chunk + CHUNK_HEAD.size + CRC.size + TRAILER.size:
            raise TruncatedError("stream too short for an index and trailer")
        self._f.seek(self._size - TRAILER.size)
        index_offset, magic = TRAILER.unpack(_read_exact(self._f, TRAILER.size, "the trailer"))
        if magic != TRAILER_MAGIC:
            raise TruncatedError("no trailer at the end of the stream (truncated?)")
        if not self._first_chunk <= index_offset <= self._size - TRAILER.size - CHUNK_HEAD.size - CRC.size:
            raise FormatError(f"index offset {index_offset} is outside the stream")
        self._f.seek(index_offset)
        tag, payload = self._read_chunk_at_cursor(index_offset)
        if tag != INDEX_TAG.decode() or index_offset + CHUNK_HEAD.size + len(payload) + CRC.size != self._size - TRAILER.size:
            raise FormatError("the trailer does not point at the index chunk")
        entries = _parse_index(payload, index_offset)
        end = self._first_chunk
        for c in entries:
            if c.offset != end:
                raise FormatError("index entries are not contiguous chunks")
            end = c.offset + CHUNK_HEAD.size + c.length + CRC.size
        if end != index_offset:
            raise FormatError("index entries do not reach the index chunk")
        return entries

    def read(self, chunk: Chunk) -> bytes:
        """Payload of one indexed chunk, CRC checked."""
        self._f.seek(chunk.offset)
        tag, payload = self._read_chunk_at_cursor(chunk.offset)
        if tag != chunk.tag or len(payload) != chunk.length:
            raise FormatError(f"chunk at offset {chunk.offset} is not the indexed {chunk.tag}")
        return payload


def _parse_index(payload: bytes, index_offset: int) -> list[Chunk]:
    if len(payload) % INDEX_ENTRY.size:
        raise FormatError("index payload is not a whole number of entries")
    out = []
    for off, length, raw_tag in INDEX_ENTRY.iter_unpack(payload):
        if off >= index_offset:
            raise FormatError("index entry points past the index")
        out.append(Chunk(raw_tag.decode("ascii", "replace"), off, length))
    return out


def unpack(data: bytes) -> tuple[dict, list[tuple[str, bytes]]]:
    """Whole container from bytes: (header, [(tag, payload), ...]) with every CRC checked."""
    reader = ContainerReader(data)
    return reader.header, list(reader.chunks())


