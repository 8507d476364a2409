/* node.c -- see node.h.
 *
 * Start-up order: data directory, catalog, broker (restored from its
 * snapshot), MQTT listener, HTTP server, timers, signals. Shutdown runs the
 * reverse: stop accepting, tell MQTT 5 clients (DISCONNECT 0x8B), let the
 * listeners write what they queued and close (with a deadline for peers that
 * do not read), stop the HTTP server, wait for a snapshot write in flight,
 * then write the final snapshot and free everything once the loop has no
 * handles left, so uv_loop_close succeeds and the exit is 0.
 *
 * Snapshots of the broker are serialised on the loop (memory copies only)
 * and written to disk on libuv's thread pool, so fsync never runs on the
 * loop while it serves clients.
 */
#include "node.h"
#include "auth/audit.h"
#include "auth/auth.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/secret.h"
#include "base/wlog.h"
#include "catalog/catalog.h"
#include "demo/demo.h"
#include "http/live.h"
#include "engine/rules.h"
#include "http/peer_client.h"
#include "http/routes.h"
#include "http/server.h"
#include "ingest/ingest.h"
#include "metrics/metrics.h"
#include "sink/sink.h"
#include "mqtt/broker.h"
#include "mqtt/codec.h"
#include "net/tcp.h"
#include "net/tls.h"
#include "stream/store.h"

#include <errno.h>
#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define TICK_MS 250
#define SHUTDOWN_DEADLINE_MS 3000
#define SNAPSHOT_MAX_BYTES (4ull << 30)

typedef struct node {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_signal_t sighup;      /* reloads TLS certificates */
    uv_timer_t tick;         /* broker keep-alive, wills, expiry */
    uv_timer_t autosave;     /* periodic snapshot */
    uv_timer_t deadline;     /* shutdown: abort peers that do not read */
    const weir_config *cfg;
    auth *auth;
    audit *audit;
    long long catalog_version; /* PRAGMA data_version last seen */
    unsigned ticks;
    catalog *catalog;
    stream_store *store;
    ingest *ingest;
    rules *rules;            /* continuous rules (engine/rules.h) */
    sink_env *sinks;         /* their mqtt:/webhook: outputs (sink/sink.h) */
    rules_sink_ops sink_ops; /* kept here: the runtime holds a pointer */
    mqtt_broker *broker;
    net_listener *mqtt_l;
    net_listener *mqtts_l;   /* MQTT over TLS */
    net_tls_stats tls_stats;
    secret_key *key;         /* [storage] encryption_key_file, or NULL */
    secret_key *snap_key;    /* its snapshot subkey */
    http_server *http;
    demo *demo;              /* the demo profile's replay, or NULL */
    metrics *metrics;
    http_api_ctx api;        /* what the HTTP routes see */
    mqtt_gauges gauges;      /* read once per render by the first gauge */
    struct gauge_ref {
        struct node *n;
        size_t off;          /* offset of a uint64_t in mqtt_gauges */
    } gauge_refs[8];
    char snapshot_path[4096];
    uv_work_t save_req;      /* a snapshot write in flight */
    weir_buf save_buf;       /* its bytes; owned until after_save */
    bool saving;
    int save_rc;
    int64_t started_ns;
    bool stopping;
} node;

/* ---- MQTT over TCP: the transport the broker talks to ------------------- */

static weir_buf *tcp_outbuf(void *io)
{
    return net_conn_outbuf(io);
}

static void tcp_kick(void *io)
{
    net_conn_kick(io);
}

static void tcp_close(void *io)
{
    net_conn_close(io);
}

static const mqtt_transport tcp_transport = {
    .outbuf = tcp_outbuf,
    .kick = tcp_kick,
    .close = tcp_close,
};

static void *mqtt_on_accept(void *ctx, net_conn *c)
{
    node *n = ctx;
    return mqtt_conn_open(n->broker, &tcp_transport, c, net_conn_peer(c), net_conn_loopback(c));
}

static void mqtt_on_data(void *user, const uint8_t *data, size_t len)
{
    mqtt_conn_input(user, data, len);
}

static void mqtt_on_drain(void *user)
{
    mqtt_conn_drained(user);
}

static void mqtt_on_close(void *user)
{
    mqtt_conn_closed(user);
}

static const net_handler mqtt_tcp_handler = {
    .on_accept = mqtt_on_accept,
    .on_data = mqtt_on_data,
    .on_drain = mqtt_on_drain,
    .on_close = mqtt_on_close,
};

/* MQTT over TLS: the same, plus the client certificate's CN as identity,
 * handed over before the broker sees the CONNECT. */
static void mqtt_on_secure(void *user, net_conn *c)
{
    const char *cn = net_conn_tls_cn(c);
    /* Without its identity the connection must not go on (it would be
     * treated as one without a certificate). */
    if (cn && mqtt_conn_set_cert_identity(user, cn))
        net_conn_close(c);
}

static net_tls_config tls_config(const weir_config *cfg)
{
    return (net_tls_config){.cert = cfg->tls_cert, .key = cfg->tls_key, .ca = cfg->tls_ca,
                            .min_version = cfg->tls_min_version,
                            .verify_client = cfg->tls_verify_client};
}

static const net_handler mqtt_tls_handler = {
    .on_accept = mqtt_on_accept,
    .on_data = mqtt_on_data,
    .on_drain = mqtt_on_drain,
    .on_close = mqtt_on_close,
    .on_secure = mqtt_on_secure,
};

/* ---- MQTT over WebSocket ------------------------------------------------- */

static weir_buf *ws_outbuf(void *io)
{
    return http_ws_outbuf(io);
}

static void ws_kick(void *io)
{
    http_ws_kick(io);
}

static void ws_close(void *io)
{
    http_ws_close(io);
}

static const mqtt_transport ws_transport = {
    .outbuf = ws_outbuf,
    .kick = ws_kick,
    .close = ws_close,
};

static bool peer_is_loopback(const char *peer)
{
    return !strncmp(peer, "127.", 4) || !strncmp(peer, "::1", 3) ||
           !strncmp(peer, "[::1]", 5) || !strncmp(peer, "::ffff:127.", 11);
}

