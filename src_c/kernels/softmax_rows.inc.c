/*
 * Row kernels and the per-row primitives they are made of, instantiated once
 * per dtype by variant.c with
 *   T                   float or double
 *   K(name)             the dtype- and variant-suffixed name
 *   SCALED_EXP          fsm_scaled_exp_minus_max_f32 / _f64 (rows whose
 *                       maximum is beyond the no-subtraction form's range)
 *   ROW_EXP_NOSUB       1 where rows may take the no-subtraction form
 *                       (float), 0 where they keep the TwoSum form (double)
 *   INVERSE_TOTAL, LOG_TOTAL   fsm_inverse_total_f32 / fsm_log_total_f32 (or _f64)
 *   STREAM_VECTOR       non-temporal store of one vector (variant.c)
 * Contracts: kernels.h.  A softmax row makes three passes over a row the
 * caller has sized to stay in cache: max, exp (+ store) + sum, then scale.
 * The exp pass takes the no-subtraction form exp(x) * 2^(C - j) where the
 * dtype and the row maximum allow it (exp_minus_max.h), else exp(x - m) * 2^B.
 * Sums are taken in blocks of FSM_SUM_BLOCK elements in T (short per-lane
 * chains) and the block sums are added in double with Neumaier's
 * compensation, so the error of a row sum does not grow with the row length.
 */

/* The elements of p before the next cache-line boundary, where a pass over
 * n elements should start its vector loop; 0 for rows shorter than
 * FSM_ALIGN_MIN_BYTES, on which the scalar head would cost more than the
 * aligned loop saves. */
static inline size_t K(elements_to_line)(const T *p, size_t n) {
    if (n * sizeof(T) < FSM_ALIGN_MIN_BYTES) return 0;
    return (FSM_CACHE_LINE - (uintptr_t)p % FSM_CACHE_LINE) % FSM_CACHE_LINE / sizeof(T);
}

/* The largest of FSM_MAX_CHAINS running maxima (none NaN), folded in
 * halves: each step a loop of constant length, i.e. a few vector max ops
 * (a loop over all of them stayed scalar). */
static inline T K(fold_maxima)(T *acc) {
    _Static_assert(FSM_MAX_CHAINS == 32, "fold_maxima folds 32 maxima");
    for (size_t j = 0; j < 16; ++j) acc[j] = acc[j + 16] > acc[j] ? acc[j + 16] : acc[j];
    for (size_t j = 0; j < 8; ++j) acc[j] = acc[j + 8] > acc[j] ? acc[j + 8] : acc[j];
    for (size_t j = 0; j < 4; ++j) acc[j] = acc[j + 4] > acc[j] ? acc[j + 4] : acc[j];
    for (size_t j = 0; j < 2; ++j) acc[j] = acc[j + 2] > acc[j] ? acc[j + 2] : acc[j];
    return acc[1] > acc[0] ? acc[1] : acc[0];
}

/* FSM_MAX_CHAINS independent running maxima (several SIMD registers), so
 * the loop is not bound by the latency of one max instruction. */
static T K(rmax)(const T *x, size_t n) {
    T acc[FSM_MAX_CHAINS];
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = -(T)INFINITY;
    size_t head = K(elements_to_line)(x, n), i = head; /* vector loads from a line on */
    for (; i + FSM_MAX_CHAINS <= n; i += FSM_MAX_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
    }
    T m = K(fold_maxima)(acc);
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    for (i = 0; i < head; ++i) m = x[i] > m ? x[i] : m;
    return m;
}

/* Sum of FSM_SUM_CHAINS partial sums, pairwise. */
static inline T K(sum_chains)(T *acc) {
    FSM_FOLD_CHAINS(acc);
    return acc[0];
}

/* A row's exponential, the same for every element (and every chunk of a
 * split row): the no-subtraction form when the row maximum m is in its
 * exact range, else the TwoSum form.  Either is exp(x - m) * 2^B times a
 * factor common to the row, which softmax's quotients cancel. */
typedef struct {
    T m, j, shifter, lowest_n;
    int nosub;
} K(row_exp);

