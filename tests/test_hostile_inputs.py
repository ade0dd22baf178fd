"""Hostile arguments and environments: small OpenMP worker stacks, numpy.ma
masked arrays, outputs whose elements share memory, the backward passes'
contract for y outside the forward's range."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import reference
from fastsoftmax import _validation

IMPLEMENTATIONS = [fastsoftmax, reference]
IMPL_IDS = ["fast", "reference"]
SMALL_STACK = "16K"
HERE = os.path.dirname(os.path.abspath(__file__))


def small_stack_env():
    """The environment of a subprocess whose OpenMP workers get 16 KiB
    stacks and two threads."""
    return dict(os.environ, OMP_STACKSIZE=SMALL_STACK, OMP_NUM_THREADS="2")


# --- worker stacks ----------------------------------------------------------

# Every plan with and without a mask and a scale, each compared with the
# same call on the calling thread alone (whose stack is the process's).
_STACK_PROBE = textwrap.dedent("""
    import numpy as np, fastsoftmax as fs
    rng = np.random.default_rng(0)
    shapes = [((500, 300), 0), ((20000, 10), -1), ((400, 500), -1), ((2, 40000), -1)]
    for dtype in (np.float32, np.float64):
        for shape, axis in shapes:
            x = rng.standard_normal(shape).astype(dtype)
            for name in ("softmax", "log_softmax"):
                f = getattr(fs, name)
                for kwargs in ({}, {"where": x > -1}, {"temperature": 3.0}):
                    two = f(x, axis, num_threads=2, **kwargs)
                    assert np.array_equal(two, f(x, axis, num_threads=1, **kwargs), equal_nan=True)
            g = rng.standard_normal(shape).astype(dtype)
            y = fs.softmax(x, axis)
            fs.softmax_backward(g, y, axis, num_threads=2)
            fs.logsumexp(x, axis, num_threads=2)
            ax = axis if axis == -1 else 0
            fs.cross_entropy(x, np.zeros(x.shape[:ax] + x.shape[ax + 1:] if ax == 0 else x.shape[:-1], np.int64),
                             axis=ax, return_grad=True, num_threads=2)
    print("ok")
