/* decode_csv.c -- CSV/TSV lines to records (contract in decode.h).
 *
 * A line is cut into fields by csv_next, which knows RFC 4180 quoting; the
 * header (or schema.csv_columns) gives every column its name and its role in
 * the schema once, so a data line only classifies values: NULL, number
 * (INT/DOUBLE) or STRING, then applies the precomputed role. Numbers are
 * converted in place from the line's bytes; only strings are copied.
 */
#include "base/err.h"
#include "record/record_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rec_csv {
    const rec_schema *sc; /* borrowed */
    rec__sctx x;          /* sc with measured names */
    char delim;           /* field separator */
    bool from_schema;     /* columns come from sc->csv_columns: no header line */
    uint32_t n_cols;      /* columns; 0 before a header */
    char **names;         /* n_cols NUL-terminated names, inside block */
    uint16_t *name_len;   /* their lengths, inside block */
    rec__role *roles;     /* their schema roles, inside block */
    void *block;          /* one malloc for the three arrays and the names */
};

/* One field as cut from a line. */
typedef struct csv_field {
    const char *p; /* content: between the quotes when quoted (with "" still doubled) */
    size_t n;      /* its length */
    size_t at;     /* offset of the field in the line */
    bool quoted;   /* it was enclosed in quotes */
    bool doubled;  /* it contains "" pairs to undo */
} csv_field;

static inline bool csv_space(char c, char delim)
{
    return (c == ' ' || c == '\t') && c != delim;
}

/* Cuts the field starting at *i. On return *i is past the delimiter that
 * ended it, and *last tells whether the line ended instead. */
static int csv_next(const char *p, size_t n, size_t *i, char delim, csv_field *f, bool *last,
                    size_t *err_at, const char **why)
{
    size_t j = *i, k = j;
    f->at = j;
    while (k < n && csv_space(p[k], delim))
        k++;
    if (k < n && p[k] == '"') {
        size_t open = k++;
        f->doubled = false;
        for (;;) {
            const char *q = k < n ? memchr(p + k, '"', n - k) : NULL;
            if (!q) {
                *err_at = open;
                *why = "unterminated quoted field";
                return WEIR_EMALFORMED;
            }
            k = (size_t)(q - p);
            if (k + 1 < n && p[k + 1] == '"') {
                f->doubled = true;
                k += 2;
                continue;
            }
            break;
        }
        f->p = p + open + 1;
        f->n = k - open - 1;
        f->quoted = true;
        k++;
        while (k < n && csv_space(p[k], delim))
            k++;
        if (k < n && p[k] != delim) {
            *err_at = k;
            *why = "unexpected character after a closing quote";
            return WEIR_EMALFORMED;
        }
    } else {
        const char *d = j < n ? memchr(p + j, delim, n - j) : NULL;
        k = d ? (size_t)(d - p) : n;
        f->p = p + j;
        f->n = k - j;
        f->quoted = false;
        f->doubled = false;
    }
    *last = k >= n;
    *i = k + 1;
    return WEIR_OK;
}

/* Drops one trailing LF and one CR before it. */
static size_t strip_eol(const char *p, size_t n)
{
    if (n && p[n - 1] == '\n')
        n--;
    if (n && p[n - 1] == '\r')
        n--;
    return n;
}

/* Copies a quoted field's content with each "" made one quote. */
static char *undouble(arena *a, const char *p, size_t n, size_t *out_len)
{
    char *d = arena_alloc_bytes(a, n + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        d[o++] = p[i];
        if (p[i] == '"')
            i++; /* the second quote of the pair */
    }
    d[o] = '\0';
    *out_len = o;
    return d;
}

/* ======================================================================== */
/* columns                                                                  */
/* ======================================================================== */

/* Installs n column names (copied) and their roles, replacing any earlier. */
static int csv_set_columns(rec_csv *c, const rec_field *cols, uint32_t n)
{
    size_t bytes = (size_t)n * (sizeof(char *) + sizeof(uint16_t) + sizeof(rec__role));
    for (uint32_t i = 0; i < n; i++)
        bytes += (size_t)cols[i].name_len + 1;
    void *block = malloc(bytes ? bytes : 1);
    if (!block)
        return WEIR_ENOMEM;
    /* Pointers first, then lengths, then roles (byte-sized), then the
     * text: each array starts aligned for its type. */
    char **names = block;
    uint16_t *lens = (uint16_t *)(names + n);
    rec__role *roles = (rec__role *)(lens + n);
    char *text = (char *)(roles + n);
    for (uint32_t i = 0; i < n; i++) {
        names[i] = text;
        memcpy(text, cols[i].name, cols[i].name_len);
        text[cols[i].name_len] = '\0';
        text += cols[i].name_len + 1;
        lens[i] = cols[i].name_len;
        rec__role_of(&c->x, names[i], lens[i], &roles[i]);
    }
    free(c->block);
    c->block = block;
    c->names = names;
    c->roles = roles;
    c->name_len = lens;
    c->n_cols = n;
    return WEIR_OK;
}

