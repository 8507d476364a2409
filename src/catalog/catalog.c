/* catalog.c -- see catalog.h for the settings and the migration rules.
 *
 * Opening is: make the directory, open the file, set the connection pragmas,
 * read the applied version, refuse a newer or damaged history, apply each
 * missing migration in its own transaction, switch foreign keys on, load the
 * node id, prepare the key-value statements. Any failure unwinds through the
 * one cleanup label of catalog__open_with and leaves the file as the last
 * committed migration left it.
 */
#include "catalog/catalog_int.h"
#include "base/err.h"
#include "base/wlog.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CATALOG_BUSY_TIMEOUT_MS 5000
#define NODE_ID_LEN 32

struct catalog {
    sqlite3 *db;                  /* the connection; owned */
    char *path;                   /* "<data_dir>/catalog.db", for log lines */
    int version;                  /* newest schema version applied */
    char node_id[NODE_ID_LEN + 1]; /* from the node table, NUL-terminated */
    sqlite3_stmt *kv_get;         /* prepared once at open, reset after use */
    sqlite3_stmt *kv_put;
};

/* ---------------------------------------------------------------- errors */

/* The one place SQLite result codes become weir_err. */
int catalog__err(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return WEIR_OK;
    case SQLITE_NOMEM:
        return WEIR_ENOMEM;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return WEIR_EBUSY;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return WEIR_ECORRUPT;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_FULL:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return WEIR_EIO;
    case SQLITE_TOOBIG:
        return WEIR_ETOOBIG;
    default:
        return WEIR_EINTERNAL;
    }
}

/* ------------------------------------------------------------- files */

/* mkdir -p with mode 0700 for the directories it creates. */
static int make_dirs(const char *dir)
{
    int err = WEIR_OK;
    char *p = strdup(dir);
    if (!p)
        return WEIR_ENOMEM;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            err = WEIR_EIO;
            goto done;
        }
        *s = '/';
    }
    if (mkdir(p, 0700) != 0 && errno != EEXIST) {
        err = WEIR_EIO;
        goto done;
    }
    struct stat st;
    if (stat(p, &st) != 0) {
        err = WEIR_EIO;
    } else if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        err = WEIR_EIO;
    }
done:
    free(p);
    return err;
}

/* Makes a newly created file's directory entry durable. SQLite syncs the
 * directory for the -wal file it creates but not for the main file, whose
 * first bytes arrive at the first checkpoint; without this a power cut could
 * keep the WAL and lose the name of the database it belongs to. */
