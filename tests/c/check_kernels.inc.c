/*
 * The checks of test_kernels.c for one dtype, instantiated by it with (and
 * undefined at the end)
 *   T, F(name)       the dtype and the dtype-suffixed name
 *   SUFFIX           f32 or f64: the table fields of this dtype
 *   T_EPS, T_MAX, T_TRUE_MIN   the dtype's eps, largest finite value and
 *                    smallest subnormal
 *   EXP_RANGE        |x - m| beyond which exp(x - m) underflows to 0
 *   ORDERED          ordered_f32 / ordered_f64 (ulp distances)
 *   DTYPE            "float32" / "float64"
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
/* The table field `field` of this dtype, e.g. ENTRY(k, row) = k->row_f32. */
#define ENTRY(k, field) ((k)->CAT(field, CAT(_, SUFFIX)))

/* --- buffers: a misaligned start and guard elements on both sides --------- */

typedef struct {
    T *alloc, *data;
    size_t len, total;
} F(buffer);

static T F(sentinel)(void) {
    T s;
    if (sizeof(T) == sizeof(float)) {
        uint32_t bits = 0x7fc5a5a5u; /* a NaN no kernel computes */
        memcpy(&s, &bits, sizeof s);
    } else {
        uint64_t bits = 0x7ff8a5a5a5a5a5a5ull;
        memcpy(&s, &bits, sizeof s);
    }
    return s;
}

static int F(is_sentinel)(T v) {
    T s = F(sentinel)();
    return memcmp(&v, &s, sizeof v) == 0;
}

static F(buffer) F(buffer_new)(size_t len, size_t offset) {
    F(buffer) b;
    b.total = len + 2 * GUARD + MAX_OFFSET;
    b.alloc = checked_alloc(b.total * sizeof(T));
    b.data = b.alloc + GUARD + offset;
    b.len = len;
    for (size_t i = 0; i < b.total; ++i) b.alloc[i] = F(sentinel)();
    return b;
}

static void F(buffer_free)(F(buffer) *b) { free(b->alloc); }

/* The kernel wrote nothing before or after b's len elements. */
static void F(expect_guards)(const char *entry, const F(buffer) *b) {
    size_t i = 0;
    while (i < b->total && (F(is_sentinel)(b->alloc[i]) || (b->alloc + i >= b->data && b->alloc + i < b->data + b->len)))
        ++i;
    count_check(i == b->total, entry, "wrote outside its output");
}

static const char *F(entry_name)(const char *field, int op, const char *note) {
    static char name[200];
    snprintf(name, sizeof name, "%s_%s%s%s%s%s", field, DTYPE + 5 /* "32" / "64" */, op >= 0 ? "[" : "",
             op >= 0 ? op_names[op] : "", op >= 0 ? "]" : "", note);
    return name;
}

/* --- comparisons ------------------------------------------------------------ */

/* got agrees with want: the same bits (bitwise), or both NaN, or equal, or
 * within ULPS ulps, or within ULPS eps * magnitude (magnitude > 0: the size
 * of the terms whose difference got is). */
static int F(agree)(T got, T want, int bitwise, double magnitude) {
    if (got != got && want != want) return 1; /* NaN: its sign and payload are not part of a result */
    if (bitwise) return memcmp(&got, &want, sizeof got) == 0;
    if (magnitude == INFINITY) return 1; /* computed from a sum at the edge of overflow */
    if (got != got || want != want) return 0;
    if (got == want) return 1;
    if (!isfinite(got) || !isfinite(want)) return 0;
    int64_t d = ORDERED(got) - ORDERED(want);
    if (d <= ULPS && d >= -ULPS) return 1;
    return fabs((double)got - (double)want) <= ULPS * T_EPS * magnitude;
}

/* got[i * got_step + j] against want[i * want_step + j] for i < rows and
 * j < lanes (magnitude: NULL, or rows * lanes of them, row after row). */
static void F(expect_grid)(const char *entry, const T *got, ptrdiff_t got_step, const T *want,
                           ptrdiff_t want_step, size_t rows, size_t lanes, int bitwise, const double *magnitude) {
    for (size_t i = 0; i < rows; ++i) {
        for (size_t j = 0; j < lanes; ++j) {
            T g = got[(ptrdiff_t)i * got_step + (ptrdiff_t)j], w = want[(ptrdiff_t)i * want_step + (ptrdiff_t)j];
            if (!F(agree)(g, w, bitwise, magnitude ? magnitude[i * lanes + j] : 0.0)) {
                char detail[160];
                snprintf(detail, sizeof detail, "element (%zu, %zu): %.9g, scalar %.9g (%s)", i, j, (double)g,
                         (double)w, bitwise ? "bit-identical expected" : "beyond the tolerance");
                report_failure(entry, detail);
                return;
            }
        }
    }
    ++checks_passed;
}

static void F(expect_row)(const char *entry, const T *got, const T *want, size_t n, int bitwise,
                          const double *magnitude) {
    F(expect_grid)(entry, got, 0, want, 0, 1, n, bitwise, magnitude);
}

/* Results per group (logsumexp, loss), in double but as accurate as T. */
static void F(expect_groups)(const char *entry, const double *got, const double *want, size_t count,
                             const double *magnitude) {
    for (size_t j = 0; j < count; ++j) {
        double g = got[j], w = want[j];
        int ok = (g != g || w != w) ? (g != g && w != w)
                 : g == w           ? 1
                                    : fabs(g - w) <= ULPS * T_EPS * fmax(fabs(w), magnitude[j]);
        if (!ok) {
            char detail[160];
            snprintf(detail, sizeof detail, "group %zu: %.17g, scalar %.17g", j, g, w);
            report_failure(entry, detail);
            return;
        }
    }
    ++checks_passed;
}

