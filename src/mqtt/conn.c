/* conn.c -- one client connection: framing of the byte stream, the packet
 * handler table, and encoding of what goes back.
 *
 * Input: bytes are framed in place when no partial packet is pending (the
 * common case: a read holds whole packets), so most packets are decoded
 * straight from the transport's read buffer; only a packet split across
 * reads is copied into `in`, which is bounded by max_packet_size.
 *
 * Errors: a handler returns a weir_err; the dispatcher turns any error into
 * conn__fail, which counts it, logs it (rate-limited), sends an MQTT 5
 * DISCONNECT with the reason code from mqtt_reason_code (a 3.1.1 client is
 * simply closed, as that protocol has no way to say why) and closes. One bad
 * client never affects another.
 */
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "mqtt/brokerInt.h"
#include "mqtt/reason.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define ALIAS_OUT_LIMIT 1024 /* aliases we assign per connection at most */

static wlog_limit bad_input_limit;

/* ---- Output ------------------------------------------------------------- */

bool conn__outbuf_full(const mqtt_conn *c)
{
    weir_buf *out = c->t->outbuf(c->io);
    return buf_used(out) >= c->b->cfg.max_outbuf;
}

void conn__close(mqtt_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    c->state = CONN_CLOSING;
    c->t->close(c->io);
}

static int conn_write(mqtt_conn *c, const mqtt_packet *p, size_t size)
{
    weir_buf *out = c->t->outbuf(c->io);
    int rc = buf_reserve(out, size);
    if (rc) {
        c->b->stats.closed[MQTT_CLOSE_SLOW]++;
        conn__close(c);
        return rc;
    }
    size_t n = mqtt_encode(p, c->version ? c->version : MQTT_V311, buf_tail(out), size);
    if (n != size)
        return WEIR_EINTERNAL;
    buf_commit(out, n);
    c->b->stats.packets_out[p->type]++;
    c->b->stats.bytes_out += n;
    c->t->kick(c->io);
    return WEIR_OK;
}

/* Encodes and queues a control packet. */
int conn__send(mqtt_conn *c, const mqtt_packet *p)
{
    if (c->state == CONN_CLOSING)
        return WEIR_ESHUTDOWN;
    size_t size = mqtt_encoded_size(p, c->version ? c->version : MQTT_V311);
    if (!size)
        return WEIR_EINTERNAL;
    return conn_write(c, p, size);
}

static alias_out *alias_slot(mqtt_conn *c, const uint8_t *topic, uint16_t len, uint64_t h)
{
    uint32_t mask = c->alias_out_cap - 1u;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        alias_out *a = &c->alias_out[i];
        if (!a->hash || (a->hash == h && a->len == len && !memcmp(a->topic, topic, len)))
            return a;
    }
}

/* Chooses the topic alias for an outgoing PUBLISH. Returns the alias (0 for
 * none) and whether the topic must still be sent in full. The assignment is
 * recorded only by alias_commit, after the packet is really queued. */
static uint16_t alias_choose(mqtt_conn *c, const mqtt_msg *m, bool *send_topic, alias_out **slot)
{
    *send_topic = true;
    *slot = NULL;
    if (!c->client_alias_max || c->version != MQTT_V5)
        return 0;
    if (!c->alias_out) {
        uint16_t want = c->client_alias_max < ALIAS_OUT_LIMIT ? c->client_alias_max
                                                                : ALIAS_OUT_LIMIT;
        uint16_t cap = 4;
        while (cap < want * 2)
            cap *= 2;
        c->alias_out = calloc(cap, sizeof(*c->alias_out));
        if (!c->alias_out)
            return 0;
        c->alias_out_cap = cap;
    }
    uint64_t h = XXH3_64bits(m->topic, m->topic_len) | 1u;
    alias_out *a = alias_slot(c, m->topic, m->topic_len, h);
    if (a->hash) {
        *send_topic = false;
        return a->alias;
    }
    uint16_t limit = c->client_alias_max < ALIAS_OUT_LIMIT ? c->client_alias_max : ALIAS_OUT_LIMIT;
    if (c->alias_out_used >= limit)
        return 0;
    *slot = a;
    return (uint16_t)(c->alias_out_used + 1);
}

static void alias_commit(mqtt_conn *c, alias_out *a, const mqtt_msg *m)
{
    a->topic = malloc(m->topic_len ? m->topic_len : 1);
    if (!a->topic)
        return; /* the client knows the alias but we forget it: harmless */
    memcpy(a->topic, m->topic, m->topic_len);
    a->len = m->topic_len;
    a->alias = (uint16_t)++c->alias_out_used;
    a->hash = XXH3_64bits(m->topic, m->topic_len) | 1u;
}

/* Queues a PUBLISH for one delivery. Returns WEIR_ENOTFOUND when the
 * message is not sent and never will be to this client (expired, or larger
 * than the client accepts); those are counted here. */
