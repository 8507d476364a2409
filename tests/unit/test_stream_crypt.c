/* test_stream_crypt.c -- encryption at rest of stream segments: round trip
 * with the key, plaintext absent from the files, refusal without the key or
 * with another key, tampered batches reported (never truncated, never
 * returned), plain segments still readable after encryption is switched on,
 * and the checker with and without the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc32c.h"
#include "base/err.h"
#include "base/secret.h"
#include "base/wlog.h"
#include "stream/streamInt.h"
#include "stream_util.h"

static const char MARKER[] = "PLAINTEXT-MARKER-4711";

static secret_key *key_n(uint8_t n)
{
    uint8_t raw[SECRET_KEY_BYTES];
    memset(raw, n, sizeof(raw));
    secret_key *k = NULL;
    assert_int_equal(secret_key_from_bytes(raw, &k), WEIR_OK);
    return k;
}

static stream_opts small_opts(void)
{
    stream_opts o;
    stream_opts_default(&o);
    o.partitions = 2;
    o.segment_bytes = 8192;
    return o;
}

/* Appends n tu records per partition, then one record with MARKER in its
 * value to partition 0 (offset n). */
static void fill(stream *s, uint64_t from, size_t n)
{
    for (uint32_t p = 0; p < 2; p++)
        for (uint64_t i = 0; i < n; i += 25)
            assert_int_equal(tu_append(s, p, from + i, n - i < 25 ? n - i : 25, false, NULL,
                                       NULL, NULL),
                             WEIR_OK);
}

static bool file_has(const char *path, const void *needle, size_t n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)sz + 1);
    size_t got = fread(b, 1, (size_t)sz, f);
    fclose(f);
    bool hit = false;
    for (size_t i = 0; !hit && i + n <= got; i++)
        hit = memcmp(b + i, needle, n) == 0;
    free(b);
    return hit;
}

/* Does any .log under dir/enc hold the bytes? */
static int logs_with(const char *dir, const void *needle, size_t n, char *last, size_t lastlen)
{
    int hits = 0, logs = 0;
    for (int p = 0; p < 2; p++) {
        char pdir[4200];
        snprintf(pdir, sizeof(pdir), "%s/enc/%d", dir, p);
        DIR *d = opendir(pdir);
        assert_non_null(d);
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            size_t l = strlen(de->d_name);
            if (l < 4 || strcmp(de->d_name + l - 4, ".log"))
                continue;
            char path[4500];
            snprintf(path, sizeof(path), "%s/%s", pdir, de->d_name);
            logs++;
            if (last && p == 0)
                snprintf(last, lastlen, "%s", path); /* some log of partition 0 */
            hits += file_has(path, needle, n);
        }
        closedir(d);
    }
    assert_true(logs > 0);
    return hits;
}

static void append_marker(stream *s)
{
    stream_rec_in in = {.key = (const uint8_t *)"k", .key_len = 1, .ts = TU_TS0,
                        .arrival = TU_TS0, .value = (const uint8_t *)MARKER,
                        .value_len = sizeof(MARKER) - 1};
    assert_int_equal(stream_append(s, 1, &in, 1, NULL, NULL, NULL), WEIR_OK);
}

static int check_lines(const char *dir, const secret_key *k, char *out, size_t outlen);

static void on_line(void *arg, const char *line)
{
    char *out = arg;
    size_t used = strlen(out);
    snprintf(out + used, 8192 - used, "%s\n", line);
}

static int check_lines(const char *dir, const secret_key *k, char *out, size_t outlen)
{
    (void)outlen;
    out[0] = '\0';
    return stream_check_dir_key(dir, k, on_line, out);
}

static void test_roundtrip_and_no_plaintext(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    secret_key *k = key_n(1);
    stream_store *st;
    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    stream_opts o = small_opts();
    stream *s;
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    fill(s, 0, 300);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_store_close(st);

    /* The first marker record goes to partition 1 at offset 300 (plain
     * tu records fill partition 1 first: offsets 0..299). */
    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    assert_int_equal(tu_read_all(s, 0, false, NULL), 300);
    assert_int_equal(tu_read_all(s, 1, false, NULL), 300);
    append_marker(s);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_reader *rd;
    stream_rec rec;
    assert_int_equal(stream_reader_open(s, 1, STREAM_POS_OFFSET, 300, &rd), WEIR_OK);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(rec.value_len, sizeof(MARKER) - 1);
    assert_memory_equal(rec.value, MARKER, sizeof(MARKER) - 1);
    stream_reader_close(rd);
    stream_store_close(st);

    /* Neither the marker nor a record value of tu_gen is in any segment. */
    assert_int_equal(logs_with(dir, MARKER, sizeof(MARKER) - 1, NULL, 0), 0);
    tu_rec r;
    tu_gen(0, 7, false, &r);
    assert_int_equal(logs_with(dir, r.value, r.value_len, NULL, 0), 0);
    assert_int_equal(logs_with(dir, r.key, r.key_len, NULL, 0), 0);

    char out[8192];
    assert_int_equal(check_lines(dir, k, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "decrypted and verified"));
    assert_int_equal(check_lines(dir, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "checked by CRC only"));
    secret_key_free(k);
    tu_rmdir(dir);
}

