/* wlog.c -- see wlog.h. */
#include "base/wlog.h"
#include "base/clock.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define WLOG_LINE_MAX 2048
#define WLOG_BURST 10

static _Atomic int g_level = WLOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void wlog_set_level(wlog_level lvl)
{
    atomic_store(&g_level, (int)lvl);
}

wlog_level wlog_get_level(void)
{
    return (wlog_level)atomic_load(&g_level);
}

int wlog_level_parse(const char *s)
{
    for (int i = 0; i <= WLOG_OFF; i++)
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    if (strcasecmp(s, "warning") == 0)
        return WLOG_WARN;
    return -1;
}

static void wlog_vwrite(wlog_level lvl, const char *mod, const char *event, const char *fmt,
                        va_list ap)
{
    char line[WLOG_LINE_MAX];
    int64_t now = weir_wall_ns();
    time_t secs = (time_t)(now / WEIR_NS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n = snprintf(line, sizeof(line),
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s mod=%s event=%s ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, (int)((now % WEIR_NS_PER_S) / WEIR_NS_PER_MS), level_names[lvl],
                     mod, event);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(line) - 1 && fmt && *fmt) {
        int m = vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
        if (m > 0)
            n += m;
    }
    if ((size_t)n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* Trim the trailing space left when there were no fields. */
    while (n > 0 && line[n - 1] == ' ')
        n--;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void wlog_write(wlog_level lvl, const char *mod, const char *event, const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&g_level))
        return;
    va_list ap;
    va_start(ap, fmt);
    wlog_vwrite(lvl, mod, event, fmt, ap);
    va_end(ap);
}

void wlog_limited(wlog_limit *lim, wlog_level lvl, const char *mod, const char *event,
                  const char *fmt, ...)
{
    if ((int)lvl < atomic_load(&g_level))
        return;
    int64_t now = weir_mono_ns();
    if (now - lim->window_start_ns >= WEIR_NS_PER_S) {
        if (lim->suppressed)
            wlog_write(lvl, mod, "suppressed", "event=%s count=%u", event, lim->suppressed);
        lim->window_start_ns = now;
        lim->in_window = 0;
        lim->suppressed = 0;
    }
    if (lim->in_window >= WLOG_BURST) {
        lim->suppressed++;
        return;
    }
    lim->in_window++;
    va_list ap;
    va_start(ap, fmt);
    wlog_vwrite(lvl, mod, event, fmt, ap);
    va_end(ap);
}
