"""Command line: ``fastsoftmax {bench,info}`` (the console script installed
with the package; ``python -m fastsoftmax`` is the same from any directory but
the source checkout's root, where the source folder would shadow the installed
package).

    fastsoftmax info           # show_config(): version, kernel variant, OpenMP
    fastsoftmax bench --quick  # fastsoftmax vs NumPy vs np.copyto (and peers)
    fastsoftmax bench --help   # all benchmark options
    fastsoftmax bench --family # logsumexp, backward, cross_entropy, ...
"""
from __future__ import annotations

import sys

USAGE = """\
usage: fastsoftmax {bench,info} [options]

commands:
  info     print the configuration (version, kernel variant, OpenMP, threads)
  bench    benchmark softmax / log_softmax against NumPy, a plain copy and,
           with --peers, SciPy, PyTorch and ONNX Runtime
           (fastsoftmax bench --help for its options)
  bench --family
           benchmark the softmax family (temperature=, base=, where=,
           logsumexp, backward passes, cross_entropy) against plain softmax /
           log_softmax (fastsoftmax bench --family --help for its options)
"""


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "info":
        if rest:
            sys.stderr.write(f"fastsoftmax info: takes no arguments, got {rest}\n")
            return 2
        from . import show_config

        show_config()
        return 0
    if command == "bench" and "--family" in rest:
        from ._bench_family import main as family_main

        return family_main([a for a in rest if a != "--family"])
    if command == "bench":
        from ._bench import main as bench_main

        return bench_main(rest)
    sys.stderr.write(f"fastsoftmax: unknown command {command!r}\n\n{USAGE}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
