# cython: language_level=3, cdivision=True
"""Cython wrapper: turns an array call into the canonical problem of
src_c/fastsoftmax.h and runs it without the GIL."""

import functools
import math
import os
import warnings
from fractions import Fraction

import numpy as np

cimport numpy as cnp
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint8_t

from ._validation import (
    broadcast_where, check_num_threads, check_out, check_temperature_base, check_temperature_range,
    BFLOAT16, computed_by_numpy, masked_as_where, masked_result, named_error, normalize_axes, prepare_input,
    writable_as,
)
from . import _threads

cnp.import_array()

cdef extern from "numpy/arrayobject.h":
    # Not in Cython's numpy declarations: np.empty_like(a, order="K") in C.
    object PyArray_NewLikeArray(cnp.ndarray prototype, cnp.NPY_ORDER order,
                                void *descr, int subok)

cdef extern from "fastsoftmax.h" nogil:
    enum:
        FSM_OP_SOFTMAX
        FSM_OP_LOG_SOFTMAX
        FSM_OP_LOGSUMEXP
        FSM_OP_SOFTMAX_BACKWARD
        FSM_OP_LOG_SOFTMAX_BACKWARD
        FSM_OP_CROSS_ENTROPY
        FSM_MAX_BATCH_DIMS
        FSM_X
        FSM_Y
        FSM_B
        FSM_MASK
        FSM_TARGET
        FSM_GROUP_OUT
        FSM_GROUP_SIGN
        FSM_NUM_OPERANDS
        FSM_OK
        FSM_NUM_VARIANTS
        FSM_PLAN_ROWS
        FSM_PLAN_SHORT_ROWS
        FSM_PLAN_COLS
        FSM_PLAN_SPLIT_ROW
    ctypedef enum fsm_dtype:
        FSM_FLOAT32
        FSM_FLOAT64
        FSM_FLOAT16
        FSM_BFLOAT16
    ctypedef struct fsm_params:
        double scale_hi, scale_lo, exp_step_hi, exp_step_lo, smoothing, grad_scale
    ctypedef struct fsm_operand:
        const void *data
        Py_ssize_t step, lane_step
        Py_ssize_t batch_step[64]
    ctypedef struct fsm_problem:
        int op
        fsm_dtype dtype
        fsm_dtype y_dtype
        int scaled
        fsm_params params
        Py_ssize_t n, lanes
        int nbatch
        Py_ssize_t batch_shape[64]
        fsm_operand operand[7]
    int fsm_run(const fsm_problem *p, int max_threads)
    int fsm_plan_kind(const fsm_problem *p, int max_threads, int *threads)
    const char *fsm_variant_name(int v)
    int fsm_variant_supported(int v)
    int fsm_best_variant()
    int fsm_set_variant(int v)
    int fsm_active_variant()
    int fsm_openmp_enabled()
    int fsm_default_num_threads()
    const size_t fsm_short_row_max_bytes, fsm_min_elements_per_thread
    int fsm_omp_max_threads()
    void fsm_set_usable_cpus(int cpus)
    int fsm_usable_cpus()
    int fsm_limit_threads(int requested)

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
    """Threads a call may use when num_threads is None, before the
    set_num_threads cap: the OpenMP default of the calling thread, at most
    the usable CPUs."""
    return fsm_default_num_threads()


# --- process-wide thread settings ----------------------------------------------

cdef int _thread_cap = 0  # set_num_threads(); 0: none
cdef bint _forked_child = False

# The CPUs the process may use cap every call (src_c/threads.c); measured
# once, as OpenMP runtimes read their settings once, at load.
_usable = _threads.usable_cpus()  # (cpus, source, affinity count, cgroup limit)
_omp_threads_at_import = fsm_omp_max_threads()
_omp_env_at_import = _threads.omp_num_threads_from_env()
fsm_set_usable_cpus(_usable[0])


def usable_cpus():
    """CPUs the process may use: its affinity mask and cgroup CPU quota."""
    return fsm_usable_cpus()


def _cpu_limits():
    """(CPUs in the affinity mask, cgroup quota in CPUs or None), at import."""
    return _usable[2], _usable[3]


