/* agg.c -- the aggregate table and its accumulators; the contract, the
 * memory per state and the percentile error bound are in agg.h.
 *
 * ## Checkpoint formats (all integers and doubles little-endian, 8 bytes
 * unless noted; the first byte is the format version, 1)
 *
 *   count:  n:i64
 *   sum:    n:i64  mode:u8 (0 int, 1 double)  isum:i64  sum:f64  comp:f64
 *   avg:    n:i64  sum:f64  comp:f64
 *   var:    n:i64  mean:f64  m2:f64
 *   value:  has:u8 [ts:i64 type:u8 payload]  payload per type: BOOL u8,
 *           INT i64, DOUBLE f64, STRING/JSON len:u32 bytes (<= SQL_AGG_TEXT_MAX)
 *   regr:   n:i64  mx my m2x m2y cxy:f64
 *   digest: compression:u16  p:f64  min max:f64  nc:u32  nb:u32
 *           (mean:f64 weight:f64){nc}  value:f64{nb}
 */
#include "sql/agg.h"

#include "base/err.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define FORMAT_V1 0x01

/* ======================================================================== */
/* checkpoint encoding                                                      */
/* ======================================================================== */

static uint8_t *put_u8(uint8_t *p, uint8_t v)
{
    *p = v;
    return p + 1;
}
static uint8_t *put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 8;
}
static uint8_t *put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}
static uint8_t *put_i64(uint8_t *p, int64_t v)
{
    return put_u64(p, (uint64_t)v);
}
static uint8_t *put_f64(uint8_t *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return put_u64(p, u);
}

/* A bounds-checked reader: any short read sets bad and returns zeros. */
typedef struct reader {
    const uint8_t *p; /* next byte */
    size_t n;         /* bytes left */
    bool bad;         /* a read ran past the end */
} reader;

