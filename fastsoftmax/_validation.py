"""Argument checks shared by the C-backed functions and `fastsoftmax.reference`.

Both paths call these, so a bad argument gets the same exception and message
whichever implementation runs.
"""
from __future__ import annotations

import functools
import operator

import numpy as np
from numpy.exceptions import AxisError

__all__ = [
    "names_errors", "named_error", "BFLOAT16", "HALF_DTYPES", "is_half", "common_dtype", "writable_as", "rounded_to",
    "prepare_input", "prepare_weights", "computed_by_numpy", "scalar_if_0d",
    "normalize_axes", "check_out", "overlaps_itself", "refuse_masked", "masked_as_where",
    "masked_result", "masked_reduction", "check_num_threads", "check_temperature_base",
    "check_temperature_range",
    "broadcast_where", "reduced_shape", "check_int_axis", "check_same_shape", "check_cross_entropy_args",
]


# --- the called function's name in every error message ------------------
#
# The checks below raise plain messages ("out has shape ..."); the public
# function they were called for puts its name in front, here and nowhere
# else, so that a message names the function the user called whichever
# helper raised it.

def named_error(exc: Exception, func: str) -> Exception:
    """`exc` (a TypeError or ValueError) as raised by the public function
    `func`: its message prefixed with ``"func: "`` unless it already is,
    as the same exception type (or, for a type that does not take a bare
    message, its nearest built-in base)."""
    message = str(exc)
    if message.startswith(f"{func}: "):
        return exc
    for cls in type(exc).__mro__:
        try:
            named = cls(f"{func}: {message}")
        except TypeError:  # a constructor that wants other arguments
            continue
        return named.with_traceback(exc.__traceback__)
    return exc


def names_errors(fn):
    """Decorator of a public function: the TypeErrors and ValueErrors
    (AxisError included) raised in it name it (`named_error`)."""
    @functools.wraps(fn)
    def public(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (TypeError, ValueError) as exc:
            raise named_error(exc, fn.__name__) from exc.__cause__
    return public


# --- dtypes -------------------------------------------------------------------
#
# Half precision: float16, and bfloat16 when ml_dtypes is installed (the
# optional extra fastsoftmax[ml]).  Both are computed in float32 and
# rounded once to the result: the kernels read and write them natively,
# the reference computes in float32.  Mixed precision: a half result may be
# written into a float32 out= (it is then not rounded to the half type),
# and a float32 result into an out= of a half type (rounded once to it).

try:
    import ml_dtypes
    BFLOAT16 = np.dtype(ml_dtypes.bfloat16)
except ImportError:  # the optional extra is not installed
    BFLOAT16 = None

HALF_DTYPES = (np.dtype(np.float16),) + (() if BFLOAT16 is None else (BFLOAT16,))


def is_half(dtype) -> bool:
    """Whether `dtype` is a half-precision type the kernels read natively."""
    return np.dtype(dtype) in HALF_DTYPES


def common_dtype(*dtypes) -> np.dtype:
    """NumPy's result type of computation dtypes, except that two different
    half types (which NumPy cannot promote) meet in float32."""
    dtypes = [np.dtype(d) for d in dtypes]
    if all(d == dtypes[0] for d in dtypes):
        return dtypes[0]
    return np.result_type(*(np.dtype(np.float32) if is_half(d) else d for d in dtypes))


def writable_as(result_dtype, out_dtype) -> bool:
    """Whether a result of `result_dtype` may be written into an out= of
    `out_dtype`: the same dtype, or half and float32 either way round."""
    result_dtype, out_dtype = np.dtype(result_dtype), np.dtype(out_dtype)
    if result_dtype == out_dtype:
        return True
    return {result_dtype, out_dtype} <= set(HALF_DTYPES + (np.dtype(np.float32),)) and \
        np.dtype(np.float32) in (result_dtype, out_dtype)


def rounded_to(result_dtype, out) -> np.dtype:
    """The dtype a result is rounded to, once: out's when out= is given
    (mixed precision, `writable_as`), else the result dtype."""
    return np.dtype(result_dtype) if out is None else out.dtype


def prepare_input(x, func: str, name: str = "x", complex_ok: bool = False, native_half: bool = False):
    """Return ``(array, result_dtype)`` for an array-like input of the
    public function `func` (named in the error messages).

    The array has the dtype the computation runs in (float32 or float64,
    native byte order, aligned) except for extended precision floats and,
    where `complex_ok`, complex numbers, which are returned as they are
    (NumPy computes them).  A half type (float16, bfloat16) is computed in
    float32 and returned as itself; with `native_half` (the kernels, which
    convert it themselves) the array stays in it.  bool and integers are
    computed and returned as float64.
    """
    refuse_masked(x, name)
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name} could not be converted to an array: {exc}") from exc
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f" and size in (4, 8):
        result = np.dtype(arr.dtype.type)  # drops a non-native byte order
        compute = result
    elif is_half(arr.dtype.newbyteorder("=")):
        result = np.dtype(arr.dtype.type)
        compute = result if native_half else np.dtype(np.float32)
    elif kind == "f" or (kind == "c" and complex_ok):
        return arr, np.dtype(arr.dtype.type)  # long double, complex: computed by the NumPy reference
    elif kind in "biu":
        result = compute = np.dtype(np.float64)
    else:
        expected = "a floating point (real or complex)" if complex_ok else "a real floating point"
        raise TypeError(
            f"{name} has dtype {arr.dtype}, which {func} does not accept: expected {expected}, "
            "integer or boolean array"
        )
    if arr.dtype != compute or not arr.flags.aligned:
        arr = arr.astype(compute, order="K")
    return arr, result


