/*
 * Splits a canonical problem (fastsoftmax.h) into work items and runs them
 * on OpenMP threads when the work is large enough to pay for them.  Built
 * with OpenMP when the compiler has it; without, everything runs on the
 * calling thread and fsm_openmp_enabled() says so.
 */
#include <stdlib.h>

#include "fastsoftmax.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* Lanes per column-kernel call: 256 lanes of a row span 1-2 KiB, so a tile
 * of a few hundred rows stays in L2 between the kernel's passes. */
#define FSM_LANE_TILE 256

/* Fewest elements per thread that make a parallel region pay for itself:
 * measured on 2 cores, a second thread is worth ~1.5x from 8192 elements a
 * thread (about 10 us of float32 work) and little below 2048. */
#define FSM_MIN_ELEMENTS_PER_THREAD 8192

int fsm_openmp_enabled(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int fsm_default_num_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

static size_t fsm_lane_tiles(const fsm_problem *p) {
    return ((size_t)p->lanes + FSM_LANE_TILE - 1) / FSM_LANE_TILE;
}

static size_t fsm_batch_count(const fsm_problem *p) {
    size_t count = 1;
    for (int d = 0; d < p->nbatch; ++d) count *= (size_t)p->batch_shape[d];
    return count;
}

/* Element offsets in x and y of batch entry `index` (C order over batch dims). */
static inline void fsm_batch_offsets(const fsm_problem *p, size_t index, ptrdiff_t *xo, ptrdiff_t *yo) {
    ptrdiff_t xoff = 0, yoff = 0;
    for (int d = p->nbatch - 1; d >= 0; --d) {
        size_t extent = (size_t)p->batch_shape[d];
        size_t i = d == 0 ? index : index % extent;
        xoff += (ptrdiff_t)i * p->x_batch_step[d];
        yoff += (ptrdiff_t)i * p->y_batch_step[d];
        index /= extent;
    }
    *xo = xoff;
    *yo = yoff;
}

#define T float
#define K(name) name##_f32
#define ROW_FN fsm_row_f32_fn
#define COLS_FN fsm_cols_f32_fn
#define ROWS_TABLE(k) ((k)->row_f32)
#define COLS_TABLE(k) ((k)->cols_f32)
#include "driver.inc.c"
#undef T
#undef K
#undef ROW_FN
#undef COLS_FN
#undef ROWS_TABLE
#undef COLS_TABLE

#define T double
#define K(name) name##_f64
#define ROW_FN fsm_row_f64_fn
#define COLS_FN fsm_cols_f64_fn
#define ROWS_TABLE(k) ((k)->row_f64)
#define COLS_TABLE(k) ((k)->cols_f64)
#include "driver.inc.c"
#undef T
#undef K
#undef ROW_FN
#undef COLS_FN
#undef ROWS_TABLE
#undef COLS_TABLE

static int fsm_run_range(const fsm_problem *p, const fsm_kernel_table *k, size_t begin, size_t end) {
    return p->dtype == FSM_FLOAT32 ? run_range_f32(p, k, begin, end) : run_range_f64(p, k, begin, end);
}

static int fsm_thread_count(size_t items, size_t elements, int max_threads) {
    int threads = max_threads > 0 ? max_threads : fsm_default_num_threads();
    size_t by_work = elements / FSM_MIN_ELEMENTS_PER_THREAD;
    if ((size_t)threads > by_work) threads = by_work > 0 ? (int)by_work : 1;
    if ((size_t)threads > items) threads = (int)items;
    return threads;
}

int fsm_run(const fsm_problem *p, int max_threads) {
    const fsm_kernel_table *k = fsm_active_kernels();
    size_t items = fsm_batch_count(p) * (p->lanes > 1 ? fsm_lane_tiles(p) : 1);
    size_t elements = fsm_batch_count(p) * (size_t)p->n * (size_t)p->lanes;
    int threads = fsm_openmp_enabled() ? fsm_thread_count(items, elements, max_threads) : 1;
    if (threads <= 1) return fsm_run_range(p, k, 0, items);
    int status = FSM_OK;
#ifdef _OPENMP
#pragma omp parallel num_threads(threads) reduction(| : status)
    {
        size_t id = (size_t)omp_get_thread_num(), team = (size_t)omp_get_num_threads();
        status |= fsm_run_range(p, k, items * id / team, items * (id + 1) / team);
    }
#endif
    return status;
}
