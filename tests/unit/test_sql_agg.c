/* test_sql_agg.c -- every aggregate of the table against a direct
 * computation on random data (with NULLs); merge(a, b) against adding
 * everything; remove against never having added; checkpoint round trips
 * (byte-identical re-serialization, every truncation rejected); the
 * percentile sketch's documented rank-error bound on 100k uniform and
 * log-normal values, merged or not; regr_slope on a known line; the edge
 * cases (no input, INT overflow in sum, text in min/max, type errors). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "sql/agg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- data --------------------------------------------------------------- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_u64(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double uniform(void)
{
    return (double)(next_u64() >> 11) / 9007199254740992.0;
}
static double normal(void)
{
    double u = uniform(), v = uniform();
    return sqrt(-2 * log(u + 1e-300)) * cos(2 * M_PI * v);
}

#define ROWS 2000

typedef struct dataset {
    size_t n;
    rec_value y[ROWS]; /* the first argument */
    rec_value x[ROWS]; /* the second (regressions) */
    int64_t ts[ROWS];  /* event times, shuffled, some equal */
} dataset;

/* Doubles around 100 with spread 15, a tenth NULL; ts random in a small
 * range so that ties exist. */
static void make_data(dataset *d, size_t n)
{
    d->n = n;
    for (size_t i = 0; i < n; i++) {
        bool null_y = next_u64() % 10 == 0, null_x = next_u64() % 13 == 0;
        double x = uniform() * 50;
        d->x[i] = null_x ? (rec_value){.type = REC_NULL}
                         : (rec_value){.type = REC_DOUBLE, .u.d = x};
        d->y[i] = null_y ? (rec_value){.type = REC_NULL}
                         : (rec_value){.type = REC_DOUBLE, .u.d = 100 + 2 * x + 15 * normal()};
        d->ts[i] = (int64_t)(next_u64() % 500);
    }
}

/* ---- driving an aggregate ---------------------------------------------- */

typedef struct agg_run {
    const sql_agg *agg;
    void *state;
} agg_run;

static rec_value params_for(const sql_agg *g, int *n)
{
    *n = g->min_params;
    return (rec_value){.type = REC_DOUBLE, .u.d = 0.9};
}

static void *new_state(const sql_agg *g)
{
    void *s = calloc(1, g->state_size);
    assert_non_null(s);
    int np;
    rec_value p = params_for(g, &np);
    assert_int_equal(g->init(s, &p, np, NULL), WEIR_OK);
    return s;
}

static void add_rows(const sql_agg *g, void *s, const dataset *d, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        rec_value args[2] = {d->y[i], d->x[i]};
        sql_eval_error err = {{0}};
        int rc = g->add(s, args, d->ts[i], &err);
        if (rc != WEIR_OK)
            fail_msg("%s add: %s", g->name, err.msg);
    }
}

static rec_value result_of(const sql_agg *g, const void *s, arena *a)
{
    rec_value out;
    sql_eval_error err = {{0}};
    int rc = g->result(s, &out, a, &err);
    if (rc != WEIR_OK)
        fail_msg("%s result: %s", g->name, err.msg);
    return out;
}

static bool close_enough(double a, double b, double rel)
{
    if (a == b)
        return true;
    return fabs(a - b) <= rel * fmax(1.0, fmax(fabs(a), fabs(b)));
}

/* ---- direct computations ------------------------------------------------ */

/* Non-NULL values of y (and pairs with x), as plain arrays. */
typedef struct plain {
    double y[ROWS], x[ROWS], py[ROWS], px[ROWS];
    int64_t ts[ROWS];
    size_t n, np;
} plain;

static void flatten(const dataset *d, plain *p)
{
    p->n = p->np = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (d->y[i].type != REC_NULL) {
            p->ts[p->n] = d->ts[i];
            p->y[p->n++] = d->y[i].u.d;
        }
        if (d->y[i].type != REC_NULL && d->x[i].type != REC_NULL) {
            p->py[p->np] = d->y[i].u.d;
            p->px[p->np++] = d->x[i].u.d;
        }
    }
}

