"""Fixtures for the pytest-benchmark suite (``pytest benchmarks``): the arrays
and candidates of ``fastsoftmax bench`` / ``--family``, made once per array."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def cached():
    """``cached(make, *key)``: ``make(*key)``, made once per session."""
    cache = {}

    def get(make, *key):
        if key not in cache:
            cache[key] = make(*key)
        return cache[key]

    return get


def pytest_report_header(config):
    try:
        import fastsoftmax

        cfg = fastsoftmax.get_config()
        return (f"fastsoftmax {cfg['version']} from {fastsoftmax.__file__}: kernel "
                f"{cfg['kernel_variant']}, OpenMP {'on' if cfg['openmp'] else 'off'}, "
                f"numpy {np.__version__}")
    except Exception as exc:  # noqa: BLE001 - a header must not break the run
        return f"fastsoftmax: not importable ({exc})"
