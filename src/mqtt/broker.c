/* broker.c -- the broker's life: sessions, routing of messages to
 * subscribers, retained messages, wills, and the periodic tick.
 *
 * Routing one PUBLISH: the subscription tree calls back once per matching
 * subscription; overlapping subscriptions of one session are merged into a
 * single delivery at the highest granted QoS carrying every subscription
 * identifier (3.1.1 requires one delivery; 5.0 allows it), while each shared
 * group gets its own delivery to one member. Merging uses a generation
 * stamp on the session instead of a set, so routing allocates nothing but
 * the growth of one scratch array.
 */
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "mqtt/brokerInt.h"
#include "mqtt/reason.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ---- Messages ----------------------------------------------------------- */

mqtt_msg *msg_new(const uint8_t *topic, size_t topic_len, const uint8_t *payload,
                  size_t payload_len, uint8_t qos, bool retain, const mqtt_props *props,
                  uint64_t origin)
{
    size_t extra = topic_len + payload_len;
    if (props) {
        extra += props->content_type.len + props->response_topic.len +
                 props->correlation_data.len + props->user_props.len;
    }
    mqtt_msg *m = malloc(sizeof(*m) + extra);
    if (!m)
        return NULL;
    memset(m, 0, sizeof(*m));
    m->refs = 1;
    m->qos = qos;
    m->retain = retain;
    m->origin = origin;
    m->topic_len = (uint16_t)topic_len;
    m->payload_len = (uint32_t)payload_len;
    m->size = sizeof(*m) + extra;
    uint8_t *p = m->data;
    m->topic = p;
    memcpy(p, topic, topic_len);
    p += topic_len;
    m->payload = p;
    if (payload_len)
        memcpy(p, payload, payload_len);
    p += payload_len;
    if (!props)
        return m;
    const mqtt_bytes *src[] = {&props->content_type, &props->response_topic,
                               &props->correlation_data, &props->user_props};
    mqtt_bytes *dst[] = {&m->content_type, &m->response_topic, &m->correlation_data,
                         &m->user_props};
    uint64_t bits[] = {MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE),
                       MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC),
                       MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA),
                       MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY)};
    for (int i = 0; i < 4; i++) {
        /* A zero-length correlation data or content type is still present. */
        if (!(props->present & bits[i]) && !src[i]->len)
            continue;
        if (src[i]->len)
            memcpy(p, src[i]->data, src[i]->len);
        dst[i]->data = p;
        dst[i]->len = src[i]->len;
        p += src[i]->len;
    }
    if (props->present & MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT)) {
        m->has_payload_format = true;
        m->payload_format = props->payload_format;
    }
    if (props->present & MQTT_PROP_BIT(MQTT_PROP_MESSAGE_EXPIRY))
        m->expire_at = weir_wall_ns() + (int64_t)props->message_expiry * WEIR_NS_PER_S;
    return m;
}

void msg_unref(mqtt_msg *m)
{
    if (m && --m->refs == 0)
        free(m);
}

/* ---- Lifecycle ---------------------------------------------------------- */

mqtt_broker *mqtt_broker_new(const mqtt_broker_config *cfg, auth *a)
{
    mqtt_broker *b = calloc(1, sizeof(*b));
    if (!b)
        return NULL;
    b->cfg = *cfg;
    if (b->cfg.receive_maximum == 0)
        b->cfg.receive_maximum = 65535;
    if (b->cfg.max_queued_messages == 0)
        b->cfg.max_queued_messages = 1;
    b->auth = a;
    b->next_uid = 1;
    b->stab_cap = 1024;
    b->stab = calloc(b->stab_cap, sizeof(*b->stab));
    b->subs = mqtt_subtree_new();
    b->retained = mqtt_retain_new();
    if (!b->stab || !b->subs || !b->retained) {
        mqtt_broker_free(b);
        return NULL;
    }
    return b;
}

static void release_retained(void *msg, void *arg)
{
    (void)arg;
    msg_unref(msg);
}

