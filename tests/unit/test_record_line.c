/* test_record_line.c -- InfluxDB line protocol: a table of good lines (every
 * value type, every escape, tags, timestamps and precisions) rendered through
 * record_to_json so that a row states the whole record, and a table of every
 * error with its column. */
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

static arena A;

static int setup(void **state)
{
    arena_init(&A, 1 << 20);
    return 0;
}

static int teardown(void **state)
{
    arena_free(&A);
    return 0;
}

static int decode(const char *s, const rec_schema *sc, int64_t dts, record *r, rec_error *e)
{
    arena_reset(&A);
    size_t n = strlen(s);
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    memset(e, 0, sizeof(*e));
    int rc = rec_decode_line(copy, n, sc, dts, &A, r, e);
    memset(copy, 'X', n);
    free(copy);
    return rc;
}

typedef struct lcase {
    const char *in;
    const char *json; /* record_to_json of the result */
    int64_t ts;
} lcase;

static const lcase good[] = {
    {"cpu value=1", "{\"_measurement\":\"cpu\",\"value\":1.0}", -1},
    {"cpu value=1 1732184400123456789", "{\"_measurement\":\"cpu\",\"value\":1.0}",
     1732184400123456789},
    {"cpu,host=a,region=eu-1 usage=21.5,count=3i,big=18446744073709551615e0,n=-7i 0",
     "{\"_measurement\":\"cpu\",\"host\":\"a\",\"region\":\"eu-1\",\"usage\":21.5,\"count\":3,"
     "\"big\":1.8446744073709552e+19,\"n\":-7}",
     0},
    {"m u=12u,i=9223372036854775807i,j=-9223372036854775808i",
     "{\"_measurement\":\"m\",\"u\":12,\"i\":9223372036854775807,\"j\":-9223372036854775808}", -1},
    {"m a=t,b=T,c=true,d=True,e=TRUE,f=f,g=F,h=false,i=False,j=FALSE",
     "{\"_measurement\":\"m\",\"a\":true,\"b\":true,\"c\":true,\"d\":true,\"e\":true,\"f\":false,"
     "\"g\":false,\"h\":false,\"i\":false,\"j\":false}",
     -1},
    {"m f=-1.5e-3,g=+2,h=1.,i=.5,j=1E3",
     "{\"_measurement\":\"m\",\"f\":-0.0015,\"g\":2.0,\"h\":1.0,\"i\":0.5,\"j\":1000.0}", -1},
    {"m s=\"hello world\",e=\"\",q=\"say \\\"hi\\\"\",b=\"back\\\\slash\",o=\"keep \\n\"",
     "{\"_measurement\":\"m\",\"s\":\"hello world\",\"e\":\"\",\"q\":\"say \\\"hi\\\"\","
     "\"b\":\"back\\\\slash\",\"o\":\"keep \\\\n\"}",
     -1},
    {"m s=\"a,b=c d\" 5", "{\"_measurement\":\"m\",\"s\":\"a,b=c d\"}", 5},
    /* escapes: measurement (comma, space), tag keys/values and field keys
     * (comma, equals, space), backslash itself, other backslashes kept */
    {"my\\ meas\\,ure=x,t\\ k\\=1\\,=v\\ 1\\=\\, f\\ k\\=\\,=1i",
     "{\"_measurement\":\"my meas,ure=x\",\"t k=1,\":\"v 1=,\",\"f k=,\":1}", -1},
    {"a\\\\b,t=c\\\\d f=1i", "{\"_measurement\":\"a\\\\b\",\"t\":\"c\\\\d\",\"f\":1}", -1},
    {"a\\b,t=c\\d f\\x=1i", "{\"_measurement\":\"a\\\\b\",\"t\":\"c\\\\d\",\"f\\\\x\":1}", -1},
    {"caf\xc3\xa9,lieu=\xc3\xa9t\xc3\xa9 temp=1i",
     "{\"_measurement\":\"caf\xc3\xa9\",\"lieu\":\"\xc3\xa9t\xc3\xa9\",\"temp\":1}", -1},
    /* white space and terminators */
    {"m v=1i   42  ", "{\"_measurement\":\"m\",\"v\":1}", 42},
    {"m   v=1i\r\n", "{\"_measurement\":\"m\",\"v\":1}", -1},
    {"m v=1i -5\n", "{\"_measurement\":\"m\",\"v\":1}", -5},
    {"m=x v=1i", "{\"_measurement\":\"m=x\",\"v\":1}", -1},
};

