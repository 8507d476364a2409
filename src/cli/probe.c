/* probe.c -- `weir probe`: end-to-end latency of a running node, measured
 * the way the industrial cloud-database literature does (docs/api.md
 * "Latency probe", DESIGN.md "Latency measurement").
 *
 * Timestamps: T0 a simulated device takes a reading, T1 it publishes it
 * (both in the payload), T2 weir receives it (arrival), T3 weir has stored it
 * durably (commit), T4 weir reads it back (pushed on commit by the live feed,
 * or served to a poll), T5 the subscriber receives it. Metrics: DPC = T2-T1,
 * DCD = T3-T2, DDC = T4-T3, DCS = T5-T4, LCDC = T4-T2, LPDS = T5-T1 (through
 * storage), LPS = T5-T1 on the direct path (an MQTT subscriber of the same
 * topic: no storage in the loop).
 *
 * Three paths are measured at once on the same messages:
 *   direct  MQTT subscriber on the probe topic                  -> LPS
 *   push    the live feed (SSE, /api/v1/live), T4 = push_ns     -> DPC..LPDS
 *   poll    GET /api/v1/streams/NAME/records every --poll ms,
 *           T4 = the page's read_ns                             -> DPC..LPDS
 *
 * Devices are N MQTT connections on one libuv loop, each publishing at
 * --rate per second at randomised, unsynchronised instants (a random phase,
 * then intervals uniformly spread over 0.5..1.5 of the mean). The push and
 * poll readers run on their own threads (libcurl, blocking) and stamp T5 as
 * soon as bytes arrive. One host, one clock (CLOCK_REALTIME everywhere), so
 * no synchronisation error enters the differences.
 *
 * The probe defines its own stream (probe_<id>, sourcing the probe topic,
 * with --sync), and deletes it afterwards unless --keep. Results go to
 * stdout as a table (or JSON with --json) and, unless --no-post, to the node
 * (POST /api/v1/probe/results) for the dashboard.
 *
 * DRL (the delay of a rate limiter in front of a rate-limited sink) is not
 * measured: no such sink is in these paths; the JSON says so.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/lstats.h"
#include "cli/cli.h"
#include "cli/client.h"
#include "cli/mqttc.h"

#include <curl/curl.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define PROBE_MAX_DEVICES  10000
#define PROBE_MAX_MESSAGES (20u << 20)

enum { M_DPC, M_DCD, M_DDC, M_DCS, M_LCDC, M_LPDS, M_N };
static const char *const metric_names[M_N] = {"DPC", "DCD", "DDC", "DCS", "LCDC", "LPDS"};

typedef struct probe_opts {
    char mqtt_host[256];
    int mqtt_port;
    const char *http;
    int devices;
    double rate;     /* messages per second per device */
    double duration; /* seconds */
    size_t payload;  /* bytes of each payload (at least what the stamps need) */
    int qos;
    const char *sync;
    int poll_ms;
    double drain_s;
    const char *loop_topic; /* --loop-topic: a peer's read-back over MQTT */
    bool json, post, keep, push, poll, direct, loop;
} probe_opts;

/* One read-back path (push or poll): its own thread's samples. */
typedef struct path {
    const char *name;
    lstats m[M_N];
    uint8_t *seen; /* by seq */
    atomic_ulong received;
    atomic_bool ready;
    uint64_t dups;
} path;

typedef struct probe probe;

typedef struct device {
    probe *p;
    int index;
    char name[16];
    mqttc *c;
    uv_timer_t timer;
} device;

struct probe {
    probe_opts o;
    char id[17], topic_base[64], stream[64], started[40];
    uv_loop_t loop;
    uv_timer_t clock; /* start / stop / drain decisions every 20 ms */
    device *dev;
    int connected, failed, closed;
    mqttc *sub;
    bool sub_ready;
    lstats lps;
    uint8_t *direct_seen;
    unsigned long direct_received;
    uint64_t direct_dups;
    path push, poll, peer; /* peer: the --loop-topic path, named "loop" */
    mqttc *loop_sub;
    bool loop_ready;
    uint64_t max_msgs;
    atomic_ulong sent;
    uint64_t drops;
    int64_t t_start, t_stop, t_deadline; /* mono ns */
    int phase; /* 0 connecting, 1 publishing, 2 draining, 3 closing */
    atomic_bool stop;
    char *pad;
};

/* ---- Small helpers ------------------------------------------------------- */

static double rnd(void)
{
    return (double)rand() / ((double)RAND_MAX + 1.0);
}

static bool mark_seen(uint8_t *seen, uint64_t max, uint64_t seq)
{
    if (seq >= max)
        return false;
    if (seen[seq / 8] & (1u << (seq % 8)))
        return false;
    seen[seq / 8] |= (uint8_t)(1u << (seq % 8));
    return true;
}

