/* test_sql_query.c -- history queries (sql/query.h) over a real stream store
 * written through ingest, with exact results. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "catalog/catalog.h"
#include "ingest/ingest.h"
#include "sql/eval.h"
#include "sql/query.h"
#include "stream/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int stream__remove_tree(const char *path);

/* 2023-11-14T22:13:00Z, a whole minute, in ms and ns. */
#define T0_MS 1699999980000LL
#define T0_NS (T0_MS * 1000000LL)

typedef struct fixture {
    char dir[64];
    stream_store *st;
    catalog *cat;
    ingest *in;
} fixture;

static const char *DATA =
    "{\"device\":\"a\",\"t\":1699999980000,\"temp\":10}\n"
    "{\"device\":\"b\",\"t\":1699999985000,\"temp\":5}\n"
    "{\"device\":\"a\",\"t\":1699999990000,\"temp\":20,\"meta\":{\"fw\":\"1.2\"}}\n"
    "{\"device\":\"c\",\"t\":1700000000000,\"status\":\"ok\"}\n"
    "{\"device\":\"b\",\"t\":1700000045000,\"temp\":null}\n"
    "{\"device\":\"a\",\"t\":1700000050000,\"temp\":30}\n"
    "{\"device\":\"b\",\"t\":1700000060000,\"temp\":7}\n";

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/weir-query-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char sd[96];
    snprintf(sd, sizeof(sd), "%s/streams", f->dir);
    assert_int_equal(stream_store_open(sd, NULL, &f->st), WEIR_OK);
    assert_int_equal(catalog_open(f->dir, &f->cat), WEIR_OK);
    assert_int_equal(ingest_new(f->st, f->cat, NULL, NULL, &f->in), WEIR_OK);
    json_t *def = json_loads("{\"name\":\"temps\",\"format\":\"json\",\"partitions\":2,"
                             "\"key\":\"device\",\"timestamp\":\"t\",\"time_format\":\"ms\",\"fields\":{\"temp\":\"double\"}}",
                             0, NULL);
    assert_non_null(def);
    char err[256] = "";
    ingest_stream *s = NULL;
    int rc = ingest_define(f->in, def, "api", false, err, sizeof(err), &s);
    if (rc)
        fprintf(stderr, "define: %s\n", err);
    assert_int_equal(rc, WEIR_OK);
    json_decref(def);
    ingest_result res;
    rc = ingest_batch(f->in, s, NULL, (const uint8_t *)DATA, strlen(DATA), T0_NS, &res, NULL,
                      NULL);
    assert_true(rc == WEIR_OK || rc == WEIR_EAGAIN);
    assert_int_equal(res.accepted, 7);
    assert_int_equal(res.rejected, 0);
    json_decref(res.errors);
    assert_int_equal(stream_store_flush(f->st), WEIR_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    ingest_free(f->in);
    stream_store_close(f->st);
    catalog_close(f->cat);
    stream__remove_tree(f->dir);
    free(f);
    return 0;
}

/* Runs q and returns the compact JSON of "rows" (caller frees). */
static char *rows_of(fixture *f, const char *q, char **columns)
{
    json_t *res = NULL;
    sql_error e;
    int rc = sql_query_run(f->in, q, strlen(q), 1000, &res, &e);
    if (rc)
        fprintf(stderr, "query failed: %s (%d:%d): %s\n", q, e.line, e.column, e.msg);
    assert_int_equal(rc, WEIR_OK);
    assert_non_null(res);
    char *rows = json_dumps(json_object_get(res, "rows"), JSON_COMPACT);
    if (columns)
        *columns = json_dumps(json_object_get(res, "columns"), JSON_COMPACT);
    json_t *stats = json_object_get(res, "stats");
    assert_true(json_is_integer(json_object_get(stats, "scanned")));
    json_decref(res);
    return rows;
}

static void check(fixture *f, const char *q, const char *want)
{
    char *got = rows_of(f, q, NULL);
    if (strcmp(got, want))
        fprintf(stderr, "query: %s\n  want %s\n  got  %s\n", q, want, got);
    assert_string_equal(got, want);
    free(got);
}

static void check_error(fixture *f, const char *q, int code, int line, int column,
                        const char *needle)
{
    json_t *res = NULL;
    sql_error e;
    int rc = sql_query_run(f->in, q, strlen(q), 1000, &res, &e);
    if (rc != code || e.line != line || e.column != column || !strstr(e.msg, needle))
        fprintf(stderr, "query: %s\n  got %d at %d:%d: %s\n", q, rc, e.line, e.column, e.msg);
    assert_int_equal(rc, code);
    assert_null(res);
    assert_int_equal(e.line, line);
    assert_int_equal(e.column, column);
    assert_non_null(strstr(e.msg, needle));
}

