/*
 * Column kernels: `lanes` softmaxes side by side, lane j reading
 * x[i * x_step + j].  The inner loop runs along the lanes, which are
 * contiguous, so it vectorises exactly like the row kernels do along a row;
 * no transposed copy is made.  Same macros as softmax_rows.inc.c; contracts
 * in kernels.h.  Per-lane sums are taken in blocks of rows in T and added
 * in double with Neumaier's compensation.
 *
 * The rows of a tile lie x_step apart, often a page or more, where the
 * hardware prefetcher does not follow them: with `prefetch` set, each pass
 * asks for the row FSM_COLS_PREFETCH_ROWS ahead (axis 0 of (1000, 4096)
 * float32, timed as benchmarks/ab_calls.py cols does: softmax 4.26-4.30 ->
 * 3.81-3.84 ms, log_softmax 5.26-5.29 -> 4.08-4.10 ms).  The short-row
 * plan, whose tiles are already in L1, runs without.
 *
 * A masked tile (where=) is staged in y by the max pass, which reads the
 * mask and writes x there with its masked-out entries -inf; the other
 * passes then run on y in place.  Reading the mask in every pass instead
 * (no staged copy) measured slower for log_softmax and float64 (float64
 * softmax over axis 0 of (32000, 64): 1.49-1.65x plain against 1.12-1.18x
 * staged): GCC vectorises a loop of mask bytes and doubles at the bytes'
 * width (the float64 AVX2 kernel grew to 8500 instructions).
 */

#ifndef FSM_COLS_PREFETCH_ROWS
#define FSM_COLS_PREFETCH_ROWS 8
#endif

static inline void K(prefetch_row)(const T *x, ptrdiff_t step, size_t i, size_t n, size_t lanes, int prefetch) {
    if (!prefetch || i + FSM_COLS_PREFETCH_ROWS >= n) return;
#if defined(__GNUC__)
    const T *ahead = x + (ptrdiff_t)(i + FSM_COLS_PREFETCH_ROWS) * step;
    for (size_t j = 0; j < lanes; j += 64 / sizeof(T)) __builtin_prefetch(ahead + j);
#else
    (void)x, (void)step, (void)lanes;
#endif
}

/* The rows of the mask (bytes) and of the staged tile (to be written)
 * FSM_COLS_PREFETCH_ROWS ahead, as prefetch_row asks for x's. */
static inline void K(prefetch_staging_rows)(const uint8_t *mask, ptrdiff_t mask_step, T *y, ptrdiff_t y_step, size_t i,
                                            size_t n, size_t lanes) {
    if (i + FSM_COLS_PREFETCH_ROWS >= n) return;
#if defined(__GNUC__)
    const uint8_t *mask_ahead = mask + (ptrdiff_t)(i + FSM_COLS_PREFETCH_ROWS) * mask_step;
    T *y_ahead = y + (ptrdiff_t)(i + FSM_COLS_PREFETCH_ROWS) * y_step;
    for (size_t j = 0; j < lanes; j += 64) __builtin_prefetch(mask_ahead + j);
    for (size_t j = 0; j < lanes; j += 64 / sizeof(T)) __builtin_prefetch(y_ahead + j, 1);
#else
    (void)mask, (void)mask_step, (void)y, (void)y_step, (void)lanes;
#endif
}

/* Entry j of row k from x0; `masked` (a constant): -inf where the mask's
 * byte is 0, and stored in the staged row (x read unconditionally: a
 * conditional read becomes a slow masked load). */
static FSM_ALWAYS_INLINE T K(col_entry)(const T *x0, ptrdiff_t x_step, const uint8_t *m0, ptrdiff_t mask_step,
                                        T *s0, ptrdiff_t staged_step, ptrdiff_t k, size_t j, int masked) {
    T v = x0[k * x_step + (ptrdiff_t)j];
    if (!masked) return v;
    v = m0[k * mask_step + (ptrdiff_t)j] ? v : -(T)INFINITY;
    s0[k * staged_step + (ptrdiff_t)j] = v;
    return v;
}

static inline T K(max2)(T a, T b) { return a > b ? a : b; }

/* cols_max, or (`masked`, a constant) the maximum of x staged as it is
 * read: staged = x where the mask keeps it, -inf elsewhere.  Four rows a
 * step: m[j] lives in memory (lanes is not a constant), and one row a step
 * waited on storing and reloading it. */
