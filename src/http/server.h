/* server.h -- the HTTP/1.1 and WebSocket door, on libwebsockets, on a libuv
 * loop that someone else owns.
 *
 * The server joins an existing uv loop (lws "foreign loop"), so HTTP, the
 * MQTT listener and timers share one thread and one loop without locks.
 * Every callback below runs on that loop's thread, and every function here
 * must be called from it.
 *
 * Requests. A request is matched against a table of routes: a method and a
 * pattern of '/'-separated segments, each either literal or "{name}", which
 * captures that segment (http_req_param(r, 0) is the first capture). No
 * route with that path: 404. A route with that path but not that method: 405
 * with an Allow header. HEAD runs the GET route and sends no body. A body is
 * collected in memory up to max_body; a request that announces more gets 413
 * at once, without the server reading the body, and the connection is then
 * closed (its unread body makes it unusable). Then the handler runs, once.
 * Bodies need Content-Length: chunked uploads get 411 (lws 4.1 cannot decode
 * them), and a POST/PUT/PATCH without Content-Length runs with an empty body
 * but closes the connection afterwards (lws 4.1 cannot reuse it).
 *
 * Responses. The handler answers with exactly one http_respond* call before
 * it returns (a handler that returns without answering gets a 500 logged as
 * a bug). The server then sends the response as the socket accepts it and
 * keeps the connection for the next request unless the client asked to
 * close. Every error the server or a handler sends is JSON
 * {"error": "<message>", "code": "<weir_err name>"}; only lws itself answers
 * a few malformed requests before we see them (an unknown method gets its
 * HTML 403; headers past 8 KiB drop the connection).
 *
 * WebSockets. Endpoints are matched by path when a client asks to upgrade;
 * an endpoint with a subprotocol accepts only clients that offer it and
 * echoes it back (MQTT clients require "mqtt"). Binary frames are passed on
 * as a byte stream; a text frame closes the connection with 1003, since no
 * endpoint speaks text yet. The endpoint sends by appending to
 * http_ws_outbuf and calling http_ws_kick; the server drains the buffer as
 * binary frames when the socket is writable. The buffer is bounded by
 * max_ws_outbuf, so a slow reader shows up as WEIR_EFULL on append and the
 * endpoint decides what to do (MQTT drops QoS 0 or disconnects).
 *
 * Lifecycle. http_server_start binds the listening socket itself before
 * handing anything to lws, so "port in use" fails cleanly with nothing left
 * on the loop. Shutdown is in three steps because libuv closes handles
 * asynchronously: http_server_stop (stop accepting, tell endpoints, begin
 * closing), then the caller runs the loop until it is idle, then
 * http_server_free. After that, uv_loop_close on the loop returns 0.
 *
 * TLS: with tls_cert set the vhost is a TLS vhost (lws's OpenSSL backend)
 * and every adopted socket is TLS (HTTPS, and WSS for the WebSocket
 * endpoints); the policy is the one of net/tls.h (TLS 1.2+, ECDHE AEAD
 * suites for 1.2). Client certificates are verified by OpenSSL against
 * tls_ca; lws would accept any certificate unless its verify callback says
 * no, so http__lws_cb answers LWS_CALLBACK_OPENSSL_PERFORM_CLIENT_CERT_-
 * VERIFICATION with OpenSSL's verdict. http_server_reload_tls loads the
 * certificate and key files again into the vhost's SSL_CTX
 * (lws_tls_cert_updated): new handshakes use them, established connections
 * are not touched. The CA file is not reloaded (a restart is needed).
 */
#ifndef WEIR_HTTP_SERVER_H
#define WEIR_HTTP_SERVER_H

#include "base/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct http_server http_server;

/* Seconds a peer has to read what was queued before a close the server
 * started (http_ws_close_reason, http_stream_close); then it is dropped. */
#define HTTP_CLOSE_DEADLINE 10

/* ------------------------------------------------------------------------ */
/* Requests                                                                 */
/* ------------------------------------------------------------------------ */

/* Valid only during the handler call. Returned strings live as long as the
 * request unless they were written into the caller's buf. */
typedef struct http_request http_request;

/* "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS" or "HEAD". */
const char *http_req_method(const http_request *r);

/* The path, percent-decoded and normalised by lws, without the query:
 * "/api/v1/x". */
const char *http_req_path(const http_request *r);

/* The decoded value of query parameter `name` copied into buf, or NULL when
 * absent or longer than len - 1. "?flag" (no '=') yields "". */
const char *http_req_query(const http_request *r, const char *name, char *buf, size_t len);

/* The value of request header `name` (case-insensitive) copied into buf, or
 * NULL when absent or longer than len - 1. */
const char *http_req_header(const http_request *r, const char *name, char *buf, size_t len);

/* The request body (NUL-terminated for convenience, *len excludes the NUL);
 * never NULL, *len is 0 without a body. */
