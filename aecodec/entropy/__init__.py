"""Entropy coding of integer symbols with CompressAI-layout tables (no torch).

    tables = Tables(cdfs, cdf_lengths, offsets, precision=16)    validated once (a model builds its own at load)
    encode(symbols, indexes, tables) -> bytes
    decode(data, indexes, tables) -> np.ndarray (int32, shape of indexes)
    (the three arrays and ``precision=`` may be passed instead of ``tables``: validated on each call)

``cdfs`` is ``_quantized_cdf`` (int32 [n_tables, width]), ``cdf_lengths`` is
``_cdf_length`` and ``offsets`` is ``_offset`` of a CompressAI EntropyBottleneck
or GaussianConditional after ``update()``. ``indexes[i]`` selects the table of
``symbols[i]``. Symbols outside a table's range are escape-coded, so any int32
round-trips. ``precision`` is the number of bits of the tables: each table must
end at ``2**precision``.

The coder is the Numba kernel in :mod:`aecodec.entropy.rangecoder`; the
pure-Python :mod:`aecodec.entropy.reference` follows bitstream/SPEC.md literally
and produces the same bytes (it is the oracle of the tests).
"""

from __future__ import annotations

import numpy as np

from aecodec.entropy import rangecoder as _rc
from aecodec.errors import CorruptStreamError, InvalidTableError, TruncatedError

CODER_NAME = "aec-range-v1"
MIN_PRECISION, MAX_PRECISION = 1, 16

__all__ = ["CODER_NAME", "Tables", "encode", "decode", "StreamDecoder", "check_tables", "ideal_bits"]


