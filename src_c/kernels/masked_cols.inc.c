/*
 * Masked column staging (where= over a non-last axis, contract: kernels.h),
 * instantiated per dtype by variant.c after softmax_cols.inc.c, whose row
 * prefetch it shares: one call for a whole tile (a call of the row staging
 * kernel per row cost the most on narrow tiles: 32 lanes a call for two
 * threads on 64 lanes), and, as the column kernels' passes, the rows of x,
 * the mask and y asked for FSM_COLS_PREFETCH_ROWS ahead, as they lie a page
 * or more apart.  The pass stays bound by memory: it is about half of a
 * masked float32 softmax over axis 0 of (1000, 4096) with or without the
 * prefetches; reading the mask in the column kernel's own passes would
 * remove it.
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
