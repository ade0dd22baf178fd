"""Helpers shared by the tests: the extended-precision reference, error
measures in units of the dtype's eps, and comparison against
`fastsoftmax.reference`."""
from __future__ import annotations


import numpy as np

import fastsoftmax
from fastsoftmax import reference

FUNCTIONS = ("softmax", "log_softmax")
FLOAT_DTYPES = (np.float32, np.float64)

# Accuracy bounds, in eps of the dtype, against the extended-precision
# reference.  |row sum - 1| <= 4 eps is the requirement.  softmax
# elements: exp within 1 ulp, one rounding for 1/sum and one for the product
# (2 eps together), on top of the 4 eps the normalising sum may be off.
ROW_SUM_EPS = 4.0
SOFTMAX_EPS = ROW_SUM_EPS + 2.0
# log_softmax: (x - max) - lse has two roundings and an lse accurate to
# about 1 ulp; errors are relative where |ref| > 1e-3, absolute elsewhere.
LOG_SOFTMAX_EPS = 3.0
# fastsoftmax vs the NumPy reference in the same dtype: they may differ by
# fastsoftmax's bound plus NumPy's own error, which is measured against the
# extended-precision reference on the same input (it can be tens of eps:
# x - max rounded before exp, sequential sums over a non-last axis).


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def fast(name):
    """The fastsoftmax function called `name`."""
    return getattr(fastsoftmax, name)


def ref(name):
    """The NumPy reference function called `name`."""
    return getattr(reference, name)


def extended_reference(name, x, axis=-1):
    """`name` computed in long double (80-bit on x86-64) by the reference,
    from the exact values of `x`."""
    return ref(name)(np.asarray(x).astype(np.longdouble), axis)


def softmax_error_eps(y, expected, dtype) -> float:
    """Max relative error of `y` vs `expected` (long double) in eps of `dtype`,
    over the elements whose expected value is a normal number of `dtype`
    (inf when one of those is NaN in `y`)."""
    expected = np.asarray(expected, dtype=np.longdouble)
    mask = np.abs(expected) >= np.finfo(dtype).smallest_normal
    if not mask.any():
        return 0.0
    err = np.abs(np.asarray(y, dtype=np.longdouble)[mask] - expected[mask]) / expected[mask]
    err = float(np.max(err))
    return float("inf") if np.isnan(err) else err / eps(dtype)


def log_softmax_error_eps(y, expected, dtype) -> float:
    """Max error of `y` vs `expected` (long double) in eps of `dtype`: relative
    where |expected| > 1e-3, absolute elsewhere (values near 0).  Entries
    whose expected value rounds to inf or NaN in `dtype` must be equal;
    returns inf when they are not."""
    expected = np.asarray(expected, dtype=np.longdouble)
    y = np.asarray(y, dtype=np.longdouble)
    with np.errstate(over="ignore"):
        finite = np.isfinite(expected.astype(dtype))
    if not np.array_equal(y[~finite], expected.astype(dtype)[~finite], equal_nan=True):
        return float("inf")
    big = finite & (np.abs(expected) > 1e-3)
    small = finite & ~big
    rel = np.abs(y[big] - expected[big]) / np.abs(expected[big])
    absolute = np.abs(y[small] - expected[small])
    err = max(float(np.max(rel, initial=0.0)), float(np.max(absolute, initial=0.0)))
    return float("inf") if np.isnan(err) else err / eps(dtype)


def error_eps(name, y, expected, dtype) -> float:
    if name == "softmax":
        return softmax_error_eps(y, expected, dtype)
    return log_softmax_error_eps(y, expected, dtype)


def row_sum_error_eps(y, axis, dtype) -> float:
    """Max over groups of |sum - 1|, the sum taken in long double, in eps."""
    sums = np.sum(np.asarray(y, dtype=np.longdouble), axis=axis)
    return float(np.max(np.abs(sums - 1))) / eps(dtype)


