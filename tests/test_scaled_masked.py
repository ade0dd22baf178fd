"""softmax / log_softmax with temperature=, base= and where=: accuracy
against long double, agreement with the NumPy reference, special values,
layouts, out=, argument errors; every kernel variant, 1 and 2 threads."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import reference
from util import (FLOAT_DTYPES, FUNCTIONS, LOG_SOFTMAX_EPS, SOFTMAX_EPS, call_unmodified, eps,
                  error_eps)

KEYWORDS = {
    "temperature_0.7": dict(temperature=0.7),
    "temperature_3.3": dict(temperature=3.3),
    "base_10": dict(base=10.0),
    "base_0.5": dict(base=0.5),
    "where": "mask",
    "where_temperature_2": "mask+t",
}


def _inputs(family, rng):
    if family == "normal_x4":
        return rng.standard_normal((48, 700)) * 4, -1
    if family == "uniform_90_100":
        return rng.uniform(90, 100, (48, 700)), -1
    if family == "uniform_-30_30_axis0":
        return rng.uniform(-30, 30, (300, 40)), 0
    raise ValueError(family)


def _keywords(name, x, rng):
    kw = KEYWORDS[name]
    if kw == "mask":
        return dict(where=rng.random(x.shape) > 0.3)
    if kw == "mask+t":
        return dict(where=rng.random(x.shape) > 0.3, temperature=2.0)
    return dict(kw)


def _extended(fn_name, x, axis, kw):
    """The reference computed in long double from the exact values of x."""
    return getattr(reference, fn_name)(x.astype(np.longdouble), axis, **kw)


def _bound(fn_name):
    return SOFTMAX_EPS if fn_name == "softmax" else LOG_SOFTMAX_EPS


@pytest.mark.parametrize("fn_name", FUNCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("family", ["normal_x4", "uniform_90_100", "uniform_-30_30_axis0"])
@pytest.mark.parametrize("kw_name", list(KEYWORDS))
def test_accurate_against_long_double(fn_name, dtype, family, kw_name, variant, num_threads):
    rng = np.random.default_rng(abs(hash((family, kw_name))) % 2**32)
    x64, axis = _inputs(family, rng)
    x = x64.astype(dtype)
    kw = _keywords(kw_name, x, rng)
    got = call_unmodified(getattr(fastsoftmax, fn_name), x, axis, num_threads=num_threads, **kw)
    expected = _extended(fn_name, x, axis, kw)
    assert got.dtype == dtype and got.shape == x.shape
    err = error_eps(fn_name, got, expected, dtype)
    assert err <= _bound(fn_name), f"{fn_name} {kw_name}: {err:.2f} eps"
    if "where" in kw:  # dropped entries exactly 0 / -inf
        dropped = 0.0 if fn_name == "softmax" else -np.inf
        assert np.all(got[~kw["where"]] == dropped)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kw_name", list(KEYWORDS))
def test_agrees_with_reference(fn_name, dtype, kw_name):
    """Within our bound plus the reference's own error (both against long double)."""
    rng = np.random.default_rng(7)
    x = (rng.standard_normal((20, 333)) * 3).astype(dtype)
    kw = _keywords(kw_name, x, rng)
    got = getattr(fastsoftmax, fn_name)(x, **kw)
    ref = getattr(reference, fn_name)(x, **kw)
    extended = _extended(fn_name, x, -1, kw)
    ref_err = error_eps(fn_name, ref, extended, dtype)
    got_err = error_eps(fn_name, got, extended, dtype)
    assert got_err <= _bound(fn_name)
    np.testing.assert_array_equal(np.isfinite(got), np.isfinite(ref))
    k = _bound(fn_name) + ref_err
    finite = np.isfinite(ref)
    np.testing.assert_allclose(got[finite], ref[finite], rtol=k * eps(dtype),
                               atol=k * eps(dtype) * (1 if fn_name == "softmax" else 30))


