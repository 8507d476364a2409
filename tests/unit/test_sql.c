/* test_sql.c -- the SQL front end (src/sql/): parse/print round trips over a
 * broad table of statements (the DESIGN.md examples among them), precedence
 * made visible by the canonical parentheses, every kind of syntax error with
 * its line and column, deep nesting and size limits refused cleanly,
 * case-insensitive keywords, comments, and the AST fields a planner reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "sql/ast.h"
#include "sql/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text, prints it, and returns the print (static buffer). Fails the
 * test when the parse fails or when parse(print) prints differently. */
static const char *roundtrip(const char *text)
{
    static char out[8192];
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st;
    sql_error err;
    int rc = sql_parse(text, strlen(text), &a, &st, &err);
    if (rc != WEIR_OK)
        fail_msg("parse of [%s] failed: %s at %d:%d: %s", text, weir_err_name(rc), err.line,
                 err.column, err.msg);
    weir_buf b;
    buf_init(&b, 0);
    assert_int_equal(sql_print(st, &b), WEIR_OK);
    assert_true(buf_used(&b) < sizeof out);
    memcpy(out, buf_head(&b), buf_used(&b));
    out[buf_used(&b)] = 0;
    /* Second round. */
    sql_stmt *st2;
    rc = sql_parse(out, strlen(out), &a, &st2, &err);
    if (rc != WEIR_OK)
        fail_msg("re-parse of [%s] failed: %s at %d:%d: %s", out, weir_err_name(rc), err.line,
                 err.column, err.msg);
    buf_reset(&b);
    assert_int_equal(sql_print(st2, &b), WEIR_OK);
    assert_int_equal(buf_used(&b), strlen(out));
    assert_memory_equal(buf_head(&b), out, strlen(out));
    buf_free(&b);
    arena_free(&a);
    return out;
}

static void expect_print(const char *text, const char *canonical)
{
    const char *got = roundtrip(text);
    if (strcmp(got, canonical) != 0)
        fail_msg("[%s]\n  printed  [%s]\n  expected [%s]", text, got, canonical);
}

/* ---- round trips ------------------------------------------------------------ */

