/* writer.c -- the writer thread: every write(2), fsync(2), segment roll and
 * retention deletion of a store happens here, never on the event loop.
 *
 * One cycle:
 *   1. wait until kicked (the loop's prepare/check handles after appends, a
 *      full partition, offline appends), asked (flush, retention, delete,
 *      stop) or a deadline passes (an INTERVAL sync, the retention period);
 *   2. run delete requests;
 *   3. take every pending batch of every partition (group commit: all that
 *      accumulated since the last cycle) -- but only when kicked, so a
 *      timer wake-up never splits one loop iteration's appends;
 *   4. per partition: seal each batch (commit time, CRC), roll the segment
 *      when it is full or old, write the batches with as few pwritev calls
 *      as possible, append their index entries;
 *      NONE: publish to readers and acknowledge now;
 *      INTERVAL: publish now, acknowledge after the next fsync;
 *      ALWAYS: publish and acknowledge after the fsync of step 5;
 *   5. fdatasync each partition whose policy asks for it now (ALWAYS; due
 *      INTERVAL; every one on flush and stop);
 *   6. retention when due; hand completions to the loop (uv_async) or, in
 *      offline mode, run them here.
 *
 * Failure: a failed write or fsync marks the partition failed (see
 * store.h): its unwritten batches and those not covered by a successful
 * fsync are completed with WEIR_EIO, later appends fail, and nothing more
 * is written to it until the store is reopened and recovery decides what
 * the disk holds. A torn write is never published: readers only see bytes
 * below the published size.
 */
#include "stream/streamInt.h"

#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#define RUN_MAX 64 /* batches per pwritev */

/* ---- I/O with fault injection ------------------------------------------- */

static int io_fsync(stream_store *st, int fd)
{
    int e;
    if (stream__fault(st, STREAM__FAULT_SYNC, &e)) {
        errno = e;
        return -1;
    }
    return fdatasync(fd);
}

/* Writes all iov bytes at off; 0 or -1 with errno. An injected fault
 * writes half of the first buffer first, like a torn write. */
static int io_pwritev_all(stream_store *st, int fd, struct iovec *iov, int n, uint64_t off)
{
    int e;
    if (stream__fault(st, STREAM__FAULT_WRITE, &e)) {
        if (n > 0 && pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, (off_t)off) < 0)
            return -1;
        errno = e;
        return -1;
    }
    while (n > 0) {
        ssize_t w = pwritev(fd, iov, n > IOV_MAX ? IOV_MAX : n, (off_t)off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        off += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

/* ---- Segment files -------------------------------------------------------- */

void stream__part_close_files(stream__part *p)
{
    if (p->log_fd >= 0)
        close(p->log_fd);
    if (p->idx_fd >= 0)
        close(p->idx_fd);
    if (p->tix_fd >= 0)
        close(p->tix_fd);
    p->log_fd = p->idx_fd = p->tix_fd = -1;
}

static stream__seg *active(stream__part *p)
{
    return p->segs[p->nsegs - 1];
}

/* Opens (creating when new) the active segment's three files. A created
 * segment's directory entry is fsynced before any record goes in, so that
 * an acknowledged record's file cannot vanish in a power cut. */
static int open_active(stream__part *p, bool exclusive)
{
    char path[4096];
    stream__seg *g = active(p);
    bool create = !g->on_disk;
    int fl = O_WRONLY | O_CREAT | O_CLOEXEC | (create && exclusive ? O_EXCL : 0);
    stream__seg_path(path, sizeof(path), p->dir, g->base, ".log");
    p->log_fd = open(path, fl, 0640);
    stream__seg_path(path, sizeof(path), p->dir, g->base, ".idx");
    p->idx_fd =
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (create ? O_TRUNC : 0), 0640);
    stream__seg_path(path, sizeof(path), p->dir, g->base, ".tix");
    p->tix_fd =
        open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (create ? O_TRUNC : 0), 0640);
    if (p->log_fd < 0 || p->idx_fd < 0 || p->tix_fd < 0)
        goto fail;
    if (create && fsync_dir(p->dir))
        goto fail;
    g->on_disk = true;
    return WEIR_OK;
fail:
    wlog_error("stream", "open_segment_failed", "dir=%s base=%" PRIu64 " errno=%d", p->dir, g->base,
               errno);
    stream__part_close_files(p);
    return WEIR_EIO;
}

