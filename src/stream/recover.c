/* recover.c -- bringing a partition back from disk when its stream is
 * opened: the recovery rule of segment.c, steps 1 to 5.
 *
 * Runs on the thread that calls stream_open, before the stream is visible
 * to the writer or to readers, so it owns the partition outright. The cost
 * is bounded by the tails: per segment it reads the index files, one batch
 * at the last index entry and the bytes after it (normally less than one
 * index interval); for the last segment it also reads one batch header per
 * index entry (at most 64 Ki small preads for a 1 GiB segment).
 */
#include "stream/streamInt.h"

#include "base/err.h"
#include "base/wlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct u64vec {
    uint64_t *v;
    size_t n, cap;
} u64vec;

static int u64vec_push(u64vec *a, uint64_t x)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 16;
        uint64_t *nv = realloc(a->v, nc * sizeof(*nv));
        if (!nv)
            return WEIR_ENOMEM;
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = x;
    return WEIR_OK;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static bool u64vec_has(const u64vec *a, uint64_t x)
{
    return a->n > 0 && bsearch(&x, a->v, a->n, sizeof(x), cmp_u64) != NULL;
}

/* Reads and decodes the header at pos; false when there is none. */
static bool read_hdr(int fd, uint64_t pos, uint64_t base_expect, stream__bhdr *h)
{
    uint8_t b[STREAM__BATCH_HDR];
    ssize_t r;
    do
        r = pread(fd, b, sizeof(b), (off_t)pos);
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)sizeof(b) || stream__bhdr_decode(b, h, NULL))
        return false;
    return base_expect == UINT64_MAX || h->base == base_expect;
}

/* Is the batch at entry e valid as a whole (CRC included)? */
static int entry_batch_ok(int fd, uint64_t limit, uint64_t base, const stream__ient *e,
                          stream__scan *sc, bool *ok)
{
    stream__scan_reset(sc, fd, e->pos, base + e->rel);
    sc->limit = limit;
    int rc = stream__scan_next(sc, 0);
    *ok = rc == WEIR_OK;
    return rc == WEIR_EIO || rc == WEIR_ENOMEM || rc == WEIR_EAUTH ? rc : WEIR_OK;
}

static int quarantine(const char *dir, uint64_t base)
{
    char from[4096], to[4200];
    stream__seg_path(from, sizeof(from), dir, base, ".log");
    snprintf(to, sizeof(to), "%s.quarantine", from);
    if (rename(from, to))
        return WEIR_EIO;
    stream__seg_path(from, sizeof(from), dir, base, ".idx");
    unlink(from);
    stream__seg_path(from, sizeof(from), dir, base, ".tix");
    unlink(from);
    wlog_error("stream", "segment_quarantined", "dir=%s base=%" PRIu64 " file=%s", dir, base, to);
    return WEIR_OK;
}

static int add_seg(stream__part *p, stream__seg *g)
{
    if (p->nsegs == p->capsegs) {
        size_t nc = p->capsegs ? p->capsegs * 2 : 8;
        stream__seg **nv = realloc(p->segs, nc * sizeof(*nv));
        if (!nv)
            return WEIR_ENOMEM;
        p->segs = nv;
        p->capsegs = nc;
    }
    p->segs[p->nsegs++] = g;
    return WEIR_OK;
}

/* Recovers one segment (steps 2, 3 and 5). *tail_cut tells that bytes had
 * to be truncated. */
