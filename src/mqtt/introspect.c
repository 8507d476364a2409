/* introspect.c -- read-only views of the broker's clients for the HTTP API
 * (see mqtt_broker_foreach_client in broker.h).
 *
 * Everything reported is state the broker keeps for its own work (the
 * connection list, per-connection message counters, the session's
 * subscriptions and queues), so introspection costs nothing on the packet
 * path; rates are left to the reader, which differences two readings.
 */
#include "mqtt/brokerInt.h"

void mqtt_broker_foreach_client(const mqtt_broker *b, mqtt_client_fn fn, void *ctx)
{
    for (const mqtt_conn *c = b->conns; c; c = c->next) {
        const mqtt_session *s = c->s;
        if (c->state != CONN_ACTIVE || !s)
            continue;
        mqtt_client_info ci = {
            .client_id = s->client_id ? s->client_id : "",
            .peer = c->peer,
            .loopback = c->loopback,
            .version = c->version,
            .connected_ns = c->connected_wall,
            .keepalive_s = c->keepalive_ms / 1000u,
            .session_expiry_s = s->expiry_s,
            .msgs_in = c->msgs_in,
            .msgs_out = c->msgs_out,
            .queued = s->q_len,
            .inflight = s->n_inflight,
            .n_subs = s->n_subs,
            .session_ = s,
        };
        fn(ctx, &ci);
    }
}

const char *mqtt_client_sub(const mqtt_client_info *ci, uint32_t i, uint8_t *qos)
{
    const mqtt_session *s = ci->session_;
    if (!s || i >= s->n_subs)
        return NULL;
    if (qos)
        *qos = s->subs[i].options & 3u;
    return s->subs[i].filter;
}