/* --- inputs ----------------------------------------------------------------- */

static void F(fill)(T *x, ptrdiff_t step, size_t n, int pattern) {
    size_t special = rng_below(n);
    for (size_t i = 0; i < n; ++i) {
        double u = rng_uniform(), uniform = 20 * u - 10;
        T v;
        switch (pattern) {
        case PAT_WIDE: v = (T)(-1.2 * EXP_RANGE * u); break;
        case PAT_TIES: v = (T)-floor(3 * u); break;
        case PAT_NAN: v = i == special ? (T)NAN : (T)uniform; break;
        case PAT_POS_INF: v = i == special ? (T)INFINITY : (T)uniform; break;
        case PAT_NEG_INF: v = u < 0.3 ? -(T)INFINITY : (T)uniform; break;
        case PAT_ALL_NEG_INF: v = -(T)INFINITY; break;
        case PAT_EXTREMES: v = u < 0.25 ? T_MAX : u < 0.5 ? -T_MAX : u < 0.75 ? (T)(T_MAX * (4 * u - 2.5)) : 0; break;
        case PAT_ALL_MAX: v = T_MAX; break;
        case PAT_TINY: v = (T)(T_TRUE_MIN * floor(2000 * u - 1000)); break;
        case PAT_LARGE: v = (T)(T_MAX * (u - 0.5)); break;
        default: v = (T)uniform; break;
        }
        x[(ptrdiff_t)i * step] = v;
    }
}

/* Probabilities (the b of softmax_backward and cross entropy): some zero. */
static void F(fill_probabilities)(T *q, ptrdiff_t step, size_t n) {
    double total = 0.0;
    for (size_t i = 0; i < n; ++i) {
        double u = rng_uniform();
        q[(ptrdiff_t)i * step] = (T)(u < 0.2 ? 0.0 : u);
        total += (double)q[(ptrdiff_t)i * step];
    }
    for (size_t i = 0; i < n; ++i) q[(ptrdiff_t)i * step] = total > 0 ? (T)(q[(ptrdiff_t)i * step] / total) : (T)1;
}

/* Log-probabilities (the b of log_softmax_backward). */
static void F(fill_log_probabilities)(T *q, ptrdiff_t step, size_t n) {
    F(fill_probabilities)(q, step, n);
    for (size_t i = 0; i < n; ++i) q[(ptrdiff_t)i * step] = (T)log((double)q[(ptrdiff_t)i * step]);
}

/* --- plain row kernels: row, row groups, split rows, rmax, stage ------------ */

/* The row kernel of op as the split-row plan runs it (driver.inc.c): chunks
 * of one sum block, the maximum over the chunks' rmax, per-block sums
 * folded in order, then finish.  sums, ties: one per block.  Returns c, the
 * folded total (softmax) or its log (log_softmax, from log_total). */
static double F(split_row)(const fsm_kernel_table *k, int op, const T *x, T *y, size_t n, T *sums, T *ties) {
    T m = -(T)INFINITY;
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t len = n - start < FSM_SUM_BLOCK ? n - start : FSM_SUM_BLOCK;
        T chunk_max = ENTRY(k, rmax)(x + start, len);
        m = chunk_max > m ? chunk_max : m;
    }
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t len = n - start < FSM_SUM_BLOCK ? n - start : FSM_SUM_BLOCK, b = start / FSM_SUM_BLOCK;
        ENTRY(k, rblocks)[op](x + start, y + start, len, m, sums + b, ties + b);
    }
    double total = 0.0, comp = 0.0, tie_count = 0.0;
    for (size_t b = 0; b * FSM_SUM_BLOCK < n; ++b) {
        fsm_neumaier_add(&total, &comp, sums[b]);
        if (op == FSM_OP_LOG_SOFTMAX) tie_count += ties[b];
    }
    double c = op == FSM_OP_SOFTMAX ? total + comp : ENTRY(k, log_total)(total + comp, tie_count, m);
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
        size_t len = n - start < FSM_SUM_BLOCK ? n - start : FSM_SUM_BLOCK;
        ENTRY(k, finish)[op](x + start, y + start, len, m, c);
    }
    return c;
}

/* One group through the split-row steps s (kernels.h) as the split-row plan
 * runs them (driver.inc.c), in chunks of one sum block: the reference point
 * over the chunks' (their maximum, or minimum for a negative scale), the
 * chunks' block sums, the fold, then finish when there is a y. */
static void F(run_split)(const CAT(fsm_split_, SUFFIX) *s, const T *x, T *y, const T *b, size_t n,
                         const fsm_params *prm, int64_t target, double *group_out) {
    double sums[FSM_SPLIT_SUMS * 8] = {0}; /* row_lengths: at most 5 blocks */
    T m = 0, sign = prm->scale_hi < 0 ? (T)-1 : (T)1;
    if (s->ref != NULL) {
        m = -(T)INFINITY;
        for (size_t start = 0; start < n; start += FSM_SUM_BLOCK) {
            T r = sign * s->ref(x + start, n - start < FSM_SUM_BLOCK ? n - start : FSM_SUM_BLOCK, prm);
            m = r > m ? r : m;
        }
        m *= sign;
    }
    for (size_t start = 0; start < n; start += FSM_SUM_BLOCK)
        s->blocks(x, y, b, n, start, n - start < FSM_SUM_BLOCK ? n : start + FSM_SUM_BLOCK, m, prm, target, sums);
    double c = s->fold(x, b, n, m, prm, target, sums, group_out);
    for (size_t start = 0; y != NULL && s->finish != NULL && start < n; start += FSM_SUM_BLOCK)
        s->finish(x, y, b, n, start, n - start < FSM_SUM_BLOCK ? n : start + FSM_SUM_BLOCK, m, prm, target, c);
}

