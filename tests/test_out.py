"""The out= argument: written and returned, in place (out=x), partial
overlap with x, non-contiguous out, and refused outs (same errors from the
reference)."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import reference
from util import (FLOAT_DTYPES, FUNCTIONS, assert_correct, assert_result_accurate, call_unmodified,
                  fast, ref)

IMPLEMENTATIONS = [fastsoftmax, reference]
IMPL_IDS = ["fastsoftmax", "reference"]


def normal(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


OUT_CASES = [((50, 40), -1), ((50, 40), 0), ((50, 40), None), ((6, 5, 40), (0, 2)),
             ((6, 5, 40), 1), ((300, 300), -1), ((300, 300), 0)]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", OUT_CASES)
def test_out_is_written_and_returned(shape, axis, name, dtype, variant, num_threads):
    x = normal(shape, dtype)
    expected = assert_correct(name, x, axis)
    out = np.full(shape, 7.0, dtype=dtype)
    got = call_unmodified(fast(name), x, axis, out=out, num_threads=num_threads)
    assert got is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", [np.int32, np.bool_, np.float16, ">f8"])
def test_out_for_converted_inputs(dtype, name, variant):
    x = (normal((8, 30)) * 3).astype(dtype)
    expected = fast(name)(x)
    out = np.empty(x.shape, dtype=expected.dtype)
    assert call_unmodified(fast(name), x, out=out) is out
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_out_for_zero_d_and_scalars(name, variant):
    for x in (np.array(2.0), 2.0, np.float32(2.0)):
        dtype = np.float32 if isinstance(x, np.float32) else np.float64
        out = np.array(5.0, dtype=dtype)
        assert fast(name)(x, out=out) is out
        assert out == (1.0 if name == "softmax" else 0.0)


def _out_layout(label, shape, dtype):
    """A non-contiguous, reversed or Fortran-order out of `shape`: (out, the
    buffer it lives in, mask of out's elements in that buffer)."""
    rows, cols = shape
    if label == "steps":
        big = np.full((rows * 2, cols * 3), 99.0, dtype=dtype)
        mask = np.zeros(big.shape, dtype=bool)
        mask[::2, ::3] = True
        return big[::2, ::3], big, mask
    if label == "padded_rows":
        big = np.full((rows, cols + 5), 99.0, dtype=dtype)
        mask = np.zeros(big.shape, dtype=bool)
        mask[:, 2:-3] = True
        return big[:, 2:-3], big, mask
    if label == "reversed":
        big = np.full((rows, cols), 99.0, dtype=dtype)
        return big[::-1, ::-1], big, np.ones(big.shape, dtype=bool)
    if label == "fortran":
        big = np.full((rows, cols), 99.0, dtype=dtype, order="F")
        return big, big, np.ones(big.shape, dtype=bool)
    big = np.full((cols, rows), 99.0, dtype=dtype)
    return big.T, big, np.ones(big.shape, dtype=bool)


OUT_LAYOUTS = ["steps", "padded_rows", "reversed", "fortran", "transposed"]

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, None, (0, 1)])
@pytest.mark.parametrize("shape", [(40, 30), (20, 300)])
@pytest.mark.parametrize("layout", OUT_LAYOUTS)
def test_non_contiguous_out(layout, shape, axis, name, dtype, variant, num_threads):
    x = normal(shape, dtype, seed=3)
    out, buffer, mask = _out_layout(layout, shape, dtype)
    got = call_unmodified(fast(name), x, axis, out=out, num_threads=num_threads)
    assert got is out
    # another layout may take another kernel path: equal within the bounds
    assert_result_accurate(name, out, x, axis)
    assert (buffer[~mask] == 99.0).all()  # nothing written outside out


