/* test_metrics.c -- the registry and the Prometheus text it renders.
 *
 * The render is checked line by line against the shape of format 0.0.4:
 * comments are "# HELP name text" / "# TYPE name counter|gauge", every other
 * line is "name[{labels}] value", HELP and TYPE come once per family and
 * right before its series.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/buf.h"
#include "base/err.h"
#include "metrics/metrics.h"

/* Renders m into a NUL-terminated heap string. */
static char *render(metrics *m)
{
    weir_buf b;
    buf_init(&b, 0);
    assert_int_equal(metrics_render(m, &b), WEIR_OK);
    assert_int_equal(buf_append(&b, "", 1), WEIR_OK);
    char *s = strdup((const char *)buf_head(&b));
    buf_free(&b);
    assert_non_null(s);
    return s;
}

/* The line that starts with prefix, or NULL. */
static const char *find_line(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0)
            return p;
    return NULL;
}

/* The number after "prefix" on its line; asserts the line is there. */
static double line_value(const char *text, const char *prefix)
{
    const char *line = find_line(text, prefix);
    assert_non_null(line);
    return strtod(line + strlen(prefix), NULL);
}

static int count_lines(const char *text, const char *prefix)
{
    int n = 0;
    size_t len = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        n += strncmp(p, prefix, len) == 0;
    return n;
}

static double gauge_value(void *arg)
{
    return *(double *)arg;
}

static void test_counter_same_pointer(void **state)
{
    metrics *m = metrics_new();
    assert_non_null(m);
    uint64_t *a = metrics_counter(m, "weir_packets_total", "Packets.", "type=\"PUBLISH\"");
    uint64_t *b = metrics_counter(m, "weir_packets_total", "ignored", "type=\"PUBLISH\"");
    uint64_t *c = metrics_counter(m, "weir_packets_total", "Packets.", "type=\"CONNECT\"");
    uint64_t *d = metrics_counter(m, "weir_other_total", "Other.", NULL);
    uint64_t *e = metrics_counter(m, "weir_other_total", "Other.", "");
    assert_non_null(a);
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    assert_ptr_equal(d, e); /* "" and NULL both mean no labels */
    assert_int_equal(*a, 0);
    (*a)++;
    (*a)++;
    *c += 5;

    char *text = render(m);
    assert_non_null(strstr(text, "weir_packets_total{type=\"PUBLISH\"} 2\n"));
    assert_non_null(strstr(text, "weir_packets_total{type=\"CONNECT\"} 5\n"));
    assert_non_null(strstr(text, "\nweir_other_total 0\n"));
    /* HELP from the first registration wins. */
    assert_non_null(strstr(text, "# HELP weir_packets_total Packets.\n"));
    free(text);
    metrics_free(m);
}

static void test_grouping(void **state)
{
    metrics *m = metrics_new();
    double g = 1.5;
    assert_non_null(metrics_counter(m, "a_total", "A.", "x=\"1\""));
    assert_non_null(metrics_counter(m, "b_total", "B.", NULL));
    assert_int_equal(metrics_gauge(m, "c", "C.", NULL, gauge_value, &g), WEIR_OK);
    assert_non_null(metrics_counter(m, "a_total", "A.", "x=\"2\""));

    char *text = render(m);
    assert_int_equal(count_lines(text, "# HELP a_total "), 1);
    assert_int_equal(count_lines(text, "# TYPE a_total counter"), 1);
    const char *help_a = find_line(text, "# HELP a_total");
    const char *type_a = find_line(text, "# TYPE a_total");
    const char *a1 = find_line(text, "a_total{x=\"1\"} 0");
    const char *a2 = find_line(text, "a_total{x=\"2\"} 0");
    const char *help_b = find_line(text, "# HELP b_total");
    const char *c = find_line(text, "c 1.5");
    assert_non_null(a1);
    assert_non_null(a2);
    assert_non_null(help_b);
    assert_non_null(c);
    /* Families in registration order, series grouped under their family. */
    assert_true(help_a < type_a && type_a < a1 && a1 < a2 && a2 < help_b && help_b < c);
    assert_non_null(find_line(text, "# TYPE c gauge"));
    free(text);
    metrics_free(m);
}

static void test_gauges_and_values(void **state)
{
    metrics *m = metrics_new();
    double v[] = {NAN, INFINITY, -INFINITY, 0.1, 1e21, -3};
    assert_int_equal(metrics_gauge(m, "g", "G.", "k=\"nan\"", gauge_value, &v[0]), WEIR_OK);
    assert_int_equal(metrics_gauge(m, "g", "G.", "k=\"inf\"", gauge_value, &v[1]), WEIR_OK);
    assert_int_equal(metrics_gauge(m, "g", "G.", "k=\"ninf\"", gauge_value, &v[2]), WEIR_OK);
    assert_int_equal(metrics_gauge(m, "g", "G.", "k=\"tenth\"", gauge_value, &v[3]), WEIR_OK);
    assert_int_equal(metrics_gauge(m, "g", "G.", "k=\"big\"", gauge_value, &v[4]), WEIR_OK);
    assert_int_equal(metrics_gauge(m, "g", "G.", "k=\"neg\"", gauge_value, &v[5]), WEIR_OK);
    char *text = render(m);
    assert_non_null(strstr(text, "g{k=\"nan\"} NaN\n"));
    assert_non_null(strstr(text, "g{k=\"inf\"} +Inf\n"));
    assert_non_null(strstr(text, "g{k=\"ninf\"} -Inf\n"));
    assert_non_null(strstr(text, "g{k=\"tenth\"} 0.1\n"));
    assert_non_null(strstr(text, "g{k=\"big\"} 1e+21\n"));
    assert_non_null(strstr(text, "g{k=\"neg\"} -3\n"));
    free(text);

    /* The gauge is read at render time, not at registration. */
    v[5] = 42;
    text = render(m);
    assert_non_null(strstr(text, "g{k=\"neg\"} 42\n"));
    free(text);
    metrics_free(m);
}

