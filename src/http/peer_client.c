/* peer_client.c -- see peer_client.h. */
#include "http/peer_client.h"
#include "base/err.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define CONNECT_TIMEOUT_MS 3000

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return WEIR_EINVAL;
}

/* Walks "name=url,name=url": calls cb for each item; stops when cb returns
 * non-zero and returns that. */
typedef int (*item_fn)(void *arg, const char *name, size_t nlen, const char *url, size_t ulen);

static int walk(const char *peers, item_fn cb, void *arg, char *err, size_t errlen)
{
    const char *p = peers ? peers : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq || eq == p)
            return fail(err, errlen, "node.peers: expected name=url, got '%.*s'",
                        (int)(end - p), p);
        size_t nlen = (size_t)(eq - p);
        while (nlen && p[nlen - 1] == ' ')
            nlen--;
        const char *u = eq + 1;
        while (u < end && *u == ' ')
            u++;
        size_t ulen = (size_t)(end - u);
        while (ulen && (u[ulen - 1] == ' ' || u[ulen - 1] == '/'))
            ulen--;
        if (!((ulen > 7 && !strncmp(u, "http://", 7)) || (ulen > 8 && !strncmp(u, "https://", 8))))
            return fail(err, errlen, "node.peers: the URL of '%.*s' must start with http:// or "
                        "https://", (int)nlen, p);
        if (ulen >= PEER_URL_MAX)
            return fail(err, errlen, "node.peers: the URL of '%.*s' is too long", (int)nlen, p);
        int rc = cb(arg, p, nlen, u, ulen);
        if (rc)
            return rc;
        p = end;
    }
    return WEIR_OK;
}

typedef struct find_ctx {
    const char *name;
    char *url;
    size_t n;
} find_ctx;

static int find_cb(void *arg, const char *name, size_t nlen, const char *url, size_t ulen)
{
    find_ctx *f = arg;
    if (strlen(f->name) != nlen || strncmp(f->name, name, nlen))
        return 0;
    if (ulen >= f->n)
        return WEIR_EINVAL;
    memcpy(f->url, url, ulen);
    f->url[ulen] = '\0';
    return 1;
}

int peer_lookup(const char *peers, const char *name, char *url, size_t n)
{
    find_ctx f = {name, url, n};
    if (!name || !*name)
        return WEIR_ENOTFOUND;
    int rc = walk(peers, find_cb, &f, NULL, 0);
    if (rc == 1)
        return WEIR_OK;
    return rc ? rc : WEIR_ENOTFOUND;
}

static int count_cb(void *arg, const char *name, size_t nlen, const char *url, size_t ulen)
{
    (void)name, (void)nlen, (void)url, (void)ulen;
    ++*(int *)arg;
    return 0;
}

int peer_list_check(const char *peers, char *err, size_t errlen)
{
    int n = 0;
    return walk(peers, count_cb, &n, err, errlen);
}

int peer_client_init(void)
{
    static bool done;
    if (done)
        return WEIR_OK;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return WEIR_EIO;
    done = true;
    return WEIR_OK;
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    weir_buf *b = arg;
    return buf_append(b, p, size * n) ? 0 : size * n;
}

int peer_post(const char *base_url, const char *path, const char *body, size_t len,
              const char *hdr, long timeout_ms, peer_response *r)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, PEER_MAX_RESPONSE);
    char url[PEER_URL_MAX + 256];
    if ((size_t)snprintf(url, sizeof(url), "%s%s", base_url, path) >= sizeof(url)) {
        snprintf(r->error, sizeof(r->error), "URL too long");
        return WEIR_EINVAL;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(r->error, sizeof(r->error), "cannot start libcurl");
        return WEIR_EIO;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    if (hdrs)
        hdrs = curl_slist_append(hdrs, "Expect:"); /* no 100-continue round trip */
    if (hdrs && hdr)
        hdrs = curl_slist_append(hdrs, hdr);
    int rc = WEIR_OK;
    if (!hdrs) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK) {
        snprintf(r->error, sizeof(r->error), "%s",
                 cc == CURLE_WRITE_ERROR ? "answer larger than 1 MiB" : curl_easy_strerror(cc));
        rc = WEIR_EIO;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    }
    if (buf_reserve(&r->body, 1) == WEIR_OK)
        *buf_tail(&r->body) = '\0';
cleanup:
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    return rc;
}

void peer_response_free(peer_response *r)
{
    buf_free(&r->body);
}
