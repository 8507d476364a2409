/* rules.c -- continuous rules and their checkpoints in the catalog (schema
 * version 3, see schema.c). Like streams.c, each call prepares, runs and
 * finalises its statement: rule definitions change rarely, and a
 * checkpoint is one statement per rule and interval (the runtime writes
 * them from a worker thread on its own connection, see engine/rules.c). */
#include "base/err.h"
#include "catalog/catalog_int.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static char *dup_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    if (!t)
        return NULL;
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, t, n);
        p[n] = 0;
    }
    return p;
}

void catalog_rule_clear(catalog_rule *r)
{
    free(r->name);
    free(r->sql);
    free(r->options_json);
    free(r->desired);
    free(r->last_error);
    memset(r, 0, sizeof(*r));
}

/* Prepares sql and binds the texts (NULL binds NULL). */
static int prep(catalog *c, const char *sql, sqlite3_stmt **st, int n, const char *const *texts)
{
    int rc = sqlite3_prepare_v2(catalog_db(c), sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return catalog__err(rc);
    for (int i = 0; i < n; i++) {
        if (texts[i])
            sqlite3_bind_text(*st, i + 1, texts[i], -1, SQLITE_TRANSIENT);
        else
            sqlite3_bind_null(*st, i + 1);
    }
    return WEIR_OK;
}

/* Steps a statement that changes rows: WEIR_OK when it changed one,
 * WEIR_ENOTFOUND when none. */
static int run_change(catalog *c, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    int changes = sqlite3_changes(catalog_db(c));
    int ext = sqlite3_extended_errcode(catalog_db(c));
    sqlite3_finalize(st);
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        if (ext == SQLITE_CONSTRAINT_PRIMARYKEY || ext == SQLITE_CONSTRAINT_UNIQUE)
            return WEIR_EEXIST;
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return WEIR_ENOTFOUND; /* the rule is gone */
        return WEIR_EINVAL;        /* a CHECK: bad desired state, offsets not JSON */
    }
    if (rc != SQLITE_DONE)
        return catalog__err(rc) ? catalog__err(rc) : WEIR_EINTERNAL;
    return changes ? WEIR_OK : WEIR_ENOTFOUND;
}

static int change(catalog *c, const char *sql, int n, const char *const *texts)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, sql, &st, n, texts);
    return rc ? rc : run_change(c, st);
}

int catalog_rule_put(catalog *c, const char *name, const char *sql, const char *options_json,
                     const char *desired)
{
    const char *t[] = {name, sql, options_json ? options_json : "{}", desired};
    return change(c,
                  "INSERT INTO rules (name, sql, options, desired) VALUES (?1, ?2, ?3, ?4)", 4,
                  t);
}

int catalog_rule_delete(catalog *c, const char *name)
{
    const char *t[] = {name};
    /* Foreign keys cascade to rule_checkpoints. */
    return change(c, "DELETE FROM rules WHERE name = ?1", 1, t);
}

int catalog_rule_set_desired(catalog *c, const char *name, const char *desired)
{
    const char *t[] = {name, desired};
    return change(c,
                  "UPDATE rules SET desired = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', "
                  "'now') WHERE name = ?1",
                  2, t);
}

int catalog_rule_set_error(catalog *c, const char *name, const char *last_error)
{
    const char *t[] = {name, last_error};
    return change(c,
                  "UPDATE rules SET last_error = ?2, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', "
                  "'now') WHERE name = ?1",
                  2, t);
}

