/* metrics.c -- see metrics.h.
 *
 * Layout: the registry is a list of families in registration order; each
 * family owns a list of series in registration order. A series is allocated
 * on its own so that the counter cell inside it keeps its address for the
 * registry's lifetime: owners hold that pointer and increment it without
 * asking the registry again.
 *
 * Lookups are linear. Registration happens at start-up and when a new label
 * set first appears (a packet type, a stream), and callers keep the pointer,
 * so the registry is small and rarely searched; rendering visits everything
 * anyway.
 */
#include "metrics/metrics.h"
#include "base/err.h"

#include <dirent.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef enum metrics_type {
    METRICS_COUNTER,
    METRICS_GAUGE,
} metrics_type;

/* Indexed by metrics_type: the word written after "# TYPE name". */
static const char *const metrics__type_names[] = {
    [METRICS_COUNTER] = "counter",
    [METRICS_GAUGE] = "gauge",
};

typedef struct metrics_series {
    struct metrics_series *next; /* next series of the same family */
    char *labels;                /* owned; inside of {} or NULL for none */
    uint64_t count;              /* the counter cell handed to the owner */
    const uint64_t *ref;         /* a cell owned elsewhere (metrics_counter_ref) */
    metrics_gauge_fn fn;         /* gauges: reads the value at render time */
    void *arg;                   /* gauges: passed to fn */
} metrics_series;

typedef struct metrics_family {
    struct metrics_family *next; /* next family in registration order */
    char *name;                  /* owned */
    char *help;                  /* owned; unescaped */
    metrics_type type;
    metrics_series *head;  /* series in registration order */
    metrics_series **tail; /* where the next series is linked */
} metrics_family;

struct metrics {
    pthread_mutex_t lock;  /* guards the lists, not the counter cells */
    metrics_family *head;  /* families in registration order */
    metrics_family **tail; /* where the next family is linked */
    void (*collector)(void *arg, weir_buf *out); /* dynamic series, see metrics.h */
    void *collector_arg;
};

/* ------------------------------------------------------------------------ */
/* Registry                                                                 */
/* ------------------------------------------------------------------------ */

