/*
 * Short-row kernels, instantiated per dtype by variant.c (same macros as
 * softmax_rows.inc.c, plus TILE): up to FSM_SHORT_ROW_LANES contiguous
 * rows are transposed into a buffer (row g becomes lane g), run there by
 * the column kernel's passes, and transposed back; the last pass (the
 * scaling, or the subtraction of log_softmax) is done in registers on the
 * way back instead of over the buffer.  Contract in kernels.h.
 *
 * The transposes move TILE x TILE tiles through registers with vector
 * shuffles; a row length that is not a multiple of TILE ends with a tile
 * overlapping the previous one (its elements are copied twice, to the same
 * place).  Plain element copies handle rows shorter than TILE and the rows
 * beyond the last full group of TILE.
 */
#define SHORT_LANES FSM_SHORT_ROW_LANES

#ifndef FSM_FINISH_QUOTIENT
#define FSM_FINISH_QUOTIENT 0
#define FSM_FINISH_SUB 1
#define FSM_FINISH_COPY 2
#endif

#if TILE > 1
/* One TILE-element vector; the `_u` type reads and writes the T arrays
 * themselves: at any T boundary, and allowed to alias T (as the compilers'
 * own unaligned intrinsic types are). */
typedef T K(tile_vec) __attribute__((vector_size(TILE * sizeof(T))));
typedef T K(tile_vec_u) __attribute__((vector_size(TILE * sizeof(T)), aligned(sizeof(T)), may_alias));