# --- in place -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, 1, None, (0, 1)])
@pytest.mark.parametrize("view", ["contiguous", "steps", "reversed", "transposed", "fortran"])
def test_in_place(view, axis, name, dtype, variant, num_threads):
    base = normal((60, 90), dtype, seed=4)
    if view == "contiguous":
        x = base
    elif view == "steps":
        x = base[::2, ::3]
    elif view == "reversed":
        x = base[::-1, ::-2]
    elif view == "transposed":
        x = base.T
    else:
        base = np.asfortranarray(base)
        x = base
    untouched = base.copy()
    original = x.copy()
    mask = np.zeros(base.shape, dtype=bool)
    if view == "steps":
        mask[::2, ::3] = True
    elif view == "reversed":
        mask[::-1, ::-2] = True
    else:
        mask[...] = True
    got = fast(name)(x, axis, out=x, num_threads=num_threads)
    assert got is x
    assert_result_accurate(name, x, original, axis)
    np.testing.assert_array_equal(base[~mask], untouched[~mask])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", [((300, 600), 0), ((1000, 64), 0), ((4096, 8), -1),
                                        ((40, 3, 260), 0)])
def test_in_place_large(shape, axis, name, dtype, variant, num_threads):
    """In place on the column kernel and with two threads."""
    x = normal(shape, dtype, seed=5)
    expected = fast(name)(x.copy(), axis)  # same layout: same kernel path
    assert fast(name)(x, axis, out=x, num_threads=num_threads) is x
    np.testing.assert_array_equal(x, expected)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_in_place_through_another_view_object(name, variant):
    base = normal((20, 30))
    expected = fast(name)(base)
    x = base[:, :]  # a different ndarray object over the same memory and layout
    assert fast(name)(base, out=x) is x
    np.testing.assert_array_equal(base, expected)


# --- partial overlap ------------------------------------------------------------

OVERLAPS = {
    "shifted_1d": lambda b: (b[0, :-1], b[0, 1:]),
    "shifted_rows": lambda b: (b[:-1], b[1:]),
    "shifted_cols": lambda b: (b[:, :-1], b[:, 1:]),
    "reversed": lambda b: (b[:, :], b[::-1, :]),
    "transposed_square": lambda b: (b[:40, :40], b[:40, :40].T),
    "interleaved": lambda b: (b[:, ::2], b[:, 1::2]),
}


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, None])
@pytest.mark.parametrize("case", list(OVERLAPS))
def test_partial_overlap(case, axis, name, dtype, variant, num_threads):
    buf = normal((50, 400), dtype, seed=6)
    x, out = OVERLAPS[case](buf)
    if x.ndim == 1 and axis == 0:
        axis = -1
    original = x.copy()
    assert fast(name)(x, axis, out=out, num_threads=num_threads) is out
    assert_result_accurate(name, out, original, axis)


# --- refused outs ------------------------------------------------------------------

@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_out_wrong_shape(name, impl):
    x = normal((4, 5))
    for out in (np.empty((5, 4)), np.empty((4, 5, 1)), np.empty(20), np.empty((4, 6)),
                np.empty(())):
        with pytest.raises(ValueError, match="out"):
            getattr(impl, name)(x, out=out)
    with pytest.raises(ValueError, match="out"):
        getattr(impl, name)(np.array(1.0), out=np.empty(1))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("x_dtype,out_dtype", [
    (np.float64, np.float32), (np.float32, np.float64), (np.float16, np.float64),
    (np.float64, np.float16), (np.int32, np.float32), (np.int64, np.int64),
    (np.bool_, np.bool_), (np.float64, np.longdouble), (np.longdouble, np.float64),
    (np.float64, np.complex128)])
