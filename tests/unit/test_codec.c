/* test_codec.c -- unit tests of the MQTT 3.1.1/5.0 codec (src/mqtt/codec.h).
 *
 * Three kinds of evidence, as Mosquitto's broker tests do it:
 *   - byte-exact packets written by hand from the specification, decoded and
 *     re-encoded to the same bytes;
 *   - round trips of a sample of every packet type in both versions
 *     (encode, frame, decode, compare by meaning, re-encode to the same
 *     bytes), and of every property in every packet that allows it;
 *   - hostile input: every prefix of every sample, bad flags, bad lengths,
 *     bad UTF-8, duplicate and forbidden properties, out-of-range values.
 * Error-path decodes run on exact-size heap copies so that AddressSanitizer
 * reports a read one byte past the packet.
 *
 * Setting WEIR_CODEC_CORPUS=<dir> makes test_write_corpus write every sample
 * as a binary file there; that is how tests/fuzz/corpus/fuzz_codec/ was made.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "codec_eq.h"
#include "mqtt/codec.h"

/* ---- Helpers ------------------------------------------------------------ */

/* A byte builder for hand-made packets. */
typedef struct bb {
    uint8_t b[4096];
    size_t n;
} bb;

static void bb_put(bb *x, const void *p, size_t n)
{
    assert_true(x->n + n <= sizeof(x->b));
    memcpy(x->b + x->n, p, n);
    x->n += n;
}

static void bb_u8(bb *x, uint8_t v)
{
    bb_put(x, &v, 1);
}

static void bb_u16(bb *x, uint16_t v)
{
    bb_u8(x, (uint8_t)(v >> 8));
    bb_u8(x, (uint8_t)v);
}

static void bb_varint(bb *x, uint32_t v)
{
    do {
        uint8_t b = v & 0x7F;
        v >>= 7;
        bb_u8(x, (uint8_t)(b | (v ? 0x80 : 0)));
    } while (v);
}

static void bb_str(bb *x, const char *s)
{
    bb_u16(x, (uint16_t)strlen(s));
    bb_put(x, s, strlen(s));
}

/* A property block: length then bytes. */
static void bb_props(bb *x, const uint8_t *p, size_t n)
{
    bb_varint(x, (uint32_t)n);
    if (n)
        bb_put(x, p, n);
}

/* A whole packet: first byte, remaining length, body. */
static size_t bb_packet(bb *out, uint8_t first, const bb *body)
{
    out->n = 0;
    bb_u8(out, first);
    bb_varint(out, (uint32_t)body->n);
    bb_put(out, body->b, body->n);
    return out->n;
}

static mqtt_bytes B(const char *s)
{
    return (mqtt_bytes){(const uint8_t *)s, (uint32_t)strlen(s)};
}

static mqtt_bytes BIN(const void *p, size_t n)
{
    return (mqtt_bytes){p, (uint32_t)n};
}

/* Decodes from an exact-size heap copy; only the result code survives. */
static int dec_rc(const uint8_t *b, size_t n, uint8_t v)
{
    mqtt_packet p;
    const char *why = NULL;
    uint8_t *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    if (n)
        memcpy(copy, b, n);
    int rc = v ? mqtt_decode(copy, n, v, &p, &why) : mqtt_decode_connect(copy, n, &p, &why);
    free(copy);
    if (rc)
        assert_non_null(why);
    return rc;
}

#define EXPECT_RC(bytes, n, v, want)                                                               \
    assert_string_equal(weir_err_name(dec_rc((bytes), (n), (v))), weir_err_name(want))

/* Encodes p, checking mqtt_encoded_size agrees and a one-byte-short buffer
 * is refused. */
static size_t enc(const mqtt_packet *p, uint8_t v, uint8_t *out, size_t cap)
{
    size_t want = mqtt_encoded_size(p, v);
    assert_true(want > 0 && want <= cap);
    assert_int_equal(mqtt_encode(p, v, out, want - 1), 0);
    size_t n = mqtt_encode(p, v, out, cap);
    assert_int_equal(n, want);
    return n;
}

/* Frame, decode, compare with `want`, re-encode to the same bytes. */
static void check_roundtrip_bytes(const uint8_t *b, size_t n, uint8_t v, const mqtt_packet *want)
{
    size_t plen = 0;
    mqtt_packet got;
    const char *why = NULL;
    uint8_t again[4096];
    assert_int_equal(mqtt_frame(b, n, 0, &plen), WEIR_OK);
    assert_int_equal(plen, n);
    int rc = mqtt_decode(b, n, v, &got, &why);
    if (rc)
        fail_msg("decode %s v%u: %s (%s)", mqtt_type_name(b[0] >> 4), v, weir_err_name(rc), why);
    if (want)
        assert_true(eq_packet(want, &got, v));
    size_t n2 = enc(&got, v, again, sizeof(again));
    assert_int_equal(n2, n);
    assert_memory_equal(again, b, n);
}

/* ---- Samples: every packet type, both versions --------------------------- */

#define MAX_SAMPLES 40

static uint8_t s_user[256];
static uint32_t s_user_len;
static bb s_subs, s_unsubs;
static uint8_t s_big[300];
static const uint8_t s_suback3[] = {0x00, 0x01, 0x02, 0x80};
static const uint8_t s_suback5[] = {0x00, 0x01, 0x02, 0x80, 0x87, 0xA2};
static const uint8_t s_unsuback5[] = {0x00, 0x11, 0x87};

static mqtt_packet *add(mqtt_packet *arr, size_t *n, mqtt_type t)
{
    assert_true(*n < MAX_SAMPLES);
    mqtt_packet *p = &arr[(*n)++];
    memset(p, 0, sizeof(*p));
    p->type = t;
    return p;
}

static void user_props(mqtt_props *pr)
{
    pr->present |= MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
    pr->user_props = BIN(s_user, s_user_len);
}

static void sample_init(void)
{
    s_user_len = 0;
    assert_true(mqtt_user_prop_append(s_user, sizeof(s_user), &s_user_len, "site", "plant-7"));
    assert_true(mqtt_user_prop_append(s_user, sizeof(s_user), &s_user_len, "", ""));
    assert_true(mqtt_user_prop_append(s_user, sizeof(s_user), &s_user_len, "site", "dup ok"));
    s_subs.n = s_unsubs.n = 0;
    bb_str(&s_subs, "a/b");
    bb_u8(&s_subs, 1);
    bb_str(&s_subs, "+/temp/#");
    bb_u8(&s_subs, 0);
    bb_str(&s_subs, "$share/g/x");
    bb_u8(&s_subs, 2);
    bb_str(&s_unsubs, "a/b");
    bb_str(&s_unsubs, "#");
    for (size_t i = 0; i < sizeof(s_big); i++)
        s_big[i] = (uint8_t)i;
}

static void sample_connects(mqtt_packet *a, size_t *n, uint8_t v)
{
    mqtt_packet *p = add(a, n, MQTT_CONNECT);
    p->u.connect.clean_start = true;
    p->u.connect.keep_alive = 60;
    p->u.connect.client_id = B("c1");

    p = add(a, n, MQTT_CONNECT);
    mqtt_connect *c = &p->u.connect;
    c->client_id = B("sensor-42");
    c->will = true;
    c->will_qos = 1;
    c->will_retain = true;
    c->will_topic = B("dev/42/status");
    c->will_payload = B("offline");
    c->has_username = c->has_password = true;
    c->username = B("user");
    c->password = BIN("\x00\xffpw", 4);
    if (v == MQTT_V5) {
        c->props.present =
            MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) | MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
            MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
            MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) |
            MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO) |
            MQTT_PROP_BIT(MQTT_PROP_REQUEST_RESPONSE_INFO) | MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) |
            MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA);
        c->props.session_expiry = 0xFFFFFFFF;
        c->props.receive_maximum = 20;
        c->props.maximum_packet_size = 1 << 20;
        c->props.topic_alias_maximum = 10;
        c->props.request_response_info = 1;
        c->props.auth_method = B("SCRAM-SHA-1");
        c->props.auth_data = BIN("\x01\x02\x03", 3);
        user_props(&c->props);
        c->will_props.present =
            MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY) | MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) |
            MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) | MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) |
            MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) | MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA);
        c->will_props.will_delay = 30;
        c->will_props.payload_format = 1;
        c->will_props.message_expiry = 3600;
        c->will_props.content_type = B("text/plain");
        c->will_props.response_topic = B("dev/42/reply");
        c->will_props.correlation_data = BIN("\x00\x01", 2);
        user_props(&c->will_props);
    }

    p = add(a, n, MQTT_CONNECT);
    p->u.connect.has_username = true;
    p->u.connect.username = B("");
    p->u.connect.client_id = B("");
    p->u.connect.keep_alive = 0xFFFF;

    if (v == MQTT_V5) {
        p = add(a, n, MQTT_CONNECT);
        p->u.connect.client_id = B("tok");
        p->u.connect.has_password = true;
        p->u.connect.password = B("secret");
    }
}

static void sample_connacks(mqtt_packet *a, size_t *n, uint8_t v)
{
    mqtt_packet *p = add(a, n, MQTT_CONNACK);
    p->u.connack.session_present = true;
    if (v == MQTT_V5) {
        mqtt_props *pr = &p->u.connack.props;
        pr->present =
            MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) | MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID) |
            MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE) | MQTT_PROP_BIT(MQTT_PROP_RESPONSE_INFO) |
            MQTT_PROP_BIT(MQTT_PROP_REASON_STRING) | MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM) |
            MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM) | MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_QOS) |
            MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE) |
            MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE) |
            MQTT_PROP_BIT(MQTT_PROP_WILDCARD_SUB_AVAILABLE) |
            MQTT_PROP_BIT(MQTT_PROP_SUB_ID_AVAILABLE) |
            MQTT_PROP_BIT(MQTT_PROP_SHARED_SUB_AVAILABLE);
        pr->session_expiry = 120;
        pr->assigned_client_id = B("auto-1");
        pr->server_keep_alive = 30;
        pr->response_info = B("resp/");
        pr->reason_string = B("welcome");
        pr->receive_maximum = 65535;
        pr->topic_alias_maximum = 0;
        pr->maximum_qos = 1;
        pr->retain_available = 0;
        pr->maximum_packet_size = 268435460;
        pr->wildcard_sub_available = 1;
        pr->sub_id_available = 1;
        pr->shared_sub_available = 0;
        user_props(pr);
    }
    p = add(a, n, MQTT_CONNACK);
    p->u.connack.reason = v == MQTT_V5 ? 0x87 : 5;
    if (v == MQTT_V5) {
        p->u.connack.props.present = MQTT_PROP_BIT(MQTT_PROP_SERVER_REFERENCE);
        p->u.connack.props.server_reference = B("other:1883");
    }
}

static void sample_publishes(mqtt_packet *a, size_t *n, uint8_t v)
{
    mqtt_packet *p = add(a, n, MQTT_PUBLISH);
    p->u.publish.topic = B("a/b");
    p->u.publish.payload = B("hello");

    p = add(a, n, MQTT_PUBLISH);
    p->u.publish.qos = 1;
    p->u.publish.dup = p->u.publish.retain = true;
    p->u.publish.packet_id = 7;
    p->u.publish.topic = B("factory/line-1/valve/\xc3\xa9t\xc3\xa9");

    p = add(a, n, MQTT_PUBLISH);
    mqtt_publish *pb = &p->u.publish;
    pb->qos = 2;
    pb->packet_id = 65535;
    pb->topic = B("t");
    pb->payload = BIN(s_big, sizeof(s_big));
    if (v == MQTT_V5) {
        pb->props.present =
            MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT) | MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY) |
            MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE) | MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC) |
            MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA) | MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID) |
            MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
        pb->props.message_expiry = 10;
        pb->props.content_type = B("application/json");
        pb->props.response_topic = B("reply/here");
        pb->props.correlation_data = BIN("\x00", 1);
        pb->props.n_sub_ids = 3;
        pb->props.sub_ids[0] = 1;
        pb->props.sub_ids[1] = MQTT_MAX_REMAINING;
        pb->props.sub_ids[2] = 128;
        pb->props.topic_alias = 3;
        user_props(&pb->props);

        p = add(a, n, MQTT_PUBLISH);
        p->u.publish.payload = B("aliased");
        p->u.publish.props.present = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
        p->u.publish.props.topic_alias = 65535;
    }
}

