/* test_stream_crash.c -- kill -9 in the middle of appends, then recover.
 *
 * A child process runs a real store on a uv loop and appends as fast as it
 * can to three partitions (record contents are a function of partition and
 * offset, stream_util.h). In each done callback with status OK it writes
 * the acknowledged range to a pipe, so that everything in the pipe was
 * acknowledged before the child died. The parent reads acknowledgements
 * until a random count, waits a random extra moment, SIGKILLs the child
 * (in the middle of a write, a roll, an fsync or even recovery), drains the
 * pipe and reopens the store: every acknowledged record must be there
 * exactly once, in order, with the right contents; nothing torn or corrupt
 * may be readable; and stream_check_dir must find the recovered store
 * clean. Several rounds run on the same directory, so recovery also meets
 * its own output. Then the same for the INTERVAL policy.
 *
 * SIGKILL leaves the page cache intact, so this tests process crashes, not
 * power cuts; the truncated and zero-filled tails of test_stream_corrupt.c
 * stand in for those.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/err.h"
#include "base/wlog.h"
#include "stream/store.h"
#include "stream_util.h"

#define PARTS 3

typedef struct ackmsg {
    uint32_t partition;
    uint32_t n;
    uint64_t first;
} ackmsg;

typedef struct child {
    stream *s;
    int fd;
    uint64_t next[PARTS];
    uint64_t rng;
    int inflight;
} child;

static uint64_t rng_next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return tu_mix(*s);
}

static child *g_child;

/* The appended count rides in arg. */
static void child_done_n(void *arg, int status, uint32_t partition, uint64_t first)
{
    g_child->inflight--;
    if (status != WEIR_OK)
        _exit(3); /* no I/O errors are expected here */
    ackmsg m = {.partition = partition, .n = (uint32_t)(uintptr_t)arg, .first = first};
    if (write(g_child->fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
        _exit(4);
}

static void child_tick(uv_idle_t *h)
{
    child *c = h->data;
    if (c->inflight > 64)
        return; /* let acknowledgements flow */
    int k = 1 + (int)(rng_next(&c->rng) % 6);
    for (int i = 0; i < k; i++) {
        uint32_t p = (uint32_t)(rng_next(&c->rng) % PARTS);
        size_t n = 1 + (size_t)(rng_next(&c->rng) % 40);
        uint64_t first;
        int rc =
            tu_append(c->s, p, c->next[p], n, false, child_done_n, (void *)(uintptr_t)n, &first);
        if (rc == WEIR_EFULL)
            return;
        if (rc != WEIR_OK || first != c->next[p])
            _exit(5);
        c->next[p] += n;
        c->inflight++;
    }
}

static stream_opts crash_opts(stream_sync sync)
{
    stream_opts o;
    stream_opts_default(&o);
    o.partitions = PARTS;
    o.sync = sync;
    o.sync_interval_ms = 5;
    o.segment_bytes = 24 << 10; /* rolls happen during the run */
    return o;
}

static void child_main(const char *dir, int fd, stream_sync sync, uint64_t seed)
{
    wlog_set_level(WLOG_ERROR);
    uv_loop_t loop;
    uv_loop_init(&loop);
    stream_store *st;
    if (stream_store_open(dir, &loop, &st))
        _exit(1);
    child c = {.fd = fd, .rng = seed};
    stream_opts o = crash_opts(sync);
    if (stream_open(st, "crash", &o, &c.s))
        _exit(2);
    for (uint32_t p = 0; p < PARTS; p++)
        c.next[p] = stream_end_offset(c.s, p);
    g_child = &c;
    uv_idle_t idle;
    uv_idle_init(&loop, &idle);
    idle.data = &c;
    uv_idle_start(&idle, child_tick);
    uv_run(&loop, UV_RUN_DEFAULT); /* until killed */
    _exit(6);
}

/* Reads one ack with a deadline; 1 = got one, 0 = EOF, -1 = timeout. */
static int read_ack(int fd, ackmsg *m, int timeout_ms)
{
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, timeout_ms);
    if (r <= 0)
        return -1;
    ssize_t n = read(fd, m, sizeof(*m));
    if (n == 0)
        return 0;
    assert_int_equal(n, sizeof(*m));
    return 1;
}

static void spin_us(uint64_t us)
{
    int64_t end = weir_mono_ns() + (int64_t)us * 1000;
    while (weir_mono_ns() < end)
        ;
}

static void crash_rounds(stream_sync sync, int rounds)
{
    char *dir = tu_tmpdir();
    uint64_t seed = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 16;
    uint64_t rng = seed;
    uint64_t acked[PARTS] = {0};
    print_message("crash test seed %llu\n", (unsigned long long)seed);
    for (int round = 0; round < rounds; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, fds[1], sync, rng_next(&rng) + (uint64_t)round);
        }
        close(fds[1]);
        /* Kill after a random number of acks (sometimes none: maybe during
         * recovery) and a random extra moment. */
        uint64_t r = rng_next(&rng);
        int target = round == 0 ? 0 : (int)(r % 400);
        if (r % 7 == 0)
            target = 0;
        ackmsg m;
        int got = 0;
        while (got < target) {
            int rc = read_ack(fds[0], &m, 20000);
            assert_int_equal(rc, 1); /* the child must keep acknowledging */
            acked[m.partition] =
                m.first + m.n > acked[m.partition] ? m.first + m.n : acked[m.partition];
            got++;
        }
        spin_us(rng_next(&rng) % 3000);
        kill(pid, SIGKILL);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFSIGNALED(status)); /* not an early exit of its own */
        while (read_ack(fds[0], &m, 1000) == 1)
            acked[m.partition] =
                m.first + m.n > acked[m.partition] ? m.first + m.n : acked[m.partition];
        close(fds[0]);

        /* Recover and verify. */
        stream_store *st;
        assert_int_equal(stream_store_open(dir, NULL, &st), WEIR_OK);
        stream_opts o = crash_opts(sync);
        stream *s;
        assert_int_equal(stream_open(st, "crash", &o, &s), WEIR_OK);
        for (uint32_t p = 0; p < PARTS; p++) {
            uint64_t end = stream_end_offset(s, p);
            if (end < acked[p])
                fail_msg("round %d partition %u: end %llu < acknowledged %llu", round, p,
                         (unsigned long long)end, (unsigned long long)acked[p]);
            uint64_t first;
            int64_t n = tu_read_all(s, p, false, &first);
            assert_int_equal(first, 0);
            assert_int_equal(n, (int64_t)end);
            /* What survived beyond the acks was written whole: it counts
             * as acknowledged from now on (the next child continues it). */
            acked[p] = end;
        }
        stream_store_close(st);
        int problems = stream_check_dir(dir, NULL, NULL);
        assert_int_equal(problems, 0);
        print_message("round %d: killed after %d acks, ends %llu %llu %llu\n", round, got,
                      (unsigned long long)acked[0], (unsigned long long)acked[1],
                      (unsigned long long)acked[2]);
    }
    assert_true(acked[0] + acked[1] + acked[2] > 0);
    tu_rmdir(dir);
}

static void test_crash_always(void **state)
{
    (void)state;
    crash_rounds(STREAM_SYNC_ALWAYS, 10);
}

static void test_crash_interval(void **state)
{
    (void)state;
    crash_rounds(STREAM_SYNC_INTERVAL, 10);
}

int main(void)
{
    wlog_set_level(WLOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_always),
        cmocka_unit_test(test_crash_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
