/*
 * exp(x - m) for softmax, written as straight-line scalar C so that a loop
 * calling it under `#pragma omp simd` vectorises for whatever ISA the file is
 * compiled for.  No libm call, no branch, no table.
 *
 * Contract, for T in {float, double}:
 *   fsm_exp_minus_max_T(x, m) ~= exp(x - m) where m >= x is the row maximum.
 *   - The difference x - m is carried exactly (TwoSum), so the result does not
 *     lose accuracy when |x - m| is large (NumPy's `np.exp(x - x.max())` does).
 *   - Results that are subnormal are rounded once, correctly scaled; results
 *     below half the smallest subnormal flush to +0; x = -inf gives +0.
 *   - NaN in x or m propagates to the result.
 *   - Relative error (normal results): below 1 ulp; measured figures are in
 *     the README and enforced by tests/test_accuracy.py.
 * Algorithm: n = round((x - m) / ln 2), r = (x - m) - n ln 2 (Cody-Waite, two
 * constants), exp(r) by a polynomial on |r| <= ln2/2, times 2^n.
 */
#ifndef FSM_EXP_MINUS_MAX_H
#define FSM_EXP_MINUS_MAX_H

#include <stdint.h>
#include <string.h>

/* Error of s = fl(a + b): returns e with a + b == s + e exactly (Knuth TwoSum;
 * needs round-to-nearest and no reassociation, i.e. no -ffast-math). */
#define FSM_TWO_SUM_ERR(a, b, s, bb) ((bb) = (s) - (a), ((a) - ((s) - (bb))) + ((b) - (bb)))

static inline float fsm_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t fsm_f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static inline double fsm_f64_from_bits(uint64_t u) { double f; memcpy(&f, &u, sizeof f); return f; }
static inline uint64_t fsm_f64_bits(double f) { uint64_t u; memcpy(&u, &f, sizeof u); return u; }

/* 2^(k + bias) for an integer-valued k with k + bias + 127 in [1, 254]:
 * adding 2^23 + 127 + bias puts that sum in the low mantissa bits, and a
 * logical shift moves it into the exponent field (vectorises on SSE2, AVX2
 * and NEON; no float->int conversion). */
static inline float fsm_pow2i_f32(float k, float bias) {
    return fsm_f32_from_bits(fsm_f32_bits(k + (0x1p23f + 127.0f + bias)) << 23);
}
static inline double fsm_pow2i_f64(double k, double bias) {
    return fsm_f64_from_bits(fsm_f64_bits(k + (0x1p52 + 1023.0 + bias)) << 52);
}

/* Adding and subtracting this rounds |v| < 2^22 (f32) / 2^51 (f64) to an integer. */
#define FSM_ROUND_MAGIC_F32 0x1.8p23f
#define FSM_ROUND_MAGIC_F64 0x1.8p52

/* exp(r) on |r| <= ln2/2 by a degree-6 polynomial 1 + r(1 + r g(r)), g a
 * Chebyshev fit; relative error of the polynomial 1.1e-8 (0.1 ulp). */
static inline float fsm_exp_reduced_f32(float r) {
    float g = 0.0013926391896f;
    g = g * r + 0.0083633458110f;
    g = g * r + 0.0416665533626f;
    g = g * r + 0.1666657598542f;
    g = g * r + 0.5f;
    return (g * r + 1.0f) * r + 1.0f;
}

/* Degree 11; relative error of the polynomial 1.9e-17 (0.2 ulp). */
static inline double fsm_exp_reduced_f64(double r) {
    double g = 2.5100655036066590055e-8;
    g = g * r + 2.7620438948634418648e-7;
    g = g * r + 2.7557267891745530364e-6;
    g = g * r + 2.4801520557017827897e-5;
    g = g * r + 1.9841269863420350263e-4;
    g = g * r + 1.3888888917690603539e-3;
    g = g * r + 8.3333333333299881996e-3;
    g = g * r + 4.1666666666623170383e-2;
    g = g * r + 1.6666666666666667475e-1;
    g = g * r + 5.0000000000000010509e-1;
    return (g * r + 1.0) * r + 1.0;
}

/* The result is formed as (p * 2^(n + B)) * 2^-B: the first factor is a
 * normal number for every n the clamp allows, so a subnormal result is
 * rounded once, by the last multiplication. */
static inline float fsm_exp_minus_max_f32(float x, float m) {
    const float lowest = -104.0f; /* exp(-104) < 2^-150: rounds to +0 */
    float bb, t = x - m;
    float tl = FSM_TWO_SUM_ERR(x, -m, t, bb);
    int flush = t < lowest;       /* false for NaN: NaN propagates */
    t = flush ? lowest : t;
    tl = flush ? 0.0f : tl;       /* x = -inf makes tl NaN */
    float n = (t * 0x1.715476p0f + FSM_ROUND_MAGIC_F32) - FSM_ROUND_MAGIC_F32;
    float r = (t - n * 0x1.62e4p-1f) - n * 0x1.7f7d1cp-20f + tl; /* ln2 = hi + lo */
    return (fsm_exp_reduced_f32(r) * fsm_pow2i_f32(n, 64.0f)) * 0x1p-64f;
}

static inline double fsm_exp_minus_max_f64(double x, double m) {
    const double lowest = -746.0; /* exp(-746) < 2^-1075: rounds to +0 */
    double bb, t = x - m;
    double tl = FSM_TWO_SUM_ERR(x, -m, t, bb);
    int flush = t < lowest;
    t = flush ? lowest : t;
    tl = flush ? 0.0 : tl;
    double n = (t * 0x1.71547652b82fep0 + FSM_ROUND_MAGIC_F64) - FSM_ROUND_MAGIC_F64;
    double r = (t - n * 0x1.62e42fee00000p-1) - n * 0x1.a39ef35793c76p-33 + tl;
    return (fsm_exp_reduced_f64(r) * fsm_pow2i_f64(n, 600.0)) * 0x1p-600;
}

#endif
