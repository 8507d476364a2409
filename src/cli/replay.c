/* replay.c -- `weir replay FILE`: a device simulator that replays a CSV file
 * over MQTT as N devices, at a chosen speed, so that a node (and its
 * dashboard) sees a plant's readings arrive live.
 *
 * Two shapes of file:
 *
 *  - The UCI Appliances Energy file (demo/data/...csv.xz; columns date,
 *    Appliances, lights, T1, RH_1, ... T9, RH_9, T_out, ...), detected by
 *    its header: every row becomes one message per room, room1..roomN
 *    (N = --devices, at most 9), each its own MQTT connection:
 *      {"device":"room3","ts":<ms>,"temperature":T3,"humidity":RH_3}
 *  - Any other CSV with a header: each row becomes one message with every
 *    column (numbers as numbers) plus "device" and "ts"; the device is the
 *    --key column's value, or devices dev1..devN in turn.
 *
 * Timing: rows keep their spacing in the file's time column (--time-column,
 * default the first), divided by --speedup; or go out at --rate rows per
 * second. Event time ("ts", epoch ms): --time original keeps the file's,
 * --time now stamps the moment of publishing (so charts of "the last
 * minutes" move), --time shift moves the file's first instant to the start
 * of the replay. --loop starts again at the end (with --time original the
 * timestamps then repeat).
 *
 * .xz files are read through `xz -dc` (xz-utils); anything else directly.
 * One thread, one libuv loop: a timer publishes each row when it is due.
 */
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "cli/cli.h"
#include "cli/mqttc.h"
#include "cli/replay_csv.h"

#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define REPLAY_MAX_COLS    256
#define REPLAY_MAX_DEVICES 10000
#define REPLAY_MAX_LINE    (1u << 20)

typedef struct replay_opts {
    const char *file;
    char host[256];
    int port;
    const char *topic; /* template with {device} */
    int devices;
    double speedup, rate;
    bool loop;
    const char *time_mode; /* original | now | shift */
    const char *time_column;
    const char *key;
    long limit;
    int qos;
    bool quiet;
    bool exit_with_parent; /* the demo's child: stop when the node is gone */
} replay_opts;

typedef struct replay replay;

typedef struct rdev {
    replay *r;
    char name[64];
    mqttc *c;
    bool up;
} rdev;

struct replay {
    replay_opts o;
    uv_loop_t loop;
    uv_timer_t timer;
    uv_signal_t sigint, sigterm;
    uv_timer_t parent_check;
    pid_t parent;
    FILE *f;
    bool piped;
    char *line;
    char *cols[REPLAY_MAX_COLS];
    char *header[REPLAY_MAX_COLS];
    int n_header;
    bool uci;
    int uci_t[10], uci_rh[10]; /* column of T<i> and RH_<i> */
    int time_col, key_col;
    rdev *dev;
    int n_dev, connected, failed;
    long rows, msgs, drops, rr;
    int64_t first_ts, prev_ts, shift_ms, start_wall_ms;
    int64_t loop_offset_ms; /* added per --loop pass (time original: 0) */
    int64_t due_mono;       /* when the pending row is due */
    int pend_ncols;         /* the pending row: r->cols[0..pend_ncols) */
    int64_t pend_ts;
    bool have_row, stopping;
    int status;
};

/* ---- CSV ------------------------------------------------------------------ */

static bool is_number(const char *s)
{
    char *end;
    if (!*s)
        return false;
    double d = strtod(s, &end);
    return !*end && isfinite(d);
}

/* ---- Input ---------------------------------------------------------------- */

static int open_input(replay *r)
{
    size_t n = strlen(r->o.file);
    if (n > 3 && !strcmp(r->o.file + n - 3, ".xz")) {
        char cmd[4200];
        /* The name goes to the shell single-quoted; refuse a quote in it. */
        if (strchr(r->o.file, '\'')) {
            fprintf(stderr, "weir replay: a file name with a quote cannot be piped to xz\n");
            return -1;
        }
        snprintf(cmd, sizeof(cmd), "xz -dc -- '%s'", r->o.file);
        r->f = popen(cmd, "r");
        r->piped = true;
    } else {
        r->f = fopen(r->o.file, "r");
        r->piped = false;
    }
    if (!r->f) {
        fprintf(stderr, "weir replay: cannot open %s\n", r->o.file);
        return -1;
    }
    return 0;
}

