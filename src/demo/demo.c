/* demo.c -- see demo.h. */
#include "demo/demo.h"
#include "base/err.h"
#include "base/wlog.h"

#ifdef WEIR_HAVE_RULES
#include "engine/rules.h"
#endif

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEMO_STREAM "climate"
#define DEMO_TOPIC  "factory/{device}/climate"

struct demo {
    uv_process_t proc;
    bool running;  /* the child has not exited */
    bool closing;  /* uv_close called */
    bool closed;   /* close callback ran: free may release */
    bool stopping; /* demo_stop was called */
};

static bool is_loopback(const char *hostport)
{
    if (!hostport || !*hostport)
        return true; /* disabled */
    return !strncmp(hostport, "127.", 4) || !strncmp(hostport, "[::1]", 5) ||
           !strncmp(hostport, "localhost:", 10);
}

static void on_closed(uv_handle_t *h)
{
    demo *d = h->data;
    d->closed = true;
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    demo *d = p->data;
    d->running = false;
    if (d->stopping)
        wlog_info("demo", "replay_stopped", "pid=%d", p->pid);
    else
        wlog_warn("demo", "replay_exited", "pid=%d status=%lld signal=%d", p->pid,
                  (long long)status, sig);
    d->closing = true;
    uv_close((uv_handle_t *)p, on_closed);
}

static int define_stream(ingest *in)
{
    char err[256];
    json_t *def = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "name", DEMO_STREAM, "source",
                            "mqtt:factory/+/climate", "key", "device", "timestamp", "ts",
                            "retention", "7d", "sync", "interval=5ms");
    if (!def)
        return WEIR_ENOMEM;
    /* Like a config-file stream: defined by the profile at every start. */
    int rc = ingest_define(in, def, "config", false, err, sizeof(err), NULL);
    json_decref(def);
    if (rc)
        wlog_error("demo", "stream", "name=%s error=\"%s\"", DEMO_STREAM, err);
    return rc;
}

#define DEMO_RULE                                                                            \
    "CREATE RULE climate_avg AS SELECT device, avg(temperature) AS temperature, "            \
    "avg(humidity) AS humidity, count(*) AS n FROM climate "                                  \
    "GROUP BY device, HOPPING(SIZE 5s, ADVANCE 1s) EMIT TO 'stream:climate_avg'"

static void define_rule(void *rs)
{
#ifdef WEIR_HAVE_RULES
    sql_error serr;
    memset(&serr, 0, sizeof(serr));
    int rc = rs ? rules_create(rs, DEMO_RULE, strlen(DEMO_RULE), NULL, true, &serr)
                   : WEIR_EUNSUPPORTED;
    if (rc == WEIR_OK)
        wlog_info("demo", "rule", "name=climate_avg target=stream:climate_avg "
                                  "window=\"hopping 5s by 1s\"");
    else if (rc != WEIR_EEXIST)
        wlog_error("demo", "rule", "name=climate_avg error=\"%s\"", weir_strerror(rc));
#else
    (void)rs;
    wlog_info("demo", "rule", "name=climate_avg note=\"no rule runtime in this build\"");
#endif
}

int demo_start(uv_loop_t *loop, ingest *in, void *rs, const weir_config *cfg, int mqtt_port,
               demo **out)
{
    *out = NULL;
    if (!is_loopback(cfg->mqtt_listen) || !is_loopback(cfg->http_listen)) {
        wlog_error("demo", "refused",
                   "error=\"the demo profile runs only on loopback listeners\" mqtt=%s http=%s",
                   cfg->mqtt_listen, cfg->http_listen);
        return WEIR_EINVAL;
    }
    if (mqtt_port <= 0) {
        wlog_error("demo", "refused", "error=\"the demo needs the MQTT listener\"");
        return WEIR_EINVAL;
    }
    int rc = define_stream(in);
    if (rc)
        return rc;
    define_rule(rs);
    if (access(cfg->demo_file, R_OK)) {
        wlog_error("demo", "no_file", "file=%s action=\"running without the replay\"",
                   cfg->demo_file);
        return WEIR_OK;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0) {
        wlog_error("demo", "no_exe", "error=\"cannot find /proc/self/exe\"");
        return WEIR_OK;
    }
    exe[n] = '\0';
    demo *d = calloc(1, sizeof(*d));
    if (!d)
        return WEIR_ENOMEM;
    char mqtt[64], speed[32];
    snprintf(mqtt, sizeof(mqtt), "127.0.0.1:%d", mqtt_port);
    snprintf(speed, sizeof(speed), "%llu",
             (unsigned long long)(cfg->demo_speedup ? cfg->demo_speedup : 600));
    char *args[] = {exe,      "replay", cfg->demo_file, "--mqtt",  mqtt,
                    "--topic", DEMO_TOPIC, "--devices", "9",       "--speedup",
                    speed,    "--loop", "--time",       "now",     "--exit-with-parent",
                    NULL};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t po = {.exit_cb = on_child_exit, .file = exe, .args = args,
                               .stdio_count = 3, .stdio = stdio};
    d->proc.data = d;
    int err = uv_spawn(loop, &d->proc, &po);
    if (err) {
        wlog_error("demo", "spawn_failed", "error=\"%s\"", uv_strerror(err));
        /* uv_spawn initialised the handle: it must still be closed. */
        d->closing = true;
        uv_close((uv_handle_t *)&d->proc, on_closed);
        *out = d;
        return WEIR_OK;
    }
    d->running = true;
    wlog_info("demo", "started",
              "stream=%s topic=%s devices=9 speedup=%s file=%s mqtt=%s replay_pid=%d "
              "note=\"demo data: made-up live readings from a 2016 recording, loopback only\"",
              DEMO_STREAM, DEMO_TOPIC, speed, cfg->demo_file, mqtt, d->proc.pid);
    *out = d;
    return WEIR_OK;
}

void demo_stop(demo *d)
{
    if (!d || d->stopping)
        return;
    d->stopping = true;
    if (d->running)
        uv_process_kill(&d->proc, SIGTERM);
}

void demo_free(demo *d)
{
    if (!d)
        return;
    if (d->closing && !d->closed) {
        wlog_error("demo", "bug", "error=\"freed before the process handle closed; leaking\"");
        return;
    }
    free(d);
}
