"""How many CPUs the process may use: its CPU affinity and its cgroup CPU
quota, read once at import (`_core` hands the result to the C driver, which
never starts more threads than this in a call).

GNU libgomp's own default, ``omp_get_max_threads()``, follows the affinity
mask but not a cgroup quota: a container limited to 2 CPUs on a 64-core host
would otherwise start 64 threads.  A quota of q microseconds per period of p
counts as ceil(q / p) CPUs (as scikit-learn and loky count it): 1.5 CPUs of
quota still run two threads, each a part of the time.

The quota is read from the cgroup v2 file ``cpu.max`` ("max 100000" or
"200000 100000") or from cgroup v1's ``cpu.cfs_quota_us`` (-1: none) and
``cpu.cfs_period_us``, at every level from the process's own cgroup (named in
/proc/self/cgroup) up to the mount root; the smallest limit wins.

For tests only: ``_FASTSOFTMAX_CGROUP_ROOT=<dir>`` reads the files of a fake
cgroup tree there instead (v2: ``<dir>/cpu.max``; v1:
``<dir>/cpu/cpu.cfs_quota_us``), with the process in its root.
"""
import math
import os

CGROUP_ROOT_ENV = "_FASTSOFTMAX_CGROUP_ROOT"
SYS_CGROUP = "/sys/fs/cgroup"
PROC_CGROUP = "/proc/self/cgroup"

SOURCE_AFFINITY = "affinity"
SOURCE_CGROUP = "cgroup quota"


# --- pure parsers -------------------------------------------------------------

def cpus_from_quota(quota, period):
    """CPUs a CFS quota of `quota` per `period` microseconds allows, rounded
    up (at least 1); None when there is no quota (quota < 0) or it is invalid."""
    if quota < 0 or period <= 0:
        return None
    return max(1, math.ceil(quota / period))


def parse_cpu_max(text):
    """CPUs allowed by the contents of a cgroup v2 ``cpu.max`` file
    ("$MAX $PERIOD", MAX "max" for no limit), or None."""
    fields = text.split()
    if not fields or fields[0] == "max":
        return None
    try:
        quota = int(fields[0])
        period = int(fields[1]) if len(fields) > 1 else 100000  # the kernel's default period
    except ValueError:
        return None
    return cpus_from_quota(quota, period)


def parse_cfs_quota(quota_text, period_text):
    """CPUs allowed by the contents of cgroup v1 ``cpu.cfs_quota_us`` and
    ``cpu.cfs_period_us`` (quota -1: no limit), or None."""
    try:
        return cpus_from_quota(int(quota_text.strip()), int(period_text.strip()))
    except ValueError:
        return None


def parse_proc_cgroup(text):
    """The cgroup paths in the contents of /proc/self/cgroup, as
    (v2 path or None, v1 "cpu" controller path or None)."""
    v2 = v1_cpu = None
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            v2 = path
        elif "cpu" in controllers.split(","):
            v1_cpu = path
    return v2, v1_cpu


# --- reading the files --------------------------------------------------------

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _levels(mount, cgroup_path):
    """Directories from the process's cgroup up to the mount root.  Inside a
    container the path in /proc/self/cgroup may not exist under the mount
    (the mount is the container's own cgroup): then only the root."""
    levels = [mount]
    parts = [p for p in (cgroup_path or "").split("/") if p]
    for i in range(1, len(parts) + 1):
        directory = os.path.join(mount, *parts[:i])
        if not os.path.isdir(directory):
            return [mount]
        levels.append(directory)
    return levels


def _smallest(limits):
    limits = [n for n in limits if n is not None]
    return min(limits) if limits else None


def _v2_limit(mount, cgroup_path):
    limits = []
    for d in _levels(mount, cgroup_path):
        text = _read(os.path.join(d, "cpu.max"))
        if text is not None:
            limits.append(parse_cpu_max(text))
    return _smallest(limits)


def _v1_limit(mount, cgroup_path):
    limits = []
    for d in _levels(mount, cgroup_path):
        quota = _read(os.path.join(d, "cpu.cfs_quota_us"))
        period = _read(os.path.join(d, "cpu.cfs_period_us"))
        if quota is not None and period is not None:
            limits.append(parse_cfs_quota(quota, period))
    return _smallest(limits)


def cgroup_cpu_limit(root=SYS_CGROUP, proc_cgroup=PROC_CGROUP):
    """CPUs the cgroup CPU quota allows this process (ceil), or None for no
    quota or no cgroup files.  `proc_cgroup` None: the process is in the root."""
    text = _read(proc_cgroup) if proc_cgroup else None
    v2_path, v1_path = parse_proc_cgroup(text) if text else (None, None)
    v1_mounts = [os.path.join(root, name) for name in ("cpu", "cpu,cpuacct")]
    return _smallest([_v2_limit(root, v2_path)] + [_v1_limit(m, v1_path) for m in v1_mounts
                                                   if os.path.isdir(m)])


def affinity_cpu_count():
    """CPUs in the process's affinity mask (all CPUs where there is none)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cgroup_limit_from_env():
    fake_root = os.environ.get(CGROUP_ROOT_ENV)
    if fake_root:
        return cgroup_cpu_limit(fake_root, proc_cgroup=None)
    return cgroup_cpu_limit()


def usable_cpus():
    """(CPUs the process may use, "affinity" or "cgroup quota", the affinity
    count, the cgroup limit or None): the smaller of the two, affinity on a tie."""
    affinity = affinity_cpu_count()
    try:
        cgroup = _cgroup_limit_from_env()
    except Exception:  # noqa: BLE001 - unreadable cgroup files mean no known quota
        cgroup = None
    if cgroup is not None and cgroup < affinity:
        return cgroup, SOURCE_CGROUP, affinity, cgroup
    return affinity, SOURCE_AFFINITY, affinity, cgroup


def omp_num_threads_from_env(environ=None):
    """The first number in OMP_NUM_THREADS ("4" or "4,2") as OpenMP runtimes
    read it at load, or None when it is unset or not a positive number."""
    value = (os.environ if environ is None else environ).get("OMP_NUM_THREADS", "")
    first = value.split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


def num_threads_source(*, openmp, forked, cap, omp_now, omp_at_import, omp_env,
                       usable, usable_source):
    """What sets the thread count of a call with num_threads=None: the
    setting that binds (ties go to the one the user made), else the usable
    CPUs' source ("affinity" or "cgroup quota").  OMP_NUM_THREADS and
    threadpoolctl act through omp_get_max_threads(): a value other than the
    one at import was set by omp_set_num_threads (threadpoolctl); an
    unchanged one comes from OMP_NUM_THREADS when that was set at import."""
    if not openmp:
        return "built without OpenMP"
    if forked:
        return "forked child"
    base = min(omp_now, usable)
    if cap is not None and cap <= base:
        return "set_num_threads"
    if omp_now > usable:
        return usable_source
    if omp_now != omp_at_import:
        return "threadpoolctl/omp_set_num_threads"
    if omp_env is not None:
        return "OMP_NUM_THREADS"
    return usable_source if omp_now == usable else "OpenMP default"
