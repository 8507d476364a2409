/* routes.h -- the HTTP API handlers, one file per resource.
 *
 * Every handler has the http_handler signature and receives the same ctx,
 * an http_api_ctx that the node fills with what the resources need; handlers
 * take from it only what their resource uses. The node builds the route
 * table from these, e.g.
 *
 *   static const http_route routes[] = {
 *       {"GET", "/healthz", http_route_healthz},
 *       {"GET", "/metrics", http_route_metrics},
 *   };
 */
#ifndef WEIR_HTTP_ROUTES_H
#define WEIR_HTTP_ROUTES_H

#include "auth/audit.h"
#include "auth/auth.h"
#include "catalog/catalog.h"
#include "http/server.h"
#include "ingest/ingest.h"
#include "metrics/metrics.h"
#include "mqtt/broker.h"

#include <uv.h>

#include <stdbool.h>
#include <stdint.h>

typedef struct http_api_ctx {
    metrics *metrics;   /* rendered by GET /metrics; NULL answers 503 */
    int64_t started_ns; /* weir_mono_ns() when the node started, for uptime */
    void *node;         /* the running node, opaque to http/; for node-level doors */
    ingest *ingest;     /* streams: definitions and ingest; NULL answers 404 */
    struct rules *rules; /* continuous rules (engine/rules.h); NULL answers 404 */
    catalog *catalog;   /* for records of imported files */
    uv_loop_t *loop;    /* for long polls */
    struct long_poll *polls; /* waiting long polls (route_streams.c) */
    int jobs;           /* history queries running on the thread pool */
    void (*on_jobs_idle)(void *arg); /* called once jobs drops to 0 (shutdown) */
    void *idle_arg;
    const char *node_name;  /* this node's name among its peers (config node.name) */
    const char *node_peers; /* config node.peers: "name=url,..." */
    mqtt_broker *broker; /* for GET /api/v1/clients and the overview; NULL answers 503 */
    const char *web_root; /* http.web_root: dashboard files from disk first (development) */
    struct live *live;  /* live feeds (http/live.h); NULL answers 503 */
    struct probe_results *probe_results; /* latest `weir probe` results (route_probe.c) */
    auth *auth;         /* who may do what; NULL: no gate (tests) */
    audit *audit;       /* the audit trail (route_auth.c: http_audit) */
    /* Called after a route changed users, tokens or grants (the node
     * reloads auth and closes connections whose credentials went). */
    void (*auth_changed)(struct http_api_ctx *api);
} http_api_ctx;

/* route_health.c */

/* GET /healthz: 200 {"status":"ok","uptime_seconds":N}. */
void http_route_healthz(http_request *r, http_response *w, void *ctx);

/* GET /metrics: the Prometheus text exposition (text/plain; version=0.0.4). */
void http_route_metrics(http_request *r, http_response *w, void *ctx);

/* route_streams.c: see its header comment for the resource. */
void http_route_streams_list(http_request *r, http_response *w, void *ctx);
void http_route_streams_create(http_request *r, http_response *w, void *ctx);
void http_route_stream_get(http_request *r, http_response *w, void *ctx);
void http_route_stream_delete(http_request *r, http_response *w, void *ctx);
void http_route_stream_records_post(http_request *r, http_response *w, void *ctx);
void http_route_stream_upload(http_request *r, http_response *w, void *ctx);
void http_route_stream_records_get(http_request *r, http_response *w, void *ctx);
void http_route_stream_series(http_request *r, http_response *w, void *ctx);
void http_route_stream_group_get(http_request *r, http_response *w, void *ctx);
void http_route_stream_group_commit(http_request *r, http_response *w, void *ctx);
/* route_query.c: POST /api/v1/query, a SQL history query. */
void http_route_query(http_request *r, http_response *w, void *ctx);
/* route_usvc.c: the μ-service rule-template API (docs/api.md, "Rule
 * templates"): POST /api/install, /api/uninstall, /api/start, /api/stop,
 * /api/move; GET /api/jobs. */
