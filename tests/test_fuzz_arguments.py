"""Bounded fuzz of argument combinations (Hypothesis): each of x, axis, out
and num_threads is drawn valid or invalid.  A call with an invalid argument
raises only a documented exception -- TypeError or ValueError (AxisError is
a ValueError) -- whose message names an invalid argument, the same exception
and message as `fastsoftmax.reference`, and leaves `out` untouched; a call
with valid arguments raises nothing and gives the reference's result."""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from util import FUNCTIONS, fast, ref

SHAPE = (3, 4)


def read_only(a):
    a = a.copy()
    a.flags.writeable = False
    return a


# (value, valid?) pools.  Inputs all have SHAPE when they are valid.
def x_pool():
    base = np.linspace(-3, 3, 12).reshape(SHAPE)
    return [
        (base, True), (base.astype(np.float32), True), (base.T.copy().T, True),
        (base.astype(np.int16), True), (base.tolist(), True), (base[::-1], True),
        (base.astype(np.complex128), True), (base.astype(object), False),
        (np.array([["a"] * 4] * 3), False), (np.zeros(SHAPE, "datetime64[s]"), False),
        ([[1.0], [1.0, 2.0]], False), (None, False), ({"a": 1}, False),
        ([[2**70] * 4] * 3, False), (np.array(b"abc"), False),
    ]


AXIS_POOL = [(-1, True), (0, True), (1, True), (-2, True), (None, True), ((0, 1), True),
             ((), True), ((-1,), True),
             (2, False), (-3, False), (10**30, False), (1.0, False), ("0", False), (True, False),
             ((0, 0), False), ((1, -1), False), ((0, "a"), False), (1j, False), (np.float64(0), False)]

THREADS_POOL = [(None, True), (1, True), (2, True), (10**9, True), (2**200, True), (np.int8(3), True),
                (0, False), (-1, False), (-(2**70), False), (1.5, False), ("2", False), (True, False),
                ([2], False), (np.bool_(True), False), (float("nan"), False)]


def out_pool(dtype):
    """(out, valid?) for a result of SHAPE and `dtype`."""
    other = np.float32 if dtype == np.float64 else np.float64
    return [
        (None, True), (np.full(SHAPE, 9.0, dtype), True),
        (np.full((8, 9), 9.0, dtype)[::2, ::2][:3, :4], True), (np.full(SHAPE[::-1], 9.0, dtype).T, True),
        (np.full((4, 3), 9.0, dtype), False), (np.full(12, 9.0, dtype), False),
        (np.full(SHAPE, 9.0, other), False), (np.full(SHAPE, 9, np.int64), False),
        (read_only(np.full(SHAPE, 9.0, dtype)), False), (np.full(SHAPE, 9.0, dtype).tolist(), False),
        (9.0, False), (np.float64(9.0), False),
    ]


def names_argument(message, argument):
    return re.search(rf"\b{argument}\b", message) is not None


def result_dtype_of(x):
    arr = np.asarray(x)
    return np.dtype(arr.dtype.type) if arr.dtype.kind in "fc" else np.dtype(np.float64)


@st.composite
def calls(draw):
    x, x_ok = draw(st.sampled_from(x_pool()))
    axis, axis_ok = draw(st.sampled_from(AXIS_POOL))
    threads, threads_ok = draw(st.sampled_from(THREADS_POOL))
    dtype = result_dtype_of(x) if x_ok else np.dtype(np.float64)
    out, out_ok = draw(st.sampled_from(out_pool(dtype)))
    invalid = [name for name, ok in (("x", x_ok), ("axis", axis_ok), ("out", out_ok),
                                     ("num_threads", threads_ok)) if not ok]
    return x, axis, out, threads, invalid


def outcome(fn, x, axis, out, num_threads):
    """(result, None) or (None, exception) of one call; out is copied first
    so that the two implementations write separate arrays."""
    out_copy = out.copy() if isinstance(out, np.ndarray) else out
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        out_copy = read_only(out)
    try:
        return fn(x, axis, out=out_copy, num_threads=num_threads), None, out_copy
    except Exception as exc:  # noqa: BLE001 - every exception is judged below
        return None, exc, out_copy


@pytest.mark.parametrize("name", FUNCTIONS)
@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls())
def test_random_argument_combinations(name, call):
    x, axis, out, num_threads, invalid = call
    got, error, out_after = outcome(fast(name), x, axis, out, num_threads)
    want, want_error, _ = outcome(ref(name), x, axis, out, num_threads)
    if not invalid:
        assert error is None, f"valid call raised {error!r}"
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        if out is not None:
            assert got is out_after
        return
    assert error is not None, f"invalid {invalid} accepted"
    assert isinstance(error, (TypeError, ValueError)), f"undocumented {type(error).__name__}: {error}"
    assert any(names_argument(str(error), arg) for arg in invalid), (
        f"message names none of {invalid}: {error}")
    assert (type(error), str(error)) == (type(want_error), str(want_error))
    if isinstance(out, np.ndarray):
        np.testing.assert_array_equal(out_after, out)  # untouched


@pytest.mark.parametrize("name", FUNCTIONS)
def test_swapped_long_double_input_accepts_a_native_out(name):
    """Regression (found by test_hypothesis): a non-native byte order long
    double input had a non-native result dtype, so a native `out` was refused
    (float32/float64 inputs in the other byte order always had native ones)."""
    x = np.linspace(-2, 2, 6, dtype=np.longdouble)
    swapped = x.astype(x.dtype.newbyteorder())
    out = np.empty(6, np.longdouble)
    assert fast(name)(swapped, out=out) is out
    np.testing.assert_array_equal(out, ref(name)(x))
    assert fast(name)(swapped).dtype == np.dtype(np.longdouble)
