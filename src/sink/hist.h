/* hist.h -- a small log-linear histogram of delays (microseconds) for the
 * DRL figures: count, min, avg, max, standard deviation and quantiles.
 *
 * Values below 16 us have their own bucket; above, each power of two is
 * split in 16 sub-buckets, so a quantile is within 1/16 (6.25 %) of the
 * true value, clamped to the exact min and max. 36 octaves cover 0 us to
 * about 19 hours (larger values land in the last bucket); the whole thing
 * is a fixed 5 KB, no allocation. Not thread-safe: the owner locks.
 */
#ifndef WEIR_SINK_HIST_H
#define WEIR_SINK_HIST_H

#include <stdint.h>

#define SINK_HIST_BUCKETS (16 + 36 * 16)

typedef struct sink_hist {
    uint64_t count;
    uint64_t min_us, max_us;
    double sum_us, sumsq_us; /* for the mean and the standard deviation */
    uint64_t b[SINK_HIST_BUCKETS];
} sink_hist;

typedef struct sink_hist_summary {
    uint64_t count;
    double min_ms, avg_ms, p50_ms, p95_ms, p99_ms, max_ms, stddev_ms;
} sink_hist_summary;

void sink_hist_add(sink_hist *h, uint64_t us);
/* The value at quantile q (0..1) in microseconds; 0 when empty. */
double sink_hist_quantile(const sink_hist *h, double q);
void sink_hist_summarize(const sink_hist *h, sink_hist_summary *out);

#endif
