/* live.c -- see live.h.
 *
 * One live_sub per client connection (WebSocket or SSE). Its life:
 *
 *   open (SSE: the GET handler; WS: on_open, then a query string or a
 *   subscribe message) -> sub_subscribe: readers + watch (or a rule tap)
 *   -> sub_pump on every watch callback and on every drain
 *   -> sub_close (client gone, server stop) or sub_kill (slow consumer,
 *   bad request: last word, then the connection closes; sub_close follows
 *   from the connection's on_close).
 *
 * The transport is hidden behind three calls (out_buffered, out_send,
 * out_close) so that the pump does not care which door the client used.
 */
#include "http/live.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "http/routes.h"
#include "metrics/metrics.h"
#include "record/record.h"
#include "stream/store.h"
#ifdef WEIR_HAVE_RULES
#include "engine/rules.h"
#endif

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE_DEFAULT_BUFFER (1u << 20)
#define LIVE_TICK_MS        250   /* slow-consumer checks */
#define LIVE_KEEPALIVE_TICKS 60   /* SSE comment lines every 15 s, so proxies keep the stream */
#define LIVE_MAX_FIELDS     64
#define LIVE_NAME_MAX       128

typedef struct live_sub live_sub;

struct live {
    uv_loop_t *loop;
    ingest *in;
    void *rules;
    size_t max_buffer;
    int64_t slow_ns;
    uint64_t ticks;
    uv_timer_t keepalive;
    bool timer_on;
    live_sub *subs;
    uint64_t n_subs, slow;
    arena a;      /* decode scratch, reset per record */
    weir_buf msg; /* one message being built */
    weir_buf ev;  /* the SSE event around it */
};

struct live_sub {
    live *lv;
    live_sub *prev, *next;
    http_ws *ws;      /* one of ws / sse */
    http_stream *sse;
    bool subscribed;
    bool killed;      /* last word queued, connection closing */
    int64_t full_since; /* weir_mono_ns when the pump stopped at the high-water mark; 0 */
    bool pumping;     /* re-entrancy guard */
    char name[LIVE_NAME_MAX + 1]; /* stream or rule */
    stream *st;
    stream_watch *watch;
    uint32_t n_parts;
    stream_reader **readers;
    char *key; /* filter, or NULL */
    size_t key_len;
    char *fields[LIVE_MAX_FIELDS]; /* filter (n_fields > 0) */
    size_t n_fields;
    uint64_t sent;
    void *tap; /* rules_tap */
};

static wlog_limit live__lim;

/* ---- Transport ------------------------------------------------------------ */

static size_t out_buffered(live_sub *s)
{
    return s->ws ? http_ws_buffered(s->ws) : s->sse ? http_stream_buffered(s->sse) : 0;
}

/* One message: a WebSocket text message, or an SSE event of type `event`. */
static int out_send(live_sub *s, const char *event, const char *id, const uint8_t *json,
                    size_t len)
{
    if (s->ws)
        return http_ws_send_text(s->ws, json, len);
    if (!s->sse)
        return WEIR_EINVAL;
    char head[160];
    int n = id ? snprintf(head, sizeof(head), "event: %s\nid: %s\ndata: ", event, id)
               : snprintf(head, sizeof(head), "event: %s\ndata: ", event);
    /* One write per event (the server never cuts a write). JSON from
     * record_to_json and jansson (compact) holds no raw newline. */
    weir_buf *b = &s->lv->ev;
    buf_reset(b);
    int rc = buf_append(b, head, (size_t)n);
    if (!rc)
        rc = buf_append(b, json, len);
    if (!rc)
        rc = buf_append(b, "\n\n", 2);
    if (!rc)
        rc = http_stream_write(s->sse, buf_head(b), buf_used(b));
    return rc;
}

