/* mqttc.h -- a small MQTT 3.1.1 client on a libuv loop, for the CLI tools
 * that play devices and subscribers (`weir probe`, `weir replay`).
 *
 * Why not a library: the tools run hundreds of simulated devices, each its
 * own connection, on one thread and one loop, with timers deciding when each
 * publishes; libmosquitto wants a thread or a select loop per client. The
 * protocol subset needed is tiny: CONNECT, PUBLISH (QoS 0/1, both ways),
 * PUBACK, SUBSCRIBE, PINGREQ, DISCONNECT.
 *
 * Bounded memory: bytes handed to libuv and not yet written are counted; a
 * publish that would take them past max_queued (default 4 MiB) fails with
 * WEIR_EFULL (the caller counts a drop or waits). Incoming packets are
 * limited to 16 MiB (larger: the connection is closed).
 *
 * Threads: the loop's thread only.
 */
#ifndef WEIR_CLI_MQTTC_H
#define WEIR_CLI_MQTTC_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct mqttc mqttc;

typedef struct mqttc_cbs {
    /* CONNACK arrived (rc 0 = accepted), or the connection failed (rc < 0,
     * a weir_err). */
    void (*on_connect)(void *arg, int rc);
    /* An incoming PUBLISH (QoS 1 ones are acknowledged after the call). */
    void (*on_message)(void *arg, const char *topic, size_t topic_len, const uint8_t *payload,
                       size_t len);
    void (*on_puback)(void *arg, uint16_t packet_id);
    void (*on_suback)(void *arg);
    /* The connection ended (after a failure or mqttc_close); the mqttc is
     * freed right after this returns. */
    void (*on_close)(void *arg);
    void *arg;
} mqttc_cbs;

/* Starts connecting to host:port (numeric IPv4/IPv6 or a name) with a
 * clean session. cbs is copied. NULL on OOM or a bad address. */
mqttc *mqttc_new(uv_loop_t *loop, const char *host, int port, const char *client_id,
                 const mqttc_cbs *cbs);

/* Returns the packet id used (QoS 1) or 0 (QoS 0); a negative weir_err:
 * WEIR_EFULL (queue bound), WEIR_EINVAL (not connected, bad QoS). */
int mqttc_publish(mqttc *c, const char *topic, const void *payload, size_t len, int qos);
int mqttc_subscribe(mqttc *c, const char *filter, int qos);
size_t mqttc_queued(const mqttc *c);
/* QoS 1 publishes not yet acknowledged. */
uint32_t mqttc_inflight(const mqttc *c);
/* The framing of bytes received from a broker (outside input; exposed for
 * tests/fuzz/fuzz_cli.c): 1 when p[0..n) starts with a complete packet of
 * *hdr header bytes and *rem body bytes, 0 when more bytes are needed, -1
 * when the remaining length is malformed or over 16 MiB. */
int mqttc_frame(const uint8_t *p, size_t n, size_t *hdr, size_t *rem);

/* A PUBLISH body as received (type byte, body): topic, packet id (QoS 1/2)
 * and payload, pointing into p. 0, or -1 when malformed. */
typedef struct mqttc_pub {
    const char *topic;
    size_t topic_len;
    uint16_t id;
    int qos;
    const uint8_t *payload;
    size_t len;
} mqttc_pub;
int mqttc_parse_publish(uint8_t type, const uint8_t *p, size_t n, mqttc_pub *out);

/* Sends DISCONNECT (when connected), closes; on_close follows. Idempotent. */
void mqttc_close(mqttc *c);

#endif
