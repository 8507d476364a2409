/* webhook.c -- the webhook: output: each row is POSTed as the JSON of
 * sink/payload.h to an http:// or https:// URL, by libcurl, on a worker
 * thread of its own.
 *
 * ## Threads and the queue
 *
 * emit (loop thread) encodes the row and appends it to a bounded FIFO; one
 * worker thread per sink takes rows from it and delivers them in order, one
 * at a time, on one keep-alive connection (a curl easy handle). The loop
 * never waits on the network. The FIFO's bound is the `queue` option
 * (default 10000 rows): writable() is false once that many rows wait, and
 * the rule runtime then stops reading; when the worker has brought the queue
 * below half the bound it wakes the loop (uv_async) and the sink calls
 * on_drain. Rows emitted while not writable are still accepted up to twice
 * the bound (one input record can close many windows at once); beyond that
 * emit returns WEIR_EFULL and the row is counted as dropped.
 *
 * ## Delivery
 *
 * A 2xx answer is success. Connection errors, timeouts, 5xx and 429 are
 * retried up to `retries` times (default 5) after an exponential back-off
 * with jitter: attempt n waits a random time in [d/2, d] with d =
 * min(retry_max_ms, retry_base_ms * 2^n), so successive waits never shrink;
 * a Retry-After header (seconds or HTTP date) on a 429 or 503 raises the
 * wait to what the server asked for, up to retry_max_ms (default 10000).
 * Any other status (4xx, 3xx: redirects are not followed) fails the row at
 * once. A row that fails is counted (weir_sink_rows_total{result="failed"})
 * and logged, rate-limited, with its _seq; the sink goes on with the next.
 * Timeouts: connect_timeout_ms (default 5000) and timeout_ms for a whole
 * attempt (default 10000).
 *
 * ## Rate limiting and DRL
 *
 * With the `rate` option ("10/s", "600/min"; `burst` tokens, default 1) a
 * token bucket sits in front of the HTTP calls: each row takes a token
 * before its first attempt (retries do not). The time a row waits for its
 * token is the DRL of DESIGN.md, the delay added by a rate limiter in front
 * of a rate-limited sink; every row that passes the limiter adds its wait
 * (0 when a token was there) to a histogram reported by stats() as drl_ms
 * {count,min,avg,p50,p95,p99,max,stddev} and to Prometheus.
 *
 * ## Close
 *
 * close (loop thread) never blocks: it marks the sink closing, which stops
 * the worker at its next step (an in-flight transfer is aborted by curl's
 * progress callback within about a second), and joins it on libuv's thread
 * pool; rows still queued are counted as abandoned and logged. The
 * runtime's checkpoints do not wait for webhook delivery, so of the
 * abandoned rows only those after the last checkpoint are emitted again
 * when the rule restarts; the others leave a gap in _seq. The env must
 * outlive the loop run that completes the close.
 *
 * Options: queue, retries, retry_base_ms (default 100), retry_max_ms,
 * connect_timeout_ms, timeout_ms, rate, burst, headers (an object of extra
 * request headers, e.g. {"Authorization": "Bearer ..."}). Each request also
 * carries X-Weir-Rule and X-Weir-Seq.
 */
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "sink/payload.h"
#include "sink/sink_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define WH_BODY_MAX (16u << 20)

typedef struct wh_item {
    struct wh_item *next;
    uint64_t seq;
    size_t len;
    char body[];
} wh_item;

typedef struct webhook {
    sink_base base;
    sink_env *env;
    sink_stats *st;
    char *rule, *url;

    /* Options. */
    int64_t qmax, retries, retry_base_ms, retry_max_ms, connect_ms, timeout_ms;
    double rate, burst;
    struct curl_slist *extra; /* "Name: value" from the headers option */

    /* Shared between the loop and the worker, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* rows queued, or closing */
    wh_item *head, *tail;
    size_t qlen;
    bool want_drain; /* writable() said no: call on_drain below half */
    int closing;     /* also read without the lock by curl's progress callback */
    void (*on_drain)(void *);
    void *drain_arg;
    char last_error[256];

    /* Loop thread only. */
    uv_async_t *async;
    uv_work_t reaper;
    weir_buf scratch;
    bool started;
    pthread_t th;

    /* Worker only. */
    CURL *curl;
    double tokens;
    int64_t tb_last_ns;
    uint64_t rng;
} webhook;

