/* record.h -- the typed record, its storage encoding and its JSON form.
 *
 * "Parse once": a payload is decoded once at ingest (record/decode.h) into a
 * record, and everything downstream -- the stream store, rules, queries,
 * outputs -- works on typed values and never re-parses the payload.
 *
 * A record is a key, an event time and an ordered list of named, typed
 * fields. It owns nothing: the fields array and every string it points to
 * live in an arena (the decoders) or in the caller's bytes (record_decode),
 * and the record is valid only as long as that memory is. Strings (names,
 * STRING and JSON values, the key) are byte spans with a length; they are
 * valid UTF-8 without NUL bytes, and NOT guaranteed to be NUL-terminated
 * (the payload decoders do terminate them; record_decode does not). Field
 * names are unique within a record. Every decoder enforces all of this.
 *
 * The decoders keep the event-time field and the key field among the fields,
 * with the type they had in the payload; record.ts and record.key are derived
 * from them.
 *
 * ## Storage encoding (record_encode / record_decode), format version 1
 *
 * The stream store keeps the key and the timestamps of a record in its own
 * header, so the encoding carries the fields only; a record decoded from it
 * has ts 0 and no key until the store fills them in.
 *
 *     record  = version:u8 (= 0x01)  n_fields:varint  field{n_fields}
 *     field   = name_len:varint  name:bytes  tag:u8  value
 *     value   = per tag:
 *               0x00 NULL    nothing
 *               0x01 FALSE   nothing          (BOOL false)
 *               0x02 TRUE    nothing          (BOOL true)
 *               0x03 INT     zigzag(i):varint
 *               0x04 DOUBLE  8 bytes, IEEE 754 binary64, little-endian
 *               0x05 STRING  len:varint  bytes
 *               0x06 JSON    len:varint  bytes (a JSON object or array)
 *     varint  = unsigned LEB128: 7 bits per byte, low group first, high bit
 *               set on every byte but the last; at most 10 bytes
 *     zigzag(i) = (i << 1) ^ (i >> 63), so small negative numbers stay short
 *
 * An encoding is valid when: the version byte is 1; every varint is in
 * minimal form (no redundant 0x80 continuation, no trailing 0x00 group) and
 * fits its target (names <= 65535 bytes, strings < 2^32 bytes, n_fields <
 * 2^32, a 10th varint byte of at most 0x01); the tag is one of the above;
 * names and STRING values are valid UTF-8 (no overlong forms, no surrogates,
 * nothing above U+10FFFF) without NUL bytes; JSON values are a JSON object
 * or array (checked with jansson, with the same flags as ingest); names are
 * unique; and the bytes end exactly after the last field. Because every
 * valid encoding is the canonical one, record_encode(record_decode(x)) == x
 * byte for byte -- the fuzz target fuzz_record checks it. A reader meeting a
 * version byte it does not know returns WEIR_EVERSION, so a future format
 * can be added next to this one.
 */
#ifndef WEIR_RECORD_RECORD_H
#define WEIR_RECORD_RECORD_H

#include "base/arena.h"
#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The storage format version record_encode writes. */
#define RECORD_FORMAT_V1 0x01

typedef enum rec_type {
    REC_NULL = 0, /* absent value (JSON null, empty CSV field) */
    REC_BOOL,     /* u.b */
    REC_INT,      /* u.i, a signed 64-bit integer */
    REC_DOUBLE,   /* u.d, may be NaN or infinite when built by code */
    REC_STRING,   /* u.s, UTF-8 text */
    REC_JSON,     /* u.s, a nested object or array kept as compact JSON text */
} rec_type;

#define REC_TYPE_COUNT (REC_JSON + 1)

typedef struct rec_value {
    rec_type type;
    union {
        bool b;
        int64_t i;
        double d;
        struct {
            const char *p; /* the bytes (not NUL-terminated in general) */
            uint32_t len;  /* their count */
        } s;               /* REC_STRING and REC_JSON */
    } u;
} rec_value;

typedef struct rec_field {
    const char *name;  /* UTF-8, not NUL-terminated in general */
    uint16_t name_len; /* bytes of name */
    rec_value v;       /* the value */
} rec_field;

typedef struct record {
    int64_t ts;        /* event time, ns since the Unix epoch; 0 = none (use arrival time) */
    const char *key;   /* partitioning key (e.g. device id); NULL = none */
    uint16_t key_len;  /* bytes of key */
    rec_field *fields; /* in payload order */
    uint32_t n_fields; /* entries in fields */
} record;

/* The short name of a type ("null", "bool", "int", "double", "string",
 * "json"); "?" for anything else. Never NULL. */
const char *rec_type_name(rec_type t);

/* The value of the field called name[0..len), or NULL when there is none.
 * A linear scan: records have few fields. */
const rec_value *record_get(const record *r, const char *name, size_t len);

/* The value as a double: INT and DOUBLE as they are, BOOL as 0 or 1, and a
 * STRING holding a decimal number (surrounding spaces allowed, as in
 * " 7.02"); false for NULL, JSON and other strings, leaving *out alone. */
bool rec_value_as_double(const rec_value *v, double *out);

/* Two values are equal: same type and same value. Doubles compare by bits,
 * so NaN equals the same NaN and 0.0 differs from -0.0 (what a storage round
 * trip must preserve). */
bool rec_value_equal(const rec_value *a, const rec_value *b);

/* Appends the storage encoding of r's fields (format above) to out.
 * WEIR_OK; WEIR_EINVAL for a record no decoder makes (a type out of range,
 * a string longer than 2^32-1 bytes); WEIR_EFULL / WEIR_ENOMEM from the
 * buffer. On error out is left as it was. The contents are trusted: UTF-8
 * and JSON validity and unique names are the builder's promise. */
int record_encode(const record *r, weir_buf *out);

/* Decodes an encoding of n bytes at p into *out (ts 0, no key). The fields
 * array comes from the arena; names and strings point INTO p, so the record
 * lives as long as both. Validates everything listed above. WEIR_OK;
 * WEIR_EVERSION (unknown version byte), WEIR_EMALFORMED (anything else
 * wrong), WEIR_ETOOBIG / WEIR_ENOMEM (the arena is out of room). On error
 * *out is zeroed. */
int record_decode(const uint8_t *p, size_t n, arena *a, record *out);

/* Appends r's fields as one JSON object to out, in order: {"name":value,...}.
 * NULL is null; BOOL true/false; INT in decimal; DOUBLE in the shortest form
 * that reads back to the same double, always with a '.' or an exponent so
 * that it reads back as a double (21.53, 1.0, 1e+300), NaN and infinities
 * as null; STRING as a JSON string (control characters escaped, any invalid
 * UTF-8 byte replaced by U+FFFD so the output is always valid JSON); JSON as
 * its text, verbatim. Key and ts are not written (they are not fields).
 * WEIR_OK, or WEIR_EFULL / WEIR_ENOMEM with out left as it was. */
int record_to_json(const record *r, weir_buf *out);

/* Writes the shortest decimal form of a finite d that strtod reads back to
 * the same bits, always containing '.', 'e' or both, into buf (at least 32
 * bytes); returns its length. For infinities and NaN writes "null". */
size_t rec_format_double(double d, char *buf);

#endif