static double ns_ms(int64_t d)
{
    return (double)d / 1e6;
}

/* ---- Read-back samples (push and poll threads) --------------------------- */

static void path_sample_raw(probe *p, path *pa, json_int_t seq, int64_t t1, int64_t t2,
                            int64_t t3, int64_t t4, int64_t t5)
{
    if (!t1 || !t2 || !t3 || !t4 || seq < 0)
        return;
    if (!mark_seen(pa->seen, p->max_msgs, (uint64_t)seq)) {
        pa->dups++;
        return;
    }
    lstats_add(&pa->m[M_DPC], ns_ms(t2 - t1));
    lstats_add(&pa->m[M_DCD], ns_ms(t3 - t2));
    lstats_add(&pa->m[M_DDC], ns_ms(t4 - t3));
    lstats_add(&pa->m[M_DCS], ns_ms(t5 - t4));
    lstats_add(&pa->m[M_LCDC], ns_ms(t4 - t2));
    lstats_add(&pa->m[M_LPDS], ns_ms(t5 - t1));
    atomic_fetch_add(&pa->received, 1);
}

/* One record read back: fields seq and t1, arrival (T2), commit (T3), T4. */
static void path_sample(probe *p, path *pa, json_t *rec, int64_t t4, int64_t t5)
{
    json_t *f = json_object_get(rec, "fields");
    path_sample_raw(p, pa, json_integer_value(json_object_get(f, "seq")),
                    json_integer_value(json_object_get(f, "t1")),
                    json_integer_value(json_object_get(rec, "arrival_ns")),
                    json_integer_value(json_object_get(rec, "commit_ns")), t4, t5);
}

/* ---- Push path: the live feed over SSE ----------------------------------- */

typedef struct sse_ctx {
    probe *p;
    weir_buf acc;
} sse_ctx;

static size_t sse_on_data(char *data, size_t size, size_t nmemb, void *arg)
{
    int64_t t5 = weir_wall_ns();
    sse_ctx *sc = arg;
    probe *p = sc->p;
    size_t n = size * nmemb;
    if (buf_append(&sc->acc, data, n))
        return 0; /* an event larger than the bound: abort */
    for (;;) {
        const char *h = (const char *)buf_head(&sc->acc);
        size_t used = buf_used(&sc->acc);
        const char *end = memmem(h, used, "\n\n", 2);
        if (!end)
            break;
        const char *d = memmem(h, (size_t)(end - h), "data: ", 6);
        if (d) {
            const char *de = d + 6;
            while (de < end && *de != '\n')
                de++;
            json_t *j = json_loadb(d + 6, (size_t)(de - d - 6), 0, NULL);
            const char *type = json_string_value(json_object_get(j, "type"));
            if (type && !strcmp(type, "subscribed"))
                atomic_store(&p->push.ready, true);
            else if (type && !strcmp(type, "record"))
                path_sample(p, &p->push, j, json_integer_value(json_object_get(j, "push_ns")),
                            t5);
            else if (type && !strcmp(type, "error"))
                fprintf(stderr, "weir probe: live feed: %s\n",
                        json_string_value(json_object_get(j, "error")));
            json_decref(j);
        }
        buf_consume(&sc->acc, (size_t)(end - h) + 2);
    }
    return n;
}

static int sse_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    probe *p = arg;
    return atomic_load(&p->stop) ? 1 : 0;
}

static void *push_thread(void *arg)
{
    probe *p = arg;
    sse_ctx sc = {.p = p};
    buf_init(&sc.acc, 16u << 20);
    char url[1024];
    snprintf(url, sizeof(url), "%s/api/v1/live?stream=%s&fields=seq,t1", p->o.http, p->stream);
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Accept: text/event-stream");
    if (c && h) {
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_on_data);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sc);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, sse_progress);
        curl_easy_setopt(c, CURLOPT_XFERINFODATA, p);
        curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
        CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK && rc != CURLE_ABORTED_BY_CALLBACK && !atomic_load(&p->stop))
            fprintf(stderr, "weir probe: live feed: %s\n", curl_easy_strerror(rc));
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    buf_free(&sc.acc);
    atomic_store(&p->push.ready, true); /* never leave the main loop waiting */
    return NULL;
}

