/*
 * Softmax kernels: one table of function pointers per ISA variant.  Every
 * variant is the same C source (variant.c) compiled with its own flags, so
 * the variants differ only in how the compiler vectorised them.
 *
 * Row kernels  fsm_<op>_row_<dtype>_<variant>(x, y, n, stream)
 *   x: n readable elements, contiguous.  y: n writable elements, contiguous.
 *   y == x is allowed (in place); any other overlap is not.  n >= 1.
 *   stream: non-zero to write y with non-temporal stores (outputs larger
 *   than the caches), after which the caller calls
 *   stream_fence() before y is read by another thread.  log_softmax only:
 *   softmax ignores it, as its exps are written to y in cache and scaled
 *   there (staging them in a buffer to stream the quotients measured
 *   25-30% slower at 2 threads in float64, level at 1).
 *   Writes y[0..n) and nothing else; reads only x[0..n); no allocation.
 *
 * Row-group kernels  fsm_<op>_rows_<dtype>_<variant>(x, y, n, count)
 *   The row kernel of op (without stream) on count <= FSM_ROW_GROUP
 *   rows: row g reads x[g][0..n) and writes y[g][0..n), with the row
 *   kernel's contract for each row (y[g] == x[g] allowed, no other overlap
 *   between any two rows).  Bit-identical to the row kernel; the per-row
 *   1 / total (softmax) or log (log_softmax) runs across the rows in SIMD
 *   lanes, which pays on short rows.
 *
 * Column kernels  fsm_<op>_cols_<dtype>_<variant>(x, x_step, y, y_step, n, lanes, work)
 *   `lanes` independent softmaxes side by side: problem j reads
 *   x[i * x_step + j] and writes y[i * y_step + j] for i in [0, n).
 *   Steps are in elements and may be negative.  y == x (same steps) is
 *   allowed; any other overlap is not.  n >= 1, 1 <= lanes.
 *   work: caller-provided scratch of FSM_COLS_WORK_DOUBLES(lanes) doubles,
 *   suitably aligned for double; contents on entry are ignored.
 *
 * Short-row kernels  fsm_<op>_short_rows_<dtype>_<variant>(x, y, n, count, buf, work)
 *   The column kernel of op on count <= FSM_SHORT_ROW_LANES short rows:
 *   row g reads x[g][0..n) and writes y[g][0..n), both contiguous, with the
 *   row kernel's overlap rules for each row.  buf: n * FSM_SHORT_ROW_LANES
 *   writable elements overlapping no row, scratch; work:
 *   FSM_SHORT_ROWS_WORK_DOUBLES doubles of scratch, as for the column
 *   kernel (no kernel keeps more than a few hundred bytes on the stack,
 *   which may be an OpenMP worker's small one).  Every x[g] is read
 *   before any y[g] is written.  Bit-identical to the column kernel run on
 *   the transposed rows (lane g = row g, lane step FSM_SHORT_ROW_LANES).
 *
 * Semantics shared by all kernels (the reference is fastsoftmax/reference.py):
 *   softmax:     y = exp(x - max) / sum(exp(x - max))
 *   log_softmax: y = (x - max) - log(sum(exp(x - max)))
 *   A NaN or +inf anywhere in a problem, or a problem that is all -inf, makes
 *   every output of that problem NaN.  -inf among finite values gives 0
 *   (log_softmax: -inf).
 */
#ifndef FSM_KERNELS_H
#define FSM_KERNELS_H

#include <math.h>
#include <stddef.h>

#include <stdint.h>

#include "../fsm_inline.h"

/* Every operation.  The plain kernels below (row, row-group, column,
 * short-row, split-row) exist for the first FSM_NUM_PLAIN_OPS: softmax and
 * log_softmax without scale; the family kernels (end of this file) for all. */
