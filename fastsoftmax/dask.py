"""fastsoftmax for Dask arrays: ``softmax``, ``log_softmax`` and ``logsumexp``.

Needs ``pip install "fastsoftmax[dask]"``.  Same arguments and results as the
NumPy functions of the same names (dtype rules, special values, empty
inputs), without ``out`` (a Dask array is not written in place) and without
``temperature``, ``base`` and ``where``.

- When every softmax axis is one chunk, each block is computed by the fused
  kernel in one ``map_blocks`` pass.
- When an axis spans several chunks, nothing is rechunked: a first pass takes
  per block the maximum ``m`` and ``log s = log(sum(exp(x - m)))`` (from the
  kernel: ``-max(log_softmax(block))``), those small statistics are combined
  in float64 (``M = max m``, ``log S = log(sum exp(m - M + log s))``), and a
  second ``map_blocks`` pass runs the kernel on each block and applies its
  block's correction ``c = (m - M) + (log s - log S)``, kept as a
  double-double (``m - M`` is carried exactly): softmax is
  ``softmax(block) * exp(c)``, log_softmax is ``log_softmax(block) + c``,
  with c rounded once to the result's precision: one or two roundings more
  than the kernel's own result.
  The input's graph is evaluated once for each pass (it is cloned), so that
  no block has to stay in memory between the passes: ``persist()`` the input
  first if it is expensive to compute and fits in (cluster) memory.
"""
from __future__ import annotations

import numpy as np

try:
    import dask.array as da
    from dask.graph_manipulation import clone
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('fastsoftmax.dask needs Dask: pip install "fastsoftmax[dask]"') from exc

from . import _api
from ._validation import check_num_threads, normalize_axes, prepare_input

__all__ = ["softmax", "log_softmax", "logsumexp"]


def _as_dask(x):
    return x if isinstance(x, da.Array) else da.asarray(x)


def _result_dtype(name, dtype, **kwargs):
    """The dtype the NumPy function returns for `dtype`; TypeError for the
    dtypes the kernels do not compute (the blocks are combined from the
    kernels' per-block statistics)."""
    prepare_input(np.zeros(0, dtype), name)
    return np.asarray(getattr(_api, name)(np.zeros(1, dtype), **kwargs)).dtype


def _single_chunk(x, axes):
    return all(len(x.chunks[a]) == 1 for a in axes)


def _stats_chunks(x, axes):
    """Chunks of an array holding one value per block along `axes`."""
    return tuple((1,) * len(c) if d in axes else c for d, c in enumerate(x.chunks))


def _block_stats(block, axes, num_threads):
    """(2, ...) float64: the block's maximum and log(sum(exp(x - max))) over
    `axes` (keepdims); -inf and -inf for an empty or all -inf block."""
    shape = tuple(1 if d in axes else n for d, n in enumerate(block.shape))
    if block.size == 0:
        return np.full((2,) + shape, -np.inf)
    m = np.max(block, axis=axes, keepdims=True).astype(np.float64)
    with np.errstate(invalid="ignore"):
        log_s = -np.max(_api.log_softmax(block, axes, num_threads=num_threads), axis=axes,
                        keepdims=True).astype(np.float64)
    log_s[m == -np.inf] = -np.inf  # contributes exp(-inf) = 0 to the total
    return np.stack([m.reshape(shape), log_s.reshape(shape)])


