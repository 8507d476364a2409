/* functions.c -- the scalar function table and its implementations; the
 * contract is in functions.h. Sections: helpers, math, text, NULL
 * handling, time, JSON, and the table itself at the end. */
#include "sql/functions.h"

#include "base/err.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ======================================================================== */
/* helpers                                                                  */
/* ======================================================================== */

static bool any_null(const rec_value *args, int n)
{
    for (int i = 0; i < n; i++)
        if (args[i].type == REC_NULL)
            return true;
    return false;
}

static int want_num(const char *fn, const rec_value *v, sql_eval_error *err)
{
    if (sql_is_number(v))
        return WEIR_OK;
    return sql_fail(err, WEIR_EINVAL, "%s: expected a number, got %s", fn, rec_type_name(v->type));
}

static int want_int(const char *fn, const rec_value *v, sql_eval_error *err)
{
    if (v->type == REC_INT)
        return WEIR_OK;
    return sql_fail(err, WEIR_EINVAL, "%s: expected an int, got %s", fn, rec_type_name(v->type));
}

static int want_text(const char *fn, const rec_value *v, sql_eval_error *err)
{
    if (v->type == REC_STRING)
        return WEIR_OK;
    return sql_fail(err, WEIR_EINVAL, "%s: expected a string, got %s", fn, rec_type_name(v->type));
}

static int oom(const char *fn, arena *a, sql_eval_error *err)
{
    int rc = arena_last_error(a);
    return sql_fail(err, rc ? rc : WEIR_ENOMEM, "%s: out of memory", fn);
}

/* A double result; NaN (a domain error such as sqrt(-1)) becomes NULL. */
static int put_double(rec_value *out, double d)
{
    *out = isnan(d) ? sql_null() : sql_double(d);
    return WEIR_OK;
}

/* ======================================================================== */
/* math                                                                     */
/* ======================================================================== */

