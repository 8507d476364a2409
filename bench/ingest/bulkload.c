/* bulkload.c -- the bulk ingest client and reading generator of bench/ingest.
 *
 * Every system in the suite gets the same sensor readings. Reading i of a
 * run (0 <= i < N) is
 *
 *   device      "p%02d" of i % DEVICES            (--devices, 100)
 *   ts          T0 + (i / DEVICES) * STEP ms      (--t0, --step: 6,000 ms)
 *   temperature 20 + ((37 i + 101 device) % 1000 + seq % 1000) / 100  (2 decimals)
 *   humidity    35 + ((53 i) % 200) / 10                   (1 decimal)
 *   seq         i / DEVICES                        (per device)
 *
 * so 10 million readings of 100 devices every 6 s span 6.9 days, 10,000
 * one-minute buckets of 1,000 readings each. Written as
 *
 *   csv     device,ts,temperature,humidity,seq / p07,1732184400123,21.53,40.2,123
 *   ndjson  {"device":"p07","ts":1732184400123,"temperature":21.53,"humidity":40.2,"seq":123}
 *   line    reading,device=p07 temperature=21.53,humidity=40.2,seq=123i 1732184400123000000
 *   redis   XADD readings * device p07 ts 1732184400123 temperature 21.53 humidity 40.2 seq 123
 *
 * Modes:
 *   gen FORMAT FILE [-n N]...      writes N readings to FILE (csv, ndjson, line)
 *   send --proto http|redis ...    loads N readings into a server in batches
 *
 * send: the batches (--batch readings each) are generated in memory first,
 * outside the clock; then --conns threads, one connection each, take
 * batches from a shared counter and send them one at a time (a batch is
 * sent only after the previous one of that connection was answered, as a
 * gateway or a Telegraf output does). HTTP: one POST per batch on a
 * keep-alive HTTP/1.1 connection (--path, --content-type); 2xx is success,
 * and a JSON answer with "accepted"/"rejected" (weir) is summed. Redis: one
 * pipeline of --batch XADD commands per batch, every reply read before the
 * next pipeline. The clock runs from the first byte sent to the last answer
 * received. -P PID samples that process's CPU (utime + stime, all threads)
 * over the same interval.
 *
 * Output: one JSON line on stdout; errors on stderr; exit status 1 when any
 * batch failed or any reading was rejected.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 64

typedef enum fmt { FMT_CSV, FMT_NDJSON, FMT_LINE, FMT_REDIS } fmt;

typedef struct opts {
    uint64_t n;
    uint32_t devices;
    int64_t t0_ms, step_ms;
    uint32_t batch;
    int conns;
    const char *host;
    int port;
    const char *path;
    const char *content_type;
    const char *stream_key; /* redis */
    fmt format;
    bool redis;
    pid_t server_pid;
    double timeout_s; /* per batch */
} opts;

/* ---------------------------------------------------------------- readings */

typedef struct buf {
    char *p;
    size_t len, cap;
} buf;

static void buf_need(buf *b, size_t more)
{
    if (b->len + more <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        fprintf(stderr, "bulkload: out of memory (%zu bytes)\n", cap);
        exit(1);
    }
    b->p = p;
    b->cap = cap;
}

