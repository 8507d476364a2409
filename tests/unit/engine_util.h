/* engine_util.h -- helpers for the engine tests: compile a rule from text,
 * build records from a compact spec, push them, and collect the emitted
 * rows as one text line each so that tests compare against hand-written
 * expectations.
 *
 * Record spec: "field=value,field=value"; a value with '.' or 'e' is a
 * DOUBLE, digits an INT, true/false a BOOL, null NULL, anything else a
 * STRING. Times in the tests are in seconds (S(x)).
 *
 * Row line: "[late ]key@ts[ [ws,we)][ rN]: name=value ..." with times in
 * seconds when whole.
 */
#ifndef WEIR_TEST_ENGINE_UTIL_H
#define WEIR_TEST_ENGINE_UTIL_H

#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "engine/rule.h"
#include "sql/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S(x) ((int64_t)(x) * 1000000000LL)
#define MAX_LINES 4096

typedef struct collect {
    char *lines[MAX_LINES];
    uint64_t ids[MAX_LINES];
    int n;
} collect;

static inline void collect_free(collect *c)
{
    for (int i = 0; i < c->n; i++)
        free(c->lines[i]);
    c->n = 0;
}

static inline void fmt_time(char *b, size_t n, int64_t t)
{
    if (t % 1000000000LL == 0)
        snprintf(b, n, "%lld", (long long)(t / 1000000000LL));
    else
        snprintf(b, n, "%lldns", (long long)t);
}

static inline void fmt_val(char *b, size_t n, const rec_value *v)
{
    switch (v->type) {
    case REC_NULL: snprintf(b, n, "null"); break;
    case REC_BOOL: snprintf(b, n, "%s", v->u.b ? "true" : "false"); break;
    case REC_INT: snprintf(b, n, "%lld", (long long)v->u.i); break;
    case REC_DOUBLE: snprintf(b, n, "%.17g", v->u.d); break;
    default: snprintf(b, n, "%.*s", (int)v->u.s.len, v->u.s.p); break;
    }
}

static inline int collect_emit(void *arg, const eng_row *row)
{
    collect *c = arg;
    char line[2048], t[64], ws[64], we[64];
    size_t o = 0;
    fmt_time(t, sizeof(t), row->ts);
    o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%.*s@%s", row->late ? "late " : "",
                          row->key ? (int)row->key_len : 4, row->key ? row->key : "none", t);
    if (row->window_start || row->window_end) {
        fmt_time(ws, sizeof(ws), row->window_start);
        fmt_time(we, sizeof(we), row->window_end);
        o += (size_t)snprintf(line + o, sizeof(line) - o, " [%s,%s)", ws, we);
    }
    if (row->revision)
        o += (size_t)snprintf(line + o, sizeof(line) - o, " r%u", row->revision);
    o += (size_t)snprintf(line + o, sizeof(line) - o, ":");
    for (uint32_t i = 0; i < row->n_cols && o < sizeof(line) - 100; i++) {
        char v[256];
        fmt_val(v, sizeof(v), &row->vals[i]);
        o += (size_t)snprintf(line + o, sizeof(line) - o, " %s=%s", row->names[i], v);
    }
    if (c->n < MAX_LINES) {
        c->ids[c->n] = row->id;
        c->lines[c->n++] = strdup(line);
    }
    return WEIR_OK;
}

static inline bool lookup_any(void *arg, const char *stream, const char **ts_field)
{
    (void)arg;
    *ts_field = NULL;
    return strcmp(stream, "nosuch") != 0;
}

/* Compiles text; returns the error code, the rule in *out. */
static inline int compile_rule(const char *text, const eng_limits *lim, eng_rule **out, sql_error *err)
{
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st = NULL;
    int rc = sql_parse(text, strlen(text), &a, &st, err);
    if (rc == WEIR_OK)
        rc = eng_rule_compile(st, lookup_any, NULL, lim, out, err);
    arena_free(&a);
    return rc;
}