static int recover_seg(stream__part *p, uint64_t base, bool last, stream__recov *rs,
                       stream__seg **out, bool *tail_cut)
{
    char path[4096];
    stream__ivec iv = {0};
    stream__scan sc;
    stream__seg *g = NULL;
    int flags = 0, rc;
    size_t added = 0;
    *tail_cut = false;

    stream__seg_path(path, sizeof(path), p->dir, base, ".log");
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return WEIR_EIO;
    stream__scan_init(&sc, fd, 0, 0, base);
    sc.key = p->s->st->key;
    struct stat sb;
    rc = WEIR_EIO;
    if (fstat(fd, &sb) < 0)
        goto cleanup;
    uint64_t size = (uint64_t)sb.st_size;
    uint64_t limit = size > UINT32_MAX ? UINT32_MAX : size;
    sc.limit = limit;

    rc = stream__index_load(p->dir, base, limit, &iv, &flags);
    if (rc)
        goto cleanup;
    if (last) {
        /* The last segment's index was written without fsync: every entry
         * must land on a header with the right base. */
        for (size_t i = 0; i < iv.n; i++) {
            stream__bhdr h;
            if (!read_hdr(fd, iv.v[i].pos, base + iv.v[i].rel, &h)) {
                iv.n = i;
                flags |= STREAM__IX_DAMAGED;
                break;
            }
        }
    }
    while (iv.n > 0) {
        bool ok;
        rc = entry_batch_ok(fd, limit, base, &iv.v[iv.n - 1], &sc, &ok);
        if (rc)
            goto cleanup;
        if (ok)
            break;
        iv.n--;
        flags |= STREAM__IX_DAMAGED;
    }

    /* Scan from the restart point to the end of the file. */
    bool ihave = iv.n > 0;
    uint64_t ilast = ihave ? iv.v[iv.n - 1].pos : 0;
    int64_t pmax = ihave ? iv.v[iv.n - 1].pmax : INT64_MIN;
    int64_t pmin = ihave ? iv.v[iv.n - 1].pmin : INT64_MAX;
    uint64_t end = ihave ? base + iv.v[iv.n - 1].rel : base;
    stream__scan_reset(&sc, fd, ilast, end);
    sc.limit = limit;
    const char *why = NULL;
    for (;;) {
        rc = stream__scan_next(&sc, 0);
        if (rc == WEIR_EAGAIN)
            break;
        if (rc == WEIR_OK && sc.h.base + sc.h.count - base > STREAM__SEG_MAX_RECS) {
            rc = WEIR_ECORRUPT;
            sc.why = "too many records for one segment";
        }
        if (rc == WEIR_ECORRUPT) {
            why = sc.why;
            break;
        }
        if (rc == WEIR_EAUTH)
            wlog_error("stream", "decrypt_failed",
                       "dir=%s base=%" PRIu64 " pos=%" PRIu64 " error=\"%s\"", p->dir, base,
                       sc.pos, sc.why);
        if (rc)
            goto cleanup;
        if (stream__index_due(ihave, ilast, sc.bpos)) {
            stream__ient e = {.rel = (uint32_t)(sc.h.base - base),
                              .pos = (uint32_t)sc.bpos,
                              .pmax = pmax,
                              .pmin = pmin};
            rc = stream__ivec_push(&iv, &e);
            if (rc)
                goto cleanup;
            ihave = true;
            ilast = sc.bpos;
            added++;
        }
        pmax = sc.h.max_ts > pmax ? sc.h.max_ts : pmax;
        pmin = sc.h.min_ts < pmin ? sc.h.min_ts : pmin;
        end = sc.h.base + sc.h.count;
    }
    uint64_t valid = sc.pos;
    if (valid < size) {
        wlog_warn("stream", "tail_truncated",
                  "dir=%s base=%" PRIu64 " at=%" PRIu64 " bytes=%" PRIu64 " reason=\"%s\"", p->dir,
                  base, valid, size - valid, why ? why : "file too large");
        rc = WEIR_EIO;
        if (ftruncate(fd, (off_t)valid) || fsync(fd))
            goto cleanup;
        rs->truncated_bytes += size - valid;
        *tail_cut = true;
    }
    if (flags || added) {
        rc = stream__index_write(p->dir, base, &iv);
        if (rc)
            goto cleanup;
        rs->rebuilt_indexes++;
    }

    rc = WEIR_ENOMEM;
    g = calloc(1, sizeof(*g));
    if (!g)
        goto cleanup;
    g->base = base;
    atomic_init(&g->refs, 1);
    atomic_init(&g->deleted, false);
    g->size = g->wsize = valid;
    g->end = g->wend = end;
    g->min_ts = g->wmin = pmin;
    g->max_ts = g->wmax = pmax;
    g->sealed = g->wsealed = !last;
    g->on_disk = true;
    stream__bhdr h0;
    if (valid > 0 && read_hdr(fd, 0, base, &h0))
        g->first_commit = h0.commit;
    if (last) {
        p->ihave = ihave;
        p->ilast = ilast;
        p->ipmax = pmax;
        p->ipmin = pmin;
    }
    rs->segments++;
    rs->records += end - base;
    rs->bytes += valid;
    *out = g;
    g = NULL;
    rc = WEIR_OK;
cleanup:
    free(g);
    stream__scan_free(&sc);
    stream__ivec_free(&iv);
    close(fd);
    return rc;
}

