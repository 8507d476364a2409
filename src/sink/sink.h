/* sink.h -- the outputs of rules other than derived streams: MQTT topics
 * and webhooks, as the plug-ins of engine/rules.h (rules_sink_ops).
 *
 * The engine knows nothing of MQTT or HTTP, and neither does this layer's
 * interface: the MQTT sink publishes through a function the node gives it
 * (a wrapper of mqtt_broker_publish), so sink/ includes no mqtt/ or http/
 * header. The node wires it in a few lines:
 *
 *     static void sink_pub(void *ctx, const char *topic, const void *p, size_t n,
 *                          int qos, bool retain)
 *     {
 *         mqtt_broker_publish(((node *)ctx)->broker, topic, p, n, qos, retain);
 *     }
 *     ...
 *     sink_env_new(&n->loop, sink_pub, n, n->metrics, &n->sinks);
 *     rules_sink_ops ops;
 *     sink_env_ops(n->sinks, &ops);
 *     rules_new(&n->loop, n->ingest, n->catalog, &ops, &n->rules);
 *     ...
 *     rules_free(n->rules);   // closes every sink
 *     metrics_free(n->metrics);
 *     sink_env_free(n->sinks);
 *
 * Targets (the text after EMIT TO):
 *   mqtt:<topic template>     e.g. mqtt:alerts/{device}/climate (sink/mqtt.c,
 *                             template rules in sink/template.h)
 *   webhook:http[s]://host[:port]/path   (sink/webhook.c)
 * Each row is one JSON object (sink/payload.h) carrying the rule name and
 * the per-rule sequence number `_seq`: delivery is at least once, and a
 * receiver drops a (rule, _seq) it has already seen.
 *
 * Threads: open/emit/writable/stats/close run on the loop thread. The MQTT
 * sink publishes synchronously (the broker's own queues are bounded); the
 * webhook sink hands rows to its own worker thread through a bounded queue
 * and never blocks the loop.
 *
 * Metrics, per rule (labels rule="name"): weir_sink_rows_total{result=
 * "sent|failed|dropped|abandoned"}, weir_sink_retries_total,
 * weir_sink_queue_rows, and for rate-limited sinks the DRL (delay added by
 * the rate limiter per row): weir_sink_drl_seconds{quantile="0.5|0.95|0.99|1"},
 * weir_sink_drl_avg_seconds, weir_sink_drl_min_seconds,
 * weir_sink_drl_stddev_seconds, weir_sink_drl_rows_total. Their cells live in
 * the env (one small block per rule name ever opened), so a rule that is
 * deleted and re-created keeps counting in the same series, and the
 * registry never reads freed memory.
 */
#ifndef WEIR_SINK_SINK_H
#define WEIR_SINK_SINK_H

#include "engine/rules.h"
#include "metrics/metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Publishes one message to the node's broker (on the loop thread). */
typedef void (*sink_publish_fn)(void *ctx, const char *topic, const void *payload, size_t len,
                                int qos, bool retain);

typedef struct sink_env sink_env;

/* A new environment. publish may be NULL (mqtt: targets then fail to
 * open); m may be NULL (no Prometheus series). Initialises libcurl's
 * globals. WEIR_OK or WEIR_ENOMEM. */
int sink_env_new(uv_loop_t *loop, sink_publish_fn publish, void *publish_ctx, metrics *m,
                 sink_env **out);
/* Fills ops with the plug-in functions and ops->env = e. */
void sink_env_ops(sink_env *e, rules_sink_ops *ops);
/* Frees the env. Every sink must be closed before; the metrics registry
 * given to sink_env_new must not be rendered afterwards (free it first). */
void sink_env_free(sink_env *e);

#endif
