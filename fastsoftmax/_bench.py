"""``fastsoftmax bench``: fastsoftmax against NumPy, a plain copy and peers.

Only the standard library and NumPy are needed; SciPy, PyTorch, ONNX Runtime
(with ``--peers``) and matplotlib (with ``--plot``) are imported only when
asked for, and a peer that cannot be imported is left out (the header says
which were found).  ``pip install ".[bench]"`` installs all of them except
PyTorch; for PyTorch install the CPU wheel, ``pip install torch==2.13.0``
(plain ``pip install torch`` may pull a multi-GB CUDA build).

What is measured
----------------
For every input array (a dtype and a shape, seeded standard normal input, a
preallocated output ``y``) the candidates are

* ``fastsoftmax``: ``fastsoftmax.softmax(x, axis, out=y, num_threads=t)``
  (``log_softmax`` likewise), once per thread count ``t``;
* ``copy``: ``np.copyto(y, x)``, the memory floor (one read, one write);
* ``numpy``: the textbook formula, ``e = np.exp(x - x.max(axis,
  keepdims=True)); e / e.sum(axis, keepdims=True)`` (log_softmax: ``s = x -
  x.max(...); s - np.log(np.exp(s).sum(...))``), single threaded;
* with ``--peers``: ``scipy.special.softmax(x, axis=axis)`` (single
  threaded); ``torch.softmax(tx, axis, out=ty)`` on ``torch.from_numpy`` views
  of ``x`` and ``y`` made once, after ``torch.set_num_threads(t)``; ONNX
  Runtime, a one-node Softmax / LogSoftmax model (opset 13, the concrete
  shape) in a session with ``intra_op_num_threads=t``,
  ``inter_op_num_threads=1`` and the default graph optimisation, run with
  ``run_with_iobinding`` on an I/O binding of ``x`` and ``y`` themselves.

Method (the machine is noisy: absolute times drift, ratios taken in one run
hold):

* Each candidate is called once to warm up, and its result is checked against
  the NumPy formula on a subsample (a candidate that disagrees is reported as
  ``wrong`` and not timed).  Then a sample is ``n`` back-to-back calls, ``n``
  chosen so that a sample lasts at least ~1 ms, and the time per call is the
  sample's time / ``n``; for tiny inputs such as (2, 3) this is the per-call
  time of a loop of thousands of calls, Python call overhead included, as a
  user sees it.
* Interleaved rounds: in every round each candidate of the array is timed in
  turn (the order rotates from round to round), taking samples for a time
  budget (0.1 s, ``--quick`` 0.04 s) and at least one sample.  5 rounds (3
  with ``--quick``, or when one round of an array takes over 5 s).
* Before each candidate's turn the benchmark sleeps 30 ms: the worker
  threads a multi-threaded candidate leaves spinning (fastsoftmax's libgomp,
  PyTorch's own libgomp, ONNX Runtime's pool) would otherwise steal a core
  from the next candidate; on 2 cores this made PyTorch at 2 threads take
  milliseconds for a (2, 3) input.
* The CPU time other processes use during each array's measurement is read
  from /proc/stat; rows measured while it was >= 0.2 CPUs get a ``busy``
  note, and the run's average is printed: on a shared machine a neighbour
  spoils multi-threaded figures first.
* The reported time of a candidate is the **minimum** per-call time over all
  its samples of all rounds (the median of the per-round minima is in the
  JSON too).  Every ratio in a row comes from candidates timed in the same
  rounds.
* GB/s counts the bytes read and written: ``2 * x.nbytes / time``.
* NumPy, SciPy and the copy run on one thread whatever ``--threads`` says, so
  ``numpy/fsm`` at 2 threads compares one-thread NumPy with two-thread
  fastsoftmax.

The standard grid, float32 and float64, softmax and log_softmax, over the
last axis: (2, 3), (1000000, 10), (16384, 128), (4096, 1000), (64, 32000),
(1, 1000000), (24576, 512), (8192, 16384); the C-contiguous (1000, 4096) and
(32000, 64) over axis 0 next to axis -1 of the same array (``ax0/ax-1`` in
the notes); and (1, 10000000), measured at 1 thread, at every ``--threads``
count and at all cores, for thread scaling (``1thr/this`` in the notes).
``--quick``: (2, 3), (4096, 1000), (1000000, 10), (64, 32000), (1000, 4096)
over both axes, softmax only, 1 thread.

``--plot PATH`` adds a row-length sweep (measured after the table, same
method): a fixed 2**24 elements (2**22 with ``--quick``) of each dtype,
reshaped to rows of length 10 to 1 000 000, for the first ``--op`` at the
largest ``--threads`` count.  A fixed total size keeps the amount of memory
traffic constant, so the lines show what the row length alone costs each
implementation (per-row overhead for short rows, cache behaviour for long
ones), which the grid, whose shapes differ in both size and row length,
cannot.  The y axis is time relative to ``np.copyto`` of the same array
(lower is better, 1 = the memory floor), on a log scale; one line per
implementation, float32 and float64 side by side, the machine in the title.
"""
from __future__ import annotations