static uint64_t get_le(reader *r, size_t w)
{
    if (r->n < w) {
        r->bad = true;
        r->n = 0;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < w; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += w;
    r->n -= w;
    return v;
}
static uint8_t get_u8(reader *r)
{
    return (uint8_t)get_le(r, 1);
}
static uint32_t get_u32(reader *r)
{
    return (uint32_t)get_le(r, 4);
}
static int64_t get_i64(reader *r)
{
    return (int64_t)get_le(r, 8);
}
static double get_f64(reader *r)
{
    uint64_t u = get_le(r, 8);
    double d = 0;
    memcpy(&d, &u, 8);
    return d;
}

/* Opens a reader on p[0..n) and checks the version byte. */
static reader read_open(const uint8_t *p, size_t n)
{
    reader r = {p, n, false};
    if (get_u8(&r) != FORMAT_V1)
        r.bad = true;
    return r;
}
static int read_close(const reader *r)
{
    return (r->bad || r->n != 0) ? WEIR_ECORRUPT : WEIR_OK;
}

/* Room for max bytes at the end of out; the caller writes and commits. */
static uint8_t *write_open(weir_buf *out, size_t max, int *rc)
{
    *rc = buf_reserve(out, max);
    return *rc == WEIR_OK ? buf_tail(out) : NULL;
}

/* Reads a numeric argument: false for NULL (skip the row), an error for a
 * non-number. */
static int num_arg(const char *name, const rec_value *v, double *d, bool *skip, sql_eval_error *err)
{
    *skip = v->type == REC_NULL;
    if (*skip)
        return WEIR_OK;
    if (!sql_is_number(v))
        return sql_fail(err, WEIR_EINVAL, "%s: expected a number, got %s", name,
                        rec_type_name(v->type));
    *d = sql_num(v);
    return WEIR_OK;
}

/* ======================================================================== */
/* count                                                                    */
/* ======================================================================== */

typedef struct count_state {
    int64_t n; /* rows (count_star) or non-NULL values (count) */
} count_state;

static int count_add(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    ((count_state *)s)->n += args[0].type != REC_NULL;
    return WEIR_OK;
}
static int count_remove(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    ((count_state *)s)->n -= args[0].type != REC_NULL;
    return WEIR_OK;
}
static int count_star_add(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    ((count_state *)s)->n++;
    return WEIR_OK;
}
static int count_star_remove(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    ((count_state *)s)->n--;
    return WEIR_OK;
}
static int count_merge(void *s, const void *o, sql_eval_error *err)
{
    ((count_state *)s)->n += ((const count_state *)o)->n;
    return WEIR_OK;
}
static int count_result(const void *s, rec_value *out, arena *a, sql_eval_error *err)
{
    *out = sql_int(((const count_state *)s)->n);
    return WEIR_OK;
}
static int count_ser(const void *s, weir_buf *out)
{
    int rc;
    uint8_t *p0 = write_open(out, 9, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    p = put_i64(p, ((const count_state *)s)->n);
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}
static int count_deser(void *s, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    count_state c = {get_i64(&r)};
    if (c.n < 0)
        r.bad = true;
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        *(count_state *)s = c;
    return rc;
}

/* ======================================================================== */
/* sum: exact INT while it fits, then a compensated (Neumaier) double sum   */
/* ======================================================================== */

typedef struct sum_state {
    int64_t n;    /* non-NULL values */
    bool dbl;     /* the sum is in sum+comp (a DOUBLE was seen or INT overflowed) */
    int64_t isum; /* the exact sum while !dbl */
    double sum;   /* running double sum while dbl */
    double comp;  /* Neumaier compensation: the low-order bits sum lost */
} sum_state;

/* Neumaier's improved Kahan step: adds x to *sum, keeping the rounding
 * error in *comp, so a long sum stays accurate to about one ulp. */
static void neumaier(double *sum, double *comp, double x)
{
    double t = *sum + x;
    if (fabs(*sum) >= fabs(x))
        *comp += (*sum - t) + x;
    else
        *comp += (x - t) + *sum;
    *sum = t;
}

static void sum_to_double(sum_state *s)
{
    if (!s->dbl) {
        s->dbl = true;
        s->sum = (double)s->isum;
        s->comp = (double)(s->isum - (int64_t)s->sum); /* what the conversion rounded off */
        if (s->isum == INT64_MIN || fabs(s->sum) >= 9.2e18)
            s->comp = 0; /* the difference above could overflow; accept one rounding */
    }
}

static int sum_step(sum_state *s, const rec_value *v, int sign, sql_eval_error *err)
{
    if (v->type == REC_NULL)
        return WEIR_OK;
    if (!sql_is_number(v))
        return sql_fail(err, WEIR_EINVAL, "sum: expected a number, got %s", rec_type_name(v->type));
    s->n += sign;
    if (!s->dbl && v->type == REC_INT) {
        int64_t r;
        bool ovf = sign > 0 ? __builtin_add_overflow(s->isum, v->u.i, &r)
                            : __builtin_sub_overflow(s->isum, v->u.i, &r);
        if (!ovf) {
            s->isum = r;
            return WEIR_OK;
        }
    }
    sum_to_double(s);
    neumaier(&s->sum, &s->comp, sign * sql_num(v));
    return WEIR_OK;
}

static int sum_add(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    return sum_step(s, &args[0], 1, err);
}
static int sum_remove(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    return sum_step(s, &args[0], -1, err);
}
static int sum_merge(void *sv, const void *ov, sql_eval_error *err)
{
    sum_state *s = sv;
    const sum_state *o = ov;
    s->n += o->n;
    if (!s->dbl && !o->dbl) {
        int64_t r;
        if (!__builtin_add_overflow(s->isum, o->isum, &r)) {
            s->isum = r;
            return WEIR_OK;
        }
    }
    sum_state oc = *o;
    sum_to_double(s);
    sum_to_double(&oc);
    neumaier(&s->sum, &s->comp, oc.sum);
    neumaier(&s->sum, &s->comp, oc.comp);
    return WEIR_OK;
}
static int sum_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const sum_state *s = sv;
    *out = s->n == 0 ? sql_null() : s->dbl ? sql_double(s->sum + s->comp) : sql_int(s->isum);
    return WEIR_OK;
}
static int sum_ser(const void *sv, weir_buf *out)
{
    const sum_state *s = sv;
    int rc;
    uint8_t *p0 = write_open(out, 34, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    p = put_i64(p, s->n);
    p = put_u8(p, s->dbl);
    p = put_i64(p, s->isum);
    p = put_f64(p, s->sum);
    p = put_f64(p, s->comp);
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}
static int sum_deser(void *sv, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    sum_state s = {0};
    s.n = get_i64(&r);
    uint8_t mode = get_u8(&r);
    s.dbl = mode == 1;
    s.isum = get_i64(&r);
    s.sum = get_f64(&r);
    s.comp = get_f64(&r);
    if (mode > 1 || s.n < 0)
        r.bad = true;
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        *(sum_state *)sv = s;
    return rc;
}

/* ======================================================================== */
/* avg                                                                      */
/* ======================================================================== */

typedef struct avg_state {
    int64_t n;   /* non-NULL values */
    double sum;  /* their compensated sum */
    double comp; /* its compensation */
} avg_state;

static int avg_step(avg_state *s, const rec_value *v, int sign, sql_eval_error *err)
{
    double d = 0;
    bool skip;
    int rc = num_arg("avg", v, &d, &skip, err);
    if (rc != WEIR_OK || skip)
        return rc;
    s->n += sign;
    neumaier(&s->sum, &s->comp, sign * d);
    return WEIR_OK;
}
static int avg_add(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    return avg_step(s, &args[0], 1, err);
}
static int avg_remove(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    return avg_step(s, &args[0], -1, err);
}
static int avg_merge(void *sv, const void *ov, sql_eval_error *err)
{
    avg_state *s = sv;
    const avg_state *o = ov;
    s->n += o->n;
    neumaier(&s->sum, &s->comp, o->sum);
    neumaier(&s->sum, &s->comp, o->comp);
    return WEIR_OK;
}
static int avg_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const avg_state *s = sv;
    *out = s->n == 0 ? sql_null() : sql_double((s->sum + s->comp) / (double)s->n);
    return WEIR_OK;
}
static int avg_ser(const void *sv, weir_buf *out)
{
    const avg_state *s = sv;
    int rc;
    uint8_t *p0 = write_open(out, 25, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    p = put_i64(p, s->n);
    p = put_f64(p, s->sum);
    p = put_f64(p, s->comp);
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}
static int avg_deser(void *sv, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    avg_state s;
    s.n = get_i64(&r);
    s.sum = get_f64(&r);
    s.comp = get_f64(&r);
    if (s.n < 0)
        r.bad = true;
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        *(avg_state *)sv = s;
    return rc;
}

/* ======================================================================== */
/* variance and standard deviation: Welford, merged with Chan et al.        */
/* ======================================================================== */

typedef struct var_state {
    int64_t n;   /* non-NULL values */
    double mean; /* their running mean */
    double m2;   /* sum of squared deviations from the mean */
} var_state;

static int var_add(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    var_state *s = sv;
    double x = 0;
    bool skip;
    int rc = num_arg("stddev", &args[0], &x, &skip, err);
    if (rc != WEIR_OK || skip)
        return rc;
    s->n++;
    double delta = x - s->mean;
    s->mean += delta / (double)s->n;
    s->m2 += delta * (x - s->mean);
    return WEIR_OK;
}

/* Welford run backwards: exact in real arithmetic, and the rounding error
 * it leaves is of the same order as the forward step's. */
static int var_remove(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    var_state *s = sv;
    double x = 0;
    bool skip;
    int rc = num_arg("stddev", &args[0], &x, &skip, err);
    if (rc != WEIR_OK || skip)
        return rc;
    if (s->n <= 1) {
        *s = (var_state){0};
        return WEIR_OK;
    }
    s->n--;
    double mean_old = s->mean - (x - s->mean) / (double)s->n;
    s->m2 -= (x - mean_old) * (x - s->mean);
    if (s->m2 < 0)
        s->m2 = 0;
    s->mean = mean_old;
    return WEIR_OK;
}

static int var_merge(void *sv, const void *ov, sql_eval_error *err)
{
    var_state *s = sv;
    const var_state *o = ov;
    if (o->n == 0)
        return WEIR_OK;
    if (s->n == 0) {
        *s = *o;
        return WEIR_OK;
    }
    double na = (double)s->n, nb = (double)o->n, n = na + nb;
    double delta = o->mean - s->mean;
    s->mean += delta * nb / n;
    s->m2 += o->m2 + delta * delta * na * nb / n;
    s->n += o->n;
    return WEIR_OK;
}

/* The four results differ in the divisor and the square root. */
static int var_out(const var_state *s, bool sample, bool root, rec_value *out)
{
    int64_t min = sample ? 2 : 1;
    if (s->n < min) {
        *out = sql_null();
        return WEIR_OK;
    }
    double v = s->m2 / (double)(sample ? s->n - 1 : s->n);
    *out = sql_double(root ? sqrt(v) : v);
    return WEIR_OK;
}
static int stddev_result(const void *s, rec_value *out, arena *a, sql_eval_error *err)
{
    return var_out(s, true, true, out);
}
static int stddev_pop_result(const void *s, rec_value *out, arena *a, sql_eval_error *err)
{
    return var_out(s, false, true, out);
}
static int variance_result(const void *s, rec_value *out, arena *a, sql_eval_error *err)
{
    return var_out(s, true, false, out);
}
static int var_pop_result(const void *s, rec_value *out, arena *a, sql_eval_error *err)
{
    return var_out(s, false, false, out);
}
static int var_ser(const void *sv, weir_buf *out)
{
    const var_state *s = sv;
    int rc;
    uint8_t *p0 = write_open(out, 25, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    p = put_i64(p, s->n);
    p = put_f64(p, s->mean);
    p = put_f64(p, s->m2);
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}
static int var_deser(void *sv, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    var_state s;
    s.n = get_i64(&r);
    s.mean = get_f64(&r);
    s.m2 = get_f64(&r);
    if (s.n < 0 || s.m2 < 0)
        r.bad = true;
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        *(var_state *)sv = s;
    return rc;
}

/* ======================================================================== */
/* min, max, first, last: one value kept inline                             */
/* ======================================================================== */

typedef struct value_state {
    bool has;                     /* a non-NULL value was seen */
    int64_t ts;                   /* its event time (first/last) */
    rec_value v;                  /* the value; for text, v.u.s.p is NOT used (see text) */
    char text[SQL_AGG_TEXT_MAX];  /* the bytes of a STRING or JSON value */
} value_state;

/* Copies v into the state; text must fit inline. */
static int value_set(value_state *s, const rec_value *v, int64_t ts, const char *name,
                     sql_eval_error *err)
{
    if (v->type == REC_STRING || v->type == REC_JSON) {
        if (v->u.s.len > SQL_AGG_TEXT_MAX)
            return sql_fail(err, WEIR_ETOOBIG, "%s: text longer than %d bytes", name,
                            SQL_AGG_TEXT_MAX);
        memcpy(s->text, v->u.s.p, v->u.s.len);
    }
    s->has = true;
    s->ts = ts;
    s->v = *v;
    if (v->type == REC_STRING || v->type == REC_JSON)
        s->v.u.s.p = NULL; /* the bytes are in s->text; value_get points at them */
    return WEIR_OK;
}

/* The state's value as a rec_value pointing at its inline text. */
static rec_value value_get(const value_state *s)
{
    rec_value v = s->v;
    if (v.type == REC_STRING || v.type == REC_JSON)
        v.u.s.p = s->text;
    return v;
}

static int extreme_add(value_state *s, const rec_value *v, int64_t ts, int want, const char *name,
                       sql_eval_error *err)
{
    if (v->type == REC_NULL)
        return WEIR_OK;
    if (!s->has)
        return value_set(s, v, ts, name, err);
    rec_value cur = value_get(s);
    int cmp;
    bool unknown;
    int rc = sql_value_compare(v, &cur, &cmp, &unknown, err);
    if (rc != WEIR_OK)
        return sql_fail(err, rc, "%s: cannot compare %s with %s", name, rec_type_name(v->type),
                        rec_type_name(cur.type));
    return cmp * want > 0 ? value_set(s, v, ts, name, err) : WEIR_OK;
}

static int min_add(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    return extreme_add(s, &args[0], ts, -1, "min", err);
}
static int max_add(void *s, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    return extreme_add(s, &args[0], ts, 1, "max", err);
}
static int min_merge(void *s, const void *o, sql_eval_error *err)
{
    const value_state *ov = o;
    if (!ov->has)
        return WEIR_OK;
    rec_value v = value_get(ov);
    return extreme_add(s, &v, ov->ts, -1, "min", err);
}
static int max_merge(void *s, const void *o, sql_eval_error *err)
{
    const value_state *ov = o;
    if (!ov->has)
        return WEIR_OK;
    rec_value v = value_get(ov);
    return extreme_add(s, &v, ov->ts, 1, "max", err);
}

/* first keeps the earliest event time (ties: the row added first); last
 * the latest (ties: the row added last). merge(a, b) treats b as added
 * after a, which is how panes are merged in time order. */
static int first_add(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    value_state *s = sv;
    if (args[0].type == REC_NULL || (s->has && ts >= s->ts))
        return WEIR_OK;
    return value_set(s, &args[0], ts, "first", err);
}
static int last_add(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    value_state *s = sv;
    if (args[0].type == REC_NULL || (s->has && ts < s->ts))
        return WEIR_OK;
    return value_set(s, &args[0], ts, "last", err);
}
static int first_merge(void *s, const void *o, sql_eval_error *err)
{
    const value_state *ov = o;
    if (!ov->has)
        return WEIR_OK;
    rec_value v = value_get(ov);
    return first_add(s, &v, ov->ts, err);
}
static int last_merge(void *s, const void *o, sql_eval_error *err)
{
    const value_state *ov = o;
    if (!ov->has)
        return WEIR_OK;
    rec_value v = value_get(ov);
    return last_add(s, &v, ov->ts, err);
}

static int value_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const value_state *s = sv;
    if (!s->has) {
        *out = sql_null();
        return WEIR_OK;
    }
    *out = value_get(s);
    if (out->type == REC_STRING || out->type == REC_JSON) {
        /* A copy: the state keeps changing after the result is taken. */
        char *p = arena_memdup(a, s->text, out->u.s.len ? out->u.s.len : 1);
        if (!p)
            return sql_fail(err, arena_last_error(a), "aggregate result: out of memory");
        out->u.s.p = p;
    }
    return WEIR_OK;
}

static int value_ser(const void *sv, weir_buf *out)
{
    const value_state *s = sv;
    int rc;
    uint8_t *p0 = write_open(out, 2 + 8 + 1 + 4 + SQL_AGG_TEXT_MAX + 8, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    p = put_u8(p, s->has);
    if (s->has) {
        p = put_i64(p, s->ts);
        p = put_u8(p, (uint8_t)s->v.type);
        switch (s->v.type) {
        case REC_BOOL:
            p = put_u8(p, s->v.u.b);
            break;
        case REC_INT:
            p = put_i64(p, s->v.u.i);
            break;
        case REC_DOUBLE:
            p = put_f64(p, s->v.u.d);
            break;
        case REC_STRING:
        case REC_JSON:
            p = put_u32(p, s->v.u.s.len);
            memcpy(p, s->text, s->v.u.s.len);
            p += s->v.u.s.len;
            break;
        default:
            break;
        }
    }
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}

static int value_deser(void *sv, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    value_state *s = sv;
    value_state t;
    memset(&t, 0, sizeof t);
    uint8_t has = get_u8(&r);
    if (has > 1)
        r.bad = true;
    if (has == 1 && !r.bad) {
        t.has = true;
        t.ts = get_i64(&r);
        uint8_t type = get_u8(&r);
        t.v.type = (rec_type)type;
        switch (type) {
        case REC_BOOL: {
            uint8_t b = get_u8(&r);
            r.bad |= b > 1;
            t.v.u.b = b;
            break;
        }
        case REC_INT:
            t.v.u.i = get_i64(&r);
            break;
        case REC_DOUBLE:
            t.v.u.d = get_f64(&r);
            break;
        case REC_STRING:
        case REC_JSON: {
            uint32_t len = get_u32(&r);
            if (len > SQL_AGG_TEXT_MAX || len > r.n) {
                r.bad = true;
                break;
            }
            memcpy(t.text, r.p, len);
            r.p += len;
            r.n -= len;
            t.v.u.s.len = len;
            break;
        }
        default:
            r.bad = true;
        }
    }
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        *s = t;
    return rc;
}

/* ======================================================================== */
/* regressions: co-moments of (y, x), merged with the parallel formula      */
/* ======================================================================== */

typedef struct regr_state {
    int64_t n;       /* rows where both y and x are non-NULL */
    double mx, my;   /* means */
    double m2x, m2y; /* sums of squared deviations */
    double cxy;      /* sum of (x - mx)(y - my) */
} regr_state;

static int regr_args(const rec_value *args, double *y, double *x, bool *skip, sql_eval_error *err)
{
    bool sy, sx;
    int rc = num_arg("regr", &args[0], y, &sy, err);
    if (rc == WEIR_OK)
        rc = num_arg("regr", &args[1], x, &sx, err);
    *skip = rc == WEIR_OK && (sy || sx);
    return rc;
}

static int regr_add(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    regr_state *s = sv;
    double x, y;
    bool skip;
    int rc = regr_args(args, &y, &x, &skip, err);
    if (rc != WEIR_OK || skip)
        return rc;
    s->n++;
    double n = (double)s->n;
    double dx = x - s->mx, dy = y - s->my;
    s->mx += dx / n;
    s->my += dy / n;
    s->m2x += dx * (x - s->mx);
    s->m2y += dy * (y - s->my);
    s->cxy += dx * (y - s->my);
    return WEIR_OK;
}

static int regr_remove(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    regr_state *s = sv;
    double x, y;
    bool skip;
    int rc = regr_args(args, &y, &x, &skip, err);
    if (rc != WEIR_OK || skip)
        return rc;
    if (s->n <= 1) {
        *s = (regr_state){0};
        return WEIR_OK;
    }
    s->n--;
    double n = (double)s->n;
    double mx0 = s->mx - (x - s->mx) / n, my0 = s->my - (y - s->my) / n;
    s->m2x -= (x - mx0) * (x - s->mx);
    s->m2y -= (y - my0) * (y - s->my);
    s->cxy -= (x - mx0) * (y - s->my);
    s->m2x = s->m2x < 0 ? 0 : s->m2x;
    s->m2y = s->m2y < 0 ? 0 : s->m2y;
    s->mx = mx0;
    s->my = my0;
    return WEIR_OK;
}

static int regr_merge(void *sv, const void *ov, sql_eval_error *err)
{
    regr_state *s = sv;
    const regr_state *o = ov;
    if (o->n == 0)
        return WEIR_OK;
    if (s->n == 0) {
        *s = *o;
        return WEIR_OK;
    }
    double na = (double)s->n, nb = (double)o->n, n = na + nb;
    double dx = o->mx - s->mx, dy = o->my - s->my;
    double f = na * nb / n;
    s->m2x += o->m2x + dx * dx * f;
    s->m2y += o->m2y + dy * dy * f;
    s->cxy += o->cxy + dx * dy * f;
    s->mx += dx * nb / n;
    s->my += dy * nb / n;
    s->n += o->n;
    return WEIR_OK;
}

static int slope_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const regr_state *s = sv;
    *out = (s->n < 2 || s->m2x == 0) ? sql_null() : sql_double(s->cxy / s->m2x);
    return WEIR_OK;
}
static int intercept_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const regr_state *s = sv;
    *out = (s->n < 2 || s->m2x == 0) ? sql_null()
                                      : sql_double(s->my - s->cxy / s->m2x * s->mx);
    return WEIR_OK;
}
static int covar_pop_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const regr_state *s = sv;
    *out = s->n < 1 ? sql_null() : sql_double(s->cxy / (double)s->n);
    return WEIR_OK;
}
static int covar_samp_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const regr_state *s = sv;
    *out = s->n < 2 ? sql_null() : sql_double(s->cxy / (double)(s->n - 1));
    return WEIR_OK;
}
static int corr_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const regr_state *s = sv;
    double d = sqrt(s->m2x * s->m2y);
    *out = (s->n < 2 || d == 0) ? sql_null() : sql_double(s->cxy / d);
    return WEIR_OK;
}
static int regr_ser(const void *sv, weir_buf *out)
{
    const regr_state *s = sv;
    int rc;
    uint8_t *p0 = write_open(out, 49, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    p = put_i64(p, s->n);
    p = put_f64(p, s->mx);
    p = put_f64(p, s->my);
    p = put_f64(p, s->m2x);
    p = put_f64(p, s->m2y);
    p = put_f64(p, s->cxy);
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}
static int regr_deser(void *sv, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    regr_state s;
    s.n = get_i64(&r);
    s.mx = get_f64(&r);
    s.my = get_f64(&r);
    s.m2x = get_f64(&r);
    s.m2y = get_f64(&r);
    s.cxy = get_f64(&r);
    if (s.n < 0 || s.m2x < 0 || s.m2y < 0)
        r.bad = true;
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        *(regr_state *)sv = s;
    return rc;
}

/* ======================================================================== */
/* percentile_approx: a merging t-digest with the k1 scale function         */
/* ======================================================================== */

typedef struct centroid {
    double mean;   /* mean of the values it stands for */
    double weight; /* how many values */
} centroid;

typedef struct digest_state {
    uint16_t compression;                  /* delta: bounds centroids to delta + 1 */
    uint32_t nc;                           /* centroids in use */
    uint32_t nb;                           /* values waiting in buf */
    double p;                              /* the quantile asked for, in [0, 1] */
    double min, max;                       /* exact extremes (valid when there is data) */
    centroid c[SQL_PCT_MAX_CENTROIDS];     /* sorted by mean */
    double buf[SQL_PCT_BUFFER];            /* unmerged values */
} digest_state;

#define DIGEST_DEFAULT_COMPRESSION 100
#define DIGEST_MIN_COMPRESSION 20

/* k1(q) = delta / (2 pi) * asin(2q - 1), and its inverse. A centroid may
 * span at most one unit of k, which makes centroids near q = 0 and 1 tiny. */
static double k1(double q, double delta)
{
    return delta / (2 * M_PI) * asin(2 * q - 1);
}
static double k1_inv(double k, double delta)
{
    double x = 2 * M_PI * k / delta;
    if (x >= M_PI / 2)
        return 1.0;
    return (sin(x) + 1) / 2;
}

static int cmp_centroid(const void *a, const void *b)
{
    double x = ((const centroid *)a)->mean, y = ((const centroid *)b)->mean;
    return x < y ? -1 : x > y;
}

/* Sorts items[0..n) and merges them greedily into s->c: the heart of the
 * merging digest. The greedy rule leaves every pair of neighbours spanning
 * more than one unit of k, and k runs over delta / 2 units, so at most
 * delta + 1 centroids come out; the capacity check is belt and braces. */
static void digest_build(digest_state *s, centroid *items, size_t n)
{
    qsort(items, n, sizeof *items, cmp_centroid);
    double total = 0;
    for (size_t i = 0; i < n; i++)
        total += items[i].weight;
    double delta = s->compression;
    s->nc = 0;
    if (n == 0)
        return;
    double so_far = 0;
    double limit = total * k1_inv(k1(0, delta) + 1, delta);
    centroid cur = items[0];
    for (size_t i = 1; i < n; i++) {
        double proposed = so_far + cur.weight + items[i].weight;
        if (proposed <= limit || s->nc + 1 >= SQL_PCT_MAX_CENTROIDS) {
            cur.weight += items[i].weight;
            cur.mean += (items[i].mean - cur.mean) * items[i].weight / cur.weight;
        } else {
            so_far += cur.weight;
            s->c[s->nc++] = cur;
            limit = total * k1_inv(k1(so_far / total, delta) + 1, delta);
            cur = items[i];
        }
    }
    s->c[s->nc++] = cur;
}

/* Folds the buffer into the centroids. */
static void digest_flush(digest_state *s)
{
    if (s->nb == 0)
        return;
    centroid items[SQL_PCT_MAX_CENTROIDS + SQL_PCT_BUFFER];
    size_t n = 0;
    for (uint32_t i = 0; i < s->nc; i++)
        items[n++] = s->c[i];
    for (uint32_t i = 0; i < s->nb; i++)
        items[n++] = (centroid){s->buf[i], 1};
    s->nb = 0;
    digest_build(s, items, n);
}

static int digest_init(void *sv, const rec_value *params, int n, sql_eval_error *err)
{
    digest_state *s = sv;
    memset(s, 0, sizeof *s);
    s->compression = DIGEST_DEFAULT_COMPRESSION;
    if (n < 1 || !sql_is_number(&params[0]) || !(sql_num(&params[0]) >= 0) ||
        sql_num(&params[0]) > 1)
        return sql_fail(err, WEIR_EINVAL, "percentile_approx: p must be a number in [0, 1]");
    s->p = sql_num(&params[0]);
    if (n > 1) {
        if (params[1].type != REC_INT || params[1].u.i < DIGEST_MIN_COMPRESSION ||
            params[1].u.i > SQL_PCT_MAX_COMPRESSION)
            return sql_fail(err, WEIR_EINVAL,
                            "percentile_approx: compression must be an int in [%d, %d]",
                            DIGEST_MIN_COMPRESSION, SQL_PCT_MAX_COMPRESSION);
        s->compression = (uint16_t)params[1].u.i;
    }
    return WEIR_OK;
}

static int digest_add(void *sv, const rec_value *args, int64_t ts, sql_eval_error *err)
{
    digest_state *s = sv;
    double x = 0;
    bool skip;
    int rc = num_arg("percentile_approx", &args[0], &x, &skip, err);
    if (rc != WEIR_OK || skip || isnan(x))
        return rc; /* NaN has no rank: skipped like NULL */
    if (s->nc == 0 && s->nb == 0) {
        s->min = s->max = x;
    } else {
        s->min = x < s->min ? x : s->min;
        s->max = x > s->max ? x : s->max;
    }
    s->buf[s->nb++] = x;
    if (s->nb == SQL_PCT_BUFFER)
        digest_flush(s);
    return WEIR_OK;
}

static int digest_merge(void *sv, const void *ov, sql_eval_error *err)
{
    digest_state *s = sv;
    const digest_state *o = ov;
    if (o->nc == 0 && o->nb == 0)
        return WEIR_OK;
    if (s->nc == 0 && s->nb == 0) {
        s->min = o->min;
        s->max = o->max;
    } else {
        s->min = o->min < s->min ? o->min : s->min;
        s->max = o->max > s->max ? o->max : s->max;
    }
    centroid items[2 * (SQL_PCT_MAX_CENTROIDS + SQL_PCT_BUFFER)];
    size_t n = 0;
    const digest_state *parts[2] = {s, o};
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < parts[k]->nc; i++)
            items[n++] = parts[k]->c[i];
        for (uint32_t i = 0; i < parts[k]->nb; i++)
            items[n++] = (centroid){parts[k]->buf[i], 1};
    }
    s->nb = 0;
    digest_build(s, items, n);
    return WEIR_OK;
}

