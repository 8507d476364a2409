/* rules.c -- the rule runtime (see rules.h for the contract).
 *
 * ## Reading inputs: shared sources, live groups, bounded turns
 *
 * Every input stream in use has one `src` (one store watch). A rule input
 * is a `consumer` with one `cpart` per partition holding the next offset
 * to push. A cpart is either
 *  - LAGGING: it has its own stream_reader and catches up on its own
 *    (a restored rule replaying from its checkpoint), or
 *  - LIVE: a member of its partition's live group, which reads with ONE
 *    shared reader; each record is read and decoded (record_decode) once
 *    and pushed to every member. All members are at the same offset.
 * A consumer's lagging cparts are read together, merged in event-time
 * order, so a rule replaying a backlog of several partitions does not run
 * one partition far ahead of the others (whose records would then be late
 * for its windows). A lagging cpart that reaches the end of the partition
 * joins the live group when the group is at that same offset (or becomes
 * the group when there is none, handing over its reader). A member that must pause
 * (its output pushes back) leaves the group and continues as lagging.
 * So N caught-up rules on one stream decode each committed record once.
 *
 * Work is done by `pump`, run from a uv_idle handle that is active only
 * while something is left to do (a watch callback, a start, a drained sink
 * or an acknowledged append activates it). Each turn reads at most
 * RULES_BATCH records per lagging cpart and per live group, so a rule
 * catching up over millions of records never starves the network: the
 * loop polls for I/O between turns. No timer batches records: a commit
 * is processed in the loop iteration after its watch callback.
 *
 * ## Outputs
 *
 * Derived streams ('stream:NAME'): rows are encoded as records (the row's
 * columns, plus `ts` = event time in ns and `_id` = the row's
 * deterministic id as a signed 64-bit integer, plus window_start /
 * window_end for window results when the row has no such columns) and
 * collected per turn; at the end of the turn each partition gets one
 * stream_append (group commit). The stream is created with a JSON
 * definition when missing. Late rows (whatever the target) go to the
 * derived stream "<rule>.late" in the same way; it is created at the
 * first late row (a catalog write on the loop, once per rule). Pending output is bounded by
 * RULES_OUT_MAX bytes per rule: above it the rule pauses reading until
 * appends are acknowledged (WEIR_EFULL from the store does the same).
 * Sinks ('mqtt:', 'webhook:') get each row with out_seq (1, 2, ... per
 * rule, checkpointed); when a sink is not writable the rule pauses until
 * its on_drain.
 *
 * ## Checkpoints and exactly-once derived streams
 *
 * Every checkpoint_interval (default 1 s) when it processed anything since
 * the last one, at stop and at shutdown, a rule takes a snapshot between
 * two records: its pending output is
 * appended, then the engine state (eng_rule_checkpoint), the next offset
 * of every input partition, the next offset of every output partition (the
 * end of our own appends) and out_seq are copied. Appends carry a
 * generation number; the snapshot is handed to the catalog writer only
 * when every append of its generation and before is acknowledged durable,
 * so a stored checkpoint never refers to output that could be lost. The
 * writer is a worker thread with its own catalog connection (the catalog
 * fsyncs); one write is in flight, queued snapshots are written together
 * in one transaction, and an older epoch never replaces a newer one.
 *
 * On start the rule restores the newest snapshot (in memory if it has one,
 * else the catalog's), seeks its inputs to the stored offsets and reads
 * the derived stream from the stored output offsets to its end, keeping
 * the `_id`s found there (what was written after the checkpoint and before
 * a crash). Replay then re-emits exactly those rows (the engine is
 * deterministic); they are skipped, once each. A rule without a
 * checkpoint starts at the end of its inputs and checkpoints at once.
 *
 * Threads: the loop thread, except the checkpoint writer (worker thread,
 * owns only its catalog connection and the snapshots it writes). Control-
 * plane catalog writes (create, delete, desired state, last error, the
 * definition of a derived stream) run on the loop like stream definitions
 * do: a few per operator action, never per record. Starting a rule also
 * runs on the loop: it reads its checkpoint row and reads back the derived
 * stream written after that checkpoint (at most one checkpoint interval of
 * output, and at most RULES_SKIP_MAX ids, else the start fails).
 */
#include "engine/rules.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "record/schema.h"
#include "sql/parser.h"

#include <libgen.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RULES_BATCH 256                /* records per reader per loop turn */
#define RULES_OUT_MAX (4u << 20)       /* pending output bytes before a rule pauses */
#define RULES_TIMER_MS 100             /* engine ticks and due checkpoints */
#define RULES_CK_DEFAULT_NS 1000000000 /* checkpoint_interval default: 1 s */
#define RULES_DECODE_ARENA (1u << 20)  /* one decoded record */
#define RULES_SKIP_MAX (1u << 22)      /* ids read back after a checkpoint */
#define LAT_BUCKETS 32                 /* latency histogram: bucket i <= 2^i us */

typedef struct rule_rt rule_rt;
typedef struct consumer consumer;
typedef struct src src;

typedef struct cpart {
    consumer *c;
    uint32_t p;
    uint64_t pos;       /* next offset to push */
    stream_reader *rd;  /* own reader (lagging); NULL when live */
    stream_rec la;      /* lagging: the next record, read but not pushed */
    bool has_la;
    bool live;
    struct cpart *next; /* all cparts of the src partition */
} cpart;

struct consumer {
    rule_rt *rt;
    uint32_t input;
    src *src;
    cpart *parts;
};

typedef struct src_part {
    stream_reader *rd; /* the live group's reader, NULL when there is no group */
    uint64_t pos;      /* the live group's next offset */
    cpart *members;    /* every cpart of this partition */
} src_part;

struct src {
    src *next;
    rules *rs;
    char *name;
    ingest_stream *is;
    stream *s;
    stream_watch *w;
    uint32_t nparts;
    src_part *parts;
    uint32_t refs;
    arena ar; /* one decoded record */
};

/* One pending output record (offsets into the output's data buffer). */
typedef struct pend_rec {
    uint32_t part;
    int64_t ts;
    size_t key_off, val_off;
    uint32_t key_len, val_len;
} pend_rec;

typedef struct id_set {
    uint64_t *slots; /* 0 = empty; id 0 is stored as a flag */
    size_t cap, n;
    bool has_zero;
} id_set;

typedef struct out_stream {
    char *name;
    ingest_stream *is;
    stream *s;
    uint32_t nparts;
    uint64_t *next_off; /* after our appends, per partition */
    weir_buf data;
    pend_rec *pend;
    size_t n_pend, cap_pend;
    id_set skip; /* ids written after the restored checkpoint */
} out_stream;

/* A checkpoint taken, waiting for durability, being written or written. */
typedef struct snapshot {
    struct snapshot *next; /* writer queue */
    char *rule;
    uint64_t epoch, out_seq;
    char *offsets_json;
    uint8_t *state;
    size_t state_len;
    uint32_t refs; /* the rule's ck_wait/last_ck and the writer queue */
} snapshot;

struct rules_tap {
    rules_tap *next;
    rule_rt *rt;
    void (*cb)(void *arg, const eng_row *row);
    void *arg;
};

typedef enum { RS_STOPPED, RS_RUNNING, RS_FAILED } rule_state;

struct rule_rt {
    rule_rt *next;
    rules *rs;
    char *name, *sql, *target;
    json_t *options;
    rule_state state;
    char error[512];
    int64_t ck_interval_ns;
    /* running */
    eng_rule *eng;
    consumer cons[ENG_MAX_INPUTS];
    uint32_t n_cons;
    out_stream *out, *late_out; /* derived outputs (out NULL for a sink) */
    void *sink;
    bool blocked;       /* output pushes back: do not read */
    bool efull;         /* the last flush met WEIR_EFULL: retried after an ack */
    bool dirty;         /* pushed or emitted since the last checkpoint */
    bool failing;       /* failed during a turn: stopped after it */
    int64_t next_ck_ns; /* monotonic */
    /* checkpoints */
    uint64_t epoch, out_seq;
    uint32_t gen;               /* generation of new appends */
    uint32_t outstanding[2];    /* unacknowledged appends per generation parity */
    snapshot *ck_wait;          /* taken, waiting for its appends */
    uint32_t ck_gen;
    snapshot *last_ck;          /* newest durable snapshot */
    /* metrics (since this process started the rule) */
    uint64_t in, out_rows, late, errors, skipped, emit_errors;
    int64_t lat_last_ns;
    double lat_sum_ms;
    uint64_t lat_n, lat_hist[LAT_BUCKETS];
    rules_tap *taps;
    bool deleted; /* freed when outstanding appends are done */
};

struct rules {
    uv_loop_t *loop;
    ingest *in;
    catalog *cat;
    catalog *wcat; /* the writer's own connection; NULL: write on the loop */
    const rules_sink_ops *sinks;
    rule_rt *list;
    rule_rt *zombies;
    src *srcs;
    uv_idle_t idle;
    uv_timer_t timer;
    bool idle_on, handles, shutting_down;
    /* checkpoint writer */
    snapshot *q_head, **q_tail;
    snapshot *w_batch; /* being written */
    uv_work_t work;
    bool writing;
    /* one record's encoding */
    weir_buf enc;
    uint64_t decoded; /* records decoded for rules (shared decodes count once) */
};

