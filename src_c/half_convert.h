/*
 * Scalar conversions between float32 and the half-precision types
 * (IEEE float16; bfloat16, the upper half of a float32), on their bits.
 * Widening is exact; narrowing rounds to nearest, ties to even, overflows to
 * inf and keeps a NaN a NaN (quiet, with the top bits of its payload), as
 * the F16C and AVX-512 instructions do.  The vector loops of each variant
 * (kernels/convert.inc.c) use these for their tails, the driver for strided
 * operands.
 */
#ifndef FSM_HALF_CONVERT_H
#define FSM_HALF_CONVERT_H

#include <stdint.h>

#include "exp_minus_max.h" /* fsm_f32_bits, fsm_f32_from_bits */

static inline float fsm_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return fsm_f32_from_bits(sign | 0x7f800000u | mantissa << 13); /* inf, NaN */
    if (exponent != 0) return fsm_f32_from_bits(sign | (exponent + 112) << 23 | mantissa << 13);
    /* zero or subnormal: mantissa * 2^-24, exact in float32 */
    float magnitude = (float)mantissa * 0x1p-24f;
    return sign ? -magnitude : magnitude;
}

static inline uint16_t fsm_f32_to_f16(float f) {
    uint32_t u = fsm_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | (a >> 13 & 0x3ffu)); /* NaN, made quiet */
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* from 65520, halfway past 65504: inf */
    if (a < 0x38800000u) {
        /* below 2^-14, float16's subnormals: adding 0.5 rounds |f| to a
         * multiple of 2^-24 (0.5's ulp) in the current rounding mode, to
         * nearest even; the multiple is in the sum's low bits */
        return (uint16_t)(sign | (fsm_f32_bits(fsm_f32_from_bits(a) + 0.5f) - 0x3f000000u));
    }
    /* rebias the exponent (127 -> 15) and round the 13 dropped bits to even */
    a += 0xc8000fffu + (a >> 13 & 1u);
    return (uint16_t)(sign | a >> 13);
}

static inline float fsm_bf16_to_f32(uint16_t h) { return fsm_f32_from_bits((uint32_t)h << 16); }

static inline uint16_t fsm_f32_to_bf16(float f) {
    uint32_t u = fsm_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)(u >> 16 | 0x40u); /* NaN, made quiet */
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1u)) >> 16);
}

#endif
