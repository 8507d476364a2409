/* brokerInt.h -- the broker's internal structures, shared by broker.c
 * (lifecycle, routing, time), conn.c (packet handlers), session.c (queues
 * and in-flight windows) and persist.c (snapshots). Nothing outside
 * src/mqtt/ includes this file.
 *
 * Ownership:
 *   - mqtt_msg is immutable after creation and reference counted: the
 *     retained store, every session queue entry and every in-flight entry
 *     holds one reference. msg_unref frees it at zero.
 *   - A session is owned by the broker's session table; a connection by the
 *     broker's connection list until mqtt_conn_closed frees it. A session
 *     points to its connection while online and the connection back to it.
 *   - The subscription tree stores session pointers as opaque owners; a
 *     session removes all its subscriptions before it is freed.
 */
#ifndef WEIR_MQTT_BROKERINT_H
#define WEIR_MQTT_BROKERINT_H

#include "base/buf.h"
#include "mqtt/broker.h"
#include "mqtt/codec.h"
#include "mqtt/retain.h"
#include "mqtt/topic.h"

#define MQTT_QITEM_SUB_IDS 4  /* subscription ids carried per delivery */
#define MQTT_CONNECT_TIMEOUT_NS (10 * 1000000000LL)

/* ---- Messages ----------------------------------------------------------- */

typedef struct mqtt_msg {
    uint32_t refs;
    uint8_t qos;             /* QoS as published */
    bool retain;             /* RETAIN flag as published */
    bool has_payload_format; /* payload format indicator present */
    uint8_t payload_format;
    uint64_t origin;         /* uid of the publishing session; 0 = weir */
    int64_t expire_at;       /* wall-clock ns; 0 = never */
    uint16_t topic_len;
    uint32_t payload_len;
    size_t size;             /* bytes allocated, for queue memory accounting */
    uint8_t *topic;          /* all pointers below point into data[] */
    uint8_t *payload;
    mqtt_bytes content_type;
    mqtt_bytes response_topic;
    mqtt_bytes correlation_data;
    mqtt_bytes user_props;   /* raw 0x26 entries */
    uint8_t data[];
} mqtt_msg;

/* Builds a message from a decoded PUBLISH (or will): copies every byte it
 * keeps. NULL on OOM. The caller holds the only reference. */
mqtt_msg *msg_new(const uint8_t *topic, size_t topic_len, const uint8_t *payload,
                  size_t payload_len, uint8_t qos, bool retain, const mqtt_props *props,
                  uint64_t origin);
static inline mqtt_msg *msg_ref(mqtt_msg *m)
{
    m->refs++;
    return m;
}
void msg_unref(mqtt_msg *m);

/* ---- Sessions ----------------------------------------------------------- */

/* One delivery of a message to one session. */
typedef struct mqtt_qitem {
    mqtt_msg *msg;           /* one reference */
    uint8_t qos;             /* QoS of this delivery: min(published, granted) */
    bool retain;             /* RETAIN flag to send */
    bool dup;                /* sent before: set DUP on the next send */
    uint8_t n_sub_ids;
    uint32_t sub_ids[MQTT_QITEM_SUB_IDS];
} mqtt_qitem;

enum { INF_WAIT_PUBACK = 1, INF_WAIT_PUBREC = 2, INF_WAIT_PUBCOMP = 3 };

/* An outgoing QoS 1/2 message the client has not finished acknowledging. */
typedef struct mqtt_inflight {
    mqtt_qitem item;         /* item.msg is NULL in INF_WAIT_PUBCOMP */
    uint16_t packet_id;
    uint8_t state;           /* INF_* */
} mqtt_inflight;

/* A subscription as the session remembers it (the tree has its own copy). */
typedef struct mqtt_ssub {
    char *filter;            /* owned, NUL-terminated, "$share/..." included */
    uint16_t len;
    uint8_t options;
    uint32_t sub_id;
} mqtt_ssub;

typedef struct mqtt_session {
    char *client_id;         /* owned, NUL-terminated */
    uint16_t id_len;
    uint64_t uid;            /* unique per session object, for no-local */
    mqtt_conn *conn;         /* NULL while offline */
    uint8_t version;         /* protocol of the last connection */
    uint32_t expiry_s;       /* session expiry interval in force */
    int64_t expire_at;       /* monotonic ns when offline; 0 = never */
    struct mqtt_session *hnext; /* session table chain */

    mqtt_ssub *subs;         /* owned array */
    uint32_t n_subs, cap_subs;

    mqtt_inflight *inflight; /* owned array; live entries are
                                [inf_start, inf_start + n_inflight), in send order,
                                so the usual in-order acknowledgement pops the front */
    uint32_t inf_start;
    uint16_t n_inflight, cap_inflight;
    uint16_t next_pid;       /* last packet id handed out */
    bool pid_wrapped;        /* ids wrapped onto live ones: search (rare) */

    mqtt_qitem *q;           /* owned ring of queued deliveries */
    uint32_t q_head, q_len, q_cap;

    uint16_t *rx_qos2;       /* inbound QoS 2 ids awaiting PUBREL */
    uint32_t n_rx_qos2, cap_rx_qos2;

    mqtt_msg *will;          /* pending will after an abnormal close */
    int64_t will_at;         /* monotonic ns when it is due */

    uint64_t match_gen;      /* routing scratch: last publish that matched */
    uint32_t match_idx;      /* index in the broker's match array */
} mqtt_session;

/* ---- Connections -------------------------------------------------------- */

enum { CONN_NEW = 0, CONN_ACTIVE = 1, CONN_CLOSING = 2 };

