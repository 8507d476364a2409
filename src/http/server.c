/* server.c -- see server.h.
 *
 * How the pieces fit:
 *
 *   listen fd (ours) --uv_poll--> accept4 --lws_adopt_socket_vhost--> lws wsi
 *   lws wsi --http__lws_cb--> table of reason handlers --> route table
 *                                                      --> ws endpoints
 *
 * We bind and accept ourselves and hand each accepted socket to lws ("sock
 * adopt"), with the vhost created as CONTEXT_PORT_NO_LISTEN_SERVER. That
 * keeps the failures of binding (port in use, bad address) synchronous and
 * free of lws state, gives the real port for port 0 from getsockname, and
 * lets stop stop accepting at once. lws does HTTP/1.1 parsing, WebSocket
 * framing and (later) TLS on the adopted sockets.
 *
 * Per connection we keep an http_conn, attached to the wsi as its opaque
 * user data (which survives the protocol change of a WebSocket upgrade, unlike
 * lws per-session data). It is created on the first callback that needs it
 * and freed on LWS_CALLBACK_WSI_DESTROY, the last callback a wsi gets. The
 * server also links every conn so that stop can tell open WebSockets and free
 * can release what lws never reported destroyed.
 *
 * A response is written only from the WRITEABLE callback, as lws wants:
 * respond stores status, headers and body and asks for writability; the
 * first WRITEABLE sends the headers, the following ones the body in chunks
 * of HTTP_CHUNK bytes. The body buffer starts with LWS_PRE bytes of headroom
 * so each chunk is passed to lws_write in place: lws may scribble in the
 * LWS_PRE bytes before the pointer, and those already went out.
 *
 * Teardown with lws 4.1 on a foreign libuv loop (the pitfalls):
 *  - lws_context_destroy does not finish on a foreign loop. The first call
 *    closes every wsi and starts closing lws's uv handles (a poll per socket,
 *    then, once all wsi are gone, the idle and timer handles embedded in the
 *    context). Those closes complete only while the loop runs, over several
 *    iterations. Only a second lws_context_destroy, after that, frees the
 *    context (and is when LWS_CALLBACK_PROTOCOL_DESTROY arrives). Calling it
 *    early would free handles libuv still holds.
 *  - lws gives no callback when its handles are closed, so at start we note
 *    which handles lws put on the loop, and free checks that they are gone
 *    before the second destroy; if not, it logs and leaks rather than corrupt
 *    the loop.
 *  - lws_create_context on a failing libuv setup can leave half a context on
 *    the loop; binding before creating it keeps the common failure away.
 *  - A server-side WebSocket close cannot be started from the WRITEABLE
 *    callback without losing the close frame (see http__on_close_timer).
 */
#include "http/server.h"
#include "base/err.h"
#include "base/wlog.h"
#include "http/status.h"

#include <libwebsockets.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define HTTP_MAX_PARAMS      8          /* "{x}" captures per route */
#define HTTP_MAX_SEGS        32         /* path segments considered for routing */
#define HTTP_CHUNK           16384      /* bytes per lws_write */
#define HTTP_ACCEPT_BATCH    64         /* accepts per poll wake-up, to stay fair */
#define HTTP_MAX_LWS_HANDLES 8          /* static uv handles lws adds at creation */
#define HTTP_DEFAULT_MAX     (1u << 20) /* default max_body and max_ws_outbuf */
#define HTTP_WS_MAX_TEXT_IN  (64u << 10) /* a text message received (message mode) */

typedef struct http_conn http_conn;

struct http_request {
    http_conn *conn;                /* for header and query access */
    int method;                     /* LWSHUMETH_* */
    char *path;                     /* owned; decoded path */
    char *segs;                     /* owned; path split at '/' */
    const char *seg[HTTP_MAX_SEGS]; /* into segs */
    int n_segs;
    const char *params[HTTP_MAX_PARAMS]; /* into segs: "{x}" captures */
    int n_params;
    const http_route *route; /* matched route */
    weir_buf body;           /* bounded by max_body */
    int body_expected;       /* lws will deliver a body */
    void *user;              /* who is asking, from the gate */
    void (*user_release)(void *user);
};

struct http_response {
    http_conn *conn;
    int responded; /* a respond call was made */
    int status;
    char *content_type; /* owned, or NULL */
    weir_buf headers;   /* extra headers as "name:\0value\0" pairs */
    weir_buf out;       /* LWS_PRE bytes of headroom, then the body */
    size_t sent;        /* body bytes handed to lws */
    int headers_sent;
    int close_after; /* request body left unread: close, don't keep alive */
    int head_only;   /* HEAD: send headers, no body */
};

struct http_ws {
    http_conn *conn;
    const http_ws_endpoint *ep;
    void *user;   /* from on_open */
    weir_buf out; /* bytes to send, bounded by max_ws_outbuf */
    int closing;  /* http_ws_close: drain, then close */
    int drained;  /* closing and nothing left to send: close_timer closes it */
    int killed;   /* close_timer has started lws's close */
    int closed;   /* on_close has been called */
    /* Message mode (ep->text): out holds [u32 length][bytes] per message. */
    size_t msg_off;          /* bytes of the head message already written */
    weir_buf in;             /* a text message being reassembled */
    int close_code;          /* 0: 1000 without a reason */
    char close_reason[124];  /* at most 123 bytes, as RFC 6455 allows */
};

struct http_stream {
    http_conn *conn;
    weir_buf out;   /* [u32 length][bytes] per write not yet sent, bounded by max_buffered */
    size_t msg_off; /* bytes of the head write already sent */
    void (*on_drain)(void *user);
    void (*on_close)(void *user);
    void *user;
    int closing; /* http_stream_close: drain, then close */
    int closed;  /* on_close has been called */
};

struct http_later {
    http_response *w; /* NULL once the connection has gone */
};

struct http_conn {
    http_later *later; /* a response the handler will give later, or NULL */
    http_server *srv;
    struct lws *wsi;
    http_conn *prev, *next;          /* server's list of live connections */
    char peer[INET6_ADDRSTRLEN + 8]; /* "ip:port", filled on first use */
    const http_ws_endpoint *ep;      /* endpoint chosen at upgrade */
    http_ws *ws;                     /* set once the WebSocket is open */
    http_stream *stream;             /* a streaming response (SSE), or NULL */
    int in_open;                     /* inside on_open: http_ws_query works */
    http_request req;
    http_response resp;
};

struct http_server {
    uv_loop_t *loop;
    http_config cfg; /* with defaults filled in */
    const http_route *routes;
    size_t n_routes;
    const http_ws_endpoint *eps;
    size_t n_eps;
    void *ctx;               /* for handlers and on_open */
    int port;                /* bound port */
    int listen_fd;           /* owned until the poll handle closes */
    uv_poll_t listen_poll;   /* watches listen_fd */
    uv_timer_t close_timer;  /* runs http_ws_close outside lws callbacks */
    int handles_open;        /* of listen_poll and close_timer */
    struct lws_context *lws; /* NULLed by lws (pcontext) when freed */
    struct lws_vhost *vh;
    struct lws_protocols *protocols;                /* owned; http, subprotocols, terminator */
    uv_handle_t *lws_handles[HTTP_MAX_LWS_HANDLES]; /* lws's static handles */
    size_t n_lws_handles;
    http_conn *conns;    /* live connections */
    uint8_t *ws_scratch; /* LWS_PRE + HTTP_CHUNK, for ws frames */
    int callback_depth;  /* > 0 while inside an lws callback */
    int stopping;
    int free_on_close; /* start failed: free in the last close cb */
};

