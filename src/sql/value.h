/* value.h -- SQL semantics over rec_value: errors, arithmetic, comparison,
 * truth, CAST and text formatting, shared by the scalar functions
 * (sql/functions.h), the aggregates (sql/agg.h) and the evaluator.
 *
 * weir's SQL has no value type of its own: it computes on the record's
 * rec_value (NULL, BOOL, INT, DOUBLE, STRING, JSON). Timestamps are INT
 * nanoseconds since the Unix epoch; there is no separate timestamp type.
 *
 * ## Errors
 *
 * Every fallible function returns WEIR_OK or a negative weir_err and, when
 * the caller passes a non-NULL sql_eval_error, writes one human sentence into it
 * ("abs: expected a number, got string"). The message is explicit state the
 * caller owns -- no thread-local, no global -- so a rule can report which
 * expression failed and a history query can return the text in its HTTP
 * body. WEIR_EINVAL is a type error or a malformed argument (a bad unit
 * name, text that does not parse in a CAST, malformed JSON); WEIR_ENOMEM /
 * WEIR_ETOOBIG come from the arena.
 *
 * ## The semantics choices, in one place
 *
 * - NULL in, NULL out for operators and most functions. The exceptions are
 *   listed in functions.h (coalesce, concat, greatest, least).
 * - Math that has no value -- x / 0, x % 0, sqrt(-1), ln(0) -- yields NULL,
 *   as in SQLite, not an error: a continuous rule over sensor data must not
 *   stop on one bad reading. Errors are kept for type errors.
 * - INT op INT stays INT. On overflow the result is promoted to DOUBLE (as
 *   SQLite does) rather than wrapping or failing; INT / INT truncates
 *   toward zero (SQLite, PostgreSQL). INT op DOUBLE is DOUBLE.
 * - BOOL, STRING and JSON are not numbers: arithmetic on them is a type
 *   error (no implicit text-to-number coercion; write CAST).
 * - Comparison promotes INT and DOUBLE to each other exactly (no rounding
 *   of large INTs through double), compares text by bytes (which for UTF-8
 *   is code point order), BOOL false < true, JSON by its text. NaN equals
 *   NaN and sorts above every other number (PostgreSQL), so min/max/sort
 *   have a total order. Comparing different families (text with number) is
 *   a type error.
 */
#ifndef WEIR_SQL_VALUE_H
#define WEIR_SQL_VALUE_H

#include "base/arena.h"
#include "record/record.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A message for a failed call; msg is "" until something fails. */
typedef struct sql_eval_error {
    char msg[128]; /* one NUL-terminated sentence, truncated if longer */
} sql_eval_error;

/* Writes a printf-formatted message into err (when err is not NULL) and
 * returns code, so that callers can write `return sql_fail(err, ...)`. */
