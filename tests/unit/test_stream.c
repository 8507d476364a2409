/* test_stream.c -- the stream store's API: append/read round trips across
 * partitions and segment rolls, every reader position (time included, with
 * ts that jump around), watches and group commit on a real uv loop, the
 * three sync policies, back-pressure, retention, delete, and injected
 * allocation and I/O failures.
 *
 * Record contents are a function of (partition, offset) (stream_util.h),
 * so every read is checked byte for byte. Waiting is always on a condition
 * with a deadline (tu_run_until, stream_store_flush), never a sleep.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/wlog.h"
#include "stream/store.h"
#include "stream/streamInt.h"
#include "stream_util.h"

static stream_opts opts_small(uint32_t parts, stream_sync sync)
{
    stream_opts o;
    stream_opts_default(&o);
    o.partitions = parts;
    o.sync = sync;
    o.segment_bytes = 4096;
    return o;
}

/* ---- Round trips ------------------------------------------------------------- */

static void test_roundtrip_partitions_rolls(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(4, STREAM_SYNC_NONE);
    stream *s;
    assert_int_equal(stream_open(st, "sensors", &o, &s), WEIR_OK);
    stream *again;
    assert_int_equal(stream_open(st, "sensors", &o, &again), WEIR_OK);
    assert_ptr_equal(s, again);
    assert_string_equal(stream_name(s), "sensors");
    assert_int_equal(stream_partitions(s), 4);

    uint64_t next[4] = {0};
    for (int round = 0; round < 200; round++) {
        uint32_t part = (uint32_t)(tu_mix((uint64_t)round) % 4);
        size_t n = 1 + (size_t)(tu_mix((uint64_t)round + 99) % 17);
        uint64_t first;
        assert_int_equal(tu_append(s, part, next[part], n, false, NULL, NULL, &first), WEIR_OK);
        assert_int_equal(first, next[part]);
        next[part] += n;
    }
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    uint64_t total = 0;
    for (uint32_t p = 0; p < 4; p++) {
        assert_int_equal(stream_end_offset(s, p), next[p]);
        assert_int_equal(stream_start_offset(s, p), 0);
        assert_int_equal(tu_read_all(s, p, false, NULL), (int64_t)next[p]);
        total += next[p];
    }
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_int_equal(ss.records, total);
    assert_true(ss.segments > 8); /* 4 KiB segments rolled many times */
    assert_int_equal(ss.first_ts, TU_TS0);
    assert_true(ss.bytes > total * 24);

    /* Partitioning: XXH3 of the key, empty key -> 0. */
    assert_int_equal(stream_partition_for(s, NULL, 0), 0);
    assert_int_equal(stream_partition_for(s, (const uint8_t *)"x", 0), 0);
    uint32_t a = stream_partition_for(s, (const uint8_t *)"device-7", 8);
    assert_true(a < 4);
    assert_int_equal(stream_partition_for(s, (const uint8_t *)"device-7", 8), a);

    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);

    /* Reopen: everything is still there, appends continue densely. */
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "sensors", &o, &s), WEIR_OK);
    for (uint32_t p = 0; p < 4; p++) {
        assert_int_equal(stream_end_offset(s, p), next[p]);
        uint64_t first;
        assert_int_equal(tu_append(s, p, next[p], 3, false, NULL, NULL, &first), WEIR_OK);
        assert_int_equal(first, next[p]);
        next[p] += 3;
    }
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    for (uint32_t p = 0; p < 4; p++)
        assert_int_equal(tu_read_all(s, p, false, NULL), (int64_t)next[p]);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);
    tu_rmdir(dir);
}

