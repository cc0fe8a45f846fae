"""Numba kernels of the aec range coder (bitstream/SPEC.md, section "Range coder").

A byte-oriented range coder with carry propagation (the LZMA construction):
32-bit range kept in [2^24, 2^32), a 33-bit ``low`` whose top byte waits in a
one-byte cache until a carry can no longer reach it. All arithmetic is int64;
no floating point anywhere. Symbols use CompressAI's table layout and escape
coding: the last symbol of each table (``cdf_length - 2``) is an escape that
is followed by the out-of-range value in 4-bit uniform chunks.

Kernels return a status code instead of raising (Numba ``nopython`` code can
raise only constant messages); ``aecodec.entropy`` maps codes to typed errors.
"""

from __future__ import annotations

import numpy as np
from numba import njit

TOP = np.int64(1 << 24)
FULL_RANGE = np.int64(0xFFFFFFFF)
BYPASS_BITS = 4
BYPASS_MAX = (1 << BYPASS_BITS) - 1  # 15: a count chunk equal to this continues
MAX_BYPASS_CHUNKS = 16  # an int32 symbol needs at most 9 chunks; more means corruption

OK = 0
ERR_INDEX = 1  # an index outside the tables
ERR_TRUNCATED = 2  # the decoder needs bytes past the end
ERR_CORRUPT = 3  # a value no encoder can produce
ERR_TRAILING = 4  # bytes left over after the last symbol
ERR_TABLE = 5  # a table that is not a valid CDF


@njit(cache=True, nogil=True)
def validate_tables(cdfs, cdf_lengths, offsets, precision):
    """Return (status, bad_table). Each table: 2 <= length <= width, cdf[0] == 0,
    cdf[length-1] == 2^precision, strictly increasing (every symbol codable)."""
    n, width = cdfs.shape
    if cdf_lengths.shape[0] != n or offsets.shape[0] != n:
        return ERR_TABLE, -1
    total = np.int64(1) << precision
    for t in range(n):
        length = cdf_lengths[t]
        if length < 2 or length > width:
            return ERR_TABLE, t
        if cdfs[t, 0] != 0 or cdfs[t, length - 1] != total:
            return ERR_TABLE, t
        for s in range(length - 1):
            if cdfs[t, s + 1] <= cdfs[t, s]:
                return ERR_TABLE, t
    return OK, -1


@njit(cache=True, nogil=True)
def _grow(buf, needed):
    if needed <= buf.shape[0]:
        return buf
    size = buf.shape[0] * 2
    while size < needed:
        size *= 2
    out = np.empty(size, np.uint8)
    out[: buf.shape[0]] = buf
    return out


@njit(cache=True, nogil=True, inline="always")
def _shift_low(buf, pos, low, cache, cache_size):
    """Emit the cached byte (plus carry) once no carry can reach it; returns the new state."""
    if low < 0xFF000000 or low > 0xFFFFFFFF:
        carry = low >> 32
        buf[pos] = (cache + carry) & 0xFF
        pos += 1
        for _ in range(cache_size - 1):
            buf[pos] = (0xFF + carry) & 0xFF
            pos += 1
        cache_size = 0
        cache = (low >> 24) & 0xFF
    cache_size += 1
    low = (low & 0x00FFFFFF) << 8
    return pos, low, cache, cache_size