static inline K(row_exp) K(row_exp_for)(T m) {
    K(row_exp) e = {m, 0, 0, 0, 0};
#if ROW_EXP_NOSUB
    e.nosub = fsm_nosub_row_f32(m, &e.j, &e.shifter, &e.lowest_n);
#endif
    return e;
}

/* The row's exponential of x; `nosub` is a constant where this is inlined,
 * so that each form gets its own loop. */
static FSM_ALWAYS_INLINE T K(row_exp_at)(K(row_exp) e, T x, int nosub) {
#if ROW_EXP_NOSUB
    if (nosub) return fsm_scaled_exp_nosub_f32(x, e.shifter, e.lowest_n);
#endif
    (void)nosub;
    return SCALED_EXP(x, e.m);
}

/* One block of at most FSM_SUM_BLOCK elements: y[i] = the row's
 * exponential of x[i], returns their sum in T.  FSM_SUM_CHAINS independent
 * partial sums, so every variant, vectorised or not, adds the same short
 * chains in the same order; each step adds four terms to a chain as
 * (a + b) + (c + d).  In one long chain the maximum's term (2^B in the
 * TwoSum form) would meet every later small term of that chain
 * (rounding equal terms the same way: 7.4 eps on a row sum with 16 terms a
 * chain); this way it meets at most five.  Always inlined: with a second
 * caller of raddstore_scaled_exp (softmax_rows) GCC stopped inlining it and
 * the float64 row kernel lost a few percent. */
static FSM_ALWAYS_INLINE T K(block_store_exp)(const T *x, T *y, size_t n, K(row_exp) e, int nosub) {
    const size_t step = 4 * FSM_SUM_CHAINS;
    T acc[FSM_SUM_CHAINS] = {0};
    size_t i = 0;
    for (; i + step <= n; i += step) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            const T *xj = x + i + j;
            T *yj = y + i + j;
            T e0 = K(row_exp_at)(e, xj[0], nosub), e1 = K(row_exp_at)(e, xj[FSM_SUM_CHAINS], nosub);
            T e2 = K(row_exp_at)(e, xj[2 * FSM_SUM_CHAINS], nosub);
            T e3 = K(row_exp_at)(e, xj[3 * FSM_SUM_CHAINS], nosub);
            yj[0] = e0, yj[FSM_SUM_CHAINS] = e1, yj[2 * FSM_SUM_CHAINS] = e2, yj[3 * FSM_SUM_CHAINS] = e3;
            acc[j] += (e0 + e1) + (e2 + e3);
        }
    }
    for (; i + FSM_SUM_CHAINS <= n; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            T ej = K(row_exp_at)(e, x[i + j], nosub);
            y[i + j] = ej;
            acc[j] += ej;
        }
    }
    for (size_t j = 0; i + j < n; ++j) {
        T ej = K(row_exp_at)(e, x[i + j], nosub);
        y[i + j] = ej;
        acc[j] += ej;
    }
    return K(sum_chains)(acc);
}

static FSM_ALWAYS_INLINE void K(add_rest_or_tie)(K(row_exp) e, T x, int nosub, T *rest, T *ties) {
    T is_tie = x == e.m ? (T)1 : (T)0;
    *rest += K(row_exp_at)(e, x, nosub) * ((T)1 - is_tie); /* a tie's exp is never NaN */
    *ties += is_tie;
}

/* One block, for log_softmax: the sum of the row's exponentials over the
 * terms with x[i] != m, and in *ties the count of the others (each exactly
 * 1 as exp(x - m)), so that log1p(rest + (ties - 1)) keeps its accuracy
 * when the total is close to 1.  A NaN term (x or m NaN) is never a tie.
 * With store_z (a constant), also z[i] = x[i] - m, rounded as sub_shifted
 * rounds it (z == x allowed). */
