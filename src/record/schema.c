/* schema.c -- schema checking and application: typed-field conversions (the
 * table in schema.h), event time and key extraction. Every decoder calls
 * rec__apply for the fields the schema names, so the rules are the same for
 * JSON, CSV and line protocol. */
#include "base/err.h"
#include "record/record_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ======================================================================== */
/* conversions                                                              */
/* ======================================================================== */

typedef int (*conv_fn)(rec_value *v, const char *raw, size_t raw_len, arena *a, const char **why);

static int conv_bool_to_int(rec_value *v, const char *raw, size_t raw_len, arena *a,
                            const char **why)
{
    int64_t i = v->u.b;
    v->type = REC_INT;
    v->u.i = i;
    return WEIR_OK;
}

static int conv_bool_to_double(rec_value *v, const char *raw, size_t raw_len, arena *a,
                               const char **why)
{
    double d = v->u.b;
    v->type = REC_DOUBLE;
    v->u.d = d;
    return WEIR_OK;
}

static int conv_int_to_bool(rec_value *v, const char *raw, size_t raw_len, arena *a,
                            const char **why)
{
    if (v->u.i != 0 && v->u.i != 1) {
        *why = "only 0 and 1 convert to bool";
        return WEIR_EMALFORMED;
    }
    bool b = v->u.i;
    v->type = REC_BOOL;
    v->u.b = b;
    return WEIR_OK;
}

static int conv_int_to_double(rec_value *v, const char *raw, size_t raw_len, arena *a,
                              const char **why)
{
    double d = (double)v->u.i;
    v->type = REC_DOUBLE;
    v->u.d = d;
    return WEIR_OK;
}

/* An integral double within int64 as an INT. */
static bool integral(double d, int64_t *out)
{
    /* -2^63 is exact in a double; 2^63 is the first value out of range. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != trunc(d))
        return false;
    *out = (int64_t)d;
    return true;
}

static int conv_double_to_int(rec_value *v, const char *raw, size_t raw_len, arena *a,
                              const char **why)
{
    int64_t i;
    if (!integral(v->u.d, &i)) {
        *why = "not an integer";
        return WEIR_EMALFORMED;
    }
    v->type = REC_INT;
    v->u.i = i;
    return WEIR_OK;
}

/* Any scalar to its text as written (raw), or as printed when raw is not
 * known. */
static int conv_to_string(rec_value *v, const char *raw, size_t raw_len, arena *a, const char **why)
{
    char num[40];
    if (!raw) {
        switch (v->type) {
        case REC_BOOL:
            raw = v->u.b ? "true" : "false";
            raw_len = strlen(raw);
            break;
        case REC_INT:
            raw_len = (size_t)snprintf(num, sizeof(num), "%lld", (long long)v->u.i);
            raw = num;
            break;
        default:
            raw_len = rec_format_double(v->u.d, num);
            raw = num;
            break;
        }
    }
    char *s = arena_strdup(a, raw, raw_len);
    if (!s)
        return rec__arena_err(a);
    v->type = REC_STRING;
    v->u.s.p = s;
    v->u.s.len = (uint32_t)raw_len;
    return WEIR_OK;
}

static int conv_string_to_bool(rec_value *v, const char *raw, size_t raw_len, arena *a,
                               const char **why)
{
    static const struct {
        const char *text;
        bool value;
    } words[] = {
        {"true", true},   {"t", true},  {"yes", true}, {"on", true},   {"1", true},
        {"false", false}, {"f", false}, {"no", false}, {"off", false}, {"0", false},
    };
    const char *p = v->u.s.p;
    size_t n = v->u.s.len;
    rec__trim(&p, &n);
    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        if (strlen(words[i].text) == n && strncasecmp(p, words[i].text, n) == 0) {
            v->type = REC_BOOL;
            v->u.b = words[i].value;
            return WEIR_OK;
        }
    }
    *why = "not a boolean";
    return WEIR_EMALFORMED;
}

static int conv_string_to_int(rec_value *v, const char *raw, size_t raw_len, arena *a,
                              const char **why)
{
    const char *p = v->u.s.p;
    size_t n = v->u.s.len;
    rec__trim(&p, &n);
    int64_t i;
    double d;
    switch (rec__parse_number(p, n, &i, &d)) {
    case REC__NUM_INT:
        break;
    case REC__NUM_REAL:
        if (integral(d, &i))
            break;
        /* fall through */
    default:
        *why = "not an integer";
        return WEIR_EMALFORMED;
    }
    v->type = REC_INT;
    v->u.i = i;
    return WEIR_OK;
}