/* row[op] against scalar; streamed, in place and split against itself. */
static void F(check_row)(int op, const T *x, size_t n, size_t y_offset) {
    F(buffer) want = F(buffer_new)(n, y_offset), got = F(buffer_new)(n, y_offset);
    F(buffer) other = F(buffer_new)(n, (y_offset + 5) % MAX_OFFSET);
    ENTRY(reference, row)[op](x, want.data, n, 0);
    ENTRY(tested, row)[op](x, got.data, n, 0);
    F(expect_row)(F(entry_name)("row", op, ""), got.data, want.data, n, 0, NULL);
    F(expect_guards)(F(entry_name)("row", op, ""), &got);

    ENTRY(tested, row)[op](x, other.data, n, 1);
    tested->stream_fence();
    F(expect_row)(F(entry_name)("row", op, " streamed vs plain"), other.data, got.data, n, 1, NULL);
    F(expect_guards)(F(entry_name)("row", op, " streamed"), &other);

    memcpy(other.data, x, n * sizeof(T));
    ENTRY(tested, row)[op](other.data, other.data, n, 0);
    F(expect_row)(F(entry_name)("row", op, " in place vs not"), other.data, got.data, n, 1, NULL);

    size_t blocks = (n + FSM_SUM_BLOCK - 1) / FSM_SUM_BLOCK;
    T sums[2][8], ties[2][8] = {{0}}; /* row_lengths: at most 5 blocks */
    double c_want = F(split_row)(reference, op, x, want.data, n, sums[0], ties[0]);
    double c_got = F(split_row)(tested, op, x, other.data, n, sums[1], ties[1]), no_floor = 0.0;
    F(expect_groups)(F(entry_name)(op == FSM_OP_LOG_SOFTMAX ? "log_total" : "rblocks", op, " folded"), &c_got,
                     &c_want, 1, &no_floor);
    F(expect_row)(F(entry_name)("rblocks", op, " sums"), sums[1], sums[0], blocks, 0, NULL);
    if (op == FSM_OP_LOG_SOFTMAX)
        F(expect_row)(F(entry_name)("rblocks", op, " ties"), ties[1], ties[0], blocks, 1, NULL);
    F(expect_row)(F(entry_name)("rblocks+finish", op, " vs row"), other.data, got.data, n, 1, NULL);
    F(expect_guards)(F(entry_name)("rblocks+finish", op, ""), &other);
    fsm_params unscaled = {.scale_hi = 1.0, .exp_step_hi = 0x1.62e42fefa39efp-1, .grad_scale = 1.0};
    F(run_split)(&ENTRY(tested, split)[op], x, other.data, NULL, n, &unscaled, 0, NULL);
    F(expect_row)(F(entry_name)("split", op, " vs row"), other.data, got.data, n, 1, NULL);
    F(expect_guards)(F(entry_name)("split", op, ""), &other);
    F(buffer_free)(&want), F(buffer_free)(&got), F(buffer_free)(&other);
}

static void F(check_rmax_and_stage)(const T *x, size_t n, size_t y_offset) {
    T got_max = ENTRY(tested, rmax)(x, n), want_max = ENTRY(reference, rmax)(x, n);
    F(expect_row)(F(entry_name)("rmax", -1, ""), &got_max, &want_max, 1, 1, NULL);

    uint8_t *mask = checked_alloc(n);
    double density = rng_uniform();
    for (size_t i = 0; i < n; ++i) mask[i] = rng_uniform() < density;
    T fill = rng_uniform() < 0.5 ? -(T)INFINITY : (T)INFINITY;
    F(buffer) want = F(buffer_new)(n, y_offset), got = F(buffer_new)(n, y_offset);
    ENTRY(reference, stage)(x, mask, want.data, n, fill);
    ENTRY(tested, stage)(x, mask, got.data, n, fill);
    F(expect_row)(F(entry_name)("stage", -1, ""), got.data, want.data, n, 1, NULL);
    F(expect_guards)(F(entry_name)("stage", -1, ""), &got);
    memcpy(got.data, x, n * sizeof(T));
    ENTRY(tested, stage)(got.data, mask, got.data, n, fill);
    F(expect_row)(F(entry_name)("stage", -1, " in place"), got.data, want.data, n, 1, NULL);
    F(buffer_free)(&want), F(buffer_free)(&got);
    free(mask);
}

/* rows[op] on `count` rows of different patterns and alignments: against
 * scalar, and bit-identical to this variant's row kernel. */
static void F(check_row_groups)(int op, size_t n, size_t count) {
    F(buffer) x[FSM_ROW_GROUP], want[FSM_ROW_GROUP], got[FSM_ROW_GROUP];
    const T *xp[FSM_ROW_GROUP];
    T *wp[FSM_ROW_GROUP], *gp[FSM_ROW_GROUP];
    for (size_t g = 0; g < count; ++g) {
        x[g] = F(buffer_new)(n, rng_below(MAX_OFFSET));
        F(fill)(x[g].data, 1, n, (int)rng_below(NUM_PATTERNS));
        want[g] = F(buffer_new)(n, rng_below(MAX_OFFSET)), got[g] = F(buffer_new)(n, rng_below(MAX_OFFSET));
        /* a row in place: y[g] == x[g] */
        if (g % 3 == 1) memcpy(got[g].data, x[g].data, n * sizeof(T));
        xp[g] = g % 3 == 1 ? got[g].data : x[g].data, wp[g] = want[g].data, gp[g] = got[g].data;
    }
    ENTRY(reference, rows)[op](xp, wp, n, count); /* reads the in-place rows before tested writes them */
    ENTRY(tested, rows)[op](xp, gp, n, count);
    for (size_t g = 0; g < count; ++g) {
        F(expect_row)(F(entry_name)("rows", op, ""), gp[g], wp[g], n, 0, NULL);
        F(expect_guards)(F(entry_name)("rows", op, ""), &got[g]);
        ENTRY(tested, row)[op](x[g].data, want[g].data, n, 0);
        F(expect_row)(F(entry_name)("rows", op, " vs row"), gp[g], wp[g], n, 1, NULL);
    }
    for (size_t g = 0; g < count; ++g) F(buffer_free)(&x[g]), F(buffer_free)(&want[g]), F(buffer_free)(&got[g]);
}

