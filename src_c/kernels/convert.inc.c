/*
 * Conversions of the half-precision types (half_convert.h) for one variant:
 * n contiguous elements, widened to float32 or narrowed from it.  float16
 * uses the conversion instructions where the variant has them (F16C in
 * avx2, AVX-512 F in avx512), with the scalar conversion for the tail; the
 * bit operations of bfloat16 are vectorised by the compiler.  AVX-512 BF16's
 * VCVTNEPS2BF16 is not used: it flushes subnormal inputs and results to
 * zero, where a bfloat16 result must keep float32's subnormals.  Included by
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

#ifndef FSM_F16_VECTOR /* the scalar loop converts every element */
#define FSM_F16_VECTOR 0
#define fsm_widen_f16_vector(src, dst) ((void)0)
#define fsm_narrow_f16_vector(src, dst) ((void)0)
#endif

/* dst[i] = convert(src[i]) for i < n: whole vectors by `vector`, the tail
 * by `scalar`. */
#define FSM_F16_CONVERT(vector, scalar)                                                   \
    do {                                                                                \
        size_t i_ = 0;                                                                  \
        if (FSM_F16_VECTOR > 0)                                                         \
            for (; i_ + FSM_F16_VECTOR <= n; i_ += FSM_F16_VECTOR) vector(src + i_, dst + i_); \
        for (; i_ < n; ++i_) dst[i_] = scalar(src[i_]);                                 \
    } while (0)

static void KH(widen_f16)(const uint16_t *src, float *dst, size_t n) {
    FSM_F16_CONVERT(fsm_widen_f16_vector, fsm_f16_to_f32);
}

static void KH(narrow_f16)(const float *src, uint16_t *dst, size_t n) {
    FSM_F16_CONVERT(fsm_narrow_f16_vector, fsm_f32_to_f16);
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
#undef FSM_F16_CONVERT
