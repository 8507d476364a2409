/* test_record_csv.c -- CSV/TSV decoding: quoting and trimming rules, value
 * classification, headers, errors with positions, and the two real data
 * files: the whole UCI appliances file (19,735 records, every field quoted,
 * numbers with leading spaces, CRLF) and the DEBS 2012 TSV (17,000 records,
 * no header, ISO timestamps with 7 fraction digits). The data directory is
 * $WEIR_DATA_DIR, else /work/shared/data; the file tests are skipped when
 * the files are not there. */
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

static int line(rec_csv *c, const char *s, record *r, rec_error *e)
{
    arena_reset(&A);
    size_t n = strlen(s);
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, s, n);
    memset(e, 0, sizeof(*e));
    int rc = rec_csv_line(c, copy, n, &A, r, e);
    memset(copy, 'X', n);
    free(copy);
    return rc;
}

static int header(rec_csv *c, const char *s, rec_error *e)
{
    memset(e, 0, sizeof(*e));
    return rec_csv_header(c, (const uint8_t *)s, strlen(s), e);
}

static const rec_value *get(const record *r, const char *name)
{
    const rec_value *v = record_get(r, name, strlen(name));
    if (!v)
        fail_msg("no field '%s'", name);
    return v;
}

static void assert_str(const rec_value *v, const char *want)
{
    assert_int_equal(v->type, REC_STRING);
    if (v->u.s.len != strlen(want) || memcmp(v->u.s.p, want, v->u.s.len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)v->u.s.len, v->u.s.p, want);
}

static void test_values(void **state)
{
    rec_schema sc = {.format = REC_FMT_CSV};
    rec_csv *c;
    assert_int_equal(rec_csv_new(&sc, &c), WEIR_OK);
    rec_error e;
    record r;
    assert_int_equal(line(c, "1,2", &r, &e), WEIR_EINVAL); /* no header yet */
    assert_int_equal(rec_csv_columns(c), 0);
    assert_int_equal(header(c,
                            "\xef\xbb\xbf"
                            "a, b ,\"c\",\"d,e\",\"f\"\"g\",,h\r\n",
                            &e),
                     WEIR_OK);
    assert_int_equal(rec_csv_columns(c), 7);
    assert_int_equal(line(c,
                          "  60 ,\" 7.02666\",\"6.5999999999999996e+00\",x y,\"a,\"\"b\"\"\",,"
                          "\r\n",
                          &r, &e),
                     WEIR_OK);
    assert_int_equal(r.n_fields, 7);
    /* Header names: trimmed, unquoted, "" undone, BOM skipped, empty named. */
    static const char *const names[] = {"a", "b", "c", "d,e", "f\"g", "_col6", "h"};
    for (int i = 0; i < 7; i++) {
        assert_int_equal(r.fields[i].name_len, strlen(names[i]));
        assert_memory_equal(r.fields[i].name, names[i], strlen(names[i]));
    }
    assert_int_equal(get(&r, "a")->type, REC_INT);
    assert_int_equal(get(&r, "a")->u.i, 60);
    assert_int_equal(get(&r, "b")->type, REC_DOUBLE);
    assert_true(get(&r, "b")->u.d == 7.02666);
    assert_int_equal(get(&r, "c")->type, REC_DOUBLE);
    assert_true(get(&r, "c")->u.d == 6.5999999999999996);
    assert_str(get(&r, "d,e"), "x y");
    assert_str(get(&r, "f\"g"), "a,\"b\"");
    assert_int_equal(get(&r, "_col6")->type, REC_NULL);
    assert_int_equal(get(&r, "h")->type, REC_NULL);

    /* Classification table, one column. */
    assert_int_equal(header(c, "v", &e), WEIR_OK);
    static const struct {
        const char *in;
        rec_type t;
        int64_t i;
        double d;
        const char *s;
    } vals[] = {
        {"0", REC_INT, 0, 0, NULL},
        {"-12", REC_INT, -12, 0, NULL},
        {"+12", REC_INT, 12, 0, NULL},
        {"0071", REC_INT, 71, 0, NULL},
        {"\"  60\"", REC_INT, 60, 0, NULL},
        {"9223372036854775807", REC_INT, INT64_MAX, 0, NULL},
        {"-9223372036854775808", REC_INT, INT64_MIN, 0, NULL},
        {"9223372036854775808", REC_DOUBLE, 0, 9223372036854775808.0, NULL},
        {"1.5", REC_DOUBLE, 0, 1.5, NULL},
        {"1.", REC_DOUBLE, 0, 1.0, NULL},
        {".5", REC_DOUBLE, 0, 0.5, NULL},
        {"-1e3", REC_DOUBLE, 0, -1000, NULL},
        {"\t2.5\t", REC_DOUBLE, 0, 2.5, NULL},
        {"", REC_NULL, 0, 0, NULL},
        {"   ", REC_NULL, 0, 0, NULL},
        {"\"\"", REC_STRING, 0, 0, ""},
        {"\"  \"", REC_STRING, 0, 0, "  "},
        {" x ", REC_STRING, 0, 0, " x "},
        {"1e999", REC_STRING, 0, 0, "1e999"},
        {"nan", REC_STRING, 0, 0, "nan"},
        {"inf", REC_STRING, 0, 0, "inf"},
        {"0x1F", REC_STRING, 0, 0, "0x1F"},
        {"1,5", REC_NULL, 0, 0, NULL}, /* two fields: an error, below */
        {"12 34", REC_STRING, 0, 0, "12 34"},
        {"-", REC_STRING, 0, 0, "-"},
        {"2016-01-11 17:00:00", REC_STRING, 0, 0, "2016-01-11 17:00:00"},
        {"ab\"c", REC_STRING, 0, 0, "ab\"c"},
        {"\"multi\nline\"", REC_STRING, 0, 0, "multi\nline"},
        {"caf\xc3\xa9", REC_STRING, 0, 0, "caf\xc3\xa9"},
        {" \"q\" ", REC_STRING, 0, 0, "q"},
    };
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        int rc = line(c, vals[i].in, &r, &e);
        if (strcmp(vals[i].in, "1,5") == 0) {
            assert_int_equal(rc, WEIR_EMALFORMED);
            continue;
        }
        if (rc == WEIR_EMALFORMED && strlen(vals[i].in) == 0)
            continue; /* an empty line is not a record; see test_errors */
        if (rc)
            fail_msg("'%s': %s", vals[i].in, e.msg);
        const rec_value *v = get(&r, "v");
        if (v->type != vals[i].t)
            fail_msg("'%s': %s", vals[i].in, rec_type_name(v->type));
        if (v->type == REC_INT)
            assert_true(v->u.i == vals[i].i);
        if (v->type == REC_DOUBLE)
            assert_true(v->u.d == vals[i].d);
        if (v->type == REC_STRING)
            assert_str(v, vals[i].s);
    }
    rec_csv_free(c);
}