int conn__send_publish(mqtt_conn *c, const mqtt_qitem *item, uint16_t pid)
{
    const mqtt_msg *m = item->msg;
    mqtt_broker *b = c->b;
    if (c->state != CONN_ACTIVE)
        return WEIR_ESHUTDOWN;
    mqtt_packet p = {.type = MQTT_PUBLISH};
    mqtt_publish *pub = &p.u.publish;
    pub->qos = item->qos;
    pub->dup = item->dup && item->qos > 0;
    pub->retain = item->retain;
    pub->packet_id = pid;
    pub->topic = (mqtt_bytes){m->topic, m->topic_len};
    pub->payload = (mqtt_bytes){m->payload, m->payload_len};
    if (m->expire_at) {
        int64_t left = m->expire_at - weir_wall_ns();
        if (left <= 0) {
            b->stats.dropped[MQTT_DROP_EXPIRED]++;
            return WEIR_ENOTFOUND;
        }
        pub->props.present |= MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY);
        pub->props.message_expiry = (uint32_t)((left + WEIR_NS_PER_S - 1) / WEIR_NS_PER_S);
    }
    alias_out *slot = NULL;
    if (c->version == MQTT_V5) {
        mqtt_props *pr = &pub->props;
        if (m->has_payload_format) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT);
            pr->payload_format = m->payload_format;
        }
        if (m->content_type.data) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE);
            pr->content_type = m->content_type;
        }
        if (m->response_topic.data) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC);
            pr->response_topic = m->response_topic;
        }
        if (m->correlation_data.data) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA);
            pr->correlation_data = m->correlation_data;
        }
        if (m->user_props.len) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY);
            pr->user_props = m->user_props;
        }
        if (item->n_sub_ids) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_SUBSCRIPTION_ID);
            pr->n_sub_ids = item->n_sub_ids;
            memcpy(pr->sub_ids, item->sub_ids, item->n_sub_ids * sizeof(uint32_t));
        }
        bool send_topic;
        uint16_t alias = alias_choose(c, m, &send_topic, &slot);
        if (alias) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS);
            pr->topic_alias = alias;
            if (!send_topic)
                pub->topic = (mqtt_bytes){(const uint8_t *)"", 0};
        }
    }
    size_t size = mqtt_encoded_size(&p, c->version);
    if (!size || (c->client_max_packet && size > c->client_max_packet)) {
        b->stats.dropped[MQTT_DROP_TOO_LARGE]++;
        return WEIR_ENOTFOUND;
    }
    int rc = conn_write(c, &p, size);
    if (rc)
        return rc;
    if (slot)
        alias_commit(c, slot, m);
    b->stats.messages_out++;
    c->msgs_out++;
    return WEIR_OK;
}

static int send_ack(mqtt_conn *c, mqtt_type type, uint16_t pid, uint8_t reason)
{
    mqtt_packet p = {.type = type, .u.ack = {.packet_id = pid}};
    if (c->version == MQTT_V5)
        p.u.ack.reason = reason;
    return conn__send(c, &p);
}

/* ---- Acknowledgements held for the ingest hook -------------------------- */

static void acks_flush(mqtt_conn *c)
{
    while (c->acks_head && c->acks_head->done) {
        mqtt_pending_ack *a = c->acks_head;
        c->acks_head = a->next;
        if (!c->acks_head)
            c->acks_tail = NULL;
        if (a->reason >= 0x80 && c->version != MQTT_V5) {
            /* 3.1.1 cannot say no: close, the client resends after reconnecting. */
            conn__fail(c, WEIR_EFULL, MQTT_CLOSE_INGEST, "message not stored");
        } else if (c->state == CONN_ACTIVE) {
            send_ack(c, a->type, a->packet_id, a->reason);
        }
        free(a);
    }
}

static mqtt_pending_ack *ack_enqueue(mqtt_conn *c, mqtt_type type, uint16_t pid, uint8_t reason,
                                     bool done)
{
    mqtt_pending_ack *a = calloc(1, sizeof(*a));
    if (!a)
        return NULL;
    a->conn = c;
    a->type = (uint8_t)type;
    a->packet_id = pid;
    a->reason = reason;
    a->done = done;
    if (c->acks_tail)
        c->acks_tail->next = a;
    else
        c->acks_head = a;
    c->acks_tail = a;
    return a;
}

/* Acknowledges an inbound PUBLISH now, or behind held acknowledgements. */
static int ack_publish(mqtt_conn *c, mqtt_type type, uint16_t pid, uint8_t reason)
{
    if (!c->acks_head)
        return send_ack(c, type, pid, reason);
    if (!ack_enqueue(c, type, pid, reason, true))
        return WEIR_ENOMEM;
    return WEIR_OK;
}

void mqtt_broker_set_ingest(mqtt_broker *b, mqtt_ingest_fn fn, void *ctx)
{
    b->ingest = fn;
    b->ingest_ctx = ctx;
}

void mqtt_broker_ingest_done(mqtt_broker *b, uint64_t token, int status)
{
    mqtt_pending_ack *a = (mqtt_pending_ack *)(uintptr_t)token;
    if (!a)
        return;
    b->pending_acks--;
    a->done = true;
    if (status)
        a->reason = MQTT_RC_UNSPECIFIED;
    if (!a->conn) {
        free(a); /* its connection is gone */
        return;
    }
    acks_flush(a->conn);
}

/* ---- Failing ------------------------------------------------------------ */

static void conn_fail_rc(mqtt_conn *c, int err, uint8_t rc, mqtt_close_reason why,
                         const char *detail)
{
    if (c->state == CONN_CLOSING)
        return;
    c->b->stats.closed[why]++;
    wlog_limited(&bad_input_limit, WLOG_INFO, "mqtt", "close",
                 "client=\"%s\" peer=%s reason=%s error=%s rc=0x%02x detail=\"%s\"",
                 c->s ? c->s->client_id : "", c->peer, mqtt_close_name(why), weir_err_name(err),
                 rc, detail ? detail : "");
    if (c->state == CONN_ACTIVE && c->version == MQTT_V5) {
        mqtt_packet p = {.type = MQTT_DISCONNECT, .u.disconnect.reason = rc};
        if (detail && c->problem_info) {
            p.u.disconnect.props.present |= MQTT_PROP_BIT(MQTT_PROP_REASON_STRING);
            p.u.disconnect.props.reason_string =
                (mqtt_bytes){(const uint8_t *)detail, (uint32_t)strlen(detail)};
        }
        conn__send(c, &p);
    }
    conn__close(c);
}

void conn__fail(mqtt_conn *c, int err, mqtt_close_reason why, const char *detail)
{
    conn_fail_rc(c, err, mqtt_reason_code(err, MQTT_V5, MQTT_DISCONNECT), why, detail);
}

/* ---- CONNECT ------------------------------------------------------------ */