/* Indexed by LWSHUMETH_*: the names handlers and route tables use. */
static const char *const http__method_names[] = {
    [LWSHUMETH_GET] = "GET",   [LWSHUMETH_POST] = "POST",   [LWSHUMETH_OPTIONS] = "OPTIONS",
    [LWSHUMETH_PUT] = "PUT",   [LWSHUMETH_PATCH] = "PATCH", [LWSHUMETH_DELETE] = "DELETE",
    [LWSHUMETH_HEAD] = "HEAD",
};
#define HTTP_N_METHODS (sizeof(http__method_names) / sizeof(http__method_names[0]))

static wlog_limit http__lim_accept, http__lim_lws, http__lim_bug, http__lim_cert;

/* ------------------------------------------------------------------------ */
/* Small helpers                                                            */
/* ------------------------------------------------------------------------ */

static http_server *http__server_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* "ip:port" of a connected socket; "?" when it cannot be read. */
static void http__format_peer(int fd, char *dst, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char ip[INET6_ADDRSTRLEN];
    snprintf(dst, len, "?");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sl))
        return;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
        snprintf(dst, len, "%s:%u", ip, (unsigned)ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
        snprintf(dst, len, "[%s]:%u", ip, (unsigned)ntohs(a->sin6_port));
    }
}

static const char *http__conn_peer(http_conn *c)
{
    if (!c->peer[0])
        http__format_peer(lws_get_socket_fd(c->wsi), c->peer, sizeof(c->peer));
    return c->peer;
}

/* Copies a string into a caller buffer; NULL when it does not fit. */
static const char *http__copy_out(const char *src, size_t n, char *buf, size_t len)
{
    if (!buf || n >= len)
        return NULL;
    memcpy(buf, src, n);
    buf[n] = '\0';
    return buf;
}

/* ------------------------------------------------------------------------ */
/* Connections                                                              */
/* ------------------------------------------------------------------------ */

static void http__request_reset(http_request *r)
{
    if (r->user && r->user_release)
        r->user_release(r->user);
    free(r->path);
    free(r->segs);
    buf_free(&r->body);
    memset(r, 0, sizeof(*r));
}

static void http__response_reset(http_response *w)
{
    free(w->content_type);
    buf_free(&w->headers);
    buf_free(&w->out);
    memset(w, 0, sizeof(*w));
}

/* Gets the conn of a wsi, creating it on first use. NULL on OOM. */
static http_conn *http__conn(struct lws *wsi)
{
    http_conn *c = lws_get_opaque_user_data(wsi);
    if (c)
        return c;
    http_server *s = http__server_of(wsi);
    c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->srv = s;
    c->wsi = wsi;
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    lws_set_opaque_user_data(wsi, c);
    return c;
}

/* Calls on_close once, then forgets the WebSocket state. */
static void http__ws_finish(http_conn *c)
{
    http_ws *ws = c->ws;
    if (!ws)
        return;
    if (!ws->closed) {
        ws->closed = 1;
        ws->ep->on_close(ws->user);
    }
    buf_free(&ws->out);
    buf_free(&ws->in);
    free(ws);
    c->ws = NULL;
}

/* Calls the stream's on_close once, then frees it. */
static void http__stream_finish(http_conn *c)
{
    http_stream *st = c->stream;
    if (!st)
        return;
    if (!st->closed) {
        st->closed = 1;
        st->on_close(st->user);
    }
    buf_free(&st->out);
    free(st);
    c->stream = NULL;
}

static void http__conn_free(http_conn *c)
{
    http_server *s = c->srv;
    if (c->later)
        c->later->w = NULL; /* its owner finds the client gone */
    http__ws_finish(c);
    http__stream_finish(c);
    http__request_reset(&c->req);
    http__response_reset(&c->resp);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->wsi)
        lws_set_opaque_user_data(c->wsi, NULL);
    free(c);
}

/* ------------------------------------------------------------------------ */
/* Routing                                                                  */
/* ------------------------------------------------------------------------ */

/* Splits the request path into segments ("/a/b" -> "a", "b"; "/" -> "").
 * Returns 0, or -1 when there are more than HTTP_MAX_SEGS (no route has that
 * many, so the caller answers 404). */
static int http__split_path(http_request *r)
{
    r->n_segs = 0;
    char *p = r->segs + (r->segs[0] == '/');
    for (;;) {
        if (r->n_segs == HTTP_MAX_SEGS)
            return -1;
        r->seg[r->n_segs++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            return 0;
        *slash = '\0';
        p = slash + 1;
    }
}

/* Matches a pattern against the split path, capturing "{x}" segments into
 * r->params. Literal segments compare exactly; a capture needs a non-empty
 * segment; segment counts must agree (so a trailing '/' matters). */
static int http__match(const char *pattern, http_request *r)
{
    const char *p = pattern + (pattern[0] == '/');
    int n_params = 0;
    for (int i = 0; i < r->n_segs; i++) {
        if (!p)
            return 0; /* the path has more segments than the pattern */
        const char *end = strchr(p, '/');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        const char *seg = r->seg[i];
        if (plen >= 2 && p[0] == '{' && p[plen - 1] == '}') {
            if (!seg[0] || n_params == HTTP_MAX_PARAMS)
                return 0;
            r->params[n_params++] = seg;
        } else if (strlen(seg) != plen || memcmp(seg, p, plen) != 0) {
            return 0;
        }
        p = end ? end + 1 : NULL;
    }
    if (p)
        return 0; /* the pattern has more segments than the path */
    r->n_params = n_params;
    return 1;
}

static int http__method_is(const http_route *rt, int method)
{
    return strcmp(rt->method, http__method_names[method]) == 0;
}

/* Finds the route for the request. Returns it, or NULL with *path_known set
 * when some route has this path under another method (405 rather than 404).
 * HEAD falls back to the GET route. */
static const http_route *http__route(const http_server *s, http_request *r, int *path_known)
{
    const http_route *get = NULL;
    *path_known = 0;
    for (size_t i = 0; i < s->n_routes; i++) {
        const http_route *rt = &s->routes[i];
        if (!http__match(rt->pattern, r))
            continue;
        *path_known = 1;
        if (http__method_is(rt, r->method))
            return rt;
        if (r->method == LWSHUMETH_HEAD && !get && http__method_is(rt, LWSHUMETH_GET))
            get = rt;
    }
    if (get)
        http__match(get->pattern, r); /* recapture its params */
    return get;
}

/* The Allow header for a path: the distinct methods of matching routes, and
 * HEAD when GET is there. */
static void http__allow(const http_server *s, http_request *r, char *dst, size_t len)
{
    size_t used = 0;
    dst[0] = '\0';
    for (size_t m = 0; m < HTTP_N_METHODS; m++) {
        if (!http__method_names[m])
            continue;
        int allowed = 0;
        for (size_t i = 0; i < s->n_routes && !allowed; i++) {
            const http_route *rt = &s->routes[i];
            int same = http__method_is(rt, (int)m) ||
                       (m == LWSHUMETH_HEAD && http__method_is(rt, LWSHUMETH_GET));
            allowed = same && http__match(rt->pattern, r);
        }
        if (allowed) {
            int n =
                snprintf(dst + used, len - used, "%s%s", used ? ", " : "", http__method_names[m]);
            if (n < 0 || (size_t)n >= len - used)
                break;
            used += (size_t)n;
        }
    }
}

/* ------------------------------------------------------------------------ */
/* Request accessors                                                        */
/* ------------------------------------------------------------------------ */

const char *http_req_method(const http_request *r)
{
    return http__method_names[r->method];
}

const char *http_req_path(const http_request *r)
{
    return r->path;
}

const char *http_req_param(const http_request *r, int i)
{
    return i >= 0 && i < r->n_params ? r->params[i] : NULL;
}

void http_req_set_user(http_request *r, void *user, void (*release)(void *user))
{
    if (r->user && r->user_release)
        r->user_release(r->user);
    r->user = user;
    r->user_release = release;
}

void *http_req_user(const http_request *r)
{
    return r->user;
}

int http_req_tls(const http_request *r)
{
    return r->conn && r->conn->wsi ? lws_is_ssl(r->conn->wsi) : 0;
}

const http_route *http_req_route(const http_request *r)
{
    return r->route;
}

const char *http_req_peer(const http_request *r)
{
    return http__conn_peer(r->conn);
}

const uint8_t *http_req_body(const http_request *r, size_t *len)
{
    static const uint8_t empty[1];
    *len = buf_used(&r->body);
    return *len ? buf_head(&r->body) : empty;
}

/* lws keeps the query as fragments "name=value", already percent-decoded
 * and with '+' as space; fragment i is looked at until one is missing (lws
 * reports an empty fragment, from "&&", as missing too, which ends the scan
 * early; nobody sends that on purpose). */
static const char *http__query(struct lws *wsi, const char *name, char *buf, size_t len)
{
    size_t nlen = strlen(name);
    for (int i = 0;; i++) {
        int flen = lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i);
        if (flen <= 0)
            return NULL;
        char *frag = malloc((size_t)flen + 1);
        if (!frag)
            return NULL;
        int got = lws_hdr_copy_fragment(wsi, frag, flen + 1, WSI_TOKEN_HTTP_URI_ARGS, i);
        int match =
            got >= 0 && strncmp(frag, name, nlen) == 0 && (frag[nlen] == '=' || frag[nlen] == '\0');
        const char *v = match && frag[nlen] == '=' ? frag + nlen + 1 : frag + nlen;
        const char *found = match ? http__copy_out(v, strlen(v), buf, len) : NULL;
        free(frag);
        if (match)
            return found;
    }
}