static void rule_stop_internal(rule_rt *rt, rule_state to, const char *why);
static void kick(rules *rs);
static size_t pending_bytes(const rule_rt *rt);
static void update_blocked(rule_rt *rt);
static int rule_flush(rule_rt *rt);

/* ---- Small helpers ------------------------------------------------------ */

static bool valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 120 || !strcmp(s, ".") || !strcmp(s, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static rule_rt *find_rule(rules *rs, const char *name)
{
    for (rule_rt *r = rs->list; r; r = r->next)
        if (!strcmp(r->name, name))
            return r;
    return NULL;
}

static void set_error(rule_rt *rt, const char *msg)
{
    snprintf(rt->error, sizeof(rt->error), "%s", msg ? msg : "");
    catalog_rule_set_error(rt->rs->cat, rt->name, msg && *msg ? msg : NULL);
}

static void fail_rule(rule_rt *rt, const char *fmt, const char *detail)
{
    char msg[512];
    snprintf(msg, sizeof(msg), fmt, detail ? detail : "");
    wlog_error("rules", "rule_failed", "rule=%s error=\"%s\"", rt->name, msg);
    set_error(rt, msg);
    rt->failing = true;
}

/* ---- id set (open addressing, linear probing) -------------------------- */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static int idset_add(id_set *s, uint64_t id)
{
    if (id == 0) {
        s->has_zero = true;
        return WEIR_OK;
    }
    if ((s->n + 1) * 2 > s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 64;
        uint64_t *ns = calloc(ncap, sizeof(uint64_t));
        if (!ns)
            return WEIR_ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (!s->slots[i])
                continue;
            size_t j = mix64(s->slots[i]) & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = s->slots[i];
        }
        free(s->slots);
        s->slots = ns;
        s->cap = ncap;
    }
    size_t j = mix64(id) & (s->cap - 1);
    while (s->slots[j] && s->slots[j] != id)
        j = (j + 1) & (s->cap - 1);
    if (!s->slots[j]) {
        s->slots[j] = id;
        s->n++;
    }
    return WEIR_OK;
}

static bool idset_has(const id_set *s, uint64_t id)
{
    if (id == 0)
        return s->has_zero;
    if (!s->cap)
        return false;
    size_t j = mix64(id) & (s->cap - 1);
    while (s->slots[j]) {
        if (s->slots[j] == id)
            return true;
        j = (j + 1) & (s->cap - 1);
    }
    return false;
}

static void idset_free(id_set *s)
{
    free(s->slots);
    memset(s, 0, sizeof(*s));
}

/* ---- Snapshots and the checkpoint writer ------------------------------- */

static void snap_unref(snapshot *s)
{
    if (!s || --s->refs)
        return;
    free(s->rule);
    free(s->offsets_json);
    free(s->state);
    free(s);
}

static void write_work(uv_work_t *req)
{
    rules *rs = req->data;
    sqlite3 *db = catalog_db(rs->wcat);
    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    for (snapshot *s = rs->w_batch; s; s = s->next) {
        int rc = catalog_checkpoint_save(rs->wcat, s->rule, s->epoch, s->offsets_json,
                                         s->out_seq, s->state, s->state_len);
        if (rc && rc != WEIR_ENOTFOUND)
            wlog_error("rules", "checkpoint_write", "rule=%s error=\"%s\"", s->rule,
                       weir_strerror(rc));
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        wlog_error("rules", "checkpoint_commit", "error=\"%s\"", sqlite3_errmsg(db));
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    }
}

static void writer_next(rules *rs);

static void write_done(uv_work_t *req, int status)
{
    (void)status;
    rules *rs = req->data;
    while (rs->w_batch) {
        snapshot *s = rs->w_batch;
        rs->w_batch = s->next;
        s->next = NULL;
        snap_unref(s);
    }
    rs->writing = false;
    writer_next(rs);
}

static void write_sync(rules *rs, snapshot *s)
{
    int rc = catalog_checkpoint_save(rs->cat, s->rule, s->epoch, s->offsets_json, s->out_seq,
                                     s->state, s->state_len);
    if (rc && rc != WEIR_ENOTFOUND)
        wlog_error("rules", "checkpoint_write", "rule=%s error=\"%s\"", s->rule,
                   weir_strerror(rc));
}

static void writer_next(rules *rs)
{
    if (rs->writing || !rs->q_head)
        return;
    if (!rs->wcat || rs->shutting_down) {
        while (rs->q_head) {
            snapshot *s = rs->q_head;
            rs->q_head = s->next;
            s->next = NULL;
            write_sync(rs, s);
            snap_unref(s);
        }
        rs->q_tail = &rs->q_head;
        return;
    }
    rs->w_batch = rs->q_head;
    rs->q_head = NULL;
    rs->q_tail = &rs->q_head;
    rs->writing = true;
    rs->work.data = rs;
    if (uv_queue_work(rs->loop, &rs->work, write_work, write_done)) {
        rs->writing = false;
        while (rs->w_batch) {
            snapshot *s = rs->w_batch;
            rs->w_batch = s->next;
            s->next = NULL;
            write_sync(rs, s);
            snap_unref(s);
        }
    }
}

/* The snapshot is durable (its outputs are): queue it for the catalog and
 * make it the rule's newest. */
static void snap_durable(rule_rt *rt, snapshot *s)
{
    rules *rs = rt->rs;
    snap_unref(rt->last_ck);
    rt->last_ck = s; /* takes the rule's reference */
    if (rt->deleted)
        return;
    s->refs++;
    s->next = NULL;
    *rs->q_tail = s;
    rs->q_tail = &s->next;
    writer_next(rs);
}

static void check_wait(rule_rt *rt)
{
    if (rt->ck_wait && rt->outstanding[rt->ck_gen & 1] == 0) {
        snapshot *s = rt->ck_wait;
        rt->ck_wait = NULL;
        snap_durable(rt, s);
    }
}

/* ---- Outputs ------------------------------------------------------------ */

typedef struct append_ctx {
    rule_rt *rt;
    uint32_t gen;
} append_ctx;

static void rule_maybe_free(rule_rt *rt);

static void on_appended(void *arg, int status, uint32_t partition, uint64_t first_offset)
{
    (void)partition;
    (void)first_offset;
    append_ctx *a = arg;
    rule_rt *rt = a->rt;
    rt->outstanding[a->gen & 1]--;
    free(a);
    if (status && !rt->deleted && rt->state == RS_RUNNING) {
        fail_rule(rt, "derived stream append failed: %s", weir_strerror(status));
        /* a later turn stops it */
    }
    if (status && rt->ck_wait) { /* never store a checkpoint whose output was lost */
        snap_unref(rt->ck_wait);
        rt->ck_wait = NULL;
    }
    check_wait(rt);
    if (rt->blocked && !rt->deleted && rt->state == RS_RUNNING) {
        if (rt->efull)
            rule_flush(rt);
        update_blocked(rt);
        if (!rt->blocked)
            kick(rt->rs);
    }
    rule_maybe_free(rt);
}

static void out_free(out_stream *o)
{
    if (!o)
        return;
    if (o->is)
        ingest_stream_release(o->is);
    free(o->name);
    free(o->next_off);
    buf_free(&o->data);
    free(o->pend);
    idset_free(&o->skip);
    free(o);
}

/* Appends the pending records: one stream_append per partition. */
static int out_flush(rule_rt *rt, out_stream *o)
{
    if (!o || !o->n_pend)
        return WEIR_OK;
    stream_rec_in *recs = malloc(o->n_pend * sizeof(*recs));
    if (!recs)
        return WEIR_ENOMEM;
    int64_t now = weir_wall_ns();
    int rc = WEIR_OK;
    for (uint32_t p = 0; p < o->nparts && !rc; p++) {
        size_t n = 0;
        for (size_t i = 0; i < o->n_pend; i++) {
            pend_rec *pr = &o->pend[i];
            if (pr->part != p)
                continue;
            recs[n++] = (stream_rec_in){.key = pr->key_len ? buf_head(&o->data) + pr->key_off
                                                          : NULL,
                                        .key_len = pr->key_len,
                                        .ts = pr->ts,
                                        .arrival = now,
                                        .value = buf_head(&o->data) + pr->val_off,
                                        .value_len = pr->val_len};
        }
        if (!n)
            continue;
        append_ctx *a = malloc(sizeof(*a));
        if (!a) {
            rc = WEIR_ENOMEM;
            break;
        }
        a->rt = rt;
        a->gen = rt->gen;
        uint64_t first = 0;
        rc = stream_append(o->s, p, recs, n, on_appended, a, &first);
        if (rc) {
            free(a);
            break;
        }
        rt->outstanding[a->gen & 1]++;
        o->next_off[p] = first + n;
        /* drop what was appended: keep the other partitions' records */
        size_t k = 0;
        for (size_t i = 0; i < o->n_pend; i++)
            if (o->pend[i].part != p)
                o->pend[k++] = o->pend[i];
        o->n_pend = k;
    }
    free(recs);
    if (!o->n_pend)
        buf_reset(&o->data);
    return rc;
}

