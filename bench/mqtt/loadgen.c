/* loadgen.c -- the MQTT load generator of weir's benchmarks (bench/mqtt).
 *
 * One process drives every client of a scenario from one thread: each client
 * is a libmosquitto handle in non-threaded mode whose socket sits in one
 * epoll set, and the loop calls mosquitto_loop_read/write when the socket is
 * ready. One thread on one pinned core means no locks, no context switches
 * between publisher and subscriber threads, and CPU that is easy to account
 * for (the run reports how busy the load generator itself was, so a reader
 * can tell whether the broker or the generator was the bottleneck).
 *
 * Modes (first argument):
 *   fanin     --pubs N --qos Q: N publishers -> 1 subscriber on a wildcard
 *             (bench/<tag>/+/telemetry), as fast as flow control allows.
 *   fanout    --subs N: 1 publisher -> N subscribers of its topic, QoS 0.
 *   latency   --rate R: 1 publisher paced at R msg/s -> 1 subscriber; the
 *             payload carries the CLOCK_MONOTONIC send time, the subscriber
 *             puts now - sent into a log-linear histogram (<1% bucket error).
 *   idle      --conns N: opens N connections in batches, prints one JSON
 *             line when they are up, then holds them (keep-alives answered)
 *             for --hold seconds or until SIGTERM. The caller samples the
 *             broker's memory while they are held.
 *   ingest    --pubs N --qos 1: N publishers and no subscriber; each
 *             publishes as fast as --inflight unacknowledged messages allow
 *             and the run counts PUBACKs. Made for a broker that stores
 *             what it acknowledges (weir with a stream whose source matches
 *             --topic): acked/s is the durable ingest rate, and after the
 *             drain every message sent should have been acknowledged.
 *             Topic "bench/{p}/reading" and the "reading" payload unless
 *             --topic / --payload say otherwise.
 *   probe     connects, subscribes, publishes one message and waits for it;
 *             exit status 0 when the broker did all of that within --timeout.
 *   freeport  prints a TCP port that was free on 127.0.0.1.
 *
 * Flow control ("as fast as possible, but not hopelessly overrunning the
 * subscriber"): every payload carries its publisher's sequence number; each
 * subscriber remembers, per publisher, the highest sequence received. A
 * publisher may send only while (sent - lowest of those over the live
 * subscribers) < --window, and, at QoS 1, while fewer than --inflight
 * PUBACKs are outstanding, and only while its socket has nothing unsent.
 * Basing the window on the highest sequence seen rather than on a count of
 * receipts means a lost QoS 0 message does not shrink the window for ever.
 *
 * Timing: connect and subscribe everyone, then --warmup seconds of traffic
 * that is not measured, then --duration seconds measured (rates, broker CPU
 * from /proc/<broker-pid>/stat, latency samples by time of receipt), then a
 * drain of at most --drain seconds so that loss = expected - received counts
 * only what never arrived. Every wait is bounded.
 *
 * libmosquitto notes: in non-threaded mode mosquitto_publish writes to the
 * socket at once (one send per message, as a device would). loop_read reads
 * one packet per call when no QoS>0 message is pending, so the loop calls it
 * until the socket reports EAGAIN. The client speaks MQTT 3.1.1 with
 * TCP_NODELAY, so Nagle's algorithm neither batches nor delays messages.
 *
 * Topics and payloads: by default publisher NN publishes to
 * bench/lg<pid>/pNN/telemetry the "telemetry" payload below; --topic T
 * replaces the topic by T with "{p}" standing for "pNN" (fanin and ingest
 * only; the fan-in subscriber then subscribes to T with "{p}" as "+"), and
 * --payload reading sends {"device":"pNN","ts":<epoch ms>,"temperature":..,
 * "humidity":..,"seq":N} (the readings of bench/ingest) instead.
 *
 * Output: one JSON object on stdout (idle: one line when connected).
 * Progress and errors go to stderr.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <mosquitto.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000LL
#define NS_PER_MS 1000000LL
#define KEEPALIVE_S 60
#define MAX_EVENTS 512
#define READ_BURST 256     /* packets read from one socket before moving on */
#define PUBLISH_BURST 64   /* messages one publisher sends before the others */
#define SETUP_TIMEOUT_NS (20 * NS_PER_S)
#define STALL_NS (3 * NS_PER_S)

/* ------------------------------------------------------------------ time */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / NS_PER_MS;
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------- histogram */

/* Log-linear buckets: values below 2^HIST_BITS are exact, above that each
 * power of two is split into 2^(HIST_BITS-1) buckets, so a bucket is at most
 * 1/64 of its value wide. Covers 0 .. 2^40 ns (18 minutes). */
#define HIST_BITS 7
#define HIST_HALF (1 << (HIST_BITS - 1))
#define HIST_MAX_SHIFT 34
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) * HIST_HALF)

typedef struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;
    uint64_t min, max;
    double sum;
} hist;

static int hist_index(uint64_t v)
{
    if (v < (1u << HIST_BITS))
        return (int)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - (HIST_BITS - 1);
    if (shift > HIST_MAX_SHIFT)
        return HIST_BUCKETS - 1;
    return shift * HIST_HALF + (int)(v >> shift);
}

/* The middle of bucket i. */
static double hist_value(int i)
{
    if (i < (1 << HIST_BITS))
        return i;
    int shift = i / HIST_HALF - 1;
    uint64_t m = (uint64_t)(i % HIST_HALF + HIST_HALF);
    return (double)(m << shift) + (double)(1ull << shift) / 2.0;
}

