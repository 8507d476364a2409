/* sink.c -- the env, the rules_sink_ops plug-in functions (dispatch on the
 * target's scheme), the per-rule statistics blocks and the option readers.
 */
#include "sink/sink.h"

#include "base/err.h"
#include "sink/sink_int.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The env ----------------------------------------------------------- */

int sink_env_new(uv_loop_t *loop, sink_publish_fn publish, void *publish_ctx, metrics *m,
                 sink_env **out)
{
    *out = NULL;
    sink_env *e = calloc(1, sizeof(*e));
    if (!e)
        return WEIR_ENOMEM;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(e);
        return WEIR_ENOMEM;
    }
    e->loop = loop;
    e->publish = publish;
    e->publish_ctx = publish_ctx;
    e->m = m;
    pthread_mutex_init(&e->mu, NULL);
    *out = e;
    return WEIR_OK;
}

void sink_env_free(sink_env *e)
{
    if (!e)
        return;
    sink_stats *st = e->stats;
    while (st) {
        sink_stats *next = st->next;
        pthread_mutex_destroy(&st->mu);
        free(st->rule);
        free(st);
        st = next;
    }
    pthread_mutex_destroy(&e->mu);
    free(e);
    curl_global_cleanup();
}

/* ---- Plug-in functions ------------------------------------------------- */

static int ops_open(void *env, const char *rule, const char *target, const json_t *options,
                    void (*on_drain)(void *drain_arg), void *drain_arg, void **sink, char *err,
                    size_t errlen)
{
    sink_env *e = env;
    sink_base *s = NULL;
    int rc;
    *sink = NULL;
    if (options && !json_is_object(options)) {
        snprintf(err, errlen, "sink options must be a JSON object");
        return WEIR_EINVAL;
    }
    if (strncmp(target, "mqtt:", 5) == 0)
        rc = sink_mqtt_open(e, rule, target + 5, options, &s, err, errlen);
    else if (strncmp(target, "webhook:", 8) == 0)
        rc = sink_webhook_open(e, rule, target + 8, options, on_drain, drain_arg, &s, err,
                               errlen);
    else {
        snprintf(err, errlen, "unknown output '%.200s' (mqtt:topic/{col} or webhook:http[s]://...)",
                 target);
        rc = WEIR_EINVAL;
    }
    if (rc == WEIR_OK)
        *sink = s;
    return rc;
}

static int ops_emit(void *sink, const eng_row *row, uint64_t seq)
{
    sink_base *s = sink;
    return s->kind->emit(s, row, seq);
}

static bool ops_writable(void *sink)
{
    sink_base *s = sink;
    return s->kind->writable(s);
}

static json_t *ops_stats(void *sink)
{
    sink_base *s = sink;
    return s->kind->stats(s);
}

static void ops_close(void *sink)
{
    sink_base *s = sink;
    if (s)
        s->kind->close(s);
}

void sink_env_ops(sink_env *e, rules_sink_ops *ops)
{
    ops->open = ops_open;
    ops->emit = ops_emit;
    ops->writable = ops_writable;
    ops->stats = ops_stats;
    ops->close = ops_close;
    ops->env = e;
}

/* ---- Per-rule statistics ----------------------------------------------- */

enum { G_P50, G_P95, G_P99, G_MAX, G_AVG, G_QUEUE, G_MIN, G_STDDEV };

static double gauge_read(void *arg)
{
    struct sink_gauge_arg *g = arg;
    sink_stats *st = g->st;
    if (g->which == G_QUEUE)
        return (double)sink_load(&st->queue);
    pthread_mutex_lock(&st->mu);
    double v;
    switch (g->which) {
    case G_P50: v = sink_hist_quantile(&st->drl, 0.50); break;
    case G_P95: v = sink_hist_quantile(&st->drl, 0.95); break;
    case G_P99: v = sink_hist_quantile(&st->drl, 0.99); break;
    case G_MAX: v = (double)st->drl.max_us; break;
    case G_MIN: v = (double)st->drl.min_us; break;
    case G_STDDEV: {
        sink_hist_summary sum;
        sink_hist_summarize(&st->drl, &sum);
        v = sum.stddev_ms * 1e3;
        break;
    }
    default: v = st->drl.count ? st->drl.sum_us / (double)st->drl.count : 0; break;
    }
    pthread_mutex_unlock(&st->mu);
    return v / 1e6;
}

