/* test_catalog_streams.c -- stream definitions, consumer offsets and the
 * record of imported files (catalog schema version 2). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/err.h"
#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[256];

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/weir-catalog-streams-XXXXXX");
    assert_non_null(mkdtemp(dir));
    catalog *c = NULL;
    assert_int_equal(catalog_open(dir, &c), WEIR_OK);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    catalog_close(*state);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

typedef struct seen {
    int n;
    char names[4][32];
} seen;

static int collect(void *arg, const char *name, const char *def, const char *origin)
{
    seen *s = arg;
    (void)def;
    (void)origin;
    snprintf(s->names[s->n++], sizeof(s->names[0]), "%s", name);
    return 0;
}

static void test_streams(void **state)
{
    catalog *c = *state;
    assert_true(catalog_schema_version(c) >= 2);
    assert_int_equal(catalog_stream_put(c, "printers", "{\"partitions\":4}", "api"), WEIR_OK);
    assert_int_equal(catalog_stream_put(c, "air", "{\"partitions\":1}", "config"), WEIR_OK);
    assert_int_equal(catalog_stream_put(c, "air", "{\"partitions\":2}", "config"), WEIR_OK);
    /* Not JSON: refused by the CHECK constraint, nothing stored. */
    assert_int_not_equal(catalog_stream_put(c, "bad", "{nope", "api"), WEIR_OK);
    seen s = {0};
    assert_int_equal(catalog_stream_list(c, collect, &s), WEIR_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.names[0], "air");
    assert_string_equal(s.names[1], "printers");
    assert_int_equal(catalog_stream_delete(c, "air"), WEIR_OK);
    assert_int_equal(catalog_stream_delete(c, "air"), WEIR_ENOTFOUND);
}

static void test_offsets_and_imports(void **state)
{
    catalog *c = *state;
    unsigned long long v = 0;
    assert_int_equal(catalog_stream_put(c, "s", "{}", "api"), WEIR_OK);
    assert_int_equal(catalog_offset_get(c, "g", "s", 0, &v), WEIR_ENOTFOUND);
    assert_int_equal(catalog_offset_commit(c, "g", "s", 0, 42), WEIR_OK);
    assert_int_equal(catalog_offset_commit(c, "g", "s", 0, 43), WEIR_OK);
    assert_int_equal(catalog_offset_get(c, "g", "s", 0, &v), WEIR_OK);
    assert_int_equal(v, 43);
    /* Offsets need their stream. */
    assert_int_not_equal(catalog_offset_commit(c, "g", "nostream", 0, 1), WEIR_OK);
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    assert_int_equal(catalog_import_get(c, "s", sha, &v), WEIR_ENOTFOUND);
    assert_int_equal(catalog_import_put(c, "s", sha, "a.csv", 19735), WEIR_OK);
    assert_int_equal(catalog_import_get(c, "s", sha, &v), WEIR_OK);
    assert_int_equal(v, 19735);
    /* Dropping the stream drops its offsets and imports. */
    assert_int_equal(catalog_stream_delete(c, "s"), WEIR_OK);
    assert_int_equal(catalog_offset_get(c, "g", "s", 0, &v), WEIR_ENOTFOUND);
    assert_int_equal(catalog_import_get(c, "s", sha, &v), WEIR_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_streams, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets_and_imports, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