enum {
    FSM_OP_SOFTMAX = 0,
    FSM_OP_LOG_SOFTMAX = 1,
    FSM_OP_LOGSUMEXP = 2,
    FSM_OP_SOFTMAX_BACKWARD = 3,
    FSM_OP_LOG_SOFTMAX_BACKWARD = 4,
    FSM_OP_CROSS_ENTROPY = 5,
    FSM_NUM_OPS = 6,
    FSM_NUM_PLAIN_OPS = 2
};

/* Scratch needed by a column kernel for `lanes` lanes. */
#define FSM_COLS_WORK_DOUBLES(lanes) (7 * (size_t)(lanes))

typedef void (*fsm_row_f32_fn)(const float *x, float *y, size_t n, int stream);
typedef void (*fsm_row_f64_fn)(const double *x, double *y, size_t n, int stream);
#define FSM_ROW_GROUP 8
typedef void (*fsm_rows_f32_fn)(const float *const *x, float *const *y, size_t n, size_t count);
typedef void (*fsm_rows_f64_fn)(const double *const *x, double *const *y, size_t n, size_t count);
/* Rows per short-row kernel call (the lanes of its column kernel). */
#define FSM_SHORT_ROW_LANES 64
#define FSM_SHORT_ROWS_WORK_DOUBLES FSM_COLS_WORK_DOUBLES(FSM_SHORT_ROW_LANES)
typedef void (*fsm_short_f32_fn)(const float *const *x, float *const *y, size_t n, size_t count, float *buf,
                                 double *work);
typedef void (*fsm_short_f64_fn)(const double *const *x, double *const *y, size_t n, size_t count,
                                 double *buf, double *work);
/* Short-row transposes: rows x[0 .. count) of n contiguous elements into
 * lanes 0 .. count of buf (element j of row g at buf[j * FSM_SHORT_ROW_LANES
 * + g]), and back. */
typedef void (*fsm_to_lanes_f32_fn)(const float *const *x, size_t n, size_t count, float *buf);
typedef void (*fsm_to_lanes_f64_fn)(const double *const *x, size_t n, size_t count, double *buf);
typedef void (*fsm_from_lanes_f32_fn)(const float *buf, size_t n, size_t count, float *const *y);
typedef void (*fsm_from_lanes_f64_fn)(const double *buf, size_t n, size_t count, double *const *y);
/* y[i] = mask[i] ? x[i] : fill for i < n (the staging of a masked group;
 * y == x allowed). */
typedef void (*fsm_stage_f32_fn)(const float *x, const uint8_t *mask, float *y, size_t n, float fill);
typedef void (*fsm_stage_f64_fn)(const double *x, const uint8_t *mask, double *y, size_t n, double fill);
/* The staging of a masked tile of lanes: y[i * y_step + j] = mask[i *
 * mask_step + j] ? x[i * x_step + j] : fill for i < n, j < lanes (y == x with
 * the same step allowed). */
typedef void (*fsm_stage_lanes_f32_fn)(const float *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step,
                                       float *y, ptrdiff_t y_step, size_t n, size_t lanes, float fill);
typedef void (*fsm_stage_lanes_f64_fn)(const double *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step,
                                       double *y, ptrdiff_t y_step, size_t n, size_t lanes, double fill);
/* Masked plain rows: the row kernel of softmax or log_softmax on
 * x[i] where mask[i], -inf elsewhere (staged in scratch, n elements
 * overlapping nothing else or y itself), bit-identical to it on the staged
 * row; y == x allowed. */
typedef void (*fsm_masked_row_f32_fn)(const float *x, const uint8_t *mask, float *y, size_t n, float *scratch);
typedef void (*fsm_masked_row_f64_fn)(const double *x, const uint8_t *mask, double *y, size_t n,
                                      double *scratch);
/* Masked short rows: the short-row kernel of softmax or log_softmax on rows
 * x[g] with the entries where mask[g][j] == 0 taken as -inf (every row of
 * x, y and mask contiguous, with the short-row kernel's rules for x, y and
 * buf), bit-identical to it on such staged rows; a row that comes out NaN
 * has its masked-out entries 0 (log_softmax: -inf). */
