"""Pure-NumPy twins of the public functions: the specification the C kernels
are tested against.

Same signatures, argument checks, dtype rules and special values as the
C-backed functions; written for clarity, not speed (``num_threads`` is
checked and then ignored).  These are the textbook formulas

    softmax(x)     = exp(x - max(x)) / sum(exp(x - max(x)))
    log_softmax(x) = (x - max(x)) - log(sum(exp(x - max(x))))

over the given axes, and they already give the documented special values:
a NaN or +inf in a group, or a group that is all -inf, makes the group NaN
(the max is NaN or infinite, so x - max is NaN somewhere); -inf among finite
values gives 0 (log_softmax: -inf).
"""
from __future__ import annotations

import numpy as np

from ._validation import (
    broadcast_where, check_cross_entropy_args, check_num_threads, check_out, check_same_shape,
    check_temperature_base, check_temperature_range, common_dtype, masked_as_where, masked_reduction, masked_result,
    names_errors, normalize_axes, prepare_input, prepare_weights, reduced_shape, rounded_to, scalar_if_0d,
)

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
    "cross_entropy",
]


def _shifted(arr, axes, scaling=None, mask=None):
    """z = (x - m) * s over `axes` (s = 1 / temperature or ln(base), 1 when
    not scaling), where m is the maximum of x (the minimum when s < 0) over
    the entries `mask` keeps; and exp(z), 0 where masked out."""
    sign = 1.0
    if scaling is not None and scaling[0] == "base" and scaling[1] < 1:
        sign = -1.0  # ln(base) < 0: the smallest x gives the largest z
    kept = arr if mask is None else np.where(mask, arr, -np.inf * sign)
    shifted = arr - sign * np.max(sign * kept, axis=axes, keepdims=True)
    if scaling is not None:
        kind, value = scaling
        # ln(base) of the base as given (a double), rounded once to the dtype
        log_base = np.log(np.longdouble(value)).astype(arr.dtype)
        shifted = shifted / value if kind == "temperature" else shifted * log_base
    e = np.exp(shifted)
    return shifted, (e if mask is None else np.where(mask, e, 0))


def _softmax_or_log_softmax(compute, x, axis, out, num_threads, temperature=None, base=None, where=None):
    x, where, input_mask = masked_as_where(x, where)
    result = _unmasked_softmax_or_log_softmax(compute, x, axis, out, num_threads, temperature, base, where)
    return masked_result(result, input_mask)


def _unmasked_softmax_or_log_softmax(compute, x, axis, out, num_threads, temperature, base, where):
    check_num_threads(num_threads)
    scaling = check_temperature_base(temperature, base)
    arr, result_dtype = prepare_input(x, compute.__name__.lstrip("_"), complex_ok=True)
    check_temperature_range(scaling, arr.dtype)
    axes = normalize_axes(axis, arr.ndim)
    mask = broadcast_where(where, arr.shape)
    if out is not None:
        check_out(out, arr.shape, result_dtype)
    if arr.size == 0:
        result = np.empty(arr.shape, dtype=result_dtype)
    else:
        flat = arr.reshape(1) if arr.ndim == 0 else arr
        flat_mask = None if mask is None else mask.reshape(flat.shape)
        with np.errstate(all="ignore"):  # a result beyond the result dtype rounds to inf there
            result = compute(flat, axes, scaling, flat_mask)
            result = result.reshape(arr.shape).astype(rounded_to(result_dtype, out), copy=False)
    if out is None:
        return result
    np.copyto(out, result)
    return out


def _softmax(arr, axes, scaling, mask):
    _, e = _shifted(arr, axes, scaling, mask)
    y = e / np.sum(e, axis=axes, keepdims=True)
    return y if mask is None else np.where(mask, y, 0)  # rows with nothing kept: 0, not 0/0


def _log_softmax(arr, axes, scaling, mask):
    shifted, e = _shifted(arr, axes, scaling, mask)
    y = shifted - np.log(np.sum(e, axis=axes, keepdims=True))
    return y if mask is None else np.where(mask, y, -np.inf)


@names_errors
def softmax(x, axis=-1, *, out=None, num_threads=None, temperature=None, base=None, where=None):
    """Reference softmax; see `fastsoftmax.softmax`."""
    return _softmax_or_log_softmax(_softmax, x, axis, out, num_threads, temperature, base, where)