const char *http_req_query(const http_request *r, const char *name, char *buf, size_t len)
{
    return http__query(r->conn->wsi, name, buf, len);
}

/* Known headers are parsed by lws into token slots whose names are like
 * "content-type:"; anything else is kept as a custom header under its
 * lower-cased name with the colon. */
const char *http_req_header(const http_request *r, const char *name, char *buf, size_t len)
{
    struct lws *wsi = r->conn->wsi;
    char key[128];
    size_t n = strlen(name);
    if (n + 2 > sizeof(key) || !buf || len == 0 || len > INT32_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++)
        key[i] = (char)tolower((unsigned char)name[i]);
    key[n] = ':';
    key[n + 1] = '\0';

    for (int t = 0; t < WSI_TOKEN_COUNT; t++) {
        const char *tn = (const char *)lws_token_to_string((enum lws_token_indexes)t);
        if (!tn || strcmp(tn, key) != 0)
            continue;
        if (lws_hdr_total_length(wsi, (enum lws_token_indexes)t) <= 0)
            return NULL;
        return lws_hdr_copy(wsi, buf, (int)len, (enum lws_token_indexes)t) < 0 ? NULL : buf;
    }
    if (lws_hdr_custom_length(wsi, key, (int)n + 1) < 0)
        return NULL;
    return lws_hdr_custom_copy(wsi, buf, (int)len, key, (int)n + 1) < 0 ? NULL : buf;
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

/* Starts a response; returns -1 when one was already made. The body is then
 * appended to w->out after the LWS_PRE headroom reserved here. */
static int http__respond_begin(http_response *w, int status, const char *content_type)
{
    if (w->responded) {
        wlog_limited(&http__lim_bug, WLOG_ERROR, "http", "bug",
                     "error=\"second response to one request\" status=%d", status);
        return -1;
    }
    w->responded = 1;
    w->status = status;
    w->content_type = content_type ? strdup(content_type) : NULL;
    buf_init(&w->out, 0);
    if (buf_reserve(&w->out, LWS_PRE) == WEIR_OK)
        buf_commit(&w->out, LWS_PRE);
    return 0;
}

/* Hands the stored response to the WRITEABLE path. If building it ran out of
 * memory, what goes out is a bodiless 500 instead of half a body. */
static void http__respond_commit(http_response *w, int build_rc)
{
    if (build_rc || buf_used(&w->out) < LWS_PRE) {
        buf_free(&w->out);
        free(w->content_type);
        w->content_type = NULL;
        w->status = 500;
    }
    lws_callback_on_writable(w->conn->wsi);
}

void http_respond(http_response *w, int status, const char *content_type, const void *body,
                  size_t len)
{
    if (http__respond_begin(w, status, content_type))
        return;
    http__respond_commit(w, len ? buf_append(&w->out, body, len) : WEIR_OK);
}

static int http__json_sink(const char *data, size_t size, void *arg)
{
    return buf_append(arg, data, size) ? -1 : 0;
}

void http_respond_json(http_response *w, int status, json_t *body)
{
    if (!body) {
        http_respond_error(w, WEIR_ENOMEM, "could not build the response");
        return;
    }
    if (http__respond_begin(w, status, "application/json") == 0) {
        int rc = json_dump_callback(body, http__json_sink, &w->out, JSON_COMPACT);
        http__respond_commit(w, rc ? WEIR_ENOMEM : WEIR_OK);
    }
    json_decref(body);
}

/* The JSON error body under an explicit status, for the statuses no weir_err
 * maps to (405). */
static void http__respond_error_status(http_response *w, int status, int err, const char *msg)
{
    json_t *body = json_pack("{s:s, s:s}", "error", msg ? msg : weir_strerror(err), "code",
                             weir_err_name(err));
    if (!body) {
        http_respond(w, 500, NULL, NULL, 0);
        return;
    }
    http_respond_json(w, status, body);
}

void http_respond_error(http_response *w, int err, const char *message)
{
    http__respond_error_status(w, http_status_from_err(err), err, message);
}

http_later *http_respond_later(http_response *w)
{
    if (w->responded || w->conn->later)
        return NULL;
    http_later *l = calloc(1, sizeof(*l));
    if (!l)
        return NULL;
    l->w = w;
    w->conn->later = l;
    return l;
}

http_response *http_later_response(http_later *l)
{
    return l->w;
}

void http_later_done(http_later *l)
{
    if (!l)
        return;
    if (l->w) {
        l->w->conn->later = NULL;
        if (!l->w->responded)
            http_respond_error(l->w, WEIR_EINTERNAL, "handler did not respond");
    }
    free(l);
}

void http_resp_header(http_response *w, const char *name, const char *value)
{
    if (w->responded) {
        wlog_limited(&http__lim_bug, WLOG_ERROR, "http", "bug",
                     "error=\"header after response\" name=%s", name);
        return;
    }
    if (!w->headers.max)
        buf_init(&w->headers, 0);
    /* lws wants the name with its colon; an OOM here drops the header. */
    int rc = buf_append(&w->headers, name, strlen(name));
    if (!rc)
        rc = buf_append(&w->headers, ":", 2);
    if (!rc)
        rc = buf_append(&w->headers, value, strlen(value) + 1);
    if (rc)
        wlog_limited(&http__lim_bug, WLOG_WARN, "http", "header_dropped", "name=%s", name);
}

/* ------------------------------------------------------------------------ */
/* HTTP transactions                                                        */
/* ------------------------------------------------------------------------ */

static size_t http__body_len(const http_response *w)
{
    return buf_used(&w->out) > LWS_PRE ? buf_used(&w->out) - LWS_PRE : 0;
}

/* Writes the status line and headers. Returns 0 or -1 (close). */
static int http__write_headers(struct lws *wsi, http_response *w)
{
    size_t ctlen = w->content_type ? strlen(w->content_type) : 0;
    size_t size = LWS_PRE + 512 + ctlen + 2 * buf_used(&w->headers);
    uint8_t *block = malloc(size);
    if (!block)
        return -1;
    uint8_t *start = block + LWS_PRE, *p = start, *end = block + size;
    int rc = lws_add_http_header_status(wsi, (unsigned)w->status, &p, end);
    if (!rc && w->content_type)
        rc = lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CONTENT_TYPE,
                                          (const unsigned char *)w->content_type, (int)ctlen, &p,
                                          end);
    if (!rc && !w->conn->stream)
        rc = lws_add_http_header_content_length(wsi, http__body_len(w), &p, end);
    /* Extra headers: "name:\0value\0" pairs (no bytes, no data pointer). */
    const char *h = (const char *)buf_head(&w->headers);
    size_t hn = buf_used(&w->headers);
    for (size_t off = 0; !rc && off < hn;) {
        const char *name = h + off;
        size_t nl = strlen(name);
        const char *v = name + nl + 1;
        size_t vl = strlen(v);
        rc = lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                         (const unsigned char *)v, (int)vl, &p, end);
        off += nl + 1 + vl + 1;
    }
    if (!rc && (w->close_after || w->conn->stream))
        rc = lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION, (const unsigned char *)"close",
                                          5, &p, end);
    if (!rc)
        rc = lws_finalize_write_http_header(wsi, start, &p, end);
    free(block);
    return rc ? -1 : 0;
}