typedef void (*fsm_masked_short_f32_fn)(const float *const *x, const uint8_t *const *mask, float *const *y,
                                        size_t n, size_t count, float *buf, double *work);
typedef void (*fsm_masked_short_f64_fn)(const double *const *x, const uint8_t *const *mask, double *const *y,
                                        size_t n, size_t count, double *buf, double *work);
typedef void (*fsm_cols_f32_fn)(const float *x, ptrdiff_t x_step, float *y, ptrdiff_t y_step,
                                size_t n, size_t lanes, double *work);
typedef void (*fsm_cols_f64_fn)(const double *x, ptrdiff_t x_step, double *y, ptrdiff_t y_step,
                                size_t n, size_t lanes, double *work);
/* Masked plain columns: the column kernel of softmax or log_softmax on x
 * staged in y by its max pass (x where mask[i * mask_step + j], -inf
 * elsewhere; the mask contiguous along the lanes), bit-identical to it on
 * the staged tile; x and y overlap nowhere, or y == x with the same step. */
typedef void (*fsm_masked_cols_f32_fn)(const float *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step,
                                       float *y, ptrdiff_t y_step, size_t n, size_t lanes, double *work);
typedef void (*fsm_masked_cols_f64_fn)(const double *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step,
                                       double *y, ptrdiff_t y_step, size_t n, size_t lanes, double *work);

/* Pieces of the row kernels, for a row split across threads.  With
 * m the row maximum (from rmax over every chunk) and chunks that start at
 * multiples of FSM_SUM_BLOCK elements of the row:
 *   rblocks[op](x, y, n, m, sums, ties): for each block of FSM_SUM_BLOCK
 *     elements (the last may be short), sums[b] = the sum of
 *     exp(x - m) * 2^B in T, in the row kernel's order; softmax also stores
 *     those exps in y; log_softmax leaves the terms with x == m out of
 *     sums[b] and counts them in ties[b] (ties unused for softmax).
 *   finish[op](x, y, n, m, c): softmax y /= c (c = the folded total);
 *     log_softmax y = (x - m) - c (c = log(total), from log_total).
 *   log_total(rest, ties, m): fsm_log_total_* (exp_minus_max.h) compiled
 *     with this variant's flags, as the row kernel computes it (compiled
 *     elsewhere, its multiply-adds may be fused differently: the last bit
 *     of log(total) then depends on where it was computed).
 * Folding the block sums in order with fsm_neumaier_add gives the total the
 * row kernel computes, so split rows are bit-identical to unsplit ones. */
#define FSM_SUM_BLOCK 256
/* Bytes per cache line: where the in-cache passes over rows of at least
 * FSM_ALIGN_MIN_BYTES start their vector loops. */
#define FSM_CACHE_LINE 64
#define FSM_ALIGN_MIN_BYTES 4096

typedef float (*fsm_rmax_f32_fn)(const float *x, size_t n);
typedef double (*fsm_rmax_f64_fn)(const double *x, size_t n);
typedef void (*fsm_rblocks_f32_fn)(const float *x, float *y, size_t n, float m, float *sums, float *ties);
typedef void (*fsm_rblocks_f64_fn)(const double *x, double *y, size_t n, double m, double *sums, double *ties);
typedef void (*fsm_finish_f32_fn)(const float *x, float *y, size_t n, float m, double c);
typedef void (*fsm_finish_f64_fn)(const double *x, double *y, size_t n, double m, double c);
typedef float (*fsm_log_total_f32_fn)(double rest, double ties, float m);
typedef double (*fsm_log_total_f64_fn)(double rest, double ties, double m);

/* (sum, comp) += v with Neumaier's compensated summation. */
static inline void fsm_neumaier_add(double *sum, double *comp, double v) {
    double s = *sum + v;
    *comp += fabs(*sum) >= fabs(v) ? (*sum - s) + v : (v - s) + *sum;
    *sum = s;
}

/* The compensated sum of (sum, comp); an infinite sum as it is (its
 * compensation is NaN, IEEE's sum is not). */
