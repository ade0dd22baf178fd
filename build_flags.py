"""Compiler flags of the C core: one home for setup.py (the extension) and
tests/c/build_and_run.py (the kernel test, native or cross-compiled).

Nothing is compiled for the build machine's own CPU: no -march=native, no
global ISA flags, no -ffast-math.
"""
import os
import platform

# Flags shared by every C file.  Neither changes a floating point result:
# -fno-math-errno drops errno bookkeeping around libm calls, and
# -fno-trapping-math (clang's default) lets GCC turn the kernels' selects
# (`t < lowest ? lowest : t`) into SIMD blends; no code here enables traps.
COMMON_FLAGS = ["-O3", "-std=c11", "-fno-math-errno", "-fno-trapping-math",
                "-Werror=implicit-function-declaration"]
# a*b + c may become one fused multiply-add where the ISA has one (GCC's
# default outside ISO mode): one rounding instead of two, never less accurate.
KERNEL_FLAGS = ["-ffp-contract=fast"]


def is_x86_64(machine=None):
    """True for an x86-64 target (`machine` as platform.machine() names it;
    default: this machine)."""
    return (machine or platform.machine()).lower() in ("x86_64", "amd64")


def kernel_variants(machine=None):
    """(variant name, extra flags) of every kernel variant compiled for
    `machine` (default: this machine), in the order of dispatch.c's
    FSM_VARIANT_* numbers.  "scalar" is the same code, not vectorised: the
    in-tree reference the tests compare the SIMD variants with; "baseline"
    is SSE2 on x86-64 and NEON on aarch64 (both part of the base ISA)."""
    variants = [
        ("scalar", ["-fno-tree-vectorize", "-Wno-unknown-pragmas", "-DFSM_NO_SHUFFLES"]),
        ("baseline", ["-fopenmp-simd"]),
    ]
    if is_x86_64(machine):
        # F16C (float16 conversions) came with Ivy Bridge and Piledriver,
        # before AVX2: every AVX2 CPU has it (checked at run time all the same).
        variants.append(("avx2", ["-fopenmp-simd", "-mavx2", "-mfma", "-mf16c"]))
        # 512-bit vectors (AVX-512 F/DQ/BW/VL): chosen only where CPUID and
        # XCR0 say the CPU and the OS support them (src_c/dispatch.c).
        variants.append(("avx512", ["-fopenmp-simd", "-mavx2", "-mfma", "-mf16c", "-mavx512f", "-mavx512dq",
                                    "-mavx512bw", "-mavx512vl", "-mprefer-vector-width=512"]))
    return variants


def sanitizer_flags():
    """Compile and link flags for FASTSOFTMAX_SANITIZE (e.g. "address,undefined")."""
    names = [n.strip() for n in os.environ.get("FASTSOFTMAX_SANITIZE", "").split(",") if n.strip()]
    if not names:
        return []
    flags = ["-fsanitize=" + ",".join(names), "-fno-omit-frame-pointer", "-g"]
    if "undefined" in names:
        flags.append("-fno-sanitize-recover=undefined")
    return flags
