"""A/B of two builds of fastsoftmax, one process per build.

Install the two builds in two virtual environments and run this script with
each Python in turn, several times, alternating (absolute times drift on a
shared machine; alternating runs show which differences hold):

    for i in 1 2 3; do
        /path/to/venv-a/bin/python benchmarks/ab_calls.py rows
        /path/to/venv-b/bin/python benchmarks/ab_calls.py rows
    done

Cases (1 thread unless said; every line's calls are timed together in
interleaved rounds by fastsoftmax._timing, the method of ``fastsoftmax bench``,
and each prints its minimum per-call time and its ratio to the call named):

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
    scaled   temperature= and base= softmax / log_softmax and logsumexp next to
             plain softmax / log_softmax on the same array, f32, rows
             (1000000, 10), (16384, 128), (4096, 1000), (64, 32000),
             (1, 1000000) and axis 0 of (1000, 4096) and (32000, 64)
    masked   where= softmax / log_softmax next to the plain function on the same
             array, f32 (f64 too for axis 0 of (32000, 64)), rows (1000000, 10),
             (1, 1000000), axis 0 of (1000, 4096) and (32000, 64); 1 thread, and 2
             for axis 0 of (32000, 64) next to 1
    xent     cross_entropy with index targets (without and with the gradient)
             and probability targets next to log_softmax, f32, on the shapes
             of ``scaled``
    logsumexp
             logsumexp next to plain softmax, and with weights (b=, uniform in
             [0.5, 1.5]) next to plain logsumexp, f32 and f64, on the shapes
             of ``scaled``
    hash     not a timing: a digest of the outputs of every public function
             on every kernel variant, so two builds that must agree bit for
             bit can be compared
"""
from __future__ import annotations

import argparse
import hashlib
from functools import partial

import numpy as np

import fastsoftmax
from fastsoftmax import _core, _timing, reference

DTYPES = (np.float32, np.float64)


def compare(title, calls, budget, rounds):
    """Time ``calls``, (label, fn, label of the call to compare with or None),
    in the same interleaved rounds, and print one line."""
    cands = [_timing.Candidate((label,), fn) for label, fn, _ in calls]
    failures = {}
    times, _ = _timing.run(cands, budget, rounds, failures, title)
    parts = []
    for label, _, base in calls:
        s, b = times[(label,)], times.get((base,))
        ratio = f" ({s / b:.2f} x {base})" if s and b else ""
        parts.append(f"{label} {s * 1e3:.3f} ms{ratio}" if s else f"{label} failed")
    print(f"{title}: " + ", ".join(parts))
    for what, why in failures.items():
        print(f"  {what}: {why}")


def case_rows(rng, timing):
    for dtype in DTYPES:
        for shape in [(16384, 128), (4096, 1000), (24576, 512)]:
            x = rng.standard_normal(shape).astype(dtype)
            y = np.empty_like(x)
            compare(f"{np.dtype(dtype).name} {shape}", [
                ("softmax", partial(fastsoftmax.softmax, x, out=y, num_threads=1), None),
                ("log_softmax", partial(fastsoftmax.log_softmax, x, out=y, num_threads=1),
                 "softmax")], *timing)


def case_short(rng, timing):
    for dtype in DTYPES:
        for shape in [(1000000, 10), (200000, 24)]:
            x = rng.standard_normal(shape).astype(dtype)
            y = np.empty_like(x)
            compare(f"{np.dtype(dtype).name} {shape}", [
                ("np.copyto", partial(np.copyto, y, x), None),
                ("softmax", partial(fastsoftmax.softmax, x, out=y, num_threads=1), "np.copyto"),
                ("log_softmax", partial(fastsoftmax.log_softmax, x, out=y, num_threads=1),
                 "np.copyto")], *timing)


def case_cols(rng, timing):
    for dtype in DTYPES:
        for shape in [(1000, 4096), (32000, 64)]:
            x = rng.standard_normal(shape).astype(dtype)
            y = np.empty_like(x)
            xt = np.ascontiguousarray(x.T)
            yt = np.empty_like(xt)
            calls = []
            for op in (fastsoftmax.softmax, fastsoftmax.log_softmax):
                rows = f"{op.__name__} axis -1 of x.T"
                calls += [(rows, partial(op, xt, axis=-1, out=yt, num_threads=1), None),
                          (f"{op.__name__} axis 0", partial(op, x, axis=0, out=y, num_threads=1),
                           rows)]
            compare(f"{np.dtype(dtype).name} {shape}", calls, *timing)


def case_long(rng, timing):
    for dtype in DTYPES:
        x = rng.standard_normal((1, 10_000_000)).astype(dtype)
        y = np.empty_like(x)
        lse_out = np.empty(1, dtype)
        calls = [("np.copyto", partial(np.copyto, y, x), None)]
        for t in (1, 2):
            calls += [(f"softmax {t} thr", partial(fastsoftmax.softmax, x, out=y, num_threads=t),
                       "np.copyto"),
                      (f"logsumexp {t} thr", partial(fastsoftmax.logsumexp, x, out=lse_out,
                                                     num_threads=t), f"softmax {t} thr")]
        compare(f"{np.dtype(dtype).name} (1, 10^7)", calls, *timing)


