"""Determinism: the guarantee of docs/design.md ("Determinism").

- Same input, same kernel variant: bit-identical output on every call, in
  every process, for every thread count (tests/test_threads.py checks 1, 2
  and the default on four layouts; here: every driver plan, odd thread
  counts, set_num_threads, OMP_NUM_THREADS, and the input at any address).
- Across kernel variants: each is within the accuracy bounds of the exact
  result, so two variants differ by at most twice those bounds.
"""
import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core
from util import (FLOAT_DTYPES, FUNCTIONS, LOG_SOFTMAX_EPS, SOFTMAX_EPS, eps,
                  extended_reference, fast)

# (label, shape, axis): one per driver plan, and the copy path of tuple axes.
PLAN_CASES = [
    ("rows", (512, 1000), -1),
    ("short_rows", (5000, 20), -1),
    ("columns", (300, 2000), 0),
    ("split_rows", (2, 3 * 16384 + 77), -1),
    ("tuple_axes", (20, 30, 40), (0, 2)),
    ("all_axes", (300, 300), None),
]


def make(shape, dtype, seed=0):
    return (np.random.default_rng(seed).standard_normal(shape) * 5).astype(dtype)


def digest(a):
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_every_thread_count_bit_identical(case, name, dtype, variant):
    _, shape, axis = case
    x = make(shape, dtype)
    first = fast(name)(x, axis, num_threads=1)
    for threads in (1, 2, 3, 4, 7):
        for _ in range(2):  # and again: repeated calls
            np.testing.assert_array_equal(fast(name)(x, axis, num_threads=threads), first,
                                          err_msg=f"num_threads={threads}")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_set_num_threads_does_not_change_bits(name):
    x = make((3, 40000), np.float32)
    free = fast(name)(x)
    try:
        for cap in (1, 2, 3):
            fastsoftmax.set_num_threads(cap)
            np.testing.assert_array_equal(fast(name)(x), free)
    finally:
        fastsoftmax.set_num_threads(None)


def at_offset(x, offset_bytes):
    """A C-contiguous copy of x whose data starts `offset_bytes` past a
    64-byte boundary."""
    buf = np.empty(x.nbytes + 128, np.uint8)
    start = (-buf.ctypes.data) % 64 + offset_bytes
    y = buf[start:start + x.nbytes].view(x.dtype).reshape(x.shape)
    y[...] = x
    return y


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", PLAN_CASES[:4], ids=[c[0] for c in PLAN_CASES[:4]])
def test_address_of_the_input_does_not_change_bits(case, name, dtype, variant):
    """Alignment peeling must not change the order of a sum: the same values
    at any (element-aligned) address give the same bits, and so does an out
    at any address."""
    _, shape, axis = case
    x = make(shape, dtype)
    expected = fast(name)(at_offset(x, 0), axis)
    itemsize = np.dtype(dtype).itemsize
    for offset in (itemsize, 2 * itemsize, 3 * itemsize, 32 - itemsize, 32):
        np.testing.assert_array_equal(fast(name)(at_offset(x, offset), axis), expected,
                                      err_msg=f"input at offset {offset}")
        out = at_offset(np.zeros_like(x), offset)
        fast(name)(x, axis, out=out)
        np.testing.assert_array_equal(out, expected, err_msg=f"out at offset {offset}")


_PROCESS_SCRIPT = """
import hashlib, sys
import numpy as np
import fastsoftmax
from fastsoftmax import _core
_core._set_variant(sys.argv[1])
parts = []
for name in ("softmax", "log_softmax"):
    for shape, axis in [((512, 1000), -1), ((300, 2000), 0), ((2, 49229), -1), ((5000, 20), -1)]:
        for dtype in (np.float32, np.float64):
            x = (np.random.default_rng(0).standard_normal(shape) * 5).astype(dtype)
            parts.append(getattr(fastsoftmax, name)(x, axis).tobytes())
print(hashlib.sha256(b"".join(parts)).hexdigest())
"""


def process_digest(tmp_path, variant, omp_threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(omp_threads))
    proc = subprocess.run([sys.executable, "-c", _PROCESS_SCRIPT, variant], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.slow  # over a second here
def test_bit_identical_across_processes_and_omp_num_threads(tmp_path, variant):
    digests = {process_digest(tmp_path, variant, threads) for threads in (1, 2, 4)}
    digests.add(process_digest(tmp_path, variant, 2))
    assert len(digests) == 1, digests


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", PLAN_CASES, ids=[c[0] for c in PLAN_CASES])
def test_variants_agree_within_twice_the_accuracy_bound(case, name, dtype):
    _, shape, axis = case
    x = make(shape, dtype, seed=3)
    previous = _core.active_variant()
    results = {}
    try:
        for v in _core.variants_supported():
            _core._set_variant(v)
            results[v] = fast(name)(x, axis).astype(np.longdouble)
    finally:
        _core._set_variant(previous)
    bound = 2 * (SOFTMAX_EPS if name == "softmax" else LOG_SOFTMAX_EPS) * eps(dtype)
    exact = extended_reference(name, x, axis)
    scale = np.abs(exact) if name == "softmax" else np.where(np.abs(exact) > 1e-3, np.abs(exact), 1)
    atol = 2 * float(np.finfo(dtype).smallest_subnormal) if name == "softmax" else 0
    base = results["scalar"]
    for v, got in results.items():
        excess = np.abs(got - base) - (bound * scale + atol)
        assert np.max(excess) <= 0, f"{v} vs scalar: {np.max(np.abs(got - base) / scale) / eps(dtype):.1f} eps"
