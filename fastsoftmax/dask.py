"""fastsoftmax for Dask arrays: the whole family, lazily.

Needs ``pip install "fastsoftmax[dask]"``.  Same arguments and results as the
NumPy functions of the same names (dtype rules, special values, empty
inputs), without ``out``/``grad_out`` (a Dask array is not written in place).
Every block is computed by the NumPy-level function, so the engine does the
work.

How softmax axes that span several chunks are computed, by the size of one
group (the entries a softmax normalises together) in bytes of the input
dtype against Dask's ``array.chunk-size`` setting (128 MiB by default; the
*limit*, `group_limit()`):

- **Group within the limit**, softmax and log_softmax: the kernel runs once
  on each block; the block's scaled maximum ``m`` and
  ``log s = log(sum(exp(z - m)))`` are read off its result (softmax: the
  result at the maximum is ``1 / s``; log_softmax: ``-log s``); a group's
  statistics are combined in float64 (``M = max m``,
  ``log S = log(sum exp(m - M + log s))``) and each block's result is
  rescaled in place by its correction ``c = (m - M) + (log s - log S)``,
  kept as a double-double: ``softmax(block) * exp(c)``,
  ``log_softmax(block) + c`` (one or two roundings more than the kernel's
  own result).  Each input block is evaluated once; the kernel's results of
  the blocks sharing groups (a *block row*) wait for their statistics, as
  the input blocks of a block row wait for their maximum in Dask's own
  composition.  The result keeps the input's chunks: cutting the other
  axes smaller would not hold less, since each input block is produced
  whole, and Dask copies every part it cuts out of a block (one more pass
  and allocation per block).  The backward passes and ``cross_entropy``
  merge the softmax axes into one chunk instead (``rechunk`` along them;
  the other axes cut the same way), then one ``map_blocks`` pass.
- **Group over the limit**: softmax and log_softmax run the same passes on
  a clone of the input graph for the output, so that no block waits in
  memory for the statistics: **the input is evaluated twice** (data read
  from storage is read twice; ``persist()`` it first if it fits in cluster
  memory).  The backward passes fall back to Dask's own composition, and
  ``cross_entropy`` raises ``ValueError``.

Compared on large-array workloads (2 GiB generated and in memory, rows over
4 chunks, threaded scheduler, a shared 2-CPU machine), the kernel-once plan
beat merging the axis into blocks of 512 or 1024 whole rows, by ``rechunk``
or by one task per block row that concatenates its blocks and runs the
kernel in place (each copies the input once more and holds more: 0.75-1.2
GiB against 0.5), and the clone (which generates the input twice).  Each
block's rescale task combines its row's statistics itself (one value per
block), so no task stands between the two passes.

``logsumexp`` never merges: each block is reduced by the kernel and the
per-block results (one value per block and group) are reduced again.

An axis with unknown chunk sizes (``nan``, e.g. after boolean indexing) can be
a softmax axis only when it is one chunk; the other axes may be unknown.
"""
from __future__ import annotations

import math
import operator

import numpy as np

try:
    import dask
    import dask.array as da
    from dask.array.core import normalize_chunks
    from dask.graph_manipulation import clone
    from dask.utils import parse_bytes
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError('fastsoftmax.dask needs Dask: pip install "fastsoftmax[dask]"') from exc

from . import _api
from ._validation import check_int_axis, names_errors, normalize_axes

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
    "cross_entropy",
]


# ---------------------------------------------------------------- the plan

def group_limit() -> int:
    """Bytes a softmax group, and the blocks sharing groups together, may
    take: Dask's ``array.chunk-size`` setting."""
    return parse_bytes(dask.config.get("array.chunk-size"))


def _as_dask(x):
    return x if isinstance(x, da.Array) else da.asarray(x)


def _known(n) -> bool:
    return not math.isnan(n)


def _single_chunk(x, axes):
    return all(len(x.chunks[a]) == 1 for a in axes)


def _group_bytes(x, axes):
    """Bytes of one group of `x` over `axes`, which must have known lengths."""
    for a in axes:
        if not _known(x.shape[a]):
            raise ValueError(f"axis {a} has unknown chunk sizes and spans "
                             f"{len(x.chunks[a])} chunks; call x.compute_chunk_sizes() first")
    return x.dtype.itemsize * math.prod(x.shape[a] for a in axes)


