/* audit.c -- see audit.h. */
#include "auth/audit.h"
#include "base/clock.h"
#include "base/wlog.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct audit {
    audit_sink_fn sink;
    void *ctx;
    unsigned long long count;
};

audit *audit_new(audit_sink_fn sink, void *ctx)
{
    audit *au = calloc(1, sizeof(*au));
    if (!au)
        return NULL;
    au->sink = sink;
    au->ctx = ctx;
    return au;
}

void audit_free(audit *au)
{
    free(au);
}

unsigned long long audit_count(const audit *au)
{
    return au ? au->count : 0;
}

static void utc_now(char out[32])
{
    int64_t ns = weir_wall_ns();
    time_t s = (time_t)(ns / WEIR_NS_PER_S);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ns % WEIR_NS_PER_S / 1000000));
}

void audit_log(audit *au, const char *who, const char *from, const char *door, const char *action,
               const char *target, bool ok, const char *detail)
{
    char at[32];
    utc_now(at);
    if (!who || !*who)
        who = "anonymous";
    wlog_info("audit", action, "who=\"%s\" from=%s door=%s target=\"%s\" ok=%d detail=\"%s\"", who,
              from ? from : "-", door ? door : "-", target ? target : "", ok, detail ? detail : "");
    if (!au)
        return;
    json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s, s:s?, s:b, s:s?}", "at", at, "who", who,
                          "from", from, "door", door, "action", action, "target", target, "ok", ok,
                          "detail", detail);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text) {
        wlog_error("audit", "lost", "error=\"out of memory or not UTF-8\" action=%s", action);
        return;
    }
    au->count++;
    if (au->sink)
        au->sink(au->ctx, text, strlen(text));
    free(text);
}