import argparse
import functools
import gc
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time

import numpy as np

import fastsoftmax

__all__ = ["main"]

PROG = "fastsoftmax bench"

STANDARD_SHAPES = [
    (2, 3),
    (1000000, 10),
    (16384, 128),
    (4096, 1000),
    (64, 32000),
    (1, 1000000),
    (24576, 512),
    (8192, 16384),
]
AXIS0_SHAPES = [(1000, 4096), (32000, 64)]
SCALING_SHAPE = (1, 10000000)
QUICK_SHAPES = [(2, 3), (4096, 1000), (1000000, 10), (64, 32000)]
QUICK_AXIS0_SHAPES = [(1000, 4096)]

OPS = ("softmax", "log_softmax")
DTYPES = {"float32": np.float32, "float64": np.float64}
PEER_ORDER = ("scipy", "torch", "onnxruntime")
PEER_SHORT = {"scipy": "scipy", "torch": "torch", "onnxruntime": "ort"}

SAMPLE_TARGET_S = 1e-3  # a sample lasts at least this long (tiny inputs: many calls)
MAX_SAMPLES_PER_ROUND = 200
SLOW_ROUND_S = 5.0
BUSY_WARN_CPUS = 0.2  # rows measured while others used this many CPUs get a note  # an array whose round takes longer gets only 3 rounds
SEED = 20240601
# Pause before each candidate's turn so that the worker threads the previous
# candidate left spinning (libgomp of fastsoftmax, torch's own libgomp, ONNX
# Runtime's pool) go to sleep and do not steal a core from the next one.
QUIESCE_S = 0.03


# --------------------------------------------------------------------------- #
# Arguments
# --------------------------------------------------------------------------- #


def _parse_list(text, kind, allowed=None):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty list: {text!r}")
    out = []
    for item in items:
        if allowed is not None:
            if item not in allowed:
                raise argparse.ArgumentTypeError(
                    f"{item!r} is not one of {', '.join(allowed)}"
                )
            out.append(item)
        else:
            try:
                value = kind(item)
            except ValueError:
                raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {item!r}") from None
            out.append(value)
    return out


def _threads_arg(text):
    values = _parse_list(text, int)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1: {text!r}")
    return sorted(set(values))


def _shapes_arg(text):
    """``"4096x1000,1000x4096:0"``: shapes; ``:0`` also measures axis 0."""
    specs = []
    for item in _parse_list(text, str):
        body, _, suffix = item.partition(":")
        if suffix not in ("", "0"):
            raise argparse.ArgumentTypeError(f"{item!r}: the only suffix is ':0' (also axis 0)")
        try:
            shape = tuple(int(d) for d in body.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a shape like 4096x1000: {item!r}") from None
        if not shape or any(d < 1 for d in shape):
            raise argparse.ArgumentTypeError(f"shape extents must be >= 1: {item!r}")
        if suffix == "0" and len(shape) < 2:
            raise argparse.ArgumentTypeError(f"{item!r}: axis 0 needs at least 2 dimensions")
        specs.append((shape, (-1, 0) if suffix == "0" else (-1,)))
    return specs


def _build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Time fastsoftmax against NumPy, np.copyto (the memory floor) and, "
        "with --peers, SciPy / PyTorch / ONNX Runtime; interleaved rounds, minimum "
        "per-call time, ratios from the same run.",
        epilog="Example: fastsoftmax bench --quick --peers --json bench.json",
    )
    p.add_argument("--quick", action="store_true",
                   help="a subset that runs in under a minute (softmax, 1 thread, 5 shapes)")
    p.add_argument("--threads", type=_threads_arg, default=None, metavar="T1,T2",
                   help="thread counts for fastsoftmax and the threaded peers (default 1)")
    p.add_argument("--peers", action="store_true",
                   help="also time scipy, torch and onnxruntime, those that import")
    p.add_argument("--dtype", type=lambda s: _parse_list(s, str, tuple(DTYPES)), default=None,
                   metavar="float32,float64", help="dtypes (default both)")
    p.add_argument("--op", type=lambda s: _parse_list(s, str, OPS), default=None,
                   metavar="softmax,log_softmax",
                   help="operations (default both; --quick: softmax)")
    p.add_argument("--shapes", type=_shapes_arg, default=None, metavar="AxB,...",
                   help="replace the shape grid, e.g. '4096x1000,64x32000'; "
                   "a ':0' suffix ('1000x4096:0') also measures axis 0")
    p.add_argument("--json", metavar="PATH", help="write every raw measurement to PATH")
    p.add_argument("--plot", metavar="PATH",
                   help="also run a row-length sweep and plot it to a PNG (needs matplotlib)")
    return p