/* v[i][j] <-> v[j][i]: log2(TILE) rounds of interleaving. */
static FSM_ALWAYS_INLINE void K(transpose_tile)(K(tile_vec) *v) {
#if TILE == 8
    K(tile_vec) a[8], b[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 2) {
        a[i] = __builtin_shufflevector(v[i], v[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        a[i + 1] = __builtin_shufflevector(v[i], v[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i += 4) {
#pragma GCC unroll 8
        for (int k = 0; k < 2; ++k) {
            b[i + 2 * k] = __builtin_shufflevector(a[i + k], a[i + k + 2], 0, 1, 8, 9, 4, 5, 12, 13);
            b[i + 2 * k + 1] = __builtin_shufflevector(a[i + k], a[i + k + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
    }
#pragma GCC unroll 8
    for (int k = 0; k < 4; ++k) {
        v[k] = __builtin_shufflevector(b[k], b[k + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        v[k + 4] = __builtin_shufflevector(b[k], b[k + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
#elif TILE == 4
    K(tile_vec) a0 = __builtin_shufflevector(v[0], v[1], 0, 4, 2, 6);
    K(tile_vec) a1 = __builtin_shufflevector(v[0], v[1], 1, 5, 3, 7);
    K(tile_vec) a2 = __builtin_shufflevector(v[2], v[3], 0, 4, 2, 6);
    K(tile_vec) a3 = __builtin_shufflevector(v[2], v[3], 1, 5, 3, 7);
    v[0] = __builtin_shufflevector(a0, a2, 0, 1, 4, 5);
    v[1] = __builtin_shufflevector(a1, a3, 0, 1, 4, 5);
    v[2] = __builtin_shufflevector(a0, a2, 2, 3, 6, 7);
    v[3] = __builtin_shufflevector(a1, a3, 2, 3, 6, 7);
#elif TILE == 2
    K(tile_vec) a0 = __builtin_shufflevector(v[0], v[1], 0, 2);
    v[1] = __builtin_shufflevector(v[0], v[1], 1, 3);
    v[0] = a0;
#else
#error "TILE must be 1, 2, 4 or 8"
#endif
}

/* Columns c .. c + TILE of rows x[0 .. TILE) into lanes 0 .. TILE of buf. */
static FSM_ALWAYS_INLINE void K(tile_to_lanes)(const T *const *x, size_t c, T *buf) {
    K(tile_vec) v[TILE];
#pragma GCC unroll 8
    for (int i = 0; i < TILE; ++i) v[i] = *(const K(tile_vec_u) *)(x[i] + c);
    K(transpose_tile)(v);
#pragma GCC unroll 8
    for (int j = 0; j < TILE; ++j) *(K(tile_vec_u) *)(buf + (c + (size_t)j) * SHORT_LANES) = v[j];
}

/* The last pass of the column kernel on one vector of lanes, in the same
 * operations as K(quotient) (FSM_FINISH_QUOTIENT, softmax: a = total, b =
 * 1 / total) and K(sub_shifted) (FSM_FINISH_SUB, log_softmax: a = max, b =
 * log(sum)), so that the results are bit-identical to that pass; or v
 * itself (FSM_FINISH_COPY: a plain transpose back). */
static FSM_ALWAYS_INLINE K(tile_vec) K(finish_vec)(K(tile_vec) v, K(tile_vec) a, K(tile_vec) b, int finish) {
    if (finish == FSM_FINISH_COPY) return v;
    if (finish == FSM_FINISH_SUB) return (v - a) - b;
    K(tile_vec) q = v * b;
#if FSM_HAS_FMA
    if (sizeof(T) == sizeof(double)) return q + (v - q * a) * b;
#endif
    return q;
}

/* Lanes 0 .. TILE of buf, finished (finish_vec with the lanes' a and b),
 * into columns c .. c + TILE of rows y[0 .. TILE). */
static FSM_ALWAYS_INLINE void K(tile_to_rows)(const T *buf, size_t c, T *const *y, const T *a, const T *b,
                                              int finish) {
    K(tile_vec) v[TILE];
    K(tile_vec) av = {0}, bv = {0};
    if (finish != FSM_FINISH_COPY) av = *(const K(tile_vec_u) *)a, bv = *(const K(tile_vec_u) *)b;
#pragma GCC unroll 8
    for (int j = 0; j < TILE; ++j)
        v[j] = K(finish_vec)(*(const K(tile_vec_u) *)(buf + (c + (size_t)j) * SHORT_LANES), av, bv, finish);
    K(transpose_tile)(v);
#pragma GCC unroll 8
    for (int i = 0; i < TILE; ++i) *(K(tile_vec_u) *)(y[i] + c) = v[i];
}
#endif

/* Rows that fill whole groups of TILE rows, when a row holds a tile (0
 * without shuffles): the rest goes element by element. */
static inline size_t K(tiled_rows)(size_t n, size_t count) {
    return TILE > 1 && n >= TILE ? count - count % TILE : 0;
}

static void K(rows_to_lanes)(const T *const *x, size_t n, size_t count, T *buf) {
    size_t tiled = K(tiled_rows)(n, count);
#if TILE > 1
    for (size_t g = 0; g < tiled; g += TILE) {
        size_t c = 0;
        for (; c + TILE <= n; c += TILE) K(tile_to_lanes)(x + g, c, buf + g);
        if (c < n) K(tile_to_lanes)(x + g, n - TILE, buf + g);
    }
#endif
    for (size_t g = tiled; g < count; ++g)
        for (size_t j = 0; j < n; ++j) buf[j * SHORT_LANES + g] = x[g][j];
}

/* Finishes the lanes in buf into the rows: y[g][j] = the column kernel's
 * last pass on buf[j * SHORT_LANES + g], from the lane's a[g] and b[g]
 * (see finish_vec). */
static FSM_ALWAYS_INLINE void K(lanes_to_rows)(const T *buf, size_t n, size_t count, T *const *y, const T *a,
                                               const T *b, int finish) {
    size_t tiled = K(tiled_rows)(n, count);
#if TILE > 1
    for (size_t g = 0; g < tiled; g += TILE) {
        size_t c = 0;
        const T *ag = finish == FSM_FINISH_COPY ? NULL : a + g, *bg = finish == FSM_FINISH_COPY ? NULL : b + g;
        for (; c + TILE <= n; c += TILE) K(tile_to_rows)(buf + g, c, y + g, ag, bg, finish);
        if (c < n) K(tile_to_rows)(buf + g, n - TILE, y + g, ag, bg, finish);
    }
#endif
    for (size_t g = tiled; g < count; ++g) {
        for (size_t j = 0; j < n; ++j) {
            T v = buf[j * SHORT_LANES + g];
            y[g][j] = finish == FSM_FINISH_COPY ? v
                      : finish == FSM_FINISH_SUB ? K(sub_shifted)(v, a[g], b[g])
                                                 : K(quotient)(v, a[g], b[g]);
        }
    }
}

/* The lanes in buf transposed back into the rows y[0 .. count), as they are. */
static void K(lanes_to_rows_copy)(const T *buf, size_t n, size_t count, T *const *y) {
    K(lanes_to_rows)(buf, n, count, y, NULL, NULL, FSM_FINISH_COPY);
}

/* The column kernels' passes on the transposed rows, the last one fused
 * with the transpose back (it saves a pass over buf). */
static void K(softmax_short_rows)(const T *const *x, T *const *y, size_t n, size_t count, T *buf,
                                  double *work) {
    T *m = (T *)work, *block = (T *)(work + count); /* the column kernel's layout */
    double *sum = work + 2 * count, *comp = work + 3 * count;
    K(rows_to_lanes)(x, n, count, buf);
    K(cols_max)(buf, SHORT_LANES, n, count, m, 0);
    K(cols_exp_store_sum)(buf, SHORT_LANES, buf, SHORT_LANES, n, count, m, block, sum, comp, 0);
    T *inv = m, *total = block; /* m and block are no longer needed */
    for (size_t g = 0; g < count; ++g) inv[g] = INVERSE_TOTAL(sum[g]), total[g] = (T)sum[g];
    K(lanes_to_rows)(buf, n, count, y, total, inv, FSM_FINISH_QUOTIENT);
}

static void K(log_softmax_short_rows)(const T *const *x, T *const *y, size_t n, size_t count, T *buf,
                                      double *work) {
    T *m = (T *)work, *lse = (T *)(work + count); /* before what cols_log_sum_exp_minus_max uses */
    K(rows_to_lanes)(x, n, count, buf);
    K(cols_max)(buf, SHORT_LANES, n, count, m, 0);
    K(cols_log_sum_exp_minus_max)(buf, SHORT_LANES, n, count, m, lse, work, 0);
    K(lanes_to_rows)(buf, n, count, y, m, lse, FSM_FINISH_SUB);
}

#undef SHORT_LANES
