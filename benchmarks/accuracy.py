"""Accuracy of fastsoftmax (every kernel variant), NumPy and SciPy against an
extended-precision reference; prints a Markdown table (and with
``--markdown PATH`` writes it headed by the machine, versions, command and date).

    python benchmarks/accuracy.py            # full inputs, well under 2 minutes
    python benchmarks/accuracy.py --quick    # smaller inputs, a few seconds
    python benchmarks/accuracy.py --markdown docs/accuracy.md   # the generated doc

It imports the *installed* fastsoftmax (``pip install .``; SciPy is used when
installed: ``pip install ".[bench]"``).

Inputs, each in float32, float64, float16 and (when ml_dtypes is installed:
``pip install ".[ml]"``) bfloat16, generated in float64 with a fixed seed,
then rounded to the dtype; the reference is computed from the rounded values:

* normal x4:      4 * standard normal, shape (1000, 1000)
* uniform 90..100: uniform in [90, 100], shape (1000, 1000) (large offsets)
* uniform -80..80: uniform in [-80, 80], shape (1000, 1000) (wide range:
  results down to e^-160, below float32's smallest normal number)
* dominant logit: rows of 32000 standard normal values with one entry set to
  +30, 32 rows (softmax ~1 for one entry and ~1e-13 for the rest; log_softmax
  ~-1e-8 for the dominant entry)
* one long row:   one row of 1 000 000 standard normal values
* equal terms:    600 rows of 256 (or 16: the short-row plan) entries, one
  entry 0 and the others all v, v swept over [-12, -0.5] (many equal small
  terms summed next to the maximum's)
* subnormal outputs: uniform in [-110, 0] (float32 results down to e^-110,
  many of them subnormal: their absolute error is reported apart)
* uniform 5000..5080, uniform -8000..-7920: maxima far from 0 (float32
  rows beyond the no-subtraction form's exact range, float64 rows inside)
* range edges:    rows of uniform [-80, 0] shifted so that the maximum is
  exactly +-2048 (inside float32's no-subtraction range |m| <= 2048) or
  +-2048 (1 + 2^-11) (just beyond it); see src_c/exp_minus_max.h

Measures, in units of the dtype's machine epsilon (float32 2**-23, float64
2**-52, float16 2**-10, bfloat16 2**-7), maximum over all elements:

* softmax: relative error |got - ref| / |ref| over the elements whose
  reference is a normal number of the dtype (|ref| >= the smallest normal;
  subnormal and zero results are not counted, as no relative accuracy is
  promised there);
* softmax row sum: |sum(row) - 1|, the row's float results summed exactly
  (in long double);
* softmax subnormal: |got - ref| over the elements whose reference is
  below the smallest normal, in units of the smallest subnormal (1 = one
  rounding; a result flushed to 0 early shows as its reference's size);
* log_softmax: relative error where |ref| > 1e-3, absolute error elsewhere.
  Near 0 (the dominant entry of a row) log_softmax is a difference of nearly
  equal numbers; its absolute error is what any implementation can bound (a
  few eps), while its relative error is unbounded and says nothing.
* cross_entropy: relative error of each row's loss (``reduction="none"``)
  against probability targets ``softmax(2 * standard normal)`` of the same
  shape (a second fixed seed), rounded to the dtype.
* logsumexp, and logsumexp with weights ``b`` uniform in [0.5, 2] (a third
  fixed seed, rounded to the dtype): each row's error relative to
  max(|ref|, 1).  A result near 0 is the log of a total near 1 whose terms
  each carry a rounding: its absolute error is what can be bounded (an error
  of the total relative to the total; with positive weights, relative to
  the sum of |terms|), its relative error is not.

The reference is ``fastsoftmax.reference``'s function applied
to ``x.astype(np.longdouble)``: NumPy computes it natively in long double
(80-bit x87 extended on x86-64 Linux, 64-bit significand: 11 bits more than
float64).  Where long double is no wider than float64 (e.g. Windows, macOS on
Apple silicon) the table says so and its float64 figures are not meaningful.

Columns: ``fsm <variant>`` for each kernel variant this CPU supports
(switched in process with ``fastsoftmax._core._set_variant``), ``numpy`` for
``fastsoftmax.reference`` on the input's own dtype (the textbook NumPy
formula; for float16 and bfloat16 computed in float32 and rounded, as NumPy
users do, since NumPy's half-precision sums accumulate in half precision),
and, for the peers that are installed (``pip install ".[bench]"``),
``scipy`` (``scipy.special.softmax(x, axis=-1)`` / ``log_softmax``),
``torch`` (``torch.softmax`` / ``torch.log_softmax`` on the CPU) and
``onnxruntime`` (a one-node Softmax / LogSoftmax model, one thread; float32
and float64 only).
"""
from __future__ import annotations

