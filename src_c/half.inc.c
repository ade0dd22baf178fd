/*
 * Half-precision problems (x or y float16 or bfloat16, fastsoftmax.h),
 * included by driver.c.  They are computed as float32 on tiles in the
 * per-thread scratch: each chunk of groups -- a run of batch entries, or a
 * tile of one entry's lanes, about FSM_HALF_TILE_ELEMENTS elements -- has
 * its x and b widened into a float32 tile (its mask, targets copied
 * alongside), is run as a float32 problem with the plan float32 takes, and
 * its y is narrowed into the output once.  So every op and plan computes
 * with float32's algorithm and rounds once.  Few long rows (the split-row
 * plan) are widened a row at a time and split across threads as float32.
 * Chunks are fixed by the problem, not the thread count: results do not
 * depend on the threads.
 */
#include "half_convert.h"

/* Elements per chunk: a staged float32 tile (16 KiB) stays in L1 from its
 * widening through the kernel's passes to its narrowing.  Tiles of 16384
 * elements were slower (float16 softmax, 1 thread, Zen 4: (16384, 128)
 * 1.72 -> 1.34 ms, (64, 32000) 1.35 -> 1.00 ms with 4096).  Column chunks
 * are at least FSM_HALF_MIN_LANES wide, whatever their size: each row of a
 * tile is then a run of 256 bytes of half values, which the prefetchers
 * follow (softmax over axis 0 of bfloat16 (1000, 4096): 32 lanes 9.0 ms,
 * 128 lanes 2.9 ms, 256 lanes 3.2 ms; float32 2.9 ms). */
#define FSM_HALF_TILE_ELEMENTS 4096
#define FSM_HALF_MIN_LANES 128
/* Elements per thread's piece of a long row's conversion (split rows). */
#define FSM_HALF_ROW_PIECE 65536

static int fsm_is_half(fsm_dtype d) { return d == FSM_FLOAT16 || d == FSM_BFLOAT16; }

static int fsm_half_problem(const fsm_problem *p) { return fsm_is_half(p->dtype) || fsm_is_half(p->y_dtype); }

/* count elements between float32 `tile` (contiguous) and `data` (float32 or
 * half, `step` elements apart): widened into the tile, or narrowed from it. */
static void fsm_half_move(const fsm_kernel_table *k, fsm_dtype d, void *data, ptrdiff_t step, float *tile,
                          size_t count, int widen) {
    if (d == FSM_FLOAT32) {
        float *f = (float *)data;
        if (step == 1 && widen) memcpy(tile, f, count * sizeof(float));
        else if (step == 1) memcpy(f, tile, count * sizeof(float));
        else if (widen) for (size_t i = 0; i < count; ++i) tile[i] = f[(ptrdiff_t)i * step];
        else for (size_t i = 0; i < count; ++i) f[(ptrdiff_t)i * step] = tile[i];
        return;
    }
    uint16_t *h = (uint16_t *)data;
    int f16 = d == FSM_FLOAT16;
    if (step == 1 && widen) k->widen[f16 ? FSM_HALF_F16 : FSM_HALF_BF16](h, tile, count);
    else if (step == 1) k->narrow[f16 ? FSM_HALF_F16 : FSM_HALF_BF16](tile, h, count);
    else if (widen)
        for (size_t i = 0; i < count; ++i)
            tile[i] = f16 ? fsm_f16_to_f32(h[(ptrdiff_t)i * step]) : fsm_bf16_to_f32(h[(ptrdiff_t)i * step]);
    else
        for (size_t i = 0; i < count; ++i)
            h[(ptrdiff_t)i * step] = f16 ? fsm_f32_to_f16(tile[i]) : fsm_f32_to_bf16(tile[i]);
}

/* The chunks of a problem: runs of `entries` batch entries (one lane), or
 * tiles of `tile_lanes` lanes of one entry (`tiles` per entry). */
typedef struct {
    const fsm_problem *p;
    const fsm_kernel_table *k;
    size_t batches, entries, tile_lanes, tiles, chunks;
} fsm_half_plan;

/* One chunk: entries [first_entry, +entries), lanes [first_lane, +lanes);
 * `it` at its first entry. */
