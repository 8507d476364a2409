/* route_streams.c -- the streams resource: definitions, ingest of records
 * and archived files, and history (pages of records, downsampled series).
 *
 *   GET    /api/v1/streams                      list with statistics
 *   POST   /api/v1/streams                      define (JSON definition)
 *   GET    /api/v1/streams/{name}               one stream
 *   DELETE /api/v1/streams/{name}               drop it and its data
 *   POST   /api/v1/streams/{name}/records       JSON array, NDJSON, CSV, line protocol
 *   POST   /api/v1/streams/{name}/upload        an archived file, imported once
 *   GET    /api/v1/streams/{name}/records       ?from=&to=&key=&fields=&limit=&cursor=&wait=&offset=&partition=
 *   GET    /api/v1/streams/{name}/series        ?field=&from=&to=&every=&agg=&key=
 *   GET    /api/v1/streams/{name}/groups/{g}    a consumer group's committed offsets
 *   POST   /api/v1/streams/{name}/groups/{g}    commit {"offsets": {"<p>": next}}
 *
 * Ingest answers only once every accepted record is durable under the
 * stream's sync policy (the response is taken with http_respond_later), so
 * a 200 means the same as an MQTT PUBACK: the readings are kept.
 */
#include "base/clock.h"
#include "base/config.h"
#include "base/err.h"
#include "base/wlog.h"
#include "history/history.h"
#include "http/routes.h"
#include "ingest/ingest.h"
#include "record/record.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RECORDS_LIMIT_DEFAULT 100
#define RECORDS_LIMIT_MAX 10000
#define SERIES_MAX_BUCKETS 100000
#define WAIT_MAX_MS 60000

static ingest_stream *find_or_404(http_request *r, http_response *w, http_api_ctx *api)
{
    const char *name = http_req_param(r, 0);
    ingest_stream *s = name && api->ingest ? ingest_find(api->ingest, name) : NULL;
    if (!s) {
        char msg[200];
        snprintf(msg, sizeof(msg), "no stream named '%s'", name ? name : "");
        http_respond_error(w, WEIR_ENOTFOUND, msg);
    }
    return s;
}

/* ---- Definitions -------------------------------------------------------- */

static void add_stream(void *arg, ingest_stream *s)
{
    json_array_append_new(arg, ingest_stream_json(s));
}

void http_route_streams_list(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    http_api_ctx *api = ctx;
    json_t *arr = json_array();
    if (api->ingest)
        ingest_foreach(api->ingest, add_stream, arr);
    http_respond_json(w, 200, json_pack("{s:o}", "streams", arr));
}

void http_route_streams_create(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_error_t jerr;
    json_t *def = json_loadb((const char *)body, n, 0, &jerr);
    if (!def || !json_is_object(def)) {
        json_decref(def);
        http_respond_json(w, 400,
                          json_pack("{s:s, s:s, s:i, s:i}", "error",
                                    def ? "the definition must be a JSON object" : jerr.text,
                                    "code", "EINVAL", "line", jerr.line, "column", jerr.column));
        return;
    }
    char err[256];
    ingest_stream *s = NULL;
    int existed = ingest_find(api->ingest, json_string_value(json_object_get(def, "name")) ?
                                               json_string_value(json_object_get(def, "name"))
                                               : "") != NULL;
    int rc = ingest_define(api->ingest, def, "api", true, err, sizeof(err), &s);
    json_decref(def);
    if (rc) {
        http_respond_error(w, rc, err);
        return;
    }
    wlog_info("http", "stream_defined", "name=%s peer=%s", ingest_stream_name(s),
              http_req_peer(r));
    http_respond_json(w, existed ? 200 : 201, ingest_stream_json(s));
}

void http_route_stream_get(http_request *r, http_response *w, void *ctx)
{
    ingest_stream *s = find_or_404(r, w, ctx);
    if (s)
        http_respond_json(w, 200, ingest_stream_json(s));
}

