"""Reference range coder: bitstream/SPEC.md section "Range coder", written out literally.

Slow (pure Python integers, one symbol at a time) and obviously correct; it is
the oracle that the Numba kernels are tested against bit for bit. Not used by
the codec.
"""

from __future__ import annotations

from aecodec.errors import CorruptStreamError, InvalidTableError, TruncatedError

TOP = 1 << 24
MASK32 = 0xFFFFFFFF
BYPASS_BITS = 4
BYPASS_MAX = 15
MAX_BYPASS_CHUNKS = 16


def _check(cdfs, cdf_lengths, offsets, precision):
    if not 1 <= precision <= 16:
        raise InvalidTableError("precision must be in [1, 16]")
    if not (len(cdfs) == len(cdf_lengths) == len(offsets)):
        raise InvalidTableError("table arrays disagree in length")
    for t, cdf in enumerate(cdfs):
        n = cdf_lengths[t]
        if n < 2 or n > len(cdf) or cdf[0] != 0 or cdf[n - 1] != 1 << precision:
            raise InvalidTableError(f"table {t} is not a valid CDF")
        if any(cdf[s + 1] <= cdf[s] for s in range(n - 1)):
            raise InvalidTableError(f"table {t} is not strictly increasing")


class ReferenceEncoder:
    def __init__(self):
        self.low, self.range, self.cache, self.cache_size = 0, MASK32, 0, 1
        self.out = bytearray()

    def _shift_low(self):
        if self.low < 0xFF000000 or self.low > MASK32:
            carry = self.low >> 32
            self.out.append((self.cache + carry) & 0xFF)
            for _ in range(self.cache_size - 1):
                self.out.append((0xFF + carry) & 0xFF)
            self.cache_size = 0
            self.cache = (self.low >> 24) & 0xFF
        self.cache_size += 1
        self.low = (self.low & 0x00FFFFFF) << 8

    def encode_interval(self, start: int, freq: int, bits: int):
        r = self.range >> bits
        self.low += r * start
        self.range = r * freq
        while self.range < TOP:
            self.range <<= 8
            self._shift_low()

    def finish(self) -> bytes:
        for _ in range(5):
            self._shift_low()
        assert self.out[0] == 0
        return bytes(self.out[1:])


class ReferenceDecoder:
    def __init__(self, data: bytes):
        if len(data) < 4:
            raise TruncatedError("fewer than 4 bytes")
        self.data, self.pos = data, 4
        self.code = int.from_bytes(data[:4], "big")
        self.range = MASK32

    def _normalize(self):
        while self.range < TOP:
            if self.pos >= len(self.data):
                raise TruncatedError("range-coded data ends early")
            self.code = (self.code << 8) | self.data[self.pos]
            self.pos += 1
            self.range <<= 8

    def decode_value(self, bits: int) -> tuple[int, int]:
        r = self.range >> bits
        v = self.code // r
        if v >= 1 << bits:
            raise CorruptStreamError("impossible value")
        return r, v

    def consume(self, r: int, start: int, freq: int):
        self.code -= r * start
        self.range = r * freq
        self._normalize()


def encode(symbols, indexes, cdfs, cdf_lengths, offsets, precision=16) -> bytes:
    cdfs = [list(map(int, c)) for c in cdfs]
    cdf_lengths, offsets = list(map(int, cdf_lengths)), list(map(int, offsets))
    _check(cdfs, cdf_lengths, offsets, precision)
    enc = ReferenceEncoder()
    for s, t in zip(map(int, symbols), map(int, indexes)):
        if not 0 <= t < len(cdfs):
            raise InvalidTableError("index outside the tables")
        cdf, max_value = cdfs[t], cdf_lengths[t] - 2
        raw = s - offsets[t]
        bypass = None
        if raw < 0:
            bypass, raw = -2 * raw - 1, max_value
        elif raw >= max_value:
            bypass, raw = 2 * (raw - max_value), max_value
        enc.encode_interval(cdf[raw], cdf[raw + 1] - cdf[raw], precision)
        if bypass is not None:
            chunks = 0
            while bypass >> (BYPASS_BITS * chunks):
                chunks += 1
            count = chunks
            while count >= BYPASS_MAX:
                enc.encode_interval(BYPASS_MAX, 1, BYPASS_BITS)
                count -= BYPASS_MAX
            enc.encode_interval(count, 1, BYPASS_BITS)
            for j in range(chunks):
                enc.encode_interval((bypass >> (BYPASS_BITS * j)) & BYPASS_MAX, 1, BYPASS_BITS)
    return enc.finish()


def decode(data, indexes, cdfs, cdf_lengths, offsets, precision=16) -> list[int]:
    cdfs = [list(map(int, c)) for c in cdfs]
    cdf_lengths, offsets = list(map(int, cdf_lengths)), list(map(int, offsets))
    _check(cdfs, cdf_lengths, offsets, precision)
    dec = ReferenceDecoder(bytes(data))
    out = []
    for t in map(int, indexes):
        if not 0 <= t < len(cdfs):
            raise InvalidTableError("index outside the tables")
        cdf, n = cdfs[t], cdf_lengths[t]
        max_value = n - 2
        r, v = dec.decode_value(precision)
        value = max(s for s in range(n - 1) if cdf[s] <= v)  # linear: literal, not fast
        dec.consume(r, cdf[value], cdf[value + 1] - cdf[value])
        if value == max_value:
            chunks = 0
            while True:
                r, u = dec.decode_value(BYPASS_BITS)
                dec.consume(r, u, 1)
                chunks += u
                if chunks > MAX_BYPASS_CHUNKS:
                    raise CorruptStreamError("too many bypass chunks")
                if u < BYPASS_MAX:
                    break
            bypass = 0
            for j in range(chunks):
                r, u = dec.decode_value(BYPASS_BITS)
                dec.consume(r, u, 1)
                bypass |= u << (BYPASS_BITS * j)
            value = -(bypass >> 1) - 1 if bypass & 1 else (bypass >> 1) + max_value
        symbol = value + offsets[t]
        if not -(2**31) <= symbol < 2**31:
            raise CorruptStreamError("symbol outside int32")
        out.append(symbol)
    if dec.pos != len(dec.data):
        raise CorruptStreamError("bytes left over after the last symbol")
    return out
