/*
 * Masked column staging (where= over a non-last axis, contract: kernels.h)
 * for the ops other than plain softmax and log_softmax (whose max pass
 * stages the tile: cols_max_staging), instantiated per dtype by variant.c
 * after softmax_cols.inc.c, whose prefetches it shares: one call for a
 * whole tile (a call of the row staging kernel per row cost the most on
 * narrow tiles: 32 lanes a call for two threads on 64 lanes), and, as the
 * column kernels' passes, the rows of x, the mask and y asked for
 * FSM_COLS_PREFETCH_ROWS ahead, as they lie a page or more apart.
 */

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
