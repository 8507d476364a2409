/* live.h -- live feeds: records pushed to clients as they commit, over
 * WebSocket (/api/v1/live) or Server-Sent Events (GET /api/v1/live).
 *
 * A subscriber names a stream (or, once the rule runtime is linked, a rule)
 * and optionally a key, a list of fields and a start position. It gets one
 * reader per partition and a watch on the stream: when the store reports a
 * commit, the subscriber's readers are read to the new end on the loop
 * thread, each record is decoded once from its storage encoding
 * (record_decode), filtered, turned into one JSON message (record_to_json
 * for the fields) stamped with the time it was read back (T4, "push_ns")
 * and queued on the client's connection. The message format is in
 * docs/api.md ("Live feeds").
 *
 * Why per-subscriber readers rather than one shared fan-out: subscribers may
 * start at different positions (earliest, an offset, the end) and the store's
 * readers are cheap (a pread from the page cache); reading is driven by the
 * store's watch, so an idle feed costs nothing.
 *
 * Bounded memory, and what happens at the bound. Every client has at most
 * `max_buffer` unsent bytes (http.live_buffer). The pump reads a client's
 * records only while its buffer is under half the bound (the high-water
 * mark); above it the client is "full" and reading resumes when the
 * connection drains, so a burst larger than the buffer (one POST of 10 MB)
 * is paced by the client's socket rather than dropped or buffered. A client
 * that stays full for longer than `slow_ms` (http.live_slow, default 5 s)
 * cannot keep up: what is queued is discarded, a last message
 * {"type":"error","error":"slow consumer: N bytes buffered"} is queued, and
 * the connection is closed (WebSocket close 1008 with the same reason; SSE:
 * an "error" event, then the connection ends). A client that does not read
 * even that is dropped after HTTP_CLOSE_DEADLINE seconds. Other clients are
 * not affected: records stay in the store, each client has its own readers.
 * A message larger than half the bound is skipped (logged).
 *
 * While a subscriber holds readers of a stream, the stream cannot be
 * deleted (the store answers WEIR_EBUSY).
 *
 * Threads: the loop thread only.
 */
#ifndef WEIR_HTTP_LIVE_H
#define WEIR_HTTP_LIVE_H

#include "http/server.h"
#include "ingest/ingest.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct live live;

/* max_buffer: per-client bound of unsent bytes (0: 1 MiB); slow_ms: how long
 * a client may stay full before it is disconnected (<= 0: 5 s). NULL on OOM. */
live *live_new(uv_loop_t *loop, ingest *in, size_t max_buffer, int64_t slow_ms);

/* The rule runtime for ?rule=NAME (engine/rules.h). Without it, or in a
 * build without the runtime, rule subscriptions are answered "not
 * available". The pointer is a struct rules *. */
void live_set_rules(live *lv, void *rs);

/* Closes every subscriber's readers and watches (before the store closes;
 * the HTTP server's stop has normally done it already). */
void live_shutdown(live *lv);
void live_free(live *lv);

/* Subscribers now open, and the counter of slow consumers disconnected
 * since start (a cell that lives as long as lv, for metrics_counter_ref). */
uint64_t live_subscribers(const live *lv);
const uint64_t *live_slow_counter(const live *lv);

/* Registers weir_live_subscribers and weir_live_slow_consumers_total. The
 * registry is a struct metrics * (metrics/metrics.h). */
int live_register_metrics(live *lv, void *registry);

/* GET /api/v1/live?stream=NAME[&key=K][&fields=a,b][&from=latest|earliest|N]
 * or ?rule=NAME: a Server-Sent Events stream. ctx is the http_api_ctx. */
void http_route_live(http_request *r, http_response *w, void *ctx);

/* The WebSocket endpoint at /api/v1/live, for the node's endpoint table
 * (message mode, .text = 1; subscribe with the same query string or with a
 * {"type":"subscribe", ...} message):
 *   {.path = "/api/v1/live", .on_open = live_ws_open, .on_data = live_ws_data,
 *    .on_drain = live_ws_drain, .on_close = live_ws_close, .text = 1} */
void *live_ws_open(void *ctx, http_ws *ws);
void live_ws_data(void *user, const uint8_t *data, size_t len);
void live_ws_drain(void *user);
void live_ws_close(void *user);

#endif