int rec_csv_new(const rec_schema *sc, rec_csv **out)
{
    *out = NULL;
    if (rec_schema_check(sc, NULL) || sc->format != REC_FMT_CSV)
        return WEIR_EINVAL;
    rec_csv *c = calloc(1, sizeof(*c));
    if (!c)
        return WEIR_ENOMEM;
    c->sc = sc;
    rec__sctx_init(&c->x, sc);
    c->delim = sc->csv_delim ? sc->csv_delim : ',';
    int rc = WEIR_OK;
    rec_field *cols = NULL;
    if (sc->n_csv_columns) {
        c->from_schema = true;
        cols = calloc(sc->n_csv_columns, sizeof(*cols));
        if (!cols) {
            rc = WEIR_ENOMEM;
            goto fail;
        }
        for (uint32_t i = 0; i < sc->n_csv_columns; i++) {
            cols[i].name = sc->csv_columns[i];
            cols[i].name_len = (uint16_t)strlen(sc->csv_columns[i]);
        }
        rc = csv_set_columns(c, cols, sc->n_csv_columns);
        if (rc)
            goto fail;
    }
    free(cols);
    *out = c;
    return WEIR_OK;
fail:
    free(cols);
    rec_csv_free(c);
    return rc;
}

void rec_csv_free(rec_csv *c)
{
    if (!c)
        return;
    free(c->block);
    free(c);
}

uint32_t rec_csv_columns(const rec_csv *c)
{
    return c->n_cols;
}

int rec_csv_header(rec_csv *c, const uint8_t *line, size_t n, rec_error *err)
{
    if (c->from_schema)
        return rec__fail(err, WEIR_EINVAL, 1, 0,
                         "the schema names the columns (csv_columns); no header line is expected");
    const char *p = (const char *)line;
    n = strip_eol(p, n);
    size_t bom = n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    if (n == bom)
        return rec__fail(err, WEIR_EMALFORMED, 1, 1, "empty header line");
    /* The names are gathered in a scratch arena, where rec__fields also
     * catches duplicates, then copied into the header's own block. */
    arena tmp;
    arena_init(&tmp, 0);
    rec__fields cols;
    rec__fields_init(&cols, &tmp);
    int rc = WEIR_OK;
    size_t i = bom, err_at = 0;
    const char *why = NULL;
    bool last = false;
    while (!last) {
        csv_field f;
        rc = csv_next(p, n, &i, c->delim, &f, &last, &err_at, &why);
        if (rc)
            goto fail;
        const char *name = f.p;
        size_t len = f.n;
        if (f.doubled && !(name = undouble(&tmp, f.p, f.n, &len))) {
            rc = rec__arena_err(&tmp);
            why = "out of memory";
            goto fail;
        }
        rec__trim(&name, &len);
        char gen[24];
        if (len == 0) {
            len = (size_t)snprintf(gen, sizeof(gen), "_col%u", cols.n + 1);
            name = gen;
        }
        size_t bad = rec__utf8_check((const uint8_t *)name, len);
        if (bad != len) {
            rc = WEIR_EUTF8;
            err_at = f.at;
            why = "column name is not UTF-8 (or has a NUL byte)";
            goto fail;
        }
        rec_field *fl;
        rc = rec__fields_add(&cols, name, len, true, &fl);
        if (rc) {
            err_at = f.at;
            why = rc == WEIR_EMALFORMED ? "duplicate column name"
                  : len > UINT16_MAX    ? "column name longer than 65535 bytes"
                                        : "out of memory";
            goto fail;
        }
    }
    rc = csv_set_columns(c, cols.v, cols.n);
    if (rc) {
        why = "out of memory";
        err_at = 0;
        goto fail;
    }
    arena_free(&tmp);
    return WEIR_OK;
fail:
    arena_free(&tmp);
    uint32_t l, col;
    rec__position(line, n, err_at, &l, &col);
    return rec__fail(err, rc, l, col, "%s", why);
}

/* ======================================================================== */
/* data lines                                                               */
/* ======================================================================== */

