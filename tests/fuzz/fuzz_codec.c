/* fuzz_codec.c -- libFuzzer target for the MQTT codec (src/mqtt/codec.h).
 *
 * The input is read two ways: as one packet, and as a stream cut into
 * packets by mqtt_frame (what the broker's read loop does). Every packet is
 * decoded as 3.1.1, as 5.0 and as a first packet (mqtt_decode_connect), each
 * from an exact-size heap copy so that AddressSanitizer sees a read one byte
 * past it. When a decode succeeds the harness walks every iterator, then
 * checks the round trip: the packet re-encodes (size as announced), the
 * bytes frame and decode again to an equal packet (codec_eq.h), and
 * encoding that packet gives the same bytes. Any broken property aborts.
 *
 * The seed corpus in tests/fuzz/corpus/fuzz_codec/ holds every sample packet
 * of tests/unit/test_codec.c (WEIR_CODEC_CORPUS=<dir> writes them) and the
 * regression inputs the fuzzer found.
 */
#include "base/err.h"
#include "mqtt/codec.h"

#include "../unit/codec_eq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, const mqtt_packet *p)
{
    if (ok)
        return;
    fprintf(stderr, "fuzz_codec: %s (%s)\n", what, p ? mqtt_type_name(p->type) : "-");
    abort();
}

/* Walks a user property span to its end; the decoder validated it, so the
 * walk must end exactly at the span's end. */
static void walk_user_props(const mqtt_props *pr, const mqtt_packet *p)
{
    uint32_t pos = 0, n = 0;
    mqtt_bytes k, v;
    while (mqtt_user_props_next(pr->user_props, &pos, &k, &v)) {
        check(mqtt_utf8_valid(k.data, k.len) && mqtt_utf8_valid(v.data, v.len),
              "user property not UTF-8", p);
        n++;
    }
    bool has = pr->present & MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
    check(has ? n > 0 && pos == pr->user_props.len : pr->user_props.len == 0, "user property span",
          p);
}

static void walk(const mqtt_packet *p)
{
    uint32_t pos = 0, n = 0;
    mqtt_sub_entry e;
    mqtt_bytes f;
    switch (p->type) {
    case MQTT_CONNECT:
        walk_user_props(&p->u.connect.props, p);
        walk_user_props(&p->u.connect.will_props, p);
        break;
    case MQTT_SUBSCRIBE:
        while (mqtt_sub_next(&p->u.subscribe, &pos, &e))
            check(e.filter.len > 0 && ++n <= p->u.subscribe.n_entries, "sub entry", p);
        check(n == p->u.subscribe.n_entries && pos == p->u.subscribe.entries.len, "sub count", p);
        walk_user_props(&p->u.subscribe.props, p);
        break;
    case MQTT_UNSUBSCRIBE:
        while (mqtt_unsub_next(&p->u.unsubscribe, &pos, &f))
            check(f.len > 0 && ++n <= p->u.unsubscribe.n_entries, "unsub entry", p);
        check(n == p->u.unsubscribe.n_entries && pos == p->u.unsubscribe.entries.len, "unsub count",
              p);
        walk_user_props(&p->u.unsubscribe.props, p);
        break;
    case MQTT_CONNACK:
        walk_user_props(&p->u.connack.props, p);
        break;
    case MQTT_PUBLISH:
        check(p->u.publish.props.n_sub_ids <= MQTT_MAX_SUB_IDS, "sub ids", p);
        walk_user_props(&p->u.publish.props, p);
        break;
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        walk_user_props(&p->u.suback.props, p);
        break;
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        walk_user_props(&p->u.disconnect.props, p);
        break;
    default:
        if (p->type >= MQTT_PUBACK && p->type <= MQTT_PUBCOMP)
            walk_user_props(&p->u.ack.props, p);
        break;
    }
}

/* Decodes one packet with version v (0: as a first packet). */
static int decode_as(const uint8_t *b, size_t n, uint8_t v, mqtt_packet *out)
{
    const char *why = NULL;
    int rc = v ? mqtt_decode(b, n, v, out, &why) : mqtt_decode_connect(b, n, out, &why);
    check(rc == WEIR_OK || why != NULL, "error without a reason", NULL);
    check(rc == WEIR_OK || rc == WEIR_EMALFORMED || rc == WEIR_EPROTO || rc == WEIR_EVERSION ||
              rc == WEIR_ETOPIC || rc == WEIR_EUTF8,
          "decode returned an unexpected code", NULL);
    return rc;
}

static void roundtrip(const mqtt_packet *p, uint8_t v)
{
    /* A CONNECT carries its own version whatever the caller assumed. */
    if (p->type == MQTT_CONNECT)
        v = p->u.connect.version;
    size_t n = mqtt_encoded_size(p, v);
    check(n >= 2, "a decoded packet does not encode", p);
    uint8_t *b1 = malloc(n), *b2 = malloc(n);
    check(b1 && b2, "out of memory", p);
    check(mqtt_encode(p, v, b1, n - 1) == 0, "encode into a short buffer", p);
    check(mqtt_encode(p, v, b1, n) == n, "encode size differs from mqtt_encoded_size", p);
    size_t plen = 0;
    check(mqtt_frame(b1, n, 0, &plen) == WEIR_OK && plen == n, "re-encoded packet frames", p);
    mqtt_packet q;
    check(decode_as(b1, n, p->type == MQTT_CONNECT ? 0 : v, &q) == WEIR_OK,
          "re-encoded packet does not decode", p);
    check(eq_packet(p, &q, v), "round trip changed the packet", p);
    check(mqtt_encode(&q, v, b2, n) == n && memcmp(b1, b2, n) == 0,
          "second encoding differs from the first", p);
    free(b1);
    free(b2);
}

/* All decodings of one candidate packet, from an exact-size copy. */
static void one_packet(const uint8_t *data, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    check(b != NULL, "out of memory", NULL);
    if (n)
        memcpy(b, data, n);
    static const uint8_t versions[] = {MQTT_V311, MQTT_V5, 0};
    for (size_t i = 0; i < sizeof(versions); i++) {
        mqtt_packet p;
        if (decode_as(b, n, versions[i], &p) != WEIR_OK)
            continue;
        size_t plen = 0;
        check(mqtt_frame(b, n, 0, &plen) == WEIR_OK && plen == n, "decoded but not framed", &p);
        walk(&p);
        roundtrip(&p, versions[i] ? versions[i] : p.u.connect.version);
    }
    free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one_packet(data, size);

    /* The input as a stream of packets. */
    size_t off = 0;
    for (unsigned i = 0; i < 64 && off < size; i++) {
        size_t n = 0;
        int rc = mqtt_frame(data + off, size - off, 0, &n);
        if (rc != WEIR_OK) {
            check(rc == WEIR_EAGAIN || rc == WEIR_EMALFORMED, "frame code", NULL);
            break;
        }
        check(n >= 2 && n <= size - off, "frame length", NULL);
        if (off > 0)
            one_packet(data + off, n);
        off += n;
    }

    /* A small maximum is enforced from the header alone. */
    size_t n = 0;
    int rc = mqtt_frame(data, size, 64, &n);
    check(rc != WEIR_OK || n <= 64, "frame over max_size", NULL);
    (void)mqtt_utf8_valid(data, size);
    return 0;
}