static void test_schema(void **state)
{
    static const rec_decl decls[] = {
        {"id", REC_STRING}, {"t", REC_DOUBLE}, {"n", REC_INT}, {"ok", REC_BOOL}};
    rec_schema sc = {.format = REC_FMT_CSV,
                     .ts_field = "when",
                     .key_field = "id",
                     .decls = decls,
                     .n_decls = 4,
                     .csv_delim = ';'};
    rec_csv *c;
    assert_int_equal(rec_csv_new(&sc, &c), WEIR_OK);
    rec_error e;
    record r;
    assert_int_equal(header(c, "when;id;t;n;ok;other", &e), WEIR_OK);
    assert_int_equal(line(c, "2016-01-11 17:00:00;0071;20;\" 5 \";yes;1,5", &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 1452531600000000000);
    assert_int_equal(r.key_len, 4);
    assert_memory_equal(r.key, "0071", 4);
    assert_str(get(&r, "id"), "0071"); /* declared STRING keeps the text */
    assert_int_equal(get(&r, "t")->type, REC_DOUBLE);
    assert_true(get(&r, "t")->u.d == 20.0);
    assert_int_equal(get(&r, "n")->u.i, 5);
    assert_true(get(&r, "ok")->u.b);
    assert_str(get(&r, "other"), "1,5");
    assert_str(get(&r, "when"), "2016-01-11 17:00:00");
    /* Null ts and key: none. */
    assert_int_equal(line(c, ";;;;;", &r, &e), WEIR_OK);
    assert_int_equal(r.ts, 0);
    assert_null(r.key);
    /* Conversion failures name the column and point at the field. */
    assert_int_equal(line(c, "2016-01-11 17:00:00;a;x;1;1;", &r, &e), WEIR_EMALFORMED);
    assert_int_equal(e.column, 23);
    assert_non_null(strstr(e.msg, "column 't': not a number"));
    assert_int_equal(line(c, "2016-01-11 17:00:00;a;1;1.5;1;", &r, &e), WEIR_EMALFORMED);
    assert_non_null(strstr(e.msg, "column 'n': not an integer"));
    assert_int_equal(line(c, "yesterday;a;1;1;1;", &r, &e), WEIR_EMALFORMED);
    assert_int_equal(e.column, 1);
    assert_non_null(strstr(e.msg, "column 'when'"));
    rec_csv_free(c);

    /* A header line where the schema names the columns. */
    const char *cols[] = {"x", "y"};
    rec_schema sc2 = {.format = REC_FMT_CSV, .csv_columns = cols, .n_csv_columns = 2};
    assert_int_equal(rec_csv_new(&sc2, &c), WEIR_OK);
    assert_int_equal(rec_csv_columns(c), 2);
    assert_int_equal(header(c, "x,y", &e), WEIR_EINVAL);
    assert_int_equal(line(c, "1,2", &r, &e), WEIR_OK);
    rec_csv_free(c);

    /* Bad schemas. */
    rec_schema bad = {.format = REC_FMT_JSON};
    assert_int_equal(rec_csv_new(&bad, &c), WEIR_EINVAL);
    assert_null(c);
    bad.format = REC_FMT_CSV;
    bad.csv_delim = '\n';
    assert_int_equal(rec_csv_new(&bad, &c), WEIR_EINVAL);
}

static void test_errors(void **state)
{
    rec_schema sc = {.format = REC_FMT_CSV};
    rec_csv *c;
    assert_int_equal(rec_csv_new(&sc, &c), WEIR_OK);
    rec_error e;
    record r;
    /* Header errors. */
    assert_int_equal(header(c, "", &e), WEIR_EMALFORMED);
    assert_int_equal(header(c, "\r\n", &e), WEIR_EMALFORMED);
    assert_int_equal(header(c, "a,b,a", &e), WEIR_EMALFORMED);
    assert_int_equal(e.column, 5);
    assert_non_null(strstr(e.msg, "duplicate"));
    assert_int_equal(header(c, "a,\"b", &e), WEIR_EMALFORMED);
    assert_int_equal(e.column, 3);
    assert_int_equal(header(c, "a,\xff", &e), WEIR_EUTF8);
    assert_int_equal(rec_csv_columns(c), 0); /* a failed header leaves none */

    assert_int_equal(header(c, "a,b,c", &e), WEIR_OK);
    static const struct {
        const char *in;
        int rc;
        uint32_t line, col;
        const char *msg;
    } bad[] = {
        {"", WEIR_EMALFORMED, 1, 1, "empty line"},
        {"\r\n", WEIR_EMALFORMED, 1, 1, "empty line"},
        {"1,2", WEIR_EMALFORMED, 1, 4, "fewer fields than columns (3 columns)"},
        {"1", WEIR_EMALFORMED, 1, 2, "fewer fields"},
        {"1,2,3,4", WEIR_EMALFORMED, 1, 7, "more fields than columns (3 columns)"},
        {"1,2,3,", WEIR_EMALFORMED, 1, 7, "more fields"},
        {"1,\"2,3", WEIR_EMALFORMED, 1, 3, "unterminated quoted field"},
        {"1,\"2\"x,3", WEIR_EMALFORMED, 1, 6, "after a closing quote"},
        {"1,\"2\" \"3\",4", WEIR_EMALFORMED, 1, 7, "after a closing quote"},
        {"1,ok\xff,3", WEIR_EUTF8, 1, 5, "column 'b': not UTF-8"},
        {"1,\"a\"\"\xc3\",3", WEIR_EUTF8, 1, 3, "not UTF-8"},
        {"\"a\nb\",\"c\nd\"x,e", WEIR_EMALFORMED, 3, 3, "after a closing quote"},
    };
    int failures = 0;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = line(c, bad[i].in, &r, &e);
        if (rc != bad[i].rc || e.code != rc || e.line != bad[i].line || e.column != bad[i].col ||
            !strstr(e.msg, bad[i].msg)) {
            fprintf(stderr, "  '%s'\n    got %s %u:%u \"%s\"\n", bad[i].in, weir_err_name(rc),
                    e.line, e.column, e.msg);
            failures++;
        }
        if (r.fields || r.n_fields)
            failures++;
    }
    assert_int_equal(failures, 0);
    /* The arena bound. */
    arena small;
    arena_init(&small, 256);
    char big[600];
    memset(big, 'x', sizeof(big));
    memcpy(big, "1,2,", 4);
    assert_int_equal(rec_csv_line(c, (uint8_t *)big, sizeof(big), &small, &r, &e), WEIR_ETOOBIG);
    arena_free(&small);
    rec_csv_free(c);
}

