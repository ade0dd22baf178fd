/*
 * Runners for one dtype, included by driver.c with T, K(name) and TABLE(k,
 * field) (the kernel table entry of this dtype) defined.  Each runs a
 * contiguous range of a plan's items on the calling thread (run_split_rows:
 * its share of every row, on every thread of a team).
 */

/* Elements of one scratch row for groups of n (whole cache lines). */
static inline size_t K(scratch_row)(size_t n) { return fsm_round_up64(n * sizeof(T)) / sizeof(T); }

/* The operands of the group at offsets `off` (NULL where the op has none). */
typedef struct {
    const T *x;
    T *y;
    const T *b;
    const uint8_t *mask;
    int64_t target;
    double *group_out, *group_sign;
} K(group);

static inline K(group) K(group_at)(const fsm_problem *p, const ptrdiff_t *off) {
    const fsm_operand *o = p->operand;
    K(group) g;
    g.x = (const T *)o[FSM_X].data + off[FSM_X];
    g.y = o[FSM_Y].data == NULL ? NULL : (T *)o[FSM_Y].data + off[FSM_Y];
    g.b = o[FSM_B].data == NULL ? NULL : (const T *)o[FSM_B].data + off[FSM_B];
    g.mask = o[FSM_MASK].data == NULL ? NULL : (const uint8_t *)o[FSM_MASK].data + off[FSM_MASK];
    g.target = o[FSM_TARGET].data == NULL ? 0 : ((const int64_t *)o[FSM_TARGET].data)[off[FSM_TARGET]];
    g.group_out = o[FSM_GROUP_OUT].data == NULL ? NULL : (double *)o[FSM_GROUP_OUT].data + off[FSM_GROUP_OUT];
    g.group_sign = o[FSM_GROUP_SIGN].data == NULL ? NULL : (double *)o[FSM_GROUP_SIGN].data + off[FSM_GROUP_SIGN];
    return g;
}

/* -1 for a negative scale, whose reference point is the group minimum;
 * else 1 (the maximum). */
static inline T K(ref_sign)(const fsm_problem *p) { return p->scaled && p->params.scale_hi < 0 ? (T)-1 : (T)1; }

/* The value a masked-out entry is staged as: exp gives exactly 0 for it. */
static inline T K(masked_fill)(const fsm_problem *p) { return -K(ref_sign)(p) * (T)INFINITY; }

/* dst[i] = x[i] (where mask[i], else fill, when there is a mask), n
 * elements; contiguous ones by the variant's kernel. */
static void K(stage)(const fsm_kernel_table *k, const T *x, ptrdiff_t x_step, const uint8_t *mask,
                     ptrdiff_t mask_step, T *dst, ptrdiff_t dst_step, size_t n, T fill) {
    if (mask == NULL) {
        for (size_t i = 0; i < n; ++i) dst[(ptrdiff_t)i * dst_step] = x[(ptrdiff_t)i * x_step];
    } else if (x_step == 1 && dst_step == 1 && mask_step == 1) {
        TABLE(k, stage)(x, mask, dst, n, fill);
    } else {
        for (size_t i = 0; i < n; ++i)
            dst[(ptrdiff_t)i * dst_step] = mask[(ptrdiff_t)i * mask_step] ? x[(ptrdiff_t)i * x_step] : fill;
    }
}

/* A softmax group that came out NaN keeps its NaN only in the entries the
 * mask keeps: the others are `dropped` (0, or -inf for log_softmax). */
static void K(drop_masked_if_nan)(const fsm_problem *p, T *y, const uint8_t *mask, size_t n) {
    if (y[0] == y[0]) return;
    ptrdiff_t y_step = p->operand[FSM_Y].step, mask_step = p->operand[FSM_MASK].step;
    T dropped = p->op == FSM_OP_LOG_SOFTMAX ? -(T)INFINITY : (T)0;
    for (size_t i = 0; i < n; ++i)
        if (!mask[(ptrdiff_t)i * mask_step]) y[(ptrdiff_t)i * y_step] = dropped;
}

static inline void K(finish_group)(const fsm_plan *plan, const K(group) *g) {
    if (plan->drop_masked) K(drop_masked_if_nan)(plan->p, g->y, g->mask, (size_t)plan->p->n);
}

/* --- rows --------------------------------------------------------------- */

/* Group g as a row kernel takes it: a contiguous group where it is; a
 * strided or masked one staged in three scratch rows (x, with the
 * masked-out entries replaced; b; y for a strided y, or for cross entropy,
 * whose y may not be x).  Staging in the scratch row rather than in y keeps
 * that pass in L1 and leaves the first write of y to the kernel: staged in
 * y, softmax where= on float32 (4096, 1000) took 1.8x plain softmax instead
 * of about 1.15x. */
