/* fuzz_rule_restore.c -- libFuzzer target for rule checkpoints
 * (eng_rule_restore, src/engine/checkpoint.c): bytes from disk that must
 * never crash the node, whatever they hold.
 *
 * Input: byte 0 picks one of a few fixed rules (a hopping window with
 * lateness, a session window, a sliding window, a COUNT window, state
 * functions, a LEFT JOIN, an aggregated join) so that every part of the format is reached; the
 * rest is the checkpoint. When bit 7 of byte 0 is set the target rewrites
 * the trailing CRC-32C to match, so that mutations get past the checksum
 * and into the parser. Restore must return WEIR_OK or a documented error;
 * after a successful restore the rule must take records, and its own
 * checkpoint must restore again.
 *
 * Seeds: tests/fuzz/corpus/fuzz_rule_restore/ (real checkpoints of each rule,
 * written by tests/fuzz/make_rule_seeds.c).
 */
#include "base/arena.h"
#include "base/buf.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "engine/rule.h"
#include "sql/parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *RULES[] = {
    "CREATE RULE r AS SELECT key, avg(v) AS a, max(s) AS m FROM s GROUP BY key, "
    "HOPPING(5s, 1s) WITH (lateness = '3s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, count(*) AS n FROM s GROUP BY key, SESSION(2s) "
    "WITH (lateness = '2s') EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, sum(v) AS t, min(v) AS lo FROM s GROUP BY key, SLIDING(4s) "
    "EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, sum(v) AS t FROM s GROUP BY key, COUNT(3) EMIT TO 'x'",
    "CREATE RULE r AS SELECT key, lag(v, 2) AS p, time_since_change(s) AS t FROM s "
    "WHERE changes(s) EMIT TO 'x'",
    "CREATE RULE r AS SELECT a.v AS av, b.v AS bv, lag(a.v) AS p FROM s a LEFT JOIN t b "
    "ON a.key = b.key WITHIN 2s WHERE changes(a.s) OR b.v IS NULL EMIT TO 'x'",
    "CREATE RULE r AS SELECT a.key AS k, avg(b.v) AS m FROM s a JOIN t b ON a.key = b.key "
    "WITHIN 2s GROUP BY a.key, TUMBLING(3s) EMIT TO 'x'",
};
#define N_RULES (sizeof(RULES) / sizeof(RULES[0]))

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_rule_restore: check failed: %s\n", what);
        abort();
    }
}

static bool lookup(void *arg, const char *stream, const char **ts_field)
{
    (void)arg;
    (void)stream;
    *ts_field = NULL;
    return true;
}

static eng_rule *compile(size_t i)
{
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st = NULL;
    sql_error err;
    eng_rule *r = NULL;
    check(sql_parse(RULES[i], strlen(RULES[i]), &a, &st, &err) == WEIR_OK, "parse");
    eng_limits lim = {.max_state_bytes = 8u << 20, .max_groups = 10000};
    check(eng_rule_compile(st, lookup, NULL, &lim, &r, &err) == WEIR_OK, "compile");
    arena_free(&a);
    return r;
}

static int drop(void *arg, const eng_row *row)
{
    (void)arg;
    (void)row;
    return WEIR_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    static eng_rule *rules[N_RULES];
    size_t which = (data[0] & 0x7f) % N_RULES;
    if (!rules[which])
        rules[which] = compile(which);
    eng_rule *r = rules[which];
    size_t n = size - 1;
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, data + 1, n);
    if ((data[0] & 0x80) && n >= 4) {
        uint32_t c = crc32c(p, n - 4);
        p[n - 4] = (uint8_t)c;
        p[n - 3] = (uint8_t)(c >> 8);
        p[n - 2] = (uint8_t)(c >> 16);
        p[n - 1] = (uint8_t)(c >> 24);
    }
    int rc = eng_rule_restore(r, p, n);
    check(rc == WEIR_OK || rc == WEIR_ECORRUPT || rc == WEIR_EINVAL || rc == WEIR_ETOOBIG ||
              rc == WEIR_ENOMEM,
          "restore error code");
    if (rc == WEIR_OK) {
        /* The restored rule works: a few records, a tick, a checkpoint that
         * restores again. */
        arena a;
        arena_init(&a, 1 << 16);
        eng_rule_stats st;
        eng_rule_get_stats(r, &st);
        int64_t base = st.watermark > 0 ? st.watermark : 1000000000;
        if (base > (INT64_C(1) << 61))
            base = INT64_C(1) << 61;
        rec_field f[3] = {{"v", 1, {.type = REC_INT, .u.i = 7}},
                          {"s", 1, {.type = REC_STRING, .u.s = {"on", 2}}},
                          {"key", 3, {.type = REC_STRING, .u.s = {"k", 1}}}};
        for (int i = 0; i < 6; i++) {
            record rec = {.ts = base + (int64_t)(i - 2) * 1500000000LL, .key = "k", .key_len = 1,
                          .fields = f, .n_fields = 3};
            eng_input_rec in = {.input = (uint32_t)i % eng_rule_n_inputs(r), .partition = 0,
                                .offset = (uint64_t)i, .commit_ns = rec.ts, .rec = &rec};
            char err[128];
            int prc = eng_rule_push(r, &in, drop, NULL, err, sizeof(err));
            check(prc == WEIR_OK || prc == WEIR_EINVAL || prc == WEIR_ETOOBIG, "push");
        }
        weir_buf b;
        buf_init(&b, 0);
        check(eng_rule_checkpoint(r, &b) == WEIR_OK, "checkpoint");
        check(eng_rule_restore(r, buf_head(&b), buf_used(&b)) == WEIR_OK, "re-restore");
        buf_free(&b);
        arena_free(&a);
    }
    free(p);
    return 0;
}
