/* test_record_batch.c -- rec_batch_decode: NDJSON, JSON arrays, a single
 * JSON object, CSV and line protocol bodies with bad records in the middle
 * (the batch goes on, errors carry body positions), structure errors that
 * end a batch, stopping from the callback, and memory bounded by the arena
 * whatever the body size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "record/decode.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the callbacks saw: every record as JSON (one per line) and every
 * error as "line:col code msg". */
typedef struct seen {
    weir_buf recs;
    weir_buf errs;
    int stop_after; /* stop when this many records were seen (0 = never) */
    int stop_value;
    int n;
} seen;

static int on_record(void *arg, const record *r)
{
    seen *s = arg;
    assert_int_equal(record_to_json(r, &s->recs), WEIR_OK);
    char tail[64];
    int len = snprintf(tail, sizeof(tail), " ts=%lld key=%.*s\n", (long long)r->ts, (int)r->key_len,
                       r->key ? r->key : "");
    buf_append(&s->recs, tail, (size_t)len);
    s->n++;
    return s->stop_after && s->n >= s->stop_after ? s->stop_value : 0;
}

static void on_error(void *arg, const rec_error *e)
{
    seen *s = arg;
    char line[200];
    int len = snprintf(line, sizeof(line), "%u:%u %s %s\n", e->line, e->column,
                       weir_err_name(e->code), e->msg);
    buf_append(&s->errs, line, (size_t)len);
}

static int run(rec_format fmt, bool multi, const char *body, const rec_schema *sc, seen *s,
               uint32_t *ok, uint32_t *bad)
{
    buf_init(&s->recs, 0);
    buf_init(&s->errs, 0);
    s->n = 0;
    arena a;
    arena_init(&a, 1 << 16);
    size_t n = strlen(body);
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, body, n);
    int rc = rec_batch_decode(fmt, multi, copy, n, sc, &a, on_record, on_error, s, ok, bad);
    free(copy);
    arena_free(&a);
    buf_append(&s->recs, "", 1);
    buf_append(&s->errs, "", 1);
    return rc;
}

static void done(seen *s)
{
    buf_free(&s->recs);
    buf_free(&s->errs);
}

static void expect(seen *s, const char *recs, const char *errs)
{
    const char *got_r = (const char *)buf_head(&s->recs), *got_e = (const char *)buf_head(&s->errs);
    if (strcmp(got_r, recs) != 0)
        fail_msg("records:\n%s\nwant:\n%s", got_r, recs);
    if (strcmp(got_e, errs) != 0)
        fail_msg("errors:\n%s\nwant:\n%s", got_e, errs);
}

