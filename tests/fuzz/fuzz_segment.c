/* fuzz_segment.c -- segment and index files as they come off a disk that
 * lost, flipped or invented bytes: the checker, recovery and every reader
 * position must never crash, hang or leak, and must never return a record
 * that is not in a valid batch.
 *
 * Input: u8 flags | u16 idx_len | idx bytes | u16 tix_len | tix bytes | log
 * bytes (lengths little-endian, cut to what is there). The log becomes
 * <tmp>/f/0/<base>.log of a one-partition stream "f", with a valid
 * stream.meta; flags bit 0 writes the .idx, bit 1 the .tix, bit 2 names the
 * segment base 1000 instead of 0, bit 3 adds a second (empty) segment after
 * it, bit 4 recomputes the CRC of every batch the log starts with (so that
 * mutated records get past the checksum and reach the structure checks,
 * without a fuzzing switch in the store's code). Then: stream_check_dir, open (recovery), read
 * everything from the earliest record and from positions derived from the input, append and read
 * again, close.
 *
 * Oracle: with no index files given, recovery rebuilds the indexes from the
 * log alone and truncates at the first invalid batch, so afterwards
 * stream_check_dir must find nothing at all.
 *
 * Seeds in tests/fuzz/corpus/fuzz_segment/ come from real segments written
 * by the store (test_stream_corrupt.c, test_fuzz_seeds, with
 * WEIR_FUZZ_SEED_DIR set).
 */
#include "base/crc32c.h"
#include "base/err.h"
#include "base/fileio.h"
#include "base/wlog.h"
#include "stream/store.h"
#include "stream/streamInt.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_dir[64];

static void remove_dir(void)
{
    stream__remove_tree(g_dir);
}

static void put_file(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
    if (fd < 0)
        abort();
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0)
            abort();
        p += w;
        n -= (size_t)w;
    }
    close(fd);
}

static size_t take(const uint8_t **p, size_t *left, size_t want, const uint8_t **out)
{
    size_t n = want < *left ? want : *left;
    *out = *p;
    *p += n;
    *left -= n;
    return n;
}

static size_t take_len(const uint8_t **p, size_t *left)
{
    const uint8_t *b;
    if (take(p, left, 2, &b) < 2)
        return 0;
    return (size_t)b[0] | (size_t)b[1] << 8;
}