/* The value at rank q * total: centroids stand at their centres of mass,
 * with linear interpolation between neighbours and out to the exact min
 * and max at the ends. */
static double digest_quantile(const digest_state *s, double q)
{
    const centroid *c = s->c;
    uint32_t n = s->nc;
    double total = 0;
    for (uint32_t i = 0; i < n; i++)
        total += c[i].weight;
    if (n == 1)
        return c[0].weight == 1 ? c[0].mean : s->min + q * (s->max - s->min);
    double idx = q * total;
    if (idx < c[0].weight / 2) {
        if (c[0].weight == 1)
            return s->min;
        return s->min + idx / (c[0].weight / 2) * (c[0].mean - s->min);
    }
    double last_half = c[n - 1].weight / 2;
    if (idx >= total - last_half) {
        if (c[n - 1].weight == 1)
            return s->max;
        double t = (idx - (total - last_half)) / last_half;
        return c[n - 1].mean + t * (s->max - c[n - 1].mean);
    }
    double cum = c[0].weight / 2;
    for (uint32_t i = 0; i + 1 < n; i++) {
        double dw = (c[i].weight + c[i + 1].weight) / 2;
        if (idx < cum + dw) {
            double t = (idx - cum) / dw;
            return c[i].mean + t * (c[i + 1].mean - c[i].mean);
        }
        cum += dw;
    }
    return s->max;
}

