/* test_engine_state.c -- state functions (changes, lag, time_since_change,
 * changed_at), the interval join (inner, left, extra condition), and a
 * sensor -> valve delay computed two ways on a generated sequence. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_util.h"
#include "sql/eval.h"

static void test_lag_changes(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, v, lag(v) AS p, lag(v, 2) AS p2, "
                               "changes(v) AS ch, changed_at(v) AS at FROM s EMIT TO 'x'");
    collect c = {0};
    PUSH(r, &c, 0, "a", S(1), "v=on");
    PUSH(r, &c, 1, "b", S(2), "v=1");
    PUSH(r, &c, 2, "a", S(3), "v=on");
    PUSH(r, &c, 3, "a", S(4), "v=off");
    PUSH(r, &c, 4, "b", S(5), "v=1.0"); /* 1 = 1.0: no change */
    PUSH(r, &c, 5, "a", S(6), "v=on");
    const char *want[] = {
        "a@1: key=a v=on p=null p2=null ch=false at=null",
        "b@2: key=b v=1 p=null p2=null ch=false at=null",
        "a@3: key=a v=on p=on p2=null ch=false at=null",
        "a@4: key=a v=off p=on p2=on ch=true at=4000000000",
        "b@5: key=b v=1 p=1 p2=null ch=false at=null",
        "a@6: key=a v=on p=off p2=on ch=true at=6000000000",
        NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
}

/* Machine m1: the sensor flips at 3, 10, 20 and the valve follows 2, 1, 4 s
 * later; machine m2: sensor at 4, 15, valve 3 s and 0 s later (same record).
 * One reading per machine per second carries both states. */
static int sensor_of(int m, int t)
{
    int flips = m == 1 ? (t >= 3) + (t >= 10) + (t >= 20) : (t >= 4) + (t >= 15);
    return flips & 1;
}

static int valve_of(int m, int t)
{
    int flips = m == 1 ? (t >= 5) + (t >= 11) + (t >= 24) : (t >= 7) + (t >= 15);
    return flips & 1;
}