import argparse
import shlex
import sys
import time

import numpy as np

import fastsoftmax
import fastsoftmax.reference as reference
from fastsoftmax import _bench, _core, _timing
from fastsoftmax._validation import BFLOAT16, is_half

try:
    from ml_dtypes import finfo  # np.finfo, extended to bfloat16
except ImportError:
    finfo = np.finfo

PROG = "python benchmarks/accuracy.py"
SEED = 12345
LD = np.longdouble
DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.float16)) + (() if BFLOAT16 is None else (BFLOAT16,))
EXPLANATION = (
    "Errors in units of the dtype's eps (float32 2^-23 = 1.19e-07, float64 2^-52 = 2.22e-16, "
    "float16 2^-10 = 9.77e-04, bfloat16 2^-7 = 7.81e-03), "
    "maximum over all elements, against a reference computed in long double ({bits}-bit "
    "significand) from the same rounded input. softmax: relative error over elements whose "
    "reference is a normal number of the dtype (subnormal and zero results not counted). Row "
    "sum: |sum - 1| of each row's results, summed exactly. log_softmax: relative error where "
    "|ref| > 1e-3, absolute error elsewhere (near 0, e.g. a dominant logit, the absolute error "
    "is the meaningful bound; the relative error is unbounded for any implementation). "
    "cross_entropy: relative error of each row's loss against probability targets of the same "
    "shape. logsumexp (unweighted, and with weights b uniform in [0.5, 2]): error relative to "
    "max(|ref|, 1) (a result near 0 is the log of a total near 1 of rounded terms: its absolute "
    "error is the meaningful bound). "
    "'-': the implementation has no such function. `fsm <variant>`: fastsoftmax with "
    "that kernel variant; `numpy`: the textbook formula (`fastsoftmax.reference` in the input's "
    "dtype; float16/bfloat16 computed in float32 and rounded); `scipy`, `torch` (CPU), "
    "`onnxruntime` (a one-node model, one thread; float32/float64): the peers installed.")


