"""The public functions: each one's signature, docstring and argument checks
here (softmax and log_softmax: in `_core.pyx`), the work in the one engine of
the compiled `_core`."""
from __future__ import annotations

import os

import numpy as np

from . import _core
from ._validation import (
    broadcast_where, check_cross_entropy_args, check_num_threads, check_out, check_same_shape,
    common_dtype, computed_by_numpy, masked_as_where, masked_reduction, masked_result, names_errors, normalize_axes,
    prepare_input, prepare_weights, reduced_shape, scalar_if_0d,
)
from ._version import __version__

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
    "cross_entropy", "show_config", "get_config",
]
__all__ += ["set_num_threads", "get_num_threads"]

# softmax and log_softmax are the compiled functions themselves (no Python
# wrapper on their call path); their signatures and docstrings are in _core.pyx.
softmax = _core.softmax
log_softmax = _core.log_softmax


@names_errors
def logsumexp(x, axis=-1, *, b=None, keepdims=False, return_sign=False, out=None, where=None,
              num_threads=None):
    """log(sum(b * exp(x))) over `axis`, without overflow or underflow.

    Parameters
    ----------
    x : array_like
        Input, with the dtype rules of `softmax` (complex input is computed
        by NumPy, as in SciPy: the imaginary part of the result is in
        (-pi, pi]).  A `numpy.ma.MaskedArray` acts as its data with its mask
        as `where`; the result is then a masked array, masked where a group
        is entirely masked.
    axis : int, tuple of int or None, default -1
        Axes to reduce; None means all.  `scipy.special.logsumexp` defaults
        to ``axis=None`` (`fastsoftmax.special.logsumexp` does too).
    b : array_like, optional
        Weights of the exponentials, broadcast with `x` as in SciPy; they
        may be negative.  An entry whose weight is 0 takes no part, whatever
        its x (NaN and +inf included).  Read next to `x` in the same pass.
    keepdims : bool, default False
        Keep the reduced axes with length 1.
    return_sign : bool, default False
        Return ``(log|total|, sign)``: the sign of the total is +1, -1, 0
        (a zero total, whose log is -inf) or NaN, in the result dtype (for
        complex input, the phase ``total / |total|``).  Without it a
        negative total gives NaN.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; it is returned.
        As in `softmax`, one whose elements share memory raises ValueError.
    where : array_like of bool, optional
        Broadcastable to `x`: only the entries where it is True are summed.
        A masked array raises TypeError.
    num_threads : int, optional
        Upper bound on the threads this call may use, as in `softmax`.

    Returns
    -------
    res : ndarray or NumPy scalar
        `x`'s shape without the reduced axes (or with them as 1); a NumPy
        scalar for a reduction to a 0-d result, unless `out` is given.
    sign : ndarray or NumPy scalar
        Only with ``return_sign=True``.

    Notes
    -----
    As `scipy.special.logsumexp`: NaN in a group gives NaN; otherwise a
    +inf gives +inf (with weights: of the sign of the weighted +inf terms,
    NaN when they have both signs); a group that is all -inf, empty, or
    entirely masked out gives -inf.  Computed as ``m + log1p(...)`` from
    the group maximum ``m`` in one pass after the maximum, accurate to a
    few ulp; with weights of both signs, to a few ulp of the sum of the
    absolute terms (a total that cancels loses what the cancellation
    loses).

    Examples
    --------
    >>> import numpy as np, fastsoftmax
    >>> float(fastsoftmax.logsumexp(np.array([1000.0, 1000.0])))
    1000.6931471805599
    >>> res, sign = fastsoftmax.logsumexp([1.0, 2.0], b=[1.0, -1.0], return_sign=True)
    >>> round(float(res), 12), float(sign)
    (1.541324854613, -1.0)
    """
    x, where, input_mask = masked_as_where(x, where)
    result = _unmasked_logsumexp(x, axis, b, keepdims, return_sign, out, where, num_threads)
    return masked_reduction(result, input_mask, axis, keepdims, return_sign)


