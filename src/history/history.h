/* history.h -- questions about stored records: pages of records in time
 * order, and downsampled series, computed by scanning a stream's partitions
 * in bounded memory.
 *
 * Time order across partitions: each partition is read from the first
 * record at or after `from` (the store's time seek), and the records are
 * merged by (ts, partition, offset), which is also the cursor: a page ends
 * with the cursor of its last record and the next page starts strictly
 * after it, so pages never repeat or skip a record even when many share a
 * timestamp. A page of `limit` records costs a scan of the range plus a
 * heap of `limit` small entries; the records themselves are read twice
 * (select, then fetch), never held all at once.
 *
 * Series: fixed buckets aligned on multiples of `every` since the epoch
 * (time_bucket semantics), at most max_buckets of them (the caller answers
 * a request for more with an error rather than allocating it); each
 * record's field is read as a double (numbers, booleans, numeric strings)
 * and records without it are skipped.
 *
 * Threads: the caller's. A scan reads segment files (mostly from the page
 * cache); the HTTP resources call it on the loop for bounded ranges.
 */
#ifndef WEIR_HISTORY_HISTORY_H
#define WEIR_HISTORY_HISTORY_H

#include "stream/store.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct history_range {
    int64_t from;        /* ns, inclusive; INT64_MIN = from the start */
    int64_t to;          /* ns, exclusive; INT64_MAX = to the end */
    const uint8_t *key;  /* only records with this key, when has_key */
    uint32_t key_len;
    bool has_key;
    uint64_t min_offset; /* only records at or after this offset (every partition) */
    int32_t partition;   /* only this partition, or -1 for all (set by callers) */
} history_range;

typedef struct history_cursor {
    int64_t ts;
    uint32_t partition;
    uint64_t offset;
    bool set;            /* false: from the beginning of the range */
} history_cursor;

/* Calls emit for up to `limit` records of the range after `after`, in
 * (ts, partition, offset) order. *next is the cursor of the last record
 * emitted and *more whether records remain. emit returning non-zero stops.
 * Errors: WEIR_ENOMEM, WEIR_EIO, WEIR_EINVAL. */
int history_records(stream *s, const history_range *r, const history_cursor *after,
                    uint32_t limit, int (*emit)(void *arg, const stream_rec *rec), void *arg,
                    history_cursor *next, bool *more);

typedef enum history_agg {
    HISTORY_AVG = 0,
    HISTORY_MIN,
    HISTORY_MAX,
    HISTORY_SUM,
    HISTORY_COUNT,
    HISTORY_FIRST,
    HISTORY_LAST,
} history_agg;

int history_agg_parse(const char *s, history_agg *out);

/* Calls emit(bucket_start_ns, value, count) for every non-empty bucket in
 * time order. WEIR_EINVAL when every <= 0 or the range needs more than
 * max_buckets buckets. */
int history_series(stream *s, const history_range *r, const char *field, int64_t every,
                   history_agg agg, uint32_t max_buckets,
                   int (*emit)(void *arg, int64_t bucket, double value, uint64_t count),
                   void *arg);

/* Parses a time for from/to: RFC 3339, "YYYY-MM-DD[ HH:MM:SS]", epoch
 * milliseconds, "now", or "now-1h" / "-15m" relative to now_ns. */
int history_parse_time(const char *s, int64_t now_ns, int64_t *out);

#endif
