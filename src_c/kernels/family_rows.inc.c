/*
 * Family row kernels (contracts: kernels.h), instantiated per dtype by
 * variant.c after softmax_rows.inc.c, whose primitives they reuse
 * (block_end, sum_chains, quotient), with
 *   FMA_T            fmaf / fma: one instruction where the variant has FMA,
 *                    the correctly rounded libm function elsewhere
 *   EXP_SCALE        2^B of exp_minus_max.h, EXP_UNSCALE its inverse
 * The bodies take their options (scaled, log) as constants and are always
 * inlined, so each combination compiles to its own loops.
 */

/* The scale s of exp's argument in T: s = s_hi + s_lo, and ln 2 / s =
 * c_hi + c_lo with c_hi short enough that n * c_hi is exact for every n a
 * non-flushed exp can have; and the constants of the no-subtraction form
 * (scaled_nosub_scale), where a group takes it. */
typedef struct {
    T s_hi, s_lo, c_hi, c_lo;
    T nosub_s_log2e, nosub_c_hi, nosub_c_lo;
} K(scaling);

#ifndef FSM_STORE_NOTHING_DEFINED
#define FSM_STORE_NOTHING_DEFINED
enum { FSM_STORE_NOTHING = 0, FSM_STORE_EXP = 1, FSM_STORE_Z = 2 };
/* How fam_exp forms a group's exponentials: plain exp(x - m) * 2^B, or of
 * the scaled argument, with x - m carried exactly or without subtraction. */
enum { FSM_FORM_PLAIN = 0, FSM_FORM_SCALED = 1, FSM_FORM_SCALED_NOSUB = 2 };
#endif

/* v with the low `bits` bits of its significand cleared. */
static inline T K(shorten)(T v, int bits) {
    if (sizeof(T) == sizeof(float)) return fsm_f32_from_bits(fsm_f32_bits((float)v) & ~((1u << bits) - 1u));
    return (T)fsm_f64_from_bits(fsm_f64_bits((double)v) & ~((1ull << bits) - 1ull));
}

static inline K(scaling) K(scaling_of)(const fsm_params *prm) {
    K(scaling) sc;
    sc.s_hi = (T)prm->scale_hi;
    sc.s_lo = (T)((prm->scale_hi - (double)sc.s_hi) + prm->scale_lo);
    /* |n| < 2^8 (float) or 2^11 (double) */
    sc.c_hi = K(shorten)((T)prm->exp_step_hi, sizeof(T) == sizeof(float) ? 8 : 12);
    sc.c_lo = (T)((prm->exp_step_hi - (double)sc.c_hi) + prm->exp_step_lo);
    return sc;
}

/* The scaled groups' no-subtraction form (exp_minus_max.h): exp(s x) *
 * 2^(C - j), j = round(s m / ln 2) for the group's reference m, in place
 * of exp((x - m) s) * 2^B.  n = round(s x / ln 2) and r = s x - n ln 2 =
 * ((x - n c_hi) - n c_lo) s_hi with ln 2 / s = c_hi + c_lo: c_hi has 12
 * bits and |n| < 2^12 for every term not flushed, so n c_hi is exact and
 * so is x - n c_hi (it nearly cancels), so s x is never rounded; only the
 * small remainder is, as in the plain form.  Plain multiplies and adds, the
 * same arithmetic on every variant (an FMA only where the compiler fuses,
 * as everywhere).  Taken when |s m| <= FSM_NOSUB_MAX_F32 and 2^-60 <= |s|
 * <= 2^60 (ln 2 / s and every n c_hi normal floats); other groups, and
 * float64, keep fam_exp's exact x - m.  A group's j is folded into its
 * shifter (fsm_nosub_row_f32), which fam_exp takes in place of m.
 * scaled_nosub_scale sets sc's constants and returns 0 where the scale (or
 * T) rules the form out; scaled_nosub_shifter sets a group's shifter and
 * returns 0 where its s m does. */
static inline int K(scaled_nosub_scale)(K(scaling) *sc, const fsm_params *prm) {
#if ROW_EXP_NOSUB
    double s = prm->scale_hi;
    sc->nosub_s_log2e = (T)(s * LOG2E);
    sc->nosub_c_hi = K(shorten)((T)prm->exp_step_hi, 12);
    sc->nosub_c_lo = (T)((prm->exp_step_hi - (double)sc->nosub_c_hi) + prm->exp_step_lo);
    return fabs(s) >= 0x1p-60 && fabs(s) <= 0x1p60;
#else
    (void)sc, (void)prm;
    return 0;
#endif
}

static inline int K(scaled_nosub_shifter)(T m, const fsm_params *prm, T *shifter) {
#if ROW_EXP_NOSUB
    T j, lowest_n;
    return fsm_nosub_row_f32((float)((double)m * prm->scale_hi + (double)m * prm->scale_lo), &j, shifter,
                             &lowest_n);
#else
    (void)m, (void)prm, (void)shifter;
    return 0;
#endif
}

/* exp(s x) * 2^(C - j), from the group's shifter; NaN x propagates, the
 * terms below the flush bound (-inf included) are +0.  The bound n - j <
 * LOWEST_N, for integers, is k < SHIFTER + (LOWEST_N + 0.5) (k = n + the
 * shifter, exactly), the same for every group. */
static FSM_ALWAYS_INLINE T K(scaled_exp_nosub)(T x, T shifter, const K(scaling) *sc) {
#if ROW_EXP_NOSUB
    T k = x * sc->nosub_s_log2e + shifter, n = k - shifter;
    T r = ((x - n * sc->nosub_c_hi) - n * sc->nosub_c_lo) * sc->s_hi;
    return EXP_JOIN(k, r, k < FSM_NOSUB_SHIFTER_F32 + (FSM_NOSUB_LOWEST_N_F32 + 0.5f));
#else
    (void)shifter, (void)sc;
    return x;
#endif
}

/* Whether a group with reference m takes the no-subtraction form; if so,
 * *shifter is the m that fam_exp takes. */
static inline int K(scaled_group_nosub)(K(scaling) *sc, T m, const fsm_params *prm, T *shifter) {
    return K(scaled_nosub_scale)(sc, prm) && K(scaled_nosub_shifter)(m, prm, shifter);
}

/* In `form`: exp((x - m) * s) * 2^B, exp(x - m) * 2^B, or exp(s x) *
 * 2^(C - j) (softmax only: its total is in the same units; m is then the
 * group's shifter, scaled_group_nosub); when want_z (the form
 * exp((x - m) * s) only), also *z = (x - m) * s rounded (log_softmax's
 * output before the log of the total; -inf when the product overflows).
 * Every fused multiply-add is explicit (FMA_T: one instruction where the
 * variant has FMA, the correctly rounded libm call elsewhere), so every
 * variant computes the same arithmetic; x - m and the product are carried
 * exactly whatever s is. */
static FSM_ALWAYS_INLINE T K(fam_exp)(T x, T m, const K(scaling) *sc, int form, int want_z, T *z) {
    if (form == FSM_FORM_PLAIN) return SCALED_EXP(x, m);
    if (form == FSM_FORM_SCALED_NOSUB) return K(scaled_exp_nosub)(x, m, sc); /* m: the group's shifter */
    T s_hi = sc->s_hi;
    T bb, d = x - m;
    T d_lo = FSM_TWO_SUM_ERR(x, -m, d, bb);
    T n, k = EXP_ROUND_PRODUCT(d, s_hi * (T)LOG2E, &n);
    /* r = (d - n ln2/s) s: d - n c_hi is exact (n c_hi is, and it nearly
     * cancels d), so only the small remainder is multiplied by s and
     * rounded.  s_lo is left out: its term is below 2^-24 |r|. */
    T head = FMA_T(-n, sc->c_hi, d), tail = FMA_T(-n, sc->c_lo, d_lo);
    T r = FMA_T(head, s_hi, tail * s_hi);
    if (want_z) {
        T t = d * s_hi;
        T t_lo = FMA_T(d, s_hi, -t) + (d * sc->s_lo + d_lo * s_hi);
        *z = isfinite(t) ? t + t_lo : t; /* t = -inf (x = -inf, or overflow): no inf - inf */
    }
    return EXP_JOIN(k, r, n < EXP_LOWEST_N);
}

/* Contract: kernels.h (fsm_stage_*).  x is read unconditionally: a
 * conditional read becomes a slow masked load, and a branch mispredicts on
 * a random mask. */
static void K(stage_masked)(const T *x, const uint8_t *mask, T *y, size_t n, T fill) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
        T v = x[i];
        y[i] = mask[i] ? v : fill;
    }
}

/* The maximum of x over the entries kept, -inf when none is; NaN entries
 * passed over.  In chains, as rmax.  `masked` (a constant: tested at run
 * time, the selects and stores became slow masked ones): kept where
 * mask[i], and with `stage` (a constant) dst gets x with the others -inf;
 * else kept where b[i] != 0.  x is read unconditionally, as in
 * stage_masked. */
static FSM_ALWAYS_INLINE T K(rmax_kept)(const T *x, const uint8_t *mask, const T *b, T *dst, int masked,
                                        int stage, size_t n) {
    T acc[FSM_MAX_CHAINS];
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = -(T)INFINITY;
    size_t i = 0;
    for (; i + FSM_MAX_CHAINS <= n; i += FSM_MAX_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) {
            T v = x[i + j];
            v = (masked ? mask[i + j] != 0 : b[i + j] != 0) ? v : -(T)INFINITY;
            if (masked && stage) dst[i + j] = v;
            acc[j] = v > acc[j] ? v : acc[j];
        }
    }
    T m = K(fold_maxima)(acc);
    for (; i < n; ++i) {
        T v = (masked ? mask[i] != 0 : b[i] != 0) ? x[i] : -(T)INFINITY;
        if (masked && stage) dst[i] = v;
        m = v > m ? v : m;
    }
    return m;
}

/* dst[i] = mask[i] ? x[i] : -inf, and the maximum of dst returned: the
 * staging and the max pass of a masked softmax row in one read of x and
 * the mask (float; double in two loops), rmax(dst) bit for bit. */