def _group_chunks(x, axes):
    """Chunks of `x` in which the blocks that share groups (a *block row*:
    one block along the other axes, all blocks along `axes`) take at most
    the limit together: the other axes are cut smaller when needed, `axes`
    keep their chunks.  None when one group alone is over the limit."""
    limit = group_limit()
    group = _group_bytes(x, axes)
    if group > limit:
        return None
    others = [d for d in range(x.ndim) if d not in axes and _known(x.shape[d])]
    block_row = group * math.prod(max(x.chunks[d], default=0) for d in others)
    if block_row <= limit:
        return x.chunks
    cut = normalize_chunks(tuple("auto" for _ in others), tuple(x.shape[d] for d in others),
                           limit=limit // group * x.dtype.itemsize, dtype=x.dtype,
                           previous_chunks=tuple(x.chunks[d] for d in others))
    chunks = list(x.chunks)
    for d, c in zip(others, cut):
        chunks[d] = c
    return tuple(chunks)


def _merged(arrays, axes):
    """`arrays` (x's shape) with `axes` in one chunk and each block within the
    limit (the block rows of `_group_chunks`), or None when a group is over
    the limit."""
    x = arrays[0]
    if _single_chunk(x, axes):
        return _aligned(arrays, x.chunks)
    chunks = _group_chunks(x, axes)
    if chunks is None:
        return None
    merged = tuple((x.shape[d],) if d in axes else c for d, c in enumerate(chunks))
    return _aligned(arrays, merged)


def _rechunked(x, chunks):
    """`x` with `chunks`; unchanged when it has them (unknown sizes match)."""
    return x if repr(x.chunks) == repr(chunks) else x.rechunk(chunks)


def _aligned(arrays, chunks):
    """`arrays`, each broadcastable to the first one's shape, with `chunks`
    along the axes they share with it (an axis of length 1 stays one chunk:
    ``map_blocks`` broadcasts it)."""
    ndim = arrays[0].ndim
    return [_rechunked(a, tuple((1,) if n == 1 else chunks[ndim - a.ndim + k]
                                for k, n in enumerate(a.shape)))
            for a in arrays]


def _probed_dtype(fn, ndim, dtype, **kwargs):
    """The dtype `fn` returns for input of `dtype`; calling it on a tiny
    array also runs every argument check of the NumPy function.  Complex
    input, which the NumPy functions compute, is refused: the per-block
    statistics combined here are those of real numbers."""
    if np.dtype(dtype).kind == "c":
        raise TypeError("complex input is not supported (the NumPy functions compute it)")
    return np.asarray(fn(np.zeros((1,) * ndim, dtype), **kwargs)).dtype


def _mask(where, x):
    """`where` (Dask or NumPy) as a boolean Dask array broadcastable to x,
    chunked like x."""
    mask = _as_dask(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"where must be a boolean array, got dtype {mask.dtype}")
    pairs = zip(mask.shape[::-1], x.shape[::-1])
    if mask.ndim > x.ndim or any(m not in (1, n) and _known(m) and _known(n) for m, n in pairs):
        raise ValueError(f"where has shape {mask.shape}, which does not broadcast to {x.shape}")
    return _aligned([x, mask], x.chunks)[1]


# ---------------------------------------------------- softmax, log_softmax

def _forward_block(block, mask=None, *, fn, axes, kwargs):
    return fn(block, axes, where=mask, **kwargs)


def _softmax_or_log_softmax(name, x, axis, num_threads, temperature, base, where):
    x = _as_dask(x)
    fn = getattr(_api, name)
    kwargs = {"num_threads": num_threads, "temperature": temperature, "base": base}
    probe_mask = None if where is None else np.ones((1,) * x.ndim, bool)
    dtype = _probed_dtype(fn, x.ndim, x.dtype, axis=axis if x.ndim else None, where=probe_mask,
                          **kwargs)
    if x.ndim == 0:
        return x.map_blocks(fn, None, where=where, dtype=dtype, **kwargs)
    axes = normalize_axes(axis, x.ndim)
    arrays = [x] if where is None else [x, _mask(where, x)]
    meta = np.empty((0,) * x.ndim, dtype)
    if x.size == 0 or _single_chunk(x, axes):
        return da.map_blocks(_forward_block, *arrays, fn=fn, axes=axes, kwargs=kwargs, dtype=dtype,
                             meta=meta)
    return _split_axes(name == "log_softmax", arrays, axes, kwargs, dtype)


