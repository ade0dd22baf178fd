# cython: language_level=3, cdivision=True
"""Cython wrapper: turns an array call into the canonical problem of
src_c/fastsoftmax.h and runs it without the GIL."""

import os
import warnings

import numpy as np

cimport numpy as cnp

from ._validation import check_num_threads, check_out, normalize_axes, prepare_input
from . import reference as _reference

cnp.import_array()

cdef extern from "fastsoftmax.h" nogil:
    enum:
        FSM_OP_SOFTMAX
        FSM_OP_LOG_SOFTMAX
        FSM_MAX_BATCH_DIMS
        FSM_OK
        FSM_NUM_VARIANTS
    ctypedef enum fsm_dtype:
        FSM_FLOAT32
        FSM_FLOAT64
    ctypedef struct fsm_problem:
        int op
        fsm_dtype dtype
        const void *x
        void *y
        Py_ssize_t n, x_step, y_step
        Py_ssize_t lanes
        int nbatch
        Py_ssize_t batch_shape[64]
        Py_ssize_t x_batch_step[64]
        Py_ssize_t y_batch_step[64]
    int fsm_run(const fsm_problem *p, int max_threads)
    const char *fsm_variant_name(int v)
    int fsm_variant_supported(int v)
    int fsm_best_variant()
    int fsm_set_variant(int v)
    int fsm_active_variant()
    int fsm_openmp_enabled()
    int fsm_default_num_threads()

KERNEL_ENV_VAR = "FASTSOFTMAX_KERNEL"


# --- kernel variants -------------------------------------------------------

def variants_compiled():
    """Names of the kernel variants built into this extension, lowest first."""
    return [fsm_variant_name(v).decode() for v in range(FSM_NUM_VARIANTS)
            if fsm_variant_name(v) != NULL]


def variants_supported():
    """Names of the compiled variants this CPU and OS can run, lowest first."""
    return [fsm_variant_name(v).decode() for v in range(FSM_NUM_VARIANTS)
            if fsm_variant_supported(v)]


def active_variant():
    """Name of the kernel variant in use."""
    return fsm_variant_name(fsm_active_variant()).decode()


def _variant_index(str name):
    for v in range(FSM_NUM_VARIANTS):
        if fsm_variant_name(v) != NULL and fsm_variant_name(v).decode() == name:
            return v
    return -1


def _set_variant(str name):
    """Switch kernel variant (tests only: not safe while other threads compute)."""
    v = _variant_index(name)
    if v < 0 or fsm_set_variant(v) != 0:
        raise ValueError(f"kernel variant {name!r} is not available here; "
                         f"supported: {variants_supported()}")


def _select_variant_from_environment():
    requested = os.environ.get(KERNEL_ENV_VAR, "").strip().lower()
    if requested in ("", "auto"):
        return
    v = _variant_index(requested)
    if v < 0:
        warnings.warn(f"{KERNEL_ENV_VAR}={requested!r} names no kernel variant "
                      f"(choose from {variants_compiled()}); using {active_variant()!r}",
                      RuntimeWarning, stacklevel=2)
    elif fsm_set_variant(v) != 0:
        warnings.warn(f"{KERNEL_ENV_VAR}={requested!r}: this CPU cannot run that variant; "
                      f"using {active_variant()!r}", RuntimeWarning, stacklevel=2)


_select_variant_from_environment()


def openmp_enabled():
    """True when the extension was built with OpenMP."""
    return bool(fsm_openmp_enabled())


def default_num_threads():
    """Threads a call may use when num_threads is None (the OpenMP default)."""
    return fsm_default_num_threads()


# --- canonical form ----------------------------------------------------------

cdef list _merge_dims(list dims, tuple shape, list xs, list ys):
    """Group dims (ordered by decreasing stride) that address memory as one
    dimension in both x and y; returns [extent, x_step, y_step] groups."""
    cdef list groups = []
    for d in dims:
        if groups and groups[-1][1] == xs[d] * shape[d] and groups[-1][2] == ys[d] * shape[d]:
            groups[-1][0] *= shape[d]
            groups[-1][1] = xs[d]
            groups[-1][2] = ys[d]
        else:
            groups.append([shape[d], xs[d], ys[d]])
    return groups


