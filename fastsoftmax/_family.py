"""The softmax family beyond plain softmax, on the C row kernels of
src_c/kernels/family.h: the argument checks and layout work happen here, the
arithmetic in one fused kernel call without the GIL.

Every function sees its input as a (rows, n) matrix with the reduction axes
last: a view when the layout allows it (the common case, reduction over the
last axis of a contiguous array), else a contiguous copy.  Outputs are
written in place when `out` can be viewed the same way and does not overlap
an input other than as the very same rows.
"""
from __future__ import annotations

import functools
import math
from fractions import Fraction

import numpy as np

from . import _core
from . import reference as _reference
from ._validation import (
    broadcast_where, check_num_threads, check_out, check_same_shape, check_temperature_base,
    normalize_axes, prepare_input, reduced_shape,
)

# Row kernels (src_c/kernels/family.h, FSM_FAM_*).
_SCALED_SOFTMAX, _SCALED_LOG_SOFTMAX, _LOGSUMEXP = 0, 1, 2
_SOFTMAX_BACKWARD, _LOG_SOFTMAX_BACKWARD, _CROSS_ENTROPY = 3, 4, 5


class _Rows:
    """An array of `shape` seen as a (rows, n) matrix, `axes` last."""

    def __init__(self, shape: tuple, axes: tuple):
        self.shape = shape
        ndim = len(shape)
        if axes == (ndim - 1,):  # the common case, without the general bookkeeping
            self.perm = list(range(ndim))
            self.moved_shape, self.other_shape, self.n = shape, shape[:-1], shape[-1]
        else:
            self.perm = [d for d in range(ndim) if d not in axes] + list(axes)
            self.moved_shape = tuple(shape[d] for d in self.perm)
            self.other_shape = tuple(shape[d] for d in self.perm[: ndim - len(axes)])
            self.n = math.prod(shape[d] for d in axes)
        self.rows = math.prod(self.other_shape)
        self.identity = self.perm == list(range(ndim))

    def _reshaped(self, arr):
        moved = arr if self.identity else arr.transpose(self.perm)
        return moved.reshape(self.rows, self.n)

    def read(self, arr):
        """arr as rows the kernels accept: a view when possible, else a copy."""
        m = self._reshaped(arr)
        isz = m.itemsize
        if (self.n > 1 and m.strides[1] != isz) or m.strides[0] % isz or not m.flags.aligned:
            m = np.ascontiguousarray(m)
        return m

    def write_view(self, arr):
        """A view of arr as rows the kernels can write, or None."""
        if arr is None or not arr.flags.aligned or not arr.flags.writeable:
            return None
        moved = arr.transpose(self.perm)
        try:
            m = moved.reshape(self.rows, self.n, copy=False)
        except TypeError:  # NumPy < 2.1 has no copy=: keep only certain views
            m = moved.reshape(self.rows, self.n) if moved.flags.c_contiguous else None
        except ValueError:  # a copy would be needed
            return None
        if m is None or (self.n > 1 and m.strides[1] != m.itemsize) or m.strides[0] % m.itemsize:
            return None
        if self.rows > 1 and m.strides[0] == 0:  # rows would alias each other
            return None
        return m

    def restore(self, rows_arr):
        """A (rows, n) result back in the original shape (a view)."""
        moved = rows_arr.reshape(self.moved_shape)
        return moved if self.identity else moved.transpose(np.argsort(self.perm))


def _same_rows(a, b) -> bool:
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape)


def _output_rows(rows: _Rows, target, inputs, dtype, in_place: bool = True):
    """(rows matrix to compute into, whether it is `target` itself).  target
    may be the very rows of an input only when `in_place`; any other overlap
    with an input means a temporary."""
    view = rows.write_view(target) if target is not None and target.dtype == dtype else None
    if view is not None and all((in_place and _same_rows(view, a)) or not np.may_share_memory(view, a)
                                for a in inputs):
        return view, True
    return np.empty((rows.rows, rows.n), dtype), False


def _deliver(rows: _Rows, y, direct: bool, out, result_dtype, like):
    """The result of a computation into y: out, or a new array laid out like
    `like` (the input, or a C-ordered array of its shape)."""
    if direct:
        return out
    result = rows.restore(y)
    if out is not None:
        np.copyto(out, result.reshape(out.shape), casting="unsafe")
        return out
    if not rows.identity:
        result = np.copy(result, order="K") if like is None else _copy_like(result, like)
    return result.reshape(rows.shape).astype(result_dtype, copy=False)


