/* fuzz_tls_session.c -- what a TLS peer can send to the MQTT/TLS listener,
 * through the memory-BIO session of net/tls.c: ClientHellos, records,
 * alerts and garbage, cut anywhere. The session must never crash, leak,
 * hand out more plaintext than asked, or report a completed handshake with
 * a client certificate it did not verify.
 *
 * Input: u8 cut | bytes. The bytes are pushed in pieces of 1 + cut % 97
 * bytes, and after each piece the session is read until it wants more (as
 * tcp.c does after each read). Pending ciphertext (alerts, a ServerHello) is
 * drained into a bounded buffer as the transport would.
 *
 * The server certificate and key are made in memory at start (P-256,
 * self-signed) and written to a temporary directory for net_tls_new;
 * verify_client is "optional" with that certificate as the CA, so the
 * certificate-handling paths run too.
 *
 * Seeds: tests/fuzz/corpus/fuzz_tls_session/ (ClientHellos of TLS 1.2 and
 * 1.3 made by tests/fuzz/make_tls_seeds.py with Python's ssl module).
 */
#include "base/buf.h"
#include "base/err.h"
#include "base/wlog.h"
#include "net/tls.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static net_tls *g_tls;
static char g_dir[64];

static void write_pem(const char *path, EVP_PKEY *k, X509 *x)
{
    FILE *f = fopen(path, "w");
    if (!f)
        abort();
    if (k ? !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL) : !PEM_write_X509(f, x))
        abort();
    fclose(f);
}

static void cleanup(void)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/cert.pem", g_dir);
    unlink(p);
    snprintf(p, sizeof(p), "%s/key.pem", g_dir);
    unlink(p);
    rmdir(g_dir);
    net_tls_free(g_tls);
}

static void setup(void)
{
    wlog_set_level(WLOG_OFF);
    snprintf(g_dir, sizeof(g_dir), "/tmp/weir-fuzz-tls-XXXXXX");
    if (!mkdtemp(g_dir))
        abort();
    EVP_PKEY *k = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    if (!k || !x)
        abort();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
    X509_set_pubkey(x, k);
    X509_NAME *n = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1, 0);
    X509_set_issuer_name(x, n);
    if (!X509_sign(x, k, EVP_sha256()))
        abort();
    char cert[128], key[128], err[512];
    snprintf(cert, sizeof(cert), "%s/cert.pem", g_dir);
    snprintf(key, sizeof(key), "%s/key.pem", g_dir);
    write_pem(cert, NULL, x);
    write_pem(key, k, NULL);
    X509_free(x);
    EVP_PKEY_free(k);
    net_tls_config tc = {.cert = cert, .key = key, .ca = cert, .verify_client = "optional"};
    if (net_tls_new(&tc, &g_tls, err, sizeof(err))) {
        fprintf(stderr, "fuzz_tls_session: %s\n", err);
        abort();
    }
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_tls)
        setup();
    if (size < 1)
        return 0;
    size_t piece = 1 + data[0] % 97;
    data++;
    size--;
    net_tls_session *s = net_tls_session_new(g_tls);
    if (!s)
        return 0;
    weir_buf out;
    buf_init(&out, 1 << 16);
    uint8_t plain[4096];
    bool done = false;
    for (size_t off = 0; off < size && !done; off += piece) {
        size_t n = size - off < piece ? size - off : piece;
        if (net_tls_session_push(s, data + off, n))
            abort();
        for (int i = 0; i < 64; i++) {
            size_t got = 0;
            int rc = net_tls_session_read(s, plain, sizeof(plain), &got);
            if (got > sizeof(plain))
                abort();
            if (rc == NET_TLS_READY) {
                if (!net_tls_session_ready(s))
                    abort();
                continue;
            }
            if (rc == WEIR_OK)
                continue;
            if (rc != WEIR_EAGAIN)
                done = true; /* the transport closes here */
            break;
        }
        net_tls_session_drain(s, &out);
        buf_reset(&out);
    }
    if (net_tls_session_ready(s)) {
        static const uint8_t msg[] = "\x20\x02\x00\x00"; /* a CONNACK */
        if (net_tls_session_write(s, msg, 4))
            abort();
        net_tls_session_close_notify(s);
        net_tls_session_drain(s, &out);
    } else if (net_tls_session_peer_cn(s)) {
        abort(); /* an identity without a completed handshake */
    }
    net_tls_session_pending(s);
    buf_free(&out);
    net_tls_session_free(s);
    return 0;
}
