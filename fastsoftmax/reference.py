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

from ._validation import check_num_threads, check_out, normalize_axes, prepare_input

__all__ = ["softmax", "log_softmax"]


def _shifted(arr, axes):
    """x - max(x) over `axes`, and exp of it."""
    shifted = arr - np.max(arr, axis=axes, keepdims=True)
    return shifted, np.exp(shifted)


def _softmax_family(compute, x, axis, out, num_threads):
    check_num_threads(num_threads)
    arr, result_dtype = prepare_input(x)
    axes = normalize_axes(axis, arr.ndim)
    if out is not None:
        check_out(out, arr.shape, result_dtype)
    if arr.size == 0:
        result = np.empty(arr.shape, dtype=result_dtype)
    else:
        flat = arr.reshape(1) if arr.ndim == 0 else arr
        with np.errstate(all="ignore"):
            result = compute(flat, axes).reshape(arr.shape).astype(result_dtype, copy=False)
    if out is None:
        return result
    np.copyto(out, result)
    return out


def _softmax(arr, axes):
    _, e = _shifted(arr, axes)
    return e / np.sum(e, axis=axes, keepdims=True)


def _log_softmax(arr, axes):
    shifted, e = _shifted(arr, axes)
    return shifted - np.log(np.sum(e, axis=axes, keepdims=True))


def softmax(x, axis=-1, *, out=None, num_threads=None):
    """Reference softmax; see `fastsoftmax.softmax`."""
    return _softmax_family(_softmax, x, axis, out, num_threads)


def log_softmax(x, axis=-1, *, out=None, num_threads=None):
    """Reference log_softmax; see `fastsoftmax.log_softmax`."""
    return _softmax_family(_log_softmax, x, axis, out, num_threads)