static FSM_ALWAYS_INLINE K(group) K(stage_row)(const fsm_plan *plan, K(group) g, T *scratch) {
    const fsm_problem *p = plan->p;
    const fsm_operand *o = p->operand;
    size_t n = (size_t)p->n, row = K(scratch_row)(n);
    if (plan->contiguous && !plan->masked) return g;
    T *bx = scratch, *bb = scratch + row;
    K(stage)(plan->k, g.x, o[FSM_X].step, g.mask, o[FSM_MASK].step, bx, 1, n, K(masked_fill)(p));
    if (g.b != NULL && o[FSM_B].step != 1)
        K(stage)(plan->k, g.b, o[FSM_B].step, NULL, 0, bb, 1, n, 0), g.b = bb;
    g.x = bx;
    if (g.y != NULL && (o[FSM_Y].step != 1 || p->op == FSM_OP_CROSS_ENTROPY))
        g.y = p->op == FSM_OP_CROSS_ENTROPY ? scratch + 2 * row : bx;
    return g;
}

/* A family kernel's results for group g (FSM_GROUP_RESULTS(1)) stored. */
static inline void K(store_results)(const fsm_plan *plan, const K(group) *g, const double *results) {
    if (g->group_out != NULL) *g->group_out = fsm_stored_result(plan, results, 0, 1);
    if (g->group_sign != NULL) *g->group_sign = results[1];
}

/* After the kernel ran on `staged`: its group results stored, y scattered
 * back when it was staged, and the group finished. */
static void K(unstage_row)(const fsm_plan *plan, const K(group) *staged, const K(group) *g, const double *results) {
    K(store_results)(plan, g, results);
    if (g->y != NULL && staged->y != g->y)
        K(stage)(plan->k, staged->y, 1, NULL, 0, g->y, plan->p->operand[FSM_Y].step, (size_t)plan->p->n, 0);
    K(finish_group)(plan, g);
}

/* Rows evenly: contiguous, unmasked rows along one batch dimension, whose
 * operands are found directly, without the odometer and the offsets of
 * every operand (a tenth of a float32 softmax of rows of 64); plain
 * softmax / log_softmax take plan->row_group rows per kernel call, the
 * family's row-group kernels FSM_ROW_GROUP. */
static int K(rows_evenly)(const fsm_plan *plan) {
    return plan->contiguous && !plan->masked && plan->p->nbatch == 1 && (plan->plain || plan->row_group > 1);
}

/* Operand k's element at the start of batch entry r (one batch dimension). */
static inline void *K(entry_data)(const fsm_problem *p, int k, size_t r, size_t itemsize) {
    const fsm_operand *o = &p->operand[k];
    return (char *)o->data + (ptrdiff_t)r * o->batch_step[0] * (ptrdiff_t)itemsize;
}

static void K(run_plain_rows_evenly)(const fsm_plan *plan, size_t begin, size_t end) {
    const fsm_problem *p = plan->p;
    const T *xs[FSM_ROW_GROUP];
    T *ys[FSM_ROW_GROUP];
    for (size_t r = begin; r < end;) {
        size_t count = 0;
        for (; count < plan->row_group && r < end; ++count, ++r) {
            xs[count] = (const T *)K(entry_data)(p, FSM_X, r, sizeof(T));
            ys[count] = (T *)K(entry_data)(p, FSM_Y, r, sizeof(T));
        }
        if (plan->row_group > 1)
            TABLE(plan->k, rows)[p->op](xs, ys, (size_t)p->n, count);
        else
            TABLE(plan->k, row)[p->op](xs[0], ys[0], (size_t)p->n, plan->stream);
    }
}

/* Group results of the entries [first, first + count) stored. */
static void K(store_entry_results)(const fsm_plan *plan, size_t first, size_t count,
                                   double (*results)[FSM_GROUP_RESULTS(1)]) {
    const fsm_problem *p = plan->p;
    for (size_t g = 0; g < count; ++g) {
        if (fsm_has(p, FSM_GROUP_OUT))
            *(double *)K(entry_data)(p, FSM_GROUP_OUT, first + g, sizeof(double)) =
                fsm_stored_result(plan, results[g], 0, 1);
        if (fsm_has(p, FSM_GROUP_SIGN))
            *(double *)K(entry_data)(p, FSM_GROUP_SIGN, first + g, sizeof(double)) = results[g][1];
    }
}

