/* check.c -- `weir check`: an offline, read-only verification of a store
 * directory against the format of segment.c.
 *
 * Unlike recovery, which only looks at segment tails, the checker reads
 * everything: every batch of every segment (header, CRC, record structure,
 * min/max ts, offset continuity), the continuity between segments, and each
 * index entry against the batch it must describe (position, relative
 * offset, pmax, pmin), plus the indexing rule (a batch one interval past the
 * previous entry must have one). After a damaged batch it resumes at the
 * next index entry that points at a valid batch, so one bad spot does not
 * hide the others. Every problem is one line through the callback:
 *
 *   <stream>/<partition>/<file>: <what>
 *
 * and a last summary line. Findings that are not damage (quarantined
 * segments kept for forensics) are reported with "note:" and not counted.
 * Nothing is opened for writing and no lock is taken.
 */
#include "stream/streamInt.h"

#include "base/err.h"
#include "base/fileio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct chk {
    void (*cb)(void *arg, const char *line);
    void *arg;
    int problems;
    uint64_t streams, partitions, segments, records;
    secret_key *key;        /* stream subkey, or NULL */
    uint64_t sealed;        /* sealed batches seen */
} chk;

__attribute__((format(printf, 3, 4))) static void report(chk *c, bool problem, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(line, sizeof(line), "%s", problem ? "" : "note: ");
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    if (problem)
        c->problems++;
    if (c->cb)
        c->cb(c->arg, line);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of a directory (caller frees each and the array). */
static int list_dir(const char *dir, char ***out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? WEIR_ENOTFOUND : WEIR_EIO;
    char **v = NULL;
    size_t len = 0, cap = 0;
    int rc = WEIR_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (len == cap) {
            size_t nc = cap ? cap * 2 : 32;
            char **nv = realloc(v, nc * sizeof(*nv));
            if (!nv) {
                rc = WEIR_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[len] = strdup(de->d_name))) {
            rc = WEIR_ENOMEM;
            break;
        }
        len++;
    }
    closedir(d);
    if (rc) {
        for (size_t i = 0; i < len; i++)
            free(v[i]);
        free(v);
        return rc;
    }
    if (len > 1)
        qsort(v, len, sizeof(*v), cmp_str);
    *out = v;
    *n = len;
    return WEIR_OK;
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* ---- One segment ----------------------------------------------------------- */

/* Both index files of a segment, decoded as far as they go. */
static int load_raw_index(chk *c, const char *where, const char *pdir, uint64_t base,
                          stream__ivec *iv)
{
    char path[4096];
    uint8_t *idx = NULL, *tix = NULL;
    size_t ilen = 0, tlen = 0;
    size_t max = 64u << 20;
    stream__seg_path(path, sizeof(path), pdir, base, ".idx");
    int ri = fileio_read_all(path, max, &idx, &ilen);
    stream__seg_path(path, sizeof(path), pdir, base, ".tix");
    int rt = fileio_read_all(path, max, &tix, &tlen);
    int rc = WEIR_OK;
    if (ri || rt) {
        report(c, true, "%s: index file %s%s%s", where, ri ? ".idx " : "", rt ? ".tix " : "",
               (ri == WEIR_ENOTFOUND || rt == WEIR_ENOTFOUND) ? "missing" : "unreadable");
        goto cleanup;
    }
    if (ilen % STREAM__IDX_ENTRY || tlen % STREAM__TIX_ENTRY)
        report(c, true, "%s: index file size not a whole number of entries (.idx %zu, .tix %zu)",
               where, ilen, tlen);
    size_t n = ilen / STREAM__IDX_ENTRY, nt = tlen / STREAM__TIX_ENTRY;
    if (n != nt)
        report(c, true, "%s: .idx has %zu entries, .tix %zu", where, n, nt);
    if (nt < n)
        n = nt;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *a = idx + i * STREAM__IDX_ENTRY, *b = tix + i * STREAM__TIX_ENTRY;
        stream__ient e = {.rel = stream__get32(a),
                          .pos = stream__get32(a + 4),
                          .pmax = (int64_t)stream__get64(b),
                          .pmin = (int64_t)stream__get64(b + 8)};
        if (stream__get32(b + 16) != e.rel || stream__get32(b + 20) != e.pos) {
            report(c, true, "%s: index entry %zu differs between .idx and .tix", where, i);
            break;
        }
        if (i > 0 && e.pos <= iv->v[iv->n - 1].pos) {
            report(c, true, "%s: index entry %zu out of order", where, i);
            break;
        }
        if ((rc = stream__ivec_push(iv, &e)))
            break;
    }
cleanup:
    free(idx);
    free(tix);
    return rc;
}

