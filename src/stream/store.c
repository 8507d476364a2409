/* store.c -- the stream store: opening and closing, streams, the append
 * path, event-loop integration, callbacks, watches and metadata.
 *
 * The append path runs on the loop thread and only copies: records are
 * encoded straight into the partition's pending batch (a buffer that
 * already has room for the batch header), under st->mu, which the writer
 * holds only to take batches and to queue completions, never across I/O.
 * The writer is woken at the end of the loop iteration (prepare and check
 * handles), when a partition has STREAM__KICK_BYTES pending, or at once in
 * offline mode; see writer.c for what it does then.
 *
 * Completions travel as chunks of acks (one chunk per batch that has
 * callbacks, allocated at append time), so the writer never allocates to
 * report success or failure. The loop side drains them in stream__deliver.
 * The async handle is referenced only while batches are outstanding, so
 * uv_run(UV_RUN_DEFAULT) returns once every append has been acknowledged
 * and nothing else keeps the loop alive.
 */
#include "stream/streamInt.h"

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/wlog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

struct stream__loopres {
    uv_async_t async;
    uv_prepare_t prep;
    uv_check_t check;
    int open; /* handles not yet closed */
};

/* ---- Allocation and fault hooks ------------------------------------------- */

bool stream__fault(stream_store *st, int kind, int *err)
{
    int64_t n = atomic_load(&st->fault_after[kind]);
    while (n > 0) {
        if (atomic_compare_exchange_weak(&st->fault_after[kind], &n, n - 1)) {
            if (n != 1)
                return false;
            *err = atomic_load(&st->fault_errno[kind]);
            return true;
        }
    }
    return false;
}

void stream__fault_set(stream_store *st, int kind, int64_t nth, int err)
{
    atomic_store(&st->fault_errno[kind], err);
    atomic_store(&st->fault_after[kind], nth);
}

void *stream__alloc(stream_store *st, size_t n)
{
    int e;
    if (stream__fault(st, STREAM__FAULT_ALLOC, &e))
        return NULL;
    return malloc(n);
}

void *stream__realloc(stream_store *st, void *p, size_t n)
{
    int e;
    if (stream__fault(st, STREAM__FAULT_ALLOC, &e))
        return NULL;
    return realloc(p, n);
}

void stream__debug_ends(stream *s, uint32_t partition, uint64_t *written, uint64_t *synced)
{
    *written = atomic_load(&s->parts[partition].written_end);
    *synced = atomic_load(&s->parts[partition].synced_end);
}

/* ---- Small helpers --------------------------------------------------------- */

void stream__seg_unref(stream__seg *g)
{
    if (atomic_fetch_sub(&g->refs, 1) == 1)
        free(g);
}

void stream__acks_free(stream__acks *a)
{
    while (a) {
        stream__acks *next = a->next;
        free(a->v);
        free(a);
        a = next;
    }
}

/* Caller holds mu. */
void stream__batch_release(stream_store *st, stream__batch *b)
{
    stream__acks_free(b->acks);
    b->acks = NULL;
    if (st->nfree < 8 && b->cap <= STREAM__BATCH_HDR + STREAM__BATCH_TARGET) {
        b->next = st->free_batches;
        st->free_batches = b;
        st->nfree++;
        return;
    }
    free(b->enc);
    free(b->data);
    free(b);
}

static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

int stream__remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) < 0)
        return errno == ENOENT ? WEIR_OK : WEIR_EIO;
    return nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS) ? WEIR_EIO : WEIR_OK;
}

static int fsync_path(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return WEIR_EIO;
    int rc = fsync(fd) ? WEIR_EIO : WEIR_OK;
    close(fd);
    return rc;
}

/* ---- Options --------------------------------------------------------------- */

void stream_opts_default(stream_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->partitions = 1;
    o->sync = STREAM_SYNC_ALWAYS;
    o->sync_interval_ms = 100;
    o->segment_bytes = 64ull << 20;
    o->segment_ms = 3600LL * 1000;
    o->max_pending_bytes = 64ull << 20;
}

static int opts_check(const stream_opts *in, stream_opts *o)
{
    if (!in) {
        stream_opts_default(o);
        return WEIR_OK;
    }
    *o = *in;
    if (o->segment_bytes == 0)
        o->segment_bytes = 64ull << 20;
    if (o->max_pending_bytes == 0)
        o->max_pending_bytes = 64ull << 20;
    if (o->partitions < 1 || o->partitions > STREAM_MAX_PARTITIONS ||
        (unsigned)o->sync > STREAM_SYNC_ALWAYS || o->segment_bytes < STREAM__SEG_MIN_BYTES ||
        o->segment_bytes > STREAM__SEG_MAX_BYTES || o->segment_ms < 0 || o->retention_ms < 0 ||
        o->segment_ms > INT64_MAX / WEIR_NS_PER_MS || o->retention_ms > INT64_MAX / WEIR_NS_PER_MS)
        return WEIR_EINVAL;
    return WEIR_OK;
}