static void test_group_by_minute(void **state)
{
    fixture *f = *state;
    char *cols = NULL;
    char *rows = rows_of(f,
                         "SELECT time_bucket('1m', ts) AS minute, device, avg(temp) AS avg "
                         "FROM temps GROUP BY minute, device ORDER BY minute, device",
                         &cols);
    assert_string_equal(cols, "[\"minute\",\"device\",\"avg\"]");
    assert_string_equal(rows, "[[1699999980000000000,\"a\",15.0],[1699999980000000000,\"b\",5.0],"
                              "[1699999980000000000,\"c\",null],[1700000040000000000,\"a\",30.0],"
                              "[1700000040000000000,\"b\",7.0]]");
    free(cols);
    free(rows);
    /* GROUP BY an expression and by ordinal give the same groups. */
    check(f,
          "SELECT device, count(*) FROM temps GROUP BY 1 ORDER BY 1 DESC",
          "[[\"c\",1],[\"b\",3],[\"a\",3]]");
    check(f,
          "SELECT upper(device) AS d, max(temp) FROM temps GROUP BY upper(device) ORDER BY d",
          "[[\"A\",30.0],[\"B\",7.0],[\"C\",null]]");
}

static void test_where_three_valued(void **state)
{
    fixture *f = *state;
    check(f, "SELECT device, temp FROM temps WHERE temp > 6 OR device = 'c' ORDER BY ts",
          "[[\"a\",10.0],[\"a\",20.0],[\"c\",null],[\"a\",30.0],[\"b\",7.0]]");
    check(f, "SELECT temp FROM temps WHERE NOT (temp > 6)", "[[5.0]]");
    check(f, "SELECT device FROM temps WHERE temp IS NULL ORDER BY device", "[[\"b\"],[\"c\"]]");
    check(f, "SELECT count(*) FROM temps WHERE temp IS NOT NULL", "[[5]]");
    check(f, "SELECT temp FROM temps WHERE temp IN (5, 7) ORDER BY temp", "[[5.0],[7.0]]");
    check(f, "SELECT temp FROM temps WHERE temp NOT IN (5, NULL)", "[]");
    check(f, "SELECT temp FROM temps WHERE temp BETWEEN 7 AND 20 ORDER BY temp",
          "[[7.0],[10.0],[20.0]]");
    check(f, "SELECT count(*) FROM temps WHERE device LIKE 'a%' AND temp <> 20", "[[2]]");
    check(f, "SELECT count(*) FROM temps WHERE key LIKE '_'", "[[7]]");
    check(f, "SELECT count(*) FROM temps WHERE temp > 100", "[[0]]");
    /* Without ORDER BY a projection comes in event-time order. */
    check(f, "SELECT device FROM temps WHERE temp IS NOT NULL LIMIT 3",
          "[[\"a\"],[\"b\"],[\"a\"]]");
}

static void test_time_range(void **state)
{
    fixture *f = *state;
    check(f,
          "SELECT count(*) FROM temps WHERE ts >= CAST('2023-11-14 22:14:00' AS TIMESTAMP)",
          "[[3]]");
    check(f, "SELECT count(*) FROM temps WHERE ts >= now() - INTERVAL '1 day'", "[[0]]");
    check(f,
          "SELECT device FROM temps WHERE ts BETWEEN 1699999985000000000 AND "
          "1699999990000000000 ORDER BY ts",
          "[[\"b\"],[\"a\"]]");
    check(f, "SELECT count(*) FROM temps WHERE ts < 1699999985000000000 + 1s", "[[2]]");
}

static void test_having_order_limit(void **state)
{
    fixture *f = *state;
    check(f,
          "SELECT device, count(*) AS n FROM temps GROUP BY device HAVING count(*) > 2 "
          "ORDER BY device",
          "[[\"a\",3],[\"b\",3]]");
    check(f, "SELECT device, sum(temp) AS s FROM temps GROUP BY device HAVING s > 20",
          "[[\"a\",60.0]]");
    check(f, "SELECT device, temp FROM temps ORDER BY temp DESC LIMIT 2",
          "[[\"a\",30.0],[\"a\",20.0]]");
    check(f, "SELECT temp FROM temps ORDER BY temp", "[[5.0],[7.0],[10.0],[20.0],[30.0],[null],[null]]");
    check(f, "SELECT temp FROM temps ORDER BY temp DESC LIMIT 6",
          "[[30.0],[20.0],[10.0],[7.0],[5.0],[null]]");
    check(f, "SELECT device, avg(temp) FROM temps GROUP BY device ORDER BY avg(temp) DESC LIMIT 1",
          "[[\"a\",20.0]]");
    check(f, "SELECT temp FROM temps LIMIT 0", "[]");
}

