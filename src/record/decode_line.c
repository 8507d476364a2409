/* decode_line.c -- InfluxDB line protocol to records (contract in decode.h).
 *
 *   measurement[,tag=value...] field=value[,field=value...] [timestamp]
 *
 * The line is read left to right once. Tokens are cut by `read_token`, whose
 * stop and escape sets differ per element as the specification says; a
 * token without a backslash is copied as is, one with a backslash is
 * unescaped while copying. Field values are classified by a table of
 * boolean words and by their suffix (i, u, none).
 */
#include "base/err.h"
#include "record/record_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct lscan {
    const char *p; /* the line, without its terminator */
    size_t n;
    size_t i; /* read position */
    arena *a;
    rec__scan_err e; /* where and why it stopped */
} lscan;

#define lfail(s, code, at, ...) rec__scan_fail(&(s)->e, code, at, __VA_ARGS__)

static int lfail_arena(lscan *s)
{
    return rec__scan_fail_arena(&s->e, s->a, s->i);
}

/* The elements of a line and what ends and what escapes each (spec:
 * "Special characters"). A backslash escapes itself everywhere. */
typedef struct tok_kind {
    const char *what;   /* for messages */
    const bool *stops;  /* [256]: unescaped bytes that end the token */
    const bool *escape; /* [256]: bytes a backslash escapes */
    bool is_name;       /* becomes a field name (at most 65535 bytes) */
} tok_kind;

static const bool STOP_MEASUREMENT[256] = {[','] = true, [' '] = true};
static const bool ESC_MEASUREMENT[256] = {[','] = true, [' '] = true, ['\\'] = true};
static const bool STOP_KEY[256] = {[','] = true, ['='] = true, [' '] = true};
static const bool ESC_KEY[256] = {[','] = true, ['='] = true, [' '] = true, ['\\'] = true};

static const tok_kind TOK_MEASUREMENT = {"measurement", STOP_MEASUREMENT, ESC_MEASUREMENT, false};
static const tok_kind TOK_TAG_KEY = {"tag key", STOP_KEY, ESC_KEY, true};
static const tok_kind TOK_TAG_VALUE = {"tag value", STOP_KEY, ESC_KEY, false};
static const tok_kind TOK_FIELD_KEY = {"field key", STOP_KEY, ESC_KEY, true};

static inline bool in_set(const bool *set, char c)
{
    return set[(uint8_t)c];
}

/* Cuts a token at s->i up to an unescaped stop byte or the end, into the
 * arena (unescaped). Empty tokens are an error. */
static int read_token(lscan *s, const tok_kind *k, const char **out, size_t *len)
{
    size_t start = s->i, i = start;
    bool esc = false;
    while (i < s->n) {
        char c = s->p[i];
        if (c == '\\' && i + 1 < s->n && in_set(k->escape, s->p[i + 1])) {
            esc = true;
            i += 2;
            continue;
        }
        if (in_set(k->stops, c))
            break;
        i++;
    }
    if (i == start)
        return lfail(s, WEIR_EMALFORMED, start, "empty %s", k->what);
    s->i = i;
    char *d = arena_alloc_bytes(s->a, i - start + 1);
    if (!d)
        return lfail_arena(s);
    size_t o = 0;
    for (size_t j = start; j < i; j++) {
        if (esc && s->p[j] == '\\' && j + 1 < i && in_set(k->escape, s->p[j + 1]))
            j++;
        d[o++] = s->p[j];
    }
    d[o] = '\0';
    if (o > UINT16_MAX && k->is_name)
        return lfail(s, WEIR_ETOOBIG, start, "%s longer than 65535 bytes", k->what);
    *out = d;
    *len = o;
    return WEIR_OK;
}

/* A double-quoted string value at s->i: \" and \\ are escapes, any other
 * backslash is kept. */
static int read_string(lscan *s, rec_value *v)
{
    size_t open = s->i, i = open + 1;
    bool esc = false;
    while (i < s->n && s->p[i] != '"') {
        if (s->p[i] == '\\' && i + 1 < s->n && (s->p[i + 1] == '"' || s->p[i + 1] == '\\')) {
            esc = true;
            i++;
        }
        i++;
    }
    if (i >= s->n)
        return lfail(s, WEIR_EMALFORMED, open, "unterminated string value");
    size_t start = open + 1, end = i;
    char *d = arena_alloc_bytes(s->a, end - start + 1);
    if (!d)
        return lfail_arena(s);
    size_t o = 0;
    for (size_t j = start; j < end; j++) {
        if (esc && s->p[j] == '\\' && (s->p[j + 1] == '"' || s->p[j + 1] == '\\'))
            j++;
        d[o++] = s->p[j];
    }
    d[o] = '\0';
    v->type = REC_STRING;
    v->u.s.p = d;
    v->u.s.len = (uint32_t)o;
    s->i = end + 1;
    return WEIR_OK;
}

static const struct {
    const char *word;
    bool value;
} bool_words[] = {
    {"t", true},  {"T", true},  {"true", true},   {"True", true},   {"TRUE", true},
    {"f", false}, {"F", false}, {"false", false}, {"False", false}, {"FALSE", false},
};

