/* test_catalog.c -- the catalog: migrations, node id, key-value, refusals.
 *
 * Each test gets a fresh directory under $TMPDIR. The file is inspected with
 * a separate raw SQLite connection, so assertions are about what is on disk,
 * not about what the catalog handle believes. Failing migrations are run
 * through catalog__open_with and a list built on the real one, so the code
 * under test is the code the binary runs.
 */
#include "base/err.h"
#include "base/wlog.h"
#include "catalog/catalog.h"
#include "catalog/catalog_int.h"

#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

/* ---------------------------------------------------------------- helpers */

typedef struct fixture {
    char root[256]; /* the mkdtemp directory, removed at teardown */
    char data[320]; /* root/data: the data dir, not created in advance */
    char db[352];   /* data/catalog.db */
} fixture;

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(f->root, sizeof(f->root), "%s/weir-catalog-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(f->root)) {
        free(f);
        return -1;
    }
    snprintf(f->data, sizeof(f->data), "%s/data", f->root);
    snprintf(f->db, sizeof(f->db), "%s/%s", f->data, CATALOG_FILE);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Runs SQL on the file through a connection of its own. */
static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fprintf(stderr, "raw_exec: %s\n", msg);
    sqlite3_free(msg);
    assert_int_equal(rc, SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

/* The single integer a query returns (-1 for NULL or no row). */
static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    return v;
}

static long long table_exists(const char *path, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
    return raw_int(path, sql);
}

static int known_version(void)
{
    size_t n;
    catalog__migrations(&n);
    return (int)n;
}

/* The built-in list followed by one extra migration. */
static catalog_migration *list_plus(const char *description, const char *sql, size_t *n)
{
    const catalog_migration *real = catalog__migrations(n);
    catalog_migration *list = calloc(*n + 1, sizeof(*list));
    assert_non_null(list);
    memcpy(list, real, *n * sizeof(*list));
    list[*n] = (catalog_migration){(int)*n + 1, description, sql};
    (*n)++;
    return list;
}

/* ------------------------------------------------------------------ tests */

static void test_fresh_migrate(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
    assert_non_null(c);

    assert_int_equal(catalog_schema_version(c), known_version());
    const char *id = catalog_node_id(c);
    assert_int_equal(strlen(id), 32);
    assert_int_equal(strspn(id, "0123456789abcdef"), 32);

    /* The directory was created, private to the owner. */
    struct stat st;
    assert_int_equal(stat(f->data, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);

    /* Connection settings. */
    sqlite3 *db = catalog_db(c);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_keys", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA synchronous", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 2); /* FULL */
    sqlite3_finalize(q);
    catalog_close(c);

    /* On disk: WAL is a property of the file, the history is complete. */
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->db, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_close(raw), SQLITE_OK);

    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM schema_migrations"), known_version());
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM schema_migrations WHERE applied_at"
                                    " GLOB '20[0-9][0-9]-[01][0-9]-[0-3][0-9]T*Z'"),
                     known_version());
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM node"), 1);
    assert_int_equal(table_exists(f->db, "peers"), 1);
    assert_int_equal(table_exists(f->db, "kv"), 1);

    /* The node table refuses a second row. */
    sqlite3 *raw2 = NULL;
    assert_int_equal(sqlite3_open(f->db, &raw2), SQLITE_OK);
    int rc = sqlite3_exec(raw2, "INSERT INTO node VALUES (2, 'x', 'y')", NULL, NULL, NULL);
    assert_int_equal(rc, SQLITE_CONSTRAINT);
    sqlite3_close(raw2);
}

