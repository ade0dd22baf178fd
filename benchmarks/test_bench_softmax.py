"""pytest-benchmark suite for fastsoftmax.

Run (from the repository root, against the installed package)::

    pip install ".[bench]"
    pytest benchmarks                              # time everything (~2 minutes)
    pytest benchmarks --benchmark-disable -q       # run each once, as a smoke test
    pytest benchmarks --benchmark-save=base        # save a run ...
    pytest benchmarks --benchmark-compare          # ... and compare a later one with it

Each benchmark group is one (op, dtype, shape, axis) and holds fastsoftmax at
1 and 2 threads, the NumPy reference formula and ``np.copyto(y, x)`` (the
memory floor: one read, one write), so the columns of a group compare
directly and ``--benchmark-compare`` lines up across runs.  Inputs are seeded
standard normal; fastsoftmax writes into a preallocated ``out``.  Every
benchmark also checks its result, so ``--benchmark-disable`` is a quick
correctness run.

This folder is not part of the main test run (``testpaths = ["tests"]`` in
pyproject.toml).  Peers (SciPy, PyTorch, ONNX Runtime) are compared by
``fastsoftmax bench --peers`` instead; for PyTorch install the CPU
wheel, ``pip install torch==2.13.0`` (torch is not in the ``bench`` extra).
"""
from __future__ import annotations

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax._bench import NUMPY_FN

# A subset of the grid of `fastsoftmax bench`, sized so that one
# call takes microseconds to a few milliseconds: (shape, axis).
CASES = [
    ((2, 3), -1),            # call overhead
    ((16384, 128), -1),      # short rows
    ((4096, 1000), -1),      # medium rows
    ((64, 32000), -1),       # long rows (vocabulary-sized)
    ((1, 1000000), -1),      # one very long row
    ((1000, 4096), 0),       # non-last axis of a C-contiguous array
]
CASE_IDS = [f"{'x'.join(map(str, s))}-axis{a}" for s, a in CASES]
DTYPES = [np.float32, np.float64]
DTYPE_IDS = ["float32", "float64"]
OPS = ["softmax", "log_softmax"]
THREADS = [1, 2]


NUMPY = NUMPY_FN  # the formula `fastsoftmax bench` times
FSM = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}


def _group(op, dtype, shape, axis):
    return f"{op} {np.dtype(dtype).name} {shape} axis={axis}"


def _tolerance(dtype):
    return dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("threads", THREADS, ids=[f"t{t}" for t in THREADS])
def test_fastsoftmax(benchmark, make_arrays, op, case, dtype, threads):
    shape, axis = case
    x, y = make_arrays(dtype, shape)
    benchmark.group = _group(op, dtype, shape, axis)
    benchmark.extra_info.update(impl="fastsoftmax", threads=threads, nbytes=x.nbytes,
                                kernel=fastsoftmax.get_config()["kernel_variant"])
    result = benchmark(FSM[op], x, axis, out=y, num_threads=threads)
    assert result is y
    np.testing.assert_allclose(y, NUMPY[op](x.astype(np.float64), axis), **_tolerance(dtype))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_numpy_reference(benchmark, make_arrays, op, case, dtype):
    shape, axis = case
    x, _ = make_arrays(dtype, shape)
    benchmark.group = _group(op, dtype, shape, axis)
    benchmark.extra_info.update(impl="numpy", threads=1, nbytes=x.nbytes)
    result = benchmark(NUMPY[op], x, axis)
    assert result.dtype == x.dtype and result.shape == x.shape


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_copy_floor(benchmark, make_arrays, op, case, dtype):
    """np.copyto(y, x): the memory floor, repeated in each op's group."""
    shape, axis = case
    x, y = make_arrays(dtype, shape)
    benchmark.group = _group(op, dtype, shape, axis)
    benchmark.extra_info.update(impl="copy", threads=1, nbytes=x.nbytes)
    benchmark(np.copyto, y, x)
    assert np.array_equal(y, x)
