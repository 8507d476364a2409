/* client.c -- see client.h. */
#include "cli/client.h"
#include "base/err.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    weir_buf *b = arg;
    return buf_append(b, p, size * n) ? 0 : size * n;
}

int cli_http(const char *url, const void *body, size_t len, const char *content_type,
             long timeout_ms, cli_response *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, 0);
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(r->error, sizeof(r->error), "cannot start libcurl");
        return WEIR_EIO;
    }
    struct curl_slist *hdrs = NULL;
    char ct[160];
    if (content_type) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", content_type);
        hdrs = curl_slist_append(hdrs, ct);
    }
    hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    /* HTTPS to a node with a private CA, and client certificates. */
    const char *ca = getenv("WEIR_CA_FILE"), *ccert = getenv("WEIR_CLIENT_CERT"),
               *ck = getenv("WEIR_CLIENT_KEY");
    if (ca && *ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca);
    if (ccert && *ccert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, ccert);
    if (ck && *ck)
        curl_easy_setopt(c, CURLOPT_SSLKEY, ck);
    if (timeout_ms)
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    CURLcode cc = curl_easy_perform(c);
    int rc = WEIR_OK;
    if (cc != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "%s", curl_easy_strerror(cc));
        rc = WEIR_EIO;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    }
    if (buf_append(&r->body, "", 1) == WEIR_OK)
        r->body.len--; /* keep the NUL out of the count */
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

void cli_urlencode(const char *s, char *out, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *s && o + 4 < n; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
            ch == '-' || ch == '_' || ch == '.' || ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
}

const char *cli_base_url(const char *flag)
{
    if (flag && *flag)
        return flag;
    const char *env = getenv("WEIR_URL");
    return env && *env ? env : "http://127.0.0.1:8080";
}