def _stats_chunks(x, axes):
    """Chunks of an array holding one value per block along `axes`."""
    return tuple((1,) * len(c) if d in axes else c for d, c in enumerate(x.chunks))


def _scaled_max(block, axes, mask, temperature, base):
    """max over `axes` of the scaled block x / temperature or x ln(base), in
    float64, over the entries `mask` keeps (-inf when none)."""
    data = block.astype(np.float64) if block.dtype.kind != "f" else block
    if base is not None and base < 1:
        low = np.min(data, axis=axes, keepdims=True, where=True if mask is None else mask,
                     initial=np.inf)
        return np.float64(low) * np.log(np.float64(base))
    high = np.max(data, axis=axes, keepdims=True, where=True if mask is None else mask,
                  initial=-np.inf).astype(np.float64)
    if temperature is not None:
        return high / temperature
    return high if base is None else high * np.log(np.float64(base))


def _kernel_and_stats(block, mask=None, *, log, axes, kwargs):
    """The kernel's result on one block, and (2, ...) float64 statistics over
    `axes` (keepdims): the block's scaled maximum m and
    log s = log(sum(exp(z - m))), read off the result at the maximum
    (softmax 1 / s, log_softmax -log s); -inf and -inf for a block with
    nothing kept."""
    fn = _api.log_softmax if log else _api.softmax
    y = fn(block, axes, where=mask, **kwargs)
    shape = (2,) + tuple(1 if d in axes else n for d, n in enumerate(block.shape))
    if block.size == 0:
        return y, np.full(shape, -np.inf)
    m = _scaled_max(block, axes, mask, kwargs["temperature"], kwargs["base"])
    with np.errstate(invalid="ignore", divide="ignore"):
        peak = np.max(y, axis=axes, keepdims=True).astype(np.float64)
        log_s = -peak if log else -np.log(peak)
    log_s[m == -np.inf] = -np.inf  # contributes exp(-inf) = 0 to the total
    return y, np.stack([m, log_s]).reshape(shape)


