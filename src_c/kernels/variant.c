/*
 * One ISA variant of every kernel.  setup.py compiles this file once per
 * variant with -DFSM_VARIANT=<name> and that variant's flags (for example
 * -mavx2 -mfma), producing the table fsm_kernels_<name>.  The code is plain
 * C: loops marked `omp simd` are vectorised by the compiler for the target.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#if defined(__AVX__) || defined(__SSE2__)
#include <immintrin.h>
#endif

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

/* Fused multiply-add in this variant's ISA (a * b + c is contracted). */
#if defined(__FMA__) || defined(__aarch64__)
#define FSM_HAS_FMA 1
#else
#define FSM_HAS_FMA 0
#endif

/* Independent partial sums within a sum block (FSM_SUM_BLOCK, kernels.h). */
#define FSM_SUM_CHAINS 16
/* acc[0] += the other FSM_SUM_CHAINS - 1 partial sums, pairwise (halves
 * added lane-wise).  Each step is a loop of constant length, which the
 * compiler turns into a few vector adds; a loop over a halving width stayed
 * scalar, through memory. */
#define FSM_FOLD_CHAINS(acc)                                                    \
    do {                                                                       \
        _Static_assert(FSM_SUM_CHAINS == 16, "FSM_FOLD_CHAINS folds 16 chains"); \
        for (size_t j_ = 0; j_ < 8; ++j_) (acc)[j_] += (acc)[j_ + 8];          \
        for (size_t j_ = 0; j_ < 4; ++j_) (acc)[j_] += (acc)[j_ + 4];          \
        for (size_t j_ = 0; j_ < 2; ++j_) (acc)[j_] += (acc)[j_ + 2];          \
        (acc)[0] += (acc)[1];                                                  \
    } while (0)
/* Elements per step of the max pass: 4 AVX2 registers of float. */
#define FSM_MAX_CHAINS 32
/* Rows per partial sum in the column kernels: softmax (a multiple of 4;
 * four groups of four rows keep the maximum's term meeting few others in
 * T) and log_softmax (whose maximum is counted apart). */
#define FSM_COLS_SUM_BLOCK 16
#define FSM_COLS_LOG_SUM_BLOCK 32


/* Non-temporal stores (output arrays larger than the caches): one vector of
 * FSM_STREAM_BYTES from an aligned temporary to an aligned destination.
 * Without an ISA that has them, plain stores. */
#if defined(__AVX__)
#define FSM_STREAM_BYTES 32
static inline void fsm_stream_f32(float *dst, const float *v) { _mm256_stream_ps(dst, _mm256_load_ps(v)); }
static inline void fsm_stream_f64(double *dst, const double *v) { _mm256_stream_pd(dst, _mm256_load_pd(v)); }
static inline void fsm_stream_fence(void) { _mm_sfence(); }
#elif defined(__SSE2__)
#define FSM_STREAM_BYTES 16
static inline void fsm_stream_f32(float *dst, const float *v) { _mm_stream_ps(dst, _mm_load_ps(v)); }
static inline void fsm_stream_f64(double *dst, const double *v) { _mm_stream_pd(dst, _mm_load_pd(v)); }
static inline void fsm_stream_fence(void) { _mm_sfence(); }
#else
#define FSM_STREAM_BYTES 16
static inline void fsm_stream_f32(float *dst, const float *v) { memcpy(dst, v, FSM_STREAM_BYTES); }
static inline void fsm_stream_f64(double *dst, const double *v) { memcpy(dst, v, FSM_STREAM_BYTES); }
static inline void fsm_stream_fence(void) {}
#endif

/* Elements to store plainly before `p` reaches FSM_STREAM_BYTES alignment
 * (all n when p is not even element-aligned). */
static inline size_t fsm_stream_head(const void *p, size_t n, size_t size) {
    size_t misalign = (uintptr_t)p % FSM_STREAM_BYTES;
    if (misalign % size != 0) return n;
    size_t head = misalign == 0 ? 0 : (FSM_STREAM_BYTES - misalign) / size;
    return head < n ? head : n;
}

/* Short-row transposes (short_rows.inc.c) move TILE x TILE tiles, one
 * vector per row: 32 bytes with AVX, 16 without (SSE2, NEON); TILE is 1
 * (element copies) in the scalar variant and without vector shuffles. */
#if defined(__has_builtin) && !defined(FSM_NO_SHUFFLES)
#if __has_builtin(__builtin_shufflevector)
#define FSM_HAS_SHUFFLES 1
#endif
#endif
#ifndef FSM_HAS_SHUFFLES
#define FSM_TILE_F32 1
#define FSM_TILE_F64 1
#elif defined(__AVX__) /* the avx512 variant too */
#define FSM_TILE_F32 8
#define FSM_TILE_F64 4
#else
#define FSM_TILE_F32 4
#define FSM_TILE_F64 2
#endif