void http_route_usvc_install(http_request *r, http_response *w, void *ctx);
void http_route_usvc_uninstall(http_request *r, http_response *w, void *ctx);
void http_route_usvc_start(http_request *r, http_response *w, void *ctx);
void http_route_usvc_stop(http_request *r, http_response *w, void *ctx);
void http_route_usvc_move(http_request *r, http_response *w, void *ctx);
void http_route_usvc_jobs(http_request *r, http_response *w, void *ctx);
/* route_static.c: the embedded dashboard (index.html at /, the rest at /assets/{file}). */
void http_route_static_index(http_request *r, http_response *w, void *ctx);
void http_route_static_asset(http_request *r, http_response *w, void *ctx);
/* GET /login: the dashboard's login page (login.html). */
void http_route_static_login(http_request *r, http_response *w, void *ctx);
/* Answers with the embedded file `name` (e.g. "login.html" for a GET /login
 * route), with the same headers; 404 when there is none. */
void http_static_serve(http_request *r, http_response *w, void *ctx, const char *name);
/* route_clients.c: GET /api/v1/clients, the connected MQTT clients. */
void http_route_clients(http_request *r, http_response *w, void *ctx);
/* route_overview.c: GET /api/v1/overview, the dashboard's node summary. */
void http_route_overview(http_request *r, http_response *w, void *ctx);
/* route_probe.c: the latest results of `weir probe` (memory + catalog kv). */
typedef struct probe_results probe_results;
probe_results *probe_results_new(catalog *cat);
void probe_results_free(probe_results *pr);
void http_route_probe_results_post(http_request *r, http_response *w, void *ctx);
void http_route_probe_results_get(http_request *r, http_response *w, void *ctx);
/* route_auth.c: authentication for every route, and the identity API.
 *
 * http_auth_gate is the server's gate (http_config.gate): it finds who is
 * asking (Bearer token, session cookie with its CSRF header for
 * state-changing methods, or anonymous on loopback when auth.anonymous is
 * on), checks the route's permission (http_route.perm, an auth_action; a
 * "{name}" first parameter is the stream for the stream actions), answers
 * 401 / 403 / 429 as JSON itself, and attaches the identity to the request.
 * See docs/api.md (Authentication) for the resource. */
int http_auth_gate(void *ctx, http_request *r, http_response *w, const http_route *route);
/* The identity the gate attached (NULL only on routes without a gate). */
const auth_identity *http_identity(const http_request *r);
/* One audit entry for a change made through this request (who and from
 * where come from the request). For route handlers, e.g. rules:
 *   http_audit(api, r, "rule.create", name, true, NULL); */
void http_audit(http_api_ctx *api, http_request *r, const char *action, const char *target,
                bool ok, const char *detail);
void http_route_login(http_request *r, http_response *w, void *ctx);
void http_route_logout(http_request *r, http_response *w, void *ctx);
void http_route_me(http_request *r, http_response *w, void *ctx);
void http_route_users_list(http_request *r, http_response *w, void *ctx);
void http_route_users_create(http_request *r, http_response *w, void *ctx);
void http_route_user_update(http_request *r, http_response *w, void *ctx);
void http_route_user_delete(http_request *r, http_response *w, void *ctx);
void http_route_tokens_list(http_request *r, http_response *w, void *ctx);
void http_route_user_token_create(http_request *r, http_response *w, void *ctx);
void http_route_token_revoke(http_request *r, http_response *w, void *ctx);
void http_route_grants_list(http_request *r, http_response *w, void *ctx);
void http_route_grants_put(http_request *r, http_response *w, void *ctx);
void http_route_grants_delete(http_request *r, http_response *w, void *ctx);

/* Answers every waiting long poll; call before the stream store closes. */
void http_streams_shutdown(http_api_ctx *api);

/* route_rules.c: the rules resource, see its header comment. */
void http_route_rules_list(http_request *r, http_response *w, void *ctx);
void http_route_rules_create(http_request *r, http_response *w, void *ctx);
void http_route_rule_get(http_request *r, http_response *w, void *ctx);
void http_route_rule_delete(http_request *r, http_response *w, void *ctx);
void http_route_rule_start(http_request *r, http_response *w, void *ctx);
void http_route_rule_stop(http_request *r, http_response *w, void *ctx);
void http_route_rule_restart(http_request *r, http_response *w, void *ctx);
/* POST /api/v1/query for statements other than SELECT (CREATE/DROP/START/
 * STOP RULE, SHOW RULES/STREAMS, EXPLAIN, CREATE/DROP STREAM, and every
 * parse error): answers and returns true; false for a SELECT. */
bool http_rules_statement(http_api_ctx *api, http_request *r, const char *sql, size_t len,
                          http_response *w);

#endif
