/* test_record_time.c -- rec_parse_time as a table: RFC 3339 with Z and
 * offsets, the DEBS 7-digit fractions, the UCI "YYYY-MM-DD HH:MM:SS", epoch
 * numbers in every unit (the magnitude thresholds on both sides), explicit
 * units, strptime-style formats, and inputs that must fail. Expected values
 * were computed independently (date -u -d ... +%s%N). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "record/schema.h"

#include <stdio.h>
#include <string.h>

#define S 1000000000LL

typedef struct tcase {
    const char *in;
    const char *fmt;
    int rc;
    int64_t ns;
} tcase;

static const tcase cases[] = {
    /* RFC 3339 / ISO 8601 */
    {"1970-01-01T00:00:00Z", NULL, WEIR_OK, 0},
    {"2024-11-21T10:20:00Z", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T10:20:00.123Z", NULL, WEIR_OK, 1732184400 * S + 123000000},
    {"2024-11-21t10:20:00z", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T11:20:00+01:00", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T05:20:00-05:00", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T15:50:00+0530", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T12:20:00+02", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T10:20Z", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21T10:20", NULL, WEIR_OK, 1732184400 * S},
    {"2024-11-21", NULL, WEIR_OK, 1732147200 * S},
    {"2024-11-21T10:20:00,5Z", NULL, WEIR_OK, 1732184400 * S + 500000000},
    {"  2024-11-21T10:20:00Z  ", NULL, WEIR_OK, 1732184400 * S},
    /* DEBS 2012: 7 fraction digits and +00:00 */
    {"2012-02-22T16:46:28.9670320+00:00", NULL, WEIR_OK, 1329929188 * S + 967032000},
    {"2012-02-22T16:49:19.4374420+00:00", NULL, WEIR_OK, 1329929359 * S + 437442000},
    /* 9 digits exactly, and more (dropped, not rounded) */
    {"2024-11-21T10:20:00.123456789Z", NULL, WEIR_OK, 1732184400 * S + 123456789},
    {"2024-11-21T10:20:00.1234567899999Z", NULL, WEIR_OK, 1732184400 * S + 123456789},
    /* UCI: space separator, no zone = UTC */
    {"2016-01-11 17:00:00", NULL, WEIR_OK, 1452531600 * S},
    {"2016-05-27 18:00:00", NULL, WEIR_OK, 1464372000 * S},
    {"2016-01-11 17:00:00.25", NULL, WEIR_OK, 1452531600 * S + 250000000},
    /* calendar corners */
    {"2024-02-29T00:00:00Z", NULL, WEIR_OK, 1709164800 * S},
    {"2000-02-29T00:00:00Z", NULL, WEIR_OK, 951782400 * S},
    {"1969-12-31T23:59:59Z", NULL, WEIR_OK, -1 * S},
    {"1900-01-01T00:00:00Z", NULL, WEIR_OK, -2208988800 * S},
    {"2262-04-11T23:47:16.854775807Z", NULL, WEIR_OK, INT64_MAX},
    {"1677-09-21T00:12:43.145224192Z", NULL, WEIR_OK, INT64_MIN},
    {"2016-12-31T23:59:60Z", NULL, WEIR_OK, 1483228800 * S}, /* leap second */
    /* epoch numbers, unit by magnitude */
    {"0", NULL, WEIR_OK, 0},
    {"1732184400", NULL, WEIR_OK, 1732184400 * S},
    {"1732184400.123", NULL, WEIR_OK, 1732184400 * S + 123000000},
    {"1732184400123", NULL, WEIR_OK, 1732184400123000000},
    {"1732184400123.5", NULL, WEIR_OK, 1732184400123500000},
    {"1732184400123456", NULL, WEIR_OK, 1732184400123456000},
    {"1732184400123456789", NULL, WEIR_OK, 1732184400123456789},
    {"-86400", NULL, WEIR_OK, -86400 * S},
    /* The largest value of each unit is read in that unit, which int64
     * nanoseconds cannot hold (so: an error, not a guess at another unit);
     * the smallest value of the next unit is 1973-03-03. */
    {"9000000000", NULL, WEIR_OK, 9000000000 * S},
    {"99999999999", NULL, WEIR_EMALFORMED, 0},
    {"100000000000", NULL, WEIR_OK, 100000000000 * 1000000LL},
    {"99999999999999", NULL, WEIR_EMALFORMED, 0},
    {"100000000000000", NULL, WEIR_OK, 100000000000000 * 1000LL},
    {"99999999999999999", NULL, WEIR_EMALFORMED, 0},
    {"100000000000000000", NULL, WEIR_OK, 100000000000000000LL},
    {"9223372036854775807", NULL, WEIR_OK, INT64_MAX},
    {"-9223372036854775808", NULL, WEIR_OK, INT64_MIN},
    {"-9223372036854775809", NULL, WEIR_EMALFORMED, 0},
    {"1.7321844e9", NULL, WEIR_OK, 1732184400 * S},
    {" 1732184400 ", NULL, WEIR_OK, 1732184400 * S},
    /* explicit units */
    {"1732184400", "s", WEIR_OK, 1732184400 * S},
    {"1732184400123", "ms", WEIR_OK, 1732184400123000000},
    {"5", "ms", WEIR_OK, 5000000},
    {"5", "us", WEIR_OK, 5000},
    {"5", "ns", WEIR_OK, 5},
    {"1.5", "s", WEIR_OK, 1500000000},
    {"2024-11-21", "s", WEIR_EMALFORMED, 0},
    {"9223372036854775807", "s", WEIR_EMALFORMED, 0},
    /* strptime-style */
    {"21/11/2024 10:20:00", "%d/%m/%Y %H:%M:%S", WEIR_OK, 1732184400 * S},
    {"21/11/2024 10:20:00.5", "%d/%m/%Y %T.%f", WEIR_OK, 1732184400 * S + 500000000},
    {"2024-11-21 11:20:00 +0100", "%F %T %z", WEIR_OK, 1732184400 * S},
    {"Thu, 21 Nov 2024 10:20:00 GMT", "%a, %d %b %Y %T %Z", WEIR_OK, 1732184400 * S},
    {"November 21 2024 10:20AM", "%B %d %Y %I:%M%p", WEIR_OK, 1732184400 * S},
    {"Nov 21 24 10:20 pm", "%b %d %y %I:%M %p", WEIR_OK, 1732227600 * S},
    {"12:00 AM 2024-11-21", "%I:%M %p %F", WEIR_OK, 1732147200 * S},
    {"2024 326 10:20", "%Y %j %H:%M", WEIR_OK, 1732184400 * S},
    {"1732184400", "%s", WEIR_OK, 1732184400 * S},
    {"100%", "100%%", WEIR_OK, 0},
    {"2024-11-21T10:20:00", "%Y-%m-%dT%H:%M:%S", WEIR_OK, 1732184400 * S},
    {"2024-1-2", "%Y-%m-%d", WEIR_OK, 1704153600 * S},
    {"2024-11-21  10:20", "%Y-%m-%d %H:%M", WEIR_OK, 1732184400 * S},
    {"2024-11-2110:20", "%Y-%m-%d %H:%M", WEIR_OK, 1732184400 * S},
    /* bad inputs */
    {"", NULL, WEIR_EMALFORMED, 0},
    {"   ", NULL, WEIR_EMALFORMED, 0},
    {"yesterday", NULL, WEIR_EMALFORMED, 0},
    {"2024-13-01", NULL, WEIR_EMALFORMED, 0},
    {"2024-00-01", NULL, WEIR_EMALFORMED, 0},
    {"2023-02-29", NULL, WEIR_EMALFORMED, 0},
    {"1900-02-29", NULL, WEIR_EMALFORMED, 0},
    {"2024-04-31", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T24:00:00Z", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T10:60:00Z", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T10:20:61Z", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T10:20:00+24:00", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T10:20:00.Z", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T10:20:00ZZ", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T10:20:00 UTC", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21X10:20:00", NULL, WEIR_EMALFORMED, 0},
    {"24-11-21", NULL, WEIR_EMALFORMED, 0},
    {"2024/11/21", NULL, WEIR_EMALFORMED, 0},
    {"2024-11-21T1:20:00Z", NULL, WEIR_EMALFORMED, 0},
    {"2262-04-11T23:47:16.854775808Z", NULL, WEIR_EMALFORMED, 0},
    {"1677-09-21T00:12:43.145224191Z", NULL, WEIR_EMALFORMED, 0},
    {"9999-12-31T23:59:59Z", NULL, WEIR_EMALFORMED, 0},
    {"1e30", NULL, WEIR_EMALFORMED, 0},
    {"99999999999999999999", NULL, WEIR_EMALFORMED, 0},
    {"0x10", NULL, WEIR_EMALFORMED, 0},
    {"nan", NULL, WEIR_EMALFORMED, 0},
    {"12:00", "%H:%M:%S", WEIR_EMALFORMED, 0},
    {"12:00:00 extra", "%H:%M:%S", WEIR_EMALFORMED, 0},
    {"13:00 PM", "%I:%M %p", WEIR_EMALFORMED, 0},
    {"Foo 21 2024", "%b %d %Y", WEIR_EMALFORMED, 0},
    {"2024 367", "%Y %j", WEIR_EMALFORMED, 0},
    {"2023 366", "%Y %j", WEIR_EMALFORMED, 0},
    {"2024", "%Q", WEIR_EINVAL, 0},
    {"2024", "%Y%", WEIR_EINVAL, 0},
};