static size_t pending_bytes(const rule_rt *rt)
{
    return (rt->out ? buf_used(&rt->out->data) : 0) +
           (rt->late_out ? buf_used(&rt->late_out->data) : 0);
}

/* Whether the rule must pause reading: its store pushed back (until an
 * append is acknowledged), its pending output is above the bound, or its
 * sink is not writable (until on_drain). */
static void update_blocked(rule_rt *rt)
{
    const rules_sink_ops *ops = rt->rs->sinks;
    rt->blocked = rt->efull || pending_bytes(rt) > RULES_OUT_MAX ||
                  (rt->sink && ops && ops->writable && !ops->writable(rt->sink));
}

static int rule_flush(rule_rt *rt)
{
    int rc = out_flush(rt, rt->out);
    if (!rc)
        rc = out_flush(rt, rt->late_out);
    rt->efull = rc == WEIR_EFULL;
    if (rc == WEIR_EFULL) {
        rt->blocked = true;
    } else if (rc) {
        fail_rule(rt, "derived stream append failed: %s", weir_strerror(rc));
    }
    return rc;
}

static bool has_col(const eng_row *row, const char *name)
{
    for (uint32_t i = 0; i < row->n_cols; i++)
        if (!strcmp(row->names[i], name))
            return true;
    return false;
}

/* Encodes the row as a record and queues it. */
static int out_add(rules *rs, out_stream *o, const eng_row *row)
{
    enum { EXTRA = 4 };
    uint32_t n = row->n_cols;
    rec_field stackf[64];
    rec_field *f = n + EXTRA <= 64 ? stackf : malloc((n + EXTRA) * sizeof(*f));
    if (!f)
        return WEIR_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        size_t l = strlen(row->names[i]);
        /* duplicate names (a * next to a named column) keep the first */
        bool dup = false;
        for (uint32_t j = 0; j < k && !dup; j++)
            dup = f[j].name_len == l && !memcmp(f[j].name, row->names[i], l);
        if (dup || l > 65535)
            continue;
        f[k++] = (rec_field){.name = row->names[i], .name_len = (uint16_t)l, .v = row->vals[i]};
    }
    if (!has_col(row, "ts"))
        f[k++] = (rec_field){.name = "ts", .name_len = 2,
                             .v = {.type = REC_INT, .u.i = row->ts}};
    if (row->window_end && !has_col(row, "window_start") && !has_col(row, "window_end")) {
        f[k++] = (rec_field){.name = "window_start", .name_len = 12,
                             .v = {.type = REC_INT, .u.i = row->window_start}};
        f[k++] = (rec_field){.name = "window_end", .name_len = 10,
                             .v = {.type = REC_INT, .u.i = row->window_end}};
    }
    if (!has_col(row, "_id"))
        f[k++] = (rec_field){.name = "_id", .name_len = 3,
                             .v = {.type = REC_INT, .u.i = (int64_t)row->id}};
    record r = {.fields = f, .n_fields = k};
    buf_reset(&rs->enc);
    int rc = record_encode(&r, &rs->enc);
    if (f != stackf)
        free(f);
    if (rc)
        return rc;
    if (o->n_pend == o->cap_pend) {
        size_t nc = o->cap_pend ? o->cap_pend * 2 : 64;
        pend_rec *np = realloc(o->pend, nc * sizeof(*np));
        if (!np)
            return WEIR_ENOMEM;
        o->pend = np;
        o->cap_pend = nc;
    }
    uint32_t klen = row->key ? row->key_len : 0;
    pend_rec *pr = &o->pend[o->n_pend];
    pr->part = o->nparts > 1 ? stream_partition_for(o->s, (const uint8_t *)row->key, klen) : 0;
    pr->ts = row->ts;
    pr->key_off = buf_used(&o->data);
    pr->key_len = klen;
    if (klen && (rc = buf_append(&o->data, row->key, klen)))
        return rc;
    pr->val_off = buf_used(&o->data);
    pr->val_len = (uint32_t)buf_used(&rs->enc);
    if ((rc = buf_append(&o->data, buf_head(&rs->enc), buf_used(&rs->enc))))
        return rc;
    o->n_pend++;
    return WEIR_OK;
}

static void lat_record(rule_rt *rt, int64_t src_commit_ns)
{
    if (src_commit_ns <= 0)
        return;
    int64_t d = weir_wall_ns() - src_commit_ns;
    if (d < 0)
        d = 0;
    rt->lat_last_ns = d;
    rt->lat_sum_ms += (double)d / 1e6;
    rt->lat_n++;
    uint64_t us = (uint64_t)d / 1000;
    unsigned b = 0;
    while (b < LAT_BUCKETS - 1 && (1ull << b) < us)
        b++;
    rt->lat_hist[b]++;
}

static double lat_p99_ms(const rule_rt *rt)
{
    if (!rt->lat_n)
        return 0;
    uint64_t want = rt->lat_n - rt->lat_n / 100, acc = 0;
    for (unsigned b = 0; b < LAT_BUCKETS; b++) {
        acc += rt->lat_hist[b];
        if (acc >= want)
            return (double)(1ull << b) / 1000.0; /* bucket upper bound */
    }
    return 0;
}

static int ensure_stream(rules *rs, const char *name, out_stream **out, char *err,
                         size_t errlen);

static int on_emit(void *arg, const eng_row *row)
{
    rule_rt *rt = arg;
    int rc = WEIR_OK;
    rt->dirty = true;
    if (row->late) {
        rt->late++;
        if (!rt->late_out) {
            /* the first late record: create the side output */
            char name[160], err[256];
            snprintf(name, sizeof(name), "%s.late", rt->name);
            if ((rc = ensure_stream(rt->rs, name, &rt->late_out, err, sizeof(err)))) {
                static wlog_limit lim;
                wlog_limited(&lim, WLOG_WARN, "rules", "late_output", "rule=%s error=\"%s\"",
                             rt->name, err);
                return WEIR_OK;
            }
        }
    }
    out_stream *o = row->late ? rt->late_out : rt->out;
    if (o) {
        if (o->skip.n || o->skip.has_zero) {
            if (idset_has(&o->skip, row->id)) {
                rt->skipped++;
                return WEIR_OK;
            }
        }
        if ((rc = out_add(rt->rs, o, row)))
            return rc;
    } else if (row->late) {
        return WEIR_OK;
    } else if (rt->sink) {
        const rules_sink_ops *ops = rt->rs->sinks;
        if (ops->emit(rt->sink, row, ++rt->out_seq))
            rt->emit_errors++;
        if (ops->writable && !ops->writable(rt->sink))
            rt->blocked = true; /* until on_drain */
    }
    if (!row->late) {
        rt->out_rows++;
        lat_record(rt, row->src_commit_ns);
    }
    for (rules_tap *t = rt->taps; t; t = t->next)
        t->cb(t->arg, row);
    return WEIR_OK;
}

/* ---- Sources ------------------------------------------------------------ */

static void on_watch(void *arg, uint32_t partition, uint64_t end_offset)
{
    (void)partition;
    (void)end_offset;
    src *s = arg;
    kick(s->rs);
}

static src *src_get(rules *rs, const char *name)
{
    for (src *s = rs->srcs; s; s = s->next)
        if (!strcmp(s->name, name)) {
            s->refs++;
            return s;
        }
    ingest_stream *is = ingest_find(rs->in, name);
    if (!is)
        return NULL;
    src *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->rs = rs;
    s->name = strdup(name);
    s->is = is;
    s->s = ingest_stream_store(is);
    s->nparts = stream_partitions(s->s);
    s->parts = calloc(s->nparts, sizeof(*s->parts));
    arena_init(&s->ar, RULES_DECODE_ARENA);
    if (!s->name || !s->parts || !(s->w = stream_watch_add(s->s, on_watch, s))) {
        free(s->name);
        free(s->parts);
        free(s);
        return NULL;
    }
    ingest_stream_hold(is);
    s->refs = 1;
    s->next = rs->srcs;
    rs->srcs = s;
    return s;
}

