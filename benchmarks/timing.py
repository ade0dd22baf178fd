"""The timing loop shared by the stand-alone benchmark scripts."""
from __future__ import annotations

import time


def best_seconds(fn, calls: int) -> float:
    """The minimum wall time of `calls` calls of fn(), in seconds (on a
    shared machine the minimum is the figure that repeats)."""
    best = float("inf")
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best