static double mean_of(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i];
    return s / (double)n;
}
static double ss_of(const double *v, size_t n)
{
    double m = mean_of(v, n), s = 0;
    for (size_t i = 0; i < n; i++)
        s += (v[i] - m) * (v[i] - m);
    return s;
}
static double cross_of(const plain *p)
{
    double mx = mean_of(p->px, p->np), my = mean_of(p->py, p->np), s = 0;
    for (size_t i = 0; i < p->np; i++)
        s += (p->px[i] - mx) * (p->py[i] - my);
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The expected result of aggregate `name` over the data; NAN if NULL. */
static double direct(const char *name, const plain *p, size_t rows)
{
    size_t n = p->n;
    if (!strcmp(name, "count_star"))
        return (double)rows;
    if (!strcmp(name, "count"))
        return (double)n;
    if (!strcmp(name, "sum")) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += p->y[i];
        return s;
    }
    if (!strcmp(name, "avg") || !strcmp(name, "mean"))
        return mean_of(p->y, n);
    if (!strcmp(name, "min") || !strcmp(name, "max")) {
        double m = p->y[0];
        for (size_t i = 1; i < n; i++)
            m = !strcmp(name, "min") ? fmin(m, p->y[i]) : fmax(m, p->y[i]);
        return m;
    }
    if (!strcmp(name, "first") || !strcmp(name, "last")) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++) {
            bool take = !strcmp(name, "first") ? p->ts[i] < p->ts[best] : p->ts[i] >= p->ts[best];
            if (take)
                best = i;
        }
        return p->y[best];
    }
    if (!strcmp(name, "stddev") || !strcmp(name, "stddev_samp"))
        return sqrt(ss_of(p->y, n) / (double)(n - 1));
    if (!strcmp(name, "stddev_pop"))
        return sqrt(ss_of(p->y, n) / (double)n);
    if (!strcmp(name, "variance") || !strcmp(name, "var_samp"))
        return ss_of(p->y, n) / (double)(n - 1);
    if (!strcmp(name, "var_pop"))
        return ss_of(p->y, n) / (double)n;
    if (!strcmp(name, "regr_slope"))
        return cross_of(p) / ss_of(p->px, p->np);
    if (!strcmp(name, "regr_intercept"))
        return mean_of(p->py, p->np) - cross_of(p) / ss_of(p->px, p->np) * mean_of(p->px, p->np);
    if (!strcmp(name, "covar_pop"))
        return cross_of(p) / (double)p->np;
    if (!strcmp(name, "covar_samp"))
        return cross_of(p) / (double)(p->np - 1);
    if (!strcmp(name, "corr"))
        return cross_of(p) / sqrt(ss_of(p->px, p->np) * ss_of(p->py, p->np));
    return NAN;
}

static bool is_percentile(const sql_agg *g)
{
    return strstr(g->name, "percentile") != NULL;
}

/* The rank error of estimate e for quantile q over sorted v[0..n): the
 * distance from q to the nearest fraction of values at or below e. */
static double rank_error(const double *sorted, size_t n, double e, double q)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first index with value >= e */
        size_t mid = (lo + hi) / 2;
        if (sorted[mid] < e)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t lt = lo;
    while (hi < n && sorted[hi] <= e)
        hi++;
    /* Any rank in [lt, hi] is consistent with e. */
    double r_lo = (double)lt / (double)n, r_hi = (double)hi / (double)n;
    if (q < r_lo)
        return r_lo - q;
    if (q > r_hi)
        return q - r_hi;
    return 0;
}

/* Checks a result against the direct computation (or, for the
 * percentile, against the rank bound). */
static void check_result(const sql_agg *g, rec_value got, const plain *p, size_t rows,
                         const char *what)
{
    if (is_percentile(g)) {
        double sorted[ROWS];
        memcpy(sorted, p->y, p->n * sizeof(double));
        qsort(sorted, p->n, sizeof(double), cmp_double);
        assert_int_equal(got.type, REC_DOUBLE);
        double err = rank_error(sorted, p->n, got.u.d, 0.9);
        if (err > 0.01)
            fail_msg("%s %s: rank error %g", g->name, what, err);
        return;
    }
    double want = direct(g->name, p, rows);
    double v = got.type == REC_INT ? (double)got.u.i : got.u.d;
    if (got.type != REC_INT && got.type != REC_DOUBLE)
        fail_msg("%s %s: result type %s", g->name, what, rec_type_name(got.type));
    if (!close_enough(v, want, 1e-9))
        fail_msg("%s %s: got %.17g want %.17g", g->name, what, v, want);
}