static FSM_ALWAYS_INLINE T K(block_exp_rest)(const T *x, T *z, size_t n, K(row_exp) e, int nosub, int store_z,
                                             T *ties) {
    T acc[FSM_SUM_CHAINS] = {0}, tie_acc[FSM_SUM_CHAINS] = {0};
    size_t i = 0;
    for (; i + FSM_SUM_CHAINS <= n; i += FSM_SUM_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_SUM_CHAINS; ++j) {
            T xi = x[i + j];
            K(add_rest_or_tie)(e, xi, nosub, &acc[j], &tie_acc[j]);
            if (store_z) z[i + j] = xi - e.m;
        }
    }
    for (size_t j = 0; i + j < n; ++j) {
        T xi = x[i + j];
        K(add_rest_or_tie)(e, xi, nosub, &acc[j], &tie_acc[j]);
        if (store_z) z[i + j] = xi - e.m;
    }
    *ties = K(sum_chains)(tie_acc);
    return K(sum_chains)(acc);
}

static inline size_t K(block_end)(size_t start, size_t n) {
    return n - start > FSM_SUM_BLOCK ? start + FSM_SUM_BLOCK : n;
}

#if ROW_EXP_NOSUB && defined(__AVX512F__)
/* The table exponential's form of the block functions (fsm_scaled_exp_nosub_f32x16):
 * the FSM_SUM_CHAINS chains are the lanes of one register, added to in the
 * same order; the last partial vector is masked, so every element takes the
 * same exponential. */

/* The lanes of the vector at x + i that hold elements of x[0..n). */
static inline __mmask16 K(live_lanes)(size_t i, size_t n) {
    return n - i >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - i)) - 1);
}

/* sum_chains of the 16 lanes, in registers: the same additions in the same
 * order (halves added lane-wise). */
static inline T K(sum_lanes)(__m512 acc) {
    _Static_assert(FSM_SUM_CHAINS == 16, "the chains are the 16 lanes of one register");
    __m256 halves = _mm256_add_ps(_mm512_castps512_ps256(acc), _mm512_extractf32x8_ps(acc, 1));
    __m128 quarters = _mm_add_ps(_mm256_castps256_ps128(halves), _mm256_extractf128_ps(halves, 1));
    __m128 pairs = _mm_add_ps(quarters, _mm_movehl_ps(quarters, quarters));
    return _mm_cvtss_f32(_mm_add_ss(pairs, _mm_movehdup_ps(pairs)));
}

/* The lanes of the vector at i that `keep` (where=, one byte an entry)
 * keeps among `live`; every live lane where keep is NULL (a constant where
 * this is inlined). */
static FSM_ALWAYS_INLINE __mmask16 K(keep_mask_x16)(const uint8_t *keep, size_t i, __mmask16 live) {
    if (keep == NULL) return live;
    __m128i bytes = _mm_maskz_loadu_epi8(live, keep + i);
    return _mm_mask_test_epi8_mask(live, bytes, bytes);
}

/* block_store_exp in the table form; with keep, the entries it masks out
 * are +0, as exp makes the -inf they are staged as. */
static FSM_ALWAYS_INLINE T K(block_store_exp_table)(const T *x, const uint8_t *keep, T *y, size_t n,
                                                    K(row_exp) e) {
    const __m512 shifter = fsm_nosub_table_shifter(e.j), lowest_n = fsm_nosub_table_lowest_n(e.lowest_n);
    __m512 acc = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 ev[4];
        for (size_t v = 0; v < 4; ++v) {
            __mmask16 wanted = K(keep_mask_x16)(keep, i + 16 * v, 0xffff);
            ev[v] = fsm_scaled_exp_nosub_f32x16(_mm512_loadu_ps(x + i + 16 * v), shifter, lowest_n, wanted);
            _mm512_storeu_ps(y + i + 16 * v, ev[v]);
        }
        acc = _mm512_add_ps(acc, _mm512_add_ps(_mm512_add_ps(ev[0], ev[1]), _mm512_add_ps(ev[2], ev[3])));
    }
    for (; i < n; i += 16) {
        __mmask16 live = K(live_lanes)(i, n);
        __m512 ei = fsm_scaled_exp_nosub_f32x16(_mm512_maskz_loadu_ps(live, x + i), shifter, lowest_n,
                                                K(keep_mask_x16)(keep, i, live));
        _mm512_mask_storeu_ps(y + i, live, ei);
        acc = _mm512_add_ps(acc, ei);
    }
    return K(sum_lanes)(acc);
}