static void *ws_on_open(void *ctx, http_ws *ws)
{
    node *n = (node *)((http_api_ctx *)ctx)->node;
    const char *peer = http_ws_peer(ws);
    mqtt_conn *mc = mqtt_conn_open(n->broker, &ws_transport, ws, peer, peer_is_loopback(peer));
    char cn[256];
    if (mc && http_ws_tls_cn(ws, cn, sizeof(cn)) && mqtt_conn_set_cert_identity(mc, cn))
        http_ws_close(ws);
    return mc;
}

static const http_ws_endpoint ws_endpoints[] = {
    {.path = "/mqtt", .subprotocol = "mqtt", .on_open = ws_on_open, .on_data = mqtt_on_data,
     .on_drain = mqtt_on_drain, .on_close = mqtt_on_close},
    {.path = "/api/v1/live", .on_open = live_ws_open, .on_data = live_ws_data,
     .on_drain = live_ws_drain, .on_close = live_ws_close, .text = 1},
};

/* The fourth column is the permission the gate (route_auth.c) requires, an
 * auth_action; a row without one is admin-only. See docs/security.md. */
static const http_route routes[] = {
    {"GET", "/healthz", http_route_healthz, AUTH_PUBLIC},
    {"GET", "/metrics", http_route_metrics, AUTH_METRICS},
    {"GET", "/api/v1/streams", http_route_streams_list, AUTH_ANY},
    {"POST", "/api/v1/streams", http_route_streams_create, AUTH_STREAM_MANAGE},
    {"GET", "/api/v1/streams/{name}", http_route_stream_get, AUTH_STREAM_READ},
    {"DELETE", "/api/v1/streams/{name}", http_route_stream_delete, AUTH_STREAM_MANAGE},
    {"POST", "/api/v1/streams/{name}/records", http_route_stream_records_post, AUTH_STREAM_WRITE},
    {"GET", "/api/v1/streams/{name}/records", http_route_stream_records_get, AUTH_STREAM_READ},
    {"POST", "/api/v1/streams/{name}/upload", http_route_stream_upload, AUTH_STREAM_WRITE},
    {"GET", "/api/v1/streams/{name}/series", http_route_stream_series, AUTH_STREAM_READ},
    {"GET", "/api/v1/streams/{name}/groups/{group}", http_route_stream_group_get, AUTH_STREAM_READ},
    {"POST", "/api/v1/streams/{name}/groups/{group}", http_route_stream_group_commit,
     AUTH_STREAM_READ},
    {"POST", "/api/v1/query", http_route_query, AUTH_QUERY},
    {"POST", "/api/v1/login", http_route_login, AUTH_PUBLIC},
    {"POST", "/api/v1/logout", http_route_logout, AUTH_ANY},
    {"GET", "/api/v1/me", http_route_me, AUTH_ANY},
    {"GET", "/api/v1/users", http_route_users_list, AUTH_ADMIN},
    {"POST", "/api/v1/users", http_route_users_create, AUTH_ADMIN},
    {"PUT", "/api/v1/users/{name}", http_route_user_update, AUTH_ANY},
    {"DELETE", "/api/v1/users/{name}", http_route_user_delete, AUTH_ADMIN},
    {"POST", "/api/v1/users/{name}/tokens", http_route_user_token_create, AUTH_ANY},
    {"GET", "/api/v1/tokens", http_route_tokens_list, AUTH_ANY},
    {"DELETE", "/api/v1/tokens/{id}", http_route_token_revoke, AUTH_ANY},
    {"GET", "/api/v1/grants", http_route_grants_list, AUTH_ADMIN},
    {"POST", "/api/v1/grants", http_route_grants_put, AUTH_ADMIN},
    {"DELETE", "/api/v1/grants", http_route_grants_delete, AUTH_ADMIN},
    {"GET", "/api/v1/live", http_route_live, AUTH_QUERY},
    {"GET", "/api/v1/probe/results", http_route_probe_results_get, AUTH_METRICS},
    {"POST", "/api/v1/probe/results", http_route_probe_results_post, AUTH_STREAM_MANAGE},
    {"GET", "/api/v1/rules", http_route_rules_list, AUTH_RULE_READ},
    {"POST", "/api/v1/rules", http_route_rules_create, AUTH_RULE_MANAGE},
    {"GET", "/api/v1/rules/{name}", http_route_rule_get, AUTH_RULE_READ},
    {"DELETE", "/api/v1/rules/{name}", http_route_rule_delete, AUTH_RULE_MANAGE},
    {"POST", "/api/v1/rules/{name}/start", http_route_rule_start, AUTH_RULE_CONTROL},
    {"POST", "/api/v1/rules/{name}/stop", http_route_rule_stop, AUTH_RULE_CONTROL},
    {"POST", "/api/v1/rules/{name}/restart", http_route_rule_restart, AUTH_RULE_CONTROL},
    /* the μ-service rule-template API (route_usvc.c) */
    {"POST", "/api/install", http_route_usvc_install, AUTH_RULE_MANAGE},
    {"POST", "/api/uninstall", http_route_usvc_uninstall, AUTH_RULE_MANAGE},
    {"POST", "/api/start", http_route_usvc_start, AUTH_RULE_CONTROL},
    {"POST", "/api/stop", http_route_usvc_stop, AUTH_RULE_CONTROL},
    {"POST", "/api/move", http_route_usvc_move, AUTH_RULE_MANAGE},
    {"GET", "/api/jobs", http_route_usvc_jobs, AUTH_RULE_READ},
    {"GET", "/api/v1/overview", http_route_overview, AUTH_METRICS},
    {"GET", "/api/v1/clients", http_route_clients, AUTH_METRICS},
    /* The dashboard (docs/dashboard.md): public static files (the data they
     * show comes from the API, which asks who is there); keep these last. */
    {"GET", "/", http_route_static_index, AUTH_PUBLIC},
    {"GET", "/login", http_route_static_login, AUTH_PUBLIC},
    {"GET", "/assets/{file}", http_route_static_asset, AUTH_PUBLIC},
};

