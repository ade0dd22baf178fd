"""The package's entry points, used as a new user uses them: the `fastsoftmax`
console script from the root of the source checkout, `python -m fastsoftmax`
from elsewhere, and a clear ImportError for an import of the unbuilt source
folder."""
import glob
import os
import shutil
import subprocess
import sys

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SOURCE_PACKAGE = os.path.join(REPO_ROOT, "fastsoftmax")


def console_script():
    """The `fastsoftmax` script installed next to this interpreter (a venv's bin/)."""
    path = os.path.join(os.path.dirname(sys.executable), "fastsoftmax")
    return path if os.path.exists(path) else shutil.which("fastsoftmax")


def run(argv, cwd):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))


def test_console_script_runs_from_the_repo_root():
    script = console_script()
    if script is None:
        pytest.skip("the fastsoftmax console script is not installed next to this Python")
    proc = run([script, "info"], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "kernel_variant" in proc.stdout


@pytest.mark.slow  # over a second here
def test_console_script_quick_bench_from_the_repo_root():
    script = console_script()
    if script is None:
        pytest.skip("the fastsoftmax console script is not installed next to this Python")
    proc = run([script, "bench", "--quick", "--shapes", "2x3"], cwd=REPO_ROOT)
    assert proc.returncode == 0, proc.stderr
    assert "(2, 3)" in proc.stdout


def test_python_dash_m_runs_from_another_directory(tmp_path):
    proc = run([sys.executable, "-m", "fastsoftmax", "info"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "kernel_variant" in proc.stdout


def test_unbuilt_source_folder_gives_a_clear_import_error():
    if glob.glob(os.path.join(SOURCE_PACKAGE, "_core*.so")) + glob.glob(
            os.path.join(SOURCE_PACKAGE, "_core*.pyd")):
        pytest.skip("the source folder holds a built extension (an in-place build)")
    proc = run([sys.executable, "-c", "import fastsoftmax"], cwd=REPO_ROOT)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: fastsoftmax is being imported from its source folder")
    assert "circular import" not in proc.stderr
