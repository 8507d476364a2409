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
};

const catalog_migration *catalog__migrations(size_t *n)
{
    *n = sizeof(migrations) / sizeof(migrations[0]);
    return migrations;
}
