/* test_secret.c -- base/secret.c: key files, subkeys, sealing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/secret.h"
#include "base/wlog.h"

static char g_dir[64];

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", g_dir, name);
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
    chmod(path, 0600);
}

static void test_seal_open(void **state)
{
    (void)state;
    uint8_t raw[32];
    memset(raw, 7, sizeof(raw));
    secret_key *m, *a, *b;
    assert_int_equal(secret_key_from_bytes(raw, &m), WEIR_OK);
    assert_int_equal(secret_key_derive(m, SECRET_PURPOSE_STREAM, &a), WEIR_OK);
    assert_int_equal(secret_key_derive(m, SECRET_PURPOSE_CATALOG, &b), WEIR_OK);
    const uint8_t msg[] = "the reading is 42.5";
    uint8_t sealed[sizeof(msg) + SECRET_OVERHEAD], sealed2[sizeof(msg) + SECRET_OVERHEAD];
    uint8_t out[sizeof(msg)];
    assert_int_equal(secret_seal(a, (const uint8_t *)"ad", 2, msg, sizeof(msg), sealed), WEIR_OK);
    assert_int_equal(secret_seal(a, (const uint8_t *)"ad", 2, msg, sizeof(msg), sealed2), WEIR_OK);
    assert_memory_not_equal(sealed, sealed2, sizeof(sealed)); /* random nonces */
    assert_int_equal(secret_open(a, (const uint8_t *)"ad", 2, sealed, sizeof(sealed), out),
                     WEIR_OK);
    assert_memory_equal(out, msg, sizeof(msg));
    /* Another subkey, other associated data, a flipped bit, too short. */
    assert_int_equal(secret_open(b, (const uint8_t *)"ad", 2, sealed, sizeof(sealed), out),
                     WEIR_EAUTH);
    assert_int_equal(secret_open(a, (const uint8_t *)"AD", 2, sealed, sizeof(sealed), out),
                     WEIR_EAUTH);
    sealed[30] ^= 1;
    assert_int_equal(secret_open(a, (const uint8_t *)"ad", 2, sealed, sizeof(sealed), out),
                     WEIR_EAUTH);
    assert_int_equal(secret_open(a, NULL, 0, sealed, SECRET_OVERHEAD - 1, out),
                     WEIR_EMALFORMED);
    /* Whole files. */
    uint8_t *f = NULL, *g = NULL;
    size_t fl = 0, gl = 0;
    assert_int_equal(secret_file_seal(a, msg, sizeof(msg), &f, &fl), WEIR_OK);
    assert_true(secret_file_sealed(f, fl));
    assert_false(secret_file_sealed(msg, sizeof(msg)));
    assert_int_equal(secret_file_open(a, f, fl, &g, &gl), WEIR_OK);
    assert_int_equal(gl, sizeof(msg));
    assert_memory_equal(g, msg, gl);
    free(g);
    assert_int_equal(secret_file_open(b, f, fl, &g, &gl), WEIR_EAUTH);
    free(f);
    /* Key check values differ between keys and do not contain the key. */
    uint8_t c1[SECRET_CHECK_BYTES], c2[SECRET_CHECK_BYTES];
    assert_int_equal(secret_key_check_value(m, c1), WEIR_OK);
    assert_int_equal(secret_key_check_value(a, c2), WEIR_OK);
    assert_memory_not_equal(c1, c2, sizeof(c1));
    secret_key_free(a);
    secret_key_free(b);
    secret_key_free(m);
}

static void test_key_files(void **state)
{
    (void)state;
    char p[128], err[256];
    secret_key *k = NULL, *k2 = NULL;
    uint8_t raw[32], s1[64], s2[64], o[24];
    for (int i = 0; i < 32; i++)
        raw[i] = (uint8_t)(i * 37 + 1);
    path_of(p, sizeof(p), "raw.key");
    write_file(p, raw, sizeof(raw));
    assert_int_equal(secret_key_load(p, &k, err, sizeof(err)), WEIR_OK);
    char hex[80];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02X", raw[i]);
    strcat(hex, "\n");
    path_of(p, sizeof(p), "hex.key");
    write_file(p, hex, strlen(hex));
    assert_int_equal(secret_key_load(p, &k2, err, sizeof(err)), WEIR_OK);
    /* Same key: what one seals the other opens. */
    memset(s1, 0, sizeof(s1));
    assert_int_equal(secret_seal(k, NULL, 0, s2, 24, s1), WEIR_OK);
    assert_int_equal(secret_open(k2, NULL, 0, s1, 24 + SECRET_OVERHEAD, o), WEIR_OK);
    secret_key_free(k);
    secret_key_free(k2);

    path_of(p, sizeof(p), "short.key");
    write_file(p, raw, 31);
    assert_int_equal(secret_key_load(p, &k, err, sizeof(err)), WEIR_EINVAL);
    assert_non_null(strstr(err, "32 raw bytes or 64 hex digits"));
    hex[5] = 'g';
    path_of(p, sizeof(p), "badhex.key");
    write_file(p, hex, strlen(hex));
    assert_int_equal(secret_key_load(p, &k, err, sizeof(err)), WEIR_EINVAL);
    path_of(p, sizeof(p), "missing.key");
    assert_int_equal(secret_key_load(p, &k, err, sizeof(err)), WEIR_EIO);

    path_of(p, sizeof(p), "gen.key");
    assert_int_equal(secret_key_generate(p, err, sizeof(err)), WEIR_OK);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_size, 32);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(secret_key_generate(p, err, sizeof(err)), WEIR_EEXIST);
    assert_int_equal(secret_key_load(p, &k, err, sizeof(err)), WEIR_OK);
    secret_key_free(k);
}

static int setup(void **state)
{
    (void)state;
    snprintf(g_dir, sizeof(g_dir), "/tmp/weir-secret-XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    wlog_set_level(WLOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_key_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