/* ---- Poll path ------------------------------------------------------------ */

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void *poll_thread(void *arg)
{
    probe *p = arg;
    uint64_t next = 0;
    char url[1200], cursor[128] = "";
    atomic_store(&p->poll.ready, true);
    while (!atomic_load(&p->stop)) {
        int64_t t_begin = weir_mono_ns();
        bool more = true;
        uint64_t max_off = next;
        bool got = false;
        while (more && !atomic_load(&p->stop)) {
            snprintf(url, sizeof(url), "%s/api/v1/streams/%s/records?offset=%llu&limit=10000"
                     "&fields=seq,t1%s%s", p->o.http, p->stream, (unsigned long long)next,
                     cursor[0] ? "&cursor=" : "", cursor);
            cli_response r;
            int rc = cli_http(url, NULL, 0, NULL, 10000, &r);
            int64_t t5 = weir_wall_ns();
            more = false;
            if (rc || r.status != 200) {
                buf_free(&r.body);
                break;
            }
            json_t *j = json_loadb((const char *)buf_head(&r.body), buf_used(&r.body), 0, NULL);
            buf_free(&r.body);
            int64_t t4 = json_integer_value(json_object_get(j, "read_ns"));
            json_t *recs = json_object_get(j, "records"), *rec;
            size_t i;
            json_array_foreach(recs, i, rec)
            {
                uint64_t off = (uint64_t)json_integer_value(json_object_get(rec, "offset"));
                if (off + 1 > max_off)
                    max_off = off + 1;
                path_sample(p, &p->poll, rec, t4 ? t4 : t5, t5);
                got = true;
            }
            more = json_is_true(json_object_get(j, "more"));
            const char *nc = json_string_value(json_object_get(j, "next_cursor"));
            if (more && nc)
                cli_urlencode(nc, cursor, sizeof(cursor));
            json_decref(j);
        }
        cursor[0] = '\0';
        if (got)
            next = max_off;
        sleep_ms(p->o.poll_ms - (weir_mono_ns() - t_begin) / 1000000);
    }
    return NULL;
}

/* ---- Direct path and devices (the loop) ----------------------------------- */

static void sub_on_message(void *arg, const char *topic, size_t tl, const uint8_t *payload,
                           size_t len)
{
    int64_t t5 = weir_wall_ns();
    probe *p = arg;
    (void)topic, (void)tl;
    json_t *j = json_loadb((const char *)payload, len, 0, NULL);
    json_int_t seq = json_integer_value(json_object_get(j, "seq"));
    int64_t t1 = json_integer_value(json_object_get(j, "t1"));
    json_decref(j);
    if (!t1 || seq < 0)
        return;
    if (!mark_seen(p->direct_seen, p->max_msgs, (uint64_t)seq)) {
        p->direct_dups++;
        return;
    }
    lstats_add(&p->lps, ns_ms(t5 - t1));
    p->direct_received++;
}

/* The loop path: a peer (bench/latency/peer.py: an application storing the
 * readings in a database and a trigger listener publishing them back)
 * publishes {"seq","t1","t2","t3","t4"} (ns) on --loop-topic. */
static void loop_on_message(void *arg, const char *topic, size_t tl, const uint8_t *payload,
                            size_t len)
{
    int64_t t5 = weir_wall_ns();
    probe *p = arg;
    (void)topic, (void)tl;
    json_t *j = json_loadb((const char *)payload, len, 0, NULL);
    path_sample_raw(p, &p->peer, json_integer_value(json_object_get(j, "seq")),
                    json_integer_value(json_object_get(j, "t1")),
                    json_integer_value(json_object_get(j, "t2")),
                    json_integer_value(json_object_get(j, "t3")),
                    json_integer_value(json_object_get(j, "t4")), t5);
    json_decref(j);
}

static void loop_on_connect(void *arg, int rc)
{
    probe *p = arg;
    if (rc) {
        fprintf(stderr, "weir probe: loop subscriber: MQTT connection refused or failed\n");
        p->failed++;
        return;
    }
    mqttc_subscribe(p->loop_sub, p->o.loop_topic, p->o.qos);
}

static void loop_on_suback(void *arg)
{
    ((probe *)arg)->loop_ready = true;
}

static void sub_on_connect(void *arg, int rc)
{
    probe *p = arg;
    char filter[96];
    if (rc) {
        fprintf(stderr, "weir probe: subscriber: MQTT connection refused or failed\n");
        p->failed++;
        return;
    }
    snprintf(filter, sizeof(filter), "%s/+", p->topic_base);
    mqttc_subscribe(p->sub, filter, p->o.qos);
}

static void sub_on_suback(void *arg)
{
    ((probe *)arg)->sub_ready = true;
}

static void on_client_closed(void *arg)
{
    probe *p = arg;
    p->closed++;
}

static void dev_on_connect(void *arg, int rc)
{
    device *d = arg;
    if (rc) {
        d->p->failed++;
        return;
    }
    d->p->connected++;
}