static void sample_acks(mqtt_packet *a, size_t *n, uint8_t v)
{
    static const mqtt_type types[] = {MQTT_PUBACK, MQTT_PUBREC, MQTT_PUBREL, MQTT_PUBCOMP};
    for (unsigned i = 0; i < 4; i++) {
        mqtt_packet *p = add(a, n, types[i]);
        p->u.ack.packet_id = (uint16_t)(i + 1);
        if (v != MQTT_V5)
            continue;
        p = add(a, n, types[i]);
        p->u.ack.packet_id = 0x1234;
        p->u.ack.reason = types[i] == MQTT_PUBREL || types[i] == MQTT_PUBCOMP ? 0x92 : 0x10;
        p = add(a, n, types[i]);
        p->u.ack.packet_id = 0xFFFF;
        p->u.ack.reason = types[i] == MQTT_PUBREL || types[i] == MQTT_PUBCOMP ? 0x00 : 0x80;
        p->u.ack.props.present = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
        p->u.ack.props.reason_string = B("because");
        user_props(&p->u.ack.props);
    }
}

static void sample_subs(mqtt_packet *a, size_t *n, uint8_t v)
{
    mqtt_packet *p = add(a, n, MQTT_SUBSCRIBE);
    p->u.subscribe.packet_id = 1;
    p->u.subscribe.entries = BIN(s_subs.b, 6); /* "a/b" QoS 1 */
    p->u.subscribe.n_entries = 1;

    p = add(a, n, MQTT_SUBSCRIBE);
    p->u.subscribe.packet_id = 2;
    p->u.subscribe.entries = BIN(s_subs.b, s_subs.n);
    p->u.subscribe.n_entries = 3;
    if (v == MQTT_V5) {
        p->u.subscribe.props.present = MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
        p->u.subscribe.props.n_sub_ids = 1;
        p->u.subscribe.props.sub_ids[0] = 42;
        user_props(&p->u.subscribe.props);
    }

    p = add(a, n, MQTT_SUBACK);
    p->u.suback.packet_id = 1;
    p->u.suback.reasons = BIN(s_suback3, 1);
    p = add(a, n, MQTT_SUBACK);
    p->u.suback.packet_id = 2;
    p->u.suback.reasons =
        v == MQTT_V5 ? BIN(s_suback5, sizeof(s_suback5)) : BIN(s_suback3, sizeof(s_suback3));
    if (v == MQTT_V5) {
        p->u.suback.props.present = MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
        p->u.suback.props.reason_string = B("partly");
    }

    p = add(a, n, MQTT_UNSUBSCRIBE);
    p->u.unsubscribe.packet_id = 3;
    p->u.unsubscribe.entries = BIN(s_unsubs.b, s_unsubs.n);
    p->u.unsubscribe.n_entries = 2;
    if (v == MQTT_V5)
        user_props(&p->u.unsubscribe.props);

    p = add(a, n, MQTT_UNSUBACK);
    p->u.suback.packet_id = 3;
    if (v == MQTT_V5) {
        p->u.suback.reasons = BIN(s_unsuback5, sizeof(s_unsuback5));
        user_props(&p->u.suback.props);
    }
}

static void sample_control(mqtt_packet *a, size_t *n, uint8_t v)
{
    add(a, n, MQTT_PINGREQ);
    add(a, n, MQTT_PINGRESP);
    add(a, n, MQTT_DISCONNECT);
    if (v != MQTT_V5)
        return;
    mqtt_packet *p = add(a, n, MQTT_DISCONNECT);
    p->u.disconnect.reason = 0x04;
    p = add(a, n, MQTT_DISCONNECT);
    p->u.disconnect.reason = 0x8E;
    p->u.disconnect.props.present = MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY) |
                                    MQTT_PROP_BIT(MQTT_PROP_REASON_STRING) |
                                    MQTT_PROP_BIT(MQTT_PROP_SERVER_REFERENCE);
    p->u.disconnect.props.session_expiry = 0;
    p->u.disconnect.props.reason_string = B("taken over");
    p->u.disconnect.props.server_reference = B("b2");
    user_props(&p->u.disconnect.props);
    add(a, n, MQTT_AUTH);
    p = add(a, n, MQTT_AUTH);
    p->u.disconnect.reason = 0x18;
    p->u.disconnect.props.present = MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD) |
                                    MQTT_PROP_BIT(MQTT_PROP_AUTH_DATA) |
                                    MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
    p->u.disconnect.props.auth_method = B("SCRAM-SHA-1");
    p->u.disconnect.props.auth_data = B("r=abc,s=def");
    p->u.disconnect.props.reason_string = B("continue");
}

static size_t samples(uint8_t v, mqtt_packet *a)
{
    size_t n = 0;
    sample_init();
    sample_connects(a, &n, v);
    sample_connacks(a, &n, v);
    sample_publishes(a, &n, v);
    sample_acks(a, &n, v);
    sample_subs(a, &n, v);
    sample_control(a, &n, v);
    return n;
}

/* ---- Primitives ---------------------------------------------------------- */

static void test_varint_size(void **state)
{
    assert_int_equal(mqtt_varint_size(0), 1);
    assert_int_equal(mqtt_varint_size(127), 1);
    assert_int_equal(mqtt_varint_size(128), 2);
    assert_int_equal(mqtt_varint_size(16383), 2);
    assert_int_equal(mqtt_varint_size(16384), 3);
    assert_int_equal(mqtt_varint_size(2097151), 3);
    assert_int_equal(mqtt_varint_size(2097152), 4);
    assert_int_equal(mqtt_varint_size(MQTT_MAX_REMAINING), 4);
    assert_int_equal(mqtt_varint_size(MQTT_MAX_REMAINING + 1), 0);
    assert_int_equal(mqtt_varint_size(UINT32_MAX), 0);
}

static void test_type_name(void **state)
{
    assert_string_equal(mqtt_type_name(MQTT_PUBLISH), "PUBLISH");
    assert_string_equal(mqtt_type_name(MQTT_CONNECT), "CONNECT");
    assert_string_equal(mqtt_type_name(MQTT_AUTH), "AUTH");
    assert_string_equal(mqtt_type_name(MQTT_UNSUBACK), "UNSUBACK");
    assert_string_equal(mqtt_type_name(0), "UNKNOWN");
    assert_string_equal(mqtt_type_name(16), "UNKNOWN");
    assert_string_equal(mqtt_type_name(-1), "UNKNOWN");
}

static void test_utf8(void **state)
{
#define U(s, ok) assert_int_equal(mqtt_utf8_valid((const uint8_t *)(s), sizeof(s) - 1), ok)
    U("", true);
    U("plain/ascii", true);
    U("\xc3\xa9", true);          /* U+00E9 */
    U("\xe2\x82\xac", true);      /* U+20AC */
    U("\xef\xbb\xbf", true);      /* U+FEFF is allowed (and must not be skipped) */
    U("\xf0\x9f\x98\x80", true);  /* U+1F600 */
    U("\xf4\x8f\xbf\xbf", true);  /* U+10FFFF */
    U("\xed\x9f\xbf", true);      /* U+D7FF, just below the surrogates */
    U("\xee\x80\x80", true);      /* U+E000, just above */
    U("\x00", false);             /* U+0000 [MQTT-1.5.4-2] */
    U("a\0b", false);             /* embedded U+0000 */
    U("\xc0\x80", false);         /* overlong U+0000 */
    U("\xc1\xbf", false);         /* overlong U+007F */
    U("\xe0\x80\xaf", false);     /* overlong '/' */
    U("\xe0\x9f\xbf", false);     /* overlong U+07FF */
    U("\xf0\x80\x80\xaf", false); /* overlong '/' */
    U("\xf0\x8f\xbf\xbf", false); /* overlong U+FFFF */
    U("\xed\xa0\x80", false);     /* U+D800 surrogate */
    U("\xed\xbf\xbf", false);     /* U+DFFF surrogate */
    U("\xf4\x90\x80\x80", false); /* U+110000 */
    U("\xf5\x80\x80\x80", false);
    U("\xf8\x88\x80\x80\x80", false); /* 5-byte form */
    U("\xff", false);
    U("\x80", false); /* lone continuation */
    U("\xc3", false); /* truncated */
    U("\xe2\x82", false);
    U("\xf0\x9f\x98", false);
    U("\xc3\x28", false); /* bad continuation */
#undef U
    assert_true(mqtt_utf8_valid(NULL, 0));
}

/* ---- Framing ------------------------------------------------------------- */

