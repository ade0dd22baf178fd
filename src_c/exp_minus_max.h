/*
 * exp(x - m) for softmax, written as straight-line scalar C so that a loop
 * calling it under `#pragma omp simd` vectorises for whatever ISA the file is
 * compiled for.  No libm call, no branch, no table (but the AVX-512 table
 * form of the no-subtraction exponential, fsm_scaled_exp_nosub_f32x16).
 *
 * Contract, for T in {float, double} (B = FSM_EXP_SCALE_LOG2_T):
 *   fsm_scaled_exp_minus_max_T(x, m) ~= exp(x - m) * 2^B, where m >= x is the
 *   row maximum.
 *   - The factor 2^B keeps every result that is a subnormal number after
 *     unscaling a normal number here, so it keeps full precision until the
 *     caller divides by the row total (scaled alike): a subnormal output is
 *     rounded once.  Results below half the smallest subnormal (before
 *     scaling) are exactly +0, and so is x = -inf.
 *   - x - m is carried exactly (TwoSum), so the result keeps its accuracy
 *     when |x - m| is large (NumPy's `np.exp(x - x.max())` loses it).
 *   - NaN in x or m propagates to the result.
 *   - Relative error (normal results): about 1 ulp; measured figures are in
 *     docs/accuracy.md and enforced by tests/test_accuracy.py.
 * Algorithm: n = round((x - m) / ln 2), r = (x - m) - n ln 2 (Cody-Waite, two
 * constants), exp(r) by a polynomial on |r| <= ln2/2, times 2^(n + B).
 */
#ifndef FSM_EXP_MINUS_MAX_H
#define FSM_EXP_MINUS_MAX_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fsm_inline.h"

#define FSM_EXP_SCALE_LOG2_F32 24
#define FSM_EXP_SCALE_LOG2_F64 54
#define FSM_EXP_UNSCALE_F32 0x1p-24 /* 2^-FSM_EXP_SCALE_LOG2_F32 */
#define FSM_EXP_UNSCALE_F64 0x1p-54

/* Error of s = fl(a + b): returns e with a + b == s + e exactly (Knuth TwoSum;
 * needs round-to-nearest and no reassociation, i.e. no -ffast-math). */
#define FSM_TWO_SUM_ERR(a, b, s, bb) ((bb) = (s) - (a), ((a) - ((s) - (bb))) + ((b) - (bb)))

static inline float fsm_f32_from_bits(uint32_t u) { float f; memcpy(&f, &u, sizeof f); return f; }
static inline uint32_t fsm_f32_bits(float f) { uint32_t u; memcpy(&u, &f, sizeof u); return u; }
static inline double fsm_f64_from_bits(uint64_t u) { double f; memcpy(&f, &u, sizeof f); return f; }
static inline uint64_t fsm_f64_bits(double f) { uint64_t u; memcpy(&u, &f, sizeof u); return u; }

/* k = t/ln2 + SHIFTER rounds t/ln2 to an integer n held in k's low mantissa
 * bits, offset by the exponent bias + B; k - SHIFTER is n as a float and
 * bits(k) << mantissa_bits is 2^(n + B) (a logical shift: no float->int
 * conversion, vectorises on SSE2, AVX2 and NEON). */
#define FSM_EXP_SHIFTER_F32 (0x1.8p23f + (127 + FSM_EXP_SCALE_LOG2_F32))
#define FSM_EXP_SHIFTER_F64 (0x1.8p52 + (1023 + FSM_EXP_SCALE_LOG2_F64))

/* exp(r) - 1 - r on |r| <= ln2/2 as r^2 q(r); exp(r) = 1 + (r + r^2 q(r)).
 * Chebyshev fits; relative error of 1 + r + r^2 q: 1.1e-8 (f32), 1.9e-17 (f64).
 * Estrin's scheme: short dependency chains, so the out-of-order core can
 * overlap many elements. */
static inline float fsm_expm1_tail_f32(float r, float r2) {
    float lo = 0.5f + r * 0.1666657598542f;
    float hi = 0.0416665533626f + r * 0.0083633458110f + r2 * 0.0013926391896f;
    return lo + r2 * hi;
}

