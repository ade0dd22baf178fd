"""float16 and bfloat16, read and written natively by the kernels: computed
with float32's algorithm and rounded once.  Every result must equal the
float32 result of the widened input rounded to the half type (the same
kernels, plan for plan), be within 1 ulp of the half type of the exact
(long double) value, and be the same for any thread count.  bfloat16 needs
ml_dtypes (the optional extra fastsoftmax[ml]); without it those tests skip.
"""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from fastsoftmax._validation import BFLOAT16
from util import extended_reference, fast

NO_ML_DTYPES = "bfloat16 needs ml_dtypes (the optional extra ml: pip install '.[ml]' from a checkout)"
HALF = [pytest.param(np.dtype(np.float16), id="float16"),
        pytest.param(BFLOAT16, id="bfloat16", marks=pytest.mark.skipif(BFLOAT16 is None, reason=NO_ML_DTYPES))]
# (mantissa bits, lowest normal exponent) of each half type: its ulp
HALF_FORMAT = {"float16": (10, -14), "bfloat16": (7, -126)}
FORWARD = ("softmax", "log_softmax", "logsumexp")

# (shape, axis) reaching every plan and layout: short rows, row groups,
# long rows (split across threads), columns (one tile and several, a last
# tile of one lane), batches of columns, several axes, strided groups.
CASES = [((1000, 10), -1), ((300, 63), -1), ((200, 64), -1), ((64, 130), -1), ((3, 70000), -1),
         ((1, 40000), -1), ((50, 37), 0), ((1000, 300), 0), ((40, 33), 0), ((7, 300, 5), 1),
         ((4, 5, 6), (0, 2)), ((300,), 0), ((6, 50, 40), None), ((60, 70), 0)]


def half_input(shape, dtype, seed=0, scale=4.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def float32_rounded(name, x, axis, dtype, **kwargs):
    """The float32 computation of x's values, rounded once to `dtype`."""
    result = fast(name)(x.astype(np.float32), axis, **kwargs)
    return np.asarray(result).astype(dtype)


def assert_same(got, expected):
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got.astype(np.float32), expected.astype(np.float32))


def half_ulps(got, exact, dtype) -> float:
    """Largest |got - exact| in ulps of the half type at the exact value
    (NaN and infinities must agree exactly)."""
    mantissa, lowest = HALF_FORMAT[dtype.name]
    got, exact = np.asarray(got).astype(np.longdouble), np.asarray(exact, dtype=np.longdouble)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(exact))
    finite = np.isfinite(exact)
    np.testing.assert_array_equal(got[~finite & ~np.isnan(exact)], exact[~finite & ~np.isnan(exact)])
    if not finite.any():
        return 0.0
    magnitude = np.abs(exact[finite])
    exponent = np.floor(np.log2(np.where(magnitude > 0, magnitude, 1)))
    ulp = np.exp2(np.maximum(exponent, lowest) - mantissa)
    return float(np.max(np.abs(got[finite] - exact[finite]) / ulp))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("shape, axis", CASES)
def test_float32_algorithm_rounded_once(shape, axis, name, dtype, variant):
    x = half_input(shape, dtype)
    got = fast(name)(x, axis)
    assert np.asarray(got).dtype == dtype
    assert_same(got, float32_rounded(name, x, axis, dtype))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", FORWARD)
@pytest.mark.parametrize("shape, axis", [((500, 10), -1), ((64, 1000), -1), ((2, 50000), -1), ((100, 200), 0)])
def test_within_one_ulp_of_long_double(shape, axis, name, dtype, variant):
    x = half_input(shape, dtype, seed=3, scale=8.0)
    exact = extended_reference(name, x, axis)
    assert half_ulps(fast(name)(x, axis), exact, dtype) <= 1.0


@pytest.mark.parametrize("dtype", HALF)
def test_softmax_rows_sum_to_one(dtype, variant):
    """Each element rounded once: the row sum is 1 within half an ulp of
    the type per element (plus the float32 error)."""
    x = half_input((200, 300), dtype, seed=5)
    y = fastsoftmax.softmax(x).astype(np.float64)
    eps = 2.0 ** -HALF_FORMAT[dtype.name][0]
    assert np.all(np.abs(y.sum(axis=-1) - 1) <= (0.5 * eps + 2.0 ** -21) * 300 * y.max(axis=-1))