static void test_frame(void **state)
{
    size_t len = 99;
    const uint8_t ping[] = {0xC0, 0x00, 0xD0, 0x00};
    assert_int_equal(mqtt_frame(ping, 0, 0, &len), WEIR_EAGAIN);
    assert_int_equal(mqtt_frame(ping, 1, 0, &len), WEIR_EAGAIN);
    assert_int_equal(mqtt_frame(ping, 2, 0, &len), WEIR_OK);
    assert_int_equal(len, 2);
    assert_int_equal(mqtt_frame(ping, 4, 0, &len), WEIR_OK);
    assert_int_equal(len, 2); /* the first packet only */

    const uint8_t partial[] = {0x30, 0x80, 0x80};
    assert_int_equal(mqtt_frame(partial, 2, 0, &len), WEIR_EAGAIN);
    assert_int_equal(mqtt_frame(partial, 3, 0, &len), WEIR_EAGAIN);

    /* A fifth length byte is malformed as soon as the fourth says "more". */
    const uint8_t five[] = {0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    assert_int_equal(mqtt_frame(five, 5, 0, &len), WEIR_EMALFORMED);
    assert_int_equal(mqtt_frame(five, 6, 0, &len), WEIR_EMALFORMED);
    EXPECT_RC(five, 6, MQTT_V5, WEIR_EMALFORMED);

    /* The largest packet: framing waits for it (max_size 0 = protocol max). */
    const uint8_t max[] = {0x30, 0xFF, 0xFF, 0xFF, 0x7F};
    assert_int_equal(mqtt_frame(max, 5, 0, &len), WEIR_EAGAIN);
    assert_int_equal(mqtt_frame(max, 5, MQTT_MAX_REMAINING + 5, &len), WEIR_EAGAIN);
    assert_int_equal(mqtt_frame(max, 5, MQTT_MAX_REMAINING + 4, &len), WEIR_ETOOBIG);

    /* Oversize is refused from the header alone, before the body arrives;
     * the length itself must be complete first (at most five bytes), so that
     * a five-byte length is reported as malformed rather than as too big. */
    const uint8_t big[] = {0x30, 0xC8, 0x01}; /* remaining 200 */
    assert_int_equal(mqtt_frame(big, 3, 100, &len), WEIR_ETOOBIG);
    assert_int_equal(mqtt_frame(big, 3, 203, &len), WEIR_EAGAIN);
    assert_int_equal(mqtt_frame(big, 3, 202, &len), WEIR_ETOOBIG);
    const uint8_t huge_partial[] = {0x30, 0xFF, 0xFF};
    assert_int_equal(mqtt_frame(huge_partial, 3, 1000, &len), WEIR_EAGAIN);
    const uint8_t huge[] = {0x30, 0xFF, 0x7F}; /* remaining 16383 */
    assert_int_equal(mqtt_frame(huge, 3, 1000, &len), WEIR_ETOOBIG);

    uint8_t exact[203] = {0x30, 0xC8, 0x01};
    assert_int_equal(mqtt_frame(exact, sizeof(exact), 203, &len), WEIR_OK);
    assert_int_equal(len, 203);
    assert_int_equal(mqtt_frame(exact, sizeof(exact) - 1, 203, &len), WEIR_EAGAIN);

    /* Non-minimal lengths are legal (codec.h): 0x80 0x00 is 0. */
    const uint8_t nonmin[] = {0xC0, 0x80, 0x00};
    assert_int_equal(mqtt_frame(nonmin, 3, 0, &len), WEIR_OK);
    assert_int_equal(len, 3);
    EXPECT_RC(nonmin, 3, MQTT_V311, WEIR_OK);
}

/* ---- Byte-exact packets -------------------------------------------------- */

static void test_known_ping_disconnect(void **state)
{
    uint8_t out[8];
    mqtt_packet p = {.type = MQTT_PINGREQ};
    for (uint8_t v = MQTT_V311; v <= MQTT_V5; v++) {
        p.type = MQTT_PINGREQ;
        assert_int_equal(enc(&p, v, out, sizeof(out)), 2);
        assert_memory_equal(out, "\xC0\x00", 2);
        p.type = MQTT_PINGRESP;
        assert_int_equal(enc(&p, v, out, sizeof(out)), 2);
        assert_memory_equal(out, "\xD0\x00", 2);
        p.type = MQTT_DISCONNECT;
        assert_int_equal(enc(&p, v, out, sizeof(out)), 2);
        assert_memory_equal(out, "\xE0\x00", 2);
        EXPECT_RC((const uint8_t *)"\xC0\x00", 2, v, WEIR_OK);
        EXPECT_RC((const uint8_t *)"\xC0\x01\x00", 3, v, WEIR_EMALFORMED);
        EXPECT_RC((const uint8_t *)"\xD0\x00", 2, v, WEIR_OK);
    }
    EXPECT_RC((const uint8_t *)"\xE0\x01\x00", 3, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xE0\x01\x00", 3, MQTT_V5, WEIR_OK);
}

static void test_known_connect_311(void **state)
{
    /* Built from 3.1.1 section 3.1 by hand: clean session, user name and
     * password, keep alive 60, client id "weir". */
    static const uint8_t bytes[] = {
        0x10, 0x1C,                            /* CONNECT, remaining 28 */
        0x00, 0x04, 'M',  'Q', 'T', 'T', 0x04, /* protocol name, level 4 */
        0xC2, 0x00, 0x3C,                      /* flags, keep alive 60 */
        0x00, 0x04, 'w',  'e', 'i', 'r',       /* client id */
        0x00, 0x04, 'u',  's', 'e', 'r',       /* user name */
        0x00, 0x04, 'p',  'a', 's', 's',       /* password */
    };
    mqtt_packet p;
    const char *why;
    assert_int_equal(mqtt_decode_connect(bytes, sizeof(bytes), &p, &why), WEIR_OK);
    assert_int_equal(p.type, MQTT_CONNECT);
    mqtt_connect *c = &p.u.connect;
    assert_int_equal(c->version, MQTT_V311);
    assert_true(c->clean_start);
    assert_int_equal(c->keep_alive, 60);
    assert_true(eq_bytes(c->client_id, B("weir")));
    assert_false(c->will);
    assert_true(c->has_username && eq_bytes(c->username, B("user")));
    assert_true(c->has_password && eq_bytes(c->password, B("pass")));
    assert_int_equal(c->props.present, 0);

    mqtt_packet q = {.type = MQTT_CONNECT};
    q.u.connect.clean_start = true;
    q.u.connect.keep_alive = 60;
    q.u.connect.client_id = B("weir");
    q.u.connect.has_username = q.u.connect.has_password = true;
    q.u.connect.username = B("user");
    q.u.connect.password = B("pass");
    uint8_t out[64];
    assert_int_equal(enc(&q, MQTT_V311, out, sizeof(out)), sizeof(bytes));
    assert_memory_equal(out, bytes, sizeof(bytes));
    check_roundtrip_bytes(bytes, sizeof(bytes), MQTT_V311, &q);
}

static void test_known_connect_5(void **state)
{
    /* 5.0 CONNECT with a will, session expiry 10 and will delay 5. */
    static const uint8_t bytes[] = {
        0x10, 0x23,                               /* remaining 35 */
        0x00, 0x04, 'M',  'Q',  'T',  'T',  0x05, /* protocol name, level 5 */
        0x0E, 0x00, 0x0A,                         /* will QoS 1, clean; keep alive 10 */
        0x05, 0x11, 0x00, 0x00, 0x00, 0x0A,       /* session expiry 10 */
        0x00, 0x02, 'c',  '1',                    /* client id */
        0x05, 0x18, 0x00, 0x00, 0x00, 0x05,       /* will delay 5 */
        0x00, 0x03, 'w',  '/',  't',              /* will topic */
        0x00, 0x02, 'o',  'k',                    /* will payload */
    };
    mqtt_packet p;
    const char *why;
    assert_int_equal(mqtt_decode_connect(bytes, sizeof(bytes), &p, &why), WEIR_OK);
    mqtt_connect *c = &p.u.connect;
    assert_int_equal(c->version, MQTT_V5);
    assert_true(c->will && c->will_qos == 1 && !c->will_retain);
    assert_int_equal(c->props.present, MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY));
    assert_int_equal(c->props.session_expiry, 10);
    assert_int_equal(c->will_props.present, MQTT_PROP_BIT(MQTT_PROP_WILL_DELAY));
    assert_int_equal(c->will_props.will_delay, 5);
    assert_true(eq_bytes(c->will_topic, B("w/t")));
    assert_true(eq_bytes(c->will_payload, B("ok")));
    assert_false(c->has_username || c->has_password);
    check_roundtrip_bytes(bytes, sizeof(bytes), MQTT_V5, &p);
    /* mqtt_decode decodes a CONNECT whatever version it is given. */
    EXPECT_RC(bytes, sizeof(bytes), MQTT_V311, WEIR_OK);
}

static void test_known_publish(void **state)
{
    static const uint8_t v3[] = {0x32, 0x09, 0x00, 0x03, 'a', '/', 'b', 0x00, 0x07, 'h', 'i'};
    static const uint8_t v5[] = {0x3B, 0x0D, 0x00, 0x03, 'a',  '/', 'b', 0x00,
                                 0x07, 0x03, 0x23, 0x00, 0x01, 'h', 'i'};
    mqtt_packet p = {.type = MQTT_PUBLISH};
    p.u.publish.qos = 1;
    p.u.publish.packet_id = 7;
    p.u.publish.topic = B("a/b");
    p.u.publish.payload = B("hi");
    uint8_t out[64];
    assert_int_equal(enc(&p, MQTT_V311, out, sizeof(out)), sizeof(v3));
    assert_memory_equal(out, v3, sizeof(v3));
    check_roundtrip_bytes(v3, sizeof(v3), MQTT_V311, &p);

    p.u.publish.dup = p.u.publish.retain = true;
    p.u.publish.props.present = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    p.u.publish.props.topic_alias = 1;
    assert_int_equal(enc(&p, MQTT_V5, out, sizeof(out)), sizeof(v5));
    assert_memory_equal(out, v5, sizeof(v5));
    check_roundtrip_bytes(v5, sizeof(v5), MQTT_V5, &p);

    mqtt_packet d;
    const char *why;
    assert_int_equal(mqtt_decode(v5, sizeof(v5), MQTT_V5, &d, &why), WEIR_OK);
    assert_true(d.u.publish.dup && d.u.publish.retain && d.u.publish.qos == 1);
    assert_ptr_equal(d.u.publish.payload.data, v5 + 13); /* zero-copy */
    assert_ptr_equal(d.u.publish.topic.data, v5 + 4);
}

static void test_known_subscribe(void **state)
{
    /* 5.0 SUBSCRIBE id 10, subscription id 300, "s/#" with QoS 2, no local,
     * retain as published, retain handling 2. */
    static const uint8_t v5[] = {0x82, 0x0C, 0x00, 0x0A, 0x03, 0x0B, 0xAC,
                                 0x02, 0x00, 0x03, 's',  '/',  '#',  0x2E};
    mqtt_packet p;
    const char *why;
    assert_int_equal(mqtt_decode(v5, sizeof(v5), MQTT_V5, &p, &why), WEIR_OK);
    assert_int_equal(p.u.subscribe.packet_id, 10);
    assert_int_equal(p.u.subscribe.props.n_sub_ids, 1);
    assert_int_equal(p.u.subscribe.props.sub_ids[0], 300);
    assert_int_equal(p.u.subscribe.n_entries, 1);
    uint32_t pos = 0;
    mqtt_sub_entry e;
    assert_true(mqtt_sub_next(&p.u.subscribe, &pos, &e));
    assert_true(eq_bytes(e.filter, B("s/#")));
    assert_int_equal(MQTT_SUBOPT_QOS(e.options), 2);
    assert_true(e.options & MQTT_SUBOPT_NO_LOCAL);
    assert_true(e.options & MQTT_SUBOPT_RAP);
    assert_int_equal(MQTT_SUBOPT_RH(e.options), 2);
    assert_false(mqtt_sub_next(&p.u.subscribe, &pos, &e));
    check_roundtrip_bytes(v5, sizeof(v5), MQTT_V5, &p);

    /* The same subscription in 3.1.1 keeps only the QoS bits. */
    static const uint8_t v3[] = {0x82, 0x08, 0x00, 0x0A, 0x00, 0x03, 's', '/', '#', 0x02};
    uint8_t out[32];
    assert_int_equal(enc(&p, MQTT_V311, out, sizeof(out)), sizeof(v3));
    assert_memory_equal(out, v3, sizeof(v3));
    EXPECT_RC(v5, sizeof(v5), MQTT_V311, WEIR_EMALFORMED);
}

/* ---- Round trips of every sample ----------------------------------------- */

static void roundtrip_all(uint8_t v)
{
    mqtt_packet s[MAX_SAMPLES];
    size_t n = samples(v, s);
    unsigned seen = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t out[4096];
        size_t len = enc(&s[i], v, out, sizeof(out));
        check_roundtrip_bytes(out, len, v, &s[i]);
        seen |= 1u << s[i].type;
    }
    /* Every packet type of the version appears among the samples. */
    assert_int_equal(seen, v == MQTT_V5 ? 0xFFFEu : 0x7FFEu);
}

static void test_roundtrip_311(void **state)
{
    roundtrip_all(MQTT_V311);
}

static void test_roundtrip_5(void **state)
{
    roundtrip_all(MQTT_V5);
}

/* The packet without its 5.0-only fields, as 3.1.1 would carry it. */
static void strip_v5(mqtt_packet *p)
{
    static const mqtt_props none;
    switch (p->type) {
    case MQTT_CONNECT:
        p->u.connect.props = p->u.connect.will_props = none;
        break;
    case MQTT_CONNACK:
        p->u.connack.props = none;
        break;
    case MQTT_PUBLISH:
        p->u.publish.props = none;
        break;
    case MQTT_SUBSCRIBE:
        p->u.subscribe.props = none;
        break;
    case MQTT_UNSUBSCRIBE:
        p->u.unsubscribe.props = none;
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        p->u.suback.props = none;
        break;
    default:
        break; /* acks and DISCONNECT compare no 5.0 field in 3.1.1 */
    }
}

