/* test_record_json.c -- rec_decode_json: every type, nested values kept as
 * compact JSON, integers at and past the int64 limits, escapes and UTF-8,
 * schema (event time, key, declared types), errors with their positions, the
 * arena bound, and agreement with the jansson reference decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/err.h"
#include "record/decode.h"

#include <math.h>
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

static int decode(const char *json, const rec_schema *sc, record *r, rec_error *e)
{
    arena_reset(&A);
    /* An exact-size heap copy: ASan catches a read one byte past. */
    size_t n = strlen(json);
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, json, n);
    memset(e, 0, sizeof(*e));
    int rc = rec_decode_json(copy, n, sc, &A, r, e);
    /* The record lives in the arena: the payload may go at once. */
    memset(copy, 'X', n);
    free(copy);
    return rc;
}

static const rec_value *get(const record *r, const char *name)
{
    const rec_value *v = record_get(r, name, strlen(name));
    if (!v)
        fail_msg("no field '%s'", name);
    return v;
}

static void assert_str(const rec_value *v, rec_type t, const char *want)
{
    assert_int_equal(v->type, t);
    if (v->u.s.len != strlen(want) || memcmp(v->u.s.p, want, v->u.s.len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)v->u.s.len, v->u.s.p, want);
}

static void test_sensor_reading(void **state)
{
    rec_schema sc = {.format = REC_FMT_JSON, .ts_field = "ts", .key_field = "device"};
    record r;
    rec_error e;
    const char *in = "{\"device\":\"p07\",\"ts\":1732184400123,\"temperature\":21.53,"
                     "\"humidity\":40.2,\"seq\":123,\"ok\":true,\"alarm\":false,\"note\":null}";
    assert_int_equal(decode(in, &sc, &r, &e), WEIR_OK);
    assert_int_equal(r.n_fields, 8);
    assert_int_equal(r.ts, 1732184400123000000);
    assert_int_equal(r.key_len, 3);
    assert_memory_equal(r.key, "p07", 3);
    /* The fields keep payload order and the ts/key fields stay. */
    static const char *const names[] = {"device", "ts", "temperature", "humidity",
                                        "seq",    "ok", "alarm",       "note"};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(r.fields[i].name_len, strlen(names[i]));
        assert_memory_equal(r.fields[i].name, names[i], strlen(names[i]));
    }
    assert_str(get(&r, "device"), REC_STRING, "p07");
    assert_int_equal(get(&r, "ts")->type, REC_INT);
    assert_int_equal(get(&r, "ts")->u.i, 1732184400123);
    assert_int_equal(get(&r, "temperature")->type, REC_DOUBLE);
    assert_true(get(&r, "temperature")->u.d == 21.53);
    assert_true(get(&r, "humidity")->u.d == 40.2);
    assert_int_equal(get(&r, "seq")->type, REC_INT);
    assert_int_equal(get(&r, "seq")->u.i, 123);
    assert_int_equal(get(&r, "ok")->type, REC_BOOL);
    assert_true(get(&r, "ok")->u.b);
    assert_false(get(&r, "alarm")->u.b);
    assert_int_equal(get(&r, "note")->type, REC_NULL);

    /* No schema at all is fine too; white space anywhere. */
    assert_int_equal(decode(" \r\n\t{ \"a\" : 1 ,\n \"b\" :[ 1 , 2 ] }\n ", NULL, &r, &e), WEIR_OK);
    assert_int_equal(r.n_fields, 2);
    assert_int_equal(r.ts, 0);
    assert_null(r.key);
    assert_int_equal(decode("{}", NULL, &r, &e), WEIR_OK);
    assert_int_equal(r.n_fields, 0);
}