static void close_input(replay *r)
{
    if (!r->f)
        return;
    if (r->piped)
        pclose(r->f);
    else
        fclose(r->f);
    r->f = NULL;
}

static int read_header(replay *r)
{
    if (!fgets(r->line, REPLAY_MAX_LINE, r->f)) {
        fprintf(stderr, "weir replay: %s is empty\n", r->o.file);
        return -1;
    }
    int n = replay_csv_split(r->line, r->cols, REPLAY_MAX_COLS);
    for (int i = 0; i < r->n_header; i++)
        free(r->header[i]);
    r->n_header = n;
    for (int i = 0; i < n; i++)
        r->header[i] = strdup(replay_trim(r->cols[i]));
    return 0;
}

static int column(replay *r, const char *name)
{
    for (int i = 0; i < r->n_header; i++)
        if (r->header[i] && !strcmp(r->header[i], name))
            return i;
    return -1;
}

static void detect_shape(replay *r)
{
    r->uci = true;
    for (int i = 1; i <= 9; i++) {
        char t[16], rh[16];
        snprintf(t, sizeof(t), "T%d", i);
        snprintf(rh, sizeof(rh), "RH_%d", i);
        r->uci_t[i] = column(r, t);
        r->uci_rh[i] = column(r, rh);
        if (r->uci_t[i] < 0 || r->uci_rh[i] < 0)
            r->uci = false;
    }
    r->time_col = r->o.time_column ? column(r, r->o.time_column) : 0;
    r->key_col = r->o.key ? column(r, r->o.key) : -1;
}

/* Reads the next data row into r->cols; false at the end of the file. */
static bool next_row(replay *r, int *ncols)
{
    for (;;) {
        if (!fgets(r->line, REPLAY_MAX_LINE, r->f))
            return false;
        if (r->line[0] == '\n' || r->line[0] == '\r')
            continue;
        *ncols = replay_csv_split(r->line, r->cols, REPLAY_MAX_COLS);
        return true;
    }
}

/* ---- Publishing ----------------------------------------------------------- */

static void topic_for(const replay *r, const char *device, char *out, size_t len)
{
    const char *t = r->o.topic, *ph = strstr(t, "{device}");
    if (!ph)
        snprintf(out, len, "%s", t);
    else
        snprintf(out, len, "%.*s%s%s", (int)(ph - t), t, device, ph + 8);
}

static void publish(replay *r, rdev *d, const char *device, const char *payload, size_t len)
{
    char topic[512];
    topic_for(r, device, topic, sizeof(topic));
    if (!d->c || !d->up || mqttc_publish(d->c, topic, payload, len, r->o.qos) < 0)
        r->drops++;
    else
        r->msgs++;
}

static int64_t event_ts(replay *r, int64_t row_ts)
{
    if (!strcmp(r->o.time_mode, "now"))
        return weir_wall_ns() / WEIR_NS_PER_MS;
    if (!strcmp(r->o.time_mode, "shift"))
        return row_ts + r->shift_ms + r->loop_offset_ms;
    return row_ts;
}