static int digest_result(const void *sv, rec_value *out, arena *a, sql_eval_error *err)
{
    const digest_state *s = sv;
    if (s->nc == 0 && s->nb == 0) {
        *out = sql_null();
        return WEIR_OK;
    }
    if (s->nb == 0) {
        *out = sql_double(digest_quantile(s, s->p));
        return WEIR_OK;
    }
    /* Flush a copy: result must leave the state as it is. */
    digest_state *t = malloc(sizeof *t);
    if (!t)
        return sql_fail(err, WEIR_ENOMEM, "percentile_approx: out of memory");
    memcpy(t, s, sizeof *t);
    digest_flush(t);
    *out = sql_double(digest_quantile(t, t->p));
    free(t);
    return WEIR_OK;
}

static int digest_ser(const void *sv, weir_buf *out)
{
    const digest_state *s = sv;
    int rc;
    size_t max = 1 + 2 + 8 * 3 + 4 * 2 + 16 * (size_t)s->nc + 8 * (size_t)s->nb;
    uint8_t *p0 = write_open(out, max, &rc), *p = p0;
    if (!p)
        return rc;
    p = put_u8(p, FORMAT_V1);
    *p++ = (uint8_t)s->compression;
    *p++ = (uint8_t)(s->compression >> 8);
    p = put_f64(p, s->p);
    p = put_f64(p, s->min);
    p = put_f64(p, s->max);
    p = put_u32(p, s->nc);
    p = put_u32(p, s->nb);
    for (uint32_t i = 0; i < s->nc; i++) {
        p = put_f64(p, s->c[i].mean);
        p = put_f64(p, s->c[i].weight);
    }
    for (uint32_t i = 0; i < s->nb; i++)
        p = put_f64(p, s->buf[i]);
    buf_commit(out, (size_t)(p - p0));
    return WEIR_OK;
}

