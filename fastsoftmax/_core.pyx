# cython: language_level=3, cdivision=True
"""Cython wrapper: turns an array call into the canonical problem of
src_c/fastsoftmax.h and runs it without the GIL."""

import os
import warnings

import numpy as np

cimport numpy as cnp
from libc.math cimport isfinite
from libc.stdint cimport int64_t, uint8_t

from ._validation import check_num_threads, check_out, normalize_axes, prepare_input
from . import reference as _reference
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
    int fsm_omp_max_threads()
    void fsm_set_usable_cpus(int cpus)
    int fsm_usable_cpus()
    int fsm_limit_threads(int requested)
    ctypedef struct fsm_family_problem:
        int op, is_f64
        Py_ssize_t rows, n
        const void *a
        const void *b
        const uint8_t *mask
        const int64_t *target
        void *out
        double *row_out
        Py_ssize_t a_step, b_step, mask_step, out_step
        double scale_hi, scale_lo
        double exp_step_hi, exp_step_lo
        double smoothing, grad_scale
    int fsm_family_run(const fsm_family_problem *p, int max_threads)

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
    Py_ssize_t x_step[64]
    Py_ssize_t y_step[64]


cdef void _add_dim(_dims *d, Py_ssize_t extent, Py_ssize_t xs, Py_ssize_t ys) noexcept nogil:
    d.extent[d.count] = extent
    d.x_step[d.count] = xs
    d.y_step[d.count] = ys
    d.count += 1


cdef inline Py_ssize_t _abs(Py_ssize_t v) noexcept nogil:
    return -v if v < 0 else v


cdef void _sort_and_merge(_dims *d) noexcept nogil:
    """Order dims by decreasing stride (memory order) and merge neighbours
    that address memory as one dimension in both x and y."""
    cdef int i, j, out = 0
    cdef Py_ssize_t e, xs, ys
    for i in range(1, d.count):  # insertion sort: at most 64 dims
        e, xs, ys = d.extent[i], d.x_step[i], d.y_step[i]
        j = i - 1
        while j >= 0 and (_abs(d.x_step[j]) < _abs(xs)
                          or (_abs(d.x_step[j]) == _abs(xs) and _abs(d.y_step[j]) < _abs(ys))):
            d.extent[j + 1], d.x_step[j + 1], d.y_step[j + 1] = d.extent[j], d.x_step[j], d.y_step[j]
            j -= 1
        d.extent[j + 1], d.x_step[j + 1], d.y_step[j + 1] = e, xs, ys
    for i in range(d.count):
        if (out > 0 and d.x_step[out - 1] == d.x_step[i] * d.extent[i]
                and d.y_step[out - 1] == d.y_step[i] * d.extent[i]):
            d.extent[out - 1] *= d.extent[i]
            d.x_step[out - 1], d.y_step[out - 1] = d.x_step[i], d.y_step[i]
        else:
            d.extent[out], d.x_step[out], d.y_step[out] = d.extent[i], d.x_step[i], d.y_step[i]
            out += 1
    d.count = out


