"""Every axis of 1-d to 4-d arrays, strided / transposed / Fortran-order /
broadcast views, and the column kernel (softmax over a non-last axis of a
C-contiguous array), against the NumPy and extended-precision references."""
import itertools

import numpy as np
import pytest

import fastsoftmax
from util import (FLOAT_DTYPES, FUNCTIONS, assert_correct,
                  assert_matches_reference, assert_rows_sum_to_one)

SHAPES = [(7,), (5, 6), (3, 4, 5), (3, 4, 5, 6)]


def axis_choices(ndim):
    """Every int axis (negative too), every tuple of distinct axes (in
    several orders and with negative entries), and None."""
    choices = list(range(-ndim, ndim))
    for r in range(1, ndim + 1):
        for combo in itertools.combinations(range(ndim), r):
            choices.append(combo)
            if r > 1:
                choices.append(tuple(reversed(combo)))
                choices.append(tuple(a - ndim for a in combo))
    choices.append(None)
    return choices


AXIS_CASES = [(shape, axis) for shape in SHAPES for axis in axis_choices(len(shape))]


def data(shape, dtype, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", AXIS_CASES, ids=[f"{s}-{a}" for s, a in AXIS_CASES])
def test_every_axis(shape, axis, name, dtype, variant):
    x = data(shape, dtype)
    assert_correct(name, x, axis)


@pytest.mark.parametrize("shape,axis", AXIS_CASES, ids=[f"{s}-{a}" for s, a in AXIS_CASES])
def test_every_axis_sums_to_one(shape, axis, variant):
    got = assert_rows_sum_to_one(data(shape, np.float64), axis)
    assert got.shape == shape


def test_axis_none_is_all_axes():
    x = data((3, 4, 5), np.float64)
    np.testing.assert_array_equal(fastsoftmax.softmax(x, axis=None),
                                  fastsoftmax.softmax(x, axis=(0, 1, 2)))


def test_numpy_integer_axis():
    x = data((4, 5), np.float64)
    np.testing.assert_array_equal(fastsoftmax.softmax(x, axis=np.int64(0)),
                                  fastsoftmax.softmax(x, axis=0))
    np.testing.assert_array_equal(fastsoftmax.softmax(x, axis=(np.intp(-1),)),
                                  fastsoftmax.softmax(x, axis=-1))


# --- strided, transposed, reversed and Fortran-order inputs ------------------

def _views():
    """(id, function building a view from a C-contiguous base of shape (24, 30, 6))"""
    return [
        ("transposed2d", lambda b: b[:, :, 0].T),
        ("sliced_steps", lambda b: b[::2, ::3, 1]),
        ("reversed_rows", lambda b: b[::-1, :, 2]),
        ("reversed_cols", lambda b: b[:, ::-1, 3]),
        ("reversed_both_steps", lambda b: b[::-1, ::-2, 4]),
        ("fortran2d", lambda b: np.asfortranarray(b[:, :, 5])),
        ("fortran3d", lambda b: np.asfortranarray(b)),
        ("transposed3d", lambda b: b.transpose(2, 0, 1)),
        ("swapped3d", lambda b: b.transpose(1, 0, 2)),
        ("strided3d", lambda b: b[1::3, ::-4, ::2]),
        ("inner_step", lambda b: b[:, :, ::5]),
        ("column_of_3d", lambda b: b[:, 3, :]),
    ]


VIEWS = _views()


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("make", [m for _, m in VIEWS], ids=[i for i, _ in VIEWS])
def test_strided_views(make, name, dtype, variant, num_threads):
    base = data((24, 30, 6), dtype, seed=1)
    x = make(base)
    base_before = base.copy()
    for axis in axis_choices(x.ndim):
        assert_correct(name, x, axis, num_threads=num_threads)
    np.testing.assert_array_equal(base, base_before)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axis", [0, 1, -1, None])
def test_large_strided_views_use_threads(axis, name, dtype, variant, num_threads):
    """Strided rows of 150-400 elements, big enough for two threads (gather /
    scatter path)."""
    base = data((400, 300), dtype, seed=2)
    for x in (base.T, base[::-1, ::2], np.asfortranarray(base)):
        assert_correct(name, x, axis, num_threads=num_threads)
        if name == "softmax":
            assert_rows_sum_to_one(x, axis, num_threads=num_threads)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", [(5,), (4, 6), (3, 4, 5)])
def test_broadcast_input_with_zero_strides(shape, name, variant):
    """np.broadcast_to views (stride 0, read-only)."""
    row = data(shape[-1:], np.float64, seed=4)
    x = np.broadcast_to(row, shape)
    for axis in axis_choices(len(shape)):
        assert_correct(name, x, axis)
    scalar = np.broadcast_to(np.float32(2.5), shape)
    got = assert_matches_reference(name, scalar, None)
    expected = 1.0 / np.prod(shape) if name == "softmax" else -np.log(np.prod(shape))
    np.testing.assert_allclose(got, expected, rtol=4 * np.finfo(np.float32).eps)


# --- the column kernel: softmax over axis 0 of C-contiguous arrays -----------

COLUMN_SHAPES = [
    (100, 300), (1000, 64), (33, 255), (32, 256), (31, 257), (65, 600), (2, 513),
    (100, 2), (7, 9), (3, 1000), (40, 768),
]


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape", COLUMN_SHAPES, ids=[f"{r}x{c}" for r, c in COLUMN_SHAPES])
def test_column_kernel(shape, name, dtype, variant, num_threads):
    x = data(shape, dtype, seed=shape[1])
    assert_correct(name, x, 0, num_threads=num_threads)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("shape", COLUMN_SHAPES, ids=[f"{r}x{c}" for r, c in COLUMN_SHAPES])
def test_column_kernel_sums(shape, dtype, variant, num_threads):
    assert_rows_sum_to_one(data(shape, dtype, seed=shape[1]), 0, num_threads=num_threads)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", ["middle_axis", "reversed_rows", "sliced_lanes",
                                  "broadcast_rows", "batched_first_axis"])