/* scaled_exp_nosub 16 floats at a time, from the table of
 * fsm_nosub_table_join_f32x16: n = round(16 s x / ln 2), r = ((x - n c_hi
 * / 16) - n c_lo / 16) s_hi.  The first step is one fused multiply-add and
 * exact: its true result is representable (below about 2^22 units of x's
 * last place when |n| < 2^12, of c_hi / 16's beyond), as the scalar
 * form's is, so s x is never rounded here either.  The scaled groups'
 * form (family_rows.inc.c: scaled_table_for); the group's constants are
 * broadcast once, before the loop (read through its scaling inside it,
 * they would be reloaded after every store to y, which may alias them). */
typedef struct {
    __m512 s_log2e_16, c_hi_16, c_lo_16, s_hi, shifter16, lowest_n16;
} K(scaled_table);

static FSM_ALWAYS_INLINE __m512 K(scaled_exp_nosub_x16)(__m512 x, const K(scaled_table) *t, __mmask16 wanted) {
    __m512 k = _mm512_fmadd_ps(x, t->s_log2e_16, t->shifter16);
    __m512 n = _mm512_sub_ps(k, t->shifter16);
    __m512 r = _mm512_fnmadd_ps(n, t->c_hi_16, x);
    r = _mm512_mul_ps(_mm512_fnmadd_ps(n, t->c_lo_16, r), t->s_hi);
    return fsm_nosub_table_join_f32x16(k, n, r, t->lowest_n16, wanted);
}

/* The table form's exponential of a block function: the row's
 * (fsm_scaled_exp_nosub_f32x16), or a scaled group's where `scaled` is
 * not NULL (a constant where this is inlined). */
static FSM_ALWAYS_INLINE __m512 K(table_exp_x16)(__m512 x, __m512 shifter, __m512 lowest_n,
                                                 const K(scaled_table) *scaled, __mmask16 wanted) {
    return scaled ? K(scaled_exp_nosub_x16)(x, scaled, wanted)
                  : fsm_scaled_exp_nosub_f32x16(x, shifter, lowest_n, wanted);
}

/* One vector of block_exp_rest: the terms with x != m into *acc, the count
 * of the others into *ties (counted as integers: exact, off the vector
 * pipes); with store_z, out = z = x - m; with store_exp, out = every exp
 * (a tie's lane then left out of the sum rather than of the exponential:
 * the same sums).  Both constants where this is inlined. */
static FSM_ALWAYS_INLINE void K(add_rest_or_tie_x16)(const T *x, T *out, size_t i, __mmask16 live, __m512 m,
                                                     __m512 shifter, __m512 lowest_n, const K(scaled_table) *scaled,
                                                     int store_z, int store_exp, __m512 *acc, unsigned *ties) {
    __m512 xi = _mm512_maskz_loadu_ps(live, x + i);
    __mmask16 tie = _mm512_mask_cmp_ps_mask(live, xi, m, _CMP_EQ_OQ);
    *ties += (unsigned)__builtin_popcount(tie);
    if (store_exp) {
        __m512 ei = K(table_exp_x16)(xi, shifter, lowest_n, scaled, live);
        _mm512_mask_storeu_ps(out + i, live, ei);
        *acc = _mm512_mask_add_ps(*acc, (__mmask16)~tie, *acc, ei);
        return;
    }
    *acc = _mm512_add_ps(*acc, K(table_exp_x16)(xi, shifter, lowest_n, scaled, live & ~tie));
    if (store_z) _mm512_mask_storeu_ps(out + i, live, _mm512_sub_ps(xi, m)); /* out is NULL otherwise */
}

/* Four vectors a step, each with its own sums (added pairwise at the end),
 * so that the additions do not bound the loop; in the row's exponential,
 * or a scaled group's (`scaled`, whose e carries only the reference m). */
