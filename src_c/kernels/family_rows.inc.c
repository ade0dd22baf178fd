/*
 * Row kernels of the softmax family (contracts: family.h), instantiated per
 * dtype by variant.c after softmax_rows.inc.c, whose primitives they reuse
 * (block_end, sum_chains, quotient), with
 *   SCALED_EXP_HILO  fsm_scaled_exp_hilo_f32 / _f64
 *   FMA_T            fmaf / fma (used only when the variant has FMA)
 *   EXP_SCALE        2^B of exp_minus_max.h, EXP_UNSCALE its inverse
 * The per-row bodies take their options (scaled, masked, log) as constants
 * and are always inlined, so each combination compiles to its own loops.
 */

/* Error of the product p = fl(a * b): a * b == p + err exactly. */
static inline T K(two_prod_err)(T a, T b, T p) {
#if FSM_HAS_FMA
    return FMA_T(a, b, -p);
#else
    /* Veltkamp's split into halves whose products are exact. */
    const T split = sizeof(T) == sizeof(float) ? (T)4097.0 : (T)134217729.0;
    T ca = split * a, ah = ca - (ca - a), al = a - ah;
    T cb = split * b, bh = cb - (cb - b), bl = b - bh;
    return ((ah * bh - p) + ah * bl + al * bh) + al * bl;
#endif
}

/* z = (x - m) * s, returned as z + *z_lo with both x - m and the product
 * carried exactly, so exp(z) keeps its accuracy for large |z| whatever s is
 * (s = s_hi + s_lo).  *z_lo is NaN when x - m is infinite. */
static inline T K(scaled_diff)(T x, T m, T s_hi, T s_lo, T *z_lo) {
    T bb, d = x - m;
    T d_lo = FSM_TWO_SUM_ERR(x, -m, d, bb);
    T z = d * s_hi;
    *z_lo = K(two_prod_err)(d, s_hi, z) + (d * s_lo + d_lo * s_hi);
    return z;
}

/* The scale s of exp's argument in T: s = s_hi + s_lo, and, for
 * FSM_SCALED_STEP, ln 2 / s = c_hi + c_lo with c_hi short enough that
 * n * c_hi is exact for every n a non-flushed exp can have. */
typedef struct {
    T s_hi, s_lo, c_hi, c_lo;
} K(scaling);

#ifndef FSM_UNSCALED_DEFINED
#define FSM_UNSCALED_DEFINED
enum { FSM_UNSCALED = 0, FSM_SCALED = 1, FSM_SCALED_STEP = 2 };
#endif

/* v with the low `bits` bits of its significand cleared. */
static inline T K(shorten)(T v, int bits) {
    if (sizeof(T) == sizeof(float)) return fsm_f32_from_bits(fsm_f32_bits((float)v) & ~((1u << bits) - 1u));
    return (T)fsm_f64_from_bits(fsm_f64_bits((double)v) & ~((1ull << bits) - 1ull));
}

/* The scaling of a problem in T (FSM_SCALED_STEP when p has the step). */
static inline K(scaling) K(scaling_of)(const fsm_family_problem *p) {
    K(scaling) sc;
    sc.s_hi = (T)p->scale_hi;
    sc.s_lo = (T)((p->scale_hi - (double)sc.s_hi) + p->scale_lo);
    /* |n| < 2^8 (float) or 2^11 (double) */
    sc.c_hi = K(shorten)((T)p->exp_step_hi, sizeof(T) == sizeof(float) ? 8 : 12);
    sc.c_lo = (T)((p->exp_step_hi - (double)sc.c_hi) + p->exp_step_lo);
    return sc;
}

/* exp((x - m) * s) * 2^B, or exp(x - m) * 2^B when FSM_UNSCALED; when
 * want_z, also *z = (x - m) * s rounded (log_softmax's output before the
 * log of the total; -inf stays -inf). */
