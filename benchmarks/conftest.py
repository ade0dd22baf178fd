"""Fixtures for the pytest-benchmark suite (``pytest benchmarks``).

Inputs are seeded standard normal arrays, made once per (dtype, shape) and
shared by every benchmark of that array, with a preallocated output.
"""
from __future__ import annotations

import numpy as np
import pytest

SEED = 20240601


@pytest.fixture(scope="session")
def make_arrays():
    """``make_arrays(dtype, shape) -> (x, y)``: cached input and output arrays."""
    cache = {}

    def make(dtype, shape):
        key = (np.dtype(dtype).str, tuple(shape))
        if key not in cache:
            x = np.random.default_rng(SEED).standard_normal(shape, dtype=dtype)
            y = np.empty_like(x)
            y.fill(0)  # touch the pages outside the timing
            cache[key] = (x, y)
        return cache[key]

    return make


def pytest_report_header(config):
    try:
        import fastsoftmax

        cfg = fastsoftmax.get_config()
        return (f"fastsoftmax {cfg['version']} from {fastsoftmax.__file__}: kernel "
                f"{cfg['kernel_variant']}, OpenMP {'on' if cfg['openmp'] else 'off'}, "
                f"numpy {np.__version__}")
    except Exception as exc:  # noqa: BLE001 - a header must not break the run
        return f"fastsoftmax: not importable ({exc})"
