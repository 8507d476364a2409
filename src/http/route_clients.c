/* route_clients.c -- GET /api/v1/clients: the MQTT clients connected now.
 *
 *   {"now_ms": N, "clients": [{"client_id", "peer", "loopback", "protocol",
 *     "connected_since" (RFC 3339), "connected_ms", "keepalive_s",
 *     "session_expiry_s", "messages_in", "messages_out", "queued", "inflight",
 *     "subscriptions": [{"filter", "qos"}]}]}
 *
 * Message counters are totals since the connection began; a reader wanting
 * rates (the dashboard) differences two answers by now_ms, which keeps the
 * broker free of per-client timers. The list is built on the loop in one
 * pass (mqtt_broker_foreach_client), bounded by max_connections.
 */
#include "base/clock.h"
#include "base/err.h"
#include "http/routes.h"

#include <stdio.h>
#include <time.h>

static json_t *iso_time(int64_t ns)
{
    if (!ns)
        return json_null();
    time_t s = (time_t)(ns / WEIR_NS_PER_S);
    struct tm tm;
    char buf[48];
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03dZ", (int)(ns % WEIR_NS_PER_S / 1000000));
    return json_string(buf);
}

static void add_client(void *ctx, const mqtt_client_info *ci)
{
    json_t *subs = json_array();
    for (uint32_t i = 0; i < ci->n_subs; i++) {
        uint8_t qos = 0;
        const char *f = mqtt_client_sub(ci, i, &qos);
        if (f)
            json_array_append_new(subs, json_pack("{s:s, s:i}", "filter", f, "qos", qos));
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:b, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "client_id",
        ci->client_id, "peer", ci->peer, "loopback", ci->loopback, "protocol",
        ci->version == 5   ? "5.0"
        : ci->version == 4 ? "3.1.1"
                           : "3.1",
        "connected_since", iso_time(ci->connected_ns), "connected_ms",
        (json_int_t)(ci->connected_ns / 1000000), "keepalive_s", (json_int_t)ci->keepalive_s,
        "session_expiry_s", (json_int_t)ci->session_expiry_s, "messages_in",
        (json_int_t)ci->msgs_in, "messages_out", (json_int_t)ci->msgs_out, "queued",
        (json_int_t)ci->queued, "inflight", (json_int_t)ci->inflight, "subscriptions", subs);
    if (o)
        json_array_append_new(ctx, o);
}

void http_route_clients(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    http_api_ctx *api = ctx;
    if (!api || !api->broker) {
        http_respond_error(w, WEIR_EBUSY, "the broker is not running");
        return;
    }
    json_t *arr = json_array();
    if (arr)
        mqtt_broker_foreach_client(api->broker, add_client, arr);
    http_respond_json(w, 200,
                      arr ? json_pack("{s:I, s:o}", "now_ms",
                                      (json_int_t)(weir_wall_ns() / 1000000), "clients", arr)
                          : NULL);
}
