/*
 * The steps of a group split across threads (contracts: kernels.h, "split
 * rows"), instantiated per dtype by variant.c after the row kernels whose
 * block functions they run: the plain softmax/log_softmax ones
 * (softmax_rows.inc.c) and the family's (family_rows.inc.c).  A step sees
 * the whole group and works on the blocks of its chunk [begin, end), so it
 * takes the blocks' sums exactly as the row kernel does; the fold adds
 * them in the row kernel's order.
 */

#define BLOCK_SUMS(k) (sums + (k) * FSM_SPLIT_SUMS)

/* (sum, comp) of sums slot `slot` over the group's blocks, in order. */
static void K(split_add_blocks)(const double *sums, size_t n, int slot, double *sum, double *comp) {
    *sum = 0.0, *comp = 0.0;
    for (size_t start = 0, k = 0; start < n; start += FSM_SUM_BLOCK, ++k)
        fsm_neumaier_add(sum, comp, BLOCK_SUMS(k)[slot]);
}

/* The total of slot 0 as fam_sums and raddstore_scaled_exp take it, and the
 * tie count of slot 1 as they add it (in double, in order). */
static double K(split_rest)(const double *sums, size_t n, double *ties) {
    double sum, comp, tie_total = 0.0;
    K(split_add_blocks)(sums, n, 0, &sum, &comp);
    for (size_t start = 0, k = 0; start < n; start += FSM_SUM_BLOCK, ++k) tie_total += BLOCK_SUMS(k)[1];
    *ties = tie_total;
    return sum + comp;
}

/* The compensated total of slot `slot`, as the row reductions return it. */
static double K(split_total)(const double *sums, size_t n, int slot) {
    double sum, comp;
    K(split_add_blocks)(sums, n, slot, &sum, &comp);
    return fsm_compensated_total(sum, comp);
}

static T K(split_max)(const T *x, size_t n, const fsm_params *prm) {
    (void)prm;
    return K(rmax)(x, n);
}

/* The maximum, or the minimum for a negative scale (as softmax_frow). */
static T K(split_scaled_ref)(const T *x, size_t n, const fsm_params *prm) {
    return K(rmax_signed)(x, n, prm->scale_hi < 0 ? (T)-1 : (T)1);
}

/* --- plain softmax and log_softmax: the plain row kernels' pieces -------- */

static void K(softmax_split_blocks)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                    const fsm_params *prm, int64_t target, double *sums) {
    (void)b, (void)n, (void)prm, (void)target;
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK) {
        T block_sum, unused;
        K(softmax_rblocks)(x + start, y + start, K(block_end)(start, end) - start, m, &block_sum, &unused);
        BLOCK_SUMS(start / FSM_SUM_BLOCK)[0] = block_sum;
    }
}

static double K(softmax_split_fold)(const T *x, const T *b, size_t n, T m, const fsm_params *prm, int64_t target,
                                    const double *sums, double *group_out) {
    (void)x, (void)b, (void)m, (void)prm, (void)target, (void)group_out;
    double sum, comp;
    K(split_add_blocks)(sums, n, 0, &sum, &comp);
    return sum + comp;
}

static void K(softmax_split_finish)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                    const fsm_params *prm, int64_t target, double c) {
    (void)b, (void)n, (void)prm, (void)target;
    K(softmax_finish)(x + begin, y + begin, end - begin, m, c);
}

static void K(log_softmax_split_blocks)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                        const fsm_params *prm, int64_t target, double *sums) {
    (void)b, (void)n, (void)prm, (void)target;
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK) {
        T block_sum, block_ties;
        K(log_softmax_rblocks)(x + start, y + start, K(block_end)(start, end) - start, m, &block_sum, &block_ties);
        BLOCK_SUMS(start / FSM_SUM_BLOCK)[0] = block_sum, BLOCK_SUMS(start / FSM_SUM_BLOCK)[1] = block_ties;
    }
}