/* Answers a refused CONNECT: CONNACK with the reason, then close. */
static int refuse(mqtt_conn *c, int err, uint8_t rc_v5)
{
    mqtt_packet p = {.type = MQTT_CONNACK};
    p.u.connack.reason = c->version == MQTT_V5 && rc_v5
                             ? rc_v5
                             : mqtt_reason_code(err, c->version, MQTT_CONNACK);
    c->b->stats.closed[MQTT_CLOSE_REFUSED]++;
    if (err == WEIR_EDENIED || err == WEIR_EAUTH)
        c->b->stats.auth_denied++;
    wlog_limited(&bad_input_limit, WLOG_INFO, "mqtt", "connect_refused",
                 "peer=%s error=%s rc=0x%02x", c->peer, weir_err_name(err), p.u.connack.reason);
    conn__send(c, &p);
    conn__close(c);
    return WEIR_OK;
}

/* The protocol level of an undecodable CONNECT, to answer in its dialect. */
static uint8_t peek_level(const uint8_t *pkt, size_t len)
{
    size_t i = 1;
    while (i < len && i < 5 && (pkt[i] & 0x80))
        i++;
    i++;
    if (i + 2 > len)
        return 0;
    size_t nl = ((size_t)pkt[i] << 8) | pkt[i + 1];
    i += 2 + nl;
    return i < len ? pkt[i] : 0;
}

static mqtt_msg *make_will(mqtt_conn *c, const mqtt_connect *cp, uint8_t *rc_v5, int *err)
{
    const uint8_t *t = cp->will_topic.data;
    size_t tn = cp->will_topic.len;
    *rc_v5 = 0;
    if (!mqtt_topic_name_valid(t, tn)) {
        *err = WEIR_ETOPIC;
        return NULL;
    }
    if (cp->will_retain && !c->b->cfg.retain_available) {
        *err = WEIR_EUNSUPPORTED;
        *rc_v5 = MQTT_RC_RETAIN_NOT_SUPPORTED;
        return NULL;
    }
    if ((cp->will_props.present & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) &&
        cp->will_props.payload_format == 1 &&
        !mqtt_utf8_valid(cp->will_payload.data, cp->will_payload.len)) {
        *err = WEIR_EUTF8;
        *rc_v5 = MQTT_RC_PAYLOAD_FORMAT_INVALID;
        return NULL;
    }
    auth_request ar = {.action = AUTH_PUBLISH, .loopback = c->loopback, .topic = t,
                       .topic_len = tn};
    if (auth_check(c->b->auth, &ar)) {
        *err = WEIR_EDENIED;
        return NULL;
    }
    mqtt_msg *w = msg_new(t, tn, cp->will_payload.data, cp->will_payload.len, cp->will_qos,
                          cp->will_retain, c->version == MQTT_V5 ? &cp->will_props : NULL, 0);
    if (!w)
        *err = WEIR_ENOMEM;
    return w;
}

/* Moves the will of a connection that is going away without a clean
 * DISCONNECT: out now, or pending on the session for the will delay. */
static void release_will(mqtt_broker *b, mqtt_conn *c, mqtt_session *s)
{
    mqtt_msg *w = c->will;
    c->will = NULL;
    if (!w)
        return;
    if (!c->will_on_close || b->shutting_down) {
        msg_unref(w);
        return;
    }
    if (c->will_delay_s == 0 || !s || s->expiry_s == 0) {
        broker__publish_will(b, w);
        msg_unref(w);
        return;
    }
    msg_unref(s->will);
    s->will = w;
    s->will_at = weir_mono_ns() + (int64_t)c->will_delay_s * WEIR_NS_PER_S;
}

static void takeover(mqtt_broker *b, mqtt_session *s)
{
    mqtt_conn *old = s->conn;
    if (old->version == MQTT_V5 && old->state == CONN_ACTIVE) {
        mqtt_packet p = {.type = MQTT_DISCONNECT,
                         .u.disconnect.reason = MQTT_RC_SESSION_TAKEN_OVER};
        conn__send(old, &p);
    }
    b->stats.closed[MQTT_CLOSE_TAKEOVER]++;
    wlog_info("mqtt", "takeover", "client=\"%s\" old_peer=%s", s->client_id, old->peer);
    release_will(b, old, s);
    old->s = NULL;
    s->conn = NULL;
    conn__close(old);
}

static void assign_id(mqtt_broker *b, char *out, size_t n)
{
    uint64_t seed = (uint64_t)weir_wall_ns() ^ (b->next_uid << 32) ^ (uintptr_t)out;
    snprintf(out, n, "weir-%016llx", (unsigned long long)XXH3_64bits(&seed, sizeof(seed)));
}

static void send_connack(mqtt_conn *c, bool present, const char *assigned,
                         uint16_t server_ka, bool send_ka, uint32_t expiry, bool send_expiry)
{
    mqtt_broker *b = c->b;
    mqtt_packet p = {.type = MQTT_CONNACK, .u.connack.session_present = present};
    if (c->version == MQTT_V5) {
        mqtt_props *pr = &p.u.connack.props;
        if (b->cfg.receive_maximum < 65535) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM);
            pr->receive_maximum = b->cfg.receive_maximum;
        }
        pr->present |= MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE);
        pr->maximum_packet_size = b->cfg.max_packet_size;
        if (b->cfg.topic_alias_maximum) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
            pr->topic_alias_maximum = b->cfg.topic_alias_maximum;
        }
        if (!b->cfg.retain_available) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_RETAIN_AVAILABLE);
            pr->retain_available = 0;
        }
        if (assigned) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_ASSIGNED_CLIENT_ID);
            pr->assigned_client_id = (mqtt_bytes){(const uint8_t *)assigned,
                                                  (uint32_t)strlen(assigned)};
        }
        if (send_ka) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_SERVER_KEEP_ALIVE);
            pr->server_keep_alive = server_ka;
        }
        if (send_expiry) {
            pr->present |= MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY);
            pr->session_expiry = expiry;
        }
    }
    conn__send(c, &p);
}

int mqtt_conn_set_cert_identity(mqtt_conn *c, const char *cn)
{
    char *copy = cn ? strdup(cn) : NULL;
    if (cn && !copy)
        return WEIR_ENOMEM;
    free(c->cert_identity);
    c->cert_identity = copy;
    return WEIR_OK;
}

