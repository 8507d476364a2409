/* streams.c -- stream definitions, consumer offsets and imported files in
 * the catalog (schema version 2, see schema.c). Each call prepares its
 * statement, runs it once and finalises it: these are administrative,
 * rare writes, not a hot path, and keeping no statement cache keeps the
 * catalog handle simple. */
#include "base/err.h"
#include "catalog/catalog_int.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

/* Runs one statement with text/int64 parameters described by `types`
 * ('t' text, 'i' long long); returns WEIR_OK when it changed a row,
 * WEIR_ENOTFOUND when it changed none, or the weir_err of the failure. */
static int exec_params(catalog *c, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    va_list ap;
    va_start(ap, types);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't')
            sqlite3_bind_text(st, i + 1, va_arg(ap, const char *), -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_int64(st, i + 1, (sqlite3_int64)va_arg(ap, long long));
    }
    va_end(ap);
    rc = sqlite3_step(st);
    int changes = sqlite3_changes(catalog_db(c));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return catalog__err(rc) ? catalog__err(rc) : WEIR_EINTERNAL;
    return changes ? WEIR_OK : WEIR_ENOTFOUND;
}

int catalog_stream_put(catalog *c, const char *name, const char *definition_json,
                       const char *origin)
{
    return exec_params(c,
                       "INSERT INTO streams (name, definition, origin) VALUES (?1, ?2, ?3) "
                       "ON CONFLICT(name) DO UPDATE SET definition = excluded.definition, "
                       "origin = excluded.origin",
                       "ttt", name, definition_json, origin);
}

int catalog_stream_delete(catalog *c, const char *name)
{
    /* Foreign keys cascade to consumer_offsets and imports. */
    return exec_params(c, "DELETE FROM streams WHERE name = ?1", "t", name);
}

int catalog_stream_list(catalog *c,
                        int (*cb)(void *arg, const char *name, const char *definition_json,
                                  const char *origin),
                        void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c),
                                "SELECT name, definition, origin FROM streams ORDER BY name", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    int out = WEIR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        out = cb(arg, (const char *)sqlite3_column_text(st, 0),
                 (const char *)sqlite3_column_text(st, 1), (const char *)sqlite3_column_text(st, 2));
        if (out)
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = catalog__err(rc);
    sqlite3_finalize(st);
    return out;
}

static int query_int64(catalog *c, const char *sql, const char *a, const char *b, long long p,
                       bool with_int, unsigned long long *value)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    sqlite3_bind_text(st, 1, a, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_TRANSIENT);
    if (with_int)
        sqlite3_bind_int64(st, 3, p);
    rc = sqlite3_step(st);
    int out = WEIR_ENOTFOUND;
    if (rc == SQLITE_ROW) {
        *value = (unsigned long long)sqlite3_column_int64(st, 0);
        out = WEIR_OK;
    } else if (rc != SQLITE_DONE) {
        out = catalog__err(rc);
    }
    sqlite3_finalize(st);
    return out;
}

int catalog_offset_get(catalog *c, const char *group, const char *stream, unsigned partition,
                       unsigned long long *next_offset)
{
    return query_int64(c,
                       "SELECT next_offset FROM consumer_offsets WHERE grp = ?1 AND stream = ?2 "
                       "AND partition = ?3",
                       group, stream, partition, true, next_offset);
}

int catalog_offset_commit(catalog *c, const char *group, const char *stream,
                          unsigned partition, unsigned long long next_offset)
{
    if (next_offset > INT64_MAX)
        return WEIR_EINVAL;
    return exec_params(c,
                       "INSERT INTO consumer_offsets (grp, stream, partition, next_offset) "
                       "VALUES (?1, ?2, ?3, ?4) ON CONFLICT(grp, stream, partition) DO UPDATE "
                       "SET next_offset = excluded.next_offset, updated_at = "
                       "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                       "ttii", group, stream, (long long)partition, (long long)next_offset);
}

int catalog_import_get(catalog *c, const char *stream, const char *sha256,
                       unsigned long long *records)
{
    return query_int64(c, "SELECT records FROM imports WHERE stream = ?1 AND sha256 = ?2", stream,
                       sha256, 0, false, records);
}

int catalog_import_put(catalog *c, const char *stream, const char *sha256,
                       const char *file_name, unsigned long long records)
{
    return exec_params(c,
                       "INSERT OR REPLACE INTO imports (stream, sha256, file_name, records) "
                       "VALUES (?1, ?2, ?3, ?4)",
                       "ttti", stream, sha256, file_name, (long long)records);
}