static void dev_on_close(void *arg)
{
    device *d = arg;
    d->c = NULL;
    d->p->closed++;
}

static void dev_publish(uv_timer_t *t);

/* The next instant of a device: a random phase first, then intervals
 * spread uniformly over 0.5..1.5 of the mean (unsynchronised devices). */
static void schedule(device *d, double mean_s, bool first)
{
    double s = first ? rnd() * mean_s : mean_s * (0.5 + rnd());
    uv_timer_start(&d->timer, dev_publish, (uint64_t)(s * 1000.0 + 0.5), 0);
}

static void dev_publish(uv_timer_t *t)
{
    device *d = t->data;
    probe *p = d->p;
    if (p->phase != 1 || !d->c)
        return;
    unsigned long seq = atomic_load(&p->sent);
    if (seq >= p->max_msgs) {
        p->drops++;
        return;
    }
    char topic[96], head[256];
    int64_t t0 = weir_wall_ns(); /* T0: the reading */
    snprintf(topic, sizeof(topic), "%s/%s", p->topic_base, d->name);
    int64_t t1 = weir_wall_ns(); /* T1: handed to the network */
    int n = snprintf(head, sizeof(head), "{\"device\":\"%s\",\"seq\":%lu,\"t0\":%lld,\"t1\":%lld,"
                                         "\"pad\":\"", d->name, seq, (long long)t0, (long long)t1);
    size_t padn = p->o.payload > (size_t)n + 2 ? p->o.payload - (size_t)n - 2 : 0;
    char *msg = malloc((size_t)n + padn + 3);
    if (msg) {
        memcpy(msg, head, (size_t)n);
        memcpy(msg + n, p->pad, padn);
        memcpy(msg + n + padn, "\"}", 3);
        int rc = mqttc_publish(d->c, topic, msg, (size_t)n + padn + 2, p->o.qos);
        free(msg);
        if (rc >= 0)
            atomic_fetch_add(&p->sent, 1);
        else
            p->drops++;
    }
    schedule(d, 1.0 / p->o.rate, false);
}

static bool all_received(probe *p)
{
    unsigned long sent = atomic_load(&p->sent);
    return (!p->o.direct || p->direct_received >= sent) &&
           (!p->o.push || atomic_load(&p->push.received) >= sent) &&
           (!p->o.poll || atomic_load(&p->poll.received) >= sent) &&
           (!p->o.loop || atomic_load(&p->peer.received) >= sent);
}

static void close_clients(probe *p)
{
    p->phase = 3;
    for (int i = 0; i < p->o.devices; i++) {
        uv_close((uv_handle_t *)&p->dev[i].timer, NULL);
        if (p->dev[i].c)
            mqttc_close(p->dev[i].c);
    }
    if (p->sub)
        mqttc_close(p->sub);
    if (p->loop_sub)
        mqttc_close(p->loop_sub);
    uv_close((uv_handle_t *)&p->clock, NULL);
}

static void on_clock(uv_timer_t *t)
{
    probe *p = t->data;
    int64_t now = weir_mono_ns();
    switch (p->phase) {
    case 0: {
        bool ready = p->connected == p->o.devices && (!p->o.direct || p->sub_ready) &&
                     (!p->o.loop || p->loop_ready) &&
                     (!p->o.push || atomic_load(&p->push.ready)) &&
                     (!p->o.poll || atomic_load(&p->poll.ready));
        if (p->failed || now > p->t_deadline) {
            fprintf(stderr, "weir probe: %d of %d devices connected, %d failed; giving up\n",
                    p->connected, p->o.devices, p->failed);
            close_clients(p);
            return;
        }
        if (!ready)
            return;
        p->phase = 1;
        p->t_start = now;
        p->t_stop = now + (int64_t)(p->o.duration * 1e9);
        for (int i = 0; i < p->o.devices; i++)
            schedule(&p->dev[i], 1.0 / p->o.rate, true);
        return;
    }
    case 1:
        if (now < p->t_stop)
            return;
        p->phase = 2;
        for (int i = 0; i < p->o.devices; i++)
            uv_timer_stop(&p->dev[i].timer);
        p->t_deadline = now + (int64_t)(p->o.drain_s * 1e9);
        return;
    case 2:
        if (all_received(p) || now > p->t_deadline)
            close_clients(p);
        return;
    default:
        return;
    }
}

/* ---- Node API ------------------------------------------------------------- */

static size_t sink_body(char *d, size_t size, size_t n, void *arg)
{
    buf_append(arg, d, size * n); /* bounded; the rest is dropped */
    return size * n;
}