def _num_threads_source():
    """What sets get_num_threads() (see _threads.num_threads_source)."""
    return _threads.num_threads_source(
        openmp=bool(fsm_openmp_enabled()), forked=_forked_child, cap=_thread_cap_setting(),
        omp_now=fsm_omp_max_threads(), omp_at_import=_omp_threads_at_import,
        omp_env=_omp_env_at_import, usable=fsm_usable_cpus(), usable_source=_usable[1])


def _after_fork_in_child():
    # GNU libgomp's thread pool does not survive fork(): a parallel region in
    # a child whose parent had used one waits forever for workers that only
    # exist in the parent.  Calls in a forked child run on the calling thread.
    global _forked_child
    _forked_child = True


os.register_at_fork(after_in_child=_after_fork_in_child)


def set_num_threads(num_threads):
    """Cap the threads of calls made with num_threads=None (None: no cap)."""
    global _thread_cap
    _thread_cap = check_num_threads(num_threads)  # None -> 0; ValueError names num_threads


def get_num_threads():
    """Threads a call with num_threads=None may use, in this thread."""
    return _threads_for_call(0)


def _thread_cap_setting():
    """The cap set by set_num_threads, or None."""
    return _thread_cap if _thread_cap > 0 else None


cdef int _threads_for_call(int threads) noexcept:
    """The thread cap fsm_run gets for a call's num_threads (0: None)."""
    if _forked_child or not fsm_openmp_enabled():
        return 1
    if threads > 0:
        return fsm_limit_threads(threads)
    threads = fsm_default_num_threads()
    return _thread_cap if 0 < _thread_cap < threads else threads


# --- canonical form ----------------------------------------------------------

ctypedef struct _dims:
    int count
    Py_ssize_t extent[64]
    Py_ssize_t step[64][7]  # per operand (FSM_X .. FSM_GROUP_SIGN), in its elements


cdef inline Py_ssize_t _abs(Py_ssize_t v) noexcept nogil:
    return -v if v < 0 else v


cdef void _add_dim(_dims *d, Py_ssize_t extent, const Py_ssize_t *steps) noexcept nogil:
    cdef int k
    d.extent[d.count] = extent
    for k in range(FSM_NUM_OPERANDS):
        d.step[d.count][k] = steps[k]
    d.count += 1


cdef inline bint _outer(const Py_ssize_t *a, const Py_ssize_t *b) noexcept nogil:
    """Dim a lies outside dim b in memory order: larger x step, then y."""
    return (_abs(a[FSM_X]) > _abs(b[FSM_X])
            or (_abs(a[FSM_X]) == _abs(b[FSM_X]) and _abs(a[FSM_Y]) > _abs(b[FSM_Y])))


cdef void _move_dim(_dims *d, int dst, int src) noexcept nogil:
    cdef int k
    d.extent[dst] = d.extent[src]
    for k in range(FSM_NUM_OPERANDS):
        d.step[dst][k] = d.step[src][k]


cdef void _sort_and_merge(_dims *d) noexcept nogil:
    """Order dims by decreasing stride (memory order) and merge neighbours
    that address memory as one dimension in every operand."""
    cdef int i, j, k, out = 0
    cdef _dims tmp
    cdef bint merges
    for i in range(1, d.count):  # insertion sort: at most 64 dims
        tmp.count = 0
        _add_dim(&tmp, d.extent[i], d.step[i])
        j = i - 1
        while j >= 0 and _outer(tmp.step[0], d.step[j]):
            _move_dim(d, j + 1, j)
            j -= 1
        d.extent[j + 1] = tmp.extent[0]
        for k in range(FSM_NUM_OPERANDS):
            d.step[j + 1][k] = tmp.step[0][k]
    for i in range(d.count):
        merges = out > 0
        for k in range(FSM_NUM_OPERANDS):
            merges = merges and d.step[out - 1][k] == d.step[i][k] * d.extent[i]
        if merges:
            d.extent[out - 1] *= d.extent[i]
            for k in range(FSM_NUM_OPERANDS):
                d.step[out - 1][k] = d.step[i][k]
        else:
            _move_dim(d, out, i)
            out += 1
    d.count = out


