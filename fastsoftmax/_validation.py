"""Argument checks shared by the C-backed functions and `fastsoftmax.reference`.

Both paths call these, so a bad argument gets the same exception and message
whichever implementation runs.
"""
from __future__ import annotations

import operator

import numpy as np
from numpy.exceptions import AxisError

__all__ = [
    "prepare_input", "normalize_axes", "check_out", "check_num_threads", "check_temperature_base",
    "broadcast_where", "reduced_shape", "check_int_axis", "check_same_shape",
]


def prepare_input(x, name: str = "x"):
    """Return ``(array, result_dtype)`` for an array-like input.

    The array has the dtype the computation runs in (float32 or float64,
    native byte order, aligned) except for extended precision floats, which
    are returned as they are.  float16 is computed in float32 and returned as
    float16; bool and integers are computed and returned as float64.
    """
    try:
        arr = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{name} could not be converted to an array: {exc}") from exc
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    if kind == "f" and size in (4, 8):
        result = np.dtype(arr.dtype.type)  # drops a non-native byte order
        compute = result
    elif kind == "f" and size == 2:
        result, compute = np.dtype(np.float16), np.dtype(np.float32)
    elif kind == "f":
        return arr, np.dtype(arr.dtype.type)  # long double: computed by the NumPy reference
    elif kind in "biu":
        result = compute = np.dtype(np.float64)
    else:
        raise TypeError(
            f"{name} has dtype {arr.dtype}, which softmax does not accept: expected a real "
            "floating point, integer or boolean array"
        )
    if arr.dtype != compute or not arr.flags.aligned:
        arr = arr.astype(compute, order="K")
    return arr, result


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
    """Raise unless `out` can receive a result of this shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"{name} has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {dtype} (the result dtype)")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")


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
