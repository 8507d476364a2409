/* rule_int.h -- the inside of a compiled rule (engine/rule.h), shared by the
 * files that implement its operators:
 *
 *   rule.c       compile (planning), push dispatch, per-record projection,
 *                output ids, stats, explain
 *   group.c      the group table (hash map of key values -> group), value
 *                copies, memory accounting
 *   window.c     GROUP BY without a window, TUMBLING/HOPPING (panes),
 *                SLIDING, SESSION, COUNT windows
 *   statefn.c    changes(), lag(), time_since_change(), changed_at()
 *   join.c       the stream-stream interval join
 *   checkpoint.c checkpoint / restore of all of the above
 *
 * Memory: the plan (copied AST, names, slots) lives in r->plan, an arena
 * that dies with the rule. Per-record scratch (evaluated values, merged
 * window states, output rows) lives in r->scratch, reset on every push,
 * so the hot path does not call malloc once groups and pane arrays exist.
 * Long-lived state (groups, panes, buffers) is malloc'd per object and
 * every byte of it is counted in r->state_bytes (eng_state_add), which is
 * what max_state limits.
 */
#ifndef WEIR_ENGINE_RULE_INT_H
#define WEIR_ENGINE_RULE_INT_H

#include "base/arena.h"
#include "engine/rule.h"
#include "sql/agg.h"
#include "sql/eval.h"
#include "sql/plan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_STATE_ALIGN 16
/* Event times a rule accepts: |ts| <= 2^62 ns (about year 2116), so that
 * ts + size + lateness never overflows. */
#define ENG_TIME_MAX (INT64_C(1) << 62)
#define ENG_MAX_PARAMS SQL_PLAN_MAX_PARAMS
#define ENG_LAG_MAX 1000
#define ENG_PANE_HDR 16 /* int64 start, uint32 count, pad: keeps states 16-aligned */

typedef enum eng_mode {
    ENG_MODE_MAP,     /* no aggregation: one output per input record */
    ENG_MODE_GROUP,   /* GROUP BY without window: updated row per record */
    ENG_MODE_PANES,   /* TUMBLING / HOPPING */
    ENG_MODE_SLIDING, /* SLIDING */
    ENG_MODE_SESSION, /* SESSION */
    ENG_MODE_COUNT,   /* COUNT */
    ENG_MODE_JOIN,    /* stream-stream join (no aggregation) */
} eng_mode;

typedef struct eng_agg_slot {
    const sql_node *node;
    const sql_agg *agg;
    rec_value params[ENG_MAX_PARAMS];
    int n_params;
    size_t offset; /* in a group's / pane's state block */
    uint32_t arg0; /* index of its first argument in an entry's argument values */
} eng_agg_slot;

/* A state-function call site: changes(x), lag(x, n), ... */
typedef enum eng_sf_kind { ENG_SF_CHANGES, ENG_SF_LAG, ENG_SF_SINCE, ENG_SF_CHANGED_AT } eng_sf_kind;

typedef struct eng_sf_site {
    const sql_node *node;
    const sql_node *arg; /* the argument, as written (a join rewrites node's) */
    eng_sf_kind kind;
    uint32_t depth; /* values remembered: lag's n, else 1 */
    int side;       /* join rules: the input the argument reads; else 0 */
} eng_sf_site;

/* An owned copy of a value: the bytes of a string live in `mem` (malloc'd,
 * reused across updates). */
typedef struct eng_val {
    rec_value v;
    char *mem;
    uint32_t cap;
} eng_val;

/* Per key and call site. */
typedef struct eng_sf_state {
    eng_val *ring; /* depth values, newest at (head + n - 1) % depth */
    uint32_t head, n;
    bool has_change;
    int64_t change_ts;
} eng_sf_state;

/* A buffered row of a SLIDING / COUNT window: its event time and the
 * evaluated aggregate arguments (strings copied after the struct). */
typedef struct eng_entry {
    int64_t ts;
    uint64_t pass; /* bit i: the row passes aggregate i's FILTER */
    size_t bytes;
    rec_value av[]; /* r->n_av values */
} eng_entry;

typedef struct eng_session {
    int64_t start, last; /* first and last event time; the window is [start, last + gap) */
    int64_t id_start;    /* start at the first emission (identity of updates) */
    uint32_t rev;        /* revision of the next emission */
    bool emitted;        /* the current content has been emitted */
    bool ever_emitted;
    unsigned char *state; /* r->state_size bytes, malloc'd */
} eng_session;

typedef struct eng_rev {
    int64_t start;
    uint32_t rev; /* last emitted revision */
} eng_rev;

