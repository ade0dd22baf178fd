/*
 * Cross-entropy short-row kernels (contract: kernels.h), instantiated per
 * dtype by variant.c after short_rows.inc.c and family_cols.inc.c, whose
 * transposes and lane passes they run: the rows (and the probabilities)
 * are transposed into lanes, where the lane kernel's passes take each
 * lane's maximum, total and loss; the losses go straight to the caller's
 * array and only the gradient back into the rows.  The arithmetic is the
 * lane kernel's, element for element.
 *
 * With index targets the gradient is computed on the way back, in
 * registers (one pass over the lanes fewer: float32 rows of 10 with their
 * gradient, 17.5-18.5 -> 15.7-16.7 ms per 10^6 rows); with probabilities
 * the lane kernel's gradient pass runs before a plain transpose back, as
 * the compiler fuses keep * q + uniform into one multiply-add in a SIMD
 * loop and not always in vector code, which would change the last bit.
 */

#define SHORT_LANES FSM_SHORT_ROW_LANES

/* What the gradient of index targets takes besides the exps: the lanes'
 * totals (t, inv = 1 / t, from the work slots of cross_entropy_flanes_stats),
 * their targets as T (in a slot the stats leave free) and the target
 * weights. */
typedef struct {
    const T *t, *inv, *target_at;
    T scale, uniform, hit;
} K(index_grad);

static inline K(index_grad) K(index_grad_of)(const fsm_params *prm, size_t n, size_t lanes, const int64_t *targets,
                                             double *work) {
    K(index_grad) ig;
    T *target_at = (T *)(work + 1 * lanes);
    for (size_t g = 0; g < lanes; ++g) target_at[g] = (T)targets[g]; /* exact: n < 2^24 */
    ig.t = (const T *)(work + 8 * lanes), ig.inv = (const T *)(work + 9 * lanes), ig.target_at = target_at;
    ig.scale = (T)prm->grad_scale, ig.uniform = K(smoothing_uniform)(prm, n), ig.hit = K(smoothing_hit)(prm, n);
    return ig;
}

#if TILE > 1
/* Columns c .. c + TILE of the gradient of lanes g .. g + TILE, from their
 * exps in e, into rows grad[0 .. TILE); each entry's weight (hit at the
 * lane's target, else uniform) picked bit for bit by a lane mask, so that no
 * entry is written twice. */
static FSM_ALWAYS_INLINE void K(index_grad_tile_to_rows)(const T *e, size_t c, T *const *grad, const K(index_grad) *ig,
                                                         size_t g) {
    typedef __typeof__((K(tile_vec)){0} == (K(tile_vec)){0}) lane_bits;
    K(tile_vec) v[TILE];
    K(tile_vec) t = *(const K(tile_vec_u) *)(ig->t + g), inv = *(const K(tile_vec_u) *)(ig->inv + g);
    K(tile_vec) target_at = *(const K(tile_vec_u) *)(ig->target_at + g);
    lane_bits hit = (lane_bits)((K(tile_vec)){0} + ig->hit), uniform = (lane_bits)((K(tile_vec)){0} + ig->uniform);
#pragma GCC unroll 8
    for (int j = 0; j < TILE; ++j) {
        K(tile_vec) ev = *(const K(tile_vec_u) *)(e + (c + (size_t)j) * SHORT_LANES + g);
        lane_bits at_target = target_at == (T)(c + (size_t)j);
        K(tile_vec) weight = (K(tile_vec))((at_target & hit) | (~at_target & uniform));
        v[j] = (K(finish_vec)(ev, t, inv, FSM_FINISH_QUOTIENT) - weight) * ig->scale;
    }
    K(transpose_tile)(v);
#pragma GCC unroll 8
    for (int i = 0; i < TILE; ++i) *(K(tile_vec_u) *)(grad[i] + c) = v[i];
}
#endif

/* The gradient of index targets from the exps e of lanes 0 .. count into
 * the rows grad[g][0 .. n): cross_entropy_grad_flanes's values, written to
 * the rows. */
static void K(index_grad_lanes_to_rows)(const T *e, size_t n, size_t count, T *const *grad, const K(index_grad) *ig,
                                        const int64_t *targets) {
    size_t tiled = K(tiled_rows)(n, count);
#if TILE > 1
    for (size_t g = 0; g < tiled; g += TILE) {
        size_t c = 0;
        for (; c + TILE <= n; c += TILE) K(index_grad_tile_to_rows)(e, c, grad + g, ig, g);
        if (c < n) K(index_grad_tile_to_rows)(e, n - TILE, grad + g, ig, g);
    }
#endif
    for (size_t g = tiled; g < count; ++g)
        for (size_t j = 0; j < n; ++j)
            grad[g][j] = K(cross_entropy_grad)(e[j * SHORT_LANES + g], ig->t[g], ig->inv[g],
                                               (size_t)targets[g] == j ? ig->hit : ig->uniform, ig->scale);
}

static FSM_ALWAYS_INLINE void K(cross_entropy_xshort_body)(const T *const *x, T *const *grad, const T *const *q,
                                                           size_t n, size_t count, const fsm_params *prm,
                                                           const int64_t *targets, double *loss, T *x_lanes,
                                                           T *q_lanes, T *exp_lanes, double *work, int with_grad,
                                                           int probs) {
    const ptrdiff_t L = SHORT_LANES;
    K(rows_to_lanes)(x, n, count, x_lanes);
    if (probs) K(rows_to_lanes)(q, n, count, q_lanes);
    K(cross_entropy_flanes_stats)(x_lanes, L, with_grad ? exp_lanes : NULL, L, probs ? q_lanes : NULL, L, n, count,
                                  prm, 0, work);
    if (with_grad && probs) {
        K(cross_entropy_grad_flanes)(q_lanes, L, exp_lanes, L, n, count, prm, targets, work);
        K(lanes_to_rows_copy)(exp_lanes, n, count, grad);
    } else if (with_grad) {
        K(index_grad) ig = K(index_grad_of)(prm, n, count, targets, work);
        K(index_grad_lanes_to_rows)(exp_lanes, n, count, grad, &ig, targets);
    }
    K(cross_entropy_flanes_losses)(x_lanes, L, !probs, n, count, prm, targets, loss, work);
}

/* One function, the four bodies: each combination compiles to its own loops. */
static void K(cross_entropy_xshort)(const T *const *x, T *const *grad, const T *const *q, size_t n, size_t count,
                                    const fsm_params *prm, const int64_t *targets, double *loss, T *x_lanes,
                                    T *q_lanes, T *exp_lanes, double *work) {
    if (grad != NULL && q != NULL)
        K(cross_entropy_xshort_body)(x, grad, q, n, count, prm, targets, loss, x_lanes, q_lanes, exp_lanes, work, 1, 1);
    else if (grad != NULL)
        K(cross_entropy_xshort_body)(x, grad, q, n, count, prm, targets, loss, x_lanes, q_lanes, exp_lanes, work, 1, 0);
    else if (q != NULL)
        K(cross_entropy_xshort_body)(x, grad, q, n, count, prm, targets, loss, x_lanes, q_lanes, exp_lanes, work, 0, 1);
    else
        K(cross_entropy_xshort_body)(x, grad, q, n, count, prm, targets, loss, x_lanes, q_lanes, exp_lanes, work, 0, 0);
}

#undef SHORT_LANES