/* ---- Streams: the broker's ingest hook ---------------------------------- */

typedef struct held_ack {
    mqtt_broker *broker;
    uint64_t token;
} held_ack;

static void on_ingested(void *arg, int status)
{
    held_ack *h = arg;
    mqtt_broker_ingest_done(h->broker, h->token, status);
    free(h);
}

static int node_ingest(void *ctx, const mqtt_ingest_msg *m, uint64_t token)
{
    node *n = ctx;
    held_ack *h = NULL;
    if (token) {
        if (!(h = malloc(sizeof(*h))))
            return WEIR_ENOMEM;
        h->broker = n->broker;
        h->token = token;
    }
    int rc = ingest_mqtt(n->ingest, m->topic, m->topic_len, m->payload, m->payload_len,
                         m->arrival_ns, h != NULL, on_ingested, h);
    if (rc != WEIR_EAGAIN)
        free(h);
    return rc;
}

static void node_publish(void *ctx, const char *topic, const void *payload, size_t len)
{
    node *n = ctx;
    mqtt_broker_publish(n->broker, topic, payload, len, 0, false);
}

static void sink_publish(void *ctx, const char *topic, const void *payload, size_t len, int qos,
                         bool retain)
{
    node *n = ctx;
    mqtt_broker_publish(n->broker, topic, payload, len, qos, retain);
}

static int start_streams(node *n)
{
    char dir[4200], err[512];
    snprintf(dir, sizeof(dir), "%s/streams", n->cfg->data_dir);
    int rc = stream_store_open_key(dir, &n->loop, n->key, &n->store);
    if (rc) {
        wlog_error("node", "streams", "error=\"%s\" dir=%s",
                   rc == WEIR_EAUTH ? "encryption key missing or wrong (see above)"
                                    : weir_strerror(rc),
                   dir);
        return rc;
    }
    if ((rc = ingest_new(n->store, n->catalog, node_publish, n, &n->ingest)))
        return rc;
    if ((rc = ingest_load_catalog(n->ingest, err, sizeof(err))) ||
        (rc = ingest_define_config(n->ingest, n->cfg->objects, err, sizeof(err)))) {
        wlog_error("node", "streams", "error=\"%s\"", err);
        return rc;
    }
    mqtt_broker_set_ingest(n->broker, node_ingest, n);
    n->api.ingest = n->ingest;
    /* Rules after the streams they read; their mqtt: outputs publish on
     * our broker, webhooks run on threads of their own. */
    if ((rc = sink_env_new(&n->loop, sink_publish, n, n->metrics, &n->sinks)))
        return rc;
    sink_env_ops(n->sinks, &n->sink_ops);
    if ((rc = rules_new(&n->loop, n->ingest, n->catalog, &n->sink_ops, &n->rules)))
        return rc;
    n->api.rules = n->rules;
    if (n->metrics)
        metrics_set_collector(n->metrics, rules_metrics_render, n->rules);
    if ((rc = rules_load(n->rules, err, sizeof(err))))
        wlog_error("node", "rules", "error=\"%s\"", err);
    return WEIR_OK;
}

/* ---- Auth: users, the audit trail, the first admin ---------------------- */

#define AUDIT_STREAM "$audit"

/* Appends an audit entry to the `$audit` stream (durable on the stream's
 * sync policy; nobody waits for it). */
static void audit_sink(void *ctx, const char *json, size_t len)
{
    node *n = ctx;
    ingest_stream *s = n->ingest && !n->stopping ? ingest_find(n->ingest, AUDIT_STREAM) : NULL;
    if (!s)
        return; /* the log line audit_log wrote is what remains */
    ingest_result res;
    int rc = ingest_batch(n->ingest, s, NULL, (const uint8_t *)json, len, weir_wall_ns(), &res,
                          NULL, NULL);
    json_decref(res.errors);
    if (rc && rc != WEIR_EAGAIN)
        wlog_error("node", "audit", "error=\"%s\"", weir_strerror(rc));
}

static int audit_outbox_one(void *arg, const char *entry)
{
    audit_sink(arg, entry, strlen(entry));
    return 0;
}

/* Users changed here or in another process: reload, move the CLI's audit
 * entries into the stream, close connections whose credentials went. */
static void auth_refresh(node *n)
{
    if (auth_reload(n->auth, n->catalog))
        return;
    catalog_audit_outbox_drain(n->catalog, audit_outbox_one, n);
    catalog_data_version(n->catalog, &n->catalog_version);
    if (n->broker)
        mqtt_broker_revalidate(n->broker);
}

static void api_auth_changed(http_api_ctx *api)
{
    auth_refresh(api->node);
}

/* First start: an admin, with the password from WEIR_ADMIN_PASSWORD or a
 * generated one printed once on stderr (never logged, never stored). */
