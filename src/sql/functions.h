/* functions.h -- the scalar function library of weir's SQL.
 *
 * Functions are rows of one table (functions.c), as Redis declares its
 * commands: a name, an arity range, a return-type rule, the C function and
 * a help line. Adding a function is adding a row; aliases (pow, ln,
 * char_length, substring, strpos, date_part) are rows pointing at the same
 * C function. Lookup is case-insensitive. The table knows nothing of the
 * AST: the evaluator evaluates the arguments and calls fn.
 *
 * ## Calling convention
 *
 *     int fn(const rec_value *args, int n, rec_value *out, arena *a,
 *            sql_eval_error *err);
 *
 * n is within [min_args, max_args] (the caller checks the arity once, at
 * planning time, with the row's bounds). New text (lower, concat, json_get
 * strings) is allocated from the arena; results that are a piece of an
 * argument (substr, trim) point into the argument's bytes, so a result
 * lives as long as both the arguments and the arena. Returns WEIR_OK, or
 * WEIR_EINVAL with a message in err (a type error, a bad unit, malformed
 * JSON), or the arena's error. Semantics shared with the operators -- NULL
 * propagation, math without a value gives NULL, INT overflow promotes to
 * DOUBLE -- are described in sql/value.h.
 *
 * ## NULL
 *
 * NULL in any argument gives NULL, except: coalesce (first non-NULL),
 * nullif, concat (NULL arguments skipped), greatest/least (NULLs ignored,
 * NULL only when all are).
 *
 * ## Notes on individual functions
 *
 * - round(x[, d]) rounds half away from zero on x's shortest decimal form,
 *   so round(2.675, 2) is 2.68 as written, not 2.67 as binary arithmetic
 *   gives. round(INT, d) stays INT (d < 0 rounds to tens, hundreds ...).
 * - log(x) is the natural logarithm (as ln, MySQL and ClickHouse; NOT
 *   PostgreSQL/SQLite where log(x) is base 10); log(b, x) is base b.
 * - power/exp/sqrt/ln/log10 always return DOUBLE.
 * - Text functions count UTF-8 characters (code points), not bytes; the
 *   record layer guarantees valid UTF-8. lower/upper map ASCII only.
 *   substr(s, start[, len]) follows PostgreSQL: positions are 1-based and
 *   the window [start, start+len) is clipped, so substr('abc', 0, 2) is 'a'.
 * - position(sub, s) and strpos(s, sub) differ in argument order as in
 *   PostgreSQL; both return a 1-based character position, 0 if absent.
 * - Time functions take INT nanoseconds since the epoch, UTC. time_bucket
 *   takes the width as INT nanoseconds or a duration string ('5m').
 *   extract/date_part return INT for fields, DOUBLE for 'epoch' (seconds)
 *   and 'second' (with the fraction).
 * - json_get(j, k1[, k2 ...]) walks a path (STRING keys into objects, INT
 *   indexes into arrays) in JSON or STRING text and returns a typed value:
 *   JSON strings as STRING, integers as INT, reals as DOUBLE, booleans as
 *   BOOL, null or a missing key as NULL, objects and arrays as JSON text.
 *   json_get_text returns the same as text (numbers formatted, strings
 *   unquoted). Text that is not JSON is an error.
 */
#ifndef WEIR_SQL_FUNCTIONS_H
#define WEIR_SQL_FUNCTIONS_H

#include "sql/value.h"

#include <stddef.h>

typedef int (*sql_fn)(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err);

/* How the planner can know a function's result type before running it. */
typedef enum sql_ret_rule {
    SQL_RET_FIXED,   /* always `type` (or NULL) */
    SQL_RET_NUMERIC, /* INT when every argument is INT, else DOUBLE (abs, round, greatest) */
    SQL_RET_ARG,     /* the type of the first non-NULL argument (coalesce, nullif) */
    SQL_RET_DYNAMIC, /* known only at run time (json_get) */
} sql_ret_rule;

typedef struct sql_function {
    const char *name;  /* lower case */
    int min_args;      /* fewest arguments accepted */
    int max_args;      /* most arguments accepted; SQL_VARIADIC for no bound */
    sql_ret_rule rule; /* how the result type follows from the arguments */
    rec_type type;     /* the result type for SQL_RET_FIXED */
    sql_fn fn;         /* the implementation */
    const char *help;  /* one line: signature and meaning */
} sql_function;

#define SQL_VARIADIC 64

/* The row called name[0..len), any case; NULL when there is none. */
const sql_function *sql_function_find(const char *name, size_t len);

/* The whole table, for help output and tests; *n receives its length. */
const sql_function *sql_function_table(size_t *n);

/* The result type of f for the given argument types, or REC_NULL when it
 * is only known at run time. */
rec_type sql_function_result_type(const sql_function *f, const rec_type *args, int n);

#endif
