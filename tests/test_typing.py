"""The type stubs (fastsoftmax/__init__.pyi, with py.typed) as installed:
mypy accepts a typical use (tests/typing_usage_example.py) and rejects
wrong argument types, so the stubs are the ones it reads."""
import os
import subprocess
import sys

import pytest

pytest.importorskip("mypy")
pytestmark = pytest.mark.slow  # mypy takes 2-3 s a test

HERE = os.path.dirname(os.path.abspath(__file__))

BAD_USES = {
    "axis_as_str": 'fastsoftmax.softmax([1.0], axis="0")\n',
    "unknown_keyword": "fastsoftmax.log_softmax([1.0], bogus=1)\n",
    "out_positional": "fastsoftmax.softmax([1.0], -1, None)\n",
    "threads_as_float": "fastsoftmax.set_num_threads(1.5)\n",
    "reduction_value": 'fastsoftmax.cross_entropy([[1.0]], [0], reduction="avg")\n',
    "grad_out_as_list": "fastsoftmax.cross_entropy([[1.0]], [0], return_grad=True, grad_out=[[0.0]])\n",
}


def run_mypy(path, tmp_path):
    # cwd outside the source tree: mypy must find the installed package
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental",
         "--cache-dir", str(tmp_path / "mypy_cache"), path],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_usage_example_is_mypy_clean(tmp_path):
    proc = run_mypy(os.path.join(HERE, "typing_usage_example.py"), tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_wrong_uses_are_rejected(tmp_path):
    path = tmp_path / "bad.py"
    lines = ["import fastsoftmax\n"] + list(BAD_USES.values())
    path.write_text("".join(lines))
    proc = run_mypy(str(path), tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    flagged = {int(line.split(":")[1]) for line in proc.stdout.splitlines() if ": error:" in line}
    missing = [name for i, name in enumerate(BAD_USES, start=2) if i not in flagged]
    assert not missing, f"mypy accepted {missing}:\n{proc.stdout}"
