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
import datetime
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

import fastsoftmax

SEED = 20240601
DTYPES = {"float32": np.float32, "float64": np.float64}
QUIESCE_S = 0.03
SAMPLE_TARGET_S = 1e-3
MAX_CALLS_PER_SAMPLE = 100000
MAX_SAMPLES_PER_ROUND = 200
SLOW_ROUND_S = 5.0  # an array whose round takes longer gets only 3 rounds
BUSY_WARN_CPUS = 0.2  # rows measured while others used this many CPUs get a note


def make_input(dtype, shape, seed=SEED):
    """Seeded standard normal ``x`` and a zero-filled output of its shape
    (zeros: the output's pages are touched before timing)."""
    x = np.random.default_rng(seed).standard_normal(shape, dtype=dtype)
    return x, np.zeros_like(x)


def timing_plan(quick, rounds=None):
    """(seconds per candidate per round, rounds)."""
    budget, default_rounds = (0.04, 3) if quick else (0.1, 5)
    return budget, rounds or default_rounds


class Candidate:
    """One thing to time: ``fn()`` is a complete call, ``key`` a tuple naming it,
    ``prepare()`` runs before each turn, ``keep`` holds what ``fn`` needs alive."""

    def __init__(self, key, fn, prepare=None, keep=()):
        self.key, self.fn, self.prepare, self.keep = key, fn, prepare, keep
        self.n, self.rounds, self.status = 1, [], "ok"

    @property
    def label(self):
        return " ".join(str(k) for k in self.key if k is not None)

    @property
    def best(self):
        samples = [s for r in self.rounds for s in r]
        return min(samples) if samples and self.status == "ok" else None

    def record(self):
        minima = [min(r) for r in self.rounds if r]
        return {"key": list(self.key), "status": self.status, "calls_per_sample": self.n,
                "min_s": self.best, "rounds_s": self.rounds,
                "median_of_round_minima_s": statistics.median(minima) if minima else None}


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
    per_call = time_calls(fn, n)
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
        if c.status != "ok":
            continue
        try:
            _turn(c)
            result = c.fn()
            if check is not None and not check(c, result):
                c.status = "wrong"
                failures[f"{c.label} {where}"] = "result disagrees with the reference; not timed"
                continue
            c.n = calls_per_sample(c.fn)
        except Exception as exc:  # noqa: BLE001 - a failing candidate is reported, not fatal
            c.status = "error"
            failures[f"{c.label} {where}"] = short_error(exc)


def measure(cands, budget, rounds):
    """Interleaved rounds; returns how many were done."""
    active = [c for c in cands if c.status == "ok"]
    done = 0
    for r in range(rounds):
        t_round = time.perf_counter()
        k = r % len(active) if active else 0
        for c in active[k:] + active[:k]:
            _turn(c)
            samples, t0 = [], time.perf_counter()
            while not samples or (time.perf_counter() - t0 < budget
                                  and len(samples) < MAX_SAMPLES_PER_ROUND):
                samples.append(time_calls(c.fn, c.n))
            c.rounds.append(samples)
        done += 1
        if done >= 3 and time.perf_counter() - t_round > SLOW_ROUND_S:
            break
    return done


def run(cands, budget, rounds, failures, where="", check=None):
    """Warm up and measure one array's candidates, then release their calls.
    Returns ``({key: minimum seconds or None}, facts about the run)``."""
    t0, meter = time.perf_counter(), LoadMeter()
    warm_up(cands, failures, where, check)
    done = measure(cands, budget, rounds)
    for c in cands:
        c.fn = c.prepare = None
        c.keep = ()
    facts = {"rounds": done, "seconds": time.perf_counter() - t0,
             "background_cpus": meter.others(), "candidates": [c.record() for c in cands]}
    return {c.key: c.best for c in cands}, facts


class LoadMeter:
    """CPUs used by other processes since start, from /proc/stat (all CPUs'
    busy time) minus this process's own CPU time; None without /proc/stat."""

    def __init__(self):
        try:
            self._hz = os.sysconf("SC_CLK_TCK")
        except (AttributeError, ValueError, OSError):
            self._hz = 100
        t = os.times()
        self._busy0, self._self0, self._wall0 = self._busy(), t.user + t.system, time.perf_counter()

    def _busy(self):
        try:
            with open("/proc/stat", encoding="ascii") as f:
                values = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        return (sum(values) - values[3] - values[4]) / self._hz  # all but idle and iowait

    def others(self):
        busy, wall = self._busy(), time.perf_counter() - self._wall0
        if busy is None or self._busy0 is None or wall <= 0:
            return None
        t = os.times()
        return max(0.0, (busy - self._busy0 - (t.user + t.system - self._self0)) / wall)


# --------------------------------------------------------------------------- #
# Machine, arguments, output
# --------------------------------------------------------------------------- #


def cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def machine():
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    return {"cpu": cpu_model(), "logical_cpus": os.cpu_count() or 1, "usable_cpus": usable,
            "platform": platform.platform(), "python": platform.python_version(),
            "numpy": np.__version__, "fastsoftmax": fastsoftmax.get_config(),
            "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
            "env": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                                "GOMP_SPINCOUNT", "FASTSOFTMAX_KERNEL")
                    if k in os.environ}}


