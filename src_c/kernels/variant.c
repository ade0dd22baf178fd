/*
 * One ISA variant of every kernel.  setup.py compiles this file once per
 * variant with -DFSM_VARIANT=<name> and that variant's flags (for example
 * -mavx2 -mfma), producing the table fsm_kernels_<name>.  The code is plain
 * C: loops marked `omp simd` are vectorised by the compiler for the target.
 */
#include <math.h>
#include <stddef.h>

#include "../exp_minus_max.h"
#include "kernels.h"

#ifndef FSM_VARIANT
#error "compile with -DFSM_VARIANT=<variant name>"
#endif

#define FSM_CAT_(a, b) a##b
#define FSM_CAT(a, b) FSM_CAT_(a, b)
#define FSM_STR_(a) #a
#define FSM_STR(a) FSM_STR_(a)
#define KF32(name) FSM_CAT(FSM_CAT(fsm_, name), FSM_CAT(_f32_, FSM_VARIANT))
#define KF64(name) FSM_CAT(FSM_CAT(fsm_, name), FSM_CAT(_f64_, FSM_VARIANT))

/* Elements per partial sum in the row kernels (see softmax_rows.inc.c). */
#define FSM_SUM_BLOCK 256
/* Elements per step of the max pass: 4 AVX2 registers of float. */
#define FSM_MAX_CHAINS 32
/* Rows per partial sum in the column kernels. */
#define FSM_COLS_SUM_BLOCK 32

/* (sum, comp) += v with Neumaier's compensated summation. */
static inline void fsm_neumaier_add(double *sum, double *comp, double v) {
    double s = *sum + v;
    *comp += fabs(*sum) >= fabs(v) ? (*sum - s) + v : (v - s) + *sum;
    *sum = s;
}

#define T float
#define K KF32
#define EXP_MINUS_MAX fsm_exp_minus_max_f32
#include "softmax_cols.inc.c"
#include "softmax_rows.inc.c"
#undef T
#undef K
#undef EXP_MINUS_MAX

#define T double
#define K KF64
#define EXP_MINUS_MAX fsm_exp_minus_max_f64
#include "softmax_cols.inc.c"
#include "softmax_rows.inc.c"
#undef T
#undef K
#undef EXP_MINUS_MAX

const fsm_kernel_table FSM_CAT(fsm_kernels_, FSM_VARIANT) = {
    .name = FSM_STR(FSM_VARIANT),
    .row_f32 = {KF32(softmax_row), KF32(log_softmax_row)},
    .row_f64 = {KF64(softmax_row), KF64(log_softmax_row)},
    .cols_f32 = {KF32(softmax_cols), KF32(log_softmax_cols)},
    .cols_f64 = {KF64(softmax_cols), KF64(log_softmax_cols)},
};