cdef bint _lanes_fit(const Py_ssize_t *group_steps, const Py_ssize_t *dim_steps, const bint *present) noexcept nogil:
    """The dim can be SIMD lanes: unit steps in x, which are not unit steps
    along the group, and in b unless b is the same for every lane (the driver
    widens it into a tile).  The output does not steer the plan (the driver
    tiles a y of another layout through scratch), so that its layout never
    changes the result."""
    return (dim_steps[FSM_X] == 1 and group_steps[FSM_X] != 1
            and (not present[FSM_B] or dim_steps[FSM_B] in (0, 1)))


cdef bint _describe(fsm_problem *p, int op, cnp.ndarray x, cnp.ndarray y, cnp.ndarray b, cnp.ndarray mask,
                    cnp.ndarray target, cnp.ndarray group_out, cnp.ndarray group_sign,
                    const bint *reduced) noexcept:
    """Fill p for op over the dims of x flagged in `reduced`; False when
    those dims cannot be addressed as one (the caller then copies).  Array
    operands have x's shape; group operands (target, group_out, group_sign) x's shape
    with the reduced dims of length 1.  None for an operand the op lacks."""
    cdef void *arrays[7]
    cdef bint present[7]
    cdef Py_ssize_t steps[7]
    cdef _dims red, other
    cdef int d, k, nd = cnp.PyArray_NDIM(x)
    cdef Py_ssize_t extent
    cdef cnp.ndarray a
    arrays[FSM_X], arrays[FSM_Y], arrays[FSM_B] = <void *>x, <void *>y, <void *>b
    arrays[FSM_MASK], arrays[FSM_TARGET], arrays[FSM_GROUP_OUT] = <void *>mask, <void *>target, <void *>group_out
    arrays[FSM_GROUP_SIGN] = <void *>group_sign
    for k in range(FSM_NUM_OPERANDS):
        present[k] = arrays[k] != <void *>None
    red.count = 0
    other.count = 0
    for d in range(nd):
        extent = cnp.PyArray_DIM(x, d)
        if extent == 1:  # length-1 dims address nothing
            continue
        for k in range(FSM_NUM_OPERANDS):
            steps[k] = 0
            if present[k] and not (k >= FSM_TARGET and reduced[d]):
                a = <cnp.ndarray>arrays[k]
                steps[k] = cnp.PyArray_STRIDE(a, d) // cnp.PyArray_ITEMSIZE(a)
        _add_dim(&red if reduced[d] else &other, extent, steps)
    _sort_and_merge(&red)
    if red.count > 1:
        return False
    if red.count == 0:
        for k in range(FSM_NUM_OPERANDS):
            steps[k] = 1 if k < FSM_TARGET else 0
        _add_dim(&red, 1, steps)
    _sort_and_merge(&other)
    p.op = op
    p.dtype = _fsm_dtype(x)
    p.y_dtype = p.dtype if y is None else _fsm_dtype(y)
    p.scaled = 0
    p.params.scale_hi, p.params.scale_lo = 1.0, 0.0
    p.params.exp_step_hi, p.params.exp_step_lo = 0.0, 0.0
    p.params.smoothing, p.params.grad_scale = 0.0, 1.0
    p.n = red.extent[0]
    p.lanes = 1
    for k in range(FSM_NUM_OPERANDS):
        p.operand[k].data = cnp.PyArray_DATA(<cnp.ndarray>arrays[k]) if present[k] else NULL
        p.operand[k].step = red.step[0][k]
        p.operand[k].lane_step = 0
    d = other.count - 1
    if d >= 0 and _lanes_fit(red.step[0], other.step[d], present):
        p.lanes = other.extent[d]  # neighbouring groups contiguous in memory: SIMD lanes
        for k in range(FSM_NUM_OPERANDS):
            p.operand[k].lane_step = other.step[d][k]
        other.count -= 1
    p.nbatch = other.count
    for d in range(other.count):
        p.batch_shape[d] = other.extent[d]
        for k in range(FSM_NUM_OPERANDS):
            p.operand[k].batch_step[d] = other.step[d][k]
    return True


