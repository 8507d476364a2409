/* test_broker_clients.c -- the broker's client introspection
 * (mqtt_broker_foreach_client, behind GET /api/v1/clients): who is
 * connected, with which subscriptions and message counters, and that
 * connections not past CONNECT and closed ones are not listed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "base/err.h"
#include "base/buf.h"
#include "mqtt/broker.h"
#include "mqtt/codec.h"

#include <stdio.h>
#include <string.h>

typedef struct io {
    weir_buf out;
    int closing;
    mqtt_conn *conn;
    uint8_t version;
} io;

static weir_buf *t_outbuf(void *p)
{
    return &((io *)p)->out;
}
static void t_kick(void *p)
{
    (void)p;
}
static void t_close(void *p)
{
    ((io *)p)->closing = 1;
}
static const mqtt_transport tr = {t_outbuf, t_kick, t_close};

static mqtt_broker_config cfg(void)
{
    mqtt_broker_config c = {
        .max_packet_size = 65536,
        .max_connections = 100,
        .receive_maximum = 10,
        .max_queued_messages = 5,
        .max_queued_bytes = 1 << 20,
        .max_outbuf = 1 << 20,
        .max_keepalive = 600,
        .max_session_expiry = 3600,
        .topic_alias_maximum = 10,
        .max_subscriptions = 100,
        .retain_available = true,
    };
    return c;
}

static void send_pkt(io *c, const mqtt_packet *p)
{
    uint8_t buf[4096];
    size_t n = mqtt_encode(p, c->version, buf, sizeof(buf));
    assert_true(n > 0);
    mqtt_conn_input(c->conn, buf, n);
}

/* Pops the next packet the broker sent to c; false when none. The decoded
 * packet points into `keep`, which must outlive it. */
static bool next_pkt(io *c, mqtt_packet *p, uint8_t *keep, size_t cap)
{
    size_t n;
    if (mqtt_frame(buf_head(&c->out), buf_used(&c->out), 0, &n))
        return false;
    assert_true(n <= cap);
    memcpy(keep, buf_head(&c->out), n);
    buf_consume(&c->out, n);
    assert_int_equal(mqtt_decode(keep, n, c->version, p, NULL), 0);
    return true;
}

static void open_conn(mqtt_broker *b, io *c, uint8_t version, const char *id, bool clean,
                      uint32_t expiry)
{
    memset(c, 0, sizeof(*c));
    buf_init(&c->out, 0);
    c->version = version;
    c->conn = mqtt_conn_open(b, &tr, c, "127.0.0.1:1", true);
    assert_non_null(c->conn);
    mqtt_packet p = {.type = MQTT_CONNECT};
    p.u.connect.version = version;
    p.u.connect.clean_start = clean;
    p.u.connect.keep_alive = 60;
    p.u.connect.client_id = (mqtt_bytes){(const uint8_t *)id, (uint32_t)strlen(id)};
    if (expiry) {
        p.u.connect.props.present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
        p.u.connect.props.session_expiry = expiry;
    }
    send_pkt(c, &p);
    uint8_t keep[512];
    mqtt_packet ack;
    assert_true(next_pkt(c, &ack, keep, sizeof(keep)));
    assert_int_equal(ack.type, MQTT_CONNACK);
    assert_int_equal(ack.u.connack.reason, 0);
}

static void close_conn(io *c)
{
    if (c->conn)
        mqtt_conn_closed(c->conn);
    c->conn = NULL;
    buf_free(&c->out);
}

static void subscribe(io *c, const char *filter, uint8_t opts, uint8_t expect)
{
    uint8_t entry[256];
    size_t fl = strlen(filter);
    entry[0] = (uint8_t)(fl >> 8);
    entry[1] = (uint8_t)fl;
    memcpy(entry + 2, filter, fl);
    entry[2 + fl] = opts;
    mqtt_packet p = {.type = MQTT_SUBSCRIBE};
    p.u.subscribe.packet_id = 7;
    p.u.subscribe.entries = (mqtt_bytes){entry, (uint32_t)(fl + 3)};
    p.u.subscribe.n_entries = 1;
    send_pkt(c, &p);
    uint8_t keep[512];
    mqtt_packet ack;
    assert_true(next_pkt(c, &ack, keep, sizeof(keep)));
    assert_int_equal(ack.type, MQTT_SUBACK);
    assert_int_equal(ack.u.suback.reasons.len, 1);
    assert_int_equal(ack.u.suback.reasons.data[0], expect);
}

