/* sink_int.h -- what the sink kinds (mqtt.c, webhook.c) share with sink.c:
 * the common head of every sink, the per-rule statistics block owned by the
 * env, and the option readers. Not for use outside src/sink/.
 */
#ifndef WEIR_SINK_SINK_INT_H
#define WEIR_SINK_SINK_INT_H

#include "sink/hist.h"
#include "sink/sink.h"

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* Counters and the DRL histogram of one rule name. Lives in the env until
 * sink_env_free, so that metric gauges and counters never point at freed
 * memory; a sink of the same rule re-opened later reuses it. The counter
 * cells may be written by the loop thread and the rule's webhook worker
 * (a payload that fails to encode vs. a delivery that fails), so they are
 * incremented with relaxed atomic adds and read with relaxed loads. */
typedef struct sink_stats {
    struct sink_stats *next;
    char *rule;
    uint64_t *sent, *failed, *dropped, *abandoned, *retries, *drl_rows;
    uint64_t local[6];   /* the cells when there is no registry */
    uint64_t queue;      /* rows queued now (webhook), atomic */
    pthread_mutex_t mu;  /* guards drl */
    sink_hist drl;
    struct sink_gauge_arg {
        struct sink_stats *st;
        int which;
    } gauge_args[8];
} sink_stats;

static inline uint64_t sink_load(const uint64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_RELAXED);
}
static inline void sink_inc(uint64_t *p)
{
    __atomic_fetch_add(p, 1, __ATOMIC_RELAXED);
}

/* The common head of every sink. */
typedef struct sink_kind {
    int (*emit)(void *sink, const eng_row *row, uint64_t seq);
    bool (*writable)(void *sink);
    json_t *(*stats)(void *sink);
    void (*close)(void *sink);
} sink_kind;

typedef struct sink_base {
    const sink_kind *kind;
} sink_base;

struct sink_env {
    uv_loop_t *loop;
    sink_publish_fn publish;
    void *publish_ctx;
    metrics *m;
    pthread_mutex_t mu; /* guards stats list */
    sink_stats *stats;
};

/* The stats block of rule, created on first use. NULL when out of memory. */
sink_stats *sink_stats_get(sink_env *e, const char *rule);
void sink_stats_drl_add(sink_stats *st, uint64_t us);
/* Adds the counters and DRL summary to obj. */
void sink_stats_json(sink_stats *st, json_t *obj, bool with_drl);

/* Option readers: absent -> *out keeps its default. Integers and booleans
 * may be given as JSON values or as strings ("1", "true"), since options
 * also come from SQL WITH (...) clauses. WEIR_OK or WEIR_EINVAL with err. */
int sink_opt_int(const json_t *opts, const char *key, int64_t lo, int64_t hi, int64_t *out,
                 char *err, size_t errlen);
int sink_opt_bool(const json_t *opts, const char *key, bool *out, char *err, size_t errlen);
/* "10/s", "600/min", "2.5/s", "100/h" or a bare number (per second) ->
 * events per second, > 0. */
int sink_opt_rate(const json_t *opts, const char *key, double *out, char *err, size_t errlen);

int sink_mqtt_open(sink_env *e, const char *rule, const char *target, const json_t *options,
                   sink_base **out, char *err, size_t errlen);
int sink_webhook_open(sink_env *e, const char *rule, const char *url, const json_t *options,
                      void (*on_drain)(void *), void *drain_arg, sink_base **out, char *err,
                      size_t errlen);

#endif