void http_route_stream_delete(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    char name[160];
    snprintf(name, sizeof(name), "%s", ingest_stream_name(s));
    int rc = ingest_drop(api->ingest, name);
    if (rc) {
        http_respond_error(w, rc, rc == WEIR_EDENIED ? "weir's own streams cannot be dropped"
                                                    : NULL);
        return;
    }
    wlog_info("http", "stream_dropped", "name=%s peer=%s", name, http_req_peer(r));
    http_respond(w, 204, NULL, NULL, 0);
}

/* ---- Ingest ------------------------------------------------------------- */

typedef struct pending_ingest {
    http_later *later;
    ingest_result res;
    catalog *cat;          /* for uploads: remember the file once durable */
    char stream[160];
    char sha256[65];
    char file_name[256];
} pending_ingest;

static json_t *result_json(const ingest_result *res)
{
    return json_pack("{s:i, s:i, s:O}", "accepted", (json_int_t)res->accepted, "rejected",
                     (json_int_t)res->rejected, "errors", res->errors ? res->errors : json_null());
}

static void ingest_answer(http_response *w, pending_ingest *p, int status)
{
    if (status) {
        http_respond_error(w, status, "records could not be stored");
        return;
    }
    json_t *body = result_json(&p->res);
    if (p->sha256[0]) {
        json_object_set_new(body, "sha256", json_string(p->sha256));
        json_object_set_new(body, "duplicate", json_false());
    }
    http_respond_json(w, 200, body);
}

static void pending_free(pending_ingest *p)
{
    json_decref(p->res.errors);
    free(p);
}

static void on_durable(void *arg, int status)
{
    pending_ingest *p = arg;
    if (!status && p->sha256[0] && p->cat)
        catalog_import_put(p->cat, p->stream, p->sha256, p->file_name, p->res.accepted);
    http_response *w = http_later_response(p->later);
    if (w)
        ingest_answer(w, p, status);
    http_later_done(p->later);
    pending_free(p);
}

/* Runs a batch and answers now (nothing to wait for, or an error) or later. */
static void run_batch(http_request *r, http_response *w, http_api_ctx *api, ingest_stream *s,
                      const rec_schema *sc, pending_ingest *p)
{
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    int rc = ingest_batch(api->ingest, s, sc, body, n, weir_wall_ns(), &p->res, on_durable, p);
    if (rc == WEIR_EAGAIN) {
        p->later = http_respond_later(w);
        if (p->later)
            return; /* on_durable answers */
        /* Cannot answer later (out of memory): the records will be durable,
         * so say what is known now. */
        rc = WEIR_OK;
    }
    if (rc) {
        http_respond_error(w, rc, rc == WEIR_EFULL ? "the stream is busy; retry later" : NULL);
    } else if (!p->res.accepted && p->res.rejected) {
        json_t *e = json_array_get(p->res.errors, 0);
        json_t *body_json = json_pack("{s:s, s:s, s:O, s:O, s:i, s:O}", "error",
                                      "no record could be decoded", "code", "EMALFORMED", "line",
                                      json_object_get(e, "line"), "column",
                                      json_object_get(e, "column"), "rejected",
                                      (json_int_t)p->res.rejected, "errors", p->res.errors);
        http_respond_json(w, 400, body_json);
    } else {
        ingest_answer(w, p, WEIR_OK);
    }
    if (rc != WEIR_EAGAIN)
        pending_free(p);
}

static int request_format(http_request *r, const ingest_stream *s, rec_format *fmt)
{
    char buf[128];
    *fmt = ingest_stream_schema(s)->format;
    const char *q = http_req_query(r, "format", buf, sizeof(buf));
    if (q)
        return ingest_format_parse(q, fmt);
    const char *ct = http_req_header(r, "content-type", buf, sizeof(buf));
    if (ct && !strstr(ct, "octet-stream") && !strstr(ct, "form-urlencoded"))
        return ingest_format_parse(ct, fmt);
    return WEIR_OK;
}