/* 5.0-only fields are left out when a 5.0 packet is encoded for 3.1.1;
 * what cannot be said in 3.1.1 at all is refused. */
static void test_v5_fields_dropped_for_311(void **state)
{
    mqtt_packet s[MAX_SAMPLES];
    size_t n = samples(MQTT_V5, s);
    for (size_t i = 0; i < n; i++) {
        uint8_t out[4096];
        mqtt_packet *p = &s[i];
        bool refused =
            p->type == MQTT_AUTH ||
            (p->type == MQTT_CONNECT && p->u.connect.has_password && !p->u.connect.has_username);
        if (refused) {
            assert_int_equal(mqtt_encoded_size(p, MQTT_V311), 0);
            assert_int_equal(mqtt_encode(p, MQTT_V311, out, sizeof(out)), 0);
            continue;
        }
        size_t len = enc(p, MQTT_V311, out, sizeof(out));
        mqtt_packet d;
        const char *why = NULL;
        int rc = mqtt_decode(out, len, MQTT_V311, &d, &why);
        bool v5_codes = (p->type == MQTT_CONNACK && p->u.connack.reason > 5) ||
                        (p->type == MQTT_SUBACK && p->u.suback.reasons.len > 4);
        bool alias_only = p->type == MQTT_PUBLISH && p->u.publish.topic.len == 0;
        if (v5_codes || alias_only) {
            /* Reason codes are not translated and an alias has no 3.1.1
             * form: the 3.1.1 decoder refuses what the caller asked for. */
            assert_int_not_equal(rc, WEIR_OK);
            continue;
        }
        if (rc)
            fail_msg("sample %zu (%s): %s", i, mqtt_type_name(p->type), why);
        strip_v5(p);
        assert_true(eq_packet(p, &d, MQTT_V311));
    }
}

/* ---- Truncation ---------------------------------------------------------- */

/* Every prefix of a valid packet: framing asks for more, decoding refuses.
 * Every shortened body under a corrected header: decoding never crashes. */
static void truncate_all(uint8_t v)
{
    mqtt_packet s[MAX_SAMPLES];
    size_t n = samples(v, s);
    for (size_t i = 0; i < n; i++) {
        uint8_t out[4096];
        size_t len = enc(&s[i], v, out, sizeof(out));
        size_t hdr = 2;
        while (out[hdr - 1] & 0x80)
            hdr++;
        for (size_t k = 0; k < len; k++) {
            size_t plen;
            assert_int_equal(mqtt_frame(out, k, 0, &plen), WEIR_EAGAIN);
            assert_int_not_equal(dec_rc(out, k, v), WEIR_OK);
        }
        for (size_t body = 0; body < len - hdr; body++) {
            bb b = {.n = 0}, pkt;
            bb_put(&b, out + hdr, body);
            bb_packet(&pkt, out[0], &b);
            (void)dec_rc(pkt.b, pkt.n, v);
            (void)dec_rc(pkt.b, pkt.n, 0);
        }
    }
}

static void test_truncation_311(void **state)
{
    truncate_all(MQTT_V311);
}

static void test_truncation_5(void **state)
{
    truncate_all(MQTT_V5);
}

/* ---- Fixed header -------------------------------------------------------- */

/* A minimal valid body of each type in 5.0, to try every flag nibble on. */
static void minimal_body(uint8_t type, bb *b)
{
    b->n = 0;
    switch (type) {
    case MQTT_CONNECT:
        bb_str(b, "MQTT");
        bb_u8(b, 5);
        bb_u8(b, 2);
        bb_u16(b, 0);
        bb_u8(b, 0);
        bb_str(b, "c");
        break;
    case MQTT_CONNACK:
        bb_put(b, "\x00\x00\x00", 3);
        break;
    case MQTT_PUBLISH:
        bb_str(b, "t");
        bb_u16(b, 1); /* a packet id: valid for QoS 1/2, payload for QoS 0 */
        bb_u8(b, 0);
        break;
    case MQTT_SUBSCRIBE:
        bb_put(b, "\x00\x01\x00", 3);
        bb_str(b, "t");
        bb_u8(b, 0);
        break;
    case MQTT_UNSUBSCRIBE:
        bb_put(b, "\x00\x01\x00", 3);
        bb_str(b, "t");
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        bb_put(b, "\x00\x01\x00\x00", 4);
        break;
    case MQTT_PINGREQ:
    case MQTT_PINGRESP:
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        break;
    default: /* acks */
        bb_u16(b, 1);
        break;
    }
}