static inline double fsm_compensated_total(double sum, double comp) { return isfinite(sum) ? sum + comp : sum; }

/* --- family kernels: every op, scaled softmaxes included ---------------------
 *
 *   op                    x        b         y (n per group)          group_out
 *   SOFTMAX               x        -         softmax(x * scale)       -
 *   LOG_SOFTMAX           x        -         log_softmax(x * scale)   -
 *   LOGSUMEXP             x        -         -                        logsumexp(x)
 *                         x        weights   -                        log|sum(b exp(x))|, sign
 *   SOFTMAX_BACKWARD      grad     y         y * (grad - sum(grad*y)) -
 *   LOG_SOFTMAX_BACKWARD  grad     y         grad - exp(y) * sum(grad) -
 *   CROSS_ENTROPY         logits   probs or  d loss / d logits, or    loss
 *                                  NULL      NULL (no gradient)
 *
 * scale = scale_hi + scale_lo (a double-double: 1/T or ln b; 1 for the ops
 * other than the softmaxes), with scale and ln 2 / scale normal numbers of
 * T with room to spare (2^-100 <= |scale| <= 2^100 for float, 2^-1000 ..
 * 2^1000 for double: the callers' temperature range); exp_step_hi +
 * exp_step_lo = ln 2 / scale (a double-double).  For scale < 0 the
 * reference point is the group minimum, so that (x - m) * scale <= 0.
 * Special values as for the plain kernels: a NaN, or +inf of x * scale,
 * makes a group NaN (logsumexp: NaN, else +inf for a +inf; -inf for a group
 * all -inf).  Masks never reach a kernel: the driver writes y = mask ? x :
 * -inf * sign(scale) first and runs the kernel on y in place.
 *
 * cross entropy: the class index target (0 <= t < n, checked by the caller)
 * when b is NULL, else the probabilities in b; the target distribution is
 * q = (1 - smoothing) * target + smoothing / n.  The loss of a group is
 * sum(q * (log(sum(exp(x))) - x)) over the entries with q != 0, each term
 * >= 0 (no cancellation); the gradient is (softmax(x) - q) * grad_scale.
 * y may be x or b (in place) except for CROSS_ENTROPY, whose y overlaps
 * neither (it holds the exps while x and b are still read).
 *
 * Weighted logsumexp (b not NULL): an entry with b == 0 takes no part,
 * whatever its x; the result is log|total| of total = sum(b * exp(x)), and
 * the kernel also writes the sign of the total (+1, -1; 0 for a zero total,
 * whose log is -inf; NaN for a NaN result).  A group has FSM_GROUP_RESULTS
 * values in group_out, in blocks of `lanes` (1 for a row kernel): block 0
 * the result of each lane, block 1 the sign (weighted logsumexp only).
 * Accuracy: the terms are summed as the unweighted ones, the weights of the
 * entries equal to the maximum apart; with positive weights the result is
 * within a few ulp; with weights of both signs, the error of the total is
 * within a few ulp of the sum of |terms| (cancellation is the caller's).
 *
 * Row kernels  fsm_<op>_frow_<dtype>_<variant>(x, y, b, n, params, target, group_out)
 *   one contiguous group of n >= 1 elements; writes y[0..n) (when the op
 *   has y) and group_out[0..FSM_GROUP_RESULTS(1)) (when it has one).
 * Row-group kernels  fsm_<op>_frows_<dtype>_<variant>(x, y, b, n, count, params, targets, group_out)
 *   the row kernel on count <= FSM_ROW_GROUP contiguous groups at once
 *   (x[g], y[g], b[g], targets[g], group_out[g] as the row kernel's; y, b,
 *   targets and group_out NULL where the op has none), bit-identical to it;
 *   for the ops with a per-row division or log of the total (softmax,
 *   log_softmax, logsumexp, cross entropy), NULL for the backward passes.
 * Lane kernels  fsm_<op>_flanes_<dtype>_<variant>(x, x_step, y, y_step, b, b_step,
 *                                                 n, lanes, params, target, group_out, work)
 *   `lanes` groups side by side as in the column kernels; target[j] and
 *   group_out[k * lanes + j] for lane j; work: FSM_FAMILY_WORK_DOUBLES(lanes)
 *   doubles of scratch. */