static inline double fsm_expm1_tail_f64(double r, double r2) {
    double r4 = r2 * r2;
    double a0 = 5.0000000000000010509e-1 + r * 1.6666666666666667475e-1;
    double a1 = 4.1666666666623170383e-2 + r * 8.3333333333299881996e-3;
    double a2 = 1.3888888917690603539e-3 + r * 1.9841269863420350263e-4;
    double a3 = 2.4801520557017827897e-5 + r * 2.7557267891745530364e-6;
    double a4 = 2.7620438948634418648e-7 + r * 2.5100655036066590055e-8;
    double b0 = a0 + r2 * a1, b1 = a2 + r2 * a3;
    return (b0 + r4 * b1) + (r4 * r4) * a4;
}

/* Cody-Waite constants: ln 2 = LN2_HI + LN2_LO, with LN2_HI short enough
 * that n * LN2_HI is exact for every n a non-flushed result can have. */
#define FSM_LN2_HI_F32 0x1.62e4p-1f
#define FSM_LN2_LO_F32 0x1.7f7d1cp-20f
#define FSM_LN2_HI_F64 0x1.62e42fee00000p-1
#define FSM_LN2_LO_F64 0x1.a39ef35793c76p-33
/* Below these, exp(t) * 2^B unscales to +0 (exp(-104) < 2^-150, exp(-746) < 2^-1076). */
#define FSM_EXP_LOWEST_F32 -104.0f
#define FSM_EXP_LOWEST_F64 -746.0

/* Below these n, exp(t) * 2^B unscales to +0 whatever t rounded to n
 * (t < -150.5 ln 2 for float, -1076.5 ln 2 for double). */
#define FSM_EXP_LOWEST_N_F32 -150.5f
#define FSM_EXP_LOWEST_N_F64 -1076.5

/* The two halves of the exponential, so that a caller can form the reduced
 * argument r = t - n ln 2 its own way:
 *   fsm_exp_round_product_T(d, c, &n): n = round(d * c), for t = d * s and
 *     c ~= s / ln 2 (an error in c only makes |r| a little larger than
 *     ln2/2); returns k, whose bits hold 2^(n + B);
 *   fsm_exp_round_T(t, &n): the same for t itself;
 *   fsm_exp_join_T(k, r, flush): exp(r) * 2^(n + B), or +0 when flush. */
static inline float fsm_exp_round_product_f32(float d, float c, float *n) {
    float k = d * c + FSM_EXP_SHIFTER_F32;
    *n = k - FSM_EXP_SHIFTER_F32;
    return k;
}

static inline float fsm_exp_round_f32(float t, float *n) { return fsm_exp_round_product_f32(t, 0x1.715476p0f, n); }

static inline float fsm_exp_join_f32(float k, float r, int flush) {
    float r2 = r * r;
    float p = 1.0f + (r + r2 * fsm_expm1_tail_f32(r, r2));
    float e = p * fsm_f32_from_bits(fsm_f32_bits(k) << 23);
    return flush ? 0.0f : e; /* a select: the garbage of an out-of-range t is dropped */
}

static inline double fsm_exp_round_product_f64(double d, double c, double *n) {
    double k = d * c + FSM_EXP_SHIFTER_F64;
    *n = k - FSM_EXP_SHIFTER_F64;
    return k;
}

static inline double fsm_exp_round_f64(double t, double *n) { return fsm_exp_round_product_f64(t, 0x1.71547652b82fep0, n); }

static inline double fsm_exp_join_f64(double k, double r, int flush) {
    double r2 = r * r;
    double p = 1.0 + (r + r2 * fsm_expm1_tail_f64(r, r2));
    double e = p * fsm_f64_from_bits(fsm_f64_bits(k) << 52);
    return flush ? 0.0 : e;
}

/* exp(t + tl) * 2^B for t <= 0 and |tl| <= ulp(t) (t + tl = x - m exactly). */
static inline float fsm_scaled_exp_hilo_f32(float t, float tl) {
    float n, k = fsm_exp_round_f32(t, &n);
    float r = (t - n * FSM_LN2_HI_F32) - n * FSM_LN2_LO_F32 + tl;
    return fsm_exp_join_f32(k, r, t < FSM_EXP_LOWEST_F32); /* false for NaN: NaN propagates */
}