void mqtt_broker_free(mqtt_broker *b)
{
    if (!b)
        return;
    /* Connections must have been closed by the transports first; any left
     * are detached so that no session points at freed memory. */
    while (b->conns) {
        mqtt_conn *c = b->conns;
        b->conns = c->next;
        if (c->s)
            c->s->conn = NULL;
        buf_free(&c->in);
        msg_unref(c->will);
        free(c);
    }
    for (uint32_t i = 0; b->stab && i < b->stab_cap; i++)
        while (b->stab[i])
            broker__session_destroy(b, b->stab[i]);
    free(b->stab);
    if (b->retained)
        mqtt_retain_free(b->retained, release_retained, NULL);
    mqtt_subtree_free(b->subs);
    free(b->matches);
    free(b);
}

/* ---- Session table ------------------------------------------------------ */

static uint32_t id_slot(const mqtt_broker *b, const uint8_t *id, size_t n)
{
    return (uint32_t)(XXH3_64bits(id, n) & (b->stab_cap - 1));
}

mqtt_session *broker__session_find(mqtt_broker *b, const uint8_t *id, size_t n)
{
    for (mqtt_session *s = b->stab[id_slot(b, id, n)]; s; s = s->hnext)
        if (s->id_len == n && memcmp(s->client_id, id, n) == 0)
            return s;
    return NULL;
}

static void stab_grow(mqtt_broker *b)
{
    uint32_t cap = b->stab_cap * 2;
    mqtt_session **t = calloc(cap, sizeof(*t));
    if (!t)
        return; /* keep the smaller table: slower, still correct */
    uint32_t old_cap = b->stab_cap;
    mqtt_session **old = b->stab;
    b->stab = t;
    b->stab_cap = cap;
    for (uint32_t i = 0; i < old_cap; i++)
        while (old[i]) {
            mqtt_session *s = old[i];
            old[i] = s->hnext;
            uint32_t slot = id_slot(b, (uint8_t *)s->client_id, s->id_len);
            s->hnext = t[slot];
            t[slot] = s;
        }
    free(old);
}

mqtt_session *broker__session_create(mqtt_broker *b, const uint8_t *id, size_t n)
{
    mqtt_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->client_id = malloc(n + 1);
    if (!s->client_id) {
        free(s);
        return NULL;
    }
    memcpy(s->client_id, id, n);
    s->client_id[n] = '\0';
    s->id_len = (uint16_t)n;
    s->uid = b->next_uid++;
    if (b->n_sessions >= b->stab_cap)
        stab_grow(b);
    uint32_t slot = id_slot(b, id, n);
    s->hnext = b->stab[slot];
    b->stab[slot] = s;
    b->n_sessions++;
    return s;
}

void broker__session_destroy(mqtt_broker *b, mqtt_session *s)
{
    mqtt_session **pp = &b->stab[id_slot(b, (uint8_t *)s->client_id, s->id_len)];
    while (*pp && *pp != s)
        pp = &(*pp)->hnext;
    if (*pp)
        *pp = s->hnext;
    b->n_sessions--;
    for (uint32_t i = 0; i < s->n_subs; i++) {
        mqtt_subtree_remove(b->subs, (uint8_t *)s->subs[i].filter, s->subs[i].len, s);
        free(s->subs[i].filter);
    }
    session__clear_delivery_state(b, s);
    if (s->conn)
        s->conn->s = NULL;
    if (s->expiry_s)
        b->dirty = true;
    msg_unref(s->will);
    free(s->subs);
    free(s->inflight);
    free(s->q);
    free(s->rx_qos2);
    free(s->client_id);
    free(s);
}

/* ---- Routing ------------------------------------------------------------ */

static mqtt_match *match_slot(mqtt_broker *b)
{
    if (b->n_matches == b->cap_matches) {
        uint32_t cap = b->cap_matches ? b->cap_matches * 2 : 64;
        mqtt_match *m = realloc(b->matches, cap * sizeof(*m));
        if (!m)
            return NULL;
        b->matches = m;
        b->cap_matches = cap;
    }
    return &b->matches[b->n_matches++];
}