static int conv_string_to_double(rec_value *v, const char *raw, size_t raw_len, arena *a,
                                 const char **why)
{
    double d;
    if (!rec_value_as_double(v, &d)) {
        *why = "not a number";
        return WEIR_EMALFORMED;
    }
    v->type = REC_DOUBLE;
    v->u.d = d;
    return WEIR_OK;
}

static int conv_string_to_json(rec_value *v, const char *raw, size_t raw_len, arena *a,
                               const char **why)
{
    char jwhy[8];
    if (rec__json_check(v->u.s.p, v->u.s.len, jwhy, sizeof(jwhy), NULL) != WEIR_OK) {
        *why = "not a JSON object or array";
        return WEIR_EMALFORMED;
    }
    char *dst = arena_alloc_bytes(a, v->u.s.len);
    if (!dst)
        return rec__arena_err(a);
    size_t len = rec__json_compact(v->u.s.p, v->u.s.len, dst);
    v->type = REC_JSON;
    v->u.s.p = dst;
    v->u.s.len = (uint32_t)len;
    return WEIR_OK;
}

/* conv_table[from][to]; NULL = does not convert. Identity and NULL values
 * never reach the table. */
static const conv_fn conv_table[REC_TYPE_COUNT][REC_TYPE_COUNT] = {
    [REC_BOOL] = {[REC_INT] = conv_bool_to_int,
                  [REC_DOUBLE] = conv_bool_to_double,
                  [REC_STRING] = conv_to_string},
    [REC_INT] = {[REC_BOOL] = conv_int_to_bool,
                 [REC_DOUBLE] = conv_int_to_double,
                 [REC_STRING] = conv_to_string},
    [REC_DOUBLE] = {[REC_INT] = conv_double_to_int, [REC_STRING] = conv_to_string},
    [REC_STRING] = {[REC_BOOL] = conv_string_to_bool,
                    [REC_INT] = conv_string_to_int,
                    [REC_DOUBLE] = conv_string_to_double,
                    [REC_JSON] = conv_string_to_json},
};

int rec__convert(rec_value *v, rec_type to, const char *raw, size_t raw_len, arena *a,
                 const char **why)
{
    if (v->type == to || v->type == REC_NULL)
        return WEIR_OK;
    conv_fn fn = (unsigned)v->type < REC_TYPE_COUNT && (unsigned)to < REC_TYPE_COUNT
                     ? conv_table[v->type][to]
                     : NULL;
    if (!fn) {
        *why = "value does not convert to the declared type";
        return WEIR_EMALFORMED;
    }
    return fn(v, raw, raw_len, a, why);
}

/* ======================================================================== */
/* roles                                                                    */
/* ======================================================================== */

void rec__sctx_init(rec__sctx *x, const rec_schema *sc)
{
    x->sc = sc;
    x->ts_len = sc && sc->ts_field ? strlen(sc->ts_field) : SIZE_MAX;
    x->key_len = sc && sc->key_field ? strlen(sc->key_field) : SIZE_MAX;
}

void rec__role_of(const rec__sctx *x, const char *name, size_t len, rec__role *role)
{
    role->decl = -1;
    role->is_ts = role->is_key = false;
    if (!x->sc)
        return;
    role->is_ts = x->ts_len == len && memcmp(x->sc->ts_field, name, len) == 0;
    role->is_key = x->key_len == len && memcmp(x->sc->key_field, name, len) == 0;
    for (uint32_t i = 0; i < x->sc->n_decls; i++) {
        const char *d = x->sc->decls[i].name;
        if (strlen(d) == len && memcmp(d, name, len) == 0) {
            role->decl = (int8_t)x->sc->decls[i].type;
            return;
        }
    }
}

/* The text of a number value: raw as written, else printed into num. */
static void number_text(const rec_value *v, const char **raw, size_t *raw_len, char *num)
{
    if (*raw) {
        rec__trim(raw, raw_len);
        return;
    }
    if (v->type == REC_INT)
        *raw_len = (size_t)snprintf(num, 40, "%lld", (long long)v->u.i);
    else
        *raw_len = rec_format_double(v->u.d, num);
    *raw = num;
}

