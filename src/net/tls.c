/* tls.c -- see tls.h.
 *
 * A net_tls is an SSL_CTX (the pointer is cast), so its reference count is
 * OpenSSL's: SSL_new takes a reference and SSL_free drops it.
 */
#include "net/tls.h"
#include "base/err.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CN_MAX 256

struct net_tls_session {
    SSL *ssl;
    BIO *rbio; /* ciphertext in: owned by ssl */
    BIO *wbio; /* ciphertext out: owned by ssl */
    bool ready;
    bool notified; /* close_notify queued */
    bool has_cn;
    char cn[CN_MAX];
    char err[160];
};

static SSL_CTX *ctx_of(net_tls *t)
{
    return (SSL_CTX *)t;
}

/* The first error of OpenSSL's queue, as text; clears the queue. */
static void ossl_reason(char *out, size_t n)
{
    unsigned long e = ERR_get_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(out, n, "%s", r ? r : "unknown TLS error");
    ERR_clear_error();
}

int net_tls_config_check(const net_tls_config *cfg, char *err, size_t errlen)
{
    if (!cfg->cert || !*cfg->cert || !cfg->key || !*cfg->key) {
        snprintf(err, errlen, "[tls] cert and key are required");
        return WEIR_EINVAL;
    }
    const char *mv = cfg->min_version;
    if (mv && *mv && strcmp(mv, "1.2") && strcmp(mv, "1.3")) {
        snprintf(err, errlen, "[tls] min_version must be 1.2 or 1.3, not '%s'", mv);
        return WEIR_EINVAL;
    }
    const char *vc = cfg->verify_client;
    if (vc && *vc && strcmp(vc, "none") && strcmp(vc, "optional") && strcmp(vc, "require")) {
        snprintf(err, errlen, "[tls] verify_client must be none, optional or require, not '%s'",
                 vc);
        return WEIR_EINVAL;
    }
    if (vc && *vc && strcmp(vc, "none") && (!cfg->ca || !*cfg->ca)) {
        snprintf(err, errlen, "[tls] verify_client = %s needs [tls] ca", vc);
        return WEIR_EINVAL;
    }
    return WEIR_OK;
}

int net_tls_new(const net_tls_config *cfg, net_tls **out, char *err, size_t errlen)
{
    int rc = net_tls_config_check(cfg, err, errlen);
    if (rc)
        return rc;
    char why[160];
    ERR_clear_error();
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        snprintf(err, errlen, "cannot create a TLS context");
        return WEIR_ENOMEM;
    }
    rc = WEIR_EINVAL;
    bool tls13 = cfg->min_version && !strcmp(cfg->min_version, "1.3");
    SSL_CTX_set_min_proto_version(ctx, tls13 ? TLS1_3_VERSION : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections give their 16 KiB record buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (!SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL")) {
        snprintf(err, errlen, "cannot set the TLS 1.2 cipher list");
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
        ossl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot load [tls] cert %s: %s", cfg->cert, why);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1) {
        ossl_reason(why, sizeof(why));
        snprintf(err, errlen, "cannot load [tls] key %s: %s", cfg->key, why);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        ossl_reason(why, sizeof(why));
        snprintf(err, errlen, "[tls] key %s does not match cert %s: %s", cfg->key, cfg->cert,
                 why);
        goto fail;
    }
    const char *vc = cfg->verify_client;
    int mode = SSL_VERIFY_NONE;
    if (vc && !strcmp(vc, "optional"))
        mode = SSL_VERIFY_PEER;
    else if (vc && !strcmp(vc, "require"))
        mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    if (cfg->ca && *cfg->ca) {
        if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1) {
            ossl_reason(why, sizeof(why));
            snprintf(err, errlen, "cannot load [tls] ca %s: %s", cfg->ca, why);
            goto fail;
        }
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->ca);
        if (names)
            SSL_CTX_set_client_CA_list(ctx, names);
    }
    SSL_CTX_set_verify(ctx, mode, NULL);
    /* Session resumption with client certificates needs an id context. */
    static const unsigned char sid[] = "weir-mqtt";
    SSL_CTX_set_session_id_context(ctx, sid, sizeof(sid) - 1);
    ERR_clear_error();
    *out = (net_tls *)ctx;
    return WEIR_OK;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return rc;
}

void net_tls_free(net_tls *t)
{
    if (t)
        SSL_CTX_free(ctx_of(t));
}

/* ---- Sessions ------------------------------------------------------------ */

net_tls_session *net_tls_session_new(net_tls *t)
{
    net_tls_session *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->ssl = SSL_new(ctx_of(t));
    s->rbio = BIO_new(BIO_s_mem());
    s->wbio = BIO_new(BIO_s_mem());
    if (!s->ssl || !s->rbio || !s->wbio) {
        BIO_free(s->rbio);
        BIO_free(s->wbio);
        SSL_free(s->ssl);
        free(s);
        return NULL;
    }
    /* An empty memory BIO means "retry later", not EOF. */
    BIO_set_mem_eof_return(s->rbio, -1);
    BIO_set_mem_eof_return(s->wbio, -1);
    SSL_set_bio(s->ssl, s->rbio, s->wbio);
    SSL_set_accept_state(s->ssl);
    return s;
}