typedef struct {
    double scale_hi, scale_lo;       /* the softmaxes' scale; 1, 0 otherwise */
    double exp_step_hi, exp_step_lo; /* ln 2 / scale */
    double smoothing, grad_scale;    /* cross entropy */
} fsm_params;

#define FSM_FAMILY_WORK_DOUBLES(lanes) (10 * (size_t)(lanes))
/* Values per group a family kernel may write to group_out: result, sign. */
#define FSM_GROUP_RESULTS(lanes) (2 * (size_t)(lanes))

typedef void (*fsm_frow_f32_fn)(const float *x, float *y, const float *b, size_t n, const fsm_params *prm,
                                int64_t target, double *group_out);
typedef void (*fsm_frow_f64_fn)(const double *x, double *y, const double *b, size_t n, const fsm_params *prm,
                                int64_t target, double *group_out);
typedef void (*fsm_frows_f32_fn)(const float *const *x, float *const *y, const float *const *b, size_t n,
                                 size_t count, const fsm_params *prm, const int64_t *targets,
                                 double *const *group_out);
typedef void (*fsm_frows_f64_fn)(const double *const *x, double *const *y, const double *const *b, size_t n,
                                 size_t count, const fsm_params *prm, const int64_t *targets,
                                 double *const *group_out);
typedef void (*fsm_flanes_f32_fn)(const float *x, ptrdiff_t x_step, float *y, ptrdiff_t y_step, const float *b,
                                  ptrdiff_t b_step, size_t n, size_t lanes, const fsm_params *prm,
                                  const int64_t *target, double *group_out, double *work);
typedef void (*fsm_flanes_f64_fn)(const double *x, ptrdiff_t x_step, double *y, ptrdiff_t y_step,
                                  const double *b, ptrdiff_t b_step, size_t n, size_t lanes,
                                  const fsm_params *prm, const int64_t *target, double *group_out,
                                  double *work);
/* Scaled short-row kernels  fsm_<op>_fshort_<dtype>_<variant>(x, y, n, count, params, buf, work)
 *   the lane kernel of softmax or log_softmax on count <= FSM_SHORT_ROW_LANES
 *   contiguous short rows, as the plain short-row kernels run the column
 *   kernel (same rules for x, y and buf); work: FSM_FAMILY_WORK_DOUBLES(count)
 *   doubles.  Bit-identical to the lane kernel on the transposed rows. */
typedef void (*fsm_fshort_f32_fn)(const float *const *x, float *const *y, size_t n, size_t count,
                                  const fsm_params *prm, float *buf, double *work);
typedef void (*fsm_fshort_f64_fn)(const double *const *x, double *const *y, size_t n, size_t count,
                                  const fsm_params *prm, double *buf, double *work);

/* Cross-entropy short-row kernels  fsm_cross_entropy_xshort_<dtype>_<variant>(x, grad, q, n, count, params,
 *                                      targets, loss, x_lanes, q_lanes, exp_lanes, work)
 *   the lane kernel of cross entropy on count <= FSM_SHORT_ROW_LANES groups
 *   whose rows are contiguous: x[g], grad[g] (grad NULL without gradient)
 *   and q[g] (q NULL for index targets, then targets[g]) of n elements;
 *   loss[g] the group's loss.  x_lanes, q_lanes, exp_lanes: three scratch
 *   buffers of n * FSM_SHORT_ROW_LANES elements overlapping no row; work:
 *   FSM_FAMILY_WORK_DOUBLES(count) doubles.  Bit-identical to the lane
 *   kernel on the transposed rows. */
typedef void (*fsm_xshort_f32_fn)(const float *const *x, float *const *grad, const float *const *q, size_t n,
                                  size_t count, const fsm_params *prm, const int64_t *targets, double *loss,
                                  float *x_lanes, float *q_lanes, float *exp_lanes, double *work);