@njit(cache=True, nogil=True)
def encode_kernel(symbols, indexes, cdfs, cdf_lengths, offsets, precision):
    """symbols, indexes: flat int32. Returns (status, bytes, n_bytes)."""
    n = symbols.shape[0]
    n_tables = cdfs.shape[0]
    buf = np.empty(max(64, n // 2 + 64), np.uint8)
    pos = 0
    low = np.int64(0)
    rng = FULL_RANGE
    cache = np.int64(0)
    cache_size = np.int64(1)
    # Escaped symbols are coded as up to 1 + 2 + 9 intervals, queued here.
    pending_start = np.zeros(16, np.int64)
    pending_freq = np.zeros(16, np.int64)
    pending_bits = np.zeros(16, np.int64)
    for i in range(n):
        # a symbol emits at most 9 bytes besides the pending cache run
        if pos + cache_size + 16 > buf.shape[0]:
            buf = _grow(buf, pos + cache_size + 16)
        t = indexes[i]
        if t < 0 or t >= n_tables:
            return ERR_INDEX, buf, 0
        max_value = np.int64(cdf_lengths[t] - 2)
        raw = np.int64(symbols[i]) - np.int64(offsets[t])
        if raw >= 0 and raw < max_value:
            # fast path: one table interval
            c_lo = np.int64(cdfs[t, raw])
            r = rng >> precision
            low += r * c_lo
            rng = r * (np.int64(cdfs[t, raw + 1]) - c_lo)
            while rng < TOP:
                rng <<= 8
                pos, low, cache, cache_size = _shift_low(buf, pos, low, cache, cache_size)
            continue
        if raw < 0:
            bypass = -2 * raw - 1
        else:
            bypass = 2 * (raw - max_value)
        m = 0
        c_lo = np.int64(cdfs[t, max_value])
        pending_start[m] = c_lo
        pending_freq[m] = np.int64(cdfs[t, max_value + 1]) - c_lo
        pending_bits[m] = precision
        m += 1
        chunks = 0
        while (bypass >> (BYPASS_BITS * chunks)) != 0:
            chunks += 1
        count = chunks
        while count >= BYPASS_MAX:
            pending_start[m] = BYPASS_MAX
            pending_freq[m] = 1
            pending_bits[m] = BYPASS_BITS
            m += 1
            count -= BYPASS_MAX
        pending_start[m] = count
        pending_freq[m] = 1
        pending_bits[m] = BYPASS_BITS
        m += 1
        for j in range(chunks):
            pending_start[m] = (bypass >> (BYPASS_BITS * j)) & BYPASS_MAX
            pending_freq[m] = 1
            pending_bits[m] = BYPASS_BITS
            m += 1
        for k in range(m):
            r = rng >> pending_bits[k]
            low += r * pending_start[k]
            rng = r * pending_freq[k]
            while rng < TOP:
                rng <<= 8
                pos, low, cache, cache_size = _shift_low(buf, pos, low, cache, cache_size)
    # flush: five shift_low steps push out the cache and the four bytes of low
    buf = _grow(buf, pos + cache_size + 16)
    for _ in range(5):
        pos, low, cache, cache_size = _shift_low(buf, pos, low, cache, cache_size)
    return OK, buf, pos


LUT_BITS = 10


@njit(cache=True, nogil=True, inline="always")
def _refill(data, pos, code, rng):
    """Decoder normalization: shift in bytes while range < 2^24. Returns pos past the end
    (size + 1) when the data ran out, which the caller reports as truncation."""
    size = data.shape[0]
    while rng < TOP:
        if pos >= size:
            return size + 1, code, rng
        code = (code << 8) | np.int64(data[pos])
        pos += 1
        rng <<= 8
    return pos, code, rng


@njit(cache=True, nogil=True)
def build_lut(cdfs, cdf_lengths, precision):
    """lut[t, b] = largest symbol s of table t with cdf[s] <= b << shift: the decoder's
    starting point, from which a short forward scan finds the symbol (no binary search)."""
    bits = min(precision, LUT_BITS)
    shift = precision - bits
    n = cdfs.shape[0]
    lut = np.empty((n, (1 << bits) + 1), np.int32)
    for t in range(n):
        s = 0
        last = cdf_lengths[t] - 2
        for b in range((1 << bits) + 1):
            v = np.int64(b) << shift
            while s < last and cdfs[t, s + 1] <= v:
                s += 1
            lut[t, b] = s
    return lut, shift


# Decoder state between runs: position in the data, code value, range.
STATE_POS, STATE_CODE, STATE_RANGE = 0, 1, 2


@njit(cache=True, nogil=True)
def decode_start(data, state):
    """Prime the decoder with the first four bytes. Returns ERR_TRUNCATED if there are fewer."""
    if data.shape[0] < 4:
        return ERR_TRUNCATED
    state[STATE_CODE] = (np.int64(data[0]) << 24) | (np.int64(data[1]) << 16) | (np.int64(data[2]) << 8) | np.int64(data[3])
    state[STATE_POS] = 4
    state[STATE_RANGE] = FULL_RANGE
    return OK


@njit(cache=True, nogil=True)
def decode_run(data, state, indexes, cdfs, cdf_lengths, offsets, precision, lut, shift, out):
    """Decode len(indexes) more symbols into out, continuing from ``state`` (updated).
    Returns (status, position of the failing symbol or -1). Decoding a sequence in several
    runs gives exactly what one run over the whole sequence gives."""
    n = indexes.shape[0]
    n_tables = cdfs.shape[0]
    size = data.shape[0]
    pos = state[STATE_POS]
    code = state[STATE_CODE]
    rng = state[STATE_RANGE]
    total = np.int64(1) << precision
    for i in range(n):
        t = indexes[i]
        if t < 0 or t >= n_tables:
            return ERR_INDEX, i
        length = cdf_lengths[t]
        max_value = np.int64(length - 2)
        # --- the table symbol
        r = rng >> precision
        if code >= r * total:
            return ERR_CORRUPT, i
        # v = code // r as an unsigned division (Python floor semantics cost extra)
        v = np.int64(np.uint64(code) // np.uint64(r))
        lo_s = lut[t, v >> shift]
        while cdfs[t, lo_s + 1] <= v:
            lo_s += 1
        c_lo = np.int64(cdfs[t, lo_s])
        code -= r * c_lo
        rng = r * (np.int64(cdfs[t, lo_s + 1]) - c_lo)
        pos, code, rng = _refill(data, pos, code, rng)
        if pos > size:
            return ERR_TRUNCATED, i
        value = np.int64(lo_s)
        if value == max_value:
            # --- escape: chunk count (continued while 15), then the chunks
            chunks = 0
            bypass = np.int64(0)
            stage = 0  # 0: count, 1: chunks
            j = 0
            while True:
                r = rng >> BYPASS_BITS
                if code >= r << BYPASS_BITS:
                    return ERR_CORRUPT, i
                u = code // r
                code -= r * u
                rng = r
                pos, code, rng = _refill(data, pos, code, rng)
                if pos > size:
                    return ERR_TRUNCATED, i
                if stage == 0:
                    chunks += u
                    if chunks > MAX_BYPASS_CHUNKS:
                        return ERR_CORRUPT, i
                    if u < BYPASS_MAX:
                        stage = 1
                        if chunks == 0:
                            break
                else:
                    bypass |= u << (BYPASS_BITS * j)
                    j += 1
                    if j == chunks:
                        break
            if bypass & 1:
                value = -(bypass >> 1) - 1
            else:
                value = (bypass >> 1) + max_value
        symbol = value + np.int64(offsets[t])
        if symbol < -2147483648 or symbol > 2147483647:
            return ERR_CORRUPT, i
        out[i] = symbol
    state[STATE_POS] = pos
    state[STATE_CODE] = code
    state[STATE_RANGE] = rng
    return OK, -1


@njit(cache=True, nogil=True)
def decode_kernel(data, indexes, cdfs, cdf_lengths, offsets, precision, out):
    """data: uint8 without the encoder's always-zero first byte; indexes flat int32; out: int32 of the same size.
    Returns (status, position of the failing symbol or -1)."""
    state = np.zeros(3, np.int64)
    if decode_start(data, state) != OK:
        return ERR_TRUNCATED, 0
    lut, shift = build_lut(cdfs, cdf_lengths, precision)
    status, where = decode_run(data, state, indexes, cdfs, cdf_lengths, offsets, precision, lut, shift, out)
    if status != OK:
        return status, where
    if state[STATE_POS] != data.shape[0]:
        return ERR_TRAILING, indexes.shape[0]
    return OK, -1