const uint8_t *http_req_body(const http_request *r, size_t *len);

/* The i-th "{x}" segment captured by the route pattern, or NULL. */
const char *http_req_param(const http_request *r, int i);

/* "ip:port" of the client ("[v6]:port" for IPv6). */
const char *http_req_peer(const http_request *r);

/* ------------------------------------------------------------------------ */
/* Responses                                                                */
/* ------------------------------------------------------------------------ */

/* Exactly one respond call per request; later calls are ignored and logged. */
typedef struct http_response http_response;

/* Sends status with the body (copied). content_type NULL means none. */
void http_respond(http_response *w, int status, const char *content_type, const void *body,
                  size_t len);

/* Sends body as application/json and drops the reference (also on error).
 * A NULL body (a failed json_pack) is answered with 500. */
void http_respond_json(http_response *w, int status, json_t *body);

/* Sends {"error": message, "code": weir_err_name(err)} with the status from
 * http_status_from_err(err). message NULL means weir_strerror(err). */
void http_respond_error(http_response *w, int err, const char *message);

/* Adds a response header; call before the respond call. Names and values
 * are copied; the server writes Content-Type and Content-Length itself. */
void http_resp_header(http_response *w, const char *name, const char *value);

typedef void (*http_handler)(http_request *r, http_response *w, void *ctx);

typedef struct http_route {
    const char *method;  /* "GET", ... */
    const char *pattern; /* "/api/v1/streams/{name}" */
    http_handler handler;
} http_route;

/* Answering later. A handler whose answer depends on work that completes
 * later (a record becoming durable, a long poll) takes the response with
 * http_respond_later and returns without responding. Later, on the loop
 * thread, it fetches the response with http_later_response (NULL when the
 * client has gone: the answer is dropped), responds, and calls
 * http_later_done exactly once, which frees the handle (and answers 500 if
 * nothing was said). Returns NULL when already responded or out of memory. */
typedef struct http_later http_later;
http_later *http_respond_later(http_response *w);
http_response *http_later_response(http_later *l);
void http_later_done(http_later *l);

/* ------------------------------------------------------------------------ */
/* WebSocket endpoints                                                      */
/* ------------------------------------------------------------------------ */

/* One WebSocket connection, owned by the server. Valid from on_open until
 * on_close returns. */
typedef struct http_ws http_ws;

typedef struct http_ws_endpoint {
    const char *path;        /* "/mqtt" */
    const char *subprotocol; /* "mqtt", or NULL to accept clients offering none */
    /* Returns the endpoint's per-connection pointer; NULL refuses (closes). */
    void *(*on_open)(void *ctx, http_ws *ws);
    /* Payload of binary frames, in order. Frame boundaries carry no meaning:
     * MQTT over WebSocket is a byte stream cut wherever the client liked. */
    void (*on_data)(void *user, const uint8_t *data, size_t len);
    /* Optional: everything queued has been sent (flow control for the
     * endpoint, which may then queue more). */
    void (*on_drain)(void *user);
    /* Called once when the connection ends for any reason, including
     * http_server_stop; the http_ws is gone when it returns. */
    void (*on_close)(void *user);
    /* Message mode (the live feeds): the endpoint sends whole text messages
     * with http_ws_send_text, each one WebSocket message (fragmented into
     * frames of HTTP_CHUNK bytes on the wire); text frames received are
     * reassembled into messages of up to 64 KiB and passed to on_data once
     * per message (a longer one closes with 1009). Binary frames still close
     * with 1003. Byte-stream endpoints (MQTT) leave it 0. */
    int text;
} http_ws_endpoint;

/* Bytes appended here are sent as binary frames after http_ws_kick. The
 * buffer is bounded by max_ws_outbuf (appends past it fail with WEIR_EFULL). */
weir_buf *http_ws_outbuf(http_ws *ws);

/* Schedules sending what is in the out buffer. Idempotent and cheap. */
void http_ws_kick(http_ws *ws);

/* Sends what is queued, then closes with 1000. on_close follows. */
void http_ws_close(http_ws *ws);

/* "ip:port" of the client. */
const char *http_ws_peer(http_ws *ws);

/* The subject CN of the client certificate verified by the TLS handshake,
 * copied into buf, or NULL (no TLS, no certificate, or it does not fit). */
const char *http_ws_tls_cn(http_ws *ws, char *buf, size_t len);
const char *http_req_tls_cn(const http_request *r, char *buf, size_t len);
/* Message mode (endpoint.text): queues one text message (copied). WEIR_EFULL
 * when it would take the queued bytes past max_ws_outbuf (nothing queued;
 * the endpoint decides: the live feeds disconnect a slow consumer). */
int http_ws_send_text(http_ws *ws, const void *msg, size_t len);

/* Bytes queued and not yet handed to the socket (message mode: including the
 * 4-byte length of each message). */