static FSM_ALWAYS_INLINE T K(fam_exp)(T x, T m, const K(scaling) *sc, int scaled, int want_z, T *z) {
    if (scaled == FSM_UNSCALED) return SCALED_EXP(x, m);
#if FSM_HAS_FMA
    T s_hi = sc->s_hi, s_lo = sc->s_lo;
    T bb, d = x - m;
    T d_lo = FSM_TWO_SUM_ERR(x, -m, d, bb);
    T n, k = EXP_ROUND_PRODUCT(d, s_hi * (T)LOG2E, &n), r;
    T correction = d * s_lo + d_lo * s_hi; /* the low part of d * s */
    if (scaled == FSM_SCALED_STEP) {
        /* r = (d - n ln2/s) s: d - n c_hi is exact (n c_hi is, and it
         * nearly cancels d), so only the small remainder is multiplied by s
         * and rounded: one operation more than the unscaled exp.  s_lo is
         * left out: its term is below 2^-24 |r| (|r| <= ln2/2). */
        T head = FMA_T(-n, sc->c_hi, d), tail = FMA_T(-n, sc->c_lo, d_lo);
        r = FMA_T(head, s_hi, tail * s_hi);
    } else {
        /* The product d * s_hi enters the reduction r = d s - n ln2 inside
         * one FMA: exact, since n * LN2_HI is exact and r is small. */
        r = FMA_T(d, s_hi, -(n * LN2_HI)) - n * LN2_LO + correction;
    }
    if (want_z) {
        T t = d * s_hi;
        T t_lo = FMA_T(d, s_hi, -t) + correction;
        *z = t + (t_lo == t_lo ? t_lo : (T)0); /* t = -inf: no NaN from t_lo */
    }
    return EXP_JOIN(k, r, n < EXP_LOWEST_N);
#else
    T z_lo, z_hi = K(scaled_diff)(x, m, sc->s_hi, sc->s_lo, &z_lo);
    if (want_z) *z = z_hi + (z_lo == z_lo ? z_lo : (T)0);
    return SCALED_EXP_HILO(z_hi, z_lo);
#endif
}

/* keep[i] = 1 or 0 as mask[i] is set or not, in T: the sum loops then run on
 * T lanes only (mixing byte and float lanes vectorises poorly). */
static inline void K(widen_mask)(const uint8_t *mask, T *keep, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) keep[i] = mask[i] != 0 ? (T)1 : (T)0;
}

/* sign * max(sign * x) over the kept entries (mask != 0, or all when not
 * masked): the row maximum for sign = 1, the minimum for sign = -1.  NaN
 * entries are passed over (they make the row NaN later); -sign * inf when
 * nothing is kept. */
static FSM_ALWAYS_INLINE T K(rmax_signed)(const T *x, const uint8_t *mask, size_t n, T sign, int masked) {
    if (!masked && sign > 0) return K(rmax)(x, n);
    T acc[FSM_MAX_CHAINS];
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = -(T)INFINITY;
    size_t i = 0;
    for (; i + FSM_MAX_CHAINS <= n; i += FSM_MAX_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) {
            T v = masked && !mask[i + j] ? -(T)INFINITY : sign * x[i + j];
            acc[j] = v > acc[j] ? v : acc[j];
        }
    }
    T m = K(fold_maxima)(acc);
    for (; i < n; ++i) {
        T v = masked && !mask[i] ? -(T)INFINITY : sign * x[i];
        m = v > m ? v : m;
    }
    return sign * m;
}

#ifndef FSM_STORE_NOTHING_DEFINED
#define FSM_STORE_NOTHING_DEFINED
enum { FSM_STORE_NOTHING = 0, FSM_STORE_EXP = 1, FSM_STORE_Z = 2 };
#endif

/* One element of a sum block: e = exp((x - m) s) * 2^B (0 when keep is 0),
 * stored when `store`; added to *rest unless x == m, which counts as a tie
 * (exactly 1 unscaled) as in block_exp_rest. */
static FSM_ALWAYS_INLINE void K(fam_term)(const T *x, T keep, T *y, size_t i, T m, const K(scaling) *sc,
                                          int scaled, int store, int split_ties, T *rest, T *ties) {
    T xi = x[i], z; /* read before y[i] is written: y may be x */
    T e = K(fam_exp)(xi, m, sc, scaled, store == FSM_STORE_Z, &z);
    e = keep != 0 ? e : (T)0; /* a select: drops the NaN of a masked entry */
    if (store == FSM_STORE_EXP) y[i] = e;
    if (store == FSM_STORE_Z) y[i] = z;
    if (!split_ties) {
        *rest += e;
        return;
    }
    T tie = xi == m ? keep : (T)0;
    *rest += e * ((T)1 - tie);
    *ties += tie;
}