/* ---- tests ------------------------------------------------------------- */

static dataset data;
static plain flat;

static void test_against_direct(void **state)
{
    make_data(&data, ROWS);
    flatten(&data, &flat);
    arena a;
    arena_init(&a, 0);
    size_t n;
    const sql_agg *t = sql_agg_table(&n);
    for (size_t i = 0; i < n; i++) {
        void *s = new_state(&t[i]);
        add_rows(&t[i], s, &data, 0, data.n);
        check_result(&t[i], result_of(&t[i], s, &a), &flat, data.n, "direct");
        free(s);
    }
    arena_free(&a);
}

/* merge(a, b) gives what adding every row gives, at several split points
 * and also merged the other way round for the order-free aggregates. */
static void test_merge_equals_add(void **state)
{
    make_data(&data, ROWS);
    flatten(&data, &flat);
    arena a;
    arena_init(&a, 0);
    size_t n;
    const sql_agg *t = sql_agg_table(&n);
    size_t splits[] = {0, 1, 7, ROWS / 2, ROWS - 1, ROWS};
    for (size_t i = 0; i < n; i++) {
        const sql_agg *g = &t[i];
        for (size_t k = 0; k < sizeof splits / sizeof splits[0]; k++) {
            void *all = new_state(g), *left = new_state(g), *right = new_state(g);
            add_rows(g, all, &data, 0, data.n);
            add_rows(g, left, &data, 0, splits[k]);
            add_rows(g, right, &data, splits[k], data.n);
            assert_int_equal(g->merge(left, right, NULL), WEIR_OK);
            rec_value m = result_of(g, left, &a), w = result_of(g, all, &a);
            check_result(g, m, &flat, data.n, "merged");
            if (!is_percentile(g)) {
                double mv = m.type == REC_INT ? (double)m.u.i : m.u.d;
                double wv = w.type == REC_INT ? (double)w.u.i : w.u.d;
                if (!close_enough(mv, wv, 1e-9))
                    fail_msg("%s split %zu: merged %.17g, added %.17g", g->name, splits[k], mv, wv);
                assert_int_equal(m.type, w.type);
            }
            free(all);
            free(left);
            free(right);
        }
    }
    arena_free(&a);
}

/* For the removable aggregates: add everything, remove the first half,
 * and the result is that of the second half alone. */
static void test_remove(void **state)
{
    make_data(&data, ROWS);
    arena a;
    arena_init(&a, 0);
    size_t n;
    const sql_agg *t = sql_agg_table(&n);
    int removable = 0;
    for (size_t i = 0; i < n; i++) {
        const sql_agg *g = &t[i];
        if (!g->remove)
            continue;
        removable++;
        void *s = new_state(g), *half = new_state(g);
        add_rows(g, s, &data, 0, data.n);
        for (size_t r = 0; r < data.n / 2; r++) {
            rec_value args[2] = {data.y[r], data.x[r]};
            assert_int_equal(g->remove(s, args, data.ts[r], NULL), WEIR_OK);
        }
        add_rows(g, half, &data, data.n / 2, data.n);
        rec_value got = result_of(g, s, &a), want = result_of(g, half, &a);
        assert_int_equal(got.type, want.type);
        double gv = got.type == REC_INT ? (double)got.u.i : got.u.d;
        double wv = want.type == REC_INT ? (double)want.u.i : want.u.d;
        if (!close_enough(gv, wv, 1e-9))
            fail_msg("%s remove: %.17g want %.17g", g->name, gv, wv);
        /* Removing everything gives the empty result. */
        for (size_t r = data.n / 2; r < data.n; r++) {
            rec_value args[2] = {data.y[r], data.x[r]};
            assert_int_equal(g->remove(s, args, data.ts[r], NULL), WEIR_OK);
        }
        void *empty = new_state(g);
        rec_value e = result_of(g, s, &a), e0 = result_of(g, empty, &a);
        assert_int_equal(e.type, e0.type);
        free(s);
        free(half);
        free(empty);
    }
    assert_true(removable >= 10);
    arena_free(&a);
}

