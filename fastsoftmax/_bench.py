"""``fastsoftmax bench``: softmax / log_softmax against NumPy, np.copyto and peers.

Candidates per array: fastsoftmax at each ``--threads`` count (into a
preallocated ``out``); ``np.copyto(y, x)``, the memory floor; the NumPy
formula, one thread; with ``--peers`` ``scipy.special`` (one thread),
``torch.softmax`` (``set_num_threads``) and a one-node ONNX Runtime model
(``intra_op_num_threads``, I/O binding), those that import. Each result is
checked against the NumPy formula first; the timing is ``fastsoftmax._timing``'s.
"""
from __future__ import annotations

import argparse
import importlib
import math
import statistics
import sys
from functools import partial

import numpy as np

import fastsoftmax

from . import _timing
from ._timing import DTYPES, Candidate, fmt_ratio, fmt_time, progress
from ._validation import BFLOAT16, is_half

PROG = "fastsoftmax bench"
STANDARD_SHAPES = [(2, 3), (1000000, 10), (16384, 128), (4096, 1000), (64, 32000),
                   (1, 1000000), (24576, 512), (8192, 16384)]
AXIS0_SHAPES = [(1000, 4096), (32000, 64)]
SCALING_SHAPE = (1, 10000000)  # also at 1 thread and at all cores
QUICK_SHAPES = [(2, 3), (4096, 1000), (1000000, 10), (64, 32000)]
QUICK_AXIS0_SHAPES = [(1000, 4096)]
OPS = ("softmax", "log_softmax")
PEERS = {"scipy": "scipy", "torch": "torch", "onnxruntime": "ort"}  # name: column name
COPY = ("copy", None, None, None)
METHOD = ("GB/s = 2*x.nbytes/time; fsm/copy: 1.00 = the memory floor; X/fsm > 1: fastsoftmax "
          "is faster; numpy, scipy and copy run on one thread")


def numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def numpy_log_softmax(x, axis):
    s = x - x.max(axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis, keepdims=True))


NUMPY_FN = {"softmax": numpy_softmax, "log_softmax": numpy_log_softmax}


def _import_peer(name):
    """(module, version) of a peer; raises when it does not import."""
    if name in ("scipy", "torch"):
        module = importlib.import_module(name)
        return importlib.import_module("scipy.special") if name == "scipy" else module, \
            module.__version__
    import onnx
    import onnxruntime
    return (onnxruntime, onnx), f"{onnxruntime.__version__} (onnx {onnx.__version__})"


def load_peers():
    """The peers that import, ``{name: module}``, and every peer's version
    (``"not found"`` for those that do not import, reported on stderr)."""
    found, versions = {}, {}
    for name in PEERS:
        try:
            found[name], versions[name] = _import_peer(name)
        except Exception as exc:  # noqa: BLE001 - any import failure means "not found"
            progress(f"peer not found: {name} ({_timing.short_error(exc)})")
            versions[name] = "not found"
    return found, versions


def ort_session(ort, onnx, op, axis, dtype, shape, threads):
    """A one-node Softmax / LogSoftmax session for this exact shape and dtype."""
    from onnx import TensorProto, helper

    elem = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    node = helper.make_node("Softmax" if op == "softmax" else "LogSoftmax", ["x"], ["y"],
                            axis=int(axis))
    graph = helper.make_graph([node], "fastsoftmax_bench",
                              [helper.make_tensor_value_info("x", elem, list(shape))],
                              [helper.make_tensor_value_info("y", elem, list(shape))])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # what opset 13 needs; a newer onnx stamps IRs older runtimes refuse
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def _numpy_candidate(x, op, axis):
    """The NumPy formula; half precision computed in float32, as NumPy users do."""
    fn, key = NUMPY_FN[op], ("numpy", op, axis, None)
    if is_half(x.dtype):
        return Candidate(key, lambda: fn(x.astype(np.float32), axis).astype(x.dtype))
    return Candidate(key, partial(fn, x, axis))


def _torch_tensor(torch, a):
    """a as a torch tensor sharing its memory (bfloat16 through its bits)."""
    if a.dtype == BFLOAT16:
        return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(a)