static void K(run_family_rows_evenly)(const fsm_plan *plan, size_t begin, size_t end) {
    const fsm_problem *p = plan->p;
    const T *xs[FSM_ROW_GROUP], *bs[FSM_ROW_GROUP];
    T *ys[FSM_ROW_GROUP];
    int64_t targets[FSM_ROW_GROUP];
    double results[FSM_ROW_GROUP][FSM_GROUP_RESULTS(1)], *result_of[FSM_ROW_GROUP];
    int has_y = fsm_has(p, FSM_Y), has_b = fsm_has(p, FSM_B), has_target = fsm_has(p, FSM_TARGET);
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) result_of[g] = results[g], targets[g] = 0;
    for (size_t r = begin; r < end;) {
        size_t first = r, count = 0;
        for (; count < FSM_ROW_GROUP && r < end; ++count, ++r) {
            xs[count] = (const T *)K(entry_data)(p, FSM_X, r, sizeof(T));
            if (has_y) ys[count] = (T *)K(entry_data)(p, FSM_Y, r, sizeof(T));
            if (has_b) bs[count] = (const T *)K(entry_data)(p, FSM_B, r, sizeof(T));
            if (has_target) targets[count] = *(const int64_t *)K(entry_data)(p, FSM_TARGET, r, sizeof(int64_t));
        }
        TABLE(plan->k, frows)[p->op](xs, has_y ? ys : NULL, has_b ? bs : NULL, (size_t)p->n, count, &p->params,
                                     targets, result_of);
        K(store_entry_results)(plan, first, count, results);
    }
}

/* Contiguous rows in groups of FSM_ROW_GROUP (plan->row_group): the plain
 * row-group kernels, or the family's.  A masked row has its x staged in
 * the scratch; its y, mask and group results are the row's own (y is
 * contiguous, and cross entropy has no mask), so nothing is scattered back. */
static void K(run_row_groups)(const fsm_plan *plan, size_t begin, size_t end, T *scratch) {
    const fsm_problem *p = plan->p;
    const T *xs[FSM_ROW_GROUP], *bs[FSM_ROW_GROUP];
    T *ys[FSM_ROW_GROUP];
    int64_t targets[FSM_ROW_GROUP];
    K(group) gs[FSM_ROW_GROUP];
    double results[FSM_ROW_GROUP][FSM_GROUP_RESULTS(1)], *result_of[FSM_ROW_GROUP];
    int has_y = fsm_has(p, FSM_Y), has_b = fsm_has(p, FSM_B);
    size_t stride = 3 * K(scratch_row)((size_t)p->n);
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin);
    for (size_t r = begin; r < end;) {
        size_t count = 0;
        for (; count < FSM_ROW_GROUP && r < end; ++count, ++r, fsm_iter_next(p, &it)) {
            K(group) g = K(group_at)(p, it.off);
            if (plan->masked) g = K(stage_row)(plan, g, scratch + count * stride);
            xs[count] = g.x, ys[count] = g.y, bs[count] = g.b, targets[count] = g.target;
            result_of[count] = results[count];
            /* stored last: read back field by field while just stored, the
             * struct's copy stalled on store forwarding (a quarter of a
             * float32 softmax of rows of 128) */
            gs[count] = g;
        }
        if (plan->plain) {
            TABLE(plan->k, rows)[p->op](xs, ys, (size_t)p->n, count);
        } else {
            TABLE(plan->k, frows)[p->op](xs, has_y ? ys : NULL, has_b ? bs : NULL, (size_t)p->n, count, &p->params,
                                         targets, result_of);
            for (size_t g = 0; g < count; ++g) K(store_results)(plan, &gs[g], results[g]);
        }
        for (size_t g = 0; plan->masked && g < count; ++g) K(finish_group)(plan, &gs[g]);
    }
}

/* Whether a masked plain row stages and takes its maximum in one pass
 * (masked_row): x, the mask and y contiguous. */
static inline int K(masked_row_in_one_read)(const fsm_plan *plan) {
    const fsm_operand *o = plan->p->operand;
    return plan->plain && plan->masked && o[FSM_X].step == 1 && o[FSM_MASK].step == 1 && o[FSM_Y].step == 1;
}

/* One group with the row kernel. */
static void K(run_one_row)(const fsm_plan *plan, K(group) g, T *scratch) {
    const fsm_problem *p = plan->p;
    size_t n = (size_t)p->n;
    if (K(masked_row_in_one_read)(plan)) {
        TABLE(plan->k, masked_row)[p->op](g.x, g.mask, g.y, n, plan->masked_in_y ? g.y : scratch);
        K(finish_group)(plan, &g);
        return;
    }
    K(group) s = K(stage_row)(plan, g, scratch);
    double results[FSM_GROUP_RESULTS(1)];
    if (plan->plain) TABLE(plan->k, row)[p->op](s.x, s.y, n, plan->stream);
    else TABLE(plan->k, frow)[p->op](s.x, s.y, s.b, n, &p->params, s.target, results);
    K(unstage_row)(plan, &s, &g, results);
}

static void K(run_rows)(const fsm_plan *plan, size_t begin, size_t end, T *scratch) {
    const fsm_problem *p = plan->p;
    if (K(rows_evenly)(plan)) {
        if (plan->plain) K(run_plain_rows_evenly)(plan, begin, end);
        else K(run_family_rows_evenly)(plan, begin, end);
        return;
    }
    if (plan->row_group > 1) {
        K(run_row_groups)(plan, begin, end, scratch);
        return;
    }
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin);
    for (size_t r = begin; r < end; ++r, fsm_iter_next(p, &it)) K(run_one_row)(plan, K(group_at)(p, it.off), scratch);
}