static const struct {
    const char *in, *out;
} cases[] = {
    /* The three DESIGN.md examples. */
    {"CREATE STREAM printers (device TEXT KEY, ts TIMESTAMP EVENT TIME,\n"
     "                        temperature DOUBLE, humidity DOUBLE)\n"
     "  WITH (source = 'mqtt:factory/+/printer/+/telemetry', format = 'json',\n"
     "        partitions = 4, retention = '14d');",
     "CREATE STREAM printers (device TEXT KEY, ts TIMESTAMP EVENT TIME, temperature DOUBLE, "
     "humidity DOUBLE) WITH (source = 'mqtt:factory/+/printer/+/telemetry', format = 'json', "
     "partitions = 4, retention = '14d')"},
    {"CREATE RULE printer_climate AS\n"
     "  SELECT device, avg(temperature) AS t_avg, avg(humidity) AS h_avg, count(*) AS n\n"
     "  FROM printers\n"
     "  GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s)\n"
     "  HAVING t_avg > 30\n"
     "  EMIT TO 'mqtt:alerts/{device}/climate';",
     "CREATE RULE printer_climate AS SELECT device, avg(temperature) AS t_avg, avg(humidity) AS "
     "h_avg, count(*) AS n FROM printers GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s) HAVING "
     "t_avg > 30 EMIT TO 'mqtt:alerts/{device}/climate'"},
    {"SELECT time_bucket('1m', ts) AS minute, device, avg(temperature)\n"
     "  FROM printers WHERE ts >= now() - INTERVAL '1 day'\n"
     "  GROUP BY minute, device ORDER BY minute;",
     "SELECT time_bucket('1m', ts) AS minute, device, avg(temperature) FROM printers WHERE ts >= "
     "(now() - 1d) GROUP BY minute, device ORDER BY minute"},
    /* Simple statements. */
    {"drop rule r1", "DROP RULE r1"},
    {"DROP STREAM s", "DROP STREAM s"},
    {"show streams;", "SHOW STREAMS"},
    {"Show Rules", "SHOW RULES"},
    {"start rule r", "START RULE r"},
    {"STOP RULE \"my rule\"", "STOP RULE \"my rule\""},
    {"EXPLAIN SELECT * FROM s", "EXPLAIN SELECT * FROM s"},
    {"explain create rule r as select a from s emit to 'stream:x'",
     "EXPLAIN CREATE RULE r AS SELECT a FROM s EMIT TO 'stream:x'"},
    /* Select list, aliases, stars, DISTINCT. */
    {"SELECT DISTINCT a, b x, c AS \"Y z\" FROM s", "SELECT DISTINCT a, b AS x, c AS \"Y z\" FROM s"},
    {"SELECT a.*, b.c FROM s AS a JOIN t b ON a.k = b.k WITHIN 5s",
     "SELECT a.*, b.c FROM s AS a JOIN t AS b ON a.k = b.k WITHIN 5s"},
    {"SELECT * FROM s LEFT OUTER JOIN t ON s.k = t.k WITHIN INTERVAL '2 minutes'",
     "SELECT * FROM s LEFT JOIN t ON s.k = t.k WITHIN 2m"},
    {"SELECT * FROM s INNER JOIN t ON s.k = t.k AND s.x > 1 WITHIN 1500ms",
     "SELECT * FROM s JOIN t ON (s.k = t.k) AND (s.x > 1) WITHIN 1500ms"},
    /* Clauses. */
    {"SELECT a FROM s WHERE a > 1 GROUP BY a HAVING count(*) > 2 ORDER BY a DESC, b ASC LIMIT 10",
     "SELECT a FROM s WHERE a > 1 GROUP BY a HAVING count(*) > 2 ORDER BY a DESC, b LIMIT 10"},
    {"SELECT count(DISTINCT d) FROM s", "SELECT count(DISTINCT d) FROM s"},
    {"SELECT sum(x) FILTER (WHERE x > 0) AS pos FROM s",
     "SELECT sum(x) FILTER (WHERE x > 0) AS pos FROM s"},
    /* Windows. */
    {"SELECT k FROM s GROUP BY k, TUMBLING(5s)", "SELECT k FROM s GROUP BY k, TUMBLING(SIZE 5s)"},
    {"SELECT k FROM s GROUP BY TUMBLING(SIZE 60s)", "SELECT k FROM s GROUP BY TUMBLING(SIZE 1m)"},
    {"SELECT k FROM s GROUP BY hopping(10s, 2s)",
     "SELECT k FROM s GROUP BY HOPPING(SIZE 10s, ADVANCE 2s)"},
    {"SELECT k FROM s GROUP BY SLIDING(5s)", "SELECT k FROM s GROUP BY SLIDING(SIZE 5s)"},
    {"SELECT k FROM s GROUP BY SESSION(GAP 30s)", "SELECT k FROM s GROUP BY SESSION(GAP 30s)"},
    {"SELECT k FROM s GROUP BY session(90s)", "SELECT k FROM s GROUP BY SESSION(GAP 90s)"},
    {"SELECT k FROM s GROUP BY COUNT(100)", "SELECT k FROM s GROUP BY COUNT(100)"},
    {"SELECT k FROM s GROUP BY COUNT(100, 10)", "SELECT k FROM s GROUP BY COUNT(100, 10)"},
    {"SELECT k FROM s GROUP BY TUMBLING(INTERVAL '1 hour')",
     "SELECT k FROM s GROUP BY TUMBLING(SIZE 1h)"},
    {"SELECT k FROM s GROUP BY (tumbling(k))", "SELECT k FROM s GROUP BY (tumbling(k))"},
    {"SELECT k FROM s GROUP BY (count(k) + 1), (k IS NULL)",
     "SELECT k FROM s GROUP BY (count(k) + 1), k IS NULL"},
    /* Literals. */
    {"SELECT 1, 2.5, 1e3, 1.5E-7, 0.1, 'it''s', TRUE, false, NULL FROM s",
     "SELECT 1, 2.5, 1000.0, 1.5e-07, 0.1, 'it''s', TRUE, FALSE, NULL FROM s"},
    {"SELECT 5s, 250ms, 1m, 2h, 1d, 10us, 7ns, 120s, 3600000ms FROM s",
     "SELECT 5s, 250ms, 1m, 2h, 1d, 10us, 7ns, 2m, 1h FROM s"},
    {"SELECT INTERVAL '5 minutes', INTERVAL '1 day', interval '1h 30m', INTERVAL '2 weeks' FROM s",
     "SELECT 5m, 1d, 90m, 14d FROM s"},
    {"SELECT TIMESTAMP '2024-01-01T00:00:00Z', TIMESTAMP '2024-02-29 12:30:00.5+01:00', "
     "TIMESTAMP '1969-12-31T23:59:59.999999999Z', TIMESTAMP '2024-03-01' FROM s",
     "SELECT TIMESTAMP '2024-01-01T00:00:00Z', TIMESTAMP '2024-02-29T11:30:00.5Z', "
     "TIMESTAMP '1969-12-31T23:59:59.999999999Z', TIMESTAMP '2024-03-01T00:00:00Z' FROM s"},
    {"SELECT '' , 'ünïcode ✓' FROM s", "SELECT '', 'ünïcode ✓' FROM s"},
    /* Identifiers. */
    {"SELECT \"select\", \"a\"\"b\", \"timestamp\", \"Dev\", key, count FROM \"from\"",
     "SELECT \"select\", \"a\"\"b\", \"timestamp\", Dev, key, count FROM \"from\""},
    {"SELECT timestamp, interval FROM s", "SELECT \"timestamp\", \"interval\" FROM s"},
    /* JSON extraction. */
    {"SELECT payload->'a'->'b', payload->>'c', p -> 0 FROM s",
     "SELECT (payload -> 'a') -> 'b', payload ->> 'c', p -> 0 FROM s"},
    /* Predicates. */
    {"SELECT * FROM s WHERE a IS NULL OR b IS NOT NULL",
     "SELECT * FROM s WHERE (a IS NULL) OR (b IS NOT NULL)"},
    {"SELECT * FROM s WHERE a BETWEEN 1 AND 2 AND b NOT BETWEEN 3 AND 4",
     "SELECT * FROM s WHERE (a BETWEEN 1 AND 2) AND (b NOT BETWEEN 3 AND 4)"},
    {"SELECT * FROM s WHERE a IN (1, 2, 3) AND b NOT IN ('x')",
     "SELECT * FROM s WHERE (a IN (1, 2, 3)) AND (b NOT IN ('x'))"},
    {"SELECT * FROM s WHERE a LIKE 'x%' OR b NOT LIKE '_y'",
     "SELECT * FROM s WHERE (a LIKE 'x%') OR (b NOT LIKE '_y')"},
    {"SELECT * FROM s WHERE a <> 1 AND b != 2 AND c <= 3 AND d >= 4 AND e < 5",
     "SELECT * FROM s WHERE ((((a <> 1) AND (b <> 2)) AND (c <= 3)) AND (d >= 4)) AND (e < 5)"},
    /* CASE, CAST. */
    {"SELECT CASE WHEN t > 30 THEN 'hot' WHEN t < 0 THEN 'cold' ELSE 'ok' END FROM s",
     "SELECT CASE WHEN t > 30 THEN 'hot' WHEN t < 0 THEN 'cold' ELSE 'ok' END FROM s"},
    {"SELECT CASE state WHEN 1 THEN 'on' END FROM s",
     "SELECT CASE state WHEN 1 THEN 'on' END FROM s"},
    {"SELECT CAST(x AS int), y::double, z::BOOL, w::text, v::json, u::timestamp FROM s",
     "SELECT CAST(x AS BIGINT), CAST(y AS DOUBLE), CAST(z AS BOOLEAN), CAST(w AS TEXT), "
     "CAST(v AS JSON), CAST(u AS TIMESTAMP) FROM s"},
    /* CREATE RULE with options before EMIT. */
    {"CREATE RULE r AS SELECT device, avg(t) FROM s GROUP BY device, TUMBLING(1m) "
     "WITH (lateness = '2s', watermark = 5s, retries = -3, ratio = 0.5, strict = true) "
     "EMIT TO 'webhook:http://x/y?a=1'",
     "CREATE RULE r AS SELECT device, avg(t) FROM s GROUP BY device, TUMBLING(SIZE 1m) "
     "WITH (lateness = '2s', watermark = 5s, retries = -3, ratio = 0.5, strict = TRUE) "
     "EMIT TO 'webhook:http://x/y?a=1'"},
    {"CREATE STREAM s (a INT, b BIGINT, c BOOLEAN, d BOOL, e JSON, f TIMESTAMP EVENT TIME KEY)",
     "CREATE STREAM s (a BIGINT, b BIGINT, c BOOLEAN, d BOOLEAN, e JSON, f TIMESTAMP KEY EVENT "
     "TIME)"},
};