static int fill_rule(sqlite3_stmt *st, catalog_rule *r)
{
    memset(r, 0, sizeof(*r));
    r->name = dup_col(st, 0);
    r->sql = dup_col(st, 1);
    r->options_json = dup_col(st, 2);
    r->desired = dup_col(st, 3);
    r->last_error = dup_col(st, 4);
    if (!r->name || !r->sql || !r->options_json || !r->desired) {
        catalog_rule_clear(r);
        return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

#define RULE_COLS "SELECT name, sql, options, desired, last_error FROM rules"

int catalog_rule_get(catalog *c, const char *name, catalog_rule *out)
{
    sqlite3_stmt *st = NULL;
    const char *t[] = {name};
    memset(out, 0, sizeof(*out));
    int rc = prep(c, RULE_COLS " WHERE name = ?1", &st, 1, t);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    int res = rc == SQLITE_ROW ? fill_rule(st, out)
              : rc == SQLITE_DONE ? WEIR_ENOTFOUND
                                  : catalog__err(rc);
    sqlite3_finalize(st);
    return res;
}

int catalog_rule_list(catalog *c, int (*cb)(void *arg, const catalog_rule *r), void *arg)
{
    sqlite3_stmt *st = NULL;
    int rc = prep(c, RULE_COLS " ORDER BY name", &st, 0, NULL);
    if (rc)
        return rc;
    int out = WEIR_OK;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        catalog_rule r;
        if ((out = fill_rule(st, &r)))
            break;
        out = cb(arg, &r);
        catalog_rule_clear(&r);
        if (out)
            break;
    }
    if (!out && rc != SQLITE_DONE)
        out = catalog__err(rc);
    sqlite3_finalize(st);
    return out;
}

int catalog_checkpoint_save(catalog *c, const char *rule, unsigned long long epoch,
                            const char *offsets_json, unsigned long long out_seq,
                            const void *state, size_t state_len)
{
    if (epoch > INT64_MAX || out_seq > INT64_MAX || state_len > INT32_MAX)
        return WEIR_EINVAL;
    sqlite3_stmt *st = NULL;
    const char *t[] = {rule};
    int rc = prep(c,
                  "INSERT INTO rule_checkpoints (rule, epoch, offsets, out_seq, state) "
                  "VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT(rule) DO UPDATE SET "
                  "epoch = excluded.epoch, offsets = excluded.offsets, out_seq = "
                  "excluded.out_seq, state = excluded.state, updated_at = "
                  "strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE excluded.epoch > "
                  "rule_checkpoints.epoch",
                  &st, 1, t);
    if (rc)
        return rc;
    sqlite3_bind_int64(st, 2, (sqlite3_int64)epoch);
    sqlite3_bind_text(st, 3, offsets_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)out_seq);
    sqlite3_bind_blob(st, 5, state_len ? state : "", (int)state_len, SQLITE_TRANSIENT);
    return run_change(c, st);
}

void catalog_checkpoint_clear(catalog_checkpoint *ck)
{
    free(ck->offsets_json);
    free(ck->state);
    memset(ck, 0, sizeof(*ck));
}

int catalog_checkpoint_load(catalog *c, const char *rule, catalog_checkpoint *out)
{
    sqlite3_stmt *st = NULL;
    const char *t[] = {rule};
    memset(out, 0, sizeof(*out));
    int rc = prep(c, "SELECT epoch, offsets, out_seq, state FROM rule_checkpoints WHERE rule = ?1",
                  &st, 1, t);
    if (rc)
        return rc;
    rc = sqlite3_step(st);
    int res = WEIR_OK;
    if (rc == SQLITE_ROW) {
        out->epoch = (unsigned long long)sqlite3_column_int64(st, 0);
        out->offsets_json = dup_col(st, 1);
        out->out_seq = (unsigned long long)sqlite3_column_int64(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 3);
        out->state = malloc(n ? n : 1);
        if (out->state && n)
            memcpy(out->state, sqlite3_column_blob(st, 3), n);
        out->state_len = n;
        if (!out->offsets_json || !out->state) {
            catalog_checkpoint_clear(out);
            res = WEIR_ENOMEM;
        }
    } else {
        res = rc == SQLITE_DONE ? WEIR_ENOTFOUND : catalog__err(rc);
    }
    sqlite3_finalize(st);
    return res;
}

int catalog_checkpoint_delete(catalog *c, const char *rule)
{
    const char *t[] = {rule};
    return change(c, "DELETE FROM rule_checkpoints WHERE rule = ?1", 1, t);
}
