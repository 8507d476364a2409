/* batch.c -- many records in one body (rec_batch_decode, contract in
 * decode.h). One splitter per format, chosen from a table; each cuts the
 * body into records, resets the arena, decodes, and hands the result to
 * `deliver`, which counts it, moves error positions from record-relative to
 * body-relative, and calls the caller back. */
#include "base/err.h"
#include "record/record_int.h"

#include <stdio.h>
#include <string.h>

typedef struct batch {
    const uint8_t *body;
    size_t n;
    const rec_schema *sc;
    arena *a;
    rec_batch_cb cb;
    rec_batch_err_cb ecb;
    void *arg;
    uint32_t ok;  /* records given to cb */
    uint32_t bad; /* errors reported */
    int stop;     /* cb's non-zero answer, which ends the batch */
    /* Line counting that only moves forward, so that positions in a large
     * body cost O(n) in total. */
    size_t pos_off;      /* bytes [0, pos_off) have been counted */
    uint32_t pos_line;   /* line of pos_off */
    size_t pos_line_off; /* offset where that line starts */
} batch;

/* Line and column of offset `off` (>= every earlier query). */
static void batch_position(batch *b, size_t off, uint32_t *line, uint32_t *col)
{
    while (b->pos_off < off) {
        const uint8_t *nl = memchr(b->body + b->pos_off, '\n', off - b->pos_off);
        if (!nl) {
            b->pos_off = off;
            break;
        }
        b->pos_line++;
        b->pos_off = b->pos_line_off = (size_t)(nl - b->body) + 1;
    }
    *line = b->pos_line;
    *col = (uint32_t)(off - b->pos_line_off + 1);
}

/* Reports one decode result for the record that starts at body offset
 * `start`. Returns true when the batch must stop. */
static bool deliver(batch *b, int rc, const record *r, rec_error *e, size_t start)
{
    if (rc == WEIR_OK) {
        b->ok++;
        b->stop = b->cb(b->arg, r);
        return b->stop != 0;
    }
    uint32_t line, col;
    batch_position(b, start, &line, &col);
    /* A position on the record's first line is shifted by the record's
     * column; later lines only by its line. */
    if (e->line <= 1 && e->column)
        e->column += col - 1;
    e->line = line + (e->line ? e->line - 1 : 0);
    b->bad++;
    if (b->ecb)
        b->ecb(b->arg, e);
    return false;
}

/* Reports a problem with the body's structure at offset `at`. */
static void structural(batch *b, int code, size_t at, const char *msg)
{
    rec_error e = {.code = code};
    batch_position(b, at, &e.line, &e.column);
    snprintf(e.msg, sizeof(e.msg), "%s", msg);
    b->bad++;
    if (b->ecb)
        b->ecb(b->arg, &e);
}

static inline bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The line at *pos (without its LF); false at the end of the body. */
static bool next_line(const batch *b, size_t *pos, size_t *start, size_t *len)
{
    if (*pos >= b->n)
        return false;
    const uint8_t *nl = memchr(b->body + *pos, '\n', b->n - *pos);
    size_t end = nl ? (size_t)(nl - b->body) : b->n;
    *start = *pos;
    *len = end - *pos;
    *pos = nl ? end + 1 : b->n;
    return true;
}

static bool blank(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!is_ws(p[i]))
            return false;
    return true;
}

/* ======================================================================== */
/* JSON                                                                     */
/* ======================================================================== */

static int batch_one_json(batch *b, size_t start, size_t len)
{
    record r;
    rec_error e;
    arena_reset(b->a);
    int rc = rec_decode_json(b->body + start, len, b->sc, b->a, &r, &e);
    deliver(b, rc, &r, &e, start);
    return WEIR_OK;
}

/* The end of the JSON value at i: past its matching bracket for an object
 * or array, else at the next ',', ']' or white space. 0 when a string or a
 * bracket is never closed. */
static size_t value_end(const uint8_t *p, size_t n, size_t i)
{
    if (p[i] == '"') {
        for (i++; i < n && p[i] != '"'; i++)
            i += p[i] == '\\';
        return i < n ? i + 1 : 0;
    }
    if (p[i] != '{' && p[i] != '[') {
        while (i < n && p[i] != ',' && p[i] != ']' && !is_ws(p[i]))
            i++;
        return i;
    }
    size_t depth = 0;
    for (; i < n; i++) {
        uint8_t c = p[i];
        if (c == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                i += p[i] == '\\';
            if (i >= n)
                return 0;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            return i + 1;
        }
    }
    return 0;
}

static int batch_json_array(batch *b, size_t i)
{
    const uint8_t *p = b->body;
    size_t n = b->n;
    i++; /* '[' */
    while (i < n && is_ws(p[i]))
        i++;
    if (i < n && p[i] == ']') {
        i++;
    } else {
        for (;;) {
            while (i < n && is_ws(p[i]))
                i++;
            if (i >= n) {
                structural(b, WEIR_EMALFORMED, i, "unterminated array");
                return WEIR_EMALFORMED;
            }
            size_t end = value_end(p, n, i);
            if (end == 0 || end == i) {
                structural(b, WEIR_EMALFORMED, i,
                           end ? "expected an array element" : "unterminated array element");
                return WEIR_EMALFORMED;
            }
            batch_one_json(b, i, end - i);
            if (b->stop)
                return WEIR_OK;
            i = end;
            while (i < n && is_ws(p[i]))
                i++;
            if (i < n && p[i] == ',') {
                i++;
                continue;
            }
            if (i < n && p[i] == ']') {
                i++;
                break;
            }
            structural(b, WEIR_EMALFORMED, i, "expected ',' or ']' in the array");
            return WEIR_EMALFORMED;
        }
    }
    while (i < n && is_ws(p[i]))
        i++;
    if (i != n) {
        structural(b, WEIR_EMALFORMED, i, "unexpected bytes after the array");
        return WEIR_EMALFORMED;
    }
    return WEIR_OK;
}