static void test_aggregates(void **state)
{
    fixture *f = *state;
    check(f,
          "SELECT count(*), count(temp), sum(temp), min(temp), max(temp), first(temp), "
          "last(temp) FROM temps",
          "[[7,5,72.0,5.0,30.0,10.0,7.0]]");
    check(f, "SELECT count(*) * 2 + 1, max(temp) - min(temp) FROM temps", "[[15,25.0]]");
    char *cols = NULL;
    char *rows = rows_of(f, "SELECT percentile_approx(temp, 0.5) AS p, regr_slope(temp, temp) "
                            "FROM temps", &cols);
    assert_string_equal(rows, "[[10.0,1.0]]");
    free(rows);
    free(cols);
}

static void test_projection_functions(void **state)
{
    fixture *f = *state;
    check(f,
          "SELECT device, CASE WHEN temp >= 20 THEN 'hot' WHEN temp IS NULL THEN 'none' "
          "ELSE 'ok' END AS c, CAST(temp AS BIGINT) AS i, upper(device), "
          "CASE device WHEN 'a' THEN 1 ELSE 2 END, temp * 1.5 FROM temps WHERE device = 'a' "
          "ORDER BY ts",
          "[[\"a\",\"ok\",10,\"A\",1,15.0],[\"a\",\"hot\",20,\"A\",1,30.0],"
          "[\"a\",\"hot\",30,\"A\",1,45.0]]");
    check(f, "SELECT meta->>'fw', meta->'fw', temps.temp FROM temps WHERE meta IS NOT NULL",
          "[[\"1.2\",\"1.2\",20.0]]");
    check(f, "SELECT concat(coalesce(status, 'none'), '!') FROM temps WHERE device <> 'a' ORDER BY ts",
          "[[\"none!\"],[\"ok!\"],[\"none!\"],[\"none!\"]]");
    check(f, "SELECT 10s, 7 / 2, 7 % 4, -temp FROM temps WHERE temp = 5",
          "[[10000000000,3,3,-5.0]]");
}

static void test_select_star(void **state)
{
    fixture *f = *state;
    char *cols = NULL;
    char *rows = rows_of(f, "SELECT * FROM temps WHERE device = 'c'", &cols);
    assert_string_equal(cols, "[\"ts\",\"key\",\"device\",\"t\",\"status\"]");
    assert_string_equal(rows, "[[1700000000000000000,\"c\",\"c\",1700000000000,\"ok\"]]");
    free(cols);
    free(rows);
    rows = rows_of(f, "SELECT * FROM temps WHERE temp = 5 OR status = 'ok' ORDER BY ts", &cols);
    assert_string_equal(cols, "[\"ts\",\"key\",\"device\",\"t\",\"temp\",\"status\"]");
    assert_string_equal(rows, "[[1699999985000000000,\"b\",\"b\",1699999985000,5.0,null],"
                              "[1700000000000000000,\"c\",\"c\",1700000000000,null,\"ok\"]]");
    free(cols);
    free(rows);
}

static void test_errors(void **state)
{
    fixture *f = *state;
    check_error(f, "SELECT * FROM nope", WEIR_ENOTFOUND, 1, 15, "unknown stream nope");
    check_error(f, "SELECT frob(temp) FROM temps", WEIR_EINVAL, 1, 8, "unknown function frob");
    check_error(f, "SELECT device FROM temps WHERE avg(temp) > 1", WEIR_EINVAL, 1, 32,
                "not allowed in WHERE");
    check_error(f, "SELECT device\nFROM temps\nWHERE sum(temp) > 1", WEIR_EINVAL, 3, 7,
                "not allowed in WHERE");
    check_error(f, "SELECT count(*) FROM temps GROUP BY TUMBLING(1m)", WEIR_EUNSUPPORTED, 1, 37,
                "not supported in history queries yet");
    check_error(f, "SELECT device, temp FROM temps GROUP BY device", WEIR_EINVAL, 1, 16,
                "must appear in GROUP BY");
    check_error(f, "SELECT x.temp FROM temps", WEIR_EINVAL, 1, 8, "unknown table");
    check_error(f, "SELECT temp FROM temps HAVING temp > 1", WEIR_EINVAL, 1, 31, "HAVING");
    check_error(f, "SELECT temp FROM temps ORDER BY 3", WEIR_EINVAL, 1, 33, "ORDER BY position");
    check_error(f, "SELECT temp FROM", WEIR_EINVAL, 1, 17, "");
    check_error(f, "SELECT upper(temp) FROM temps", WEIR_EINVAL, 0, 0, "upper");
    check_error(f, "SELECT a.temp FROM temps AS a JOIN temps AS b ON a.device = b.device WITHIN 1m",
                WEIR_EUNSUPPORTED, 1, 31, "JOIN");
}

