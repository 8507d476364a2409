/* ast.h -- the syntax tree of weir's SQL dialect, as sql_parse builds it.
 *
 * Everything lives in the arena given to sql_parse; the tree owns nothing
 * and dies with the arena. Strings are NUL-terminated copies (identifiers
 * are kept exactly as written, case included: bare and "quoted" identifiers
 * differ only in which characters they may hold). Every node carries the
 * 1-based line and byte column of its first token so that a planner can
 * point at it in its own error messages.
 *
 * Expressions are sql_node trees; kind says how to read the fields:
 *
 *   kind           fields used
 *   LITERAL        value: REC_NULL, REC_BOOL, REC_INT (>= 0 in expressions;
 *                  a minus is a NEG node), REC_DOUBLE, REC_STRING (NUL-
 *                  terminated, len in value.u.s.len)
 *   DURATION       ns: a length of time (5s, 250ms, INTERVAL '1 day')
 *   TIMESTAMP      ns: nanoseconds since the Unix epoch, UTC
 *   IDENT          qualifier (NULL or "a" of a.b), name
 *   STAR           qualifier (NULL for *, "a" for a.*); select lists only
 *   UNARY          op NEG or NOT; kids[0]
 *   BINARY         op arithmetic, comparison, AND/OR, JSON_GET(->),
 *                  JSON_TEXT(->>); kids[0] op kids[1]
 *   IS_NULL        kids[0] IS [NOT] NULL (negated)
 *   BETWEEN        kids[0] [NOT] BETWEEN kids[1] AND kids[2]
 *   IN             kids[0] [NOT] IN (kids[1..n))
 *   LIKE           kids[0] [NOT] LIKE kids[1]
 *   CASE           [operand if has_operand] then WHEN/THEN pairs, then
 *                  [ELSE result if has_else], all in kids
 *   CAST           CAST(kids[0] AS type); x::type gives the same node
 *   CALL           name(kids...), distinct for f(DISTINCT x), star for
 *                  count(*) (no kids), filter for FILTER (WHERE filter)
 */
#ifndef WEIR_SQL_AST_H
#define WEIR_SQL_AST_H

#include "record/record.h"

#include <stdbool.h>
#include <stdint.h>

#define SQL_NODE_KIND_MAP(X)                                                   \
    X(LITERAL, "literal")                                                      \
    X(DURATION, "duration")                                                    \
    X(TIMESTAMP, "timestamp")                                                  \
    X(IDENT, "identifier")                                                     \
    X(STAR, "star")                                                            \
    X(UNARY, "unary")                                                          \
    X(BINARY, "binary")                                                        \
    X(IS_NULL, "is null")                                                      \
    X(BETWEEN, "between")                                                      \
    X(IN, "in")                                                                \
    X(LIKE, "like")                                                            \
    X(CASE, "case")                                                            \
    X(CAST, "cast")                                                            \
    X(CALL, "call")

typedef enum sql_node_kind {
#define SQL__KIND_ENUM(name, text) SQL_N_##name,
    SQL_NODE_KIND_MAP(SQL__KIND_ENUM)
#undef SQL__KIND_ENUM
    SQL_N__COUNT
} sql_node_kind;

/* Operators with their canonical spelling. */
#define SQL_OP_MAP(X)                                                          \
    X(NONE, "")                                                                \
    X(NEG, "-")                                                                \
    X(NOT, "NOT")                                                              \
    X(ADD, "+")                                                                \
    X(SUB, "-")                                                                \
    X(MUL, "*")                                                                \
    X(DIV, "/")                                                                \
    X(MOD, "%")                                                                \
    X(EQ, "=")                                                                 \
    X(NE, "<>")                                                                \
    X(LT, "<")                                                                 \
    X(LE, "<=")                                                                \
    X(GT, ">")                                                                 \
    X(GE, ">=")                                                                \
    X(AND, "AND")                                                              \
    X(OR, "OR")                                                                \
    X(JSON_GET, "->")                                                          \
    X(JSON_TEXT, "->>")

typedef enum sql_op {
#define SQL__OP_ENUM(name, text) SQL_OP_##name,
    SQL_OP_MAP(SQL__OP_ENUM)
#undef SQL__OP_ENUM
    SQL_OP__COUNT
} sql_op;

/* Column and CAST types. INT and BIGINT are one type (64-bit), as are BOOL
 * and BOOLEAN; the canonical spellings are the names below. */
#define SQL_TYPE_MAP(X)                                                        \
    X(NONE, "")                                                                \
    X(DOUBLE, "DOUBLE")                                                        \
    X(INT, "BIGINT")                                                           \
    X(BOOL, "BOOLEAN")                                                         \
    X(TEXT, "TEXT")                                                            \
    X(TIMESTAMP, "TIMESTAMP")                                                  \
    X(JSON, "JSON")

typedef enum sql_type {
#define SQL__TYPE_ENUM(name, text) SQL_TYPE_##name,
    SQL_TYPE_MAP(SQL__TYPE_ENUM)
#undef SQL__TYPE_ENUM
    SQL_TYPE__COUNT
} sql_type;

typedef struct sql_node sql_node;
struct sql_node {
    sql_node_kind kind;
    sql_op op;             /* UNARY and BINARY; SQL_OP_NONE otherwise */
    int line;              /* 1-based line of the node's first token */
    int column;            /* 1-based byte column of that token */
    bool negated;          /* IS NOT NULL, NOT BETWEEN, NOT IN, NOT LIKE */
    bool distinct;         /* CALL: f(DISTINCT x) */
    bool star;             /* CALL: count(*) */
    bool has_operand;      /* CASE x WHEN ...: kids[0] is x */
    bool has_else;         /* CASE ... ELSE r: r is the last kid */
    sql_type type;         /* CAST target */
    rec_value value;       /* LITERAL */
    int64_t ns;            /* DURATION length, TIMESTAMP instant */
    const char *qualifier; /* IDENT and STAR: the table alias or stream, or NULL */
    const char *name;      /* IDENT column, CALL function name */
    sql_node **kids;       /* children, see the table above */
    uint32_t n_kids;       /* their count */
    sql_node *filter;      /* CALL: FILTER (WHERE filter), or NULL */
};