def test_out_wrong_dtype(x_dtype, out_dtype, name, impl):
    x = np.ones((4, 5), dtype=x_dtype)
    out = np.zeros((4, 5), dtype=out_dtype)
    with pytest.raises(TypeError, match="out"):
        getattr(impl, name)(x, out=out)
    assert (out == 0).all()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_out_in_place_on_integer_input_is_refused(name, impl):
    x = np.arange(6).reshape(2, 3)
    with pytest.raises(TypeError, match="out"):
        getattr(impl, name)(x, out=x)
    np.testing.assert_array_equal(x, np.arange(6).reshape(2, 3))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_out_read_only(dtype, name, impl):
    x = normal((4, 5), dtype)
    out = np.zeros((4, 5), dtype=dtype)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        getattr(impl, name)(x, out=out)
    with pytest.raises(ValueError, match="out"):
        getattr(impl, name)(x, 0, out=out)
    x.flags.writeable = False
    with pytest.raises(ValueError, match="out"):  # in place on a read-only array
        getattr(impl, name)(x, out=x)
    assert (out == 0).all()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_out_not_an_ndarray(name, impl):
    x = normal((2, 3))
    for out in ([[0.0] * 3] * 2, (0.0,) * 6, 0.0, "out", memoryview(np.zeros((2, 3)))):
        with pytest.raises(TypeError, match="out"):
            getattr(impl, name)(x, out=out)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_refused_out_messages_match_reference(name):
    x = normal((4, 5))
    read_only = np.zeros((4, 5))
    read_only.flags.writeable = False
    for out in (np.empty((5, 4)), np.empty((4, 5), np.float32), read_only, [0.0]):
        with pytest.raises((TypeError, ValueError)) as fast_error:
            fast(name)(x, out=out)
        with pytest.raises((TypeError, ValueError)) as ref_error:
            ref(name)(x, out=out)
        assert type(fast_error.value) is type(ref_error.value)
        assert str(fast_error.value) == str(ref_error.value)


# --- the input is never modified unless it is out -------------------------------

@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", [((2, 3, 4), None), ((2, 3, 4), (0, 1, 2)),
                                        ((2, 3, 4), (1, 2)), ((2, 3, 4), (-1, -2)),
                                        ((3, 4), (0, 1)), ((3, 4), None)])
def test_input_unchanged_with_fortran_out_and_trailing_axes(shape, axis, name, variant):
    """x C-contiguous, its trailing axes reduced, out in Fortran order."""
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 7
    before = x.copy()
    out = np.empty(shape, order="F")
    fast(name)(x, axis, out=out)
    assert_result_accurate(name, out, before, axis)
    np.testing.assert_array_equal(x, before)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", [((2, 3, 4), (0, 1)), ((2, 3, 4), (0, 2)),
                                        ((3, 4), 0), ((3, 4), -1)])
def test_input_unchanged_with_fortran_out_other_axes(shape, axis, name, variant):
    """The same with reduced axes that are not the trailing ones: unaffected."""
    x = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 7
    out = np.empty(shape, order="F")
    call_unmodified(fast(name), x, axis, out=out)
    assert_result_accurate(name, out, x, axis)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_read_only_input_not_written(name, variant):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    x.flags.writeable = False
    fast(name)(x, None, out=np.empty((2, 2), order="F"))
    np.testing.assert_array_equal(x, [[1.0, 2.0], [3.0, 4.0]])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_input_in_immutable_bytes_not_written(name, variant):
    # a fresh (not interned) bytes object: writing into it harms nothing else
    raw = np.array([[1.0, 2.0], [3.0, 4.0]]).tobytes()
    x = np.frombuffer(raw, dtype=np.float64).reshape(2, 2)
    fast(name)(x, None, out=np.empty((2, 2), order="F"))
    assert np.frombuffer(raw, dtype=np.float64).tolist() == [1.0, 2.0, 3.0, 4.0]


_READ_ONLY_MEMMAP_PROBE = """
import sys
import numpy as np, fastsoftmax
path = sys.argv[1]
np.array([[1.0, 2.0], [3.0, 4.0]]).tofile(path)
mm = np.memmap(path, dtype=np.float64, mode="r", shape=(2, 2))
out = np.empty((2, 2), order="F")
fastsoftmax.{name}(mm, None, out=out)
assert np.fromfile(path).tolist() == [1.0, 2.0, 3.0, 4.0]
print("ok")
"""


@pytest.mark.parametrize("name", FUNCTIONS)
def test_read_only_memmap_with_fortran_out(tmp_path, name):
    import subprocess
    import sys
    proc = subprocess.run([sys.executable, "-c", _READ_ONLY_MEMMAP_PROBE.format(name=name),
                           str(tmp_path / "x.dat")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", (proc.returncode, proc.stderr)
