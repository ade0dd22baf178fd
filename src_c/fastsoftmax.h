/*
 * fastsoftmax C core: what the Cython wrapper calls.
 *
 * One problem description for every operation (fsm_problem): the op and its
 * parameters, and its operands in canonical form --
 *   - the reduction axis ("the group"): n elements, `step` apart in each
 *     array operand;
 *   - optionally `lanes` > 1 neighbouring groups that are contiguous in x,
 *     y and b (step 1), processed as SIMD lanes (a reduction over a
 *     non-last axis of a C-contiguous array);
 *   - batch dimensions, iterated over, with arbitrary steps.
 * All steps are in elements of the operand's own type and may be zero or
 * negative.  Array operands (x, y, b, mask) have one element per element of
 * x; group operands (target, group_out, group_sign) one per group, so their
 * `step` is 0.
 * y is either x itself with the same steps (in place) or overlaps no input.
 */
#ifndef FASTSOFTMAX_H
#define FASTSOFTMAX_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

#define FSM_MAX_BATCH_DIMS 64

/* float16 and bfloat16 problems (x or y of a half type) are computed in
 * float32 on tiles staged in the scratch (half.inc.c); y may be float32 for
 * a half x, and of a half type for a float32 x. */
typedef enum { FSM_FLOAT32 = 0, FSM_FLOAT64 = 1, FSM_FLOAT16 = 2, FSM_BFLOAT16 = 3 } fsm_dtype;

/* The operands, by index into fsm_problem.operand. */
enum {
    FSM_X = 0,         /* input (the gradient for the backward passes), T   */
    FSM_Y = 1,         /* output of x's shape, T; NULL for logsumexp and a
                          cross entropy without gradient                    */
    FSM_B = 2,         /* second input, T: the forward output y of the
                          backward passes, cross entropy's probabilities,
                          logsumexp's weights                               */
    FSM_MASK = 3,      /* where=, uint8 0/1                                 */
    FSM_TARGET = 4,    /* cross entropy's class index per group, int64      */
    FSM_GROUP_OUT = 5, /* one result per group (logsumexp, loss), double    */
    FSM_GROUP_SIGN = 6,/* the sign of a weighted logsumexp's total, double  */
    FSM_NUM_OPERANDS = 7
};

typedef struct {
    const void *data;  /* NULL when the op does not use the operand */
    ptrdiff_t step;    /* along the group */
    ptrdiff_t lane_step;
    ptrdiff_t batch_step[FSM_MAX_BATCH_DIMS];
} fsm_operand;

typedef struct {
    int op;          /* FSM_OP_* (kernels.h) */
    fsm_dtype dtype;   /* of x and b */
    fsm_dtype y_dtype; /* of y: dtype, or the mixed precision above */
    int scaled;      /* softmax / log_softmax of x * scale (params.scale_*) */
    fsm_params params;
    ptrdiff_t n;     /* >= 1 */
    ptrdiff_t lanes; /* >= 1 */
    int nbatch;
    ptrdiff_t batch_shape[FSM_MAX_BATCH_DIMS];
    fsm_operand operand[FSM_NUM_OPERANDS];
} fsm_problem;

enum { FSM_OK = 0, FSM_ERR_NOMEM = 1 };

/* Runs the problem with the active kernel variant on at most max_threads
 * threads (0: the OpenMP default).  Does not touch Python; safe to call
 * without the GIL.  Returns FSM_OK or FSM_ERR_NOMEM. */
int fsm_run(const fsm_problem *p, int max_threads);

/* The plan fsm_run would choose for p with max_threads (FSM_PLAN_*), and the
 * threads it would start; for tests and introspection. */
enum { FSM_PLAN_ROWS, FSM_PLAN_SHORT_ROWS, FSM_PLAN_COLS, FSM_PLAN_SPLIT_ROW };
int fsm_plan_kind(const fsm_problem *p, int max_threads, int *threads);

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

/* Plan thresholds, for tests (driver.c). */
extern const size_t fsm_short_row_max_bytes, fsm_min_elements_per_thread;

#endif
