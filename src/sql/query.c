/* query.c -- see query.h. */
#include "sql/query.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "record/schema.h"
#include "sql/agg.h"
#include "sql/eval.h"
#include "sql/functions.h"
#include "sql/parser.h"
#include "sql/plan.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define SCRATCH_MAX (64u << 20)
#define STATE_ALIGN 16

typedef struct agg_slot {
    const sql_node *node;
    const sql_agg *agg;
    rec_value params[SQL_PLAN_MAX_PARAMS];
    int n_params;
    size_t offset;
} agg_slot;

typedef struct out_col {
    const sql_node *expr; /* NULL for * */
    const char *name;
} out_col;

typedef struct order_key {
    const sql_node *expr; /* when col < 0 */
    int col;              /* output column index, or -1 */
    bool desc;
} order_key;

typedef struct group {
    uint64_t hash;
    rec_value *vals;
    unsigned char *state;
    struct group *next; /* creation order */
} group;

typedef struct outrow {
    rec_value *vals; /* n_fixed columns then n_keys sort keys */
    rec_value *star; /* n_star values of the * columns */
    uint32_t n_star;
    int64_t t0;
    uint64_t t1, t2; /* tie-break */
} outrow;

typedef struct query {
    ingest *in;
    sql_select *sel;
    stream *st;
    arena plan;    /* parse tree, plan, groups */
    arena scratch; /* per record / group */
    int64_t now_ns;
    sql_error *perr;

    out_col *cols;
    uint32_t n_cols, n_fixed;
    bool has_star;
    uint32_t star_pos; /* position of the (single) star among the items */
    char **star_names;
    uint32_t n_star_names;

    const sql_node **group_nodes;
    uint32_t n_group;
    agg_slot *aggs;
    uint32_t n_aggs, cap_aggs;
    const sql_node **agg_nodes;
    size_t state_size;
    bool grouped;

    order_key *order;
    uint32_t n_order;
    size_t limit;

    int64_t from, to;
    bool ts_prunable;
    const char *ts_field; /* the stream's event-time field, read as the event time */

    /* groups */
    group **table;
    size_t table_cap, n_groups;
    group *first, *last;

    /* result rows: a max-heap by badness when full */
    outrow **rows;
    size_t n_rows;

    uint64_t scanned;
} query;

/* ---- errors -------------------------------------------------------------- */

