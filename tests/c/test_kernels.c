/*
 * Kernel test: every entry of every kernel variant's table
 * (fsm_kernel_table, src_c/kernels/kernels.h) against the same entry of the
 * scalar variant, called directly, without the driver.
 *
 * usage: test_kernels [VARIANT]...   (default: every variant compiled in)
 * Built and run by tests/c/build_and_run.py, with the flags setup.py uses;
 * a variant this CPU cannot run is reported and skipped.  Prints one line
 * per failure (at most MAX_REPORTED) and ends with "N passed, M failed";
 * exit status 1 when a check failed.
 *
 * A check is one output of one kernel call on one input.  The inputs:
 * lengths around every vector width and block size, starts misaligned by
 * 0 .. 16 elements, in place and not, and values from the patterns below
 * (special values, the extremes of the float range), for the family
 * kernels with every parameter kind (no scale, temperatures, negative
 * scales; cross entropy's targets, smoothing and gradient scale).  The
 * tolerances, per output (a variant may differ from scalar only by its
 * fused multiply-adds and the roundings that follow from them):
 *   - transposes (to_lanes, from_lanes), staging (stage) and row maxima
 *     (rmax): bit-identical (they move or select values);
 *   - every other output: within ULPS ulps (the distance between the
 *     values' positions in the ordered set of floats, so a subnormal ulp
 *     counts as one; 3 measured on x86-64), or, for the backward passes and
 *     gradients, whose last step subtracts nearly equal values, within
 *     ULPS eps times the size of the terms; where their sum is within its
 *     rounding error of overflowing, any result (it may overflow in one
 *     variant only);
 *   - results per group (logsumexp, loss) in double: within ULPS eps of the
 *     dtype, relative (logsumexp: to |max| + log n, as m + log(total)
 *     cancels);
 *   - NaN where scalar has NaN (any NaN: sign and payload are not part of a
 *     result), the same infinity where it has one.
 * Within each variant, the identities kernels.h states are bit-exact: row
 * groups (plain and family) and the row kernel, short rows and the column
 * kernel on the transposed rows, split rows (rmax, rblocks, folded sums,
 * finish; the split-row steps of every op, split and fsplit) and the row
 * kernel (row, frow), a streamed output and a plain one, in place and out
 * of place.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastsoftmax.h"

/* Tolerance of the computed outputs, in ulps of the output's dtype. */
#define ULPS 4
#define MAX_REPORTED 30
/* Elements checked on each side of an output for stray writes. */
#define GUARD 16
/* Starts are misaligned by up to this many elements. */
#define MAX_OFFSET 16

static long checks_passed, checks_failed;
static const fsm_kernel_table *tested, *reference; /* the variant under test, scalar */
static char current_case[200];                      /* what the failures refer to */

static void report_failure(const char *entry, const char *detail) {
    if (checks_failed++ < MAX_REPORTED)
        printf("FAIL %s %s (%s): %s\n", tested->name, entry, current_case, detail);
}

static void count_check(int ok, const char *entry, const char *detail) {
    if (ok) ++checks_passed;
    else report_failure(entry, detail);
}

/* splitmix64: a small deterministic generator, the same on every machine;
 * restarted for each variant, so that every variant sees the same inputs. */
#define RNG_SEED 0x9e3779b97f4a7c15ull
static uint64_t rng_state = RNG_SEED;

static uint64_t rng_next(void) {
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_uniform(void) { return (double)(rng_next() >> 11) * 0x1p-53; }

static size_t rng_below(size_t n) { return (size_t)(rng_next() % n); }

static void *checked_alloc(size_t bytes) {
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* Positions of x in the ordered set of doubles / floats: the ulp distance
 * of two finite values is the difference of their positions (+0 and -0 at
 * the same place). */
static int64_t ordered_f64(double x) {
    int64_t i;
    memcpy(&i, &x, sizeof i);
    return i >= 0 ? i : INT64_MIN - i;
}

static int64_t ordered_f32(float x) {
    int32_t i;
    memcpy(&i, &x, sizeof i);
    return i >= 0 ? i : (int64_t)INT32_MIN - i;
}

/* a[j] and b[j] are the same double for j < count (any two NaNs are). */
static int same_doubles(const double *a, const double *b, size_t count) {
    for (size_t j = 0; j < count; ++j)
        if (!(a[j] != a[j] && b[j] != b[j]) && memcmp(&a[j], &b[j], sizeof a[j]) != 0) return 0;
    return 1;
}

/* ln 2 as a double-double, for the exp_step of fsm_params. */
#define LN2_HI 0x1.62e42fefa39efp-1
#define LN2_LO 0x1.abc9e3b39803fp-56

/* Parameters of a call: the scale s (1 / temperature, ln(base)) with
 * exp_step = ln 2 / s as a double-double, as _core.pyx passes them. */
static fsm_params params_with_scale(double scale, double smoothing, double grad_scale) {
    fsm_params p;
    double step = LN2_HI / scale;
    p.scale_hi = scale, p.scale_lo = 0.0;
    p.exp_step_hi = step;
    p.exp_step_lo = (fma(-step, scale, LN2_HI) + LN2_LO) / scale;
    p.smoothing = smoothing, p.grad_scale = grad_scale;
    return p;
}

/* The parameters the driver passes to the ops without a scale. */
static fsm_params unscaled_params(double smoothing, double grad_scale) {
    fsm_params p = {1.0, 0.0, 0.0, 0.0, smoothing, grad_scale};
    return p;
}

/* Row lengths: every length up to 70 (past every vector width and the
 * 16 and 32 chains of the sums), and around multiples of FSM_SUM_BLOCK. */
static size_t row_lengths(size_t *n) {
    size_t count = 0;
    for (size_t len = 1; len <= 70; ++len) n[count++] = len;
    for (size_t k = 1; k <= 4; ++k)
        for (size_t d = 0; d < 3; ++d) n[count++] = k * FSM_SUM_BLOCK - 1 + d;
    return count;
}
#define MAX_ROW_LENGTHS 82

/* Column problems: rows and lanes around the vector widths (4 to 16
 * elements), the column sum blocks (16 and 32 rows) and FSM_SUM_BLOCK. */
static const size_t column_rows[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 255, 256, 257};
static const size_t column_lanes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65};
/* Short rows: every group size up to a full group of FSM_SHORT_ROW_LANES. */
static const size_t short_lengths[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 15, 16, 17, 31, 32, 33, 64, 65};
static const size_t short_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64};
#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* check(a[i], b[j], turn) for every pair, turn counting the calls. */
static void for_each_pair(const size_t *a, size_t na, const size_t *b, size_t nb,
                          void (*check)(size_t, size_t, size_t)) {
    for (size_t i = 0; i < na; ++i)
        for (size_t j = 0; j < nb; ++j) check(a[i], b[j], i * nb + j);
}

