/* rule.c -- compiling a CREATE RULE statement into an operator pipeline,
 * pushing records through it, output identities, stats and EXPLAIN.
 *
 * Planning copies the statement's tree into the rule's own arena (the
 * caller's parse arena may die right after compile), checks every name
 * and function, collects the aggregate call sites (each gets a slot in a
 * per-group state block, as in sql/query.c) and the state-function call
 * sites (changes, lag, ...; each gets per-key state), and picks one mode
 * (rule_int.h): per-record map, GROUP BY without window, one of the
 * windows, or a join. Push then does the per-record work of that mode with
 * a scratch arena reset per record.
 */
#include "engine/rule_int.h"
#include "base/config.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "sql/functions.h"
#include "sql/parser.h"
#include "sql/plan.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <xxhash.h>

#define PLAN_MAX (16u << 20)
#define SCRATCH_MAX (64u << 20)
#define DEFAULT_MAX_STATE (64u << 20)
#define DEFAULT_MAX_GROUPS 100000u

/* ---- errors ---------------------------------------------------------------- */

int eng_fail(eng_rule *r, int code, const char *fmt, ...)
{
    if (r->errbuf && r->errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->errbuf, r->errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

int eng_fail_mem(eng_rule *r)
{
    int rc = arena_last_error(&r->scratch);
    if (rc == WEIR_OK)
        rc = WEIR_ENOMEM;
    return eng_fail(r, rc, "out of rule scratch memory");
}

typedef struct planner {
    eng_rule *r;
    sql_error *err;
} planner;

static int pfail(planner *p, int code, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int pfail(planner *p, int code, int line, int column, const char *fmt, ...)
{
    if (p->err) {
        p->err->line = line;
        p->err->column = column;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
        va_end(ap);
    }
    return code;
}

#define PFAIL_NODE(p, code, n, ...) pfail(p, code, (n) ? (n)->line : 0, (n) ? (n)->column : 0, __VA_ARGS__)

static int pmem(planner *p)
{
    return pfail(p, WEIR_ENOMEM, 0, 0, "out of memory while compiling the rule");
}

/* ---- copying the tree ----------------------------------------------------------- */

static const char *cp_str(arena *a, const char *s)
{
    return s ? arena_strdup(a, s, strlen(s)) : NULL;
}

static sql_node *cp_node(arena *a, const sql_node *n, bool *oom)
{
    if (!n)
        return NULL;
    sql_node *c = arena_alloc(a, sizeof(*c));
    if (!c) {
        *oom = true;
        return NULL;
    }
    *c = *n;
    c->qualifier = cp_str(a, n->qualifier);
    c->name = cp_str(a, n->name);
    if ((n->qualifier && !c->qualifier) || (n->name && !c->name))
        *oom = true;
    if (n->kind == SQL_N_LITERAL && (n->value.type == REC_STRING || n->value.type == REC_JSON)) {
        char *s = arena_strdup(a, n->value.u.s.p, n->value.u.s.len);
        if (!s)
            *oom = true;
        c->value.u.s.p = s;
    }
    c->filter = cp_node(a, n->filter, oom);
    c->kids = NULL;
    if (n->n_kids) {
        c->kids = arena_alloc(a, n->n_kids * sizeof(sql_node *));
        if (!c->kids) {
            *oom = true;
            c->n_kids = 0;
            return c;
        }
        for (uint32_t i = 0; i < n->n_kids; i++)
            c->kids[i] = cp_node(a, n->kids[i], oom);
    }
    return c;
}

static sql_select *cp_select(arena *a, const sql_select *s, bool *oom)
{
    sql_select *c = arena_alloc(a, sizeof(*c));
    if (!c) {
        *oom = true;
        return NULL;
    }
    *c = *s;
    c->items = arena_alloc(a, (s->n_items + 1) * sizeof(sql_select_item));
    c->group = arena_alloc(a, (s->n_group + 1) * sizeof(sql_group_item));
    if (!c->items || !c->group) {
        *oom = true;
        return c;
    }
    for (uint32_t i = 0; i < s->n_items; i++) {
        c->items[i] = s->items[i];
        c->items[i].expr = cp_node(a, s->items[i].expr, oom);
        c->items[i].alias = cp_str(a, s->items[i].alias);
    }
    for (uint32_t i = 0; i < s->n_group; i++) {
        c->group[i] = s->group[i];
        c->group[i].expr = cp_node(a, s->group[i].expr, oom);
    }
    c->from.stream = cp_str(a, s->from.stream);
    c->from.alias = cp_str(a, s->from.alias);
    c->where = cp_node(a, s->where, oom);
    c->having = cp_node(a, s->having, oom);
    c->order = NULL;
    c->n_order = 0;
    c->options.items = NULL; /* read at compile time only */
    c->options.n = 0;
    c->emit_target = cp_str(a, s->emit_target);
    if (s->join) {
        c->join = arena_alloc(a, sizeof(sql_join));
        if (!c->join) {
            *oom = true;
            return c;
        }
        *c->join = *s->join;
        c->join->right.stream = cp_str(a, s->join->right.stream);
        c->join->right.alias = cp_str(a, s->join->right.alias);
        c->join->on = cp_node(a, s->join->on, oom);
    }
    return c;
}

/* ---- checking ------------------------------------------------------------------ */

static bool is_name(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

/* Which input a qualifier names: 0, 1, or -1. */
static int side_of(const eng_rule *r, const char *q)
{
    for (uint32_t i = 0; i < r->n_inputs; i++)
        if (strcmp(q, r->aliases[i]) == 0 || strcmp(q, r->inputs[i]) == 0)
            return (int)i;
    return -1;
}

static int check_expr(planner *p, const sql_node *e, bool allow_agg, bool allow_sf,
                      const char *where)
{
    eng_rule *r = p->r;
    if (!e)
        return WEIR_OK;
    if (e->kind == SQL_N_IDENT && e->qualifier && side_of(r, e->qualifier) < 0)
        return PFAIL_NODE(p, WEIR_EINVAL, e, "unknown table \"%s\"", e->qualifier);
    if (e->kind == SQL_N_STAR)
        return PFAIL_NODE(p, WEIR_EINVAL, e, "* is only allowed in the select list");
    if (e->kind == SQL_N_CALL) {
        if (sql_node_is_agg(e)) {
            if (!allow_agg)
                return PFAIL_NODE(p, WEIR_EINVAL, e, "aggregate function %s is not allowed in %s",
                                  e->name, where);
            if (e->distinct)
                return PFAIL_NODE(p, WEIR_EUNSUPPORTED, e,
                                  "%s(DISTINCT ...) is not supported in rules yet", e->name);
            for (uint32_t i = 0; i < e->n_kids; i++) {
                int rc = check_expr(p, e->kids[i], false, allow_sf, "an aggregate's arguments");
                if (rc)
                    return rc;
            }
            return check_expr(p, e->filter, false, allow_sf, "FILTER");
        }
        if (sql_is_state_fn(e->name, strlen(e->name))) {
            if (!allow_sf)
                return PFAIL_NODE(p, WEIR_EUNSUPPORTED, e, "%s() is not allowed in %s", e->name,
                                  where);
            for (uint32_t i = 0; i < e->n_kids; i++) {
                int rc = check_expr(p, e->kids[i], false, false, "a state function's arguments");
                if (rc)
                    return rc;
            }
            return WEIR_OK;
        }
        char msg[160];
        if (sql_plan_check_call(e, msg, sizeof(msg)))
            return PFAIL_NODE(p, WEIR_EINVAL, e, "%s", msg);
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = check_expr(p, e->kids[i], allow_agg, allow_sf, where);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static int const_eval(eng_rule *r, const sql_node *e, rec_value *out, sql_eval_error *err)
{
    sql_row row = {.now_ns = 0};
    return sql_eval(e, &row, out, &r->plan, err);
}

static int add_aggs(planner *p, const sql_node *e)
{
    eng_rule *r = p->r;
    if (!e)
        return WEIR_OK;
    if (sql_node_is_agg(e)) {
        for (uint32_t i = 0; i < r->n_refs; i++)
            if (r->ref_nodes[i] == e)
                return WEIR_OK;
        if (r->n_refs == r->cap_refs) {
            uint32_t cap = r->cap_refs ? r->cap_refs * 2 : 8;
            const sql_node **nn = arena_alloc(&r->plan, cap * sizeof(sql_node *));
            uint32_t *ns = arena_alloc(&r->plan, cap * sizeof(uint32_t));
            if (!nn || !ns)
                return pmem(p);
            if (r->n_refs) {
                memcpy(nn, r->ref_nodes, r->n_refs * sizeof(sql_node *));
                memcpy(ns, r->ref_slot, r->n_refs * sizeof(uint32_t));
            }
            r->ref_nodes = nn;
            r->ref_slot = ns;
            r->cap_refs = cap;
        }
        r->ref_nodes[r->n_refs] = e;
        for (uint32_t i = 0; i < r->n_aggs; i++)
            if (sql_node_equal(r->agg_nodes[i], e)) {
                r->ref_slot[r->n_refs++] = i;
                return WEIR_OK;
            }
        r->ref_slot[r->n_refs++] = r->n_aggs;
        sql_plan_agg pa;
        const sql_node *bad = e;
        char msg[160];
        int prc = sql_plan_agg_resolve(e, &r->plan, &pa, &bad, msg, sizeof(msg));
        if (prc == WEIR_EINVAL)
            return PFAIL_NODE(p, prc, bad, "%s", msg);
        if (prc)
            return pmem(p);
        const sql_agg *ag = pa.agg;
        if (r->n_aggs >= 64)
            return PFAIL_NODE(p, WEIR_EUNSUPPORTED, e, "a rule has at most 64 aggregates");
        if (r->n_aggs == r->cap_aggs) {
            uint32_t cap = r->cap_aggs ? r->cap_aggs * 2 : 8;
            eng_agg_slot *na = arena_alloc(&r->plan, cap * sizeof(eng_agg_slot));
            const sql_node **nn = arena_alloc(&r->plan, cap * sizeof(sql_node *));
            if (!na || !nn)
                return pmem(p);
            if (r->n_aggs) {
                memcpy(na, r->aggs, r->n_aggs * sizeof(eng_agg_slot));
                memcpy(nn, r->agg_nodes, r->n_aggs * sizeof(sql_node *));
            }
            r->aggs = na;
            r->agg_nodes = nn;
            r->cap_aggs = cap;
        }
        eng_agg_slot *s = &r->aggs[r->n_aggs];
        memset(s, 0, sizeof(*s));
        s->node = e;
        s->agg = ag;
        s->n_params = pa.n_params;
        memcpy(s->params, pa.params, sizeof(s->params));
        s->offset = r->state_size;
        s->arg0 = r->n_av;
        r->n_av += (uint32_t)ag->n_args;
        r->state_size += (ag->state_size + ENG_STATE_ALIGN - 1) / ENG_STATE_ALIGN * ENG_STATE_ALIGN;
        r->agg_nodes[r->n_aggs++] = e;
        return WEIR_OK;
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = add_aggs(p, e->kids[i]);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static unsigned sides_used(const eng_rule *r, const sql_node *e);

static int add_sfs(planner *p, const sql_node *e)
{
    eng_rule *r = p->r;
    if (!e)
        return WEIR_OK;
    if (e->kind == SQL_N_CALL && sql_is_state_fn(e->name, strlen(e->name))) {
        eng_sf_site s = {.node = e, .depth = 1};
        bool oom = false;
        s.arg = e->n_kids ? cp_node(&r->plan, e->kids[0], &oom) : NULL;
        if (oom)
            return pmem(p);
        if (is_name(e->name, "changes"))
            s.kind = ENG_SF_CHANGES;
        else if (is_name(e->name, "lag"))
            s.kind = ENG_SF_LAG;
        else if (is_name(e->name, "time_since_change"))
            s.kind = ENG_SF_SINCE;
        else
            s.kind = ENG_SF_CHANGED_AT;
        uint32_t max_kids = s.kind == ENG_SF_LAG ? 2 : 1;
        if (e->n_kids < 1 || e->n_kids > max_kids || e->star)
            return PFAIL_NODE(p, WEIR_EINVAL, e, "%s takes %s", e->name,
                              max_kids == 2 ? "(x[, n])" : "one argument");
        if (e->n_kids == 2) {
            rec_value v;
            sql_eval_error ee = {{0}};
            if (const_eval(r, e->kids[1], &v, &ee) || v.type != REC_INT || v.u.i < 1 ||
                v.u.i > ENG_LAG_MAX)
                return PFAIL_NODE(p, WEIR_EINVAL, e->kids[1],
                                  "lag: n must be a constant integer from 1 to %d", ENG_LAG_MAX);
            s.depth = (uint32_t)v.u.i;
        }
        if (r->sel->join) {
            unsigned used = sides_used(r, s.arg);
            if (used != 1 && used != 2)
                return PFAIL_NODE(p, WEIR_EINVAL, e,
                                  "in a JOIN, %s() must read one side with qualified names "
                                  "(such as %s(a.state))",
                                  e->name, e->name);
            s.side = used == 1 ? 0 : 1;
        }
        if (r->n_sf >= 32)
            return PFAIL_NODE(p, WEIR_EUNSUPPORTED, e, "a rule has at most 32 state functions");
        r->sf[r->n_sf] = s;
        r->sf_nodes[r->n_sf++] = e;
        return WEIR_OK;
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = add_sfs(p, e->kids[i]);
        if (rc)
            return rc;
    }
    return add_sfs(p, e->filter);
}

/* Everything a group row needs is grouped or aggregated. */
static int check_grouped(planner *p, const sql_node *e, bool aliases_ok)
{
    eng_rule *r = p->r;
    if (!e || e->kind == SQL_N_LITERAL || e->kind == SQL_N_DURATION || e->kind == SQL_N_TIMESTAMP)
        return WEIR_OK;
    for (uint32_t i = 0; i < r->n_group; i++)
        if (sql_node_equal(e, r->group_nodes[i]))
            return WEIR_OK;
    if (sql_node_is_agg(e))
        return WEIR_OK;
    if (e->kind == SQL_N_CALL && sql_is_state_fn(e->name, strlen(e->name)))
        return PFAIL_NODE(p, WEIR_EINVAL, e,
                          "%s() works on records: use it inside an aggregate or in WHERE",
                          e->name);
    if (e->kind == SQL_N_IDENT) {
        if (!e->qualifier && r->win.kind != SQL_WIN_NONE &&
            (strcmp(e->name, "window_start") == 0 || strcmp(e->name, "window_end") == 0))
            return WEIR_OK;
        if (aliases_ok && !e->qualifier)
            for (uint32_t i = 0; i < r->sel->n_items; i++)
                if (r->sel->items[i].alias && strcmp(r->sel->items[i].alias, e->name) == 0)
                    return WEIR_OK;
        return PFAIL_NODE(p, WEIR_EINVAL, e,
                          "column \"%s\" must appear in GROUP BY or be used in an aggregate",
                          e->name);
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = check_grouped(p, e->kids[i], aliases_ok);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static const char *column_name(eng_rule *r, const sql_select_item *it)
{
    return sql_plan_column_name(&r->plan, it);
}

/* ---- options ------------------------------------------------------------------ */

static int opt_duration(planner *p, const sql_option *o, int64_t *out, bool zero_ok)
{
    const sql_node *v = o->value;
    if (v->kind == SQL_N_DURATION) {
        *out = v->ns;
        return WEIR_OK;
    }
    if (v->kind == SQL_N_LITERAL && v->value.type == REC_STRING) {
        if (zero_ok && (strcmp(v->value.u.s.p, "0") == 0 || strcmp(v->value.u.s.p, "0s") == 0)) {
            *out = 0;
            return WEIR_OK;
        }
        sql_eval_error ee = {{0}};
        if (sql_parse_duration(v->value.u.s.p, v->value.u.s.len, out, &ee) == WEIR_OK)
            return WEIR_OK;
    }
    if (zero_ok && v->kind == SQL_N_LITERAL && v->value.type == REC_INT && v->value.u.i == 0) {
        *out = 0;
        return WEIR_OK;
    }
    return pfail(p, WEIR_EINVAL, o->line, o->column,
                 "option %s: expected a duration such as '2s' or 500ms", o->key);
}

static int read_options(planner *p, const sql_options *opts)
{
    eng_rule *r = p->r;
    for (uint32_t i = 0; i < opts->n; i++) {
        const sql_option *o = &opts->items[i];
        int rc = WEIR_OK;
        if (is_name(o->key, "lateness")) {
            rc = opt_duration(p, o, &r->lateness, true);
        } else if (is_name(o->key, "max_delay")) {
            rc = opt_duration(p, o, &r->max_delay, true);
        } else if (is_name(o->key, "idle_timeout")) {
            rc = opt_duration(p, o, &r->idle_ns, true);
        } else if (is_name(o->key, "max_state")) {
            const sql_node *v = o->value;
            uint64_t n = 0;
            if (v->kind == SQL_N_LITERAL && v->value.type == REC_INT)
                n = (uint64_t)v->value.u.i;
            else if (!(v->kind == SQL_N_LITERAL && v->value.type == REC_STRING &&
                       config_parse_size(v->value.u.s.p, &n) == WEIR_OK))
                n = 0;
            if (n == 0)
                return pfail(p, WEIR_EINVAL, o->line, o->column,
                             "option max_state: expected a size such as '16m'");
            r->max_state = (size_t)n;
        } else if (is_name(o->key, "max_groups")) {
            const sql_node *v = o->value;
            if (!(v->kind == SQL_N_LITERAL && v->value.type == REC_INT && v->value.u.i > 0 &&
                  v->value.u.i <= UINT32_MAX))
                return pfail(p, WEIR_EINVAL, o->line, o->column,
                             "option max_groups: expected a positive integer");
            r->max_groups = (uint32_t)v->value.u.i;
        } else {
            /* Options the runtime reads (start position, sink settings...)
             * are not the engine's business; it ignores what it does not
             * know rather than failing a rule another layer accepts. */
        }
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

/* ---- joins ---------------------------------------------------------------------- */

/* Which inputs an expression refers to: bit 0 / bit 1; bit 2 for an
 * unqualified column. */
static unsigned sides_used(const eng_rule *r, const sql_node *e)
{
    if (!e)
        return 0;
    unsigned m = 0;
    if (e->kind == SQL_N_IDENT) {
        if (!e->qualifier)
            return 4;
        int s = side_of(r, e->qualifier);
        return s < 0 ? 4 : 1u << s;
    }
    for (uint32_t i = 0; i < e->n_kids; i++)
        m |= sides_used(r, e->kids[i]);
    return m | sides_used(r, e->filter);
}

/* a.x becomes the merged record's field "a.x" (see join.c). */
static int rewrite_qualified(planner *p, sql_node *e)
{
    eng_rule *r = p->r;
    if (!e)
        return WEIR_OK;
    if ((e->kind == SQL_N_IDENT) && e->qualifier) {
        int s = side_of(r, e->qualifier);
        if (s < 0)
            return PFAIL_NODE(p, WEIR_EINVAL, e, "unknown table \"%s\"", e->qualifier);
        size_t n = strlen(r->aliases[s]) + strlen(e->name) + 2;
        char *nm = arena_alloc_bytes(&r->plan, n);
        if (!nm)
            return pmem(p);
        snprintf(nm, n, "%s.%s", r->aliases[s], e->name);
        e->name = nm;
        e->qualifier = NULL;
        return WEIR_OK;
    }
    for (uint32_t i = 0; i < e->n_kids; i++) {
        int rc = rewrite_qualified(p, e->kids[i]);
        if (rc)
            return rc;
    }
    return rewrite_qualified(p, e->filter);
}

static int plan_join(planner *p)
{
    eng_rule *r = p->r;
    sql_select *sel = r->sel;
    sql_join *j = sel->join;
    r->within = j->within_ns;
    r->left_join = j->left;
    r->join_agg = sel->n_group || r->n_aggs || sel->having;
    if (r->join_agg && r->star_pos >= 0)
        return pfail(p, WEIR_EINVAL, sel->items[r->star_pos].line,
                     sel->items[r->star_pos].column,
                     "* cannot be used with GROUP BY or aggregates");
    /* Split ON into conjuncts; the first a.x = b.y (one side each) is the key. */
    const sql_node *stack[64];
    int top = 0;
    stack[top++] = j->on;
    sql_node *rest = NULL;
    arena *a = &r->plan;
    bool oom = false;
    while (top > 0) {
        const sql_node *c = stack[--top];
        if (c->kind == SQL_N_BINARY && c->op == SQL_OP_AND && top < 62) {
            stack[top++] = c->kids[1];
            stack[top++] = c->kids[0];
            continue;
        }
        if (!r->jkey[0] && c->kind == SQL_N_BINARY && c->op == SQL_OP_EQ) {
            unsigned l = sides_used(r, c->kids[0]), rr = sides_used(r, c->kids[1]);
            if ((l == 1 && rr == 2) || (l == 2 && rr == 1)) {
                const sql_node *k0 = l == 1 ? c->kids[0] : c->kids[1];
                const sql_node *k1 = l == 1 ? c->kids[1] : c->kids[0];
                r->jkey[0] = cp_node(a, k0, &oom);
                r->jkey[1] = cp_node(a, k1, &oom);
                continue;
            }
        }
        sql_node *cc = cp_node(a, c, &oom);
        if (!rest) {
            rest = cc;
        } else {
            sql_node *and = arena_alloc(a, sizeof(sql_node));
            sql_node **kids = arena_alloc(a, 2 * sizeof(sql_node *));
            if (!and || !kids)
                return pmem(p);
            memset(and, 0, sizeof(*and));
            and->kind = SQL_N_BINARY;
            and->op = SQL_OP_AND;
            and->line = c->line;
            and->column = c->column;
            kids[0] = rest;
            kids[1] = cc;
            and->kids = kids;
            and->n_kids = 2;
            rest = and;
        }
    }
    if (oom)
        return pmem(p);
    if (!r->jkey[0])
        return PFAIL_NODE(p, WEIR_EUNSUPPORTED, j->on,
                          "a JOIN needs an equality between the two streams in ON, such as "
                          "a.machine = b.machine (qualified names)");
    r->jextra = rest;
    int rc;
    if ((rc = rewrite_qualified(p, rest)) || (rc = rewrite_qualified(p, sel->where)))
        return rc;
    for (uint32_t i = 0; i < sel->n_items; i++)
        if (sel->items[i].expr->kind != SQL_N_STAR &&
            (rc = rewrite_qualified(p, sel->items[i].expr)))
            return rc;
    /* Grouping over the pairs: the same names, rewritten in place (group
     * nodes point into these trees or the select list's). */
    for (uint32_t i = 0; i < sel->n_group; i++)
        if (sel->group[i].expr && (rc = rewrite_qualified(p, sel->group[i].expr)))
            return rc;
    if ((rc = rewrite_qualified(p, sel->having)))
        return rc;
    return WEIR_OK;
}

/* ---- compile ------------------------------------------------------------------ */

static int64_t gcd64(int64_t a, int64_t b)
{
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int plan(planner *p, const sql_select *src, eng_stream_lookup_fn lookup, void *larg)
{
    eng_rule *r = p->r;
    bool oom = false;
    sql_select *sel = r->sel = cp_select(&r->plan, src, &oom);
    if (oom)
        return pmem(p);
    int rc;
    if (sel->distinct)
        return pfail(p, WEIR_EUNSUPPORTED, sel->line, sel->column,
                     "SELECT DISTINCT is not supported in rules");
    if (src->n_order)
        return PFAIL_NODE(p, WEIR_EUNSUPPORTED, src->order[0].expr,
                          "ORDER BY has no meaning on an unbounded stream");
    if (sel->has_limit)
        return pfail(p, WEIR_EUNSUPPORTED, sel->line, sel->column,
                     "LIMIT has no meaning on an unbounded stream");

    /* Inputs. */
    r->n_inputs = sel->join ? 2 : 1;
    const sql_source *srcs[2] = {&sel->from, sel->join ? &sel->join->right : NULL};
    for (uint32_t i = 0; i < r->n_inputs; i++) {
        r->inputs[i] = srcs[i]->stream;
        r->aliases[i] = srcs[i]->alias ? srcs[i]->alias : srcs[i]->stream;
        const char *tsf = NULL;
        if (lookup && !lookup(larg, srcs[i]->stream, &tsf))
            return pfail(p, WEIR_ENOTFOUND, srcs[i]->line, srcs[i]->column, "unknown stream %s",
                         srcs[i]->stream);
        r->ts_fields[i] = tsf ? cp_str(&r->plan, tsf) : NULL;
    }
    if (r->n_inputs == 2 && strcmp(r->aliases[0], r->aliases[1]) == 0)
        return pfail(p, WEIR_EINVAL, sel->join->line, sel->join->column,
                     "both sides of the JOIN are called %s: give one an alias", r->aliases[0]);

    /* Output columns. */
    r->star_pos = -1;
    r->star_side = -1;
    r->n_cols = sel->n_items;
    r->col_exprs = arena_alloc(&r->plan, (sel->n_items + 1) * sizeof(sql_node *));
    r->col_names = arena_alloc(&r->plan, (sel->n_items + 1) * sizeof(char *));
    r->sf = arena_alloc(&r->plan, 32 * sizeof(eng_sf_site));
    r->sf_nodes = arena_alloc(&r->plan, 32 * sizeof(sql_node *));
    if (!r->col_exprs || !r->col_names || !r->sf || !r->sf_nodes)
        return pmem(p);
    for (uint32_t i = 0; i < sel->n_items; i++) {
        const sql_select_item *it = &sel->items[i];
        if (it->expr->kind == SQL_N_STAR) {
            if (r->star_pos >= 0)
                return pfail(p, WEIR_EUNSUPPORTED, it->line, it->column,
                             "only one * is supported in a rule");
            if (it->expr->qualifier) {
                r->star_side = side_of(r, it->expr->qualifier);
                if (r->star_side < 0)
                    return pfail(p, WEIR_EINVAL, it->line, it->column, "unknown table \"%s\"",
                                 it->expr->qualifier);
            }
            r->star_pos = (int)i;
            r->col_exprs[i] = NULL;
            r->col_names[i] = "*";
            continue;
        }
        if ((rc = check_expr(p, it->expr, true, true, "")))
            return rc;
        r->col_exprs[i] = it->expr;
        r->col_names[i] = column_name(r, it);
    }
    if ((rc = check_expr(p, sel->where, false, true, "WHERE")) ||
        (rc = check_expr(p, sel->having, true, false, "HAVING")))
        return rc;
    if (sel->join && (rc = check_expr(p, sel->join->on, false, false, "ON")))
        return rc;

    /* State functions: in WHERE, the select list, aggregate arguments. */
    if ((rc = add_sfs(p, sel->where)))
        return rc;
    for (uint32_t i = 0; i < sel->n_items; i++)
        if (r->col_exprs[i] && (rc = add_sfs(p, r->col_exprs[i])))
            return rc;

    /* GROUP BY and the window. */
    r->group_nodes = arena_alloc(&r->plan, (sel->n_group + 1) * sizeof(sql_node *));
    if (!r->group_nodes)
        return pmem(p);
    for (uint32_t i = 0; i < sel->n_group; i++) {
        const sql_group_item *gi = &sel->group[i];
        if (!gi->expr) {
            if (r->win.kind != SQL_WIN_NONE)
                return pfail(p, WEIR_EINVAL, gi->line, gi->column,
                             "GROUP BY has at most one window");
            r->win = gi->window;
            continue;
        }
        const sql_node *g = gi->expr;
        if (g->kind == SQL_N_IDENT && !g->qualifier)
            for (uint32_t k = 0; k < sel->n_items; k++)
                if (sel->items[k].alias && strcmp(sel->items[k].alias, g->name) == 0)
                    g = sel->items[k].expr;
        if ((rc = check_expr(p, g, false, false, "GROUP BY")))
            return rc;
        r->group_nodes[r->n_group++] = g;
    }

    /* Aggregates. */
    for (uint32_t i = 0; i < sel->n_items; i++)
        if (r->col_exprs[i] && (rc = add_aggs(p, r->col_exprs[i])))
            return rc;
    if ((rc = add_aggs(p, sel->having)))
        return rc;
    bool grouped = r->n_aggs > 0 || sel->n_group > 0;

    if ((rc = read_options(p, &src->options)))
        return rc;

    if (sel->join) {
        if ((rc = plan_join(p)))
            return rc;
        if (!grouped) {
            r->mode = ENG_MODE_JOIN;
            return WEIR_OK;
        }
    }

    if (!grouped) {
        if (sel->having)
            return PFAIL_NODE(p, WEIR_EINVAL, sel->having,
                              "HAVING needs GROUP BY or an aggregate function");
        r->mode = ENG_MODE_MAP;
        return WEIR_OK;
    }
    if (r->star_pos >= 0)
        return pfail(p, WEIR_EINVAL, sel->items[r->star_pos].line,
                     sel->items[r->star_pos].column,
                     "* cannot be used with GROUP BY or aggregates");
    for (uint32_t i = 0; i < sel->n_items; i++)
        if ((rc = check_grouped(p, r->col_exprs[i], false)))
            return rc;
    if ((rc = check_grouped(p, sel->having, true)))
        return rc;
    r->all_remove = true;
    for (uint32_t i = 0; i < r->n_aggs; i++)
        if (!r->aggs[i].agg->remove)
            r->all_remove = false;
    switch (r->win.kind) {
    case SQL_WIN_NONE: r->mode = ENG_MODE_GROUP; break;
    case SQL_WIN_TUMBLING:
        r->win.advance_ns = r->win.size_ns;
        /* fall through */
    case SQL_WIN_HOPPING:
        if (r->win.advance_ns > r->win.size_ns)
            return pfail(p, WEIR_EINVAL, sel->line, sel->column,
                         "HOPPING: the advance must not be longer than the size");
        r->mode = ENG_MODE_PANES;
        r->pane = gcd64(r->win.size_ns, r->win.advance_ns);
        if (r->win.size_ns / r->pane > 100000)
            return pfail(p, WEIR_EUNSUPPORTED, sel->line, sel->column,
                         "HOPPING: size / gcd(size, advance) must be at most 100000 panes");
        break;
    case SQL_WIN_SLIDING: r->mode = ENG_MODE_SLIDING; break;
    case SQL_WIN_SESSION: r->mode = ENG_MODE_SESSION; break;
    case SQL_WIN_COUNT:
        r->mode = ENG_MODE_COUNT;
        if (r->win.count_advance <= 0)
            r->win.count_advance = r->win.count;
        if (r->win.count > 1000000)
            return pfail(p, WEIR_EUNSUPPORTED, sel->line, sel->column,
                         "COUNT windows hold at most 1000000 rows");
        break;
    }
    r->pane_stride = ENG_PANE_HDR + r->state_size;
    return WEIR_OK;
}

int eng_rule_compile(const sql_stmt *stmt, eng_stream_lookup_fn lookup, void *lookup_arg,
                     const eng_limits *lim, eng_rule **out, sql_error *err)
{
    *out = NULL;
    if (err)
        memset(err, 0, sizeof(*err));
    eng_rule *r = calloc(1, sizeof(*r));
    if (!r)
        return WEIR_ENOMEM;
    planner p = {r, err};
    arena_init(&r->plan, PLAN_MAX);
    arena_init(&r->scratch, SCRATCH_MAX);
    arena_init(&r->escratch, SCRATCH_MAX);
    eng_gtab_init(&r->groups);
    eng_gtab_init(&r->sf_keys);
    eng_gtab_init(&r->jgroups);
    r->max_state = lim && lim->max_state_bytes ? lim->max_state_bytes : DEFAULT_MAX_STATE;
    r->max_groups = lim && lim->max_groups ? lim->max_groups : DEFAULT_MAX_GROUPS;
    int rc = WEIR_OK;
    if (stmt && stmt->kind == SQL_STMT_EXPLAIN && stmt->explained)
        stmt = stmt->explained; /* EXPLAIN CREATE RULE ...: the rule, for eng_rule_explain */
    const sql_select *sel = stmt ? stmt->select : NULL;
    if (!stmt || !sel || (stmt->kind != SQL_STMT_CREATE_RULE && stmt->kind != SQL_STMT_SELECT)) {
        rc = pfail(&p, WEIR_EINVAL, stmt ? stmt->line : 0, stmt ? stmt->column : 0,
                   "a rule is CREATE RULE name AS SELECT ... EMIT TO 'target'");
        goto fail;
    }
    weir_buf b;
    buf_init(&b, SQL_MAX_TEXT * 2);
    rc = sql_print(stmt, &b);
    if (rc == WEIR_OK) {
        r->canonical = arena_strdup(&r->plan, (const char *)buf_head(&b), buf_used(&b));
        r->sql_crc = crc32c(buf_head(&b), buf_used(&b));
    }
    buf_free(&b);
    if (rc || !r->canonical) {
        rc = pmem(&p);
        goto fail;
    }
    r->name = cp_str(&r->plan, stmt->name ? stmt->name : "");
    r->target = cp_str(&r->plan, sel->emit_target ? sel->emit_target : "");
    if ((rc = plan(&p, sel, lookup, lookup_arg)))
        goto fail;
    r->wm = INT64_MIN;
    r->max_ts = INT64_MIN;
    r->next_session = INT64_MAX;
    r->next_left_check = INT64_MAX;
    *out = r;
    return WEIR_OK;
fail:
    eng_rule_free(r);
    return rc;
}

void eng_rule_free(eng_rule *r)
{
    if (!r)
        return;
    eng_gtab_clear(r, &r->groups);
    eng_gtab_clear(r, &r->sf_keys);
    eng_gtab_clear(r, &r->jgroups);
    arena_free(&r->plan);
    arena_free(&r->scratch);
    arena_free(&r->escratch);
    free(r);
}

uint32_t eng_rule_n_inputs(const eng_rule *r)
{
    return r->n_inputs;
}

const char *eng_rule_input(const eng_rule *r, uint32_t i)
{
    return i < r->n_inputs ? r->inputs[i] : NULL;
}

const char *eng_rule_target(const eng_rule *r)
{
    return r->target;
}

uint32_t eng_rule_n_cols(const eng_rule *r)
{
    return r->n_cols;
}

const char *eng_rule_col(const eng_rule *r, uint32_t i)
{
    return i < r->n_cols ? r->col_names[i] : NULL;
}

/* ---- ids --------------------------------------------------------------------- */

uint64_t eng_id_record(uint32_t input, uint32_t partition, uint64_t offset, uint32_t row)
{
    uint8_t b[1 + 4 + 4 + 8 + 4];
    b[0] = 'R';
    memcpy(b + 1, &input, 4);
    memcpy(b + 5, &partition, 4);
    memcpy(b + 9, &offset, 8);
    memcpy(b + 17, &row, 4);
    return XXH3_64bits(b, sizeof(b));
}

uint64_t eng_id_window(int64_t start, int64_t end, const rec_value *vals, uint32_t n,
                       uint32_t rev)
{
    uint8_t b[1 + 8 + 8 + 8 + 4];
    uint64_t kh = eng_hash_vals(vals, n);
    b[0] = 'W';
    memcpy(b + 1, &start, 8);
    memcpy(b + 9, &end, 8);
    memcpy(b + 17, &kh, 8);
    memcpy(b + 25, &rev, 4);
    return XXH3_64bits(b, sizeof(b));
}

/* ---- emitting ------------------------------------------------------------------ */

int eng_emit_row(eng_rule *r, eng_row *row)
{
    row->src_commit_ns = r->cur ? r->cur->commit_ns : 0;
    r->records_out++;
    if (!r->emit)
        return WEIR_OK;
    int rc = r->emit(r->emit_arg, row);
    if (rc)
        return eng_fail(r, rc, "emit failed: %s", weir_strerror(rc));
    return WEIR_OK;
}

static int eval_fail(eng_rule *r, const sql_eval_error *ee)
{
    return eng_fail(r, WEIR_EINVAL, "%s", ee->msg[0] ? ee->msg : "evaluation failed");
}

int eng_emit_group(eng_rule *r, const eng_group *g, const rec_value *agg_vals, int64_t ws,
                   int64_t we, int64_t ts, uint64_t id, uint32_t rev)
{
    arena *a = &r->escratch;
    uint32_t n = r->n_cols;
    rec_value *vals = arena_alloc(a, (n + 2) * sizeof(rec_value));
    const char **names = arena_alloc(a, (n + 2) * sizeof(char *));
    if (!vals || !names)
        return eng_fail_mem(r);
    rec_value *ref_vals = arena_alloc(a, (r->n_refs + 1) * sizeof(rec_value));
    if (!ref_vals)
        return eng_fail_mem(r);
    for (uint32_t i = 0; i < r->n_refs; i++)
        ref_vals[i] = agg_vals[r->ref_slot[i]];
    names[0] = "window_start";
    names[1] = "window_end";
    vals[0] = sql_int(ws);
    vals[1] = sql_int(we);
    for (uint32_t i = 0; i < n; i++)
        names[2 + i] = r->sel->items[i].alias;
    sql_row row = {.now_ns = ts,
                   .group_nodes = r->group_nodes,
                   .group_vals = g->vals,
                   .n_groups = r->n_group,
                   .agg_nodes = r->ref_nodes,
                   .agg_vals = ref_vals,
                   .n_aggs = r->n_refs,
                   .col_names = names,
                   .col_vals = vals,
                   .n_cols = r->win.kind != SQL_WIN_NONE ? 2 : 0};
    uint32_t base = row.n_cols;
    if (base == 0) {
        row.col_names = names + 2;
        row.col_vals = vals + 2;
    }
    sql_eval_error ee = {{0}};
    for (uint32_t i = 0; i < n; i++) {
        if (sql_eval(r->col_exprs[i], &row, &vals[2 + i], a, &ee))
            return eval_fail(r, &ee);
        row.n_cols++;
    }
    if (r->sel->having) {
        sql_tri t;
        if (sql_eval_cond(r->sel->having, &row, &t, a, &ee))
            return eval_fail(r, &ee);
        if (t != SQL_TRUE)
            return WEIR_OK;
    }
    eng_row out = {.n_cols = n,
                   .names = r->col_names,
                   .vals = vals + 2,
                   .ts = ts,
                   .key = g->n_vals ? g->keytext : NULL,
                   .key_len = g->n_vals ? g->keylen : 0,
                   .id = id,
                   .revision = rev,
                   .window_start = ws,
                   .window_end = we};
    return eng_emit_row(r, &out);
}

void eng_record_row(eng_rule *r, const record *rec, uint32_t input, sql_row *row,
                    const rec_value *pre)
{
    memset(row, 0, sizeof(*row));
    row->rec = rec;
    row->ts = rec->ts;
    row->key = rec->key_len ? rec->key : NULL;
    row->key_len = rec->key_len;
    row->now_ns = r->cur ? r->cur->commit_ns : rec->ts;
    row->ts_field = input < r->n_inputs ? r->ts_fields[input] : NULL;
    row->pre_nodes = r->sf_nodes;
    row->pre_vals = pre;
    row->n_pre = pre ? r->n_sf : 0;
}

/* The record's fields as output columns (SELECT *). */
static int star_cols(eng_rule *r, const record *rec, const char ***names, rec_value **vals,
                     uint32_t *n)
{
    arena *a = &r->scratch;
    *names = arena_alloc(a, (rec->n_fields + 1) * sizeof(char *));
    *vals = arena_alloc(a, (rec->n_fields + 1) * sizeof(rec_value));
    if (!*names || !*vals)
        return eng_fail_mem(r);
    for (uint32_t i = 0; i < rec->n_fields; i++) {
        (*names)[i] = arena_strdup(a, rec->fields[i].name, rec->fields[i].name_len);
        if (!(*names)[i])
            return eng_fail_mem(r);
        (*vals)[i] = rec->fields[i].v;
    }
    *n = rec->n_fields;
    return WEIR_OK;
}

int eng_project_emit(eng_rule *r, const sql_row *row, const record *star_rec, const char *key,
                     uint32_t key_len, int64_t ts, uint64_t id)
{
    arena *a = &r->scratch;
    const char **snames = NULL;
    rec_value *svals = NULL;
    uint32_t n_star = 0;
    int rc;
    if (r->star_pos >= 0 && star_rec && (rc = star_cols(r, star_rec, &snames, &svals, &n_star)))
        return rc;
    uint32_t n = r->n_cols + n_star;
    rec_value *vals = arena_alloc(a, (n + 1) * sizeof(rec_value));
    const char **names = arena_alloc(a, (n + 1) * sizeof(char *));
    if (!vals || !names)
        return eng_fail_mem(r);
    uint32_t k = 0;
    sql_eval_error ee = {{0}};
    for (uint32_t i = 0; i < r->n_cols; i++) {
        if (!r->col_exprs[i]) {
            for (uint32_t s = 0; s < n_star; s++) {
                names[k] = snames[s];
                vals[k++] = svals[s];
            }
            continue;
        }
        if (sql_eval(r->col_exprs[i], row, &vals[k], a, &ee))
            return eval_fail(r, &ee);
        names[k++] = r->col_names[i];
    }
    eng_row out = {.n_cols = k,
                   .names = names,
                   .vals = vals,
                   .ts = ts,
                   .key = key,
                   .key_len = key_len,
                   .id = id};
    return eng_emit_row(r, &out);
}

int eng_emit_late(eng_rule *r, const record *rec)
{
    r->late++;
    const char **names;
    rec_value *vals;
    uint32_t n;
    int rc = star_cols(r, rec, &names, &vals, &n);
    if (rc)
        return rc;
    const eng_input_rec *in = r->cur;
    eng_row out = {.n_cols = n,
                   .names = names,
                   .vals = vals,
                   .ts = rec->ts,
                   .key = rec->key_len ? rec->key : NULL,
                   .key_len = rec->key_len,
                   .id = in ? eng_id_record(in->input, in->partition, in->offset, 0) : r->cur_id,
                   .late = true};
    return eng_emit_row(r, &out);
}

/* ---- push ----------------------------------------------------------------------- */

static int map_push(eng_rule *r, const record *rec, const rec_value *pre)
{
    sql_row row;
    eng_record_row(r, rec, r->cur->input, &row, pre);
    sql_eval_error ee = {{0}};
    if (r->sel->where) {
        sql_tri t;
        if (sql_eval_cond(r->sel->where, &row, &t, &r->scratch, &ee))
            return eval_fail(r, &ee);
        if (t != SQL_TRUE)
            return WEIR_OK;
    }
    const eng_input_rec *in = r->cur;
    return eng_project_emit(r, &row, rec, rec->key_len ? rec->key : NULL, rec->key_len, rec->ts,
                            eng_id_record(in->input, in->partition, in->offset, 0));
}

static void set_ctx(eng_rule *r, const eng_input_rec *in, eng_emit_fn emit, void *arg, char *err,
                    size_t errlen)
{
    r->cur = in;
    r->emit = emit;
    r->emit_arg = arg;
    r->errbuf = err;
    r->errlen = errlen;
    if (err && errlen)
        err[0] = 0;
}

static void clear_ctx(eng_rule *r)
{
    r->cur = NULL;
    r->emit = NULL;
    r->emit_arg = NULL;
    r->errbuf = NULL;
    r->errlen = 0;
}

static int advance(eng_rule *r)
{
    if (r->sel->join) {
        int rc = eng_join_advance(r);
        if (rc || !r->join_agg)
            return rc;
    }
    if (r->mode == ENG_MODE_MAP || r->mode == ENG_MODE_GROUP || r->mode == ENG_MODE_JOIN)
        return WEIR_OK;
    return eng_window_advance(r);
}

int eng_rule_push(eng_rule *r, const eng_input_rec *in, eng_emit_fn emit, void *emit_arg,
                  char *err, size_t errlen)
{
    if (!in || !in->rec || in->input >= r->n_inputs) {
        if (err && errlen)
            snprintf(err, errlen, "input %u is not an input of this rule", in ? in->input : 0);
        return WEIR_EINVAL;
    }
    set_ctx(r, in, emit, emit_arg, err, errlen);
    arena_reset(&r->scratch);
    r->records_in++;
    const record *rec = in->rec;
    int rc = WEIR_OK;
    r->cur_id = eng_id_record(in->input, in->partition, in->offset, 0);
    if (rec->ts > ENG_TIME_MAX || rec->ts < -ENG_TIME_MAX) {
        rc = eng_fail(r, WEIR_EINVAL, "event time %lld is out of range", (long long)rec->ts);
        goto out;
    }
    if (!r->have_ts || rec->ts > r->max_ts) {
        r->have_ts = true;
        r->max_ts = rec->ts;
        int64_t w = rec->ts - r->max_delay;
        if (w > r->wm)
            r->wm = w;
    }
    rec_value *pre = NULL;
    if (r->n_sf) {
        pre = arena_alloc(&r->scratch, r->n_sf * sizeof(rec_value));
        if (!pre) {
            rc = eng_fail_mem(r);
            goto out;
        }
        if ((rc = eng_sf_eval(r, rec, pre)))
            goto out;
    }
    if (r->sel->join)
        rc = eng_join_push(r, rec, pre);
    else if (r->mode == ENG_MODE_MAP)
        rc = map_push(r, rec, pre);
    else
        rc = eng_window_push(r, rec, pre);
    if (rc == WEIR_OK || rc == WEIR_EINVAL) {
        int rc2 = advance(r);
        if (rc == WEIR_OK)
            rc = rc2;
    }
out:
    if (rc == WEIR_EINVAL)
        r->errors++;
    clear_ctx(r);
    return rc;
}

int eng_rule_tick(eng_rule *r, int64_t now_ns, eng_emit_fn emit, void *emit_arg, char *err,
                  size_t errlen)
{
    if (r->idle_ns <= 0 || !r->have_ts)
        return WEIR_OK;
    int64_t w = now_ns - r->idle_ns - r->max_delay;
    if (w > ENG_TIME_MAX)
        w = ENG_TIME_MAX;
    if (w <= r->wm)
        return WEIR_OK;
    set_ctx(r, NULL, emit, emit_arg, err, errlen);
    arena_reset(&r->scratch);
    r->wm = w;
    int rc = advance(r);
    clear_ctx(r);
    return rc;
}

void eng_rule_get_stats(const eng_rule *r, eng_rule_stats *out)
{
    out->records_in = r->records_in;
    out->records_out = r->records_out;
    out->late = r->late;
    out->errors = r->errors;
    out->state_bytes = r->state_bytes;
    out->watermark = r->wm;
}

size_t eng_rule_state_bytes(const eng_rule *r)
{
    return r->state_bytes;
}

/* ---- explain -------------------------------------------------------------------- */

static json_t *expr_json(const sql_node *e)
{
    if (!e)
        return json_null();
    weir_buf b;
    buf_init(&b, 1 << 16);
    json_t *j = NULL;
    if (sql_print_expr(e, &b) == WEIR_OK)
        j = json_stringn((const char *)buf_head(&b), buf_used(&b));
    buf_free(&b);
    return j ? j : json_null();
}

static const char *mode_name(eng_mode m)
{
    switch (m) {
    case ENG_MODE_MAP: return "map";
    case ENG_MODE_GROUP: return "group";
    case ENG_MODE_PANES: return "window";
    case ENG_MODE_SLIDING: return "sliding";
    case ENG_MODE_SESSION: return "session";
    case ENG_MODE_COUNT: return "count";
    case ENG_MODE_JOIN: return "join";
    }
    return "?";
}

int eng_rule_explain(const eng_rule *r, weir_buf *out)
{
    json_t *root = json_object(), *ops = json_array(), *in = json_array();
    for (uint32_t i = 0; i < r->n_inputs; i++)
        json_array_append_new(in, json_pack("{s:i,s:s,s:s,s:s?}", "input", (int)i, "stream",
                                            r->inputs[i], "alias", r->aliases[i], "event_time",
                                            r->ts_fields[i]));
    json_object_set_new(root, "rule", json_string(r->name));
    json_object_set_new(root, "sql", json_string(r->canonical));
    json_object_set_new(root, "mode", json_string(mode_name(r->mode)));
    json_object_set_new(root, "inputs", in);
    for (uint32_t i = 0; i < r->n_inputs; i++)
        json_array_append_new(ops, json_pack("{s:s,s:s}", "op", "scan", "stream", r->inputs[i]));
    if (r->n_sf) {
        json_t *fs = json_array();
        for (uint32_t i = 0; i < r->n_sf; i++)
            json_array_append_new(fs, expr_json(r->sf_nodes[i]));
        json_array_append_new(ops, json_pack("{s:s,s:s,s:o}", "op", "state", "per", "record key",
                                             "functions", fs));
    }
    if (r->sel->join) {
        json_t *j = json_pack("{s:s,s:s,s:o,s:o,s:I}", "op", "join", "type",
                              r->left_join ? "left" : "inner", "left_key", expr_json(r->jkey[0]),
                              "right_key", expr_json(r->jkey[1]), "within_ns",
                              (json_int_t)r->within);
        if (r->jextra)
            json_object_set_new(j, "condition", expr_json(r->jextra));
        json_array_append_new(ops, j);
    }
    if (r->sel->where)
        json_array_append_new(ops, json_pack("{s:s,s:o}", "op", "filter", "where",
                                             expr_json(r->sel->where)));
    if (r->mode != ENG_MODE_MAP && r->mode != ENG_MODE_JOIN) {
        json_t *keys = json_array(), *aggs = json_array();
        for (uint32_t i = 0; i < r->n_group; i++)
            json_array_append_new(keys, expr_json(r->group_nodes[i]));
        for (uint32_t i = 0; i < r->n_aggs; i++)
            json_array_append_new(aggs, json_pack("{s:o,s:b}", "call", expr_json(r->agg_nodes[i]),
                                                  "removable", r->aggs[i].agg->remove != NULL));
        json_t *w = json_pack("{s:s,s:s,s:o,s:o,s:I}", "op", "aggregate", "window",
                              r->win.kind ? sql_window_kind_name(r->win.kind) : "none", "keys",
                              keys, "aggregates", aggs, "state_bytes_per_group",
                              (json_int_t)r->state_size);
        switch (r->win.kind) {
        case SQL_WIN_TUMBLING:
        case SQL_WIN_HOPPING:
            json_object_set_new(w, "size_ns", json_integer(r->win.size_ns));
            json_object_set_new(w, "advance_ns", json_integer(r->win.advance_ns));
            json_object_set_new(w, "pane_ns", json_integer(r->pane));
            break;
        case SQL_WIN_SLIDING:
            json_object_set_new(w, "size_ns", json_integer(r->win.size_ns));
            json_object_set_new(w, "strategy", json_string(r->all_remove ? "add/remove"
                                                                          : "rebuild from buffer"));
            break;
        case SQL_WIN_SESSION: json_object_set_new(w, "gap_ns", json_integer(r->win.size_ns)); break;
        case SQL_WIN_COUNT:
            json_object_set_new(w, "rows", json_integer(r->win.count));
            json_object_set_new(w, "step", json_integer(r->win.count_advance));
            break;
        default: break;
        }
        json_array_append_new(ops, w);
        if (r->sel->having)
            json_array_append_new(ops, json_pack("{s:s,s:o}", "op", "having", "condition",
                                                 expr_json(r->sel->having)));
    }
    json_t *cols = json_array();
    for (uint32_t i = 0; i < r->n_cols; i++)
        json_array_append_new(cols, json_pack("{s:s,s:o}", "name", r->col_names[i], "expr",
                                              r->col_exprs[i] ? expr_json(r->col_exprs[i])
                                                              : json_string("*")));
    json_array_append_new(ops, json_pack("{s:s,s:o}", "op", "project", "columns", cols));
    json_array_append_new(ops, json_pack("{s:s,s:s}", "op", "emit", "target", r->target));
    json_object_set_new(root, "operators", ops);
    json_object_set_new(root, "options",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "lateness_ns", (json_int_t)r->lateness,
                                  "max_delay_ns", (json_int_t)r->max_delay, "idle_timeout_ns",
                                  (json_int_t)r->idle_ns, "max_state", (json_int_t)r->max_state,
                                  "max_groups", (json_int_t)r->max_groups));
    char *s = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (!s)
        return WEIR_ENOMEM;
    int rc = buf_append(out, s, strlen(s));
    free(s);
    return rc;
}