/* Reads at most `budget` records; checks offsets never go backwards. */
static void drain(stream_reader *rd, int budget)
{
    stream_rec rec;
    uint64_t last = 0;
    bool any = false;
    int corrupt = 0;
    while (budget-- > 0) {
        int rc = stream_reader_next(rd, &rec);
        if (rc == WEIR_ECORRUPT) {
            if (++corrupt > 10000)
                abort(); /* skipping must make progress */
            continue;
        }
        if (rc)
            break;
        if (any && rec.offset <= last)
            abort();
        any = true;
        last = rec.offset;
        /* Touch every byte the reader hands out. */
        volatile uint8_t x = 0;
        for (uint32_t i = 0; i < rec.key_len; i++)
            x ^= rec.key[i];
        for (uint32_t i = 0; i < rec.value_len; i++)
            x ^= rec.value[i];
        (void)x;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_dir[0]) {
        wlog_set_level(WLOG_OFF);
        /* tmpfs when there is one: the store fsyncs, and that is slow on disk. */
        struct stat sb;
        const char *root = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
        snprintf(g_dir, sizeof(g_dir), "%s/weir-fuzz-segment-XXXXXX", root);
        if (!mkdtemp(g_dir))
            abort();
        atexit(remove_dir);
    }
    char path[256];
    stream__remove_tree(g_dir);
    snprintf(path, sizeof(path), "%s/f/0", g_dir);
    if (fileio_mkdirs(path))
        abort();

    const uint8_t *p = data, *b;
    size_t left = size;
    uint8_t flags = take(&p, &left, 1, &b) ? b[0] : 0;
    const uint8_t *idx, *tix, *log;
    size_t ni = take(&p, &left, take_len(&p, &left), &idx);
    size_t nt = take(&p, &left, take_len(&p, &left), &tix);
    size_t nl = take(&p, &left, left, &log);
    uint64_t base = flags & 4 ? 1000 : 0;
    uint8_t *fixed = NULL;
    if ((flags & 16) && nl) {
        fixed = malloc(nl);
        memcpy(fixed, log, nl);
        for (size_t pos = 0; nl - pos >= STREAM__BATCH_HDR;) {
            uint8_t *h = fixed + pos;
            uint32_t len = stream__get32(h + 8);
            if (stream__get32(h) != STREAM__BATCH_MAGIC || len < STREAM__BATCH_HDR ||
                len > nl - pos)
                break;
            stream__put32(h + 4, crc32c(h + 8, len - 8));
            pos += len;
        }
        log = fixed;
    }

    uint8_t meta[STREAM__META_LEN];
    stream__meta_encode(meta, 1);
    snprintf(path, sizeof(path), "%s/f/" STREAM__META_FILE, g_dir);
    put_file(path, meta, sizeof(meta));
    snprintf(path, sizeof(path), "%s/f/0", g_dir);
    char file[300];
    stream__seg_path(file, sizeof(file), path, base, ".log");
    put_file(file, log, nl);
    if (flags & 1) {
        stream__seg_path(file, sizeof(file), path, base, ".idx");
        put_file(file, idx, ni);
    }
    if (flags & 2) {
        stream__seg_path(file, sizeof(file), path, base, ".tix");
        put_file(file, tix, nt);
    }
    if (flags & 8) {
        stream__seg_path(file, sizeof(file), path, base + 5, ".log");
        put_file(file, NULL, 0);
    }

    stream_check_dir(g_dir, NULL, NULL);

    stream_store *st;
    if (stream_store_open(g_dir, NULL, &st))
        abort();
    stream_opts o;
    stream_opts_default(&o);
    o.sync = STREAM_SYNC_NONE;
    o.segment_bytes = 4096;
    stream *s;
    int rc = stream_open(st, "f", &o, &s);
    if (rc) {
        free(fixed);
        stream_store_close(st);
        return 0;
    }
    uint64_t start = stream_start_offset(s, 0), end = stream_end_offset(s, 0);
    if (start > end)
        abort();
    stream_reader *rd;
    if (stream_reader_open(s, 0, STREAM_POS_EARLIEST, 0, &rd) == 0) {
        drain(rd, 100000);
        stream_reader_close(rd);
    }
    int64_t t = nl >= 48 ? (int64_t)stream__get64(log + 40) : 0;
    free(fixed);
    if (stream_reader_open(s, 0, STREAM_POS_TIME, t, &rd) == 0) {
        drain(rd, 100000);
        stream_reader_close(rd);
    }
    if (stream_reader_open(s, 0, STREAM_POS_OFFSET, (int64_t)(start + (end - start) / 2), &rd) ==
        0) {
        drain(rd, 100000);
        stream_reader_close(rd);
    }
    stream_rec_in in = {.key = (const uint8_t *)"k",
                        .key_len = 1,
                        .ts = t,
                        .value = (const uint8_t *)"value",
                        .value_len = 5};
    uint64_t off;
    if (stream_append(s, 0, &in, 1, NULL, NULL, &off) == 0) {
        if (off != end)
            abort();
        if (stream_store_flush(st))
            abort();
        if (stream_reader_open(s, 0, STREAM_POS_OFFSET, (int64_t)off, &rd) == 0) {
            stream_rec rec;
            if (stream_reader_next(rd, &rec) != 0 || rec.offset != off || rec.value_len != 5)
                abort();
            stream_reader_close(rd);
        }
    }
    stream_store_close(st);
    if (!(flags & 3) && stream_check_dir(g_dir, NULL, NULL) != 0)
        abort(); /* recovery left something the checker does not accept */
    return 0;
}