/* --- short rows ----------------------------------------------------------- */

/* Where the groups of a short-row block lie: with one batch dimension
 * evenly spaced from the block's first (offsets computed, `it` left alone:
 * the odometer, which re-reads the problem on every row, took about 8% of a
 * call on rows of 10); otherwise listed in offs[operand][row] for the
 * operands the op has, advancing `it` past them. */
typedef struct {
    int evenly;
    size_t first;
    ptrdiff_t (*offs)[FSM_SHORT_ROW_LANES];
} K(block);

static void K(block_locate)(const fsm_problem *p, fsm_batch_iter *it, size_t first, size_t rows, K(block) *blk) {
    blk->evenly = p->nbatch == 1;
    blk->first = first;
    if (blk->evenly) return;
    for (size_t r = 0; r < rows; ++r, fsm_iter_next(p, it))
        for (int k = 0; k < FSM_NUM_OPERANDS; ++k) blk->offs[k][r] = it->off[k];
}

static inline ptrdiff_t K(block_offset)(const fsm_problem *p, const K(block) *blk, int operand, size_t r) {
    return blk->evenly ? (ptrdiff_t)(blk->first + r) * p->operand[operand].batch_step[0] : blk->offs[operand][r];
}

/* ptrs[r] = base + the offset of group r of the block in `operand`. */
static void K(block_rows)(const fsm_problem *p, const K(block) *blk, int operand, const T *base, size_t rows,
                          const T **ptrs) {
    if (blk->evenly) {
        ptrdiff_t step = p->operand[operand].batch_step[0];
        const T *start = base + (ptrdiff_t)blk->first * step;
        for (size_t r = 0; r < rows; ++r) ptrs[r] = start + (ptrdiff_t)r * step;
    } else {
        for (size_t r = 0; r < rows; ++r) ptrs[r] = base + blk->offs[operand][r];
    }
}

/* The block's masked groups staged as contiguous rows in buf (xs then
 * point there): in one call when x and the mask are contiguous across the
 * block's rows, as in a C-ordered array (a call per row of 10 cost more
 * than the rows). */
static void K(stage_block)(const fsm_plan *plan, const K(block) *blk, const T **xs, const uint8_t *mask,
                           size_t rows, T *buf) {
    const fsm_problem *p = plan->p;
    const fsm_operand *o = p->operand;
    ptrdiff_t n = p->n;
    T fill = K(masked_fill)(p);
    if (blk->evenly && o[FSM_X].step == 1 && o[FSM_MASK].step == 1 && o[FSM_X].batch_step[0] == n &&
        o[FSM_MASK].batch_step[0] == n) {
        TABLE(plan->k, stage)(xs[0], mask + K(block_offset)(p, blk, FSM_MASK, 0), buf, rows * (size_t)n, fill);
    } else {
        for (size_t r = 0; r < rows; ++r)
            K(stage)(plan->k, xs[r], o[FSM_X].step, mask + K(block_offset)(p, blk, FSM_MASK, r), o[FSM_MASK].step,
                     buf + r * (size_t)n, 1, (size_t)n, fill);
    }
    for (size_t r = 0; r < rows; ++r) xs[r] = buf + r * (size_t)n;
}

/* Rows of one operand (x or b) into the lanes of buf: transposed in tiles
 * when contiguous, element by element otherwise. */
static void K(gather_lanes)(const fsm_problem *p, const fsm_plan *plan, const T *const *rows, ptrdiff_t step,
                            size_t count, T *buf) {
    size_t n = (size_t)p->n;
    if (step == 1) {
        TABLE(plan->k, to_lanes)(rows, n, count, buf);
        return;
    }
    for (size_t r = 0; r < count; ++r)
        for (size_t j = 0; j < n; ++j) buf[j * FSM_SHORT_ROW_LANES + r] = rows[r][(ptrdiff_t)j * step];
}

static void K(scatter_lanes)(const fsm_problem *p, const fsm_plan *plan, const T *buf, T *const *rows,
                             ptrdiff_t step, size_t count) {
    size_t n = (size_t)p->n;
    if (step == 1) {
        TABLE(plan->k, from_lanes)(buf, n, count, rows);
        return;
    }
    for (size_t r = 0; r < count; ++r)
        for (size_t j = 0; j < n; ++j) rows[r][(ptrdiff_t)j * step] = buf[j * FSM_SHORT_ROW_LANES + r];
}

/* Whether every group has the same elements of `operand` (no batch step). */
static int K(same_for_every_group)(const fsm_problem *p, int operand) {
    for (int d = 0; d < p->nbatch; ++d)
        if (p->operand[operand].batch_step[d] != 0) return 0;
    return 1;
}

