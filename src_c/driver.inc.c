/*
 * Driver for one dtype, included by driver.c with T, K(name), ROW_FN and
 * COLS_FN defined.  Splits a problem into work items (rows, or tiles of
 * lanes), hands each thread a contiguous range of items, and feeds the
 * kernels: contiguous rows directly, strided rows through a per-thread
 * buffer of one row (gather, compute in place, scatter).
 */

static void K(gather)(const T *x, ptrdiff_t step, size_t n, T *buf) {
    for (size_t i = 0; i < n; ++i) buf[i] = x[(ptrdiff_t)i * step];
}

static void K(scatter)(const T *buf, size_t n, T *y, ptrdiff_t step) {
    for (size_t i = 0; i < n; ++i) y[(ptrdiff_t)i * step] = buf[i];
}

static int K(run_rows)(const fsm_problem *p, ROW_FN kernel, size_t begin, size_t end) {
    const T *x = (const T *)p->x;
    T *y = (T *)p->y;
    size_t n = (size_t)p->n;
    if (p->x_step == 1 && p->y_step == 1) {
        for (size_t r = begin; r < end; ++r) {
            ptrdiff_t xo, yo;
            fsm_batch_offsets(p, r, &xo, &yo);
            kernel(x + xo, y + yo, n);
        }
        return FSM_OK;
    }
    T *buf = (T *)malloc(n * sizeof(T));
    if (buf == NULL) return FSM_ERR_NOMEM;
    for (size_t r = begin; r < end; ++r) {
        ptrdiff_t xo, yo;
        fsm_batch_offsets(p, r, &xo, &yo);
        K(gather)(x + xo, p->x_step, n, buf);
        kernel(buf, buf, n);
        K(scatter)(buf, n, y + yo, p->y_step);
    }
    free(buf);
    return FSM_OK;
}

/* Items are (batch index, lane tile) pairs, tile-major within a batch entry. */
static int K(run_cols)(const fsm_problem *p, COLS_FN kernel, size_t begin, size_t end) {
    double work[FSM_COLS_WORK_DOUBLES(FSM_LANE_TILE)];
    size_t tiles = fsm_lane_tiles(p);
    for (size_t item = begin; item < end; ++item) {
        ptrdiff_t xo, yo;
        fsm_batch_offsets(p, item / tiles, &xo, &yo);
        size_t first = (item % tiles) * FSM_LANE_TILE;
        size_t lanes = (size_t)p->lanes - first < FSM_LANE_TILE ? (size_t)p->lanes - first : FSM_LANE_TILE;
        kernel((const T *)p->x + xo + (ptrdiff_t)first, p->x_step, (T *)p->y + yo + (ptrdiff_t)first,
               p->y_step, (size_t)p->n, lanes, work);
    }
    return FSM_OK;
}

static int K(run_range)(const fsm_problem *p, const fsm_kernel_table *k, size_t begin, size_t end) {
    if (p->lanes > 1) return K(run_cols)(p, COLS_TABLE(k)[p->op], begin, end);
    return K(run_rows)(p, ROWS_TABLE(k)[p->op], begin, end);
}