def result_dtype(dtype):
    """The dtype fastsoftmax returns for an input of `dtype`."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(dtype.type)  # native byte order
    return np.dtype(np.float64)


def bound_eps(name) -> float:
    return SOFTMAX_EPS if name == "softmax" else LOG_SOFTMAX_EPS


def tolerances(name, expected, dtype, k):
    """(rtol, atol) for assert_allclose against `expected`, for errors of up
    to k eps of `dtype` in the measures above.

    softmax: rtol of k eps, atol of k times the smallest subnormal (results
    below the normal range lose relative accuracy by design).
    log_softmax: rtol of k eps and an absolute k eps times the largest finite
    magnitude in the result, at least 1 (values near 0 come from a
    cancellation and are accurate in absolute terms only).
    """
    e = eps(dtype)
    if name == "softmax":
        return k * e, k * float(np.finfo(dtype).smallest_subnormal)
    finite = np.asarray(expected)[np.isfinite(expected)]
    scale = float(np.max(np.abs(finite), initial=0.0))
    return k * e, k * e * max(scale, 1.0)


def call_unmodified(fn, x, *args, **kwargs):
    """fn(x, *args, **kwargs), asserting that x is left unchanged (x must not
    be passed as out)."""
    before = np.array(x, copy=True)
    result = fn(x, *args, **kwargs)
    assert np.array_equal(np.asarray(x), before, equal_nan=True), "input was modified"
    return result


def _check_against_numpy(name, got, expected, x, axis, extended=None):
    """The comparison of assert_matches_reference; returns the extended
    reference when it was computed."""
    assert isinstance(got, np.ndarray)
    assert type(got) is np.ndarray
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got) * np.sign(got), np.isinf(expected) * np.sign(expected))
    if expected.dtype.itemsize > 8:
        np.testing.assert_array_equal(got, expected)
        return extended
    if expected.dtype == np.float16:
        rtol, atol = tolerances(name, expected, np.float16, 1.0)
        np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
        return extended
    dtype = expected.dtype
    if extended is None:
        extended = extended_reference(name, np.asarray(x).astype(dtype), axis)
    reference_error = error_eps(name, expected, extended, dtype)
    rtol, atol = tolerances(name, expected, dtype, bound_eps(name) + reference_error)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    return extended


def _check_accuracy(name, got, expected, dtype):
    """The comparison of assert_accurate."""
    if name == "softmax":
        err = softmax_error_eps(got, expected, dtype)
        assert err <= SOFTMAX_EPS, f"softmax error {err:.2f} eps > {SOFTMAX_EPS}"
        # results below the normal range: absolute error below the smallest normal
        np.testing.assert_allclose(
            got.astype(np.longdouble), expected, rtol=SOFTMAX_EPS * eps(dtype),
            atol=float(np.finfo(dtype).smallest_normal), equal_nan=True)
    else:
        err = log_softmax_error_eps(got, expected, dtype)
        assert err <= LOG_SOFTMAX_EPS, f"log_softmax error {err:.2f} eps > {LOG_SOFTMAX_EPS}"


def assert_matches_reference(name, x, axis=-1, **kwargs):
    """fastsoftmax.`name`(x, axis, **kwargs) has the NumPy reference's shape
    and dtype, the same NaN and infinite entries, agrees with it in value,
    and leaves x unchanged.  Returns the result.

    Agreement: float32/float64 results within fastsoftmax's bound plus the
    reference's own error (measured against long double); float16 results
    within 1 ulp of float16 (both round a float32 result); long double results
    exactly (fastsoftmax hands them to the reference).
    """
    got = call_unmodified(fast(name), x, axis, **kwargs)
    expected = call_unmodified(ref(name), x, axis)
    _check_against_numpy(name, got, expected, x, axis)
    return got


def assert_accurate(name, x, axis=-1, **kwargs):
    """fastsoftmax.`name` of float32/float64 `x` is within the accuracy bounds
    (SOFTMAX_EPS, LOG_SOFTMAX_EPS) of the extended-precision reference, and x
    is left unchanged.  Returns the result."""
    dtype = np.asarray(x).dtype
    got = call_unmodified(fast(name), x, axis, **kwargs)
    _check_accuracy(name, got, extended_reference(name, x, axis), dtype)
    return got


def assert_correct(name, x, axis=-1, **kwargs):
    """assert_matches_reference and assert_accurate in one (one call of each
    implementation).  Returns the result."""
    dtype = np.asarray(x).dtype
    got = call_unmodified(fast(name), x, axis, **kwargs)
    expected = call_unmodified(ref(name), x, axis)
    extended = _check_against_numpy(name, got, expected, x, axis)
    _check_accuracy(name, got, extended, dtype)
    return got


def assert_rows_sum_to_one(x, axis=-1, **kwargs):
    """Every group of fastsoftmax.softmax(x) sums to 1 within ROW_SUM_EPS (the
    sum taken in long double).  Returns the result."""
    dtype = np.asarray(x).dtype
    got = call_unmodified(fastsoftmax.softmax, x, axis, **kwargs)
    err = row_sum_error_eps(got, axis, dtype)
    assert err <= ROW_SUM_EPS, f"|row sum - 1| = {err:.2f} eps > {ROW_SUM_EPS}"
    return got


def assert_result_accurate(name, got, x, axis=-1):
    """`got`, a float32/float64 result of `name`(x, axis) obtained some other
    way (out=, in place), is within the accuracy bounds of the
    extended-precision reference of x."""
    x = np.asarray(x)
    assert got.dtype == x.dtype
    _check_accuracy(name, got, extended_reference(name, x, axis), x.dtype)


# --- cross_entropy inputs -------------------------------------------------------

def logits_with_specials(rng, dtype, rows, n):
    """Rows of n logits, some of them holding special values: NaN, +inf, all
    -inf, finfo.min and finfo.max, and -inf at the target (entry 0)."""
    x = (rng.standard_normal((rows, n)) * 3).astype(dtype)
    info = np.finfo(dtype)
    x[3, -1] = np.nan
    x[4, :] = -np.inf
    x[5, ::2] = info.min
    x[6, -1] = info.max
    x[7, 0] = -np.inf
    x[8, -1] = np.inf
    x[9, :] = info.min
    return x


def cross_entropy_targets(rng, kind, dtype, rows, n):
    """Class indices (entry 0 for the rows of logits_with_specials), or
    probabilities with some exact zeros (in the rows of logits_with_specials
    only at the -inf target's entry, whose loss is then finite)."""
    if kind == "index":
        t = rng.integers(0, n, rows)
        t[3:10] = 0
        return t
    q = reference.softmax(rng.standard_normal((rows, n)) * 2).astype(dtype)
    q[10:][rng.random((rows - 10, n)) < 0.2] = 0
    if n > 1:
        q[7, 0] = 0  # no weight on the -inf logit: a finite loss
    return q