cdef int _run(fsm_problem *p, int threads) except -1:
    cdef int status
    threads = _threads_for_call(threads)
    with nogil:
        status = fsm_run(p, threads)
    if status != FSM_OK:
        raise MemoryError("fastsoftmax: could not allocate the per-thread scratch")
    return 0


cdef void _set_params(fsm_problem *p, tuple scale, double smoothing, double grad_scale) noexcept:
    """scale: None, or (hi, lo, exp_step_hi, exp_step_lo) from _scale_parts."""
    if scale is not None:
        p.scaled = 1
        p.params.scale_hi, p.params.scale_lo, p.params.exp_step_hi, p.params.exp_step_lo = scale
    p.params.smoothing, p.params.grad_scale = smoothing, grad_scale


cdef void _flag_axes(bint *reduced, int ndim, tuple axes):
    """reduced[d] for each dim d of an ndim array: whether axes names it."""
    cdef int d
    for d in range(ndim):
        reduced[d] = d in axes


def _execute(int op, cnp.ndarray x, tuple axes, cnp.ndarray y=None, cnp.ndarray b=None,
             cnp.ndarray mask=None, cnp.ndarray target=None, cnp.ndarray group_out=None,
             tuple scale=None, double smoothing=0.0, double grad_scale=1.0, int threads=0,
             cnp.ndarray group_sign=None):
    """Run op on prepared operands (the one entry of every function but the
    fast path of plain softmax): x, y, b native aligned float32/float64 of
    one dtype and shape; mask uint8 of that shape; target int64 and
    group_out and group_sign (logsumexp with weights b) float64 of that
    shape with `axes` of length 1.  y is x itself
    or overlaps no input.  Reduction axes that no stride can address as
    one (e.g. axis=(0, 2) of a C-contiguous 3-d array) are computed on
    copies with those axes last."""
    cdef fsm_problem p
    cdef bint reduced[64]
    _flag_axes(reduced, x.ndim, axes)
    if _describe(&p, op, x, y, b, mask, target, group_out, group_sign, reduced):
        _set_params(&p, scale, smoothing, grad_scale)
        return _run(&p, threads)
    perm = [d for d in range(x.ndim) if d not in axes] + list(axes)
    n = math.prod(x.shape[d] for d in axes)

    def rows(a):  # a copy always: the computation writes y in place
        return None if a is None else np.array(a.transpose(perm), order="C", copy=True).reshape(-1, n)

    def groups(a):
        return None if a is None else np.array(a.transpose(perm), order="C", copy=True).reshape(-1, 1)

    x_rows = rows(x)
    y_rows = None if y is None else np.empty_like(x_rows)
    gout_rows, sign_rows = groups(group_out), groups(group_sign)
    _execute(op, x_rows, (1,), y_rows, rows(b), rows(mask), groups(target), gout_rows, scale, smoothing,
             grad_scale, threads, sign_rows)
    if y is not None:
        y.transpose(perm)[...] = y_rows.reshape([x.shape[d] for d in perm])
    for result, result_rows in ((group_out, gout_rows), (group_sign, sign_rows)):
        if result is not None:
            result.transpose(perm)[...] = result_rows.reshape([result.shape[d] for d in perm])
    return 0


_PLAN_NAMES = {FSM_PLAN_ROWS: "rows", FSM_PLAN_SHORT_ROWS: "short_rows", FSM_PLAN_COLS: "cols",
               FSM_PLAN_SPLIT_ROW: "split_row"}


def _plan_info(int op, cnp.ndarray x, tuple axes, cnp.ndarray y=None, cnp.ndarray b=None,
               cnp.ndarray mask=None, cnp.ndarray target=None, cnp.ndarray group_out=None, bint scaled=False,
               int threads=0, cnp.ndarray group_sign=None):
    """(plan, threads) that _execute would run for these operands, or
    ("copy", 0) when the axes need the copying fallback; for tests."""
    cdef fsm_problem p
    cdef bint reduced[64]
    cdef int t
    _flag_axes(reduced, x.ndim, axes)
    if not _describe(&p, op, x, y, b, mask, target, group_out, group_sign, reduced):
        return "copy", 0
    p.scaled = scaled
    kind = fsm_plan_kind(&p, _threads_for_call(threads), &t)
    return _PLAN_NAMES[kind], t