static int fn_abs(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num("abs", &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    if (args[0].type == REC_INT) {
        int64_t i = args[0].u.i;
        *out = i == INT64_MIN ? sql_double(9223372036854775808.0) : sql_int(i < 0 ? -i : i);
        return WEIR_OK;
    }
    *out = sql_double(fabs(args[0].u.d));
    return WEIR_OK;
}

/* ceil, floor and sign keep INT as INT; the double op handles DOUBLE. */
static int int_preserving(const char *name, double (*op)(double), const rec_value *args, int n,
                          rec_value *out, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num(name, &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    if (args[0].type == REC_INT) {
        *out = args[0];
        return WEIR_OK;
    }
    *out = sql_double(op(args[0].u.d));
    return WEIR_OK;
}

static int fn_ceil(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return int_preserving("ceil", ceil, args, n, out, err);
}

static int fn_floor(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return int_preserving("floor", floor, args, n, out, err);
}

static int fn_sign(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num("sign", &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    if (args[0].type == REC_INT) {
        int64_t i = args[0].u.i;
        *out = sql_int(i > 0 ? 1 : i < 0 ? -1 : 0);
        return WEIR_OK;
    }
    double d = args[0].u.d;
    *out = isnan(d) ? sql_null() : sql_double(d > 0 ? 1.0 : d < 0 ? -1.0 : 0.0);
    return WEIR_OK;
}

/* Rounds x half away from zero at `digits` decimals, working on the
 * shortest decimal form of x (what the user wrote or sees), so that 2.675
 * rounds to 2.68 although its binary value is 2.67499999999999982236431605997495353221893310546875. */
static double round_decimal(double x, int digits)
{
    if (!isfinite(x))
        return x;
    char buf[40];
    rec_format_double(x, buf);
    char dig[40];
    int nd = 0, point = -1, exp10 = 0;
    bool neg = false;
    for (const char *p = buf; *p; p++) {
        if (*p == '-')
            neg = true;
        else if (*p == '.')
            point = nd;
        else if (*p == 'e' || *p == 'E') {
            exp10 = atoi(p + 1);
            break;
        } else if (*p >= '0' && *p <= '9')
            dig[nd++] = *p;
    }
    if (point < 0)
        point = nd;
    /* x = 0.dig * 10^intd. Keep the first `keep` digits. */
    int intd = point + exp10;
    int keep = intd + digits;
    if (keep >= nd)
        return x;
    if (keep < 0)
        return neg ? -0.0 : 0.0;
    bool up = dig[keep] >= '5';
    if (up) {
        int i = keep - 1;
        while (i >= 0 && dig[i] == '9')
            dig[i--] = '0';
        if (i < 0) {
            memmove(dig + 1, dig, (size_t)keep);
            dig[0] = '1';
            keep++;
            intd++;
        } else {
            dig[i]++;
        }
    }
    if (keep == 0)
        return neg ? -0.0 : 0.0;
    char out[64];
    snprintf(out, sizeof out, "%s0.%.*se%d", neg ? "-" : "", keep, dig, intd);
    return strtod(out, NULL);
}

static int round_int(int64_t x, int64_t digits, rec_value *out)
{
    if (digits >= 0) {
        *out = sql_int(x);
        return WEIR_OK;
    }
    if (digits <= -19) {
        /* 10^19 is above every INT64 magnitude; only |x| >= 5e18 rounds up
         * to it, and that does not fit an INT. */
        bool up = digits == -19 && (x >= 5000000000000000000LL || x <= -5000000000000000000LL);
        *out = up ? sql_double(x > 0 ? 1e19 : -1e19) : sql_int(0);
        return WEIR_OK;
    }
    int64_t p = 1;
    for (int64_t i = 0; i < -digits; i++)
        p *= 10;
    int64_t r = x % p;
    int64_t q = x - r;
    int64_t ar = r < 0 ? -r : r;
    if (ar >= p - ar) { /* |r| * 2 >= p without overflow */
        int64_t step = x < 0 ? -p : p;
        if (__builtin_add_overflow(q, step, &q)) {
            *out = sql_double((double)(x - r) + (double)step);
            return WEIR_OK;
        }
    }
    *out = sql_int(q);
    return WEIR_OK;
}

static int fn_round(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num("round", &args[0], err);
    if (rc == WEIR_OK && n > 1)
        rc = want_int("round", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    int64_t digits = n > 1 ? args[1].u.i : 0;
    if (args[0].type == REC_INT)
        return round_int(args[0].u.i, digits, out);
    if (digits > 400)
        digits = 400;
    if (digits < -400)
        digits = -400;
    *out = sql_double(round_decimal(args[0].u.d, (int)digits));
    return WEIR_OK;
}

/* A one-argument DOUBLE function; a NaN result (domain error) is NULL. */
static int math1(const char *name, double (*op)(double), const rec_value *args, int n,
                 rec_value *out, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num(name, &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    return put_double(out, op(sql_num(&args[0])));
}

/* The logarithms are NULL at and below zero (not -inf or NaN). */
static double ln_checked(double x)
{
    return x > 0 ? log(x) : NAN;
}
static double log10_checked(double x)
{
    return x > 0 ? log10(x) : NAN;
}
static double sqrt_checked(double x)
{
    return x >= 0 ? sqrt(x) : NAN;
}

static int fn_sqrt(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return math1("sqrt", sqrt_checked, args, n, out, err);
}
static int fn_exp(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return math1("exp", exp, args, n, out, err);
}
static int fn_ln(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return math1("ln", ln_checked, args, n, out, err);
}
static int fn_log10(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return math1("log10", log10_checked, args, n, out, err);
}

/* log(x) is ln(x); log(b, x) is the logarithm of x in base b. */
static int fn_log(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (n == 1) /* base 10, as in PostgreSQL and SQL Server; ln() is natural */
        return math1("log", log10_checked, args, n, out, err);
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num("log", &args[0], err);
    if (rc == WEIR_OK)
        rc = want_num("log", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    double b = sql_num(&args[0]), x = sql_num(&args[1]);
    if (b <= 0 || b == 1 || x <= 0)
        return *out = sql_null(), WEIR_OK;
    return put_double(out, log(x) / log(b));
}

static int fn_power(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num("power", &args[0], err);
    if (rc == WEIR_OK)
        rc = want_num("power", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    double x = sql_num(&args[0]), y = sql_num(&args[1]);
    if (x == 0 && y < 0)
        return *out = sql_null(), WEIR_OK; /* a pole, like division by zero */
    return put_double(out, pow(x, y));
}

static int fn_mod(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    int rc = sql_value_mod(&args[0], &args[1], out, err);
    if (rc != WEIR_OK)
        return sql_fail(err, rc, "mod: expected numbers, got %s and %s",
                        rec_type_name(args[0].type), rec_type_name(args[1].type));
    return rc;
}

/* greatest/least: NULLs ignored; a DOUBLE anywhere makes the result DOUBLE. */
static int extreme(const char *name, int want, const rec_value *args, int n, rec_value *out,
                   sql_eval_error *err)
{
    const rec_value *best = NULL;
    bool any_double = false;
    for (int i = 0; i < n; i++) {
        if (args[i].type == REC_NULL)
            continue;
        any_double |= args[i].type == REC_DOUBLE;
        if (!best) {
            best = &args[i];
            continue;
        }
        int cmp;
        bool unknown;
        int rc = sql_value_compare(&args[i], best, &cmp, &unknown, err);
        if (rc != WEIR_OK)
            return sql_fail(err, rc, "%s: cannot compare %s with %s", name,
                            rec_type_name(args[i].type), rec_type_name(best->type));
        if (cmp * want > 0)
            best = &args[i];
    }
    if (!best)
        *out = sql_null();
    else if (any_double && best->type == REC_INT)
        *out = sql_double((double)best->u.i);
    else
        *out = *best;
    return WEIR_OK;
}

static int fn_greatest(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return extreme("greatest", 1, args, n, out, err);
}
static int fn_least(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return extreme("least", -1, args, n, out, err);
}

/* ======================================================================== */
/* text (UTF-8 aware: positions and lengths count code points)              */
/* ======================================================================== */

static bool utf8_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

static size_t utf8_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += !utf8_cont((unsigned char)p[i]);
    return c;
}

/* Byte offset of character k (0-based) in p[0..n), or n past the end. */
static size_t utf8_offset(const char *p, size_t n, size_t k)
{
    size_t i = 0;
    while (i < n && k > 0) {
        i++;
        while (i < n && utf8_cont((unsigned char)p[i]))
            i++;
        k--;
    }
    return i;
}

/* Byte length of the character starting at p[0] (within n). */
static size_t utf8_char_len(const char *p, size_t n)
{
    size_t i = 1;
    while (i < n && utf8_cont((unsigned char)p[i]))
        i++;
    return i;
}

static int fn_length(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text("length", &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    *out = sql_int((int64_t)utf8_chars(args[0].u.s.p, args[0].u.s.len));
    return WEIR_OK;
}

static int map_case(const char *name, bool upper, const rec_value *args, int n, rec_value *out,
                    arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text(name, &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    uint32_t len = args[0].u.s.len;
    char *p = arena_alloc_bytes(a, len ? len : 1);
    if (!p)
        return oom(name, a, err);
    for (uint32_t i = 0; i < len; i++) {
        char c = args[0].u.s.p[i];
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        p[i] = c;
    }
    *out = sql_text(p, len);
    return WEIR_OK;
}

static int fn_lower(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return map_case("lower", false, args, n, out, a, err);
}
static int fn_upper(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return map_case("upper", true, args, n, out, a, err);
}

static int fn_substr(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text("substr", &args[0], err);
    for (int i = 1; rc == WEIR_OK && i < n; i++)
        rc = want_int("substr", &args[i], err);
    if (rc != WEIR_OK)
        return rc;
    const char *s = args[0].u.s.p;
    size_t len = args[0].u.s.len;
    int64_t start = args[1].u.i;
    int64_t end = INT64_MAX; /* 1-based, exclusive */
    if (n > 2) {
        if (args[2].u.i < 0)
            return sql_fail(err, WEIR_EINVAL, "substr: negative length %lld",
                            (long long)args[2].u.i);
        if (__builtin_add_overflow(start, args[2].u.i, &end))
            end = INT64_MAX;
    }
    if (start < 1)
        start = 1;
    if (end <= start) {
        *out = sql_text(s, 0);
        return WEIR_OK;
    }
    size_t from = utf8_offset(s, len, (size_t)(start - 1));
    size_t to = end == INT64_MAX || (uint64_t)(end - 1) >= len
                    ? len
                    : from + utf8_offset(s + from, len - from, (size_t)(end - start));
    *out = sql_text(s + from, (uint32_t)(to - from));
    return WEIR_OK;
}

static int fn_concat(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    rec_value parts[SQL_VARIADIC];
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        parts[i] = sql_text("", 0);
        if (args[i].type == REC_NULL)
            continue;
        int rc = sql_cast(&args[i], REC_STRING, &parts[i], a, err);
        if (rc != WEIR_OK)
            return rc;
        total += parts[i].u.s.len;
    }
    if (total > UINT32_MAX)
        return sql_fail(err, WEIR_ETOOBIG, "concat: result too long");
    char *p = arena_alloc_bytes(a, total ? total : 1);
    if (!p)
        return oom("concat", a, err);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        memcpy(p + at, parts[i].u.s.p, parts[i].u.s.len);
        at += parts[i].u.s.len;
    }
    *out = sql_text(p, (uint32_t)total);
    return WEIR_OK;
}

/* Whether the character c[0..clen) is one of the characters of set. */
static bool char_in_set(const char *c, size_t clen, const char *set, size_t setlen)
{
    for (size_t i = 0; i < setlen;) {
        size_t l = utf8_char_len(set + i, setlen - i);
        if (l == clen && memcmp(set + i, c, clen) == 0)
            return true;
        i += l;
    }
    return false;
}

static int trim_common(const char *name, bool left, bool right, const rec_value *args, int n,
                       rec_value *out, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text(name, &args[0], err);
    if (rc == WEIR_OK && n > 1)
        rc = want_text(name, &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    const char *set = n > 1 ? args[1].u.s.p : " ";
    size_t setlen = n > 1 ? args[1].u.s.len : 1;
    const char *s = args[0].u.s.p;
    size_t b = 0, e = args[0].u.s.len;
    while (left && b < e) {
        size_t l = utf8_char_len(s + b, e - b);
        if (!char_in_set(s + b, l, set, setlen))
            break;
        b += l;
    }
    while (right && e > b) {
        size_t st = e - 1;
        while (st > b && utf8_cont((unsigned char)s[st]))
            st--;
        if (!char_in_set(s + st, e - st, set, setlen))
            break;
        e = st;
    }
    *out = sql_text(s + b, (uint32_t)(e - b));
    return WEIR_OK;
}

static int fn_trim(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return trim_common("trim", true, true, args, n, out, err);
}
static int fn_ltrim(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return trim_common("ltrim", true, false, args, n, out, err);
}
static int fn_rtrim(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return trim_common("rtrim", false, true, args, n, out, err);
}

static int fn_replace(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = WEIR_OK;
    for (int i = 0; rc == WEIR_OK && i < 3; i++)
        rc = want_text("replace", &args[i], err);
    if (rc != WEIR_OK)
        return rc;
    const char *s = args[0].u.s.p, *from = args[1].u.s.p, *to = args[2].u.s.p;
    size_t sl = args[0].u.s.len, fl = args[1].u.s.len, tl = args[2].u.s.len;
    if (fl == 0 || fl > sl) {
        *out = args[0];
        return WEIR_OK;
    }
    size_t count = 0;
    for (const char *p = s; (p = memmem(p, sl - (size_t)(p - s), from, fl)); p += fl)
        count++;
    size_t total = sl - count * fl + count * tl;
    if (total > UINT32_MAX)
        return sql_fail(err, WEIR_ETOOBIG, "replace: result too long");
    char *d = arena_alloc_bytes(a, total ? total : 1);
    if (!d)
        return oom("replace", a, err);
    size_t at = 0;
    const char *p = s;
    for (const char *hit; (hit = memmem(p, sl - (size_t)(p - s), from, fl)); p = hit + fl) {
        memcpy(d + at, p, (size_t)(hit - p));
        at += (size_t)(hit - p);
        memcpy(d + at, to, tl);
        at += tl;
    }
    memcpy(d + at, p, sl - (size_t)(p - s));
    *out = sql_text(d, (uint32_t)total);
    return WEIR_OK;
}

static int fn_starts_with(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text("starts_with", &args[0], err);
    if (rc == WEIR_OK)
        rc = want_text("starts_with", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    uint32_t pl = args[1].u.s.len;
    *out = sql_bool(pl <= args[0].u.s.len && memcmp(args[0].u.s.p, args[1].u.s.p, pl) == 0);
    return WEIR_OK;
}

/* 1-based character position of sub in s, 0 when absent. */
static int find_pos(const char *name, const rec_value *s, const rec_value *sub, rec_value *out,
                    sql_eval_error *err)
{
    if (s->type == REC_NULL || sub->type == REC_NULL)
        return *out = sql_null(), WEIR_OK;
    int rc = want_text(name, s, err);
    if (rc == WEIR_OK)
        rc = want_text(name, sub, err);
    if (rc != WEIR_OK)
        return rc;
    if (sub->u.s.len == 0)
        return *out = sql_int(1), WEIR_OK;
    const char *hit = memmem(s->u.s.p, s->u.s.len, sub->u.s.p, sub->u.s.len);
    *out = sql_int(hit ? (int64_t)utf8_chars(s->u.s.p, (size_t)(hit - s->u.s.p)) + 1 : 0);
    return WEIR_OK;
}

static int fn_position(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return find_pos("position", &args[1], &args[0], out, err);
}
static int fn_strpos(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return find_pos("strpos", &args[0], &args[1], out, err);
}

/* ======================================================================== */
/* NULL handling                                                            */
/* ======================================================================== */

static int fn_coalesce(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    *out = sql_null();
    for (int i = 0; i < n; i++) {
        if (args[i].type != REC_NULL) {
            *out = args[i];
            break;
        }
    }
    return WEIR_OK;
}

/* nullif(a, b): NULL when a = b; values that cannot be compared (a string
 * and a number) are not equal, so a comes back. */
static int fn_nullif(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    int cmp;
    bool unknown;
    if (sql_value_compare(&args[0], &args[1], &cmp, &unknown, NULL) == WEIR_OK && !unknown &&
        cmp == 0)
        *out = sql_null();
    else
        *out = args[0];
    return WEIR_OK;
}

/* ======================================================================== */
/* time: INT nanoseconds since the Unix epoch, UTC                          */
/* ======================================================================== */

#define NS_PER_S 1000000000LL
#define NS_PER_DAY (86400 * NS_PER_S)

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

/* Proleptic Gregorian calendar <-> days since 1970-01-01 (H. Hinnant's
 * algorithms, exact over the whole int64 ns range). */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int fn_time_bucket(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int64_t width;
    int rc = WEIR_OK;
    if (args[0].type == REC_STRING)
        rc = sql_parse_duration(args[0].u.s.p, args[0].u.s.len, &width, err);
    else if (args[0].type == REC_INT)
        width = args[0].u.i;
    else
        rc = sql_fail(err, WEIR_EINVAL, "time_bucket: width must be int ns or a duration, got %s",
                      rec_type_name(args[0].type));
    if (rc == WEIR_OK)
        rc = want_int("time_bucket", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    if (width <= 0)
        return sql_fail(err, WEIR_EINVAL, "time_bucket: width must be positive");
    int64_t q = floor_div(args[1].u.i, width);
    int64_t r;
    if (__builtin_mul_overflow(q, width, &r))
        return *out = sql_null(), WEIR_OK; /* bucket start before INT64_MIN */
    *out = sql_int(r);
    return WEIR_OK;
}

/* date_trunc units: a fixed width in ns, or 0 for the calendar units. */
typedef struct trunc_unit {
    const char *name;
    int64_t ns;
} trunc_unit;

static const trunc_unit trunc_units[] = {
    {"microsecond", 1000}, {"millisecond", 1000000}, {"second", NS_PER_S},
    {"minute", 60 * NS_PER_S}, {"hour", 3600 * NS_PER_S}, {"day", NS_PER_DAY},
    {"week", 0}, {"month", 0}, {"quarter", 0}, {"year", 0},
};

static bool name_is(const rec_value *v, const char *name)
{
    return strlen(name) == v->u.s.len && strncasecmp(name, v->u.s.p, v->u.s.len) == 0;
}

static int fn_date_trunc(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text("date_trunc", &args[0], err);
    if (rc == WEIR_OK)
        rc = want_int("date_trunc", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    const trunc_unit *u = NULL;
    for (size_t i = 0; i < sizeof trunc_units / sizeof trunc_units[0]; i++)
        if (name_is(&args[0], trunc_units[i].name))
            u = &trunc_units[i];
    if (!u)
        return sql_fail(err, WEIR_EINVAL, "date_trunc: unknown unit '%.*s'",
                        (int)(args[0].u.s.len > 20 ? 20 : args[0].u.s.len), args[0].u.s.p);
    int64_t ts = args[1].u.i;
    if (u->ns)
        return fn_time_bucket((rec_value[]){sql_int(u->ns), args[1]}, 2, out, a, err);
    int64_t days = floor_div(ts, NS_PER_DAY), y;
    int m, d;
    if (name_is(&args[0], "week")) {
        days -= ((days + 3) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; weeks start Monday */
    } else {
        civil_from_days(days, &y, &m, &d);
        if (name_is(&args[0], "year"))
            m = 1;
        else if (name_is(&args[0], "quarter"))
            m = (m - 1) / 3 * 3 + 1;
        days = days_from_civil(y, m, 1);
    }
    int64_t r;
    if (__builtin_mul_overflow(days, NS_PER_DAY, &r))
        return *out = sql_null(), WEIR_OK;
    *out = sql_int(r);
    return WEIR_OK;
}

/* extract fields: each reads a broken-down time. */
typedef struct tm_parts {
    int64_t ts, year, days;
    int month, day;
    int64_t ns_of_day;
} tm_parts;

typedef rec_value (*field_fn)(const tm_parts *t);

static rec_value f_epoch(const tm_parts *t)
{
    return sql_double((double)floor_div(t->ts, NS_PER_S) +
                      (double)(t->ts - floor_div(t->ts, NS_PER_S) * NS_PER_S) / 1e9);
}
static rec_value f_year(const tm_parts *t)
{
    return sql_int(t->year);
}
static rec_value f_month(const tm_parts *t)
{
    return sql_int(t->month);
}
static rec_value f_quarter(const tm_parts *t)
{
    return sql_int((t->month - 1) / 3 + 1);
}
static rec_value f_day(const tm_parts *t)
{
    return sql_int(t->day);
}
static rec_value f_hour(const tm_parts *t)
{
    return sql_int(t->ns_of_day / (3600 * NS_PER_S));
}
static rec_value f_minute(const tm_parts *t)
{
    return sql_int(t->ns_of_day / (60 * NS_PER_S) % 60);
}
static rec_value f_second(const tm_parts *t)
{
    return sql_double((double)(t->ns_of_day % (60 * NS_PER_S)) / 1e9);
}
static rec_value f_millisecond(const tm_parts *t)
{
    return sql_int(t->ns_of_day % NS_PER_S / 1000000);
}
static rec_value f_dow(const tm_parts *t)
{
    return sql_int(((t->days + 4) % 7 + 7) % 7); /* 0 = Sunday, as PostgreSQL */
}
static rec_value f_doy(const tm_parts *t)
{
    return sql_int(t->days - days_from_civil(t->year, 1, 1) + 1);
}

static const struct {
    const char *name;
    field_fn fn;
} extract_fields[] = {
    {"epoch", f_epoch},   {"year", f_year},     {"quarter", f_quarter},
    {"month", f_month},   {"day", f_day},       {"hour", f_hour},
    {"minute", f_minute}, {"second", f_second}, {"millisecond", f_millisecond},
    {"dow", f_dow},       {"doy", f_doy},
};

static int fn_extract(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_text("extract", &args[0], err);
    if (rc == WEIR_OK)
        rc = want_int("extract", &args[1], err);
    if (rc != WEIR_OK)
        return rc;
    for (size_t i = 0; i < sizeof extract_fields / sizeof extract_fields[0]; i++) {
        if (!name_is(&args[0], extract_fields[i].name))
            continue;
        tm_parts t = {.ts = args[1].u.i};
        t.days = floor_div(t.ts, NS_PER_DAY);
        t.ns_of_day = t.ts - t.days * NS_PER_DAY;
        civil_from_days(t.days, &t.year, &t.month, &t.day);
        *out = extract_fields[i].fn(&t);
        return WEIR_OK;
    }
    return sql_fail(err, WEIR_EINVAL, "extract: unknown field '%.*s'",
                    (int)(args[0].u.s.len > 20 ? 20 : args[0].u.s.len), args[0].u.s.p);
}

static int fn_to_timestamp(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    int rc = want_num("to_timestamp", &args[0], err);
    if (rc != WEIR_OK)
        return rc;
    int64_t ns;
    if (args[0].type == REC_INT) {
        if (__builtin_mul_overflow(args[0].u.i, NS_PER_S, &ns))
            goto range;
    } else {
        double d = round(args[0].u.d * 1e9);
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            goto range;
        ns = (int64_t)d;
    }
    *out = sql_int(ns);
    return WEIR_OK;
range:
    return sql_fail(err, WEIR_EINVAL, "to_timestamp: outside the years 1677..2262");
}

/* ======================================================================== */
/* JSON                                                                     */
/* ======================================================================== */

/* Copies a jansson value into a rec_value, strings and dumps into the arena. */
static int from_json(const json_t *j, rec_value *out, arena *a, sql_eval_error *err)
{
    switch (json_typeof(j)) {
    case JSON_STRING: {
        size_t len = json_string_length(j);
        char *p = arena_memdup(a, json_string_value(j), len ? len : 1);
        if (!p)
            return oom("json_get", a, err);
        *out = sql_text(p, (uint32_t)len);
        return WEIR_OK;
    }
    case JSON_INTEGER:
        *out = sql_int(json_integer_value(j));
        return WEIR_OK;
    case JSON_REAL:
        *out = sql_double(json_real_value(j));
        return WEIR_OK;
    case JSON_TRUE:
    case JSON_FALSE:
        *out = sql_bool(json_is_true(j));
        return WEIR_OK;
    case JSON_NULL:
        *out = sql_null();
        return WEIR_OK;
    case JSON_OBJECT:
    case JSON_ARRAY: {
        char *text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!text)
            return sql_fail(err, WEIR_ENOMEM, "json_get: out of memory");
        size_t len = strlen(text);
        char *p = arena_memdup(a, text, len);
        free(text);
        if (!p)
            return oom("json_get", a, err);
        out->type = REC_JSON;
        out->u.s.p = p;
        out->u.s.len = (uint32_t)len;
        return WEIR_OK;
    }
    }
    return sql_fail(err, WEIR_EINTERNAL, "json_get: unknown JSON type");
}

static int json_walk(const char *name, const rec_value *args, int n, rec_value *out, arena *a,
                     sql_eval_error *err)
{
    if (any_null(args, n))
        return *out = sql_null(), WEIR_OK;
    if (args[0].type != REC_JSON && args[0].type != REC_STRING)
        return sql_fail(err, WEIR_EINVAL, "%s: expected json or string, got %s", name,
                        rec_type_name(args[0].type));
    for (int i = 1; i < n; i++)
        if (args[i].type != REC_STRING && args[i].type != REC_INT)
            return sql_fail(err, WEIR_EINVAL, "%s: path steps are strings or ints, got %s", name,
                            rec_type_name(args[i].type));
    json_error_t je;
    json_t *root = json_loadb(args[0].u.s.p, args[0].u.s.len, JSON_DECODE_ANY, &je);
    if (!root)
        return sql_fail(err, WEIR_EINVAL, "%s: malformed JSON: %s", name, je.text);
    const json_t *j = root;
    for (int i = 1; j && i < n; i++) {
        if (args[i].type == REC_STRING)
            j = json_is_object(j) ? json_object_getn(j, args[i].u.s.p, args[i].u.s.len) : NULL;
        else
            j = json_is_array(j) && args[i].u.i >= 0 ? json_array_get(j, (size_t)args[i].u.i)
                                                     : NULL;
    }
    int rc = j ? from_json(j, out, a, err) : (*out = sql_null(), WEIR_OK);
    json_decref(root);
    return rc;
}

static int fn_json_get(const rec_value *args, int n, rec_value *out, arena *a, sql_eval_error *err)
{
    return json_walk("json_get", args, n, out, a, err);
}

static int fn_json_get_text(const rec_value *args, int n, rec_value *out, arena *a,
                            sql_eval_error *err)
{
    rec_value v;
    int rc = json_walk("json_get_text", args, n, &v, a, err);
    if (rc != WEIR_OK)
        return rc;
    return sql_cast(&v, REC_STRING, out, a, err);
}

/* ======================================================================== */
/* the table                                                                */
/* ======================================================================== */

#define NUM SQL_RET_NUMERIC, REC_NULL
#define FIXED(t) SQL_RET_FIXED, t
#define ANY SQL_VARIADIC

static const sql_function functions[] = {
    /* math */
    {"abs", 1, 1, NUM, fn_abs, "abs(x): absolute value"},
    {"ceil", 1, 1, NUM, fn_ceil, "ceil(x): smallest integer not below x"},
    {"ceiling", 1, 1, NUM, fn_ceil, "ceiling(x): same as ceil"},
    {"floor", 1, 1, NUM, fn_floor, "floor(x): largest integer not above x"},
    {"round", 1, 2, NUM, fn_round, "round(x[, d]): x rounded half away from zero to d decimals"},
    {"sqrt", 1, 1, FIXED(REC_DOUBLE), fn_sqrt, "sqrt(x): square root; NULL below zero"},
    {"power", 2, 2, FIXED(REC_DOUBLE), fn_power, "power(x, y): x raised to y"},
    {"pow", 2, 2, FIXED(REC_DOUBLE), fn_power, "pow(x, y): same as power"},
    {"exp", 1, 1, FIXED(REC_DOUBLE), fn_exp, "exp(x): e raised to x"},
    {"ln", 1, 1, FIXED(REC_DOUBLE), fn_ln, "ln(x): natural logarithm; NULL at or below zero"},
    {"log", 1, 2, FIXED(REC_DOUBLE), fn_log, "log(x) base-10 logarithm (as PostgreSQL); log(b, x) base b; ln(x) natural"},
    {"log10", 1, 1, FIXED(REC_DOUBLE), fn_log10, "log10(x): base-10 logarithm"},
    {"sign", 1, 1, NUM, fn_sign, "sign(x): -1, 0 or 1"},
    {"mod", 2, 2, NUM, fn_mod, "mod(x, y): remainder with the sign of x; NULL when y is 0"},
    {"greatest", 1, ANY, NUM, fn_greatest, "greatest(x, ...): largest non-NULL argument"},
    {"least", 1, ANY, NUM, fn_least, "least(x, ...): smallest non-NULL argument"},
    /* text */
    {"lower", 1, 1, FIXED(REC_STRING), fn_lower, "lower(s): ASCII letters to lower case"},
    {"upper", 1, 1, FIXED(REC_STRING), fn_upper, "upper(s): ASCII letters to upper case"},
    {"length", 1, 1, FIXED(REC_INT), fn_length, "length(s): number of characters"},
    {"char_length", 1, 1, FIXED(REC_INT), fn_length, "char_length(s): same as length"},
    {"substr", 2, 3, FIXED(REC_STRING), fn_substr,
     "substr(s, start[, len]): characters from 1-based start"},
    {"substring", 2, 3, FIXED(REC_STRING), fn_substr, "substring(s, start[, len]): same as substr"},
    {"concat", 0, ANY, FIXED(REC_STRING), fn_concat, "concat(x, ...): text of the non-NULL arguments"},
    {"trim", 1, 2, FIXED(REC_STRING), fn_trim, "trim(s[, chars]): strip chars (space) at both ends"},
    {"btrim", 1, 2, FIXED(REC_STRING), fn_trim, "btrim(s[, chars]): same as trim"},
    {"ltrim", 1, 2, FIXED(REC_STRING), fn_ltrim, "ltrim(s[, chars]): strip chars at the start"},
    {"rtrim", 1, 2, FIXED(REC_STRING), fn_rtrim, "rtrim(s[, chars]): strip chars at the end"},
    {"replace", 3, 3, FIXED(REC_STRING), fn_replace, "replace(s, from, to): every from by to"},
    {"starts_with", 2, 2, FIXED(REC_BOOL), fn_starts_with, "starts_with(s, prefix)"},
    {"position", 2, 2, FIXED(REC_INT), fn_position, "position(sub, s): 1-based, 0 if absent"},
    {"strpos", 2, 2, FIXED(REC_INT), fn_strpos, "strpos(s, sub): 1-based, 0 if absent"},
    /* NULL handling */
    {"coalesce", 1, ANY, SQL_RET_ARG, REC_NULL, fn_coalesce, "coalesce(x, ...): first non-NULL"},
    {"nullif", 2, 2, SQL_RET_ARG, REC_NULL, fn_nullif, "nullif(a, b): NULL if a = b, else a"},
    /* time */
    {"time_bucket", 2, 2, FIXED(REC_INT), fn_time_bucket,
     "time_bucket(width, ts): start of ts's bucket, aligned to the epoch"},
    {"date_trunc", 2, 2, FIXED(REC_INT), fn_date_trunc,
     "date_trunc(unit, ts): ts truncated to second/minute/hour/day/week/month/quarter/year"},
    {"extract", 2, 2, SQL_RET_DYNAMIC, REC_NULL, fn_extract,
     "extract(field, ts): epoch/year/quarter/month/day/hour/minute/second/millisecond/dow/doy"},
    {"date_part", 2, 2, SQL_RET_DYNAMIC, REC_NULL, fn_extract, "date_part(field, ts): same as extract"},
    {"to_timestamp", 1, 1, FIXED(REC_INT), fn_to_timestamp,
     "to_timestamp(seconds): ns timestamp from epoch seconds"},
    /* JSON */
    {"json_get", 2, ANY, SQL_RET_DYNAMIC, REC_NULL, fn_json_get,
     "json_get(j, key|index, ...): typed value at the path, NULL if absent"},
    {"json_get_text", 2, ANY, FIXED(REC_STRING), fn_json_get_text,
     "json_get_text(j, key|index, ...): the value at the path as text"},
};

#undef NUM
#undef FIXED
#undef ANY

const sql_function *sql_function_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof functions / sizeof functions[0]; i++)
        if (strlen(functions[i].name) == len && strncasecmp(functions[i].name, name, len) == 0)
            return &functions[i];
    return NULL;
}

const sql_function *sql_function_table(size_t *n)
{
    *n = sizeof functions / sizeof functions[0];
    return functions;
}

rec_type sql_function_result_type(const sql_function *f, const rec_type *args, int n)
{
    switch (f->rule) {
    case SQL_RET_FIXED:
        return f->type;
    case SQL_RET_NUMERIC:
        for (int i = 0; i < n; i++)
            if (args[i] == REC_DOUBLE)
                return REC_DOUBLE;
        return REC_INT;
    case SQL_RET_ARG:
        for (int i = 0; i < n; i++)
            if (args[i] != REC_NULL)
                return args[i];
        return REC_NULL;
    default:
        return REC_NULL;
    }
}
