/*
 * Runners for one dtype, included by driver.c with T, K(name), ROW_FN,
 * COLS_FN, ROWS_TABLE, GROUP_TABLE, COLS_TABLE, SHORT_TABLE, RMAX, RBLOCKS,
 * FINISH and LOG_TOTAL defined.  Each runs a contiguous range of a plan's
 * items on the calling thread (run_split_rows: its share of every row, on
 * every thread of a team).
 */

static void K(gather)(const T *x, ptrdiff_t step, size_t n, T *buf) {
    for (size_t i = 0; i < n; ++i) buf[i] = x[(ptrdiff_t)i * step];
}

static void K(scatter)(const T *buf, size_t n, T *y, ptrdiff_t step) {
    for (size_t i = 0; i < n; ++i) y[(ptrdiff_t)i * step] = buf[i];
}

/* Contiguous rows in groups of FSM_ROW_GROUP. */
static void K(run_row_groups)(const fsm_plan *plan, size_t begin, size_t end) {
    const fsm_problem *p = plan->p;
    const T *xs[FSM_ROW_GROUP];
    T *ys[FSM_ROW_GROUP];
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin);
    for (size_t r = begin; r < end;) {
        size_t count = 0;
        for (; count < FSM_ROW_GROUP && r < end; ++count, ++r, fsm_iter_next(p, &it)) {
            xs[count] = (const T *)p->x + it.xoff;
            ys[count] = (T *)p->y + it.yoff;
        }
        GROUP_TABLE(plan->k)[p->op](xs, ys, (size_t)p->n, count);
    }
}

/* One row kernel call per row: contiguous rows directly (streamed when the
 * plan says so; short rows a group at a time), strided rows gathered into
 * buf. */
static void K(run_rows)(const fsm_plan *plan, size_t begin, size_t end, T *buf) {
    const fsm_problem *p = plan->p;
    ROW_FN kernel = ROWS_TABLE(plan->k)[p->op];
    const T *x = (const T *)p->x;
    T *y = (T *)p->y;
    size_t n = (size_t)p->n;
    int contiguous = p->x_step == 1 && p->y_step == 1;
    if (contiguous && !plan->stream && n * sizeof(T) <= FSM_ROW_GROUP_MAX_BYTES) {
        K(run_row_groups)(plan, begin, end);
        return;
    }
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin);
    for (size_t r = begin; r < end; ++r, fsm_iter_next(p, &it)) {
        if (contiguous) {
            kernel(x + it.xoff, y + it.yoff, n, plan->stream);
        } else {
            K(gather)(x + it.xoff, p->x_step, n, buf);
            kernel(buf, buf, n, 0);
            K(scatter)(buf, n, y + it.yoff, p->y_step);
        }
    }
}

/* Pointers to `rows` rows from batch entry `first` (where `it` is) into xs
 * and ys, advancing `it` past them.  With one batch dimension the rows are
 * evenly spaced and `it` is left alone: the odometer, which re-reads the
 * problem on every row, took about 8% of a call on rows of 10. */
static void K(short_block_rows)(const fsm_problem *p, fsm_batch_iter *it, size_t first, size_t rows,
                                const T **xs, T **ys) {
    if (p->nbatch == 1) {
        ptrdiff_t x_step = p->x_batch_step[0], y_step = p->y_batch_step[0];
        const T *x = (const T *)p->x + (ptrdiff_t)first * x_step;
        T *y = (T *)p->y + (ptrdiff_t)first * y_step;
        for (size_t r = 0; r < rows; ++r) {
            xs[r] = x + (ptrdiff_t)r * x_step;
            ys[r] = y + (ptrdiff_t)r * y_step;
        }
        return;
    }
    for (size_t r = 0; r < rows; ++r, fsm_iter_next(p, it)) {
        xs[r] = (const T *)p->x + it->xoff;
        ys[r] = (T *)p->y + it->yoff;
    }
}

/* Items are blocks of plan->short_rows rows.  Contiguous rows go to the
 * short-row kernel; strided ones are gathered into buf (row r of the block
 * becomes lane r), run by the column kernel in place, and scattered back. */
