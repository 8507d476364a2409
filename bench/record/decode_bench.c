/* decode_bench.c -- how many payloads per second src/record decodes.
 *
 * Payloads are ~120-byte sensor readings like those of bench/mqtt,
 * {"device":"p07","ts":1732184400123,"temperature":21.53,"humidity":40.2,
 * "pressure":1013.2,"status":"ok","seq":123}, in the three ingest formats,
 * all with the same values. A set
 * of READINGS distinct readings (devices, timestamps, values and sequence
 * numbers all vary, so that no branch predictor or cache learns one
 * payload) is decoded round-robin for SECONDS per case after a warm-up, one
 * record at a time with the arena reset in between -- exactly what the
 * ingest path does per message. The schema names "ts" as event time and
 * "device" as key, so the time parse and key extraction are measured too.
 *
 * Cases:
 *   json scanner     rec_decode_json: the purpose-built top-level scanner
 *   json jansson     rec_decode_json_jansson: json_loadb and a tree walk
 *   jansson parse    json_loadb + json_decref alone: the floor for any
 *                    decoder that goes through jansson
 *   csv              rec_csv_line on "p07,1732184400123,21.53,40.2,1013.2,ok,123"
 *   line protocol    rec_decode_line on "sensor,device=p07 temperature=21.53,
 *                    humidity=40.2,pressure=1013.2,status="ok",seq=123i
 *                    1732184400123000000"
 *   encode / decode  record_encode / record_decode of the decoded reading
 *   to_json          record_to_json of it
 *
 * Output: a Markdown table on stdout and, with -j FILE, the same as JSON.
 * Build and run with bench/record/run.sh (plain cc, not CMake).
 */
#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "record/decode.h"
#include "record/record.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define READINGS 4096

typedef struct payload {
    uint8_t *p;
    size_t n;
} payload;

static payload json_in[READINGS], csv_in[READINGS], line_in[READINGS], bin_in[READINGS];
static double seconds = 1.0;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static payload dup_payload(const char *s, size_t n)
{
    payload p = {malloc(n), n};
    memcpy(p.p, s, n);
    return p;
}

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static unsigned rnd(unsigned mod)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % mod);
}

static void make_payloads(void)
{
    char buf[256];
    for (int i = 0; i < READINGS; i++) {
        unsigned dev = rnd(100), t = 1500 + rnd(1500), h = 300 + rnd(400), seq = rnd(1000000);
        unsigned p = 9800 + rnd(500);
        long long ts = 1732184400123LL + i * 10LL + rnd(10);
        int n = snprintf(buf, sizeof(buf),
                         "{\"device\":\"p%02u\",\"ts\":%lld,\"temperature\":%u.%02u,"
                         "\"humidity\":%u.%u,\"pressure\":%u.%u,\"status\":\"ok\",\"seq\":%u}",
                         dev, ts, t / 100, t % 100, h / 10, h % 10, p / 10, p % 10, seq);
        json_in[i] = dup_payload(buf, (size_t)n);
        n = snprintf(buf, sizeof(buf), "p%02u,%lld,%u.%02u,%u.%u,%u.%u,ok,%u", dev, ts, t / 100,
                     t % 100, h / 10, h % 10, p / 10, p % 10, seq);
        csv_in[i] = dup_payload(buf, (size_t)n);
        n = snprintf(buf, sizeof(buf),
                     "sensor,device=p%02u temperature=%u.%02u,humidity=%u.%u,pressure=%u.%u,"
                     "status=\"ok\",seq=%ui %lld000000",
                     dev, t / 100, t % 100, h / 10, h % 10, p / 10, p % 10, seq, ts);
        line_in[i] = dup_payload(buf, (size_t)n);
    }
}

typedef struct result {
    const char *name;
    double per_s;
    double ns_per_op;
    double bytes_per_op;
} result;

static result results[16];
static int n_results;

static const rec_schema json_sc = {.format = REC_FMT_JSON, .ts_field = "ts", .key_field = "device"};
static const char *const csv_cols[] = {"device",   "ts",     "temperature", "humidity",
                                       "pressure", "status", "seq"};
static const rec_schema csv_sc = {.format = REC_FMT_CSV,
                                  .ts_field = "ts",
                                  .key_field = "device",
                                  .csv_columns = csv_cols,
                                  .n_csv_columns = 7};
static const rec_schema line_sc = {.format = REC_FMT_LINE, .key_field = "device"};
static rec_csv *csv_state;
static arena A;
static weir_buf out;

typedef int (*op_fn)(int i);

static int op_json(int i)
{
    record r;
    arena_reset(&A);
    return rec_decode_json(json_in[i].p, json_in[i].n, &json_sc, &A, &r, NULL);
}

static int op_json_jansson(int i)
{
    record r;
    arena_reset(&A);
    return rec_decode_json_jansson(json_in[i].p, json_in[i].n, &json_sc, &A, &r, NULL);
}