static void test_missing_and_wrong_key_refused(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    secret_key *k = key_n(1), *other = key_n(2);
    stream_store *st;
    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    stream_opts o = small_opts();
    stream *s;
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    fill(s, 0, 50);
    stream_store_close(st);

    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_EAUTH);
    assert_int_equal(stream_store_open_key(dir, NULL, other, &st), WEIR_EAUTH);
    char out[8192];
    assert_true(check_lines(dir, other, out, sizeof(out)) > 0);
    assert_non_null(strstr(out, "wrong encryption key"));

    /* The key check file gone: batches still refuse to be read without the
     * key, and recovery does not truncate them as if they were damage. */
    char path[4200];
    snprintf(path, sizeof(path), "%s/%s", dir, STREAM__CRYPT_FILE);
    assert_int_equal(unlink(path), 0);
    char log0[4500] = "";
    logs_with(dir, "x", 1, log0, sizeof(log0));
    struct stat before, after;
    assert_int_equal(stat(log0, &before), 0);
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_EAUTH);
    stream_store_close(st);
    assert_int_equal(stat(log0, &after), 0);
    assert_int_equal(before.st_size, after.st_size);
    /* With the right key it opens again (and writes the check file). */
    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    assert_int_equal(tu_read_all(s, 0, false, NULL), 50);
    stream_store_close(st);
    secret_key_free(k);
    secret_key_free(other);
    tu_rmdir(dir);
}

static void test_tampered_batch(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    secret_key *k = key_n(3);
    stream_store *st;
    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    stream_opts o = small_opts();
    o.segment_bytes = 1 << 20; /* one segment per partition */
    stream *s;
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    fill(s, 0, 10); /* one batch per partition */
    stream_store_close(st);

    /* Flip a ciphertext byte of the first batch and fix its CRC: only the
     * AEAD tag can tell. */
    char path[4500];
    snprintf(path, sizeof(path), "%s/enc/0/%020d.log", dir, 0);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t hdr[STREAM__BATCH_HDR];
    assert_int_equal(pread(fd, hdr, sizeof(hdr), 0), (ssize_t)sizeof(hdr));
    uint32_t len = stream__get32(hdr + 8);
    uint8_t *b = malloc(len);
    assert_int_equal(pread(fd, b, len, 0), (ssize_t)len);
    assert_int_equal(stream__get32(b + 12) >> 16, STREAM__BF_ENCRYPTED);
    b[STREAM__BATCH_HDR + SECRET_NONCE_BYTES + 5] ^= 0x40;
    stream__put32(b + 4, crc32c(b + 8, len - 8));
    assert_int_equal(pwrite(fd, b, len, 0), (ssize_t)len);
    close(fd);
    free(b);
    struct stat before, after;
    assert_int_equal(stat(path, &before), 0);

    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_EAUTH);
    stream_store_close(st);
    assert_int_equal(stat(path, &after), 0);
    assert_int_equal(before.st_size, after.st_size); /* not truncated */
    char out[8192];
    assert_true(check_lines(dir, k, out, sizeof(out)) > 0);
    assert_non_null(strstr(out, "cannot decrypt"));
    secret_key_free(k);
    tu_rmdir(dir);
}

static void test_plain_segments_stay_readable(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    secret_key *k = key_n(4);
    stream_store *st;
    stream_opts o = small_opts();
    stream *s;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    fill(s, 0, 100);
    stream_store_close(st);

    assert_int_equal(stream_store_open_key(dir, NULL, k, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "enc", &o, &s), WEIR_OK);
    fill(s, 100, 100);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(tu_read_all(s, 0, false, NULL), 200);
    assert_int_equal(tu_read_all(s, 1, false, NULL), 200);
    stream_store_close(st);
    char out[8192];
    assert_int_equal(check_lines(dir, k, out, sizeof(out)), 0);
    /* Once encrypted, the store needs the key even for its old plain part. */
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_EAUTH);
    secret_key_free(k);
    tu_rmdir(dir);
}

static void test_batch_open_rejects(void **state)
{
    (void)state;
    secret_key *k = key_n(5), *other = key_n(6);
    /* A plain batch of one record, sealed. */
    uint8_t plain[STREAM__BATCH_HDR + STREAM__REC_HDR + 4] = {0};
    stream__put64(plain + STREAM__BATCH_HDR, 42);
    stream__put32(plain + STREAM__BATCH_HDR + 20, 4);
    memcpy(plain + STREAM__BATCH_HDR + STREAM__REC_HDR, "abcd", 4);
    stream__bhdr h = {.length = sizeof(plain), .count = 1, .base = 7, .commit = 1,
                      .min_ts = 42, .max_ts = 42};
    uint8_t sealed[sizeof(plain) + SECRET_OVERHEAD], out[sizeof(plain)];
    stream__batch_seal_encrypted(k, plain, &h, sealed);
    stream__bhdr d;
    assert_int_equal(stream__bhdr_decode(sealed, &d, NULL), WEIR_OK);
    assert_true(stream__batch_crc_ok(sealed, &d));
    const char *why = NULL;
    assert_int_equal(stream__batch_open(k, sealed, &d, out, &why), WEIR_OK);
    assert_memory_equal(out + STREAM__BATCH_HDR, plain + STREAM__BATCH_HDR,
                        sizeof(plain) - STREAM__BATCH_HDR);
    assert_int_equal(stream__batch_open(other, sealed, &d, out, &why), WEIR_EAUTH);
    assert_int_equal(stream__batch_open(NULL, sealed, &d, out, &why), WEIR_EAUTH);
    /* The header is authenticated: another base offset fails the tag. */
    stream__put64(sealed + 16, 8);
    assert_int_equal(stream__bhdr_decode(sealed, &d, NULL), WEIR_OK);
    assert_int_equal(stream__batch_open(k, sealed, &d, out, &why), WEIR_EAUTH);
    secret_key_free(k);
    secret_key_free(other);
}

int main(void)
{
    wlog_set_level(WLOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_no_plaintext),
        cmocka_unit_test(test_missing_and_wrong_key_refused),
        cmocka_unit_test(test_tampered_batch),
        cmocka_unit_test(test_plain_segments_stay_readable),
        cmocka_unit_test(test_batch_open_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
