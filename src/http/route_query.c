/* route_query.c -- POST /api/v1/query: a SQL SELECT over stored streams
 * (a history query: the same dialect as rules, without EMIT TO).
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

/* Whether the caller may read every stream the statement reads (FROM and
 * JOIN). A statement that does not parse is let through: the query answers
 * its syntax error without reading anything. */
static bool may_query(http_api_ctx *api, http_request *r, const char *text, size_t len)
{
    arena a;
    arena_init(&a, 4u << 20);
    sql_stmt *st = NULL;
    sql_error perr;
    bool ok = true;
    if (sql_parse(text, len, &a, &st, &perr) == WEIR_OK && st) {
        const sql_select *sel = st->kind == SQL_STMT_EXPLAIN && st->explained
                                    ? st->explained->select
                                    : st->select;
        const auth_identity *who = http_identity(r);
        if (!sel) {
            ok = auth_check(api->auth, who, AUTH_QUERY, NULL, 0) == WEIR_OK;
        } else {
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
    json_t *result = NULL;
    sql_error err;
    memset(&err, 0, sizeof(err));
    if (api->auth && !may_query(api, r, text, len)) {
        json_decref(j);
        http_respond_json(w, 403, json_pack("{s:s, s:s}", "error",
                                            "not allowed to read a stream this query reads",
                                            "code", "EDENIED"));
        return;
    }
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
