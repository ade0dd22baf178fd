"""Drop-in for `scipy.special`'s softmax, log_softmax and logsumexp.

``import fastsoftmax.special as special`` in place of ``import
scipy.special as special``: the same signatures and defaults (``axis=None``),
and SciPy's results for every input SciPy accepts (dtypes, 0-d results as
NumPy scalars, special values, empty inputs, errors), computed by
fastsoftmax's kernels for real input and by NumPy for complex and extended
precision input.  Only the semantics that differ from the main API are
adapted here:

- `log_softmax` of a group that holds +inf and no NaN: SciPy gives NaN at the
  +inf entries and -inf elsewhere (fastsoftmax: NaN throughout);
- a reduction over an axis of length 0 in `softmax` and `log_softmax` raises
  ValueError, as NumPy's maximum does in SciPy;
- `logsumexp` treats a 0-d input as 1-d (``keepdims=True`` gives shape
  ``(1,)``);
- 0-d results are NumPy scalars (also of `softmax`, whose main-API result
  has x's shape).

Values agree with SciPy's to within rounding, fastsoftmax's being the more
accurate (e.g. ``log_softmax`` near 0, weighted sums that cancel).
"""
from __future__ import annotations

import numpy as np

from . import _api
from ._validation import names_errors, normalize_axes, scalar_if_0d

__all__ = ["softmax", "log_softmax", "logsumexp"]


@names_errors
def softmax(x, axis=None):
    """`scipy.special.softmax`: ``exp(x) / sum(exp(x))`` over `axis` (None:
    all axes), on fastsoftmax's kernels; see `fastsoftmax.softmax`."""
    x = _checked_input(x, axis)
    return scalar_if_0d(_api.softmax(x, axis))


@names_errors
def log_softmax(x, axis=None):
    """`scipy.special.log_softmax`: ``log(softmax(x))`` over `axis` (None:
    all axes), on fastsoftmax's kernels; see `fastsoftmax.log_softmax`.
    A group holding +inf (and no NaN) gives NaN at its +inf entries and
    -inf elsewhere, as in SciPy."""
    x = _checked_input(x, axis)
    y = _api.log_softmax(x, axis)
    if y.dtype.kind == "f" and y.ndim and y.size and np.isnan(np.min(y)):
        y = _scipy_infinite_groups(x, y, normalize_axes(axis, y.ndim))
    return scalar_if_0d(y)


@names_errors
def logsumexp(a, axis=None, b=None, keepdims=False, return_sign=False):
    """`scipy.special.logsumexp`: ``log(sum(b * exp(a)))`` over `axis`
    (None: all axes), on fastsoftmax's kernels (the weights are read in the
    same pass); see `fastsoftmax.logsumexp` for the semantics of `b` and
    `return_sign`, which are SciPy's."""
    a = np.atleast_1d(np.asarray(a))
    if b is not None:
        b = np.atleast_1d(np.asarray(b))
    return _api.logsumexp(a, axis, b=b, keepdims=keepdims, return_sign=return_sign)


def _checked_input(x, axis):
    """x as an array; ValueError for a reduction over an axis of length 0
    (the maximum of nothing), as NumPy raises in SciPy."""
    x = np.asarray(x)
    axes = normalize_axes(axis, x.ndim)
    if x.ndim and any(x.shape[d] == 0 for d in axes):
        raise ValueError("zero-size array to reduction operation maximum which has no identity")
    return x


def _scipy_infinite_groups(x, y, axes):
    """SciPy's log_softmax of the groups that hold +inf and no NaN: NaN at
    the +inf entries (inf - inf), -inf elsewhere."""
    x = np.asarray(x)
    x = x.reshape(y.shape)
    posinf = np.isposinf(x)
    infinite = np.any(posinf, axis=axes, keepdims=True) & ~np.any(np.isnan(x), axis=axes, keepdims=True)
    return np.where(infinite, np.where(posinf, np.nan, -np.inf), y).astype(y.dtype, copy=False)
