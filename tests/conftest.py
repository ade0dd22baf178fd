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