static void hist_add(hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    if (h->n == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
    h->sum += (double)v;
}

static double hist_quantile(const hist *h, double q)
{
    if (h->n == 0)
        return NAN;
    uint64_t rank = (uint64_t)ceil(q * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            double v = hist_value(i);
            return v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

/* ---------------------------------------------------------- broker /proc */

typedef struct proc_sample {
    bool ok;
    double cpu_s;    /* utime + stime of all the broker's threads */
    double wait_s;   /* time its threads spent runnable but waiting for a CPU */
    long rss_kib;    /* VmRSS */
    long hwm_kib;    /* VmHWM: peak RSS since the process started */
} proc_sample;

/* Run-queue delay of every thread of pid (second field of schedstat), in
 * seconds: how long it was ready to run while another process had its CPU.
 * On a machine shared with other work this tells a slow broker from a
 * starved one. */
static double proc_wait_s(pid_t pid)
{
    char path[300];
    double total = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return NAN;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
        FILE *f = fopen(path, "r");
        unsigned long long run = 0, wait = 0;
        if (f && fscanf(f, "%llu %llu", &run, &wait) == 2)
            total += (double)wait / 1e9;
        if (f)
            fclose(f);
    }
    closedir(d);
    return total;
}

/* CPU time used by everything on the machine (all CPUs), in seconds. */
static double machine_busy_s(void)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return NAN;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return NAN;
    /* user nice system [idle iowait] irq softirq steal */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static proc_sample proc_read(pid_t pid)
{
    proc_sample s = {0};
    char path[64], buf[4096];
    if (pid <= 0)
        return s;
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return s;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields are counted
     * from the last ')'. utime and stime are fields 14 and 15. */
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return s;
    s.cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    s.wait_s = proc_wait_s(pid);
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return s;
    while (fgets(buf, sizeof(buf), f)) {
        if (strncmp(buf, "VmRSS:", 6) == 0)
            s.rss_kib = strtol(buf + 6, NULL, 10);
        else if (strncmp(buf, "VmHWM:", 6) == 0)
            s.hwm_kib = strtol(buf + 6, NULL, 10);
    }
    fclose(f);
    s.ok = true;
    return s;
}

/* ------------------------------------------------------------- options */

typedef enum lg_mode {
    MODE_FANIN,
    MODE_FANOUT,
    MODE_LATENCY,
    MODE_IDLE,
    MODE_PROBE,
    MODE_INGEST
} lg_mode;

typedef struct lg_opts {
    lg_mode mode;
    const char *host;
    int port;
    int pubs;        /* publishers (fanin) */
    int subs;        /* subscribers (fanout) */
    int qos;         /* QoS of publications and subscriptions */
    double duration; /* measured seconds */
    double warmup;   /* unmeasured seconds of traffic before */
    double drain;    /* at most this long waiting for stragglers after */
    double rate;     /* latency mode: messages per second */
    int window;      /* messages a publisher may be ahead of its slowest subscriber */
    int inflight;    /* QoS 1: unacknowledged messages per publisher */
    int conns;       /* idle mode: connections to open */
    int batch;       /* idle mode: connections opened before waiting for CONNACKs */
    double hold;     /* idle mode: seconds to hold them */
    double timeout;  /* probe mode */
    pid_t broker_pid;
    const char *topic; /* publishers' topic template, "{p}" = "pNN"; NULL = default */
    const char *cafile; /* TLS: CA that signed the broker's certificate; NULL = plain TCP */
    bool reading;      /* the "reading" payload instead of "telemetry" */
} lg_opts;

/* ------------------------------------------------------------- clients */

struct run;

typedef struct client {
    struct run *run;
    struct mosquitto *m;
    int fd;            /* socket in the epoll set; -1 when none */
    uint32_t events;   /* events it is registered for */
    int index;         /* publisher number, or subscriber number */
    bool pub;          /* publisher (else subscriber) */
    const char *role;  /* "pub", "sub", "idle"...: for messages */
    bool connected;    /* CONNACK with success received */
    bool subscribed;   /* SUBACK received */
    bool lost;         /* connection ended unexpectedly */
    char topic[96];    /* publishers: where they publish */
    uint64_t sent;     /* publishers: messages handed to the socket; also the next seq */
    uint64_t acked;    /* publishers at QoS 1: PUBACKs received */
    uint64_t received; /* subscribers: messages received */
    uint64_t reorder;  /* subscribers: messages whose seq was not above the highest */
    uint64_t *seen;    /* subscribers: per publisher, highest seq received + 1 */
} client;

typedef struct run {
    const lg_opts *o;
    int ep;                /* the epoll instance */
    client *clients;       /* publishers first, then subscribers */
    int nclients;
    int npubs;
    int nsubs;
    char prefix[64];       /* "bench/<tag>/"; topics are prefix + "pNN/telemetry" */
    size_t prefix_len;
    bool measuring;        /* inside the measured window */
    bool want_latency;     /* subscribers parse the send time */
    hist lat;              /* latency mode: receive - send, ns */
    hist lag;              /* latency mode: actual send - scheduled send, ns */
    uint64_t lost_clients; /* connections that ended unexpectedly */
    uint64_t stalls;       /* runs cut short because nothing moved for STALL_NS */
    int payload_len;       /* size of the last payload sent */
} run;

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void client_interest(run *r, client *c)
{
    if (c->fd < 0)
        return;
    uint32_t want = EPOLLIN | (mosquitto_want_write(c->m) ? EPOLLOUT : 0);
    if (want == c->events)
        return;
    struct epoll_event ev = {.events = want, .data.ptr = c};
    if (epoll_ctl(r->ep, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) == 0)
        c->events = want;
}

static void client_lost(run *r, client *c, int rc)
{
    if (c->lost)
        return;
    c->lost = true;
    r->lost_clients++;
    if (r->lost_clients <= 5 && rc != MOSQ_ERR_CONN_REFUSED) /* on_connect said why */
        fprintf(stderr, "loadgen: %s %d lost its connection: %s\n", c->role, c->index,
                rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
    /* Usually libmosquitto has closed the socket already (which removes it
     * from the epoll set); after a refused CONNACK it may not have yet. */
    if (c->fd >= 0)
        epoll_ctl(r->ep, EPOLL_CTL_DEL, c->fd, NULL);
    c->fd = -1;
    c->events = 0;
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    client *c = ud;
    (void)m;
    if (rc == 0) {
        c->connected = true;
        return;
    }
    if (c->run->lost_clients < 5)
        fprintf(stderr, "loadgen: %s %d refused: %s\n", c->role, c->index,
                mosquitto_connack_string(rc));
    client_lost(c->run, c, MOSQ_ERR_CONN_REFUSED);
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc)
{
    (void)m;
    client *c = ud;
    if (rc != 0)
        client_lost(c->run, c, rc);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    (void)m, (void)mid;
    client *c = ud;
    if (n >= 1 && granted[0] <= 2)
        c->subscribed = true;
    else
        fprintf(stderr, "loadgen: subscription refused\n");
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    (void)m, (void)mid;
    client *c = ud;
    /* At QoS 1 this fires when the PUBACK arrives. */
    c->acked++;
}

/* Parses the decimal number that ends just before `end`. */
static uint64_t parse_tail_number(const char *start, const char *end)
{
    const char *p = end;
    while (p > start && p[-1] >= '0' && p[-1] <= '9')
        p--;
    uint64_t v = 0;
    for (; p < end; p++)
        v = v * 10 + (uint64_t)(*p - '0');
    return v;
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    (void)m;
    client *c = ud;
    run *r = c->run;
    int64_t now = r->want_latency ? mono_ns() : 0;
    c->received++;

    /* Publisher number from the topic "bench/<tag>/pNN/telemetry" (or the
     * first level "pNN" of a --topic template). */
    const char *t = msg->topic + r->prefix_len;
    if (r->o->topic) {
        t = msg->topic;
        while (*t &&
               !(t[0] == 'p' && t[1] >= '0' && t[1] <= '9' && (t == msg->topic || t[-1] == '/')))
            t++;
    }
    int p = 0;
    if (*t == 'p')
        for (t++; *t >= '0' && *t <= '9'; t++)
            p = p * 10 + (*t - '0');
    if (p >= r->npubs || msg->payloadlen < 2)
        return;
    /* The sequence number is the payload's last field: ...,"seq":123} */
    const char *pl = msg->payload;
    uint64_t seq = parse_tail_number(pl, pl + msg->payloadlen - 1);
    if (seq + 1 > c->seen[p])
        c->seen[p] = seq + 1;
    else
        c->reorder++;

    if (r->want_latency && r->measuring) {
        static const char key[] = "\"t_ns\":";
        const char *k = memmem(pl, (size_t)msg->payloadlen, key, sizeof(key) - 1);
        if (k) {
            int64_t sent = strtoll(k + sizeof(key) - 1, NULL, 10);
            hist_add(&r->lat, (uint64_t)(now > sent ? now - sent : 0));
        }
    }
}

static int client_open(run *r, client *c, const char *role, int index, bool pub)
{
    char id[64];
    snprintf(id, sizeof(id), "lg%d-%s%d", (int)getpid(), role, index);
    c->run = r;
    c->index = index;
    c->pub = pub;
    c->role = role;
    c->fd = -1;
    c->m = mosquitto_new(id, true, c);
    if (!c->m)
        return -1;
    mosquitto_int_option(c->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
    mosquitto_int_option(c->m, MOSQ_OPT_TCP_NODELAY, 1);
    if (r->o->cafile &&
        mosquitto_tls_set(c->m, r->o->cafile, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "loadgen: cannot use CA file %s\n", r->o->cafile);
        return -1;
    }
    if (pub && r->o->qos > 0)
        mosquitto_int_option(c->m, MOSQ_OPT_SEND_MAXIMUM, r->o->inflight);
    mosquitto_connect_callback_set(c->m, on_connect);
    mosquitto_disconnect_callback_set(c->m, on_disconnect);
    if (pub && r->o->qos > 0)
        mosquitto_publish_callback_set(c->m, on_publish);
    if (!pub) {
        mosquitto_subscribe_callback_set(c->m, on_subscribe);
        mosquitto_message_callback_set(c->m, on_message);
    }
    int rc = mosquitto_connect(c->m, r->o->host, r->o->port, KEEPALIVE_S);
    if (rc != MOSQ_ERR_SUCCESS) {
        if (r->lost_clients < 5)
            fprintf(stderr, "loadgen: connect to %s:%d: %s\n", r->o->host, r->o->port,
                    rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
        c->lost = true;
        r->lost_clients++;
        return -1;
    }
    c->fd = mosquitto_socket(c->m);
    client_interest(r, c);
    return 0;
}

/* Reads and writes what a socket is ready for. */
static void client_service(run *r, client *c, uint32_t ev)
{
    int rc = MOSQ_ERR_SUCCESS;
    if (ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        for (int i = 0; i < READ_BURST; i++) {
            errno = 0;
            rc = mosquitto_loop_read(c->m, 1);
            if (rc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK || c->lost)
                break;
        }
    }
    if (rc == MOSQ_ERR_SUCCESS && !c->lost && (ev & EPOLLOUT))
        rc = mosquitto_loop_write(c->m, 1);
    if (rc != MOSQ_ERR_SUCCESS)
        client_lost(r, c, rc);
    else if (!c->lost)
        client_interest(r, c);
}

/* Waits at most timeout_ns for socket events and services them. */
static void poll_once(run *r, int64_t timeout_ns)
{
    struct epoll_event evs[MAX_EVENTS];
    if (timeout_ns < 0)
        timeout_ns = 0;
    struct timespec ts = {.tv_sec = timeout_ns / NS_PER_S, .tv_nsec = timeout_ns % NS_PER_S};
    int n = epoll_pwait2(r->ep, evs, MAX_EVENTS, &ts, NULL);
    for (int i = 0; i < n; i++)
        client_service(r, evs[i].data.ptr, evs[i].events);
}

/* Keep-alive pings and retries, for every client. */
static void misc_all(run *r)
{
    for (int i = 0; i < r->nclients; i++) {
        client *c = &r->clients[i];
        if (c->m && !c->lost && c->fd >= 0) {
            int rc = mosquitto_loop_misc(c->m);
            if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_NO_CONN)
                client_lost(r, c, rc);
            else
                client_interest(r, c);
        }
    }
}

static int count_where(run *r, int from, int to, bool want_subscribed)
{
    int k = 0;
    for (int i = from; i < to; i++) {
        client *c = &r->clients[i];
        if (c->connected && !c->lost && (!want_subscribed || c->subscribed))
            k++;
    }
    return k;
}

/* Services events until clients [from, to) are all connected (and
 * subscribed, when asked), or one was lost, or the deadline passes. */
static bool wait_for(run *r, int from, int to, bool want_subscribed, int64_t deadline)
{
    while (!g_stop && mono_ns() < deadline) {
        if (count_where(r, from, to, want_subscribed) == to - from)
            return true;
        for (int i = from; i < to; i++)
            if (r->clients[i].lost)
                return false;
        poll_once(r, NS_PER_MS);
    }
    return count_where(r, from, to, want_subscribed) == to - from;
}

static void run_free(run *r)
{
    for (int i = 0; i < r->nclients; i++) {
        client *c = &r->clients[i];
        if (c->m) {
            if (!c->lost && c->connected)
                mosquitto_disconnect(c->m);
            mosquitto_destroy(c->m);
        }
        free(c->seen);
    }
    free(r->clients);
    if (r->ep >= 0)
        close(r->ep);
}

static int run_init(run *r, const lg_opts *o, int npubs, int nsubs)
{
    memset(r, 0, sizeof(*r));
    r->o = o;
    r->npubs = npubs;
    r->nsubs = nsubs;
    r->nclients = npubs + nsubs;
    r->ep = epoll_create1(EPOLL_CLOEXEC);
    r->clients = calloc((size_t)r->nclients, sizeof(client));
    if (r->ep < 0 || !r->clients)
        return -1;
    snprintf(r->prefix, sizeof(r->prefix), "bench/lg%d/", (int)getpid());
    r->prefix_len = strlen(r->prefix);
    return 0;
}

/* Expands a --topic template: "{p}" becomes "pNN" (or "+" when index < 0). */
static void topic_from(char *out, size_t cap, const char *tmpl, int index)
{
    size_t k = 0;
    for (const char *t = tmpl; *t && k + 8 < cap; t++) {
        if (!strncmp(t, "{p}", 3)) {
            k += (size_t)(index < 0 ? snprintf(out + k, cap - k, "+")
                                    : snprintf(out + k, cap - k, "p%02d", index));
            t += 2;
        } else {
            out[k++] = *t;
        }
    }
    out[k] = '\0';
}

/* Connects the publishers and subscribers and subscribes the latter. */
static int run_connect(run *r, const char *filter)
{
    int64_t deadline = mono_ns() + SETUP_TIMEOUT_NS;
    for (int i = 0; i < r->npubs; i++) {
        client *c = &r->clients[i];
        if (client_open(r, c, "pub", i, true))
            return -1;
        if (r->o->topic)
            topic_from(c->topic, sizeof(c->topic), r->o->topic, i);
        else
            snprintf(c->topic, sizeof(c->topic), "%sp%02d/telemetry", r->prefix, i);
    }
    for (int i = 0; i < r->nsubs; i++) {
        client *c = &r->clients[r->npubs + i];
        c->seen = calloc((size_t)r->npubs, sizeof(uint64_t));
        if (!c->seen || client_open(r, c, "sub", i, false))
            return -1;
    }
    if (!wait_for(r, 0, r->nclients, false, deadline)) {
        fprintf(stderr, "loadgen: not every client got a CONNACK\n");
        return -1;
    }
    for (int i = 0; i < r->nsubs; i++) {
        client *c = &r->clients[r->npubs + i];
        if (mosquitto_subscribe(c->m, NULL, filter, r->o->qos) != MOSQ_ERR_SUCCESS)
            return -1;
        client_interest(r, c);
    }
    if (!wait_for(r, r->npubs, r->nclients, true, deadline)) {
        fprintf(stderr, "loadgen: not every subscription was acknowledged\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- traffic */

/* The lowest "highest seq seen + 1" for publisher p over live subscribers. */
static uint64_t floor_seen(run *r, int p, uint64_t dflt)
{
    uint64_t lo = UINT64_MAX;
    for (int i = r->npubs; i < r->nclients; i++) {
        client *s = &r->clients[i];
        if (!s->lost && s->seen[p] < lo)
            lo = s->seen[p];
    }
    return lo == UINT64_MAX ? dflt : lo;
}

static bool pub_can_send(run *r, client *p)
{
    if (!p->connected || p->lost || mosquitto_want_write(p->m))
        return false;
    if (r->o->qos > 0 && p->sent - p->acked >= (uint64_t)r->o->inflight)
        return false;
    return p->sent - floor_seen(r, p->index, p->sent) < (uint64_t)r->o->window;
}

/* A ~120-byte sensor reading. The seq must stay the last field (the
 * subscriber reads it from the end) and t_ns is the send time on the
 * monotonic clock, which only the latency mode reads. */
static int make_payload(char *buf, size_t cap, client *p, int64_t t_ns)
{
    uint64_t s = p->sent;
    if (p->run->o->reading) {
        /* bench/ingest's reading: hundredths of a degree, tenths of a %. */
        unsigned dev = (unsigned)p->index;
        unsigned t = 2000 + (unsigned)((s * 37 + dev * 101) % 1000) + (unsigned)(s % 1000);
        unsigned h = 350 + (unsigned)((s * 53) % 200);
        return snprintf(buf, cap,
                        "{\"device\":\"p%02u\",\"ts\":%" PRId64 ",\"temperature\":%u.%02u,"
                        "\"humidity\":%u.%u,\"seq\":%" PRIu64 "}",
                        dev, wall_ms(), t / 100, t % 100, h / 10, h % 10, s);
    }
    double temp = 20.0 + (double)((s * 37 + (uint64_t)p->index * 101) % 1000) / 100.0;
    double hum = 35.0 + (double)((s * 53) % 200) / 10.0;
    double press = 1000.0 + (double)((s * 17) % 300) / 10.0;
    return snprintf(buf, cap,
                    "{\"device\":\"p%02d\",\"ts\":%" PRId64 ",\"temperature\":%.2f,"
                    "\"humidity\":%.1f,\"pressure\":%.1f,\"t_ns\":%" PRId64 ",\"seq\":%" PRIu64
                    "}",
                    p->index, wall_ms(), temp, hum, press, t_ns, s);
}

static bool pub_send(run *r, client *p)
{
    char buf[256];
    int n = make_payload(buf, sizeof(buf), p, mono_ns());
    r->payload_len = n;
    int rc = mosquitto_publish(p->m, NULL, p->topic, n, buf, r->o->qos, false);
    if (rc == MOSQ_ERR_SUCCESS) {
        p->sent++;
        client_interest(r, p);
        return true;
    }
    client_lost(r, p, rc);
    return false;
}

static uint64_t total_sent(run *r)
{
    uint64_t n = 0;
    for (int i = 0; i < r->npubs; i++)
        n += r->clients[i].sent;
    return n;
}

static uint64_t total_received(run *r, uint64_t *reorder)
{
    uint64_t n = 0, o = 0;
    if (r->o->mode == MODE_INGEST) { /* no subscriber: what counts is PUBACKs */
        for (int i = 0; i < r->npubs; i++)
            n += r->clients[i].acked;
        if (reorder)
            *reorder = 0;
        return n;
    }
    for (int i = r->npubs; i < r->nclients; i++) {
        n += r->clients[i].received;
        o += r->clients[i].reorder;
    }
    if (reorder)
        *reorder = o;
    return n;
}

typedef struct window_stats {
    double seconds;
    uint64_t sent;       /* published inside the window */
    uint64_t received;   /* delivered inside the window */
    proc_sample b0, b1;  /* broker at the start and end of the window */
    double self_cpu_s;   /* this process's CPU inside the window */
    double self_wait_s;  /* this process's run-queue delay inside the window */
    double machine_s;    /* CPU time of the whole machine inside the window */
} window_stats;

static void window_open(run *r, window_stats *w)
{
    w->b0 = proc_read(r->o->broker_pid);
    w->self_cpu_s = cpu_self_s();
    w->self_wait_s = proc_wait_s(getpid());
    w->machine_s = machine_busy_s();
    r->measuring = true;
}

static void window_close(run *r, window_stats *w, double seconds, uint64_t sent,
                         uint64_t received)
{
    r->measuring = false;
    w->b1 = proc_read(r->o->broker_pid);
    w->self_cpu_s = cpu_self_s() - w->self_cpu_s;
    w->self_wait_s = proc_wait_s(getpid()) - w->self_wait_s;
    w->machine_s = machine_busy_s() - w->machine_s;
    w->seconds = seconds;
    w->sent = sent;
    w->received = received;
}

/* One round of publishing. Returns true when some publisher could send more
 * right away (so the poll that follows should not sleep). */
static bool publish_round(run *r, int64_t now, int64_t *next_due, int64_t interval)
{
    bool more = false;
    if (r->o->mode == MODE_LATENCY) {
        client *p = &r->clients[0];
        for (int k = 0; k < PUBLISH_BURST && *next_due <= now && pub_can_send(r, p); k++) {
            int64_t late = mono_ns() - *next_due;
            if (r->measuring)
                hist_add(&r->lag, (uint64_t)(late > 0 ? late : 0));
            if (!pub_send(r, p))
                break;
            *next_due += interval;
        }
        return false;
    }
    for (int i = 0; i < r->npubs; i++) {
        client *p = &r->clients[i];
        for (int k = 0; k < PUBLISH_BURST && pub_can_send(r, p); k++)
            if (!pub_send(r, p))
                break;
        more = more || pub_can_send(r, p);
    }
    return more;
}

static void run_traffic(run *r, window_stats *w)
{
    const lg_opts *o = r->o;
    int64_t start = mono_ns();
    int64_t warm_end = start + (int64_t)(o->warmup * NS_PER_S);
    int64_t meas_end = warm_end + (int64_t)(o->duration * NS_PER_S);
    int64_t interval = o->rate > 0 ? (int64_t)(NS_PER_S / o->rate) : 0;
    int64_t next_due = start, next_misc = start + 500 * NS_PER_MS;
    int64_t t0 = 0, drain_end = 0, last_move = start;
    uint64_t sent0 = 0, recv0 = 0, last_sum = 0;
    enum { WARMUP, MEASURE, DRAIN } phase = WARMUP;

    while (!g_stop) {
        int64_t now = mono_ns();
        if (phase == WARMUP && now >= warm_end) {
            phase = MEASURE;
            t0 = now;
            sent0 = total_sent(r);
            recv0 = total_received(r, NULL);
            window_open(r, w);
        }
        if (phase == MEASURE && now >= meas_end) {
            window_close(r, w, (double)(now - t0) / NS_PER_S, total_sent(r) - sent0,
                         total_received(r, NULL) - recv0);
            phase = DRAIN;
            drain_end = now + (int64_t)(o->drain * NS_PER_S);
        }
        /* With every publisher or every subscriber gone nothing more can
         * be measured. */
        if (r->lost_clients && (count_where(r, 0, r->npubs, false) == 0 ||
                                (r->nsubs && count_where(r, r->npubs, r->nclients, false) == 0))) {
            fprintf(stderr, "loadgen: all publishers or all subscribers lost, stopping\n");
            break;
        }
        /* Progress watch: in every phase, nothing moving for STALL_NS ends
         * the run (a broker that stopped delivering must not hang it). */
        uint64_t sum = total_sent(r) + total_received(r, NULL);
        if (sum != last_sum) {
            last_sum = sum;
            last_move = now;
        } else if (now - last_move > (phase == DRAIN ? 500 * NS_PER_MS : STALL_NS)) {
            if (phase != DRAIN) {
                r->stalls++;
                fprintf(stderr, "loadgen: no progress for %.1f s, giving up\n",
                        (double)STALL_NS / NS_PER_S);
                if (phase == MEASURE) {
                    meas_end = now; /* close the window on the next turn */
                    continue;
                }
            }
            break;
        }
        if (phase == DRAIN) {
            uint64_t expected = total_sent(r) * (uint64_t)(o->mode == MODE_FANOUT ? r->nsubs : 1);
            if (total_received(r, NULL) >= expected || now >= drain_end)
                break;
        }

        bool more = phase != DRAIN && publish_round(r, now, &next_due, interval);
        int64_t timeout = more ? 0 : NS_PER_MS;
        if (phase != DRAIN && interval && next_due - now < timeout)
            timeout = next_due - now;
        poll_once(r, timeout);
        if (now >= next_misc) {
            misc_all(r);
            next_misc = now + 500 * NS_PER_MS;
        }
    }
    if (r->measuring) /* interrupted inside the window: report what was measured */
        window_close(r, w, (double)(mono_ns() - t0) / NS_PER_S, total_sent(r) - sent0,
                     total_received(r, NULL) - recv0);
}

/* --------------------------------------------------------------- output */

static void json_num(const char *key, double v, bool comma)
{
    if (isfinite(v))
        printf("\"%s\":%.6g%s", key, v, comma ? "," : "");
    else
        printf("\"%s\":null%s", key, comma ? "," : "");
}

static int report_traffic(run *r, const window_stats *w)
{
    const lg_opts *o = r->o;
    uint64_t reorder = 0;
    uint64_t sent = total_sent(r), received = total_received(r, &reorder);
    uint64_t fan = o->mode == MODE_FANOUT ? (uint64_t)r->nsubs : 1;
    uint64_t expected = sent * fan;
    int64_t loss = (int64_t)expected - (int64_t)received;
    bool have_b = w->b0.ok && w->b1.ok;
    double bcpu = have_b ? w->b1.cpu_s - w->b0.cpu_s : NAN;
    double per_s = w->seconds > 0 ? (double)w->received / w->seconds : NAN;
    const char *mode = o->mode == MODE_FANIN    ? "fanin"
                       : o->mode == MODE_FANOUT ? "fanout"
                       : o->mode == MODE_INGEST ? "ingest"
                                                : "latency";

    printf("{\"mode\":\"%s\",\"qos\":%d,\"publishers\":%d,\"subscribers\":%d,", mode, o->qos,
           r->npubs, r->nsubs);
    printf("\"payload_bytes\":%d,", r->payload_len);
    json_num("window_s", w->seconds, true);
    printf("\"sent\":%" PRIu64 ",\"expected\":%" PRIu64 ",\"received\":%" PRIu64
           ",\"loss\":%" PRId64 ",",
           sent, expected, received, loss);
    json_num("loss_pct", expected ? 100.0 * (double)loss / (double)expected : NAN, true);
    printf("\"reordered\":%" PRIu64 ",", reorder);
    json_num("published_per_s", w->seconds > 0 ? (double)w->sent / w->seconds : NAN, true);
    json_num("delivered_per_s", per_s, true);
    if (o->mode == MODE_INGEST) { /* "received" and "delivered" above are PUBACKs */
        printf("\"acked\":%" PRIu64 ",", received);
        json_num("acked_per_s", per_s, true);
        if (o->topic)
            printf("\"topic\":\"%s\",", o->topic);
    }
    json_num("broker_cpu_s", bcpu, true);
    json_num("broker_cpu_s_per_million",
             have_b && w->received ? bcpu / (double)w->received * 1e6 : NAN, true);
    json_num("broker_cpu_util", have_b && w->seconds > 0 ? bcpu / w->seconds : NAN, true);
    json_num("broker_rss_kib", w->b1.ok ? (double)w->b1.rss_kib : NAN, true);
    json_num("broker_hwm_kib", w->b1.ok ? (double)w->b1.hwm_kib : NAN, true);
    json_num("loadgen_cpu_util", w->seconds > 0 ? w->self_cpu_s / w->seconds : NAN, true);
    /* Noise: how long each side waited for its CPU, and how many CPUs'
     * worth of time everything else on the machine used meanwhile. */
    json_num("broker_runq_wait_util",
             have_b && w->seconds > 0 ? (w->b1.wait_s - w->b0.wait_s) / w->seconds : NAN, true);
    json_num("loadgen_runq_wait_util", w->seconds > 0 ? w->self_wait_s / w->seconds : NAN, true);
    json_num("background_cpus",
             have_b && w->seconds > 0 ? (w->machine_s - bcpu - w->self_cpu_s) / w->seconds : NAN,
             true);
    if (o->mode == MODE_LATENCY) {
        json_num("rate_target", o->rate, true);
        printf("\"lat_samples\":%" PRIu64 ",", r->lat.n);
        json_num("lat_min_us", r->lat.n ? (double)r->lat.min / 1e3 : NAN, true);
        json_num("lat_mean_us", r->lat.n ? r->lat.sum / (double)r->lat.n / 1e3 : NAN, true);
        json_num("lat_p50_us", hist_quantile(&r->lat, 0.50) / 1e3, true);
        json_num("lat_p99_us", hist_quantile(&r->lat, 0.99) / 1e3, true);
        json_num("lat_p999_us", hist_quantile(&r->lat, 0.999) / 1e3, true);
        json_num("lat_max_us", r->lat.n ? (double)r->lat.max / 1e3 : NAN, true);
        json_num("pacer_lag_p99_us", hist_quantile(&r->lag, 0.99) / 1e3, true);
    }
    printf("\"lost_connections\":%" PRIu64 ",\"stalls\":%" PRIu64 "}\n", r->lost_clients,
           r->stalls);
    fflush(stdout);
    return r->lost_clients || r->stalls || w->seconds <= 0 ? 1 : 0;
}

/* ----------------------------------------------------------------- modes */

static int mode_traffic(const lg_opts *o)
{
    run r;
    window_stats w = {0};
    int status = 1;
    int npubs = o->mode == MODE_FANIN || o->mode == MODE_INGEST ? o->pubs : 1;
    int nsubs = o->mode == MODE_FANOUT ? o->subs : o->mode == MODE_INGEST ? 0 : 1;
    char filter[96];
    if (run_init(&r, o, npubs, nsubs))
        goto done;
    r.want_latency = o->mode == MODE_LATENCY;
    if (o->mode == MODE_FANIN && o->topic)
        topic_from(filter, sizeof(filter), o->topic, -1);
    else if (o->mode == MODE_FANIN)
        snprintf(filter, sizeof(filter), "%s+/telemetry", r.prefix);
    else
        snprintf(filter, sizeof(filter), "%sp00/telemetry", r.prefix);
    if (run_connect(&r, filter))
        goto done;
    run_traffic(&r, &w);
    status = report_traffic(&r, &w);
done:
    run_free(&r);
    return status;
}

static int mode_idle(const lg_opts *o)
{
    run r;
    int status = 1;
    /* Idle connections are publishers that never publish. */
    if (run_init(&r, o, o->conns, 0))
        goto done;
    int64_t start = mono_ns();
    int64_t deadline = start + (int64_t)(o->timeout * NS_PER_S);
    int opened = 0;
    while (opened < o->conns && !g_stop && mono_ns() < deadline) {
        int end = opened + o->batch < o->conns ? opened + o->batch : o->conns;
        for (int i = opened; i < end; i++)
            client_open(&r, &r.clients[i], "idle", i, true);
        /* Wait for this batch's CONNACKs: the broker's accept backlog is
         * finite, and a full one makes the kernel drop SYNs for a second. */
        wait_for(&r, opened, end, false, deadline);
        opened = end;
    }
    int ok = count_where(&r, 0, opened, false);
    double secs = (double)(mono_ns() - start) / NS_PER_S;
    printf("{\"mode\":\"idle\",\"conns_requested\":%d,\"conns_ok\":%d,", o->conns, ok);
    json_num("connect_s", secs, false);
    printf("}\n");
    fflush(stdout);
    fprintf(stderr, "loadgen: %d/%d connections up in %.2f s, holding\n", ok, o->conns, secs);
    int64_t hold_end = mono_ns() + (int64_t)(o->hold * NS_PER_S);
    int64_t next_misc = 0;
    while (!g_stop && mono_ns() < hold_end) {
        poll_once(&r, 100 * NS_PER_MS);
        if (mono_ns() >= next_misc) {
            misc_all(&r);
            next_misc = mono_ns() + NS_PER_S;
        }
    }
    status = ok == o->conns ? 0 : 1;
done:
    run_free(&r);
    return status;
}

static int mode_probe(const lg_opts *o)
{
    run r;
    int status = 1;
    char filter[96];
    int64_t deadline = mono_ns() + (int64_t)(o->timeout * NS_PER_S);
    if (run_init(&r, o, 1, 1))
        goto done;
    snprintf(filter, sizeof(filter), "%sp00/telemetry", r.prefix);
    client *p = &r.clients[0], *s = &r.clients[1];
    s->seen = calloc(1, sizeof(uint64_t));
    snprintf(p->topic, sizeof(p->topic), "%sp00/telemetry", r.prefix);
    if (!s->seen || client_open(&r, p, "probe-pub", 0, true) ||
        client_open(&r, s, "probe-sub", 0, false))
        goto done;
    if (!wait_for(&r, 0, 2, false, deadline)) {
        fprintf(stderr, "loadgen: probe: no CONNACK from %s:%d\n", o->host, o->port);
        goto done;
    }
    mosquitto_subscribe(s->m, NULL, filter, o->qos);
    client_interest(&r, s);
    if (!wait_for(&r, 1, 2, true, deadline)) {
        fprintf(stderr, "loadgen: probe: no SUBACK\n");
        goto done;
    }
    pub_send(&r, p);
    while (s->received == 0 && !g_stop && mono_ns() < deadline)
        poll_once(&r, NS_PER_MS);
    if (s->received == 0) {
        fprintf(stderr, "loadgen: probe: published message never arrived\n");
        goto done;
    }
    printf("{\"mode\":\"probe\",\"ok\":true}\n");
    status = 0;
done:
    run_free(&r);
    return status;
}

static int mode_freeport(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("loadgen: freeport");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    close(fd);
    return 0;
}

/* ----------------------------------------------------------------- main */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: loadgen MODE [options]\n"
            "modes: fanin | fanout | latency | ingest | idle | probe | freeport\n"
            "  -H, --host ADDR       broker address (127.0.0.1)\n"
            "  -p, --port PORT       broker port (1883)\n"
            "  -P, --broker-pid PID  sample this process's CPU and memory\n"
            "      --pubs N          fanin/ingest publishers (8)\n"
            "      --subs N          fanout subscribers (50)\n"
            "      --qos Q           0 or 1 (0; ingest: 1)\n"
            "  -d, --duration S      measured seconds (10)\n"
            "      --warmup S        unmeasured seconds before (1)\n"
            "      --drain S         longest wait for stragglers after (3)\n"
            "      --rate R          latency mode: messages per second (10000)\n"
            "      --window N        messages a publisher may lead its slowest subscriber (1000)\n"
            "      --inflight N      QoS 1 unacknowledged messages per publisher (100)\n"
            "      --conns N         idle mode: connections (10000)\n"
            "      --batch N         idle mode: connections per batch (100)\n"
            "      --hold S          idle mode: seconds to hold them (60)\n"
            "      --timeout S       probe/idle set-up limit (5 / 120)\n"
            "      --topic T         fanin/ingest topic, {p} = pNN (ingest: bench/{p}/reading)\n"
            "      --payload P       telemetry | reading (ingest: reading)\n"
            "      --cafile F        connect with TLS, trusting the CA in F\n");
}

int main(int argc, char **argv)
{
    lg_opts o = {
        .host = "127.0.0.1", .port = 1883, .pubs = 8, .subs = 50, .qos = 0,
        .duration = 10, .warmup = 1, .drain = 3, .rate = 10000, .window = 1000,
        .inflight = 100, .conns = 10000, .batch = 100, .hold = 60, .timeout = -1,
    };
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},    {"port", required_argument, NULL, 'p'},
        {"broker-pid", required_argument, NULL, 'P'}, {"pubs", required_argument, NULL, 1},
        {"subs", required_argument, NULL, 2},      {"qos", required_argument, NULL, 3},
        {"duration", required_argument, NULL, 'd'}, {"warmup", required_argument, NULL, 4},
        {"drain", required_argument, NULL, 5},     {"rate", required_argument, NULL, 6},
        {"window", required_argument, NULL, 7},    {"inflight", required_argument, NULL, 8},
        {"conns", required_argument, NULL, 9},     {"batch", required_argument, NULL, 10},
        {"hold", required_argument, NULL, 11},     {"timeout", required_argument, NULL, 12},
        {"topic", required_argument, NULL, 13},    {"payload", required_argument, NULL, 14},
        {"cafile", required_argument, NULL, 15},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *m = argv[1];
    if (strcmp(m, "freeport") == 0)
        return mode_freeport();
    if (strcmp(m, "fanin") == 0)
        o.mode = MODE_FANIN;
    else if (strcmp(m, "fanout") == 0)
        o.mode = MODE_FANOUT;
    else if (strcmp(m, "latency") == 0)
        o.mode = MODE_LATENCY;
    else if (strcmp(m, "idle") == 0)
        o.mode = MODE_IDLE;
    else if (strcmp(m, "probe") == 0)
        o.mode = MODE_PROBE;
    else if (strcmp(m, "ingest") == 0)
        o.mode = MODE_INGEST;
    else {
        usage(strcmp(m, "-h") == 0 || strcmp(m, "--help") == 0 ? stdout : stderr);
        return strcmp(m, "-h") == 0 || strcmp(m, "--help") == 0 ? 0 : 2;
    }
    optind = 2;
    const char *payload = NULL;
    bool qos_set = false;
    int c;
    while ((c = getopt_long(argc, argv, "H:p:P:d:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'H': o.host = optarg; break;
        case 'p': o.port = atoi(optarg); break;
        case 'P': o.broker_pid = (pid_t)atoi(optarg); break;
        case 1: o.pubs = atoi(optarg); break;
        case 2: o.subs = atoi(optarg); break;
        case 3: o.qos = atoi(optarg); qos_set = true; break;
        case 'd': o.duration = atof(optarg); break;
        case 4: o.warmup = atof(optarg); break;
        case 5: o.drain = atof(optarg); break;
        case 6: o.rate = atof(optarg); break;
        case 7: o.window = atoi(optarg); break;
        case 8: o.inflight = atoi(optarg); break;
        case 9: o.conns = atoi(optarg); break;
        case 10: o.batch = atoi(optarg); break;
        case 11: o.hold = atof(optarg); break;
        case 12: o.timeout = atof(optarg); break;
        case 13: o.topic = optarg; break;
        case 14:
            if (strcmp(optarg, "reading") && strcmp(optarg, "telemetry")) {
                fprintf(stderr, "loadgen: --payload telemetry or reading\n");
                return 2;
            }
            payload = optarg;
            break;
        case 15: o.cafile = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (o.timeout < 0)
        o.timeout = o.mode == MODE_IDLE ? 120 : 5;
    if (o.mode == MODE_INGEST) {
        if (!o.topic)
            o.topic = "bench/{p}/reading";
        if (!payload)
            payload = "reading";
        if (!qos_set)
            o.qos = 1;
        if (o.qos != 1) {
            fprintf(stderr, "loadgen: ingest counts PUBACKs: it needs --qos 1\n");
            return 2;
        }
    }
    o.reading = payload && !strcmp(payload, "reading");
    if (o.topic && (o.mode != MODE_FANIN && o.mode != MODE_INGEST)) {
        fprintf(stderr, "loadgen: --topic is for fanin and ingest\n");
        return 2;
    }
    if (o.topic && (strlen(o.topic) > 60 || !strstr(o.topic, "{p}"))) {
        fprintf(stderr, "loadgen: --topic needs {p} and at most 60 bytes\n");
        return 2;
    }
    if (o.port <= 0 || o.port > 65535 || o.pubs < 1 || o.pubs > 99 || o.subs < 1 ||
        o.qos < 0 || o.qos > 1 || o.duration <= 0 || o.warmup < 0 || o.rate <= 0 ||
        o.window < 1 || o.inflight < 1 || o.inflight > 65535 || o.conns < 1 || o.batch < 1) {
        fprintf(stderr, "loadgen: option out of range\n");
        return 2;
    }
    if (o.mode != MODE_LATENCY)
        o.rate = 0;

    /* Sockets: as many descriptors as the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* The pacer sleeps until the next send; default timer slack (50 us)
     * would add up to that to every wake-up. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    mosquitto_lib_init();
    int status;
    switch (o.mode) {
    case MODE_IDLE: status = mode_idle(&o); break;
    case MODE_PROBE: status = mode_probe(&o); break;
    default: status = mode_traffic(&o); break;
    }
    mosquitto_lib_cleanup();
    return status;
}