@pytest.mark.parametrize("fn_name", FUNCTIONS)
def test_identity_scalings_match_plain(fn_name, variant):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((10, 257)) * 5
    plain = getattr(fastsoftmax, fn_name)(x)
    fn = getattr(fastsoftmax, fn_name)
    # not bit-identical: the family kernels sum the terms below the maximum apart
    np.testing.assert_allclose(fn(x, temperature=1.0), plain, rtol=4 * eps(np.float64), atol=1e-15)
    np.testing.assert_allclose(fn(x, where=np.ones(x.shape, bool)), plain, rtol=4 * eps(np.float64),
                               atol=1e-15)
    np.testing.assert_allclose(fn(x, base=np.e), plain, rtol=8 * eps(np.float64), atol=1e-14)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
def test_temperature_is_division(fn_name):
    x = np.array([[0.0, 1.0, 2.0]])
    expected = getattr(reference, fn_name)(x / 0.5)
    np.testing.assert_allclose(getattr(fastsoftmax, fn_name)(x, temperature=0.5), expected, rtol=1e-15)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("temperature", [2.0**-70, 2.0**-60, 1e-5, 1e5, 2.0**60, 2.0**70])
def test_extreme_temperatures_accurate(fn_name, dtype, temperature, variant):
    """The kernels reduce exp's argument with ln 2 / scale when
    2^-60 <= |scale| <= 2^60 and without it beyond: both ways, at and past
    the edges, on inputs that x / temperature brings back to [-40, 40]."""
    rng = np.random.default_rng(11)
    x = (rng.uniform(-40, 40, (8, 300)) * temperature).astype(dtype)
    got = call_unmodified(getattr(fastsoftmax, fn_name), x, temperature=temperature)
    expected = _extended(fn_name, x, -1, dict(temperature=temperature))
    err = error_eps(fn_name, got, expected, dtype)
    assert err <= _bound(fn_name), f"{fn_name} temperature={temperature}: {err:.2f} eps"


def _scaled_range_edges(scale, dtype, rng, rows=8):
    """Rows whose scaled maximum s * m is +-2048 (1 - 2^-11), inside float32's
    no-subtraction range |s m| <= 2048, and +-2048 (1 + 2^-11), just beyond
    it (s = `scale`, negative for a base below 1)."""
    z = rng.uniform(-80, 0, (4 * rows, 1000))
    z[np.arange(4 * rows), rng.integers(0, 1000, 4 * rows)] = 0.0
    edges = np.repeat([1 - 2.0**-11, -(1 - 2.0**-11), 1 + 2.0**-11, -(1 + 2.0**-11)], rows) * 2048
    return ((z + edges[:, None]) / scale).astype(dtype)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kw", [dict(temperature=1.5), dict(temperature=2.0**-59), dict(base=0.5)],
                         ids=["temperature_1.5", "temperature_2^-59", "base_0.5"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_scaled_range_edges_accurate(fn_name, dtype, kw, axis, variant, num_threads):
    """float32 groups (rows, and column lanes) take exp(s x) 2^(C - j) where
    |s m| <= 2048 and the exact x - m form beyond: both, on either side of
    the edge."""
    scale = 1 / kw["temperature"] if "temperature" in kw else np.log(kw["base"])
    edges = _scaled_range_edges(scale, dtype, np.random.default_rng(5))
    half = len(edges) // 2
    for side, groups in (("inside", edges[:half]), ("beyond", edges[half:])):  # a tile of lanes takes one form
        x = groups if axis == -1 else np.ascontiguousarray(groups.T)
        got = call_unmodified(getattr(fastsoftmax, fn_name), x, axis, num_threads=num_threads, **kw)
        err = error_eps(fn_name, got, _extended(fn_name, x, axis, kw), dtype)
        assert err <= _bound(fn_name), f"{fn_name} {kw} {side}: {err:.2f} eps"


def test_base_below_one_favours_small_entries():
    y = fastsoftmax.softmax(np.array([1.0, 2.0, 3.0]), base=0.5)
    np.testing.assert_allclose(y, np.array([4.0, 2.0, 1.0]) / 7, rtol=1e-15)
    assert np.argmax(y) == 0


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_special_values_with_where(dtype, variant):
    nan, inf = np.nan, np.inf
    x = np.array([[1.0, nan, 2.0],      # NaN dropped: ignored
                  [1.0, inf, 2.0],      # +inf dropped: ignored
                  [nan, 0.0, 1.0],      # NaN kept: kept entries NaN, dropped stay 0
                  [-inf, 5.0, -inf],    # nothing kept: all 0 / -inf
                  [-inf, 0.0, -inf]],   # kept entries all -inf: NaN (as without a mask)
                 dtype=dtype)
    w = np.array([[True, False, True], [True, False, True], [True, False, True],
                  [False, False, False], [True, False, True]])
    y = fastsoftmax.softmax(x, where=w)
    ly = fastsoftmax.log_softmax(x, where=w)
    for got, ref, dropped in ((y, reference.softmax(x, where=w), 0.0),
                              (ly, reference.log_softmax(x, where=w), -inf)):
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        assert np.all(got[~w] == dropped)
        np.testing.assert_allclose(got[:2], ref[:2], rtol=4 * eps(dtype))
    np.testing.assert_allclose(y[0], [1 / (1 + np.e), 0, np.e / (1 + np.e)], rtol=4 * eps(dtype))
    assert np.all(np.isnan(y[2][w[2]])) and np.all(np.isnan(y[4][w[4]]))
    assert np.all(y[3] == 0) and np.all(ly[3] == -inf)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [2047, 2048, 2049, 5000])
