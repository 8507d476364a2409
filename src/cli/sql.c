/* sql.c -- `weir sql "SELECT ..."`: a history query against a running node,
 * printed as a table (or as JSON with --json). Errors show the statement
 * with a caret under the position the node reported. */
#include "base/buf.h"
#include "cli/cli.h"
#include "cli/client.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: weir sql [--json] [--url URL] \"SELECT ...\"\n");
}

static void print_cell(json_t *v, int width)
{
    char *s = json_is_string(v) ? strdup(json_string_value(v))
                                : json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    printf("%-*s", width, s ? s : "");
    free(s);
}

int cli_sql(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = NULL;
    int as_json = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "ju:h", longopts, NULL)) != -1) {
        if (c == 'j')
            as_json = 1;
        else if (c == 'u')
            url = optarg;
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *stmt = argv[optind];
    char u[2048];
    snprintf(u, sizeof(u), "%s/api/v1/query", cli_base_url(url));
    cli_response r;
    if (cli_http(u, stmt, strlen(stmt), "application/sql", 0, &r)) {
        fprintf(stderr, "weir sql: %s\n", r.error);
        buf_free(&r.body);
        return 1;
    }
    json_t *j = json_loads((const char *)buf_head(&r.body), 0, NULL);
    buf_free(&r.body);
    if (!j || r.status != 200) {
        const char *msg = json_string_value(json_object_get(j, "error"));
        long line = (long)json_integer_value(json_object_get(j, "line"));
        long col = (long)json_integer_value(json_object_get(j, "column"));
        fprintf(stderr, "weir sql: %s\n", msg ? msg : "query failed");
        if (line > 0) {
            /* Show the offending line with a caret under the column. */
            const char *p = stmt;
            for (long l = 1; l < line && p; l++) {
                p = strchr(p, '\n');
                if (p)
                    p++;
            }
            if (p) {
                const char *e = strchr(p, '\n');
                fprintf(stderr, "  %.*s\n  %*s^ line %ld, column %ld\n",
                        (int)(e ? e - p : (long)strlen(p)), p, (int)(col > 0 ? col - 1 : 0), "",
                        line, col);
            }
        }
        json_decref(j);
        return 1;
    }
    if (as_json) {
        char *s = json_dumps(j, JSON_COMPACT);
        puts(s ? s : "{}");
        free(s);
        json_decref(j);
        return 0;
    }
    json_t *cols = json_object_get(j, "columns"), *rows = json_object_get(j, "rows");
    size_t nc = json_array_size(cols), i, k;
    json_t *v, *row;
    json_array_foreach(cols, i, v)
    {
        print_cell(v, 20);
        putchar(i + 1 < nc ? ' ' : '\n');
    }
    json_array_foreach(rows, k, row)
    {
        json_array_foreach(row, i, v)
        {
            print_cell(v, 20);
            putchar(i + 1 < nc ? ' ' : '\n');
        }
    }
    fprintf(stderr, "(%zu rows)\n", json_array_size(rows));
    json_decref(j);
    return 0;
}