/* The end of a transaction: keep the connection for the next request, or
 * close it. Returns what the WRITEABLE callback returns. */
static int http__transaction_done(http_conn *c)
{
    int close_now = c->resp.close_after;
    http__request_reset(&c->req);
    http__response_reset(&c->resp);
    if (close_now)
        return -1;
    return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}

/* A streaming response: the headers once, then chunks of the out buffer as
 * the socket takes them; returning -1 once closing and drained closes the
 * connection (lws has flushed everything before it calls WRITEABLE). */
static int http__stream_writeable(struct lws *wsi, http_conn *c)
{
    http_response *w = &c->resp;
    http_stream *st = c->stream;
    if (!w->headers_sent) {
        if (http__write_headers(wsi, w))
            return -1;
        w->headers_sent = 1;
        /* lws keeps a pending timeout on a connection that is answering
         * (its default 5 s); a stream that may stay idle for hours must not
         * be cut by it. http_stream_close sets its own deadline. */
        if (!st->closing)
            lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
    } else if (buf_used(&st->out) >= 4) {
        /* Writes are kept whole in the buffer (a length before each) so that
         * a discard never cuts one; several small ones go out together. */
        uint8_t *p = c->srv->ws_scratch + LWS_PRE;
        size_t n = 0;
        while (buf_used(&st->out) >= 4 && n < HTTP_CHUNK) {
            uint32_t total;
            memcpy(&total, buf_head(&st->out), 4);
            size_t left = total - st->msg_off, k = HTTP_CHUNK - n < left ? HTTP_CHUNK - n : left;
            memcpy(p + n, buf_head(&st->out) + 4 + st->msg_off, k);
            n += k;
            st->msg_off += k;
            if (st->msg_off < total)
                break;
            buf_consume(&st->out, 4 + (size_t)total);
            st->msg_off = 0;
        }
        if (lws_write(wsi, p, n, LWS_WRITE_HTTP) < (int)n)
            return -1;
    }
    if (buf_used(&st->out)) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    if (st->closing)
        return -1;
    if (st->on_drain && !st->closed)
        st->on_drain(st->user);
    return 0;
}

static int http__on_http_writeable(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http_response *w = &c->resp;
    if (!w->responded)
        return 0; /* spurious: nothing to send yet */
    if (c->stream)
        return http__stream_writeable(wsi, c);
    if (!w->headers_sent) {
        if (http__write_headers(wsi, w))
            return -1;
        w->headers_sent = 1;
    } else if (!w->head_only && w->sent < http__body_len(w)) {
        size_t left = http__body_len(w) - w->sent;
        size_t n = left < HTTP_CHUNK ? left : HTTP_CHUNK;
        enum lws_write_protocol kind = n == left ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP;
        if (lws_write(wsi, buf_head(&w->out) + LWS_PRE + w->sent, n, kind) < (int)n)
            return -1;
        w->sent += n;
    }
    if (!w->head_only && w->sent < http__body_len(w)) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    return http__transaction_done(c);
}

static void http__dispatch(http_conn *c)
{
    http_server *s = c->srv;
    http_request *r = &c->req;
    if (s->stopping) {
        http_respond_error(&c->resp, WEIR_ESHUTDOWN, NULL);
        return;
    }
    r->route->handler(r, &c->resp, s->ctx);
    if (!c->resp.responded && !c->later) {
        wlog_limited(&http__lim_bug, WLOG_ERROR, "http", "bug",
                     "error=\"handler did not respond\" method=%s path=%s", http_req_method(r),
                     r->path);
        http_respond_error(&c->resp, WEIR_EINTERNAL, "handler did not respond");
    }
}

/* The request body length announced by Content-Length, or -1 when absent or
 * not a plain decimal. */
static long long http__content_length(struct lws *wsi)
{
    char v[32];
    if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) <= 0 ||
        lws_hdr_copy(wsi, v, sizeof(v), WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    return (errno || end == v || *end || n < 0) ? -1 : n;
}

/* Reads method, path and body framing, then answers at once (404, 405,
 * 411, 413) or dispatches, or waits for the body. Any answer given while a body
 * is still coming closes the connection afterwards. */
static int http__on_http(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http_server *s = c->srv;
    http_request *r = &c->req;
    http_response *w = &c->resp;
    http__request_reset(r);
    http__response_reset(w);
    r->conn = c;
    w->conn = c;

    char *uri;
    int ulen;
    int m = lws_http_get_uri_and_method(wsi, &uri, &ulen);
    r->method = (m >= 0 && (size_t)m < HTTP_N_METHODS && http__method_names[m]) ? m : -1;
    r->path = strndup(in ? (const char *)in : "/", in ? len : 1);
    r->segs = r->path ? strdup(r->path) : NULL;
    if (!r->path || !r->segs)
        return -1;
    buf_init(&r->body, s->cfg.max_body + 1); /* + the NUL added at the end */

    long long clen = http__content_length(wsi);
    int chunked = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
    r->body_expected = clen > 0 || chunked;
    w->close_after = r->body_expected;
    w->head_only = r->method == LWSHUMETH_HEAD;

    int path_known = 0;
    if (r->method < 0) {
        r->method = LWSHUMETH_GET; /* only for logging and accessors */
        http__respond_error_status(w, 405, WEIR_EUNSUPPORTED, "method not supported");
        return 0;
    }
    if (http__split_path(r) == 0)
        r->route = http__route(s, r, &path_known);
    if (!r->route && !path_known) {
        http_respond_error(w, WEIR_ENOTFOUND, "no such resource");
        return 0;
    }
    if (!r->route) {
        char allow[128];
        http__allow(s, r, allow, sizeof(allow));
        http_resp_header(w, "Allow", allow);
        http__respond_error_status(w, 405, WEIR_EUNSUPPORTED, "method not allowed");
        return 0;
    }
    if (chunked) {
        /* lws 4.1 does not decode chunked request bodies on the server side;
         * it would wait for a body that never comes through. */
        http__respond_error_status(w, 411, WEIR_EUNSUPPORTED,
                                   "chunked request bodies are not supported; send Content-Length");
        return 0;
    }
    if (s->cfg.gate && s->cfg.gate(s->ctx, r, w, r->route))
        return 0; /* refused (and answered) before reading any body */
    if (clen > (long long)s->cfg.max_body) {
        http_respond_error(w, WEIR_ETOOBIG, "request body too large");
        return 0;
    }
    if (r->body_expected)
        return 0; /* lws delivers it through HTTP_BODY */
    /* Without Content-Length a request has no body (RFC 9112 6.3), and so the
     * handler runs now. But lws 4.1 keeps a POST, PUT or PATCH without one
     * waiting for a body and never parses the next request on that
     * connection, so such a connection is closed after the answer. */
    w->close_after = clen < 0 && (r->method == LWSHUMETH_POST || r->method == LWSHUMETH_PUT ||
                                  r->method == LWSHUMETH_PATCH);
    http__dispatch(c);
    return 0;
}