def families(quick):
    """(name, generator(rng) -> float64 array) for every input family."""
    n = 200 if quick else 1000
    dom_rows = 8 if quick else 32

    def dominant(rng):
        x = rng.standard_normal((dom_rows, 32000))
        x[np.arange(dom_rows), rng.integers(0, 32000, dom_rows)] = 30.0
        return x

    def equal_terms(cols):
        # row i: one entry 0, the others all v_i, v_i swept over [-12, -0.5]:
        # the sum of many equal terms next to the maximum's exp(0)
        def make(rng):
            x = np.repeat(np.linspace(-12.0, -0.5, 600)[:, None], cols, axis=1)
            x[np.arange(600), rng.integers(0, cols, 600)] = 0.0
            return x
        return make

    def range_edges(limit):
        # four groups of rows: maximum +limit, -limit (inside the exact
        # range), then +-limit (1 + 2^-11) (just outside)
        def make(rng):
            x = rng.uniform(-80.0, 0.0, (4 * edge_rows, 1000))
            x[np.arange(4 * edge_rows), rng.integers(0, 1000, 4 * edge_rows)] = 0.0
            maxima = np.repeat([limit, -limit, limit * (1 + 2.0**-11), -limit * (1 + 2.0**-11)], edge_rows)
            return x + maxima[:, None]
        return make

    edge_rows = 16 if quick else 64
    return [
        (f"normal x4, ({n}, 1000)", lambda rng: 4.0 * rng.standard_normal((n, 1000))),
        (f"uniform [90, 100], ({n}, 1000)", lambda rng: rng.uniform(90.0, 100.0, (n, 1000))),
        (f"uniform [-80, 80], ({n}, 1000)", lambda rng: rng.uniform(-80.0, 80.0, (n, 1000))),
        (f"dominant logit +30, ({dom_rows}, 32000)", dominant),
        ("one row, (1, 1000000)", lambda rng: rng.standard_normal((1, 1000000))),
        ("one 0 among equal terms, (600, 256)", equal_terms(256)),
        ("one 0 among equal terms, (600, 16) (short-row plan)", equal_terms(16)),
        (f"subnormal outputs, uniform [-110, 0], ({n}, 1000)", lambda rng: rng.uniform(-110.0, 0.0, (n, 1000))),
        (f"uniform [5000, 5080], ({n}, 1000)", lambda rng: rng.uniform(5000.0, 5080.0, (n, 1000))),
        (f"uniform [-8000, -7920], ({n}, 1000)", lambda rng: rng.uniform(-8000.0, -7920.0, (n, 1000))),
        (f"range edges +-2048, ({4 * edge_rows}, 1000)", range_edges(2048.0)),
    ]


def call_api(api, op, x, other=None):
    """op of the fastsoftmax API (fastsoftmax or fastsoftmax.reference) over
    the last axis; `other` is cross_entropy's targets or logsumexp's weights."""
    if op == "cross_entropy":
        return api.cross_entropy(x, other, reduction="none")
    if op == "logsumexp":
        return api.logsumexp(x, b=other)
    return getattr(api, op)(x)


def implementations():
    """(column name, callable(op, x, other=None) -> result or None); op is
    softmax, log_softmax, cross_entropy (other: the targets) or logsumexp
    (other: the weights or None).  None: the implementation has no such
    function."""
    impls = []
    for variant in _core.variants_supported():
        def run(op, x, other=None, variant=variant):
            _core._set_variant(variant)
            return call_api(fastsoftmax, op, x, other)
        impls.append((f"fsm {variant}", run))

    def run_numpy(op, x, other=None):
        if is_half(x.dtype):  # as NumPy users do: in float32, rounded once
            wide = run_numpy(op, x.astype(np.float32), None if other is None else other.astype(np.float32))
            return wide.astype(x.dtype)
        return call_api(reference, op, x, other)
    impls.append(("numpy", run_numpy))
    peers, _ = _bench.load_peers()
    if "scipy" in peers:
        special = peers["scipy"]

        def run_scipy(op, x, other=None):
            if op == "cross_entropy":
                return None
            if op == "logsumexp":
                return special.logsumexp(x, axis=-1, b=other)
            return getattr(special, op)(x, axis=-1)
        impls.append(("scipy", run_scipy))
    if "torch" in peers:
        torch = peers["torch"]

        def run_torch(op, x, other=None):
            tx = _bench._torch_tensor(torch, x)
            if op == "cross_entropy":
                got = torch.nn.functional.cross_entropy(tx, _bench._torch_tensor(torch, other), reduction="none")
            elif op == "logsumexp" and other is not None:
                return None  # torch.logsumexp has no weights
            else:
                got = getattr(torch, op)(tx, -1)
            if got.dtype == torch.bfloat16:  # torch has no NumPy view of bfloat16
                return got.view(torch.int16).numpy().view(BFLOAT16)
            return got.numpy()
        impls.append(("torch", run_torch))
    if "onnxruntime" in peers:
        ort, onnx = peers["onnxruntime"]

        def run_ort(op, x, other=None):
            if op not in ("softmax", "log_softmax") or is_half(x.dtype):
                return None
            sess = _bench.ort_session(ort, onnx, op, -1, x.dtype.type, x.shape, 1)
            return sess.run(None, {"x": x})[0]
        impls.append(("onnxruntime", run_ort))
    return impls