static void test_ndjson(void **state)
{
    rec_schema sc = {.format = REC_FMT_JSON, .ts_field = "ts", .key_field = "d"};
    seen s = {0};
    uint32_t ok, bad;
    const char *body = "{\"d\":\"a\",\"ts\":1,\"v\":1}\n"
                       "\n"
                       "   \r\n"
                       "{\"d\":\"b\",\"v\":tru}\r\n"
                       "{\"d\":\"c\",\"v\":3}\n"
                       "{\"d\":\"d\",\n"
                       "{\"d\":\"e\",\"v\":[1, 2]}";
    assert_int_equal(run(REC_FMT_JSON, true, body, &sc, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok, 3);
    assert_int_equal(bad, 2);
    expect(&s,
           "{\"d\":\"a\",\"ts\":1,\"v\":1} ts=1000000000 key=a\n"
           "{\"d\":\"c\",\"v\":3} ts=0 key=c\n"
           "{\"d\":\"e\",\"v\":[1,2]} ts=0 key=e\n",
           "4:14 EMALFORMED invalid literal (expected true, false or null)\n"
           "6:10 EMALFORMED expected a string (a field name)\n");
    done(&s);
}

static void test_json_array(void **state)
{
    seen s = {0};
    uint32_t ok, bad;
    const char *body = " [ {\"a\":1},\n"
                       "   {\"a\":\"x,]\"} , 5, \"str,]\",\n"
                       "   {\"a\":01}, {\"b\":{\"c\":[\"]}\"]}} ,[1], {} ]  \n";
    assert_int_equal(run(REC_FMT_JSON, true, body, NULL, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok, 4);
    assert_int_equal(bad, 4);
    expect(&s,
           "{\"a\":1} ts=0 key=\n"
           "{\"a\":\"x,]\"} ts=0 key=\n"
           "{\"b\":{\"c\":[\"]}\"]}} ts=0 key=\n"
           "{} ts=0 key=\n",
           "2:18 EMALFORMED expected a JSON object\n"
           "2:21 EMALFORMED expected a JSON object\n"
           "3:9 EMALFORMED leading zeros are not allowed in a number\n"
           "3:34 EMALFORMED expected a JSON object\n");
    done(&s);

    /* Empty array; a single object when multi is false; arrays then are
     * not records. */
    assert_int_equal(run(REC_FMT_JSON, true, "[]", NULL, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok + bad, 0);
    done(&s);
    assert_int_equal(run(REC_FMT_JSON, false, " {\"a\":1}\n{\"a\":2}", NULL, &s, &ok, &bad),
                     WEIR_OK);
    assert_int_equal(ok, 0);
    assert_int_equal(bad, 1);
    expect(&s, "", "2:1 EMALFORMED unexpected bytes after the object\n");
    done(&s);
    assert_int_equal(run(REC_FMT_JSON, false, "[{\"a\":1}]", NULL, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(bad, 1);
    done(&s);

    /* Structure errors end the batch after what was delivered. */
    static const struct {
        const char *body;
        uint32_t ok;
        const char *err;
    } broken[] = {
        {"[{\"a\":1} {\"a\":2}]", 1, "1:10 EMALFORMED expected ',' or ']' in the array\n"},
        {"[{\"a\":1},", 1, "1:10 EMALFORMED unterminated array\n"},
        {"[{\"a\":1}", 1, "1:9 EMALFORMED expected ',' or ']' in the array\n"},
        {"[{\"a\":1", 0, "1:2 EMALFORMED unterminated array element\n"},
        {"[{\"a\":1},,{}]", 1, "1:10 EMALFORMED expected an array element\n"},
        {"[{}] x", 1, "1:6 EMALFORMED unexpected bytes after the array\n"},
        {"[\"abc", 0, "1:2 EMALFORMED unterminated array element\n"},
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
        assert_int_equal(run(REC_FMT_JSON, true, broken[i].body, NULL, &s, &ok, &bad),
                         WEIR_EMALFORMED);
        assert_int_equal(ok, broken[i].ok);
        if (strcmp((const char *)buf_head(&s.errs), broken[i].err) != 0)
            fail_msg("%s: %s", broken[i].body, (const char *)buf_head(&s.errs));
        done(&s);
    }
}

static void test_csv(void **state)
{
    rec_schema sc = {.format = REC_FMT_CSV, .ts_field = "t"};
    seen s = {0};
    uint32_t ok, bad;
    const char *body = "t,v,note\r\n"
                       "1732184400,1,plain\r\n"
                       "\r\n"
                       "1732184401,2,\"two\r\nlines\"\r\n"
                       "1732184402,x\r\n"
                       "soon,3,\"a\"\r\n"
                       "1732184403,4,\"q\"\"\"\n"
                       "1732184404,5,last";
    assert_int_equal(run(REC_FMT_CSV, false, body, &sc, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok, 4);
    assert_int_equal(bad, 2);
    expect(&s,
           "{\"t\":1732184400,\"v\":1,\"note\":\"plain\"} ts=1732184400000000000 key=\n"
           "{\"t\":1732184401,\"v\":2,\"note\":\"two\\r\\nlines\"} ts=1732184401000000000 key=\n"
           "{\"t\":1732184403,\"v\":4,\"note\":\"q\\\"\"} ts=1732184403000000000 key=\n"
           "{\"t\":1732184404,\"v\":5,\"note\":\"last\"} ts=1732184404000000000 key=\n",
           "6:13 EMALFORMED fewer fields than columns (3 columns)\n"
           "7:1 EMALFORMED column 't': not an ISO 8601 time "
           "(YYYY-MM-DD[THH:MM[:SS[.frac]]][Z|+HH:MM])\n");
    done(&s);

    /* A bad header rejects the body. */
    assert_int_equal(run(REC_FMT_CSV, false, "\n\na,a\n1,2\n", &sc, &s, &ok, &bad),
                     WEIR_EMALFORMED);
    assert_int_equal(ok, 0);
    assert_int_equal(bad, 1);
    expect(&s, "", "3:3 EMALFORMED duplicate column name\n");
    done(&s);
    /* Only a header: no records, no errors. */
    assert_int_equal(run(REC_FMT_CSV, false, "a,b\r\n", &sc, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok + bad, 0);
    done(&s);
    /* An unterminated quote swallows the rest: one error, at its line. */
    assert_int_equal(run(REC_FMT_CSV, false, "a,b\n1,\"x\n2,3\n", &sc, &s, &ok, &bad), WEIR_OK);
    expect(&s, "", "2:3 EMALFORMED unterminated quoted field\n");
    done(&s);
    /* No schema is a caller error. */
    assert_int_equal(run(REC_FMT_CSV, false, "a\n1\n", NULL, &s, &ok, &bad), WEIR_EINVAL);
    done(&s);
}

static void test_line(void **state)
{
    seen s = {0};
    uint32_t ok, bad;
    const char *body = "# header comment\n"
                       "cpu,host=a v=1 1\n"
                       "\n"
                       "  # indented comment\r\n"
                       "cpu,host=b v=x 2\n"
                       "cpu,host=c v=3i\r\n"
                       "cpu v=1 nope";
    rec_schema sc = {.format = REC_FMT_LINE, .key_field = "host"};
    assert_int_equal(run(REC_FMT_LINE, false, body, &sc, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok, 2);
    assert_int_equal(bad, 2);
    expect(&s,
           "{\"_measurement\":\"cpu\",\"host\":\"a\",\"v\":1.0} ts=1 key=a\n"
           "{\"_measurement\":\"cpu\",\"host\":\"c\",\"v\":3} ts=0 key=c\n",
           "5:14 EMALFORMED invalid field value 'x'\n"
           "7:9 EMALFORMED invalid timestamp (an integer expected)\n");
    done(&s);
}

static void test_stop(void **state)
{
    seen s = {.stop_after = 2, .stop_value = 1};
    uint32_t ok, bad;
    const char *body = "m v=1\nm v=2\nm v=3\n";
    assert_int_equal(run(REC_FMT_LINE, false, body, NULL, &s, &ok, &bad), WEIR_OK);
    assert_int_equal(ok, 2);
    done(&s);
    s.stop_value = WEIR_EFULL;
    assert_int_equal(run(REC_FMT_LINE, false, body, NULL, &s, &ok, &bad), WEIR_EFULL);
    assert_int_equal(ok, 2);
    done(&s);
    s.stop_after = 1;
    assert_int_equal(run(REC_FMT_JSON, true, "[{},{},{}]", NULL, &s, &ok, &bad), WEIR_EFULL);
    assert_int_equal(ok, 1);
    done(&s);
    assert_int_equal(run(REC_FMT_JSON, true, "{}\n{}\n", NULL, &s, &ok, &bad), WEIR_EFULL);
    assert_int_equal(ok, 1);
    done(&s);
    rec_schema sc = {.format = REC_FMT_CSV};
    assert_int_equal(run(REC_FMT_CSV, false, "a\n1\n2\n", &sc, &s, &ok, &bad), WEIR_EFULL);
    assert_int_equal(ok, 1);
    done(&s);
    /* Unknown format; NULL counters are fine. */
    arena a;
    arena_init(&a, 4096);
    assert_int_equal(rec_batch_decode((rec_format)9, false, (const uint8_t *)"x", 1, NULL, &a,
                                      on_record, NULL, &s, NULL, NULL),
                     WEIR_EINVAL);
    arena_free(&a);
}

static int count(void *arg, const record *r)
{
    (*(uint32_t *)arg)++;
    return 0;
}

/* 100,000 records through a 16 KiB arena: memory does not grow with the
 * body, and one oversized record is rejected alone. */
static void test_bounded(void **state)
{
    size_t cap = 16 << 20, n = 0;
    char *body = malloc(cap);
    for (int i = 0; i < 100000; i++) {
        if (i == 500) {
            n += (size_t)sprintf(body + n, "{\"big\":\"");
            memset(body + n, 'x', 20000);
            n += 20000;
            n += (size_t)sprintf(body + n, "\"}\n");
        }
        n += (size_t)sprintf(
            body + n, "{\"device\":\"p%02d\",\"ts\":%lld,\"temperature\":%d.%d,\"seq\":%d}\n",
            i % 100, 1732184400123LL + i, 20 + i % 10, i % 10, i);
    }
    arena a;
    arena_init(&a, 16 << 10);
    rec_schema sc = {.format = REC_FMT_JSON, .ts_field = "ts", .key_field = "device"};
    uint32_t seen_n = 0, ok, bad;
    assert_int_equal(rec_batch_decode(REC_FMT_JSON, true, (uint8_t *)body, n, &sc, &a, count, NULL,
                                      &seen_n, &ok, &bad),
                     WEIR_OK);
    assert_int_equal(seen_n, 100000);
    assert_int_equal(ok, 100000);
    assert_int_equal(bad, 1);
    assert_true(arena_footprint(&a) <= (16 << 10));
    arena_free(&a);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ndjson), cmocka_unit_test(test_json_array),
        cmocka_unit_test(test_csv),    cmocka_unit_test(test_line),
        cmocka_unit_test(test_stop),   cmocka_unit_test(test_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