static void test_nested(void **state)
{
    record r;
    rec_error e;
    const char *in =
        "{\"pos\": { \"x\" : 1.50, \"y\":[ 1, 2 ,{\"z\" : \"a b\\\" }\" } ,[\"} \"]]}, "
        "\"list\": [ ], \"obj\":{}, \"deep\": [[[[\"\\u00e9\"]]]], "
        "\"big\": [123456789012345678901234567890]}";
    assert_int_equal(decode(in, NULL, &r, &e), WEIR_OK);
    /* Numbers and escapes stay as written; only white space between tokens
     * goes. */
    assert_str(get(&r, "pos"), REC_JSON, "{\"x\":1.50,\"y\":[1,2,{\"z\":\"a b\\\" }\"},[\"} \"]]}");
    assert_str(get(&r, "list"), REC_JSON, "[]");
    assert_str(get(&r, "obj"), REC_JSON, "{}");
    assert_str(get(&r, "deep"), REC_JSON, "[[[[\"\\u00e9\"]]]]");
    assert_str(get(&r, "big"), REC_JSON, "[123456789012345678901234567890]");
    assert_int_equal(r.n_fields, 5);

    /* Nested values are validated by jansson. */
    static const char *const bad[] = {
        "{\"a\":[1,]}",
        "{\"a\":{\"x\":1,\"x\":2}}",
        "{\"a\":[01]}",
        "{\"a\":{\"x\"}}",
        "{\"a\":[1e999]}",
        "{\"a\":[\"\\u0000\"]}",
        "{\"a\":[1 2]}",
        "{\"a\":[}",
        "{\"a\":{]}",
        "{\"a\":[\"\x01\"]}",
        "{\"a\":[\"\\ud800\"]}",
        "{\"a\":[tru]}",
        "{\"a\":[\"\xff\"]}",
        "{\"a\":[1]]}",
        "{\"a\":[[1]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = decode(bad[i], NULL, &r, &e);
        if (rc == WEIR_OK)
            fail_msg("accepted %s", bad[i]);
        assert_int_equal(rc, e.code);
        assert_int_equal(r.n_fields, 0);
        assert_null(r.fields);
        assert_true(e.msg[0] != '\0');
    }
}

/* Builds {"a": [[[...]]]} with `depth` brackets. */
static char *nest(int depth)
{
    char *s = malloc((size_t)depth * 2 + 16);
    int n = sprintf(s, "{\"a\":");
    for (int i = 0; i < depth; i++)
        s[n++] = '[';
    for (int i = 0; i < depth; i++)
        s[n++] = ']';
    strcpy(s + n, "}");
    return s;
}

static void test_depth(void **state)
{
    record r;
    rec_error e;
    /* The object itself is one level; jansson allows 2048 in all. */
    char *ok = nest(2047), *deep = nest(2048);
    assert_int_equal(decode(ok, NULL, &r, &e), WEIR_OK);
    assert_int_equal(get(&r, "a")->u.s.len, 2 * 2047);
    assert_int_equal(decode(deep, NULL, &r, &e), WEIR_EMALFORMED);
    assert_non_null(strstr(e.msg, "deeper"));
    arena_reset(&A);
    assert_int_equal(rec_decode_json_jansson((uint8_t *)ok, strlen(ok), NULL, &A, &r, &e), WEIR_OK);
    assert_int_equal(rec_decode_json_jansson((uint8_t *)deep, strlen(deep), NULL, &A, &r, &e),
                     WEIR_EMALFORMED);
    free(ok);
    free(deep);
}

static void test_numbers(void **state)
{
    static const struct {
        const char *lit;
        rec_type t;
        int64_t i;
        double d;
    } nums[] = {
        {"0", REC_INT, 0, 0},
        {"-0", REC_INT, 0, 0},
        {"9223372036854775807", REC_INT, INT64_MAX, 0},
        {"-9223372036854775808", REC_INT, INT64_MIN, 0},
        {"9223372036854775808", REC_DOUBLE, 0, 9223372036854775808.0},
        {"-9223372036854775809", REC_DOUBLE, 0, -9223372036854775809.0},
        {"123456789012345678901234567890", REC_DOUBLE, 0, 1.2345678901234568e29},
        {"1.0", REC_DOUBLE, 0, 1.0},
        {"-0.0", REC_DOUBLE, 0, -0.0},
        {"1e2", REC_DOUBLE, 0, 100.0},
        {"1E+2", REC_DOUBLE, 0, 100.0},
        {"2.5e-3", REC_DOUBLE, 0, 0.0025},
        {"1e-400", REC_DOUBLE, 0, 0.0},
        {"1.7976931348623157e308", REC_DOUBLE, 0, 1.7976931348623157e308},
        {"0.1000000000000000055511151231257827021181583404541015625", REC_DOUBLE, 0, 0.1},
    };
    char buf[160];
    record r;
    rec_error e;
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"v\":%s}", nums[i].lit);
        int rc = decode(buf, NULL, &r, &e);
        if (rc)
            fail_msg("%s: %s", nums[i].lit, e.msg);
        const rec_value *v = get(&r, "v");
        if (v->type != nums[i].t)
            fail_msg("%s: type %s", nums[i].lit, rec_type_name(v->type));
        if (v->type == REC_INT)
            assert_true(v->u.i == nums[i].i);
        else if (memcmp(&v->u.d, &nums[i].d, 8) != 0)
            fail_msg("%s: got %.17g", nums[i].lit, v->u.d);
    }
    /* A very long number (past any stack buffer). */
    char *longnum = malloc(2000);
    strcpy(longnum, "{\"v\":1.");
    memset(longnum + 7, '0', 1500);
    strcpy(longnum + 1507, "1}");
    assert_int_equal(decode(longnum, NULL, &r, &e), WEIR_OK);
    assert_true(get(&r, "v")->type == REC_DOUBLE && get(&r, "v")->u.d == 1.0);
    free(longnum);
}

