"""logsumexp, plain and weighted (b=), on each of its plans: short rows
(contiguous rows transposed into lanes by tiles, strided ones gathered),
the row-group kernels (the per-row factor and log across the rows) and
the split of a weighted long row across threads.  Each plan is asserted,
each path is held bit for bit against the one it stands in for (gathered
rows, single rows, one thread), and every one against the NumPy reference
on every variant, special values included."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from util import FLOAT_DTYPES, eps

THRESHOLDS = _core._plan_thresholds()
LONG_ROW = 2 * THRESHOLDS["min_elements_per_thread"] + 300  # two chunks, the last sum block short


def _plan(x, axis, b=None, threads=1):
    axes = (axis % x.ndim,)
    group = np.empty(tuple(1 if d in axes else s for d, s in enumerate(x.shape)))
    sign = None if b is None else np.empty_like(group)
    return _core._plan_info(_core.OPS["logsumexp"], x, axes, None, b, None, None, group, False, threads, sign)[0]


def _special_rows(shape, dtype, rng):
    """x and mixed-sign weights of `shape` with a special case in each of its
    first rows (the others random)."""
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    w = (rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)).astype(dtype)
    info = np.finfo(dtype)
    n = shape[-1]
    cases = [
        (0, np.nan, 1.0), (1, np.inf, 1.0), (2, -np.inf, 1.0), (3, info.max, 1.0), (4, info.min, 1.0),
        (5, np.inf, 0.0),   # +inf without weight takes no part
        (6, np.nan, 0.0),   # nor does NaN
        (7, 50.0, 0.0),     # the maximum without weight: the careful way
    ]
    for row, value, weight in cases:
        x[row, n // 2] = value
        w[row, n // 2] = weight
    x[8] = -np.inf          # an empty sum
    w[9] = 0                # no weight at all
    w[10] = np.abs(w[10])   # positive weights
    x[11] = 1.0             # ties only: with weights summing to about 0
    w[11, : n - n % 2] = np.tile(np.array([1, -1], dtype), n // 2)
    return x, w


def _strided(a):
    """a's values in a layout whose groups are not contiguous."""
    wide = np.empty(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def _results(x, w, **kwargs):
    return fastsoftmax.logsumexp(x, b=w, return_sign=w is not None, **kwargs)


def _assert_same_bits(got, expected, label):
    for g, e in zip(*(r if isinstance(r, tuple) else (r,) for r in (got, expected))):
        np.testing.assert_array_equal(g, e, err_msg=label)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_plans(dtype):
    short = np.zeros((300, 10), dtype)
    assert _plan(short, -1) == "short_rows"
    assert _plan(short, -1, b=short) == "short_rows"
    assert _plan(np.zeros((300, 1), dtype), -1) == "short_rows"
    assert _plan(np.zeros((37, 100), dtype), -1) == "rows"
    assert _plan(np.zeros((37, 100), dtype), -1, b=np.zeros((37, 100), dtype)) == "rows"


def test_weighted_long_rows_split_across_threads():
    if fastsoftmax.get_config()["usable_cpus"] < 2 or not fastsoftmax.get_config()["openmp"]:
        pytest.skip("needs two usable CPUs")
    x = np.zeros((1, LONG_ROW))
    assert _plan(x, -1, b=x, threads=2) == "split_row"
    assert _plan(x, -1, b=x, threads=1) == "rows"


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [1, 3, 10, 17])
def test_short_rows_are_bit_identical_to_gathered_rows(n, dtype, weighted, variant):
    """Contiguous short rows are transposed into lanes by tiles; strided ones
    are gathered element by element: the lane kernel gives the same bits,
    in full and partial blocks of rows."""
    x, w = _special_rows((150, max(n, 2)), dtype, np.random.default_rng(n))
    x, w = x[:, :n], (w[:, :n] if weighted else None)
    expected = _results(_strided(x), None if w is None else _strided(w))
    _assert_same_bits(_results(x, w), expected, "contiguous")
    _assert_same_bits(_results(x, None if w is None else _strided(w)), expected, "x contiguous, b strided")
    if weighted:  # one row of weights for every row: the lane kernel, weights transposed once
        row = np.broadcast_to(w[10], x.shape)
        _assert_same_bits(_results(x, row), _results(_strided(x), _strided(np.ascontiguousarray(row))),
                          "broadcast weights")


