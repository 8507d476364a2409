/* test_sink_template.c -- MQTT topic templates (sink/template.h), the row
 * payload (sink/payload.h) and the mqtt: sink through the plug-in ops with
 * a capturing publish function (the broker itself is exercised by the
 * integration tests of the node). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "sink/payload.h"
#include "sink/sink.h"
#include "sink/template.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static rec_value vstr(const char *s)
{
    rec_value v = {.type = REC_STRING};
    v.u.s.p = s;
    v.u.s.len = (uint32_t)strlen(s);
    return v;
}

static rec_value vint(int64_t i)
{
    return (rec_value){.type = REC_INT, .u.i = i};
}

static rec_value vdbl(double d)
{
    return (rec_value){.type = REC_DOUBLE, .u.d = d};
}

/* Expands tpl with one column "c" = v; returns rc, topic in out. */
static int expand1(const char *tpl, rec_value v, char *out, size_t cap)
{
    sink_template *t;
    char err[200];
    int rc = sink_template_parse(tpl, strlen(tpl), &t, err, sizeof(err));
    assert_int_equal(rc, WEIR_OK);
    const char *names[] = {"c"};
    eng_row row = {.n_cols = 1, .names = names, .vals = &v};
    weir_buf b;
    buf_init(&b, 0);
    size_t n = 0;
    rc = sink_template_expand(t, &row, &b, &n, err, sizeof(err));
    if (rc == WEIR_OK) {
        assert_int_equal(strlen((const char *)buf_head(&b)), n);
        snprintf(out, cap, "%s", (const char *)buf_head(&b));
    } else {
        assert_int_equal(buf_used(&b), 0);
        snprintf(out, cap, "%s", err);
    }
    buf_free(&b);
    sink_template_free(t);
    return rc;
}

static void test_parse(void **state)
{
    static const char *const bad[] = {"",      "$SYS/x", "a/+/b", "a/#",    "a/{",
                                      "a/{}",  "a/}",    "{a{b}}", "x/{a}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sink_template *t = (sink_template *)1;
        char err[200] = "";
        int rc = sink_template_parse(bad[i], strlen(bad[i]), &t, err, sizeof(err));
        if (rc == WEIR_OK)
            fail_msg("template '%s' accepted", bad[i]);
        assert_null(t);
        assert_true(err[0] != '\0');
    }
    sink_template *t;
    char err[200];
    assert_int_equal(sink_template_parse("alerts/{device}/climate/{kind}", 30, &t, err,
                                         sizeof(err)),
                     WEIR_OK);
    assert_int_equal(sink_template_n_refs(t), 2);
    assert_string_equal(sink_template_ref(t, 0), "device");
    assert_string_equal(sink_template_ref(t, 1), "kind");
    assert_null(sink_template_ref(t, 2));
    sink_template_free(t);
    /* A 255-byte name is fine, 256 is not. */
    char big[300] = "{";
    memset(big + 1, 'x', 256);
    big[257] = '}';
    big[258] = '\0';
    assert_int_equal(sink_template_parse(big, 258, &t, err, sizeof(err)), WEIR_ETOPIC);
    big[256] = '}';
    big[257] = '\0';
    assert_int_equal(sink_template_parse(big, 257, &t, err, sizeof(err)), WEIR_OK);
    sink_template_free(t);
}