static void K(run_short_rows)(const fsm_plan *plan, size_t begin, size_t end, T *buf) {
    const fsm_problem *p = plan->p;
    size_t n = (size_t)p->n, L = plan->short_rows;
    int contiguous = p->x_step == 1 && p->y_step == 1;
    double work[FSM_COLS_WORK_DOUBLES(FSM_SHORT_ROW_LANES)];
    const T *xs[FSM_SHORT_ROW_LANES];
    T *ys[FSM_SHORT_ROW_LANES];
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin * L);
    for (size_t item = begin; item < end; ++item) {
        size_t first = item * L;
        size_t rows = plan->batches - first < L ? plan->batches - first : L;
        K(short_block_rows)(p, &it, first, rows, xs, ys);
        if (contiguous) {
            SHORT_TABLE(plan->k)[p->op](xs, ys, n, rows, buf);
            continue;
        }
        for (size_t r = 0; r < rows; ++r)
            for (size_t j = 0; j < n; ++j) buf[j * L + r] = xs[r][(ptrdiff_t)j * p->x_step];
        COLS_TABLE(plan->k)[p->op](buf, (ptrdiff_t)L, buf, (ptrdiff_t)L, n, rows, work);
        for (size_t r = 0; r < rows; ++r)
            for (size_t j = 0; j < n; ++j) ys[r][(ptrdiff_t)j * p->y_step] = buf[j * L + r];
    }
}

/* Items are (batch entry, lane tile) pairs, tile-major within an entry. */
static void K(run_cols)(const fsm_plan *plan, size_t begin, size_t end) {
    const fsm_problem *p = plan->p;
    COLS_FN kernel = COLS_TABLE(plan->k)[p->op];
    double work[FSM_COLS_WORK_DOUBLES(FSM_LANE_TILE)];
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin / plan->tiles);
    for (size_t item = begin; item < end; ++item) {
        size_t tile = item % plan->tiles;
        if (tile == 0 && item != begin) fsm_iter_next(p, &it);
        size_t first = tile * plan->tile_lanes;
        size_t lanes = (size_t)p->lanes - first;
        if (lanes > plan->tile_lanes) lanes = plan->tile_lanes;
        kernel((const T *)p->x + it.xoff + (ptrdiff_t)first, p->x_step,
               (T *)p->y + it.yoff + (ptrdiff_t)first, p->y_step, (size_t)p->n, lanes, work);
    }
}

static void K(run_range)(const fsm_plan *plan, size_t begin, size_t end, void *buf) {
    switch (plan->kind) {
    case FSM_PLAN_COLS: K(run_cols)(plan, begin, end); break;
    case FSM_PLAN_SHORT_ROWS: K(run_short_rows)(plan, begin, end, (T *)buf); break;
    default: K(run_rows)(plan, begin, end, (T *)buf); break;
    }
}

/* Called by every thread of a team, for contiguous rows: each row is cut
 * at block boundaries into one chunk per thread.  Phase 1: chunk maxima;
 * phase 2: per-block sums with the row maximum; one thread folds them in
 * the row kernel's order; phase 3: each chunk is finished.  The arithmetic
 * is the row kernel's, so the result does not depend on the thread count.
 * `shared` holds 2 * blocks + team doubles. */
static void K(run_split_rows)(const fsm_plan *plan, size_t blocks, double *shared) {
    const fsm_problem *p = plan->p;
    const fsm_kernel_table *k = plan->k;
    size_t id = (size_t)fsm_thread_id(), team = (size_t)fsm_team_size();
    size_t n = (size_t)p->n;
    size_t first = blocks * id / team, last = blocks * (id + 1) / team;
    size_t begin = first * FSM_SUM_BLOCK, end = last * FSM_SUM_BLOCK < n ? last * FSM_SUM_BLOCK : n;
    T *sums = (T *)shared, *ties = (T *)(shared + blocks);
    double *chunk_max = shared + 2 * blocks;
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, 0);
    for (size_t r = 0; r < plan->batches; ++r, fsm_iter_next(p, &it)) {
        const T *x = (const T *)p->x + it.xoff;
        T *y = (T *)p->y + it.yoff;
        chunk_max[id] = begin < end ? RMAX(k)(x + begin, end - begin) : -INFINITY;
#pragma omp barrier
        T m = -(T)INFINITY;
        for (size_t t = 0; t < team; ++t) m = (T)chunk_max[t] > m ? (T)chunk_max[t] : m;
        if (begin < end) RBLOCKS(k)[p->op](x + begin, y + begin, end - begin, m, sums + first, ties + first);
#pragma omp barrier
#pragma omp single
        {
            double total = 0.0, comp = 0.0, tie_count = 0.0;
            for (size_t b = 0; b < blocks; ++b) {
                fsm_neumaier_add(&total, &comp, sums[b]);
                if (p->op == FSM_OP_LOG_SOFTMAX) tie_count += ties[b];
            }
            double c = p->op == FSM_OP_SOFTMAX ? total + comp : LOG_TOTAL(total + comp, tie_count, m);
            chunk_max[0] = c; /* broadcast; every thread has read the maxima */
        }
        double c = chunk_max[0];
        if (begin < end) FINISH(k)[p->op](x + begin, y + begin, end - begin, m, c);
#pragma omp barrier
    }
}