static T K(stage_masked_max)(const T *x, const uint8_t *mask, T *dst, size_t n) {
    if (sizeof(T) == sizeof(double)) { /* GCC left the one loop scalar for double on AVX-512: 5x slower */
        K(stage_masked)(x, mask, dst, n, -(T)INFINITY);
        return K(rmax)(dst, n);
    }
    return K(rmax_kept)(x, mask, NULL, dst, 1, 1, n);
}

/* Masked plain softmax and log_softmax rows (kernels.h): the row kernels
 * on x staged in scratch, from the maximum taken while staging.  On
 * AVX-512, softmax reads the mask beside x instead where the row takes the
 * table form (softmax_masked_row_in_lanes: the same bits, no staged copy;
 * float32 (64, 32000) where=, 1 thread: see the CHANGELOG). */
static void K(softmax_masked_row)(const T *x, const uint8_t *mask, T *y, size_t n, T *scratch) {
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    if (K(softmax_masked_row_in_lanes)(x, mask, y, n, K(rmax_kept)(x, mask, NULL, NULL, 1, 0, n))) return;
#endif
    K(softmax_row_from_max)(scratch, y, n, K(stage_masked_max)(x, mask, scratch, n));
}

static void K(log_softmax_masked_row)(const T *x, const uint8_t *mask, T *y, size_t n, T *scratch) {
    K(log_softmax_row_from_max)(scratch, y, n, K(stage_masked_max)(x, mask, scratch, n), 0);
}

/* sign * max(sign * x): the group maximum for sign = 1, the minimum for
 * sign = -1.  NaN entries are passed over (they make the group NaN later). */
static T K(rmax_signed)(const T *x, size_t n, T sign) {
    if (sign > 0) return K(rmax)(x, n);
    T acc[FSM_MAX_CHAINS];
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = -(T)INFINITY;
    size_t i = 0;
    for (; i + FSM_MAX_CHAINS <= n; i += FSM_MAX_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = -x[i + j] > acc[j] ? -x[i + j] : acc[j];
    }
    T m = K(fold_maxima)(acc);
    for (; i < n; ++i) m = -x[i] > m ? -x[i] : m;
    return -m;
}

/* One element of a sum block: e = fam_exp in `form`, stored when `store`;
 * added to *rest unless x == m, which counts as a tie (exactly 1 unscaled)
 * as in block_exp_rest. */
static FSM_ALWAYS_INLINE void K(fam_term)(const T *x, T *y, size_t i, T m, const K(scaling) *sc, int form,
                                          int store, int split_ties, T *rest, T *ties) {
    T xi = x[i], z; /* read before y[i] is written: y may be x */
    T e = K(fam_exp)(xi, m, sc, form, store == FSM_STORE_Z, &z);
    if (store == FSM_STORE_EXP) y[i] = e;
    if (store == FSM_STORE_Z) y[i] = z;
    if (!split_ties) {
        *rest += e;
        return;
    }
    T tie = xi == m ? (T)1 : (T)0;
    *rest += e * ((T)1 - tie);
    *ties += tie;
}

#if ROW_EXP_NOSUB && defined(__AVX512F__)
static inline K(scaled_table) K(scaled_table_for)(const K(scaling) *sc, T shifter) {
    float j = FSM_NOSUB_SHIFTER_F32 - shifter; /* exact: both are integers below 2^24 */
    K(scaled_table) t;
    t.s_log2e_16 = _mm512_set1_ps(16.0f * sc->nosub_s_log2e);
    t.c_hi_16 = _mm512_set1_ps(sc->nosub_c_hi * 0x1p-4f);
    t.c_lo_16 = _mm512_set1_ps(sc->nosub_c_lo * 0x1p-4f);
    t.s_hi = _mm512_set1_ps(sc->s_hi);
    t.shifter16 = fsm_nosub_table_shifter(j);
    t.lowest_n16 = fsm_nosub_table_lowest_n(j + FSM_NOSUB_LOWEST_N_F32);
    return t;
}


/* fam_block of softmax's scaled no-subtraction exps (stored, no ties) in
 * the table form: the chains are the lanes of one register, as in
 * block_store_exp_table; `shifter` is the group's (scaled_group_nosub). */
static FSM_ALWAYS_INLINE T K(scaled_block_store_exp_table)(const T *x, T *y, size_t n, T shifter,
                                                           const K(scaling) *sc) {
    const K(scaled_table) t = K(scaled_table_for)(sc, shifter);
    __m512 acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 e = K(scaled_exp_nosub_x16)(_mm512_loadu_ps(x + i), &t, 0xffff);
        _mm512_storeu_ps(y + i, e);
        acc = _mm512_add_ps(acc, e);
    }
    if (i < n) {
        __mmask16 live = K(live_lanes)(i, n);
        __m512 e = K(scaled_exp_nosub_x16)(_mm512_maskz_loadu_ps(live, x + i), &t, live);
        _mm512_mask_storeu_ps(y + i, live, e);
        acc = _mm512_add_ps(acc, e);
    }
    return K(sum_lanes)(acc);
}
#endif

/* One sum block [start, end) of the group: *rest = the sum of the scaled
 * exps (of x != m when split_ties, whose count goes to *ties), in
 * FSM_SUM_CHAINS chains folded in T; stored in y as `store` says. */
static FSM_ALWAYS_INLINE void K(fam_block)(const T *x, T *y, size_t start, size_t end, T m, const K(scaling) *sc,
                                           int form, int store, int split_ties, T *rest, T *ties) {
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    if (form == FSM_FORM_SCALED_NOSUB && store == FSM_STORE_EXP && !split_ties) {
        *rest = K(scaled_block_store_exp_table)(x + start, y + start, end - start, m, sc), *ties = 0;
        return;
    }
#endif
    size_t i = start;
    T acc[FSM_SUM_CHAINS] = {0}, tie_acc[FSM_SUM_CHAINS] = {0};
    for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j)
            K(fam_term)(x, y, i + j, m, sc, form, store, split_ties, &acc[j], &tie_acc[j]);
    }
    for (size_t j = 0; i + j < end; ++j)
        K(fam_term)(x, y, i + j, m, sc, form, store, split_ties, &acc[j], &tie_acc[j]);
    *rest = K(sum_chains)(acc);
    *ties = K(sum_chains)(tie_acc);
}

/* Over the group in sum blocks: *rest = the sum of the scaled exps with
 * x != m, *ties = the number of entries with x == m; or, without split_ties
 * (softmax needs only the total), *rest = the sum of all and *ties = 0. */
static FSM_ALWAYS_INLINE void K(fam_sums)(const T *x, T *y, size_t n, T m, const K(scaling) *sc, int form,
                                          int store, int split_ties, double *rest, double *ties) {
    T block_rest, block_ties;
    /* the first block's sum as it is: Neumaier's sum of one term (finite) */
    K(fam_block)(x, y, 0, K(block_end)(0, n), m, sc, form, store, split_ties, &block_rest, &block_ties);
    double sum = block_rest, comp = 0.0, tie_total = block_ties;
    for (size_t start = FSM_SUM_BLOCK; start < n; start += FSM_SUM_BLOCK) {
        K(fam_block)(x, y, start, K(block_end)(start, n), m, sc, form, store, split_ties, &block_rest, &block_ties);
        fsm_neumaier_add(&sum, &comp, block_rest);
        tie_total += block_ties;
    }
    *rest = sum + comp;
    *ties = tie_total;
}

/* The per-group state the ops with a log of the total carry from their
 * passes over the group to the log (taken for several groups at once in
 * the row-group kernels, where it runs in SIMD lanes) and the last step. */
typedef struct {
    T m;              /* the reference point: maximum (minimum for a negative scale) */
    int nosub;        /* log_softmax: the sums were taken in the no-subtraction form */
    double rest, ties; /* the total split as in block_exp_rest */
    double q_sum, q_gap, mean_gap; /* cross entropy's target terms */
    T x_target;
    int index_target;
    int weighted;                  /* logsumexp with weights: the result is computed whole */
    double weighted_result, weighted_sign;
} K(group_stats);

/* The reference point of a scaled group: its maximum (s > 0) or minimum
 * (s < 0), so that every (x - m) * s <= 0. */
static inline T K(scaled_group_ref)(const T *x, size_t n, const K(scaling) *sc) {
    return K(rmax_signed)(x, n, sc->s_hi < 0 ? (T)-1 : (T)1);
}

/* The exps of x * s stored in y (y == x allowed), in the form the group
 * allows; returns their total. */
static double K(softmax_fsums)(const T *x, T *y, size_t n, const fsm_params *prm, const K(scaling) *scaling) {
    /* a local copy: read through the caller's pointer, the constants were
     * reloaded after every store to y, which may alias them (float64
     * temperature= rows of 128 ran 5x slower) */
    K(scaling) sc = *scaling;
    T m = K(scaled_group_ref)(x, n, &sc);
    double total, ties;
    T shifter;
    if (K(scaled_group_nosub)(&sc, m, prm, &shifter))
        K(fam_sums)(x, y, n, shifter, &sc, FSM_FORM_SCALED_NOSUB, FSM_STORE_EXP, 0, &total, &ties);
    else
        K(fam_sums)(x, y, n, m, &sc, FSM_FORM_SCALED, FSM_STORE_EXP, 0, &total, &ties);
    return total;
}

/* softmax of x * s into y (y == x allowed), in the passes of the plain row
 * kernels. */
static void K(softmax_frow)(const T *x, T *y, const T *b, size_t n, const fsm_params *prm, int64_t target,
                            double *group_out) {
    (void)b, (void)target, (void)group_out;
    K(scaling) sc = K(scaling_of)(prm);
    K(vnormalize)(y, y, n, K(softmax_fsums)(x, y, n, prm, &sc));
}

/* softmax_frow on count <= FSM_ROW_GROUP rows, with the per-row 1 / total
 * taken across the rows (one SIMD lane per row) as in softmax_rows: one at
 * a time, a division per row of 128 cost about a tenth of the row. */