/* ---- real data ------------------------------------------------------------ */

static char *slurp(const char *name, size_t *n)
{
    const char *dir = getenv("WEIR_DATA_DIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir ? dir : "/work/shared/data", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static void test_uci_file(void **state)
{
    size_t n;
    char *data = slurp("uci_appliances_energydata_complete.csv", &n);
    if (!data)
        skip();
    rec_schema sc = {.format = REC_FMT_CSV, .ts_field = "date"};
    rec_csv *c;
    assert_int_equal(rec_csv_new(&sc, &c), WEIR_OK);
    rec_error e;
    size_t pos = 0;
    uint32_t rows = 0, lineno = 0;
    int64_t prev_ts = 0;
    while (pos < n) {
        char *nl = memchr(data + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - data) + 1 : n;
        const uint8_t *ln = (const uint8_t *)data + pos;
        size_t len = end - pos;
        pos = end;
        lineno++;
        if (lineno == 1) {
            assert_int_equal(rec_csv_header(c, ln, len, &e), WEIR_OK);
            assert_int_equal(rec_csv_columns(c), 29);
            continue;
        }
        record r;
        arena_reset(&A);
        int rc = rec_csv_line(c, ln, len, &A, &r, &e);
        if (rc)
            fail_msg("line %u: %s at column %u", lineno, e.msg, e.column);
        assert_int_equal(r.n_fields, 29);
        const rec_value *app = get(&r, "Appliances"), *t1 = get(&r, "T1"), *rh1 = get(&r, "RH_1"),
                        *lights = get(&r, "lights");
        if (app->type != REC_INT || t1->type != REC_DOUBLE || rh1->type != REC_DOUBLE ||
            lights->type != REC_INT)
            fail_msg("line %u: types %s %s %s", lineno, rec_type_name(app->type),
                     rec_type_name(t1->type), rec_type_name(rh1->type));
        for (uint32_t k = 3; k < 29; k++)
            if (r.fields[k].v.type != REC_DOUBLE)
                fail_msg("line %u: %.*s is %s", lineno, r.fields[k].name_len, r.fields[k].name,
                         rec_type_name(r.fields[k].v.type));
        assert_int_equal(get(&r, "date")->type, REC_STRING);
        /* One reading every 600 s, without gaps. */
        if (rows) {
            assert_int_equal(r.ts - prev_ts, 600000000000LL);
        } else {
            /* "2016-01-11 17:00:00","  60","30","19.890000000000001","47.596666666666700" */
            assert_int_equal(r.ts, 1452531600000000000LL);
            assert_int_equal(app->u.i, 60);
            assert_int_equal(lights->u.i, 30);
            assert_true(t1->u.d == 19.89);
            assert_true(rh1->u.d == 47.5966666666667);
            assert_true(get(&r, "T6")->u.d == 7.026666666666669947);
        }
        prev_ts = r.ts;
        rows++;
    }
    assert_int_equal(rows, 19735);
    assert_int_equal(prev_ts, 1464372000000000000LL); /* 2016-05-27 18:00:00 UTC */
    rec_csv_free(c);
    free(data);
}

static int count_cb(void *arg, const record *r)
{
    (*(uint32_t *)arg)++;
    return 0;
}

static void test_uci_batch(void **state)
{
    size_t n;
    char *data = slurp("uci_appliances_energydata_complete.csv", &n);
    if (!data)
        skip();
    rec_schema sc = {.format = REC_FMT_CSV, .ts_field = "date"};
    uint32_t seen = 0, ok = 0, bad = 0;
    arena small;
    arena_init(&small, 64 << 10); /* the whole 12 MB body in a 64 KiB arena */
    assert_int_equal(rec_batch_decode(REC_FMT_CSV, false, (uint8_t *)data, n, &sc, &small, count_cb,
                                      NULL, &seen, &ok, &bad),
                     WEIR_OK);
    assert_int_equal(seen, 19735);
    assert_int_equal(ok, 19735);
    assert_int_equal(bad, 0);
    assert_true(arena_footprint(&small) <= (64 << 10));
    arena_free(&small);
    free(data);
}

static const char *const debs_columns[] = {
    "ts",   "index", "mf01", "mf02", "mf03", "pc13", "pc14", "pc15", "pc25", "pc26", "pc27", "res",
    "bm05", "bm06",  "bm07", "bm08", "bm09", "bm10", "pp01", "pp02", "pp03", "pp04", "pp05", "pp06",
    "pp07", "pp08",  "pp09", "pp10", "pp11", "pp12", "pp13", "pp14", "pp15", "pp16", "pp17", "pp18",
    "pp19", "pp20",  "pp21", "pp31", "pp32", "pp33", "pp34", "pp35", "pp36", "pc01", "pc02", "pc03",
    "pc04", "pc05",  "pc06", "pc19", "pc20", "pc21", "pc22", "pc23",
};

static void test_debs_file(void **state)
{
    size_t n;
    char *data = slurp("debs2012_gc_allData_first17000.tsv", &n);
    if (!data)
        skip();
    assert_int_equal(sizeof(debs_columns) / sizeof(debs_columns[0]), 56);
    rec_schema sc = {.format = REC_FMT_CSV,
                     .ts_field = "ts",
                     .csv_delim = '\t',
                     .csv_columns = debs_columns,
                     .n_csv_columns = 56};
    rec_csv *c;
    assert_int_equal(rec_csv_new(&sc, &c), WEIR_OK);
    rec_error e;
    size_t pos = 0;
    uint32_t rows = 0;
    int64_t first_ts = 0, prev_ts = 0, prev_index = 0;
    while (pos < n) {
        char *nl = memchr(data + pos, '\n', n - pos);
        size_t end = nl ? (size_t)(nl - data) + 1 : n;
        record r;
        arena_reset(&A);
        int rc = rec_csv_line(c, (uint8_t *)data + pos, end - pos, &A, &r, &e);
        if (rc)
            fail_msg("row %u: %s at column %u", rows + 1, e.msg, e.column);
        pos = end;
        assert_int_equal(r.n_fields, 56);
        for (uint32_t k = 1; k < 56; k++)
            assert_int_equal(r.fields[k].v.type, REC_INT);
        assert_int_equal(get(&r, "ts")->type, REC_STRING);
        int64_t index = get(&r, "index")->u.i;
        if (rows == 0) {
            first_ts = r.ts;
            assert_int_equal(index, 2556001);
            assert_int_equal(get(&r, "mf01")->u.i, 13056);
            assert_int_equal(get(&r, "pc13")->u.i, 71); /* "0071" */
        } else {
            assert_int_equal(index, prev_index + 1);
            assert_true(r.ts > prev_ts);
        }
        prev_ts = r.ts;
        prev_index = index;
        rows++;
    }
    assert_int_equal(rows, 17000);
    /* 2012-02-22T16:46:28.9670320+00:00 and 16:49:19.4374420 */
    assert_int_equal(first_ts, 1329929188967032000LL);
    assert_int_equal(prev_ts, 1329929359437442000LL);
    rec_csv_free(c);

    /* The batch splitter, with a small arena. */
    uint32_t seen = 0, ok = 0, bad = 0;
    arena small;
    arena_init(&small, 32 << 10);
    assert_int_equal(rec_batch_decode(REC_FMT_CSV, false, (uint8_t *)data, n, &sc, &small, count_cb,
                                      NULL, &seen, &ok, &bad),
                     WEIR_OK);
    assert_int_equal(seen, 17000);
    assert_int_equal(bad, 0);
    arena_free(&small);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values),    cmocka_unit_test(test_schema),
        cmocka_unit_test(test_errors),    cmocka_unit_test(test_uci_file),
        cmocka_unit_test(test_uci_batch), cmocka_unit_test(test_debs_file),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