/* Sends a last message of type error with `why`, then closes. */
static void sub_kill(live_sub *s, int ws_code, const char *why)
{
    if (s->killed)
        return;
    s->killed = true;
    json_t *j = json_pack("{s:s, s:s}", "type", "error", "error", why);
    char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (s->ws) {
        http_ws_discard(s->ws);
        if (txt)
            http_ws_send_text(s->ws, txt, strlen(txt));
        http_ws_close_reason(s->ws, ws_code, why);
    } else if (s->sse) {
        http_stream_discard(s->sse);
        if (txt)
            out_send(s, "error", NULL, (const uint8_t *)txt, strlen(txt));
        http_stream_close(s->sse);
    }
    free(txt);
}

/* ---- Messages ------------------------------------------------------------ */

static int msg_str(weir_buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

static int msg_fmt(weir_buf *b, const char *fmt, long long v)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof(tmp), fmt, v);
    return buf_append(b, tmp, (size_t)n);
}

/* A JSON string of n bytes (jansson escapes and checks UTF-8; invalid
 * UTF-8 becomes null). */
static int msg_jstr(weir_buf *b, const char *p, size_t n)
{
    json_t *j = json_stringn(p, n);
    if (!j)
        return msg_str(b, "null");
    char *t = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
    json_decref(j);
    if (!t)
        return WEIR_ENOMEM;
    int rc = msg_str(b, t);
    free(t);
    return rc;
}

static void iso_ms(int64_t ns, char *buf, size_t len)
{
    time_t secs = (time_t)(ns / WEIR_NS_PER_S);
    int64_t frac = ns % WEIR_NS_PER_S;
    if (frac < 0) {
        secs--;
        frac += WEIR_NS_PER_S;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(frac / WEIR_NS_PER_MS));
}

static bool sub_wants_field(const live_sub *s, const char *name, size_t n)
{
    if (!s->n_fields)
        return true;
    for (size_t i = 0; i < s->n_fields; i++)
        if (strlen(s->fields[i]) == n && !memcmp(s->fields[i], name, n))
            return true;
    return false;
}

/* {"type":"record","stream":..,"partition":..,"offset":..,"key":..,"ts":"..",
 *  "ts_ns":..,"arrival_ns":..,"commit_ns":..,"push_ns":..,"fields":{..}} */
static int build_record_msg(live_sub *s, const stream_rec *rec, int64_t push_ns)
{
    live *lv = s->lv;
    weir_buf *b = &lv->msg;
    buf_reset(b);
    arena_reset(&lv->a);
    record r;
    rec_field kept[LIVE_MAX_FIELDS];
    int drc = record_decode(rec->value, rec->value_len, &lv->a, &r);
    if (!drc && s->n_fields) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < r.n_fields && k < LIVE_MAX_FIELDS; i++)
            if (sub_wants_field(s, r.fields[i].name, r.fields[i].name_len))
                kept[k++] = r.fields[i];
        r.fields = kept;
        r.n_fields = k;
    }
    char ts[48];
    iso_ms(rec->ts, ts, sizeof(ts));
    int rc = msg_str(b, "{\"type\":\"record\",\"stream\":");
    rc |= msg_jstr(b, s->name, strlen(s->name));
    rc |= msg_fmt(b, ",\"partition\":%lld", rec->partition);
    rc |= msg_fmt(b, ",\"offset\":%lld", (long long)rec->offset);
    rc |= msg_str(b, ",\"key\":");
    rc |= rec->key_len ? msg_jstr(b, (const char *)rec->key, rec->key_len) : msg_str(b, "null");
    rc |= msg_str(b, ",\"ts\":\"");
    rc |= msg_str(b, ts);
    rc |= msg_fmt(b, "\",\"ts_ns\":%lld", (long long)rec->ts);
    rc |= msg_fmt(b, ",\"arrival_ns\":%lld", (long long)rec->arrival);
    rc |= msg_fmt(b, ",\"commit_ns\":%lld", (long long)rec->commit);
    rc |= msg_fmt(b, ",\"push_ns\":%lld", (long long)push_ns);
    rc |= msg_str(b, ",\"fields\":");
    rc |= drc ? msg_str(b, "null") : record_to_json(&r, b);
    rc |= msg_str(b, "}");
    return rc ? WEIR_ENOMEM : WEIR_OK;
}

