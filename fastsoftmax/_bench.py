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
import functools
import math
import shlex
import statistics
import sys
import time

import numpy as np

import fastsoftmax

from . import _timing
from ._timing import DTYPES, Candidate, fmt_ratio, fmt_time, progress

__all__ = ["main", "NUMPY_FN", "candidates", "load_peers", "ort_session"]

PROG = "fastsoftmax bench"
STANDARD_SHAPES = [(2, 3), (1000000, 10), (16384, 128), (4096, 1000), (64, 32000),
                   (1, 1000000), (24576, 512), (8192, 16384)]
AXIS0_SHAPES = [(1000, 4096), (32000, 64)]
SCALING_SHAPE = (1, 10000000)  # also at 1 thread and at all cores
QUICK_SHAPES = [(2, 3), (4096, 1000), (1000000, 10), (64, 32000)]
QUICK_AXIS0_SHAPES = [(1000, 4096)]
OPS = ("softmax", "log_softmax")
PEERS = ("scipy", "torch", "onnxruntime")
PEER_SHORT = {"scipy": "scipy", "torch": "torch", "onnxruntime": "ort"}
METHOD = ("interleaved rounds, order rotating, 30 ms pause between candidates; time = MINIMUM "
          "per-call time; GB/s = 2*x.nbytes/time; fsm/copy: 1.00 = the memory floor; "
          "X/fsm > 1: fastsoftmax is faster; numpy, scipy and copy run on one thread")


def numpy_softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def numpy_log_softmax(x, axis):
    s = x - x.max(axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis, keepdims=True))


NUMPY_FN = {"softmax": numpy_softmax, "log_softmax": numpy_log_softmax}


def load_peers():
    """The peers that import: ``({name: module}, {name: version}, {name: why not})``."""
    found, versions, missing = {}, {}, {}
    for name in PEERS:
        try:
            if name == "scipy":
                import scipy
                import scipy.special
                found[name], versions[name] = scipy.special, scipy.__version__
            elif name == "torch":
                import torch
                found[name] = torch
                versions[name] = torch.__version__ + ("" if _torch_has_out(torch) else " (no out=)")
            else:
                import onnx
                import onnxruntime
                found[name] = (onnxruntime, onnx)
                versions[name] = f"{onnxruntime.__version__} (onnx {onnx.__version__})"
        except Exception as exc:  # noqa: BLE001 - any import failure means "not found"
            missing[name] = _timing.short_error(exc)
    return found, versions, missing


