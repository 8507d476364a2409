/* lstats.h -- latency samples and their summary: min / average / p95 / p99 /
 * max / standard deviation, and a histogram over fixed bounds, the shape of
 * the published latency tables `weir probe` reproduces.
 *
 * Samples are kept (8 bytes each) so that percentiles are exact rather than
 * estimated: a probe run is bounded (devices x rate x duration), and the
 * caller sets max_samples; samples past it are counted but not kept (the
 * summary says so through `dropped`).
 *
 * Percentiles use the nearest-rank method on the sorted samples (p95 is the
 * smallest sample with at least 95 % of samples at or below it); the
 * standard deviation is the population one.
 */
#ifndef WEIR_BASE_LSTATS_H
#define WEIR_BASE_LSTATS_H

#include <stddef.h>
#include <stdint.h>

typedef struct lstats {
    double *v;      /* samples, in ms */
    size_t n, cap;
    size_t max;     /* bound on kept samples */
    uint64_t dropped;
} lstats;

typedef struct lstats_summary {
    size_t n;
    double min, avg, p95, p99, max, std;
} lstats_summary;

/* Histogram bucket upper bounds in ms (the last bucket, counts[N], is
 * everything above the last bound). */
#define LSTATS_N_BOUNDS 18
extern const double lstats_bounds_ms[LSTATS_N_BOUNDS];

void lstats_init(lstats *s, size_t max_samples);
void lstats_free(lstats *s);
/* Adds one sample; WEIR_OK, or WEIR_EFULL (counted in dropped), WEIR_ENOMEM. */
int lstats_add(lstats *s, double ms);
/* Sorts the samples (in place) and summarises; all zero when empty. */
void lstats_summarise(lstats *s, lstats_summary *out);
/* counts[LSTATS_N_BOUNDS + 1]: samples <= bounds[i] (and > bounds[i-1]). */
void lstats_histogram(const lstats *s, uint64_t *counts);

#endif
