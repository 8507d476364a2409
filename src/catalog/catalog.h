/* catalog.h -- the node's metadata store: one SQLite file in the data dir.
 *
 * The catalog holds what describes the node rather than the data flowing
 * through it: the node's identity, its peers, and (in later schema versions)
 * streams, rules, users and checkpointed offsets. Readings never go here; they
 * go to the stream store. The file is `<data_dir>/catalog.db`.
 *
 * Connection settings, applied on every open, and why:
 *
 *   journal_mode=WAL    readers (`weir sql`, `weir user` run next to a live
 *                       `weir serve`) never block the writer nor it them, and
 *                       a commit is one append to the -wal file.
 *   synchronous=FULL    every commit fsyncs the WAL before it returns. With
 *                       NORMAL a commit survives a crash of the process but
 *                       the last few can vanish on power loss, and what the
 *                       catalog records is exactly what must not silently roll
 *                       back: a stream someone created and was told exists, a
 *                       user whose password was changed, a rule checkpoint
 *                       whose outputs were already emitted downstream (rolling
 *                       it back would emit them twice). Catalog writes are
 *                       control-plane events, a handful per second at most,
 *                       so one fsync each is cheap; a module that must write
 *                       many rows groups them in one transaction.
 *   busy_timeout=5000   another process holding the write lock (a CLI
 *                       command, a migration in progress) is waited for up to
 *                       5 s instead of failing at once with SQLITE_BUSY.
 *   foreign_keys=ON     SQLite leaves them off by default, per connection;
 *                       later tables (rules -> streams) rely on them.
 *
 * Schema versions. The schema is a list of migrations in schema.c, each
 * {version, description, sql}, numbered 1, 2, 3... with no gaps. The table
 * `schema_migrations(version, description, applied_at)` records every version
 * applied to the file, with the UTC time it was applied. catalog_open applies
 * the missing ones in order, each in its own BEGIN IMMEDIATE transaction that
 * also inserts its schema_migrations row, so a migration is either entirely
 * there or entirely absent, and two processes opening the same new file at
 * once cannot both apply it (the second sees the row and skips). Reopening an
 * up-to-date file changes nothing. A file whose newest version is beyond what
 * this binary knows was written by a newer weir; it is refused with
 * WEIR_EUNSUPPORTED rather than used half-understood.
 *
 * Threads: the catalog does blocking disk I/O (an fsync per commit), so code
 * on an event loop calls it only at start-up or from a worker thread. A
 * catalog handle is used by one thread at a time.
 */
#ifndef WEIR_CATALOG_CATALOG_H
#define WEIR_CATALOG_CATALOG_H

#include <stddef.h>

typedef struct sqlite3 sqlite3;
typedef struct catalog catalog;

/* The name of the catalog file inside the data directory. */
#define CATALOG_FILE "catalog.db"

/* Opens (creating if needed) `<data_dir>/catalog.db`, creating data_dir and
 * its parents (mode 0700: later versions keep password hashes here) when
 * missing, and migrates the schema to the newest version this binary knows.
 * On success stores a handle in *out and returns WEIR_OK. On failure *out is
 * NULL, the reason is logged, and the result is:
 *   WEIR_EUNSUPPORTED  the file's schema is newer than this binary;
 *   WEIR_ECORRUPT      not a SQLite file, or its migration history has gaps;
 *   WEIR_EBUSY         another process kept the file locked past the timeout;
 *   WEIR_EIO           the directory or file cannot be created or written;
 *   WEIR_ENOMEM, WEIR_EINVAL (NULL argument), WEIR_EINTERNAL (a migration
 *                      failed for another reason; it was rolled back). */
int catalog_open(const char *data_dir, catalog **out);

/* Closes the database and frees the handle. NULL is allowed. */
void catalog_close(catalog *c);

/* The newest schema version applied to the file (after catalog_open, the
 * newest this binary knows). */
int catalog_schema_version(catalog *c);

/* This node's id: 32 lowercase hex digits, random, generated when the
 * catalog was created and stable for the life of the data directory. Owned by
 * the catalog; valid until catalog_close. */