static void test_fixed_header_flags(void **state)
{
    for (uint8_t t = 1; t <= 15; t++) {
        bb body, pkt;
        minimal_body(t, &body);
        for (uint8_t f = 0; f < 16; f++) {
            bb_packet(&pkt, (uint8_t)(t << 4 | f), &body);
            int want;
            if (t == MQTT_PUBLISH)
                want = ((f >> 1) & 3) == 3   ? WEIR_EMALFORMED
                       : (f & 8) && !(f & 6) ? WEIR_EPROTO
                                             : WEIR_OK;
            else if (t == MQTT_PUBREL || t == MQTT_SUBSCRIBE || t == MQTT_UNSUBSCRIBE)
                want = f == 2 ? WEIR_OK : WEIR_EMALFORMED;
            else
                want = f == 0 ? WEIR_OK : WEIR_EMALFORMED;
            EXPECT_RC(pkt.b, pkt.n, MQTT_V5, want);
        }
    }
    /* Type 0 is reserved in both versions; 15 (AUTH) in 3.1.1. */
    EXPECT_RC((const uint8_t *)"\x00\x00", 2, MQTT_V5, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\x00\x00", 2, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xF0\x00", 2, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xF0\x00", 2, MQTT_V5, WEIR_OK);
}

static void test_remaining_length(void **state)
{
    /* Trailing garbage after a complete body. */
    EXPECT_RC((const uint8_t *)"\x40\x03\x00\x01\xAA", 5, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xD0\x01\x00", 3, MQTT_V5, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\x20\x03\x00\x00\x00", 5, MQTT_V311, WEIR_EMALFORMED);
    /* Remaining length larger or smaller than the bytes given. */
    EXPECT_RC((const uint8_t *)"\x40\x02\x00", 3, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\x40\x02\x00\x01\x00", 5, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\x40\x01\x00", 3, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xC0", 1, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"", 0, MQTT_V311, WEIR_EMALFORMED);
    /* Five-byte remaining length. */
    EXPECT_RC((const uint8_t *)"\xC0\x80\x80\x80\x80\x00", 6, MQTT_V311, WEIR_EMALFORMED);
    /* A string length that runs past the packet. */
    EXPECT_RC((const uint8_t *)"\x30\x03\x00\x05\x61", 5, MQTT_V311, WEIR_EMALFORMED);
    /* A bad version argument. */
    EXPECT_RC((const uint8_t *)"\xC0\x00", 2, 3, WEIR_EVERSION);
    EXPECT_RC((const uint8_t *)"\xC0\x00", 2, 6, WEIR_EVERSION);
    mqtt_packet p;
    assert_int_equal(mqtt_decode(NULL, 0, MQTT_V5, &p, NULL), WEIR_EMALFORMED);
}

/* ---- PUBLISH ------------------------------------------------------------- */

static size_t publish_raw(bb *pkt, uint8_t first, const char *topic, int id, uint8_t v,
                          const uint8_t *props, size_t plen)
{
    bb b = {.n = 0};
    bb_str(&b, topic);
    if (id >= 0)
        bb_u16(&b, (uint16_t)id);
    if (v == MQTT_V5)
        bb_props(&b, props, plen);
    bb_put(&b, "x", 1);
    return bb_packet(pkt, first, &b);
}

static void test_publish_rules(void **state)
{
    bb p;
    static const uint8_t alias[] = {0x23, 0x00, 0x01};
    for (uint8_t v = MQTT_V311; v <= MQTT_V5; v++) {
        publish_raw(&p, 0x36, "t", 1, v, NULL, 0); /* QoS 3 */
        EXPECT_RC(p.b, p.n, v, WEIR_EMALFORMED);
        publish_raw(&p, 0x37, "t", 1, v, NULL, 0); /* QoS 3 + retain */
        EXPECT_RC(p.b, p.n, v, WEIR_EMALFORMED);
        publish_raw(&p, 0x38, "t", -1, v, NULL, 0); /* DUP on QoS 0 */
        EXPECT_RC(p.b, p.n, v, v == MQTT_V5 ? WEIR_EPROTO : WEIR_EMALFORMED);
        publish_raw(&p, 0x3A, "t", 1, v, NULL, 0); /* DUP on QoS 1 is fine */
        EXPECT_RC(p.b, p.n, v, WEIR_OK);
        publish_raw(&p, 0x32, "t", 0, v, NULL, 0); /* packet id 0 */
        EXPECT_RC(p.b, p.n, v, WEIR_EPROTO);
        publish_raw(&p, 0x34, "t", 0, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_EPROTO);
        publish_raw(&p, 0x30, "a/+/b", -1, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_ETOPIC);
        publish_raw(&p, 0x30, "a/#", -1, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_ETOPIC);
        publish_raw(&p, 0x30, "#", -1, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_ETOPIC);
        publish_raw(&p, 0x30, "", -1, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_ETOPIC);
        publish_raw(&p, 0x30, "a\xc0\x80", -1, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_EUTF8);
        publish_raw(&p, 0x31, "$SYS/x y", -1, v, NULL, 0);
        EXPECT_RC(p.b, p.n, v, WEIR_OK);
    }
    /* 5.0: an empty topic is allowed behind a topic alias. */
    publish_raw(&p, 0x30, "", -1, MQTT_V5, alias, sizeof(alias));
    EXPECT_RC(p.b, p.n, MQTT_V5, WEIR_OK);
    publish_raw(&p, 0x30, "a/+", -1, MQTT_V5, alias, sizeof(alias));
    EXPECT_RC(p.b, p.n, MQTT_V5, WEIR_ETOPIC);
    /* A QoS 0 PUBLISH may have an empty payload. */
    static const uint8_t empty[] = {0x30, 0x03, 0x00, 0x01, 't'};
    mqtt_packet d;
    const char *why;
    assert_int_equal(mqtt_decode(empty, sizeof(empty), MQTT_V311, &d, &why), WEIR_OK);
    assert_int_equal(d.u.publish.payload.len, 0);
    assert_int_equal(d.u.publish.packet_id, 0);
    /* A 5.0 PUBLISH without its property length is malformed. */
    EXPECT_RC(empty, sizeof(empty), MQTT_V5, WEIR_EMALFORMED);
}

/* ---- CONNECT ------------------------------------------------------------- */

static size_t connect_raw(bb *pkt, const char *name, uint8_t level, uint8_t flags, const char *tail,
                          size_t tail_len)
{
    bb b = {.n = 0};
    bb_str(&b, name);
    bb_u8(&b, level);
    bb_u8(&b, flags);
    bb_u16(&b, 30);
    if (level == MQTT_V5)
        bb_u8(&b, 0);
    bb_put(&b, tail, tail_len);
    return bb_packet(pkt, 0x10, &b);
}

#define CONNECT_RC(name, level, flags, tail, want)                                                 \
    do {                                                                                           \
        bb pkt_;                                                                                   \
        connect_raw(&pkt_, name, level, flags, tail, sizeof(tail) - 1);                            \
        EXPECT_RC(pkt_.b, pkt_.n, 0, want);                                                        \
    } while (0)

static void test_connect_rules(void **state)
{
    CONNECT_RC("MQTT", 4, 0x02,
               "\x00\x01"
               "c",
               WEIR_OK);
    CONNECT_RC("MQTT", 5, 0x02,
               "\x00\x01"
               "c",
               WEIR_OK);
    CONNECT_RC("MQIsdp", 3, 0x02,
               "\x00\x01"
               "c",
               WEIR_EVERSION);
    CONNECT_RC("MQTT", 3, 0x02,
               "\x00\x01"
               "c",
               WEIR_EVERSION);
    CONNECT_RC("MQTT", 6, 0x02,
               "\x00\x01"
               "c",
               WEIR_EVERSION);
    CONNECT_RC("MQTT", 0x84, 0x02,
               "\x00\x01"
               "c",
               WEIR_EVERSION); /* bridge bit */
    CONNECT_RC("mqtt", 4, 0x02,
               "\x00\x01"
               "c",
               WEIR_EVERSION);
    CONNECT_RC("MQTTT", 4, 0x02,
               "\x00\x01"
               "c",
               WEIR_EVERSION);
    CONNECT_RC("MQTT", 4, 0x03,
               "\x00\x01"
               "c",
               WEIR_EMALFORMED); /* reserved */
    CONNECT_RC("MQTT", 5, 0x03,
               "\x00\x01"
               "c",
               WEIR_EMALFORMED);
    CONNECT_RC("MQTT", 4, 0x0A,
               "\x00\x01"
               "c",
               WEIR_EMALFORMED); /* will QoS, no will */
    CONNECT_RC("MQTT", 5, 0x12,
               "\x00\x01"
               "c",
               WEIR_EMALFORMED);
    CONNECT_RC("MQTT", 4, 0x22,
               "\x00\x01"
               "c",
               WEIR_EMALFORMED); /* retain, no will */
    CONNECT_RC("MQTT", 4, 0x1E,
               "\x00\x01"
               "c\x00\x01t\x00\x00",
               WEIR_EMALFORMED); /* QoS 3 */
    CONNECT_RC("MQTT", 4, 0x36,
               "\x00\x01"
               "c\x00\x01t\x00\x00",
               WEIR_OK);
    CONNECT_RC("MQTT", 4, 0x06,
               "\x00\x01"
               "c\x00\x03t/+\x00\x00",
               WEIR_ETOPIC);
    CONNECT_RC("MQTT", 4, 0x06,
               "\x00\x01"
               "c\x00\x00\x00\x00",
               WEIR_ETOPIC);
    CONNECT_RC("MQTT", 4, 0x06,
               "\x00\x01"
               "c\x00\x01t",
               WEIR_EMALFORMED); /* no payload */
    /* Password without user name: malformed in 3.1.1, allowed in 5.0. */
    CONNECT_RC("MQTT", 4, 0x42,
               "\x00\x01"
               "c\x00\x01p",
               WEIR_EMALFORMED);
    CONNECT_RC("MQTT", 5, 0x42,
               "\x00\x01"
               "c\x00\x01p",
               WEIR_OK);
    CONNECT_RC("MQTT", 4, 0xC2,
               "\x00\x01"
               "c\x00\x01u\x00\x01p",
               WEIR_OK);
    CONNECT_RC("MQTT", 4, 0xC2,
               "\x00\x01"
               "c\x00\x01u",
               WEIR_EMALFORMED);
    CONNECT_RC("MQTT", 4, 0x82,
               "\x00\x01"
               "c\x00\x01u\x00",
               WEIR_EMALFORMED); /* trailing */
    CONNECT_RC("MQTT", 4, 0x82,
               "\x00\x01"
               "c\x00\x01\xff",
               WEIR_EUTF8); /* user name */
    CONNECT_RC("MQTT", 4, 0x42 | 0x80,
               "\x00\x01"
               "c\x00\x00\x00\x01\xff",
               WEIR_OK);                                     /* bin pw */
    CONNECT_RC("MQTT", 4, 0x02, "\x00\x01\x00", WEIR_EUTF8); /* client id U+0000 */
    CONNECT_RC("MQTT", 4, 0x02, "\x00\x00", WEIR_OK);        /* empty client id */
    CONNECT_RC("MQTT", 4, 0x02, "", WEIR_EMALFORMED);
    /* A truncated protocol name. */
    EXPECT_RC((const uint8_t *)"\x10\x03\x00\x04M", 5, 0, WEIR_EMALFORMED);
    /* mqtt_decode_connect takes only CONNECT. */
    EXPECT_RC((const uint8_t *)"\xC0\x00", 2, 0, WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\x20\x02\x00\x00", 4, 0, WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\x11\x00", 2, 0, WEIR_EMALFORMED); /* flags */
}

/* ---- SUBSCRIBE, UNSUBSCRIBE and their acks ------------------------------- */

static size_t sub_raw(bb *pkt, uint8_t first, int id, uint8_t v, const char *list, size_t n)
{
    bb b = {.n = 0};
    bb_u16(&b, (uint16_t)id);
    if (v == MQTT_V5)
        bb_u8(&b, 0);
    bb_put(&b, list, n);
    return bb_packet(pkt, first, &b);
}

#define SUB_RC(first, id, v, list, want)                                                           \
    do {                                                                                           \
        bb pkt_;                                                                                   \
        sub_raw(&pkt_, first, id, v, list, sizeof(list) - 1);                                      \
        EXPECT_RC(pkt_.b, pkt_.n, v, want);                                                        \
    } while (0)

static void test_subscribe_rules(void **state)
{
    for (uint8_t v = MQTT_V311; v <= MQTT_V5; v++) {
        SUB_RC(0x82, 1, v, "\x00\x01t\x02", WEIR_OK);
        SUB_RC(0x82, 1, v, "", WEIR_EPROTO);              /* no entries */
        SUB_RC(0x82, 0, v, "\x00\x01t\x00", WEIR_EPROTO); /* packet id 0 */
        SUB_RC(0x82, 1, v, "\x00\x00\x00", WEIR_ETOPIC);  /* empty filter */
        SUB_RC(0x82, 1, v, "\x00\x01\xff\x00", WEIR_EUTF8);
        SUB_RC(0x82, 1, v, "\x00\x01t", WEIR_EMALFORMED);         /* no options */
        SUB_RC(0x82, 1, v, "\x00\x01t\x00\x00", WEIR_EMALFORMED); /* half an entry */
        SUB_RC(0x82, 1, v, "\x00\x01t\x43", WEIR_EMALFORMED);     /* bit 6 */
        SUB_RC(0x82, 1, v, "\x00\x01t\x80", WEIR_EMALFORMED);     /* bit 7 */
        SUB_RC(0x82, 1, v, "\x00\x01t\x03", v == MQTT_V5 ? WEIR_EPROTO : WEIR_EMALFORMED);
        /* The options bits 2-5 exist only in 5.0. */
        SUB_RC(0x82, 1, v, "\x00\x01t\x04", v == MQTT_V5 ? WEIR_OK : WEIR_EMALFORMED);
        SUB_RC(0x82, 1, v, "\x00\x01t\x08", v == MQTT_V5 ? WEIR_OK : WEIR_EMALFORMED);
        SUB_RC(0x82, 1, v, "\x00\x01t\x20", v == MQTT_V5 ? WEIR_OK : WEIR_EMALFORMED);
        SUB_RC(0x82, 1, v, "\x00\x01t\x30", v == MQTT_V5 ? WEIR_EPROTO : WEIR_EMALFORMED);
        /* Wildcard placement is the topic module's job, not the codec's. */
        SUB_RC(0x82, 1, v, "\x00\x03#/a\x00", WEIR_OK);

        SUB_RC(0xA2, 1, v,
               "\x00\x01t\x00\x03"
               "a/b",
               WEIR_OK);
        SUB_RC(0xA2, 1, v, "", WEIR_EPROTO);
        SUB_RC(0xA2, 0, v, "\x00\x01t", WEIR_EPROTO);
        SUB_RC(0xA2, 1, v, "\x00\x00", WEIR_ETOPIC);
        SUB_RC(0xA2, 1, v, "\x00\x02t", WEIR_EMALFORMED);
        SUB_RC(0xA2, 1, v, "\x00\x01\xed\xa0\x80", WEIR_EUTF8); /* filter is a lone lead */
        SUB_RC(0xA2, 1, v,
               "\x00\x01"
               "a\xa0",
               WEIR_EMALFORMED); /* then a stray byte */
        SUB_RC(0xA2, 1, v, "\x00\x03\xed\xa0\x80", WEIR_EUTF8);

        SUB_RC(0x90, 1, v, "\x00\x01\x02\x80", WEIR_OK);
        SUB_RC(0x90, 1, v, "", WEIR_EPROTO);
        SUB_RC(0x90, 0, v, "\x00", WEIR_EPROTO);
        SUB_RC(0x90, 1, v, "\x03", WEIR_EPROTO);
        SUB_RC(0x90, 1, v, "\x87", v == MQTT_V5 ? WEIR_OK : WEIR_EPROTO);
    }
    SUB_RC(0xB0, 1, MQTT_V5, "\x00\x11", WEIR_OK);
    SUB_RC(0xB0, 1, MQTT_V5, "", WEIR_EPROTO);
    SUB_RC(0xB0, 1, MQTT_V5, "\x01", WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\xB0\x02\x00\x01", 4, MQTT_V311, WEIR_OK);
    EXPECT_RC((const uint8_t *)"\xB0\x03\x00\x01\x00", 5, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xB0\x02\x00\x00", 4, MQTT_V311, WEIR_EPROTO);

    /* Iteration yields exactly the entries, in order. */
    static const uint8_t unsub[] = {0xA2, 0x0B, 0x00, 0x05, 0x00, 0x01, 'a',
                                    0x00, 0x04, 'b',  '/',  '+',  '/'};
    mqtt_packet d;
    const char *why;
    assert_int_equal(mqtt_decode(unsub, sizeof(unsub), MQTT_V311, &d, &why), WEIR_OK);
    assert_int_equal(d.u.unsubscribe.n_entries, 2);
    uint32_t pos = 0;
    mqtt_bytes f;
    assert_true(mqtt_unsub_next(&d.u.unsubscribe, &pos, &f) && eq_bytes(f, B("a")));
    assert_true(mqtt_unsub_next(&d.u.unsubscribe, &pos, &f) && eq_bytes(f, B("b/+/")));
    assert_false(mqtt_unsub_next(&d.u.unsubscribe, &pos, &f));
    assert_false(mqtt_unsub_next(&d.u.unsubscribe, &pos, &f));
}

/* ---- Acks, DISCONNECT, AUTH, CONNACK ------------------------------------- */

static void test_ack_forms(void **state)
{
    static const uint8_t types[] = {0x40, 0x50, 0x62, 0x70};
    for (unsigned i = 0; i < 4; i++) {
        uint8_t t = types[i];
        bool rel = t == 0x62 || t == 0x70;
        uint8_t b[8] = {t, 2, 0x00, 0x01};
        mqtt_packet d;
        const char *why;
        /* Remaining length 2: reason 0, no properties. */
        assert_int_equal(mqtt_decode(b, 4, MQTT_V5, &d, &why), WEIR_OK);
        assert_int_equal(d.u.ack.packet_id, 1);
        assert_int_equal(d.u.ack.reason, 0);
        assert_int_equal(d.u.ack.props.present, 0);
        /* Remaining length 3: a reason code and no properties. */
        b[1] = 3;
        b[4] = rel ? 0x92 : 0x10;
        assert_int_equal(mqtt_decode(b, 5, MQTT_V5, &d, &why), WEIR_OK);
        assert_int_equal(d.u.ack.reason, b[4]);
        check_roundtrip_bytes(b, 5, MQTT_V5, &d);
        EXPECT_RC(b, 5, MQTT_V311, WEIR_EMALFORMED);
        b[4] = 0x05;
        EXPECT_RC(b, 5, MQTT_V5, WEIR_EPROTO);
        b[4] = rel ? 0x10 : 0x92;
        EXPECT_RC(b, 5, MQTT_V5, WEIR_EPROTO);
        /* Remaining length 4: an empty property block; it re-encodes short. */
        b[1] = 4;
        b[4] = 0;
        b[5] = 0;
        assert_int_equal(mqtt_decode(b, 6, MQTT_V5, &d, &why), WEIR_OK);
        uint8_t out[8];
        assert_int_equal(enc(&d, MQTT_V5, out, sizeof(out)), 4);
        const uint8_t short_form[] = {t, 2, 0x00, 0x01};
        assert_memory_equal(out, short_form, 4);
        b[5] = 1; /* property length past the end */
        EXPECT_RC(b, 6, MQTT_V5, WEIR_EMALFORMED);
        /* Packet id 0, too short. */
        uint8_t z[] = {t, 2, 0, 0};
        EXPECT_RC(z, 4, MQTT_V5, WEIR_EPROTO);
        EXPECT_RC(z, 4, MQTT_V311, WEIR_EPROTO);
        uint8_t s[] = {t, 1, 0};
        EXPECT_RC(s, 3, MQTT_V5, WEIR_EMALFORMED);
    }
    /* DISCONNECT and AUTH: length 0 means reason 0, length 1 reason only. */
    mqtt_packet d;
    const char *why;
    assert_int_equal(mqtt_decode((const uint8_t *)"\xE0\x01\x8E", 3, MQTT_V5, &d, &why), WEIR_OK);
    assert_int_equal(d.u.disconnect.reason, 0x8E);
    EXPECT_RC((const uint8_t *)"\xE0\x01\x01", 3, MQTT_V5, WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\xE0\x02\x00\x00", 4, MQTT_V5, WEIR_OK);
    EXPECT_RC((const uint8_t *)"\xE0\x02\x00\x01", 4, MQTT_V5, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\xF0\x01\x19", 3, MQTT_V5, WEIR_OK);
    EXPECT_RC((const uint8_t *)"\xF0\x01\x8E", 3, MQTT_V5, WEIR_EPROTO);

    /* CONNACK: reserved flag bits, return codes, session present. */
    EXPECT_RC((const uint8_t *)"\x20\x02\x00\x05", 4, MQTT_V311, WEIR_OK);
    EXPECT_RC((const uint8_t *)"\x20\x02\x00\x06", 4, MQTT_V311, WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\x20\x02\x02\x00", 4, MQTT_V311, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\x20\x02\x01\x05", 4, MQTT_V311, WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\x20\x03\x00\x00\x00", 4 + 1, MQTT_V5, WEIR_OK);
    EXPECT_RC((const uint8_t *)"\x20\x02\x00\x00", 4, MQTT_V5, WEIR_EMALFORMED);
    EXPECT_RC((const uint8_t *)"\x20\x03\x00\x05\x00", 5, MQTT_V5, WEIR_EPROTO);
    EXPECT_RC((const uint8_t *)"\x20\x03\x00\x9F\x00", 5, MQTT_V5, WEIR_OK);
}

/* ---- Properties ---------------------------------------------------------- */

/* The property table of 5.0 section 2.2.2.2, transcribed again here on
 * purpose: the codec's table is checked against an independent copy.
 * Context 0 stands for the Will Properties. */
#define CTX(t)   (1u << (t))
#define CTX_WILL 1u
#define CTX_MSG  (CTX(MQTT_PUBLISH) | CTX_WILL)
#define CTX_ACKS (CTX(4) | CTX(5) | CTX(6) | CTX(7))

typedef struct spec_prop {
    uint8_t id;
    char kind; /* b byte, s two-byte, i four-byte, v varint, u UTF-8, d binary, p pair */
    unsigned where;
} spec_prop;

static const spec_prop spec_props[] = {
    {0x01, 'b', CTX_MSG},
    {0x02, 'i', CTX_MSG},
    {0x03, 'u', CTX_MSG},
    {0x08, 'u', CTX_MSG},
    {0x09, 'd', CTX_MSG},
    {0x0B, 'v', CTX(MQTT_PUBLISH) | CTX(MQTT_SUBSCRIBE)},
    {0x11, 'i', CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK) | CTX(MQTT_DISCONNECT)},
    {0x12, 'u', CTX(MQTT_CONNACK)},
    {0x13, 's', CTX(MQTT_CONNACK)},
    {0x15, 'u', CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK) | CTX(MQTT_AUTH)},
    {0x16, 'd', CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK) | CTX(MQTT_AUTH)},
    {0x17, 'b', CTX(MQTT_CONNECT)},
    {0x18, 'i', CTX_WILL},
    {0x19, 'b', CTX(MQTT_CONNECT)},
    {0x1A, 'u', CTX(MQTT_CONNACK)},
    {0x1C, 'u', CTX(MQTT_CONNACK) | CTX(MQTT_DISCONNECT)},
    {0x1F, 'u',
     CTX(MQTT_CONNACK) | CTX_ACKS | CTX(MQTT_SUBACK) | CTX(MQTT_UNSUBACK) | CTX(MQTT_DISCONNECT) |
         CTX(MQTT_AUTH)},
    {0x21, 's', CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK)},
    {0x22, 's', CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK)},
    {0x23, 's', CTX(MQTT_PUBLISH)},
    {0x24, 'b', CTX(MQTT_CONNACK)},
    {0x25, 'b', CTX(MQTT_CONNACK)},
    {0x26, 'p', 0xFFFFu & ~(CTX(MQTT_PINGREQ) | CTX(MQTT_PINGRESP))},
    {0x27, 'i', CTX(MQTT_CONNECT) | CTX(MQTT_CONNACK)},
    {0x28, 'b', CTX(MQTT_CONNACK)},
    {0x29, 'b', CTX(MQTT_CONNACK)},
    {0x2A, 'b', CTX(MQTT_CONNACK)},
};

/* The contexts that carry properties: the Will and every 5.0 packet type
 * except PINGREQ and PINGRESP. */
static const uint8_t contexts[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 14, 15};

/* Appends id and a valid, recognisable value for it. */
static void prop_blob(bb *x, const spec_prop *sp)
{
    if (sp->id == MQTT_PROP_AUTH_DATA) /* needs its method */
        bb_put(x, "\x15\x00\x02m1", 5);
    bb_u8(x, sp->id);
    switch (sp->kind) {
    case 'b':
        bb_u8(x, 1);
        break;
    case 's':
        bb_u16(x, 0x0102);
        break;
    case 'i':
        bb_put(x, "\x01\x02\x03\x04", 4);
        break;
    case 'v':
        bb_put(x, "\xb4\x24", 2); /* 0x1234 */
        break;
    case 'u':
        bb_str(x, "r/\xc3\xa9");
        break;
    case 'd':
        bb_put(x, "\x00\x03\x00\xff\x00", 5);
        break;
    default:
        bb_str(x, "key");
        bb_str(x, "value");
        break;
    }
}

/* A 5.0 packet of context ctx whose property block is props[0..n). */
static size_t ctx_packet(bb *pkt, uint8_t ctx, const uint8_t *props, size_t n)
{
    bb b = {.n = 0};
    uint8_t first = (uint8_t)(ctx << 4);
    switch (ctx) {
    case 0: /* a CONNECT with a will: the will properties */
        first = 0x10;
        bb_str(&b, "MQTT");
        bb_put(&b, "\x05\x06\x00\x3c\x00", 5);
        bb_str(&b, "c");
        bb_props(&b, props, n);
        bb_str(&b, "w");
        bb_u16(&b, 0);
        break;
    case MQTT_CONNECT:
        bb_str(&b, "MQTT");
        bb_put(&b, "\x05\x02\x00\x3c", 4);
        bb_props(&b, props, n);
        bb_str(&b, "c");
        break;
    case MQTT_CONNACK:
        bb_put(&b, "\x00\x00", 2);
        bb_props(&b, props, n);
        break;
    case MQTT_PUBLISH:
        bb_str(&b, "t");
        bb_props(&b, props, n);
        bb_put(&b, "x", 1);
        break;
    case MQTT_SUBSCRIBE:
    case MQTT_UNSUBSCRIBE:
        first |= 2;
        bb_u16(&b, 1);
        bb_props(&b, props, n);
        bb_str(&b, "t");
        if (ctx == MQTT_SUBSCRIBE)
            bb_u8(&b, 0);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        bb_u16(&b, 1);
        bb_props(&b, props, n);
        bb_u8(&b, 0);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        bb_u8(&b, 0);
        bb_props(&b, props, n);
        break;
    default: /* PUBACK, PUBREC, PUBREL, PUBCOMP */
        if (ctx == MQTT_PUBREL)
            first |= 2;
        bb_u16(&b, 1);
        bb_u8(&b, 0);
        bb_props(&b, props, n);
        break;
    }
    return bb_packet(pkt, first, &b);
}

/* The props of a decoded packet for context ctx. */
static const mqtt_props *props_of(const mqtt_packet *p, uint8_t ctx)
{
    switch (ctx) {
    case 0:
        return &p->u.connect.will_props;
    case MQTT_CONNECT:
        return &p->u.connect.props;
    case MQTT_CONNACK:
        return &p->u.connack.props;
    case MQTT_PUBLISH:
        return &p->u.publish.props;
    case MQTT_SUBSCRIBE:
        return &p->u.subscribe.props;
    case MQTT_UNSUBSCRIBE:
        return &p->u.unsubscribe.props;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return &p->u.suback.props;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return &p->u.disconnect.props;
    default:
        return &p->u.ack.props;
    }
}

/* Checks that the decoded value of sp is the one prop_blob wrote. */
static void check_value(const mqtt_props *pr, const spec_prop *sp)
{
    const mqtt_bytes utf = B("r/\xc3\xa9"), bin = BIN("\x00\xff\x00", 3);
    switch (sp->id) {
    case 0x01:
        assert_int_equal(pr->payload_format, 1);
        break;
    case 0x02:
        assert_int_equal(pr->message_expiry, 0x01020304);
        break;
    case 0x03:
        assert_true(eq_bytes(pr->content_type, utf));
        break;
    case 0x08:
        assert_true(eq_bytes(pr->response_topic, utf));
        break;
    case 0x09:
        assert_true(eq_bytes(pr->correlation_data, bin));
        break;
    case 0x0B:
        assert_int_equal(pr->sub_ids[0], 0x1234);
        break;
    case 0x11:
        assert_int_equal(pr->session_expiry, 0x01020304);
        break;
    case 0x12:
        assert_true(eq_bytes(pr->assigned_client_id, utf));
        break;
    case 0x13:
        assert_int_equal(pr->server_keep_alive, 0x0102);
        break;
    case 0x15:
        assert_true(eq_bytes(pr->auth_method, utf));
        break;
    case 0x16:
        assert_true(eq_bytes(pr->auth_data, bin));
        break;
    case 0x17:
        assert_int_equal(pr->request_problem_info, 1);
        break;
    case 0x18:
        assert_int_equal(pr->will_delay, 0x01020304);
        break;
    case 0x19:
        assert_int_equal(pr->request_response_info, 1);
        break;
    case 0x1A:
        assert_true(eq_bytes(pr->response_info, utf));
        break;
    case 0x1C:
        assert_true(eq_bytes(pr->server_reference, utf));
        break;
    case 0x1F:
        assert_true(eq_bytes(pr->reason_string, utf));
        break;
    case 0x21:
        assert_int_equal(pr->receive_maximum, 0x0102);
        break;
    case 0x22:
        assert_int_equal(pr->topic_alias_maximum, 0x0102);
        break;
    case 0x23:
        assert_int_equal(pr->topic_alias, 0x0102);
        break;
    case 0x24:
        assert_int_equal(pr->maximum_qos, 1);
        break;
    case 0x25:
        assert_int_equal(pr->retain_available, 1);
        break;
    case 0x27:
        assert_int_equal(pr->maximum_packet_size, 0x01020304);
        break;
    case 0x28:
        assert_int_equal(pr->wildcard_sub_available, 1);
        break;
    case 0x29:
        assert_int_equal(pr->sub_id_available, 1);
        break;
    case 0x2A:
        assert_int_equal(pr->shared_sub_available, 1);
        break;
    default: {
        uint32_t pos = 0;
        mqtt_bytes k, v;
        assert_true(mqtt_user_props_next(pr->user_props, &pos, &k, &v));
        assert_true(eq_bytes(k, B("key")) && eq_bytes(v, B("value")));
        assert_false(mqtt_user_props_next(pr->user_props, &pos, &k, &v));
    }
    }
    assert_true(pr->present & MQTT_PROP_BIT(sp->id));
}

/* Every property in every context: decodes with its value where the table
 * allows it (and re-encodes to the same bytes), WEIR_EPROTO elsewhere; a
 * second copy is WEIR_EPROTO except where the spec lets it repeat. */
static void test_every_property(void **state)
{
    for (size_t i = 0; i < sizeof(spec_props) / sizeof(spec_props[0]); i++) {
        const spec_prop *sp = &spec_props[i];
        for (size_t c = 0; c < sizeof(contexts); c++) {
            uint8_t ctx = contexts[c];
            bool allowed = sp->where & (1u << ctx);
            bb props = {.n = 0}, pkt;
            prop_blob(&props, sp);
            ctx_packet(&pkt, ctx, props.b, props.n);
            EXPECT_RC(pkt.b, pkt.n, MQTT_V5, allowed ? WEIR_OK : WEIR_EPROTO);
            if (allowed) {
                mqtt_packet d;
                const char *why;
                assert_int_equal(mqtt_decode(pkt.b, pkt.n, MQTT_V5, &d, &why), WEIR_OK);
                check_value(props_of(&d, ctx), sp);
                check_roundtrip_bytes(pkt.b, pkt.n, MQTT_V5, &d);
                /* 3.1.1 has no properties: the encoder leaves them out. */
                if (ctx != MQTT_AUTH) {
                    uint8_t out[256];
                    size_t n = enc(&d, MQTT_V311, out, sizeof(out));
                    mqtt_packet d3;
                    assert_int_equal(mqtt_decode(out, n, MQTT_V311, &d3, &why), WEIR_OK);
                    assert_int_equal(props_of(&d3, ctx)->present, 0);
                }
            }
            prop_blob(&props, sp); /* twice */
            ctx_packet(&pkt, ctx, props.b, props.n);
            bool repeat = sp->id == MQTT_PROP_USER_PROPERTY ||
                          (sp->id == MQTT_PROP_SUBSCRIPTION_ID && ctx == MQTT_PUBLISH);
            EXPECT_RC(pkt.b, pkt.n, MQTT_V5, allowed && repeat ? WEIR_OK : WEIR_EPROTO);
            if (allowed && repeat)
                check_roundtrip_bytes(pkt.b, pkt.n, MQTT_V5, NULL);
        }
    }
}

static void test_unknown_property_ids(void **state)
{
    for (unsigned id = 0; id < 256; id++) {
        bool known = false;
        for (size_t i = 0; i < sizeof(spec_props) / sizeof(spec_props[0]); i++)
            known |= spec_props[i].id == id;
        if (known)
            continue;
        uint8_t blob[] = {(uint8_t)id, 0, 0, 0, 0};
        bb pkt;
        ctx_packet(&pkt, MQTT_PUBLISH, blob, sizeof(blob));
        EXPECT_RC(pkt.b, pkt.n, MQTT_V5, WEIR_EMALFORMED);
    }
}

#define PROP_RC(ctx, blob, want)                                                                   \
    do {                                                                                           \
        bb pkt_;                                                                                   \
        ctx_packet(&pkt_, ctx, (const uint8_t *)(blob), sizeof(blob) - 1);                         \
        EXPECT_RC(pkt_.b, pkt_.n, MQTT_V5, want);                                                  \
    } while (0)

static void test_property_values(void **state)
{
    /* Zero where zero is a Protocol Error. */
    PROP_RC(MQTT_CONNECT, "\x21\x00\x00", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x21\x00\x00", WEIR_EPROTO);
    PROP_RC(MQTT_PUBLISH, "\x23\x00\x00", WEIR_EPROTO);
    PROP_RC(MQTT_CONNECT, "\x27\x00\x00\x00\x00", WEIR_EPROTO);
    PROP_RC(MQTT_PUBLISH, "\x0B\x00", WEIR_EPROTO);
    PROP_RC(MQTT_SUBSCRIBE, "\x0B\x00", WEIR_EPROTO);
    PROP_RC(MQTT_SUBSCRIBE, "\x0B\x80\x00", WEIR_EPROTO); /* non-minimal 0 */
    PROP_RC(MQTT_CONNECT, "\x22\x00\x00", WEIR_OK);       /* alias maximum 0 is fine */
    PROP_RC(MQTT_CONNACK, "\x13\x00\x00", WEIR_OK);
    /* Flags that must be 0 or 1. */
    PROP_RC(0, "\x01\x02", WEIR_EPROTO);
    PROP_RC(MQTT_PUBLISH, "\x01\x02", WEIR_EPROTO);
    PROP_RC(MQTT_PUBLISH, "\x01\x00", WEIR_OK);
    PROP_RC(MQTT_CONNECT, "\x17\x02", WEIR_EPROTO);
    PROP_RC(MQTT_CONNECT, "\x19\xFF", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x24\x02", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x25\x02", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x28\x02", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x29\x02", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x2A\x02", WEIR_EPROTO);
    PROP_RC(MQTT_CONNACK, "\x24\x00\x25\x00\x28\x00\x29\x00\x2A\x00", WEIR_OK);
    /* Sub id: largest, and a five-byte varint. */
    PROP_RC(MQTT_SUBSCRIBE, "\x0B\xFF\xFF\xFF\x7F", WEIR_OK);
    PROP_RC(MQTT_SUBSCRIBE, "\x0B\xFF\xFF\xFF\xFF\x01", WEIR_EMALFORMED);
    /* Response topic is a topic name. */
    PROP_RC(MQTT_PUBLISH,
            "\x08\x00\x03"
            "a/#",
            WEIR_ETOPIC);
    PROP_RC(0, "\x08\x00\x01+", WEIR_ETOPIC);
    PROP_RC(MQTT_PUBLISH, "\x08\x00\x00", WEIR_ETOPIC);
    /* Strings are UTF-8; binary data is anything. */
    PROP_RC(MQTT_PUBLISH, "\x03\x00\x01\x00", WEIR_EUTF8);
    PROP_RC(MQTT_PUBACK, "\x1F\x00\x02\xc0\x80", WEIR_EUTF8);
    PROP_RC(MQTT_PUBLISH, "\x26\x00\x01k\x00\x01\xff", WEIR_EUTF8);
    PROP_RC(MQTT_PUBLISH, "\x26\x00\x01\xff\x00\x01v", WEIR_EUTF8);
    PROP_RC(MQTT_PUBLISH, "\x09\x00\x02\x00\xff", WEIR_OK);
    /* Values cut by the end of the property block. */
    PROP_RC(MQTT_PUBLISH, "\x02\x00\x00\x00", WEIR_EMALFORMED);
    PROP_RC(MQTT_PUBLISH, "\x23\x00", WEIR_EMALFORMED);
    PROP_RC(MQTT_PUBLISH, "\x01", WEIR_EMALFORMED);
    PROP_RC(MQTT_PUBLISH,
            "\x03\x00\x05"
            "ab",
            WEIR_EMALFORMED);
    PROP_RC(MQTT_PUBLISH, "\x26\x00\x01k", WEIR_EMALFORMED);
    PROP_RC(MQTT_PUBLISH, "\x0B\x81", WEIR_EMALFORMED);
    /* Authentication data needs a method. */
    PROP_RC(MQTT_CONNECT, "\x16\x00\x00", WEIR_EPROTO);
    PROP_RC(MQTT_AUTH, "\x16\x00\x00", WEIR_EPROTO);
    PROP_RC(MQTT_AUTH, "\x15\x00\x01m\x16\x00\x00", WEIR_OK);
    PROP_RC(MQTT_AUTH, "\x16\x00\x00\x15\x00\x01m", WEIR_OK); /* any order */
    /* A property block longer than the packet. */
    static const uint8_t longer[] = {0x30, 0x05, 0x00, 0x01, 't', 0x05, 0x01};
    EXPECT_RC(longer, sizeof(longer), MQTT_V5, WEIR_EMALFORMED);
    static const uint8_t badlen[] = {0x30, 0x08, 0x00, 0x01, 't', 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    EXPECT_RC(badlen, sizeof(badlen), MQTT_V5, WEIR_EMALFORMED);
}

static void test_sub_id_limit(void **state)
{
    bb props = {.n = 0}, pkt;
    for (unsigned i = 1; i <= MQTT_MAX_SUB_IDS; i++) {
        bb_u8(&props, MQTT_PROP_SUBSCRIPTION_ID);
        bb_varint(&props, i * 1000);
    }
    ctx_packet(&pkt, MQTT_PUBLISH, props.b, props.n);
    mqtt_packet d;
    const char *why;
    assert_int_equal(mqtt_decode(pkt.b, pkt.n, MQTT_V5, &d, &why), WEIR_OK);
    assert_int_equal(d.u.publish.props.n_sub_ids, MQTT_MAX_SUB_IDS);
    assert_int_equal(d.u.publish.props.sub_ids[MQTT_MAX_SUB_IDS - 1], MQTT_MAX_SUB_IDS * 1000);
    check_roundtrip_bytes(pkt.b, pkt.n, MQTT_V5, &d);
    bb_put(&props, "\x0B\x01", 2);
    ctx_packet(&pkt, MQTT_PUBLISH, props.b, props.n);
    EXPECT_RC(pkt.b, pkt.n, MQTT_V5, WEIR_EPROTO);

    /* An encoder given one sub id too many for SUBSCRIBE writes one. */
    mqtt_packet s = {.type = MQTT_SUBSCRIBE};
    s.u.subscribe.packet_id = 1;
    s.u.subscribe.entries = BIN("\x00\x01t\x00", 4);
    s.u.subscribe.n_entries = 1;
    s.u.subscribe.props.present = MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
    s.u.subscribe.props.n_sub_ids = 2;
    s.u.subscribe.props.sub_ids[0] = 5;
    s.u.subscribe.props.sub_ids[1] = 6;
    uint8_t out[64];
    size_t n = enc(&s, MQTT_V5, out, sizeof(out));
    assert_int_equal(mqtt_decode(out, n, MQTT_V5, &d, &why), WEIR_OK);
    assert_int_equal(d.u.subscribe.props.n_sub_ids, 1);
    assert_int_equal(d.u.subscribe.props.sub_ids[0], 5);
}

/* ---- User properties ----------------------------------------------------- */

static void test_user_props(void **state)
{
    uint8_t buf[32];
    uint32_t len = 0;
    assert_true(mqtt_user_prop_append(buf, sizeof(buf), &len, "a", "1"));
    assert_int_equal(len, 7);
    assert_memory_equal(buf,
                        "\x26\x00\x01"
                        "a\x00\x01"
                        "1",
                        7);
    assert_true(mqtt_user_prop_append(buf, sizeof(buf), &len, "key", ""));
    assert_int_equal(len, 7 + 8);
    /* 17 bytes left: an entry of 18 does not fit, one of 17 does. */
    assert_false(mqtt_user_prop_append(buf, sizeof(buf), &len, "0123456", "abcdef"));
    assert_int_equal(len, 15);
    assert_true(mqtt_user_prop_append(buf, sizeof(buf), &len, "012345", "abcdef"));
    assert_int_equal(len, 32);
    assert_false(mqtt_user_prop_append(buf, sizeof(buf), &len, "", ""));

    mqtt_bytes raw = BIN(buf, len), k, v;
    uint32_t pos = 0;
    assert_true(mqtt_user_props_next(raw, &pos, &k, &v));
    assert_true(eq_bytes(k, B("a")) && eq_bytes(v, B("1")));
    assert_true(mqtt_user_props_next(raw, &pos, &k, &v));
    assert_true(eq_bytes(k, B("key")) && eq_bytes(v, B("")));
    assert_true(mqtt_user_props_next(raw, &pos, &k, &v));
    assert_true(eq_bytes(k, B("012345")) && eq_bytes(v, B("abcdef")));
    assert_false(mqtt_user_props_next(raw, &pos, &k, &v));
    assert_false(mqtt_user_props_next(raw, &pos, &k, &v));
    pos = 0;
    assert_false(mqtt_user_props_next((mqtt_bytes){NULL, 0}, &pos, &k, &v));
    /* A caller-built span that is cut short ends the walk; it never reads
     * past the span. */
    pos = 0;
    assert_true(mqtt_user_props_next(BIN(buf, 10), &pos, &k, &v));
    assert_false(mqtt_user_props_next(BIN(buf, 10), &pos, &k, &v));
    pos = 1000;
    assert_false(mqtt_user_props_next(raw, &pos, &k, &v));
}

/* User properties interleaved with other properties: the span covers both,
 * the iterator yields only the user properties, the encoder writes them
 * once and in order. */
static void test_user_props_interleaved(void **state)
{
    static const uint8_t props[] = {0x26, 0x00, 0x01, 'a', 0x00, 0x01, '1',  /* a=1 */
                                    0x01, 0x01,                              /* UTF-8 */
                                    0x23, 0x00, 0x09,                        /* alias 9 */
                                    0x26, 0x00, 0x01, 'b', 0x00, 0x01, '2'}; /* b=2 */
    bb pkt;
    ctx_packet(&pkt, MQTT_PUBLISH, props, sizeof(props));
    mqtt_packet d, d2;
    const char *why;
    assert_int_equal(mqtt_decode(pkt.b, pkt.n, MQTT_V5, &d, &why), WEIR_OK);
    const mqtt_props *pr = &d.u.publish.props;
    assert_int_equal(pr->payload_format, 1);
    assert_int_equal(pr->topic_alias, 9);
    assert_int_equal(pr->user_props.len, sizeof(props));
    uint32_t pos = 0;
    mqtt_bytes k, v;
    assert_true(mqtt_user_props_next(pr->user_props, &pos, &k, &v));
    assert_true(eq_bytes(k, B("a")) && eq_bytes(v, B("1")));
    assert_true(mqtt_user_props_next(pr->user_props, &pos, &k, &v));
    assert_true(eq_bytes(k, B("b")) && eq_bytes(v, B("2")));
    assert_false(mqtt_user_props_next(pr->user_props, &pos, &k, &v));

    uint8_t out[64];
    size_t n = enc(&d, MQTT_V5, out, sizeof(out));
    assert_int_equal(n, pkt.n);
    assert_int_equal(mqtt_decode(out, n, MQTT_V5, &d2, &why), WEIR_OK);
    assert_true(eq_packet(&d, &d2, MQTT_V5));
    assert_int_equal(d2.u.publish.props.user_props.len, 14);
}

/* ---- Encoder limits ------------------------------------------------------ */

static void test_encode_limits(void **state)
{
    static uint8_t big[70000];
    uint8_t out[64];
    mqtt_packet p = {.type = MQTT_PUBLISH};
    p.u.publish.topic = BIN(big, 65536); /* a string cannot be that long */
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V311), 0);
    p.u.publish.topic = B("t");
    p.u.publish.qos = 3;
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V311), 0);
    p.u.publish.qos = 0;
    /* The largest remaining length, and one byte more. Only sizes are
     * computed, so the payload pointer is never read. */
    p.u.publish.payload = BIN(big, MQTT_MAX_REMAINING - 3);
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V311), MQTT_MAX_REMAINING + 5);
    assert_int_equal(mqtt_encode(&p, MQTT_V311, out, sizeof(out)), 0);
    p.u.publish.payload.len++;
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V311), 0);
    p.u.publish.payload = (mqtt_bytes){NULL, 3};
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V311), 0);
    p.u.publish.payload = B("");
    assert_int_equal(mqtt_encoded_size(&p, 3), 0);
    assert_int_equal(mqtt_encoded_size(&p, 0), 0);
    assert_int_equal(mqtt_encode(&p, MQTT_V311, NULL, 100), 0);
    assert_int_equal(mqtt_encode(&p, MQTT_V311, out, 0), 0);
    assert_int_equal(mqtt_encoded_size(NULL, MQTT_V5), 0);
    p.type = 0;
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V5), 0);
    p.type = 16;
    assert_int_equal(mqtt_encoded_size(&p, MQTT_V5), 0);

    /* A caller-built entry list that does not parse cannot be encoded. */
    mqtt_packet s = {.type = MQTT_SUBSCRIBE};
    s.u.subscribe.packet_id = 1;
    s.u.subscribe.entries = BIN("\x00\x05t\x00", 4);
    assert_int_equal(mqtt_encoded_size(&s, MQTT_V5), 0);
    mqtt_packet u = {.type = MQTT_UNSUBSCRIBE};
    u.u.unsubscribe.packet_id = 1;
    u.u.unsubscribe.entries = BIN("\x00\x05t", 3);
    assert_int_equal(mqtt_encoded_size(&u, MQTT_V5), 0);
    /* Nor can a user property span that does not parse. */
    mqtt_packet a = {.type = MQTT_PUBACK};
    a.u.ack.packet_id = 1;
    a.u.ack.props.present = MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
    a.u.ack.props.user_props = BIN("\x26\x00\x09k", 4);
    assert_int_equal(mqtt_encoded_size(&a, MQTT_V5), 0);
    assert_int_equal(mqtt_encoded_size(&a, MQTT_V311), 4); /* not written in 3.1.1 */
    /* Properties not allowed in the packet are left out. */
    a.u.ack.props.present = MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
    a.u.ack.props.topic_alias = 5;
    assert_int_equal(enc(&a, MQTT_V5, out, sizeof(out)), 4);
    assert_memory_equal(out, "\x40\x02\x00\x01", 4);
}

