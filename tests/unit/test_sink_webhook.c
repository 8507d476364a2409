/* test_sink_webhook.c -- the webhook sink against a real HTTP server.
 *
 * A tiny HTTP/1.1 server runs on a thread of the test, bound to 127.0.0.1 on
 * a free port. It answers each request with the next step of a script
 * (status, optional Retry-After, optionally held until the test opens a
 * gate) and records every request: its X-Weir-Seq, its body and its arrival
 * time. The sink runs on a uv loop in the main thread as in a node. Every
 * wait is for a condition with a deadline (the server signals a condition
 * variable on each request; the loop is turned between checks); nothing
 * sleeps to synchronise. Timing assertions are one-sided (at least the
 * back-off / Retry-After / rate the sink promises), so a slow machine
 * cannot make them fail.
 *
 * Covered: 2xx; 500 retried with growing back-off then success; 429 with
 * Retry-After honoured; 400 failed at once; retries exhausted; connection
 * refused; the token-bucket rate limiter (every row delivered once and in
 * order, measured DRL > 0, metrics exposed); the queue bound (writable false,
 * accept up to twice the bound then EFULL, on_drain once below half); close
 * with rows in flight (abandoned, no leak, loop not blocked).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "sink/sink.h"

#define MAX_REQS  512
#define DEADLINE_MS 20000

/* ---- The scripted server ----------------------------------------------- */

typedef struct step {
    int status;      /* 0 = 200 */
    int retry_after; /* seconds, 0 = none */
    bool hold;       /* wait for the gate before answering */
} step;

typedef struct req {
    uint64_t seq;
    int64_t t_ns;
    char body[256];
} req;

typedef struct server {
    int lfd, port;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop, gate_open;
    step script[64];
    int n_script;
    req reqs[MAX_REQS];
    int n_reqs;
    int held; /* requests waiting at the gate */
} server;

static bool srv_stopping(server *s)
{
    pthread_mutex_lock(&s->mu);
    bool b = s->stop;
    pthread_mutex_unlock(&s->mu);
    return b;
}

/* Reads until the buffer holds one whole request; returns its length, 0 on
 * EOF or stop. */
static size_t read_request(server *s, int fd, char *buf, size_t cap, size_t *have)
{
    for (;;) {
        buf[*have] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end - buf) + 4, clen = 0;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl && cl < end)
                clen = strtoul(cl + 17, NULL, 10);
            if (*have >= head + clen)
                return head + clen;
        }
        struct pollfd pf = {.fd = fd, .events = POLLIN};
        int r = poll(&pf, 1, 50);
        if (r < 0 || srv_stopping(s))
            return 0;
        if (r == 0)
            continue;
        ssize_t n = recv(fd, buf + *have, cap - 1 - *have, 0);
        if (n <= 0)
            return 0;
        *have += (size_t)n;
    }
}

static void handle_conn(server *s, int fd)
{
    static char buf[65536];
    size_t have = 0;
    for (;;) {
        size_t len = read_request(s, fd, buf, sizeof(buf), &have);
        if (!len)
            return;
        req r = {.t_ns = weir_mono_ns()};
        char *h = strcasestr(buf, "\r\nX-Weir-Seq:");
        if (h)
            r.seq = strtoull(h + 13, NULL, 10);
        char *body = strstr(buf, "\r\n\r\n") + 4;
        snprintf(r.body, sizeof(r.body), "%.*s", (int)(buf + len - body), body);
        pthread_mutex_lock(&s->mu);
        int idx = s->n_reqs;
        if (s->n_reqs < MAX_REQS)
            s->reqs[s->n_reqs++] = r;
        step st = idx < s->n_script ? s->script[idx] : (step){0};
        pthread_cond_broadcast(&s->cv);
        if (st.hold) {
            s->held++;
            pthread_cond_broadcast(&s->cv);
            while (!s->gate_open && !s->stop)
                pthread_cond_wait(&s->cv, &s->mu);
            s->held--;
        }
        pthread_mutex_unlock(&s->mu);
        memmove(buf, buf + len, have - len);
        have -= len;
        char resp[256];
        int status = st.status ? st.status : 200;
        int n = snprintf(resp, sizeof(resp), "HTTP/1.1 %d X\r\nContent-Length: 2\r\n", status);
        if (st.retry_after)
            n += snprintf(resp + n, sizeof(resp) - (size_t)n, "Retry-After: %d\r\n",
                          st.retry_after);
        n += snprintf(resp + n, sizeof(resp) - (size_t)n, "\r\nok");
        if (send(fd, resp, (size_t)n, MSG_NOSIGNAL) != n)
            return;
    }
}

