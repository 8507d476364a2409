/* test_engine_rule.c -- the compiled rule (engine/rule.h): projection,
 * filters, output names and ids, tumbling and hopping windows with late
 * records, stats, explain, compile errors, limits. Expected rows are
 * worked out by hand in the comments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_util.h"

static void test_map_projection(void **state)
{
    (void)state;
    eng_rule *r = must_compile(
        "CREATE RULE r AS SELECT key, temp * 2 AS t2, CASE WHEN temp > 20 THEN 'hot' ELSE 'ok' "
        "END AS level, CAST(n AS DOUBLE) AS nd, meta->>'fw' AS fw, abs(n - 10) FROM s "
        "WHERE temp IS NOT NULL EMIT TO 'stream:out'");
    assert_int_equal(eng_rule_n_inputs(r), 1);
    assert_string_equal(eng_rule_input(r, 0), "s");
    assert_string_equal(eng_rule_target(r), "stream:out");
    assert_int_equal(eng_rule_n_cols(r), 6);
    assert_string_equal(eng_rule_col(r, 0), "key");
    assert_string_equal(eng_rule_col(r, 1), "t2");
    assert_string_equal(eng_rule_col(r, 4), "fw");
    assert_string_equal(eng_rule_col(r, 5), "abs(n - 10)");
    collect c = {0};
    assert_int_equal(PUSH(r, &c, 0, "d1", S(1), "temp=10.5,n=3,meta={\"fw\":\"1.2\"}"), WEIR_OK);
    assert_int_equal(PUSH(r, &c, 1, "d2", S(2), "temp=null,n=1"), WEIR_OK);
    assert_int_equal(PUSH(r, &c, 2, "d1", S(3), "temp=25,n=4"), WEIR_OK);
    const char *want[] = {
        "d1@1: key=d1 t2=21 level=ok nd=3 fw=1.2 abs(n - 10)=7",
        "d1@3: key=d1 t2=50 level=hot nd=4 fw=null abs(n - 10)=6",
        NULL};
    assert_false(check_lines(&c, want));
    /* Ids: (input, partition, offset, row); the same input gives the same id. */
    assert_true(c.ids[0] != c.ids[1]);
    {
        eng_rule *r2 = must_compile("SELECT temp FROM s");
        collect c2 = {0};
        PUSH(r2, &c2, 0, "d1", S(1), "temp=1");
        assert_true(c2.ids[0] == c.ids[0]);
        collect_free(&c2);
        eng_rule_free(r2);
    }
    eng_rule_stats st;
    eng_rule_get_stats(r, &st);
    assert_int_equal(st.records_in, 3);
    assert_int_equal(st.records_out, 2);
    assert_int_equal(st.watermark, S(3));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_map_star_and_errors(void **state)
{
    (void)state;
    eng_rule *r = must_compile("SELECT *, temp + 1 AS t1 FROM s WHERE temp > 1");
    collect c = {0};
    assert_int_equal(PUSH(r, &c, 0, "a", S(1), "temp=2,unit=C"), WEIR_OK);
    /* A type error: counted, the record skipped, the rule goes on. */
    assert_int_equal(PUSH(r, &c, 1, "a", S(2), "temp=hot"), WEIR_EINVAL);
    assert_int_equal(PUSH(r, &c, 2, "a", S(3), "temp=5"), WEIR_OK);
    const char *want[] = {"a@1: temp=2 unit=C t1=3", "a@3: temp=5 t1=6", NULL};
    assert_false(check_lines(&c, want));
    eng_rule_stats st;
    eng_rule_get_stats(r, &st);
    assert_int_equal(st.errors, 1);
    collect_free(&c);
    eng_rule_free(r);
}