/* Over the row in sum blocks: *rest = the sum of the scaled exps of the kept
 * entries with x != m, *ties = the number of kept entries with x == m; or,
 * without split_ties (softmax needs only the total), *rest = the sum of all
 * and *ties = 0. */
static FSM_ALWAYS_INLINE void K(fam_sums)(const T *x, const uint8_t *mask, T *y, size_t n, T m,
                                          const K(scaling) *sc, int scaled, int masked, int store, int split_ties,
                                          double *rest, double *ties) {
    double sum = 0.0, comp = 0.0, tie_total = 0.0;
    T keep[FSM_SUM_BLOCK];
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t end = K(block_end)(start, n), i = start;
        T acc[FSM_SUM_CHAINS] = {0}, tie_acc[FSM_SUM_CHAINS] = {0};
        if (masked) K(widen_mask)(mask + start, keep, end - start);
        for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {
#pragma omp simd
            for (size_t j = 0; j < FSM_SUM_CHAINS; ++j)
                K(fam_term)(x, masked ? keep[i + j - start] : (T)1, y, i + j, m, sc, scaled, store,
                            split_ties, &acc[j], &tie_acc[j]);
        }
        for (size_t j = 0; i + j < end; ++j)
            K(fam_term)(x, masked ? keep[i + j - start] : (T)1, y, i + j, m, sc, scaled, store,
                        split_ties, &acc[j], &tie_acc[j]);
        fsm_neumaier_add(&sum, &comp, K(sum_chains)(acc));
        tie_total += K(sum_chains)(tie_acc);
    }
    *rest = sum + comp;
    *ties = tie_total;
}

/* softmax / log_softmax of x * s, s != 1, into y (y == x allowed), in the
 * passes of the plain row kernels, from m = the row's maximum (s > 0) or
 * minimum (s < 0); `scaled` is FSM_SCALED or FSM_SCALED_STEP. */
static FSM_ALWAYS_INLINE void K(scaled_softmax_row)(const T *x, T *y, size_t n, T m, const K(scaling) *sc,
                                                    int scaled, int log) {
    double rest, ties;
    if (log) {
        K(fam_sums)(x, NULL, y, n, m, sc, scaled, 0, FSM_STORE_Z, 1, &rest, &ties);
        T c = LOG_TOTAL(rest, ties, m);
#pragma omp simd
        for (size_t i = 0; i < n; ++i) y[i] -= c; /* c >= 0 and y <= 0: no cancellation */
    } else {
        K(fam_sums)(x, NULL, y, n, m, sc, scaled, 0, FSM_STORE_EXP, 0, &rest, &ties);
        K(vnormalize)(y, y, n, rest);
    }
}

/* Elements per step of substitute_masked_max.  GCC 12 on AVX-512 turns
 * 32 into 256-bit float vectors (faster here than the 512-bit ones 64
 * gives: benchmarks/ab_calls.py family) but leaves 32 doubles scalar. */
#define FSM_MASK_MAX_STEP (sizeof(T) == sizeof(float) ? FSM_MAX_CHAINS : 2 * FSM_MAX_CHAINS)

/* y[i] = x[i] where mask[i] is set, else -inf * sign; returns
 * sign * max(sign * y[i]) as rmax_signed does (NaN passed over), in the
 * same pass. */
static T K(substitute_masked_max)(const T *x, const uint8_t *mask, T *y, size_t n, T sign) {
    T fill = -sign * (T)INFINITY, acc[2 * FSM_MAX_CHAINS];
    for (size_t j = 0; j < 2 * FSM_MAX_CHAINS; ++j) acc[j] = -(T)INFINITY;
    size_t i = 0;
    for (; i + FSM_MASK_MAX_STEP <= n; i += FSM_MASK_MAX_STEP) {
#pragma omp simd
        for (size_t j = 0; j < FSM_MASK_MAX_STEP; ++j) {
            T v = x[i + j]; /* read unconditionally: a conditional read becomes a slow masked load */
            v = mask[i + j] ? v : fill;
            y[i + j] = v;
            acc[j] = sign * v > acc[j] ? sign * v : acc[j];
        }
    }
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j)
        acc[j] = acc[j + FSM_MAX_CHAINS] > acc[j] ? acc[j + FSM_MAX_CHAINS] : acc[j];
    T m = K(fold_maxima)(acc);
    for (; i < n; ++i) {
        T v = mask[i] ? x[i] : fill;
        y[i] = v;
        m = sign * v > m ? sign * v : m;
    }
    return sign * m;
}

