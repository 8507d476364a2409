/* tls.h -- TLS for the libuv TCP transport, with OpenSSL 3 memory BIOs.
 *
 * libuv owns the sockets, so OpenSSL never touches a file descriptor: each
 * connection's SSL object reads ciphertext from one memory BIO (filled with
 * what libuv read) and writes ciphertext into another (drained into the
 * connection's write buffer). Nothing here blocks or does I/O; tcp.c calls
 * it from its read callback and from its once-per-iteration flush, so the
 * batched-write design of tcp.c is kept: all the MQTT packets a connection
 * queued during one loop iteration are encrypted with one SSL_write (TLS
 * records of up to 16 KiB) and leave with one write(2).
 *
 * Configurations (net_tls) are immutable and reference-counted with
 * OpenSSL's own SSL_CTX counter: a listener holds one reference, and every
 * SSL object made from it holds another. Reloading certificates (SIGHUP)
 * builds a new net_tls from the files and swaps the listener's reference;
 * connections that are open keep the SSL_CTX they started with until they
 * close, new ones get the new one. A reload that fails (unreadable file,
 * key not matching the certificate) changes nothing and is logged.
 *
 * Policy: TLS 1.2 and 1.3 only (min_version may raise it to 1.3); for TLS
 * 1.2 only ECDHE key exchange with AES-GCM or ChaCha20-Poly1305; no
 * renegotiation, no compression. OpenSSL's TLS 1.3 defaults are kept.
 *
 * Client certificates (mTLS): verify_client "none" asks for none; "optional"
 * asks, and verifies one if presented (an invalid one fails the handshake);
 * "require" fails the handshake without a valid one. A certificate is valid
 * when it chains to a certificate of the `ca` file and is within its dates.
 * The subject CN of a verified client certificate is the connection's
 * identity (net_tls_session_peer_cn), which node.c hands to the broker with
 * mqtt_conn_set_cert_identity.
 */
#ifndef WEIR_NET_TLS_H
#define WEIR_NET_TLS_H

#include "base/buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct net_tls_config {
    const char *cert;          /* PEM certificate chain (leaf first) */
    const char *key;           /* PEM private key */
    const char *ca;            /* PEM CA bundle for client certificates; NULL/"" = none */
    const char *min_version;   /* "1.2" (default when NULL/"") or "1.3" */
    const char *verify_client; /* "none" (default), "optional" or "require" */
} net_tls_config;

/* Handshake counters of one listener, owned by the caller (node), so they
 * outlive listeners for the metrics. */
typedef struct net_tls_stats {
    uint64_t handshakes;        /* completed handshakes */
    uint64_t handshake_failures; /* failed handshakes (bad version, bad cert, garbage) */
    uint64_t client_certs;      /* handshakes with a verified client certificate */
} net_tls_stats;

typedef struct net_tls net_tls;

/* Builds a configuration from the files. WEIR_OK, or WEIR_EINVAL / WEIR_EIO
 * with the reason (file and OpenSSL's message) in err. */
int net_tls_new(const net_tls_config *cfg, net_tls **out, char *err, size_t errlen);
/* Drops one reference. NULL is a no-op. */
void net_tls_free(net_tls *t);
/* Validates a config without building it (option values only). */
int net_tls_config_check(const net_tls_config *cfg, char *err, size_t errlen);

/* ---- One connection (used by tcp.c) ------------------------------------ */

typedef struct net_tls_session net_tls_session;

/* NULL on OOM. The session takes its own reference on t. */
net_tls_session *net_tls_session_new(net_tls *t);
void net_tls_session_free(net_tls_session *s);

/* Ciphertext read from the socket. WEIR_OK or WEIR_ENOMEM. */
int net_tls_session_push(net_tls_session *s, const uint8_t *in, size_t n);

#define NET_TLS_READY 1 /* returned once, when the handshake has completed */

/* Advances the handshake and decrypts. Returns NET_TLS_READY once when the
 * handshake completes; WEIR_OK with *got > 0 plaintext bytes in buf;
 * WEIR_EAGAIN when more ciphertext is needed; WEIR_ESHUTDOWN when the peer
 * sent close_notify; WEIR_EPROTO when the handshake or a record failed
 * (net_tls_session_error says why; an alert for the peer may be pending). */
int net_tls_session_read(net_tls_session *s, uint8_t *buf, size_t cap, size_t *got);

/* Encrypts plaintext into the pending ciphertext. Only after the handshake.
 * WEIR_OK or WEIR_EPROTO. */
int net_tls_session_write(net_tls_session *s, const uint8_t *p, size_t n);

/* Queues a close_notify alert after what was written (idempotent). */
void net_tls_session_close_notify(net_tls_session *s);

/* Ciphertext waiting to be sent (handshake messages, alerts, records). */
size_t net_tls_session_pending(const net_tls_session *s);

/* Moves pending ciphertext into out, as much as it can take. WEIR_OK or
 * WEIR_EFULL when out is at its bound (the rest stays pending). */
int net_tls_session_drain(net_tls_session *s, weir_buf *out);

bool net_tls_session_ready(const net_tls_session *s);

/* The subject CN of the verified client certificate, or NULL. Valid until
 * the session is freed. */
const char *net_tls_session_peer_cn(const net_tls_session *s);

/* The reason of the last WEIR_EPROTO ("unsupported protocol", "certificate
 * verify failed: certificate has expired", ...). */
const char *net_tls_session_error(const net_tls_session *s);

/* "TLSv1.3" etc., after the handshake. */
const char *net_tls_session_version(const net_tls_session *s);

#endif
