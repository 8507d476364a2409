/* route_usvc.c -- the μ-service rule-template API (the "proxy μ-service" of
 * the IoT stream-processing literature), on top of the rule runtime.
 *
 *   POST /api/install     installation object -> jobinfo   (?start=true, ?dry_run=true)
 *   POST /api/uninstall   jobinfo -> jobinfo (UNINSTALLED)
 *   POST /api/start       jobinfo -> jobinfo (RUNNING)
 *   POST /api/stop        jobinfo -> jobinfo (STOPPED)
 *   POST /api/move        relocation object -> jobinfo on the target node
 *   GET  /api/jobs        [jobinfo, ...] of the jobs on this node
 *
 * A job is an ordinary SQL rule named usvc_<jobId> (its configFileName),
 * made by usvc_template.c; the rule's options keep {"usvc": {"installation",
 * "streams"}} so that a jobinfo can be rebuilt from the rule alone and the
 * job re-installed elsewhere. An MQTT input gets its own ingest stream
 * usvc_<jobId>_in (dropped with the job).
 *
 * `runtime` is a node name: this node's (config node.name; absent means
 * this node) or a configured peer's (config node.peers). A request whose
 * runtime is a peer is forwarded to that peer as it is, and the peer's
 * answer is returned as it is (502 when it does not answer). Forwarded
 * requests carry X-Weir-Forwarded and are never forwarded again, so two
 * nodes that disagree about names cannot bounce a request forever.
 *
 * Moves are make-before-break: the job is installed (and started, if it
 * runs here) on the target first, and only once the target said yes is it
 * stopped and uninstalled here. The target's answer is awaited on libuv's
 * thread pool (libcurl, blocking, bounded by a timeout), never on the loop;
 * the HTTP answer is sent later (http_respond_later). If the target does
 * not answer or refuses, nothing changed here: the job keeps running (or
 * stays stopped) and the client gets 502. The delivery guarantee across a
 * move is in docs/api.md.
 *
 * A node without the rule runtime (api->rules NULL) answers 503; the
 * templates still translate there (?dry_run=true).
 */
#include "base/err.h"
#include "base/wlog.h"
#include "engine/rules.h"
#include "http/peer_client.h"
#include "http/routes.h"
#include "http/usvc_template.h"
#include "ingest/ingest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define PEER_TIMEOUT_MS 10000
#define FORWARDED_HEADER "X-Weir-Forwarded"

/* ---- answers ------------------------------------------------------------- */

