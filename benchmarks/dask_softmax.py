"""Time fastsoftmax.dask.softmax against the single-machine call on the same data.

    python benchmarks/dask_softmax.py [--rows 4096] [--cols 16384]

Needs the dask extra (``pip install ".[dask]"``).  The input is a float32
NumPy array cut into 16 chunks of 4 x 4 blocks, so the softmax axis spans 4
chunks and the two-stage path runs.  Timed: ``fastsoftmax.softmax`` on the
NumPy array (output preallocated), the Dask result stored into a
preallocated array with the threaded scheduler, and computed on a
``dask.distributed`` ``LocalCluster`` of 2 single-threaded worker processes.
The three are timed in the same interleaved rounds (``fastsoftmax._timing``,
one call each per round, --rounds rounds); each figure is the minimum, and the
Dask results are checked against the single-machine one.
"""
from __future__ import annotations

import argparse

import dask.array as da
import numpy as np

import fastsoftmax
import fastsoftmax.dask
from fastsoftmax import _timing


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=16384)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    x = np.random.default_rng(0).standard_normal((args.rows, args.cols), dtype=np.float32)
    chunks = (args.rows // 4, args.cols // 4)
    dx = da.from_array(x, chunks=chunks)
    expected = np.empty_like(x)
    got_threaded, got_cluster = np.empty_like(x), np.empty_like(x)
    print(f"array {x.shape} float32, {x.nbytes / 2**20:.0f} MiB, {dx.npartitions} chunks of "
          f"{chunks} ({x.nbytes / dx.npartitions / 2**20:.0f} MiB); softmax over axis 1 "
          f"(spans {dx.numblocks[1]} chunks)")

    def run_threaded():
        da.store(fastsoftmax.dask.softmax(dx, axis=1, num_threads=1), got_threaded, lock=False,
                 scheduler="threads")

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        # the array is scattered once; then each run is the two-stage graph
        dx_cluster = da.from_array(x, chunks=chunks).persist()

        def run_cluster():
            got_cluster[...] = fastsoftmax.dask.softmax(dx_cluster, axis=1, num_threads=1).compute()

        calls = {"single": lambda: fastsoftmax.softmax(x, out=expected),
                 "threaded": run_threaded, "cluster": run_cluster}
        cands = [_timing.Candidate((name,), fn) for name, fn in calls.items()]
        times, _ = _timing.run(cands, 0.0, args.rounds, {})
    np.testing.assert_allclose(got_threaded, expected, rtol=1e-5, atol=0)
    np.testing.assert_allclose(got_cluster, expected, rtol=1e-5, atol=0)
    single, threaded, distributed = (times[(name,)] for name in calls)
    print(f"fastsoftmax.softmax (NumPy array, default threads): {single * 1e3:.1f} ms")
    print(f"fastsoftmax.dask.softmax, threaded scheduler: {threaded * 1e3:.1f} ms "
          f"({threaded / single:.2f}x the single-machine call)")
    print(f"fastsoftmax.dask.softmax, LocalCluster 2 processes (input persisted, result "
          f"gathered): {distributed * 1e3:.1f} ms ({distributed / single:.2f}x)")


if __name__ == "__main__":
    main()