static void K(softmax_frows)(const T *const *x, T *const *y, const T *const *b, size_t n, size_t count,
                             const fsm_params *prm, const int64_t *targets, double *const *group_out) {
    (void)b, (void)targets, (void)group_out;
    K(scaling) sc = K(scaling_of)(prm);
    double total[FSM_ROW_GROUP];
    T t[FSM_ROW_GROUP], inv[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g)
        total[g] = g < count ? K(softmax_fsums)(x[g], y[g], n, prm, &sc) : 1.0; /* unused lanes: a harmless total */
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) t[g] = (T)total[g], inv[g] = INVERSE_TOTAL(total[g]);
    for (size_t g = 0; g < count; ++g) K(vquotients)(y[g], y[g], n, t[g], inv[g]);
}

/* s m in double, s = scale_hi + scale_lo: the no-subtraction form's
 * reference point (scaled_nosub_shifter rounds it to T). */
static inline double K(scaled_ref)(T m, const fsm_params *prm) {
    return (double)m * prm->scale_hi + (double)m * prm->scale_lo;
}

/* One sum block of a scaled no-subtraction group for log_softmax: the sum
 * of exp(s x) 2^(C - j) over the entries x != m, and in *ties the count of
 * the others, as block_exp_rest splits them (in AVX-512, by
 * block_exp_rest_table with the group's table exponential). */
static FSM_ALWAYS_INLINE T K(scaled_block_exp_rest)(const T *x, size_t n, T m, T shifter, const K(scaling) *sc,
                                                    T *ties) {
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    const K(scaled_table) t = K(scaled_table_for)(sc, shifter);
    K(row_exp) e = {m, 0, 0, 0, 1}; /* the reference only: t is the exponential */
    return K(block_exp_rest_table)(x, NULL, n, e, &t, 0, 0, ties);
#else
    T acc[FSM_SUM_CHAINS] = {0}, tie_acc[FSM_SUM_CHAINS] = {0};
    size_t i = 0;
    for (; i + FSM_SUM_CHAINS <= n; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            T xi = x[i + j], is_tie = xi == m ? (T)1 : (T)0;
            acc[j] += K(scaled_exp_nosub)(xi, shifter, sc) * ((T)1 - is_tie);
            tie_acc[j] += is_tie;
        }
    }
    for (size_t j = 0; i + j < n; ++j) {
        T xi = x[i + j], is_tie = xi == m ? (T)1 : (T)0;
        acc[j] += K(scaled_exp_nosub)(xi, shifter, sc) * ((T)1 - is_tie);
        tie_acc[j] += is_tie;
    }
    *ties = K(sum_chains)(tie_acc);
    return K(sum_chains)(acc);
#endif
}

/* A one-block group's scaled_block_exp_rest in the units of the TwoSum
 * form (exp((x - m) s) 2^B), rounded as scaled_exp_rest_and_ties rounds
 * each block: the row-group kernel takes the factor across its groups. */
static inline double K(scaled_one_block_rest)(T block_rest, double sm, T j) {
    return (double)(T)(block_rest * fsm_nosub_to_max_scale(sm, (double)j));
}

/* The factor that takes a scaled no-subtraction group's terms to the
 * TwoSum form's units (fsm_nosub_to_max_scale of s m). */
static inline double K(scaled_to_max_scale)(T m, T shifter, const fsm_params *prm) {
    return fsm_nosub_to_max_scale(K(scaled_ref)(m, prm), (double)(FSM_NOSUB_SHIFTER_F32 - shifter));
}

/* The rest and ties of exp_rest_and_ties for a scaled no-subtraction
 * group (reference m, its shifter). */
static void K(scaled_exp_rest_and_ties)(const T *x, size_t n, T m, T shifter, const fsm_params *prm,
                                        const K(scaling) *sc, double *rest, double *ties) {
    double to_max_scale = K(scaled_to_max_scale)(m, shifter, prm);
    T block_ties;
    /* the first block's sum as it is: Neumaier's sum of one term (finite) */
    double sum = (T)(K(scaled_block_exp_rest)(x, K(block_end)(0, n), m, shifter, sc, &block_ties) * to_max_scale);
    double comp = 0.0, tie_count = block_ties;
    for (size_t start = FSM_SUM_BLOCK; start < n; start += FSM_SUM_BLOCK) {
        size_t len = K(block_end)(start, n) - start;
        T block = (T)(K(scaled_block_exp_rest)(x + start, len, m, shifter, sc, &block_ties) * to_max_scale);
        fsm_neumaier_add(&sum, &comp, block);
        tie_count += block_ties;
    }
    *rest = sum + comp;
    *ties = tie_count;
}

/* s = scale_hi + scale_lo split as s_hi + s_lo in T with s_lo nonzero and
 * of s's sign (s_hi is s rounded toward zero, one ulp short where that is
 * s itself): then x s_hi and x s_lo are infinities of one sign for an
 * infinite x, never inf - inf. */
static inline void K(split_scale_toward_zero)(const fsm_params *prm, T *s_hi, T *s_lo) {
    double s = prm->scale_hi;
    T hi = (T)s;
    if (fabs((double)hi) >= fabs(s))
        hi = sizeof(T) == sizeof(float) ? (T)nextafterf((float)hi, 0.0f) : (T)nextafter(hi, 0.0);
    *s_hi = hi;
    *s_lo = (T)((s - (double)hi) + prm->scale_lo);
}

/* log_softmax's output of a scaled no-subtraction group from x: y = s x -
 * k with k = s m + c (in double, split k_hi + k_lo in T), where x != m,
 * and exactly -c for the ties.  s x - k_hi is one fused multiply-add,
 * rounded once where it cancels (x near m), and x s_lo - k_lo corrects it
 * (split_scale_toward_zero: an infinite x gives an infinite y); |y| >= |s
 * (x - m)| >= about 2^-24 |s m| for x != m, so k's rounding stays far below
 * y's last place. */
static void K(scaled_log_softmax_out)(const T *x, T *y, size_t n, T m, double k, T c, const fsm_params *prm) {
    T k_hi = (T)k, k_lo = (T)(k - (double)k_hi), s_hi, s_lo;
    K(split_scale_toward_zero)(prm, &s_hi, &s_lo);
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    const __m512 mv = _mm512_set1_ps(m), minus_c = _mm512_set1_ps(-c), s_hi16 = _mm512_set1_ps(s_hi),
                 s_lo16 = _mm512_set1_ps(s_lo), k_hi16 = _mm512_set1_ps(k_hi), k_lo16 = _mm512_set1_ps(k_lo);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 live = K(live_lanes)(i, n);
        __m512 xi = _mm512_maskz_loadu_ps(live, x + i);
        __m512 v = _mm512_add_ps(_mm512_fmsub_ps(xi, s_hi16, k_hi16), _mm512_fmsub_ps(xi, s_lo16, k_lo16));
        v = _mm512_mask_mov_ps(v, _mm512_cmp_ps_mask(xi, mv, _CMP_EQ_OQ), minus_c);
        _mm512_mask_storeu_ps(y + i, live, v);
    }
#else
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
        T xi = x[i];
        y[i] = xi == m ? -c : FMA_T(xi, s_hi, -k_hi) + FMA_T(xi, s_lo, -k_lo);
    }
#endif
}

/* log_softmax of x * s.  A float32 group whose s m is in the no-subtraction
 * form's range takes its sums in that form (scaled_exp_rest_and_ties) and
 * forms y from x after the log (scaled_log_softmax_out).  Other groups:
 * y = (x - m) * s stored with the sums in the form exp((x - m) * s), whose
 * z carries x - m exactly, then y -= c.  log_softmax_sums: the sums of a
 * group with reference m (and its shifter, where st->nosub). */
static FSM_ALWAYS_INLINE void K(log_softmax_sums)(const T *x, T *y, size_t n, T m, T shifter,
                                                  const fsm_params *prm, const K(scaling) *sc, K(group_stats) *st) {
    if (st->nosub)
        K(scaled_exp_rest_and_ties)(x, n, m, shifter, prm, sc, &st->rest, &st->ties);
    else
        K(fam_sums)(x, y, n, m, sc, FSM_FORM_SCALED, FSM_STORE_Z, 1, &st->rest, &st->ties);
}

static FSM_ALWAYS_INLINE void K(log_softmax_fstats)(const T *x, T *y, const T *b, size_t n, const fsm_params *prm,
                                                    int64_t target, K(group_stats) *st) {
    (void)b, (void)target;
    K(scaling) sc = K(scaling_of)(prm);
    T shifter = 0;
    st->m = K(scaled_group_ref)(x, n, &sc);
    st->nosub = K(scaled_group_nosub)(&sc, st->m, prm, &shifter);
    K(log_softmax_sums)(x, y, n, st->m, shifter, prm, &sc, st);
}

/* LOG_TOTAL before its rounding to T: log_softmax's no-subtraction output
 * takes c unrounded (scaled_log_softmax_out). */
static FSM_ALWAYS_INLINE double K(log_total_wide)(double rest, double ties, T m) {
    double c = fsm_log1p_f64(rest * EXP_UNSCALE + (ties - 1.0));
    return isfinite(m) ? c : NAN;
}

/* y from the group's stats and c = log_total_wide. */
static FSM_ALWAYS_INLINE void K(log_softmax_fdone)(const T *x, T *y, size_t n, const fsm_params *prm,
                                                   const K(group_stats) *st, double c) {
    if (st->nosub) {
        K(scaled_log_softmax_out)(x, y, n, st->m, K(scaled_ref)(st->m, prm) + c, (T)c, prm);
        return;
    }
    K(vsub_total)(y, n, (T)c); /* (T)c: LOG_TOTAL */
}

static void K(log_softmax_frow)(const T *x, T *y, const T *b, size_t n, const fsm_params *prm, int64_t target,
                                double *group_out) {
    (void)group_out;
    K(group_stats) st;
    K(log_softmax_fstats)(x, y, b, n, prm, target, &st);
    K(log_softmax_fdone)(x, y, n, prm, &st, K(log_total_wide)(st.rest, st.ties, st.m));
}

/* log_softmax_frow on count <= FSM_ROW_GROUP rows, with the logs taken
 * across the rows in SIMD lanes; a no-subtraction row of one sum block
 * has its factor (a double exp) taken there too, as log_softmax_rows
 * does. */