def _plan_thresholds():
    """The planner's thresholds, for tests."""
    return {"short_row_max_bytes": fsm_short_row_max_bytes,
            "min_elements_per_thread": fsm_min_elements_per_thread}


OPS = {"softmax": FSM_OP_SOFTMAX, "log_softmax": FSM_OP_LOG_SOFTMAX, "logsumexp": FSM_OP_LOGSUMEXP,
       "softmax_backward": FSM_OP_SOFTMAX_BACKWARD, "log_softmax_backward": FSM_OP_LOG_SOFTMAX_BACKWARD,
       "cross_entropy": FSM_OP_CROSS_ENTROPY}


# --- memory relations of operands ---------------------------------------------

# bfloat16's type number (ml_dtypes registers it at run time), or -1
cdef int _NPY_BFLOAT16 = -1 if BFLOAT16 is None else BFLOAT16.num


cdef inline bint _is_kernel_type(int t) noexcept:
    """Arrays of NumPy type t are read and written by the kernels."""
    return (t == cnp.NPY_FLOAT32 or t == cnp.NPY_FLOAT64 or t == cnp.NPY_FLOAT16 or
            (t == _NPY_BFLOAT16 and t >= 0))


cdef fsm_dtype _fsm_dtype(cnp.ndarray a) noexcept:
    """The kernels' dtype of an array of a kernel type."""
    cdef int t = cnp.PyArray_TYPE(a)
    if t == cnp.NPY_FLOAT32:
        return FSM_FLOAT32
    if t == cnp.NPY_FLOAT64:
        return FSM_FLOAT64
    return FSM_FLOAT16 if t == cnp.NPY_FLOAT16 else FSM_BFLOAT16


cdef inline bint _is_ready_float(object x):
    """x is an ndarray of a kernel type, native and aligned, that the kernels
    can read as is."""
    if type(x) is not np.ndarray:
        return False
    return (_is_kernel_type(cnp.PyArray_TYPE(<cnp.ndarray>x))
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>x) and cnp.PyArray_ISALIGNED(<cnp.ndarray>x))


cdef inline bint _is_writable_float(object x):
    """x is an ndarray of a kernel type that the kernels can write as is,
    ndarray subclasses included."""
    if not isinstance(x, np.ndarray):
        return False
    return (_is_kernel_type(cnp.PyArray_TYPE(<cnp.ndarray>x)) and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>x)
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>x) and cnp.PyArray_ISALIGNED(<cnp.ndarray>x))


cdef bint _same_memory(cnp.ndarray a, cnp.ndarray b):
    """a and b view the same elements in the same layout (an in-place call)."""
    cdef int d
    if cnp.PyArray_DATA(a) != cnp.PyArray_DATA(b) or cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        return False
    for d in range(cnp.PyArray_NDIM(a)):
        if (cnp.PyArray_DIM(a, d) != cnp.PyArray_DIM(b, d)
                or cnp.PyArray_STRIDE(a, d) != cnp.PyArray_STRIDE(b, d)):
            return False
    return True


cdef void _byte_bounds(cnp.ndarray a, char **lo, char **hi) noexcept:
    cdef int d
    cdef Py_ssize_t step, span
    lo[0] = hi[0] = <char *>cnp.PyArray_DATA(a)
    for d in range(cnp.PyArray_NDIM(a)):
        step = cnp.PyArray_STRIDE(a, d)
        span = step * (cnp.PyArray_DIM(a, d) - 1)
        if span < 0:
            lo[0] += span
        else:
            hi[0] += span
    hi[0] += cnp.PyArray_ITEMSIZE(a)


cdef bint _may_overlap(cnp.ndarray a, cnp.ndarray b):
    """Conservative: the byte ranges spanned by a and b intersect."""
    cdef char *alo
    cdef char *ahi
    cdef char *blo
    cdef char *bhi
    if cnp.PyArray_SIZE(a) == 0 or cnp.PyArray_SIZE(b) == 0:
        return False
    _byte_bounds(a, &alo, &ahi)
    _byte_bounds(b, &blo, &bhi)
    return alo < bhi and blo < ahi