@names_errors
def log_softmax(x, axis=-1, *, out=None, num_threads=None, temperature=None, base=None, where=None):
    """Reference log_softmax; see `fastsoftmax.log_softmax`."""
    return _softmax_or_log_softmax(_log_softmax, x, axis, out, num_threads, temperature, base, where)


@names_errors
def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, out=None, where=None,
              num_threads=None):
    """Reference logsumexp; see `fastsoftmax.logsumexp`."""
    x, where, input_mask = masked_as_where(x, where)
    result = _unmasked_logsumexp(x, axis, b, keepdims, return_sign, out, where, num_threads)
    return masked_reduction(result, input_mask, axis, keepdims, return_sign)


def _unmasked_logsumexp(x, axis, b, keepdims, return_sign, out, where, num_threads):
    check_num_threads(num_threads)
    arr, result_dtype = prepare_input(x, "logsumexp", complex_ok=True)
    arr, w, result_dtype = prepare_weights(arr, result_dtype, b, "logsumexp")
    axes = normalize_axes(axis, arr.ndim)
    mask = broadcast_where(where, arr.shape)
    shape = () if arr.ndim == 0 else reduced_shape(arr.shape, axes, keepdims)
    # |total|'s log is real
    value_dtype = np.finfo(result_dtype).dtype if return_sign and result_dtype.kind == "c" else result_dtype
    if out is not None:
        check_out(out, shape, value_dtype)
    flat = arr.reshape(1) if arr.ndim == 0 else arr
    weights = None if w is None else w.reshape(flat.shape)
    if mask is not None:  # a masked-out entry takes no part
        mask = mask.reshape(flat.shape)
        if weights is None:
            flat = np.where(mask, flat, -np.inf)
        else:
            weights = np.where(mask, weights, 0)
    with np.errstate(all="ignore"):
        total, m = _weighted_total(flat, weights, axes)
        if np.iscomplexobj(total):
            result, sign = _complex_log(total, m, flat, weights, axes, return_sign)
        else:
            result, sign = m + np.log(np.abs(total)), np.sign(total)
            if not return_sign:
                result = np.where(sign < 0, np.nan, result)
    result = result.reshape(shape).astype(rounded_to(value_dtype, out))
    if out is not None:
        np.copyto(out, result)
        result = out
    if not return_sign:
        return scalar_if_0d(result)
    return scalar_if_0d(result), scalar_if_0d(sign.reshape(shape).astype(result_dtype))


def _weighted_sum(x, w, axes):
    """sum(w * exp(x)) over `axes`, kept as length 1 (w None: no weights);
    an entry with w == 0 takes no part whatever its x."""
    terms = np.exp(x) if w is None else np.where(w != 0, w * np.exp(x), 0)
    return np.sum(terms, axis=axes, keepdims=True)


def _weighted_total(x, w, axes):
    """(total, m): sum(w * exp(x - m)) over `axes` (kept as length 1) and
    the shift m, the largest real part among the entries with w != 0 where
    it is finite, else 0 (w None: no weights).  With a +inf among the real
    entries taking part, the total is the sum of the weighted +inf terms
    alone (finite terms are negligible), NaN with both signs."""
    taking_part = True if w is None else w != 0
    kept = np.where(taking_part, x.real, -np.inf)
    m = np.max(kept, axis=axes, keepdims=True) if x.size else np.full(
        reduced_shape(x.shape, axes, True), -np.inf, x.real.dtype)
    m_finite = np.where(np.isfinite(m), m, 0).astype(m.dtype)
    total = _weighted_sum(x - m_finite, w, axes)
    if np.iscomplexobj(x):
        return total, m_finite
    w = np.ones_like(x) if w is None else w
    infinite_terms = np.where(taking_part & (x == np.inf), np.sign(w) * np.inf,
                              np.where(taking_part & np.isnan(w), np.nan, 0))
    total = np.where(m == np.inf, np.sum(infinite_terms, axis=axes, keepdims=True), total)
    return total, m_finite