def _peer_candidate(name, module, x, y, op, axis, t):
    if name == "scipy":
        return Candidate((name, op, axis, None), partial(getattr(module, op), x, axis=axis))
    if name == "torch":
        tx, ty = _torch_tensor(module, x), _torch_tensor(module, y)
        return Candidate((name, op, axis, t), partial(getattr(module, op), tx, axis, out=ty),
                         prepare=partial(module.set_num_threads, t), keep=(tx, ty))
    sess = ort_session(*module, op, axis, x.dtype.type, x.shape, t)
    io = sess.io_binding()
    io.bind_input("x", "cpu", 0, x.dtype.type, x.shape, x.ctypes.data)
    io.bind_output("y", "cpu", 0, y.dtype.type, y.shape, y.ctypes.data)
    return Candidate((name, op, axis, t), partial(sess.run_with_iobinding, io), keep=(sess, io))


def candidates(x, y, ops, axes, threads, failures, peers=None):
    """The candidates of one array; peer set-up errors go to ``failures``."""
    cands = [Candidate(COPY, partial(np.copyto, y, x))]
    for op in ops:
        for axis in axes:
            cands.append(_numpy_candidate(x, op, axis))
            cands += [Candidate(("fastsoftmax", op, axis, t), partial(
                getattr(fastsoftmax, op), x, axis, out=y, num_threads=t)) for t in threads]
            for name, module in (peers or {}).items():
                if is_half(x.dtype) and name != "torch":
                    continue  # no native half-precision softmax: torch is the peer there
                for t in [None] if name == "scipy" else threads:
                    try:
                        cands.append(_peer_candidate(name, module, x, y, op, axis, t))
                    except Exception as exc:  # noqa: BLE001
                        failures[f"{name} {op} {x.dtype} {x.shape}"] = _timing.short_error(exc)
    return cands


def _agreement_check(y, step):
    """Each (op, axis)'s first result (NumPy's) is the reference of the others
    (onnxruntime's is in y; torch returns its out= tensor, a view of y)."""
    refs = {}

    def check(c, result):
        if c.key == COPY:
            return True
        got = result if isinstance(result, np.ndarray) else y
        got = np.array(got.reshape(-1)[::step], dtype=np.float64)
        ref = refs.setdefault(c.key[1:3], got)
        rtol, atol = {2: (2e-2, 1e-3), 4: (1e-3, 1e-5)}.get(y.dtype.itemsize, (1e-9, 1e-12))
        return got.shape == ref.shape and bool(np.allclose(got, ref, rtol=rtol, atol=atol))
    return check


