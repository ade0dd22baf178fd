/*
 * Row kernels, instantiated once per dtype by variant.c with
 *   T               float or double
 *   K(name)         the dtype- and variant-suffixed name
 *   EXP_MINUS_MAX   fsm_exp_minus_max_f32 / _f64
 * Contracts: kernels.h.  Each kernel makes three passes over a row that the
 * caller has sized to stay in cache: max, exp (+ store) + sum, then scale or
 * subtract.  Sums are taken in blocks of FSM_SUM_BLOCK elements in T (short
 * per-lane chains) and the block sums are added in double with Neumaier's
 * compensation, so the error of a row sum does not grow with the row length.
 */

/* FSM_MAX_CHAINS independent running maxima (several SIMD registers), so
 * the loop is not bound by the latency of one max instruction. */
static T K(row_max)(const T *x, size_t n) {
    T acc[FSM_MAX_CHAINS];
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = -(T)INFINITY;
    size_t i = 0;
    for (; i + FSM_MAX_CHAINS <= n; i += FSM_MAX_CHAINS) {
#pragma omp simd
        for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) acc[j] = x[i + j] > acc[j] ? x[i + j] : acc[j];
    }
    T m = -(T)INFINITY;
    for (; i < n; ++i) m = x[i] > m ? x[i] : m;
    for (size_t j = 0; j < FSM_MAX_CHAINS; ++j) m = acc[j] > m ? acc[j] : m;
    return m;
}

/* y[i] = exp(x[i] - m); returns the sum of the y[i]. */
static double K(exp_store_sum)(const T *x, T *y, size_t n, T m) {
    double sum = 0.0, comp = 0.0;
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t end = n - start > FSM_SUM_BLOCK ? start + FSM_SUM_BLOCK : n;
        T block = 0;
#pragma omp simd reduction(+ : block)
        for (size_t i = start; i < end; ++i) {
            T e = EXP_MINUS_MAX(x[i], m);
            y[i] = e;
            block += e;
        }
        fsm_neumaier_add(&sum, &comp, block);
    }
    return sum + comp;
}

/* log(sum(exp(x - m))), accurate also when the sum is close to 1: the terms
 * with x == m (exactly 1 each) are counted apart from the rest, and
 * log1p(rest + (count - 1)) is taken.  NaN when m is not finite (a +inf
 * would otherwise count as a tie and hide the NaN of inf - inf). */
static T K(log_sum_exp_minus_max)(const T *x, size_t n, T m) {
    double rest = 0.0, rest_comp = 0.0, ties = 0.0;
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t end = n - start > FSM_SUM_BLOCK ? start + FSM_SUM_BLOCK : n;
        T block = 0, block_ties = 0;
#pragma omp simd reduction(+ : block, block_ties)
        for (size_t i = start; i < end; ++i) {
            int tie = x[i] == m;
            T e = EXP_MINUS_MAX(x[i], m);
            block += tie ? (T)0 : e; /* a NaN e (x or m NaN) is never a tie */
            block_ties += tie ? (T)1 : (T)0;
        }
        fsm_neumaier_add(&rest, &rest_comp, block);
        ties += block_ties;
    }
    return isfinite(m) ? (T)log1p((rest + rest_comp) + (ties - 1.0)) : (T)NAN;
}

static void K(scale)(T *y, size_t n, T s) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) y[i] *= s;
}

/* y[i] = (x[i] - m) - lse, with x[i] - m carried exactly. */
static void K(subtract_store)(const T *x, T *y, size_t n, T m, T lse) {
#pragma omp simd
    for (size_t i = 0; i < n; ++i) {
        T bb, t = x[i] - m;
        T tl = FSM_TWO_SUM_ERR(x[i], -m, t, bb);
        tl = t > -(T)INFINITY ? tl : (T)0; /* x = -inf makes tl NaN */
        y[i] = (t - lse) + tl;
    }
}

static void K(softmax_row)(const T *x, T *y, size_t n) {
    T m = K(row_max)(x, n);
    double sum = K(exp_store_sum)(x, y, n, m);
    K(scale)(y, n, (T)(1.0 / sum)); /* NaN sum (bad row) -> NaN row */
}

static void K(log_softmax_row)(const T *x, T *y, size_t n) {
    T m = K(row_max)(x, n);
    K(subtract_store)(x, y, n, m, K(log_sum_exp_minus_max)(x, n, m));
}