#define T float
#define K KF32
#define TILE FSM_TILE_F32
#define SCALED_EXP fsm_scaled_exp_minus_max_f32
#define ROW_EXP_NOSUB 1
#define INVERSE_TOTAL fsm_inverse_total_f32
#define LOG_TOTAL fsm_log_total_f32
#define STREAM_VECTOR fsm_stream_f32
#define EXP_ROUND_PRODUCT fsm_exp_round_product_f32
#define LOG2E 0x1.71547652b82fep0
#define EXP_JOIN fsm_exp_join_f32
#define LN2_HI FSM_LN2_HI_F32
#define LN2_LO FSM_LN2_LO_F32
#define EXP_LOWEST_N FSM_EXP_LOWEST_N_F32
#define FMA_T fmaf
#define EXP_SCALE 0x1p24 /* 2^FSM_EXP_SCALE_LOG2_F32 */
#define EXP_UNSCALE FSM_EXP_UNSCALE_F32
#include "stream.inc.c"
#include "softmax_rows.inc.c"
#include "softmax_cols.inc.c"
#include "masked_cols.inc.c"
#include "short_rows.inc.c"
#include "masked_short_rows.inc.c"
#include "family_rows.inc.c"
#include "family_cols.inc.c"
#include "cross_entropy_short.inc.c"
#include "split_rows.inc.c"
#undef T
#undef K
#undef TILE
#undef SCALED_EXP
#undef ROW_EXP_NOSUB
#undef INVERSE_TOTAL
#undef LOG_TOTAL
#undef STREAM_VECTOR
#undef EXP_ROUND_PRODUCT
#undef LOG2E
#undef EXP_JOIN
#undef LN2_HI
#undef LN2_LO
#undef EXP_LOWEST_N
#undef FMA_T
#undef EXP_SCALE
#undef EXP_UNSCALE

#define T double
#define K KF64
#define TILE FSM_TILE_F64
#define SCALED_EXP fsm_scaled_exp_minus_max_f64
#define ROW_EXP_NOSUB 0
#define INVERSE_TOTAL fsm_inverse_total_f64
#define LOG_TOTAL fsm_log_total_f64
#define STREAM_VECTOR fsm_stream_f64
#define EXP_ROUND_PRODUCT fsm_exp_round_product_f64
#define LOG2E 0x1.71547652b82fep0
#define EXP_JOIN fsm_exp_join_f64
#define LN2_HI FSM_LN2_HI_F64
#define LN2_LO FSM_LN2_LO_F64
#define EXP_LOWEST_N FSM_EXP_LOWEST_N_F64
#define FMA_T fma
#define EXP_SCALE 0x1p54 /* 2^FSM_EXP_SCALE_LOG2_F64 */
#define EXP_UNSCALE FSM_EXP_UNSCALE_F64
#include "stream.inc.c"
#include "softmax_rows.inc.c"
#include "softmax_cols.inc.c"
#include "masked_cols.inc.c"
#include "short_rows.inc.c"
#include "masked_short_rows.inc.c"
#include "family_rows.inc.c"
#include "family_cols.inc.c"
#include "cross_entropy_short.inc.c"
#include "split_rows.inc.c"
#undef T
#undef K
#undef TILE
#undef SCALED_EXP
#undef ROW_EXP_NOSUB
#undef INVERSE_TOTAL
#undef LOG_TOTAL
#undef STREAM_VECTOR
#undef EXP_ROUND_PRODUCT
#undef LOG2E
#undef EXP_JOIN
#undef LN2_HI
#undef LN2_LO
#undef EXP_LOWEST_N
#undef FMA_T
#undef EXP_SCALE
#undef EXP_UNSCALE

#include "convert.inc.c"

