"""Row lengths around the unroll and vector widths of the row kernels, for
every variant and 1 and 2 threads, against the NumPy reference and the
extended-precision reference."""
import numpy as np
import pytest

from util import (FLOAT_DTYPES, FUNCTIONS, assert_correct, assert_rows_sum_to_one)

LENGTHS = sorted(set(range(1, 71)) | {
    127, 128, 129, 255, 256, 257, 511, 512, 513, 1000, 32000})


def rows_of(n, dtype):
    """Standard normal rows of length n, enough of them (>= 17000 elements)
    that two threads get work."""
    rng = np.random.default_rng(n)
    rows = max(2, -(-17000 // n))
    return rng.standard_normal((rows, n)).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("n", LENGTHS)
def test_row_length_values(n, name, dtype, variant, num_threads):
    x = rows_of(n, dtype)
    assert_correct(name, x, -1, num_threads=num_threads)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", LENGTHS)
def test_row_length_sums(n, dtype, variant, num_threads):
    assert_rows_sum_to_one(rows_of(n, dtype), -1, num_threads=num_threads)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("n", [1, 7, 8, 9, 31, 32, 33, 257, 1000])
def test_single_row(n, name, dtype, variant):
    """A 1-d input is one row (no batch dimensions)."""
    x = rows_of(n, dtype)[0]
    assert_correct(name, x)