/* The group results of a block's rows (FSM_GROUP_RESULTS(rows), as a lane
 * kernel writes them) stored where the op has them. */
static void K(store_block_results)(const fsm_plan *plan, const K(block) *blk, const double *results, size_t rows) {
    const fsm_problem *p = plan->p;
    double *group_out = (double *)p->operand[FSM_GROUP_OUT].data, *group_sign = (double *)p->operand[FSM_GROUP_SIGN].data;
    for (size_t r = 0; group_out != NULL && r < rows; ++r)
        group_out[K(block_offset)(p, blk, FSM_GROUP_OUT, r)] = fsm_stored_result(plan, results, r, rows);
    for (size_t r = 0; group_sign != NULL && r < rows; ++r)
        group_sign[K(block_offset)(p, blk, FSM_GROUP_SIGN, r)] = results[rows + r];
}

/* Whether masked short rows run the masked short-row kernels, which read
 * the mask as they transpose x (and drop a NaN row's masked-out entries):
 * plain softmax and log_softmax, x, y and the mask contiguous along the
 * rows. */
static int K(masked_short_rows_direct)(const fsm_plan *plan) {
    const fsm_operand *o = plan->p->operand;
    return plan->masked && plan->plain && o[FSM_X].step == 1 && o[FSM_Y].step == 1 && o[FSM_MASK].step == 1;
}

/* Items are blocks of plan->short_rows groups.  Masked groups of plain
 * softmax and log_softmax go to the masked short-row kernels where they
 * can (masked_short_rows_direct); other masked groups are staged as
 * contiguous rows in the scratch first.  Contiguous rows of softmax,
 * log_softmax (plain or scaled) and cross entropy go to their short-row
 * kernels; every other case is transposed into lane buffers, run by the
 * lane kernel (the plain column kernel, or the family's) and transposed
 * back (logsumexp: nothing transposed back, its one result per row stored;
 * a short-row kernel of its own, the lane kernel inlined after the
 * transposes, rounded some lanes apart from gathered rows: the compiler
 * fused multiply-adds differently in the two copies). */