static void send_row(replay *r, int ncols, int64_t row_ts)
{
    char buf[65536];
    int64_t ts = event_ts(r, row_ts == INT64_MIN ? weir_wall_ns() / WEIR_NS_PER_MS : row_ts);
    if (r->uci) {
        for (int i = 1; i <= r->n_dev; i++) {
            int tc = r->uci_t[i], hc = r->uci_rh[i];
            if (tc >= ncols || hc >= ncols)
                continue;
            const char *t = replay_trim(r->cols[tc]), *h = replay_trim(r->cols[hc]);
            if (!is_number(t) || !is_number(h))
                continue;
            int n = snprintf(buf, sizeof(buf),
                             "{\"device\":\"%s\",\"ts\":%lld,\"temperature\":%.4g,"
                             "\"humidity\":%.4g}",
                             r->dev[i - 1].name, (long long)ts, strtod(t, NULL), strtod(h, NULL));
            publish(r, &r->dev[i - 1], r->dev[i - 1].name, buf, (size_t)n);
        }
        return;
    }
    /* With a key column its value is the device (name, topic) and the
     * connection is picked by a hash of it, so one device always uses the
     * same one; without, devices take rows in turn. */
    rdev *d;
    char device[64];
    const char *keyv = r->key_col >= 0 && r->key_col < ncols ? replay_trim(r->cols[r->key_col]) : NULL;
    if (keyv && *keyv) {
        unsigned long h = 5381;
        size_t k = 0;
        for (const char *p = keyv; *p; p++) {
            h = h * 33 + (unsigned char)*p;
            if (k < sizeof(device) - 1 && *p != '"' && *p != '\\' && *p != '/' && *p != '+' &&
                *p != '#' && (unsigned char)*p >= 0x20)
                device[k++] = *p;
        }
        device[k] = '\0';
        d = &r->dev[h % (unsigned long)r->n_dev];
    } else {
        d = &r->dev[(unsigned long)r->rr++ % (unsigned long)r->n_dev];
        snprintf(device, sizeof(device), "%s", d->name);
    }
    size_t n = (size_t)snprintf(buf, sizeof(buf), "{\"device\":\"%s\",\"ts\":%lld", device,
                                (long long)ts);
    for (int i = 0; i < ncols && i < r->n_header && n < sizeof(buf) - 256; i++) {
        if (i == r->time_col || !r->header[i] || !strcmp(r->header[i], "device") ||
            !strcmp(r->header[i], "ts"))
            continue;
        const char *v = replay_trim(r->cols[i]);
        bool num = is_number(v);
        /* Names and text values are written as they are, minus quotes and
         * backslashes (a simulator's payload, not a converter). */
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"%s\":%s", r->header[i],
                              num ? "" : "\"");
        for (const char *p = v; *p && n < sizeof(buf) - 8; p++)
            if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                buf[n++] = *p;
        if (!num)
            buf[n++] = '"';
    }
    buf[n++] = '}';
    publish(r, d, device, buf, n);
}

static void stop(replay *r, int status);

/* Reads the next row (looping when asked) and works out when it is due.
 * False at the end (the replay is then stopped). */
static bool load_next(replay *r)
{
    int ncols = 0;
    while (!next_row(r, &ncols)) {
        if (!r->o.loop) {
            stop(r, 0);
            return false;
        }
        close_input(r);
        if (open_input(r) || read_header(r)) {
            stop(r, 1);
            return false;
        }
        /* Shifted time continues after the file's span. */
        if (r->prev_ts != INT64_MIN && r->first_ts != INT64_MIN)
            r->loop_offset_ms += r->prev_ts - r->first_ts + 1;
        r->prev_ts = INT64_MIN;
    }
    int64_t row_ts = r->time_col >= 0 && r->time_col < ncols
                         ? replay_parse_time_ms(replay_trim(r->cols[r->time_col]))
                         : INT64_MIN;
    if (r->first_ts == INT64_MIN && row_ts != INT64_MIN) {
        r->first_ts = row_ts;
        r->shift_ms = r->start_wall_ms - row_ts;
    }
    double gap_ms = 0;
    if (r->o.rate > 0)
        gap_ms = r->rows || r->have_row ? 1000.0 / r->o.rate : 0;
    else if (row_ts != INT64_MIN && r->prev_ts != INT64_MIN && row_ts >= r->prev_ts)
        gap_ms = (double)(row_ts - r->prev_ts) / r->o.speedup;
    if (row_ts != INT64_MIN)
        r->prev_ts = row_ts;
    r->due_mono += (int64_t)(gap_ms * 1e6);
    int64_t now = weir_mono_ns();
    if (r->due_mono < now - 1000 * WEIR_NS_PER_MS)
        r->due_mono = now; /* far behind (a stall): do not burst to catch up */
    r->pend_ncols = ncols;
    r->pend_ts = row_ts;
    r->have_row = true;
    return true;
}