static void K(log_softmax_frows)(const T *const *x, T *const *y, const T *const *b, size_t n, size_t count,
                                 const fsm_params *prm, const int64_t *targets, double *const *group_out) {
    (void)b, (void)targets, (void)group_out;
    K(scaling) sc = K(scaling_of)(prm);
    K(group_stats) st[FSM_ROW_GROUP];
    T m[FSM_ROW_GROUP], j[FSM_ROW_GROUP], block_rest[FSM_ROW_GROUP];
    double sm[FSM_ROW_GROUP], rest[FSM_ROW_GROUP], ties[FSM_ROW_GROUP], c[FSM_ROW_GROUP];
    int in_lanes[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        m[g] = 0, j[g] = 0, block_rest[g] = 0, sm[g] = 0.0, rest[g] = 0.0, ties[g] = 1.0, in_lanes[g] = 0;
        if (g >= count) continue; /* unused lanes: a harmless total of 1 */
        T shifter = 0, block_ties;
        st[g].m = m[g] = K(scaled_group_ref)(x[g], n, &sc);
        st[g].nosub = K(scaled_group_nosub)(&sc, m[g], prm, &shifter);
        if (st[g].nosub && n <= FSM_SUM_BLOCK) {
            block_rest[g] = K(scaled_block_exp_rest)(x[g], n, m[g], shifter, &sc, &block_ties); /* factor below */
            ties[g] = block_ties, sm[g] = K(scaled_ref)(m[g], prm), j[g] = FSM_NOSUB_SHIFTER_F32 - shifter;
            in_lanes[g] = 1;
        } else {
            K(log_softmax_sums)(x[g], y[g], n, m[g], shifter, prm, &sc, &st[g]);
            rest[g] = st[g].rest, ties[g] = st[g].ties;
        }
    }
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        double one_block = K(scaled_one_block_rest)(block_rest[g], sm[g], j[g]);
        c[g] = K(log_total_wide)(in_lanes[g] ? one_block : rest[g], ties[g], m[g]);
    }
    for (size_t g = 0; g < count; ++g) K(log_softmax_fdone)(x[g], y[g], n, prm, &st[g], c[g]);
}

/* logsumexp of a group whose maximum m is not finite: NaN when an entry is
 * NaN, else m (+inf, or -inf: the log of an empty sum). */
static double K(lse_of_non_finite)(const T *x, ptrdiff_t step, size_t n, T m) {
    for (size_t i = 0; i < n; ++i)
        if (x[(ptrdiff_t)i * step] != x[(ptrdiff_t)i * step]) return NAN;
    return (double)m;
}

/* The sum of FSM_SUM_CHAINS partial sums in T, folded in double. */
static inline void K(fold_chains_f64)(const T *acc, double *total) {
    double wide[FSM_SUM_CHAINS];
    for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) wide[j] = (double)acc[j];
    FSM_FOLD_CHAINS(wide);
    *total = wide[0];
}

/* --- weighted logsumexp: log|sum(b * exp(x))| and its sign ---------------
 * An entry with b == 0 takes no part, whatever its x (NaN and +inf
 * included), as in SciPy.  With m the maximum of the other entries, the
 * terms are b * exp(x - m) * 2^B, those with x == m kept apart as their
 * weights (ties), so that a total close to the maximum's weight keeps its
 * accuracy (the log is log|ties| + log1p(rest / ties)).
 *
 * Fast path: m is the maximum of every x, taken as plain logsumexp takes
 * it (x alone: the weights are read once, by the sum pass), and the terms
 * have no select for b == 0.  It is the careful result, bit for bit,
 * whenever the ties' weight is not 0 (an entry with a weight is at m, so m
 * is the maximum of the weighted entries) and the sums are finite (no NaN
 * or +inf with weight 0 took part); otherwise the group is summed again
 * the careful way, from the maximum of the weighted entries. */

/* The maximum of x over the entries with b != 0 (-inf when there is none);
 * NaN entries passed over. */
static T K(rmax_weighted)(const T *x, const T *b, size_t n) { return K(rmax_kept)(x, NULL, b, NULL, 0, 0, n); }

/* One weighted term from the exponential e of x: b * e, returned, or b
 * into *tie when x == m.  careful: 0 where b == 0, whatever x (it may
 * exceed m, or be +inf or NaN). */
static FSM_ALWAYS_INLINE T K(weight_term)(T e, T xi, T bi, T m, int careful, T *tie) {
    if (careful) e = bi != 0 ? e : (T)0;
    int at_max = xi == m;
    *tie = at_max ? bi : (T)0;
    return (at_max ? (T)0 : bi) * e;
}

/* weight_term of b * exp(x - m) * 2^B (the lane kernels' form). */
static FSM_ALWAYS_INLINE T K(weighted_term)(T xi, T bi, T m, int careful, T *tie) {
    return K(weight_term)(SCALED_EXP(xi, m), xi, bi, m, careful, tie);
}

/* The rest of entries [start, end) in double: for a float block whose
 * weighted terms overflowed float (b near FLT_MAX). */
static double K(weighted_rest_f64)(const T *x, ptrdiff_t x_step, const T *b, ptrdiff_t b_step, size_t start,
                                   size_t end, T m) {
    double rest = 0.0;
    for (size_t i = start; i < end; ++i) {
        T xi = x[(ptrdiff_t)i * x_step], bi = b[(ptrdiff_t)i * b_step];
        if (bi != 0 && xi != m) rest += (double)bi * (double)SCALED_EXP(xi, m);
    }
    return rest;
}

/* The exponential of a row's weighted terms: plain logsumexp's (the
 * no-subtraction form where the row allows it: row_exp_for) on the fast
 * path, exp(x - m) * 2^B the careful way; and the factor that turns its
 * sums into sums of exp(x - m) * 2^B (to_max_scale). */
static inline K(row_exp) K(weighted_row_exp)(T m, int careful, double *to_max_scale) {
    K(row_exp) e = K(row_exp_for)(m);
    e.nosub = e.nosub && !careful;
    *to_max_scale = K(to_max_scale)(e);
    return e;
}

/* The FSM_SUM_CHAINS partial sums of the weighted terms of [start, end)
 * (weight_term in e's form `nosub`, a constant where this is inlined),
 * folded in double into *rest and *ties: chain j takes the entries
 * start + j, start + j + FSM_SUM_CHAINS, ...  float32 adds them four a
 * step, as (a + b) + (c + d) (one a step, the table form's loop ran 1.35x
 * plain logsumexp on (4096, 1000), against 1.26x); float64 one a step (four
 * raised its error on accuracy.py's equal terms from 0.77 to 1.13 eps). */
static FSM_ALWAYS_INLINE void K(weighted_chains)(const T *x, const T *b, size_t start, size_t end, K(row_exp) e,
                                                 int nosub, int careful, double *rest, double *ties) {
    T acc[FSM_SUM_CHAINS] = {0}, tie_acc[FSM_SUM_CHAINS] = {0};
    size_t i = start;
    for (; sizeof(T) == sizeof(float) && i + 4 * FSM_SUM_CHAINS <= end; i += 4 * FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            T w[4], t[4];
            for (size_t k = 0; k < 4; ++k) {
                size_t at = i + j + k * FSM_SUM_CHAINS;
                w[k] = K(weight_term)(K(row_exp_at)(e, x[at], nosub), x[at], b[at], e.m, careful, &t[k]);
            }
            acc[j] += (w[0] + w[1]) + (w[2] + w[3]);
            tie_acc[j] += (t[0] + t[1]) + (t[2] + t[3]);
        }
    }
    for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            T tie;
            acc[j] += K(weight_term)(K(row_exp_at)(e, x[i + j], nosub), x[i + j], b[i + j], e.m, careful, &tie);
            tie_acc[j] += tie;
        }
    }
    for (size_t j = 0; i + j < end; ++j) {
        T tie;
        acc[j] += K(weight_term)(K(row_exp_at)(e, x[i + j], nosub), x[i + j], b[i + j], e.m, careful, &tie);
        tie_acc[j] += tie;
    }
    K(fold_chains_f64)(acc, rest);
    K(fold_chains_f64)(tie_acc, ties);
}

#if ROW_EXP_NOSUB && defined(__AVX512F__)
/* fold_chains_f64 of the 16 lanes, in registers: the same additions in
 * the same order (halves added lane-wise). */
static inline double K(fold_lanes_f64)(__m512 acc) {
    __m512d wide = _mm512_add_pd(_mm512_cvtps_pd(_mm512_castps512_ps256(acc)),
                                 _mm512_cvtps_pd(_mm512_extractf32x8_ps(acc, 1)));
    __m256d halves = _mm256_add_pd(_mm512_castpd512_pd256(wide), _mm512_extractf64x4_pd(wide, 1));
    __m128d quarters = _mm_add_pd(_mm256_castpd256_pd128(halves), _mm256_extractf128_pd(halves, 1));
    return _mm_cvtsd_f64(_mm_add_sd(quarters, _mm_unpackhi_pd(quarters, quarters)));
}

/* The weighted terms of the 16 entries at x + i that `live` marks, in the
 * table exponential (fsm_scaled_exp_nosub_f32x16), as weight_term forms
 * them on the fast path: +0 for a tie, whose weight goes to *tie_weight. */
static FSM_ALWAYS_INLINE __m512 K(weighted_terms_x16)(const T *x, const T *b, size_t i, __mmask16 live, __m512 m,
                                                      __m512 shifter, __m512 lowest_n, __m512 *tie_weight) {
    __m512 xi = _mm512_maskz_loadu_ps(live, x + i), bi = _mm512_maskz_loadu_ps(live, b + i);
    __mmask16 tie = _mm512_mask_cmp_ps_mask(live, xi, m, _CMP_EQ_OQ), term = live & ~tie;
    *tie_weight = _mm512_maskz_mov_ps(tie, bi);
    return _mm512_maskz_mul_ps(term, bi, fsm_scaled_exp_nosub_f32x16(xi, shifter, lowest_n, term));
}