/* log(total) as log_softmax_row takes it (LOG_TOTAL of this variant). */
static double K(log_total_split_fold)(const T *x, const T *b, size_t n, T m, const fsm_params *prm,
                                      int64_t target, const double *sums, double *group_out) {
    (void)x, (void)b, (void)prm, (void)target, (void)group_out;
    double ties, rest = K(split_rest)(sums, n, &ties);
    return LOG_TOTAL(rest, ties, m);
}

static void K(log_softmax_split_finish)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                        const fsm_params *prm, int64_t target, double c) {
    (void)b, (void)n, (void)prm, (void)target;
    K(log_softmax_finish)(x + begin, y + begin, end - begin, m, c);
}

/* --- the family: frow's pieces -------------------------------------------- */

/* The blocks of [begin, end) through fam_block (see fam_sums): slot 0 the
 * rest, slot 1 the ties. */
static FSM_ALWAYS_INLINE void K(fam_split_blocks)(const T *x, T *y, size_t begin, size_t end, T m,
                                                  const K(scaling) *sc, int form, int store, int split_ties,
                                                  double *sums) {
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK) {
        T rest, ties;
        K(fam_block)(x, y, start, K(block_end)(start, end), m, sc, form, store, split_ties, &rest, &ties);
        BLOCK_SUMS(start / FSM_SUM_BLOCK)[0] = rest, BLOCK_SUMS(start / FSM_SUM_BLOCK)[1] = ties;
    }
}

/* Scaled softmax's blocks, as softmax_fsums takes them: the exps stored,
 * in the form the group allows. */
static void K(softmax_fsplit_blocks)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                     const fsm_params *prm, int64_t target, double *sums) {
    (void)b, (void)n, (void)target;
    K(scaling) sc = K(scaling_of)(prm);
    T shifter;
    if (K(scaled_group_nosub)(&sc, m, prm, &shifter))
        K(fam_split_blocks)(x, y, begin, end, shifter, &sc, FSM_FORM_SCALED_NOSUB, FSM_STORE_EXP, 0, sums);
    else
        K(fam_split_blocks)(x, y, begin, end, m, &sc, FSM_FORM_SCALED, FSM_STORE_EXP, 0, sums);
}

/* Scaled log_softmax's blocks, as log_softmax_fstats takes them: slot 0
 * the rest, slot 1 the ties; in the no-subtraction form where the group
 * allows (scaled_exp_rest_and_ties' blocks), else in the form
 * exp((x - m) * s) with z stored. */
static void K(log_softmax_fsplit_blocks)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                         const fsm_params *prm, int64_t target, double *sums) {
    (void)b, (void)n, (void)target;
    K(scaling) sc = K(scaling_of)(prm);
    T shifter;
    if (!K(scaled_group_nosub)(&sc, m, prm, &shifter)) {
        K(fam_split_blocks)(x, y, begin, end, m, &sc, FSM_FORM_SCALED, FSM_STORE_Z, 1, sums);
        return;
    }
    double to_max_scale = K(scaled_to_max_scale)(m, shifter, prm);
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK) {
        double *block = BLOCK_SUMS(start / FSM_SUM_BLOCK);
        T ties;
        block[0] = (T)(K(scaled_block_exp_rest)(x + start, K(block_end)(start, end) - start, m, shifter, &sc, &ties) *
                       to_max_scale);
        block[1] = ties;
    }
}

/* log(total) unrounded, as log_softmax_frow takes it (log_total_wide). */
static double K(log_softmax_fsplit_fold)(const T *x, const T *b, size_t n, T m, const fsm_params *prm,
                                         int64_t target, const double *sums, double *group_out) {
    (void)x, (void)b, (void)prm, (void)target, (void)group_out;
    double ties, rest = K(split_rest)(sums, n, &ties);
    return K(log_total_wide)(rest, ties, m);
}

static void K(softmax_fsplit_finish)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                     const fsm_params *prm, int64_t target, double c) {
    (void)x, (void)b, (void)n, (void)m, (void)prm, (void)target;
    K(vnormalize)(y + begin, y + begin, end - begin, c);
}