static FSM_ALWAYS_INLINE T K(block_exp_rest_table)(const T *x, T *out, size_t n, K(row_exp) e,
                                                   const K(scaled_table) *scaled, int store_z, int store_exp,
                                                   T *ties) {
    const __m512 shifter = fsm_nosub_table_shifter(e.j), lowest_n = fsm_nosub_table_lowest_n(e.lowest_n);
    const __m512 m = _mm512_set1_ps(e.m);
    __m512 acc[4];
    unsigned tie_count = 0;
    for (size_t v = 0; v < 4; ++v) acc[v] = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64)
        for (size_t v = 0; v < 4; ++v)
            K(add_rest_or_tie_x16)(x, out, i + 16 * v, 0xffff, m, shifter, lowest_n, scaled, store_z, store_exp,
                                   &acc[v], &tie_count);
    for (; i < n; i += 16)
        K(add_rest_or_tie_x16)(x, out, i, K(live_lanes)(i, n), m, shifter, lowest_n, scaled, store_z, store_exp,
                               &acc[0], &tie_count);
    *ties = (T)tie_count;
    return K(sum_lanes)(_mm512_add_ps(_mm512_add_ps(acc[0], acc[1]), _mm512_add_ps(acc[2], acc[3])));
}
#endif

/* block_store_exp in the row's form. */
static FSM_ALWAYS_INLINE T K(block_store_row_exp)(const T *x, T *y, size_t n, K(row_exp) e) {
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    if (e.nosub) return K(block_store_exp_table)(x, NULL, y, n, e);
#endif
    return e.nosub ? K(block_store_exp)(x, y, n, e, 1) : K(block_store_exp)(x, y, n, e, 0);
}

/* block_exp_rest in the row's form, as a sum of exp(x - m) * 2^B: a
 * no-subtraction sum is multiplied by the inverse of the row's factor
 * (to_max_scale: fsm_nosub_to_max_scale), block by block, so that a split
 * row adds the same block sums.  With store_z, also z = x - m. */
static FSM_ALWAYS_INLINE T K(block_rest_in_form)(const T *x, T *z, size_t n, K(row_exp) e, double to_max_scale,
                                                 int store_z, T *ties) {
    if (!e.nosub) return K(block_exp_rest)(x, z, n, e, 0, store_z, ties);
#if ROW_EXP_NOSUB && defined(__AVX512F__)
    return (T)(K(block_exp_rest_table)(x, z, n, e, NULL, store_z, 0, ties) * to_max_scale);
#else
    return (T)(K(block_exp_rest)(x, z, n, e, 1, store_z, ties) * to_max_scale);
#endif
}

static T K(block_rest_row_exp)(const T *x, size_t n, K(row_exp) e, double to_max_scale, T *ties) {
    return K(block_rest_in_form)(x, NULL, n, e, to_max_scale, 0, ties);
}

/* block_rest_row_exp that also stores z = x - m (z == x allowed): the
 * output pass of log_softmax then reads and writes z in cache, and the
 * writes that miss overlap the exponentials' arithmetic (a separate pass
 * from x to a y not yet in cache was bound by those misses). */
static T K(block_rest_row_exp_storing)(const T *x, T *z, size_t n, K(row_exp) e, double to_max_scale, T *ties) {
    return K(block_rest_in_form)(x, z, n, e, to_max_scale, 1, ties);
}

/* The to_max_scale of block_rest_row_exp (unused by the TwoSum form). */
static inline double K(to_max_scale)(K(row_exp) e) {
    return e.nosub ? fsm_nosub_to_max_scale((double)e.m, (double)e.j) : 1.0;
}

/* block_rest_row_exp of a one-block row from its sum taken with a factor of
 * 1 (row maximum m, j and nosub of its row_exp), rounded as
 * block_rest_row_exp rounds it: the row-group kernels take the factor (a
 * double exp) across the rows in SIMD lanes with the log. */
static inline double K(one_block_rest)(T block_rest, T m, T j, int nosub) {
    return nosub ? (double)(T)(block_rest * fsm_nosub_to_max_scale((double)m, (double)j)) : (double)block_rest;
}

