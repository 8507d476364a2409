/* test_engine_window.c -- SLIDING, SESSION and COUNT windows, GROUP BY
 * without a window, HAVING, FILTER; expected rows worked out by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_util.h"

static void run_sliding(const char *sql, const char *const *want)
{
    eng_rule *r = must_compile(sql);
    collect c = {0};
    PUSH(r, &c, 0, "k", S(1), "v=1");
    PUSH(r, &c, 1, "k", S(5), "v=2");
    PUSH(r, &c, 2, "k", S(12), "v=4");  /* (2,12]: 5, 12 */
    PUSH(r, &c, 3, "k", S(11), "v=8");  /* out of order, within lateness: (1,11]: 5, 11 */
    PUSH(r, &c, 4, "k", S(15), "v=16"); /* (5,15]: 11, 12, 15 */
    PUSH(r, &c, 5, "k", S(2), "v=100"); /* 2 < 15 - 5: late */
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_sliding(void **state)
{
    (void)state;
    /* sum and count can remove: the running-state path. */
    const char *want[] = {
        "k@1 [-9,1): key=k s=1 n=1",    "k@5 [-5,5): key=k s=3 n=2",
        "k@12 [2,12): key=k s=6 n=2",   "k@11 [1,11): key=k s=10 n=2",
        "k@15 [5,15): key=k s=28 n=3",  "late k@2: v=100",
        NULL};
    run_sliding("CREATE RULE r AS SELECT key, sum(v) AS s, count(*) AS n FROM s "
                "GROUP BY key, SLIDING(10s) WITH (lateness = '5s') EMIT TO 'x'",
                want);
    /* max cannot remove: rebuilt from the buffered rows, same sums. */
    const char *want2[] = {
        "k@1 [-9,1): key=k s=1 m=1",    "k@5 [-5,5): key=k s=3 m=2",
        "k@12 [2,12): key=k s=6 m=4",   "k@11 [1,11): key=k s=10 m=8",
        "k@15 [5,15): key=k s=28 m=16", "late k@2: v=100",
        NULL};
    run_sliding("CREATE RULE r AS SELECT key, sum(v) AS s, max(v) AS m FROM s "
                "GROUP BY key, SLIDING(10s) WITH (lateness = '5s') EMIT TO 'x'",
                want2);
}

static void test_session(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, count(*) AS n, sum(v) AS s FROM s "
                               "GROUP BY key, SESSION(5s) WITH (lateness = '20s') EMIT TO 'x'");
    collect c = {0};
    PUSH(r, &c, 0, "a", S(1), "v=1");
    PUSH(r, &c, 1, "a", S(3), "v=2");
    PUSH(r, &c, 2, "b", S(4), "v=10");
    PUSH(r, &c, 3, "a", S(20), "v=4"); /* closes a [1,8) and b [4,9) */
    PUSH(r, &c, 4, "a", S(6), "v=8");  /* late, merges into a's closed session: r1 */
    PUSH(r, &c, 5, "a", S(40), "v=1"); /* closes a [20,25) */
    PUSH(r, &c, 6, "a", S(48), "v=2"); /* closes [40,45) */
    PUSH(r, &c, 7, "a", S(44), "v=4"); /* late: bridges [40] and [48] into [40,53) */
    PUSH(r, &c, 8, "a", S(60), "v=0"); /* closes [40,53): an update of [40,45) */
    PUSH(r, &c, 9, "c", S(1), "v=5");  /* 1 + 5 + 20 <= 60: side output */
    const char *want[] = {
        "a@8 [1,8): key=a n=2 s=3",     "b@9 [4,9): key=b n=1 s=10",
        "a@11 [1,11) r1: key=a n=3 s=11", "a@25 [20,25): key=a n=1 s=4",
        "a@45 [40,45): key=a n=1 s=1",  "a@53 [40,53) r1: key=a n=3 s=7",
        "late c@1: v=5",
        NULL};
    assert_false(check_lines(&c, want));
    assert_true(c.ids[0] != c.ids[2]);
    assert_true(c.ids[4] != c.ids[5]);
    collect_free(&c);
    eng_rule_free(r);
}