static int http_simple(const char *method, const char *url, const char *body, long *status,
                       char *err, size_t errlen)
{
    CURL *c = curl_easy_init();
    if (!c)
        return WEIR_ENOMEM;
    weir_buf resp;
    buf_init(&resp, 1u << 20);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 30000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
    }
    CURLcode rc = curl_easy_perform(c);
    *status = 0;
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    else
        snprintf(err, errlen, "%s", curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    buf_free(&resp);
    return rc == CURLE_OK ? WEIR_OK : WEIR_EIO;
}

static int define_stream(probe *p)
{
    char url[1024], err[256];
    snprintf(url, sizeof(url), "%s/api/v1/streams", p->o.http);
    char src[200];
    snprintf(src, sizeof(src), "mqtt:%s/+", p->topic_base);
    json_t *def = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:s}", "name", p->stream, "source",
                            src, "key", "device", "timestamp", "t0", "time_format", "ns",
                            "partitions", 1, "sync", p->o.sync);
    char *body = def ? json_dumps(def, JSON_COMPACT) : NULL;
    json_decref(def);
    long status;
    int rc = body ? http_simple("POST", url, body, &status, err, sizeof(err)) : WEIR_ENOMEM;
    free(body);
    if (rc || status / 100 != 2) {
        fprintf(stderr, "weir probe: cannot define stream %s at %s: %s\n", p->stream, url,
                rc ? err : "the node refused it (check --sync)");
        return WEIR_EIO;
    }
    return WEIR_OK;
}

static void delete_stream(probe *p)
{
    char url[1024], err[256];
    long status;
    snprintf(url, sizeof(url), "%s/api/v1/streams/%s", p->o.http, p->stream);
    /* The live feed has just been closed: the node may still hold its
     * readers for a moment (the stream is busy until then). */
    for (int i = 0; i < 50; i++) {
        if (http_simple("DELETE", url, NULL, &status, err, sizeof(err)) ||
            status / 100 == 2 || status == 404)
            break;
        sleep_ms(20);
    }
}

/* ---- Results -------------------------------------------------------------- */

static json_t *summary_json(lstats *s)
{
    lstats_summary m;
    lstats_summarise(s, &m);
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "n", (json_int_t)m.n, "min", m.min,
                     "avg", m.avg, "p95", m.p95, "p99", m.p99, "max", m.max, "std", m.std);
}

static json_t *histogram_json(const lstats *s)
{
    uint64_t counts[LSTATS_N_BOUNDS + 1];
    lstats_histogram(s, counts);
    json_t *b = json_array(), *c = json_array();
    for (int i = 0; i < LSTATS_N_BOUNDS; i++)
        json_array_append_new(b, json_real(lstats_bounds_ms[i]));
    for (int i = 0; i <= LSTATS_N_BOUNDS; i++)
        json_array_append_new(c, json_integer((json_int_t)counts[i]));
    return json_pack("{s:o, s:o}", "bounds_ms", b, "counts", c);
}

static json_t *path_json(path *pa)
{
    json_t *m = json_object();
    for (int i = 0; i < M_N; i++)
        json_object_set_new(m, metric_names[i], summary_json(&pa->m[i]));
    return json_pack("{s:I, s:I, s:o}", "received", (json_int_t)atomic_load(&pa->received),
                     "duplicates", (json_int_t)pa->dups, "metrics", m);
}

static json_t *results_json(probe *p)
{
    const probe_opts *o = &p->o;
    char mqtt[300];
    snprintf(mqtt, sizeof(mqtt), "%s:%d", o->mqtt_host, o->mqtt_port);
    json_t *opts = json_pack("{s:i, s:f, s:f, s:I, s:i, s:s, s:i, s:s, s:s, s:s, s:s, s:s?}",
                             "devices", o->devices, "rate", o->rate, "duration_s", o->duration,
                             "payload_bytes", (json_int_t)o->payload, "qos", o->qos, "sync",
                             o->sync, "poll_ms", o->poll_ms, "mqtt", mqtt, "http", o->http,
                             "stream", p->stream, "topic", p->topic_base, "loop_topic",
                             o->loop_topic);
    json_t *paths = json_object(), *metrics = json_object(), *hist = json_object();
    if (o->direct) {
        json_t *m = json_pack("{s:o}", "LPS", summary_json(&p->lps));
        json_object_set_new(paths, "direct",
                            json_pack("{s:I, s:I, s:o}", "received",
                                      (json_int_t)p->direct_received, "duplicates",
                                      (json_int_t)p->direct_dups, "metrics", m));
    }
    if (o->push)
        json_object_set_new(paths, "push", path_json(&p->push));
    if (o->poll)
        json_object_set_new(paths, "poll", path_json(&p->poll));
    if (o->loop)
        json_object_set_new(paths, "loop", path_json(&p->peer));
    /* The headline metrics: the push path (weir's read-back on commit), and
     * LPS from the direct path; the poll path's are under paths.poll. */
    path *ref = o->push ? &p->push : o->poll ? &p->poll : o->loop ? &p->peer : NULL;
    for (int i = 0; ref && i < M_N; i++) {
        json_object_set_new(metrics, metric_names[i], summary_json(&ref->m[i]));
        json_object_set_new(hist, metric_names[i], histogram_json(&ref->m[i]));
    }
    if (o->direct) {
        json_object_set_new(metrics, "LPS", summary_json(&p->lps));
        json_object_set_new(hist, "LPS", histogram_json(&p->lps));
    }
    return json_pack("{s:s, s:s, s:o, s:I, s:I, s:s, s:o, s:o, s:o, s:{s:s}}", "id", p->id,
                     "started", p->started, "options", opts, "sent",
                     (json_int_t)atomic_load(&p->sent), "dropped_by_probe", (json_int_t)p->drops,
                     "reference_path", ref ? ref->name : "direct", "paths", paths, "metrics",
                     metrics, "histograms", hist, "not_measured", "DRL",
                     "no rate-limited sink in the probe's paths");
}

