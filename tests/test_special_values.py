"""NaN, infinities, empty and 0-d inputs, huge magnitudes and subnormal
results, for both functions, both dtypes, every variant, and the three
kernel paths (contiguous rows, strided rows, column lanes)."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import reference
from util import (FLOAT_DTYPES, FUNCTIONS, assert_correct, assert_matches_reference, call_unmodified,
                  eps, extended_reference, fast, ref, result_dtype, softmax_error_eps,
                  log_softmax_error_eps, SOFTMAX_EPS, LOG_SOFTMAX_EPS)

LAYOUTS = ["rows", "strided_rows", "columns"]
IMPLEMENTATIONS = [fastsoftmax, reference]


def to_layout(groups, layout):
    """(x, axis, back): `groups` (one group per row) laid out as contiguous
    rows, strided rows (Fortran order) or columns of a C-contiguous array
    (the column kernel), and a function mapping a result back to one group
    per row."""
    if layout == "rows":
        return groups.copy(), -1, lambda y: y
    if layout == "strided_rows":
        return np.asfortranarray(groups), 1, lambda y: y
    return np.ascontiguousarray(groups.T), 0, lambda y: y.T


NAN_GROUPS = {
    "nan": lambda g, p: g.__setitem__(p, np.nan),
    "posinf": lambda g, p: g.__setitem__(p, np.inf),
    "all_neginf": lambda g, p: g.__setitem__(slice(None), -np.inf),
    "nan_and_posinf": lambda g, p: (g.__setitem__(p, np.nan), g.__setitem__(p - 1, np.inf)),
    "nan_and_neginf": lambda g, p: (g.__setitem__(p, np.nan), g.__setitem__(p - 1, -np.inf)),
    "two_posinf": lambda g, p: (g.__setitem__(p, np.inf), g.__setitem__(0, np.inf)),
    "posinf_and_neginf": lambda g, p: (g.__setitem__(p, np.inf), g.__setitem__(p - 1, -np.inf)),
    "all_nan": lambda g, p: g.__setitem__(slice(None), np.nan),
}


def special_groups(length, dtype, case, position, n_groups=20):
    rng = np.random.default_rng(length + position)
    groups = rng.standard_normal((n_groups, length)).astype(dtype)
    NAN_GROUPS[case](groups[3], position)
    return groups


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("length,position", [(37, 1), (37, 17), (37, 36), (300, 1), (300, 270)])
@pytest.mark.parametrize("case", list(NAN_GROUPS))
def test_group_becomes_nan(case, length, position, layout, name, dtype, variant):
    groups = special_groups(length, dtype, case, position)
    x, axis, back = to_layout(groups, layout)
    y = back(assert_matches_reference(name, x, axis))
    assert np.isnan(y[3]).all()
    others = np.delete(np.arange(len(groups)), 3)
    assert np.isfinite(y[others]).all()
    # the other groups are unaffected: as accurate as without the special group
    expected = extended_reference(name, groups[others], -1)
    if name == "softmax":
        assert softmax_error_eps(y[others], expected, dtype) <= SOFTMAX_EPS
    else:
        assert log_softmax_error_eps(y[others], expected, dtype) <= LOG_SOFTMAX_EPS


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("length", [2, 37, 300])
def test_neginf_among_finite(length, layout, name, dtype, variant):
    rng = np.random.default_rng(length)
    groups = rng.standard_normal((20, length)).astype(dtype)
    neginf = np.zeros(groups.shape, dtype=bool)
    neginf[3, ::3] = True     # a third of group 3, including its first element
    neginf[5, 1:] = True      # all but one element of group 5
    neginf[7, :-1] = True     # all but the last element of group 7
    groups[neginf] = -np.inf
    x, axis, back = to_layout(groups, layout)
    y = back(assert_matches_reference(name, x, axis))
    if name == "softmax":
        assert (y[neginf] == 0).all()
        assert y[5, 0] == 1 and y[7, -1] == 1
    else:
        assert (y[neginf] == -np.inf).all()
        assert y[5, 0] == 0 and y[7, -1] == 0
    assert np.isfinite(y[~neginf]).all()
    # the finite entries of group 3 are the softmax of those entries alone
    finite = groups[3][~neginf[3]]
    expected = extended_reference(name, finite)
    got = y[3][~neginf[3]]
    if name == "softmax":
        assert softmax_error_eps(got, expected, dtype) <= SOFTMAX_EPS
    else:
        assert log_softmax_error_eps(got, expected, dtype) <= LOG_SOFTMAX_EPS


# --- empty and 0-d -------------------------------------------------------------

EMPTY_CASES = [((0,), -1), ((0,), None), ((0, 5), 0), ((0, 5), 1), ((5, 0), -1), ((5, 0), 0),
               ((5, 0), None), ((3, 0, 4), 1), ((3, 0, 4), (0, 2)), ((3, 0, 4), 2), ((2, 3, 0), -1)]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=["fastsoftmax", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int32, np.bool_,
                                   np.longdouble])
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", EMPTY_CASES)
def test_empty(shape, axis, name, dtype, impl, variant):
    x = np.empty(shape, dtype=dtype)
    y = getattr(impl, name)(x, axis)
    assert type(y) is np.ndarray
    assert y.shape == shape
    assert y.dtype == result_dtype(dtype)
    out = np.empty(shape, dtype=result_dtype(dtype))
    assert getattr(impl, name)(x, axis, out=out) is out


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=["fastsoftmax", "reference"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16, np.int64, np.bool_,
                                   np.longdouble])
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, None, (0,), ()])
def test_zero_d(axis, name, dtype, impl, variant):
    """A 0-d input is one group of one element."""
    x = np.array(3, dtype=dtype)
    y = getattr(impl, name)(x, axis)
    assert type(y) is np.ndarray
    assert y.shape == ()
    assert y.dtype == result_dtype(dtype)
    assert y == (1.0 if name == "softmax" else 0.0)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("value", [-1e300, 0.0, 1e300, -np.inf, np.inf, np.nan])
def test_zero_d_special(value, name, variant):
    y = call_unmodified(fast(name), np.array(value))
    if np.isfinite(value):
        assert y == (1.0 if name == "softmax" else 0.0)
    else:  # +inf, -inf (a group entirely -inf) and NaN: NaN
        assert np.isnan(y)
    np.testing.assert_array_equal(y, ref(name)(np.array(value)))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", [((1,), -1), ((5, 1), -1), ((1, 300), 0), ((4, 1, 3), 1),
                                        ((6, 7), ()), ((2, 3, 4), ())])
def test_groups_of_one_element(shape, axis, name, dtype, variant):
    """Groups of one element (length-1 axes, or an empty tuple of axes)."""
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype) * 100
    y = assert_matches_reference(name, x, axis)
    np.testing.assert_array_equal(y, np.full(shape, 1.0 if name == "softmax" else 0.0, dtype=dtype))


# --- magnitudes ----------------------------------------------------------------

F32_MAX, F64_MAX = float(np.finfo(np.float32).max), float(np.finfo(np.float64).max)
_A32 = np.float32(-1e30)
_B32 = np.nextafter(_A32, np.float32(-np.inf))  # one float32 step below: x - max exact

HUGE_ROWS = {
    "float32": [([1e30, -1e30], [1.0, 0.0], [0.0, -2e30]),
                ([1e30, 1e30], [0.5, 0.5], [-np.log(2)] * 2),
                ([-1e30, -1e30], [0.5, 0.5], [-np.log(2)] * 2),
                ([float(_A32), float(_B32)], [1.0, 0.0], [0.0, float(_B32) - float(_A32)]),
                ([3e38, -3e38], [1.0, 0.0], [0.0, -np.inf]),  # x - max overflows: -inf
                ([F32_MAX, F32_MAX], [0.5, 0.5], [-np.log(2)] * 2),
                ([-F32_MAX, -F32_MAX, -F32_MAX, -F32_MAX], [0.25] * 4, [-np.log(4)] * 4)],
    "float64": [([1e300, -1e300], [1.0, 0.0], [0.0, -2e300]),
                ([1e300, 1e300], [0.5, 0.5], [-np.log(2)] * 2),
                ([-1e300, 1e300, -1e300], [0.0, 1.0, 0.0], [-2e300, 0.0, -2e300]),
                ([1e308, -1e308], [1.0, 0.0], [0.0, -np.inf]),
                ([F64_MAX, F64_MAX], [0.5, 0.5], [-np.log(2)] * 2),
                ([-F64_MAX] * 3, [1 / 3] * 3, [-np.log(3)] * 3)],
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_huge_magnitudes(layout, name, dtype, variant):
    for values, softmax_expected, log_expected in HUGE_ROWS[np.dtype(dtype).name]:
        groups = np.array([values] * 3, dtype=dtype)
        x, axis, back = to_layout(groups, layout)
        with np.errstate(over="ignore"):
            y = back(assert_matches_reference(name, x, axis))
            expected = np.array([softmax_expected if name == "softmax" else log_expected] * 3,
                                dtype=dtype)
        np.testing.assert_allclose(y, expected, rtol=2 * eps(dtype), atol=0, err_msg=str(values))


SUBNORMAL_ROWS = {
    # exp(x - max) of every entry after the first is subnormal or rounds to 0
    "float32": [0.0, -88.0, -90.0, -95.0, -100.0, -102.5, -103.0, -103.5, -103.9, -104.0,
                -104.5, -110.0, -200.0],
    "float64": [0.0, -708.5, -710.0, -720.0, -740.0, -744.0, -744.5, -745.1, -745.2, -746.0,
                -800.0, -1e5],
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_subnormal_results(layout, name, dtype, variant):
    row = np.array(SUBNORMAL_ROWS[np.dtype(dtype).name], dtype=dtype)
    low = -100.0 if dtype == np.float32 else -740.0
    pairs = np.where(np.arange(len(row)) % 2 == 0, 0.0, low).astype(dtype)
    groups = np.stack([row, row[::-1], row + 7, pairs])
    x, axis, back = to_layout(groups, layout)
    y = back(assert_matches_reference(name, x, axis))
    expected = extended_reference(name, groups)
    tiny = float(np.finfo(dtype).smallest_subnormal)
    if name == "softmax":
        # results in the subnormal range are rounded once: within one subnormal
        # step (plus the relative error of the normal results)
        np.testing.assert_allclose(y.astype(np.longdouble), expected,
                                   rtol=SOFTMAX_EPS * eps(dtype), atol=tiny)
        assert (y >= 0).all()
        assert softmax_error_eps(y, expected, dtype) <= SOFTMAX_EPS
    else:
        # x - max exactly, minus a tiny lse: relative error, and absolute error
        # near 0 (where the lse is below the long double reference's resolution)
        assert log_softmax_error_eps(y, expected, dtype) <= LOG_SOFTMAX_EPS
        # far below the (single) max the lse is negligible: y is x - max, exactly
        shifted = groups[:3] - groups[:3].max(axis=1, keepdims=True)
        far = shifted < -20
        np.testing.assert_array_equal(y[:3][far], shifted[far])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_two_element_subnormal_example(name, dtype, variant):
    """[0, -100] in float32, [0, -740] in float64: the second exp is subnormal."""
    low = -100.0 if dtype == np.float32 else -740.0
    y = fast(name)(np.array([0.0, low], dtype=dtype))
    small = np.exp(np.longdouble(low))
    tiny = float(np.finfo(dtype).smallest_subnormal)
    if name == "softmax":
        assert y[0] == 1
        assert 0 < y[1] < np.finfo(dtype).smallest_normal
        assert abs(np.longdouble(y[1]) - small) <= tiny
    else:
        assert abs(np.longdouble(y[0]) + small) <= tiny
        assert y[1] == dtype(low)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("layout", LAYOUTS)
def test_uniform_90_100_needs_the_max_subtraction(layout, name, dtype, variant, num_threads):
    """exp(90..100) overflows float32: only exp(x - max) works."""
    groups = np.random.default_rng(90).uniform(90, 100, (40, 1000)).astype(dtype)
    x, axis, back = to_layout(groups, layout)
    y = back(assert_correct(name, x, axis, num_threads=num_threads))
    assert np.isfinite(y).all()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("length", [1, 3, 8, 33, 256, 1000])
def test_equal_entries(length, name, dtype, variant):
    x = np.full((3, length), 42.5, dtype=dtype)
    y = assert_matches_reference(name, x)
    expected = 1.0 / length if name == "softmax" else -np.log(length)
    np.testing.assert_allclose(y, expected, rtol=2 * eps(dtype))