static void respond_msg(http_response *w, int status, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void respond_msg(http_response *w, int status, int code, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    http_respond_json(w, status,
                      json_pack("{s:s, s:s}", "error", msg, "code", weir_err_name(code)));
}

static const char *self_name(const http_api_ctx *api)
{
    return api->node_name && *api->node_name ? api->node_name : "weir";
}

static bool runtime_ready(http_api_ctx *api, http_response *w)
{
    if (api->rules && api->ingest)
        return true;
    respond_msg(w, 503, WEIR_EUNSUPPORTED, "the rule runtime is not available on node '%s'",
                self_name(api));
    return false;
}

static json_t *read_object(http_request *r, http_response *w, const char *what)
{
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_error_t je;
    json_t *j = json_loadb((const char *)body, n, 0, &je);
    if (!j) {
        respond_msg(w, 400, WEIR_EMALFORMED, "the body must be a JSON %s object: %s (line %d)",
                    what, je.text, je.line);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        respond_msg(w, 400, WEIR_EINVAL, "the body must be a JSON %s object", what);
        return NULL;
    }
    return j;
}

static bool query_true(http_request *r, const char *name)
{
    char v[16];
    const char *s = http_req_query(r, name, v, sizeof(v));
    return s && (!*s || !strcmp(s, "1") || !strcmp(s, "true") || !strcmp(s, "yes"));
}

/* ---- where a runtime is ------------------------------------------------- */

typedef enum { RT_LOCAL, RT_PEER, RT_ANSWERED } rt_kind;

/* LOCAL, PEER (url filled) or ANSWERED (an error was sent). */
static rt_kind resolve_runtime(http_api_ctx *api, http_request *r, http_response *w,
                               const char *field, const char *runtime, char *url, size_t n)
{
    if (!runtime || !*runtime || !strcmp(runtime, self_name(api)))
        return RT_LOCAL;
    char h[8];
    if (http_req_header(r, FORWARDED_HEADER, h, sizeof(h))) {
        respond_msg(w, 400, WEIR_EINVAL,
                    "%s '%.128s' is not this node ('%s'), and a forwarded request is not "
                    "forwarded again",
                    field, runtime, self_name(api));
        return RT_ANSWERED;
    }
    int rc = peer_lookup(api->node_peers, runtime, url, n);
    if (rc == WEIR_OK)
        return RT_PEER;
    respond_msg(w, 400, WEIR_EINVAL,
                "unknown %s '%.128s': neither this node ('%s') nor a configured peer "
                "(node.peers)",
                field, runtime, self_name(api));
    return RT_ANSWERED;
}

/* ---- jobs of this node --------------------------------------------------- */

static const json_t *usvc_of(const json_t *rule)
{
    const json_t *u = json_object_get(json_object_get(rule, "options"), "usvc");
    return json_is_object(u) && json_is_object(json_object_get(u, "installation")) ? u : NULL;
}

static json_t *jobinfo_of(http_api_ctx *api, const json_t *rule, const char *status)
{
    const json_t *u = usvc_of(rule);
    const json_t *h = json_object_get(json_object_get(u, "installation"), "headers");
    const char *id = json_string_value(json_object_get(h, "jobId"));
    const char *type = json_string_value(json_object_get(h, "jobType"));
    const char *name = json_string_value(json_object_get(rule, "name"));
    if (!status)
        status = usvc_status_from_rule(json_string_value(json_object_get(rule, "status")));
    return usvc_jobinfo(self_name(api), id ? id : "", type ? type : "", status, name ? name : "");
}

/* The rule of a local job (new reference), or NULL after answering 404. */
static json_t *find_job(http_api_ctx *api, http_response *w, const char *job_id, char *rule,
                        size_t n)
{
    json_t *j = NULL;
    if (usvc_rule_name(job_id, rule, n) == WEIR_OK)
        j = rules_get_json(api->rules, rule);
    if (j && usvc_of(j))
        return j;
    json_decref(j);
    respond_msg(w, 404, WEIR_ENOTFOUND, "no job '%s' on node '%s'", job_id, self_name(api));
    return NULL;
}

/* Drops the ingest streams the job made (its options say which). */
static void drop_streams(http_api_ctx *api, const json_t *usvc, const char *rule)
{
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(usvc, "streams"), i, s)
    {
        const char *name = json_string_value(s);
        if (!name)
            continue;
        int rc = ingest_drop(api->ingest, name);
        if (rc && rc != WEIR_ENOTFOUND)
            wlog_warn("usvc", "drop_stream", "rule=%s stream=%s error=\"%s\"", rule, name,
                      weir_strerror(rc));
    }
}

/* Stops (if running) and deletes a local job's rule and its streams. */
static int uninstall_local(http_api_ctx *api, const json_t *rule_json)
{
    const char *rule = json_string_value(json_object_get(rule_json, "name"));
    if (!rule)
        return WEIR_EINTERNAL;
    const char *st = json_string_value(json_object_get(rule_json, "status"));
    if (st && !strcmp(st, "running"))
        rules_stop(api->rules, rule);
    int rc = rules_delete(api->rules, rule);
    if (rc && rc != WEIR_ENOTFOUND)
        return rc;
    drop_streams(api, usvc_of(rule_json), rule);
    return WEIR_OK;
}

/* ---- forwarding and moves off the loop ----------------------------------- */

typedef enum { JOB_FORWARD, JOB_MOVE } peer_job_kind;

