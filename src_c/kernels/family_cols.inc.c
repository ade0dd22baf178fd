/*
 * Family lane kernels (contracts: kernels.h): `lanes` groups side by side,
 * lane j reading x[i * x_step + j], as the plain column kernels; they serve
 * the column plan directly and the short-row plan on transposed blocks.
 * Instantiated per dtype by variant.c after family_rows.inc.c, whose
 * primitives (fam_exp, scaling_of, cross_entropy_loss) they reuse, so a
 * group gives the same arithmetic whether it runs as a row or a lane, up to
 * the order of the sums.  Per-lane sums are taken in blocks of
 * FSM_COLS_SUM_BLOCK rows in T and added in double with compensation.
 * work holds 10 slots of `lanes` doubles (a slot may hold T values).
 */

#define SLOT(k) (work + (size_t)(k) * lanes)

/* m[j] = sign * max(sign * x) over lane j: the maximum, or for sign < 0 the
 * minimum; NaN passed over. */
static void K(flanes_max)(const T *x, ptrdiff_t x_step, size_t n, size_t lanes, T sign, T *m) {
    if (sign > 0) {
        K(cols_max)(x, x_step, n, lanes, m, 1);
        return;
    }
    for (size_t j = 0; j < lanes; ++j) m[j] = (T)INFINITY;
    for (size_t i = 0; i < n; ++i) {
        const T *row = x + (ptrdiff_t)i * x_step;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) m[j] = row[j] < m[j] ? row[j] : m[j];
    }
}

/* The lanes' block sums into their compensated totals, and the blocks
 * cleared. */
static void K(flanes_fold)(size_t lanes, T *block, T *block_ties, double *rest, double *comp, double *ties) {
    for (size_t j = 0; j < lanes; ++j) {
        fsm_neumaier_add(&rest[j], &comp[j], block[j]);
        ties[j] += block_ties[j];
        block[j] = 0, block_ties[j] = 0;
    }
}

/* One term of flanes_sums: the scaled exp of x, with in *stored what
 * `store` says to store (the exp or z) and in *tie whether it is a tie
 * (x == m, counted apart). */
static FSM_ALWAYS_INLINE T K(flanes_term)(T x, T m, const K(scaling) *sc, int scaled, int store, int split_ties,
                                          T *stored, T *tie) {
    T z, e = K(fam_exp)(x, m, sc, scaled, store == FSM_STORE_Z, &z);
    *stored = store == FSM_STORE_Z ? z : e;
    *tie = split_ties && x == m ? (T)1 : (T)0;
    return e * ((T)1 - *tie);
}

/* Per lane: rest[j] = the sum of the scaled exps (of x != m[j] when
 * split_ties, whose count goes to ties[j]), with exps or z stored in y as
 * `store` says.  Four rows a step, as the plain column kernels (block[j]
 * lives in memory, and one row a step waited on storing and reloading it);
 * blocks of FSM_COLS_SUM_BLOCK rows go into the compensated total.  block,
 * block_ties: scratch lanes in T; comp: in double.  y is stored to by
 * index in the loops (through a pointer per lane, the stores became
 * scatters). */