static void print_row(const char *metric, const char *pathname, json_t *s)
{
    printf("%-5s %-7s %7lld %9.3f %9.3f %9.3f %9.3f %9.3f %9.3f\n", metric, pathname,
           (long long)json_integer_value(json_object_get(s, "n")),
           json_real_value(json_object_get(s, "min")), json_real_value(json_object_get(s, "avg")),
           json_real_value(json_object_get(s, "p95")), json_real_value(json_object_get(s, "p99")),
           json_real_value(json_object_get(s, "max")), json_real_value(json_object_get(s, "std")));
}

static void print_table(probe *p, json_t *res)
{
    const probe_opts *o = &p->o;
    json_t *paths = json_object_get(res, "paths");
    printf("weir probe %s: %d devices x %g msg/s x %g s, %zu-byte payloads, QoS %d, "
           "stream sync %s, poll every %d ms\n",
           p->id, o->devices, o->rate, o->duration, o->payload, o->qos, o->sync, o->poll_ms);
    printf("sent %lu", atomic_load(&p->sent));
    const char *names[] = {"direct", "push", "poll", "loop"};
    for (int i = 0; i < 4; i++) {
        json_t *pa = json_object_get(paths, names[i]);
        if (pa)
            printf(" | %s received %lld", names[i],
                   (long long)json_integer_value(json_object_get(pa, "received")));
    }
    printf("\n\n%-5s %-7s %7s %9s %9s %9s %9s %9s %9s   (ms)\n", "", "path", "n", "min", "avg",
           "p95", "p99", "max", "std");
    for (int m = 0; m < M_N; m++) {
        for (int i = 1; i < 4; i++) {
            json_t *pa = json_object_get(paths, names[i]);
            if (!pa)
                continue;
            /* DPC and DCD of weir do not depend on the read-back: show them
             * once (a loop through a peer has its own). */
            if (m <= M_DCD && i == 2 && json_object_get(paths, "push"))
                continue;
            print_row(metric_names[m], m <= M_DCD && i < 3 ? "ingest" : names[i],
                      json_object_get(json_object_get(pa, "metrics"), metric_names[m]));
        }
    }
    json_t *d = json_object_get(paths, "direct");
    if (d)
        print_row("LPS", "direct", json_object_get(json_object_get(d, "metrics"), "LPS"));
    printf("\nDPC=T2-T1 DCD=T3-T2 DDC=T4-T3 DCS=T5-T4 LCDC=T4-T2 LPDS=T5-T1 (through storage), "
           "LPS=T5-T1 (direct). DRL not measured.\n");
}