static void test_invalid_arguments(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_store *second;
    assert_int_equal(stream_store_open(dir, NULL, &second), WEIR_EBUSY);
    stream *s;
    static const char *const bad[] = {"", ".", "..", "a/b", "with space", "$", "$$x", "a$", "ü"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(stream_open(st, bad[i], NULL, &s), WEIR_EINVAL);
    char longname[131];
    memset(longname, 'a', 129);
    longname[129] = '\0';
    assert_int_equal(stream_open(st, longname, NULL, &s), WEIR_EINVAL);
    longname[128] = '\0';
    assert_int_equal(stream_open(st, longname, NULL, &s), WEIR_OK);
    assert_int_equal(stream_open(st, "$deadletter", NULL, &s), WEIR_OK);
    stream_opts o = opts_small(0, STREAM_SYNC_NONE);
    assert_int_equal(stream_open(st, "x", &o, &s), WEIR_EINVAL);
    o.partitions = 1025;
    assert_int_equal(stream_open(st, "x", &o, &s), WEIR_EINVAL);
    o.partitions = 2;
    o.segment_bytes = 100;
    assert_int_equal(stream_open(st, "x", &o, &s), WEIR_EINVAL);
    o.segment_bytes = 4096;
    assert_int_equal(stream_open(st, "x", &o, &s), WEIR_OK);
    o.partitions = 3;
    stream *s2;
    assert_int_equal(stream_open(st, "x", &o, &s2), WEIR_EINVAL);

    tu_rec r;
    tu_gen(0, 0, false, &r);
    stream_rec_in in = tu_in(&r);
    assert_int_equal(stream_append(s, 2, &in, 1, NULL, NULL, NULL), WEIR_EINVAL);
    assert_int_equal(stream_append(s, 0, &in, 0, NULL, NULL, NULL), WEIR_EINVAL);
    in.key = NULL;
    assert_int_equal(stream_append(s, 0, &in, 1, NULL, NULL, NULL), WEIR_EINVAL);
    in = tu_in(&r);
    in.key_len = STREAM_MAX_KEY + 1;
    assert_int_equal(stream_append(s, 0, &in, 1, NULL, NULL, NULL), WEIR_ETOOBIG);
    in = tu_in(&r);
    in.value_len = STREAM_MAX_VALUE + 1;
    assert_int_equal(stream_append(s, 0, &in, 1, NULL, NULL, NULL), WEIR_ETOOBIG);
    /* An empty key and value are fine. */
    stream_rec_in empty = {.ts = 5};
    uint64_t off;
    assert_int_equal(stream_append(s, 1, &empty, 1, NULL, NULL, &off), WEIR_OK);
    assert_int_equal(off, 0);
    stream_store_close(st);

    /* Reopen with another partition count. */
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "x", &o, &s), WEIR_EINVAL);
    o.partitions = 2;
    assert_int_equal(stream_open(st, "x", &o, &s), WEIR_OK);
    assert_int_equal(stream_end_offset(s, 1), 1);
    stream_reader *rd;
    assert_int_equal(stream_reader_open(s, 1, STREAM_POS_EARLIEST, 0, &rd), WEIR_OK);
    stream_rec rec;
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(rec.key_len, 0);
    assert_int_equal(rec.value_len, 0);
    assert_int_equal(rec.ts, 5);
    stream_reader_close(rd);
    assert_int_equal(stream_reader_open(s, 2, STREAM_POS_EARLIEST, 0, &rd), WEIR_EINVAL);
    stream_store_close(st);
    tu_rmdir(dir);
}

/* A large record (bigger than a batch target) and a batch of many records
 * in one call that spans several batches. */
static void test_large_records(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_ALWAYS);
    o.segment_bytes = 1 << 20;
    stream *s;
    assert_int_equal(stream_open(st, "big", &o, &s), WEIR_OK);
    size_t big = 3u << 20;
    uint8_t *v = malloc(big);
    for (size_t i = 0; i < big; i++)
        v[i] = (uint8_t)(i * 13);
    stream_rec_in in = {
        .key = (const uint8_t *)"k", .key_len = 1, .ts = 1, .value = v, .value_len = (uint32_t)big};
    uint64_t off;
    assert_int_equal(stream_append(s, 0, &in, 1, NULL, NULL, &off), WEIR_OK);
    assert_int_equal(off, 0);
    assert_int_equal(tu_append(s, 0, 1, 20000, false, NULL, NULL, &off), WEIR_OK);
    assert_int_equal(off, 1);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_reader *rd;
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_EARLIEST, 0, &rd), WEIR_OK);
    stream_rec rec;
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(rec.value_len, big);
    assert_memory_equal(rec.value, v, big);
    for (uint64_t i = 1; i <= 20000; i++) {
        assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
        assert_int_equal(rec.offset, i);
        assert_true(tu_match(&rec, false));
    }
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_EAGAIN);
    stream_reader_close(rd);
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_true(ss.batches >= 3); /* 20000 records of ~140 bytes need several 1 MiB batches */
    free(v);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);
    tu_rmdir(dir);
}

/* A segment whose first batch was committed longer ago than segment_ms is
 * rolled before the next batch. The wait is for the clock itself (the
 * condition under test), with a deadline. */
