/* record.c -- record access, the storage encoding (format in record.h) and
 * the JSON form. */
#include "base/err.h"
#include "record/record_int.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================== */
/* access                                                                   */
/* ======================================================================== */

static const char *const type_names[REC_TYPE_COUNT] = {
    [REC_NULL] = "null",     [REC_BOOL] = "bool",     [REC_INT] = "int",
    [REC_DOUBLE] = "double", [REC_STRING] = "string", [REC_JSON] = "json",
};

const char *rec_type_name(rec_type t)
{
    return (unsigned)t < REC_TYPE_COUNT ? type_names[t] : "?";
}

const rec_value *record_get(const record *r, const char *name, size_t len)
{
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const rec_field *f = &r->fields[i];
        if (f->name_len == len && (len == 0 || memcmp(f->name, name, len) == 0))
            return &f->v;
    }
    return NULL;
}

bool rec_value_as_double(const rec_value *v, double *out)
{
    switch (v->type) {
    case REC_INT:
        *out = (double)v->u.i;
        return true;
    case REC_DOUBLE:
        *out = v->u.d;
        return true;
    case REC_BOOL:
        *out = v->u.b ? 1.0 : 0.0;
        return true;
    case REC_STRING: {
        const char *p = v->u.s.p;
        size_t n = v->u.s.len;
        rec__trim(&p, &n);
        int64_t i;
        double d;
        switch (rec__parse_number(p, n, &i, &d)) {
        case REC__NUM_INT:
            *out = (double)i;
            return true;
        case REC__NUM_BIGINT:
        case REC__NUM_REAL:
            *out = d;
            return true;
        default:
            return false;
        }
    }
    default:
        return false;
    }
}

bool rec_value_equal(const rec_value *a, const rec_value *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case REC_NULL:
        return true;
    case REC_BOOL:
        return a->u.b == b->u.b;
    case REC_INT:
        return a->u.i == b->u.i;
    case REC_DOUBLE:
        return memcmp(&a->u.d, &b->u.d, sizeof(double)) == 0;
    case REC_STRING:
    case REC_JSON:
        return a->u.s.len == b->u.s.len &&
               (a->u.s.len == 0 || memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0);
    }
    return false;
}

/* ======================================================================== */
/* storage encoding                                                         */
/* ======================================================================== */

enum {
    TAG_NULL = 0x00,
    TAG_FALSE = 0x01,
    TAG_TRUE = 0x02,
    TAG_INT = 0x03,
    TAG_DOUBLE = 0x04,
    TAG_STRING = 0x05,
    TAG_JSON = 0x06,
    TAG_COUNT
};

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a minimal-form varint at p[*i..n); false when truncated, longer
 * than 10 bytes, overflowing 64 bits or not minimal. */
static bool varint_get(const uint8_t *p, size_t n, size_t *i, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned k = 0; k < 10; k++) {
        if (*i >= n)
            return false;
        uint8_t b = p[(*i)++];
        if (k == 9 && b > 0x01)
            return false;
        v |= (uint64_t)(b & 0x7F) << (7 * k);
        if (!(b & 0x80)) {
            /* A last group of zero after the first byte means a shorter
             * encoding existed. */
            if (k > 0 && b == 0)
                return false;
            *out = v;
            return true;
        }
    }
    return false;
}

static inline uint64_t zigzag(int64_t i)
{
    return ((uint64_t)i << 1) ^ (uint64_t)(i >> 63);
}

static inline int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

/* Bytes of a value's encoding after the tag. */
static size_t value_size(const rec_value *v)
{
    switch (v->type) {
    case REC_INT:
        return varint_size(zigzag(v->u.i));
    case REC_DOUBLE:
        return 8;
    case REC_STRING:
    case REC_JSON:
        return varint_size(v->u.s.len) + v->u.s.len;
    default:
        return 0;
    }
}

static uint8_t *value_put(uint8_t *p, const rec_value *v)
{
    switch (v->type) {
    case REC_NULL:
        *p++ = TAG_NULL;
        break;
    case REC_BOOL:
        *p++ = v->u.b ? TAG_TRUE : TAG_FALSE;
        break;
    case REC_INT:
        *p++ = TAG_INT;
        p = varint_put(p, zigzag(v->u.i));
        break;
    case REC_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, 8);
        *p++ = TAG_DOUBLE;
        for (int k = 0; k < 8; k++)
            *p++ = (uint8_t)(bits >> (8 * k));
        break;
    }
    case REC_STRING:
    case REC_JSON:
        *p++ = v->type == REC_STRING ? TAG_STRING : TAG_JSON;
        p = varint_put(p, v->u.s.len);
        if (v->u.s.len)
            memcpy(p, v->u.s.p, v->u.s.len);
        p += v->u.s.len;
        break;
    }
    return p;
}