static int handle_connect(mqtt_conn *c, const uint8_t *pkt, size_t len)
{
    mqtt_broker *b = c->b;
    mqtt_packet p;
    const char *why = NULL;
    if (c->state != CONN_NEW)
        return WEIR_EPROTO; /* a second CONNECT */
    int rc = mqtt_decode_connect(pkt, len, &p, &why);
    if (rc == WEIR_EVERSION) {
        c->version = peek_level(pkt, len) >= MQTT_V5 ? MQTT_V5 : MQTT_V311;
        return refuse(c, WEIR_EVERSION, MQTT_RC_UNSUPPORTED_VERSION);
    }
    if (rc) {
        conn__fail(c, rc, MQTT_CLOSE_PROTOCOL, why);
        return WEIR_OK;
    }
    const mqtt_connect *cp = &p.u.connect;
    c->version = cp->version;
    bool v5 = cp->version == MQTT_V5;

    if (v5 && (cp->props.present & MQTT_PROP_BIT(MQTT_PROP_AUTH_METHOD)))
        return refuse(c, WEIR_EAUTH, MQTT_RC_BAD_AUTH_METHOD);
    char assigned[32];
    const uint8_t *id = cp->client_id.data;
    size_t idn = cp->client_id.len;
    bool was_assigned = false;
    if (idn == 0) {
        if (!v5 && !cp->clean_start)
            return refuse(c, WEIR_ECLIENTID, 0);
        assign_id(b, assigned, sizeof(assigned));
        id = (const uint8_t *)assigned;
        idn = strlen(assigned);
        was_assigned = true;
    }
    if (b->n_clients >= b->cfg.max_connections)
        return refuse(c, WEIR_EBUSY, MQTT_RC_SERVER_UNAVAILABLE);

    char idz[256];
    size_t zn = idn < sizeof(idz) - 1 ? idn : sizeof(idz) - 1;
    memcpy(idz, id, zn);
    idz[zn] = '\0';
    auth_request ar = {.action = AUTH_CONNECT, .client_id = idz, .loopback = c->loopback};
    char user[256];
    if (cp->has_username) {
        size_t un = cp->username.len < sizeof(user) - 1 ? cp->username.len : sizeof(user) - 1;
        memcpy(user, cp->username.data, un);
        user[un] = '\0';
        ar.username = user;
    }
    if (cp->has_password) {
        ar.password = cp->password.data;
        ar.password_len = cp->password.len;
    }
    rc = auth_check(b->auth, &ar);
    if (rc)
        return refuse(c, rc, 0);

    if (cp->will) {
        uint8_t rc_v5;
        c->will = make_will(c, cp, &rc_v5, &rc);
        if (!c->will)
            return refuse(c, rc, rc_v5);
        c->will_delay_s = v5 ? cp->will_props.will_delay : 0;
    }
    c->will_on_close = true;

    /* Client limits (5.0) and keep-alive. */
    c->client_receive_max = 0;
    c->problem_info = true;
    if (v5) {
        const mqtt_props *pr = &cp->props;
        if (pr->present & MQTT_PROP_BIT(MQTT_PROP_RECEIVE_MAXIMUM))
            c->client_receive_max = pr->receive_maximum;
        if (pr->present & MQTT_PROP_BIT(MQTT_PROP_MAXIMUM_PACKET_SIZE))
            c->client_max_packet = pr->maximum_packet_size;
        if (pr->present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
            c->client_alias_max = pr->topic_alias_maximum;
        if (pr->present & MQTT_PROP_BIT(MQTT_PROP_REQUEST_PROBLEM_INFO))
            c->problem_info = pr->request_problem_info != 0;
    }
    /* A 3.1.1 client cannot be told another keep-alive, so only 5.0 clients
     * are held to max_keepalive (through the server keep-alive property). */
    uint16_t ka = cp->keep_alive;
    bool send_ka = false;
    if (v5 && (ka > b->cfg.max_keepalive || (ka == 0 && b->cfg.max_keepalive < 65535))) {
        ka = (uint16_t)b->cfg.max_keepalive;
        send_ka = true;
    }
    c->keepalive_ms = (uint32_t)ka * 1000u;

    uint32_t expiry = 0;
    bool send_expiry = false;
    if (v5) {
        if (cp->props.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))
            expiry = cp->props.session_expiry;
        if (expiry > b->cfg.max_session_expiry) {
            expiry = b->cfg.max_session_expiry;
            send_expiry = true;
        }
    } else if (!cp->clean_start) {
        expiry = b->cfg.max_session_expiry;
    }

    /* Session: take over, discard or resume. */
    mqtt_session *s = broker__session_find(b, id, idn);
    if (s && s->conn)
        takeover(b, s);
    if (s && cp->clean_start) {
        if (s->will) {
            mqtt_msg *w = s->will;
            s->will = NULL;
            broker__publish_will(b, w);
            msg_unref(w);
        }
        broker__session_destroy(b, s);
        s = NULL;
    }
    bool present = s != NULL;
    if (!s && !(s = broker__session_create(b, id, idn)))
        return refuse(c, WEIR_ENOMEM, 0);
    if (s->will) {
        msg_unref(s->will); /* reconnected within the will delay */
        s->will = NULL;
    }
    s->version = c->version;
    s->expiry_s = expiry;
    s->expire_at = 0;
    s->conn = c;
    c->s = s;
    c->state = CONN_ACTIVE;
    c->connected_wall = weir_wall_ns();
    b->n_clients++;
    b->stats.connects++;
    if (expiry)
        b->dirty = true;
    send_connack(c, present, was_assigned && v5 ? assigned : NULL, ka, send_ka, expiry,
                 send_expiry);
    wlog_debug("mqtt", "connect", "client=\"%s\" peer=%s version=%u clean=%d keepalive=%u",
               s->client_id, c->peer, c->version, cp->clean_start, ka);
    if (c->cert_identity)
        wlog_info("mqtt", "connect_tls_identity", "client=\"%s\" peer=%s identity=\"%s\"",
                  s->client_id, c->peer, c->cert_identity);
    if (present)
        session__resend(b, s);
    return WEIR_OK;
}