typedef struct {
    size_t first_entry, entries, first_lane, lanes;
    fsm_batch_iter it;
} fsm_half_chunk;

/* The chunk's float32 operands in the scratch, laid out [entry][i][lane]
 * (NULL where the op has none); group results [entry][lane]. */
typedef struct {
    float *x, *y, *b;
    uint8_t *mask;
    int64_t *target;
    double *group_out, *group_sign;
} fsm_half_tiles;

static fsm_half_plan fsm_half_make_plan(const fsm_problem *p) {
    fsm_half_plan hp;
    size_t n = (size_t)p->n, lanes = (size_t)p->lanes, budget = FSM_HALF_TILE_ELEMENTS / n;
    hp.p = p;
    hp.k = fsm_active_kernels();
    hp.batches = fsm_batch_count(p);
    if (lanes == 1) {
        hp.entries = budget < 1 ? 1 : budget;
        if (n * sizeof(float) <= FSM_SHORT_ROW_MAX_BYTES) /* whole blocks of float32's short rows */
            hp.entries -= hp.entries % FSM_SHORT_ROW_LANES;
        hp.tile_lanes = hp.tiles = 1;
        hp.chunks = (hp.batches + hp.entries - 1) / hp.entries;
    } else {
        size_t tile = budget - budget % 16;
        tile = tile < FSM_HALF_MIN_LANES ? FSM_HALF_MIN_LANES : tile;
        hp.entries = 1;
        hp.tile_lanes = tile < lanes ? tile : lanes;
        hp.tiles = (lanes + hp.tile_lanes - 1) / hp.tile_lanes;
        hp.chunks = hp.batches * hp.tiles;
    }
    return hp;
}

static fsm_half_chunk fsm_half_chunk_at(const fsm_half_plan *hp, size_t c) {
    fsm_half_chunk ch;
    size_t entry = c / hp->tiles, tile = c % hp->tiles;
    ch.first_entry = entry * hp->entries;
    ch.entries = hp->batches - ch.first_entry < hp->entries ? hp->batches - ch.first_entry : hp->entries;
    ch.first_lane = tile * hp->tile_lanes;
    ch.lanes = (size_t)hp->p->lanes - ch.first_lane < hp->tile_lanes ? (size_t)hp->p->lanes - ch.first_lane
                                                                      : hp->tile_lanes;
    fsm_iter_seek(hp->p, &ch.it, ch.first_entry);
    return ch;
}

static size_t fsm_half_tile_elements(const fsm_half_plan *hp) { return hp->entries * (size_t)hp->p->n * hp->tile_lanes; }

/* Bytes of a thread's tiles, carved by fsm_half_carve. */
static size_t fsm_half_tiles_bytes(const fsm_half_plan *hp) {
    size_t elements = fsm_half_tile_elements(hp), groups = hp->entries * hp->tile_lanes;
    return 3 * fsm_round_up64(elements * sizeof(float)) + fsm_round_up64(elements) +
           fsm_round_up64(groups * sizeof(int64_t)) + 2 * fsm_round_up64(groups * sizeof(double));
}

static fsm_half_tiles fsm_half_carve(const fsm_half_plan *hp, char *area) {
    const fsm_problem *p = hp->p;
    size_t elements = fsm_half_tile_elements(hp), groups = hp->entries * hp->tile_lanes;
    size_t floats = fsm_round_up64(elements * sizeof(float)), ints = fsm_round_up64(groups * sizeof(int64_t));
    fsm_half_tiles t;
    t.x = (float *)area;
    /* y in place of x, but for cross entropy (kernels.h) */
    t.y = !fsm_has(p, FSM_Y) ? NULL : p->op == FSM_OP_CROSS_ENTROPY ? (float *)(area + floats) : t.x;
    t.b = fsm_has(p, FSM_B) ? (float *)(area + 2 * floats) : NULL;
    t.mask = fsm_has(p, FSM_MASK) ? (uint8_t *)(area + 3 * floats) : NULL;
    area += 3 * floats + fsm_round_up64(elements);
    t.target = fsm_has(p, FSM_TARGET) ? (int64_t *)area : NULL;
    t.group_out = fsm_has(p, FSM_GROUP_OUT) ? (double *)(area + ints) : NULL;
    t.group_sign = fsm_has(p, FSM_GROUP_SIGN) ? (double *)(area + ints + fsm_round_up64(groups * sizeof(double)))
                                              : NULL;
    return t;
}