static void test_time_table(void **state)
{
    int failures = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const tcase *c = &cases[i];
        int64_t ns = 12345;
        int rc = rec_parse_time(c->in, strlen(c->in), c->fmt, &ns);
        if (rc != c->rc || (rc == WEIR_OK && ns != c->ns)) {
            fprintf(stderr, "  \"%s\" fmt %s: got %s %lld, want %s %lld\n", c->in,
                    c->fmt ? c->fmt : "auto", weir_err_name(rc), (long long)ns,
                    weir_err_name(c->rc), (long long)c->ns);
            failures++;
        }
        if (rc != WEIR_OK && ns != 12345) {
            fprintf(stderr, "  \"%s\": output written on failure\n", c->in);
            failures++;
        }
    }
    assert_int_equal(failures, 0);
}

/* The input is a length-delimited span: bytes after it never matter. */
static void test_time_span(void **state)
{
    const char buf[] = "2024-11-21T10:20:00Zgarbage";
    int64_t ns;
    assert_int_equal(rec_parse_time(buf, 20, NULL, &ns), WEIR_OK);
    assert_int_equal(ns, 1732184400 * S);
    assert_int_equal(rec_parse_time("17321844001", 10, NULL, &ns), WEIR_OK);
    assert_int_equal(ns, 1732184400 * S);
}