/* ---- PUBLISH and its acknowledgements ----------------------------------- */

static int resolve_alias(mqtt_conn *c, mqtt_publish *pub)
{
    uint16_t a = pub->props.topic_alias;
    if (a == 0 || a > c->b->cfg.topic_alias_maximum) {
        conn_fail_rc(c, WEIR_EPROTO, MQTT_RC_TOPIC_ALIAS_INVALID, MQTT_CLOSE_PROTOCOL,
                     "topic alias out of range");
        return WEIR_EPROTO;
    }
    if (!c->alias_in) {
        c->alias_in = calloc((size_t)c->b->cfg.topic_alias_maximum + 1, sizeof(mqtt_bytes));
        if (!c->alias_in)
            return WEIR_ENOMEM;
    }
    mqtt_bytes *slot = &c->alias_in[a];
    if (pub->topic.len) {
        uint8_t *copy = malloc(pub->topic.len);
        if (!copy)
            return WEIR_ENOMEM;
        memcpy(copy, pub->topic.data, pub->topic.len);
        free((void *)slot->data);
        *slot = (mqtt_bytes){copy, pub->topic.len};
        return WEIR_OK;
    }
    if (!slot->data) {
        conn_fail_rc(c, WEIR_EPROTO, MQTT_RC_PROTOCOL_ERROR, MQTT_CLOSE_PROTOCOL,
                     "unknown topic alias");
        return WEIR_EPROTO;
    }
    pub->topic = *slot;
    return WEIR_OK;
}

/* Offers the PUBLISH to the ingest hook. On WEIR_OK *held is the
 * acknowledgement the hook will complete (NULL when none is pending) and
 * *durable tells whether a store took the message. WEIR_EFULL means the
 * PUBLISH was refused and already answered. */
static int ingest(mqtt_conn *c, const mqtt_publish *pub, mqtt_pending_ack **held, bool *durable)
{
    mqtt_broker *b = c->b;
    mqtt_type ack = pub->qos == 2 ? MQTT_PUBREC : MQTT_PUBACK;
    mqtt_pending_ack *a = NULL;
    if (pub->qos) {
        /* Queued not-done now so that acknowledgements keep their order. */
        a = ack_enqueue(c, ack, pub->packet_id, MQTT_RC_SUCCESS, false);
        if (!a)
            return WEIR_ENOMEM;
        b->pending_acks++;
    }
    mqtt_ingest_msg im = {
        .topic = pub->topic.data, .topic_len = pub->topic.len, .payload = pub->payload.data,
        .payload_len = pub->payload.len, .qos = pub->qos, .retain = pub->retain,
        .client_id = c->s->client_id, .arrival_ns = weir_wall_ns(),
    };
    int rc = b->ingest(b->ingest_ctx, &im, (uint64_t)(uintptr_t)a);
    if (rc == WEIR_EAGAIN && a) {
        *held = a;
        *durable = true;
        return WEIR_OK;
    }
    if (a) {
        /* Not held: complete it here, success or refusal. */
        a->done = true;
        b->pending_acks--;
        a->reason = rc == WEIR_OK || rc == WEIR_EAGAIN ? MQTT_RC_SUCCESS : MQTT_RC_QUOTA_EXCEEDED;
        if (rc == WEIR_OK || rc == WEIR_EAGAIN) {
            /* Routed below; its acknowledgement is sent below in order. */
            mqtt_pending_ack **pp = &c->acks_head;
            mqtt_pending_ack *prev = NULL;
            while (*pp != a) {
                prev = *pp;
                pp = &(*pp)->next;
            }
            *pp = a->next;
            if (c->acks_tail == a)
                c->acks_tail = prev;
            free(a);
            return WEIR_OK;
        }
    }
    if (rc == WEIR_OK || rc == WEIR_EAGAIN)
        return WEIR_OK;
    b->stats.ingest_refused++;
    acks_flush(c);
    return WEIR_EFULL;
}

