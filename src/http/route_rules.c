/* route_rules.c -- the rules resource (continuous rules, engine/rules.h),
 * and the SQL statements other than SELECT that POST /api/v1/query takes.
 *
 *   GET    /api/v1/rules                    {"rules": [...]} in name order
 *   POST   /api/v1/rules                    CREATE RULE text, or {"sql": "...",
 *                                           "start": true, "options": {...}}
 *   GET    /api/v1/rules/{name}             one rule with status and metrics
 *   DELETE /api/v1/rules/{name}             the rule and its checkpoint (its
 *                                           derived stream stays)
 *   POST   /api/v1/rules/{name}/start|stop|restart
 *
 * A statement that does not compile answers 400 {"error", "code", "line",
 * "column"} and nothing is installed.
 */
#include "base/err.h"
#include "engine/rules.h"
#include "http/routes.h"
#include "sql/parser.h"

#include <stdio.h>
#include <string.h>

static void respond_sql_error(http_response *w, int rc, const sql_error *e)
{
    if (e->line > 0 && rc != WEIR_EEXIST)
        http_respond_json(w, 400,
                          json_pack("{s:s, s:s, s:i, s:i}", "error", e->msg, "code",
                                    weir_err_name(rc), "line", e->line, "column", e->column));
    else
        http_respond_error(w, rc, e->msg[0] ? e->msg : NULL);
}

static bool have_rules(http_api_ctx *api, http_response *w)
{
    if (!api->rules)
        http_respond_error(w, WEIR_ENOTFOUND, "rules are not available on this node");
    return api->rules != NULL;
}

void http_route_rules_list(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    http_api_ctx *api = ctx;
    if (!have_rules(api, w))
        return;
    http_respond_json(w, 200, json_pack("{s:o}", "rules", rules_list_json(api->rules)));
}

static void create(http_api_ctx *api, http_request *r, http_response *w, const char *sql,
                   size_t len, const json_t *options, bool start)
{
    sql_error e;
    int rc = rules_create(api->rules, sql, len, options, start, &e);
    /* the name is the second word after CREATE RULE: ask the list */
    arena a;
    arena_init(&a, 1u << 20);
    sql_stmt *st = NULL;
    sql_error pe;
    const char *name = !sql_parse(sql, len, &a, &st, &pe) && st->name ? st->name : NULL;
    http_audit(api, r, "rule.create", name, rc == WEIR_OK, rc ? e.msg : NULL);
    if (rc) {
        arena_free(&a);
        respond_sql_error(w, rc, &e);
        return;
    }
    json_t *j = name ? rules_get_json(api->rules, name) : NULL;
    arena_free(&a);
    http_respond_json(w, 201, j ? j : json_pack("{s:b}", "created", 1));
}

void http_route_rules_create(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    if (!have_rules(api, w))
        return;
    size_t n;
    const char *body = (const char *)http_req_body(r, &n);
    if (n && body[0] == '{') {
        json_error_t jerr;
        json_t *j = json_loadb(body, n, 0, &jerr);
        const char *sql = json_string_value(json_object_get(j, "sql"));
        json_t *start = json_object_get(j, "start");
        json_t *opts = json_object_get(j, "options");
        if (!sql || (start && !json_is_boolean(start)) || (opts && !json_is_object(opts))) {
            json_decref(j);
            http_respond_error(w, WEIR_EINVAL,
                               "body must be CREATE RULE text or {\"sql\": \"CREATE RULE ...\", "
                               "\"start\": true, \"options\": {...}}");
            return;
        }
        create(api, r, w, sql, strlen(sql), opts, start ? json_is_true(start) : true);
        json_decref(j);
        return;
    }
    create(api, r, w, body, n, NULL, true);
}

static const char *name_or_404(http_request *r, http_response *w, http_api_ctx *api)
{
    if (!have_rules(api, w))
        return NULL;
    const char *name = http_req_param(r, 0);
    json_t *j = name ? rules_get_json(api->rules, name) : NULL;
    if (!j) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no rule named '%s'", name ? name : "");
        http_respond_error(w, WEIR_ENOTFOUND, msg);
        return NULL;
    }
    json_decref(j);
    return name;
}