static void test_roundtrip_table(void **state)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_print(cases[i].in, cases[i].out);
}

/* ---- precedence ------------------------------------------------------------- */

static const struct {
    const char *in, *out;
} prec[] = {
    {"1 + 2 * 3", "1 + (2 * 3)"},
    {"1 * 2 + 3", "(1 * 2) + 3"},
    {"1 - 2 - 3", "(1 - 2) - 3"},
    {"1 / 2 % 3 * 4", "((1 / 2) % 3) * 4"},
    {"-a * b", "(-a) * b"},
    {"-a::int", "-CAST(a AS BIGINT)"},
    {"- - a", "-(-a)"},
    {"+a", "a"},
    {"a OR b AND c", "a OR (b AND c)"},
    {"a AND b OR c", "(a AND b) OR c"},
    {"NOT a AND b", "(NOT a) AND b"},
    {"NOT a = b", "NOT (a = b)"},
    {"NOT NOT a", "NOT (NOT a)"},
    {"a = b + 1", "a = (b + 1)"},
    {"a + 1 BETWEEN b AND c * 2", "(a + 1) BETWEEN b AND (c * 2)"},
    {"a BETWEEN 1 AND 2 AND c", "(a BETWEEN 1 AND 2) AND c"},
    {"a IS NULL = FALSE", "(a IS NULL) = FALSE"},
    {"a + b IS NOT NULL", "(a + b) IS NOT NULL"},
    {"x->'a'->>'b' = 'c'", "((x -> 'a') ->> 'b') = 'c'"},
    {"x->'n' + 1", "(x -> 'n') + 1"},
    {"(1 + 2) * 3", "(1 + 2) * 3"},
    {"((a))", "a"},
    {"a LIKE 'x' || b", NULL},
    {"ts >= now() - INTERVAL '1 day'", "ts >= (now() - 1d)"},
    {"a NOT IN (1, 2) OR b", "(a NOT IN (1, 2)) OR b"},
    {"CAST(a + 1 AS double) * 2", "CAST(a + 1 AS DOUBLE) * 2"},
};