void http_route_stream_records_post(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    rec_schema sc = *ingest_stream_schema(s);
    if (request_format(r, s, &sc.format)) {
        http_respond_error(w, WEIR_EINVAL,
                           "Content-Type must be application/json, application/x-ndjson, "
                           "text/csv or text/plain (line protocol)");
        return;
    }
    pending_ingest *p = calloc(1, sizeof(*p));
    if (!p) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    run_batch(r, w, api, s, &sc, p);
}

static void sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    unsigned char md[32];
    unsigned int len = 0;
    EVP_Digest(p, n, md, &len, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

void http_route_stream_upload(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    char tcol[128], tfmt[128], fname[256];
    rec_schema sc = *ingest_stream_schema(s);
    sc.format = REC_FMT_CSV;
    if (request_format(r, s, &sc.format)) {
        http_respond_error(w, WEIR_EINVAL, "unknown format");
        return;
    }
    const char *tc = http_req_query(r, "time_column", tcol, sizeof(tcol));
    const char *tf = http_req_query(r, "time_format", tfmt, sizeof(tfmt));
    if (tc)
        sc.ts_field = tc;
    if (tf)
        sc.ts_format = tf;
    const char *why = NULL;
    if (rec_schema_check(&sc, &why)) {
        http_respond_error(w, WEIR_EINVAL, why);
        return;
    }
    pending_ingest *p = calloc(1, sizeof(*p));
    if (!p) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    sha256_hex(body, n, p->sha256);
    snprintf(p->stream, sizeof(p->stream), "%s", ingest_stream_name(s));
    const char *fn = http_req_query(r, "file_name", fname, sizeof(fname));
    snprintf(p->file_name, sizeof(p->file_name), "%s", fn ? fn : "upload");
    p->cat = api->catalog;
    unsigned long long prev = 0;
    if (api->catalog && !catalog_import_get(api->catalog, p->stream, p->sha256, &prev)) {
        http_respond_json(w, 200,
                          json_pack("{s:b, s:s, s:I, s:i, s:i}", "duplicate", 1, "sha256",
                                    p->sha256, "records", (json_int_t)prev, "accepted", 0,
                                    "rejected", 0));
        free(p);
        return;
    }
    run_batch(r, w, api, s, &sc, p);
}

/* ---- History ------------------------------------------------------------ */

static json_t *value_json(const rec_value *v)
{
    switch (v->type) {
    case REC_BOOL:
        return json_boolean(v->u.b);
    case REC_INT:
        return json_integer(v->u.i);
    case REC_DOUBLE:
        return json_real(v->u.d);
    case REC_STRING:
        return json_stringn(v->u.s.p, v->u.s.len);
    case REC_JSON: {
        json_t *j = json_loadb(v->u.s.p, v->u.s.len, JSON_DECODE_ANY, NULL);
        return j ? j : json_null();
    }
    default:
        return json_null();
    }
}

static json_t *ns_iso(int64_t ns)
{
    char buf[48];
    time_t secs = (time_t)(ns / WEIR_NS_PER_S);
    int64_t frac = ns % WEIR_NS_PER_S;
    if (frac < 0) {
        secs--;
        frac += WEIR_NS_PER_S;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(frac / WEIR_NS_PER_MS));
    return json_string(buf);
}

typedef struct page_ctx {
    json_t *arr;
    arena a;
    const char *fields;    /* comma-separated filter, or NULL */
} page_ctx;

static bool wanted(const char *fields, const char *name, size_t n)
{
    if (!fields)
        return true;
    for (const char *p = fields; *p;) {
        const char *c = strchr(p, ',');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len == n && !memcmp(p, name, n))
            return true;
        if (!c)
            break;
        p = c + 1;
    }
    return false;
}