/* y[i] = `dropped` where mask[i] is clear. */
static void K(drop_masked)(const uint8_t *mask, T *y, size_t n, T dropped) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) y[i] = mask[i] ? y[i] : dropped;
}

/* Rows up to this length are masked into a stack buffer (16 KiB of double
 * at most), longer ones into the output row itself. */
#define FSM_MASK_STAGE_ELEMS 2048

/* Row r of the scaled softmaxes.  A mask is applied by writing x with the
 * dropped entries replaced by -inf * sign (exp gives exactly 0 for them)
 * into a stage row, taking the maximum in the same pass, and running the
 * plain kernel from there: no mask test in the other passes.  Staging on
 * the stack rather than in y keeps that pass in L1 and leaves the first
 * write of y to the kernel (benchmarks/ab_calls.py family).  A bad row (NaN, +inf of
 * x * s, all -inf) comes out all NaN, which y[0] tells. */
static FSM_ALWAYS_INLINE void K(scaled_softmax_family_row)(const fsm_family_problem *p, ptrdiff_t r, int log) {
    const T *x = (const T *)p->a + r * p->a_step;
    T *y = (T *)p->out + r * p->out_step;
    size_t n = (size_t)p->n;
    K(scaling) sc = K(scaling_of)(p);
    T dropped = log ? -(T)INFINITY : (T)0;
    const uint8_t *mask = p->mask == NULL ? NULL : p->mask + r * p->mask_step;
    T sign = sc.s_hi < 0 ? (T)-1 : (T)1, m;
    T stage[FSM_MASK_STAGE_ELEMS]; /* function scope: x may point into it below */
    if (mask != NULL) {
        if (!fsm_any_kept(mask, n)) {
            for (size_t i = 0; i < n; ++i) y[i] = dropped;
            return;
        }
        T *staged = n <= FSM_MASK_STAGE_ELEMS ? stage : y;
        m = K(substitute_masked_max)(x, mask, staged, n, sign);
        x = staged;
    } else {
        m = K(rmax_signed)(x, NULL, n, sign, 0);
    }
    if (FSM_HAS_FMA && p->exp_step_hi != 0.0) K(scaled_softmax_row)(x, y, n, m, &sc, FSM_SCALED_STEP, log);
    else if (p->scale_hi != 1.0 || p->scale_lo != 0.0) K(scaled_softmax_row)(x, y, n, m, &sc, FSM_SCALED, log);
    else if (log) K(log_softmax_row_from_max)(x, y, n, m, 0);
    else K(softmax_row_from_max)(x, y, n, m);
    if (mask != NULL && y[0] != y[0]) K(drop_masked)(mask, y, n, dropped);
}

static void K(scaled_softmax_family)(const fsm_family_problem *p, ptrdiff_t r) {
    K(scaled_softmax_family_row)(p, r, 0);
}

static void K(scaled_log_softmax_family)(const fsm_family_problem *p, ptrdiff_t r) {
    K(scaled_softmax_family_row)(p, r, 1);
}

/* A row whose maximum is +-inf (or that keeps nothing): NaN when a kept
 * entry is NaN, else the maximum (+inf, or -inf: log of an empty sum). */
static T K(lse_of_non_finite)(const T *x, const uint8_t *mask, size_t n, T m) {
    for (size_t i = 0; i < n; ++i)
        if (x[i] != x[i] && (mask == NULL || mask[i])) return x[i];
    return m;
}