@pytest.mark.parametrize("dtype", HALF)
def test_thread_count_does_not_change_results(dtype, num_threads):
    for shape, axis in [((3000, 10), -1), ((2, 70000), -1), ((40, 2000), -1), ((500, 300), 0)]:
        x = half_input(shape, dtype, seed=7)
        for name in FORWARD:
            assert_same(fast(name)(x, axis, num_threads=num_threads), fast(name)(x, axis, num_threads=1))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_plans_of_half_problems_are_float32s(name, dtype):
    for shape, axis in [((1000, 10), -1), ((64, 130), -1), ((50, 37), 0)]:
        x = half_input(shape, dtype)
        half = _core._plan_info(_core.OPS[name], x, (axis % x.ndim,), np.empty_like(x))
        single = x.astype(np.float32)
        assert half[0] == _core._plan_info(_core.OPS[name], single, (axis % x.ndim,), np.empty_like(single))[0]


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", FORWARD)
def test_special_values(name, dtype, variant):
    x = half_input((8, 40), dtype).astype(np.float32)
    x[1, 3] = np.nan
    x[2, 5] = np.inf
    x[3, :] = -np.inf
    x[4, ::3] = -np.inf
    x[5, 0] = 300.0  # the others underflow to 0
    x[6, :] = 0.0
    x[7, 0], x[7, 1:] = 1e4, -1e4  # log_softmax to -2e4
    x = x.astype(dtype)
    assert_same(fast(name)(x), float32_rounded(name, x, -1, dtype))
    if name == "softmax":
        y = fastsoftmax.softmax(x).astype(np.float32)
        assert np.all(y[5, 1:] == 0) and y[5, 0] == 1
        assert np.all(np.isnan(y[1:4]))


@pytest.mark.parametrize("dtype", HALF)
def test_tiny_results_round_to_subnormals(dtype, variant):
    """Results across the subnormal range of the type, rounded to nearest
    even from the float32 result (as NumPy and ml_dtypes round)."""
    x = np.linspace(-100.0, 0.0, 4000).reshape(4, 1000).astype(dtype)
    assert_same(fastsoftmax.softmax(x), float32_rounded("softmax", x, -1, dtype))


@pytest.mark.parametrize("dtype", HALF)
def test_every_half_value_widens_exactly(dtype, variant):
    """logsumexp of one element is the element: every finite bit pattern
    widened (into a float32 out=) and narrowed back (into the type)
    unchanged (but -0, whose logsumexp is -0 + log 1 = +0)."""
    bits = np.arange(2**16, dtype=np.uint16)
    x = bits.view(dtype).reshape(-1, 1)
    finite = np.isfinite(x.astype(np.float32)[:, 0]) & (bits != 0x8000)
    wide = np.empty(x.shape[0], np.float32)
    fastsoftmax.logsumexp(x, axis=1, out=wide)
    np.testing.assert_array_equal(wide[finite], x.astype(np.float32)[finite, 0])
    narrow = fastsoftmax.logsumexp(x, axis=1)
    np.testing.assert_array_equal(narrow.view(np.uint16)[finite], bits[finite])


@pytest.mark.parametrize("dtype", HALF)
def test_float32_results_narrowed_with_overflow(dtype, variant):
    """float32 x into a half out=: rounded once, to nearest even, with
    results beyond the type's range going to infinity (float16's)."""
    x = np.random.default_rng(2).standard_normal((30, 50)).astype(np.float32) * 30000
    out = np.empty(x.shape, dtype)
    assert fastsoftmax.log_softmax(x, out=out) is out
    with np.errstate(over="ignore"):
        expected = fastsoftmax.log_softmax(x).astype(dtype)
    assert np.isinf(expected.astype(np.float32)).any() == (dtype == np.float16)
    assert_same(out, expected)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_empty_and_0d(name, dtype):
    empty = np.empty((0, 5), dtype)
    assert fast(name)(empty).dtype == dtype and fast(name)(empty).shape == (0, 5)
    scalar = np.array(3.0, dtype)
    result = fast(name)(scalar)
    assert result.dtype == dtype and result.shape == ()
    assert float(result) == (1.0 if name == "softmax" else 0.0)
    assert fastsoftmax.logsumexp(empty, axis=0).dtype == dtype


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
@pytest.mark.parametrize("shape, axis", [((100, 10), -1), ((30, 300), -1), ((2, 40000), -1), ((50, 40), 0)])
def test_where_temperature_base(shape, axis, name, dtype, variant):
    x = half_input(shape, dtype, seed=9)
    where = np.random.default_rng(4).random(shape) < 0.7
    where[0] = False  # a group with nothing left
    for kwargs in ({"where": where}, {"temperature": 0.3}, {"base": 2.0}, {"where": where, "temperature": 1.5}):
        assert_same(fast(name)(x, axis, **kwargs), float32_rounded(name, x, axis, dtype, **kwargs))


@pytest.mark.parametrize("dtype", HALF)
def test_logsumexp_weights_and_masks(dtype, variant):
    x = half_input((40, 300), dtype)
    b = half_input((40, 300), dtype, seed=1)
    where = np.random.default_rng(4).random(x.shape) < 0.5
    for kwargs in ({"b": b}, {"where": where}, {"b": b, "return_sign": True}):
        got = fastsoftmax.logsumexp(x, **kwargs)
        single = fastsoftmax.logsumexp(x.astype(np.float32), **{k: (v.astype(np.float32) if k == "b" else v)
                                                                 for k, v in kwargs.items()})
        if kwargs.get("return_sign"):
            assert_same(got[1], single[1].astype(dtype))
            got, single = got[0], single[0]
        assert_same(got, single.astype(dtype))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", ("softmax_backward", "log_softmax_backward"))