int rec__apply(const rec__sctx *x, const rec__role *role, arena *a, rec_value *v, const char *raw,
               size_t raw_len, record *out, const char **why)
{
    int rc;
    if (role->decl >= 0) {
        rc = rec__convert(v, (rec_type)role->decl, raw, raw_len, a, why);
        if (rc)
            return rc;
    }
    char num[40];
    if (role->is_ts && v->type != REC_NULL) {
        const char *t = raw;
        size_t tl = raw_len;
        if (v->type == REC_STRING) {
            t = v->u.s.p;
            tl = v->u.s.len;
        } else if (v->type == REC_INT || v->type == REC_DOUBLE) {
            number_text(v, &t, &tl, num);
        } else {
            *why = "event time must be a number or a string";
            return WEIR_EMALFORMED;
        }
        rc = rec__parse_time(t, tl, x->sc->ts_format, &out->ts, why);
        if (rc)
            return rc == WEIR_EINVAL ? WEIR_EMALFORMED : rc;
    }
    if (role->is_key && v->type != REC_NULL) {
        const char *k = raw;
        size_t kl = raw_len;
        if (v->type == REC_STRING) {
            k = v->u.s.p;
            kl = v->u.s.len;
        } else if (v->type == REC_INT || v->type == REC_DOUBLE) {
            number_text(v, &k, &kl, num);
            k = arena_strdup(a, k, kl);
            if (!k)
                return rec__arena_err(a);
        } else {
            *why = "the key must be a string or a number";
            return WEIR_EMALFORMED;
        }
        if (kl > UINT16_MAX) {
            *why = "the key is longer than 65535 bytes";
            return WEIR_ETOOBIG;
        }
        out->key = k;
        out->key_len = (uint16_t)kl;
    }
    return WEIR_OK;
}

/* ======================================================================== */
/* rec_schema_check                                                         */
/* ======================================================================== */

static bool unique_names(const char *const *names, size_t n, bool allow_empty)
{
    for (size_t i = 0; i < n; i++) {
        if (!names[i] || (!allow_empty && !names[i][0]))
            return false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(names[i], names[j]) == 0)
                return false;
    }
    return true;
}

int rec_schema_check(const rec_schema *sc, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (!sc || (unsigned)sc->format > REC_FMT_LINE) {
        *why = "unknown payload format";
        return WEIR_EINVAL;
    }
    if (rec__time_format_check(sc->ts_format)) {
        *why = "bad ts_format: unknown % conversion";
        return WEIR_EINVAL;
    }
    if (sc->n_decls && !sc->decls) {
        *why = "n_decls without decls";
        return WEIR_EINVAL;
    }
    for (uint32_t i = 0; i < sc->n_decls; i++) {
        const rec_decl *d = &sc->decls[i];
        if (!d->name || !d->name[0] || strlen(d->name) > UINT16_MAX) {
            *why = "a declared field needs a name of 1 to 65535 bytes";
            return WEIR_EINVAL;
        }
        if (d->type <= REC_NULL || d->type > REC_JSON) {
            *why = "a declared field needs a type other than null";
            return WEIR_EINVAL;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (strcmp(sc->decls[j].name, d->name) == 0) {
                *why = "a field is declared twice";
                return WEIR_EINVAL;
            }
        }
    }
    if (sc->format == REC_FMT_CSV) {
        char d = sc->csv_delim ? sc->csv_delim : ',';
        if (d == '"' || d == '\r' || d == '\n') {
            *why = "the CSV delimiter cannot be a quote or a line break";
            return WEIR_EINVAL;
        }
        if (sc->n_csv_columns &&
            (!sc->csv_columns || !unique_names(sc->csv_columns, sc->n_csv_columns, false))) {
            *why = "csv_columns must be non-empty, distinct names";
            return WEIR_EINVAL;
        }
        for (uint32_t i = 0; i < sc->n_csv_columns; i++) {
            if (strlen(sc->csv_columns[i]) > UINT16_MAX) {
                *why = "a column name is longer than 65535 bytes";
                return WEIR_EINVAL;
            }
        }
    }
    return WEIR_OK;
}
