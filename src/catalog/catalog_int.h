/* catalog_int.h -- the catalog's internals shared with schema.c and tests.
 *
 * Not for other modules: they use catalog.h. The migration list is declared
 * here so that tests can run catalog_open's real code over a list of their
 * own (for instance one whose last migration fails half-way) without the
 * binary carrying a test hook.
 */
#ifndef WEIR_CATALOG_CATALOG_INT_H
#define WEIR_CATALOG_CATALOG_INT_H

#include "catalog/catalog.h"

#include <stddef.h>

/* One step of the schema. Versions start at 1 and go up by one; a released
 * migration is never edited, only followed by a new one. */
typedef struct catalog_migration {
    int version;             /* the schema version this step produces */
    const char *description; /* one line, recorded in schema_migrations */
    const char *sql;         /* statements run inside the step's transaction;
                                must not contain BEGIN, COMMIT or ROLLBACK */
} catalog_migration;

/* The migrations this binary knows, oldest first; *n receives the count. */
const catalog_migration *catalog__migrations(size_t *n);

/* catalog_open over the n migrations in `list` instead of the built-in ones.
 * The list must be numbered 1..n in order (else WEIR_EINVAL). */
int catalog__open_with(const char *data_dir, const catalog_migration *list, size_t n,
                       catalog **out);

/* The one mapping from SQLite result codes to weir_err (catalog.c). */
int catalog__err(int rc);

#endif