typedef struct peer_job {
    uv_work_t req;
    peer_job_kind kind;
    http_api_ctx *api;
    http_later *later;
    char url[PEER_URL_MAX];
    char path[64];
    char runtime[128];
    char *body;
    size_t len;
    int rc;
    peer_response resp;
    /* JOB_MOVE: the local job being moved */
    char job_id[USVC_JOB_ID_MAX + 1];
    char rule[USVC_NAME_MAX];
    bool was_running;
} peer_job;

static void peer_job_free(peer_job *j)
{
    peer_response_free(&j->resp);
    free(j->body);
    free(j);
}

static void peer_work(uv_work_t *req)
{
    peer_job *j = req->data;
    j->rc = peer_post(j->url, j->path, j->body, j->len, FORWARDED_HEADER ": 1", PEER_TIMEOUT_MS,
                      &j->resp);
}

static const char *peer_error_text(const peer_job *j, char *buf, size_t n)
{
    json_t *b = json_loadb((const char *)buf_head(&j->resp.body), buf_used(&j->resp.body), 0,
                           NULL);
    const char *e = json_string_value(json_object_get(b, "error"));
    snprintf(buf, n, "%s", e ? e : "no error message");
    json_decref(b);
    return buf;
}

static void move_finish(peer_job *j, http_response *w)
{
    http_api_ctx *api = j->api;
    char msg[400];
    if (j->rc) {
        wlog_warn("usvc", "move_failed", "job=%s target=%s error=\"%s\"", j->job_id, j->runtime,
                  j->resp.error);
        if (w)
            respond_msg(w, 502, WEIR_EIO,
                        "target runtime '%s' (%s) did not answer: %s; job '%s' stays on node "
                        "'%s' (%s) (after a timeout, check GET /api/jobs on the target too: it "
                        "may have installed the job)",
                        j->runtime, j->url, j->resp.error, j->job_id, self_name(api),
                        j->was_running ? USVC_RUNNING : USVC_STOPPED);
        return;
    }
    if (j->resp.status < 200 || j->resp.status > 299) {
        peer_error_text(j, msg, sizeof(msg));
        wlog_warn("usvc", "move_refused", "job=%s target=%s status=%ld error=\"%s\"", j->job_id,
                  j->runtime, j->resp.status, msg);
        if (w)
            http_respond_json(
                w, 502,
                json_pack("{s:s, s:s, s:i, s:s}", "error",
                          "the target runtime refused the installation; the job stays here",
                          "code", weir_err_name(WEIR_EIO), "target_status", (int)j->resp.status,
                          "target_error", msg));
        return;
    }
    /* The target runs (or holds) the job now: retire it here. */
    json_t *rule = rules_get_json(api->rules, j->rule);
    int rc = rule && usvc_of(rule) ? uninstall_local(api, rule) : WEIR_OK;
    json_decref(rule);
    if (rc)
        wlog_error("usvc", "move_uninstall", "job=%s error=\"%s\" note=\"the job now exists on "
                   "both nodes\"", j->job_id, weir_strerror(rc));
    wlog_info("usvc", "moved", "job=%s from=%s to=%s running=%d", j->job_id, self_name(api),
              j->runtime, (int)j->was_running);
    if (!w)
        return;
    json_t *ji = json_loadb((const char *)buf_head(&j->resp.body), buf_used(&j->resp.body), 0,
                            NULL);
    if (!json_is_object(ji) || !json_object_get(ji, "jobId")) {
        json_decref(ji);
        char cf[USVC_NAME_MAX];
        usvc_rule_name(j->job_id, cf, sizeof(cf));
        ji = usvc_jobinfo(j->runtime, j->job_id, "", j->was_running ? USVC_RUNNING
                                                                    : USVC_INSTALLED, cf);
    }
    http_respond_json(w, 200, ji);
}