static void test_roll_by_age(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    o.segment_bytes = 1 << 20;
    o.segment_ms = 2;
    stream *s;
    assert_int_equal(stream_open(st, "age", &o, &s), WEIR_OK);
    assert_int_equal(tu_append(s, 0, 0, 5, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_int_equal(ss.segments, 1);
    int64_t until = weir_wall_ns() + 3 * WEIR_NS_PER_MS;
    while (weir_wall_ns() < until)
        ;
    assert_int_equal(tu_append(s, 0, 5, 5, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_get_stats(s, &ss);
    assert_int_equal(ss.segments, 2);
    assert_int_equal(tu_read_all(s, 0, false, NULL), 10);
    /* segment_ms = 0: never by age. */
    o.segment_ms = 0;
    assert_int_equal(stream_open(st, "age", &o, &s), WEIR_OK);
    until = weir_wall_ns() + 3 * WEIR_NS_PER_MS;
    while (weir_wall_ns() < until)
        ;
    assert_int_equal(tu_append(s, 0, 10, 5, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_get_stats(s, &ss);
    assert_int_equal(ss.segments, 2);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);
    tu_rmdir(dir);
}

/* ---- Reader positions ------------------------------------------------------------ */

static void test_read_positions(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    o.segment_bytes = 64 << 10;
    stream *s;
    assert_int_equal(stream_open(st, "pos", &o, &s), WEIR_OK);
    const uint64_t N = 3000;
    for (uint64_t i = 0; i < N; i += 10)
        assert_int_equal(tu_append(s, 0, i, 10, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);

    stream_reader *rd;
    stream_rec rec;
    /* Every 37th offset, each via a fresh reader. */
    for (uint64_t off = 0; off < N; off += 37) {
        assert_int_equal(stream_reader_open(s, 0, STREAM_POS_OFFSET, (int64_t)off, &rd), 0);
        assert_int_equal(stream_reader_position(rd), off);
        assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
        assert_int_equal(rec.offset, off);
        assert_true(tu_match(&rec, false));
        assert_int_equal(stream_reader_position(rd), off + 1);
        stream_reader_close(rd);
    }
    /* Beyond the end: clamped to the end. */
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_OFFSET, (int64_t)N + 50, &rd), 0);
    assert_int_equal(stream_reader_position(rd), N);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_EAGAIN);
    stream_reader_close(rd);
    /* LATEST sees only what comes after; EAGAIN first. */
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_LATEST, 0, &rd), 0);
    assert_int_equal(stream_reader_position(rd), N);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_EAGAIN);
    assert_int_equal(tu_append(s, 0, N, 5, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    for (uint64_t i = 0; i < 5; i++) {
        assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
        assert_int_equal(rec.offset, N + i);
        assert_true(tu_match(&rec, false));
    }
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_EAGAIN);
    stream_reader_close(rd);
    /* Time, monotonic ts: ts = TS0 + off*1000. */
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_TIME, TU_TS0 + 1234 * 1000 - 1, &rd), 0);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(rec.offset, 1234);
    stream_reader_close(rd);
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_TIME, 0, &rd), 0);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(rec.offset, 0);
    stream_reader_close(rd);
    /* After the newest ts: at the end. */
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_TIME, TU_TS0 + (int64_t)N * 1000 * 2, &rd),
                     0);
    assert_int_equal(stream_reader_position(rd), N + 5);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_EAGAIN);
    stream_reader_close(rd);
    stream_store_close(st);
    tu_rmdir(dir);
}

/* With ts jumping around, a TIME reader must start at the lowest offset
 * whose ts >= t, found by brute force here. */
static void test_time_seek_nonmonotonic(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    o.segment_bytes = 128 << 10; /* several segments, each with many index entries */
    stream *s;
    assert_int_equal(stream_open(st, "scrambled", &o, &s), WEIR_OK);
    const uint64_t N = 6000;
    int64_t *ts = malloc(N * sizeof(*ts));
    for (uint64_t i = 0; i < N; i += 20)
        assert_int_equal(tu_append(s, 0, i, 20, true, NULL, NULL, NULL), WEIR_OK);
    for (uint64_t i = 0; i < N; i++) {
        tu_rec r;
        tu_gen(0, i, true, &r);
        ts[i] = r.ts;
    }
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_true(ss.segments >= 4);

    for (int k = 0; k < 300; k++) {
        int64_t t = TU_TS0 + (int64_t)(tu_mix((uint64_t)k + 7) % 1000100) * 1000 - 500;
        if (k == 0)
            t = INT64_MIN;
        if (k == 1)
            t = INT64_MAX;
        uint64_t want = N;
        for (uint64_t i = 0; i < N; i++)
            if (ts[i] >= t) {
                want = i;
                break;
            }
        stream_reader *rd;
        assert_int_equal(stream_reader_open(s, 0, STREAM_POS_TIME, t, &rd), 0);
        stream_rec rec;
        int rc = stream_reader_next(rd, &rec);
        if (want == N) {
            assert_int_equal(rc, WEIR_EAGAIN);
            assert_int_equal(stream_reader_position(rd), N);
        } else {
            assert_int_equal(rc, WEIR_OK);
            assert_int_equal(rec.offset, want);
            assert_true(rec.ts >= t);
            assert_true(tu_match(&rec, true));
            /* Then every later record, whatever its ts. */
            assert_int_equal(stream_reader_next(rd, &rec) == WEIR_OK ? rec.offset : N,
                             want + 1 < N ? want + 1 : N);
        }
        stream_reader_close(rd);
    }
    free(ts);
    stream_store_close(st);
    tu_rmdir(dir);
}