static wlog_limit wh_fail_lim, wh_drop_lim;

/* ---- Helpers ----------------------------------------------------------- */

static bool is_closing(webhook *w)
{
    return __atomic_load_n(&w->closing, __ATOMIC_ACQUIRE) != 0;
}

/* Waits until the monotonic deadline or until the sink closes; true when
 * closing. */
static bool wait_until(webhook *w, int64_t deadline_ns)
{
    struct timespec ts = {.tv_sec = deadline_ns / WEIR_NS_PER_S,
                          .tv_nsec = deadline_ns % WEIR_NS_PER_S};
    pthread_mutex_lock(&w->mu);
    while (!w->closing && weir_mono_ns() < deadline_ns)
        if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) == ETIMEDOUT)
            break;
    bool c = w->closing;
    pthread_mutex_unlock(&w->mu);
    return c;
}

static uint64_t next_rand(webhook *w)
{
    /* xorshift64*: jitter only, no need for more. */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static void set_last_error(webhook *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_last_error(webhook *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&w->mu);
    vsnprintf(w->last_error, sizeof(w->last_error), fmt, ap);
    pthread_mutex_unlock(&w->mu);
    va_end(ap);
}

/* ---- Worker ------------------------------------------------------------ */

static size_t discard(char *p, size_t size, size_t n, void *arg)
{
    return size * n;
}

static int progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    return is_closing(arg) ? 1 : 0;
}

static int curl_setup(webhook *w)
{
    CURL *c = curl_easy_init();
    if (!c)
        return WEIR_ENOMEM;
    w->curl = c;
    curl_easy_setopt(c, CURLOPT_URL, w->url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)w->connect_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "weir/" WEIR_VERSION);
    return WEIR_OK;
}

/* One attempt. Returns the curl code; *status is the HTTP status (0 when
 * none) and *retry_after_s the Retry-After seconds (0 when none). */
