"""Build of the fastsoftmax extension.

The kernels in src_c/kernels/variant.c are compiled once per ISA variant,
each with its own flags, and linked into one extension that picks a variant
at import (src_c/dispatch.c).  Nothing is compiled for the build machine's
own CPU: no -march=native, no global ISA flags, no -ffast-math.  The flags
(shared with the C kernel test, tests/c/) are in build_flags.py.

OpenMP is found by compiling, linking and running a small program, with the
flags of the compiler at hand (GCC and LLVM clang: -fopenmp; Apple clang:
-Xpreprocessor -fopenmp and Homebrew's libomp; MSVC: /openmp); without it
the build succeeds single-threaded, with a warning.

The extension is built without debug information (-g0, after Python's own
-g), unless FASTSOFTMAX_SANITIZE is set or build_ext runs with --debug.

Environment:
  FASTSOFTMAX_DISABLE_OPENMP=1   build without OpenMP even when available.
  FASTSOFTMAX_SANITIZE=address,undefined
                                 build every C file (kernels included) and
                                 link the extension with
                                 -fsanitize=<list> -fno-omit-frame-pointer,
                                 and with -fno-sanitize-recover=undefined
                                 when "undefined" is in the list (a UBSan
                                 report aborts the process).  Python itself
                                 is not instrumented, so the ASan runtime
                                 must be loaded first:
      LD_PRELOAD="$(gcc -print-file-name=libasan.so)" \
      ASAN_OPTIONS=detect_leaks=0 python -m pytest
                                 (detect_leaks=0: CPython does not free all
                                 of its memory at exit, by design, so
                                 LeakSanitizer would report the interpreter,
                                 not fastsoftmax).  See CONTRIBUTING.md, "Sanitizers".
"""
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import warnings

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The flags live in build_flags.py, next to this file (shared with the C
# kernel test); the build backend does not put this folder on sys.path.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_flags import COMMON_FLAGS, KERNEL_FLAGS, kernel_variants, sanitizer_flags  # noqa: E402

SRC = "src_c"
VARIANTS = kernel_variants()

OPENMP_PROBE = textwrap.dedent(
    """
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+ : n)
        n += 1;
        printf("%d\\n", n == omp_get_max_threads());
        return 0;
    }
    """
)


def homebrew_prefix(formula):
    """Homebrew's prefix of `formula` (e.g. libomp), or None."""
    try:
        out = subprocess.run(["brew", "--prefix", formula], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    prefix = out.stdout.strip()
    return prefix if out.returncode == 0 and os.path.isdir(prefix) else None


def openmp_candidates(compiler):
    """(compile flags, link flags) to try in turn, for this compiler."""
    if compiler.compiler_type == "msvc":
        # OpenMP 2.0 (enough for the driver's pragmas) in vcomp140.dll; the
        # linker needs no flag (the objects name vcomp's import library).
        return [(["/openmp"], [])]
    candidates = [(["-fopenmp"], ["-fopenmp"])]  # GCC, LLVM clang
    if sys.platform == "darwin":
        # Apple clang has no -fopenmp driver flag and no OpenMP runtime: the
        # preprocessor flag and LLVM's libomp (brew install libomp).
        prefix = homebrew_prefix("libomp")
        inc, lib = ([f"-I{prefix}/include"], [f"-L{prefix}/lib"]) if prefix else ([], [])
        candidates.append((["-Xpreprocessor", "-fopenmp"] + inc, lib + ["-lomp"]))
    return candidates


def openmp_flags(compiler):
    """Compile, link and run a small OpenMP program with each candidate's
    flags; return the first (compile flags, link flags) that works, or ([], [])."""
    if os.environ.get("FASTSOFTMAX_DISABLE_OPENMP", "") not in ("", "0"):
        return [], []
    for cflags, ldflags in openmp_candidates(compiler):
        tmp = tempfile.mkdtemp()
        try:
            src = os.path.join(tmp, "probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_PROBE)
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            exe = os.path.join(tmp, "probe")
            compiler.link_executable(objs, exe, extra_postargs=ldflags)
            exe += compiler.exe_extension or ""
            out = subprocess.run([exe], capture_output=True, text=True, timeout=60)
            if out.returncode == 0 and out.stdout.strip() == "1":
                return cflags, ldflags
        except Exception as exc:  # noqa: BLE001 - any failure means "not these flags"
            warnings.warn(f"OpenMP probe with {' '.join(cflags)} failed: {exc}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    warnings.warn(
        "fastsoftmax is being built WITHOUT OpenMP: every call will run on one thread "
        "(fastsoftmax.show_config() reports this)."
    )
    return [], []


class BuildExt(build_ext):
    def build_extensions(self):
        omp, omp_link = openmp_flags(self.compiler)
        self.sanitize = sanitizer_flags()
        # -g0 after Python's own -g: no debug information (it was 5 MB of the
        # 6.6 MB extension), unless sanitizing (reports want -g) or asked for
        # (build_ext --debug).
        self.nodebug = [] if self.sanitize or self.debug else ["-g0"]
        self.force = self.force or self.flags_changed(omp + omp_link + self.sanitize + self.nodebug)
        for ext in self.extensions:
            ext.extra_objects.extend(self.compile_variants(ext))
            ext.extra_compile_args.extend(COMMON_FLAGS + omp + self.sanitize + self.nodebug)
            ext.extra_link_args.extend(omp_link + self.sanitize)
        super().build_extensions()

    def flags_changed(self, flags):
        """True when the last build in this build folder used other flags (a
        sanitizer build must not reuse a plain one's objects, or the reverse)."""
        stamp = os.path.join(self.build_temp, "fastsoftmax-flags.txt")
        text = " ".join(flags)
        previous = open(stamp).read() if os.path.exists(stamp) else None
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(text)
        return previous != text

    def compile_variants(self, ext):
        """One object per kernel variant, each with its own flags."""
        objects = []
        for name, flags in VARIANTS:
            objects += self.compiler.compile(
                [os.path.join(SRC, "kernels", "variant.c")],
                output_dir=os.path.join(self.build_temp, "variant_" + name),
                macros=[("FSM_VARIANT", name)],
                include_dirs=[SRC],
                extra_postargs=COMMON_FLAGS + KERNEL_FLAGS + flags + self.sanitize + self.nodebug,
                depends=ext.depends,
            )
        return objects


def c_sources(*names):
    return [os.path.join(SRC, n) for n in names]


extension = Extension(
    "fastsoftmax._core",
    sources=["fastsoftmax/_core.pyx"] + c_sources("driver.c", "dispatch.c", "threads.c"),
    include_dirs=[SRC, np.get_include()],
    define_macros=[("NPY_NO_DEPRECATED_API", "NPY_2_0_API_VERSION")],
    depends=["setup.py"] + c_sources(
        "fastsoftmax.h", "exp_minus_max.h", "fsm_inline.h", "driver.inc.c", "kernels/kernels.h",
        "kernels/variant.c", "kernels/softmax_rows.inc.c", "kernels/softmax_cols.inc.c",
        "kernels/family_rows.inc.c", "kernels/family_cols.inc.c", "kernels/short_rows.inc.c",
        "kernels/cross_entropy_short.inc.c", "kernels/masked_short_rows.inc.c",
        "kernels/masked_cols.inc.c",
        "kernels/stream.inc.c", "kernels/convert.inc.c", "half.inc.c", "half_convert.h",
    ),
)

setup(
    ext_modules=cythonize([extension], compiler_directives={"language_level": "3"}),
    cmdclass={"build_ext": BuildExt},
)
