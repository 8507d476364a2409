/* e2e.c -- end-to-end load for the rules benchmark (bench/rules):
 * publisher -> broker -> rule (per-device 5 s hopping-by-1 s average) ->
 * MQTT subscriber, against weir (the rule runs inside it) or against
 * Mosquitto with Node-RED running the same rule as a flow.
 *
 * One publisher client sends readings {"device":"dNNN","ts":<epoch ms>,
 * "temperature":...} to <prefix>/dNNN, round-robin over --devices devices,
 * paced at --rate readings/s (scheduled sends; after a stall it catches up
 * without bursting more than 10 ms of backlog). ts is the wall clock at
 * the moment of sending, so the window ending at second W closes (the rule's
 * watermark passes W) with the first reading whose ts >= W: the tool notes
 * the CLOCK_MONOTONIC time of that send for every second.
 *
 * One subscriber client receives the results on --alerts (alerts/#); each
 * carries "device" and "_window_end" (ms). Its latency is receive time minus
 * the send time of the reading that closed its window: the time the
 * reading took through broker, storage, rule and output to a subscriber.
 *
 * Measured window ends: W in (start + warmup, end of sending]. For every
 * such W, every device published inside [W-5s, W) (the rate is at least one
 * reading per device per second), so --devices results are expected;
 * missing = expected - distinct (W, device) received within --drain seconds
 * after sending stops; duplicates are counted apart.
 *
 * Output: one JSON line on stdout. Both clients speak MQTT 3.1.1 at QoS 0
 * with TCP_NODELAY through libmosquitto's threaded mode.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <mosquitto.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_SECS   4096
#define MAX_DEV    10000
#define MAX_SAMPLE 4000000

static const char *host = "127.0.0.1";
static int port = 1883;
static double rate = 1000;
static int devices = 100;
static double duration = 5, warmup = 2, drain = 3;
static const char *prefix = "readings";
static const char *alerts = "alerts/#";

static int64_t mono_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* Shared state (subscriber thread writes samples; publisher writes the
 * trigger times; both under mu). */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int64_t base_sec;               /* wall second when sending started */
static int64_t trigger_ns[MAX_SECS];   /* mono time of the first send with ts >= W */
static uint8_t *seen;                  /* [MAX_SECS][devices] */
static double *samples;                /* latency ms of measured results */
static size_t n_samples;
static uint64_t received, unparsed, dups, outside;
static int64_t measure_lo_sec, measure_hi_sec; /* measured window ends, inclusive */
static bool measuring_set;

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    int64_t now = mono_ns();
    const char *p = msg->payload;
    if (!p || msg->payloadlen <= 0)
        return;
    char buf[1024];
    size_t n = (size_t)msg->payloadlen < sizeof(buf) - 1 ? (size_t)msg->payloadlen : sizeof(buf) - 1;
    memcpy(buf, p, n);
    buf[n] = '\0';
    const char *we = strstr(buf, "\"_window_end\":");
    const char *dv = strstr(buf, "\"device\":\"d");
    pthread_mutex_lock(&mu);
    received++;
    if (!we || !dv) {
        unparsed++;
        pthread_mutex_unlock(&mu);
        return;
    }
    int64_t w_ms = strtoll(we + 14, NULL, 10);
    int dev = atoi(dv + 11);
    int64_t sec = w_ms / 1000 - base_sec;
    if (w_ms % 1000 != 0 || dev < 0 || dev >= devices) {
        unparsed++;
        pthread_mutex_unlock(&mu);
        return;
    }
    if (sec < 0 || sec >= MAX_SECS) { /* an earlier run's windows */
        outside++;
        pthread_mutex_unlock(&mu);
        return;
    }
    if (!measuring_set || sec < measure_lo_sec || sec > measure_hi_sec) {
        outside++;
        pthread_mutex_unlock(&mu);
        return;
    }
    uint8_t *s = &seen[(size_t)sec * (size_t)devices + (size_t)dev];
    if (*s) {
        dups++;
    } else {
        *s = 1;
        if (trigger_ns[sec] && n_samples < MAX_SAMPLE)
            samples[n_samples++] = (double)(now - trigger_ns[sec]) / 1e6;
    }
    pthread_mutex_unlock(&mu);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    if (rc == 0 && ud)
        mosquitto_subscribe(m, NULL, alerts, 0);
}

static volatile int subscribed;
static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *q)
{
    subscribed = 1;
}

static struct mosquitto *client(const char *id, bool sub)
{
    struct mosquitto *m = mosquitto_new(id, true, sub ? (void *)1 : NULL);
    if (!m) {
        fprintf(stderr, "e2e: mosquitto_new failed\n");
        exit(2);
    }
    mosquitto_int_option(m, MOSQ_OPT_TCP_NODELAY, 1);
    mosquitto_connect_callback_set(m, on_connect);
    if (sub) {
        mosquitto_message_callback_set(m, on_message);
        mosquitto_subscribe_callback_set(m, on_subscribe);
    }
    if (mosquitto_connect(m, host, port, 60) != MOSQ_ERR_SUCCESS) {
        fprintf(stderr, "e2e: cannot connect to %s:%d\n", host, port);
        exit(2);
    }
    mosquitto_loop_start(m);
    return m;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double q)
{
    if (!n_samples)
        return NAN;
    size_t i = (size_t)ceil(q * (double)n_samples);
    if (i > 0)
        i--;
    if (i >= n_samples)
        i = n_samples - 1;
    return samples[i];
}