int stream__roll(stream__part *p)
{
    stream_store *st = p->s->st;
    stream__seg *old = active(p);
    int rc;
    if (p->log_fd < 0 && old->on_disk && (rc = open_active(p, false)))
        return rc;
    if (p->log_fd >= 0) {
        /* The old segment must be complete on disk before the new one
         * exists, so that only the last segment can have a torn tail. */
        if (io_fsync(st, p->log_fd) || fdatasync(p->idx_fd) || fdatasync(p->tix_fd)) {
            wlog_error("stream", "roll_sync_failed", "dir=%s errno=%d", p->dir, errno);
            return WEIR_EIO;
        }
        atomic_store(&p->synced_end, atomic_load(&p->written_end));
    }
    stream__part_close_files(p);
    stream__seg *g = stream__alloc(st, sizeof(*g));
    if (!g)
        return WEIR_ENOMEM;
    memset(g, 0, sizeof(*g));
    g->base = old->wend;
    atomic_init(&g->refs, 1);
    atomic_init(&g->deleted, false);
    g->end = g->wend = g->base;
    g->min_ts = g->wmin = INT64_MAX;
    g->max_ts = g->wmax = INT64_MIN;

    uv_mutex_lock(&p->seg_mu);
    if (p->nsegs == p->capsegs) {
        size_t nc = p->capsegs * 2;
        stream__seg **nv = stream__realloc(st, p->segs, nc * sizeof(*nv));
        if (!nv) {
            uv_mutex_unlock(&p->seg_mu);
            free(g);
            return WEIR_ENOMEM;
        }
        p->segs = nv;
        p->capsegs = nc;
    }
    p->segs[p->nsegs++] = g;
    uv_mutex_unlock(&p->seg_mu);
    old->wsealed = true;
    p->ihave = false;
    p->ilast = 0;
    p->ipmax = INT64_MIN;
    p->ipmin = INT64_MAX;
    p->vis_dirty = true;
    return open_active(p, true);
}

void stream__publish(stream__part *p)
{
    uv_mutex_lock(&p->seg_mu);
    for (size_t i = p->nsegs; i-- > 0;) {
        stream__seg *g = p->segs[i];
        bool same = g->size == g->wsize && g->sealed == g->wsealed;
        g->size = g->wsize;
        g->end = g->wend;
        g->min_ts = g->wmin;
        g->max_ts = g->wmax;
        g->sealed = g->wsealed;
        if (same && g->wsealed)
            break;
    }
    atomic_store(&p->visible_end, active(p)->wend);
    uv_mutex_unlock(&p->seg_mu);
    p->vis_dirty = false;
}

/* ---- Writing batches ------------------------------------------------------- */

/* A run of batches written with one pwritev to the active segment. */
typedef struct run {
    struct iovec iov[RUN_MAX];
    stream__batch *b[RUN_MAX];
    int n;
    uint64_t bytes;
} run;

/* Writes the run, then accounts each batch: segment state, index entries,
 * counters. */
/* The bytes of a batch as they go to disk: sealed when the store is
 * encrypted. */
static const uint8_t *disk_bytes(const stream__batch *b)
{
    return b->enc ? b->enc : b->data;
}

