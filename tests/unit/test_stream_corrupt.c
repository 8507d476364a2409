/* test_stream_corrupt.c -- damaged files: what stream_check_dir reports,
 * what recovery does about it (the rule in segment.c), and that readers
 * never return a damaged record.
 *
 * Each case builds a store whose last appends are single batches of known
 * size (offline mode, a flush after each append), damages it the way a
 * crash or a disk would, checks that stream_check_dir sees the damage,
 * reopens, verifies what is readable, and checks again.
 *
 * test_fuzz_seeds also writes the seed corpus of tests/fuzz/fuzz_segment.c
 * when WEIR_FUZZ_SEED_DIR names a directory (the format is described there).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/fileio.h"
#include "base/wlog.h"
#include "stream/store.h"
#include "stream/streamInt.h"
#include "stream_util.h"

#define LAST_BATCH 7 /* records in the last append (one batch) */

typedef struct lines {
    char text[64][256];
    int n;
} lines;

static void collect(void *arg, const char *line)
{
    lines *l = arg;
    if (l->n < 64)
        snprintf(l->text[l->n++], sizeof(l->text[0]), "%s", line);
}

static bool has_line(const lines *l, const char *needle)
{
    for (int i = 0; i < l->n; i++)
        if (strstr(l->text[i], needle))
            return true;
    return false;
}

static int check(const char *dir, lines *l)
{
    memset(l, 0, sizeof(*l));
    return stream_check_dir(dir, collect, l);
}

static stream_opts copts(void)
{
    stream_opts o;
    stream_opts_default(&o);
    o.sync = STREAM_SYNC_NONE;
    o.segment_bytes = 64 << 10;
    return o;
}

/* A stream "c" of one partition with `n` records in batches of 10, ending
 * with one batch of LAST_BATCH records. Returns the total. */
static uint64_t build(const char *dir, uint64_t n, bool scramble)
{
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = copts();
    stream *s;
    assert_int_equal(stream_open(st, "c", &o, &s), WEIR_OK);
    uint64_t off = 0;
    while (off < n) {
        assert_int_equal(tu_append(s, 0, off, 10, scramble, NULL, NULL, NULL), WEIR_OK);
        off += 10;
        if (off % 50 == 0)
            assert_int_equal(stream_store_flush(st), WEIR_OK);
    }
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(tu_append(s, 0, off, LAST_BATCH, scramble, NULL, NULL, NULL), WEIR_OK);
    off += LAST_BATCH;
    stream_store_close(st);
    lines l;
    assert_int_equal(check(dir, &l), 0);
    return off;
}

/* Path of the nth newest segment file with extension ext (0 = newest). */
static void seg_file(const char *dir, int nth, const char *ext, char *out, size_t n)
{
    char pdir[4200];
    snprintf(pdir, sizeof(pdir), "%s/c/0", dir);
    DIR *d = opendir(pdir);
    assert_non_null(d);
    uint64_t bases[256];
    int nb = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        if (len == 24 && strcmp(de->d_name + 20, ".log") == 0 && nb < 256)
            bases[nb++] = strtoull(de->d_name, NULL, 10);
    }
    closedir(d);
    for (int i = 0; i < nb; i++)
        for (int j = i + 1; j < nb; j++)
            if (bases[j] > bases[i]) {
                uint64_t t = bases[i];
                bases[i] = bases[j];
                bases[j] = t;
            }
    assert_true(nth < nb);
    stream__seg_path(out, n, pdir, bases[nth], ext);
}

static off_t file_size(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_size;
}

static void flip_byte(const char *path, off_t at)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

static void append_bytes(const char *path, const uint8_t *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, p, n), (ssize_t)n);
    close(fd);
}

/* Reopens, checks the end offset and every record, appends a bit more,
 * closes, and expects a clean check. */
