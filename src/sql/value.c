/* value.c -- SQL semantics over rec_value; the rules are in value.h. */
#include "sql/value.h"

#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int sql_fail(sql_eval_error *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ======================================================================== */
/* arithmetic                                                               */
/* ======================================================================== */

/* One binary operator: how it combines two INTs (false on overflow, which
 * promotes to DOUBLE) and two doubles. A NULL result (division by zero) is
 * signalled by the int op returning true with *null set. */
typedef struct arith_op {
    const char *name;
    bool (*ints)(int64_t a, int64_t b, int64_t *r, bool *null);
    double (*dbls)(double a, double b, bool *null);
} arith_op;

static bool i_add(int64_t a, int64_t b, int64_t *r, bool *null)
{
    return !__builtin_add_overflow(a, b, r);
}
static bool i_sub(int64_t a, int64_t b, int64_t *r, bool *null)
{
    return !__builtin_sub_overflow(a, b, r);
}
static bool i_mul(int64_t a, int64_t b, int64_t *r, bool *null)
{
    return !__builtin_mul_overflow(a, b, r);
}
static bool i_div(int64_t a, int64_t b, int64_t *r, bool *null)
{
    if (b == 0) {
        *null = true;
        return true;
    }
    if (a == INT64_MIN && b == -1)
        return false;
    *r = a / b;
    return true;
}
static bool i_mod(int64_t a, int64_t b, int64_t *r, bool *null)
{
    if (b == 0) {
        *null = true;
        return true;
    }
    *r = (b == -1) ? 0 : a % b;
    return true;
}
static double d_add(double a, double b, bool *null)
{
    return a + b;
}
static double d_sub(double a, double b, bool *null)
{
    return a - b;
}
static double d_mul(double a, double b, bool *null)
{
    return a * b;
}
static double d_div(double a, double b, bool *null)
{
    if (b == 0.0)
        *null = true;
    return b == 0.0 ? 0.0 : a / b;
}
static double d_mod(double a, double b, bool *null)
{
    if (b == 0.0)
        *null = true;
    return b == 0.0 ? 0.0 : fmod(a, b);
}

static const arith_op OP_ADD = {"+", i_add, d_add};
static const arith_op OP_SUB = {"-", i_sub, d_sub};
static const arith_op OP_MUL = {"*", i_mul, d_mul};
static const arith_op OP_DIV = {"/", i_div, d_div};
static const arith_op OP_MOD = {"%", i_mod, d_mod};

static int arith(const arith_op *op, const rec_value *a, const rec_value *b, rec_value *out,
                 sql_eval_error *err)
{
    if (a->type == REC_NULL || b->type == REC_NULL) {
        *out = sql_null();
        return WEIR_OK;
    }
    if (!sql_is_number(a) || !sql_is_number(b))
        return sql_fail(err, WEIR_EINVAL, "operator %s: expected numbers, got %s and %s",
                        op->name, rec_type_name(a->type), rec_type_name(b->type));
    bool null = false;
    if (a->type == REC_INT && b->type == REC_INT) {
        int64_t r;
        if (op->ints(a->u.i, b->u.i, &r, &null)) {
            *out = null ? sql_null() : sql_int(r);
            return WEIR_OK;
        }
        /* Overflow: fall through to the double computation. */
    }
    double r = op->dbls(sql_num(a), sql_num(b), &null);
    *out = null ? sql_null() : sql_double(r);
    return WEIR_OK;
}

int sql_value_add(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err)
{
    return arith(&OP_ADD, a, b, out, err);
}
int sql_value_sub(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err)
{
    return arith(&OP_SUB, a, b, out, err);
}
int sql_value_mul(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err)
{
    return arith(&OP_MUL, a, b, out, err);
}
int sql_value_div(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err)
{
    return arith(&OP_DIV, a, b, out, err);
}
int sql_value_mod(const rec_value *a, const rec_value *b, rec_value *out, sql_eval_error *err)
{
    return arith(&OP_MOD, a, b, out, err);
}

int sql_value_neg(const rec_value *a, rec_value *out, sql_eval_error *err)
{
    rec_value zero = sql_int(0);
    return arith(&OP_SUB, &zero, a, out, err);
}

