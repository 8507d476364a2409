/* reason.h -- the one mapping from weir_err to MQTT reason codes.
 *
 * MQTT 5 has one table of reason codes; MQTT 3.1.1 has six CONNACK return
 * codes, a SUBACK failure code (0x80) and otherwise closes the connection.
 * Every place in the broker that answers an error asks this function, so the
 * mapping lives in exactly one place (the Mosquitto handle__packet habit).
 */
#ifndef WEIR_MQTT_REASON_H
#define WEIR_MQTT_REASON_H

#include <stdint.h>

/* MQTT 5 reason codes used by weir (spec 2.4). */
enum {
    MQTT_RC_SUCCESS = 0x00,
    MQTT_RC_GRANTED_QOS1 = 0x01,
    MQTT_RC_GRANTED_QOS2 = 0x02,
    MQTT_RC_DISCONNECT_WITH_WILL = 0x04,
    MQTT_RC_NO_MATCHING_SUBSCRIBERS = 0x10,
    MQTT_RC_NO_SUBSCRIPTION_EXISTED = 0x11,
    MQTT_RC_UNSPECIFIED = 0x80,
    MQTT_RC_MALFORMED = 0x81,
    MQTT_RC_PROTOCOL_ERROR = 0x82,
    MQTT_RC_IMPL_SPECIFIC = 0x83,
    MQTT_RC_UNSUPPORTED_VERSION = 0x84,
    MQTT_RC_CLIENT_ID_NOT_VALID = 0x85,
    MQTT_RC_BAD_USER_OR_PASSWORD = 0x86,
    MQTT_RC_NOT_AUTHORIZED = 0x87,
    MQTT_RC_SERVER_UNAVAILABLE = 0x88,
    MQTT_RC_SERVER_BUSY = 0x89,
    MQTT_RC_BAD_AUTH_METHOD = 0x8C,
    MQTT_RC_SERVER_SHUTTING_DOWN = 0x8B,
    MQTT_RC_KEEP_ALIVE_TIMEOUT = 0x8D,
    MQTT_RC_SESSION_TAKEN_OVER = 0x8E,
    MQTT_RC_TOPIC_FILTER_INVALID = 0x8F,
    MQTT_RC_TOPIC_NAME_INVALID = 0x90,
    MQTT_RC_PACKET_ID_IN_USE = 0x91,
    MQTT_RC_PACKET_ID_NOT_FOUND = 0x92,
    MQTT_RC_RECEIVE_MAX_EXCEEDED = 0x93,
    MQTT_RC_TOPIC_ALIAS_INVALID = 0x94,
    MQTT_RC_PACKET_TOO_LARGE = 0x95,
    MQTT_RC_QUOTA_EXCEEDED = 0x97,
    MQTT_RC_PAYLOAD_FORMAT_INVALID = 0x99,
    MQTT_RC_RETAIN_NOT_SUPPORTED = 0x9A,
    MQTT_RC_QOS_NOT_SUPPORTED = 0x9B,
    MQTT_RC_SHARED_SUB_NOT_SUPPORTED = 0x9E,
    MQTT_RC_CONNECTION_RATE_EXCEEDED = 0x9F,
    MQTT_RC_SUB_ID_NOT_SUPPORTED = 0xA1,
};

/* MQTT 3.1.1 CONNACK return codes (spec 3.2.2.3). */
enum {
    MQTT_V311_ACCEPTED = 0x00,
    MQTT_V311_BAD_VERSION = 0x01,
    MQTT_V311_ID_REJECTED = 0x02,
    MQTT_V311_UNAVAILABLE = 0x03,
    MQTT_V311_BAD_CREDENTIALS = 0x04,
    MQTT_V311_NOT_AUTHORIZED = 0x05,
    MQTT_V311_SUBACK_FAILURE = 0x80,
};

/* The reason code that answers `err` in a packet of type `packet` (an
 * mqtt_type: CONNACK, PUBACK, PUBREC, SUBACK, UNSUBACK or DISCONNECT) for
 * protocol `version`. For 3.1.1 it returns the CONNACK return code or the
 * SUBACK failure code; for other 3.1.1 packets, which carry no reason, it
 * returns 0x80 and the caller closes the connection instead. */
uint8_t mqtt_reason_code(int err, uint8_t version, int packet);

#endif
