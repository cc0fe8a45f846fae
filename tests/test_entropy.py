"""Range coder: round trips (hypothesis), Numba vs reference bit for bit, bad input."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aecodec import entropy
from aecodec.entropy import reference
from aecodec.errors import CorruptStreamError, FormatError, InvalidTableError, TruncatedError

INT32 = st.integers(-(2**31), 2**31 - 1)


def quantized_cdf(pmf: np.ndarray, precision: int) -> np.ndarray:
    """A valid CDF at `precision` from positive weights: every symbol gets at least 1."""
    total = 1 << precision
    n = len(pmf)
    freq = np.maximum(1, np.floor(pmf / pmf.sum() * (total - n)).astype(np.int64)) 
    freq[np.argmax(freq)] += total - freq.sum()
    assert freq.min() >= 1 and freq.sum() == total
    return np.concatenate([[0], np.cumsum(freq)]).astype(np.int32)


@st.composite
def tables(draw, max_tables=5, max_len=40):
    precision = draw(st.integers(6, 16))
    n_tables = draw(st.integers(1, max_tables))
    max_symbols = min(max_len, (1 << precision) // 2)
    lengths, rows, offsets = [], [], []
    for _ in range(n_tables):
        n_sym = draw(st.integers(1, max_symbols))  # coded symbols incl. the escape symbol
        weights = np.array(draw(st.lists(st.floats(0.001, 1000), min_size=n_sym, max_size=n_sym)))
        rows.append(quantized_cdf(weights, precision))
        lengths.append(n_sym + 1)
        offsets.append(draw(st.integers(-50, 50)))
    width = max(lengths)
    cdfs = np.zeros((n_tables, width), np.int32)
    for t, row in enumerate(rows):
        cdfs[t, : len(row)] = row
    return cdfs, np.array(lengths, np.int32), np.array(offsets, np.int32), precision


@st.composite
def coding_problem(draw):
    cdfs, lengths, offsets, precision = draw(tables())
    n = draw(st.integers(0, 300))
    idx = np.array(draw(st.lists(st.integers(0, len(lengths) - 1), min_size=n, max_size=n)), np.int32)
    # mostly in-range symbols, some escapes and extremes
    in_range = st.integers(-60, 100)
    sym = np.array(draw(st.lists(st.one_of(in_range, in_range, in_range, INT32), min_size=n, max_size=n)), np.int64)
    return sym.astype(np.int32), idx, cdfs, lengths, offsets, precision


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(coding_problem())
def test_round_trip_and_reference_agree(problem):
    sym, idx, cdfs, lengths, offsets, precision = problem
    data = entropy.encode(sym, idx, cdfs, lengths, offsets, precision)
    assert data == reference.encode(sym, idx, cdfs, lengths, offsets, precision)
    out = entropy.decode(data, idx, cdfs, lengths, offsets, precision)
    assert out.dtype == np.int32 and np.array_equal(out, sym)
    assert reference.decode(data, idx, cdfs, lengths, offsets, precision) == sym.tolist()


def test_empty_input_round_trips(gaussian_tables):
    cdfs, lengths, offsets = gaussian_tables
    data = entropy.encode(np.zeros(0, np.int32), np.zeros(0, np.int32), cdfs, lengths, offsets)
    assert len(data) == 4
    assert entropy.decode(data, np.zeros(0, np.int32), cdfs, lengths, offsets).shape == (0,)


@pytest.mark.parametrize("value", [-(2**31), -(2**31) + 1, -1000, -1, 0, 1, 1000, 2**31 - 2, 2**31 - 1])
def test_extreme_values(gaussian_tables, value):
    cdfs, lengths, offsets = gaussian_tables
    idx = np.arange(64, dtype=np.int32)
    sym = np.full(64, value, np.int32)
    data = entropy.encode(sym, idx, cdfs, lengths, offsets)
    assert np.array_equal(entropy.decode(data, idx, cdfs, lengths, offsets), sym)


def test_shape_is_kept(gaussian_tables):
    cdfs, lengths, offsets = gaussian_tables
    rng = np.random.default_rng(1)
    idx = rng.integers(0, 64, (3, 5, 7)).astype(np.int32)
    sym = rng.integers(-5, 5, (3, 5, 7)).astype(np.int32)
    out = entropy.decode(entropy.encode(sym, idx, cdfs, lengths, offsets), idx, cdfs, lengths, offsets)
    assert out.shape == (3, 5, 7) and np.array_equal(out, sym)


def _gaussian_problem(gaussian_tables, n=20000, seed=0):
    cdfs, lengths, offsets = gaussian_tables
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, 64, n).astype(np.int32)
    scale = np.exp(np.linspace(np.log(0.11), np.log(256), 64))[idx]
    sym = np.round(rng.normal(0, 1, n) * np.minimum(scale, 30)).astype(np.int32)
    return sym, idx, cdfs, lengths, offsets


def test_size_is_close_to_ideal(gaussian_tables):
    problem = _gaussian_problem(gaussian_tables)
    data = entropy.encode(*problem)
    ideal = entropy.ideal_bits(*problem)
    assert ideal / 8 <= len(data) <= ideal / 8 * 1.001 + 8


@pytest.mark.parametrize("precision", [8, 12, 16])
def test_precision_is_honoured(precision):
    pmf = np.exp(-0.5 * np.arange(-20, 21) ** 2 / 9.0)
    cdf = quantized_cdf(pmf, precision)[None]
    lengths, offsets = np.array([cdf.shape[1]], np.int32), np.array([-20], np.int32)
    rng = np.random.default_rng(precision)
    sym = np.round(rng.normal(0, 3, 5000)).astype(np.int32)
    idx = np.zeros_like(sym)
    data = entropy.encode(sym, idx, cdf, lengths, offsets, precision)
    assert np.array_equal(entropy.decode(data, idx, cdf, lengths, offsets, precision), sym)
    # the same table read at another precision is not a valid CDF
    other = 16 if precision != 16 else 12
    with pytest.raises(InvalidTableError):
        entropy.encode(sym, idx, cdf, lengths, offsets, other)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda c, l, o: (c[:, ::-1].copy(), l, o),  # decreasing
        lambda c, l, o: (np.where(c == 65536, 65535, c), l, o),  # does not reach 2^16
        lambda c, l, o: (c + 1, l, o),  # does not start at 0
        lambda c, l, o: (c, l + 1000, o),  # length past the width
        lambda c, l, o: (c, np.ones_like(l), o),  # length < 2
        lambda c, l, o: (c, l[:-1], o),  # arrays disagree
        lambda c, l, o: (c.astype(np.float32), l, o),  # not integers
        lambda c, l, o: (np.where(np.arange(c.shape[1]) == 2, c[:, 1:2], c), l, o),  # zero-frequency symbol
    ],
)
def test_invalid_tables_are_rejected(gaussian_tables, mutate):
    cdfs, lengths, offsets = mutate(*gaussian_tables)
    with pytest.raises(InvalidTableError):
        entropy.encode(np.zeros(4, np.int32), np.zeros(4, np.int32), cdfs, lengths, offsets)
    with pytest.raises(InvalidTableError):
        entropy.decode(b"\0" * 8, np.zeros(4, np.int32), cdfs, lengths, offsets)


@pytest.mark.parametrize("mutate", [lambda c, l, o: (c[:, ::-1].copy(), l, o), lambda c, l, o: (c, l[:-1], o)])
def test_tables_are_validated_when_built(gaussian_tables, mutate):
    with pytest.raises(InvalidTableError):
        entropy.Tables(*mutate(*gaussian_tables))


def test_validated_tables_code_as_the_arrays_do(gaussian_tables):
    sym, idx, *arrays = _gaussian_problem(gaussian_tables, n=3000)
    tables = entropy.Tables(*arrays, precision=16)
    data = entropy.encode(sym, idx, tables)
    assert data == entropy.encode(sym, idx, *arrays, precision=16) == reference.encode(sym, idx, *tables, precision=16)
    assert np.array_equal(entropy.decode(data, idx, tables), sym)
    stream = entropy.StreamDecoder(data, tables)
    assert np.array_equal(np.concatenate([stream.decode(idx[:1000]), stream.decode(idx[1000:])]), sym)
    stream.finish()
    assert entropy.ideal_bits(sym, idx, tables) == entropy.ideal_bits(sym, idx, *arrays)
    with pytest.raises(InvalidTableError):  # another precision: the tables do not fit it
        entropy.decode(data, idx, tables, precision=12)
    with pytest.raises(TypeError):
        entropy.encode(sym, idx, tables, arrays[1], arrays[2])


@pytest.mark.parametrize("bad_index", [-1, 64, 2**31 - 1])
def test_index_outside_tables(gaussian_tables, bad_index):
    cdfs, lengths, offsets = gaussian_tables
    idx = np.array([0, bad_index], np.int32)
    with pytest.raises(InvalidTableError):
        entropy.encode(np.zeros(2, np.int32), idx, cdfs, lengths, offsets)
    with pytest.raises(InvalidTableError):
        entropy.decode(b"\0" * 16, idx, cdfs, lengths, offsets)


def test_every_truncation_is_an_error(gaussian_tables):
    sym, idx, *tables = _gaussian_problem(gaussian_tables, n=300)
    data = entropy.encode(sym, idx, *tables)
    for cut in range(len(data)):
        with pytest.raises(FormatError):
            entropy.decode(data[:cut], idx, *tables)
    with pytest.raises(CorruptStreamError):
        entropy.decode(data + b"\0", idx, *tables)


def test_corrupted_streams_never_crash(gaussian_tables):
    """Random byte flips: either a typed error or some int32 output, never a crash or hang."""
    sym, idx, *tables = _gaussian_problem(gaussian_tables, n=500)
    data = bytearray(entropy.encode(sym, idx, *tables))
    rng = np.random.default_rng(5)
    detected = 0
    for _ in range(300):
        bad = bytearray(data)
        for pos in rng.integers(0, len(bad), rng.integers(1, 4)):
            bad[pos] ^= int(rng.integers(1, 256))
        try:
            out = entropy.decode(bytes(bad), idx, *tables)
            assert out.shape == sym.shape
        except (CorruptStreamError, TruncatedError):
            detected += 1
    assert detected > 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 40))
def test_random_bytes_decode_safely(gaussian_tables, data, n):
    cdfs, lengths, offsets = gaussian_tables
    idx = (np.arange(n) % 64).astype(np.int32)
    try:
        entropy.decode(data, idx, cdfs, lengths, offsets)
    except FormatError:
        pass


def test_decode_is_independent_of_call_layout(gaussian_tables):
    """Same bytes from a contiguous array, a strided view and a bytearray."""
    sym, idx, *tables = _gaussian_problem(gaussian_tables, n=2000)
    data = entropy.encode(sym, idx, *tables)
    strided = np.repeat(sym, 2)[::2]
    assert entropy.encode(strided, idx, *tables) == data
    assert np.array_equal(entropy.decode(bytearray(data), idx, *tables), sym)