/* --- column and short-row kernels -------------------------------------------- */

/* A column problem: n rows of `lanes`, rows `step` apart (negative: the
 * buffer holds them last row first). */
typedef struct {
    F(buffer) buf;
    T *first; /* row 0 */
    ptrdiff_t step;
} F(grid);

static F(grid) F(grid_new)(size_t n, size_t lanes, size_t pad, int reversed) {
    F(grid) g;
    size_t stride = lanes + pad;
    g.buf = F(buffer_new)((n - 1) * stride + lanes, rng_below(MAX_OFFSET));
    g.step = reversed ? -(ptrdiff_t)stride : (ptrdiff_t)stride;
    g.first = reversed ? g.buf.data + (n - 1) * stride : g.buf.data;
    return g;
}

/* The elements between a grid's rows were not written. */
static void F(expect_gaps)(const char *entry, const F(grid) *g, size_t lanes) {
    size_t stride = (size_t)(g->step < 0 ? -g->step : g->step), i = 0;
    while (i < g->buf.len && (i % stride < lanes || F(is_sentinel)(g->buf.data[i]))) ++i;
    count_check(i == g->buf.len, entry, "wrote between the rows");
    F(expect_guards)(entry, &g->buf);
}

static void F(check_columns)(int op, size_t n, size_t lanes) {
    int reversed = (n + lanes) % 4 == 3;
    F(grid) x = F(grid_new)(n, lanes, (n * lanes) % 5, reversed);
    F(grid) want = F(grid_new)(n, lanes, lanes % 3, reversed), got = F(grid_new)(n, lanes, lanes % 3, reversed);
    for (size_t j = 0; j < lanes; ++j) F(fill)(x.first + j, x.step, n, (int)((j + n) % NUM_PATTERNS));
    double *work = checked_alloc(FSM_COLS_WORK_DOUBLES(lanes) * sizeof(double));
    ENTRY(reference, cols)[op](x.first, x.step, want.first, want.step, n, lanes, work);
    ENTRY(tested, cols)[op](x.first, x.step, got.first, got.step, n, lanes, work);
    F(expect_grid)(F(entry_name)("cols", op, ""), got.first, got.step, want.first, want.step, n, lanes, 0, NULL);
    F(expect_gaps)(F(entry_name)("cols", op, ""), &got, lanes);
    /* in place: y == x with the same steps */
    ENTRY(tested, cols)[op](x.first, x.step, x.first, x.step, n, lanes, work);
    F(expect_grid)(F(entry_name)("cols", op, " in place vs not"), x.first, x.step, got.first, got.step, n, lanes,
                   1, NULL);
    free(work);
    F(buffer_free)(&x.buf), F(buffer_free)(&want.buf), F(buffer_free)(&got.buf);
}

/* count rows of n elements, each in its own buffer at its own alignment. */
typedef struct {
    F(buffer) rows[FSM_SHORT_ROW_LANES];
    T *ptr[FSM_SHORT_ROW_LANES];
    size_t count;
} F(row_set);

static void F(row_set_init)(F(row_set) *s, size_t n, size_t count) {
    s->count = count;
    for (size_t g = 0; g < count; ++g) s->rows[g] = F(buffer_new)(n, rng_below(MAX_OFFSET)), s->ptr[g] = s->rows[g].data;
}

static void F(row_set_free)(F(row_set) *s) {
    for (size_t g = 0; g < s->count; ++g) F(buffer_free)(&s->rows[g]);
}

static void F(expect_row_set)(const char *entry, const F(row_set) *got, const F(row_set) *want, size_t n,
                              int bitwise) {
    for (size_t g = 0; g < got->count; ++g) {
        F(expect_row)(entry, got->ptr[g], want->ptr[g], n, bitwise, NULL);
        F(expect_guards)(entry, &got->rows[g]);
    }
}

/* short[op] against scalar and, bit-identical, against this variant's
 * column kernel on the transposed rows; to_lanes and from_lanes against
 * scalar, bit-identical (the whole buffer: lanes past count untouched). */