static void src_put(src *s)
{
    if (--s->refs)
        return;
    rules *rs = s->rs;
    for (src **pp = &rs->srcs; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    stream_watch_remove(s->w);
    for (uint32_t p = 0; p < s->nparts; p++)
        if (s->parts[p].rd)
            stream_reader_close(s->parts[p].rd);
    ingest_stream_release(s->is);
    arena_free(&s->ar);
    free(s->parts);
    free(s->name);
    free(s);
}

static bool group_empty(const src_part *sp)
{
    for (cpart *m = sp->members; m; m = m->next)
        if (m->live)
            return false;
    return true;
}

/* A live member leaves the group and reads on its own. */
static int cpart_detach(cpart *cp)
{
    src *s = cp->c->src;
    cp->live = false;
    cp->has_la = false;
    int rc = stream_reader_open(s->s, cp->p, STREAM_POS_OFFSET, (int64_t)cp->pos, &cp->rd);
    src_part *sp = &s->parts[cp->p];
    if (group_empty(sp) && sp->rd) {
        stream_reader_close(sp->rd);
        sp->rd = NULL;
    }
    return rc;
}

static void consumer_close(consumer *c)
{
    if (!c->src)
        return;
    src *s = c->src;
    for (uint32_t p = 0; p < s->nparts; p++) {
        cpart *cp = &c->parts[p];
        src_part *sp = &s->parts[p];
        for (cpart **pp = &sp->members; *pp; pp = &(*pp)->next)
            if (*pp == cp) {
                *pp = cp->next;
                break;
            }
        if (cp->rd)
            stream_reader_close(cp->rd);
        if (group_empty(sp) && sp->rd) {
            stream_reader_close(sp->rd);
            sp->rd = NULL;
        }
    }
    free(c->parts);
    c->parts = NULL;
    src_put(s);
    c->src = NULL;
}

/* offsets: the stored next offsets (JSON array) or NULL (from the end). */
static int consumer_open(rules *rs, rule_rt *rt, uint32_t input, const char *stream_name,
                         json_t *offsets, char *err, size_t errlen)
{
    consumer *c = &rt->cons[input];
    c->rt = rt;
    c->input = input;
    src *s = src_get(rs, stream_name);
    if (!s) {
        snprintf(err, errlen, "no stream named '%s'", stream_name);
        return WEIR_ENOTFOUND;
    }
    c->src = s;
    c->parts = calloc(s->nparts, sizeof(cpart));
    if (!c->parts) {
        src_put(s);
        c->src = NULL;
        return WEIR_ENOMEM;
    }
    for (uint32_t p = 0; p < s->nparts; p++) {
        cpart *cp = &c->parts[p];
        cp->c = c;
        cp->p = p;
        json_t *o = json_array_get(offsets, p);
        uint64_t end = stream_end_offset(s->s, p);
        cp->pos = json_is_integer(o) ? (uint64_t)json_integer_value(o) : end;
        if (cp->pos < stream_start_offset(s->s, p)) {
            wlog_warn("rules", "offset_gone", "rule=%s stream=%s partition=%u lost=%llu",
                      rt->name, s->name, p,
                      (unsigned long long)(stream_start_offset(s->s, p) - cp->pos));
            cp->pos = stream_start_offset(s->s, p);
        }
        cp->next = s->parts[p].members;
        s->parts[p].members = cp;
        int rc = stream_reader_open(s->s, p, STREAM_POS_OFFSET, (int64_t)cp->pos, &cp->rd);
        if (rc) {
            snprintf(err, errlen, "cannot read stream '%s': %s", stream_name, weir_strerror(rc));
            return rc; /* the caller closes the consumer */
        }
    }
    return WEIR_OK;
}

/* ---- Pushing records ---------------------------------------------------- */

static bool can_read(const rule_rt *rt)
{
    return rt->state == RS_RUNNING && !rt->failing && !rt->blocked;
}

static void push_one(rule_rt *rt, uint32_t input, const stream_rec *sr, record *rec)
{
    rec->ts = sr->ts;
    rec->key = (const char *)sr->key;
    rec->key_len = (uint16_t)(sr->key_len > 65535 ? 65535 : sr->key_len);
    eng_input_rec in = {.input = input, .partition = sr->partition, .offset = sr->offset,
                        .commit_ns = sr->commit, .rec = rec};
    char err[256] = "";
    rt->in++;
    rt->dirty = true;
    int rc = eng_rule_push(rt->eng, &in, on_emit, rt, err, sizeof(err));
    if (rc == WEIR_EINVAL) {
        rt->errors++;
        static wlog_limit lim;
        wlog_limited(&lim, WLOG_WARN, "rules", "eval_error", "rule=%s offset=%llu error=\"%s\"",
                     rt->name, (unsigned long long)sr->offset, err);
        snprintf(rt->error, sizeof(rt->error), "record %u/%llu skipped: %s", sr->partition,
                 (unsigned long long)sr->offset, err);
    } else if (rc == WEIR_ETOOBIG) {
        fail_rule(rt, "state limit reached (max_state): %s", err[0] ? err : "too much state");
    } else if (rc) {
        fail_rule(rt, "%s", err[0] ? err : weir_strerror(rc));
    }
    if (pending_bytes(rt) > RULES_OUT_MAX) {
        rule_flush(rt);
        update_blocked(rt);
    }
}

/* Decodes a stored record into the src's arena. */
static int decode(src *s, const stream_rec *sr, record *rec)
{
    s->rs->decoded++;
    arena_reset(&s->ar);
    return record_decode(sr->value, sr->value_len, &s->ar, rec);
}

static void bad_record(src *s, const stream_rec *sr, int rc)
{
    static wlog_limit lim;
    wlog_limited(&lim, WLOG_WARN, "rules", "undecodable", "stream=%s partition=%u offset=%llu "
                 "error=\"%s\"", s->name, sr->partition, (unsigned long long)sr->offset,
                 weir_strerror(rc));
}

/* Makes sure a lagging cpart has its next record in cp->la. Returns 1
 * with a record, 0 at the end (after joining the live group when it can),
 * -1 after an error (the rule is failing). */
static int cpart_peek(cpart *cp)
{
    if (cp->has_la)
        return 1;
    src *s = cp->c->src;
    src_part *sp = &s->parts[cp->p];
    for (;;) {
        int rc = stream_reader_next(cp->rd, &cp->la);
        if (rc == WEIR_ECORRUPT)
            continue;
        if (rc == WEIR_EAGAIN) {
            cp->pos = stream_reader_position(cp->rd);
            if (group_empty(sp)) {
                if (sp->rd)
                    stream_reader_close(sp->rd);
                sp->rd = cp->rd;
                sp->pos = cp->pos;
                cp->rd = NULL;
                cp->live = true;
            } else if (sp->pos == cp->pos) {
                stream_reader_close(cp->rd);
                cp->rd = NULL;
                cp->live = true;
            }
            return 0;
        }
        if (rc) {
            fail_rule(cp->c->rt, "cannot read input: %s", weir_strerror(rc));
            return -1;
        }
        cp->has_la = true;
        return 1;
    }
}

/* One turn of a consumer's lagging partitions (a rule catching up from its
 * checkpoint). Their records are merged in event-time order (ties by
 * partition), so a rule replaying a backlog of several partitions sees
 * them interleaved about as they arrived, instead of one partition far
 * ahead of the others (which would make the others' records late).
 * Returns true when more is left. */
static bool pump_consumer(consumer *c)
{
    rule_rt *rt = c->rt;
    src *s = c->src;
    for (int i = 0; i < RULES_BATCH; i++) {
        if (!can_read(rt))
            return false;
        cpart *best = NULL;
        for (uint32_t p = 0; p < s->nparts; p++) {
            cpart *cp = &c->parts[p];
            if (cp->live || !cp->rd || cpart_peek(cp) != 1)
                continue;
            if (!best || cp->la.ts < best->la.ts)
                best = cp;
        }
        if (!best)
            return false;
        best->has_la = false;
        best->pos = best->la.offset + 1;
        record rec;
        int rc = decode(s, &best->la, &rec);
        if (rc) {
            bad_record(s, &best->la, rc);
            continue;
        }
        push_one(rt, c->input, &best->la, &rec);
    }
    return true;
}

/* One turn of a partition's live group. Returns true when more is left. */
static bool pump_live(src *s, src_part *sp)
{
    for (int i = 0; i < RULES_BATCH; i++) {
        /* members that cannot take more leave the group first */
        for (cpart *m = sp->members; m; m = m->next)
            if (m->live && !can_read(m->c->rt) && m->c->rt->state == RS_RUNNING &&
                !m->c->rt->failing)
                cpart_detach(m);
        if (group_empty(sp) || !sp->rd)
            return false;
        stream_rec sr;
        int rc = stream_reader_next(sp->rd, &sr);
        if (rc == WEIR_EAGAIN)
            return false;
        if (rc == WEIR_ECORRUPT)
            continue;
        if (rc) {
            for (cpart *m = sp->members; m; m = m->next)
                if (m->live)
                    fail_rule(m->c->rt, "cannot read input: %s", weir_strerror(rc));
            return false;
        }
        sp->pos = sr.offset + 1;
        record rec;
        rc = decode(s, &sr, &rec);
        if (rc)
            bad_record(s, &sr, rc);
        for (cpart *m = sp->members; m; m = m->next) {
            if (!m->live)
                continue;
            m->pos = sr.offset + 1;
            if (!rc && can_read(m->c->rt))
                push_one(m->c->rt, m->c->input, &sr, &rec);
        }
    }
    return true;
}

static void stop_failing(rules *rs)
{
    for (rule_rt *rt = rs->list; rt; rt = rt->next)
        if (rt->failing && rt->state == RS_RUNNING)
            rule_stop_internal(rt, RS_FAILED, NULL);
}

static void on_idle(uv_idle_t *h)
{
    rules *rs = h->data;
    bool more = false;
    for (rule_rt *rt = rs->list; rt; rt = rt->next)
        for (uint32_t i = 0; i < rt->n_cons && can_read(rt); i++)
            if (rt->cons[i].src)
                more |= pump_consumer(&rt->cons[i]);
    for (src *s = rs->srcs; s; s = s->next) {
        for (uint32_t p = 0; p < s->nparts; p++) {
            src_part *sp = &s->parts[p];
            more |= pump_live(s, sp);
        }
    }
    for (rule_rt *rt = rs->list; rt; rt = rt->next)
        if (rt->state == RS_RUNNING && !rt->failing)
            rule_flush(rt);
    stop_failing(rs);
    if (!more) {
        uv_idle_stop(&rs->idle);
        rs->idle_on = false;
    }
}

static void kick(rules *rs)
{
    if (!rs->idle_on && rs->handles && !rs->shutting_down) {
        uv_idle_start(&rs->idle, on_idle);
        rs->idle_on = true;
    }
}

/* ---- Checkpoints -------------------------------------------------------- */

static json_t *offsets_of(rule_rt *rt)
{
    json_t *ins = json_array();
    for (uint32_t i = 0; i < rt->n_cons; i++) {
        consumer *c = &rt->cons[i];
        json_t *offs = json_array();
        for (uint32_t p = 0; c->src && p < c->src->nparts; p++)
            json_array_append_new(offs, json_integer((json_int_t)c->parts[p].pos));
        json_array_append_new(ins, json_pack("{s:s, s:o}", "stream",
                                             c->src ? c->src->name : "", "offsets", offs));
    }
    json_t *outs = json_array();
    out_stream *os[2] = {rt->out, rt->late_out};
    for (int k = 0; k < 2; k++) {
        if (!os[k])
            continue;
        json_t *offs = json_array();
        for (uint32_t p = 0; p < os[k]->nparts; p++)
            json_array_append_new(offs, json_integer((json_int_t)os[k]->next_off[p]));
        json_array_append_new(outs, json_pack("{s:s, s:o}", "stream", os[k]->name, "offsets",
                                              offs));
    }
    return json_pack("{s:o, s:o}", "inputs", ins, "outputs", outs);
}

/* Takes a snapshot now (between records). */
static void take_checkpoint(rule_rt *rt)
{
    if (rt->ck_wait || rt->state != RS_RUNNING || rt->failing || !rt->eng)
        return;
    if (rule_flush(rt))
        return; /* pushes back or failed: try at the next interval */
    weir_buf b;
    buf_init(&b, 0);
    snapshot *s = calloc(1, sizeof(*s));
    json_t *j = offsets_of(rt);
    int rc = s && j ? eng_rule_checkpoint(rt->eng, &b) : WEIR_ENOMEM;
    if (!rc) {
        s->rule = strdup(rt->name);
        s->offsets_json = json_dumps(j, JSON_COMPACT);
        s->state_len = buf_used(&b);
        s->state = malloc(s->state_len ? s->state_len : 1);
        if (!s->rule || !s->offsets_json || !s->state)
            rc = WEIR_ENOMEM;
        else
            memcpy(s->state, buf_head(&b), s->state_len);
    }
    json_decref(j);
    buf_free(&b);
    if (rc) {
        if (s) {
            s->refs = 1;
            snap_unref(s);
        }
        wlog_error("rules", "checkpoint", "rule=%s error=\"%s\"", rt->name, weir_strerror(rc));
        return;
    }
    s->refs = 1;
    rt->dirty = false;
    s->epoch = ++rt->epoch;
    s->out_seq = rt->out_seq;
    rt->ck_wait = s;
    rt->ck_gen = rt->gen++;
    check_wait(rt);
}

static void on_timer(uv_timer_t *h)
{
    rules *rs = h->data;
    int64_t now = weir_mono_ns(), wall = weir_wall_ns();
    for (rule_rt *rt = rs->list; rt; rt = rt->next) {
        if (rt->state != RS_RUNNING || rt->failing)
            continue;
        char err[256] = "";
        int rc = eng_rule_tick(rt->eng, wall, on_emit, rt, err, sizeof(err));
        if (rc == WEIR_ETOOBIG)
            fail_rule(rt, "state limit reached (max_state): %s", err);
        else if (rc && rc != WEIR_EINVAL)
            fail_rule(rt, "%s", err[0] ? err : weir_strerror(rc));
        if (!rt->failing && rt->dirty && now >= rt->next_ck_ns) {
            take_checkpoint(rt);
            rt->next_ck_ns = now + rt->ck_interval_ns;
        }
        if (!rt->failing)
            rule_flush(rt);
    }
    stop_failing(rs);
}

/* ---- Starting and stopping ---------------------------------------------- */

static bool lookup_stream(void *arg, const char *sname, const char **ts_field)
{
    rules *rs = arg;
    ingest_stream *s = ingest_find(rs->in, sname);
    if (!s)
        return false;
    const rec_schema *sc = ingest_stream_schema(s);
    *ts_field = sc ? sc->ts_field : NULL;
    return true;
}

static int64_t option_ns(const sql_node *v, int64_t dflt)
{
    if (!v)
        return dflt;
    if (v->kind == SQL_N_DURATION)
        return v->ns;
    if (v->kind == SQL_N_LITERAL && v->value.type == REC_INT)
        return v->value.u.i * 1000000; /* milliseconds */
    if (v->kind == SQL_N_LITERAL && v->value.type == REC_STRING && v->value.u.s.len < 32) {
        /* '250ms', '2s', '1m', '1h' */
        char t[32], *end;
        memcpy(t, v->value.u.s.p, v->value.u.s.len);
        t[v->value.u.s.len] = 0;
        double x = strtod(t, &end);
        int64_t unit = !strcmp(end, "ms") ? 1000000
                       : !strcmp(end, "s") || !*end ? 1000000000
                       : !strcmp(end, "m")          ? 60000000000LL
                       : !strcmp(end, "h")          ? 3600000000000LL
                                                    : 0;
        if (end == t || !unit || x < 0 || x > 1e6)
            return dflt;
        return (int64_t)(x * (double)unit);
    }
    return dflt;
}

/* Parses and compiles sql. Runtime options (checkpoint_interval) are
 * taken out of the WITH list before the engine sees it. */
static int compile(rules *rs, const char *sql, size_t len, eng_rule **eng, char **name,
                   char **target, int64_t *ck_ns, sql_error *serr)
{
    arena a;
    arena_init(&a, 16u << 20);
    sql_stmt *st = NULL;
    int rc = sql_parse(sql, len, &a, &st, serr);
    if (rc)
        goto cleanup;
    if (st->kind != SQL_STMT_CREATE_RULE || !st->select) {
        rc = WEIR_EINVAL;
        serr->line = st->line;
        serr->column = st->column;
        snprintf(serr->msg, sizeof(serr->msg), "expected CREATE RULE name AS SELECT ... EMIT TO "
                 "'target'");
        goto cleanup;
    }
    if (!valid_name(st->name)) {
        rc = WEIR_EINVAL;
        serr->line = st->line;
        serr->column = st->column;
        snprintf(serr->msg, sizeof(serr->msg), "a rule name is 1-120 of [A-Za-z0-9_.-]");
        goto cleanup;
    }
    sql_select *s = st->select;
    *ck_ns = RULES_CK_DEFAULT_NS;
    uint32_t k = 0;
    for (uint32_t i = 0; i < s->options.n; i++) {
        sql_option *o = &s->options.items[i];
        if (!strcasecmp(o->key, "checkpoint_interval")) {
            *ck_ns = option_ns(o->value, -1);
            if (*ck_ns < 10000000 || *ck_ns > 3600 * 1000000000LL) {
                rc = WEIR_EINVAL;
                serr->line = o->line;
                serr->column = o->column;
                snprintf(serr->msg, sizeof(serr->msg),
                         "checkpoint_interval must be a duration from 10ms to 1h");
                goto cleanup;
            }
            continue;
        }
        s->options.items[k++] = *o;
    }
    s->options.n = k;
    const char *t = s->emit_target ? s->emit_target : "";
    bool is_stream = !strncmp(t, "stream:", 7);
    if (is_stream ? !valid_name(t + 7)
                  : strncmp(t, "mqtt:", 5) && strncmp(t, "webhook:", 8)) {
        rc = WEIR_EINVAL;
        serr->line = s->line;
        serr->column = s->column;
        snprintf(serr->msg, sizeof(serr->msg),
                 "EMIT TO must be 'stream:NAME', 'mqtt:TOPIC' or 'webhook:URL'");
        goto cleanup;
    }
    eng_limits lim = {.max_state_bytes = 64u << 20, .max_groups = 100000};
    if ((rc = eng_rule_compile(st, lookup_stream, rs, &lim, eng, serr)))
        goto cleanup;
    for (uint32_t i = 0; is_stream && i < eng_rule_n_inputs(*eng); i++)
        if (!strcmp(eng_rule_input(*eng, i), t + 7)) {
            rc = WEIR_EINVAL;
            serr->line = s->line;
            serr->column = s->column;
            snprintf(serr->msg, sizeof(serr->msg), "a rule cannot emit to its own input '%s'",
                     t + 7);
            eng_rule_free(*eng);
            *eng = NULL;
            goto cleanup;
        }
    *name = strdup(st->name);
    *target = strdup(t);
    if (!*name || !*target) {
        free(*name);
        free(*target);
        eng_rule_free(*eng);
        *eng = NULL;
        rc = WEIR_ENOMEM;
    }
cleanup:
    if (rc && serr->line == 0 && !serr->msg[0])
        snprintf(serr->msg, sizeof(serr->msg), "%s", weir_strerror(rc));
    arena_free(&a);
    return rc;
}

static int ensure_stream(rules *rs, const char *name, out_stream **out, char *err, size_t errlen)
{
    ingest_stream *is = ingest_find(rs->in, name);
    if (!is) {
        json_t *def = json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", name, "format", "json",
                                "timestamp", "ts", "time_format", "ns", "partitions", 1);
        int rc = ingest_define(rs->in, def, "api", true, err, errlen, &is);
        json_decref(def);
        if (rc)
            return rc;
    }
    out_stream *o = calloc(1, sizeof(*o));
    if (!o)
        return WEIR_ENOMEM;
    o->name = strdup(name);
    o->is = is;
    o->s = ingest_stream_store(is);
    o->nparts = stream_partitions(o->s);
    o->next_off = calloc(o->nparts, sizeof(uint64_t));
    buf_init(&o->data, 0);
    if (!o->name || !o->next_off) {
        free(o->name);
        free(o->next_off);
        free(o);
        return WEIR_ENOMEM;
    }
    ingest_stream_hold(is);
    for (uint32_t p = 0; p < o->nparts; p++)
        o->next_off[p] = stream_end_offset(o->s, p);
    *out = o;
    return WEIR_OK;
}

