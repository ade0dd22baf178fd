"""pytest-benchmark suite for the softmax family (issue 4).

Run (from the repository root, against the installed package)::

    pip install ".[bench]"
    pytest benchmarks/test_bench_family.py                    # time everything
    pytest benchmarks/test_bench_family.py --benchmark-disable -q  # correctness smoke run

One group per (function, dtype) on a seeded (4096, 1000) array, classes along
the last axis: fastsoftmax at 1 thread, the NumPy composition a user would
write, and ``np.copyto(out, x)`` (the memory floor).  The functions, inputs and
compositions are those of ``fastsoftmax bench --family``
(``fastsoftmax._bench_family.CASES``): softmax plain, with ``temperature=`` and
with ``where=``, log_softmax, logsumexp, softmax_backward,
log_softmax_backward, and cross_entropy with class indices (with and without
``return_grad``) and with probabilities (``return_grad=True``).  Every
benchmark checks its result against ``fastsoftmax.reference``, so
``--benchmark-disable`` is a correctness run.

Issue 4's targets compare groups with each other (temperature= against plain
softmax, a backward against its forward, ...), which pytest-benchmark does
not do; ``fastsoftmax bench --family`` prints them with PASS/MISS.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastsoftmax._bench_family import CASES, SHAPE, agrees, make_data

DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
CASE_IDS = [c.name.replace(" ", "-").replace("=", "") for c in CASES]


@pytest.fixture(scope="module")
def data():
    """``data(dtype)``: the inputs of one dtype, made once per module."""
    cache = {}

    def get(dtype):
        key = np.dtype(dtype).name
        if key not in cache:
            cache[key] = make_data(dtype)
        return cache[key]

    return get


def _group(case, dtype):
    return f"{case.name} {np.dtype(dtype).name} {SHAPE}"


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_fastsoftmax(benchmark, data, dtype, case):
    d = data(dtype)
    benchmark.group = _group(case, dtype)
    benchmark.extra_info.update(impl="fastsoftmax", threads=1)
    result = benchmark(case.fsm(d, 1))
    assert agrees(result, case.ref(d), dtype)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_numpy_composition(benchmark, data, dtype, case):
    d = data(dtype)
    benchmark.group = _group(case, dtype)
    benchmark.extra_info.update(impl="numpy", threads=1)
    result = benchmark(case.numpy, d)
    assert agrees(result, case.ref(d), dtype)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_copy_floor(benchmark, data, dtype, case):
    """np.copyto(out, x): the memory floor, repeated in each group."""
    d = data(dtype)
    benchmark.group = _group(case, dtype)
    benchmark.extra_info.update(impl="copy", threads=1)
    benchmark(np.copyto, d.out, d.x)
    assert np.array_equal(d.out, d.x)