static int check_seg(chk *c, const char *sname, uint32_t pid, const char *pdir, uint64_t base,
                     uint64_t *end_out)
{
    char path[4096], where[512];
    snprintf(where, sizeof(where), "%s/%u/%020" PRIu64 ".log", sname, pid, base);
    stream__seg_path(path, sizeof(path), pdir, base, ".log");
    stream__ivec iv = {0};
    stream__scan sc;
    stream__scan_init(&sc, -1, 0, 0, base);
    sc.key = c->key;
    sc.sealed_unverified = true;
    int rc = WEIR_OK;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) < 0) {
        report(c, true, "%s: cannot open", where);
        goto cleanup;
    }
    c->segments++;
    uint64_t size = (uint64_t)sb.st_size;
    if (size > UINT32_MAX) {
        report(c, true, "%s: larger than 4 GiB", where);
        size = UINT32_MAX;
    }
    if ((rc = load_raw_index(c, where, pdir, base, &iv)))
        goto cleanup;

    stream__scan_reset(&sc, fd, 0, base);
    sc.limit = size;
    size_t ei = 0;
    bool ihave = false, missing_reported = false;
    uint64_t ilast = 0, end = base;
    int64_t pmax = INT64_MIN, pmin = INT64_MAX;
    for (;;) {
        rc = stream__scan_next(&sc, 0);
        if (rc == WEIR_EAGAIN) {
            rc = WEIR_OK;
            break;
        }
        if (rc == WEIR_EAUTH) {
            rc = WEIR_OK;
            report(c, true, "%s: batch at byte %" PRIu64 ": %s", where, sc.pos, sc.why);
            break;
        }
        if (rc == WEIR_ECORRUPT) {
            rc = WEIR_OK;
            report(c, true,
                   "%s: invalid batch at byte %" PRIu64 " (%s), offset %" PRIu64
                   " onward unreadable",
                   where, sc.pos, sc.why, sc.expect == UINT64_MAX ? end : sc.expect);
            /* Resume at the next index entry past the damage, if any. */
            while (ei < iv.n && iv.v[ei].pos <= sc.pos)
                ei++;
            if (ei == iv.n)
                break;
            stream__scan_reset(&sc, fd, iv.v[ei].pos, base + iv.v[ei].rel);
            pmax = iv.v[ei].pmax;
            pmin = iv.v[ei].pmin;
            continue;
        }
        if (rc)
            break;
        const stream__bhdr *h = &sc.h;
        while (ei < iv.n && iv.v[ei].pos < sc.bpos) {
            report(c, true, "%s: index entry %zu points inside a batch (byte %u)", where, ei,
                   iv.v[ei].pos);
            ei++;
        }
        if (ei < iv.n && iv.v[ei].pos == sc.bpos) {
            const stream__ient *e = &iv.v[ei];
            if (e->rel != h->base - base || e->pmax != pmax || e->pmin != pmin)
                report(c, true, "%s: index entry %zu wrong for the batch at byte %" PRIu64, where,
                       ei, sc.bpos);
            ihave = true;
            ilast = sc.bpos;
            ei++;
        } else if (stream__index_due(ihave, ilast, sc.bpos) && !missing_reported) {
            report(c, true, "%s: index lacks the batch at byte %" PRIu64 " and later", where,
                   sc.bpos);
            missing_reported = true;
        }
        pmax = h->max_ts > pmax ? h->max_ts : pmax;
        pmin = h->min_ts < pmin ? h->min_ts : pmin;
        c->records += h->count;
        if (h->flags & STREAM__BF_ENCRYPTED)
            c->sealed++;
        end = h->base + h->count;
    }
    if (ei < iv.n)
        report(c, true, "%s: %zu index entries past the last valid batch", where, iv.n - ei);
    *end_out = end;