static int flush_run(stream_store *st, stream__part *p, run *r)
{
    if (r->n == 0)
        return WEIR_OK;
    stream__seg *g = active(p);
    if (io_pwritev_all(st, p->log_fd, r->iov, r->n, g->wsize)) {
        wlog_error("stream", "write_failed", "dir=%s base=%" PRIu64 " pos=%" PRIu64 " errno=%d",
                   p->dir, g->base, g->wsize, errno);
        return WEIR_EIO;
    }
    atomic_fetch_add(&p->s->n_writes, 1);
    uint8_t idx[RUN_MAX * STREAM__IDX_ENTRY], tix[RUN_MAX * STREAM__TIX_ENTRY];
    size_t ni = 0;
    for (int i = 0; i < r->n; i++) {
        stream__batch *b = r->b[i];
        uint64_t pos = g->wsize;
        if (stream__index_due(p->ihave, p->ilast, pos)) {
            stream__ient e = {.rel = (uint32_t)(b->base - g->base),
                              .pos = (uint32_t)pos,
                              .pmax = p->ipmax,
                              .pmin = p->ipmin};
            stream__ient_encode(&e, idx + ni * STREAM__IDX_ENTRY, tix + ni * STREAM__TIX_ENTRY);
            ni++;
            p->ihave = true;
            p->ilast = pos;
        }
        p->ipmax = b->max_ts > p->ipmax ? b->max_ts : p->ipmax;
        p->ipmin = b->min_ts < p->ipmin ? b->min_ts : p->ipmin;
        if (g->wsize == 0)
            g->first_commit = (int64_t)stream__get64(disk_bytes(b) + 32);
        g->wsize += b->dlen;
        g->wend = b->base + b->count;
        g->wmax = p->ipmax;
        g->wmin = p->ipmin;
    }
    atomic_fetch_add(&p->s->n_batches, (uint64_t)r->n);
    atomic_store(&p->written_end, g->wend);
    p->vis_dirty = true;
    r->n = 0;
    r->bytes = 0;
    if (ni && (write_all(p->idx_fd, idx, ni * STREAM__IDX_ENTRY) ||
               write_all(p->tix_fd, tix, ni * STREAM__TIX_ENTRY))) {
        wlog_error("stream", "index_write_failed", "dir=%s errno=%d", p->dir, errno);
        return WEIR_EIO;
    }
    return WEIR_OK;
}

static bool need_roll(const stream__part *p, const stream_opts *o, const run *r,
                      const stream__batch *b, int64_t now_wall)
{
    const stream__seg *g = p->segs[p->nsegs - 1];
    uint64_t size = g->wsize + r->bytes;
    if (size == 0)
        return false;
    if (size + b->dlen > o->segment_bytes)
        return true;
    /* Written as a comparison against a bound that cannot overflow: the
     * commit time comes from disk and may be anything. */
    if (o->segment_ms > 0 && g->first_commit &&
        g->first_commit <= now_wall - o->segment_ms * WEIR_NS_PER_MS)
        return true;
    return b->base + b->count - g->base > STREAM__SEG_MAX_RECS;
}

/* Writes the batches of list in order; returns how many were written and
 * sets p->werr on failure. */
static size_t write_batches(stream_store *st, stream__part *p, stream__batch *list,
                            int64_t now_wall)
{
    const stream_opts *o = &p->s->wopts;
    run r;
    r.n = 0;
    r.bytes = 0;
    size_t written = 0, inrun = 0;
    int rc = WEIR_OK;
    if (p->log_fd < 0 && (rc = open_active(p, true)))
        goto fail;
    for (stream__batch *b = list; b; b = b->next) {
        stream__bhdr h = {.length = (uint32_t)b->len,
                          .count = b->count,
                          .base = b->base,
                          .commit = now_wall,
                          .min_ts = b->min_ts,
                          .max_ts = b->max_ts};
        if (st->key) {
            /* Sealed into a second buffer kept with the batch (the plain
             * one is recycled by the appender). */
            size_t need = b->len + SECRET_OVERHEAD;
            if (need > b->enc_cap) {
                uint8_t *nb = realloc(b->enc, need);
                if (!nb) {
                    rc = WEIR_ENOMEM;
                    goto fail;
                }
                b->enc = nb;
                b->enc_cap = need;
            }
            stream__batch_seal_encrypted(st->key, b->data, &h, b->enc);
            b->dlen = need;
        } else {
            stream__batch_seal(b->data, &h);
            b->dlen = b->len;
        }
        bool roll = need_roll(p, o, &r, b, now_wall);
        if (roll || r.n == RUN_MAX) {
            if ((rc = flush_run(st, p, &r)))
                goto fail;
            written += inrun;
            inrun = 0;
            if (roll && (rc = stream__roll(p)))
                goto fail;
        }
        r.iov[r.n].iov_base = (void *)disk_bytes(b);
        r.iov[r.n].iov_len = b->dlen;
        r.b[r.n++] = b;
        r.bytes += b->dlen;
        inrun++;
    }
    if ((rc = flush_run(st, p, &r)))
        goto fail;
    return written + inrun;
fail:
    p->werr = rc;
    /* Put back what may have been torn, so the file stays a valid log; if
     * that fails too, recovery will cut it at the next open. */
    if (p->log_fd >= 0) {
        int trc = ftruncate(p->log_fd, (off_t)active(p)->wsize);
        (void)trc;
    }
    return written;
}

