"""Every op through the one engine: the plan each op runs for each layout
(read from the extension, not assumed), every op on every plan against
`fastsoftmax.reference`, and the cases the engine's scaled, masked and
multi-operand paths once got wrong."""
import os
import tempfile

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core, reference
from util import FLOAT_DTYPES, call_unmodified

THRESHOLDS = _core._plan_thresholds()
OPS = ["softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward", "cross_entropy"]


def plan_of(op, x, axis, threads=1, scaled=False, with_y=True, with_b=False):
    """The plan _execute would choose for op over `axis` of x."""
    axes = (axis % x.ndim,)
    y = np.empty_like(x) if with_y else None
    b = np.empty_like(x) if with_b else None
    group_shape = tuple(1 if d in axes else s for d, s in enumerate(x.shape))
    group_out = np.empty(group_shape) if op in ("logsumexp", "cross_entropy") else None
    return _core._plan_info(_core.OPS[op], x, axes, y, b, None, None, group_out, scaled, threads)[0]


def short_row_length(dtype):
    return THRESHOLDS["short_row_max_bytes"] // np.dtype(dtype).itemsize


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_every_op_runs_every_layout_without_a_copy(op, dtype):
    n_short = short_row_length(dtype)
    with_y = op not in ("logsumexp", "cross_entropy")
    with_b = op in ("softmax_backward", "log_softmax_backward")
    x = np.zeros((200, n_short), dtype)
    assert plan_of(op, x, -1, with_y=with_y, with_b=with_b) == "short_rows"
    assert plan_of(op, x[:, ::-1], -1, with_y=with_y, with_b=with_b) == "short_rows"
    assert plan_of(op, np.zeros((200, n_short + 1), dtype), -1, with_y=with_y, with_b=with_b) == "rows"
    assert plan_of(op, np.zeros((300, 64), dtype), 0, with_y=with_y, with_b=with_b) == "cols"
    # axis 0 of a transposed array: contiguous groups, so rows
    assert plan_of(op, np.zeros((64, 300), dtype).T, 0, with_y=with_y, with_b=with_b) == "rows"


SPLIT_ROW = 2 * THRESHOLDS["min_elements_per_thread"] + 300  # cut in two chunks, the last sum block short


def test_split_rows_for_every_op():
    """Every op splits a long row across threads, a weighted logsumexp too."""
    if fastsoftmax.get_config()["usable_cpus"] < 2 or not fastsoftmax.get_config()["openmp"]:
        pytest.skip("needs two usable CPUs")
    x = np.zeros((1, SPLIT_ROW), np.float32)
    for op in OPS:
        with_y = op not in ("logsumexp", "cross_entropy")
        with_b = op in ("softmax_backward", "log_softmax_backward")
        assert plan_of(op, x, -1, threads=2, with_y=with_y, with_b=with_b) == "split_row", op
        assert plan_of(op, x, -1, threads=1, with_y=with_y, with_b=with_b) == "rows", op
    assert plan_of("softmax", x, -1, threads=2, scaled=True) == "split_row"
    assert plan_of("logsumexp", x, -1, threads=2, with_y=False, with_b=True) == "split_row"


