/* record_int.h -- what the files of src/record/ share and nobody else sees:
 * UTF-8 and number scanning, the growing field list, the unique-name check,
 * schema application (typed fields, event time, key), JSON checking with
 * jansson, and error reporting. */
#ifndef WEIR_RECORD_RECORD_INT_H
#define WEIR_RECORD_RECORD_INT_H

#include "base/arena.h"
#include "record/decode.h"
#include "record/record.h"
#include "record/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Deepest nesting accepted in JSON, jansson's JSON_PARSER_MAX_DEPTH. */
#define REC__JSON_MAX_DEPTH 2048

/* ---- text -------------------------------------------------------------- */

/* Offset of the first byte of p[0..n) that is a NUL or not part of a valid
 * UTF-8 sequence (overlong forms, surrogates and code points above U+10FFFF
 * are invalid), or n when all of it is good record text. NUL is refused
 * everywhere, as jansson refuses \u0000, so that record strings, which the
 * decoders NUL-terminate in the arena, are also proper C strings. */
size_t rec__utf8_check(const uint8_t *p, size_t n);

static inline bool rec__utf8_valid(const uint8_t *p, size_t n)
{
    return rec__utf8_check(p, n) == n;
}

/* Trims spaces and tabs at both ends of [*p, *p + *n). */
void rec__trim(const char **p, size_t *n);

/* ---- numbers ----------------------------------------------------------- */

typedef enum rec__numkind {
    REC__NUM_NONE = 0, /* not a number */
    REC__NUM_INT,      /* an integer literal that fits int64 (*i set) */
    REC__NUM_BIGINT,   /* an integer literal beyond int64 (*d set) */
    REC__NUM_REAL,     /* a fraction and/or an exponent (*d set) */
    REC__NUM_OVERFLOW, /* grammatical, but the value overflows a double */
} rec__numkind;

/* Reads p[0..n) entirely as a decimal number: [+-]? (digits [. digits?] |
 * . digits) ([eE] [+-]? digits)?, leading zeros allowed (the CSV grammar;
 * callers that need JSON's stricter one check it first). No "nan", "inf"
 * or hex. */
rec__numkind rec__parse_number(const char *p, size_t n, int64_t *i, double *d);

/* strtod over p[0..n), which must already be a valid decimal number. */
double rec__strtod(const char *p, size_t n);

/* ---- field list -------------------------------------------------------- */

typedef struct rec__fields {
    arena *a;
    rec_field *v; /* in the arena */
    uint32_t n;   /* fields in use */
    uint32_t cap; /* room in v */
    /* Name index for the duplicate check once there are many fields:
     * open addressing over field indices + 1 (0 = empty), in the arena. */
    uint32_t *slots;
    uint32_t n_slots; /* power of two, or 0 while a linear scan is used */
} rec__fields;

void rec__fields_init(rec__fields *f, arena *a);

/* Appends a field (name copied into the arena, value unset) and returns it
 * in *out. WEIR_OK, WEIR_EMALFORMED when the name is already there (then
 * *out is the earlier field), WEIR_ETOOBIG for a name over 65535 bytes or a
 * full arena, WEIR_ENOMEM. `copy_name` false when name already lives in the
 * arena. */
int rec__fields_add(rec__fields *f, const char *name, size_t len, bool copy_name, rec_field **out);

/* Index of the first field whose name repeats an earlier one, or -1. Used by
 * record_decode on fields it did not build through rec__fields_add. */
int64_t rec__find_duplicate(const rec_field *v, uint32_t n, arena *a, int *rc);

/* ---- schema application ----------------------------------------------- */

/* A field's role in a schema, looked up once per field (or once per column
 * for CSV). */
typedef struct rec__role {
    int8_t decl; /* declared rec_type, or -1 */
    bool is_ts;  /* the event-time field */
    bool is_key; /* the key field */
} rec__role;

/* The schema with its name lengths measured once per decode. */
typedef struct rec__sctx {
    const rec_schema *sc;
    size_t ts_len;  /* strlen(ts_field), or SIZE_MAX when NULL */
    size_t key_len; /* strlen(key_field), or SIZE_MAX when NULL */
} rec__sctx;

void rec__sctx_init(rec__sctx *x, const rec_schema *sc);
void rec__role_of(const rec__sctx *x, const char *name, size_t len, rec__role *role);

static inline bool rec__role_any(const rec__role *r)
{
    return r->decl >= 0 || r->is_ts || r->is_key;
}

/* Applies a role to a freshly decoded value: converts it to the declared
 * type, then sets out->ts or out->key from it. `raw` is the value's text as
 * written (a number's literal, a string's decoded text); NULL when unknown,
 * then it is printed from the value. On error returns WEIR_EMALFORMED (or an
 * arena error) and a static sentence in *why. */
int rec__apply(const rec__sctx *x, const rec__role *role, arena *a, rec_value *v, const char *raw,
               size_t raw_len, record *out, const char **why);

/* Converts v to type `to` per the table in schema.h. */
int rec__convert(rec_value *v, rec_type to, const char *raw, size_t raw_len, arena *a,
                 const char **why);

/* Parses a time with a reason on failure. */
int rec__parse_time(const char *s, size_t n, const char *fmt, int64_t *ns_out, const char **why);

/* WEIR_OK when every conversion of a ts_format is known, else WEIR_EINVAL. */
int rec__time_format_check(const char *fmt);

/* The unit of a ts_format naming one ("s", "ms", "us", "ns") in ns per unit,
 * or 0. */
int64_t rec__time_unit(const char *fmt);

/* ---- JSON via jansson -------------------------------------------------- */

/* Checks that p[0..n) is one JSON object or array as the ingest path accepts
 * it (jansson, duplicates rejected, integers beyond int64 allowed). WEIR_OK,
 * or WEIR_EMALFORMED with jansson's reason copied into why[0..why_size) and
 * the byte offset of the error in *at (when not NULL). */
int rec__json_check(const char *p, size_t n, char *why, size_t why_size, size_t *at);

/* Copies the valid JSON text p[0..n) to dst without the white space between
 * tokens; returns the bytes written (<= n). */
size_t rec__json_compact(const char *p, size_t n, char *dst);

/* ---- errors ------------------------------------------------------------ */

/* Fills *err (when not NULL) and returns code. */
int rec__fail(rec_error *err, int code, uint32_t line, uint32_t column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Line and column (1-based, bytes) of offset `at` within p[0..n). */
void rec__position(const uint8_t *p, size_t n, size_t at, uint32_t *line, uint32_t *column);

/* The error code for a failed arena allocation: WEIR_ETOOBIG or ENOMEM. */
int rec__arena_err(const arena *a);

/* Where a payload scanner stopped and why: the JSON and line-protocol
 * scanners keep one of these and turn it into a rec_error with a position
 * at the end. */
typedef struct rec__scan_err {
    size_t at;     /* byte offset of the problem in the payload */
    char msg[128]; /* its sentence */
} rec__scan_err;

/* Records the problem and returns code, for `return rec__scan_fail(...)`. */
int rec__scan_fail(rec__scan_err *e, int code, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The arena ran out: records which bound (size or memory) at `at`. */
int rec__scan_fail_arena(rec__scan_err *e, const arena *a, size_t at);

#endif