static FSM_ALWAYS_INLINE void K(flanes_sums)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step, size_t n,
                                             size_t lanes, const T *m, const K(scaling) *sc, int scaled,
                                             int store, int split_ties, T *block, T *block_ties,
                                             double *rest, double *comp, double *ties) {
    _Static_assert(FSM_COLS_SUM_BLOCK % 4 == 0, "blocks of whole steps");
    for (size_t j = 0; j < lanes; ++j) block[j] = 0, block_ties[j] = 0, rest[j] = 0, comp[j] = 0, ties[j] = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const T *x0 = x + (ptrdiff_t)i * x_step;
        T *y0 = store == FSM_STORE_NOTHING ? NULL : y + (ptrdiff_t)i * y_step;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T t0, t1, t2, t3, s0, s1, s2, s3;
            T e0 = K(flanes_term)(x0[j], m[j], sc, scaled, store, split_ties, &s0, &t0);
            T e1 = K(flanes_term)(x0[x_step + j], m[j], sc, scaled, store, split_ties, &s1, &t1);
            T e2 = K(flanes_term)(x0[2 * x_step + j], m[j], sc, scaled, store, split_ties, &s2, &t2);
            T e3 = K(flanes_term)(x0[3 * x_step + j], m[j], sc, scaled, store, split_ties, &s3, &t3);
            if (store != FSM_STORE_NOTHING)
                y0[j] = s0, y0[y_step + j] = s1, y0[2 * y_step + j] = s2, y0[3 * y_step + j] = s3;
            block[j] += (e0 + e1) + (e2 + e3);
            block_ties[j] += (t0 + t1) + (t2 + t3);
        }
        if ((i + 4) % FSM_COLS_SUM_BLOCK == 0) K(flanes_fold)(lanes, block, block_ties, rest, comp, ties);
    }
    for (; i < n; ++i) {
        const T *xr = x + (ptrdiff_t)i * x_step;
        T *yr = store == FSM_STORE_NOTHING ? NULL : y + (ptrdiff_t)i * y_step;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T t, stored;
            block[j] += K(flanes_term)(xr[j], m[j], sc, scaled, store, split_ties, &stored, &t);
            block_ties[j] += t;
            if (store != FSM_STORE_NOTHING) yr[j] = stored;
        }
    }
    K(flanes_fold)(lanes, block, block_ties, rest, comp, ties);
    for (size_t j = 0; j < lanes; ++j) rest[j] += comp[j];
}

#ifndef FSM_LANE_SUM_DEFINED
#define FSM_LANE_SUM_DEFINED
enum { FSM_LANE_SUM = 0, FSM_LANE_DOT = 1 };
#endif

/* Per lane: total[j] = sum of a (kind SUM) or of a * b (DOT) over lane j. */
static void K(flanes_reduce)(const T *a, ptrdiff_t a_step, const T *b, ptrdiff_t b_step, size_t n, size_t lanes,
                             int kind, int prefetch, T *block, double *total, double *comp) {
    for (size_t j = 0; j < lanes; ++j) block[j] = 0, total[j] = 0, comp[j] = 0;
    for (size_t i = 0; i < n; ++i) {
        const T *ar = a + (ptrdiff_t)i * a_step, *br = b + (ptrdiff_t)i * b_step;
        K(prefetch_row)(a, a_step, i, n, lanes, prefetch);
        if (kind == FSM_LANE_DOT) K(prefetch_row)(b, b_step, i, n, lanes, prefetch);
        if (kind == FSM_LANE_DOT) {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) block[j] += ar[j] * br[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) block[j] += ar[j];
        }
        if ((i + 1) % FSM_COLS_SUM_BLOCK == 0 || i + 1 == n)
            for (size_t j = 0; j < lanes; ++j) fsm_neumaier_add(&total[j], &comp[j], block[j]), block[j] = 0;
    }
    for (size_t j = 0; j < lanes; ++j) total[j] = isfinite(total[j]) ? total[j] + comp[j] : total[j];
}

/* Whether every lane takes softmax's no-subtraction form (as softmax_fsums
 * decides for a row); if so, shifter[j] is lane j's.  Every lane's, without
 * an early exit, so that the loop vectorises: with one, the per-lane
 * constants cost short rows of 10 more than the exps saved. */
static int K(flanes_nosub)(K(scaling) *sc, const T *m, size_t lanes, const fsm_params *prm, T *shifter) {
    if (!K(scaled_nosub_scale)(sc, prm)) return 0;
    int nosub = 1;
    for (size_t j = 0; j < lanes; ++j) nosub &= K(scaled_nosub_shifter)(m[j], prm, &shifter[j]);
    return nosub;
}

/* The scaled softmax's passes but the last on `lanes` groups: y holds the
 * exps (log: the scaled x - m), and per lane the last pass takes
 * y = quotient(y, a, c) (log: y - c); softmax in the no-subtraction form
 * where every lane allows it (flanes_nosub). */