/* Operand k's entries lie back to back as one run (rows of a C array). */
static int fsm_half_entries_adjacent(const fsm_problem *p, int k) {
    const fsm_operand *o = &p->operand[k];
    return p->lanes == 1 && o->step == 1 && (p->nbatch == 0 || (p->nbatch == 1 && o->batch_step[0] == p->n));
}

/* The chunk's elements of array operand k (of dtype d) to or from `tile`. */
static void fsm_half_transfer(const fsm_half_plan *hp, const fsm_half_chunk *ch, int k, fsm_dtype d, float *tile,
                              int widen) {
    const fsm_problem *p = hp->p;
    const fsm_operand *o = &p->operand[k];
    size_t n = (size_t)p->n, size = fsm_dtype_size(d);
    char *base = (char *)o->data;
    fsm_batch_iter it = ch->it;
    if (fsm_half_entries_adjacent(p, k)) {
        fsm_half_move(hp->k, d, base + it.off[k] * (ptrdiff_t)size, 1, tile, ch->entries * n, widen);
        return;
    }
    for (size_t e = 0; e < ch->entries; ++e, fsm_iter_next(p, &it)) {
        char *entry = base + (it.off[k] + (ptrdiff_t)ch->first_lane * o->lane_step) * (ptrdiff_t)size;
        float *rows = tile + e * n * ch->lanes;
        if (p->lanes == 1) {
            fsm_half_move(hp->k, d, entry, o->step, rows, n, widen);
            continue;
        }
        for (size_t i = 0; i < n; ++i)
            fsm_half_move(hp->k, d, entry + (ptrdiff_t)i * o->step * (ptrdiff_t)size, o->lane_step,
                          rows + i * ch->lanes, ch->lanes, widen);
    }
}

static void fsm_half_gather_mask(const fsm_problem *p, const fsm_half_chunk *ch, uint8_t *tile) {
    const fsm_operand *o = &p->operand[FSM_MASK];
    const uint8_t *mask = (const uint8_t *)o->data;
    fsm_batch_iter it = ch->it;
    for (size_t e = 0; e < ch->entries; ++e, fsm_iter_next(p, &it))
        for (size_t i = 0; i < (size_t)p->n; ++i)
            for (size_t j = 0; j < ch->lanes; ++j)
                *tile++ = mask[it.off[FSM_MASK] + (ptrdiff_t)i * o->step + (ptrdiff_t)(ch->first_lane + j) * o->lane_step];
}

/* The offset of group (entry e's iterator, lane j) in group operand k. */
static ptrdiff_t fsm_half_group_offset(const fsm_problem *p, const fsm_batch_iter *it, int k, size_t lane) {
    return it->off[k] + (ptrdiff_t)lane * p->operand[k].lane_step;
}

static void fsm_half_gather_targets(const fsm_problem *p, const fsm_half_chunk *ch, int64_t *tile) {
    const int64_t *target = (const int64_t *)p->operand[FSM_TARGET].data;
    fsm_batch_iter it = ch->it;
    for (size_t e = 0; e < ch->entries; ++e, fsm_iter_next(p, &it))
        for (size_t j = 0; j < ch->lanes; ++j) *tile++ = target[fsm_half_group_offset(p, &it, FSM_TARGET, ch->first_lane + j)];
}

static void fsm_half_scatter_results(const fsm_problem *p, const fsm_half_chunk *ch, int k, const double *tile) {
    double *out = (double *)p->operand[k].data;
    fsm_batch_iter it = ch->it;
    for (size_t e = 0; e < ch->entries; ++e, fsm_iter_next(p, &it))
        for (size_t j = 0; j < ch->lanes; ++j) out[fsm_half_group_offset(p, &it, k, ch->first_lane + j)] = *tile++;
}

