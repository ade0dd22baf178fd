/*
 * Non-temporal variant of log_softmax's write pass, instantiated per dtype
 * by variant.c (same macros as softmax_rows.inc.c, plus STREAM_VECTOR).
 * Used when the output is larger than the caches: the stores bypass them,
 * so the output is written once to memory without being read first.  The
 * caller issues a store fence (stream_fence) before the output is read
 * elsewhere.  The aligned body is computed one vector at a time into a
 * temporary that the compiler keeps in a register, then stored; head and
 * tail are plain.
 */
#define FSM_STREAM_LANES (FSM_STREAM_BYTES / sizeof(T))

static inline T K(sub_shifted)(T x, T m, T c);
static void K(vsub_shifted)(const T *x, T *y, size_t n, T m, T c);

static void K(vsub_shifted_stream)(const T *x, T *y, size_t n, T m, T c) {
    size_t i = fsm_stream_head(y, n, sizeof(T));
    K(vsub_shifted)(x, y, i, m, c);
    for (; i + FSM_STREAM_LANES <= n; i += FSM_STREAM_LANES) {
        _Alignas(FSM_STREAM_BYTES) T v[FSM_STREAM_LANES];
#pragma omp simd
        for (size_t j = 0; j < FSM_STREAM_LANES; ++j) v[j] = K(sub_shifted)(x[i + j], m, c);
        STREAM_VECTOR(y + i, v);
    }
    K(vsub_shifted)(x + i, y + i, n - i, m, c);
}

#undef FSM_STREAM_LANES