/* ---- The loop: watches, group commit, sync policies ---------------------------------- */

typedef struct loopctx {
    stream *s;
    uint32_t partition;
    int appends; /* appends to make in one callback */
    int acks;    /* done callbacks seen */
    int ack_errors;
    uint64_t ack_first[256];
    uint64_t watch_end;
    int watch_calls;
    int order; /* event counter */
    int watch_order, ack_order;
    bool durable_ok; /* every ack found its records durable as the policy says */
    stream_sync sync;
} loopctx;

static void on_done(void *arg, int status, uint32_t partition, uint64_t first)
{
    loopctx *c = arg;
    if (status)
        c->ack_errors++;
    if (c->acks < 256)
        c->ack_first[c->acks] = first;
    c->acks++;
    c->ack_order = ++c->order;
    uint64_t written, synced;
    stream__debug_ends(c->s, partition, &written, &synced);
    uint64_t need = first + 1; /* tests append one record per call */
    bool ok = c->sync == STREAM_SYNC_NONE ? written >= need : synced >= need;
    if (c->sync == STREAM_SYNC_ALWAYS) {
        /* Visible no earlier than durable. */
        ok = ok && stream_end_offset(c->s, partition) <= synced;
    }
    if (!ok)
        c->durable_ok = false;
}

static void on_watch(void *arg, uint32_t partition, uint64_t end)
{
    loopctx *c = arg;
    assert_int_equal(partition, c->partition);
    assert_true(end >= c->watch_end);
    c->watch_end = end;
    c->watch_calls++;
    if (!c->watch_order)
        c->watch_order = ++c->order;
}

static void append_burst(uv_timer_t *t)
{
    loopctx *c = t->data;
    for (int i = 0; i < c->appends; i++) {
        uint64_t first;
        uint64_t off = stream_end_offset(c->s, c->partition) + (uint64_t)i;
        int rc = tu_append(c->s, c->partition, off, 1, false, on_done, c, &first);
        assert_int_equal(rc, WEIR_OK);
    }
}

static bool acks_at_least(void *arg)
{
    loopctx *c = arg;
    return c->acks >= c->appends;
}

static bool watch_reached(void *arg)
{
    loopctx *c = arg;
    return c->watch_end >= (uint64_t)c->appends;
}

static void test_group_commit_and_watch(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    stream_store *st;
    assert_int_equal(stream_store_open(dir, &loop, &st), WEIR_OK);
    stream_opts o = opts_small(2, STREAM_SYNC_ALWAYS);
    o.segment_bytes = 1 << 20; /* one batch, no roll */
    stream *s;
    assert_int_equal(stream_open(st, "gc", &o, &s), WEIR_OK);
    loopctx c = {
        .s = s, .partition = 1, .appends = 100, .durable_ok = true, .sync = STREAM_SYNC_ALWAYS};
    stream_watch *w = stream_watch_add(s, on_watch, &c);
    assert_non_null(w);

    /* 100 appends in one loop iteration: one write, one fsync. */
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &c;
    uv_timer_start(&t, append_burst, 0, 0);
    assert_true(tu_run_until(&loop, acks_at_least, &c, 10000));
    assert_true(tu_run_until(&loop, watch_reached, &c, 10000));
    assert_int_equal(c.ack_errors, 0);
    assert_true(c.durable_ok);
    for (int i = 0; i < 100; i++)
        assert_int_equal(c.ack_first[i], (uint64_t)i);
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_int_equal(ss.fsyncs, 1);
    assert_int_equal(ss.writes, 1);
    assert_int_equal(ss.batches, 1);
    assert_int_equal(c.watch_end, 100);
    assert_int_equal(stream_end_offset(s, 1), 100);
    assert_int_equal(tu_read_all(s, 1, false, NULL), 100);

    /* A second burst: one more fsync, the watch follows. */
    c.acks = 0;
    c.appends = 50;
    uv_timer_start(&t, append_burst, 0, 0);
    assert_true(tu_run_until(&loop, acks_at_least, &c, 10000));
    c.appends = 150;
    assert_true(tu_run_until(&loop, watch_reached, &c, 10000));
    stream_get_stats(s, &ss);
    assert_int_equal(ss.fsyncs, 2);
    assert_int_equal(c.watch_end, 150);

    /* uv_run(DEFAULT) returns once nothing is outstanding. */
    uv_run(&loop, UV_RUN_DEFAULT);
    stream_watch_remove(w);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(tu_close_with_loop(st, &loop), 0);
    tu_rmdir(dir);
}