static void *srv_main(void *arg)
{
    server *s = arg;
    while (!srv_stopping(s)) {
        struct pollfd pf = {.fd = s->lfd, .events = POLLIN};
        if (poll(&pf, 1, 50) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        handle_conn(s, fd);
        close(fd);
    }
    return NULL;
}

static server *srv_start(const step *script, int n)
{
    server *s = calloc(1, sizeof(*s));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (n)
        memcpy(s->script, script, (size_t)n * sizeof(*script));
    s->n_script = n;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof(a);
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    pthread_create(&s->th, NULL, srv_main, s);
    return s;
}

static void srv_open_gate(server *s)
{
    pthread_mutex_lock(&s->mu);
    s->gate_open = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void srv_stop(server *s)
{
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    close(s->lfd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* ---- The harness: a loop, an env, one sink ----------------------------- */

typedef struct harness {
    uv_loop_t loop;
    metrics *m;
    sink_env *env;
    rules_sink_ops ops;
    void *sink;
    server *srv;
    int drains;
    size_t queue_at_drain;
} harness;

static void on_drain(void *arg)
{
    harness *h = arg;
    h->drains++;
    json_t *st = h->ops.stats(h->sink);
    h->queue_at_drain = (size_t)json_integer_value(json_object_get(st, "queue"));
    json_decref(st);
}

static void h_init(harness *h, const step *script, int n)
{
    memset(h, 0, sizeof(*h));
    uv_loop_init(&h->loop);
    h->m = metrics_new();
    assert_int_equal(sink_env_new(&h->loop, NULL, NULL, h->m, &h->env), WEIR_OK);
    sink_env_ops(h->env, &h->ops);
    h->srv = srv_start(script, n);
}

static int h_open(harness *h, const char *rule, const char *url, const char *opts_json)
{
    char target[256], err[256];
    if (url)
        snprintf(target, sizeof(target), "webhook:%s", url);
    else
        snprintf(target, sizeof(target), "webhook:http://127.0.0.1:%d/hook", h->srv->port);
    json_t *o = opts_json ? json_loads(opts_json, 0, NULL) : NULL;
    int rc = h->ops.open(h->ops.env, rule, target, o, on_drain, h, &h->sink, err, sizeof(err));
    json_decref(o);
    return rc;
}

static void h_done(harness *h)
{
    if (h->sink)
        h->ops.close(h->sink);
    h->sink = NULL;
    /* The close completes on the loop (join on the thread pool). */
    uv_run(&h->loop, UV_RUN_DEFAULT);
    srv_open_gate(h->srv);
    srv_stop(h->srv);
    metrics_free(h->m);
    sink_env_free(h->env);
    assert_int_equal(uv_loop_close(&h->loop), 0);
}

static int emit(harness *h, uint64_t seq)
{
    const char *names[] = {"device", "v"};
    rec_value vals[2] = {{.type = REC_STRING}, {.type = REC_INT, .u.i = (int64_t)seq}};
    vals[0].u.s.p = "p1";
    vals[0].u.s.len = 2;
    eng_row row = {.n_cols = 2, .names = names, .vals = vals, .ts = 1000000000};
    return h->ops.emit(h->sink, &row, seq);
}

static int64_t stat_int(harness *h, const char *key)
{
    json_t *st = h->ops.stats(h->sink);
    int64_t v = json_integer_value(json_object_get(st, key));
    json_decref(st);
    return v;
}

typedef bool (*cond_fn)(harness *h, int64_t arg);

/* Turns the loop until cond holds; false at the deadline. Between turns it
 * waits on the server's condition variable (signalled on every request) for
 * at most 5 ms, so that progress made by the sink's thread alone (counters)
 * is seen too. */
static bool wait_for(harness *h, cond_fn cond, int64_t arg)
{
    int64_t deadline = weir_mono_ns() + (int64_t)DEADLINE_MS * WEIR_NS_PER_MS;
    for (;;) {
        uv_run(&h->loop, UV_RUN_NOWAIT);
        if (cond(h, arg))
            return true;
        if (weir_mono_ns() > deadline)
            return false;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 5000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        pthread_mutex_lock(&h->srv->mu);
        pthread_cond_timedwait(&h->srv->cv, &h->srv->mu, &ts);
        pthread_mutex_unlock(&h->srv->mu);
    }
}

static bool c_sent(harness *h, int64_t n)
{
    return stat_int(h, "sent") >= n;
}
static bool c_failed(harness *h, int64_t n)
{
    return stat_int(h, "failed") >= n;
}
static bool c_reqs(harness *h, int64_t n)
{
    pthread_mutex_lock(&h->srv->mu);
    bool b = h->srv->n_reqs >= n;
    pthread_mutex_unlock(&h->srv->mu);
    return b;
}
static bool c_held(harness *h, int64_t n)
{
    pthread_mutex_lock(&h->srv->mu);
    bool b = h->srv->held >= n;
    pthread_mutex_unlock(&h->srv->mu);
    return b;
}
static bool c_drained(harness *h, int64_t n)
{
    return h->drains >= n;
}

static int n_reqs(harness *h)
{
    pthread_mutex_lock(&h->srv->mu);
    int n = h->srv->n_reqs;
    pthread_mutex_unlock(&h->srv->mu);
    return n;
}

/* ---- Tests ------------------------------------------------------------- */

static void test_ok_and_payload(void **state)
{
    harness h;
    h_init(&h, NULL, 0);
    assert_int_equal(h_open(&h, "r1", NULL, NULL), WEIR_OK);
    assert_true(h.ops.writable(h.sink));
    assert_int_equal(emit(&h, 1), WEIR_OK);
    assert_int_equal(emit(&h, 2), WEIR_OK);
    assert_true(wait_for(&h, c_sent, 2));
    assert_int_equal(n_reqs(&h), 2);
    assert_int_equal(h.srv->reqs[0].seq, 1);
    assert_int_equal(h.srv->reqs[1].seq, 2);
    json_t *b = json_loads(h.srv->reqs[1].body, 0, NULL);
    assert_non_null(b);
    assert_string_equal(json_string_value(json_object_get(b, "_rule")), "r1");
    assert_int_equal(json_integer_value(json_object_get(b, "_seq")), 2);
    assert_int_equal(json_integer_value(json_object_get(b, "v")), 2);
    assert_int_equal(json_integer_value(json_object_get(b, "_ts")), 1000);
    json_decref(b);
    assert_int_equal(stat_int(&h, "failed"), 0);
    h_done(&h);
}

static void test_open_errors(void **state)
{
    harness h;
    h_init(&h, NULL, 0);
    assert_int_equal(h_open(&h, "r", "ftp://x/y", NULL), WEIR_EINVAL);
    assert_int_equal(h_open(&h, "r", "not a url", NULL), WEIR_EINVAL);
    assert_int_equal(h_open(&h, "r", NULL, "{\"rate\":\"10/fortnight\"}"), WEIR_EINVAL);
    assert_int_equal(h_open(&h, "r", NULL, "{\"queue\":0}"), WEIR_EINVAL);
    assert_int_equal(h_open(&h, "r", NULL, "{\"retries\":\"x\"}"), WEIR_EINVAL);
    assert_int_equal(h_open(&h, "r", NULL, "{\"headers\":{\"X-A\":\"a\\r\\nb\"}}"), WEIR_EINVAL);
    assert_null(h.sink);
    h_done(&h);
}

/* 500 three times: retried with waits in [d/2, d], d doubling from 40 ms,
 * so each wait is at least the previous one's lower bound; then 200. */
static void test_retry_backoff(void **state)
{
    step sc[] = {{500, 0, false}, {502, 0, false}, {503, 0, false}};
    harness h;
    h_init(&h, sc, 3);
    assert_int_equal(
        h_open(&h, "r", NULL,
               "{\"retries\":5,\"retry_base_ms\":40,\"retry_max_ms\":1000,\"headers\":{\"X-K\":\"v\"}}"),
        WEIR_OK);
    assert_int_equal(emit(&h, 7), WEIR_OK);
    assert_true(wait_for(&h, c_sent, 1));
    assert_int_equal(n_reqs(&h), 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(h.srv->reqs[i].seq, 7);
    int64_t g[3];
    for (int i = 0; i < 3; i++)
        g[i] = (h.srv->reqs[i + 1].t_ns - h.srv->reqs[i].t_ns) / WEIR_NS_PER_MS;
    print_message("back-off gaps: %lld %lld %lld ms\n", (long long)g[0], (long long)g[1],
                  (long long)g[2]);
    assert_true(g[0] >= 20);
    assert_true(g[1] >= 40);
    assert_true(g[2] >= 80);
    assert_int_equal(stat_int(&h, "retries"), 3);
    assert_int_equal(stat_int(&h, "failed"), 0);
    h_done(&h);
}

static void test_retry_after(void **state)
{
    step sc[] = {{429, 1, false}};
    harness h;
    h_init(&h, sc, 1);
    assert_int_equal(h_open(&h, "r", NULL, "{\"retry_base_ms\":10,\"retry_max_ms\":5000}"),
                     WEIR_OK);
    assert_int_equal(emit(&h, 1), WEIR_OK);
    assert_true(wait_for(&h, c_sent, 1));
    assert_int_equal(n_reqs(&h), 2);
    int64_t gap = (h.srv->reqs[1].t_ns - h.srv->reqs[0].t_ns) / WEIR_NS_PER_MS;
    print_message("Retry-After gap: %lld ms\n", (long long)gap);
    assert_true(gap >= 1000);
    h_done(&h);
}

static void test_client_error_and_exhaustion(void **state)
{
    step sc[] = {{400, 0, false}, {500, 0, false}, {500, 0, false}, {500, 0, false}};
    harness h;
    h_init(&h, sc, 4);
    assert_int_equal(h_open(&h, "r", NULL, "{\"retries\":2,\"retry_base_ms\":5}"), WEIR_OK);
    assert_int_equal(emit(&h, 1), WEIR_OK); /* 400: failed at once */
    assert_int_equal(emit(&h, 2), WEIR_OK); /* 500 x3: retries exhausted */
    assert_int_equal(emit(&h, 3), WEIR_OK); /* 200 */
    assert_true(wait_for(&h, c_sent, 1));
    assert_true(wait_for(&h, c_reqs, 5));
    assert_int_equal(stat_int(&h, "failed"), 2);
    assert_int_equal(n_reqs(&h), 5);
    assert_int_equal(h.srv->reqs[0].seq, 1);
    assert_int_equal(h.srv->reqs[1].seq, 2);
    assert_int_equal(h.srv->reqs[3].seq, 2);
    assert_int_equal(h.srv->reqs[4].seq, 3);
    assert_int_equal(stat_int(&h, "retries"), 2);
    json_t *st = h.ops.stats(h.sink);
    assert_non_null(strstr(json_string_value(json_object_get(st, "last_error")), "HTTP 500"));
    json_decref(st);
    h_done(&h);
}

static void test_connection_refused(void **state)
{
    harness h;
    h_init(&h, NULL, 0);
    /* A port that was free a moment ago and has no listener. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&a, sizeof(a));
    socklen_t al = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/x", ntohs(a.sin_port));
    assert_int_equal(h_open(&h, "r", url, "{\"retries\":2,\"retry_base_ms\":5}"), WEIR_OK);
    assert_int_equal(emit(&h, 1), WEIR_OK);
    assert_true(wait_for(&h, c_failed, 1));
    assert_int_equal(stat_int(&h, "retries"), 2);
    assert_int_equal(stat_int(&h, "sent"), 0);
    close(fd);
    h_done(&h);
}

/* A producer that behaves like the rule runtime: emit while writable, wait
 * for on_drain otherwise. With a rate of 100/s every row must arrive exactly
 * once and in order, the whole run must take at least (N - burst) / rate,
 * and the limiter's added delay must be measured. */
static bool c_writable(harness *h, int64_t unused)
{
    return h->ops.writable(h->sink);
}

static void test_rate_limit_drl(void **state)
{
    enum { N = 40 };
    harness h;
    h_init(&h, NULL, 0);
    assert_int_equal(h_open(&h, "limited", NULL, "{\"rate\":\"100/s\",\"burst\":2,\"queue\":5}"),
                     WEIR_OK);
    int64_t t0 = weir_mono_ns();
    for (uint64_t seq = 1; seq <= N; seq++) {
        if (!h.ops.writable(h.sink))
            assert_true(wait_for(&h, c_writable, 0));
        assert_int_equal(emit(&h, seq), WEIR_OK);
    }
    assert_true(wait_for(&h, c_sent, N));
    int64_t ms = (weir_mono_ns() - t0) / WEIR_NS_PER_MS;
    assert_true(h.drains > 0);
    assert_int_equal(n_reqs(&h), N);
    for (int i = 0; i < N; i++)
        assert_int_equal(h.srv->reqs[i].seq, (uint64_t)i + 1);
    assert_true(ms >= (N - 2) * 10 - 5);
    json_t *st = h.ops.stats(h.sink);
    json_t *d = json_object_get(st, "drl_ms");
    print_message("rate 100/s: %d rows in %lld ms, DRL avg %.2f p99 %.2f max %.2f ms\n", N,
                  (long long)ms, json_real_value(json_object_get(d, "avg")),
                  json_real_value(json_object_get(d, "p99")),
                  json_real_value(json_object_get(d, "max")));
    assert_int_equal(json_integer_value(json_object_get(d, "count")), N);
    assert_true(json_real_value(json_object_get(d, "avg")) > 1.0);
    assert_true(json_real_value(json_object_get(d, "p99")) > 1.0);
    assert_true(json_real_value(json_object_get(d, "max")) >= 5.0);
    assert_true(json_real_value(json_object_get(d, "min")) >= 0.0);
    assert_int_equal(json_integer_value(json_object_get(st, "dropped")), 0);
    json_decref(st);

    weir_buf out;
    buf_init(&out, 0);
    assert_int_equal(metrics_render(h.m, &out), WEIR_OK);
    buf_append(&out, "", 1);
    const char *text = (const char *)buf_head(&out);
    const char *q = strstr(text, "weir_sink_drl_seconds{rule=\"limited\",quantile=\"0.99\"} ");
    assert_non_null(q);
    assert_true(strtod(strchr(q, '}') + 2, NULL) > 0.001);
    assert_non_null(strstr(text, "weir_sink_drl_rows_total{rule=\"limited\"} 40"));
    assert_non_null(strstr(text, "weir_sink_drl_stddev_seconds{rule=\"limited\"} "));
    assert_non_null(strstr(text, "weir_sink_drl_min_seconds{rule=\"limited\"} "));
    assert_non_null(strstr(text, "weir_sink_drl_avg_seconds{rule=\"limited\"} "));
    assert_non_null(strstr(text, "weir_sink_rows_total{rule=\"limited\",result=\"sent\"} 40"));
    buf_free(&out);
    h_done(&h);
}

/* The queue bound: with the first row held by the server, rows queue up;
 * writable turns false at the bound, emit still takes rows up to twice the
 * bound and then says EFULL; once the server answers, on_drain comes when
 * the queue is below half, and every accepted row is delivered. */
static void test_queue_bound(void **state)
{
    step sc[] = {{200, 0, true}};
    harness h;
    h_init(&h, sc, 1);
    assert_int_equal(h_open(&h, "q", NULL, "{\"queue\":4}"), WEIR_OK);
    assert_int_equal(emit(&h, 1), WEIR_OK);
    assert_true(wait_for(&h, c_held, 1)); /* row 1 in flight, queue empty */
    for (uint64_t s = 2; s <= 4; s++) {
        assert_int_equal(emit(&h, s), WEIR_OK);
        assert_true(h.ops.writable(h.sink));
    }
    assert_int_equal(emit(&h, 5), WEIR_OK);
    assert_false(h.ops.writable(h.sink));
    assert_int_equal(stat_int(&h, "queue"), 4);
    for (uint64_t s = 6; s <= 9; s++)
        assert_int_equal(emit(&h, s), WEIR_OK);
    assert_int_equal(emit(&h, 10), WEIR_EFULL);
    assert_int_equal(stat_int(&h, "dropped"), 1);
    assert_int_equal(h.drains, 0);
    srv_open_gate(h.srv);
    assert_true(wait_for(&h, c_drained, 1));
    assert_true(h.queue_at_drain * 2 < 4);
    assert_true(wait_for(&h, c_sent, 9));
    assert_true(h.ops.writable(h.sink));
    assert_int_equal(n_reqs(&h), 9);
    for (int i = 0; i < 9; i++)
        assert_int_equal(h.srv->reqs[i].seq, (uint64_t)i + 1);
    h_done(&h);
}

/* Close with a row in flight and rows queued: close returns at once, the
 * worker stops (the transfer is aborted) and the rest is counted as
 * abandoned; the env's counters survive for the next sink of the rule. */
static void test_close_in_flight(void **state)
{
    step sc[] = {{200, 0, true}};
    harness h;
    h_init(&h, sc, 1);
    assert_int_equal(h_open(&h, "c", NULL, NULL), WEIR_OK);
    assert_int_equal(emit(&h, 1), WEIR_OK);
    assert_true(wait_for(&h, c_held, 1));
    assert_int_equal(emit(&h, 2), WEIR_OK);
    assert_int_equal(emit(&h, 3), WEIR_OK);
    int64_t t0 = weir_mono_ns();
    h.ops.close(h.sink);
    h.sink = NULL;
    assert_true(weir_mono_ns() - t0 < 100 * WEIR_NS_PER_MS);
    uv_run(&h.loop, UV_RUN_DEFAULT);
    /* Re-open the same rule: the counters are the rule's, not the sink's. */
    assert_int_equal(h_open(&h, "c", NULL, NULL), WEIR_OK);
    assert_int_equal(stat_int(&h, "abandoned"), 3);
    assert_int_equal(stat_int(&h, "sent"), 0);
    h_done(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ok_and_payload),
        cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_retry_backoff),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_client_error_and_exhaustion),
        cmocka_unit_test(test_connection_refused),
        cmocka_unit_test(test_rate_limit_drl),
        cmocka_unit_test(test_queue_bound),
        cmocka_unit_test(test_close_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