static void on_match(const mqtt_sub *sub, bool shared, void *arg)
{
    mqtt_broker *b = arg;
    mqtt_session *s = sub->owner;
    uint8_t qos = MQTT_SUBOPT_QOS(sub->options);
    if (!shared && (sub->options & MQTT_SUBOPT_NO_LOCAL) && s->uid == b->origin)
        return;
    if (!shared && s->match_gen == b->match_gen) {
        mqtt_match *m = &b->matches[s->match_idx];
        if (qos > m->qos)
            m->qos = qos;
        m->rap |= (sub->options & MQTT_SUBOPT_RAP) != 0;
        if (sub->sub_id && m->n_sub_ids < MQTT_QITEM_SUB_IDS)
            m->sub_ids[m->n_sub_ids++] = sub->sub_id;
        return;
    }
    mqtt_match *m = match_slot(b);
    if (!m)
        return;
    m->s = s;
    m->qos = qos;
    m->rap = (sub->options & MQTT_SUBOPT_RAP) != 0;
    m->n_sub_ids = 0;
    if (sub->sub_id)
        m->sub_ids[m->n_sub_ids++] = sub->sub_id;
    if (!shared) {
        s->match_gen = b->match_gen;
        s->match_idx = b->n_matches - 1;
    }
}

static bool on_eligible(void *owner, void *arg)
{
    (void)arg;
    mqtt_session *s = owner;
    return s->conn && s->conn->state == CONN_ACTIVE;
}

/* Delivers `m` to every matching session. Borrows m. */
void broker__route(mqtt_broker *b, mqtt_msg *m)
{
    b->match_gen++;
    b->n_matches = 0;
    b->origin = m->origin;
    mqtt_subtree_match(b->subs, m->topic, m->topic_len, on_match, on_eligible, b);
    for (uint32_t i = 0; i < b->n_matches; i++) {
        mqtt_match *mt = &b->matches[i];
        mqtt_qitem it = {
            .msg = msg_ref(m),
            .qos = m->qos < mt->qos ? m->qos : mt->qos,
            .retain = mt->rap && m->retain,
            .n_sub_ids = mt->n_sub_ids,
        };
        memcpy(it.sub_ids, mt->sub_ids, sizeof(it.sub_ids));
        session__deliver(b, mt->s, &it);
    }
}

/* Stores or clears the retained message for m's topic. Borrows m. */
int broker__retain(mqtt_broker *b, mqtt_msg *m)
{
    int err = WEIR_OK;
    mqtt_msg *keep = m->payload_len ? msg_ref(m) : NULL;
    void *old = mqtt_retain_set(b->retained, m->topic, m->topic_len, keep, &err);
    if (err) {
        msg_unref(keep);
        return err;
    }
    msg_unref(old);
    b->dirty = true;
    return WEIR_OK;
}

void broker__publish_will(mqtt_broker *b, mqtt_msg *will)
{
    if (will->expire_at && weir_wall_ns() >= will->expire_at) {
        b->stats.dropped[MQTT_DROP_EXPIRED]++;
        return;
    }
    if (will->retain)
        broker__retain(b, will);
    broker__route(b, will);
}

int mqtt_broker_publish(mqtt_broker *b, const char *topic, const void *payload, size_t len,
                        int qos, bool retain)
{
    size_t tn = strlen(topic);
    if (!mqtt_topic_name_valid((const uint8_t *)topic, tn) || qos < 0 || qos > 2 ||
        tn > 65535)
        return WEIR_EINVAL;
    mqtt_msg *m = msg_new((const uint8_t *)topic, tn, payload, len, (uint8_t)qos, retain, NULL, 0);
    if (!m)
        return WEIR_ENOMEM;
    int rc = WEIR_OK;
    if (retain)
        rc = broker__retain(b, m);
    broker__route(b, m);
    msg_unref(m);
    return rc;
}

/* ---- Time --------------------------------------------------------------- */

