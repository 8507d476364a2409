/* test_broker.c -- the broker in-process, driven through its transport
 * interface with packets built by the codec: routing, overlapping
 * subscriptions, queue bounds and their drop policy, takeover, and
 * snapshot/restore. The black-box tests in tests/integration drive the same
 * code through real clients; these pin down internal policies exactly. */
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

static void test_route_qos1(void **state)
{
    (void)state;
    mqtt_broker_config c = cfg();
    auth *a = auth_new(NULL, true);
    mqtt_broker *b = mqtt_broker_new(&c, a);
    io sub, pub;
    open_conn(b, &sub, MQTT_V311, "sub", true, 0);
    open_conn(b, &pub, MQTT_V5, "pub", true, 0);
    subscribe(&sub, "plant/+/temp", 1, 1);
    publish(&pub, "plant/a/temp", "21.5", 1, 3, false);
    uint8_t keep[512];
    mqtt_packet p;
    assert_true(next_pkt(&pub, &p, keep, sizeof(keep)));
    assert_int_equal(p.type, MQTT_PUBACK);
    assert_int_equal(p.u.ack.packet_id, 3);
    assert_int_equal(p.u.ack.reason, 0);
    assert_true(next_pkt(&sub, &p, keep, sizeof(keep)));
    assert_int_equal(p.type, MQTT_PUBLISH);
    assert_int_equal(p.u.publish.qos, 1);
    assert_memory_equal(p.u.publish.payload.data, "21.5", 4);
    /* A publish nobody wants is acknowledged with "no matching subscribers". */
    publish(&pub, "other", "x", 1, 4, false);
    assert_true(next_pkt(&pub, &p, keep, sizeof(keep)));
    assert_int_equal(p.u.ack.reason, 0x10);
    close_conn(&sub);
    close_conn(&pub);
    mqtt_broker_free(b);
    auth_free(a);
}

static void test_overlap_delivered_once(void **state)
{
    (void)state;
    mqtt_broker_config c = cfg();
    auth *a = auth_new(NULL, true);
    mqtt_broker *b = mqtt_broker_new(&c, a);
    io sub, pub;
    open_conn(b, &sub, MQTT_V311, "sub", true, 0);
    open_conn(b, &pub, MQTT_V311, "pub", true, 0);
    subscribe(&sub, "a/#", 0, 0);
    subscribe(&sub, "a/+", 2, 2);
    publish(&pub, "a/b", "v", 2, 9, false);
    uint8_t keep[512];
    mqtt_packet p;
    int n = 0;
    while (next_pkt(&sub, &p, keep, sizeof(keep))) {
        assert_int_equal(p.type, MQTT_PUBLISH);
        assert_int_equal(p.u.publish.qos, 2); /* the maximum granted */
        n++;
    }
    assert_int_equal(n, 1);
    close_conn(&sub);
    close_conn(&pub);
    mqtt_broker_free(b);
    auth_free(a);
}

static void test_offline_queue_drops_oldest(void **state)
{
    (void)state;
    mqtt_broker_config c = cfg();
    auth *a = auth_new(NULL, true);
    mqtt_broker *b = mqtt_broker_new(&c, a);
    io sub, pub;
    open_conn(b, &sub, MQTT_V311, "dev", false, 0);
    subscribe(&sub, "q", 1, 1);
    close_conn(&sub); /* persistent session stays */
    open_conn(b, &pub, MQTT_V311, "pub", true, 0);
    char payload[16];
    for (int i = 0; i < 8; i++) {
        snprintf(payload, sizeof(payload), "%d", i);
        publish(&pub, "q", payload, 1, (uint16_t)(i + 1), false);
    }
    assert_int_equal(mqtt_broker_stats(b)->dropped[MQTT_DROP_QUEUE_FULL], 3);
    mqtt_gauges g;
    mqtt_broker_gauges(b, &g);
    assert_int_equal(g.queued_messages, 5);

    /* Snapshot, restore into a new broker, reconnect: 3..7 arrive in order. */
    weir_buf snap;
    buf_init(&snap, 0);
    assert_int_equal(mqtt_broker_snapshot(b, &snap), 0);
    close_conn(&pub);
    mqtt_broker_free(b);
    b = mqtt_broker_new(&c, a);
    assert_int_equal(mqtt_broker_restore(b, buf_head(&snap), buf_used(&snap)), 0);
    buf_free(&snap);
    open_conn(b, &sub, MQTT_V311, "dev", false, 0);
    uint8_t keep[512];
    mqtt_packet p;
    for (int i = 3; i < 8; i++) {
        assert_true(next_pkt(&sub, &p, keep, sizeof(keep)));
        assert_int_equal(p.type, MQTT_PUBLISH);
        snprintf(payload, sizeof(payload), "%d", i);
        assert_int_equal(p.u.publish.payload.len, 1);
        assert_memory_equal(p.u.publish.payload.data, payload, 1);
    }
    assert_false(next_pkt(&sub, &p, keep, sizeof(keep)));
    close_conn(&sub);
    mqtt_broker_free(b);
    auth_free(a);
}

