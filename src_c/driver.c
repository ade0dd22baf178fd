/*
 * The one engine: splits a problem (fastsoftmax.h) of any op into work
 * items and runs them on OpenMP threads when the work is large enough to pay
 * for them.  Built with OpenMP when the compiler has it; without,
 * everything runs on the calling thread and fsm_openmp_enabled() says so.
 *
 * Plans (chosen in fsm_make_plan, the same for every op):
 *   rows        one row kernel call per group; strided groups go through
 *               per-thread buffers; log_softmax outputs larger than the
 *               caches are written with non-temporal stores.
 *   short rows  groups of at most FSM_SHORT_ROW_MAX_BYTES, transposed in
 *               blocks of up to FSM_SHORT_ROW_LANES into a buffer and run
 *               by a lane kernel, so the SIMD lanes are groups.
 *   columns     a reduction over a non-last axis: a lane kernel on tiles of
 *               up to FSM_LANE_TILE neighbouring lanes.
 *   split row   few long contiguous rows (every op but a masked one without
 *               a y to stage the mask in): every row is cut at sum-block
 *               boundaries into one chunk per thread; chunk maxima, then
 *               block sums, are combined in the single-thread order
 *               (bit-identical results for any thread count).
 * Plain softmax and log_softmax (no scale) run the plain kernels, which
 * every plan has in a form of its own; every other op runs the family
 * kernels (kernels.h): row kernels in the rows plan, lane kernels in the
 * column and short-row plans.  A mask (where=) is applied by every plan the
 * same way, before the kernel: the item's groups are written to y with the
 * masked-out entries replaced by -inf (exp gives exactly 0 for them), and
 * the kernel runs on y in place; a softmax group that comes out NaN gets
 * its masked-out entries back as 0 (log_softmax: -inf) afterwards, so that
 * a group with nothing left is all 0 / -inf and a NaN stays in its entry.
 * Per-thread scratch comes from the heap, one allocation per thread and call.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "exp_minus_max.h"
#include "fastsoftmax.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Most lanes per column-kernel call. */
#define FSM_LANE_TILE 256
/* ... for log_softmax_backward, narrower: its second pass reads the tile
 * of both inputs again, with an exp for each element.  Axis 0 of (1000,
 * 4096), CPU time over softmax on the same array, 256 lanes -> 512 bytes:
 * float32 1.81-1.87x -> 1.63-1.64x, float64 1.58-1.63x -> 1.23x
 * (softmax_backward, without the exp, was slower so in float32: 1.45x ->
 * 1.62x). */
#define FSM_LOG_BACKWARD_TILE_BYTES 512
/* Masked plain rows up to this size are staged in a scratch row, which stays
 * in L1 or L2 between the passes (staged in y, float32 (4096, 1000) took
 * 1.8x plain softmax instead of 1.15x); longer ones in y itself, which the
 * passes then read and write in place (a scratch row beyond L2 only added
 * its own misses). */
#define FSM_MASKED_SCRATCH_MAX_ROW_BYTES ((size_t)256 << 10)
/* Masked column tiles up to this size are narrowed for threads (fsm_tile_lanes). */
#define FSM_MASKED_SPLIT_MAX_BYTES ((size_t)1 << 20)
/* Largest scratch tile for the lanes of a y that is not contiguous along
 * them (an out= in another memory order than x). */
#define FSM_SCRATCH_TILE_BYTES ((size_t)256 << 10)
/* Rows of at most this many bytes (63 float32 or 31 float64 elements) run
 * through the column kernel, many at a time: below it a row kernel call,
 * whose tail past the last whole vector is scalar, costs more per element
 * than the two transposes.  Measured on Zen 4 (2.4M elements, ns per
 * element, row kernel -> short rows): float64 rows of 25-31 2.4-2.7 ->
 * 1.5-2.1, float32 rows of 57-62 0.9-1.2 -> 0.8-1.0; rows of 64 float32 or
 * 32 float64 (whole vectors) are faster in the row kernel. */
#define FSM_SHORT_ROW_MAX_BYTES 252
/* Rows per short-row kernel call: FSM_SHORT_ROW_LANES, halved (down to
 * FSM_SHORT_ROW_MIN_LANES) while their bytes exceed FSM_SHORT_BLOCK_BYTES.
 * A block, its transposed copy and its output then stay well inside L1:
 * with 64 rows, float64 (200000, 24) took 11.0-11.6 ms, with 16 rows 6.8-6.9
 * (float32 (150000, 32): 3.7-4.0 -> 3.0 ms with 32 rows); 64 rows of float32
 * (1000000, 10) stay, as 32 were slower there (3.0 -> 3.5 ms). */