/* Moves the ack chunks of the first n batches of the list b, with their
 * status set, onto the chain (*head, *tail). */
static void collect_acks(stream__batch *b, size_t n, int status, stream__acks **head,
                         stream__acks **tail)
{
    for (size_t i = 0; i < n && b; i++, b = b->next) {
        stream__acks *a = b->acks;
        b->acks = NULL;
        if (!a)
            continue;
        a->status = status;
        a->next = NULL;
        if (*tail)
            (*tail)->next = a;
        else
            *head = a;
        *tail = a;
    }
}

static void mark_unsynced(stream_store *st, stream__part *p)
{
    if (p->unsynced)
        return;
    p->unsynced = true;
    p->unsynced_since = weir_mono_ns();
    p->unsync_next = st->unsync;
    st->unsync = p;
}

static void write_part(stream_store *st, stream__part *p, int64_t now_wall)
{
    stream *s = p->s;
    stream__batch *list = p->wq;
    p->wq = NULL;
    size_t total = 0;
    uint64_t bytes = 0;
    for (stream__batch *b = list; b; b = b->next) {
        total++;
        bytes += b->len - STREAM__BATCH_HDR;
    }
    size_t ok = p->werr ? 0 : write_batches(st, p, list, now_wall);

    stream__acks *done_h = NULL, *done_t = NULL, *wait_h = NULL, *wait_t = NULL;
    uint64_t done_n = 0;
    stream__batch *rest = list;
    for (size_t i = 0; i < ok; i++)
        rest = rest->next;
    if (ok > 0) {
        if (s->wopts.sync == STREAM_SYNC_NONE) {
            collect_acks(list, ok, WEIR_OK, &done_h, &done_t);
            done_n += ok;
        } else {
            collect_acks(list, ok, WEIR_OK, &wait_h, &wait_t);
            if (wait_h) {
                if (p->await_tail)
                    p->await_tail->next = wait_h;
                else
                    p->await = wait_h;
                p->await_tail = wait_t;
            }
            p->await_batches += (uint32_t)ok;
        }
        mark_unsynced(st, p);
        if (s->wopts.sync != STREAM_SYNC_ALWAYS)
            stream__publish(p);
    }
    if (total > ok) {
        collect_acks(rest, total - ok, p->werr, &done_h, &done_t);
        done_n += total - ok;
    }

    uv_mutex_lock(&st->mu);
    s->pending_bytes -= bytes;
    if (p->werr)
        p->failed = p->werr;
    stream__batch *b = list;
    while (b) {
        stream__batch *next = b->next;
        stream__batch_release(st, b);
        b = next;
    }
    if (done_h || done_n)
        stream__complete(st, done_h, done_n);
    if (ok > 0 && s->wopts.sync != STREAM_SYNC_ALWAYS)
        stream__notify(st, p);
    uv_mutex_unlock(&st->mu);
}

/* ---- Syncing ---------------------------------------------------------------- */

static int64_t sync_deadline(const stream__part *p)
{
    const stream_opts *o = &p->s->wopts;
    if (o->sync == STREAM_SYNC_ALWAYS)
        return 0;
    if (o->sync == STREAM_SYNC_INTERVAL)
        return p->unsynced_since + (int64_t)o->sync_interval_ms * WEIR_NS_PER_MS;
    /* NONE: only on flush and stop -- unless acks still wait from before
     * the stream was reopened with NONE. */
    return p->await ? 0 : INT64_MAX;
}

