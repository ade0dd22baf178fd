"""The C kernel test (tests/c/test_kernels.c): every entry of every kernel
variant's table against the scalar variant, called directly, on lengths
around every vector width and block size, misaligned starts, special values
and the extremes of the float range.  Built here with the system C compiler
and the flags setup.py uses (build_flags.py; FASTSOFTMAX_SANITIZE's too, so
the sanitizer job runs it sanitized), then run once per variant this CPU
supports.  CI also cross-compiles it for aarch64 and runs it under qemu-user
(.ci/run)."""
import importlib.util
import os
import re
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def load_build_and_run():
    spec = importlib.util.spec_from_file_location("build_and_run", os.path.join(HERE, "c", "build_and_run.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def kernel_test(tmp_path_factory):
    """The kernel test's executable, built into a temporary folder."""
    build_and_run = load_build_and_run()
    cc = build_and_run.find_compiler()
    if cc is None:
        pytest.skip("no C compiler ($CC, cc, gcc or clang) on PATH: the C kernel test is not built")
    return build_and_run.build(cc, str(tmp_path_factory.mktemp("kernel_test")))


@pytest.mark.slow  # the build: every kernel variant at -O3
def test_kernel_table_matches_scalar(kernel_test, variant):
    out = subprocess.run([kernel_test, variant], capture_output=True, text=True, timeout=900)
    report = out.stdout + out.stderr
    summary = re.search(r"^(\d+) passed, (\d+) failed$", out.stdout, re.MULTILINE)
    assert out.returncode == 0 and summary is not None, report[-6000:]
    assert int(summary.group(1)) > 0 and int(summary.group(2)) == 0, report[-6000:]
