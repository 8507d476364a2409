/* reader.c -- reading a partition from a position, concurrently with the
 * writer and retention.
 *
 * A reader holds a reference to the segment it is in and its own read-only
 * descriptor of the .log, and reads with the shared batch scanner
 * (segment.c), so every record it returns comes from a batch that passed
 * the CRC and structure checks. It never reads past the segment's
 * published size, which the writer raises only after the bytes are written
 * (NONE/INTERVAL) or fsynced (ALWAYS): a batch being written is invisible,
 * never torn.
 *
 * Positioning by offset uses the sparse offset index and then skips whole
 * batches by header; by time, the segments' max ts and the time index (see
 * store.h for the exact meaning). An index entry is only a hint: the batch
 * it points at must carry the expected base offset, or the reader falls back
 * to the start of the segment.
 *
 * At the end of a sealed segment the reader moves to the next one; at the
 * end of the active segment it returns WEIR_EAGAIN. When retention has
 * deleted its segment it moves to the new start offset.
 */
#include "stream/streamInt.h"

#include "base/err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

struct stream_reader {
    stream *s;
    stream__part *p;
    stream__seg *seg; /* referenced */
    int fd;           /* its .log, -1 until needed */
    stream__scan sc;  /* position inside seg */
    uint64_t next;    /* offset of the next record to return */
    bool from_index;  /* sc was positioned by an index entry, no batch read yet */
    bool time_mode;   /* skipping records with ts < t */
    int64_t t;
    bool corrupt;     /* the last call returned WEIR_ECORRUPT */
    uint64_t bad_pos; /* position of that batch */
    /* The batch being returned. */
    const uint8_t *rp; /* next record */
    uint32_t rleft;    /* records left */
    uint64_t roff;     /* offset of rp */
    int64_t rcommit;
};

static void set_seg(stream_reader *r, stream__seg *g)
{
    if (r->seg != g) {
        if (r->fd >= 0)
            close(r->fd);
        r->fd = -1;
        if (r->seg)
            stream__seg_unref(r->seg);
        r->seg = g;
    } else {
        stream__seg_unref(g); /* the caller took one reference too many */
    }
    r->rleft = 0;
}

static int ensure_fd(stream_reader *r)
{
    if (r->fd >= 0)
        return WEIR_OK;
    char path[4096];
    stream__seg_path(path, sizeof(path), r->p->dir, r->seg->base, ".log");
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0)
        return atomic_load(&r->seg->deleted) ? WEIR_EAGAIN : WEIR_EIO;
    r->sc.fd = r->fd;
    return WEIR_OK;
}

/* Index (in p->segs) of the segment holding offset off; caller holds
 * seg_mu and has clamped off to [start, end]. */
static size_t find_seg(const stream__part *p, uint64_t off)
{
    size_t lo = 0, hi = p->nsegs;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->segs[mid]->base <= off)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* Positions the reader at offset off (clamped to the retained, committed
 * range). */
static void seek_offset(stream_reader *r, uint64_t off)
{
    stream__part *p = r->p;
    uv_mutex_lock(&p->seg_mu);
    stream__seg *first = p->segs[0], *last = p->segs[p->nsegs - 1];
    if (off < first->base)
        off = first->base;
    if (off > last->end)
        off = last->end;
    stream__seg *g = p->segs[find_seg(p, off)];
    uint64_t size = g->size, gend = g->end;
    atomic_fetch_add(&g->refs, 1);
    uv_mutex_unlock(&p->seg_mu);

    set_seg(r, g);
    r->next = off;
    r->time_mode = false;
    r->from_index = false;
    uint64_t pos = 0, expect = g->base;
    stream__ient e;
    if (off > g->base && off - g->base <= UINT32_MAX &&
        stream__index_find_offset(p->dir, g->base, size, (uint32_t)(off - g->base), &e) == 0) {
        pos = e.pos;
        expect = g->base + e.rel;
        r->from_index = pos > 0;
    }
    if (off == gend) {
        /* At the end: start after the last byte (no scan needed). */
        pos = size;
        expect = off;
        r->from_index = false;
    }
    stream__scan_reset(&r->sc, r->fd, pos, expect);
}

/* Positions at the lowest offset whose ts >= t; see store.h. */
static void seek_time(stream_reader *r, int64_t t)
{
    stream__part *p = r->p;
    uv_mutex_lock(&p->seg_mu);
    stream__seg *g = NULL;
    for (size_t i = 0; i < p->nsegs; i++) {
        if (p->segs[i]->size > 0 && p->segs[i]->max_ts >= t) {
            g = p->segs[i];
            break;
        }
    }
    uint64_t end = p->segs[p->nsegs - 1]->end, size = g ? g->size : 0;
    if (g)
        atomic_fetch_add(&g->refs, 1);
    uv_mutex_unlock(&p->seg_mu);
    if (!g) {
        seek_offset(r, end); /* nothing at or after t yet: the end */
        return;
    }
    set_seg(r, g);
    uint64_t pos = 0, expect = g->base;
    stream__ient e;
    if (stream__index_find_time(p->dir, g->base, size, t, &e) == 0) {
        pos = e.pos;
        expect = g->base + e.rel;
    }
    r->next = expect;
    r->from_index = pos > 0;
    r->time_mode = true;
    r->t = t;
    stream__scan_reset(&r->sc, r->fd, pos, expect);
}

