"""Public functions: docstrings here, work in the compiled `_core`."""
from __future__ import annotations

from . import _core
from ._version import __version__

__all__ = ["softmax", "log_softmax", "show_config", "get_config"]

_COMMON_PARAMETERS = """
    Parameters
    ----------
    x : array_like
        Input.  float32 and float64 are computed in their own precision;
        float16 is computed in float32 and returned as float16; bool and
        integer inputs are computed and returned as float64; extended
        precision floats are computed by NumPy (`fastsoftmax.reference`).
        Complex, object and string dtypes raise TypeError.
    axis : int, tuple of int or None, default -1
        Axis or axes over which the {name} is taken; None means all axes.
        Note that `scipy.special.softmax` defaults to ``axis=None``.
    out : ndarray, optional
        Array of the result's shape and dtype to write into; it is returned.
        It may be `x` itself (in-place).
    num_threads : int, optional
        Upper bound on the threads this call may use.  None uses the OpenMP
        default (``OMP_NUM_THREADS``, threadpoolctl limits).  Small inputs
        always run on the calling thread.

    Returns
    -------
    ndarray
        Same shape as `x`.

    Notes
    -----
    A NaN or +inf in a group, or a group that is entirely -inf, makes every
    output of that group NaN; -inf among finite values gives {neg_inf}.  Empty
    inputs give empty outputs; a 0-d input is one group of one element.  The
    input is never modified unless it is passed as `out`.
"""


# The compiled functions are exported as they are (no Python wrapper on the
# call path); only their docstrings are written here.
softmax = _core.softmax
log_softmax = _core.log_softmax

softmax.__doc__ = (
    """Softmax, ``exp(x - max(x)) / sum(exp(x - max(x)))`` over `axis`.
"""
    + _COMMON_PARAMETERS.format(name="softmax", neg_inf="0")
    + """
    Examples
    --------
    >>> import numpy as np, fastsoftmax
    >>> fastsoftmax.softmax(np.array([[1.0, 1.0], [0.0, np.log(3.0)]]))
    array([[0.5 , 0.5 ],
           [0.25, 0.75]])
"""
)

log_softmax.__doc__ = (
    """Log of the softmax, ``(x - max(x)) - log(sum(exp(x - max(x))))``.
"""
    + _COMMON_PARAMETERS.format(name="log_softmax", neg_inf="-inf")
    + """
    Examples
    --------
    >>> import numpy as np, fastsoftmax
    >>> fastsoftmax.log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
"""
)


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
    }


def show_config() -> None:
    """Print `get_config()`, one item a line."""
    for key, value in get_config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:28s} {value}")