def computed_by_numpy(dtype) -> bool:
    """Whether NumPy (`fastsoftmax.reference`) computes this prepared
    dtype: no kernel handles extended precision or complex numbers."""
    return dtype.kind == "c" or dtype.itemsize > 8


def prepare_weights(arr, result_dtype, b, func: str):
    """logsumexp's weights: ``(x, weights, result_dtype)`` with x and the
    weights in one computation dtype, broadcast together as SciPy does (the
    weights usually as a stride-0 view); weights None when `b` is None."""
    if b is None:
        return arr, None, result_dtype
    w, w_result = prepare_input(b, func, "b", complex_ok=True, native_half=is_half(arr.dtype))
    compute = common_dtype(arr.dtype, w.dtype)
    try:
        arr, w = np.broadcast_arrays(arr.astype(compute, copy=False), w.astype(compute, copy=False))
    except ValueError:
        raise ValueError(f"b has shape {w.shape}, which does not broadcast with x's shape "
                         f"{arr.shape}") from None
    return arr, w, common_dtype(result_dtype, w_result)


def scalar_if_0d(result):
    """NumPy's convention for a reduction to a 0-d result: a NumPy scalar."""
    return result[()] if isinstance(result, np.ndarray) and result.ndim == 0 else result


# --- masked arrays ----------------------------------------------------------
#
# softmax, log_softmax and logsumexp honour a numpy.ma.MaskedArray x: its
# mask acts as `where=` (combined with any `where=` given) and the result is
# a masked array, as NumPy's own functions return one.  Every other array
# argument refuses one: converting it would silently drop its mask.

def refuse_masked(value, name: str) -> None:
    """Raise TypeError for a masked array where no mask can be honoured."""
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray, whose mask would be ignored here: masked arrays are "
            f"accepted only as x by softmax, log_softmax and logsumexp; pass np.ma.getdata({name}) "
            f"or {name}.filled(value) to use the data"
        )


def masked_as_where(x, where):
    """``(data, where, mask)``: for a masked array x, its data, `where`
    combined with the entries its mask keeps, and its mask (as a full bool
    array); for any other x, ``(x, where, None)``."""
    if not isinstance(x, np.ma.MaskedArray):
        return x, where, None
    mask = np.ma.getmaskarray(x).copy()
    kept = ~mask
    if where is not None:
        kept = kept & broadcast_where(where, mask.shape)
    return np.ma.getdata(x), kept, mask


def masked_reduction(result, mask, axis, keepdims, return_sign):
    """logsumexp's return value for a masked x: its result (and, with
    `return_sign`, its sign) masked where a group is entirely masked."""
    if mask is None:
        return result

    def mask_one(value):
        return masked_result(value, mask, axis, reduced=True, keepdims=keepdims)

    return tuple(map(mask_one, result)) if return_sign else mask_one(result)