static void test_strings(void **state)
{
    static const struct {
        const char *in;
        const char *want;
    } ok[] = {
        {"\"plain\"", "plain"},
        {"\"\"", ""},
        {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t"},
        {"\"caf\\u00e9\"", "caf\xc3\xa9"},
        {"\"\\u00E9\\u20AC\"", "\xc3\xa9\xe2\x82\xac"},
        {"\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80"},
        {"\"\\uD83D\\uDE00!\"", "\xf0\x9f\x98\x80!"},
        {"\"caf\xc3\xa9 \xf0\x9f\x98\x80\"", "caf\xc3\xa9 \xf0\x9f\x98\x80"},
        {"\"\x7f\"", "\x7f"},
        {"\"\\u0001\"", "\x01"},
    };
    char buf[128];
    record r;
    rec_error e;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        snprintf(buf, sizeof(buf), "{\"s\":%s}", ok[i].in);
        if (decode(buf, NULL, &r, &e))
            fail_msg("%s: %s", ok[i].in, e.msg);
        assert_str(get(&r, "s"), REC_STRING, ok[i].want);
    }
    /* Escaped names. */
    assert_int_equal(decode("{\"t\\u00e9mp\":1}", NULL, &r, &e), WEIR_OK);
    assert_non_null(record_get(&r, "t\xc3\xa9mp", 5));
}

typedef struct ecase {
    const char *in;
    int rc;
    uint32_t line, col;
    const char *msg; /* a substring of the message */
} ecase;

