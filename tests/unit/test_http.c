/* test_http.c -- the HTTP/WebSocket server, driven over real sockets.
 *
 * The server runs on a uv loop in the test's main thread, as it would in a
 * node. A client thread talks to it with blocking sockets and hand-written
 * HTTP/1.1 and WebSocket frames (the Mosquitto habit: byte-exact requests
 * against the real server). Every wait is on a condition with a deadline:
 * socket reads have SO_RCVTIMEO, the client waits for the loop on a condition
 * variable with a timeout, and a watchdog timer aborts a hung loop. Nothing
 * sleeps.
 *
 * The client thread records failures instead of asserting (cmocka's asserts
 * longjmp and must stay in the main thread); the main thread asserts after
 * joining it. Each harness ends with http_server_stop, a loop run, then
 * http_server_free and uv_loop_close() == 0, under ASan's leak checker.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "base/clock.h"
#include "base/err.h"
#include "http/routes.h"
#include "http/server.h"
#include "http/status.h"
#include "metrics/metrics.h"

#define MAX_BODY            1024
#define IO_TIMEOUT_S        10
#define WATCHDOG_MS         60000
#define BIG_LEN             100000
#define HTTP_TEST_FRAME_MAX 65536

/* ------------------------------------------------------------------------ */
/* Server side: handlers and a WebSocket echo endpoint                      */
/* ------------------------------------------------------------------------ */

typedef struct test_ctx {
    http_api_ctx api; /* first, so that route_health's handlers see it */
    uint64_t *hits;   /* counted by h_item, read back through /metrics */
    int ws_opens;
    int ws_closes;
    int ws_refused;
    int ws_outbuf_full;
} test_ctx;

typedef struct echo_user {
    test_ctx *t;
    http_ws *ws;
} echo_user;

static void h_echo(http_request *r, http_response *w, void *ctx)
{
    char ct[128];
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    const char *type = http_req_header(r, "Content-Type", ct, sizeof(ct));
    http_respond(w, 200, type ? type : "application/octet-stream", body, n);
}

static void h_item(http_request *r, http_response *w, void *ctx)
{
    test_ctx *t = ctx;
    char q[64], flag[8], hdr[64], miss[8];
    (*t->hits)++;
    json_t *o = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s}", "method",
                          http_req_method(r), "path", http_req_path(r), "id", http_req_param(r, 0),
                          "sub", http_req_param(r, 1), "q", http_req_query(r, "q", q, sizeof(q)),
                          "flag", http_req_query(r, "flag", flag, sizeof(flag)), "hdr",
                          http_req_header(r, "X-Test", hdr, sizeof(hdr)), "peer", http_req_peer(r));
    if (o && http_req_query(r, "missing", miss, sizeof(miss)))
        json_object_set_new(o, "missing_found", json_true());
    if (o && http_req_param(r, 2))
        json_object_set_new(o, "param_out_of_range", json_true());
    http_respond_json(w, 200, o);
}

static void h_noreply(http_request *r, http_response *w, void *ctx) {}

static void h_err(http_request *r, http_response *w, void *ctx)
{
    http_resp_header(w, "X-Retry", "1");
    http_respond_error(w, WEIR_EQUOTA, "slow down");
    /* A second answer is a bug the server ignores. */
    http_respond(w, 200, "text/plain", "x", 1);
}