static void run_policy(stream_sync sync, uint32_t interval_ms)
{
    char *dir = tu_tmpdir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    stream_store *st;
    assert_int_equal(stream_store_open(dir, &loop, &st), WEIR_OK);
    stream_opts o = opts_small(1, sync);
    o.sync_interval_ms = interval_ms;
    stream *s;
    assert_int_equal(stream_open(st, "pol", &o, &s), WEIR_OK);
    loopctx c = {.s = s, .partition = 0, .appends = 20, .durable_ok = true, .sync = sync};
    stream_watch *w = stream_watch_add(s, on_watch, &c);
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &c;
    uv_timer_start(&t, append_burst, 0, 0);
    assert_true(tu_run_until(&loop, acks_at_least, &c, 10000));
    assert_true(tu_run_until(&loop, watch_reached, &c, 10000));
    assert_int_equal(c.ack_errors, 0);
    assert_true(c.durable_ok);
    stream_stats ss;
    stream_get_stats(s, &ss);
    uint64_t written, synced;
    stream__debug_ends(s, 0, &written, &synced);
    assert_int_equal(written, 20);
    if (sync == STREAM_SYNC_NONE) {
        /* Acknowledged after write(2), no fsync at all until a flush. */
        assert_int_equal(ss.fsyncs, 0);
        assert_int_equal(synced, 0);
        assert_int_equal(stream_store_flush(st), WEIR_OK);
        stream__debug_ends(s, 0, &written, &synced);
        assert_int_equal(synced, 20);
    } else {
        assert_int_equal(synced, 20);
        assert_int_equal(ss.fsyncs, 1);
    }
    if (sync == STREAM_SYNC_INTERVAL)
        /* Visible (watch) after the write, acknowledged after the fsync. */
        assert_true(c.watch_order < c.ack_order);
    if (sync == STREAM_SYNC_ALWAYS)
        /* Acknowledged and visible only after the fsync. */
        assert_true(c.watch_order > 0 && c.ack_order > 0);
    stream_watch_remove(w);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(tu_close_with_loop(st, &loop), 0);
    tu_rmdir(dir);
}

static void test_sync_always(void **state)
{
    (void)state;
    run_policy(STREAM_SYNC_ALWAYS, 0);
}

static void test_sync_interval(void **state)
{
    (void)state;
    run_policy(STREAM_SYNC_INTERVAL, 30);
}

static void test_sync_none(void **state)
{
    (void)state;
    run_policy(STREAM_SYNC_NONE, 0);
}

/* ---- Back-pressure ------------------------------------------------------------------ */

typedef struct fullctx {
    stream *s;
    int ok, full, acks, round;
    uint64_t next;
} fullctx;

static void full_done(void *arg, int status, uint32_t partition, uint64_t first)
{
    (void)partition;
    (void)first;
    fullctx *c = arg;
    assert_int_equal(status, 0);
    c->acks++;
}

static void fill_until_full(uv_timer_t *t)
{
    fullctx *c = t->data;
    for (int i = 0; i < 1000; i++) {
        int rc = tu_append(c->s, 0, c->next, 10, false, full_done, c, NULL);
        if (rc == WEIR_EFULL) {
            c->full++;
            return;
        }
        assert_int_equal(rc, WEIR_OK);
        c->ok++;
        c->next += 10;
    }
}

static bool full_acked(void *arg)
{
    fullctx *c = arg;
    return c->full >= c->round && c->acks == c->ok;
}

