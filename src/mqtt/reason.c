/* reason.c -- see reason.h. */
#include "mqtt/reason.h"
#include "base/err.h"
#include "mqtt/codec.h"

static uint8_t reason_v5(int err)
{
    switch (err) {
    case WEIR_OK:
        return MQTT_RC_SUCCESS;
    case WEIR_EMALFORMED:
    case WEIR_EUTF8:
        return MQTT_RC_MALFORMED;
    case WEIR_EPROTO:
        return MQTT_RC_PROTOCOL_ERROR;
    case WEIR_EVERSION:
        return MQTT_RC_UNSUPPORTED_VERSION;
    case WEIR_ETOOBIG:
        return MQTT_RC_PACKET_TOO_LARGE;
    case WEIR_ETOPIC:
        return MQTT_RC_TOPIC_NAME_INVALID;
    case WEIR_ECLIENTID:
        return MQTT_RC_CLIENT_ID_NOT_VALID;
    case WEIR_EDENIED:
        return MQTT_RC_NOT_AUTHORIZED;
    case WEIR_EAUTH:
        return MQTT_RC_BAD_USER_OR_PASSWORD;
    case WEIR_EQUOTA:
    case WEIR_EFULL:
        return MQTT_RC_QUOTA_EXCEEDED;
    case WEIR_EBUSY:
        return MQTT_RC_SERVER_BUSY;
    case WEIR_ESHUTDOWN:
        return MQTT_RC_SERVER_SHUTTING_DOWN;
    case WEIR_ETIMEDOUT:
        return MQTT_RC_KEEP_ALIVE_TIMEOUT;
    case WEIR_ETAKEOVER:
        return MQTT_RC_SESSION_TAKEN_OVER;
    case WEIR_EUNSUPPORTED:
        return MQTT_RC_IMPL_SPECIFIC;
    default:
        return MQTT_RC_UNSPECIFIED;
    }
}

static uint8_t connack_v311(int err)
{
    switch (err) {
    case WEIR_OK:
        return MQTT_V311_ACCEPTED;
    case WEIR_EVERSION:
        return MQTT_V311_BAD_VERSION;
    case WEIR_ECLIENTID:
        return MQTT_V311_ID_REJECTED;
    case WEIR_EAUTH:
        return MQTT_V311_BAD_CREDENTIALS;
    case WEIR_EDENIED:
        return MQTT_V311_NOT_AUTHORIZED;
    default:
        return MQTT_V311_UNAVAILABLE;
    }
}

uint8_t mqtt_reason_code(int err, uint8_t version, int packet)
{
    if (version == MQTT_V5) {
        uint8_t rc = reason_v5(err);
        /* In a SUBACK the "invalid topic" family is about filters. */
        if (packet == MQTT_SUBACK && rc == MQTT_RC_TOPIC_NAME_INVALID)
            return MQTT_RC_TOPIC_FILTER_INVALID;
        if (packet == MQTT_SUBACK && err == WEIR_EQUOTA)
            return MQTT_RC_QUOTA_EXCEEDED;
        if (packet == MQTT_CONNACK && err == WEIR_EBUSY)
            return MQTT_RC_SERVER_UNAVAILABLE;
        return rc;
    }
    if (packet == MQTT_CONNACK)
        return connack_v311(err);
    return err == WEIR_OK ? 0 : MQTT_V311_SUBACK_FAILURE;
}