# --------------------------------------------------------------------------- #
# Machine description
# --------------------------------------------------------------------------- #


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            info = f.read()
    except OSError:
        info = ""
    model, flags = None, set()
    for line in info.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Model", "cpu model") and model is None:
            model = value.strip()
        elif key in ("flags", "Features") and not flags:
            flags = set(value.split())
    model = model or platform.processor() or platform.machine() or "unknown CPU"
    isa = [f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "asimd", "sve") if f in flags]
    return model, isa


def _machine():
    model, isa = _cpu_model()
    cores = os.cpu_count() or 1
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = cores
    return {
        "cpu": model,
        "isa": isa,
        "logical_cpus": cores,
        "usable_cpus": usable,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "fastsoftmax": fastsoftmax.get_config(),
        "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                            "GOMP_SPINCOUNT", "FASTSOFTMAX_KERNEL")
                if k in os.environ},
    }


def _mem_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


class LoadMeter:
    """CPU used by *other* processes (and the hypervisor's steal) since start.

    From /proc/stat (all CPUs' busy time) minus this process's own CPU time
    (``os.times``); ``others()`` is in CPUs (1.0 = one core fully busy), None
    where /proc/stat is not available.  A shared machine's neighbours show up
    here, and they disturb multi-threaded timings most.
    """

    def __init__(self):
        try:
            self._hz = os.sysconf("SC_CLK_TCK")
        except (AttributeError, ValueError, OSError):
            self._hz = 100
        self.start()

    def _busy(self):
        try:
            with open("/proc/stat", encoding="ascii") as f:
                values = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
        return (sum(values) - idle) / self._hz

    def start(self):
        t = os.times()
        self._busy0, self._self0, self._wall0 = self._busy(), t.user + t.system, time.perf_counter()

    def others(self):
        busy = self._busy()
        wall = time.perf_counter() - self._wall0
        if busy is None or self._busy0 is None or wall <= 0:
            return None
        t = os.times()
        mine = t.user + t.system - self._self0
        return max(0.0, (busy - self._busy0 - mine) / wall)


# --------------------------------------------------------------------------- #
# Peers
# --------------------------------------------------------------------------- #


def _load_peers():
    """Import the peers that are installed: ``({name: module-ish}, {name: version}, missing)``."""
    found, versions, missing = {}, {}, {}
    try:
        import scipy
        import scipy.special

        found["scipy"] = scipy.special
        versions["scipy"] = scipy.__version__
    except Exception as exc:  # noqa: BLE001 - any import failure means "not found"
        missing["scipy"] = f"{type(exc).__name__}: {exc}"
    try:
        import torch

        found["torch"] = torch
        out_ok = _torch_out_supported(torch)
        versions["torch"] = torch.__version__ + ("" if out_ok else " (no out=: allocates)")
    except Exception as exc:  # noqa: BLE001
        missing["torch"] = f"{type(exc).__name__}: {exc}"
    try:
        import onnx
        import onnxruntime

        found["onnxruntime"] = (onnxruntime, onnx)
        versions["onnxruntime"] = f"{onnxruntime.__version__} (onnx {onnx.__version__})"
    except Exception as exc:  # noqa: BLE001
        missing["onnxruntime"] = f"{type(exc).__name__}: {exc}"
    return found, versions, missing


@functools.lru_cache(maxsize=None)
def _torch_out_supported(torch):
    try:
        a = torch.zeros(2, 3)
        b = torch.empty(2, 3)
        torch.softmax(a, -1, out=b)
        torch.log_softmax(a, -1, out=b)
        return True
    except (TypeError, RuntimeError):
        return False