static int bootstrap_admin(node *n)
{
    long long users = 0;
    int rc = catalog_user_count(n->catalog, &users);
    if (rc || users)
        return rc;
    const char *env = getenv("WEIR_ADMIN_PASSWORD");
    char generated[33], hash[128];
    const char *pw = env;
    if (!env || !*env) {
        uint8_t b[24];
        randombytes_buf(b, sizeof(b));
        sodium_bin2base64(generated, sizeof(generated), b, sizeof(b),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        pw = generated;
    }
    rc = auth_password_hash(pw, strlen(pw), hash);
    if (!rc)
        rc = catalog_user_add(n->catalog, "admin", "user", "admin", hash);
    sodium_memzero(hash, sizeof(hash));
    if (rc) {
        wlog_error("node", "bootstrap_admin", "error=\"%s\"", weir_strerror(rc));
        return rc;
    }
    audit_log(n->audit, "weir", NULL, "node", "user.create", "admin", true,
              env && *env ? "first start; password from WEIR_ADMIN_PASSWORD"
                          : "first start; generated password printed once");
    if (pw == generated) {
        fprintf(stderr,
                "\n  weir: first start: created user 'admin' with password\n\n      %s\n\n"
                "  It is shown only this once. Change it with `weir user passwd admin`.\n\n",
                generated);
        fflush(stderr);
        sodium_memzero(generated, sizeof(generated));
    }
    wlog_info("node", "bootstrap_admin", "user=admin password_from=%s",
              pw == generated ? "generated (printed on stderr)" : "WEIR_ADMIN_PASSWORD");
    return WEIR_OK;
}

static int start_auth(node *n)
{
    const weir_config *cfg = n->cfg;
    if (!(n->auth = auth_new(cfg->mqtt_deny, cfg->auth_anonymous)))
        return WEIR_EINVAL;
    if (auth_set_device_topics(n->auth, cfg->auth_device_publish, cfg->auth_device_subscribe)) {
        wlog_error("node", "config", "error=\"bad auth.device_publish or auth.device_subscribe\"");
        return WEIR_EINVAL;
    }
    auth_set_loop(n->auth, &n->loop);
    if (catalog_data_version(n->catalog, &n->catalog_version) || auth_reload(n->auth, n->catalog))
        return WEIR_EIO;
    if (cfg->auth_anonymous)
        wlog_warn("node", "anonymous_access",
                  "auth.anonymous=true: clients without credentials from loopback get every "
                  "right (demo/test profile; never from other addresses)");
    n->api.auth = n->auth;
    n->api.auth_changed = api_auth_changed;
    return WEIR_OK;
}

/* After the streams: the audit trail, then the first admin. */
static int start_audit(node *n)
{
    char err[256];
    json_t *def = json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", AUDIT_STREAM, "format", "json",
                            "retention", "365d", "partitions", 1, "sync", "interval=100ms");
    ingest_stream *s = NULL;
    int rc = def ? ingest_define(n->ingest, def, "system", true, err, sizeof(err), &s)
                 : WEIR_ENOMEM;
    json_decref(def);
    if (rc) {
        wlog_error("node", "audit", "error=\"%s\"", err);
        return rc;
    }
    if (!(n->audit = audit_new(audit_sink, n)))
        return WEIR_ENOMEM;
    auth_set_audit(n->auth, n->audit);
    n->api.audit = n->audit;
    catalog_audit_outbox_drain(n->catalog, audit_outbox_one, n);
    if ((rc = bootstrap_admin(n)))
        return rc;
    return auth_reload(n->auth, n->catalog);
}

/* ---- Metrics ------------------------------------------------------------ */

static double gauge_read(void *arg)
{
    struct gauge_ref *g = arg;
    /* The first gauge of a render refreshes the snapshot of all of them. */
    if (g->off == offsetof(mqtt_gauges, connections))
        mqtt_broker_gauges(g->n->broker, &g->n->gauges);
    return (double)*(const uint64_t *)((const char *)&g->n->gauges + g->off);
}

static int register_metrics(node *n)
{
    static const struct {
        const char *name;
        const char *help;
        size_t off;
    } gauges[] = {
        {"weir_mqtt_connections", "Open MQTT network connections (TCP and WebSocket).",
         offsetof(mqtt_gauges, connections)},
        {"weir_mqtt_clients", "MQTT connections past CONNECT.", offsetof(mqtt_gauges, clients)},
        {"weir_mqtt_sessions", "MQTT sessions, online and offline.",
         offsetof(mqtt_gauges, sessions)},
        {"weir_mqtt_subscriptions", "MQTT subscriptions.", offsetof(mqtt_gauges, subscriptions)},
        {"weir_mqtt_retained_messages", "Retained messages.", offsetof(mqtt_gauges, retained)},
        {"weir_mqtt_queued_messages", "QoS 1/2 messages waiting in session queues.",
         offsetof(mqtt_gauges, queued_messages)},
        {"weir_mqtt_queued_bytes", "Memory held by queued messages.",
         offsetof(mqtt_gauges, queued_bytes)},
        {"weir_mqtt_inflight_messages", "QoS 1/2 messages sent and not yet acknowledged.",
         offsetof(mqtt_gauges, inflight)},
    };
    const mqtt_stats *st = mqtt_broker_stats(n->broker);
    metrics *m = n->metrics;
    char labels[96];
    int rc = 0;
    for (size_t i = 0; i < sizeof(gauges) / sizeof(gauges[0]); i++) {
        n->gauge_refs[i] = (struct gauge_ref){n, gauges[i].off};
        rc |= metrics_gauge(m, gauges[i].name, gauges[i].help, NULL, gauge_read,
                            &n->gauge_refs[i]);
    }
    for (int t = MQTT_CONNECT; t <= MQTT_AUTH; t++) {
        snprintf(labels, sizeof(labels), "type=\"%s\",dir=\"in\"", mqtt_type_name(t));
        rc |= metrics_counter_ref(m, "weir_mqtt_packets_total", "MQTT control packets by type "
                                  "and direction.", labels, &st->packets_in[t]);
        snprintf(labels, sizeof(labels), "type=\"%s\",dir=\"out\"", mqtt_type_name(t));
        rc |= metrics_counter_ref(m, "weir_mqtt_packets_total", NULL, labels,
                                  &st->packets_out[t]);
    }
    rc |= metrics_counter_ref(m, "weir_mqtt_bytes_total", "MQTT bytes by direction.",
                              "dir=\"in\"", &st->bytes_in);
    rc |= metrics_counter_ref(m, "weir_mqtt_bytes_total", NULL, "dir=\"out\"", &st->bytes_out);
    rc |= metrics_counter_ref(m, "weir_mqtt_messages_total",
                              "PUBLISH messages received and sent.", "dir=\"in\"",
                              &st->messages_in);
    rc |= metrics_counter_ref(m, "weir_mqtt_messages_total", NULL, "dir=\"out\"",
                              &st->messages_out);
    for (int d = 0; d < MQTT_DROP__COUNT; d++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", mqtt_drop_name((mqtt_drop)d));
        rc |= metrics_counter_ref(m, "weir_mqtt_dropped_total",
                                  "Messages dropped, by reason (see docs/mqtt.md).", labels,
                                  &st->dropped[d]);
    }
    for (int r = 0; r < MQTT_CLOSE__COUNT; r++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"",
                 mqtt_close_name((mqtt_close_reason)r));
        rc |= metrics_counter_ref(m, "weir_mqtt_closed_total",
                                  "Connections closed by the broker, by reason.", labels,
                                  &st->closed[r]);
    }
    rc |= metrics_counter_ref(m, "weir_mqtt_connects_total", "Accepted MQTT CONNECTs.", NULL,
                              &st->connects);
    rc |= metrics_counter_ref(m, "weir_mqtt_auth_denied_total",
                              "CONNECT, PUBLISH or SUBSCRIBE refused by authorisation.", NULL,
                              &st->auth_denied);
    rc |= metrics_counter_ref(m, "weir_tls_handshakes_total",
                              "TLS handshakes on the MQTT/TLS listener, by result.",
                              "result=\"ok\"", &n->tls_stats.handshakes);
    rc |= metrics_counter_ref(m, "weir_tls_handshakes_total", NULL, "result=\"failed\"",
                              &n->tls_stats.handshake_failures);
    rc |= metrics_counter_ref(m, "weir_tls_client_certs_total",
                              "MQTT/TLS handshakes with a verified client certificate.", NULL,
                              &n->tls_stats.client_certs);
    const auth_stats *as = auth_get_stats(n->auth);
    static const char *const doors[2] = {"mqtt", "http"};
    for (int d = 0; d < 2; d++) {
        snprintf(labels, sizeof(labels), "door=\"%s\",result=\"ok\"", doors[d]);
        rc |= metrics_counter_ref(m, "weir_auth_logins_total",
                                  "Authentications by door and result (ok, failed: bad "
                                  "credentials, backoff: refused unchecked after repeated "
                                  "failures, anonymous_refused).",
                                  labels, &as->logins_ok[d]);
        snprintf(labels, sizeof(labels), "door=\"%s\",result=\"failed\"", doors[d]);
        rc |= metrics_counter_ref(m, "weir_auth_logins_total", NULL, labels,
                                  &as->logins_failed[d]);
        snprintf(labels, sizeof(labels), "door=\"%s\",result=\"backoff\"", doors[d]);
        rc |= metrics_counter_ref(m, "weir_auth_logins_total", NULL, labels,
                                  &as->backoff_refused[d]);
        snprintf(labels, sizeof(labels), "door=\"%s\",result=\"anonymous_refused\"", doors[d]);
        rc |= metrics_counter_ref(m, "weir_auth_logins_total", NULL, labels,
                                  &as->anonymous_refused[d]);
    }
    for (int a = 0; a < AUTH_ACTION__COUNT; a++) {
        snprintf(labels, sizeof(labels), "action=\"%s\"", auth_action_name((auth_action)a));
        rc |= metrics_counter_ref(m, "weir_auth_denied_total",
                                  "Requests refused by authorisation, by action.", labels,
                                  &as->denied[a]);
    }
    rc |= metrics_counter_ref(m, "weir_auth_verify_busy_total",
                              "Password verifications refused: too many already running.", NULL,
                              &as->verify_busy);
    rc |= metrics_counter_ref(m, "weir_auth_cache_hits_total",
                              "Passwords accepted from the verification cache.", NULL,
                              &as->cache_hits);
    return rc ? WEIR_ENOMEM : WEIR_OK;
}