#define FSM_SHORT_BLOCK_BYTES 4096
#define FSM_SHORT_ROW_MIN_LANES 16
/* Contiguous rows up to this size run FSM_ROW_GROUP at a time (kernels.h):
 * a group of them stays in L1 between the passes. */
#define FSM_ROW_GROUP_MAX_BYTES 1024
/* log_softmax outputs at least this large go out with non-temporal stores:
 * they do not fit in the caches, and streaming them saves reading y before
 * writing it (softmax does not stream: kernels.h). */
#define FSM_STREAM_MIN_BYTES ((size_t)32 << 20)
/* ... when a row fits in L2 with room to spare: the row is read three
 * times and must stay in cache between the passes. */
#define FSM_STREAM_MAX_ROW_BYTES ((size_t)256 << 10)
/* ... and is long enough for whole lines: the rows of a shorter one share
 * cache lines, which then go out in pieces (float64 rows of 28, 16M
 * elements: 13-15x the time of np.copyto streamed, 4.3x not). */
#define FSM_STREAM_MIN_ROW_BYTES 1024
const size_t fsm_short_row_max_bytes = FSM_SHORT_ROW_MAX_BYTES;
const size_t fsm_min_elements_per_thread = FSM_MIN_ELEMENTS_PER_THREAD;

static int fsm_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int fsm_team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* --- iterating over batch entries -------------------------------------- */

typedef struct {
    ptrdiff_t index[FSM_MAX_BATCH_DIMS];
    ptrdiff_t off[FSM_NUM_OPERANDS]; /* element offsets of the current entry */
} fsm_batch_iter;

static size_t fsm_batch_count(const fsm_problem *p) {
    size_t count = 1;
    for (int d = 0; d < p->nbatch; ++d) count *= (size_t)p->batch_shape[d];
    return count;
}

/* Positions `it` at batch entry `flat` (C order over the batch dims). */
static void fsm_iter_seek(const fsm_problem *p, fsm_batch_iter *it, size_t flat) {
    for (int k = 0; k < FSM_NUM_OPERANDS; ++k) it->off[k] = 0;
    for (int d = p->nbatch - 1; d >= 0; --d) {
        size_t extent = (size_t)p->batch_shape[d];
        it->index[d] = (ptrdiff_t)(flat % extent);
        flat /= extent;
        for (int k = 0; k < FSM_NUM_OPERANDS; ++k) it->off[k] += it->index[d] * p->operand[k].batch_step[d];
    }
}

static inline void fsm_iter_next(const fsm_problem *p, fsm_batch_iter *it) {
    for (int d = p->nbatch - 1; d >= 0; --d) {
        for (int k = 0; k < FSM_NUM_OPERANDS; ++k) it->off[k] += p->operand[k].batch_step[d];
        if (++it->index[d] < p->batch_shape[d]) return;
        for (int k = 0; k < FSM_NUM_OPERANDS; ++k) it->off[k] -= p->batch_shape[d] * p->operand[k].batch_step[d];
        it->index[d] = 0;
    }
}

/* --- plans ------------------------------------------------------------- */

typedef struct {
    const fsm_problem *p;
    const fsm_kernel_table *k;
    int kind;
    int plain;                  /* plain softmax / log_softmax kernels */
    int masked, drop_masked;    /* a mask; softmax groups that come out NaN get their dropped entries */
    int unsigned_results;       /* a weighted logsumexp without its sign operand */
    int contiguous;             /* x, y and b have step 1 along the group */
    size_t batches, items, elements;
    size_t tile_lanes, tiles;   /* columns plan */
    int stream;                 /* rows plan: non-temporal output */
    size_t row_group;           /* rows plan: rows per kernel call (1, or up to FSM_ROW_GROUP) */
    size_t scratch_bytes;       /* per thread */
    size_t short_rows;          /* short-rows plan: rows per item */
    int masked_in_y;            /* rows plan: masked rows staged in y, not in the scratch */
} fsm_plan;

/* The result of lane j as stored, from a family kernel's results
 * (FSM_GROUP_RESULTS(lanes): results, then signs): a weighted logsumexp
 * stored without its sign has no real log for a negative total, so NaN. */
static inline double fsm_stored_result(const fsm_plan *plan, const double *results, size_t j, size_t lanes) {
    return plan->unsigned_results && results[lanes + j] < 0 ? NAN : results[j];
}

/* Bytes of an element of dtype d. */
static size_t fsm_dtype_size(fsm_dtype d) { return d == FSM_FLOAT64 ? 8 : d == FSM_FLOAT32 ? 4 : 2; }

