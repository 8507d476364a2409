/* wlog.h -- structured diagnostic logging to stderr.
 *
 * One line per event in logfmt, so that both people and log shippers read it:
 *
 *   ts=2026-11-21T10:30:00.123Z level=info mod=mqtt event=connect client=a1
 *
 * The module and event are fixed words; the rest is key=value pairs written
 * by the caller's format. Each line goes out in one write(2), so lines from
 * different threads never interleave. Messages below the configured level
 * cost one comparison.
 *
 * Events that outside input can trigger at any rate (bad packets, decode
 * failures) go through wlog_limited with a per-call-site wlog_limit, so a
 * hostile peer cannot flood the log: at most `burst` lines per second per site,
 * then one summary line saying how many were suppressed.
 */
#ifndef WEIR_BASE_WLOG_H
#define WEIR_BASE_WLOG_H

#include <stdint.h>

typedef enum wlog_level {
    WLOG_DEBUG = 0,
    WLOG_INFO = 1,
    WLOG_WARN = 2,
    WLOG_ERROR = 3,
    WLOG_OFF = 4,
} wlog_level;

/* Sets the minimum level written (default WLOG_INFO). Thread-safe. */
void wlog_set_level(wlog_level lvl);
wlog_level wlog_get_level(void);
/* Parses "debug|info|warn|error|off"; returns -1 when unknown. */
int wlog_level_parse(const char *s);

void wlog_write(wlog_level lvl, const char *mod, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define wlog_debug(mod, ev, ...) wlog_write(WLOG_DEBUG, mod, ev, __VA_ARGS__)
#define wlog_info(mod, ev, ...) wlog_write(WLOG_INFO, mod, ev, __VA_ARGS__)
#define wlog_warn(mod, ev, ...) wlog_write(WLOG_WARN, mod, ev, __VA_ARGS__)
#define wlog_error(mod, ev, ...) wlog_write(WLOG_ERROR, mod, ev, __VA_ARGS__)

/* Rate-limit state for one call site; zero-initialise it (static storage). */
typedef struct wlog_limit {
    int64_t window_start_ns; /* start of the current one-second window */
    uint32_t in_window;      /* lines written in the current window */
    uint32_t suppressed;     /* lines dropped since the last summary */
} wlog_limit;

void wlog_limited(wlog_limit *lim, wlog_level lvl, const char *mod, const char *event,
                  const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#endif
