/* client.h -- the CLI's HTTP client for talking to a running node.
 *
 * Subcommands that act on a running weir (import, tail) go through its HTTP
 * API rather than opening the data directory, because the node owns its
 * store (a stream store directory is locked by one process). libcurl does
 * the HTTP; this file only shapes requests and answers.
 */
#ifndef WEIR_CLI_CLIENT_H
#define WEIR_CLI_CLIENT_H

#include "base/buf.h"

#include <stddef.h>

typedef struct cli_response {
    long status;   /* HTTP status, 0 when the request failed */
    weir_buf body; /* owned; NUL-terminated after the call */
    char error[256]; /* transport error when status is 0 */
} cli_response;

/* GET or POST (body != NULL) to url; content_type may be NULL. When the
 * environment has WEIR_TOKEN (an API token), it goes as a Bearer token.
 * Returns
 * WEIR_OK when an HTTP answer came back (any status), WEIR_EIO otherwise.
 * timeout_ms 0 = none. The caller frees r->body with buf_free. */
int cli_http(const char *url, const void *body, size_t len, const char *content_type,
             long timeout_ms, cli_response *r);

/* Percent-encodes s into out (capacity n). */
void cli_urlencode(const char *s, char *out, size_t n);

/* The base URL of the node: --url, else WEIR_URL, else http://127.0.0.1:8080. */
const char *cli_base_url(const char *flag);

#endif