static void peer_done(uv_work_t *req, int status)
{
    peer_job *j = req->data;
    http_api_ctx *api = j->api;
    http_response *w = http_later_response(j->later);
    if (status) {
        j->rc = WEIR_EIO;
        snprintf(j->resp.error, sizeof(j->resp.error), "cancelled");
    }
    if (j->kind == JOB_MOVE) {
        move_finish(j, w);
    } else if (w && j->rc) {
        respond_msg(w, 502, WEIR_EIO, "runtime '%s' (%s) did not answer: %s", j->runtime, j->url,
                    j->resp.error);
    } else if (w) {
        http_respond(w, (int)j->resp.status, "application/json", buf_head(&j->resp.body),
                     buf_used(&j->resp.body));
    }
    http_later_done(j->later);
    bool counted = j->kind == JOB_MOVE;
    peer_job_free(j);
    if (counted && --api->jobs == 0 && api->on_jobs_idle)
        api->on_jobs_idle(api->idle_arg);
}

/* Queues a call to a peer; takes ownership of body (malloc'd). */
static void peer_call(http_api_ctx *api, http_response *w, peer_job_kind kind,
                      const char *runtime, const char *url, const char *path, char *body,
                      peer_job *move)
{
    peer_job *j = move ? move : calloc(1, sizeof(*j));
    if (!j || !body || !api->loop || peer_client_init()) {
        free(body);
        free(j);
        respond_msg(w, 500, WEIR_ENOMEM, "cannot call runtime '%s'", runtime);
        return;
    }
    j->kind = kind;
    j->api = api;
    j->body = body;
    j->len = strlen(body);
    j->req.data = j;
    buf_init(&j->resp.body, 0);
    snprintf(j->url, sizeof(j->url), "%s", url);
    snprintf(j->path, sizeof(j->path), "%s", path);
    snprintf(j->runtime, sizeof(j->runtime), "%s", runtime);
    if (!(j->later = http_respond_later(w))) {
        peer_job_free(j);
        respond_msg(w, 500, WEIR_ENOMEM, "cannot call runtime '%s'", runtime);
        return;
    }
    if (kind == JOB_MOVE)
        api->jobs++;
    if (uv_queue_work(api->loop, &j->req, peer_work, peer_done)) {
        if (kind == JOB_MOVE)
            api->jobs--;
        http_response *lw = http_later_response(j->later);
        if (lw)
            respond_msg(lw, 500, WEIR_EINTERNAL, "cannot queue the call to runtime '%s'",
                        runtime);
        http_later_done(j->later);
        peer_job_free(j);
    }
}

/* Forwards this request's body unchanged to the same path on a peer. */
static void forward(http_api_ctx *api, http_request *r, http_response *w, const char *runtime,
                    const char *url, const json_t *body, const char *path)
{
    char p[64];
    snprintf(p, sizeof(p), "%s%s", path, query_true(r, "start") ? "?start=true" : "");
    peer_call(api, w, JOB_FORWARD, runtime, url, p, json_dumps(body, JSON_COMPACT), NULL);
}

/* ---- install ------------------------------------------------------------- */

static void gen_job_id(char *out, size_t n)
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b)) {
        /* No entropy source: time and a counter still give unique ids. */
        static uint32_t counter;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t t = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
        memcpy(b, &t, 8);
        uint32_t c = ++counter;
        memcpy(b + 8, &c, 4);
        memset(b + 12, 0x5a, 4);
    }
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40); /* UUID version 4 */
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, n,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