static FSM_ALWAYS_INLINE void K(scaled_softmax_flanes_sums)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                                                            size_t n, size_t lanes, const fsm_params *prm,
                                                            double *work, int log, T *a, T *c) {
    K(scaling) sc = K(scaling_of)(prm);
    T *m = (T *)SLOT(0), *block = (T *)SLOT(1), *block_ties = (T *)SLOT(2), *shifter = (T *)SLOT(8);
    double *rest = SLOT(3), *comp = SLOT(4), *ties = SLOT(5);
    K(flanes_max)(x, x_step, n, lanes, sc.s_hi < 0 ? (T)-1 : (T)1, m);
    if (!log && K(flanes_nosub)(&sc, m, lanes, prm, shifter))
        K(flanes_sums)(x, x_step, y, y_step, n, lanes, shifter, &sc, FSM_FORM_SCALED_NOSUB, FSM_STORE_EXP, 0, block,
                       block_ties, rest, comp, ties);
    else
        K(flanes_sums)(x, x_step, y, y_step, n, lanes, m, &sc, FSM_FORM_SCALED, log ? FSM_STORE_Z : FSM_STORE_EXP,
                       log, block, block_ties, rest, comp, ties);
    for (size_t j = 0; j < lanes; ++j) {
        if (log) c[j] = LOG_TOTAL(rest[j], ties[j], m[j]);
        else a[j] = (T)rest[j], c[j] = INVERSE_TOTAL(rest[j]);
    }
}

static FSM_ALWAYS_INLINE void K(scaled_softmax_flanes_body)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                                                            size_t n, size_t lanes, const fsm_params *prm,
                                                            double *work, int log) {
    T *a = (T *)SLOT(6), *c = (T *)SLOT(7);
    K(scaled_softmax_flanes_sums)(x, x_step, y, y_step, n, lanes, prm, work, log, a, c);
    for (size_t i = 0; i < n; ++i) {
        T *yr = y + (ptrdiff_t)i * y_step;
        if (log) {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) yr[j] -= c[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) yr[j] = K(quotient)(yr[j], a[j], c[j]);
        }
    }
}

/* The scaled softmax on count short rows, as the plain short-row kernels
 * run the plain one: the lane kernel's passes on the transposed rows, the
 * last fused into the transpose back (log: (v - 0) - c is v - c exactly). */
static FSM_ALWAYS_INLINE void K(scaled_softmax_fshort_body)(const T *const *x, T *const *y, size_t n, size_t count,
                                                            const fsm_params *prm, T *buf, double *work, int log) {
    const size_t lanes = count;
    T *a = (T *)SLOT(6), *c = (T *)SLOT(7);
    K(rows_to_lanes)(x, n, count, buf);
    K(scaled_softmax_flanes_sums)(buf, FSM_SHORT_ROW_LANES, buf, FSM_SHORT_ROW_LANES, n, count, prm, work, log, a,
                                  c);
    if (log)
        for (size_t j = 0; j < count; ++j) a[j] = 0;
    K(lanes_to_rows)(buf, n, count, y, a, c, log ? FSM_FINISH_SUB : FSM_FINISH_QUOTIENT);
}

static void K(softmax_fshort)(const T *const *x, T *const *y, size_t n, size_t count, const fsm_params *prm, T *buf,
                              double *work) {
    K(scaled_softmax_fshort_body)(x, y, n, count, prm, buf, work, 0);
}

static void K(log_softmax_fshort)(const T *const *x, T *const *y, size_t n, size_t count, const fsm_params *prm,
                                  T *buf, double *work) {
    K(scaled_softmax_fshort_body)(x, y, n, count, prm, buf, work, 1);
}

static void K(softmax_flanes)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step, const T *b, ptrdiff_t b_step,
                              size_t n, size_t lanes, const fsm_params *prm, const int64_t *target,
                              double *group_out, double *work) {
    (void)b, (void)b_step, (void)target, (void)group_out;
    K(scaled_softmax_flanes_body)(x, x_step, y, y_step, n, lanes, prm, work, 0);
}

