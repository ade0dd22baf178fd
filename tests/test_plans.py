"""Each work plan of the C driver (src_c/driver.c), at its boundaries: short
rows transposed through the column kernel, rows run in groups,
rows split across threads, and output streamed with non-temporal stores
(log_softmax; softmax writes large outputs with plain stores)."""
import numpy as np
import pytest

from fastsoftmax import _core
from util import FLOAT_DTYPES, FUNCTIONS, assert_accurate, assert_correct, call_unmodified, fast

_THRESHOLDS = _core._plan_thresholds()
SHORT_ROW_MAX_BYTES = _THRESHOLDS["short_row_max_bytes"]
SPLIT_MIN_ELEMENTS = 2 * _THRESHOLDS["min_elements_per_thread"]  # rows this long are split across threads
STREAM_MIN_BYTES = 32 << 20    # outputs at least this large are streamed ...
STREAM_MIN_ROW_BYTES = 1024    # ... when their rows are at least this long
ROW_GROUP = 8                  # FSM_ROW_GROUP: rows run together ...
ROW_GROUP_MAX_BYTES = 1024     # ... when contiguous and at most this long


def normal(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("delta", [-1, 0, 1])
def test_short_row_boundary(delta, name, dtype, variant, num_threads):
    n = SHORT_ROW_MAX_BYTES // np.dtype(dtype).itemsize + delta
    assert_correct(name, normal((64 * 5 + 3, n), dtype), -1, num_threads=num_threads)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_short_row_transposes_match_the_strided_path(name, dtype, variant, num_threads):
    """Contiguous short rows go through the shuffle transposes (tiles of up
    to 8 rows by 8 columns, a last tile overlapping the one before it, and
    the rows past the last full tile one element at a time); strided rows
    through element gathers.  Both feed the same column kernel, so the
    results must be bit-identical: every row length of the plan, a partial
    block of 13 rows, rows not adjacent in memory (with one batch dimension
    and with two), special values, and in place."""
    lanes = 64  # FSM_SHORT_ROW_LANES
    for n in range(1, SHORT_ROW_MAX_BYTES // np.dtype(dtype).itemsize + 1):
        x = normal((2, 2 * lanes + 26, n), dtype, seed=n)
        x[0, 6, 0] = np.nan
        x[1, -2, :] = -np.inf
        x[1, -4, :] = -np.inf
        x[1, -4, -1] = 0.0
        strided = np.empty(x.shape + (2,), dtype)[..., 0]  # the same values, elements 2 apart
        strided[...] = x
        pairs = [(x[:, :lanes + 13], strided[:, :lanes + 13]), (x[:, ::2], strided[:, ::2]),
                 (x[1], strided[1]), (x[0, ::3], strided[0, ::3])]  # 2-d: evenly spaced rows
        for rows, twin in pairs:
            got = call_unmodified(fast(name), rows, -1, num_threads=num_threads)
            np.testing.assert_array_equal(got, fast(name)(twin, num_threads=num_threads), err_msg=f"n={n}")
            in_place = rows.copy()
            assert fast(name)(in_place, out=in_place, num_threads=num_threads) is in_place
            np.testing.assert_array_equal(in_place, got, err_msg=f"n={n}")
        got = fast(name)(x[:, ::2], num_threads=num_threads)
        assert np.isnan(got[0, 3]).all() and np.isnan(got[1, -1]).all()
        assert got[1, -2, -1] == (1.0 if name == "softmax" else 0.0)
        assert_accurate(name, x[0, 7:], -1)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("delta", [-1, 0, 1])
@pytest.mark.parametrize("rows", [1, ROW_GROUP - 1, ROW_GROUP, 3 * ROW_GROUP + 5])
def test_row_groups_match_the_row_kernel(rows, delta, name, dtype, variant, num_threads):
    """Grouped rows (contiguous) are bit-identical to the same rows run one
    by one through the row kernel (strided rows, gathered), in partial
    groups, across a batch dimension, in place, and with bad rows among
    good ones."""
    n = ROW_GROUP_MAX_BYTES // np.dtype(dtype).itemsize + delta
    x = normal((2, rows, n), dtype)
    x[0, 0, 3] = np.nan
    x[1, -1, :] = -np.inf
    x[1, 0, 1] = np.inf
    strided = np.empty((2, rows, 2 * n), dtype)[:, :, ::2]
    strided[...] = x
    got = call_unmodified(fast(name), x, -1, num_threads=num_threads)
    np.testing.assert_array_equal(got, fast(name)(strided, num_threads=num_threads))
    assert np.isnan(got[0, 0]).all() and np.isnan(got[1, -1]).all() and np.isnan(got[1, 0]).all()
    if rows > 2:
        assert_accurate(name, x[:, 1:-1], -1)
    in_place = x.copy()
    assert fast(name)(in_place, out=in_place, num_threads=num_threads) is in_place
    np.testing.assert_array_equal(in_place, got)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_split_rows_bit_identical_across_threads(name, dtype, variant):
    x = normal((3, SPLIT_MIN_ELEMENTS * 3 + 77), dtype)
    one = fast(name)(x, num_threads=1)
    two = assert_accurate(name, x, -1, num_threads=2)
    np.testing.assert_array_equal(one, two)


# Eleven values whose log(sum(exp(x - max))) rounds one way with the
# multiply-adds fused (the avx2 and avx512 kernels) and the other way
# without; found by the C kernel test (tests/c/).
SMALL_TOTAL_ROW = [float.fromhex(h) for h in (
    "-0x1.2cba0d5f921dp+3", "0x1.e36a6893fec5p+1", "-0x1.42a616fa61474p+2", "0x1.7ab82db098d04p+2",
    "-0x1.7959f231d4bfp-1", "0x1.98285d8ce9dccp+1", "-0x1.0b3d96393931p+0", "-0x1.309d2e661a63cp+3",
    "-0x1.5f7094af3bc35p+2", "-0x1.8c27451e848p-2", "0x1.f01a3330c6ap-4")]


def test_split_rows_take_log_total_from_the_variant(variant):
    """log_softmax's log(total) of a split row is computed by the kernel
    variant, as the row kernel computes it, not by the driver (compiled
    without the variant's fused multiply-adds)."""
    x = np.full((1, SPLIT_MIN_ELEMENTS * 2), -np.inf)
    x[0, :len(SMALL_TOTAL_ROW)] = SMALL_TOTAL_ROW
    y = np.empty_like(x)
    assert _core._plan_info(1, x, (1,), y, threads=1) == ("rows", 1)
    assert _core._plan_info(1, x, (1,), y, threads=2) == ("split_row", 2)
    np.testing.assert_array_equal(fast("log_softmax")(x, num_threads=2), fast("log_softmax")(x, num_threads=1))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_split_rows_special_values_in_one_chunk(name, dtype, variant):
    n = SPLIT_MIN_ELEMENTS * 2
    x = normal((4, n), dtype)
    x[0, 5] = np.nan                 # first chunk only
    x[1, : n // 2] = -np.inf         # the first thread's chunk is all -inf
    x[2, -3] = np.inf                # last chunk only
    x[3, :] = -np.inf
    x[3, n // 2 + 1] = 0.0           # one finite value in a row of -inf
    got = call_unmodified(fast(name), x, -1, num_threads=2)
    assert np.isnan(got[0]).all() and np.isnan(got[2]).all()
    masked = 0.0 if name == "softmax" else -np.inf
    assert (got[1, : n // 2] == masked).all()
    np.testing.assert_array_equal(got[1, n // 2:], fast(name)(x[1, n // 2:]))
    assert (np.delete(got[3], n // 2 + 1) == masked).all()
    assert got[3, n // 2 + 1] == (1.0 if name == "softmax" else 0.0)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("delta", [-1, 0])
def test_stream_row_length_boundary(delta, name, dtype):
    """An output large enough to stream, with rows just below (run in row
    groups, plain stores) and at the shortest row that streams."""
    n = STREAM_MIN_ROW_BYTES // np.dtype(dtype).itemsize + delta
    rows = STREAM_MIN_BYTES // (n * np.dtype(dtype).itemsize) + 1
    x = normal((rows, n), dtype)
    got = call_unmodified(fast(name), x, -1, num_threads=2)
    small = x[::89]  # the same rows computed far below the streaming size
    np.testing.assert_array_equal(got[::89], fast(name)(small))
    assert_accurate(name, small, -1)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_streamed_output(name, dtype):
    rows = STREAM_MIN_BYTES // (1000 * np.dtype(dtype).itemsize) + 1
    x = normal((rows, 1000), dtype)
    out = np.full((rows, 1001), 7.0, dtype)[:, 1:]  # misaligned rows: head and tail stores
    got = call_unmodified(fast(name), x, -1, out=out, num_threads=2)
    assert got is out
    small = x[::97]  # the same rows computed without streaming
    np.testing.assert_array_equal(out[::97], fast(name)(small))
    assert_accurate(name, small, -1)