/* The pending row is due: publish it, load the next, wait for it. */
static void on_timer(uv_timer_t *t)
{
    replay *r = t->data;
    if (r->stopping)
        return;
    if (r->have_row) {
        send_row(r, r->pend_ncols, r->pend_ts);
        r->have_row = false;
        if (++r->rows == r->o.limit) {
            stop(r, 0);
            return;
        }
    }
    if (!load_next(r))
        return;
    int64_t now = weir_mono_ns();
    uint64_t wait = r->due_mono > now ? (uint64_t)((r->due_mono - now) / WEIR_NS_PER_MS) : 0;
    uv_timer_start(&r->timer, on_timer, wait, 0);
}

static void on_dev_connect(void *arg, int rc)
{
    rdev *d = arg;
    replay *r = d->r;
    if (rc) {
        r->failed++;
        fprintf(stderr, "weir replay: %s: cannot connect to %s:%d\n", d->name, r->o.host,
                r->o.port);
        stop(r, 1);
        return;
    }
    d->up = true;
    if (++r->connected == r->n_dev) {
        r->due_mono = weir_mono_ns();
        r->start_wall_ms = weir_wall_ns() / WEIR_NS_PER_MS;
        if (!r->o.quiet)
            fprintf(stderr, "weir replay: %d devices connected to %s:%d, replaying %s%s\n",
                    r->n_dev, r->o.host, r->o.port, r->o.file, r->uci ? " (UCI rooms)" : "");
        uv_timer_start(&r->timer, on_timer, 0, 0);
    }
}

static void on_dev_close(void *arg)
{
    rdev *d = arg;
    d->c = NULL;
    d->up = false;
    if (!d->r->stopping) {
        fprintf(stderr, "weir replay: %s: connection lost\n", d->name);
        stop(d->r, 1);
    }
}

static void stop(replay *r, int status)
{
    if (r->stopping)
        return;
    r->stopping = true;
    r->status = status;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, NULL);
    uv_close((uv_handle_t *)&r->parent_check, NULL);
    uv_close((uv_handle_t *)&r->sigint, NULL);
    uv_close((uv_handle_t *)&r->sigterm, NULL);
    for (int i = 0; i < r->n_dev; i++)
        if (r->dev[i].c)
            mqttc_close(r->dev[i].c);
}

static void on_parent_check(uv_timer_t *t)
{
    replay *r = t->data;
    if (getppid() != r->parent) {
        fprintf(stderr, "weir replay: parent process gone, stopping\n");
        stop(r, 0);
    }
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    stop(s->data, 0);
}