const char *catalog_node_id(catalog *c);

/* Reads the value stored under key. On WEIR_OK, *val is a malloc'd copy the
 * caller frees and *len its length; one extra NUL byte follows the value (not
 * counted in *len) so text values can be used as C strings. An empty value
 * gives a non-NULL *val and *len == 0. Returns WEIR_ENOTFOUND when the key is
 * absent (and sets *val = NULL, *len = 0), WEIR_EINVAL, WEIR_ENOMEM, or a
 * storage error. */
int catalog_kv_get(catalog *c, const char *key, void **val, size_t *len);

/* Stores (inserting or replacing) len bytes under key, durably, before it
 * returns. val may be NULL only when len is 0. Returns WEIR_OK, WEIR_EINVAL,
 * WEIR_ETOOBIG (beyond SQLite's limit), or a storage error. */
int catalog_kv_put(catalog *c, const char *key, const void *val, size_t len);

/* The underlying connection, for modules that keep their own tables in the
 * catalog (they add them as migrations in schema.c and prepare their own
 * statements). The connection stays owned by the catalog. */
sqlite3 *catalog_db(catalog *c);

/* ---- Streams, consumer offsets, imports (streams.c) -------------------- */

/* Stores (insert or replace) a stream definition given as a JSON object.
 * origin is "api", "config" or "system". */
int catalog_stream_put(catalog *c, const char *name, const char *definition_json,
                       const char *origin);
/* WEIR_OK or WEIR_ENOTFOUND; consumer offsets and import records go with it. */
int catalog_stream_delete(catalog *c, const char *name);
/* Calls cb for every stream, in name order; stops early when cb returns
 * non-zero (which is then returned). */
int catalog_stream_list(catalog *c,
                        int (*cb)(void *arg, const char *name, const char *definition_json,
                                  const char *origin),
                        void *arg);
/* Committed next offset for (group, stream, partition); WEIR_ENOTFOUND when
 * the group never committed one. */
int catalog_offset_get(catalog *c, const char *group, const char *stream, unsigned partition,
                       unsigned long long *next_offset);
int catalog_offset_commit(catalog *c, const char *group, const char *stream,
                          unsigned partition, unsigned long long next_offset);
/* Whether a file with this SHA-256 (64 hex) was imported into the stream;
 * WEIR_OK = yes (with its record count), WEIR_ENOTFOUND = no. */
int catalog_import_get(catalog *c, const char *stream, const char *sha256,
                       unsigned long long *records);
int catalog_import_put(catalog *c, const char *stream, const char *sha256,
                       const char *file_name, unsigned long long records);

/* ---- Rules and their checkpoints (rules.c, schema version 3) ----------- */

/* One stored rule; strings malloc'd, freed with catalog_rule_clear. */
typedef struct catalog_rule {
    char *name, *sql, *options_json, *desired, *last_error; /* last_error may be NULL */
} catalog_rule;
void catalog_rule_clear(catalog_rule *r);

/* Inserts a new rule (desired "running" or "stopped"): WEIR_EEXIST when the
 * name is taken. */
int catalog_rule_put(catalog *c, const char *name, const char *sql, const char *options_json,
                     const char *desired);
/* WEIR_OK or WEIR_ENOTFOUND; the rule's checkpoint goes with it. */
int catalog_rule_delete(catalog *c, const char *name);
int catalog_rule_get(catalog *c, const char *name, catalog_rule *out);
/* Calls cb for every rule in name order; stops early when cb returns
 * non-zero (which is then returned). The row is valid during the call. */
int catalog_rule_list(catalog *c, int (*cb)(void *arg, const catalog_rule *r), void *arg);
int catalog_rule_set_desired(catalog *c, const char *name, const char *desired);
/* last_error NULL clears it. */
int catalog_rule_set_error(catalog *c, const char *name, const char *last_error);

/* A rule's checkpoint: the engine state blob, the next input offset of
 * every input partition and the output positions (JSON text), the output
 * sequence number. Saved in one statement (one transaction) and only when
 * epoch is newer than the stored one, so a late write of an older
 * checkpoint never replaces a newer one. WEIR_ENOTFOUND from save when the
 * rule no longer exists or a newer checkpoint is stored. */