static int page_emit(void *arg, const stream_rec *rec)
{
    page_ctx *pc = arg;
    arena_reset(&pc->a);
    record r;
    json_t *fields = json_object();
    if (!record_decode(rec->value, rec->value_len, &pc->a, &r)) {
        for (uint32_t i = 0; i < r.n_fields; i++) {
            const rec_field *f = &r.fields[i];
            if (!wanted(pc->fields, f->name, f->name_len))
                continue;
            char name[256];
            size_t nl = f->name_len < sizeof(name) - 1 ? f->name_len : sizeof(name) - 1;
            memcpy(name, f->name, nl);
            name[nl] = '\0';
            json_object_set_new(fields, name, value_json(&f->v));
        }
    }
    json_t *o = json_pack("{s:o, s:I, s:s#, s:i, s:I, s:I, s:I, s:o}", "ts", ns_iso(rec->ts),
                          "ts_ns", (json_int_t)rec->ts, "key", (const char *)rec->key,
                          (int)rec->key_len, "partition", (json_int_t)rec->partition, "offset",
                          (json_int_t)rec->offset, "arrival_ns", (json_int_t)rec->arrival,
                          "commit_ns", (json_int_t)rec->commit, "fields", fields);
    if (!o) /* a key that is not UTF-8 */
        o = json_pack("{s:o, s:I, s:n, s:i, s:I, s:o}", "ts", ns_iso(rec->ts), "ts_ns",
                      (json_int_t)rec->ts, "key", "partition", (json_int_t)rec->partition,
                      "offset", (json_int_t)rec->offset, "fields", fields);
    json_array_append_new(pc->arr, o);
    return 0;
}

/* Reads from/to/key of a history request; answers 400 itself on error. */
static bool read_range(http_request *r, http_response *w, history_range *hr, char *keybuf,
                       size_t keylen)
{
    char buf[96];
    int64_t now = weir_wall_ns();
    *hr = (history_range){.from = INT64_MIN, .to = INT64_MAX, .partition = -1};
    const char *v;
    if ((v = http_req_query(r, "from", buf, sizeof(buf))) && history_parse_time(v, now, &hr->from)) {
        http_respond_error(w, WEIR_EINVAL, "from: not a time (RFC 3339, epoch ms or now-1h)");
        return false;
    }
    if ((v = http_req_query(r, "to", buf, sizeof(buf))) && history_parse_time(v, now, &hr->to)) {
        http_respond_error(w, WEIR_EINVAL, "to: not a time (RFC 3339, epoch ms or now-1h)");
        return false;
    }
    if ((v = http_req_query(r, "offset", buf, sizeof(buf)))) {
        char *end;
        hr->min_offset = strtoull(v, &end, 10);
        if (*end || !*v) {
            http_respond_error(w, WEIR_EINVAL, "offset must be a record offset");
            return false;
        }
    }
    if ((v = http_req_query(r, "partition", buf, sizeof(buf)))) {
        char *end;
        long p = strtol(v, &end, 10);
        if (*end || !*v || p < 0 || p > 1023) {
            http_respond_error(w, WEIR_EINVAL, "partition must be a partition number");
            return false;
        }
        hr->partition = (int32_t)p;
    }
    if ((v = http_req_query(r, "key", keybuf, keylen))) {
        hr->key = (const uint8_t *)v;
        hr->key_len = (uint32_t)strlen(v);
        hr->has_key = true;
    }
    return true;
}

static int parse_cursor(const char *s, history_cursor *c)
{
    long long ts;
    unsigned p;
    unsigned long long off;
    if (sscanf(s, "%lld:%u:%llu", &ts, &p, &off) != 3)
        return WEIR_EINVAL;
    *c = (history_cursor){ts, p, off, true};
    return WEIR_OK;
}

/* A page request that found nothing and may wait for new records. */
typedef struct long_poll {
    struct long_poll *prev, *next; /* the API context's list, for shutdown */
    http_api_ctx *api;
    http_later *later;
    stream *st;
    stream_watch *watch;
    uv_timer_t timer;
    history_range range;
    history_cursor after;
    uint32_t limit;
    char key[256];
    char fields[512];
    bool has_fields;
    bool finished;
} long_poll;

