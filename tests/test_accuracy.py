"""Accuracy against the extended-precision reference (long double), per
input family, dtype, function and kernel variant: at least as accurate as
NumPy (fastsoftmax.reference in the same dtype) or within a small bound,
and softmax rows that sum to 1 within 4 eps."""
import functools

import numpy as np
import pytest

import fastsoftmax
from util import (FLOAT_DTYPES, FUNCTIONS, LOG_SOFTMAX_EPS, ROW_SUM_EPS,
                  SOFTMAX_EPS, call_unmodified, error_eps, extended_reference, fast, ref,
                  row_sum_error_eps)


def _family(name, rng):
    """(float64 values, axis) of an input family."""
    if name == "normal_x4":
        return rng.standard_normal((64, 1000)) * 4, -1
    if name == "uniform_90_100":
        return rng.uniform(90, 100, (64, 1000)), -1
    if name == "uniform_-80_80":
        return rng.uniform(-80, 80, (64, 1000)), -1
    if name == "dominant_logit":
        x = rng.standard_normal((4, 32000))
        x[np.arange(4), [0, 12345, 31999, 20000]] = 30.0
        return x, -1
    if name == "one_row_1e6":
        return rng.standard_normal(1_000_000), -1
    if name == "normal_x4_rows_of_256":
        return rng.standard_normal((256, 256)) * 4, -1
    if name == "uniform_-80_80_rows_of_77":  # a partial vector at the end of every row
        return rng.uniform(-80, 80, (512, 77)), -1
    if name == "normal_x4_columns":  # the column kernel
        return rng.standard_normal((1000, 300)) * 4, 0
    if name == "uniform_-80_80_columns":
        return rng.uniform(-80, 80, (1000, 300)), 0
    if name == "uniform_5000_5080":
        return rng.uniform(5000, 5080, (64, 1000)), -1
    if name == "uniform_-8000_-7920":
        return rng.uniform(-8000, -7920, (64, 1000)), -1
    if name == "range_edges_2048":  # float32's no-subtraction range: |max| <= 2048
        return _range_edges(rng, 2048.0), -1
    raise ValueError(name)


def _range_edges(rng, limit, rows=16):
    """Rows of uniform [-80, 0] shifted to a maximum of +-limit (inside the
    no-subtraction form's exact range) and +-limit * (1 + 2^-11) (just
    outside it: the TwoSum form), `rows` of each."""
    x = rng.uniform(-80, 0, (4 * rows, 1000))
    x[np.arange(4 * rows), rng.integers(0, 1000, 4 * rows)] = 0.0
    maxima = np.repeat([limit, -limit, limit * (1 + 2.0**-11), -limit * (1 + 2.0**-11)], rows)
    return x + maxima[:, None]


FAMILIES = ["normal_x4", "uniform_90_100", "uniform_-80_80", "dominant_logit", "one_row_1e6",
            "normal_x4_rows_of_256", "uniform_-80_80_rows_of_77", "normal_x4_columns", "uniform_-80_80_columns", "uniform_5000_5080",
            "uniform_-8000_-7920", "range_edges_2048"]

# Small bounds (eps) that fastsoftmax meets even where NumPy is better.
SMALL_BOUND = {"softmax": SOFTMAX_EPS, "log_softmax": LOG_SOFTMAX_EPS}


@functools.lru_cache(maxsize=None)
def family_input(family, dtype_name):
    values, axis = _family(family, np.random.default_rng(FAMILIES.index(family)))
    x = values.astype(dtype_name)
    x.flags.writeable = False  # shared between tests
    return x, axis


@functools.lru_cache(maxsize=None)
def family_reference(family, dtype_name, name):
    """(extended-precision result, NumPy's error in eps)."""
    x, axis = family_input(family, dtype_name)
    expected = extended_reference(name, x, axis)
    expected.flags.writeable = False
    numpy_error = error_eps(name, ref(name)(x, axis), expected, np.dtype(dtype_name))
    return expected, numpy_error



@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("family", FAMILIES)
def test_at_least_as_accurate_as_numpy(family, name, dtype, variant):
    dtype_name = np.dtype(dtype).name
    x, axis = family_input(family, dtype_name)
    expected, numpy_error = family_reference(family, dtype_name, name)
    got = call_unmodified(fast(name), x, axis)
    assert got.dtype == dtype
    error = error_eps(name, got, expected, dtype)
    bound = max(numpy_error, SMALL_BOUND[name])
    assert error <= bound, f"error {error:.2f} eps > max(NumPy {numpy_error:.2f}, {SMALL_BOUND[name]})"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("family", FAMILIES)
def test_rows_sum_to_one(family, dtype, variant):
    dtype_name = np.dtype(dtype).name
    x, axis = family_input(family, dtype_name)
    got = fast("softmax")(x, axis)
    error = row_sum_error_eps(got, axis, dtype)
    assert error <= ROW_SUM_EPS, f"|row sum - 1| = {error:.2f} eps > {ROW_SUM_EPS}"


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("family", ["uniform_-80_80", "normal_x4_columns"])
def test_more_accurate_than_numpy_where_numpy_rounds_x_minus_max(family, name, dtype, variant):
    """NumPy rounds x - max before exp (and sums a non-last axis sequentially),
    which costs it tens of eps on these families; fastsoftmax carries x - max
    exactly: its error must be well below NumPy's."""
    dtype_name = np.dtype(dtype).name
    x, axis = family_input(family, dtype_name)
    expected, numpy_error = family_reference(family, dtype_name, name)
    if name == "softmax":
        assert numpy_error > 2 * SMALL_BOUND[name]  # the premise of this test
    error = error_eps(name, fast(name)(x, axis), expected, dtype)
    assert error <= SMALL_BOUND[name]
    if name == "softmax":
        assert error < numpy_error / 2


@pytest.mark.parametrize("temperature", [None, 0.5])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_subnormal_results_not_flushed_early(dtype, temperature, variant):
    """Results below the smallest normal keep their value: within 2.5
    smallest subnormals of the reference (half of one for the final
    rounding, and a relative error of 2 eps of a result just below the
    smallest normal is 2 smallest subnormals); a result flushed to 0 early,
    or rounded to a subnormal twice, would be off by far more.  Scaled rows
    too (temperature 0.5: x / 0.5 is exact, so the reference is too)."""
    fi = np.finfo(dtype)
    scale = 1.0 if temperature is None else 1.0 / temperature
    low = (-110.0 if dtype == np.float32 else -760.0) / scale
    x = np.random.default_rng(7).uniform(low, 0.0, (64, 1000)).astype(dtype)
    expected = extended_reference("softmax", x * dtype(scale))
    tiny = expected < np.longdouble(fi.smallest_normal)
    assert tiny.sum() > 1000  # the premise: many subnormal and zero results
    result = fastsoftmax.softmax(x, temperature=temperature)
    error = np.abs(result.astype(np.longdouble) - expected)[tiny].max()
    assert error <= 2.5 * np.longdouble(fi.smallest_subnormal)