static void F(check_short_rows)(int op, size_t n, size_t count) {
    const size_t L = FSM_SHORT_ROW_LANES;
    F(row_set) x, want, got;
    F(row_set_init)(&x, n, count), F(row_set_init)(&want, n, count), F(row_set_init)(&got, n, count);
    for (size_t g = 0; g < count; ++g) F(fill)(x.ptr[g], 1, n, (int)((g + n) % NUM_PATTERNS));
    F(buffer) buf_want = F(buffer_new)(n * L, 0), buf_got = F(buffer_new)(n * L, 0);
    const T *const *xp = (const T *const *)x.ptr;

    ENTRY(reference, to_lanes)(xp, n, count, buf_want.data);
    ENTRY(tested, to_lanes)(xp, n, count, buf_got.data);
    F(expect_row)(F(entry_name)("to_lanes", -1, ""), buf_got.data, buf_want.data, n * L, 1, NULL);
    F(expect_guards)(F(entry_name)("to_lanes", -1, ""), &buf_got);
    ENTRY(reference, from_lanes)(buf_want.data, n, count, want.ptr);
    ENTRY(tested, from_lanes)(buf_want.data, n, count, got.ptr);
    F(expect_row_set)(F(entry_name)("from_lanes", -1, ""), &got, &want, n, 1);
    F(expect_row_set)(F(entry_name)("from_lanes", -1, " round trip"), &got, &x, n, 1);

    double *short_work = checked_alloc(FSM_SHORT_ROWS_WORK_DOUBLES * sizeof(double));
    ENTRY(reference, short)[op](xp, want.ptr, n, count, buf_want.data, short_work);
    ENTRY(tested, short)[op](xp, got.ptr, n, count, buf_got.data, short_work);
    F(expect_row_set)(F(entry_name)("short", op, ""), &got, &want, n, 0);

    /* the column kernel on the transposed rows (lane g = row g, step L) */
    double *work = checked_alloc(FSM_COLS_WORK_DOUBLES(count) * sizeof(double));
    ENTRY(tested, to_lanes)(xp, n, count, buf_got.data);
    ENTRY(tested, cols)[op](buf_got.data, (ptrdiff_t)L, buf_got.data, (ptrdiff_t)L, n, count, work);
    ENTRY(tested, from_lanes)(buf_got.data, n, count, want.ptr);
    F(expect_row_set)(F(entry_name)("short", op, " vs cols"), &got, &want, n, 1);

    /* in place: y[g] == x[g] */
    for (size_t g = 0; g < count; ++g) memcpy(want.ptr[g], x.ptr[g], n * sizeof(T));
    ENTRY(tested, short)[op]((const T *const *)want.ptr, want.ptr, n, count, buf_got.data, short_work);
    F(expect_row_set)(F(entry_name)("short", op, " in place vs not"), &want, &got, n, 1);
    free(work), free(short_work);
    F(buffer_free)(&buf_want), F(buffer_free)(&buf_got);
    F(row_set_free)(&x), F(row_set_free)(&want), F(row_set_free)(&got);
}

/* --- family kernels ---------------------------------------------------------- */

/* One family call: its op and parameters, and the inputs it reads. */
typedef struct {
    int op;
    fsm_params prm;
    int with_b, with_y, with_target, in_place;
} F(family_call);

/* The calls of each op: the softmaxes without scale and with a
 * temperature (small, large) and a negative scale; cross entropy with
 * index and probability targets, with and without gradient, smoothing. */
static size_t F(family_calls)(F(family_call) *calls) {
    static const double scales[] = {1.0, 1.0 / 0.7, 20.0, 0x1p-30, -0.75, -3.0};
    size_t count = 0;
    for (int op = FSM_OP_SOFTMAX; op <= FSM_OP_LOG_SOFTMAX; ++op)
        for (size_t s = 0; s < COUNT_OF(scales); ++s)
            calls[count++] = (F(family_call)){op, params_with_scale(scales[s], 0, 1), 0, 1, 0, s % 2};
    calls[count++] = (F(family_call)){FSM_OP_LOGSUMEXP, unscaled_params(0, 1), 0, 0, 0, 0};
    for (int op = FSM_OP_SOFTMAX_BACKWARD; op <= FSM_OP_LOG_SOFTMAX_BACKWARD; ++op)
        for (int in_place = 0; in_place < 2; ++in_place)
            calls[count++] = (F(family_call)){op, unscaled_params(0, 1), 1, 1, 0, in_place};
    static const double smoothing[] = {0.0, 0.1, 1.0}, grad_scale[] = {1.0, 0.25, -2.0};
    for (int probs = 0; probs < 2; ++probs)
        for (int grad = 0; grad < 2; ++grad)
            for (size_t s = 0; s < COUNT_OF(smoothing); ++s)
                calls[count++] = (F(family_call)){FSM_OP_CROSS_ENTROPY, unscaled_params(smoothing[s], grad_scale[s]),
                                                  probs, grad, !probs, 0};
    return count;
}
#define MAX_FAMILY_CALLS 32

/* Fills lane j (or the row, lanes == 1) of b for `call`: probabilities for
 * softmax_backward and cross entropy, log-probabilities for
 * log_softmax_backward. */
static void F(fill_b)(const F(family_call) *call, T *b, ptrdiff_t step, size_t n) {
    if (call->op == FSM_OP_LOG_SOFTMAX_BACKWARD) F(fill_log_probabilities)(b, step, n);
    else F(fill_probabilities)(b, step, n);
}

/* The size of the terms each output of a backward pass or a gradient is
 * the difference of (cancellation makes a relative tolerance meaningless
 * there); 0 for the other ops.  INFINITY where the backward pass's sum
 * (sum(g y), sum(g)) is within its rounding error bound (n eps) of T's
 * overflow: it may overflow in one variant and not in another, and any
 * result agrees.  x, b: lane j of
 * a grid (lanes == 1: a row). */
static void F(output_magnitudes)(const F(family_call) *call, const T *x, ptrdiff_t x_step, const T *b,
                                 ptrdiff_t b_step, size_t n, size_t lanes, double *magnitude) {
    for (size_t j = 0; j < lanes; ++j) {
        double sum_abs = 0.0, exp_total = 0.0, m = -INFINITY;
        for (size_t i = 0; i < n; ++i) {
            double xi = (double)x[(ptrdiff_t)i * x_step + (ptrdiff_t)j];
            double bi = b ? (double)b[(ptrdiff_t)i * b_step + (ptrdiff_t)j] : 0.0;
            sum_abs += call->op == FSM_OP_SOFTMAX_BACKWARD ? fabs(xi * bi) : fabs(xi);
            m = xi > m ? xi : m;
        }
        for (size_t i = 0; i < n; ++i) exp_total += exp((double)x[(ptrdiff_t)i * x_step + (ptrdiff_t)j] - m);
        for (size_t i = 0; i < n; ++i) {
            double xi = (double)x[(ptrdiff_t)i * x_step + (ptrdiff_t)j];
            double bi = b ? (double)b[(ptrdiff_t)i * b_step + (ptrdiff_t)j] : 0.0, mag = 0.0;
            if (call->op == FSM_OP_SOFTMAX_BACKWARD) mag = fabs(bi) * (fabs(xi) + sum_abs);
            if (call->op == FSM_OP_LOG_SOFTMAX_BACKWARD) mag = fabs(xi) + exp(bi) * sum_abs;
            if (call->op == FSM_OP_CROSS_ENTROPY)
                mag = fabs(call->prm.grad_scale) * (exp(xi - m) / exp_total + fabs(bi) + 1.0 / (double)n);
            int sum_may_overflow = sum_abs * (1 + (double)n * T_EPS) >= T_MAX && call->op != FSM_OP_CROSS_ENTROPY;
            magnitude[i * lanes + j] = sum_may_overflow ? INFINITY : mag;
        }
    }
}