static void test_backpressure(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uv_loop_t loop;
    uv_loop_init(&loop);
    stream_store *st;
    assert_int_equal(stream_store_open(dir, &loop, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    o.max_pending_bytes = 16 << 10;
    o.segment_bytes = 1 << 20;
    stream *s;
    assert_int_equal(stream_open(st, "bp", &o, &s), WEIR_OK);
    fullctx c = {.s = s, .round = 1};
    uv_timer_t t;
    uv_timer_init(&loop, &t);
    t.data = &c;
    uv_timer_start(&t, fill_until_full, 0, 0);
    assert_true(tu_run_until(&loop, full_acked, &c, 10000));
    assert_int_equal(c.full, 1);
    assert_true(c.ok > 0 && c.ok < 1000);
    int first_ok = c.ok;
    /* Once written, there is room again. */
    c.round = 2;
    uv_timer_start(&t, fill_until_full, 0, 0);
    assert_true(tu_run_until(&loop, full_acked, &c, 10000));
    assert_true(c.ok > first_ok);
    assert_int_equal(c.full, 2);
    /* One call larger than the whole bound can never fit. */
    tu_rec r;
    tu_gen(0, 0, false, &r);
    stream_rec_in in[1000];
    for (int i = 0; i < 1000; i++)
        in[i] = tu_in(&r);
    assert_int_equal(stream_append(s, 0, in, 1000, NULL, NULL, NULL), WEIR_ETOOBIG);
    uv_close((uv_handle_t *)&t, NULL);
    assert_int_equal(tu_close_with_loop(st, &loop), 0);
    tu_rmdir(dir);
}

/* ---- Retention ---------------------------------------------------------------------- */

static void test_retention_bytes(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(2, STREAM_SYNC_NONE);
    o.retention_bytes = 16 << 10;
    stream *s;
    assert_int_equal(stream_open(st, "rb", &o, &s), WEIR_OK);
    /* A reader parked at offset 0 before anything is deleted. */
    assert_int_equal(tu_append(s, 0, 0, 10, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_reader *parked;
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_EARLIEST, 0, &parked), WEIR_OK);
    stream_rec rec;
    assert_int_equal(stream_reader_next(parked, &rec), WEIR_OK);
    assert_int_equal(rec.offset, 0);

    uint64_t n = 10;
    for (int i = 0; i < 100; i++, n += 10)
        assert_int_equal(tu_append(s, 0, n, 10, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(stream_store_enforce_retention(st), WEIR_OK);

    uint64_t start = stream_start_offset(s, 0);
    assert_true(start > 0);
    assert_int_equal(stream_end_offset(s, 0), n);
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_true(ss.bytes <= (16 << 10) + 4096 + 4096);
    assert_int_equal(ss.records, n - start);
    /* The parked reader moves to the new start. */
    assert_int_equal(stream_reader_next(parked, &rec), WEIR_OK);
    assert_int_equal(rec.offset, start);
    assert_true(tu_match(&rec, false));
    stream_reader_close(parked);
    uint64_t first;
    assert_int_equal(tu_read_all(s, 0, false, &first), (int64_t)(n - start));
    assert_int_equal(first, start);
    /* The other partition never grew. */
    assert_int_equal(stream_start_offset(s, 1), 0);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);

    /* The start survives a restart. */
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "rb", &o, &s), WEIR_OK);
    assert_int_equal(stream_start_offset(s, 0), start);
    assert_int_equal(stream_end_offset(s, 0), n);
    stream_store_close(st);
    tu_rmdir(dir);
}

static void test_retention_time(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    o.retention_ms = 3600 * 1000; /* one hour */
    stream *s;
    assert_int_equal(stream_open(st, "rt", &o, &s), WEIR_OK);
    /* TU_TS0 is in 2023: all of these are long expired. */
    for (uint64_t i = 0; i < 500; i += 10)
        assert_int_equal(tu_append(s, 0, i, 10, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_reader *rd;
    assert_int_equal(stream_reader_open(s, 0, STREAM_POS_OFFSET, 100, &rd), WEIR_OK);
    stream_rec rec;
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(stream_store_enforce_retention(st), WEIR_OK);
    /* Everything expired, the active segment included (rolled first). */
    assert_int_equal(stream_start_offset(s, 0), 500);
    assert_int_equal(stream_end_offset(s, 0), 500);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_EAGAIN);
    assert_int_equal(stream_reader_position(rd), 500);
    /* Fresh records stay. */
    int64_t now = weir_wall_ns();
    stream_rec_in in = {.key = (const uint8_t *)"k",
                        .key_len = 1,
                        .ts = now,
                        .value = (const uint8_t *)"v",
                        .value_len = 1};
    uint64_t off;
    assert_int_equal(stream_append(s, 0, &in, 1, NULL, NULL, &off), WEIR_OK);
    assert_int_equal(off, 500);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(stream_store_enforce_retention(st), WEIR_OK);
    assert_int_equal(stream_start_offset(s, 0), 500);
    assert_int_equal(stream_reader_next(rd, &rec), WEIR_OK);
    assert_int_equal(rec.offset, 500);
    assert_int_equal(rec.ts, now);
    stream_reader_close(rd);
    stream_stats ss;
    stream_get_stats(s, &ss);
    assert_int_equal(ss.records, 1);
    assert_int_equal(ss.first_ts, now);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "rt", &o, &s), WEIR_OK);
    assert_int_equal(stream_start_offset(s, 0), 500);
    assert_int_equal(stream_end_offset(s, 0), 501);
    stream_store_close(st);
    tu_rmdir(dir);
}

/* ---- Delete ---------------------------------------------------------------------------- */