/* y[i] = the row's exponential of x[i]; returns the sum of the y[i]. */
static double K(raddstore_scaled_exp)(const T *x, T *y, size_t n, T m) {
    K(row_exp) e = K(row_exp_for)(m);
    /* the first block's sum as it is: Neumaier's sum of one term (finite) */
    double sum = K(block_store_row_exp)(x, y, K(block_end)(0, n), e), comp = 0.0;
    for (size_t start = FSM_SUM_BLOCK; start < n; start += FSM_SUM_BLOCK) {
        size_t end = K(block_end)(start, n);
        fsm_neumaier_add(&sum, &comp, K(block_store_row_exp)(x + start, y + start, end - start, e));
    }
    return sum + comp;
}


/* The parts of log(sum(exp(x - m))), split as in block_exp_rest: *rest =
 * the sum of the terms with x != m, *ties = the count of the others; where
 * z is not NULL, also z = x - m (block_rest_row_exp_storing). */
/* The block of the row starting at `start`, by block_rest_row_exp, or
 * block_rest_row_exp_storing where z is not NULL. */
static inline T K(block_rest_at)(const T *x, T *z, size_t start, size_t n, K(row_exp) e, double to_max_scale,
                                 T *ties) {
    size_t len = K(block_end)(start, n) - start;
    return z ? K(block_rest_row_exp_storing)(x + start, z + start, len, e, to_max_scale, ties)
             : K(block_rest_row_exp)(x + start, len, e, to_max_scale, ties);
}

static inline void K(exp_rest_and_ties_storing)(const T *x, T *z, size_t n, T m, double *rest, double *ties) {
    K(row_exp) e = K(row_exp_for)(m);
    double to_max_scale = K(to_max_scale)(e);
    T block_ties;
    /* the first block's sum as it is: Neumaier's sum of one term (finite) */
    double sum = K(block_rest_at)(x, z, 0, n, e, to_max_scale, &block_ties), comp = 0.0;
    double tie_count = block_ties;
    for (size_t start = FSM_SUM_BLOCK; start < n; start += FSM_SUM_BLOCK) {
        fsm_neumaier_add(&sum, &comp, K(block_rest_at)(x, z, start, n, e, to_max_scale, &block_ties));
        tie_count += block_ties;
    }
    *rest = sum + comp;
    *ties = tie_count;
}

static inline void K(exp_rest_and_ties)(const T *x, size_t n, T m, double *rest, double *ties) {
    K(exp_rest_and_ties_storing)(x, NULL, n, m, rest, ties);
}

static T K(log_sum_exp_minus_max)(const T *x, size_t n, T m) {
    double rest, ties;
    K(exp_rest_and_ties)(x, n, m, &rest, &ties);
    return LOG_TOTAL(rest, ties, m);
}

/* e / total, from inv = 1 / total.  With fused multiply-add, for double,
 * one correction step: the remainder e - q * total is exact, so the result
 * is within about half an ulp of e / total instead of about one (the f32
 * results are already far inside their bound). */
static inline T K(quotient)(T e, T total, T inv) {
    T q = e * inv;
#if FSM_HAS_FMA
    if (sizeof(T) == sizeof(double)) return q + (e - q * total) * inv;
#endif
    (void)total;
    return q;
}

/* quotient, and exactly 1 for a term that is the whole total (the other
 * terms 0, or below its rounding): a no-subtraction term is not a power
 * of two, and e * (1 / e) may round below 1 (so would a lone finite
 * element among -inf).  In the TwoSum form such a term is 2^B and the
 * product is exact anyway (no select where only that form is used: it
 * cost float64's short rows 4%). */
static inline T K(row_quotient)(T e, T total, T inv) {
    return ROW_EXP_NOSUB && e == total ? (T)1 : K(quotient)(e, total, inv);
}

/* dst[i] = src[i] / total, from t = total and inv = INVERSE_TOTAL(total);
 * dst == src is allowed.  The vector loop starts where dst is aligned to a
 * cache line: a store that straddles two lines costs about as much as two
 * (NumPy's data usually starts 16 bytes past a line). */