/* Reads the ids written after the checkpoint's output offsets. */
static int read_back(out_stream *o, json_t *offsets)
{
    arena a;
    arena_init(&a, RULES_DECODE_ARENA);
    int rc = WEIR_OK;
    for (uint32_t p = 0; p < o->nparts && !rc; p++) {
        json_t *v = json_array_get(offsets, p);
        if (!json_is_integer(v))
            continue;
        stream_reader *r = NULL;
        if ((rc = stream_reader_open(o->s, p, STREAM_POS_OFFSET, json_integer_value(v), &r)))
            break;
        stream_rec sr;
        int n;
        while ((n = stream_reader_next(r, &sr)) != WEIR_EAGAIN) {
            if (n == WEIR_ECORRUPT)
                continue;
            if (n) {
                rc = n;
                break;
            }
            record rec;
            arena_reset(&a);
            if (record_decode(sr.value, sr.value_len, &a, &rec))
                continue;
            const rec_value *id = record_get(&rec, "_id", 3);
            if (id && id->type == REC_INT) {
                if (o->skip.n >= RULES_SKIP_MAX) {
                    rc = WEIR_ETOOBIG;
                    break;
                }
                if ((rc = idset_add(&o->skip, (uint64_t)id->u.i)))
                    break;
            }
        }
        stream_reader_close(r);
    }
    arena_free(&a);
    return rc;
}