/* group_out's tolerance floor: logsumexp = m + log(total) cancels when
 * m < 0; a loss has no cancellation. */
static void F(group_magnitudes)(const F(family_call) *call, const T *x, ptrdiff_t x_step, size_t n,
                                size_t lanes, double *magnitude) {
    for (size_t j = 0; j < lanes; ++j) {
        double m = 0.0; /* the largest |x|; not with fmax, whose reduction crashes GCC 12's aarch64 vectorizer */
        for (size_t i = 0; i < n; ++i) {
            double a = fabs((double)x[(ptrdiff_t)i * x_step + (ptrdiff_t)j]);
            m = a > m ? a : m;
        }
        magnitude[j] = call->op == FSM_OP_LOGSUMEXP ? m + log((double)n) + 1.0 : 0.0;
    }
}

static const char *F(family_note)(const F(family_call) *call) {
    static char note[96];
    snprintf(note, sizeof note, " scale=%g smoothing=%g grad_scale=%g%s%s%s", call->prm.scale_hi,
             call->prm.smoothing, call->prm.grad_scale, call->with_b ? " b" : "", call->with_y ? "" : " y=NULL",
             call->in_place ? " in place" : "");
    return note;
}

/* fsplit[op] on x, in chunks of one sum block: bit-identical to this
 * variant's frow (y_row, group_row). */
static void F(check_fsplit)(const F(family_call) *call, const T *x, size_t n, size_t y_offset, const T *b,
                            int64_t target, const T *y_row, const double *group_row) {
    F(buffer) split = F(buffer_new)(n, y_offset);
    double group_split[FSM_GROUP_RESULTS(1)] = {NAN, NAN};
    if (call->in_place) memcpy(split.data, x, n * sizeof(T)), x = split.data;
    F(run_split)(&ENTRY(tested, fsplit)[call->op], x, call->with_y ? split.data : NULL, b, n, &call->prm, target,
                 group_split);
    const char *entry = F(entry_name)("fsplit", call->op, " vs frow");
    if (call->with_y) F(expect_row)(entry, split.data, y_row, n, 1, NULL);
    F(expect_guards)(entry, &split);
    if (call->op == FSM_OP_LOGSUMEXP || call->op == FSM_OP_CROSS_ENTROPY)
        count_check(same_doubles(group_split, group_row, 1), entry, "a group result differs");
    F(buffer_free)(&split);
}

/* frow[op] of one call on x (n elements at x_offset) against scalar. */
static void F(check_frow)(const F(family_call) *call, const T *x, size_t n, size_t y_offset) {
    int op = call->op;
    F(buffer) b = F(buffer_new)(n, (y_offset + 3) % MAX_OFFSET);
    F(buffer) want = F(buffer_new)(n, y_offset), got = F(buffer_new)(n, y_offset);
    double *magnitude = checked_alloc(n * sizeof(double)), group_mag;
    double group_want[FSM_GROUP_RESULTS(1)] = {NAN, NAN}, group_got[FSM_GROUP_RESULTS(1)] = {NAN, NAN};
    if (call->with_b) F(fill_b)(call, b.data, 1, n);
    int64_t target = call->with_target ? (int64_t)rng_below(n) : 0;
    const T *bp = call->with_b ? b.data : NULL;
    /* in place: y is x (a copy of it in the output buffer) */
    const T *xw = x, *xg = x;
    if (call->in_place) memcpy(want.data, x, n * sizeof(T)), memcpy(got.data, x, n * sizeof(T)), xw = want.data,
                                                                                               xg = got.data;
    T *yw = call->with_y ? want.data : NULL, *yg = call->with_y ? got.data : NULL;
    ENTRY(reference, frow)[op](xw, yw, bp, n, &call->prm, target, group_want);
    ENTRY(tested, frow)[op](xg, yg, bp, n, &call->prm, target, group_got);
    const char *entry = F(entry_name)("frow", op, F(family_note)(call));
    F(output_magnitudes)(call, x, 1, bp, 1, n, 1, magnitude);
    F(group_magnitudes)(call, x, 1, n, 1, &group_mag);
    if (call->with_y) F(expect_row)(entry, got.data, want.data, n, 0, magnitude);
    F(expect_guards)(entry, &got);
    if (op == FSM_OP_LOGSUMEXP || op == FSM_OP_CROSS_ENTROPY)
        F(expect_groups)(entry, group_got, group_want, 1, &group_mag);
    if (!(op == FSM_OP_LOGSUMEXP && call->with_b)) /* a weighted logsumexp is not split */
        F(check_fsplit)(call, x, n, y_offset, bp, target, got.data, group_got);
    free(magnitude);
    F(buffer_free)(&b), F(buffer_free)(&want), F(buffer_free)(&got);
}

/* frows[op] of one call on `count` rows of different patterns and
 * alignments: against scalar, and bit-identical to this variant's frow;
 * present in both tables or in neither. */
