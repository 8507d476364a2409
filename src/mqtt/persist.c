/* persist.c -- snapshots of the broker's durable state: retained messages
 * and persistent sessions (subscriptions, queued and in-flight messages,
 * inbound QoS 2 ids).
 *
 * Format (all integers big-endian):
 *
 *   file    := magic "WEIRMQS1" | u32 format version (1) | record* | end
 *   record  := u8 type | u32 body length | body | u32 CRC-32C(type..body)
 *   end     := a record of type 0xFF with an empty body
 *   type 1  := retained message: msg
 *   type 2  := session: str16 client id | u8 version | u32 expiry seconds |
 *              i64 wall-clock ns when it expires (0 = unknown: now + expiry) |
 *              u32 n subs { str16 filter | u8 options | u32 sub id } |
 *              u32 n in-flight { u16 packet id | u8 state | [qitem unless
 *              state is WAIT_PUBCOMP] } | u32 n queued { qitem } |
 *              u32 n rx-qos2 { u16 packet id }
 *   qitem   := u8 qos | u8 retain | u8 dup | u8 n sub ids | u32 sub id* | msg
 *   msg     := u8 qos | u8 retain | u8 has payload format | u8 payload format |
 *              i64 wall-clock expiry ns (0 none) | str16 topic | str32 payload |
 *              opt32 content type | opt32 response topic |
 *              opt32 correlation data | opt32 user properties
 *   str16   := u16 length | bytes;  str32 := u32 length | bytes
 *   opt32   := u32 length (0xFFFFFFFF = absent) | bytes
 *
 * Recovery rule: records are read in order; a record whose length runs past
 * the end or whose CRC does not match stops the restore with WEIR_ECORRUPT,
 * keeping every record before it (the file is written atomically, so this
 * only happens when the disk itself lost data). Wills of connected clients
 * are not persisted: after a restart there is no connection whose loss they
 * would announce.
 */
#include "base/clock.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "base/wlog.h"
#include "mqtt/brokerInt.h"

#include <stdlib.h>
#include <string.h>

#define SNAP_MAGIC "WEIRMQS1"
#define SNAP_VERSION 1
enum { REC_RETAINED = 1, REC_SESSION = 2, REC_END = 0xFF };

/* ---- Writer ------------------------------------------------------------- */

typedef struct writer {
    weir_buf *out;
    int err;
} writer;

static void put(writer *w, const void *p, size_t n)
{
    if (!w->err)
        w->err = buf_append(w->out, p, n);
}