/* An acknowledgement of an inbound QoS 1/2 PUBLISH that waits for the
 * ingest hook (the record being made durable). Acknowledgements leave in
 * the order their PUBLISHes arrived, so a connection keeps them in a FIFO;
 * an immediate one queues behind a pending one. When the connection closes
 * first, its pending entries are orphaned (conn = NULL) and freed by
 * mqtt_broker_ingest_done. */
typedef struct mqtt_pending_ack {
    struct mqtt_conn *conn;  /* NULL once orphaned */
    uint16_t packet_id;
    uint8_t type;            /* MQTT_PUBACK or MQTT_PUBREC */
    uint8_t reason;
    bool done;
    struct mqtt_pending_ack *next;
} mqtt_pending_ack;

typedef struct alias_out {
    uint64_t hash;           /* 0 = empty slot */
    uint16_t alias;
    uint16_t len;
    uint8_t *topic;          /* owned copy */
} alias_out;

struct mqtt_conn {
    mqtt_broker *b;
    const mqtt_transport *t;
    void *io;
    char peer[64];
    bool loopback;
    uint8_t state;           /* CONN_* */
    uint8_t version;         /* 0 until CONNECT */
    mqtt_session *s;         /* attached session, NULL before CONNECT */
    weir_buf in;             /* bytes of an incomplete packet */
    int64_t last_rx;         /* monotonic ns of the last packet */
    int64_t opened_at;       /* monotonic ns */
    int64_t connected_wall;  /* wall-clock ns of CONNACK */
    uint32_t keepalive_ms;   /* 0 = none */
    bool will_on_close;      /* publish the will unless DISCONNECT said no */
    mqtt_msg *will;          /* from CONNECT; owned */
    uint32_t will_delay_s;
    bool problem_info;       /* 5.0 request problem information */
    uint16_t client_receive_max;
    uint32_t client_max_packet;
    uint16_t client_alias_max;
    /* Topic aliases the client set towards us: [1..topic_alias_maximum]. */
    mqtt_bytes *alias_in;
    /* Aliases we set towards the client (open addressing). */
    alias_out *alias_out;
    uint16_t alias_out_cap, alias_out_used;
    uint64_t msgs_in, msgs_out;
    mqtt_pending_ack *acks_head, *acks_tail; /* acknowledgements in order */
    char *cert_identity;     /* CN of a verified client certificate, or NULL */
    struct mqtt_conn *prev, *next; /* broker connection list */
};

/* ---- The broker --------------------------------------------------------- */

typedef struct mqtt_match {
    mqtt_session *s;
    uint8_t qos;
    bool rap;                /* retain as published */
    uint8_t n_sub_ids;
    uint32_t sub_ids[MQTT_QITEM_SUB_IDS];
} mqtt_match;

struct mqtt_broker {
    mqtt_broker_config cfg;
    const auth *auth;
    mqtt_subtree *subs;
    mqtt_retain *retained;
    mqtt_session **stab;     /* session table by client id */
    uint32_t stab_cap, n_sessions;
    mqtt_conn *conns;        /* list of all connections */
    uint32_t n_conns, n_clients;
    uint64_t next_uid;
    uint64_t match_gen;
    mqtt_match *matches;     /* routing scratch */
    uint32_t n_matches, cap_matches;
    uint64_t origin;         /* uid of the publisher being routed */
    uint64_t queued_msgs, queued_bytes, inflight;
    bool dirty;              /* persistent state changed since snapshot */
    mqtt_ingest_fn ingest;   /* durable-stream hook; NULL = none */
    void *ingest_ctx;
    uint64_t pending_acks;   /* acknowledgements waiting for the hook */
    bool shutting_down;
    mqtt_stats stats;
};

/* broker.c */
mqtt_session *broker__session_find(mqtt_broker *b, const uint8_t *id, size_t n);
mqtt_session *broker__session_create(mqtt_broker *b, const uint8_t *id, size_t n);
void broker__session_destroy(mqtt_broker *b, mqtt_session *s);
void broker__route(mqtt_broker *b, mqtt_msg *m);
int broker__retain(mqtt_broker *b, mqtt_msg *m);
void broker__publish_will(mqtt_broker *b, mqtt_msg *will);

/* session.c */
void session__deliver(mqtt_broker *b, mqtt_session *s, mqtt_qitem *item);
void session__drain(mqtt_broker *b, mqtt_session *s);
void session__resend(mqtt_broker *b, mqtt_session *s);
int session__enqueue(mqtt_broker *b, mqtt_session *s, mqtt_qitem *item);
mqtt_inflight *session__inflight_find(mqtt_session *s, uint16_t pid);
void session__inflight_remove(mqtt_broker *b, mqtt_session *s, mqtt_inflight *f);
int session__sub_add(mqtt_session *s, const uint8_t *filter, size_t n, uint8_t options,
                     uint32_t sub_id);
bool session__sub_remove(mqtt_session *s, const uint8_t *filter, size_t n);
int session__rx_qos2_add(mqtt_session *s, uint16_t pid);
bool session__rx_qos2_has(const mqtt_session *s, uint16_t pid);
bool session__rx_qos2_remove(mqtt_session *s, uint16_t pid);
void session__clear_delivery_state(mqtt_broker *b, mqtt_session *s);

/* conn.c */
int conn__send(mqtt_conn *c, const mqtt_packet *p);
int conn__send_publish(mqtt_conn *c, const mqtt_qitem *item, uint16_t pid);
void conn__fail(mqtt_conn *c, int err, mqtt_close_reason why, const char *detail);
void conn__close(mqtt_conn *c);
bool conn__outbuf_full(const mqtt_conn *c);

#endif