static void K(run_short_rows)(const fsm_plan *plan, size_t begin, size_t end, void *scratch) {
    const fsm_problem *p = plan->p;
    const fsm_operand *o = p->operand;
    const size_t L = FSM_SHORT_ROW_LANES, n = (size_t)p->n;
    size_t lane_buf = fsm_round_up64(n * L * sizeof(T)) / sizeof(T);
    T *bx = (T *)scratch, *bb = bx + lane_buf, *by = bb + lane_buf;
    double *work = (double *)(by + lane_buf);
    int64_t *targets = (int64_t *)(work + FSM_FAMILY_WORK_DOUBLES(L));
    double *results = (double *)(targets + L);
    ptrdiff_t (*offs)[FSM_SHORT_ROW_LANES] =
        (ptrdiff_t (*)[FSM_SHORT_ROW_LANES])((char *)scratch + 3 * lane_buf * sizeof(T) +
                                             fsm_round_up64((FSM_FAMILY_WORK_DOUBLES(L) + L + FSM_GROUP_RESULTS(L)) *
                                                            sizeof(double)));
    /* the block's rows: in the scratch, not on a worker's stack */
    const T **xs = (const T **)(offs + FSM_NUM_OPERANDS), **bs = xs + L;
    T **ys = (T **)(bs + L);
    const uint8_t **ms = (const uint8_t **)(ys + L);
    const T *x = (const T *)o[FSM_X].data, *b = (const T *)o[FSM_B].data;
    T *y = (T *)o[FSM_Y].data;
    const int64_t *target = (const int64_t *)o[FSM_TARGET].data;
    const uint8_t *mask = (const uint8_t *)o[FSM_MASK].data;
    ptrdiff_t x_step = plan->masked ? 1 : o[FSM_X].step;
    /* softmax, log_softmax and cross entropy read and write contiguous rows themselves */
    int rows_direct = x_step == 1 && (y == NULL || o[FSM_Y].step == 1) && (b == NULL || o[FSM_B].step == 1);
    /* ... and plain masked rows, with their masks, unstaged */
    int masked_direct = K(masked_short_rows_direct)(plan);
    /* the lane kernel writes y in place of x, but for cross entropy (kernels.h) */
    T *lane_out = y == NULL || p->op == FSM_OP_LOGSUMEXP ? NULL : p->op == FSM_OP_CROSS_ENTROPY ? by : bx;
    /* b broadcast over the batch (one row of weights for every group):
     * its lane buffer is the same for every block, gathered once */
    int b_is_one_row = b != NULL && K(same_for_every_group)(p, FSM_B);
    size_t b_rows_gathered = 0;
    K(block) blk;
    blk.offs = offs;
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin * plan->short_rows);
    for (size_t item = begin; item < end; ++item) {
        size_t first = item * plan->short_rows;
        size_t rows = plan->batches - first < plan->short_rows ? plan->batches - first : plan->short_rows;
        K(block_locate)(p, &it, first, rows, &blk);
        K(block_rows)(p, &blk, FSM_X, x, rows, xs);
        if (y != NULL) K(block_rows)(p, &blk, FSM_Y, y, rows, (const T **)ys);
        if (b != NULL) K(block_rows)(p, &blk, FSM_B, b, rows, bs);
        for (size_t r = 0; target != NULL && r < rows; ++r) targets[r] = target[K(block_offset)(p, &blk, FSM_TARGET, r)];
        if (plan->masked && !masked_direct) /* staged as rows in by (cross entropy, which needs by, has no mask) */
            K(stage_block)(plan, &blk, xs, mask, rows, by);
        if (masked_direct) {
            for (size_t r = 0; r < rows; ++r) ms[r] = mask + K(block_offset)(p, &blk, FSM_MASK, r);
            TABLE(plan->k, masked_short)[p->op](xs, ms, ys, n, rows, bx, work);
        } else if (rows_direct && plan->plain) {
            TABLE(plan->k, short)[p->op](xs, ys, n, rows, bx, work);
        } else if (rows_direct && p->op < FSM_NUM_PLAIN_OPS) {
            TABLE(plan->k, fshort)[p->op](xs, ys, n, rows, &p->params, bx, work);
        } else if (rows_direct && p->op == FSM_OP_CROSS_ENTROPY) {
            TABLE(plan->k, xshort)(xs, y == NULL ? NULL : ys, b == NULL ? NULL : bs, n, rows, &p->params, targets,
                                   results, bx, bb, by, work);
            K(store_block_results)(plan, &blk, results, rows);
        } else {
            K(gather_lanes)(p, plan, xs, x_step, rows, bx);
            if (b != NULL && !(b_is_one_row && b_rows_gathered >= rows)) {
                K(gather_lanes)(p, plan, bs, o[FSM_B].step, rows, bb);
                b_rows_gathered = rows;
            }
            if (plan->plain)
                TABLE(plan->k, cols)[p->op](bx, (ptrdiff_t)L, lane_out, (ptrdiff_t)L, n, rows, work);
            else
                TABLE(plan->k, flanes)[p->op](bx, (ptrdiff_t)L, lane_out, (ptrdiff_t)L, b == NULL ? NULL : bb,
                                             (ptrdiff_t)L, n, rows, &p->params, targets, results, work);
            if (lane_out != NULL) K(scatter_lanes)(p, plan, lane_out, ys, o[FSM_Y].step, rows);
            K(store_block_results)(plan, &blk, results, rows);
        }
        for (size_t r = 0; plan->drop_masked && !masked_direct && r < rows; ++r)
            K(drop_masked_if_nan)(p, ys[r], mask + K(block_offset)(p, &blk, FSM_MASK, r), n);
    }
}

/* --- columns ---------------------------------------------------------------- */

/* A tile's masked-out entries staged in y (a tile that the masked column
 * kernels do not take); the kernel then reads y. */
static void K(stage_tile)(const fsm_plan *plan, const T *x, T *y, ptrdiff_t y_step, const uint8_t *mask,
                          size_t lanes) {
    const fsm_problem *p = plan->p;
    const fsm_operand *o = p->operand;
    T fill = K(masked_fill)(p);
    ptrdiff_t mask_lane = o[FSM_MASK].lane_step;
    if (mask_lane == 1) {
        TABLE(plan->k, stage_lanes)(x, o[FSM_X].step, mask, o[FSM_MASK].step, y, y_step, (size_t)p->n, lanes, fill);
        return;
    }
    for (size_t i = 0; i < (size_t)p->n; ++i) {
        const T *xr = x + (ptrdiff_t)i * o[FSM_X].step;
        T *yr = y + (ptrdiff_t)i * y_step;
        const uint8_t *mr = mask + (ptrdiff_t)i * o[FSM_MASK].step;
        for (size_t j = 0; j < lanes; ++j) yr[j] = mr[(ptrdiff_t)j * mask_lane] ? xr[j] : fill;
    }
}

/* Whether a masked tile runs the masked column kernels, whose max pass
 * stages it in y (no staging pass of its own): plain softmax and
 * log_softmax, the mask contiguous along the lanes. */
static inline int K(masked_cols_direct)(const fsm_plan *plan) {
    return plan->masked && plan->plain && plan->p->operand[FSM_MASK].lane_step == 1;
}

