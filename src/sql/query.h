/* query.h -- bounded history queries: a SELECT without EMIT TO, run once
 * over what a stream has stored.
 *
 *   SELECT time_bucket('1m', ts) AS minute, device, avg(temp)
 *   FROM printers WHERE ts >= now() - INTERVAL '1 day'
 *   GROUP BY minute, device HAVING count(*) > 3 ORDER BY minute DESC LIMIT 100
 *
 * Plan: FROM names a defined stream; WHERE filters records (sql/eval.h for
 * names and semantics); conditions ANDed at the top of WHERE of the form
 * `ts op constant` / `ts BETWEEN c1 AND c2` (op one of > >= < <= =, the
 * constant built from literals, durations and now()) narrow the scan to a
 * [from, to) time range -- `_ts` always, `ts` only when the stream's schema
 * has neither a time column nor a declared field called ts. The WHERE is
 * still evaluated on every record read.
 *
 * GROUP BY items are expressions (or select aliases, or 1-based ordinals
 * of the select list); aggregate calls anywhere in the select list, HAVING
 * and ORDER BY are found by walking the trees and computed with the
 * sql/agg.h table (parameters such as percentile_approx's p must be
 * constants). Aggregates without GROUP BY make one group (which exists
 * even when no record matched: count(*) is 0). Groups live in a hash map
 * of at most SQL_QUERY_MAX_GROUPS entries; more is an error. A select item
 * that is neither grouped nor aggregated is a planning error.
 *
 * Without aggregates the query is a projection; `*` expands to ts, key
 * and then every field name met in the records read, in order of first
 * appearance (rows lacking a field show null). ORDER BY takes expressions,
 * select aliases and ordinals, ASC/DESC, NULLs last either way; ties and
 * queries without ORDER BY follow (event time, partition, offset) for
 * projections and group creation order for groups. LIMIT defaults to and
 * is capped at max_rows; the sort keeps only the best LIMIT rows (a heap),
 * so memory is bounded by LIMIT whatever the stream's size.
 *
 * Not supported yet: windows in GROUP BY (TUMBLING ...), JOIN, DISTINCT,
 * FILTER (WHERE ...) on aggregates, f(DISTINCT x) -- each a clear error
 * pointing at the clause. Memory: one arena of SQL_QUERY_MAX_MEMORY for
 * plan, groups and per-record scratch (reset per record), plus malloc'd
 * result rows bounded by LIMIT.
 *
 * Threads: the caller's; the scan reads segment files directly.
 */
#ifndef WEIR_SQL_QUERY_H
#define WEIR_SQL_QUERY_H

#include "ingest/ingest.h"
#include "sql/lexer.h"

#include <jansson.h>
#include <stddef.h>

#define SQL_QUERY_MAX_GROUPS 100000
#define SQL_QUERY_MAX_MEMORY (256u << 20)
#define SQL_QUERY_MAX_STAR_COLUMNS 1024

/* Runs the SELECT in text[0..len) and sets *result to a new JSON object:
 *   {"columns": ["minute", ...], "rows": [[...], ...],
 *    "stats": {"scanned": N, "ms": T}}
 * Values: NULL null, BOOL, INT, DOUBLE (NaN/inf null), STRING, JSON parsed.
 * Column names: the alias, else a bare column's name, else the
 * expression's canonical text. Returns WEIR_OK; WEIR_EINVAL for a syntax
 * or planning error or a run-time evaluation error, WEIR_EUNSUPPORTED for
 * what history queries do not do yet, WEIR_ENOTFOUND for an unknown
 * stream, WEIR_ETOOBIG when the groups or memory bounds are passed, or a
 * storage error -- with *perr filled (line/column of the offending part
 * when known, 0 otherwise). *result is NULL on error. */
int sql_query_run(ingest *in, const char *text, size_t len, size_t max_rows, json_t **result,
                  sql_error *perr);

#endif
