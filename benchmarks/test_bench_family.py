"""pytest-benchmark suite for the softmax family.

Run (from the repository root, against the installed package)::

    pip install ".[bench]"
    pytest benchmarks/test_bench_family.py                          # time everything
    pytest benchmarks/test_bench_family.py --benchmark-disable -q   # correctness smoke run

One group per (dtype, shape, axis) of the ``--quick`` grid of ``fastsoftmax
bench --family``, holding every function of that bench at 1 thread, built by
the same code (``fastsoftmax._bench_family.candidates`` on ``make_inputs``),
so plain softmax / log_softmax sit next to the functions compared with them.
Each result is checked against ``fastsoftmax.reference``. The targets and
the thread scaling are in ``fastsoftmax bench --family``.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastsoftmax import _bench_family, reference
from fastsoftmax._bench_family import BASE, FUNCTIONS, QUICK_GRID, TEMPERATURE


def _candidates(dtype, shape, axis):
    d = _bench_family.make_inputs(dtype, shape, axis)
    return d, {c.key[0]: c for c in _bench_family.candidates(d, [1])}


def _reference(name, d):
    """What ``reference`` gives for the function called ``name`` on inputs ``d``."""
    op, _, option = name.partition(" ")
    x, axis = d.x, d.axis
    options = {f"temperature={TEMPERATURE}": dict(temperature=TEMPERATURE),
               f"base={BASE}": dict(base=BASE), "where=mask": dict(where=d.mask), "": {}}
    if op in ("softmax", "log_softmax"):
        return getattr(reference, op)(x, axis, **options[option])
    if op == "logsumexp":
        return reference.logsumexp(x, axis, b=d.weights if option == "b=weights" else None)
    if op.endswith("_backward"):
        return getattr(reference, op)(d.grad, d.y if op == "softmax_backward" else d.log_y, axis)
    target = d.probs if option == "probs" else d.index
    return reference.cross_entropy(x, target, axis, return_grad=option.endswith("+grad"))


def _assert_close(got, want, dtype):
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            _assert_close(g, w, dtype)
        return
    want = np.asarray(want, np.float64)
    finite = want[np.isfinite(want)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    rtol, atol = (1e-4, 1e-5) if dtype == np.float32 else (1e-10, 1e-12)
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("function", [f.name for f in FUNCTIONS])
@pytest.mark.parametrize("case", QUICK_GRID, ids=[f"{'x'.join(map(str, s))}-axis{a}"
                                                  for s, a in QUICK_GRID])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_family(benchmark, cached, dtype, case, function):
    shape, axis = case
    d, cands = cached(_candidates, np.dtype(dtype).type, shape, axis)
    benchmark.group = f"{dtype} {shape} axis={axis}"
    benchmark.extra_info.update(threads=1)
    result = benchmark(cands[function].fn)
    _assert_close(result, _reference(function, d), np.dtype(dtype).type)
