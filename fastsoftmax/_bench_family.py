"""``fastsoftmax bench --family``: each family function against its plain baseline.

Every function is timed on the same array, axis and thread count as plain
``softmax`` (softmax-like functions, logsumexp, both backward passes) or plain
``log_softmax`` (log_softmax variants, cross_entropy), in the same rounds
(``fastsoftmax._timing``), and its time over the baseline's is held against
its target.
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from types import SimpleNamespace
from typing import Callable, NamedTuple, Optional

import numpy as np

import fastsoftmax as fsm

from . import _timing
from ._timing import DTYPES, Candidate, fmt_ratio, fmt_time

PROG = "fastsoftmax bench --family"
GRID = [((1000000, 10), -1), ((16384, 128), -1), ((4096, 1000), -1), ((64, 32000), -1),
        ((1, 1000000), -1), ((1000, 4096), 0), ((32000, 64), 0)]
QUICK_GRID = [((16384, 128), -1), ((4096, 1000), -1), ((1000, 4096), 0)]
TEMPERATURE = 1.5
BASE = 2.0
MASK_TRUE = 0.9


class Function(NamedTuple):
    name: str
    call: Callable  # call(inputs, threads) -> a complete call, no arguments
    base: str  # the plain function it is compared with
    target: Optional[float] = None  # time / base time <= target


def _normalize(op, masked=False, **options):
    """softmax or log_softmax with ``options`` (and ``where=`` the inputs' mask)."""
    def call(d, t):
        where = {"where": d.mask} if masked else {}
        return partial(getattr(fsm, op), d.x, d.axis, out=d.out, num_threads=t, **where,
                       **options)
    return call


def _variants(op):
    """Plain ``op`` (a baseline) and its temperature=, base= and where= forms."""
    return [Function(op, _normalize(op), op),
            Function(f"{op} temperature={TEMPERATURE}", _normalize(op, temperature=TEMPERATURE),
                     op, 1.10),
            Function(f"{op} base={BASE}", _normalize(op, base=BASE), op, 1.10),
            Function(f"{op} where=mask", _normalize(op, masked=True), op, 1.25)]


FUNCTIONS = _variants("softmax") + [
    Function("logsumexp", lambda d, t: partial(fsm.logsumexp, d.x, d.axis, out=d.reduced_out,
                                               num_threads=t), "softmax", 1.0),
    Function("logsumexp b=weights", lambda d, t: partial(
        fsm.logsumexp, d.x, d.axis, b=d.weights, out=d.reduced_out, num_threads=t),
        "logsumexp", 1.3),
    Function("softmax_backward", lambda d, t: partial(
        fsm.softmax_backward, d.grad, d.y, d.axis, out=d.out, num_threads=t), "softmax", 1.3),
    Function("log_softmax_backward", lambda d, t: partial(
        fsm.log_softmax_backward, d.grad, d.log_y, d.axis, out=d.out, num_threads=t),
        "softmax", 1.3),
] + _variants("log_softmax") + [
    Function("cross_entropy index", lambda d, t: partial(
        fsm.cross_entropy, d.x, d.index, d.axis, num_threads=t), "log_softmax", 1.0),
    Function("cross_entropy index +grad", lambda d, t: partial(
        fsm.cross_entropy, d.x, d.index, d.axis, return_grad=True, grad_out=d.out,
        num_threads=t), "log_softmax", 1.2),
    Function("cross_entropy probs", lambda d, t: partial(
        fsm.cross_entropy, d.x, d.probs, d.axis, num_threads=t), "log_softmax", 1.3),
]


def make_inputs(dtype, shape, axis):
    """Seeded inputs of every function over ``axis`` of a ``shape`` array."""
    x, out = _timing.make_input(dtype, shape)
    rng = np.random.default_rng(_timing.SEED + 1)
    reduced = x.shape[:axis % x.ndim] + x.shape[axis % x.ndim + 1:]
    return SimpleNamespace(
        x=x, axis=axis, out=out, reduced_out=np.zeros(reduced, dtype),
        mask=rng.random(shape) < MASK_TRUE,
        weights=rng.uniform(0.5, 1.5, shape).astype(dtype),
        grad=rng.standard_normal(shape, dtype=dtype),
        y=fsm.softmax(x, axis), log_y=fsm.log_softmax(x, axis),
        index=rng.integers(0, shape[axis], reduced),
        probs=fsm.softmax(rng.standard_normal(shape, dtype=dtype), axis))


def candidates(d, threads):
    return [Candidate((f.name, t), f.call(d, t)) for t in threads for f in FUNCTIONS]


def _plan(args):
    if args.shapes is not None:
        return [(shape, axis) for shape, axes in args.shapes for axis in axes]
    return QUICK_GRID if args.quick else GRID


def _row(dtype, shape, axis, t, f, times, background):
    """One table row (``cells``) and its figures."""
    s, base = times.get((f.name, t)), times.get((f.base, t))
    one, base_one = times.get((f.name, 1)), times.get((f.base, 1))
    over_base = s / base if s and base and f.name != f.base else None
    passes = None if f.target is None or over_base is None else over_base <= f.target
    speedups = [t != 1 and a and b and a / b for a, b in ((one, s), (base_one, base))]
    cells = [dtype, str(shape), str(axis), str(t), f.name, fmt_time(s),
             f"{over_base:.2f}x {f.base}" if over_base else "",
             f"<= {f.target:.2f} {'' if passes is None else 'PASS' if passes else 'MISS'}"
             if f.target else ""] + [fmt_ratio(v, "") for v in speedups]
    return {"dtype": dtype, "shape": list(shape), "axis": axis, "threads": t, "function": f.name,
            "s": s, "base": f.base, "over_base": over_base, "target": f.target, "passes": passes,
            "background_cpus": background, "cells": cells + [_timing.busy_note(background)]}


def _table(rows, threads):
    head = ["dtype", "shape", "axis", "thr", "function", "time", "over base", "target",
            "1thr/this", "base 1thr/this", "notes"]
    body = [r["cells"] for r in rows]
    if len(threads) == 1:  # no speed-up columns
        head, body = head[:8] + head[10:], [b[:8] + b[10:] for b in body]
    groups = [(r["dtype"], tuple(r["shape"]), r["axis"], r["threads"]) for r in rows]
    return head, body, {0, 1, 4, 6, 7, len(head) - 1}, groups


def _targets_summary(rows):
    lines = []
    for key in dict.fromkeys((r["dtype"], r["threads"]) for r in rows):
        checked = [r for r in rows if (r["dtype"], r["threads"]) == key and r["target"]]
        lines.append(f"targets {key[0]}, {key[1]} thread(s): "
                     f"{sum(r['passes'] is True for r in checked)} of {len(checked)} pass")
        for f in FUNCTIONS:
            missed = [r["over_base"] for r in checked if r["function"] == f.name
                      and r["passes"] is False]
            if missed:
                lines.append(f"  MISS {f.name}: {len(missed)} array(s), worst {max(missed):.2f}x")
    return lines


def build_parser():
    p = argparse.ArgumentParser(prog=PROG, description=(
        "Time the softmax family (temperature=, base=, where=, logsumexp, backward passes, "
        "cross_entropy) against plain softmax / log_softmax on the same array, axis and "
        "thread count, and check each ratio against its target."))
    _timing.add_common_arguments(p, f"{len(QUICK_GRID)} shapes, 1 thread, float32 (under a "
                                    "minute)")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _timing.parse_args(build_parser(), argv)
    dtypes = args.dtype or (["float32"] if args.quick else ["float32", "float64"])

    def measure_one(array, failures):
        dtype, shape, axis = array["dtype"], array["shape"], array["axis"]
        d = make_inputs(DTYPES[dtype], shape, axis)
        times, facts = _timing.run(candidates(d, args.threads), args.budget, args.rounds,
                                   failures, f"{dtype} {shape} axis {axis}")
        return [_row(dtype, shape, axis, t, f, times, facts["background_cpus"])
                for t in args.threads for f in FUNCTIONS], facts

    plan = [{"dtype": name, "shape": shape, "axis": axis}
            for name in dtypes for shape, axis in _plan(args)]
    measured = _timing.measure_plan(plan, measure_one)
    rows = measured[0]
    _timing.report(args, "fastsoftmax family benchmark", "over base = time / the baseline's at "
                   "the same thread count; 1thr/this = speed-up over 1 thread",
                   _table(rows, args.threads), _targets_summary(rows), measured,
                   temperature=TEMPERATURE, base=BASE, mask_true_fraction=MASK_TRUE)
    return 0