static void sub_slow(live_sub *s, size_t buffered)
{
    char why[96];
    snprintf(why, sizeof(why), "slow consumer: %zu bytes buffered", buffered);
    s->lv->slow++;
    wlog_limited(&live__lim, WLOG_WARN, "live", "slow_consumer", "name=%s buffered=%zu sent=%llu",
                 s->name, buffered, (unsigned long long)s->sent);
    sub_kill(s, 1008, why);
}

/* Queues the message in lv->msg. Returns false when the client was killed
 * (slow consumer). */
static bool sub_queue(live_sub *s, const char *event, const char *id)
{
    live *lv = s->lv;
    size_t len = buf_used(&lv->msg), buffered = out_buffered(s);
    if (len > lv->max_buffer / 2) {
        /* Larger than the high-water mark: it would never fit. */
        wlog_limited(&live__lim, WLOG_WARN, "live", "message_too_large", "name=%s bytes=%zu",
                     s->name, len);
        return true;
    }
    if (buffered + len > lv->max_buffer ||
        out_send(s, event, id, buf_head(&lv->msg), len) == WEIR_EFULL) {
        sub_slow(s, buffered);
        return false;
    }
    s->sent++;
    return true;
}

static bool key_matches(const live_sub *s, const stream_rec *rec)
{
    return !s->key || (rec->key_len == s->key_len && !memcmp(rec->key, s->key, s->key_len));
}

/* Reads every partition to its end, or until the client's buffer reaches
 * the high-water mark (half the bound): then the client is "full" and the
 * pump resumes on drain or on the next commit; the tick disconnects a client
 * that stays full for slow_ns. */
static void sub_pump(live_sub *s)
{
    if (!s->subscribed || s->killed || s->pumping || !s->readers)
        return;
    live *lv = s->lv;
    s->pumping = true;
    bool full = false;
    for (uint32_t p = 0; p < s->n_parts && !s->killed; p++) {
        stream_reader *r = s->readers[p];
        for (;;) {
            if (out_buffered(s) >= lv->max_buffer / 2) {
                full = true;
                break;
            }
            stream_rec rec;
            int rc = stream_reader_next(r, &rec);
            if (rc == WEIR_EAGAIN)
                break;
            if (rc == WEIR_ECORRUPT)
                continue; /* the reader skips the bad batch on the next call */
            if (rc) {
                wlog_limited(&live__lim, WLOG_ERROR, "live", "read_failed", "name=%s error=%s",
                             s->name, weir_err_name(rc));
                break;
            }
            if (!key_matches(s, &rec))
                continue;
            int64_t push_ns = weir_wall_ns(); /* T4: read back for the push */
            if (build_record_msg(s, &rec, push_ns))
                continue;
            char id[48];
            snprintf(id, sizeof(id), "%u:%llu", rec.partition, (unsigned long long)rec.offset);
            if (!sub_queue(s, "record", id))
                break;
        }
    }
    if (!full)
        s->full_since = 0;
    else if (!s->full_since)
        s->full_since = weir_mono_ns();
    s->pumping = false;
}

static void on_commit(void *arg, uint32_t partition, uint64_t end_offset)
{
    (void)partition;
    (void)end_offset;
    sub_pump(arg);
}

/* ---- Rule outputs (the seam to engine/rules.h) ---------------------------- */