static FSM_ALWAYS_INLINE void K(logsumexp_body)(const fsm_family_problem *p, ptrdiff_t r, int masked) {
    const T *x = (const T *)p->a + r * p->a_step;
    const uint8_t *mask = masked ? p->mask + r * p->mask_step : NULL;
    size_t n = (size_t)p->n;
    T m = K(rmax_signed)(x, mask, n, (T)1, masked);
    if (!isfinite(m)) {
        p->row_out[r] = (double)K(lse_of_non_finite)(x, mask, n, m);
        return;
    }
    double rest, ties;
    K(fam_sums)(x, mask, NULL, n, m, NULL, FSM_UNSCALED, masked, 0, 1, &rest, &ties);
    /* in double: for float32 the result is rounded once, by the caller */
    p->row_out[r] = (double)m + (double)LOG_TOTAL(rest, ties, m);
}

static void K(logsumexp_family)(const fsm_family_problem *p, ptrdiff_t r) {
    if (p->mask == NULL) K(logsumexp_body)(p, r, 0);
    else K(logsumexp_body)(p, r, 1);
}

/* sum over i < n of TERM(a, b, i, m, w), in sum blocks of FSM_SUM_CHAINS
 * partial sums in ACC (T, or double where a term may overflow T), folded in
 * double with compensation (as the row sums).  An infinite total is returned
 * as it is: the compensation of inf is NaN, IEEE's sum is not. */
#define FSM_DEFINE_ROW_REDUCTION(name, TERM, ACC)                                                 \
    static double K(name)(const T *a, const T *b, size_t n, T m, double w) {                     \
        double sum = 0.0, comp = 0.0;                                                             \
        (void)b, (void)m, (void)w;                                                                       \
        for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {                               \
            size_t end = K(block_end)(start, n), i = start;                                       \
            ACC acc[FSM_SUM_CHAINS] = {0};                                                        \
            for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {                              \
                _Pragma("omp simd") for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) acc[j] +=         \
                    TERM(a, b, i + j, m, w);                                                         \
            }                                                                                     \
            for (size_t j = 0; i + j < end; ++j) acc[j] += TERM(a, b, i + j, m, w);                  \
            FSM_FOLD_CHAINS(acc);                                                                 \
            fsm_neumaier_add(&sum, &comp, (double)acc[0]);                                        \
        }                                                                                         \
        return isfinite(sum) ? sum + comp : sum;                                                  \
    }

#define FSM_TERM_SUM(a, b, i, m, w) (a)[i]
#define FSM_TERM_DOT(a, b, i, m, w) ((a)[i] * (b)[i])
/* w (m - x), in double: m - x may overflow T, and the sum of the m - x may
 * overflow double where their mean (w = 1 / n) does not */
#define FSM_TERM_GAP(a, b, i, m, w) ((w) * ((double)(m) - (double)(a)[i]))

FSM_DEFINE_ROW_REDUCTION(row_sum, FSM_TERM_SUM, T)
FSM_DEFINE_ROW_REDUCTION(row_dot, FSM_TERM_DOT, T)
FSM_DEFINE_ROW_REDUCTION(row_gap, FSM_TERM_GAP, double)

static void K(softmax_backward_family)(const fsm_family_problem *p, ptrdiff_t r) {
    const T *g = (const T *)p->a + r * p->a_step, *y = (const T *)p->b + r * p->b_step;
    T *out = (T *)p->out + r * p->out_step;
    size_t n = (size_t)p->n;
    T dot = (T)K(row_dot)(g, y, n, 0, 1.0);
#pragma omp simd
    for (size_t i = 0; i < n; ++i) out[i] = y[i] * (g[i] - dot);
}

static void K(log_softmax_backward_family)(const fsm_family_problem *p, ptrdiff_t r) {
    const T *g = (const T *)p->a + r * p->a_step, *y = (const T *)p->b + r * p->b_step;
    T *out = (T *)p->out + r * p->out_step;
    size_t n = (size_t)p->n;
    T total = (T)K(row_sum)(g, NULL, n, 0, 1.0);
#pragma omp simd
    for (size_t i = 0; i < n; ++i) out[i] = g[i] - (SCALED_EXP(y[i], (T)0) * (T)EXP_UNSCALE) * total;
}

/* c + a * b, fused where the variant has FMA: the same rounding in every
 * loop it is inlined into (the loss must not depend on return_grad). */