static size_t fsm_itemsize(const fsm_problem *p) { return fsm_dtype_size(p->dtype); }

static int fsm_has(const fsm_problem *p, int operand) { return p->operand[operand].data != NULL; }

static int fsm_unit_step(const fsm_problem *p, int operand) {
    return !fsm_has(p, operand) || p->operand[operand].step == 1;
}

/* Lanes whose y has no unit lane step are computed in a scratch tile. */
static int fsm_cols_through_scratch(const fsm_problem *p) {
    return fsm_has(p, FSM_Y) && p->operand[FSM_Y].lane_step != 1;
}

/* A b that is the same for every lane (lane step 0) is widened into a
 * scratch tile, so the lane kernels read it as they read x. */
static int fsm_cols_widen_b(const fsm_problem *p) {
    return fsm_has(p, FSM_B) && p->operand[FSM_B].lane_step == 0;
}

/* Lanes per column tile: the widest the scratch allows, so that each pass
 * reads long runs of every row (the kernel's prefetches fetch whole runs).
 * Tiles narrowed to fit x and y in L2 were slower: 16-lane tiles of long
 * columns read one cache line per row (softmax over axis 0 of (32000, 64)
 * float32: 3.4-3.5 ms against 0.95-1.09, benchmarks/ab_calls.py cols).
 * Narrower only when there are fewer batches than threads, so that every
 * thread gets a tile; not for a masked tile beyond L2
 * (FSM_MASKED_SPLIT_MAX_BYTES), which is staged in y first, a pass bound by
 * memory that a second thread on the other half of the same rows did not
 * speed up (where= over axis 0 of (32000, 64), 2 threads over 1: float32
 * 0.98x, float64 0.92x), nor where the masked column kernels stage it in
 * their max pass (float32 0.29-1.20x, float64 0.82-0.83x): such a problem
 * of one tile runs on one thread. */
static size_t fsm_tile_lanes(const fsm_problem *p, size_t batches, int threads) {
    size_t widest = p->op == FSM_OP_LOG_SOFTMAX_BACKWARD ? FSM_LOG_BACKWARD_TILE_BYTES / fsm_itemsize(p) : FSM_LANE_TILE;
    size_t lanes = (size_t)p->lanes, tile = lanes < widest ? lanes : widest;
    int staged_beyond_l2 = fsm_has(p, FSM_MASK) && (size_t)p->n * tile * fsm_itemsize(p) > FSM_MASKED_SPLIT_MAX_BYTES;
    if (batches < (size_t)threads && !staged_beyond_l2) {
        size_t share = (lanes + (size_t)threads - 1) / (size_t)threads;
        share = (share + 15) & ~(size_t)15; /* whole vectors */
        tile = share < tile ? share : tile;
    }
    if (fsm_cols_through_scratch(p) || fsm_cols_widen_b(p)) {
        /* y is computed in a scratch tile and scattered, or b widened into
         * one: at most FSM_SCRATCH_TILE_BYTES each (each lane's result does
         * not depend on the tile's width) */
        size_t by_scratch = FSM_SCRATCH_TILE_BYTES / ((size_t)p->n * fsm_itemsize(p));
        tile = by_scratch < 1 ? 1 : by_scratch < tile ? by_scratch : tile;
    }
    return tile;
}


static size_t fsm_short_rows_per_item(size_t row_bytes) {
    size_t rows = FSM_SHORT_ROW_LANES;
    while (rows > FSM_SHORT_ROW_MIN_LANES && rows * row_bytes > FSM_SHORT_BLOCK_BYTES) rows /= 2;
    return rows;
}

static size_t fsm_round_up64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

/* Per-thread scratch of a plan, carved by the runners (driver.inc.c):
 *   columns     the lane kernel's work, per-lane targets and group results
 *               (FSM_GROUP_RESULTS), a tile of y when y is not contiguous
 *               along the lanes, and one of b when b is the same for every
 *               lane;
 *   short rows  three lane buffers (x, b, y), the lane kernels' work, per-lane
 *               targets and results, the block's group offsets and its rows
 *               of x, b, y and the mask;
 *   rows        three row buffers (x, b, y) for strided or masked groups. */
