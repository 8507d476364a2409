/* test_engine_checkpoint.c -- checkpoint in the middle of a run, restore
 * into a freshly compiled rule, go on: the outputs (and their ids) are
 * those of the uninterrupted run, for every kind of rule and every cut
 * point. Also: ids of windowed results do not depend on how partitions
 * interleave; bad checkpoint bytes are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "engine_util.h"

typedef struct step {
    uint32_t input, part;
    uint64_t off;
    char key[16];
    int64_t ts;
    char spec[64];
} step;

#define MAX_STEPS 400

/* A deterministic run: 5 keys, two inputs, two partitions, event time
 * mostly increasing with up to 3 s of disorder and a few very late rows. */
static int gen_steps(step *s, int n)
{
    uint32_t x = 12345;
    uint64_t offs[2][2] = {{0, 0}, {0, 0}};
    for (int i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        uint32_t k = (x >> 16) % 5;
        s[i].input = (x >> 8) & 1;
        s[i].part = k & 1;
        s[i].off = offs[s[i].input][s[i].part]++;
        snprintf(s[i].key, sizeof(s[i].key), "d%u", k);
        int64_t jitter = (int64_t)((x >> 20) % 4);
        s[i].ts = S(i / 2) - S(jitter) + (i % 7) * 1000000;
        if (i % 53 == 0 && i > 0)
            s[i].ts -= S(40); /* beyond any lateness below */
        const char *st = ((x >> 12) % 3) == 0 ? "on" : "off";
        snprintf(s[i].spec, sizeof(s[i].spec), "v=%u,state=%s,x=%u", (x >> 10) % 100, st,
                 (x >> 4) % 7);
    }
    return n;
}

static void run(const char *sql, const step *s, int n, int cut, collect *c)
{
    eng_rule *r = must_compile(sql);
    for (int i = 0; i < n; i++) {
        if (i == cut) {
            weir_buf b;
            buf_init(&b, 0);
            assert_int_equal(eng_rule_checkpoint(r, &b), WEIR_OK);
            eng_rule_stats before;
            eng_rule_get_stats(r, &before);
            eng_rule_free(r);
            r = must_compile(sql);
            assert_int_equal(eng_rule_restore(r, buf_head(&b), buf_used(&b)), WEIR_OK);
            eng_rule_stats after;
            eng_rule_get_stats(r, &after);
            assert_int_equal(after.records_in, before.records_in);
            assert_int_equal(after.watermark, before.watermark);
            assert_int_equal(after.state_bytes > 0, before.state_bytes > 0);
            /* The checkpoint of the restored rule is the same bytes. */
            weir_buf b2;
            buf_init(&b2, 0);
            assert_int_equal(eng_rule_checkpoint(r, &b2), WEIR_OK);
            assert_int_equal(buf_used(&b2), buf_used(&b));
            assert_memory_equal(buf_head(&b2), buf_head(&b), buf_used(&b));
            buf_free(&b2);
            buf_free(&b);
        }
        int rc = push_in(r, c, s[i].input % eng_rule_n_inputs(r), s[i].part, s[i].off, s[i].key,
                         s[i].ts, s[i].spec);
        assert_true(rc == WEIR_OK || rc == WEIR_EINVAL);
    }
    eng_rule_free(r);
}

static const char *RULES[] = {
    "CREATE RULE r AS SELECT key, avg(v) AS a, count(*) AS n, max(state) AS m FROM s "
    "GROUP BY key, HOPPING(5s, 1s) WITH (lateness = '3s', max_delay = '1s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, sum(v) AS s FROM s GROUP BY key, TUMBLING(7s) EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, sum(v) AS s, count(*) AS n, avg(v / 7.0) AS a FROM s "
    "GROUP BY key, SLIDING(4s) WITH (lateness = '2s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, min(v) AS lo, percentile_approx(v, 0.5) AS p FROM s "
    "GROUP BY key, SLIDING(4s) WITH (lateness = '2s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, count(*) AS n, sum(v) AS s FROM s "
    "GROUP BY key, SESSION(1s) WITH (lateness = '2s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, avg(v) AS a FROM s GROUP BY key, COUNT(4, 3) EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, count(*) AS n, last(v) AS l FROM s GROUP BY key, x "
    "HAVING n > 1 EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, v, lag(v, 2) AS p, time_since_change(state) AS since "
    "FROM s WHERE changes(state) OR x = 3 EMIT TO 'x'",
    "CREATE RULE r AS SELECT a.key AS k, a.v AS av, b.v AS bv FROM s a LEFT JOIN t b "
    "ON a.key = b.key AND a.x <> b.x WITHIN 2s WITH (lateness = '1s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT a.key AS k, count(*) AS n, sum(b.v) AS s FROM s a LEFT JOIN t b "
    "ON a.key = b.key WITHIN 2s GROUP BY a.key, HOPPING(4s, 2s) WITH (lateness = '1s') "
    "EMIT TO 'x'",
    "CREATE RULE r AS SELECT a.key AS k, b.ts - a.ts AS d, lag(a.v) AS p FROM s a JOIN t b "
    "ON a.key = b.key AND b.ts >= a.ts WITHIN 3s WHERE changes(a.state) OR changes(b.state) "
    "EMIT TO 'x'",
};