def test_masked_rows_around_the_staging_size(dtype, n, variant, num_threads):
    # rows of at most 2048 are masked in a stack buffer, longer ones in the
    # output itself (FSM_MASK_STAGE_ELEMS); both, in place, and a NaN row
    rng = np.random.default_rng(n)
    x = (rng.standard_normal((5, n)) * 4).astype(dtype)
    x[3, n // 2] = np.nan
    w = rng.random(x.shape) > 0.3
    for fn_name, dropped in (("softmax", 0.0), ("log_softmax", -np.inf)):
        fn, ref_fn = getattr(fastsoftmax, fn_name), getattr(reference, fn_name)
        got = call_unmodified(fn, x, where=w, num_threads=num_threads)
        ref = ref_fn(x, where=w)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        assert np.all(got[~w] == dropped)
        ok = ~np.isnan(ref)
        np.testing.assert_allclose(got[ok], ref[ok], rtol=64 * eps(dtype), atol=0)
        inplace = x.copy()
        assert fn(inplace, out=inplace, where=w, num_threads=num_threads) is inplace
        np.testing.assert_array_equal(inplace, got)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_special_values_with_scaling(dtype, variant):
    inf = np.inf
    x = np.array([[0.0, -inf, 1.0], [0.0, inf, 1.0]], dtype=dtype)
    np.testing.assert_array_equal(fastsoftmax.softmax(x, temperature=2.0)[0, 1], 0.0)
    assert np.all(np.isnan(fastsoftmax.softmax(x, temperature=2.0)[1]))
    # base < 1: x * ln(base) is +inf for x = -inf (NaN row) and -inf for x = +inf (weight 0)
    small = fastsoftmax.softmax(x, base=0.5)
    assert np.all(np.isnan(small[0]))
    np.testing.assert_allclose(small[1], [2 / 3, 0, 1 / 3], rtol=4 * eps(dtype))
    assert fastsoftmax.log_softmax(x, base=0.5)[1, 1] == -inf
    for fn_name in FUNCTIONS:
        for kw in (dict(temperature=2.0), dict(base=0.5), dict(where=np.ones(3, bool))):
            got = getattr(fastsoftmax, fn_name)(x, **kw)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(getattr(reference, fn_name)(x, **kw)))