/* weighted_chains of the fast path's no-subtraction form from the table
 * exponential: the chains are the 16 lanes of one register, added to in
 * the same order (four a step, then one); the lanes past the end add +0. */
static FSM_ALWAYS_INLINE void K(weighted_chains_table)(const T *x, const T *b, size_t start, size_t end,
                                                       K(row_exp) e, double *rest, double *ties) {
    const __m512 shifter = fsm_nosub_table_shifter(e.j), lowest_n = fsm_nosub_table_lowest_n(e.lowest_n);
    const __m512 m = _mm512_set1_ps(e.m);
    __m512 acc = _mm512_setzero_ps(), tie_acc = _mm512_setzero_ps(), w[4], t[4];
    size_t i = start;
    for (; i + 64 <= end; i += 64) {
        for (size_t k = 0; k < 4; ++k)
            w[k] = K(weighted_terms_x16)(x, b, i + 16 * k, 0xffff, m, shifter, lowest_n, &t[k]);
        acc = _mm512_add_ps(acc, _mm512_add_ps(_mm512_add_ps(w[0], w[1]), _mm512_add_ps(w[2], w[3])));
        tie_acc = _mm512_add_ps(tie_acc, _mm512_add_ps(_mm512_add_ps(t[0], t[1]), _mm512_add_ps(t[2], t[3])));
    }
    for (; i < end; i += 16) {
        __mmask16 live = K(live_lanes)(i - start, end - start);
        acc = _mm512_add_ps(acc, K(weighted_terms_x16)(x, b, i, live, m, shifter, lowest_n, &t[0]));
        tie_acc = _mm512_add_ps(tie_acc, t[0]);
    }
    *rest = K(fold_lanes_f64)(acc);
    *ties = K(fold_lanes_f64)(tie_acc);
}
#endif

/* One sum block [start, end) of a contiguous group's weighted terms in
 * e's form: *block_ties, the weight of the entries at m, and *block_rest,
 * their sum with its factor left out (times to_max_scale it is scaled by
 * 2^B); returns 0, or 1 for a float block whose terms overflowed float (b
 * near FLT_MAX): its rest is then summed again in double, scaled by 2^B. */
static FSM_ALWAYS_INLINE int K(weighted_block_unscaled)(const T *x, const T *b, size_t start, size_t end,
                                                        K(row_exp) e, int careful, double *block_rest,
                                                        double *block_ties) {
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    if (e.nosub) K(weighted_chains_table)(x, b, start, end, e, block_rest, block_ties);
#else
    if (e.nosub) K(weighted_chains)(x, b, start, end, e, 1, careful, block_rest, block_ties);
#endif
    else K(weighted_chains)(x, b, start, end, e, 0, careful, block_rest, block_ties);
    if (sizeof(T) != sizeof(float) || isfinite(*block_rest)) return 0;
    *block_rest = K(weighted_rest_f64)(x, 1, b, 1, start, end, e.m);
    return 1;
}

/* weighted_block_unscaled with the factor: *block_rest scaled by 2^B. */
static FSM_ALWAYS_INLINE void K(weighted_block_in_form)(const T *x, const T *b, size_t start, size_t end,
                                                        K(row_exp) e, double to_max_scale, int careful,
                                                        double *block_rest, double *block_ties) {
    if (!K(weighted_block_unscaled)(x, b, start, end, e, careful, block_rest, block_ties)) *block_rest *= to_max_scale;
}

/* The weighted terms of a contiguous group summed in the sum blocks of
 * fam_sums (weighted_block_in_form): *rest (scaled by 2^B) and *ties. */
static FSM_ALWAYS_INLINE void K(weighted_sums)(const T *x, const T *b, size_t n, T m, int careful, double *rest,
                                               double *ties) {
    double sum = 0.0, comp = 0.0, tie_total = 0.0, to_max_scale;
    K(row_exp) e = K(weighted_row_exp)(m, careful, &to_max_scale);
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        double block_rest, block_ties;
        K(weighted_block_in_form)(x, b, start, K(block_end)(start, n), e, to_max_scale, careful, &block_rest,
                                  &block_ties);
        fsm_neumaier_add(&sum, &comp, block_rest);
        tie_total += block_ties;
    }
    *rest = fsm_compensated_total(sum, comp);
    *ties = tie_total;
}

/* The fast path's sums are the careful ones (see above). */
static inline int K(weighted_fast_path_holds)(double rest, double ties) {
    return ties != 0 && isfinite(rest + ties);
}

/* log(v) for v > 0 to about 1 ulp, near v = 1 too (on both sides),
 * straight-line so that it vectorises: v = 2^k mant with mant in
 * [sqrt(1/2), sqrt(2)), log(mant) = fsm_log1p_f64(mant - 1) (mant - 1 is
 * exact, and so is 1 + (mant - 1) in fsm_log1p_f64, which then reduces no
 * further); subnormal v scaled up first; +inf gives +inf. */
static FSM_ALWAYS_INLINE double K(log_positive)(double v) {
    int tiny = v < 0x1p-1000;
    double scaled = tiny ? v * 0x1p200 : v;
    uint64_t bits = fsm_f64_bits(scaled);
    double k = fsm_f64_from_bits((bits >> 52) | 0x4330000000000000ull) - (0x1p52 + 1023.0) - (tiny ? 200.0 : 0.0);
    double mant = fsm_f64_from_bits((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    int big = mant > 0x1.6a09e667f3bcdp0; /* sqrt(2) */
    mant = big ? 0.5 * mant : mant;
    k = big ? k + 1.0 : k;
    double r = k * 0x1.62e42fee00000p-1 + (fsm_log1p_f64(mant - 1.0) + k * 0x1.a39ef35793c76p-33);
    return v < INFINITY ? r : v;
}

/* From m (finite), rest (scaled by 2^B) and the weight of the ties: m +
 * log|total| and the sign of the total (0 for a zero total, whose log is
 * -inf; NaN for a NaN total).  total = ties + rest / 2^B is carried exactly
 * as total + low (TwoSum), and log|total + low| = log|total| + low / total
 * to about 1 ulp, also for a total close to 1 (one log: the lane kernel
 * takes it once per lane, in a SIMD loop, and a group of 10 float32 spent
 * as long in two logs as in its exps). */
static FSM_ALWAYS_INLINE double K(signed_log_total)(double rest, double ties, T m, double *sign) {
    double r = rest * EXP_UNSCALE, bb, total = ties + r;
    double low = FSM_TWO_SUM_ERR(ties, r, total, bb);
    /* float32: low / total, below 2^-53, cannot move a result rounded to
     * 2^-24 but by a rare double rounding: left out (its division took
     * about a tenth of the lane kernel on rows of 10) */
    int corrected = sizeof(T) == sizeof(double) && isfinite(total) && total != 0;
    double log_total = K(log_positive)(fabs(total)) + (corrected ? low / total : 0.0);
    int bad = total != total;
    *sign = bad ? NAN : (double)((total > 0) - (total < 0));
    return bad ? NAN : total == 0 ? -INFINITY : (double)m + log_total;
}

/* A group whose weighted maximum m is not finite: NaN when a weighted entry
 * is NaN or its weight is; else -inf with sign 0 for m = -inf, and for
 * m = +inf the log (+inf) and sign of the sum of the weighted +inf terms
 * (NaN when they have both signs). */
static double K(weighted_lse_of_non_finite)(const T *x, ptrdiff_t x_step, const T *b, ptrdiff_t b_step, size_t n,
                                            T m, double *sign) {
    double infinite_terms = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double xi = (double)x[(ptrdiff_t)i * x_step], bi = (double)b[(ptrdiff_t)i * b_step];
        if (bi == 0) continue;
        if (xi != xi || bi != bi) infinite_terms = NAN;
        else if (xi == INFINITY) infinite_terms += bi > 0 ? INFINITY : -INFINITY;
    }
    if (m < 0 && infinite_terms == 0) {
        *sign = 0.0;
        return -INFINITY;
    }
    *sign = infinite_terms != infinite_terms ? NAN : infinite_terms > 0 ? 1.0 : -1.0;
    return infinite_terms != infinite_terms ? NAN : INFINITY;
}

/* Weighted logsumexp of one contiguous group (b contiguous too) the
 * careful way, from the maximum of the weighted entries. */
static void K(weighted_logsumexp_carefully)(const T *x, const T *b, size_t n, double *result, double *sign) {
    double rest, ties;
    T m = K(rmax_weighted)(x, b, n);
    if (!isfinite(m)) {
        *result = K(weighted_lse_of_non_finite)(x, 1, b, 1, n, m, sign);
        return;
    }
    K(weighted_sums)(x, b, n, m, 1, &rest, &ties);
    *result = K(signed_log_total)(rest, ties, m, sign);
}

/* The fast path's result from its sums over a group of maximum m, into
 * *result and *sign; 0 where it does not hold. */
static inline int K(weighted_fast_result)(double rest, double ties, T m, double *result, double *sign) {
    if (!isfinite(m) || !K(weighted_fast_path_holds)(rest, ties)) return 0;
    *result = K(signed_log_total)(rest, ties, m, sign);
    return 1;
}

/* Weighted logsumexp of one contiguous group (b contiguous too). */
static void K(weighted_logsumexp_row)(const T *x, const T *b, size_t n, double *result, double *sign) {
    double rest = 0.0, ties = 0.0;
    T m = K(rmax)(x, n);
    if (isfinite(m)) K(weighted_sums)(x, b, n, m, 0, &rest, &ties);
    if (!K(weighted_fast_result)(rest, ties, m, result, sign)) K(weighted_logsumexp_carefully)(x, b, n, result, sign);
}

static FSM_ALWAYS_INLINE void K(logsumexp_fstats)(const T *x, T *y, const T *b, size_t n, const fsm_params *prm,
                                                  int64_t target, K(group_stats) *st) {
    (void)y, (void)prm, (void)target;
    st->m = 0, st->rest = 0.0, st->ties = 1.0; /* a harmless total for the log taken after */
    st->weighted = b != NULL;
    if (st->weighted) {
        K(weighted_logsumexp_row)(x, b, n, &st->weighted_result, &st->weighted_sign);
        return;
    }
    st->m = K(rmax)(x, n);
    /* log_softmax's statistics pass (the row's exponential), without the store */
    if (isfinite(st->m)) K(exp_rest_and_ties)(x, n, st->m, &st->rest, &st->ties);
}

/* group_out[0] the result; with weights, group_out[1] its sign. */
static FSM_ALWAYS_INLINE void K(logsumexp_fdone)(const T *x, T *y, size_t n, const fsm_params *prm,
                                                 double *group_out, const K(group_stats) *st, T c) {
    (void)y, (void)prm;
    if (st->weighted) {
        group_out[0] = st->weighted_result, group_out[1] = st->weighted_sign;
        return;
    }
    /* in double: for float32 the result is rounded once, by the caller */
    *group_out = isfinite(st->m) ? (double)st->m + (double)c : K(lse_of_non_finite)(x, 1, n, st->m);
}

/* sum over i < n of TERM(a, b, i, m, w), in sum blocks of FSM_SUM_CHAINS
 * partial sums in ACC (T, or double where a term may overflow T), folded in
 * double with compensation (as the row sums); name##_block is one block
 * [start, end), folded.  An infinite total is returned as it is: the
 * compensation of inf is NaN, IEEE's sum is not. */
#define FSM_DEFINE_ROW_REDUCTION(name, TERM, ACC)                                                 \
    static FSM_ALWAYS_INLINE double K(name##_block)(const T *a, const T *b, size_t start, size_t end, T m, \
                                                    double w) {                                   \
        size_t i = start;                                                                         \
        ACC acc[FSM_SUM_CHAINS] = {0};                                                            \
        (void)b, (void)m, (void)w;                                                                \
        for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {                                  \
            _Pragma("omp simd") for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) acc[j] +=             \
                TERM(a, b, i + j, m, w);                                                          \
        }                                                                                         \
        for (size_t j = 0; i + j < end; ++j) acc[j] += TERM(a, b, i + j, m, w);                   \
        FSM_FOLD_CHAINS(acc);                                                                     \
        return (double)acc[0];                                                                    \
    }                                                                                             \
    static double K(name)(const T *a, const T *b, size_t n, T m, double w) {                     \
        double sum = 0.0, comp = 0.0;                                                             \
        for (size_t start = 0; start < n; start += FSM_SUM_BLOCK)                                 \
            fsm_neumaier_add(&sum, &comp, K(name##_block)(a, b, start, K(block_end)(start, n), m, w)); \
        return fsm_compensated_total(sum, comp);                                                  \
    }

#define FSM_TERM_SUM(a, b, i, m, w) (a)[i]
#define FSM_TERM_DOT(a, b, i, m, w) ((a)[i] * (b)[i])
/* w (m - x), in double: m - x may overflow T, and the sum of the m - x may
 * overflow double where their mean (w = 1 / n) does not */
#define FSM_TERM_GAP(a, b, i, m, w) ((w) * ((double)(m) - (double)(a)[i]))

FSM_DEFINE_ROW_REDUCTION(row_sum, FSM_TERM_SUM, T)
FSM_DEFINE_ROW_REDUCTION(row_dot, FSM_TERM_DOT, T)
FSM_DEFINE_ROW_REDUCTION(row_gap, FSM_TERM_GAP, double)

/* exp(y) for the backward pass of log_softmax, y <= 0 (a log-probability).
 * Exact to about 1 ulp up to y = 64 (float32) / 670 (float64); above, where
 * exp(y) * 2^B overflows, the result is unspecified (finite garbage): a
 * select that gives +inf there cost 12% of the kernel (float32 rows of
 * 1000, AVX2), and the API documents y <= 0. */
static inline T K(exp_of_log_prob)(T y) {
    /* SCALED_EXP(y, 0) without its TwoSum of y - 0, whose error term is 0 */
    T e = sizeof(T) == sizeof(float) ? (T)fsm_scaled_exp_hilo_f32((float)y, 0.0f)
                                     : (T)fsm_scaled_exp_hilo_f64((double)y, 0.0);
    return e * (T)EXP_UNSCALE;
}

/* out = y * (g - dot), dot = sum(g * y) of the group. */
static void K(softmax_backward_apply)(const T *g, T *out, const T *y, size_t n, T dot) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) out[i] = y[i] * (g[i] - dot);
}

