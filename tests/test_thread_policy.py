"""Thread counts follow what the process may use: its CPU affinity and its
cgroup CPU quota cap every call, whatever num_threads, OMP_NUM_THREADS or
threadpoolctl ask for; get_config() says where the count comes from.

Threads really started are counted in a fresh interpreter from
/proc/self/task (GNU libgomp keeps every worker thread it starts, so the
count after a call shows them)."""
import json
import os
import shutil
import subprocess
import sys

import pytest

import fastsoftmax
from fastsoftmax import _threads

needs_openmp = pytest.mark.skipif(not fastsoftmax.get_config()["openmp"],
                                  reason="built without OpenMP")
needs_proc_tasks = pytest.mark.skipif(not os.path.isdir("/proc/self/task"),
                                      reason="needs /proc/self/task")
HUGE = 10**9


# --- cgroup quota parsing: pure functions on file contents ----------------------

@pytest.mark.parametrize("text, cpus", [
    ("max 100000\n", None),          # no quota
    ("max\n", None),
    ("200000 100000\n", 2),
    ("150000 100000\n", 2),          # 1.5 CPUs: rounded up
    ("50000 100000\n", 1),           # less than one CPU: still one thread
    ("1000 100000\n", 1),
    ("400000 50000\n", 8),
    ("300000\n", 3),                 # period omitted: the kernel's 100000
    ("", None),
    ("garbage 100000\n", None),
])
def test_parse_cgroup_v2_cpu_max(text, cpus):
    assert _threads.parse_cpu_max(text) == cpus


@pytest.mark.parametrize("quota, period, cpus", [
    ("-1\n", "100000\n", None),      # no quota
    ("200000\n", "100000\n", 2),
    ("150000\n", "100000\n", 2),
    ("50000\n", "100000\n", 1),
    ("100000\n", "0\n", None),
    ("x\n", "100000\n", None),
])
def test_parse_cgroup_v1_cfs_quota(quota, period, cpus):
    assert _threads.parse_cfs_quota(quota, period) == cpus


def test_parse_proc_self_cgroup():
    v1 = "12:cpu,cpuacct:/docker/abc\n4:memory:/docker/abc\n0::/docker/abc\n"
    assert _threads.parse_proc_cgroup(v1) == ("/docker/abc", "/docker/abc")
    assert _threads.parse_proc_cgroup("0::/user.slice/app.scope\n") == ("/user.slice/app.scope", None)
    assert _threads.parse_proc_cgroup("2:cpuacct:/\n1:cpu:/a\n") == (None, "/a")


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_cgroup_v2_smallest_limit_from_the_process_cgroup_up(tmp_path):
    write(tmp_path / "cpu.max", "max 100000\n")
    write(tmp_path / "app.slice" / "cpu.max", "300000 100000\n")
    write(tmp_path / "app.slice" / "job.scope" / "cpu.max", "max 100000\n")
    proc = tmp_path / "proc_cgroup"
    write(proc, "0::/app.slice/job.scope\n")
    assert _threads.cgroup_cpu_limit(str(tmp_path), str(proc)) == 3
    # a path that does not exist under the mount (a container's own view): the root only
    write(proc, "0::/elsewhere\n")
    assert _threads.cgroup_cpu_limit(str(tmp_path), str(proc)) is None


def test_cgroup_v1_limit(tmp_path):
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "150000\n")
    write(tmp_path / "cpu" / "cpu.cfs_period_us", "100000\n")
    assert _threads.cgroup_cpu_limit(str(tmp_path), None) == 2
    write(tmp_path / "cpu" / "cpu.cfs_quota_us", "-1\n")
    assert _threads.cgroup_cpu_limit(str(tmp_path), None) is None


def test_no_cgroup_files_mean_no_limit(tmp_path):
    assert _threads.cgroup_cpu_limit(str(tmp_path / "missing"), str(tmp_path / "missing")) is None


@pytest.mark.parametrize("value, threads", [
    (None, None), ("", None), ("4", 4), (" 2 ", 2), ("4,2", 4), ("0", None), ("-1", None),
    ("many", None),
])
def test_omp_num_threads_from_env(value, threads):
    environ = {} if value is None else {"OMP_NUM_THREADS": value}
    assert _threads.omp_num_threads_from_env(environ) == threads


def source(**changes):
    settings = dict(openmp=True, forked=False, cap=None, omp_now=8, omp_at_import=8,
                    omp_env=None, usable=8, usable_source="affinity")
    settings.update(changes)
    return _threads.num_threads_source(**settings)


def test_num_threads_source_names_what_binds():
    assert source() == "affinity"
    assert source(omp_now=64, omp_at_import=64, usable=2, usable_source="cgroup quota") == "cgroup quota"
    assert source(cap=4) == "set_num_threads"
    assert source(cap=16) == "affinity"  # a cap above the default changes nothing
    assert source(omp_now=1) == "threadpoolctl/omp_set_num_threads"
    assert source(omp_now=2, omp_at_import=2, omp_env=2) == "OMP_NUM_THREADS"
    # OMP_NUM_THREADS above the usable CPUs: the CPUs bind
    assert source(omp_now=64, omp_at_import=64, omp_env=64, usable=2,
                  usable_source="cgroup quota") == "cgroup quota"
    assert source(forked=True) == "forked child"
    assert source(openmp=False) == "built without OpenMP"


# --- in a fresh interpreter ------------------------------------------------------

