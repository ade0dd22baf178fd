"""Time fastsoftmax.dask.softmax against the single-machine call on the same data.

    python benchmarks/dask_softmax.py [--rows 4096] [--cols 16384]

Needs the dask extra (``pip install ".[dask]"``).  The input is a float32
NumPy array cut into 16 chunks of 4 x 4 blocks, so the softmax axis spans 4
chunks and the two-stage path runs.  Timed: ``fastsoftmax.softmax`` on the
NumPy array (output preallocated), then the Dask result stored into a
preallocated array with the threaded scheduler, then with a
``dask.distributed`` ``LocalCluster`` of 2 single-threaded worker processes.
Each figure is the minimum over --repeats runs, and the Dask results are
checked against the single-machine one.
"""
from __future__ import annotations

import argparse

import dask
import dask.array as da
import numpy as np

import fastsoftmax
import fastsoftmax.dask
from timing import best_seconds  # benchmarks/timing.py, beside this script


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--cols", type=int, default=16384)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    x = np.random.default_rng(0).standard_normal((args.rows, args.cols), dtype=np.float32)
    chunks = (args.rows // 4, args.cols // 4)
    dx = da.from_array(x, chunks=chunks)
    expected = np.empty_like(x)
    got = np.empty_like(x)
    print(f"array {x.shape} float32, {x.nbytes / 2**20:.0f} MiB, {dx.npartitions} chunks of "
          f"{chunks} ({x.nbytes / dx.npartitions / 2**20:.0f} MiB); softmax over axis 1 "
          f"(spans {dx.numblocks[1]} chunks)")

    single = best_seconds(lambda: fastsoftmax.softmax(x, out=expected), args.repeats)
    print(f"fastsoftmax.softmax (NumPy array, default threads): {single * 1e3:.1f} ms")

    def run_dask():
        da.store(fastsoftmax.dask.softmax(dx, axis=1, num_threads=1), got, lock=False)

    with dask.config.set(scheduler="threads"):
        threaded = best_seconds(run_dask, args.repeats)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)
    print(f"fastsoftmax.dask.softmax, threaded scheduler: {threaded * 1e3:.1f} ms "
          f"({threaded / single:.2f}x the single-machine call)")

    from dask.distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        # the array is scattered once; then each run is the two-stage graph
        dx_cluster = da.from_array(x, chunks=chunks).persist()

        def run_cluster():
            got[...] = fastsoftmax.dask.softmax(dx_cluster, axis=1, num_threads=1).compute()

        distributed = best_seconds(run_cluster, args.repeats)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=0)
    print(f"fastsoftmax.dask.softmax, LocalCluster 2 processes (input persisted, result "
          f"gathered): {distributed * 1e3:.1f} ms ({distributed / single:.2f}x)")


if __name__ == "__main__":
    main()