static int handle_publish(mqtt_conn *c, mqtt_packet *p)
{
    mqtt_broker *b = c->b;
    mqtt_session *s = c->s;
    mqtt_publish *pub = &p->u.publish;
    bool v5 = c->version == MQTT_V5;
    mqtt_type ack = pub->qos == 2 ? MQTT_PUBREC : MQTT_PUBACK;
    b->stats.messages_in++;
    c->msgs_in++;
    if (v5 && (pub->props.present & MQTT_PROP_BIT(MQTT_PROP_TOPIC_ALIAS))) {
        int rc = resolve_alias(c, pub);
        if (rc)
            return rc == WEIR_EPROTO ? WEIR_OK : rc;
    }
    if (pub->retain && !b->cfg.retain_available) {
        conn_fail_rc(c, WEIR_EUNSUPPORTED, MQTT_RC_RETAIN_NOT_SUPPORTED, MQTT_CLOSE_PROTOCOL,
                     "retain not supported");
        return WEIR_OK;
    }
    if (pub->qos == 2 && session__rx_qos2_has(s, pub->packet_id)) {
        /* A resend: never routed twice; its PUBREC is either held (sent when
         * the record is durable) or goes out again now. */
        for (mqtt_pending_ack *a = c->acks_head; a; a = a->next)
            if (a->packet_id == pub->packet_id && a->type == MQTT_PUBREC && !a->done)
                return WEIR_OK;
        return ack_publish(c, MQTT_PUBREC, pub->packet_id, 0);
    }
    if (v5 && pub->qos == 2 && s->n_rx_qos2 >= b->cfg.receive_maximum) {
        conn_fail_rc(c, WEIR_EPROTO, MQTT_RC_RECEIVE_MAX_EXCEEDED, MQTT_CLOSE_PROTOCOL,
                     "receive maximum exceeded");
        return WEIR_OK;
    }
    if (v5 && (pub->props.present & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) &&
        pub->props.payload_format == 1 &&
        !mqtt_utf8_valid(pub->payload.data, pub->payload.len)) {
        if (pub->qos == 0) {
            conn_fail_rc(c, WEIR_EUTF8, MQTT_RC_PAYLOAD_FORMAT_INVALID, MQTT_CLOSE_PROTOCOL,
                         "payload is not UTF-8");
            return WEIR_OK;
        }
        return ack_publish(c, ack, pub->packet_id, MQTT_RC_PAYLOAD_FORMAT_INVALID);
    }
    if (b->auth) {
        auth_request ar = {.action = AUTH_PUBLISH, .client_id = s->client_id,
                           .loopback = c->loopback, .topic = pub->topic.data,
                           .topic_len = pub->topic.len};
        if (auth_check(b->auth, &ar)) {
            b->stats.auth_denied++;
            b->stats.dropped[MQTT_DROP_DENIED]++;
            if (pub->qos == 0)
                return WEIR_OK;
            return ack_publish(c, ack, pub->packet_id, MQTT_RC_NOT_AUTHORIZED);
        }
    }
    mqtt_pending_ack *held = NULL;
    bool durable = false;
    if (b->ingest) {
        int rc = ingest(c, pub, &held, &durable);
        if (rc)
            return rc == WEIR_EFULL ? WEIR_OK : rc;
    }
    mqtt_msg *m = msg_new(pub->topic.data, pub->topic.len, pub->payload.data, pub->payload.len,
                          pub->qos, pub->retain, v5 ? &pub->props : NULL, s->uid);
    if (!m)
        return WEIR_ENOMEM;
    if (pub->retain)
        broker__retain(b, m);
    broker__route(b, m);
    msg_unref(m);
    uint8_t reason =
        b->n_matches || durable ? MQTT_RC_SUCCESS : MQTT_RC_NO_MATCHING_SUBSCRIBERS;
    if (pub->qos == 2) {
        int rc = session__rx_qos2_add(s, pub->packet_id);
        if (rc)
            return rc;
        if (s->expiry_s)
            b->dirty = true;
    }
    if (held)
        return WEIR_OK; /* the hook's done call sends it */
    if (pub->qos)
        return ack_publish(c, ack, pub->packet_id, reason);
    return WEIR_OK;
}

static int handle_puback(mqtt_conn *c, mqtt_packet *p)
{
    mqtt_inflight *f = session__inflight_find(c->s, p->u.ack.packet_id);
    if (f && f->state == INF_WAIT_PUBACK) {
        session__inflight_remove(c->b, c->s, f);
        session__drain(c->b, c->s);
    }
    return WEIR_OK;
}

