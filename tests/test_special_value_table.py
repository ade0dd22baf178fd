"""The special-value rows of the README's semantics table, checked against
every library they name: SciPy, PyTorch and the NumPy formula (the one the
benchmark compares with; NumPy's own logsumexp is np.logaddexp.reduce), each
where installed, and fastsoftmax and fastsoftmax.special themselves."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

import fastsoftmax
import fastsoftmax.special
from fastsoftmax._bench import numpy_log_softmax, numpy_softmax

README = Path(__file__).resolve().parents[1] / "README.md"
FUNCTIONS = ["softmax", "log_softmax", "logsumexp"]

# One group per README row: (input, the row's first cell, what the row says of the others)
CASES = {
    "nan": ([1.0, 2.0, np.nan, 3.0], "a NaN anywhere in a group",
            "the whole group NaN, as in SciPy, PyTorch and the NumPy formula"),
    "posinf": ([1.0, 2.0, np.inf, 3.0], "a `+inf` in a group",
               "SciPy's `log_softmax` gives NaN at the `+inf` entries and `-inf` elsewhere"),
    "all_neginf": ([-np.inf] * 4, "a group that is entirely `-inf`",
                   "NaN, as in SciPy, PyTorch and the NumPy formula"),
    "neginf_among_finite": ([1.0, 2.0, -np.inf, 3.0], "`-inf` among finite values",
                            "as in SciPy, PyTorch and the NumPy formula"),
    "empty": ([], "empty array, zero-length axis",
              "SciPy's `softmax` and `log_softmax` and the NumPy formula raise `ValueError`"),
}
LOGSUMEXP_ROW = ("logsumexp", "as SciPy's, PyTorch's and NumPy's (`np.logaddexp.reduce`)")


def _torch(name):
    torch = importlib.import_module("torch")
    return lambda x: getattr(torch, name)(torch.from_numpy(x), -1).numpy()


def _scipy(name):
    return getattr(importlib.import_module("scipy.special"), name)


def _numpy_formula(name):
    return {"softmax": lambda x: numpy_softmax(x, -1), "log_softmax": lambda x: numpy_log_softmax(x, -1),
            "logsumexp": np.logaddexp.reduce}[name]


# library -> (the module it needs, or None; name -> the function, called on a 1-d float64 array)
LIBRARIES = {
    "fastsoftmax": (None, lambda name: getattr(fastsoftmax, name)),
    "fastsoftmax.special": (None, lambda name: getattr(fastsoftmax.special, name)),
    "scipy": ("scipy.special", _scipy),
    "torch": ("torch", _torch),
    "numpy formula": (None, _numpy_formula),
}


def _exact(x, name):
    """The exact result for finite and -inf entries (long double)."""
    xl = np.asarray(x, np.longdouble)
    total = np.sum(np.exp(xl))
    return {"softmax": np.exp(xl) / total, "log_softmax": xl - np.log(total), "logsumexp": np.log(total)}[name]


def all_nan(x, got):
    assert got.shape == np.shape(x) and np.isnan(got).all(), got


def nan_at_posinf_else_neginf(x, got):
    np.testing.assert_array_equal(got, np.where(np.isposinf(x), np.nan, -np.inf))


def exact_values(name):
    def check(x, got):
        np.testing.assert_allclose(got, _exact(x, name).astype(np.float64), rtol=1e-14)
    return check


def empty_result(x, got):
    assert got.shape == (0,), got


def raises_value_error(x, got):
    assert isinstance(got, ValueError), got


def equals(value):
    def check(x, got):
        np.testing.assert_array_equal(got, value)
    return check


# (case, function) -> (what every library gives, {library: what it gives instead})
CLAIMS = {
    ("nan", "softmax"): (all_nan, {}),
    ("nan", "log_softmax"): (all_nan, {}),
    ("nan", "logsumexp"): (equals(np.nan), {}),
    ("posinf", "softmax"): (all_nan, {}),
    ("posinf", "log_softmax"): (all_nan, {"scipy": nan_at_posinf_else_neginf,
                                          "fastsoftmax.special": nan_at_posinf_else_neginf}),
    ("posinf", "logsumexp"): (equals(np.inf), {}),
    ("all_neginf", "softmax"): (all_nan, {}),
    ("all_neginf", "log_softmax"): (all_nan, {}),
    ("all_neginf", "logsumexp"): (equals(-np.inf), {}),
    ("neginf_among_finite", "softmax"): (exact_values("softmax"), {}),  # 0 at the -inf entry
    ("neginf_among_finite", "log_softmax"): (exact_values("log_softmax"), {}),  # -inf there
    ("neginf_among_finite", "logsumexp"): (exact_values("logsumexp"), {}),
    ("empty", "softmax"): (empty_result, {"scipy": raises_value_error, "fastsoftmax.special": raises_value_error,
                                          "numpy formula": raises_value_error}),
    ("empty", "log_softmax"): (empty_result, {"scipy": raises_value_error,
                                              "fastsoftmax.special": raises_value_error,
                                              "numpy formula": raises_value_error}),
    ("empty", "logsumexp"): (equals(-np.inf), {}),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("library", list(LIBRARIES))
def test_library_behaves_as_the_readme_table_says(library, case, name):
    module, get = LIBRARIES[library]
    if module is not None:
        pytest.importorskip(module, reason=f"{module} is not installed: the README's claims about it are unchecked")
    x = np.array(CASES[case][0], np.float64)
    default, instead = CLAIMS[(case, name)]
    try:
        with np.errstate(all="ignore"):
            got = np.asarray(get(name)(x))
    except ValueError as error:
        got = error
    instead.get(library, default)(x, got)


@pytest.mark.skipif(not README.exists(), reason="needs a source checkout (README.md)")
def test_readme_table_makes_the_claims_checked_here():
    rows = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    for first_cell, claim in [case[1:] for case in CASES.values()] + [LOGSUMEXP_ROW]:
        row = next((r for r in rows if r.startswith(f"| {first_cell}")), None)
        assert row is not None, f"the README's table has no row {first_cell!r}"
        assert claim in row, f"the README's row {first_cell!r} no longer says {claim!r}"
