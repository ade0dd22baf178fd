"""``fastsoftmax bench --family``: the softmax family against NumPy.

Measures the issue-4 functions on one array per dtype, float32 and float64
(4096, 1000) (``--quick``: float32 only), seeded standard normal, classes
along the last axis, and checks the issue's speed targets on ratios taken
in this same run.

What is measured
----------------
Each *case* is one call of a fastsoftmax function (at each ``--threads``
count, writing into a preallocated ``out`` where the function has one, the
gradient of cross_entropy into a preallocated ``grad_out``) next to the
NumPy composition a user would write for it (single threaded):

==============================  ===============================================
case                            NumPy composition
==============================  ===============================================
softmax                         ``e = exp(x - max); e / sum(e)``
softmax temperature=0.7         the same on ``x / 0.7``
softmax where=mask              ``np.where(mask, x, -inf)``, the formula,
                                ``np.where(mask, s, 0)``; mask ~90% True
log_softmax                     ``s = x - max; s - log(sum(exp(s)))``
logsumexp                       ``m + log(sum(exp(x - m)))``
softmax_backward                ``y * (g - sum(g * y))``, y = softmax(x)
log_softmax_backward            ``g - exp(y) * sum(g)``, y = log_softmax(x)
cross_entropy idx               log_softmax formula, gather, mean
cross_entropy idx +grad         ... and ``(exp(logp) - onehot) / N``
cross_entropy prob +grad        ``-mean(sum(p * logp))``, ``(exp(logp) - p) / N``
==============================  ===============================================

plus ``np.copyto(out, x)``, the memory floor.  With ``--peers``, also
PyTorch (``torch.softmax`` on ``x / T`` or on ``masked_fill(~mask, -inf)``,
``torch.logsumexp``, the backward kernels ``torch._softmax_backward_data`` /
``torch._log_softmax_backward_data`` (autograd's own, called directly),
``F.cross_entropy``, with ``torch.autograd.grad`` for the gradient) after
``torch.set_num_threads(t)``, and ``scipy.special`` softmax, log_softmax and
logsumexp, where installed.

Method: that of ``fastsoftmax bench`` (``fastsoftmax._bench``),
whose timing code is reused: every candidate is called once to warm up and
its result is checked against ``fastsoftmax.reference`` (a candidate that
disagrees is reported ``wrong`` and not timed); then interleaved rounds
(5 rounds of 0.1 s per candidate, ``--quick`` 3 of 0.04 s, ``--rounds N``
to change the count; the order
rotating each round, a 30 ms pause before each turn), and the reported time
is the **minimum** per-call time over all samples.

Targets (issue 4, checked for every thread count against the same thread
count's fastsoftmax baseline; the issue states them at 1 thread, float32):
temperature= and where= at most 1.15x plain softmax; logsumexp at most
1.0x log_softmax; softmax_backward at most 1.3x softmax and
log_softmax_backward at most 1.3x log_softmax; cross_entropy with
return_grad at most 1.3x log_softmax (shown for class indices and for
probabilities); each of these at least 5x faster than its NumPy composition.
"""
from __future__ import annotations

import argparse
from functools import partial
import gc
import json
import math
import shlex
import sys
import time
from types import SimpleNamespace
from typing import Callable, NamedTuple, Optional

import numpy as np

import fastsoftmax
from fastsoftmax import reference

from ._bench import (
    BUSY_WARN_CPUS, DTYPES, QUIESCE_S, SAMPLE_TARGET_S, SEED, Candidate, LoadMeter, _fmt_time,
    _load_peers, _machine, _measure, _numpy_log_softmax, _numpy_softmax, _parse_list,
    _short_error, _threads_arg, _time_calls, _torch_out_supported, format_columns,
)

__all__ = ["CASES", "make_data", "agrees", "main"]

PROG = "fastsoftmax bench --family"
SHAPE = (4096, 1000)
TEMPERATURE = 0.7
MASK_TRUE = 0.9


# --------------------------------------------------------------------------- #
# Inputs
# --------------------------------------------------------------------------- #