int sql_value_concat(const rec_value *a, const rec_value *b, rec_value *out, arena *ar,
                     sql_eval_error *err)
{
    if (a->type == REC_NULL || b->type == REC_NULL) {
        *out = sql_null();
        return WEIR_OK;
    }
    rec_value ta, tb;
    int rc = sql_cast(a, REC_STRING, &ta, ar, err);
    if (rc == WEIR_OK)
        rc = sql_cast(b, REC_STRING, &tb, ar, err);
    if (rc != WEIR_OK)
        return rc;
    size_t n = (size_t)ta.u.s.len + tb.u.s.len;
    if (n > UINT32_MAX)
        return sql_fail(err, WEIR_ETOOBIG, "operator ||: result too long");
    char *p = arena_alloc_bytes(ar, n ? n : 1);
    if (!p)
        return sql_fail(err, arena_last_error(ar), "operator ||: out of memory");
    memcpy(p, ta.u.s.p, ta.u.s.len);
    memcpy(p + ta.u.s.len, tb.u.s.p, tb.u.s.len);
    *out = sql_text(p, (uint32_t)n);
    return WEIR_OK;
}

/* ======================================================================== */
/* comparison                                                               */
/* ======================================================================== */

/* Exact comparison of an INT with a double: doubles at or beyond 2^63 are
 * outside every INT, and inside that range the double's integer part
 * compares exactly as an int64. */
static int cmp_int_double(int64_t i, double d)
{
    if (isnan(d))
        return -1; /* NaN sorts above every number */
    if (d >= 9223372036854775808.0)
        return -1;
    if (d < -9223372036854775808.0)
        return 1;
    double t = trunc(d);
    int64_t di = (int64_t)t;
    if (i != di)
        return i < di ? -1 : 1;
    /* Same integer part: the fraction decides. */
    double frac = d - t;
    return frac > 0 ? -1 : frac < 0 ? 1 : 0;
}

static int cmp_double(double a, double b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) - isnan(b);
    return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_bytes(const rec_value *a, const rec_value *b)
{
    uint32_t n = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
    int c = n ? memcmp(a->u.s.p, b->u.s.p, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a->u.s.len < b->u.s.len ? -1 : a->u.s.len > b->u.s.len ? 1 : 0;
}

int sql_value_compare(const rec_value *a, const rec_value *b, int *cmp, bool *unknown,
                      sql_eval_error *err)
{
    *cmp = 0;
    *unknown = false;
    if (a->type == REC_NULL || b->type == REC_NULL) {
        *unknown = true;
        return WEIR_OK;
    }
    if (a->type == REC_INT && b->type == REC_INT)
        *cmp = a->u.i < b->u.i ? -1 : a->u.i > b->u.i ? 1 : 0;
    else if (a->type == REC_INT && b->type == REC_DOUBLE)
        *cmp = cmp_int_double(a->u.i, b->u.d);
    else if (a->type == REC_DOUBLE && b->type == REC_INT)
        *cmp = -cmp_int_double(b->u.i, a->u.d);
    else if (a->type == REC_DOUBLE && b->type == REC_DOUBLE)
        *cmp = cmp_double(a->u.d, b->u.d);
    else if (a->type == REC_BOOL && b->type == REC_BOOL)
        *cmp = (int)a->u.b - (int)b->u.b;
    else if ((a->type == REC_STRING && b->type == REC_STRING) ||
             (a->type == REC_JSON && b->type == REC_JSON))
        *cmp = cmp_bytes(a, b);
    else
        return sql_fail(err, WEIR_EINVAL, "cannot compare %s with %s", rec_type_name(a->type),
                        rec_type_name(b->type));
    return WEIR_OK;
}

sql_tri sql_value_truthy(const rec_value *v)
{
    switch (v->type) {
    case REC_BOOL:
        return v->u.b ? SQL_TRUE : SQL_FALSE;
    case REC_INT:
        return v->u.i != 0 ? SQL_TRUE : SQL_FALSE;
    case REC_DOUBLE:
        return (v->u.d != 0.0 && !isnan(v->u.d)) ? SQL_TRUE : SQL_FALSE;
    default:
        return SQL_UNKNOWN;
    }
}

/* ======================================================================== */
/* CAST                                                                     */
/* ======================================================================== */

static void trim_spaces(const char **p, size_t *n)
{
    while (*n && isspace((unsigned char)**p)) {
        (*p)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*p)[*n - 1]))
        (*n)--;
}

/* A NUL-terminated copy of short text on the stack for strto*; false when
 * the text is too long to be a number anyway. */
static bool small_cstr(const char *p, size_t n, char *buf, size_t cap)
{
    if (n >= cap)
        return false;
    memcpy(buf, p, n);
    buf[n] = '\0';
    return true;
}

