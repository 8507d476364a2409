/* plan.c -- see plan.h. */
#include "sql/plan.h"
#include "base/buf.h"
#include "base/err.h"
#include "sql/eval.h"
#include "sql/functions.h"
#include "sql/parser.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

const char *sql_plan_column_name(arena *a, const sql_select_item *it)
{
    if (it->alias)
        return it->alias;
    if (it->expr->kind == SQL_N_IDENT)
        return it->expr->name;
    if (it->expr->kind == SQL_N_CALL && it->expr->n_kids <= 1 &&
        (it->expr->star || sql_node_is_agg(it->expr)))
        return it->expr->name;
    weir_buf b;
    buf_init(&b, 4096);
    const char *out = "?column?";
    if (sql_print_expr(it->expr, &b) == WEIR_OK) {
        char *s = arena_strdup(a, (const char *)buf_head(&b), buf_used(&b));
        if (s)
            out = s;
    }
    buf_free(&b);
    return out;
}

int sql_plan_check_call(const sql_node *e, char *msg, size_t msglen)
{
    if (strcasecmp(e->name, "now") == 0 && e->n_kids == 0)
        return WEIR_OK;
    const sql_function *f = sql_function_find(e->name, strlen(e->name));
    if (!f) {
        snprintf(msg, msglen, "unknown function %s", e->name);
        return WEIR_EINVAL;
    }
    if ((int)e->n_kids < f->min_args || (int)e->n_kids > f->max_args) {
        snprintf(msg, msglen, "%s takes %d to %d arguments, not %u", f->name, f->min_args,
                 f->max_args, e->n_kids);
        return WEIR_EINVAL;
    }
    return WEIR_OK;
}

int sql_plan_agg_resolve(const sql_node *e, arena *a, sql_plan_agg *out, const sql_node **bad,
                         char *msg, size_t msglen)
{
    memset(out, 0, sizeof(*out));
    *bad = e;
    const sql_agg *ag = e->star ? sql_agg_find("count_star", 10)
                                : sql_agg_find(e->name, strlen(e->name));
    if (!ag) {
        snprintf(msg, msglen, "unknown aggregate %s", e->name);
        return WEIR_EINVAL;
    }
    int n_params = e->star ? 0 : (int)e->n_kids - ag->n_args;
    if (n_params < ag->min_params || n_params > ag->max_params ||
        n_params > SQL_PLAN_MAX_PARAMS) {
        snprintf(msg, msglen, "%s: wrong number of arguments (%u)", ag->name, e->n_kids);
        return WEIR_EINVAL;
    }
    out->agg = ag;
    out->n_params = n_params;
    for (int i = 0; i < n_params; i++) {
        sql_eval_error ee = {{0}};
        const sql_node *pn = e->kids[ag->n_args + i];
        sql_row row = {.now_ns = 0};
        if (sql_eval(pn, &row, &out->params[i], a, &ee)) {
            *bad = pn;
            snprintf(msg, msglen, "%s: parameter %d must be a constant", ag->name,
                     ag->n_args + i + 1);
            return WEIR_EINVAL;
        }
    }
    /* Check the parameters once by initialising a throwaway state. */
    void *tmp = arena_alloc(a, ag->state_size);
    if (!tmp) {
        int rc = arena_last_error(a);
        snprintf(msg, msglen, "out of memory while planning");
        return rc ? rc : WEIR_ENOMEM;
    }
    sql_eval_error ee = {{0}};
    if (ag->init(tmp, out->params, n_params, &ee)) {
        snprintf(msg, msglen, "%s", ee.msg);
        return WEIR_EINVAL;
    }
    return WEIR_OK;
}
