/* decode_json.c -- one JSON object to a record (contract in decode.h).
 *
 * Two decoders live here. rec_decode_json reads the top level with a
 * scanner written for the job: one pass over the bytes, strings copied (and
 * unescaped only when they contain a backslash) straight into the arena,
 * integers converted without strtod, no tree built. It is strict in exactly
 * the ways jansson is (fuzz_json checks the two agree on every input), and
 * hands every nested object or array to jansson, which validates it in
 * full; the scanner only finds where the nested value ends and removes the
 * white space between its tokens. rec_decode_json_jansson does the whole
 * decode through jansson; it is the reference and the benchmark baseline.
 */
#include "base/err.h"
#include "record/record_int.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ======================================================================== */
/* JSON helpers shared with record.c and schema.c                           */
/* ======================================================================== */

int rec__json_check(const char *p, size_t n, char *why, size_t why_size, size_t *at)
{
    /* A nested value may be one level less deep than jansson allows a whole
     * document, so that a record holding it still prints (record_to_json
     * adds the enclosing object) as JSON that jansson reads. */
    unsigned depth = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"') {
            for (i++; i < n && p[i] != '"'; i++)
                i += p[i] == '\\';
        } else if (p[i] == '{' || p[i] == '[') {
            if (++depth >= REC__JSON_MAX_DEPTH) {
                snprintf(why, why_size, "nesting deeper than %d levels", REC__JSON_MAX_DEPTH);
                if (at)
                    *at = i + 1;
                return WEIR_EMALFORMED;
            }
        } else if ((p[i] == '}' || p[i] == ']') && depth) {
            depth--;
        }
    }
    /* jansson refuses integers beyond its json_int_t; a record keeps them
     * (as doubles at the top level, as written inside nested values), so
     * such a document is validated a second time reading integers as
     * reals. A real overflow fails both times. */
    json_error_t je;
    json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
    if (!j && json_error_code(&je) == json_error_numeric_overflow)
        j = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    if (!j) {
        snprintf(why, why_size, "%s", je.text);
        if (at)
            *at = je.position > 0 ? (size_t)je.position : 0;
        return WEIR_EMALFORMED;
    }
    json_decref(j);
    return WEIR_OK;
}

size_t rec__json_compact(const char *p, size_t n, char *dst)
{
    size_t o = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (in_str) {
            dst[o++] = c;
            if (c == '\\' && i + 1 < n)
                dst[o++] = p[++i];
            else if (c == '"')
                in_str = false;
        } else if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            dst[o++] = c;
            in_str = c == '"';
        }
    }
    return o;
}

/* ======================================================================== */
/* the scanner                                                              */
/* ======================================================================== */

typedef struct jscan {
    const uint8_t *p; /* the payload */
    size_t n;         /* its length */
    size_t i;         /* read position */
    arena *a;
    rec__scan_err e; /* where and why it stopped */
} jscan;

#define jfail(s, code, at, ...) rec__scan_fail(&(s)->e, code, at, __VA_ARGS__)

static int jfail_arena(jscan *s)
{
    return rec__scan_fail_arena(&s->e, s->a, s->i);
}