static CURLcode post(webhook *w, const wh_item *it, long *status, int64_t *retry_after_s)
{
    char h_rule[320], h_seq[64];
    snprintf(h_rule, sizeof(h_rule), "X-Weir-Rule: %.300s", w->rule);
    snprintf(h_seq, sizeof(h_seq), "X-Weir-Seq: %" PRIu64, it->seq);
    struct curl_slist *hs = NULL, *t;
    const char *fixed[] = {"Content-Type: application/json", "Expect:", h_rule, h_seq};
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    for (size_t i = 0; i < 4; i++) {
        if (!(t = curl_slist_append(hs, fixed[i])))
            goto cleanup;
        hs = t;
    }
    for (struct curl_slist *e = w->extra; e; e = e->next) {
        if (!(t = curl_slist_append(hs, e->data)))
            goto cleanup;
        hs = t;
    }
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDS, (const void *)&it->body[0]);
    curl_easy_setopt(w->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)it->len);
    cc = curl_easy_perform(w->curl);
    *status = 0;
    *retry_after_s = 0;
    if (cc == CURLE_OK) {
        curl_off_t ra = 0;
        curl_easy_getinfo(w->curl, CURLINFO_RESPONSE_CODE, status);
        if (curl_easy_getinfo(w->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            *retry_after_s = (int64_t)ra;
    }
cleanup:
    curl_easy_setopt(w->curl, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hs);
    return cc;
}

static bool curl_permanent(CURLcode cc)
{
    switch (cc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_LOGIN_DENIED:
    case CURLE_OUT_OF_MEMORY:
        return true;
    default:
        return false;
    }
}

/* The wait before retry number attempt+1, in ms. */
static int64_t backoff_ms(webhook *w, int64_t attempt)
{
    int64_t d = w->retry_base_ms;
    for (int64_t i = 0; i < attempt && d < w->retry_max_ms; i++)
        d *= 2;
    if (d > w->retry_max_ms)
        d = w->retry_max_ms;
    int64_t half = d / 2;
    return half + (int64_t)(next_rand(w) % (uint64_t)(d - half + 1));
}

/* Delivers one row with its retries. False when the sink closed meanwhile
 * (the row is then abandoned). */
static bool deliver(webhook *w, const wh_item *it)
{
    for (int64_t attempt = 0;; attempt++) {
        long status = 0;
        int64_t ra = 0;
        CURLcode cc = post(w, it, &status, &ra);
        if (cc == CURLE_OK && status >= 200 && status < 300) {
            sink_inc(w->st->sent);
            return true;
        }
        if (is_closing(w))
            return false;
        bool transient;
        if (cc != CURLE_OK) {
            set_last_error(w, "seq %" PRIu64 ": %s", it->seq, curl_easy_strerror(cc));
            transient = !curl_permanent(cc);
        } else {
            set_last_error(w, "seq %" PRIu64 ": HTTP %ld", it->seq, status);
            transient = status >= 500 || status == 429;
        }
        if (!transient || attempt >= w->retries) {
            sink_inc(w->st->failed);
            wlog_limited(&wh_fail_lim, WLOG_WARN, "sink", "webhook_row_failed",
                         "rule=%s seq=%" PRIu64 " attempts=%" PRId64 " status=%ld error=\"%s\"",
                         w->rule, it->seq, attempt + 1, status,
                         cc != CURLE_OK ? curl_easy_strerror(cc) : "http status");
            return true;
        }
        int64_t d = backoff_ms(w, attempt);
        if (ra > 0 && (status == 429 || status == 503)) {
            int64_t want = ra * 1000 > w->retry_max_ms ? w->retry_max_ms : ra * 1000;
            if (want > d)
                d = want;
        }
        sink_inc(w->st->retries);
        if (wait_until(w, weir_mono_ns() + d * WEIR_NS_PER_MS))
            return false;
    }
}

static void refill(webhook *w, int64_t now)
{
    w->tokens += (double)(now - w->tb_last_ns) / 1e9 * w->rate;
    if (w->tokens > w->burst)
        w->tokens = w->burst;
    w->tb_last_ns = now;
}

/* Takes a token, recording the wait (the DRL). False when closing. */
static bool take_token(webhook *w)
{
    int64_t t0 = weir_mono_ns();
    refill(w, t0);
    while (w->tokens < 1.0) {
        int64_t need = (int64_t)ceil((1.0 - w->tokens) / w->rate * 1e9);
        if (wait_until(w, weir_mono_ns() + need))
            return false;
        refill(w, weir_mono_ns());
    }
    w->tokens -= 1.0;
    int64_t waited = weir_mono_ns() - t0;
    sink_stats_drl_add(w->st, waited > 0 ? (uint64_t)waited / 1000 : 0);
    return true;
}

static void *worker(void *arg)
{
    webhook *w = arg;
    w->tb_last_ns = weir_mono_ns();
    w->tokens = w->burst;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (!w->closing && !w->head)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->closing) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        wh_item *it = w->head;
        if (!(w->head = it->next))
            w->tail = NULL;
        w->qlen--;
        __atomic_store_n(&w->st->queue, (uint64_t)w->qlen, __ATOMIC_RELAXED);
        if (w->want_drain && w->qlen * 2 < (size_t)w->qmax) {
            w->want_drain = false;
            uv_async_send(w->async); /* under mu: close sets closing first */
        }
        pthread_mutex_unlock(&w->mu);
        bool ok = (w->rate <= 0 || take_token(w)) && deliver(w, it);
        free(it);
        if (!ok) {
            sink_inc(w->st->abandoned);
            break;
        }
    }
    return NULL;
}

/* ---- Loop side --------------------------------------------------------- */

static void on_async(uv_async_t *a)
{
    webhook *w = a->data;
    pthread_mutex_lock(&w->mu);
    void (*cb)(void *) = w->closing ? NULL : w->on_drain;
    void *arg = w->drain_arg;
    pthread_mutex_unlock(&w->mu);
    if (cb)
        cb(arg);
}

