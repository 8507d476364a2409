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

/* Randomised check against brute force: the last revision of every
 * (key, window) equals the sum and count over the records that were not
 * sent to the side output. TUMBLING with lateness (a record is in one
 * window: accepted means counted), and HOPPING with a max_delay larger than
 * the disorder (nothing late). */
typedef struct rrec {
    int key;
    int64_t ts;
    int v;
    bool late;
} rrec;

/* A time as the collector prints it: seconds, or "<n>ns". */
static int64_t parse_time(const char *p)
{
    long long v = strtoll(p, NULL, 10);
    const char *q = p + (*p == '-');
    while (*q >= '0' && *q <= '9')
        q++;
    return strncmp(q, "ns", 2) == 0 ? (int64_t)v : S(v);
}

/* "k1@... [ws,we)...": key number and window bounds in ns. */
static bool parse_win(const char *l, int *k, int64_t *ws, int64_t *we)
{
    if (sscanf(l, "k%d@", k) != 1)
        return false;
    const char *b = strchr(l, '[');
    const char *comma = b ? strchr(b, ',') : NULL;
    if (!b || !comma)
        return false;
    *ws = parse_time(b + 1);
    *we = parse_time(comma + 1);
    return true;
}

static void brute_check(const char *sql, int64_t size, int64_t adv, int64_t disorder,
                        bool expect_late)
{
    enum { N = 600, KEYS = 3 };
    static rrec recs[N];
    uint32_t x = 99;
    eng_rule *r = must_compile(sql);
    collect *c = calloc(1, sizeof(collect));
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        recs[i].key = (int)((x >> 8) % KEYS);
        recs[i].ts = S(i) / 4 - (int64_t)((x >> 12) % (uint32_t)(disorder / 1000000)) * 1000000;
        recs[i].v = (int)((x >> 20) % 50);
        char key[8], spec[32];
        snprintf(key, sizeof(key), "k%d", recs[i].key);
        snprintf(spec, sizeof(spec), "v=%d", recs[i].v);
        int before = c->n;
        assert_int_equal(PUSH(r, c, (uint64_t)i, key, recs[i].ts, spec), WEIR_OK);
        recs[i].late = c->n > before && strncmp(c->lines[c->n - 1], "late ", 5) == 0;
    }
    PUSH(r, c, N, "zz", S(100000), "v=0"); /* closes everything */
    int n_late = 0;
    for (int i = 0; i < N; i++)
        n_late += recs[i].late;
    if (expect_late)
        assert_true(n_late > 0);
    else
        assert_int_equal(n_late, 0);
    /* The last row per (key, window). */
    int checked = 0;
    for (int i = c->n - 1; i >= 0; i--) {
        const char *l = c->lines[i];
        if (strncmp(l, "late ", 5) == 0 || strncmp(l, "zz", 2) == 0)
            continue;
        int k;
        int64_t ws, we;
        assert_true(parse_win(l, &k, &ws, &we));
        bool newer = false;
        for (int j = i + 1; j < c->n && !newer; j++) {
            int k2;
            int64_t ws2, we2;
            if (parse_win(c->lines[j], &k2, &ws2, &we2) && k2 == k && ws2 == ws)
                newer = true;
        }
        if (newer)
            continue;
        long long sum = 0, cnt = 0;
        for (int j = 0; j < N; j++)
            if (!recs[j].late && recs[j].key == k && recs[j].ts >= ws && recs[j].ts < we) {
                sum += recs[j].v;
                cnt++;
            }
        char want[128];
        snprintf(want, sizeof(want), ": key=k%d s=%lld n=%lld", k, sum, cnt);
        const char *got = strchr(l, ':');
        if (strcmp(got, want))
            fprintf(stderr, "%s\n  want%s\n", l, want);
        assert_string_equal(got, want);
        checked++;
    }
    /* Every (key, window) with an accepted record was emitted. */
    int expected = 0;
    for (int k = 0; k < KEYS; k++)
        for (int64_t s = -S(60); s < S(N / 4 + 1); s += adv) { /* aligned to every advance */
            bool any = false;
            for (int j = 0; j < N && !any; j++)
                any = !recs[j].late && recs[j].key == k && recs[j].ts >= s && recs[j].ts < s + size;
            expected += any;
        }
    assert_int_equal(checked, expected);
    (void)adv;
    collect_free(c);
    free(c);
    eng_rule_free(r);
}

