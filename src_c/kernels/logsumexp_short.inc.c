/*
 * Logsumexp short-row kernels (contract: kernels.h), instantiated per dtype
 * by variant.c after short_rows.inc.c and family_cols.inc.c, whose
 * transpose and lane passes they run: the rows (and the weights) are
 * transposed into lanes, where the lane kernel's passes take each lane's
 * maximum and total and write one result per row; nothing is transposed
 * back.  The arithmetic is the lane kernel's, element for element.
 */

static void K(logsumexp_lshort)(const T *const *x, const T *const *b, size_t n, size_t count, double *results,
                                T *x_lanes, T *b_lanes, double *work) {
    const ptrdiff_t L = FSM_SHORT_ROW_LANES;
    K(rows_to_lanes)(x, n, count, x_lanes);
    if (b == NULL) {
        K(plain_logsumexp_lanes)(x_lanes, L, n, count, results, work, 0);
        return;
    }
    K(rows_to_lanes)(b, n, count, b_lanes);
    K(weighted_logsumexp_lanes)(x_lanes, L, b_lanes, L, n, count, results, work, 0);
}