static void buf_add(buf *b, const void *p, size_t n)
{
    buf_need(b, n);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Appends a RESP bulk string. */
static void resp_arg(buf *b, const char *s, int n)
{
    char h[32];
    int k = snprintf(h, sizeof(h), "$%d\r\n", n);
    buf_add(b, h, (size_t)k);
    buf_add(b, s, (size_t)n);
    buf_add(b, "\r\n", 2);
}

/* Appends reading i in format f. */
static void reading(const opts *o, buf *b, uint64_t i, fmt f)
{
    uint32_t dev = (uint32_t)(i % o->devices);
    uint64_t seq = i / o->devices;
    int64_t ts = o->t0_ms + (int64_t)seq * o->step_ms;
    unsigned t =
        2000 + (unsigned)((i * 37 + dev * 101) % 1000) + (unsigned)(seq % 1000); /* 1/100 */
    unsigned h = 350 + (unsigned)((i * 53) % 200);                               /* tenths */
    char line[256];
    int n = 0;
    switch (f) {
    case FMT_CSV:
        n = snprintf(line, sizeof(line), "p%02u,%" PRId64 ",%u.%02u,%u.%u,%" PRIu64 "\n", dev, ts,
                     t / 100, t % 100, h / 10, h % 10, seq);
        break;
    case FMT_NDJSON:
        n = snprintf(line, sizeof(line),
                     "{\"device\":\"p%02u\",\"ts\":%" PRId64 ",\"temperature\":%u.%02u,"
                     "\"humidity\":%u.%u,\"seq\":%" PRIu64 "}\n",
                     dev, ts, t / 100, t % 100, h / 10, h % 10, seq);
        break;
    case FMT_LINE:
        n = snprintf(line, sizeof(line),
                     "reading,device=p%02u temperature=%u.%02u,humidity=%u.%u,seq=%" PRIu64
                     "i %" PRId64 "000000\n",
                     dev, t / 100, t % 100, h / 10, h % 10, seq, ts);
        break;
    case FMT_REDIS: {
        char v[5][32];
        int l[5];
        l[0] = snprintf(v[0], sizeof(v[0]), "p%02u", dev);
        l[1] = snprintf(v[1], sizeof(v[1]), "%" PRId64, ts);
        l[2] = snprintf(v[2], sizeof(v[2]), "%u.%02u", t / 100, t % 100);
        l[3] = snprintf(v[3], sizeof(v[3]), "%u.%u", h / 10, h % 10);
        l[4] = snprintf(v[4], sizeof(v[4]), "%" PRIu64, seq);
        static const char *const names[5] = {"device", "ts", "temperature", "humidity", "seq"};
        buf_add(b, "*13\r\n", 5);
        resp_arg(b, "XADD", 4);
        resp_arg(b, o->stream_key, (int)strlen(o->stream_key));
        resp_arg(b, "*", 1);
        for (int k = 0; k < 5; k++) {
            resp_arg(b, names[k], (int)strlen(names[k]));
            resp_arg(b, v[k], l[k]);
        }
        return;
    }
    }
    buf_add(b, line, (size_t)n);
}

/* ------------------------------------------------------------------- time */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of every thread of pid, in seconds; -1 when unreadable. */
static double proc_cpu_s(pid_t pid)
{
    if (pid <= 0)
        return -1;
    char path[64], b[4096];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(b, 1, sizeof(b) - 1, f);
    fclose(f);
    b[n] = '\0';
    char *p = strrchr(b, ')');
    unsigned long long ut, st;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Run-queue delay of every thread of pid (second field of schedstat), in
 * seconds: how long its threads were ready to run while something else had
 * their CPU. */
static double proc_wait_s(pid_t pid)
{
    char path[300];
    double total = 0;
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
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
        return -1;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8)
        return -1;
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

/* ------------------------------------------------------------------- send */

typedef struct batch {
    size_t off, len; /* the request (HTTP: headers and body) in the arena */
    uint32_t records;
    double seconds; /* round trip */
} batch;

typedef struct shared {
    const opts *o;
    buf reqs;
    batch *batches;
    uint64_t nbatches;
    uint64_t body_bytes;
    atomic_uint_fast64_t next;
    atomic_uint_fast64_t accepted, rejected, failed;
    atomic_int stop;
} shared;

static int connect_to(const opts *o)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)o->port)};
    if (inet_pton(AF_INET, o->host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct timeval tv = {.tv_sec = (time_t)o->timeout_s,
                         .tv_usec =
                             (suseconds_t)((o->timeout_s - (double)(time_t)o->timeout_s) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A receive buffer: bytes [r, w) are unread. */
typedef struct rbuf {
    char *p;
    size_t r, w, cap;
    int fd;
} rbuf;

static int rb_fill(rbuf *b)
{
    if (b->r == b->w)
        b->r = b->w = 0;
    if (b->w == b->cap) {
        if (b->r) {
            memmove(b->p, b->p + b->r, b->w - b->r);
            b->w -= b->r;
            b->r = 0;
        } else {
            size_t cap = b->cap ? b->cap * 2 : 1 << 16;
            char *p = realloc(b->p, cap);
            if (!p)
                return -1;
            b->p = p;
            b->cap = cap;
        }
    }
    ssize_t n;
    do
        n = recv(b->fd, b->p + b->w, b->cap - b->w, 0);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return -1;
    b->w += (size_t)n;
    return 0;
}

/* A line ending in \r\n at the read position: its length without the
 * terminator (the terminator is consumed too); -1 on a closed connection. */
static ssize_t rb_line(rbuf *b, char **line)
{
    for (;;) {
        char *s = b->p + b->r;
        char *e = b->w > b->r ? memmem(s, b->w - b->r, "\r\n", 2) : NULL;
        if (e) {
            *line = s;
            b->r += (size_t)(e - s) + 2;
            return e - s;
        }
        if (rb_fill(b))
            return -1;
    }
}

static int rb_need(rbuf *b, size_t n)
{
    while (b->w - b->r < n)
        if (rb_fill(b))
            return -1;
    return 0;
}

/* Reads one HTTP response; its body is left in *body (inside b, valid until
 * the next read), *status its code. */
static int http_read(rbuf *b, int *status, char **body, size_t *body_len, char *scratch,
                     size_t scratch_cap)
{
    char *line;
    ssize_t n = rb_line(b, &line);
    if (n < 12 || strncmp(line, "HTTP/1.", 7))
        return -1;
    *status = atoi(line + 9);
    long long clen = -1;
    bool chunked = false;
    for (;;) {
        n = rb_line(b, &line);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (n > 15 && !strncasecmp(line, "content-length:", 15))
            clen = strtoll(line + 15, NULL, 10);
        else if (n > 18 && !strncasecmp(line, "transfer-encoding:", 18) &&
                 memmem(line, (size_t)n, "chunked", 7))
            chunked = true;
    }
    *body = scratch;
    *body_len = 0;
    if (*status == 204 || *status == 304 || (*status >= 100 && *status < 200))
        return 0;
    if (chunked) {
        for (;;) {
            n = rb_line(b, &line);
            if (n < 0)
                return -1;
            size_t k = strtoul(line, NULL, 16);
            if (rb_need(b, k + 2))
                return -1;
            size_t c = k < scratch_cap - 1 - *body_len ? k : scratch_cap - 1 - *body_len;
            memcpy(scratch + *body_len, b->p + b->r, c);
            *body_len += c;
            b->r += k + 2;
            if (k == 0)
                break;
        }
    } else if (clen >= 0) {
        if (rb_need(b, (size_t)clen))
            return -1;
        size_t c = (size_t)clen < scratch_cap - 1 ? (size_t)clen : scratch_cap - 1;
        memcpy(scratch, b->p + b->r, c);
        *body_len = c;
        b->r += (size_t)clen;
    } else {
        return -1; /* a keep-alive response needs a length */
    }
    scratch[*body_len] = '\0';
    return 0;
}

static uint64_t json_count(const char *body, const char *key)
{
    const char *k = strstr(body, key);
    if (!k)
        return 0;
    k += strlen(key);
    while (*k == ' ' || *k == ':' || *k == '"')
        k++;
    return strtoull(k, NULL, 10);
}

/* Reads n RESP replies; counts error replies in *errors. */
static int redis_read(rbuf *b, uint32_t n, uint64_t *errors)
{
    char *line;
    for (uint32_t i = 0; i < n; i++) {
        ssize_t k = rb_line(b, &line);
        if (k < 1)
            return -1;
        switch (line[0]) {
        case '$': {
            long len = strtol(line + 1, NULL, 10);
            if (len >= 0) {
                if (rb_need(b, (size_t)len + 2))
                    return -1;
                b->r += (size_t)len + 2;
            }
            break;
        }
        case '-':
            if (*errors < 3)
                fprintf(stderr, "bulkload: redis: %.*s\n", (int)k, line);
            (*errors)++;
            break;
        case '+':
        case ':':
            break;
        default:
            fprintf(stderr, "bulkload: unexpected redis reply '%.*s'\n", (int)k, line);
            return -1;
        }
    }
    return 0;
}

static void *sender(void *arg)
{
    shared *sh = arg;
    const opts *o = sh->o;
    int fd = connect_to(o);
    if (fd < 0) {
        fprintf(stderr, "bulkload: connect %s:%d: %s\n", o->host, o->port, strerror(errno));
        atomic_fetch_add(&sh->failed, 1);
        atomic_store(&sh->stop, 1);
        return NULL;
    }
    rbuf rb = {.fd = fd};
    char scratch[8192];
    while (!atomic_load(&sh->stop)) {
        uint64_t i = atomic_fetch_add(&sh->next, 1);
        if (i >= sh->nbatches)
            break;
        batch *bt = &sh->batches[i];
        double t = mono_s();
        if (write_all(fd, sh->reqs.p + bt->off, bt->len)) {
            fprintf(stderr, "bulkload: send: %s\n", strerror(errno));
            atomic_fetch_add(&sh->failed, 1);
            break;
        }
        if (o->redis) {
            uint64_t errors = 0;
            if (redis_read(&rb, bt->records, &errors)) {
                fprintf(stderr, "bulkload: redis reply: %s\n",
                        errno ? strerror(errno) : "connection closed");
                atomic_fetch_add(&sh->failed, 1);
                break;
            }
            atomic_fetch_add(&sh->accepted, bt->records - errors);
            atomic_fetch_add(&sh->rejected, errors);
        } else {
            int status;
            char *body;
            size_t blen;
            if (http_read(&rb, &status, &body, &blen, scratch, sizeof(scratch))) {
                fprintf(stderr, "bulkload: HTTP response: %s\n",
                        errno ? strerror(errno) : "malformed or connection closed");
                atomic_fetch_add(&sh->failed, 1);
                break;
            }
            if (status < 200 || status > 299) {
                if (atomic_fetch_add(&sh->failed, 1) < 3)
                    fprintf(stderr, "bulkload: HTTP %d: %.300s\n", status, body);
            } else if (strstr(body, "\"accepted\"")) {
                atomic_fetch_add(&sh->accepted, json_count(body, "\"accepted\""));
                uint64_t rej = json_count(body, "\"rejected\"");
                if (rej && atomic_load(&sh->rejected) == 0)
                    fprintf(stderr, "bulkload: rejected: %.300s\n", body);
                atomic_fetch_add(&sh->rejected, rej);
            } else {
                atomic_fetch_add(&sh->accepted, bt->records);
            }
        }
        bt->seconds = mono_s() - t;
    }
    free(rb.p);
    close(fd);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int mode_send(const opts *o)
{
    shared sh = {.o = o};
    sh.nbatches = (o->n + o->batch - 1) / o->batch;
    sh.batches = calloc(sh.nbatches ? sh.nbatches : 1, sizeof(batch));
    if (!sh.batches)
        return 1;
    double g0 = mono_s();
    buf body = {0};
    for (uint64_t k = 0; k < sh.nbatches; k++) {
        uint64_t first = k * o->batch, last = first + o->batch < o->n ? first + o->batch : o->n;
        body.len = 0;
        for (uint64_t i = first; i < last; i++)
            reading(o, &body, i, o->format);
        batch *bt = &sh.batches[k];
        bt->off = sh.reqs.len;
        bt->records = (uint32_t)(last - first);
        if (!o->redis) {
            char h[1024];
            int n = snprintf(h, sizeof(h),
                             "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
                             "Content-Length: %zu\r\n\r\n",
                             o->path, o->host, o->port, o->content_type, body.len);
            buf_add(&sh.reqs, h, (size_t)n);
        }
        buf_add(&sh.reqs, body.p, body.len);
        bt->len = sh.reqs.len - bt->off;
        sh.body_bytes += body.len;
    }
    free(body.p);
    double gen_s = mono_s() - g0;

    int conns = o->conns < (int)sh.nbatches ? o->conns : (int)sh.nbatches;
    pthread_t th[MAX_CONNS];
    double c0 = self_cpu_s(), s0 = proc_cpu_s(o->server_pid), m0 = machine_busy_s();
    double sw0 = proc_wait_s(o->server_pid), cw0 = proc_wait_s(getpid()), t0 = mono_s();
    int started = 0;
    for (int i = 0; i < conns; i++)
        if (pthread_create(&th[i], NULL, sender, &sh) == 0)
            started++;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    double secs = mono_s() - t0, ccpu = self_cpu_s() - c0, s1 = proc_cpu_s(o->server_pid);
    double scpu = s0 >= 0 && s1 >= 0 ? s1 - s0 : -1;
    double sw1 = proc_wait_s(o->server_pid), cw1 = proc_wait_s(getpid()), m1 = machine_busy_s();

    uint64_t done = 0;
    double *rt = calloc(sh.nbatches ? sh.nbatches : 1, sizeof(double));
    for (uint64_t k = 0; k < sh.nbatches; k++)
        if (sh.batches[k].seconds > 0)
            rt[done++] = sh.batches[k].seconds;
    qsort(rt, done, sizeof(double), cmp_double);
    uint64_t acc = atomic_load(&sh.accepted), rej = atomic_load(&sh.rejected),
             failed = atomic_load(&sh.failed);
    const char *fname = o->format == FMT_NDJSON  ? "ndjson"
                        : o->format == FMT_LINE  ? "line"
                        : o->format == FMT_REDIS ? "redis"
                                                 : "csv";
    printf("{\"proto\":\"%s\",\"format\":\"%s\",\"readings\":%" PRIu64 ",\"batch\":%u,"
           "\"conns\":%d,\"batches\":%" PRIu64 ",\"batches_done\":%" PRIu64 ","
           "\"body_bytes\":%" PRIu64 ",\"bytes_per_reading\":%.1f,\"gen_s\":%.3f,"
           "\"seconds\":%.3f,\"accepted\":%" PRIu64 ",\"rejected\":%" PRIu64
           ",\"failed_batches\":%" PRIu64 ",\"readings_per_s\":%.0f,\"MB_per_s\":%.1f,"
           "\"batch_p50_ms\":%.2f,\"batch_p99_ms\":%.2f,\"client_cpu_util\":%.3f,",
           o->redis ? "redis" : "http", fname, o->n, o->batch, conns, sh.nbatches, done,
           sh.body_bytes, o->n ? (double)sh.body_bytes / (double)o->n : 0.0, gen_s, secs, acc, rej,
           failed, secs > 0 ? (double)acc / secs : 0.0,
           secs > 0 ? (double)sh.body_bytes / secs / 1e6 : 0.0, done ? rt[done / 2] * 1e3 : 0.0,
           done ? rt[(size_t)((double)done * 0.99)] * 1e3 : 0.0, secs > 0 ? ccpu / secs : 0.0);
    /* Noise: run-queue waits of both sides (all threads), and how many
     * CPUs' worth of time everything else on the machine used. */
    printf("\"client_runq_wait_util\":%.3f,", secs > 0 && cw0 >= 0 ? (cw1 - cw0) / secs : 0.0);
    if (scpu >= 0)
        printf("\"server_cpu_s\":%.2f,\"server_cpu_util\":%.3f,\"server_cpu_s_per_million\":%.3f,"
               "\"server_runq_wait_util\":%.3f,\"background_cpus\":%.3f}\n",
               scpu, secs > 0 ? scpu / secs : 0.0, acc ? scpu / (double)acc * 1e6 : 0.0,
               secs > 0 && sw0 >= 0 ? (sw1 - sw0) / secs : 0.0,
               secs > 0 && m0 >= 0 ? (m1 - m0 - scpu - ccpu) / secs : 0.0);
    else
        printf("\"server_cpu_s\":null,\"server_cpu_util\":null,\"server_cpu_s_per_million\":null,"
               "\"server_runq_wait_util\":null,\"background_cpus\":null}\n");
    fflush(stdout);
    free(rt);
    free(sh.batches);
    free(sh.reqs.p);
    return failed || rej || acc != o->n ? 1 : 0;
}

static int mode_gen(const opts *o, const char *file)
{
    FILE *f = strcmp(file, "-") ? fopen(file, "w") : stdout;
    if (!f) {
        perror(file);
        return 1;
    }
    buf b = {0};
    if (o->format == FMT_CSV)
        buf_add(&b, "device,ts,temperature,humidity,seq\n", 35);
    for (uint64_t i = 0; i < o->n; i++) {
        reading(o, &b, i, o->format);
        if (b.len > (1 << 20)) {
            if (fwrite(b.p, 1, b.len, f) != b.len)
                goto fail;
            b.len = 0;
        }
    }
    if (b.len && fwrite(b.p, 1, b.len, f) != b.len)
        goto fail;
    free(b.p);
    return f == stdout ? (fflush(f) ? 1 : 0) : (fclose(f) ? 1 : 0);
fail:
    perror(file);
    free(b.p);
    return 1;
}

static int parse_fmt(const char *s, fmt *f)
{
    if (!strcmp(s, "csv"))
        *f = FMT_CSV;
    else if (!strcmp(s, "ndjson") || !strcmp(s, "json"))
        *f = FMT_NDJSON;
    else if (!strcmp(s, "line"))
        *f = FMT_LINE;
    else
        return -1;
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bulkload gen csv|ndjson|line FILE [reading options]\n"
               "       bulkload send --proto http|redis [options]\n"
               "reading options:\n"
               "  -n, --readings N      readings (1000000)\n"
               "      --devices D       devices p00.. (100)\n"
               "      --t0 MS           first timestamp, epoch ms (1732147200000)\n"
               "      --step MS         interval between readings of one device (6000)\n"
               "send options:\n"
               "      --format ndjson|line   HTTP body format (ndjson)\n"
               "  -H, --host ADDR       server address (127.0.0.1)\n"
               "  -p, --port PORT       server port\n"
               "      --path PATH       HTTP request target (/api/v1/streams/s/records)\n"
               "      --content-type T  HTTP Content-Type (from the format)\n"
               "      --key KEY         redis stream key (readings)\n"
               "  -b, --batch N         readings per request or pipeline (5000)\n"
               "  -c, --conns N         concurrent connections (4)\n"
               "  -P, --server-pid PID  sample this process's CPU\n"
               "      --timeout S       per batch (120)\n");
}

int main(int argc, char **argv)
{
    opts o = {.n = 1000000,
              .devices = 100,
              .t0_ms = 1732147200000LL,
              .step_ms = 6000,
              .batch = 5000,
              .conns = 4,
              .host = "127.0.0.1",
              .port = 0,
              .path = "/api/v1/streams/s/records",
              .stream_key = "readings",
              .format = FMT_NDJSON,
              .timeout_s = 120};
    static const struct option longopts[] = {
        {"readings", required_argument, NULL, 'n'},
        {"devices", required_argument, NULL, 1},
        {"t0", required_argument, NULL, 2},
        {"step", required_argument, NULL, 3},
        {"format", required_argument, NULL, 4},
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 5},
        {"content-type", required_argument, NULL, 6},
        {"key", required_argument, NULL, 7},
        {"batch", required_argument, NULL, 'b'},
        {"conns", required_argument, NULL, 'c'},
        {"server-pid", required_argument, NULL, 'P'},
        {"timeout", required_argument, NULL, 8},
        {"proto", required_argument, NULL, 9},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *mode = argv[1];
    bool gen = !strcmp(mode, "gen");
    if (!gen && strcmp(mode, "send")) {
        usage(!strcmp(mode, "-h") || !strcmp(mode, "--help") ? stdout : stderr);
        return !strcmp(mode, "-h") || !strcmp(mode, "--help") ? 0 : 2;
    }
    const char *file = NULL;
    optind = 2;
    if (gen) {
        if (argc < 4 || parse_fmt(argv[2], &o.format)) {
            usage(stderr);
            return 2;
        }
        file = argv[3];
        optind = 4;
    }
    const char *ctype = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "n:H:p:b:c:P:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'n':
            o.n = strtoull(optarg, NULL, 10);
            break;
        case 1:
            o.devices = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 2:
            o.t0_ms = strtoll(optarg, NULL, 10);
            break;
        case 3:
            o.step_ms = strtoll(optarg, NULL, 10);
            break;
        case 4:
            if (parse_fmt(optarg, &o.format) || o.format == FMT_CSV) {
                fprintf(stderr, "bulkload: --format ndjson or line\n");
                return 2;
            }
            break;
        case 'H':
            o.host = optarg;
            break;
        case 'p':
            o.port = atoi(optarg);
            break;
        case 5:
            o.path = optarg;
            break;
        case 6:
            ctype = optarg;
            break;
        case 7:
            o.stream_key = optarg;
            break;
        case 'b':
            o.batch = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            o.conns = atoi(optarg);
            break;
        case 'P':
            o.server_pid = (pid_t)atoi(optarg);
            break;
        case 8:
            o.timeout_s = atof(optarg);
            break;
        case 9:
            if (!strcmp(optarg, "redis"))
                o.redis = true;
            else if (strcmp(optarg, "http")) {
                fprintf(stderr, "bulkload: --proto http or redis\n");
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (o.devices < 1 || o.devices > 100 || o.step_ms < 1 || o.batch < 1 || o.conns < 1 ||
        o.conns > MAX_CONNS || o.timeout_s <= 0) {
        fprintf(stderr, "bulkload: option out of range\n");
        return 2;
    }
    if (gen)
        return mode_gen(&o, file);
    if (o.port <= 0 || o.port > 65535) {
        fprintf(stderr, "bulkload: --port is required\n");
        return 2;
    }
    if (o.redis)
        o.format = FMT_REDIS;
    o.content_type = ctype                  ? ctype
                     : o.format == FMT_LINE ? "text/plain; charset=utf-8"
                                            : "application/x-ndjson";
    return mode_send(&o);
}
