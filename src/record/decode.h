/* decode.h -- payloads to records: JSON, CSV, InfluxDB line protocol.
 *
 * Each decoder turns ONE payload (a JSON object, a CSV line, a line of line
 * protocol) into a record whose fields array and strings live in the given
 * arena; the payload bytes may be dropped as soon as the call returns. The
 * decoders do no I/O and are fuzzed (tests/fuzz/fuzz_{json,csv,line}.c).
 *
 * Every decoder either fills *out and returns WEIR_OK, or returns a negative
 * weir_err, leaves *out zeroed and describes the problem in *err (when err is
 * not NULL): the code, the 1-based line and column (in bytes) of the
 * offending input, and a sentence. Codes: WEIR_EMALFORMED (the payload is not
 * valid in its format, or a value does not fit the schema), WEIR_EUTF8 (text
 * that is not UTF-8), WEIR_ETOOBIG (the record needs more memory than the
 * arena's bound, or a name/key over 65535 bytes), WEIR_ENOMEM, WEIR_EINVAL
 * (a caller mistake, e.g. a CSV line before any header). Field names must be
 * unique in a record: a duplicate is WEIR_EMALFORMED.
 *
 * Schema handling (typed fields, event time, key) is described in
 * record/schema.h and is the same for all formats. The JSON and line
 * protocol decoders accept a NULL schema (no event time, key or types);
 * the decoders do not run rec_schema_check, which is done once, when the
 * stream is defined (rec_csv_new does run it).
 */
#ifndef WEIR_RECORD_DECODE_H
#define WEIR_RECORD_DECODE_H

#include "base/arena.h"
#include "record/record.h"
#include "record/schema.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rec_error {
    int code;        /* the weir_err returned */
    uint32_t line;   /* 1-based line of the problem (in the batch body for rec_batch_decode) */
    uint32_t column; /* 1-based byte column within that line; 0 when no position applies */
    char msg[128];   /* a sentence without the position, e.g. "field 'T1': not a number" */
} rec_error;

/* ---- JSON ---------------------------------------------------------------
 *
 * One JSON object (RFC 8259; surrounding white space allowed). Top-level
 * members become fields in order: integers that fit int64 -> INT, every other
 * number -> DOUBLE (so 1.0 is a DOUBLE and 12345678901234567890 a DOUBLE),
 * true/false -> BOOL, null -> NULL, strings -> STRING (escapes decoded,
 * \u escapes with surrogate pairs included), nested objects and arrays -> JSON, kept
 * as their text with the white space between tokens removed (numbers and
 * escapes stay as written). Rejected, as jansson rejects them: duplicate
 * names, \u0000, unpaired surrogates, control characters in strings, invalid
 * UTF-8, numbers whose value overflows a double, leading zeros, trailing
 * bytes after the object, nesting deeper than 2048.
 *
 * The top level is read by a purpose-built scanner (bench/record shows it
 * several times faster than going through jansson for a flat sensor
 * reading); each nested value is validated by jansson. The key may be a
 * string or a number. */
int rec_decode_json(const uint8_t *p, size_t n, const rec_schema *sc, arena *a, record *out,
                    rec_error *err);

/* The same decode done entirely with jansson (json_loadb, then a walk of the
 * tree): the reference the scanner is checked against (fuzz_json compares
 * them on every input) and the baseline of the benchmark. It differs where
 * jansson cannot do better: an integer beyond int64 makes jansson read EVERY
 * integer of that payload as a double, nested values are re-printed by
 * jansson (doubles with 17 digits), and error positions are jansson's. */
int rec_decode_json_jansson(const uint8_t *p, size_t n, const rec_schema *sc, arena *a, record *out,
                            rec_error *err);

/* ---- CSV ----------------------------------------------------------------
 *
 * RFC 4180 with the usual leniency: fields separated by the schema's
 * delimiter; a field may be enclosed in double quotes, inside which the
 * delimiter and line breaks are data and "" is one quote; spaces around a
 * quoted field are ignored; a quote inside an unquoted field is data. A line
 * may end in LF or CRLF (the terminator is optional). A line must have
 * exactly as many fields as there are columns.
 *
 * Values: an unquoted empty field (or only spaces) -> NULL; a quoted empty
 * field -> empty STRING (the PostgreSQL convention); a field that, with
 * leading and trailing spaces and tabs trimmed, is a number -> INT (an
 * optionally signed run of digits that fits int64; leading zeros allowed, so
 * "0071" is 71 -- declare the column STRING to keep the text) or DOUBLE
 * (decimal fraction and/or exponent, e.g. " 7.0266" or "6.59e+00"); anything
 * else -> STRING, untrimmed. Quoting does not change the type: the UCI file's
 * "  60" is INT 60. Every field of a line becomes a field of the record, in
 * column order.
 *
 * The header state is a rec_csv per stream (or per upload): the column names
 * come from a header line (rec_csv_header) or from schema.csv_columns. In a
 * header, names are trimmed, a UTF-8 byte order mark is skipped, an empty
 * name becomes "_col<N>" (N = 1-based column; pandas writes one for the
 * index) and duplicate names are an error. */
