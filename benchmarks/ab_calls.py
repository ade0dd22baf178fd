"""A/B of two builds of fastsoftmax, one process per build.

Install the two builds in two virtual environments and run this script with
each Python in turn, several times, alternating (absolute times drift on a
shared machine; alternating runs show which differences hold):

    for i in 1 2 3; do
        /path/to/venv-a/bin/python benchmarks/ab_calls.py rows
        /path/to/venv-b/bin/python benchmarks/ab_calls.py rows
    done

Cases (each prints the minimum per-call time over --calls calls, 1 thread):

    rows     softmax / log_softmax, f32 and f64, (16384, 128), (4096, 1000),
             (24576, 512), preallocated out
    short    softmax / log_softmax on short rows (the short-row plan), f32
             and f64, (1000000, 10) and (200000, 24), next to np.copyto
    cols     softmax / log_softmax over axis 0 (the column plan), f32 and
             f64, (1000, 4096) and (32000, 64), next to axis -1 of the same
             data transposed (the same work along rows)
    long     one row of 10^7 (out of cache), f32 and f64: softmax next to
             logsumexp (the arithmetic of a one-read "max and rescaled sum"
             first pass) and np.copyto, at 1 and 2 threads
    family   cross_entropy with probability targets (+grad into a preallocated
             grad_out, and without), softmax where= and temperature= next to
             log_softmax / softmax, f32 and f64, (4096, 1000)
    hash     not a timing: a digest of the outputs of every public function
             on every kernel variant, so two builds that must agree bit for
             bit can be compared
"""
from __future__ import annotations

import argparse
import hashlib

import numpy as np

import fastsoftmax
from fastsoftmax import _core, reference
from timing import best_seconds  # benchmarks/timing.py, beside this script

DTYPES = (np.float32, np.float64)


def best_ms(fn, calls):
    return best_seconds(fn, calls) * 1e3


def case_rows(rng, calls):
    for dtype in DTYPES:
        for shape in [(16384, 128), (4096, 1000), (24576, 512)]:
            x = rng.standard_normal(shape).astype(dtype)
            y = np.empty_like(x)
            sm = best_ms(lambda: fastsoftmax.softmax(x, out=y, num_threads=1), calls)
            lsm = best_ms(lambda: fastsoftmax.log_softmax(x, out=y, num_threads=1), calls)
            print(f"{np.dtype(dtype).name} {shape}: softmax {sm:.3f} ms, log_softmax {lsm:.3f} ms")


def case_short(rng, calls):
    for dtype in DTYPES:
        for shape in [(1000000, 10), (200000, 24)]:
            x = rng.standard_normal(shape).astype(dtype)
            y = np.empty_like(x)
            sm = best_ms(lambda: fastsoftmax.softmax(x, out=y, num_threads=1), calls)
            lsm = best_ms(lambda: fastsoftmax.log_softmax(x, out=y, num_threads=1), calls)
            copy = best_ms(lambda: np.copyto(y, x), calls)
            print(f"{np.dtype(dtype).name} {shape}: softmax {sm:.2f} ms ({sm / copy:.2f} x copy), "
                  f"log_softmax {lsm:.2f} ms ({lsm / copy:.2f} x copy), np.copyto {copy:.2f} ms")


def case_cols(rng, calls):
    for dtype in DTYPES:
        for shape in [(1000, 4096), (32000, 64)]:
            x = rng.standard_normal(shape).astype(dtype)
            y = np.empty_like(x)
            xt = np.ascontiguousarray(x.T)
            yt = np.empty_like(xt)
            times = []
            for op in (fastsoftmax.softmax, fastsoftmax.log_softmax):
                axis0 = best_ms(lambda: op(x, axis=0, out=y, num_threads=1), calls)
                rows = best_ms(lambda: op(xt, axis=-1, out=yt, num_threads=1), calls)
                times.append(f"{op.__name__} axis 0 {axis0:.2f} ms ({axis0 / rows:.2f} x axis -1)")
            print(f"{np.dtype(dtype).name} {shape}: " + ", ".join(times))