def _two_sum(a, b):
    """s, r with s = fl(a + b) and s + r = a + b exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


def _correction(own, group, axes):
    """From a block's statistics `own` and those of every block of its
    groups `group` (all blocks along `axes` in one array: one value per
    block, small): the block's correction c = (m - M) + (log s - log S) as
    a double-double (c_hi, c_lo), since m - M can be large and exp(c) would
    otherwise lose |c| eps; and whether the block has nothing kept in a
    group that has."""
    m, log_s = own[0], own[1]
    with np.errstate(invalid="ignore", over="ignore"):
        big_m = np.max(group[0], axis=axes, keepdims=True)
        log_total = np.log(np.sum(np.exp((group[0] - big_m) + group[1]), axis=axes,
                                  keepdims=True))
        d, d_err = _two_sum(m, -big_m)
        c_hi, c_err = _two_sum(d, log_s - log_total)
        c_lo = np.where(np.isfinite(c_hi), d_err + c_err, 0.0)
    empty = (m == -np.inf) & (big_m > -np.inf)
    return c_hi, c_lo, empty


def _rescale(y, own, group, *, axes, log, result_dtype):
    """A block of the kernel's result corrected for its whole group:
    softmax(block) * exp(c) or log_softmax(block) + c, the correction
    rounded once to the result's precision and applied in place (the block
    has no other reader by then)."""
    c_hi, c_lo, empty = _correction(own, group, axes)
    compute = np.float32 if y.dtype == np.float16 else y.dtype
    y = y.astype(compute, copy=False)
    with np.errstate(invalid="ignore", over="ignore"):
        if log:
            y += (c_hi + c_lo).astype(compute)
        else:
            y *= (np.exp(c_hi) * (1.0 + c_lo)).astype(compute)
    np.copyto(y, -np.inf if log else 0.0, where=empty)  # nothing kept, group has some
    return y.astype(result_dtype, copy=False)


def _kernel_pass(log, arrays, axes, kwargs, dtype):
    """The kernel's result on every block and the blocks' statistics, from
    one task per block."""
    x = arrays[0]
    meta = np.empty((0,) * x.ndim, dtype)
    pairs = da.map_blocks(_kernel_and_stats, *arrays, log=log, axes=axes, kwargs=kwargs,
                          dtype=dtype, meta=meta)
    y = pairs.map_blocks(operator.getitem, 0, dtype=dtype, meta=meta)
    stats = pairs.map_blocks(operator.getitem, 1, dtype=np.float64, new_axis=0,
                             chunks=((2,),) + _stats_chunks(x, axes), meta=meta.astype(np.float64))
    return y, stats


def _split_axes(log, arrays, axes, kwargs, dtype):
    """softmax or log_softmax over axes that span several chunks: the kernel
    on each block, the statistics of a group's blocks combined, each block
    rescaled.  The kernel's blocks wait for their group's statistics when a
    group is within the limit; otherwise the input is cloned and the kernel
    run again on the clone for the output."""
    x = arrays[0]
    held = _group_bytes(x, axes) <= group_limit()
    y, stats = _kernel_pass(log, arrays, axes, kwargs, dtype)
    if not held:
        fresh = clone(*arrays) if len(arrays) > 1 else (clone(x),)
        y, _ = _kernel_pass(log, fresh, axes, kwargs, dtype)
    # each rescale task gets its block's statistics and its block row's (one
    # value per block, small) and combines them itself: no task between the
    # two passes
    out = tuple(f"d{d}" for d in range(x.ndim))
    row = tuple(f"g{d}" if d in axes else f"d{d}" for d in range(x.ndim))
    return da.blockwise(_rescale, out, y, out, stats, ("s",) + out, stats, ("s",) + row,
                        concatenate=True, align_arrays=False, axes=axes, log=log,
                        result_dtype=dtype, dtype=dtype, meta=np.empty((0,) * x.ndim, dtype))


@names_errors
def softmax(x, axis=-1, *, num_threads=None, temperature=None, base=None, where=None):
    """Softmax of a Dask array over `axis`; see `fastsoftmax.softmax`.

    Parameters
    ----------
    x : dask.array.Array or array_like
        Input; NumPy inputs are wrapped with ``dask.array.asarray``.
    axis : int, tuple of int or None, default -1
        Axis or axes of the softmax, which may span any number of chunks.
    num_threads : int, optional
        Thread cap of each block's kernel call (see `fastsoftmax.softmax`).
    temperature, base : float, optional
        As in `fastsoftmax.softmax` (at most one).
    where : dask.array.Array or array_like of bool, optional
        Broadcastable to `x`: the entries the softmax keeps (others give 0).

    Returns
    -------
    dask.array.Array
        Same shape and chunks as `x`; dtype as `fastsoftmax.softmax`.

    Examples
    --------
    >>> import dask.array as da, fastsoftmax.dask
    >>> x = da.random.default_rng(0).standard_normal((1000, 1000), chunks=(250, 250))
    >>> float(fastsoftmax.dask.softmax(x, axis=1).sum().compute())  # doctest: +SKIP
    1000.0
    """
    return _softmax_or_log_softmax("softmax", x, axis, num_threads, temperature, base, where)


@names_errors
def log_softmax(x, axis=-1, *, num_threads=None, temperature=None, base=None, where=None):
    """Log-softmax of a Dask array over `axis`; see `fastsoftmax.log_softmax`.

    Arguments and result as `softmax` (entries `where` drops give -inf).
    """
    return _softmax_or_log_softmax("log_softmax", x, axis, num_threads, temperature, base, where)


# ---------------------------------------------------------------- logsumexp

def _block_logsumexp(block, mask=None, *, axes, num_threads, result_dtype):
    if block.size == 0:
        shape = tuple(1 if d in axes else n for d, n in enumerate(block.shape))
        return np.full(shape, -np.inf, result_dtype)
    return np.asarray(_api.logsumexp(block, axes, keepdims=True, where=mask,
                                     num_threads=num_threads), dtype=result_dtype)


@names_errors
def logsumexp(x, axis=-1, *, keepdims=False, where=None, num_threads=None):
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
    where : dask.array.Array or array_like of bool, optional
        Broadcastable to `x`: only the entries where it is True are summed.
    num_threads : int, optional
        Thread cap of each block's kernel call.

    Returns
    -------
    dask.array.Array
        The reduction; dtype as `fastsoftmax.logsumexp`.

    Notes
    -----
    Each block is reduced by the kernel; the per-block results (one value per
    block and group, a small array) are then reduced by the kernel again: one
    rounding to the result dtype more than the NumPy function when the axes
    span several chunks.
    """
    x = _as_dask(x)
    probe_mask = None if where is None else np.ones((1,) * x.ndim, bool)
    dtype = _probed_dtype(_api.logsumexp, x.ndim, x.dtype, axis=axis if x.ndim else None,
                          where=probe_mask, num_threads=num_threads)
    if x.ndim == 0:
        return x.map_blocks(_api.logsumexp, None, where=where, num_threads=num_threads,
                            dtype=dtype)
    axes = normalize_axes(axis, x.ndim)
    arrays = [x] if where is None else [x, _mask(where, x)]
    per_block = da.map_blocks(_block_logsumexp, *arrays, axes=axes, num_threads=num_threads,
                              result_dtype=dtype, dtype=dtype, chunks=_stats_chunks(x, axes),
                              meta=np.empty((0,) * x.ndim, dtype))
    if not _single_chunk(x, axes):
        per_block = per_block.rechunk({a: -1 for a in axes})  # one value per block: small
        per_block = per_block.map_blocks(_block_logsumexp, axes=axes, num_threads=num_threads,
                                         result_dtype=dtype, dtype=dtype, chunks=_stats_chunks(per_block, axes))
    return per_block if keepdims else per_block.squeeze(axis=axes)


