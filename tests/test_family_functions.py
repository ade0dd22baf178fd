"""logsumexp, softmax_backward, log_softmax_backward and cross_entropy:
against their reference twins, long double, SciPy, finite differences and
(when installed) PyTorch autograd; special values, layouts, out=, errors;
every kernel variant, 1 and 2 threads."""
import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import reference
from util import FLOAT_DTYPES, call_unmodified, eps

special = pytest.importorskip("scipy.special")


def _families(rng):
    yield "normal_x4", rng.standard_normal((40, 500)) * 4
    yield "uniform_90_100", rng.uniform(90, 100, (40, 500))
    yield "uniform_-80_80", rng.uniform(-80, 80, (40, 500))
    yield "one_long_row", rng.standard_normal(300_000)


# --- logsumexp -----------------------------------------------------------------

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_logsumexp_accurate(dtype, variant, num_threads):
    rng = np.random.default_rng(1)
    for name, x64 in _families(rng):
        x = x64.astype(dtype)
        got = call_unmodified(fastsoftmax.logsumexp, x, num_threads=num_threads)
        exact = reference.logsumexp(x.astype(np.longdouble))
        err = np.max(np.abs(got - exact) / np.maximum(np.abs(exact), 1)) / eps(dtype)
        assert err <= 2.0, f"{name}: {float(err):.2f} eps"
        np.testing.assert_allclose(got, special.logsumexp(x, axis=-1), rtol=4 * eps(dtype),
                                   atol=4 * eps(dtype))


@pytest.mark.parametrize("row", [
    [np.inf, 1.0], [np.nan, 1.0], [np.inf, np.nan], [-np.inf, -np.inf], [np.inf, -np.inf],
    [np.inf, np.inf], [-np.inf, 0.0], [np.nan, np.nan], [1e308, 1e308], [-1e308, 0.0],
])
def test_logsumexp_special_values_as_scipy(row, variant):
    x = np.array(row)
    with np.errstate(all="ignore"):
        expected = special.logsumexp(x)
    got = fastsoftmax.logsumexp(x)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(reference.logsumexp(x), expected)


@pytest.mark.parametrize("axis", [0, 1, -1, (0, 2), None])
@pytest.mark.parametrize("keepdims", [False, True])
def test_logsumexp_axes_layouts_where(axis, keepdims):
    rng = np.random.default_rng(2)
    base = rng.standard_normal((5, 7, 11)) * 10
    mask = rng.random(base.shape) > 0.3
    for x in (base, base[::-1, :, ::2], np.asfortranarray(base), base.transpose(1, 2, 0)):
        m = mask[tuple(slice(None, s) for s in x.shape)] if x.shape == base.shape[:x.ndim] else None
        got = fastsoftmax.logsumexp(x, axis, keepdims=keepdims)
        expected = special.logsumexp(x, axis=axis, keepdims=keepdims)
        np.testing.assert_allclose(got, expected, rtol=1e-14)
        assert got.shape == np.shape(expected)
        if m is not None:
            got_w = fastsoftmax.logsumexp(x, axis, keepdims=keepdims, where=m)
            expected_w = reference.logsumexp(x, axis, keepdims=keepdims, where=m)
            np.testing.assert_allclose(got_w, expected_w, rtol=1e-14)


def test_logsumexp_edges_and_out():
    assert fastsoftmax.logsumexp(np.float64(2.5)) == 2.5
    np.testing.assert_array_equal(fastsoftmax.logsumexp(np.zeros((3, 0))), [-np.inf] * 3)
    assert fastsoftmax.logsumexp(np.zeros((0, 3))).shape == (0,)
    w = np.array([[False, False], [True, False]])
    np.testing.assert_array_equal(fastsoftmax.logsumexp(np.ones((2, 2)), where=w), [-np.inf, 1.0])
    assert fastsoftmax.logsumexp(np.arange(3, dtype=np.float16)).dtype == np.float16
    assert fastsoftmax.logsumexp(np.arange(3)).dtype == np.float64
    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    out = np.empty(4, np.float32)
    assert fastsoftmax.logsumexp(x, out=out) is out
    np.testing.assert_array_equal(out, fastsoftmax.logsumexp(x))
    with pytest.raises(ValueError, match="out"):
        fastsoftmax.logsumexp(x, out=np.empty(6, np.float32))
    with pytest.raises(TypeError, match="out"):
        fastsoftmax.logsumexp(x, out=np.empty(4, np.float64))
    with pytest.raises(TypeError, match="where"):
        fastsoftmax.logsumexp(x, where=np.ones(6))
    with pytest.raises(TypeError, match="x"):
        fastsoftmax.logsumexp(np.ones(3, object))