static const ecase errors[] = {
    {"", WEIR_EMALFORMED, 1, 1, "expected a JSON object"},
    {"   ", WEIR_EMALFORMED, 1, 4, "expected a JSON object"},
    {"[1]", WEIR_EMALFORMED, 1, 1, "expected a JSON object"},
    {"\"x\"", WEIR_EMALFORMED, 1, 1, "expected a JSON object"},
    {"{", WEIR_EMALFORMED, 1, 2, "field name"},
    {"{\"a\"", WEIR_EMALFORMED, 1, 5, "':'"},
    {"{\"a\":", WEIR_EMALFORMED, 1, 6, "expected a value"},
    {"{\"a\":1", WEIR_EMALFORMED, 1, 7, "',' or '}'"},
    {"{\"a\":1,}", WEIR_EMALFORMED, 1, 8, "field name"},
    {"{\"a\" 1}", WEIR_EMALFORMED, 1, 6, "':'"},
    {"{a:1}", WEIR_EMALFORMED, 1, 2, "field name"},
    {"{'a':1}", WEIR_EMALFORMED, 1, 2, "field name"},
    {"{\"a\":1}x", WEIR_EMALFORMED, 1, 8, "after the object"},
    {"{\"a\":1}{}", WEIR_EMALFORMED, 1, 8, "after the object"},
    {"{\"a\":01}", WEIR_EMALFORMED, 1, 6, "leading zeros"},
    {"{\"a\":-}", WEIR_EMALFORMED, 1, 6, "invalid number"},
    {"{\"a\":+1}", WEIR_EMALFORMED, 1, 6, "expected a value"},
    {"{\"a\":1.}", WEIR_EMALFORMED, 1, 6, "invalid number"},
    {"{\"a\":.5}", WEIR_EMALFORMED, 1, 6, "expected a value"},
    {"{\"a\":1e}", WEIR_EMALFORMED, 1, 6, "invalid number"},
    {"{\"a\":1e999}", WEIR_EMALFORMED, 1, 6, "overflows"},
    {"{\"a\":-1e999}", WEIR_EMALFORMED, 1, 6, "overflows"},
    {"{\"a\":NaN}", WEIR_EMALFORMED, 1, 6, "expected a value"},
    {"{\"a\":Infinity}", WEIR_EMALFORMED, 1, 6, "expected a value"},
    {"{\"a\":tru}", WEIR_EMALFORMED, 1, 6, "literal"},
    {"{\"a\":nul}", WEIR_EMALFORMED, 1, 6, "literal"},
    {"{\"a\":True}", WEIR_EMALFORMED, 1, 6, "expected a value"},
    {"{\"a\":truex}", WEIR_EMALFORMED, 1, 10, "',' or '}'"},
    {"{\"a\":\"x}", WEIR_EMALFORMED, 1, 6, "unterminated string"},
    {"{\"a\":\"x\ny\"}", WEIR_EMALFORMED, 1, 8, "control character"},
    {"{\"a\":\"\t\"}", WEIR_EMALFORMED, 1, 7, "control character"},
    {"{\"a\":\"\\x\"}", WEIR_EMALFORMED, 1, 7, "invalid escape"},
    {"{\"a\":\"\\u12\"}", WEIR_EMALFORMED, 1, 7, "\\u escape"},
    {"{\"a\":\"\\u12G4\"}", WEIR_EMALFORMED, 1, 7, "\\u escape"},
    {"{\"a\":\"\\u0000\"}", WEIR_EMALFORMED, 1, 7, "\\u0000"},
    {"{\"a\":\"\\ud800\"}", WEIR_EMALFORMED, 1, 7, "unpaired high"},
    {"{\"a\":\"\\ud800\\u0041\"}", WEIR_EMALFORMED, 1, 7, "unpaired high"},
    {"{\"a\":\"\\udc00\"}", WEIR_EMALFORMED, 1, 7, "unpaired low"},
    {"{\"a\":\"\xff\"}", WEIR_EUTF8, 1, 7, "UTF-8"},
    {"{\"a\":\"ok\xc3\"}", WEIR_EUTF8, 1, 9, "UTF-8"},
    {"{\"a\":\"\xc0\xaf\"}", WEIR_EUTF8, 1, 7, "UTF-8"},
    {"{\"a\":\"\xed\xa0\x80\"}", WEIR_EUTF8, 1, 7, "UTF-8"},
    {"{\"a\":\"\xf4\x90\x80\x80\"}", WEIR_EUTF8, 1, 7, "UTF-8"},
    {"{\"\xff\":1}", WEIR_EUTF8, 1, 3, "UTF-8"},
    {"{\"a\":1,\"a\":2}", WEIR_EMALFORMED, 1, 8, "duplicate field 'a'"},
    {"{\n  \"a\": 1,\n  \"b\": [1,,2]\n}", WEIR_EMALFORMED, 3, 11, "unexpected token near ','"},
    {"{\n  \"a\": 1,\n  \"b\": 2\n  \"c\": 3\n}", WEIR_EMALFORMED, 4, 3, "',' or '}'"},
    {"\xef\xbb\xbf{}", WEIR_EMALFORMED, 1, 1, "expected a JSON object"},
    {"{\"a\":[1,2}", WEIR_EMALFORMED, 1, 10, "']' expected"},
    {"{\"a\":{\"b\":1}", WEIR_EMALFORMED, 1, 13, "',' or '}'"},
    {"{\"a\":[\"]\"", WEIR_EMALFORMED, 1, 6, "unterminated"},
};

