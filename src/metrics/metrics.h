/* metrics.h -- counters and gauges, rendered in the Prometheus text format.
 *
 * A registry holds metric families, each a name with one HELP text and one
 * TYPE, and under each family a list of series told apart by their labels.
 * Rendering writes the Prometheus text exposition format 0.0.4:
 *
 *   # HELP weir_mqtt_packets_total MQTT control packets by type and direction.
 *   # TYPE weir_mqtt_packets_total counter
 *   weir_mqtt_packets_total{type="PUBLISH",dir="in"} 42
 *   weir_mqtt_packets_total{type="PUBLISH",dir="out"} 40
 *
 * families in registration order, series in registration order under their
 * family, then the standard process_* metrics read from /proc/self at render
 * time.
 *
 * Counters are plain uint64_t cells handed out once and incremented by their
 * owner with (*c)++: no lock, no atomic read-modify-write on the hot path.
 * A cell never moves (each series is its own allocation) and lives until
 * metrics_free. The renderer reads cells with a relaxed atomic load, so a
 * value read from another thread may be a moment old but is never torn on the
 * 64-bit targets weir runs on.
 *
 * Registration and rendering take the registry's mutex, so any thread may
 * register or render. Gauge callbacks run under that mutex at render time:
 * they must be quick and must not call back into the registry.
 *
 * Labels are given as the text that goes between the braces, already
 * escaped, e.g. "type=\"PUBLISH\",dir=\"in\""; the registry compares them as
 * strings, so the same labels must be written the same way each time.
 */
#ifndef WEIR_METRICS_METRICS_H
#define WEIR_METRICS_METRICS_H

#include "base/buf.h"

#include <stdint.h>

typedef struct metrics metrics;

/* A new empty registry, or NULL when out of memory. */
metrics *metrics_new(void);

/* Frees the registry and every counter cell it handed out. NULL is a no-op. */
void metrics_free(metrics *m);

/* The counter cell for (name, labels), created at 0 on first use; the same
 * pointer for the same pair thereafter. help is used when the family is
 * created and ignored afterwards. labels is the inside of {} or NULL.
 * Returns NULL when out of memory, when name is not a valid metric name, or
 * when name is already registered as a gauge. */
uint64_t *metrics_counter(metrics *m, const char *name, const char *help, const char *labels);

/* Registers a counter whose cell is owned by a module (such as the broker's
 * statistics struct) that must outlive the registry's renders. Lets a module
 * keep its counters without depending on metrics/. Returns WEIR_OK,
 * WEIR_EINVAL, WEIR_EEXIST or WEIR_ENOMEM. */
int metrics_counter_ref(metrics *m, const char *name, const char *help, const char *labels,
                        const uint64_t *cell);

/* A gauge whose value is read by calling fn(arg) at render time. */
typedef double (*metrics_gauge_fn)(void *arg);

/* Registers a gauge series. Returns WEIR_OK, WEIR_EINVAL (bad name, NULL fn,
 * or name already registered as a counter), WEIR_EEXIST (same name and
 * labels already registered) or WEIR_ENOMEM. */
int metrics_gauge(metrics *m, const char *name, const char *help, const char *labels,
                  metrics_gauge_fn fn, void *arg);

/* Appends the whole exposition to out. Returns WEIR_OK, or WEIR_EFULL /
 * WEIR_ENOMEM from the buffer, in which case out holds a truncated text that
 * the caller should discard. */
int metrics_render(metrics *m, weir_buf *out);

/* One collector for series that come and go (one per rule): fn appends
 * complete families (HELP, TYPE, series) in the text format after the
 * registered ones, at render time, on the rendering thread and outside the
 * registry's mutex. fn NULL removes it. */
void metrics_set_collector(metrics *m, void (*fn)(void *arg, weir_buf *out), void *arg);

#endif
