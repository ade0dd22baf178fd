"""fastsoftmax.dask: the same results as the NumPy functions on every
chunking (the softmax axes in one chunk or split across several), the same
special values, and a run on a real 2-process LocalCluster."""
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
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
    assert got.chunks == da.from_array(x, chunks=chunking[1]).chunks  # nothing rechunked
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