int stream__recover_part(stream__part *p, stream__recov *rs)
{
    u64vec logs = {0}, idxs = {0};
    char path[4096];
    int rc = WEIR_OK;
    DIR *d = opendir(p->dir);
    if (!d && errno == ENOENT) {
        if (mkdir(p->dir, 0750) && errno != EEXIST)
            return WEIR_EIO;
        d = opendir(p->dir);
    }
    if (!d)
        return WEIR_EIO;

    /* Step 1: sort out the directory. */
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint64_t base;
        int kind = stream__seg_name_kind(de->d_name, &base);
        if (kind == STREAM__F_LOG)
            rc = u64vec_push(&logs, base);
        else if (kind == STREAM__F_IDX || kind == STREAM__F_TIX)
            rc = u64vec_push(&idxs, base);
        else if (kind == STREAM__F_TMP) {
            snprintf(path, sizeof(path), "%s/%s", p->dir, de->d_name);
            unlink(path);
        }
        if (rc)
            goto cleanup;
    }
    if (logs.n > 1)
        qsort(logs.v, logs.n, sizeof(uint64_t), cmp_u64);
    for (size_t i = 0; i < idxs.n; i++) {
        if (u64vec_has(&logs, idxs.v[i]))
            continue;
        stream__seg_path(path, sizeof(path), p->dir, idxs.v[i], ".idx");
        unlink(path);
        stream__seg_path(path, sizeof(path), p->dir, idxs.v[i], ".tix");
        unlink(path);
    }

    /* Steps 2-5, segment by segment. */
    uint64_t prev_end = 0;
    for (size_t i = 0; i < logs.n; i++) {
        if (i > 0 && logs.v[i] != prev_end) {
            wlog_error("stream", "offset_gap",
                       "dir=%s expected_base=%" PRIu64 " found_base=%" PRIu64, p->dir, prev_end,
                       logs.v[i]);
            for (size_t j = i; j < logs.n; j++) {
                rc = quarantine(p->dir, logs.v[j]);
                if (rc)
                    goto cleanup;
                rs->quarantined++;
            }
            break;
        }
        stream__seg *g;
        bool cut;
        rc = recover_seg(p, logs.v[i], i + 1 == logs.n, rs, &g, &cut);
        if (rc)
            goto cleanup;
        rc = add_seg(p, g);
        if (rc) {
            free(g);
            goto cleanup;
        }
        prev_end = g->end;
        if (cut && i + 1 < logs.n) {
            /* A sealed segment lost its tail: the later ones no longer
             * follow it. The segment becomes the active one. */
            for (size_t j = i + 1; j < logs.n; j++) {
                rc = quarantine(p->dir, logs.v[j]);
                if (rc)
                    goto cleanup;
                rs->quarantined++;
            }
            break;
        }
    }
    stream__seg *act = p->nsegs ? p->segs[p->nsegs - 1] : NULL;
    if (act && act->sealed) {
        /* The last segment is active again (quarantine cut the rest). Its
         * writer index state comes from a fresh look at the index. */
        act->sealed = act->wsealed = false;
        stream__ivec iv = {0};
        int fl;
        rc = stream__index_load(p->dir, act->base, act->size, &iv, &fl);
        if (rc)
            goto cleanup;
        p->ihave = iv.n > 0;
        p->ilast = iv.n ? iv.v[iv.n - 1].pos : 0;
        p->ipmax = act->max_ts;
        p->ipmin = act->min_ts;
        stream__ivec_free(&iv);
    }
    if (!act) {
        rc = WEIR_ENOMEM;
        act = calloc(1, sizeof(*act));
        if (!act)
            goto cleanup;
        atomic_init(&act->refs, 1);
        atomic_init(&act->deleted, false);
        act->min_ts = act->wmin = INT64_MAX;
        act->max_ts = act->wmax = INT64_MIN;
        rc = add_seg(p, act);
        if (rc) {
            free(act);
            goto cleanup;
        }
        p->ihave = false;
        p->ilast = 0;
        p->ipmax = INT64_MIN;
        p->ipmin = INT64_MAX;
    }
    p->next_offset = act->end;
    atomic_store(&p->visible_end, act->end);
    atomic_store(&p->start, p->segs[0]->base);
    atomic_store(&p->written_end, act->end);
    atomic_store(&p->synced_end, act->end);
    rc = WEIR_OK;
cleanup:
    closedir(d);
    free(logs.v);
    free(idxs.v);
    return rc;
}