static int start_http(node *n)
{
    const weir_config *cfg = n->cfg;
    if (!cfg->http_listen || !*cfg->http_listen)
        return WEIR_OK;
    char host[256];
    int port;
    if (config_parse_hostport(cfg->http_listen, host, sizeof(host), &port)) {
        wlog_error("node", "config", "error=\"bad http.listen\" value=\"%s\"", cfg->http_listen);
        return WEIR_EINVAL;
    }
    if (!(n->api.live = live_new(&n->loop, n->ingest, cfg->http_live_buffer,
                                  cfg->http_live_slow_ms)))
        return WEIR_ENOMEM;
    live_set_rules(n->api.live, n->rules); /* ?rule=NAME feeds */
    if (n->metrics && live_register_metrics(n->api.live, n->metrics))
        return WEIR_ENOMEM;
    if (!(n->api.probe_results = probe_results_new(n->catalog)))
        return WEIR_ENOMEM;
    http_config hc = {.host = host, .port = port, .max_body = cfg->http_max_body,
                      .max_ws_outbuf = cfg->mqtt_max_outbuf * 2 + cfg->mqtt_max_packet_size,
                      .gate = http_auth_gate};
    if (cfg->http_tls) {
        net_tls_config tc = tls_config(cfg);
        char err[512];
        if (net_tls_config_check(&tc, err, sizeof(err))) {
            wlog_error("node", "config", "error=\"http.tls: %s\"", err);
            return WEIR_EINVAL;
        }
        hc.tls_cert = cfg->tls_cert;
        hc.tls_key = cfg->tls_key;
        hc.tls_ca = cfg->tls_ca;
        hc.tls_min_version = cfg->tls_min_version;
        hc.tls_verify_client = cfg->tls_verify_client;
    }
    n->http = http_server_start(&n->loop, &hc, routes, sizeof(routes) / sizeof(routes[0]),
                                ws_endpoints, sizeof(ws_endpoints) / sizeof(ws_endpoints[0]),
                                &n->api);
    if (!n->http)
        return WEIR_EIO;
    wlog_info("node", "listening", "proto=%s host=%s port=%d", cfg->http_tls ? "https" : "http",
              host, http_server_port(n->http));
    return WEIR_OK;
}

/* ---- TLS and keys ------------------------------------------------------- */

static int load_key(node *n)
{
    const char *path = n->cfg->storage_encryption_key_file;
    if (!path || !*path)
        return WEIR_OK;
    char err[512];
    int rc = secret_key_load(path, &n->key, err, sizeof(err));
    if (!rc)
        rc = secret_key_derive(n->key, SECRET_PURPOSE_SNAPSHOT, &n->snap_key);
    if (rc) {
        wlog_error("node", "encryption_key", "error=\"%s\"", err);
        return rc;
    }
    wlog_info("node", "encryption_at_rest", "key_file=%s", path);
    return WEIR_OK;
}

/* ---- Snapshots ---------------------------------------------------------- */