static void reopen_verify(const char *dir, uint64_t want_end, bool scramble)
{
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = copts();
    stream *s;
    assert_int_equal(stream_open(st, "c", &o, &s), WEIR_OK);
    assert_int_equal(stream_end_offset(s, 0), want_end);
    assert_int_equal(tu_read_all(s, 0, scramble, NULL), (int64_t)want_end);
    assert_int_equal(tu_append(s, 0, want_end, 5, scramble, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(tu_read_all(s, 0, scramble, NULL), (int64_t)want_end + 5);
    stream_store_close(st);
    lines l;
    int problems = check(dir, &l);
    for (int i = 0; problems && i < l.n; i++)
        print_message("%s\n", l.text[i]);
    assert_int_equal(problems, 0);
}

static void test_truncated_tail(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 300, false);
    char path[4300];
    seg_file(dir, 0, ".log", path, sizeof(path));
    assert_int_equal(truncate(path, file_size(path) - 7), 0);
    lines l;
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "invalid batch"));
    reopen_verify(dir, n - LAST_BATCH, false);
    tu_rmdir(dir);
}

static void test_bitflip_tail(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 300, false);
    char path[4300];
    seg_file(dir, 0, ".log", path, sizeof(path));
    flip_byte(path, file_size(path) - 3); /* inside the last record's value */
    lines l;
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "CRC mismatch"));
    /* Before recovery a reader stops at the bad batch and never returns it. */
    reopen_verify(dir, n - LAST_BATCH, false);
    tu_rmdir(dir);
}

static void test_garbage_and_zeros_appended(void **state)
{
    (void)state;
    for (int zeros = 0; zeros < 2; zeros++) {
        char *dir = tu_tmpdir();
        uint64_t n = build(dir, 200, false);
        char path[4300];
        seg_file(dir, 0, ".log", path, sizeof(path));
        uint8_t junk[3000];
        for (size_t i = 0; i < sizeof(junk); i++)
            junk[i] = zeros ? 0 : (uint8_t)tu_mix(i);
        if (!zeros) {
            /* Garbage that starts like a batch header. */
            stream__put32(junk, STREAM__BATCH_MAGIC);
        }
        append_bytes(path, junk, sizeof(junk));
        lines l;
        assert_true(check(dir, &l) > 0);
        reopen_verify(dir, n, false);
        tu_rmdir(dir);
    }
}

static void test_deleted_indexes(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 3000, true); /* several segments */
    char path[4300];
    int deleted = 0;
    for (int i = 0;; i++) {
        char probe[4300];
        char pdir[4200];
        snprintf(pdir, sizeof(pdir), "%s/c/0", dir);
        DIR *d = opendir(pdir);
        int nlogs = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL)
            nlogs += strlen(de->d_name) == 24 && strcmp(de->d_name + 20, ".log") == 0;
        closedir(d);
        if (i >= nlogs)
            break;
        seg_file(dir, i, ".idx", path, sizeof(path));
        assert_int_equal(unlink(path), 0);
        seg_file(dir, i, ".tix", probe, sizeof(probe));
        assert_int_equal(unlink(probe), 0);
        deleted++;
    }
    assert_true(deleted >= 3);
    lines l;
    assert_true(check(dir, &l) >= deleted);
    assert_true(has_line(&l, "missing"));
    reopen_verify(dir, n, true);

    /* Seeks through the rebuilt indexes. */
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = copts();
    stream *s;
    assert_int_equal(stream_open(st, "c", &o, &s), WEIR_OK);
    for (uint64_t off = 0; off < n; off += 211) {
        stream_reader *rd;
        stream_rec rec;
        assert_int_equal(stream_reader_open(s, 0, STREAM_POS_OFFSET, (int64_t)off, &rd), 0);
        assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
        assert_int_equal(rec.offset, off);
        assert_true(tu_match(&rec, true));
        stream_reader_close(rd);
    }
    stream_store_close(st);
    tu_rmdir(dir);
}

static void test_damaged_index(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 400, false);
    char path[4300];
    seg_file(dir, 0, ".idx", path, sizeof(path));
    assert_true(file_size(path) >= 3 * STREAM__IDX_ENTRY);
    /* Point the second entry into the middle of a batch. */
    flip_byte(path, STREAM__IDX_ENTRY + 4);
    lines l;
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "index entry"));
    reopen_verify(dir, n, false);
    /* An index longer than the log (entries for lost batches). */
    seg_file(dir, 0, ".idx", path, sizeof(path));
    uint8_t e[STREAM__IDX_ENTRY];
    stream__put32(e, 1u << 30);
    stream__put32(e + 4, 1u << 30);
    append_bytes(path, e, sizeof(e));
    assert_true(check(dir, &l) > 0);
    reopen_verify(dir, n + 5, false);
    tu_rmdir(dir);
}