/* Classifies one field into v; *raw gets its (unquoted) text. */
static int csv_value(arena *a, const csv_field *f, rec_value *v, const char **raw, size_t *raw_len,
                     size_t *bad)
{
    const char *p = f->p;
    size_t n = f->n;
    if (f->doubled && !(p = undouble(a, f->p, f->n, &n)))
        return rec__arena_err(a);
    *raw = p;
    *raw_len = n;
    const char *t = p;
    size_t tn = n;
    rec__trim(&t, &tn);
    if (tn == 0 && !f->quoted) {
        v->type = REC_NULL;
        return WEIR_OK;
    }
    if (tn) {
        int64_t iv;
        double dv;
        switch (rec__parse_number(t, tn, &iv, &dv)) {
        case REC__NUM_INT:
            v->type = REC_INT;
            v->u.i = iv;
            return WEIR_OK;
        case REC__NUM_BIGINT:
        case REC__NUM_REAL:
            v->type = REC_DOUBLE;
            v->u.d = dv;
            return WEIR_OK;
        default:
            break; /* not a number (an overflowing one like 1e999 stays text) */
        }
    }
    *bad = rec__utf8_check((const uint8_t *)p, n);
    if (*bad != n)
        return WEIR_EUTF8;
    if (n > UINT32_MAX)
        return WEIR_ETOOBIG;
    if (p == f->p && !(p = arena_strdup(a, p, n)))
        return rec__arena_err(a);
    v->type = REC_STRING;
    v->u.s.p = p;
    v->u.s.len = (uint32_t)n;
    *raw = p;
    return WEIR_OK;
}

int rec_csv_line(rec_csv *c, const uint8_t *line, size_t n, arena *a, record *out, rec_error *err)
{
    memset(out, 0, sizeof(*out));
    const char *p = (const char *)line;
    n = strip_eol(p, n);
    if (c->n_cols == 0)
        return rec__fail(err, WEIR_EINVAL, 1, 0, "no header yet: the columns are unknown");
    if (n == 0)
        return rec__fail(err, WEIR_EMALFORMED, 1, 1, "empty line");
    rec_field *fields = arena_alloc(a, (size_t)c->n_cols * sizeof(rec_field));
    if (!fields) {
        int rc = rec__arena_err(a);
        return rec__fail(err, rc, 1, 0, "%s", weir_strerror(rc));
    }
    size_t i = 0, err_at = 0;
    uint32_t k = 0;
    bool last = false, in_field = false, count_err = false;
    const char *why = NULL;
    int rc = WEIR_OK;
    while (!last) {
        csv_field f;
        rc = csv_next(p, n, &i, c->delim, &f, &last, &err_at, &why);
        if (rc)
            goto fail;
        if (k == c->n_cols) {
            rc = WEIR_EMALFORMED;
            err_at = f.at;
            why = "more fields than columns";
            count_err = true;
            goto fail;
        }
        rec_field *fl = &fields[k];
        fl->name = c->names[k];
        fl->name_len = c->name_len[k];
        const char *raw = NULL;
        size_t raw_len = 0, bad = 0;
        in_field = true;
        err_at = f.at;
        rc = csv_value(a, &f, &fl->v, &raw, &raw_len, &bad);
        if (rc) {
            if (rc == WEIR_EUTF8 && !f.doubled)
                err_at = (size_t)(f.p - p) + bad;
            why = rc == WEIR_EUTF8     ? "not UTF-8 (or has a NUL byte)"
                  : rc == WEIR_ETOOBIG ? "the record needs more memory than the arena allows"
                                       : weir_strerror(rc);
            goto fail;
        }
        if (rec__role_any(&c->roles[k])) {
            rc = rec__apply(&c->x, &c->roles[k], a, &fl->v, raw, raw_len, out, &why);
            if (rc)
                goto fail;
        }
        in_field = false;
        k++;
    }
    if (k != c->n_cols) {
        rc = WEIR_EMALFORMED;
        err_at = n;
        why = "fewer fields than columns";
        count_err = true;
        goto fail;
    }
    out->fields = fields;
    out->n_fields = k;
    return WEIR_OK;
fail:
    memset(out, 0, sizeof(*out));
    uint32_t l, col;
    rec__position(line, n, err_at, &l, &col);
    if (in_field)
        return rec__fail(err, rc, l, col, "column '%.60s': %s", c->names[k], why);
    if (count_err)
        return rec__fail(err, rc, l, col, "%s (%u columns)", why, c->n_cols);
    return rec__fail(err, rc, l, col, "%s", why);
}