#ifdef WEIR_HAVE_RULES
static void on_rule_row(void *arg, const eng_row *row)
{
    live_sub *s = arg;
    if (!row) {
        s->tap = NULL; /* removed by the runtime */
        sub_kill(s, 1000, "rule deleted");
        return;
    }
    if (s->killed)
        return;
    if (s->key && (row->key_len != s->key_len || memcmp(row->key, s->key, s->key_len)))
        return;
    live *lv = s->lv;
    weir_buf *b = &lv->msg;
    buf_reset(b);
    rec_field cols[LIVE_MAX_FIELDS];
    record r = {.fields = cols};
    for (uint32_t i = 0; i < row->n_cols && r.n_fields < LIVE_MAX_FIELDS; i++) {
        size_t n = strlen(row->names[i]);
        if (!sub_wants_field(s, row->names[i], n) || n > UINT16_MAX)
            continue;
        cols[r.n_fields++] = (rec_field){row->names[i], (uint16_t)n, row->vals[i]};
    }
    char ts[48];
    iso_ms(row->ts, ts, sizeof(ts));
    int rc = msg_str(b, "{\"type\":\"row\",\"rule\":");
    rc |= msg_jstr(b, s->name, strlen(s->name));
    rc |= msg_str(b, ",\"key\":");
    rc |= row->key ? msg_jstr(b, row->key, row->key_len) : msg_str(b, "null");
    rc |= msg_str(b, ",\"ts\":\"");
    rc |= msg_str(b, ts);
    rc |= msg_fmt(b, "\",\"ts_ns\":%lld", (long long)row->ts);
    rc |= msg_fmt(b, ",\"window_start_ns\":%lld", (long long)row->window_start);
    rc |= msg_fmt(b, ",\"window_end_ns\":%lld", (long long)row->window_end);
    rc |= msg_fmt(b, ",\"revision\":%lld", (long long)row->revision);
    rc |= msg_str(b, row->late ? ",\"late\":true" : ",\"late\":false");
    rc |= msg_fmt(b, ",\"commit_ns\":%lld", (long long)row->src_commit_ns);
    rc |= msg_fmt(b, ",\"push_ns\":%lld", (long long)weir_wall_ns());
    rc |= msg_str(b, ",\"fields\":");
    rc |= record_to_json(&r, b);
    rc |= msg_str(b, "}");
    if (!rc)
        sub_queue(s, "row", NULL);
}
#endif

/* ---- Subscriptions -------------------------------------------------------- */

static void sub_unsubscribe(live_sub *s)
{
#ifdef WEIR_HAVE_RULES
    if (s->tap)
        rules_tap_remove(s->tap);
#endif
    s->tap = NULL;
    if (s->watch)
        stream_watch_remove(s->watch);
    s->watch = NULL;
    for (uint32_t p = 0; s->readers && p < s->n_parts; p++)
        if (s->readers[p])
            stream_reader_close(s->readers[p]);
    free(s->readers);
    s->readers = NULL;
    s->full_since = 0;
    free(s->key);
    s->key = NULL;
    for (size_t i = 0; i < s->n_fields; i++)
        free(s->fields[i]);
    s->n_fields = 0;
    s->subscribed = false;
}

typedef struct live_req {
    const char *stream, *rule, *key, *fields, *from;
} live_req;

static int sub_subscribe_inner(live_sub *s, const live_req *q, char *err, size_t errlen);

/* Subscribes per req. Returns WEIR_OK, or an error with a sentence in err
 * (the caller answers it) and nothing held. */
static int sub_subscribe(live_sub *s, const live_req *q, char *err, size_t errlen)
{
    int rc = sub_subscribe_inner(s, q, err, errlen);
    if (rc)
        sub_unsubscribe(s);
    return rc;
}