/* The float32 problem of a chunk whose operands are staged in t. */
static void fsm_half_sub_problem(const fsm_problem *p, const fsm_half_chunk *ch, const fsm_half_tiles *t,
                                 fsm_problem *sub) {
    const void *data[FSM_NUM_OPERANDS] = {t->x, t->y, t->b, t->mask, t->target, t->group_out, t->group_sign};
    ptrdiff_t lanes = (ptrdiff_t)ch->lanes;
    sub->op = p->op;
    sub->dtype = sub->y_dtype = FSM_FLOAT32;
    sub->scaled = p->scaled;
    sub->params = p->params;
    sub->n = p->n;
    sub->lanes = lanes;
    sub->nbatch = 1;
    sub->batch_shape[0] = (ptrdiff_t)ch->entries;
    for (int k = 0; k < FSM_NUM_OPERANDS; ++k) {
        int array = k < FSM_TARGET;
        sub->operand[k].data = data[k];
        sub->operand[k].step = array ? lanes : 0;
        sub->operand[k].lane_step = 1;
        sub->operand[k].batch_step[0] = array ? p->n * lanes : lanes;
    }
}

/* Runs chunks [begin, end) of the fsm_half_plan `work` on the calling thread. */
static int fsm_half_run_range(const void *work, size_t begin, size_t end) {
    const fsm_half_plan *hp = (const fsm_half_plan *)work;
    const fsm_problem *p = hp->p;
    char *area = aligned_alloc(64, fsm_half_tiles_bytes(hp));
    void *scratch = NULL;
    size_t scratch_bytes = 0;
    int status = area == NULL ? FSM_ERR_NOMEM : FSM_OK;
    fsm_half_tiles t;
    if (status == FSM_OK) t = fsm_half_carve(hp, area);
    fsm_problem sub;
    for (size_t c = begin; c < end && status == FSM_OK; ++c) {
        fsm_half_chunk ch = fsm_half_chunk_at(hp, c);
        fsm_half_transfer(hp, &ch, FSM_X, p->dtype, t.x, 1);
        if (t.b != NULL) fsm_half_transfer(hp, &ch, FSM_B, p->dtype, t.b, 1);
        if (t.mask != NULL) fsm_half_gather_mask(p, &ch, t.mask);
        if (t.target != NULL) fsm_half_gather_targets(p, &ch, t.target);
        fsm_half_sub_problem(p, &ch, &t, &sub);
        fsm_plan plan = fsm_make_plan(&sub, 1);
        if (plan.scratch_bytes > scratch_bytes) {
            free(scratch);
            scratch_bytes = plan.scratch_bytes;
            if ((scratch = aligned_alloc(64, scratch_bytes)) == NULL) status = FSM_ERR_NOMEM;
        }
        if (status != FSM_OK) break;
        run_range_f32(&plan, 0, plan.items, scratch);
        /* logsumexp's y is only where a mask is staged: here, in the tile */
        if (t.y != NULL && p->op != FSM_OP_LOGSUMEXP) fsm_half_transfer(hp, &ch, FSM_Y, p->y_dtype, t.y, 0);
        if (t.group_out != NULL) fsm_half_scatter_results(p, &ch, FSM_GROUP_OUT, t.group_out);
        if (t.group_sign != NULL) fsm_half_scatter_results(p, &ch, FSM_GROUP_SIGN, t.group_sign);
    }
    free(scratch);
    free(area);
    return status;
}

/* The float32 problem of the same shape: the plan a half problem follows. */
static fsm_problem fsm_half_shadow(const fsm_problem *p) {
    fsm_problem shadow = *p;
    shadow.dtype = shadow.y_dtype = FSM_FLOAT32;
    return shadow;
}

/* Part [begin, end) of a long row between its float32 copy and operand k. */
static void fsm_half_move_piece(const fsm_problem *p, const fsm_batch_iter *it, int k, fsm_dtype d, float *row,
                                size_t begin, size_t end, int widen) {
    const fsm_operand *o = &p->operand[k];
    size_t size = fsm_dtype_size(d);
    char *data = (char *)o->data + (it->off[k] + (ptrdiff_t)begin * o->step) * (ptrdiff_t)size;
    fsm_half_move(fsm_active_kernels(), d, data, o->step, row + begin, end - begin, widen);
}

