"""fastsoftmax.dask.softmax against Dask's own composition, on larger-than-memory data.

    python benchmarks/dask_softmax.py [--workloads mem2,mem2-whole,gen8] [--cluster] [--scale 1]

Needs the dask extra (``pip install ".[dask]"``).  Softmax over axis 1 of
float32 arrays of 2**16 columns in chunks of (1024, 16384) (each row spans 4
chunks) or (1024, 65536) (``-whole``), the result reduced to its row sums
(``.sum(axis=1).compute()``), which must all be 1:

- ``gen8``, ``gen32``: 8 or 32 GiB generated block by block
  (``da.random.default_rng(0).standard_normal``), timed once;
- ``mem2``, ``mem2-whole``: a 2 GiB NumPy array in memory (``da.from_array``),
  the best of 3 calls.

Times are wall-clock; CPU time (the process's, or the sum of the workers'
on the cluster) is also given, as it varies less on a shared machine.

Methods: ``floor`` reduces the input alone (``x.sum(axis=1)``: generating or
reading it), ``fastsoftmax`` is ``fastsoftmax.dask.softmax``, ``composition``
is ``e = da.exp(x - x.max(axis=1, keepdims=True)); e / e.sum(axis=1,
keepdims=True)``, ``single`` is ``fastsoftmax.softmax`` on the NumPy array
(in-memory workloads only).  Each (workload, method) runs in a fresh process
with the threaded scheduler, so that its peak RSS (``ru_maxrss``, the input
included for in-memory workloads) is its own.  ``--cluster`` also runs the
generated workloads on a ``LocalCluster`` of 2 single-threaded workers with a
4 GiB memory limit each (peak RSS: the largest worker's; restarts counted).
``--scale N`` divides the rows by N (a quick check).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

from fastsoftmax import _timing

COLS, CHUNK_ROWS, CHUNK_COLS = 2**16, 2**10, 2**14
WORKLOADS = {  # name: (rows, generated, chunk columns)
    "gen32": (2**17, True, CHUNK_COLS), "gen8": (2**15, True, CHUNK_COLS),
    "mem2": (2**13, False, CHUNK_COLS), "mem2-whole": (2**13, False, COLS),
}
METHODS = ("floor", "fastsoftmax", "composition", "single")
WORKER_MEMORY = "4GiB"


def composition(x):
    e = da.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def row_sums(method, x, numpy_x):
    if method == "floor":
        return x.sum(axis=1)
    if method == "single":
        return fastsoftmax.softmax(numpy_x, axis=1).sum(axis=1)
    y = fastsoftmax.dask.softmax(x, axis=1) if method == "fastsoftmax" else composition(x)
    return y.sum(axis=1)


def measure_one(workload, method, scale, cluster):
    """Run in a child process: seconds, peak RSS in bytes, max |row sum - 1|."""
    rows, generated, chunk_cols = WORKLOADS[workload]
    shape, chunks = (rows // scale, COLS), (CHUNK_ROWS // min(scale, CHUNK_ROWS), chunk_cols)
    numpy_x = None
    if generated:
        x = da.random.default_rng(0).standard_normal(shape, chunks=chunks, dtype="float32")
    else:
        numpy_x = np.random.default_rng(0).standard_normal(shape, dtype=np.float32)
        x = da.from_array(numpy_x, chunks=chunks)
    client = None
    if cluster:
        from dask.distributed import Client, LocalCluster
        client = Client(LocalCluster(n_workers=2, threads_per_worker=1, memory_limit=WORKER_MEMORY,
                                     dashboard_address=None))
        workers = set(client.scheduler_info()["workers"])
    times, cpus, sums = [], [], None
    for _ in range(1 if generated else 3):
        cpu0 = _cpu_and_peak(client)[0]
        t0 = time.perf_counter()
        result = row_sums(method, x, numpy_x)
        sums = result if method == "single" else result.compute()
        times.append(time.perf_counter() - t0)
        cpus.append(_cpu_and_peak(client)[0] - cpu0)
    peak = _cpu_and_peak(client)[1]
    facts = {}
    if client is not None:
        facts["restarts"] = len(workers - set(client.scheduler_info()["workers"]))
        client.close()
    error = None if method == "floor" else float(np.max(np.abs(sums - 1.0)))
    return dict(facts, seconds=min(times), cpu_seconds=min(cpus), peak_rss=peak,
                row_sum_error=error)


def _usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime, r.ru_maxrss * 1024


def _cpu_and_peak(client):
    """CPU seconds used so far (this process, or the sum over the cluster's
    workers) and peak RSS (this process, or the largest worker's)."""
    if client is None:
        return _usage()
    usages = client.run(_usage).values()
    return sum(cpu for cpu, _ in usages), max(peak for _, peak in usages)


def run_child(workload, method, scale, cluster):
    cmd = [sys.executable, os.path.abspath(__file__), "--child", workload, method,
           "--scale", str(scale)] + ["--cluster"] * cluster
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def plan(workloads, cluster):
    for workload in workloads:
        generated = WORKLOADS[workload][1]
        for method in METHODS:
            if method != "single" or not generated:
                yield workload, "threads", method
        if cluster and generated:
            for method in ("floor", "fastsoftmax", "composition"):
                yield workload, "cluster", method


def table(results):
    head = ["workload", "scheduler", "method", "time", "x floor", "x composition",
            "CPU time", "CPU x floor", "CPU x composition", "peak RSS", "max |row sum - 1|"]
    body, groups = [], []
    for (workload, scheduler, method), r in results.items():
        t, cpu = r.get("seconds"), r.get("cpu_seconds")
        body.append([workload, scheduler, method, _timing.fmt_time(t) if t else r.get("error", "")[:60],
                     *_ratios(results, workload, scheduler, "seconds", t),
                     _timing.fmt_time(cpu) if cpu else "",
                     *_ratios(results, workload, scheduler, "cpu_seconds", cpu),
                     f"{r['peak_rss'] / 2**30:.2f} GiB" if t else "",
                     "-" if r.get("row_sum_error") is None else f"{r['row_sum_error']:.1e}"
                     + (f", {r['restarts']} restarts" if r.get("restarts") else "")])
        groups.append((workload, scheduler))
    return head, body, {0, 1, 2}, groups


def _ratios(results, workload, scheduler, key, value):
    """`value` over the floor's and the composition's `key` on the same
    workload and scheduler."""
    ratios = []
    for method in ("floor", "composition"):
        other = results.get((workload, scheduler, method), {}).get(key)
        ratios.append(_timing.fmt_ratio(value / other if value and other else None, "-"))
    return ratios


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workloads", type=_timing.list_arg(str, WORKLOADS),
                        default=["mem2", "mem2-whole", "gen8"], metavar="mem2,gen8,...")
    parser.add_argument("--cluster", action="store_true",
                        help=f"also the generated workloads on a 2-worker LocalCluster ({WORKER_MEMORY} each)")
    parser.add_argument("--scale", type=int, default=1, help="divide the rows by this (a quick check)")
    parser.add_argument("--markdown", metavar="PATH", help="also write the table to PATH")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(measure_one(*args.child, args.scale, args.cluster)))
        return
    results, durations, others = {}, {}, _timing.load_meter()
    for workload, scheduler, method in plan(args.workloads, args.cluster):
        _timing.progress(f"{workload} {scheduler} {method} ...")
        t0 = time.perf_counter()
        results[(workload, scheduler, method)] = run_child(workload, method, args.scale,
                                                           scheduler == "cluster")
        durations[workload] = durations.get(workload, 0.0) + time.perf_counter() - t0
    meta, background = _timing.machine(), others()
    command = "python benchmarks/dask_softmax.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [f"command: {command}", f"date: {meta['date']}",
             f"machine: {meta['cpu']}, {meta['usable_cpus']} usable CPUs; Dask {dask.__version__}",
             _timing.background_note(background, meta),
             "run time (processes included): " + ", ".join(
                 f"{w} {_timing.fmt_time(d)}" for w, d in durations.items())]
    print("\n".join(lines + [""] + _timing.table_lines(*table(results))))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write("\n".join([f"{line}  " for line in lines] + [""]
                              + _timing.table_lines(*table(results), markdown=True)) + "\n")


if __name__ == "__main__":
    import dask
    import dask.array as da

    import fastsoftmax
    import fastsoftmax.dask
    main()