static void test_good(void **state)
{
    weir_buf b;
    buf_init(&b, 0);
    int failures = 0;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        record r;
        rec_error e;
        int rc = decode(good[i].in, NULL, -1, &r, &e);
        if (rc) {
            fprintf(stderr, "  %s: %s at %u\n", good[i].in, e.msg, e.column);
            failures++;
            continue;
        }
        buf_reset(&b);
        assert_int_equal(record_to_json(&r, &b), WEIR_OK);
        if (buf_used(&b) != strlen(good[i].json) ||
            memcmp(buf_head(&b), good[i].json, buf_used(&b)) != 0 || r.ts != good[i].ts) {
            fprintf(stderr, "  %s\n    got  %.*s ts %lld\n    want %s ts %lld\n", good[i].in,
                    (int)buf_used(&b), buf_head(&b), (long long)r.ts, good[i].json,
                    (long long)good[i].ts);
            failures++;
        }
    }
    buf_free(&b);
    assert_int_equal(failures, 0);
}

static void test_schema(void **state)
{
    record r;
    rec_error e;
    /* The key may be a tag; ts precision from ts_format. */
    static const rec_decl decls[] = {{"temp", REC_DOUBLE}, {"serial", REC_STRING}};
    rec_schema sc = {.format = REC_FMT_LINE,
                     .key_field = "device",
                     .ts_format = "ms",
                     .decls = decls,
                     .n_decls = 2};
    assert_int_equal(
        decode("climate,device=p07 temp=21i,hum=40.2,serial=12i 1732184400123", &sc, 0, &r, &e),
        WEIR_OK);
    assert_int_equal(r.key_len, 3);
    assert_memory_equal(r.key, "p07", 3);
    assert_int_equal(r.ts, 1732184400123000000);
    const rec_value *t = record_get(&r, "temp", 4);
    assert_int_equal(t->type, REC_DOUBLE);
    assert_true(t->u.d == 21.0);
    const rec_value *s = record_get(&r, "serial", 6);
    assert_int_equal(s->type, REC_STRING);
    assert_int_equal(s->u.s.len, 2);
    assert_memory_equal(s->u.s.p, "12", 2);
    /* No timestamp: the default. */
    assert_int_equal(decode("climate,device=p07 temp=1", &sc, 777, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 777);
    /* Key from the measurement; seconds precision. */
    sc.key_field = "_measurement";
    sc.ts_format = "s";
    assert_int_equal(decode("climate temp=1 1732184400", &sc, 0, &r, &e), WEIR_OK);
    assert_memory_equal(r.key, "climate", 7);
    assert_int_equal(r.ts, 1732184400000000000);
    assert_int_equal(decode("climate temp=1 9999999999", &sc, 0, &r, &e), WEIR_EMALFORMED);
    assert_non_null(strstr(e.msg, "timestamp out of range"));
    /* Event time from a field wins over the trailing timestamp. */
    rec_schema tsc = {.format = REC_FMT_LINE, .ts_field = "at"};
    assert_int_equal(decode("m,at=2024-11-21T10:20:00Z v=1 5", &tsc, 9, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 1732184400000000000);
    assert_int_equal(decode("m v=1 5", &tsc, 9, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 5);
    assert_int_equal(decode("m,at=soon v=1 5", &tsc, 9, &r, &e), WEIR_EMALFORMED);
    assert_int_equal(e.column, 6);
    assert_non_null(strstr(e.msg, "field 'at'"));
    /* Conversion failures point at the value. */
    assert_int_equal(decode("m temp=\"warm\"", &sc, 0, &r, &e), WEIR_EMALFORMED);
    assert_int_equal(e.column, 8);
    assert_non_null(strstr(e.msg, "field 'temp': not a number"));
}

typedef struct ecase {
    const char *in;
    int rc;
    uint32_t col;
    const char *msg;
} ecase;

static const ecase errors[] = {
    {"", WEIR_EMALFORMED, 1, "blank line or comment"},
    {"# a comment", WEIR_EMALFORMED, 1, "blank line or comment"},
    {"cpu", WEIR_EMALFORMED, 4, "missing fields"},
    {"cpu ", WEIR_EMALFORMED, 5, "missing fields"},
    {"cpu,", WEIR_EMALFORMED, 5, "empty tag key"},
    {",t=1 v=1", WEIR_EMALFORMED, 1, "empty measurement"},
    {" cpu v=1", WEIR_EMALFORMED, 1, "empty measurement"},
    {"cpu,host v=1", WEIR_EMALFORMED, 9, "expected '=' after tag key"},
    {"cpu,host= v=1", WEIR_EMALFORMED, 10, "empty tag value"},
    {"cpu,=a v=1", WEIR_EMALFORMED, 5, "empty tag key"},
    {"cpu,host=a=b v=1", WEIR_EMALFORMED, 11, "unescaped '=' in a tag value"},
    {"cpu,host=a,host=b v=1", WEIR_EMALFORMED, 12, "duplicate name 'host'"},
    {"cpu,v=a v=1", WEIR_EMALFORMED, 9, "duplicate name 'v'"},
    {"cpu v=1,v=2", WEIR_EMALFORMED, 9, "duplicate name 'v'"},
    {"cpu _measurement=1", WEIR_EMALFORMED, 5, "duplicate name '_measurement'"},
    {"cpu v", WEIR_EMALFORMED, 6, "expected '=' after field key"},
    {"cpu =1", WEIR_EMALFORMED, 5, "empty field key"},
    {"cpu v=", WEIR_EMALFORMED, 7, "missing field value"},
    {"cpu v=,w=1", WEIR_EMALFORMED, 7, "missing field value"},
    {"cpu v=1,", WEIR_EMALFORMED, 9, "empty field key"},
    {"cpu v=1,,w=2", WEIR_EMALFORMED, 9, "empty field key"},
    {"cpu v=abc", WEIR_EMALFORMED, 7, "invalid field value 'abc'"},
    {"cpu v=tru", WEIR_EMALFORMED, 7, "invalid field value"},
    {"cpu v=yes", WEIR_EMALFORMED, 7, "invalid field value"},
    {"cpu v=nan", WEIR_EMALFORMED, 7, "invalid field value"},
    {"cpu v=inf", WEIR_EMALFORMED, 7, "invalid field value"},
    {"cpu v=1e999", WEIR_EMALFORMED, 7, "float value out of range"},
    {"cpu v=1.5i", WEIR_EMALFORMED, 7, "invalid integer value"},
    {"cpu v=i", WEIR_EMALFORMED, 7, "invalid integer value"},
    {"cpu v=9223372036854775808i", WEIR_EMALFORMED, 7, "integer value out of range"},
    {"cpu v=-9223372036854775809i", WEIR_EMALFORMED, 7, "integer value out of range"},
    {"cpu v=99999999999999999999i", WEIR_EMALFORMED, 7, "invalid integer value"},
    {"cpu v=-1u", WEIR_EMALFORMED, 7, "invalid unsigned integer value"},
    {"cpu v=9223372036854775808u", WEIR_EMALFORMED, 7, "above int64"},
    {"cpu v=\"abc", WEIR_EMALFORMED, 7, "unterminated string value"},
    {"cpu v=\"abc\\\"", WEIR_EMALFORMED, 7, "unterminated string value"},
    {"cpu v=\"abc\"x", WEIR_EMALFORMED, 12, "expected ',' or ' ' after a field value"},
    {"cpu v=1 abc", WEIR_EMALFORMED, 9, "invalid timestamp"},
    {"cpu v=1 1.5", WEIR_EMALFORMED, 9, "invalid timestamp"},
    {"cpu v=1 +5", WEIR_EMALFORMED, 9, "invalid timestamp"},
    {"cpu v=1 -", WEIR_EMALFORMED, 9, "invalid timestamp"},
    {"cpu v=1 99999999999999999999", WEIR_EMALFORMED, 9, "invalid timestamp"},
    {"cpu v=1 9223372036854775808", WEIR_EMALFORMED, 9, "timestamp out of range"},
    {"cpu v=1 5 6", WEIR_EMALFORMED, 11, "after the timestamp"},
    {"cpu\tv=1", WEIR_EMALFORMED, 8, "missing fields"},
    {"cpu v=1\t5", WEIR_EMALFORMED, 7, "invalid field value"},
    {"cpu v=\xff", WEIR_EUTF8, 7, "invalid UTF-8"},
    {"cp\xc3 v=1", WEIR_EUTF8, 3, "invalid UTF-8"},
};

static void test_errors(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        const ecase *c = &errors[i];
        record r;
        rec_error e;
        int rc = decode(c->in, NULL, 0, &r, &e);
        if (rc != c->rc || e.code != rc || e.line != 1 || e.column != c->col ||
            !strstr(e.msg, c->msg)) {
            fprintf(stderr, "  '%s'\n    got %s %u:%u \"%s\"\n    want %s 1:%u \"%s\"\n", c->in,
                    weir_err_name(rc), e.line, e.column, e.msg, weir_err_name(c->rc), c->col,
                    c->msg);
            failures++;
        }
        if (r.fields || r.n_fields)
            failures++;
    }
    assert_int_equal(failures, 0);

    /* Names over 65535 bytes; the arena bound. */
    size_t big = 70000;
    char *s = malloc(big + 16);
    memset(s, 'k', big);
    strcpy(s + big, "=1 ");
    memmove(s + 2, s, big + 4);
    memcpy(s, "m ", 2);
    record r;
    rec_error e;
    assert_int_equal(decode(s, NULL, 0, &r, &e), WEIR_ETOOBIG);
    arena small;
    arena_init(&small, 512);
    assert_int_equal(rec_decode_line((uint8_t *)s, strlen(s), NULL, 0, &small, &r, &e),
                     WEIR_ETOOBIG);
    assert_non_null(strstr(e.msg, "arena"));
    arena_free(&small);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_schema),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
