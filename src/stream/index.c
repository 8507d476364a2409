/* index.c -- the sparse offset index (.idx) and time index (.tix) of a
 * segment; the formats are specified in segment.c.
 *
 * The indexes are derived data: the writer appends entries after the batch
 * they describe is in the .log and does not fsync them for a commit, so
 * after a crash they may be short, long or damaged. Hence three levels of
 * trust: recovery loads them with structural checks and repairs them
 * (stream__index_load, stream__index_write), readers look entries up with
 * pread and double-check the batch they land on (its base offset must
 * match), and the checker compares every entry with the log.
 */
#include "stream/streamInt.h"

#include "base/err.h"
#include "base/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int stream__ivec_push(stream__ivec *iv, const stream__ient *e)
{
    if (iv->n == iv->cap) {
        size_t nc = iv->cap ? iv->cap * 2 : 64;
        stream__ient *nv = realloc(iv->v, nc * sizeof(*nv));
        if (!nv)
            return WEIR_ENOMEM;
        iv->v = nv;
        iv->cap = nc;
    }
    iv->v[iv->n++] = *e;
    return WEIR_OK;
}

void stream__ivec_free(stream__ivec *iv)
{
    free(iv->v);
    iv->v = NULL;
    iv->n = iv->cap = 0;
}

void stream__ient_encode(const stream__ient *e, uint8_t idx[STREAM__IDX_ENTRY],
                         uint8_t tix[STREAM__TIX_ENTRY])
{
    stream__put32(idx, e->rel);
    stream__put32(idx + 4, e->pos);
    stream__put64(tix, (uint64_t)e->pmax);
    stream__put64(tix + 8, (uint64_t)e->pmin);
    stream__put32(tix + 16, e->rel);
    stream__put32(tix + 20, e->pos);
}

/* ---- Loading for recovery ------------------------------------------------ */

int stream__index_load(const char *dir, uint64_t base, uint64_t log_size, stream__ivec *out,
                       int *flags)
{
    char path[4096];
    uint8_t *idx = NULL, *tix = NULL;
    size_t ilen = 0, tlen = 0;
    *flags = 0;
    out->n = 0;
    /* An index of a 1 GiB segment has at most 64 Ki entries. */
    size_t max = (STREAM__SEG_MAX_BYTES / STREAM__INDEX_INTERVAL + 1) * STREAM__TIX_ENTRY;

    stream__seg_path(path, sizeof(path), dir, base, ".idx");
    int rc = fileio_read_all(path, max, &idx, &ilen);
    if (rc == WEIR_ENOTFOUND || rc == WEIR_ETOOBIG) {
        *flags |= rc == WEIR_ENOTFOUND ? STREAM__IX_MISSING : STREAM__IX_DAMAGED;
        idx = NULL;
        ilen = 0;
    } else if (rc) {
        goto cleanup;
    }
    stream__seg_path(path, sizeof(path), dir, base, ".tix");
    rc = fileio_read_all(path, max, &tix, &tlen);
    if (rc == WEIR_ENOTFOUND || rc == WEIR_ETOOBIG) {
        *flags |= rc == WEIR_ENOTFOUND ? STREAM__IX_MISSING : STREAM__IX_DAMAGED;
        tix = NULL;
        tlen = 0;
    } else if (rc) {
        goto cleanup;
    }
    rc = WEIR_OK;
    if (*flags & STREAM__IX_MISSING)
        goto cleanup; /* both are rebuilt */
    if (ilen % STREAM__IDX_ENTRY || tlen % STREAM__TIX_ENTRY ||
        ilen / STREAM__IDX_ENTRY != tlen / STREAM__TIX_ENTRY)
        *flags |= STREAM__IX_DAMAGED;
    size_t n = ilen / STREAM__IDX_ENTRY;
    if (tlen / STREAM__TIX_ENTRY < n)
        n = tlen / STREAM__TIX_ENTRY;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *a = idx + i * STREAM__IDX_ENTRY, *b = tix + i * STREAM__TIX_ENTRY;
        stream__ient e = {
            .rel = stream__get32(a),
            .pos = stream__get32(a + 4),
            .pmax = (int64_t)stream__get64(b),
            .pmin = (int64_t)stream__get64(b + 8),
        };
        bool ok =
            stream__get32(b + 16) == e.rel && stream__get32(b + 20) == e.pos && e.pos < log_size;
        if (ok && i == 0)
            ok = e.rel == 0 && e.pos == 0 && e.pmax == INT64_MIN && e.pmin == INT64_MAX;
        if (ok && i > 0) {
            const stream__ient *q = &out->v[i - 1];
            ok = e.rel > q->rel && e.pos > q->pos && e.pos - q->pos >= STREAM__INDEX_INTERVAL &&
                 e.pmax >= q->pmax && e.pmin <= q->pmin;
        }
        if (!ok) {
            *flags |= STREAM__IX_DAMAGED;
            break;
        }
        rc = stream__ivec_push(out, &e);
        if (rc)
            goto cleanup;
    }
cleanup:
    free(idx);
    free(tix);
    return rc;
}