static void F(check_frow_groups)(const F(family_call) *call, size_t n, size_t count) {
    int op = call->op;
    count_check((ENTRY(tested, frows)[op] == NULL) == (ENTRY(reference, frows)[op] == NULL),
                F(entry_name)("frows", op, ""), "present in one table only");
    if (ENTRY(tested, frows)[op] == NULL) return;
    F(buffer) x[FSM_ROW_GROUP], b[FSM_ROW_GROUP], want[FSM_ROW_GROUP], got[FSM_ROW_GROUP];
    const T *xw[FSM_ROW_GROUP], *xg[FSM_ROW_GROUP], *bp[FSM_ROW_GROUP];
    T *yw[FSM_ROW_GROUP], *yg[FSM_ROW_GROUP];
    int64_t targets[FSM_ROW_GROUP];
    double groups[3][FSM_ROW_GROUP], *gw[FSM_ROW_GROUP], *gg[FSM_ROW_GROUP], magnitude[FSM_ROW_GROUP];
    double results[3][FSM_ROW_GROUP][FSM_GROUP_RESULTS(1)]; /* each row's [result, sign]; groups: the results */
    double *out_magnitude = checked_alloc(n * sizeof(double));
    for (size_t g = 0; g < count; ++g) {
        x[g] = F(buffer_new)(n, rng_below(MAX_OFFSET)), b[g] = F(buffer_new)(n, rng_below(MAX_OFFSET));
        want[g] = F(buffer_new)(n, rng_below(MAX_OFFSET)), got[g] = F(buffer_new)(n, rng_below(MAX_OFFSET));
        F(fill)(x[g].data, 1, n, (int)rng_below(NUM_PATTERNS));
        if (call->with_b) F(fill_b)(call, b[g].data, 1, n);
        targets[g] = (int64_t)rng_below(n);
        xw[g] = x[g].data, xg[g] = x[g].data, bp[g] = b[g].data, yw[g] = want[g].data, yg[g] = got[g].data;
        if (call->in_place) {
            memcpy(want[g].data, x[g].data, n * sizeof(T)), memcpy(got[g].data, x[g].data, n * sizeof(T));
            xw[g] = want[g].data, xg[g] = got[g].data;
        }
        gw[g] = results[0][g], gg[g] = results[1][g];
    }
    int with_groups = op == FSM_OP_LOGSUMEXP || op == FSM_OP_CROSS_ENTROPY;
    const T *const *b_rows = call->with_b ? bp : NULL;
    ENTRY(reference, frows)[op](xw, call->with_y ? yw : NULL, b_rows, n, count, &call->prm,
                                call->with_target ? targets : NULL, with_groups ? gw : NULL);
    ENTRY(tested, frows)[op](xg, call->with_y ? yg : NULL, b_rows, n, count, &call->prm,
                             call->with_target ? targets : NULL, with_groups ? gg : NULL);
    for (size_t g = 0; g < count; ++g) groups[0][g] = results[0][g][0], groups[1][g] = results[1][g][0];
    const char *entry = F(entry_name)("frows", op, F(family_note)(call));
    for (size_t g = 0; g < count; ++g) {
        F(output_magnitudes)(call, x[g].data, 1, call->with_b ? bp[g] : NULL, 1, n, 1, out_magnitude);
        F(group_magnitudes)(call, x[g].data, 1, n, 1, &magnitude[g]);
        if (call->with_y) F(expect_row)(entry, got[g].data, want[g].data, n, 0, out_magnitude);
        F(expect_guards)(entry, &got[g]);
    }
    if (with_groups) F(expect_groups)(entry, groups[1], groups[0], count, magnitude);
    /* this variant's row kernel, row by row, from fresh copies for the rows in place */
    const char *vs_row = F(entry_name)("frows", op, " vs frow");
    for (size_t g = 0; g < count; ++g) {
        if (call->in_place) memcpy(want[g].data, x[g].data, n * sizeof(T));
        ENTRY(tested, frow)[op](xw[g], call->with_y ? want[g].data : NULL, call->with_b ? bp[g] : NULL, n, &call->prm,
                                targets[g], results[2][g]);
        groups[2][g] = results[2][g][0];
        if (call->with_y) F(expect_row)(vs_row, got[g].data, want[g].data, n, 1, NULL);
    }
    if (with_groups) count_check(same_doubles(groups[1], groups[2], count), vs_row, "a group result differs");
    free(out_magnitude);
    for (size_t g = 0; g < count; ++g)
        F(buffer_free)(&x[g]), F(buffer_free)(&b[g]), F(buffer_free)(&want[g]), F(buffer_free)(&got[g]);
}