typedef void (*fsm_xshort_f64_fn)(const double *const *x, double *const *grad, const double *const *q, size_t n,
                                  size_t count, const fsm_params *prm, const int64_t *targets, double *loss,
                                  double *x_lanes, double *q_lanes, double *exp_lanes, double *work);

/* --- split rows: one long group cut across threads -------------------------
 * The split-row plan cuts a contiguous group of n elements at multiples of
 * FSM_SUM_BLOCK into one chunk [begin, end) per thread.  x, y and b point at
 * the whole group (y NULL where the op has none), target is its class index.
 * Per op, in the order the driver calls them (a team barrier between steps):
 *   ref(x, n, prm): the reference point of a chunk of n elements: the
 *     maximum, or the minimum for a negative scale, NaN passed over; NULL for
 *     the ops without one (the backward passes).  The group's m is the
 *     maximum (minimum) of its chunks'.
 *   blocks(x, y, b, n, begin, end, m, prm, target, sums): the chunk's block
 *     sums, FSM_SPLIT_SUMS doubles for block k of the group at
 *     sums[k * FSM_SPLIT_SUMS]; may write y[begin, end).
 *   fold(x, b, n, m, prm, target, sums, group_out): on one thread: the group's
 *     block sums folded in block order; writes group_out[0 ..
 *     FSM_GROUP_RESULTS(1)) as the row kernel does, and returns c, what
 *     finish takes (the total, or its log).
 *   finish(x, y, b, n, begin, end, m, prm, target, c): y[begin, end), called
 *     when y is not NULL; NULL for logsumexp, whose y only stages a mask.
 * Each step runs the row kernel's own block functions (the plain row kernel
 * for plain softmax and log_softmax, frow for the others), so a split group
 * is bit-identical to an unsplit one.  Not split: a mask without a y to
 * stage it in. */
#define FSM_SPLIT_SUMS 5
#define FSM_DECLARE_SPLIT(T, sfx)                                                                              \
    typedef struct {                                                                                         \
        T (*ref)(const T *x, size_t n, const fsm_params *prm);                                               \
        void (*blocks)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,                \
                       const fsm_params *prm, int64_t target, double *sums);                                 \
        double (*fold)(const T *x, const T *b, size_t n, T m, const fsm_params *prm, int64_t target,         \
                       const double *sums, double *group_out);                                               \
        void (*finish)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,                \
                       const fsm_params *prm, int64_t target, double c);                                     \
    } fsm_split_##sfx;
FSM_DECLARE_SPLIT(float, f32)
FSM_DECLARE_SPLIT(double, f64)
#undef FSM_DECLARE_SPLIT
/* Half-precision conversions of n contiguous elements, by type
 * (convert.inc.c): widen[h] to float32, exact; narrow[h] from float32,
 * rounded to nearest even (half_convert.h). */
enum { FSM_HALF_F16 = 0, FSM_HALF_BF16 = 1, FSM_NUM_HALF_TYPES = 2 };
typedef void (*fsm_widen_fn)(const uint16_t *src, float *dst, size_t n);
typedef void (*fsm_narrow_fn)(const float *src, uint16_t *dst, size_t n);

