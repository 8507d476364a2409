/* broker.h -- the MQTT 3.1.1 / 5.0 broker, independent of any transport.
 *
 * The broker does no I/O of its own. A transport (TCP in net/, WebSocket in
 * http/) owns each network connection and talks to the broker through four
 * calls: mqtt_conn_open when a connection arrives, mqtt_conn_input with the
 * bytes it read, mqtt_conn_drained when its send buffer has been written,
 * and mqtt_conn_closed when the connection is gone. The broker answers by
 * appending encoded packets to the transport's bounded send buffer and
 * asking it to flush (mqtt_transport.kick) or to close. Time enters through
 * mqtt_broker_tick (keep-alive, will delay, session expiry). This keeps the
 * whole protocol state machine testable and fuzzable in-process
 * (tests/fuzz/fuzz_broker.c) with nothing but bytes.
 *
 * Threading: a broker and all its connections belong to one event-loop
 * thread; nothing here locks.
 *
 * Bounds, and what happens when each is reached:
 *   max_packet_size      inbound: DISCONNECT 0x95 (5.0) or close (3.1.1);
 *                        outbound: a message larger than the client's limit
 *                        is not sent to it and is counted (too_large).
 *   max_connections      CONNACK 0x88 / 0x03 and close.
 *   receive_maximum      outbound QoS 1/2 beyond the client's window wait in
 *                        the session queue; inbound QoS 2 beyond ours is a
 *                        protocol violation (DISCONNECT 0x93).
 *   max_queued_messages  per session: the oldest queued message is dropped
 *                        and counted (queue_full).
 *   max_queued_bytes     all sessions: a message that would pass it is not
 *                        queued and is counted (queue_memory).
 *   max_outbuf           per connection: QoS 0 to a client whose send buffer
 *                        is full is dropped and counted (outbuf_full); QoS
 *                        1/2 wait in the session queue.
 */
#ifndef WEIR_MQTT_BROKER_H
#define WEIR_MQTT_BROKER_H

#include "base/buf.h"
#include "auth/auth.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mqtt_broker mqtt_broker;
typedef struct mqtt_conn mqtt_conn;

/* What a transport offers the broker for one connection. `io` is the
 * transport's own handle, passed back in every call. */
typedef struct mqtt_transport {
    /* The connection's bounded send buffer; the broker appends packets. */
    weir_buf *(*outbuf)(void *io);
    /* Write what is in the send buffer soon (idempotent, never blocks). */
    void (*kick)(void *io);
    /* Write what is queued, then close. The transport later calls
     * mqtt_conn_closed, never from inside this call. */
    void (*close)(void *io);
} mqtt_transport;

typedef struct mqtt_broker_config {
    uint32_t max_packet_size;
    uint32_t max_connections;
    uint16_t receive_maximum;
    uint32_t max_queued_messages;
    uint64_t max_queued_bytes;
    size_t max_outbuf;
    uint16_t max_keepalive;
    uint32_t max_session_expiry;
    uint16_t topic_alias_maximum;
    uint32_t max_subscriptions;
    bool retain_available;
} mqtt_broker_config;

/* Why messages were dropped; each reason is a counter. */
typedef enum mqtt_drop {
    MQTT_DROP_QUEUE_FULL = 0,  /* session queue at max_queued_messages */
    MQTT_DROP_QUEUE_MEMORY,    /* max_queued_bytes reached */
    MQTT_DROP_OUTBUF_FULL,     /* QoS 0 to a client that is not reading */
    MQTT_DROP_EXPIRED,         /* message expiry interval passed */
    MQTT_DROP_TOO_LARGE,       /* larger than the client's maximum packet size */
    MQTT_DROP_OFFLINE_QOS0,    /* QoS 0 for a session that is not connected */
    MQTT_DROP_DENIED,          /* PUBLISH refused by authorisation */
    MQTT_DROP__COUNT
} mqtt_drop;