static inline float fsm_scaled_exp_minus_max_f32(float x, float m) {
    float bb, t = x - m;
    return fsm_scaled_exp_hilo_f32(t, FSM_TWO_SUM_ERR(x, -m, t, bb));
}

static inline double fsm_scaled_exp_hilo_f64(double t, double tl) {
    double n, k = fsm_exp_round_f64(t, &n);
    double r = (t - n * FSM_LN2_HI_F64) - n * FSM_LN2_LO_F64 + tl;
    return fsm_exp_join_f64(k, r, t < FSM_EXP_LOWEST_F64);
}

static inline double fsm_scaled_exp_minus_max_f64(double x, double m) {
    double bb, t = x - m;
    return fsm_scaled_exp_hilo_f64(t, FSM_TWO_SUM_ERR(x, -m, t, bb));
}

/* --- exp(x) * 2^(C - j): the no-subtraction form ---------------------------
 *
 * Softmax is invariant under a common factor, so a row with maximum m may
 * take exp(x) * 2^(C - j), j = round(m / ln 2), in place of exp(x - m) * 2^B:
 * x itself enters the reduction n = round(x / ln 2), r = x - n ln 2, so no
 * x - m is ever rounded and no TwoSum is needed.  j is folded into the
 * shifter (k's bits then hold 2^(n - j + C)) and into the flush bound, once
 * per row.  Float only: float64 rows keep the TwoSum form (measured on the
 * accuracy families of benchmarks/accuracy.py, this form raised float64's
 * worst softmax error from 3.0 to 3.5-3.7 eps and its worst row sum from
 * 2.1 to 3.0 eps, its terms near the maximum being no longer exact, for no
 * speed-up beyond the timing noise: float64's exp is mostly polynomial).
 * Contract:
 *   fsm_nosub_row_f32(m, &j, &shifter, &lowest_n) is 1 when |m| <=
 *   FSM_NOSUB_MAX_F32 (the exact range; 0 for NaN and +-inf, whose rows
 *   keep the TwoSum form) and then sets the row's constants;
 *   fsm_scaled_exp_nosub_f32(x, shifter, lowest_n) ~= exp(x) * 2^(C - j)
 *   for x <= m, which is exp(x - m) * 2^C * exp(m - j ln 2), the last
 *   factor in about [2^-0.5, 2^0.5] and the same for the whole row.
 *   - The reduction is exact while n * LN2_HI is: LN2_HI has 12 bits and
 *     every result that is not flushed has |n| < 2^12 when |m| <= 2048.
 *     With fewer bits in LN2_HI (a range of about 8192) the rounding of
 *     n * LN2_LO costs up to 1 eps where there is no FMA (scalar, SSE2).
 *   - C = B + 2: every result that is not flushed is a normal number with
 *     room to spare, so the table form below may add its exponent as an
 *     integer; the flush to +0 (n - j < -151.5) only drops results whose
 *     quotient by the row total is below half the smallest subnormal.
 *   - NaN x propagates; x = -inf gives +0.
 *   - Error: r is rounded twice (below 2^-25 together), so about 1 ulp like
 *     the TwoSum form's, but now also on the terms near the maximum.
 *     Softmax and log_softmax within 3 eps, row sums within 2.5 eps on
 *     every variant (docs/accuracy.md; tests/test_accuracy.py). */
#define FSM_NOSUB_SCALE_LOG2_F32 (FSM_EXP_SCALE_LOG2_F32 + 2)
#define FSM_NOSUB_MAX_F32 2048.0f
#define FSM_NOSUB_LN2_HI_F32 0x1.62ep-1f
#define FSM_NOSUB_LN2_LO_F32 0x1.0bfbe8p-15f
#define FSM_NOSUB_SHIFTER_F32 (0x1.8p23f + (127 + FSM_NOSUB_SCALE_LOG2_F32))
#define FSM_NOSUB_LOWEST_N_F32 -151.5f
/* 2^(B - C): a no-subtraction term in the TwoSum form's units */
#define FSM_NOSUB_TO_TWOSUM_F32 0x1p-2