/* Damage in the middle of an older segment is not repaired at open (it
 * would take reading everything): a reader reports it once and goes on
 * after it, and the checker keeps reporting it. */
static void test_middle_damage(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 3000, false);
    char path[4300];
    seg_file(dir, 2, ".log", path, sizeof(path));
    flip_byte(path, 100);
    lines l;
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "CRC mismatch"));

    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = copts();
    stream *s;
    assert_int_equal(stream_open(st, "c", &o, &s), WEIR_OK);
    assert_int_equal(stream_end_offset(s, 0), n);
    stream_reader *rd;
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_EARLIEST, 0, &rd), WEIR_OK);
    stream_rec rec;
    uint64_t expect = 0, good = 0;
    int corrupt = 0, rc;
    while ((rc = stream_reader_next(rd, &rec)) != WEIR_EAGAIN) {
        if (rc == WEIR_ECORRUPT) {
            corrupt++;
            assert_true(corrupt < 3);
            continue;
        }
        assert_int_equal(rc, WEIR_OK);
        assert_true(rec.offset >= expect); /* a gap only after the damage */
        if (rec.offset != expect)
            assert_int_equal(corrupt, 1);
        assert_true(tu_match(&rec, false));
        expect = rec.offset + 1;
        good++;
    }
    assert_int_equal(corrupt, 1);
    assert_int_equal(expect, n);
    assert_true(good < n && good > n - 200);
    stream_reader_close(rd);
    stream_store_close(st);
    assert_true(check(dir, &l) > 0);
    tu_rmdir(dir);
}

static void test_gap_quarantines(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 3000, false);
    (void)n;
    char path[4300];
    seg_file(dir, 1, ".log", path, sizeof(path));
    uint64_t base = strtoull(strrchr(path, '/') + 1, NULL, 10);
    seg_file(dir, 2, ".log", path, sizeof(path));
    assert_int_equal(unlink(path), 0); /* a hole before the last two */
    uint64_t hole = strtoull(strrchr(path, '/') + 1, NULL, 10);
    lines l;
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "gap"));
    assert_true(has_line(&l, "index without a segment"));
    reopen_verify(dir, hole, false);
    /* The cut-off segments are kept aside, reported as notes. */
    assert_int_equal(check(dir, &l), 0);
    assert_true(has_line(&l, "quarantined"));
    (void)base;
    tu_rmdir(dir);
}

static void test_meta_and_leftovers(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 100, false);
    char path[4300];
    /* Leftovers of an atomic write and of a deleted segment. */
    snprintf(path, sizeof(path), "%s/c/0/00000000000000000099.idx.tmp", dir);
    int fd = open(path, O_CREAT | O_WRONLY, 0640);
    close(fd);
    snprintf(path, sizeof(path), "%s/c/0/00000000000000999999.tix", dir);
    fd = open(path, O_CREAT | O_WRONLY, 0640);
    close(fd);
    lines l;
    assert_int_equal(check(dir, &l), 2);
    reopen_verify(dir, n, false);

    /* Data without a stream.meta is refused, not guessed at. */
    snprintf(path, sizeof(path), "%s/c/" STREAM__META_FILE, dir);
    assert_int_equal(unlink(path), 0);
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "stream.meta: missing"));
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = copts();
    stream *s;
    assert_int_equal(stream_open(st, "c", &o, &s), WEIR_ECORRUPT);
    stream_store_close(st);
    tu_rmdir(dir);
}

/* A reader opened by time and by offset on a store whose last segment's
 * index lags far behind the log (as after a crash with a large unindexed
 * tail): recovery re-indexes it. */
