/* session.c -- a session's delivery state: the queue of messages waiting to
 * be sent, the in-flight window of QoS 1/2 messages waiting for their
 * acknowledgement, inbound QoS 2 packet ids waiting for PUBREL, and the list
 * of its subscriptions.
 *
 * Ordering: a QoS 1/2 message goes straight out only when the queue is empty
 * and the window has room, so messages leave in the order they were routed
 * (spec 4.6). The queue is a ring that grows up to max_queued_messages; when
 * it is full the oldest entry is dropped, because for sensor readings the
 * newest value is the one worth keeping.
 */
#include "base/err.h"
#include "base/clock.h"
#include "mqtt/brokerInt.h"

#include <stdlib.h>
#include <string.h>

/* ---- Queue -------------------------------------------------------------- */

static void qitem_release(mqtt_broker *b, mqtt_qitem *it)
{
    if (it->msg) {
        msg_unref(it->msg);
        it->msg = NULL;
    }
    (void)b;
}

static int queue_grow(mqtt_session *s, uint32_t limit)
{
    uint32_t cap = s->q_cap ? s->q_cap * 2 : 16;
    if (cap > limit)
        cap = limit;
    if (cap <= s->q_cap)
        return WEIR_EFULL;
    mqtt_qitem *q = malloc(cap * sizeof(*q));
    if (!q)
        return WEIR_ENOMEM;
    for (uint32_t i = 0; i < s->q_len; i++)
        q[i] = s->q[(s->q_head + i) % s->q_cap];
    free(s->q);
    s->q = q;
    s->q_cap = cap;
    s->q_head = 0;
    return WEIR_OK;
}

static mqtt_qitem *queue_front(mqtt_session *s)
{
    return s->q_len ? &s->q[s->q_head] : NULL;
}

static void queue_pop(mqtt_broker *b, mqtt_session *s, bool release)
{
    mqtt_qitem *it = &s->q[s->q_head];
    b->queued_msgs--;
    b->queued_bytes -= it->msg->size;
    if (release)
        qitem_release(b, it);
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
}

/* Takes over the item's message reference, or releases it on failure. */
int session__enqueue(mqtt_broker *b, mqtt_session *s, mqtt_qitem *item)
{
    if (b->queued_bytes + item->msg->size > b->cfg.max_queued_bytes) {
        b->stats.dropped[MQTT_DROP_QUEUE_MEMORY]++;
        qitem_release(b, item);
        return WEIR_EFULL;
    }
    if (s->q_len >= b->cfg.max_queued_messages) {
        if (!s->q_len) {
            qitem_release(b, item);
            return WEIR_EFULL;
        }
        b->stats.dropped[MQTT_DROP_QUEUE_FULL]++;
        queue_pop(b, s, true);
    }
    if (s->q_len == s->q_cap) {
        int rc = queue_grow(s, b->cfg.max_queued_messages);
        if (rc) {
            b->stats.dropped[rc == WEIR_ENOMEM ? MQTT_DROP_QUEUE_MEMORY : MQTT_DROP_QUEUE_FULL]++;
            qitem_release(b, item);
            return rc;
        }
    }
    s->q[(s->q_head + s->q_len) % s->q_cap] = *item;
    s->q_len++;
    b->queued_msgs++;
    b->queued_bytes += item->msg->size;
    if (s->expiry_s)
        b->dirty = true;
    return WEIR_OK;
}

/* ---- In-flight window --------------------------------------------------- */

/* The outgoing window: the client's receive maximum (5.0; 65535 when it
 * names none), never more than our own receive_maximum, which also bounds
 * 3.1.1 clients. Keeping it small keeps every in-flight scan short. */
static uint16_t window(const mqtt_broker *b, const mqtt_session *s)
{
    mqtt_conn *c = s->conn;
    uint16_t w = c && c->client_receive_max ? c->client_receive_max : 65535;
    return w < b->cfg.receive_maximum ? w : b->cfg.receive_maximum;
}

mqtt_inflight *session__inflight_find(mqtt_session *s, uint16_t pid)
{
    for (uint32_t i = s->inf_start; i < s->inf_start + s->n_inflight; i++)
        if (s->inflight[i].packet_id == pid)
            return &s->inflight[i];
    return NULL;
}

/* Ids are handed out in sequence and the in-flight array is in send order,
 * so every live id lies on the ring between the oldest entry's id and the
 * last one handed out; the next id can only collide when that interval has
 * wrapped all the way round onto the oldest. Only then is the array searched. */