static int digest_deser(void *sv, const uint8_t *p, size_t n)
{
    reader r = read_open(p, n);
    digest_state *t = malloc(sizeof *t);
    if (!t)
        return WEIR_ENOMEM;
    memset(t, 0, sizeof *t);
    t->compression = (uint16_t)get_le(&r, 2);
    t->p = get_f64(&r);
    t->min = get_f64(&r);
    t->max = get_f64(&r);
    t->nc = get_u32(&r);
    t->nb = get_u32(&r);
    if (t->compression < DIGEST_MIN_COMPRESSION || t->compression > SQL_PCT_MAX_COMPRESSION ||
        !(t->p >= 0 && t->p <= 1) || t->nc > SQL_PCT_MAX_CENTROIDS || t->nb >= SQL_PCT_BUFFER)
        r.bad = true;
    double prev = -INFINITY;
    for (uint32_t i = 0; !r.bad && i < t->nc; i++) {
        t->c[i].mean = get_f64(&r);
        t->c[i].weight = get_f64(&r);
        if (!(t->c[i].weight >= 1) || isnan(t->c[i].mean) || t->c[i].mean < prev)
            r.bad = true;
        prev = t->c[i].mean;
    }
    for (uint32_t i = 0; !r.bad && i < t->nb; i++) {
        t->buf[i] = get_f64(&r);
        r.bad |= isnan(t->buf[i]) != 0;
    }
    if ((t->nc || t->nb) && !(t->min <= t->max))
        r.bad = true;
    int rc = read_close(&r);
    if (rc == WEIR_OK)
        memcpy(sv, t, sizeof *t);
    free(t);
    return rc;
}

