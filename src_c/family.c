/*
 * Runs a problem of the softmax family (kernels/family.h) row by row: rows
 * are independent, so they are spread over OpenMP threads in contiguous
 * ranges, and the result does not depend on the thread count.
 */
#include "fastsoftmax.h"

int fsm_family_run(const fsm_family_problem *p, int max_threads) {
    const fsm_kernel_table *k = fsm_active_kernels();
    fsm_family_row_fn row = p->is_f64 ? k->family_f64[p->op] : k->family_f32[p->op];
    int threads = fsm_thread_count((size_t)p->rows * (size_t)p->n, max_threads);
    if (threads > p->rows) threads = (int)p->rows;
    if (threads <= 1) {
        for (ptrdiff_t r = 0; r < p->rows; ++r) row(p, r);
        return FSM_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
    for (ptrdiff_t r = 0; r < p->rows; ++r) row(p, r);
#endif
    return FSM_OK;
}