static inline eng_rule *must_compile(const char *text)
{
    eng_rule *r = NULL;
    sql_error err = {0};
    int rc = compile_rule(text, NULL, &r, &err);
    if (rc) {
        fprintf(stderr, "compile failed (%s) %d:%d: %s\n  %s\n", weir_err_name(rc), err.line,
                err.column, err.msg, text);
        abort();
    }
    return r;
}

/* A record from a spec, in arena a. */
static inline record *mkrec(arena *a, const char *key, int64_t ts, const char *spec)
{
    record *r = arena_alloc(a, sizeof(record));
    memset(r, 0, sizeof(*r));
    r->ts = ts;
    if (key) {
        r->key = arena_strdup(a, key, strlen(key));
        r->key_len = (uint16_t)strlen(key);
    }
    r->fields = arena_alloc(a, 16 * sizeof(rec_field));
    char *s = arena_strdup(a, spec, strlen(spec));
    char *save = NULL;
    for (char *tok = strtok_r(s, ",", &save); tok && r->n_fields < 16;
         tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq)
            continue;
        *eq = 0;
        char *v = eq + 1;
        rec_field *f = &r->fields[r->n_fields++];
        f->name = tok;
        f->name_len = (uint16_t)strlen(tok);
        char *end = NULL;
        if (strcmp(v, "true") == 0 || strcmp(v, "false") == 0) {
            f->v.type = REC_BOOL;
            f->v.u.b = v[0] == 't';
        } else if (strcmp(v, "null") == 0) {
            f->v.type = REC_NULL;
        } else if (v[0] && (strtoll(v, &end, 10), *end == 0)) {
            f->v.type = REC_INT;
            f->v.u.i = strtoll(v, NULL, 10);
        } else if (v[0] && (strtod(v, &end), *end == 0)) {
            f->v.type = REC_DOUBLE;
            f->v.u.d = strtod(v, NULL);
        } else if (v[0] == '{' || v[0] == '[') {
            f->v.type = REC_JSON;
            f->v.u.s.p = v;
            f->v.u.s.len = (uint32_t)strlen(v);
        } else {
            f->v.type = REC_STRING;
            f->v.u.s.p = v;
            f->v.u.s.len = (uint32_t)strlen(v);
        }
    }
    return r;
}

/* Pushes one record; returns the push's result. */
static inline int push_in(eng_rule *r, collect *c, uint32_t input, uint32_t part, uint64_t off,
                   const char *key, int64_t ts, const char *spec)
{
    arena a;
    arena_init(&a, 1 << 16);
    record *rec = mkrec(&a, key, ts, spec);
    eng_input_rec in = {.input = input, .partition = part, .offset = off, .commit_ns = ts,
                        .rec = rec};
    char err[256];
    int rc = eng_rule_push(r, &in, collect_emit, c, err, sizeof(err));
    if (rc && rc != WEIR_ETOOBIG && rc != WEIR_EINVAL)
        fprintf(stderr, "push: %s: %s\n", weir_err_name(rc), err);
    arena_free(&a);
    return rc;
}

#define PUSH(r, c, off, key, ts, spec) push_in(r, c, 0, 0, off, key, ts, spec)

/* Compares the collected lines with the expected ones (NULL-terminated). */
static inline int check_lines(const collect *c, const char *const *want)
{
    int n = 0;
    while (want[n])
        n++;
    int bad = c->n != n;
    for (int i = 0; i < c->n && i < n; i++)
        if (strcmp(c->lines[i], want[i]))
            bad = 1;
    if (bad) {
        fprintf(stderr, "--- got %d lines:\n", c->n);
        for (int i = 0; i < c->n; i++)
            fprintf(stderr, "  %s\n", c->lines[i]);
        fprintf(stderr, "--- want %d lines:\n", n);
        for (int i = 0; i < n; i++)
            fprintf(stderr, "  %s\n", want[i]);
    }
    return bad;
}

#endif