static void test_compile_errors(void **state)
{
    (void)state;
    struct {
        const char *sql;
        int rc;
    } cases[] = {
        {"SELECT x FROM nosuch", WEIR_ENOTFOUND},
        {"SELECT nofn(x) FROM s", WEIR_EINVAL},
        {"SELECT key, avg(x) FROM s GROUP BY key, TUMBLING(5s) HAVING y > 1", WEIR_EINVAL},
        {"SELECT x, avg(y) FROM s GROUP BY key", WEIR_EINVAL},
        {"SELECT x FROM s ORDER BY x", WEIR_EUNSUPPORTED},
        {"SELECT x FROM s WHERE avg(x) > 1", WEIR_EINVAL},
        {"SELECT q.x FROM s", WEIR_EINVAL},
        {"SELECT x FROM s HAVING x > 1", WEIR_EINVAL},
        {"SELECT lag(x, 0) FROM s", WEIR_EINVAL},
        {"SELECT a.x FROM s a JOIN t b ON a.k > b.k WITHIN 5s", WEIR_EUNSUPPORTED},
        {"CREATE RULE r AS SELECT x FROM s WITH (lateness = 'soon') EMIT TO 'x'", WEIR_EINVAL},
        {"CREATE RULE r AS SELECT x FROM s WITH (max_state = 'lots') EMIT TO 'x'", WEIR_EINVAL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        eng_rule *r = NULL;
        sql_error err = {0};
        int rc = compile_rule(cases[i].sql, NULL, &r, &err);
        if (rc != cases[i].rc)
            fprintf(stderr, "%s: got %s (%s)\n", cases[i].sql, weir_err_name(rc), err.msg);
        assert_int_equal(rc, cases[i].rc);
        assert_null(r);
        assert_true(err.msg[0] != 0);
    }
}

static void test_tumbling(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, avg(temp) AS a, count(*) AS n, "
                               "window_end - window_start AS len FROM s "
                               "GROUP BY key, TUMBLING(10s) EMIT TO 'stream:x'");
    collect c = {0};
    PUSH(r, &c, 0, "d1", S(1), "temp=1");
    PUSH(r, &c, 1, "d2", S(2), "temp=10");
    PUSH(r, &c, 2, "d1", S(5), "temp=3");
    assert_int_equal(c.n, 0); /* nothing closed yet */
    /* ts 11: the watermark passes 10, [0,10) closes for both keys, in the
     * order the groups appeared. */
    PUSH(r, &c, 3, "d1", S(11), "temp=5");
    /* ts 25: [10,20) closes (only d1 has rows there). */
    PUSH(r, &c, 4, "d2", S(25), "temp=7");
    const char *want[] = {
        "d1@10 [0,10): key=d1 a=2 n=2 len=10000000000",
        "d2@10 [0,10): key=d2 a=10 n=1 len=10000000000",
        "d1@20 [10,20): key=d1 a=5 n=1 len=10000000000",
        NULL};
    assert_false(check_lines(&c, want));
    /* The id is the window and the group, nothing else. */
    assert_true(c.ids[0] != c.ids[1]);
    eng_rule_stats st;
    eng_rule_get_stats(r, &st);
    assert_int_equal(st.records_out, 3);
    assert_true(st.state_bytes > 0);
    collect_free(&c);
    eng_rule_free(r);
}

static void test_hopping_late(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, sum(v) AS s FROM s "
                               "GROUP BY key, HOPPING(4s, 2s) WITH (lateness = '3s') "
                               "EMIT TO 'stream:x'");
    collect c = {0};
    PUSH(r, &c, 0, "k", S(1), "v=1");
    PUSH(r, &c, 1, "k", S(3), "v=2");
    PUSH(r, &c, 2, "k", S(5), "v=4");
    /* ts 9 closes the windows ending at 2, 4, 6, 8. */
    PUSH(r, &c, 3, "k", S(9), "v=8");
    /* ts 3: its windows [0,4) and [2,6) are past end + 3s = 7, 9 <= 9:
     * side output. */
    PUSH(r, &c, 4, "k", S(3), "v=100");
    /* ts 5: [2,6) is beyond, [4,8) is closed but 8 + 3 > 9: updated. */
    PUSH(r, &c, 5, "k", S(5), "v=100");
    /* ts 13 closes [6,10) and [8,12). */
    PUSH(r, &c, 6, "k", S(13), "v=1");
    const char *want[] = {
        "k@2 [-2,2): key=k s=1",
        "k@4 [0,4): key=k s=3",
        "k@6 [2,6): key=k s=6",
        "k@8 [4,8): key=k s=4",
        "late k@3: v=100",
        "k@8 [4,8) r1: key=k s=104",
        "k@10 [6,10): key=k s=8",
        "k@12 [8,12): key=k s=8",
        NULL};
    assert_false(check_lines(&c, want));
    /* The update keeps the window's identity but not its id (revision). */
    assert_true(c.ids[3] != c.ids[5]);
    eng_rule_stats st;
    eng_rule_get_stats(r, &st);
    assert_int_equal(st.late, 1);
    collect_free(&c);
    eng_rule_free(r);
}