typedef struct {
    const char *name;
    fsm_row_f32_fn row_f32[FSM_NUM_PLAIN_OPS];
    fsm_row_f64_fn row_f64[FSM_NUM_PLAIN_OPS];
    fsm_rows_f32_fn rows_f32[FSM_NUM_PLAIN_OPS];
    fsm_rows_f64_fn rows_f64[FSM_NUM_PLAIN_OPS];
    fsm_cols_f32_fn cols_f32[FSM_NUM_PLAIN_OPS];
    fsm_cols_f64_fn cols_f64[FSM_NUM_PLAIN_OPS];
    fsm_short_f32_fn short_f32[FSM_NUM_PLAIN_OPS];
    fsm_short_f64_fn short_f64[FSM_NUM_PLAIN_OPS];
    fsm_to_lanes_f32_fn to_lanes_f32;
    fsm_to_lanes_f64_fn to_lanes_f64;
    fsm_from_lanes_f32_fn from_lanes_f32;
    fsm_from_lanes_f64_fn from_lanes_f64;
    fsm_stage_f32_fn stage_f32;
    fsm_stage_f64_fn stage_f64;
    fsm_stage_lanes_f32_fn stage_lanes_f32;
    fsm_stage_lanes_f64_fn stage_lanes_f64;
    fsm_masked_row_f32_fn masked_row_f32[FSM_NUM_PLAIN_OPS];
    fsm_masked_row_f64_fn masked_row_f64[FSM_NUM_PLAIN_OPS];
    fsm_masked_short_f32_fn masked_short_f32[FSM_NUM_PLAIN_OPS];
    fsm_masked_short_f64_fn masked_short_f64[FSM_NUM_PLAIN_OPS];
    fsm_masked_cols_f32_fn masked_cols_f32[FSM_NUM_PLAIN_OPS];
    fsm_masked_cols_f64_fn masked_cols_f64[FSM_NUM_PLAIN_OPS];
    fsm_rmax_f32_fn rmax_f32;
    fsm_rmax_f64_fn rmax_f64;
    fsm_rblocks_f32_fn rblocks_f32[FSM_NUM_PLAIN_OPS];
    fsm_rblocks_f64_fn rblocks_f64[FSM_NUM_PLAIN_OPS];
    fsm_finish_f32_fn finish_f32[FSM_NUM_PLAIN_OPS];
    fsm_finish_f64_fn finish_f64[FSM_NUM_PLAIN_OPS];
    fsm_log_total_f32_fn log_total_f32;
    fsm_log_total_f64_fn log_total_f64;
    void (*stream_fence)(void); /* orders this thread's non-temporal stores */
    fsm_frow_f32_fn frow_f32[FSM_NUM_OPS];
    fsm_frow_f64_fn frow_f64[FSM_NUM_OPS];
    fsm_frows_f32_fn frows_f32[FSM_NUM_OPS];
    fsm_frows_f64_fn frows_f64[FSM_NUM_OPS];
    fsm_flanes_f32_fn flanes_f32[FSM_NUM_OPS];
    fsm_flanes_f64_fn flanes_f64[FSM_NUM_OPS];
    fsm_fshort_f32_fn fshort_f32[FSM_NUM_PLAIN_OPS]; /* scaled softmax, log_softmax */
    fsm_fshort_f64_fn fshort_f64[FSM_NUM_PLAIN_OPS];
    fsm_xshort_f32_fn xshort_f32; /* cross entropy */
    fsm_xshort_f64_fn xshort_f64;
    fsm_split_f32 split_f32[FSM_NUM_PLAIN_OPS]; /* plain softmax, log_softmax */
    fsm_split_f64 split_f64[FSM_NUM_PLAIN_OPS];
    fsm_split_f32 fsplit_f32[FSM_NUM_OPS];      /* every op, scaled softmaxes included */
    fsm_split_f64 fsplit_f64[FSM_NUM_OPS];
    fsm_widen_fn widen[FSM_NUM_HALF_TYPES];
    fsm_narrow_fn narrow[FSM_NUM_HALF_TYPES];
} fsm_kernel_table;

/* One table per variant, defined by variant.c compiled with FSM_VARIANT=<name>. */
extern const fsm_kernel_table fsm_kernels_scalar;   /* not vectorised: the reference */
extern const fsm_kernel_table fsm_kernels_baseline; /* SSE2 on x86-64, NEON on aarch64 */
#if defined(__x86_64__) || defined(_M_X64)
extern const fsm_kernel_table fsm_kernels_avx2;     /* AVX2 + FMA + F16C */
extern const fsm_kernel_table fsm_kernels_avx512;   /* AVX-512 F/DQ/BW/VL, 512-bit vectors */
#endif

#endif
