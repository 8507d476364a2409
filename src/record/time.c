/* time.c -- event-time parsing (rec_parse_time, contract in schema.h).
 *
 * Three readers share one back end: the auto reader (RFC 3339 / ISO 8601 and
 * epoch numbers), the unit reader ("s", "ms", "us", "ns") and the
 * strptime-style reader driven by a table of conversions. Each fills a
 * `tparts` (broken-down time, offset, fraction) that `tparts_to_ns` checks
 * and turns into nanoseconds with overflow checks, so the calendar rules live
 * in one place.
 */
#include "base/err.h"
#include "record/record_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define NS_PER_S 1000000000LL

typedef struct tparts {
    int64_t year; /* proleptic Gregorian */
    int mon;      /* 1..12 */
    int day;      /* 1..31 */
    int yday;     /* 1..366 when given by %j, else 0 */
    int hour;     /* 0..23 (or 1..12 with hour12) */
    int min;
    int sec;       /* 0..60 */
    int64_t nsec;  /* 0..999999999 */
    int64_t off_s; /* offset east of UTC, seconds */
    bool hour12;   /* hour came from %I */
    int pm;        /* -1 unset, 0 AM, 1 PM */
    bool epoch;    /* %s given: epoch_s is the time */
    int64_t epoch_s;
} tparts;