static void test_restore_continues_identically(void **state)
{
    (void)state;
    static step steps[MAX_STEPS];
    int n = gen_steps(steps, 240);
    for (size_t k = 0; k < sizeof(RULES) / sizeof(RULES[0]); k++) {
        collect *base = calloc(1, sizeof(collect));
        run(RULES[k], steps, n, -1, base);
        assert_true(base->n > 5);
        for (int cut = 0; cut <= n; cut += 17) {
            collect *c = calloc(1, sizeof(collect));
            run(RULES[k], steps, n, cut, c);
            if (c->n != base->n)
                fprintf(stderr, "rule %zu cut %d: %d rows, want %d\n", k, cut, c->n, base->n);
            assert_int_equal(c->n, base->n);
            for (int i = 0; i < c->n; i++) {
                if (strcmp(c->lines[i], base->lines[i]))
                    fprintf(stderr, "rule %zu cut %d row %d:\n  %s\n  %s\n", k, cut, i,
                            c->lines[i], base->lines[i]);
                assert_string_equal(c->lines[i], base->lines[i]);
                assert_true(c->ids[i] == base->ids[i]);
            }
            collect_free(c);
            free(c);
        }
        collect_free(base);
        free(base);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_ids_independent_of_interleaving(void **state)
{
    (void)state;
    /* Partition 0 holds keys a and b, partition 1 key c; each in order,
     * and no record late whichever way they interleave (max_delay). */
    const char *sql = "CREATE RULE r AS SELECT key, sum(v) AS s FROM s "
                      "GROUP BY key, HOPPING(4s, 2s) WITH (max_delay = '30s') EMIT TO 'x'";
    step p0[20], p1[20];
    for (int i = 0; i < 20; i++) {
        p0[i] = (step){.part = 0, .off = (uint64_t)i, .ts = S(i)};
        snprintf(p0[i].key, sizeof(p0[i].key), "%s", i % 2 ? "a" : "b");
        snprintf(p0[i].spec, sizeof(p0[i].spec), "v=%d", i);
        p1[i] = (step){.part = 1, .off = (uint64_t)i, .ts = S(i) + 500000000};
        snprintf(p1[i].key, sizeof(p1[i].key), "c");
        snprintf(p1[i].spec, sizeof(p1[i].spec), "v=%d", 100 + i);
    }
    char *res[2][256];
    int nres[2];
    for (int order = 0; order < 2; order++) {
        eng_rule *r = must_compile(sql);
        collect c = {0};
        /* order 0: alternate; order 1: all of p1's first 15 rows, then the rest. */
        int i0 = 0, i1 = 0;
        while (i0 < 20 || i1 < 20) {
            bool take0 = order == 0 ? (i0 <= i1 && i0 < 20) || i1 >= 20 : i1 >= 15 && i0 < 20;
            if (order == 1 && i1 >= 15 && i0 >= 20)
                take0 = false;
            const step *s = take0 ? &p0[i0++] : &p1[i1++];
            assert_int_equal(push_in(r, &c, 0, s->part, s->off, s->key, s->ts, s->spec), WEIR_OK);
        }
        /* Close everything: a record far ahead. */
        push_in(r, &c, 0, 0, 99, "z", S(1000), "v=0");
        nres[order] = c.n;
        for (int i = 0; i < c.n; i++) {
            char *l = malloc(strlen(c.lines[i]) + 32);
            sprintf(l, "%016llx %s", (unsigned long long)c.ids[i], c.lines[i]);
            res[order][i] = l;
        }
        qsort(res[order], (size_t)c.n, sizeof(char *), cmp_str);
        collect_free(&c);
        eng_rule_free(r);
    }
    assert_int_equal(nres[0], nres[1]);
    assert_true(nres[0] > 20);
    for (int i = 0; i < nres[0]; i++)
        assert_string_equal(res[0][i], res[1][i]);
    for (int o = 0; o < 2; o++)
        for (int i = 0; i < nres[o]; i++)
            free(res[o][i]);
}

static void test_restore_refuses_bad_bytes(void **state)
{
    (void)state;
    const char *sql = RULES[0];
    static step steps[MAX_STEPS];
    int n = gen_steps(steps, 60);
    eng_rule *r = must_compile(sql);
    collect c = {0};
    for (int i = 0; i < n; i++)
        push_in(r, &c, 0, steps[i].part, steps[i].off, steps[i].key, steps[i].ts, steps[i].spec);
    weir_buf b;
    buf_init(&b, 0);
    assert_int_equal(eng_rule_checkpoint(r, &b), WEIR_OK);
    eng_rule *fresh = must_compile(sql);
    uint8_t *p = buf_head(&b);
    size_t len = buf_used(&b);
    /* Every single bit flip in the first 200 bytes and a stride after. */
    for (size_t i = 0; i < len; i += i < 200 ? 1 : 13) {
        p[i] ^= 0x10;
        assert_int_equal(eng_rule_restore(fresh, p, len), WEIR_ECORRUPT);
        p[i] ^= 0x10;
    }
    for (size_t cut = 0; cut < len; cut += 7)
        assert_int_equal(eng_rule_restore(fresh, p, cut), WEIR_ECORRUPT);
    /* After all that the rule is empty and usable, and the good bytes work. */
    eng_rule_stats st;
    eng_rule_get_stats(fresh, &st);
    assert_int_equal(st.records_in, 0);
    assert_int_equal(eng_rule_restore(fresh, p, len), WEIR_OK);
    /* Another rule's checkpoint: refused as a different rule. */
    eng_rule *other = must_compile(RULES[1]);
    assert_int_equal(eng_rule_restore(other, p, len), WEIR_EINVAL);
    buf_free(&b);
    collect_free(&c);
    eng_rule_free(r);
    eng_rule_free(fresh);
    eng_rule_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restore_continues_identically),
        cmocka_unit_test(test_ids_independent_of_interleaving),
        cmocka_unit_test(test_restore_refuses_bad_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
