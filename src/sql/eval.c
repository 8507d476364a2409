/* eval.c -- see eval.h. */
#include "sql/eval.h"
#include "base/err.h"
#include "history/history.h"
#include "sql/agg.h"
#include "sql/functions.h"

#include <string.h>
#include <strings.h>

static bool name_is(const char *name, const char *word)
{
    return strcasecmp(name, word) == 0;
}

bool sql_node_is_agg(const sql_node *e)
{
    if (!e || e->kind != SQL_N_CALL)
        return false;
    if (e->star)
        return true;
    return sql_agg_find(e->name, strlen(e->name)) != NULL;
}

static bool str_eq_opt(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

bool sql_node_equal(const sql_node *a, const sql_node *b)
{
    if (a == b)
        return true;
    if (!a || !b || a->kind != b->kind || a->op != b->op || a->n_kids != b->n_kids ||
        a->negated != b->negated || a->distinct != b->distinct || a->star != b->star ||
        a->has_operand != b->has_operand || a->has_else != b->has_else || a->type != b->type)
        return false;
    switch (a->kind) {
    case SQL_N_LITERAL:
        if (a->value.type != b->value.type)
            return false;
        if (a->value.type == REC_STRING || a->value.type == REC_JSON)
            return a->value.u.s.len == b->value.u.s.len &&
                   memcmp(a->value.u.s.p, b->value.u.s.p, a->value.u.s.len) == 0;
        return rec_value_equal(&a->value, &b->value);
    case SQL_N_DURATION:
    case SQL_N_TIMESTAMP:
        return a->ns == b->ns;
    case SQL_N_IDENT:
        if (a->qualifier && b->qualifier && strcmp(a->qualifier, b->qualifier))
            return false;
        return strcmp(a->name, b->name) == 0;
    case SQL_N_CALL:
        if (strcasecmp(a->name, b->name))
            return false;
        if ((a->filter == NULL) != (b->filter == NULL))
            return false;
        if (a->filter && !sql_node_equal(a->filter, b->filter))
            return false;
        break;
    case SQL_N_STAR:
        return str_eq_opt(a->qualifier, b->qualifier);
    default:
        break;
    }
    for (uint32_t i = 0; i < a->n_kids; i++)
        if (!sql_node_equal(a->kids[i], b->kids[i]))
            return false;
    return true;
}

/* ---- LIKE ---------------------------------------------------------------- */

static size_t utf8_len(unsigned char c)
{
    if (c < 0x80)
        return 1;
    if ((c & 0xE0) == 0xC0)
        return 2;
    if ((c & 0xF0) == 0xE0)
        return 3;
    if ((c & 0xF8) == 0xF0)
        return 4;
    return 1;
}

bool sql_like(const char *s, size_t sn, const char *p, size_t pn)
{
    /* Iterative matcher with one backtrack point for the last %. */
    size_t si = 0, pi = 0, star_p = (size_t)-1, star_s = 0;
    while (si < sn) {
        if (pi < pn && p[pi] == '_') {
            size_t l = utf8_len((unsigned char)s[si]);
            si += l > sn - si ? sn - si : l;
            pi++;
        } else if (pi < pn && p[pi] == '%') {
            star_p = ++pi;
            star_s = si;
        } else if (pi < pn && p[pi] == s[si]) {
            si++;
            pi++;
        } else if (star_p != (size_t)-1) {
            size_t l = utf8_len((unsigned char)s[star_s]);
            star_s += l > sn - star_s ? sn - star_s : l;
            si = star_s;
            pi = star_p;
        } else {
            return false;
        }
    }
    while (pi < pn && p[pi] == '%')
        pi++;
    return pi == pn;
}

/* ---- evaluation ---------------------------------------------------------- */

static int eval(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
                sql_eval_error *err);

static sql_tri tri_of(const rec_value *v)
{
    return sql_value_truthy(v);
}

static rec_value tri_value(sql_tri t)
{
    return t == SQL_UNKNOWN ? sql_null() : sql_bool(t == SQL_TRUE);
}

int sql_eval_cond(const sql_node *e, const sql_row *row, sql_tri *out, arena *a,
                  sql_eval_error *err)
{
    rec_value v;
    int rc = eval(e, row, &v, a, err);
    if (rc)
        return rc;
    *out = tri_of(&v);
    return WEIR_OK;
}

static int eval_ident(const sql_node *e, const sql_row *row, rec_value *out,
                      sql_eval_error *err)
{
    const char *name = e->name;
    if (!row->rec) {
        if (!e->qualifier)
            for (uint32_t i = 0; i < row->n_cols; i++)
                if (row->col_names[i] && strcmp(row->col_names[i], name) == 0) {
                    *out = row->col_vals[i];
                    return WEIR_OK;
                }
        return sql_fail(err, WEIR_EINVAL,
                        "column \"%s\" must appear in GROUP BY or be used in an aggregate", name);
    }
    bool pseudo_only = name[0] == '_';
    if (row->ts_field && strcmp(name, row->ts_field) == 0) {
        *out = sql_int(row->ts);
        return WEIR_OK;
    }
    if (!pseudo_only) {
        const rec_value *v = record_get(row->rec, name, strlen(name));
        if (v) {
            *out = *v;
            return WEIR_OK;
        }
    }
    const char *p = pseudo_only ? name + 1 : name;
    if (name_is(p, "ts")) {
        *out = sql_int(row->ts);
        return WEIR_OK;
    }
    if (name_is(p, "key")) {
        *out = row->key ? sql_text(row->key, row->key_len) : sql_null();
        return WEIR_OK;
    }
    if (pseudo_only) {
        const rec_value *v = record_get(row->rec, name, strlen(name));
        if (v) {
            *out = *v;
            return WEIR_OK;
        }
    }
    *out = sql_null();
    return WEIR_OK;
}

static int compare_op(sql_op op, const rec_value *l, const rec_value *r, rec_value *out,
                      sql_eval_error *err)
{
    int cmp = 0;
    bool unknown = false;
    int rc = sql_value_compare(l, r, &cmp, &unknown, err);
    if (rc)
        return rc;
    if (unknown) {
        *out = sql_null();
        return WEIR_OK;
    }
    bool b = false;
    switch (op) {
    case SQL_OP_EQ: b = cmp == 0; break;
    case SQL_OP_NE: b = cmp != 0; break;
    case SQL_OP_LT: b = cmp < 0; break;
    case SQL_OP_LE: b = cmp <= 0; break;
    case SQL_OP_GT: b = cmp > 0; break;
    case SQL_OP_GE: b = cmp >= 0; break;
    default: return sql_fail(err, WEIR_EINTERNAL, "not a comparison");
    }
    *out = sql_bool(b);
    return WEIR_OK;
}

static int call_fn(const char *name, const rec_value *args, int n, rec_value *out, arena *a,
                   sql_eval_error *err)
{
    const sql_function *f = sql_function_find(name, strlen(name));
    if (!f)
        return sql_fail(err, WEIR_EINVAL, "unknown function %s", name);
    if (n < f->min_args || n > f->max_args)
        return sql_fail(err, WEIR_EINVAL, "%s: wrong number of arguments (%d)", name, n);
    return f->fn(args, n, out, a, err);
}

static int eval_binary(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
                       sql_eval_error *err)
{
    rec_value l, r;
    int rc;
    if (e->op == SQL_OP_AND || e->op == SQL_OP_OR) {
        if ((rc = eval(e->kids[0], row, &l, a, err)))
            return rc;
        sql_tri tl = tri_of(&l);
        if (e->op == SQL_OP_AND && tl == SQL_FALSE) {
            *out = sql_bool(false);
            return WEIR_OK;
        }
        if (e->op == SQL_OP_OR && tl == SQL_TRUE) {
            *out = sql_bool(true);
            return WEIR_OK;
        }
        if ((rc = eval(e->kids[1], row, &r, a, err)))
            return rc;
        sql_tri tr = tri_of(&r);
        if (e->op == SQL_OP_AND)
            *out = tr == SQL_FALSE ? sql_bool(false)
                   : (tl == SQL_TRUE && tr == SQL_TRUE) ? sql_bool(true) : sql_null();
        else
            *out = tr == SQL_TRUE ? sql_bool(true)
                   : (tl == SQL_FALSE && tr == SQL_FALSE) ? sql_bool(false) : sql_null();
        return WEIR_OK;
    }
    if ((rc = eval(e->kids[0], row, &l, a, err)) || (rc = eval(e->kids[1], row, &r, a, err)))
        return rc;
    switch (e->op) {
    case SQL_OP_ADD: return sql_value_add(&l, &r, out, err);
    case SQL_OP_SUB: return sql_value_sub(&l, &r, out, err);
    case SQL_OP_MUL: return sql_value_mul(&l, &r, out, err);
    case SQL_OP_DIV: return sql_value_div(&l, &r, out, err);
    case SQL_OP_MOD: return sql_value_mod(&l, &r, out, err);
    case SQL_OP_EQ:
    case SQL_OP_NE:
    case SQL_OP_LT:
    case SQL_OP_LE:
    case SQL_OP_GT:
    case SQL_OP_GE: return compare_op(e->op, &l, &r, out, err);
    case SQL_OP_JSON_GET:
    case SQL_OP_JSON_TEXT: {
        rec_value args[2] = {l, r};
        return call_fn(e->op == SQL_OP_JSON_GET ? "json_get" : "json_get_text", args, 2, out, a,
                       err);
    }
    default: return sql_fail(err, WEIR_EINTERNAL, "unknown operator %s", sql_op_name(e->op));
    }
}

static rec_type cast_target(sql_type t)
{
    switch (t) {
    case SQL_TYPE_DOUBLE: return REC_DOUBLE;
    case SQL_TYPE_INT: return REC_INT;
    case SQL_TYPE_BOOL: return REC_BOOL;
    case SQL_TYPE_TEXT: return REC_STRING;
    case SQL_TYPE_TIMESTAMP: return REC_INT;
    case SQL_TYPE_JSON: return REC_JSON;
    default: return REC_NULL;
    }
}

static int eval_cast(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
                     sql_eval_error *err)
{
    rec_value v;
    int rc = eval(e->kids[0], row, &v, a, err);
    if (rc)
        return rc;
    if (e->type == SQL_TYPE_TIMESTAMP && v.type == REC_STRING) {
        char *s = arena_strdup(a, v.u.s.p, v.u.s.len);
        if (!s)
            return sql_fail(err, arena_last_error(a), "out of query memory");
        int64_t t;
        if (history_parse_time(s, row->now_ns, &t))
            return sql_fail(err, WEIR_EINVAL, "CAST: '%.60s' is not a timestamp", s);
        *out = sql_int(t);
        return WEIR_OK;
    }
    return sql_cast(&v, cast_target(e->type), out, a, err);
}

static int eval_case(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
                     sql_eval_error *err)
{
    uint32_t i = 0, n = e->n_kids;
    rec_value operand = sql_null();
    int rc;
    if (e->has_operand) {
        if ((rc = eval(e->kids[0], row, &operand, a, err)))
            return rc;
        i = 1;
    }
    uint32_t end = e->has_else ? n - 1 : n;
    for (; i + 2 <= end; i += 2) {
        rec_value w;
        if ((rc = eval(e->kids[i], row, &w, a, err)))
            return rc;
        bool hit;
        if (e->has_operand) {
            int cmp = 0;
            bool unknown = false;
            if ((rc = sql_value_compare(&operand, &w, &cmp, &unknown, err)))
                return rc;
            hit = !unknown && cmp == 0;
        } else {
            hit = tri_of(&w) == SQL_TRUE;
        }
        if (hit)
            return eval(e->kids[i + 1], row, out, a, err);
    }
    if (e->has_else)
        return eval(e->kids[n - 1], row, out, a, err);
    *out = sql_null();
    return WEIR_OK;
}

bool sql_is_state_fn(const char *name, size_t len)
{
    static const char *const names[] = {"changes", "lag", "time_since_change", "changed_at"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == len && strncasecmp(name, names[i], len) == 0)
            return true;
    return false;
}

static int eval_call(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
                     sql_eval_error *err)
{
    for (uint32_t i = 0; i < row->n_pre; i++)
        if (row->pre_nodes[i] == e) {
            *out = row->pre_vals[i];
            return WEIR_OK;
        }
    if (sql_is_state_fn(e->name, strlen(e->name)))
        return sql_fail(err, WEIR_EINVAL,
                        "%s() keeps per-key state across records: it is only available in "
                        "continuous rules (CREATE RULE)",
                        e->name);
    if (sql_node_is_agg(e)) {
        for (uint32_t i = 0; i < row->n_aggs; i++)
            if (row->agg_nodes[i] == e) {
                *out = row->agg_vals[i];
                return WEIR_OK;
            }
        return sql_fail(err, WEIR_EINVAL, "aggregate %s is not allowed here", e->name);
    }
    if (name_is(e->name, "now") && e->n_kids == 0) {
        *out = sql_int(row->now_ns);
        return WEIR_OK;
    }
    rec_value args_small[8];
    rec_value *args = args_small;
    if (e->n_kids > 8) {
        args = arena_alloc(a, e->n_kids * sizeof(rec_value));
        if (!args)
            return sql_fail(err, arena_last_error(a), "out of query memory");
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = eval(e->kids[i], row, &args[i], a, err);
        if (rc)
            return rc;
    }
    return call_fn(e->name, args, (int)e->n_kids, out, a, err);
}

static int eval(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
                sql_eval_error *err)
{
    int rc;
    rec_value v, lo, hi;
    if (!row->rec && e->kind != SQL_N_LITERAL)
        for (uint32_t i = 0; i < row->n_groups; i++)
            if (sql_node_equal(e, row->group_nodes[i])) {
                *out = row->group_vals[i];
                return WEIR_OK;
            }
    switch (e->kind) {
    case SQL_N_LITERAL:
        *out = e->value;
        return WEIR_OK;
    case SQL_N_DURATION:
    case SQL_N_TIMESTAMP:
        *out = sql_int(e->ns);
        return WEIR_OK;
    case SQL_N_IDENT:
        return eval_ident(e, row, out, err);
    case SQL_N_STAR:
        return sql_fail(err, WEIR_EINVAL, "* is only allowed in the select list");
    case SQL_N_UNARY:
        if ((rc = eval(e->kids[0], row, &v, a, err)))
            return rc;
        if (e->op == SQL_OP_NEG)
            return sql_value_neg(&v, out, err);
        {
            sql_tri t = tri_of(&v);
            *out = t == SQL_UNKNOWN ? sql_null() : sql_bool(t == SQL_FALSE);
        }
        return WEIR_OK;
    case SQL_N_BINARY:
        return eval_binary(e, row, out, a, err);
    case SQL_N_IS_NULL:
        if ((rc = eval(e->kids[0], row, &v, a, err)))
            return rc;
        *out = sql_bool((v.type == REC_NULL) != e->negated);
        return WEIR_OK;
    case SQL_N_BETWEEN: {
        if ((rc = eval(e->kids[0], row, &v, a, err)) || (rc = eval(e->kids[1], row, &lo, a, err)) ||
            (rc = eval(e->kids[2], row, &hi, a, err)))
            return rc;
        rec_value c1, c2;
        if ((rc = compare_op(SQL_OP_GE, &v, &lo, &c1, err)) ||
            (rc = compare_op(SQL_OP_LE, &v, &hi, &c2, err)))
            return rc;
        sql_tri t1 = tri_of(&c1), t2 = tri_of(&c2);
        sql_tri t = (t1 == SQL_FALSE || t2 == SQL_FALSE) ? SQL_FALSE
                    : (t1 == SQL_TRUE && t2 == SQL_TRUE) ? SQL_TRUE : SQL_UNKNOWN;
        if (e->negated && t != SQL_UNKNOWN)
            t = t == SQL_TRUE ? SQL_FALSE : SQL_TRUE;
        *out = tri_value(t);
        return WEIR_OK;
    }
    case SQL_N_IN: {
        if ((rc = eval(e->kids[0], row, &v, a, err)))
            return rc;
        sql_tri t = v.type == REC_NULL ? SQL_UNKNOWN : SQL_FALSE;
        for (uint32_t i = 1; i < e->n_kids && t != SQL_TRUE && v.type != REC_NULL; i++) {
            rec_value item, c;
            if ((rc = eval(e->kids[i], row, &item, a, err)) ||
                (rc = compare_op(SQL_OP_EQ, &v, &item, &c, err)))
                return rc;
            if (c.type == REC_NULL)
                t = SQL_UNKNOWN;
            else if (c.u.b)
                t = SQL_TRUE;
        }
        if (e->negated && t != SQL_UNKNOWN)
            t = t == SQL_TRUE ? SQL_FALSE : SQL_TRUE;
        *out = tri_value(t);
        return WEIR_OK;
    }
    case SQL_N_LIKE: {
        rec_value p;
        if ((rc = eval(e->kids[0], row, &v, a, err)) || (rc = eval(e->kids[1], row, &p, a, err)))
            return rc;
        if (v.type == REC_NULL || p.type == REC_NULL) {
            *out = sql_null();
            return WEIR_OK;
        }
        if (v.type != REC_STRING || p.type != REC_STRING)
            return sql_fail(err, WEIR_EINVAL, "LIKE: expected text, got %s and %s",
                            rec_type_name(v.type), rec_type_name(p.type));
        bool m = sql_like(v.u.s.p, v.u.s.len, p.u.s.p, p.u.s.len);
        *out = sql_bool(m != e->negated);
        return WEIR_OK;
    }
    case SQL_N_CASE:
        return eval_case(e, row, out, a, err);
    case SQL_N_CAST:
        return eval_cast(e, row, out, a, err);
    case SQL_N_CALL:
        return eval_call(e, row, out, a, err);
    default:
        return sql_fail(err, WEIR_EINTERNAL, "cannot evaluate a %s", sql_node_kind_name(e->kind));
    }
}

int sql_eval(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
             sql_eval_error *err)
{
    return eval(e, row, out, a, err);
}