static inline void skip_ws(jscan *s)
{
    while (s->i < s->n) {
        uint8_t c = s->p[s->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        s->i++;
    }
}

static inline bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

static int hex4(const uint8_t *p)
{
    int v = 0;
    for (int k = 0; k < 4; k++) {
        uint8_t c = p[k];
        int d = is_digit(c)                              ? c - '0'
                : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10
                                                         : -1;
        if (d < 0)
            return -1;
        v = v << 4 | d;
    }
    return v;
}

static size_t utf8_put(char *d, uint32_t cp)
{
    if (cp < 0x80) {
        d[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        d[0] = (char)(0xC0 | cp >> 6);
        d[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        d[0] = (char)(0xE0 | cp >> 12);
        d[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        d[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    d[0] = (char)(0xF0 | cp >> 18);
    d[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    d[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    d[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes the string body p[start..end) (which has a backslash) into the
 * arena. Escapes only shrink text, so end - start bytes are enough. */
static int unescape(jscan *s, size_t start, size_t end, const char **out, size_t *out_len)
{
    static const char simple[128] = {
        ['"'] = '"',  ['\\'] = '\\', ['/'] = '/',  ['b'] = '\b',
        ['f'] = '\f', ['n'] = '\n',  ['r'] = '\r', ['t'] = '\t',
    };
    const uint8_t *p = s->p;
    char *d = arena_alloc_bytes(s->a, end - start + 1);
    if (!d)
        return jfail_arena(s);
    size_t o = 0;
    for (size_t j = start; j < end;) {
        if (p[j] != '\\') {
            d[o++] = (char)p[j++];
            continue;
        }
        uint8_t e = p[j + 1]; /* j + 1 < end: the scan skipped escaped bytes in pairs */
        if (e < 128 && simple[e]) {
            d[o++] = simple[e];
            j += 2;
            continue;
        }
        if (e != 'u')
            return jfail(s, WEIR_EMALFORMED, j, "invalid escape '\\%c'",
                         e >= 0x20 && e < 0x7F ? e : '?');
        int cp = end - j >= 6 ? hex4(p + j + 2) : -1;
        if (cp < 0)
            return jfail(s, WEIR_EMALFORMED, j, "invalid \\u escape");
        size_t at = j;
        j += 6;
        if (cp == 0)
            return jfail(s, WEIR_EMALFORMED, at, "\\u0000 is not allowed in a string");
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            return jfail(s, WEIR_EMALFORMED, at, "unpaired low surrogate \\u%04X", (unsigned)cp);
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            int lo = end - j >= 6 && p[j] == '\\' && p[j + 1] == 'u' ? hex4(p + j + 2) : -1;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return jfail(s, WEIR_EMALFORMED, at, "unpaired high surrogate \\u%04X",
                             (unsigned)cp);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            j += 6;
        }
        o += utf8_put(d + o, (uint32_t)cp);
    }
    d[o] = '\0';
    *out = d;
    *out_len = o;
    return WEIR_OK;
}

/* Reads the string at s->i (its opening quote) into the arena. */
static int scan_string(jscan *s, const char **out, size_t *out_len)
{
    const uint8_t *p = s->p;
    size_t n = s->n, open = s->i, start = open + 1, i = start;
    bool esc = false, high = false;
    while (i < n) {
        uint8_t c = p[i];
        if (c == '"')
            break;
        if (c == '\\') {
            esc = true;
            i += 2;
            continue;
        }
        if (c < 0x20)
            return jfail(s, WEIR_EMALFORMED, i, "control character 0x%02x in a string", c);
        high |= c >= 0x80;
        i++;
    }
    if (i >= n)
        return jfail(s, WEIR_EMALFORMED, open, "unterminated string");
    size_t end = i;
    if (high) {
        size_t bad = rec__utf8_check(p + start, end - start);
        if (bad != end - start)
            return jfail(s, WEIR_EUTF8, start + bad, "invalid UTF-8 in a string");
    }
    if (end - start > UINT32_MAX)
        return jfail(s, WEIR_ETOOBIG, open, "string longer than 4 GiB");
    s->i = end + 1;
    if (esc)
        return unescape(s, start, end, out, out_len);
    char *d = arena_strdup(s->a, (const char *)p + start, end - start);
    if (!d)
        return jfail_arena(s);
    *out = d;
    *out_len = end - start;
    return WEIR_OK;
}

/* Reads the number at s->i with JSON's grammar (no '+', no leading zeros,
 * digits on both sides of '.'). */
static int scan_number(jscan *s, rec_value *v)
{
    const uint8_t *p = s->p;
    size_t n = s->n, start = s->i, i = start;
    if (i < n && p[i] == '-')
        i++;
    if (i < n && p[i] == '0') {
        i++;
        if (i < n && is_digit(p[i]))
            return jfail(s, WEIR_EMALFORMED, start, "leading zeros are not allowed in a number");
    } else if (i < n && is_digit(p[i])) {
        while (i < n && is_digit(p[i]))
            i++;
    } else {
        return jfail(s, WEIR_EMALFORMED, start, "invalid number");
    }
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || !is_digit(p[i]))
            return jfail(s, WEIR_EMALFORMED, start, "invalid number");
        while (i < n && is_digit(p[i]))
            i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-'))
            i++;
        if (i >= n || !is_digit(p[i]))
            return jfail(s, WEIR_EMALFORMED, start, "invalid number");
        while (i < n && is_digit(p[i]))
            i++;
    }
    s->i = i;
    int64_t iv;
    double dv;
    switch (rec__parse_number((const char *)p + start, i - start, &iv, &dv)) {
    case REC__NUM_INT:
        v->type = REC_INT;
        v->u.i = iv;
        return WEIR_OK;
    case REC__NUM_BIGINT:
    case REC__NUM_REAL:
        v->type = REC_DOUBLE;
        v->u.d = dv;
        return WEIR_OK;
    case REC__NUM_OVERFLOW:
        return jfail(s, WEIR_EMALFORMED, start, "number overflows a double");
    default:
        return jfail(s, WEIR_ENOMEM, start, "out of memory");
    }
}

static int scan_literal(jscan *s, rec_value *v)
{
    static const struct {
        const char *text;
        size_t len;
        rec_type type;
        bool b;
    } lits[] = {
        {"true", 4, REC_BOOL, true},
        {"false", 5, REC_BOOL, false},
        {"null", 4, REC_NULL, false},
    };
    for (size_t k = 0; k < sizeof(lits) / sizeof(lits[0]); k++) {
        if (s->n - s->i >= lits[k].len && memcmp(s->p + s->i, lits[k].text, lits[k].len) == 0) {
            s->i += lits[k].len;
            v->type = lits[k].type;
            v->u.b = lits[k].b;
            return WEIR_OK;
        }
    }
    return jfail(s, WEIR_EMALFORMED, s->i, "invalid literal (expected true, false or null)");
}

/* Finds the end of the object or array at s->i, has jansson validate it and
 * keeps it compacted. */
static int scan_nested(jscan *s, rec_value *v)
{
    const uint8_t *p = s->p;
    size_t n = s->n, start = s->i, i = start;
    unsigned depth = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c == '"') {
            size_t open = i++;
            while (i < n && p[i] != '"')
                i += p[i] == '\\' ? 2 : 1;
            if (i >= n)
                return jfail(s, WEIR_EMALFORMED, open, "unterminated string");
        } else if (c == '{' || c == '[') {
            /* The top-level object is one level, as in jansson's count. */
            if (++depth >= REC__JSON_MAX_DEPTH)
                return jfail(s, WEIR_EMALFORMED, i, "nesting deeper than %d levels",
                             REC__JSON_MAX_DEPTH);
        } else if (c == '}' || c == ']') {
            if (--depth == 0) {
                i++;
                break;
            }
        }
        i++;
    }
    if (depth != 0)
        return jfail(s, WEIR_EMALFORMED, start, "unterminated %s",
                     p[start] == '{' ? "object" : "array");
    char jwhy[100];
    size_t at = 0;
    /* jansson's position is just past the offending token; step back onto
     * its last byte. */
    if (rec__json_check((const char *)p + start, i - start, jwhy, sizeof(jwhy), &at))
        return jfail(s, WEIR_EMALFORMED, start + (at ? at - 1 : 0), "%s", jwhy);
    char *d = arena_alloc_bytes(s->a, i - start + 1);
    if (!d)
        return jfail_arena(s);
    size_t len = rec__json_compact((const char *)p + start, i - start, d);
    d[len] = '\0';
    if (len > UINT32_MAX)
        return jfail(s, WEIR_ETOOBIG, start, "nested value longer than 4 GiB");
    v->type = REC_JSON;
    v->u.s.p = d;
    v->u.s.len = (uint32_t)len;
    s->i = i;
    return WEIR_OK;
}

/* Reads one value; *raw and *raw_len get its text for the schema step. */
static int scan_value(jscan *s, rec_value *v, const char **raw, size_t *raw_len)
{
    if (s->i >= s->n)
        return jfail(s, WEIR_EMALFORMED, s->i, "unexpected end of input, expected a value");
    size_t start = s->i;
    int rc;
    switch (s->p[s->i]) {
    case '"': {
        const char *str;
        size_t len;
        rc = scan_string(s, &str, &len);
        if (rc)
            return rc;
        v->type = REC_STRING;
        v->u.s.p = str;
        v->u.s.len = (uint32_t)len;
        *raw = str;
        *raw_len = len;
        return WEIR_OK;
    }
    case '{':
    case '[':
        rc = scan_nested(s, v);
        break;
    case 't':
    case 'f':
    case 'n':
        rc = scan_literal(s, v);
        break;
    default:
        if (s->p[s->i] == '-' || is_digit(s->p[s->i]))
            rc = scan_number(s, v);
        else
            rc = jfail(s, WEIR_EMALFORMED, s->i, "expected a value");
        break;
    }
    *raw = (const char *)s->p + start;
    *raw_len = s->i - start;
    return rc;
}

static int scan_object(jscan *s, const rec__sctx *x, record *out)
{
    rec__fields fl;
    rec__fields_init(&fl, s->a);
    skip_ws(s);
    if (s->i >= s->n || s->p[s->i] != '{')
        return jfail(s, WEIR_EMALFORMED, s->i, "expected a JSON object");
    s->i++;
    skip_ws(s);
    if (s->i < s->n && s->p[s->i] == '}') {
        s->i++;
    } else {
        for (;;) {
            skip_ws(s);
            if (s->i >= s->n || s->p[s->i] != '"')
                return jfail(s, WEIR_EMALFORMED, s->i, "expected a string (a field name)");
            size_t key_at = s->i;
            const char *name;
            size_t len;
            int rc = scan_string(s, &name, &len);
            if (rc)
                return rc;
            skip_ws(s);
            if (s->i >= s->n || s->p[s->i] != ':')
                return jfail(s, WEIR_EMALFORMED, s->i, "expected ':' after a field name");
            s->i++;
            skip_ws(s);
            rec_field *f;
            rc = rec__fields_add(&fl, name, len, false, &f);
            if (rc == WEIR_EMALFORMED)
                return jfail(s, rc, key_at, "duplicate field '%.*s'", (int)(len > 60 ? 60 : len),
                             name);
            if (rc == WEIR_ETOOBIG && len > UINT16_MAX)
                return jfail(s, rc, key_at, "field name longer than 65535 bytes");
            if (rc)
                return jfail_arena(s);
            size_t val_at = s->i;
            const char *raw = NULL;
            size_t raw_len = 0;
            rc = scan_value(s, &f->v, &raw, &raw_len);
            if (rc)
                return rc;
            rec__role role;
            rec__role_of(x, name, len, &role);
            if (rec__role_any(&role)) {
                const char *why = "out of memory";
                rc = rec__apply(x, &role, s->a, &f->v, raw, raw_len, out, &why);
                if (rc)
                    return jfail(s, rc, val_at, "field '%.*s': %s", (int)(len > 60 ? 60 : len),
                                 name, why);
            }
            skip_ws(s);
            if (s->i < s->n && s->p[s->i] == ',') {
                s->i++;
                continue;
            }
            if (s->i < s->n && s->p[s->i] == '}') {
                s->i++;
                break;
            }
            return jfail(s, WEIR_EMALFORMED, s->i, "expected ',' or '}'");
        }
    }
    skip_ws(s);
    if (s->i != s->n)
        return jfail(s, WEIR_EMALFORMED, s->i, "unexpected bytes after the object");
    out->fields = fl.v;
    out->n_fields = fl.n;
    return WEIR_OK;
}

int rec_decode_json(const uint8_t *p, size_t n, const rec_schema *sc, arena *a, record *out,
                    rec_error *err)
{
    memset(out, 0, sizeof(*out));
    jscan s = {.p = p, .n = n, .a = a};
    rec__sctx x;
    rec__sctx_init(&x, sc);
    int rc = scan_object(&s, &x, out);
    if (rc) {
        memset(out, 0, sizeof(*out));
        uint32_t line, col;
        rec__position(p, n, s.e.at, &line, &col);
        rec__fail(err, rc, line, col, "%s", s.e.msg);
    }
    return rc;
}

/* ======================================================================== */
/* the jansson reference                                                    */
/* ======================================================================== */

static int jansson_value(json_t *j, arena *a, rec_value *v)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        size_t size = json_dumpb(j, NULL, 0, JSON_COMPACT);
        char *d = arena_alloc_bytes(a, size + 1);
        if (!d)
            return rec__arena_err(a);
        if (json_dumpb(j, d, size, JSON_COMPACT) != size || size > UINT32_MAX)
            return WEIR_ENOMEM;
        d[size] = '\0';
        v->type = REC_JSON;
        v->u.s.p = d;
        v->u.s.len = (uint32_t)size;
        return WEIR_OK;
    }
    case JSON_STRING: {
        size_t len = json_string_length(j);
        char *d = arena_strdup(a, json_string_value(j), len);
        if (!d)
            return rec__arena_err(a);
        v->type = REC_STRING;
        v->u.s.p = d;
        v->u.s.len = (uint32_t)len;
        return WEIR_OK;
    }
    case JSON_INTEGER:
        v->type = REC_INT;
        v->u.i = json_integer_value(j);
        return WEIR_OK;
    case JSON_REAL:
        v->type = REC_DOUBLE;
        v->u.d = json_real_value(j);
        return WEIR_OK;
    case JSON_TRUE:
    case JSON_FALSE:
        v->type = REC_BOOL;
        v->u.b = json_is_true(j);
        return WEIR_OK;
    case JSON_NULL:
        v->type = REC_NULL;
        return WEIR_OK;
    }
    return WEIR_EINTERNAL;
}

int rec_decode_json_jansson(const uint8_t *p, size_t n, const rec_schema *sc, arena *a, record *out,
                            rec_error *err)
{
    memset(out, 0, sizeof(*out));
    json_error_t je;
    json_t *root = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &je);
    if (!root && json_error_code(&je) == json_error_numeric_overflow)
        root =
            json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL, &je);
    if (!root)
        return rec__fail(err, WEIR_EMALFORMED, je.line > 0 ? (uint32_t)je.line : 1,
                         je.column > 0 ? (uint32_t)je.column : 0, "%s", je.text);
    int rc = WEIR_OK;
    if (!json_is_object(root)) {
        rc = rec__fail(err, WEIR_EMALFORMED, 1, 1, "expected a JSON object");
        goto done;
    }
    rec__sctx x;
    rec__sctx_init(&x, sc);
    rec__fields fl;
    rec__fields_init(&fl, a);
    for (void *it = json_object_iter(root); it; it = json_object_iter_next(root, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        rec_field *f;
        rc = rec__fields_add(&fl, key, klen, true, &f);
        if (rc == WEIR_OK)
            rc = jansson_value(json_object_iter_value(it), a, &f->v);
        if (rc) {
            rec__fail(err, rc, 1, 0, "field '%.*s': %s", (int)(klen > 60 ? 60 : klen), key,
                      weir_strerror(rc));
            goto done;
        }
        rec__role role;
        rec__role_of(&x, key, klen, &role);
        const char *why = "out of memory";
        if (rec__role_any(&role) &&
            (rc = rec__apply(&x, &role, a, &f->v, NULL, 0, out, &why)) != WEIR_OK) {
            rec__fail(err, rc, 1, 0, "field '%.*s': %s", (int)(klen > 60 ? 60 : klen), key, why);
            goto done;
        }
    }
    out->fields = fl.v;
    out->n_fields = fl.n;
done:
    json_decref(root);
    if (rc)
        memset(out, 0, sizeof(*out));
    return rc;
}