/* WITH (key = value, ...): value is a LITERAL or DURATION node (a negative
 * number is folded into the literal here). */
typedef struct sql_option {
    const char *key;  /* as written */
    sql_node *value;
    int line, column; /* of the key */
} sql_option;

typedef struct sql_options {
    sql_option *items;
    uint32_t n;
} sql_options;

typedef enum sql_window_kind {
    SQL_WIN_NONE = 0,
    SQL_WIN_TUMBLING, /* size_ns */
    SQL_WIN_HOPPING,  /* size_ns, advance_ns */
    SQL_WIN_SLIDING,  /* size_ns */
    SQL_WIN_SESSION,  /* gap in size_ns */
    SQL_WIN_COUNT,    /* count rows, advance every count_advance (0 = count) */
} sql_window_kind;

typedef struct sql_window {
    sql_window_kind kind;
    int64_t size_ns;       /* TUMBLING/HOPPING/SLIDING size, SESSION gap; > 0 */
    int64_t advance_ns;    /* HOPPING advance; > 0 */
    int64_t count;         /* COUNT window rows; > 0 */
    int64_t count_advance; /* COUNT(n, m): m, or 0 when not given */
} sql_window;

/* One GROUP BY item: an expression, or a window (expr NULL). */
typedef struct sql_group_item {
    sql_node *expr;    /* the grouping expression, or NULL for a window */
    sql_window window; /* kind SQL_WIN_NONE for an expression */
    int line, column;
} sql_group_item;

typedef struct sql_select_item {
    sql_node *expr;    /* a STAR node for * and a.* */
    const char *alias; /* AS alias, or NULL */
    int line, column;
} sql_select_item;

typedef struct sql_order_item {
    sql_node *expr;
    bool desc; /* DESC; ASC is the default */
} sql_order_item;

typedef struct sql_source {
    const char *stream; /* the stream name */
    const char *alias;  /* AS alias, or NULL */
    int line, column;
} sql_source;

typedef struct sql_join {
    bool left;        /* LEFT JOIN; inner otherwise */
    sql_source right; /* the joined stream */
    sql_node *on;     /* the join condition */
    int64_t within_ns; /* WITHIN window, > 0 */
    int line, column; /* of JOIN (or LEFT) */
} sql_join;

typedef struct sql_select {
    bool distinct;
    sql_select_item *items;
    uint32_t n_items;
    sql_source from;
    sql_join *join;          /* NULL when there is no JOIN */
    sql_node *where;         /* NULL when absent */
    sql_group_item *group;
    uint32_t n_group;        /* at most one item is a window */
    sql_node *having;        /* NULL when absent */
    sql_order_item *order;
    uint32_t n_order;
    bool has_limit;
    int64_t limit;           /* >= 0 when has_limit */
    sql_options options;     /* rules only: WITH (...) before EMIT */
    const char *emit_target; /* rules only: EMIT TO 'target'; NULL otherwise */
    int line, column;        /* of SELECT */
} sql_select;

typedef struct sql_column {
    const char *name;
    sql_type type;
    bool key;        /* KEY: the partitioning key */
    bool event_time; /* EVENT TIME: the event-time column */
    int line, column;
} sql_column;

#define SQL_STMT_KIND_MAP(X)                                                   \
    X(SELECT, "SELECT")                                                        \
    X(CREATE_STREAM, "CREATE STREAM")                                          \
    X(CREATE_RULE, "CREATE RULE")                                              \
    X(DROP_STREAM, "DROP STREAM")                                              \
    X(DROP_RULE, "DROP RULE")                                                  \
    X(SHOW_STREAMS, "SHOW STREAMS")                                            \
    X(SHOW_RULES, "SHOW RULES")                                                \
    X(START_RULE, "START RULE")                                                \
    X(STOP_RULE, "STOP RULE")                                                  \
    X(EXPLAIN, "EXPLAIN")

typedef enum sql_stmt_kind {
#define SQL__STMT_ENUM(name, text) SQL_STMT_##name,
    SQL_STMT_KIND_MAP(SQL__STMT_ENUM)
#undef SQL__STMT_ENUM
    SQL_STMT__COUNT
} sql_stmt_kind;

typedef struct sql_stmt sql_stmt;
struct sql_stmt {
    sql_stmt_kind kind;
    int line, column;    /* of the first token */
    const char *name;    /* CREATE/DROP/START/STOP: the stream or rule name */
    sql_select *select;  /* SELECT and CREATE_RULE (with emit_target set) */
    sql_column *columns; /* CREATE_STREAM */
    uint32_t n_columns;
    sql_options options; /* CREATE_STREAM: WITH (...) */
    sql_stmt *explained; /* EXPLAIN: a SELECT or CREATE_RULE statement */
};

/* Names for messages and plans ("binary", "CREATE RULE", "BIGINT", "->");
 * "?" for values out of range. Never NULL. */
const char *sql_node_kind_name(sql_node_kind k);
const char *sql_op_name(sql_op op);
const char *sql_type_name(sql_type t);
const char *sql_stmt_kind_name(sql_stmt_kind k);
const char *sql_window_kind_name(sql_window_kind k);

#endif