/* serialize -> deserialize -> serialize is byte-identical and the result is
 * the same; every truncation and a wrong version byte are rejected. Done on
 * empty states, small states and full ones. */
static void test_checkpoint_round_trip(void **state)
{
    make_data(&data, ROWS);
    arena a;
    arena_init(&a, 0);
    size_t n;
    const sql_agg *t = sql_agg_table(&n);
    size_t sizes[] = {0, 3, 300, ROWS};
    for (size_t i = 0; i < n; i++) {
        const sql_agg *g = &t[i];
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            void *s = new_state(g), *back = calloc(1, g->state_size);
            add_rows(g, s, &data, 0, sizes[k]);
            weir_buf b1, b2;
            buf_init(&b1, 0);
            buf_init(&b2, 0);
            assert_int_equal(g->serialize(s, &b1), WEIR_OK);
            assert_int_equal(g->deserialize(back, buf_head(&b1), buf_used(&b1)), WEIR_OK);
            assert_int_equal(g->serialize(back, &b2), WEIR_OK);
            assert_int_equal(buf_used(&b1), buf_used(&b2));
            assert_memory_equal(buf_head(&b1), buf_head(&b2), buf_used(&b1));
            rec_value r1 = result_of(g, s, &a), r2 = result_of(g, back, &a);
            assert_true(rec_value_equal(&r1, &r2));
            /* The restored state keeps working like the original. */
            add_rows(g, s, &data, sizes[k], data.n);
            add_rows(g, back, &data, sizes[k], data.n);
            r1 = result_of(g, s, &a);
            r2 = result_of(g, back, &a);
            assert_true(rec_value_equal(&r1, &r2));
            /* Truncations and a bad version. */
            for (size_t cut = 0; cut < buf_used(&b1); cut++)
                assert_int_equal(g->deserialize(back, buf_head(&b1), cut), WEIR_ECORRUPT);
            uint8_t *bytes = buf_head(&b1);
            bytes[0] = 0x7f;
            assert_int_equal(g->deserialize(back, bytes, buf_used(&b1)), WEIR_ECORRUPT);
            bytes[0] = 0x01;
            uint8_t extra[1] = {0};
            assert_int_equal(buf_append(&b1, extra, 1), WEIR_OK);
            assert_int_equal(g->deserialize(back, buf_head(&b1), buf_used(&b1)), WEIR_ECORRUPT);
            buf_free(&b1);
            buf_free(&b2);
            free(s);
            free(back);
        }
    }
    arena_free(&a);
}

/* ---- the percentile bound ----------------------------------------------- */

#define BIG 100000

/* mid and tail are the rank-error bounds; gap, when not 0, is the value
 * error allowed instead when the rank bound is missed (tied data). */