/* flanes[op] of one call on an n x lanes column problem against scalar. */
static void F(check_flanes)(const F(family_call) *call, size_t n, size_t lanes) {
    int op = call->op, reversed = (n + lanes) % 4 == 1;
    F(grid) x = F(grid_new)(n, lanes, lanes % 4, reversed), b = F(grid_new)(n, lanes, 1, reversed);
    F(grid) want = F(grid_new)(n, lanes, lanes % 3, reversed), got = F(grid_new)(n, lanes, lanes % 3, reversed);
    double *work = checked_alloc(FSM_FAMILY_WORK_DOUBLES(lanes) * sizeof(double));
    double *magnitude = checked_alloc(n * lanes * sizeof(double));
    double *group_want = checked_alloc((2 * FSM_GROUP_RESULTS(lanes) + lanes) * sizeof(double));
    double *group_got = group_want + FSM_GROUP_RESULTS(lanes), *group_mag = group_got + FSM_GROUP_RESULTS(lanes);
    int64_t *target = checked_alloc(lanes * sizeof(int64_t));
    for (size_t j = 0; j < lanes; ++j) {
        F(fill)(x.first + j, x.step, n, (int)((j + n) % NUM_PATTERNS));
        if (call->with_b) F(fill_b)(call, b.first + j, b.step, n);
        target[j] = (int64_t)rng_below(n);
    }
    const T *bp = call->with_b ? b.first : NULL;
    const T *xw = x.first, *xg = x.first;
    if (call->in_place) {
        for (size_t i = 0; i < n; ++i)
            memcpy(want.first + (ptrdiff_t)i * want.step, x.first + (ptrdiff_t)i * x.step, lanes * sizeof(T)),
                memcpy(got.first + (ptrdiff_t)i * got.step, x.first + (ptrdiff_t)i * x.step, lanes * sizeof(T));
        xw = want.first, xg = got.first;
    }
    ptrdiff_t xw_step = call->in_place ? want.step : x.step, xg_step = call->in_place ? got.step : x.step;
    T *yw = call->with_y ? want.first : NULL, *yg = call->with_y ? got.first : NULL;
    ENTRY(reference, flanes)[op](xw, xw_step, yw, want.step, bp, b.step, n, lanes, &call->prm, target, group_want,
                                 work);
    ENTRY(tested, flanes)[op](xg, xg_step, yg, got.step, bp, b.step, n, lanes, &call->prm, target, group_got, work);
    const char *entry = F(entry_name)("flanes", op, F(family_note)(call));
    F(output_magnitudes)(call, x.first, x.step, bp, b.step, n, lanes, magnitude);
    F(group_magnitudes)(call, x.first, x.step, n, lanes, group_mag);
    if (call->with_y)
        F(expect_grid)(entry, got.first, got.step, want.first, want.step, n, lanes, 0, magnitude);
    F(expect_gaps)(entry, &got, lanes);
    if (op == FSM_OP_LOGSUMEXP || op == FSM_OP_CROSS_ENTROPY)
        F(expect_groups)(entry, group_got, group_want, lanes, group_mag);
    free(work), free(magnitude), free(group_want), free(target);
    F(buffer_free)(&x.buf), F(buffer_free)(&b.buf), F(buffer_free)(&want.buf), F(buffer_free)(&got.buf);
}

/* --- every check of this dtype ----------------------------------------------- */

static void F(check_all_rows)(void) {
    size_t lengths[MAX_ROW_LENGTHS], count = row_lengths(lengths);
    F(family_call) calls[MAX_FAMILY_CALLS];
    size_t num_calls = F(family_calls)(calls);
    for (size_t l = 0; l < count; ++l) {
        size_t n = lengths[l];
        for (int pattern = 0; pattern < NUM_PATTERNS; ++pattern) {
            size_t x_offset = (n + (size_t)pattern) % MAX_OFFSET, y_offset = (3 * n + (size_t)pattern) % MAX_OFFSET;
            snprintf(current_case, sizeof current_case, "%s n=%zu pattern=%s x at +%zu, y at +%zu", DTYPE, n,
                     pattern_names[pattern], x_offset, y_offset);
            F(buffer) x = F(buffer_new)(n, x_offset);
            F(fill)(x.data, 1, n, pattern);
            for (int op = 0; op < FSM_NUM_PLAIN_OPS; ++op) F(check_row)(op, x.data, n, y_offset);
            F(check_rmax_and_stage)(x.data, n, y_offset);
            for (size_t c = 0; c < num_calls; ++c) F(check_frow)(&calls[c], x.data, n, y_offset);
            F(buffer_free)(&x);
        }
        snprintf(current_case, sizeof current_case, "%s n=%zu, rows of mixed patterns", DTYPE, n);
        for (int op = 0; op < FSM_NUM_PLAIN_OPS; ++op) {
            F(check_row_groups)(op, n, 1 + n % FSM_ROW_GROUP);
            F(check_row_groups)(op, n, FSM_ROW_GROUP);
        }
        for (size_t c = 0; c < num_calls; ++c) {
            F(check_frow_groups)(&calls[c], n, 1 + (n + c) % FSM_ROW_GROUP);
            F(check_frow_groups)(&calls[c], n, FSM_ROW_GROUP);
        }
    }
}

/* The column problem of n rows and `lanes` lanes, the turn-th one. */
static void F(check_column_problem)(size_t n, size_t lanes, size_t turn) {
    F(family_call) calls[MAX_FAMILY_CALLS];
    size_t num_calls = F(family_calls)(calls);
    snprintf(current_case, sizeof current_case, "%s n=%zu lanes=%zu, lanes of mixed patterns", DTYPE, n, lanes);
    for (int op = 0; op < FSM_NUM_PLAIN_OPS; ++op) F(check_columns)(op, n, lanes);
    /* every family call on the smaller problems, one in eight in turn on the larger */
    for (size_t c = 0; c < num_calls; ++c)
        if (n * lanes <= 1024 || c % 8 == turn % 8) F(check_flanes)(&calls[c], n, lanes);
}

static void F(check_short_row_problem)(size_t n, size_t count, size_t turn) {
    (void)turn;
    snprintf(current_case, sizeof current_case, "%s n=%zu count=%zu, rows of mixed patterns", DTYPE, n, count);
    for (int op = 0; op < FSM_NUM_PLAIN_OPS; ++op) F(check_short_rows)(op, n, count);
}

static void F(check_all)(void) {
    F(check_all_rows)();
    for_each_pair(column_rows, COUNT_OF(column_rows), column_lanes, COUNT_OF(column_lanes), F(check_column_problem));
    for_each_pair(short_lengths, COUNT_OF(short_lengths), short_counts, COUNT_OF(short_counts),
                  F(check_short_row_problem));
}

#undef CAT_
#undef CAT
#undef ENTRY
/* the parameters of this file */
#undef T
#undef F
#undef T_EPS
#undef T_MAX
#undef T_TRUE_MIN
#undef EXP_RANGE
#undef ORDERED
#undef DTYPE
#undef SUFFIX