def _two_sum(a, b):
    """s, r with s = fl(a + b) and s + r = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _combine(stats, axes):
    """From the statistics of every block of a group (all blocks along `axes`
    in one chunk: one value per block, small), per block: the correction
    c = (m - M) + (log s - log S) as a double-double (c_hi, c_lo), since
    m - M can be large and exp(c) would otherwise lose |c| eps; and whether
    the block is all -inf in a group that is not."""
    m, log_s = stats[0], stats[1]
    with np.errstate(invalid="ignore", over="ignore"):
        big_m = np.max(m, axis=axes, keepdims=True)
        log_total = np.log(np.sum(np.exp((m - big_m) + log_s), axis=axes, keepdims=True))
        d, d_err = _two_sum(m, -big_m)
        c_hi, c_err = _two_sum(d, log_s - log_total)
        c_lo = np.where(np.isfinite(c_hi), d_err + c_err, 0.0)
    masked = (m == -np.inf) & (big_m > -np.inf)
    return np.stack([c_hi, c_lo, masked.astype(np.float64)])


def _normalise(block, c_hi, c_lo, masked, log, axes, num_threads, dtype):
    """One block of the result from the kernel and its block's correction:
    softmax(block) * exp(c) or log_softmax(block) + c, the correction
    rounded once to the result's precision and applied in place."""
    if block.size == 0:
        return np.empty(block.shape, dtype)
    fn = _api.log_softmax if log else _api.softmax
    y = fn(block, axes, num_threads=num_threads)
    compute = np.float32 if y.dtype == np.float16 else y.dtype
    y = y.astype(compute, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        if log:
            y += (c_hi + c_lo).astype(compute)
        else:
            y *= (np.exp(c_hi) * (1.0 + c_lo)).astype(compute)
    np.copyto(y, -np.inf if log else 0.0, where=masked != 0)  # all -inf block, finite group
    return y.astype(dtype, copy=False)


def _softmax_or_log_softmax(log, x, axis, num_threads):
    check_num_threads(num_threads)
    x = _as_dask(x)
    name = "log_softmax" if log else "softmax"
    dtype = _result_dtype(name, x.dtype)
    axes = normalize_axes(axis, x.ndim)
    fn = getattr(_api, name)
    if x.ndim == 0 or x.size == 0 or _single_chunk(x, axes):
        return x.map_blocks(fn, axis if x.ndim == 0 else axes, num_threads=num_threads, dtype=dtype)
    stats = x.map_blocks(_block_stats, axes, num_threads, dtype=np.float64, new_axis=0,
                         chunks=((2,),) + _stats_chunks(x, axes))
    whole = stats.rechunk({a + 1: -1 for a in axes})  # one value per block: small
    corrections = whole.map_blocks(_combine, axes, dtype=np.float64,
                                   chunks=((3,),) + whole.chunks[1:])
    corrections = corrections.rechunk(((3,),) + stats.chunks[1:])  # one value per block of x
    return da.map_blocks(_normalise, clone(x), corrections[0], corrections[1], corrections[2], log,
                         axes, num_threads, dtype,
                         dtype=dtype, chunks=x.chunks, meta=np.empty((0,) * x.ndim, dtype))


def softmax(x, axis=-1, *, num_threads=None):
    """Softmax of a Dask array over `axis`; see `fastsoftmax.softmax`.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input; NumPy inputs are wrapped with ``dask.array.asarray``.
    axis : int, tuple of int or None, default -1
        Axis or axes of the softmax, which may span any number of chunks.
    num_threads : int, optional
        Thread cap of each block's kernel call (see `fastsoftmax.softmax`).

    Returns
    -------
    dask.array.Array
        Same shape and chunks as `x`; dtype as `fastsoftmax.softmax`.

    Notes
    -----
    Axes within one chunk: one ``map_blocks`` pass.  Otherwise two passes over
    the input with an exact combination of per-block statistics in between
    (module docstring); the axes are never rechunked.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask
    >>> x = da.random.default_rng(0).standard_normal((1000, 1000), chunks=(250, 250))
    >>> float(fastsoftmax.dask.softmax(x, axis=1).sum().compute())  # doctest: +SKIP
    1000.0
    """
    return _softmax_or_log_softmax(False, x, axis, num_threads)


def log_softmax(x, axis=-1, *, num_threads=None):
    """Log-softmax of a Dask array over `axis`; see `fastsoftmax.log_softmax`.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input; NumPy inputs are wrapped with ``dask.array.asarray``.
    axis : int, tuple of int or None, default -1
        Axis or axes of the log-softmax, which may span any number of chunks.
    num_threads : int, optional
        Thread cap of each block's kernel call.

    Returns
    -------
    dask.array.Array
        Same shape and chunks as `x`; dtype as `fastsoftmax.log_softmax`.
    """
    return _softmax_or_log_softmax(True, x, axis, num_threads)


def logsumexp(x, axis=-1, *, keepdims=False, num_threads=None):
    """``log(sum(exp(x)))`` of a Dask array over `axis`; see
    `fastsoftmax.logsumexp` (semantics of `scipy.special.logsumexp`).

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input; NumPy inputs are wrapped with ``dask.array.asarray``.
    axis : int, tuple of int or None, default -1
        Axis or axes reduced, which may span any number of chunks.
    keepdims : bool, default False
        Keep the reduced axes with length 1.
    num_threads : int, optional
        Thread cap of each block's kernel call.

    Returns
    -------
    dask.array.Array
        The reduction; dtype as `fastsoftmax.logsumexp`.

    Notes
    -----
    Each block is reduced by the kernel; the per-block results (one value per
    block and group, a small array) are then reduced by the kernel again.
    """
    check_num_threads(num_threads)
    x = _as_dask(x)
    dtype = _result_dtype("logsumexp", x.dtype)
    axes = normalize_axes(axis, x.ndim)
    if x.ndim == 0:
        return x.map_blocks(_api.logsumexp, axis, keepdims=keepdims, num_threads=num_threads,
                            dtype=dtype)
    per_block = x.map_blocks(_block_logsumexp, axes, num_threads, dtype,
                             dtype=dtype, chunks=_stats_chunks(x, axes))
    if not _single_chunk(x, axes):
        per_block = per_block.rechunk({a: -1 for a in axes})  # one value per block: small
        per_block = per_block.map_blocks(_block_logsumexp, axes, num_threads, dtype, dtype=dtype,
                                         chunks=_stats_chunks(per_block, axes))
    return per_block if keepdims else per_block.squeeze(axis=axes)


def _block_logsumexp(block, axes, num_threads, dtype):
    if block.size == 0:
        shape = tuple(1 if d in axes else n for d, n in enumerate(block.shape))
        return np.full(shape, -np.inf, dtype)
    return np.asarray(_api.logsumexp(block, axes, keepdims=True, num_threads=num_threads),
                      dtype=dtype)