static void percentile_bound(double (*gen)(void), const char *label, double mid, double tails,
                             double gap)
{
    static double v[BIG], sorted[BIG];
    for (size_t i = 0; i < BIG; i++)
        v[i] = gen();
    memcpy(sorted, v, sizeof v);
    qsort(sorted, BIG, sizeof(double), cmp_double);
    const sql_agg *g = sql_agg_find("percentile_approx", 17);
    assert_non_null(g);
    static const double qs[] = {0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5,
                                0.75, 0.9, 0.95, 0.99, 0.999, 1};
    double worst = 0, worst_tail = 0;
    for (size_t k = 0; k < sizeof qs / sizeof qs[0]; k++) {
        rec_value p = {.type = REC_DOUBLE, .u.d = qs[k]};
        /* One digest fed everything, and ten digests merged (panes). */
        void *one = calloc(1, g->state_size), *merged = calloc(1, g->state_size);
        assert_int_equal(g->init(one, &p, 1, NULL), WEIR_OK);
        assert_int_equal(g->init(merged, &p, 1, NULL), WEIR_OK);
        for (int part = 0; part < 10; part++) {
            void *pane = calloc(1, g->state_size);
            assert_int_equal(g->init(pane, &p, 1, NULL), WEIR_OK);
            for (size_t i = (size_t)part * BIG / 10; i < (size_t)(part + 1) * BIG / 10; i++) {
                rec_value x = {.type = REC_DOUBLE, .u.d = v[i]};
                assert_int_equal(g->add(one, &x, 0, NULL), WEIR_OK);
                assert_int_equal(g->add(pane, &x, 0, NULL), WEIR_OK);
            }
            assert_int_equal(g->merge(merged, pane, NULL), WEIR_OK);
            free(pane);
        }
        rec_value r1, r2;
        assert_int_equal(g->result(one, &r1, NULL, NULL), WEIR_OK);
        assert_int_equal(g->result(merged, &r2, NULL, NULL), WEIR_OK);
        double e1 = rank_error(sorted, BIG, r1.u.d, qs[k]);
        double e2 = rank_error(sorted, BIG, r2.u.d, qs[k]);
        double e = fmax(e1, e2);
        if (gap > 0) {
            double truth = sorted[(size_t)fmin(qs[k] * BIG, BIG - 1)];
            assert_true(fabs(r1.u.d - truth) < gap && fabs(r2.u.d - truth) < gap);
        }
        bool tail = qs[k] <= 0.01 || qs[k] >= 0.99;
        if (tail)
            worst_tail = fmax(worst_tail, e);
        else
            worst = fmax(worst, e);
        if (qs[k] == 0)
            assert_true(r1.u.d == sorted[0] && r2.u.d == sorted[0]);
        if (qs[k] == 1)
            assert_true(r1.u.d == sorted[BIG - 1] && r2.u.d == sorted[BIG - 1]);
        free(one);
        free(merged);
    }
    printf("  %s: worst rank error %.5f (middle), %.5f (tails)\n", label, worst, worst_tail);
    assert_true(worst <= mid);
    assert_true(worst_tail <= tails);
}

static double gen_uniform(void)
{
    return uniform() * 1000;
}
static double gen_lognormal(void)
{
    return exp(2 * normal());
}
static double gen_repeated(void)
{
    return (double)(next_u64() % 7); /* heavy ties */
}

static void test_percentile_bound(void **state)
{
    percentile_bound(gen_uniform, "uniform", 0.01, 0.002, 0);
    percentile_bound(gen_lognormal, "log-normal", 0.01, 0.002, 0);
    percentile_bound(gen_repeated, "7 distinct values", 0.05, 0.002, 1.0);
}

static void test_percentile_params(void **state)
{
    const sql_agg *g = sql_agg_find("APPROX_PERCENTILE", 17);
    assert_non_null(g);
    void *s = calloc(1, g->state_size);
    sql_eval_error err = {{0}};
    rec_value bad[] = {{.type = REC_DOUBLE, .u.d = 1.5}, {.type = REC_STRING, .u.s = {"x", 1}}};
    assert_int_equal(g->init(s, &bad[0], 1, &err), WEIR_EINVAL);
    assert_true(err.msg[0] != '\0');
    assert_int_equal(g->init(s, &bad[1], 1, &err), WEIR_EINVAL);
    rec_value p2[] = {{.type = REC_DOUBLE, .u.d = 0.5}, {.type = REC_INT, .u.i = 5}};
    assert_int_equal(g->init(s, p2, 2, &err), WEIR_EINVAL);
    p2[1].u.i = 200;
    assert_int_equal(g->init(s, p2, 2, &err), WEIR_OK);
    rec_value out;
    assert_int_equal(g->result(s, &out, NULL, NULL), WEIR_OK);
    assert_int_equal(out.type, REC_NULL);
    rec_value one = {.type = REC_INT, .u.i = 42};
    assert_int_equal(g->add(s, &one, 0, NULL), WEIR_OK);
    assert_int_equal(g->result(s, &out, NULL, NULL), WEIR_OK);
    assert_true(out.type == REC_DOUBLE && out.u.d == 42.0);
    printf("  percentile state: %zu bytes\n", g->state_size);
    assert_true(g->state_size <= 8 * 1024);
    free(s);
}