def case_long(rng, calls):
    for dtype in DTYPES:
        x = rng.standard_normal((1, 10_000_000)).astype(dtype)
        y = np.empty_like(x)
        lse_out = np.empty(1, dtype)
        copy = best_ms(lambda: np.copyto(y, x), calls)
        parts = []
        for threads in (1, 2):
            sm = best_ms(lambda: fastsoftmax.softmax(x, out=y, num_threads=threads), calls)
            lse = best_ms(lambda: fastsoftmax.logsumexp(x, out=lse_out, num_threads=threads), calls)
            parts.append(f"{threads} thr: softmax {sm:.2f} ms ({sm / copy:.2f} x copy), "
                         f"logsumexp {lse:.2f} ms ({lse / sm:.2f} x softmax)")
        print(f"{np.dtype(dtype).name} (1, 10^7): " + "; ".join(parts) + f"; np.copyto {copy:.2f} ms")


def case_family(rng, calls):
    shape = (4096, 1000)
    for dtype in DTYPES:
        x = rng.standard_normal(shape).astype(dtype)
        y = np.empty_like(x)
        q = reference.softmax(rng.standard_normal(shape)).astype(dtype)
        mask = rng.random(shape) < 0.9
        sm = best_ms(lambda: fastsoftmax.softmax(x, out=y, num_threads=1), calls)
        lsm = best_ms(lambda: fastsoftmax.log_softmax(x, out=y, num_threads=1), calls)
        ce_grad = best_ms(lambda: fastsoftmax.cross_entropy(x, q, return_grad=True, grad_out=y,
                                                            num_threads=1), calls)
        ce = best_ms(lambda: fastsoftmax.cross_entropy(x, q, num_threads=1), calls)
        where = best_ms(lambda: fastsoftmax.softmax(x, out=y, where=mask, num_threads=1), calls)
        hot = best_ms(lambda: fastsoftmax.softmax(x, out=y, temperature=0.7, num_threads=1), calls)
        print(f"{np.dtype(dtype).name} {shape}: cross_entropy(probs, +grad) {ce_grad:.2f} ms "
              f"= {ce_grad / lsm:.2f} x log_softmax ({lsm:.2f} ms), without grad {ce:.2f} ms; "
              f"softmax where= {where:.2f} ms = {where / sm:.2f} x softmax ({sm:.2f} ms); "
              f"temperature=0.7 {hot:.2f} ms = {hot / sm:.2f} x softmax")


def case_hash(rng, calls):
    del calls
    digest = hashlib.sha256()
    original = _core.active_variant()
    try:
        for variant in _core.variants_supported():
            _core._set_variant(variant)
            for dtype in DTYPES:
                for shape in [(7, 1000), (33, 128), (5, 3000), (100, 10), (2, 70000)]:
                    x = (rng.standard_normal(shape) * 5).astype(dtype)
                    q = reference.softmax(rng.standard_normal(shape)).astype(dtype)
                    mask = rng.random(shape) < 0.8
                    results = [
                        fastsoftmax.softmax(x), fastsoftmax.log_softmax(x), fastsoftmax.logsumexp(x),
                        fastsoftmax.softmax(x, temperature=0.3), fastsoftmax.softmax(x, where=mask),
                        fastsoftmax.softmax(x, axis=0), fastsoftmax.softmax_backward(x, q),
                        fastsoftmax.log_softmax_backward(x, np.log(q)),
                        fastsoftmax.cross_entropy(x, q, reduction="none", return_grad=True)[1],
                        fastsoftmax.cross_entropy(x, q, reduction="none"),
                    ]
                    for r in results:
                        digest.update(np.ascontiguousarray(r).tobytes())
    finally:
        _core._set_variant(original)
    print(f"outputs digest over variants {', '.join(_core.variants_supported())}: "
          f"{digest.hexdigest()[:16]}")


CASES = {"rows": case_rows, "short": case_short, "cols": case_cols, "long": case_long, "family": case_family,
         "hash": case_hash}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--calls", type=int, default=150, help="calls per measurement (default 150)")
    args = parser.parse_args(argv)
    if args.calls < 1:
        parser.error("--calls must be >= 1")
    CASES[args.case](np.random.default_rng(0), args.calls)


if __name__ == "__main__":
    main()