/* y from c, as log_softmax_fdone. */
static void K(log_softmax_fsplit_finish)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                         const fsm_params *prm, int64_t target, double c) {
    (void)b, (void)n, (void)target;
    K(scaling) sc = K(scaling_of)(prm);
    T shifter;
    K(group_stats) st;
    st.m = m, st.nosub = K(scaled_group_nosub)(&sc, m, prm, &shifter);
    K(log_softmax_fdone)(x + begin, y + begin, end - begin, prm, &st, c);
}

/* Logsumexp: log_softmax's sum blocks (no y), as logsumexp_fstats takes
 * its sums; with weights, weighted_sums' blocks of the fast path (slot 0
 * the rest, 1 the ties). */
static void K(logsumexp_fsplit_blocks)(const T *x, T *y, const T *b, size_t n, size_t begin, size_t end, T m,
                                       const fsm_params *prm, int64_t target, double *sums) {
    (void)y, (void)n, (void)prm, (void)target;
    if (!isfinite(m)) return;
    double to_max_scale = 1.0;
    K(row_exp) e = K(weighted_row_exp)(m, 0, &to_max_scale); /* the fast path's, as weighted_sums forms it */
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK) {
        double *block = BLOCK_SUMS(start / FSM_SUM_BLOCK);
        size_t block_end = K(block_end)(start, end);
        if (b != NULL) {
            K(weighted_block_in_form)(x, b, start, block_end, e, to_max_scale, 0, &block[0], &block[1]);
            continue;
        }
        T rest, ties;
        K(log_softmax_rblocks)(x + start, NULL, block_end - start, m, &rest, &ties);
        block[0] = rest, block[1] = ties;
    }
}

/* The result (and with weights its sign) into group_out, as
 * logsumexp_frow: a weighted group whose fast path does not hold is summed
 * again the careful way, on this one thread. */
static double K(logsumexp_fsplit_fold)(const T *x, const T *b, size_t n, T m, const fsm_params *prm,
                                       int64_t target, const double *sums, double *group_out) {
    if (b != NULL) {
        double rest = 0.0, ties = 0.0;
        if (isfinite(m)) rest = K(split_rest)(sums, n, &ties);
        if (!K(weighted_fast_result)(rest, ties, m, &group_out[0], &group_out[1]))
            K(weighted_logsumexp_carefully)(x, b, n, &group_out[0], &group_out[1]);
        return 0.0;
    }
    K(group_stats) st;
    st.m = m, st.weighted = 0;
    double c = isfinite(m) ? K(log_total_split_fold)(x, b, n, m, prm, target, sums, NULL) : 0.0;
    K(logsumexp_fdone)(x, NULL, n, prm, group_out, &st, (T)c);
    return c;
}

static void K(softmax_backward_fsplit_blocks)(const T *g, T *out, const T *y, size_t n, size_t begin, size_t end,
                                              T m, const fsm_params *prm, int64_t target, double *sums) {
    (void)out, (void)n, (void)m, (void)prm, (void)target;
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK)
        BLOCK_SUMS(start / FSM_SUM_BLOCK)[0] = K(row_dot_block)(g, y, start, K(block_end)(start, end), 0, 1.0);
}

static void K(log_softmax_backward_fsplit_blocks)(const T *g, T *out, const T *y, size_t n, size_t begin,
                                                  size_t end, T m, const fsm_params *prm, int64_t target,
                                                  double *sums) {
    (void)out, (void)y, (void)n, (void)m, (void)prm, (void)target;
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK)
        BLOCK_SUMS(start / FSM_SUM_BLOCK)[0] = K(row_sum_block)(g, NULL, start, K(block_end)(start, end), 0, 1.0);
}

/* sum(g * y) or sum(g), as row_dot and row_sum return them. */
static double K(backward_fsplit_fold)(const T *g, const T *y, size_t n, T m, const fsm_params *prm,
                                      int64_t target, const double *sums, double *group_out) {
    (void)g, (void)y, (void)m, (void)prm, (void)target, (void)group_out;
    return K(split_total)(sums, n, 0);
}