@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("n", [100, 256, 300])
def test_row_group_kernel_is_bit_identical_to_single_rows(n, dtype, weighted, variant):
    """Contiguous rows of up to 1 KiB run the row-group kernel (one sum block
    or more); strided rows are staged and run by the row kernel alone."""
    x, w = _special_rows((37, n), dtype, np.random.default_rng(n))
    w = w if weighted else None
    expected = _results(_strided(x), None if w is None else _strided(w))
    _assert_same_bits(_results(x, w), expected, "row groups")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_weighted_split_is_bit_identical_to_one_thread(dtype, variant):
    """Special values in either chunk of a long row, float32 weights whose
    terms overflow float, and rows that take the careful way."""
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((6, LONG_ROW)) * 3).astype(dtype)
    w = (rng.uniform(0.5, 1.5, x.shape) * rng.choice([-1, 1], x.shape)).astype(dtype)
    x[0, 10] = np.nan                                   # first chunk
    x[1, -3], w[1, -3] = np.inf, 0.0                    # +inf without weight, last chunk
    w[2, np.argmax(x[2])] = 0.0                         # the maximum without weight
    w[3] = np.abs(w[3]) * (np.finfo(dtype).max / 2)     # terms beyond the float range
    x[4, : LONG_ROW // 2] = -np.inf                     # the first chunk empty
    w[5] = np.abs(w[5])
    for return_sign in (True, False):
        one = fastsoftmax.logsumexp(x, b=w, return_sign=return_sign, num_threads=1)
        two = fastsoftmax.logsumexp(x, b=w, return_sign=return_sign, num_threads=2)
        _assert_same_bits(two, one, f"return_sign={return_sign}")
        _assert_same_bits(fastsoftmax.logsumexp(x[:, ::-1], b=w[:, ::-1], return_sign=return_sign, num_threads=2),
                          fastsoftmax.logsumexp(x[:, ::-1], b=w[:, ::-1], return_sign=return_sign, num_threads=1),
                          "reversed")


LAYOUTS = {
    "short rows": ((150, 10), -1, lambda a: a),
    "gathered short rows": ((150, 10), -1, _strided),
    "rows of one": ((150, 1), -1, lambda a: a),
    "row groups": ((37, 100), -1, lambda a: a),
    "rows": ((37, 300), -1, lambda a: a),
    "columns": ((37, 100), 0, lambda a: np.ascontiguousarray(a.T)),
}


@pytest.mark.parametrize("return_sign", [False, True])
@pytest.mark.parametrize("weighted", [False, True], ids=["plain", "weighted"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_against_the_reference(layout, dtype, weighted, return_sign, variant, num_threads):
    shape, axis, arrange = LAYOUTS[layout]
    x, w = _special_rows((shape[0], max(shape[1], 2)), dtype, np.random.default_rng(7))
    x, w = arrange(x[:, : shape[1]]), (arrange(w[:, : shape[1]]) if weighted else None)
    got = fastsoftmax.logsumexp(x, axis, b=w, return_sign=return_sign, num_threads=num_threads)
    with np.errstate(all="ignore"):
        expected = reference.logsumexp(x, axis, b=w, return_sign=return_sign)
        # cancellation of mixed signs is the caller's: the bound is relative to the sum of |terms|
        magnitude = reference.logsumexp(x, axis, b=None if w is None else np.abs(w))
    got, expected = (got, expected) if return_sign else ((got,), (expected,))
    tol = 16 * eps(dtype) * np.maximum(1.0, np.abs(magnitude))
    cancelled = np.isfinite(magnitude) & (expected[0] < magnitude - 4)  # more than e^4 of the terms cancel
    for g, e in zip(got, expected):
        assert g.dtype == dtype
        with np.errstate(invalid="ignore"):
            close = (g == e) | (np.isnan(g) & np.isnan(e)) | (np.abs(g.astype(float) - e) <= tol)
        assert np.all(close | cancelled), layout
