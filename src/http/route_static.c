/* route_static.c -- the dashboard's static files: GET / and GET /assets/{file}.
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
 */
#include "base/err.h"
#include "http/routes.h"
#include "http/webassets.h"

#include <string.h>

static const struct {
    const char *ext;
    const char *type;
} content_types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".svg", "image/svg+xml"},
    {".json", "application/json"},
    {".png", "image/png"},
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

static void serve(http_request *r, http_response *w, const char *name)
{
    const web_asset *a = http_static_find(name);
    if (!a) {
        http_respond_error(w, WEIR_ENOTFOUND, "no such file in the dashboard");
        return;
    }
    char inm[128];
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
    (void)ctx;
    serve(r, w, "index.html");
}

void http_route_static_asset(http_request *r, http_response *w, void *ctx)
{
    (void)ctx;
    serve(r, w, http_req_param(r, 0));
}