def _complex_log(total, m, x, w, axes, return_sign):
    """logsumexp of complex input from the shifted total: m + log(total)
    (imaginary part in (-pi, pi]), or with return_sign the log of |total|
    and the phase; where that is not finite, log(sum(w * exp(x))) directly,
    as SciPy does."""
    direct = _weighted_sum(x, w, axes)
    if return_sign:
        magnitude = m + np.log(np.abs(total))
        finite = np.isfinite(magnitude)
        phase = np.where(finite, total / np.abs(total), direct / np.abs(direct))
        return np.where(finite, magnitude, np.log(np.abs(direct))), phase
    result = m + np.log(total)
    return np.where(np.isfinite(result), result, np.log(direct)), None


def _backward_inputs(func, grad, y, axis, out, num_threads):
    check_num_threads(num_threads)
    g, g_result = prepare_input(grad, func, "grad")
    yy, y_result = prepare_input(y, func, "y")
    check_same_shape(g, yy, "grad", "y")
    result_dtype = common_dtype(g_result, y_result)
    compute = common_dtype(g.dtype, yy.dtype)
    axes = normalize_axes(axis, g.ndim)
    if out is not None:
        check_out(out, g.shape, result_dtype)
    shape = g.shape
    g = g.astype(compute, copy=False).reshape(g.shape or (1,))
    yy = yy.astype(compute, copy=False).reshape(g.shape)
    return g, yy, axes, shape, result_dtype


def _backward_result(result, shape, result_dtype, out):
    result = result.reshape(shape).astype(rounded_to(result_dtype, out), copy=False)
    if out is None:
        return result
    np.copyto(out, result)
    return out


@names_errors
def softmax_backward(grad, y, axis=-1, *, out=None, num_threads=None):
    """Reference softmax_backward; see `fastsoftmax.softmax_backward`."""
    g, yy, axes, shape, result_dtype = _backward_inputs("softmax_backward", grad, y, axis, out, num_threads)
    with np.errstate(all="ignore"):
        result = yy * (g - np.sum(g * yy, axis=axes, keepdims=True))
    return _backward_result(result, shape, result_dtype, out)


@names_errors
def log_softmax_backward(grad, y, axis=-1, *, out=None, num_threads=None):
    """Reference log_softmax_backward; see `fastsoftmax.log_softmax_backward`."""
    g, yy, axes, shape, result_dtype = _backward_inputs("log_softmax_backward", grad, y, axis, out, num_threads)
    with np.errstate(all="ignore"):
        result = g - np.exp(yy) * np.sum(g, axis=axes, keepdims=True)
    return _backward_result(result, shape, result_dtype, out)


@names_errors
def cross_entropy(logits, target, axis=-1, *, reduction="mean", label_smoothing=0.0,
                  return_grad=False, num_threads=None, grad_out=None):
    """Reference cross_entropy; see `fastsoftmax.cross_entropy`."""
    x, result_dtype, ax, t, is_index = check_cross_entropy_args(
        logits, target, axis, reduction, label_smoothing, return_grad, num_threads, grad_out)
    n = x.shape[ax]
    if is_index:
        q = (np.arange(n).reshape((n,) + (1,) * (x.ndim - ax - 1)) == np.expand_dims(t, ax)).astype(x.dtype)
    else:
        q = t
    q = (1 - label_smoothing) * q + label_smoothing / n
    with np.errstate(all="ignore"):
        logp = _log_softmax(x, (ax,), None, None)
        # a zero weight drops its term (0 * -inf at a -inf logit), but not a
        # NaN group's NaN (all -inf, or a NaN or +inf in it)
        losses = -np.sum(np.where((q != 0) | np.isnan(logp), q * logp, 0), axis=ax)
        rows = losses.size
        if reduction == "none":
            loss = losses.astype(result_dtype)
        else:
            total = np.sum(losses, dtype=np.float64)
            loss = result_dtype.type(total / np.float64(rows) if reduction == "mean" else total)
        if not return_grad:
            return loss
        scale = 1.0 / rows if reduction == "mean" and rows else 1.0
        grad = ((np.exp(logp) - q) * scale).astype(rounded_to(result_dtype, grad_out))
    if grad_out is None:
        return loss, grad
    np.copyto(grad_out, grad)
    return loss, grad_out
