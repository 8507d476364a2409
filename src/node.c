/* node.c -- see node.h. */
#include "node.h"
#include "base/err.h"
#include "base/wlog.h"

#include <stdlib.h>
#include <uv.h>

typedef struct node {
    uv_loop_t loop;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    const weir_config *cfg;
    int stopping;
} node;

static void node_stop(node *n, const char *why)
{
    if (n->stopping)
        return;
    n->stopping = 1;
    wlog_info("node", "stopping", "reason=%s", why);
    uv_signal_stop(&n->sigint);
    uv_signal_stop(&n->sigterm);
    uv_close((uv_handle_t *)&n->sigint, NULL);
    uv_close((uv_handle_t *)&n->sigterm, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    node_stop(h->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

int node_run(const weir_config *cfg)
{
    node n = {.cfg = cfg};
    int lvl = wlog_level_parse(cfg->log_level);
    if (lvl < 0) {
        wlog_error("node", "config", "error=\"unknown log_level '%s'\"", cfg->log_level);
        return 1;
    }
    wlog_set_level((wlog_level)lvl);
    if (uv_loop_init(&n.loop))
        return 1;
    uv_signal_init(&n.loop, &n.sigint);
    uv_signal_init(&n.loop, &n.sigterm);
    n.sigint.data = n.sigterm.data = &n;
    uv_signal_start(&n.sigint, on_signal, SIGINT);
    uv_signal_start(&n.sigterm, on_signal, SIGTERM);
    wlog_info("node", "started", "name=%s version=%s", cfg->node_name, WEIR_VERSION);
    uv_run(&n.loop, UV_RUN_DEFAULT);
    uv_loop_close(&n.loop);
    wlog_info("node", "stopped", "status=0");
    return 0;
}