static void test_delete(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(3, STREAM_SYNC_ALWAYS);
    stream *s;
    assert_int_equal(stream_open(st, "gone", &o, &s), WEIR_OK);
    assert_int_equal(tu_append(s, 2, 0, 50, false, NULL, NULL, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_reader *rd;
    assert_int_equal(stream_reader_open(s, 2, STREAM_POS_EARLIEST, 0, &rd), WEIR_OK);
    assert_int_equal(stream_delete(st, "gone"), WEIR_EBUSY);
    stream_reader_close(rd);
    assert_int_equal(stream_delete(st, "nope"), WEIR_ENOTFOUND);
    assert_int_equal(stream_delete(st, "gone"), WEIR_OK);
    char path[4200];
    struct stat sb;
    snprintf(path, sizeof(path), "%s/gone", dir);
    assert_int_equal(stat(path, &sb), -1);
    assert_int_equal(stream_open(st, "gone", &o, &s), WEIR_OK);
    assert_int_equal(stream_end_offset(s, 2), 0);
    stream_store_close(st);

    /* A delete interrupted after the rename is finished at the next open. */
    snprintf(path, sizeof(path), "%s/" STREAM__DELETING "old", dir);
    assert_int_equal(mkdir(path, 0750), 0);
    assert_true(stream_check_dir(dir, NULL, NULL) > 0);
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stat(path, &sb), -1);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);
    tu_rmdir(dir);
}

/* ---- Injected failures ------------------------------------------------------------------ */

typedef struct faultctx {
    int ok, err, last_err;
} faultctx;

static void fault_done(void *arg, int status, uint32_t partition, uint64_t first)
{
    (void)partition;
    (void)first;
    faultctx *c = arg;
    if (status) {
        c->err++;
        c->last_err = status;
    } else {
        c->ok++;
    }
}

static void test_alloc_failure(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    stream *s;
    assert_int_equal(stream_open(st, "al", &o, &s), WEIR_OK);
    /* Fail each allocation of an append in turn: all or nothing. */
    uint64_t expect = 0;
    faultctx c = {0};
    for (int nth = 1; nth <= 4; nth++) {
        stream__fault_set(st, STREAM__FAULT_ALLOC, nth, ENOMEM);
        uint64_t first = 99;
        int rc = tu_append(s, 0, expect, 300, false, fault_done, &c, &first);
        stream__fault_set(st, STREAM__FAULT_ALLOC, 0, 0);
        if (rc == WEIR_OK) {
            assert_int_equal(first, expect);
            expect += 300;
        } else {
            assert_int_equal(rc, WEIR_ENOMEM);
            assert_int_equal(first, 99);
        }
        assert_int_equal(tu_append(s, 0, expect, 7, false, fault_done, &c, &first), WEIR_OK);
        assert_int_equal(first, expect);
        expect += 7;
    }
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(c.err, 0);
    assert_int_equal(tu_read_all(s, 0, false, NULL), (int64_t)expect);
    stream_store_close(st);
    tu_rmdir(dir);
}