static void tick_conns(mqtt_broker *b, int64_t now)
{
    for (mqtt_conn *c = b->conns, *next; c; c = next) {
        next = c->next;
        if ((c->state == CONN_NEW || c->state == CONN_AUTHING) &&
            now - c->opened_at > MQTT_CONNECT_TIMEOUT_NS) {
            conn__fail(c, WEIR_ETIMEDOUT, MQTT_CLOSE_KEEPALIVE, "no CONNECT in time");
        } else if (c->state == CONN_ACTIVE && c->keepalive_ms &&
                   now - c->last_rx > (int64_t)c->keepalive_ms * 1500000LL) {
            conn__fail(c, WEIR_ETIMEDOUT, MQTT_CLOSE_KEEPALIVE, "keep-alive timeout");
        }
    }
}

static void tick_sessions(mqtt_broker *b, int64_t now)
{
    for (uint32_t i = 0; i < b->stab_cap; i++) {
        for (mqtt_session *s = b->stab[i], *next; s; s = next) {
            next = s->hnext;
            if (s->conn)
                continue;
            bool ends = s->expire_at && now >= s->expire_at;
            if (s->will && (ends || now >= s->will_at)) {
                mqtt_msg *w = s->will;
                s->will = NULL;
                broker__publish_will(b, w);
                msg_unref(w);
            }
            if (ends) {
                wlog_debug("mqtt", "session_expired", "client=\"%s\"", s->client_id);
                broker__session_destroy(b, s);
            }
        }
    }
}

void mqtt_broker_tick(mqtt_broker *b)
{
    int64_t now = weir_mono_ns();
    tick_conns(b, now);
    tick_sessions(b, now);
}

void mqtt_broker_shutdown(mqtt_broker *b)
{
    b->shutting_down = true;
    for (mqtt_conn *c = b->conns; c; c = c->next) {
        if (c->state == CONN_CLOSING)
            continue;
        if (c->state == CONN_ACTIVE && c->version == MQTT_V5) {
            mqtt_packet p = {.type = MQTT_DISCONNECT,
                             .u.disconnect.reason = MQTT_RC_SERVER_SHUTTING_DOWN};
            conn__send(c, &p);
        }
        c->will_on_close = false;
        conn__close(c);
    }
}

/* ---- Introspection ------------------------------------------------------ */

const mqtt_stats *mqtt_broker_stats(const mqtt_broker *b)
{
    return &b->stats;
}

void mqtt_broker_gauges(const mqtt_broker *b, mqtt_gauges *out)
{
    out->connections = b->n_conns;
    out->clients = b->n_clients;
    out->sessions = b->n_sessions;
    out->subscriptions = mqtt_subtree_count(b->subs);
    out->retained = mqtt_retain_count(b->retained);
    out->queued_messages = b->queued_msgs;
    out->queued_bytes = b->queued_bytes;
    out->inflight = b->inflight;
}

bool mqtt_broker_dirty(const mqtt_broker *b)
{
    return b->dirty;
}

const char *mqtt_drop_name(mqtt_drop d)
{
    static const char *const names[MQTT_DROP__COUNT] = {
        [MQTT_DROP_QUEUE_FULL] = "queue_full",     [MQTT_DROP_QUEUE_MEMORY] = "queue_memory",
        [MQTT_DROP_OUTBUF_FULL] = "outbuf_full",   [MQTT_DROP_EXPIRED] = "expired",
        [MQTT_DROP_TOO_LARGE] = "too_large",       [MQTT_DROP_OFFLINE_QOS0] = "offline_qos0",
        [MQTT_DROP_DENIED] = "denied",
    };
    return (unsigned)d < MQTT_DROP__COUNT ? names[d] : "unknown";
}

const char *mqtt_close_name(mqtt_close_reason r)
{
    static const char *const names[MQTT_CLOSE__COUNT] = {
        [MQTT_CLOSE_PROTOCOL] = "protocol",   [MQTT_CLOSE_TOO_LARGE] = "too_large",
        [MQTT_CLOSE_KEEPALIVE] = "keepalive", [MQTT_CLOSE_TAKEOVER] = "takeover",
        [MQTT_CLOSE_REFUSED] = "refused",     [MQTT_CLOSE_SLOW] = "slow",
        [MQTT_CLOSE_INGEST] = "ingest",
    };
    return (unsigned)r < MQTT_CLOSE__COUNT ? names[r] : "unknown";
}