static void test_count(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, sum(v) AS s FROM s "
                               "GROUP BY key, COUNT(3, 2) EMIT TO 'x'");
    collect c = {0};
    for (int i = 1; i <= 6; i++) {
        char spec[32];
        snprintf(spec, sizeof(spec), "v=%d", i);
        PUSH(r, &c, (uint64_t)i, "k", S(i), spec);
        PUSH(r, &c, (uint64_t)(100 + i), "j", S(i), "v=1");
    }
    /* Rows 3 and 5 of each key: the last 3 rows. */
    const char *want[] = {"k@3 [1,3): key=k s=6", "j@3 [1,3): key=j s=3",
                          "k@5 [3,5): key=k s=12", "j@5 [3,5): key=j s=3", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_group_having_filter(void **state)
{
    (void)state;
    eng_rule *r = must_compile(
        "CREATE RULE r AS SELECT key, count(*) AS n, avg(v) AS a, "
        "count(*) FILTER (WHERE v > 2) AS big FROM s GROUP BY key HAVING n >= 2 EMIT TO 'x'");
    collect c = {0};
    PUSH(r, &c, 0, "a", S(1), "v=1");
    PUSH(r, &c, 1, "b", S(2), "v=2");
    PUSH(r, &c, 2, "a", S(3), "v=3");
    PUSH(r, &c, 3, "a", S(4), "v=5");
    const char *want[] = {"a@3: key=a n=2 a=2 big=1", "a@4: key=a n=3 a=3 big=2", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);

    /* HAVING on a window, on an aggregate not in the select list. */
    r = must_compile("CREATE RULE r AS SELECT key, count(*) AS n FROM s "
                     "GROUP BY key, TUMBLING(10s) HAVING max(v) > 2 EMIT TO 'x'");
    PUSH(r, &c, 0, "a", S(1), "v=1");
    PUSH(r, &c, 1, "b", S(2), "v=3");
    PUSH(r, &c, 2, "b", S(3), "v=1");
    PUSH(r, &c, 3, "a", S(12), "v=1");
    const char *want2[] = {"b@10 [0,10): key=b n=2", NULL};
    assert_false(check_lines(&c, want2));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_window_gap_and_cleanup(void **state)
{
    (void)state;
    /* A long gap in event time: the windows with no rows are skipped
     * without visiting each; groups whose panes are gone are freed. */
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, count(*) AS n FROM s "
                               "GROUP BY key, HOPPING(10s, 1s) EMIT TO 'x'");
    collect c = {0};
    PUSH(r, &c, 0, "a", S(1), "v=1");
    size_t with_a = eng_rule_state_bytes(r);
    PUSH(r, &c, 1, "b", S(1000000), "v=1"); /* 11.5 days later */
    /* a@1 is in the 10 windows starting -8..1. */
    assert_int_equal(c.n, 10);
    assert_string_equal(c.lines[0], "a@2 [-8,2): key=a n=1");
    assert_string_equal(c.lines[9], "a@11 [1,11): key=a n=1");
    assert_true(eng_rule_state_bytes(r) <= with_a); /* a is gone, b is there */
    collect_free(&c);
    eng_rule_free(r);
}

static void test_idle_tick(void **state)
{
    (void)state;
    /* Without idle_timeout a tick does nothing; with it, a quiet stream's
     * window closes once processing time is past its end + the timeout. */
    const char *sqls[2] = {
        "CREATE RULE r AS SELECT key, count(*) AS n FROM s GROUP BY key, TUMBLING(10s) "
        "EMIT TO 'x'",
        "CREATE RULE r AS SELECT key, count(*) AS n FROM s GROUP BY key, TUMBLING(10s) "
        "WITH (idle_timeout = '30s') EMIT TO 'x'"};
    for (int i = 0; i < 2; i++) {
        eng_rule *r = must_compile(sqls[i]);
        collect c = {0};
        PUSH(r, &c, 0, "a", S(1), "v=1");
        assert_int_equal(eng_rule_tick(r, S(39), collect_emit, &c, NULL, 0), WEIR_OK);
        assert_int_equal(c.n, 0);
        assert_int_equal(eng_rule_tick(r, S(41), collect_emit, &c, NULL, 0), WEIR_OK);
        assert_int_equal(c.n, i);
        if (i)
            assert_string_equal(c.lines[0], "a@10 [0,10): key=a n=1");
        collect_free(&c);
        eng_rule_free(r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sliding),
        cmocka_unit_test(test_session),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_group_having_filter),
        cmocka_unit_test(test_window_gap_and_cleanup),
        cmocka_unit_test(test_idle_tick),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
