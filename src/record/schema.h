/* schema.h -- what a stream says about its payloads, and event-time parsing.
 *
 * A schema is plain configuration that the catalog fills in and the decoders
 * (record/decode.h) read; it borrows every string and array it points to,
 * which must outlive every decode that uses it.
 *
 * Typed fields. A field named in `decls` is converted to its declared type
 * and a value that does not convert is an error for that payload; a declared
 * field missing from a payload is simply absent (no error, no NULL added);
 * NULL converts to every type (it stays NULL). Undeclared fields get the
 * type the decoder infers. The conversions (from -> to):
 *
 *   to BOOL    from BOOL; INT 0 or 1; STRING true/false/t/f/yes/no/on/off/1/0
 *              (any case)
 *   to INT     from INT; BOOL (0/1); DOUBLE with an integral value within
 *              int64; STRING holding an integer, or a number with an integral
 *              value within int64 (surrounding spaces allowed)
 *   to DOUBLE  from DOUBLE; INT; BOOL (0/1); STRING holding a number
 *   to STRING  from anything but JSON: the value's text AS WRITTEN in the
 *              payload ("0071" stays "0071", 1.50 stays "1.50")
 *   to JSON    from JSON; STRING holding a JSON object or array (compacted)
 *
 * Declaring a field NULL is an error (rec_schema_check).
 *
 * Event time (ts_field) and key (key_field) stay among the record's fields;
 * record.ts and record.key are derived from them. A field that is absent or
 * null leaves ts 0 (the caller uses arrival time) or no key. The key is the
 * text of a STRING, or of a number as written; any other type is an error.
 */
#ifndef WEIR_RECORD_SCHEMA_H
#define WEIR_RECORD_SCHEMA_H

#include "record/record.h"

#include <stddef.h>
#include <stdint.h>

typedef enum rec_format {
    REC_FMT_JSON, /* one JSON object per payload */
    REC_FMT_CSV,  /* one RFC 4180 line per payload, after a header line or csv_columns */
    REC_FMT_LINE, /* InfluxDB line protocol, one line per payload */
} rec_format;

/* A declared field: its name (NUL-terminated) and type. */
typedef struct rec_decl {
    const char *name;
    rec_type type;
} rec_decl;

typedef struct rec_schema {
    rec_format format;
    /* Field holding event time; NULL = arrival time. */
    const char *ts_field;
    /* How to read it (rec_parse_time): NULL = auto; "s", "ms", "us", "ns" =
     * epoch number in that unit; else a strptime-style format. For line
     * protocol a unit also sets the precision of the trailing timestamp. */
    const char *ts_format;
    /* Field holding the key (e.g. device id); NULL = none. In line protocol
     * it may name a tag, a field or "_measurement". */
    const char *key_field;
    /* Typed fields, see above. */
    const rec_decl *decls;
    uint32_t n_decls;
    /* CSV: the field separator; 0 means ','. Use '\t' for TSV. */
    char csv_delim;
    /* CSV without a header line: the column names, in order (the DEBS TSV).
     * When given, a CSV body has no header line. */
    const char *const *csv_columns;
    uint32_t n_csv_columns;
} rec_schema;

/* Checks a schema once, when a stream is defined: a known format, a
 * ts_format that rec_parse_time accepts, declared types other than NULL,
 * declared names unique and non-empty, a CSV delimiter that is not '"', CR or
 * LF, csv_columns non-empty and unique. WEIR_OK or WEIR_EINVAL with a
 * sentence in *why (static storage) when why is not NULL. */
int rec_schema_check(const rec_schema *sc, const char **why);

/* Parses the event time in s[0..n) to nanoseconds since the Unix epoch.
 *
 * With fmt NULL (auto), surrounding spaces are ignored and s is one of:
 *  - ISO 8601 / RFC 3339: YYYY-MM-DD, then 'T', 't' or one space, then
 *    HH:MM[:SS[.frac]] (',' also separates the fraction), then an optional
 *    offset Z, z, +HH:MM, +HHMM or +HH (or '-'); no offset means UTC. Any
 *    number of fraction digits (digits past nanoseconds are dropped, not
 *    rounded): "2012-02-22T16:46:28.9670320+00:00". A bare YYYY-MM-DD is
 *    midnight UTC. Second 60 (a leap second) is accepted and counts as the
 *    first second of the next minute.
 *  - "YYYY-MM-DD HH:MM:SS[.frac]", the same rule: UTC (the UCI file).
 *  - An epoch number, optionally negative and with a fraction or exponent,
 *    its unit inferred from its magnitude |v|:
 *        |v| < 1e11  seconds       (until year 5138)
 *        |v| < 1e14  milliseconds  (from 1973-03-03 on)
 *        |v| < 1e17  microseconds  (from 1973-03-03 on)
 *        otherwise   nanoseconds   (from 1973-03-03 on)
 *    so any present-day time in any of the four units is read right.
 *    Integers and decimal fractions are converted exactly; an exponent form
 *    goes through a double.
 * With fmt "s", "ms", "us" or "ns", s is an epoch number in that unit.
 * Otherwise fmt is strptime-style:
 *    %Y year (4 digits)      %y year (2 digits: 69-99 -> 19xx, else 20xx)
 *    %m month  %d day  %H hour  %M minute  %S second (1 or 2 digits each)
 *    %e day (a leading space allowed)    %j day of the year (1-3 digits)
 *    %I hour 1-12 and %p AM/PM           %b %B %h English month name
 *    %a %A English weekday name (skipped)
 *    %f fraction of a second (1 or more digits; past 9 dropped)
 *    %z offset: Z, +HH, +HHMM, +HH:MM    %Z UTC, GMT or Z
 *    %s epoch seconds    %T = %H:%M:%S    %F = %Y-%m-%d    %% a '%'
 * Names match in any case. White space in fmt matches any amount of white
 * space (none included); every other byte matches itself. The whole input
 * must match; unset parts default to 1970-01-01 00:00:00 UTC.
 *
 * Times must fall within what int64 nanoseconds hold (1677-09-21 to
 * 2262-04-11). WEIR_OK; WEIR_EMALFORMED when s does not match or a part is
 * out of range; WEIR_EINVAL when fmt itself is bad. */
int rec_parse_time(const char *s, size_t n, const char *fmt, int64_t *ns_out);

#endif
