/* test_catalog_rules.c -- rules and their checkpoints in the catalog
 * (schema version 3): put/get/list/delete, desired state and last error,
 * checkpoints saved whole and never replaced by an older epoch. */
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
    snprintf(dir, sizeof(dir), "/tmp/weir-catalog-rules-XXXXXX");
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

static int count_rule(void *arg, const catalog_rule *r)
{
    int *n = arg;
    assert_non_null(r->name);
    (*n)++;
    return 0;
}

static void test_rules(void **state)
{
    catalog *c = *state;
    assert_true(catalog_schema_version(c) >= 3);
    assert_int_equal(catalog_rule_put(c, "b", "CREATE RULE b ...", "{}", "running"), WEIR_OK);
    assert_int_equal(catalog_rule_put(c, "a", "CREATE RULE a ...", "{\"x\":1}", "stopped"),
                     WEIR_OK);
    assert_int_equal(catalog_rule_put(c, "a", "other", "{}", "running"), WEIR_EEXIST);
    assert_int_not_equal(catalog_rule_put(c, "c", "x", "{}", "paused"), WEIR_OK);
    catalog_rule r;
    assert_int_equal(catalog_rule_get(c, "a", &r), WEIR_OK);
    assert_string_equal(r.sql, "CREATE RULE a ...");
    assert_string_equal(r.options_json, "{\"x\":1}");
    assert_string_equal(r.desired, "stopped");
    assert_null(r.last_error);
    catalog_rule_clear(&r);
    assert_int_equal(catalog_rule_set_desired(c, "a", "running"), WEIR_OK);
    assert_int_equal(catalog_rule_set_error(c, "a", "state limit reached"), WEIR_OK);
    assert_int_equal(catalog_rule_get(c, "a", &r), WEIR_OK);
    assert_string_equal(r.desired, "running");
    assert_string_equal(r.last_error, "state limit reached");
    catalog_rule_clear(&r);
    assert_int_equal(catalog_rule_set_error(c, "nope", "x"), WEIR_ENOTFOUND);
    int n = 0;
    assert_int_equal(catalog_rule_list(c, count_rule, &n), WEIR_OK);
    assert_int_equal(n, 2);
    assert_int_equal(catalog_rule_delete(c, "b"), WEIR_OK);
    assert_int_equal(catalog_rule_delete(c, "b"), WEIR_ENOTFOUND);
    assert_int_equal(catalog_rule_get(c, "b", &r), WEIR_ENOTFOUND);
}

static void test_checkpoints(void **state)
{
    catalog *c = *state;
    catalog_checkpoint ck;
    /* no rule: the foreign key refuses it */
    assert_int_equal(catalog_checkpoint_save(c, "r", 1, "{}", 0, "s", 1), WEIR_ENOTFOUND);
    assert_int_equal(catalog_rule_put(c, "r", "CREATE RULE r ...", "{}", "running"), WEIR_OK);
    assert_int_equal(catalog_checkpoint_load(c, "r", &ck), WEIR_ENOTFOUND);
    const uint8_t blob[] = {0, 1, 2, 0, 255};
    assert_int_equal(catalog_checkpoint_save(c, "r", 2, "{\"inputs\":[]}", 7, blob, 5), WEIR_OK);
    /* an older epoch never replaces a newer one */
    assert_int_equal(catalog_checkpoint_save(c, "r", 1, "{}", 1, "x", 1), WEIR_ENOTFOUND);
    assert_int_equal(catalog_checkpoint_load(c, "r", &ck), WEIR_OK);
    assert_int_equal(ck.epoch, 2);
    assert_int_equal(ck.out_seq, 7);
    assert_string_equal(ck.offsets_json, "{\"inputs\":[]}");
    assert_int_equal(ck.state_len, 5);
    assert_memory_equal(ck.state, blob, 5);
    catalog_checkpoint_clear(&ck);
    assert_int_equal(catalog_checkpoint_save(c, "r", 3, "{}", 8, NULL, 0), WEIR_OK);
    assert_int_equal(catalog_checkpoint_load(c, "r", &ck), WEIR_OK);
    assert_int_equal(ck.epoch, 3);
    assert_int_equal(ck.state_len, 0);
    catalog_checkpoint_clear(&ck);
    /* not JSON offsets: refused */
    assert_int_not_equal(catalog_checkpoint_save(c, "r", 4, "{nope", 8, NULL, 0), WEIR_OK);
    /* deleting the rule removes its checkpoint */
    assert_int_equal(catalog_rule_delete(c, "r"), WEIR_OK);
    assert_int_equal(catalog_checkpoint_load(c, "r", &ck), WEIR_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
