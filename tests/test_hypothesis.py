"""Property-based tests (Hypothesis): on random shapes, axes, layouts, dtypes
and values from the whole float range, every public function agrees with
`fastsoftmax.reference`, is within its accuracy bound of the
extended-precision reference, leaves its input unchanged, and raises nothing.

Agreement with the NumPy reference, element by element: the same NaN and
infinite entries, and for finite entries of float32/float64

    |fast - ref| <= bound(ext) + |ref - ext|

where `ext` is the same function computed in long double from the same
input and bound(ext) fastsoftmax's accuracy bound there (`allowed_error`:
the eps bounds of tests/util.py, relative, with the absolute parts the
documentation gives for subnormal softmax results and log_softmax results
near 0).  The last term is the reference's own error on
that element: NumPy's textbook formula can be tens of eps off (x - max is
rounded before exp), so it is allowed exactly where NumPy is off, not
everywhere.  float16 inputs are computed in float32 by both and rounded once:
the same comparison in float32, plus one float16 ulp.  Long double inputs are
handed to the reference by fastsoftmax and must agree exactly.

The CI profile (tests/conftest.py) is derandomized; `pytest
--hypothesis-profile=explore` draws new examples.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from util import (FUNCTIONS, LOG_SOFTMAX_EPS, SOFTMAX_EPS, assert_accurate, assert_rows_sum_to_one,
                  call_unmodified, eps, extended_reference, fast, ref, result_dtype)

MAX_ELEMENTS = 40_000
FLOAT_DTYPES = [np.float16, np.float32, np.float64, np.longdouble]
OTHER_DTYPES = [np.bool_, np.int8, np.uint8, np.int32, np.int64, np.uint64]
# Sides that cross the kernels' boundaries: SIMD widths, the 256-element sum
# blocks, the short-row plan (48 float32 / 24 float64 elements).
SIDES = st.one_of(st.integers(0, 6),
                  st.sampled_from([7, 8, 9, 15, 16, 17, 24, 25, 31, 33, 48, 49, 64, 65,
                                   255, 256, 257, 513, 1000]))
LONG_ROW = 2 * 8192 + 300  # rows this long are split across threads


# --- strategies ----------------------------------------------------------------

@st.composite
def shapes(draw):
    """0 to 4 dims; at most MAX_ELEMENTS elements; sometimes one long row."""
    if draw(st.integers(0, 9)) == 0:
        return (draw(st.integers(1, 2)), LONG_ROW + draw(st.integers(0, 300)))
    shape = []
    for _ in range(draw(st.integers(0, 4))):
        side = draw(SIDES)
        if math.prod(max(n, 1) for n in shape) * max(side, 1) > MAX_ELEMENTS:
            side = draw(st.integers(0, 3))
        shape.append(side)
    return tuple(shape)


def float_specials(dtype):
    info = np.finfo(dtype)
    return [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, float(info.max), -float(info.max),
            float(info.smallest_subnormal), -float(info.smallest_subnormal),
            float(info.smallest_normal), float(info.tiny) * 3]


def float_elements(dtype):
    """Anything a float of `dtype` can hold, weighted towards ordinary logits
    and the special values."""
    width = min(8 * np.dtype(dtype).itemsize, 64)
    return st.one_of(
        st.floats(width=width),                               # whole range, NaN, inf, subnormals
        st.floats(-40, 40, width=width),                      # ordinary logits
        st.sampled_from(float_specials(dtype)),
    )


def elements(dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return float_elements(dtype)
    return hnp.from_dtype(dtype)


@st.composite
def values(draw, dtype, shape):
    """An array of `shape`: element by element when small; otherwise random
    logits at a drawn scale and offset with special values sprinkled in."""
    dtype = np.dtype(dtype)
    size = math.prod(shape)
    if size <= 64 or dtype.kind != "f":
        return draw(hnp.arrays(dtype, shape, elements=elements(dtype)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    scale = draw(st.sampled_from([1e-6, 1.0, 4.0, 30.0, 1e4, 1e30]))
    offset = draw(st.sampled_from([0.0, 90.0, -1e4, 1e30]))
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(size) * scale + offset).astype(dtype)
    for _ in range(draw(st.integers(0, 4))):
        x[draw(st.integers(0, size - 1))] = draw(st.sampled_from(float_specials(dtype)))
    return x.reshape(shape)


@st.composite
def layouts(draw, dtype):
    """A view of `dtype` with a drawn shape: sliced with steps (negative
    included), transposed, non-native byte order or unaligned."""
    shape = draw(shapes())
    steps = [draw(st.sampled_from([1, 1, 1, 2, 3, -1, -2])) for _ in shape]
    offsets = [draw(st.integers(0, 1)) for _ in shape]
    parent = tuple(abs(step) * side + offset for step, side, offset in zip(steps, shape, offsets))
    if math.prod(parent) > 4 * MAX_ELEMENTS:  # steps and offsets only where they are cheap
        steps, offsets, parent = [1] * len(shape), [0] * len(shape), shape
    base = draw(values(dtype, parent))
    view = base[(Ellipsis,) + tuple(slice(o, o + abs(s) * n, abs(s))
                                    for s, n, o in zip(steps, shape, offsets))]
    view = view[(Ellipsis,) + tuple(slice(None, None, -1 if s < 0 else 1) for s in steps)]
    if view.ndim > 1 and draw(st.booleans()):
        view = view.transpose(draw(st.permutations(range(view.ndim))))
    kind = draw(st.sampled_from(["view", "view", "view", "swapped", "unaligned", "list"]))
    if kind == "swapped" and view.dtype.itemsize > 1:
        return view.astype(view.dtype.newbyteorder())
    if kind == "unaligned" and view.dtype.itemsize > 1:
        buf = np.empty(view.size * view.dtype.itemsize + 1, np.uint8)[1:]
        unaligned = buf.view(view.dtype).reshape(view.shape)
        unaligned[...] = view
        return unaligned
    if kind == "list" and view.size <= 64 and view.dtype.kind != "f":
        return view.tolist()
    return view


@st.composite
def axes(draw, ndim):
    """None, an int (negative allowed), or a tuple of distinct axes in any
    order (possibly empty)."""
    ndim = max(ndim, 1)
    kind = draw(st.sampled_from(["int", "int", "none", "tuple"]))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    chosen = draw(st.lists(st.integers(0, ndim - 1), unique=True, max_size=ndim))
    return tuple(a - ndim if draw(st.booleans()) else a for a in chosen)


# --- comparison ------------------------------------------------------------------

def allowed_error(name, ext, dtype):
    """fastsoftmax's accuracy bound for each element whose exact value is
    `ext`.  softmax: SOFTMAX_EPS relative, plus half a subnormal ulp (a
    result below the normal range is rounded once, to the subnormal grid).
    log_softmax: LOG_SOFTMAX_EPS relative where |ext| > 1e-3, absolute below
    (tests/util.py measures it so)."""
    e = eps(dtype)
    if name == "softmax":
        # in long double: half the smallest float64 subnormal is 0 in float64
        return SOFTMAX_EPS * e * np.abs(ext) + np.longdouble(np.finfo(dtype).smallest_subnormal) / 2
    return LOG_SOFTMAX_EPS * e * np.where(np.abs(ext) > 1e-3, np.abs(ext), 1.0)


def assert_agrees(name, got, expected, x, axis, bound=None, **kwargs):
    """got (fastsoftmax) agrees with expected (the NumPy reference) as the
    module docstring states; `bound(ext, dtype)` replaces `allowed_error`
    for other functions, `kwargs` go to the long double reference."""
    bound = bound or (lambda ext, dtype: allowed_error(name, ext, dtype))
    assert type(got) is np.ndarray
    assert got.shape == expected.shape and got.dtype == expected.dtype
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg="NaN entries differ")
    np.testing.assert_array_equal(np.where(np.isinf(got), got, 0), np.where(np.isinf(expected), expected, 0),
                                  err_msg="infinite entries differ")
    dtype = expected.dtype
    if dtype.itemsize > 8:
        np.testing.assert_array_equal(got, expected)
        return
    finite = np.isfinite(expected)
    g = got[finite].astype(np.longdouble)
    r = expected[finite].astype(np.longdouble)
    # float16 is computed in float32 and rounded once: the float32 bounds,
    # plus one float16 ulp for the two roundings.
    compute = np.float32 if dtype == np.float16 else dtype
    xc = np.asarray(x).astype(compute)
    ext = ref(name)(xc.astype(np.longdouble), axis, **kwargs)[finite]
    rc = r if compute == dtype else ref(name)(xc, axis, **kwargs)[finite].astype(np.longdouble)
    allowed = bound(ext, compute) + np.abs(rc - ext)
    if compute != dtype:
        allowed += np.spacing(np.maximum(np.abs(got[finite]), np.abs(expected[finite]))).astype(np.longdouble)
    excess = np.abs(g - r) - allowed
    worst = int(np.argmax(excess)) if excess.size else 0
    assert not excess.size or excess[worst] <= 0, (
        f"{name}: fast {g[worst]!r} vs reference {r[worst]!r} (long double {ext[worst]!r}), "
        f"allowed {allowed[worst]!r}")


def call_with_out(fn, x, axis, out_kind, num_threads):
    """fn(x, axis) writing into an `out` of the kind drawn; returns the
    result and checks that it is `out`."""
    arr = np.asarray(x)
    shape, dtype = arr.shape, result_dtype(arr.dtype)
    if out_kind == "in_place":
        out = arr.copy()
        got = fn(out, axis, out=out, num_threads=num_threads)
    else:
        parent = np.full(tuple(2 * n + 1 for n in shape), -7, dtype=dtype)
        out = parent[(Ellipsis,) + tuple(slice(1, None, 2) for _ in shape)] if out_kind == "strided" \
            else np.full(shape, -7, dtype=dtype)
        got = call_unmodified(fn, x, axis, out=out, num_threads=num_threads)
    assert got is out
    return got


# --- tests -------------------------------------------------------------------------

@st.composite
def problems(draw):
    """(x, axis, out kind, num_threads)."""
    dtype = draw(st.sampled_from(FLOAT_DTYPES + OTHER_DTYPES))
    x = draw(layouts(dtype))
    arr = np.asarray(x)
    axis = draw(axes(arr.ndim))
    out_kinds = ["none", "none", "fresh", "strided"]
    if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64) and x.dtype.isnative:
        out_kinds.append("in_place")
    out_kind = draw(st.sampled_from(out_kinds))
    num_threads = draw(st.sampled_from([None, 1, 2]))
    return x, axis, out_kind, num_threads


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(problem=problems())
def test_agrees_with_reference(name, variant, problem):
    x, axis, out_kind, num_threads = problem
    expected = call_unmodified(ref(name), x, axis)
    if out_kind == "none":
        got = call_unmodified(fast(name), x, axis, num_threads=num_threads)
    else:
        got = call_with_out(fast(name), x, axis, out_kind, num_threads)
    assert_agrees(name, got, expected, x, axis)


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(dtype=st.sampled_from([np.float32, np.float64]), data=st.data())
def test_rows_of_special_values(name, variant, dtype, data):
    """Rows made mostly of NaN, +-inf, huge and subnormal values, on every
    driver plan's shapes: the same special entries as the reference."""
    n = data.draw(st.sampled_from([1, 2, 3, 7, 16, 33, 257, LONG_ROW]))
    rows = data.draw(st.sampled_from([1, 2, 3, 65, 130])) if n < 64 else data.draw(st.integers(1, 3))
    specials = float_specials(dtype) + [float(np.finfo(dtype).max) / 2, -1e4, 3.0]
    palette = data.draw(st.lists(st.sampled_from(specials), min_size=1, max_size=4))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    x = rng.choice(np.array(palette, dtype=dtype), size=(rows, n))
    axis = data.draw(st.sampled_from([-1, 0, None]))
    got = call_unmodified(fast(name), x, axis, num_threads=data.draw(st.sampled_from([1, 2])))
    assert_agrees(name, got, call_unmodified(ref(name), x, axis), x, axis)


