/* import.c -- `weir import FILE --stream NAME`: archived recordings into a
 * stream of a running node, keeping their original timestamps.
 *
 * The file is cut into chunks of whole records (at most --chunk bytes, a
 * CSV header repeated at the top of each, never inside a quoted field) and
 * each chunk goes to POST /api/v1/streams/NAME/upload. The node remembers
 * every chunk it stored by its SHA-256, and the cut is deterministic, so
 * importing the same file again stores nothing twice. Each upload is
 * answered once its records are durable; the command reports totals and a
 * rate, and exits non-zero if any record was rejected or a chunk failed.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "cli/cli.h"
#include "cli/client.h"

#include <getopt.h>
#include <jansson.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_CHUNK (8u << 20)

typedef struct import_opts {
    const char *file, *stream, *time_column, *time_format, *format, *url;
    size_t chunk;
} import_opts;

typedef struct totals {
    unsigned long long accepted, rejected, duplicate_chunks, chunks;
    int failed;
} totals;

static void usage(FILE *f)
{
    fprintf(f, "usage: weir import FILE --stream NAME [--time-column C] [--time-format F]\n"
               "                   [--format csv|json|line] [--url URL] [--chunk BYTES]\n\n"
               "Imports an archived file into a stream of a running weir (default URL\n"
               "http://127.0.0.1:8080, or WEIR_URL). Records keep their timestamps; a file\n"
               "imported twice is stored once. --time-format takes s, ms, us, ns or a\n"
               "strptime format such as '%%Y-%%m-%%d %%H:%%M:%%S'.\n");
}

static const char *guess_format(const char *file)
{
    const char *dot = strrchr(file, '.');
    if (dot && (!strcmp(dot, ".json") || !strcmp(dot, ".ndjson") || !strcmp(dot, ".jsonl")))
        return "json";
    if (dot && (!strcmp(dot, ".lp") || !strcmp(dot, ".line") || !strcmp(dot, ".txt")))
        return "line";
    return "csv";
}

static int send_chunk(const import_opts *o, const char *base_name, const weir_buf *chunk,
                      unsigned idx, totals *t)
{
    char url[2048], q[4][300];
    cli_urlencode(o->stream, q[0], sizeof(q[0]));
    snprintf(url, sizeof(url), "%s/api/v1/streams/%s/upload?format=%s", o->url, q[0], o->format);
    if (o->time_column) {
        cli_urlencode(o->time_column, q[1], sizeof(q[1]));
        strncat(url, "&time_column=", sizeof(url) - strlen(url) - 1);
        strncat(url, q[1], sizeof(url) - strlen(url) - 1);
    }
    if (o->time_format) {
        cli_urlencode(o->time_format, q[2], sizeof(q[2]));
        strncat(url, "&time_format=", sizeof(url) - strlen(url) - 1);
        strncat(url, q[2], sizeof(url) - strlen(url) - 1);
    }
    char name[300];
    snprintf(name, sizeof(name), "%s#%u", base_name, idx);
    cli_urlencode(name, q[3], sizeof(q[3]));
    strncat(url, "&file_name=", sizeof(url) - strlen(url) - 1);
    strncat(url, q[3], sizeof(url) - strlen(url) - 1);
    cli_response r;
    int rc = cli_http(url, buf_head(chunk), buf_used(chunk), "application/octet-stream", 0, &r);
    t->chunks++;
    if (rc) {
        fprintf(stderr, "weir import: %s: %s\n", o->url, r.error);
        buf_free(&r.body);
        t->failed = 1;
        return rc;
    }
    json_t *j = json_loads((const char *)buf_head(&r.body), 0, NULL);
    if (r.status != 200 || !j) {
        fprintf(stderr, "weir import: chunk %u: HTTP %ld: %s\n", idx, r.status,
                buf_used(&r.body) ? (const char *)buf_head(&r.body) : "");
        t->failed = 1;
        json_decref(j);
        buf_free(&r.body);
        return WEIR_EIO;
    }
    if (json_is_true(json_object_get(j, "duplicate")))
        t->duplicate_chunks++;
    t->accepted += (unsigned long long)json_integer_value(json_object_get(j, "accepted"));
    t->rejected += (unsigned long long)json_integer_value(json_object_get(j, "rejected"));
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(j, "errors"), i, e)
    {
        if (i >= 5)
            break;
        fprintf(stderr, "weir import: chunk %u line %lld: %s\n", idx,
                (long long)json_integer_value(json_object_get(e, "line")),
                json_string_value(json_object_get(e, "error")));
    }
    json_decref(j);
    buf_free(&r.body);
    return WEIR_OK;
}

static int run_import(const import_opts *o)
{
    FILE *f = fopen(o->file, "rb");
    if (!f) {
        perror(o->file);
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s", o->file);
    const char *base_name = basename(path);
    bool csv = !strcmp(o->format, "csv");
    weir_buf header, chunk;
    buf_init(&header, 1u << 20);
    buf_init(&chunk, o->chunk + (1u << 20) + (1u << 20));
    totals t = {0};
    int64_t t0 = weir_mono_ns();
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    bool first = true, in_quotes = false;
    unsigned idx = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (csv && first) {
            first = false;
            if (buf_append(&header, line, (size_t)n) || buf_append(&chunk, line, (size_t)n))
                goto oom;
            continue;
        }
        if (csv)
            for (ssize_t i = 0; i < n; i++)
                if (line[i] == '"')
                    in_quotes = !in_quotes;
        if (buf_append(&chunk, line, (size_t)n))
            goto oom;
        if (!in_quotes && buf_used(&chunk) >= o->chunk) {
            if (send_chunk(o, base_name, &chunk, idx++, &t))
                break;
            buf_reset(&chunk);
            if (buf_append(&chunk, buf_head(&header), buf_used(&header)))
                goto oom;
        }
    }
    if (!t.failed && buf_used(&chunk) > buf_used(&header))
        send_chunk(o, base_name, &chunk, idx++, &t);
    free(line);
    fclose(f);
    buf_free(&header);
    buf_free(&chunk);
    double secs = (double)(weir_mono_ns() - t0) / 1e9;
    printf("{\"file\":\"%s\",\"stream\":\"%s\",\"accepted\":%llu,\"rejected\":%llu,"
           "\"chunks\":%llu,\"duplicate_chunks\":%llu,\"seconds\":%.3f,\"records_per_s\":%.0f}\n",
           base_name, o->stream, t.accepted, t.rejected, t.chunks, t.duplicate_chunks, secs,
           secs > 0 ? (double)t.accepted / secs : 0.0);
    return t.failed || t.rejected ? 1 : 0;
oom:
    fprintf(stderr, "weir import: a record or header is larger than the chunk size\n");
    free(line);
    fclose(f);
    buf_free(&header);
    buf_free(&chunk);
    return 1;
}

int cli_import(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"stream", required_argument, NULL, 's'},      {"time-column", required_argument, NULL, 'c'},
        {"time-format", required_argument, NULL, 'f'}, {"format", required_argument, NULL, 'F'},
        {"url", required_argument, NULL, 'u'},         {"chunk", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0},
    };
    import_opts o = {.chunk = DEFAULT_CHUNK};
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "s:c:f:F:u:k:h", longopts, NULL)) != -1) {
        switch (c) {
        case 's':
            o.stream = optarg;
            break;
        case 'c':
            o.time_column = optarg;
            break;
        case 'f':
            o.time_format = optarg;
            break;
        case 'F':
            o.format = optarg;
            break;
        case 'u':
            o.url = optarg;
            break;
        case 'k':
            o.chunk = strtoull(optarg, NULL, 10);
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1 || !o.stream || o.chunk < 1024) {
        usage(stderr);
        return 2;
    }
    o.file = argv[optind];
    o.url = cli_base_url(o.url);
    if (!o.format)
        o.format = guess_format(o.file);
    return run_import(&o);
}