metrics *metrics_new(void)
{
    metrics *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->lock, NULL)) {
        free(m);
        return NULL;
    }
    m->tail = &m->head;
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    metrics_family *f = m->head;
    while (f) {
        metrics_family *fnext = f->next;
        metrics_series *s = f->head;
        while (s) {
            metrics_series *snext = s->next;
            free(s->labels);
            free(s);
            s = snext;
        }
        free(f->name);
        free(f->help);
        free(f);
        f = fnext;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/* Prometheus metric names: [a-zA-Z_:][a-zA-Z0-9_:]*. */
static int metrics__valid_name(const char *name)
{
    if (!name || !*name)
        return 0;
    for (const char *p = name; *p; p++) {
        char c = *p;
        int alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        int digit = c >= '0' && c <= '9';
        if (!alpha && !(digit && p != name))
            return 0;
    }
    return 1;
}

/* "" and NULL both mean "no labels"; keep one spelling so lookups agree. */
static const char *metrics__norm_labels(const char *labels)
{
    return labels && *labels ? labels : NULL;
}

static int metrics__labels_equal(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static metrics_family *metrics__find_family(metrics *m, const char *name)
{
    for (metrics_family *f = m->head; f; f = f->next)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static metrics_series *metrics__find_series(metrics_family *f, const char *labels)
{
    for (metrics_series *s = f->head; s; s = s->next)
        if (metrics__labels_equal(s->labels, labels))
            return s;
    return NULL;
}

/* Finds the family or creates it with the given type. Sets *err and returns
 * NULL on a type clash or OOM. Caller holds the lock. */
static metrics_family *metrics__family(metrics *m, const char *name, const char *help,
                                       metrics_type type, int *err)
{
    metrics_family *f = metrics__find_family(m, name);
    if (f) {
        if (f->type != type) {
            *err = WEIR_EINVAL;
            return NULL;
        }
        return f;
    }
    f = calloc(1, sizeof(*f));
    if (!f)
        goto oom;
    f->name = strdup(name);
    f->help = strdup(help ? help : "");
    if (!f->name || !f->help)
        goto oom;
    f->type = type;
    f->tail = &f->head;
    *m->tail = f;
    m->tail = &f->next;
    return f;

oom:
    if (f) {
        free(f->name);
        free(f->help);
        free(f);
    }
    *err = WEIR_ENOMEM;
    return NULL;
}

/* Appends a new series to f. Caller holds the lock. */
static metrics_series *metrics__add_series(metrics_family *f, const char *labels)
{
    metrics_series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    if (labels && !(s->labels = strdup(labels))) {
        free(s);
        return NULL;
    }
    *f->tail = s;
    f->tail = &s->next;
    return s;
}

uint64_t *metrics_counter(metrics *m, const char *name, const char *help, const char *labels)
{
    if (!m || !metrics__valid_name(name))
        return NULL;
    labels = metrics__norm_labels(labels);
    uint64_t *cell = NULL;
    int err = WEIR_OK;
    pthread_mutex_lock(&m->lock);
    metrics_family *f = metrics__family(m, name, help, METRICS_COUNTER, &err);
    if (f) {
        metrics_series *s = metrics__find_series(f, labels);
        if (!s)
            s = metrics__add_series(f, labels);
        if (s)
            cell = &s->count;
    }
    pthread_mutex_unlock(&m->lock);
    return cell;
}

/* Registers one new series whose value is read at render time, either from
 * a cell owned elsewhere (ref) or through a callback (fn, arg). */
static int metrics__add_read_series(metrics *m, const char *name, const char *help,
                                    const char *labels, metrics_type type, const uint64_t *ref,
                                    metrics_gauge_fn fn, void *arg)
{
    if (!m || !(ref || fn) || !metrics__valid_name(name))
        return WEIR_EINVAL;
    labels = metrics__norm_labels(labels);
    int err = WEIR_OK;
    pthread_mutex_lock(&m->lock);
    metrics_family *f = metrics__family(m, name, help, type, &err);
    if (!f)
        goto out;
    if (metrics__find_series(f, labels)) {
        err = WEIR_EEXIST;
        goto out;
    }
    metrics_series *s = metrics__add_series(f, labels);
    if (!s) {
        err = WEIR_ENOMEM;
        goto out;
    }
    s->ref = ref;
    s->fn = fn;
    s->arg = arg;
out:
    pthread_mutex_unlock(&m->lock);
    return err;
}

int metrics_counter_ref(metrics *m, const char *name, const char *help, const char *labels,
                        const uint64_t *cell)
{
    return metrics__add_read_series(m, name, help, labels, METRICS_COUNTER, cell, NULL, NULL);
}

int metrics_gauge(metrics *m, const char *name, const char *help, const char *labels,
                  metrics_gauge_fn fn, void *arg)
{
    return metrics__add_read_series(m, name, help, labels, METRICS_GAUGE, NULL, fn, arg);
}

/* ------------------------------------------------------------------------ */
/* Text output                                                              */
/* ------------------------------------------------------------------------ */

static int metrics__appendf(weir_buf *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int metrics__appendf(weir_buf *out, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return WEIR_EINVAL;
    if ((size_t)n < sizeof(small))
        return buf_append(out, small, (size_t)n);

    /* Long line (a long HELP text or label set): format into the heap. */
    char *big = malloc((size_t)n + 1);
    if (!big)
        return WEIR_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = buf_append(out, big, (size_t)n);
    free(big);
    return rc;
}

/* HELP text escapes backslash and newline, nothing else (format 0.0.4). */
static int metrics__append_help(weir_buf *out, const char *help)
{
    for (const char *p = help; *p; p++) {
        int rc;
        if (*p == '\\')
            rc = buf_append(out, "\\\\", 2);
        else if (*p == '\n')
            rc = buf_append(out, "\\n", 2);
        else
            rc = buf_append(out, p, 1);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static int metrics__append_header(weir_buf *out, const char *name, const char *help,
                                  metrics_type type)
{
    int rc = metrics__appendf(out, "# HELP %s ", name);
    if (!rc)
        rc = metrics__append_help(out, help);
    if (!rc)
        rc = metrics__appendf(out, "\n# TYPE %s %s\n", name, metrics__type_names[type]);
    return rc;
}

/* Formats a float the way Prometheus parses it: NaN, +Inf, -Inf, or the
 * shortest of %.15g / %.17g that reads back to the same double. */
static void metrics__format_double(double v, char *dst, size_t len)
{
    if (isnan(v)) {
        snprintf(dst, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(dst, len, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(dst, len, "%.15g", v);
    if (strtod(dst, NULL) != v)
        snprintf(dst, len, "%.17g", v);
}

static int metrics__append_series(weir_buf *out, const char *name, const char *labels,
                                  const char *value)
{
    if (labels)
        return metrics__appendf(out, "%s{%s} %s\n", name, labels, value);
    return metrics__appendf(out, "%s %s\n", name, value);
}

static int metrics__render_family(const metrics_family *f, weir_buf *out)
{
    int rc = metrics__append_header(out, f->name, f->help, f->type);
    for (const metrics_series *s = f->head; s && !rc; s = s->next) {
        char value[64];
        if (f->type == METRICS_COUNTER)
            snprintf(value, sizeof(value), "%" PRIu64,
                     __atomic_load_n(s->ref ? s->ref : &s->count, __ATOMIC_RELAXED));
        else
            metrics__format_double(s->fn(s->arg), value, sizeof(value));
        rc = metrics__append_series(out, f->name, s->labels, value);
    }
    return rc;
}

/* ------------------------------------------------------------------------ */
/* Process metrics (/proc/self)                                             */
/* ------------------------------------------------------------------------ */

/* What the standard Prometheus process collector reports. A field stays NaN
 * when its source cannot be read (no /proc), and its line is left out. */
typedef struct metrics_proc {
    double rss_bytes;
    double vsize_bytes;
    double cpu_seconds;
    double start_time_seconds;
    double open_fds;
    double max_fds;
} metrics_proc;

static const struct {
    const char *name;
    const char *help;
    metrics_type type;
    size_t offset; /* of the double in metrics_proc */
} metrics__proc_rows[] = {
    {"process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
     METRICS_COUNTER, offsetof(metrics_proc, cpu_seconds)},
    {"process_open_fds", "Number of open file descriptors.", METRICS_GAUGE,
     offsetof(metrics_proc, open_fds)},
    {"process_max_fds", "Maximum number of open file descriptors.", METRICS_GAUGE,
     offsetof(metrics_proc, max_fds)},
    {"process_virtual_memory_bytes", "Virtual memory size in bytes.", METRICS_GAUGE,
     offsetof(metrics_proc, vsize_bytes)},
    {"process_resident_memory_bytes", "Resident memory size in bytes.", METRICS_GAUGE,
     offsetof(metrics_proc, rss_bytes)},
    {"process_start_time_seconds", "Start time of the process since unix epoch in seconds.",
     METRICS_GAUGE, offsetof(metrics_proc, start_time_seconds)},
};

/* The boot time from /proc/stat ("btime N"), or -1. */
static long long metrics__boot_time(void)
{
    FILE *fp = fopen("/proc/stat", "r");
    if (!fp)
        return -1;
    char line[256];
    long long btime = -1;
    while (fgets(line, sizeof(line), fp))
        if (sscanf(line, "btime %lld", &btime) == 1)
            break;
    fclose(fp);
    return btime;
}

/* The /proc/self/stat fields we read, by their 1-based position (proc(5)). */
enum {
    METRICS_STAT_UTIME,
    METRICS_STAT_STIME,
    METRICS_STAT_STARTTIME,
    METRICS_STAT_VSIZE,
    METRICS_STAT_RSS,
    METRICS_STAT_COUNT
};
static const int metrics__stat_fields[METRICS_STAT_COUNT] = {
    [METRICS_STAT_UTIME] = 14, [METRICS_STAT_STIME] = 15, [METRICS_STAT_STARTTIME] = 22,
    [METRICS_STAT_VSIZE] = 23, [METRICS_STAT_RSS] = 24,
};

/* Reads CPU time, start time, vsize and rss from /proc/self/stat. The second
 * field (comm) is in parentheses and may itself hold spaces and parentheses,
 * so fields are counted from the last ')'. */
static void metrics__read_stat(metrics_proc *p)
{
    char text[1024];
    FILE *fp = fopen("/proc/self/stat", "r");
    if (!fp)
        return;
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    char *s = strrchr(text, ')');
    if (!s)
        return;

    unsigned long long v[METRICS_STAT_COUNT];
    int have = 0;
    /* Field 3 (state) is the first after ')'. */
    for (int field = 3; s && have < METRICS_STAT_COUNT; field++) {
        s += strspn(s, ") ");
        for (int k = 0; k < METRICS_STAT_COUNT; k++) {
            if (metrics__stat_fields[k] == field) {
                v[k] = strtoull(s, NULL, 10);
                have++;
            }
        }
        s = strchr(s, ' ');
    }
    long ticks = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (have != METRICS_STAT_COUNT || ticks <= 0 || page <= 0)
        return;
    p->cpu_seconds = (double)(v[METRICS_STAT_UTIME] + v[METRICS_STAT_STIME]) / (double)ticks;
    p->vsize_bytes = (double)v[METRICS_STAT_VSIZE];
    p->rss_bytes = (double)v[METRICS_STAT_RSS] * (double)page;
    long long btime = metrics__boot_time();
    if (btime >= 0)
        p->start_time_seconds = (double)btime + (double)v[METRICS_STAT_STARTTIME] / (double)ticks;
}

static void metrics__read_fds(metrics_proc *p)
{
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        long count = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                count++;
        closedir(d);
        /* Leave out the descriptor opendir itself held while counting. */
        p->open_fds = (double)(count > 0 ? count - 1 : 0);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        p->max_fds = (double)rl.rlim_cur;
}

static int metrics__render_process(weir_buf *out)
{
    metrics_proc p = {NAN, NAN, NAN, NAN, NAN, NAN};
    metrics__read_stat(&p);
    metrics__read_fds(&p);
    int rc = WEIR_OK;
    for (size_t i = 0; i < sizeof(metrics__proc_rows) / sizeof(metrics__proc_rows[0]) && !rc; i++) {
        double v = *(const double *)((const char *)&p + metrics__proc_rows[i].offset);
        if (isnan(v))
            continue;
        char value[64];
        metrics__format_double(v, value, sizeof(value));
        rc = metrics__append_header(out, metrics__proc_rows[i].name, metrics__proc_rows[i].help,
                                    metrics__proc_rows[i].type);
        if (!rc)
            rc = metrics__append_series(out, metrics__proc_rows[i].name, NULL, value);
    }
    return rc;
}

int metrics_render(metrics *m, weir_buf *out)
{
    int rc = WEIR_OK;
    pthread_mutex_lock(&m->lock);
    for (const metrics_family *f = m->head; f && !rc; f = f->next)
        rc = metrics__render_family(f, out);
    void (*collect)(void *, weir_buf *) = m->collector;
    void *carg = m->collector_arg;
    pthread_mutex_unlock(&m->lock);
    if (!rc && collect)
        collect(carg, out);
    if (!rc)
        rc = metrics__render_process(out);
    return rc;
}

void metrics_set_collector(metrics *m, void (*fn)(void *arg, weir_buf *out), void *arg)
{
    pthread_mutex_lock(&m->lock);
    m->collector = fn;
    m->collector_arg = arg;
    pthread_mutex_unlock(&m->lock);
}