static void test_index_lag(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t n = build(dir, 2000, true);
    char path[4300];
    seg_file(dir, 0, ".idx", path, sizeof(path));
    assert_int_equal(truncate(path, STREAM__IDX_ENTRY), 0);
    seg_file(dir, 0, ".tix", path, sizeof(path));
    assert_int_equal(truncate(path, STREAM__TIX_ENTRY), 0);
    lines l;
    assert_true(check(dir, &l) > 0);
    assert_true(has_line(&l, "index lacks"));
    reopen_verify(dir, n, true);
    tu_rmdir(dir);
}

/* ---- Fuzz seeds -------------------------------------------------------------------- */

static size_t read_file(const char *path, uint8_t *buf, size_t cap)
{
    uint8_t *p = NULL;
    size_t n = 0;
    if (fileio_read_all(path, cap, &p, &n))
        return 0;
    memcpy(buf, p, n);
    free(p);
    return n;
}

/* Fuzz input: u8 flags | u16 idx_len | idx | u16 tix_len | tix | log. */
static void write_seed(const char *out_dir, const char *name, const char *store_dir, int nth,
                       uint8_t flags, size_t log_cut)
{
    static uint8_t log[1 << 20], idx[1 << 16], tix[1 << 16], out[(1 << 20) + (1 << 17)];
    char path[4300];
    seg_file(store_dir, nth, ".log", path, sizeof(path));
    size_t nl = read_file(path, log, sizeof(log));
    seg_file(store_dir, nth, ".idx", path, sizeof(path));
    size_t ni = read_file(path, idx, sizeof(idx));
    seg_file(store_dir, nth, ".tix", path, sizeof(path));
    size_t nt = read_file(path, tix, sizeof(tix));
    assert_true(nl > 0);
    if (log_cut && log_cut < nl)
        nl = log_cut;
    if (!(flags & 1))
        ni = 0;
    if (!(flags & 2))
        nt = 0;
    size_t o = 0;
    out[o++] = flags;
    out[o++] = (uint8_t)ni;
    out[o++] = (uint8_t)(ni >> 8);
    memcpy(out + o, idx, ni);
    o += ni;
    out[o++] = (uint8_t)nt;
    out[o++] = (uint8_t)(nt >> 8);
    memcpy(out + o, tix, nt);
    o += nt;
    memcpy(out + o, log, nl);
    o += nl;
    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    assert_int_equal(fileio_write_atomic(path, out, o), WEIR_OK);
}

static void test_fuzz_seeds(void **state)
{
    (void)state;
    const char *out = getenv("WEIR_FUZZ_SEED_DIR");
    char *tmp = tu_tmpdir();
    if (!out)
        out = tmp;
    char *a = tu_tmpdir(), *b = tu_tmpdir();
    build(a, 60, false);
    build(b, 300, true);
    write_seed(out, "small-with-index", a, 0, 3, 0);
    write_seed(out, "small-no-index", a, 0, 0, 0);
    write_seed(out, "small-torn", a, 0, 0, 700);
    write_seed(out, "scrambled-with-index", b, 0, 3, 0);
    write_seed(out, "scrambled-idx-only", b, 0, 1, 0);
    write_seed(out, "scrambled-torn", b, 0, 3, 5000);
    write_seed(out, "small-fix-crc", a, 0, 16, 0);
    write_seed(out, "scrambled-fix-crc-two-segments", b, 0, 16 | 8 | 3, 0);
    DIR *d = opendir(out);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        n += de->d_name[0] != '.';
    closedir(d);
    assert_true(n >= 8);
    tu_rmdir(a);
    tu_rmdir(b);
    tu_rmdir(tmp);
}

int main(void)
{
    wlog_set_level(WLOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_truncated_tail),
        cmocka_unit_test(test_bitflip_tail),
        cmocka_unit_test(test_garbage_and_zeros_appended),
        cmocka_unit_test(test_deleted_indexes),
        cmocka_unit_test(test_damaged_index),
        cmocka_unit_test(test_middle_damage),
        cmocka_unit_test(test_gap_quarantines),
        cmocka_unit_test(test_meta_and_leftovers),
        cmocka_unit_test(test_index_lag),
        cmocka_unit_test(test_fuzz_seeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