int record_encode(const record *r, weir_buf *out)
{
    /* One pass to size, one reserve, one pass to write: the buffer is never
     * left half-written. */
    size_t size = 1 + varint_size(r->n_fields);
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const rec_field *f = &r->fields[i];
        if ((unsigned)f->v.type >= REC_TYPE_COUNT)
            return WEIR_EINVAL;
        size += varint_size(f->name_len) + f->name_len + 1 + value_size(&f->v);
    }
    int rc = buf_reserve(out, size);
    if (rc)
        return rc;
    uint8_t *start = buf_tail(out), *p = start;
    *p++ = RECORD_FORMAT_V1;
    p = varint_put(p, r->n_fields);
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const rec_field *f = &r->fields[i];
        p = varint_put(p, f->name_len);
        if (f->name_len)
            memcpy(p, f->name, f->name_len);
        p += f->name_len;
        p = value_put(p, &f->v);
    }
    buf_commit(out, (size_t)(p - start));
    return WEIR_OK;
}

/* Per-tag value readers: p[*i..n) holds the value after the tag. Each
 * returns false when the bytes are not a valid value. */
typedef bool (*tag_reader)(const uint8_t *p, size_t n, size_t *i, rec_value *v);

static bool read_null(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    v->type = REC_NULL;
    return true;
}

static bool read_false(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    v->type = REC_BOOL;
    v->u.b = false;
    return true;
}

static bool read_true(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    v->type = REC_BOOL;
    v->u.b = true;
    return true;
}

static bool read_int(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    uint64_t u;
    if (!varint_get(p, n, i, &u))
        return false;
    v->type = REC_INT;
    v->u.i = unzigzag(u);
    return true;
}

static bool read_double(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    if (n - *i < 8)
        return false;
    uint64_t bits = 0;
    for (int k = 0; k < 8; k++)
        bits |= (uint64_t)p[*i + k] << (8 * k);
    *i += 8;
    v->type = REC_DOUBLE;
    memcpy(&v->u.d, &bits, 8);
    return true;
}

static bool read_span(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    uint64_t len;
    if (!varint_get(p, n, i, &len) || len > UINT32_MAX || len > n - *i)
        return false;
    v->u.s.p = (const char *)p + *i;
    v->u.s.len = (uint32_t)len;
    *i += len;
    return true;
}

static bool read_string(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    if (!read_span(p, n, i, v))
        return false;
    v->type = REC_STRING;
    return rec__utf8_valid((const uint8_t *)v->u.s.p, v->u.s.len);
}

static bool read_json(const uint8_t *p, size_t n, size_t *i, rec_value *v)
{
    if (!read_span(p, n, i, v))
        return false;
    v->type = REC_JSON;
    char why[8];
    return rec__json_check(v->u.s.p, v->u.s.len, why, sizeof(why), NULL) == WEIR_OK;
}

static const tag_reader tag_readers[TAG_COUNT] = {
    [TAG_NULL] = read_null, [TAG_FALSE] = read_false,   [TAG_TRUE] = read_true,
    [TAG_INT] = read_int,   [TAG_DOUBLE] = read_double, [TAG_STRING] = read_string,
    [TAG_JSON] = read_json,
};

int record_decode(const uint8_t *p, size_t n, arena *a, record *out)
{
    memset(out, 0, sizeof(*out));
    int rc = WEIR_EMALFORMED;
    if (n < 1)
        goto fail;
    if (p[0] != RECORD_FORMAT_V1) {
        rc = WEIR_EVERSION;
        goto fail;
    }
    size_t i = 1;
    uint64_t nf;
    /* Every field takes at least two bytes (name length and tag), which
     * bounds the allocation by the input before trusting the count. */
    if (!varint_get(p, n, &i, &nf) || nf > (n - i) / 2)
        goto fail;
    rec_field *fields = NULL;
    if (nf) {
        fields = arena_alloc(a, (size_t)nf * sizeof(rec_field));
        if (!fields) {
            rc = rec__arena_err(a);
            goto fail;
        }
    }
    for (uint64_t k = 0; k < nf; k++) {
        rec_field *f = &fields[k];
        uint64_t nl;
        if (!varint_get(p, n, &i, &nl) || nl > UINT16_MAX || nl > n - i)
            goto fail;
        f->name = (const char *)p + i;
        f->name_len = (uint16_t)nl;
        if (!rec__utf8_valid(p + i, nl))
            goto fail;
        i += nl;
        if (i >= n || p[i] >= TAG_COUNT)
            goto fail;
        uint8_t tag = p[i++];
        if (!tag_readers[tag](p, n, &i, &f->v))
            goto fail;
    }
    if (i != n)
        goto fail;
    int64_t dup = rec__find_duplicate(fields, (uint32_t)nf, a, &rc);
    if (rc)
        goto fail;
    if (dup >= 0) {
        rc = WEIR_EMALFORMED;
        goto fail;
    }
    out->fields = fields;
    out->n_fields = (uint32_t)nf;
    return WEIR_OK;
fail:
    memset(out, 0, sizeof(*out));
    return rc;
}