static void tparts_init(tparts *t)
{
    memset(t, 0, sizeof(*t));
    t->year = 1970;
    t->mon = 1;
    t->day = 1;
    t->pm = -1;
}

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days from 1970-01-01 to y-m-d (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int tparts_to_ns(tparts *t, int64_t *ns_out, const char **why)
{
    int64_t secs;
    if (t->epoch) {
        secs = t->epoch_s;
    } else {
        if (t->year < 0 || t->year > 9999) {
            *why = "year out of range";
            return WEIR_EMALFORMED;
        }
        int64_t days;
        if (t->yday) {
            if (t->yday > (is_leap(t->year) ? 366 : 365)) {
                *why = "day of year out of range";
                return WEIR_EMALFORMED;
            }
            days = days_from_civil(t->year, 1, 1) + t->yday - 1;
        } else {
            if (t->mon < 1 || t->mon > 12) {
                *why = "month out of range";
                return WEIR_EMALFORMED;
            }
            if (t->day < 1 || t->day > days_in_month(t->year, t->mon)) {
                *why = "day out of range";
                return WEIR_EMALFORMED;
            }
            days = days_from_civil(t->year, t->mon, t->day);
        }
        int hour = t->hour;
        if (t->hour12) {
            if (hour < 1 || hour > 12) {
                *why = "hour out of range";
                return WEIR_EMALFORMED;
            }
            if (t->pm >= 0)
                hour = hour % 12 + (t->pm ? 12 : 0);
        }
        if (hour > 23 || t->min > 59 || t->sec > 60) {
            *why = "time of day out of range";
            return WEIR_EMALFORMED;
        }
        secs = days * 86400 + hour * 3600 + t->min * 60 + t->sec - t->off_s;
    }
    /* Borrow a second for a negative time with a fraction, so that the
     * earliest representable instant does not overflow on the way. */
    int64_t nsec = t->nsec;
    if (secs < 0 && nsec > 0) {
        secs++;
        nsec -= NS_PER_S;
    }
    int64_t ns;
    if (__builtin_mul_overflow(secs, NS_PER_S, &ns) || __builtin_add_overflow(ns, nsec, &ns)) {
        *why = "time outside what int64 nanoseconds hold (1677..2262)";
        return WEIR_EMALFORMED;
    }
    *ns_out = ns;
    return WEIR_OK;
}

/* ---- small scanners over [*p, e) ---------------------------------------- */

static inline bool dig(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads between min and max digits; false when fewer than min. */
static bool read_digits(const char **p, const char *e, int min, int max, int64_t *out)
{
    int64_t v = 0;
    int k = 0;
    while (k < max && *p < e && dig(**p)) {
        v = v * 10 + (**p - '0');
        (*p)++;
        k++;
    }
    *out = v;
    return k >= min;
}

/* Reads one or more fraction digits into nanoseconds (digits past the
 * ninth are dropped). */
static bool read_fraction(const char **p, const char *e, int64_t *ns)
{
    int64_t v = 0;
    int k = 0;
    while (*p < e && dig(**p)) {
        if (k < 9) {
            v = v * 10 + (**p - '0');
            k++;
        }
        (*p)++;
        if (k == 9)
            while (*p < e && dig(**p))
                (*p)++;
    }
    if (k == 0)
        return false;
    for (; k < 9; k++)
        v *= 10;
    *ns = v;
    return true;
}

/* Z, z, +HH, +HHMM or +HH:MM (or '-'). */
static bool read_offset(const char **p, const char *e, int64_t *off_s)
{
    if (*p < e && (**p == 'Z' || **p == 'z')) {
        (*p)++;
        *off_s = 0;
        return true;
    }
    if (*p >= e || (**p != '+' && **p != '-'))
        return false;
    int sign = **p == '-' ? -1 : 1;
    (*p)++;
    int64_t hh, mm = 0;
    if (!read_digits(p, e, 2, 2, &hh))
        return false;
    if (*p < e && **p == ':') {
        (*p)++;
        if (!read_digits(p, e, 2, 2, &mm))
            return false;
    } else if (*p < e && dig(**p)) {
        if (!read_digits(p, e, 2, 2, &mm))
            return false;
    }
    if (hh > 23 || mm > 59)
        return false;
    *off_s = sign * (hh * 3600 + mm * 60);
    return true;
}

/* ======================================================================== */
/* epoch numbers                                                            */
/* ======================================================================== */

typedef struct unit_name {
    const char *name;
    int64_t ns; /* nanoseconds per unit */
} unit_name;

static const unit_name units[] = {
    {"s", NS_PER_S},
    {"ms", 1000000},
    {"us", 1000},
    {"ns", 1},
};

int64_t rec__time_unit(const char *fmt)
{
    if (!fmt)
        return 0;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(fmt, units[i].name) == 0)
            return units[i].ns;
    return 0;
}

/* The unit inferred from the magnitude of the integer part (contract in
 * schema.h): each threshold is where the next finer unit starts to mean a
 * date after 1973-03-03, and where the coarser one would mean year 5138. */
static int64_t unit_by_magnitude(uint64_t mag)
{
    if (mag < 100000000000ull)
        return NS_PER_S;
    if (mag < 100000000000000ull)
        return 1000000;
    if (mag < 100000000000000000ull)
        return 1000;
    return 1;
}

/* Parses an epoch number in s[0..n) (already trimmed). unit 0 = infer.
 * Returns WEIR_EMALFORMED with why when it is not one. */
static int parse_epoch(const char *s, size_t n, int64_t unit, int64_t *ns_out, const char **why)
{
    int64_t iv;
    double dv;
    rec__numkind k = rec__parse_number(s, n, &iv, &dv);
    if (k == REC__NUM_NONE || k == REC__NUM_OVERFLOW) {
        *why = "not a time";
        return WEIR_EMALFORMED;
    }
    const char *e = s + n;
    const char *p = s;
    bool neg = *p == '-';
    if (*p == '+' || *p == '-')
        p++;
    if (memchr(s, 'e', n) || memchr(s, 'E', n)) {
        /* Exponent forms are rare; a double is close enough for them. */
        double mag = fabs(dv);
        if (k == REC__NUM_INT)
            mag = fabs((double)iv);
        int64_t u = unit ? unit : unit_by_magnitude(mag < 1e19 ? (uint64_t)mag : UINT64_MAX);
        double v = (k == REC__NUM_INT ? (double)iv : dv) * (double)u;
        if (!(v > -9.2e18 && v < 9.2e18)) {
            *why = "time outside what int64 nanoseconds hold (1677..2262)";
            return WEIR_EMALFORMED;
        }
        *ns_out = (int64_t)llround(v);
        return WEIR_OK;
    }
    /* Exact path: integer part and fraction digits. */
    uint64_t whole = 0;
    for (; p < e && dig(*p); p++) {
        if (whole > (UINT64_MAX - 9) / 10) {
            *why = "time outside what int64 nanoseconds hold (1677..2262)";
            return WEIR_EMALFORMED;
        }
        whole = whole * 10 + (uint64_t)(*p - '0');
    }
    int64_t frac9 = 0;
    if (p < e && *p == '.') {
        p++;
        if (p < e)
            read_fraction(&p, e, &frac9);
    }
    int64_t u = unit ? unit : unit_by_magnitude(whole);
    /* The magnitude in unsigned arithmetic: a negative time may reach 2^63. */
    uint64_t mag;
    uint64_t limit = (uint64_t)INT64_MAX + (neg ? 1 : 0);
    if (__builtin_mul_overflow(whole, (uint64_t)u, &mag) ||
        __builtin_add_overflow(mag, (uint64_t)(frac9 / (NS_PER_S / u)), &mag) || mag > limit) {
        *why = "time outside what int64 nanoseconds hold (1677..2262)";
        return WEIR_EMALFORMED;
    }
    *ns_out = !neg ? (int64_t)mag : mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
    return WEIR_OK;
}

/* ======================================================================== */
/* RFC 3339 / ISO 8601                                                      */
/* ======================================================================== */

static int parse_iso(const char *s, size_t n, int64_t *ns_out, const char **why)
{
    const char *p = s, *e = s + n;
    tparts t;
    tparts_init(&t);
    int64_t v;
    *why = "not an ISO 8601 time (YYYY-MM-DD[THH:MM[:SS[.frac]]][Z|+HH:MM])";
    if (!read_digits(&p, e, 4, 4, &t.year) || p >= e || *p++ != '-')
        return WEIR_EMALFORMED;
    if (!read_digits(&p, e, 2, 2, &v) || p >= e || *p++ != '-')
        return WEIR_EMALFORMED;
    t.mon = (int)v;
    if (!read_digits(&p, e, 2, 2, &v))
        return WEIR_EMALFORMED;
    t.day = (int)v;
    if (p < e) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return WEIR_EMALFORMED;
        p++;
        if (!read_digits(&p, e, 2, 2, &v) || p >= e || *p++ != ':')
            return WEIR_EMALFORMED;
        t.hour = (int)v;
        if (!read_digits(&p, e, 2, 2, &v))
            return WEIR_EMALFORMED;
        t.min = (int)v;
        if (p < e && *p == ':') {
            p++;
            if (!read_digits(&p, e, 2, 2, &v))
                return WEIR_EMALFORMED;
            t.sec = (int)v;
            if (p < e && (*p == '.' || *p == ',')) {
                p++;
                if (!read_fraction(&p, e, &t.nsec))
                    return WEIR_EMALFORMED;
            }
        }
        if (p < e && !read_offset(&p, e, &t.off_s))
            return WEIR_EMALFORMED;
        if (p != e)
            return WEIR_EMALFORMED;
    }
    return tparts_to_ns(&t, ns_out, why);
}

