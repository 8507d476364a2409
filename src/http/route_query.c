/* route_query.c -- POST /api/v1/query: a SQL SELECT over stored streams
 * (a history query: the same dialect as rules, without EMIT TO).
 *
 * Other statements (CREATE/DROP/START/STOP RULE, SHOW RULES, SHOW STREAMS,
 * EXPLAIN, CREATE/DROP STREAM) are dispatched to route_rules.c.
 *
 * Body: the statement as text (any Content-Type), or JSON {"sql": "..."}.
 * Answer: {"columns": [...], "rows": [[...], ...], "stats": {...}}, or 400
 * {"error", "line", "column"} pointing into the statement. The query runs
 * on the loop for now (it resolves stream names in the loop-owned ingest
 * registry); unlike series and pages it is not yet moved to the thread pool,
 * so a query over a very large range stalls other clients while it runs.
 */
#include "base/err.h"
#include "http/routes.h"
#include "sql/parser.h"
#include "sql/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_MAX_ROWS 10000

/* Whether the caller may run the statement: SELECT and EXPLAIN read every
 * stream they name (FROM and JOIN); the other statements need the
 * permission of the REST route that does the same (rules, streams), and a
 * CREATE RULE also reads its input streams. A statement that does not parse
 * is let through: the answer is its syntax error, with nothing read. */
static bool may_run(http_api_ctx *api, http_request *r, const char *text, size_t len)
{
    arena a;
    arena_init(&a, 4u << 20);
    sql_stmt *st = NULL;
    sql_error perr;
    bool ok = true;
    if (sql_parse(text, len, &a, &st, &perr) == WEIR_OK && st) {
        const auth_identity *who = http_identity(r);
        const sql_select *sel = NULL;
        switch (st->kind) {
        case SQL_STMT_SELECT:
            sel = st->select;
            break;
        case SQL_STMT_EXPLAIN:
            sel = st->explained ? st->explained->select : NULL;
            break;
        case SQL_STMT_CREATE_RULE:
            ok = auth_check(api->auth, who, AUTH_RULE_MANAGE, NULL, 0) == WEIR_OK;
            sel = st->select;
            break;
        case SQL_STMT_DROP_RULE:
            ok = auth_check(api->auth, who, AUTH_RULE_MANAGE, NULL, 0) == WEIR_OK;
            break;
        case SQL_STMT_START_RULE:
        case SQL_STMT_STOP_RULE:
            ok = auth_check(api->auth, who, AUTH_RULE_CONTROL, NULL, 0) == WEIR_OK;
            break;
        case SQL_STMT_SHOW_RULES:
            ok = auth_check(api->auth, who, AUTH_RULE_READ, NULL, 0) == WEIR_OK;
            break;
        case SQL_STMT_CREATE_STREAM:
        case SQL_STMT_DROP_STREAM:
            ok = auth_check(api->auth, who, AUTH_STREAM_MANAGE, NULL, 0) == WEIR_OK;
            break;
        default: /* SHOW STREAMS: the names of every stream */
            ok = auth_check(api->auth, who, AUTH_QUERY, NULL, 0) == WEIR_OK;
            break;
        }
        if (ok && sel) {
            const char *from = sel->from.stream;
            ok = from && auth_check(api->auth, who, AUTH_QUERY, from, strlen(from)) == WEIR_OK;
            if (ok && sel->join && sel->join->right.stream)
                ok = auth_check(api->auth, who, AUTH_QUERY, sel->join->right.stream,
                                strlen(sel->join->right.stream)) == WEIR_OK;
        }
    }
    arena_free(&a);
    return ok;
}

void http_route_query(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    const char *text = (const char *)body;
    size_t len = n;
    json_t *j = NULL;
    if (n && body[0] == '{') {
        j = json_loadb(text, n, 0, NULL);
        const char *sql = json_string_value(json_object_get(j, "sql"));
        if (!sql) {
            json_decref(j);
            http_respond_error(w, WEIR_EINVAL, "body must be SQL text or {\"sql\": \"...\"}");
            return;
        }
        text = sql;
        len = strlen(sql);
    }
    if (api->auth && !may_run(api, r, text, len)) {
        json_decref(j);
        http_respond_json(w, 403, json_pack("{s:s, s:s}", "error",
                                            "not allowed to run this statement (or to read a "
                                            "stream it reads)",
                                            "code", "EDENIED"));
        return;
    }
    /* Statements other than SELECT go to the rules resource. */
    if (http_rules_statement(api, r, text, len, w)) {
        json_decref(j);
        return;
    }
    json_t *result = NULL;
    sql_error err;
    memset(&err, 0, sizeof(err));
    int rc = api->ingest ? sql_query_run(api->ingest, text, len, QUERY_MAX_ROWS, &result, &err)
                         : WEIR_ENOTFOUND;
    json_decref(j);
    if (rc) {
        if (err.line > 0) {
            http_respond_json(w, 400,
                              json_pack("{s:s, s:s, s:i, s:i}", "error", err.msg, "code",
                                        weir_err_name(rc), "line", err.line, "column",
                                        err.column));
        } else {
            http_respond_error(w, rc, err.msg[0] ? err.msg : NULL);
        }
        return;
    }
    http_respond_json(w, 200, result);
}