/* Per-row constants: j, shifter = SHIFTER - j, lowest_n = j + LOWEST_N. */
static inline int fsm_nosub_row_f32(float m, float *j, float *shifter, float *lowest_n) {
    if (!(fabsf(m) <= FSM_NOSUB_MAX_F32)) return 0;
    *j = (m * 0x1.715476p0f + 0x1.8p23f) - 0x1.8p23f;
    *shifter = FSM_NOSUB_SHIFTER_F32 - *j;
    *lowest_n = *j + FSM_NOSUB_LOWEST_N_F32;
    return 1;
}

/* The row's constants are passed as scalars, so that loops over x vectorise. */
static inline float fsm_scaled_exp_nosub_f32(float x, float shifter, float lowest_n) {
    float k = x * 0x1.715476p0f + shifter;
    float n = k - shifter;
    float r = (x - n * FSM_NOSUB_LN2_HI_F32) - n * FSM_NOSUB_LN2_LO_F32;
    return fsm_exp_join_f32(k, r, n < lowest_n); /* false for NaN: NaN propagates */
}

#if defined(__AVX512F__)
#include <immintrin.h>

/* The no-subtraction form, 16 floats at a time, from a table (AVX-512 only:
 * the table sits in one register, read by vpermps).  Same contract as
 * fsm_scaled_exp_nosub_f32 with the row's j, and within 1 ulp of it:
 * n = round(x * 16 / ln 2), r = x - n ln2/16 (|r| <= ln2/32), and
 * exp(x) 2^(C - j) = 2^(n/16) exp(r) 2^(C - j), where 2^(n mod 16 / 16)
 * comes from the table (each entry rounded, its rounding error added back
 * to exp(r) - 1 from a second table: without it the variants disagreed by
 * 5 ulps).  n + 16 (bias + C - j) is held in k's low mantissa bits: its
 * low 4 bits are the table index, the bits above the biased exponent E of
 * 2^(floor(n/16) + C - j); k's bits shifted left by 19 put both in place,
 * and adding them to an entry's bits with i << 19 and the bias taken out
 * multiplies the entry by 2^(E - bias) with an integer addition, exactly
 * for every result that is not flushed (C: all are normal).  exp(r) is
 * 1 + r + c2 r^2 + c3 r^3, a minimax fit within 0.03 ulp on |r| <= ln2/32.
 * r takes two fused multiply-adds: x - n LN2_16_HI is exact (LN2_16_HI has
 * 21 bits, the result is below 2^-4 and a multiple of 2^-28), so the
 * reduction keeps x exact over the whole range |m| <= FSM_NOSUB_MAX_F32. */
#define FSM_NOSUB_TABLE_LN2_16_HI 0x1.62e43p-5f
#define FSM_NOSUB_TABLE_LN2_16_LO -0x1.05c61p-33f

/* The per-row constants of the table form, from those of the scalar one. */
static inline __m512 fsm_nosub_table_shifter(float j) {
    return _mm512_set1_ps(0x1.8p23f + 16.0f * (127 + FSM_NOSUB_SCALE_LOG2_F32) - 16.0f * j);
}
static inline __m512 fsm_nosub_table_lowest_n(float lowest_n) { return _mm512_set1_ps(16.0f * lowest_n); }

/* The table form's second half, from k and n = k - shifter of the row's
 * shifter and the reduced argument r (|r| <= ln2/32, within a rounding or
 * two): exp(r) 2^(n/16 + C - j), or +0 where n < lowest_n or the lane is
 * not wanted.  Scaled groups reduce their own way (family_rows.inc.c). */
