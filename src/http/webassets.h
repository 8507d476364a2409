/* webassets.h -- the dashboard's static files, compiled into the binary.
 *
 * The table is generated at build time by cmake/embed_web.cmake from the
 * files in web/ (and uPlot's from web/node_modules), so weir stays a single
 * file to deploy and the dashboard always matches the binary's API. Served by
 * route_static.c. The last row is all zeros.
 */
#ifndef WEIR_HTTP_WEBASSETS_H
#define WEIR_HTTP_WEBASSETS_H

#include <stddef.h>

typedef struct web_asset {
    const char *name; /* base name: "index.html", "app.js" */
    const unsigned char *data;
    size_t len;
    const char *etag; /* quoted strong ETag: "\"0123abcd...\"" */
} web_asset;

extern const web_asset web_assets[];
extern const size_t web_assets_count;

#endif
