"""pytest plugin: runs SciPy's own tests of softmax, log_softmax and
logsumexp against `fastsoftmax.special`.  It only swaps the three functions
into `scipy.special` (and gives them SciPy's entries in its table of tested
array backends, which its test decorators look up) before the test module
is imported; nothing of SciPy is copied.  Used by test_scipy_suite.py:

    python -m pytest -p scipy_shim --pyargs scipy.special.tests.test_logsumexp
with this folder on PYTHONPATH.
"""
import scipy.special
from scipy._lib._array_api import xp_capabilities_table

import fastsoftmax.special

SWAPPED = ("softmax", "log_softmax", "logsumexp")


def pytest_configure(config):
    for name in SWAPPED:
        theirs, ours = getattr(scipy.special, name), getattr(fastsoftmax.special, name)
        xp_capabilities_table[ours] = xp_capabilities_table[theirs]
        setattr(scipy.special, name, ours)
    # SciPy's own pytest configuration registers this marker
    config.addinivalue_line("markers", "array_api_backends: tests run on every array backend")