static void test_precedence(void **state)
{
    for (size_t i = 0; i < sizeof prec / sizeof prec[0]; i++) {
        char text[512], want[512];
        snprintf(text, sizeof text, "SELECT %s FROM s", prec[i].in);
        if (prec[i].out == NULL) {
            arena a;
            arena_init(&a, 1 << 20);
            sql_stmt *st;
            sql_error err;
            assert_int_equal(sql_parse(text, strlen(text), &a, &st, &err), WEIR_EINVAL);
            arena_free(&a);
            continue;
        }
        snprintf(want, sizeof want, "SELECT %s FROM s", prec[i].out);
        expect_print(text, want);
    }
}

/* ---- keywords and comments -------------------------------------------------- */

static void test_case_and_comments(void **state)
{
    expect_print("sElEcT a FrOm s wHeRe a iS nOt NuLl", "SELECT a FROM s WHERE a IS NOT NULL");
    expect_print("-- leading comment\nSELECT /* inline */ a -- trailing\nFROM s /* multi\nline */;",
                 "SELECT a FROM s");
    expect_print("SELECT a FROM s; -- after the semicolon", "SELECT a FROM s");
    expect_print("SELECT a-1 FROM s", "SELECT a - 1 FROM s");
    expect_print("SELECT a - -1 FROM s", "SELECT a - (-1) FROM s");
    /* Identifiers keep their case. */
    expect_print("SELECT Temperature FROM Printers", "SELECT Temperature FROM Printers");
}