static void test_reopen_keeps_node_id(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    char id[33];
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
    snprintf(id, sizeof(id), "%s", catalog_node_id(c));
    catalog_close(c);
    char *applied = sqlite3_mprintf("%s", "");
    {
        sqlite3 *db = NULL;
        sqlite3_stmt *q = NULL;
        assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT group_concat(applied_at) FROM"
                                                " schema_migrations",
                                            -1, &q, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        sqlite3_free(applied);
        applied = sqlite3_mprintf("%s", sqlite3_column_text(q, 0));
        sqlite3_finalize(q);
        sqlite3_close(db);
    }

    for (int i = 0; i < 3; i++) {
        assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
        assert_string_equal(catalog_node_id(c), id);
        assert_int_equal(catalog_schema_version(c), known_version());
        catalog_close(c);
    }
    /* Reopening applied nothing again. */
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM schema_migrations"), known_version());
    char *sql = sqlite3_mprintf("SELECT group_concat(applied_at) = %Q FROM schema_migrations",
                                applied);
    assert_int_equal(raw_int(f->db, sql), 1);
    sqlite3_free(sql);
    sqlite3_free(applied);

    /* Another data dir is another node. */
    char other[400];
    snprintf(other, sizeof(other), "%s/other", f->root);
    assert_int_equal(catalog_open(other, &c), WEIR_OK);
    assert_string_not_equal(catalog_node_id(c), id);
    catalog_close(c);
}

static void test_kv_round_trip(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    void *val = NULL;
    size_t len = 99;
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);

    assert_int_equal(catalog_kv_get(c, "missing", &val, &len), WEIR_ENOTFOUND);
    assert_null(val);
    assert_int_equal(len, 0);

    assert_int_equal(catalog_kv_put(c, "greeting", "hello", 5), WEIR_OK);
    assert_int_equal(catalog_kv_get(c, "greeting", &val, &len), WEIR_OK);
    assert_int_equal(len, 5);
    assert_string_equal((char *)val, "hello"); /* NUL-terminated for text use */
    free(val);

    /* Replace, binary with NULs inside. */
    static const unsigned char bin[] = {0, 1, 2, 0, 255, 0};
    assert_int_equal(catalog_kv_put(c, "greeting", bin, sizeof(bin)), WEIR_OK);
    assert_int_equal(catalog_kv_get(c, "greeting", &val, &len), WEIR_OK);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(val, bin, sizeof(bin));
    free(val);

    /* An empty value is a value, not an absence. */
    assert_int_equal(catalog_kv_put(c, "empty", NULL, 0), WEIR_OK);
    assert_int_equal(catalog_kv_get(c, "empty", &val, &len), WEIR_OK);
    assert_non_null(val);
    assert_int_equal(len, 0);
    free(val);

    /* Bad arguments. */
    assert_int_equal(catalog_kv_put(c, NULL, "x", 1), WEIR_EINVAL);
    assert_int_equal(catalog_kv_put(c, "k", NULL, 1), WEIR_EINVAL);
    assert_int_equal(catalog_kv_get(c, NULL, &val, &len), WEIR_EINVAL);
    catalog_close(c);

    /* Durable across reopen. */
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
    assert_int_equal(catalog_kv_get(c, "greeting", &val, &len), WEIR_OK);
    assert_int_equal(len, sizeof(bin));
    assert_memory_equal(val, bin, sizeof(bin));
    free(val);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM kv"), 2);
    catalog_close(c);
}

static void test_future_version_refused(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
    catalog_close(c);

    char *sql = sqlite3_mprintf("INSERT INTO schema_migrations VALUES (%d, 'from the future',"
                                " '2099-01-01T00:00:00.000Z')",
                                known_version() + 1);
    raw_exec(f->db, sql);
    sqlite3_free(sql);

    assert_int_equal(catalog_open(f->data, &c), WEIR_EUNSUPPORTED);
    assert_null(c);
    /* Refused, not touched. */
    assert_int_equal(raw_int(f->db, "SELECT max(version) FROM schema_migrations"),
                     known_version() + 1);
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM node"), 1);
}