static int http__on_body(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http_request *r = &c->req;
    if (c->resp.responded)
        return 0; /* answered early; the connection closes after it */
    if (len > c->srv->cfg.max_body - buf_used(&r->body))
        http_respond_error(&c->resp, WEIR_ETOOBIG, "request body too large");
    else if (buf_append(&r->body, in, len))
        http_respond_error(&c->resp, WEIR_ENOMEM, "out of memory");
    return 0;
}

static int http__on_body_done(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    if (c->resp.responded)
        return 0;
    /* A NUL after the body so text handlers may treat it as a string; the
     * buffer's bound left room for it. */
    if (buf_append(&c->req.body, "", 1) == WEIR_OK)
        c->req.body.len--;
    c->resp.close_after = 0; /* all of it was read */
    http__dispatch(c);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* WebSockets                                                               */
/* ------------------------------------------------------------------------ */

weir_buf *http_ws_outbuf(http_ws *ws)
{
    return &ws->out;
}

void http_ws_kick(http_ws *ws)
{
    if (!ws->closed)
        lws_callback_on_writable(ws->conn->wsi);
}

void http_ws_close(http_ws *ws)
{
    ws->closing = 1;
    http_ws_kick(ws);
}

/* Message queues of WebSocket text mode and streaming responses: each
 * queued message is a 4-byte length and its bytes, so a message is written
 * whole or, once started, finished before anything is dropped. */
static int msgq_push(weir_buf *q, const void *data, size_t len)
{
    int rc = buf_reserve(q, 4 + len);
    if (rc)
        return rc;
    uint32_t n = (uint32_t)len;
    memcpy(buf_tail(q), &n, 4);
    memcpy(buf_tail(q) + 4, data, len);
    buf_commit(q, 4 + len);
    return WEIR_OK;
}

/* Drops every queued message not yet started; *msg_off > 0 means the head
 * one is half written, and it is kept. */
static void msgq_discard(weir_buf *q, size_t *msg_off)
{
    if (*msg_off && buf_used(q) >= 4) {
        uint32_t n;
        memcpy(&n, buf_head(q), 4);
        q->len = q->off + 4 + n;
    } else {
        buf_reset(q);
        *msg_off = 0;
    }
}

int http_ws_send_text(http_ws *ws, const void *msg, size_t len)
{
    if (!ws->ep->text || ws->closing || ws->closed || len > UINT32_MAX)
        return WEIR_EINVAL;
    int rc = msgq_push(&ws->out, msg, len);
    if (rc)
        return rc;
    http_ws_kick(ws);
    return WEIR_OK;
}

size_t http_ws_buffered(const http_ws *ws)
{
    return buf_used(&ws->out);
}

void http_ws_discard(http_ws *ws)
{
    msgq_discard(&ws->out, &ws->msg_off);
}

void http_ws_close_reason(http_ws *ws, int code, const char *reason)
{
    if (ws->closing || ws->closed)
        return;
    ws->close_code = code;
    size_t n = reason ? strlen(reason) : 0;
    if (n > sizeof(ws->close_reason) - 1)
        n = sizeof(ws->close_reason) - 1;
    memcpy(ws->close_reason, reason ? reason : "", n);
    ws->close_reason[n] = '\0';
    lws_set_timeout(ws->conn->wsi, PENDING_TIMEOUT_USER_OK, HTTP_CLOSE_DEADLINE);
    http_ws_close(ws);
}

const char *http_ws_query(http_ws *ws, const char *name, char *buf, size_t len)
{
    if (!ws->conn->in_open)
        return NULL;
    return http__query(ws->conn->wsi, name, buf, len);
}

http_stream *http_respond_stream(http_response *w, int status, const char *content_type,
                                 size_t max_buffered, void (*on_drain)(void *user),
                                 void (*on_close)(void *user), void *user)
{
    if (w->responded || w->conn->stream)
        return NULL;
    http_stream *st = calloc(1, sizeof(*st));
    if (!st) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return NULL;
    }
    if (http__respond_begin(w, status, content_type)) {
        free(st);
        return NULL;
    }
    st->conn = w->conn;
    buf_init(&st->out, max_buffered ? max_buffered : HTTP_DEFAULT_MAX);
    st->on_drain = on_drain;
    st->on_close = on_close;
    st->user = user;
    w->conn->stream = st;
    w->close_after = 1;
    lws_callback_on_writable(w->conn->wsi);
    return st;
}

int http_stream_write(http_stream *st, const void *data, size_t len)
{
    if (st->closing || st->closed || len > UINT32_MAX)
        return WEIR_EINVAL;
    int rc = msgq_push(&st->out, data, len);
    if (rc)
        return rc;
    lws_callback_on_writable(st->conn->wsi);
    return WEIR_OK;
}

size_t http_stream_buffered(const http_stream *st)
{
    return buf_used(&st->out);
}

void http_stream_discard(http_stream *st)
{
    msgq_discard(&st->out, &st->msg_off);
}

void http_stream_close(http_stream *st)
{
    if (st->closing || st->closed)
        return;
    st->closing = 1;
    lws_set_timeout(st->conn->wsi, PENDING_TIMEOUT_USER_OK, HTTP_CLOSE_DEADLINE);
    lws_callback_on_writable(st->conn->wsi);
}

const char *http_ws_peer(http_ws *ws)
{
    return http__conn_peer(ws->conn);
}

static const char *http__tls_cn(http_conn *c, char *buf, size_t len)
{
    if (!c->srv->cfg.tls_cert || !*c->srv->cfg.tls_cert || !c->wsi || len < 2)
        return NULL;
    size_t cap = len - 1 < 255 ? len - 1 : 255;
    union lws_tls_cert_info_results *ir =
        calloc(1, sizeof(*ir) + 256); /* buf[] of the union is a flexible tail */
    if (!ir)
        return NULL;
    const char *out = NULL;
    if (!lws_tls_peer_cert_info(c->wsi, LWS_TLS_CERT_INFO_COMMON_NAME, ir, cap) &&
        ir->ns.len > 0 && (size_t)ir->ns.len <= cap) {
        memcpy(buf, ir->ns.name, (size_t)ir->ns.len);
        buf[ir->ns.len] = '\0';
        out = buf;
    }
    free(ir);
    return out;
}

const char *http_ws_tls_cn(http_ws *ws, char *buf, size_t len)
{
    return http__tls_cn(ws->conn, buf, len);
}