# ---------------------------------------------------------- backward passes

def _backward_block(grad, y, *, fn, axes, num_threads):
    return fn(grad, y, axes, num_threads=num_threads)


def _composed_backward(name, grad, y, axes, dtype):
    """Dask's own composition, for groups over the limit."""
    g, yy = grad.astype(dtype), y.astype(dtype)
    if name == "softmax_backward":
        return yy * (g - (g * yy).sum(axis=axes, keepdims=True))
    return g - da.exp(yy) * g.sum(axis=axes, keepdims=True)


def _backward(name, grad, y, axis, num_threads):
    grad, y = _as_dask(grad), _as_dask(y)
    if repr(grad.shape) != repr(y.shape):  # unknown lengths (nan) match
        raise ValueError(f"y has shape {y.shape}, expected the shape "
                         f"of grad {grad.shape}")
    fn = getattr(_api, name)
    probe = np.zeros((1,) * grad.ndim, grad.dtype)
    dtype = np.asarray(fn(probe, probe.astype(y.dtype), axis if grad.ndim else None,
                          num_threads=num_threads)).dtype
    axes = normalize_axes(axis, grad.ndim)
    whole = [grad, y] if grad.size == 0 or grad.ndim == 0 else _merged([grad, y], axes)
    if whole is None:
        return _composed_backward(name, grad, y, axes, dtype)
    return da.map_blocks(_backward_block, *whole, fn=fn, axes=axes if grad.ndim else None,
                         num_threads=num_threads, dtype=dtype,
                         meta=np.empty((0,) * grad.ndim, dtype))


@names_errors
def softmax_backward(grad, y, axis=-1, *, num_threads=None):
    """Backward pass of softmax on Dask arrays; see `fastsoftmax.softmax_backward`.

    `grad` and `y` (Dask or NumPy, the same shape) are merged along the
    softmax axes like `softmax`'s input; a group over the limit is computed
    by Dask's composition ``y * (grad - sum(grad * y))``.
    """
    return _backward("softmax_backward", grad, y, axis, num_threads)


@names_errors
def log_softmax_backward(grad, y, axis=-1, *, num_threads=None):
    """Backward pass of log_softmax on Dask arrays; see
    `fastsoftmax.log_softmax_backward` and `softmax_backward`."""
    return _backward("log_softmax_backward", grad, y, axis, num_threads)


# ------------------------------------------------------------ cross_entropy

def _cross_entropy_block(logits, target, *, ax, is_index, label_smoothing, grad_scale,
                         return_grad, num_threads):
    """Per-sample losses (keepdims along `ax`) and, with `return_grad`, the
    gradient scaled by `grad_scale` (1 / samples of the whole array for
    "mean"); an index `target` comes with `ax` of length 1."""
    result = _api.cross_entropy(logits, target.squeeze(ax) if is_index else target, ax,
                                reduction="none", label_smoothing=label_smoothing,
                                return_grad=return_grad, num_threads=num_threads)
    if not return_grad:
        return np.expand_dims(result, ax)
    losses, grad = result
    if grad_scale != 1.0:
        grad *= grad.dtype.type(grad_scale)
    return np.expand_dims(losses, ax), grad


