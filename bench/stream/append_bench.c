/* append_bench.c -- throughput of stream_append through the batch API, the
 * way the node uses it: on a uv loop thread, records copied into pending
 * batches, the writer thread doing the I/O, done callbacks back on the loop.
 *
 * The clock runs from the first append to the last done callback, so the
 * figure is records made durable under the policy per second, not records
 * queued. Appends stop on WEIR_EFULL (back-pressure) and resume from the
 * next done callback.
 *
 * usage: append_bench [-n records] [-b records per append] [-p partitions]
 *                     [-s none|interval|always] [-i interval_ms]
 *                     [-k key bytes] [-v value bytes] [-d dir] [-o]
 *   -o: offline mode (loop == NULL), appends from the main thread
 * Prints one line of key=value pairs.
 */
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "stream/store.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int stream__remove_tree(const char *path);

typedef struct bench {
    stream *s;
    uv_idle_t idle;
    bool idle_on;
    uint32_t parts;
    uint64_t total, appended, acked, full;
    size_t per_call;
    stream_rec_in *recs; /* one call's worth, reused */
    int errors;
} bench;

static void on_idle(uv_idle_t *h);

static void on_done(void *arg, int status, uint32_t partition, uint64_t first)
{
    (void)partition;
    (void)first;
    bench *b = arg;
    if (status)
        b->errors++;
    b->acked += b->per_call;
    if (!b->idle_on && b->appended < b->total) {
        uv_idle_start(&b->idle, on_idle);
        b->idle_on = true;
    }
}

/* One loop iteration's worth of appends: up to 64 calls, fewer on EFULL
 * (then the next done callback restarts the idle handle). */
static void on_idle(uv_idle_t *h)
{
    bench *b = h->data;
    for (int i = 0; i < 64 && b->appended < b->total; i++) {
        uint32_t p = (uint32_t)((b->appended / b->per_call) % b->parts);
        int rc = stream_append(b->s, p, b->recs, b->per_call, on_done, b, NULL);
        if (rc == WEIR_EFULL) {
            b->full++;
            uv_idle_stop(&b->idle);
            b->idle_on = false;
            return;
        }
        if (rc) {
            fprintf(stderr, "append: %s\n", weir_strerror(rc));
            exit(1);
        }
        b->appended += b->per_call;
    }
    if (b->appended >= b->total) {
        uv_idle_stop(&b->idle);
        b->idle_on = false;
    }
}

int main(int argc, char **argv)
{
    uint64_t n = 10000000;
    size_t per_call = 100, klen = 16, vlen = 84;
    uint32_t parts = 1, interval = 100;
    stream_sync sync = STREAM_SYNC_NONE;
    const char *root = "/tmp";
    bool offline = false;
    int c;
    while ((c = getopt(argc, argv, "n:b:p:s:i:k:v:d:o")) != -1) {
        switch (c) {
        case 'n':
            n = strtoull(optarg, NULL, 10);
            break;
        case 'b':
            per_call = strtoul(optarg, NULL, 10);
            break;
        case 'p':
            parts = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 's':
            sync = strcmp(optarg, "always") == 0     ? STREAM_SYNC_ALWAYS
                   : strcmp(optarg, "interval") == 0 ? STREAM_SYNC_INTERVAL
                                                     : STREAM_SYNC_NONE;
            break;
        case 'i':
            interval = (uint32_t)strtoul(optarg, NULL, 10);
            break;
        case 'k':
            klen = strtoul(optarg, NULL, 10);
            break;
        case 'v':
            vlen = strtoul(optarg, NULL, 10);
            break;
        case 'd':
            root = optarg;
            break;
        case 'o':
            offline = true;
            break;
        default:
            fprintf(stderr,
                    "usage: %s [-n N] [-b per_call] [-p parts] [-s none|interval|always] "
                    "[-i ms] [-k key] [-v value] [-d dir] [-o]\n",
                    argv[0]);
            return 2;
        }
    }
    n -= n % per_call;
    wlog_set_level(WLOG_WARN);
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/weir-append-bench-%d", root, (int)getpid());

    uint8_t *key = malloc(klen + 1), *val = malloc(vlen + 1);
    for (size_t i = 0; i < klen; i++)
        key[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < vlen; i++)
        val[i] = (uint8_t)(i * 7);
    bench b = {.parts = parts, .total = n, .per_call = per_call};
    b.recs = calloc(per_call, sizeof(*b.recs));
    int64_t now = weir_wall_ns();
    for (size_t i = 0; i < per_call; i++)
        b.recs[i] = (stream_rec_in){.key = key,
                                    .key_len = (uint32_t)klen,
                                    .ts = now + (int64_t)i,
                                    .arrival = now,
                                    .value = val,
                                    .value_len = (uint32_t)vlen};

    uv_loop_t loop;
    uv_loop_init(&loop);
    stream_store *st;
    int rc = stream_store_open(dir, offline ? NULL : &loop, &st);
    if (rc) {
        fprintf(stderr, "open: %s\n", weir_strerror(rc));
        return 1;
    }
    stream_opts o;
    stream_opts_default(&o);
    o.partitions = parts;
    o.sync = sync;
    o.sync_interval_ms = interval;
    if ((rc = stream_open(st, "bench", &o, &b.s))) {
        fprintf(stderr, "stream_open: %s\n", weir_strerror(rc));
        return 1;
    }

    int64_t t0 = weir_mono_ns();
    if (offline) {
        /* Callbacks run on the writer thread: count acks atomically there. */
        while (b.appended < n) {
            uint32_t p = (uint32_t)((b.appended / per_call) % parts);
            rc = stream_append(b.s, p, b.recs, per_call, NULL, NULL, NULL);
            if (rc == WEIR_EFULL) {
                b.full++;
                continue; /* the writer drains; spin (offline tools would wait) */
            }
            if (rc) {
                fprintf(stderr, "append: %s\n", weir_strerror(rc));
                return 1;
            }
            b.appended += per_call;
        }
        stream_store_flush(st);
        b.acked = n;
    } else {
        uv_idle_init(&loop, &b.idle);
        b.idle.data = &b;
        uv_idle_start(&b.idle, on_idle);
        b.idle_on = true;
        uv_run(&loop, UV_RUN_DEFAULT); /* returns when everything is acknowledged */
    }
    int64_t t1 = weir_mono_ns();
    stream_stats ss;
    stream_get_stats(b.s, &ss);
    double secs = (double)(t1 - t0) / 1e9;
    printf("mode=%s sync=%s partitions=%u per_call=%zu record_bytes=%zu records=%llu "
           "seconds=%.3f records_per_s=%.0f MB_per_s=%.1f batches=%llu writes=%llu fsyncs=%llu "
           "efull=%llu errors=%d\n",
           offline ? "offline" : "loop",
           sync == STREAM_SYNC_ALWAYS     ? "always"
           : sync == STREAM_SYNC_INTERVAL ? "interval"
                                          : "none",
           parts, per_call, klen + vlen, (unsigned long long)b.acked, secs, (double)b.acked / secs,
           (double)ss.bytes / secs / 1e6, (unsigned long long)ss.batches,
           (unsigned long long)ss.writes, (unsigned long long)ss.fsyncs, (unsigned long long)b.full,
           b.errors);
    if (!offline)
        uv_close((uv_handle_t *)&b.idle, NULL);
    stream_store_close(st);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    stream__remove_tree(dir);
    free(key);
    free(val);
    free(b.recs);
    return b.errors ? 1 : 0;
}