static void sleep_until(int64_t t)
{
    struct timespec ts = {.tv_sec = t / 1000000000LL, .tv_nsec = t % 1000000000LL};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},   {"rate", 1, 0, 'r'},
        {"devices", 1, 0, 'D'},  {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'w'},
        {"drain", 1, 0, 'x'},    {"prefix", 1, 0, 't'}, {"alerts", 1, 0, 'a'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h:p:r:D:d:w:x:t:a:", lo, NULL)) != -1) {
        switch (c) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 'r': rate = atof(optarg); break;
        case 'D': devices = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'x': drain = atof(optarg); break;
        case 't': prefix = optarg; break;
        case 'a': alerts = optarg; break;
        default:
            fprintf(stderr, "usage: e2e -p PORT --rate R --devices D --duration S --warmup S\n");
            return 2;
        }
    }
    if (devices < 1 || devices > MAX_DEV || rate < devices || duration + warmup + 10 > MAX_SECS) {
        fprintf(stderr, "e2e: need 1 <= devices <= rate (one reading per device per second)\n");
        return 2;
    }
    seen = calloc((size_t)MAX_SECS * (size_t)devices, 1);
    samples = malloc(sizeof(double) * MAX_SAMPLE);
    mosquitto_lib_init();
    char id[64];
    snprintf(id, sizeof(id), "e2e-sub-%d", (int)getpid());
    struct mosquitto *sub = client(id, true);
    snprintf(id, sizeof(id), "e2e-pub-%d", (int)getpid());
    struct mosquitto *pub = client(id, false);
    int64_t dl = mono_ns() + 10000000000LL;
    while (!subscribed && mono_ns() < dl)
        usleep(1000);
    if (!subscribed) {
        fprintf(stderr, "e2e: no SUBACK\n");
        return 2;
    }

    int64_t start_wall = wall_ms();
    base_sec = start_wall / 1000;
    int64_t t0 = mono_ns(), period = (int64_t)(1e9 / rate);
    int64_t t_end = t0 + (int64_t)((warmup + duration) * 1e9);
    pthread_mutex_lock(&mu);
    /* Window ends after the warm-up, up to the end of sending. */
    measure_lo_sec = (start_wall + (int64_t)(warmup * 1000)) / 1000 + 1 - base_sec;
    /* ... whose closing reading (ts >= W) is sent with 50 ms to spare. */
    measure_hi_sec = (start_wall + (int64_t)((warmup + duration) * 1000) - 50) / 1000 - base_sec;
    measuring_set = true;
    pthread_mutex_unlock(&mu);

    uint64_t sent = 0, failed = 0;
    int64_t last_sec = -1;
    char topic[128], payload[256];
    for (uint64_t k = 0;; k++) {
        int64_t due = t0 + (int64_t)k * period;
        if (due >= t_end)
            break;
        int64_t now = mono_ns();
        if (due > now)
            sleep_until(due);
        else if (now - due > 10000000) /* more than 10 ms behind: skip, count as not sent */
            continue;
        int d = (int)(k % (uint64_t)devices);
        int64_t ts = wall_ms();
        int64_t sec = ts / 1000 - base_sec;
        if (sec != last_sec && sec >= 0 && sec < MAX_SECS) {
            pthread_mutex_lock(&mu);
            trigger_ns[sec] = mono_ns();
            pthread_mutex_unlock(&mu);
            last_sec = sec;
        }
        snprintf(topic, sizeof(topic), "%s/d%03d", prefix, d);
        int n = snprintf(payload, sizeof(payload),
                         "{\"device\":\"d%03d\",\"ts\":%" PRId64 ",\"temperature\":%.2f}", d, ts,
                         20.0 + (double)(k % 200) / 10.0);
        if (mosquitto_publish(pub, NULL, topic, n, payload, 0, false) == MOSQ_ERR_SUCCESS)
            sent++;
        else
            failed++;
    }
    int64_t sent_end = mono_ns();
    sleep_until(sent_end + (int64_t)(drain * 1e9));

    mosquitto_disconnect(pub);
    mosquitto_loop_stop(pub, true);
    mosquitto_disconnect(sub);
    mosquitto_loop_stop(sub, true);

    pthread_mutex_lock(&mu);
    uint64_t expected = 0, got = 0;
    for (int64_t s = measure_lo_sec; s <= measure_hi_sec; s++) {
        expected += (uint64_t)devices;
        for (int dv = 0; dv < devices; dv++)
            got += seen[(size_t)s * (size_t)devices + (size_t)dv];
    }
    qsort(samples, n_samples, sizeof(double), cmp_d);
    double sum = 0;
    for (size_t i = 0; i < n_samples; i++)
        sum += samples[i];
    double secs = (double)(sent_end - t0) / 1e9;
    char lat[256] = "null";
    if (n_samples)
        snprintf(lat, sizeof(lat),
                 "{\"min\":%.3f,\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f,\"avg\":%.3f}",
                 samples[0], pct(0.50), pct(0.90), pct(0.99), samples[n_samples - 1],
                 sum / (double)n_samples);
    printf("{\"rate\":%.0f,\"devices\":%d,\"sent\":%" PRIu64 ",\"send_failed\":%" PRIu64
           ",\"sent_per_s\":%.1f,\"windows\":%" PRId64 ",\"expected\":%" PRIu64
           ",\"received\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"duplicates\":%" PRIu64
           ",\"unparsed\":%" PRIu64 ",\"outside\":%" PRIu64 ",\"samples\":%zu,\"lat_ms\":%s}\n",
           rate, devices, sent, failed, (double)sent / secs, measure_hi_sec - measure_lo_sec + 1,
           expected, received, expected - got, dups, unparsed, outside, n_samples, lat);
    pthread_mutex_unlock(&mu);
    mosquitto_destroy(pub);
    mosquitto_destroy(sub);
    mosquitto_lib_cleanup();
    free(seen);
    free(samples);
    return 0;
}
