/* record_check.h -- the properties every record must have, shared by the
 * record fuzz targets (fuzz_json, fuzz_csv, fuzz_line, fuzz_record). Any
 * broken property aborts, which libFuzzer reports as a crash.
 *
 * For a record r that a decoder accepted:
 *  - names and strings are UTF-8 without NUL (checked here by a validator
 *    written independently of src/record's), names are unique, types are in
 *    range, JSON values are a JSON object or array to jansson;
 *  - the storage encoding round-trips: decode(encode(r)) == r and encoding
 *    again gives the same bytes;
 *  - record_to_json(r) is valid JSON to jansson, an object with the same
 *    names in the same order, and (all doubles being finite)
 *    rec_decode_json(record_to_json(r)) == r: the JSON form loses nothing.
 */
#ifndef WEIR_TESTS_FUZZ_RECORD_CHECK_H
#define WEIR_TESTS_FUZZ_RECORD_CHECK_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "record/decode.h"
#include "record/record.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void rc_check(bool ok, const char *what)
{
    if (ok)
        return;
    fprintf(stderr, "record property broken: %s\n", what);
    abort();
}

/* Straightforward UTF-8 check, deliberately not the library's. */
static inline bool rc_text_ok(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        if (c == 0)
            return false;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (!len || i + len > n)
            return false;
        unsigned long cp = c & (0xFF >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        static const unsigned long min[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

/* jansson's reading of a JSON text, integers beyond int64 allowed (as
 * reals); *as_real tells whether that was needed. */
static inline json_t *rc_load(const char *p, size_t n, bool *as_real)
{
    json_error_t je;
    *as_real = false;
    json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!j && json_error_code(&je) == json_error_numeric_overflow) {
        *as_real = true;
        j = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    }
    return j;
}

/* Two JSON texts mean the same (numbers compared as doubles). */
static inline bool rc_json_same(const char *a, size_t an, const char *b, size_t bn)
{
    json_error_t je;
    json_t *x = json_loadb(a, an, JSON_DECODE_INT_AS_REAL, &je);
    json_t *y = json_loadb(b, bn, JSON_DECODE_INT_AS_REAL, &je);
    bool same = x && y && json_equal(x, y);
    json_decref(x);
    json_decref(y);
    return same;
}

static inline bool rc_fields_equal(const record *a, const record *b, bool json_by_meaning)
{
    if (a->n_fields != b->n_fields)
        return false;
    for (uint32_t i = 0; i < a->n_fields; i++) {
        const rec_field *x = &a->fields[i], *y = &b->fields[i];
        if (x->name_len != y->name_len || memcmp(x->name, y->name, x->name_len) != 0)
            return false;
        if (json_by_meaning && x->v.type == REC_JSON && y->v.type == REC_JSON) {
            if (!rc_json_same(x->v.u.s.p, x->v.u.s.len, y->v.u.s.p, y->v.u.s.len))
                return false;
        } else if (!rec_value_equal(&x->v, &y->v)) {
            return false;
        }
    }
    return true;
}

static inline void rc_check_record(const record *r)
{
    bool finite = true;
    rc_check(r->key == NULL || rc_text_ok(r->key, r->key_len), "key text");
    rc_check(r->n_fields == 0 || r->fields != NULL, "fields array");
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const rec_field *f = &r->fields[i];
        rc_check(rc_text_ok(f->name, f->name_len), "name text");
        if (r->n_fields < 3000)
            for (uint32_t j = 0; j < i; j++)
                rc_check(f->name_len != r->fields[j].name_len ||
                             memcmp(f->name, r->fields[j].name, f->name_len) != 0,
                         "duplicate names");
        rc_check((unsigned)f->v.type < REC_TYPE_COUNT, "type in range");
        if (f->v.type == REC_STRING)
            rc_check(rc_text_ok(f->v.u.s.p, f->v.u.s.len), "string text");
        if (f->v.type == REC_JSON) {
            bool as_real;
            json_t *j = rc_load(f->v.u.s.p, f->v.u.s.len, &as_real);
            rc_check(j && (json_is_object(j) || json_is_array(j)), "JSON value is JSON");
            json_decref(j);
        }
        if (f->v.type == REC_DOUBLE && !isfinite(f->v.u.d))
            finite = false;
    }

    /* Storage round trip. */
    static arena a;
    static bool init;
    if (!init) {
        arena_init(&a, 64 << 20);
        init = true;
    }
    weir_buf b1, b2, js;
    buf_init(&b1, 0);
    buf_init(&b2, 0);
    buf_init(&js, 0);
    rc_check(record_encode(r, &b1) == WEIR_OK, "encode");
    record d;
    arena_reset(&a);
    rc_check(record_decode(buf_head(&b1), buf_used(&b1), &a, &d) == WEIR_OK, "decode(encode(r))");
    rc_check(rc_fields_equal(r, &d, false), "decode(encode(r)) == r");
    rc_check(record_encode(&d, &b2) == WEIR_OK && buf_used(&b1) == buf_used(&b2) &&
                 memcmp(buf_head(&b1), buf_head(&b2), buf_used(&b1)) == 0,
             "encoding is stable");

    /* JSON form. */
    rc_check(record_to_json(r, &js) == WEIR_OK, "to_json");
    bool as_real;
    json_t *o = rc_load((const char *)buf_head(&js), buf_used(&js), &as_real);
    if (!o)
        fprintf(stderr, "to_json: %.*s\n", (int)buf_used(&js), (const char *)buf_head(&js));
    rc_check(o && json_is_object(o) && json_object_size(o) == r->n_fields, "to_json is JSON");
    uint32_t k = 0;
    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it), k++) {
        const rec_field *f = &r->fields[k];
        rc_check(json_object_iter_key_len(it) == f->name_len &&
                     memcmp(json_object_iter_key(it), f->name, f->name_len) == 0,
                 "to_json names in order");
    }
    json_decref(o);
    if (finite) {
        record back;
        rec_error e;
        arena_reset(&a);
        int rc = rec_decode_json(buf_head(&js), buf_used(&js), NULL, &a, &back, &e);
        if (rc)
            fprintf(stderr, "%s at %u:%u in %.*s\n", e.msg, e.line, e.column, (int)buf_used(&js),
                    (const char *)buf_head(&js));
        rc_check(rc == WEIR_OK, "decode_json(to_json(r))");
        rc_check(rc_fields_equal(r, &back, true), "decode_json(to_json(r)) == r");
    }
    buf_free(&b1);
    buf_free(&b2);
    buf_free(&js);
}