static size_t fsm_scratch_bytes(const fsm_plan *plan) {
    const fsm_problem *p = plan->p;
    size_t isz = fsm_itemsize(p), n = (size_t)p->n, L = FSM_SHORT_ROW_LANES;
    switch (plan->kind) {
    case FSM_PLAN_COLS:
        return fsm_round_up64((FSM_FAMILY_WORK_DOUBLES(plan->tile_lanes) + plan->tile_lanes +
                               FSM_GROUP_RESULTS(plan->tile_lanes)) * sizeof(double)) +
               (fsm_cols_through_scratch(p) ? fsm_round_up64(n * plan->tile_lanes * isz) : 0) +
               (fsm_cols_widen_b(p) ? fsm_round_up64(n * plan->tile_lanes * isz) : 0);
    case FSM_PLAN_SHORT_ROWS:
        return 3 * fsm_round_up64(n * L * isz) +
               fsm_round_up64((FSM_FAMILY_WORK_DOUBLES(L) + L + FSM_GROUP_RESULTS(L)) * sizeof(double)) +
               fsm_round_up64(FSM_NUM_OPERANDS * L * sizeof(ptrdiff_t)) + 4 * L * sizeof(void *);
    case FSM_PLAN_ROWS:
        return (plan->contiguous && !plan->masked) || plan->masked_in_y ? 0
                                                                         : plan->row_group * 3 * fsm_round_up64(n * isz);
    default:
        return 0;
    }
}

_Static_assert(FSM_SHORT_ROWS_WORK_DOUBLES <= FSM_FAMILY_WORK_DOUBLES(FSM_SHORT_ROW_LANES),
               "the short-row work area serves the plain short-row kernels too");

/* Whether the op's groups can be split across threads (kernels.h): all
 * operands contiguous; not a mask without a y to stage it in. */
static int fsm_splits(const fsm_plan *plan) {
    return plan->contiguous && (!plan->masked || fsm_has(plan->p, FSM_Y));
}

/* Whether the rows plan runs its rows FSM_ROW_GROUP at a time: contiguous
 * rows (masked ones staged first) of at most FSM_ROW_GROUP_MAX_BYTES, of an
 * op with a row-group kernel. */
static int fsm_groups_rows(const fsm_plan *plan, size_t row_bytes) {
    int has_kernel = plan->plain || (plan->p->dtype == FSM_FLOAT32 ? plan->k->frows_f32[plan->p->op] != NULL
                                                                   : plan->k->frows_f64[plan->p->op] != NULL);
    return has_kernel && plan->contiguous && !plan->stream && row_bytes <= FSM_ROW_GROUP_MAX_BYTES;
}

static fsm_plan fsm_make_plan(const fsm_problem *p, int threads) {
    fsm_plan plan;
    memset(&plan, 0, sizeof plan);
    plan.p = p;
    plan.k = fsm_active_kernels();
    plan.kind = FSM_PLAN_ROWS;
    plan.plain = p->op < FSM_NUM_PLAIN_OPS && !p->scaled;
    plan.masked = fsm_has(p, FSM_MASK);
    plan.drop_masked = plan.masked && p->op < FSM_NUM_PLAIN_OPS;
    plan.unsigned_results = p->op == FSM_OP_LOGSUMEXP && fsm_has(p, FSM_B) && !fsm_has(p, FSM_GROUP_SIGN);
    plan.contiguous = fsm_unit_step(p, FSM_X) && fsm_unit_step(p, FSM_Y) && fsm_unit_step(p, FSM_B);
    plan.batches = fsm_batch_count(p);
    size_t n = (size_t)p->n, row_bytes = n * fsm_itemsize(p);
    plan.elements = plan.batches * n * (size_t)p->lanes;
    plan.items = plan.batches;
    if (p->lanes > 1) {
        plan.kind = FSM_PLAN_COLS;
        plan.tile_lanes = fsm_tile_lanes(p, plan.batches, threads);
        plan.tiles = ((size_t)p->lanes + plan.tile_lanes - 1) / plan.tile_lanes;
        plan.items = plan.batches * plan.tiles;
    } else if (row_bytes <= FSM_SHORT_ROW_MAX_BYTES && plan.batches >= FSM_SHORT_ROW_LANES) {
        plan.kind = FSM_PLAN_SHORT_ROWS;
        plan.short_rows = fsm_short_rows_per_item(row_bytes);
        plan.items = (plan.batches + plan.short_rows - 1) / plan.short_rows;
    } else if (fsm_splits(&plan) && threads > 1 && plan.batches < 4 * (size_t)threads &&
               n >= 2 * FSM_MIN_ELEMENTS_PER_THREAD) {
        plan.kind = FSM_PLAN_SPLIT_ROW;
    } else {
        plan.stream = plan.plain && plan.contiguous && !plan.masked && p->op == FSM_OP_LOG_SOFTMAX &&
                      plan.elements * fsm_itemsize(p) >= FSM_STREAM_MIN_BYTES &&
                      row_bytes >= FSM_STREAM_MIN_ROW_BYTES && row_bytes <= FSM_STREAM_MAX_ROW_BYTES;
        plan.row_group = fsm_groups_rows(&plan, row_bytes) ? FSM_ROW_GROUP : 1;
        plan.masked_in_y = plan.plain && plan.masked && fsm_unit_step(p, FSM_MASK) && plan.contiguous &&
                           row_bytes > FSM_MASKED_SCRATCH_MAX_ROW_BYTES;
    }
    plan.scratch_bytes = fsm_scratch_bytes(&plan);
    return plan;
}