def _unmasked_logsumexp(x, axis, b, keepdims, return_sign, out, where, num_threads):
    threads = check_num_threads(num_threads)
    arr, result_dtype = prepare_input(x, "logsumexp", complex_ok=True, native_half=True)
    arr, weights, result_dtype = prepare_weights(arr, result_dtype, b, "logsumexp")
    if computed_by_numpy(arr.dtype):
        return _reference().logsumexp(arr, axis, b=weights, keepdims=keepdims, return_sign=return_sign,
                                      out=out, where=where, num_threads=num_threads)
    axes = normalize_axes(axis, arr.ndim)
    mask = broadcast_where(where, arr.shape)
    shape = () if arr.ndim == 0 else reduced_shape(arr.shape, axes, keepdims)
    if out is not None:
        check_out(out, shape, result_dtype)
    if arr.size == 0:  # the log of an empty sum is -inf
        result = _core._deliver(np.full(shape, -np.inf, result_dtype), out, shape, result_dtype)
        return _with_sign(result, np.zeros(shape, result_dtype), return_sign, out)
    if arr.ndim == 0:
        arr = arr.reshape(1)
        mask = None if mask is None else mask.reshape(1)
        weights = None if weights is None else weights.reshape(1)
    if mask is not None and weights is not None:  # a masked-out entry weighs nothing
        weights, mask = np.where(mask, weights, 0).astype(arr.dtype), None
    groups = np.empty(reduced_shape(arr.shape, axes, True), np.float64)
    # without return_sign the kernels store a negative total's log as NaN
    signs = None if weights is None or not return_sign else np.empty_like(groups)
    # a mask is applied by staging x in a temporary with the masked-out entries at -inf
    staged = None if mask is None else _core._new_output(arr)
    _core._execute(_core.OPS["logsumexp"], arr, axes, staged, weights,
                   None if mask is None else mask.view(np.uint8), None, groups, threads=threads, group_sign=signs)
    result = _core._deliver(groups, out, shape, result_dtype)  # rounded once, into out's dtype where given
    if not return_sign:  # the signs of 10**6 groups took a third of logsumexp's time on rows of 10
        return _with_sign(result, None, False, out)
    if signs is None:  # a total of exps is positive, 0 (log: -inf) or NaN
        signs = np.where(groups == -np.inf, 0.0, np.where(np.isnan(groups), np.nan, 1.0))
    return _with_sign(result, signs.reshape(shape).astype(result_dtype), True, out)


def _with_sign(result, signs, return_sign, out):
    """logsumexp's return value: NumPy scalars for 0-d results unless out= is given."""
    if out is None:
        result = scalar_if_0d(result)
    return (result, scalar_if_0d(signs)) if return_sign else result


_BACKWARD_PARAMETERS = """
    Parameters
    ----------
    grad : array_like
        Gradient of the loss with respect to the forward output.
    y : array_like
        The forward output, ``fastsoftmax.{forward}(x, axis)`` (not `x`), of
        `grad`'s shape.
    axis : int, tuple of int or None, default -1
        The axis or axes the forward call used.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; it may be `grad`
        or `y` itself.  As in `softmax`, one whose elements share memory
        raises ValueError.
    num_threads : int, optional
        Upper bound on the threads this call may use, as in `softmax`.

    Returns
    -------
    ndarray
        The gradient with respect to `x`, of `grad`'s shape; its dtype is
        the common result dtype of `grad` and `y`.

    Masked arrays (`numpy.ma`) raise TypeError: a mask has no meaning for
    a gradient.
"""


def _backward(op: str, grad, y, axis, out, num_threads):
    threads = check_num_threads(num_threads)
    g, g_result = prepare_input(grad, op, "grad", native_half=True)
    yy, y_result = prepare_input(y, op, "y", native_half=True)
    check_same_shape(g, yy, "grad", "y")
    result_dtype = common_dtype(g_result, y_result)
    compute = common_dtype(g.dtype, yy.dtype)
    if computed_by_numpy(compute):
        return getattr(_reference(), op)(g, yy, axis, out=out, num_threads=num_threads)
    axes = normalize_axes(axis, g.ndim)
    shape = g.shape
    if out is not None:
        check_out(out, shape, result_dtype)
    if g.size == 0:
        return _core._deliver(np.empty(shape, result_dtype), out, shape, result_dtype)
    g = g.astype(compute, copy=False).reshape(shape or (1,))
    yy = yy.astype(compute, copy=False).reshape(g.shape)
    target = None if out is None else out.reshape(g.shape)
    dst = target if _core._writes_directly(target, g, (g, yy)) else _core._new_output(g)
    _core._execute(_core.OPS[op], g, axes, dst, yy, threads=threads)
    return _core._deliver(dst, out, shape, result_dtype)


@names_errors
def softmax_backward(grad, y, axis=-1, *, out=None, num_threads=None):
    return _backward("softmax_backward", grad, y, axis, out, num_threads)


