"""SciPy's own tests of softmax, log_softmax and logsumexp
(scipy/special/tests/test_logsumexp.py of the installed SciPy) run against
`fastsoftmax.special` through the plugin scipy_shim.py, which only swaps the
functions in.  Nothing of SciPy is copied: the tests are loaded from the
installed SciPy, and skipped when it does not ship them."""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

SCIPY_TESTS = "scipy.special.tests.test_logsumexp"


def _scipy_ships_its_tests() -> bool:
    try:
        return importlib.util.find_spec(SCIPY_TESTS) is not None
    except ModuleNotFoundError:  # no scipy, or a SciPy built without its tests
        return False


@pytest.mark.skipif(not _scipy_ships_its_tests(),
                    reason=f"the installed SciPy does not ship {SCIPY_TESTS} (or SciPy is not installed)")
def test_scipy_special_tests_pass_against_the_drop_in(tmp_path):
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=here + os.pathsep + os.environ.get("PYTHONPATH", ""))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "scipy_shim", "--pyargs", SCIPY_TESTS, "-q", "-p", "no:cacheprovider",
         "-rfEs"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    summary = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else run.stderr
    assert run.returncode == 0, run.stdout[-5000:] + run.stderr[-2000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, summary
    assert not re.search(r"failed|error", summary), summary