def _as_int32(name: str, values, ndim: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype.kind not in "iu":
        if arr.size == 0:
            arr = arr.astype(np.int32)
        else:
            raise InvalidTableError(f"{name} must be an integer array, got {arr.dtype}")
    if arr.size and (arr.min() < np.iinfo(np.int32).min or arr.max() > np.iinfo(np.int32).max):
        raise InvalidTableError(f"{name} has values outside int32")
    arr = np.ascontiguousarray(arr, dtype=np.int32)
    if ndim is not None and arr.ndim != ndim:
        raise InvalidTableError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    return arr


def check_tables(cdfs, cdf_lengths, offsets, precision: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate and convert tables; raises InvalidTableError naming the first bad table."""
    if not isinstance(precision, (int, np.integer)) or not MIN_PRECISION <= precision <= MAX_PRECISION:
        raise InvalidTableError(f"precision must be an integer in [{MIN_PRECISION}, {MAX_PRECISION}], got {precision!r}")
    cdfs = _as_int32("cdfs", cdfs, 2)
    cdf_lengths = _as_int32("cdf_lengths", cdf_lengths, 1)
    offsets = _as_int32("offsets", offsets, 1)
    status, bad = _rc.validate_tables(cdfs, cdf_lengths, offsets, int(precision))
    if status != _rc.OK:
        if bad < 0:
            raise InvalidTableError(
                f"table arrays disagree: {cdfs.shape[0]} cdfs, {cdf_lengths.shape[0]} lengths, {offsets.shape[0]} offsets"
            )
        raise InvalidTableError(
            f"table {bad} is not a valid CDF at precision {precision} "
            f"(needs 2 <= length <= {cdfs.shape[1]}, cdf[0] == 0, cdf[length-1] == {1 << precision}, strictly increasing)"
        )
    return cdfs, cdf_lengths, offsets


class Tables(tuple):
    """Validated coding tables ``(cdfs, cdf_lengths, offsets)`` at ``precision`` bits: checked once
    here, then coded with as they are. A tuple, so ``*tables`` still spreads into the array form."""

    def __new__(cls, cdfs, cdf_lengths, offsets, precision: int = 16):
        self = super().__new__(cls, check_tables(cdfs, cdf_lengths, offsets, precision))
        self.precision = int(precision)
        self._lut = None
        return self

    @property
    def cdfs(self) -> np.ndarray:
        return self[0]

    @property
    def cdf_lengths(self) -> np.ndarray:
        return self[1]

    @property
    def offsets(self) -> np.ndarray:
        return self[2]

    def lut(self) -> tuple[np.ndarray, int]:
        """The decoder's symbol lookup table, built on first use."""
        if self._lut is None:
            self._lut = _rc.build_lut(self.cdfs, self.cdf_lengths, self.precision)
        return self._lut


def _tables(tables, cdf_lengths, offsets, precision: int | None) -> Tables:
    """``Tables`` as given, or built (validated) from the three arrays. A precision other than the
    tables' own re-validates them at that precision, which fails for tables made for another."""
    if isinstance(tables, Tables):
        if cdf_lengths is not None or offsets is not None:
            raise TypeError("pass either Tables or the three table arrays, not both")
        return tables if precision is None or precision == tables.precision else Tables(*tables, precision)
    return Tables(tables, cdf_lengths, offsets, 16 if precision is None else precision)


def encode(symbols, indexes, tables, cdf_lengths=None, offsets=None, precision: int | None = None) -> bytes:
    """Range-code ``symbols`` (any int32), each with the table ``indexes`` selects."""
    tables = _tables(tables, cdf_lengths, offsets, precision)
    (cdfs, cdf_lengths, offsets), precision = tables, tables.precision
    symbols = _as_int32("symbols", symbols)
    indexes = _as_int32("indexes", indexes)
    if symbols.shape != indexes.shape:
        raise InvalidTableError(f"symbols {symbols.shape} and indexes {indexes.shape} differ in shape")
    status, buf, n = _rc.encode_kernel(symbols.reshape(-1), indexes.reshape(-1), cdfs, cdf_lengths, offsets, int(precision))
    if status == _rc.ERR_INDEX:
        raise InvalidTableError(f"an index is outside [0, {cdfs.shape[0]})")
    # The first byte of the LZMA construction is always zero and is not stored.
    assert buf[0] == 0, "range coder invariant: the first output byte is zero"
    return buf[1:n].tobytes()


def decode(data, indexes, tables, cdf_lengths=None, offsets=None, precision: int | None = None) -> np.ndarray:
    """Inverse of :func:`encode`: the symbols, int32, shaped like ``indexes``."""
    tables = _tables(tables, cdf_lengths, offsets, precision)
    (cdfs, cdf_lengths, offsets), precision = tables, tables.precision
    indexes = _as_int32("indexes", indexes)
    buf = np.frombuffer(bytes(data), dtype=np.uint8) if not isinstance(data, np.ndarray) else np.ascontiguousarray(data, np.uint8)
    out = np.empty(indexes.size, np.int32)
    status, where = _rc.decode_kernel(buf, indexes.reshape(-1), cdfs, cdf_lengths, offsets, int(precision), out)
    _raise_status(status, where, indexes, cdfs.shape[0], buf.size, str(indexes.size))
    if status == _rc.ERR_TRAILING:
        raise CorruptStreamError(f"range-coded data has bytes left over after {indexes.size} symbols")
    return out.reshape(indexes.shape)


def _raise_status(status: int, where: int, indexes: np.ndarray, n_tables: int, size: int, what: str) -> None:
    if status == _rc.ERR_INDEX:
        raise InvalidTableError(f"index {indexes.reshape(-1)[where]} of symbol {where} is outside [0, {n_tables})")
    if status == _rc.ERR_TRUNCATED:
        raise TruncatedError(f"range-coded data ends early ({size} bytes, at symbol {where} of {what})")
    if status == _rc.ERR_CORRUPT:
        raise CorruptStreamError(f"range-coded data is corrupt (impossible value at symbol {where} of {what})")


class StreamDecoder:
    """Decodes one range-coded stream in several runs, for models whose later tables depend on
    earlier symbols (a context model decodes a pass, computes the next pass's indexes, decodes
    on). The runs together read exactly what :func:`decode` reads over the concatenated
    indexes; :meth:`finish` checks that no bytes are left over."""

    def __init__(self, data, tables, cdf_lengths=None, offsets=None, precision: int | None = None):
        tables = _tables(tables, cdf_lengths, offsets, precision)
        (self.cdfs, self.cdf_lengths, self.offsets), self.precision = tables, tables.precision
        self.data = np.frombuffer(bytes(data), dtype=np.uint8)
        self.state = np.zeros(3, np.int64)
        self.count = 0
        if _rc.decode_start(self.data, self.state) != _rc.OK:
            raise TruncatedError(f"range-coded data ends early ({self.data.size} bytes, at symbol 0)")
        self.lut, self.shift = tables.lut()

    def decode(self, indexes) -> np.ndarray:
        """The next len(indexes) symbols, int32, shaped like ``indexes``."""
        indexes = _as_int32("indexes", indexes)
        out = np.empty(indexes.size, np.int32)
        status, where = _rc.decode_run(self.data, self.state, indexes.reshape(-1), self.cdfs, self.cdf_lengths,
                                       self.offsets, self.precision, self.lut, self.shift, out)
        if status != _rc.OK:
            _raise_status(status, where, indexes, self.cdfs.shape[0], self.data.size,
                          f"a run of {indexes.size} after {self.count}")
        self.count += indexes.size
        return out.reshape(indexes.shape)

    def finish(self) -> None:
        if int(self.state[_rc.STATE_POS]) != self.data.size:
            raise CorruptStreamError(f"range-coded data has bytes left over after {self.count} symbols")


def ideal_bits(symbols, indexes, tables, cdf_lengths=None, offsets=None, precision: int | None = None) -> float:
    """Information content −Σ log2 p of the symbols under the quantized tables, escapes
    counted at their escape-symbol probability plus their bypass bits (what a perfect
    coder with the same model would spend)."""
    tables = _tables(tables, cdf_lengths, offsets, precision)
    (cdfs, cdf_lengths, offsets), precision = tables, tables.precision
    s = np.asarray(symbols, np.int64).reshape(-1)
    t = np.asarray(indexes, np.int64).reshape(-1)
    max_value = cdf_lengths[t].astype(np.int64) - 2
    raw = s - offsets[t]
    escaped = (raw < 0) | (raw >= max_value)
    value = np.where(escaped, max_value, raw)
    freq = cdfs[t, value + 1].astype(np.int64) - cdfs[t, value]
    bits = float(np.sum(precision - np.log2(freq)))
    if escaped.any():
        r = raw[escaped]
        mv = max_value[escaped]
        bypass = np.where(r < 0, -2 * r - 1, 2 * (r - mv))
        chunks = np.array([(int(b).bit_length() + 3) // 4 for b in bypass])
        bits += float(np.sum(4 * (chunks // 15 + 1) + 4 * chunks))
    return bits
