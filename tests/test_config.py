"""get_config / show_config, the FASTSOFTMAX_KERNEL environment variable,
and the README examples."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax
from fastsoftmax import _core

CONFIG_KEYS = {"version", "kernel_variant", "kernel_variants_compiled",
               "kernel_variants_supported", "openmp", "default_num_threads"}


def test_get_config_keys_and_types():
    config = fastsoftmax.get_config()
    assert CONFIG_KEYS <= set(config)
    assert config["version"] == fastsoftmax.__version__
    assert isinstance(config["openmp"], bool)
    assert isinstance(config["default_num_threads"], int)
    assert config["default_num_threads"] >= 1
    if not config["openmp"]:
        assert config["default_num_threads"] == 1
    compiled = config["kernel_variants_compiled"]
    supported = config["kernel_variants_supported"]
    assert {"scalar", "baseline"} <= set(supported)
    assert set(supported) <= set(compiled)
    assert config["kernel_variant"] in supported


def test_get_config_reports_the_active_variant(variant):
    assert fastsoftmax.get_config()["kernel_variant"] == variant


def test_variant_fixture_restores_previous_variant():
    before = _core.active_variant()
    other = "scalar" if before != "scalar" else "baseline"
    _core._set_variant(other)
    try:
        assert fastsoftmax.get_config()["kernel_variant"] == other
    finally:
        _core._set_variant(before)
    assert _core.active_variant() == before


def test_set_variant_rejects_unknown_name():
    before = _core.active_variant()
    with pytest.raises(ValueError):
        _core._set_variant("no-such-variant")
    assert _core.active_variant() == before


def test_show_config_prints_every_item(capsys):
    fastsoftmax.show_config()
    printed = capsys.readouterr().out
    config = fastsoftmax.get_config()
    lines = printed.splitlines()
    assert len(lines) == len(config)
    for key, line in zip(config, lines):
        assert line.split()[0] == key
    assert str(fastsoftmax.__version__) in printed
    assert config["kernel_variant"] in printed
    for name in config["kernel_variants_compiled"]:
        assert name in printed


# --- FASTSOFTMAX_KERNEL, read once at import: needs a fresh interpreter ----

_PROBE = """
import json, warnings
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import fastsoftmax
print(json.dumps({
    "variant": fastsoftmax.get_config()["kernel_variant"],
    "supported": fastsoftmax.get_config()["kernel_variants_supported"],
    "warnings": [(w.category.__name__, str(w.message)) for w in caught],
    "softmax": fastsoftmax.softmax([0.0, 0.0]).tolist(),
}))
"""


def run_probe(tmp_path, value):
    env = dict(os.environ)
    env.pop("FASTSOFTMAX_KERNEL", None)
    if value is not None:
        env["FASTSOFTMAX_KERNEL"] = value
    # cwd outside the source tree, so the installed package is imported
    proc = subprocess.run([sys.executable, "-c", _PROBE], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("name", ["scalar", "baseline"])
def test_environment_variable_selects_variant(tmp_path, name):
    result = run_probe(tmp_path, name)
    assert result["variant"] == name
    assert result["warnings"] == []
    assert result["softmax"] == [0.5, 0.5]


def test_environment_variable_is_case_insensitive(tmp_path):
    assert run_probe(tmp_path, " Scalar ")["variant"] == "scalar"


def test_without_environment_variable_best_variant_is_used(tmp_path):
    result = run_probe(tmp_path, None)
    assert result["warnings"] == []
    assert result["variant"] == result["supported"][-1]


def test_bogus_environment_variable_warns_and_falls_back(tmp_path):
    result = run_probe(tmp_path, "bogus")
    assert result["variant"] == result["supported"][-1]
    assert [category for category, _ in result["warnings"]] == ["RuntimeWarning"]
    assert "bogus" in result["warnings"][0][1]
    assert result["softmax"] == [0.5, 0.5]


# --- README examples ---------------------------------------------------------

def test_readme_softmax_example():
    x = np.array([[1.0, 1.0], [0.0, np.log(3.0)]])
    got = fastsoftmax.softmax(x)
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [[0.5, 0.5], [0.25, 0.75]], rtol=4 * np.finfo(float).eps)


def test_readme_log_softmax_example():
    got = fastsoftmax.log_softmax([0.0, 0.0])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, [-np.log(2.0)] * 2, rtol=2 * np.finfo(float).eps)


def test_readme_overview_example():
    x = np.random.default_rng(0).standard_normal((64, 100), dtype=np.float32)
    p = fastsoftmax.softmax(x)
    lp = fastsoftmax.log_softmax(x, axis=0)
    assert p.dtype == lp.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=-1), 1, rtol=1e-5)
    np.testing.assert_allclose(np.exp(lp).sum(axis=0), 1, rtol=1e-5)
    y = x.copy()
    assert fastsoftmax.softmax(y, out=y) is y
    np.testing.assert_array_equal(y, p)
