/* broker_harness.h -- an in-process MQTT client for the broker's unit
 * tests: a transport whose output buffer the test reads, and helpers that
 * encode a packet into mqtt_conn_input and decode what the broker sent.
 * Shared by test_broker.c and test_broker_clients.c (static functions: each
 * test program includes it once). */
#ifndef WEIR_TEST_BROKER_HARNESS_H
#define WEIR_TEST_BROKER_HARNESS_H

#include "base/buf.h"
#include "mqtt/broker.h"
#include "mqtt/codec.h"

#include <stdbool.h>
#include <stdint.h>
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
        .max_packet_size = 65536, .max_connections = 100, .receive_maximum = 10,
        .max_queued_messages = 5, .max_queued_bytes = 1 << 20, .max_outbuf = 1 << 20,
        .max_keepalive = 600, .max_session_expiry = 3600, .topic_alias_maximum = 10,
        .max_subscriptions = 100, .retain_available = true,
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

#endif
