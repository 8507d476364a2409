/* replay_csv.c -- see replay_csv.h. */
#include "cli/replay_csv.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Splits one CSV line in place (RFC 4180 quotes, "" inside quotes). Returns
 * the number of fields. Surrounding spaces of unquoted-looking values stay;
 * the caller trims. */
int replay_csv_split(char *line, char **out, int max)
{
    int n = 0;
    char *p = line;
    size_t L = strlen(p);
    while (L && (p[L - 1] == '\n' || p[L - 1] == '\r'))
        p[--L] = '\0';
    for (;;) {
        if (n == max)
            return n;
        char *w = p, *start = p;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p)
                    break;
                if (*p == '"' && p[1] == '"') {
                    *w++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *w++ = *p++;
                }
            }
            while (*p && *p != ',')
                p++;
        } else {
            while (*p && *p != ',')
                *w++ = *p++;
        }
        char end = *p;
        *w = '\0';
        out[n++] = start;
        if (end != ',')
            return n;
        p++;
    }
}

char *replay_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* A time cell as epoch ms: "YYYY-MM-DD[ T]HH:MM:SS[.fff][Z]" (UTC) or an
 * epoch number (s, ms, us, ns by magnitude). INT64_MIN when unreadable. */
int64_t replay_parse_time_ms(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    int Y, M, D, h = 0, m = 0;
    double sec = 0;
    int k = sscanf(s, "%d-%d-%d%*[ T]%d:%d:%lf", &Y, &M, &D, &h, &m, &sec);
    if (k >= 3) {
        if (Y < 1 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > 31 || h < 0 || h > 23 ||
            m < 0 || m > 59 || !(sec >= 0 && sec < 61))
            return INT64_MIN;
        tm.tm_year = Y - 1900;
        tm.tm_mon = M - 1;
        tm.tm_mday = D;
        tm.tm_hour = h;
        tm.tm_min = m;
        tm.tm_sec = (int)sec;
        return (int64_t)timegm(&tm) * 1000 + (int64_t)llround((sec - floor(sec)) * 1000);
    }
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return INT64_MIN;
    double a = fabs(v);
    double ms = a < 1e11 ? v * 1e3 : a < 1e14 ? v : a < 1e17 ? v / 1e3 : v / 1e6;
    if (!(fabs(ms) < 9e15)) /* NaN, infinities, past year 287000 */
        return INT64_MIN;
    return (int64_t)ms;
}

