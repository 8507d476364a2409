/* codec_eq.h -- semantic equality of MQTT packets, for tests and fuzzing.
 *
 * Shared by tests/unit/test_codec.c and tests/fuzz/fuzz_codec.c so that the
 * round-trip check of the fuzzer and of the unit tests mean the same thing.
 * Equality is by meaning, not by pointer or byte layout: spans compare by
 * content (an absent span equals an empty one), user properties compare as
 * the sequence the iterator yields (the decoder's span may hold other
 * properties interleaved, the encoder's does not), and a field counts only
 * when the packet carries it in `version` (a QoS 0 packet id, a 3.1.1 ack's
 * reason code, a will topic without the will flag are not compared). All
 * functions are static inline so that a file using only some of them does
 * not trip -Wunused-function.
 */
#ifndef WEIR_TESTS_CODEC_EQ_H
#define WEIR_TESTS_CODEC_EQ_H

#include "mqtt/codec.h"

#include <stdbool.h>
#include <string.h>

static inline bool eq_bytes(mqtt_bytes a, mqtt_bytes b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

static inline bool eq_user_props(mqtt_bytes a, mqtt_bytes b)
{
    uint32_t pa = 0, pb = 0;
    mqtt_bytes ka, va, kb, vb;
    for (;;) {
        bool more_a = mqtt_user_props_next(a, &pa, &ka, &va);
        bool more_b = mqtt_user_props_next(b, &pb, &kb, &vb);
        if (more_a != more_b)
            return false;
        if (!more_a)
            return true;
        if (!eq_bytes(ka, kb) || !eq_bytes(va, vb))
            return false;
    }
}

#define EQ_HAS(pr, id) (((pr)->present & MQTT_PROP_BIT(id)) != 0)

static inline bool eq_props_ints(const mqtt_props *a, const mqtt_props *b)
{
#define EQ_INT(id, f)                                                                              \
    if (EQ_HAS(a, id) && a->f != b->f)                                                             \
        return false;
    EQ_INT(MQTT_PROP_PAYLOAD_FORMAT, payload_format)
    EQ_INT(MQTT_PROP_MESSAGE_EXPIRY, message_expiry)
    EQ_INT(MQTT_PROP_SESSION_EXPIRY, session_expiry)
    EQ_INT(MQTT_PROP_SERVER_KEEP_ALIVE, server_keep_alive)
    EQ_INT(MQTT_PROP_REQUEST_PROBLEM_INFO, request_problem_info)
    EQ_INT(MQTT_PROP_WILL_DELAY, will_delay)
    EQ_INT(MQTT_PROP_REQUEST_RESPONSE_INFO, request_response_info)
    EQ_INT(MQTT_PROP_RECEIVE_MAXIMUM, receive_maximum)
    EQ_INT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM, topic_alias_maximum)
    EQ_INT(MQTT_PROP_TOPIC_ALIAS, topic_alias)
    EQ_INT(MQTT_PROP_MAXIMUM_QOS, maximum_qos)
    EQ_INT(MQTT_PROP_RETAIN_AVAILABLE, retain_available)
    EQ_INT(MQTT_PROP_MAXIMUM_PACKET_SIZE, maximum_packet_size)
    EQ_INT(MQTT_PROP_WILDCARD_SUB_AVAILABLE, wildcard_sub_available)
    EQ_INT(MQTT_PROP_SUB_ID_AVAILABLE, sub_id_available)
    EQ_INT(MQTT_PROP_SHARED_SUB_AVAILABLE, shared_sub_available)
#undef EQ_INT
    return true;
}

static inline bool eq_props_spans(const mqtt_props *a, const mqtt_props *b)
{
#define EQ_SPAN(id, f)                                                                             \
    if (EQ_HAS(a, id) && !eq_bytes(a->f, b->f))                                                    \
        return false;
    EQ_SPAN(MQTT_PROP_CONTENT_TYPE, content_type)
    EQ_SPAN(MQTT_PROP_RESPONSE_TOPIC, response_topic)
    EQ_SPAN(MQTT_PROP_CORRELATION_DATA, correlation_data)
    EQ_SPAN(MQTT_PROP_ASSIGNED_CLIENT_ID, assigned_client_id)
    EQ_SPAN(MQTT_PROP_AUTH_METHOD, auth_method)
    EQ_SPAN(MQTT_PROP_AUTH_DATA, auth_data)
    EQ_SPAN(MQTT_PROP_RESPONSE_INFO, response_info)
    EQ_SPAN(MQTT_PROP_SERVER_REFERENCE, server_reference)
    EQ_SPAN(MQTT_PROP_REASON_STRING, reason_string)
#undef EQ_SPAN
    return true;
}

static inline bool eq_props(const mqtt_props *a, const mqtt_props *b)
{
    if (a->present != b->present || !eq_props_ints(a, b) || !eq_props_spans(a, b))
        return false;
    if (EQ_HAS(a, MQTT_PROP_SUBSCRIPTION_ID)) {
        if (a->n_sub_ids != b->n_sub_ids)
            return false;
        for (unsigned i = 0; i < a->n_sub_ids && i < MQTT_MAX_SUB_IDS; i++) {
            if (a->sub_ids[i] != b->sub_ids[i])
                return false;
        }
    }
    if (EQ_HAS(a, MQTT_PROP_USER_PROPERTY) && !eq_user_props(a->user_props, b->user_props))
        return false;
    return true;
}