/* ---- AST -------------------------------------------------------------------- */

static void test_ast_fields(void **state)
{
    const char *text = "CREATE RULE r AS\n  SELECT d, avg(t) AS a FROM s\n"
                       "  WHERE x IN (1, 2)\n  GROUP BY d, HOPPING(5s, 1s)\n"
                       "  WITH (lateness = '2s') EMIT TO 'stream:out'";
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st;
    sql_error err;
    assert_int_equal(sql_parse(text, strlen(text), &a, &st, &err), WEIR_OK);
    assert_int_equal(st->kind, SQL_STMT_CREATE_RULE);
    assert_string_equal(sql_stmt_kind_name(st->kind), "CREATE RULE");
    assert_string_equal(st->name, "r");
    sql_select *s = st->select;
    assert_int_equal(s->line, 2);
    assert_int_equal(s->column, 3);
    assert_int_equal(s->n_items, 2);
    assert_int_equal(s->items[1].expr->kind, SQL_N_CALL);
    assert_string_equal(s->items[1].expr->name, "avg");
    assert_string_equal(s->items[1].alias, "a");
    assert_int_equal(s->items[1].expr->line, 2);
    assert_int_equal(s->items[1].expr->column, 13);
    assert_int_equal(s->where->kind, SQL_N_IN);
    assert_int_equal(s->where->n_kids, 3);
    assert_int_equal(s->where->line, 3);
    assert_int_equal(s->where->column, 9);
    assert_int_equal(s->n_group, 2);
    assert_non_null(s->group[0].expr);
    assert_null(s->group[1].expr);
    assert_int_equal(s->group[1].window.kind, SQL_WIN_HOPPING);
    assert_int_equal(s->group[1].window.size_ns, 5000000000LL);
    assert_int_equal(s->group[1].window.advance_ns, 1000000000LL);
    assert_int_equal(s->options.n, 1);
    assert_string_equal(s->options.items[0].key, "lateness");
    assert_int_equal(s->options.items[0].value->value.type, REC_STRING);
    assert_string_equal(s->options.items[0].value->value.u.s.p, "2s");
    assert_string_equal(s->emit_target, "stream:out");
    assert_string_equal(sql_node_kind_name(SQL_N_BETWEEN), "between");
    assert_string_equal(sql_op_name(SQL_OP_JSON_TEXT), "->>");
    assert_string_equal(sql_type_name(SQL_TYPE_INT), "BIGINT");
    arena_free(&a);
}

/* ---- errors ----------------------------------------------------------------- */