static void test_errors(void **state)
{
    record r;
    rec_error e;
    int failures = 0;
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        const ecase *c = &errors[i];
        int rc = decode(c->in, NULL, &r, &e);
        if (rc != c->rc || e.code != rc || e.line != c->line || e.column != c->col ||
            !strstr(e.msg, c->msg)) {
            fprintf(stderr, "  %s\n    got %s %u:%u \"%s\"\n    want %s %u:%u \"%s\"\n", c->in,
                    weir_err_name(rc), e.line, e.column, e.msg, weir_err_name(c->rc), c->line,
                    c->col, c->msg);
            failures++;
        }
        if (r.fields || r.n_fields || r.key || r.ts)
            failures++;
        /* The reference agrees that it is an error. */
        arena_reset(&A);
        if (rec_decode_json_jansson((const uint8_t *)c->in, strlen(c->in), NULL, &A, &r, &e) ==
            WEIR_OK) {
            fprintf(stderr, "  jansson accepts %s\n", c->in);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

static void test_schema(void **state)
{
    static const rec_decl decls[] = {
        {"temperature", REC_DOUBLE}, {"count", REC_INT},
        {"serial", REC_STRING},      {"on", REC_BOOL},
        {"cfg", REC_JSON},           {"price", REC_STRING},
    };
    rec_schema sc = {.format = REC_FMT_JSON,
                     .ts_field = "time",
                     .key_field = "id",
                     .decls = decls,
                     .n_decls = 6};
    record r;
    rec_error e;
    assert_int_equal(decode("{\"id\":17,\"time\":\"2024-11-21T10:20:00Z\",\"temperature\":21,"
                            "\"count\":\"42\",\"serial\":70,\"on\":\"yes\","
                            "\"cfg\":\"{\\\"a\\\": [1, 2]}\",\"price\":1.50,\"other\":1}",
                            &sc, &r, &e),
                     WEIR_OK);
    assert_int_equal(r.ts, 1732184400000000000);
    assert_int_equal(r.key_len, 2);
    assert_memory_equal(r.key, "17", 2);
    assert_int_equal(get(&r, "id")->type, REC_INT); /* stays as in the payload */
    assert_int_equal(get(&r, "temperature")->type, REC_DOUBLE);
    assert_true(get(&r, "temperature")->u.d == 21.0);
    assert_int_equal(get(&r, "count")->type, REC_INT);
    assert_int_equal(get(&r, "count")->u.i, 42);
    assert_str(get(&r, "serial"), REC_STRING, "70");
    assert_int_equal(get(&r, "on")->type, REC_BOOL);
    assert_true(get(&r, "on")->u.b);
    assert_str(get(&r, "cfg"), REC_JSON, "{\"a\":[1,2]}");
    assert_str(get(&r, "price"), REC_STRING, "1.50"); /* the text as written */
    assert_int_equal(get(&r, "other")->type, REC_INT);

    /* Absent declared fields are fine; NULL converts to anything. */
    assert_int_equal(decode("{\"count\":null}", &sc, &r, &e), WEIR_OK);
    assert_int_equal(get(&r, "count")->type, REC_NULL);
    assert_int_equal(r.ts, 0);
    assert_null(r.key);

    /* Epoch numbers in every unit, and a double with a fraction. */
    rec_schema tsc = {.format = REC_FMT_JSON, .ts_field = "ts"};
    assert_int_equal(decode("{\"ts\":1732184400}", &tsc, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 1732184400000000000);
    assert_int_equal(decode("{\"ts\":1732184400.5}", &tsc, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 1732184400500000000);
    assert_int_equal(decode("{\"ts\":1732184400123456}", &tsc, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 1732184400123456000);
    tsc.ts_format = "%d/%m/%Y %H:%M";
    assert_int_equal(decode("{\"ts\":\"21/11/2024 10:20\"}", &tsc, &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 1732184400000000000);

    static const struct {
        const char *in;
        uint32_t col;
        const char *msg;
    } bad[] = {
        {"{\"count\":1.5}", 10, "field 'count': not an integer"},
        {"{\"count\":\"x\"}", 10, "field 'count': not an integer"},
        {"{\"count\":[1]}", 10, "field 'count': value does not convert"},
        {"{\"temperature\":\"warm\"}", 16, "not a number"},
        {"{\"on\":2}", 7, "only 0 and 1"},
        {"{\"on\":\"maybe\"}", 7, "not a boolean"},
        {"{\"cfg\":\"[1,\"}", 8, "not a JSON object or array"},
        {"{\"cfg\":1}", 8, "does not convert"},
        {"{\"serial\":{\"a\":1}}", 11, "does not convert"},
        {"{\"time\":\"tomorrow\"}", 9, "field 'time'"},
        {"{\"time\":true}", 9, "event time must be"},
        {"{\"time\":[1]}", 9, "event time must be"},
        {"{\"id\":true}", 7, "key must be"},
        {"{\"id\":{}}", 7, "key must be"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = decode(bad[i].in, &sc, &r, &e);
        if (rc != WEIR_EMALFORMED || e.line != 1 || e.column != bad[i].col ||
            !strstr(e.msg, bad[i].msg))
            fail_msg("%s: got %s %u:%u \"%s\"", bad[i].in, weir_err_name(rc), e.line, e.column,
                     e.msg);
    }
    /* A key over 65535 bytes. */
    size_t big = 70000;
    char *s = malloc(big + 16);
    strcpy(s, "{\"id\":\"");
    memset(s + 7, 'k', big);
    strcpy(s + 7 + big, "\"}");
    assert_int_equal(decode(s, &sc, &r, &e), WEIR_ETOOBIG);
    free(s);
}

static void test_arena_limit(void **state)
{
    arena small;
    arena_init(&small, 1024);
    record r;
    rec_error e;
    char *s = malloc(5000);
    strcpy(s, "{\"s\":\"");
    memset(s + 6, 'x', 4000);
    strcpy(s + 4006, "\"}");
    assert_int_equal(rec_decode_json((uint8_t *)s, strlen(s), NULL, &small, &r, &e), WEIR_ETOOBIG);
    assert_int_equal(e.code, WEIR_ETOOBIG);
    assert_non_null(strstr(e.msg, "arena"));
    arena_reset(&small);
    assert_int_equal(rec_decode_json((uint8_t *)"{\"a\":1}", 7, NULL, &small, &r, &e), WEIR_OK);
    free(s);
    arena_free(&small);

    /* Many fields: the duplicate check switches to its index. */
    arena big;
    arena_init(&big, 8 << 20);
    size_t cap = 200000;
    char *m = malloc(cap);
    size_t n = 0;
    m[n++] = '{';
    for (int i = 0; i < 5000; i++)
        n += (size_t)sprintf(m + n, "%s\"f%d\":%d", i ? "," : "", i, i);
    m[n++] = '}';
    m[n] = 0;
    assert_int_equal(rec_decode_json((uint8_t *)m, n, NULL, &big, &r, &e), WEIR_OK);
    assert_int_equal(r.n_fields, 5000);
    assert_int_equal(get(&r, "f4999")->u.i, 4999);
    /* and finds a duplicate at the end */
    n--;
    n += (size_t)sprintf(m + n, ",\"f17\":1}");
    arena_reset(&big);
    assert_int_equal(rec_decode_json((uint8_t *)m, n, NULL, &big, &r, &e), WEIR_EMALFORMED);
    assert_non_null(strstr(e.msg, "duplicate field 'f17'"));
    /* The same payload in a 1 MiB arena is too big, and says so. */
    assert_int_equal(decode(m, NULL, &r, &e), WEIR_ETOOBIG);
    free(m);
    arena_free(&big);
}

/* The scanner and the jansson reference agree on values. */
static void test_reference(void **state)
{
    static const char *const docs[] = {
        "{\"device\":\"p07\",\"ts\":1732184400123,\"temperature\":21.53,\"humidity\":40.2}",
        "{\"a\":[1,2,{\"b\":null}],\"c\":{\"d\":\"\\u00e9\"},\"e\":-0.0,\"f\":-0,\"g\":1e-5}",
        "{\"\":\"empty name\",\"x\\ny\":\"\\ud83d\\ude00\",\"t\":true,\"f\":false,\"n\":null}",
        "{\"big\":9223372036854775807,\"neg\":-9223372036854775808,\"r\":0.1}",
    };
    arena b;
    arena_init(&b, 1 << 20);
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        record r1, r2;
        rec_error e;
        arena_reset(&A);
        arena_reset(&b);
        const uint8_t *p = (const uint8_t *)docs[i];
        assert_int_equal(rec_decode_json(p, strlen(docs[i]), NULL, &A, &r1, &e), WEIR_OK);
        assert_int_equal(rec_decode_json_jansson(p, strlen(docs[i]), NULL, &b, &r2, &e), WEIR_OK);
        assert_int_equal(r1.n_fields, r2.n_fields);
        for (uint32_t k = 0; k < r1.n_fields; k++) {
            assert_int_equal(r1.fields[k].name_len, r2.fields[k].name_len);
            assert_memory_equal(r1.fields[k].name, r2.fields[k].name, r1.fields[k].name_len);
            if (r1.fields[k].v.type == REC_JSON)
                assert_int_equal(r2.fields[k].v.type, REC_JSON);
            else
                assert_true(rec_value_equal(&r1.fields[k].v, &r2.fields[k].v));
        }
    }
    arena_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sensor_reading), cmocka_unit_test(test_nested),
        cmocka_unit_test(test_depth),          cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_strings),        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_schema),         cmocka_unit_test(test_arena_limit),
        cmocka_unit_test(test_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