/* In 3.1.1 there are no properties: both sides must carry none. */
static inline bool eq_props_v(const mqtt_props *a, const mqtt_props *b, uint8_t v)
{
    return v == MQTT_V5 ? eq_props(a, b) : (a->present == 0 && b->present == 0);
}

static inline bool eq_connect(const mqtt_connect *a, const mqtt_connect *b, uint8_t v)
{
    if (a->clean_start != b->clean_start || a->keep_alive != b->keep_alive ||
        !eq_bytes(a->client_id, b->client_id) || a->will != b->will ||
        a->has_username != b->has_username || a->has_password != b->has_password ||
        !eq_props_v(&a->props, &b->props, v))
        return false;
    if (a->will &&
        (a->will_qos != b->will_qos || a->will_retain != b->will_retain ||
         !eq_bytes(a->will_topic, b->will_topic) || !eq_bytes(a->will_payload, b->will_payload) ||
         !eq_props_v(&a->will_props, &b->will_props, v)))
        return false;
    if (a->has_username && !eq_bytes(a->username, b->username))
        return false;
    return !a->has_password || eq_bytes(a->password, b->password);
}

static inline bool eq_entries_sub(const mqtt_subscribe *a, const mqtt_subscribe *b, uint8_t v)
{
    uint32_t pa = 0, pb = 0, n = 0;
    mqtt_sub_entry ea, eb;
    for (;; n++) {
        bool more_a = mqtt_sub_next(a, &pa, &ea);
        bool more_b = mqtt_sub_next(b, &pb, &eb);
        if (more_a != more_b)
            return false;
        if (!more_a)
            return n == a->n_entries && n == b->n_entries;
        uint8_t mask = v == MQTT_V5 ? 0xFF : 0x03;
        if (!eq_bytes(ea.filter, eb.filter) || (ea.options & mask) != (eb.options & mask))
            return false;
    }
}

static inline bool eq_entries_unsub(const mqtt_unsubscribe *a, const mqtt_unsubscribe *b)
{
    uint32_t pa = 0, pb = 0, n = 0;
    mqtt_bytes fa, fb;
    for (;; n++) {
        bool more_a = mqtt_unsub_next(a, &pa, &fa);
        bool more_b = mqtt_unsub_next(b, &pb, &fb);
        if (more_a != more_b)
            return false;
        if (!more_a)
            return n == a->n_entries && n == b->n_entries;
        if (!eq_bytes(fa, fb))
            return false;
    }
}

static inline bool eq_publish(const mqtt_publish *a, const mqtt_publish *b, uint8_t v)
{
    return a->qos == b->qos && a->dup == b->dup && a->retain == b->retain &&
           eq_bytes(a->topic, b->topic) && (a->qos == 0 || a->packet_id == b->packet_id) &&
           eq_props_v(&a->props, &b->props, v) && eq_bytes(a->payload, b->payload);
}

static inline bool eq_packet(const mqtt_packet *a, const mqtt_packet *b, uint8_t v)
{
    bool v5 = v == MQTT_V5;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MQTT_CONNECT:
        return eq_connect(&a->u.connect, &b->u.connect, v);
    case MQTT_CONNACK:
        return a->u.connack.session_present == b->u.connack.session_present &&
               a->u.connack.reason == b->u.connack.reason &&
               eq_props_v(&a->u.connack.props, &b->u.connack.props, v);
    case MQTT_PUBLISH:
        return eq_publish(&a->u.publish, &b->u.publish, v);
    case MQTT_PUBACK:
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return a->u.ack.packet_id == b->u.ack.packet_id &&
               (!v5 ||
                (a->u.ack.reason == b->u.ack.reason && eq_props(&a->u.ack.props, &b->u.ack.props)));
    case MQTT_SUBSCRIBE:
        return a->u.subscribe.packet_id == b->u.subscribe.packet_id &&
               eq_props_v(&a->u.subscribe.props, &b->u.subscribe.props, v) &&
               eq_entries_sub(&a->u.subscribe, &b->u.subscribe, v);
    case MQTT_UNSUBSCRIBE:
        return a->u.unsubscribe.packet_id == b->u.unsubscribe.packet_id &&
               eq_props_v(&a->u.unsubscribe.props, &b->u.unsubscribe.props, v) &&
               eq_entries_unsub(&a->u.unsubscribe, &b->u.unsubscribe);
    case MQTT_SUBACK:
    case MQTT_UNSUBACK:
        return a->u.suback.packet_id == b->u.suback.packet_id &&
               eq_props_v(&a->u.suback.props, &b->u.suback.props, v) &&
               (!v5 && a->type == MQTT_UNSUBACK
                    ? true
                    : eq_bytes(a->u.suback.reasons, b->u.suback.reasons));
    case MQTT_DISCONNECT:
    case MQTT_AUTH:
        return !v5 || (a->u.disconnect.reason == b->u.disconnect.reason &&
                       eq_props(&a->u.disconnect.props, &b->u.disconnect.props));
    default:
        return true;
    }
}

#endif