static void test_errors(void **state)
{
    metrics *m = metrics_new();
    double g = 0;
    assert_null(metrics_counter(m, "9starts_with_digit", "x", NULL));
    assert_null(metrics_counter(m, "has space", "x", NULL));
    assert_null(metrics_counter(m, "", "x", NULL));
    assert_int_equal(metrics_gauge(m, "bad-dash", "x", NULL, gauge_value, &g), WEIR_EINVAL);
    assert_int_equal(metrics_gauge(m, "g", "x", NULL, NULL, NULL), WEIR_EINVAL);

    assert_int_equal(metrics_gauge(m, "g", "x", NULL, gauge_value, &g), WEIR_OK);
    assert_int_equal(metrics_gauge(m, "g", "x", NULL, gauge_value, &g), WEIR_EEXIST);
    /* A name keeps its type. */
    assert_null(metrics_counter(m, "g", "x", NULL));
    assert_non_null(metrics_counter(m, "c_total", "x", NULL));
    assert_int_equal(metrics_gauge(m, "c_total", "x", "a=\"b\"", gauge_value, &g), WEIR_EINVAL);
    assert_non_null(metrics_counter(m, "ns:sub_total", "colons are allowed", NULL));
    metrics_free(m);
    metrics_free(NULL);
}

static void test_help_escaping(void **state)
{
    metrics *m = metrics_new();
    assert_non_null(metrics_counter(m, "e_total", "back\\slash and\nnewline \"quoted\"", NULL));
    char *text = render(m);
    assert_non_null(strstr(text, "# HELP e_total back\\\\slash and\\nnewline \"quoted\"\n"));
    free(text);
    metrics_free(m);
}

/* Every line has the 0.0.4 shape, and the process metrics are there with
 * plausible values. */
static void test_format_and_process(void **state)
{
    metrics *m = metrics_new();
    uint64_t *c = metrics_counter(m, "weir_x_total", "X.", "a=\"1\",b=\"two\"");
    *c = 7;
    char *text = render(m);

    size_t len = strlen(text);
    assert_true(len > 0 && text[len - 1] == '\n');
    for (char *line = text, *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = '\0';
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
            if (strncmp(line, "# TYPE ", 7) == 0) {
                const char *t = strrchr(line, ' ') + 1;
                assert_true(strcmp(t, "counter") == 0 || strcmp(t, "gauge") == 0);
            }
        } else {
            /* name, optional {labels}, one space, a number. */
            const char *sp = strrchr(line, ' ');
            assert_non_null(sp);
            char *end;
            double v = strtod(sp + 1, &end);
            assert_true(*end == '\0');
            assert_false(isnan(v));
            const char *brace = strchr(line, '{');
            if (brace && brace < sp)
                assert_true(sp[-1] == '}');
        }
        *nl = '\n';
    }

    assert_non_null(strstr(text, "weir_x_total{a=\"1\",b=\"two\"} 7\n"));
    static const char *const names[] = {
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "process_open_fds",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        char prefix[96];
        snprintf(prefix, sizeof(prefix), "%s ", names[i]);
        assert_true(line_value(text, prefix) >= 0);
        snprintf(prefix, sizeof(prefix), "# TYPE %s ", names[i]);
        assert_non_null(find_line(text, prefix));
    }
    assert_non_null(find_line(text, "# TYPE process_cpu_seconds_total counter"));
    /* Resident memory of a running ASan process is well over a megabyte, and
     * the start time is after 2020. */
    assert_true(line_value(text, "process_resident_memory_bytes ") > 1e6);
    assert_true(line_value(text, "process_start_time_seconds ") > 1.5e9);
    assert_true(line_value(text, "process_open_fds ") >= 3);
    free(text);
    metrics_free(m);
}

static void test_render_bounded(void **state)
{
    metrics *m = metrics_new();
    assert_non_null(metrics_counter(m, "weir_x_total", "X.", NULL));
    weir_buf b;
    buf_init(&b, 16);
    assert_int_equal(metrics_render(m, &b), WEIR_EFULL);
    buf_free(&b);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_same_pointer), cmocka_unit_test(test_grouping),
        cmocka_unit_test(test_gauges_and_values),    cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help_escaping),        cmocka_unit_test(test_format_and_process),
        cmocka_unit_test(test_render_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