# --- found by the tests above (fixed; kept as regression tests) -----------------

@pytest.mark.parametrize("case", [
    ("columns", np.float64, (33, 64), -8.0, 0),
    ("columns", np.float32, (48, 64), -12.0, 0),
    ("short_rows", np.float64, (64, 16), -5.0, -1),
], ids=lambda c: f"{c[0]}-{np.dtype(c[1]).name}" if isinstance(c, tuple) else str(c))
def test_repeated_terms_in_column_sums(case, variant):
    _, dtype, shape, value, axis = case
    x = np.full(shape, value, dtype)
    x[(slice(None), 0) if axis == -1 else (0, slice(None))] = 0.0  # one dominant entry per group
    assert_rows_sum_to_one(x, axis)
    assert_accurate("softmax", x, axis)


# --- the softmax family: temperature/base/where, logsumexp, backward, cross entropy ---

@st.composite
def masks(draw, shape):
    """None, or a bool mask of `shape` or broadcastable to it (some sides 1)."""
    if not shape or draw(st.booleans()):
        return None
    mshape = tuple(1 if draw(st.integers(0, 3)) == 0 else n for n in shape)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return rng.random(mshape) < draw(st.sampled_from([0.0, 0.3, 0.9, 1.0]))


def scalings(dtype):
    """No scale, or a temperature or base from anywhere in its accepted range
    for `dtype`'s computation (float32 for float16, float64 for integers)."""
    log2_range = 100 if np.dtype(dtype).kind == "f" and np.dtype(dtype).itemsize <= 4 else 1000
    return st.one_of(
        st.sampled_from([{}, {"temperature": 0.5}, {"temperature": 7.0},
                         {"base": 2.0}, {"base": 0.5}, {"base": 10.0}]),
        st.floats(-log2_range, log2_range).map(lambda k: {"temperature": 2.0**k}),
        st.floats(1e-300, 1e300).filter(lambda b: b != 1.0).map(lambda b: {"base": b}),
    )


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_scaled_and_masked_agree_with_reference(name, variant, data):
    dtype = data.draw(st.sampled_from([np.float16, np.float32, np.float64, np.int32]))
    x = np.asarray(data.draw(layouts(dtype)))
    axis = data.draw(axes(x.ndim))
    kwargs = dict(data.draw(scalings(dtype)))
    where = data.draw(masks(x.shape))
    if where is not None:
        kwargs["where"] = where
    num_threads = data.draw(st.sampled_from([None, 1, 2]))
    got = call_unmodified(fast(name), x, axis, num_threads=num_threads, **kwargs)
    expected = call_unmodified(ref(name), x, axis, **kwargs)
    assert_agrees(name, got, expected, x, axis, **kwargs)


