"""Public functions: docstrings here, work in the compiled `_core`."""
from __future__ import annotations

import os

from . import _core
from ._version import __version__

__all__ = ["softmax", "log_softmax", "show_config", "get_config"]
__all__ += ["set_num_threads", "get_num_threads"]

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
        "num_threads": get_num_threads(),
        "num_threads_cap": _core._thread_cap_setting(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def show_config() -> None:
    """Print `get_config()`, one item a line."""
    for key, value in get_config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        print(f"{key:28s} {value}")


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
    up to `n` threads whatever this setting is.  In a child process started
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
        which reflects ``OMP_NUM_THREADS`` and threadpoolctl limits), capped by
        `set_num_threads`; 1 without OpenMP or in a forked child.  Small
        inputs use fewer threads than this.
    """
    return _core.get_num_threads()