/* ---- Loop integration ------------------------------------------------------ */

/* End of a loop phase: hand this iteration's appends to the writer. */
static void kick_if_wanted(stream_store *st)
{
    if (!st || !st->want_kick)
        return;
    st->want_kick = false;
    uv_mutex_lock(&st->mu);
    st->kick = true;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
}

static void on_prepare(uv_prepare_t *h)
{
    kick_if_wanted(h->data);
}

static void on_check(uv_check_t *h)
{
    kick_if_wanted(h->data);
}

static void on_async(uv_async_t *h)
{
    if (h->data)
        stream__deliver(h->data);
}

static void on_handle_closed(uv_handle_t *h)
{
    stream__loopres *lr = h->data;
    if (--lr->open == 0)
        free(lr);
}

void stream__wake_loop(stream_store *st)
{
    if (st->lr)
        uv_async_send(&st->lr->async);
}

/* ---- Completions and notifications ----------------------------------------- */

/* Caller holds mu. */
void stream__complete(stream_store *st, stream__acks *acks, uint64_t batches)
{
    if (acks) {
        stream__acks *t = acks;
        while (t->next)
            t = t->next;
        if (st->compl_tail)
            st->compl_tail->next = acks;
        else
            st->compl_head = acks;
        st->compl_tail = t;
    }
    st->done_batches += batches;
}

/* Caller holds mu. */
void stream__notify(stream_store *st, stream__part *p)
{
    if (p->notify)
        return;
    p->notify = true;
    p->notify_next = st->notify;
    st->notify = p;
}

static void dispatch_watches(stream_store *st, stream__part *p, uint64_t end)
{
    stream *s = p->s;
    uv_mutex_lock(&st->cb_mu);
    s->watch_depth++;
    for (stream_watch *w = s->watches; w; w = w->next)
        if (!w->dead)
            w->cb(w->arg, p->id, end);
    if (--s->watch_depth == 0 && s->watch_dead) {
        stream_watch **pp = &s->watches;
        while (*pp) {
            stream_watch *w = *pp;
            if (w->dead) {
                *pp = w->next;
                free(w);
            } else {
                pp = &w->next;
            }
        }
        s->watch_dead = 0;
    }
    uv_mutex_unlock(&st->cb_mu);
}

void stream__deliver(stream_store *st)
{
    uv_mutex_lock(&st->mu);
    stream__acks *a = st->compl_head;
    st->compl_head = st->compl_tail = NULL;
    st->outstanding -= st->done_batches;
    st->done_batches = 0;
    for (stream__acks *x = a; x; x = x->next)
        st->inflight_acks -= x->n;
    bool idle = st->outstanding == 0;
    uv_mutex_unlock(&st->mu);

    for (stream__acks *x = a; x; x = x->next)
        for (uint32_t i = 0; i < x->n; i++)
            x->v[i].cb(x->v[i].arg, x->status, x->partition, x->v[i].first);
    stream__acks_free(a);

    /* One partition at a time: a callback may delete a stream, which takes
     * its partitions off the list. */
    for (;;) {
        uv_mutex_lock(&st->mu);
        stream__part *p = st->notify;
        if (p) {
            st->notify = p->notify_next;
            p->notify = false;
        }
        uv_mutex_unlock(&st->mu);
        if (!p)
            break;
        dispatch_watches(st, p, atomic_load(&p->visible_end));
    }

    if (st->lr && idle && st->async_ref) {
        uv_mutex_lock(&st->mu);
        idle = st->outstanding == 0;
        uv_mutex_unlock(&st->mu);
        if (idle) {
            uv_unref((uv_handle_t *)&st->lr->async);
            st->async_ref = false;
        }
    }
}

/* ---- Store ------------------------------------------------------------------ */

static void remove_leftovers(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, STREAM__DELETING, strlen(STREAM__DELETING)) != 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        wlog_info("stream", "delete_finished", "dir=%s", path);
        stream__remove_tree(path);
    }
    closedir(d);
}