typedef struct catalog_checkpoint {
    unsigned long long epoch;
    char *offsets_json; /* malloc'd */
    unsigned long long out_seq;
    void *state;        /* malloc'd */
    size_t state_len;
} catalog_checkpoint;
int catalog_checkpoint_save(catalog *c, const char *rule, unsigned long long epoch,
                            const char *offsets_json, unsigned long long out_seq,
                            const void *state, size_t state_len);
int catalog_checkpoint_load(catalog *c, const char *rule, catalog_checkpoint *out);
void catalog_checkpoint_clear(catalog_checkpoint *ck);
int catalog_checkpoint_delete(catalog *c, const char *rule);
/* ---- Users, API tokens, grants, audit outbox (users.c, schema v4) ------
 *
 * Plain rows; what they mean is auth/'s business (auth.h, docs/security.md).
 * Password hashes are argon2id strings, token secrets are stored as a hash
 * only. Strings passed in are copied; strings passed to callbacks live for
 * the call only. */

typedef struct catalog_user {
    const char *name;
    const char *kind;          /* "user" or "device" */
    const char *role;          /* "admin", "manager", ... */
    const char *password_hash; /* NULL: no password login */
    int disabled;
    const char *created_at;
} catalog_user;

/* WEIR_EEXIST when the name is taken. password_hash may be NULL. */
int catalog_user_add(catalog *c, const char *name, const char *kind, const char *role,
                     const char *password_hash);
/* Changes one field; WEIR_ENOTFOUND for an unknown user. */
int catalog_user_set_password(catalog *c, const char *name, const char *password_hash);
int catalog_user_set_role(catalog *c, const char *name, const char *role);
int catalog_user_set_disabled(catalog *c, const char *name, int disabled);
/* Deletes the user, its tokens and its own grants. WEIR_ENOTFOUND. */
int catalog_user_delete(catalog *c, const char *name);
int catalog_user_list(catalog *c, int (*cb)(void *arg, const catalog_user *u), void *arg);
/* Number of users (for the first-start bootstrap). */
int catalog_user_count(catalog *c, long long *n);

typedef struct catalog_token {
    const char *id;          /* 16 hex, public */
    const char *user;
    const char *secret_hash; /* 64 hex */
    const char *description;
    long long expires_at;    /* unix seconds; 0 = never */
    int revoked;
    const char *created_at;
} catalog_token;

int catalog_token_add(catalog *c, const char *id, const char *user, const char *secret_hash,
                      const char *description, long long expires_at);
/* WEIR_ENOTFOUND when no such token (already revoked ones count as found). */
int catalog_token_revoke(catalog *c, const char *id);
int catalog_token_list(catalog *c, int (*cb)(void *arg, const catalog_token *t), void *arg);

typedef struct catalog_grant {
    const char *subject_kind;  /* "role" or "user" */
    const char *subject;
    const char *resource_kind; /* "stream" or "topic" */
    const char *pattern;
    const char *access;        /* "read", "write", "readwrite" */
} catalog_grant;

/* Inserts or replaces (same subject, resource kind and pattern). */
int catalog_grant_put(catalog *c, const catalog_grant *g);
int catalog_grant_delete(catalog *c, const catalog_grant *g);
int catalog_grant_list(catalog *c, int (*cb)(void *arg, const catalog_grant *g), void *arg);

/* Audit entries (JSON objects) queued by a process without the stream. */
int catalog_audit_outbox_put(catalog *c, const char *entry_json);
/* Calls cb for each queued entry, oldest first, and deletes those for which
 * cb returned 0; stops at the first non-zero. */
int catalog_audit_outbox_drain(catalog *c, int (*cb)(void *arg, const char *entry_json),
                               void *arg);

/* SQLite's PRAGMA data_version: changes when another connection (another
 * process, such as `weir user`) committed to the file. Cheap; polled by the
 * node to reload users. */
int catalog_data_version(catalog *c, long long *v);

#endif