static json_t *find_offsets(json_t *list, const char *sname)
{
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        const char *n = json_string_value(json_object_get(e, "stream"));
        if (n && !strcmp(n, sname))
            return json_object_get(e, "offsets");
    }
    return NULL;
}

static void on_sink_drain(void *arg)
{
    rule_rt *rt = arg;
    update_blocked(rt);
    if (!rt->blocked)
        kick(rt->rs);
}

static void release_running(rule_rt *rt)
{
    for (uint32_t i = 0; i < rt->n_cons; i++)
        consumer_close(&rt->cons[i]);
    rt->n_cons = 0;
    if (rt->sink && rt->rs->sinks)
        rt->rs->sinks->close(rt->sink);
    rt->sink = NULL;
    out_free(rt->out);
    out_free(rt->late_out);
    rt->out = rt->late_out = NULL;
    eng_rule_free(rt->eng);
    rt->eng = NULL;
    rt->blocked = rt->failing = rt->efull = false;
}

static int rule_start_internal(rule_rt *rt, char *err, size_t errlen)
{
    rules *rs = rt->rs;
    if (rt->state == RS_RUNNING)
        return WEIR_OK;
    sql_error serr;
    memset(&serr, 0, sizeof(serr));
    char *name = NULL, *target = NULL;
    int64_t ck_ns;
    json_t *offs = NULL;
    catalog_checkpoint ck;
    memset(&ck, 0, sizeof(ck));
    int rc = compile(rs, rt->sql, strlen(rt->sql), &rt->eng, &name, &target, &ck_ns, &serr);
    free(name);
    free(target);
    if (rc) {
        snprintf(err, errlen, "%s", serr.msg);
        goto cleanup;
    }
    rt->ck_interval_ns = ck_ns;
    /* the newest checkpoint: in memory (stopped in this process) or stored */
    snapshot *mem = rt->ck_wait ? rt->ck_wait : rt->last_ck;
    const uint8_t *state = NULL;
    size_t state_len = 0;
    if (mem) {
        offs = json_loads(mem->offsets_json, 0, NULL);
        state = mem->state;
        state_len = mem->state_len;
        rt->out_seq = mem->out_seq;
        rt->epoch = mem->epoch;
    } else if ((rc = catalog_checkpoint_load(rs->cat, rt->name, &ck)) == WEIR_OK) {
        offs = json_loads(ck.offsets_json, 0, NULL);
        state = ck.state;
        state_len = ck.state_len;
        rt->out_seq = ck.out_seq;
        rt->epoch = ck.epoch;
    } else if (rc != WEIR_ENOTFOUND) {
        snprintf(err, errlen, "cannot read the checkpoint: %s", weir_strerror(rc));
        goto cleanup;
    }
    rc = WEIR_OK;
    if (state && (rc = eng_rule_restore(rt->eng, state, state_len))) {
        snprintf(err, errlen, "checkpoint not accepted: %s", weir_strerror(rc));
        goto cleanup;
    }
    /* output */
    const char *t = eng_rule_target(rt->eng);
    json_t *outs = json_object_get(offs, "outputs");
    if (!strncmp(t, "stream:", 7)) {
        if ((rc = ensure_stream(rs, t + 7, &rt->out, err, errlen)))
            goto cleanup;
        json_t *o = find_offsets(outs, rt->out->name);
        if (o && (rc = read_back(rt->out, o))) {
            snprintf(err, errlen, "cannot read back derived stream '%s': %s", rt->out->name,
                     weir_strerror(rc));
            goto cleanup;
        }
    } else {
        if (!rs->sinks || !rs->sinks->open) {
            rc = WEIR_EUNSUPPORTED;
            snprintf(err, errlen, "no sink for target '%s'", t);
            goto cleanup;
        }
        char serrbuf[256] = "";
        if ((rc = rs->sinks->open(rs->sinks->env, rt->name, t, rt->options, on_sink_drain, rt,
                                  &rt->sink, serrbuf, sizeof(serrbuf)))) {
            rt->sink = NULL;
            snprintf(err, errlen, "sink '%s' cannot open: %s", t,
                     serrbuf[0] ? serrbuf : weir_strerror(rc));
            goto cleanup;
        }
    }
    /* The side output exists once a late record was seen (created then). */
    char late_name[160];
    snprintf(late_name, sizeof(late_name), "%s.late", rt->name);
    if (ingest_find(rs->in, late_name) &&
        (rc = ensure_stream(rs, late_name, &rt->late_out, err, errlen)))
        goto cleanup;
    json_t *lo = rt->late_out ? find_offsets(outs, late_name) : NULL;
    if (lo && (rc = read_back(rt->late_out, lo))) {
        snprintf(err, errlen, "cannot read back '%s': %s", late_name, weir_strerror(rc));
        goto cleanup;
    }
    /* inputs */
    json_t *ins = json_object_get(offs, "inputs");
    rt->n_cons = eng_rule_n_inputs(rt->eng);
    for (uint32_t i = 0; i < rt->n_cons; i++) {
        const char *sn = eng_rule_input(rt->eng, i);
        json_t *io = json_array_get(ins, i);
        const char *stored = json_string_value(json_object_get(io, "stream"));
        json_t *o = stored && !strcmp(stored, sn) ? json_object_get(io, "offsets") : NULL;
        if ((rc = consumer_open(rs, rt, i, sn, o, err, errlen)))
            goto cleanup;
    }
    rt->state = RS_RUNNING;
    rt->error[0] = 0;
    catalog_rule_set_error(rs->cat, rt->name, NULL);
    rt->next_ck_ns = weir_mono_ns() + rt->ck_interval_ns;
    if (!state)
        take_checkpoint(rt); /* a new rule: remember where it started */
    kick(rs);
cleanup:
    json_decref(offs);
    catalog_checkpoint_clear(&ck);
    if (rc) {
        release_running(rt);
        rt->state = RS_FAILED;
        set_error(rt, err);
        wlog_error("rules", "start_failed", "rule=%s error=\"%s\"", rt->name, err);
    } else {
        wlog_info("rules", "started", "rule=%s", rt->name);
    }
    return rc;
}