/* ======================================================================== */
/* strptime-style formats                                                   */
/* ======================================================================== */

typedef struct tconv tconv;
typedef bool (*conv_fn)(const tconv *cv, const char **p, const char *e, tparts *t);

/* One conversion: %c reads min..max digits into the tparts slot at `off`,
 * or runs `fn`, or expands to `expand`. */
struct tconv {
    char c;
    conv_fn fn;
    uint8_t min, max;
    size_t off;
    const char *expand;
};

static bool conv_int(const tconv *cv, const char **p, const char *e, tparts *t)
{
    int64_t v;
    if (!read_digits(p, e, cv->min, cv->max, &v))
        return false;
    *(int *)((char *)t + cv->off) = (int)v;
    return true;
}

static bool conv_year(const tconv *cv, const char **p, const char *e, tparts *t)
{
    return read_digits(p, e, 4, 4, &t->year);
}

static bool conv_year2(const tconv *cv, const char **p, const char *e, tparts *t)
{
    int64_t v;
    if (!read_digits(p, e, 2, 2, &v))
        return false;
    t->year = v < 69 ? 2000 + v : 1900 + v; /* POSIX */
    return true;
}

static bool conv_hour12(const tconv *cv, const char **p, const char *e, tparts *t)
{
    int64_t v;
    if (!read_digits(p, e, 1, 2, &v))
        return false;
    t->hour = (int)v;
    t->hour12 = true;
    return true;
}