static void put_u8(writer *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u16(writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put_u32(writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

static void put_u64(writer *w, uint64_t v)
{
    put_u32(w, (uint32_t)(v >> 32));
    put_u32(w, (uint32_t)v);
}

static void put_opt(writer *w, mqtt_bytes b)
{
    if (!b.data) {
        put_u32(w, 0xFFFFFFFFu);
        return;
    }
    put_u32(w, b.len);
    put(w, b.data, b.len);
}

static void put_msg(writer *w, const mqtt_msg *m)
{
    put_u8(w, m->qos);
    put_u8(w, m->retain);
    put_u8(w, m->has_payload_format);
    put_u8(w, m->payload_format);
    put_u64(w, (uint64_t)m->expire_at);
    put_u16(w, m->topic_len);
    put(w, m->topic, m->topic_len);
    put_u32(w, m->payload_len);
    put(w, m->payload, m->payload_len);
    put_opt(w, m->content_type);
    put_opt(w, m->response_topic);
    put_opt(w, m->correlation_data);
    put_opt(w, m->user_props);
}

static void put_qitem(writer *w, const mqtt_qitem *it)
{
    put_u8(w, it->qos);
    put_u8(w, it->retain);
    put_u8(w, it->dup);
    put_u8(w, it->n_sub_ids);
    for (uint8_t i = 0; i < it->n_sub_ids; i++)
        put_u32(w, it->sub_ids[i]);
    put_msg(w, it->msg);
}

/* Starts a record; returns the offset of its type byte. */
static size_t rec_begin(writer *w, uint8_t type)
{
    size_t at = buf_used(w->out);
    put_u8(w, type);
    put_u32(w, 0);
    return at;
}

static void rec_end(writer *w, size_t at)
{
    if (w->err)
        return;
    uint8_t *base = buf_head(w->out) + at;
    size_t body = buf_used(w->out) - at - 5;
    base[1] = (uint8_t)(body >> 24);
    base[2] = (uint8_t)(body >> 16);
    base[3] = (uint8_t)(body >> 8);
    base[4] = (uint8_t)body;
    put_u32(w, crc32c(buf_head(w->out) + at, body + 5));
}

static void snap_retained(const uint8_t *topic, size_t n, void *msg, void *arg)
{
    (void)topic;
    (void)n;
    writer *w = arg;
    size_t at = rec_begin(w, REC_RETAINED);
    put_msg(w, msg);
    rec_end(w, at);
}

static void snap_session(writer *w, const mqtt_session *s, int64_t now_mono, int64_t now_wall)
{
    size_t at = rec_begin(w, REC_SESSION);
    put_u16(w, s->id_len);
    put(w, s->client_id, s->id_len);
    put_u8(w, s->version);
    put_u32(w, s->expiry_s);
    int64_t wall = s->expire_at ? now_wall + (s->expire_at - now_mono) : 0;
    put_u64(w, (uint64_t)wall);
    put_u32(w, s->n_subs);
    for (uint32_t i = 0; i < s->n_subs; i++) {
        put_u16(w, s->subs[i].len);
        put(w, s->subs[i].filter, s->subs[i].len);
        put_u8(w, s->subs[i].options);
        put_u32(w, s->subs[i].sub_id);
    }
    put_u32(w, s->n_inflight);
    for (uint32_t i = s->inf_start; i < s->inf_start + s->n_inflight; i++) {
        const mqtt_inflight *f = &s->inflight[i];
        put_u16(w, f->packet_id);
        put_u8(w, f->state);
        if (f->state != INF_WAIT_PUBCOMP)
            put_qitem(w, &f->item);
    }
    put_u32(w, s->q_len);
    for (uint32_t i = 0; i < s->q_len; i++)
        put_qitem(w, &s->q[(s->q_head + i) % s->q_cap]);
    put_u32(w, s->n_rx_qos2);
    for (uint32_t i = 0; i < s->n_rx_qos2; i++)
        put_u16(w, s->rx_qos2[i]);
    rec_end(w, at);
}

int mqtt_broker_snapshot(mqtt_broker *b, weir_buf *out)
{
    writer w = {out, WEIR_OK};
    put(&w, SNAP_MAGIC, 8);
    put_u32(&w, SNAP_VERSION);
    mqtt_retain_foreach(b->retained, snap_retained, &w);
    int64_t now_mono = weir_mono_ns(), now_wall = weir_wall_ns();
    for (uint32_t i = 0; i < b->stab_cap; i++)
        for (const mqtt_session *s = b->stab[i]; s; s = s->hnext)
            if (s->expiry_s)
                snap_session(&w, s, now_mono, now_wall);
    size_t at = rec_begin(&w, REC_END);
    rec_end(&w, at);
    if (!w.err)
        b->dirty = false;
    return w.err;
}

/* ---- Reader ------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t n;
    bool bad;
} reader;

static const uint8_t *take(reader *r, size_t n)
{
    if (r->bad || n > r->n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->n -= n;
    return p;
}

static uint8_t get_u8(reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

static uint16_t get_u16(reader *r)
{
    const uint8_t *p = take(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

static uint32_t get_u32(reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]
             : 0;
}

static uint64_t get_u64(reader *r)
{
    uint64_t hi = get_u32(r);
    return (hi << 32) | get_u32(r);
}

static mqtt_bytes get_opt(reader *r, uint64_t *present, uint64_t bit)
{
    uint32_t n = get_u32(r);
    if (n == 0xFFFFFFFFu)
        return (mqtt_bytes){NULL, 0};
    const uint8_t *p = take(r, n);
    if (p)
        *present |= bit;
    return (mqtt_bytes){p ? p : (const uint8_t *)"", p ? n : 0};
}

static mqtt_msg *get_msg(reader *r)
{
    mqtt_props pr = {0};
    uint8_t qos = get_u8(r);
    bool retain = get_u8(r) != 0;
    bool has_pf = get_u8(r) != 0;
    pr.payload_format = get_u8(r);
    if (has_pf)
        pr.present |= MQTT_PROP_BIT(MQTT_PROP_PAYLOAD_FORMAT);
    int64_t expire_at = (int64_t)get_u64(r);
    uint16_t tn = get_u16(r);
    const uint8_t *topic = take(r, tn);
    uint32_t pn = get_u32(r);
    const uint8_t *payload = take(r, pn);
    pr.content_type = get_opt(r, &pr.present, MQTT_PROP_BIT(MQTT_PROP_CONTENT_TYPE));
    pr.response_topic = get_opt(r, &pr.present, MQTT_PROP_BIT(MQTT_PROP_RESPONSE_TOPIC));
    pr.correlation_data = get_opt(r, &pr.present, MQTT_PROP_BIT(MQTT_PROP_CORRELATION_DATA));
    pr.user_props = get_opt(r, &pr.present, MQTT_PROP_BIT(MQTT_PROP_USER_PROPERTY));
    if (r->bad || qos > 2 || !tn)
        return NULL;
    mqtt_msg *m = msg_new(topic, tn, payload, pn, qos, retain, &pr, 0);
    if (m)
        m->expire_at = expire_at;
    return m;
}

static bool get_qitem(reader *r, mqtt_qitem *it)
{
    memset(it, 0, sizeof(*it));
    it->qos = get_u8(r);
    it->retain = get_u8(r) != 0;
    it->dup = get_u8(r) != 0;
    it->n_sub_ids = get_u8(r);
    if (it->n_sub_ids > MQTT_QITEM_SUB_IDS || it->qos > 2) {
        r->bad = true;
        return false;
    }
    for (uint8_t i = 0; i < it->n_sub_ids; i++)
        it->sub_ids[i] = get_u32(r);
    it->msg = get_msg(r);
    return it->msg != NULL;
}

static int restore_session(mqtt_broker *b, reader *r)
{
    uint16_t idn = get_u16(r);
    const uint8_t *id = take(r, idn);
    uint8_t version = get_u8(r);
    uint32_t expiry = get_u32(r);
    int64_t wall = (int64_t)get_u64(r);
    if (r->bad || broker__session_find(b, id, idn))
        return WEIR_ECORRUPT;
    mqtt_session *s = broker__session_create(b, id, idn);
    if (!s)
        return WEIR_ENOMEM;
    s->version = version;
    s->expiry_s = expiry;
    int64_t now_mono = weir_mono_ns();
    int64_t left = wall ? wall - weir_wall_ns() : (int64_t)expiry * WEIR_NS_PER_S;
    s->expire_at = expiry == UINT32_MAX ? 0 : now_mono + (left > 0 ? left : 0);
    uint32_t n = get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint16_t fl = get_u16(r);
        const uint8_t *f = take(r, fl);
        uint8_t opts = get_u8(r);
        uint32_t sid = get_u32(r);
        if (r->bad || !mqtt_topic_filter_valid(f, fl))
            return WEIR_ECORRUPT;
        mqtt_sub sub = {.owner = s, .options = opts, .sub_id = sid};
        bool existed;
        if (mqtt_subtree_add(b->subs, f, fl, &sub, &existed) ||
            session__sub_add(s, f, fl, opts, sid))
            return WEIR_ENOMEM;
    }
    n = get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        uint16_t pid = get_u16(r);
        uint8_t state = get_u8(r);
        mqtt_qitem it = {0};
        if (state < INF_WAIT_PUBACK || state > INF_WAIT_PUBCOMP)
            return WEIR_ECORRUPT;
        if (state != INF_WAIT_PUBCOMP && !get_qitem(r, &it))
            return WEIR_ECORRUPT;
        if (s->n_inflight == s->cap_inflight) {
            uint32_t cap = s->cap_inflight ? s->cap_inflight * 2u : 8u;
            mqtt_inflight *fa = cap <= 65535 ? realloc(s->inflight, cap * sizeof(*fa)) : NULL;
            if (!fa) {
                msg_unref(it.msg);
                return WEIR_ENOMEM;
            }
            s->inflight = fa;
            s->cap_inflight = (uint16_t)cap;
        }
        s->inflight[s->inf_start + s->n_inflight++] =
            (mqtt_inflight){.item = it, .packet_id = pid, .state = state};
        s->next_pid = pid; /* new ids continue after the restored ones */
        b->inflight++;
    }
    n = get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++) {
        mqtt_qitem it;
        if (!get_qitem(r, &it))
            return WEIR_ECORRUPT;
        session__enqueue(b, s, &it);
    }
    n = get_u32(r);
    for (uint32_t i = 0; i < n && !r->bad; i++)
        if (session__rx_qos2_add(s, get_u16(r)))
            return WEIR_ENOMEM;
    return r->bad ? WEIR_ECORRUPT : WEIR_OK;
}