static void install_local(http_api_ctx *api, http_request *r, http_response *w, usvc_job *job,
                          bool start)
{
    json_t *created = json_array(), *names = json_array();
    json_t *options = NULL;
    char err[512];
    int rc;
    if (!created || !names)
        goto oom;
    json_t *existing = rules_get_json(api->rules, job->rule);
    if (existing) {
        json_decref(existing);
        respond_msg(w, 409, WEIR_EEXIST, "job '%s' is already installed on node '%s'",
                    job->job_id, self_name(api));
        goto cleanup;
    }
    size_t i;
    json_t *def;
    json_array_foreach(job->streams, i, def)
    {
        const char *name = json_string_value(json_object_get(def, "name"));
        bool had = ingest_find(api->ingest, name) != NULL;
        json_t *copy = json_deep_copy(def);
        if (!copy)
            goto oom;
        rc = ingest_define(api->ingest, copy, "api", true, err, sizeof(err), NULL);
        json_decref(copy);
        if (rc) {
            respond_msg(w, rc == WEIR_EINVAL ? 400 : 500, rc,
                        "cannot define the input stream '%s': %s", name, err);
            goto cleanup;
        }
        if (json_array_append_new(names, json_string(name)) ||
            (!had && json_array_append_new(created, json_string(name))))
            goto oom;
    }
    options = json_pack("{s:{s:O, s:O}}", "usvc", "installation", job->installation, "streams",
                        names);
    if (!options)
        goto oom;
    sql_error serr;
    memset(&serr, 0, sizeof(serr));
    rc = rules_create(api->rules, job->sql, strlen(job->sql), options, start, &serr);
    http_audit(api, r, "rule.create", job->rule, rc == WEIR_OK, rc ? serr.msg : "usvc install");
    if (rc) {
        if (rc == WEIR_EEXIST)
            respond_msg(w, 409, rc, "job '%s' is already installed on node '%s'", job->job_id,
                        self_name(api));
        else if (rc == WEIR_ENOTFOUND)
            respond_msg(w, 400, rc, "node '%s' cannot run the job: %s", self_name(api),
                        serr.msg[0] ? serr.msg : "an input stream does not exist");
        else if (rc == WEIR_EINVAL || rc == WEIR_EUNSUPPORTED)
            respond_msg(w, 400, rc, "the rule engine refused the template: %s (in: %s)",
                        serr.msg[0] ? serr.msg : weir_strerror(rc), job->sql);
        else
            respond_msg(w, 500, rc, "cannot create the rule: %s",
                        serr.msg[0] ? serr.msg : weir_strerror(rc));
        /* Leave nothing behind: only streams this install made. */
        json_t *s;
        json_array_foreach(created, i, s) ingest_drop(api->ingest, json_string_value(s));
        goto cleanup;
    }
    wlog_info("usvc", "installed", "job=%s type=%s rule=%s start=%d", job->job_id,
              job->job_type, job->rule, (int)start);
    http_respond_json(w, 200,
                      usvc_jobinfo(self_name(api), job->job_id, job->job_type,
                                   start ? USVC_RUNNING : USVC_INSTALLED, job->rule));
    goto cleanup;
oom:
    respond_msg(w, 500, WEIR_ENOMEM, "out of memory");
cleanup:
    json_decref(created);
    json_decref(names);
    json_decref(options);
}

void http_route_usvc_install(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    json_t *inst = read_object(r, w, "installation");
    if (!inst)
        return;
    usvc_job job;
    char err[512], id[48], url[PEER_URL_MAX];
    gen_job_id(id, sizeof(id));
    int rc = usvc_template_build(inst, id, &job, err, sizeof(err));
    json_decref(inst);
    if (rc) {
        respond_msg(w, rc == WEIR_ENOMEM ? 500 : 400, rc, "%s", err);
        return;
    }
    rt_kind k = resolve_runtime(api, r, w, "headers.runtime", job.runtime, url, sizeof(url));
    if (k == RT_ANSWERED)
        goto cleanup;
    if (query_true(r, "dry_run")) {
        /* The translation only (the same templates on every node). */
        http_respond_json(w, 200,
                          json_pack("{s:s, s:s, s:s, s:s, s:s, s:O, s:O}", "runtime",
                                    job.runtime[0] ? job.runtime : self_name(api), "jobId",
                                    job.job_id, "jobType", job.job_type, "configFileName",
                                    job.rule, "sql", job.sql, "streams", job.streams,
                                    "installation", job.installation));
        goto cleanup;
    }
    if (k == RT_PEER) {
        forward(api, r, w, job.runtime, url, job.installation, "/api/install");
        goto cleanup;
    }
    if (runtime_ready(api, w))
        install_local(api, r, w, &job, query_true(r, "start"));
cleanup:
    usvc_job_free(&job);
}