static void test_schema_check(void **state)
{
    const char *why;
    rec_schema sc = {.format = REC_FMT_JSON};
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_OK);
    sc.ts_format = "%Y-%m-%d %Q";
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_EINVAL);
    assert_non_null(why);
    sc.ts_format = "ms";
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_OK);
    rec_decl dup[] = {{"a", REC_INT}, {"a", REC_DOUBLE}};
    sc.decls = dup;
    sc.n_decls = 2;
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_EINVAL);
    rec_decl nul[] = {{"a", REC_NULL}};
    sc.decls = nul;
    sc.n_decls = 1;
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_EINVAL);
    rec_decl ok[] = {{"a", REC_INT}, {"b", REC_JSON}};
    sc.decls = ok;
    sc.n_decls = 2;
    assert_int_equal(rec_schema_check(&sc, NULL), WEIR_OK);
    sc.format = REC_FMT_CSV;
    sc.csv_delim = '"';
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_EINVAL);
    sc.csv_delim = '\t';
    const char *cols[] = {"x", "y", "x"};
    sc.csv_columns = cols;
    sc.n_csv_columns = 3;
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_EINVAL);
    sc.n_csv_columns = 2;
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_OK);
    sc.format = (rec_format)7;
    assert_int_equal(rec_schema_check(&sc, &why), WEIR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_table),
        cmocka_unit_test(test_time_span),
        cmocka_unit_test(test_schema_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
