/* schema.c -- the catalog's schema, as the list of migrations that build it.
 *
 * Adding to the schema is adding a row at the end of `migrations`; a row that
 * has shipped is never changed, because files in the field already carry it.
 * Each row's SQL runs in one transaction together with the insert of its
 * schema_migrations row (see catalog.c), with foreign keys off and a
 * foreign_key_check before commit, which is what SQLite's documented
 * table-rebuild procedure for ALTERs it cannot do in place needs.
 *
 * Conventions: timestamps are UTC text 'YYYY-MM-DDTHH:MM:SS.sssZ' (readable in
 * the sqlite3 shell, sortable as text, the same shape as log lines). Tables
 * are not STRICT, since a file written here must stay readable by the SQLite
 * of older gateways (STRICT needs 3.37); CHECK constraints carry the types
 * that matter instead.
 *
 * Version 1:
 *   node   exactly one row (singleton = 1): the node's id, 16 random bytes as
 *          32 lowercase hex digits from SQLite's randomblob (a ChaCha20 stream
 *          seeded from /dev/urandom), and when the catalog was created.
 *   peers  other weir nodes this one knows, by name, with their base URL.
 *   kv     small settings owned by modules that need no table of their own;
 *          the key names its owner ("mqtt.retained_snapshot_at", ...).
 *
 * Version 2:
 *   streams           every stream's definition (name, and its whole
 *                     definition as JSON so that adding an option needs no
 *                     migration), and where it came from (config or api).
 *   consumer_offsets  committed read positions per (group, stream, partition).
 *   imports           archived files already imported into a stream, by
 *                     content hash, so importing the same file twice does not
 *                     duplicate its records.
 *
 * Version 3: rules and their checkpoints (see engine/rule.h).
 *
 * Version 4 (auth/, see docs/security.md):
 *   users         people and devices that log in: a role, and a password as
 *                 an argon2id string from libsodium's crypto_pwhash_str (salt
 *                 and cost inside it; never the password itself). NULL means
 *                 the account cannot log in with a password (tokens or a
 *                 client certificate only).
 *   api_tokens    bearer tokens: a public id and the BLAKE2b hash of the
 *                 secret part (the secret is shown once and never stored),
 *                 an expiry (unix seconds, 0 = never) and a revoked flag.
 *   grants        what a role or one user may reach beyond its role:
 *                 streams (by name, '*' for all) for read and/or write, and
 *                 MQTT topic filters with %u (user name) and %c (client id).
 *   audit_outbox  audit entries written by processes that do not own the
 *                 `$audit` stream (the `weir user` CLI next to a running
 *                 node); the node moves them into the stream and deletes them.
 */
#include "catalog/catalog_int.h"

#define NOW_UTC "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