def wide(a):
    """a in long double (half precision through float32: both widenings are exact)."""
    a = np.asarray(a)
    return (a.astype(np.float32) if is_half(a.dtype) else a).astype(LD)


def max_error(got, ref, scale, unit, where=True):
    """max |got - ref| / scale over `where`, in units of `unit`; None: not
    measured; NaN: a result is not finite (the references all are)."""
    if got is None:
        return None
    g = wide(got)
    if not np.all(np.isfinite(g)):
        return np.nan
    err = np.broadcast_to(np.abs(g - ref) / scale, g.shape)[np.broadcast_to(where, g.shape)]
    return float(err.max() / LD(unit)) if err.size else 0.0


def softmax_error(got, ref, dtype):
    """Max relative error (eps) over elements whose reference is normal."""
    fi = finfo(dtype)
    normal = (np.abs(ref) >= LD(fi.smallest_normal)) & (np.abs(ref) <= LD(fi.max))
    return max_error(got, ref, np.abs(ref), fi.eps, where=normal)


def subnormal_error(got, ref, dtype):
    """Max absolute error, in smallest subnormals, over the elements whose
    reference is below the smallest normal; None where there is none."""
    fi = finfo(dtype)
    tiny = np.abs(ref) < LD(fi.smallest_normal)
    return max_error(got, ref, LD(1), fi.smallest_subnormal, where=tiny) if tiny.any() else None


def row_sum_error(got, dtype):
    """Max |row sum - 1| (eps), each row's results summed in long double."""
    return None if got is None else max_error(wide(got).sum(axis=-1), LD(1), LD(1), finfo(dtype).eps)


def log_softmax_error(got, ref, dtype):
    """Max error (eps): relative where |ref| > 1e-3, absolute elsewhere."""
    return max_error(got, ref, np.where(np.abs(ref) > LD(1e-3), np.abs(ref), LD(1)), finfo(dtype).eps)


def logsumexp_error(got, ref, dtype):
    """Max error (eps) relative to max(|ref|, 1)."""
    return max_error(got, ref, np.maximum(np.abs(ref), LD(1)), finfo(dtype).eps)


def loss_error(got, ref, dtype):
    """Max relative error (eps) of the per-row losses."""
    return max_error(got, ref, np.abs(ref), finfo(dtype).eps)


def fmt(v):
    if v is None:
        return "-"
    if not np.isfinite(v):
        return "**nan**"
    if v == 0:
        return "0"
    if v < 10:
        return f"{v:.2f}"
    if v < 1000:
        return f"{v:.1f}"
    return f"{v:.2e}"


def worst(values):
    """The largest of the measured values: NaN if any is, None if none was measured."""
    measured = [v for v in values if v is not None]
    if not measured:
        return None
    return np.nan if any(not np.isfinite(v) for v in measured) else max(measured)


