/* eval.h -- evaluating one SQL expression (sql/ast.h) against one row.
 *
 * A row is either a stored record (a history query's scan, a rule's input)
 * or, after aggregation, a group: the values of the GROUP BY expressions,
 * the results of the aggregate calls and the select list computed so far.
 *
 * ## Columns
 *
 * - A bare or qualified name (`temp`, `s.temp`) is the record's field of
 *   that name (exact case). A field the record does not have is NULL:
 *   records of one stream need not all carry the same fields. The
 *   qualifier is checked by the planner, not here.
 * - `ts` is the record's event time as INT nanoseconds since the epoch and
 *   `key` its key as STRING (NULL when it has none) -- UNLESS the record has
 *   a field of that name, which then wins (a stream whose payload carries
 *   its own "ts" field sees that field, in the payload's type and unit).
 *   `_ts` and `_key` always mean the pseudo-columns. Pseudo-column names
 *   are matched case-insensitively.
 *
 * ## Group rows (rec == NULL)
 *
 * A node structurally equal (sql_node_equal) to a GROUP BY expression is
 * that group's value; a CALL node listed in agg_nodes (by pointer) is the
 * aggregate's result; an unqualified name equal to a select-list alias
 * listed in col_names is that column's value. Anything else that needs a
 * record is an error.
 *
 * ## Semantics
 *
 * Operators follow sql/value.h (NULL in, NULL out; INT overflow promotes;
 * x/0 is NULL). Comparisons yield BOOL or NULL. AND/OR/NOT use SQL's
 * three-valued logic through sql_value_truthy and short-circuit (FALSE AND
 * x is FALSE without evaluating x; TRUE OR x is TRUE). x IN (...) is TRUE
 * on a match, else NULL if x or any item is NULL, else FALSE. LIKE matches
 * `%` (any run) and `_` (one UTF-8 character), case-sensitively, with no
 * escape character. Durations are INT nanoseconds, TIMESTAMP literals INT
 * nanoseconds; now() is row->now_ns (fixed per query). CAST(x AS TIMESTAMP)
 * of a string parses RFC 3339 / "YYYY-MM-DD[ HH:MM:SS]" / epoch ms; of a
 * number is a plain INT cast. -> and ->> are json_get / json_get_text.
 *
 * Values returned may point into the record's bytes or into the arena.
 */
#ifndef WEIR_SQL_EVAL_H
#define WEIR_SQL_EVAL_H

#include "base/arena.h"
#include "record/record.h"
#include "sql/ast.h"
#include "sql/value.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct sql_row {
    const record *rec; /* the record, or NULL for a group row */
    int64_t ts;        /* event time, ns */
    const char *key;   /* key bytes, or NULL */
    uint32_t key_len;
    int64_t now_ns; /* what now() returns */
    const char *ts_field; /* the stream's event-time field: that name reads as
                             the event time (ns), whatever unit the payload used */

    /* Group rows only. */
    const sql_node *const *group_nodes; /* GROUP BY expressions */
    const rec_value *group_vals;        /* their values for this group */
    uint32_t n_groups;
    const sql_node *const *agg_nodes; /* aggregate CALL nodes, by slot */
    const rec_value *agg_vals;        /* their results */
    uint32_t n_aggs;
    const char *const *col_names; /* select aliases (NULL entries skipped) */
    const rec_value *col_vals;
    uint32_t n_cols; /* how many of col_names/col_vals are valid */

    /* Any row: CALL nodes whose value the caller computed beforehand (a
     * rule's state functions changes(), lag(), ... keep per-key state the
     * evaluator knows nothing of). Matched by pointer, before anything else. */
    const sql_node *const *pre_nodes;
    const rec_value *pre_vals;
    uint32_t n_pre;
} sql_row;

/* The state functions of continuous rules (changes, lag, time_since_change,
 * changed_at): name[0..len) is one of them, any case. They need per-key
 * state across records, so only a rule can evaluate them (sql_row.pre_nodes);
 * elsewhere (history queries) they are an error. */
bool sql_is_state_fn(const char *name, size_t len);

/* Evaluates e on row into *out. WEIR_OK, or WEIR_EINVAL (a type error, an
 * unknown function, a name a group row cannot resolve) / an arena error,
 * with a sentence in err. */
int sql_eval(const sql_node *e, const sql_row *row, rec_value *out, arena *a,
             sql_eval_error *err);

/* Evaluates a condition: its truth value (SQL_UNKNOWN for NULL). */
int sql_eval_cond(const sql_node *e, const sql_row *row, sql_tri *out, arena *a,
                  sql_eval_error *err);

/* The two trees are the same expression (kinds, operators, names with the
 * qualifier ignored when either lacks one, literal values, children). */
bool sql_node_equal(const sql_node *a, const sql_node *b);

/* The node is an aggregate call (a CALL whose name sql_agg_find knows, or
 * count(*)). */
bool sql_node_is_agg(const sql_node *e);

/* LIKE: s matches pattern p (% and _, no escape). */
bool sql_like(const char *s, size_t sn, const char *p, size_t pn);

#endif
