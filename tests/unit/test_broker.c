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
#include "broker_harness.h"
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
