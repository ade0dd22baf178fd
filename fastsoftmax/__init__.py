"""fastsoftmax: softmax and log_softmax for NumPy arrays, in SIMD C with
OpenMP across rows.

    >>> import numpy as np, fastsoftmax
    >>> fastsoftmax.softmax(np.array([1.0, 2.0, 3.0]))
    array([0.09003057, 0.24472847, 0.66524096])
"""
import os as _os

try:
    from . import _core  # noqa: F401  (the compiled extension; everything needs it)
except ImportError:
    from importlib.machinery import EXTENSION_SUFFIXES as _SUFFIXES

    _here = _os.path.dirname(_os.path.abspath(__file__))
    # An extension that is there but fails to load (an editable install's,
    # after a C edit without a rebuild, say) keeps its own error.
    _built = any(_os.path.exists(_os.path.join(_here, "_core" + s)) for s in _SUFFIXES)
    if not _built and _os.path.exists(_os.path.join(_here, _os.pardir, "setup.py")):
        raise ImportError(
            f"fastsoftmax is being imported from its source folder ({_here}), which has no "
            "compiled extension for this Python. Build and install it (pip install .), then run "
            "Python from another directory, or use the `fastsoftmax` command, which never "
            "imports the source folder. For development, `pip install -e .` builds the "
            "extension in place."
        ) from None
    raise

from ._api import (
    cross_entropy, get_config, log_softmax, log_softmax_backward, logsumexp, show_config, softmax,
    softmax_backward,
)
from ._api import get_num_threads, set_num_threads
from ._version import __version__

__all__ = [
    "softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward",
    "cross_entropy", "show_config", "get_config", "__version__",
]
__all__ += ["set_num_threads", "get_num_threads"]