/* Reads the digits of an i/u value (sign allowed for i) exactly. */
static bool read_int(const char *p, size_t n, bool allow_sign, uint64_t *mag, bool *neg)
{
    size_t i = 0;
    *neg = false;
    if (allow_sign && i < n && (p[i] == '-' || p[i] == '+'))
        *neg = p[i++] == '-';
    if (i == n)
        return false;
    uint64_t acc = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        unsigned d = (unsigned)(p[i] - '0');
        if (acc > (UINT64_MAX - d) / 10)
            return false;
        acc = acc * 10 + d;
    }
    *mag = acc;
    return true;
}

/* A field value at s->i; *raw is its text without type suffix. */
static int read_value(lscan *s, rec_value *v, const char **raw, size_t *raw_len)
{
    size_t start = s->i;
    if (start < s->n && s->p[start] == '"') {
        int rc = read_string(s, v);
        *raw = v->u.s.p;
        *raw_len = v->u.s.len;
        return rc;
    }
    size_t i = start;
    while (i < s->n && s->p[i] != ',' && s->p[i] != ' ')
        i++;
    const char *t = s->p + start;
    size_t tn = i - start;
    s->i = i;
    *raw = t;
    *raw_len = tn;
    if (tn == 0)
        return lfail(s, WEIR_EMALFORMED, start, "missing field value");
    for (size_t k = 0; k < sizeof(bool_words) / sizeof(bool_words[0]); k++) {
        if (strlen(bool_words[k].word) == tn && memcmp(bool_words[k].word, t, tn) == 0) {
            v->type = REC_BOOL;
            v->u.b = bool_words[k].value;
            return WEIR_OK;
        }
    }
    char suffix = t[tn - 1];
    bool numeric = (t[0] >= '0' && t[0] <= '9') || t[0] == '-' || t[0] == '+' || tn == 1;
    if (numeric && (suffix == 'i' || suffix == 'u')) {
        uint64_t mag;
        bool neg;
        *raw_len = tn - 1;
        if (!read_int(t, tn - 1, suffix == 'i', &mag, &neg))
            return lfail(s, WEIR_EMALFORMED, start, "invalid %s value '%.*s'",
                         suffix == 'i' ? "integer" : "unsigned integer", (int)(tn > 40 ? 40 : tn),
                         t);
        if (mag > (uint64_t)INT64_MAX + (neg ? 1 : 0))
            return lfail(s, WEIR_EMALFORMED, start, "%s value out of range",
                         suffix == 'i' ? "integer" : "unsigned integer (above int64)");
        v->type = REC_INT;
        v->u.i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : neg ? -(int64_t)mag : (int64_t)mag;
        return WEIR_OK;
    }
    int64_t iv;
    double dv;
    switch (rec__parse_number(t, tn, &iv, &dv)) {
    case REC__NUM_INT:
        dv = (double)iv; /* no suffix: a float, whatever it looks like */
        /* fall through */
    case REC__NUM_BIGINT:
    case REC__NUM_REAL:
        v->type = REC_DOUBLE;
        v->u.d = dv;
        return WEIR_OK;
    case REC__NUM_OVERFLOW:
        return lfail(s, WEIR_EMALFORMED, start, "float value out of range");
    default:
        return lfail(s, WEIR_EMALFORMED, start, "invalid field value '%.*s'",
                     (int)(tn > 40 ? 40 : tn), t);
    }
}

static void skip_spaces(lscan *s)
{
    while (s->i < s->n && s->p[s->i] == ' ')
        s->i++;
}

/* Adds a field and applies its schema role. `at` is where its value starts. */
static int add_field(lscan *s, const rec__sctx *x, rec__fields *fl, const char *name, size_t len,
                     size_t name_at, rec_value *v, const char *raw, size_t raw_len, size_t at,
                     record *out, bool *ts_set)
{
    rec_field *f;
    int rc = rec__fields_add(fl, name, len, false, &f);
    if (rc == WEIR_EMALFORMED)
        return lfail(s, rc, name_at, "duplicate name '%.*s'", (int)(len > 60 ? 60 : len), name);
    if (rc)
        return lfail_arena(s);
    f->v = *v;
    rec__role role;
    rec__role_of(x, name, len, &role);
    if (!rec__role_any(&role))
        return WEIR_OK;
    const char *why = "out of memory";
    rc = rec__apply(x, &role, s->a, &f->v, raw, raw_len, out, &why);
    if (rc)
        return lfail(s, rc, at, "field '%.*s': %s", (int)(len > 60 ? 60 : len), name, why);
    if (role.is_ts && f->v.type != REC_NULL)
        *ts_set = true;
    return WEIR_OK;
}