/* ======================================================================== */
/* JSON form                                                                */
/* ======================================================================== */

size_t rec_format_double(double d, char *buf)
{
    if (!isfinite(d)) {
        memcpy(buf, "null", 5);
        return 4;
    }
    /* The shortest decimal that reads back to d. For a normal double, if
     * any decimal of at most 15 significant digits reads back to d, %.15g
     * prints exactly it (trailing zeros dropped): d is within half an ulp of
     * it and an ulp is finer than the 15th digit (DBL_DIG). Otherwise the
     * correctly rounded 16-digit form is the nearest 16-digit decimal, so it
     * reads back if any does; 17 digits always do. */
    int len = 0;
    /* Subnormals carry fewer digits than DBL_DIG, so for them every length
     * is tried (5e-324, not 4.94065645841247e-324). */
    for (int prec = fabs(d) < DBL_MIN ? 1 : 15; prec <= 17; prec++) {
        len = snprintf(buf, 32, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    /* Keep it a double when read back: "1" would come back as an INT. */
    if (!strpbrk(buf, ".e")) {
        memcpy(buf + len, ".0", 3);
        len += 2;
    }
    return (size_t)len;
}

/* Length of the valid UTF-8 sequence at p[0..n), or 0 if the byte there
 * does not start one. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    size_t lim = n < 4 ? n : 4;
    size_t len = p[0] < 0xE0 ? 2 : p[0] < 0xF0 ? 3 : 4;
    if (len > lim)
        return 0;
    return rec__utf8_check(p, len) == len ? len : 0;
}

static const char hexd[] = "0123456789abcdef";

/* Appends s[0..n) as a JSON string. Bytes that need no escaping are
 * appended in runs. */
static int json_string(weir_buf *b, const char *str, size_t n)
{
    const uint8_t *s = (const uint8_t *)str;
    int rc = buf_append(b, "\"", 1);
    size_t run = 0, i = 0;
    while (rc == WEIR_OK && i < n) {
        uint8_t c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        size_t seq = c >= 0x80 ? utf8_seq(s + i, n - i) : 0;
        if (seq) {
            i += seq;
            continue;
        }
        rc = buf_append(b, s + run, i - run);
        if (rc)
            break;
        char esc[8];
        size_t el = 2;
        esc[0] = '\\';
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            if (c >= 0x80) {
                memcpy(esc, "\xEF\xBF\xBD", 3); /* U+FFFD for a byte that is not UTF-8 */
                el = 3;
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hexd[c >> 4];
                esc[5] = hexd[c & 15];
                el = 6;
            }
            break;
        }
        rc = buf_append(b, esc, el);
        i++;
        run = i;
    }
    if (rc == WEIR_OK)
        rc = buf_append(b, s + run, i - run);
    if (rc == WEIR_OK)
        rc = buf_append(b, "\"", 1);
    return rc;
}

static int json_value(weir_buf *b, const rec_value *v)
{
    char num[40];
    switch (v->type) {
    case REC_NULL:
        return buf_append(b, "null", 4);
    case REC_BOOL:
        return v->u.b ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
    case REC_INT: {
        int len = snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
        return buf_append(b, num, (size_t)len);
    }
    case REC_DOUBLE:
        return buf_append(b, num, rec_format_double(v->u.d, num));
    case REC_STRING:
        return json_string(b, v->u.s.p, v->u.s.len);
    case REC_JSON:
        return buf_append(b, v->u.s.p, v->u.s.len);
    }
    return buf_append(b, "null", 4);
}

int record_to_json(const record *r, weir_buf *out)
{
    size_t used0 = buf_used(out);
    int rc = buf_append(out, "{", 1);
    for (uint32_t i = 0; rc == WEIR_OK && i < r->n_fields; i++) {
        const rec_field *f = &r->fields[i];
        if (i)
            rc = buf_append(out, ",", 1);
        if (rc == WEIR_OK)
            rc = json_string(out, f->name, f->name_len);
        if (rc == WEIR_OK)
            rc = buf_append(out, ":", 1);
        if (rc == WEIR_OK)
            rc = json_value(out, &f->v);
    }
    if (rc == WEIR_OK)
        rc = buf_append(out, "}", 1);
    if (rc)
        out->len = out->off + used0; /* growth may have moved the bytes, never reordered them */
    return rc;
}