const char *http_req_tls_cn(const http_request *r, char *buf, size_t len)
{
    return http__tls_cn(r->conn, buf, len);
}

static const http_ws_endpoint *http__find_endpoint(const http_server *s, const char *path)
{
    for (size_t i = 0; i < s->n_eps; i++)
        if (strcmp(s->eps[i].path, path) == 0)
            return &s->eps[i];
    return NULL;
}

/* Whether the comma-separated Sec-WebSocket-Protocol offer holds name. */
static int http__offers(const char *offer, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = offer; *p;) {
        p += strspn(p, " \t,");
        size_t t = strcspn(p, " \t,");
        if (t == n && strncasecmp(p, name, n) == 0)
            return 1;
        p += t;
    }
    return 0;
}

/* Before the 101: pick the endpoint by path, or hang up. */
static int http__on_confirm_upgrade(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    char path[256];
    if (c->srv->stopping || !in || strcmp(in, "websocket") != 0)
        return -1;
    if (lws_hdr_copy(wsi, path, sizeof(path), WSI_TOKEN_GET_URI) <= 0)
        return -1;
    c->ep = http__find_endpoint(c->srv, path);
    return c->ep ? 0 : -1;
}

/* Still before the 101: an endpoint with a subprotocol takes only clients
 * that offer it (lws then echoes it, since it is a protocol name we gave). */
static int http__on_filter_protocol(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    char offer[256];
    const http_ws_endpoint *ep = c->ep;
    if (!ep)
        return -1;
    if (!ep->subprotocol)
        return 0;
    if (lws_hdr_copy(wsi, offer, sizeof(offer), WSI_TOKEN_PROTOCOL) <= 0)
        return -1;
    return http__offers(offer, ep->subprotocol) ? 0 : -1;
}

static int http__on_established(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http_server *s = c->srv;
    if (!c->ep || s->stopping)
        return -1;
    http_ws *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -1;
    ws->conn = c;
    ws->ep = c->ep;
    buf_init(&ws->out, s->cfg.max_ws_outbuf);
    buf_init(&ws->in, HTTP_WS_MAX_TEXT_IN);
    c->ws = ws;
    c->in_open = 1;
    ws->user = c->ep->on_open(s->ctx, ws);
    c->in_open = 0;
    if (!ws->user) {
        ws->closed = 1; /* refused: no on_close for a connection never opened */
        http__ws_finish(c);
        return -1;
    }
    return 0;
}

static int http__on_receive(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http_ws *ws = c->ws;
    if (!ws || ws->closed)
        return 0;
    if (ws->ep->text) {
        if (lws_frame_is_binary(wsi)) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                             (unsigned char *)"text frames only", 16);
            return -1;
        }
        if (buf_append(&ws->in, in, len)) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                             (unsigned char *)"message too large", 17);
            return -1;
        }
        if (lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi)) {
            ws->ep->on_data(ws->user, buf_head(&ws->in), buf_used(&ws->in));
            if (c->ws == ws) /* on_data may not free it, but be sure */
                buf_reset(&ws->in);
        }
        return 0;
    }
    if (!lws_frame_is_binary(wsi)) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE,
                         (unsigned char *)"binary frames only", 18);
        return -1;
    }
    if (len)
        ws->ep->on_data(ws->user, in, len);
    return 0;
}

/* Closes, with a close frame, the WebSockets whose endpoint called
 * http_ws_close and whose out buffer has drained.
 *
 * This runs from a timer, not from the WRITEABLE callback where draining
 * ends, because lws 4.1 has no graceful close from inside a callback other
 * than RECEIVE: a nonzero return from WRITEABLE is taken for a failed write,
 * and so is an ASYNC timeout kill, and both close the socket without the
 * close frame. Outside any callback, lws_close_reason followed by a
 * synchronous kill goes through the WebSocket role's own close: it sends the
 * frame and waits for the peer's answer. */
static void http__on_close_timer(uv_timer_t *t)
{
    http_server *s = t->data;
    http_conn *next;
    for (http_conn *c = s->conns; c; c = next) {
        next = c->next; /* the kill may free c */
        if (c->ws && c->ws->drained && !c->ws->killed && !c->ws->closed) {
            c->ws->killed = 1;
            if (c->ws->close_code)
                lws_close_reason(c->wsi, (enum lws_close_status)c->ws->close_code,
                                 (unsigned char *)c->ws->close_reason,
                                 strlen(c->ws->close_reason));
            else
                lws_close_reason(c->wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_SYNC);
        }
    }
}

/* Message mode: one frame of up to HTTP_CHUNK bytes of the head message per
 * callback; a longer message goes out as a text frame without FIN followed
 * by continuation frames. */
static int http__text_writeable(struct lws *wsi, http_conn *c, http_ws *ws)
{
    if (buf_used(&ws->out) >= 4) {
        uint32_t total;
        memcpy(&total, buf_head(&ws->out), 4);
        size_t left = total - ws->msg_off;
        size_t n = left < HTTP_CHUNK ? left : HTTP_CHUNK;
        int kind = ws->msg_off ? LWS_WRITE_CONTINUATION : LWS_WRITE_TEXT;
        if (n < left)
            kind |= LWS_WRITE_NO_FIN;
        uint8_t *p = c->srv->ws_scratch + LWS_PRE;
        memcpy(p, buf_head(&ws->out) + 4 + ws->msg_off, n);
        if (lws_write(wsi, p, n, (enum lws_write_protocol)kind) < (int)n)
            return -1;
        ws->msg_off += n;
        if (ws->msg_off == total) {
            buf_consume(&ws->out, 4 + (size_t)total);
            ws->msg_off = 0;
        }
        if (buf_used(&ws->out) || ws->closing)
            lws_callback_on_writable(wsi);
        else if (ws->ep->on_drain)
            ws->ep->on_drain(ws->user);
        return 0;
    }
    if (ws->closing && !ws->drained) {
        ws->drained = 1;
        uv_timer_start(&c->srv->close_timer, http__on_close_timer, 0, 0);
    }
    return 0;
}

/* Sends one frame of up to HTTP_CHUNK bytes per callback, copied behind the
 * LWS_PRE headroom of the server's scratch buffer (the loop is one thread, so
 * one scratch serves every connection; lws_write sends or copies it before
 * returning). */