/* out = g - exp(y) * total, total = sum(g) of the group. */
static void K(log_softmax_backward_apply)(const T *g, T *out, const T *y, size_t n, T total) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) out[i] = g[i] - K(exp_of_log_prob)(y[i]) * total;
}

static void K(softmax_backward_frow)(const T *g, T *out, const T *y, size_t n, const fsm_params *prm,
                                     int64_t target, double *group_out) {
    (void)prm, (void)target, (void)group_out;
    K(softmax_backward_apply)(g, out, y, n, (T)K(row_dot)(g, y, n, 0, 1.0));
}

static void K(log_softmax_backward_frow)(const T *g, T *out, const T *y, size_t n, const fsm_params *prm,
                                         int64_t target, double *group_out) {
    (void)prm, (void)target, (void)group_out;
    K(log_softmax_backward_apply)(g, out, y, n, (T)K(row_sum)(g, NULL, n, 0, 1.0));
}

/* sum(q) and sum(q (m - x)) over one block in double, chains as in
 * cross_entropy_probs_block: for a float block whose T sums overflowed (m - x
 * or a sum beyond FLT_MAX) or are NaN. */
static void K(cross_entropy_probs_block_f64)(const T *q, const T *x, size_t start, size_t end, T m,
                                             double *s_block, double *g_block) {
    double s_acc[FSM_SUM_CHAINS] = {0}, g_acc[FSM_SUM_CHAINS] = {0};
    for (size_t i = start; i < end; ++i) {
        size_t j = (i - start) % FSM_SUM_CHAINS;
        s_acc[j] += (double)q[i];
        g_acc[j] = fma((double)q[i], q[i] != 0 ? (double)m - (double)x[i] : 0.0, g_acc[j]);
    }
    FSM_FOLD_CHAINS(s_acc);
    FSM_FOLD_CHAINS(g_acc);
    *s_block = s_acc[0];
    *g_block = g_acc[0];
}

/* The gradient (softmax(x) - target) * scale from a scaled exp e, the
 * target's weight tq (keep * q + uniform) and the total (t, inv). */
static inline T K(cross_entropy_grad)(T e, T t, T inv, T tq, T scale) {
    return (K(quotient)(e, t, inv) - tq) * scale;
}

/* Label smoothing's target weights over n classes, each rounded once to
 * T: every class's (smoothing / n), and an index target's own (that plus
 * 1 - smoothing).  The one formula of every kernel. */
static inline T K(smoothing_uniform)(const fsm_params *prm, size_t n) { return (T)(prm->smoothing / (double)n); }
static inline T K(smoothing_hit)(const fsm_params *prm, size_t n) {
    return (T)(prm->smoothing / (double)n + (1.0 - prm->smoothing));
}

/* What the gradient of a group of n takes besides its exps and targets:
 * its total (t, and inv = 1 / t) and the options. */
typedef struct {
    T t, inv, scale, keep, uniform, hit;
} K(grad_factors);

static inline K(grad_factors) K(grad_factors_of)(double total, const fsm_params *prm, size_t n) {
    K(grad_factors) gf;
    gf.inv = INVERSE_TOTAL(total), gf.t = (T)total, gf.scale = (T)prm->grad_scale;
    gf.keep = (T)(1.0 - prm->smoothing), gf.uniform = K(smoothing_uniform)(prm, n), gf.hit = K(smoothing_hit)(prm, n);
    return gf;
}

/* The gradient of an entry with target probability qi, from its scaled exp e. */
static inline T K(cross_entropy_probs_grad)(T e, T qi, K(grad_factors) gf) {
    return K(cross_entropy_grad)(e, gf.t, gf.inv, gf.keep * qi + gf.uniform, gf.scale);
}

/* One element of cross_entropy_probs_block: q into chain s, q (m - x) into
 * chain g (q = 0 adds nothing, even at x = -inf). */
static FSM_ALWAYS_INLINE void K(cross_entropy_probs_term)(T qi, T xi, T m, T *s, T *g) {
    *s += qi;
    *g = FMA_T(qi, qi != 0 ? m - xi : (T)0, *g);
}

/* Probability targets, one sum block [start, end): *s_block = sum(q) and
 * *g_block = sum(q (m - x)) (0 where q == 0, even at x = -inf).  Element i
 * of a block goes to chain i % chains; the chains are in T (float32 in double ran the pass
 * at half the vector width), folded in double.  Each term is >= 0, so a
 * chain of k terms in T is within k rounding errors of its value; a float
 * block that overflowed (or holds a NaN) is summed again in double. */
static FSM_ALWAYS_INLINE void K(cross_entropy_probs_block)(const T *x, const T *q, size_t start, size_t end, T m,
                                                           double *s_block, double *g_block) {
    size_t i = start;
    T s_acc[FSM_SUM_CHAINS] = {0}, g_acc[FSM_SUM_CHAINS] = {0};
    for (; i + FSM_SUM_CHAINS <= end; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j)
            K(cross_entropy_probs_term)(q[i + j], x[i + j], m, &s_acc[j], &g_acc[j]);
    }
    for (size_t j = 0; i + j < end; ++j) K(cross_entropy_probs_term)(q[i + j], x[i + j], m, &s_acc[j], &g_acc[j]);
    K(fold_chains_f64)(s_acc, s_block);
    K(fold_chains_f64)(g_acc, g_block);
    if (sizeof(T) == sizeof(float) && !(isfinite(*s_block) && isfinite(*g_block)))
        K(cross_entropy_probs_block_f64)(q, x, start, end, m, s_block, g_block);
}

/* grad = (softmax(x) - q) * grad_scale for probability targets, from the
 * stored exps, on entries [begin, end). */
static void K(cross_entropy_probs_grad_pass)(T *grad, const T *q, size_t begin, size_t end, K(grad_factors) gf) {
#pragma omp simd
    for (size_t i = begin; i < end; ++i) grad[i] = K(cross_entropy_probs_grad)(grad[i], q[i], gf);
}

