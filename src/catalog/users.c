/* users.c -- users, API tokens, grants and the audit outbox in the catalog
 * (schema version 4, see schema.c). Like streams.c, each call prepares,
 * runs and finalises its statement: these are rare administrative writes.
 * Nothing here interprets roles or patterns; auth/ does. */
#include "base/err.h"
#include "catalog/catalog_int.h"

#include <sqlite3.h>
#include <stdarg.h>
#include <string.h>

#define NOW_UTC "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* Runs one statement with parameters described by `types` ('t' text, which
 * may be NULL, 'i' long long); WEIR_OK when it changed a row, WEIR_ENOTFOUND
 * when none, WEIR_EEXIST on a uniqueness conflict, else the mapped error. */
static int exec_v(catalog *c, const char *sql, const char *types, va_list ap)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    for (int i = 0; types[i]; i++) {
        if (types[i] == 't') {
            const char *v = va_arg(ap, const char *);
            if (v)
                sqlite3_bind_text(st, i + 1, v, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(st, i + 1);
        } else {
            sqlite3_bind_int64(st, i + 1, (sqlite3_int64)va_arg(ap, long long));
        }
    }
    rc = sqlite3_step(st);
    int changes = sqlite3_changes(catalog_db(c));
    sqlite3_finalize(st);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE)
        return WEIR_EEXIST;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return WEIR_EINVAL;
    if (rc != SQLITE_DONE)
        return catalog__err(rc) ? catalog__err(rc) : WEIR_EINTERNAL;
    return changes ? WEIR_OK : WEIR_ENOTFOUND;
}

static int exec(catalog *c, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int rc = exec_v(c, sql, types, ap);
    va_end(ap);
    return rc;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    return (const char *)sqlite3_column_text(st, i);
}

/* Steps a prepared SELECT, calling row(st) for each row. */
static int each_row(catalog *c, const char *sql, int (*row)(sqlite3_stmt *st, void *cb, void *arg),
                    void *cb, void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    int out = WEIR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if ((out = row(st, cb, arg)))
            break;
    if (!out && rc != SQLITE_DONE)
        out = catalog__err(rc);
    sqlite3_finalize(st);
    return out;
}

/* ---- Users -------------------------------------------------------------- */

int catalog_user_add(catalog *c, const char *name, const char *kind, const char *role,
                     const char *password_hash)
{
    return exec(c, "INSERT INTO users (name, kind, role, password_hash) VALUES (?1, ?2, ?3, ?4)",
                "tttt", name, kind, role, password_hash);
}

int catalog_user_set_password(catalog *c, const char *name, const char *password_hash)
{
    return exec(c, "UPDATE users SET password_hash = ?2, updated_at = " NOW_UTC " WHERE name = ?1",
                "tt", name, password_hash);
}

int catalog_user_set_role(catalog *c, const char *name, const char *role)
{
    return exec(c, "UPDATE users SET role = ?2, updated_at = " NOW_UTC " WHERE name = ?1", "tt",
                name, role);
}

int catalog_user_set_disabled(catalog *c, const char *name, int disabled)
{
    return exec(c, "UPDATE users SET disabled = ?2, updated_at = " NOW_UTC " WHERE name = ?1", "ti",
                name, (long long)(disabled != 0));
}

int catalog_user_delete(catalog *c, const char *name)
{
    sqlite3 *db = catalog_db(c);
    int rc = catalog__err(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL));
    if (rc)
        return rc;
    /* Tokens cascade through the foreign key; grants name users as text. */
    rc = exec(c, "DELETE FROM grants WHERE subject_kind = 'user' AND subject = ?1", "t", name);
    if (rc == WEIR_ENOTFOUND)
        rc = WEIR_OK;
    if (!rc)
        rc = exec(c, "DELETE FROM users WHERE name = ?1", "t", name);
    if (rc) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    return catalog__err(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL));
}

static int user_row(sqlite3_stmt *st, void *cb, void *arg)
{
    catalog_user u = {
        .name = col_text(st, 0),
        .kind = col_text(st, 1),
        .role = col_text(st, 2),
        .password_hash = col_text(st, 3),
        .disabled = sqlite3_column_int(st, 4),
        .created_at = col_text(st, 5),
    };
    return ((int (*)(void *, const catalog_user *))cb)(arg, &u);
}

int catalog_user_list(catalog *c, int (*cb)(void *arg, const catalog_user *u), void *arg)
{
    return each_row(c,
                    "SELECT name, kind, role, password_hash, disabled, created_at FROM users "
                    "ORDER BY name",
                    user_row, (void *)cb, arg);
}