/* rule="name" with the exposition format's escapes. */
static void label_of(const char *rule, char *out, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(out, cap, "rule=\"");
    for (const char *p = rule; *p && n + 4 < cap; p++) {
        if (*p == '\\' || *p == '"') {
            out[n++] = '\\';
            out[n++] = *p;
        } else if (*p == '\n') {
            out[n++] = '\\';
            out[n++] = 'n';
        } else {
            out[n++] = *p;
        }
    }
    out[n++] = '"';
    out[n] = '\0';
}

static void register_series(sink_env *e, sink_stats *st)
{
    static const char *const results[] = {"sent", "failed", "dropped", "abandoned"};
    uint64_t **cells[] = {&st->sent, &st->failed, &st->dropped, &st->abandoned};
    char rl[600], l[700];
    label_of(st->rule, rl, sizeof(rl));
    for (int i = 0; i < 8; i++)
        st->gauge_args[i] = (struct sink_gauge_arg){.st = st, .which = i};
    if (!e->m)
        return;
    for (int i = 0; i < 4; i++) {
        snprintf(l, sizeof(l), "%s,result=\"%s\"", rl, results[i]);
        uint64_t *c = metrics_counter(e->m, "weir_sink_rows_total",
                                      "Rows handed to a rule's output (MQTT, webhook) by result.",
                                      l);
        if (c)
            *cells[i] = c;
    }
    uint64_t *c = metrics_counter(e->m, "weir_sink_retries_total",
                                  "Webhook delivery attempts retried.", rl);
    if (c)
        st->retries = c;
    if ((c = metrics_counter(e->m, "weir_sink_drl_rows_total",
                             "Rows that passed a rate limiter in front of a sink.", rl)))
        st->drl_rows = c;
    static const char *const qs[] = {"0.5", "0.95", "0.99", "1"};
    for (int i = 0; i < 4; i++) {
        snprintf(l, sizeof(l), "%s,quantile=\"%s\"", rl, qs[i]);
        metrics_gauge(e->m, "weir_sink_drl_seconds",
                      "DRL: delay added per row by a sink's rate limiter (quantiles).", l,
                      gauge_read, &st->gauge_args[i]);
    }
    metrics_gauge(e->m, "weir_sink_drl_avg_seconds",
                  "DRL: mean delay added per row by a sink's rate limiter.", rl, gauge_read,
                  &st->gauge_args[G_AVG]);
    metrics_gauge(e->m, "weir_sink_drl_min_seconds",
                  "DRL: smallest delay added to a row by a sink's rate limiter.", rl, gauge_read,
                  &st->gauge_args[G_MIN]);
    metrics_gauge(e->m, "weir_sink_drl_stddev_seconds",
                  "DRL: standard deviation of the delay added per row by a sink's rate limiter.",
                  rl, gauge_read, &st->gauge_args[G_STDDEV]);
    metrics_gauge(e->m, "weir_sink_queue_rows", "Rows queued in a webhook sink.", rl, gauge_read,
                  &st->gauge_args[G_QUEUE]);
}

sink_stats *sink_stats_get(sink_env *e, const char *rule)
{
    pthread_mutex_lock(&e->mu);
    sink_stats *st;
    for (st = e->stats; st; st = st->next)
        if (strcmp(st->rule, rule) == 0)
            goto done;
    if (!(st = calloc(1, sizeof(*st))) || !(st->rule = strdup(rule))) {
        free(st);
        st = NULL;
        goto done;
    }
    pthread_mutex_init(&st->mu, NULL);
    st->sent = &st->local[0];
    st->failed = &st->local[1];
    st->dropped = &st->local[2];
    st->abandoned = &st->local[3];
    st->retries = &st->local[4];
    st->drl_rows = &st->local[5];
    register_series(e, st);
    st->next = e->stats;
    e->stats = st;
done:
    pthread_mutex_unlock(&e->mu);
    return st;
}

void sink_stats_drl_add(sink_stats *st, uint64_t us)
{
    pthread_mutex_lock(&st->mu);
    sink_hist_add(&st->drl, us);
    pthread_mutex_unlock(&st->mu);
    sink_inc(st->drl_rows);
}