/* See streamInt.h. */
int stream__crypt_check(const char *dir, const secret_key *master, bool create)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STREAM__CRYPT_FILE);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = fileio_read_all(path, 4096, &data, &len);
    if (rc && rc != WEIR_ENOTFOUND)
        return rc;
    uint8_t want[SECRET_CHECK_BYTES];
    if (master && (rc = secret_key_check_value(master, want))) {
        free(data);
        return rc;
    }
    if (!data) {
        if (!master || !create)
            return WEIR_OK;
        uint8_t f[28];
        stream__put32(f, 0x434e4557u); /* "WENC" */
        stream__put32(f + 4, 1);
        memcpy(f + 8, want, SECRET_CHECK_BYTES);
        stream__put32(f + 24, crc32c(f, 24));
        if (fileio_write_atomic(path, f, sizeof(f))) {
            wlog_error("stream", "encryption", "error=\"cannot write %s\"", path);
            return WEIR_EIO;
        }
        wlog_info("stream", "encryption", "dir=%s state=enabled note=\"batches written from "
                  "now on are encrypted; existing ones stay as they are\"", dir);
        return WEIR_OK;
    }
    rc = WEIR_OK;
    if (len != 28 || stream__get32(data) != 0x434e4557u || stream__get32(data + 4) != 1 ||
        stream__get32(data + 24) != crc32c(data, 24)) {
        wlog_error("stream", "encryption", "error=\"%s is damaged\"", path);
        rc = WEIR_ECORRUPT;
    } else if (!master) {
        wlog_error("stream", "encryption",
                   "error=\"the stream store %s is encrypted at rest and no key is configured: "
                   "set [storage] encryption_key_file\"", dir);
        rc = WEIR_EAUTH;
    } else if (memcmp(data + 8, want, SECRET_CHECK_BYTES)) {
        wlog_error("stream", "encryption",
                   "error=\"wrong encryption key: [storage] encryption_key_file is not the key "
                   "the stream store %s was encrypted with\"", dir);
        rc = WEIR_EAUTH;
    }
    free(data);
    return rc;
}

int stream_store_open(const char *dir, uv_loop_t *loop, stream_store **out)
{
    return stream_store_open_key(dir, loop, NULL, out);
}

int stream_store_open_key(const char *dir, uv_loop_t *loop, const secret_key *key,
                          stream_store **out)
{
    int rc = WEIR_EINVAL;
    char path[4096];
    if (!dir || !out || strlen(dir) > 3000)
        return rc;
    rc = fileio_mkdirs(dir);
    if (rc)
        return rc;
    /* Make the store directory's own entry durable (it may be new). */
    snprintf(path, sizeof(path), "%s/..", dir);
    (void)fsync_path(path);
    stream_store *st = calloc(1, sizeof(*st));
    if (!st)
        return WEIR_ENOMEM;
    st->lock_fd = -1;
    bool mu = false, cb_mu = false, cv = false, dcv = false;
    rc = WEIR_ENOMEM;
    st->dir = strdup(dir);
    if (!st->dir)
        goto fail;
    snprintf(path, sizeof(path), "%s/LOCK", dir);
    rc = WEIR_EIO;
    st->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0640);
    if (st->lock_fd < 0)
        goto fail;
    if (flock(st->lock_fd, LOCK_EX | LOCK_NB)) {
        rc = errno == EWOULDBLOCK ? WEIR_EBUSY : WEIR_EIO;
        goto fail;
    }
    remove_leftovers(dir);
    if ((rc = stream__crypt_check(dir, key, true)))
        goto fail;
    rc = WEIR_ENOMEM;
    if (key && secret_key_derive(key, SECRET_PURPOSE_STREAM, &st->key))
        goto fail;
    if (uv_mutex_init(&st->mu))
        goto fail;
    mu = true;
    if (uv_mutex_init_recursive(&st->cb_mu))
        goto fail;
    cb_mu = true;
    if (uv_cond_init(&st->cv))
        goto fail;
    cv = true;
    if (uv_cond_init(&st->done_cv))
        goto fail;
    dcv = true;
    st->loop = loop;
    if (loop) {
        stream__loopres *lr = calloc(1, sizeof(*lr));
        if (!lr)
            goto fail;
        st->lr = lr;
        uv_async_init(loop, &lr->async, on_async);
        uv_prepare_init(loop, &lr->prep);
        uv_check_init(loop, &lr->check);
        lr->async.data = lr->prep.data = lr->check.data = st;
        lr->open = 3;
        uv_prepare_start(&lr->prep, on_prepare);
        uv_check_start(&lr->check, on_check);
        uv_unref((uv_handle_t *)&lr->async);
        uv_unref((uv_handle_t *)&lr->prep);
        uv_unref((uv_handle_t *)&lr->check);
    }
    rc = WEIR_EINTERNAL;
    if (uv_thread_create(&st->writer, stream__writer_main, st))
        goto fail;
    st->writer_started = true;
    *out = st;
    return WEIR_OK;