/* ---- Seed corpus --------------------------------------------------------- */

static void write_file(const char *dir, const char *name, const uint8_t *b, size_t n)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Inputs the samples do not reach: interleaved user properties, the
 * subscription identifier limit, the short 5.0 ack forms, a non-minimal
 * remaining length. */
static void write_edge_seeds(const char *dir)
{
    static const uint8_t interleaved[] = {0x26, 0x00, 0x01, 'a',  0x00, 0x01, '1',  0x01,
                                          0x01, 0x26, 0x00, 0x01, 'b',  0x00, 0x01, '2'};
    bb props = {.n = 0}, pkt;
    ctx_packet(&pkt, MQTT_PUBLISH, interleaved, sizeof(interleaved));
    write_file(dir, "edge-interleaved-user-props", pkt.b, pkt.n);
    ctx_packet(&pkt, MQTT_DISCONNECT, interleaved, sizeof(interleaved));
    write_file(dir, "edge-interleaved-disconnect", pkt.b, pkt.n);
    for (unsigned i = 1; i <= MQTT_MAX_SUB_IDS + 1; i++) {
        bb_u8(&props, MQTT_PROP_SUBSCRIPTION_ID);
        bb_varint(&props, i);
        if (i >= MQTT_MAX_SUB_IDS) {
            ctx_packet(&pkt, MQTT_PUBLISH, props.b, props.n);
            write_file(dir, i == MQTT_MAX_SUB_IDS ? "edge-sub-ids-16" : "edge-sub-ids-17", pkt.b,
                       pkt.n);
        }
    }
    write_file(dir, "edge-puback-rl3", (const uint8_t *)"\x40\x03\x00\x01\x10", 5);
    write_file(dir, "edge-pubrel-rl4", (const uint8_t *)"\x62\x04\x00\x01\x92\x00", 6);
    write_file(dir, "edge-disconnect-rl1", (const uint8_t *)"\xE0\x01\x8E", 3);
    write_file(dir, "edge-nonminimal-length", (const uint8_t *)"\xC0\x80\x80\x00", 4);
    write_file(dir, "edge-two-packets", (const uint8_t *)"\xC0\x00\x40\x02\x00\x01", 6);
}