cleanup:
    if (fd >= 0)
        close(fd);
    stream__scan_free(&sc);
    stream__ivec_free(&iv);
    return rc;
}

/* ---- Partitions and streams ---------------------------------------------------- */

typedef struct u64list {
    uint64_t *v;
    size_t n;
} u64list;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static int check_part(chk *c, const char *sname, uint32_t pid, const char *pdir)
{
    char **names = NULL;
    size_t n = 0;
    int rc = list_dir(pdir, &names, &n);
    if (rc == WEIR_ENOTFOUND) {
        report(c, true, "%s/%u: partition directory missing", sname, pid);
        return WEIR_OK;
    }
    if (rc)
        return rc;
    c->partitions++;
    uint64_t *logs = calloc(n + 1, sizeof(*logs));
    size_t nl = 0;
    if (!logs) {
        free_list(names, n);
        return WEIR_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t base;
        int k = stream__seg_name_kind(names[i], &base);
        if (k == STREAM__F_LOG)
            logs[nl++] = base;
    }
    if (nl > 1)
        qsort(logs, nl, sizeof(*logs), cmp_u64);
    for (size_t i = 0; i < n; i++) {
        uint64_t base;
        int k = stream__seg_name_kind(names[i], &base);
        if ((k == STREAM__F_IDX || k == STREAM__F_TIX) &&
            !bsearch(&base, logs, nl, sizeof(*logs), cmp_u64))
            report(c, true, "%s/%u/%s: index without a segment", sname, pid, names[i]);
        else if (k == STREAM__F_TMP)
            report(c, true, "%s/%u/%s: leftover temporary file", sname, pid, names[i]);
        else if (k == STREAM__F_QUAR)
            report(c, false, "%s/%u/%s: quarantined segment kept by an earlier recovery", sname,
                   pid, names[i]);
        else if (k == STREAM__F_OTHER)
            report(c, false, "%s/%u/%s: unknown file", sname, pid, names[i]);
    }
    uint64_t prev_end = 0;
    for (size_t i = 0; i < nl && !rc; i++) {
        if (i > 0 && logs[i] != prev_end)
            report(c, true,
                   "%s/%u/%020" PRIu64 ".log: base offset %s the previous segment's end %" PRIu64,
                   sname, pid, logs[i], logs[i] < prev_end ? "overlaps" : "leaves a gap after",
                   prev_end);
        rc = check_seg(c, sname, pid, pdir, logs[i], &prev_end);
    }
    free(logs);
    free_list(names, n);
    return rc;
}