fail:
    if (st->lr) {
        stream__loopres *lr = st->lr;
        lr->async.data = lr->prep.data = lr->check.data = lr;
        uv_close((uv_handle_t *)&lr->async, on_handle_closed);
        uv_close((uv_handle_t *)&lr->prep, on_handle_closed);
        uv_close((uv_handle_t *)&lr->check, on_handle_closed);
    }
    if (dcv)
        uv_cond_destroy(&st->done_cv);
    if (cv)
        uv_cond_destroy(&st->cv);
    if (cb_mu)
        uv_mutex_destroy(&st->cb_mu);
    if (mu)
        uv_mutex_destroy(&st->mu);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    secret_key_free(st->key);
    free(st->dir);
    free(st);
    return rc;
}

static bool any_failed(stream_store *st)
{
    for (stream *s = st->streams; s; s = s->next)
        for (uint32_t i = 0; i < s->nparts; i++)
            if (s->parts[i].failed)
                return true;
    return false;
}

int stream_store_flush(stream_store *st)
{
    uv_mutex_lock(&st->mu);
    uint64_t me = ++st->flush_req;
    uv_cond_signal(&st->cv);
    while (st->flush_done < me)
        uv_cond_wait(&st->done_cv, &st->mu);
    int rc = any_failed(st) ? WEIR_EIO : WEIR_OK;
    uv_mutex_unlock(&st->mu);
    return rc;
}

int stream_store_enforce_retention(stream_store *st)
{
    uv_mutex_lock(&st->mu);
    uint64_t me = ++st->ret_req;
    uv_cond_signal(&st->cv);
    while (st->ret_done < me)
        uv_cond_wait(&st->done_cv, &st->mu);
    uv_mutex_unlock(&st->mu);
    return WEIR_OK;
}

static void stream_free(stream *s)
{
    if (!s)
        return;
    for (uint32_t i = 0; s->parts && i < s->nparts; i++) {
        stream__part *p = &s->parts[i];
        if (!p->dir)
            continue; /* never initialised */
        stream__part_close_files(p);
        for (stream__batch *b = p->pend_head; b;) {
            stream__batch *next = b->next;
            stream__acks_free(b->acks);
            free(b->data);
            free(b);
            b = next;
        }
        stream__acks_free(p->await);
        for (size_t k = 0; k < p->nsegs; k++)
            stream__seg_unref(p->segs[k]);
        free(p->segs);
        uv_mutex_destroy(&p->seg_mu);
        free(p->dir);
    }
    while (s->watches) {
        stream_watch *w = s->watches;
        s->watches = w->next;
        free(w);
    }
    free(s->parts);
    free(s->dir);
    free(s);
}

void stream_store_close(stream_store *st)
{
    if (!st)
        return;
    uv_mutex_lock(&st->mu);
    st->closing = true;
    uv_mutex_unlock(&st->mu);
    stream_store_flush(st);
    uv_mutex_lock(&st->mu);
    st->stop = true;
    uv_cond_signal(&st->cv);
    uv_mutex_unlock(&st->mu);
    uv_thread_join(&st->writer);
    stream__deliver(st);

    if (st->lr) {
        stream__loopres *lr = st->lr;
        lr->async.data = lr->prep.data = lr->check.data = lr;
        uv_close((uv_handle_t *)&lr->async, on_handle_closed);
        uv_close((uv_handle_t *)&lr->prep, on_handle_closed);
        uv_close((uv_handle_t *)&lr->check, on_handle_closed);
        st->lr = NULL;
    }
    while (st->streams) {
        stream *s = st->streams;
        st->streams = s->next;
        if (atomic_load(&s->readers))
            wlog_error("stream", "close_with_readers", "stream=%s readers=%d", s->name,
                       atomic_load(&s->readers));
        stream_free(s);
    }
    while (st->free_batches) {
        stream__batch *b = st->free_batches;
        st->free_batches = b->next;
        free(b->enc);
        free(b->data);
        free(b);
    }
    stream__acks_free(st->compl_head);
    uv_cond_destroy(&st->done_cv);
    uv_cond_destroy(&st->cv);
    uv_mutex_destroy(&st->cb_mu);
    uv_mutex_destroy(&st->mu);
    close(st->lock_fd);
    secret_key_free(st->key);
    free(st->dir);
    free(st);
}