def summary(rows, names):
    """Per measure and dtype, the worst figure over every input: over every
    kernel variant for fastsoftmax, per implementation for the others."""
    others = [n for n in names if not n.startswith("fsm ")]
    fsm_columns = [i for i, n in enumerate(names) if n.startswith("fsm ")]
    groups = {}
    for label, measure, values in rows:
        groups.setdefault((measure, label.rsplit(" | ", 1)[1]), []).append(values)
    lines = ["## Summary: the worst case over every input", "",
             "| measure | dtype | fastsoftmax (every variant) | " + " | ".join(others) + " |",
             "| --- | --- | ---: | " + " | ".join("---:" for _ in others) + " |"]
    measures = list(dict.fromkeys(measure for _, measure, _ in rows))
    dtype_names = [d.name for d in DTYPES]
    for (measure, dtype), table in sorted(groups.items(), key=lambda item: (dtype_names.index(item[0][1]),
                                                                            measures.index(item[0][0]))):
        cells = [worst(v[i] for v in table for i in fsm_columns)]
        cells += [worst(v[names.index(n)] for v in table) for n in others]
        lines.append(f"| {measure} | {dtype} | " + " | ".join(fmt(c) for c in cells) + " |")
    return lines


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller inputs")
    parser.add_argument("--markdown", metavar="PATH",
                        help="also write the table with the machine, versions, command and date to PATH")
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    impls = implementations()
    names = [n for n, _ in impls]
    original_variant = _core.active_variant()
    ld = np.finfo(LD)
    extended = ld.nmant > np.finfo(np.float64).nmant

    rows = []
    try:
        for family, make in families(args.quick):
            base = make(np.random.default_rng(SEED))
            targets = reference.softmax(2.0 * np.random.default_rng(SEED + 1).standard_normal(base.shape))
            weights = np.random.default_rng(SEED + 2).uniform(0.5, 2.0, base.shape)
            for dtype in DTYPES:
                x, q, w = base.astype(dtype), targets.astype(dtype), weights.astype(dtype)
                xl = wide(x)
                ref_sm = reference.softmax(xl)
                ref_lsm = reference.log_softmax(xl)
                ref_ce = reference.cross_entropy(xl, wide(q), reduction="none")
                ref_lse, ref_wlse = reference.logsumexp(xl), reference.logsumexp(xl, b=wide(w))
                label = f"{family} | {np.dtype(dtype).name}"
                sm, sub, rs, lsm, ce, lse, wlse = [], [], [], [], [], [], []
                for _, run in impls:
                    with np.errstate(all="ignore"):
                        got = run("softmax", x)
                        sm.append(softmax_error(got, ref_sm, dtype))
                        sub.append(subnormal_error(got, ref_sm, dtype))
                        rs.append(row_sum_error(got, dtype))
                        lsm.append(log_softmax_error(run("log_softmax", x), ref_lsm, dtype))
                        ce.append(loss_error(run("cross_entropy", x, q), ref_ce, dtype))
                        lse.append(logsumexp_error(run("logsumexp", x), ref_lse, dtype))
                        wlse.append(logsumexp_error(run("logsumexp", x, w), ref_wlse, dtype))
                rows.append((label, "softmax: max rel. error", sm))
                rows.append((label, "softmax: max \\|row sum - 1\\|", rs))
                if any(v is not None for v in sub):
                    rows.append((label, "softmax, subnormal results: max abs. error (smallest subnormals)", sub))
                rows.append((label, "log_softmax: max error", lsm))
                rows.append((label, "cross_entropy (probabilities): max rel. loss error", ce))
                rows.append((label, "logsumexp: max error", lse))
                rows.append((label, "logsumexp, weights in [0.5, 2]: max error", wlse))
                sys.stderr.write(f"  {family}, {np.dtype(dtype).name}: done\n")
    finally:
        _core._set_variant(original_variant)

    peer_versions = {name: version for name, version in _bench.load_peers()[1].items() if name in names}
    title = "fastsoftmax accuracy" + (" (--quick)" if args.quick else "")
    body = [EXPLANATION.format(bits=ld.nmant + 1), ""]
    if not extended:
        body += ["**Warning: long double is no wider than float64 here; the float64 reference is "
                 "not extended precision and its figures are not meaningful.**", ""]
    body += summary(rows, names) + ["", "## Every input", ""]
    body += ["| input | dtype | measure | " + " | ".join(names) + " |",
             "| --- | --- | --- | " + " | ".join("---:" for _ in names) + " |"]
    body += [f"| {label} | {measure} | " + " | ".join(fmt(v) for v in values) + " |"
             for label, measure, values in rows]
    fields = _timing.run_fields(_timing.machine(), f"{PROG} {shlex.join(argv)}".rstrip(), peer_versions)
    fields.append(("kernel variants measured", ", ".join(_core.variants_supported())))
    print("\n".join([f"## {title}", ""] + [f"{name}: {text}" for name, text in fields] + [""] + body))
    if args.markdown:
        _timing.write_markdown(args.markdown, title, fields, body)
    sys.stderr.write(f"accuracy: {time.perf_counter() - t0:.1f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
