"""Thread control: set_num_threads / get_num_threads, threadpoolctl limits,
and `python -m fastsoftmax info`.

The threads a call really starts are counted in a fresh interpreter from
/proc/self/task: GNU libgomp starts its worker threads at the first parallel
region that needs them and keeps them, so a call that used 2 threads leaves
one more thread in the process than there was before it."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import fastsoftmax
from util import FUNCTIONS, fast

needs_openmp = pytest.mark.skipif(not fastsoftmax.get_config()["openmp"],
                                  reason="built without OpenMP")
needs_two_cpus = pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="needs 2 CPUs")


@pytest.fixture
def restore_thread_cap():
    yield
    fastsoftmax.set_num_threads(None)


@needs_openmp
def test_set_num_threads_caps_the_default(restore_thread_cap):
    default = fastsoftmax.get_num_threads()
    fastsoftmax.set_num_threads(1)
    assert fastsoftmax.get_num_threads() == 1
    assert fastsoftmax.get_config()["num_threads_cap"] == 1
    fastsoftmax.set_num_threads(None)
    assert fastsoftmax.get_num_threads() == default
    assert fastsoftmax.get_config()["num_threads_cap"] is None


@needs_openmp
def test_set_num_threads_is_a_cap_not_a_raise(restore_thread_cap):
    default = fastsoftmax.get_num_threads()
    fastsoftmax.set_num_threads(default + 5)
    assert fastsoftmax.get_num_threads() == default


@pytest.mark.parametrize("value", [0, -1, 1.5, 2.0, "2", True, np.bool_(False), [1], 1j])
def test_set_num_threads_rejects_bad_values(value, restore_thread_cap):
    fastsoftmax.set_num_threads(1)
    with pytest.raises(ValueError, match="num_threads"):
        fastsoftmax.set_num_threads(value)
    assert fastsoftmax.get_config()["num_threads_cap"] == 1  # unchanged


@pytest.mark.parametrize("value", [1, 2, np.int64(3), 2**40])
def test_set_num_threads_accepts_ints(value, restore_thread_cap):
    fastsoftmax.set_num_threads(value)
    assert fastsoftmax.get_config()["num_threads_cap"] == min(int(value), 2**31 - 1)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_results_do_not_depend_on_the_cap(name, restore_thread_cap):
    x = np.random.default_rng(3).standard_normal((512, 1000))
    free = fast(name)(x)
    fastsoftmax.set_num_threads(1)
    np.testing.assert_array_equal(fast(name)(x), free)


# --- threads really started: counted in a fresh interpreter ------------------

_THREAD_PROBE = """
import json, os, sys
import numpy as np
import fastsoftmax
from threadpoolctl import threadpool_info, threadpool_limits

def threads():
    return len(os.listdir("/proc/self/task"))

x = np.ones((4096, 1000), dtype=np.float32)
mode = sys.argv[1]
before = threads()
if mode == "threadpoolctl":
    with threadpool_limits(limits=1, user_api="openmp"):
        seen = fastsoftmax.get_num_threads()
        fastsoftmax.softmax(x)
elif mode == "set_num_threads":
    fastsoftmax.set_num_threads(1)
    seen = fastsoftmax.get_num_threads()
    fastsoftmax.softmax(x)
else:
    seen = fastsoftmax.get_num_threads()
    fastsoftmax.softmax(x)
print(json.dumps({
    "started": threads() - before,
    "get_num_threads": seen,
    "openmp_libraries": [i["filepath"] for i in threadpool_info() if i["user_api"] == "openmp"],
}))
"""


def run_thread_probe(tmp_path, mode):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT")}
    proc = subprocess.run([sys.executable, "-c", _THREAD_PROBE, mode], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@needs_openmp
@needs_two_cpus
def test_unlimited_call_starts_a_worker_thread(tmp_path):
    """The control for the two tests below: the measure sees a second thread."""
    result = run_thread_probe(tmp_path, "free")
    assert result["get_num_threads"] >= 2
    assert result["started"] >= 1


@needs_openmp
@needs_two_cpus
def test_threadpoolctl_limits_the_openmp_threads(tmp_path):
    result = run_thread_probe(tmp_path, "threadpoolctl")
    assert any("gomp" in path or "omp" in path for path in result["openmp_libraries"])
    assert result["get_num_threads"] == 1
    assert result["started"] == 0


@needs_openmp
@needs_two_cpus
def test_set_num_threads_limits_the_openmp_threads(tmp_path):
    result = run_thread_probe(tmp_path, "set_num_threads")
    assert result["get_num_threads"] == 1
    assert result["started"] == 0


# --- python -m fastsoftmax info ---------------------------------------------

def test_info_prints_the_thread_settings(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "fastsoftmax", "info"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split(None, 1) for line in proc.stdout.splitlines())
    assert lines["num_threads"].strip() == "1"
    assert lines["OMP_NUM_THREADS"].strip() == "1"
    assert lines["num_threads_cap"].strip() == "None"
    assert "default_num_threads" in lines and "openmp" in lines