static void K(vquotients)(const T *src, T *dst, size_t n, T t, T inv) {
    size_t head = K(elements_to_line)(dst, n);
    for (size_t i = 0; i < head; ++i) dst[i] = K(row_quotient)(src[i], t, inv);
#pragma omp simd
    for (size_t i = head; i < n; ++i) dst[i] = K(row_quotient)(src[i], t, inv);
}

static void K(vnormalize)(const T *src, T *dst, size_t n, double total) {
    K(vquotients)(src, dst, n, (T)total, INVERSE_TOTAL(total));
}

/* (x - m) - c for log_softmax, with m the maximum and c = log(sum) >= 0:
 * |x - m| <= |result|, so rounding x - m costs at most half an ulp of the
 * result (no cancellation; an exact TwoSum here would buy half an ulp). */
static inline T K(sub_shifted)(T x, T m, T c) { return (x - m) - c; }

/* z[i] -= c in place, z[i] = x[i] - m: the same result as vsub_shifted. */
static void K(vsub_total)(T *z, size_t n, T c) {
    size_t head = K(elements_to_line)(z, n); /* as in vquotients */
    for (size_t i = 0; i < head; ++i) z[i] -= c;
#pragma omp simd
    for (size_t i = head; i < n; ++i) z[i] -= c;
}

static void K(vsub_shifted)(const T *x, T *y, size_t n, T m, T c) {
    size_t head = K(elements_to_line)(y, n); /* as in vquotients */
    for (size_t i = 0; i < head; ++i) y[i] = K(sub_shifted)(x[i], m, c);
#pragma omp simd
    for (size_t i = head; i < n; ++i) y[i] = K(sub_shifted)(x[i], m, c);
}

/* softmax_row with the row maximum m already known. */
static inline void K(softmax_row_from_max)(const T *x, T *y, size_t n, T m) {
    K(vnormalize)(y, y, n, K(raddstore_scaled_exp)(x, y, n, m));
}

#if ROW_EXP_NOSUB && defined(__AVX512F__)
/* softmax_row_from_max of a masked row whose maximum m takes the table
 * form, the mask read beside x (keep): the entries it masks out are +0, as
 * exp makes the -inf the staged row has there, so y is the staged row's,
 * bit for bit, without the staged copy.  Returns 0, nothing done, for a row
 * that takes the TwoSum form. */
static int K(softmax_masked_row_in_lanes)(const T *x, const uint8_t *keep, T *y, size_t n, T m) {
    K(row_exp) e = K(row_exp_for)(m);
    if (!e.nosub) return 0;
    double sum = K(block_store_exp_table)(x, keep, y, K(block_end)(0, n), e), comp = 0.0;
    for (size_t start = FSM_SUM_BLOCK; start < n; start += FSM_SUM_BLOCK) {
        size_t len = K(block_end)(start, n) - start;
        fsm_neumaier_add(&sum, &comp, K(block_store_exp_table)(x + start, keep + start, y + start, len, e));
    }
    K(vnormalize)(y, y, n, sum + comp);
    return 1;
}
#endif

static void K(softmax_row)(const T *x, T *y, size_t n, int stream) {
    (void)stream; /* kernels.h: softmax writes y in cache */
    K(softmax_row_from_max)(x, y, n, K(rmax)(x, n));
}

/* log_softmax_row with the row maximum m already known. */
static inline void K(log_softmax_row_from_max)(const T *x, T *y, size_t n, T m, int stream) {
    if (stream) {
        K(vsub_shifted_stream)(x, y, n, m, K(log_sum_exp_minus_max)(x, n, m));
        return;
    }
    double rest, ties;
    K(exp_rest_and_ties_storing)(x, y, n, m, &rest, &ties);
    K(vsub_total)(y, n, LOG_TOTAL(rest, ties, m));
}

static void K(log_softmax_row)(const T *x, T *y, size_t n, int stream) {
    K(log_softmax_row_from_max)(x, y, n, K(rmax)(x, n), stream);
}