softmax_backward.__doc__ = (
    """Backward pass of softmax: ``y * (grad - sum(grad * y))`` over `axis`.
"""
    + _BACKWARD_PARAMETERS.format(forward="softmax")
    + """
    Examples
    --------
    >>> import numpy as np, fastsoftmax
    >>> y = fastsoftmax.softmax(np.array([0.0, 0.0]))
    >>> fastsoftmax.softmax_backward(np.array([1.0, 0.0]), y)
    array([ 0.25, -0.25])
"""
)


@names_errors
def log_softmax_backward(grad, y, axis=-1, *, out=None, num_threads=None):
    return _backward("log_softmax_backward", grad, y, axis, out, num_threads)


log_softmax_backward.__doc__ = (
    """Backward pass of log_softmax: ``grad - exp(y) * sum(grad)`` over `axis`.
"""
    + _BACKWARD_PARAMETERS.format(forward="log_softmax")
    + """
    Contract: `y` holds log-probabilities (``y <= 0``, as log_softmax
    returns them).  For such `y`, and up to ``y = 64`` (float32) or 670
    (float64), the result is the reference's ``grad - exp(y) * sum(grad)``
    to a few ulp.  Beyond that, where ``exp(y)`` overflows in the kernel,
    the result is unspecified (it may be finite where NumPy's ``exp(y)``
    gives inf): `y` is not checked, as that would cost a pass over it.

    Examples
    --------
    >>> import numpy as np, fastsoftmax
    >>> y = fastsoftmax.log_softmax(np.array([0.0, 0.0]))
    >>> fastsoftmax.log_softmax_backward(np.array([1.0, 0.0]), y)
    array([ 0.5, -0.5])
"""
)


@names_errors
def cross_entropy(logits, target, axis=-1, *, reduction="mean", label_smoothing=0.0,
                  return_grad=False, num_threads=None, grad_out=None):
    """Cross-entropy loss of softmax(logits) against a target, fused.

    Parameters
    ----------
    logits : array_like
        Unnormalised scores, classes along `axis`, with the dtype rules of
        `softmax`; a masked array (`numpy.ma`) raises TypeError, as does a
        masked `target`.
    target : array_like
        Either integer class indices, of `logits`' shape without `axis`
        (each in ``[0, classes)``), or float probabilities of `logits`' shape.
    axis : int, default -1
        The class axis.
    reduction : {"mean", "sum", "none"}, default "mean"
        "none" returns one loss per sample (`logits`' shape without `axis`);
        "mean" averages over the samples (NaN when there are none).
    label_smoothing : float in [0, 1], default 0
        The target becomes ``(1 - label_smoothing) * target +
        label_smoothing / classes``, as in PyTorch.
    return_grad : bool, default False
        Also return d loss / d logits, ``(softmax(logits) - target)`` scaled
        by ``1 / samples`` for "mean", from the same pass over the data.
    num_threads : int, optional
        Upper bound on the threads this call may use, as in `softmax`.
    grad_out : ndarray, optional
        Only with ``return_grad=True``: an array of `logits`' shape and
        result dtype that receives the gradient, so that a training loop can
        reuse one buffer instead of a new array per call.  Any memory layout
        works; it may be `logits` itself (the gradient then overwrites the
        logits).  The gradient is written directly when `grad_out` can be
        viewed as rows contiguous along `axis` and shares no memory with the
        inputs, otherwise into a temporary that is then copied.

    Returns
    -------
    loss : scalar or ndarray
        In the result dtype of `logits`.
    grad : ndarray
        Only with ``return_grad=True``: of `logits`' shape; `grad_out`
        itself when given.

    Notes
    -----
    The loss of a sample is ``sum(q * (logsumexp(logits) - logits))`` with
    ``q`` the (smoothed) target, computed as a sum of non-negative terms
    (no cancellation); terms with ``q == 0`` count as 0 even at a -inf
    logit.  A sample whose logits hold NaN or +inf, or are all -inf, has a
    NaN loss and gradient.  Per-sample losses are summed in float64 in a
    fixed order, so the result does not depend on the thread count.

    Examples
    --------
    >>> import numpy as np, fastsoftmax
    >>> logits = np.array([[2.0, 0.0, 0.0]])
    >>> loss, grad = fastsoftmax.cross_entropy(logits, np.array([0]), return_grad=True)
    >>> round(float(loss), 6)
    0.239545
    """
    threads = check_num_threads(num_threads)
    x, result_dtype, ax, t, is_index = check_cross_entropy_args(
        logits, target, axis, reduction, label_smoothing, return_grad, num_threads, grad_out, native_half=True)
    if computed_by_numpy(x.dtype):
        return _reference().cross_entropy(x, t, axis, reduction=reduction, label_smoothing=label_smoothing,
                                          return_grad=return_grad, num_threads=num_threads, grad_out=grad_out)
    sample_shape = x.shape[:ax] + x.shape[ax + 1:]
    # every loss is written by the kernels when there are logits
    losses = (np.empty if x.size else np.zeros)(reduced_shape(x.shape, (ax,), True), np.float64)
    grad = None
    if return_grad:
        # never the logits or the target themselves: the kernels keep the
        # exps in the gradient while they still read both
        grad = grad_out if _core._writes_directly(grad_out, x, (x, t), in_place=False) else _core._new_output(x)
    samples = losses.size
    if x.size:
        # aligned, as the kernels read them (an array unpickled from bytes may not be)
        t = np.require(t, np.int64 if is_index else x.dtype, "A")
        _core._execute(_core.OPS["cross_entropy"], x, (ax,), grad, None if is_index else t, None,
                       np.expand_dims(t, ax) if is_index else None, losses,
                       None, float(label_smoothing), 1.0 / samples if reduction == "mean" else 1.0, threads)
    loss = _reduced_loss(losses.reshape(sample_shape), reduction, result_dtype)
    if not return_grad:
        return loss
    return loss, _core._deliver(grad, grad_out, x.shape, result_dtype)