/* ---- uninstall, start, stop ---------------------------------------------- */

typedef enum { OP_UNINSTALL, OP_START, OP_STOP } job_op;

static void job_route(http_request *r, http_response *w, http_api_ctx *api, job_op op,
                      const char *path)
{
    json_t *ji = read_object(r, w, "jobinfo");
    if (!ji)
        return;
    char id[USVC_JOB_ID_MAX + 1], err[256], url[PEER_URL_MAX], rule[USVC_NAME_MAX];
    json_t *rj = NULL;
    const json_t *jr = json_object_get(ji, "runtime");
    if (jr && !json_is_string(jr)) {
        respond_msg(w, 400, WEIR_EINVAL, "jobinfo.runtime must be a string (a node name)");
        goto cleanup;
    }
    if (usvc_jobinfo_id(ji, id, sizeof(id), err, sizeof(err))) {
        respond_msg(w, 400, WEIR_EINVAL, "%s", err);
        goto cleanup;
    }
    rt_kind k = resolve_runtime(api, r, w, "jobinfo.runtime", json_string_value(jr), url,
                                sizeof(url));
    if (k == RT_ANSWERED)
        goto cleanup;
    if (k == RT_PEER) {
        forward(api, r, w, json_string_value(jr), url, ji, path);
        goto cleanup;
    }
    if (!runtime_ready(api, w) || !(rj = find_job(api, w, id, rule, sizeof(rule))))
        goto cleanup;
    int rc;
    const char *status = NULL;
    if (op == OP_UNINSTALL) {
        rc = uninstall_local(api, rj);
        status = USVC_UNINSTALLED;
        snprintf(err, sizeof(err), "%s", weir_strerror(rc));
    } else if (op == OP_START) {
        err[0] = '\0';
        rc = rules_start(api->rules, rule, err, sizeof(err));
        if (!err[0])
            snprintf(err, sizeof(err), "%s", weir_strerror(rc));
    } else {
        rc = rules_stop(api->rules, rule);
        snprintf(err, sizeof(err), "%s", weir_strerror(rc));
    }
    http_audit(api, r,
               op == OP_UNINSTALL ? "rule.delete"
               : op == OP_START   ? "rule.start"
                                  : "rule.stop",
               rule, rc == WEIR_OK, rc ? err : "usvc");
    if (rc) {
        respond_msg(w, rc == WEIR_ENOTFOUND ? 404 : 500, rc, "job '%s': %s", id, err);
        goto cleanup;
    }
    if (!status) {
        json_t *now = rules_get_json(api->rules, rule);
        if (now) {
            json_decref(rj);
            rj = now;
        }
    }
    wlog_info("usvc", op == OP_UNINSTALL ? "uninstalled" : op == OP_START ? "started" : "stopped",
              "job=%s", id);
    http_respond_json(w, 200, jobinfo_of(api, rj, status));
cleanup:
    json_decref(rj);
    json_decref(ji);
}

void http_route_usvc_uninstall(http_request *r, http_response *w, void *ctx)
{
    job_route(r, w, ctx, OP_UNINSTALL, "/api/uninstall");
}

void http_route_usvc_start(http_request *r, http_response *w, void *ctx)
{
    job_route(r, w, ctx, OP_START, "/api/start");
}

void http_route_usvc_stop(http_request *r, http_response *w, void *ctx)
{
    job_route(r, w, ctx, OP_STOP, "/api/stop");
}

/* ---- move ---------------------------------------------------------------- */