def masked_result(result, mask, axis=None, reduced=False, keepdims=False):
    """`result` as it is when `mask` is None, else as a masked array: with
    `mask` itself, or for a reduction over `axis` (``reduced``), masked
    where every entry of a group is masked."""
    if mask is None:
        return result
    if reduced and mask.ndim > 0:
        mask = np.all(mask, axis=normalize_axes(axis, mask.ndim), keepdims=keepdims)
    return np.ma.MaskedArray(result, mask=mask)


def _axis_index(axis, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}")
    try:
        index = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int, a tuple of ints or None, got {axis!r}") from None
    if not -ndim <= index < ndim:
        raise AxisError(index, ndim)
    return index % ndim


def normalize_axes(axis, ndim: int) -> tuple:
    """Return the sorted tuple of non-negative axes that `axis` names.

    A 0-d array is treated as having one axis of length 1, so the default
    ``axis=-1`` works on it.
    """
    ndim = max(ndim, 1)
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (tuple, list)):
        axes = tuple(sorted(_axis_index(a, ndim) for a in axis))
        if len(set(axes)) != len(axes):
            raise ValueError(f"axis {tuple(axis)!r} names the same axis more than once")
        return axes
    return (_axis_index(axis, ndim),)


def check_out(out, shape: tuple, dtype: np.dtype, name: str = "out"):
    """Raise unless `out` can receive a result of this shape and dtype.

    An `out` whose elements share memory (a writeable view with a zero
    stride, or strides that interleave) is refused: the kernels write every
    element once, so such an output would hold whichever write came last.
    """
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    refuse_masked(out, name)
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if not writable_as(dtype, out.dtype):
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype} (the result dtype; a half type "
                        "and float32 may also be written into each other)")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    if overlaps_itself(out):
        raise ValueError(f"{name} has elements that share memory (a zero or interleaved stride, "
                         f"strides {out.strides}): write into an array with one element per address")


def overlaps_itself(arr: np.ndarray) -> bool:
    """Whether two elements of `arr` share a byte of memory (exact).

    Strides that nest (each at least the extent of the smaller ones, as in
    every transpose or slice of a contiguous array) cannot overlap; any other
    layout is decided from the byte offsets of all its elements.
    """
    if arr.size <= 1 or arr.flags.c_contiguous or arr.flags.f_contiguous:
        return False
    dims = sorted((abs(stride), extent) for stride, extent in zip(arr.strides, arr.shape) if extent > 1)
    if dims[0][0] == 0:
        return True
    span = arr.itemsize
    for stride, extent in dims:
        if stride < span:
            break
        span += stride * (extent - 1)
    else:
        return False
    offsets = np.zeros(1, np.int64)
    for stride, extent in dims:
        offsets = (offsets[:, None] + np.arange(extent, dtype=np.int64) * stride).ravel()
    offsets.sort()
    return bool(np.any(np.diff(offsets) < arr.itemsize))


def check_num_threads(num_threads) -> int:
    """Return the thread cap for a call: 0 for None (the OpenMP default)."""
    if num_threads is None:
        return 0
    if isinstance(num_threads, (bool, np.bool_)) or not isinstance(num_threads, (int, np.integer)):
        raise ValueError(f"num_threads must be None or an int >= 1, got {num_threads!r}")
    if num_threads < 1:
        raise ValueError(f"num_threads must be None or an int >= 1, got {num_threads!r}")
    return int(min(num_threads, 2**31 - 1))