/* ---- specific semantics ------------------------------------------------- */

static void *agg_state(const char *name, const sql_agg **g)
{
    *g = sql_agg_find(name, strlen(name));
    assert_non_null(*g);
    return new_state(*g);
}

static void test_regr_known_line(void **state)
{
    arena a;
    arena_init(&a, 0);
    const char *names[] = {"regr_slope", "regr_intercept", "corr"};
    double want[] = {3.0, 2.0, 1.0};
    for (int k = 0; k < 3; k++) {
        const sql_agg *g;
        void *s = agg_state(names[k], &g);
        for (int i = 0; i < 1000; i++) {
            double x = 1e6 + i * 0.5; /* an offset that breaks naive sums */
            rec_value args[2] = {{.type = REC_DOUBLE, .u.d = 3 * (x - 1e6) + 2},
                                 {.type = REC_DOUBLE, .u.d = x - 1e6}};
            assert_int_equal(g->add(s, args, 0, NULL), WEIR_OK);
        }
        rec_value r = result_of(g, s, &a);
        assert_int_equal(r.type, REC_DOUBLE);
        if (!close_enough(r.u.d, want[k], 1e-12))
            fail_msg("%s: %.17g", names[k], r.u.d);
        free(s);
    }
    /* A vertical line (x constant) has no slope. */
    const sql_agg *g;
    void *s = agg_state("regr_slope", &g);
    for (int i = 0; i < 5; i++) {
        rec_value args[2] = {{.type = REC_INT, .u.i = i}, {.type = REC_INT, .u.i = 7}};
        assert_int_equal(g->add(s, args, 0, NULL), WEIR_OK);
    }
    assert_int_equal(result_of(g, s, &a).type, REC_NULL);
    free(s);
    arena_free(&a);
}

static void test_empty_and_nulls(void **state)
{
    arena a;
    arena_init(&a, 0);
    size_t n;
    const sql_agg *t = sql_agg_table(&n);
    rec_value nulls[2] = {{.type = REC_NULL}, {.type = REC_NULL}};
    for (size_t i = 0; i < n; i++) {
        void *s = new_state(&t[i]);
        rec_value r = result_of(&t[i], s, &a);
        if (!strncmp(t[i].name, "count", 5))
            assert_true(r.type == REC_INT && r.u.i == 0);
        else
            assert_int_equal(r.type, REC_NULL);
        assert_int_equal(t[i].add(s, nulls, 0, NULL), WEIR_OK);
        r = result_of(&t[i], s, &a);
        if (!strcmp(t[i].name, "count_star"))
            assert_true(r.type == REC_INT && r.u.i == 1);
        else if (!strcmp(t[i].name, "count"))
            assert_true(r.type == REC_INT && r.u.i == 0);
        else
            assert_int_equal(r.type, REC_NULL);
        free(s);
    }
    arena_free(&a);
}

static void test_sum_types(void **state)
{
    arena a;
    arena_init(&a, 0);
    const sql_agg *g;
    void *s = agg_state("sum", &g);
    rec_value v = {.type = REC_INT, .u.i = 5};
    assert_int_equal(g->add(s, &v, 0, NULL), WEIR_OK);
    v.u.i = 7;
    assert_int_equal(g->add(s, &v, 0, NULL), WEIR_OK);
    rec_value r = result_of(g, s, &a);
    assert_true(r.type == REC_INT && r.u.i == 12);
    v.u.i = INT64_MAX; /* overflow: promoted to DOUBLE */
    assert_int_equal(g->add(s, &v, 0, NULL), WEIR_OK);
    r = result_of(g, s, &a);
    assert_int_equal(r.type, REC_DOUBLE);
    assert_true(close_enough(r.u.d, 9223372036854775819.0, 1e-15));
    free(s);

    /* A compensated double sum: 1 + 1e-16 * 10^4 keeps the small terms. */
    s = agg_state("sum", &g);
    v = (rec_value){.type = REC_DOUBLE, .u.d = 1.0};
    assert_int_equal(g->add(s, &v, 0, NULL), WEIR_OK);
    v.u.d = 1e-16;
    for (int i = 0; i < 10000; i++)
        assert_int_equal(g->add(s, &v, 0, NULL), WEIR_OK);
    r = result_of(g, s, &a);
    assert_true(fabs(r.u.d - (1.0 + 1e-12)) < 1e-20);
    /* Type errors leave the state alone. */
    sql_eval_error err = {{0}};
    v = (rec_value){.type = REC_STRING, .u.s = {"1", 1}};
    assert_int_equal(g->add(s, &v, 0, &err), WEIR_EINVAL);
    assert_true(err.msg[0] != '\0');
    free(s);
    arena_free(&a);
}