def case_family(rng, timing):
    shape = (4096, 1000)
    for dtype in DTYPES:
        x = rng.standard_normal(shape).astype(dtype)
        y = np.empty_like(x)
        q = reference.softmax(rng.standard_normal(shape)).astype(dtype)
        mask = rng.random(shape) < 0.9
        one = dict(num_threads=1)
        compare(f"{np.dtype(dtype).name} {shape}", [
            ("softmax", partial(fastsoftmax.softmax, x, out=y, **one), None),
            ("log_softmax", partial(fastsoftmax.log_softmax, x, out=y, **one), None),
            ("cross_entropy(probs, +grad)", partial(fastsoftmax.cross_entropy, x, q,
                                                    return_grad=True, grad_out=y, **one),
             "log_softmax"),
            ("cross_entropy(probs)", partial(fastsoftmax.cross_entropy, x, q, **one),
             "log_softmax"),
            ("softmax where=", partial(fastsoftmax.softmax, x, out=y, where=mask, **one),
             "softmax"),
            ("softmax temperature=0.7", partial(fastsoftmax.softmax, x, out=y, temperature=0.7,
                                                **one), "softmax")], *timing)


FAMILY_GRID = [((1000000, 10), -1), ((16384, 128), -1), ((4096, 1000), -1), ((64, 32000), -1),
               ((1, 1000000), -1), ((1000, 4096), 0), ((32000, 64), 0)]


def case_scaled(rng, timing):
    for shape, axis in FAMILY_GRID:
        x = rng.standard_normal(shape).astype(np.float32)
        y = np.empty_like(x)
        lse_out = np.empty(shape[0] if axis == -1 else shape[1], np.float32)
        one = dict(axis=axis, num_threads=1)
        compare(f"float32 {shape} axis {axis}", [
            ("softmax", partial(fastsoftmax.softmax, x, out=y, **one), None),
            ("temperature=1.5", partial(fastsoftmax.softmax, x, out=y, temperature=1.5, **one), "softmax"),
            ("base=2.0", partial(fastsoftmax.softmax, x, out=y, base=2.0, **one), "softmax"),
            ("logsumexp", partial(fastsoftmax.logsumexp, x, out=lse_out, **one), "softmax"),
            ("log_softmax", partial(fastsoftmax.log_softmax, x, out=y, **one), None),
            ("log temperature=1.5", partial(fastsoftmax.log_softmax, x, out=y, temperature=1.5, **one),
             "log_softmax")], *timing)


def case_masked(rng, timing):
    for dtype, shape, axis in [(np.float32, (1000000, 10), -1), (np.float32, (1, 1000000), -1),
                               (np.float32, (1000, 4096), 0), (np.float32, (32000, 64), 0),
                               (np.float64, (32000, 64), 0)]:
        x = rng.standard_normal(shape).astype(dtype)
        y = np.empty_like(x)
        mask = rng.random(shape) < 0.9
        threads = (1, 2) if shape == (32000, 64) else (1,)
        calls = []
        for op in (fastsoftmax.softmax, fastsoftmax.log_softmax):
            name = op.__name__
            for t in threads:
                calls += [(f"{name} {t} thr", partial(op, x, axis, out=y, num_threads=t), None),
                          (f"{name} where= {t} thr", partial(op, x, axis, out=y, where=mask, num_threads=t),
                           f"{name} {t} thr")]
            if len(threads) > 1:  # the 1-thread call again, its ratio the 2-thread speed-up
                calls.append((f"{name} where= 1 thr (over 2)", partial(op, x, axis, out=y, where=mask,
                                                                       num_threads=1), f"{name} where= 2 thr"))
        compare(f"{np.dtype(dtype).name} {shape} axis {axis}", calls, *timing)


def case_xent(rng, timing):
    for shape, axis in FAMILY_GRID:
        x = rng.standard_normal(shape).astype(np.float32)
        y = np.empty_like(x)
        reduced = shape[0] if axis == -1 else shape[1]
        index = rng.integers(0, shape[axis], reduced)
        probs = reference.softmax(rng.standard_normal(shape), axis).astype(np.float32)
        one = dict(axis=axis, num_threads=1)
        compare(f"float32 {shape} axis {axis}", [
            ("log_softmax", partial(fastsoftmax.log_softmax, x, out=y, **one), None),
            ("index", partial(fastsoftmax.cross_entropy, x, index, **one), "log_softmax"),
            ("index +grad", partial(fastsoftmax.cross_entropy, x, index, return_grad=True, grad_out=y,
                                    **one), "log_softmax"),
            ("probs", partial(fastsoftmax.cross_entropy, x, probs, **one), "log_softmax")], *timing)
def case_logsumexp(rng, timing):
    for dtype in DTYPES:
        for shape, axis in FAMILY_GRID:
            x = rng.standard_normal(shape).astype(dtype)
            weights = rng.uniform(0.5, 1.5, shape).astype(dtype)
            y = np.empty_like(x)
            lse_out = np.empty(shape[0] if axis == -1 else shape[1], dtype)
            one = dict(axis=axis, num_threads=1)
            compare(f"{np.dtype(dtype).name} {shape} axis {axis}", [
                ("softmax", partial(fastsoftmax.softmax, x, out=y, **one), None),
                ("logsumexp", partial(fastsoftmax.logsumexp, x, out=lse_out, **one), "softmax"),
                ("b=", partial(fastsoftmax.logsumexp, x, b=weights, out=lse_out, **one), "logsumexp")], *timing)


def case_hash(rng, timing):
    del timing
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
         "scaled": case_scaled, "masked": case_masked, "xent": case_xent, "logsumexp": case_logsumexp,
         "hash": case_hash}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("case", choices=sorted(CASES))
    parser.add_argument("--rounds", type=int, default=5,
                        help="interleaved rounds (default 5)")
    parser.add_argument("--budget", type=float, default=0.1,
                        help="seconds per call per round (default 0.1)")
    args = parser.parse_args(argv)
    CASES[args.case](np.random.default_rng(0), (args.budget, args.rounds))


if __name__ == "__main__":
    main()