/* ---- Streams ---------------------------------------------------------------- */

static stream *find_stream(stream_store *st, const char *name)
{
    for (stream *s = st->streams; s; s = s->next)
        if (!s->deleting && strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* Does any partition directory of sdir hold a .log? */
static bool has_logs(const char *sdir)
{
    DIR *d = opendir(sdir);
    if (!d)
        return false;
    bool found = false;
    struct dirent *de;
    char path[4096];
    while (!found && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", sdir, de->d_name);
        DIR *pd = opendir(path);
        if (!pd)
            continue;
        struct dirent *fe;
        uint64_t base;
        while (!found && (fe = readdir(pd)) != NULL)
            found = stream__seg_name_kind(fe->d_name, &base) == STREAM__F_LOG;
        closedir(pd);
    }
    closedir(d);
    return found;
}

/* Creates the stream's directories and stream.meta, or checks the meta of
 * an existing one. */
static int prepare_dir(stream_store *st, const char *sdir, uint32_t partitions)
{
    char path[4200];
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(path, sizeof(path), "%s/" STREAM__META_FILE, sdir);
    int rc = fileio_read_all(path, 4096, &data, &len);
    if (rc == WEIR_OK) {
        uint32_t np = 0;
        rc = stream__meta_decode(data, len, &np);
        free(data);
        if (rc) {
            wlog_error("stream", "bad_meta", "file=%s", path);
            return rc;
        }
        return np == partitions ? WEIR_OK : WEIR_EINVAL;
    }
    free(data);
    if (rc != WEIR_ENOTFOUND && rc != WEIR_ETOOBIG)
        return rc;
    if (rc == WEIR_ETOOBIG || has_logs(sdir)) {
        wlog_error("stream", "missing_meta", "dir=%s", sdir);
        return WEIR_ECORRUPT;
    }
    /* New stream: partition directories, then the meta (fsyncs sdir), then
     * the store directory's entry for sdir. */
    if ((rc = fileio_mkdirs(sdir)))
        return rc;
    for (uint32_t i = 0; i < partitions; i++) {
        snprintf(path, sizeof(path), "%s/%u", sdir, i);
        if (mkdir(path, 0750) && errno != EEXIST)
            return WEIR_EIO;
    }
    uint8_t meta[STREAM__META_LEN];
    stream__meta_encode(meta, partitions);
    snprintf(path, sizeof(path), "%s/" STREAM__META_FILE, sdir);
    if ((rc = fileio_write_atomic(path, meta, sizeof(meta))))
        return rc;
    return fsync_path(st->dir);
}

int stream_open(stream_store *st, const char *name, const stream_opts *o, stream **out)
{
    stream_opts opts;
    if (!st || !out || !stream__name_ok(name) || opts_check(o, &opts))
        return WEIR_EINVAL;
    uv_mutex_lock(&st->mu);
    stream *s = find_stream(st, name);
    if (s) {
        int rc = s->nparts == opts.partitions ? WEIR_OK : WEIR_EINVAL;
        if (!rc) {
            s->opts = opts;
            *out = s;
        }
        uv_mutex_unlock(&st->mu);
        return rc;
    }
    bool closing = st->closing;
    uv_mutex_unlock(&st->mu);
    if (closing)
        return WEIR_ESHUTDOWN;

    int rc = WEIR_ENOMEM;
    char path[4096];
    s = calloc(1, sizeof(*s));
    if (!s)
        goto fail;
    s->st = st;
    snprintf(s->name, sizeof(s->name), "%s", name);
    snprintf(path, sizeof(path), "%s/%s", st->dir, name);
    s->dir = strdup(path);
    s->nparts = opts.partitions;
    s->opts = s->wopts = opts;
    s->parts = calloc(opts.partitions, sizeof(*s->parts));
    if (!s->dir || !s->parts)
        goto fail;
    if ((rc = prepare_dir(st, s->dir, opts.partitions)))
        goto fail;

    stream__recov rs = {0};
    for (uint32_t i = 0; i < s->nparts; i++) {
        stream__part *p = &s->parts[i];
        p->s = s;
        p->id = i;
        p->log_fd = p->idx_fd = p->tix_fd = -1;
        snprintf(path, sizeof(path), "%s/%u", s->dir, i);
        rc = WEIR_ENOMEM;
        if (!(p->dir = strdup(path)))
            goto fail;
        if (uv_mutex_init(&p->seg_mu)) {
            free(p->dir);
            p->dir = NULL;
            goto fail;
        }
        if ((rc = stream__recover_part(p, &rs)))
            goto fail;
    }
    wlog_info("stream", "recovered",
              "stream=%s partitions=%u segments=%" PRIu64 " records=%" PRIu64 " bytes=%" PRIu64
              " truncated_bytes=%" PRIu64 " indexes_rebuilt=%" PRIu64 " quarantined=%" PRIu64,
              s->name, s->nparts, rs.segments, rs.records, rs.bytes, rs.truncated_bytes,
              rs.rebuilt_indexes, rs.quarantined);

    uv_mutex_lock(&st->mu);
    s->next = st->streams;
    st->streams = s;
    uv_mutex_unlock(&st->mu);
    *out = s;
    return WEIR_OK;
fail:
    if (rc != WEIR_EINVAL)
        wlog_error("stream", "open_failed", "stream=%s err=%s", name, weir_err_name(rc));
    stream_free(s);
    return rc;
}

int stream_delete(stream_store *st, const char *name)
{
    if (!st || !stream__name_ok(name))
        return WEIR_EINVAL;
    /* cb_mu is never taken inside mu (a watch callback holding cb_mu may
     * append, which takes mu), so look up twice. */
    uv_mutex_lock(&st->mu);
    stream *s = find_stream(st, name);
    uv_mutex_unlock(&st->mu);
    if (!s)
        return WEIR_ENOTFOUND;
    uv_mutex_lock(&st->cb_mu);
    bool busy = atomic_load(&s->readers) > 0 || s->watches != NULL || s->watch_depth > 0;
    uv_mutex_unlock(&st->cb_mu);
    if (busy)
        return WEIR_EBUSY;
    uv_mutex_lock(&st->mu);
    if (find_stream(st, name) != s) {
        uv_mutex_unlock(&st->mu);
        return WEIR_ENOTFOUND;
    }
    s->deleting = true;
    for (stream **pp = &st->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    stream__op op = {.s = s};
    op.next = st->ops;
    st->ops = &op;
    uv_cond_signal(&st->cv);
    while (!op.done)
        uv_cond_wait(&st->done_cv, &st->mu);
    uv_mutex_unlock(&st->mu);
    wlog_info("stream", "deleted", "stream=%s", name);
    /* Its completions are queued with ENOTFOUND; deliver them promptly. */
    stream__wake_loop(st);
    stream_free(s);
    return op.result;
}

const char *stream_name(const stream *s)
{
    return s->name;
}

uint32_t stream_partitions(const stream *s)
{
    return s->nparts;
}

uint32_t stream_partition_for(const stream *s, const uint8_t *key, size_t n)
{
    if (n == 0 || !key)
        return 0;
    return (uint32_t)(XXH3_64bits(key, n) % s->nparts);
}

/* ---- Append ------------------------------------------------------------------ */

/* A batch with room for at least `need` bytes after the header. Caller
 * holds mu. */
static stream__batch *batch_new(stream_store *st, size_t need)
{
    size_t want = STREAM__BATCH_HDR + (need > 4096 ? need : 4096);
    stream__batch *b = st->free_batches;
    if (b && b->cap >= want) {
        st->free_batches = b->next;
        st->nfree--;
    } else {
        b = stream__alloc(st, sizeof(*b));
        if (!b)
            return NULL;
        b->data = stream__alloc(st, want);
        if (!b->data) {
            free(b);
            return NULL;
        }
        b->cap = want;
        b->enc = NULL;
        b->enc_cap = 0;
    }
    b->next = NULL;
    b->len = STREAM__BATCH_HDR;
    b->count = 0;
    b->min_ts = INT64_MAX;
    b->max_ts = INT64_MIN;
    b->acks = NULL;
    return b;
}

static bool batch_grow(stream_store *st, stream__batch *b, size_t need)
{
    if (b->len + need <= b->cap)
        return true;
    size_t nc = b->cap * 2;
    size_t lim = STREAM__BATCH_HDR + STREAM__BATCH_TARGET;
    if (nc > lim)
        nc = lim;
    if (nc < b->len + need)
        nc = b->len + need;
    uint8_t *nd = stream__realloc(st, b->data, nc);
    if (!nd)
        return false;
    b->data = nd;
    b->cap = nc;
    return true;
}

static bool acks_add(stream_store *st, stream__batch *b, uint32_t partition, stream_done_cb cb,
                     void *arg, uint64_t first)
{
    stream__acks *a = b->acks;
    if (!a) {
        a = stream__alloc(st, sizeof(*a));
        if (!a)
            return false;
        memset(a, 0, sizeof(*a));
        a->partition = partition;
        b->acks = a;
    }
    if (a->n == a->cap) {
        uint32_t nc = a->cap ? a->cap * 2 : 8;
        stream__ack *nv = stream__realloc(st, a->v, nc * sizeof(*nv));
        if (!nv)
            return false; /* an empty chunk stays on the batch, harmlessly */
        a->v = nv;
        a->cap = nc;
    }
    a->v[a->n++] = (stream__ack){.cb = cb, .arg = arg, .first = first};
    return true;
}

static int check_recs(const stream_rec_in *recs, size_t n, uint64_t *total)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) {
        const stream_rec_in *r = &recs[i];
        if ((r->key_len && !r->key) || (r->value_len && !r->value))
            return WEIR_EINVAL;
        if (r->key_len > STREAM_MAX_KEY || r->value_len > STREAM_MAX_VALUE)
            return WEIR_ETOOBIG;
        t += STREAM__REC_HDR + (uint64_t)r->key_len + r->value_len;
    }
    *total = t;
    return WEIR_OK;
}

int stream_append(stream *s, uint32_t partition, const stream_rec_in *recs, size_t n,
                  stream_done_cb cb, void *arg, uint64_t *first_offset)
{
    if (!s || !recs || n == 0 || partition >= s->nparts || n > UINT32_MAX)
        return WEIR_EINVAL;
    uint64_t total;
    int rc = check_recs(recs, n, &total);
    if (rc)
        return rc;
    stream_store *st = s->st;
    stream__part *p = &s->parts[partition];

    uv_mutex_lock(&st->mu);
    if (st->closing)
        rc = WEIR_ESHUTDOWN;
    else if (s->deleting)
        rc = WEIR_ENOTFOUND;
    else if (p->failed)
        rc = p->failed;
    else if (total > s->opts.max_pending_bytes)
        rc = WEIR_ETOOBIG;
    else if (s->pending_bytes + total > s->opts.max_pending_bytes ||
             (cb && st->inflight_acks >= STREAM_MAX_INFLIGHT_ACKS))
        rc = WEIR_EFULL;
    else if (p->next_offset + n >= STREAM__MAX_BASE)
        rc = WEIR_EINVAL;
    if (rc)
        goto out;

    /* Fill the tail batch, then new ones; undo everything on ENOMEM. */
    stream__batch *tail = p->pend_tail, *cur = tail, *nh = NULL, *nt = NULL;
    size_t t_len = tail ? tail->len : 0;
    uint32_t t_count = tail ? tail->count : 0;
    int64_t t_min = tail ? tail->min_ts : 0, t_max = tail ? tail->max_ts : 0;
    uint64_t nnew = 0, first = p->next_offset;
    /* Batches stay well below the segment size, so that small segments
     * roll close to their size (a segment ends with a whole batch). */
    size_t target = (size_t)(s->opts.segment_bytes / 4);
    target = target < 1024 ? 1024 : target > STREAM__BATCH_TARGET ? STREAM__BATCH_TARGET : target;
    for (size_t i = 0; i < n; i++) {
        const stream_rec_in *r = &recs[i];
        size_t rs = STREAM__REC_HDR + (size_t)r->key_len + r->value_len;
        if (!cur || (cur->count > 0 && cur->len - STREAM__BATCH_HDR + rs > target)) {
            stream__batch *b = batch_new(st, rs);
            if (!b)
                goto nomem;
            b->base = first + i;
            if (nt)
                nt->next = b;
            else
                nh = b;
            nt = cur = b;
            nnew++;
        }
        if (!batch_grow(st, cur, rs))
            goto nomem;
        uint8_t *d = cur->data + cur->len;
        stream__put64(d, (uint64_t)r->ts);
        stream__put64(d + 8, (uint64_t)r->arrival);
        stream__put32(d + 16, r->key_len);
        stream__put32(d + 20, r->value_len);
        if (r->key_len)
            memcpy(d + STREAM__REC_HDR, r->key, r->key_len);
        if (r->value_len)
            memcpy(d + STREAM__REC_HDR + r->key_len, r->value, r->value_len);
        cur->len += rs;
        cur->count++;
        cur->min_ts = r->ts < cur->min_ts ? r->ts : cur->min_ts;
        cur->max_ts = r->ts > cur->max_ts ? r->ts : cur->max_ts;
    }
    if (cb && !acks_add(st, cur, partition, cb, arg, first))
        goto nomem;

    if (nh) {
        if (tail)
            tail->next = nh;
        else
            p->pend_head = nh;
        p->pend_tail = nt;
    }
    p->next_offset += n;
    p->pend_bytes += total;
    s->pending_bytes += total;
    st->outstanding += nnew;
    if (cb)
        st->inflight_acks++;
    if (!p->dirty) {
        p->dirty = true;
        p->dirty_next = st->dirty;
        st->dirty = p;
    }
    if (!st->loop || p->pend_bytes >= STREAM__KICK_BYTES) {
        st->kick = true;
        uv_cond_signal(&st->cv);
    } else {
        st->want_kick = true;
    }
    if (first_offset)
        *first_offset = first;
    goto out;
nomem:
    if (tail) {
        tail->len = t_len;
        tail->count = t_count;
        tail->min_ts = t_min;
        tail->max_ts = t_max;
    }
    while (nh) {
        stream__batch *next = nh->next;
        stream__batch_release(st, nh);
        nh = next;
    }
    rc = WEIR_ENOMEM;
out:
    uv_mutex_unlock(&st->mu);
    if (rc == WEIR_OK && st->lr && !st->async_ref) {
        uv_ref((uv_handle_t *)&st->lr->async);
        st->async_ref = true;
    }
    return rc;
}

/* ---- Watches ------------------------------------------------------------------ */

stream_watch *stream_watch_add(stream *s,
                               void (*cb)(void *arg, uint32_t partition, uint64_t end_offset),
                               void *arg)
{
    if (!s || !cb)
        return NULL;
    stream_watch *w = stream__alloc(s->st, sizeof(*w));
    if (!w)
        return NULL;
    *w = (stream_watch){.s = s, .cb = cb, .arg = arg};
    uv_mutex_lock(&s->st->cb_mu);
    w->next = s->watches;
    s->watches = w;
    uv_mutex_unlock(&s->st->cb_mu);
    atomic_fetch_add(&s->nwatches, 1);
    return w;
}

void stream_watch_remove(stream_watch *w)
{
    if (!w)
        return;
    stream *s = w->s;
    stream_store *st = s->st;
    uv_mutex_lock(&st->cb_mu);
    atomic_fetch_sub(&s->nwatches, 1);
    if (s->watch_depth > 0) {
        w->dead = true;
        s->watch_dead++;
    } else {
        for (stream_watch **pp = &s->watches; *pp; pp = &(*pp)->next)
            if (*pp == w) {
                *pp = w->next;
                break;
            }
        free(w);
    }
    uv_mutex_unlock(&st->cb_mu);
}

/* ---- Metadata ------------------------------------------------------------------- */

void stream_get_stats(stream *s, stream_stats *out)
{
    memset(out, 0, sizeof(*out));
    int64_t lo = INT64_MAX, hi = INT64_MIN;
    for (uint32_t i = 0; i < s->nparts; i++) {
        stream__part *p = &s->parts[i];
        uv_mutex_lock(&p->seg_mu);
        for (size_t k = 0; k < p->nsegs; k++) {
            const stream__seg *g = p->segs[k];
            out->bytes += g->size;
            out->segments++;
            if (g->end > g->base) {
                lo = g->min_ts < lo ? g->min_ts : lo;
                hi = g->max_ts > hi ? g->max_ts : hi;
            }
        }
        out->records += p->segs[p->nsegs - 1]->end - p->segs[0]->base;
        uv_mutex_unlock(&p->seg_mu);
    }
    out->first_ts = out->records ? lo : 0;
    out->last_ts = out->records ? hi : 0;
    out->fsyncs = atomic_load(&s->n_fsyncs);
    out->writes = atomic_load(&s->n_writes);
    out->batches = atomic_load(&s->n_batches);
}

uint64_t stream_end_offset(stream *s, uint32_t partition)
{
    return partition < s->nparts ? atomic_load(&s->parts[partition].visible_end) : 0;
}

int64_t stream_min_ts_from(stream *s, uint32_t partition, uint64_t offset)
{
    if (partition >= s->nparts)
        return INT64_MAX;
    stream__part *p = &s->parts[partition];
    int64_t lo = INT64_MAX;
    uv_mutex_lock(&p->seg_mu);
    for (size_t k = 0; k < p->nsegs; k++) {
        const stream__seg *g = p->segs[k];
        if (g->end > g->base && g->end > offset && g->min_ts < lo)
            lo = g->min_ts;
    }
    uv_mutex_unlock(&p->seg_mu);
    return lo;
}

uint64_t stream_start_offset(stream *s, uint32_t partition)
{
    return partition < s->nparts ? atomic_load(&s->parts[partition].start) : 0;
}