def _real_number(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


# The temperatures accepted for each computation dtype: 1 / T and T ln 2
# (the kernels' reduction of exp's argument) stay normal numbers of that
# dtype, with room to spare.  Any finite base other than 1 has |ln b| within
# these bounds.
TEMPERATURE_LOG2_RANGE = {4: 100, 8: 1000}


def check_temperature_range(scaling, dtype) -> None:
    """Raise unless a temperature is within the range of `dtype`'s
    computation (float32 for float16 input, float64 for long double)."""
    if scaling is None or scaling[0] != "temperature":
        return
    e = TEMPERATURE_LOG2_RANGE[min(max(np.dtype(dtype).itemsize, 4), 8)]
    if not 2.0**-e <= scaling[1] <= 2.0**e:
        raise ValueError(f"temperature must be in [2**-{e}, 2**{e}] for {np.dtype(dtype)} input, "
                         f"got {scaling[1]!r}")


def check_temperature_base(temperature, base):
    """Validate the mutually exclusive `temperature` / `base` keywords.

    Returns None when neither is given, else ``("temperature", T)`` or
    ``("base", b)`` as floats.
    """
    if temperature is not None and base is not None:
        raise ValueError("temperature and base are mutually exclusive: give at most one")
    if temperature is not None:
        t = _real_number(temperature, "temperature")
        if not (np.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be finite and > 0, got {temperature!r}")
        return ("temperature", t)
    if base is not None:
        b = _real_number(base, "base")
        if not (np.isfinite(b) and b > 0 and b != 1):
            raise ValueError(f"base must be finite, > 0 and != 1, got {base!r}")
        return ("base", b)
    return None


def broadcast_where(where, shape: tuple, name: str = "where"):
    """`where` as a read-only boolean array broadcast to `shape`, or None."""
    if where is None:
        return None
    refuse_masked(where, name)
    mask = np.asarray(where)
    if mask.dtype != np.bool_:
        raise TypeError(f"{name} must be a boolean array, got dtype {mask.dtype}")
    try:
        return np.broadcast_to(mask, shape)
    except ValueError:
        raise ValueError(f"{name} has shape {mask.shape}, which does not broadcast to {shape}") from None


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    """Shape of a reduction of an array of `shape` over `axes`."""
    if keepdims:
        return tuple(1 if d in axes else s for d, s in enumerate(shape))
    return tuple(s for d, s in enumerate(shape) if d not in axes)


def check_int_axis(axis, ndim: int, name: str = "axis") -> int:
    """A single axis (cross_entropy's class axis) as a non-negative int."""
    if axis is None or isinstance(axis, (tuple, list)):
        raise TypeError(f"{name} must be an int here, got {axis!r}")
    return normalize_axes(axis, ndim)[0]


def check_same_shape(a, b, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{b_name} has shape {b.shape}, expected the shape of {a_name} {a.shape}")


def _largest_as_unsigned(indices):
    """The largest of integer `indices` read as unsigned, where a negative
    index is beyond any class count: the range check in one pass."""
    return indices.view(indices.dtype.str.replace("i", "u")).max()


def check_cross_entropy_args(logits, target, axis, reduction, label_smoothing, return_grad, num_threads,
                             grad_out=None, native_half=False):
    """Shared checks of cross_entropy: returns (logits array, result dtype,
    class axis, target array, whether target holds class indices).
    Probabilities are rounded to the logits' result dtype."""
    check_num_threads(num_threads)
    x, result_dtype = prepare_input(logits, "cross_entropy", "logits", native_half=native_half)
    if x.ndim == 0:
        raise ValueError("logits must have at least one dimension (the class axis)")
    ax = check_int_axis(axis, x.ndim)
    if x.shape[ax] == 0:
        raise ValueError(f"logits has no classes along axis {axis}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    if isinstance(label_smoothing, (bool, np.bool_)) or not isinstance(label_smoothing, (int, float, np.integer, np.floating)):
        raise TypeError(f"label_smoothing must be a real number, got {label_smoothing!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    if not isinstance(return_grad, (bool, np.bool_)):
        raise TypeError(f"return_grad must be a bool, got {return_grad!r}")
    if grad_out is not None:
        check_grad_out(grad_out, return_grad, x.shape, result_dtype)
    refuse_masked(target, "target")
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        expected = x.shape[:ax] + x.shape[ax + 1:]
        if t.shape != expected:
            raise ValueError(f"target holds class indices and has shape {t.shape}, expected {expected}")
        if t.size and _largest_as_unsigned(t) >= x.shape[ax]:
            raise ValueError(f"target has a class index out of range [0, {x.shape[ax]})")
        return x, result_dtype, ax, t, True
    if t.dtype.kind == "f" or is_half(t.dtype):
        if t.shape != x.shape:
            raise ValueError(f"target holds probabilities and has shape {t.shape}, expected {x.shape}")
        return x, result_dtype, ax, t.astype(result_dtype, copy=False).astype(x.dtype, copy=False), False
    raise TypeError(f"target must hold integer class indices or float probabilities, got dtype {t.dtype}")


def check_grad_out(grad_out, return_grad, shape, result_dtype):
    if not return_grad:
        raise ValueError("grad_out needs return_grad=True")
    check_out(grad_out, shape, result_dtype, name="grad_out")