static inline __m512 fsm_nosub_table_join_f32x16(__m512 k, __m512 n, __m512 r, __m512 lowest_n, __mmask16 wanted) {
    const __m512 table = _mm512_setr_ps(0x1p0f, 0x1.0b5586p0f, 0x1.172b84p0f, 0x1.2387a6p0f, 0x1.306fep0f,
                                        0x1.3dea64p0f, 0x1.4bfdaep0f, 0x1.5ab07ep0f, 0x1.6a09e6p0f, 0x1.7a1148p0f,
                                        0x1.8ace54p0f, 0x1.9c4918p0f, 0x1.ae89fap0f, 0x1.c199bep0f, 0x1.d5818ep0f,
                                        0x1.ea4afap0f);
    /* (2^(i/16) - table[i]) / table[i]: the entries' rounding, undone */
    const __m512 table_error = _mm512_setr_ps(0.0f, 0x1.8d96d4p-25f, -0x1.9c0c22p-27f, 0x1.964904p-25f,
                                              0x1.125002p-25f, 0x1.370be4p-25f, -0x1.0a3550p-25f, -0x1.00d8acp-27f,
                                              0x1.26055cp-26f, -0x1.05cb44p-25f, 0x1.67a1cap-28f, 0x1.a3b5e4p-28f,
                                              -0x1.f9c304p-27f, -0x1.6961b4p-28f, -0x1.a5217cp-28f, 0x1.61428ep-28f);
    /* i << 19 (where k's shifted bits put the index) and the bias */
    const __m512i index_and_bias = _mm512_setr_epi32(
        (127 << 23) + (0 << 19), (127 << 23) + (1 << 19), (127 << 23) + (2 << 19), (127 << 23) + (3 << 19),
        (127 << 23) + (4 << 19), (127 << 23) + (5 << 19), (127 << 23) + (6 << 19), (127 << 23) + (7 << 19),
        (127 << 23) + (8 << 19), (127 << 23) + (9 << 19), (127 << 23) + (10 << 19), (127 << 23) + (11 << 19),
        (127 << 23) + (12 << 19), (127 << 23) + (13 << 19), (127 << 23) + (14 << 19), (127 << 23) + (15 << 19));
    const __m512i table_less_index = _mm512_sub_epi32(_mm512_castps_si512(table), index_and_bias);
    __m512i bits = _mm512_castps_si512(k);
    __m512 scaled_entry = _mm512_castsi512_ps(
        _mm512_add_epi32(_mm512_permutexvar_epi32(bits, table_less_index), _mm512_slli_epi32(bits, 19)));
    __m512 tail = _mm512_fmadd_ps(r, _mm512_set1_ps(0x1.55565p-3f), _mm512_set1_ps(0x1.000238p-1f));
    __m512 expm1_r = _mm512_fmadd_ps(_mm512_mul_ps(r, r), tail, r);
    __m512 expm1_r_fixed = _mm512_add_ps(expm1_r, _mm512_permutexvar_ps(bits, table_error));
    /* NaN compares false: NaN propagates; -inf, the underflows and the
     * lanes not wanted give +0 */
    __mmask16 kept = _mm512_mask_cmp_ps_mask(wanted, n, lowest_n, _CMP_NLT_UQ);
    return _mm512_maskz_fmadd_ps(kept, scaled_entry, expm1_r_fixed, scaled_entry);
}

static inline __m512 fsm_scaled_exp_nosub_f32x16(__m512 x, __m512 shifter, __m512 lowest_n, __mmask16 wanted) {
    __m512 k = _mm512_fmadd_ps(x, _mm512_set1_ps(0x1.715476p4f), shifter);
    __m512 n = _mm512_sub_ps(k, shifter);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(FSM_NOSUB_TABLE_LN2_16_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(FSM_NOSUB_TABLE_LN2_16_LO), r);
    return fsm_nosub_table_join_f32x16(k, n, r, lowest_n, wanted);
}
#endif

/* 2^(B - C) exp(j ln 2 - m), in double: the factor that turns a sum of
 * no-subtraction terms into the sum of exp(x - m) * 2^B (log_softmax's
 * log of the total needs it: there the common factor does not cancel).
 * j ln 2 - m is formed exactly but for one rounding (j * LN2_HI_F64 is
 * exact and nearly cancels m), so the factor is within about 1 ulp. */
static inline double fsm_nosub_to_max_scale(double m, double j) {
    double d = (j * FSM_LN2_HI_F64 - m) + j * FSM_LN2_LO_F64;
    return fsm_scaled_exp_hilo_f64(d, 0.0) * (FSM_NOSUB_TO_TWOSUM_F32 * FSM_EXP_UNSCALE_F64);
}

/* a * b + c: one fused multiply-add where the target has one, else two
 * operations.  Explicit, so that every copy of fsm_log1p_f64 (the scalar
 * one in a row kernel, the vectorised one across lanes) rounds alike: the
 * compiler decides where to fuse a * b + c copy by copy (on aarch64 the
 * two copies differed). */
