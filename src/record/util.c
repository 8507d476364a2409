/* util.c -- the helpers of record_int.h: UTF-8, numbers, the field list with
 * its duplicate-name check, error reporting. */
#include "base/err.h"
#include "record/record_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ======================================================================== */
/* text                                                                     */
/* ======================================================================== */

size_t rec__utf8_check(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* Sensor payloads are nearly all ASCII: skip it a word at a time,
         * stopping at a high bit or a zero byte. */
        while (n - i >= 8) {
            uint64_t w;
            memcpy(&w, p + i, 8);
            if ((w & 0x8080808080808080ull) ||
                ((w - 0x0101010101010101ull) & ~w & 0x8080808080808080ull))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        uint8_t c = p[i];
        if (c == 0)
            return i;
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return i;
            cp = cp << 6 | (p[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

void rec__trim(const char **p, size_t *n)
{
    const char *s = *p;
    size_t len = *n;
    while (len && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        len--;
    }
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    *p = s;
    *n = len;
}

/* ======================================================================== */
/* numbers                                                                  */
/* ======================================================================== */

double rec__strtod(const char *p, size_t n)
{
    /* strtod needs a NUL-terminated string and payload bytes are not. Real
     * numbers are short; a pathological long one goes to the heap, and if
     * even that fails the result is NaN, which callers treat as "not a
     * number". */
    char stack[256];
    if (n < sizeof(stack)) {
        memcpy(stack, p, n);
        stack[n] = '\0';
        return strtod(stack, NULL);
    }
    char *heap = malloc(n + 1);
    if (!heap)
        return NAN;
    memcpy(heap, p, n);
    heap[n] = '\0';
    double d = strtod(heap, NULL);
    free(heap);
    return d;
}

static inline bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Powers of ten that are exact in a double. */
static const double exact_pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

rec__numkind rec__parse_number(const char *p, size_t n, int64_t *iv, double *dv)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (p[i] == '+' || p[i] == '-')) {
        neg = p[i] == '-';
        i++;
    }
    /* All digits, integer and fraction, go into one mantissa while it fits;
     * `exact` stays true as long as none was dropped. */
    uint64_t mant = 0;
    bool exact = true;
    size_t digits = 0;
    int frac = 0; /* fraction digits in mant */
    for (; i < n && is_digit(p[i]); i++, digits++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (!exact || mant > (UINT64_MAX - d) / 10)
            exact = false;
        else
            mant = mant * 10 + d;
    }
    bool real = false;
    if (i < n && p[i] == '.') {
        real = true;
        for (i++; i < n && is_digit(p[i]); i++, digits++) {
            unsigned d = (unsigned)(p[i] - '0');
            if (exact && mant <= (UINT64_MAX - d) / 10) {
                mant = mant * 10 + d;
                frac++;
            } else {
                exact = false;
            }
        }
    }
    if (digits == 0)
        return REC__NUM_NONE;
    long exp = 0;
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        real = true;
        i++;
        bool eneg = false;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            eneg = p[i++] == '-';
        size_t e0 = i;
        for (; i < n && is_digit(p[i]); i++)
            if (exp < 100000)
                exp = exp * 10 + (p[i] - '0');
        if (i == e0)
            return REC__NUM_NONE;
        if (eneg)
            exp = -exp;
    }
    if (i != n)
        return REC__NUM_NONE;
    if (!real && exact) {
        if (!neg && mant <= (uint64_t)INT64_MAX) {
            *iv = (int64_t)mant;
            return REC__NUM_INT;
        }
        if (neg && mant <= (uint64_t)INT64_MAX + 1) {
            *iv = mant == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mant;
            return REC__NUM_INT;
        }
    }
    /* Clinger's fast path: a mantissa below 2^53 and a power of ten up to
     * 10^22 are both exact doubles, and one IEEE multiplication or division
     * rounds correctly, so the result is what strtod gives -- without its
     * cost for the short decimals that sensors send. */
    long e10 = exp - frac;
    double d;
    if (exact && mant <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        d = (double)mant;
        d = e10 < 0 ? d / exact_pow10[-e10] : d * exact_pow10[e10];
        if (neg)
            d = -d;
    } else {
        d = rec__strtod(p, n);
        if (isnan(d))
            return REC__NUM_NONE;
        if (isinf(d))
            return REC__NUM_OVERFLOW;
    }
    *dv = d;
    return real ? REC__NUM_REAL : REC__NUM_BIGINT;
}

/* ======================================================================== */
/* field list and unique names                                              */
/* ======================================================================== */

/* Up to this many fields a linear scan finds duplicates faster than hashing
 * (sensor readings have a handful); past it an index keeps a 10,000-field
 * payload from costing 10^8 comparisons. */
#define REC__LINEAR_MAX 16

static inline bool name_eq(const rec_field *f, const char *name, size_t len)
{
    return f->name_len == len && (len == 0 || memcmp(f->name, name, len) == 0);
}

/* Looks name up in an index of fields v; returns the index of the field with
 * that name, or -1 after storing `idx` in the empty slot it ends on (when idx
 * is not UINT32_MAX). */
static int64_t index_probe(const rec_field *v, uint32_t *slots, uint32_t n_slots, const char *name,
                           size_t len, uint32_t idx)
{
    uint32_t mask = n_slots - 1;
    uint32_t h = (uint32_t)XXH3_64bits(name, len) & mask;
    for (;;) {
        uint32_t s = slots[h];
        if (s == 0) {
            if (idx != UINT32_MAX)
                slots[h] = idx + 1;
            return -1;
        }
        if (name_eq(&v[s - 1], name, len))
            return s - 1;
        h = (h + 1) & mask;
    }
}

/* (Re)builds the index of f with room for twice its fields. */
static int index_build(rec__fields *f)
{
    uint32_t ns = 64;
    while (ns < 2u * f->n + 2)
        ns *= 2;
    uint32_t *slots = arena_alloc(f->a, (size_t)ns * sizeof(uint32_t));
    if (!slots)
        return rec__arena_err(f->a);
    memset(slots, 0, (size_t)ns * sizeof(uint32_t));
    for (uint32_t i = 0; i < f->n; i++)
        index_probe(f->v, slots, ns, f->v[i].name, f->v[i].name_len, i);
    f->slots = slots;
    f->n_slots = ns;
    return WEIR_OK;
}

void rec__fields_init(rec__fields *f, arena *a)
{
    memset(f, 0, sizeof(*f));
    f->a = a;
}

int rec__fields_add(rec__fields *f, const char *name, size_t len, bool copy_name, rec_field **out)
{
    if (len > UINT16_MAX)
        return WEIR_ETOOBIG;
    int64_t dup = -1;
    if (f->n_slots) {
        dup = index_probe(f->v, f->slots, f->n_slots, name, len, UINT32_MAX);
    } else {
        for (uint32_t i = 0; i < f->n && dup < 0; i++)
            if (name_eq(&f->v[i], name, len))
                dup = i;
    }
    if (dup >= 0) {
        *out = &f->v[dup];
        return WEIR_EMALFORMED;
    }
    if (f->n == f->cap) {
        if (f->cap >= UINT32_MAX / 2)
            return WEIR_ETOOBIG;
        uint32_t cap = f->cap ? f->cap * 2 : 8;
        rec_field *v = arena_alloc(f->a, (size_t)cap * sizeof(rec_field));
        if (!v)
            return rec__arena_err(f->a);
        if (f->n)
            memcpy(v, f->v, (size_t)f->n * sizeof(rec_field));
        f->v = v;
        f->cap = cap;
    }
    if (copy_name) {
        name = arena_strdup(f->a, name, len);
        if (!name)
            return rec__arena_err(f->a);
    }
    rec_field *fl = &f->v[f->n];
    fl->name = name;
    fl->name_len = (uint16_t)len;
    memset(&fl->v, 0, sizeof(fl->v));
    fl->v.type = REC_NULL;
    f->n++;
    if (f->n_slots) {
        if (2u * f->n > f->n_slots) {
            int rc = index_build(f);
            if (rc)
                return rc;
        } else {
            index_probe(f->v, f->slots, f->n_slots, name, len, f->n - 1);
        }
    } else if (f->n > REC__LINEAR_MAX) {
        int rc = index_build(f);
        if (rc)
            return rc;
    }
    *out = fl;
    return WEIR_OK;
}

int64_t rec__find_duplicate(const rec_field *v, uint32_t n, arena *a, int *rc)
{
    *rc = WEIR_OK;
    if (n <= REC__LINEAR_MAX) {
        for (uint32_t i = 1; i < n; i++)
            for (uint32_t j = 0; j < i; j++)
                if (name_eq(&v[j], v[i].name, v[i].name_len))
                    return i;
        return -1;
    }
    uint32_t ns = 64;
    while (ns < 2u * n + 2)
        ns *= 2;
    uint32_t *slots = arena_alloc(a, (size_t)ns * sizeof(uint32_t));
    if (!slots) {
        *rc = rec__arena_err(a);
        return -1;
    }
    memset(slots, 0, (size_t)ns * sizeof(uint32_t));
    for (uint32_t i = 0; i < n; i++)
        if (index_probe(v, slots, ns, v[i].name, v[i].name_len, i) >= 0)
            return i;
    return -1;
}

/* ======================================================================== */
/* errors                                                                   */
/* ======================================================================== */

int rec__fail(rec_error *err, int code, uint32_t line, uint32_t column, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    err->line = line;
    err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return code;
}

void rec__position(const uint8_t *p, size_t n, size_t at, uint32_t *line, uint32_t *column)
{
    if (at > n)
        at = n;
    uint32_t l = 1;
    size_t start = 0;
    for (size_t i = 0; i < at; i++) {
        if (p[i] == '\n') {
            l++;
            start = i + 1;
        }
    }
    *line = l;
    size_t col = at - start + 1;
    *column = col > UINT32_MAX ? UINT32_MAX : (uint32_t)col;
}

int rec__arena_err(const arena *a)
{
    int rc = arena_last_error(a);
    return rc ? rc : WEIR_ENOMEM;
}

int rec__scan_fail(rec__scan_err *e, int code, size_t at, const char *fmt, ...)
{
    e->at = at;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

int rec__scan_fail_arena(rec__scan_err *e, const arena *a, size_t at)
{
    int rc = rec__arena_err(a);
    return rec__scan_fail(e, rc, at,
                          rc == WEIR_ETOOBIG ? "the record needs more memory than the arena allows"
                                             : "out of memory");
}