static void K(log_softmax_flanes)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step, const T *b,
                                  ptrdiff_t b_step, size_t n, size_t lanes, const fsm_params *prm,
                                  const int64_t *target, double *group_out, double *work) {
    (void)b, (void)b_step, (void)target, (void)group_out;
    K(scaled_softmax_flanes_body)(x, x_step, y, y_step, n, lanes, prm, work, 1);
}

/* The float blocks of a weighted lane sum whose terms overflowed float (b
 * near FLT_MAX), rows [start, end): each added to its lane's compensated
 * rest as summed again in double, and its block cleared (the fold adds 0
 * for it then).  The check apart from the fold, so that the fold
 * vectorises. */
static void K(weighted_flanes_overflow)(const T *x, ptrdiff_t x_step, const T *b, ptrdiff_t b_step, size_t start,
                                        size_t end, size_t lanes, const T *m, T *block, double *rest, double *comp) {
    if (sizeof(T) != sizeof(float)) return;
    int overflow = 0;
#pragma omp simd reduction(| : overflow)
    for (size_t j = 0; j < lanes; ++j) overflow |= !isfinite(block[j]);
    for (size_t j = 0; overflow && j < lanes; ++j) {
        if (isfinite(block[j])) continue;
        fsm_neumaier_add(&rest[j], &comp[j], K(weighted_rest_f64)(x + j, x_step, b + j, b_step, start, end, m[j]));
        block[j] = 0;
    }
}

/* The weighted terms of each lane (weighted_term) summed as flanes_sums
 * sums the plain ones: four rows a step, blocks of FSM_COLS_SUM_BLOCK rows
 * into the compensated rest[j] (a float block that overflowed float summed
 * again in double), the weight of the entries at m[j] into ties[j].
 * block, block_ties: scratch lanes in T; comp: in double. */
static FSM_ALWAYS_INLINE void K(weighted_flanes_sums)(const T *x, ptrdiff_t x_step, const T *b, ptrdiff_t b_step,
                                                      size_t n, size_t lanes, const T *m, int careful, int prefetch,
                                                      T *block, T *block_ties, double *rest, double *comp,
                                                      double *ties) {
    _Static_assert(FSM_COLS_SUM_BLOCK % 4 == 0, "blocks of whole steps");
    for (size_t j = 0; j < lanes; ++j) block[j] = 0, block_ties[j] = 0, rest[j] = 0, comp[j] = 0, ties[j] = 0;
    for (size_t i = 0; i < n;) {
        size_t block_start = i, block_end = n - i > FSM_COLS_SUM_BLOCK ? i + FSM_COLS_SUM_BLOCK : n;
        for (; i + 4 <= block_end; i += 4) {
            const T *x0 = x + (ptrdiff_t)i * x_step, *b0 = b + (ptrdiff_t)i * b_step;
            for (size_t k = 0; k < 4; ++k) K(prefetch_row)(b, b_step, i + k, n, lanes, prefetch);
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) {
                T t0, t1, t2, t3;
                T e0 = K(weighted_term)(x0[j], b0[j], m[j], careful, &t0);
                T e1 = K(weighted_term)(x0[x_step + j], b0[b_step + j], m[j], careful, &t1);
                T e2 = K(weighted_term)(x0[2 * x_step + j], b0[2 * b_step + j], m[j], careful, &t2);
                T e3 = K(weighted_term)(x0[3 * x_step + j], b0[3 * b_step + j], m[j], careful, &t3);
                block[j] += (e0 + e1) + (e2 + e3);
                block_ties[j] += (t0 + t1) + (t2 + t3);
            }
        }
        for (; i < block_end; ++i) {
            const T *xr = x + (ptrdiff_t)i * x_step, *br = b + (ptrdiff_t)i * b_step;
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) {
                T t;
                block[j] += K(weighted_term)(xr[j], br[j], m[j], careful, &t);
                block_ties[j] += t;
            }
        }
        K(weighted_flanes_overflow)(x, x_step, b, b_step, block_start, block_end, lanes, m, block, rest, comp);
        K(flanes_fold)(lanes, block, block_ties, rest, comp, ties);
    }
    for (size_t j = 0; j < lanes; ++j) rest[j] = isfinite(rest[j]) ? rest[j] + comp[j] : rest[j];
}

