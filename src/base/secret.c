/* secret.c -- see secret.h. */
#include "base/secret.h"
#include "base/err.h"
#include "base/wlog.h"

#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct secret_key {
    uint8_t k[SECRET_KEY_BYTES];
};

/* crypto_kdf contexts are exactly 8 characters. */
static const char KDF_CONTEXT[crypto_kdf_CONTEXTBYTES + 1] = "weir-key";

int secret_init(void)
{
    return sodium_init() < 0 ? WEIR_EINTERNAL : WEIR_OK;
}

static secret_key *key_alloc(void)
{
    if (secret_init())
        return NULL;
    return sodium_malloc(sizeof(secret_key));
}

int secret_key_from_bytes(const uint8_t raw[SECRET_KEY_BYTES], secret_key **out)
{
    secret_key *k = key_alloc();
    if (!k)
        return WEIR_ENOMEM;
    memcpy(k->k, raw, SECRET_KEY_BYTES);
    *out = k;
    return WEIR_OK;
}

void secret_key_free(secret_key *k)
{
    if (k)
        sodium_free(k); /* wipes */
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int secret_key_load(const char *path, secret_key **out, char *err, size_t errlen)
{
    uint8_t raw[80];
    int rc = WEIR_EIO;
    secret_key *k = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return WEIR_EIO;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && (st.st_mode & 077))
        wlog_warn("secret", "key_file_mode",
                  "path=%s mode=%03o note=\"the key file is readable by others; chmod 600\"",
                  path, (unsigned)(st.st_mode & 0777));
    size_t n = 0;
    while (n < sizeof(raw)) {
        ssize_t r = read(fd, raw + n, sizeof(raw) - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            goto cleanup;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    rc = WEIR_EINVAL;
    if (!(k = key_alloc())) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    if (n == SECRET_KEY_BYTES) {
        memcpy(k->k, raw, SECRET_KEY_BYTES);
    } else {
        size_t m = n;
        while (m > 0 && (raw[m - 1] == '\n' || raw[m - 1] == '\r'))
            m--;
        if (m != 2 * SECRET_KEY_BYTES) {
            snprintf(err, errlen,
                     "key file %s must hold 32 raw bytes or 64 hex digits (has %zu bytes)", path,
                     n);
            goto cleanup;
        }
        for (size_t i = 0; i < SECRET_KEY_BYTES; i++) {
            int hi = hexval(raw[2 * i]), lo = hexval(raw[2 * i + 1]);
            if (hi < 0 || lo < 0) {
                snprintf(err, errlen, "key file %s: not hexadecimal", path);
                goto cleanup;
            }
            k->k[i] = (uint8_t)(hi << 4 | lo);
        }
    }
    *out = k;
    k = NULL;
    rc = WEIR_OK;
cleanup:
    sodium_memzero(raw, sizeof(raw));
    secret_key_free(k);
    close(fd);
    return rc;
}

int secret_key_derive(const secret_key *master, secret_purpose p, secret_key **out)
{
    secret_key *k = key_alloc();
    if (!k)
        return WEIR_ENOMEM;
    crypto_kdf_derive_from_key(k->k, SECRET_KEY_BYTES, (uint64_t)p, KDF_CONTEXT, master->k);
    *out = k;
    return WEIR_OK;
}

int secret_key_generate(const char *path, char *err, size_t errlen)
{
    if (secret_init()) {
        snprintf(err, errlen, "libsodium initialisation failed");
        return WEIR_EINTERNAL;
    }
    uint8_t raw[SECRET_KEY_BYTES];
    randombytes_buf(raw, sizeof(raw));
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        sodium_memzero(raw, sizeof(raw));
        snprintf(err, errlen, "cannot create %s: %s", path, strerror(e));
        return e == EEXIST ? WEIR_EEXIST : WEIR_EIO;
    }
    ssize_t w = write(fd, raw, sizeof(raw));
    sodium_memzero(raw, sizeof(raw));
    if (w != (ssize_t)sizeof(raw) || fsync(fd)) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return WEIR_EIO;
    }
    close(fd);
    return WEIR_OK;
}

int secret_key_check_value(const secret_key *master, uint8_t out[SECRET_CHECK_BYTES])
{
    secret_key *c = NULL;
    int rc = secret_key_derive(master, SECRET_PURPOSE_CHECK, &c);
    if (rc)
        return rc;
    static const char msg[] = "weir key check v1";
    crypto_generichash(out, SECRET_CHECK_BYTES, (const uint8_t *)msg, sizeof(msg) - 1, c->k,
                       SECRET_KEY_BYTES);
    secret_key_free(c);
    return WEIR_OK;
}

int secret_seal(const secret_key *k, const uint8_t *ad, size_t adlen, const uint8_t *in,
                size_t n, uint8_t *out)
{
    randombytes_buf(out, SECRET_NONCE_BYTES);
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + SECRET_NONCE_BYTES, &clen, in, n, ad, adlen,
                                               NULL, out, k->k);
    return WEIR_OK;
}

int secret_open(const secret_key *k, const uint8_t *ad, size_t adlen, const uint8_t *in,
                size_t n, uint8_t *out)
{
    if (n < SECRET_OVERHEAD)
        return WEIR_EMALFORMED;
    unsigned long long plen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &plen, NULL, in + SECRET_NONCE_BYTES,
                                                   n - SECRET_NONCE_BYTES, ad, adlen, in, k->k))
        return WEIR_EAUTH;
    return WEIR_OK;
}

int secret_file_sealed(const uint8_t *d, size_t n)
{
    return n >= 4 && !memcmp(d, SECRET_FILE_MAGIC, 4);
}

int secret_file_seal(const secret_key *k, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *outlen)
{
    uint8_t *o = malloc(4 + n + SECRET_OVERHEAD);
    if (!o)
        return WEIR_ENOMEM;
    memcpy(o, SECRET_FILE_MAGIC, 4);
    secret_seal(k, o, 4, in, n, o + 4);
    *out = o;
    *outlen = 4 + n + SECRET_OVERHEAD;
    return WEIR_OK;
}

int secret_file_open(const secret_key *k, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *outlen)
{
    if (!secret_file_sealed(in, n) || n < 4 + SECRET_OVERHEAD)
        return WEIR_EMALFORMED;
    size_t m = n - 4 - SECRET_OVERHEAD;
    uint8_t *o = malloc(m ? m : 1);
    if (!o)
        return WEIR_ENOMEM;
    int rc = secret_open(k, in, 4, in + 4, n - 4, o);
    if (rc) {
        free(o);
        return rc;
    }
    *out = o;
    *outlen = m;
    return WEIR_OK;
}