static void test_delay_merged_stream(void **state)
{
    (void)state;
    eng_rule *r = must_compile(
        "CREATE RULE delay AS SELECT key AS machine, time_since_change(sensor) / 1000000000 AS "
        "delay_s FROM m WHERE changes(valve) EMIT TO 'stream:delays'");
    collect c = {0};
    uint64_t off = 0;
    for (int t = 0; t < 30; t++)
        for (int m = 1; m <= 2; m++) {
            char spec[64];
            snprintf(spec, sizeof(spec), "sensor=%s,valve=%s", sensor_of(m, t) ? "open" : "shut",
                     valve_of(m, t) ? "open" : "shut");
            assert_int_equal(PUSH(r, &c, off++, m == 1 ? "m1" : "m2", S(t), spec), WEIR_OK);
        }
    const char *want[] = {
        "m1@5: machine=m1 delay_s=2", "m2@7: machine=m2 delay_s=3",
        "m1@11: machine=m1 delay_s=1", "m2@15: machine=m2 delay_s=0",
        "m1@24: machine=m1 delay_s=4", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
}

/* Rows of one rule become records of the next. */
typedef struct chain {
    eng_rule *next;
    uint32_t input;
    uint64_t off;
    collect *out;
} chain;

static int chain_emit(void *arg, const eng_row *row)
{
    chain *ch = arg;
    arena a;
    arena_init(&a, 1 << 16);
    record rec = {.ts = row->ts, .key = row->key, .key_len = (uint16_t)row->key_len};
    rec.fields = arena_alloc(&a, (row->n_cols + 1) * sizeof(rec_field));
    for (uint32_t i = 0; i < row->n_cols; i++) {
        rec.fields[i].name = row->names[i];
        rec.fields[i].name_len = (uint16_t)strlen(row->names[i]);
        rec.fields[i].v = row->vals[i];
    }
    rec.n_fields = row->n_cols;
    eng_input_rec in = {.input = ch->input, .partition = 0, .offset = ch->off++,
                        .commit_ns = row->ts, .rec = &rec};
    char err[256];
    int rc = eng_rule_push(ch->next, &in, collect_emit, ch->out, err, sizeof(err));
    arena_free(&a);
    return rc;
}

static void test_delay_by_join(void **state)
{
    (void)state;
    /* Stage 1: the changes of each stream; stage 2: join them per machine. */
    eng_rule *sc = must_compile("CREATE RULE sc AS SELECT ts AS at FROM sensor "
                                "WHERE changes(state) EMIT TO 'stream:sc'");
    eng_rule *vc = must_compile("CREATE RULE vc AS SELECT ts AS at FROM valve "
                                "WHERE changes(state) EMIT TO 'stream:vc'");
    eng_rule *j = must_compile(
        "CREATE RULE d AS SELECT s.key AS machine, (v.at - s.at) / 1000000000 AS delay_s "
        "FROM sc s JOIN vc v ON s.key = v.key AND v.at >= s.at WITHIN 5s EMIT TO 'x'");
    collect c = {0};
    chain to_s = {j, 0, 0, &c}, to_v = {j, 1, 0, &c};
    uint64_t off = 0;
    arena a;
    arena_init(&a, 1 << 20);
    for (int t = 0; t < 30; t++)
        for (int m = 1; m <= 2; m++) {
            const char *key = m == 1 ? "m1" : "m2";
            char spec[32];
            snprintf(spec, sizeof(spec), "state=%d", sensor_of(m, t));
            eng_input_rec in = {.input = 0, .offset = off++, .commit_ns = S(t),
                                .rec = mkrec(&a, key, S(t), spec)};
            assert_int_equal(eng_rule_push(sc, &in, chain_emit, &to_s, NULL, 0), WEIR_OK);
            snprintf(spec, sizeof(spec), "state=%d", valve_of(m, t));
            in.rec = mkrec(&a, key, S(t), spec);
            assert_int_equal(eng_rule_push(vc, &in, chain_emit, &to_v, NULL, 0), WEIR_OK);
        }
    const char *want[] = {
        "m1@5: machine=m1 delay_s=2", "m2@7: machine=m2 delay_s=3",
        "m1@11: machine=m1 delay_s=1", "m2@15: machine=m2 delay_s=0",
        "m1@24: machine=m1 delay_s=4", NULL};
    assert_false(check_lines(&c, want));
    arena_free(&a);
    collect_free(&c);
    eng_rule_free(sc);
    eng_rule_free(vc);
    eng_rule_free(j);
}

static void test_delay_one_join_rule(void **state)
{
    (void)state;
    /* The same delays from one rule: state functions per side in a join. */
    eng_rule *j = must_compile(
        "CREATE RULE d AS SELECT s.key AS machine, (v.ts - s.ts) / 1000000000 AS delay_s "
        "FROM sensor s JOIN valve v ON s.key = v.key AND v.ts >= s.ts WITHIN 5s "
        "WHERE changes(s.state) AND changes(v.state) EMIT TO 'x'");
    collect c = {0};
    uint64_t off = 0;
    for (int t = 0; t < 30; t++)
        for (int m = 1; m <= 2; m++) {
            const char *key = m == 1 ? "m1" : "m2";
            char spec[32];
            snprintf(spec, sizeof(spec), "state=%d", sensor_of(m, t));
            assert_int_equal(push_in(j, &c, 0, 0, off, key, S(t), spec), WEIR_OK);
            snprintf(spec, sizeof(spec), "state=%d", valve_of(m, t));
            assert_int_equal(push_in(j, &c, 1, 0, off++, key, S(t), spec), WEIR_OK);
        }
    const char *want[] = {
        "m1@5: machine=m1 delay_s=2", "m2@7: machine=m2 delay_s=3",
        "m1@11: machine=m1 delay_s=1", "m2@15: machine=m2 delay_s=0",
        "m1@24: machine=m1 delay_s=4", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(j);
    /* An unqualified argument cannot tell its side. */
    eng_rule *bad = NULL;
    sql_error err;
    assert_int_equal(compile_rule("SELECT s.key FROM sensor s JOIN valve v ON s.key = v.key "
                                  "WITHIN 5s WHERE changes(state)",
                                  NULL, &bad, &err),
                     WEIR_EINVAL);
    assert_null(bad);
}

static void test_state_fn_outside_rules(void **state)
{
    (void)state;
    arena a;
    arena_init(&a, 1 << 16);
    sql_stmt *st;
    sql_error perr;
    const char *q = "SELECT changes(x) FROM s";
    assert_int_equal(sql_parse(q, strlen(q), &a, &st, &perr), WEIR_OK);
    record *rec = mkrec(&a, "k", 1, "x=1");
    sql_row row = {.rec = rec};
    rec_value v;
    sql_eval_error ee = {{0}};
    assert_int_equal(sql_eval(st->select->items[0].expr, &row, &v, &a, &ee), WEIR_EINVAL);
    assert_non_null(strstr(ee.msg, "continuous rules"));
    arena_free(&a);
}

static void test_join_inner(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT a.key AS k, a.x AS ax, b.y AS yb FROM a "
                               "JOIN b ON a.key = b.key WITHIN 5s EMIT TO 'x'");
    assert_int_equal(eng_rule_n_inputs(r), 2);
    assert_string_equal(eng_rule_input(r, 1), "b");
    collect c = {0};
    push_in(r, &c, 0, 0, 0, "k1", S(1), "x=1");
    push_in(r, &c, 1, 0, 0, "k1", S(3), "y=10");  /* pairs with a@1 */
    push_in(r, &c, 1, 0, 1, "k1", S(10), "y=20"); /* 9 s from a@1: no */
    push_in(r, &c, 0, 0, 1, "k1", S(8), "x=2");   /* pairs with b@3 and b@10 */
    push_in(r, &c, 1, 0, 2, "k2", S(9), "y=30");  /* no partner */
    const char *want[] = {"k1@3: k=k1 ax=1 yb=10", "k1@8: k=k1 ax=2 yb=10",
                          "k1@10: k=k1 ax=2 yb=20", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);

    /* An extra condition on the pair, SELECT * (qualified names). */
    r = must_compile("SELECT * FROM a JOIN b ON a.key = b.key AND b.y > a.x WITHIN 5s");
    push_in(r, &c, 0, 0, 0, "k", S(1), "x=5");
    push_in(r, &c, 1, 0, 0, "k", S(2), "y=3");
    push_in(r, &c, 1, 0, 1, "k", S(3), "y=7");
    const char *want2[] = {"k@3: a.x=5 b.y=7", NULL};
    assert_false(check_lines(&c, want2));
    collect_free(&c);
    eng_rule_free(r);
}

static void test_join_left(void **state)
{
    (void)state;
    eng_rule *r = must_compile("CREATE RULE r AS SELECT a.key AS k, a.x AS ax, b.y AS yb FROM a "
                               "LEFT JOIN b ON a.key = b.key WITHIN 2s EMIT TO 'x'");
    collect c = {0};
    push_in(r, &c, 0, 0, 0, "k1", S(1), "x=1");
    push_in(r, &c, 0, 0, 1, "k2", S(2), "x=2");
    push_in(r, &c, 1, 0, 0, "k1", S(2), "y=5");
    /* The watermark passes 2 + 2: a@2 of k2 has no partner. */
    push_in(r, &c, 1, 0, 1, "k3", S(10), "y=0");
    /* Far behind: side output. */
    push_in(r, &c, 0, 0, 2, "k1", S(3), "x=9");
    const char *want[] = {"k1@2: k=k1 ax=1 yb=5", "k2@2: k=k2 ax=2 yb=null",
                          "late k1@3: x=9", NULL};
    assert_false(check_lines(&c, want));
    eng_rule_stats st;
    eng_rule_get_stats(r, &st);
    assert_int_equal(st.late, 1);
    collect_free(&c);
    eng_rule_free(r);
}

static void test_join_aggregate(void **state)
{
    (void)state;
    /* Pairs: (x=1,y=10)@2, (2,10)@3, (1,20)@4, (2,20)@4. */
    eng_rule *r = must_compile("CREATE RULE r AS SELECT a.key AS k, count(*) AS n, "
                               "sum(b.y - a.x) AS s FROM a JOIN b ON a.key = b.key WITHIN 5s "
                               "GROUP BY a.key, TUMBLING(10s) EMIT TO 'x'");
    collect c = {0};
    push_in(r, &c, 0, 0, 0, "k", S(1), "x=1");
    push_in(r, &c, 1, 0, 0, "k", S(2), "y=10");
    push_in(r, &c, 0, 0, 1, "k", S(3), "x=2");
    push_in(r, &c, 1, 0, 1, "k", S(4), "y=20");
    push_in(r, &c, 1, 0, 2, "z", S(25), "y=0"); /* closes [0,10) */
    const char *want[] = {"k@10 [0,10): k=k n=4 s=54", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);

    /* Without a window: the updated row per pair, ids per pair. */
    r = must_compile("CREATE RULE r AS SELECT a.key AS k, count(*) AS n FROM a "
                     "JOIN b ON a.key = b.key WITHIN 5s GROUP BY a.key EMIT TO 'x'");
    push_in(r, &c, 0, 0, 0, "k", S(1), "x=1");
    push_in(r, &c, 1, 0, 0, "k", S(2), "y=10");
    push_in(r, &c, 0, 0, 1, "k", S(3), "x=2");
    push_in(r, &c, 1, 0, 1, "k", S(4), "y=20");
    const char *want2[] = {"k@2: k=k n=1", "k@3: k=k n=2", "k@4: k=k n=3", "k@4: k=k n=4",
                           NULL};
    assert_false(check_lines(&c, want2));
    assert_true(c.ids[2] != c.ids[3]);
    collect_free(&c);
    eng_rule_free(r);
}

static bool lookup_t(void *arg, const char *stream, const char **ts_field)
{
    (void)arg;
    (void)stream;
    *ts_field = "t";
    return true;
}

static void test_join_event_time_field(void **state)
{
    (void)state;
    /* Streams whose payload carries its event time as "t" (in ms): a.t and
     * b.t read as the event time in ns, as in a single-stream rule. */
    const char *sql = "SELECT b.t - a.t AS d, t AS bare FROM a JOIN b ON a.key = b.key WITHIN 5s";
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st;
    sql_error err;
    eng_rule *r;
    assert_int_equal(sql_parse(sql, strlen(sql), &a, &st, &err), WEIR_OK);
    assert_int_equal(eng_rule_compile(st, lookup_t, NULL, NULL, &r, &err), WEIR_OK);
    collect c = {0};
    push_in(r, &c, 0, 0, 0, "k", S(1), "t=1000");
    push_in(r, &c, 1, 0, 0, "k", S(3), "t=3000");
    const char *want[] = {"k@3: d=2000000000 bare=1000000000", NULL};
    assert_false(check_lines(&c, want));
    collect_free(&c);
    eng_rule_free(r);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lag_changes),
        cmocka_unit_test(test_delay_merged_stream),
        cmocka_unit_test(test_delay_by_join),
        cmocka_unit_test(test_delay_one_join_rule),
        cmocka_unit_test(test_state_fn_outside_rules),
        cmocka_unit_test(test_join_inner),
        cmocka_unit_test(test_join_left),
        cmocka_unit_test(test_join_event_time_field),
        cmocka_unit_test(test_join_aggregate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