/* ======================================================================== */
/* the table                                                                */
/* ======================================================================== */

/* Every state but the digest starts as all zero bytes; init clears it. */
static int zero_init(void *state, size_t size)
{
    memset(state, 0, size);
    return WEIR_OK;
}
static int count_init(void *s, const rec_value *params, int n, sql_eval_error *err)
{
    return zero_init(s, sizeof(count_state));
}
static int sum_init(void *s, const rec_value *params, int n, sql_eval_error *err)
{
    return zero_init(s, sizeof(sum_state));
}
static int avg_init(void *s, const rec_value *params, int n, sql_eval_error *err)
{
    return zero_init(s, sizeof(avg_state));
}
static int var_init(void *s, const rec_value *params, int n, sql_eval_error *err)
{
    return zero_init(s, sizeof(var_state));
}
static int value_init(void *s, const rec_value *params, int n, sql_eval_error *err)
{
    return zero_init(s, sizeof(value_state));
}
static int regr_init(void *s, const rec_value *params, int n, sql_eval_error *err)
{
    return zero_init(s, sizeof(regr_state));
}

#define COUNT_OPS count_init, count_add, count_remove, count_merge, count_result, count_ser, count_deser
#define STAR_OPS count_init, count_star_add, count_star_remove, count_merge, count_result, count_ser, count_deser
#define VAR_OPS(res) var_init, var_add, var_remove, var_merge, res, var_ser, var_deser
#define REGR_OPS(res) regr_init, regr_add, regr_remove, regr_merge, res, regr_ser, regr_deser
#define VALUE_OPS(add, merge) value_init, add, NULL, merge, value_result, value_ser, value_deser
#define DIGEST_OPS digest_init, digest_add, NULL, digest_merge, digest_result, digest_ser, digest_deser