/* Lane j of weighted_logsumexp_flanes the careful way (weighted_logsumexp_row's
 * second path), in the same order of sums. */
static void K(weighted_lane_carefully)(const T *x, ptrdiff_t x_step, const T *b, ptrdiff_t b_step, size_t n,
                                       double *result, double *sign) {
    T m = -(T)INFINITY, block, block_ties;
    for (size_t i = 0; i < n; ++i) {
        T v = b[(ptrdiff_t)i * b_step] != 0 ? x[(ptrdiff_t)i * x_step] : -(T)INFINITY;
        m = v > m ? v : m;
    }
    if (!isfinite(m)) {
        *result = K(weighted_lse_of_non_finite)(x, x_step, b, b_step, n, m, sign);
        return;
    }
    double rest, comp, ties;
    K(weighted_flanes_sums)(x, x_step, b, b_step, n, 1, &m, 1, 0, &block, &block_ties, &rest, &comp, &ties);
    *result = K(signed_log_total)(rest, ties, m, sign);
}

/* Weighted logsumexp of `lanes` groups (kernels.h): the fast path of
 * weighted_logsumexp_row for every lane, and the careful one for the
 * lanes where it does not hold. */
static void K(weighted_logsumexp_flanes)(const T *x, ptrdiff_t x_step, const T *b, ptrdiff_t b_step, size_t n,
                                         size_t lanes, double *group_out, double *work) {
    T *m = (T *)SLOT(0), *block = (T *)SLOT(1), *block_ties = (T *)SLOT(2);
    double *rest = SLOT(3), *comp = SLOT(4), *ties = SLOT(5), *sign = group_out + lanes;
    K(cols_max)(x, x_step, n, lanes, m, 1);
    K(weighted_flanes_sums)(x, x_step, b, b_step, n, lanes, m, 0, 1, block, block_ties, rest, comp, ties);
    int any_careful = 0;
#pragma omp simd reduction(| : any_careful)
    for (size_t j = 0; j < lanes; ++j) {
        group_out[j] = K(signed_log_total)(rest[j], ties[j], m[j], &sign[j]);
        any_careful |= !isfinite(m[j]) || !K(weighted_fast_path_holds)(rest[j], ties[j]);
    }
    for (size_t j = 0; any_careful && j < lanes; ++j) /* apart: a call in the loop above would keep it scalar */
        if (!isfinite(m[j]) || !K(weighted_fast_path_holds)(rest[j], ties[j]))
            K(weighted_lane_carefully)(x + j, x_step, b + j, b_step, n, &group_out[j], &sign[j]);
}

/* Plain logsumexp of `lanes` groups into group_out[0 .. lanes): the terms
 * with x != m summed and those at the maximum counted, as log_softmax's
 * rows take them.  (The no-subtraction form measured slower here: on rows
 * of 10 its per-lane factor, a double exp, cost more than it saved.) */
static void K(plain_logsumexp_lanes)(const T *x, ptrdiff_t x_step, size_t n, size_t lanes, double *group_out,
                                     double *work) {
    T *m = (T *)SLOT(0), *block = (T *)SLOT(1), *block_ties = (T *)SLOT(2);
    double *rest = SLOT(3), *comp = SLOT(4), *ties = SLOT(5);
    K(cols_max)(x, x_step, n, lanes, m, 1);
    K(flanes_sums)(x, x_step, NULL, 0, n, lanes, m, NULL, 0, FSM_STORE_NOTHING, 1, block, block_ties, rest, comp,
                   ties);
    int non_finite = 0;
#pragma omp simd reduction(| : non_finite)
    for (size_t j = 0; j < lanes; ++j) {
        group_out[j] = (double)m[j] + (double)LOG_TOTAL(rest[j], ties[j], m[j]);
        non_finite |= !isfinite(m[j]);
    }
    for (size_t j = 0; non_finite && j < lanes; ++j) /* apart: a call in the loop above would keep it scalar */
        if (!isfinite(m[j])) group_out[j] = K(lse_of_non_finite)(x + j, x_step, n, m[j]);
}