def _writes_directly(out, cnp.ndarray like, inputs, in_place=True):
    """out can receive a result of `like`'s shape and dtype as it is: an
    aligned native writeable float array of that shape and of that dtype (or
    of the mixed precision the kernels write: `writable_as`) that overlaps
    none of `inputs` (None entries ignored), except, when `in_place`, by
    being exactly one of them."""
    if out is None or not _is_writable_float(out):
        return False
    cdef cnp.ndarray o = <cnp.ndarray>out
    if not cnp.PyArray_SAMESHAPE(o, like):
        return False
    if cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(like) and not writable_as(like.dtype, o.dtype):
        return False
    for a in inputs:
        if a is not None and _may_overlap(o, <cnp.ndarray>a) and not (in_place and _same_memory(o, a)):
            return False
    return True


cdef bint _can_write_directly(cnp.ndarray x, object out):
    """out can receive op(x) as it is: a plain ndarray of the same dtype and
    shape, writeable, contiguous, and either x itself (in place) or not
    overlapping x.  Any other out goes through check_out (which refuses a
    masked array, or one whose elements share memory)."""
    if type(out) is not np.ndarray or not _is_writable_float(out):
        return False
    cdef cnp.ndarray o = <cnp.ndarray>out
    if not (cnp.PyArray_IS_C_CONTIGUOUS(o) or cnp.PyArray_IS_F_CONTIGUOUS(o)):
        return False
    cdef int d
    if cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(x) or cnp.PyArray_NDIM(o) != cnp.PyArray_NDIM(x):
        return False
    for d in range(cnp.PyArray_NDIM(x)):
        if cnp.PyArray_DIM(o, d) != cnp.PyArray_DIM(x, d):
            return False
    return _same_memory(x, o) or not _may_overlap(x, o)


def _new_output(cnp.ndarray like, dtype=None):
    """An uninitialised array of like's shape in like's memory order."""
    return PyArray_NewLikeArray(like, cnp.NPY_KEEPORDER, NULL, 0) if dtype is None else \
        np.empty_like(like, dtype=dtype)


def _deliver(y, out, shape, result_dtype):
    """The result computed in y: into out (unless y is out itself, or a
    view of it reshaped), or y as the result dtype and shape."""
    if out is not None:
        if not (y is out or (cnp.PyArray_DATA(<cnp.ndarray>y) == cnp.PyArray_DATA(<cnp.ndarray>out)
                             and y.size == out.size)):
            np.copyto(out, y.reshape(out.shape), casting="unsafe")
        return out
    return y.reshape(shape).astype(result_dtype, copy=False)


# --- softmax and log_softmax: the public functions ------------------------------

cdef inline int _simple_num_threads(object num_threads):
    """Thread cap for a plainly valid num_threads, or -1 (the general path
    validates and raises)."""
    if num_threads is None:
        return 0
    if type(num_threads) is int and num_threads >= 1:
        return min(<object>num_threads, 2**31 - 1)
    return -1


cdef object _softmax_fast(int op, object x, object axis, object out, object num_threads):
    """The common call without Python-level checks: a ready float ndarray,
    one int axis, out None or directly writable, a plain num_threads."""
    cdef cnp.ndarray arr, y
    cdef fsm_problem p
    cdef int nd, ax, threads
    cdef bint reduced[64]
    if type(axis) is int and _is_ready_float(x):
        arr = <cnp.ndarray>x
        nd = cnp.PyArray_NDIM(arr)
        threads = _simple_num_threads(num_threads)
        if nd > 0 and -nd <= axis < nd and threads >= 0 and cnp.PyArray_SIZE(arr) > 0:
            ax = axis % nd
            if out is None:
                y = PyArray_NewLikeArray(arr, cnp.NPY_KEEPORDER, NULL, 0)
            elif _can_write_directly(arr, out):
                y = <cnp.ndarray>out
            else:
                return _softmax_general(op, x, axis, out, num_threads, None, None, None)
            for d in range(nd):
                reduced[d] = d == ax
            _describe(&p, op, arr, y, None, None, None, None, None, reduced)  # one axis always fits
            _run(&p, threads)
            return y
    return _softmax_general(op, x, axis, out, num_threads, None, None, None)