static const struct {
    const char *text;
    int rc, line, column;
    const char *msg; /* a substring of the message */
} errors[] = {
    {"", WEIR_EINVAL, 1, 1, "expected a statement"},
    {"SELEC a FROM s", WEIR_EINVAL, 1, 1, "expected a statement"},
    {"SELECT a WHERE x", WEIR_EINVAL, 1, 10, "expected FROM after the select list, found 'WHERE'"},
    {"SELECT a\nFROM s\nWHERE", WEIR_EINVAL, 3, 6, "expected an expression, found end of input"},
    {"SELECT a FROM s x y", WEIR_EINVAL, 1, 19, "expected end of statement, found 'y'"},
    {"SELECT 'abc FROM s", WEIR_EINVAL, 1, 8, "unterminated string"},
    {"SELECT \"abc FROM s", WEIR_EINVAL, 1, 8, "unterminated quoted identifier"},
    {"SELECT \"\" FROM s", WEIR_EINVAL, 1, 8, "empty quoted identifier"},
    {"SELECT a /* never closed", WEIR_EINVAL, 1, 10, "unterminated block comment"},
    {"SELECT a # b FROM s", WEIR_EINVAL, 1, 10, "unexpected character '#'"},
    {"SELECT 99999999999999999999 FROM s", WEIR_EINVAL, 1, 8, "integer out of range"},
    {"SELECT 1e999 FROM s", WEIR_EINVAL, 1, 8, "number out of range"},
    {"SELECT 5x FROM s", WEIR_EINVAL, 1, 8, "invalid number or duration '5x'"},
    {"SELECT 99999999999d FROM s", WEIR_EINVAL, 1, 8, "duration out of range"},
    {"SELECT (a FROM s", WEIR_EINVAL, 1, 11, "expected ')' to close '(', found 'FROM'"},
    {"SELECT f(a b) FROM s", WEIR_EINVAL, 1, 12, "expected ',' or ')' in the argument list"},
    {"SELECT CASE WHEN a THEN b FROM s", WEIR_EINVAL, 1, 27, "expected END to close CASE"},
    {"SELECT CASE END FROM s", WEIR_EINVAL, 1, 13, "expected an expression"},
    {"SELECT CAST(a AS float8) FROM s", WEIR_EINVAL, 1, 18, "expected a type"},
    {"SELECT a IS 1 FROM s", WEIR_EINVAL, 1, 13, "expected NULL after IS"},
    {"SELECT a BETWEEN 1 OR 2 FROM s", WEIR_EINVAL, 1, 20, "expected AND in BETWEEN"},
    {"SELECT a IN 1 FROM s", WEIR_EINVAL, 1, 13, "expected '(' after IN"},
    {"SELECT INTERVAL '3 fortnights' FROM s", WEIR_EINVAL, 1, 17, "invalid interval"},
    {"SELECT TIMESTAMP '2024-02-30' FROM s", WEIR_EINVAL, 1, 18, "invalid timestamp"},
    {"SELECT s.* + 1 FROM s", WEIR_EINVAL, 1, 12, "expected FROM after the select list"},
    {"SELECT a FROM s WHERE s.* = 1", WEIR_EINVAL, 1, 25, "only allowed in the select list"},
    {"SELECT a FROM s GROUP a", WEIR_EINVAL, 1, 23, "expected BY after GROUP"},
    {"SELECT a FROM s GROUP BY TUMBLING(5)", WEIR_EINVAL, 1, 35, "expected a duration"},
    {"SELECT a FROM s GROUP BY TUMBLING(0s)", WEIR_EINVAL, 1, 35, "must be positive"},
    {"SELECT a FROM s GROUP BY HOPPING(5s)", WEIR_EINVAL, 1, 36, "expected ',' after the HOPPING size"},
    {"SELECT a FROM s GROUP BY COUNT(0)", WEIR_EINVAL, 1, 32, "expected a positive integer"},
    {"SELECT a FROM s GROUP BY TUMBLING(1s), SESSION(2s)", WEIR_EINVAL, 1, 40, "only one window"},
    {"SELECT a FROM s JOIN t ON a = b", WEIR_EINVAL, 1, 32, "expected WITHIN after the join condition"},
    {"SELECT a FROM s LIMIT x", WEIR_EINVAL, 1, 23, "expected an integer after LIMIT"},
    {"SELECT a FROM s EMIT TO 'x'", WEIR_EINVAL, 1, 17, "belongs to CREATE RULE"},
    {"CREATE RULE r AS SELECT a FROM s", WEIR_EINVAL, 1, 33, "expected EMIT after the rule's SELECT"},
    {"CREATE RULE r AS SELECT a FROM s EMIT TO x", WEIR_EINVAL, 1, 42, "expected a target string"},
    {"CREATE RULE r AS SELECT a FROM s EMIT TO ''", WEIR_EINVAL, 1, 42, "EMIT target is empty"},
    {"CREATE RULE r SELECT a FROM s EMIT TO 'x'", WEIR_EINVAL, 1, 15, "expected AS after the rule name"},
    {"CREATE TABLE t (a INT)", WEIR_EINVAL, 1, 8, "expected RULE or STREAM after CREATE"},
    {"CREATE STREAM s (a VARCHAR)", WEIR_EINVAL, 1, 20, "expected a type"},
    {"CREATE STREAM s (a INT KEY, b INT KEY)", WEIR_EINVAL, 1, 35, "at most one KEY"},
    {"CREATE STREAM s (a INT, a INT)", WEIR_EINVAL, 1, 25, "defined twice"},
    {"CREATE STREAM s (a INT) WITH (x = 1, x = 2)", WEIR_EINVAL, 1, 38, "given twice"},
    {"CREATE STREAM s (a INT) WITH (x = y)", WEIR_EINVAL, 1, 35, "expected a literal value"},
    {"CREATE STREAM s (a TIMESTAMP EVENT)", WEIR_EINVAL, 1, 35, "expected TIME after EVENT"},
    {"CREATE STREAM s (a INT) WITH (a=1,b=1,c=1,d=1,e=1,f=1,g=1,h=1,i=1,j=1,k=1,l=1,m=1,n=1,o=1,p=1,"
     "a2=1,b2=1,c2=1,d2=1,e2=1,f2=1,g2=1,h2=1,i2=1,j2=1,k2=1,l2=1,m2=1,n2=1,o2=1,p2=1,"
     "a3=1,b3=1,c3=1,d3=1,e3=1,f3=1,g3=1,h3=1,i3=1,j3=1,k3=1,l3=1,m3=1,n3=1,o3=1,p3=1,"
     "a4=1,b4=1,c4=1,d4=1,e4=1,f4=1,g4=1,h4=1,i4=1,j4=1,k4=1,l4=1,m4=1,n4=1,o4=1,p4=1,q=1)",
     WEIR_EINVAL, 1, 335, "more than 64 options"},
    {"DROP TABLE t", WEIR_EINVAL, 1, 6, "expected STREAM or RULE after DROP, found 'TABLE'"},
    {"SHOW", WEIR_EINVAL, 1, 5, "expected STREAMS or RULES after SHOW, found end of input"},
    {"DROP RULE select", WEIR_EINVAL, 1, 11, "expected a name after DROP RULE, found 'select'"},
    {"EXPLAIN DROP RULE r", WEIR_EINVAL, 1, 9, "expected SELECT or CREATE RULE after EXPLAIN"},
    {"SELECT a FROM s;;", WEIR_EINVAL, 1, 17, "expected end of statement"},
    {"SELECT a\n  FROM s\n  WHERE b = = 1", WEIR_EINVAL, 3, 13, "expected an expression, found '='"},
};