/* A long row of operand k to or from its float32 copy, in pieces across threads. */
static void fsm_half_move_row(const fsm_problem *p, const fsm_batch_iter *it, int k, fsm_dtype d, float *row,
                              int widen, int threads) {
    size_t n = (size_t)p->n, pieces = (n + FSM_HALF_ROW_PIECE - 1) / FSM_HALF_ROW_PIECE;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
    for (size_t piece = 0; piece < pieces; ++piece) {
        size_t begin = piece * FSM_HALF_ROW_PIECE, end = begin + FSM_HALF_ROW_PIECE < n ? begin + FSM_HALF_ROW_PIECE : n;
        fsm_half_move_piece(p, it, k, d, row, begin, end, widen);
    }
    (void)threads;
}

/* Bytes of an element of the operands that are not of the problem's dtype. */
static size_t fsm_half_operand_size(int k) {
    return k == FSM_MASK ? sizeof(uint8_t) : k == FSM_TARGET ? sizeof(int64_t) : sizeof(double);
}

/* The split-row plan (few long rows, which float32 would cut across
 * threads): each row's x (and b) widened into float32 rows, the row
 * computed there as a float32 problem across the threads (y in place of x),
 * and y narrowed.  The other operands are used where they are. */
static int fsm_half_run_split_rows(const fsm_problem *p, int threads) {
    size_t row_floats = fsm_round_up64((size_t)p->n * sizeof(float)) / sizeof(float);
    int has_b = fsm_has(p, FSM_B), has_y = fsm_has(p, FSM_Y);
    float *row = aligned_alloc(64, (has_b ? 2 : 1) * row_floats * sizeof(float)), *b_row = row + row_floats;
    if (row == NULL) return FSM_ERR_NOMEM;
    int status = FSM_OK;
    fsm_problem sub = fsm_half_shadow(p);
    sub.lanes = 1, sub.nbatch = 0;
    memset(sub.operand, 0, sizeof sub.operand);
    sub.operand[FSM_X].data = row, sub.operand[FSM_X].step = 1;
    if (has_y) sub.operand[FSM_Y].data = row, sub.operand[FSM_Y].step = 1;
    if (has_b) sub.operand[FSM_B].data = b_row, sub.operand[FSM_B].step = 1;
    fsm_batch_iter it;
    fsm_iter_seek(p, &it, 0);
    for (size_t r = 0; r < fsm_batch_count(p) && status == FSM_OK; ++r, fsm_iter_next(p, &it)) {
        for (int k = FSM_MASK; k < FSM_NUM_OPERANDS; ++k) {
            if (!fsm_has(p, k)) continue;
            sub.operand[k].data = (const char *)p->operand[k].data + it.off[k] * (ptrdiff_t)fsm_half_operand_size(k);
            sub.operand[k].step = p->operand[k].step;
        }
        fsm_half_move_row(p, &it, FSM_X, p->dtype, row, 1, threads);
        if (has_b) fsm_half_move_row(p, &it, FSM_B, p->dtype, b_row, 1, threads);
        status = fsm_run(&sub, threads);
        if (has_y) fsm_half_move_row(p, &it, FSM_Y, p->y_dtype, row, 0, threads);
    }
    free(row);
    return status;
}

static int fsm_half_plan_kind(const fsm_problem *p, int max_threads, int *threads) {
    fsm_problem shadow = fsm_half_shadow(p);
    int kind = fsm_plan_kind(&shadow, max_threads, threads);
    if (kind != FSM_PLAN_SPLIT_ROW) {
        fsm_half_plan hp = fsm_half_make_plan(p);
        int t = fsm_call_threads(p, max_threads);
        *threads = (size_t)t > hp.chunks ? (int)hp.chunks : t; /* fsm_share_items' count */
    }
    return kind;
}

static int fsm_half_run(const fsm_problem *p, int max_threads) {
    fsm_problem shadow = fsm_half_shadow(p);
    int threads = fsm_call_threads(p, max_threads);
    if (fsm_make_plan(&shadow, threads).kind == FSM_PLAN_SPLIT_ROW) return fsm_half_run_split_rows(p, threads);
    fsm_half_plan hp = fsm_half_make_plan(p);
    return fsm_share_items(fsm_half_run_range, &hp, hp.chunks, threads);
}