""")


@pytest.mark.slow
def test_every_plan_runs_on_16k_worker_stacks(tmp_path):
    proc = subprocess.run([sys.executable, "-c", _STACK_PROBE], cwd=tmp_path, env=small_stack_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok"


@pytest.mark.slow
def test_fast_subset_passes_on_16k_worker_stacks(tmp_path):
    files = [os.path.join(HERE, f) for f in
             ("test_row_lengths.py", "test_scaled_masked.py", "test_family_functions.py", "test_axes_layouts.py")]
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider",
                           "-m", "not slow", *files], cwd=tmp_path, env=small_stack_env(),
                          capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


# --- masked arrays --------------------------------------------------------------

def masked_input(dtype=np.float64):
    rng = np.random.default_rng(1)
    data = rng.standard_normal((5, 7)).astype(dtype)
    mask = rng.random((5, 7)) < 0.3
    mask[2] = True  # a group with nothing left
    data[mask] = 1e4  # would take every weight were the mask dropped
    return np.ma.MaskedArray(data, mask=mask)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("axis", [-1, 0, None])
def test_masked_x_acts_as_where(impl, name, axis):
    x = masked_input()
    got = getattr(impl, name)(x, axis)
    assert isinstance(got, np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getmaskarray(got), np.ma.getmaskarray(x))
    expected = getattr(impl, name)(x.data, axis, where=~x.mask)
    np.testing.assert_array_equal(got.data, expected)


def test_masked_x_keeps_the_weight_off_masked_entries():
    got = fastsoftmax.softmax(np.ma.array([1.0, 1000.0, 2.0], mask=[0, 1, 0]))
    np.testing.assert_allclose(got.data, [1 / (1 + np.e), 0.0, np.e / (1 + np.e)])
    assert list(got.mask) == [False, True, False]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
def test_masked_x_combines_with_where(impl):
    x = masked_input(np.float32)
    where = np.random.default_rng(2).random(x.shape[1]) < 0.7
    got = impl.log_softmax(x, where=where)
    np.testing.assert_array_equal(got.mask, x.mask)
    np.testing.assert_array_equal(got.data, impl.log_softmax(x.data, where=~x.mask & where))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
def test_masked_x_with_out_fills_out(impl):
    x = masked_input()
    out = np.empty(x.shape)
    got = impl.softmax(x, out=out)
    assert isinstance(got, np.ma.MaskedArray) and np.shares_memory(got.data, out)
    np.testing.assert_array_equal(out, impl.softmax(x.data, where=~x.mask))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("axis, keepdims", [(-1, False), (0, True), (None, False)])
def test_masked_logsumexp_masks_fully_masked_groups(impl, axis, keepdims):
    x = masked_input()
    got = impl.logsumexp(x, axis, keepdims=keepdims)
    assert isinstance(got, np.ma.MaskedArray)
    np.testing.assert_array_equal(np.ma.getmaskarray(got), np.all(x.mask, axis=axis, keepdims=keepdims))
    np.testing.assert_array_equal(got.data, impl.logsumexp(x.data, axis, keepdims=keepdims, where=~x.mask))


def masked_refusals():
    """(call, argument name): every array argument that cannot honour a mask."""
    m = np.ma.array([[0.1, 0.2, 0.7]], mask=[[0, 1, 0]])
    plain = np.array([[0.1, 0.2, 0.7]])
    return [
        (lambda f: f.softmax(plain, where=np.ma.array([[True, False, True]], mask=[[0, 1, 0]])), "where"),
        (lambda f: f.logsumexp(plain, where=np.ma.array([[True, False, True]])), "where"),
        (lambda f: f.softmax(plain, out=np.ma.zeros(plain.shape)), "out"),
        (lambda f: f.softmax_backward(m, plain), "grad"),
        (lambda f: f.log_softmax_backward(plain, m), "y"),
        (lambda f: f.cross_entropy(m, np.array([0])), "logits"),
        (lambda f: f.cross_entropy(plain, np.ma.array([0], mask=[1])), "target"),
    ]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("case", range(len(masked_refusals())))
def test_masked_arrays_elsewhere_are_refused(impl, case):
    call, name = masked_refusals()[case]
    with pytest.raises(TypeError, match=rf"^\w+: {name} is a numpy.ma.MaskedArray"):
        call(impl)


# --- outputs whose elements share memory -------------------------------------------

def zero_stride(shape, dtype=np.float64):
    """A writeable view of `shape` over a single element."""
    return np.lib.stride_tricks.as_strided(np.zeros(1, dtype), shape, (0,) * len(shape))


def overlapping_outs():
    """(call with out given): every function that takes an output array."""
    x = np.random.default_rng(3).standard_normal((4, 6))
    y = fastsoftmax.softmax(x)
    return [
        lambda f, out: f.softmax(x, out=out),  # the fast path of the compiled softmax
        lambda f, out: f.log_softmax(x, 0, out=out),
        lambda f, out: f.softmax(x, out=out, temperature=2.0),
        lambda f, out: f.softmax_backward(x, y, out=out),
        lambda f, out: f.log_softmax_backward(x, np.log(y), out=out),
        lambda f, out: f.cross_entropy(x, np.zeros(4, np.int64), return_grad=True, grad_out=out),
    ]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
@pytest.mark.parametrize("case", range(len(overlapping_outs())))
def test_out_with_zero_stride_is_refused(impl, case):
    call = overlapping_outs()[case]
    name = "grad_out" if case == len(overlapping_outs()) - 1 else "out"
    with pytest.raises(ValueError, match=rf"^\w+: {name} has elements that share memory"):
        call(impl, zero_stride((4, 6)))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
def test_logsumexp_out_with_zero_stride_is_refused(impl):
    with pytest.raises(ValueError, match="^logsumexp: out has elements that share memory"):
        impl.logsumexp(np.ones((3, 4)), out=zero_stride((3,)))


@pytest.mark.parametrize("impl", IMPLEMENTATIONS, ids=IMPL_IDS)
def test_out_with_interleaved_strides_that_do_not_overlap_is_accepted(impl):
    # element offsets 0, 16, 32, 24, 40, 56 (in bytes): interleaved, all distinct
    out = np.lib.stride_tricks.as_strided(np.zeros(8), (2, 3), (24, 16))
    x = np.random.default_rng(4).standard_normal((2, 3))
    assert impl.softmax(x, out=out) is out
    np.testing.assert_allclose(out, reference.softmax(x))


def brute_force_overlap(arr):
    offsets = [sum(i * s for i, s in zip(index, arr.strides)) for index in np.ndindex(arr.shape)]
    offsets.sort()
    return any(b - a < arr.itemsize for a, b in zip(offsets, offsets[1:]))


def test_overlaps_itself_is_exact():
    rng = np.random.default_rng(6)
    base = np.zeros(4096)
    checked = {False: 0, True: 0}
    for _ in range(3000):
        ndim = int(rng.integers(1, 4))
        shape = tuple(int(n) for n in rng.integers(1, 5, ndim))
        strides = tuple(int(s) * 8 for s in rng.integers(-6, 7, ndim))
        view = np.lib.stride_tricks.as_strided(base[2048:], shape, strides)
        expected = brute_force_overlap(view)
        assert _validation.overlaps_itself(view) == expected, (shape, strides)
        checked[expected] += 1
    assert min(checked.values()) > 100  # both answers were exercised


def test_overlaps_itself_counts_bytes_not_elements():
    raw = np.zeros(64, np.uint8)
    eight_apart = np.lib.stride_tricks.as_strided(raw[1:].view(np.uint8), (3,), (8,))
    assert not _validation.overlaps_itself(eight_apart.view(np.uint8))
    four_apart = np.lib.stride_tricks.as_strided(raw.view(np.float64), (3, 2), (4, 24))  # 8-byte elements
    assert _validation.overlaps_itself(four_apart)


# --- the backward passes outside the forward's range ----------------------------------

@pytest.mark.parametrize("dtype, top", [(np.float32, 64.0), (np.float64, 670.0)])
def test_log_softmax_backward_matches_reference_up_to_the_documented_bound(variant, dtype, top):
    rng = np.random.default_rng(7)
    for shape, axis in (((37, 129), -1), ((129, 37), 0), ((3000, 9), -1)):
        y = rng.uniform(-3 * top, top, shape).astype(dtype)
        y[0, :3] = [-np.inf, 0.0, top]
        g = rng.standard_normal(shape).astype(dtype)
        got = fastsoftmax.log_softmax_backward(g, y, axis)
        expected = reference.log_softmax_backward(g, y, axis)
        np.testing.assert_allclose(got, expected, rtol=8 * np.finfo(dtype).eps,
                                   atol=8 * np.finfo(dtype).eps * float(np.max(np.abs(expected))))


def test_log_softmax_backward_documents_its_contract():
    doc = fastsoftmax.log_softmax_backward.__doc__
    assert "y <= 0" in doc and "unspecified" in doc


# --- stress: threads, thread settings and fork at once ------------------------------------

_STRESS = textwrap.dedent("""
    import os, sys, threading, time
    import numpy as np
    import threadpoolctl
    import fastsoftmax as fs

    rng = np.random.default_rng(11)

    def layouts(shape, dtype):
        base = rng.standard_normal(shape).astype(dtype)
        wide = rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)
        return [base, np.asfortranarray(base), wide[:, ::2], base[::-1], wide[:, 1::2][::-1]]

    def cases():
        out = []
        for dtype in (np.float32, np.float64):
            for shape in ((300, 70), (70, 300), (2000, 9), (3, 30000)):
                for x in layouts(shape, dtype):
                    for axis in (-1, 0):
                        y = fs.softmax(x, axis)
                        g = rng.standard_normal(x.shape).astype(dtype)
                        n = x.shape[axis]
                        target = rng.integers(0, n, x.shape[1 - axis % 2])
                        out += [
                            (fs.softmax, (x, axis), {}),
                            (fs.log_softmax, (x, axis), {"where": x > -1.5}),
                            (fs.softmax, (x, axis), {"temperature": 0.7}),
                            (fs.logsumexp, (x, axis), {}),
                            (fs.softmax_backward, (g, y, axis), {}),
                            (fs.log_softmax_backward, (g, np.log(y), axis), {}),
                            (fs.cross_entropy, (x, target, axis), {"return_grad": True, "reduction": "sum"}),
                        ]
        return out

    def run(case, threads=None):
        f, args, kwargs = case
        r = f(*args, num_threads=threads, **kwargs)
        return [np.asarray(a) for a in (r if isinstance(r, tuple) else (r,))]

    def same(a, b):
        return all(np.array_equal(p, q, equal_nan=True) for p, q in zip(a, b))

    CASES = cases()
    SERIAL = [run(c, 1) for c in CASES]
    stop = threading.Event()
    errors = []

    def guarded(body):
        def wrapper(*args):
            try:
                body(*args)
            except BaseException as exc:  # reported by the main thread
                errors.append(repr(exc))
                stop.set()
        return wrapper

    @guarded
    def worker(k):
        local = np.random.default_rng(100 + k)
        for _ in range(ROUNDS):
            for i in local.permutation(len(CASES)):
                threads = [None, 1, 2, 10**6][local.integers(4)]
                if not same(run(CASES[i], threads), SERIAL[i]):
                    raise AssertionError(f"case {i} differs from the serial result")

    @guarded
    def set_threads():
        local = np.random.default_rng(1)
        while not stop.is_set():
            fs.set_num_threads([None, 1, 2, 3][local.integers(4)])
            time.sleep(0.001)
        fs.set_num_threads(None)

    @guarded
    def limit_threads():
        while not stop.is_set():
            for limit in (1, 2):
                with threadpoolctl.threadpool_limits(limits=limit):
                    run(CASES[0])

    @guarded
    def fork():
        forks = 0
        while not stop.is_set() and forks < 20:
            pid = os.fork()
            if pid == 0:
                os._exit(0 if same(run(CASES[3]), SERIAL[3]) else 3)
            deadline = time.monotonic() + 60
            while True:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    break
                if time.monotonic() > deadline:
                    os.kill(pid, 9)
                    raise AssertionError("forked child hung")
                time.sleep(0.01)
            if os.waitstatus_to_exitcode(status) != 0:
                raise AssertionError(f"forked child exited with {os.waitstatus_to_exitcode(status)}")
            forks += 1

    ROUNDS = int(sys.argv[1])
    workers = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    chaos = [threading.Thread(target=f) for f in (set_threads, limit_threads, fork)]
    for t in workers + chaos:
        t.start()
    for t in workers:
        t.join()
    stop.set()
    for t in chaos:
        t.join()
    print("ok" if not errors else errors)
""")


@pytest.mark.slow
def test_stress_threads_thread_settings_and_fork(tmp_path):
    pytest.importorskip("threadpoolctl")
    proc = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", _STRESS, "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "ok", proc.stdout[-3000:]