static void h_big(http_request *r, http_response *w, void *ctx)
{
    uint8_t *b = malloc(BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        b[i] = (uint8_t)(i % 251);
    http_respond(w, 200, "application/octet-stream", b, BIG_LEN);
    free(b);
}

static void *echo_open(void *ctx, http_ws *ws)
{
    test_ctx *t = ctx;
    echo_user *u = calloc(1, sizeof(*u));
    u->t = t;
    u->ws = ws;
    t->ws_opens++;
    return u;
}

/* Echoes; "bye" is echoed and then the server closes the connection. */
static void echo_data(void *user, const uint8_t *data, size_t len)
{
    echo_user *u = user;
    if (buf_append(http_ws_outbuf(u->ws), data, len))
        u->t->ws_outbuf_full++;
    http_ws_kick(u->ws);
    if (len == 3 && memcmp(data, "bye", 3) == 0)
        http_ws_close(u->ws);
}

static void echo_close(void *user)
{
    echo_user *u = user;
    u->t->ws_closes++;
    free(u);
}

static void *refuse_open(void *ctx, http_ws *ws)
{
    ((test_ctx *)ctx)->ws_refused++;
    return NULL;
}

static const http_route routes[] = {
    {"GET", "/healthz", http_route_healthz},
    {"GET", "/metrics", http_route_metrics},
    {"POST", "/echo", h_echo},
    {"GET", "/items/{id}", h_item},
    {"PUT", "/items/{id}", h_item},
    {"GET", "/items/{id}/sub/{sub}", h_item},
    {"GET", "/noreply", h_noreply},
    {"GET", "/err", h_err},
    {"GET", "/big", h_big},
};

static const http_ws_endpoint endpoints[] = {
    {"/mqtt", "mqtt", echo_open, echo_data, NULL, echo_close, 0},
    {"/refuse", NULL, refuse_open, echo_data, NULL, echo_close, 0},
};

/* ------------------------------------------------------------------------ */
/* Harness: loop in the main thread, scripted client in another             */
/* ------------------------------------------------------------------------ */

typedef struct harness harness;
typedef void (*client_fn)(harness *h);

struct harness {
    uv_loop_t loop;
    uv_async_t wake;     /* the client thread pokes the loop */
    uv_timer_t watchdog; /* aborts a test whose loop hangs */
    http_server *srv;
    int port;
    pthread_t thread;
    client_fn client;
    test_ctx t;
    metrics *m;

    pthread_mutex_t mu; /* guards the fields below */
    pthread_cond_t cv;
    int want_stop; /* client: please stop the server now */
    int stopped;   /* loop: http_server_stop has returned */
    int done;      /* client: finished */
    char failures[32][200];
    int n_failures;
};

static void check_at(harness *h, int ok, const char *what, int line)
{
    if (ok)
        return;
    pthread_mutex_lock(&h->mu);
    if (h->n_failures < 32)
        snprintf(h->failures[h->n_failures], sizeof(h->failures[0]), "line %d: %s", line, what);
    h->n_failures++;
    pthread_mutex_unlock(&h->mu);
}
#define CHECK(h, cond) check_at((h), (cond), #cond, __LINE__)

static void on_wake(uv_async_t *a)
{
    harness *h = a->data;
    pthread_mutex_lock(&h->mu);
    int stop = (h->want_stop || h->done) && !h->stopped;
    int done = h->done;
    pthread_mutex_unlock(&h->mu);
    if (stop) {
        http_server_stop(h->srv);
        pthread_mutex_lock(&h->mu);
        h->stopped = 1;
        pthread_cond_broadcast(&h->cv);
        pthread_mutex_unlock(&h->mu);
    }
    if (done) {
        uv_close((uv_handle_t *)&h->wake, NULL);
        uv_close((uv_handle_t *)&h->watchdog, NULL);
    }
}

static void on_watchdog(uv_timer_t *t)
{
    fprintf(stderr, "test_http: watchdog fired, the loop or the client hung\n");
    abort();
}

static void *client_main(void *arg)
{
    harness *h = arg;
    h->client(h);
    pthread_mutex_lock(&h->mu);
    h->done = 1;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
    return NULL;
}

/* Asks the loop to stop the server and waits (with a deadline) until it has. */
static int client_request_stop(harness *h)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += IO_TIMEOUT_S;
    pthread_mutex_lock(&h->mu);
    h->want_stop = 1;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->wake);
    pthread_mutex_lock(&h->mu);
    int rc = 0;
    while (!h->stopped && rc == 0)
        rc = pthread_cond_timedwait(&h->cv, &h->mu, &deadline);
    int stopped = h->stopped;
    pthread_mutex_unlock(&h->mu);
    return stopped ? 0 : -1;
}

/* Starts a server on 127.0.0.1:0, runs the client against it until it is
 * done, then tears everything down and checks the loop closes cleanly. */
