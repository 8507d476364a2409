/* rules.h -- the rule runtime: every rule of a node, its lifecycle, its
 * inputs read from the stream store, its checkpoints and its outputs.
 *
 * CONTRACT (implemented in engine/rules.c; this header may grow, these
 * calls keep their meaning):
 *
 * A rule is created from the text of a CREATE RULE statement, compiled
 * (engine/rule.h), stored in the catalog (table rules, migration v3) and,
 * unless created stopped, started: it reads its input streams from its
 * checkpointed offsets (a new rule: from the end), pushes each committed
 * record through the compiled rule as soon as the store's watch reports it,
 * and hands results to its output: a derived stream (exactly once, see
 * rule.h "Output identity") or a sink (sink/sink.h: MQTT, webhook; at
 * least once, with a per-rule sequence number). State and input offsets are
 * checkpointed together (table rule_checkpoints).
 *
 * Threads: the node's loop thread. Memory: per rule, bounded by its
 * max_state option; a rule that fails (state limit, a sink that cannot be
 * opened, a corrupt checkpoint) becomes `failed` with its last error and
 * the others go on.
 */
#ifndef WEIR_ENGINE_RULES_H
#define WEIR_ENGINE_RULES_H

#include "catalog/catalog.h"
#include "engine/rule.h"
#include "ingest/ingest.h"
#include "sql/lexer.h"
#include "stream/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

typedef struct rules rules;

/* Outputs other than derived streams are plug-ins the node provides (the
 * engine knows nothing of MQTT or HTTP). open parses the target
 * ("mqtt:alerts/{device}", "webhook:https://host/path") and returns an
 * opaque sink; emit takes one row with the rule's output sequence number;
 * writable is false while the sink's queue is above its bound (the rule
 * then pauses reading and resumes when the sink calls on_drain(drain_arg));
 * stats returns a new JSON object (counters, queue, rate limiter delay). */
typedef struct rules_sink_ops {
    int (*open)(void *env, const char *rule, const char *target, const json_t *options,
                void (*on_drain)(void *drain_arg), void *drain_arg, void **sink, char *err,
                size_t errlen);
    int (*emit)(void *sink, const eng_row *row, uint64_t seq);
    bool (*writable)(void *sink);
    json_t *(*stats)(void *sink);
    void (*close)(void *sink);
    void *env;
} rules_sink_ops;

int rules_new(uv_loop_t *loop, ingest *in, catalog *cat, const rules_sink_ops *sinks,
              rules **out);
/* Loads every rule of the catalog and starts those whose desired state is
 * running (at start-up, after ingest_load_catalog). */
int rules_load(rules *rs, char *err, size_t errlen);
/* Checkpoints every running rule and stops them (shutdown). */
void rules_shutdown(rules *rs);
void rules_free(rules *rs);

/* Creates a rule from a statement "CREATE RULE name AS SELECT ... EMIT TO
 * 'target'". options: NULL or a JSON object kept with the rule (e.g. the
 * μ-service installation it came from). start: run it at once. Errors:
 * WEIR_EINVAL (syntax / planning, *serr has line and column),
 * WEIR_EEXIST, WEIR_ENOTFOUND (unknown input stream). Nothing is left
 * behind on error. */
int rules_create(rules *rs, const char *sql, size_t len, const json_t *options, bool start,
                 sql_error *serr);
int rules_start(rules *rs, const char *name, char *err, size_t errlen);
int rules_stop(rules *rs, const char *name);
int rules_restart(rules *rs, const char *name, char *err, size_t errlen);
int rules_delete(rules *rs, const char *name); /* WEIR_ENOTFOUND */

/* {"name","sql","target","status":"running|stopped|failed","error",
 *  "options", "metrics":{records_in, records_out, late, errors, state_bytes,
 *  latency_ms:{last, avg, p99}}, "sink": {...}} as a new object, or NULL. */
json_t *rules_get_json(rules *rs, const char *name);
json_t *rules_list_json(rules *rs); /* array, name order */

/* Live taps on a rule's output (dashboards, /api/v1/live): cb runs on the
 * loop thread for every row the rule emits, after its output accepted it.
 * The row is valid only during the call. A tap on a rule that is deleted
 * gets cb(arg, NULL) once and is then removed by the runtime (the caller
 * must not remove it again). NULL when the rule does not exist. */
typedef struct rules_tap rules_tap;
rules_tap *rules_tap_add(rules *rs, const char *name, void (*cb)(void *arg, const eng_row *row),
                         void *arg);
void rules_tap_remove(rules_tap *t);

/* Shared with the metrics exposition: calls cb for each rule. */
void rules_foreach(rules *rs, void (*cb)(void *arg, const char *name, json_t *rule_json),
                   void *arg);

/* Appends the per-rule series (rule label) in the Prometheus text format;
 * registered as a metrics collector by the node (loop thread). */
void rules_metrics_render(void *rs, weir_buf *out);

/* EXPLAIN: compiles a SELECT, a CREATE RULE or an EXPLAIN statement
 * without installing anything and appends the plan (JSON) to out. */
int rules_explain(rules *rs, const char *sql, size_t len, weir_buf *out, sql_error *serr);

#endif