def test_logsumexp_threads_bit_identical():
    x = np.random.default_rng(4).standard_normal((2000, 100))
    np.testing.assert_array_equal(fastsoftmax.logsumexp(x, num_threads=1),
                                  fastsoftmax.logsumexp(x, num_threads=2))


# --- backward passes -------------------------------------------------------------

def _numerical_vjp(forward, x, g, h=1e-6):
    """g^T J of forward at x (one row), by central differences."""
    grad = np.empty_like(x)
    for i in range(x.size):
        step = np.zeros_like(x)
        step[i] = h
        grad[i] = np.dot(g, (forward(x + step) - forward(x - step)) / (2 * h))
    return grad


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_backward_matches_finite_differences(name, variant):
    rng = np.random.default_rng(6)
    x, g = rng.standard_normal(12), rng.standard_normal(12)
    forward = getattr(fastsoftmax, name)
    backward = getattr(fastsoftmax, f"{name}_backward")
    got = backward(g, forward(x))
    np.testing.assert_allclose(got, _numerical_vjp(forward, x, g), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_backward_agrees_with_reference(name, dtype, variant, num_threads):
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((64, 700)) * 3).astype(dtype)
    g = rng.standard_normal(x.shape).astype(dtype)
    y = getattr(fastsoftmax, name)(x)
    backward = getattr(fastsoftmax, f"{name}_backward")
    got = call_unmodified(backward, g, y, num_threads=num_threads)
    exact = getattr(reference, f"{name}_backward")(g.astype(np.longdouble), y.astype(np.longdouble))
    # error relative to the magnitude of the terms (the result may cancel)
    scale = np.abs(g).max(axis=-1, keepdims=True) * (np.abs(y).max(axis=-1, keepdims=True)
                                                     if name == "softmax" else 1)
    err = np.max(np.abs(got - exact) / scale) / eps(dtype)
    assert err <= 8, f"{float(err):.2f} eps of the terms"
    ref = getattr(reference, f"{name}_backward")(g, y)
    np.testing.assert_allclose(got, ref, rtol=0, atol=16 * eps(dtype) * float(scale.max()))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_backward_layouts_out_and_errors(name):
    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 8, 5))
    g = rng.standard_normal(x.shape)
    forward = getattr(fastsoftmax, name)
    backward = getattr(fastsoftmax, f"{name}_backward")
    ref = getattr(reference, f"{name}_backward")
    for axis in (0, 1, -1, (0, 2), None):
        y = forward(x, axis)
        np.testing.assert_allclose(backward(g, y, axis), ref(g, y, axis), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(backward(g[::-1].copy(), y[::-1], axis), ref(g[::-1], y[::-1], axis),
                                   rtol=1e-12, atol=1e-14)
    y = forward(x)
    expected = backward(g, y)
    for target in ("grad", "y"):
        g2, y2 = g.copy(), y.copy()
        out = g2 if target == "grad" else y2
        assert backward(g2, y2, out=out) is out
        np.testing.assert_array_equal(out, expected)
    assert backward(g.astype(np.float32), y.astype(np.float32)).dtype == np.float32
    assert backward(g.astype(np.float32), y).dtype == np.float64
    with pytest.raises(ValueError, match="y"):
        backward(g, y[:, :, :4])
    with pytest.raises(ValueError, match="out"):
        backward(g, y, out=np.empty((6, 8)))
    with pytest.raises(TypeError, match="grad"):
        backward(np.ones(x.shape, complex), y)


def test_backward_against_torch_autograd():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(12)
    x, g = rng.standard_normal((7, 30)), rng.standard_normal((7, 30))
    for name in ("softmax", "log_softmax"):
        tx = torch.tensor(x, requires_grad=True)
        getattr(torch, name)(tx, -1).backward(torch.tensor(g))
        got = getattr(fastsoftmax, f"{name}_backward")(g, getattr(fastsoftmax, name)(x))
        np.testing.assert_allclose(got, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


# --- cross entropy ---------------------------------------------------------------

def _targets(rng, shape, n, kind):
    if kind == "index":
        return rng.integers(0, n, shape[:-1])
    return reference.softmax(rng.standard_normal(shape) * 2)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("smoothing", [0.0, 0.1, 1.0])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_agrees_with_reference(dtype, kind, smoothing, reduction, variant, num_threads):
    rng = np.random.default_rng(14)
    x = (rng.standard_normal((33, 257)) * 4).astype(dtype)
    t = _targets(rng, x.shape, 257, kind)
    t = t.astype(dtype) if kind == "probs" else t
    loss, grad = call_unmodified(fastsoftmax.cross_entropy, x, t, reduction=reduction,
                                 label_smoothing=smoothing, return_grad=True, num_threads=num_threads)
    ref_loss, ref_grad = reference.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing,
                                                 return_grad=True)
    exact_loss = reference.cross_entropy(x.astype(np.longdouble), t, reduction=reduction,
                                         label_smoothing=smoothing)
    assert np.asarray(loss).dtype == dtype and np.shape(loss) == np.shape(ref_loss)
    assert grad.dtype == dtype and grad.shape == x.shape
    np.testing.assert_allclose(loss, exact_loss.astype(np.float64), rtol=4 * eps(dtype))
    np.testing.assert_allclose(loss, ref_loss, rtol=64 * eps(dtype))
    scale = float(np.max(np.abs(ref_grad)))
    np.testing.assert_allclose(grad, ref_grad, rtol=0, atol=8 * eps(dtype) * scale)
    # the loss does not depend on whether the gradient is computed too
    np.testing.assert_array_equal(
        fastsoftmax.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing), loss)