static int sub_subscribe_inner(live_sub *s, const live_req *q, char *err, size_t errlen)
{
    live *lv = s->lv;
    sub_unsubscribe(s);
    const char *name = q->stream ? q->stream : q->rule;
    if (!name || !*name || (q->stream && q->rule)) {
        snprintf(err, errlen, "name exactly one of stream or rule");
        return WEIR_EINVAL;
    }
    if (strlen(name) > LIVE_NAME_MAX) {
        snprintf(err, errlen, "name too long");
        return WEIR_EINVAL;
    }
    snprintf(s->name, sizeof(s->name), "%s", name);
    if (q->key) {
        s->key_len = strlen(q->key);
        if (!(s->key = strdup(q->key)))
            return WEIR_ENOMEM;
    }
    if (q->fields && *q->fields) {
        const char *p = q->fields;
        while (*p && s->n_fields < LIVE_MAX_FIELDS) {
            const char *c = strchr(p, ',');
            size_t n = c ? (size_t)(c - p) : strlen(p);
            if (n && !(s->fields[s->n_fields++] = strndup(p, n)))
                return WEIR_ENOMEM;
            p = c ? c + 1 : p + n;
        }
    }
    if (q->rule) {
#ifdef WEIR_HAVE_RULES
        if (lv->rules && (s->tap = rules_tap_add(lv->rules, name, on_rule_row, s))) {
            s->subscribed = true;
            return WEIR_OK;
        }
        snprintf(err, errlen, lv->rules ? "no rule named '%s'" : "rules are not running%s",
                 lv->rules ? name : "");
        return lv->rules ? WEIR_ENOTFOUND : WEIR_EUNSUPPORTED;
#else
        snprintf(err, errlen, "rule feeds need the rule runtime, not in this build");
        return WEIR_EUNSUPPORTED;
#endif
    }
    ingest_stream *is = lv->in ? ingest_find(lv->in, name) : NULL;
    if (!is) {
        snprintf(err, errlen, "no stream named '%s'", name);
        return WEIR_ENOTFOUND;
    }
    stream_pos_kind kind = STREAM_POS_LATEST;
    int64_t value = 0;
    const char *from = q->from ? q->from : "latest";
    if (!strcmp(from, "earliest")) {
        kind = STREAM_POS_EARLIEST;
    } else if (strcmp(from, "latest")) {
        char *end;
        unsigned long long off = strtoull(from, &end, 10);
        if (*end || !*from || from[0] == '-') {
            snprintf(err, errlen, "from must be latest, earliest or an offset");
            return WEIR_EINVAL;
        }
        kind = STREAM_POS_OFFSET;
        value = (int64_t)off;
    }
    s->st = ingest_stream_store(is);
    s->n_parts = stream_partitions(s->st);
    s->readers = calloc(s->n_parts, sizeof(*s->readers));
    if (!s->readers)
        return WEIR_ENOMEM;
    for (uint32_t p = 0; p < s->n_parts; p++) {
        int rc = stream_reader_open(s->st, p, kind, value, &s->readers[p]);
        if (rc) {
            snprintf(err, errlen, "cannot read the stream: %s", weir_strerror(rc));
            return rc;
        }
    }
    if (!(s->watch = stream_watch_add(s->st, on_commit, s)))
        return WEIR_ENOMEM;
    s->subscribed = true;
    return WEIR_OK;
}

/* The first message: what the client is subscribed to. */
static void sub_hello(live_sub *s, const live_req *q)
{
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I}", "type", "subscribed",
                          q->stream ? "stream" : "rule", s->name, "from",
                          q->from ? q->from : "latest", "partitions", (int)s->n_parts,
                          "transport", s->ws ? "websocket" : "sse", "max_buffer",
                          (json_int_t)s->lv->max_buffer);
    if (j && s->key)
        json_object_set_new(j, "key", json_string(s->key));
    if (j && q->rule)
        json_object_del(j, "partitions");
    char *t = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (t) {
        buf_reset(&s->lv->msg);
        if (!buf_append(&s->lv->msg, t, strlen(t)))
            sub_queue(s, "subscribed", NULL);
    }
    free(t);
}

static live_sub *sub_new(live *lv)
{
    live_sub *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->lv = lv;
    s->next = lv->subs;
    if (s->next)
        s->next->prev = s;
    lv->subs = s;
    lv->n_subs++;
    return s;
}

