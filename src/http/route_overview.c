/* route_overview.c -- GET /api/v1/overview: what the dashboard's first page
 * shows, in one cheap JSON answer instead of parsing /metrics in a browser.
 *
 *   {"status": "ok", "version", "uptime_seconds", "now_ms",
 *    "mqtt": {"connections", "clients", "sessions", "subscriptions",
 *             "retained", "queued_messages", "inflight", "messages_in",
 *             "messages_out", "bytes_in", "bytes_out", "dropped"},
 *    "streams": {"count", "records", "bytes", "accepted", "rejected"},
 *    "process": {"rss_bytes"}}
 *
 * Counters are totals; the dashboard turns them into rates (the ingest rate
 * is the difference of streams.accepted over now_ms). Rules are not here:
 * they have their own resource (/api/v1/rules), which the page reads too.
 * Everything is read on the loop from memory, plus one small read of
 * /proc/self/statm, the same as a /metrics scrape does.
 */
#include "base/clock.h"
#include "base/err.h"
#include "http/routes.h"
#include "ingest/ingest.h"

#include <stdio.h>
#include <unistd.h>

typedef struct totals {
    json_int_t count, records, bytes, accepted, rejected;
} totals;

static json_int_t int_of(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void add_stream(void *arg, ingest_stream *s)
{
    totals *t = arg;
    json_t *o = ingest_stream_json(s);
    if (!o)
        return;
    t->count++;
    t->records += int_of(o, "records");
    t->bytes += int_of(o, "bytes");
    t->accepted += int_of(o, "accepted");
    t->rejected += int_of(o, "rejected");
    json_decref(o);
}

static json_int_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long long size = 0, resident = 0;
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return (json_int_t)resident * sysconf(_SC_PAGESIZE);
}

void http_route_overview(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    const http_api_ctx *api = ctx;
    int64_t up_ns = api->started_ns ? weir_mono_ns() - api->started_ns : 0;
    totals t = {0};
    if (api->ingest)
        ingest_foreach(api->ingest, add_stream, &t);
    json_t *mqtt = json_null();
    if (api->broker) {
        mqtt_gauges g;
        mqtt_broker_gauges(api->broker, &g);
        const mqtt_stats *st = mqtt_broker_stats(api->broker);
        uint64_t dropped = 0;
        for (int d = 0; d < MQTT_DROP__COUNT; d++)
            dropped += st->dropped[d];
        mqtt = json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "connections",
            (json_int_t)g.connections, "clients", (json_int_t)g.clients, "sessions",
            (json_int_t)g.sessions, "subscriptions", (json_int_t)g.subscriptions, "retained",
            (json_int_t)g.retained, "queued_messages", (json_int_t)g.queued_messages, "inflight",
            (json_int_t)g.inflight, "messages_in", (json_int_t)st->messages_in, "messages_out",
            (json_int_t)st->messages_out, "bytes_in", (json_int_t)st->bytes_in, "bytes_out",
            (json_int_t)st->bytes_out, "dropped", (json_int_t)dropped);
    }
    http_respond_json(
        w, 200,
        json_pack("{s:s, s:s, s:I, s:I, s:o, s:{s:I, s:I, s:I, s:I, s:I}, s:{s:I}}", "status", "ok",
                  "version", WEIR_VERSION, "uptime_seconds", (json_int_t)(up_ns / WEIR_NS_PER_S),
                  "now_ms", (json_int_t)(weir_wall_ns() / 1000000), "mqtt", mqtt, "streams",
                  "count", t.count, "records", t.records, "bytes", t.bytes, "accepted", t.accepted,
                  "rejected", t.rejected, "process", "rss_bytes", rss_bytes()));
}