static void publish(io *c, const char *topic, const char *payload, uint8_t qos, uint16_t pid,
                    bool retain)
{
    mqtt_packet p = {.type = MQTT_PUBLISH};
    p.u.publish.qos = qos;
    p.u.publish.retain = retain;
    p.u.publish.packet_id = pid;
    p.u.publish.topic = (mqtt_bytes){(const uint8_t *)topic, (uint32_t)strlen(topic)};
    p.u.publish.payload = (mqtt_bytes){(const uint8_t *)payload, (uint32_t)strlen(payload)};
    send_pkt(c, &p);
}

typedef struct seen {
    int n;
    char ids[4][32];
    char subs[4][64];
    uint8_t qos[4];
    uint32_t n_subs[4];
    uint64_t in[4], out[4];
    uint8_t version[4];
    int64_t since[4];
} seen;

static void collect(void *ctx, const mqtt_client_info *ci)
{
    seen *s = ctx;
    assert_true(s->n < 4);
    int i = s->n++;
    snprintf(s->ids[i], sizeof(s->ids[i]), "%s", ci->client_id);
    s->n_subs[i] = ci->n_subs;
    const char *f = mqtt_client_sub(ci, 0, &s->qos[i]);
    snprintf(s->subs[i], sizeof(s->subs[i]), "%s", f ? f : "");
    assert_null(mqtt_client_sub(ci, ci->n_subs, NULL));
    s->in[i] = ci->msgs_in;
    s->out[i] = ci->msgs_out;
    s->version[i] = ci->version;
    s->since[i] = ci->connected_ns;
    assert_string_equal(ci->peer, "127.0.0.1:1");
}

static void test_foreach_client(void **state)
{
    (void)state;
    auth *a = auth_new(NULL, true);
    mqtt_broker_config c = cfg();
    mqtt_broker *b = mqtt_broker_new(&c, a);
    io sub, pub, raw;
    open_conn(b, &sub, MQTT_V5, "sub-1", true, 0);
    open_conn(b, &pub, MQTT_V311, "pub-1", true, 0);
    /* A connection that has not sent CONNECT is not a client yet. */
    memset(&raw, 0, sizeof(raw));
    buf_init(&raw.out, 0);
    raw.conn = mqtt_conn_open(b, &tr, &raw, "127.0.0.1:1", true);
    subscribe(&sub, "plant/#", 1, 1);
    publish(&pub, "plant/m1", "21.5", 0, 0, false);
    publish(&pub, "plant/m2", "22.5", 0, 0, false);

    seen s = {0};
    mqtt_broker_foreach_client(b, collect, &s);
    assert_int_equal(s.n, 2);
    int is = strcmp(s.ids[0], "sub-1") == 0 ? 0 : 1, ip = 1 - is;
    assert_string_equal(s.ids[is], "sub-1");
    assert_string_equal(s.ids[ip], "pub-1");
    assert_int_equal(s.n_subs[is], 1);
    assert_string_equal(s.subs[is], "plant/#");
    assert_int_equal(s.qos[is], 1);
    assert_int_equal(s.n_subs[ip], 0);
    assert_int_equal(s.in[ip], 2);
    assert_int_equal(s.out[is], 2);
    assert_int_equal(s.version[is], 5);
    assert_int_equal(s.version[ip], 4);
    assert_true(s.since[is] > 0);

    close_conn(&pub);
    memset(&s, 0, sizeof(s));
    mqtt_broker_foreach_client(b, collect, &s);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.ids[0], "sub-1");

    close_conn(&raw);
    close_conn(&sub);
    mqtt_broker_free(b);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_foreach_client),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