static void test_errors(void **state)
{
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) {
        arena a;
        arena_init(&a, 1 << 20);
        sql_stmt *st = (sql_stmt *)&a;
        sql_error err;
        int rc = sql_parse(errors[i].text, strlen(errors[i].text), &a, &st, &err);
        if (rc != errors[i].rc || err.line != errors[i].line || err.column != errors[i].column ||
            strstr(err.msg, errors[i].msg) == NULL)
            fail_msg("[%s]: got %s %d:%d \"%s\", want %s %d:%d \"%s\"", errors[i].text,
                     weir_err_name(rc), err.line, err.column, err.msg,
                     weir_err_name(errors[i].rc), errors[i].line, errors[i].column,
                     errors[i].msg);
        assert_null(st);
        arena_free(&a);
    }
}

static void test_bad_bytes(void **state)
{
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st;
    sql_error err;
    const char nul[] = "SELECT 'a\0b' FROM s";
    assert_int_equal(sql_parse(nul, sizeof nul - 1, &a, &st, &err), WEIR_EINVAL);
    assert_int_equal(err.column, 10);
    assert_non_null(strstr(err.msg, "NUL"));
    const char bad[] = "SELECT 'a\xff' FROM s";
    assert_int_equal(sql_parse(bad, sizeof bad - 1, &a, &st, &err), WEIR_EINVAL);
    assert_int_equal(err.column, 10);
    assert_non_null(strstr(err.msg, "UTF-8"));
    arena_free(&a);
}

/* ---- limits ----------------------------------------------------------------- */