/* Builds one page as the JSON answer; *status is the weir_err. */
static json_t *page_build(stream *st, const history_range *hr, const history_cursor *after,
                          uint32_t limit, const char *fields, int *status)
{
    page_ctx pc = {.arr = json_array(), .fields = fields};
    arena_init(&pc.a, 1u << 20);
    history_cursor next = {0};
    bool more = false;
    int rc = history_records(st, hr, after, limit, page_emit, &pc, &next, &more);
    arena_free(&pc.a);
    *status = rc;
    if (rc) {
        json_decref(pc.arr);
        return NULL;
    }
    json_t *cur = json_null();
    const history_cursor *last = next.set ? &next : (after && after->set ? after : NULL);
    if (last) {
        char c[80];
        snprintf(c, sizeof(c), "%lld:%u:%llu", (long long)last->ts, last->partition,
                 (unsigned long long)last->offset);
        cur = json_string(c);
    }
    /* read_ns: when the node read the page (T4 of a poll, for `weir probe`). */
    json_t *body = json_pack("{s:o, s:o, s:b, s:I}", "records", pc.arr, "next_cursor", cur,
                             "more", more, "read_ns", (json_int_t)weir_wall_ns());
    if (!body)
        *status = WEIR_ENOMEM;
    return body;
}

static void page_respond(http_response *w, stream *st, const history_range *hr,
                         const history_cursor *after, uint32_t limit, const char *fields)
{
    int rc;
    json_t *body = page_build(st, hr, after, limit, fields, &rc);
    if (rc)
        http_respond_error(w, rc, NULL);
    else
        http_respond_json(w, 200, body);
}

static void poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void poll_finish(long_poll *lp)
{
    if (lp->finished)
        return;
    lp->finished = true;
    if (lp->prev)
        lp->prev->next = lp->next;
    else
        lp->api->polls = lp->next;
    if (lp->next)
        lp->next->prev = lp->prev;
    if (lp->watch)
        stream_watch_remove(lp->watch);
    lp->watch = NULL;
    http_response *w = http_later_response(lp->later);
    if (w) {
        history_range hr = lp->range;
        if (hr.has_key)
            hr.key = (const uint8_t *)lp->key;
        page_respond(w, lp->st, &hr, &lp->after, lp->limit, lp->has_fields ? lp->fields : NULL);
    }
    http_later_done(lp->later);
    uv_timer_stop(&lp->timer);
    uv_close((uv_handle_t *)&lp->timer, poll_closed);
}

static void poll_on_commit(void *arg, uint32_t partition, uint64_t end_offset)
{
    (void)partition;
    (void)end_offset;
    poll_finish(arg);
}

static void poll_on_timeout(uv_timer_t *t)
{
    poll_finish(t->data);
}

static void records_off_loop(http_api_ctx *api, http_response *w, ingest_stream *s,
                             const history_range *hr, const history_cursor *after,
                             uint32_t limit, const char *fields);

