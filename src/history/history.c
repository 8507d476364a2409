/* history.c -- see history.h. */
#include "history/history.h"
#include "base/config.h"
#include "base/err.h"
#include "record/peek.h"
#include "record/schema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Scanning one partition --------------------------------------------- */

static bool in_range(const history_range *r, const stream_rec *rec)
{
    if (rec->ts < r->from || rec->ts >= r->to || rec->offset < r->min_offset)
        return false;
    if (r->has_key && (rec->key_len != r->key_len || memcmp(rec->key, r->key, r->key_len)))
        return false;
    return true;
}

/* Calls fn for every record of the range in one partition, in offset
 * order. `stop`, when given, is asked now and then with a lower bound of the
 * ts of everything left; returning true ends the scan early. */
static int scan_partition(stream *s, uint32_t p, const history_range *r, uint64_t start_offset,
                          bool by_offset, int (*fn)(void *arg, const stream_rec *rec),
                          bool (*stop)(void *arg, int64_t min_ts_left), void *arg)
{
    stream_reader *rd = NULL;
    if (!by_offset && r->from == INT64_MIN && r->min_offset) {
        by_offset = true;
        start_offset = r->min_offset;
    }
    int rc = by_offset ? stream_reader_open(s, p, STREAM_POS_OFFSET, (int64_t)start_offset, &rd)
         : r->from == INT64_MIN ? stream_reader_open(s, p, STREAM_POS_EARLIEST, 0, &rd)
                                : stream_reader_open(s, p, STREAM_POS_TIME, r->from, &rd);
    if (rc)
        return rc;
    uint64_t end = stream_end_offset(s, p);
    stream_rec rec;
    uint32_t n = 0;
    while (stream_reader_position(rd) < end) {
        /* Every so often, ask whether anything left could still matter. */
        if (stop && (++n & 1023) == 0 && stop(arg, stream_min_ts_from(s, p, stream_reader_position(rd))))
            break;
        rc = stream_reader_next(rd, &rec);
        if (rc == WEIR_EAGAIN) {
            rc = WEIR_OK;
            break;
        }
        if (rc == WEIR_ECORRUPT)
            continue; /* the store skips the damaged batch on the next call */
        if (rc)
            break;
        if (in_range(r, &rec) && fn(arg, &rec)) {
            rc = WEIR_OK;
            break;
        }
    }
    stream_reader_close(rd);
    return rc;
}

/* ---- Pages of records --------------------------------------------------- */

typedef struct pos {
    int64_t ts;
    uint32_t partition;
    uint64_t offset;
} pos;

static int pos_cmp(const pos *a, const pos *b)
{
    if (a->ts != b->ts)
        return a->ts < b->ts ? -1 : 1;
    if (a->partition != b->partition)
        return a->partition < b->partition ? -1 : 1;
    if (a->offset != b->offset)
        return a->offset < b->offset ? -1 : 1;
    return 0;
}

static int pos_qsort(const void *a, const void *b)
{
    return pos_cmp(a, b);
}

/* A max-heap of the `limit` smallest positions seen. */
typedef struct select_ctx {
    pos *heap;
    uint32_t n, limit;
    uint32_t partition;
    pos after;
    bool has_after;
    uint64_t seen;         /* records past the cursor, to know if more remain */
    bool cut;              /* a scan stopped early: records may remain */
} select_ctx;