def _split_row_calls(x, rng):
    """{label: call(module, threads)} of every op on the rows of x."""
    n, dtype = x.shape[-1], x.dtype
    mask = rng.random(x.shape) < 0.9
    mask[-1, : n // 2] = False  # the first chunk of a row all masked out
    grad = rng.standard_normal(x.shape).astype(dtype)
    y, log_y = reference.softmax(x).astype(dtype), reference.log_softmax(x).astype(dtype)
    index = rng.integers(0, n, x.shape[0])
    index[0] = n - 1  # in the last chunk
    probs = reference.softmax(rng.standard_normal(x.shape)).astype(dtype)
    weights = (rng.uniform(0.5, 1.5, x.shape) * rng.choice([-1, 1], x.shape)).astype(dtype)
    weights[0, np.argmax(x[0])] = 0  # the maximum has no weight: summed again the careful way
    calls = {f"{name} {label}": (lambda m, t, name=name, kw=kw: getattr(m, name)(x, num_threads=t, **kw))
             for name in ("softmax", "log_softmax")
             for label, kw in (("temperature", dict(temperature=1.5)), ("base<1", dict(base=0.5)),
                               ("where", dict(where=mask)), ("temperature where", dict(temperature=0.3, where=mask)))}
    ce = dict(reduction="none", return_grad=True, label_smoothing=0.1)
    calls.update({
        "logsumexp": lambda m, t: m.logsumexp(x, num_threads=t),
        "logsumexp where": lambda m, t: m.logsumexp(x, where=mask, num_threads=t),
        "logsumexp b=": lambda m, t: m.logsumexp(x, b=weights, return_sign=True, num_threads=t),
        "logsumexp b= where": lambda m, t: m.logsumexp(x, b=weights, where=mask, return_sign=True, num_threads=t),
        "softmax_backward": lambda m, t: m.softmax_backward(grad, y, num_threads=t),
        "log_softmax_backward": lambda m, t: m.log_softmax_backward(grad, log_y, num_threads=t),
        "cross_entropy index": lambda m, t: m.cross_entropy(x, index, num_threads=t, **ce),
        "cross_entropy probs": lambda m, t: m.cross_entropy(x, probs, num_threads=t, **ce),
        "cross_entropy index, no gradient": lambda m, t: m.cross_entropy(x, index, reduction="none", num_threads=t),
        "cross_entropy probs, no gradient": lambda m, t: m.cross_entropy(x, probs, reduction="none", num_threads=t),
    })
    return calls


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_every_op_split_across_threads_is_bit_identical(dtype, variant):
    """A row split across two threads gives the bits of the unsplit row
    kernel (one thread), for every op and option, and agrees with the
    reference; bad rows among good ones."""
    rng = np.random.default_rng(8)
    x = (rng.standard_normal((4, SPLIT_ROW)) * 3).astype(dtype)
    x[1, : SPLIT_ROW // 2] = -np.inf  # the first chunk all -inf
    x[2, -5] = np.nan                 # in the last chunk only
    x_before = x.copy()
    tol = dict(rtol=2e-5, atol=2e-7) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    for label, call in _split_row_calls(x, rng).items():
        one, two, expected = call(fastsoftmax, 1), call(fastsoftmax, 2), call(reference, 1)
        np.testing.assert_array_equal(x, x_before, err_msg=f"{label}: x modified")
        for a, b, e in zip(*(r if isinstance(r, tuple) else (r,) for r in (one, two, expected))):
            np.testing.assert_array_equal(a, b, err_msg=label)
            with np.errstate(invalid="ignore"):
                np.testing.assert_allclose(b, e, err_msg=label, **tol)


def test_axes_no_stride_addresses_fall_back_to_a_copy():
    x = np.zeros((4, 5, 6))
    assert _core._plan_info(_core.OPS["softmax"], x, (0, 2), np.empty_like(x))[0] == "copy"


def _inputs(op, shape, dtype, axis, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    if op in ("softmax_backward", "log_softmax_backward"):
        forward = reference.softmax if op == "softmax_backward" else reference.log_softmax
        return (rng.standard_normal(shape).astype(dtype), forward(x, axis)), {}
    if op == "cross_entropy":
        samples = tuple(s for d, s in enumerate(shape) if d != axis % len(shape))
        return (x, rng.integers(0, shape[axis], samples)), {"reduction": "none", "return_grad": True,
                                                             "label_smoothing": 0.1}
    return (x,), {}


LAYOUTS = {
    "rows": ((37, 300), -1, lambda a: a),
    "row groups": ((37, 100), -1, lambda a: a),
    "strided rows": ((37, 600), -1, lambda a: a[:, ::2]),
    "short rows": ((150, 20), -1, lambda a: a),
    "strided short rows": ((150, 40), -1, lambda a: a[:, ::-2]),
    "columns": ((300, 70), 0, lambda a: a),
    "columns of a view": ((300, 140), 0, lambda a: a[::-1, :70]),
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", OPS)
def test_every_op_on_every_plan_agrees_with_reference(op, dtype, layout, variant, num_threads):
    shape, axis, view = LAYOUTS[layout]
    rng = np.random.default_rng(3)
    args, kwargs = _inputs(op, shape, dtype, axis, rng)
    args = tuple(view(a) if isinstance(a, np.ndarray) and a.shape == shape else a for a in args)
    if op == "cross_entropy":
        samples = tuple(s for d, s in enumerate(args[0].shape) if d != axis % 2)
        args = (args[0], rng.integers(0, args[0].shape[axis], samples))
    got = call_unmodified(getattr(fastsoftmax, op), *args, axis=axis, num_threads=num_threads, **kwargs)
    expected = getattr(reference, op)(*args, axis=axis, **kwargs)
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for g, e in zip(got if isinstance(got, tuple) else (got,), expected if isinstance(expected, tuple) else (expected,)):
        np.testing.assert_allclose(g, e, **tol)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("op", ["softmax", "log_softmax", "logsumexp", "cross_entropy"])
def test_row_groups_are_bit_identical_to_single_rows(op, dtype, variant):
    """Contiguous rows of up to 1 KiB run a row-group kernel (the per-group
    log in SIMD lanes); strided rows, gathered, run the row kernel alone.
    Both must give the same bits, for every row of a partial group too."""
    rng = np.random.default_rng(5)
    wide = (rng.standard_normal((37, 2 * 100)) * 3).astype(dtype)
    wide[3, 5] = np.nan
    wide[4, :] = -np.inf
    strided = wide[:, ::2]
    contiguous = np.ascontiguousarray(strided)
    assert plan_of(op, contiguous, -1, with_y=op in ("softmax", "log_softmax")) == "rows"
    fn = getattr(fastsoftmax, op)
    if op == "cross_entropy":
        t = rng.integers(0, 100, 37)
        args = dict(reduction="none", return_grad=True, label_smoothing=0.2)
        for got, expected in zip(fn(contiguous, t, **args), fn(strided, t, **args)):
            np.testing.assert_array_equal(got, expected)
        q = reference.softmax(rng.standard_normal((37, 100))).astype(dtype)
        np.testing.assert_array_equal(fn(contiguous, q, reduction="none"), fn(strided, q, reduction="none"))
    else:
        kwargs = dict(temperature=0.7) if op in ("softmax", "log_softmax") else {}
        np.testing.assert_array_equal(fn(contiguous, **kwargs), fn(strided, **kwargs))
        mask = rng.random(contiguous.shape) < 0.8  # masked rows are staged, then run in groups
        mask[5] = False
        np.testing.assert_array_equal(fn(contiguous, where=mask, **kwargs), fn(strided, where=mask, **kwargs))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_masked_rows_are_bit_identical_to_staged_rows(name, dtype, variant, num_threads):
    """A contiguous masked row is staged and its maximum taken in one pass;
    a row whose mask is strided is staged apart, then run by the row kernel.
    Same bits: row lengths around the max chains, special values, a row
    with nothing kept, in place."""
    rng = np.random.default_rng(8)
    fn = getattr(fastsoftmax, name)
    for n in (300, 1000, 1000 + 31, 4099):
        x = (rng.standard_normal((6, n)) * 3).astype(dtype)
        x[0, 5], x[1, :], x[2, 7], x[3, ::3], x[4, 1] = np.nan, -np.inf, np.inf, np.finfo(dtype).min, -0.0
        mask = rng.random(x.shape) < 0.7
        mask[0, 5] = False
        mask[-1] = False
        strided_mask = np.asfortranarray(mask)
        assert plan_of(name, x, -1, with_y=True) == "rows"
        expected = fn(x, where=strided_mask, num_threads=num_threads)
        np.testing.assert_array_equal(fn(x, where=mask, num_threads=num_threads), expected, err_msg=f"n={n}")
        in_place = x.copy()
        fn(in_place, where=mask, out=in_place, num_threads=num_threads)
        np.testing.assert_array_equal(in_place, expected, err_msg=f"n={n}")


@pytest.mark.parametrize("scale", [dict(temperature=0.7), dict(base=0.5)])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_scaled_short_rows_are_bit_identical_to_the_lane_kernel(name, dtype, scale, variant):
    """Contiguous short rows of a scaled softmax run its short-row kernel
    (the last pass fused into the transpose back); strided ones are
    gathered into lanes, run by the lane kernel and scattered.  Same bits,
    for every row length of the plan, a partial block, masked rows and
    special values."""
    rng = np.random.default_rng(6)
    fn = getattr(fastsoftmax, name)
    for n in range(1, short_row_length(dtype) + 1):
        wide = (rng.standard_normal((64 + 13, 2 * n)) * 3).astype(dtype)
        wide[3, 0] = np.nan
        wide[4, :] = -np.inf
        wide[5, ::2] = np.finfo(dtype).min
        strided = wide[:, ::2]
        contiguous = np.ascontiguousarray(strided)
        assert plan_of(name, contiguous, -1, with_y=True) == "short_rows"
        mask = rng.random(contiguous.shape) < 0.8
        mask[6] = False
        for kwargs in (scale, dict(scale, where=mask)):
            np.testing.assert_array_equal(fn(contiguous, **kwargs), fn(strided, **kwargs), err_msg=f"n={n}")


@pytest.mark.parametrize("scale", [dict(temperature=1.5), dict(base=0.5), dict(temperature=1.0)])
@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_scaled_and_masked_on_every_plan(name, layout, scale, variant, num_threads):
    shape, axis, view = LAYOUTS[layout]
    rng = np.random.default_rng(4)
    x = view(rng.standard_normal(shape) * 3)
    mask = rng.random(x.shape) < 0.8
    mask[:, :1] = False  # a group with nothing kept, whichever the axis
    mask[:1, :] = False
    x[2, 3] = np.nan  # a NaN kept or not
    for kwargs in (scale, dict(scale, where=mask)):
        got = call_unmodified(getattr(fastsoftmax, name), x, axis, num_threads=num_threads, **kwargs)
        expected = getattr(reference, name)(x, axis, **kwargs)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)


# --- cases the scaled kernels once got wrong ---------------------------------

@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("kwargs", [dict(temperature=0.5), dict(base=10.0)])
def test_finfo_min_logits_with_a_scale(kwargs, dtype, variant):
    """Masked logits filled with finfo.min: (x - max) * scale overflows to
    -inf, and so must log_softmax's output there (it was NaN on the FMA
    variants: the product's error term is +inf)."""
    x = np.array([2.0, 1.0, np.finfo(dtype).min], dtype)
    for name in ("softmax", "log_softmax"):
        got = getattr(fastsoftmax, name)(x, **kwargs)
        np.testing.assert_allclose(got, getattr(reference, name)(x, **kwargs), rtol=4 * np.finfo(dtype).eps)
    assert fastsoftmax.log_softmax(x, **kwargs)[2] == -np.inf


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_variants_agree_on_huge_scaled_differences(name, variant):
    """|x - max| and the scale near the top of the float range: the
    variants without FMA once split the operands (Veltkamp) into infinities."""
    x = np.array([0.0, -1.4e300])
    got = getattr(fastsoftmax, name)(x, temperature=1e300)
    np.testing.assert_allclose(got, getattr(reference, name)(x.astype(np.longdouble), temperature=1e300),
                               rtol=1e-15)
    assert np.all(np.isfinite(got))


@pytest.mark.parametrize("dtype, temperature", [
    (np.float32, 3e-39), (np.float32, 1e46), (np.float32, 2.0**-101), (np.float32, 2.0**101),
    (np.float64, 1e-308), (np.float64, 5e-309), (np.float64, 2.0**1001), (np.float16, 2.0**-101),
])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperatures_outside_the_range_are_refused(name, dtype, temperature):
    x = np.array([1.0, 2.0, -np.inf], dtype)
    for module in (fastsoftmax, reference):
        with pytest.raises(ValueError, match=r"temperature must be in \[2\*\*-"):
            getattr(module, name)(x, temperature=temperature)


@pytest.mark.parametrize("dtype, temperature", [(np.float32, 2.0**-100), (np.float32, 2.0**100),
                                                (np.float64, 2.0**-1000), (np.float64, 2.0**1000),
                                                (np.float64, 1e46)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_temperatures_at_the_ends_of_the_range(name, dtype, temperature, variant):
    x = (np.array([[0.0, -0.5, 1.0, -np.inf, 3.0]]) * temperature).astype(dtype)
    got = getattr(fastsoftmax, name)(x, temperature=temperature)
    expected = getattr(reference, name)(x.astype(np.longdouble), temperature=temperature)
    np.testing.assert_allclose(got, expected.astype(dtype), rtol=8 * np.finfo(dtype).eps)


# --- ndarray subclasses as outputs ----------------------------------------------

def _memmap(shape, dtype=np.float64):
    return np.memmap(os.path.join(tempfile.mkdtemp(), "out"), dtype=dtype, mode="w+", shape=shape)


def test_memmap_outputs_of_every_function():
    """An ndarray subclass (np.memmap) is accepted as out / grad_out by every
    function, written in place and returned as it is."""
    x = np.random.default_rng(0).random((3, 4))
    y = reference.softmax(x)
    calls = [
        (lambda m, out: m.softmax(x, temperature=2.0, out=out), (3, 4)),
        (lambda m, out: m.log_softmax(x, where=x > 0.2, out=out), (3, 4)),
        (lambda m, out: m.logsumexp(x, out=out), (3,)),
        (lambda m, out: m.softmax_backward(x, y, out=out), (3, 4)),
        (lambda m, out: m.log_softmax_backward(x, np.log(y), out=out), (3, 4)),
        (lambda m, out: m.cross_entropy(x, np.array([0, 1, 2]), return_grad=True, grad_out=out)[1], (3, 4)),
    ]
    for call, shape in calls:
        out = _memmap(shape)
        assert call(fastsoftmax, out) is out
        np.testing.assert_allclose(out, call(reference, np.empty(shape)), rtol=1e-13)


def test_unaligned_targets_and_probabilities():
    """Arrays unpickled from bytes (Dask workers) may be unaligned: the
    kernels get aligned ones (the sanitizer job checks the loads)."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((50, 7))
    t = rng.integers(0, 7, 50)
    unaligned_t = np.frombuffer(b"\0" + t.astype(np.int64).tobytes(), np.int64, offset=1)
    q = reference.softmax(rng.standard_normal((50, 7)))
    unaligned_q = np.frombuffer(b"\0" + q.tobytes(), np.float64, offset=1).reshape(q.shape)
    assert not unaligned_t.flags.aligned and not unaligned_q.flags.aligned
    for aligned, unaligned in ((t, unaligned_t), (q, unaligned_q)):
        expected = fastsoftmax.cross_entropy(x, aligned, reduction="none", return_grad=True)
        got = fastsoftmax.cross_entropy(x, unaligned, reduction="none", return_grad=True)
        for g, e in zip(got, expected):
            np.testing.assert_array_equal(g, e)