void http_route_rule_get(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const char *name = name_or_404(r, w, api);
    if (name)
        http_respond_json(w, 200, rules_get_json(api->rules, name));
}

void http_route_rule_delete(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const char *name = name_or_404(r, w, api);
    if (!name)
        return;
    int rc = rules_delete(api->rules, name);
    http_audit(api, r, "rule.delete", name, rc == WEIR_OK, NULL);
    if (rc)
        http_respond_error(w, rc, NULL);
    else
        http_respond_json(w, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
}

static void lifecycle(http_request *r, http_response *w, void *ctx, int op)
{
    http_api_ctx *api = ctx;
    const char *name = name_or_404(r, w, api);
    if (!name)
        return;
    char err[512] = "";
    int rc = op == 0   ? rules_start(api->rules, name, err, sizeof(err))
             : op == 1 ? rules_stop(api->rules, name)
                       : rules_restart(api->rules, name, err, sizeof(err));
    static const char *const actions[] = {"rule.start", "rule.stop", "rule.restart"};
    http_audit(api, r, actions[op], name, rc == WEIR_OK, err[0] ? err : NULL);
    json_t *j = rules_get_json(api->rules, name);
    if (rc && j) {
        /* the rule exists and says why it failed */
        json_object_set_new(j, "code", json_string(weir_err_name(rc)));
        http_respond_json(w, 409, j);
        return;
    }
    http_respond_json(w, 200, j);
}

void http_route_rule_start(http_request *r, http_response *w, void *ctx)
{
    lifecycle(r, w, ctx, 0);
}

void http_route_rule_stop(http_request *r, http_response *w, void *ctx)
{
    lifecycle(r, w, ctx, 1);
}

void http_route_rule_restart(http_request *r, http_response *w, void *ctx)
{
    lifecycle(r, w, ctx, 2);
}

/* ---- Statements of POST /api/v1/query ----------------------------------- */

static void add_stream(void *arg, ingest_stream *s)
{
    json_array_append_new(arg, ingest_stream_json(s));
}

static json_t *option_json(const sql_node *v)
{
    if (v->kind == SQL_N_DURATION)
        return json_integer(v->ns / 1000000); /* ms */
    switch (v->value.type) {
    case REC_INT:
        return json_integer(v->value.u.i);
    case REC_DOUBLE:
        return json_real(v->value.u.d);
    case REC_BOOL:
        return json_boolean(v->value.u.b);
    case REC_STRING:
        return json_stringn(v->value.u.s.p, v->value.u.s.len);
    default:
        return json_null();
    }
}

/* CREATE STREAM name (col TYPE [KEY] [EVENT TIME], ...) WITH (k = v, ...):
 * columns become "fields" (types), the KEY column "key", the EVENT TIME
 * column "timestamp"; every WITH option is copied under its name
 * (source, format, partitions, retention, sync, time_format, ...). */
static json_t *stream_def(const sql_stmt *st)
{
    json_t *def = json_pack("{s:s}", "name", st->name);
    if (st->n_columns) {
        json_t *fields = json_object();
        for (uint32_t i = 0; i < st->n_columns; i++) {
            const sql_column *c = &st->columns[i];
            const char *t = c->type == SQL_TYPE_DOUBLE ? "double"
                            : c->type == SQL_TYPE_INT  ? "int"
                            : c->type == SQL_TYPE_BOOL ? "bool"
                            : c->type == SQL_TYPE_JSON ? "json"
                            : c->type == SQL_TYPE_TEXT ? "text"
                                                       : NULL;
            if (t)
                json_object_set_new(fields, c->name, json_string(t));
            if (c->key)
                json_object_set_new(def, "key", json_string(c->name));
            if (c->event_time)
                json_object_set_new(def, "timestamp", json_string(c->name));
        }
        json_object_set_new(def, "fields", fields);
    }
    for (uint32_t i = 0; i < st->options.n; i++)
        json_object_set_new(def, st->options.items[i].key,
                            option_json(st->options.items[i].value));
    return def;
}

bool http_rules_statement(http_api_ctx *api, http_request *r, const char *sql, size_t len,
                          http_response *w)
{
    arena a;
    arena_init(&a, 16u << 20);
    sql_stmt *st = NULL;
    sql_error e;
    memset(&e, 0, sizeof(e));
    int rc = sql_parse(sql, len, &a, &st, &e);
    if (rc) {
        arena_free(&a);
        respond_sql_error(w, rc, &e);
        return true;
    }
    if (st->kind == SQL_STMT_SELECT) {
        arena_free(&a);
        return false; /* a history query */
    }
    char err[512] = "";
    switch (st->kind) {
    case SQL_STMT_CREATE_RULE:
        if (have_rules(api, w))
            create(api, r, w, sql, len, NULL, true);
        break;
    case SQL_STMT_DROP_RULE:
    case SQL_STMT_START_RULE:
    case SQL_STMT_STOP_RULE: {
        if (!have_rules(api, w))
            break;
        rc = st->kind == SQL_STMT_DROP_RULE    ? rules_delete(api->rules, st->name)
             : st->kind == SQL_STMT_START_RULE ? rules_start(api->rules, st->name, err,
                                                             sizeof(err))
                                               : rules_stop(api->rules, st->name);
        http_audit(api, r,
                   st->kind == SQL_STMT_DROP_RULE    ? "rule.delete"
                   : st->kind == SQL_STMT_START_RULE ? "rule.start"
                                                     : "rule.stop",
                   st->name, rc == WEIR_OK, err[0] ? err : NULL);
        if (rc == WEIR_ENOTFOUND)
            snprintf(err, sizeof(err), "no rule named '%s'", st->name);
        if (rc)
            http_respond_error(w, rc, err[0] ? err : NULL);
        else
            http_respond_json(w, 200, st->kind == SQL_STMT_DROP_RULE
                                          ? json_pack("{s:s, s:b}", "name", st->name,
                                                      "deleted", 1)
                                          : rules_get_json(api->rules, st->name));
        break;
    }
    case SQL_STMT_SHOW_RULES:
        if (have_rules(api, w))
            http_respond_json(w, 200, json_pack("{s:o}", "rules", rules_list_json(api->rules)));
        break;
    case SQL_STMT_SHOW_STREAMS: {
        json_t *arr = json_array();
        if (api->ingest)
            ingest_foreach(api->ingest, add_stream, arr);
        http_respond_json(w, 200, json_pack("{s:o}", "streams", arr));
        break;
    }
    case SQL_STMT_EXPLAIN: {
        if (!have_rules(api, w))
            break;
        weir_buf b;
        buf_init(&b, 0);
        rc = rules_explain(api->rules, sql, len, &b, &e);
        json_t *plan = rc ? NULL : json_loadb((const char *)buf_head(&b), buf_used(&b), 0, NULL);
        buf_free(&b);
        if (rc)
            respond_sql_error(w, rc, &e);
        else
            http_respond_json(w, 200, json_pack("{s:o?}", "plan", plan));
        break;
    }
    case SQL_STMT_CREATE_STREAM: {
        if (!api->ingest) {
            http_respond_error(w, WEIR_ENOTFOUND, "streams are not available");
            break;
        }
        json_t *def = stream_def(st);
        ingest_stream *s = NULL;
        rc = ingest_define(api->ingest, def, "api", true, err, sizeof(err), &s);
        json_decref(def);
        http_audit(api, r, "stream.create", st->name, rc == WEIR_OK, err[0] ? err : NULL);
        if (rc)
            http_respond_error(w, rc, err[0] ? err : NULL);
        else
            http_respond_json(w, 201, ingest_stream_json(s));
        break;
    }
    case SQL_STMT_DROP_STREAM:
        rc = api->ingest ? ingest_drop(api->ingest, st->name) : WEIR_ENOTFOUND;
        http_audit(api, r, "stream.delete", st->name, rc == WEIR_OK, NULL);
        if (rc)
            http_respond_error(w, rc, NULL);
        else
            http_respond_json(w, 200, json_pack("{s:s, s:b}", "name", st->name, "deleted", 1));
        break;
    default:
        http_respond_error(w, WEIR_EUNSUPPORTED, "statement not supported here");
        break;
    }
    arena_free(&a);
    return true;
}
