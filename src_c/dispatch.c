/*
 * Picks the kernel variant: what was compiled in, what the CPU executes and
 * what the OS saves on a context switch (AVX state is usable only when the
 * OS has enabled it in XCR0, which CPUID alone does not say).
 */
#include "fastsoftmax.h"

#if defined(__x86_64__) || defined(_M_X64)
#define FSM_X86_64 1
#include <cpuid.h>
#endif

#ifdef FSM_X86_64
static unsigned long long fsm_xgetbv0(void) {
    unsigned int lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int fsm_cpu_has_avx2_fma_f16c(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int fma = 1u << 12, osxsave = 1u << 27, avx = 1u << 28, f16c = 1u << 29;
    if ((ecx & (fma | osxsave | avx | f16c)) != (fma | osxsave | avx | f16c)) return 0;
    if ((fsm_xgetbv0() & 0x6) != 0x6) return 0; /* XMM and YMM state enabled by the OS */
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx >> 5) & 1u; /* AVX2 */
}

static int fsm_cpu_has_avx512(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!fsm_cpu_has_avx2_fma_f16c() || !__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int f = 1u << 16, dq = 1u << 17, bw = 1u << 30, vl = 1u << 31;
    if ((ebx & (f | dq | bw | vl)) != (f | dq | bw | vl)) return 0;
    /* XMM, YMM, opmask and both halves of the ZMM state enabled by the OS */
    return (fsm_xgetbv0() & 0xe6) == 0xe6;
}
#endif

static const fsm_kernel_table *fsm_variant_table(int v) {
    switch (v) {
    case FSM_VARIANT_SCALAR: return &fsm_kernels_scalar;
    case FSM_VARIANT_BASELINE: return &fsm_kernels_baseline;
#ifdef FSM_X86_64
    case FSM_VARIANT_AVX2: return &fsm_kernels_avx2;
    case FSM_VARIANT_AVX512: return &fsm_kernels_avx512;
#endif
    default: return NULL;
    }
}

const char *fsm_variant_name(int v) {
    const fsm_kernel_table *t = fsm_variant_table(v);
    return t ? t->name : NULL;
}

int fsm_variant_supported(int v) {
#ifdef FSM_X86_64
    if (v == FSM_VARIANT_AVX2) return fsm_cpu_has_avx2_fma_f16c();
    if (v == FSM_VARIANT_AVX512) return fsm_cpu_has_avx512();
#endif
    return fsm_variant_table(v) != NULL;
}

int fsm_best_variant(void) {
    int v = FSM_NUM_VARIANTS - 1;
    while (v > FSM_VARIANT_SCALAR && !fsm_variant_supported(v)) --v;
    return v;
}

static int fsm_active = -1;

int fsm_set_variant(int v) {
    if (v < 0 || v >= FSM_NUM_VARIANTS || !fsm_variant_supported(v)) return -1;
    fsm_active = v;
    return 0;
}

int fsm_active_variant(void) {
    if (fsm_active < 0) fsm_active = fsm_best_variant();
    return fsm_active;
}

const fsm_kernel_table *fsm_active_kernels(void) { return fsm_variant_table(fsm_active_variant()); }