static void rule_stop_internal(rule_rt *rt, rule_state to, const char *why)
{
    (void)why;
    if (rt->state == RS_RUNNING) {
        if (to != RS_FAILED) /* a failed rule keeps its last good checkpoint */
            take_checkpoint(rt);
        release_running(rt);
    }
    rt->state = to;
    if (to == RS_FAILED)
        wlog_warn("rules", "failed", "rule=%s error=\"%s\"", rt->name, rt->error);
}

static void rule_free(rule_rt *rt)
{
    snap_unref(rt->ck_wait);
    snap_unref(rt->last_ck);
    while (rt->taps) {
        rules_tap *t = rt->taps;
        rt->taps = t->next;
        free(t);
    }
    json_decref(rt->options);
    free(rt->name);
    free(rt->sql);
    free(rt->target);
    free(rt);
}

static void rule_maybe_free(rule_rt *rt)
{
    if (!rt->deleted || rt->outstanding[0] || rt->outstanding[1])
        return;
    rules *rs = rt->rs;
    for (rule_rt **pp = &rs->zombies; *pp; pp = &(*pp)->next)
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    rule_free(rt);
}

/* ---- Public API --------------------------------------------------------- */

int rules_new(uv_loop_t *loop, ingest *in, catalog *cat, const rules_sink_ops *sinks,
              rules **out)
{
    rules *rs = calloc(1, sizeof(*rs));
    if (!rs)
        return WEIR_ENOMEM;
    rs->loop = loop;
    rs->in = in;
    rs->cat = cat;
    rs->sinks = sinks;
    rs->q_tail = &rs->q_head;
    buf_init(&rs->enc, 0);
    /* The checkpoint writer's own connection to the same catalog file. */
    const char *file = sqlite3_db_filename(catalog_db(cat), "main");
    if (loop && file && *file) {
        char *dir = strdup(file);
        if (dir && catalog_open(dirname(dir), &rs->wcat))
            rs->wcat = NULL;
        free(dir);
    }
    if (loop) {
        uv_idle_init(loop, &rs->idle);
        uv_timer_init(loop, &rs->timer);
        rs->idle.data = rs->timer.data = rs;
        uv_timer_start(&rs->timer, on_timer, RULES_TIMER_MS, RULES_TIMER_MS);
        rs->handles = true;
    }
    *out = rs;
    return WEIR_OK;
}

static rule_rt *rule_new(rules *rs, const char *name, const char *sql, const char *target,
                         json_t *options)
{
    rule_rt *rt = calloc(1, sizeof(*rt));
    if (!rt)
        return NULL;
    rt->rs = rs;
    rt->name = strdup(name);
    rt->sql = strdup(sql);
    rt->target = strdup(target ? target : "");
    rt->options = options ? json_incref(options) : json_object();
    rt->ck_interval_ns = RULES_CK_DEFAULT_NS;
    if (!rt->name || !rt->sql || !rt->target) {
        rule_free(rt);
        return NULL;
    }
    /* name order */
    rule_rt **pp = &rs->list;
    while (*pp && strcmp((*pp)->name, name) < 0)
        pp = &(*pp)->next;
    rt->next = *pp;
    *pp = rt;
    return rt;
}

static int load_one(void *arg, const catalog_rule *r)
{
    rules *rs = arg;
    sql_error serr;
    memset(&serr, 0, sizeof(serr));
    eng_rule *eng = NULL;
    char *name = NULL, *target = NULL;
    int64_t ck;
    /* the target, for listing even when it does not compile any more */
    if (!compile(rs, r->sql, strlen(r->sql), &eng, &name, &target, &ck, &serr))
        eng_rule_free(eng);
    json_t *opts = json_loads(r->options_json, 0, NULL);
    rule_rt *rt = rule_new(rs, r->name, r->sql, target, opts);
    json_decref(opts);
    free(name);
    free(target);
    if (!rt)
        return WEIR_ENOMEM;
    if (r->last_error)
        snprintf(rt->error, sizeof(rt->error), "%s", r->last_error);
    if (!strcmp(r->desired, "running")) {
        char err[512];
        rule_start_internal(rt, err, sizeof(err));
    }
    return WEIR_OK;
}

int rules_load(rules *rs, char *err, size_t errlen)
{
    int rc = catalog_rule_list(rs->cat, load_one, rs);
    if (rc)
        snprintf(err, errlen, "cannot load rules: %s", weir_strerror(rc));
    return rc;
}

void rules_shutdown(rules *rs)
{
    if (rs->shutting_down)
        return;
    for (rule_rt *rt = rs->list; rt; rt = rt->next)
        if (rt->state == RS_RUNNING)
            rule_stop_internal(rt, RS_STOPPED, "shutdown"); /* desired state stays */
    /* From now on durable snapshots are written at once on this thread:
     * the remaining ones complete when the store closes. */
    rs->shutting_down = true;
    writer_next(rs);
    if (rs->handles) {
        uv_idle_stop(&rs->idle);
        uv_close((uv_handle_t *)&rs->idle, NULL);
        uv_close((uv_handle_t *)&rs->timer, NULL);
        rs->handles = false;
    }
}

void rules_free(rules *rs)
{
    if (!rs)
        return;
    rules_shutdown(rs);
    while (rs->list) {
        rule_rt *rt = rs->list;
        rs->list = rt->next;
        rule_free(rt);
    }
    while (rs->zombies) {
        rule_rt *rt = rs->zombies;
        rs->zombies = rt->next;
        rule_free(rt);
    }
    while (rs->q_head) {
        snapshot *s = rs->q_head;
        rs->q_head = s->next;
        write_sync(rs, s);
        snap_unref(s);
    }
    catalog_close(rs->wcat);
    buf_free(&rs->enc);
    free(rs);
}

int rules_create(rules *rs, const char *sql, size_t len, const json_t *options, bool start,
                 sql_error *serr)
{
    memset(serr, 0, sizeof(*serr));
    if (rs->shutting_down)
        return WEIR_ESHUTDOWN;
    eng_rule *eng = NULL;
    char *name = NULL, *target = NULL;
    int64_t ck;
    char *text = NULL;
    int rc = compile(rs, sql, len, &eng, &name, &target, &ck, serr);
    if (rc)
        return rc;
    eng_rule_free(eng);
    if (find_rule(rs, name)) {
        snprintf(serr->msg, sizeof(serr->msg), "a rule named '%s' exists", name);
        rc = WEIR_EEXIST;
        goto cleanup;
    }
    if (strncmp(target, "stream:", 7) && (!rs->sinks || !rs->sinks->open)) {
        snprintf(serr->msg, sizeof(serr->msg), "no sink for target '%s'", target);
        rc = WEIR_EUNSUPPORTED;
        goto cleanup;
    }
    text = strndup(sql, len);
    char *opts = options ? json_dumps(options, JSON_COMPACT) : NULL;
    rc = text ? catalog_rule_put(rs->cat, name, text, opts ? opts : "{}",
                                 start ? "running" : "stopped")
              : WEIR_ENOMEM;
    free(opts);
    if (rc) {
        if (rc == WEIR_EEXIST)
            snprintf(serr->msg, sizeof(serr->msg), "a rule named '%s' exists", name);
        else
            snprintf(serr->msg, sizeof(serr->msg), "cannot store the rule: %s",
                     weir_strerror(rc));
        goto cleanup;
    }
    rule_rt *rt = rule_new(rs, name, text, target, (json_t *)options);
    if (!rt) {
        catalog_rule_delete(rs->cat, name);
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    wlog_info("rules", "created", "rule=%s target=%s", name, target);
    if (start) {
        char err[512];
        rule_start_internal(rt, err, sizeof(err)); /* a failure shows in its status */
    }
cleanup:
    free(text);
    free(name);
    free(target);
    return rc;
}

int rules_start(rules *rs, const char *name, char *err, size_t errlen)
{
    rule_rt *rt = find_rule(rs, name);
    if (!rt) {
        snprintf(err, errlen, "no rule named '%s'", name);
        return WEIR_ENOTFOUND;
    }
    catalog_rule_set_desired(rs->cat, name, "running");
    if (rt->state == RS_RUNNING)
        return WEIR_OK;
    return rule_start_internal(rt, err, errlen);
}

int rules_stop(rules *rs, const char *name)
{
    rule_rt *rt = find_rule(rs, name);
    if (!rt)
        return WEIR_ENOTFOUND;
    catalog_rule_set_desired(rs->cat, name, "stopped");
    if (rt->state == RS_RUNNING)
        rule_stop_internal(rt, RS_STOPPED, "stop");
    else
        rt->state = RS_STOPPED;
    return WEIR_OK;
}

int rules_restart(rules *rs, const char *name, char *err, size_t errlen)
{
    rule_rt *rt = find_rule(rs, name);
    if (!rt) {
        snprintf(err, errlen, "no rule named '%s'", name);
        return WEIR_ENOTFOUND;
    }
    if (rt->state == RS_RUNNING)
        rule_stop_internal(rt, RS_STOPPED, "restart");
    catalog_rule_set_desired(rs->cat, name, "running");
    return rule_start_internal(rt, err, errlen);
}

int rules_delete(rules *rs, const char *name)
{
    rule_rt *rt = find_rule(rs, name);
    if (!rt)
        return WEIR_ENOTFOUND;
    if (rt->state == RS_RUNNING)
        rule_stop_internal(rt, RS_STOPPED, "delete");
    int rc = catalog_rule_delete(rs->cat, name);
    if (rc && rc != WEIR_ENOTFOUND)
        return rc;
    for (rule_rt **pp = &rs->list; *pp; pp = &(*pp)->next)
        if (*pp == rt) {
            *pp = rt->next;
            break;
        }
    while (rt->taps) {
        rules_tap *t = rt->taps;
        rt->taps = t->next;
        t->cb(t->arg, NULL);
        free(t);
    }
    rt->deleted = true;
    snap_unref(rt->ck_wait);
    rt->ck_wait = NULL;
    rt->next = rs->zombies;
    rs->zombies = rt;
    wlog_info("rules", "deleted", "rule=%s", name);
    rule_maybe_free(rt);
    return WEIR_OK;
}

static const char *state_name(rule_state s)
{
    return s == RS_RUNNING ? "running" : s == RS_FAILED ? "failed" : "stopped";
}

static json_t *rule_json(rule_rt *rt)
{
    eng_rule_stats es;
    memset(&es, 0, sizeof(es));
    if (rt->eng)
        eng_rule_get_stats(rt->eng, &es);
    json_t *m = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:f, s:f, s:f}}",
                          "records_in", (json_int_t)rt->in, "records_out",
                          (json_int_t)rt->out_rows, "late", (json_int_t)rt->late, "errors",
                          (json_int_t)rt->errors, "state_bytes", (json_int_t)es.state_bytes,
                          "duplicates_skipped", (json_int_t)rt->skipped, "out_seq",
                          (json_int_t)rt->out_seq, "checkpoint_epoch",
                          (json_int_t)(rt->last_ck ? rt->last_ck->epoch : rt->epoch), "latency_ms",
                          "last", (double)rt->lat_last_ns / 1e6, "avg",
                          rt->lat_n ? rt->lat_sum_ms / (double)rt->lat_n : 0.0, "p99",
                          lat_p99_ms(rt));
    if (es.watermark)
        json_object_set_new(m, "watermark", json_integer(es.watermark));
    if (rt->emit_errors)
        json_object_set_new(m, "sink_errors", json_integer((json_int_t)rt->emit_errors));
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:O, s:o}", "name", rt->name, "sql", rt->sql,
                          "target", rt->target, "status", state_name(rt->state), "options",
                          rt->options, "metrics", m);
    json_object_set_new(j, "error", rt->error[0] ? json_string(rt->error) : json_null());
    if (rt->sink && rt->rs->sinks && rt->rs->sinks->stats)
        json_object_set_new(j, "sink", rt->rs->sinks->stats(rt->sink));
    if (rt->out)
        json_object_set_new(j, "late_stream", json_string(rt->late_out ? rt->late_out->name : ""));
    return j;
}