static int fail_at(query *q, int code, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail_at(query *q, int code, int line, int column, const char *fmt, ...)
{
    if (q->perr) {
        q->perr->line = line;
        q->perr->column = column;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->perr->msg, sizeof(q->perr->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static int fail_node(query *q, int code, const sql_node *n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_node(query *q, int code, const sql_node *n, const char *fmt, ...)
{
    if (q->perr) {
        q->perr->line = n ? n->line : 0;
        q->perr->column = n ? n->column : 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(q->perr->msg, sizeof(q->perr->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

static int fail_mem(query *q, arena *a)
{
    int rc = arena_last_error(a);
    if (rc == WEIR_OK)
        rc = WEIR_ENOMEM;
    return fail_at(q, rc, 0, 0, rc == WEIR_ETOOBIG ? "the query needs more memory than allowed"
                                                   : "out of memory");
}

/* ---- planning ------------------------------------------------------------ */

static bool is_name(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Checks names, functions, qualifiers; refuses aggregates unless allowed
 * (and nested aggregates always). */
static int check_expr(query *q, const sql_node *e, bool allow_agg, const char *where)
{
    if (!e)
        return WEIR_OK;
    if (e->kind == SQL_N_IDENT && e->qualifier) {
        const char *s = q->sel->from.stream, *al = q->sel->from.alias;
        if (strcmp(e->qualifier, s) && (!al || strcmp(e->qualifier, al)))
            return fail_node(q, WEIR_EINVAL, e, "unknown table \"%s\" (the query reads %s)",
                             e->qualifier, al ? al : s);
    }
    if (e->kind == SQL_N_STAR)
        return fail_node(q, WEIR_EINVAL, e, "* is only allowed in the select list");
    if (e->kind == SQL_N_CALL) {
        if (sql_node_is_agg(e)) {
            if (!allow_agg)
                return fail_node(q, WEIR_EINVAL, e, "aggregate function %s is not allowed in %s",
                                 e->name, where);
            if (e->filter)
                return fail_node(q, WEIR_EUNSUPPORTED, e->filter,
                                 "FILTER (WHERE ...) is not supported in history queries yet");
            if (e->distinct)
                return fail_node(q, WEIR_EUNSUPPORTED, e,
                                 "%s(DISTINCT ...) is not supported in history queries yet",
                                 e->name);
            for (uint32_t i = 0; i < e->n_kids; i++) {
                int rc = check_expr(q, e->kids[i], false, "an aggregate's arguments");
                if (rc)
                    return rc;
            }
            return WEIR_OK;
        }
        if (sql_is_state_fn(e->name, strlen(e->name)))
            return fail_node(q, WEIR_EUNSUPPORTED, e,
                             "%s() keeps per-key state across records: it is only available "
                             "in continuous rules (CREATE RULE), not in history queries",
                             e->name);
        char msg[160];
        if (sql_plan_check_call(e, msg, sizeof(msg)))
            return fail_node(q, WEIR_EINVAL, e, "%s", msg);
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = check_expr(q, e->kids[i], allow_agg, where);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static int const_eval(query *q, const sql_node *e, rec_value *out, sql_eval_error *err)
{
    sql_row row = {.now_ns = q->now_ns};
    return sql_eval(e, &row, out, &q->plan, err);
}

static int add_aggs(query *q, const sql_node *e)
{
    if (!e)
        return WEIR_OK;
    if (sql_node_is_agg(e)) {
        sql_plan_agg pa;
        const sql_node *bad = e;
        char msg[160];
        int prc = sql_plan_agg_resolve(e, &q->plan, &pa, &bad, msg, sizeof(msg));
        if (prc == WEIR_EINVAL)
            return fail_node(q, prc, bad, "%s", msg);
        if (prc)
            return fail_mem(q, &q->plan);
        if (q->n_aggs == q->cap_aggs) {
            uint32_t cap = q->cap_aggs ? q->cap_aggs * 2 : 8;
            agg_slot *na = arena_alloc(&q->plan, cap * sizeof(agg_slot));
            const sql_node **nn = arena_alloc(&q->plan, cap * sizeof(sql_node *));
            if (!na || !nn)
                return fail_mem(q, &q->plan);
            if (q->n_aggs) {
                memcpy(na, q->aggs, q->n_aggs * sizeof(agg_slot));
                memcpy(nn, q->agg_nodes, q->n_aggs * sizeof(sql_node *));
            }
            q->aggs = na;
            q->agg_nodes = nn;
            q->cap_aggs = cap;
        }
        const sql_agg *ag = pa.agg;
        agg_slot *s = &q->aggs[q->n_aggs];
        memset(s, 0, sizeof(*s));
        s->node = e;
        s->agg = ag;
        s->n_params = pa.n_params;
        memcpy(s->params, pa.params, sizeof(s->params));
        s->offset = q->state_size;
        q->state_size += (ag->state_size + STATE_ALIGN - 1) / STATE_ALIGN * STATE_ALIGN;
        q->agg_nodes[q->n_aggs++] = e;
        return WEIR_OK;
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = add_aggs(q, e->kids[i]);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

/* Everything a group row needs is grouped or aggregated. */
static int check_grouped(query *q, const sql_node *e, bool aliases_ok)
{
    if (!e || e->kind == SQL_N_LITERAL || e->kind == SQL_N_DURATION || e->kind == SQL_N_TIMESTAMP)
        return WEIR_OK;
    for (uint32_t i = 0; i < q->n_group; i++)
        if (sql_node_equal(e, q->group_nodes[i]))
            return WEIR_OK;
    if (sql_node_is_agg(e))
        return WEIR_OK;
    if (e->kind == SQL_N_IDENT) {
        if (aliases_ok && !e->qualifier)
            for (uint32_t i = 0; i < q->n_cols; i++)
                if (q->cols[i].expr && q->sel->items[i].alias &&
                    strcmp(q->sel->items[i].alias, e->name) == 0)
                    return WEIR_OK;
        return fail_node(q, WEIR_EINVAL, e,
                         "column \"%s\" must appear in GROUP BY or be used in an aggregate",
                         e->name);
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = check_grouped(q, e->kids[i], aliases_ok);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static const char *column_name(query *q, const sql_select_item *it)
{
    return sql_plan_column_name(&q->plan, it);
}

/* A column name used by GROUP BY / ORDER BY: a select alias (or an
 * ordinal) resolves to its item. Returns the item index or -1. */
static int resolve_item(query *q, const sql_node *e, bool *bad_ordinal)
{
    *bad_ordinal = false;
    if (e->kind == SQL_N_IDENT && !e->qualifier) {
        for (uint32_t i = 0; i < q->sel->n_items; i++)
            if (q->sel->items[i].alias && strcmp(q->sel->items[i].alias, e->name) == 0)
                return (int)i;
        return -1;
    }
    if (e->kind == SQL_N_LITERAL && e->value.type == REC_INT) {
        if (e->value.u.i < 1 || e->value.u.i > (int64_t)q->sel->n_items ||
            q->sel->items[e->value.u.i - 1].expr->kind == SQL_N_STAR) {
            *bad_ordinal = true;
            return -1;
        }
        return (int)(e->value.u.i - 1);
    }
    return -1;
}

static bool is_ts_ident(query *q, const sql_node *e)
{
    if (e->kind != SQL_N_IDENT)
        return false;
    if (is_name(e->name, "_ts"))
        return true;
    return q->ts_prunable && is_name(e->name, "ts");
}

static void narrow(query *q, sql_op op, int64_t c)
{
    switch (op) {
    case SQL_OP_GE: if (c > q->from) q->from = c; break;
    case SQL_OP_GT: if (c != INT64_MAX && c + 1 > q->from) q->from = c + 1; break;
    case SQL_OP_LT: if (c < q->to) q->to = c; break;
    case SQL_OP_LE: if (c != INT64_MAX && c + 1 < q->to) q->to = c + 1; break;
    case SQL_OP_EQ:
        narrow(q, SQL_OP_GE, c);
        narrow(q, SQL_OP_LE, c);
        break;
    default: break;
    }
}

static bool const_int(query *q, const sql_node *e, int64_t *out)
{
    rec_value v;
    sql_eval_error ee = {{0}};
    if (const_eval(q, e, &v, &ee) || v.type != REC_INT)
        return false;
    *out = v.u.i;
    return true;
}

static void derive_range(query *q, const sql_node *e)
{
    if (!e)
        return;
    if (e->kind == SQL_N_BINARY && e->op == SQL_OP_AND) {
        derive_range(q, e->kids[0]);
        derive_range(q, e->kids[1]);
        return;
    }
    int64_t c, c2;
    if (e->kind == SQL_N_BINARY && e->op >= SQL_OP_EQ && e->op <= SQL_OP_GE && e->op != SQL_OP_NE) {
        if (is_ts_ident(q, e->kids[0]) && const_int(q, e->kids[1], &c)) {
            narrow(q, e->op, c);
        } else if (is_ts_ident(q, e->kids[1]) && const_int(q, e->kids[0], &c)) {
            sql_op m = e->op == SQL_OP_LT ? SQL_OP_GT : e->op == SQL_OP_GT ? SQL_OP_LT
                     : e->op == SQL_OP_LE ? SQL_OP_GE : e->op == SQL_OP_GE ? SQL_OP_LE : e->op;
            narrow(q, m, c);
        }
    } else if (e->kind == SQL_N_BETWEEN && !e->negated && is_ts_ident(q, e->kids[0]) &&
               const_int(q, e->kids[1], &c) && const_int(q, e->kids[2], &c2)) {
        narrow(q, SQL_OP_GE, c);
        narrow(q, SQL_OP_LE, c2);
    }
}

static int plan(query *q)
{
    sql_select *sel = q->sel;
    int rc;
    if (sel->join)
        return fail_at(q, WEIR_EUNSUPPORTED, sel->join->line, sel->join->column,
                       "JOIN is not supported in history queries yet");
    if (sel->distinct)
        return fail_at(q, WEIR_EUNSUPPORTED, sel->line, sel->column,
                       "SELECT DISTINCT is not supported in history queries yet");
    for (uint32_t i = 0; i < sel->n_group; i++)
        if (!sel->group[i].expr)
            return fail_at(q, WEIR_EUNSUPPORTED, sel->group[i].line, sel->group[i].column,
                           "%s windows are not supported in history queries yet; use "
                           "time_bucket() in GROUP BY",
                           sql_window_kind_name(sel->group[i].window.kind));
    ingest_stream *is = ingest_find(q->in, sel->from.stream);
    if (!is)
        return fail_at(q, WEIR_ENOTFOUND, sel->from.line, sel->from.column, "unknown stream %s",
                       sel->from.stream);
    q->st = ingest_stream_store(is);
    const rec_schema *sc = ingest_stream_schema(is);
    q->ts_prunable = true;
    q->ts_field = sc ? sc->ts_field : NULL;
    if (sc && !(sc->ts_field && strcmp(sc->ts_field, "ts") == 0)) {
        /* A field named ts that is not the event time shadows the pseudo-column. */
        for (uint32_t i = 0; i < sc->n_decls; i++)
            if (strcmp(sc->decls[i].name, "ts") == 0)
                q->ts_prunable = false;
    }

    /* Output columns. */
    q->n_cols = sel->n_items;
    q->cols = arena_alloc(&q->plan, (sel->n_items + 1) * sizeof(out_col));
    if (!q->cols)
        return fail_mem(q, &q->plan);
    for (uint32_t i = 0; i < sel->n_items; i++) {
        const sql_select_item *it = &sel->items[i];
        if (it->expr->kind == SQL_N_STAR) {
            if (q->has_star)
                return fail_at(q, WEIR_EUNSUPPORTED, it->line, it->column,
                               "only one * is supported in a history query");
            if (it->expr->qualifier && strcmp(it->expr->qualifier, sel->from.stream) &&
                (!sel->from.alias || strcmp(it->expr->qualifier, sel->from.alias)))
                return fail_at(q, WEIR_EINVAL, it->line, it->column, "unknown table \"%s\"",
                               it->expr->qualifier);
            q->has_star = true;
            q->star_pos = i;
            q->cols[i] = (out_col){NULL, "*"};
            continue;
        }
        if ((rc = check_expr(q, it->expr, true, "")))
            return rc;
        q->cols[i] = (out_col){it->expr, column_name(q, it)};
    }
    q->n_fixed = q->n_cols;
    if ((rc = check_expr(q, sel->where, false, "WHERE")))
        return rc;
    if ((rc = check_expr(q, sel->having, true, "")))
        return rc;

    /* GROUP BY. */
    q->n_group = sel->n_group;
    q->group_nodes = arena_alloc(&q->plan, (sel->n_group + 1) * sizeof(sql_node *));
    if (!q->group_nodes)
        return fail_mem(q, &q->plan);
    for (uint32_t i = 0; i < sel->n_group; i++) {
        const sql_node *g = sel->group[i].expr;
        bool bad = false;
        int item = resolve_item(q, g, &bad);
        if (bad)
            return fail_node(q, WEIR_EINVAL, g, "GROUP BY position is not in the select list");
        if (item >= 0)
            g = sel->items[item].expr;
        if ((rc = check_expr(q, g, false, "GROUP BY")))
            return rc;
        q->group_nodes[i] = g;
    }

    /* ORDER BY. */
    q->n_order = sel->n_order;
    q->order = arena_alloc(&q->plan, (sel->n_order + 1) * sizeof(order_key));
    if (!q->order)
        return fail_mem(q, &q->plan);
    for (uint32_t i = 0; i < sel->n_order; i++) {
        const sql_node *o = sel->order[i].expr;
        bool bad = false;
        int item = resolve_item(q, o, &bad);
        if (bad)
            return fail_node(q, WEIR_EINVAL, o,
                             "ORDER BY position is not a column of the select list");
        q->order[i] = (order_key){item >= 0 ? NULL : o, item, sel->order[i].desc};
        if (item < 0 && (rc = check_expr(q, o, true, "")))
            return rc;
    }

    /* Aggregates. */
    for (uint32_t i = 0; i < sel->n_items; i++)
        if (q->cols[i].expr && (rc = add_aggs(q, q->cols[i].expr)))
            return rc;
    if ((rc = add_aggs(q, sel->having)))
        return rc;
    for (uint32_t i = 0; i < q->n_order; i++)
        if (q->order[i].expr && (rc = add_aggs(q, q->order[i].expr)))
            return rc;
    q->grouped = q->n_aggs > 0 || q->n_group > 0;
    if (q->grouped) {
        if (q->has_star)
            return fail_at(q, WEIR_EINVAL, sel->items[q->star_pos].line,
                           sel->items[q->star_pos].column,
                           "* cannot be used with GROUP BY or aggregates");
        for (uint32_t i = 0; i < sel->n_items; i++)
            if ((rc = check_grouped(q, q->cols[i].expr, false)))
                return rc;
        if ((rc = check_grouped(q, sel->having, true)))
            return rc;
        for (uint32_t i = 0; i < q->n_order; i++)
            if (q->order[i].expr && (rc = check_grouped(q, q->order[i].expr, true)))
                return rc;
    } else if (sel->having) {
        return fail_node(q, WEIR_EINVAL, sel->having,
                         "HAVING needs GROUP BY or an aggregate function");
    }
    q->limit = sel->has_limit && (size_t)sel->limit < q->limit ? (size_t)sel->limit : q->limit;
    q->from = INT64_MIN;
    q->to = INT64_MAX;
    derive_range(q, sel->where);
    return WEIR_OK;
}

/* ---- values -------------------------------------------------------------- */

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_value(const rec_value *v)
{
    switch (v->type) {
    case REC_NULL: return 1;
    case REC_BOOL: return v->u.b ? 3 : 2;
    case REC_INT: return mix(4, (uint64_t)v->u.i);
    case REC_DOUBLE: {
        double d = v->u.d;
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18)
            return mix(4, (uint64_t)(int64_t)d);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        return mix(5, bits);
    }
    default: {
        uint64_t h = 1469598103934665603ULL;
        for (uint32_t i = 0; i < v->u.s.len; i++)
            h = (h ^ (unsigned char)v->u.s.p[i]) * 1099511628211ULL;
        return mix((uint64_t)v->type, h);
    }
    }
}

static bool value_same(const rec_value *a, const rec_value *b)
{
    if (a->type == REC_NULL || b->type == REC_NULL)
        return a->type == b->type;
    int cmp = 0;
    bool unk = false;
    if (sql_value_compare(a, b, &cmp, &unk, NULL) || unk)
        return false;
    return cmp == 0;
}

static size_t value_bytes(const rec_value *v)
{
    return (v->type == REC_STRING || v->type == REC_JSON) ? v->u.s.len + 1 : 0;
}

/* Copies v's text into *dst and advances it. */
static rec_value value_copy(const rec_value *v, char **dst)
{
    rec_value o = *v;
    if (v->type == REC_STRING || v->type == REC_JSON) {
        if (v->u.s.len)
            memcpy(*dst, v->u.s.p, v->u.s.len);
        (*dst)[v->u.s.len] = 0;
        o.u.s.p = *dst;
        *dst += v->u.s.len + 1;
    }
    return o;
}

/* Sort order: NULLs last in either direction; different families by type. */
static int cmp_values(const rec_value *a, const rec_value *b, bool desc)
{
    if (a->type == REC_NULL || b->type == REC_NULL) {
        if (a->type == b->type)
            return 0;
        return a->type == REC_NULL ? 1 : -1;
    }
    int cmp = 0;
    bool unk = false;
    if (sql_value_compare(a, b, &cmp, &unk, NULL) || unk)
        cmp = (int)a->type - (int)b->type;
    cmp = cmp < 0 ? -1 : cmp > 0;
    return desc ? -cmp : cmp;
}

static int cmp_rows(const query *q, const outrow *a, const outrow *b)
{
    for (uint32_t i = 0; i < q->n_order; i++) {
        int c = cmp_values(&a->vals[q->n_fixed + i], &b->vals[q->n_fixed + i], q->order[i].desc);
        if (c)
            return c;
    }
    if (a->t0 != b->t0)
        return a->t0 < b->t0 ? -1 : 1;
    if (a->t1 != b->t1)
        return a->t1 < b->t1 ? -1 : 1;
    if (a->t2 != b->t2)
        return a->t2 < b->t2 ? -1 : 1;
    return 0;
}

/* ---- the bounded result heap -------------------------------------------- */

static void heap_down(query *q, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < q->n_rows && cmp_rows(q, q->rows[l], q->rows[m]) > 0)
            m = l;
        if (r < q->n_rows && cmp_rows(q, q->rows[r], q->rows[m]) > 0)
            m = r;
        if (m == i)
            return;
        outrow *t = q->rows[i];
        q->rows[i] = q->rows[m];
        q->rows[m] = t;
        i = m;
    }
}

static void heap_up(query *q, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (cmp_rows(q, q->rows[i], q->rows[p]) <= 0)
            return;
        outrow *t = q->rows[i];
        q->rows[i] = q->rows[p];
        q->rows[p] = t;
        i = p;
    }
}

/* Offers a row built from vals (n_fixed + n_order values) and star values. */
static int offer_row(query *q, const rec_value *vals, const rec_value *star, uint32_t n_star,
                     int64_t t0, uint64_t t1, uint64_t t2)
{
    if (q->limit == 0)
        return WEIR_OK;
    uint32_t n = q->n_fixed + q->n_order;
    outrow probe = {(rec_value *)vals, (rec_value *)star, n_star, t0, t1, t2};
    if (q->n_rows == q->limit && cmp_rows(q, &probe, q->rows[0]) >= 0)
        return WEIR_OK;
    size_t bytes = sizeof(outrow) + (n + n_star) * sizeof(rec_value);
    for (uint32_t i = 0; i < n; i++)
        bytes += value_bytes(&vals[i]);
    for (uint32_t i = 0; i < n_star; i++)
        bytes += value_bytes(&star[i]);
    outrow *r = malloc(bytes);
    if (!r)
        return fail_at(q, WEIR_ENOMEM, 0, 0, "out of memory");
    r->vals = (rec_value *)(r + 1);
    r->star = r->vals + n;
    r->n_star = n_star;
    r->t0 = t0;
    r->t1 = t1;
    r->t2 = t2;
    char *dst = (char *)(r->star + n_star);
    for (uint32_t i = 0; i < n; i++)
        r->vals[i] = value_copy(&vals[i], &dst);
    for (uint32_t i = 0; i < n_star; i++)
        r->star[i] = value_copy(&star[i], &dst);
    if (q->n_rows == q->limit) {
        free(q->rows[0]);
        q->rows[0] = r;
        heap_down(q, 0);
    } else {
        q->rows[q->n_rows++] = r;
        heap_up(q, q->n_rows - 1);
    }
    return WEIR_OK;
}

/* ---- per record ---------------------------------------------------------- */

static int eval_fail(query *q, const sql_eval_error *ee)
{
    return fail_at(q, WEIR_EINVAL, 0, 0, "%s", ee->msg[0] ? ee->msg : "evaluation failed");
}

static int star_index(query *q, const char *name, size_t len, uint32_t *out)
{
    for (uint32_t i = 0; i < q->n_star_names; i++)
        if (strlen(q->star_names[i]) == len && memcmp(q->star_names[i], name, len) == 0) {
            *out = i;
            return WEIR_OK;
        }
    if (q->n_star_names >= SQL_QUERY_MAX_STAR_COLUMNS)
        return fail_at(q, WEIR_ETOOBIG, 0, 0, "SELECT * would produce more than %d columns",
                       SQL_QUERY_MAX_STAR_COLUMNS);
    char *s = arena_strdup(&q->plan, name, len);
    if (!s)
        return fail_mem(q, &q->plan);
    q->star_names[q->n_star_names] = s;
    *out = q->n_star_names++;
    return WEIR_OK;
}

static group *find_group(query *q, const rec_value *vals, uint64_t h, int *rc)
{
    *rc = WEIR_OK;
    size_t mask = q->table_cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        group *g = q->table[i];
        if (!g)
            break;
        if (g->hash != h)
            continue;
        bool same = true;
        for (uint32_t k = 0; k < q->n_group && same; k++)
            same = value_same(&g->vals[k], &vals[k]);
        if (same)
            return g;
    }
    if (q->n_groups >= SQL_QUERY_MAX_GROUPS) {
        *rc = fail_at(q, WEIR_ETOOBIG, 0, 0, "the query makes more than %d groups",
                      SQL_QUERY_MAX_GROUPS);
        return NULL;
    }
    if ((q->n_groups + 1) * 2 > q->table_cap) {
        size_t cap = q->table_cap * 2;
        group **nt = calloc(cap, sizeof(group *));
        if (!nt) {
            *rc = fail_at(q, WEIR_ENOMEM, 0, 0, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < q->table_cap; i++)
            if (q->table[i]) {
                size_t j = q->table[i]->hash & (cap - 1);
                while (nt[j])
                    j = (j + 1) & (cap - 1);
                nt[j] = q->table[i];
            }
        free(q->table);
        q->table = nt;
        q->table_cap = cap;
        mask = cap - 1;
    }
    size_t bytes = 0;
    for (uint32_t k = 0; k < q->n_group; k++)
        bytes += value_bytes(&vals[k]);
    group *g = arena_alloc(&q->plan, sizeof(group) + q->n_group * sizeof(rec_value));
    unsigned char *state = q->state_size ? arena_alloc(&q->plan, q->state_size) : NULL;
    char *dst = bytes ? arena_alloc_bytes(&q->plan, bytes) : NULL;
    if (!g || (q->state_size && !state) || (bytes && !dst)) {
        *rc = fail_mem(q, &q->plan);
        return NULL;
    }
    g->hash = h;
    g->vals = (rec_value *)(g + 1);
    for (uint32_t k = 0; k < q->n_group; k++)
        g->vals[k] = value_copy(&vals[k], &dst);
    g->state = state;
    g->next = NULL;
    for (uint32_t i = 0; i < q->n_aggs; i++) {
        sql_eval_error ee = {{0}};
        if (q->aggs[i].agg->init(state + q->aggs[i].offset, q->aggs[i].params,
                                 q->aggs[i].n_params, &ee)) {
            *rc = eval_fail(q, &ee);
            return NULL;
        }
    }
    size_t i = h & mask;
    while (q->table[i])
        i = (i + 1) & mask;
    q->table[i] = g;
    q->n_groups++;
    if (q->last)
        q->last->next = g;
    else
        q->first = g;
    q->last = g;
    return g;
}

static int on_record(query *q, const stream_rec *sr)
{
    arena *a = &q->scratch;
    arena_reset(a);
    record rec;
    int rc = record_decode(sr->value, sr->value_len, a, &rec);
    if (rc == WEIR_EMALFORMED || rc == WEIR_EVERSION)
        return WEIR_OK; /* not a record this build can read: skipped */
    if (rc)
        return fail_mem(q, a);
    q->scanned++;
    rec.ts = sr->ts;
    rec.key = (const char *)sr->key;
    rec.key_len = (uint16_t)sr->key_len;
    sql_row row = {.rec = &rec, .ts = sr->ts, .key = sr->key_len ? (const char *)sr->key : NULL,
                   .key_len = sr->key_len, .now_ns = q->now_ns, .ts_field = q->ts_field};
    sql_eval_error ee = {{0}};
    if (q->sel->where) {
        sql_tri t;
        if (sql_eval_cond(q->sel->where, &row, &t, a, &ee))
            return eval_fail(q, &ee);
        if (t != SQL_TRUE)
            return WEIR_OK;
    }
    if (q->grouped) {
        rec_value *gv = arena_alloc(a, (q->n_group + 1) * sizeof(rec_value));
        if (!gv)
            return fail_mem(q, a);
        uint64_t h = 7;
        for (uint32_t i = 0; i < q->n_group; i++) {
            if (sql_eval(q->group_nodes[i], &row, &gv[i], a, &ee))
                return eval_fail(q, &ee);
            h = mix(h, hash_value(&gv[i]));
        }
        group *g = find_group(q, gv, h, &rc);
        if (!g)
            return rc;
        for (uint32_t i = 0; i < q->n_aggs; i++) {
            const agg_slot *s = &q->aggs[i];
            rec_value args[2] = {sql_null(), sql_null()};
            for (int k = 0; k < s->agg->n_args && k < 2; k++)
                if (sql_eval(s->node->kids[k], &row, &args[k], a, &ee))
                    return eval_fail(q, &ee);
            if (s->agg->add(g->state + s->offset, args, sr->ts, &ee))
                return eval_fail(q, &ee);
        }
        return WEIR_OK;
    }
    uint32_t n = q->n_fixed + q->n_order;
    rec_value *vals = arena_alloc(a, (n + 1) * sizeof(rec_value));
    if (!vals)
        return fail_mem(q, a);
    for (uint32_t i = 0; i < q->n_fixed; i++) {
        vals[i] = sql_null();
        if (q->cols[i].expr && sql_eval(q->cols[i].expr, &row, &vals[i], a, &ee))
            return eval_fail(q, &ee);
    }
    for (uint32_t i = 0; i < q->n_order; i++) {
        if (q->order[i].col >= 0)
            vals[q->n_fixed + i] = vals[q->order[i].col];
        else if (sql_eval(q->order[i].expr, &row, &vals[q->n_fixed + i], a, &ee))
            return eval_fail(q, &ee);
    }
    rec_value *star = NULL;
    uint32_t n_star = 0;
    if (q->has_star) {
        for (uint32_t f = 0; f < rec.n_fields; f++) {
            uint32_t idx;
            if ((rc = star_index(q, rec.fields[f].name, rec.fields[f].name_len, &idx)))
                return rc;
        }
        n_star = q->n_star_names;
        star = arena_alloc(a, (n_star + 1) * sizeof(rec_value));
        if (!star)
            return fail_mem(q, a);
        star[0] = sql_int(sr->ts);
        star[1] = row.key ? sql_text(row.key, row.key_len) : sql_null();
        for (uint32_t i = 2; i < n_star; i++)
            star[i] = sql_null();
        for (uint32_t f = 0; f < rec.n_fields; f++) {
            uint32_t idx = 0;
            star_index(q, rec.fields[f].name, rec.fields[f].name_len, &idx);
            star[idx] = rec.fields[f].v;
        }
    }
    return offer_row(q, vals, star, n_star, sr->ts, sr->partition, sr->offset);
}

static int scan(query *q)
{
    uint32_t parts = stream_partitions(q->st);
    for (uint32_t p = 0; p < parts; p++) {
        stream_reader *rd = NULL;
        int rc = q->from == INT64_MIN ? stream_reader_open(q->st, p, STREAM_POS_EARLIEST, 0, &rd)
                                      : stream_reader_open(q->st, p, STREAM_POS_TIME, q->from, &rd);
        if (rc)
            return fail_at(q, rc, 0, 0, "cannot read partition %u: %s", p, weir_strerror(rc));
        uint64_t end = stream_end_offset(q->st, p);
        stream_rec sr;
        uint32_t n = 0;
        while (stream_reader_position(rd) < end) {
            /* Now and then: can anything left still fall before `to`? */
            if (q->to != INT64_MAX && (++n & 1023) == 0 &&
                stream_min_ts_from(q->st, p, stream_reader_position(rd)) >= q->to)
                break;
            rc = stream_reader_next(rd, &sr);
            if (rc == WEIR_EAGAIN) {
                rc = WEIR_OK;
                break;
            }
            if (rc == WEIR_ECORRUPT)
                continue;
            if (rc) {
                rc = fail_at(q, rc, 0, 0, "reading partition %u: %s", p, weir_strerror(rc));
                break;
            }
            if (sr.ts < q->from || sr.ts >= q->to)
                continue;
            if ((rc = on_record(q, &sr)))
                break;
        }
        stream_reader_close(rd);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static int finish_groups(query *q)
{
    if (!q->grouped)
        return WEIR_OK;
    if (q->n_group == 0 && q->n_groups == 0) {
        int rc;
        if (!find_group(q, NULL, 7, &rc))
            return rc;
    }
    arena *a = &q->scratch;
    uint32_t n = q->n_fixed + q->n_order;
    uint64_t seq = 0;
    for (group *g = q->first; g; g = g->next, seq++) {
        arena_reset(a);
        sql_eval_error ee = {{0}};
        rec_value *av = arena_alloc(a, (q->n_aggs + 1) * sizeof(rec_value));
        rec_value *vals = arena_alloc(a, (n + 1) * sizeof(rec_value));
        const char **names = arena_alloc(a, (q->n_cols + 1) * sizeof(char *));
        if (!av || !vals || !names)
            return fail_mem(q, a);
        for (uint32_t i = 0; i < q->n_aggs; i++)
            if (q->aggs[i].agg->result(g->state + q->aggs[i].offset, &av[i], a, &ee))
                return eval_fail(q, &ee);
        for (uint32_t i = 0; i < q->n_cols; i++)
            names[i] = q->sel->items[i].alias;
        sql_row row = {.now_ns = q->now_ns,
                       .group_nodes = q->group_nodes,
                       .group_vals = g->vals,
                       .n_groups = q->n_group,
                       .agg_nodes = q->agg_nodes,
                       .agg_vals = av,
                       .n_aggs = q->n_aggs,
                       .col_names = names,
                       .col_vals = vals,
                       .n_cols = 0};
        for (uint32_t i = 0; i < q->n_fixed; i++) {
            if (sql_eval(q->cols[i].expr, &row, &vals[i], a, &ee))
                return eval_fail(q, &ee);
            row.n_cols = i + 1;
        }
        if (q->sel->having) {
            sql_tri t;
            if (sql_eval_cond(q->sel->having, &row, &t, a, &ee))
                return eval_fail(q, &ee);
            if (t != SQL_TRUE)
                continue;
        }
        for (uint32_t i = 0; i < q->n_order; i++) {
            if (q->order[i].col >= 0)
                vals[q->n_fixed + i] = vals[q->order[i].col];
            else if (sql_eval(q->order[i].expr, &row, &vals[q->n_fixed + i], a, &ee))
                return eval_fail(q, &ee);
        }
        int rc = offer_row(q, vals, NULL, 0, 0, seq, 0);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

/* ---- output -------------------------------------------------------------- */

static json_t *to_json(const rec_value *v)
{
    switch (v->type) {
    case REC_BOOL: return json_boolean(v->u.b);
    case REC_INT: return json_integer(v->u.i);
    case REC_DOUBLE: return isfinite(v->u.d) ? json_real(v->u.d) : json_null();
    case REC_STRING: return json_stringn_nocheck(v->u.s.p, v->u.s.len);
    case REC_JSON: {
        json_t *j = json_loadb(v->u.s.p, v->u.s.len, JSON_DECODE_ANY, NULL);
        return j ? j : json_stringn_nocheck(v->u.s.p, v->u.s.len);
    }
    default: return json_null();
    }
}

static json_t *build_result(query *q, int64_t t0)
{
    /* Heap sort: pop the worst row to the end until the heap is empty. */
    size_t total = q->n_rows;
    while (q->n_rows > 1) {
        outrow *t = q->rows[0];
        q->rows[0] = q->rows[q->n_rows - 1];
        q->rows[q->n_rows - 1] = t;
        q->n_rows--;
        heap_down(q, 0);
    }
    q->n_rows = total;
    json_t *res = json_object(), *cols = json_array(), *rows = json_array();
    for (uint32_t i = 0; i < q->n_cols; i++) {
        if (!q->cols[i].expr) {
            for (uint32_t k = 0; k < q->n_star_names; k++)
                json_array_append_new(cols, json_string(q->star_names[k]));
        } else {
            json_array_append_new(cols, json_string(q->cols[i].name));
        }
    }
    for (size_t r = 0; r < q->n_rows; r++) {
        const outrow *o = q->rows[r];
        json_t *row = json_array();
        for (uint32_t i = 0; i < q->n_cols; i++) {
            if (!q->cols[i].expr) {
                for (uint32_t k = 0; k < q->n_star_names; k++)
                    json_array_append_new(row, k < o->n_star ? to_json(&o->star[k]) : json_null());
            } else {
                json_array_append_new(row, to_json(&o->vals[i]));
            }
        }
        json_array_append_new(rows, row);
    }
    json_object_set_new(res, "columns", cols);
    json_object_set_new(res, "rows", rows);
    json_object_set_new(res, "stats",
                        json_pack("{s:I,s:I}", "scanned", (json_int_t)q->scanned, "ms",
                                  (json_int_t)((weir_mono_ns() - t0) / 1000000)));
    return res;
}

int sql_query_run(ingest *in, const char *text, size_t len, size_t max_rows, json_t **result,
                  sql_error *perr)
{
    int64_t t0 = weir_mono_ns();
    *result = NULL;
    if (perr)
        memset(perr, 0, sizeof(*perr));
    query q;
    memset(&q, 0, sizeof(q));
    q.in = in;
    q.perr = perr;
    q.now_ns = weir_wall_ns();
    q.limit = max_rows;
    arena_init(&q.plan, SQL_QUERY_MAX_MEMORY);
    arena_init(&q.scratch, SCRATCH_MAX);
    sql_stmt *stmt = NULL;
    int rc = sql_parse(text, len, &q.plan, &stmt, perr);
    if (rc)
        goto out;
    if (stmt->kind != SQL_STMT_SELECT || !stmt->select) {
        rc = fail_at(&q, WEIR_EINVAL, stmt->line, stmt->column,
                     "a history query is a SELECT, not %s", sql_stmt_kind_name(stmt->kind));
        goto out;
    }
    q.sel = stmt->select;
    if ((rc = plan(&q)))
        goto out;
    q.rows = malloc((q.limit + 1) * sizeof(outrow *));
    q.table_cap = 64;
    q.table = calloc(q.table_cap, sizeof(group *));
    q.star_names = arena_alloc(&q.plan, SQL_QUERY_MAX_STAR_COLUMNS * sizeof(char *));
    if (!q.rows || !q.table || !q.star_names) {
        rc = fail_at(&q, WEIR_ENOMEM, 0, 0, "out of memory");
        goto out;
    }
    if (q.has_star) {
        q.star_names[0] = "ts";
        q.star_names[1] = "key";
        q.n_star_names = 2;
    }
    if (q.from < q.to && (rc = scan(&q)))
        goto out;
    if ((rc = finish_groups(&q)))
        goto out;
    *result = build_result(&q, t0);
    if (!*result)
        rc = fail_at(&q, WEIR_ENOMEM, 0, 0, "out of memory");
out:
    for (size_t i = 0; i < q.n_rows; i++)
        free(q.rows[i]);
    free(q.rows);
    free(q.table);
    arena_free(&q.plan);
    arena_free(&q.scratch);
    return rc;
}