def test_cross_entropy_gradient_matches_finite_differences(variant):
    rng = np.random.default_rng(15)
    x = rng.standard_normal((3, 6))
    for t in (np.array([0, 5, 2]), reference.softmax(rng.standard_normal((3, 6)))):
        _, grad = fastsoftmax.cross_entropy(x, t, label_smoothing=0.2, return_grad=True)
        numerical = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            step = np.zeros_like(x)
            step[idx] = 1e-6
            numerical[idx] = (fastsoftmax.cross_entropy(x + step, t, label_smoothing=0.2)
                              - fastsoftmax.cross_entropy(x - step, t, label_smoothing=0.2)) / 2e-6
        np.testing.assert_allclose(grad, numerical, rtol=1e-6, atol=1e-9)


def test_cross_entropy_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(16)
    x = rng.standard_normal((9, 13))
    for t in (rng.integers(0, 13, 9), reference.softmax(rng.standard_normal((9, 13)))):
        tx = torch.tensor(x, requires_grad=True)
        loss = torch.nn.functional.cross_entropy(tx, torch.tensor(t), label_smoothing=0.1)
        loss.backward()
        got, grad = fastsoftmax.cross_entropy(x, t, label_smoothing=0.1, return_grad=True)
        np.testing.assert_allclose(got, loss.item(), rtol=1e-13)
        np.testing.assert_allclose(grad, tx.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_axis_layouts_and_special_values():
    rng = np.random.default_rng(17)
    x = rng.standard_normal((4, 7, 5))
    t = rng.integers(0, 7, (4, 5))
    got, grad = fastsoftmax.cross_entropy(x, t, axis=1, reduction="none", return_grad=True)
    ref, ref_grad = reference.cross_entropy(x, t, axis=1, reduction="none", return_grad=True)
    np.testing.assert_allclose(got, ref, rtol=1e-13)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-12, atol=1e-15)
    bad = np.array([[np.nan, 0.0, 1.0], [0.0, -np.inf, 1.0], [-np.inf] * 3, [np.inf, 0.0, 0.0]])
    loss, grad = fastsoftmax.cross_entropy(bad, np.array([1, 0, 0, 1]), reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.all(np.isnan(grad[0]))
    assert np.isfinite(loss[1]) and np.all(np.isfinite(grad[1]))  # -inf logit, not the target
    assert np.isnan(loss[2]) and np.isnan(loss[3])
    q = np.array([[0.0, 0.5, 0.5]])
    assert np.isfinite(fastsoftmax.cross_entropy(np.array([[-np.inf, 0.0, 1.0]]), q))  # 0 * log 0 = 0
    assert np.isnan(fastsoftmax.cross_entropy(np.zeros((0, 3)), np.zeros(0, int)))
    assert fastsoftmax.cross_entropy(np.zeros((0, 3)), np.zeros(0, int), reduction="sum") == 0
    losses, grads = fastsoftmax.cross_entropy(np.zeros((0, 3)), np.zeros(0, int), reduction="none",
                                              return_grad=True)
    assert losses.shape == (0,) and grads.shape == (0, 3)
    x2 = rng.standard_normal((500, 300))
    t2 = rng.integers(0, 300, 500)
    assert (fastsoftmax.cross_entropy(x2, t2, num_threads=1)
            == fastsoftmax.cross_entropy(x2, t2, num_threads=2))


@pytest.mark.parametrize("impl", [fastsoftmax, reference])
def test_cross_entropy_nan_group_is_nan_whatever_its_weights(impl):
    # a group that is NaN (all -inf, or a NaN or +inf in it) has a NaN loss
    # even where the target gives it no weight at all, as in PyTorch
    x = np.array([[-np.inf] * 3, [np.nan, 0.0, 1.0], [np.inf, 0.0, 1.0], [-np.inf, 0.0, 1.0]])
    q = np.array([[0.0] * 3, [0.0] * 3, [0.0] * 3, [0.0, 0.5, 0.5]])
    loss, grad = impl.cross_entropy(x, q, reduction="none", return_grad=True)
    assert np.all(np.isnan(loss[:3])) and np.all(np.isnan(grad[:3]))
    assert np.isfinite(loss[3]) and np.all(np.isfinite(grad[3]))  # 0 * log 0 = 0



@pytest.mark.parametrize("return_grad", [False, True])
def test_cross_entropy_probs_gap_beyond_float32_max(variant, return_grad):
    """float32 probability targets sum q (max - x) in float32 per block; a
    block where max - x overflows float32 (the loss itself does not) is
    summed again in float64, and the other blocks of the row are not."""
    rng = np.random.default_rng(23)
    x = rng.standard_normal((3, 600)).astype(np.float32)
    q = reference.softmax(rng.standard_normal((3, 600))).astype(np.float32)
    x[:, 5] = 3e38
    x[1, 300] = -3e38  # the second of three sum blocks
    x[2, 599] = -np.inf  # gap +inf: the loss is +inf
    got = fastsoftmax.cross_entropy(x, q, reduction="none", return_grad=return_grad)
    loss = got[0] if return_grad else got
    exact = reference.cross_entropy(x.astype(np.longdouble), q, reduction="none")
    assert np.isinf(loss[2]) and np.isinf(exact[2])
    np.testing.assert_allclose(loss[:2], exact[:2].astype(np.float64), rtol=4 * eps(np.float32))
    assert loss[1] > 2 * q[1, 300] * 3e38 * (1 - 4 * eps(np.float32))

def _grad_out_like(x, axis, layout):
    """A NaN-filled array of x's shape: C- or F-ordered, or with the class
    axis contiguous and its groups padded apart ("padded", usable as the
    kernel's rows) or every other element ("every_other", not usable)."""
    if layout in ("C", "F"):
        out = np.empty(x.shape, x.dtype, order=layout)
    else:
        classes_last = np.moveaxis(x, axis, -1).shape
        n = classes_last[-1]
        wide = np.empty(classes_last[:-1] + (2 * n,), x.dtype)
        out = np.moveaxis(wide[..., :n] if layout == "padded" else wide[..., ::2], -1, axis)
    out[...] = np.nan
    return out


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kind", ["index", "probs"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("layout", ["C", "F", "padded", "every_other"])
@pytest.mark.parametrize("axis", [-1, 0])
def test_cross_entropy_grad_out_equals_fresh_gradient(dtype, kind, reduction, layout, axis, variant,
                                                      num_threads):
    rng = np.random.default_rng(18)
    x = (rng.standard_normal((33, 257)) * 4).astype(dtype)
    x = x if axis == -1 else np.ascontiguousarray(x.T)
    t = _targets(rng, (33, 257), 257, kind)
    t = np.ascontiguousarray(np.moveaxis(t.astype(dtype), -1, axis)) if kind == "probs" else t
    t_before = t.copy()
    kwargs = dict(axis=axis, reduction=reduction, label_smoothing=0.1, return_grad=True,
                  num_threads=num_threads)
    for ce in (fastsoftmax.cross_entropy, reference.cross_entropy):
        loss, grad = ce(x, t, **kwargs)
        grad_out = _grad_out_like(x, axis, layout)
        got_loss, got = call_unmodified(ce, x, t, grad_out=grad_out, **kwargs)
        assert got is grad_out
        np.testing.assert_array_equal(got_loss, loss)
        np.testing.assert_array_equal(got, grad)
        np.testing.assert_array_equal(t, t_before)


@pytest.mark.parametrize("kind, overlap", [
    ("index", "logits"), ("probs", "logits"), ("probs", "probs"),
    ("index", "shifted_logits"), ("probs", "shifted_logits"),
])
def test_cross_entropy_grad_out_overlapping_inputs(kind, overlap, variant, num_threads):
    """grad_out=logits is in place (the gradient overwrites the logits); any
    overlap with the inputs gives the answer of separate arrays."""
    rng = np.random.default_rng(19)
    buffer = rng.standard_normal((34, 100)) * 4
    t = _targets(rng, (33, 100), 100, kind)
    for ce in (fastsoftmax.cross_entropy, reference.cross_entropy):
        memory, target = buffer.copy(), t.copy()
        x = memory[1:] if overlap == "shifted_logits" else memory[:-1]
        expected_loss, expected = ce(x.copy(), t, reduction="none", return_grad=True,
                                     num_threads=num_threads)
        grad_out = {"logits": x, "probs": target, "shifted_logits": memory[:-1]}[overlap]
        loss, got = ce(x, target, reduction="none", return_grad=True, grad_out=grad_out,
                       num_threads=num_threads)
        assert got is grad_out
        np.testing.assert_array_equal(loss, expected_loss)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, np.int64])