static FSM_ALWAYS_INLINE void K(cols_max_staging)(const T *x, ptrdiff_t x_step, const uint8_t *mask,
                                                  ptrdiff_t mask_step, T *staged, ptrdiff_t staged_step, size_t n,
                                                  size_t lanes, T *m, int prefetch, int masked) {
    for (size_t j = 0; j < lanes; ++j) m[j] = -(T)INFINITY;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const T *x0 = x + (ptrdiff_t)i * x_step;
        const uint8_t *m0 = masked ? mask + (ptrdiff_t)i * mask_step : NULL;
        T *s0 = masked ? staged + (ptrdiff_t)i * staged_step : NULL;
        for (size_t k = 0; k < 4; ++k) {
            K(prefetch_row)(x, x_step, i + k, n, lanes, prefetch);
            if (masked && prefetch) K(prefetch_staging_rows)(mask, mask_step, staged, staged_step, i + k, n, lanes);
        }
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T a = K(max2)(K(col_entry)(x0, x_step, m0, mask_step, s0, staged_step, 0, j, masked),
                          K(col_entry)(x0, x_step, m0, mask_step, s0, staged_step, 1, j, masked));
            T b = K(max2)(K(col_entry)(x0, x_step, m0, mask_step, s0, staged_step, 2, j, masked),
                          K(col_entry)(x0, x_step, m0, mask_step, s0, staged_step, 3, j, masked));
            m[j] = K(max2)(K(max2)(a, b), m[j]); /* NaN x: passed over, as in rmax */
        }
    }
    for (; i < n; ++i) {
        const T *row = x + (ptrdiff_t)i * x_step;
        const uint8_t *mr = masked ? mask + (ptrdiff_t)i * mask_step : NULL;
        T *sr = masked ? staged + (ptrdiff_t)i * staged_step : NULL;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) m[j] = K(max2)(K(col_entry)(row, 0, mr, 0, sr, 0, 0, j, masked), m[j]);
    }
}

static void K(cols_max)(const T *x, ptrdiff_t x_step, size_t n, size_t lanes, T *m, int prefetch) {
    K(cols_max_staging)(x, x_step, NULL, 0, NULL, 0, n, lanes, m, prefetch, 0);
}

static void K(cols_fold_block)(size_t lanes, T *block, double *sum, double *comp) {
    for (size_t j = 0; j < lanes; ++j) {
        fsm_neumaier_add(&sum[j], &comp[j], block[j]);
        block[j] = 0;
    }
}

/* y = exp(x - m) * 2^B per lane; on return sum[j] holds lane j's total.
 * Four rows at a time, each lane adding (a + b) + (c + d) to its block sum,
 * and blocks of FSM_COLS_SUM_BLOCK rows into the compensated total: as in
 * block_store_exp, the maximum's 2^B meets few small terms in T. */
static FSM_ALWAYS_INLINE void K(cols_exp_store_sum)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                                   size_t n, size_t lanes, const T *m,
                                   T *block, double *sum, double *comp, int prefetch) {
    for (size_t j = 0; j < lanes; ++j) block[j] = 0, sum[j] = 0, comp[j] = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const T *x0 = x + (ptrdiff_t)i * x_step;
        T *y0 = y + (ptrdiff_t)i * y_step;
        for (size_t k = 0; k < 4; ++k) K(prefetch_row)(x, x_step, i + k, n, lanes, prefetch);
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T e0 = SCALED_EXP(x0[j], m[j]), e1 = SCALED_EXP(x0[x_step + j], m[j]);
            T e2 = SCALED_EXP(x0[2 * x_step + j], m[j]), e3 = SCALED_EXP(x0[3 * x_step + j], m[j]);
            y0[j] = e0, y0[y_step + j] = e1, y0[2 * y_step + j] = e2, y0[3 * y_step + j] = e3;
            block[j] += (e0 + e1) + (e2 + e3);
        }
        if ((i + 4) % FSM_COLS_SUM_BLOCK == 0) K(cols_fold_block)(lanes, block, sum, comp);
    }
    for (; i < n; ++i) {
        const T *xr = x + (ptrdiff_t)i * x_step;
        T *yr = y + (ptrdiff_t)i * y_step;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T e = SCALED_EXP(xr[j], m[j]);
            yr[j] = e;
            block[j] += e;
        }
    }
    K(cols_fold_block)(lanes, block, sum, comp);
    for (size_t j = 0; j < lanes; ++j) sum[j] += comp[j];
}

/* softmax_cols from the lanes' maxima, in work. */
static FSM_ALWAYS_INLINE void K(softmax_cols_from_max)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                                                       size_t n, size_t lanes, double *work) {
    T *m = (T *)work;
    T *block = (T *)(work + lanes);
    double *sum = work + 2 * lanes, *comp = work + 3 * lanes;
    K(cols_exp_store_sum)(x, x_step, y, y_step, n, lanes, m, block, sum, comp, 1);
    T *inv = m, *total = block; /* m and block are no longer needed */
    for (size_t j = 0; j < lanes; ++j) inv[j] = INVERSE_TOTAL(sum[j]), total[j] = (T)sum[j];
    for (size_t i = 0; i < n; ++i) {
        T *yr = y + (ptrdiff_t)i * y_step;
        K(prefetch_row)(y, y_step, i, n, lanes, 1);
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) yr[j] = K(quotient)(yr[j], total[j], inv[j]);
    }
}