static const catalog_migration migrations[] = {
    {1, "node identity, peers, key-value settings",
     "CREATE TABLE node (\n"
     "  singleton  INTEGER PRIMARY KEY CHECK (singleton = 1),\n"
     "  id         TEXT NOT NULL CHECK (length(id) = 32 AND id NOT GLOB '*[^0-9a-f]*'),\n"
     "  created_at TEXT NOT NULL\n"
     ");\n"
     "INSERT INTO node (singleton, id, created_at)\n"
     "  VALUES (1, lower(hex(randomblob(16))), " NOW_UTC ");\n"
     "CREATE TABLE peers (\n"
     "  name     TEXT PRIMARY KEY NOT NULL CHECK (length(name) > 0),\n"
     "  url      TEXT NOT NULL,\n"
     "  added_at TEXT NOT NULL DEFAULT (" NOW_UTC ")\n"
     ");\n"
     "CREATE TABLE kv (\n"
     "  key   TEXT PRIMARY KEY NOT NULL,\n"
     "  value BLOB NOT NULL\n"
     ") WITHOUT ROWID;\n"},
    {2, "streams, consumer offsets, imported files",
     "CREATE TABLE streams (\n"
     "  name       TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 128),\n"
     "  definition TEXT NOT NULL CHECK (json_valid(definition)),\n"
     "  origin     TEXT NOT NULL DEFAULT 'api' CHECK (origin IN ('api', 'config', 'system')),\n"
     "  created_at TEXT NOT NULL DEFAULT (" NOW_UTC ")\n"
     ");\n"
     "CREATE TABLE consumer_offsets (\n"
     "  grp        TEXT NOT NULL CHECK (length(grp) > 0),\n"
     "  stream     TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,\n"
     "  partition  INTEGER NOT NULL CHECK (partition >= 0),\n"
     "  next_offset INTEGER NOT NULL CHECK (next_offset >= 0),\n"
     "  updated_at TEXT NOT NULL DEFAULT (" NOW_UTC "),\n"
     "  PRIMARY KEY (grp, stream, partition)\n"
     ") WITHOUT ROWID;\n"
     "CREATE TABLE imports (\n"
     "  stream      TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,\n"
     "  sha256      TEXT NOT NULL CHECK (length(sha256) = 64),\n"
     "  file_name   TEXT NOT NULL,\n"
     "  records     INTEGER NOT NULL,\n"
     "  imported_at TEXT NOT NULL DEFAULT (" NOW_UTC "),\n"
     "  PRIMARY KEY (stream, sha256)\n"
     ") WITHOUT ROWID;\n"},
    {3, "rules and their checkpoints",
     "CREATE TABLE rules (\n"
     "  name       TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 128),\n"
     "  sql        TEXT NOT NULL,\n"
     "  options    TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(options)),\n"
     "  desired    TEXT NOT NULL DEFAULT 'running' CHECK (desired IN ('running', 'stopped')),\n"
     "  last_error TEXT,\n"
     "  created_at TEXT NOT NULL DEFAULT (" NOW_UTC "),\n"
     "  updated_at TEXT NOT NULL DEFAULT (" NOW_UTC ")\n"
     ");\n"
     "CREATE TABLE rule_checkpoints (\n"
     "  rule       TEXT PRIMARY KEY NOT NULL REFERENCES rules(name) ON DELETE CASCADE,\n"
     "  epoch      INTEGER NOT NULL CHECK (epoch >= 0),\n"
     "  offsets    TEXT NOT NULL CHECK (json_valid(offsets)),\n"
     "  out_seq    INTEGER NOT NULL CHECK (out_seq >= 0),\n"
     "  state      BLOB NOT NULL,\n"
     "  updated_at TEXT NOT NULL DEFAULT (" NOW_UTC ")\n"
     ") WITHOUT ROWID;\n"},
    {4, "users, API tokens, grants, audit outbox",
     "CREATE TABLE users (\n"
     "  name          TEXT PRIMARY KEY NOT NULL CHECK (length(name) BETWEEN 1 AND 64),\n"
     "  kind          TEXT NOT NULL DEFAULT 'user' CHECK (kind IN ('user', 'device')),\n"
     "  role          TEXT NOT NULL CHECK (role IN ('admin', 'manager', 'operator', 'viewer',\n"
     "                                  'supplier', 'device')),\n"
     "  password_hash TEXT CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),\n"
     "  disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),\n"
     "  created_at    TEXT NOT NULL DEFAULT (" NOW_UTC "),\n"
     "  updated_at    TEXT NOT NULL DEFAULT (" NOW_UTC ")\n"
     ");\n"
     "CREATE TABLE api_tokens (\n"
     "  id          TEXT PRIMARY KEY NOT NULL CHECK (length(id) = 16),\n"
     "  user        TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,\n"
     "  secret_hash TEXT NOT NULL CHECK (length(secret_hash) = 64),\n"
     "  description TEXT NOT NULL DEFAULT '',\n"
     "  expires_at  INTEGER NOT NULL DEFAULT 0 CHECK (expires_at >= 0),\n"
     "  revoked     INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),\n"
     "  created_at  TEXT NOT NULL DEFAULT (" NOW_UTC ")\n"
     ");\n"
     "CREATE TABLE grants (\n"
     "  subject_kind  TEXT NOT NULL CHECK (subject_kind IN ('role', 'user')),\n"
     "  subject       TEXT NOT NULL CHECK (length(subject) > 0),\n"
     "  resource_kind TEXT NOT NULL CHECK (resource_kind IN ('stream', 'topic')),\n"
     "  pattern       TEXT NOT NULL CHECK (length(pattern) BETWEEN 1 AND 256),\n"
     "  access        TEXT NOT NULL CHECK (access IN ('read', 'write', 'readwrite')),\n"
     "  created_at    TEXT NOT NULL DEFAULT (" NOW_UTC "),\n"
     "  PRIMARY KEY (subject_kind, subject, resource_kind, pattern)\n"
     ") WITHOUT ROWID;\n"
     "CREATE TABLE audit_outbox (\n"
     "  id    INTEGER PRIMARY KEY AUTOINCREMENT,\n"
     "  entry TEXT NOT NULL CHECK (json_valid(entry))\n"
     ");\n"},
};

const catalog_migration *catalog__migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
