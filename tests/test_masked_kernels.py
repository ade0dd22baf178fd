"""where= on short rows, long rows and over a non-last axis.  Contiguous
short rows run the masked short-row kernels, which read the mask as they
transpose x into lanes; other short rows are staged first (x with its
masked-out entries -inf) and run by the plain short-row kernel; a row is
staged in the scratch, or beyond it in its output and run there in place
(softmax rows in the table form read the mask beside x on AVX-512
instead, staging nothing); a masked
tile of lanes, the mask contiguous along them, is staged in the output by the
masked column kernels' max pass, and any other by a lane kernel before the
plain column kernel runs.  Each must give
the plain kernel's bits on the staged input, drop a NaN group's masked-out
entries, and agree with `fastsoftmax.reference`, on every variant."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from util import FLOAT_DTYPES, bound_eps, tolerances

SHORT_ROW_MAX_BYTES = _core._plan_thresholds()["short_row_max_bytes"]
ROWS = 64 + 13  # a whole block of rows and a partial one
OPS = ["softmax", "log_softmax"]
DROPPED = {"softmax": 0.0, "log_softmax": -np.inf}


def plan(op, x, axis, mask):
    return _core._plan_info(_core.OPS[op], x, (axis % x.ndim,), np.empty_like(x), None, mask, None, None, False, 1)


def logits_and_mask(rng, dtype, shape, axis=-1):
    """Logits with special values in some groups (along `axis`) and a random
    mask: a kept NaN, a masked-out NaN and +inf, a kept +inf, a group all
    masked out, one all -inf, finfo.min and finfo.max, a group with one kept
    entry."""
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    mask = rng.random(shape) < 0.7
    g = np.moveaxis(x, axis, -1)  # views: group k is g[k]
    m = np.moveaxis(mask, axis, -1)
    info = np.finfo(dtype)
    g[1, 0], m[1, 0] = np.nan, True
    g[2, 0], m[2, 0] = np.nan, False
    g[2, -1], m[2, -1] = np.inf, False
    g[3, -1], m[3, -1] = np.inf, True
    m[4] = False
    g[5] = -np.inf
    g[6, ::2], g[6, -1], m[6] = info.min, info.max, True
    g[7], m[7] = info.min, True
    m[8], m[8, -1] = False, True
    return x, mask


def staged(x, mask):
    """x with its masked-out entries -inf: what the plain kernels run on."""
    return np.where(mask, x, np.array(-np.inf, x.dtype))


def assert_masked_result(op, got, x, mask, axis):
    """got is the plain kernel's result on the staged x in every group that
    is not NaN; a NaN group has NaN where the mask keeps, DROPPED elsewhere;
    and got agrees with the reference (in extended precision) within the
    documented bound."""
    plain = getattr(fastsoftmax, op)(staged(x, mask), axis)
    nan_group = np.isnan(plain).any(axis=axis, keepdims=True) & np.ones_like(mask)
    np.testing.assert_array_equal(got[~nan_group], plain[~nan_group])
    np.testing.assert_array_equal(got[nan_group & ~mask], DROPPED[op])
    assert np.isnan(got[nan_group & mask]).all()
    with np.errstate(over="ignore"):  # log_softmax beyond the float range: -inf, as computed
        expected = getattr(reference, op)(x.astype(np.longdouble), axis, where=mask).astype(x.dtype)
    rtol, atol = tolerances(op, expected, x.dtype, bound_eps(op))
    np.testing.assert_allclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_masked_short_rows(dtype, op, variant):
    rng = np.random.default_rng(5)
    fn = getattr(fastsoftmax, op)
    for n in range(1, SHORT_ROW_MAX_BYTES // np.dtype(dtype).itemsize + 1):
        x, mask = logits_and_mask(rng, dtype, (ROWS, n))
        if n == 1:  # no room for the special rows' second entries: simpler ones
            x, mask = (rng.standard_normal((ROWS, 1)) * 3).astype(dtype), rng.random((ROWS, 1)) < 0.7
        assert plan(op, x, -1, mask) == ("short_rows", 1)
        got = fn(x, where=mask)
        assert_masked_result(op, got, x, mask, -1)
        # strided rows are staged and run by the plain short-row kernel: the same bits
        wide = np.zeros((ROWS, 2 * n), dtype)
        wide[:, ::2] = x
        np.testing.assert_array_equal(fn(wide[:, ::2], where=mask), got, err_msg=f"n={n}")
        # in place
        inplace = x.copy()
        assert fn(inplace, out=inplace, where=mask) is inplace
        np.testing.assert_array_equal(inplace, got, err_msg=f"n={n}")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_masked_rows(dtype, op, variant):
    """Rows of the rows plan: staged in the scratch, or beyond it (256 KiB) in
    the output and run there in place; softmax on AVX-512 reads the mask
    beside x instead where the row takes the table form.  The staged input's
    bits every way."""
    rng = np.random.default_rng(8)
    fn = getattr(fastsoftmax, op)
    for n in (1000, 5003, (300 << 10) // np.dtype(dtype).itemsize):
        x, mask = logits_and_mask(rng, dtype, (12, n))
        x[10] += 5000  # a maximum beyond the no-subtraction range
        x[11, :2], mask[11, :2] = 30.0, [False, True]  # a masked-out entry above the kept maximum
        assert plan(op, x, -1, mask) == ("rows", 1)
        got = fn(x, where=mask, num_threads=1)
        assert_masked_result(op, got, x, mask, -1)
        inplace = x.copy()
        assert fn(inplace, out=inplace, where=mask, num_threads=1) is inplace
        np.testing.assert_array_equal(inplace, got, err_msg=f"n={n}")


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_masked_columns(dtype, op, variant, num_threads):
    rng = np.random.default_rng(6)
    fn = getattr(fastsoftmax, op)
    for shape in [(9, 13), (40, 70), (300, 64)]:
        x, mask = logits_and_mask(rng, dtype, shape, axis=0)
        assert plan(op, x, 0, mask)[0] == "cols"
        got = fn(x, 0, where=mask, num_threads=num_threads)
        assert_masked_result(op, got, x, mask, 0)
        # a mask not contiguous along the lanes is staged element by element: the same bits
        np.testing.assert_array_equal(fn(x, 0, where=np.asfortranarray(mask), num_threads=num_threads), got)
        # in place: the max pass stages x over itself
        inplace = x.copy()
        assert fn(inplace, 0, out=inplace, where=mask, num_threads=num_threads) is inplace
        np.testing.assert_array_equal(inplace, got)
        # an output in another memory order: computed in a scratch tile and scattered
        other = np.empty(shape, dtype, order="F")
        fn(x, 0, out=other, where=mask, num_threads=num_threads)
        np.testing.assert_array_equal(other, got)


def test_masked_columns_beyond_l2_are_not_split_across_threads():
    """A masked tile is staged first, a pass bound by memory once it leaves
    L2: one tile of such lanes runs on one thread (never slower than one);
    a tile within L2 is still narrowed so that two threads share it."""
    big = np.zeros((32000, 64), np.float32)
    assert plan("softmax", big, 0, np.ones(big.shape, bool))[0] == "cols"
    threads = _core._plan_info(_core.OPS["softmax"], big, (0,), np.empty_like(big), None, np.ones(big.shape, bool),
                               None, None, False, 2)
    assert threads == ("cols", 1)
    assert _core._plan_info(_core.OPS["softmax"], big, (0,), np.empty_like(big), threads=2) == ("cols", 2)
    small = np.zeros((1000, 64), np.float32)
    assert _core._plan_info(_core.OPS["log_softmax"], small, (0,), np.empty_like(small), None,
                            np.ones(small.shape, bool), None, None, False, 2) == ("cols", 2)