static void K(softmax_cols)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                            size_t n, size_t lanes, double *work) {
    K(cols_max)(x, x_step, n, lanes, (T *)work, 1);
    K(softmax_cols_from_max)(x, x_step, y, y_step, n, lanes, work);
}

static void K(softmax_masked_cols)(const T *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step, T *y,
                                   ptrdiff_t y_step, size_t n, size_t lanes, double *work) {
    K(cols_max_staging)(x, x_step, mask, mask_step, y, y_step, n, lanes, (T *)work, 1, 1);
    K(softmax_cols_from_max)(y, y_step, y, y_step, n, lanes, work);
}

/* exp(x - m) * 2^B, or 0 for a tie (x == m), which *tie counts as 1. */
static inline T K(rest_term)(T x, T m, T *tie) {
    int is_tie = x == m;
    *tie = is_tie ? (T)1 : (T)0;
    T e = SCALED_EXP(x, m);
    return is_tie ? (T)0 : e;
}

static void K(cols_fold_log_block)(size_t lanes, T *block, T *block_ties, double *rest, double *comp,
                                   double *ties) {
    for (size_t j = 0; j < lanes; ++j) {
        fsm_neumaier_add(&rest[j], &comp[j], block[j]);
        ties[j] += block_ties[j];
        block[j] = 0, block_ties[j] = 0;
    }
}

/* Per lane: log(sum(exp(x - m))), split as in log_sum_exp_minus_max; four
 * rows a step, as cols_exp_store_sum. */
static void K(cols_log_sum_exp_minus_max)(const T *x, ptrdiff_t x_step, size_t n, size_t lanes,
                                          const T *m, T *lse, double *work, int prefetch) {
    _Static_assert(FSM_COLS_LOG_SUM_BLOCK % 4 == 0, "blocks of whole steps");
    T *block = (T *)(work + 2 * lanes), *block_ties = (T *)(work + 3 * lanes);
    double *rest = work + 4 * lanes, *comp = work + 5 * lanes, *ties = work + 6 * lanes;
    for (size_t j = 0; j < lanes; ++j)
        block[j] = 0, block_ties[j] = 0, rest[j] = 0, comp[j] = 0, ties[j] = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const T *x0 = x + (ptrdiff_t)i * x_step;
        for (size_t k = 0; k < 4; ++k) K(prefetch_row)(x, x_step, i + k, n, lanes, prefetch);
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T t0, t1, t2, t3;
            T e0 = K(rest_term)(x0[j], m[j], &t0), e1 = K(rest_term)(x0[x_step + j], m[j], &t1);
            T e2 = K(rest_term)(x0[2 * x_step + j], m[j], &t2);
            T e3 = K(rest_term)(x0[3 * x_step + j], m[j], &t3);
            block[j] += (e0 + e1) + (e2 + e3);
            block_ties[j] += (t0 + t1) + (t2 + t3);
        }
        if ((i + 4) % FSM_COLS_LOG_SUM_BLOCK == 0)
            K(cols_fold_log_block)(lanes, block, block_ties, rest, comp, ties);
    }
    for (; i < n; ++i) {
        const T *xr = x + (ptrdiff_t)i * x_step;
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T t, e = K(rest_term)(xr[j], m[j], &t);
            block[j] += e;
            block_ties[j] += t;
        }
    }
    K(cols_fold_log_block)(lanes, block, block_ties, rest, comp, ties);
    for (size_t j = 0; j < lanes; ++j) {
        lse[j] = LOG_TOTAL(rest[j] + comp[j], ties[j], m[j]);
    }
}

/* log_softmax_cols from the lanes' maxima, in work. */
static FSM_ALWAYS_INLINE void K(log_softmax_cols_from_max)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                                                           size_t n, size_t lanes, double *work) {
    T *m = (T *)work;
    T *lse = (T *)(work + lanes);
    K(cols_log_sum_exp_minus_max)(x, x_step, n, lanes, m, lse, work, 1);
    for (size_t i = 0; i < n; ++i) {
        const T *xr = x + (ptrdiff_t)i * x_step;
        T *yr = y + (ptrdiff_t)i * y_step;
        K(prefetch_row)(x, x_step, i, n, lanes, 1);
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            yr[j] = K(sub_shifted)(xr[j], m[j], lse[j]);
        }
    }
}

static void K(log_softmax_cols)(const T *x, ptrdiff_t x_step, T *y, ptrdiff_t y_step,
                                size_t n, size_t lanes, double *work) {
    K(cols_max)(x, x_step, n, lanes, (T *)work, 1);
    K(log_softmax_cols_from_max)(x, x_step, y, y_step, n, lanes, work);
}

static void K(log_softmax_masked_cols)(const T *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step,
                                       T *y, ptrdiff_t y_step, size_t n, size_t lanes, double *work) {
    K(cols_max_staging)(x, x_step, mask, mask_step, y, y_step, n, lanes, (T *)work, 1, 1);
    K(log_softmax_cols_from_max)(y, y_step, y, y_step, n, lanes, work);
}
