/* hist.c -- see hist.h. */
#include "sink/hist.h"

#include <math.h>
#include <string.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < 16)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= 4 */
    unsigned sub = (unsigned)(v >> (e - 4)) & 15u;
    unsigned idx = 16 + (e - 4) * 16 + sub;
    return idx < SINK_HIST_BUCKETS ? idx : SINK_HIST_BUCKETS - 1;
}

/* The middle of bucket idx. */
static double bucket_mid(unsigned idx)
{
    if (idx < 16)
        return idx;
    unsigned e = (idx - 16) / 16 + 4, sub = (idx - 16) % 16;
    double lo = ldexp(16 + sub, (int)e - 4), width = ldexp(1, (int)e - 4);
    return lo + (width - 1) / 2;
}

void sink_hist_add(sink_hist *h, uint64_t us)
{
    if (h->count == 0 || us < h->min_us)
        h->min_us = us;
    if (us > h->max_us)
        h->max_us = us;
    h->count++;
    h->sum_us += (double)us;
    h->sumsq_us += (double)us * (double)us;
    h->b[bucket_of(us)]++;
}

double sink_hist_quantile(const sink_hist *h, double q)
{
    if (h->count == 0)
        return 0;
    if (q <= 0)
        return (double)h->min_us;
    if (q >= 1)
        return (double)h->max_us;
    uint64_t rank = (uint64_t)ceil(q * (double)h->count), seen = 0;
    if (rank == 0)
        rank = 1;
    for (unsigned i = 0; i < SINK_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double v = bucket_mid(i);
            if (v < (double)h->min_us)
                v = (double)h->min_us;
            if (v > (double)h->max_us)
                v = (double)h->max_us;
            return v;
        }
    }
    return (double)h->max_us;
}

void sink_hist_summarize(const sink_hist *h, sink_hist_summary *out)
{
    memset(out, 0, sizeof(*out));
    out->count = h->count;
    if (!h->count)
        return;
    double n = (double)h->count, mean = h->sum_us / n;
    double var = h->sumsq_us / n - mean * mean;
    out->min_ms = (double)h->min_us / 1e3;
    out->max_ms = (double)h->max_us / 1e3;
    out->avg_ms = mean / 1e3;
    out->stddev_ms = var > 0 ? sqrt(var) / 1e3 : 0;
    out->p50_ms = sink_hist_quantile(h, 0.50) / 1e3;
    out->p95_ms = sink_hist_quantile(h, 0.95) / 1e3;
    out->p99_ms = sink_hist_quantile(h, 0.99) / 1e3;
}