def _copy_like(result, like):
    fresh = np.empty_like(like, dtype=result.dtype)
    np.copyto(fresh, result)
    return fresh


@functools.lru_cache(maxsize=64)
def _scale_parts(scaling) -> tuple:
    """(hi, lo, step_hi, step_lo): 1 / temperature or ln(base) as a
    double-double, and ln 2 divided by it (_exp_step_parts).  Exact
    rational arithmetic costs microseconds, so results are cached per
    (kind, value)."""
    hi, lo = _scale_pair(scaling)
    return (hi, lo) + _exp_step_parts(hi, lo)


def _scale_pair(scaling) -> tuple:
    """1 / temperature or ln(base) as a double-double (hi, lo)."""
    kind, value = scaling
    if kind == "temperature":
        exact = 1 / Fraction(value)
        hi = float(exact)
        return hi, float(exact - Fraction(hi))
    hi = math.log(value)
    # ln(base) to extended precision where long double has it (x86: 64 bits)
    lo = float(np.log(np.longdouble(value)) - np.longdouble(hi))
    return hi, lo


# ln 2 to 60 digits, far beyond what a double-double holds
_LN2 = Fraction("0.693147180559945309417232121458176568075500134360255254120680")


def _exp_step_parts(scale_hi: float, scale_lo: float) -> tuple:
    """ln 2 / scale as a double-double, for the kernels' reduction of exp's
    argument; (0, 0) outside 2^-60 <= |scale| <= 2^60, where they do
    without it (family.h)."""
    if not 2.0**-60 <= abs(scale_hi) <= 2.0**60:
        return 0.0, 0.0
    step = _LN2 / (Fraction(scale_hi) + Fraction(scale_lo))
    hi = float(step)
    return hi, float(step - Fraction(hi))


def _empty_result(shape, result_dtype, out, fill=None):
    result = np.empty(shape, result_dtype) if fill is None else np.full(shape, fill, result_dtype)
    if out is None:
        return result
    np.copyto(out, result)
    return out


def scaled_softmax(log: bool, x, axis, out, num_threads, temperature, base, where):
    """softmax / log_softmax with temperature=, base= or where= (see _api)."""
    threads = check_num_threads(num_threads)
    scaling = check_temperature_base(temperature, base)
    arr, result_dtype = prepare_input(x)
    if arr.dtype.itemsize > 8:
        ref = _reference.log_softmax if log else _reference.softmax
        return ref(arr, axis, out=out, num_threads=num_threads, temperature=temperature, base=base,
                   where=where)
    axes = normalize_axes(axis, arr.ndim)
    mask = broadcast_where(where, arr.shape)
    if out is not None:
        check_out(out, arr.shape, result_dtype)
    shape = arr.shape
    if arr.size == 0:
        return _empty_result(shape, result_dtype, out)
    if arr.ndim == 0:
        arr = arr.reshape(1)
        mask = None if mask is None else mask.reshape(1)
    rows = _Rows(arr.shape, axes)
    a = rows.read(arr)
    m = None if mask is None else rows.read(mask.view(np.uint8))
    target = None if out is None else out.reshape(arr.shape)
    y, direct = _output_rows(rows, target, [a] if m is None else [a, m], arr.dtype)
    hi, lo, step_hi, step_lo = (1.0, 0.0, 0.0, 0.0) if scaling is None else _scale_parts(scaling)
    op = _SCALED_LOG_SOFTMAX if log else _SCALED_SOFTMAX
    _core._family_rows(op, a, None, m, None, y, None, hi, lo, num_threads=threads,
                       exp_step_hi=step_hi, exp_step_lo=step_lo)
    result = _deliver(rows, y, direct, target, result_dtype, arr)
    return out if out is not None else result.reshape(shape)


