/* test_lstats.c -- latency summaries: nearest-rank percentiles, population
 * standard deviation, histogram buckets, the sample bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "base/lstats.h"

#include <math.h>

static void test_empty(void **state)
{
    (void)state;
    lstats s;
    lstats_summary m;
    lstats_init(&s, 0);
    lstats_summarise(&s, &m);
    assert_int_equal(m.n, 0);
    assert_true(m.min == 0 && m.max == 0 && m.avg == 0 && m.std == 0);
    lstats_free(&s);
}

static void test_one_to_hundred(void **state)
{
    (void)state;
    lstats s;
    lstats_summary m;
    lstats_init(&s, 0);
    for (int i = 100; i >= 1; i--) /* unsorted on purpose */
        assert_int_equal(lstats_add(&s, i), WEIR_OK);
    lstats_summarise(&s, &m);
    assert_int_equal(m.n, 100);
    assert_true(m.min == 1 && m.max == 100);
    assert_true(fabs(m.avg - 50.5) < 1e-12);
    assert_true(m.p95 == 95 && m.p99 == 99); /* nearest rank */
    /* population std of 1..100: sqrt((100^2 - 1) / 12) */
    assert_true(fabs(m.std - sqrt(9999.0 / 12.0)) < 1e-9);
    lstats_free(&s);
}

static void test_small_sets_rank(void **state)
{
    (void)state;
    lstats s;
    lstats_summary m;
    lstats_init(&s, 0);
    lstats_add(&s, 3.5);
    lstats_summarise(&s, &m);
    assert_true(m.p95 == 3.5 && m.p99 == 3.5 && m.std == 0);
    lstats_add(&s, 1.0);
    lstats_summarise(&s, &m);
    assert_true(m.min == 1.0 && m.p95 == 3.5 && m.max == 3.5);
    lstats_free(&s);
}

static void test_histogram(void **state)
{
    (void)state;
    lstats s;
    uint64_t c[LSTATS_N_BOUNDS + 1];
    lstats_init(&s, 0);
    lstats_add(&s, 0.01);  /* <= 0.05 */
    lstats_add(&s, 0.05);  /* <= 0.05 (bounds are inclusive) */
    lstats_add(&s, 0.7);   /* <= 1 */
    lstats_add(&s, 1e6);   /* above every bound */
    lstats_histogram(&s, c);
    uint64_t total = 0;
    for (int i = 0; i <= LSTATS_N_BOUNDS; i++)
        total += c[i];
    assert_int_equal(total, 4);
    assert_int_equal(c[0], 2);
    assert_int_equal(c[4], 1);
    assert_int_equal(c[LSTATS_N_BOUNDS], 1);
    for (int i = 1; i < LSTATS_N_BOUNDS; i++)
        assert_true(lstats_bounds_ms[i] > lstats_bounds_ms[i - 1]);
    lstats_free(&s);
}

static void test_bound(void **state)
{
    (void)state;
    lstats s;
    lstats_summary m;
    lstats_init(&s, 3);
    for (int i = 0; i < 5; i++)
        lstats_add(&s, i);
    assert_int_equal(s.dropped, 2);
    lstats_summarise(&s, &m);
    assert_int_equal(m.n, 3);
    assert_true(m.max == 2);
    lstats_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),          cmocka_unit_test(test_one_to_hundred),
        cmocka_unit_test(test_small_sets_rank), cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