static void test_hopping_out_of_order_max_delay(void **state)
{
    (void)state;
    /* max_delay 2s: the watermark trails the newest ts by 2s, so a record
     * 2s out of order still lands before its window closes. */
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, count(*) AS n, max(v) AS m FROM s "
                               "GROUP BY key, TUMBLING(5s) WITH (max_delay = 2s) EMIT TO 'x'");
    collect c = {0};
    PUSH(r, &c, 0, "a", S(1), "v=1");
    PUSH(r, &c, 1, "a", S(6), "v=2"); /* wm 4: [0,5) still open */
    PUSH(r, &c, 2, "a", S(4), "v=9"); /* in order enough */
    PUSH(r, &c, 3, "a", S(7), "v=3"); /* wm 5: closes [0,5) */
    PUSH(r, &c, 4, "a", S(3), "v=50"); /* late, lateness 0: side output */
    const char *want[] = {"a@5 [0,5): key=a n=2 m=9", "late a@3: v=50", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_multi_key_late_first_emission(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, zone, count(*) AS n, "
                               "sum(v) FILTER (WHERE v > 1) AS big FROM s "
                               "GROUP BY key, zone, TUMBLING(5s) WITH (lateness = '10s') "
                               "EMIT TO 'x'");
    collect c = {0};
    PUSH(r, &c, 0, "a", S(1), "zone=1,v=1");
    PUSH(r, &c, 1, "a", S(2), "zone=2,v=5");
    PUSH(r, &c, 2, "a", S(7), "zone=1,v=3"); /* closes [0,5) */
    /* Late within lateness for a group that had no row there: its first
     * emission (revision 0), at once. */
    PUSH(r, &c, 3, "b", S(3), "zone=1,v=2");
    /* Late for a/1, which was emitted: revision 1. */
    PUSH(r, &c, 4, "a", S(4), "zone=1,v=2");
    const char *want[] = {
        "a/1@5 [0,5): key=a zone=1 n=1 big=null",
        "a/2@5 [0,5): key=a zone=2 n=1 big=5",
        "b/1@5 [0,5): key=b zone=1 n=1 big=2",
        "a/1@5 [0,5) r1: key=a zone=1 n=2 big=2",
        NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_memory_limit(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, avg(v) FROM s "
                               "GROUP BY key, TUMBLING(5s) WITH (max_state = '8k') EMIT TO 'x'");
    collect c = {0};
    int rc = WEIR_OK;
    char key[32];
    int i;
    for (i = 0; i < 1000 && rc == WEIR_OK; i++) {
        snprintf(key, sizeof(key), "dev%d", i);
        rc = PUSH(r, &c, (uint64_t)i, key, S(1), "v=1");
    }
    assert_int_equal(rc, WEIR_ETOOBIG);
    assert_true(i > 3);
    assert_true(eng_rule_state_bytes(r) <= 8192);
    collect_free(&c);
    eng_rule_free(r);

    eng_limits lim = {.max_state_bytes = 1 << 20, .max_groups = 10};
    sql_error err;
    assert_int_equal(compile_rule("SELECT key, count(*) FROM s GROUP BY key", &lim, &r, &err),
                     WEIR_OK);
    rc = WEIR_OK;
    for (i = 0; i < 100 && rc == WEIR_OK; i++) {
        snprintf(key, sizeof(key), "dev%d", i);
        rc = PUSH(r, &c, (uint64_t)i, key, S(1), "v=1");
    }
    assert_int_equal(rc, WEIR_ETOOBIG);
    assert_int_equal(i, 11);
    collect_free(&c);
    eng_rule_free(r);
}

static void test_explain(void **state)
{
    (void)state;
    eng_rule *r = must_compile("EXPLAIN CREATE RULE r AS SELECT key, avg(temp) AS a FROM s "
                               "WHERE temp > 0 GROUP BY key, HOPPING(5s, 1s) HAVING avg(temp) > 1 "
                               "WITH (lateness = '2s') EMIT TO 'stream:x'");
    weir_buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(eng_rule_explain(r, &b), WEIR_OK);
    assert_int_equal(buf_append(&b, "", 1), WEIR_OK);
    const char *s = (const char *)buf_head(&b);
    assert_non_null(strstr(s, "\"op\":\"aggregate\""));
    assert_non_null(strstr(s, "\"window\":\"HOPPING\""));
    assert_non_null(strstr(s, "\"pane_ns\":1000000000"));
    assert_non_null(strstr(s, "\"having\""));
    assert_non_null(strstr(s, "\"lateness_ns\":2000000000"));
    /* avg(temp) of the select list and of HAVING share one state. */
    const char *first = strstr(s, "\"call\"");
    assert_non_null(first);
    assert_null(strstr(first + 1, "\"call\""));
    buf_free(&b);
    eng_rule_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_projection),
        cmocka_unit_test(test_map_star_and_errors),
        cmocka_unit_test(test_compile_errors),
        cmocka_unit_test(test_tumbling),
        cmocka_unit_test(test_hopping_late),
        cmocka_unit_test(test_hopping_out_of_order_max_delay),
        cmocka_unit_test(test_multi_key_late_first_emission),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_explain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
