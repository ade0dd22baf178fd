"""Resource safety: no memory growth over 100 000 calls (mixed shapes, with
and without out, failing calls included), and no reference leaks on any
call path."""
import sys

import numpy as np
import pytest

from util import FUNCTIONS, fast

PAGE = 4096


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def asan_loaded():
    with open("/proc/self/maps") as f:
        return "libasan" in f.read()


def call_mix():
    """One round of calls: (function, args, kwargs, expected exception or None)
    covering the fast path, the general path, the copy path of tuple axes, an
    out written directly and through a temporary, and refused calls."""
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((8, 33)).astype(np.float32)
    x64 = rng.standard_normal((5, 7, 9))
    xs = rng.standard_normal(3)
    out32 = np.empty_like(x32)
    out64 = np.empty_like(x64)
    overlap = np.zeros(40)
    calls = []
    for name in FUNCTIONS:
        fn = fast(name)
        calls += [
            (fn, (x32,), {}, None),
            (fn, (x32, 0), {"out": out32}, None),
            (fn, (x64, (0, 2)), {}, None),
            (fn, (x64, None), {"out": out64, "num_threads": 1}, None),
            (fn, (x64.T, 1), {}, None),
            (fn, ([1.0, 2.0, 3.0],), {}, None),
            (fn, (np.arange(6).reshape(2, 3),), {}, None),
            (fn, (xs.astype(np.float16),), {}, None),
            (fn, (overlap[:30],), {"out": overlap[10:]}, None),
            (fn, (np.empty((0, 4)),), {}, None),
            (fn, (x32, 5), {}, ValueError),
            (fn, (x32,), {"out": out64}, ValueError),
            (fn, (x32,), {"out": np.empty((8, 33))}, TypeError),
            (fn, (x32,), {"num_threads": 0}, ValueError),
            (fn, (x32, "0"), {}, TypeError),
            (fn, (xs.astype(str),), {}, TypeError),
        ]
    return calls


def run_calls(calls, rounds):
    for _ in range(rounds):
        for fn, args, kwargs, error in calls:
            if error is None:
                fn(*args, **kwargs)
            else:
                try:
                    fn(*args, **kwargs)
                except error:
                    pass
                else:
                    raise AssertionError(f"{fn.__name__}{args} did not raise {error}")


@pytest.mark.slow  # over a second here
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/statm")
def test_rss_does_not_grow_over_100000_calls():
    if asan_loaded():
        pytest.skip("AddressSanitizer keeps freed memory in quarantine: RSS grows by design")
    calls = call_mix()
    rounds = 100_000 // len(calls) + 1
    run_calls(calls, rounds // 5)  # warm-up: allocator pools, caches
    before = rss_bytes()
    run_calls(calls, rounds)
    growth = rss_bytes() - before
    print(f"RSS growth over {rounds * len(calls)} calls: {growth / 1024:.0f} KiB")
    assert growth < 1 << 20, f"RSS grew by {growth / 1024:.0f} KiB"


def test_no_reference_leaks():
    calls = call_mix()
    objects = []
    for _, args, kwargs, _ in calls:
        objects += [a for a in args if isinstance(a, (np.ndarray, tuple, list))]
        objects += [v for v in kwargs.values() if isinstance(v, np.ndarray)]
    objects += [np.dtype(np.float32), np.dtype(np.float64)]
    before = [sys.getrefcount(o) for o in objects]
    run_calls(calls, 500)
    after = [sys.getrefcount(o) for o in objects]
    leaked = [(type(o).__name__, b, a) for o, b, a in zip(objects, before, after) if a != b]
    assert not leaked, leaked


@pytest.mark.parametrize("name", FUNCTIONS)
def test_results_hold_no_extra_references(name):
    x = np.random.default_rng(1).standard_normal((4, 5))
    out = np.empty_like(x)
    for args, kwargs in [((x,), {}), ((x, (0, 1)), {}), ((x.tolist(),), {}),
                         ((x.astype(np.float16),), {})]:
        result = fast(name)(*args, **kwargs)
        assert sys.getrefcount(result) == 2  # `result` and getrefcount's argument
    before = sys.getrefcount(out)
    for _ in range(100):
        assert fast(name)(x, out=out) is out
    assert sys.getrefcount(out) == before