def logsumexp_bound(ext, dtype):
    """2 eps relative to max(|logsumexp|, 1) (tests/test_family_functions.py)."""
    return 2 * eps(dtype) * np.maximum(np.abs(ext), 1)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_logsumexp_agrees_with_reference(variant, data):
    dtype = data.draw(st.sampled_from(FLOAT_DTYPES + OTHER_DTYPES))
    x = data.draw(layouts(dtype))
    arr = np.asarray(x)
    axis = data.draw(axes(arr.ndim))
    kwargs = {"keepdims": data.draw(st.booleans())}
    where = data.draw(masks(arr.shape))
    if where is not None:
        kwargs["where"] = where
    got = call_unmodified(fast("logsumexp"), x, axis,
                          num_threads=data.draw(st.sampled_from([None, 1, 2])), **kwargs)
    expected = call_unmodified(ref("logsumexp"), x, axis, **kwargs)
    got, expected = np.asarray(got), np.asarray(expected)  # 0-d results may be scalars
    assert_agrees("logsumexp", got, expected, x, axis, bound=logsumexp_bound, **kwargs)


@pytest.mark.parametrize("name", ["softmax_backward", "log_softmax_backward"])
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_backward_agrees_with_reference(name, variant, data):
    """Error relative to the size of the terms of each group (the result may
    cancel): 8 eps of max|g| * max|y| (softmax) or of max|g| + |sum g| (log)."""
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    x = np.asarray(data.draw(layouts(dtype)))
    if x.dtype != dtype:  # layouts may hand back another byte order
        x = x.astype(dtype)
    axis = data.draw(axes(x.ndim))
    forward = name.replace("_backward", "")
    y = fast(forward)(x, axis)
    # Finite grads of moderate size (infinite sums: test_backward_non_finite_sum).
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    g = (rng.standard_normal(x.shape) * data.draw(st.sampled_from([1e-3, 1.0, 1e4]))).astype(dtype)
    got = call_unmodified(fast(name), g, y, axis, num_threads=data.draw(st.sampled_from([None, 1, 2])))
    expected = call_unmodified(ref(name), g, y, axis)
    got, expected, g, y = (np.atleast_1d(a) for a in (got, expected, g, y))  # 0-d: one group
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg="NaN entries differ")
    finite = np.isfinite(expected) & np.isfinite(got)
    if not finite.any():
        return
    ax = None if axis is None else axis
    gl, yl = g.astype(np.longdouble), y.astype(np.longdouble)
    ext = ref(name)(gl, yl, ax)
    with np.errstate(all="ignore"):
        if name == "softmax_backward":
            scale = np.max(np.abs(gl), axis=ax, keepdims=True) * np.max(np.abs(yl), axis=ax, keepdims=True)
        else:
            scale = np.max(np.abs(gl), axis=ax, keepdims=True) + np.abs(np.sum(gl, axis=ax, keepdims=True))
    allowed = (8 * eps(dtype) * np.broadcast_to(scale, g.shape) + np.abs(expected - ext))[finite]
    excess = np.abs(got.astype(np.longdouble) - expected)[finite] - allowed
    assert np.max(excess) <= 0, f"{name}: off by {float(np.max(excess)):.3g} beyond the bound"


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                  HealthCheck.data_too_large])
@given(data=st.data())
def test_cross_entropy_agrees_with_reference(variant, data):
    """Loss within 4 eps of the long double loss plus the reference's own error."""
    dtype = data.draw(st.sampled_from([np.float32, np.float64]))
    rows, classes = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 300))
    x = data.draw(values(dtype, (rows, classes)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    if data.draw(st.booleans()):
        target = rng.integers(0, classes, rows)
    else:
        target = rng.random((rows, classes)).astype(dtype)
        target /= target.sum(axis=1, keepdims=True)
    kwargs = {"reduction": data.draw(st.sampled_from(["mean", "sum", "none"])),
              "label_smoothing": data.draw(st.sampled_from([0.0, 0.1, 1.0]))}
    got = np.asarray(call_unmodified(fast("cross_entropy"), x, target, **kwargs))
    expected = np.asarray(call_unmodified(ref("cross_entropy"), x, target, **kwargs))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg="NaN entries differ")
    # The reference may overflow in an intermediate (x - logsumexp in T) where
    # the loss itself is finite: an inf is then only required where the
    # long double loss overflows T too.
    extended = np.asarray(ref("cross_entropy")(x.astype(np.longdouble), target, **kwargs))
    with np.errstate(over="ignore"):
        overflows = np.isinf(extended.astype(dtype))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected) & overflows, err_msg="inf entries differ")
    finite = np.isfinite(expected)
    ext = extended[finite]
    allowed = 4 * eps(dtype) * np.abs(ext) + np.abs(expected[finite] - ext)
    excess = np.abs(got[finite].astype(np.longdouble) - expected[finite]) - allowed
    assert not excess.size or np.max(excess) <= 0, (
        f"cross_entropy off by {float(np.max(excess)):.3g} beyond the bound")
    if data.draw(st.booleans()):  # a preallocated gradient changes nothing
        loss, grad = fast("cross_entropy")(x, target, return_grad=True, **kwargs)
        grad_out = np.empty_like(x)
        got_loss, got_grad = fast("cross_entropy")(x, target, return_grad=True, grad_out=grad_out,
                                                   **kwargs)
        assert got_grad is grad_out
        np.testing.assert_array_equal(got_loss, loss)
        np.testing.assert_array_equal(got_grad, grad)