def make_data(dtype, shape=SHAPE, seed=SEED):
    """Seeded inputs of one dtype: logits ``x``, ``out`` buffers, a mask, an
    upstream gradient, the forward outputs and both kinds of target."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape, dtype=dtype)
    d = SimpleNamespace(
        x=x,
        out=np.zeros_like(x),                       # zeros: pages touched before timing
        lse_out=np.zeros(shape[:-1], dtype=dtype),
        mask=rng.random(shape) < MASK_TRUE,
        grad=rng.standard_normal(shape, dtype=dtype),
        index=rng.integers(0, shape[-1], shape[:-1]),
        prob=reference.softmax(rng.standard_normal(shape, dtype=dtype)),
        y_softmax=reference.softmax(x),
        y_log_softmax=reference.log_softmax(x),
    )
    return d


# --------------------------------------------------------------------------- #
# NumPy compositions, as a user would write them
# --------------------------------------------------------------------------- #


def np_softmax(d):
    return _numpy_softmax(d.x, -1)


def np_softmax_temperature(d):
    return _numpy_softmax(d.x / TEMPERATURE, -1)


def np_softmax_where(d):
    s = _numpy_softmax(np.where(d.mask, d.x, -np.inf), -1)
    return np.where(d.mask, s, 0)


def np_log_softmax(d):
    return _numpy_log_softmax(d.x, -1)


def np_logsumexp(d):
    m = d.x.max(-1, keepdims=True)
    return m[..., 0] + np.log(np.exp(d.x - m).sum(-1))


def np_softmax_backward(d):
    y, g = d.y_softmax, d.grad
    return y * (g - (g * y).sum(-1, keepdims=True))


def np_log_softmax_backward(d):
    y, g = d.y_log_softmax, d.grad
    return g - np.exp(y) * g.sum(-1, keepdims=True)


def np_cross_entropy(d, probabilities=False, return_grad=False):
    logp = _numpy_log_softmax(d.x, -1)
    n = d.x.shape[0]
    if probabilities:
        target = d.prob
        loss = -(target * logp).sum(-1).mean()
    else:
        loss = -logp[np.arange(n), d.index].mean()
    if not return_grad:
        return loss
    if not probabilities:
        target = np.zeros_like(d.x)
        target[np.arange(n), d.index] = 1
    return loss, (np.exp(logp) - target) / n


# --------------------------------------------------------------------------- #
# PyTorch equivalents (d.t holds torch.from_numpy views of d's arrays)
# --------------------------------------------------------------------------- #


def _torch_views(torch, d):
    return SimpleNamespace(
        x=torch.from_numpy(d.x), out=torch.from_numpy(d.out),
        masked_out=torch.from_numpy(~d.mask), grad=torch.from_numpy(d.grad),
        y_softmax=torch.from_numpy(d.y_softmax), y_log_softmax=torch.from_numpy(d.y_log_softmax),
        index=torch.from_numpy(d.index), prob=torch.from_numpy(d.prob))


def _torch_norm(torch, op, t):
    """torch.softmax / log_softmax into out= where this torch has it."""
    if _torch_out_supported(torch):
        return partial(getattr(torch, op), t.x, -1, out=t.out)
    return partial(getattr(torch, op), t.x, -1)


def _torch_ce(torch, t, target, return_grad):
    f = torch.nn.functional.cross_entropy
    if not return_grad:
        return partial(f, t.x, target)

    def call():
        xg = t.x.detach().requires_grad_()
        loss = f(xg, target)
        (g,) = torch.autograd.grad(loss, xg)
        return loss, g
    return call


# --------------------------------------------------------------------------- #
# Cases
# --------------------------------------------------------------------------- #


class Case(NamedTuple):
    name: str
    fsm: Callable        # fsm(d, threads) -> a complete call, no arguments
    numpy: Callable      # numpy(d) -> result
    ref: Callable        # ref(d) -> the fastsoftmax.reference result
    base: str = "softmax"             # ratios are taken against this case
    max_over_base: Optional[float] = None   # target: time / base time <= this
    min_numpy_over: Optional[float] = None  # target: numpy time / time >= this
    torch: Optional[Callable] = None  # torch(torch, t) -> a complete call
    scipy: Optional[Callable] = None  # scipy(special, d) -> a complete call


_fsm = fastsoftmax  # short name for the table below
CASES = [
    Case("softmax",
         lambda d, n: partial(_fsm.softmax, d.x, -1, out=d.out, num_threads=n),
         np_softmax, lambda d: reference.softmax(d.x),
         torch=lambda torch, t: _torch_norm(torch, "softmax", t),
         scipy=lambda sp, d: partial(sp.softmax, d.x, axis=-1)),
    Case(f"softmax temperature={TEMPERATURE}",
         lambda d, n: partial(_fsm.softmax, d.x, -1, out=d.out, num_threads=n,
                              temperature=TEMPERATURE),
         np_softmax_temperature, lambda d: reference.softmax(d.x, temperature=TEMPERATURE),
         max_over_base=1.15, min_numpy_over=5.0,
         torch=lambda torch, t: lambda: torch.softmax(t.x / TEMPERATURE, -1)),
    Case("softmax where=mask",
         lambda d, n: partial(_fsm.softmax, d.x, -1, out=d.out, num_threads=n, where=d.mask),
         np_softmax_where, lambda d: reference.softmax(d.x, where=d.mask),
         max_over_base=1.15, min_numpy_over=5.0,
         torch=lambda torch, t: lambda: torch.softmax(
             t.x.masked_fill(t.masked_out, -math.inf), -1)),
    Case("log_softmax",
         lambda d, n: partial(_fsm.log_softmax, d.x, -1, out=d.out, num_threads=n),
         np_log_softmax, lambda d: reference.log_softmax(d.x),
         torch=lambda torch, t: _torch_norm(torch, "log_softmax", t),
         scipy=lambda sp, d: partial(sp.log_softmax, d.x, axis=-1)),
    Case("logsumexp",
         lambda d, n: partial(_fsm.logsumexp, d.x, -1, out=d.lse_out, num_threads=n),
         np_logsumexp, lambda d: reference.logsumexp(d.x),
         base="log_softmax", max_over_base=1.0, min_numpy_over=5.0,
         torch=lambda torch, t: partial(torch.logsumexp, t.x, -1),
         scipy=lambda sp, d: partial(sp.logsumexp, d.x, axis=-1)),
    Case("softmax_backward",
         lambda d, n: partial(_fsm.softmax_backward, d.grad, d.y_softmax, -1, out=d.out,
                              num_threads=n),
         np_softmax_backward, lambda d: reference.softmax_backward(d.grad, d.y_softmax),
         max_over_base=1.3, min_numpy_over=5.0,
         torch=lambda torch, t: partial(torch._softmax_backward_data, t.grad, t.y_softmax, -1,
                                        t.x.dtype)),
    Case("log_softmax_backward",
         lambda d, n: partial(_fsm.log_softmax_backward, d.grad, d.y_log_softmax, -1, out=d.out,
                              num_threads=n),
         np_log_softmax_backward,
         lambda d: reference.log_softmax_backward(d.grad, d.y_log_softmax),
         base="log_softmax", max_over_base=1.3, min_numpy_over=5.0,
         torch=lambda torch, t: partial(torch._log_softmax_backward_data, t.grad,
                                        t.y_log_softmax, -1, t.x.dtype)),
    Case("cross_entropy idx",
         lambda d, n: partial(_fsm.cross_entropy, d.x, d.index, num_threads=n),
         np_cross_entropy, lambda d: reference.cross_entropy(d.x, d.index),
         base="log_softmax",
         torch=lambda torch, t: _torch_ce(torch, t, t.index, False)),
    Case("cross_entropy idx +grad",
         lambda d, n: partial(_fsm.cross_entropy, d.x, d.index, return_grad=True, grad_out=d.out,
                              num_threads=n),
         partial(np_cross_entropy, return_grad=True),
         lambda d: reference.cross_entropy(d.x, d.index, return_grad=True),
         base="log_softmax", max_over_base=1.3, min_numpy_over=5.0,
         torch=lambda torch, t: _torch_ce(torch, t, t.index, True)),
    Case("cross_entropy prob +grad",
         lambda d, n: partial(_fsm.cross_entropy, d.x, d.prob, return_grad=True, grad_out=d.out,
                              num_threads=n),
         partial(np_cross_entropy, probabilities=True, return_grad=True),
         lambda d: reference.cross_entropy(d.x, d.prob, return_grad=True),
         base="log_softmax", max_over_base=1.3, min_numpy_over=5.0,
         torch=lambda torch, t: _torch_ce(torch, t, t.prob, True)),
]
CASE_BY_NAME = {c.name: c for c in CASES}


def _to_numpy(result):
    if isinstance(result, tuple):
        return tuple(_to_numpy(r) for r in result)
    if hasattr(result, "detach"):  # torch.Tensor
        return result.detach().numpy()
    return np.asarray(result)


def agrees(got, want, dtype):
    """Elementwise agreement, the absolute part scaled by the largest |want|
    (gradients of a mean are ~1/N, backward outputs cancel)."""
    if isinstance(want, tuple):
        return (isinstance(got, tuple) and len(got) == len(want)
                and all(agrees(g, w, dtype) for g, w in zip(got, want)))
    got, want = np.asarray(_to_numpy(got), np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        return False
    rtol, atol = (1e-4, 1e-5) if np.dtype(dtype) == np.float32 else (1e-10, 1e-12)
    finite = want[np.isfinite(want)]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    return bool(np.allclose(got, want, rtol=rtol, atol=atol * scale, equal_nan=True))


# --------------------------------------------------------------------------- #
# Measurement
# --------------------------------------------------------------------------- #


def _candidates(d, threads, peers, failures):
    cands = [Candidate("copy", None, None, None, partial(np.copyto, d.out, d.x))]
    tviews = _torch_views(peers["torch"], d) if "torch" in peers else None
    for case in CASES:
        cands.append(Candidate("numpy", case.name, None, None, partial(case.numpy, d)))
        for t in threads:
            cands.append(Candidate("fastsoftmax", case.name, None, t, case.fsm(d, t)))
        if case.scipy and "scipy" in peers:
            cands.append(Candidate("scipy", case.name, None, None, case.scipy(peers["scipy"], d)))
        if case.torch and tviews is not None:
            torch = peers["torch"]
            for t in threads:
                cands.append(Candidate("torch", case.name, None, t, case.torch(torch, tviews),
                                       prepare=partial(torch.set_num_threads, t), keep=(tviews,)))
    return cands




def _warm_up(cands, d, failures):
    """Call each candidate once, check it against fastsoftmax.reference, and
    choose the calls per sample (as _bench does)."""
    refs = {}
    for c in cands:
        label = f"{c.impl} {c.op or 'np.copyto'}" + (f" t={c.threads}" if c.threads else "")
        where = f"{label} {d.x.dtype} {d.x.shape}"
        try:
            if c.prepare:
                c.prepare()
            time.sleep(QUIESCE_S)
            result = c.fn()
            if c.op is not None:
                if c.op not in refs:
                    refs[c.op] = CASE_BY_NAME[c.op].ref(d)
                if not agrees(result, refs[c.op], d.x.dtype):
                    c.status = "wrong"
                    failures[where] = "result disagrees with fastsoftmax.reference; not timed"
                    continue
            t1 = min(_time_calls(c.fn, 1) for _ in range(3))
            if t1 < SAMPLE_TARGET_S:
                c.n = max(1, min(100000, math.ceil(SAMPLE_TARGET_S / max(t1, 1e-8))))
        except Exception as exc:  # noqa: BLE001 - a failing candidate is reported, not fatal
            c.status = "error"
            failures[where] = _short_error(exc)


def _find(cands, impl, op, threads):
    for c in cands:
        if c.impl == impl and c.op == op and c.threads == threads and c.status == "ok":
            return c.best
    return None


def _rows(dtype, cands, threads, peer_names):
    rows = []
    copy = _find(cands, "copy", None, None)
    for t in threads:
        for case in CASES:
            fsm = _find(cands, "fastsoftmax", case.name, t)
            base = _find(cands, "fastsoftmax", case.base, t)
            numpy_t = _find(cands, "numpy", case.name, None)
            over_base = fsm / base if fsm and base else None
            numpy_over = numpy_t / fsm if fsm and numpy_t else None
            row = {"dtype": dtype, "threads": t, "case": case.name, "fsm_s": fsm,
                   "base": case.base, "over_base": over_base, "numpy_s": numpy_t,
                   "numpy_over_fsm": numpy_over, "copy_s": copy,
                   "fsm_over_copy": fsm / copy if fsm and copy else None,
                   "max_over_base": case.max_over_base, "min_numpy_over": case.min_numpy_over,
                   "peers": {}}
            row["base_ok"] = (None if case.max_over_base is None or over_base is None
                              else over_base <= case.max_over_base)
            row["numpy_ok"] = (None if case.min_numpy_over is None or numpy_over is None
                               else numpy_over >= case.min_numpy_over)
            for name in peer_names:
                pt = _find(cands, name, case.name, None if name == "scipy" else t)
                row["peers"][name] = pt / fsm if pt and fsm else None
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #


def _verdict(ok):
    return "" if ok is None else ("PASS" if ok else "MISS")


def _table(rows, copies, peer_names):
    head = ["dtype", "thr", "function", "fsm time", "vs base", "target", "ok",
            "numpy time", "numpy/fsm", ">=5x numpy", "fsm/copy"]
    head += [f"{n}/fsm" for n in peer_names]
    body = []
    for r in rows:
        target = f"<= {r['max_over_base']:.2f}" if r["max_over_base"] is not None else ""
        cells = [r["dtype"], str(r["threads"]), r["case"],
                 _fmt_time(r["fsm_s"]),
                 f"{r['over_base']:.2f} x {r['base']}" if r["over_base"] else "n/a",
                 target, _verdict(r["base_ok"]),
                 _fmt_time(r["numpy_s"]),
                 f"{r['numpy_over_fsm']:.1f}" if r["numpy_over_fsm"] else "n/a",
                 _verdict(r["numpy_ok"]),
                 f"{r['fsm_over_copy']:.2f}" if r["fsm_over_copy"] else "n/a"]
        cells += [f"{r['peers'][n]:.2f}" if r["peers"][n] else "n/a" for n in peer_names]
        body.append(cells)
    out = format_columns(head, body, {0, 2, 4, 6, 9}, [(r["dtype"], r["threads"]) for r in rows])
    for dtype, copy in copies.items():
        out.append(f"np.copyto(out, x), {dtype}: {_fmt_time(copy)} (the memory floor)")
    return "\n".join(out)


def _targets_summary(rows):
    lines = []
    for dtype in dict.fromkeys(r["dtype"] for r in rows):
        for t in dict.fromkeys(r["threads"] for r in rows):
            rs = [r for r in rows if r["dtype"] == dtype and r["threads"] == t]
            checks = [(f"{r['case']} <= {r['max_over_base']} x {r['base']}", r["base_ok"])
                      for r in rs if r["max_over_base"] is not None]
            checks += [(f"{r['case']} >= {r['min_numpy_over']:.0f}x numpy", r["numpy_ok"])
                       for r in rs if r["min_numpy_over"] is not None]
            missed = [what for what, ok in checks if ok is False]
            unknown = [what for what, ok in checks if ok is None]
            issue = " (the issue's setting)" if dtype == "float32" and t == 1 else ""
            text = (f"targets {dtype}, {t} thread{'s' if t != 1 else ''}{issue}: "
                    f"{sum(ok is True for _, ok in checks)} of {len(checks)} pass")
            if missed:
                text += "; MISS: " + "; ".join(missed)
            if unknown:
                text += "; not measured: " + "; ".join(unknown)
            lines.append(text)
    return "\n".join(lines)


def _build_parser():
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Time the softmax family (temperature=, where=, logsumexp, backward "
        "passes, cross_entropy) against the NumPy compositions a user would write, on "
        f"{SHAPE[0]}x{SHAPE[1]}, and check issue 4's targets on ratios from this run.")
    p.add_argument("--quick", action="store_true",
                   help="float32 only, 3 shorter rounds (well under a minute)")
    p.add_argument("--threads", type=_threads_arg, default=[1], metavar="T1,T2",
                   help="thread counts for fastsoftmax and torch (default 1)")
    p.add_argument("--dtype", type=lambda s: _parse_list(s, str, tuple(DTYPES)), default=None,
                   metavar="float32,float64", help="dtypes (default both; --quick: float32)")
    p.add_argument("--peers", action="store_true", help="also time torch and scipy if installed")
    p.add_argument("--rounds", type=int, default=None, metavar="N",
                   help="interleaved rounds (default 5, --quick 3); more rounds give the minimum "
                   "more chances on a noisy machine")
    p.add_argument("--json", metavar="PATH", help="write every raw measurement to PATH")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    dtypes = list(dict.fromkeys(args.dtype or (["float32"] if args.quick else list(DTYPES))))
    budget, rounds = (0.04, 3) if args.quick else (0.1, 5)
    if args.rounds is not None:
        if args.rounds < 1:
            raise SystemExit(f"{PROG}: --rounds must be >= 1, got {args.rounds}")
        rounds = args.rounds

    def progress(text):
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    command = f"{PROG} {shlex.join(argv)}".rstrip()
    meta = _machine()
    peers, versions, missing = _load_peers() if args.peers else ({}, {}, {})
    peers.pop("onnxruntime", None)
    versions.pop("onnxruntime", None)
    missing.pop("onnxruntime", None)
    peer_names = [n for n in ("torch", "scipy") if n in peers]

    failures, rows, arrays, copies = {}, [], [], {}
    t_start = time.perf_counter()
    run_meter = LoadMeter()
    for k, name in enumerate(dtypes, 1):
        progress(f"[{k}/{len(dtypes)}] {name} {SHAPE} ...")
        t0, meter = time.perf_counter(), LoadMeter()
        d = make_data(DTYPES[name])
        cands = _candidates(d, args.threads, peers, failures)
        _warm_up(cands, d, failures)
        done = _measure(cands, budget, rounds)
        background = meter.others()
        rows += [dict(r, background_cpus=background)
                 for r in _rows(name, cands, args.threads, peer_names)]
        copies[name] = _find(cands, "copy", None, None)
        arrays.append({"dtype": name, "shape": list(SHAPE), "rounds": done,
                       "seconds": time.perf_counter() - t0, "background_cpus": background,
                       "candidates": [c.record() for c in cands]})
        for c in cands:
            c.fn = c.prepare = None
            c.keep = ()
        del d, cands
        gc.collect()
    run_background = run_meter.others()
    progress(f"measured in {time.perf_counter() - t_start:.1f} s")

    cfg = meta["fastsoftmax"]
    print("fastsoftmax family benchmark")
    print(f"command:  {command}")
    print(f"machine:  {meta['cpu']}, {meta['logical_cpus']} logical CPUs "
          f"({meta['usable_cpus']} usable); {meta['platform']}")
    print(f"software: python {meta['python']}, numpy {meta['numpy']}, fastsoftmax "
          f"{cfg['version']} (kernel {cfg['kernel_variant']}, OpenMP "
          f"{'on' if cfg['openmp'] else 'off'})"
          + "".join(f", {n} {versions[n]}" for n in peer_names))
    if args.peers and missing:
        print(f"peers not found: {', '.join(missing)}")
    print(f"method:   shape {SHAPE}, last axis; interleaved rounds ({rounds} x {budget} s per "
          "candidate, order rotating, 30 ms pause); time = MINIMUM per-call time; every "
          "result checked against fastsoftmax.reference first")
    print("          vs base = fsm time / fsm time of the base case at the same thread count; "
          "numpy/fsm and X/fsm > 1: fastsoftmax is faster; numpy and scipy are 1-threaded")
    print()
    print(_table(rows, copies, peer_names))
    print()
    print(_targets_summary(rows))
    if run_background is not None:
        print(f"background load: other processes used {run_background:.2f} of "
              f"{meta['logical_cpus']} CPUs on average during the run"
              + (" (busy: figures less reliable)" if run_background >= BUSY_WARN_CPUS else ""))
    if failures:
        print()
        print("not measured / failed:")
        for what, why in failures.items():
            print(f"  {what}: {why}")
    if args.json:
        doc = {"command": command, "argv": argv, "machine": meta, "peers": versions,
               "peers_missing": missing,
               "method": {"statistic": "min", "budget_s_per_candidate_per_round": budget,
                          "rounds": rounds, "sample_target_s": SAMPLE_TARGET_S, "seed": SEED,
                          "shape": list(SHAPE), "temperature": TEMPERATURE,
                          "mask_true_fraction": MASK_TRUE},
               "background_cpus": run_background, "rows": rows, "arrays": arrays,
               "failures": failures}
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=1)
        print(f"raw measurements: {args.json}")
    return 1 if any(c for c in failures.values() if "disagrees" in c) else 0
