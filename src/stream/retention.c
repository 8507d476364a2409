/* retention.c -- deleting whole old segments, on the writer thread.
 *
 * A partition keeps a contiguous range of offsets, so segments are deleted
 * from the oldest end only, and only whole:
 *   - by time: while the oldest segment's newest ts (max_ts) is older than
 *     now - retention_ms. Because ts need not grow with the offset, a newer
 *     segment can hold older records than an older one; it then waits until
 *     the segments before it go. An expired active segment is rolled first
 *     (an empty segment at the end offset keeps the partition's position
 *     across restarts) and then deleted like the others.
 *   - by size: while the partition's segments (.log bytes) exceed
 *     retention_bytes, the oldest sealed one goes; the active segment is
 *     never deleted for size (it is at most segment_bytes plus one batch).
 *
 * Readers: a segment is first taken out of the partition's list and marked
 * deleted (under seg_mu), then its files are unlinked. A reader inside it
 * keeps its open file descriptor and reference, so nothing disappears from
 * under a read in progress; at its next batch it sees the mark and moves to
 * the new start offset. The segment's memory goes with its last reference.
 *
 * Crash safety: the .log is unlinked before its indexes; recovery removes
 * index files without a .log, and a segment whose unlink was lost is simply
 * deleted again by the next pass. Nothing here needs an fsync.
 */
#include "stream/streamInt.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"

#include <inttypes.h>
#include <stdlib.h>
#include <unistd.h>

static void unlink_seg(const stream__part *p, uint64_t base)
{
    char path[4096];
    static const char *const ext[] = {".log", ".idx", ".tix"};
    for (int i = 0; i < 3; i++) {
        stream__seg_path(path, sizeof(path), p->dir, base, ext[i]);
        unlink(path);
    }
}

static void retain_part(stream_store *st, stream__part *p, const stream_opts *o, int64_t now_wall)
{
    if (p->werr)
        return; /* a failed partition is left as it is until reopened */
    int64_t cutoff = INT64_MIN;
    if (o->retention_ms > 0 && now_wall > INT64_MIN + o->retention_ms * WEIR_NS_PER_MS)
        cutoff = now_wall - o->retention_ms * WEIR_NS_PER_MS;
    for (;;) {
        uv_mutex_lock(&p->seg_mu);
        stream__seg *g = p->segs[0];
        uint64_t total = 0;
        for (size_t i = 0; i < p->nsegs; i++)
            total += p->segs[i]->wsize;
        bool by_time = o->retention_ms > 0 && g->wmax < cutoff;
        bool by_size = o->retention_bytes > 0 && total > o->retention_bytes;
        if (p->nsegs == 1) {
            uv_mutex_unlock(&p->seg_mu);
            if (!by_time || g->wsize == 0)
                return;
            int rc = stream__roll(p);
            if (rc) {
                p->werr = rc;
                uv_mutex_lock(&st->mu);
                p->failed = rc;
                uv_mutex_unlock(&st->mu);
                return;
            }
            stream__publish(p);
            continue;
        }
        if (!by_time && !by_size) {
            uv_mutex_unlock(&p->seg_mu);
            return;
        }
        memmove(p->segs, p->segs + 1, (p->nsegs - 1) * sizeof(*p->segs));
        p->nsegs--;
        atomic_store(&p->start, p->segs[0]->base);
        atomic_store(&g->deleted, true);
        uv_mutex_unlock(&p->seg_mu);
        wlog_info("stream", "segment_deleted",
                  "stream=%s partition=%u base=%" PRIu64 " end=%" PRIu64 " bytes=%" PRIu64
                  " reason=%s",
                  p->s->name, p->id, g->base, g->wend, g->wsize, by_time ? "time" : "size");
        unlink_seg(p, g->base);
        stream__seg_unref(g);
    }
}

void stream__retention_pass(stream_store *st)
{
    uv_mutex_lock(&st->mu);
    size_t n = 0;
    for (stream *s = st->streams; s; s = s->next)
        n++;
    stream **v = n ? malloc(n * sizeof(*v)) : NULL;
    n = 0;
    for (stream *s = v ? st->streams : NULL; s; s = s->next)
        if (!s->deleting)
            v[n++] = s;
    uv_mutex_unlock(&st->mu);
    /* The streams stay valid: only this thread ever frees one (delete). */
    int64_t now_wall = weir_wall_ns();
    for (size_t i = 0; i < n; i++) {
        stream *s = v[i];
        const stream_opts *o = &s->wopts;
        if (!o->retention_ms && !o->retention_bytes)
            continue;
        for (uint32_t k = 0; k < s->nparts; k++)
            retain_part(st, &s->parts[k], o, now_wall);
    }
    free(v);
}
