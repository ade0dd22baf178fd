"""The timing method of every fastsoftmax benchmark, and the output they share.

The candidates of one array are timed in interleaved rounds: each round times
every candidate in turn (the order rotating from round to round), after a
30 ms pause that lets the worker threads of the previous one go to sleep. A
sample is enough back-to-back calls to last ~1 ms; a candidate's time is its
minimum per-call time, and ratios are only taken between candidates of the
same rounds. /proc/stat tells how much CPU other processes used meanwhile.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import re
import shlex
import sys
import time

import numpy as np

import fastsoftmax
from fastsoftmax._validation import BFLOAT16, is_half

SEED = 20240601
DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16,
          **({} if BFLOAT16 is None else {"bfloat16": BFLOAT16})}
QUIESCE_S = 0.03
BUDGET_S, QUICK_BUDGET_S = 0.1, 0.04  # seconds of samples per candidate per round
SAMPLE_TARGET_S = 1e-3
MAX_CALLS_PER_SAMPLE = 100000
MAX_SAMPLES_PER_ROUND = 200
SLOW_ROUND_S = 5.0  # an array whose round takes longer gets only 3 rounds
BUSY_WARN_CPUS = 0.2  # rows measured while others used this many CPUs get a note
METHOD = "interleaved rounds, order rotating, 30 ms pause before each candidate"


def make_input(dtype, shape, seed=SEED):
    """Seeded standard normal ``x`` and a zero-filled (pages touched) output."""
    x = np.random.default_rng(seed).standard_normal(
        shape, dtype=np.float32 if is_half(dtype) else dtype).astype(dtype, copy=False)
    return x, np.zeros_like(x)


class Candidate:
    """One thing to time: ``fn()`` is a complete call, ``key`` a tuple naming it,
    ``prepare()`` runs before each turn, ``keep`` holds what ``fn`` needs alive."""

    def __init__(self, key, fn, prepare=None, keep=()):
        self.key, self.fn, self.prepare, self.keep = key, fn, prepare, keep
        self.n, self.rounds, self.status = 1, [], "ok"

    @property
    def best(self):
        return min(map(min, self.rounds)) if self.rounds and self.status == "ok" else None


def time_calls(fn, n):
    """Seconds per call over ``n`` back-to-back calls."""
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n


def calls_per_sample(fn):
    one = min(time_calls(fn, 1) for _ in range(3))
    if one >= SAMPLE_TARGET_S:
        return 1
    n = min(MAX_CALLS_PER_SAMPLE, math.ceil(SAMPLE_TARGET_S / max(one, 1e-8)))
    per_call = time_calls(fn, n)  # a better estimate from n calls
    return max(1, min(MAX_CALLS_PER_SAMPLE, math.ceil(SAMPLE_TARGET_S / max(per_call, 1e-9))))


def short_error(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def _turn(c):
    if c.prepare:
        c.prepare()
    time.sleep(QUIESCE_S)


def warm_up(cands, failures, where="", check=None):
    """Call each candidate once and choose its calls per sample; one whose
    result ``check(candidate, result)`` rejects is marked wrong, not timed."""
    for c in cands:
        label = " ".join(str(k) for k in c.key if k is not None) + f" {where}"
        try:
            _turn(c)
            if check is not None and not check(c, c.fn()):
                c.status, failures[label] = "wrong", "disagrees with the reference; not timed"
            else:
                c.n = calls_per_sample(c.fn)
        except Exception as exc:  # noqa: BLE001 - a failing candidate is reported, not fatal
            c.status, failures[label] = "error", short_error(exc)


def measure(cands, budget, rounds):
    """Interleaved rounds; returns how many were done."""
    active = [c for c in cands if c.status == "ok"]
    for done in range(1, rounds + 1):
        t_round, k = time.perf_counter(), (done - 1) % max(1, len(active))
        for c in active[k:] + active[:k]:
            _turn(c)
            t0, samples = time.perf_counter(), []
            while not samples or (time.perf_counter() - t0 < budget
                                  and len(samples) < MAX_SAMPLES_PER_ROUND):
                samples.append(time_calls(c.fn, c.n))
            c.rounds.append(samples)
        if done >= 3 and time.perf_counter() - t_round > SLOW_ROUND_S:
            break
    return done if rounds else 0


def run(cands, budget, rounds, failures, where="", check=None):
    """Warm up and measure one array's candidates, then release their calls.
    Returns ``({key: minimum seconds or None}, facts about the run)``."""
    t0, others = time.perf_counter(), load_meter()
    warm_up(cands, failures, where, check)
    done = measure(cands, budget, rounds)
    for c in cands:
        c.fn, c.prepare, c.keep = None, None, ()
    records = [{"key": c.key, "status": c.status, "calls_per_sample": c.n, "min_s": c.best,
                "round_minima_s": [min(r) for r in c.rounds]} for c in cands]
    return {c.key: c.best for c in cands}, {
        "rounds": done, "seconds": time.perf_counter() - t0, "background_cpus": others(),
        "candidates": records}


def load_meter():
    """A function giving the CPUs other processes used since this call: all
    CPUs' busy time from /proc/stat minus this process's own and its waited-for
    children's (os.times: a benchmark's child processes); None without it."""
    busy0, own0, wall0 = _cpu_busy(), sum(os.times()[:4]), time.perf_counter()

    def others():
        busy, wall = _cpu_busy(), time.perf_counter() - wall0
        if busy is None or busy0 is None or wall <= 0:
            return None
        return max(0.0, (busy - busy0 - (sum(os.times()[:4]) - own0)) / wall)
    return others


def _cpu_busy():
    try:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def machine():
    cpu = platform.processor() or platform.machine() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8",
                                            errors="replace") as f:
        cpu = next((line.partition(":")[2].strip() for line in f
                    if line.partition(":")[0].strip() in ("model name", "Model")), cpu)
    config = fastsoftmax.get_config()  # its usable CPUs: affinity and cgroup quota
    return {"cpu": cpu, "logical_cpus": os.cpu_count() or 1, "usable_cpus": config["usable_cpus"],
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "fastsoftmax": config,
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "env": {k: v for k, v in os.environ.items() if k in (
                "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "FASTSOFTMAX_KERNEL")}}


def run_fields(meta, command, peer_versions=None):
    """What every generated report states about its run, as (field, text)
    pairs: command, date, machine, software, (env,) (peers,)."""
    cfg = meta["fastsoftmax"]
    fields = [("command", command), ("date", meta["date"]),
              ("machine", f"{meta['cpu']}, {meta['logical_cpus']} logical CPUs "
                          f"({meta['usable_cpus']} usable); {meta['platform']}"),
              ("software", f"Python {meta['python']}, NumPy {meta['numpy']}, fastsoftmax "
                           f"{cfg['version']} (kernel {cfg['kernel_variant']}, OpenMP "
                           f"{'on' if cfg['openmp'] else 'off'})"),
              ("env", " ".join(f"{k}={v}" for k, v in meta["env"].items())),
              ("peers", ", ".join(f"{n} {v}" for n, v in (peer_versions or {}).items()))]
    return [(name, text) for name, text in fields
            if text or (name == "peers" and peer_versions is not None)]


def list_arg(kind=int, allowed=None):
    """An argparse type: a comma-separated list of whole numbers >= 1, or of
    words from ``allowed``; repeats dropped."""
    def parse(text):
        try:
            values = list(dict.fromkeys(kind(t.strip()) for t in text.split(",") if t.strip()))
        except ValueError:
            values = []
        if not values or any(v not in allowed if allowed else v < 1 for v in values):
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                             + (", ".join(allowed) if allowed else "numbers >= 1"))
        return values
    return parse


def shapes_arg(text):
    """``"4096x1000,1000x4096:0"``: (shape, axes) pairs; ``:0`` also measures axis 0."""
    specs = []
    for item in text.split(","):
        m = re.fullmatch(r"([1-9]\d*(?:x[1-9]\d*)*)(:0)?", item.strip().lower())
        if not m or (m[2] and "x" not in m[1]):
            raise argparse.ArgumentTypeError(
                f"{item!r}: want a shape like 4096x1000, ':0' (axis 0 too) on 2-d and up")
        specs.append((tuple(map(int, m[1].split("x"))), (-1, 0) if m[2] else (-1,)))
    return specs


def add_common_arguments(p, quick_help):
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--threads", type=list_arg(), metavar="T1,T2",
                   help="thread counts for fastsoftmax and the threaded peers (default 1)")
    p.add_argument("--dtype", type=list_arg(str, DTYPES), metavar=",".join(DTYPES),
                   help="dtypes (default float32,float64)")
    p.add_argument("--shapes", type=shapes_arg, metavar="AxB,...",
                   help="replace the shape grid, e.g. '4096x1000,64x32000'; "
                   "a ':0' suffix ('1000x4096:0') also measures axis 0")
    p.add_argument("--rounds", type=lambda s: list_arg()(s)[0], metavar="N",
                   help="interleaved rounds (default 5, --quick 3)")
    p.add_argument("--json", metavar="PATH", help="write every raw measurement to PATH")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the table with the machine, versions, command and date to PATH")


def parse_args(parser, argv):
    """The arguments, with 1 thread by default, the seconds per candidate per
    round (``budget``), the rounds and the ``command`` as typed."""
    args = parser.parse_args(argv)
    args.threads = sorted(args.threads or [1])
    args.budget = QUICK_BUDGET_S if args.quick else BUDGET_S
    args.rounds = args.rounds or (3 if args.quick else 5)
    args.command = f"{parser.prog} {shlex.join(argv)}".rstrip()
    return args


def measure_plan(plan, measure_one):
    """``measure_one(item, failures) -> (rows, facts)`` for each item (a dict) of
    ``plan``; returns the rows, the items with their facts, the failures and the
    CPUs other processes used meanwhile."""
    failures, rows, arrays = {}, [], []
    t0, others = time.perf_counter(), load_meter()
    for i, item in enumerate(plan, 1):
        progress(f"[{i}/{len(plan)}] " + " ".join(f"{k} {v}" for k, v in item.items()) + " ...")
        new_rows, facts = measure_one(item, failures)
        rows += new_rows
        arrays.append(dict(item, **facts))
    progress(f"measured in {time.perf_counter() - t0:.1f} s")
    return rows, arrays, failures, others()


def progress(text):
    print(text, file=sys.stderr, flush=True)


def fmt_time(seconds):
    if not seconds:
        return "n/a"
    v, unit = next((seconds / scale, unit) for unit, scale in (
        ("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)) if seconds >= scale or unit == "ns")
    return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def fmt_ratio(value, missing="n/a"):
    return f"{value:.2f}" if value else missing


def busy_note(background):
    return f"busy:{background:.1f}cpu" if (background or 0) >= BUSY_WARN_CPUS else ""


def background_note(run_background, meta):
    if run_background is None:
        return ""
    return (f"background load: other processes used {run_background:.2f} of "
            f"{meta['logical_cpus']} CPUs on average during the run"
            + (" (figures less reliable, multi-threaded ones most)"
               if run_background >= BUSY_WARN_CPUS else ""))


def table_lines(head, body, left, groups, markdown=False):
    """Columns padded to their widest cell, those in ``left`` left-aligned; plain
    text has a blank line where ``groups`` changes, Markdown a pipe table."""
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]

    def line(cells):
        text = (" | " if markdown else "  ").join(
            c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return f"| {text} |" if markdown else text.rstrip()

    rule = [(":" + "-" * (w - 1) if i in left else "-" * (w - 1) + ":") if markdown else "-" * w
            for i, w in enumerate(widths)]
    out = [line(head), line(rule)]
    for i, cells in enumerate(body):
        out += [""] * (not markdown and 0 < i and groups[i] != groups[i - 1]) + [line(cells)]
    return out


def report(args, title, method, table, notes, measured, peer_versions=None, **raw):
    """Print the run's facts (``run_fields``, then the timing method and
    ``method``), ``table`` = (head, body, left, groups) and the notes, with the
    background load and failures of ``measured`` (``measure_plan``'s result);
    write ``--markdown`` and ``--json`` (with ``raw``) where asked."""
    rows, arrays, failures, background = measured
    meta = machine()
    fields = run_fields(meta, args.command, peer_versions) + [
        ("method", f"{METHOD} ({args.rounds} x {args.budget} s per candidate); "
                   f"time = MINIMUM per-call time; {method}")]
    notes = [n for n in notes + [background_note(background, meta)] if n] + [
        f"not measured / failed: {what}: {why}" for what, why in failures.items()]
    print("\n".join([title] + [f"{name + ':':<10}{text}" for name, text in fields] + [""]
                    + table_lines(*table) + [""] + notes))
    if args.markdown:
        write_markdown(args.markdown, title, fields,
                       table_lines(*table, markdown=True) + [""] + [f"{n}  " for n in notes])
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(dict(raw, command=args.command, machine=meta, budget_s=args.budget,
                           rounds=args.rounds, background_cpus=background, rows=rows,
                           arrays=arrays, failures=failures), f, indent=1)
        print(f"raw measurements: {args.json}")


def write_markdown(path, title, fields, body):
    """A Markdown report: ``title``, the run's ``fields`` as a list, then ``body``."""
    head = [f"# {title}", ""] + [f"- **{name}**: " + (f"`{text}`" if name == "command" else text)
                                 for name, text in fields]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(head + [""] + body) + "\n")
    print(f"markdown: {path}")