def test_cross_entropy_grad_out_other_dtypes(dtype):
    """float16 is computed in float32 and ints in float64 (a temporary and a
    copy into grad_out); long double goes through the reference."""
    x = (np.random.default_rng(20).standard_normal((5, 7)) * 4).astype(dtype)
    t = np.array([0, 6, 3, 3, 1])
    loss, grad = fastsoftmax.cross_entropy(x, t, return_grad=True)
    grad_out = np.full_like(grad, np.nan)
    got_loss, got = call_unmodified(fastsoftmax.cross_entropy, x, t, return_grad=True, grad_out=grad_out)
    assert got is grad_out and got.dtype == grad.dtype
    np.testing.assert_array_equal(got_loss, loss)
    np.testing.assert_array_equal(got, grad)


def test_cross_entropy_grad_out_empty():
    for ce in (fastsoftmax.cross_entropy, reference.cross_entropy):
        grad_out = np.empty((0, 3))
        losses, grad = ce(np.zeros((0, 3)), np.zeros(0, int), reduction="none", return_grad=True,
                          grad_out=grad_out)
        assert grad is grad_out and losses.shape == (0,)


def _read_only(arr):
    arr.flags.writeable = False
    return arr


@pytest.mark.parametrize("kwargs, error, word", [
    (dict(target=np.array([0, 3])), ValueError, "target"),
    (dict(target=np.array([0, -1])), ValueError, "target"),
    (dict(target=np.array([0, 1, 2])), ValueError, "target"),
    (dict(target=np.array([True, False])), TypeError, "target"),
    (dict(target=np.ones((2, 4))), ValueError, "target"),
    (dict(axis=(0, 1)), TypeError, "axis"),
    (dict(axis=None), TypeError, "axis"),
    (dict(axis=2), np.exceptions.AxisError, "axis"),
    (dict(reduction="avg"), ValueError, "reduction"),
    (dict(label_smoothing=1.5), ValueError, "label_smoothing"),
    (dict(label_smoothing="0.1"), TypeError, "label_smoothing"),
    (dict(return_grad="yes"), TypeError, "return_grad"),
    (dict(num_threads=0), ValueError, "num_threads"),
    (dict(grad_out=np.zeros((2, 3))), ValueError, "grad_out needs return_grad=True"),
    (dict(return_grad=True, grad_out=[[0.0] * 3] * 2), TypeError, "grad_out must be a numpy.ndarray"),
    (dict(return_grad=True, grad_out=np.zeros((3, 2))), ValueError, "grad_out has shape"),
    (dict(return_grad=True, grad_out=np.zeros(6)), ValueError, "grad_out has shape"),
    (dict(return_grad=True, grad_out=np.zeros((2, 3), np.float32)), TypeError, "grad_out has dtype"),
    (dict(return_grad=True, grad_out=_read_only(np.zeros((2, 3)))), ValueError, "grad_out is read-only"),
])
def test_cross_entropy_errors(kwargs, error, word):
    args = dict(logits=np.zeros((2, 3)), target=np.array([0, 2]))
    args.update(kwargs)
    with pytest.raises(error, match=word):
        fastsoftmax.cross_entropy(**args)
    with pytest.raises(error, match=word):
        reference.cross_entropy(**args)
    with pytest.raises(ValueError, match="logits"):
        fastsoftmax.cross_entropy(np.float64(1.0), np.array(0))
