/* plan.h -- planning steps shared by the two executors of weir's SQL:
 * history queries (sql/query.c) and continuous rules (engine/rule.c).
 *
 * Both check the same things about an expression before running it, and
 * must agree on them so that a SELECT behaves the same as a query and as
 * a rule: what a function call may look like, how an aggregate call is
 * resolved (which accumulator, which constant parameters, whether they
 * are valid), and what an output column is called. The executors differ
 * in everything else (a query scans and sorts once; a rule keeps windows),
 * so only these pieces are shared; each executor keeps its own walk over
 * the tree for what only it allows (windows, joins, state functions).
 */
#ifndef WEIR_SQL_PLAN_H
#define WEIR_SQL_PLAN_H

#include "base/arena.h"
#include "sql/agg.h"
#include "sql/ast.h"

#include <stddef.h>

#define SQL_PLAN_MAX_PARAMS 4

/* An aggregate call resolved for execution. */
typedef struct sql_plan_agg {
    const sql_agg *agg;
    rec_value params[SQL_PLAN_MAX_PARAMS]; /* constant trailing arguments */
    int n_params;
} sql_plan_agg;

/* The output name of a select item: its alias, a bare column's name, an
 * aggregate's name (count, avg), else the canonical text of the
 * expression (copied into a). Never NULL ("?column?" when out of memory). */
const char *sql_plan_column_name(arena *a, const sql_select_item *it);

/* A scalar function call (not an aggregate): the function exists and takes
 * that many arguments (now() included). WEIR_OK, or WEIR_EINVAL with a
 * sentence in msg. */
int sql_plan_check_call(const sql_node *e, char *msg, size_t msglen);

/* Resolves the aggregate call e: its accumulator, the count of constant
 * parameters, their values (evaluated in a) and a trial init that checks
 * them. WEIR_OK, or WEIR_EINVAL with *bad the offending node and a
 * sentence in msg, or WEIR_ENOMEM / WEIR_ETOOBIG from the arena. */
int sql_plan_agg_resolve(const sql_node *e, arena *a, sql_plan_agg *out, const sql_node **bad,
                         char *msg, size_t msglen);

#endif
