"""Results do not depend on the number of threads: bit-for-bit equal with
num_threads=1, 2 and the default, on inputs large enough for two threads."""
import numpy as np
import pytest

from util import FLOAT_DTYPES, FUNCTIONS, assert_result_accurate, fast

CASES = [
    ("rows", (4096, 1000), -1),
    ("columns", (1000, 4096), 0),
    ("strided_rows", (1000, 4096), 0, "fortran"),
    ("batched_columns", (8, 300, 600), 1),
]


def make(case, dtype):
    shape, axis = case[1], case[2]
    x = np.random.default_rng(sum(shape)).standard_normal(shape, dtype=np.float64).astype(dtype)
    if len(case) > 3:
        x = np.asfortranarray(x)
    return x, axis


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_threads_bit_identical(case, name, dtype, variant):
    x, axis = make(case, dtype)
    one = fast(name)(x, axis, num_threads=1)
    two = fast(name)(x, axis, num_threads=2)
    default = fast(name)(x, axis)
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(one, default)
    # and the common result is right (checked on a sample of groups)
    if axis == -1:
        assert_result_accurate(name, one[::97], x[::97], axis)
    elif x.ndim == 2:
        assert_result_accurate(name, one[:, ::97], x[:, ::97], axis)
    else:
        assert_result_accurate(name, one[::3], x[::3], axis)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_threads_bit_identical_in_place(name, variant):
    x, axis = make(CASES[0], np.float32)
    expected = fast(name)(x, axis, num_threads=1)
    y = x.copy()
    assert fast(name)(y, axis, out=y, num_threads=2) is y
    np.testing.assert_array_equal(y, expected)



@pytest.mark.parametrize("name", FUNCTIONS)
def test_concurrent_python_threads(name):
    """The GIL is released during the computation: calls from several Python
    threads at once give the same results as one after another."""
    from concurrent.futures import ThreadPoolExecutor
    rng = np.random.default_rng(12)
    inputs = [(rng.standard_normal((500, 300)).astype(dtype), axis)
              for dtype in FLOAT_DTYPES for axis in (-1, 0, None)] * 2
    expected = [fast(name)(x, axis) for x, axis in inputs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda args: fast(name)(*args), inputs))
    for got, want in zip(results, expected):
        np.testing.assert_array_equal(got, want)