const fsm_kernel_table FSM_CAT(fsm_kernels_, FSM_VARIANT) = {
    .name = FSM_STR(FSM_VARIANT),
    .row_f32 = {KF32(softmax_row), KF32(log_softmax_row)},
    .row_f64 = {KF64(softmax_row), KF64(log_softmax_row)},
    .rows_f32 = {KF32(softmax_rows), KF32(log_softmax_rows)},
    .rows_f64 = {KF64(softmax_rows), KF64(log_softmax_rows)},
    .cols_f32 = {KF32(softmax_cols), KF32(log_softmax_cols)},
    .cols_f64 = {KF64(softmax_cols), KF64(log_softmax_cols)},
    .short_f32 = {KF32(softmax_short_rows), KF32(log_softmax_short_rows)},
    .short_f64 = {KF64(softmax_short_rows), KF64(log_softmax_short_rows)},
    .to_lanes_f32 = KF32(rows_to_lanes),
    .to_lanes_f64 = KF64(rows_to_lanes),
    .from_lanes_f32 = KF32(lanes_to_rows_copy),
    .from_lanes_f64 = KF64(lanes_to_rows_copy),
    .stage_f32 = KF32(stage_masked),
    .stage_f64 = KF64(stage_masked),
    .stage_lanes_f32 = KF32(stage_masked_lanes),
    .stage_lanes_f64 = KF64(stage_masked_lanes),
    .masked_row_f32 = {KF32(softmax_masked_row), KF32(log_softmax_masked_row)},
    .masked_row_f64 = {KF64(softmax_masked_row), KF64(log_softmax_masked_row)},
    .masked_short_f32 = {KF32(softmax_masked_short_rows), KF32(log_softmax_masked_short_rows)},
    .masked_short_f64 = {KF64(softmax_masked_short_rows), KF64(log_softmax_masked_short_rows)},
    .masked_cols_f32 = {KF32(softmax_masked_cols), KF32(log_softmax_masked_cols)},
    .masked_cols_f64 = {KF64(softmax_masked_cols), KF64(log_softmax_masked_cols)},
    .rmax_f32 = KF32(rmax),
    .rmax_f64 = KF64(rmax),
    .rblocks_f32 = {KF32(softmax_rblocks), KF32(log_softmax_rblocks)},
    .rblocks_f64 = {KF64(softmax_rblocks), KF64(log_softmax_rblocks)},
    .finish_f32 = {KF32(softmax_finish), KF32(log_softmax_finish)},
    .finish_f64 = {KF64(softmax_finish), KF64(log_softmax_finish)},
    .log_total_f32 = fsm_log_total_f32,
    .log_total_f64 = fsm_log_total_f64,
    .stream_fence = fsm_stream_fence,
#define FSM_FAMILY_FNS(KT, kind)                                                                 \
    {KT(softmax_##kind), KT(log_softmax_##kind), KT(logsumexp_##kind), KT(softmax_backward_##kind), \
     KT(log_softmax_backward_##kind), KT(cross_entropy_##kind)}
    .frow_f32 = FSM_FAMILY_FNS(KF32, frow),
    .frow_f64 = FSM_FAMILY_FNS(KF64, frow),
#define FSM_ROW_GROUP_FNS(KT, kind) \
    {KT(softmax_##kind), KT(log_softmax_##kind), KT(logsumexp_##kind), NULL, NULL, KT(cross_entropy_##kind)}
    .frows_f32 = FSM_ROW_GROUP_FNS(KF32, frows),
    .frows_f64 = FSM_ROW_GROUP_FNS(KF64, frows),
    .flanes_f32 = FSM_FAMILY_FNS(KF32, flanes),
    .flanes_f64 = FSM_FAMILY_FNS(KF64, flanes),
    .fshort_f32 = {KF32(softmax_fshort), KF32(log_softmax_fshort)},
    .fshort_f64 = {KF64(softmax_fshort), KF64(log_softmax_fshort)},
    .xshort_f32 = KF32(cross_entropy_xshort),
    .xshort_f64 = KF64(cross_entropy_xshort),
#define FSM_SPLIT(KT, ref, op, fold, finish) {KT(ref), KT(op##_blocks), KT(fold), finish}
    .split_f32 = {FSM_SPLIT(KF32, split_max, softmax_split, softmax_split_fold, KF32(softmax_split_finish)),
                  FSM_SPLIT(KF32, split_max, log_softmax_split, log_total_split_fold, KF32(log_softmax_split_finish))},
    .split_f64 = {FSM_SPLIT(KF64, split_max, softmax_split, softmax_split_fold, KF64(softmax_split_finish)),
                  FSM_SPLIT(KF64, split_max, log_softmax_split, log_total_split_fold, KF64(log_softmax_split_finish))},
#define FSM_FAMILY_SPLITS(KT)                                                                                  \
    {FSM_SPLIT(KT, split_scaled_ref, softmax_fsplit, softmax_split_fold, KT(softmax_fsplit_finish)),           \
     FSM_SPLIT(KT, split_scaled_ref, log_softmax_fsplit, log_softmax_fsplit_fold, KT(log_softmax_fsplit_finish)), \
     FSM_SPLIT(KT, split_max, logsumexp_fsplit, logsumexp_fsplit_fold, NULL),                                  \
     {NULL, KT(softmax_backward_fsplit_blocks), KT(backward_fsplit_fold), KT(softmax_backward_fsplit_finish)}, \
     {NULL, KT(log_softmax_backward_fsplit_blocks), KT(backward_fsplit_fold),                                 \
      KT(log_softmax_backward_fsplit_finish)},                                                                 \
     FSM_SPLIT(KT, split_max, cross_entropy_fsplit, cross_entropy_fsplit_fold, KT(cross_entropy_fsplit_finish))}
    .fsplit_f32 = FSM_FAMILY_SPLITS(KF32),
    .fsplit_f64 = FSM_FAMILY_SPLITS(KF64),
    .widen = {KH(widen_f16), KH(widen_bf16)},
    .narrow = {KH(narrow_f16), KH(narrow_bf16)},
};
