/*
 * The rest of the softmax family: one row at a time, on rows laid out as a
 * matrix (the Python layer moves the reduction axis last and makes each row
 * contiguous; rows may be any number of elements apart, including 0 for an
 * argument broadcast across rows).
 *
 * Row kernels  fsm_<op>_family_<dtype>_<variant>(p, r) compute row r of the
 * problem p.  They read row r of p->a (and of p->b, p->mask, p->target when
 * set) and write row r of p->out (and p->row_out[r]); nothing else.  No
 * allocation.  p->out may be p->a or p->b itself (same rows: in place),
 * except for CROSS_ENTROPY, whose out must overlap neither (it holds the
 * exps while the row's logits and target are still read); any other
 * overlap is not allowed.  n >= 1.
 *
 *   op                   a        b        out (row of n)           row_out[r]
 *   SCALED_SOFTMAX       x        -        softmax(x * scale)       -
 *   SCALED_LOG_SOFTMAX   x        -        log_softmax(x * scale)   -
 *   LOGSUMEXP            x        -        (unused)                 logsumexp(x)
 *   SOFTMAX_BACKWARD     grad     y        y * (grad - sum(grad*y)) -
 *   LOG_SOFTMAX_BACKWARD grad     y        grad - exp(y) * sum(grad) -
 *   CROSS_ENTROPY        logits   target   d loss / d logits        loss
 *                                 probs    (only when out != NULL)
 *                                 or NULL
 *
 * scale = scale_hi + scale_lo (a double-double: 1/T or ln b), non-zero and
 * finite; exp_step_hi + exp_step_lo = ln 2 / scale (a double-double) when
 * 2^-60 <= |scale| <= 2^60, else 0 (the kernels then reduce exp's argument
 * without it).  For scale < 0 the reference point is the row minimum, so that
 * (x - m) * scale <= 0.  When mask is set, entries with mask 0 are left out
 * of every max and sum and come out as 0 (log_softmax: -inf); a row with no
 * entry left gives 0 / -inf / logsumexp -inf.  Without a mask, the special
 * values of kernels.h apply (a NaN, or +inf of x * scale, makes a row NaN).
 *
 * cross entropy: target class index target[r] (0 <= t < n, checked by the
 * caller) when target != NULL, else the probabilities in b; the target
 * distribution is (1 - smoothing) * target + smoothing / n.  The loss of a
 * row is sum(q * (log(sum(exp(x))) - x)) over the entries with q != 0; the
 * gradient is (softmax(x) - q) * grad_scale.
 */
#ifndef FSM_FAMILY_H
#define FSM_FAMILY_H

#include <stddef.h>
#include <stdint.h>

#include "../fsm_inline.h"

enum {
    FSM_FAM_SCALED_SOFTMAX = 0,
    FSM_FAM_SCALED_LOG_SOFTMAX = 1,
    FSM_FAM_LOGSUMEXP = 2,
    FSM_FAM_SOFTMAX_BACKWARD = 3,
    FSM_FAM_LOG_SOFTMAX_BACKWARD = 4,
    FSM_FAM_CROSS_ENTROPY = 5,
    FSM_FAM_NUM_OPS = 6
};

typedef struct {
    int op, is_f64;
    ptrdiff_t rows, n;              /* n >= 1 */
    const void *a;                  /* rows of n elements, a_step elements apart */
    const void *b;                  /* likewise, or NULL */
    const uint8_t *mask;            /* likewise (0 / 1 bytes), or NULL */
    const int64_t *target;          /* one class index per row, or NULL */
    void *out;                      /* rows of n elements, or NULL */
    double *row_out;                /* one value per row, or NULL */
    ptrdiff_t a_step, b_step, mask_step, out_step;
    double scale_hi, scale_lo;      /* the scaled softmaxes */
    double exp_step_hi, exp_step_lo;
    double smoothing, grad_scale;   /* cross entropy */
} fsm_family_problem;

/* 1 when some byte of mask[0..n) is non-zero. */
static inline int fsm_any_kept(const uint8_t *mask, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (mask[i]) return 1;
    return 0;
}

typedef void (*fsm_family_row_fn)(const fsm_family_problem *p, ptrdiff_t r);

#endif