static void sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync(fd) != 0)
        wlog_warn("catalog", "dir_sync_failed", "dir=\"%s\" error=\"%s\"", dir, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* --------------------------------------------------------- statements */

/* Runs one statement that returns at most one integer; *out gets it (or
 * `dflt` when there is no row or it is NULL). */
static int query_int(sqlite3 *db, const char *sql, int dflt, int *out)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        *out = dflt;
        if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            *out = sqlite3_column_int(st, 0);
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Sets a pragma and checks that the connection reports the wanted value:
 * journal_mode answers what it actually chose (a file on a filesystem without
 * shared memory cannot do WAL), and foreign_keys answers nothing when SQLite
 * was built without them. */
static int set_pragma(catalog *c, const char *set, const char *get, const char *want)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_exec(c->db, set, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(c->db, get, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        const char *got = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
        if (rc == SQLITE_ROW || rc == SQLITE_DONE)
            rc = SQLITE_OK;
        if (rc == SQLITE_OK && (!got || strcmp(got, want) != 0)) {
            wlog_error("catalog", "pragma_refused", "path=\"%s\" pragma=\"%s\" got=\"%s\"",
                       c->path, set, got ? got : "(nothing)");
            sqlite3_finalize(st);
            return WEIR_EUNSUPPORTED;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_OK) {
        wlog_error("catalog", "pragma_failed", "path=\"%s\" pragma=\"%s\" error=\"%s\"", c->path,
                   set, sqlite3_errmsg(c->db));
        return catalog__err(rc);
    }
    return WEIR_OK;
}

/* ---------------------------------------------------------- migrations */

static int check_list(const catalog_migration *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (list[i].version != (int)i + 1 || !list[i].description || !list[i].sql) {
            wlog_error("catalog", "bad_migration_list", "index=%zu version=%d", i,
                       list[i].version);
            return WEIR_EINVAL;
        }
    }
    return WEIR_OK;
}

/* The newest applied version and how many rows schema_migrations holds; both
 * 0 for a file that has never been migrated. */
static int read_history(sqlite3 *db, int *version, int *count)
{
    int exists = 0;
    int rc = query_int(db,
                       "SELECT count(*) FROM sqlite_master"
                       " WHERE type = 'table' AND name = 'schema_migrations'",
                       0, &exists);
    *version = *count = 0;
    if (rc == SQLITE_OK && exists)
        rc = query_int(db, "SELECT max(version) FROM schema_migrations", 0, version);
    if (rc == SQLITE_OK && exists)
        rc = query_int(db, "SELECT count(*) FROM schema_migrations", 0, count);
    return rc;
}

static int record_migration(sqlite3 *db, const catalog_migration *m)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO schema_migrations (version, description, applied_at)"
                                " VALUES (?1, ?2, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                                -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_int(st, 1, m->version);
    if (rc == SQLITE_OK)
        rc = sqlite3_bind_text(st, 2, m->description, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    return rc;
}

/* SQLITE_OK when PRAGMA foreign_key_check finds nothing, SQLITE_CONSTRAINT
 * when a row violates a foreign key. */
static int check_foreign_keys(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA foreign_key_check", -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc == SQLITE_ROW ? SQLITE_CONSTRAINT : rc;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Applies one migration in its own transaction. BEGIN IMMEDIATE takes the
 * write lock first, so the version read inside it is the truth: when another
 * process got there first, the step is skipped. */
static int apply_migration(catalog *c, const catalog_migration *m)
{
    static const char create_history[] =
        "CREATE TABLE IF NOT EXISTS schema_migrations (\n"
        "  version     INTEGER PRIMARY KEY,\n"
        "  description TEXT NOT NULL,\n"
        "  applied_at  TEXT NOT NULL\n"
        ")";
    char *msg = NULL;
    const char *what = "begin";
    int version = 0, count = 0;
    int rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    what = "history";
    rc = sqlite3_exec(c->db, create_history, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = read_history(c->db, &version, &count);
    if (rc != SQLITE_OK)
        goto fail;
    if (version >= m->version) {
        /* Another process applied it between our read and our lock. */
        rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
        if (rc != SQLITE_OK)
            goto fail;
        return WEIR_OK;
    }
    what = "migration";
    rc = sqlite3_exec(c->db, m->sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        goto fail;
    if (sqlite3_get_autocommit(c->db)) {
        /* The SQL ended our transaction itself; what it did is committed
         * and cannot be undone here. A bug in the list, caught by tests. */
        wlog_error("catalog", "migration_failed",
                   "path=\"%s\" version=%d error=\"migration SQL must not end the transaction\"",
                   c->path, m->version);
        return WEIR_EINTERNAL;
    }
    what = "foreign_key_check";
    rc = check_foreign_keys(c->db);
    if (rc != SQLITE_OK)
        goto fail;
    what = "record";
    rc = record_migration(c->db, m);
    if (rc != SQLITE_OK)
        goto fail;
    what = "commit";
    rc = sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    wlog_info("catalog", "migrated", "path=\"%s\" version=%d description=\"%s\"", c->path,
              m->version, m->description);
    return WEIR_OK;
fail:
    wlog_error("catalog", "migration_failed",
               "path=\"%s\" version=%d description=\"%s\" step=%s error=\"%s\"", c->path,
               m->version, m->description, what, msg ? msg : sqlite3_errmsg(c->db));
    sqlite3_free(msg);
    /* SQLite may already have rolled back on its own (I/O errors, NOMEM). */
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    return catalog__err(rc);
}

static int migrate(catalog *c, const catalog_migration *list, size_t n)
{
    int version = 0, count = 0;
    int rc = read_history(c->db, &version, &count);
    if (rc != SQLITE_OK) {
        wlog_error("catalog", "open_failed", "path=\"%s\" step=history error=\"%s\"", c->path,
                   sqlite3_errmsg(c->db));
        return catalog__err(rc);
    }
    if ((size_t)version > n) {
        wlog_error("catalog", "schema_too_new",
                   "path=\"%s\" file_version=%d known_version=%zu"
                   " hint=\"written by a newer weir; run that version or restore a backup\"",
                   c->path, version, n);
        return WEIR_EUNSUPPORTED;
    }
    if (count != version) {
        wlog_error("catalog", "schema_history_damaged",
                   "path=\"%s\" newest_version=%d rows=%d", c->path, version, count);
        return WEIR_ECORRUPT;
    }
    for (size_t i = (size_t)version; i < n; i++) {
        int err = apply_migration(c, &list[i]);
        if (err)
            return err;
    }
    rc = read_history(c->db, &c->version, &count);
    return catalog__err(rc);
}

/* ------------------------------------------------------------- open */

static int load_node_id(catalog *c)
{
    sqlite3_stmt *st = NULL;
    int err = WEIR_OK;
    int rc = sqlite3_prepare_v2(c->db, "SELECT id FROM node WHERE singleton = 1", -1, &st, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        if (id && strlen(id) == NODE_ID_LEN)
            memcpy(c->node_id, id, NODE_ID_LEN + 1);
        else
            err = WEIR_ECORRUPT;
    } else {
        err = rc == SQLITE_DONE ? WEIR_ECORRUPT : catalog__err(rc);
    }
    if (err)
        wlog_error("catalog", "open_failed", "path=\"%s\" step=node_id error=\"%s\"", c->path,
                   err == WEIR_ECORRUPT ? "node row missing or malformed" : sqlite3_errmsg(c->db));
    sqlite3_finalize(st);
    return err;
}

static int prepare_statements(catalog *c)
{
    int rc = sqlite3_prepare_v3(c->db, "SELECT value FROM kv WHERE key = ?1", -1,
                                SQLITE_PREPARE_PERSISTENT, &c->kv_get, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v3(c->db,
                                "INSERT INTO kv (key, value) VALUES (?1, ?2)"
                                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                                -1, SQLITE_PREPARE_PERSISTENT, &c->kv_put, NULL);
    if (rc != SQLITE_OK)
        wlog_error("catalog", "open_failed", "path=\"%s\" step=prepare error=\"%s\"", c->path,
                   sqlite3_errmsg(c->db));
    return catalog__err(rc);
}

int catalog__open_with(const char *data_dir, const catalog_migration *list, size_t n,
                       catalog **out)
{
    catalog *c = NULL;
    int err, rc, existed;
    if (!out)
        return WEIR_EINVAL;
    *out = NULL;
    if (!data_dir || !*data_dir || (n && !list))
        return WEIR_EINVAL;
    err = check_list(list, n);
    if (err)
        return err;

    c = calloc(1, sizeof(*c));
    size_t plen = strlen(data_dir) + sizeof("/" CATALOG_FILE);
    if (!c || !(c->path = malloc(plen))) {
        err = WEIR_ENOMEM;
        goto fail;
    }
    snprintf(c->path, plen, "%s/%s", data_dir, CATALOG_FILE);

    err = make_dirs(data_dir);
    if (err) {
        wlog_error("catalog", "open_failed", "dir=\"%s\" step=mkdir error=\"%s\"", data_dir,
                   strerror(errno));
        goto fail;
    }
    existed = access(c->path, F_OK) == 0;
    rc = sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        wlog_error("catalog", "open_failed", "path=\"%s\" step=open error=\"%s\"", c->path,
                   c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        err = catalog__err(rc);
        goto fail;
    }
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, CATALOG_BUSY_TIMEOUT_MS);

    /* The first statement reads the header: a file that is not a database
     * fails here, before anything is written to it. */
    err = set_pragma(c, "PRAGMA journal_mode = WAL", "PRAGMA journal_mode", "wal");
    if (!err)
        err = set_pragma(c, "PRAGMA synchronous = FULL", "PRAGMA synchronous", "2");
    /* Off while migrating: see schema.c. */
    if (!err)
        err = set_pragma(c, "PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys", "0");
    if (!err)
        err = migrate(c, list, n);
    if (!err)
        err = set_pragma(c, "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys", "1");
    if (!err)
        err = load_node_id(c);
    if (!err)
        err = prepare_statements(c);
    if (err)
        goto fail;
    if (!existed)
        sync_dir(data_dir);
    wlog_debug("catalog", "opened", "path=\"%s\" version=%d node_id=%s", c->path, c->version,
               c->node_id);
    *out = c;
    return WEIR_OK;
fail:
    catalog_close(c);
    return err;
}

int catalog_open(const char *data_dir, catalog **out)
{
    size_t n;
    const catalog_migration *list = catalog__migrations(&n);
    return catalog__open_with(data_dir, list, n, out);
}

void catalog_close(catalog *c)
{
    if (!c)
        return;
    sqlite3_finalize(c->kv_get);
    sqlite3_finalize(c->kv_put);
    /* The last connection to close checkpoints the WAL into the main file. */
    if (c->db && sqlite3_close(c->db) != SQLITE_OK)
        wlog_warn("catalog", "close_failed", "path=\"%s\" error=\"%s\"", c->path,
                  sqlite3_errmsg(c->db));
    free(c->path);
    free(c);
}

/* ------------------------------------------------------------ accessors */

int catalog_schema_version(catalog *c)
{
    return c->version;
}

const char *catalog_node_id(catalog *c)
{
    return c->node_id;
}

sqlite3 *catalog_db(catalog *c)
{
    return c->db;
}

/* ------------------------------------------------------------ key-value */

int catalog_kv_get(catalog *c, const char *key, void **val, size_t *len)
{
    if (!val || !len)
        return WEIR_EINVAL;
    *val = NULL;
    *len = 0;
    if (!c || !key)
        return WEIR_EINVAL;
    int err = WEIR_OK;
    sqlite3_stmt *st = c->kv_get;
    int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        /* column_blob before column_bytes, as SQLite's docs require. */
        const void *blob = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        unsigned char *copy = malloc(n + 1);
        if (!copy) {
            err = WEIR_ENOMEM;
        } else {
            if (n)
                memcpy(copy, blob, n);
            copy[n] = '\0';
            *val = copy;
            *len = n;
        }
    } else if (rc == SQLITE_DONE) {
        err = WEIR_ENOTFOUND;
    } else {
        err = catalog__err(rc);
        wlog_error("catalog", "kv_get_failed", "key=\"%s\" error=\"%s\"", key,
                   sqlite3_errmsg(c->db));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}

int catalog_kv_put(catalog *c, const char *key, const void *val, size_t len)
{
    if (!c || !key || (!val && len))
        return WEIR_EINVAL;
    sqlite3_stmt *st = c->kv_put;
    int rc = sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    /* A zero-length blob bound from a pointer would still be stored as an
     * empty blob, but a NULL pointer would become SQL NULL; zeroblob(0) says
     * "empty value" whatever the pointer. */
    if (rc == SQLITE_OK)
        rc = len ? sqlite3_bind_blob64(st, 2, val, (sqlite3_uint64)len, SQLITE_STATIC)
                 : sqlite3_bind_zeroblob(st, 2, 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(st);
    int err = rc == SQLITE_DONE ? WEIR_OK : catalog__err(rc);
    if (err)
        wlog_error("catalog", "kv_put_failed", "key=\"%s\" len=%zu error=\"%s\"", key, len,
                   rc == SQLITE_TOOBIG ? sqlite3_errstr(rc) : sqlite3_errmsg(c->db));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return err;
}
