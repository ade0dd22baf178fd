"""fastsoftmax.dask: the same results as the NumPy functions on every
chunking (the softmax axes in one chunk or split across several, unknown
chunk sizes), for every function of the family, the same special values,
each input block evaluated once unless a group is over the limit, and runs
on a real 2-process LocalCluster."""
import threading

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
import dask  # noqa: E402
import fastsoftmax  # noqa: E402
import fastsoftmax.dask as fdask  # noqa: E402
from util import eps  # noqa: E402

SHAPE = (60, 70, 8)
# (label, chunks): whole array, one axis split, uneven blocks, many thin blocks
CHUNKINGS = [("whole", SHAPE), ("split_0", (20, 70, 8)), ("split_1", (60, 25, 8)),
             ("uneven", (13, 17, 3)), ("thin", (30, 7, 2))]
AXES = [-1, 0, 1, (0, 1), (0, 2), None]


def data(dtype=np.float64):
    x = np.random.default_rng(0).standard_normal(SHAPE) * 5
    x[3, 5, 0] = np.nan             # one NaN: its group is NaN
    x[4, :, 1] = -np.inf            # a whole row of -inf
    x[5, 10, 2] = np.inf            # +inf: its group is NaN
    x[6, :40, 3] = -np.inf          # -inf in some blocks only
    x[:20, 7, 4] = -np.inf
    return x.astype(dtype)