@pytest.mark.parametrize("shape, axis", [((100, 10), -1), ((30, 300), -1), ((50, 40), 0)])
def test_backward(shape, axis, name, dtype, variant):
    forward = name.replace("_backward", "")
    y = fast(forward)(half_input(shape, dtype), axis)
    grad = half_input(shape, dtype, seed=2, scale=1.0)
    expected = fast(name)(grad.astype(np.float32), y.astype(np.float32), axis).astype(dtype)
    assert_same(fast(name)(grad, y, axis), expected)
    out = grad.copy()
    assert fast(name)(out, y, axis, out=out) is out  # in place
    assert_same(out, expected)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("shape, axis", [((100, 10), -1), ((30, 300), -1), ((50, 40), 0)])
def test_cross_entropy(shape, axis, dtype, variant):
    logits = half_input(shape, dtype)
    target = np.random.default_rng(1).integers(0, shape[axis], shape[:axis % 2] + shape[axis % 2 + 1:])
    probs = fastsoftmax.softmax(half_input(shape, dtype, seed=3), axis)
    for t in (target, probs):
        loss, grad = fastsoftmax.cross_entropy(logits, t, axis, reduction="none", label_smoothing=0.1,
                                               return_grad=True)
        t32 = t.astype(np.float32) if t.dtype == dtype else t
        loss32, grad32 = fastsoftmax.cross_entropy(logits.astype(np.float32), t32, axis, reduction="none",
                                                   label_smoothing=0.1, return_grad=True)
        assert_same(loss, loss32.astype(dtype))
        assert_same(grad, grad32.astype(dtype))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
def test_out_of_every_layout(name, dtype, variant):
    x = half_input((60, 70), dtype)
    expected = float32_rounded(name, x, 0, dtype)
    for out in (np.empty_like(x), np.empty(x.shape, dtype, order="F"), np.empty((70, 60), dtype).T,
                np.empty((60, 140), dtype)[:, ::2]):
        assert fast(name)(x, 0, out=out) is out
        assert_same(out, expected)
    inplace = x.copy()
    assert fast(name)(inplace, 0, out=inplace) is inplace
    assert_same(inplace, expected)


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", ("softmax", "log_softmax"))
@pytest.mark.parametrize("impl", [fastsoftmax, reference], ids=["fastsoftmax", "reference"])
def test_mixed_precision_out(impl, name, dtype, variant):
    """A half x into a float32 out= gets the float32 result (not rounded to
    the half type); a float32 x into a half out= gets it rounded once."""
    x = half_input((40, 300), dtype)
    single = fast(name)(x.astype(np.float32))
    wide = np.empty(x.shape, np.float32)
    assert getattr(impl, name)(x, out=wide) is wide
    if impl is fastsoftmax:
        np.testing.assert_array_equal(wide, single)
    else:
        np.testing.assert_allclose(wide, single, rtol=1e-5, atol=1e-7)
    narrow = np.empty(x.shape, dtype)
    assert getattr(impl, name)(x.astype(np.float32), out=narrow) is narrow
    if impl is fastsoftmax:
        assert_same(narrow, single.astype(dtype))


@pytest.mark.parametrize("dtype", HALF)
def test_other_out_dtypes_refused(dtype):
    x = half_input((4, 5), dtype)
    with pytest.raises(TypeError, match="softmax|out"):
        fastsoftmax.softmax(x, out=np.empty(x.shape, np.float64))
    other = np.float16 if dtype == BFLOAT16 else BFLOAT16
    if other is not None:
        with pytest.raises(TypeError, match="out has dtype"):
            fastsoftmax.softmax(x, out=np.empty(x.shape, other))


@pytest.mark.parametrize("dtype", HALF)
@pytest.mark.parametrize("name", FORWARD)
def test_reference_computes_in_float32_and_rounds_once(name, dtype):
    x = half_input((20, 30), dtype)
    got = getattr(reference, name)(x)
    assert got.dtype == dtype
    expected = np.asarray(getattr(reference, name)(x.astype(np.float32))).astype(dtype)
    assert_same(got, expected)


@pytest.mark.skipif(BFLOAT16 is None, reason=NO_ML_DTYPES)
def test_float16_and_bfloat16_meet_in_float32():
    x = half_input((10, 20), np.float16)
    y = fastsoftmax.softmax(half_input((10, 20), BFLOAT16))
    got = fastsoftmax.softmax_backward(x, y)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, fastsoftmax.softmax_backward(x.astype(np.float32), y.astype(np.float32)))
