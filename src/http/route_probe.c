/* route_probe.c -- results of `weir probe`, kept for the dashboard.
 *
 *   POST /api/v1/probe/results   one result (the JSON `weir probe --json`
 *                                prints; see docs/api.md "Latency probe")
 *   GET  /api/v1/probe/results   ?n=N: the latest N (default 1, at most
 *                                PROBE_KEEP), newest first
 *
 * The node keeps the last PROBE_KEEP results in memory and the latest one in
 * the catalog's key-value table ("probe.latest"), so a restarted node still
 * shows the last measurement. A result is an object with at least "metrics"
 * (an object); the node adds "received" (RFC 3339) and stores the rest as
 * given, up to PROBE_MAX_BYTES.
 */
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "http/routes.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROBE_KEEP      32
#define PROBE_MAX_BYTES (1u << 20)
#define PROBE_KV_KEY    "probe.latest"

struct probe_results {
    catalog *cat;
    json_t *ring[PROBE_KEEP]; /* newest at (head - 1) */
    size_t head, n;
};

static void probe_push(probe_results *pr, json_t *res)
{
    if (pr->n == PROBE_KEEP)
        json_decref(pr->ring[pr->head]);
    else
        pr->n++;
    pr->ring[pr->head] = res;
    pr->head = (pr->head + 1) % PROBE_KEEP;
}

probe_results *probe_results_new(catalog *cat)
{
    probe_results *pr = calloc(1, sizeof(*pr));
    if (!pr)
        return NULL;
    pr->cat = cat;
    void *val = NULL;
    size_t len = 0;
    if (cat && catalog_kv_get(cat, PROBE_KV_KEY, &val, &len) == WEIR_OK) {
        json_t *j = json_loadb(val, len, 0, NULL);
        if (json_is_object(j))
            probe_push(pr, j);
        else
            json_decref(j);
    }
    free(val);
    return pr;
}

void probe_results_free(probe_results *pr)
{
    if (!pr)
        return;
    for (size_t i = 0; i < PROBE_KEEP; i++)
        json_decref(pr->ring[i]);
    free(pr);
}

void http_route_probe_results_post(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    probe_results *pr = api->probe_results;
    if (!pr) {
        http_respond_error(w, WEIR_EUNSUPPORTED, "probe results are not kept by this node");
        return;
    }
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    if (n > PROBE_MAX_BYTES) {
        http_respond_error(w, WEIR_ETOOBIG, "a probe result is at most 1 MiB");
        return;
    }
    json_error_t jerr;
    json_t *j = json_loadb((const char *)body, n, 0, &jerr);
    if (!json_is_object(j) || !json_is_object(json_object_get(j, "metrics"))) {
        json_decref(j);
        http_respond_error(w, WEIR_EINVAL, "expected a JSON object with \"metrics\"");
        return;
    }
    char now[40];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_object_set_new(j, "received", json_string(now));
    char *txt = json_dumps(j, JSON_COMPACT);
    if (txt && pr->cat && catalog_kv_put(pr->cat, PROBE_KV_KEY, txt, strlen(txt)))
        wlog_warn("probe", "kv_put_failed", "key=%s", PROBE_KV_KEY);
    free(txt);
    probe_push(pr, j);
    http_respond_json(w, 201, json_pack("{s:O?}", "id", json_object_get(j, "id")));
}

void http_route_probe_results_get(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    probe_results *pr = api->probe_results;
    json_t *arr = json_array();
    char buf[32];
    long want = 1;
    const char *v = http_req_query(r, "n", buf, sizeof(buf));
    if (v) {
        char *end;
        want = strtol(v, &end, 10);
        if (*end || want < 1 || want > PROBE_KEEP) {
            json_decref(arr);
            http_respond_error(w, WEIR_EINVAL, "n must be from 1 to 32");
            return;
        }
    }
    for (size_t i = 0; pr && i < pr->n && (long)i < want; i++)
        json_array_append(arr, pr->ring[(pr->head + PROBE_KEEP - 1 - i) % PROBE_KEEP]);
    http_respond_json(w, 200, json_pack("{s:o}", "results", arr));
}
