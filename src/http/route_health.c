/* route_health.c -- liveness and metrics: GET /healthz and GET /metrics.
 *
 * Both are for machines polling often (load balancers, Prometheus), so they
 * do no I/O beyond what metrics_render reads from /proc and never block.
 * /healthz answers as long as the loop turns, which is what a liveness probe
 * should measure; readiness of the store or rules will get its own fields.
 */
#include "base/clock.h"
#include "base/err.h"
#include "http/routes.h"

#include <jansson.h>

/* The exposition is rebuilt on every scrape; this bounds it so that a
 * runaway label set cannot make a scrape allocate without limit. */
#define HTTP_METRICS_MAX (16u << 20)

void http_route_healthz(http_request *r, http_response *w, void *ctx)
{
    const http_api_ctx *api = ctx;
    int64_t up_ns = api && api->started_ns ? weir_mono_ns() - api->started_ns : 0;
    http_respond_json(w, 200,
                      json_pack("{s:s, s:I}", "status", "ok", "uptime_seconds",
                                (json_int_t)(up_ns / WEIR_NS_PER_S)));
}

void http_route_metrics(http_request *r, http_response *w, void *ctx)
{
    const http_api_ctx *api = ctx;
    if (!api || !api->metrics) {
        http_respond_error(w, WEIR_EBUSY, "metrics are not available");
        return;
    }
    weir_buf out;
    buf_init(&out, HTTP_METRICS_MAX);
    int rc = metrics_render(api->metrics, &out);
    if (rc || !buf_used(&out))
        http_respond_error(w, WEIR_EINTERNAL, "cannot render metrics");
    else
        http_respond(w, 200, "text/plain; version=0.0.4; charset=utf-8", buf_head(&out),
                     buf_used(&out));
    buf_free(&out);
}