#if defined(__FMA__) || defined(__aarch64__)
#define FSM_MADD(a, b, c) fma(a, b, c)
#else
#define FSM_MADD(a, b, c) ((a) * (b) + (c))
#endif

/* log1p(u) for u >= 0 in double, straight-line so that it vectorises (the
 * per-row log of log_softmax runs once per SIMD lane in the column kernels).
 * w = 1 + u rounded, log1p(u) = log(w) + (u - (w - 1)) / w; log(w) from
 * w = 2^k m, m in [sqrt(1/2), sqrt(2)), log(m) = 2 atanh(s) with
 * s = (m - 1) / (m + 1), |s| <= 0.1716, by its Taylor series to s^19
 * (truncation below 2^-56).  Error about 1 ulp; tiny u are exact to that
 * too, thanks to the correction term.  NaN gives NaN, +inf gives +inf;
 * u < 2^52 (the argument here is at most the row length).  Always inlined:
 * called out of line, the loops that take it once per lane stay scalar. */
static FSM_ALWAYS_INLINE double fsm_log1p_f64(double u) {
    double w = 1.0 + u;
    double correction = (u - (w - 1.0)) / w;
    uint64_t bits = fsm_f64_bits(w);
    double k = fsm_f64_from_bits((bits >> 52) | 0x4330000000000000ull) - (0x1p52 + 1023.0);
    double m = fsm_f64_from_bits((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
    int big = m > 0x1.6a09e667f3bcdp0; /* sqrt(2) */
    m = big ? 0.5 * m : m;
    k = big ? k + 1.0 : k;
    /* log(m) = log(1 + g) = g - g^2/2 + s (g^2/2 + R), s = g / (2 + g),
     * R = 2s^2/3 + 2s^4/5 + ... (fdlibm's arrangement: the leading term g
     * is exact, so the rounding errors fall on the small terms only). */
    double g = m - 1.0, half_g2 = 0.5 * g * g;
    double sg = g / (2.0 + g), z = sg * sg;
    double z2 = z * z, z4 = z2 * z2;
    double p0 = FSM_MADD(z, 2.0 / 5, 2.0 / 3), p1 = FSM_MADD(z, 2.0 / 9, 2.0 / 7);
    double p2 = FSM_MADD(z, 2.0 / 13, 2.0 / 11), p3 = FSM_MADD(z, 2.0 / 17, 2.0 / 15);
    double R_over_z = FSM_MADD(z4 * z4, 2.0 / 19, FSM_MADD(z4, FSM_MADD(z2, p3, p2), FSM_MADD(z2, p1, p0)));
    double log_m = g - FSM_MADD(-sg, FSM_MADD(z, R_over_z, half_g2), half_g2);
    double r = FSM_MADD(k, 0x1.62e42fee00000p-1, log_m + FSM_MADD(k, 0x1.a39ef35793c76p-33, correction));
    return u == u && u < INFINITY ? r : u;
}

/* From the total of a row's scaled exps (sum of exp(x - m) * 2^B): the
 * factor 1 / total that turns them into probabilities (the 2^B cancels; the
 * factor is a normal number, so a subnormal probability is rounded once,
 * by the final product), and for log_softmax log(total unscaled) from the
 * total of the terms with x != m (rest) and the count of the others (ties),
 * as log1p(rest + (ties - 1)) so that it keeps its accuracy when the total
 * is close to 1.  NaN totals (bad rows) give NaN; log_total is NaN when m is
 * not finite (a +inf would otherwise count as a tie and hide the NaN of
 * inf - inf). */
static inline float fsm_inverse_total_f32(double total) { return (float)(1.0 / total); }
static inline double fsm_inverse_total_f64(double total) { return 1.0 / total; }
static FSM_ALWAYS_INLINE float fsm_log_total_f32(double rest, double ties, float m) {
    float r = (float)fsm_log1p_f64(rest * FSM_EXP_UNSCALE_F32 + (ties - 1.0));
    return isfinite(m) ? r : NAN;
}
static FSM_ALWAYS_INLINE double fsm_log_total_f64(double rest, double ties, double m) {
    double r = fsm_log1p_f64(rest * FSM_EXP_UNSCALE_F64 + (ties - 1.0));
    return isfinite(m) ? r : NAN;
}

#endif