static int double_to_int(double d, int64_t *out)
{
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
        return WEIR_EINVAL; /* NaN fails the comparison too */
    *out = (int64_t)d;      /* C conversion truncates toward zero */
    return WEIR_OK;
}

static int text_to_double(const char *p, size_t n, double *out)
{
    char buf[128];
    trim_spaces(&p, &n);
    if (n == 0 || !small_cstr(p, n, buf, sizeof buf))
        return WEIR_EINVAL;
    char *end;
    errno = 0;
    double d = strtod(buf, &end);
    if (*end != '\0')
        return WEIR_EINVAL;
    *out = d; /* ERANGE keeps strtod's HUGE_VAL or 0: the nearest double */
    return WEIR_OK;
}

static int text_to_int(const char *p, size_t n, int64_t *out)
{
    char buf[128];
    trim_spaces(&p, &n);
    if (n == 0 || !small_cstr(p, n, buf, sizeof buf))
        return WEIR_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (*end == '\0' && end != buf && !isspace((unsigned char)buf[0])) {
        if (errno == ERANGE)
            return WEIR_EINVAL;
        *out = v;
        return WEIR_OK;
    }
    double d;
    if (text_to_double(buf, n, &d) != WEIR_OK)
        return WEIR_EINVAL;
    return double_to_int(d, out);
}

static const struct {
    const char *word;
    bool value;
} bool_words[] = {
    {"true", true}, {"t", true},  {"yes", true},   {"y", true},    {"on", true},  {"1", true},
    {"false", false}, {"f", false}, {"no", false}, {"n", false}, {"off", false}, {"0", false},
};

static int text_to_bool(const char *p, size_t n, bool *out)
{
    trim_spaces(&p, &n);
    for (size_t i = 0; i < sizeof bool_words / sizeof bool_words[0]; i++) {
        if (strlen(bool_words[i].word) == n && strncasecmp(bool_words[i].word, p, n) == 0) {
            *out = bool_words[i].value;
            return WEIR_OK;
        }
    }
    return WEIR_EINVAL;
}

static int text_dup(const char *s, size_t n, rec_value *out, arena *ar, sql_eval_error *err)
{
    char *p = arena_memdup(ar, s, n ? n : 1);
    if (!p)
        return sql_fail(err, arena_last_error(ar), "CAST: out of memory");
    *out = sql_text(p, (uint32_t)n);
    return WEIR_OK;
}

static int cast_to_text(const rec_value *v, rec_value *out, arena *ar, sql_eval_error *err)
{
    char buf[40];
    size_t n;
    switch (v->type) {
    case REC_BOOL:
        *out = v->u.b ? sql_text("true", 4) : sql_text("false", 5);
        return WEIR_OK;
    case REC_INT:
        n = (size_t)snprintf(buf, sizeof buf, "%" PRId64, v->u.i);
        return text_dup(buf, n, out, ar, err);
    case REC_DOUBLE:
        if (isnan(v->u.d)) {
            *out = sql_text("NaN", 3);
            return WEIR_OK;
        }
        if (isinf(v->u.d)) {
            *out = v->u.d > 0 ? sql_text("Infinity", 8) : sql_text("-Infinity", 9);
            return WEIR_OK;
        }
        n = rec_format_double(v->u.d, buf);
        return text_dup(buf, n, out, ar, err);
    case REC_STRING:
    case REC_JSON:
        *out = sql_text(v->u.s.p, v->u.s.len);
        return WEIR_OK;
    default:
        return sql_fail(err, WEIR_EINVAL, "CAST: cannot cast %s to string",
                        rec_type_name(v->type));
    }
}

static int cast_fail(const rec_value *v, rec_type target, sql_eval_error *err)
{
    if (v->type == REC_STRING)
        return sql_fail(err, WEIR_EINVAL, "CAST: '%.*s' is not a valid %s",
                        (int)(v->u.s.len > 40 ? 40 : v->u.s.len), v->u.s.p, rec_type_name(target));
    return sql_fail(err, WEIR_EINVAL, "CAST: cannot cast %s to %s", rec_type_name(v->type),
                    rec_type_name(target));
}

