"""logsumexp with weights (b=) and return_sign=: every plan (rows, short
rows, columns, the copying fallback), variant and thread count against the
NumPy reference and long double; SciPy's special values; the NumPy scalar
convention; error messages that name the function called."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from util import FLOAT_DTYPES, eps

# (shape, axis, b's shape): the plan each runs is asserted in test_plans_are_covered
LAYOUTS = {
    "rows": ((16, 1000), -1, None),
    "short_rows": ((300, 10), -1, None),
    "cols": ((60, 70), 0, None),
    "copy": ((6, 5, 7), (0, 2), None),
    "rows_broadcast_b": ((16, 1000), -1, (1000,)),
    "cols_broadcast_b": ((60, 70), 0, (60, 1)),
    "short_rows_broadcast_b": ((300, 10), -1, (1, 10)),
}


def _plan(shape, axis, b_shape, dtype):
    x = np.zeros(shape, dtype)
    b = np.broadcast_to(np.zeros(b_shape or shape, dtype), shape)
    axes = tuple(sorted(a % x.ndim for a in np.atleast_1d(axis)))
    group = np.empty(tuple(1 if d in axes else s for d, s in enumerate(shape)))
    return _core._plan_info(_core.OPS["logsumexp"], x, axes, None, b, None, None, group, False, 1,
                            np.empty_like(group))[0]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_plans_are_covered(dtype):
    assert _plan(*LAYOUTS["rows"], dtype) == "rows"
    assert _plan(*LAYOUTS["short_rows"], dtype) == "short_rows"
    assert _plan(*LAYOUTS["cols"], dtype) == "cols"
    # weights broadcast across the columns are widened into a tile, not read per column
    assert _plan(*LAYOUTS["cols_broadcast_b"], dtype) == "cols"
    assert _plan(*LAYOUTS["copy"], dtype) == "copy"


def _inputs(layout, dtype, signs, seed=0):
    shape, axis, b_shape = LAYOUTS[layout]
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    w = rng.uniform(0.1, 2.0, b_shape or shape)
    if signs == "mixed":
        w *= rng.choice([-1.0, 1.0], w.shape)
    return x, w.astype(dtype), axis


def _exact(x, w, axis):
    """(log|total|, sign, sum of |terms|) in long double."""
    xl, wl = np.broadcast_arrays(x.astype(np.longdouble), np.asarray(w, np.longdouble))
    axes = tuple(np.atleast_1d(axis))
    total = np.sum(wl * np.exp(xl), axis=axes)
    return np.log(np.abs(total)), np.sign(total), np.sum(np.abs(wl * np.exp(xl)), axis=axes)


@pytest.mark.parametrize("signs", ["positive", "mixed"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_weighted_against_long_double_and_reference(layout, dtype, signs, variant, num_threads):
    x, w, axis = _inputs(layout, dtype, signs)
    res, sign = fastsoftmax.logsumexp(x, axis, b=w, return_sign=True, num_threads=num_threads)
    exact, exact_sign, magnitude = _exact(x, w, axis)
    assert res.dtype == dtype and sign.dtype == dtype
    np.testing.assert_array_equal(sign, exact_sign.astype(dtype))
    # within 2 eps (relative; absolute near 0), and with mixed signs a few
    # eps of the sum of |terms| more
    condition = magnitude / np.exp(exact)
    allowed = 2 * eps(dtype) * np.where(np.abs(exact) > 1e-3, np.abs(exact), 1)
    if signs == "mixed":
        allowed = allowed + 4 * eps(dtype) * condition
    assert np.all(np.abs(res.astype(np.longdouble) - exact) <= allowed)
    ref_res, ref_sign = reference.logsumexp(x, axis, b=w, return_sign=True)
    np.testing.assert_array_equal(sign, ref_sign)
    np.testing.assert_allclose(res, ref_res, rtol=64 * eps(dtype), atol=64 * eps(dtype) * np.max(condition))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_weighted_result_does_not_depend_on_the_thread_count(dtype):
    x, w, axis = _inputs("rows", dtype, "mixed", seed=3)
    x = np.tile(x, (64, 1))
    w = np.tile(w, (64, 1))
    one = fastsoftmax.logsumexp(x, axis, b=w, return_sign=True, num_threads=1)
    two = fastsoftmax.logsumexp(x, axis, b=w, return_sign=True, num_threads=2)
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("layout", ["rows", "short_rows", "cols"])
def test_weighted_special_values_match_scipy(layout, dtype, variant):
    scipy_special = pytest.importorskip("scipy.special")
    shape, axis, _ = LAYOUTS[layout]
    groups = 13
    x = np.zeros(shape, dtype)
    w = np.ones(shape, dtype)
    lead = np.moveaxis(x, axis, -1)  # views: group g is lead[g] (or lead[:, g])
    wl = np.moveaxis(w, axis, -1)
    cases = [
        ([np.inf, 1.0], [0, 1]),            # +inf with no weight takes no part
        ([np.nan, 1.0], [0, 1]),            # nor does NaN
        ([np.nan, 1.0], [1, 1]),            # NaN with a weight: NaN
        ([1.0, 1.0], [1, -1]),              # a zero total: -inf, sign 0
        ([1.0, 2.0], [1, -1]),              # a negative total: sign -1
        ([np.inf, 1.0], [-1, 1]),           # -inf total: +inf, sign -1
        ([np.inf, np.inf], [1, 1]),
        ([-np.inf, -np.inf], [1, 1]),       # an empty sum: -inf, sign 0
        ([3.0, 3.0], [0, 0]),               # no weight at all
        ([1.0, 1.0], [np.nan, 1]),          # NaN weight
        ([5.0, -np.inf], [2, 7]),
        ([1e30 if dtype == np.float32 else 1e300, 0.0], [-1, 0.5]),
        ([200.0 if dtype == np.float32 else 1000.0, 1.0], [0, 1]),  # the maximum has no weight: 1.0, not -inf
    ]
    assert len(cases) == groups
    for g, (xs, ws) in enumerate(cases):
        lead.reshape(-1, shape[axis])[g, :2] = xs
        lead.reshape(-1, shape[axis])[g, 2:] = -np.inf
        wl.reshape(-1, shape[axis])[g, :2] = ws
    for return_sign in (False, True):
        with np.errstate(all="ignore"):
            expected = scipy_special.logsumexp(x, axis, b=w, return_sign=return_sign)
        got = fastsoftmax.logsumexp(x, axis, b=w, return_sign=return_sign)
        for r, e in zip(got, expected) if return_sign else [(got, expected)]:
            np.testing.assert_allclose(r, e, rtol=4 * eps(dtype))


def test_weighted_with_where_and_float32_overflowing_weights():
    x = np.array([[0.0, 1.0, 2.0]], np.float32)
    w = np.array([[3e38, 3e38, 1.0]], np.float32)  # w * exp(x) overflows float32
    got = fastsoftmax.logsumexp(x, b=w)
    exact = np.log(np.sum(w.astype(np.float64) * np.exp(x.astype(np.float64))))
    np.testing.assert_allclose(got, exact, rtol=2 * eps(np.float32))
    where = np.array([[True, False, True]])
    np.testing.assert_allclose(fastsoftmax.logsumexp(x, b=[[1.0, 5.0, 2.0]], where=where),
                               np.log(1 + 2 * np.exp(2.0)), rtol=2e-7)


@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex_input_is_computed(dtype):
    x = np.array([[1 + 2j, 3 - 1j, -1 + 0.5j]], dtype)
    expected = np.log(np.sum(np.exp(x.astype(np.complex128)), axis=-1))
    np.testing.assert_allclose(fastsoftmax.logsumexp(x), expected, rtol=1e-6)
    np.testing.assert_allclose(fastsoftmax.softmax(x), np.exp(x) / np.sum(np.exp(x)), rtol=1e-6)
    np.testing.assert_allclose(fastsoftmax.log_softmax(x), np.log(np.exp(x) / np.sum(np.exp(x))), rtol=1e-5,
                               atol=1e-6)


def test_full_reductions_return_numpy_scalars():
    x = np.arange(6.0).reshape(2, 3)
    r = fastsoftmax.logsumexp(x, axis=None)
    assert isinstance(r, np.float64) and not isinstance(r, np.ndarray)
    assert isinstance(fastsoftmax.logsumexp(np.float32(2.0)), np.float32)
    assert fastsoftmax.logsumexp(x, axis=None, keepdims=True).shape == (1, 1)
    out = np.empty(())
    assert fastsoftmax.logsumexp(x, axis=None, out=out) is out
    res, sign = fastsoftmax.logsumexp(x, axis=None, b=-1.0, return_sign=True)
    assert isinstance(res, np.float64) and isinstance(sign, np.float64) and sign == -1
    loss = fastsoftmax.cross_entropy(x, np.array([0, 1]))
    assert isinstance(loss, np.float64)
    # softmax keeps x's shape: a 0-d input gives a 0-d array
    assert isinstance(fastsoftmax.softmax(np.float64(1.0)), np.ndarray)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_dtype_errors_name_the_function_called(name):
    with pytest.raises(TypeError, match=rf"^{name}: x has dtype <U1, which {name} does not accept"):
        getattr(fastsoftmax, name)(np.array(["a"]))
    with pytest.raises(TypeError, match=rf"^{name}: "):
        getattr(reference, name)(np.array(["a"]))


def test_backward_and_cross_entropy_errors_name_the_function_called():
    with pytest.raises(TypeError, match="^log_softmax_backward: grad has dtype"):
        fastsoftmax.log_softmax_backward(np.array([1j]), np.array([0.0]))
    with pytest.raises(TypeError, match="^cross_entropy: logits has dtype"):
        fastsoftmax.cross_entropy(np.array([[1j]]), np.array([0]))


def test_weights_that_do_not_broadcast_raise():
    with pytest.raises(ValueError, match="^logsumexp: b has shape"):
        fastsoftmax.logsumexp(np.zeros((2, 3)), b=np.ones(4))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("layout", ["rows", "short_rows", "cols"])
def test_weights_of_a_total_near_one_keep_the_accuracy(layout, dtype, variant):
    # weights 1/n of entries just below the maximum 0: the total is close to 1
    # while the maximum's weight is far from it (log|ties| + log1p(rest / ties)
    # cancelled there: 3.3 eps for float64)
    shape, axis, _ = LAYOUTS[layout]
    rng = np.random.default_rng(7)
    x = rng.uniform(-1e-3, 0, shape).astype(dtype)
    np.moveaxis(x, axis, -1)[..., 0] = 0
    w = np.full(shape, 1.0 / shape[axis], dtype)
    res = fastsoftmax.logsumexp(x, axis, b=w)
    exact = _exact(x, w, axis)[0]
    allowed = 2 * eps(dtype) * np.where(np.abs(exact) > 1e-3, np.abs(exact), 1)
    assert np.all(np.abs(res.astype(np.longdouble) - exact) <= allowed)


# Row lengths around the steps of the weighted row kernels: the 16-element
# vectors and 64-element steps of a sum block, the 256-element blocks, rows
# of one block (taken FSM_ROW_GROUP at a time, the form's factor across the
# group) and longer ones.  9 rows: the rows plan, a full row group and one
# of a single row.
WEIGHTED_ROW_LENGTHS = [1, 2, 15, 16, 17, 63, 64, 65, 255, 256, 257, 1000, 4099]


def _row_plan(x, w, threads=1):
    group = np.empty(x.shape[:-1] + (1,))
    return _core._plan_info(_core.OPS["logsumexp"], x, (x.ndim - 1,), None, w, None, None, group, False, threads,
                            np.empty_like(group))[0]


@pytest.mark.parametrize("n", WEIGHTED_ROW_LENGTHS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_weighted_rows_of_every_length_within_two_eps(n, dtype, variant):
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((9, n)) * 4).astype(dtype)
    x[1] += 1000 if dtype == np.float32 else 0  # a maximum near the float32 no-subtraction form's range
    w = rng.uniform(0.5, 2.0, (9, n)).astype(dtype)
    assert _row_plan(x, w) == "rows"
    res = fastsoftmax.logsumexp(x, -1, b=w)
    exact = _exact(x, w, -1)[0]
    assert np.all(np.abs(res.astype(np.longdouble) - exact) <= 2 * eps(dtype) * np.maximum(np.abs(exact), 1))


@pytest.mark.parametrize("n", [k for k in WEIGHTED_ROW_LENGTHS if k >= 2])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_weighted_rows_special_values_match_the_reference(n, dtype, variant):
    # each special entry at a place that moves with the row length: the
    # first vector, a step's body, a block's or the row's tail
    info = np.finfo(dtype)
    rng = np.random.default_rng(100 + n)
    x = rng.standard_normal((10, n)).astype(dtype)
    w = rng.uniform(0.5, 2.0, (10, n)).astype(dtype)
    at = (7 * n) // 9
    x[0, at] = np.nan                        # NaN with a weight: NaN
    x[1, at], w[1, at] = np.nan, 0           # NaN without one takes no part
    x[2, at], w[2, at] = np.inf, 0           # nor does +inf
    x[3, at] = np.inf                        # +inf with a weight: +inf
    x[4, at] = info.max                      # the maximum far beyond the no-subtraction range
    x[5, at] = info.min                      # a term that vanishes
    w[6] = -w[6]                             # a negative total: its sign
    w[7] = 0                                 # no weight at all: -inf, sign 0
    w[7, at] = 1                             # ... but one
    x[8] = -np.inf                           # an empty sum
    w[9, at] = -w[9, at]                     # mixed signs
    assert _row_plan(x, w) == "rows"
    with np.errstate(all="ignore"):
        expected, expected_sign = reference.logsumexp(x, -1, b=w, return_sign=True)
    got, sign = fastsoftmax.logsumexp(x, -1, b=w, return_sign=True)
    np.testing.assert_array_equal(sign, expected_sign)
    np.testing.assert_allclose(got, expected, rtol=16 * eps(dtype), atol=16 * eps(dtype))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_weighted_split_rows_are_those_of_one_thread(dtype, variant):
    # long rows cut across threads sum the row kernel's blocks: the same bits
    rng = np.random.default_rng(11)
    n = 4 * _core._plan_thresholds()["min_elements_per_thread"] + 100
    x = (rng.standard_normal((2, n)) * 4).astype(dtype)
    w = rng.uniform(0.5, 2.0, (2, n)).astype(dtype)
    assert _row_plan(x, w, threads=2) == "split_row"
    one = fastsoftmax.logsumexp(x, -1, b=w, num_threads=1)
    np.testing.assert_array_equal(fastsoftmax.logsumexp(x, -1, b=w, num_threads=2), one)
    exact = _exact(x, w, -1)[0]
    assert np.all(np.abs(one.astype(np.longdouble) - exact) <= 2 * eps(dtype) * np.maximum(np.abs(exact), 1))