static void test_takeover_v5(void **state)
{
    (void)state;
    mqtt_broker_config c = cfg();
    auth *a = auth_new(NULL, true);
    mqtt_broker *b = mqtt_broker_new(&c, a);
    io first, second;
    open_conn(b, &first, MQTT_V5, "same", false, 600);
    open_conn(b, &second, MQTT_V5, "same", false, 600);
    uint8_t keep[512];
    mqtt_packet p;
    assert_true(next_pkt(&first, &p, keep, sizeof(keep)));
    assert_int_equal(p.type, MQTT_DISCONNECT);
    assert_int_equal(p.u.disconnect.reason, 0x8E);
    assert_true(first.closing);
    assert_false(second.closing);
    close_conn(&first);
    close_conn(&second);
    mqtt_broker_free(b);
    auth_free(a);
}

static void test_retained_and_deny(void **state)
{
    (void)state;
    mqtt_broker_config c = cfg();
    auth *a = auth_new("secret/#", true);
    mqtt_broker *b = mqtt_broker_new(&c, a);
    io pub, sub;
    open_conn(b, &pub, MQTT_V5, "pub", true, 0);
    publish(&pub, "cfg/line1", "on", 0, 0, true);
    publish(&pub, "secret/x", "no", 1, 5, false);
    uint8_t keep[512];
    mqtt_packet p;
    assert_true(next_pkt(&pub, &p, keep, sizeof(keep)));
    assert_int_equal(p.type, MQTT_PUBACK);
    assert_int_equal(p.u.ack.reason, 0x87);
    open_conn(b, &sub, MQTT_V5, "sub", true, 0);
    subscribe(&sub, "secret/+", 0, 0x87);
    subscribe(&sub, "cfg/#", 1, 1);
    assert_true(next_pkt(&sub, &p, keep, sizeof(keep)));
    assert_int_equal(p.type, MQTT_PUBLISH);
    assert_true(p.u.publish.retain);
    assert_memory_equal(p.u.publish.payload.data, "on", 2);
    close_conn(&pub);
    close_conn(&sub);
    mqtt_broker_free(b);
    auth_free(a);
}

typedef struct hook_state {
    uint64_t tokens[8];
    int n;
    int refuse;
} hook_state;

static int hook(void *ctx, const mqtt_ingest_msg *m, uint64_t token)
{
    hook_state *h = ctx;
    if (strncmp((const char *)m->topic, "durable/", 8) != 0)
        return 0;
    if (h->refuse)
        return WEIR_EFULL;
    if (!token)
        return 0;
    h->tokens[h->n++] = token;
    return WEIR_EAGAIN;
}

static void test_ingest_hook_holds_acks_in_order(void **state)
{
    (void)state;
    mqtt_broker_config c = cfg();
    auth *a = auth_new(NULL, true);
    mqtt_broker *b = mqtt_broker_new(&c, a);
    hook_state h = {0};
    mqtt_broker_set_ingest(b, hook, &h);
    io pub;
    open_conn(b, &pub, MQTT_V5, "pub", true, 0);
    publish(&pub, "durable/a", "1", 1, 1, false);   /* held */
    publish(&pub, "other", "2", 1, 2, false);       /* immediate, but queued behind */
    publish(&pub, "durable/b", "3", 2, 3, false);   /* held (PUBREC) */
    publish(&pub, "durable/b", "3", 2, 3, false);   /* a resend while held: no second ack */
    uint8_t keep[512];
    mqtt_packet p;
    assert_false(next_pkt(&pub, &p, keep, sizeof(keep)));
    assert_int_equal(h.n, 2);
    mqtt_broker_ingest_done(b, h.tokens[1], 0); /* second done first: still nothing */
    assert_false(next_pkt(&pub, &p, keep, sizeof(keep)));
    mqtt_broker_ingest_done(b, h.tokens[0], 0);
    uint16_t want[] = {1, 2, 3};
    uint8_t types[] = {MQTT_PUBACK, MQTT_PUBACK, MQTT_PUBREC};
    for (int i = 0; i < 3; i++) {
        assert_true(next_pkt(&pub, &p, keep, sizeof(keep)));
        assert_int_equal(p.type, types[i]);
        assert_int_equal(p.u.ack.packet_id, want[i]);
    }
    assert_false(next_pkt(&pub, &p, keep, sizeof(keep)));
    /* Back-pressure: 5.0 gets 0x97 and nothing is routed. */
    h.refuse = 1;
    publish(&pub, "durable/c", "4", 1, 4, false);
    assert_true(next_pkt(&pub, &p, keep, sizeof(keep)));
    assert_int_equal(p.u.ack.reason, 0x97);
    /* A held ack whose connection closes is freed by the done call. */
    h.refuse = 0;
    publish(&pub, "durable/d", "5", 1, 5, false);
    close_conn(&pub);
    mqtt_broker_ingest_done(b, h.tokens[2], 0);
    assert_int_equal(mqtt_broker_stats(b)->ingest_refused, 1);
    mqtt_broker_free(b);
    auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_route_qos1),
        cmocka_unit_test(test_overlap_delivered_once),
        cmocka_unit_test(test_offline_queue_drops_oldest),
        cmocka_unit_test(test_takeover_v5),
        cmocka_unit_test(test_retained_and_deny),
        cmocka_unit_test(test_ingest_hook_holds_acks_in_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