static int w_emit(void *sink, const eng_row *row, uint64_t seq)
{
    webhook *w = sink;
    buf_reset(&w->scratch);
    int rc = sink_payload_json(w->rule, row, seq, &w->scratch);
    if (rc) {
        sink_inc(w->st->failed);
        set_last_error(w, "seq %" PRIu64 ": payload: %s", seq, weir_strerror(rc));
        return WEIR_OK;
    }
    size_t n = buf_used(&w->scratch);
    wh_item *it = malloc(sizeof(*it) + n + 1);
    if (!it)
        return WEIR_ENOMEM;
    it->next = NULL;
    it->seq = seq;
    it->len = n;
    memcpy(it->body, buf_head(&w->scratch), n);
    it->body[n] = '\0';
    pthread_mutex_lock(&w->mu);
    if (w->qlen >= 2 * (size_t)w->qmax) {
        w->want_drain = true;
        pthread_mutex_unlock(&w->mu);
        free(it);
        sink_inc(w->st->dropped);
        wlog_limited(&wh_drop_lim, WLOG_WARN, "sink", "webhook_queue_full",
                     "rule=%s seq=%" PRIu64 " queue=%zu", w->rule, seq, 2 * (size_t)w->qmax);
        return WEIR_EFULL;
    }
    if (w->tail)
        w->tail->next = it;
    else
        w->head = it;
    w->tail = it;
    w->qlen++;
    if (w->qlen >= (size_t)w->qmax)
        w->want_drain = true;
    __atomic_store_n(&w->st->queue, (uint64_t)w->qlen, __ATOMIC_RELAXED);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return WEIR_OK;
}

static bool w_writable(void *sink)
{
    webhook *w = sink;
    pthread_mutex_lock(&w->mu);
    bool ok = w->qlen < (size_t)w->qmax;
    if (!ok)
        w->want_drain = true;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

static json_t *w_stats(void *sink)
{
    webhook *w = sink;
    json_t *o = json_pack("{ss ss sI sI}", "type", "webhook", "url", w->url, "queue_max",
                          (json_int_t)w->qmax, "retries_max", (json_int_t)w->retries);
    if (!o)
        return NULL;
    pthread_mutex_lock(&w->mu);
    json_object_set_new(o, "queue", json_integer((json_int_t)w->qlen));
    if (w->last_error[0])
        json_object_set_new(o, "last_error", json_string(w->last_error));
    pthread_mutex_unlock(&w->mu);
    if (w->rate > 0) {
        json_object_set_new(o, "rate_per_s", json_real(w->rate));
        json_object_set_new(o, "burst", json_real(w->burst));
    }
    sink_stats_json(w->st, o, true);
    return o;
}

static void free_async(uv_handle_t *h)
{
    free(h);
}

static void free_webhook(webhook *w)
{
    wh_item *it = w->head;
    while (it) {
        wh_item *next = it->next;
        free(it);
        it = next;
    }
    if (w->curl)
        curl_easy_cleanup(w->curl);
    curl_slist_free_all(w->extra);
    buf_free(&w->scratch);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->rule);
    free(w->url);
    free(w);
}

static void reap_work(uv_work_t *req)
{
    webhook *w = req->data;
    pthread_join(w->th, NULL);
}

static void reap_done(uv_work_t *req, int status)
{
    webhook *w = req->data;
    size_t left = w->qlen;
    if (left) {
        for (size_t i = 0; i < left; i++)
            sink_inc(w->st->abandoned);
        wlog_warn("sink", "webhook_abandoned", "rule=%s rows=%zu", w->rule, left);
    }
    __atomic_store_n(&w->st->queue, 0, __ATOMIC_RELAXED);
    uv_close((uv_handle_t *)w->async, free_async);
    free_webhook(w);
}

static void w_close(void *sink)
{
    webhook *w = sink;
    pthread_mutex_lock(&w->mu);
    __atomic_store_n(&w->closing, 1, __ATOMIC_RELEASE);
    w->on_drain = NULL;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    w->reaper.data = w;
    if (uv_queue_work(w->env->loop, &w->reaper, reap_work, reap_done) != 0) {
        /* Cannot happen with a live loop; join here rather than leak. */
        reap_work(&w->reaper);
        reap_done(&w->reaper, 0);
    }
}

static const sink_kind webhook_kind = {w_emit, w_writable, w_stats, w_close};

/* ---- Open -------------------------------------------------------------- */

static int check_url(const char *url, char *err, size_t errlen)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL;
    int rc = WEIR_EINVAL;
    if (!u)
        return WEIR_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
        snprintf(err, errlen, "webhook: '%.200s' is not a URL", url);
        goto cleanup;
    }
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        snprintf(err, errlen, "webhook: the URL must be http:// or https://");
        goto cleanup;
    }
    rc = WEIR_OK;
cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(u);
    return rc;
}

static int parse_headers(webhook *w, const json_t *opts, char *err, size_t errlen)
{
    const json_t *hs = opts ? json_object_get(opts, "headers") : NULL;
    if (!hs)
        return WEIR_OK;
    if (!json_is_object(hs)) {
        snprintf(err, errlen, "option headers must be an object of strings");
        return WEIR_EINVAL;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)hs, k, v) {
        const char *s = json_string_value(v);
        if (!s || !k[0] || strpbrk(k, "\r\n: \t") || strpbrk(s, "\r\n")) {
            snprintf(err, errlen, "option headers: bad header '%.60s'", k);
            return WEIR_EINVAL;
        }
        char line[1024];
        if ((size_t)snprintf(line, sizeof(line), "%s: %s", k, s) >= sizeof(line)) {
            snprintf(err, errlen, "option headers: header '%.60s' too long", k);
            return WEIR_EINVAL;
        }
        struct curl_slist *t = curl_slist_append(w->extra, line);
        if (!t)
            return WEIR_ENOMEM;
        w->extra = t;
    }
    return WEIR_OK;
}

int sink_webhook_open(sink_env *e, const char *rule, const char *url, const json_t *options,
                      void (*on_drain)(void *), void *drain_arg, sink_base **out, char *err,
                      size_t errlen)
{
    int rc;
    webhook *w = calloc(1, sizeof(*w));
    if (!w)
        return WEIR_ENOMEM;
    w->base.kind = &webhook_kind;
    w->env = e;
    w->qmax = 10000;
    w->retries = 5;
    w->retry_base_ms = 100;
    w->retry_max_ms = 10000;
    w->connect_ms = 5000;
    w->timeout_ms = 10000;
    w->burst = 1;
    w->on_drain = on_drain;
    w->drain_arg = drain_arg;
    w->rng = (uint64_t)weir_mono_ns() ^ (uint64_t)(uintptr_t)w ^ 0x9E3779B97F4A7C15ULL;
    if (!w->rng)
        w->rng = 1;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    buf_init(&w->scratch, WH_BODY_MAX);
    int64_t burst = 1;
    if ((rc = check_url(url, err, errlen)) ||
        (rc = sink_opt_int(options, "queue", 1, 10000000, &w->qmax, err, errlen)) ||
        (rc = sink_opt_int(options, "retries", 0, 1000, &w->retries, err, errlen)) ||
        (rc = sink_opt_int(options, "retry_base_ms", 1, 3600000, &w->retry_base_ms, err,
                           errlen)) ||
        (rc = sink_opt_int(options, "retry_max_ms", 1, 3600000, &w->retry_max_ms, err,
                           errlen)) ||
        (rc = sink_opt_int(options, "connect_timeout_ms", 1, 3600000, &w->connect_ms, err,
                           errlen)) ||
        (rc = sink_opt_int(options, "timeout_ms", 1, 3600000, &w->timeout_ms, err, errlen)) ||
        (rc = sink_opt_rate(options, "rate", &w->rate, err, errlen)) ||
        (rc = sink_opt_int(options, "burst", 1, 1000000, &burst, err, errlen)) ||
        (rc = parse_headers(w, options, err, errlen)))
        goto cleanup;
    w->burst = (double)burst;
    if (w->retry_max_ms < w->retry_base_ms)
        w->retry_max_ms = w->retry_base_ms;
    rc = WEIR_ENOMEM;
    if (!(w->rule = strdup(rule)) || !(w->url = strdup(url)) || !(w->st = sink_stats_get(e, rule)))
        goto cleanup;
    if ((rc = curl_setup(w)))
        goto cleanup;
    if (!(w->async = malloc(sizeof(*w->async)))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if (uv_async_init(e->loop, w->async, on_async) != 0) {
        free(w->async);
        w->async = NULL;
        rc = WEIR_EINTERNAL;
        goto cleanup;
    }
    w->async->data = w;
    if (pthread_create(&w->th, NULL, worker, w) != 0) {
        uv_close((uv_handle_t *)w->async, free_async);
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    w->started = true;
    *out = &w->base;
    return WEIR_OK;
cleanup:
    free_webhook(w);
    return rc;
}
