/* tcp.h -- TCP listeners and connections on a libuv loop.
 *
 * A connection owns two bounded buffers: `out`, where the protocol layer
 * appends what it wants sent, and `wbuf`, the bytes of the write libuv is
 * performing. net_conn_kick does not write at once; it puts the connection
 * on the loop's dirty list and a uv_check handle writes every dirty
 * connection after the loop has handled all the input of this iteration.
 * So a burst of fan-out messages to one subscriber becomes one write(2)
 * instead of one per message, which is most of what a broker spends.
 *
 * Reads use one buffer per listener (libuv calls read_cb right after
 * alloc_cb, so it is never shared by two reads); the protocol layer copies
 * what it must keep.
 *
 * TLS (a listener made with net_config.tls): the same two buffers hold the
 * plaintext the protocol queued (`out`) and the ciphertext being written
 * (`wbuf`); the flush encrypts all of `out` at once (tls.h). Reads are
 * decrypted into a second per-listener buffer before on_data.
 *
 * A connection is freed only in its close callback, after which on_close
 * has told the protocol layer. Who frees what: the listener owns its
 * connections; the protocol layer owns its `user` pointer.
 */
#ifndef WEIR_NET_TCP_H
#define WEIR_NET_TCP_H

#include "base/buf.h"
#include "net/tls.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct net_listener net_listener;
typedef struct net_conn net_conn;

typedef struct net_handler {
    /* A new connection; returns the protocol's user pointer, NULL refuses. */
    void *(*on_accept)(void *ctx, net_conn *c);
    void (*on_data)(void *user, const uint8_t *data, size_t len);
    /* Everything queued has been written. */
    void (*on_drain)(void *user);
    /* The connection is closed; `user` is not used by net/ afterwards. */
    void (*on_close)(void *user);
    /* Optional, TLS listeners only: the handshake has completed. Comes
     * after on_accept and before the first on_data, so the protocol knows
     * the client certificate's identity (net_conn_tls_cn) before it reads
     * a byte of the application protocol. */
    void (*on_secure)(void *user, net_conn *c);
} net_handler;

typedef struct net_config {
    const char *host;
    int port;               /* 0 picks a free port */
    size_t max_outbuf;      /* hard bound on each of out and wbuf */
    int backlog;
    /* TLS (see tls.h): NULL for plain TCP. net_listen takes this reference
     * (also when it fails). tls_stats is borrowed and may be NULL. */
    net_tls *tls;
    net_tls_stats *tls_stats;
} net_config;

/* Listens; on failure returns NULL and logs why. The handler table and ctx
 * are borrowed. */
net_listener *net_listen(uv_loop_t *loop, const net_config *cfg, const net_handler *h,
                         void *ctx);
int net_listener_port(const net_listener *l);
/* Stops accepting and closes every connection (each gets on_close); the
 * listener is freed once the loop has run its close callbacks. */
void net_listener_close(net_listener *l);
size_t net_listener_conn_count(const net_listener *l);
/* After net_listener_close: closes connections still writing at once (for
 * a shutdown deadline when a peer does not read). */
void net_listener_abort(net_listener *l);

weir_buf *net_conn_outbuf(net_conn *c);
void net_conn_kick(net_conn *c);
/* Writes what is queued, then closes. */
void net_conn_close(net_conn *c);
const char *net_conn_peer(const net_conn *c);
bool net_conn_loopback(const net_conn *c);
/* Bytes accepted for sending and not yet written. */
size_t net_conn_pending(const net_conn *c);

/* TLS. net_conn_tls_cn is the subject CN of the client certificate the
 * handshake verified, or NULL (plain TCP, no certificate, or before the
 * handshake); valid as long as the connection. */
bool net_conn_is_tls(const net_conn *c);
const char *net_conn_tls_cn(const net_conn *c);
/* Swaps a TLS listener's configuration (certificate reload): takes the
 * reference t and drops the old one. Open connections keep the
 * configuration they were accepted with; new ones get t. */
void net_listener_set_tls(net_listener *l, net_tls *t);

#endif
