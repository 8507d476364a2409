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

#include "broker_harness.h"

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
