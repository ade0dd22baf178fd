/*
 * Masked column staging (where= over a non-last axis, contract: kernels.h),
 * instantiated per dtype by variant.c after softmax_cols.inc.c, whose row
 * prefetch it shares: the rows of a tile lie a page or more apart, where the
 * hardware prefetcher does not follow them, so the staging pass asks for
 * the rows of x, the mask and y FSM_COLS_PREFETCH_ROWS ahead, as the column
 * kernels' passes do.  Staged row by row through the row staging kernel,
 * without, the pass took longer than the column kernel after it (float32
 * (1000, 4096) over axis 0: 49% of a masked softmax).
 */

/* The mask's (bytes) and y's (to be written) rows FSM_COLS_PREFETCH_ROWS ahead. */
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

static void K(stage_masked_lanes)(const T *x, ptrdiff_t x_step, const uint8_t *mask, ptrdiff_t mask_step, T *y,
                                  ptrdiff_t y_step, size_t n, size_t lanes, T fill) {
    for (size_t i = 0; i < n; ++i) {
        const T *xr = x + (ptrdiff_t)i * x_step;
        const uint8_t *mr = mask + (ptrdiff_t)i * mask_step;
        T *yr = y + (ptrdiff_t)i * y_step;
        K(prefetch_row)(x, x_step, i, n, lanes, 1);
        K(prefetch_staging_rows)(mask, mask_step, y, y_step, i, n, lanes);
#pragma omp simd
        for (size_t j = 0; j < lanes; ++j) {
            T v = xr[j]; /* read unconditionally, as in stage_masked */
            yr[j] = mr[j] ? v : fill;
        }
    }
}