def measure_array(dtype, shape, ops, axes, threads, peers, budget, rounds, failures):
    """Time the candidates of one array, each checked against the NumPy formula."""
    x, y = _timing.make_input(dtype, shape)
    cands = candidates(x, y, ops, axes, threads, failures, peers)
    return _timing.run(cands, budget, rounds, failures, f"{x.dtype} {shape}",
                       _agreement_check(y, max(1, x.size // 200000)))


def _plan(args, cpus):
    """The arrays to measure: dicts of dtype, shape, axes, threads, ops."""
    grid = (QUICK_SHAPES, QUICK_AXIS0_SHAPES) if args.quick else (STANDARD_SHAPES, AXIS0_SHAPES)
    specs = args.shapes or [(s, (-1,)) for s in grid[0]] + [(s, (-1, 0)) for s in grid[1]]
    specs = [spec + (args.threads,) for spec in specs]
    if args.shapes is None and not args.quick:
        specs.append((SCALING_SHAPE, (-1,), sorted(set(args.threads) | {1, cpus})))
    return [{"dtype": name, "shape": shape, "axes": axes, "ops": args.op, "threads": threads}
            for name in args.dtype for shape, axes, threads in specs]


def _row(array, op, axis, t, times, background, peer_names):
    """One table row (``cells``) and its figures (``s``: each implementation's time)."""
    s = {impl: times.get((impl, op, axis, None if impl in ("numpy", "scipy") else t))
         for impl in ["fastsoftmax", "numpy"] + peer_names}
    fsm, copy, numpy_t = s["fastsoftmax"], times.get(COPY), s["numpy"]
    nbytes = math.prod(array["shape"]) * np.dtype(DTYPES[array["dtype"]]).itemsize
    one, last_axis = times.get(("fastsoftmax", op, axis, 1)), times.get(("fastsoftmax", op, -1, t))
    notes = [f"1thr/this={one / fsm:.2f}" if t != 1 and fsm and one else "",
             f"ax0/ax-1={fsm / last_axis:.2f}" if axis == 0 and fsm and last_axis else "",
             _timing.busy_note(background)]
    cells = [array["dtype"], op, str(tuple(array["shape"])), str(axis), str(t), fmt_time(fsm),
             fmt_ratio(fsm and 2 * nbytes / fsm / 1e9), fmt_ratio(fsm and copy and fsm / copy),
             fmt_ratio(fsm and numpy_t and numpy_t / fsm)]
    for name in peer_names:
        cells += [fmt_ratio(fsm and s[name] and s[name] / fsm),
                  fmt_ratio(copy and s[name] and s[name] / copy)]
    return {"dtype": array["dtype"], "op": op, "shape": list(array["shape"]), "axis": axis,
            "threads": t, "s": s, "copy_s": copy, "background_cpus": background,
            "cells": cells + [" ".join(n for n in notes if n)]}


def _summary(rows, peer_names):
    """Per dtype and thread count: the median numpy/fsm and fastest-peer/fsm."""
    lines = []
    for dtype, t in dict.fromkeys((r["dtype"], r["threads"]) for r in rows):
        rs = [r for r in rows if (r["dtype"], r["threads"]) == (dtype, t)]
        timed = [r["s"] for r in rs if r["s"]["fastsoftmax"]]
        ratios = [s["numpy"] / s["fastsoftmax"] for s in timed if s["numpy"]]
        text = (f"summary {dtype}, {t} thread(s), {len(rs)} rows: median numpy/fsm = "
                + (f"{statistics.median(ratios):.2f}" if ratios else "n/a"))
        fastest = [min((s[n], n) for n in peer_names if s[n]) + (s["fastsoftmax"],)
                   for s in timed if any(s[n] for n in peer_names)]
        if fastest:
            wins = {PEERS[n]: sum(w == n for _, w, _ in fastest) for _, n, _ in fastest}
            text += (f"; median fastest-peer/fsm = "
                     f"{statistics.median(p / f for p, _, f in fastest):.2f} (fastest peer per "
                     f"row: {', '.join(f'{n} {k}' for n, k in sorted(wins.items()))})")
        lines.append(text)
    return lines


def measure_plan(args, plan, peers):
    """The table rows of every array of ``plan`` (``_plan``'s dicts), timed with
    ``args.budget`` and ``args.rounds``; see ``_timing.measure_plan``."""
    def measure_one(array, failures):
        times, facts = measure_array(DTYPES[array["dtype"]], array["shape"], array["ops"],
                                     array["axes"], array["threads"], peers, args.budget,
                                     args.rounds, failures)
        return [_row(array, op, axis, t, times, facts["background_cpus"], list(peers))
                for op in array["ops"] for axis in array["axes"] for t in array["threads"]], facts
    return _timing.measure_plan(plan, measure_one)


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=(
        "Time fastsoftmax against NumPy, np.copyto (the memory floor) and, with --peers, "
        "SciPy / PyTorch / ONNX Runtime; interleaved rounds, minimum per-call time, ratios "
        "from the same run."), epilog="Example: fastsoftmax bench --quick --peers")
    _timing.add_common_arguments(p, "a subset that runs in under a minute (softmax, 5 shapes)")
    p.add_argument("--peers", action="store_true",
                   help="also time scipy, torch and onnxruntime, those that import, and "
                   "(unless --dtype) the half types, against torch's")
    p.add_argument("--op", type=_timing.list_arg(str, OPS),
                   metavar="softmax,log_softmax",
                   help="operations (default both; --quick: softmax)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _timing.parse_args(build_parser(), argv)
    args.dtype = args.dtype or (list(DTYPES) if args.peers else ["float32", "float64"])
    args.op = args.op or (["softmax"] if args.quick else list(OPS))
    peers, versions = load_peers() if args.peers else ({}, {})

    measured = measure_plan(args, _plan(args, _timing.machine()["usable_cpus"]), peers)
    rows = sorted(measured[0], key=lambda r: (args.dtype.index(r["dtype"]),
                                              args.op.index(r["op"])))
    head = ["dtype", "op", "shape", "axis", "thr", "fsm time", "GB/s", "fsm/copy", "numpy/fsm"]
    head += [f"{PEERS[n]}/{d}" for n in peers for d in ("fsm", "copy")] + ["notes"]
    table = (head, [r["cells"] for r in rows], {0, 1, 2, len(head) - 1},
             [(r["dtype"], r["op"]) for r in rows])
    _timing.report(args, "fastsoftmax benchmark", METHOD, table, _summary(rows, list(peers)),
                   measured, versions if args.peers else None, peers=versions, head=head)
    return 0