cdef bint _describe(fsm_problem *p, int op, cnp.ndarray x, cnp.ndarray y, const bint *reduced) noexcept:
    """Fill p for op(x) -> y over the dims flagged in `reduced`; False when
    those dims cannot be addressed as one (the caller then copies)."""
    cdef _dims red, other
    cdef int d, nd = cnp.PyArray_NDIM(x)
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(x), extent
    red.count = 0
    other.count = 0
    for d in range(nd):
        extent = cnp.PyArray_DIM(x, d)
        if extent != 1:  # length-1 dims address nothing
            _add_dim(&red if reduced[d] else &other, extent,
                     cnp.PyArray_STRIDE(x, d) // isz, cnp.PyArray_STRIDE(y, d) // isz)
    _sort_and_merge(&red)
    if red.count > 1:
        return False
    if red.count == 0:
        _add_dim(&red, 1, 1, 1)
    _sort_and_merge(&other)
    p.op = op
    p.dtype = FSM_FLOAT32 if cnp.PyArray_TYPE(x) == cnp.NPY_FLOAT32 else FSM_FLOAT64
    p.x = cnp.PyArray_DATA(x)
    p.y = cnp.PyArray_DATA(y)
    p.n, p.x_step, p.y_step = red.extent[0], red.x_step[0], red.y_step[0]
    p.lanes = 1
    d = other.count - 1
    if (p.x_step != 1 or p.y_step != 1) and d >= 0 and other.x_step[d] == 1 and other.y_step[d] == 1:
        p.lanes = other.extent[d]  # neighbouring problems contiguous in memory: SIMD lanes
        other.count -= 1
    p.nbatch = other.count
    for d in range(other.count):
        p.batch_shape[d], p.x_batch_step[d], p.y_batch_step[d] = \
            other.extent[d], other.x_step[d], other.y_step[d]
    return True


cdef int _run(fsm_problem *p, int threads) except -1:
    cdef int status
    threads = _threads_for_call(threads)
    with nogil:
        status = fsm_run(p, threads)
    if status != FSM_OK:
        raise MemoryError("fastsoftmax: could not allocate a row buffer")
    return 0


cdef int _compute_into(int op, cnp.ndarray x, cnp.ndarray y, tuple axes, int threads) except -1:
    """y = op(x) over axes; x, y native, aligned, same shape and dtype, and
    either identical in memory or not overlapping."""
    cdef fsm_problem p
    cdef bint reduced[64]
    cdef int d
    for d in range(cnp.PyArray_NDIM(x)):
        reduced[d] = d in axes
    if _describe(&p, op, x, y, reduced):
        return _run(&p, threads)
    # Reduction axes that no stride can address as one dimension (e.g.
    # axis=(0, 2) of a C-contiguous 3-d array): softmax a contiguous copy
    # with those axes last, then write it back.
    cdef object xo = x
    cdef list perm = [d for d in range(xo.ndim) if d not in axes] + list(axes)
    # A copy always: ascontiguousarray would return x itself when it is
    # already laid out that way, and the in-place call below would modify it.
    cdef cnp.ndarray xt = np.array(xo.transpose(perm), order="C", copy=True)
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
    _byte_bounds(a, &alo, &ahi)
    _byte_bounds(b, &blo, &bhi)
    return alo < bhi and blo < ahi


cdef bint _can_write_directly(cnp.ndarray x, object out):
    """out can receive op(x) as it is: same dtype and shape, writeable, and
    either x itself (in place) or not overlapping x."""
    if not _is_ready_float(out):
        return False
    cdef cnp.ndarray o = <cnp.ndarray>out
    cdef int d
    if (cnp.PyArray_TYPE(o) != cnp.PyArray_TYPE(x) or cnp.PyArray_NDIM(o) != cnp.PyArray_NDIM(x)
            or not cnp.PyArray_ISWRITEABLE(o)):
        return False
    for d in range(cnp.PyArray_NDIM(x)):
        if cnp.PyArray_DIM(o, d) != cnp.PyArray_DIM(x, d):
            return False
    return _same_memory(x, o) or not _may_overlap(x, o)


cdef inline int _simple_num_threads(object num_threads):
    """Thread cap for a plainly valid num_threads, or -1 (the general path
    validates and raises)."""
    if num_threads is None:
        return 0
    if type(num_threads) is int and num_threads >= 1:
        return min(<object>num_threads, 2**31 - 1)
    return -1


cdef object _softmax_family(int op, object x, object axis, object out, object num_threads):
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
                return _softmax_family_general(op, x, axis, out, num_threads)
            for d in range(nd):
                reduced[d] = d == ax
            _describe(&p, op, arr, y, reduced)  # one axis always fits
            _run(&p, threads)
            return y
    return _softmax_family_general(op, x, axis, out, num_threads)


cdef object _softmax_family_general(int op, object x, object axis, object out, object num_threads):
    """Every other call: validates, converts the input, and computes through
    a temporary when out cannot be written directly."""
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
    direct = target is not None and _can_write_directly(arr, target)
    y = target if direct else np.empty_like(arr)
    if arr.size > 0:
        _compute_into(op, arr, y, axes, threads)
    if out is None:
        return y.reshape(shape).astype(result_dtype, copy=False)
    if not direct:
        np.copyto(target, y, casting="same_kind")
    return out


def softmax(x, axis=-1, *, out=None, num_threads=None, temperature=None, base=None, where=None):
    if temperature is not None or base is not None or where is not None:
        from ._family import scaled_softmax
        return scaled_softmax(False, x, axis, out, num_threads, temperature, base, where)
    return _softmax_family(FSM_OP_SOFTMAX, x, axis, out, num_threads)


def log_softmax(x, axis=-1, *, out=None, num_threads=None, temperature=None, base=None, where=None):
    if temperature is not None or base is not None or where is not None:
        from ._family import scaled_softmax
        return scaled_softmax(True, x, axis, out, num_threads, temperature, base, where)
    return _softmax_family(FSM_OP_LOG_SOFTMAX, x, axis, out, num_threads)


# --- the rest of the family --------------------------------------------------

cdef const void *_rows_data(object rows, Py_ssize_t n_rows, Py_ssize_t n, object dtype,
                            Py_ssize_t *step, str name) except? NULL:
    """Data pointer and row step (in elements) of a (rows, n) matrix whose
    rows are contiguous, after checking exactly that (nothing is written or
    read out of bounds whatever a caller passes)."""
    if type(rows) is not np.ndarray:
        raise TypeError(f"{name} must be an ndarray")
    cdef cnp.ndarray a = <cnp.ndarray>rows
    if (cnp.PyArray_NDIM(a) != 2 or cnp.PyArray_DIM(a, 0) != n_rows or cnp.PyArray_DIM(a, 1) != n
            or a.dtype != dtype or not cnp.PyArray_ISNOTSWAPPED(a) or not cnp.PyArray_ISALIGNED(a)):
        raise ValueError(f"{name}: expected an aligned native {dtype} array of shape ({n_rows}, {n})")
    cdef Py_ssize_t isz = cnp.PyArray_ITEMSIZE(a)
    if n > 1 and cnp.PyArray_STRIDE(a, 1) != isz:
        raise ValueError(f"{name}: rows must be contiguous")
    if n_rows > 1 and cnp.PyArray_STRIDE(a, 0) % isz != 0:
        raise ValueError(f"{name}: row stride must be a multiple of the item size")
    step[0] = cnp.PyArray_STRIDE(a, 0) // isz if n_rows > 1 else 0
    return cnp.PyArray_DATA(a)


def _family_rows(int op, a, b, mask, target, out, row_out, double scale_hi=1.0,
                 double scale_lo=0.0, double smoothing=0.0, double grad_scale=1.0,
                 int num_threads=0, double exp_step_hi=0.0, double exp_step_lo=0.0):
    """Run family op `op` (src_c/kernels/family.h) on (rows, n) matrices with
    contiguous rows, prepared by fastsoftmax._family; None for an unused
    argument.  `out` must be writeable and not overlap the inputs unless it
    is one of them."""
    cdef fsm_family_problem p
    if type(a) is not np.ndarray or (<cnp.ndarray>a).ndim != 2:
        raise ValueError("a: expected a 2-d ndarray")
    if not 0 <= op < 6:
        raise ValueError(f"unknown family op {op}")
    dtype = a.dtype
    if dtype != np.float32 and dtype != np.float64:
        raise ValueError("a: expected float32 or float64")
    p.op, p.is_f64 = op, dtype == np.float64
    p.rows, p.n = a.shape[0], a.shape[1]
    if p.rows == 0 or p.n == 0:
        return
    p.a = _rows_data(a, p.rows, p.n, dtype, &p.a_step, "a")
    p.b, p.b_step = NULL, 0
    p.mask, p.mask_step = NULL, 0
    p.target, p.out, p.row_out, p.out_step = NULL, NULL, NULL, 0
    if b is not None:
        p.b = _rows_data(b, p.rows, p.n, dtype, &p.b_step, "b")
    if mask is not None:
        p.mask = <const uint8_t *>_rows_data(mask, p.rows, p.n, np.uint8, &p.mask_step, "mask")
    if out is not None:
        if not (<cnp.ndarray>out).flags.writeable:
            raise ValueError("out is read-only")
        p.out = <void *>_rows_data(out, p.rows, p.n, dtype, &p.out_step, "out")
    if target is not None:
        if (type(target) is not np.ndarray or target.shape != (p.rows,) or target.dtype != np.int64
                or not (<cnp.ndarray>target).flags.c_contiguous):
            raise ValueError(f"target: expected a contiguous int64 array of shape ({p.rows},)")
        if p.rows and (target.min() < 0 or target.max() >= p.n):
            raise ValueError("target: class index out of range")
        p.target = <const int64_t *>cnp.PyArray_DATA(<cnp.ndarray>target)
    if row_out is not None:
        if (type(row_out) is not np.ndarray or row_out.shape != (p.rows,) or row_out.dtype != np.float64
                or not (<cnp.ndarray>row_out).flags.c_contiguous or not row_out.flags.writeable):
            raise ValueError(f"row_out: expected a writeable contiguous float64 array of shape ({p.rows},)")
        p.row_out = <double *>cnp.PyArray_DATA(<cnp.ndarray>row_out)
    if p.out == NULL and op in (0, 1, 3, 4):
        raise ValueError(f"family op {op} needs out")
    if p.row_out == NULL and op in (2, 5):
        raise ValueError(f"family op {op} needs row_out")
    if p.b == NULL and op in (3, 4):
        raise ValueError(f"family op {op} needs b")
    if op == 5 and (p.target == NULL) == (p.b == NULL):
        raise ValueError("cross entropy needs exactly one of target and b")
    if op == 0 or op == 1:
        if not (scale_hi != 0 and isfinite(scale_hi) and isfinite(scale_lo)):
            raise ValueError("scale must be finite and non-zero")
    p.scale_hi, p.scale_lo, p.smoothing, p.grad_scale = scale_hi, scale_lo, smoothing, grad_scale
    if exp_step_hi != 0 and not (2.0**-61 <= abs(exp_step_hi) <= 2.0**60 and isfinite(exp_step_lo)):
        raise ValueError("exp_step must be 0 or ln 2 / scale for 2^-60 <= |scale| <= 2^60")
    p.exp_step_hi, p.exp_step_lo = exp_step_hi, exp_step_lo
    num_threads = _threads_for_call(num_threads)
    with nogil:
        fsm_family_run(&p, num_threads)
