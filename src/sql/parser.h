/* parser.h -- parse one statement of weir's SQL dialect into an AST
 * (ast.h), and print an AST back as canonical SQL text.
 *
 * Statements:
 *   CREATE STREAM name (col TYPE [KEY] [EVENT TIME], ...) [WITH (k = v, ...)]
 *   CREATE RULE name AS <select> [WITH (k = v, ...)] EMIT TO 'target'
 *   DROP STREAM name | DROP RULE name | START RULE name | STOP RULE name
 *   SHOW STREAMS | SHOW RULES
 *   EXPLAIN <select or CREATE RULE>
 *   SELECT [DISTINCT] items FROM s [[AS] a] [[LEFT [OUTER] | INNER] JOIN t
 *     [[AS] b] ON cond WITHIN duration] [WHERE e] [GROUP BY e|window, ...]
 *     [HAVING e] [ORDER BY e [ASC|DESC], ...] [LIMIT n]
 * The rule options (lateness = '2s', ...) sit between the SELECT and EMIT TO:
 * they belong to the rule, not to any clause of the query. A plain SELECT
 * (a history query) takes neither WITH nor EMIT.
 *
 * Windows (GROUP BY only): TUMBLING([SIZE] d), HOPPING([SIZE] d, [ADVANCE] d),
 * SLIDING([SIZE] d), SESSION([GAP] d), COUNT(n[, m]); d is a duration
 * literal (5s) or INTERVAL '5 seconds'.
 *
 * Precedence, loosest first: OR; AND; NOT; comparison, IS [NOT] NULL,
 * [NOT] BETWEEN/IN/LIKE (left to right); + -; * / %; unary -; :: -> ->>.
 *
 * Reserved words (need "quotes" as identifiers): see sql_is_reserved. Other
 * keywords (KEY, TIMESTAMP, COUNT, ...) are also plain identifiers.
 */
#ifndef WEIR_SQL_PARSER_H
#define WEIR_SQL_PARSER_H

#include "base/arena.h"
#include "base/buf.h"
#include "sql/ast.h"
#include "sql/lexer.h"

#include <stddef.h>

/* Defaults for sql_parse. */
#define SQL_MAX_TEXT (1u << 20) /* bytes of statement text */
#define SQL_MAX_DEPTH 256       /* nesting of expressions */
#define SQL_MAX_COLUMNS 1024    /* columns of CREATE STREAM (names checked unique) */
#define SQL_MAX_OPTIONS 64      /* entries of one WITH (...) (keys checked unique) */

/* Parses exactly one statement (an optional trailing ';' allowed) from
 * text[0..len) into *out, allocating the tree in a. Returns WEIR_OK;
 * WEIR_EINVAL for a syntax error, with *err pointing at the offending token;
 * WEIR_ETOOBIG when the text is longer than max_len bytes, nests deeper than
 * max_depth, or the arena runs out of its bound; WEIR_ENOMEM when malloc
 * fails. On error *out is NULL and err is filled (err may be NULL). */
int sql_parse_limited(const char *text, size_t len, size_t max_len, int max_depth,
                      arena *a, sql_stmt **out, sql_error *err);

/* sql_parse_limited with SQL_MAX_TEXT and SQL_MAX_DEPTH. */
int sql_parse(const char *text, size_t len, arena *a, sql_stmt **out, sql_error *err);

/* Appends the canonical text of s to out: upper-case keywords, single
 * spaces, every compound expression below the top level in parentheses,
 * identifiers quoted only when they must be, durations in the largest exact
 * unit, no trailing ';'. parse(print(x)) prints identically. WEIR_OK, or
 * WEIR_EFULL / WEIR_ENOMEM from the buffer (out may hold a partial text). */
int sql_print(const sql_stmt *s, weir_buf *out);

/* Appends the canonical text of one expression (no outer parentheses). */
int sql_print_expr(const sql_node *n, weir_buf *out);

/* The word (case ignored) cannot be a bare identifier. */
bool sql_is_reserved(const char *p, size_t n);

#endif