static int http__on_ws_writeable(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http_ws *ws = c->ws;
    if (!ws || ws->closed)
        return 0;
    if (ws->ep->text)
        return http__text_writeable(wsi, c, ws);
    size_t used = buf_used(&ws->out);
    if (used) {
        size_t n = used < HTTP_CHUNK ? used : HTTP_CHUNK;
        uint8_t *p = c->srv->ws_scratch + LWS_PRE;
        memcpy(p, buf_head(&ws->out), n);
        if (lws_write(wsi, p, n, LWS_WRITE_BINARY) < (int)n)
            return -1;
        buf_consume(&ws->out, n);
        if (buf_used(&ws->out) || ws->closing)
            lws_callback_on_writable(wsi);
        else if (ws->ep->on_drain)
            ws->ep->on_drain(ws->user);
        return 0;
    }
    if (ws->closing && !ws->drained) {
        /* Everything is out; the close itself happens in close_timer. */
        ws->drained = 1;
        uv_timer_start(&c->srv->close_timer, http__on_close_timer, 0, 0);
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* The lws callback: a table of reason handlers                             */
/* ------------------------------------------------------------------------ */

typedef int (*http__reason_fn)(struct lws *wsi, http_conn *c, void *in, size_t len);

static int http__on_ws_closed(struct lws *wsi, http_conn *c, void *in, size_t len)
{
    http__ws_finish(c);
    return 0;
}

/* Reasons we handle, each needing the conn. Everything else goes to lws's
 * default handler. WSI_DESTROY is handled apart: it must not create a conn. */
static const http__reason_fn http__reasons[] = {
    [LWS_CALLBACK_HTTP] = http__on_http,
    [LWS_CALLBACK_HTTP_BODY] = http__on_body,
    [LWS_CALLBACK_HTTP_BODY_COMPLETION] = http__on_body_done,
    [LWS_CALLBACK_HTTP_WRITEABLE] = http__on_http_writeable,
    [LWS_CALLBACK_HTTP_CONFIRM_UPGRADE] = http__on_confirm_upgrade,
    [LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION] = http__on_filter_protocol,
    [LWS_CALLBACK_ESTABLISHED] = http__on_established,
    [LWS_CALLBACK_RECEIVE] = http__on_receive,
    [LWS_CALLBACK_SERVER_WRITEABLE] = http__on_ws_writeable,
    [LWS_CALLBACK_CLOSED] = http__on_ws_closed,
};

static int http__lws_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                        size_t len)
{
    if (reason == LWS_CALLBACK_WSI_DESTROY) {
        http_conn *c = lws_get_opaque_user_data(wsi);
        if (c)
            http__conn_free(c);
        return 0;
    }
    /* lws turns our return into the verify verdict (0 = accept): give it
     * OpenSSL's own (len is preverify_ok), so untrusted or expired client
     * certificates fail the handshake. */
    if (reason == LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_VERIFICATION) {
        if (!len && user) {
            X509_STORE_CTX *xs = user;
            wlog_limited(&http__lim_cert, WLOG_WARN, "http", "client_cert_refused",
                         "depth=%d error=\"%s\"", X509_STORE_CTX_get_error_depth(xs),
                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(xs)));
        }
        return len ? 0 : 1;
    }
    if ((size_t)reason >= sizeof(http__reasons) / sizeof(http__reasons[0]) ||
        !http__reasons[reason])
        return lws_callback_http_dummy(wsi, reason, user, in, len);

    http_conn *c = http__conn(wsi);
    if (!c)
        return -1;
    http_server *s = c->srv;
    s->callback_depth++;
    int rc = http__reasons[reason](wsi, c, in, len);
    s->callback_depth--;
    return rc;
}

/* lws logs only errors, rate-limited, as one wlog line each. */
static void http__lws_log(int level, const char *line)
{
    char msg[256];
    size_t n = 0;
    for (const char *p = line; *p && n < sizeof(msg) - 1; p++)
        if (*p != '\n' && *p != '\r')
            msg[n++] = *p == '"' ? '\'' : *p;
    msg[n] = '\0';
    wlog_limited(&http__lim_lws, WLOG_ERROR, "http", "lws", "msg=\"%s\"", msg);
}

/* ------------------------------------------------------------------------ */
/* Listener                                                                 */
/* ------------------------------------------------------------------------ */

/* Binds and listens on host:port. Returns the fd, or -1 after logging. */
static int http__listen(const http_config *cfg, int *bound_port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &res);
    if (gai) {
        wlog_error("http", "listen_failed", "host=%s port=%d error=\"%s\"",
                   cfg->host ? cfg->host : "*", cfg->port, gai_strerror(gai));
        return -1;
    }
    int fd = -1, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
            break;
        err = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        wlog_error("http", "listen_failed", "host=%s port=%d error=\"%s\"",
                   cfg->host ? cfg->host : "*", cfg->port, strerror(err));
        return -1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    *bound_port = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                           : ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

static void http__on_accept(uv_poll_t *h, int status, int events)
{
    http_server *s = h->data;
    for (int i = 0; i < HTTP_ACCEPT_BATCH && !s->stopping; i++) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            /* EMFILE leaves the connection pending and the poll readable, so
             * this repeats (rate-limited in the log) until a descriptor is
             * free; the listen backlog bounds what waits meanwhile. */
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                wlog_limited(&http__lim_accept, WLOG_WARN, "http", "accept_failed", "error=\"%s\"",
                             strerror(errno));
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* On failure lws has closed fd already. */
        if (!lws_adopt_socket_vhost(s->vh, fd))
            wlog_limited(&http__lim_accept, WLOG_WARN, "http", "adopt_failed", "fd=%d", fd);
    }
}

/* Frees what the server owns. Conns still listed belong to wsi that lws
 * freed without a WSI_DESTROY (or never will): forget the wsi first. */
static void http__free_memory(http_server *s)
{
    for (http_conn *c = s->conns; c; c = c->next)
        c->wsi = NULL;
    while (s->conns)
        http__conn_free(s->conns);
    free(s->protocols);
    free(s->ws_scratch);
    free(s);
}

/* Close callback of the server's own handles; the last one may free. */
static void http__on_handle_closed(uv_handle_t *h)
{
    http_server *s = h->data;
    if (h == (uv_handle_t *)&s->listen_poll) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    if (--s->handles_open == 0 && s->free_on_close)
        http__free_memory(s);
}

static void http__close_handles(http_server *s)
{
    uv_close((uv_handle_t *)&s->listen_poll, http__on_handle_closed);
    uv_close((uv_handle_t *)&s->close_timer, http__on_handle_closed);
}

/* ------------------------------------------------------------------------ */
/* lws context                                                              */
/* ------------------------------------------------------------------------ */

/* protocols[0] takes HTTP and WebSockets that offer no subprotocol; one more
 * entry per distinct subprotocol name makes lws accept and echo it. All share
 * one callback, which finds the endpoint by path. */
static struct lws_protocols *http__build_protocols(const http_ws_endpoint *eps, size_t n_eps)
{
    struct lws_protocols *p = calloc(n_eps + 2, sizeof(*p));
    if (!p)
        return NULL;
    size_t n = 0;
    p[n++] = (struct lws_protocols){.name = "http", .callback = http__lws_cb};
    for (size_t i = 0; i < n_eps; i++) {
        const char *sp = eps[i].subprotocol;
        int dup = 0;
        for (size_t j = 1; j < n && sp; j++)
            dup |= strcmp(p[j].name, sp) == 0;
        if (sp && !dup)
            p[n++] = (struct lws_protocols){.name = sp, .callback = http__lws_cb};
    }
    return p; /* calloc left the terminator zeroed */
}

typedef struct http__walk {
    uv_handle_t **v;
    size_t n, cap;
} http__walk;

static void http__collect(uv_handle_t *h, void *arg)
{
    http__walk *w = arg;
    if (w->n < w->cap)
        w->v[w->n] = h;
    w->n++;
}

/* Every handle now on the loop, into a malloc'd array (*n of them). */
static uv_handle_t **http__loop_handles(uv_loop_t *loop, size_t *n)
{
    http__walk w = {0};
    uv_walk(loop, http__collect, &w);
    w.cap = w.n + 1;
    w.v = malloc(w.cap * sizeof(*w.v));
    w.n = 0;
    if (w.v)
        uv_walk(loop, http__collect, &w);
    *n = w.n < w.cap ? w.n : w.cap;
    return w.v;
}

/* Creates the lws context on the foreign loop and notes the handles it added
 * (see the teardown notes at the top). With TLS the vhost gets the
 * certificate files and options, and lws_adopt_socket_vhost then runs a TLS
 * handshake on every adopted socket. */