static inline T K(mul_add)(T a, T b, T c) {
#if FSM_HAS_FMA
    return FMA_T(a, b, c);
#else
    return a * b + c;
#endif
}

/* sum(q) and sum(q (m - x)) over one block in double, chains as in
 * cross_entropy_probs_pass: for a float block whose T sums overflowed (m - x
 * or a sum beyond FLT_MAX) or are NaN. */
static void K(cross_entropy_probs_block_f64)(const T *q, const T *x, size_t start, size_t end, T m,
                                             double *s_block, double *g_block) {
    double s_acc[FSM_SUM_CHAINS] = {0}, g_acc[FSM_SUM_CHAINS] = {0};
    for (size_t i = start; i < end; ++i) {
        size_t j = (i - start) % FSM_SUM_CHAINS;
        s_acc[j] += (double)q[i];
        g_acc[j] = fsm_mul_add((double)q[i], q[i] != 0 ? (double)m - (double)x[i] : 0.0, g_acc[j]);
    }
    FSM_FOLD_CHAINS(s_acc);
    FSM_FOLD_CHAINS(g_acc);
    *s_block = s_acc[0];
    *g_block = g_acc[0];
}

/* The sum of FSM_SUM_CHAINS partial sums in T, folded in double. */
static inline void K(fold_chains_f64)(const T *acc, double *total) {
    double wide[FSM_SUM_CHAINS];
    for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) wide[j] = (double)acc[j];
    FSM_FOLD_CHAINS(wide);
    *total = wide[0];
}

/* One element of cross_entropy_probs_pass: q into chain s, q (m - x) into
 * chain g (q = 0 adds nothing, even at x = -inf); with_grad: the gradient
 * from the scaled exp stored in *grad. */
static FSM_ALWAYS_INLINE void K(cross_entropy_probs_term)(T qi, T xi, T m, T *grad, int with_grad,
                                                          T t, T inv, T keep, T uniform, T scale,
                                                          T *s, T *g) {
    *s += qi;
    *g = K(mul_add)(qi, qi != 0 ? m - xi : (T)0, *g);
    if (with_grad) *grad = (K(quotient)(*grad, t, inv) - (keep * qi + uniform)) * scale;
}

/* Probability targets, one pass over the row: *q_sum = sum(q) and
 * *q_gap = sum(q (m - x)) (0 where q == 0, even at x = -inf); with_grad:
 * also grad = (e / total - (keep q + uniform)) * scale from the exps stored
 * in grad.  Element i of a block goes to chain i % chains; the chains are
 * in T (float32 in double ran the pass at half the vector width: 1.4x
 * log_softmax instead of ~1.2x, benchmarks/ab_calls.py family); they are
 * folded in double and each block's sums added with compensation.  Each
 * term is >= 0, so a chain of k terms in T is within k rounding errors of
 * its value (k = FSM_SUM_BLOCK / FSM_SUM_CHAINS); a float block that
 * overflowed (or holds a NaN) is summed again in double. */
static FSM_ALWAYS_INLINE void K(cross_entropy_probs_pass)(const fsm_family_problem *p, ptrdiff_t r,
                                                          const T *x, T m, T *grad, double total,
                                                          int with_grad, double *q_sum, double *q_gap) {
    const T *q = (const T *)p->b + r * p->b_step;
    size_t n = (size_t)p->n;
    T inv = INVERSE_TOTAL(total), t = (T)total, scale = (T)p->grad_scale;
    T keep = (T)(1.0 - p->smoothing), uniform = (T)(p->smoothing / (double)n);
    double sum = 0.0, sum_comp = 0.0, gap = 0.0, gap_comp = 0.0;
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t end = K(block_end)(start, n), i = start;
        T s_acc[FSM_SUM_CHAINS] = {0}, g_acc[FSM_SUM_CHAINS] = {0};
        for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {
#pragma omp simd
            for (size_t j = 0; j < FSM_SUM_CHAINS; ++j)
                K(cross_entropy_probs_term)(q[i + j], x[i + j], m, with_grad ? grad + i + j : NULL, with_grad,
                                            t, inv, keep, uniform, scale, &s_acc[j], &g_acc[j]);
        }
        for (size_t j = 0; i + j < end; ++j)
            K(cross_entropy_probs_term)(q[i + j], x[i + j], m, with_grad ? grad + i + j : NULL, with_grad,
                                        t, inv, keep, uniform, scale, &s_acc[j], &g_acc[j]);
        double s_block, g_block;
        K(fold_chains_f64)(s_acc, &s_block);
        K(fold_chains_f64)(g_acc, &g_block);
        if (sizeof(T) == sizeof(float) && !(isfinite(s_block) && isfinite(g_block)))
            K(cross_entropy_probs_block_f64)(q, x, start, end, m, &s_block, &g_block);
        fsm_neumaier_add(&sum, &sum_comp, s_block);
        fsm_neumaier_add(&gap, &gap_comp, g_block);
    }
    *q_sum = isfinite(sum) ? sum + sum_comp : sum;
    *q_gap = isfinite(gap) ? gap + gap_comp : gap;
}