int stream__index_write(const char *dir, uint64_t base, const stream__ivec *iv)
{
    char path[4096];
    int rc = WEIR_ENOMEM;
    uint8_t *idx = malloc(iv->n * STREAM__IDX_ENTRY + 1);
    uint8_t *tix = malloc(iv->n * STREAM__TIX_ENTRY + 1);
    if (!idx || !tix)
        goto cleanup;
    for (size_t i = 0; i < iv->n; i++)
        stream__ient_encode(&iv->v[i], idx + i * STREAM__IDX_ENTRY, tix + i * STREAM__TIX_ENTRY);
    stream__seg_path(path, sizeof(path), dir, base, ".idx");
    rc = fileio_write_atomic(path, idx, iv->n * STREAM__IDX_ENTRY);
    if (rc)
        goto cleanup;
    stream__seg_path(path, sizeof(path), dir, base, ".tix");
    rc = fileio_write_atomic(path, tix, iv->n * STREAM__TIX_ENTRY);
cleanup:
    free(idx);
    free(tix);
    return rc;
}

/* ---- Lookups for readers ------------------------------------------------- */

/* An open index file of a segment for lookups. */
typedef struct ifile {
    int fd;
    size_t esize; /* entry size */
    size_t n;     /* whole entries in the file */
} ifile;

static int ifile_open(ifile *f, const char *dir, uint64_t base, bool tix)
{
    char path[4096];
    stream__seg_path(path, sizeof(path), dir, base, tix ? ".tix" : ".idx");
    f->esize = tix ? STREAM__TIX_ENTRY : STREAM__IDX_ENTRY;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0)
        return WEIR_ENOTFOUND;
    struct stat sb;
    if (fstat(f->fd, &sb) < 0) {
        close(f->fd);
        return WEIR_ENOTFOUND;
    }
    f->n = (size_t)sb.st_size / f->esize;
    return WEIR_OK;
}

/* Reads entry i; false when it cannot be read. */
static bool ifile_get(const ifile *f, size_t i, stream__ient *e)
{
    uint8_t b[STREAM__TIX_ENTRY];
    ssize_t r;
    do
        r = pread(f->fd, b, f->esize, (off_t)(i * f->esize));
    while (r < 0 && errno == EINTR);
    if (r != (ssize_t)f->esize)
        return false;
    if (f->esize == STREAM__IDX_ENTRY) {
        e->rel = stream__get32(b);
        e->pos = stream__get32(b + 4);
        e->pmax = INT64_MIN;
        e->pmin = INT64_MAX;
    } else {
        e->pmax = (int64_t)stream__get64(b);
        e->pmin = (int64_t)stream__get64(b + 8);
        e->rel = stream__get32(b + 16);
        e->pos = stream__get32(b + 20);
    }
    return true;
}

/* Binary search for the last entry i for which pred holds, assuming pred is
 * true on a prefix (entries are monotonic in rel, pos and pmax). */
typedef bool (*ipred)(const stream__ient *e, uint64_t limit, uint64_t key);

static int ifile_last(const ifile *f, ipred pred, uint64_t limit, uint64_t key, stream__ient *out)
{
    size_t lo = 0, hi = f->n; /* answer in [lo, hi) is the last true; find first false */
    stream__ient e;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (!ifile_get(f, mid, &e))
            return WEIR_ENOTFOUND;
        if (pred(&e, limit, key))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || !ifile_get(f, lo - 1, out) || !pred(out, limit, key))
        return WEIR_ENOTFOUND;
    return WEIR_OK;
}

static bool pred_offset(const stream__ient *e, uint64_t limit, uint64_t rel)
{
    return e->pos < limit && e->rel <= rel;
}

static bool pred_time(const stream__ient *e, uint64_t limit, uint64_t t)
{
    return e->pos < limit && e->pmax < (int64_t)t;
}

int stream__index_find_offset(const char *dir, uint64_t base, uint64_t limit, uint32_t rel,
                              stream__ient *out)
{
    ifile f;
    if (ifile_open(&f, dir, base, false))
        return WEIR_ENOTFOUND;
    int rc = ifile_last(&f, pred_offset, limit, rel, out);
    close(f.fd);
    return rc;
}

int stream__index_find_time(const char *dir, uint64_t base, uint64_t limit, int64_t t,
                            stream__ient *out)
{
    ifile f;
    if (ifile_open(&f, dir, base, true))
        return WEIR_ENOTFOUND;
    int rc = ifile_last(&f, pred_time, limit, (uint64_t)t, out);
    close(f.fd);
    return rc;
}

int stream__index_find_after(const char *dir, uint64_t base, uint64_t limit, uint64_t pos,
                             stream__ient *out)
{
    ifile f;
    if (ifile_open(&f, dir, base, false))
        return WEIR_ENOTFOUND;
    /* The first entry with pos > `pos` (pos grows along the file). */
    size_t lo = 0, hi = f.n;
    int rc = WEIR_ENOTFOUND;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        stream__ient m;
        if (!ifile_get(&f, mid, &m))
            goto cleanup;
        if (m.pos <= pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < f.n && ifile_get(&f, lo, out) && out->pos > pos && out->pos < limit)
        rc = WEIR_OK;
cleanup:
    close(f.fd);
    return rc;
}