static void sync_phase(stream_store *st, bool all)
{
    int64_t now = weir_mono_ns();
    stream__part **pp = &st->unsync;
    while (*pp) {
        stream__part *p = *pp;
        if (!all && sync_deadline(p) > now) {
            pp = &p->unsync_next;
            continue;
        }
        *pp = p->unsync_next;
        p->unsynced = false;
        /* After a failed write or fsync nothing more is acknowledged: a
         * later fsync can succeed although the kernel dropped the pages
         * whose writeback failed. */
        int rc = p->werr;
        if (!rc && p->log_fd >= 0) {
            if (io_fsync(st, p->log_fd)) {
                wlog_error("stream", "fsync_failed", "dir=%s errno=%d", p->dir, errno);
                rc = WEIR_EIO;
            } else {
                atomic_fetch_add(&p->s->n_fsyncs, 1);
                atomic_store(&p->synced_end, atomic_load(&p->written_end));
                if (all) {
                    /* A clean flush leaves the indexes durable too, so the
                     * next open has nothing to rebuild. */
                    (void)fdatasync(p->idx_fd);
                    (void)fdatasync(p->tix_fd);
                }
            }
        }
        stream__acks *a = p->await;
        uint32_t nb = p->await_batches;
        p->await = p->await_tail = NULL;
        p->await_batches = 0;
        for (stream__acks *x = a; x; x = x->next)
            x->status = rc;
        bool publish = rc == WEIR_OK && p->vis_dirty;
        if (publish)
            stream__publish(p);
        if (rc)
            p->werr = rc;
        uv_mutex_lock(&st->mu);
        if (rc)
            p->failed = rc;
        if (a || nb)
            stream__complete(st, a, nb);
        if (publish)
            stream__notify(st, p);
        uv_mutex_unlock(&st->mu);
    }
}

/* ---- Delete requests ----------------------------------------------------- */

static void unlink_dirty(stream__part **head, stream__part *p)
{
    for (stream__part **pp = head; *pp; pp = &(*pp)->dirty_next)
        if (*pp == p) {
            *pp = p->dirty_next;
            return;
        }
}

static void unlink_notify(stream__part **head, stream__part *p)
{
    for (stream__part **pp = head; *pp; pp = &(*pp)->notify_next)
        if (*pp == p) {
            *pp = p->notify_next;
            return;
        }
}

static void unlink_unsync(stream__part **head, stream__part *p)
{
    for (stream__part **pp = head; *pp; pp = &(*pp)->unsync_next)
        if (*pp == p) {
            *pp = p->unsync_next;
            return;
        }
}

static void run_delete(stream_store *st, stream__op *op)
{
    stream *s = op->s;
    stream__acks *h = NULL, *t = NULL;
    uint64_t nb = 0;
    stream__batch *drop = NULL;

    uv_mutex_lock(&st->mu);
    for (uint32_t i = 0; i < s->nparts; i++) {
        stream__part *p = &s->parts[i];
        if (p->dirty)
            unlink_dirty(&st->dirty, p);
        if (p->notify)
            unlink_notify(&st->notify, p);
        p->dirty = p->notify = false;
        if (p->pend_tail) {
            p->pend_tail->next = drop;
            drop = p->pend_head;
        }
        p->pend_head = p->pend_tail = NULL;
    }
    uv_mutex_unlock(&st->mu);

    for (stream__batch *b = drop; b; b = b->next) {
        collect_acks(b, 1, WEIR_ENOTFOUND, &h, &t);
        nb++;
    }
    for (uint32_t i = 0; i < s->nparts; i++) {
        stream__part *p = &s->parts[i];
        if (p->unsynced)
            unlink_unsync(&st->unsync, p);
        p->unsynced = false;
        for (stream__acks *a = p->await; a; a = a->next)
            a->status = WEIR_ENOTFOUND;
        if (p->await) {
            if (t)
                t->next = p->await;
            else
                h = p->await;
            for (t = p->await; t->next; t = t->next)
                ;
        }
        nb += p->await_batches;
        p->await = p->await_tail = NULL;
        p->await_batches = 0;
        stream__part_close_files(p);
    }

    /* Rename first: a crash during the removal leaves "#deleting.<name>",
     * which the next open finishes off, never half a stream. */
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s/" STREAM__DELETING "%s", st->dir, s->name);
    stream__remove_tree(tmp);
    int rc = WEIR_OK;
    if (rename(s->dir, tmp) || fsync_dir(st->dir))
        rc = WEIR_EIO;
    else
        stream__remove_tree(tmp);
    if (rc)
        wlog_error("stream", "delete_failed", "stream=%s errno=%d", s->name, errno);

    uv_mutex_lock(&st->mu);
    while (drop) {
        stream__batch *next = drop->next;
        stream__batch_release(st, drop);
        drop = next;
    }
    if (h || nb)
        stream__complete(st, h, nb);
    op->result = rc;
    op->done = true;
    uv_cond_broadcast(&st->done_cv);
    uv_mutex_unlock(&st->mu);
}