@pytest.mark.parametrize("case", [
    ("softmax_backward", [np.inf, 1.0, 2.0]),
    ("log_softmax_backward", [np.inf, 1.0, 2.0]),
    ("log_softmax_backward", [3e38, 3e38, 1.0]),
], ids=["softmax-inf", "log_softmax-inf", "log_softmax-overflow"])
def test_backward_non_finite_sum(case, variant):
    name, grad = case
    g = np.array(grad, np.float32)
    y = np.array([0.2, 0.3, 0.5], np.float32)
    if name == "log_softmax_backward":
        y = np.log(y)
    np.testing.assert_array_equal(fast(name)(g, y), ref(name)(g, y))


@pytest.mark.parametrize("case", ["minus_inf_probabilities", "minus_inf_smoothing", "huge_smoothing"])
def test_cross_entropy_special_logits(case, variant):
    x = np.array([[-np.inf, 1.0, 2.0]], np.float32)
    if case == "minus_inf_probabilities":
        target, kwargs = np.array([[0.2, 0.3, 0.5]], np.float32), {}
    elif case == "minus_inf_smoothing":
        target, kwargs = np.array([2]), {"label_smoothing": 0.1}
    else:
        x = np.array([[3.4028235e38, 0.0, 1.0, -1.0]], np.float32)
        target, kwargs = np.array([0]), {"label_smoothing": 0.1}
    np.testing.assert_array_equal(fast("cross_entropy")(x, target, **kwargs),
                                  ref("cross_entropy")(x, target, **kwargs))