def assert_close(name, got, expected):
    """The two-stage path adds one rounding to the kernel's result (a
    product by exp(c) or a sum with c, taken in float64)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(expected))
    e = eps(expected.dtype) if expected.dtype.kind == "f" else eps(np.float64)
    finite = np.isfinite(expected)
    if name == "softmax":
        np.testing.assert_allclose(got[finite], expected[finite], rtol=16 * e,
                                   atol=float(np.finfo(expected.dtype).smallest_normal))
    else:
        scale = np.maximum(np.abs(expected[finite]), 1.0)
        assert np.all(np.abs(got[finite] - expected[finite]) <= 8 * e * scale)


@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=[c[0] for c in CHUNKINGS])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_matches_numpy(name, chunking, axis):
    x = data()
    got = getattr(fdask, name)(da.from_array(x, chunks=chunking[1]), axis)
    assert got.chunks == da.from_array(x, chunks=chunking[1]).chunks  # block rows within the limit
    assert_close(name, got.compute(), getattr(fastsoftmax, name)(x, axis))


@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("axis", AXES, ids=str)
@pytest.mark.parametrize("chunking", CHUNKINGS, ids=[c[0] for c in CHUNKINGS])
def test_logsumexp_matches_numpy(chunking, axis, keepdims):
    x = data()
    got = fdask.logsumexp(da.from_array(x, chunks=chunking[1]), axis, keepdims=keepdims).compute()
    expected = fastsoftmax.logsumexp(x, axis, keepdims=keepdims)
    expected = np.asarray(expected)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    # fastsoftmax.logsumexp: 2 eps of max(|result|, 1), on the blocks and on their results
    np.testing.assert_allclose(got, expected, rtol=4 * eps(np.float64), atol=4 * eps(np.float64),
                               equal_nan=True)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, np.int16, np.bool_])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_dtypes_as_numpy(name, dtype):
    x = (np.random.default_rng(1).standard_normal((40, 50)) * 3).astype(dtype)
    got = getattr(fdask, name)(da.from_array(x, chunks=(15, 20)), -1).compute()
    expected = np.asarray(getattr(fastsoftmax, name)(x, -1))
    assert got.dtype == expected.dtype
    e = eps(np.float32) if expected.dtype == np.float16 else eps(expected.dtype)
    tol = np.finfo(np.float16).eps if expected.dtype == np.float16 else 16 * e
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_empty_and_zero_d(name):
    for x, chunks in [(np.empty((0, 5)), (1, 2)), (np.empty((4, 0)), (2, 1)), (np.array(3.0), ())]:
        got = getattr(fdask, name)(da.from_array(x, chunks=chunks)).compute()
        expected = np.asarray(getattr(fastsoftmax, name)(x))
        assert got.shape == expected.shape
        np.testing.assert_array_equal(got, expected)


def test_numpy_input_and_bad_arguments():
    x = np.random.default_rng(2).standard_normal((10, 12))
    np.testing.assert_allclose(fdask.softmax(x).compute(), fastsoftmax.softmax(x), rtol=1e-15)
    with pytest.raises(ValueError, match="num_threads"):
        fdask.softmax(da.from_array(x, chunks=5), num_threads=0)
    with pytest.raises(ValueError):
        fdask.log_softmax(da.from_array(x, chunks=5), axis=(0, 0))
    with pytest.raises(TypeError):
        fdask.softmax(da.from_array(x.astype(complex), chunks=5))


@pytest.mark.slow  # over a second here
def test_local_cluster_two_worker_processes():
    distributed = pytest.importorskip("distributed")
    x = np.random.default_rng(3).standard_normal((800, 900)).astype(np.float32)
    x[10, 5] = np.nan
    dx = da.from_array(x, chunks=(200, 300))  # both axes split
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        for axis in (-1, 0, None):
            for name in ("softmax", "log_softmax"):
                got = client.compute(getattr(fdask, name)(dx, axis)).result(timeout=120)
                assert_close(name, got, getattr(fastsoftmax, name)(x, axis))
            got = client.compute(fdask.logsumexp(dx, axis)).result(timeout=120)
            np.testing.assert_allclose(got, fastsoftmax.logsumexp(x, axis), rtol=8 * eps(np.float32),
                                       atol=8 * eps(np.float32), equal_nan=True)


# ------------------------------------------------------------ the family
# (label, chunks of a (60, 70) array; unknown: rows of unknown sizes)
FAMILY_CHUNKINGS = [("rows_whole", (20, 70)), ("split", (20, 25)), ("unknown", (20, 25))]
LOGITS = np.random.default_rng(4).standard_normal((60, 70)) * 4
MASK = np.random.default_rng(5).random((60, 70)) < 0.7


def dask_of(x, chunking):
    """`x` as a Dask array with the chunking; "unknown" leaves the row chunk
    sizes unknown (boolean indexing with a Dask mask keeping every row)."""
    label, chunks = chunking
    dx = da.from_array(x, chunks=chunks[:x.ndim])
    if label == "unknown":
        dx = dx[da.from_array(np.ones(x.shape[0], bool), chunks=chunks[0])]
        assert np.isnan(dx.shape[0])
    return dx


def family_cases():
    """(id, fastsoftmax.dask call, NumPy call, exact): each a function of
    (array converter) -> result; `exact` when the result must be equal."""
    x, mask = LOGITS.astype(np.float32), MASK
    grad = np.cos(x)
    y = fastsoftmax.softmax(x)
    logy = fastsoftmax.log_softmax(x)
    index = np.random.default_rng(6).integers(0, 70, 60)
    probs = fastsoftmax.softmax(np.random.default_rng(7).standard_normal((60, 70)).astype(np.float32))
    cases = []
    for name in ("softmax", "log_softmax"):
        for label, kw in [("temperature", {"temperature": 0.3}), ("base", {"base": 0.5}),
                          ("base2", {"base": 2.0})]:
            cases.append((f"{name}-{label}", name, (x,), kw, {}))
        cases.append((f"{name}-where_dask", name, (x,), {}, {"where": mask}))
        cases.append((f"{name}-where_numpy_row", name, (x,), {"where": mask[0]}, {}))
    cases.append(("logsumexp-where_dask", "logsumexp", (x,), {}, {"where": mask}))
    cases.append(("logsumexp-keepdims", "logsumexp", (x,), {"keepdims": True}, {}))
    cases.append(("softmax_backward", "softmax_backward", (grad, y), {}, {}))
    cases.append(("log_softmax_backward", "log_softmax_backward", (grad, logy), {}, {}))
    for reduction in ("none", "mean", "sum"):
        for grad_flag in (False, True):
            cases.append((f"cross_entropy-index-{reduction}-grad{grad_flag}", "cross_entropy",
                          (x, index), {"reduction": reduction, "return_grad": grad_flag}, {}))
    cases.append(("cross_entropy-probs-smoothing", "cross_entropy", (x, probs),
                  {"reduction": "mean", "return_grad": True, "label_smoothing": 0.1}, {}))
    return cases


FAMILY_CASES = family_cases()


def call_family(name, args, kwargs, dask_kwargs, chunking):
    """(Dask results computed together, NumPy results) as tuples."""
    got = getattr(fdask, name)(*(dask_of(a, chunking) for a in args), **kwargs,
                               **{k: dask_of(v, chunking) for k, v in dask_kwargs.items()})
    got = dask.compute(*got) if isinstance(got, tuple) else dask.compute(got)
    expected = getattr(fastsoftmax, name)(*args, **kwargs, **dask_kwargs)
    return got, expected if isinstance(expected, tuple) else (expected,)


def assert_family_close(got, expected, exact):
    for g, e in zip(got, expected, strict=True):
        e = np.asarray(e)
        assert g.shape == e.shape and g.dtype == e.dtype
        if exact:
            np.testing.assert_array_equal(g, e)
        else:  # statistics combined across blocks: a few roundings more
            np.testing.assert_allclose(g, e, rtol=32 * eps(e.dtype), atol=4 * eps(e.dtype))


@pytest.mark.parametrize("chunking", FAMILY_CHUNKINGS, ids=[c[0] for c in FAMILY_CHUNKINGS])
@pytest.mark.parametrize("case", FAMILY_CASES, ids=[c[0] for c in FAMILY_CASES])
def test_family_matches_numpy(case, chunking):
    _, name, args, kwargs, dask_kwargs = case
    got, expected = call_family(name, args, kwargs, dask_kwargs, chunking)
    assert_family_close(got, expected, blocks_are_numpy_results(name, kwargs, chunking))


def blocks_are_numpy_results(name, kwargs, chunking):
    """Whether each block of the result is the NumPy function's own result
    (bit for bit): groups in one chunk, or merged into one, and no sum
    across blocks."""
    if name in ("softmax", "log_softmax", "logsumexp"):
        return chunking[0] == "rows_whole"
    return name != "cross_entropy" or kwargs["reduction"] == "none"


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_group_over_the_limit_clones_the_input(name):
    """A group over array.chunk-size: the two-pass plan on a clone, same
    results (temperature and a Dask mask included)."""
    x = LOGITS.astype(np.float32)
    with dask.config.set({"array.chunk-size": "64B"}):  # one row is 280 B
        got = getattr(fdask, name)(da.from_array(x, chunks=(20, 25)), temperature=2.0,
                                   where=da.from_array(MASK, chunks=(20, 25))).compute()
    assert_close(name, got, getattr(fastsoftmax, name)(x, temperature=2.0, where=MASK))


def counted(x, chunks):
    """A Dask array of `x` whose block evaluations are counted."""
    calls = []
    lock = threading.Lock()

    def block(b):
        with lock:
            calls.append(1)
        return b
    return da.from_array(x, chunks=chunks).map_blocks(block, meta=x[:0, :0]), calls


@pytest.mark.parametrize("limit, evaluations", [("128MiB", 1), ("64B", 2)])
def test_each_block_evaluated_once_unless_a_group_is_over_the_limit(limit, evaluations):
    x = LOGITS.astype(np.float32)
    dx, calls = counted(x, (20, 25))
    with dask.config.set({"array.chunk-size": limit}):
        got = fdask.softmax(dx, 1).compute(scheduler="threads")
    assert len(calls) == evaluations * dx.npartitions
    assert_close("softmax", got, fastsoftmax.softmax(x, 1))


def test_block_rows_over_the_limit_keep_their_chunks():
    """Rows of 70 float32 (280 B) in blocks of 20 rows, a 2 KiB limit: a
    block row (5.6 KB) over the limit keeps its chunks (cutting it would
    copy each part of the input blocks, and hold no less); the input is
    evaluated once per block."""
    x = LOGITS.astype(np.float32)
    dx, calls = counted(x, (20, 25))
    with dask.config.set({"array.chunk-size": "2KiB"}):
        y = fdask.log_softmax(dx, 1)
        got = y.compute(scheduler="threads")
    assert y.chunks == dx.chunks
    assert len(calls) == dx.npartitions
    assert_close("log_softmax", got, fastsoftmax.log_softmax(x, 1))


@pytest.mark.parametrize("axis", [0, 1, None], ids=str)
def test_no_task_between_the_two_passes(axis):
    """A split softmax axis adds four tasks per block (the kernel, its result
    and statistics taken apart, the rescale, which combines its row's
    statistics itself): no merge, combine or split of the statistics."""
    dx = da.from_array(LOGITS.astype(np.float32), chunks=(20, 25))
    y = fdask.softmax(dx, axis)
    added = len(dict(y.__dask_graph__())) - len(dict(dx.__dask_graph__()))
    assert added == 4 * dx.npartitions


def test_merged_family_functions_and_their_limit():
    """backward passes and cross_entropy merge the class axis; a sample over
    the limit: Dask's composition for the backward passes, an error for
    cross_entropy."""
    x = LOGITS.astype(np.float32)
    y = fastsoftmax.softmax(x)
    dx, dy = da.from_array(x, chunks=(20, 25)), da.from_array(y, chunks=(20, 25))
    assert fdask.softmax_backward(dx, dy).chunks[1] == (70,)
    with dask.config.set({"array.chunk-size": "64B"}):
        got = fdask.softmax_backward(dx, dy).compute()
        with pytest.raises(ValueError, match="array.chunk-size"):
            fdask.cross_entropy(dx, np.zeros(60, np.int64))
    np.testing.assert_allclose(got, fastsoftmax.softmax_backward(x, y), rtol=1e-4, atol=1e-6)


def test_unknown_chunk_sizes_along_a_split_softmax_axis():
    dx = dask_of(LOGITS, FAMILY_CHUNKINGS[2])
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        fdask.softmax(dx, axis=0)
    got = fdask.softmax(dx.compute_chunk_sizes(), axis=0).compute()
    assert_close("softmax", got, fastsoftmax.softmax(LOGITS, axis=0))


def test_family_bad_arguments():
    dx = da.from_array(LOGITS, chunks=(20, 25))
    with pytest.raises(ValueError, match="temperature"):
        fdask.softmax(dx, temperature=-1.0)
    with pytest.raises(ValueError, match="mutually exclusive"):
        fdask.log_softmax(dx, temperature=2.0, base=2.0)
    with pytest.raises(TypeError, match="where"):
        fdask.softmax(dx, where=da.zeros((60, 70), chunks=20))
    with pytest.raises(ValueError, match="target"):
        fdask.cross_entropy(dx, np.zeros(59, np.int64))
    with pytest.raises(ValueError, match="reduction"):
        fdask.cross_entropy(dx, np.zeros(60, np.int64), reduction="max")
    with pytest.raises(ValueError, match="y has shape"):
        fdask.softmax_backward(dx, dx[:, :3])


@pytest.mark.slow  # starts two worker processes
def test_family_on_local_cluster_two_worker_processes():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        for chunking in FAMILY_CHUNKINGS:
            for _, name, args, kwargs, dask_kwargs in FAMILY_CASES:
                got, expected = call_family(name, args, kwargs, dask_kwargs, chunking)
                assert_family_close(got, expected, exact=False)