static uint16_t next_packet_id(mqtt_session *s)
{
    uint16_t cand = s->next_pid >= 65535 ? 1 : (uint16_t)(s->next_pid + 1);
    uint16_t oldest = s->n_inflight ? s->inflight[s->inf_start].packet_id : 0;
    if (s->n_inflight <= 1)
        s->pid_wrapped = false;
    if (cand == oldest || s->pid_wrapped) {
        /* Once the ring has wrapped, ids are no longer in send order: search
         * until the window empties again. */
        s->pid_wrapped = true;
        while (session__inflight_find(s, cand)) {
            if (++cand == 0)
                cand = 1;
        }
    }
    s->next_pid = cand;
    return cand;
}

static mqtt_inflight *inflight_add(mqtt_broker *b, mqtt_session *s)
{
    if (s->inf_start && s->inf_start + s->n_inflight == s->cap_inflight) {
        memmove(s->inflight, s->inflight + s->inf_start, s->n_inflight * sizeof(mqtt_inflight));
        s->inf_start = 0;
    }
    if (s->n_inflight == s->cap_inflight) {
        uint32_t cap = s->cap_inflight ? s->cap_inflight * 2u : 8u;
        if (cap > 65535)
            cap = 65535;
        mqtt_inflight *f = realloc(s->inflight, cap * sizeof(*f));
        if (!f)
            return NULL;
        s->inflight = f;
        s->cap_inflight = (uint16_t)cap;
    }
    b->inflight++;
    return &s->inflight[s->inf_start + s->n_inflight++];
}

void session__inflight_remove(mqtt_broker *b, mqtt_session *s, mqtt_inflight *f)
{
    qitem_release(b, &f->item);
    /* Keep the array in send order: resends after a reconnect must go out
     * in the order the messages were first sent. */
    size_t idx = (size_t)(f - s->inflight);
    if (idx == s->inf_start)
        s->inf_start++;
    else
        memmove(f, f + 1, (s->inf_start + s->n_inflight - idx - 1) * sizeof(*f));
    if (--s->n_inflight == 0)
        s->inf_start = 0;
    b->inflight--;
    if (s->expiry_s)
        b->dirty = true;
}

/* Sends one QoS 1/2 item now, taking over its reference. */
static int send_qos(mqtt_broker *b, mqtt_session *s, mqtt_qitem *item)
{
    mqtt_inflight *f = inflight_add(b, s);
    if (!f) {
        qitem_release(b, item);
        return WEIR_ENOMEM;
    }
    f->item = *item;
    f->packet_id = 0; /* not a candidate for the search below */
    f->packet_id = next_packet_id(s);
    f->state = item->qos == 1 ? INF_WAIT_PUBACK : INF_WAIT_PUBREC;
    int rc = conn__send_publish(s->conn, &f->item, f->packet_id);
    if (rc == WEIR_ENOTFOUND) {
        /* Expired or too large for this client: not an in-flight message. */
        session__inflight_remove(b, s, f);
        return WEIR_OK;
    }
    f->item.dup = true;
    return rc;
}

static bool can_send_now(const mqtt_broker *b, mqtt_session *s)
{
    return s->conn && s->conn->state == CONN_ACTIVE && s->n_inflight < window(b, s) &&
           !conn__outbuf_full(s->conn);
}

/* Takes over the item's message reference. */
void session__deliver(mqtt_broker *b, mqtt_session *s, mqtt_qitem *item)
{
    if (item->qos == 0) {
        if (!s->conn || s->conn->state != CONN_ACTIVE) {
            b->stats.dropped[MQTT_DROP_OFFLINE_QOS0]++;
        } else if (conn__outbuf_full(s->conn)) {
            b->stats.dropped[MQTT_DROP_OUTBUF_FULL]++;
        } else {
            conn__send_publish(s->conn, item, 0);
        }
        qitem_release(b, item);
        return;
    }
    if (s->q_len == 0 && can_send_now(b, s)) {
        send_qos(b, s, item);
        return;
    }
    session__enqueue(b, s, item);
}

/* Moves queued messages into the window while there is room. */
void session__drain(mqtt_broker *b, mqtt_session *s)
{
    while (s->q_len && can_send_now(b, s)) {
        mqtt_qitem it = *queue_front(s);
        queue_pop(b, s, false);
        if (it.qos == 0) {
            conn__send_publish(s->conn, &it, 0);
            qitem_release(b, &it);
            continue;
        }
        send_qos(b, s, &it);
    }
}