/* Input patterns (the special values of kernels.h's contracts). */
enum {
    PAT_UNIFORM,     /* uniform in [-10, 10) */
    PAT_WIDE,        /* spread over the whole range of exp: subnormal and zero outputs */
    PAT_TIES,        /* many entries equal to the maximum */
    PAT_NAN,         /* one NaN */
    PAT_POS_INF,     /* one +inf */
    PAT_NEG_INF,     /* -inf among finite values */
    PAT_ALL_NEG_INF, /* every entry -inf */
    PAT_EXTREMES,    /* the largest finite magnitudes, both signs */
    PAT_ALL_MAX,     /* every entry the largest finite value */
    PAT_TINY,        /* subnormals and zeros of both signs */
    PAT_LARGE,       /* uniform over half the finite range */
    NUM_PATTERNS
};
static const char *const pattern_names[NUM_PATTERNS] = {
    "uniform", "wide", "ties", "nan", "+inf", "-inf", "all -inf", "extremes", "all max", "tiny", "large"};

static const char *const op_names[FSM_NUM_OPS] = {
    "softmax", "log_softmax", "logsumexp", "softmax_backward", "log_softmax_backward", "cross_entropy"};

#define T float
#define F(name) name##_f32
#define T_EPS 0x1p-23
#define T_MAX 0x1.fffffep127f
#define T_TRUE_MIN 0x1p-149f
#define EXP_RANGE 104.0
#define ORDERED ordered_f32
#define DTYPE "float32"
#define SUFFIX f32
#include "check_kernels.inc.c"

#define T double
#define F(name) name##_f64
#define T_EPS 0x1p-52
#define T_MAX 0x1.fffffffffffffp1023
#define T_TRUE_MIN 0x1p-1074
#define EXP_RANGE 746.0
#define ORDERED ordered_f64
#define DTYPE "float64"
#define SUFFIX f64
#include "check_kernels.inc.c"

static void check_variant(int v) {
    fsm_set_variant(v);
    tested = fsm_active_kernels();
    fsm_set_variant(FSM_VARIANT_SCALAR);
    reference = fsm_active_kernels();
    long failed_before = checks_failed, passed_before = checks_passed;
    rng_state = RNG_SEED;
    snprintf(current_case, sizeof current_case, "table");
    count_check(strcmp(tested->name, fsm_variant_name(v)) == 0, "name", tested->name);
    tested->stream_fence();
    check_all_f32();
    check_all_f64();
    printf("%-8s %ld passed, %ld failed\n", tested->name, checks_passed - passed_before,
           checks_failed - failed_before);
}

static int variant_named(const char *name) {
    for (int v = 0; v < FSM_NUM_VARIANTS; ++v)
        if (fsm_variant_name(v) != NULL && strcmp(fsm_variant_name(v), name) == 0) return v;
    return -1;
}

int main(int argc, char **argv) {
    int wanted[FSM_NUM_VARIANTS] = {0};
    for (int i = 1; i < argc; ++i) {
        int v = variant_named(argv[i]);
        if (v < 0) {
            fprintf(stderr, "test_kernels: no kernel variant %s in this build\n", argv[i]);
            return 2;
        }
        wanted[v] = 1;
    }
    for (int v = 0; v < FSM_NUM_VARIANTS; ++v) {
        if (fsm_variant_name(v) == NULL || (argc > 1 && !wanted[v])) continue;
        if (!fsm_variant_supported(v)) {
            printf("%-8s skipped: this CPU cannot run it\n", fsm_variant_name(v));
            continue;
        }
        check_variant(v);
    }
    printf("%ld passed, %ld failed\n", checks_passed, checks_failed);
    return checks_failed == 0 ? 0 : 1;
}
