/*
 * Masked short-row kernels (where= on softmax and log_softmax, contract:
 * kernels.h), instantiated per dtype by variant.c after short_rows.inc.c,
 * whose passes they run.  The rows are transposed into lanes with their
 * masked-out entries replaced by -inf on the way, in registers, instead of
 * being staged as a masked copy of the rows first; the rest is the plain
 * short-row kernel's, so the result is bit-identical to it on the staged
 * rows.  A row that comes out NaN then gets its masked-out entries back as
 * 0 (log_softmax: -inf), as the driver does for the other plans; whether it
 * did is read from the lanes, not from y just written.
 */
#define SHORT_LANES FSM_SHORT_ROW_LANES

#if TILE > 1
typedef __typeof__((K(tile_vec)){0} == (K(tile_vec)){0}) K(tile_bits);

/* Lanes 0 .. TILE of a tile row to keep: all ones where bytes[k] != 0.  The
 * bytes are widened by the ISA's own instructions: GCC took a vector of
 * TILE bytes apart byte by byte, which made this kernel slower than staging
 * the rows (float32 (1000000, 10): 1.92x plain softmax against 1.38x). */
static FSM_ALWAYS_INLINE K(tile_bits) K(kept_lanes)(const uint8_t *bytes) {
#if defined(__AVX2__)
    __m256i wide;
    if (TILE == 8) {
        long long b;
        memcpy(&b, bytes, 8);
        wide = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(b));
    } else {
        int b;
        memcpy(&b, bytes, 4);
        wide = _mm256_cvtepu8_epi64(_mm_cvtsi32_si128(b));
    }
    return (K(tile_bits))wide != 0;
#elif defined(__SSE2__)
    const __m128i zero = _mm_setzero_si128();
    int b = 0;
    memcpy(&b, bytes, TILE);
    __m128i wide = _mm_unpacklo_epi16(_mm_unpacklo_epi8(_mm_cvtsi32_si128(b), zero), zero);
    if (TILE == 2) wide = _mm_unpacklo_epi32(wide, zero);
    return (K(tile_bits))wide != 0;
#else
    K(tile_bits) kept;
    for (int k = 0; k < TILE; ++k) kept[k] = bytes[k] != 0 ? -1 : 0;
    return kept;
#endif
}

/* Columns c .. c + TILE of rows x[0 .. TILE) into lanes 0 .. TILE of buf,
 * -inf where the row's mask byte is 0. */
static FSM_ALWAYS_INLINE void K(masked_tile_to_lanes)(const T *const *x, const uint8_t *const *mask, size_t c,
                                                      T *buf) {
    const K(tile_bits) minus_inf = (K(tile_bits))((K(tile_vec)){0} - (T)INFINITY);
    K(tile_vec) v[TILE];
#pragma GCC unroll 8
    for (int i = 0; i < TILE; ++i) {
        K(tile_bits) kept = K(kept_lanes)(mask[i] + c);
        K(tile_bits) xv = (K(tile_bits))*(const K(tile_vec_u) *)(x[i] + c);
        v[i] = (K(tile_vec))((xv & kept) | (minus_inf & ~kept));
    }
    K(transpose_tile)(v);
#pragma GCC unroll 8
    for (int j = 0; j < TILE; ++j) *(K(tile_vec_u) *)(buf + (c + (size_t)j) * SHORT_LANES) = v[j];
}
#endif

/* rows_to_lanes of the rows with their masked-out entries -inf. */
static void K(masked_rows_to_lanes)(const T *const *x, const uint8_t *const *mask, size_t n, size_t count, T *buf) {
    size_t tiled = K(tiled_rows)(n, count);
#if TILE > 1
    for (size_t g = 0; g < tiled; g += TILE) {
        size_t c = 0;
        for (; c + TILE <= n; c += TILE) K(masked_tile_to_lanes)(x + g, mask + g, c, buf + g);
        if (c < n) K(masked_tile_to_lanes)(x + g, mask + g, n - TILE, buf + g);
    }
#endif
    for (size_t g = tiled; g < count; ++g)
        for (size_t j = 0; j < n; ++j) buf[j * SHORT_LANES + g] = mask[g][j] ? x[g][j] : -(T)INFINITY;
}

/* The rows whose lane came out NaN (its first entry, finished from buf as
 * the transpose back finishes it, is NaN) get `dropped` in their
 * masked-out entries. */
static void K(drop_masked_lanes_if_nan)(const T *buf, size_t n, size_t count, const T *a, const T *b, int finish,
                                        const uint8_t *const *mask, T *const *y, T dropped) {
    for (size_t g = 0; g < count; ++g) {
        T first = finish == FSM_FINISH_SUB ? K(sub_shifted)(buf[g], a[g], b[g]) : K(quotient)(buf[g], a[g], b[g]);
        if (first == first) continue;
        for (size_t j = 0; j < n; ++j)
            if (!mask[g][j]) y[g][j] = dropped;
    }
}

static void K(softmax_masked_short_rows)(const T *const *x, const uint8_t *const *mask, T *const *y, size_t n,
                                         size_t count, T *buf, double *work) {
    T *m = (T *)work, *block = (T *)(work + count); /* the column kernel's layout */
    double *sum = work + 2 * count, *comp = work + 3 * count;
    K(masked_rows_to_lanes)(x, mask, n, count, buf);
    K(cols_max)(buf, SHORT_LANES, n, count, m, 0);
    K(cols_exp_store_sum)(buf, SHORT_LANES, buf, SHORT_LANES, n, count, m, block, sum, comp, 0);
    T *inv = m, *total = block;
    for (size_t g = 0; g < count; ++g) inv[g] = INVERSE_TOTAL(sum[g]), total[g] = (T)sum[g];
    K(lanes_to_rows)(buf, n, count, y, total, inv, FSM_FINISH_QUOTIENT);
    K(drop_masked_lanes_if_nan)(buf, n, count, total, inv, FSM_FINISH_QUOTIENT, mask, y, 0);
}

static void K(log_softmax_masked_short_rows)(const T *const *x, const uint8_t *const *mask, T *const *y, size_t n,
                                             size_t count, T *buf, double *work) {
    T *m = (T *)work, *lse = (T *)(work + count);
    K(masked_rows_to_lanes)(x, mask, n, count, buf);
    K(cols_max)(buf, SHORT_LANES, n, count, m, 0);
    K(cols_log_sum_exp_minus_max)(buf, SHORT_LANES, n, count, m, lse, work, 0);
    K(lanes_to_rows)(buf, n, count, y, m, lse, FSM_FINISH_SUB);
    K(drop_masked_lanes_if_nan)(buf, n, count, m, lse, FSM_FINISH_SUB, mask, y, -(T)INFINITY);
}

#undef SHORT_LANES