static int http__create_lws(http_server *s)
{
    void *loops[1] = {s->loop};
    struct lws_context_creation_info info;
    memset(&info, 0, sizeof(info));
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_UV_NO_SIGSEGV_SIGFPE_SPIN;
    info.foreign_loops = loops;
    info.port = CONTEXT_PORT_NO_LISTEN_SERVER;
    info.vhost_name = "weir";
    info.protocols = s->protocols;
    info.user = s;
    info.pcontext = &s->lws;
    info.server_string = "weir";
    /* lws's default of 4096 bytes for all headers of a request is short for
     * bearer tokens; past the limit lws drops the connection without an
     * answer (logging "Ran out of header data space"). */
    info.max_http_header_data = 8192;
    if (s->cfg.tls_cert && *s->cfg.tls_cert) {
        const char *vc = s->cfg.tls_verify_client;
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = s->cfg.tls_cert;
        info.ssl_private_key_filepath = s->cfg.tls_key;
        if (s->cfg.tls_ca && *s->cfg.tls_ca)
            info.ssl_ca_filepath = s->cfg.tls_ca;
        if (vc && !strcmp(vc, "require"))
            info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT;
        else if (vc && !strcmp(vc, "optional"))
            info.options |= LWS_SERVER_OPTION_REQUIRE_VALID_OPENSSL_CLIENT_CERT |
                            LWS_SERVER_OPTION_PEER_CERT_NOT_REQUIRED;
        /* HTTP/1.1 only: the routes, deferred answers, streaming responses
         * and the auth gate are written for one request per connection at a
         * time; an h2 client (curl prefers it) would otherwise get lws's
         * HTTP/2 framing of them. */
        info.alpn = "http/1.1";
        info.ssl_cipher_list = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL";
        info.ssl_options_set = (long)(SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1 | SSL_OP_NO_RENEGOTIATION |
                                      SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
        if (s->cfg.tls_min_version && !strcmp(s->cfg.tls_min_version, "1.3"))
            info.ssl_options_set |= (long)SSL_OP_NO_TLSv1_2;
    }

    size_t n_before = 0, n_after = 0;
    uv_handle_t **before = http__loop_handles(s->loop, &n_before);
    s->lws = lws_create_context(&info);
    uv_handle_t **after = s->lws ? http__loop_handles(s->loop, &n_after) : NULL;
    for (size_t i = 0; i < n_after && before; i++) {
        int known = 0;
        for (size_t j = 0; j < n_before && !known; j++)
            known = after[i] == before[j];
        if (!known && s->n_lws_handles < HTTP_MAX_LWS_HANDLES)
            s->lws_handles[s->n_lws_handles++] = after[i];
    }
    free(before);
    free(after);
    if (!s->lws)
        return -1;
    s->vh = lws_get_vhost_by_name(s->lws, "weir");
    if (!s->vh) {
        /* Cannot happen with the default vhost named above. Start the
         * destroy; finishing it needs a loop run the caller will not make
         * for a failed start, so the context is leaked, not freed early. */
        lws_context_destroy(s->lws);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Lifecycle                                                                */
/* ------------------------------------------------------------------------ */

http_server *http_server_start(uv_loop_t *loop, const http_config *cfg, const http_route *routes,
                               size_t n_routes, const http_ws_endpoint *eps, size_t n_eps,
                               void *ctx)
{
    lws_set_log_level(LLL_ERR, http__lws_log);

    http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->loop = loop;
    s->cfg = *cfg;
    if (!s->cfg.max_body)
        s->cfg.max_body = HTTP_DEFAULT_MAX;
    if (!s->cfg.max_ws_outbuf)
        s->cfg.max_ws_outbuf = HTTP_DEFAULT_MAX;
    s->routes = routes;
    s->n_routes = n_routes;
    s->eps = eps;
    s->n_eps = n_eps;
    s->ctx = ctx;
    s->listen_fd = -1;
    s->protocols = http__build_protocols(eps, n_eps);
    s->ws_scratch = malloc(LWS_PRE + HTTP_CHUNK);
    if (!s->protocols || !s->ws_scratch)
        goto fail_memory;

    /* Bind first: the usual failure (port in use) leaves nothing behind. */
    s->listen_fd = http__listen(cfg, &s->port);
    if (s->listen_fd < 0)
        goto fail_memory;
    if (uv_poll_init(loop, &s->listen_poll, s->listen_fd))
        goto fail_fd;
    uv_timer_init(loop, &s->close_timer); /* cannot fail */
    s->listen_poll.data = s->close_timer.data = s;
    s->handles_open = 2;
    /* Nothing is accepted before the loop runs, and lws is created last, so
     * that no failure comes after lws has put handles on the loop. */
    if (uv_poll_start(&s->listen_poll, UV_READABLE, http__on_accept)) {
        wlog_error("http", "start_failed", "error=\"cannot watch the listening socket\"");
        goto fail_handle;
    }
    if (http__create_lws(s)) {
        wlog_error("http", "start_failed", "error=\"lws context or vhost creation failed\"");
        goto fail_handle;
    }
    wlog_info("http", "listening", "host=%s port=%d", cfg->host ? cfg->host : "*", s->port);
    return s;

fail_handle:
    /* Our handles are on the loop; their close callbacks free the rest. */
    s->free_on_close = 1;
    http__close_handles(s);
    return NULL;
fail_fd:
    close(s->listen_fd);
fail_memory:
    http__free_memory(s);
    return NULL;
}

int http_server_reload_tls(http_server *s)
{
    if (!s || !s->lws || !s->cfg.tls_cert || !*s->cfg.tls_cert)
        return WEIR_EINVAL;
    if (lws_tls_cert_updated(s->lws, s->cfg.tls_cert, s->cfg.tls_key, NULL, 0, NULL, 0))
        return WEIR_EIO;
    return WEIR_OK;
}

int http_server_port(const http_server *s)
{
    return s->port;
}

void http_server_stop(http_server *s)
{
    if (!s || s->stopping)
        return;
    if (s->callback_depth) {
        wlog_error("http", "bug", "error=\"http_server_stop called from a server callback\"");
        return;
    }
    s->stopping = 1;
    http__close_handles(s);

    /* Tell endpoints first, while their users are still valid; the close
     * callbacks lws makes while destroying then find nothing to report. */
    for (http_conn *c = s->conns; c; c = c->next) {
        if (c->ws && !c->ws->closed) {
            c->ws->closed = 1;
            c->ws->ep->on_close(c->ws->user);
        }
        if (c->stream && !c->stream->closed) {
            c->stream->closed = 1;
            c->stream->on_close(c->stream->user);
        }
    }
    /* First destroy: closes every wsi and starts closing lws's handles. */
    lws_context_destroy(s->lws);
    wlog_info("http", "stopping", "port=%d", s->port);
}

typedef struct http__lookup {
    const http_server *s;
    int found; /* one of the server's lws handles is still on the loop */
} http__lookup;

static void http__find_handle(uv_handle_t *h, void *arg)
{
    http__lookup *l = arg;
    for (size_t i = 0; i < l->s->n_lws_handles; i++)
        l->found |= l->s->lws_handles[i] == h;
}

void http_server_free(http_server *s)
{
    if (!s)
        return;
    http_server_stop(s);
    http__lookup l = {.s = s};
    uv_walk(s->loop, http__find_handle, &l);
    if (s->handles_open || l.found) {
        /* Freeing now would free handles libuv still holds. */
        wlog_error("http", "bug",
                   "error=\"http_server_free before the loop closed the "
                   "server's handles; leaking it\"");
        return;
    }
    /* Second destroy: lws frees the context and NULLs s->lws. */
    if (s->lws)
        lws_context_destroy(s->lws);
    http__free_memory(s);
}