static bool conv_space_day(const tconv *cv, const char **p, const char *e, tparts *t)
{
    if (*p < e && **p == ' ')
        (*p)++;
    int64_t v;
    if (!read_digits(p, e, 1, 2, &v))
        return false;
    t->day = (int)v;
    return true;
}

static bool conv_frac(const tconv *cv, const char **p, const char *e, tparts *t)
{
    return read_fraction(p, e, &t->nsec);
}

static bool conv_zone(const tconv *cv, const char **p, const char *e, tparts *t)
{
    return read_offset(p, e, &t->off_s);
}

static bool conv_epoch(const tconv *cv, const char **p, const char *e, tparts *t)
{
    bool neg = *p < e && **p == '-';
    if (neg)
        (*p)++;
    int64_t v;
    if (!read_digits(p, e, 1, 12, &v))
        return false;
    t->epoch = true;
    t->epoch_s = neg ? -v : v;
    return true;
}

/* Matches one of `names` (case-insensitively, longest first so that
 * "September" wins over "Sep"); returns its index or -1. */
static int match_name(const char **p, const char *e, const char *const *names, int count)
{
    int best = -1;
    size_t best_len = 0;
    for (int i = 0; i < count; i++) {
        size_t l = strlen(names[i]);
        if (l > best_len && (size_t)(e - *p) >= l && strncasecmp(*p, names[i], l) == 0) {
            best = i;
            best_len = l;
        }
    }
    *p += best_len;
    return best;
}

static const char *const month_names[] = {
    "January",   "February", "March",    "April",    "May", "June", "July", "August",
    "September", "October",  "November", "December", "Jan", "Feb",  "Mar",  "Apr",
    "Jun",       "Jul",      "Aug",      "Sep",      "Oct", "Nov",  "Dec",
};
/* Month of each entry above. */
static const int month_of[] = {1, 2, 3, 4, 5, 6, 7, 8, 9,  10, 11, 12,
                               1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12};

static bool conv_month_name(const tconv *cv, const char **p, const char *e, tparts *t)
{
    int i = match_name(p, e, month_names, (int)(sizeof(month_names) / sizeof(month_names[0])));
    if (i < 0)
        return false;
    t->mon = month_of[i];
    return true;
}

static bool conv_weekday(const tconv *cv, const char **p, const char *e, tparts *t)
{
    static const char *const days[] = {"Monday",   "Tuesday", "Wednesday", "Thursday", "Friday",
                                       "Saturday", "Sunday",  "Mon",       "Tue",      "Wed",
                                       "Thu",      "Fri",     "Sat",       "Sun"};
    return match_name(p, e, days, (int)(sizeof(days) / sizeof(days[0]))) >= 0;
}

static bool conv_ampm(const tconv *cv, const char **p, const char *e, tparts *t)
{
    static const char *const ampm[] = {"AM", "PM"};
    int i = match_name(p, e, ampm, 2);
    if (i < 0)
        return false;
    t->pm = i;
    return true;
}

static bool conv_zone_name(const tconv *cv, const char **p, const char *e, tparts *t)
{
    static const char *const utc[] = {"UTC", "GMT", "Z"};
    t->off_s = 0;
    return match_name(p, e, utc, 3) >= 0;
}