static void K(logsumexp_flanes)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step, const T *b,
                                ptrdiff_t b_step, size_t n, size_t lanes, const fsm_params *prm,
                                const int64_t *target, double *group_out, double *work) {
    (void)y, (void)y_step, (void)prm, (void)target;
    if (b != NULL) K(weighted_logsumexp_flanes)(x, x_step, b, b_step, n, lanes, group_out, work);
    else K(plain_logsumexp_lanes)(x, x_step, n, lanes, group_out, work);
}

/* The backward passes: per lane s = sum(grad * y) (softmax) or sum(grad)
 * (log_softmax), then out = y * (grad - s) or grad - exp(y) * s. */
static FSM_ALWAYS_INLINE void K(backward_flanes)(const T *g, ptrdiff_t g_step, T *out, ptrdiff_t out_step,
                                                 const T *y, ptrdiff_t y_step, size_t n, size_t lanes, double *work,
                                                 int log) {
    T *block = (T *)SLOT(0), *s = (T *)SLOT(3);
    double *total = SLOT(1), *comp = SLOT(2);
    /* prefetched for log_softmax only: softmax's float64 (1000, 4096) over
     * axis 0 took 1.13-1.30x softmax without, 1.47-1.60x with */
    K(flanes_reduce)(g, g_step, y, y_step, n, lanes, log ? FSM_LANE_SUM : FSM_LANE_DOT, log, block, total, comp);
    for (size_t j = 0; j < lanes; ++j) s[j] = (T)total[j];
    for (size_t i = 0; i < n; ++i) {
        const T *gr = g + (ptrdiff_t)i * g_step, *yr = y + (ptrdiff_t)i * y_step;
        T *o = out + (ptrdiff_t)i * out_step;
        K(prefetch_row)(g, g_step, i, n, lanes, log);
        K(prefetch_row)(y, y_step, i, n, lanes, log);
        if (log) {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) o[j] = gr[j] - K(exp_of_log_prob)(yr[j]) * s[j];
        } else {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j) o[j] = yr[j] * (gr[j] - s[j]);
        }
    }
}

static void K(softmax_backward_flanes)(const T *g, ptrdiff_t g_step, T *out, ptrdiff_t out_step, const T *y,
                                       ptrdiff_t y_step, size_t n, size_t lanes, const fsm_params *prm,
                                       const int64_t *target, double *group_out, double *work) {
    (void)prm, (void)target, (void)group_out;
    K(backward_flanes)(g, g_step, out, out_step, y, y_step, n, lanes, work, 0);
}

static void K(log_softmax_backward_flanes)(const T *g, ptrdiff_t g_step, T *out, ptrdiff_t out_step, const T *y,
                                           ptrdiff_t y_step, size_t n, size_t lanes, const fsm_params *prm,
                                           const int64_t *target, double *group_out, double *work) {
    (void)prm, (void)target, (void)group_out;
    K(backward_flanes)(g, g_step, out, out_step, y, y_step, n, lanes, work, 1);
}

/* A term >= 0 of cross_entropy_probs_flanes into (sum, comp): float32
 * terms plainly, as their double sum is within n 2^-53 of the exact one,
 * far below float32's eps (compensated, the sums took more than the rest
 * of a float32 short-row block's kernel); float64 terms with Neumaier's
 * compensation. */
static inline void K(probs_add)(double *sum, double *comp, double v) {
    if (sizeof(T) == sizeof(float)) *sum += v;
    else fsm_neumaier_add(sum, comp, v);
}