_PROBE = """
import json, os, sys
import numpy as np
import fastsoftmax

def threads():
    return len(os.listdir("/proc/self/task"))

options = json.loads(sys.argv[1])
if options.get("address_space_headroom"):
    import resource
    with open("/proc/self/status") as f:
        vsz = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    limit = vsz + options["address_space_headroom"]
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
x = np.zeros((16384, 1024), np.float32)
config = fastsoftmax.get_config()
result = {"get_num_threads": fastsoftmax.get_num_threads(),
          "source": config.get("num_threads_source"), "usable_cpus": config.get("usable_cpus")}
before = threads()
y = fastsoftmax.softmax(x)
result["started_by_default"] = threads() - before
y = fastsoftmax.softmax(x, num_threads=%d)
result["started_by_huge"] = threads() - before
y = fastsoftmax.log_softmax(x, num_threads=%d)
result["started_by_huge_log"] = threads() - before
fastsoftmax.logsumexp(x, num_threads=%d)
result["started_by_huge_family"] = threads() - before
result["correct"] = bool(np.allclose(y, -np.log(1024), rtol=1e-6))
print(json.dumps(result))
""" % (HUGE, HUGE, HUGE)


def run_probe(tmp_path, prefix=(), env=None, **options):
    base = {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", _threads.CGROUP_ROOT_ENV)}
    base.update(env or {})
    proc = subprocess.run([*prefix, sys.executable, "-c", _PROBE, json.dumps(options)],
                          cwd=tmp_path, env=base, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def taskset_one_cpu():
    """A `taskset -c N` prefix for one CPU this process may use, or skip."""
    if shutil.which("taskset") is None or not hasattr(os, "sched_getaffinity"):
        pytest.skip("needs taskset")
    cpu = min(os.sched_getaffinity(0))
    prefix = ["taskset", "-c", str(cpu)]
    check = subprocess.run([*prefix, "true"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("cannot set the CPU affinity here")
    return prefix


@needs_openmp
@needs_proc_tasks
def test_one_cpu_of_affinity_means_one_thread(tmp_path):
    result = run_probe(tmp_path, prefix=taskset_one_cpu())
    assert result["started_by_default"] == 0
    assert result["started_by_huge"] == 0
    assert result["started_by_huge_log"] == 0
    assert result["started_by_huge_family"] == 0
    assert result["correct"]
    assert result["get_num_threads"] == 1
    assert result["usable_cpus"] == 1
    assert result["source"] == "affinity"


@needs_openmp
@needs_proc_tasks
@pytest.mark.parametrize("layout", ["v2", "v1"])
def test_cgroup_quota_of_one_cpu_means_one_thread(tmp_path, layout):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs 2 CPUs in the affinity mask, or affinity binds first")
    root = tmp_path / "cgroup"
    if layout == "v2":
        write(root / "cpu.max", "100000 100000\n")
    else:
        write(root / "cpu" / "cpu.cfs_quota_us", "80000\n")
        write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    result = run_probe(tmp_path, env={_threads.CGROUP_ROOT_ENV: str(root)})
    assert result["started_by_default"] == 0
    assert result["started_by_huge"] == 0
    assert result["correct"]
    assert result["get_num_threads"] == 1
    assert result["usable_cpus"] == 1
    assert result["source"] == "cgroup quota"


@needs_openmp
@needs_proc_tasks
def test_huge_num_threads_starts_at_most_the_usable_cpus(tmp_path):
    result = run_probe(tmp_path)
    usable = _threads.usable_cpus()[0]
    # the calling thread is one of the team
    assert result["started_by_huge"] <= usable - 1
    assert result["started_by_huge_log"] <= usable - 1
    assert result["started_by_huge_family"] <= usable - 1
    assert result["correct"]


def asan_loaded():
    return "asan" in os.environ.get("LD_PRELOAD", "")


@needs_openmp
@needs_proc_tasks
@pytest.mark.skipif(asan_loaded(), reason="ASan reserves terabytes of address space")
def test_huge_num_threads_survives_a_limited_address_space(tmp_path):
    """2 GiB of address space over what the interpreter already has: a
    thread per 8192 elements (2,048 thread stacks) would not fit, and
    libgomp ends the process when it cannot create a thread."""
    result = run_probe(tmp_path, address_space_headroom=2 << 30)
    assert result["started_by_huge"] <= _threads.usable_cpus()[0] - 1
    assert result["correct"]


@needs_openmp
@needs_proc_tasks
def test_omp_num_threads_still_wins(tmp_path):
    result = run_probe(tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert result["get_num_threads"] == 1
    assert result["started_by_default"] == 0
    assert result["source"] == "OMP_NUM_THREADS"


@needs_openmp
def test_threadpoolctl_and_set_num_threads_are_named(restore_thread_cap):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=1, user_api="openmp"):
        assert fastsoftmax.get_num_threads() == 1
        assert fastsoftmax.get_config()["num_threads_source"] == "threadpoolctl/omp_set_num_threads"
    fastsoftmax.set_num_threads(1)
    assert fastsoftmax.get_config()["num_threads_source"] == "set_num_threads"


@pytest.fixture
def restore_thread_cap():
    yield
    fastsoftmax.set_num_threads(None)


def test_get_config_reports_the_cpus():
    config = fastsoftmax.get_config()
    assert 1 <= config["usable_cpus"] <= config["cpu_affinity"]
    assert config["cgroup_cpu_limit"] is None or config["usable_cpus"] <= config["cgroup_cpu_limit"]
    assert 1 <= config["num_threads"] <= config["usable_cpus"]
    assert isinstance(config["num_threads_source"], str)