size_t http_ws_buffered(const http_ws *ws);

/* Message mode: drops every queued message that has not started going out
 * (a message half sent is kept, so the stream of frames stays valid). */
void http_ws_discard(http_ws *ws);

/* Like http_ws_close, with a close code (1000..4999) and a reason (UTF-8, cut
 * at 123 bytes) in the close frame. A peer that does not read what is queued
 * within HTTP_CLOSE_DEADLINE seconds is dropped without the frame. */
void http_ws_close_reason(http_ws *ws, int code, const char *reason);

/* The decoded query parameter of the upgrade request ("/x?stream=a"), like
 * http_req_query. Only valid during on_open (lws frees the request headers
 * afterwards); NULL elsewhere or when absent. */
const char *http_ws_query(http_ws *ws, const char *name, char *buf, size_t len);

/* ------------------------------------------------------------------------ */
/* Streaming responses (Server-Sent Events)                                 */
/* ------------------------------------------------------------------------ */

/* A response whose body is written over time and has no length: the headers
 * go out with "Connection: close" and no Content-Length, then whatever the
 * handler writes, until either side closes. The handler calls
 * http_respond_stream instead of a respond call. The out buffer is bounded
 * by max_buffered: a write past it fails with WEIR_EFULL and the handler
 * decides (discard and close with a last word, for a slow consumer).
 *
 * on_drain (optional) runs when everything queued has gone to the socket;
 * on_close runs once when the connection ends for any reason (the client
 * left, http_stream_close finished, http_server_stop); the http_stream is
 * invalid when it returns. Returns NULL (and answers 500) on OOM. */
typedef struct http_stream http_stream;
http_stream *http_respond_stream(http_response *w, int status, const char *content_type,
                                 size_t max_buffered, void (*on_drain)(void *user),
                                 void (*on_close)(void *user), void *user);
/* Queues one write (copied; 4 bytes of bookkeeping each count against the
 * bound). Writes are never cut by a discard: one SSE event per write. */
int http_stream_write(http_stream *st, const void *data, size_t len); /* WEIR_EFULL */
size_t http_stream_buffered(const http_stream *st);
/* Drops the queued writes that have not started going out (one half sent
 * is finished first). */
void http_stream_discard(http_stream *st);
/* Sends what is queued, then closes the connection (a peer that does not read
 * within HTTP_CLOSE_DEADLINE seconds is dropped). on_close follows. */
void http_stream_close(http_stream *st);

/* ------------------------------------------------------------------------ */
/* Server                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct http_config {
    const char *host;     /* address to bind, e.g. "127.0.0.1"; NULL means all */
    int port;             /* 0 lets the kernel choose; see http_server_port */
    size_t max_body;      /* largest request body accepted; 0 means 1 MiB */
    size_t max_ws_outbuf; /* bound of each WebSocket out buffer; 0 means 1 MiB */
    /* TLS (HTTPS and WSS): off when tls_cert is NULL or "". The strings
     * must outlive the server (they are read again on reload). */
    const char *tls_cert;          /* PEM chain */
    const char *tls_key;           /* PEM private key */
    const char *tls_ca;            /* PEM CA for client certificates, or NULL */
    const char *tls_min_version;   /* "1.2" (default) or "1.3" */
    const char *tls_verify_client; /* "none" (default), "optional", "require" */
} http_config;

/* Starts listening. routes, eps and the strings in cfg must outlive the
 * server; ctx is passed to every handler and on_open. Returns NULL and logs
 * on failure (port in use, bad host, lws failure); nothing is left to free,
 * though a failure after the loop was touched leaves a handle closing that
 * the next run of the loop finishes. */
http_server *http_server_start(uv_loop_t *loop, const http_config *cfg, const http_route *routes,
                               size_t n_routes, const http_ws_endpoint *eps, size_t n_eps,
                               void *ctx);

/* The port actually bound (useful with port 0). */
int http_server_port(const http_server *s);

/* Reloads the TLS certificate and key from their files for new
 * connections. WEIR_OK, WEIR_EINVAL when TLS is off, WEIR_EIO when lws
 * could not load them (the old ones stay in use). */
int http_server_reload_tls(http_server *s);

/* Stops accepting, calls on_close for every open WebSocket, closes all
 * connections and starts destroying the lws context. Must not be called from
 * inside a handler or endpoint callback. Idempotent. The caller then runs
 * the loop until its handles are closed (uv_run(UV_RUN_DEFAULT) returning,
 * once the caller's own handles are closed too) and calls http_server_free. */
void http_server_stop(http_server *s);

/* Finishes destroying the lws context and frees the server. Call after
 * http_server_stop and after the loop has run its close callbacks; it stops
 * the server first if that was not done, which then leaks the lws context
 * because its handles were never closed (logged). NULL is a no-op. */
void http_server_free(http_server *s);

#endif
