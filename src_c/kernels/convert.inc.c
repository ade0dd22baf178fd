/*
 * Conversions of the half-precision types (half_convert.h) for one variant:
 * n contiguous elements, widened to float32 or narrowed from it.  float16
 * uses the conversion instructions where the variant has them (F16C in
 * avx2, AVX-512 F in avx512), with the scalar conversion for the tail; the
 * bit operations of bfloat16 are vectorised by the compiler.  Included by
 * variant.c once per variant; KH(name) is the variant's name of a function.
 */
#include "../half_convert.h"

#define KH(name) FSM_CAT(FSM_CAT(fsm_, name), FSM_CAT(_, FSM_VARIANT))

#if defined(__AVX512F__)
#define FSM_F16_VECTOR 16
static inline void fsm_widen_f16_vector(const uint16_t *src, float *dst) {
    _mm512_storeu_ps(dst, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)src)));
}
static inline void fsm_narrow_f16_vector(const float *src, uint16_t *dst) {
    _mm256_storeu_si256((__m256i *)dst, _mm512_cvtps_ph(_mm512_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT));
}
#elif defined(__F16C__)
#define FSM_F16_VECTOR 8
static inline void fsm_widen_f16_vector(const uint16_t *src, float *dst) {
    _mm256_storeu_ps(dst, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)src)));
}
static inline void fsm_narrow_f16_vector(const float *src, uint16_t *dst) {
    _mm_storeu_si128((__m128i *)dst, _mm256_cvtps_ph(_mm256_loadu_ps(src), _MM_FROUND_TO_NEAREST_INT));
}
#endif

static void KH(widen_f16)(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
#ifdef FSM_F16_VECTOR
    for (; i + FSM_F16_VECTOR <= n; i += FSM_F16_VECTOR) fsm_widen_f16_vector(src + i, dst + i);
#endif
    for (; i < n; ++i) dst[i] = fsm_f16_to_f32(src[i]);
}

static void KH(narrow_f16)(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
#ifdef FSM_F16_VECTOR
    for (; i + FSM_F16_VECTOR <= n; i += FSM_F16_VECTOR) fsm_narrow_f16_vector(src + i, dst + i);
#endif
    for (; i < n; ++i) dst[i] = fsm_f32_to_f16(src[i]);
}

static void KH(widen_bf16)(const uint16_t *src, float *dst, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) dst[i] = fsm_bf16_to_f32(src[i]);
}

static void KH(narrow_bf16)(const float *src, uint16_t *dst, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) dst[i] = fsm_f32_to_bf16(src[i]);
}

#undef FSM_F16_VECTOR