void sink_stats_json(sink_stats *st, json_t *obj, bool with_drl)
{
    json_object_set_new(obj, "sent", json_integer((json_int_t)sink_load(st->sent)));
    json_object_set_new(obj, "failed", json_integer((json_int_t)sink_load(st->failed)));
    json_object_set_new(obj, "dropped", json_integer((json_int_t)sink_load(st->dropped)));
    json_object_set_new(obj, "abandoned", json_integer((json_int_t)sink_load(st->abandoned)));
    if (!with_drl)
        return;
    json_object_set_new(obj, "retries", json_integer((json_int_t)sink_load(st->retries)));
    sink_hist_summary s;
    pthread_mutex_lock(&st->mu);
    sink_hist_summarize(&st->drl, &s);
    pthread_mutex_unlock(&st->mu);
    json_object_set_new(obj, "drl_ms",
                        json_pack("{sI sf sf sf sf sf sf sf}", "count", (json_int_t)s.count,
                                  "min", s.min_ms, "avg", s.avg_ms, "p50", s.p50_ms, "p95",
                                  s.p95_ms, "p99", s.p99_ms, "max", s.max_ms, "stddev",
                                  s.stddev_ms));
}

/* ---- Options ----------------------------------------------------------- */

int sink_opt_int(const json_t *opts, const char *key, int64_t lo, int64_t hi, int64_t *out,
                 char *err, size_t errlen)
{
    const json_t *v = opts ? json_object_get(opts, key) : NULL;
    if (!v)
        return WEIR_OK;
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        long long ll = strtoll(s, &end, 10);
        if (errno || end == s || *end) {
            snprintf(err, errlen, "option %s: '%.60s' is not an integer", key, s);
            return WEIR_EINVAL;
        }
        x = ll;
    } else {
        snprintf(err, errlen, "option %s must be an integer", key);
        return WEIR_EINVAL;
    }
    if (x < lo || x > hi) {
        snprintf(err, errlen, "option %s must be in %lld..%lld", key, (long long)lo,
                 (long long)hi);
        return WEIR_EINVAL;
    }
    *out = x;
    return WEIR_OK;
}

int sink_opt_bool(const json_t *opts, const char *key, bool *out, char *err, size_t errlen)
{
    const json_t *v = opts ? json_object_get(opts, key) : NULL;
    if (!v)
        return WEIR_OK;
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return WEIR_OK;
    }
    if (json_is_integer(v) && (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
        *out = json_integer_value(v) == 1;
        return WEIR_OK;
    }
    const char *s = json_string_value(v);
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "1") == 0)) {
        *out = true;
        return WEIR_OK;
    }
    if (s && (strcmp(s, "false") == 0 || strcmp(s, "0") == 0)) {
        *out = false;
        return WEIR_OK;
    }
    snprintf(err, errlen, "option %s must be true or false", key);
    return WEIR_EINVAL;
}

int sink_opt_rate(const json_t *opts, const char *key, double *out, char *err, size_t errlen)
{
    const json_t *v = opts ? json_object_get(opts, key) : NULL;
    if (!v)
        return WEIR_OK;
    double n = 0, per = 1;
    if (json_is_number(v)) {
        n = json_number_value(v);
    } else if (json_is_string(v)) {
        const char *s = json_string_value(v);
        char *end;
        errno = 0;
        n = strtod(s, &end);
        if (errno || end == s)
            goto bad;
        if (*end == '/') {
            const char *u = end + 1;
            if (strcmp(u, "s") == 0 || strcmp(u, "sec") == 0)
                per = 1;
            else if (strcmp(u, "ms") == 0)
                per = 0.001;
            else if (strcmp(u, "m") == 0 || strcmp(u, "min") == 0)
                per = 60;
            else if (strcmp(u, "h") == 0)
                per = 3600;
            else
                goto bad;
        } else if (*end) {
            goto bad;
        }
    } else {
        goto bad;
    }
    if (!isfinite(n) || n <= 0 || n / per > 1e9)
        goto bad;
    *out = n / per;
    return WEIR_OK;
bad:
    snprintf(err, errlen, "option %s: a rate like '10/s', '600/min' or '5/h' (> 0, <= 1e9/s)",
             key);
    return WEIR_EINVAL;
}