static int check_stream(chk *c, const char *dir, const char *sname)
{
    char sdir[4096], path[4200];
    snprintf(sdir, sizeof(sdir), "%s/%s", dir, sname);
    snprintf(path, sizeof(path), "%s/" STREAM__META_FILE, sdir);
    uint8_t *meta = NULL;
    size_t len = 0;
    uint32_t np = 0;
    int rc = fileio_read_all(path, 4096, &meta, &len);
    if (rc == WEIR_OK)
        rc = stream__meta_decode(meta, len, &np);
    free(meta);
    c->streams++;
    char **names = NULL;
    size_t n = 0;
    int lr = list_dir(sdir, &names, &n);
    if (lr)
        return lr;
    if (rc) {
        report(c, true, "%s/" STREAM__META_FILE ": %s", sname,
               rc == WEIR_ENOTFOUND ? "missing" : "damaged");
        /* Check the partition directories that are there. */
        for (size_t i = 0; i < n; i++) {
            char *e;
            unsigned long v = strtoul(names[i], &e, 10);
            if (*e == '\0' && v < STREAM_MAX_PARTITIONS && v + 1 > np)
                np = (uint32_t)v + 1;
        }
    }
    rc = WEIR_OK;
    for (uint32_t i = 0; i < np && !rc; i++) {
        char pdir[4200];
        snprintf(pdir, sizeof(pdir), "%s/%u", sdir, i);
        rc = check_part(c, sname, i, pdir);
    }
    for (size_t i = 0; i < n; i++) {
        char *e;
        unsigned long v = strtoul(names[i], &e, 10);
        bool part = *e == '\0' && names[i][0] != '\0' && v < np;
        if (!part && strcmp(names[i], STREAM__META_FILE) != 0)
            report(c, false, "%s/%s: unknown entry", sname, names[i]);
    }
    free_list(names, n);
    return rc;
}

int stream_check_dir(const char *dir, void (*cb)(void *arg, const char *line), void *arg)
{
    return stream_check_dir_key(dir, NULL, cb, arg);
}

int stream_check_dir_key(const char *dir, const secret_key *key,
                         void (*cb)(void *arg, const char *line), void *arg)
{
    chk c = {.cb = cb, .arg = arg};
    char **names = NULL;
    size_t n = 0;
    char cpath[4200];
    struct stat csb;
    snprintf(cpath, sizeof(cpath), "%s/%s", dir, STREAM__CRYPT_FILE);
    bool encrypted = stat(cpath, &csb) == 0;
    if (encrypted && key) {
        int crc = stream__crypt_check(dir, key, false);
        if (crc == WEIR_EAUTH) {
            report(&c, true, "wrong encryption key: it is not the key this store was "
                             "encrypted with");
            return c.problems;
        }
        if (crc) {
            report(&c, true, "%s: damaged", STREAM__CRYPT_FILE);
            return c.problems;
        }
    }
    if (key && secret_key_derive(key, SECRET_PURPOSE_STREAM, &c.key))
        return WEIR_ENOMEM;
    int rc = list_dir(dir, &names, &n);
    if (rc) {
        secret_key_free(c.key);
        return rc;
    }
    for (size_t i = 0; i < n && !rc; i++) {
        char path[4096];
        struct stat sb;
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        if (strcmp(names[i], "LOCK") == 0 || strcmp(names[i], STREAM__CRYPT_FILE) == 0)
            continue;
        if (strncmp(names[i], STREAM__DELETING, strlen(STREAM__DELETING)) == 0) {
            report(&c, true, "%s: leftover of an interrupted stream delete", names[i]);
            continue;
        }
        if (stat(path, &sb) < 0 || !S_ISDIR(sb.st_mode) || !stream__name_ok(names[i])) {
            report(&c, false, "%s: not a stream", names[i]);
            continue;
        }
        rc = check_stream(&c, dir, names[i]);
    }
    free_list(names, n);
    secret_key_free(c.key);
    if (rc)
        return rc;
    char line[256];
    if (c.sealed && !key) {
        snprintf(line, sizeof(line),
                 "note: %" PRIu64 " encrypted batches checked by CRC only; give the key "
                 "(--key FILE) to decrypt and verify their records", c.sealed);
        if (cb)
            cb(arg, line);
    } else if (encrypted) {
        snprintf(line, sizeof(line), "encrypted at rest: %" PRIu64 " sealed batches decrypted "
                 "and verified", c.sealed);
        if (cb)
            cb(arg, line);
    }
    snprintf(line, sizeof(line),
             "checked %" PRIu64 " streams, %" PRIu64 " partitions, %" PRIu64 " segments, %" PRIu64
             " records: %d problem%s",
             c.streams, c.partitions, c.segments, c.records, c.problems,
             c.problems == 1 ? "" : "s");
    if (cb)
        cb(arg, line);
    return c.problems;
}