static void test_bigger_stream(void **state)
{
    fixture *f = *state;
    json_t *def = json_loads("{\"name\":\"big\",\"format\":\"json\",\"partitions\":3,"
                             "\"key\":\"device\",\"timestamp\":\"t\",\"time_format\":\"ms\"}",
                             0, NULL);
    char err[256] = "";
    ingest_stream *s = NULL;
    assert_int_equal(ingest_define(f->in, def, "api", false, err, sizeof(err), &s), WEIR_OK);
    json_decref(def);
    size_t cap = 3000 * 64, used = 0;
    char *body = malloc(cap);
    for (int i = 0; i < 3000; i++)
        used += (size_t)snprintf(body + used, cap - used,
                                 "{\"device\":\"d%d\",\"t\":%lld,\"v\":%d}\n", i % 10,
                                 T0_MS + (long long)i * 1000, i);
    ingest_result res;
    int rc = ingest_batch(f->in, s, NULL, (const uint8_t *)body, used, T0_NS, &res, NULL, NULL);
    assert_true(rc == WEIR_OK || rc == WEIR_EAGAIN);
    assert_int_equal(res.accepted, 3000);
    json_decref(res.errors);
    free(body);
    assert_int_equal(stream_store_flush(f->st), WEIR_OK);

    check(f, "SELECT v FROM big ORDER BY v DESC LIMIT 3", "[[2999],[2998],[2997]]");
    check(f, "SELECT v FROM big ORDER BY v % 7, v LIMIT 3", "[[0],[7],[14]]");
    check(f, "SELECT device, count(*), sum(v) FROM big GROUP BY device ORDER BY device LIMIT 2",
          "[[\"d0\",300,448500],[\"d1\",300,448800]]");
    check(f, "SELECT count(*) FROM big GROUP BY v / 10 HAVING count(*) <> 10", "[]");
    /* 1000 s after T0: records 1000..2999. */
    check(f, "SELECT count(*), min(v) FROM big WHERE ts >= 1700000980000000000", "[[2000,1000]]");
    check(f, "SELECT count(*), max(v) FROM big WHERE _ts < 1700000980000000000 AND v >= 0",
          "[[1000,999]]");
    /* Without ORDER BY, the first rows in event time. */
    check(f, "SELECT v FROM big LIMIT 4", "[[0],[1],[2],[3]]");

    /* max_rows caps LIMIT. */
    json_t *out = NULL;
    sql_error e;
    const char *q = "SELECT v FROM big ORDER BY v LIMIT 100";
    assert_int_equal(sql_query_run(f->in, q, strlen(q), 5, &out, &e), WEIR_OK);
    assert_int_equal(json_array_size(json_object_get(out, "rows")), 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(out, "stats"), "scanned")),
                     3000);
    json_decref(out);
}

static void test_like(void **state)
{
    (void)state;
    assert_true(sql_like("hello", 5, "h%o", 3));
    assert_true(sql_like("hello", 5, "_ello", 5));
    assert_true(sql_like("h\xc3\xa9llo", 6, "h_llo", 5));
    assert_false(sql_like("hello", 5, "h_o", 3));
    assert_true(sql_like("", 0, "%", 1));
    assert_true(sql_like("abcabc", 6, "%bc", 3));
    assert_false(sql_like("abc", 3, "abcd", 4));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group_by_minute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_where_three_valued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_having_order_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_aggregates, setup, teardown),
        cmocka_unit_test_setup_teardown(test_projection_functions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_select_star, setup, teardown),
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bigger_stream, setup, teardown),
        cmocka_unit_test(test_like),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
