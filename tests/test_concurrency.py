"""Concurrency: many Python threads at once on shared inputs, the GIL
released while the kernels run, and fork() after OpenMP was used.

(tests/test_threads.py covers results across OpenMP thread counts and a
small thread-pool case; this file adds the many-thread stress with separate
outputs, the GIL measurement and fork.)"""
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastsoftmax
from util import FUNCTIONS, fast

needs_two_cpus = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")
needs_openmp = pytest.mark.skipif(not fastsoftmax.get_config()["openmp"],
                                  reason="built without OpenMP")


def shared_cases():
    """(function name, input, axis, num_threads): every function, both float
    dtypes, every driver plan's shapes, several thread caps."""
    rng = np.random.default_rng(5)
    inputs = [
        (rng.standard_normal((300, 200)), -1),           # rows
        (rng.standard_normal((2000, 10)), -1),           # short rows
        (rng.standard_normal((300, 200)), 0),            # columns
        (rng.standard_normal((2, 40000)), -1),           # split rows
        (rng.standard_normal((6, 20, 30))[:, ::-2], (0, 2)),  # strided, copied axes
        (rng.standard_normal((50, 60)), None),
    ]
    cases = []
    for name in FUNCTIONS:
        for x, axis in inputs:
            for dtype in (np.float32, np.float64):
                for threads in (None, 1, 2):
                    cases.append((name, x.astype(dtype), axis, threads))
    return cases


def run_all(cases, order, with_out):
    """Each case of `order` once; returns {case index: result}."""
    results = {}
    for i in order:
        name, x, axis, threads = cases[i]
        if with_out:
            out = np.empty(x.shape, x.dtype)
            assert fast(name)(x, axis, out=out, num_threads=threads) is out
            results[i] = out
        else:
            results[i] = fast(name)(x, axis, num_threads=threads)
    return results


@pytest.mark.parametrize("n_threads", [8])
def test_many_threads_shared_inputs_bit_identical(n_threads, variant):
    cases = shared_cases()
    copies = [x.copy() for _, x, _, _ in cases]
    serial = run_all(cases, range(len(cases)), with_out=False)
    barrier = threading.Barrier(n_threads)
    results, errors = [None] * n_threads, []

    def worker(k):
        try:
            order = np.random.default_rng(k).permutation(len(cases))
            barrier.wait()
            results[k] = run_all(cases, order, with_out=k % 2 == 0)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert all(r is not None for r in results)
    for per_thread in results:
        for i, got in per_thread.items():
            np.testing.assert_array_equal(got, serial[i], err_msg=f"case {i}: {cases[i][0]}")
    for (_, x, _, _), before in zip(cases, copies):
        np.testing.assert_array_equal(x, before)  # shared inputs untouched


# --- the GIL is released while the kernels run --------------------------------

def test_gil_released_while_a_kernel_runs():
    """Another thread runs Python code while a kernel call is under way.

    The switch interval is raised so that the interpreter never takes the GIL
    from the worker between its announcing the call and making it: the main
    thread, waiting on that announcement, can then run before the call
    returns only if the kernel released the GIL.  No timing is involved."""
    x = np.random.default_rng(0).standard_normal((2048, 4096))
    out = np.empty_like(x)
    announced, returned = threading.Event(), threading.Event()

    def worker():
        announced.set()
        fastsoftmax.softmax(x, out=out, num_threads=1)
        returned.set()

    previous = sys.getswitchinterval()
    sys.setswitchinterval(60.0)
    try:
        thread = threading.Thread(target=worker)
        thread.start()
        announced.wait()
        ran_during_call = not returned.is_set()
        thread.join()
    finally:
        sys.setswitchinterval(previous)
    assert ran_during_call, "the main thread could not run while the kernel ran: the GIL was held"


# --- fork after OpenMP --------------------------------------------------------

_FORK_SCRIPT = """
import multiprocessing as mp, os, sys
import numpy as np
import fastsoftmax

def threads():
    return len(os.listdir("/proc/self/task"))

x = np.random.default_rng(1).standard_normal((2048, 1000)).astype(np.float32)
before = threads()
expected = [fastsoftmax.softmax(x, num_threads=2), fastsoftmax.log_softmax(x, axis=0)]
assert threads() > before, "the parent did not start an OpenMP thread"

def child(queue):
    queue.put([fastsoftmax.softmax(x, num_threads=2), fastsoftmax.log_softmax(x, axis=0)])

ctx = mp.get_context("fork")
queue = ctx.Queue()
proc = ctx.Process(target=child, args=(queue,))
proc.start()
got = queue.get(timeout=60)
proc.join(timeout=60)
assert proc.exitcode == 0, proc.exitcode
for g, e in zip(got, expected):
    np.testing.assert_array_equal(g, e)
print("ok")
"""


@needs_openmp
def test_fork_after_openmp_does_not_hang(tmp_path):
    try:
        proc = subprocess.run([sys.executable, "-c", _FORK_SCRIPT], cwd=tmp_path,
                              capture_output=True, text=True, timeout=150)
    except subprocess.TimeoutExpired:
        pytest.fail("a forked child calling softmax hung after the parent used OpenMP")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_forked_child_runs_single_threaded(tmp_path):
    script = ("import os, fastsoftmax\n"
              "pid = os.fork()\n"
              "if pid == 0:\n"
              "    os._exit(0 if fastsoftmax.get_num_threads() == 1 else 3)\n"
              "print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))\n")
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "0"