static int op_jansson_parse(int i)
{
    json_error_t e;
    json_t *j = json_loadb((const char *)json_in[i].p, json_in[i].n, 0, &e);
    if (!j)
        return WEIR_EMALFORMED;
    json_decref(j);
    return 0;
}

static int op_csv(int i)
{
    record r;
    arena_reset(&A);
    return rec_csv_line(csv_state, csv_in[i].p, csv_in[i].n, &A, &r, NULL);
}

static int op_line(int i)
{
    record r;
    arena_reset(&A);
    return rec_decode_line(line_in[i].p, line_in[i].n, &line_sc, 0, &A, &r, NULL);
}

static record decoded[READINGS];
static arena keep;

static int op_encode(int i)
{
    buf_reset(&out);
    return record_encode(&decoded[i], &out);
}

static int op_decode(int i)
{
    record r;
    arena_reset(&A);
    return record_decode(bin_in[i].p, bin_in[i].n, &A, &r);
}

static int op_to_json(int i)
{
    buf_reset(&out);
    return record_to_json(&decoded[i], &out);
}

static void run(const char *name, op_fn fn, const payload *in)
{
    /* Warm-up: one pass over every payload, which also checks them. */
    for (int i = 0; i < READINGS; i++) {
        int rc = fn(i);
        if (rc) {
            fprintf(stderr, "%s: payload %d fails: %s\n", name, i, weir_err_name(rc));
            exit(1);
        }
    }
    long ops = 0;
    double t0 = now(), t;
    do {
        for (int i = 0; i < READINGS; i++)
            fn(i);
        ops += READINGS;
        t = now();
    } while (t - t0 < seconds);
    double bytes = 0;
    for (int i = 0; in && i < READINGS; i++)
        bytes += (double)in[i].n;
    result *r = &results[n_results++];
    r->name = name;
    r->per_s = (double)ops / (t - t0);
    r->ns_per_op = (t - t0) * 1e9 / (double)ops;
    r->bytes_per_op = in ? bytes / READINGS : 0;
}

int main(int argc, char **argv)
{
    const char *json_out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-j") == 0 && i + 1 < argc)
            json_out = argv[++i];
        else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [-s seconds-per-case] [-j results.json]\n", argv[0]);
            return 2;
        }
    }
    make_payloads();
    arena_init(&A, 64 << 10);
    arena_init(&keep, 0);
    buf_init(&out, 0);
    if (rec_csv_new(&csv_sc, &csv_state))
        return 1;
    /* The decoded readings and their encodings, for the encode/decode cases. */
    for (int i = 0; i < READINGS; i++) {
        if (rec_decode_json(json_in[i].p, json_in[i].n, &json_sc, &keep, &decoded[i], NULL))
            return 1;
        buf_reset(&out);
        record_encode(&decoded[i], &out);
        bin_in[i] = dup_payload((const char *)buf_head(&out), buf_used(&out));
    }

    run("json scanner (rec_decode_json)", op_json, json_in);
    run("json via jansson (rec_decode_json_jansson)", op_json_jansson, json_in);
    run("jansson parse only (json_loadb+decref)", op_jansson_parse, json_in);
    run("csv (rec_csv_line)", op_csv, csv_in);
    run("line protocol (rec_decode_line)", op_line, line_in);
    run("record_encode", op_encode, NULL);
    run("record_decode", op_decode, bin_in);
    run("record_to_json", op_to_json, NULL);

    printf("| case | ops/s | ns/op | input bytes |\n|---|---:|---:|---:|\n");
    for (int i = 0; i < n_results; i++)
        printf("| %s | %.2f M | %.0f | %.0f |\n", results[i].name, results[i].per_s / 1e6,
               results[i].ns_per_op, results[i].bytes_per_op);
    printf("\nscanner / jansson decode: %.1fx\n", results[0].per_s / results[1].per_s);
    printf("example payloads:\n  %.*s\n  %.*s\n  %.*s\n", (int)json_in[0].n, json_in[0].p,
           (int)csv_in[0].n, csv_in[0].p, (int)line_in[0].n, line_in[0].p);
    if (json_out) {
        FILE *f = fopen(json_out, "w");
        if (!f)
            return 1;
        fprintf(f, "{\"suite\":\"record\",\"readings\":%d,\"seconds_per_case\":%g,\"cases\":[",
                READINGS, seconds);
        for (int i = 0; i < n_results; i++)
            fprintf(f, "%s{\"name\":\"%s\",\"ops_per_s\":%.0f,\"ns_per_op\":%.1f,\"bytes\":%.1f}",
                    i ? "," : "", results[i].name, results[i].per_s, results[i].ns_per_op,
                    results[i].bytes_per_op);
        fprintf(f, "]}\n");
        fclose(f);
    }
    return 0;
}
