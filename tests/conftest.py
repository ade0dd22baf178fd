"""Shared fixtures: every kernel variant, and 1 and 2 threads.

pytest runs with ``--import-mode=importlib`` (pyproject.toml), which puts
nothing on ``sys.path``: the tests import the *installed* fastsoftmax.  The
shared helpers in ``tests/util.py`` are made importable here by adding this
folder (and only this folder) to ``sys.path``.
"""
import os
import sys

import pytest

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from fastsoftmax import _core  # noqa: E402

try:
    from hypothesis import settings
except ImportError:  # the Hypothesis tests are then skipped by pytest.importorskip
    settings = None
else:
    # "ci", the default: derandomized (the same examples on every run), no
    # example database, no per-example deadline (sanitizer builds are slow).
    # "explore": new random examples each run, more of them.
    settings.register_profile("ci", derandomize=True, database=None, deadline=None,
                              max_examples=100, print_blob=True)
    settings.register_profile("explore", deadline=None, max_examples=2000, print_blob=True)
    settings.load_profile(os.environ.get("FASTSOFTMAX_HYPOTHESIS_PROFILE", "ci"))

VARIANTS = _core.variants_supported()
# The variant this CPU runs (the best it supports, or FASTSOFTMAX_KERNEL's):
# the tests of the other variants are marked slow, so the fast subset
# (pytest -m "not slow") runs every variant-parametrized test once, with the
# kernels in use here. The whole suite (CI) runs them all.
DEFAULT_VARIANT = _core.active_variant()


def pytest_report_header(config):
    """Which fastsoftmax the tests import: an installed package (pip install
    ., a wheel) or an in-place build (pip install -e .)."""
    import fastsoftmax
    return [f"fastsoftmax {fastsoftmax.__version__} from {os.path.dirname(fastsoftmax.__file__)}",
            f"extension {_core.__file__}, kernel variant {DEFAULT_VARIANT}"]


@pytest.fixture(params=[pytest.param(v, marks=() if v == DEFAULT_VARIANT else pytest.mark.slow)
                        for v in VARIANTS])
def variant(request):
    """Run the test with kernel variant `request.param` active, then restore
    the variant that was active before."""
    previous = _core.active_variant()
    _core._set_variant(request.param)
    assert _core.active_variant() == request.param
    try:
        yield request.param
    finally:
        _core._set_variant(previous)


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def num_threads(request):
    return request.param