void http_route_stream_records_get(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    char key[256], buf[96], fields[512];
    history_range hr;
    if (!read_range(r, w, &hr, key, sizeof(key)))
        return;
    uint32_t limit = RECORDS_LIMIT_DEFAULT;
    const char *v;
    if ((v = http_req_query(r, "limit", buf, sizeof(buf)))) {
        long l = strtol(v, NULL, 10);
        if (l < 1 || l > RECORDS_LIMIT_MAX) {
            http_respond_error(w, WEIR_EINVAL, "limit must be from 1 to 10000");
            return;
        }
        limit = (uint32_t)l;
    }
    history_cursor after = {0};
    if ((v = http_req_query(r, "cursor", buf, sizeof(buf))) && *v && parse_cursor(v, &after)) {
        http_respond_error(w, WEIR_EINVAL, "cursor: use the next_cursor of a previous page");
        return;
    }
    const char *fl = http_req_query(r, "fields", fields, sizeof(fields));
    int64_t wait_ms = 0;
    if ((v = http_req_query(r, "wait", buf, sizeof(buf))) &&
        (config_parse_duration_ms(v, &wait_ms) || wait_ms > WAIT_MAX_MS)) {
        http_respond_error(w, WEIR_EINVAL, "wait must be a duration up to 60s");
        return;
    }
    stream *st = ingest_stream_store(s);
    if (wait_ms > 0 && api->loop) {
        /* Long poll: answer at once when records exist, else when the next
         * commit arrives (the store's watch, no polling) or on time-out. */
        bool more = false;
        history_cursor probe = {0};
        page_ctx pc = {.arr = json_array()};
        arena_init(&pc.a, 1u << 16);
        int rc = history_records(st, &hr, &after, 1, page_emit, &pc, &probe, &more);
        arena_free(&pc.a);
        size_t found = json_array_size(pc.arr);
        json_decref(pc.arr);
        if (!rc && !found) {
            long_poll *lp = calloc(1, sizeof(*lp));
            if (lp && (lp->later = http_respond_later(w))) {
                lp->api = api;
                lp->next = api->polls;
                if (lp->next)
                    lp->next->prev = lp;
                api->polls = lp;
                lp->st = st;
                lp->range = hr;
                lp->after = after;
                lp->limit = limit;
                if (hr.has_key)
                    snprintf(lp->key, sizeof(lp->key), "%s", key);
                if (fl) {
                    snprintf(lp->fields, sizeof(lp->fields), "%s", fl);
                    lp->has_fields = true;
                }
                uv_timer_init(api->loop, &lp->timer);
                lp->timer.data = lp;
                uv_timer_start(&lp->timer, poll_on_timeout, (uint64_t)wait_ms, 0);
                lp->watch = stream_watch_add(st, poll_on_commit, lp);
                return;
            }
            free(lp);
        }
    }
    records_off_loop(api, w, s, &hr, &after, limit, fl);
}

typedef struct series_out {
    json_t *t, *v, *n;
} series_out;

/* ---- Queries off the loop ------------------------------------------------
 *
 * A series over millions of records takes CPU-seconds; on the loop it would
 * stall every client. It runs on libuv's thread pool instead: the handler
 * takes the response for later, holds the stream (so it cannot be dropped
 * meanwhile) and queues the job; the job builds its JSON answer on the worker
 * (nothing else touches those objects), and the answer is sent from the loop
 * when the job is done. Store readers may be used from any one thread. */

typedef struct query_job {
    uv_work_t req;
    http_api_ctx *api;
    http_later *later;
    ingest_stream *s;
    void (*work)(struct query_job *job); /* on the worker: sets status, body */
    int status;                          /* weir_err */
    const char *error;                   /* message for a failed status */
    json_t *body;                        /* the 200 answer */
} query_job;

static void job_work(uv_work_t *req)
{
    query_job *job = req->data;
    job->work(job);
}

static void job_done(uv_work_t *req, int status)
{
    query_job *job = req->data;
    http_api_ctx *api = job->api;
    http_response *w = http_later_response(job->later);
    if (w && (status || job->status))
        http_respond_error(w, status ? WEIR_EINTERNAL : job->status, job->error);
    else if (w)
        http_respond_json(w, 200, job->body), job->body = NULL;
    json_decref(job->body);
    http_later_done(job->later);
    ingest_stream_release(job->s);
    free(job);
    if (--api->jobs == 0 && api->on_jobs_idle)
        api->on_jobs_idle(api->idle_arg);
}

/* Runs job->work on the thread pool and answers from its result; without a
 * loop (tests of the resource) it runs inline. Takes ownership of job. */
static void run_off_loop(http_api_ctx *api, http_response *w, ingest_stream *s, query_job *job,
                         void (*work)(query_job *job))
{
    job->api = api;
    job->s = s;
    job->work = work;
    job->req.data = job;
    ingest_stream_hold(s);
    api->jobs++;
    if (api->loop && (job->later = http_respond_later(w)) &&
        uv_queue_work(api->loop, &job->req, job_work, job_done) == 0)
        return;
    /* Inline: no loop, or the response could not be deferred. */
    if (job->later) {
        http_later_done(job->later);
        job->later = NULL;
    }
    work(job);
    if (job->status)
        http_respond_error(w, job->status, job->error);
    else
        http_respond_json(w, 200, job->body), job->body = NULL;
    json_decref(job->body);
    ingest_stream_release(s);
    free(job);
    if (--api->jobs == 0 && api->on_jobs_idle)
        api->on_jobs_idle(api->idle_arg);
}