/* The loss of one group from c = log(sum(exp(x - m))), its maximum m, the
 * target term (x_target for an index target; q_sum and q_gap for
 * probabilities) and, with smoothing, mean_gap = mean(m - x):
 * sum(q * (c + (m - x))), each term >= 0 (no cancellation). */
static FSM_ALWAYS_INLINE double K(cross_entropy_loss)(const fsm_params *prm, int index_target, T x_target, T m,
                                                     double c, double q_sum, double q_gap, double mean_gap) {
    double keep = 1.0 - prm->smoothing, loss = 0.0;
    if (keep == 0.0) {
        /* the target itself has no weight: 0 * inf would make the loss NaN */
    } else if (index_target) {
        loss = keep * (c + ((double)m - (double)x_target));
    } else {
        loss = keep * (c * q_sum + q_gap);
    }
    if (prm->smoothing > 0) loss += prm->smoothing * (c + mean_gap);
    return loss;
}

/* grad = (softmax(x) - q) * grad_scale for an index target, from the
 * stored scaled exps, on entries [begin, end) of a group of n. */
static void K(cross_entropy_index_grad)(T *grad, size_t begin, size_t end, size_t target, K(grad_factors) gf) {
    T e_target = target >= begin && target < end ? grad[target] : (T)0;
#pragma omp simd
    for (size_t i = begin; i < end; ++i) grad[i] = K(cross_entropy_grad)(grad[i], gf.t, gf.inv, gf.uniform, gf.scale);
    if (target >= begin && target < end)
        grad[target] = K(cross_entropy_grad)(e_target, gf.t, gf.inv, gf.hit, gf.scale);
}

/* Cross entropy's exponentials are the row's (row_exp: the no-subtraction
 * form where the row maximum allows it, as log_softmax's rows), summed as
 * block_rest_row_exp sums them (the terms with x != m apart from the count
 * of the others, for the log); with the gradient they are also stored in
 * grad, in the row's form. */

/* One block of n <= FSM_SUM_BLOCK: y = the row's exps of x, and the sum of
 * those with x != m (chains and order of block_exp_rest; *ties the count of
 * the others). */
static FSM_ALWAYS_INLINE T K(block_store_exp_rest)(const T *x, T *y, size_t n, K(row_exp) e, int nosub, T *ties) {
    T acc[FSM_SUM_CHAINS] = {0}, tie_acc[FSM_SUM_CHAINS] = {0};
    size_t i = 0;
    for (; i + FSM_SUM_CHAINS <= n; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            T xi = x[i + j], is_tie = xi == e.m ? (T)1 : (T)0, ei = K(row_exp_at)(e, xi, nosub);
            y[i + j] = ei;
            acc[j] += ei * ((T)1 - is_tie), tie_acc[j] += is_tie;
        }
    }
    for (size_t j = 0; i + j < n; ++j) {
        T xi = x[i + j], is_tie = xi == e.m ? (T)1 : (T)0, ei = K(row_exp_at)(e, xi, nosub);
        y[i + j] = ei;
        acc[j] += ei * ((T)1 - is_tie), tie_acc[j] += is_tie;
    }
    *ties = K(sum_chains)(tie_acc);
    return K(sum_chains)(acc);
}

/* A row's exp of its maximum, as the block functions store it (1 ulp
 * apart in the two no-subtraction forms). */
static inline T K(tie_exp)(K(row_exp) e) {
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    if (e.nosub)
        return _mm512_cvtss_f32(fsm_scaled_exp_nosub_f32x16(_mm512_set1_ps(e.m), fsm_nosub_table_shifter(e.j),
                                                            fsm_nosub_table_lowest_n(e.lowest_n), 1));
#endif
    return e.nosub ? K(row_exp_at)(e, e.m, 1) : (T)EXP_SCALE;
}

/* One sum block of a row: block_rest_row_exp's rest and *ties, and with
 * grad (not NULL) the exps stored there. */
static FSM_ALWAYS_INLINE T K(cross_entropy_exp_block)(const T *x, T *grad, size_t n, K(row_exp) e, double to_max_scale,
                                                      T *ties) {
    if (grad == NULL) return K(block_rest_row_exp)(x, n, e, to_max_scale, ties);
    if (!e.nosub) return K(block_store_exp_rest)(x, grad, n, e, 0, ties);
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    return (T)(K(block_exp_rest_table)(x, grad, n, e, NULL, 0, 1, ties) * to_max_scale);
#else
    return (T)(K(block_store_exp_rest)(x, grad, n, e, 1, ties) * to_max_scale);
#endif
}

/* The total of the exps stored in grad, from the rest and ties the log
 * takes (rest in the TwoSum form's units): the rest back in the row's form,
 * and a tie's exp per tie. */
static inline double K(stored_exps_total)(double rest, double ties, double to_max_scale, T tie_exp) {
    return rest / to_max_scale + ties * (double)tie_exp;
}

/* The sums a row's passes before its log take, block by block in order:
 * the rest and ties of its exps, and for probability targets sum(q) and
 * sum(q (m - x)), each with compensation. */
typedef struct {
    double rest, rest_comp, ties, q_sum, q_sum_comp, q_gap, q_gap_comp;
} K(row_sums);

/* The sum block [start, end) of a row added to *sums: the exps' rest and
 * ties (stored in grad where it is not NULL) and, where q is not NULL,
 * the sums of the probability targets, while x is in cache. */
static FSM_ALWAYS_INLINE void K(cross_entropy_add_block)(const T *x, T *grad, const T *q, size_t start, size_t end,
                                                         K(row_exp) e, double to_max_scale, K(row_sums) *sums) {
    T block_ties, block_rest = K(cross_entropy_exp_block)(x + start, grad == NULL ? NULL : grad + start, end - start,
                                                          e, to_max_scale, &block_ties);
    if (start == 0) sums->rest = block_rest; /* the first block's sum as it is: Neumaier's sum of one term */
    else fsm_neumaier_add(&sums->rest, &sums->rest_comp, block_rest);
    sums->ties += block_ties;
    if (q == NULL) return;
    double s_block, g_block;
    K(cross_entropy_probs_block)(x, q, start, end, e.m, &s_block, &g_block);
    fsm_neumaier_add(&sums->q_sum, &sums->q_sum_comp, s_block);
    fsm_neumaier_add(&sums->q_gap, &sums->q_gap_comp, g_block);
}

/* The totals of a row's sums into st. */
static inline void K(set_row_totals)(K(group_stats) *st, const K(row_sums) *sums, int probs) {
    st->rest = sums->rest + sums->rest_comp, st->ties = sums->ties;
    st->q_sum = probs ? fsm_compensated_total(sums->q_sum, sums->q_sum_comp) : 0.0;
    st->q_gap = probs ? fsm_compensated_total(sums->q_gap, sums->q_gap_comp) : 0.0;
}

/* The passes over a row before its log (cross_entropy_add_block on each
 * sum block), their totals in st. */
static FSM_ALWAYS_INLINE void K(cross_entropy_row_sums)(const T *x, T *grad, const T *q, size_t n, K(row_exp) e,
                                                        double to_max_scale, K(group_stats) *st) {
    K(row_sums) sums = {0};
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK)
        K(cross_entropy_add_block)(x, grad, q, start, K(block_end)(start, n), e, to_max_scale, &sums);
    K(set_row_totals)(st, &sums, q != NULL);
}

/* What follows the log of a group: the gradient from the exps in grad and
 * their total, and with smoothing mean(m - x). */
static FSM_ALWAYS_INLINE void K(cross_entropy_target_terms)(const T *x, T *grad, const T *q, size_t n,
                                                            const fsm_params *prm, int64_t target, double total,
                                                            K(group_stats) *st) {
    if (grad != NULL) {
        K(grad_factors) gf = K(grad_factors_of)(total, prm, n);
        if (q != NULL) K(cross_entropy_probs_grad_pass)(grad, q, 0, n, gf);
        else K(cross_entropy_index_grad)(grad, 0, n, (size_t)target, gf);
    }
    st->mean_gap = prm->smoothing > 0 ? K(row_gap)(x, NULL, n, st->m, 1.0 / (double)n) : 0.0;
    st->index_target = q == NULL;
    st->x_target = q == NULL ? x[target] : (T)0;
}

static FSM_ALWAYS_INLINE void K(cross_entropy_fstats)(const T *x, T *grad, const T *q, size_t n,
                                                      const fsm_params *prm, int64_t target, K(group_stats) *st) {
    K(row_exp) e = K(row_exp_for)(st->m = K(rmax)(x, n));
    double to_max_scale = K(to_max_scale)(e), total = 0.0;
    K(cross_entropy_row_sums)(x, grad, q, n, e, to_max_scale, st);
    if (grad != NULL) total = K(stored_exps_total)(st->rest, st->ties, to_max_scale, K(tie_exp)(e));
    K(cross_entropy_target_terms)(x, grad, q, n, prm, target, total, st);
}

static FSM_ALWAYS_INLINE void K(cross_entropy_fdone)(const T *x, T *grad, size_t n, const fsm_params *prm,
                                                     double *group_out, const K(group_stats) *st, T c) {
    (void)x, (void)grad, (void)n;
    /* c = log(total) is NaN for a group with NaN or +inf, or all -inf */
    *group_out = K(cross_entropy_loss)(prm, st->index_target, st->x_target, st->m, (double)c, st->q_sum, st->q_gap,
                                       st->mean_gap);
}

/* The row kernel and the row-group kernel `frows` (kernels.h) of an op
 * with a log of the total, from its two steps: OP_fstats (the passes over a
 * group) and OP_fdone (what follows the log).  The group kernel takes the
 * log of all its groups' totals at once, in SIMD lanes: one at a time, in
 * double, it cost about half a float32 log_softmax of rows of 128. */