/* The loss of one row from c = log(sum(exp(x - m))) and its maximum m:
 * sum(q * (c + (m - x))), each term >= 0 (no cancellation); q_sum and q_gap
 * as cross_entropy_probs_pass gives them (probability targets only). */
static double K(cross_entropy_loss)(const fsm_family_problem *p, ptrdiff_t r, const T *x, T m, double c,
                                    double q_sum, double q_gap) {
    size_t n = (size_t)p->n;
    double keep = 1.0 - p->smoothing, loss = 0.0;
    if (keep == 0.0) {
        /* the target itself has no weight: 0 * inf would make the loss NaN */
    } else if (p->target != NULL) {
        loss = keep * (c + ((double)m - (double)x[p->target[r]]));
    } else {
        loss = keep * (c * q_sum + q_gap);
    }
    if (p->smoothing > 0) loss += p->smoothing * (c + K(row_gap)(x, NULL, n, m, 1.0 / (double)n));
    return loss;
}

/* grad = (softmax(x) - q) * grad_scale for class-index targets, from the
 * stored scaled exps. */
static void K(cross_entropy_index_grad)(const fsm_family_problem *p, ptrdiff_t r, T *grad, double total) {
    size_t n = (size_t)p->n;
    T inv = INVERSE_TOTAL(total), t = (T)total, scale = (T)p->grad_scale;
    T keep = (T)(1.0 - p->smoothing), uniform = (T)(p->smoothing / (double)n);
    size_t target = (size_t)p->target[r];
    T e_target = grad[target];
#pragma omp simd
    for (size_t i = 0; i < n; ++i) grad[i] = (K(quotient)(grad[i], t, inv) - uniform) * scale;
    grad[target] = (K(quotient)(e_target, t, inv) - (T)((double)uniform + (double)keep)) * scale;
}

static void K(cross_entropy_family)(const fsm_family_problem *p, ptrdiff_t r) {
    const T *x = (const T *)p->a + r * p->a_step;
    T *grad = p->out == NULL ? NULL : (T *)p->out + r * p->out_step;
    size_t n = (size_t)p->n;
    T m = K(rmax)(x, n);
    double rest, ties, q_sum = 0.0, q_gap = 0.0;
    if (grad == NULL)
        K(fam_sums)(x, NULL, NULL, n, m, NULL, FSM_UNSCALED, 0, 0, 1, &rest, &ties);
    else
        K(fam_sums)(x, NULL, grad, n, m, NULL, FSM_UNSCALED, 0, FSM_STORE_EXP, 1, &rest, &ties);
    double total = rest + ties * EXP_SCALE;
    if (p->target == NULL) {
        if (grad == NULL) K(cross_entropy_probs_pass)(p, r, x, m, NULL, total, 0, &q_sum, &q_gap);
        else K(cross_entropy_probs_pass)(p, r, x, m, grad, total, 1, &q_sum, &q_gap);
    } else if (grad != NULL) {
        K(cross_entropy_index_grad)(p, r, grad, total);
    }
    /* log(total) is NaN for a row with NaN or +inf, or all -inf */
    p->row_out[r] = K(cross_entropy_loss)(p, r, x, m, (double)LOG_TOTAL(rest, ties, m), q_sum, q_gap);
}