static void test_write_corpus(void **state)
{
    const char *dir = getenv("WEIR_CODEC_CORPUS");
    if (!dir)
        skip();
    write_edge_seeds(dir);
    for (uint8_t v = MQTT_V311; v <= MQTT_V5; v++) {
        mqtt_packet s[MAX_SAMPLES];
        size_t n = samples(v, s);
        for (size_t i = 0; i < n; i++) {
            uint8_t out[4096];
            char name[64];
            size_t len = enc(&s[i], v, out, sizeof(out));
            snprintf(name, sizeof(name), "v%u-%02zu-%s", v, i, mqtt_type_name(s[i].type));
            write_file(dir, name, out, len);
        }
    }
    for (size_t i = 0; i < sizeof(spec_props) / sizeof(spec_props[0]); i++) {
        for (size_t c = 0; c < sizeof(contexts); c++) {
            if (!(spec_props[i].where & (1u << contexts[c])))
                continue;
            bb props = {.n = 0}, pkt;
            char name[64];
            prop_blob(&props, &spec_props[i]);
            ctx_packet(&pkt, contexts[c], props.b, props.n);
            snprintf(name, sizeof(name), "v5-prop-%02x-%s", spec_props[i].id,
                     contexts[c] ? mqtt_type_name(contexts[c]) : "WILL");
            write_file(dir, name, pkt.b, pkt.n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_size),
        cmocka_unit_test(test_type_name),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_frame),
        cmocka_unit_test(test_known_ping_disconnect),
        cmocka_unit_test(test_known_connect_311),
        cmocka_unit_test(test_known_connect_5),
        cmocka_unit_test(test_known_publish),
        cmocka_unit_test(test_known_subscribe),
        cmocka_unit_test(test_roundtrip_311),
        cmocka_unit_test(test_roundtrip_5),
        cmocka_unit_test(test_v5_fields_dropped_for_311),
        cmocka_unit_test(test_truncation_311),
        cmocka_unit_test(test_truncation_5),
        cmocka_unit_test(test_fixed_header_flags),
        cmocka_unit_test(test_remaining_length),
        cmocka_unit_test(test_publish_rules),
        cmocka_unit_test(test_connect_rules),
        cmocka_unit_test(test_subscribe_rules),
        cmocka_unit_test(test_ack_forms),
        cmocka_unit_test(test_every_property),
        cmocka_unit_test(test_unknown_property_ids),
        cmocka_unit_test(test_property_values),
        cmocka_unit_test(test_sub_id_limit),
        cmocka_unit_test(test_user_props),
        cmocka_unit_test(test_user_props_interleaved),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_write_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