/* Why connections were closed by the broker; each reason is a counter. */
typedef enum mqtt_close_reason {
    MQTT_CLOSE_PROTOCOL = 0, /* malformed packet or protocol violation */
    MQTT_CLOSE_TOO_LARGE,    /* packet over max_packet_size */
    MQTT_CLOSE_KEEPALIVE,    /* keep-alive timed out */
    MQTT_CLOSE_TAKEOVER,     /* another connection took the client id */
    MQTT_CLOSE_REFUSED,      /* CONNECT refused (version, auth, limits) */
    MQTT_CLOSE_SLOW,         /* send buffer full while writing a control packet */
    MQTT_CLOSE_INGEST,       /* 3.1.1 PUBLISH not accepted by the store */
    MQTT_CLOSE__COUNT
} mqtt_close_reason;

/* Counters owned by the broker's thread; exported by metrics. */
typedef struct mqtt_stats {
    uint64_t packets_in[16];   /* by mqtt_type */
    uint64_t packets_out[16];
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t messages_in;      /* PUBLISH received (all QoS) */
    uint64_t messages_out;     /* PUBLISH sent */
    uint64_t dropped[MQTT_DROP__COUNT];
    uint64_t closed[MQTT_CLOSE__COUNT];
    uint64_t connects;         /* accepted CONNECTs */
    uint64_t auth_denied;      /* CONNECT, PUBLISH or SUBSCRIBE refused */
    uint64_t ingest_refused;   /* PUBLISH refused by the ingest hook (back-pressure) */
} mqtt_stats;

/* Live sizes for gauges. */
typedef struct mqtt_gauges {
    uint64_t connections;      /* transport connections open */
    uint64_t clients;          /* connections past CONNECT */
    uint64_t sessions;         /* sessions, online and offline */
    uint64_t subscriptions;
    uint64_t retained;
    uint64_t queued_messages;
    uint64_t queued_bytes;
    uint64_t inflight;
} mqtt_gauges;

/* The authorisation policy `a` is borrowed and must outlive the broker.
 * Returns NULL on OOM. */
mqtt_broker *mqtt_broker_new(const mqtt_broker_config *cfg, const auth *a);
void mqtt_broker_free(mqtt_broker *b);

/* A new network connection. `peer` is "ip:port" for logs; `loopback` tells
 * authorisation whether the peer is local. Returns NULL when the broker will
 * not take it (the transport closes it). */
mqtt_conn *mqtt_conn_open(mqtt_broker *b, const mqtt_transport *t, void *io, const char *peer,
                          bool loopback);

/* For a TLS transport: the client presented a certificate that the TLS
 * layer verified; cn (copied) is the identity it names. Call after
 * mqtt_conn_open and before the first input. The CONNECT is then
 * authenticated as that user without a password (see auth_authenticate). */
int mqtt_conn_set_cert_identity(mqtt_conn *c, const char *cn);

/* Bytes read from the connection, in order. */
void mqtt_conn_input(mqtt_conn *c, const uint8_t *data, size_t len);

/* The transport wrote everything it had; the broker may send more. */
void mqtt_conn_drained(mqtt_conn *c);

/* The connection is gone (peer closed, error, or after transport close);
 * the broker handles the will and the session, and frees `c`. */
void mqtt_conn_closed(mqtt_conn *c);

/* Periodic work: keep-alive, will delay, session expiry. Call every few
 * hundred milliseconds. */
void mqtt_broker_tick(mqtt_broker *b);

/* Tells every MQTT 5 client the server is shutting down (DISCONNECT 0x8B)
 * and closes all connections. Wills are not published. */
void mqtt_broker_shutdown(mqtt_broker *b);

/* ---- Ingest hook: PUBLISHes that become durable records ------------------
 *
 * The node installs one hook that sees every PUBLISH accepted from a client
 * (after authorisation, before routing to subscribers). It returns:
 *   WEIR_OK      nothing durable depends on it: acknowledge now;
 *   WEIR_EAGAIN  (QoS 1/2 only) the message is being made durable: hold the
 *                PUBACK/PUBREC until mqtt_broker_ingest_done(token) is called,
 *                exactly once, on the broker's thread;
 *   an error     (e.g. WEIR_EFULL: the store pushes back) the message is not
 *                accepted: it is not routed, an MQTT 5 client gets reason
 *                0x97 (quota exceeded), a 3.1.1 client, which has no negative
 *                acknowledgement, is disconnected so that it resends later.
 * Acknowledgements always leave in the order the PUBLISHes arrived. */