static int scan_line(lscan *s, const rec__sctx *x, int64_t default_ts, record *out)
{
    rec__fields fl;
    rec__fields_init(&fl, s->a);
    bool ts_set = false;
    size_t bad = rec__utf8_check((const uint8_t *)s->p, s->n);
    if (bad != s->n)
        return lfail(s, WEIR_EUTF8, bad, "invalid UTF-8 or NUL byte");
    if (s->n == 0 || s->p[0] == '#')
        return lfail(s, WEIR_EMALFORMED, 0, "blank line or comment, not a record");

    const char *name, *val;
    size_t len, vlen;
    rec_value v;
    int rc = read_token(s, &TOK_MEASUREMENT, &val, &vlen);
    if (rc)
        return rc;
    v.type = REC_STRING;
    v.u.s.p = val;
    v.u.s.len = (uint32_t)vlen;
    rc = add_field(s, x, &fl, "_measurement", 12, 0, &v, val, vlen, 0, out, &ts_set);
    if (rc)
        return rc;

    while (s->i < s->n && s->p[s->i] == ',') {
        s->i++;
        size_t key_at = s->i;
        if ((rc = read_token(s, &TOK_TAG_KEY, &name, &len)))
            return rc;
        if (s->i >= s->n || s->p[s->i] != '=')
            return lfail(s, WEIR_EMALFORMED, s->i, "expected '=' after tag key");
        size_t val_at = ++s->i;
        if ((rc = read_token(s, &TOK_TAG_VALUE, &val, &vlen)))
            return rc;
        if (s->i < s->n && s->p[s->i] == '=')
            return lfail(s, WEIR_EMALFORMED, s->i, "unescaped '=' in a tag value");
        if (vlen > UINT32_MAX)
            return lfail(s, WEIR_ETOOBIG, val_at, "tag value too long");
        v.type = REC_STRING;
        v.u.s.p = val;
        v.u.s.len = (uint32_t)vlen;
        rc = add_field(s, x, &fl, name, len, key_at, &v, val, vlen, val_at, out, &ts_set);
        if (rc)
            return rc;
    }

    if (s->i >= s->n)
        return lfail(s, WEIR_EMALFORMED, s->i, "missing fields (measurement[,tags] fields)");
    if (s->p[s->i] != ' ')
        return lfail(s, WEIR_EMALFORMED, s->i, "expected ',' or ' ' after the measurement");
    skip_spaces(s);
    if (s->i >= s->n)
        return lfail(s, WEIR_EMALFORMED, s->i, "missing fields");

    for (;;) {
        size_t key_at = s->i;
        if ((rc = read_token(s, &TOK_FIELD_KEY, &name, &len)))
            return rc;
        if (s->i >= s->n || s->p[s->i] != '=')
            return lfail(s, WEIR_EMALFORMED, s->i, "expected '=' after field key");
        size_t val_at = ++s->i;
        const char *raw = NULL;
        size_t raw_len = 0;
        if ((rc = read_value(s, &v, &raw, &raw_len)))
            return rc;
        rc = add_field(s, x, &fl, name, len, key_at, &v, raw, raw_len, val_at, out, &ts_set);
        if (rc)
            return rc;
        if (s->i < s->n && s->p[s->i] == ',') {
            s->i++;
            continue;
        }
        if (s->i < s->n && s->p[s->i] != ' ')
            return lfail(s, WEIR_EMALFORMED, s->i, "expected ',' or ' ' after a field value");
        break;
    }

    skip_spaces(s);
    int64_t ts = default_ts;
    if (s->i < s->n) {
        size_t ts_at = s->i, e = s->i;
        while (e < s->n && s->p[e] != ' ')
            e++;
        uint64_t mag;
        bool neg;
        if (!read_int(s->p + ts_at, e - ts_at, true, &mag, &neg) || s->p[ts_at] == '+')
            return lfail(s, WEIR_EMALFORMED, ts_at, "invalid timestamp (an integer expected)");
        int64_t unit = rec__time_unit(x->sc ? x->sc->ts_format : NULL);
        if (!unit)
            unit = 1;
        if (mag > (uint64_t)INT64_MAX || __builtin_mul_overflow((int64_t)mag, unit, &ts))
            return lfail(s, WEIR_EMALFORMED, ts_at, "timestamp out of range");
        if (neg)
            ts = -ts;
        s->i = e;
        skip_spaces(s);
        if (s->i < s->n)
            return lfail(s, WEIR_EMALFORMED, s->i, "unexpected text after the timestamp");
    }
    if (!ts_set)
        out->ts = ts;
    out->fields = fl.v;
    out->n_fields = fl.n;
    return WEIR_OK;
}

int rec_decode_line(const uint8_t *p, size_t n, const rec_schema *sc, int64_t default_ts, arena *a,
                    record *out, rec_error *err)
{
    memset(out, 0, sizeof(*out));
    if (n && p[n - 1] == '\n')
        n--;
    if (n && p[n - 1] == '\r')
        n--;
    lscan s = {.p = (const char *)p, .n = n, .a = a};
    rec__sctx x;
    rec__sctx_init(&x, sc);
    int rc = scan_line(&s, &x, default_ts, out);
    if (rc) {
        memset(out, 0, sizeof(*out));
        rec__fail(err, rc, 1, (uint32_t)s.e.at + 1, "%s", s.e.msg);
    }
    return rc;
}
