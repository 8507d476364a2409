/* rule.h -- a compiled continuous rule: the pure operator pipeline of
 * CREATE RULE ... AS SELECT ... EMIT TO, with no I/O.
 *
 * The runtime (engine/rules.h) reads records from the stream store and
 * pushes them here one at a time, in offset order per input partition; the
 * rule filters, projects, keeps its windows / join buffers / last values,
 * and hands result rows to an emit callback. It never reads a clock on its
 * own: event time comes with each record, processing time with each call,
 * so the same input sequence always yields the same outputs (what makes
 * replay after a crash exact).
 *
 * ## Event time, watermarks, lateness
 *
 * The watermark of a rule is the largest event time pushed so far minus the
 * rule's `max_delay` option (default 0): a record with ts < watermark is
 * out of order. Windows close (emit their final result) when the watermark
 * passes their end. A record is LATE when the window(s) it belongs to have
 * already closed: if it is within `lateness` (rule option, default 0) of
 * the window's end it is added and the window's result is re-emitted as an
 * update (eng_row.revision > 0); beyond that it is counted and sent to the
 * side output (eng_row.late = true, the input record's columns), never
 * silently dropped.
 *
 * ## Output identity (what makes derived streams exactly-once)
 *
 * Every emitted row has a deterministic 64-bit id that does not depend on
 * how input partitions interleaved: for a window result a hash of (window
 * start, window end, group key values, revision); for a per-record output
 * (no GROUP BY window) a hash of (input index, partition, offset, row index
 * within that record). The runtime stores ids with derived records and
 * skips, after a restart, results already written. Per kind of output:
 *
 *   TUMBLING/HOPPING   (window start, end, group key values, revision)
 *   SESSION            (start of the session's first emission, group key
 *                      values, revision): a merged session's update keeps
 *                      the identity of the earliest emitted session it took in
 *   SLIDING            the window of the record (ts - size, ts] and group,
 *                      mixed with the record's (input, partition, offset)
 *   COUNT(n, step)     (group key values, the group's row number)
 *   GROUP BY, no window, and per-record rules: (input, partition, offset, 0)
 *   JOIN               both rows' (input, partition, offset); an unmatched
 *                      LEFT row: its own with a marker. Aggregated joins use
 *                      the pair's identity where a record's is used above.
 *   side output        the late record's (input, partition, offset, 0)
 *
 * ## What a push evaluates, in order
 *
 * State functions (changes, lag, time_since_change, changed_at: per record
 * key, on every record in push order; in a join, the calls reading the
 * record's side), then WHERE, then the mode's work (a join: WHERE on each
 * pair).
 * A record that fails to evaluate is skipped (WEIR_EINVAL, counted in
 * errors); state functions have already taken it by then.
 *
 * ## Memory
 *
 * All state (windows, panes, aggregate states, join buffers, per-key last
 * values) is accounted in bytes; eng_rule_state_bytes reports it and a push
 * that would take it beyond eng_limits.max_state_bytes fails with
 * WEIR_ETOOBIG (the rule is then failed by the runtime, the node lives on).
 * max_groups bounds the open groups the same way (window groups, join keys,
 * state-function keys).
 *
 * Implementation: engine/rule_int.h (the files and their roles); the SQL
 * of rules is documented in docs/sql.md, "Continuous rules: the language".
 */
#ifndef WEIR_ENGINE_RULE_H
#define WEIR_ENGINE_RULE_H

#include "base/buf.h"
#include "record/record.h"
#include "sql/ast.h"
#include "sql/lexer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ENG_MAX_INPUTS 2 /* FROM and the JOINed stream */

typedef struct eng_rule eng_rule;

/* What the compiler needs to know about a stream named in FROM / JOIN.
 * Returns true and fills *ts_field (the stream's event-time field name, or
 * NULL) when the stream exists. */
typedef bool (*eng_stream_lookup_fn)(void *arg, const char *stream, const char **ts_field);

typedef struct eng_limits {
    size_t max_state_bytes; /* default 64 MiB */
    uint32_t max_groups;    /* open groups x windows, default 100000 */
} eng_limits;

/* One emitted row. Everything points into memory valid only during the
 * emit call. */
typedef struct eng_row {
    uint32_t n_cols;          /* eng_rule_n_cols, except with SELECT *: the * column
                                 expands to the record's fields (joins: "a.x", "b.y") */
    const char *const *names; /* column names (alias, bare column, or canonical text) */
    const rec_value *vals;    /* values */
    int64_t ts;               /* event time of the result: window end, or the input record's ts
                                 (a join pair: the later of the two) */
    const char *key;          /* the group's key text (the GROUP BY key values joined by '/'),
                                 or the input record's key; NULL when none */
    uint32_t key_len;
    uint64_t id;              /* deterministic output identity, see above */
    uint32_t revision;        /* 0 first emission of a window, 1.. late updates */
    bool late;                /* side output: a record too late for its window */
    int64_t window_start, window_end; /* windowed results; 0 otherwise */
    int64_t src_commit_ns;    /* commit time (T3) of the input record that caused the
                                 emission, for latency metrics */
} eng_row;