static void K(softmax_backward_fsplit_finish)(const T *g, T *out, const T *y, size_t n, size_t begin, size_t end,
                                              T m, const fsm_params *prm, int64_t target, double c) {
    (void)n, (void)m, (void)prm, (void)target;
    K(softmax_backward_apply)(g + begin, out + begin, y + begin, end - begin, (T)c);
}

static void K(log_softmax_backward_fsplit_finish)(const T *g, T *out, const T *y, size_t n, size_t begin,
                                                  size_t end, T m, const fsm_params *prm, int64_t target,
                                                  double c) {
    (void)n, (void)m, (void)prm, (void)target;
    K(log_softmax_backward_apply)(g + begin, out + begin, y + begin, end - begin, (T)c);
}

/* Cross entropy, q the probabilities (NULL for an index target): slots 0
 * and 1 the exps' rest and ties, 2 and 3 sum(q) and sum(q (m - x)), as
 * cross_entropy_row_sums takes them (the exps kept in grad for finish), 4
 * the blocks of mean(m - x) with smoothing.  The gradient waits for the
 * total, in finish. */
static void K(cross_entropy_fsplit_blocks)(const T *x, T *grad, const T *q, size_t n, size_t begin, size_t end,
                                           T m, const fsm_params *prm, int64_t target, double *sums) {
    (void)target;
    K(row_exp) e = K(row_exp_for)(m);
    double to_max_scale = K(to_max_scale)(e);
    for (size_t start = begin; start < end; start += FSM_SUM_BLOCK) {
        double *block = BLOCK_SUMS(start / FSM_SUM_BLOCK);
        size_t block_end = K(block_end)(start, end);
        T ties;
        block[0] = K(cross_entropy_exp_block)(x + start, grad == NULL ? NULL : grad + start, block_end - start, e,
                                              to_max_scale, &ties);
        block[1] = ties;
        if (q != NULL)
            K(cross_entropy_probs_block)(x, q, start, block_end, m, &block[2], &block[3]);
        if (prm->smoothing > 0) block[4] = K(row_gap_block)(x, NULL, start, block_end, m, 1.0 / (double)n);
    }
}

/* The loss into group_out, as cross_entropy_frow; returns the total. */
static double K(cross_entropy_fsplit_fold)(const T *x, const T *q, size_t n, T m, const fsm_params *prm,
                                           int64_t target, const double *sums, double *group_out) {
    K(group_stats) st;
    st.m = m;
    st.rest = K(split_rest)(sums, n, &st.ties);
    st.q_sum = q == NULL ? 0.0 : K(split_total)(sums, n, 2);
    st.q_gap = q == NULL ? 0.0 : K(split_total)(sums, n, 3);
    st.mean_gap = prm->smoothing > 0 ? K(split_total)(sums, n, 4) : 0.0;
    st.index_target = q == NULL;
    st.x_target = q == NULL ? x[target] : (T)0;
    K(cross_entropy_fdone)(x, NULL, n, prm, group_out, &st, LOG_TOTAL(st.rest, st.ties, st.m));
    K(row_exp) e = K(row_exp_for)(m);
    return K(stored_exps_total)(st.rest, st.ties, K(to_max_scale)(e), K(tie_exp)(e));
}

static void K(cross_entropy_fsplit_finish)(const T *x, T *grad, const T *q, size_t n, size_t begin, size_t end,
                                           T m, const fsm_params *prm, int64_t target, double total) {
    (void)x, (void)m;
    K(grad_factors) gf = K(grad_factors_of)(total, prm, n);
    if (q == NULL) K(cross_entropy_index_grad)(grad, begin, end, (size_t)target, gf);
    else K(cross_entropy_probs_grad_pass)(grad, q, begin, end, gf);
}

#undef BLOCK_SUMS
