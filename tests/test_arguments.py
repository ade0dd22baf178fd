"""Bad axis and num_threads arguments: the same errors from fastsoftmax and
from fastsoftmax.reference, on the C fast path (a float64 ndarray, one int
axis) and on the general path (a list)."""
import numpy as np
import pytest
from numpy.exceptions import AxisError

import fastsoftmax
from fastsoftmax import reference
from util import FUNCTIONS, fast

IMPLEMENTATIONS = [fastsoftmax, reference]
IMPL_IDS = ["fastsoftmax", "reference"]


def inputs():
    """A float64 ndarray (fast path), a float32 Fortran array, and a list."""
    x = np.arange(12, dtype=np.float64).reshape(3, 4) / 5
    return [x, np.asfortranarray(x, dtype=np.float32), x.tolist()]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [2, -3, 10**30, -10**30, (0, 2), (-3,), (1, 5), np.int64(7)])
def test_axis_out_of_range(axis, name, impl):
    for x in inputs():
        with pytest.raises(AxisError):
            getattr(impl, name)(x, axis)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [1, -2, (0, 1)])
def test_axis_out_of_range_for_zero_d(axis, name, impl):
    """A 0-d input has one axis of length 1: only 0 / -1 name it."""
    with pytest.raises(AxisError):
        getattr(impl, name)(np.float64(1.0), axis)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [1.0, 0.5, "0", "x", True, False, np.bool_(True), (0, 1.0),
                                  (True,), (None,), b"0", 1j])
def test_axis_wrong_type(axis, name, impl):
    for x in inputs():
        with pytest.raises(TypeError):
            getattr(impl, name)(x, axis)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [(0, 0), (1, -1), (0, 1, 0), (-2, 0)])
def test_axis_repeated(axis, name, impl):
    for x in inputs():
        with pytest.raises(ValueError):
            getattr(impl, name)(x, axis)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("num_threads", [0, -1, -(2**70), 1.5, 2.0, "2", True, False,
                                         np.bool_(True), np.int64(0), [2], 1j])
def test_bad_num_threads(num_threads, name, impl):
    for x in inputs():
        with pytest.raises(ValueError, match="num_threads"):
            getattr(impl, name)(x, num_threads=num_threads)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("num_threads", [None, 1, 2, 3, 10**9, 2**31, 2**100, np.int32(2),
                                         np.uint64(4)])
def test_valid_num_threads(num_threads, name, impl):
    for x in inputs() + [np.random.default_rng(0).standard_normal((64, 1000))]:
        got = getattr(impl, name)(x, num_threads=num_threads)
        np.testing.assert_array_equal(got, getattr(impl, name)(x))


def _error(fn, *args, **kwargs):
    with pytest.raises(Exception) as info:
        fn(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("kwargs", [{"axis": 2}, {"axis": -3}, {"axis": 1.0}, {"axis": "0"},
                                    {"axis": True}, {"axis": (0, 0)}, {"axis": (0, 5)},
                                    {"num_threads": 0}, {"num_threads": 1.5},
                                    {"num_threads": "2"}, {"num_threads": True}])
def test_errors_identical_to_reference(kwargs, name):
    for x in inputs():
        assert _error(fast(name), x, **kwargs) == _error(getattr(reference, name), x, **kwargs)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_bad_arguments_leave_out_untouched(name, impl):
    x = np.ones((3, 4))
    out = np.zeros((3, 4))
    for kwargs in ({"axis": 5}, {"axis": "0"}, {"num_threads": 0}, {"axis": (1, 1)}):
        with pytest.raises((ValueError, TypeError)):
            getattr(impl, name)(x, out=out, **kwargs)
        assert (out == 0).all()


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", FUNCTIONS)
def test_keyword_only_and_positional(name, impl):
    fn = getattr(impl, name)
    x = np.arange(6.0).reshape(2, 3)
    np.testing.assert_array_equal(fn(x, 0), fn(x, axis=0))
    np.testing.assert_array_equal(fn(x=x), fn(x))
    with pytest.raises(TypeError):
        fn(x, 0, np.empty((2, 3)))  # out is keyword-only
    with pytest.raises(TypeError):
        fn(x, bogus=1)
