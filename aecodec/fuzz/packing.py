"""Containers with any header body (non-canonical, huge integers, ...) and any chunk tags.

    pack_raw(body, chunks)  preamble (CRC of body) | body | chunk* | INDX | trailer

``container.pack`` refuses what a fuzzer wants to write (a header that is not canonical JSON,
tags outside printable ASCII); this writes the same layout with whatever it is given, and valid
CRCs and index, so that the mutation reaches the parser behind those checks.
"""

from __future__ import annotations

import zlib

from aecodec import container


def pack_raw(body: bytes, chunks: list[tuple[bytes | str, bytes]], *, major: int = container.MAJOR,
             minor: int = container.MINOR, flags: int = 0) -> bytes:
    """Like container.pack but with raw header bytes and any tags; CRCs and index are valid."""
    out = bytearray(container.PREAMBLE.pack(container.MAGIC, major, minor, flags, len(body), zlib.crc32(body)))
    out += body
    index = []
    for tag, payload in chunks:
        raw_tag = tag.encode("latin-1") if isinstance(tag, str) else bytes(tag)
        index.append(container.INDEX_ENTRY.pack(len(out), len(payload), raw_tag))
        out += pack_chunk(raw_tag, payload)
    index_offset = len(out)
    out += pack_chunk(b"INDX", b"".join(index))
    out += container.TRAILER.pack(index_offset, b"AEC\x1a")
    return bytes(out)


def pack_chunk(raw_tag: bytes, payload: bytes) -> bytes:
    """length | tag | payload | crc32(tag + payload): one chunk with a valid CRC."""
    crc = zlib.crc32(payload, zlib.crc32(raw_tag))
    return container.CHUNK_HEAD.pack(len(payload), raw_tag) + payload + container.CRC.pack(crc)