/* ---- Command -------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f, "usage: weir replay FILE[.xz] [--mqtt HOST:PORT] [--topic TEMPLATE]\n"
               "                  [--devices N] [--speedup X | --rate ROWS_PER_S] [--loop]\n"
               "                  [--time original|now|shift] [--time-column NAME]\n"
               "                  [--key COLUMN] [--limit ROWS] [--qos 0|1] [--quiet]\n"
               "                  [--exit-with-parent]\n\n"
               "Replays a CSV over MQTT as N devices. The UCI Appliances Energy file is\n"
               "recognised and sent as one device per room (room1..room9, temperature and\n"
               "humidity). Defaults: 127.0.0.1:1883, topic factory/{device}/climate, 9\n"
               "devices, speed-up 1, --time original.\n");
}

int cli_replay(int argc, char **argv)
{
    static const struct option lo[] = {
        {"mqtt", required_argument, 0, 'm'},    {"topic", required_argument, 0, 't'},
        {"devices", required_argument, 0, 'n'}, {"speedup", required_argument, 0, 'x'},
        {"rate", required_argument, 0, 'r'},    {"loop", no_argument, 0, 'l'},
        {"time", required_argument, 0, 'T'},    {"time-column", required_argument, 0, 'c'},
        {"key", required_argument, 0, 'k'},     {"limit", required_argument, 0, 'L'},
        {"qos", required_argument, 0, 'q'},     {"quiet", no_argument, 0, 'Q'},
        {"exit-with-parent", no_argument, 0, 'E'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    replay *r = calloc(1, sizeof(*r));
    if (!r)
        return 1;
    replay_opts *o = &r->o;
    *o = (replay_opts){.topic = "factory/{device}/climate", .devices = 9, .speedup = 1,
                       .time_mode = "original"};
    const char *mqtt = "127.0.0.1:1883";
    int c, status = 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'm': mqtt = optarg; break;
        case 't': o->topic = optarg; break;
        case 'n': o->devices = atoi(optarg); break;
        case 'x': o->speedup = atof(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'l': o->loop = true; break;
        case 'T': o->time_mode = optarg; break;
        case 'c': o->time_column = optarg; break;
        case 'k': o->key = optarg; break;
        case 'L': o->limit = atol(optarg); break;
        case 'q': o->qos = atoi(optarg); break;
        case 'Q': o->quiet = true; break;
        case 'E': o->exit_with_parent = true; break;
        case 'h': usage(stdout); free(r); return 0;
        default: usage(stderr); free(r); return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        free(r);
        return 2;
    }
    o->file = argv[optind];
    if (config_parse_hostport(mqtt, o->host, sizeof(o->host), &o->port) || o->devices < 1 ||
        o->devices > REPLAY_MAX_DEVICES || !(o->speedup > 0) || o->rate < 0 || o->qos < 0 ||
        o->qos > 1 || (strcmp(o->time_mode, "original") && strcmp(o->time_mode, "now") &&
                       strcmp(o->time_mode, "shift"))) {
        fprintf(stderr, "weir replay: bad option value (see --help)\n");
        free(r);
        return 2;
    }
    status = 1;
    r->line = malloc(REPLAY_MAX_LINE);
    r->first_ts = r->prev_ts = INT64_MIN;
    if (!r->line || open_input(r) || read_header(r))
        goto cleanup;
    detect_shape(r);
    if (o->time_column && r->time_col < 0) {
        fprintf(stderr, "weir replay: no column named %s\n", o->time_column);
        goto cleanup;
    }
    if (o->key && r->key_col < 0) {
        fprintf(stderr, "weir replay: no column named %s\n", o->key);
        goto cleanup;
    }
    r->n_dev = r->uci && o->devices > 9 ? 9 : o->devices;
    r->dev = calloc((size_t)r->n_dev, sizeof(*r->dev));
    if (!r->dev)
        goto cleanup;
    uv_loop_init(&r->loop);
    uv_timer_init(&r->loop, &r->timer);
    uv_signal_init(&r->loop, &r->sigint);
    uv_signal_init(&r->loop, &r->sigterm);
    r->timer.data = r->sigint.data = r->sigterm.data = r;
    uv_signal_start(&r->sigint, on_signal, SIGINT);
    uv_signal_start(&r->sigterm, on_signal, SIGTERM);
    uv_timer_init(&r->loop, &r->parent_check);
    r->parent_check.data = r;
    r->parent = getppid();
    if (o->exit_with_parent) {
        uv_timer_start(&r->parent_check, on_parent_check, 1000, 1000);
        uv_unref((uv_handle_t *)&r->parent_check);
    }
    unsigned pid_tag = (unsigned)(weir_wall_ns() % 100000);
    for (int i = 0; i < r->n_dev; i++) {
        rdev *d = &r->dev[i];
        d->r = r;
        snprintf(d->name, sizeof(d->name), r->uci ? "room%d" : "dev%d", i + 1);
        char cid[96];
        snprintf(cid, sizeof(cid), "weir-replay-%u-%s", pid_tag, d->name);
        mqttc_cbs cb = {.on_connect = on_dev_connect, .on_close = on_dev_close, .arg = d};
        if (!(d->c = mqttc_new(&r->loop, o->host, o->port, cid, &cb))) {
            fprintf(stderr, "weir replay: cannot resolve %s\n", o->host);
            stop(r, 1);
            break;
        }
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    status = r->status;
    if (!o->quiet)
        fprintf(stderr, "weir replay: %ld rows, %ld messages published, %ld not sent\n", r->rows,
                r->msgs, r->drops);
cleanup:
    close_input(r);
    for (int i = 0; i < r->n_header; i++)
        free(r->header[i]);
    free(r->dev);
    free(r->line);
    free(r);
    return status;
}