/* The error contract of the payload decoders. */
static inline void rc_check_error(int rc, const rec_error *e, const record *r)
{
    rc_check(rc == WEIR_EMALFORMED || rc == WEIR_EUTF8 || rc == WEIR_ETOOBIG, "error code");
    rc_check(e->code == rc, "error code in rec_error");
    rc_check(e->msg[0] != '\0' && memchr(e->msg, '\0', sizeof(e->msg)) != NULL, "error message");
    rc_check(e->line >= 1, "error line");
    rc_check(r->fields == NULL && r->n_fields == 0 && r->key == NULL && r->ts == 0,
             "record zeroed on error");
}

/* A heap copy of exactly n bytes, so that AddressSanitizer sees any read
 * one byte past the input. */
static inline uint8_t *rc_copy(const uint8_t *p, size_t n)
{
    uint8_t *c = malloc(n ? n : 1);
    rc_check(c != NULL, "out of memory");
    if (n)
        memcpy(c, p, n);
    return c;
}

static inline int rc_batch_cb(void *arg, const record *r)
{
    rc_check_record(r);
    (*(uint32_t *)arg)++;
    return 0;
}

static inline void rc_batch_ecb(void *arg, const rec_error *e)
{
    rc_check(e->code < 0 && e->msg[0] != '\0' && e->line >= 1, "batch error contract");
}

#endif