/* A buffered join row: a deep copy of the record in one block. */
typedef struct eng_jrec {
    int64_t ts;
    uint32_t partition;
    uint64_t offset;
    int64_t commit_ns;
    bool matched;
    size_t bytes;
    rec_value *sf; /* r->n_sf state-function values (this side's sites; NULL
                      for the other side's), in the same block */
    record rec;    /* fields and strings point into the same block */
} eng_jrec;

typedef struct eng_jbuf {
    eng_jrec **items; /* in arrival order */
    uint32_t n, cap;
} eng_jbuf;

typedef struct eng_group eng_group;
struct eng_group {
    uint64_t hash;
    eng_group *bnext;       /* bucket chain */
    eng_group *prev, *next; /* creation order */
    uint32_t n_vals;
    rec_value *vals; /* the key values (deep copies in the same block) */
    const char *keytext; /* values joined by '/' */
    uint32_t keylen;
    size_t bytes; /* of this block */

    /* ENG_MODE_GROUP */
    unsigned char *state;
    /* ENG_MODE_PANES: sorted by start, live panes at [p_off, p_off + p_n) */
    unsigned char *panes;
    uint32_t p_off, p_n, p_cap;
    eng_rev *revs;
    uint32_t n_revs, cap_revs;
    /* ENG_MODE_SLIDING / ENG_MODE_COUNT: sorted by ts (SLIDING) or arrival */
    eng_entry **ents;
    uint32_t e_off, e_n, e_cap;
    uint64_t seen; /* COUNT: rows so far */
    unsigned char *run; /* SLIDING: running state of entries [run_lo, end) */
    uint32_t run_lo;    /* absolute index (e_off based) */
    bool run_valid;
    /* ENG_MODE_SESSION: sorted by start */
    eng_session *sess;
    uint32_t s_n, s_cap;
    /* state functions: n_sf entries */
    eng_sf_state *sf;
    /* ENG_MODE_JOIN: buffered rows per side */
    eng_jbuf jb[2];
};

typedef struct eng_gtab {
    eng_group **buckets;
    size_t cap, n;
    eng_group *first, *last;
} eng_gtab;

struct eng_rule {
    arena plan;
    arena scratch;  /* per push */
    arena escratch; /* per emitted group (a close pass may emit many) */
    char *canonical; /* canonical SQL text */
    uint32_t sql_crc;
    const char *name;
    const char *inputs[ENG_MAX_INPUTS];
    const char *aliases[ENG_MAX_INPUTS]; /* the alias, or the stream name */
    const char *ts_fields[ENG_MAX_INPUTS];
    uint32_t n_inputs;
    const char *target;
    sql_select *sel; /* the rule's copy */
    eng_mode mode;

    /* output */
    uint32_t n_cols;
    const sql_node **col_exprs; /* NULL for a * column */
    const char **col_names;
    int star_pos;  /* index of the * item or -1 */
    int star_side; /* join: -1 all, 0 / 1 one side */

    /* aggregation */
    uint32_t n_group;
    const sql_node **group_nodes;
    sql_window win;
    int64_t pane; /* PANES: pane length (gcd of size and advance) */
    eng_agg_slot *aggs;
    const sql_node **agg_nodes;
    uint32_t n_aggs, cap_aggs;
    /* Every aggregate call node (by pointer) and its slot: equal calls
     * (avg(t) in the select list and in HAVING) share one slot. */
    const sql_node **ref_nodes;
    uint32_t *ref_slot;
    uint32_t n_refs, cap_refs;
    uint32_t n_av; /* argument values per entry */
    size_t state_size;
    size_t pane_stride;
    bool all_remove; /* every aggregate has remove (SLIDING fast path) */

    /* state functions */
    eng_sf_site *sf;
    const sql_node **sf_nodes;
    uint32_t n_sf;
    eng_gtab sf_keys; /* per record key */

    /* join */
    const sql_node *jkey[2]; /* key expression of each side (evaluated on its own record) */
    const sql_node *jextra;  /* the rest of ON, on the pair, or NULL */
    int64_t within;
    bool left_join;
    bool join_agg;           /* the pairs feed the aggregation of `mode` */
    eng_gtab jgroups;        /* join buffers per key */
    bool have_jsweep;
    int64_t join_sweep;      /* watermark at the last expiry sweep */
    int64_t next_left_check; /* min over unmatched left rows of ts + within */

    /* options */
    int64_t lateness, max_delay, idle_ns;
    size_t max_state;
    uint32_t max_groups;

    /* progress */
    bool have_ts;
    int64_t max_ts, wm;
    bool have_close;
    int64_t next_close;   /* PANES: windows with start < next_close are closed */
    int64_t next_session; /* SESSION: min (last + gap) over open sessions */

    /* counters */
    uint64_t records_in, records_out, late, errors;
    size_t state_bytes;
    uint32_t n_groups_open;
    eng_gtab groups;

