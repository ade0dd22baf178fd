"""cross_entropy on rows that do not take the short-row plan: the row kernel
(rows beyond FSM_ROW_GROUP_MAX_BYTES, and strided rows), the row-group
kernel (contiguous rows of one sum block, their log and gradient total
taken across the rows) and split rows (a few long rows, several threads).
Each agrees with `fastsoftmax.reference` on every variant, special values
included; the loss does not depend on whether the gradient is asked for;
the row-group kernel and split rows give the row kernel's bits."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from util import FLOAT_DTYPES, cross_entropy_targets, logits_with_specials

ROWS = 8 + 5  # a whole row group and a partial one; fewer than a short-row block
MIN_ELEMENTS_PER_THREAD = _core._plan_thresholds()["min_elements_per_thread"]
SPLIT_N = 2 * MIN_ELEMENTS_PER_THREAD + 77  # a row split across threads, with a partial sum block
ROW_LENGTHS = (1, 2, 100, 128, 256, 257, 1000, 3000)  # one block (row groups), several, odd tails


def plan(x, kind, threads):
    """The plan cross_entropy runs for x (with a gradient) over its last axis."""
    b = np.empty_like(x) if kind == "probs" else None
    target = None if kind == "probs" else np.zeros(x.shape[:-1] + (1,), np.int64)
    return _core._plan_info(_core.OPS["cross_entropy"], x, (1,), np.empty_like(x), b, None, target,
                            np.empty(x.shape[:-1] + (1,)), False, threads)[0]


def strided(a):
    """a with the same values, every other element of a wider array along
    the last axis (rows one at a time through the row kernel)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def inputs(dtype, kind, n):
    rng = np.random.default_rng(n)
    return logits_with_specials(rng, dtype, ROWS, n), cross_entropy_targets(rng, kind, dtype, ROWS, n)


def calls(dtype, kind):
    """(x, t) of every row length; the long rows a few at a time, so that
    two threads split them."""
    for n in ROW_LENGTHS:
        yield inputs(dtype, kind, n)
    x, t = inputs(dtype, kind, SPLIT_N)
    for rows in (slice(0, 5), slice(5, 10), slice(10, ROWS)):
        yield x[rows], t[rows]


def assert_agrees_with_reference(x, t, dtype, **options):
    eps = np.finfo(dtype).eps
    loss, grad = fastsoftmax.cross_entropy(x, t, return_grad=True, **options)
    # in long double: the loss of a confident row cancels in the dtype
    exact_loss, exact_grad = reference.cross_entropy(x.astype(np.longdouble), t, return_grad=True, **options)
    np.testing.assert_allclose(loss, exact_loss.astype(dtype), rtol=4 * eps, atol=eps)
    np.testing.assert_allclose(grad, exact_grad.astype(dtype), rtol=0, atol=4 * eps)


@pytest.mark.parametrize("smoothing", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_rows_agree_with_the_reference(dtype, kind, smoothing, variant, num_threads):
    for n in ROW_LENGTHS:
        x, t = inputs(dtype, kind, n)
        for layout in (x, strided(x)):
            assert plan(layout, kind, num_threads) == "rows"
            assert_agrees_with_reference(layout, t if kind == "index" else t.copy(), dtype, reduction="none",
                                         label_smoothing=smoothing, num_threads=num_threads)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_every_reduction_agrees_with_the_reference(dtype, kind, reduction, variant):
    for n in (128, 1000):
        rng = np.random.default_rng(n)
        x = (rng.standard_normal((ROWS, n)) * 3).astype(dtype)
        t = cross_entropy_targets(rng, kind, dtype, ROWS, n)
        assert_agrees_with_reference(x, t, dtype, reduction=reduction, label_smoothing=0.1)


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_split_rows_agree_with_the_reference(dtype, kind, variant):
    for x, t in list(calls(dtype, kind))[len(ROW_LENGTHS):]:
        assert plan(x, kind, 2) == "split_row"
        for smoothing in (0.0, 0.3):
            assert_agrees_with_reference(x, t, dtype, reduction="none", label_smoothing=smoothing, num_threads=2)


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_the_loss_is_the_same_with_and_without_the_gradient(dtype, kind, variant):
    for x, t in calls(dtype, kind):
        n = x.shape[-1]
        for threads in (1, 2):
            options = dict(reduction="none", label_smoothing=0.1, num_threads=threads)
            np.testing.assert_array_equal(fastsoftmax.cross_entropy(x, t, **options),
                                          fastsoftmax.cross_entropy(x, t, return_grad=True, **options)[0],
                                          err_msg=f"n={n}, {threads} threads")


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_row_groups_and_split_rows_give_the_row_kernels_bits(dtype, kind, variant):
    for x, t in calls(dtype, kind):
        n = x.shape[-1]
        strided_t = t if kind == "index" else strided(t)
        for smoothing in (0.0, 0.3):
            options = dict(reduction="none", label_smoothing=smoothing, return_grad=True)
            loss, grad = fastsoftmax.cross_entropy(strided(x), strided_t, num_threads=1, **options)
            for threads in (1, 2, 3):
                got_loss, got_grad = fastsoftmax.cross_entropy(x, t, num_threads=threads, **options)
                np.testing.assert_array_equal(got_loss, loss, err_msg=f"n={n}, {threads} threads")
                np.testing.assert_array_equal(got_grad, grad, err_msg=f"n={n}, {threads} threads")


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_a_lone_maximum_has_probability_one(dtype, variant):
    # every other logit -inf, or so far below that its exp flushes to 0:
    # softmax is one-hot, the loss 0 and the gradient 0 within a rounding
    # of the maximum's probability (its exp times 1 / total)
    for n in (5, 128, 1000, SPLIT_N):
        x = np.full((2, n), -np.inf, dtype)
        x[1] = -1e4
        x[:, 3] = 1.5
        for threads in (1, 2):
            loss, grad = fastsoftmax.cross_entropy(x, np.array([3, 3]), reduction="none", return_grad=True,
                                                   num_threads=threads)
            np.testing.assert_array_equal(loss, 0)
            np.testing.assert_allclose(grad, 0, rtol=0, atol=np.finfo(dtype).eps / 2,
                                       err_msg=f"n={n}, {threads} threads")