static const tconv convs[] = {
    {'Y', conv_year, 0, 0, 0, NULL},
    {'y', conv_year2, 0, 0, 0, NULL},
    {'m', conv_int, 1, 2, offsetof(tparts, mon), NULL},
    {'d', conv_int, 1, 2, offsetof(tparts, day), NULL},
    {'e', conv_space_day, 0, 0, 0, NULL},
    {'j', conv_int, 1, 3, offsetof(tparts, yday), NULL},
    {'H', conv_int, 1, 2, offsetof(tparts, hour), NULL},
    {'I', conv_hour12, 0, 0, 0, NULL},
    {'M', conv_int, 1, 2, offsetof(tparts, min), NULL},
    {'S', conv_int, 1, 2, offsetof(tparts, sec), NULL},
    {'f', conv_frac, 0, 0, 0, NULL},
    {'p', conv_ampm, 0, 0, 0, NULL},
    {'b', conv_month_name, 0, 0, 0, NULL},
    {'B', conv_month_name, 0, 0, 0, NULL},
    {'h', conv_month_name, 0, 0, 0, NULL},
    {'a', conv_weekday, 0, 0, 0, NULL},
    {'A', conv_weekday, 0, 0, 0, NULL},
    {'z', conv_zone, 0, 0, 0, NULL},
    {'Z', conv_zone_name, 0, 0, 0, NULL},
    {'s', conv_epoch, 0, 0, 0, NULL},
    {'T', NULL, 0, 0, 0, "%H:%M:%S"},
    {'F', NULL, 0, 0, 0, "%Y-%m-%d"},
};

static const tconv *conv_find(char c)
{
    for (size_t i = 0; i < sizeof(convs) / sizeof(convs[0]); i++)
        if (convs[i].c == c)
            return &convs[i];
    return NULL;
}

static inline bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* Runs fmt over [*p, e). Returns WEIR_OK, WEIR_EINVAL (bad fmt) or
 * WEIR_EMALFORMED (input does not match). */
static int run_format(const char *fmt, const char **p, const char *e, tparts *t, const char **why)
{
    for (const char *f = fmt; *f; f++) {
        if (is_space(*f)) {
            while (*p < e && is_space(**p))
                (*p)++;
            continue;
        }
        if (*f != '%' || f[1] == '%') {
            f += *f == '%';
            if (*p >= e || **p != *f) {
                *why = "time does not match the format";
                return WEIR_EMALFORMED;
            }
            (*p)++;
            continue;
        }
        const tconv *cv = conv_find(*++f);
        if (!cv) {
            *why = "unknown conversion in the time format";
            return WEIR_EINVAL;
        }
        if (cv->expand) {
            int rc = run_format(cv->expand, p, e, t, why);
            if (rc)
                return rc;
            continue;
        }
        if (!cv->fn(cv, p, e, t)) {
            *why = "time does not match the format";
            return WEIR_EMALFORMED;
        }
    }
    return WEIR_OK;
}

int rec__parse_time(const char *s, size_t n, const char *fmt, int64_t *ns_out, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    int64_t unit = rec__time_unit(fmt);
    if (fmt && !unit) {
        tparts t;
        tparts_init(&t);
        const char *p = s, *e = s + n;
        int rc = run_format(fmt, &p, e, &t, why);
        if (rc)
            return rc;
        if (p != e) {
            *why = "text after the time";
            return WEIR_EMALFORMED;
        }
        return tparts_to_ns(&t, ns_out, why);
    }
    rec__trim(&s, &n);
    if (n == 0) {
        *why = "empty time";
        return WEIR_EMALFORMED;
    }
    if (unit)
        return parse_epoch(s, n, unit, ns_out, why);
    /* A date has '-' after its fourth digit; an epoch number never does. */
    int64_t iv;
    double dv;
    if (rec__parse_number(s, n, &iv, &dv) != REC__NUM_NONE)
        return parse_epoch(s, n, 0, ns_out, why);
    return parse_iso(s, n, ns_out, why);
}

int rec_parse_time(const char *s, size_t n, const char *fmt, int64_t *ns_out)
{
    return rec__parse_time(s, n, fmt, ns_out, NULL);
}

int rec__time_format_check(const char *fmt)
{
    if (!fmt || rec__time_unit(fmt))
        return WEIR_OK;
    for (const char *f = fmt; *f; f++) {
        if (*f != '%')
            continue;
        f++;
        if (*f == '%')
            continue;
        if (!*f || !conv_find(*f))
            return WEIR_EINVAL;
    }
    return WEIR_OK;
}