@functools.lru_cache(maxsize=64)
def _scale_parts(scaling) -> tuple:
    """(hi, lo, step_hi, step_lo): 1 / temperature or ln(base) as a
    double-double, and ln 2 divided by it; None for a scale of exactly 1
    (the plain kernels then run).  Exact rational arithmetic costs
    microseconds, so results are cached per (kind, value)."""
    kind, value = scaling
    if kind == "temperature":
        exact = 1 / Fraction(value)
        hi = float(exact)
        lo = float(exact - Fraction(hi))
    else:
        hi = math.log(value)
        # ln(base) to extended precision where long double has it (x86: 64 bits)
        lo = float(np.log(np.longdouble(value)) - np.longdouble(hi))
    if hi == 1.0 and lo == 0.0:
        return None
    step = _LN2 / (Fraction(hi) + Fraction(lo))
    step_hi = float(step)
    return hi, lo, step_hi, float(step - Fraction(step_hi))


# ln 2 to 60 digits, far beyond what a double-double holds
_LN2 = Fraction("0.693147180559945309417232121458176568075500134360255254120680")


cdef inline str _softmax_name(int op):
    return "softmax" if op == FSM_OP_SOFTMAX else "log_softmax"


cdef object _softmax_general(int op, object x, object axis, object out, object num_threads,
                             object temperature, object base, object where):
    """Every other softmax / log_softmax call: validates, converts the
    input, and computes through a temporary when out cannot be written
    directly; a masked array x acts as `where` (_validation).  Its errors
    name the function called (named_error)."""
    try:
        x, where, input_mask = masked_as_where(x, where)
        return masked_result(_softmax_unmasked(op, x, axis, out, num_threads, temperature, base, where),
                             input_mask)
    except (TypeError, ValueError) as exc:
        raise named_error(exc, _softmax_name(op)) from exc.__cause__


cdef object _softmax_unmasked(int op, object x, object axis, object out, object num_threads,
                              object temperature, object base, object where):
    cdef int threads = check_num_threads(num_threads)
    scaling = check_temperature_base(temperature, base)
    arr, result_dtype = prepare_input(x, _softmax_name(op), complex_ok=True, native_half=True)
    check_temperature_range(scaling, arr.dtype)
    if computed_by_numpy(arr.dtype):  # extended precision, complex: no kernel, NumPy computes it
        from . import reference  # only then is the twin imported
        ref = reference.softmax if op == FSM_OP_SOFTMAX else reference.log_softmax
        return ref(arr, axis, out=out, num_threads=num_threads, temperature=temperature, base=base,
                   where=where)
    cdef tuple axes = normalize_axes(axis, arr.ndim)
    mask = broadcast_where(where, arr.shape)
    cdef tuple shape = arr.shape
    if out is not None:
        check_out(out, shape, result_dtype)
    if arr.size == 0:
        return _deliver(np.empty(shape, arr.dtype), out, shape, result_dtype)
    if arr.ndim == 0:  # one group of one element
        arr = arr.reshape(1)
        mask = None if mask is None else mask.reshape(1)
    mask_bytes = None if mask is None else mask.view(np.uint8)
    target = None if out is None else out.reshape(arr.shape)
    y = target if _writes_directly(target, arr, (arr, mask_bytes)) else _new_output(arr)
    _execute(op, arr, axes, y, None, mask_bytes, None, None,
             None if scaling is None else _scale_parts(scaling), 0.0, 1.0, threads)
    return _deliver(y, out, shape, result_dtype)


def softmax(x, axis=-1, *, out=None, num_threads=None, temperature=None, base=None, where=None):
    if temperature is None and base is None and where is None:
        return _softmax_fast(FSM_OP_SOFTMAX, x, axis, out, num_threads)
    return _softmax_general(FSM_OP_SOFTMAX, x, axis, out, num_threads, temperature, base, where)


