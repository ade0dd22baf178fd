"""pytest-benchmark suite for softmax / log_softmax.

Run (from the repository root, against the installed package)::

    pip install ".[bench]"
    pytest benchmarks/test_bench_softmax.py                          # time everything
    pytest benchmarks/test_bench_softmax.py --benchmark-disable -q   # correctness smoke run
    pytest benchmarks --benchmark-save=base   # save a run; --benchmark-compare later

Each group is one (op, dtype, shape, axis) and holds the candidates of
``fastsoftmax bench`` for that array (``fastsoftmax._bench.candidates``, the
same calls on the same seeded input): fastsoftmax at 1 and 2 threads, the
NumPy formula and ``np.copyto`` (the memory floor). Peers: ``fastsoftmax
bench --peers``. This folder is not part of the main test run.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastsoftmax import _bench, _timing

CASES = [((2, 3), -1), ((16384, 128), -1), ((4096, 1000), -1), ((64, 32000), -1),
         ((1, 1000000), -1), ((1000, 4096), 0)]
THREADS = [1, 2]
IMPLS = [("fastsoftmax", t) for t in THREADS] + [("numpy", None), ("copy", None)]


def _array_candidates(dtype, shape, axis, op):
    x, y = _timing.make_input(dtype, shape)
    return x, y, {c.key: c for c in _bench.candidates(x, y, [op], [axis], THREADS, {})}


@pytest.mark.parametrize("impl", IMPLS, ids=[f"{i}{t or ''}" for i, t in IMPLS])
@pytest.mark.parametrize("op", _bench.OPS)
@pytest.mark.parametrize("case", CASES, ids=[f"{'x'.join(map(str, s))}-axis{a}" for s, a in CASES])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax(benchmark, cached, dtype, case, op, impl):
    (shape, axis), (name, threads) = case, impl
    x, y, cands = cached(_array_candidates, np.dtype(dtype).type, shape, axis, op)
    key = ("copy", None, None, None) if name == "copy" else (name, op, axis, threads)
    benchmark.group = f"{op} {dtype} {shape} axis={axis}"
    benchmark.extra_info.update(impl=name, threads=threads or 1, nbytes=x.nbytes)
    result = benchmark(cands[key].fn)
    if name == "copy":
        assert np.array_equal(y, x)
    else:
        tol = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-12, atol=1e-14)
        want = _bench.NUMPY_FN[op](x.astype(np.float64), axis)
        np.testing.assert_allclose(result, want, **tol)
