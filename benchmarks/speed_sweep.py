"""The row-length sweep of docs/speed_sweep.png: a fixed number of elements
(so a fixed memory traffic) reshaped to rows of 10 to 10**6 elements, each
implementation's time over np.copyto's plotted against the row length (what
row length alone costs). Timed by ``fastsoftmax bench``'s harness.

    python benchmarks/speed_sweep.py docs/speed_sweep.png --peers [--threads 2]

Needs matplotlib; --peers times SciPy, PyTorch and ONNX Runtime where they
import.
"""
from __future__ import annotations

import argparse
import math
import sys

from fastsoftmax import _bench, _timing


def sweep_plan(args):
    """One array per row length, softmax only, float32 and float64, at
    ``args.threads`` threads."""
    total = 2 ** 22 if args.quick else 2 ** 24
    lengths = sorted([10 ** k for k in range(1, 7)] + [3 * 10 ** k for k in range(1, 6)] * (
        not args.quick))
    return [{"dtype": name, "shape": (max(1, total // n), n), "axes": (-1,),
             "ops": ["softmax"], "threads": [args.threads]}
            for name in ("float32", "float64") for n in lengths]


def plot(path, rows, meta):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    dtypes = list(dict.fromkeys(r["dtype"] for r in rows))
    fig, axes = plt.subplots(1, len(dtypes), figsize=(6.5 * len(dtypes), 4.8), squeeze=False,
                             sharey=True)
    styles = {"fastsoftmax": ("o", "C0"), "numpy": ("s", "C1"), "scipy": ("^", "C2"),
              "torch": ("v", "C3"), "onnxruntime": ("D", "C4")}  # the same in every panel
    for axp, dtype in zip(axes[0], dtypes):
        rs = [r for r in rows if r["dtype"] == dtype]
        for impl, (marker, color) in styles.items():
            ys = [r["s"].get(impl) / r["copy_s"] if r["s"].get(impl) and r["copy_s"]
                  else float("nan") for r in rs]
            if any(math.isfinite(v) for v in ys):
                axp.plot([r["shape"][1] for r in rs], ys, label=impl, ms=4, marker=marker,
                         color=color, lw=2.5 if impl == "fastsoftmax" else 1.5)
        axp.axhline(1.0, color="k", ls="--", lw=1, label="np.copyto (memory floor)")
        axp.set(xscale="log", yscale="log", title=f"{dtype} {rs[0]['op']}",
                xlabel=f"row length (elements; rows x length = {math.prod(rs[0]['shape']):,})")
        axp.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("time / time of np.copyto (lower is better)")
    for axp in axes[0]:
        axp.legend(fontsize=8)
    cfg = meta["fastsoftmax"]
    fig.suptitle(f"{meta['cpu']}, {meta['usable_cpus']} cores; {rows[0]['threads']} thread(s); "
                 f"fastsoftmax {cfg['version']} ({cfg['kernel_variant']}), numpy {meta['numpy']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(prog="benchmarks/speed_sweep.py", description=__doc__.split(
        "\n\n")[0])
    p.add_argument("png", help="where to write the plot")
    p.add_argument("--peers", action="store_true", help="also SciPy, PyTorch, ONNX Runtime")
    p.add_argument("--quick", action="store_true", help="fewer, smaller arrays")
    p.add_argument("--threads", type=int, default=1, help="threads of fastsoftmax and peers")
    args = p.parse_args(argv)
    import matplotlib  # noqa: F401 - fail before measuring, not after

    args.budget = _timing.QUICK_BUDGET_S if args.quick else _timing.BUDGET_S
    args.rounds = 3 if args.quick else 5
    peers = _bench.load_peers()[0] if args.peers else {}
    rows = _bench.measure_plan(args, sweep_plan(args), peers)[0]
    plot(args.png, rows, _timing.machine())
    print(f"plot: {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