@names_errors
def cross_entropy(logits, target, axis=-1, *, reduction="mean", label_smoothing=0.0,
                  return_grad=False, num_threads=None):
    """Cross-entropy loss of softmax(logits) against a target, on Dask arrays;
    see `fastsoftmax.cross_entropy`.

    Parameters
    ----------
    logits : dask.array.Array or array_like
        Unnormalised scores, classes along `axis` (merged into one chunk).
    target : dask.array.Array or array_like
        Integer class indices (`logits`' shape without `axis`) or float
        probabilities (`logits`' shape), Dask or NumPy.
    axis, reduction, label_smoothing, return_grad, num_threads
        As in `fastsoftmax.cross_entropy`.

    Returns
    -------
    loss : dask.array.Array
        Per-sample losses for "none", else a 0-d array.
    grad : dask.array.Array
        Only with ``return_grad=True``: the gradient, of `logits`' shape.
        Compute `loss` and `grad` together (``dask.compute(loss, grad)``):
        each block is then evaluated once for both.

    Notes
    -----
    "mean" and "sum" add the per-sample losses (rounded to the result dtype
    per block) in float64.  Class index bounds are checked per block, when
    computed.
    """
    logits, target = _as_dask(logits), _as_dask(target)
    if logits.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis)")
    ax = check_int_axis(axis, logits.ndim)
    is_index = target.dtype.kind in "iu"
    sample_shape = logits.shape[:ax] + logits.shape[ax + 1:]
    _check_target_shape(target.shape, sample_shape if is_index else logits.shape)
    probe = np.zeros((1,) * logits.ndim, logits.dtype)
    probe_target = np.zeros((1,) * (logits.ndim - 1), target.dtype) if is_index else probe.astype(target.dtype)
    probed = _api.cross_entropy(probe, probe_target, ax, reduction=reduction,
                                label_smoothing=label_smoothing, return_grad=return_grad,
                                num_threads=num_threads)
    dtype = np.asarray(probed[0] if return_grad else probed).dtype
    if logits.shape[ax] == 0:
        raise ValueError(f"logits has no classes along axis {axis}")
    merged = _merged([logits], (ax,))
    if merged is None:
        raise ValueError(f"one sample's logits take more than "
                         f"{group_limit()} bytes (dask's array.chunk-size); raise it")
    logits = merged[0]
    loss_chunks = logits.chunks[:ax] + ((1,),) + logits.chunks[ax + 1:]
    target = _rechunked(target[(slice(None),) * ax + (None,)] if is_index else target,
                        loss_chunks if is_index else logits.chunks)
    samples = math.prod(sample_shape)
    grad_scale = 1.0 / samples if reduction == "mean" and _known(samples) and samples else 1.0
    meta = np.empty((0,) * logits.ndim, dtype)
    blocks = da.map_blocks(_cross_entropy_block, logits, target, ax=ax, is_index=is_index,
                           label_smoothing=float(label_smoothing), grad_scale=grad_scale,
                           return_grad=return_grad, num_threads=num_threads,
                           chunks=loss_chunks, dtype=dtype, meta=meta)
    losses, grad = blocks, None
    if return_grad:  # blocks of (losses, grad) pairs: each evaluated once for both
        losses = blocks.map_blocks(operator.getitem, 0, chunks=loss_chunks, dtype=dtype, meta=meta)
        grad = blocks.map_blocks(operator.getitem, 1, chunks=logits.chunks, dtype=dtype, meta=meta)
    losses = losses.squeeze(axis=ax)
    if reduction != "none":
        if not _known(samples):  # unknown chunk sizes: counted when computed
            samples = losses.map_blocks(np.ones_like, dtype=np.int64).sum()
            if reduction == "mean" and return_grad:
                grad = grad * (1.0 / samples).astype(dtype)
        total = losses.astype(np.float64).sum()
        losses = (total / samples if reduction == "mean" else total).astype(dtype)
    return (losses, grad) if return_grad else losses


def _check_target_shape(shape, expected):
    if len(shape) != len(expected) or any(
            _known(s) and _known(e) and s != e for s, e in zip(shape, expected)):
        raise ValueError(f"target has shape {shape}, "
                         f"expected {expected}")