/* Writes the snapshot, sealed when encryption at rest is on (on the
 * thread pool for autosaves: sealing is a pass over the bytes). */
static int snapshot_write(node *n)
{
    if (!n->snap_key)
        return fileio_write_atomic(n->snapshot_path, buf_head(&n->save_buf),
                                   buf_used(&n->save_buf));
    uint8_t *sealed = NULL;
    size_t len = 0;
    int rc = secret_file_seal(n->snap_key, buf_head(&n->save_buf), buf_used(&n->save_buf),
                              &sealed, &len);
    if (!rc)
        rc = fileio_write_atomic(n->snapshot_path, sealed, len);
    free(sealed);
    return rc;
}

static void save_work(uv_work_t *req)
{
    node *n = req->data;
    errno = 0;
    n->save_rc = snapshot_write(n);
    if (n->save_rc)
        n->save_rc = errno ? -errno : n->save_rc;
}

static void save_done(uv_work_t *req, int status)
{
    node *n = req->data;
    n->saving = false;
    if (status || n->save_rc)
        wlog_error("node", "snapshot", "error=\"%s\" path=%s",
                   n->save_rc < 0 && n->save_rc > -4096 ? strerror(-n->save_rc)
                                                        : weir_strerror(n->save_rc),
                   n->snapshot_path);
    buf_reset(&n->save_buf);
}

static void snapshot_async(node *n)
{
    if (n->saving || !n->cfg->mqtt_persistence || !mqtt_broker_dirty(n->broker))
        return;
    buf_reset(&n->save_buf);
    if (mqtt_broker_snapshot(n->broker, &n->save_buf)) {
        wlog_error("node", "snapshot", "error=\"cannot serialise (memory)\"");
        return;
    }
    n->saving = true;
    n->save_req.data = n;
    uv_queue_work(&n->loop, &n->save_req, save_work, save_done);
}

static int snapshot_sync(node *n)
{
    if (!n->cfg->mqtt_persistence)
        return WEIR_OK;
    buf_reset(&n->save_buf);
    int rc = mqtt_broker_snapshot(n->broker, &n->save_buf);
    if (!rc)
        rc = snapshot_write(n);
    if (rc)
        wlog_error("node", "snapshot", "error=\"%s\" path=%s", weir_strerror(rc),
                   n->snapshot_path);
    return rc;
}

static int snapshot_load(node *n)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = fileio_read_all(n->snapshot_path, SNAPSHOT_MAX_BYTES, &data, &len);
    if (rc == WEIR_ENOTFOUND)
        return WEIR_OK;
    if (rc) {
        wlog_error("node", "snapshot_load", "error=\"%s\" path=%s", weir_strerror(rc),
                   n->snapshot_path);
        return rc;
    }
    if (secret_file_sealed(data, len)) {
        uint8_t *plain = NULL;
        size_t plen = 0;
        rc = n->snap_key ? secret_file_open(n->snap_key, data, len, &plain, &plen) : WEIR_EAUTH;
        free(data);
        if (rc) {
            wlog_error("node", "snapshot_load",
                       "error=\"%s\" path=%s", n->snap_key
                           ? "cannot decrypt the MQTT snapshot: wrong encryption key or damaged"
                           : "the MQTT snapshot is encrypted and no [storage] "
                             "encryption_key_file is configured",
                       n->snapshot_path);
            return WEIR_EAUTH;
        }
        data = plain;
        len = plen;
    }
    rc = mqtt_broker_restore(n->broker, data, len);
    free(data);
    if (rc == WEIR_ECORRUPT) {
        /* Keep what was readable; the damaged file stays for inspection. */
        char bad[4200];
        snprintf(bad, sizeof(bad), "%s.corrupt", n->snapshot_path);
        rename(n->snapshot_path, bad);
        wlog_warn("node", "snapshot_corrupt", "kept_as=%s", bad);
        return WEIR_OK;
    }
    return rc;
}

/* ---- Timers and shutdown ------------------------------------------------ */

static void on_tick(uv_timer_t *t)
{
    node *n = t->data;
    mqtt_broker_tick(n->broker);
    /* Another process (`weir user`) changed the catalog: reload users. */
    long long v;
    if (n->auth && !catalog_data_version(n->catalog, &v) && v != n->catalog_version)
        auth_refresh(n);
    else if (n->auth && ++n->ticks % 4 == 0)
        mqtt_broker_revalidate(n->broker); /* tokens that expired */
}

static void on_autosave(uv_timer_t *t)
{
    snapshot_async(t->data);
}

static void on_deadline(uv_timer_t *t)
{
    node *n = t->data;
    wlog_warn("node", "shutdown_deadline", "action=\"closing peers that are not reading\"");
    if (n->mqtt_l)
        net_listener_abort(n->mqtt_l);
    if (n->mqtts_l)
        net_listener_abort(n->mqtts_l);
}

static void node_close_store(void *arg)
{
    node *n = arg;
    if (n->store) {
        stream_store_close(n->store);
        n->store = NULL;
    }
}

static void node_stop(node *n, const char *why)
{
    if (n->stopping)
        return;
    n->stopping = true;
    wlog_info("node", "stopping", "reason=%s", why);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
    uv_close((uv_handle_t *)&n->sighup, NULL);
    uv_close((uv_handle_t *)&n->tick, NULL);
    uv_close((uv_handle_t *)&n->autosave, NULL);
    demo_stop(n->demo);
    if (n->broker)
        mqtt_broker_shutdown(n->broker);
    if (n->mqtts_l)
        net_listener_close(n->mqtts_l);
    if (n->mqtt_l)
        net_listener_close(n->mqtt_l);
    if (n->mqtt_l || n->mqtts_l) {
        uv_timer_start(&n->deadline, on_deadline, SHUTDOWN_DEADLINE_MS, 0);
        uv_unref((uv_handle_t *)&n->deadline);
    }
    if (n->http)
        http_server_stop(n->http);
    /* Long polls first (they watch streams), then the store: closing it
     * writes and syncs what is pending and completes every held MQTT
     * acknowledgement and HTTP answer. Nothing appends after this. */
    http_streams_shutdown(&n->api);
    live_shutdown(n->api.live);
    if (n->rules)
        rules_shutdown(n->rules); /* checkpoints; closes its readers */
    if (n->broker)
        mqtt_broker_set_ingest(n->broker, NULL, NULL);
    if (n->api.jobs) {
        /* History queries still read the store on the thread pool: close it
         * when the last one is done (its completion runs on the loop). */
        n->api.on_jobs_idle = node_close_store;
        n->api.idle_arg = n;
    } else {
        node_close_store(n);
    }
}