void net_tls_session_free(net_tls_session *s)
{
    if (!s)
        return;
    SSL_free(s->ssl); /* frees both BIOs and drops the SSL_CTX reference */
    free(s);
}

int net_tls_session_push(net_tls_session *s, const uint8_t *in, size_t n)
{
    while (n > 0) {
        int chunk = n > INT_MAX ? INT_MAX : (int)n;
        int w = BIO_write(s->rbio, in, chunk);
        if (w <= 0)
            return WEIR_ENOMEM;
        in += w;
        n -= (size_t)w;
    }
    return WEIR_OK;
}

/* Keeps the CN of a verified client certificate, if it is usable as an
 * identity: printable ASCII without NUL, shorter than CN_MAX. */
static void take_peer_cn(net_tls_session *s)
{
    X509 *peer = SSL_get0_peer_certificate(s->ssl);
    if (!peer || SSL_get_verify_result(s->ssl) != X509_V_OK)
        return;
    X509_NAME *name = X509_get_subject_name(peer);
    int i = name ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;
    if (i < 0)
        return;
    ASN1_STRING *d = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
    const unsigned char *p = ASN1_STRING_get0_data(d);
    int len = ASN1_STRING_length(d);
    if (len <= 0 || len >= CN_MAX)
        return;
    for (int k = 0; k < len; k++)
        if (p[k] < 0x20 || p[k] > 0x7e)
            return;
    memcpy(s->cn, p, (size_t)len);
    s->cn[len] = '\0';
    s->has_cn = true;
}

static int session_fail(net_tls_session *s, int ret)
{
    int e = SSL_get_error(s->ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        ERR_clear_error();
        return WEIR_EAGAIN;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        ERR_clear_error();
        return WEIR_ESHUTDOWN;
    }
    unsigned long code = ERR_peek_error();
    const char *r = code ? ERR_reason_error_string(code) : NULL;
    long vr = SSL_get_verify_result(s->ssl);
    if (code && ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED && vr != X509_V_OK)
        snprintf(s->err, sizeof(s->err), "%s: %s", r ? r : "certificate verify failed",
                 X509_verify_cert_error_string(vr));
    else
        snprintf(s->err, sizeof(s->err), "%s", r ? r : "TLS error");
    ERR_clear_error();
    return WEIR_EPROTO;
}

int net_tls_session_read(net_tls_session *s, uint8_t *buf, size_t cap, size_t *got)
{
    *got = 0;
    ERR_clear_error();
    if (!s->ready) {
        int r = SSL_do_handshake(s->ssl);
        if (r != 1)
            return session_fail(s, r);
        s->ready = true;
        take_peer_cn(s);
        return NET_TLS_READY;
    }
    size_t n = 0;
    int r = SSL_read_ex(s->ssl, buf, cap, &n);
    if (r != 1)
        return session_fail(s, r);
    *got = n;
    return WEIR_OK;
}

int net_tls_session_write(net_tls_session *s, const uint8_t *p, size_t n)
{
    if (!s->ready)
        return WEIR_EPROTO;
    ERR_clear_error();
    while (n > 0) {
        size_t w = 0;
        /* Memory BIOs grow, so a write is never partial short of OOM. */
        if (SSL_write_ex(s->ssl, p, n, &w) != 1)
            return session_fail(s, 0) == WEIR_EAGAIN ? WEIR_ENOMEM : WEIR_EPROTO;
        p += w;
        n -= w;
    }
    return WEIR_OK;
}

void net_tls_session_close_notify(net_tls_session *s)
{
    if (!s->ready || s->notified)
        return;
    s->notified = true;
    ERR_clear_error();
    SSL_shutdown(s->ssl);
    ERR_clear_error();
}

size_t net_tls_session_pending(const net_tls_session *s)
{
    return BIO_ctrl_pending(s->wbio);
}

int net_tls_session_drain(net_tls_session *s, weir_buf *out)
{
    size_t n;
    while ((n = BIO_ctrl_pending(s->wbio)) > 0) {
        size_t room = out->max ? out->max - buf_used(out) : n;
        if (room == 0)
            return WEIR_EFULL;
        if (n > room)
            n = room;
        if (buf_reserve(out, n))
            return WEIR_EFULL;
        int r = BIO_read(s->wbio, buf_tail(out), n > INT_MAX ? INT_MAX : (int)n);
        if (r <= 0)
            break;
        buf_commit(out, (size_t)r);
    }
    return WEIR_OK;
}

bool net_tls_session_ready(const net_tls_session *s)
{
    return s->ready;
}

const char *net_tls_session_peer_cn(const net_tls_session *s)
{
    return s->has_cn ? s->cn : NULL;
}

const char *net_tls_session_error(const net_tls_session *s)
{
    return s->err[0] ? s->err : "TLS error";
}

const char *net_tls_session_version(const net_tls_session *s)
{
    return SSL_get_version(s->ssl);
}