static void test_text_values(void **state)
{
    arena a;
    arena_init(&a, 0);
    const char *words[] = {"pump", "valve", "alpha", "zeta", "motor"};
    int64_t ts[] = {30, 10, 50, 20, 50};
    const char *names[] = {"min", "max", "first", "last"};
    const char *want[] = {"alpha", "zeta", "valve", "motor"};
    for (int k = 0; k < 4; k++) {
        const sql_agg *g;
        void *s = agg_state(names[k], &g);
        for (int i = 0; i < 5; i++) {
            char copy[16]; /* the state must not keep pointers into input */
            size_t len = strlen(words[i]);
            memcpy(copy, words[i], len);
            rec_value v = {.type = REC_STRING, .u.s = {copy, (uint32_t)len}};
            assert_int_equal(g->add(s, &v, ts[i], NULL), WEIR_OK);
            memset(copy, '#', sizeof copy);
        }
        rec_value r = result_of(g, s, &a);
        assert_int_equal(r.type, REC_STRING);
        assert_int_equal(r.u.s.len, strlen(want[k]));
        assert_memory_equal(r.u.s.p, want[k], r.u.s.len);
        /* Mixing types in min/max is an error; text too long for the state too. */
        if (k < 2) {
            rec_value i = {.type = REC_INT, .u.i = 1};
            sql_eval_error err = {{0}};
            assert_int_equal(g->add(s, &i, 0, &err), WEIR_EINVAL);
        }
        char big[SQL_AGG_TEXT_MAX + 1];
        memset(big, k == 1 ? 'z' : 'a', sizeof big);
        rec_value v = {.type = REC_STRING, .u.s = {big, sizeof big}};
        int rc = g->add(s, &v, k == 3 ? 99 : 0, NULL);
        assert_int_equal(rc, WEIR_ETOOBIG);
        free(s);
    }
    arena_free(&a);
}

static void test_lookup(void **state)
{
    size_t n;
    const sql_agg *t = sql_agg_table(&n);
    for (size_t i = 0; i < n; i++) {
        assert_ptr_equal(sql_agg_find(t[i].name, strlen(t[i].name)), &t[i]);
        assert_non_null(t[i].help);
        assert_true(t[i].state_size > 0);
    }
    /* The memory per state that agg.h documents. */
    static const struct {
        const char *name;
        size_t bytes;
    } sizes[] = {{"count", 8},       {"sum", 40},         {"avg", 24},
                 {"stddev", 24},     {"min", 296},        {"last", 296},
                 {"regr_slope", 48}, {"percentile_approx", 7016}};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        assert_int_equal(sql_agg_find(sizes[i].name, strlen(sizes[i].name))->state_size,
                         sizes[i].bytes);
    assert_non_null(sql_agg_find("StdDev", 6));
    assert_null(sql_agg_find("median", 6));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_against_direct),
        cmocka_unit_test(test_merge_equals_add),
        cmocka_unit_test(test_remove),
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_percentile_bound),
        cmocka_unit_test(test_percentile_params),
        cmocka_unit_test(test_regr_known_line),
        cmocka_unit_test(test_empty_and_nulls),
        cmocka_unit_test(test_sum_types),
        cmocka_unit_test(test_text_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