def _reduced_loss(sample_losses, reduction, result_dtype):
    if reduction == "none":
        return sample_losses.astype(result_dtype)
    total = np.sum(sample_losses)  # pairwise, in a fixed order: no thread count in it
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):  # mean of nothing: NaN
        return result_dtype.type(total / sample_losses.size if reduction == "mean" else total)


def _reference():
    """fastsoftmax.reference, imported only for the input NumPy computes
    (extended precision, complex): the fast path does not depend on it."""
    from . import reference

    return reference


def get_config() -> dict:
    """The build and run-time configuration, as a dict."""
    return {
        "version": __version__,
        "kernel_variant": _core.active_variant(),
        "kernel_variants_compiled": _core.variants_compiled(),
        "kernel_variants_supported": _core.variants_supported(),
        "kernel_env_var": _core.KERNEL_ENV_VAR,
        "openmp": _core.openmp_enabled(),
        "default_num_threads": _core.default_num_threads(),
        "num_threads": get_num_threads(),
        "num_threads_source": _core._num_threads_source(),
        "num_threads_cap": _core._thread_cap_setting(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "usable_cpus": _core.usable_cpus(),
        "cpu_affinity": _core._cpu_limits()[0],
        "cgroup_cpu_limit": _core._cpu_limits()[1],
    }


def show_config() -> None:
    """Print `get_config()`, one item a line."""
    for key, value in get_config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:28s} {value}")


@names_errors
def set_num_threads(num_threads) -> None:
    """Cap the threads of every call made with ``num_threads=None``.

    Parameters
    ----------
    num_threads : int or None
        Calls that do not pass `num_threads` use at most this many threads
        (and never more than the OpenMP default of the calling thread, so
        ``OMP_NUM_THREADS`` and threadpoolctl limits still apply).  None
        removes the cap: the OpenMP default alone applies again.

    Raises
    ------
    ValueError
        If `num_threads` is not None or an int >= 1.

    Notes
    -----
    The setting is process-wide.  A call that passes ``num_threads=n`` uses
    up to `n` threads whatever this setting is (and never more than the CPUs
    the process may use).  In a child process started
    by ``fork()`` every call runs on the calling thread (GNU libgomp cannot
    start threads there once the parent has used them).

    Examples
    --------
    >>> import fastsoftmax
    >>> fastsoftmax.set_num_threads(1)
    >>> fastsoftmax.get_num_threads()
    1
    >>> fastsoftmax.set_num_threads(None)
    """
    _core.set_num_threads(num_threads)


def get_num_threads() -> int:
    """Threads a call made with ``num_threads=None`` may use from this thread.

    Returns
    -------
    int
        The OpenMP default of the calling thread (``omp_get_max_threads()``,
        which reflects ``OMP_NUM_THREADS`` and threadpoolctl limits), at most
        the CPUs the process may use (its affinity mask and cgroup CPU quota,
        read at import), capped by `set_num_threads`; 1 without OpenMP or in
        a forked child.  Small inputs use fewer threads than this.
        ``get_config()["num_threads_source"]`` says which of these sets it.
    """
    return _core.get_num_threads()