/* --- per-dtype runners --------------------------------------------------- */

/* The kernel table entry `field` of the dtype being instantiated. */
#define FSM_TABLE_CAT_(k, field, sfx) ((k)->field##_##sfx)
#define FSM_TABLE_CAT(k, field, sfx) FSM_TABLE_CAT_(k, field, sfx)
#define TABLE(k, field) FSM_TABLE_CAT(k, field, SFX)

#define T float
#define K(name) name##_f32
#define SFX f32
#include "driver.inc.c"
#undef T
#undef K
#undef SFX

#define T double
#define K(name) name##_f64
#define SFX f64
#include "driver.inc.c"
#undef T
#undef K
#undef SFX

/* Runs items [begin, end) of the plan on the calling thread, with scratch
 * of its own from the heap. */
static int fsm_run_range(const fsm_plan *plan, size_t begin, size_t end) {
    void *scratch = NULL;
    if (plan->scratch_bytes > 0 && (scratch = aligned_alloc(64, plan->scratch_bytes)) == NULL) return FSM_ERR_NOMEM;
    if (plan->p->dtype == FSM_FLOAT32) run_range_f32(plan, begin, end, scratch);
    else run_range_f64(plan, begin, end, scratch);
    if (plan->stream) plan->k->stream_fence();
    free(scratch);
    return FSM_OK;
}

static int fsm_run_plan_range(const void *plan, size_t begin, size_t end) {
    return fsm_run_range((const fsm_plan *)plan, begin, end);
}

/* Runs items [0, items) with run_range(work, begin, end), split evenly
 * over at most `threads` threads (one share each). */
static int fsm_share_items(int (*run_range)(const void *work, size_t begin, size_t end), const void *work,
                           size_t items, int threads) {
    if ((size_t)threads > items) threads = (int)items;
    if (threads <= 1) return run_range(work, 0, items);
    int status = FSM_OK;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(| : status)
    {
        size_t id = (size_t)fsm_thread_id(), team = (size_t)fsm_team_size();
        status |= run_range(work, items * id / team, items * (id + 1) / team);
    }
#endif
    return status;
}

static int fsm_run_split_rows(const fsm_plan *plan, int threads) {
#ifdef _OPENMP
    size_t blocks = ((size_t)plan->p->n + FSM_SUM_BLOCK - 1) / FSM_SUM_BLOCK;
    /* per block: its sums; per thread: its chunk's reference point; the fold's result */
    double *shared = malloc((FSM_SPLIT_SUMS * blocks + (size_t)threads + 1) * sizeof(double));
    if (shared == NULL) return FSM_ERR_NOMEM;
#pragma omp parallel num_threads(threads)
    {
        if (plan->p->dtype == FSM_FLOAT32) run_split_rows_f32(plan, blocks, shared);
        else run_split_rows_f64(plan, blocks, shared);
    }
    free(shared);
    return FSM_OK;
#else
    return fsm_run_range(plan, 0, plan->items);
#endif
}

static int fsm_call_threads(const fsm_problem *p, int max_threads) {
    return fsm_thread_count(fsm_batch_count(p) * (size_t)p->n * (size_t)p->lanes, max_threads);
}

#include "half.inc.c"

int fsm_plan_kind(const fsm_problem *p, int max_threads, int *threads) {
    if (fsm_half_problem(p)) return fsm_half_plan_kind(p, max_threads, threads);
    int t = fsm_call_threads(p, max_threads);
    fsm_plan plan = fsm_make_plan(p, t);
    if (plan.kind != FSM_PLAN_SPLIT_ROW && (size_t)t > plan.items) t = (int)plan.items;
    *threads = t;
    return plan.kind;
}

int fsm_run(const fsm_problem *p, int max_threads) {
    if (fsm_half_problem(p)) return fsm_half_run(p, max_threads);
    int threads = fsm_call_threads(p, max_threads);
    fsm_plan plan = fsm_make_plan(p, threads);
    if (plan.kind == FSM_PLAN_SPLIT_ROW) return fsm_run_split_rows(&plan, threads);
    return fsm_share_items(fsm_run_plan_range, &plan, plan.items, threads);
}