typedef struct rec_csv rec_csv;

/* A header state for sc, which must outlive it. Takes the columns from
 * sc->csv_columns when given. WEIR_OK, WEIR_EINVAL (rec_schema_check fails,
 * or the format is not CSV), WEIR_ENOMEM. */
int rec_csv_new(const rec_schema *sc, rec_csv **out);
void rec_csv_free(rec_csv *c);

/* Reads the header line (replacing any earlier one). WEIR_EINVAL when the
 * schema names the columns itself. */
int rec_csv_header(rec_csv *c, const uint8_t *line, size_t n, rec_error *err);

/* Decodes one line (which, for a quoted field with a line break, spans
 * several physical lines). WEIR_EINVAL before any header. */
int rec_csv_line(rec_csv *c, const uint8_t *line, size_t n, arena *a, record *out, rec_error *err);

/* Number of columns (0 before the header). */
uint32_t rec_csv_columns(const rec_csv *c);

/* ---- InfluxDB line protocol -----------------------------------------------
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * as specified by InfluxDB v2: the measurement escapes ',' and ' '; tag keys,
 * tag values and field keys escape ',', '=' and ' '; "\\" is one backslash
 * and a backslash before any other byte is kept. Field values: 1.5, -2,
 * 1e3 (float -> DOUBLE); 12i (-> INT); 12u (-> INT, error above int64);
 * "text" with \" and \\ escapes (-> STRING); t T true True TRUE f F false
 * False FALSE (-> BOOL). The timestamp is an integer in nanoseconds (or in
 * the unit schema.ts_format names: s, ms, us). Spaces between the sections
 * may repeat; a trailing CR/LF is ignored.
 *
 * The record's fields are "_measurement" (STRING) first, then the tags as
 * STRING fields, then the fields, in line order. Event time: the field
 * schema.ts_field names if set and present, else the trailing timestamp,
 * else default_ts. A blank line or a '#' comment is not a record
 * (WEIR_EMALFORMED; the batch decoder skips them). */
int rec_decode_line(const uint8_t *p, size_t n, const rec_schema *sc, int64_t default_ts, arena *a,
                    record *out, rec_error *err);

/* ---- Batches (HTTP bodies) ------------------------------------------------
 *
 * Splits a body holding many records and decodes each: cb gets every good
 * record, ecb (may be NULL) every error, with the line and column counted
 * from the start of the body, and one bad record never stops the batch.
 *
 *  - REC_FMT_JSON: with json_array_or_ndjson false the body is ONE object.
 *    With it true, the first non-blank byte decides: '[' means a JSON array
 *    of objects, anything else NDJSON (one object per line, blank lines
 *    skipped). In an array, an element that is not a valid object is one
 *    rejected record; a break in the array structure itself (a missing ','
 *    or ']') cannot be resynchronised and ends the batch with
 *    WEIR_EMALFORMED after reporting it.
 *  - REC_FMT_CSV: records separated by line breaks outside quotes; blank
 *    lines skipped; unless the schema names the columns, the first line is
 *    the header (a bad header rejects the whole body: WEIR_EMALFORMED).
 *  - REC_FMT_LINE: one record per line, blank lines and '#' comments
 *    skipped; a line without a timestamp gets ts 0 (arrival time).
 *
 * Memory: the arena is reset before each record, so the whole batch runs
 * within the arena's bound, however long the body; the record handed to cb
 * is valid only during the call (cb copies or encodes what it keeps). A
 * record that needs more than the bound is rejected with WEIR_ETOOBIG.
 *
 * cb returns 0 to go on, non-zero to stop: a negative value is returned as
 * the batch's result, a positive one stops with WEIR_OK. *accepted and
 * *rejected (either may be NULL) count the records given to cb and the
 * errors reported. Returns WEIR_OK when the body was read to its end. */
typedef int (*rec_batch_cb)(void *arg, const record *r);
typedef void (*rec_batch_err_cb)(void *arg, const rec_error *e);

int rec_batch_decode(rec_format fmt, bool json_array_or_ndjson, const uint8_t *body, size_t n,
                     const rec_schema *sc, arena *a, rec_batch_cb cb, rec_batch_err_cb ecb,
                     void *arg, uint32_t *accepted, uint32_t *rejected);

#endif