@functools.lru_cache(maxsize=None)
def _torch_has_out(torch):
    try:
        torch.softmax(torch.zeros(2, 3), -1, out=torch.empty(2, 3))
        return True
    except (TypeError, RuntimeError):
        return False


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
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
    error = None
    for ir_version in (model.ir_version, 10, 9, 8):  # a newer onnx may stamp a too new IR
        model.ir_version = min(model.ir_version, ir_version)
        try:
            return ort.InferenceSession(model.SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001
            error = exc
            if "ir_version" not in str(exc).lower().replace(" ", "_"):
                break
    raise error


def _peer_candidates(name, module, x, y, op, axis, threads):
    if name == "scipy":
        return [Candidate((name, op, axis, None), functools.partial(getattr(module, op), x,
                                                                     axis=axis))]
    if name == "torch":
        tx, ty = module.from_numpy(x), module.from_numpy(y)
        out = {"out": ty} if _torch_has_out(module) else {}
        return [Candidate((name, op, axis, t), functools.partial(getattr(module, op), tx, axis,
                                                                 **out),
                          prepare=functools.partial(module.set_num_threads, t), keep=(tx, ty))
                for t in threads]
    ort, onnx = module
    cands = []
    for t in threads:
        sess = ort_session(ort, onnx, op, axis, x.dtype.type, x.shape, t)
        io = sess.io_binding()
        io.bind_input("x", "cpu", 0, x.dtype.type, x.shape, x.ctypes.data)
        io.bind_output("y", "cpu", 0, y.dtype.type, y.shape, y.ctypes.data)
        cands.append(Candidate((name, op, axis, t), functools.partial(sess.run_with_iobinding, io),
                               keep=(sess, io)))
    return cands


def candidates(x, y, ops, axes, threads, peers=None, numpy_fits=True, failures=None):
    """The candidates of one array; peer set-up errors go to ``failures``."""
    peers, failures = peers or {}, {} if failures is None else failures
    cands = [Candidate(("copy", None, None, None), functools.partial(np.copyto, y, x))]
    for op in ops:
        for axis in axes:
            if numpy_fits:
                cands.append(Candidate(("numpy", op, axis, None),
                                       functools.partial(NUMPY_FN[op], x, axis)))
            fsm = getattr(fastsoftmax, op)
            cands += [Candidate(("fastsoftmax", op, axis, t),
                                functools.partial(fsm, x, axis, out=y, num_threads=t))
                      for t in threads]
            for name, module in peers.items():
                if name == "scipy" and not numpy_fits:
                    continue
                try:
                    cands += _peer_candidates(name, module, x, y, op, axis, threads)
                except Exception as exc:  # noqa: BLE001
                    failures[f"{name} {op} {x.dtype} {x.shape}"] = _timing.short_error(exc)
    return cands


def _agreement_check(y, step):
    """Each (op, axis)'s first result (NumPy's) is the reference of the others."""
    refs = {}

    def check(c, result):
        if c.key[1] is None:
            return True
        got = result if isinstance(result, np.ndarray) else (
            result.numpy() if hasattr(result, "numpy") else y)
        got = np.array(got.reshape(-1)[::step], dtype=np.float64)
        ref = refs.setdefault(c.key[1:3], got)
        rtol, atol = (1e-3, 1e-5) if y.dtype == np.float32 else (1e-9, 1e-12)
        return got.shape == ref.shape and bool(np.allclose(got, ref, rtol=rtol, atol=atol))
    return check


def _mem_available():
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            return next(int(line.split()[1]) * 1024 for line in f
                        if line.startswith("MemAvailable:"))
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def measure_array(dtype, shape, ops, axes, threads, peers, budget, rounds, failures):
    x, y = _timing.make_input(dtype, shape)
    available = _mem_available()
    numpy_fits = available is None or 4 * x.nbytes <= available
    if not numpy_fits:
        failures[f"numpy, scipy {x.dtype} {shape}"] = "not measured: not enough memory"
    cands = candidates(x, y, ops, axes, threads, peers, numpy_fits, failures)
    return _timing.run(cands, budget, rounds, failures, f"{x.dtype} {shape}",
                       _agreement_check(y, max(1, x.size // 200000)))


def _plan(args, cpus):
    """The arrays to measure: dicts of dtype, shape, axes, threads, kind."""
    if args.shapes is not None:
        specs = [(shape, axes, "grid") for shape, axes in args.shapes]
    else:
        shapes, axis0 = (QUICK_SHAPES, QUICK_AXIS0_SHAPES) if args.quick else (
            STANDARD_SHAPES, AXIS0_SHAPES)
        specs = [(s, (-1,), "grid") for s in shapes] + [(s, (-1, 0), "axis0") for s in axis0]
        if not args.quick:
            specs.append((SCALING_SHAPE, (-1,), "scaling"))
    return [{"dtype": name, "shape": shape, "axes": axes, "kind": kind,
             "threads": sorted(set(args.threads) | {1, cpus}) if kind == "scaling"
             else args.threads}
            for name in args.dtype for shape, axes, kind in specs]


def _rows(array, ops, times, background, peer_names):
    rows = []
    nbytes = math.prod(array["shape"]) * np.dtype(DTYPES[array["dtype"]]).itemsize
    copy = times.get(("copy", None, None, None))
    for op in ops:
        for axis in array["axes"]:
            numpy_t = times.get(("numpy", op, axis, None))
            for t in array["threads"]:
                fsm = times.get(("fastsoftmax", op, axis, t))
                row = {"dtype": array["dtype"], "op": op, "shape": list(array["shape"]),
                       "axis": axis, "threads": t, "kind": array["kind"], "fsm_s": fsm,
                       "copy_s": copy, "numpy_s": numpy_t, "background_cpus": background,
                       "gb_per_s": 2 * nbytes / fsm / 1e9 if fsm else None,
                       "fsm_over_copy": fsm / copy if fsm and copy else None,
                       "numpy_over_fsm": numpy_t / fsm if fsm and numpy_t else None,
                       "peers": {}}
                for name in peer_names:
                    s = times.get((name, op, axis, None if name == "scipy" else t))
                    row["peers"][name] = {"s": s, "over_fsm": s / fsm if s and fsm else None,
                                          "over_copy": s / copy if s and copy else None}
                other_axis = times.get(("fastsoftmax", op, -1, t))
                if axis == 0 and other_axis and fsm:
                    row["axis0_over_axis_last"] = fsm / other_axis
                one_thread = times.get(("fastsoftmax", op, axis, 1))
                if t != 1 and one_thread and fsm:
                    row["one_thread_over_this"] = one_thread / fsm
                rows.append(row)
    return rows


def _table(rows, peer_names):
    head = ["dtype", "op", "shape", "axis", "thr", "fsm time", "GB/s", "fsm/copy", "numpy/fsm"]
    for name in peer_names:
        head += [f"{PEER_SHORT[name]}/fsm", f"{PEER_SHORT[name]}/copy"]
    head.append("notes")
    body = []
    for r in rows:
        cells = [r["dtype"], r["op"], str(tuple(r["shape"])), str(r["axis"]), str(r["threads"]),
                 fmt_time(r["fsm_s"]), fmt_ratio(r["gb_per_s"]), fmt_ratio(r["fsm_over_copy"]),
                 fmt_ratio(r["numpy_over_fsm"])]
        for name in peer_names:
            cells += [fmt_ratio(r["peers"][name]["over_fsm"]),
                      fmt_ratio(r["peers"][name]["over_copy"])]
        notes = []
        if "axis0_over_axis_last" in r:
            notes.append(f"ax0/ax-1={r['axis0_over_axis_last']:.2f}")
        if "one_thread_over_this" in r:
            notes.append(f"1thr/this={r['one_thread_over_this']:.2f}")
        if (r["background_cpus"] or 0) >= _timing.BUSY_WARN_CPUS:
            notes.append(f"busy:{r['background_cpus']:.1f}cpu")
        body.append(cells + [" ".join(notes)])
    return head, body, {0, 1, 2, len(head) - 1}, [(r["dtype"], r["op"]) for r in rows]


def _summary(rows, peer_names):
    lines, groups = [], {}
    for r in rows:
        groups.setdefault((r["dtype"], r["threads"]), []).append(r)
    for (dtype, t), rs in groups.items():
        ratios = [r["numpy_over_fsm"] for r in rs if r["numpy_over_fsm"]]
        text = (f"summary {dtype}, {t} thread(s), {len(rs)} rows: median numpy/fsm = "
                + (f"{statistics.median(ratios):.2f}" if ratios else "n/a"))
        fastest = [min((p["s"], n) for n, p in r["peers"].items() if p["s"]) + (r["fsm_s"],)
                   for r in rs if r["fsm_s"] and any(p["s"] for p in r["peers"].values())]
        if fastest:
            winners = {n: sum(1 for _, w, _ in fastest if w == n) for _, n, _ in fastest}
            text += (f"; median fastest-peer/fsm = "
                     f"{statistics.median(s / f for s, _, f in fastest):.2f} (fastest peer per "
                     f"row: {', '.join(f'{PEER_SHORT[n]} {k}' for n, k in sorted(winners.items()))})")
        lines.append(text)
    return lines


def _sweep(args, peers, failures):
    """A fixed number of elements reshaped to rows of 10 to 10**6, for the plot."""
    total = 2 ** 22 if args.quick else 2 ** 24
    lengths = ([10, 100, 1000, 10000, 100000, 1000000] if args.quick else
               [10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000, 1000000])
    op, t = args.op[0], max(args.threads)
    points = []
    for name in args.dtype:
        for length in lengths:
            shape = (max(1, total // length), length)
            progress(f"[plot] {name} {shape} ...")
            times, _ = measure_array(DTYPES[name], shape, [op], (-1,), [t], peers,
                                     0.02 if args.quick else 0.05, 3, failures)
            points.append({"dtype": name, "row_length": length,
                           "copy_s": times.get(("copy", None, None, None)),
                           "impl_s": {k[0]: v for k, v in times.items() if k[0] != "copy"}})
    return {"op": op, "threads": t, "total_elements": total, "points": points}


def _plot(path, sweep, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sweep["points"]
    dtypes = list(dict.fromkeys(p["dtype"] for p in points))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6.5 * len(dtypes), 4.8), squeeze=False,
                             sharey=True)
    markers = {"fastsoftmax": "o", "numpy": "s", "scipy": "^", "torch": "v", "onnxruntime": "D"}
    for axp, dtype in zip(axes[0], dtypes):
        pts = [p for p in points if p["dtype"] == dtype]
        for impl, marker in markers.items():
            ys = [p["impl_s"][impl] / p["copy_s"] if p["impl_s"].get(impl) and p["copy_s"]
                  else float("nan") for p in pts]
            if any(math.isfinite(v) for v in ys):
                axp.plot([p["row_length"] for p in pts], ys, label=impl, ms=4, marker=marker,
                         lw=2.5 if impl == "fastsoftmax" else 1.5)
        axp.axhline(1.0, color="k", ls="--", lw=1, label="np.copyto (memory floor)")
        axp.set(xscale="log", yscale="log", title=f"{dtype} {sweep['op']}",
                xlabel=f"row length (elements; rows x length = {sweep['total_elements']:,})")
        axp.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("time / time of np.copyto (lower is better)")
    axes[0][-1].legend(fontsize=8)
    cfg = meta["fastsoftmax"]
    fig.suptitle(f"{meta['cpu']}, {meta['usable_cpus']} cores; {sweep['threads']} thread(s); "
                 f"fastsoftmax {cfg['version']} ({cfg['kernel_variant']}), numpy {meta['numpy']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=(
        "Time fastsoftmax against NumPy, np.copyto (the memory floor) and, with --peers, "
        "SciPy / PyTorch / ONNX Runtime; interleaved rounds, minimum per-call time, ratios "
        "from the same run."), epilog="Example: fastsoftmax bench --quick --peers")
    _timing.add_common_arguments(p, "a subset that runs in under a minute "
                                    "(softmax, 5 shapes)")
    p.add_argument("--peers", action="store_true",
                   help="also time scipy, torch and onnxruntime, those that import")
    p.add_argument("--op", type=lambda s: _timing.parse_list(s, str, OPS), default=None,
                   metavar="softmax,log_softmax", help="operations (default both; --quick: softmax)")
    p.add_argument("--plot", metavar="PATH",
                   help="also run a row-length sweep and plot it to a PNG (needs matplotlib)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.threads = args.threads or [1]
    args.dtype = args.dtype or list(DTYPES)
    args.op = args.op or (["softmax"] if args.quick else list(OPS))
    if args.plot:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            sys.stderr.write(f"{PROG}: --plot needs matplotlib (pip install matplotlib)\n")
            return 2
    meta = _timing.machine()
    peers, versions, missing = load_peers() if args.peers else ({}, {}, {})
    peer_names = list(peers)
    budget, rounds = _timing.timing_plan(args.quick, args.rounds)
    for name, why in missing.items():
        progress(f"peer not found: {name} ({why})")
        versions[name] = "not found"
    failures = {}
    rows, arrays = [], []
    t_start, run_meter = time.perf_counter(), _timing.LoadMeter()
    plan = _plan(args, meta["usable_cpus"])
    for i, array in enumerate(plan, 1):
        progress(f"[{i}/{len(plan)}] {array['dtype']} {array['shape']} axes {array['axes']} ...")
        times, facts = measure_array(DTYPES[array["dtype"]], array["shape"], args.op,
                                     array["axes"], array["threads"], peers, budget, rounds,
                                     failures)
        rows += _rows(array, args.op, times, facts["background_cpus"], peer_names)
        arrays.append(dict(array, **facts))
    run_background = run_meter.others()
    progress(f"measured in {time.perf_counter() - t_start:.1f} s")
    order = {(d, o): k for k, (d, o) in enumerate((d, o) for d in args.dtype for o in args.op)}
    rows.sort(key=lambda r: order[(r["dtype"], r["op"])])  # stable: keeps the grid order
    notes = _summary(rows, peer_names) + [_timing.background_note(run_background, meta) or ""]
    sweep = None
    if args.plot:
        sweep = _sweep(args, peers, failures)
        _plot(args.plot, sweep, meta)
        notes.append(f"plot: {args.plot} (row-length sweep, {sweep['total_elements']:,} "
                     f"elements, {sweep['op']}, {sweep['threads']} thread(s))")
    command = f"{PROG} {shlex.join(argv)}".rstrip()
    fields = _timing.describe(meta, command, versions if args.peers else None)
    fields.append(("method", f"{METHOD}; {rounds} rounds of {budget} s per candidate"))
    doc = {"command": command, "machine": meta, "peers": versions, "budget_s": budget,
           "rounds": rounds, "background_cpus": run_background, "rows": rows,
           "arrays": arrays, "sweep": sweep}
    _timing.report(args, "fastsoftmax benchmark", fields, _table(rows, peer_names), notes,
                   failures, doc)
    return 0