static void K(drop_tile_if_nan)(const fsm_problem *p, T *y, ptrdiff_t y_step, const uint8_t *mask, size_t lanes) {
    const fsm_operand *o = p->operand;
    T dropped = p->op == FSM_OP_LOG_SOFTMAX ? -(T)INFINITY : (T)0;
    for (size_t j = 0; j < lanes; ++j) {
        if (y[j] == y[j]) continue;
        for (size_t i = 0; i < (size_t)p->n; ++i)
            if (!mask[(ptrdiff_t)i * o[FSM_MASK].step + (ptrdiff_t)j * o[FSM_MASK].lane_step])
                y[(ptrdiff_t)i * y_step + (ptrdiff_t)j] = dropped;
    }
}

/* y[i * y_step + j * lane_step] = tile[i * lanes + j]. */
static void K(scatter_tile)(const T *tile, size_t n, size_t lanes, T *y, ptrdiff_t y_step, ptrdiff_t lane_step) {
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < lanes; ++j)
            y[(ptrdiff_t)i * y_step + (ptrdiff_t)j * lane_step] = tile[i * lanes + j];
}

/* tile[i * lanes + j] = b[i * b_step] for every lane j: a b that is the same
 * for every lane, widened. */
static void K(widen_tile)(const T *b, ptrdiff_t b_step, size_t n, size_t lanes, T *tile) {
    for (size_t i = 0; i < n; ++i)
        for (size_t j = 0; j < lanes; ++j) tile[i * lanes + j] = b[(ptrdiff_t)i * b_step];
}

/* Items are (batch entry, lane tile) pairs, tile-major within an entry.
 * The plan depends on x alone: a y that is not contiguous along the lanes
 * is computed in a scratch tile and scattered, so that its layout does not
 * change the result. */
static void K(run_cols)(const fsm_plan *plan, size_t begin, size_t end, double *work) {
    const fsm_problem *p = plan->p;
    const fsm_operand *o = p->operand;
    size_t n = (size_t)p->n;
    int64_t *targets = (int64_t *)(work + FSM_FAMILY_WORK_DOUBLES(plan->tile_lanes));
    double *results = (double *)(targets + plan->tile_lanes);
    T *scratch_tile = (T *)((char *)work + fsm_round_up64((FSM_FAMILY_WORK_DOUBLES(plan->tile_lanes) +
                                                           plan->tile_lanes + FSM_GROUP_RESULTS(plan->tile_lanes)) *
                                                          sizeof(double)));
    int through_scratch = fsm_cols_through_scratch(p), widen_b = fsm_cols_widen_b(p);
    int masked_direct = K(masked_cols_direct)(plan);
    T *b_tile = scratch_tile + (through_scratch ? fsm_round_up64(n * plan->tile_lanes * sizeof(T)) / sizeof(T) : 0);
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, begin / plan->tiles);
    for (size_t item = begin; item < end; ++item) {
        size_t tile = item % plan->tiles;
        if (tile == 0 && item != begin) fsm_iter_next(p, &it);
        size_t first = tile * plan->tile_lanes;
        size_t lanes = (size_t)p->lanes - first;
        if (lanes > plan->tile_lanes) lanes = plan->tile_lanes;
        K(group) g = K(group_at)(p, it.off);
        if (widen_b && (tile == 0 || item == begin)) /* the same for every tile of the entry */
            K(widen_tile)(g.b, o[FSM_B].step, n, plan->tile_lanes, b_tile);
        const T *x = g.x + first;
        T *y_dst = g.y == NULL ? NULL : g.y + (ptrdiff_t)first * o[FSM_Y].lane_step;
        T *y = through_scratch ? scratch_tile : y_dst;
        ptrdiff_t x_step = o[FSM_X].step, y_step = through_scratch ? (ptrdiff_t)lanes : o[FSM_Y].step;
        const uint8_t *mask = g.mask == NULL ? NULL : g.mask + (ptrdiff_t)first * o[FSM_MASK].lane_step;
        if (plan->masked && !masked_direct) {
            K(stage_tile)(plan, x, y, y_step, mask, lanes);
            x = y, x_step = y_step;
        }
        if (masked_direct) {
            TABLE(plan->k, masked_cols)[p->op](x, x_step, mask, o[FSM_MASK].step, y, y_step, n, lanes, work);
        } else if (plan->plain) {
            TABLE(plan->k, cols)[p->op](x, x_step, y, y_step, n, lanes, work);
        } else {
            const int64_t *t = (const int64_t *)o[FSM_TARGET].data;
            for (size_t j = 0; t != NULL && j < lanes; ++j)
                targets[j] = t[it.off[FSM_TARGET] + (ptrdiff_t)(first + j) * o[FSM_TARGET].lane_step];
            const T *b = widen_b ? b_tile : g.b == NULL ? NULL : g.b + first;
            ptrdiff_t b_step = widen_b ? (ptrdiff_t)plan->tile_lanes : o[FSM_B].step;
            TABLE(plan->k, flanes)[p->op](x, x_step, y, y_step, b, b_step, n, lanes, &p->params, targets, results,
                                         work);
            double *go = (double *)o[FSM_GROUP_OUT].data, *gs = (double *)o[FSM_GROUP_SIGN].data;
            for (size_t j = 0; go != NULL && j < lanes; ++j)
                go[it.off[FSM_GROUP_OUT] + (ptrdiff_t)(first + j) * o[FSM_GROUP_OUT].lane_step] =
                    fsm_stored_result(plan, results, j, lanes);
            for (size_t j = 0; gs != NULL && j < lanes; ++j)
                gs[it.off[FSM_GROUP_SIGN] + (ptrdiff_t)(first + j) * o[FSM_GROUP_SIGN].lane_step] =
                    results[lanes + j];
        }
        if (plan->drop_masked) K(drop_tile_if_nan)(p, y, y_step, mask, lanes);
        if (through_scratch && y_dst != NULL)
            K(scatter_tile)(y, n, lanes, y_dst, o[FSM_Y].step, o[FSM_Y].lane_step);
    }
}