static char *repeat(const char *pre, const char *unit, int n, const char *mid, const char *close,
                    const char *post)
{
    size_t cap = strlen(pre) + (strlen(unit) + strlen(close)) * (size_t)n + strlen(mid) +
                 strlen(post) + 1;
    char *s = malloc(cap);
    /* Appends at a moving end: strcat would rescan the text each time, and
     * 100000 units under ASan made this test take minutes. */
    char *p = s;
    size_t un = strlen(unit), cn = strlen(close);
    p = stpcpy(p, pre);
    for (int i = 0; i < n; i++, p += un)
        memcpy(p, unit, un);
    p = stpcpy(p, mid);
    for (int i = 0; i < n; i++, p += cn)
        memcpy(p, close, cn);
    stpcpy(p, post);
    return s;
}

static int parse_rc(const char *text, sql_error *err)
{
    arena a;
    arena_init(&a, 64 << 20);
    sql_stmt *st;
    int rc = sql_parse(text, strlen(text), &a, &st, err);
    arena_free(&a);
    return rc;
}

static void test_deep_nesting(void **state)
{
    sql_error err;
    /* Nesting within the bound parses... */
    char *ok = repeat("SELECT ", "(", 100, "1", ")", " FROM s");
    assert_int_equal(parse_rc(ok, &err), WEIR_OK);
    free(ok);
    /* ...and every kind of deep nesting beyond it is refused cleanly. */
    const char *units[][2] = {
        {"(", ")"}, {"- ", ""}, {"NOT ", ""}, {"f(", ")"}, {"CASE WHEN ", " THEN 1 END"},
        {"CAST(", " AS INT)"}, {"1 + ", ""}, {"a IN (", ")"},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char *deep = repeat("SELECT ", units[i][0], 20000, "1", units[i][1], " FROM s");
        int rc = parse_rc(deep, &err);
        if (rc != WEIR_ETOOBIG)
            fail_msg("unit '%s': %s %s", units[i][0], weir_err_name(rc), err.msg);
        assert_non_null(strstr(err.msg, "nested too deeply"));
        free(deep);
    }
    /* Long left-associative chains are bounded too (their trees are deep). */
    char *chain = repeat("SELECT 1", " + 1", 100000, "", "", " FROM s");
    assert_int_equal(parse_rc(chain, &err), WEIR_ETOOBIG);
    free(chain);
    char *chain2 = repeat("SELECT a", "::int", 100000, "", "", " FROM s");
    assert_int_equal(parse_rc(chain2, &err), WEIR_ETOOBIG);
    free(chain2);
    /* Wide but flat is fine. */
    char *wide = repeat("SELECT a IN (1", ", 1", 10000, ")", "", " FROM s");
    assert_int_equal(parse_rc(wide, &err), WEIR_OK);
    free(wide);
}

static void test_size_limits(void **state)
{
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st;
    sql_error err;
    const char *text = "SELECT a FROM s";
    assert_int_equal(sql_parse_limited(text, strlen(text), 10, 256, &a, &st, &err), WEIR_ETOOBIG);
    assert_null(st);
    assert_int_equal(sql_parse_limited(text, strlen(text), 100, 256, &a, &st, &err), WEIR_OK);
    arena_free(&a);
    /* A tiny arena: ETOOBIG, never a crash. */
    arena_init(&a, 600);
    char *big = repeat("SELECT 1", ", 1", 2000, "", "", " FROM s");
    assert_int_equal(sql_parse(big, strlen(big), &a, &st, &err), WEIR_ETOOBIG);
    assert_null(st);
    free(big);
    arena_free(&a);
    /* A bounded print buffer: EFULL. */
    arena_init(&a, 1 << 20);
    assert_int_equal(sql_parse(text, strlen(text), &a, &st, &err), WEIR_OK);
    weir_buf b;
    buf_init(&b, 5);
    assert_int_equal(sql_print(st, &b), WEIR_EFULL);
    buf_free(&b);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_table), cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_case_and_comments), cmocka_unit_test(test_ast_fields),
        cmocka_unit_test(test_errors),          cmocka_unit_test(test_bad_bytes),
        cmocka_unit_test(test_deep_nesting),    cmocka_unit_test(test_size_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