#define FSM_DEFINE_LOG_TOTAL_KERNELS(op, frows)                                                           \
    static void K(op##_frow)(const T *x, T *y, const T *b, size_t n, const fsm_params *prm, int64_t target, \
                             double *group_out) {                                                        \
        K(group_stats) st;                                                                                \
        K(op##_fstats)(x, y, b, n, prm, target, &st);                                                     \
        K(op##_fdone)(x, y, n, prm, group_out, &st, LOG_TOTAL(st.rest, st.ties, st.m));                   \
    }                                                                                                     \
    static void K(frows)(const T *const *x, T *const *y, const T *const *b, size_t n, size_t count,       \
                              const fsm_params *prm, const int64_t *targets, double *const *group_out) {  \
        K(group_stats) st[FSM_ROW_GROUP];                                                                 \
        T m[FSM_ROW_GROUP], c[FSM_ROW_GROUP];                                                             \
        double rest[FSM_ROW_GROUP], ties[FSM_ROW_GROUP];                                                  \
        for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {                                                      \
            m[g] = 0, rest[g] = 0.0, ties[g] = 1.0; /* unused lanes: a harmless total of 1 */              \
            if (g >= count) continue;                                                                     \
            K(op##_fstats)(x[g], y == NULL ? NULL : y[g], b == NULL ? NULL : b[g], n, prm,                \
                           targets == NULL ? 0 : targets[g], &st[g]);                                     \
            m[g] = st[g].m, rest[g] = st[g].rest, ties[g] = st[g].ties;                                   \
        }                                                                                                 \
        _Pragma("omp simd") for (size_t g = 0; g < FSM_ROW_GROUP; ++g) c[g] = LOG_TOTAL(rest[g], ties[g], m[g]); \
        for (size_t g = 0; g < count; ++g)                                                                \
            K(op##_fdone)(x[g], y == NULL ? NULL : y[g], n, prm, group_out == NULL ? NULL : group_out[g], &st[g], \
                          c[g]);                                                                          \
    }

FSM_DEFINE_LOG_TOTAL_KERNELS(logsumexp, logsumexp_frows_any_length)
FSM_DEFINE_LOG_TOTAL_KERNELS(cross_entropy, cross_entropy_frows_any_length)

/* Plain logsumexp of count rows of one sum block each, as logsumexp_frow
 * computes them (exp_rest_and_ties on one block), with the per-row factor
 * of the no-subtraction form (a double exp) taken across the rows in SIMD
 * lanes with the log: one row at a time it took about a tenth of a float32
 * row of 128. */
static void K(logsumexp_one_block_rows)(const T *const *x, size_t n, size_t count, double *const *group_out) {
    T m[FSM_ROW_GROUP], j[FSM_ROW_GROUP], block_rest[FSM_ROW_GROUP], c[FSM_ROW_GROUP];
    double ties[FSM_ROW_GROUP];
    int nosub[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        m[g] = 0, j[g] = 0, nosub[g] = 0, block_rest[g] = 0, ties[g] = 1.0; /* unused lanes: a total of 1 */
        if (g >= count || !isfinite(m[g] = K(rmax)(x[g], n))) continue;
        K(row_exp) e = K(row_exp_for)(m[g]);
        T block_ties;
        block_rest[g] = K(block_rest_row_exp)(x[g], n, e, 1.0, &block_ties); /* its factor below */
        j[g] = e.j, nosub[g] = e.nosub, ties[g] = block_ties;
    }
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        c[g] = LOG_TOTAL(K(one_block_rest)(block_rest[g], m[g], j[g], nosub[g]), ties[g], m[g]);
    }
    for (size_t g = 0; g < count; ++g)
        *group_out[g] = isfinite(m[g]) ? (double)m[g] + (double)c[g] : K(lse_of_non_finite)(x[g], 1, n, m[g]);
}

/* Weighted logsumexp of count rows, as weighted_logsumexp_row computes
 * them, with the fast path's log taken across the rows in SIMD lanes, and
 * for rows of one sum block the factor of the no-subtraction form (a
 * double exp) too, as logsumexp_one_block_rows takes it. */
static void K(weighted_logsumexp_rows)(const T *const *x, const T *const *b, size_t n, size_t count,
                                       double *const *group_out) {
    T m[FSM_ROW_GROUP], j[FSM_ROW_GROUP];
    int scale_later[FSM_ROW_GROUP];
    double rest[FSM_ROW_GROUP], ties[FSM_ROW_GROUP], result[FSM_ROW_GROUP], sign[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        m[g] = 0, j[g] = 0, scale_later[g] = 0, rest[g] = 0.0, ties[g] = 1.0; /* unused lanes: a total of 1 */
        if (g >= count || !isfinite(m[g] = K(rmax)(x[g], n))) continue;
        if (n > FSM_SUM_BLOCK) {
            K(weighted_sums)(x[g], b[g], n, m[g], 0, &rest[g], &ties[g]);
            continue;
        }
        K(row_exp) e = K(row_exp_for)(m[g]);
        scale_later[g] = !K(weighted_block_unscaled)(x[g], b[g], 0, n, e, 0, &rest[g], &ties[g]) && e.nosub;
        j[g] = e.j;
    }
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        double scaled = scale_later[g] ? rest[g] * fsm_nosub_to_max_scale((double)m[g], (double)j[g]) : rest[g];
        result[g] = K(signed_log_total)(scaled, ties[g], m[g], &sign[g]);
        rest[g] = scaled;
    }
    for (size_t g = 0; g < count; ++g) {
        if (!isfinite(m[g]) || !K(weighted_fast_path_holds)(rest[g], ties[g]))
            K(weighted_logsumexp_carefully)(x[g], b[g], n, &result[g], &sign[g]);
        group_out[g][0] = result[g], group_out[g][1] = sign[g];
    }
}

static void K(logsumexp_frows)(const T *const *x, T *const *y, const T *const *b, size_t n, size_t count,
                               const fsm_params *prm, const int64_t *targets, double *const *group_out) {
    if (b != NULL) K(weighted_logsumexp_rows)(x, b, n, count, group_out);
    else if (n <= FSM_SUM_BLOCK) K(logsumexp_one_block_rows)(x, n, count, group_out);
    else K(logsumexp_frows_any_length)(x, y, b, n, count, prm, targets, group_out);
}

/* Cross entropy on count rows of one sum block each, as cross_entropy_frow
 * computes them, with each row's factor of the no-subtraction form (a
 * double exp), its log and its gradient's total taken across the rows in
 * SIMD lanes, as logsumexp_one_block_rows takes them. */
static FSM_ALWAYS_INLINE void K(cross_entropy_one_block_body)(const T *const *x, T *const *grad, const T *const *q,
                                                              size_t n, size_t count, const fsm_params *prm,
                                                              const int64_t *targets, double *const *loss,
                                                              int with_grad, int probs) {
    K(group_stats) st[FSM_ROW_GROUP];
    T m[FSM_ROW_GROUP], j[FSM_ROW_GROUP], block_rest[FSM_ROW_GROUP], tie_exp[FSM_ROW_GROUP], c[FSM_ROW_GROUP];
    double ties[FSM_ROW_GROUP], total[FSM_ROW_GROUP];
    int nosub[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        m[g] = 0, j[g] = 0, nosub[g] = 0, block_rest[g] = 0, ties[g] = 1.0, tie_exp[g] = 1; /* unused lanes */
        if (g >= count) continue;
        K(row_exp) e = K(row_exp_for)(st[g].m = m[g] = K(rmax)(x[g], n));
        K(row_sums) sums = {0};
        K(cross_entropy_add_block)(x[g], with_grad ? grad[g] : NULL, probs ? q[g] : NULL, 0, n, e, 1.0, &sums);
        K(set_row_totals)(&st[g], &sums, probs);
        block_rest[g] = (T)st[g].rest; /* its factor below */
        j[g] = e.j, nosub[g] = e.nosub, ties[g] = st[g].ties;
        if (with_grad) tie_exp[g] = K(tie_exp)(e);
    }
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        double rest = K(one_block_rest)(block_rest[g], m[g], j[g], nosub[g]);
        c[g] = LOG_TOTAL(rest, ties[g], m[g]);
        if (with_grad) {
            double to_max_scale = nosub[g] ? fsm_nosub_to_max_scale((double)m[g], (double)j[g]) : 1.0;
            total[g] = K(stored_exps_total)(rest, ties[g], to_max_scale, tie_exp[g]);
        }
    }
    for (size_t g = 0; g < count; ++g) {
        T *grad_g = with_grad ? grad[g] : NULL;
        K(cross_entropy_target_terms)(x[g], grad_g, probs ? q[g] : NULL, n, prm, probs ? 0 : targets[g],
                                      with_grad ? total[g] : 0.0, &st[g]);
        K(cross_entropy_fdone)(x[g], grad_g, n, prm, loss[g], &st[g], c[g]);
    }
}

/* One function, the four bodies: each combination compiles to its own loops. */
static void K(cross_entropy_one_block_rows)(const T *const *x, T *const *grad, const T *const *q, size_t n,
                                            size_t count, const fsm_params *prm, const int64_t *targets,
                                            double *const *loss) {
    if (grad != NULL && q != NULL) K(cross_entropy_one_block_body)(x, grad, q, n, count, prm, targets, loss, 1, 1);
    else if (grad != NULL) K(cross_entropy_one_block_body)(x, grad, q, n, count, prm, targets, loss, 1, 0);
    else if (q != NULL) K(cross_entropy_one_block_body)(x, grad, q, n, count, prm, targets, loss, 0, 1);
    else K(cross_entropy_one_block_body)(x, grad, q, n, count, prm, targets, loss, 0, 0);
}

static void K(cross_entropy_frows)(const T *const *x, T *const *y, const T *const *b, size_t n, size_t count,
                                   const fsm_params *prm, const int64_t *targets, double *const *group_out) {
    /* float64 rows have no factor to take in lanes (the TwoSum form): row by
     * row, each gradient is written while its row is in cache (float64 rows
     * of 128 with their gradient: 1.25 -> 1.45x log_softmax in lanes) */
    if (ROW_EXP_NOSUB && n <= FSM_SUM_BLOCK) K(cross_entropy_one_block_rows)(x, y, b, n, count, prm, targets, group_out);
    else K(cross_entropy_frows_any_length)(x, y, b, n, count, prm, targets, group_out);
}
