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
# fastsoftmax vs the NumPy reference in the same dtype: both have errors of a
# few eps (NumPy's grows with |x - max|), so they agree within the sum.
VS_NUMPY_EPS = 10.0


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
    over the elements whose expected value is a normal number of `dtype`."""
    expected = np.asarray(expected, dtype=np.longdouble)
    mask = np.abs(expected) >= np.finfo(dtype).smallest_normal
    if not mask.any():
        return 0.0
    err = np.abs(np.asarray(y, dtype=np.longdouble)[mask] - expected[mask]) / expected[mask]
    return float(np.max(err)) / eps(dtype)


def log_softmax_error_eps(y, expected, dtype) -> float:
    """Max error of `y` vs `expected` (long double) in eps of `dtype`: relative
    where |expected| > 1e-3, absolute elsewhere (values near 0)."""
    expected = np.asarray(expected, dtype=np.longdouble)
    y = np.asarray(y, dtype=np.longdouble)
    finite = np.isfinite(expected)
    assert np.array_equal(np.isfinite(y), finite), "non-finite values differ"
    assert np.array_equal(y[~finite], expected[~finite]), "infinite values differ"
    big = finite & (np.abs(expected) > 1e-3)
    small = finite & ~big
    rel = np.abs(y[big] - expected[big]) / np.abs(expected[big])
    absolute = np.abs(y[small] - expected[small])
    return max(float(np.max(rel, initial=0.0)), float(np.max(absolute, initial=0.0))) / eps(dtype)


def error_eps(name, y, expected, dtype) -> float:
    if name == "softmax":
        return softmax_error_eps(y, expected, dtype)
    return log_softmax_error_eps(y, expected, dtype)


def row_sum_error_eps(y, axis, dtype) -> float:
    """Max over groups of |sum - 1|, the sum taken in long double, in eps."""
    sums = np.sum(np.asarray(y, dtype=np.longdouble), axis=axis)
    return float(np.max(np.abs(sums - 1))) / eps(dtype)


def compute_dtype(dtype):
    """The dtype fastsoftmax computes `dtype` in."""
    dtype = np.dtype(dtype)
    if dtype == np.float16:
        return np.dtype(np.float32)
    if dtype.kind == "f":
        return dtype
    return np.dtype(np.float64)


def result_dtype(dtype):
    """The dtype fastsoftmax returns for an input of `dtype`."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return np.dtype(dtype.type)  # native byte order
    return np.dtype(np.float64)


def tolerances(name, expected, dtype, k=VS_NUMPY_EPS):
    """(rtol, atol) for assert_allclose against a reference `expected`.

    softmax: rtol of k eps, atol of k times the smallest subnormal (results
    below the normal range lose relative accuracy by design).
    log_softmax: rtol of k eps and an absolute k eps times the largest
    finite magnitude of the group results (values near 0 come from a
    cancellation and are accurate only in absolute terms).
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


def assert_matches_reference(name, x, axis=-1, k=VS_NUMPY_EPS, **kwargs):
    """fastsoftmax.`name`(x, axis, **kwargs) has the reference's shape and
    dtype, agrees with it within `tolerances`, and leaves x unchanged.
    Returns the result."""
    got = call_unmodified(fast(name), x, axis, **kwargs)
    expected = call_unmodified(ref(name), x, axis)
    assert isinstance(got, np.ndarray)
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    cdt = compute_dtype(expected.dtype) if expected.dtype.itemsize <= 8 else expected.dtype
    rtol, atol = tolerances(name, expected, cdt, k)
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    return got


def assert_accurate(name, x, axis=-1, **kwargs):
    """fastsoftmax.`name` of float32/float64 `x` is within the accuracy bounds
    of the extended-precision reference.  Returns the result."""
    dtype = np.asarray(x).dtype
    got = call_unmodified(fast(name), x, axis, **kwargs)
    expected = extended_reference(name, x, axis)
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
    return got


def assert_rows_sum_to_one(x, axis=-1, **kwargs):
    """Every group of fastsoftmax.softmax(x) sums to 1 within ROW_SUM_EPS (the
    sum taken in long double).  Returns the result."""
    dtype = np.asarray(x).dtype
    got = call_unmodified(fastsoftmax.softmax, x, axis, **kwargs)
    err = row_sum_error_eps(got, axis, dtype)
    assert err <= ROW_SUM_EPS, f"|row sum - 1| = {err:.2f} eps > {ROW_SUM_EPS}"
    return got


# --- known bugs --------------------------------------------------------------

IS_X86_64 = __import__("platform").machine().lower() in ("x86_64", "amd64")

ROW_SUM_BUG = (
    "BUG: softmax's normalising sum is accumulated in the input precision in "
    "blocks of 256 elements; the scalar variant adds each block sequentially "
    "(no SIMD lanes), so |row sum - 1| and the element errors grow with the "
    "row length beyond 4 eps (measured up to ~7 eps; NumPy stays below 4)")

# (dtype name, row length) of the rows_of() inputs of test_row_lengths.py for
# which the scalar variant breaks the accuracy bounds: measured on x86-64,
# where the scalar variant is plain IEEE arithmetic (no FMA, no SIMD), so
# the results are reproducible.  Row sums: |sum - 1| > ROW_SUM_EPS.
SCALAR_ROW_SUM_FAILURES = {
    "float32": {69, 127, 128, 255, 256, 257, 511, 512},
    "float64": {66, 127, 128, 255, 256, 257, 513},
}
# Element errors > SOFTMAX_EPS (row sum error + 2 eps).
SCALAR_SOFTMAX_VALUE_FAILURES = {
    "float32": {256, 257},
    "float64": {256},
}


def xfail_known_bug(request, condition, reason):
    """Mark the running test as a strict expected failure when `condition`
    holds (a known bug of fastsoftmax; see the reason)."""
    if condition:
        request.applymarker(__import__("pytest").mark.xfail(strict=True, reason=reason))