static void test_failed_migration_rolls_back(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    size_t n;
    /* Its first two statements succeed; the third fails. */
    catalog_migration *bad = list_plus("fails half way",
                                       "CREATE TABLE half (x INTEGER);\n"
                                       "INSERT INTO half VALUES (1);\n"
                                       "INSERT INTO node_typo VALUES (1);\n",
                                       &n);
    assert_int_equal(catalog__open_with(f->data, bad, n, &c), WEIR_EINTERNAL);
    assert_null(c);
    free(bad);

    /* The earlier migrations stay; nothing of the failed one does. */
    assert_int_equal(raw_int(f->db, "SELECT max(version) FROM schema_migrations"),
                     known_version());
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM schema_migrations"), known_version());
    assert_int_equal(table_exists(f->db, "half"), 0);
    assert_int_equal(table_exists(f->db, "node"), 1);

    /* The same binary opens it; a corrected migration then applies cleanly. */
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
    catalog_close(c);
    catalog_migration *good = list_plus("works", "CREATE TABLE half (x INTEGER);", &n);
    assert_int_equal(catalog__open_with(f->data, good, n, &c), WEIR_OK);
    assert_int_equal(catalog_schema_version(c), known_version() + 1);
    catalog_close(c);
    free(good);
    assert_int_equal(table_exists(f->db, "half"), 1);
}

static void test_failed_first_migration_leaves_nothing(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    static const catalog_migration broken[] = {
        {1, "broken", "CREATE TABLE node (x);\nSELECT * FROM nope;\n"},
    };
    assert_int_equal(catalog__open_with(f->data, broken, 1, &c), WEIR_EINTERNAL);
    assert_null(c);
    /* Not even the history table: the file is as if never migrated. */
    assert_int_equal(raw_int(f->db, "SELECT count(*) FROM sqlite_master"), 0);
    assert_int_equal(catalog_open(f->data, &c), WEIR_OK);
    assert_int_equal(catalog_schema_version(c), known_version());
    catalog_close(c);
}

static void test_damaged_history_refused(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    size_t n;
    catalog_migration *list = list_plus("extra", "CREATE TABLE extra (x);", &n);
    assert_int_equal(catalog__open_with(f->data, list, n, &c), WEIR_OK);
    catalog_close(c);
    raw_exec(f->db, "DELETE FROM schema_migrations WHERE version = 1");
    assert_int_equal(catalog__open_with(f->data, list, n, &c), WEIR_ECORRUPT);
    assert_null(c);
    free(list);
}

static void test_not_a_database(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    assert_int_equal(mkdir(f->data, 0700), 0);
    FILE *fp = fopen(f->db, "w");
    assert_non_null(fp);
    for (int i = 0; i < 64; i++)
        fputs("this is not a SQLite database, ", fp);
    fclose(fp);
    assert_int_equal(catalog_open(f->data, &c), WEIR_ECORRUPT);
    assert_null(c);
}

static void test_bad_arguments(void **state)
{
    fixture *f = *state;
    catalog *c = NULL;
    static const catalog_migration gap[] = {
        {1, "one", "CREATE TABLE one (x);"},
        {3, "three", "CREATE TABLE three (x);"},
    };
    assert_int_equal(catalog__open_with(f->data, gap, 2, &c), WEIR_EINVAL);
    assert_int_equal(catalog_open(NULL, &c), WEIR_EINVAL);
    assert_int_equal(catalog_open("", &c), WEIR_EINVAL);
    assert_int_equal(catalog_open(f->data, NULL), WEIR_EINVAL);

    /* A data dir that is a file. */
    FILE *fp = fopen(f->data, "w");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(catalog_open(f->data, &c), WEIR_EIO);
    assert_null(c);
}

int main(void)
{
    /* The refusals log errors on purpose; keep the test output readable
     * unless WEIR_TEST_LOG=1 asks to see them. */
    const char *show = getenv("WEIR_TEST_LOG");
    wlog_set_level(show && *show == '1' ? WLOG_DEBUG : WLOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fresh_migrate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reopen_keeps_node_id, setup, teardown),
        cmocka_unit_test_setup_teardown(test_kv_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_future_version_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_migration_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_first_migration_leaves_nothing, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_history_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_not_a_database, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