def describe(meta, command, peer_versions=None):
    """The run's facts as (field, text) pairs: command, date, machine, software, peers."""
    cfg = meta["fastsoftmax"]
    fields = [
        ("command", command),
        ("date", meta["date"]),
        ("machine", f"{meta['cpu']}, {meta['logical_cpus']} logical CPUs "
                    f"({meta['usable_cpus']} usable); {meta['platform']}"),
        ("software", f"Python {meta['python']}, NumPy {meta['numpy']}, fastsoftmax "
                     f"{cfg['version']} (kernel {cfg['kernel_variant']}, OpenMP "
                     f"{'on' if cfg['openmp'] else 'off'})"),
    ]
    if meta["env"]:
        fields.append(("env", " ".join(f"{k}={v}" for k, v in meta["env"].items())))
    if peer_versions is not None:
        fields.append(("peers", ", ".join(f"{n} {v}" for n, v in peer_versions.items())
                       or "none found"))
    return fields


def parse_list(text, kind=str, allowed=None):
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"empty list: {text!r}")
    if allowed is not None and any(i not in allowed for i in items):
        raise argparse.ArgumentTypeError(f"{text!r}: each must be one of {', '.join(allowed)}")
    try:
        return list(dict.fromkeys(kind(i) for i in items))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of {kind.__name__}: {text!r}") from None


def threads_arg(text):
    values = parse_list(text, int)
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"thread counts must be >= 1: {text!r}")
    return sorted(values)


def shapes_arg(text):
    """``"4096x1000,1000x4096:0"``: (shape, axes) pairs; ``:0`` also measures axis 0."""
    specs = []
    for item in parse_list(text):
        body, _, suffix = item.partition(":")
        try:
            shape = tuple(int(d) for d in body.lower().split("x"))
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a shape like 4096x1000: {item!r}") from None
        if suffix not in ("", "0") or any(d < 1 for d in shape) or (suffix and len(shape) < 2):
            raise argparse.ArgumentTypeError(
                f"{item!r}: extents >= 1; the only suffix is ':0' (axis 0 too, 2-d and up)")
        specs.append((shape, (-1, 0) if suffix else (-1,)))
    return specs


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number >= 1: {text!r}")
    return int(text)


def add_common_arguments(p, quick_help):
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--threads", type=threads_arg, default=None, metavar="T1,T2",
                   help="thread counts for fastsoftmax and the threaded peers (default 1)")
    p.add_argument("--dtype", type=lambda s: parse_list(s, str, tuple(DTYPES)), default=None,
                   metavar="float32,float64", help="dtypes (default both)")
    p.add_argument("--shapes", type=shapes_arg, default=None, metavar="AxB,...",
                   help="replace the shape grid, e.g. '4096x1000,64x32000'; "
                   "a ':0' suffix ('1000x4096:0') also measures axis 0")
    p.add_argument("--rounds", type=positive_int, default=None, metavar="N",
                   help="interleaved rounds (default 5, --quick 3)")
    p.add_argument("--json", metavar="PATH", help="write every raw measurement to PATH")
    p.add_argument("--markdown", metavar="PATH",
                   help="write the table, the machine, the versions and the command to PATH")


def progress(text):
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def fmt_time(seconds):
    if not seconds:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
        if seconds >= scale or unit == "ns":
            v = seconds / scale
            return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def fmt_ratio(value, missing="n/a"):
    return f"{value:.2f}" if value else missing


def text_table(head, body, left, groups):
    """A plain-text table: columns padded to their widest cell, those in
    ``left`` left-aligned, a blank line where ``groups`` changes."""
    widths = [max([len(h)] + [len(b[i]) for b in body]) for i, h in enumerate(head)]

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [line(head), line(["-" * w for w in widths])]
    for i, cells in enumerate(body):
        if i and groups[i] != groups[i - 1]:
            out.append("")
        out.append(line(cells))
    return out


def markdown_table(head, body, left):
    rule = [":--" if i in left else "--:" for i in range(len(head))]
    return ["| " + " | ".join(cells) + " |" for cells in [head, rule] + body]


def background_note(run_background, meta):
    if run_background is None:
        return None
    return (f"background load: other processes used {run_background:.2f} of "
            f"{meta['logical_cpus']} CPUs on average during the run"
            + (" (figures less reliable, multi-threaded ones most)"
               if run_background >= BUSY_WARN_CPUS else ""))


def report(args, title, fields, table, notes, failures, doc):
    """Print the header, ``table`` = (head, body, left, groups) and the notes;
    write ``--markdown`` and ``--json`` where asked."""
    head, body, left, groups = table
    print(title)
    for name, text in fields:
        print(f"{name + ':':<10}{text}")
    print()
    print("\n".join(text_table(head, body, left, groups)))
    print()
    print("\n".join(notes))
    failed = [f"  {what}: {why}" for what, why in failures.items()]
    if failed:
        print("\nnot measured / failed:\n" + "\n".join(failed))
    if args.markdown:
        lines = [f"# {title}", ""] + [f"- **{name}**: `{text}`" if name == "command" else
                                      f"- **{name}**: {text}" for name, text in fields]
        lines += [""] + markdown_table(head, body, left) + [""] + notes
        if failed:
            lines += ["", "Not measured / failed:", ""] + [f"- {f.strip()}" for f in failed]
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        print(f"markdown: {args.markdown}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(dict(doc, failures=failures), f, indent=1)
        print(f"raw measurements: {args.json}")