typedef struct series_job {
    query_job base; /* first: the job runner sees a query_job */
    ingest_stream *s;
    history_range hr;
    char key[256];
    char field[128];
    char aggname[16];
    int64_t every_ms;
    history_agg agg;
} series_job;

static int series_emit(void *arg, int64_t bucket, double value, uint64_t count)
{
    series_out *o = arg;
    json_array_append_new(o->t, json_integer(bucket / WEIR_NS_PER_MS));
    json_array_append_new(o->v, json_real(value));
    json_array_append_new(o->n, json_integer((json_int_t)count));
    return 0;
}

typedef struct records_job {
    query_job base; /* first: the job runner sees a query_job */
    ingest_stream *s;
    history_range hr;
    history_cursor after;
    uint32_t limit;
    char key[256];
    char fields[512];
    bool has_fields;
} records_job;

static void records_work(query_job *qj)
{
    records_job *job = (records_job *)qj;
    qj->body = page_build(ingest_stream_store(job->s), &job->hr, &job->after, job->limit,
                          job->has_fields ? job->fields : NULL, &qj->status);
}

static void records_off_loop(http_api_ctx *api, http_response *w, ingest_stream *s,
                             const history_range *hr, const history_cursor *after,
                             uint32_t limit, const char *fields)
{
    records_job *job = calloc(1, sizeof(*job));
    if (!job) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    job->s = s;
    job->hr = *hr;
    if (hr->has_key) {
        snprintf(job->key, sizeof(job->key), "%.*s", (int)hr->key_len, (const char *)hr->key);
        job->hr.key = (const uint8_t *)job->key;
    }
    job->after = *after;
    job->limit = limit;
    if (fields) {
        snprintf(job->fields, sizeof(job->fields), "%s", fields);
        job->has_fields = true;
    }
    run_off_loop(api, w, s, &job->base, records_work);
}

static int series_emit(void *arg, int64_t bucket, double value, uint64_t count);

static void series_work(query_job *qj)
{
    series_job *job = (series_job *)qj;
    series_out o = {json_array(), json_array(), json_array()};
    int rc = history_series(ingest_stream_store(job->s), &job->hr, job->field,
                            job->every_ms * WEIR_NS_PER_MS, job->agg, SERIES_MAX_BUCKETS,
                            series_emit, &o);
    if (rc) {
        json_decref(o.t);
        json_decref(o.v);
        json_decref(o.n);
        qj->status = rc;
        qj->error = rc == WEIR_EINVAL ? "the range needs more than 100000 buckets; "
                                        "narrow it or use a larger every"
                                      : NULL;
        return;
    }
    qj->body = json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "stream",
                         ingest_stream_name(job->s), "field", job->field, "agg", job->aggname,
                         "every_ms", (json_int_t)job->every_ms, "t", o.t, "v", o.v, "n", o.n);
    if (!qj->body)
        qj->status = WEIR_ENOMEM;
}

void http_route_stream_series(http_request *r, http_response *w, void *ctx)
{
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    char key[256], field[128], buf[64];
    history_range hr;
    if (!read_range(r, w, &hr, key, sizeof(key)))
        return;
    if (!http_req_query(r, "field", field, sizeof(field)) || !*field) {
        http_respond_error(w, WEIR_EINVAL, "field is required");
        return;
    }
    int64_t every_ms = 60000;
    const char *v;
    if ((v = http_req_query(r, "every", buf, sizeof(buf))) &&
        (config_parse_duration_ms(v, &every_ms) || every_ms <= 0)) {
        http_respond_error(w, WEIR_EINVAL, "every must be a duration such as 1m");
        return;
    }
    history_agg agg = HISTORY_AVG;
    char aggbuf[16] = "avg";
    if ((v = http_req_query(r, "agg", aggbuf, sizeof(aggbuf))) && history_agg_parse(v, &agg)) {
        http_respond_error(w, WEIR_EINVAL, "agg must be avg, min, max, sum, count, first or last");
        return;
    }
    series_job *job = calloc(1, sizeof(*job));
    if (!job) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    job->s = s;
    job->hr = hr;
    if (hr.has_key) {
        snprintf(job->key, sizeof(job->key), "%s", key);
        job->hr.key = (const uint8_t *)job->key;
    }
    snprintf(job->field, sizeof(job->field), "%s", field);
    snprintf(job->aggname, sizeof(job->aggname), "%s", aggbuf);
    job->every_ms = every_ms;
    job->agg = agg;
    run_off_loop(ctx, w, s, &job->base, series_work);
}