cdef bint _fill_problem(fsm_problem *p, object x, object y, tuple axes) except -1:
    """Describe softmax of x over `axes` into y; False when the axes cannot be
    addressed as one dimension (the caller then makes a contiguous copy)."""
    cdef Py_ssize_t isz = x.itemsize
    cdef tuple shape = x.shape
    cdef list xs = [s // isz for s in x.strides]
    cdef list ys = [s // isz for s in y.strides]
    order = lambda d: (-abs(xs[d]), -abs(ys[d]))
    cdef list red = sorted([d for d in axes if shape[d] != 1], key=order)
    cdef list other = sorted([d for d in range(x.ndim) if d not in axes and shape[d] != 1], key=order)
    cdef list red_groups = _merge_dims(red, shape, xs, ys)
    if len(red_groups) > 1:
        return False
    n, x_step, y_step = red_groups[0] if red_groups else (1, 1, 1)
    cdef list batch = _merge_dims(other, shape, xs, ys)
    lanes = 1
    if (x_step != 1 or y_step != 1) and batch and batch[-1][1] == 1 and batch[-1][2] == 1:
        lanes = batch.pop()[0]
    p.n, p.x_step, p.y_step, p.lanes = n, x_step, y_step, lanes
    p.nbatch = len(batch)
    for i, (extent, bx, by) in enumerate(batch):
        p.batch_shape[i], p.x_batch_step[i], p.y_batch_step[i] = extent, bx, by
    return True


cdef int _run(fsm_problem *p, int threads) except -1:
    cdef int status
    with nogil:
        status = fsm_run(p, threads)
    if status != FSM_OK:
        raise MemoryError("fastsoftmax: could not allocate a row buffer")
    return 0


cdef int _compute_into(int op, cnp.ndarray x, cnp.ndarray y, tuple axes, int threads) except -1:
    """y = op(x) over axes; x, y native, aligned, same shape and dtype, and
    either identical in memory or not overlapping."""
    cdef fsm_problem p
    p.op = op
    p.dtype = FSM_FLOAT32 if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32 else FSM_FLOAT64
    p.x = cnp.PyArray_DATA(x)
    p.y = cnp.PyArray_DATA(y)
    if _fill_problem(&p, x, y, axes):
        return _run(&p, threads)
    # Reduction axes that no stride can address as one dimension (e.g.
    # axis=(0, 2) of a C-contiguous 3-d array): softmax a contiguous copy
    # with those axes last, then write it back.
    cdef object xo = x
    cdef list perm = [d for d in range(xo.ndim) if d not in axes] + list(axes)
    cdef cnp.ndarray xt = np.ascontiguousarray(xo.transpose(perm))
    cdef cnp.ndarray flat = xt.reshape(-1, np.prod([xo.shape[d] for d in axes]))
    _compute_into(op, flat, flat, (1,), threads)
    (<object>y).transpose(perm)[...] = xt
    return 0


cdef inline bint _is_ready_float(object x):
    """x is an ndarray of native float32/float64 that the kernels can read as is."""
    if type(x) is not np.ndarray:
        return False
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>x)
    return ((t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>x) and cnp.PyArray_ISALIGNED(<cnp.ndarray>x))


cdef object _softmax_family(int op, object x, object axis, object out, object num_threads):
    cdef cnp.ndarray arr, y
    cdef fsm_problem p
    cdef int nd
    # Fast path: contiguous float array, last axis, fresh output.
    if out is None and num_threads is None and type(axis) is int and _is_ready_float(x):
        arr = <cnp.ndarray>x
        nd = cnp.PyArray_NDIM(arr)
        if (nd > 0 and (axis == -1 or axis == nd - 1) and cnp.PyArray_IS_C_CONTIGUOUS(arr)
                and cnp.PyArray_SIZE(arr) > 0):
            y = cnp.PyArray_EMPTY(nd, cnp.PyArray_DIMS(arr), cnp.PyArray_TYPE(arr), 0)
            p.op = op
            p.dtype = FSM_FLOAT32 if cnp.PyArray_TYPE(arr) == cnp.NPY_FLOAT32 else FSM_FLOAT64
            p.x = cnp.PyArray_DATA(arr)
            p.y = cnp.PyArray_DATA(y)
            p.n = cnp.PyArray_DIM(arr, nd - 1)
            p.x_step = p.y_step = 1
            p.lanes = 1
            p.nbatch = 1
            p.batch_shape[0] = cnp.PyArray_SIZE(arr) // p.n
            p.x_batch_step[0] = p.y_batch_step[0] = p.n
            _run(&p, 0)
            return y
    return _softmax_family_general(op, x, axis, out, num_threads)


cdef object _softmax_family_general(int op, object x, object axis, object out, object num_threads):
    cdef int threads = check_num_threads(num_threads)
    arr, result_dtype = prepare_input(x)
    if arr.dtype.itemsize > 8:  # extended precision: no kernel, NumPy computes it
        ref = _reference.softmax if op == FSM_OP_SOFTMAX else _reference.log_softmax
        return ref(arr, axis, out=out, num_threads=num_threads)
    cdef tuple axes = normalize_axes(axis, arr.ndim)
    cdef tuple shape = arr.shape
    if out is not None:
        check_out(out, shape, result_dtype)
    if arr.ndim == 0:  # one group of one element
        arr = arr.reshape(1)
    target = None if out is None else out.reshape(arr.shape)
    direct = (target is not None and target.dtype == arr.dtype and _is_ready_float(target)
              and (_same_memory(arr, target) or not np.may_share_memory(arr, target)))
    y = target if direct else np.empty_like(arr)
    if arr.size > 0:
        _compute_into(op, arr, y, axes, threads)
    if out is None:
        return y.reshape(shape).astype(result_dtype, copy=False)
    if not direct:
        np.copyto(target, y, casting="same_kind")
    return out


cdef bint _same_memory(cnp.ndarray a, cnp.ndarray b):
    """a and b view the same elements in the same layout (in-place call)."""
    return (cnp.PyArray_DATA(a) == cnp.PyArray_DATA(b) and (<object>a).shape == (<object>b).shape
            and (<object>a).strides == (<object>b).strides)


def softmax(x, axis=-1, *, out=None, num_threads=None):
    return _softmax_family(FSM_OP_SOFTMAX, x, axis, out, num_threads)


def log_softmax(x, axis=-1, *, out=None, num_threads=None):
    return _softmax_family(FSM_OP_LOG_SOFTMAX, x, axis, out, num_threads)
