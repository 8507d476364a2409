/* status.h -- the one mapping from weir_err to an HTTP status code.
 *
 * Every HTTP door answers an error through http_respond_error, which asks
 * this function for the status, so that a given failure always gets the same
 * status whichever resource reported it (the Mosquitto habit of mapping
 * errors to reason codes in exactly one place). The JSON body carries the
 * symbolic name from weir_err_name as "code", which is the stable thing for
 * clients to match on.
 */
#ifndef WEIR_HTTP_STATUS_H
#define WEIR_HTTP_STATUS_H

/* The HTTP status for a weir_err code: 200 for WEIR_OK, the mapped 4xx/5xx for a
 * known error, 500 for anything else. Never fails. */
int http_status_from_err(int err);

#endif