    /* the push in progress (emit context) */
    eng_emit_fn emit;
    void *emit_arg;
    const eng_input_rec *cur;
    uint64_t cur_id; /* identity of the row being processed (record or join pair) */
    char *errbuf;
    size_t errlen;
};

/* ---- rule.c ---- */
int eng_fail(eng_rule *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int eng_fail_mem(eng_rule *r);
/* Sends one row; counts it. */
int eng_emit_row(eng_rule *r, eng_row *row);
/* Output ids. */
uint64_t eng_id_record(uint32_t input, uint32_t partition, uint64_t offset, uint32_t row);
uint64_t eng_id_window(int64_t start, int64_t end, const rec_value *vals, uint32_t n,
                       uint32_t rev);
/* Evaluates the select list (and HAVING) of a group row and emits it.
 * agg_vals are the aggregate results. */
int eng_emit_group(eng_rule *r, const eng_group *g, const rec_value *agg_vals, int64_t ws,
                   int64_t we, int64_t ts, uint64_t id, uint32_t rev);
/* A record row for the current push (pre-values filled in). */
void eng_record_row(eng_rule *r, const record *rec, uint32_t input, sql_row *row,
                    const rec_value *pre);
int eng_emit_late(eng_rule *r, const record *rec);
/* Projects a record row (a plain record, or a join's merged record) through
 * the select list and emits it; star_rec is what * expands to. */
int eng_project_emit(eng_rule *r, const sql_row *row, const record *star_rec, const char *key,
                     uint32_t key_len, int64_t ts, uint64_t id);
/* The aggregate results of a state block into the escratch arena. */
int eng_agg_results(eng_rule *r, const unsigned char *state, rec_value **out);

/* ---- group.c ---- */
void eng_gtab_init(eng_gtab *t);
/* Finds or creates the group of vals (hash h); NULL with *rc on error
 * (WEIR_ETOOBIG: limits). created tells which. */
eng_group *eng_gtab_get(eng_rule *r, eng_gtab *t, const rec_value *vals, uint32_t n, uint64_t h,
                        bool *created, int *rc);
eng_group *eng_gtab_find(eng_gtab *t, const rec_value *vals, uint32_t n, uint64_t h);
void eng_gtab_remove(eng_rule *r, eng_gtab *t, eng_group *g);
void eng_gtab_clear(eng_rule *r, eng_gtab *t);
uint64_t eng_hash_vals(const rec_value *vals, uint32_t n);
bool eng_val_same(const rec_value *a, const rec_value *b);
/* Accounts delta bytes of state; WEIR_ETOOBIG (nothing counted) when the
 * limit would be passed. */
int eng_state_add(eng_rule *r, size_t delta);
void eng_state_sub(eng_rule *r, size_t delta);
/* Copies v into an owned eng_val (reusing its memory). */
int eng_val_set(eng_rule *r, eng_val *dst, const rec_value *v);
void eng_val_free(eng_rule *r, eng_val *dst);
/* Bytes a value's string needs. */
size_t eng_val_extra(const rec_value *v);
/* Copies v's string into *dst (advancing it). */
rec_value eng_val_copy(const rec_value *v, char **dst);
/* Frees the mode state of a group (panes, entries, sessions, sf, join rows). */
void eng_group_free_state(eng_rule *r, eng_group *g);

/* ---- window.c ---- */
int eng_window_push(eng_rule *r, const record *rec, const rec_value *pre);
/* The aggregation step for an already built row (a join pair's merged
 * record); rec->ts is the row's event time, r->cur_id its identity. WHERE
 * has been applied. */
int eng_window_push_row(eng_rule *r, const sql_row *row, const record *rec);
/* Closes what the watermark allows. */
int eng_window_advance(eng_rule *r);
int eng_agg_init_state(eng_rule *r, unsigned char *state);

/* ---- statefn.c ---- */
/* Computes the values of the state-function call sites for rec and
 * updates their state; pre receives n_sf values. */
int eng_sf_eval(eng_rule *r, const record *rec, rec_value *pre);
void eng_sf_free(eng_rule *r, eng_group *g);
/* Allocates a key's state for every call site. */
int eng_sf_alloc(eng_rule *r, eng_group *g);
/* The state-function key group of rec (created when new). */
eng_group *eng_sf_group(eng_rule *r, const record *rec, int *rc);

/* ---- join.c ---- */
int eng_join_push(eng_rule *r, const record *rec, const rec_value *pre);
int eng_join_advance(eng_rule *r);
void eng_jrec_free(eng_rule *r, eng_jrec *j);
/* A deep copy of rec (and of the n_sf values sf, which may be NULL). */
eng_jrec *eng_jrec_copy(eng_rule *r, const record *rec, const rec_value *sf, int *rc);
int eng_jbuf_push(eng_rule *r, eng_jbuf *b, eng_jrec *j);

#endif
