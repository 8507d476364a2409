/* tail.c -- `weir tail STREAM`: records of a stream as JSON lines, from a
 * position, optionally following new ones as they commit.
 *
 * It pages through GET /api/v1/streams/NAME/records with the cursor of the
 * previous page; with --follow an empty page becomes a long poll (wait=30s)
 * that the node answers as soon as records commit, so following costs no
 * polling on either side.
 */
#include "base/buf.h"
#include "base/clock.h"
#include "cli/cli.h"
#include "cli/client.h"

#include <getopt.h>
#include <stdbool.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: weir tail STREAM [--from earliest|latest|OFFSET|TIME] [--follow]\n"
               "                 [--key K] [--limit N] [--url URL]\n\n"
               "Prints records as JSON lines. TIME is RFC 3339, now-1h style, or epoch ms\n"
               "written with a unit suffix-free number larger than 10^11; a smaller number\n"
               "is an OFFSET (in every partition).\n");
}

static int fetch(const char *url, json_t **out)
{
    cli_response r;
    *out = NULL;
    if (cli_http(url, NULL, 0, NULL, 65000, &r)) {
        fprintf(stderr, "weir tail: %s\n", r.error);
        buf_free(&r.body);
        return 1;
    }
    json_t *j = json_loads((const char *)buf_head(&r.body), 0, NULL);
    if (r.status != 200 || !j) {
        fprintf(stderr, "weir tail: HTTP %ld: %s\n", r.status,
                buf_used(&r.body) ? (const char *)buf_head(&r.body) : "");
        json_decref(j);
        buf_free(&r.body);
        return 1;
    }
    buf_free(&r.body);
    *out = j;
    return 0;
}

int cli_tail(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"from", required_argument, NULL, 'f'}, {"follow", no_argument, NULL, 'F'},
        {"key", required_argument, NULL, 'k'},  {"limit", required_argument, NULL, 'l'},
        {"url", required_argument, NULL, 'u'},  {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *from = "earliest", *key = NULL, *url = NULL;
    long limit = 0;
    int follow = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:Fk:l:u:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 'F':
            follow = 1;
            break;
        case 'k':
            key = optarg;
            break;
        case 'l':
            limit = strtol(optarg, NULL, 10);
            break;
        case 'u':
            url = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    char name[300], base[2048], q[300];
    cli_urlencode(argv[optind], name, sizeof(name));
    snprintf(base, sizeof(base), "%s/api/v1/streams/%s/records?limit=1000",
             cli_base_url(url), name);
    if (!strcmp(from, "latest")) {
        /* "now" once, here: each page must not move the start forward. */
        char now[40];
        snprintf(now, sizeof(now), "&from=%lld", (long long)(weir_wall_ns() / 1000000));
        strncat(base, now, sizeof(base) - strlen(base) - 1);
    } else if (strcmp(from, "earliest")) {
        char *end;
        unsigned long long v = strtoull(from, &end, 10);
        cli_urlencode(from, q, sizeof(q));
        if (!*end && v < 100000000000ull) {
            strncat(base, "&offset=", sizeof(base) - strlen(base) - 1);
        } else {
            strncat(base, "&from=", sizeof(base) - strlen(base) - 1);
        }
        strncat(base, q, sizeof(base) - strlen(base) - 1);
    }
    if (key) {
        cli_urlencode(key, q, sizeof(q));
        strncat(base, "&key=", sizeof(base) - strlen(base) - 1);
        strncat(base, q, sizeof(base) - strlen(base) - 1);
    }
    char cursor[128] = "";
    long printed = 0;
    bool waiting = false;
    for (;;) {
        char u[2400];
        snprintf(u, sizeof(u), "%s%s%s%s", base, *cursor ? "&cursor=" : "", cursor,
                 waiting ? "&wait=30s" : "");
        json_t *page;
        if (fetch(u, &page))
            return 1;
        json_t *recs = json_object_get(page, "records"), *rec;
        size_t i;
        json_array_foreach(recs, i, rec)
        {
            char *line = json_dumps(rec, JSON_COMPACT);
            if (line) {
                puts(line);
                free(line);
            }
            if (limit && ++printed >= limit) {
                json_decref(page);
                return 0;
            }
        }
        fflush(stdout);
        const char *nc = json_string_value(json_object_get(page, "next_cursor"));
        if (nc)
            snprintf(cursor, sizeof(cursor), "%s", nc);
        bool more = json_is_true(json_object_get(page, "more"));
        size_t got = json_array_size(recs);
        json_decref(page);
        if (!more && !follow)
            return 0;
        waiting = follow && !more && got == 0 ? true : (follow && !more);
    }
}
