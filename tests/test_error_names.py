"""Every TypeError and ValueError of a public function names that function
first ("softmax: out has shape ..."), whichever check raised it: axis=,
out=, num_threads=, dtypes, shapes; for fastsoftmax, its NumPy twin
(fastsoftmax.reference) and the SciPy drop-in (fastsoftmax.special)."""
import numpy as np
import pytest
from numpy.exceptions import AxisError

import fastsoftmax
import fastsoftmax.special
from fastsoftmax import reference

X = np.arange(12.0).reshape(3, 4)
TARGET = np.array([0, 1, 2])

# name -> (the valid call's arguments, its bad arguments by what is wrong)
FULL_API = {
    "softmax": ((X,), {}),
    "log_softmax": ((X,), {}),
    "logsumexp": ((X,), {"b of another shape": {"b": np.ones(5)}}),
    "softmax_backward": ((X, X), {"y of another shape": {"y": np.ones(5)}}),
    "log_softmax_backward": ((X, X), {"y of another shape": {"y": np.ones(5)}}),
    "cross_entropy": ((X, TARGET), {"target out of range": {"target": np.array([0, 1, 9])},
                                    "bad reduction": {"reduction": "most"},
                                    "grad_out of another shape": {"return_grad": True, "grad_out": np.zeros(7)}}),
}
COMMON = {
    "axis out of range": {"axis": 5},
    "axis of another type": {"axis": "last"},
    "repeated axis": {"axis": (0, 0)},
    "out of another shape": {"out": np.zeros(7)},
    "out of another dtype": {"out": np.zeros((3, 4), np.float32)},
    "out not an array": {"out": [0.0] * 12},
    "num_threads 0": {"num_threads": 0},
    "x of strings": {"x": np.array(["a", "b"])},
}
SPECIAL = {
    "softmax": {},
    "log_softmax": {},
    "logsumexp": {"b of another shape": {"b": np.ones(5)}},
}
SPECIAL_COMMON = {"axis out of range": {"axis": 5}, "axis of another type": {"axis": "last"},
                  "x of strings": {"x": np.array(["a", "b"])}}


def _first_parameter(name):
    return {"softmax_backward": "grad", "log_softmax_backward": "grad", "cross_entropy": "logits"}.get(name, "x")


def _cases():
    for module in (fastsoftmax, reference):
        for name, (args, own) in FULL_API.items():
            common = dict(COMMON)
            if name == "cross_entropy":  # no out=: its gradient goes to grad_out
                common = {k: v for k, v in common.items() if not k.startswith("out")}
                common["axis of another type"] = {"axis": 1.5}  # cross_entropy takes one int axis
                common["repeated axis"] = {"axis": (0, 1)}
            if name in ("logsumexp",):  # out has the reduced shape; a full-shaped one is wrong too
                common["out of another dtype"] = {"out": np.zeros(3, np.float32)}
            for what, bad in {**common, **own}.items():
                yield pytest.param(module, name, args, bad, id=f"{module.__name__}.{name}: {what}")
    for name, own in SPECIAL.items():
        for what, bad in {**SPECIAL_COMMON, **own}.items():
            yield pytest.param(fastsoftmax.special, name, (X,), bad, id=f"special.{name}: {what}")


def _call(module, name, args, bad):
    params = dict(bad)
    first = params.pop("x", None)
    if first is not None:
        args = (first,) + args[1:]
    if "y" in params:
        args = (args[0], params.pop("y"))
    if "target" in params:
        args = (args[0], params.pop("target"))
    return getattr(module, name)(*args, **params)


@pytest.mark.parametrize("module,name,args,bad", list(_cases()))
def test_errors_name_the_function_called(module, name, args, bad):
    with pytest.raises((TypeError, ValueError)) as info:
        _call(module, name, args, bad)
    assert str(info.value).startswith(f"{name}: "), str(info.value)


def test_the_exception_type_is_kept():
    with pytest.raises(AxisError, match="^softmax: "):
        fastsoftmax.softmax(X, axis=5)
    with pytest.raises(AxisError, match="^logsumexp: "):
        fastsoftmax.special.logsumexp(X, axis=5)


def test_a_message_that_names_the_function_is_not_named_twice():
    with pytest.raises(TypeError) as info:
        fastsoftmax.special.logsumexp(np.array(["a"]))
    assert str(info.value).startswith("logsumexp: x has dtype") and "logsumexp: logsumexp:" not in str(info.value)


def test_set_num_threads_names_itself():
    with pytest.raises(ValueError, match="^set_num_threads: "):
        fastsoftmax.set_num_threads(0)


@pytest.mark.parametrize("what,bad", [("axis out of range", {"axis": 5}), ("num_threads 0", {"num_threads": 0}),
                                      ("x of another dtype", None)])
@pytest.mark.parametrize("name", list(FULL_API))
def test_dask_errors_name_the_function_called(name, what, bad):
    da = pytest.importorskip("dask.array", reason="fastsoftmax.dask needs Dask")
    import fastsoftmax.dask as fdask

    args, _ = FULL_API[name]
    if bad is None:  # complex, which the Dask forward functions refuse; strings for the others
        bad = {"x": X.astype(complex) if name in SPECIAL else np.full(X.shape, "a")}
    params = dict(bad)
    x = da.from_array(params.pop("x", args[0]), chunks=2)
    with pytest.raises((TypeError, ValueError)) as info:
        getattr(fdask, name)(x, *args[1:], **params)
    assert str(info.value).startswith(f"{name}: "), str(info.value)
