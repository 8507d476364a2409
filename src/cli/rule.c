/* rule.c -- `weir rule list|show|create|start|stop|restart|delete`: the
 * continuous rules of a running node, through its HTTP API (/api/v1/rules;
 * delete sends DROP RULE to /api/v1/query, the client speaks GET and POST).
 *
 *   weir rule list                       name, status, in/out, target
 *   weir rule show NAME                  the rule as JSON
 *   weir rule create "CREATE RULE ..."   (or --file F, or - for stdin) [--stopped]
 *   weir rule start|stop|restart|delete NAME
 *
 * --node URL (or --url) picks the node; WEIR_URL otherwise. Exit status 0 on
 * success, 1 when the node refused (its message on stderr), 2 for usage.
 */
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
    fprintf(f, "usage: weir rule [--node URL] list\n"
               "       weir rule [--node URL] show NAME\n"
               "       weir rule [--node URL] create [--stopped] \"CREATE RULE ...\" | --file F\n"
               "       weir rule [--node URL] start|stop|restart|delete NAME\n");
}

/* Sends the request; prints errors (with the statement position) to stderr
 * and returns the parsed body of a 2xx answer, or NULL. */
static json_t *call(const char *url, const char *body, size_t len, const char *ctype,
                    const char *stmt)
{
    cli_response r;
    if (cli_http(url, body, len, ctype, 0, &r)) {
        fprintf(stderr, "weir rule: %s\n", r.error);
        buf_free(&r.body);
        return NULL;
    }
    json_t *j = json_loads((const char *)buf_head(&r.body), 0, NULL);
    buf_free(&r.body);
    if (r.status / 100 == 2 && j)
        return j;
    const char *msg = json_string_value(json_object_get(j, "error"));
    fprintf(stderr, "weir rule: %s (HTTP %ld)\n", msg ? msg : "request failed", r.status);
    long line = (long)json_integer_value(json_object_get(j, "line"));
    long col = (long)json_integer_value(json_object_get(j, "column"));
    if (stmt && line > 0) {
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
    return NULL;
}

static void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(s ? s : "{}");
    free(s);
}

static char *read_file(const char *path)
{
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f)
        return NULL;
    weir_buf b;
    buf_init(&b, 1u << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&b, chunk, n))
            break;
    if (f != stdin)
        fclose(f);
    char *s = malloc(buf_used(&b) + 1);
    if (s) {
        memcpy(s, buf_head(&b), buf_used(&b));
        s[buf_used(&b)] = 0;
    }
    buf_free(&b);
    return s;
}

int cli_rule(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"node", required_argument, NULL, 'n'}, {"url", required_argument, NULL, 'n'},
        {"file", required_argument, NULL, 'f'}, {"stopped", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *node = NULL, *file = NULL;
    int stopped = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:f:sh", longopts, NULL)) != -1) {
        if (c == 'n')
            node = optarg;
        else if (c == 'f')
            file = optarg;
        else if (c == 's')
            stopped = 1;
        else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[optind++];
    const char *arg = optind < argc ? argv[optind] : NULL;
    const char *base = cli_base_url(node);
    char url[4096], name[1024];
    json_t *j = NULL;
    if (!strcmp(verb, "list")) {
        snprintf(url, sizeof(url), "%s/api/v1/rules", base);
        if (!(j = call(url, NULL, 0, NULL, NULL)))
            return 1;
        size_t i;
        json_t *r;
        printf("%-24s %-8s %10s %10s %6s  %s\n", "NAME", "STATUS", "IN", "OUT", "ERRORS",
               "TARGET");
        json_array_foreach(json_object_get(j, "rules"), i, r)
        {
            json_t *m = json_object_get(r, "metrics");
            printf("%-24s %-8s %10lld %10lld %6lld  %s\n",
                   json_string_value(json_object_get(r, "name")),
                   json_string_value(json_object_get(r, "status")),
                   (long long)json_integer_value(json_object_get(m, "records_in")),
                   (long long)json_integer_value(json_object_get(m, "records_out")),
                   (long long)json_integer_value(json_object_get(m, "errors")),
                   json_string_value(json_object_get(r, "target")));
            const char *err = json_string_value(json_object_get(r, "error"));
            if (err && *err)
                printf("  error: %s\n", err);
        }
        json_decref(j);
        return 0;
    }
    if (!strcmp(verb, "create")) {
        char *text = file ? read_file(file) : arg ? strdup(arg) : NULL;
        if (!text) {
            if (file)
                fprintf(stderr, "weir rule: cannot read %s\n", file);
            else
                usage(stderr);
            return file ? 1 : 2;
        }
        json_t *body = json_pack("{s:s, s:b}", "sql", text, "start", !stopped);
        char *bs = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        snprintf(url, sizeof(url), "%s/api/v1/rules", base);
        j = bs ? call(url, bs, strlen(bs), "application/json", text) : NULL;
        free(bs);
        free(text);
        if (!j)
            return 1;
        print_json(j);
        const char *st = json_string_value(json_object_get(j, "status"));
        int failed = st && !strcmp(st, "failed");
        json_decref(j);
        return failed;
    }
    if (!arg) {
        usage(stderr);
        return 2;
    }
    cli_urlencode(arg, name, sizeof(name));
    if (!strcmp(verb, "show")) {
        snprintf(url, sizeof(url), "%s/api/v1/rules/%s", base, name);
        j = call(url, NULL, 0, NULL, NULL);
    } else if (!strcmp(verb, "start") || !strcmp(verb, "stop") || !strcmp(verb, "restart")) {
        snprintf(url, sizeof(url), "%s/api/v1/rules/%s/%s", base, name, verb);
        j = call(url, "", 0, "application/json", NULL);
    } else if (!strcmp(verb, "delete")) {
        char stmt[1200];
        snprintf(stmt, sizeof(stmt), "DROP RULE %s", arg);
        snprintf(url, sizeof(url), "%s/api/v1/query", base);
        j = call(url, stmt, strlen(stmt), "application/sql", NULL);
    } else {
        usage(stderr);
        return 2;
    }
    if (!j)
        return 1;
    print_json(j);
    json_decref(j);
    return 0;
}