static void run_harness(client_fn client, test_ctx *out)
{
    harness *h = calloc(1, sizeof(*h));
    assert_non_null(h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    h->client = client;
    assert_int_equal(uv_loop_init(&h->loop), 0);
    h->m = metrics_new();
    h->t.api.metrics = h->m;
    h->t.api.started_ns = weir_mono_ns();
    h->t.hits = metrics_counter(h->m, "weir_test_hits_total", "Test handler hits.", NULL);

    http_config cfg = {
        .host = "127.0.0.1", .port = 0, .max_body = MAX_BODY, .max_ws_outbuf = 1u << 20};
    h->srv = http_server_start(&h->loop, &cfg, routes, sizeof(routes) / sizeof(routes[0]),
                               endpoints, sizeof(endpoints) / sizeof(endpoints[0]), &h->t);
    assert_non_null(h->srv);
    h->port = http_server_port(h->srv);
    assert_true(h->port > 0);

    uv_async_init(&h->loop, &h->wake, on_wake);
    h->wake.data = h;
    uv_timer_init(&h->loop, &h->watchdog);
    uv_timer_start(&h->watchdog, on_watchdog, WATCHDOG_MS, 0);
    assert_int_equal(pthread_create(&h->thread, NULL, client_main, h), 0);

    /* Returns once the client is done, the server stopped and every handle
     * (ours and lws's) has finished closing. */
    assert_int_equal(uv_run(&h->loop, UV_RUN_DEFAULT), 0);
    pthread_join(h->thread, NULL);
    http_server_free(h->srv);
    assert_int_equal(uv_loop_close(&h->loop), 0);

    for (int i = 0; i < h->n_failures && i < 32; i++)
        fprintf(stderr, "client check failed: %s\n", h->failures[i]);
    assert_int_equal(h->n_failures, 0);
    assert_int_equal(h->t.ws_closes, h->t.ws_opens);
    assert_int_equal(h->t.ws_outbuf_full, 0);
    if (out)
        *out = h->t;
    metrics_free(h->m);
    pthread_mutex_destroy(&h->mu);
    pthread_cond_destroy(&h->cv);
    free(h);
}

/* ------------------------------------------------------------------------ */
/* Client: raw HTTP/1.1 over a blocking socket                              */
/* ------------------------------------------------------------------------ */

typedef struct cli {
    int fd;
    uint8_t buf[65536];
    size_t off, len; /* unread bytes are buf[off..len) */
} cli;

typedef struct cli_resp {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    uint8_t *body;   /* malloc'd, NUL-terminated */
    size_t body_len;
} cli_resp;

static int cli_open(cli *c, int port)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = IO_TIMEOUT_S};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&a, sizeof(a))) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void cli_close(cli *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static int cli_send(cli *c, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t k = send(c->fd, b, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

static int cli_sends(cli *c, const char *s)
{
    return cli_send(c, s, strlen(s));
}

/* Reads more bytes into the buffer: >0 read, 0 EOF, -1 error or timeout. */
static int cli_fill(cli *c)
{
    if (c->off && c->off == c->len)
        c->off = c->len = 0;
    if (c->len == sizeof(c->buf)) {
        memmove(c->buf, c->buf + c->off, c->len - c->off);
        c->len -= c->off;
        c->off = 0;
    }
    if (c->len == sizeof(c->buf))
        return -1;
    ssize_t k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
    if (k < 0)
        return -1;
    c->len += (size_t)k;
    return (int)k;
}

/* Waits for the peer to close: skips any bytes (a WebSocket close frame),
 * and is true on EOF or reset, false on timeout. */
static int cli_wait_eof(cli *c)
{
    for (;;) {
        c->off = c->len = 0;
        ssize_t k = recv(c->fd, c->buf, sizeof(c->buf), 0);
        if (k == 0 || (k < 0 && errno == ECONNRESET))
            return 1;
        if (k < 0)
            return 0;
    }
}

static void resp_free(cli_resp *r)
{
    free(r->body);
    memset(r, 0, sizeof(*r));
}

/* Value of a response header (case-insensitive name) into out, or NULL. */
static const char *resp_header(const cli_resp *r, const char *name, char *out, size_t len)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            v += strspn(v, " ");
            size_t vl = strcspn(v, "\r");
            if (vl >= len)
                return NULL;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Reads one response. With head_only (a HEAD request) no body is read even
 * if Content-Length says there is one. Returns 0, or -1 when the connection
 * ended or timed out first. */
static int cli_response(cli *c, cli_resp *r, int head_only)
{
    memset(r, 0, sizeof(*r));
    const uint8_t *end;
    while (!(end = memmem(c->buf + c->off, c->len - c->off, "\r\n\r\n", 4)))
        if (cli_fill(c) <= 0)
            return -1;
    size_t hlen = (size_t)(end - (c->buf + c->off)) + 2; /* keep the last CRLF */
    if (hlen >= sizeof(r->head))
        return -1;
    memcpy(r->head, c->buf + c->off, hlen);
    r->head[hlen] = '\0';
    c->off += hlen + 2;
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;

    char v[32];
    size_t want = resp_header(r, "content-length", v, sizeof(v)) ? strtoul(v, NULL, 10) : 0;
    if (head_only || r->status == 101)
        want = 0;
    r->body = malloc(want + 1);
    while (r->body_len < want) {
        if (c->off == c->len && cli_fill(c) <= 0)
            return -1;
        size_t n = c->len - c->off;
        if (n > want - r->body_len)
            n = want - r->body_len;
        memcpy(r->body + r->body_len, c->buf + c->off, n);
        r->body_len += n;
        c->off += n;
    }
    r->body[r->body_len] = '\0';
    return 0;
}

/* One request on a fresh connection. */
static int request(harness *h, const char *raw, cli_resp *r)
{
    cli *c = malloc(sizeof(*c));
    int rc = cli_open(c, h->port);
    if (!rc)
        rc = cli_sends(c, raw);
    if (!rc)
        rc = cli_response(c, r, 0);
    cli_close(c);
    free(c);
    return rc;
}

/* Parses the body as a JSON object; NULL if it is not one. */
static json_t *resp_json(const cli_resp *r)
{
    json_t *j = json_loadb((const char *)r->body, r->body_len, 0, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

static int json_str_is(json_t *o, const char *key, const char *want)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s && strcmp(s, want) == 0;
}

/* Checks an error response: status, JSON {"error": "...", "code": code}. */
static void check_error(harness *h, const cli_resp *r, int status, const char *code)
{
    char ct[64];
    CHECK(h, r->status == status);
    CHECK(h, resp_header(r, "content-type", ct, sizeof(ct)) && strcmp(ct, "application/json") == 0);
    json_t *j = resp_json(r);
    CHECK(h, j != NULL);
    CHECK(h, j && json_str_is(j, "code", code));
    CHECK(h, j && json_string_value(json_object_get(j, "error")) != NULL);
    json_decref(j);
}

/* ------------------------------------------------------------------------ */
/* Client: WebSocket                                                        */
/* ------------------------------------------------------------------------ */

/* The RFC 6455 example key and its accept value. */
#define WS_KEY    "dGhlIHNhbXBsZSBub25jZQ=="
#define WS_ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

/* Sends the upgrade request; returns the response status, or -1 when the
 * server hung up without answering. */
static int ws_handshake(cli *c, const char *path, const char *proto, cli_resp *r)
{
    char req[512];
    snprintf(req, sizeof(req),
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: " WS_KEY "\r\n"
             "Sec-WebSocket-Version: 13\r\n%s%s%s\r\n",
             path, proto ? "Sec-WebSocket-Protocol: " : "", proto ? proto : "",
             proto ? "\r\n" : "");
    if (cli_sends(c, req) || cli_response(c, r, 0))
        return -1;
    return r->status;
}

/* A client frame: FIN, opcode, masked payload. */
static int ws_send_frame(cli *c, int opcode, const uint8_t *p, size_t n)
{
    static const uint8_t mask[4] = {0x37, 0xfa, 0x21, 0x3d};
    uint8_t hdr[14];
    size_t hl = 0;
    hdr[hl++] = (uint8_t)(0x80 | opcode);
    if (n < 126) {
        hdr[hl++] = (uint8_t)(0x80 | n);
    } else if (n < 65536) {
        hdr[hl++] = 0x80 | 126;
        hdr[hl++] = (uint8_t)(n >> 8);
        hdr[hl++] = (uint8_t)n;
    } else {
        hdr[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            hdr[hl++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    memcpy(hdr + hl, mask, 4);
    hl += 4;
    uint8_t *m = malloc(n ? n : 1);
    for (size_t i = 0; i < n; i++)
        m[i] = p[i] ^ mask[i % 4];
    int rc = cli_send(c, hdr, hl) || cli_send(c, m, n) ? -1 : 0;
    free(m);
    return rc;
}

/* Makes sure n unread bytes are buffered. */
static int cli_need(cli *c, size_t n)
{
    while (c->len - c->off < n) {
        if (c->off) {
            memmove(c->buf, c->buf + c->off, c->len - c->off);
            c->len -= c->off;
            c->off = 0;
        }
        if (cli_fill(c) <= 0)
            return -1;
    }
    return 0;
}

/* Reads one server frame (unmasked by rule) into out. Returns the opcode,
 * or -1 on EOF, timeout, a masked frame or one larger than cap. */
static int ws_read_frame(cli *c, uint8_t *out, size_t cap, size_t *n)
{
    if (cli_need(c, 2))
        return -1;
    uint8_t b0 = c->buf[c->off], b1 = c->buf[c->off + 1];
    if (b1 & 0x80)
        return -1;
    size_t hl = 2, len = b1 & 0x7f;
    if (len == 126) {
        if (cli_need(c, 4))
            return -1;
        len = ((size_t)c->buf[c->off + 2] << 8) | c->buf[c->off + 3];
        hl = 4;
    } else if (len == 127) {
        if (cli_need(c, 10))
            return -1;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = (len << 8) | c->buf[c->off + 2 + i];
        hl = 10;
    }
    if (len > cap || hl + len > sizeof(c->buf) || cli_need(c, hl + len))
        return -1;
    memcpy(out, c->buf + c->off + hl, len);
    c->off += hl + len;
    *n = len;
    return b0 & 0x0f;
}

/* Reads binary/continuation frames until want bytes came back; true when
 * they equal expect. */
static int ws_read_echo(cli *c, const uint8_t *expect, size_t want)
{
    uint8_t *got = malloc(want + 1);
    size_t have = 0;
    int ok = 1;
    while (ok && have < want) {
        size_t n;
        int op = ws_read_frame(c, got + have, want - have, &n);
        ok = op == 0x2 || op == 0x0;
        have += ok ? n : 0;
    }
    ok = ok && memcmp(got, expect, want) == 0;
    free(got);
    return ok;
}

/* The server's closing handshake: reads up to its close frame, answers it
 * as RFC 6455 asks (lws otherwise waits seconds for the answer), then waits
 * for the TCP close. Returns the status code the server sent, or -1. */
static int ws_expect_close(cli *c)
{
    uint8_t buf[HTTP_TEST_FRAME_MAX];
    size_t n;
    int op;
    while ((op = ws_read_frame(c, buf, sizeof(buf), &n)) == 0x2 || op == 0x0)
        ;
    if (op != 0x8 || n < 2)
        return -1;
    int code = buf[0] << 8 | buf[1];
    if (ws_send_frame(c, 0x8, buf, 2))
        return -1;
    return cli_wait_eof(c) ? code : -1;
}

static cli *ws_connect(harness *h, const char *path, const char *proto, cli_resp *r)
{
    cli *c = malloc(sizeof(*c));
    if (cli_open(c, h->port)) {
        free(c);
        return NULL;
    }
    ws_handshake(c, path, proto, r);
    return c;
}

static void ws_disconnect(cli *c)
{
    cli_close(c);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Client scripts                                                           */
/* ------------------------------------------------------------------------ */

static void client_http(harness *h)
{
    cli_resp r;
    char v[256];
    json_t *j;

    /* GET /healthz: 200 JSON with status and uptime. */
    CHECK(h, request(h, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(h, r.status == 200);
    CHECK(h, resp_header(&r, "content-type", v, sizeof(v)) && !strcmp(v, "application/json"));
    j = resp_json(&r);
    CHECK(h, j && json_str_is(j, "status", "ok"));
    CHECK(h, j && json_is_integer(json_object_get(j, "uptime_seconds")));
    json_decref(j);
    resp_free(&r);

    /* Unknown path: 404 JSON. */
    CHECK(h, request(h, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    check_error(h, &r, 404, "ENOTFOUND");
    resp_free(&r);
    CHECK(h, request(h, "GET /items HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    check_error(h, &r, 404, "ENOTFOUND");
    resp_free(&r);
    CHECK(h, request(h, "GET /items/a/b HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    check_error(h, &r, 404, "ENOTFOUND");
    resp_free(&r);

    /* Known path, wrong method: 405 with Allow. */
    CHECK(h, request(h, "DELETE /items/abc HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    check_error(h, &r, 405, "EUNSUPPORTED");
    CHECK(h, resp_header(&r, "allow", v, sizeof(v)) && !strcmp(v, "GET, PUT, HEAD"));
    resp_free(&r);

    /* POST body echo, and the body limit exactly. */
    CHECK(h, request(h,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n"
                     "Content-Length: 11\r\n\r\nhello, weir",
                     &r) == 0);
    CHECK(h, r.status == 200);
    CHECK(h, r.body_len == 11 && memcmp(r.body, "hello, weir", 11) == 0);
    CHECK(h, resp_header(&r, "content-type", v, sizeof(v)) && !strcmp(v, "text/plain"));
    resp_free(&r);
    {
        char *req = malloc(MAX_BODY + 256);
        int n = snprintf(req, 256, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                         MAX_BODY);
        memset(req + n, 'b', MAX_BODY);
        req[n + MAX_BODY] = '\0';
        CHECK(h, request(h, req, &r) == 0);
        CHECK(h, r.status == 200 && r.body_len == MAX_BODY);
        resp_free(&r);
        free(req);
    }

    /* POST without Content-Length has an empty body; lws 4.1 cannot reuse the
     * connection after one, so the server says close and closes. */
    {
        cli *c = malloc(sizeof(*c));
        CHECK(h, cli_open(c, h->port) == 0);
        CHECK(h, cli_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        CHECK(h, cli_response(c, &r, 0) == 0);
        CHECK(h, r.status == 200 && r.body_len == 0);
        CHECK(h, resp_header(&r, "connection", v, sizeof(v)) && !strcasecmp(v, "close"));
        CHECK(h, cli_wait_eof(c));
        resp_free(&r);
        cli_close(c);
        free(c);
    }

    /* Oversize body: 413 from the headers alone, then the server closes. */
    {
        cli *c = malloc(sizeof(*c));
        CHECK(h, cli_open(c, h->port) == 0);
        CHECK(h, cli_sends(c, "POST /echo HTTP/1.1\r\nHost: x\r\n"
                              "Content-Length: 100000000\r\n\r\n") == 0);
        CHECK(h, cli_response(c, &r, 0) == 0);
        check_error(h, &r, 413, "ETOOBIG");
        CHECK(h, resp_header(&r, "connection", v, sizeof(v)) && !strcasecmp(v, "close"));
        CHECK(h, cli_wait_eof(c));
        resp_free(&r);
        cli_close(c);
        free(c);
    }

    /* Chunked request bodies are refused clearly rather than hung on. */
    CHECK(h, request(h,
                     "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n0\r\n\r\n",
                     &r) == 0);
    check_error(h, &r, 411, "EUNSUPPORTED");
    resp_free(&r);

    /* {param} capture, decoded query, headers, peer. */
    CHECK(h, request(h,
                     "GET /items/abc/sub/x%20y?q=a%26b&flag HTTP/1.1\r\nHost: x\r\n"
                     "X-Test: v1\r\n\r\n",
                     &r) == 0);
    CHECK(h, r.status == 200);
    j = resp_json(&r);
    CHECK(h, j && json_str_is(j, "method", "GET"));
    CHECK(h, j && json_str_is(j, "path", "/items/abc/sub/x y"));
    CHECK(h, j && json_str_is(j, "id", "abc"));
    CHECK(h, j && json_str_is(j, "sub", "x y"));
    CHECK(h, j && json_str_is(j, "q", "a&b"));
    CHECK(h, j && json_str_is(j, "flag", ""));
    CHECK(h, j && json_str_is(j, "hdr", "v1"));
    CHECK(h, j && json_string_value(json_object_get(j, "peer")) &&
                 !strncmp(json_string_value(json_object_get(j, "peer")), "127.0.0.1:", 10));
    CHECK(h, j && !json_object_get(j, "missing_found"));
    CHECK(h, j && !json_object_get(j, "param_out_of_range"));
    json_decref(j);
    resp_free(&r);

    /* Same path, other method; one capture. */
    CHECK(h, request(h, "PUT /items/k9 HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    j = resp_json(&r);
    CHECK(h, r.status == 200 && j && json_str_is(j, "method", "PUT") && json_str_is(j, "id", "k9"));
    CHECK(h, j && json_is_null(json_object_get(j, "sub")));
    json_decref(j);
    resp_free(&r);

    /* Keep-alive: HEAD (headers only) then GET, pipelined on one connection. */
    {
        cli *c = malloc(sizeof(*c));
        CHECK(h, cli_open(c, h->port) == 0);
        CHECK(h, cli_sends(c, "HEAD /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
        CHECK(h, cli_response(c, &r, 1) == 0);
        CHECK(h, r.status == 200);
        CHECK(h, resp_header(&r, "content-length", v, sizeof(v)) && atoi(v) > 0);
        resp_free(&r);
        CHECK(h, cli_response(c, &r, 0) == 0);
        CHECK(h, r.status == 200 && r.body_len > 0 && r.body[0] == '{');
        resp_free(&r);
        cli_close(c);
        free(c);
    }

    /* A handler that forgets to answer gets a 500 for it. */
    CHECK(h, request(h, "GET /noreply HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    check_error(h, &r, 500, "EINTERNAL");
    resp_free(&r);

    /* http_respond_error maps through http_status_from_err; extra header. */
    CHECK(h, request(h, "GET /err HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    check_error(h, &r, 429, "EQUOTA");
    CHECK(h, resp_header(&r, "x-retry", v, sizeof(v)) && !strcmp(v, "1"));
    resp_free(&r);

    /* A body larger than one write goes out in several. */
    CHECK(h, request(h, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(h, r.status == 200 && r.body_len == BIG_LEN);
    int same = r.body_len == BIG_LEN;
    for (size_t i = 0; same && i < BIG_LEN; i++)
        same = r.body[i] == (uint8_t)(i % 251);
    CHECK(h, same);
    resp_free(&r);

    /* Prometheus text, with our counter (hit 2 times above) and process_*. */
    CHECK(h, request(h, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
    CHECK(h, r.status == 200);
    CHECK(h, resp_header(&r, "content-type", v, sizeof(v)) &&
                 !strncmp(v, "text/plain; version=0.0.4", 25));
    CHECK(h, r.body && strstr((char *)r.body, "\nweir_test_hits_total 2\n"));
    CHECK(h, r.body && strstr((char *)r.body, "\nprocess_open_fds "));
    CHECK(h, r.body && strstr((char *)r.body, "\nprocess_resident_memory_bytes "));
    resp_free(&r);
}

static void client_ws(harness *h)
{
    cli_resp r;
    char v[128];
    cli *c;

    /* MQTT subprotocol: 101, echoed protocol, RFC accept value; then a byte
     * stream echoed back across frames. */
    c = ws_connect(h, "/mqtt", "mqtt", &r);
    CHECK(h, c && r.status == 101);
    CHECK(h, resp_header(&r, "sec-websocket-protocol", v, sizeof(v)) && !strcmp(v, "mqtt"));
    CHECK(h, resp_header(&r, "sec-websocket-accept", v, sizeof(v)) && !strcmp(v, WS_ACCEPT));
    resp_free(&r);
    if (c) {
        uint8_t msg[300];
        for (size_t i = 0; i < sizeof(msg); i++)
            msg[i] = (uint8_t)(i * 7);
        CHECK(h, ws_send_frame(c, 0x2, msg, 100) == 0);
        CHECK(h, ws_send_frame(c, 0x2, msg + 100, 200) == 0);
        CHECK(h, ws_read_echo(c, msg, sizeof(msg)));

        /* 100 KB in one frame comes back in frames of at most 16 KiB. */
        uint8_t *big = malloc(BIG_LEN);
        for (size_t i = 0; i < BIG_LEN; i++)
            big[i] = (uint8_t)(i % 253);
        CHECK(h, ws_send_frame(c, 0x2, big, BIG_LEN) == 0);
        CHECK(h, ws_read_echo(c, big, BIG_LEN));
        free(big);

        /* A close from the client is answered and the connection ends. */
        uint8_t code[2] = {0x03, 0xe8};
        CHECK(h, ws_send_frame(c, 0x8, code, 2) == 0);
        size_t n;
        uint8_t buf[128];
        CHECK(h, ws_read_frame(c, buf, sizeof(buf), &n) == 0x8);
        CHECK(h, cli_wait_eof(c));
        ws_disconnect(c);
    }

    /* A client that does not offer "mqtt" is refused before the 101. */
    c = ws_connect(h, "/mqtt", NULL, &r);
    CHECK(h, c && r.status != 101);
    CHECK(h, c && cli_wait_eof(c));
    resp_free(&r);
    if (c)
        ws_disconnect(c);

    /* No endpoint at that path. */
    c = ws_connect(h, "/nowhere", "mqtt", &r);
    CHECK(h, c && r.status != 101);
    CHECK(h, c && cli_wait_eof(c));
    resp_free(&r);
    if (c)
        ws_disconnect(c);

    /* An endpoint whose on_open refuses: the connection ends at once. */
    c = ws_connect(h, "/refuse", NULL, &r);
    CHECK(h, c != NULL);
    CHECK(h, c && cli_wait_eof(c));
    resp_free(&r);
    if (c)
        ws_disconnect(c);

    /* The endpoint closes after its last bytes: they arrive, then a 1000. */
    c = ws_connect(h, "/mqtt", "mqtt", &r);
    CHECK(h, c && r.status == 101);
    resp_free(&r);
    if (c) {
        CHECK(h, ws_send_frame(c, 0x2, (const uint8_t *)"bye", 3) == 0);
        CHECK(h, ws_read_echo(c, (const uint8_t *)"bye", 3));
        CHECK(h, ws_expect_close(c) == 1000);
        ws_disconnect(c);
    }

    /* A text frame on a binary endpoint closes the connection. */
    c = ws_connect(h, "/mqtt", "mqtt", &r);
    CHECK(h, c && r.status == 101);
    resp_free(&r);
    if (c) {
        CHECK(h, ws_send_frame(c, 0x1, (const uint8_t *)"text", 4) == 0);
        CHECK(h, ws_expect_close(c) == 1003);
        ws_disconnect(c);
    }
}

/* Stop while a WebSocket, an idle keep-alive connection and a half-sent
 * request are open: each must be closed by the server. */
static void client_stop_with_open_connections(harness *h)
{
    cli_resp r;
    cli *ws = ws_connect(h, "/mqtt", "mqtt", &r);
    CHECK(h, ws && r.status == 101);
    resp_free(&r);
    if (ws) {
        CHECK(h, ws_send_frame(ws, 0x2, (const uint8_t *)"ping", 4) == 0);
        CHECK(h, ws_read_echo(ws, (const uint8_t *)"ping", 4));
    }

    cli *idle = malloc(sizeof(*idle));
    CHECK(h, cli_open(idle, h->port) == 0);
    CHECK(h, cli_sends(idle, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 0);
    CHECK(h, cli_response(idle, &r, 0) == 0 && r.status == 200);
    resp_free(&r);

    cli *half = malloc(sizeof(*half));
    CHECK(h, cli_open(half, h->port) == 0);
    CHECK(h, cli_sends(half, "GET /healthz HTTP/1.1\r\nHo") == 0);

    CHECK(h, client_request_stop(h) == 0);

    if (ws)
        CHECK(h, cli_wait_eof(ws));
    CHECK(h, cli_wait_eof(idle));
    CHECK(h, cli_wait_eof(half));

    /* The listener is gone: a new connection is refused, or (if it raced
     * into the backlog before the socket closed) ends without an answer. */
    cli *late = malloc(sizeof(*late));
    if (cli_open(late, h->port) == 0) {
        CHECK(h, cli_sends(late, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 0 ||
                     errno == EPIPE || errno == ECONNRESET);
        CHECK(h, cli_response(late, &r, 0) == -1);
        resp_free(&r);
        cli_close(late);
    }
    free(late);

    if (ws)
        ws_disconnect(ws);
    cli_close(idle);
    cli_close(half);
    free(idle);
    free(half);
}

/* ------------------------------------------------------------------------ */
/* Tests                                                                    */
/* ------------------------------------------------------------------------ */

static void test_http_requests(void **state)
{
    run_harness(client_http, NULL);
}

static void test_websocket(void **state)
{
    test_ctx t;
    run_harness(client_ws, &t);
    assert_int_equal(t.ws_opens, 3); /* echo, "bye", text frame */
    assert_int_equal(t.ws_closes, 3);
    assert_int_equal(t.ws_refused, 1);
}

/* on_close comes once, from http_server_stop, for the open WebSocket. */
static void test_stop_with_open_connections(void **state)
{
    test_ctx t;
    run_harness(client_stop_with_open_connections, &t);
    assert_int_equal(t.ws_opens, 1);
    assert_int_equal(t.ws_closes, 1);
}

/* Port in use: NULL, logged, and nothing left on the loop. */
static void test_port_in_use(void **state)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t sl = sizeof(a);
    getsockname(fd, (struct sockaddr *)&a, &sl);

    uv_loop_t loop;
    uv_loop_init(&loop);
    http_config cfg = {.host = "127.0.0.1", .port = ntohs(a.sin_port)};
    http_server *s = http_server_start(&loop, &cfg, routes, 1, NULL, 0, NULL);
    assert_null(s);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    close(fd);

    /* An address that is not ours fails the same way. */
    uv_loop_init(&loop);
    cfg.host = "192.0.2.1"; /* TEST-NET-1: not an address of this host */
    cfg.port = 0;
    assert_null(http_server_start(&loop, &cfg, routes, 1, NULL, 0, NULL));
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* Two servers one after the other on the same loop, without traffic: stop,
 * run, free leaves the loop empty each time. */
static void test_restart_on_same_loop(void **state)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    http_config cfg = {.host = "127.0.0.1", .port = 0};
    for (int i = 0; i < 2; i++) {
        http_server *s = http_server_start(&loop, &cfg, routes, 1, endpoints, 1, NULL);
        assert_non_null(s);
        assert_true(http_server_port(s) > 0);
        assert_int_equal(uv_run(&loop, UV_RUN_NOWAIT), 1); /* lws keeps the loop alive */
        http_server_stop(s);
        http_server_stop(s); /* idempotent */
        assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
        http_server_free(s);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_status_from_err(void **state)
{
    static const struct {
        int err, status;
    } cases[] = {
        {WEIR_OK, 200},           {WEIR_EINVAL, 400}, {WEIR_EMALFORMED, 400}, {WEIR_EPROTO, 400},
        {WEIR_EUTF8, 400},        {WEIR_ETOPIC, 400}, {WEIR_EAUTH, 401},      {WEIR_EDENIED, 403},
        {WEIR_ENOTFOUND, 404},    {WEIR_EEXIST, 409}, {WEIR_ETOOBIG, 413},    {WEIR_EQUOTA, 429},
        {WEIR_EFULL, 429},        {WEIR_EBUSY, 503},  {WEIR_ESHUTDOWN, 503},  {WEIR_ETIMEDOUT, 504},
        {WEIR_EUNSUPPORTED, 501}, {WEIR_EIO, 500},    {WEIR_ENOMEM, 500},     {WEIR_EINTERNAL, 500},
        {WEIR_ECORRUPT, 500},     {-1, 500},          {12345, 500},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        assert_int_equal(http_status_from_err(cases[i].err), cases[i].status);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_from_err),
        cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_restart_on_same_loop),
        cmocka_unit_test(test_http_requests),
        cmocka_unit_test(test_websocket),
        cmocka_unit_test(test_stop_with_open_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