static void heap_down(pos *h, uint32_t n, uint32_t i)
{
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && pos_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && pos_cmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        pos t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(pos *h, uint32_t i)
{
    while (i && pos_cmp(&h[(i - 1) / 2], &h[i]) < 0) {
        pos t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

/* Once the heap holds `limit` positions, records with a larger ts can no
 * longer enter it. (Equal ts could, by partition and offset: keep going.) */
static bool select_done(void *arg, int64_t min_ts_left)
{
    select_ctx *c = arg;
    if (c->n == c->limit && min_ts_left > c->heap[0].ts && min_ts_left != INT64_MAX)
        c->cut = true;
    return c->n == c->limit && min_ts_left > c->heap[0].ts;
}

static int select_one(void *arg, const stream_rec *rec)
{
    select_ctx *c = arg;
    pos p = {rec->ts, c->partition, rec->offset};
    if (c->has_after && pos_cmp(&p, &c->after) <= 0)
        return 0;
    c->seen++;
    if (c->n < c->limit) {
        c->heap[c->n] = p;
        heap_up(c->heap, c->n++);
    } else if (pos_cmp(&p, &c->heap[0]) < 0) {
        c->heap[0] = p;
        heap_down(c->heap, c->n, 0);
    }
    return 0;
}

/* Fetches the selected records of one partition into `out` slots. */
typedef struct fetch_ctx {
    const pos *sel;        /* sorted by (partition, offset) for this partition */
    uint32_t n, i;
    stream_rec *out;       /* slot per selected record, in the sel order */
    uint32_t *slot;        /* sel index -> output slot */
    weir_buf *store;       /* copies of keys and values */
} fetch_ctx;

static int fetch_one(void *arg, const stream_rec *rec)
{
    fetch_ctx *f = arg;
    while (f->i < f->n && f->sel[f->i].offset < rec->offset)
        f->i++;
    if (f->i >= f->n)
        return 1;
    if (f->sel[f->i].offset != rec->offset)
        return 0;
    stream_rec *o = &f->out[f->slot[f->i]];
    *o = *rec;
    size_t off = buf_used(f->store);
    if (buf_append(f->store, rec->key, rec->key_len) ||
        buf_append(f->store, rec->value, rec->value_len))
        return 1;
    /* Pointers are offsets until every copy is made (the buffer moves). */
    o->key = (const uint8_t *)(uintptr_t)off;
    o->value = (const uint8_t *)(uintptr_t)(off + rec->key_len);
    f->i++;
    return f->i >= f->n;
}

static int by_partition_offset(const void *a, const void *b)
{
    const pos *x = a, *y = b;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int history_records(stream *s, const history_range *r, const history_cursor *after,
                    uint32_t limit, int (*emit)(void *arg, const stream_rec *rec), void *arg,
                    history_cursor *next, bool *more)
{
    int rc = WEIR_OK;
    select_ctx sc = {.limit = limit};
    pos *by_po = NULL;
    uint32_t *slot = NULL;
    stream_rec *out = NULL;
    weir_buf store;
    buf_init(&store, 0);
    *more = false;
    if (next)
        next->set = false;
    if (limit == 0)
        return WEIR_EINVAL;
    if (after && after->set) {
        sc.after = (pos){after->ts, after->partition, after->offset};
        sc.has_after = true;
    }
    if (!(sc.heap = malloc(limit * sizeof(pos))))
        return WEIR_ENOMEM;
    history_range rr = *r;
    if (sc.has_after && sc.after.ts > rr.from)
        rr.from = sc.after.ts; /* nothing before the cursor's time can follow it */
    for (uint32_t p = 0; p < stream_partitions(s) && !rc; p++) {
        if (rr.partition >= 0 && (uint32_t)rr.partition != p)
            continue;
        sc.partition = p;
        rc = scan_partition(s, p, &rr, 0, false, select_one, select_done, &sc);
    }
    if (rc)
        goto cleanup;
    *more = sc.seen > sc.n || sc.cut;
    qsort(sc.heap, sc.n, sizeof(pos), pos_qsort);
    /* Fetch: per partition, in offset order. */
    by_po = malloc((sc.n + 1) * sizeof(pos));
    slot = malloc((sc.n + 1) * sizeof(uint32_t));
    out = calloc(sc.n + 1, sizeof(stream_rec));
    if (!by_po || !slot || !out) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    /* Remember each record's place in time order through its offset rank. */
    memcpy(by_po, sc.heap, sc.n * sizeof(pos));
    qsort(by_po, sc.n, sizeof(pos), by_partition_offset);
    for (uint32_t i = 0; i < sc.n; i++) {
        pos *hit = bsearch(&by_po[i], sc.heap, sc.n, sizeof(pos), pos_qsort);
        slot[i] = (uint32_t)(hit - sc.heap);
    }
    uint32_t i = 0;
    while (i < sc.n && !rc) {
        uint32_t j = i;
        while (j < sc.n && by_po[j].partition == by_po[i].partition)
            j++;
        fetch_ctx f = {.sel = by_po + i, .n = j - i, .out = out, .slot = slot + i, .store = &store};
        history_range all = {.from = INT64_MIN, .to = INT64_MAX, .partition = -1};
        rc = scan_partition(s, by_po[i].partition, &all, by_po[i].offset, true, fetch_one, NULL,
                            &f);
        i = j;
    }
    for (uint32_t k = 0; k < sc.n && !rc; k++) {
        out[k].key = buf_head(&store) + (uintptr_t)out[k].key;
        out[k].value = buf_head(&store) + (uintptr_t)out[k].value;
        if (emit(arg, &out[k])) {
            *more = true;
            break;
        }
        if (next)
            *next = (history_cursor){out[k].ts, out[k].partition, out[k].offset, true};
    }
cleanup:
    free(sc.heap);
    free(by_po);
    free(slot);
    free(out);
    buf_free(&store);
    return rc;
}

/* ---- Series ------------------------------------------------------------- */

typedef struct bucket {
    double acc;       /* sum, min, max, first or last value */
    int64_t acc_ts;   /* ts of first/last */
    uint64_t count;
} bucket;

typedef struct series_ctx {
    const char *field;
    size_t field_len;
    int64_t every, base;
    int64_t to;       /* end of the range: nothing at or after it counts */
    uint32_t n;
    bucket *b;
    history_agg agg;
} series_ctx;

static bool series_done(void *arg, int64_t min_ts_left)
{
    series_ctx *c = arg;
    return min_ts_left >= c->to;
}

static int series_one(void *arg, const stream_rec *rec)
{
    series_ctx *c = arg;
    double x;
    if (!record_peek_double(rec->value, rec->value_len, c->field, c->field_len, &x) || isnan(x))
        return 0;
    int64_t idx = (rec->ts - c->base) / c->every;
    if (idx < 0 || (uint64_t)idx >= c->n)
        return 0;
    bucket *b = &c->b[idx];
    switch (c->agg) {
    case HISTORY_AVG:
    case HISTORY_SUM:
        b->acc += x;
        break;
    case HISTORY_MIN:
        if (!b->count || x < b->acc)
            b->acc = x;
        break;
    case HISTORY_MAX:
        if (!b->count || x > b->acc)
            b->acc = x;
        break;
    case HISTORY_FIRST:
        if (!b->count || rec->ts < b->acc_ts) {
            b->acc = x;
            b->acc_ts = rec->ts;
        }
        break;
    case HISTORY_LAST:
        if (!b->count || rec->ts >= b->acc_ts) {
            b->acc = x;
            b->acc_ts = rec->ts;
        }
        break;
    case HISTORY_COUNT:
        break;
    }
    b->count++;
    return 0;
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int history_series(stream *s, const history_range *r, const char *field, int64_t every,
                   history_agg agg, uint32_t max_buckets,
                   int (*emit)(void *arg, int64_t bucket, double value, uint64_t count),
                   void *arg)
{
    if (every <= 0 || !field || !*field)
        return WEIR_EINVAL;
    history_range rr = *r;
    stream_stats st;
    stream_get_stats(s, &st);
    if (!st.records)
        return WEIR_OK;
    if (rr.from == INT64_MIN || rr.from < st.first_ts)
        rr.from = st.first_ts;
    if (rr.to == INT64_MAX || rr.to > st.last_ts + 1)
        rr.to = st.last_ts + 1;
    if (rr.to <= rr.from)
        return WEIR_OK;
    series_ctx c = {.field = field, .field_len = strlen(field), .every = every, .agg = agg};
    c.base = floor_div(rr.from, every) * every;
    c.to = rr.to;
    uint64_t n = (uint64_t)((rr.to - c.base + every - 1) / every);
    if (n > max_buckets)
        return WEIR_EINVAL;
    c.n = (uint32_t)n;
    c.b = calloc(c.n ? c.n : 1, sizeof(bucket));
    if (!c.b)
        return WEIR_ENOMEM;
    int rc = WEIR_OK;
    for (uint32_t p = 0; p < stream_partitions(s) && !rc; p++)
        if (rr.partition < 0 || (uint32_t)rr.partition == p)
            rc = scan_partition(s, p, &rr, 0, false, series_one, series_done, &c);
    for (uint32_t i = 0; i < c.n && !rc; i++) {
        bucket *b = &c.b[i];
        if (!b->count)
            continue;
        double v = agg == HISTORY_AVG     ? b->acc / (double)b->count
                   : agg == HISTORY_COUNT ? (double)b->count
                                          : b->acc;
        if (emit(arg, c.base + (int64_t)i * every, v, b->count))
            break;
    }
    free(c.b);
    return rc;
}

int history_agg_parse(const char *s, history_agg *out)
{
    static const char *const names[] = {"avg", "min", "max", "sum", "count", "first", "last"};
    for (int i = 0; i < 7; i++)
        if (!strcmp(s, names[i])) {
            *out = (history_agg)i;
            return WEIR_OK;
        }
    if (!strcmp(s, "mean")) {
        *out = HISTORY_AVG;
        return WEIR_OK;
    }
    return WEIR_EINVAL;
}

int history_parse_time(const char *s, int64_t now_ns, int64_t *out)
{
    int64_t ms;
    if (!strcmp(s, "now")) {
        *out = now_ns;
        return WEIR_OK;
    }
    if (!strncmp(s, "now-", 4) || s[0] == '-') {
        const char *d = s[0] == '-' ? s + 1 : s + 4;
        if (config_parse_duration_ms(d, &ms))
            return WEIR_EINVAL;
        *out = now_ns - ms * 1000000LL;
        return WEIR_OK;
    }
    char *end;
    long long v = strtoll(s, &end, 10);
    if (*s && !*end) {
        *out = v * 1000000LL; /* epoch milliseconds */
        return WEIR_OK;
    }
    return rec_parse_time(s, strlen(s), NULL, out);
}
