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


@pytest.fixture(params=VARIANTS)
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