typedef struct mqtt_ingest_msg {
    const uint8_t *topic;
    size_t topic_len;
    const uint8_t *payload;
    size_t payload_len;
    uint8_t qos;
    bool retain;
    const char *client_id;
    int64_t arrival_ns;      /* wall clock when the packet was handled (T2) */
} mqtt_ingest_msg;
typedef int (*mqtt_ingest_fn)(void *ctx, const mqtt_ingest_msg *m, uint64_t token);
void mqtt_broker_set_ingest(mqtt_broker *b, mqtt_ingest_fn fn, void *ctx);
/* status 0: durable, acknowledge with success; otherwise the client gets
 * 0x80 (unspecified error, 5.0) or, in 3.1.1, the acknowledgement anyway is
 * NOT sent and the connection is closed so that the client resends. */
void mqtt_broker_ingest_done(mqtt_broker *b, uint64_t token, int status);

/* Publishes a message from weir itself (no client origin). */
int mqtt_broker_publish(mqtt_broker *b, const char *topic, const void *payload, size_t len,
                        int qos, bool retain);

/* Serialises retained messages and persistent sessions (see persist.c for
 * the format) into `out`. Cheap enough for the loop: memory copies only. */
int mqtt_broker_snapshot(mqtt_broker *b, weir_buf *out);
/* Loads a snapshot into an empty broker. WEIR_ECORRUPT when a record fails
 * its checksum: what came before it is kept, the rest is ignored. */
int mqtt_broker_restore(mqtt_broker *b, const uint8_t *data, size_t len);
/* True when state worth persisting changed since the last snapshot. */
bool mqtt_broker_dirty(const mqtt_broker *b);

const mqtt_stats *mqtt_broker_stats(const mqtt_broker *b);
void mqtt_broker_gauges(const mqtt_broker *b, mqtt_gauges *out);
const char *mqtt_drop_name(mqtt_drop d);
const char *mqtt_close_name(mqtt_close_reason r);

/* ---- Introspection: the connected clients (GET /api/v1/clients) ----------
 *
 * mqtt_broker_foreach_client calls fn once per connection past CONNECT, in
 * the broker's connection order, on the broker's thread. It reads counters
 * the broker keeps anyway (nothing is added to the packet path), so its cost
 * is one pass over the connections. The info and its strings are valid only
 * during the call; fn must not call back into the broker. */
typedef struct mqtt_client_info {
    const char *client_id;
    const char *peer;        /* "ip:port" */
    bool loopback;
    uint8_t version;         /* 3 (3.1), 4 (3.1.1) or 5 */
    int64_t connected_ns;    /* wall clock of the CONNACK */
    uint32_t keepalive_s;
    uint32_t session_expiry_s;
    uint64_t msgs_in;        /* PUBLISH received on this connection */
    uint64_t msgs_out;       /* PUBLISH sent on this connection */
    uint32_t queued;         /* deliveries waiting in the session queue */
    uint32_t inflight;       /* QoS 1/2 sent and not yet acknowledged */
    uint32_t n_subs;         /* subscriptions; read them with mqtt_client_sub */
    const void *session_;    /* private: for mqtt_client_sub */
} mqtt_client_info;
typedef void (*mqtt_client_fn)(void *ctx, const mqtt_client_info *ci);
void mqtt_broker_foreach_client(const mqtt_broker *b, mqtt_client_fn fn, void *ctx);
/* The i-th subscription filter (i < n_subs) and its granted QoS, or NULL. */
const char *mqtt_client_sub(const mqtt_client_info *ci, uint32_t i, uint8_t *qos);

#endif