@pytest.mark.parametrize("fn_name", FUNCTIONS)
@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2), None])
def test_layouts_and_broadcast_masks(fn_name, axis):
    rng = np.random.default_rng(11)
    base = rng.standard_normal((6, 9, 13)) * 3
    views = [base, base.transpose(2, 0, 1).copy().transpose(1, 2, 0), base[::-1, :, ::2],
             np.asfortranarray(base)]
    masks = [rng.random(base.shape) > 0.4, rng.random(base.shape[-1]) > 0.4,
             rng.random((6, 1, 1)) > 0.2]
    fn, ref = getattr(fastsoftmax, fn_name), getattr(reference, fn_name)
    for x in views:
        for mask in masks:
            mask = np.broadcast_to(mask, base.shape)[tuple(slice(None, s) for s in x.shape)]
            kw = dict(where=mask, temperature=1.7)
            got = call_unmodified(fn, x, axis, **kw)
            expected = ref(x, axis, **kw)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
            fin = np.isfinite(expected)
            np.testing.assert_array_equal(got[~fin], expected[~fin])
            np.testing.assert_allclose(got[fin], expected[fin], rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
def test_out_and_in_place(fn_name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((30, 50)).astype(np.float32)
    kw = dict(temperature=0.3, where=rng.random(x.shape) > 0.5)
    fn = getattr(fastsoftmax, fn_name)
    expected = fn(x, **kw)
    out = np.empty_like(x)
    assert fn(x, out=out, **kw) is out
    np.testing.assert_array_equal(out, expected)
    out_f = np.empty(x.shape, np.float32, order="F")
    assert fn(x, out=out_f, **kw) is out_f
    np.testing.assert_array_equal(out_f, expected)
    out_axis0 = np.empty_like(x)
    fn(x, 0, out=out_axis0, **kw)
    np.testing.assert_array_equal(out_axis0, fn(x, 0, **kw))
    inplace = x.copy()
    assert fn(inplace, out=inplace, **kw) is inplace
    np.testing.assert_array_equal(inplace, expected)
    with pytest.raises(ValueError, match="out"):
        fn(x, out=np.empty((30, 49), np.float32), **kw)
    with pytest.raises(TypeError, match="out"):
        fn(x, out=np.empty(x.shape, np.float64), **kw)
    readonly = np.empty_like(x)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        fn(x, out=readonly, **kw)


@pytest.mark.parametrize("fn_name", FUNCTIONS)
def test_threads_bit_identical(fn_name):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((300, 300))
    kw = dict(base=3.0, where=rng.random(x.shape) > 0.1)
    fn = getattr(fastsoftmax, fn_name)
    np.testing.assert_array_equal(fn(x, num_threads=1, **kw), fn(x, num_threads=2, **kw))


@pytest.mark.parametrize("dtype, result", [(np.float16, np.float16), (np.int32, np.float64),
                                           (np.bool_, np.float64), (np.longdouble, np.longdouble)])
def test_dtypes(dtype, result):
    x = np.arange(12).reshape(3, 4).astype(dtype)
    got = fastsoftmax.softmax(x, temperature=2.0, where=np.array([True, True, False, True]))
    assert got.dtype == result
    expected = reference.softmax(x, temperature=2.0, where=np.array([True, True, False, True]))
    np.testing.assert_allclose(got.astype(np.float64), expected.astype(np.float64),
                               rtol=1e-3 if dtype == np.float16 else 1e-14)


def test_empty_and_zero_dim():
    assert fastsoftmax.softmax(np.zeros((0, 3)), temperature=2.0).shape == (0, 3)
    assert fastsoftmax.softmax(np.float64(3.0), temperature=2.0) == 1.0
    assert fastsoftmax.log_softmax(np.float64(3.0), base=2.0) == 0.0
    assert fastsoftmax.softmax(np.float64(3.0), where=np.bool_(False)) == 0.0


@pytest.mark.parametrize("kw, error, word", [
    (dict(temperature=1.0, base=2.0), ValueError, "exclusive"),
    (dict(temperature=0.0), ValueError, "temperature"),
    (dict(temperature=-1.0), ValueError, "temperature"),
    (dict(temperature=np.inf), ValueError, "temperature"),
    (dict(temperature=np.nan), ValueError, "temperature"),
    (dict(temperature="2"), TypeError, "temperature"),
    (dict(temperature=True), TypeError, "temperature"),
    (dict(base=1.0), ValueError, "base"),
    (dict(base=0.0), ValueError, "base"),
    (dict(base=-2.0), ValueError, "base"),
    (dict(base=np.inf), ValueError, "base"),
    (dict(base=[2.0]), TypeError, "base"),
    (dict(where=np.ones((3, 4))), TypeError, "where"),
    (dict(where=np.ones((2, 4), bool)), ValueError, "where"),
])
@pytest.mark.parametrize("fn_name", FUNCTIONS)
def test_bad_keywords(fn_name, kw, error, word):
    with pytest.raises(error, match=word):
        getattr(fastsoftmax, fn_name)(np.zeros((3, 4)), **kw)
    with pytest.raises(error, match=word):
        getattr(reference, fn_name)(np.zeros((3, 4)), **kw)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kw", [dict(temperature=2.0), dict(temperature=1.5), dict(base=10.0), dict(base=0.5)],
                         ids=["temperature_2", "temperature_1.5", "base_10", "base_0.5"])
@pytest.mark.parametrize("n", [128, 700])
def test_scaled_log_softmax_infinite_and_extreme_entries(dtype, kw, n, variant, num_threads):
    """log_softmax's scaled output is formed from x after the log: an entry
    that exp sends to 0 (-inf, or +inf for a base below 1) gives -inf
    whether or not the scale is exact in the dtype (temperature=2: no low
    part), finfo.min/max entries stay accurate, and a dominant logit's
    result is -c with c's relative accuracy (an absolute error the size of
    the others' would leave it anywhere near 0, above 0 too)."""
    rng = np.random.default_rng(n)
    x = rng.standard_normal((6, n)).astype(dtype) * 3
    far = -np.inf if kw.get("base", 2.0) > 1 else np.inf
    x[0, ::3] = far
    x[1, 5] = np.finfo(dtype).min if far < 0 else np.finfo(dtype).max
    x[2, :] = -60.0 if far < 0 else 60.0
    x[2, 7] = 0.0  # one dominant logit (of scaled value 0: exp(s m) = 1)
    x[3, :4] = x[3].max() if far < 0 else x[3].min()  # tied extremes
    got = call_unmodified(fastsoftmax.log_softmax, x, num_threads=num_threads, **kw)
    expected = _extended("log_softmax", x, -1, kw)
    np.testing.assert_array_equal(got[0, ::3], -np.inf)
    assert np.all(got <= 0)
    with np.errstate(over="ignore"):  # the finfo.min/max entry's error, in the dtype
        err = error_eps("log_softmax", got, expected, dtype)
    assert err <= LOG_SOFTMAX_EPS, f"{kw}: {err:.2f} eps"
    # -log1p(sum of the others' exp(s (x - m))) in long double (the
    # reference's log(sum) keeps only the absolute accuracy of long double)
    scale = 1 / kw["temperature"] if "temperature" in kw else np.log(np.longdouble(kw["base"]))
    others = np.delete(x[2].astype(np.longdouble), 7)
    dominant = -np.log1p(np.sum(np.exp(scale * others)))
    # each term's relative error grows with its argument's size (a rounded
    # scale), and c's with it
    condition = 1 + float(np.max(np.abs(scale * others)))
    assert got[2, 7] <= 0
    tiny = np.finfo(dtype).smallest_subnormal  # base 10 float32: -c underflows
    assert abs(got[2, 7] - dominant) <= LOG_SOFTMAX_EPS * eps(dtype) * condition * abs(dominant) + tiny
