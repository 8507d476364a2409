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
};

const catalog_migration *catalog__migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