/* Per lane: q_sum[j] = sum(q), q_gap[j] = sum(q (m - x)) (0 where q == 0)
 * in double, with compensation for float64 (q_comp, gap_comp: scratch
 * lanes; summed plainly in float64, one term after another, the loss of a
 * group of 16 lost half an eps against the row kernel's pairwise chains). */
static void K(cross_entropy_probs_flanes)(const T *x, ptrdiff_t x_step, const T *q, ptrdiff_t q_step, size_t n,
                                          size_t lanes, const T *m, double *q_sum, double *q_gap, double *q_comp,
                                          double *gap_comp) {
    for (size_t j = 0; j < lanes; ++j) q_sum[j] = 0, q_gap[j] = 0, q_comp[j] = 0, gap_comp[j] = 0;
    for (size_t i = 0; i < n; ++i) {
        const T *xr = x + (ptrdiff_t)i * x_step, *qr = q + (ptrdiff_t)i * q_step;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            double qi = (double)qr[j];
            K(probs_add)(&q_sum[j], &q_comp[j], qi);
            K(probs_add)(&q_gap[j], &gap_comp[j], qi * (qi != 0 ? (double)m[j] - (double)xr[j] : 0.0));
        }
    }
    for (size_t j = 0; j < lanes; ++j) {
        q_sum[j] = isfinite(q_sum[j]) ? q_sum[j] + q_comp[j] : q_sum[j];
        q_gap[j] = isfinite(q_gap[j]) ? q_gap[j] + gap_comp[j] : q_gap[j];
    }
}

/* Cross entropy's passes over `lanes` groups up to the gradient: per lane
 * the maximum m, the total (t, inv) and c = log(total) in SLOT(0), (8, 9)
 * and 7; with probabilities q, q_sum and q_gap in SLOT(3) and SLOT(5); the
 * scaled exps in e when it is not NULL.  Slots 1, 2 and 4 are free after. */
static FSM_ALWAYS_INLINE void K(cross_entropy_flanes_stats)(const T *x, ptrdiff_t x_step, T *e, ptrdiff_t e_step,
                                                            const T *q, ptrdiff_t q_step, size_t n, size_t lanes,
                                                            const fsm_params *prm, int prefetch, double *work) {
    T *m = (T *)SLOT(0), *block = (T *)SLOT(1), *block_ties = (T *)SLOT(2);
    double *rest = SLOT(3), *comp = SLOT(4), *ties = SLOT(5), *c = SLOT(7);
    T *t = (T *)SLOT(8), *inv = (T *)SLOT(9);
    K(cols_max)(x, x_step, n, lanes, m, prefetch);
    K(flanes_sums)(x, x_step, e, e_step, n, lanes, m, NULL, 0, e == NULL ? FSM_STORE_NOTHING : FSM_STORE_EXP, 1,
                   block, block_ties, rest, comp, ties);
#pragma omp simd
    for (size_t j = 0; j < lanes; ++j) {
        double total = rest[j] + ties[j] * EXP_SCALE;
        t[j] = (T)total, inv[j] = INVERSE_TOTAL(total);
        c[j] = (double)LOG_TOTAL(rest[j], ties[j], m[j]);
    }
    /* rest and ties are free from here on */
    if (q != NULL) /* block's slots are free too */
        K(cross_entropy_probs_flanes)(x, x_step, q, q_step, n, lanes, m, SLOT(3), SLOT(5), SLOT(1), SLOT(2));
}