def log_softmax(x, axis=-1, *, out=None, num_threads=None, temperature=None, base=None, where=None):
    if temperature is None and base is None and where is None:
        return _softmax_fast(FSM_OP_LOG_SOFTMAX, x, axis, out, num_threads)
    return _softmax_general(FSM_OP_LOG_SOFTMAX, x, axis, out, num_threads, temperature, base, where)


_COMMON_PARAMETERS = """
    Parameters
    ----------
    x : array_like
        Input.  float32 and float64 are computed in their own precision;
        float16 and bfloat16 (with ml_dtypes) are computed in float32 and
        rounded once to their own dtype; bool and
        integer inputs are computed and returned as float64; extended
        precision floats and complex numbers are computed by NumPy
        (`fastsoftmax.reference`; complex: any shift of x leaves the result
        unchanged, so the kernels' formula holds with the largest real
        part as the shift).  Object and string dtypes raise TypeError.  A
        `numpy.ma.MaskedArray` acts as its data with its mask as `where`
        (combined with any `where` given), and the result is a masked array
        with the input's mask.
    axis : int, tuple of int or None, default -1
        Axis or axes over which the {name} is taken; None means all axes.
        Note that `scipy.special.softmax` defaults to ``axis=None``.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; it is returned
        (as the data of the masked result for a masked `x`).  It may be `x`
        itself (in-place).  A float16/bfloat16 result may go into a float32
        `out` (not rounded to the half type) and a float32 result into a
        float16/bfloat16 `out` (rounded once).  An `out` whose elements share memory (a zero
        stride) raises ValueError; a masked array raises TypeError.
    num_threads : int, optional
        Upper bound on the threads this call may use.  None uses the OpenMP
        default (``OMP_NUM_THREADS``, threadpoolctl limits).  Never more
        than the CPUs the process may use (affinity mask, cgroup CPU quota),
        whatever the number.  Small inputs always run on the calling thread.
    temperature : float, optional
        Computes the {name} of ``x / temperature``, inside the kernel:
        ``x - max`` and the division are carried exactly, so the result is as
        accurate as without it.  In [2**-100, 2**100] for float32 (and
        half-precision) input, [2**-1000, 2**1000] for float64; ValueError outside.
        Exclusive with `base`.
    base : float, optional
        Computes with powers of `base` instead of e: ``base**x / sum(base**x)``
        = softmax(``x * ln(base)``); finite, > 0 and != 1.  With ``base < 1``
        the smallest entries get the largest weights.  Exclusive with
        `temperature`.
    where : array_like of bool, optional
        Broadcastable to `x`: only the entries where it is True take part;
        the others come out as {dropped}.  A group with no entry left is all
        {dropped} (not NaN).  A masked array raises TypeError (pass
        ``where.filled(False)``).

    Returns
    -------
    ndarray
        Same shape as `x`.

    Notes
    -----
    A NaN or +inf in a group, or a group that is entirely -inf, makes every
    output of that group NaN; -inf among finite values gives {neg_inf}.  Empty
    inputs give empty outputs; a 0-d input is one group of one element, and
    its result is a 0-d array (not a scalar: the result has x's shape).  The
    input is never modified unless it is passed as `out`.
"""


def _docstring(summary, name, neg_inf, example):
    return (f"""{summary}
""" + _COMMON_PARAMETERS.format(name=name, neg_inf=neg_inf, dropped=neg_inf) + f"""
    Examples
    --------
    >>> import numpy as np, fastsoftmax
{example}
""")


softmax.__doc__ = _docstring(
    "Softmax, ``exp(x - max(x)) / sum(exp(x - max(x)))`` over `axis`.", "softmax", "0",
    """    >>> fastsoftmax.softmax(np.array([[1.0, 1.0], [0.0, np.log(3.0)]]))
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])""")
log_softmax.__doc__ = _docstring(
    "Log of the softmax, ``(x - max(x)) - log(sum(exp(x - max(x))))``.", "log_softmax", "-inf",
    """    >>> fastsoftmax.log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])""")