static void run_io_fault(int kind, uint64_t segment_bytes)
{
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(2, STREAM_SYNC_ALWAYS);
    o.segment_bytes = segment_bytes;
    stream *s;
    assert_int_equal(stream_open(st, "io", &o, &s), WEIR_OK);
    faultctx c = {0};
    assert_int_equal(tu_append(s, 0, 0, 20, false, fault_done, &c, NULL), WEIR_OK);
    assert_int_equal(tu_append(s, 1, 0, 20, false, fault_done, &c, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    assert_int_equal(c.ok, 2);

    /* The next write (or fsync) fails: partition 0 is failed. */
    stream__fault_set(st, kind, 1, kind == STREAM__FAULT_WRITE ? ENOSPC : EIO);
    assert_int_equal(tu_append(s, 0, 20, 30, false, fault_done, &c, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_EIO);
    assert_int_equal(c.err, 1);
    assert_int_equal(c.last_err, WEIR_EIO);
    assert_int_equal(stream_end_offset(s, 0), 20); /* never visible */
    assert_int_equal(tu_append(s, 0, 50, 1, false, fault_done, &c, NULL), WEIR_EIO);
    /* The other partition goes on. */
    assert_int_equal(tu_append(s, 1, 20, 5, false, fault_done, &c, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_EIO); /* partition 0 is still failed */
    assert_int_equal(c.ok, 3);
    assert_int_equal(tu_read_all(s, 0, false, NULL), 20);
    assert_int_equal(tu_read_all(s, 1, false, NULL), 25);
    stream_store_close(st);

    /* Reopen: acknowledged records are there; of the failed append a prefix
     * may be (at-least-once), never a torn batch; the store checks clean. */
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    assert_int_equal(stream_open(st, "io", &o, &s), WEIR_OK);
    uint64_t end0 = stream_end_offset(s, 0);
    assert_true(end0 >= 20 && end0 <= 50);
    assert_int_equal(tu_read_all(s, 0, false, NULL), (int64_t)end0);
    assert_int_equal(tu_read_all(s, 1, false, NULL), 25);
    assert_int_equal(tu_append(s, 0, end0, 3, false, fault_done, &c, NULL), WEIR_OK);
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    stream_store_close(st);
    assert_int_equal(stream_check_dir(dir, NULL, NULL), 0);
    tu_rmdir(dir);
}

static void test_write_failure(void **state)
{
    (void)state;
    run_io_fault(STREAM__FAULT_WRITE, 4096);
    run_io_fault(STREAM__FAULT_WRITE, 1 << 20);
}

/* With 4 KiB segments the failing fsync is the one of a roll, with 1 MiB
 * the commit fsync. */
static void test_fsync_failure(void **state)
{
    (void)state;
    run_io_fault(STREAM__FAULT_SYNC, 4096);
    run_io_fault(STREAM__FAULT_SYNC, 1 << 20);
}

/* ---- A reader on another thread, tailing through watches ------------------------- */

typedef struct tailctx {
    stream *s;
    uv_mutex_t mu;
    uv_cond_t cv;
    uint64_t seen_end; /* from the watch */
    uint64_t target;
    uint64_t read; /* records verified by the reader thread */
    bool bad;
} tailctx;

static void tail_watch(void *arg, uint32_t partition, uint64_t end)
{
    tailctx *c = arg;
    (void)partition;
    uv_mutex_lock(&c->mu);
    c->seen_end = end;
    uv_cond_broadcast(&c->cv);
    uv_mutex_unlock(&c->mu);
}

static void tail_thread(void *arg)
{
    tailctx *c = arg;
    stream_reader *rd;
    if (stream_reader_open(c->s, 0, STREAM_POS_EARLIEST, 0, &rd)) {
        c->bad = true;
        return;
    }
    int64_t deadline = weir_mono_ns() + 60 * WEIR_NS_PER_S;
    stream_rec rec;
    while (c->read < c->target && weir_mono_ns() < deadline) {
        int rc = stream_reader_next(rd, &rec);
        if (rc == WEIR_EAGAIN) {
            /* Wait for the next commit (the watch), with a deadline. */
            uv_mutex_lock(&c->mu);
            if (c->seen_end <= c->read)
                uv_cond_timedwait(&c->cv, &c->mu, 100 * 1000000ull);
            uv_mutex_unlock(&c->mu);
            continue;
        }
        if (rc || rec.offset != c->read || !tu_match(&rec, false)) {
            c->bad = true;
            break;
        }
        c->read++;
    }
    stream_reader_close(rd);
}

static void test_concurrent_reader(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    stream_store *st;
    assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
    stream_opts o = opts_small(1, STREAM_SYNC_NONE);
    o.segment_bytes = 16 << 10; /* the reader crosses many rolls */
    stream *s;
    assert_int_equal(stream_open(st, "tail", &o, &s), WEIR_OK);
    tailctx c = {.s = s, .target = 30000};
    uv_mutex_init(&c.mu);
    uv_cond_init(&c.cv);
    stream_watch *w = stream_watch_add(s, tail_watch, &c);
    uv_thread_t th;
    assert_int_equal(uv_thread_create(&th, tail_thread, &c), 0);
    for (uint64_t off = 0; off < c.target;) {
        size_t n = 1 + (size_t)(tu_mix(off) % 50);
        if (off + n > c.target)
            n = (size_t)(c.target - off);
        int rc = tu_append(s, 0, off, n, false, NULL, NULL, NULL);
        if (rc == WEIR_EFULL) {
            assert_int_equal(stream_store_flush(st), WEIR_OK);
            continue;
        }
        assert_int_equal(rc, WEIR_OK);
        off += n;
    }
    assert_int_equal(stream_store_flush(st), WEIR_OK);
    uv_thread_join(&th);
    assert_false(c.bad);
    assert_int_equal(c.read, c.target);
    stream_watch_remove(w);
    stream_store_close(st);
    uv_cond_destroy(&c.cv);
    uv_mutex_destroy(&c.mu);
    tu_rmdir(dir);
}

int main(void)
{
    wlog_set_level(WLOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_partitions_rolls),
        cmocka_unit_test(test_invalid_arguments),
        cmocka_unit_test(test_large_records),
        cmocka_unit_test(test_roll_by_age),
        cmocka_unit_test(test_read_positions),
        cmocka_unit_test(test_time_seek_nonmonotonic),
        cmocka_unit_test(test_group_commit_and_watch),
        cmocka_unit_test(test_sync_always),
        cmocka_unit_test(test_sync_interval),
        cmocka_unit_test(test_sync_none),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_retention_bytes),
        cmocka_unit_test(test_retention_time),
        cmocka_unit_test(test_delete),
        cmocka_unit_test(test_alloc_failure),
        cmocka_unit_test(test_write_failure),
        cmocka_unit_test(test_fsync_failure),
        cmocka_unit_test(test_concurrent_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