int stream_reader_open(stream *s, uint32_t partition, stream_pos_kind kind, int64_t value,
                       stream_reader **out)
{
    if (!s || !out || partition >= s->nparts || kind < STREAM_POS_EARLIEST ||
        kind > STREAM_POS_TIME)
        return WEIR_EINVAL;
    stream_reader *r = stream__alloc(s->st, sizeof(*r));
    if (!r)
        return WEIR_ENOMEM;
    memset(r, 0, sizeof(*r));
    r->s = s;
    r->p = &s->parts[partition];
    r->fd = -1;
    stream__scan_init(&r->sc, -1, 0, 0, 0);
    r->sc.key = s->st->key;
    atomic_fetch_add(&s->readers, 1);
    switch (kind) {
    case STREAM_POS_EARLIEST:
        seek_offset(r, 0);
        break;
    case STREAM_POS_LATEST:
        seek_offset(r, UINT64_MAX);
        break;
    case STREAM_POS_OFFSET:
        seek_offset(r, value < 0 ? 0 : (uint64_t)value);
        break;
    case STREAM_POS_TIME:
        seek_time(r, value);
        break;
    }
    *out = r;
    return WEIR_OK;
}

uint64_t stream_reader_position(const stream_reader *r)
{
    return r->next;
}

void stream_reader_close(stream_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    if (r->seg)
        stream__seg_unref(r->seg);
    stream__scan_free(&r->sc);
    atomic_fetch_sub(&r->s->readers, 1);
    free(r);
}

/* After WEIR_ECORRUPT: continue at the next index entry past the bad batch,
 * else at the next segment, else (active segment) at the committed end. */
static void skip_corrupt(stream_reader *r)
{
    stream__part *p = r->p;
    stream__seg *g = r->seg;
    uv_mutex_lock(&p->seg_mu);
    uint64_t size = g->size, end = g->end;
    bool sealed = g->sealed;
    uv_mutex_unlock(&p->seg_mu);
    r->corrupt = false;
    stream__ient e;
    if (stream__index_find_after(p->dir, g->base, size, r->bad_pos, &e) == 0 &&
        g->base + e.rel > r->next) {
        r->next = g->base + e.rel;
        r->from_index = false;
        r->rleft = 0;
        stream__scan_reset(&r->sc, r->fd, e.pos, r->next);
        return;
    }
    if (sealed) {
        seek_offset(r, end);
        return;
    }
    r->next = end;
    r->rleft = 0;
    stream__scan_reset(&r->sc, r->fd, size, end);
}

int stream_reader_next(stream_reader *r, stream_rec *out)
{
    if (r->corrupt)
        skip_corrupt(r);
    for (;;) {
        if (r->rleft > 0 && atomic_load_explicit(&r->seg->deleted, memory_order_relaxed))
            r->rleft = 0; /* retention took it: move to the new start below */
        while (r->rleft > 0) {
            size_t n = stream__rec_decode(r->rp, out);
            uint64_t off = r->roff++;
            r->rp += n;
            r->rleft--;
            if (off < r->next)
                continue;
            if (r->time_mode && out->ts < r->t) {
                r->next = off + 1;
                continue;
            }
            r->time_mode = false;
            r->next = off + 1;
            out->partition = r->p->id;
            out->offset = off;
            out->commit = r->rcommit;
            return WEIR_OK;
        }

        stream__seg *g = r->seg;
        if (atomic_load(&g->deleted)) {
            seek_offset(r, r->next); /* clamps to the new start */
            continue;
        }
        uv_mutex_lock(&r->p->seg_mu);
        uint64_t size = g->size, end = g->end;
        bool sealed = g->sealed;
        uv_mutex_unlock(&r->p->seg_mu);
        if (r->sc.pos >= size) {
            if (sealed && r->sc.pos == size) {
                seek_offset(r, end);
                if (r->seg != g)
                    continue;
            }
            r->time_mode = false;
            return WEIR_EAGAIN;
        }
        int rc = ensure_fd(r);
        if (rc == WEIR_EAGAIN)
            continue; /* deleted meanwhile */
        if (rc)
            return rc;
        r->sc.limit = size;
        rc = stream__scan_next(&r->sc, r->next);
        if (rc == WEIR_ECORRUPT && r->from_index) {
            /* A stale index entry, not a damaged log: start the segment over. */
            r->from_index = false;
            stream__scan_reset(&r->sc, r->fd, 0, g->base);
            continue;
        }
        r->from_index = false;
        if (rc == WEIR_ECORRUPT) {
            if (atomic_load(&g->deleted))
                continue;
            r->corrupt = true;
            r->bad_pos = r->sc.pos;
            return WEIR_ECORRUPT;
        }
        if (rc == WEIR_EAGAIN)
            continue;
        if (rc)
            return rc;
        r->rp = r->sc.batch + STREAM__BATCH_HDR;
        r->rleft = r->sc.h.count;
        r->roff = r->sc.h.base;
        r->rcommit = r->sc.h.commit;
    }
}