static void sub_free(live_sub *s)
{
    live *lv = s->lv;
    sub_unsubscribe(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        lv->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    lv->n_subs--;
    free(s);
}

/* ---- SSE door ------------------------------------------------------------- */

static void sse_on_drain(void *user)
{
    live_sub *s = user;
    s->full_since = 0;
    sub_pump(s);
}

static void sse_on_close(void *user)
{
    live_sub *s = user;
    s->sse = NULL;
    sub_free(s);
}

/* Every LIVE_TICK_MS: resumes clients that drained part of their buffer,
 * disconnects those full for longer than slow_ns, and now and then sends
 * SSE keep-alive comments. */
static void on_tick(uv_timer_t *t)
{
    live *lv = t->data;
    int64_t now = weir_mono_ns();
    bool keepalive = ++lv->ticks % LIVE_KEEPALIVE_TICKS == 0;
    live_sub *next;
    for (live_sub *s = lv->subs; s; s = next) {
        next = s->next;
        if (s->killed)
            continue;
        size_t buffered = out_buffered(s);
        if (s->full_since && buffered < lv->max_buffer / 2)
            sub_pump(s);
        else if (s->full_since && now - s->full_since > lv->slow_ns)
            sub_slow(s, buffered);
        else if (keepalive && s->sse && buffered < lv->max_buffer / 2)
            http_stream_write(s->sse, ": keep-alive\n\n", 14);
    }
}

void http_route_live(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    live *lv = api->live;
    if (!lv) {
        http_respond_error(w, WEIR_EUNSUPPORTED, "live feeds are not available");
        return;
    }
    char sb[LIVE_NAME_MAX + 2], rb[LIVE_NAME_MAX + 2], kb[512], fb[1024], frb[64];
    live_req q = {
        .stream = http_req_query(r, "stream", sb, sizeof(sb)),
        .rule = http_req_query(r, "rule", rb, sizeof(rb)),
        .key = http_req_query(r, "key", kb, sizeof(kb)),
        .fields = http_req_query(r, "fields", fb, sizeof(fb)),
        .from = http_req_query(r, "from", frb, sizeof(frb)),
    };
    live_sub *s = sub_new(lv);
    if (!s) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    char err[256];
    int rc = sub_subscribe(s, &q, err, sizeof(err));
    if (rc) {
        sub_free(s);
        http_respond_error(w, rc, err);
        return;
    }
    http_resp_header(w, "Cache-Control", "no-cache");
    http_resp_header(w, "X-Accel-Buffering", "no");
    /* The transport's own bound is a little above the feed's, so that the
     * feed's check (and its last word) always comes first. */
    s->sse = http_respond_stream(w, 200, "text/event-stream", lv->max_buffer + 4096, sse_on_drain,
                                 sse_on_close, s);
    if (!s->sse) {
        sub_free(s);
        return;
    }
    sub_hello(s, &q);
    sub_pump(s);
}

/* ---- WebSocket door ------------------------------------------------------- */

void *live_ws_open(void *ctx, http_ws *ws)
{
    http_api_ctx *api = ctx;
    live *lv = api->live;
    if (!lv)
        return NULL;
    live_sub *s = sub_new(lv);
    if (!s)
        return NULL;
    s->ws = ws;
    char sb[LIVE_NAME_MAX + 2], rb[LIVE_NAME_MAX + 2], kb[512], fb[1024], frb[64];
    live_req q = {
        .stream = http_ws_query(ws, "stream", sb, sizeof(sb)),
        .rule = http_ws_query(ws, "rule", rb, sizeof(rb)),
        .key = http_ws_query(ws, "key", kb, sizeof(kb)),
        .fields = http_ws_query(ws, "fields", fb, sizeof(fb)),
        .from = http_ws_query(ws, "from", frb, sizeof(frb)),
    };
    if (q.stream || q.rule) {
        char err[256];
        if (sub_subscribe(s, &q, err, sizeof(err)))
            sub_kill(s, 1008, err);
        else
            sub_hello(s, &q);
        sub_pump(s);
    }
    return s;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* {"type":"subscribe","stream":"x","key":"k","fields":["a","b"] | "a,b",
 *  "from":"earliest"} (or "rule" instead of "stream"). */
void live_ws_data(void *user, const uint8_t *data, size_t len)
{
    live_sub *s = user;
    if (s->killed)
        return;
    json_t *j = json_loadb((const char *)data, len, 0, NULL);
    const char *type = j ? jstr(j, "type") : NULL;
    if (!j || !type || strcmp(type, "subscribe")) {
        json_decref(j);
        sub_kill(s, 1008, "expected {\"type\":\"subscribe\",\"stream\":NAME,...}");
        return;
    }
    char fields[1024] = "";
    json_t *fl = json_object_get(j, "fields");
    if (json_is_array(fl)) {
        size_t i, used = 0;
        json_t *v;
        json_array_foreach(fl, i, v)
        {
            const char *f = json_string_value(v);
            if (f && used + strlen(f) + 2 < sizeof(fields))
                used += (size_t)snprintf(fields + used, sizeof(fields) - used, "%s%s",
                                         used ? "," : "", f);
        }
    } else if (json_is_string(fl)) {
        snprintf(fields, sizeof(fields), "%s", json_string_value(fl));
    }
    char from[32] = "";
    json_t *fr = json_object_get(j, "from");
    if (json_is_integer(fr))
        snprintf(from, sizeof(from), "%lld", (long long)json_integer_value(fr));
    else if (json_is_string(fr))
        snprintf(from, sizeof(from), "%s", json_string_value(fr));
    live_req q = {.stream = jstr(j, "stream"), .rule = jstr(j, "rule"), .key = jstr(j, "key"),
                  .fields = fields[0] ? fields : NULL, .from = from[0] ? from : NULL};
    char err[256];
    if (sub_subscribe(s, &q, err, sizeof(err)))
        sub_kill(s, 1008, err);
    else
        sub_hello(s, &q);
    json_decref(j);
    sub_pump(s);
}

void live_ws_drain(void *user)
{
    live_sub *s = user;
    s->full_since = 0;
    sub_pump(s);
}

void live_ws_close(void *user)
{
    live_sub *s = user;
    s->ws = NULL;
    sub_free(s);
}


/* ---- Lifecycle ------------------------------------------------------------ */

live *live_new(uv_loop_t *loop, ingest *in, size_t max_buffer, int64_t slow_ms)
{
    live *lv = calloc(1, sizeof(*lv));
    if (!lv)
        return NULL;
    lv->loop = loop;
    lv->in = in;
    lv->max_buffer = max_buffer ? max_buffer : LIVE_DEFAULT_BUFFER;
    lv->slow_ns = (slow_ms > 0 ? slow_ms : 5000) * WEIR_NS_PER_MS;
    arena_init(&lv->a, 16u << 20);
    buf_init(&lv->msg, 0);
    buf_init(&lv->ev, 0);
    if (loop) {
        uv_timer_init(loop, &lv->keepalive);
        lv->keepalive.data = lv;
        uv_timer_start(&lv->keepalive, on_tick, LIVE_TICK_MS, LIVE_TICK_MS);
        uv_unref((uv_handle_t *)&lv->keepalive);
        lv->timer_on = true;
    }
    return lv;
}

void live_set_rules(live *lv, void *rs)
{
    lv->rules = rs;
}

void live_shutdown(live *lv)
{
    if (!lv)
        return;
    for (live_sub *s = lv->subs; s; s = s->next)
        sub_unsubscribe(s);
    if (lv->timer_on) {
        uv_close((uv_handle_t *)&lv->keepalive, NULL);
        lv->timer_on = false;
    }
}

uint64_t live_subscribers(const live *lv)
{
    return lv ? lv->n_subs : 0;
}

const uint64_t *live_slow_counter(const live *lv)
{
    return &lv->slow;
}

static double gauge_subscribers(void *arg)
{
    return (double)live_subscribers(arg);
}

int live_register_metrics(live *lv, void *registry)
{
    int rc = metrics_gauge(registry, "weir_live_subscribers",
                           "Open live-feed connections (/api/v1/live, WebSocket and SSE).", NULL,
                           gauge_subscribers, lv);
    if (!rc)
        rc = metrics_counter_ref(registry, "weir_live_slow_consumers_total",
                                 "Live-feed clients disconnected as slow consumers.", NULL,
                                 &lv->slow);
    return rc;
}

/* After the loop closed the timer (live_shutdown, then a loop run). The
 * connections are gone by then (http_server_stop told every one). */
void live_free(live *lv)
{
    if (!lv)
        return;
    while (lv->subs)
        sub_free(lv->subs);
    arena_free(&lv->a);
    buf_free(&lv->msg);
    buf_free(&lv->ev);
    free(lv);
}
