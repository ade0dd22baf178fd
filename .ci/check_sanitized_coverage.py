"""Check that the sanitizer job really exercised what it claims to.

usage: python .ci/check_sanitized_coverage.py REPORT.xml

Fails (exit 1) unless
  - the installed extension is linked against the ASan and UBSan runtimes;
  - for every kernel variant compiled and runnable here, every driver plan test
    (tests/test_plans.py, and every op on every plan: tests/test_one_engine.py)
    and both float dtypes, tests carrying that parameter passed in the JUnit
    report of the run, not counting the C kernel test (each variant must have
    run through the Python API);
  - the C kernel test (tests/test_c_kernels.py, every table entry called
    directly) passed for every kernel variant runnable here.
"""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter

from fastsoftmax import _core

PLAN_TESTS = ("test_short_row_boundary", "test_short_row_transposes_match_the_strided_path",
              "test_row_groups_match_the_row_kernel",
              "test_split_rows_bit_identical_across_threads",
              "test_split_rows_special_values_in_one_chunk", "test_streamed_output",
              "test_every_op_on_every_plan_agrees_with_reference", "test_scaled_and_masked_on_every_plan",
              "test_row_groups_are_bit_identical_to_single_rows")
DTYPES = ("float32", "float64")
C_KERNEL_TEST = "test_kernel_table_matches_scalar"


def passed_test_names(report):
    names = []
    for case in ET.parse(report).iter("testcase"):
        if any(child.tag in ("failure", "error", "skipped") for child in case):
            continue
        names.append(case.get("name", ""))
    return names


def params(name):
    match = re.search(r"\[(.*)\]$", name)
    return set(match.group(1).split("-")) if match else set()


def main(report):
    linked = subprocess.run(["ldd", _core.__file__], capture_output=True, text=True).stdout
    problems = [f"{_core.__file__} is not linked against {lib}"
                for lib in ("libasan", "libubsan") if lib not in linked]
    names = passed_test_names(report)
    counts = Counter()
    c_kernel_variants = Counter()
    for name in names:
        tokens = params(name)
        test = name.split("[")[0]
        counts[test] += 1
        if test == C_KERNEL_TEST:
            c_kernel_variants.update(tokens)
            continue
        for key in _core.variants_compiled() + list(DTYPES):
            counts[key] += key in tokens
    for name in sorted(set(_core.variants_compiled()) - set(_core.variants_supported())):
        print(f"note: kernel variant {name} is compiled but this CPU cannot run it")
    for key in _core.variants_supported() + list(DTYPES) + list(PLAN_TESTS):
        print(f"passed under the sanitizers with {key}: {counts[key]}")
        if counts[key] == 0:
            problems.append(f"no passed test with {key}")
    for variant in _core.variants_supported():
        print(f"passed under the sanitizers: {C_KERNEL_TEST} with {variant}: {c_kernel_variants[variant]}")
        if c_kernel_variants[variant] == 0:
            problems.append(f"the C kernel test did not pass with {variant}")
    if len(names) == 0:
        problems.append("no passed test at all")
    for problem in problems:
        print("ERROR:", problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