void http_streams_shutdown(http_api_ctx *api)
{
    /* Answer every waiting long poll now, before the store goes away. */
    while (api->polls)
        poll_finish(api->polls);
}

/* ---- Consumer groups ---------------------------------------------------- */

/* GET /api/v1/streams/{name}/groups/{group}: the group's committed next
 * offset per partition (absent partitions were never committed), with each
 * partition's current start and end so a consumer can see its lag. */
void http_route_stream_group_get(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    const char *group = http_req_param(r, 1);
    stream *st = ingest_stream_store(s);
    json_t *parts = json_array();
    for (uint32_t p = 0; p < stream_partitions(st); p++) {
        unsigned long long next = 0;
        int rc = catalog_offset_get(api->catalog, group, ingest_stream_name(s), p, &next);
        json_t *o = json_pack("{s:i, s:I, s:I}", "partition", (json_int_t)p, "start",
                              (json_int_t)stream_start_offset(st, p), "end",
                              (json_int_t)stream_end_offset(st, p));
        if (rc == WEIR_OK) {
            json_object_set_new(o, "next_offset", json_integer((json_int_t)next));
            json_object_set_new(o, "lag",
                                json_integer((json_int_t)(stream_end_offset(st, p) > next
                                                              ? stream_end_offset(st, p) - next
                                                              : 0)));
        } else {
            json_object_set_new(o, "next_offset", json_null());
        }
        json_array_append_new(parts, o);
    }
    http_respond_json(w, 200, json_pack("{s:s, s:s, s:o}", "stream", ingest_stream_name(s),
                                        "group", group, "partitions", parts));
}

/* POST /api/v1/streams/{name}/groups/{group} {"offsets": {"0": 120, "1": 98}}:
 * commits next offsets (each at most the partition's end). */
void http_route_stream_group_commit(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    ingest_stream *s = find_or_404(r, w, ctx);
    if (!s)
        return;
    const char *group = http_req_param(r, 1);
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_t *j = json_loadb((const char *)body, n, 0, NULL);
    json_t *offs = json_object_get(j, "offsets");
    stream *st = ingest_stream_store(s);
    if (!json_is_object(offs)) {
        json_decref(j);
        http_respond_error(w, WEIR_EINVAL, "body must be {\"offsets\": {\"<partition>\": <next>}}");
        return;
    }
    const char *k;
    json_t *v;
    json_object_foreach(offs, k, v)
    {
        char *end;
        unsigned long p = strtoul(k, &end, 10);
        if (*end || !*k || p >= stream_partitions(st) || !json_is_integer(v) ||
            json_integer_value(v) < 0 ||
            (uint64_t)json_integer_value(v) > stream_end_offset(st, (uint32_t)p)) {
            json_decref(j);
            http_respond_error(w, WEIR_EINVAL,
                               "each offset needs an existing partition and a next offset "
                               "between 0 and the partition's end");
            return;
        }
    }
    json_object_foreach(offs, k, v)
    {
        int rc = catalog_offset_commit(api->catalog, group, ingest_stream_name(s),
                                       (unsigned)strtoul(k, NULL, 10),
                                       (unsigned long long)json_integer_value(v));
        if (rc) {
            json_decref(j);
            http_respond_error(w, rc, "could not commit the offsets");
            return;
        }
    }
    json_decref(j);
    http_route_stream_group_get(r, w, ctx);
}
