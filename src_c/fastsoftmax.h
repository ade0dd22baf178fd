/*
 * fastsoftmax C core: what the Cython wrapper calls.
 *
 * A call describes one softmax over an N-d array in canonical form:
 *   - the softmax axis: n elements, x_step / y_step apart;
 *   - optionally `lanes` > 1 neighbouring problems that are contiguous in
 *     both x and y (step 1), processed as SIMD lanes (softmax over a
 *     non-last axis of a C-contiguous array);
 *   - batch dimensions, iterated over, with arbitrary steps.
 * All steps are in elements and may be zero or negative.  x and y are
 * either the same memory with the same steps (in place) or do not overlap.
 */
#ifndef FASTSOFTMAX_H
#define FASTSOFTMAX_H

#include <stddef.h>

#include "kernels/kernels.h"

#define FSM_MAX_BATCH_DIMS 64

typedef enum { FSM_FLOAT32 = 0, FSM_FLOAT64 = 1 } fsm_dtype;

typedef struct {
    int op;          /* FSM_OP_SOFTMAX or FSM_OP_LOG_SOFTMAX */
    fsm_dtype dtype;
    const void *x;
    void *y;
    ptrdiff_t n, x_step, y_step;
    ptrdiff_t lanes; /* >= 1; when > 1 the lanes are contiguous in x and y */
    int nbatch;
    ptrdiff_t batch_shape[FSM_MAX_BATCH_DIMS];
    ptrdiff_t x_batch_step[FSM_MAX_BATCH_DIMS];
    ptrdiff_t y_batch_step[FSM_MAX_BATCH_DIMS];
} fsm_problem;

enum { FSM_OK = 0, FSM_ERR_NOMEM = 1 };

/* Runs the problem with the active kernel variant on at most max_threads
 * threads (0: the OpenMP default).  Does not touch Python; safe to call
 * without the GIL.  Returns FSM_OK or FSM_ERR_NOMEM. */
int fsm_run(const fsm_problem *p, int max_threads);

/* --- kernel variants (dispatch.c) --- */
enum {
    FSM_VARIANT_SCALAR = 0,
    FSM_VARIANT_BASELINE = 1,
    FSM_VARIANT_AVX2 = 2,
    FSM_VARIANT_AVX512 = 3,
    FSM_NUM_VARIANTS = 4
};

/* Name of variant v, or NULL when it is not compiled into this build. */
const char *fsm_variant_name(int v);
/* 1 when variant v is compiled in and this CPU and OS can run it. */
int fsm_variant_supported(int v);
/* Best supported variant. */
int fsm_best_variant(void);
/* Makes v the active variant; returns 0, or -1 when v is not supported.
 * Not thread-safe: call it before any computation (done at import). */
int fsm_set_variant(int v);
int fsm_active_variant(void);
const fsm_kernel_table *fsm_active_kernels(void);

/* --- threads (threads.c) --- */
/* Fewest elements per thread that make a parallel region pay for itself:
 * measured on 2 cores, a second thread is worth ~1.5x from 8192 elements a
 * thread (about 10 us of float32 work) and little below 2048. */
#define FSM_MIN_ELEMENTS_PER_THREAD 8192

int fsm_openmp_enabled(void);
/* omp_get_max_threads() of the calling thread; 1 without OpenMP. */
int fsm_omp_max_threads(void);
/* Sets the CPUs the process may use (affinity and cgroup quota): no call
 * starts more threads.  Not thread-safe: call it before any computation
 * (done at import). */
void fsm_set_usable_cpus(int cpus);
int fsm_usable_cpus(void);
/* requested, at most the usable CPUs (at least 1). */
int fsm_limit_threads(int requested);
/* Threads for a call that passes no count: the OpenMP default of the
 * calling thread, at most the usable CPUs. */
int fsm_default_num_threads(void);
/* Threads worth starting for this many elements of work, at most
 * max_threads (0: the default) and the usable CPUs; 1 for small work. */
int fsm_thread_count(size_t elements, int max_threads);

/* --- the rest of the family (family.c; problem and kernels: kernels/family.h) ---
 * Runs every row of p with the active kernel variant, rows spread over at
 * most max_threads threads.  Does not touch Python; returns FSM_OK. */
int fsm_family_run(const fsm_family_problem *p, int max_threads);

#endif
