"""cross_entropy on short rows: contiguous rows run the cross-entropy
short-row kernel (the gradient written from the lanes straight into the
rows), strided ones the lane kernel on gathered lanes.  Both must give the
same bits, and agree with `fastsoftmax.reference`, on every variant."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from util import FLOAT_DTYPES, cross_entropy_targets, logits_with_specials

SHORT_ROW_MAX_BYTES = _core._plan_thresholds()["short_row_max_bytes"]
ROWS = 64 + 13  # a whole block of rows and a partial one


def short_plan(x, probs):
    """The plan cross_entropy runs for x (with a gradient) over its last axis."""
    b = np.empty_like(x) if probs else None
    target = None if probs else np.zeros(x.shape[:-1] + (1,), np.int64)
    return _core._plan_info(_core.OPS["cross_entropy"], x, (1,), np.empty_like(x), b, None, target,
                            np.empty(x.shape[:-1] + (1,)), False, 1)[0]


def strided_copy(a):
    """a with the same values, every other element of a wider array along
    the last axis (not contiguous)."""
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_short_rows_are_bit_identical_to_the_lane_kernel(dtype, kind, smoothing, variant):
    rng = np.random.default_rng(21)
    for n in range(1, SHORT_ROW_MAX_BYTES // np.dtype(dtype).itemsize + 1):
        x = logits_with_specials(rng, dtype, ROWS, n)
        t = cross_entropy_targets(rng, kind, dtype, ROWS, n)
        assert short_plan(x, kind == "probs") == "short_rows"
        strided_x = strided_copy(x)
        strided_t = t if kind == "index" else strided_copy(t)
        options = dict(reduction="none", label_smoothing=smoothing)
        loss, grad = fastsoftmax.cross_entropy(x, t, return_grad=True, **options)
        lane_loss, lane_grad = fastsoftmax.cross_entropy(strided_x, strided_t, return_grad=True, **options)
        np.testing.assert_array_equal(loss, lane_loss, err_msg=f"n={n}")
        np.testing.assert_array_equal(grad, lane_grad, err_msg=f"n={n}")
        np.testing.assert_array_equal(fastsoftmax.cross_entropy(x, t, **options), loss, err_msg=f"n={n}")


@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_short_rows_agree_with_the_reference(dtype, kind, variant, num_threads):
    rng = np.random.default_rng(22)
    eps = np.finfo(dtype).eps
    for n in (1, 3, 8, 10, 17, SHORT_ROW_MAX_BYTES // np.dtype(dtype).itemsize):
        x = logits_with_specials(rng, dtype, 1000 + 7, n)
        t = cross_entropy_targets(rng, kind, dtype, 1000 + 7, n)
        for smoothing in (0.0, 0.3):
            options = dict(reduction="none", label_smoothing=smoothing, return_grad=True)
            loss, grad = fastsoftmax.cross_entropy(x, t, num_threads=num_threads, **options)
            # in long double: the loss of a confident row cancels in the dtype
            exact_loss, exact_grad = reference.cross_entropy(x.astype(np.longdouble), t, **options)
            np.testing.assert_allclose(loss, exact_loss.astype(dtype), rtol=4 * eps, atol=eps, err_msg=f"n={n}")
            np.testing.assert_allclose(grad, exact_grad.astype(dtype), rtol=0, atol=4 * eps, err_msg=f"n={n}")
