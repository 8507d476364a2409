/* tcp.c -- see tcp.h. */
#include "net/tcp.h"
#include "base/err.h"
#include "base/wlog.h"
#include "net/tls.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define READ_BUF_SIZE (64 * 1024)
#define SHRINK_ABOVE (64 * 1024) /* keep at most this much per idle send buffer */

struct net_listener {
    uv_tcp_t tcp;
    uv_check_t flush;           /* writes dirty connections once per iteration */
    uv_loop_t *loop;
    net_handler h;
    void *ctx;
    size_t max_outbuf;
    int port;
    bool closing;
    int handles_open;           /* tcp + flush; freed when both closed */
    net_conn *conns;            /* all connections */
    net_conn *dirty;            /* connections with bytes to write */
    size_t n_conns;
    net_tls *tls;               /* NULL: plain TCP; else one reference */
    net_tls_stats *tls_stats;   /* caller's counters, or NULL */
    uint8_t *pbuf;              /* TLS: decrypted input (READ_BUF_SIZE) */
    uint8_t rbuf[READ_BUF_SIZE];
};

struct net_conn {
    uv_tcp_t tcp;
    uv_write_t wreq;
    net_listener *l;
    void *user;                 /* protocol layer's state; NULL once closed */
    weir_buf out;               /* being filled */
    weir_buf wbuf;              /* being written */
    bool writing;
    bool in_dirty;
    bool closing;               /* close requested: finish writing first */
    bool closed;                /* uv_close called */
    bool loopback;
    net_tls_session *tls;       /* NULL for plain TCP */
    char peer[64];
    net_conn *prev, *next;      /* listener's list */
    net_conn *dnext;            /* dirty list */
};

static void listener_maybe_free(net_listener *l)
{
    if (l->handles_open == 0 && l->n_conns == 0) {
        net_tls_free(l->tls);
        free(l->pbuf);
        free(l);
    }
}

static wlog_limit tls_lim_fail;

/* ---- Connections -------------------------------------------------------- */

static void conn_on_closed(uv_handle_t *h)
{
    net_conn *c = h->data;
    net_listener *l = c->l;
    if (c->prev)
        c->prev->next = c->next;
    else
        l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    l->n_conns--;
    /* The dirty list may still hold c: unlink it. */
    for (net_conn **pp = &l->dirty; *pp; pp = &(*pp)->dnext)
        if (*pp == c) {
            *pp = c->dnext;
            break;
        }
    void *user = c->user;
    c->user = NULL;
    if (user)
        l->h.on_close(user);
    buf_free(&c->out);
    buf_free(&c->wbuf);
    net_tls_session_free(c->tls);
    free(c);
    if (l->closing)
        listener_maybe_free(l);
}

static void conn_shutdown(net_conn *c)
{
    if (c->closed)
        return;
    c->closed = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
}

static void conn_start_write(net_conn *c);

/* Bytes that conn_start_write could send now. With TLS, plaintext waits in
 * `out` until the handshake is done; ciphertext (handshake, alerts) waits in
 * the session. */
static bool conn_has_output(const net_conn *c)
{
    if (!c->tls)
        return buf_used(&c->out) > 0;
    return net_tls_session_pending(c->tls) > 0 ||
           (buf_used(&c->out) > 0 && net_tls_session_ready(c->tls));
}

static void on_write(uv_write_t *req, int status)
{
    net_conn *c = req->data;
    c->writing = false;
    /* A burst may have grown the buffer; give large ones back so that many
     * mostly idle subscribers do not each keep their peak allocation. */
    if (c->wbuf.cap > SHRINK_ABOVE)
        buf_free(&c->wbuf);
    else
        buf_reset(&c->wbuf);
    if (status < 0) {
        conn_shutdown(c);
        return;
    }
    if (conn_has_output(c)) {
        conn_start_write(c);
        return;
    }
    if (c->closing) {
        conn_shutdown(c);
        return;
    }
    if (c->user && c->l->h.on_drain)
        c->l->h.on_drain(c->user);
}

/* TLS: encrypts everything queued in `out` (one SSL_write: what the
 * protocol queued this iteration becomes as few records as possible) and
 * moves the ciphertext into the idle wbuf. */
static int conn_tls_fill(net_conn *c)
{
    if (buf_used(&c->out) && net_tls_session_ready(c->tls)) {
        if (net_tls_session_write(c->tls, buf_head(&c->out), buf_used(&c->out)))
            return WEIR_EPROTO;
        if (c->out.cap > SHRINK_ABOVE)
            buf_free(&c->out);
        else
            buf_reset(&c->out);
    }
    /* Closing: a close_notify follows the last records. */
    if (c->closing && net_tls_session_ready(c->tls))
        net_tls_session_close_notify(c->tls);
    return net_tls_session_drain(c->tls, &c->wbuf) == WEIR_ENOMEM ? WEIR_ENOMEM : WEIR_OK;
}