/* softmax_row on `count` rows at once, with the per-row 1 / total taken
 * across the rows (one SIMD lane per row); unused lanes get a total of 1. */
static void K(softmax_rows)(const T *const *x, T *const *y, size_t n, size_t count) {
    double total[FSM_ROW_GROUP];
    T t[FSM_ROW_GROUP], inv[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g)
        total[g] = g < count ? K(raddstore_scaled_exp)(x[g], y[g], n, K(rmax)(x[g], n)) : 1.0;
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) t[g] = (T)total[g], inv[g] = INVERSE_TOTAL(total[g]);
    for (size_t g = 0; g < count; ++g) K(vquotients)(y[g], y[g], n, t[g], inv[g]);
}

/* log_softmax_row on `count` rows at once, with the per-row log taken
 * across the rows (one SIMD lane per row) instead of once per row; unused
 * lanes get a harmless total of 1.  A row of one sum block in the
 * no-subtraction form has its factor (to_max_scale, a double exp) taken in
 * the lanes too, as exp_rest_and_ties applies it: one row at a time it was
 * about a third of the group kernel on rows of 128. */
static void K(log_softmax_rows)(const T *const *x, T *const *y, size_t n, size_t count) {
    T m[FSM_ROW_GROUP], j[FSM_ROW_GROUP], block_rest[FSM_ROW_GROUP], lse[FSM_ROW_GROUP];
    double rest[FSM_ROW_GROUP], ties[FSM_ROW_GROUP];
    int scale_in_lanes[FSM_ROW_GROUP];
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        m[g] = 0, j[g] = 0, block_rest[g] = 0, rest[g] = 0.0, ties[g] = 1.0, scale_in_lanes[g] = 0;
        if (g >= count) continue;
        m[g] = K(rmax)(x[g], n);
        K(row_exp) e = K(row_exp_for)(m[g]);
        if (e.nosub && n <= FSM_SUM_BLOCK) {
            T block_ties;
            block_rest[g] = K(block_rest_row_exp_storing)(x[g], y[g], n, e, 1.0, &block_ties); /* factor below */
            j[g] = e.j, ties[g] = block_ties, scale_in_lanes[g] = 1;
        } else {
            K(exp_rest_and_ties_storing)(x[g], y[g], n, m[g], &rest[g], &ties[g]);
        }
    }
#pragma omp simd
    for (size_t g = 0; g < FSM_ROW_GROUP; ++g) {
        double one_block = K(one_block_rest)(block_rest[g], m[g], j[g], 1);
        lse[g] = LOG_TOTAL(scale_in_lanes[g] ? one_block : rest[g], ties[g], m[g]);
    }
    for (size_t g = 0; g < count; ++g) K(vsub_total)(y[g], n, lse[g]);
}

/* --- pieces for rows split across threads (contracts: kernels.h) --- */

static void K(softmax_rblocks)(const T *x, T *y, size_t n, T m, T *sums, T *ties) {
    (void)ties;
    K(row_exp) e = K(row_exp_for)(m);
    for (size_t start = 0, b = 0; start < n; start += FSM_SUM_BLOCK, ++b)
        sums[b] = K(block_store_row_exp)(x + start, y + start, K(block_end)(start, n) - start, e);
}

static void K(log_softmax_rblocks)(const T *x, T *y, size_t n, T m, T *sums, T *ties) {
    (void)y;
    K(row_exp) e = K(row_exp_for)(m);
    double to_max_scale = K(to_max_scale)(e);
    for (size_t start = 0, b = 0; start < n; start += FSM_SUM_BLOCK, ++b)
        sums[b] = K(block_rest_row_exp)(x + start, K(block_end)(start, n) - start, e, to_max_scale, &ties[b]);
}

static void K(softmax_finish)(const T *x, T *y, size_t n, T m, double c) {
    (void)x, (void)m;
    K(vnormalize)(y, y, n, c);
}

static void K(log_softmax_finish)(const T *x, T *y, size_t n, T m, double c) {
    K(vsub_shifted)(x, y, n, m, (T)c);
}