/* After a reconnect: everything in flight goes again, PUBLISH with DUP and
 * PUBREL as PUBREL (spec 4.4), in the original order. */
void session__resend(mqtt_broker *b, mqtt_session *s)
{
    /* A removal shifts the next entry into the current place (either the
     * front moves up or the tail moves down), so k advances only on a send. */
    for (uint32_t k = 0; k < s->n_inflight;) {
        mqtt_inflight *f = &s->inflight[s->inf_start + k];
        if (f->state == INF_WAIT_PUBCOMP) {
            mqtt_packet p = {.type = MQTT_PUBREL, .u.ack = {.packet_id = f->packet_id}};
            conn__send(s->conn, &p);
        } else {
            f->item.dup = true;
            if (conn__send_publish(s->conn, &f->item, f->packet_id) == WEIR_ENOTFOUND) {
                session__inflight_remove(b, s, f);
                continue;
            }
        }
        k++;
    }
    session__drain(b, s);
}

/* Drops every queued and in-flight message (clean start, session end). */
void session__clear_delivery_state(mqtt_broker *b, mqtt_session *s)
{
    while (s->q_len)
        queue_pop(b, s, true);
    while (s->n_inflight)
        session__inflight_remove(b, s, &s->inflight[s->inf_start + s->n_inflight - 1]);
    s->n_rx_qos2 = 0;
}

/* ---- Inbound QoS 2 ------------------------------------------------------ */

int session__rx_qos2_add(mqtt_session *s, uint16_t pid)
{
    if (s->n_rx_qos2 == s->cap_rx_qos2) {
        uint32_t cap = s->cap_rx_qos2 ? s->cap_rx_qos2 * 2 : 8;
        if (cap > 65536)
            return WEIR_EFULL;
        uint16_t *p = realloc(s->rx_qos2, cap * sizeof(*p));
        if (!p)
            return WEIR_ENOMEM;
        s->rx_qos2 = p;
        s->cap_rx_qos2 = cap;
    }
    s->rx_qos2[s->n_rx_qos2++] = pid;
    return WEIR_OK;
}

bool session__rx_qos2_has(const mqtt_session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->n_rx_qos2; i++)
        if (s->rx_qos2[i] == pid)
            return true;
    return false;
}

bool session__rx_qos2_remove(mqtt_session *s, uint16_t pid)
{
    for (uint32_t i = 0; i < s->n_rx_qos2; i++)
        if (s->rx_qos2[i] == pid) {
            s->rx_qos2[i] = s->rx_qos2[--s->n_rx_qos2];
            return true;
        }
    return false;
}

/* ---- Subscriptions ------------------------------------------------------ */

static mqtt_ssub *sub_find(mqtt_session *s, const uint8_t *filter, size_t n)
{
    for (uint32_t i = 0; i < s->n_subs; i++)
        if (s->subs[i].len == n && memcmp(s->subs[i].filter, filter, n) == 0)
            return &s->subs[i];
    return NULL;
}

int session__sub_add(mqtt_session *s, const uint8_t *filter, size_t n, uint8_t options,
                     uint32_t sub_id)
{
    mqtt_ssub *e = sub_find(s, filter, n);
    if (!e) {
        if (s->n_subs == s->cap_subs) {
            uint32_t cap = s->cap_subs ? s->cap_subs * 2 : 4;
            mqtt_ssub *p = realloc(s->subs, cap * sizeof(*p));
            if (!p)
                return WEIR_ENOMEM;
            s->subs = p;
            s->cap_subs = cap;
        }
        char *copy = malloc(n + 1);
        if (!copy)
            return WEIR_ENOMEM;
        memcpy(copy, filter, n);
        copy[n] = '\0';
        e = &s->subs[s->n_subs++];
        e->filter = copy;
        e->len = (uint16_t)n;
    }
    e->options = options;
    e->sub_id = sub_id;
    return WEIR_OK;
}

bool session__sub_remove(mqtt_session *s, const uint8_t *filter, size_t n)
{
    mqtt_ssub *e = sub_find(s, filter, n);
    if (!e)
        return false;
    free(e->filter);
    *e = s->subs[--s->n_subs];
    return true;
}