static int handle_pubrec(mqtt_conn *c, mqtt_packet *p)
{
    uint16_t pid = p->u.ack.packet_id;
    mqtt_inflight *f = session__inflight_find(c->s, pid);
    if (!f || f->state != INF_WAIT_PUBREC)
        return send_ack(c, MQTT_PUBREL, pid, f ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
    if (p->u.ack.reason >= 0x80) {
        session__inflight_remove(c->b, c->s, f);
        session__drain(c->b, c->s);
        return WEIR_OK;
    }
    msg_unref(f->item.msg);
    f->item.msg = NULL;
    f->state = INF_WAIT_PUBCOMP;
    return send_ack(c, MQTT_PUBREL, pid, 0);
}

static int handle_pubrel(mqtt_conn *c, mqtt_packet *p)
{
    uint16_t pid = p->u.ack.packet_id;
    bool found = session__rx_qos2_remove(c->s, pid);
    if (found && c->s->expiry_s)
        c->b->dirty = true;
    return send_ack(c, MQTT_PUBCOMP, pid, found ? 0 : MQTT_RC_PACKET_ID_NOT_FOUND);
}

static int handle_pubcomp(mqtt_conn *c, mqtt_packet *p)
{
    mqtt_inflight *f = session__inflight_find(c->s, p->u.ack.packet_id);
    if (f && f->state == INF_WAIT_PUBCOMP) {
        session__inflight_remove(c->b, c->s, f);
        session__drain(c->b, c->s);
    }
    return WEIR_OK;
}

/* ---- SUBSCRIBE / UNSUBSCRIBE -------------------------------------------- */

typedef struct retained_ctx {
    mqtt_broker *b;
    mqtt_session *s;
    uint8_t qos;
    uint32_t sub_id;
} retained_ctx;

static void send_retained(void *msg, void *arg)
{
    retained_ctx *rc = arg;
    mqtt_msg *m = msg;
    mqtt_qitem it = {.msg = msg_ref(m), .qos = m->qos < rc->qos ? m->qos : rc->qos,
                     .retain = true};
    if (rc->sub_id)
        it.sub_ids[it.n_sub_ids++] = rc->sub_id;
    session__deliver(rc->b, rc->s, &it);
}

/* Grants one subscription; returns the SUBACK reason code and whether the
 * retained messages should follow. */
static uint8_t subscribe_one(mqtt_conn *c, const mqtt_sub_entry *e, uint32_t sub_id,
                             bool *want_retained, int *fatal)
{
    mqtt_broker *b = c->b;
    mqtt_session *s = c->s;
    uint8_t v = c->version;
    mqtt_bytes group, inner;
    *want_retained = false;
    if (!mqtt_topic_filter_valid(e->filter.data, e->filter.len))
        return mqtt_reason_code(WEIR_ETOPIC, v, MQTT_SUBACK);
    bool shared = mqtt_topic_share_split(e->filter.data, e->filter.len, &group, &inner);
    if (shared && (e->options & MQTT_SUBOPT_NO_LOCAL)) {
        *fatal = WEIR_EPROTO;
        return 0;
    }
    auth_request ar = {.action = AUTH_SUBSCRIBE, .client_id = s->client_id,
                       .loopback = c->loopback, .topic = e->filter.data,
                       .topic_len = e->filter.len};
    if (auth_check(b->auth, &ar)) {
        b->stats.auth_denied++;
        return mqtt_reason_code(WEIR_EDENIED, v, MQTT_SUBACK);
    }
    if (s->n_subs >= b->cfg.max_subscriptions) {
        bool known = false;
        for (uint32_t i = 0; i < s->n_subs && !known; i++)
            known = s->subs[i].len == e->filter.len &&
                    !memcmp(s->subs[i].filter, e->filter.data, e->filter.len);
        if (!known)
            return mqtt_reason_code(WEIR_EQUOTA, v, MQTT_SUBACK);
    }
    uint8_t opts = v == MQTT_V5 ? e->options : MQTT_SUBOPT_QOS(e->options);
    mqtt_sub sub = {.owner = s, .options = opts, .sub_id = sub_id};
    bool existed = false;
    if (mqtt_subtree_add(b->subs, e->filter.data, e->filter.len, &sub, &existed) ||
        session__sub_add(s, e->filter.data, e->filter.len, opts, sub_id)) {
        mqtt_subtree_remove(b->subs, e->filter.data, e->filter.len, s);
        return mqtt_reason_code(WEIR_ENOMEM, v, MQTT_SUBACK);
    }
    if (s->expiry_s)
        b->dirty = true;
    uint8_t rh = v == MQTT_V5 ? MQTT_SUBOPT_RH(opts) : 0;
    *want_retained = !shared && (rh == 0 || (rh == 1 && !existed));
    return MQTT_SUBOPT_QOS(opts);
}

static int handle_subscribe(mqtt_conn *c, mqtt_packet *p)
{
    mqtt_subscribe *sp = &p->u.subscribe;
    uint8_t small[64];
    uint8_t *reasons = sp->n_entries <= sizeof(small) ? small : malloc(sp->n_entries);
    uint8_t *want = sp->n_entries <= sizeof(small) / 2 ? small + 32 : malloc(sp->n_entries);
    int rc = WEIR_OK;
    if (!reasons || !want) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    uint32_t sub_id = sp->props.n_sub_ids ? sp->props.sub_ids[0] : 0;
    mqtt_sub_entry e;
    uint32_t pos = 0, i = 0;
    while (mqtt_sub_next(sp, &pos, &e)) {
        bool w;
        reasons[i] = subscribe_one(c, &e, sub_id, &w, &rc);
        if (rc)
            goto cleanup;
        want[i++] = w;
    }
    mqtt_packet ack = {.type = MQTT_SUBACK};
    ack.u.suback.packet_id = sp->packet_id;
    ack.u.suback.reasons = (mqtt_bytes){reasons, i};
    rc = conn__send(c, &ack);
    if (rc)
        goto cleanup;
    pos = 0;
    i = 0;
    while (mqtt_sub_next(sp, &pos, &e)) {
        if (want[i] && reasons[i] < 0x80) {
            retained_ctx rctx = {c->b, c->s, reasons[i], sub_id};
            mqtt_retain_match(c->b->retained, e.filter.data, e.filter.len, send_retained,
                              &rctx);
        }
        i++;
    }
cleanup:
    if (reasons != small)
        free(reasons);
    if (want != small + 32)
        free(want);
    return rc;
}

static int handle_unsubscribe(mqtt_conn *c, mqtt_packet *p)
{
    mqtt_unsubscribe *up = &p->u.unsubscribe;
    uint8_t small[64];
    uint8_t *reasons = up->n_entries <= sizeof(small) ? small : malloc(up->n_entries);
    if (!reasons)
        return WEIR_ENOMEM;
    mqtt_bytes f;
    uint32_t pos = 0, i = 0;
    while (mqtt_unsub_next(up, &pos, &f)) {
        bool had = session__sub_remove(c->s, f.data, f.len);
        if (had)
            mqtt_subtree_remove(c->b->subs, f.data, f.len, c->s);
        reasons[i++] = had ? MQTT_RC_SUCCESS : MQTT_RC_NO_SUBSCRIPTION_EXISTED;
    }
    if (c->s->expiry_s)
        c->b->dirty = true;
    mqtt_packet ack = {.type = MQTT_UNSUBACK};
    ack.u.suback.packet_id = up->packet_id;
    if (c->version == MQTT_V5)
        ack.u.suback.reasons = (mqtt_bytes){reasons, i};
    int rc = conn__send(c, &ack);
    if (reasons != small)
        free(reasons);
    return rc;
}

/* ---- The rest ----------------------------------------------------------- */

static int handle_pingreq(mqtt_conn *c, mqtt_packet *p)
{
    (void)p;
    mqtt_packet r = {.type = MQTT_PINGRESP};
    return conn__send(c, &r);
}

static int handle_disconnect(mqtt_conn *c, mqtt_packet *p)
{
    mqtt_disconnect *d = &p->u.disconnect;
    c->will_on_close = c->version == MQTT_V5 && d->reason == MQTT_RC_DISCONNECT_WITH_WILL;
    if (c->version == MQTT_V5 && (d->props.present & MQTT_PROP_BIT(MQTT_PROP_SESSION_EXPIRY))) {
        if (c->s->expiry_s == 0 && d->props.session_expiry != 0) {
            c->will_on_close = true; /* a protocol error is not a clean close */
            conn__fail(c, WEIR_EPROTO, MQTT_CLOSE_PROTOCOL,
                       "session expiry set on DISCONNECT after 0 at CONNECT");
            return WEIR_OK;
        }
        uint32_t e = d->props.session_expiry;
        c->s->expiry_s = e > c->b->cfg.max_session_expiry ? c->b->cfg.max_session_expiry : e;
    }
    conn__close(c);
    return WEIR_OK;
}

static int handle_unexpected(mqtt_conn *c, mqtt_packet *p)
{
    (void)c;
    (void)p;
    return WEIR_EPROTO;
}

typedef int (*packet_handler)(mqtt_conn *c, mqtt_packet *p);

/* Packets a server receives once connected, by type; others are protocol
 * errors. CONNECT is handled before decoding, as its version is unknown. */
static const packet_handler handlers[16] = {
    [MQTT_PUBLISH] = handle_publish,         [MQTT_PUBACK] = handle_puback,
    [MQTT_PUBREC] = handle_pubrec,           [MQTT_PUBREL] = handle_pubrel,
    [MQTT_PUBCOMP] = handle_pubcomp,         [MQTT_SUBSCRIBE] = handle_subscribe,
    [MQTT_UNSUBSCRIBE] = handle_unsubscribe, [MQTT_PINGREQ] = handle_pingreq,
    [MQTT_DISCONNECT] = handle_disconnect,   [MQTT_CONNACK] = handle_unexpected,
    [MQTT_SUBACK] = handle_unexpected,       [MQTT_UNSUBACK] = handle_unexpected,
    [MQTT_PINGRESP] = handle_unexpected,     [MQTT_AUTH] = handle_unexpected,
};

static void handle_packet(mqtt_conn *c, const uint8_t *pkt, size_t len)
{
    int type = pkt[0] >> 4;
    c->b->stats.packets_in[type]++;
    if (type == MQTT_CONNECT) {
        int rc = handle_connect(c, pkt, len);
        if (rc)
            conn__fail(c, rc, MQTT_CLOSE_PROTOCOL, "unexpected CONNECT");
        return;
    }
    if (c->state != CONN_ACTIVE) {
        conn__fail(c, WEIR_EPROTO, MQTT_CLOSE_PROTOCOL, "first packet was not CONNECT");
        return;
    }
    mqtt_packet p;
    const char *why = NULL;
    int rc = mqtt_decode(pkt, len, c->version, &p, &why);
    if (!rc && handlers[type])
        rc = handlers[type](c, &p);
    else if (!rc)
        rc = WEIR_EPROTO;
    if (rc)
        conn__fail(c, rc, MQTT_CLOSE_PROTOCOL, why ? why : weir_strerror(rc));
}

/* Frames and handles every whole packet in data; returns bytes consumed. */
static size_t process(mqtt_conn *c, const uint8_t *data, size_t len)
{
    size_t off = 0;
    while (off < len && c->state != CONN_CLOSING) {
        size_t pkt_len;
        int rc = mqtt_frame(data + off, len - off, c->b->cfg.max_packet_size, &pkt_len);
        if (rc == WEIR_EAGAIN)
            break;
        if (rc) {
            conn__fail(c, rc, rc == WEIR_ETOOBIG ? MQTT_CLOSE_TOO_LARGE : MQTT_CLOSE_PROTOCOL,
                       rc == WEIR_ETOOBIG ? "packet larger than maximum packet size"
                                          : "malformed remaining length");
            return len;
        }
        handle_packet(c, data + off, pkt_len);
        off += pkt_len;
    }
    return off;
}

/* ---- Transport entry points --------------------------------------------- */

mqtt_conn *mqtt_conn_open(mqtt_broker *b, const mqtt_transport *t, void *io, const char *peer,
                          bool loopback)
{
    if (b->shutting_down)
        return NULL;
    mqtt_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->b = b;
    c->t = t;
    c->io = io;
    c->loopback = loopback;
    snprintf(c->peer, sizeof(c->peer), "%s", peer ? peer : "?");
    buf_init(&c->in, (size_t)b->cfg.max_packet_size + 8);
    c->opened_at = c->last_rx = weir_mono_ns();
    c->next = b->conns;
    if (b->conns)
        b->conns->prev = c;
    b->conns = c;
    b->n_conns++;
    return c;
}

void mqtt_conn_input(mqtt_conn *c, const uint8_t *data, size_t len)
{
    if (c->state == CONN_CLOSING || !len)
        return;
    c->b->stats.bytes_in += len;
    c->last_rx = weir_mono_ns();
    if (buf_used(&c->in) == 0) {
        size_t used = process(c, data, len);
        if (used < len && c->state != CONN_CLOSING && buf_append(&c->in, data + used, len - used))
            conn__fail(c, WEIR_ETOOBIG, MQTT_CLOSE_TOO_LARGE, "packet too large");
        return;
    }
    if (buf_append(&c->in, data, len)) {
        conn__fail(c, WEIR_ETOOBIG, MQTT_CLOSE_TOO_LARGE, "packet too large");
        return;
    }
    size_t used = process(c, buf_head(&c->in), buf_used(&c->in));
    buf_consume(&c->in, used);
}

void mqtt_conn_drained(mqtt_conn *c)
{
    if (c->s && c->state == CONN_ACTIVE)
        session__drain(c->b, c->s);
}

void mqtt_conn_closed(mqtt_conn *c)
{
    mqtt_broker *b = c->b;
    if (c->prev)
        c->prev->next = c->next;
    else
        b->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    b->n_conns--;
    if (c->connected_wall)
        b->n_clients--;
    mqtt_session *s = c->s;
    if (s) {
        s->conn = NULL;
        c->s = NULL;
        release_will(b, c, s);
        if (s->expiry_s == 0) {
            broker__session_destroy(b, s);
        } else {
            s->expire_at = s->expiry_s == UINT32_MAX
                               ? 0
                               : weir_mono_ns() + (int64_t)s->expiry_s * WEIR_NS_PER_S;
            b->dirty = true;
        }
    }
    for (mqtt_pending_ack *a = c->acks_head, *next; a; a = next) {
        next = a->next;
        if (a->done)
            free(a);
        else
            a->conn = NULL; /* freed by mqtt_broker_ingest_done */
    }
    msg_unref(c->will);
    free(c->cert_identity);
    if (c->alias_in) {
        for (uint32_t i = 0; i <= b->cfg.topic_alias_maximum; i++)
            free((void *)c->alias_in[i].data);
        free(c->alias_in);
    }
    if (c->alias_out) {
        for (uint32_t i = 0; i < c->alias_out_cap; i++)
            free(c->alias_out[i].topic);
        free(c->alias_out);
    }
    buf_free(&c->in);
    free(c);
}