/* Returns WEIR_OK, or an error that the rule propagates out of push. */
typedef int (*eng_emit_fn)(void *arg, const eng_row *row);

/* Compiles a CREATE RULE statement (or a bare SELECT, for tests; or an
 * EXPLAIN of either, which compiles the explained statement) already
 * parsed by sql_parse. The rule copies what it needs from stmt. Options
 * (WITH before EMIT TO): lateness = '2s', max_delay = '500ms' (watermark
 * delay), max_state = '16m'. Errors: WEIR_EINVAL / WEIR_EUNSUPPORTED /
 * WEIR_ENOTFOUND (unknown stream) with err pointing at the offending part. */
int eng_rule_compile(const sql_stmt *stmt, eng_stream_lookup_fn lookup, void *lookup_arg,
                     const eng_limits *lim, eng_rule **out, sql_error *err);
void eng_rule_free(eng_rule *r);

/* The input streams, in input-index order (0 = FROM, 1 = JOIN). */
uint32_t eng_rule_n_inputs(const eng_rule *r);
const char *eng_rule_input(const eng_rule *r, uint32_t i);
/* EMIT TO target text, as written ('mqtt:alerts/{device}', 'stream:x',
 * 'webhook:https://...'). */
const char *eng_rule_target(const eng_rule *r);
/* The output column names (stable for the rule's life). */
uint32_t eng_rule_n_cols(const eng_rule *r);
const char *eng_rule_col(const eng_rule *r, uint32_t i);

/* One input record. rec's ts/key are the stored ones. */
typedef struct eng_input_rec {
    uint32_t input;      /* 0 = FROM stream, 1 = JOIN stream */
    uint32_t partition;
    uint64_t offset;
    int64_t commit_ns;   /* T3 */
    const record *rec;
} eng_input_rec;

/* Processes one record: evaluates WHERE, updates state, emits whatever
 * becomes final (per-record results at once; windows whose end the
 * watermark passed). WEIR_OK, or WEIR_EINVAL with a message in err for an
 * evaluation error of this record (the rule counts it and goes on: the
 * record is skipped, state unchanged; also for an event time beyond
 * +-2^62 ns, about the year 2116), WEIR_ETOOBIG when the state limit
 * is reached (fatal for the rule), or an emit callback's error. */
int eng_rule_push(eng_rule *r, const eng_input_rec *in, eng_emit_fn emit, void *emit_arg,
                  char *err, size_t errlen);

/* Processing-time progress: for streams that go quiet, the runtime calls
 * this periodically; windows whose end + max_delay + idle_ns is older than
 * now_ns in processing time (wall clock compared with event time) are closed
 * as if the watermark had passed. Optional semantic ("idle_timeout" rule
 * option, default off = 0): without it event time alone closes windows. */
int eng_rule_tick(eng_rule *r, int64_t now_ns, eng_emit_fn emit, void *emit_arg, char *err,
                  size_t errlen);

/* Counters since compile (or restore). */
typedef struct eng_rule_stats {
    uint64_t records_in, records_out, late, errors;
    size_t state_bytes;
    int64_t watermark;
} eng_rule_stats;
void eng_rule_get_stats(const eng_rule *r, eng_rule_stats *out);
/* Bytes of state held now (what max_state limits). */
size_t eng_rule_state_bytes(const eng_rule *r);

/* Appends the rule's whole state (windows, panes, join buffers, last
 * values, watermark, counters) in a portable versioned form. */
int eng_rule_checkpoint(const eng_rule *r, weir_buf *out);
/* Replaces the state with a checkpoint of the same rule text (a checksum
 * of the canonical SQL is part of it: WEIR_EINVAL if it differs,
 * WEIR_ECORRUPT for bytes it does not accept, WEIR_ETOOBIG when the state
 * would not fit the rule's limits). A failed restore leaves the rule
 * either untouched (the header or checksum is refused) or empty, as freshly
 * compiled; never half restored. The format is described in
 * engine/checkpoint.c. */
int eng_rule_restore(eng_rule *r, const uint8_t *p, size_t n);

/* EXPLAIN: the plan as JSON text appended to out (operators, window, keys). */
int eng_rule_explain(const eng_rule *r, weir_buf *out);

#endif
