/* engine_bench.c -- engine-only throughput of a compiled rule (bench/rules).
 *
 * The rule is the per-device 5 s hopping-by-1 s average of DESIGN.md:
 *
 *   CREATE RULE r AS SELECT device, avg(temperature) AS t_avg
 *     FROM readings GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s)
 *     EMIT TO 'stream:out'
 *
 * compiled with engine/rule.h, fed pre-decoded records (what the runtime's
 * shared reader hands every rule after decoding a stored record once):
 * --devices devices reading in turn, event time advancing --step-us per
 * reading (default 1 ms: 1,000 readings/s of event time, so windows close
 * every 1,000 readings and each close emits one row per device). With
 * --rules N, N copies of the rule see every record (N rules on one stream).
 * Output rows go to a counting callback.
 *
 * Reported (one JSON line): readings/s (records of the stream through all
 * N rules per second of one core), rule pushes/s, rows out, and state
 * bytes per rule (eng_rule_get_stats at the end, steady state: every device
 * has 5 open windows) plus the process RSS growth per rule.
 */
#include "base/arena.h"
#include "base/clock.h"
#include "base/err.h"
#include "engine/rule.h"
#include "sql/parser.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *SQL =
    "CREATE RULE r AS SELECT device, avg(temperature) AS t_avg FROM readings "
    "GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s) EMIT TO 'stream:out'";

static bool lookup(void *arg, const char *stream, const char **ts_field)
{
    if (strcmp(stream, "readings") != 0)
        return false;
    *ts_field = "ts";
    return true;
}

static uint64_t rows_out;
static int count_row(void *arg, const eng_row *row)
{
    rows_out++;
    return WEIR_OK;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    uint64_t n = 2000000;
    int devices = 100, n_rules = 1;
    int64_t step_ns = 1000000;
    int c;
    while ((c = getopt(argc, argv, "n:D:r:s:")) != -1) {
        switch (c) {
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'D': devices = atoi(optarg); break;
        case 'r': n_rules = atoi(optarg); break;
        case 's': step_ns = strtoll(optarg, NULL, 10) * 1000; break;
        default:
            fprintf(stderr, "usage: engine_bench [-n readings] [-D devices] [-r rules] [-s step_us]\n");
            return 2;
        }
    }
    /* The readings, decoded once up front. */
    record *recs = calloc(n, sizeof(*recs));
    rec_field *fields = calloc(n * 3, sizeof(*fields));
    char (*names)[16] = calloc((size_t)devices, 16);
    for (int d = 0; d < devices; d++)
        snprintf(names[d], 16, "d%03d", d % 100000);
    int64_t t0_ns = 1700000000000LL * 1000000LL;
    for (uint64_t i = 0; i < n; i++) {
        int d = (int)(i % (uint64_t)devices);
        rec_field *f = &fields[i * 3];
        int64_t ts = t0_ns + (int64_t)i * step_ns;
        f[0] = (rec_field){.name = "device", .name_len = 6, .v = {.type = REC_STRING}};
        f[0].v.u.s.p = names[d];
        f[0].v.u.s.len = (uint32_t)strlen(names[d]);
        f[1] = (rec_field){.name = "ts", .name_len = 2,
                           .v = {.type = REC_INT, .u.i = ts / 1000000}};
        f[2] = (rec_field){.name = "temperature", .name_len = 11,
                           .v = {.type = REC_DOUBLE, .u.d = 20.0 + (double)(i % 200) / 10.0}};
        recs[i] = (record){.ts = ts, .key = names[d], .key_len = (uint16_t)strlen(names[d]), .fields = f, .n_fields = 3};
    }

    long rss0 = rss_kib();
    eng_rule **rules = calloc((size_t)n_rules, sizeof(*rules));
    eng_limits lim = {.max_state_bytes = 64u << 20, .max_groups = 100000};
    for (int k = 0; k < n_rules; k++) {
        arena a;
        arena_init(&a, 1 << 20);
        sql_stmt *st;
        sql_error se = {0};
        if (sql_parse(SQL, strlen(SQL), &a, &st, &se) ||
            eng_rule_compile(st, lookup, NULL, &lim, &rules[k], &se)) {
            fprintf(stderr, "engine_bench: %d:%d %s\n", se.line, se.column, se.msg);
            return 1;
        }
        arena_free(&a);
    }
    char err[256];
    uint64_t errors = 0;
    int64_t t0 = weir_mono_ns();
    for (uint64_t i = 0; i < n; i++) {
        eng_input_rec in = {.input = 0, .partition = 0, .offset = i, .commit_ns = 0,
                            .rec = &recs[i]};
        for (int k = 0; k < n_rules; k++)
            if (eng_rule_push(rules[k], &in, count_row, NULL, err, sizeof(err)) != WEIR_OK)
                errors++;
    }
    int64_t t1 = weir_mono_ns();
    long rss1 = rss_kib();
    eng_rule_stats s;
    eng_rule_get_stats(rules[0], &s);
    double secs = (double)(t1 - t0) / 1e9;
    printf("{\"rules\":%d,\"readings\":%" PRIu64 ",\"devices\":%d,\"seconds\":%.4f,"
           "\"readings_per_s\":%.0f,\"pushes_per_s\":%.0f,\"rows_out\":%" PRIu64
           ",\"errors\":%" PRIu64 ",\"state_bytes_per_rule\":%zu,\"rss_kib_per_rule\":%.1f}\n",
           n_rules, n, devices, secs, (double)n / secs, (double)n * n_rules / secs, rows_out,
           errors, s.state_bytes, (double)(rss1 - rss0) / n_rules);
    if (errors)
        fprintf(stderr, "engine_bench: last error: %s\n", err);
    for (int k = 0; k < n_rules; k++)
        eng_rule_free(rules[k]);
    free(rules);
    free(recs);
    free(fields);
    free(names);
    return errors ? 1 : 0;
}
