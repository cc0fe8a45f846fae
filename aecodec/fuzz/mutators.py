"""Mutators: (rng, seed, pool) -> the bytes of one case, made from a seed file.

    byte level     bitflip, byteset, intset, insert, delete, truncate, splice, random,
                   magic_random, seed (unchanged)
    structure      chunk (the chunk list or a chunk's head, re-packed with valid CRCs), header_field
                   (a JSON field set, deleted or added), header_text (bytes of the header text),
                   preamble, index (INDX entries, trailer)

Each draws only from ``rng``, so a case is a function of its rng's seed and the pool. Seeds
written by the tiny audio model (``is_tiny_audio``) get audio flavours of chunk and header_field
(SEGM heads, TAGS payloads, the audio header fields); every other seed is mutated as before the
audio target existed, so image runs keep their cases. The forging mutators are in ``forge``, the
table that draws one per case in ``cases``.
"""

from __future__ import annotations

import copy
import io
import json
import random
import struct
import zlib

from aecodec import container
from aecodec.fuzz.packing import pack_chunk, pack_raw
from aecodec.fuzz.targets import ALIGN, AUDIO_MODEL_ID, Seed

# byte level

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


# ---------------------------------------------------------------------------------------------
# structure


def _valid(pool: list[Seed], seed: Seed) -> Seed | None:
    """The seed if it unpacks, else the pool's first seed that does (None: none does)."""
    if seed.chunks is not None:
        return seed
    valid = [s for s in pool if s.chunks is not None]
    return None if not valid else valid[0]


def small_pngs(rng: random.Random, width: int, height: int) -> bytes:
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
    if is_tiny_audio(seed):
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
        payload = small_pngs(rng, int(img.get("width", 8)), int(img.get("height", 8)))
        where = [k for k, (t, _) in enumerate(chunks) if t == "ALPH"]
        if where:
            chunks[where[0]] = ("ALPH", bytearray(payload))
        else:
            chunks.insert(rng.randrange(len(chunks) + 1), ("ALPH", bytearray(payload)))
    body = container.canonical_json(seed.header)
    return pack_raw(body, [(t, bytes(p)) for t, p in chunks])


def is_tiny_audio(seed: Seed) -> bool:
    """A file of the tiny audio model: the audio flavours of the mutators apply to these (only, so
    that image runs, whose pool holds the shipped speech model's vector, keep their cases)."""
    header = seed.header
    return (isinstance(header, dict) and header.get("modality") == "audio" and isinstance(header.get("model"), dict)
            and header["model"].get("id") == AUDIO_MODEL_ID)


def tags_payload(rng: random.Random) -> bytes:
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
        payload = bytearray(tags_payload(rng))
        where = [k for k, (t, _) in enumerate(chunks) if t == "TAGS"]
        if where and rng.random() < 0.7:
            chunks[where[0]] = ("TAGS", payload)
        else:
            chunks.insert(rng.choice([0, 0, rng.randrange(len(chunks) + 1)]), ("TAGS", payload))
    body = container.canonical_json(seed.header)
    return pack_raw(body, [(t, bytes(p)) for t, p in chunks])


HUGE = "__aec_fuzz_huge_int__"


def _json_value(rng: random.Random, depth: int = 0):
    """A JSON value near the bounds the header fields are checked against (or HUGE)."""
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


def dump_header(header) -> bytes:
    """A header (any JSON value) as sorted compact UTF-8 text; HUGE becomes a 5,000-digit integer."""
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return text.replace(json.dumps(HUGE), "9" * 5000).encode("utf-8", "surrogatepass")


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
    if is_tiny_audio(seed) and rng.random() < 0.5:
        _audio_fields(rng, header)
        return pack_raw(dump_header(header), seed.chunks)
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
    return pack_raw(dump_header(header), seed.chunks)


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
    return bytes(data[:index_offset]) + pack_chunk(b"INDX", bytes(entries)) + bytes(tail)

