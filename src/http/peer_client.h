/* peer_client.h -- the node's HTTP client towards its peers (other weir
 * nodes), for the μ-service API: forwarding an installation to the node
 * named in it, and installing a job on the target of a move.
 *
 * Peers are named in the configuration ([node] peers =
 * "edge=http://10.0.0.2:8080,core=http://10.0.0.3:8080"); a request only
 * ever goes to a configured peer, never to a URL taken from a request body,
 * so the API cannot be used to make the node call arbitrary addresses.
 *
 * peer_post is BLOCKING (libcurl easy interface, bounded by a connect and a
 * total timeout): call it only off the event loop, from a uv_queue_work
 * worker. Everything else here is pure.
 */
#ifndef WEIR_HTTP_PEER_CLIENT_H
#define WEIR_HTTP_PEER_CLIENT_H

#include "base/buf.h"

#include <stddef.h>

#define PEER_URL_MAX 512
#define PEER_MAX_RESPONSE (1u << 20) /* a longer answer is an error (EFULL) */

/* Finds `name` in a peers list "name=url[,name=url...]" (spaces around
 * items ignored) and copies its base URL (without a trailing '/') into url.
 * WEIR_OK, WEIR_ENOTFOUND, or WEIR_EINVAL for a malformed list or a URL
 * that is not http:// or https://. */
int peer_lookup(const char *peers, const char *name, char *url, size_t n);

/* Checks a whole peers list (at start-up). WEIR_EINVAL with a sentence. */
int peer_list_check(const char *peers, char *err, size_t errlen);

typedef struct peer_response {
    long status;      /* HTTP status; 0 when no answer came */
    weir_buf body;    /* the answer's body, NUL-terminated (not counted) */
    char error[256];  /* why there was no answer */
} peer_response;

/* POSTs a JSON body to base_url + path and waits for the answer (at most
 * timeout_ms in all). Extra header lines ("X-Weir-Forwarded: 1") may be
 * passed in hdr (NULL for none). WEIR_OK when an answer came, whatever its
 * status; WEIR_EIO (unreachable, timed out, ...) with r->error otherwise.
 * The caller frees r with peer_response_free in either case. */
int peer_post(const char *base_url, const char *path, const char *body, size_t len,
              const char *hdr, long timeout_ms, peer_response *r);
void peer_response_free(peer_response *r);

/* Call once on the main thread before the first peer_post (libcurl's
 * global state). Idempotent. */
int peer_client_init(void);

#endif