int catalog_user_count(catalog *c, long long *n)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), "SELECT count(*) FROM users", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    rc = sqlite3_step(st);
    *n = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? WEIR_OK : catalog__err(rc);
}

/* ---- Tokens ------------------------------------------------------------- */

int catalog_token_add(catalog *c, const char *id, const char *user, const char *secret_hash,
                      const char *description, long long expires_at)
{
    return exec(c,
                "INSERT INTO api_tokens (id, user, secret_hash, description, expires_at) "
                "VALUES (?1, ?2, ?3, ?4, ?5)",
                "tttti", id, user, secret_hash, description ? description : "", expires_at);
}

int catalog_token_revoke(catalog *c, const char *id)
{
    return exec(c, "UPDATE api_tokens SET revoked = 1 WHERE id = ?1", "t", id);
}

static int token_row(sqlite3_stmt *st, void *cb, void *arg)
{
    catalog_token t = {
        .id = col_text(st, 0),
        .user = col_text(st, 1),
        .secret_hash = col_text(st, 2),
        .description = col_text(st, 3),
        .expires_at = sqlite3_column_int64(st, 4),
        .revoked = sqlite3_column_int(st, 5),
        .created_at = col_text(st, 6),
    };
    return ((int (*)(void *, const catalog_token *))cb)(arg, &t);
}

int catalog_token_list(catalog *c, int (*cb)(void *arg, const catalog_token *t), void *arg)
{
    return each_row(c,
                    "SELECT id, user, secret_hash, description, expires_at, revoked, created_at "
                    "FROM api_tokens ORDER BY user, created_at",
                    token_row, (void *)cb, arg);
}

/* ---- Grants ------------------------------------------------------------- */

int catalog_grant_put(catalog *c, const catalog_grant *g)
{
    return exec(c,
                "INSERT INTO grants (subject_kind, subject, resource_kind, pattern, access) "
                "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (subject_kind, subject, resource_kind, "
                "pattern) DO UPDATE SET access = excluded.access",
                "ttttt", g->subject_kind, g->subject, g->resource_kind, g->pattern, g->access);
}

int catalog_grant_delete(catalog *c, const catalog_grant *g)
{
    return exec(c,
                "DELETE FROM grants WHERE subject_kind = ?1 AND subject = ?2 AND "
                "resource_kind = ?3 AND pattern = ?4",
                "tttt", g->subject_kind, g->subject, g->resource_kind, g->pattern);
}

static int grant_row(sqlite3_stmt *st, void *cb, void *arg)
{
    catalog_grant g = {
        .subject_kind = col_text(st, 0),
        .subject = col_text(st, 1),
        .resource_kind = col_text(st, 2),
        .pattern = col_text(st, 3),
        .access = col_text(st, 4),
    };
    return ((int (*)(void *, const catalog_grant *))cb)(arg, &g);
}

int catalog_grant_list(catalog *c, int (*cb)(void *arg, const catalog_grant *g), void *arg)
{
    return each_row(c,
                    "SELECT subject_kind, subject, resource_kind, pattern, access FROM grants "
                    "ORDER BY subject_kind, subject, resource_kind, pattern",
                    grant_row, (void *)cb, arg);
}

/* ---- Audit outbox and change detection ---------------------------------- */

int catalog_audit_outbox_put(catalog *c, const char *entry_json)
{
    return exec(c, "INSERT INTO audit_outbox (entry) VALUES (?1)", "t", entry_json);
}

int catalog_audit_outbox_drain(catalog *c, int (*cb)(void *arg, const char *entry_json), void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), "SELECT id, entry FROM audit_outbox ORDER BY id", -1,
                                &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    long long last = -1;
    int out = WEIR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((out = cb(arg, col_text(st, 1))))
            break;
        last = sqlite3_column_int64(st, 0);
    }
    if (!out && rc != SQLITE_DONE)
        out = catalog__err(rc);
    sqlite3_finalize(st);
    if (last >= 0) {
        int drc = exec(c, "DELETE FROM audit_outbox WHERE id <= ?1", "i", last);
        if (drc && drc != WEIR_ENOTFOUND && !out)
            out = drc;
    }
    return out;
}

int catalog_data_version(catalog *c, long long *v)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(catalog_db(c), "PRAGMA data_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    rc = sqlite3_step(st);
    *v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? WEIR_OK : catalog__err(rc);
}
