"""Input types: float16, bool and integers, long double, lists, Python
scalars, 0-d arrays, memmaps, read-only, non-native byte order and
unaligned arrays; refused dtypes."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import reference
from util import (FUNCTIONS, assert_correct, assert_matches_reference,
                  call_unmodified, fast, ref)

IMPLEMENTATIONS = [fastsoftmax, reference]
IMPL_IDS = ["fastsoftmax", "reference"]


def normal(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, None, (0, 2)])
def test_float16_computed_in_float32(axis, name, variant):
    x = (normal((6, 7, 40)) * 3).astype(np.float16)
    got = assert_matches_reference(name, x, axis)
    assert got.dtype == np.float16
    # the float32 result of the same values, rounded to float16
    expected = fast(name)(x.astype(np.float32), axis).astype(np.float16)
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_float16_out(name, variant):
    x = normal((5, 33)).astype(np.float16)
    out = np.empty_like(x)
    assert fast(name)(x, out=out) is out
    np.testing.assert_array_equal(out, fast(name)(x))
    with pytest.raises(TypeError, match="out"):
        fast(name)(x, out=np.empty(x.shape, np.float64))


INT_DTYPES = [np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64,
              np.uint64]


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_bool_and_integers_give_float64(axis, dtype, name, variant):
    rng = np.random.default_rng(1)
    if dtype == np.bool_:
        x = rng.integers(0, 2, (9, 70)).astype(bool)
    else:
        info = np.iinfo(dtype)
        x = rng.integers(max(info.min, -20), min(info.max, 20), (9, 70), endpoint=True).astype(dtype)
    got = assert_matches_reference(name, x, axis)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, fast(name)(x.astype(np.float64), axis))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_extreme_integers(name, variant):
    for dtype in (np.int64, np.uint64):
        info = np.iinfo(dtype)
        x = np.array([[info.min, info.max], [info.max, info.max]], dtype=dtype)
        got = assert_matches_reference(name, x)
        np.testing.assert_array_equal(got, fast(name)(x.astype(np.float64)))


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_long_double_computed_by_numpy(axis, name, variant):
    x = normal((5, 40)).astype(np.longdouble) * 5
    got = call_unmodified(fast(name), x, axis)
    assert got.dtype == np.longdouble
    np.testing.assert_array_equal(got, ref(name)(x, axis))
    out = np.empty_like(x)
    assert fast(name)(x, axis, out=out) is out
    np.testing.assert_array_equal(out, got)
    with pytest.raises(TypeError, match="out"):
        fast(name)(x, axis, out=np.empty(x.shape))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_lists(name, variant):
    nested = [[1.0, 2.0, 3.0], [0.5, -1.0, 7.0]]
    got = assert_matches_reference(name, nested)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, fast(name)(np.array(nested)))
    ints = [[1, 2, 3], [4, 5, 6]]
    np.testing.assert_array_equal(assert_matches_reference(name, ints, 0),
                                  fast(name)(np.array(ints, dtype=np.float64), 0))
    assert assert_matches_reference(name, []).shape == (0,)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("value", [2.5, -7, True, np.float32(3.0), np.float64(-1e300), np.int8(4)])
def test_python_and_numpy_scalars(value, name, variant):
    got = assert_matches_reference(name, value)
    assert got.shape == ()
    assert got == (1.0 if name == "softmax" else 0.0)
    expected_dtype = np.float32 if isinstance(value, np.float32) else np.float64
    assert got.dtype == expected_dtype


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("mode", ["r", "r+", "c"])
def test_memmap(tmp_path, mode, name, variant):
    path = tmp_path / "x.dat"
    data = normal((30, 50)).astype(np.float32)
    data.tofile(path)
    mm = np.memmap(path, dtype=np.float32, mode=mode, shape=(30, 50))
    for axis in (-1, 0, None):
        got = assert_correct(name, mm, axis)
        assert type(got) is np.ndarray
        np.testing.assert_array_equal(got, fast(name)(data, axis))
    assert np.array_equal(np.fromfile(path, dtype=np.float32).reshape(30, 50), data)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_memmap_as_out(tmp_path, name, variant):
    path = tmp_path / "x.dat"
    data = normal((30, 50))
    data.tofile(path)
    mm = np.memmap(path, dtype=np.float64, mode="r+", shape=(30, 50))
    assert fast(name)(mm, out=mm) is mm
    mm.flush()
    np.testing.assert_array_equal(np.fromfile(path).reshape(30, 50), fast(name)(data))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_read_only(dtype, name, variant):
    x = normal((20, 300)).astype(dtype)
    x.flags.writeable = False
    for axis in (-1, 0, None, (0, 1)):
        got = assert_correct(name, x, axis)
        assert got.flags.writeable


@pytest.mark.parametrize("dtype", [">f8", ">f4", "<f8", "<f4", ">f2", ">i4", ">u2"])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_byte_order(dtype, name, variant):
    native = normal((7, 45)) * 4
    if np.dtype(dtype).kind in "iu":
        native = np.abs(native).round()
    x = native.astype(dtype)
    for axis in (-1, 0, None):
        got = assert_matches_reference(name, x, axis)
        assert got.dtype.isnative
        np.testing.assert_array_equal(got, fast(name)(x.astype(x.dtype.newbyteorder("=")), axis))


def unaligned(values, dtype, writeable):
    """An array of `values` whose data pointer is not aligned for `dtype`."""
    itemsize = np.dtype(dtype).itemsize
    raw = np.asarray(values, dtype=dtype).tobytes()
    buf = bytearray(1 + len(raw)) if writeable else b"\0" + raw
    if writeable:
        buf[1:] = raw
    x = np.frombuffer(buf, dtype=dtype, offset=1, count=len(raw) // itemsize)
    x = x.reshape(np.shape(values))
    assert not x.flags.aligned
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("writeable", [False, True])
@pytest.mark.parametrize("name", FUNCTIONS)
def test_unaligned(writeable, dtype, name, variant):
    values = normal((9, 40)).astype(dtype)
    x = unaligned(values, dtype, writeable)
    assert x.flags.writeable == writeable
    for axis in (-1, 0, None):
        got = assert_correct(name, x, axis)
        np.testing.assert_array_equal(got, fast(name)(values, axis))


@pytest.mark.parametrize("name", FUNCTIONS)
def test_unaligned_out(name, variant):
    x = normal((9, 40))
    out = unaligned(np.zeros((9, 40)), np.float64, writeable=True)
    assert fast(name)(x, out=out) is out
    np.testing.assert_array_equal(out, fast(name)(x))
    assert fast(name)(out, out=out) is out  # in place on an unaligned array
    np.testing.assert_array_equal(out, fast(name)(fast(name)(x)))


# complex input is computed (by NumPy), see test_weighted_logsumexp.py
REFUSED = {
    "object": np.array([1.0, 2.0], dtype=object),
    "str": np.array(["a", "b"]),
    "bytes": np.array([b"a", b"b"]),
    "datetime": np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
    "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
    "void": np.zeros(2, dtype=[("a", "f8")]),
    "string_list": ["a", "b"],
}


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", list(REFUSED))
def test_refused_dtypes(case, name, impl):
    with pytest.raises(TypeError, match=r"\bx\b"):
        getattr(impl, name)(REFUSED[case])


@pytest.mark.parametrize("name", FUNCTIONS)
def test_refused_dtype_messages_match_reference(name):
    for case, x in REFUSED.items():
        with pytest.raises(TypeError) as fast_error:
            fast(name)(x)
        with pytest.raises(TypeError) as ref_error:
            ref(name)(x)
        assert str(fast_error.value) == str(ref_error.value), case