void http_route_usvc_move(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    json_t *rel = read_object(r, w, "relocation");
    if (!rel)
        return;
    json_t *rj = NULL, *inst = NULL;
    char id[USVC_JOB_ID_MAX + 1], err[256], url[PEER_URL_MAX], rule[USVC_NAME_MAX];
    const char *target = json_string_value(json_object_get(rel, "target_runtime"));
    const json_t *ji = json_object_get(rel, "jobInfo");
    const json_t *res = json_object_get(rel, "targetResource");
    if (!target || !*target) {
        respond_msg(w, 400, WEIR_EINVAL, "target_runtime is required (a node name)");
        goto cleanup;
    }
    if (res && !json_is_string(res) && !json_is_null(res)) {
        respond_msg(w, 400, WEIR_EINVAL, "targetResource must be a string");
        goto cleanup;
    }
    if (!json_is_object(ji)) {
        respond_msg(w, 400, WEIR_EINVAL, "jobInfo is required (the job's jobinfo object)");
        goto cleanup;
    }
    if (usvc_jobinfo_id(ji, id, sizeof(id), err, sizeof(err))) {
        respond_msg(w, 400, WEIR_EINVAL, "jobInfo: %s", err);
        goto cleanup;
    }
    /* The move is done by the node that has the job. */
    const char *source = json_string_value(json_object_get(ji, "runtime"));
    rt_kind k = resolve_runtime(api, r, w, "jobInfo.runtime", source, url, sizeof(url));
    if (k == RT_ANSWERED)
        goto cleanup;
    if (k == RT_PEER) {
        forward(api, r, w, source, url, rel, "/api/move");
        goto cleanup;
    }
    bool here = !strcmp(target, self_name(api));
    if (!here && peer_lookup(api->node_peers, target, url, sizeof(url))) {
        respond_msg(w, 400, WEIR_EINVAL,
                    "unknown target_runtime '%.128s': not a configured peer of node '%s' "
                    "(node.peers)",
                    target, self_name(api));
        goto cleanup;
    }
    if (!runtime_ready(api, w) || !(rj = find_job(api, w, id, rule, sizeof(rule))))
        goto cleanup;
    if (here) {
        http_respond_json(w, 200, jobinfo_of(api, rj, NULL)); /* already there */
        goto cleanup;
    }
    /* The same installation (same jobId, so the same configFileName), aimed
     * at the target. */
    inst = json_deep_copy(json_object_get(usvc_of(rj), "installation"));
    json_t *h = json_object_get(inst, "headers");
    if (!inst || json_object_set_new(h, "runtime", json_string(target)) ||
        json_object_set_new(h, "targetResource", json_string(url))) {
        respond_msg(w, 500, WEIR_ENOMEM, "out of memory");
        goto cleanup;
    }
    peer_job *j = calloc(1, sizeof(*j));
    if (!j) {
        respond_msg(w, 500, WEIR_ENOMEM, "out of memory");
        goto cleanup;
    }
    const char *st = json_string_value(json_object_get(rj, "status"));
    j->was_running = st && !strcmp(st, "running");
    snprintf(j->job_id, sizeof(j->job_id), "%s", id);
    snprintf(j->rule, sizeof(j->rule), "%s", rule);
    wlog_info("usvc", "moving", "job=%s from=%s to=%s running=%d", id, self_name(api), target,
              (int)j->was_running);
    peer_call(api, w, JOB_MOVE, target, url,
              j->was_running ? "/api/install?start=true" : "/api/install",
              json_dumps(inst, JSON_COMPACT), j);
cleanup:
    json_decref(inst);
    json_decref(rj);
    json_decref(rel);
}

/* ---- list ---------------------------------------------------------------- */

void http_route_usvc_jobs(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    http_api_ctx *api = ctx;
    if (!runtime_ready(api, w))
        return;
    json_t *all = rules_list_json(api->rules), *out = json_array();
    size_t i;
    json_t *rule;
    json_array_foreach(all, i, rule)
    {
        if (usvc_of(rule))
            json_array_append_new(out, jobinfo_of(api, rule, NULL));
    }
    json_decref(all);
    http_respond_json(w, 200, out);
}