def _ort_session(ort, onnx, op, axis, dtype, shape, threads):
    """A one-node Softmax / LogSoftmax session for this exact shape and dtype."""
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    node = helper.make_node("Softmax" if op == "softmax" else "LogSoftmax", ["x"], ["y"],
                            axis=int(axis))
    graph = helper.make_graph(
        [node], "fastsoftmax_bench",
        [helper.make_tensor_value_info("x", elem, list(shape))],
        [helper.make_tensor_value_info("y", elem, list(shape))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    error = None
    # A newer onnx may stamp an IR version the installed runtime cannot read yet.
    for ir_version in (model.ir_version, 10, 9, 8):
        model.ir_version = min(model.ir_version, ir_version)
        try:
            return ort.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            error = exc
            if "IR version" not in str(exc) and "ir_version" not in str(exc):
                break
    raise error


# --------------------------------------------------------------------------- #
# Candidates
# --------------------------------------------------------------------------- #


def _numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _numpy_log_softmax(x, axis):
    s = x - x.max(axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis, keepdims=True))


NUMPY_FN = {"softmax": _numpy_softmax, "log_softmax": _numpy_log_softmax}


class Candidate:
    """One thing to time on one array: ``fn()`` is a complete call."""

    def __init__(self, impl, op, axis, threads, fn, prepare=None, keep=()):
        self.impl, self.op, self.axis, self.threads = impl, op, axis, threads
        self.fn, self.prepare = fn, prepare
        self.keep = keep  # objects (sessions, bindings, tensors) fn needs alive
        self.n = 1
        self.rounds = []
        self.status = "ok"

    @property
    def label(self):
        parts = [self.impl]
        if self.op:
            parts.append(self.op)
        if self.axis is not None:
            parts.append(f"axis={self.axis}")
        if self.threads is not None:
            parts.append(f"t={self.threads}")
        return " ".join(parts)

    @property
    def best(self):
        samples = [s for r in self.rounds for s in r]
        return min(samples) if samples and self.status == "ok" else None

    @property
    def median_of_round_minima(self):
        minima = [min(r) for r in self.rounds if r]
        return statistics.median(minima) if minima and self.status == "ok" else None

    def record(self):
        return {
            "impl": self.impl, "op": self.op, "axis": self.axis, "threads": self.threads,
            "status": self.status, "calls_per_sample": self.n,
            "min_s": self.best, "median_of_round_minima_s": self.median_of_round_minima,
            "rounds_s": self.rounds,
        }


def _make_candidates(x, y, ops, axes, threads, peers, skip_numpy, failures):
    """Candidates for one array.  Peer set-up errors go to `failures` (label -> reason)."""
    fsm_fn = {"softmax": fastsoftmax.softmax, "log_softmax": fastsoftmax.log_softmax}
    cands = [Candidate("copy", None, None, None, functools.partial(np.copyto, y, x))]
    for op in ops:
        for axis in axes:
            if skip_numpy:
                c = Candidate("numpy", op, axis, None, None)
                c.status = "n/a (memory)"
                cands.append(c)
            else:
                cands.append(Candidate("numpy", op, axis, None,
                                       functools.partial(NUMPY_FN[op], x, axis)))
            for t in threads:
                cands.append(Candidate("fastsoftmax", op, axis, t, functools.partial(
                    fsm_fn[op], x, axis, out=y, num_threads=t)))
            if "scipy" in peers:
                special = peers["scipy"]
                c = Candidate("scipy", op, axis, None,
                              functools.partial(getattr(special, op), x, axis=axis))
                if skip_numpy:
                    c.status = "n/a (memory)"
                cands.append(c)
            if "torch" in peers:
                torch = peers["torch"]
                tx, ty = torch.from_numpy(x), torch.from_numpy(y)
                tfn = getattr(torch, op)
                for t in threads:
                    if _torch_out_supported(torch):
                        fn = functools.partial(tfn, tx, axis, out=ty)
                    else:
                        fn = functools.partial(tfn, tx, axis)
                    cands.append(Candidate("torch", op, axis, t, fn,
                                           prepare=functools.partial(torch.set_num_threads, t),
                                           keep=(tx, ty)))
            if "onnxruntime" in peers:
                ort, onnx = peers["onnxruntime"]
                for t in threads:
                    c = Candidate("onnxruntime", op, axis, t, None)
                    try:
                        sess = _ort_session(ort, onnx, op, axis, x.dtype.type, x.shape, t)
                        io = sess.io_binding()
                        io.bind_input("x", "cpu", 0, x.dtype.type, x.shape, x.ctypes.data)
                        io.bind_output("y", "cpu", 0, y.dtype.type, y.shape, y.ctypes.data)
                        c.fn = functools.partial(sess.run_with_iobinding, io)
                        c.keep = (sess, io)
                    except Exception as exc:  # noqa: BLE001
                        c.status = "n/a"
                        failures[f"onnxruntime {x.dtype} {op}"] = _short_error(exc)
                    cands.append(c)
    return cands


def _short_error(exc):
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


# --------------------------------------------------------------------------- #
# Timing
# --------------------------------------------------------------------------- #


def _time_calls(fn, n):
    perf = time.perf_counter
    if n == 1:
        t0 = perf()
        fn()
        return perf() - t0
    t0 = perf()
    for _ in range(n):
        fn()
    return (perf() - t0) / n


def _as_array(result, y):
    if result is None:  # onnxruntime's run_with_iobinding: written into y
        return y
    if isinstance(result, np.ndarray):
        return result
    if hasattr(result, "numpy"):  # torch.Tensor
        return result.numpy()
    return y


def _subsample(a, step):
    return np.array(a.reshape(-1)[::step], dtype=np.float64)


def _agrees(got, ref, dtype):
    if dtype == np.float32:
        rtol, atol = 1e-3, 1e-5
    else:
        rtol, atol = 1e-9, 1e-12
    return got.shape == ref.shape and bool(np.allclose(got, ref, rtol=rtol, atol=atol))


def _warm_up(cands, x, y, failures):
    """Call each candidate once, check its result, and choose calls per sample."""
    step = max(1, x.size // 200000)
    refs = {}
    # NumPy first: its result is the reference the others are checked against.
    ordered = sorted(cands, key=lambda c: {"numpy": 0, "fastsoftmax": 1}.get(c.impl, 2))
    for c in ordered:
        if c.status != "ok":
            continue
        try:
            if c.prepare:
                c.prepare()
            time.sleep(QUIESCE_S)
            result = c.fn()
            if c.op is not None:
                got = _subsample(_as_array(result, y), step)
                key = (c.op, c.axis)
                if key not in refs:
                    refs[key] = got
                elif not _agrees(got, refs[key], x.dtype.type):
                    c.status = "wrong"
                    failures[f"{c.label} {x.dtype} {x.shape}"] = (
                        "result disagrees with the NumPy formula; not timed")
                    continue
            t1 = min(_time_calls(c.fn, 1) for _ in range(3))
            if t1 < SAMPLE_TARGET_S:
                n = max(1, math.ceil(SAMPLE_TARGET_S / max(t1, 1e-8)))
                n = min(n, 100000)
                tn = _time_calls(c.fn, n)
                n = max(1, min(100000, math.ceil(SAMPLE_TARGET_S / max(tn, 1e-9))))
                c.n = n
        except Exception as exc:  # noqa: BLE001
            c.status = "error"
            failures[f"{c.label} {x.dtype} {x.shape}"] = _short_error(exc)


def _measure(cands, budget, rounds):
    active = [c for c in cands if c.status == "ok"]
    done = 0
    for r in range(rounds):
        t_round = time.perf_counter()
        k = r % len(active) if active else 0
        for c in active[k:] + active[:k]:
            if c.prepare:
                c.prepare()
            time.sleep(QUIESCE_S)
            samples = []
            t0 = time.perf_counter()
            while True:
                samples.append(_time_calls(c.fn, c.n))
                if time.perf_counter() - t0 >= budget or len(samples) >= MAX_SAMPLES_PER_ROUND:
                    break
            c.rounds.append(samples)
        done += 1
        if done >= 3 and time.perf_counter() - t_round > SLOW_ROUND_S:
            break
    return done


def _find(cands, impl, op=None, axis=None, threads=None):
    for c in cands:
        if c.impl == impl and c.op == op and c.axis == axis and c.threads == threads:
            return c
    return None


def _run_array(dtype, shape, ops, axes, threads, peers, budget, rounds, failures):
    """Measure every candidate on one array.

    Returns (candidates, rounds done, seconds, CPUs used by other processes).
    """
    t0 = time.perf_counter()
    meter = LoadMeter()
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal(shape, dtype=dtype)
    y = np.empty_like(x)
    y.fill(0)  # touch the pages before timing
    available = _mem_available()
    skip_numpy = available is not None and 4 * x.nbytes > available
    cands = _make_candidates(x, y, ops, axes, threads, peers, skip_numpy, failures)
    _warm_up(cands, x, y, failures)
    done = _measure(cands, budget, rounds)
    for c in cands:  # release sessions, tensors and the arrays
        c.fn = c.prepare = None
        c.keep = ()
    del x, y
    gc.collect()
    return cands, done, time.perf_counter() - t0, meter.others()


# --------------------------------------------------------------------------- #
# Plan, rows, table
# --------------------------------------------------------------------------- #


def _plan(args, cpus):
    """The arrays to measure: dicts of dtype, shape, axes, threads, ops, kind."""
    arrays = []
    if args.shapes is not None:
        specs = [(shape, axes, "grid") for shape, axes in args.shapes]
    elif args.quick:
        specs = [(s, (-1,), "grid") for s in QUICK_SHAPES]
        specs += [(s, (-1, 0), "axis0") for s in QUICK_AXIS0_SHAPES]
    else:
        specs = [(s, (-1,), "grid") for s in STANDARD_SHAPES]
        specs += [(s, (-1, 0), "axis0") for s in AXIS0_SHAPES]
        specs.append((SCALING_SHAPE, (-1,), "scaling"))
    for name in args.dtype:
        for shape, axes, kind in specs:
            threads = args.threads
            if kind == "scaling":
                threads = sorted(set(args.threads) | {1, cpus})
            arrays.append({"dtype": name, "shape": shape, "axes": axes, "kind": kind,
                           "threads": threads, "ops": list(args.op)})
    return arrays


def _rows_for(array, cands, peer_names):
    rows = []
    x_nbytes = math.prod(array["shape"]) * np.dtype(DTYPES[array["dtype"]]).itemsize
    copy = _find(cands, "copy").best
    for op in array["ops"]:
        for axis in array["axes"]:
            numpy_t = _find(cands, "numpy", op, axis).best
            numpy_c = _find(cands, "numpy", op, axis)
            for t in array["threads"]:
                fsm_c = _find(cands, "fastsoftmax", op, axis, t)
                fsm = fsm_c.best
                row = {
                    "dtype": array["dtype"], "op": op, "shape": list(array["shape"]),
                    "axis": axis, "threads": t, "kind": array["kind"],
                    "fsm_s": fsm, "fsm_status": fsm_c.status, "copy_s": copy,
                    "numpy_s": numpy_t, "numpy_status": numpy_c.status,
                    "gb_per_s": 2 * x_nbytes / fsm / 1e9 if fsm else None,
                    "fsm_over_copy": fsm / copy if fsm and copy else None,
                    "numpy_over_fsm": numpy_t / fsm if fsm and numpy_t else None,
                    "peers": {},
                }
                for name in peer_names:
                    pt = None if name == "scipy" else t
                    pc = _find(cands, name, op, axis, pt)
                    pbest = pc.best if pc else None
                    row["peers"][name] = {
                        "s": pbest, "status": pc.status if pc else "n/a",
                        "over_fsm": pbest / fsm if pbest and fsm else None,
                        "over_copy": pbest / copy if pbest and copy else None,
                    }
                if axis == 0:
                    other = _find(cands, "fastsoftmax", op, -1, t)
                    if other and other.best and fsm:
                        row["axis0_over_axis_last"] = fsm / other.best
                if t != 1:
                    one = _find(cands, "fastsoftmax", op, axis, 1)
                    if one and one.best and fsm:
                        row["one_thread_over_this"] = one.best / fsm
                rows.append(row)
    return rows


def _fmt_time(seconds):
    if seconds is None:
        return "n/a"
    micro = "µs" if _can_print("µ") else "us"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), (micro, 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"
    return "n/a"


@functools.lru_cache(maxsize=None)
def _can_print(ch):
    try:
        ch.encode(sys.stdout.encoding or "ascii")
        return True
    except (UnicodeEncodeError, LookupError):
        return False


def _fmt_ratio(v, status="ok"):
    if v is None:
        return status if status not in ("ok", None) else "n/a"
    return f"{v:.2f}"


def _table(rows, peer_names):
    head = ["dtype", "op", "shape", "axis", "thr", "fsm time", "GB/s", "fsm/copy", "numpy/fsm"]
    for name in peer_names:
        s = PEER_SHORT[name]
        head += [f"{s}/fsm", f"{s}/copy"]
    head.append("notes")
    body = []
    for r in rows:
        cells = [r["dtype"], r["op"], str(tuple(r["shape"])), str(r["axis"]), str(r["threads"]),
                 _fmt_time(r["fsm_s"]) if r["fsm_s"] else r["fsm_status"],
                 f"{r['gb_per_s']:.2f}" if r["gb_per_s"] else "n/a",
                 _fmt_ratio(r["fsm_over_copy"]),
                 _fmt_ratio(r["numpy_over_fsm"], r["numpy_status"])]
        for name in peer_names:
            p = r["peers"][name]
            cells += [_fmt_ratio(p["over_fsm"], p["status"]), _fmt_ratio(p["over_copy"], p["status"])]
        notes = []
        if "axis0_over_axis_last" in r:
            notes.append(f"ax0/ax-1={r['axis0_over_axis_last']:.2f}")
        if "one_thread_over_this" in r:
            notes.append(f"1thr/this={r['one_thread_over_this']:.2f}")
        if (r.get("background_cpus") or 0) >= BUSY_WARN_CPUS:
            notes.append(f"busy:{r['background_cpus']:.1f}cpu")
        cells.append(" ".join(notes))
        body.append(cells)
    return "\n".join(format_columns(head, body, {0, 1, 2, len(head) - 1},
                                    [(r["dtype"], r["op"]) for r in rows]))


def format_columns(head, body, left, groups):
    """Lines of a plain-text table: columns padded to their widest cell,
    those in `left` left-aligned, a blank line where `groups` changes."""
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    for i, cells in enumerate(body):
        if i and groups[i] != groups[i - 1]:
            out.append("")
        out.append(line(cells))
    return out


def _summary(rows, peer_names):
    lines = []
    groups = {}
    for r in rows:
        groups.setdefault((r["dtype"], r["threads"]), []).append(r)
    for (dtype, t), rs in groups.items():
        np_ratios = [r["numpy_over_fsm"] for r in rs if r["numpy_over_fsm"]]
        text = f"summary {dtype}, {t} thread{'s' if t != 1 else ''}, {len(rs)} rows: "
        text += (f"median numpy/fsm = {statistics.median(np_ratios):.2f}"
                 if np_ratios else "median numpy/fsm = n/a")
        if peer_names:
            best, winners = [], {}
            for r in rs:
                timed = [(p["s"], n) for n, p in r["peers"].items() if p["s"]]
                if timed and r["fsm_s"]:
                    s, name = min(timed)
                    best.append(s / r["fsm_s"])
                    winners[name] = winners.get(name, 0) + 1
            if best:
                who = ", ".join(f"{PEER_SHORT[n]} {k}" for n, k in sorted(winners.items()))
                text += (f"; median fastest-peer/fsm = {statistics.median(best):.2f}"
                         f" (fastest peer per row: {who})")
            else:
                text += "; median fastest-peer/fsm = n/a"
        lines.append(text)
    return "\n".join(lines)


def _header(meta, command, peer_versions, peer_missing, want_peers, quick):
    m = meta
    cfg = m["fastsoftmax"]
    lines = [
        "fastsoftmax benchmark",
        f"command:  {command}",
        f"machine:  {m['cpu']}, {m['logical_cpus']} logical CPUs ({m['usable_cpus']} usable)"
        + (f", {' '.join(m['isa'])}" if m["isa"] else "") + f"; {m['platform']}",
        f"software: python {m['python']}, numpy {m['numpy']}, fastsoftmax {cfg['version']} "
        f"(kernel {cfg['kernel_variant']}, OpenMP {'on' if cfg['openmp'] else 'off'}, "
        f"default {cfg['default_num_threads']} threads)",
    ]
    if m["env"]:
        lines.append("env:      " + " ".join(f"{k}={v}" for k, v in m["env"].items()))
    if want_peers:
        found = ", ".join(f"{n} {peer_versions[n]}" for n in PEER_ORDER if n in peer_versions)
        lines.append(f"peers:    {found or 'none found'}"
                     + (f"; not found: {', '.join(peer_missing)}" if peer_missing else ""))
    lines += [
        "method:   interleaved rounds (every candidate timed in turn, "
        + ("0.04 s each per round, 3 rounds" if quick else
           "0.1 s each per round, 5 rounds, 3 if a round takes > 5 s")
        + ", 30 ms pause between candidates); time = MINIMUM per-call time over all samples",
        "          GB/s = 2*x.nbytes/time; fsm/copy = time over np.copyto(y, x) (1.00 = the "
        "memory floor); X/fsm > 1: fastsoftmax is faster",
        "          numpy/scipy/copy are single-threaded; torch: set_num_threads(thr); "
        "ort: intra_op_num_threads=thr, io_binding",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- #
# Plot
# --------------------------------------------------------------------------- #


def _sweep(args, peers, failures, progress):
    total = 2 ** 22 if args.quick else 2 ** 24
    lengths = ([10, 100, 1000, 10000, 100000, 1000000] if args.quick else
               [10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000, 1000000])
    op, t = args.op[0], max(args.threads)
    budget, rounds = (0.02, 3) if args.quick else (0.05, 3)
    points = []
    k, n = 0, len(lengths) * len(args.dtype)
    for name in args.dtype:
        for length in lengths:
            k += 1
            shape = (max(1, total // length), length)
            progress(f"[plot {k}/{n}] {name} {shape} ...")
            cands, _, _, _ = _run_array(DTYPES[name], shape, [op], (-1,), [t], peers,
                                     budget, rounds, failures)
            copy = _find(cands, "copy").best
            point = {"dtype": name, "shape": list(shape), "row_length": length, "op": op,
                     "threads": t, "copy_s": copy, "impl_s": {}}
            for c in cands:
                if c.impl != "copy":
                    point["impl_s"][c.impl] = c.best
            points.append(point)
    return points, op, t, total


def _plot(path, points, meta, op, threads, total, peer_names):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = [d for d in DTYPES if any(p["dtype"] == d for p in points)]
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6.5 * len(dtypes), 4.8), squeeze=False,
                             sharey=True)
    impls = ["fastsoftmax", "numpy"] + list(peer_names)
    style = {"fastsoftmax": dict(color="C3", lw=2.5, marker="o"),
             "numpy": dict(color="C0", marker="s"), "scipy": dict(color="C2", marker="^"),
             "torch": dict(color="C1", marker="v"), "onnxruntime": dict(color="C4", marker="D")}
    for axp, dtype in zip(axes[0], dtypes):
        pts = [p for p in points if p["dtype"] == dtype]
        xs = [p["row_length"] for p in pts]
        for impl in impls:
            ys = [p["impl_s"].get(impl) / p["copy_s"]
                  if p["impl_s"].get(impl) and p["copy_s"] else float("nan") for p in pts]
            if any(math.isfinite(v) for v in ys):
                axp.plot(xs, ys, label=impl, ms=4, **style.get(impl, {}))
        axp.axhline(1.0, color="k", ls="--", lw=1, label="np.copyto (memory floor)")
        axp.set_xscale("log")
        axp.set_yscale("log")
        axp.set_xlabel("row length (elements; rows x length = %s)" % f"{total:,}")
        axp.set_title(f"{dtype} {op}")
        axp.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("time / time of np.copyto (lower is better)")
    axes[0][-1].legend(fontsize=8)
    cfg = meta["fastsoftmax"]
    fig.suptitle(f"{meta['cpu']}, {meta['usable_cpus']} cores; {threads} thread(s); "
                 f"fastsoftmax {cfg['version']} ({cfg['kernel_variant']}), numpy {meta['numpy']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# Main
# --------------------------------------------------------------------------- #


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    if args.threads is None:
        args.threads = [1]
    if args.dtype is None:
        args.dtype = list(DTYPES)
    if args.op is None:
        args.op = ["softmax"] if args.quick else list(OPS)
    args.dtype = list(dict.fromkeys(args.dtype))
    args.op = list(dict.fromkeys(args.op))
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write(f"{PROG}: --plot needs matplotlib (pip install matplotlib)\n")
            return 2

    def progress(text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    command = f"{PROG} {shlex.join(argv)}".rstrip()
    meta = _machine()
    peers, peer_versions, peer_missing = ({}, {}, {})
    if args.peers:
        peers, peer_versions, peer_missing = _load_peers()
        found = ", ".join(f"{n} {peer_versions[n]}" for n in PEER_ORDER if n in peer_versions)
        progress(f"peers found: {found or 'none'}")
        for name, why in peer_missing.items():
            progress(f"peer not found: {name} ({why})")
    peer_names = [n for n in PEER_ORDER if n in peers]

    budget, rounds = (0.04, 3) if args.quick else (0.1, 5)
    plan = _plan(args, meta["usable_cpus"])
    failures = {}
    rows, arrays_json = [], []
    t_start = time.perf_counter()
    run_meter = LoadMeter()
    for i, array in enumerate(plan, 1):
        label = f"[{i}/{len(plan)}] {array['dtype']} {array['shape']}"
        if array["axes"] != (-1,):
            label += " axis -1 and 0"
        progress(label + " ...")
        cands, done, secs, background = _run_array(
            DTYPES[array["dtype"]], array["shape"], array["ops"], array["axes"],
            array["threads"], peers, budget, rounds, failures)
        new_rows = _rows_for(array, cands, peer_names)
        for row in new_rows:
            row["background_cpus"] = background
        rows += new_rows
        arrays_json.append({**array, "shape": list(array["shape"]), "axes": list(array["axes"]),
                            "rounds": done, "seconds": secs, "background_cpus": background,
                            "candidates": [c.record() for c in cands]})
    run_background = run_meter.others()
    progress(f"measured in {time.perf_counter() - t_start:.1f} s")

    order = {(d, o): k for k, (d, o) in enumerate((d, o) for d in args.dtype for o in args.op)}
    rows.sort(key=lambda r: order[(r["dtype"], r["op"])])  # stable: keeps the grid order
    print(_header(meta, command, peer_versions, peer_missing, args.peers, args.quick))
    print()
    print(_table(rows, peer_names))
    print()
    print(_summary(rows, peer_names))
    if run_background is not None:
        busy = [r for r in rows if (r.get("background_cpus") or 0) >= BUSY_WARN_CPUS]
        print(f"background load: other processes used {run_background:.2f} of "
              f"{meta['logical_cpus']} CPUs on average during the run"
              + (f"; {len(busy)} of {len(rows)} rows were measured while they used >= "
                 f"{BUSY_WARN_CPUS} CPUs ('busy' in notes): their multi-threaded figures "
                 "especially are not reliable" if busy else ""))
    if failures:
        print()
        print("not measured / failed:")
        for what, why in failures.items():
            print(f"  {what}: {why}")

    sweep = None
    if args.plot:
        points, op, t, total = _sweep(args, peers, failures, progress)
        _plot(args.plot, points, meta, op, t, total, peer_names)
        sweep = {"op": op, "threads": t, "total_elements": total, "points": points}
        print(f"\nplot: {args.plot} (row-length sweep, {total:,} elements, {op}, {t} thread(s))")

    if args.json:
        doc = {"command": command, "argv": argv, "machine": meta,
               "peers": peer_versions, "peers_missing": peer_missing,
               "method": {"statistic": "min", "budget_s_per_candidate_per_round": budget,
                          "rounds": rounds, "sample_target_s": SAMPLE_TARGET_S, "seed": SEED},
               "background_cpus": run_background, "rows": rows, "arrays": arrays_json, "failures": failures, "sweep": sweep}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        print(f"raw measurements: {args.json}")
    return 0