/* ---- The thread ----------------------------------------------------------- */

static int64_t next_deadline(stream_store *st)
{
    int64_t dl = st->next_retention;
    for (stream__part *p = st->unsync; p; p = p->unsync_next) {
        int64_t d = sync_deadline(p);
        dl = d < dl ? d : dl;
    }
    return dl;
}

static bool has_request(const stream_store *st)
{
    return st->kick || st->ops || st->stop || st->flush_req != st->flush_done ||
           st->ret_req != st->ret_done;
}

void stream__writer_main(void *arg)
{
    stream_store *st = arg;
    st->next_retention = weir_mono_ns() + STREAM__RETENTION_NS;
    uv_mutex_lock(&st->mu);
    for (;;) {
        while (!has_request(st)) {
            int64_t now = weir_mono_ns(), dl = next_deadline(st);
            if (dl <= now)
                break;
            uv_cond_timedwait(&st->cv, &st->mu, (uint64_t)(dl - now));
        }
        if (st->ops) {
            stream__op *ops = st->ops;
            st->ops = NULL;
            uv_mutex_unlock(&st->mu);
            while (ops) {
                stream__op *next = ops->next;
                run_delete(st, ops); /* ops is gone once done is set */
                ops = next;
            }
            uv_mutex_lock(&st->mu);
            continue;
        }
        bool stopping = st->stop;
        uint64_t flush_to = st->flush_req, ret_to = st->ret_req;
        bool all = stopping || flush_to != st->flush_done;
        stream__part *work = NULL, **wt = &work;
        if (st->kick || all) {
            st->kick = false;
            for (stream__part *p = st->dirty; p; p = p->dirty_next) {
                p->wq = p->pend_head;
                p->pend_head = p->pend_tail = NULL;
                p->pend_bytes = 0;
                p->dirty = false;
                *wt = p;
                wt = &p->work_next;
            }
            *wt = NULL;
            st->dirty = NULL;
        }
        for (stream *s = st->streams; s; s = s->next)
            s->wopts = s->opts;
        uv_mutex_unlock(&st->mu);

        int64_t now_wall = weir_wall_ns();
        for (stream__part *p = work; p; p = p->work_next)
            write_part(st, p, now_wall);
        sync_phase(st, all);
        int64_t now = weir_mono_ns();
        bool ret = ret_to != st->ret_done;
        if (ret || now >= st->next_retention) {
            stream__retention_pass(st);
            st->next_retention = now + STREAM__RETENTION_NS;
        }
        if (!st->loop)
            stream__deliver(st);

        uv_mutex_lock(&st->mu);
        if (st->loop && (st->compl_head || st->notify || st->done_batches))
            stream__wake_loop(st);
        if (flush_to != st->flush_done || ret) {
            st->flush_done = flush_to;
            if (ret)
                st->ret_done = ret_to;
            uv_cond_broadcast(&st->done_cv);
        }
        if (stopping && !st->dirty && !st->ops)
            break;
    }
    uv_mutex_unlock(&st->mu);
}