/* Cross entropy's loss per lane into group_out, from cross_entropy_flanes_stats. */
static void K(cross_entropy_flanes_losses)(const T *x, ptrdiff_t x_step, int index_target, size_t n, size_t lanes,
                                           const fsm_params *prm, const int64_t *target, double *group_out,
                                           double *work) {
    const T *m = (const T *)SLOT(0);
    const double *q_sum = SLOT(3), *q_gap = SLOT(5), *c = SLOT(7);
    double *mean_gap = SLOT(4);
    for (size_t j = 0; j < lanes; ++j) mean_gap[j] = 0;
    if (prm->smoothing > 0) {
        double w = 1.0 / (double)n;
        for (size_t i = 0; i < n; ++i) {
            const T *xr = x + (ptrdiff_t)i * x_step;
            for (size_t j = 0; j < lanes; ++j) mean_gap[j] += w * ((double)m[j] - (double)xr[j]);
        }
    }
    /* the targets' logits gathered apart, and the options copied (group_out's
     * stores could overwrite *prm, as far as the compiler knows): either
     * kept the loop below scalar, 1.2 ns a lane */
    T *x_target = (T *)SLOT(2);
    for (size_t j = 0; j < lanes; ++j) x_target[j] = index_target ? x[(ptrdiff_t)target[j] * x_step + (ptrdiff_t)j] : 0;
    const fsm_params options = *prm;
#pragma omp simd
    for (size_t j = 0; j < lanes; ++j) {
        group_out[j] = K(cross_entropy_loss)(&options, index_target, x_target[j], m[j], c[j],
                                             index_target ? 0 : q_sum[j], index_target ? 0 : q_gap[j], mean_gap[j]);
    }
}

/* The gradient of lanes whose scaled exps are in grad, in place. */
static void K(cross_entropy_grad_flanes)(const T *q, ptrdiff_t q_step, T *grad, ptrdiff_t grad_step, size_t n,
                                         size_t lanes, const fsm_params *prm, const int64_t *target, double *work) {
    const T *t = (const T *)SLOT(8), *inv = (const T *)SLOT(9);
    T scale = (T)prm->grad_scale, keep = (T)(1.0 - prm->smoothing), uniform = K(smoothing_uniform)(prm, n);
    T hit = K(smoothing_hit)(prm, n);
    for (size_t i = 0; i < n; ++i) {
        T *gr = grad + (ptrdiff_t)i * grad_step;
        if (q != NULL) {
            const T *qr = q + (ptrdiff_t)i * q_step;
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j)
                gr[j] = K(cross_entropy_grad)(gr[j], t[j], inv[j], keep * qr[j] + uniform, scale);
        } else {
#pragma omp simd
            for (size_t j = 0; j < lanes; ++j)
                gr[j] = K(cross_entropy_grad)(gr[j], t[j], inv[j], (size_t)target[j] == i ? hit : uniform, scale);
        }
    }
}

/* store_exps a constant: chosen at run time, the exps' stores became
 * scatters to a dummy address in the sum pass without gradient. */
static FSM_ALWAYS_INLINE void K(cross_entropy_flanes_body)(const T *x, ptrdiff_t x_step, T *grad,
                                                           ptrdiff_t grad_step, const T *q, ptrdiff_t q_step,
                                                           size_t n, size_t lanes, const fsm_params *prm,
                                                           const int64_t *target, double *group_out, double *work,
                                                           int with_grad) {
    K(cross_entropy_flanes_stats)(x, x_step, with_grad ? grad : NULL, grad_step, q, q_step, n, lanes, prm, 1, work);
    if (with_grad) K(cross_entropy_grad_flanes)(q, q_step, grad, grad_step, n, lanes, prm, target, work);
    K(cross_entropy_flanes_losses)(x, x_step, q == NULL, n, lanes, prm, target, group_out, work);
}

static void K(cross_entropy_flanes)(const T *x, ptrdiff_t x_step, T *grad, ptrdiff_t grad_step, const T *q,
                                    ptrdiff_t q_step, size_t n, size_t lanes, const fsm_params *prm,
                                    const int64_t *target, double *group_out, double *work) {
    if (grad != NULL)
        K(cross_entropy_flanes_body)(x, x_step, grad, grad_step, q, q_step, n, lanes, prm, target, group_out, work, 1);
    else
        K(cross_entropy_flanes_body)(x, x_step, grad, grad_step, q, q_step, n, lanes, prm, target, group_out, work, 0);
}

#undef SLOT