static int batch_json(batch *b, bool multi)
{
    if (!multi)
        return batch_one_json(b, 0, b->n);
    size_t i = 0;
    while (i < b->n && is_ws(b->body[i]))
        i++;
    if (i < b->n && b->body[i] == '[')
        return batch_json_array(b, i);
    size_t pos = 0, start, len;
    while (!b->stop && next_line(b, &pos, &start, &len)) {
        if (!blank(b->body + start, len))
            batch_one_json(b, start, len);
    }
    return WEIR_OK;
}

/* ======================================================================== */
/* CSV                                                                      */
/* ======================================================================== */

/* The end of the CSV record at pos: the first LF outside a quoted field
 * (quotes only open a field, as csv_next reads them). */
static size_t csv_record_end(const uint8_t *p, size_t n, size_t pos, char delim)
{
    enum { FIELD_START, UNQUOTED, QUOTED, AFTER_QUOTE } st = FIELD_START;
    for (size_t i = pos; i < n; i++) {
        uint8_t c = p[i];
        switch (st) {
        case FIELD_START:
            if (c == '"')
                st = QUOTED;
            else if (c == '\n')
                return i;
            else if (c != (uint8_t)delim && !((c == ' ' || c == '\t') && c != (uint8_t)delim))
                st = UNQUOTED;
            break;
        case UNQUOTED:
        case AFTER_QUOTE:
            if (c == (uint8_t)delim)
                st = FIELD_START;
            else if (c == '\n')
                return i;
            else if (c == '"' && st == AFTER_QUOTE && i > 0 && p[i - 1] == '"')
                st = QUOTED; /* the second quote of a "" pair */
            break;
        case QUOTED:
            if (c == '"')
                st = AFTER_QUOTE;
            break;
        }
    }
    return n;
}

static int batch_csv(batch *b, bool multi)
{
    rec_csv *c = NULL;
    int rc = rec_csv_new(b->sc, &c);
    if (rc) {
        structural(b, rc, 0, "the schema is not a valid CSV schema");
        return rc;
    }
    char delim = b->sc->csv_delim ? b->sc->csv_delim : ',';
    bool need_header = b->sc->n_csv_columns == 0;
    size_t pos = 0;
    while (!b->stop && pos < b->n) {
        size_t start = pos, end = csv_record_end(b->body, b->n, pos, delim);
        pos = end < b->n ? end + 1 : b->n;
        size_t len = end - start;
        if (len == 0 || (len == 1 && b->body[start] == '\r'))
            continue;
        rec_error e;
        if (need_header) {
            rc = rec_csv_header(c, b->body + start, len, &e);
            if (rc) {
                deliver(b, rc, NULL, &e, start);
                rc = WEIR_EMALFORMED;
                goto done;
            }
            need_header = false;
            continue;
        }
        record r;
        arena_reset(b->a);
        rc = rec_csv_line(c, b->body + start, len, b->a, &r, &e);
        deliver(b, rc, &r, &e, start);
    }
    rc = WEIR_OK;
done:
    rec_csv_free(c);
    return rc;
}

/* ======================================================================== */
/* line protocol                                                            */
/* ======================================================================== */

static int batch_line(batch *b, bool multi)
{
    size_t pos = 0, start, len;
    while (!b->stop && next_line(b, &pos, &start, &len)) {
        size_t k = 0;
        while (k < len && (b->body[start + k] == ' ' || b->body[start + k] == '\t'))
            k++;
        if (k == len || b->body[start + k] == '#' || (k + 1 == len && b->body[start + k] == '\r'))
            continue;
        record r;
        rec_error e;
        arena_reset(b->a);
        int rc = rec_decode_line(b->body + start, len, b->sc, 0, b->a, &r, &e);
        deliver(b, rc, &r, &e, start);
    }
    return WEIR_OK;
}

/* ======================================================================== */

typedef int (*batch_fn)(batch *b, bool multi);

static const batch_fn splitters[] = {
    [REC_FMT_JSON] = batch_json,
    [REC_FMT_CSV] = batch_csv,
    [REC_FMT_LINE] = batch_line,
};

int rec_batch_decode(rec_format fmt, bool json_array_or_ndjson, const uint8_t *body, size_t n,
                     const rec_schema *sc, arena *a, rec_batch_cb cb, rec_batch_err_cb ecb,
                     void *arg, uint32_t *accepted, uint32_t *rejected)
{
    batch b = {
        .body = body,
        .n = n,
        .sc = sc,
        .a = a,
        .cb = cb,
        .ecb = ecb,
        .arg = arg,
        .pos_line = 1,
    };
    int rc = WEIR_EINVAL;
    if ((unsigned)fmt < sizeof(splitters) / sizeof(splitters[0]) && cb &&
        (fmt != REC_FMT_CSV || sc))
        rc = splitters[fmt](&b, json_array_or_ndjson);
    if (accepted)
        *accepted = b.ok;
    if (rejected)
        *rejected = b.bad;
    if (b.stop < 0)
        return b.stop;
    return rc;
}
