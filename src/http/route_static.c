/* route_static.c -- the dashboard's static files: GET /, GET /login and
 * GET /assets/{file}.
 *
 * The files are compiled into the binary (webassets.h), so serving one is a
 * table lookup and a memory copy; nothing touches the disk and nothing is
 * rendered on the server: the pages are static and fetch the JSON API.
 *
 * Caching: every answer carries a strong ETag (a hash computed at build time)
 * and "Cache-Control: no-cache", so a browser revalidates on each load and
 * gets a body-less 304 while the binary is the same. The names carry no
 * content hash, hence revalidation rather than a long max-age: an upgraded
 * weir is never shown with a stale script. On loopback a revalidation costs
 * well under a millisecond.
 *
 * Only base names are served (the route captures one segment and the name
 * must be in the table), so no path can escape the embedded set.
 *
 * Development: with http.web_root set, a file of that directory with the
 * requested base name (letters, digits, '.', '-', '_'; no leading dot) is
 * read from disk on each request and sent with "Cache-Control: no-store",
 * so an edit shows on reload without a rebuild; names it lacks (uPlot's
 * files) fall back to the embedded table. Those reads block the loop for the
 * time of a small file read, which is why this is for development only.
 */
#include "base/err.h"
#include "http/routes.h"
#include "http/webassets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WEB_ROOT_MAX_FILE (8u << 20)

/* Pages run only the dashboard's own scripts and talk only to this origin
 * (fetch, WebSocket, EventSource), and may not be framed. Inline styles stay
 * allowed: uPlot positions its elements with them. */
#define HTML_CSP                                                                                   \
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "                    \
    "img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},   {".svg", "image/svg+xml"},
    {".json", "application/json"},         {".png", "image/png"},
};

static const char *content_type_of(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < sizeof(content_types) / sizeof(content_types[0]); i++) {
        size_t e = strlen(content_types[i].ext);
        if (n > e && !strcmp(name + n - e, content_types[i].ext))
            return content_types[i].type;
    }
    return "application/octet-stream";
}

static const web_asset *http_static_find(const char *name)
{
    for (size_t i = 0; name && i < web_assets_count; i++)
        if (!strcmp(web_assets[i].name, name))
            return &web_assets[i];
    return NULL;
}

static int safe_name(const char *name)
{
    if (!name || !*name || name[0] == '.' || strlen(name) > 128)
        return 0;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* Answers from web_root when the file is there; returns 0 when it is not. */
static int serve_from_dir(http_response *w, const char *root, const char *name)
{
    char path[4200];
    if (!safe_name(name) ||
        (size_t)snprintf(path, sizeof(path), "%s/%s", root, name) >= sizeof(path))
        return 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    long size = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
    char *data = size >= 0 && (unsigned long)size <= WEB_ROOT_MAX_FILE && fseek(f, 0, SEEK_SET) == 0
                     ? malloc((size_t)size + 1)
                     : NULL;
    size_t n = data ? fread(data, 1, (size_t)size, f) : 0;
    int err = !data || ferror(f) || n != (size_t)size;
    fclose(f);
    if (err) {
        free(data);
        http_respond_error(w, WEIR_EIO, "cannot read the file from http.web_root");
        return 1;
    }
    http_resp_header(w, "Cache-Control", "no-store");
    http_resp_header(w, "X-Content-Type-Options", "nosniff");
    http_respond(w, 200, content_type_of(name), data, n);
    free(data);
    return 1;
}

void http_static_serve(http_request *r, http_response *w, void *ctx, const char *name)
{
    const http_api_ctx *api = ctx;
    if (api && api->web_root && *api->web_root && serve_from_dir(w, api->web_root, name))
        return;
    const web_asset *a = http_static_find(name);
    if (!a) {
        http_respond_error(w, WEIR_ENOTFOUND, "no such file in the dashboard");
        return;
    }
    char inm[128];
    size_t nl = strlen(name);
    if (nl > 5 && !strcmp(name + nl - 5, ".html"))
        http_resp_header(w, "Content-Security-Policy", HTML_CSP);
    http_resp_header(w, "Cache-Control", "no-cache");
    http_resp_header(w, "ETag", a->etag);
    http_resp_header(w, "X-Content-Type-Options", "nosniff");
    const char *v = http_req_header(r, "If-None-Match", inm, sizeof(inm));
    if (v && strstr(v, a->etag)) {
        http_respond(w, 304, NULL, NULL, 0);
        return;
    }
    http_respond(w, 200, content_type_of(name), a->data, a->len);
}

void http_route_static_index(http_request *r, http_response *w, void *ctx)
{
    http_static_serve(r, w, ctx, "index.html");
}

/* The login page is public like the rest: it holds no data, and the page it
 * sends the browser on to asks the API, which checks the session. */
void http_route_static_login(http_request *r, http_response *w, void *ctx)
{
    http_static_serve(r, w, ctx, "login.html");
}

void http_route_static_asset(http_request *r, http_response *w, void *ctx)
{
    http_static_serve(r, w, ctx, http_req_param(r, 0));
}