static void conn_start_write(net_conn *c)
{
    if (c->writing || c->closed || !conn_has_output(c))
        return;
    if (c->tls) {
        if (conn_tls_fill(c)) {
            conn_shutdown(c);
            return;
        }
        if (!buf_used(&c->wbuf))
            return;
    } else {
        /* Swap: out becomes the in-flight buffer, the old one is reused for
         * appending. Bytes never move while libuv writes them. */
        weir_buf t = c->wbuf;
        c->wbuf = c->out;
        c->out = t;
        buf_reset(&c->out);
    }
    uv_buf_t b = uv_buf_init((char *)buf_head(&c->wbuf), (unsigned)buf_used(&c->wbuf));
    c->writing = true;
    c->wreq.data = c;
    int rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc) {
        c->writing = false;
        conn_shutdown(c);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    net_conn *c = h->data;
    *buf = uv_buf_init((char *)c->l->rbuf, sizeof(c->l->rbuf));
}

/* TLS input: feed the ciphertext, then run the handshake and hand every
 * decrypted byte to the protocol. A failed handshake is counted, logged
 * (rate-limited) and closes the connection after sending OpenSSL's alert. */
static void conn_tls_input(net_conn *c, const uint8_t *data, size_t n)
{
    net_listener *l = c->l;
    if (net_tls_session_push(c->tls, data, n)) {
        conn_shutdown(c);
        return;
    }
    while (c->user && !c->closing && !c->closed) {
        size_t got = 0;
        int rc = net_tls_session_read(c->tls, l->pbuf, READ_BUF_SIZE, &got);
        if (rc == NET_TLS_READY) {
            const char *cn = net_tls_session_peer_cn(c->tls);
            if (l->tls_stats) {
                l->tls_stats->handshakes++;
                if (cn)
                    l->tls_stats->client_certs++;
            }
            wlog_debug("tls", "handshake", "peer=%s version=%s client_cn=\"%s\"", c->peer,
                       net_tls_session_version(c->tls), cn ? cn : "");
            if (l->h.on_secure)
                l->h.on_secure(c->user, c);
            continue;
        }
        if (rc == WEIR_OK) {
            l->h.on_data(c->user, l->pbuf, got);
            continue;
        }
        if (rc == WEIR_EAGAIN)
            break;
        if (rc == WEIR_EPROTO) {
            if (!net_tls_session_ready(c->tls)) {
                if (l->tls_stats)
                    l->tls_stats->handshake_failures++;
                wlog_limited(&tls_lim_fail, WLOG_WARN, "tls", "handshake_failed",
                             "peer=%s error=\"%s\"", c->peer, net_tls_session_error(c->tls));
            } else {
                wlog_limited(&tls_lim_fail, WLOG_WARN, "tls", "record_error",
                             "peer=%s error=\"%s\"", c->peer, net_tls_session_error(c->tls));
            }
        }
        /* Error or close_notify: send what is pending (an alert), then close. */
        c->closing = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
        break;
    }
    if (conn_has_output(c) || c->closing)
        net_conn_kick(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    net_conn *c = s->data;
    if (n > 0) {
        if (c->tls) {
            if (!c->closing)
                conn_tls_input(c, (const uint8_t *)buf->base, (size_t)n);
        } else if (c->user && !c->closing) {
            c->l->h.on_data(c->user, (const uint8_t *)buf->base, (size_t)n);
        }
        return;
    }
    if (n < 0)
        conn_shutdown(c); /* EOF or error: nothing more to write to */
}

static void format_peer(net_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            uv_ip4_name(a, ip, sizeof(ip));
            port = ntohs(a->sin_port);
            c->loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            uv_ip6_name(a, ip, sizeof(ip));
            port = ntohs(a->sin6_port);
            c->loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr) ||
                          (IN6_IS_ADDR_V4MAPPED(&a->sin6_addr) && a->sin6_addr.s6_addr[12] == 127);
        }
    }
    snprintf(c->peer, sizeof(c->peer), "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *server, int status)
{
    net_listener *l = server->data;
    if (status < 0 || l->closing)
        return;
    net_conn *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    c->l = l;
    buf_init(&c->out, l->max_outbuf);
    /* Ciphertext is a little longer than the plaintext it carries (29 bytes
     * per 16 KiB record at most): room for that, and for handshake data. */
    buf_init(&c->wbuf, l->tls ? l->max_outbuf + l->max_outbuf / 256 + 65536 : l->max_outbuf);
    if (l->tls && !(c->tls = net_tls_session_new(l->tls))) {
        buf_free(&c->out);
        buf_free(&c->wbuf);
        free(c);
        return;
    }
    uv_tcp_init(l->loop, &c->tcp);
    c->tcp.data = c;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    l->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp)) {
        conn_shutdown(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    format_peer(c);
    c->user = l->h.on_accept(l->ctx, c);
    if (!c->user) {
        conn_shutdown(c);
        return;
    }
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void on_check(uv_check_t *h)
{
    net_listener *l = h->data;
    while (l->dirty) {
        net_conn *c = l->dirty;
        l->dirty = c->dnext;
        c->in_dirty = false;
        c->dnext = NULL;
        conn_start_write(c);
        if (c->closing && !c->writing && !conn_has_output(c))
            conn_shutdown(c);
    }
}

weir_buf *net_conn_outbuf(net_conn *c)
{
    return &c->out;
}

void net_conn_kick(net_conn *c)
{
    if (c->in_dirty || c->closed)
        return;
    c->in_dirty = true;
    c->dnext = c->l->dirty;
    c->l->dirty = c;
}

void net_conn_close(net_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    net_conn_kick(c); /* on_check writes what is left, then shuts down */
}

const char *net_conn_peer(const net_conn *c)
{
    return c->peer;
}

bool net_conn_loopback(const net_conn *c)
{
    return c->loopback;
}

size_t net_conn_pending(const net_conn *c)
{
    return buf_used(&c->out) + buf_used(&c->wbuf) +
           (c->tls ? net_tls_session_pending(c->tls) : 0);
}

const char *net_conn_tls_cn(const net_conn *c)
{
    return c->tls ? net_tls_session_peer_cn(c->tls) : NULL;
}

bool net_conn_is_tls(const net_conn *c)
{
    return c->tls != NULL;
}

void net_listener_set_tls(net_listener *l, net_tls *t)
{
    net_tls_free(l->tls);
    l->tls = t;
}

/* ---- Listener ----------------------------------------------------------- */

static void free_on_close(uv_handle_t *h)
{
    net_listener *l = h->data;
    net_tls_free(l->tls);
    free(l->pbuf);
    free(l);
}

net_listener *net_listen(uv_loop_t *loop, const net_config *cfg, const net_handler *h, void *ctx)
{
    struct sockaddr_storage addr;
    if (uv_ip4_addr(cfg->host, cfg->port, (struct sockaddr_in *)&addr) &&
        uv_ip6_addr(cfg->host, cfg->port, (struct sockaddr_in6 *)&addr)) {
        wlog_error("net", "listen", "error=\"bad address\" host=%s", cfg->host);
        net_tls_free(cfg->tls);
        return NULL;
    }
    net_listener *l = calloc(1, sizeof(*l));
    if (!l) {
        net_tls_free(cfg->tls);
        return NULL;
    }
    l->loop = loop;
    l->h = *h;
    l->ctx = ctx;
    l->max_outbuf = cfg->max_outbuf;
    if (cfg->tls) {
        if (!(l->pbuf = malloc(READ_BUF_SIZE))) {
            net_tls_free(cfg->tls);
            free(l);
            return NULL;
        }
        l->tls = cfg->tls;
        l->tls_stats = cfg->tls_stats;
    }
    uv_tcp_init(loop, &l->tcp);
    l->tcp.data = l;
    l->handles_open = 1;
    int rc = uv_tcp_bind(&l->tcp, (struct sockaddr *)&addr, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&l->tcp, cfg->backlog ? cfg->backlog : 1024, on_connection);
    if (rc) {
        wlog_error("net", "listen", "error=\"%s\" host=%s port=%d", uv_strerror(rc), cfg->host,
                   cfg->port);
        /* The handle is freed by its close callback, once the loop runs. */
        l->tcp.data = l;
        uv_close((uv_handle_t *)&l->tcp, free_on_close);
        return NULL;
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &len);
    l->port = bound.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                                          : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    uv_check_init(loop, &l->flush);
    l->flush.data = l;
    uv_check_start(&l->flush, on_check);
    l->handles_open = 2;
    return l;
}

int net_listener_port(const net_listener *l)
{
    return l->port;
}

size_t net_listener_conn_count(const net_listener *l)
{
    return l->n_conns;
}

static void listener_handle_closed(uv_handle_t *h)
{
    net_listener *l = h->data;
    l->handles_open--;
    listener_maybe_free(l);
}

void net_listener_close(net_listener *l)
{
    if (l->closing)
        return;
    l->closing = true;
    /* Write what each connection has queued (the broker's DISCONNECTs),
     * then close it. */
    for (net_conn *c = l->conns; c; c = c->next) {
        if (c->closed)
            continue;
        c->closing = true;
        uv_read_stop((uv_stream_t *)&c->tcp);
        conn_start_write(c);
        if (!c->writing)
            conn_shutdown(c);
    }
    uv_check_stop(&l->flush);
    uv_close((uv_handle_t *)&l->flush, listener_handle_closed);
    uv_close((uv_handle_t *)&l->tcp, listener_handle_closed);
}

void net_listener_abort(net_listener *l)
{
    for (net_conn *c = l->conns; c; c = c->next)
        conn_shutdown(c);
}