def test_column_kernel_variants_of_layout(case, name, dtype, variant, num_threads):
    """Lanes with batch dimensions, negative and large row steps, stride 0."""
    if case == "middle_axis":
        x, axis = data((4, 50, 257), dtype, seed=5), 1
    elif case == "reversed_rows":
        x, axis = data((60, 300), dtype, seed=6)[::-1], 0
    elif case == "sliced_lanes":
        x, axis = data((70, 700), dtype, seed=7)[:, 50:650], 0
    elif case == "broadcast_rows":
        x, axis = np.broadcast_to(data((300,), dtype, seed=8), (45, 300)), 0
    else:
        x, axis = data((40, 3, 260), dtype, seed=9), 0
    assert_correct(name, x, axis, num_threads=num_threads)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("axes", [(0, 2), (1, 3), (0, 3), (0, 1, 3), (-1, 0)])
def test_tuple_axes_needing_a_copy(axes, name, variant, num_threads):
    """Reduction axes that no single stride addresses: computed on a copy."""
    x = data((6, 5, 7, 300), np.float32, seed=10)
    got = assert_correct(name, x, axes, num_threads=num_threads)
    assert got.flags.writeable


MANY_DIMS = [((1,) * 60 + (2, 3, 4), axis) for axis in (-1, 61, None, (60, 62), (0, 61))] + \
    [((2,) * 16, axis) for axis in (0, 7, -1, None, (0, 15), tuple(range(0, 16, 2)))]


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("shape,axis", MANY_DIMS, ids=[f"{len(s)}d-{a}" for s, a in MANY_DIMS])
def test_many_dimensions(shape, axis, name, variant):
    assert_correct(name, data(shape, np.float64, seed=11), axis)