static void K(run_range)(const fsm_plan *plan, size_t begin, size_t end, void *scratch) {
    switch (plan->kind) {
    case FSM_PLAN_COLS: K(run_cols)(plan, begin, end, (double *)scratch); break;
    case FSM_PLAN_SHORT_ROWS: K(run_short_rows)(plan, begin, end, scratch); break;
    default: K(run_rows)(plan, begin, end, (T *)scratch); break;
    }
}

/* --- split rows --------------------------------------------------------------- */

/* The split steps of the plan's op (kernels.h). */
static const K(fsm_split) *K(split_of)(const fsm_plan *plan) {
    return plan->plain ? &TABLE(plan->k, split)[plan->p->op] : &TABLE(plan->k, fsplit)[plan->p->op];
}

/* The group's reference point from its chunks': their maximum, or their
 * minimum for a negative scale (NaN chunks, of no finite entry, passed over). */
static T K(combine_refs)(const fsm_problem *p, const double *chunk_ref, size_t team) {
    T sign = K(ref_sign)(p), m = -(T)INFINITY;
    for (size_t t = 0; t < team; ++t) m = sign * (T)chunk_ref[t] > m ? sign * (T)chunk_ref[t] : m;
    return sign * m;
}

/* Called by every thread of a team, for contiguous groups: each group is
 * cut at block boundaries into one chunk per thread.  Step 1: chunk
 * reference points (a masked chunk is staged in y first, by the thread that
 * owns it); step 2: per-block sums; one thread folds them in the row
 * kernel's order; step 3: each chunk is finished.  The arithmetic is the
 * row kernel's, so the result does not depend on the thread count.
 * `shared` holds FSM_SPLIT_SUMS * blocks + team + 1 doubles. */
static void K(run_split_rows)(const fsm_plan *plan, size_t blocks, double *shared) {
    const fsm_problem *p = plan->p;
    const K(fsm_split) *split = K(split_of)(plan);
    size_t id = (size_t)fsm_thread_id(), team = (size_t)fsm_team_size();
    size_t n = (size_t)p->n;
    size_t begin = blocks * id / team * FSM_SUM_BLOCK, end = blocks * (id + 1) / team * FSM_SUM_BLOCK;
    end = end < n ? end : n;
    double *sums = shared, *chunk_ref = shared + FSM_SPLIT_SUMS * blocks, *c = chunk_ref + team;
    ptrdiff_t mask_step = p->operand[FSM_MASK].step;
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, 0);
    for (size_t r = 0; r < plan->batches; ++r, fsm_iter_next(p, &it)) {
        K(group) g = K(group_at)(p, it.off);
        if (plan->masked && begin < end) {
            K(stage)(plan->k, g.x + begin, 1, g.mask + (ptrdiff_t)begin * mask_step, mask_step, g.y + begin, 1,
                     end - begin, K(masked_fill)(p));
        }
        if (plan->masked) g.x = g.y;
        T m = 0;
        if (split->ref != NULL) {
            chunk_ref[id] = begin < end ? split->ref(g.x + begin, end - begin, &p->params) : NAN;
#pragma omp barrier
            m = K(combine_refs)(p, chunk_ref, team);
        }
        if (begin < end) split->blocks(g.x, g.y, g.b, n, begin, end, m, &p->params, g.target, sums);
#pragma omp barrier
#pragma omp single
        {
            double results[FSM_GROUP_RESULTS(1)];
            *c = split->fold(g.x, g.b, n, m, &p->params, g.target, sums, results);
            K(store_results)(plan, &g, results);
        }
        if (begin < end && split->finish != NULL && g.y != NULL) {
            split->finish(g.x, g.y, g.b, n, begin, end, m, &p->params, g.target, *c);
            if (plan->drop_masked) K(drop_masked_if_nan)(p, g.y + begin, g.mask + (ptrdiff_t)begin * mask_step,
                                                         end - begin);
        }
#pragma omp barrier
    }
}