int sql_cast(const rec_value *v, rec_type target, rec_value *out, arena *ar, sql_eval_error *err)
{
    if (v->type == REC_NULL) {
        *out = sql_null();
        return WEIR_OK;
    }
    if (v->type == target) {
        *out = *v;
        return WEIR_OK;
    }
    int rc = WEIR_EINVAL;
    switch (target) {
    case REC_BOOL:
        if (v->type == REC_INT) {
            *out = sql_bool(v->u.i != 0);
            rc = WEIR_OK;
        } else if (v->type == REC_DOUBLE && !isnan(v->u.d)) {
            *out = sql_bool(v->u.d != 0.0);
            rc = WEIR_OK;
        } else if (v->type == REC_STRING) {
            bool b;
            rc = text_to_bool(v->u.s.p, v->u.s.len, &b);
            if (rc == WEIR_OK)
                *out = sql_bool(b);
        }
        break;
    case REC_INT: {
        int64_t i = 0;
        if (v->type == REC_BOOL) {
            i = v->u.b;
            rc = WEIR_OK;
        } else if (v->type == REC_DOUBLE) {
            rc = double_to_int(v->u.d, &i);
        } else if (v->type == REC_STRING) {
            rc = text_to_int(v->u.s.p, v->u.s.len, &i);
        }
        if (rc == WEIR_OK)
            *out = sql_int(i);
        break;
    }
    case REC_DOUBLE: {
        double d = 0;
        if (v->type == REC_BOOL) {
            d = v->u.b;
            rc = WEIR_OK;
        } else if (v->type == REC_INT) {
            d = (double)v->u.i;
            rc = WEIR_OK;
        } else if (v->type == REC_STRING) {
            rc = text_to_double(v->u.s.p, v->u.s.len, &d);
        }
        if (rc == WEIR_OK)
            *out = sql_double(d);
        break;
    }
    case REC_STRING:
        return cast_to_text(v, out, ar, err);
    case REC_JSON:
        if (v->type == REC_STRING) {
            json_error_t je;
            json_t *j = json_loadb(v->u.s.p, v->u.s.len, JSON_DECODE_ANY, &je);
            if (j && (json_is_object(j) || json_is_array(j))) {
                out->type = REC_JSON;
                out->u.s = v->u.s;
                rc = WEIR_OK;
            }
            json_decref(j);
        }
        break;
    default:
        break;
    }
    return rc == WEIR_OK ? rc : cast_fail(v, target, err);
}

/* ======================================================================== */
/* durations                                                                */
/* ======================================================================== */

static const struct {
    const char *name;
    int64_t ns;
} duration_units[] = {
    {"ns", 1},
    {"nanosecond", 1},
    {"nanoseconds", 1},
    {"us", 1000},
    {"microsecond", 1000},
    {"microseconds", 1000},
    {"ms", 1000000},
    {"millisecond", 1000000},
    {"milliseconds", 1000000},
    {"s", 1000000000},
    {"sec", 1000000000},
    {"second", 1000000000},
    {"seconds", 1000000000},
    {"m", 60 * 1000000000LL},
    {"min", 60 * 1000000000LL},
    {"minute", 60 * 1000000000LL},
    {"minutes", 60 * 1000000000LL},
    {"h", 3600 * 1000000000LL},
    {"hour", 3600 * 1000000000LL},
    {"hours", 3600 * 1000000000LL},
    {"d", 86400 * 1000000000LL},
    {"day", 86400 * 1000000000LL},
    {"days", 86400 * 1000000000LL},
    {"w", 7 * 86400 * 1000000000LL},
    {"week", 7 * 86400 * 1000000000LL},
    {"weeks", 7 * 86400 * 1000000000LL},
};

int sql_parse_duration(const char *p, size_t n, int64_t *ns, sql_eval_error *err)
{
    const char *s = p;
    size_t len = n;
    trim_spaces(&s, &len);
    size_t i = 0;
    int64_t count = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (__builtin_mul_overflow(count, 10, &count) ||
            __builtin_add_overflow(count, s[i] - '0', &count))
            goto bad;
        i++;
    }
    if (i == 0 || count == 0)
        goto bad;
    while (i < len && s[i] == ' ')
        i++;
    for (size_t u = 0; u < sizeof duration_units / sizeof duration_units[0]; u++) {
        const char *name = duration_units[u].name;
        if (strlen(name) == len - i && strncasecmp(name, s + i, len - i) == 0) {
            if (__builtin_mul_overflow(count, duration_units[u].ns, ns))
                goto bad;
            return WEIR_OK;
        }
    }
bad:
    return sql_fail(err, WEIR_EINVAL, "'%.*s' is not a positive duration such as '5m' or '10 s'",
                    (int)(n > 40 ? 40 : n), p);
}