int sql_fail(sql_eval_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A NULL value. */
static inline rec_value sql_null(void)
{
    rec_value v = {.type = REC_NULL};
    return v;
}
static inline rec_value sql_int(int64_t i)
{
    rec_value v = {.type = REC_INT, .u.i = i};
    return v;
}
static inline rec_value sql_double(double d)
{
    rec_value v = {.type = REC_DOUBLE, .u.d = d};
    return v;
}
static inline rec_value sql_bool(bool b)
{
    rec_value v = {.type = REC_BOOL, .u.b = b};
    return v;
}
static inline rec_value sql_text(const char *p, uint32_t len)
{
    rec_value v = {.type = REC_STRING, .u.s = {p, len}};
    return v;
}
static inline bool sql_is_number(const rec_value *v)
{
    return v->type == REC_INT || v->type == REC_DOUBLE;
}
/* INT or DOUBLE as a double (INT may round above 2^53). */
static inline double sql_num(const rec_value *v)
{
    return v->type == REC_INT ? (double)v->u.i : v->u.d;
}

/* ---- arithmetic ------------------------------------------------------- */

/* out = a op b under the rules above. WEIR_OK (out may be NULL: a NULL
 * operand, division or modulo by zero) or WEIR_EINVAL for a non-numeric
 * operand. sql_value_mod follows C and PostgreSQL: the result has the sign
 * of the dividend; for doubles it is fmod. Cannot fail otherwise. */
int sql_value_add(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err);
int sql_value_sub(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err);
int sql_value_mul(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err);
int sql_value_div(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err);
int sql_value_mod(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err);
/* Unary minus; -INT64_MIN is promoted to DOUBLE. */
int sql_value_neg(const rec_value *a, rec_value *out, sql_eval_error *err);

/* The || operator: NULL when either side is NULL (SQL standard), otherwise
 * the text forms (sql_cast to STRING) of both, joined, in the arena. */
int sql_value_concat(const rec_value *a, const rec_value *b, rec_value *out, arena *ar,
                     sql_eval_error *err);

/* ---- comparison and truth --------------------------------------------- */

typedef enum sql_tri {
    SQL_FALSE = 0,
    SQL_TRUE = 1,
    SQL_UNKNOWN = 2, /* SQL's third truth value: a NULL was involved */
} sql_tri;

/* Compares a and b under the rules above. WEIR_OK with *unknown true when
 * either is NULL (then *cmp is 0 and meaningless), else *cmp < 0, 0 or > 0;
 * WEIR_EINVAL when the types cannot be compared. */
int sql_value_compare(const rec_value *a, const rec_value *b, int *cmp, bool *unknown,
                      sql_eval_error *err);

/* The truth of a value in WHERE/HAVING/CASE: BOOL as it is, INT and DOUBLE
 * true when non-zero (NaN is false), NULL unknown. STRING and JSON are
 * unknown too -- they are not truth values, and unknown drops the row in a
 * WHERE just as false does, without failing the rule. */
sql_tri sql_value_truthy(const rec_value *v);

/* ---- CAST --------------------------------------------------------------
 *
 * sql_cast converts v to target; NULL casts to NULL for every target.
 *
 *   to BOOL:   INT/DOUBLE non-zero is true (NaN is an error); STRING, after
 *              trimming ASCII spaces and case-insensitively, one of
 *              true/t/yes/y/on/1 or false/f/no/n/off/0; JSON is an error.
 *   to INT:    BOOL 0/1; DOUBLE rounds toward zero, and NaN, infinities and
 *              anything outside [-2^63, 2^63) are an error; STRING (trimmed)
 *              a decimal integer with an optional sign, else a decimal
 *              number which then follows the DOUBLE rule ('3.7' is 3);
 *              JSON is an error.
 *   to DOUBLE: BOOL 0/1; INT the nearest double; STRING (trimmed) as strtod
 *              reads it, fully consumed (nan and inf included); JSON error.
 *   to STRING: BOOL 'true'/'false'; INT decimal; DOUBLE the shortest form
 *              that reads back to the same bits (rec_format_double, always
 *              with '.' or 'e': 1.0, 2.5e-07), NaN as 'NaN' and infinities
 *              as 'Infinity'/'-Infinity' (PostgreSQL's spelling); JSON its
 *              text.
 *   to JSON:   JSON as it is; STRING when it holds a JSON object or array
 *              (checked with jansson); anything else is an error.
 *
 * The result may point into v's bytes (STRING to STRING, JSON to STRING);
 * new text comes from the arena. WEIR_OK, WEIR_EINVAL (the rules above,
 * target REC_NULL or out of range) or the arena's error.
 */
int sql_cast(const rec_value *v, rec_type target, rec_value *out, arena *ar, sql_eval_error *err);

/* Parses a duration such as '5m', '10 s', '250ms', '1h', '2 days', '1us',
 * '100ns' (units ns us ms s m h d w and their long names) into
 * nanoseconds. WEIR_OK or WEIR_EINVAL (not a duration, zero or negative,
 * overflow). Used by time_bucket and by the window clauses. */
int sql_parse_duration(const char *p, size_t n, int64_t *ns, sql_eval_error *err);

#endif