static void test_expand_values(void **state)
{
    char out[256];
    assert_int_equal(expand1("alerts/{c}/climate", vstr("p1"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "alerts/p1/climate");
    assert_int_equal(expand1("a/{c}", vint(-42), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/-42");
    assert_int_equal(expand1("a/{c}", vdbl(21.5), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/21.5");
    assert_int_equal(expand1("a/{c}", vdbl(1.0), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/1.0");
    assert_int_equal(expand1("a/{c}", vdbl(NAN), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/null");
    assert_int_equal(expand1("a/{c}", (rec_value){.type = REC_NULL}, out, sizeof(out)),
                     WEIR_OK);
    assert_string_equal(out, "a/null");
    assert_int_equal(expand1("a/{c}", (rec_value){.type = REC_BOOL, .u.b = true}, out,
                             sizeof(out)),
                     WEIR_OK);
    assert_string_equal(out, "a/true");
    rec_value j = vstr("{\"x\":[1,2]}");
    j.type = REC_JSON;
    assert_int_equal(expand1("a/{c}", j, out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/{\"x\":[1,2]}");
    /* Literal braces. */
    assert_int_equal(expand1("a/{{c}}/{c}", vstr("v"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/{c}/v");
    /* UTF-8 passes through. */
    assert_int_equal(expand1("{c}/x", vstr("h\xc3\xa9"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "h\xc3\xa9/x");
}

static void test_expand_escapes(void **state)
{
    char out[256];
    /* A value never adds a level nor a wildcard. */
    assert_int_equal(expand1("a/{c}/b", vstr("x/+/#%y"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/x%2F%2B%2F%23%25y/b");
    assert_int_equal(expand1("a/{c}", vstr("l1\nl2\x7f"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a/l1%0Al2%7F");
    /* '$' only at the start of the topic. */
    assert_int_equal(expand1("{c}/x", vstr("$SYS"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "%24SYS/x");
    assert_int_equal(expand1("a{c}", vstr("$x"), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a$x");
    /* A literal '$' brought to the front by an empty value (found by the
     * fuzzer). */
    assert_int_equal(expand1("{c}$x", vstr(""), out, sizeof(out)), WEIR_ETOPIC);
}

static void test_expand_errors(void **state)
{
    char out[256];
    /* An empty topic is not a topic. */
    assert_int_equal(expand1("{c}", vstr(""), out, sizeof(out)), WEIR_ETOPIC);
    /* But an empty level is. */
    assert_int_equal(expand1("a/{c}/b", vstr(""), out, sizeof(out)), WEIR_OK);
    assert_string_equal(out, "a//b");
    /* A column the rule does not produce. */
    assert_int_equal(expand1("a/{nope}", vstr("x"), out, sizeof(out)), WEIR_ENOTFOUND);
    assert_non_null(strstr(out, "nope"));
    /* Too long after escaping. */
    size_t n = 30000;
    char *big = malloc(n + 1);
    memset(big, '/', n);
    big[n] = '\0';
    assert_int_equal(expand1("a/{c}", vstr(big), out, sizeof(out)), WEIR_ETOOBIG);
    free(big);
    /* A bounded buffer: EFULL, left as it was. */
    sink_template *t;
    assert_int_equal(sink_template_parse("abc/{c}", 7, &t, NULL, 0), WEIR_OK);
    const char *names[] = {"c"};
    rec_value v = vstr("0123456789");
    eng_row row = {.n_cols = 1, .names = names, .vals = &v};
    weir_buf b;
    buf_init(&b, 8);
    buf_append(&b, "xy", 2);
    size_t tl;
    assert_int_equal(sink_template_expand(t, &row, &b, &tl, NULL, 0), WEIR_EFULL);
    assert_int_equal(buf_used(&b), 2);
    buf_free(&b);
    sink_template_free(t);
}

/* ---- Payload ----------------------------------------------------------- */

static json_t *payload(const eng_row *row, uint64_t seq)
{
    weir_buf b;
    buf_init(&b, 0);
    assert_int_equal(sink_payload_json("hot", row, seq, &b), WEIR_OK);
    json_error_t je;
    json_t *j = json_loadb((const char *)buf_head(&b), buf_used(&b), JSON_REJECT_DUPLICATES, &je);
    if (!j)
        fail_msg("not JSON: %.*s (%s)", (int)buf_used(&b), buf_head(&b), je.text);
    buf_free(&b);
    return j;
}

static void test_payload(void **state)
{
    const char *names[] = {"device", "t_avg", "n", "_seq", "note"};
    rec_value vals[] = {vstr("p1"), vdbl(31.25), vint(5), vint(999), vstr("a\"b\n")};
    eng_row row = {.n_cols = 5,
                   .names = names,
                   .vals = vals,
                   .ts = 1732185000123456789LL,
                   .window_start = 1732184995000000000LL,
                   .window_end = 1732185000000000000LL};
    json_t *j = payload(&row, 42);
    assert_string_equal(json_string_value(json_object_get(j, "device")), "p1");
    assert_true(json_real_value(json_object_get(j, "t_avg")) == 31.25);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 5);
    assert_string_equal(json_string_value(json_object_get(j, "note")), "a\"b\n");
    assert_string_equal(json_string_value(json_object_get(j, "_rule")), "hot");
    /* The reserved field wins over a column of the same name. */
    assert_int_equal(json_integer_value(json_object_get(j, "_seq")), 42);
    assert_int_equal(json_integer_value(json_object_get(j, "_ts")), 1732185000123LL);
    assert_int_equal(json_integer_value(json_object_get(j, "_window_start")), 1732184995000LL);
    assert_int_equal(json_integer_value(json_object_get(j, "_window_end")), 1732185000000LL);
    assert_null(json_object_get(j, "_late"));
    assert_null(json_object_get(j, "_revision"));
    /* Columns first, in order. */
    const char *first = json_object_iter_key(json_object_iter(j));
    (void)first; /* jansson keeps insertion order since 2.8 */
    json_decref(j);

    /* Late side output and a revision; ts before 1970 floors. */
    row.n_cols = 1;
    row.late = true;
    row.revision = 2;
    row.ts = -1;
    row.window_start = row.window_end = 0;
    j = payload(&row, 7);
    assert_true(json_is_true(json_object_get(j, "_late")));
    assert_int_equal(json_integer_value(json_object_get(j, "_revision")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "_ts")), -1);
    assert_null(json_object_get(j, "_window_end"));
    json_decref(j);

    /* No columns at all, and many columns (heap path). */
    row.n_cols = 0;
    row.late = false;
    row.revision = 0;
    j = payload(&row, 1);
    assert_int_equal(json_object_size(j), 3);
    json_decref(j);
    enum { N = 100 };
    const char *many_names[N];
    rec_value many[N];
    char namebuf[N][16];
    for (int i = 0; i < N; i++) {
        snprintf(namebuf[i], sizeof(namebuf[i]), "c%d", i);
        many_names[i] = namebuf[i];
        many[i] = vint(i);
    }
    eng_row mr = {.n_cols = N, .names = many_names, .vals = many};
    j = payload(&mr, 3);
    assert_int_equal(json_object_size(j), N + 3);
    assert_int_equal(json_integer_value(json_object_get(j, "c99")), 99);
    json_decref(j);
}

/* ---- The mqtt: sink through the ops ------------------------------------ */

typedef struct captured {
    int n;
    char topic[256];
    char payload[1024];
    int qos;
    bool retain;
} captured;

static void capture(void *ctx, const char *topic, const void *p, size_t len, int qos,
                    bool retain)
{
    captured *c = ctx;
    c->n++;
    snprintf(c->topic, sizeof(c->topic), "%s", topic);
    snprintf(c->payload, sizeof(c->payload), "%.*s", (int)len, (const char *)p);
    c->qos = qos;
    c->retain = retain;
}

static void test_mqtt_sink(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    metrics *m = metrics_new();
    captured cap = {0};
    sink_env *env;
    assert_int_equal(sink_env_new(&loop, capture, &cap, m, &env), WEIR_OK);
    rules_sink_ops ops;
    sink_env_ops(env, &ops);
    void *s = NULL;
    char err[256];

    json_t *bad = json_pack("{si}", "qos", 3);
    assert_int_equal(ops.open(ops.env, "r", "mqtt:a/{x}", bad, NULL, NULL, &s, err, sizeof(err)),
                     WEIR_EINVAL);
    assert_null(s);
    json_decref(bad);
    assert_int_equal(ops.open(ops.env, "r", "mqtt:a/#", NULL, NULL, NULL, &s, err, sizeof(err)),
                     WEIR_ETOPIC);
    assert_int_equal(ops.open(ops.env, "r", "kafka:x", NULL, NULL, NULL, &s, err, sizeof(err)),
                     WEIR_EINVAL);

    json_t *opts = json_pack("{ss sb}", "qos", "1", "retain", true);
    assert_int_equal(ops.open(ops.env, "hot", "mqtt:alerts/{device}/climate", opts, NULL, NULL,
                              &s, err, sizeof(err)),
                     WEIR_OK);
    json_decref(opts);
    assert_true(ops.writable(s));
    const char *names[] = {"device", "t_avg"};
    rec_value vals[] = {vstr("p/1"), vdbl(30.5)};
    eng_row row = {.n_cols = 2, .names = names, .vals = vals, .ts = 5000000};
    assert_int_equal(ops.emit(s, &row, 9), WEIR_OK);
    assert_int_equal(cap.n, 1);
    assert_string_equal(cap.topic, "alerts/p%2F1/climate");
    assert_int_equal(cap.qos, 1);
    assert_true(cap.retain);
    json_t *j = json_loads(cap.payload, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "_seq")), 9);
    assert_int_equal(json_integer_value(json_object_get(j, "_ts")), 5);
    json_decref(j);

    /* A row without the template's column: counted failed, nothing sent. */
    row.n_cols = 0;
    assert_int_equal(ops.emit(s, &row, 10), WEIR_OK);
    assert_int_equal(cap.n, 1);
    json_t *st = ops.stats(s);
    assert_int_equal(json_integer_value(json_object_get(st, "sent")), 1);
    assert_int_equal(json_integer_value(json_object_get(st, "failed")), 1);
    assert_non_null(strstr(json_string_value(json_object_get(st, "last_error")), "device"));
    json_decref(st);
    ops.close(s);

    weir_buf out;
    buf_init(&out, 0);
    assert_int_equal(metrics_render(m, &out), WEIR_OK);
    buf_append(&out, "", 1);
    assert_non_null(strstr((const char *)buf_head(&out),
                           "weir_sink_rows_total{rule=\"hot\",result=\"sent\"} 1"));
    assert_non_null(strstr((const char *)buf_head(&out),
                           "weir_sink_rows_total{rule=\"hot\",result=\"failed\"} 1"));
    buf_free(&out);
    metrics_free(m);
    sink_env_free(env);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),          cmocka_unit_test(test_expand_values),
        cmocka_unit_test(test_expand_escapes), cmocka_unit_test(test_expand_errors),
        cmocka_unit_test(test_payload),        cmocka_unit_test(test_mqtt_sink),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