json_t *rules_get_json(rules *rs, const char *name)
{
    rule_rt *rt = find_rule(rs, name);
    return rt ? rule_json(rt) : NULL;
}

json_t *rules_list_json(rules *rs)
{
    json_t *a = json_array();
    for (rule_rt *rt = rs->list; rt; rt = rt->next)
        json_array_append_new(a, rule_json(rt));
    return a;
}

void rules_foreach(rules *rs, void (*cb)(void *arg, const char *name, json_t *rule_json),
                   void *arg)
{
    for (rule_rt *rt = rs->list; rt; rt = rt->next) {
        json_t *j = rule_json(rt);
        cb(arg, rt->name, j);
        json_decref(j);
    }
}

rules_tap *rules_tap_add(rules *rs, const char *name, void (*cb)(void *arg, const eng_row *row),
                         void *arg)
{
    rule_rt *rt = find_rule(rs, name);
    if (!rt)
        return NULL;
    rules_tap *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->rt = rt;
    t->cb = cb;
    t->arg = arg;
    t->next = rt->taps;
    rt->taps = t;
    return t;
}

void rules_tap_remove(rules_tap *t)
{
    if (!t)
        return;
    for (rules_tap **pp = &t->rt->taps; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    free(t);
}

/* ---- Metrics ------------------------------------------------------------ */

static void metric(weir_buf *out, const char *name, const char *type, const char *help,
                   rules *rs, double (*val)(rule_rt *))
{
    char line[512];
    int n = snprintf(line, sizeof(line), "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    buf_append(out, line, (size_t)n);
    for (rule_rt *rt = rs->list; rt; rt = rt->next) {
        n = snprintf(line, sizeof(line), "%s{rule=\"%s\"} %.17g\n", name, rt->name, val(rt));
        buf_append(out, line, (size_t)n);
    }
}

static double m_in(rule_rt *rt) { return (double)rt->in; }
static double m_out(rule_rt *rt) { return (double)rt->out_rows; }
static double m_late(rule_rt *rt) { return (double)rt->late; }
static double m_err(rule_rt *rt) { return (double)rt->errors; }
static double m_dup(rule_rt *rt) { return (double)rt->skipped; }
static double m_state(rule_rt *rt)
{
    eng_rule_stats es;
    if (!rt->eng)
        return 0;
    eng_rule_get_stats(rt->eng, &es);
    return (double)es.state_bytes;
}
static double m_lat_last(rule_rt *rt) { return (double)rt->lat_last_ns / 1e9; }
static double m_lat_avg(rule_rt *rt)
{
    return rt->lat_n ? rt->lat_sum_ms / (double)rt->lat_n / 1e3 : 0;
}
static double m_lat_p99(rule_rt *rt) { return lat_p99_ms(rt) / 1e3; }
static double m_running(rule_rt *rt) { return rt->state == RS_RUNNING; }
static double m_failed(rule_rt *rt) { return rt->state == RS_FAILED; }

void rules_metrics_render(void *arg, weir_buf *out)
{
    rules *rs = arg;
    char line[320];
    int n = snprintf(line, sizeof(line),
                     "# HELP weir_rules_records_decoded_total Input records decoded for rules "
                     "(once for all caught-up rules of a stream).\n"
                     "# TYPE weir_rules_records_decoded_total counter\n"
                     "weir_rules_records_decoded_total %llu\n",
                     (unsigned long long)rs->decoded);
    buf_append(out, line, (size_t)n);
    if (!rs->list)
        return;
    metric(out, "weir_rule_records_in_total", "counter", "Input records pushed into the rule.",
           rs, m_in);
    metric(out, "weir_rule_records_out_total", "counter", "Rows the rule emitted.", rs, m_out);
    metric(out, "weir_rule_late_total", "counter", "Late records sent to the side output.", rs,
           m_late);
    metric(out, "weir_rule_errors_total", "counter",
           "Input records skipped for an evaluation error.", rs, m_err);
    metric(out, "weir_rule_duplicates_skipped_total", "counter",
           "Rows not written again after a restart (already in the derived stream).", rs, m_dup);
    metric(out, "weir_rule_state_bytes", "gauge", "Engine state of the rule in bytes.", rs,
           m_state);
    metric(out, "weir_rule_latency_seconds_last", "gauge",
           "Commit of the input record to output of the row, last row.", rs, m_lat_last);
    metric(out, "weir_rule_latency_seconds_avg", "gauge", "Same, average.", rs, m_lat_avg);
    metric(out, "weir_rule_latency_seconds_p99", "gauge",
           "Same, 99th percentile (upper bound of a power-of-two bucket).", rs, m_lat_p99);
    metric(out, "weir_rule_running", "gauge", "1 when the rule runs.", rs, m_running);
    metric(out, "weir_rule_failed", "gauge", "1 when the rule failed.", rs, m_failed);
}

int rules_explain(rules *rs, const char *sql, size_t len, weir_buf *out, sql_error *serr)
{
    memset(serr, 0, sizeof(*serr));
    arena a;
    arena_init(&a, 16u << 20);
    sql_stmt *st = NULL;
    eng_rule *eng = NULL;
    int rc = sql_parse(sql, len, &a, &st, serr);
    if (rc)
        goto cleanup;
    if (st->kind == SQL_STMT_EXPLAIN && st->explained)
        st = st->explained;
    if (!st->select) {
        rc = WEIR_EINVAL;
        serr->line = st->line;
        serr->column = st->column;
        snprintf(serr->msg, sizeof(serr->msg), "EXPLAIN takes a SELECT or a CREATE RULE");
        goto cleanup;
    }
    /* the runtime's own options are not the engine's */
    uint32_t k = 0;
    for (uint32_t i = 0; i < st->select->options.n; i++)
        if (strcasecmp(st->select->options.items[i].key, "checkpoint_interval"))
            st->select->options.items[k++] = st->select->options.items[i];
    st->select->options.n = k;
    eng_limits lim = {.max_state_bytes = 64u << 20, .max_groups = 100000};
    if ((rc = eng_rule_compile(st, lookup_stream, rs, &lim, &eng, serr)))
        goto cleanup;
    rc = eng_rule_explain(eng, out);
cleanup:
    eng_rule_free(eng);
    arena_free(&a);
    return rc;
}