static void test_brute_force(void **state)
{
    (void)state;
    brute_check("CREATE RULE r AS SELECT key, sum(v) AS s, count(*) AS n FROM s "
                "GROUP BY key, TUMBLING(3s) WITH (lateness = '1s') EMIT TO 'x'",
                S(3), S(3), S(6), true);
    brute_check("CREATE RULE r AS SELECT key, sum(v) AS s, count(*) AS n FROM s "
                "GROUP BY key, HOPPING(6s, 2s) WITH (max_delay = '5s') EMIT TO 'x'",
                S(6), S(2), S(4), false);
    brute_check("CREATE RULE r AS SELECT key, sum(v) AS s, count(*) AS n FROM s "
                "GROUP BY key, HOPPING(5s, 500ms) WITH (max_delay = '3s') EMIT TO 'x'",
                S(5), S(1) / 2, S(2), false);
}

static int cmp_rrec(const void *a, const void *b)
{
    const rrec *x = a, *y = b;
    if (x->key != y->key)
        return x->key - y->key;
    return x->ts < y->ts ? -1 : x->ts > y->ts;
}

/* Sessions against brute force: per key, sort by time and cut where the
 * next record is gap or more after the previous one. Disorder below
 * max_delay, so every session is emitted once, complete. */
static void test_session_brute_force(void **state)
{
    (void)state;
    enum { N = 500, KEYS = 3 };
    static rrec recs[N], sorted[N];
    eng_rule *r = must_compile("CREATE RULE r AS SELECT key, sum(v) AS s, count(*) AS n FROM s "
                               "GROUP BY key, SESSION(2s) WITH (max_delay = '3s') EMIT TO 'x'");
    collect *c = calloc(1, sizeof(collect));
    uint32_t x = 7;
    int64_t t = 0;
    for (int i = 0; i < N; i++) {
        x = x * 1664525u + 1013904223u;
        recs[i].key = (int)((x >> 8) % KEYS);
        t += (int64_t)((x >> 12) % 1500) * 1000000; /* 0..1.5 s apart */
        recs[i].ts = t - (int64_t)((x >> 22) % 2500) * 1000000;
        recs[i].v = (int)((x >> 24) % 50);
        char key[8], spec[32];
        snprintf(key, sizeof(key), "k%d", recs[i].key);
        snprintf(spec, sizeof(spec), "v=%d", recs[i].v);
        assert_int_equal(PUSH(r, c, (uint64_t)i, key, recs[i].ts, spec), WEIR_OK);
    }
    PUSH(r, c, N, "zz", t + S(100), "v=0");
    memcpy(sorted, recs, sizeof(recs));
    qsort(sorted, N, sizeof(rrec), cmp_rrec);
    char *want[N];
    int n_want = 0;
    for (int i = 0; i < N;) {
        int j = i;
        long long sum = sorted[i].v, cnt = 1;
        while (j + 1 < N && sorted[j + 1].key == sorted[i].key &&
               sorted[j + 1].ts < sorted[j].ts + S(2)) {
            j++;
            sum += sorted[j].v;
            cnt++;
        }
        char ws[64], we[64];
        fmt_time(ws, sizeof(ws), sorted[i].ts);
        fmt_time(we, sizeof(we), sorted[j].ts + S(2));
        want[n_want] = malloc(400);
        snprintf(want[n_want++], 400, "k%d@%s [%s,%s): key=k%d s=%lld n=%lld", sorted[i].key, we,
                 ws, we, sorted[i].key, sum, cnt);
        i = j + 1;
    }
    /* Same set of rows (the engine emits in closing order). */
    int got = 0;
    for (int i = 0; i < c->n; i++) {
        if (strncmp(c->lines[i], "zz", 2) == 0)
            continue;
        assert_true(strncmp(c->lines[i], "late", 4) != 0);
        bool found = false;
        for (int k = 0; k < n_want && !found; k++)
            found = strcmp(c->lines[i], want[k]) == 0;
        if (!found)
            fprintf(stderr, "unexpected: %s\n", c->lines[i]);
        assert_true(found);
        got++;
    }
    assert_int_equal(got, n_want);
    assert_true(n_want > 20);
    for (int k = 0; k < n_want; k++)
        free(want[k]);
    collect_free(c);
    free(c);
    eng_rule_free(r);
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
        cmocka_unit_test(test_brute_force),
        cmocka_unit_test(test_session_brute_force),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
