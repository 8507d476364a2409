/* rule_bench.c -- how many readings per second one compiled rule
 * (src/engine) takes on one core.
 *
 * Readings are pre-built records {temperature: DOUBLE, status: STRING} of
 * DEVICES devices (the record key), one per device per TICK_MS of event
 * time, in event-time order, pushed one at a time exactly as the runtime
 * does (eng_rule_push with an emit callback that only counts). Every case
 * runs for SECONDS after a warm-up over the same rule instance, so windows
 * keep opening and closing and state stays at its steady size.
 *
 * Cases:
 *   filter+project   SELECT key, temperature * 1.8 + 32 AS f WHERE temperature > 20
 *   tumbling 5s avg  GROUP BY key, TUMBLING(5s): avg(temperature)
 *   hopping 5s/1s    GROUP BY key, HOPPING(5s, 1s): avg, the target case
 *                    (>= 1,000,000 readings/s per core)
 *   sliding 5s avg   GROUP BY key, SLIDING(5s): one result per reading
 *   changes()        WHERE changes(status): a state function per key
 *
 * Output: one Markdown table row per case on stdout.
 * Build and run with bench/engine/run.sh.
 */
#include "base/arena.h"
#include "base/err.h"
#include "engine/rule.h"
#include "sql/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEVICES 1000
#define TICK_MS 10
#define READINGS (DEVICES * 50)

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static bool lookup(void *arg, const char *stream, const char **ts_field)
{
    (void)arg;
    (void)stream;
    *ts_field = NULL;
    return true;
}

static uint64_t emitted;
static int count_emit(void *arg, const eng_row *row)
{
    (void)arg;
    (void)row;
    emitted++;
    return WEIR_OK;
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    static record recs[READINGS];
    static rec_field fields[READINGS][2];
    static char keys[DEVICES][8];
    for (int d = 0; d < DEVICES; d++)
        snprintf(keys[d], sizeof(keys[d]), "p%03d", d);
    for (int i = 0; i < READINGS; i++) {
        int d = i % DEVICES;
        fields[i][0] = (rec_field){"temperature", 11, {.type = REC_DOUBLE, .u.d = 15 + (i * 7 % 100) / 10.0}};
        const char *st = (i / DEVICES / 7) % 2 ? "ok" : "warn";
        fields[i][1] = (rec_field){"status", 6, {.type = REC_STRING, .u.s = {st, (uint32_t)strlen(st)}}};
        recs[i] = (record){.key = keys[d], .key_len = 4, .fields = fields[i], .n_fields = 2};
    }
    struct {
        const char *name, *sql;
    } cases[] = {
        {"filter+project", "SELECT key, temperature * 1.8 + 32 AS f FROM s WHERE temperature > 20"},
        {"tumbling 5s avg", "SELECT key, avg(temperature) AS a FROM s GROUP BY key, TUMBLING(5s)"},
        {"hopping 5s/1s avg", "SELECT key, avg(temperature) AS a FROM s GROUP BY key, HOPPING(5s, 1s)"},
        {"sliding 5s avg", "SELECT key, avg(temperature) AS a FROM s GROUP BY key, SLIDING(5s)"},
        {"changes()", "SELECT key, status FROM s WHERE changes(status)"},
    };
    printf("| case | readings/s | rows out/s | state bytes |\n|---|---:|---:|---:|\n");
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        arena a;
        arena_init(&a, 1 << 20);
        sql_stmt *st;
        sql_error err;
        eng_rule *r;
        if (sql_parse(cases[c].sql, strlen(cases[c].sql), &a, &st, &err) ||
            eng_rule_compile(st, lookup, NULL, NULL, &r, &err)) {
            fprintf(stderr, "%s: %s\n", cases[c].name, err.msg);
            return 1;
        }
        uint64_t n = 0, t_ms = 0;
        emitted = 0;
        double t0 = now_s(), start = 0, end = t0 + 0.3 + secs;
        uint64_t n0 = 0, e0 = 0;
        for (;;) {
            for (int i = 0; i < READINGS; i++) {
                if (i % DEVICES == 0)
                    t_ms += TICK_MS;
                recs[i].ts = (int64_t)t_ms * 1000000;
                eng_input_rec in = {.partition = 0, .offset = n++, .commit_ns = recs[i].ts, .rec = &recs[i]};
                if (eng_rule_push(r, &in, count_emit, NULL, NULL, 0) != WEIR_OK) {
                    fprintf(stderr, "push failed\n");
                    return 1;
                }
            }
            double t = now_s();
            if (start == 0 && t > t0 + 0.3) {
                start = t;
                n0 = n;
                e0 = emitted;
            }
            if (t > end)
                break;
        }
        double el = now_s() - start;
        printf("| %s | %.0f | %.0f | %zu |\n", cases[c].name, (double)(n - n0) / el,
               (double)(emitted - e0) / el, eng_rule_state_bytes(r));
        eng_rule_free(r);
        arena_free(&a);
    }
    return 0;
}