static void on_signal(uv_signal_t *h, int signum)
{
    node_stop(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* SIGHUP: certificates and keys are read again. The files are first
 * loaded into a complete new SSL_CTX (which checks that key and certificate
 * match); only when that works does anything change: the new SSL_CTX goes
 * to the MQTT/TLS listener for new connections (open ones keep theirs),
 * and lws reloads the HTTPS vhost's certificate. The files are small and
 * read on the loop. */
static void on_sighup(uv_signal_t *h, int signum)
{
    (void)signum;
    node *n = h->data;
    const weir_config *cfg = n->cfg;
    if (!n->mqtts_l && !(n->http && cfg->http_tls)) {
        wlog_info("node", "sighup", "note=\"no TLS listener: nothing to reload\"");
        return;
    }
    net_tls_config tc = tls_config(cfg);
    net_tls *t = NULL;
    char err[512];
    if (net_tls_new(&tc, &t, err, sizeof(err))) {
        wlog_error("node", "tls_reload", "error=\"%s\" note=\"keeping the previous "
                   "certificate\"", err);
        return;
    }
    if (n->mqtts_l) {
        net_listener_set_tls(n->mqtts_l, t);
        wlog_info("node", "tls_reload", "listener=mqtt cert=%s", cfg->tls_cert);
    } else {
        net_tls_free(t);
    }
    if (n->http && cfg->http_tls) {
        if (http_server_reload_tls(n->http))
            wlog_error("node", "tls_reload", "listener=https error=\"lws could not load %s\" "
                       "note=\"keeping the previous certificate\"", cfg->tls_cert);
        else
            wlog_info("node", "tls_reload", "listener=https cert=%s", cfg->tls_cert);
    }
}

/* ---- Start-up ----------------------------------------------------------- */

static int broker_config(const weir_config *cfg, mqtt_broker_config *bc)
{
    memset(bc, 0, sizeof(*bc));
    if (cfg->mqtt_max_packet_size < 64 || cfg->mqtt_max_packet_size > 268435460ull ||
        cfg->mqtt_receive_maximum == 0 || cfg->mqtt_receive_maximum > 65535 ||
        cfg->mqtt_max_keepalive > 65535 || cfg->mqtt_topic_alias_maximum > 65535 ||
        cfg->mqtt_max_session_expiry > UINT32_MAX || cfg->mqtt_max_connections > UINT32_MAX ||
        cfg->mqtt_max_queued_messages == 0 || cfg->mqtt_max_queued_messages > UINT32_MAX ||
        cfg->mqtt_max_subscriptions > UINT32_MAX) {
        wlog_error("node", "config", "error=\"an [mqtt] limit is out of range\"");
        return WEIR_EINVAL;
    }
    bc->max_packet_size = (uint32_t)cfg->mqtt_max_packet_size;
    bc->max_connections = (uint32_t)cfg->mqtt_max_connections;
    bc->receive_maximum = (uint16_t)cfg->mqtt_receive_maximum;
    bc->max_queued_messages = (uint32_t)cfg->mqtt_max_queued_messages;
    bc->max_queued_bytes = cfg->mqtt_max_queued_bytes;
    bc->max_outbuf = cfg->mqtt_max_outbuf;
    bc->max_keepalive = (uint16_t)cfg->mqtt_max_keepalive;
    bc->max_session_expiry = (uint32_t)cfg->mqtt_max_session_expiry;
    bc->topic_alias_maximum = (uint16_t)cfg->mqtt_topic_alias_maximum;
    bc->max_subscriptions = (uint32_t)cfg->mqtt_max_subscriptions;
    bc->retain_available = cfg->mqtt_retain_available;
    return WEIR_OK;
}

static int start_mqtt_tls(node *n)
{
    const weir_config *cfg = n->cfg;
    if (!cfg->tls_cert || !*cfg->tls_cert || !cfg->mqtt_tls_listen || !*cfg->mqtt_tls_listen)
        return WEIR_OK;
    char host[256], err[512];
    int port;
    if (config_parse_hostport(cfg->mqtt_tls_listen, host, sizeof(host), &port)) {
        wlog_error("node", "config", "error=\"bad mqtt.tls_listen\" value=\"%s\"",
                   cfg->mqtt_tls_listen);
        return WEIR_EINVAL;
    }
    net_tls_config tc = tls_config(cfg);
    net_tls *t = NULL;
    if (net_tls_new(&tc, &t, err, sizeof(err))) {
        wlog_error("node", "tls", "error=\"%s\"", err);
        return WEIR_EINVAL;
    }
    net_config nc = {.host = host, .port = port,
                     .max_outbuf = cfg->mqtt_max_outbuf * 2 + cfg->mqtt_max_packet_size,
                     .tls = t, .tls_stats = &n->tls_stats};
    n->mqtts_l = net_listen(&n->loop, &nc, &mqtt_tls_handler, n);
    if (!n->mqtts_l)
        return WEIR_EIO;
    wlog_info("node", "listening", "proto=mqtts host=%s port=%d verify_client=%s", host,
              net_listener_port(n->mqtts_l), cfg->tls_verify_client);
    return WEIR_OK;
}

static int start_mqtt(node *n)
{
    const weir_config *cfg = n->cfg;
    if (!cfg->mqtt_listen || !*cfg->mqtt_listen)
        return WEIR_OK;
    char host[256];
    int port;
    if (config_parse_hostport(cfg->mqtt_listen, host, sizeof(host), &port)) {
        wlog_error("node", "config", "error=\"bad mqtt.listen\" value=\"%s\"", cfg->mqtt_listen);
        return WEIR_EINVAL;
    }
    /* The hard bound leaves room for control packets and one largest
     * message past the soft bound at which QoS 0 starts being dropped. */
    net_config nc = {.host = host, .port = port,
                     .max_outbuf = cfg->mqtt_max_outbuf * 2 + cfg->mqtt_max_packet_size};
    n->mqtt_l = net_listen(&n->loop, &nc, &mqtt_tcp_handler, n);
    if (!n->mqtt_l)
        return WEIR_EIO;
    wlog_info("node", "listening", "proto=mqtt host=%s port=%d", host,
              net_listener_port(n->mqtt_l));
    return WEIR_OK;
}

static int node_start(node *n)
{
    const weir_config *cfg = n->cfg;
    mqtt_broker_config bc;
    if (fileio_mkdirs(cfg->data_dir)) {
        wlog_error("node", "data_dir", "error=\"%s\" path=%s", strerror(errno), cfg->data_dir);
        return WEIR_EIO;
    }
    snprintf(n->snapshot_path, sizeof(n->snapshot_path), "%s/mqtt.snapshot", cfg->data_dir);
    if (catalog_open(cfg->data_dir, &n->catalog))
        return WEIR_EIO;
    wlog_info("node", "catalog", "node_id=%s schema=%d", catalog_node_id(n->catalog),
              catalog_schema_version(n->catalog));
    if (broker_config(cfg, &bc))
        return WEIR_EINVAL;
    if (load_key(n))
        return WEIR_EINVAL;
    if (start_auth(n))
        return WEIR_EINVAL;
    if (!(n->broker = mqtt_broker_new(&bc, n->auth)))
        return WEIR_ENOMEM;
    if (cfg->mqtt_persistence && snapshot_load(n))
        return WEIR_EIO;
    if (!(n->metrics = metrics_new()) || register_metrics(n))
        return WEIR_ENOMEM;
    n->api.metrics = n->metrics;
    n->api.started_ns = weir_mono_ns();
    n->api.node = n;
    n->api.catalog = n->catalog;
    n->api.loop = &n->loop;
    n->api.node_name = cfg->node_name;
    n->api.node_peers = cfg->node_peers;
    char perr[256];
    if (peer_list_check(cfg->node_peers, perr, sizeof(perr))) {
        wlog_error("node", "config", "error=\"%s\"", perr);
        return WEIR_EINVAL;
    }
    if (peer_client_init())
        return WEIR_EIO;
    n->api.broker = n->broker;
    n->api.web_root = cfg->http_web_root;
    if (start_streams(n) || start_audit(n))
        return WEIR_EIO;
    if (start_mqtt(n) || start_mqtt_tls(n) || start_http(n))
        return WEIR_EIO;
    if (cfg->demo_enabled &&
        demo_start(&n->loop, n->ingest, n->rules, cfg, n->mqtt_l ? net_listener_port(n->mqtt_l) : 0,
                   &n->demo))
        return WEIR_EINVAL;
    uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
    if (cfg->mqtt_autosave_ms > 0)
        uv_timer_start(&n->autosave, on_autosave, (uint64_t)cfg->mqtt_autosave_ms,
                       (uint64_t)cfg->mqtt_autosave_ms);
    uv_signal_start(&n->sigint, on_signal, SIGINT);
    uv_signal_start(&n->sigterm, on_signal, SIGTERM);
    uv_signal_start(&n->sighup, on_sighup, SIGHUP);
    return WEIR_OK;
}

int node_run(const weir_config *cfg)
{
    node n;
    memset(&n, 0, sizeof(n));
    n.cfg = cfg;
    n.started_ns = weir_wall_ns();
    buf_init(&n.save_buf, 0);
    int lvl = wlog_level_parse(cfg->log_level);
    if (lvl < 0) {
        wlog_error("node", "config", "error=\"unknown log_level '%s'\"", cfg->log_level);
        return 1;
    }
    wlog_set_level((wlog_level)lvl);
    if (uv_loop_init(&n.loop))
        return 1;
    uv_signal_init(&n.loop, &n.sigint);
    uv_signal_init(&n.loop, &n.sigterm);
    uv_signal_init(&n.loop, &n.sighup);
    uv_timer_init(&n.loop, &n.tick);
    uv_timer_init(&n.loop, &n.autosave);
    uv_timer_init(&n.loop, &n.deadline);
    n.sighup.data = &n;
    n.sigint.data = n.sigterm.data = n.tick.data = n.autosave.data = n.deadline.data = &n;

    int status = 0;
    if (node_start(&n)) {
        status = 1;
        node_stop(&n, "startup_failed");
    } else {
        wlog_info("node", "started", "name=%s version=%s data=%s", cfg->node_name, WEIR_VERSION,
                  cfg->data_dir);
    }
    uv_run(&n.loop, UV_RUN_DEFAULT);

    /* Every client is gone and no snapshot write is in flight (the work
     * request kept the loop alive): write the final state. */
    if (n.broker && status == 0 && snapshot_sync(&n))
        status = 1;
    uv_close((uv_handle_t *)&n.deadline, NULL);
    uv_run(&n.loop, UV_RUN_DEFAULT);
    http_server_free(n.http);
    live_free(n.api.live);
    demo_free(n.demo);
    probe_results_free(n.api.probe_results);
    if (n.metrics)
        metrics_set_collector(n.metrics, NULL, NULL);
    rules_free(n.rules);
    uv_run(&n.loop, UV_RUN_DEFAULT); /* completes sink closes (webhook joins) */
    ingest_free(n.ingest);
    mqtt_broker_free(n.broker);
    metrics_free(n.metrics);
    sink_env_free(n.sinks); /* after the last metrics render */
    auth_free(n.auth);
    audit_free(n.audit);
    catalog_close(n.catalog);
    secret_key_free(n.snap_key);
    secret_key_free(n.key);
    buf_free(&n.save_buf);
    if (uv_loop_close(&n.loop))
        wlog_warn("node", "loop_close", "error=\"handles still open\"");
    wlog_info("node", "stopped", "status=%d", status);
    return status;
}