/* ---- Command -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: weir probe [--mqtt HOST:PORT] [--http URL] [--devices N] [--rate R]\n"
            "                  [--duration S] [--payload BYTES] [--qos 0|1] [--sync POLICY]\n"
            "                  [--poll MS] [--paths direct,push,poll] [--drain S] [--json]\n"
            "                  [--no-post] [--keep] [--loop-topic FILTER]\n\n"
            "Measures DPC, DCD, DDC, DCS, LCDC, LPDS and LPS of a running node with N\n"
            "simulated devices publishing R msg/s each for S seconds (defaults: 127.0.0.1:1883,\n"
            "$WEIR_URL or http://127.0.0.1:8080, 10 devices, 1 msg/s, 10 s, 128 bytes, QoS 1,\n"
            "sync interval=5ms, poll every 100 ms, all three paths). --loop-topic adds a\n"
            "fourth: a peer that stores the readings elsewhere and publishes them back\n"
            "with {seq,t1,t2,t3,t4} (bench/latency/peer.py); --paths direct --loop-topic T\n"
            "measures a broker that is not weir.\n");
}

static int parse_opts(int argc, char **argv, probe_opts *o)
{
    static const struct option lo[] = {
        {"mqtt", required_argument, 0, 'm'},   {"http", required_argument, 0, 'u'},
        {"url", required_argument, 0, 'u'},    {"devices", required_argument, 0, 'n'},
        {"rate", required_argument, 0, 'r'},   {"duration", required_argument, 0, 'd'},
        {"payload", required_argument, 0, 'b'}, {"qos", required_argument, 0, 'q'},
        {"sync", required_argument, 0, 's'},   {"poll", required_argument, 0, 'p'},
        {"paths", required_argument, 0, 'P'},  {"drain", required_argument, 0, 'D'},
        {"json", no_argument, 0, 'j'},         {"no-post", no_argument, 0, 'N'},
        {"keep", no_argument, 0, 'k'},         {"help", no_argument, 0, 'h'},
        {"loop-topic", required_argument, 0, 'L'},
        {0, 0, 0, 0},
    };
    const char *mqtt = "127.0.0.1:1883", *paths = "direct,push,poll";
    *o = (probe_opts){.devices = 10, .rate = 1, .duration = 10, .payload = 128, .qos = 1,
                      .sync = "interval=5ms", .poll_ms = 100, .drain_s = 5, .post = true};
    const char *http = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': mqtt = optarg; break;
        case 'u': http = optarg; break;
        case 'n': o->devices = atoi(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'd': o->duration = atof(optarg); break;
        case 'b': o->payload = (size_t)strtoull(optarg, NULL, 10); break;
        case 'q': o->qos = atoi(optarg); break;
        case 's': o->sync = optarg; break;
        case 'p': o->poll_ms = atoi(optarg); break;
        case 'P': paths = optarg; break;
        case 'D': o->drain_s = atof(optarg); break;
        case 'j': o->json = true; break;
        case 'N': o->post = false; break;
        case 'k': o->keep = true; break;
        case 'L': o->loop_topic = optarg; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    o->http = cli_base_url(http);
    o->direct = strstr(paths, "direct") != NULL;
    o->push = strstr(paths, "push") != NULL;
    o->poll = strstr(paths, "poll") != NULL;
    o->loop = o->loop_topic != NULL;
    if (config_parse_hostport(mqtt, o->mqtt_host, sizeof(o->mqtt_host), &o->mqtt_port) ||
        o->devices < 1 || o->devices > PROBE_MAX_DEVICES || !(o->rate > 0) || o->rate > 1e5 ||
        !(o->duration > 0) || o->qos < 0 || o->qos > 1 || o->poll_ms < 1 ||
        o->payload > (1u << 20) || !(o->direct || o->push || o->poll || o->loop) || o->drain_s < 0) {
        fprintf(stderr, "weir probe: bad option value (see --help)\n");
        return -1;
    }
    return 0;
}

static void probe_free(probe *p)
{
    for (int i = 0; i < M_N; i++) {
        lstats_free(&p->push.m[i]);
        lstats_free(&p->poll.m[i]);
        lstats_free(&p->peer.m[i]);
    }
    lstats_free(&p->lps);
    free(p->push.seen);
    free(p->poll.seen);
    free(p->peer.seen);
    free(p->direct_seen);
    free(p->dev);
    free(p->pad);
    free(p);
}

int cli_probe(int argc, char **argv)
{
    probe *p = calloc(1, sizeof(*p));
    if (!p)
        return 1;
    if (parse_opts(argc, argv, &p->o)) {
        free(p);
        return 2;
    }
    const probe_opts *o = &p->o;
    int status = 1;
    pthread_t th_push, th_poll;
    bool push_started = false, poll_started = false, stream_defined = false;

    srand((unsigned)(weir_wall_ns() ^ (int64_t)getpid()));
    snprintf(p->id, sizeof(p->id), "%08x", (unsigned)rand());
    snprintf(p->topic_base, sizeof(p->topic_base), "weir-probe/%s", p->id);
    snprintf(p->stream, sizeof(p->stream), "probe_%s", p->id);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(p->started, sizeof(p->started), "%Y-%m-%dT%H:%M:%SZ", &tm);
    p->push.name = "push";
    p->poll.name = "poll";
    p->peer.name = "loop";
    double expect = (double)o->devices * o->rate * o->duration;
    p->max_msgs = (uint64_t)(expect * 1.6) + (uint64_t)o->devices * 2 + 64;
    if (p->max_msgs > PROBE_MAX_MESSAGES)
        p->max_msgs = PROBE_MAX_MESSAGES;
    for (int i = 0; i < M_N; i++) {
        lstats_init(&p->push.m[i], p->max_msgs);
        lstats_init(&p->poll.m[i], p->max_msgs);
        lstats_init(&p->peer.m[i], p->max_msgs);
    }
    lstats_init(&p->lps, p->max_msgs);
    size_t seen_bytes = (size_t)(p->max_msgs / 8 + 1);
    p->push.seen = calloc(1, seen_bytes);
    p->poll.seen = calloc(1, seen_bytes);
    p->peer.seen = calloc(1, seen_bytes);
    p->direct_seen = calloc(1, seen_bytes);
    p->dev = calloc((size_t)o->devices, sizeof(*p->dev));
    p->pad = malloc(o->payload + 1);
    if (!p->push.seen || !p->poll.seen || !p->peer.seen || !p->direct_seen || !p->dev || !p->pad)
        goto cleanup;
    memset(p->pad, 'x', o->payload);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    if ((o->push || o->poll)) {
        if (define_stream(p))
            goto cleanup;
        stream_defined = true;
    }
    if (o->push && !pthread_create(&th_push, NULL, push_thread, p))
        push_started = true;
    if (o->poll && !pthread_create(&th_poll, NULL, poll_thread, p))
        poll_started = true;
    if ((o->push && !push_started) || (o->poll && !poll_started))
        goto stop_threads;

    uv_loop_init(&p->loop);
    uv_timer_init(&p->loop, &p->clock);
    p->clock.data = p;
    p->t_deadline = weir_mono_ns() + 15 * (int64_t)1000000000;
    if (o->direct) {
        char cid[64];
        snprintf(cid, sizeof(cid), "weir-probe-%s-sub", p->id);
        mqttc_cbs cb = {.on_connect = sub_on_connect, .on_message = sub_on_message,
                        .on_suback = sub_on_suback, .on_close = on_client_closed, .arg = p};
        if (!(p->sub = mqttc_new(&p->loop, o->mqtt_host, o->mqtt_port, cid, &cb)))
            p->failed++;
    }
    if (o->loop) {
        char cid[64];
        snprintf(cid, sizeof(cid), "weir-probe-%s-loop", p->id);
        mqttc_cbs cb = {.on_connect = loop_on_connect, .on_message = loop_on_message,
                        .on_suback = loop_on_suback, .on_close = on_client_closed, .arg = p};
        if (!(p->loop_sub = mqttc_new(&p->loop, o->mqtt_host, o->mqtt_port, cid, &cb)))
            p->failed++;
    }
    for (int i = 0; i < o->devices; i++) {
        device *d = &p->dev[i];
        d->p = p;
        d->index = i;
        snprintf(d->name, sizeof(d->name), "dev%04d", i);
        uv_timer_init(&p->loop, &d->timer);
        d->timer.data = d;
        char cid[64];
        snprintf(cid, sizeof(cid), "weir-probe-%s-%d", p->id, i);
        mqttc_cbs cb = {.on_connect = dev_on_connect, .on_close = dev_on_close, .arg = d};
        if (!(d->c = mqttc_new(&p->loop, o->mqtt_host, o->mqtt_port, cid, &cb)))
            p->failed++;
    }
    uv_timer_start(&p->clock, on_clock, 20, 20);
    uv_run(&p->loop, UV_RUN_DEFAULT);
    uv_loop_close(&p->loop);
    status = p->phase == 3 && p->t_start ? 0 : 1;

stop_threads:
    atomic_store(&p->stop, true);
    if (push_started)
        pthread_join(th_push, NULL);
    if (poll_started)
        pthread_join(th_poll, NULL);
    if (stream_defined && !o->keep)
        delete_stream(p);
    if (status == 0) {
        json_t *res = results_json(p);
        if (o->json) {
            char *t = json_dumps(res, JSON_INDENT(2));
            if (t)
                puts(t);
            free(t);
        } else {
            print_table(p, res);
        }
        if (o->post) {
            char url[1024], err[256];
            long st;
            snprintf(url, sizeof(url), "%s/api/v1/probe/results", o->http);
            char *t = json_dumps(res, JSON_COMPACT);
            if (!t || http_simple("POST", url, t, &st, err, sizeof(err)) || st / 100 != 2)
                fprintf(stderr, "weir probe: could not post the results to %s\n", url);
            free(t);
        }
        json_decref(res);
        if (!all_received(p))
            fprintf(stderr, "weir probe: not every message came back on every path in time\n");
    }
    curl_global_cleanup();
cleanup:
    probe_free(p);
    return status;
}
