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
#include "sql/query.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUERY_MAX_ROWS 10000

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
    /* Statements other than SELECT go to the rules resource. */
    if (http_rules_statement(api, text, len, w)) {
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
