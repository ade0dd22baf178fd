"""Build the C kernel test (test_kernels.c) and run it.

usage: python tests/c/build_and_run.py [--cc CC] [--machine MACHINE]
                                       [--runner CMD] [--build-dir DIR] [VARIANT ...]

The kernels are compiled as setup.py compiles them: variant.c once per
kernel variant of the target machine, with the flags of build_flags.py
(and FASTSOFTMAX_SANITIZE's, as for the extension); dispatch.c picks the
variants the CPU can run.  Examples:
  python tests/c/build_and_run.py                       # every variant here
  python tests/c/build_and_run.py avx2                  # avx2 against scalar
  python tests/c/build_and_run.py --cc aarch64-linux-gnu-gcc --machine aarch64 \\
      --runner "qemu-aarch64 -L /usr/aarch64-linux-gnu"  # NEON, under qemu-user
Exit status: the test's (0: every check passed).
"""
import argparse
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SRC = os.path.join(ROOT, "src_c")


def load_build_flags():
    """build_flags.py of this checkout, loaded without putting the checkout
    on sys.path (processes started by the test suite would then import the
    source folder instead of the installed fastsoftmax)."""
    spec = importlib.util.spec_from_file_location("build_flags", os.path.join(ROOT, "build_flags.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FLAGS = load_build_flags()

# The test's own files: warnings are errors there.
TEST_FLAGS = ["-Wall", "-Wextra", "-Werror"]


def find_compiler():
    """The C compiler to use: $CC, else cc, gcc or clang on PATH; None if none."""
    candidates = [os.environ["CC"]] if os.environ.get("CC") else ["cc", "gcc", "clang"]
    for cc in candidates:
        if shutil.which(shlex.split(cc)[0]):
            return cc
    return None


def compile_env():
    """The environment for the compiler: without an LD_PRELOAD (the sanitizer
    job preloads ASan into the test processes, not into the compiler)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


def run_compiler(cc, args):
    cmd = shlex.split(cc) + args
    out = subprocess.run(cmd, capture_output=True, text=True, env=compile_env())
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout}{out.stderr}")


def build(cc, build_dir, machine=None):
    """Compile every kernel variant for `machine` (default: this one),
    dispatch.c and the test into build_dir; return the executable's path."""
    sanitize = FLAGS.sanitizer_flags()
    jobs = [(os.path.join(SRC, "kernels", "variant.c"), f"variant_{name}.o",
             FLAGS.COMMON_FLAGS + FLAGS.KERNEL_FLAGS + flags + [f"-DFSM_VARIANT={name}"])
            for name, flags in FLAGS.kernel_variants(machine)]
    jobs += [(os.path.join(SRC, "dispatch.c"), "dispatch.o", FLAGS.COMMON_FLAGS),
             (os.path.join(HERE, "test_kernels.c"), "test_kernels.o", FLAGS.COMMON_FLAGS + TEST_FLAGS)]
    objects = [os.path.join(build_dir, obj) for _, obj, _ in jobs]

    def compile_one(job, obj):
        source, _, flags = job
        run_compiler(cc, ["-c", source, "-o", obj, f"-I{SRC}"] + flags + sanitize)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(compile_one, jobs, objects))  # list(): raises the first failure
    exe = os.path.join(build_dir, "test_kernels")
    run_compiler(cc, objects + ["-o", exe, "-lm"] + sanitize)
    return exe


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cc", default=None, help="C compiler (default: $CC, cc, gcc or clang)")
    parser.add_argument("--machine", default=None,
                        help="target machine as platform.machine() names it (default: this one)")
    parser.add_argument("--runner", default="", help="command that runs the test (e.g. qemu-aarch64 -L ...)")
    parser.add_argument("--build-dir", default=None, help="folder for the objects (default: a temporary one)")
    parser.add_argument("variants", nargs="*", help="variants to check (default: every one compiled)")
    args = parser.parse_args(argv)
    cc = args.cc or find_compiler()
    if cc is None:
        sys.exit("build_and_run.py: no C compiler found (set CC)")
    build_dir = args.build_dir or tempfile.mkdtemp(prefix="fastsoftmax-ctest-")
    os.makedirs(build_dir, exist_ok=True)
    exe = build(cc, build_dir, args.machine)
    return subprocess.run(shlex.split(args.runner) + [exe] + args.variants).returncode


if __name__ == "__main__":
    sys.exit(main())