int mqtt_broker_restore(mqtt_broker *b, const uint8_t *data, size_t len)
{
    reader r = {data, len, false};
    const uint8_t *magic = take(&r, 8);
    if (!magic || memcmp(magic, SNAP_MAGIC, 8) || get_u32(&r) != SNAP_VERSION)
        return WEIR_ECORRUPT;
    size_t n_ret = 0, n_ses = 0;
    int rc = WEIR_ECORRUPT; /* until the end record is seen */
    while (r.n) {
        const uint8_t *start = r.p;
        uint8_t type = get_u8(&r);
        uint32_t body_len = get_u32(&r);
        const uint8_t *body = take(&r, body_len);
        uint32_t crc = get_u32(&r);
        if (r.bad)
            break;
#ifndef WEIR_FUZZING
        /* Fuzzing skips the checksum so that it reaches the body parser. */
        if (crc != crc32c(start, (size_t)body_len + 5))
            break;
#else
        (void)crc;
        (void)start;
#endif
        reader br = {body, body_len, false};
        if (type == REC_END) {
            rc = WEIR_OK;
            break;
        }
        if (type == REC_RETAINED) {
            mqtt_msg *m = get_msg(&br);
            if (!m)
                break;
            broker__retain(b, m);
            msg_unref(m);
            n_ret++;
        } else if (type == REC_SESSION) {
            int src = restore_session(b, &br);
            if (src) {
                rc = src;
                break;
            }
            n_ses++;
        }
    }
    b->dirty = false;
    wlog_info("mqtt", "restored", "retained=%zu sessions=%zu result=%s", n_ret, n_ses,
              weir_err_name(rc));
    return rc;
}