static const sql_agg aggs[] = {
    {"count", 1, 0, 0, sizeof(count_state), REC_INT, COUNT_OPS, "count(x): non-NULL values"},
    {"count_star", 0, 0, 0, sizeof(count_state), REC_INT, STAR_OPS, "count(*): rows"},
    {"sum", 1, 0, 0, sizeof(sum_state), REC_NULL,
     sum_init, sum_add, sum_remove, sum_merge, sum_result, sum_ser, sum_deser,
     "sum(x): INT while exact, DOUBLE after a DOUBLE or an overflow"},
    {"avg", 1, 0, 0, sizeof(avg_state), REC_DOUBLE,
     avg_init, avg_add, avg_remove, avg_merge, avg_result, avg_ser, avg_deser, "avg(x): mean"},
    {"mean", 1, 0, 0, sizeof(avg_state), REC_DOUBLE,
     avg_init, avg_add, avg_remove, avg_merge, avg_result, avg_ser, avg_deser, "mean(x): same as avg"},
    {"min", 1, 0, 0, sizeof(value_state), REC_NULL, VALUE_OPS(min_add, min_merge), "min(x): smallest value"},
    {"max", 1, 0, 0, sizeof(value_state), REC_NULL, VALUE_OPS(max_add, max_merge), "max(x): largest value"},
    {"first", 1, 0, 0, sizeof(value_state), REC_NULL, VALUE_OPS(first_add, first_merge),
     "first(x): value with the earliest event time"},
    {"last", 1, 0, 0, sizeof(value_state), REC_NULL, VALUE_OPS(last_add, last_merge),
     "last(x): value with the latest event time"},
    {"stddev", 1, 0, 0, sizeof(var_state), REC_DOUBLE, VAR_OPS(stddev_result),
     "stddev(x): sample standard deviation"},
    {"stddev_samp", 1, 0, 0, sizeof(var_state), REC_DOUBLE, VAR_OPS(stddev_result),
     "stddev_samp(x): same as stddev"},
    {"stddev_pop", 1, 0, 0, sizeof(var_state), REC_DOUBLE, VAR_OPS(stddev_pop_result),
     "stddev_pop(x): population standard deviation"},
    {"variance", 1, 0, 0, sizeof(var_state), REC_DOUBLE, VAR_OPS(variance_result),
     "variance(x): sample variance"},
    {"var_samp", 1, 0, 0, sizeof(var_state), REC_DOUBLE, VAR_OPS(variance_result),
     "var_samp(x): same as variance"},
    {"var_pop", 1, 0, 0, sizeof(var_state), REC_DOUBLE, VAR_OPS(var_pop_result),
     "var_pop(x): population variance"},
    {"regr_slope", 2, 0, 0, sizeof(regr_state), REC_DOUBLE, REGR_OPS(slope_result),
     "regr_slope(y, x): least-squares slope"},
    {"regr_intercept", 2, 0, 0, sizeof(regr_state), REC_DOUBLE, REGR_OPS(intercept_result),
     "regr_intercept(y, x): least-squares intercept"},
    {"covar_pop", 2, 0, 0, sizeof(regr_state), REC_DOUBLE, REGR_OPS(covar_pop_result),
     "covar_pop(y, x): population covariance"},
    {"covar_samp", 2, 0, 0, sizeof(regr_state), REC_DOUBLE, REGR_OPS(covar_samp_result),
     "covar_samp(y, x): sample covariance"},
    {"corr", 2, 0, 0, sizeof(regr_state), REC_DOUBLE, REGR_OPS(corr_result),
     "corr(y, x): Pearson correlation"},
    {"percentile_approx", 1, 1, 2, sizeof(digest_state), REC_DOUBLE, DIGEST_OPS,
     "percentile_approx(x, p[, compression]): approximate p-quantile (t-digest)"},
    {"approx_percentile", 1, 1, 2, sizeof(digest_state), REC_DOUBLE, DIGEST_OPS,
     "approx_percentile(x, p[, compression]): same as percentile_approx"},
};

const sql_agg *sql_agg_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof aggs / sizeof aggs[0]; i++)
        if (strlen(aggs[i].name) == len && strncasecmp(aggs[i].name, name, len) == 0)
            return &aggs[i];
    return NULL;
}

const sql_agg *sql_agg_table(size_t *n)
{
    *n = sizeof aggs / sizeof aggs[0];
    return aggs;
}