def logsumexp(x, axis=-1, *, keepdims=False, out=None, where=None, num_threads=None):
    threads = check_num_threads(num_threads)
    arr, result_dtype = prepare_input(x)
    if arr.dtype.itemsize > 8:
        return _reference.logsumexp(arr, axis, keepdims=keepdims, out=out, where=where,
                                    num_threads=num_threads)
    axes = normalize_axes(axis, arr.ndim)
    mask = broadcast_where(where, arr.shape)
    shape = () if arr.ndim == 0 else reduced_shape(arr.shape, axes, keepdims)
    if out is not None:
        check_out(out, shape, result_dtype)
    if arr.ndim == 0:
        arr = arr.reshape(1)
        mask = None if mask is None else mask.reshape(1)
    rows = _Rows(arr.shape, axes)
    if rows.rows == 0 or rows.n == 0:  # the log of an empty sum is -inf
        return _empty_result(shape, result_dtype, out, fill=-np.inf)
    a = rows.read(arr)
    m = None if mask is None else rows.read(mask.view(np.uint8))
    row_out = np.empty(rows.rows, np.float64)
    _core._family_rows(_LOGSUMEXP, a, None, m, None, None, row_out, num_threads=threads)
    result = row_out.astype(result_dtype).reshape(shape)
    if out is None:
        return result
    np.copyto(out, result)
    return out


def _backward(op: int, grad, y, axis, out, num_threads):
    threads = check_num_threads(num_threads)
    g, g_result = prepare_input(grad, "grad")
    yy, y_result = prepare_input(y, "y")
    check_same_shape(g, yy, "grad", "y")
    result_dtype = np.result_type(g_result, y_result)
    compute = np.result_type(g.dtype, yy.dtype)
    if compute.itemsize > 8:
        ref = _reference.softmax_backward if op == _SOFTMAX_BACKWARD else _reference.log_softmax_backward
        return ref(g, yy, axis, out=out, num_threads=num_threads)
    axes = normalize_axes(axis, g.ndim)
    if out is not None:
        check_out(out, g.shape, result_dtype)
    shape = g.shape
    if g.size == 0:
        return _empty_result(shape, result_dtype, out)
    g = g.astype(compute, copy=False).reshape(shape or (1,))
    yy = yy.astype(compute, copy=False).reshape(g.shape)
    rows = _Rows(g.shape, axes)
    a, b = rows.read(g), rows.read(yy)
    target = None if out is None else out.reshape(g.shape)
    dst, direct = _output_rows(rows, target, [a, b], compute)
    _core._family_rows(op, a, b, None, None, dst, None, num_threads=threads)
    result = _deliver(rows, dst, direct, target, result_dtype, g)
    return out if out is not None else result.reshape(shape)


def softmax_backward(grad, y, axis=-1, *, out=None, num_threads=None):
    return _backward(_SOFTMAX_BACKWARD, grad, y, axis, out, num_threads)


def log_softmax_backward(grad, y, axis=-1, *, out=None, num_threads=None):
    return _backward(_LOG_SOFTMAX_BACKWARD, grad, y, axis, out, num_threads)


def cross_entropy(logits, target, axis=-1, *, reduction="mean", label_smoothing=0.0,
                  return_grad=False, num_threads=None, grad_out=None):
    threads = check_num_threads(num_threads)
    x, result_dtype, ax, t, is_index = _reference.check_cross_entropy_args(
        logits, target, axis, reduction, label_smoothing, return_grad, num_threads, grad_out)
    if x.dtype.itemsize > 8:
        return _reference.cross_entropy(x, t, axis, reduction=reduction, label_smoothing=label_smoothing,
                                        return_grad=return_grad, num_threads=num_threads,
                                        grad_out=grad_out)
    rows = _Rows(x.shape, (ax,))
    a = rows.read(x)
    index = np.ascontiguousarray(t.reshape(-1), dtype=np.int64) if is_index else None
    probs = None if is_index else rows.read(t)
    grad, direct = None, False
    if return_grad:
        # not in place: the kernel stores the exps in grad while it still
        # reads the row's logits and target
        grad, direct = _output_rows(rows, grad_out, [a, index if is_index else probs], x.dtype,
                                    in_place=False)
    row_out = np.zeros(rows.rows, np.float64)
    scale = 1.0 / rows.rows if reduction == "mean" and rows.rows else 1.0
    _core._family_rows(_CROSS_ENTROPY, a, probs, None, index, grad, row_out,
                       smoothing=float(label_smoothing), grad_scale=scale, num_threads=threads)
    loss = _reduced_loss(row_out, rows.other_shape, reduction, result_dtype)
    if not return_grad:
        return loss
    return loss, _deliver(rows, grad, direct, grad_out, result_dtype, x)


def _reduced_loss(row_losses, shape, reduction, result_dtype):
    if reduction == "none":
        return row_losses.astype(result_dtype).reshape(shape)
    total = np.sum(row_losses)
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # mean of nothing: NaN
        return result_dtype.type(total / row_losses.size if reduction == "mean" else total)
