/* print.c -- the canonical SQL text of an AST (contract in parser.h).
 *
 * Canonical form: upper-case keywords, one space between tokens, every
 * compound expression (unary, binary, IS NULL, BETWEEN, IN, LIKE) in
 * parentheses unless it is a whole clause item, so that precedence is
 * visible and printing never depends on it; identifiers bare when they are
 * simple non-reserved words and "quoted" otherwise; durations in the largest
 * unit that is exact; timestamps as RFC 3339 UTC with the shortest exact
 * fraction; INT/BOOL/TEXT types as BIGINT/BOOLEAN/TEXT.
 */
#include "sql/parser.h"

#include "base/err.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

typedef struct printer {
    weir_buf *out;
    int rc; /* first error from the buffer */
} printer;

/* ---- names ---------------------------------------------------------------- */

const char *sql_node_kind_name(sql_node_kind k)
{
    static const char *const names[] = {
#define SQL__KIND_NAME(name, text) text,
        SQL_NODE_KIND_MAP(SQL__KIND_NAME)
#undef SQL__KIND_NAME
    };
    return (unsigned)k < SQL_N__COUNT ? names[k] : "?";
}

const char *sql_op_name(sql_op op)
{
    static const char *const names[] = {
#define SQL__OP_NAME(name, text) text,
        SQL_OP_MAP(SQL__OP_NAME)
#undef SQL__OP_NAME
    };
    return (unsigned)op < SQL_OP__COUNT ? names[op] : "?";
}

const char *sql_type_name(sql_type t)
{
    static const char *const names[] = {
#define SQL__TYPE_NAME(name, text) text,
        SQL_TYPE_MAP(SQL__TYPE_NAME)
#undef SQL__TYPE_NAME
    };
    return (unsigned)t < SQL_TYPE__COUNT && t != SQL_TYPE_NONE ? names[t] : "?";
}

const char *sql_stmt_kind_name(sql_stmt_kind k)
{
    static const char *const names[] = {
#define SQL__STMT_NAME(name, text) text,
        SQL_STMT_KIND_MAP(SQL__STMT_NAME)
#undef SQL__STMT_NAME
    };
    return (unsigned)k < SQL_STMT__COUNT ? names[k] : "?";
}

const char *sql_window_kind_name(sql_window_kind k)
{
    static const char *const names[] = {"?", "TUMBLING", "HOPPING", "SLIDING", "SESSION", "COUNT"};
    return (unsigned)k < sizeof names / sizeof names[0] ? names[k] : "?";
}

/* ---- output --------------------------------------------------------------- */

static void put(printer *pr, const char *s, size_t n)
{
    if (pr->rc == WEIR_OK)
        pr->rc = buf_append(pr->out, s, n);
}

static void puts_(printer *pr, const char *s)
{
    put(pr, s, strlen(s));
}

static void quoted(printer *pr, const char *s, size_t n, char q)
{
    put(pr, &q, 1);
    size_t start = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == q) {
            put(pr, s + start, i + 1 - start);
            put(pr, &q, 1);
            start = i + 1;
        }
    }
    put(pr, s + start, n - start);
    put(pr, &q, 1);
}

static bool simple_word(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static void ident(printer *pr, const char *s)
{
    size_t n = strlen(s);
    /* INTERVAL and TIMESTAMP start literals when a string follows: quote them
     * too so that no context can misread them. */
    if (simple_word(s) && !sql_is_reserved(s, n) && strcasecmp(s, "INTERVAL") != 0 &&
        strcasecmp(s, "TIMESTAMP") != 0)
        put(pr, s, n);
    else
        quoted(pr, s, n, '"');
}

static void duration(printer *pr, int64_t ns)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"d", 86400000000000}, {"h", 3600000000000}, {"m", 60000000000},
        {"s", 1000000000},     {"ms", 1000000},      {"us", 1000},
        {"ns", 1},
    };
    char buf[48];
    if (ns == 0) {
        puts_(pr, "0s");
        return;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ns % units[i].ns == 0) {
            snprintf(buf, sizeof buf, "%" PRId64 "%s", ns / units[i].ns, units[i].name);
            puts_(pr, buf);
            return;
        }
    }
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void timestamp(printer *pr, int64_t ns)
{
    int64_t secs = ns / 1000000000, frac = ns % 1000000000;
    if (frac < 0) {
        frac += 1000000000;
        secs--;
    }
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    char buf[80];
    int n = snprintf(buf, sizeof buf, "TIMESTAMP '%04" PRId64 "-%02u-%02uT%02d:%02d:%02d", y, m, d,
                     (int)(rem / 3600), (int)(rem / 60 % 60), (int)(rem % 60));
    if (frac != 0) {
        int digits = 9;
        while (frac % 10 == 0) {
            frac /= 10;
            digits--;
        }
        n += snprintf(buf + n, sizeof buf - (size_t)n, ".%0*" PRId64, digits, frac);
    }
    snprintf(buf + n, sizeof buf - (size_t)n, "Z'");
    puts_(pr, buf);
}

static void literal(printer *pr, const rec_value *v)
{
    char buf[40];
    switch (v->type) {
    case REC_NULL:
        puts_(pr, "NULL");
        break;
    case REC_BOOL:
        puts_(pr, v->u.b ? "TRUE" : "FALSE");
        break;
    case REC_INT:
        snprintf(buf, sizeof buf, "%" PRId64, v->u.i);
        puts_(pr, buf);
        break;
    case REC_DOUBLE:
        rec_format_double(v->u.d, buf);
        puts_(pr, buf);
        break;
    case REC_STRING:
    case REC_JSON:
        quoted(pr, v->u.s.p, v->u.s.len, '\'');
        break;
    }
}

/* ---- expressions ---------------------------------------------------------- */

static void expr(printer *pr, const sql_node *n, bool top);

static void expr_list(printer *pr, sql_node *const *kids, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (i)
            puts_(pr, ", ");
        expr(pr, kids[i], true);
    }
}

static void expr(printer *pr, const sql_node *n, bool top)
{
    bool paren = !top && (n->kind == SQL_N_UNARY || n->kind == SQL_N_BINARY ||
                          n->kind == SQL_N_IS_NULL || n->kind == SQL_N_BETWEEN ||
                          n->kind == SQL_N_IN || n->kind == SQL_N_LIKE);
    if (paren)
        puts_(pr, "(");
    switch (n->kind) {
    case SQL_N_LITERAL:
        literal(pr, &n->value);
        break;
    case SQL_N_DURATION:
        duration(pr, n->ns);
        break;
    case SQL_N_TIMESTAMP:
        timestamp(pr, n->ns);
        break;
    case SQL_N_IDENT:
    case SQL_N_STAR:
        if (n->qualifier) {
            ident(pr, n->qualifier);
            puts_(pr, ".");
        }
        if (n->kind == SQL_N_STAR)
            puts_(pr, "*");
        else
            ident(pr, n->name);
        break;
    case SQL_N_UNARY:
        puts_(pr, n->op == SQL_OP_NOT ? "NOT " : "-");
        expr(pr, n->kids[0], false);
        break;
    case SQL_N_BINARY:
        expr(pr, n->kids[0], false);
        puts_(pr, " ");
        puts_(pr, sql_op_name(n->op));
        puts_(pr, " ");
        expr(pr, n->kids[1], false);
        break;
    case SQL_N_IS_NULL:
        expr(pr, n->kids[0], false);
        puts_(pr, n->negated ? " IS NOT NULL" : " IS NULL");
        break;
    case SQL_N_BETWEEN:
        expr(pr, n->kids[0], false);
        puts_(pr, n->negated ? " NOT BETWEEN " : " BETWEEN ");
        expr(pr, n->kids[1], false);
        puts_(pr, " AND ");
        expr(pr, n->kids[2], false);
        break;
    case SQL_N_IN:
        expr(pr, n->kids[0], false);
        puts_(pr, n->negated ? " NOT IN (" : " IN (");
        expr_list(pr, n->kids + 1, n->n_kids - 1);
        puts_(pr, ")");
        break;
    case SQL_N_LIKE:
        expr(pr, n->kids[0], false);
        puts_(pr, n->negated ? " NOT LIKE " : " LIKE ");
        expr(pr, n->kids[1], false);
        break;
    case SQL_N_CASE: {
        uint32_t i = 0, end = n->n_kids - (n->has_else ? 1 : 0);
        puts_(pr, "CASE");
        if (n->has_operand) {
            puts_(pr, " ");
            expr(pr, n->kids[i++], true);
        }
        for (; i < end; i += 2) {
            puts_(pr, " WHEN ");
            expr(pr, n->kids[i], true);
            puts_(pr, " THEN ");
            expr(pr, n->kids[i + 1], true);
        }
        if (n->has_else) {
            puts_(pr, " ELSE ");
            expr(pr, n->kids[n->n_kids - 1], true);
        }
        puts_(pr, " END");
        break;
    }
    case SQL_N_CAST:
        puts_(pr, "CAST(");
        expr(pr, n->kids[0], true);
        puts_(pr, " AS ");
        puts_(pr, sql_type_name(n->type));
        puts_(pr, ")");
        break;
    case SQL_N_CALL:
        puts_(pr, n->name);
        puts_(pr, "(");
        if (n->star)
            puts_(pr, "*");
        if (n->distinct)
            puts_(pr, "DISTINCT ");
        expr_list(pr, n->kids, n->n_kids);
        puts_(pr, ")");
        if (n->filter) {
            puts_(pr, " FILTER (WHERE ");
            expr(pr, n->filter, true);
            puts_(pr, ")");
        }
        break;
    default:
        puts_(pr, "?");
        break;
    }
    if (paren)
        puts_(pr, ")");
}

/* ---- statements ----------------------------------------------------------- */

static void options(printer *pr, const sql_options *o)
{
    if (o->n == 0)
        return;
    puts_(pr, " WITH (");
    for (uint32_t i = 0; i < o->n; i++) {
        if (i)
            puts_(pr, ", ");
        if (simple_word(o->items[i].key))
            puts_(pr, o->items[i].key);
        else
            quoted(pr, o->items[i].key, strlen(o->items[i].key), '"');
        puts_(pr, " = ");
        expr(pr, o->items[i].value, true);
    }
    puts_(pr, ")");
}

static void source(printer *pr, const sql_source *s)
{
    ident(pr, s->stream);
    if (s->alias) {
        puts_(pr, " AS ");
        ident(pr, s->alias);
    }
}

static bool window_word(const char *s)
{
    static const char *const w[] = {"TUMBLING", "HOPPING", "SLIDING", "SESSION", "COUNT"};
    for (size_t i = 0; i < sizeof w / sizeof w[0]; i++)
        if (strcasecmp(s, w[i]) == 0)
            return true;
    return false;
}

/* The printed text of g (a whole GROUP BY item) would start with a call
 * named like a window (tumbling(x), or tumbling(x) + 1), which the parser
 * would read as a window. Operands below the top level are in parentheses,
 * so only the node itself and its leftmost operand matter. */
static bool starts_with_window_call(const sql_node *g)
{
    if (g->kind == SQL_N_BINARY || g->kind == SQL_N_IS_NULL || g->kind == SQL_N_BETWEEN ||
        g->kind == SQL_N_IN || g->kind == SQL_N_LIKE)
        g = g->kids[0];
    return g->kind == SQL_N_CALL && window_word(g->name);
}

static void window(printer *pr, const sql_window *w)
{
    char buf[64];
    puts_(pr, sql_window_kind_name(w->kind));
    puts_(pr, "(");
    switch (w->kind) {
    case SQL_WIN_TUMBLING:
    case SQL_WIN_SLIDING:
        puts_(pr, "SIZE ");
        duration(pr, w->size_ns);
        break;
    case SQL_WIN_HOPPING:
        puts_(pr, "SIZE ");
        duration(pr, w->size_ns);
        puts_(pr, ", ADVANCE ");
        duration(pr, w->advance_ns);
        break;
    case SQL_WIN_SESSION:
        puts_(pr, "GAP ");
        duration(pr, w->size_ns);
        break;
    case SQL_WIN_COUNT:
        snprintf(buf, sizeof buf, "%" PRId64, w->count);
        puts_(pr, buf);
        if (w->count_advance) {
            snprintf(buf, sizeof buf, ", %" PRId64, w->count_advance);
            puts_(pr, buf);
        }
        break;
    default:
        break;
    }
    puts_(pr, ")");
}

static void select_(printer *pr, const sql_select *s)
{
    puts_(pr, s->distinct ? "SELECT DISTINCT " : "SELECT ");
    for (uint32_t i = 0; i < s->n_items; i++) {
        if (i)
            puts_(pr, ", ");
        expr(pr, s->items[i].expr, true);
        if (s->items[i].alias) {
            puts_(pr, " AS ");
            ident(pr, s->items[i].alias);
        }
    }
    puts_(pr, " FROM ");
    source(pr, &s->from);
    if (s->join) {
        puts_(pr, s->join->left ? " LEFT JOIN " : " JOIN ");
        source(pr, &s->join->right);
        puts_(pr, " ON ");
        expr(pr, s->join->on, true);
        puts_(pr, " WITHIN ");
        duration(pr, s->join->within_ns);
    }
    if (s->where) {
        puts_(pr, " WHERE ");
        expr(pr, s->where, true);
    }
    for (uint32_t i = 0; i < s->n_group; i++) {
        puts_(pr, i ? ", " : " GROUP BY ");
        const sql_node *g = s->group[i].expr;
        if (g == NULL) {
            window(pr, &s->group[i].window);
        } else {
            /* A call named like a window must not read back as one. */
            bool wrap = starts_with_window_call(g);
            if (wrap)
                puts_(pr, "(");
            expr(pr, g, true);
            if (wrap)
                puts_(pr, ")");
        }
    }
    if (s->having) {
        puts_(pr, " HAVING ");
        expr(pr, s->having, true);
    }
    for (uint32_t i = 0; i < s->n_order; i++) {
        puts_(pr, i ? ", " : " ORDER BY ");
        expr(pr, s->order[i].expr, true);
        if (s->order[i].desc)
            puts_(pr, " DESC");
    }
    if (s->has_limit) {
        char buf[32];
        snprintf(buf, sizeof buf, " LIMIT %" PRId64, s->limit);
        puts_(pr, buf);
    }
    options(pr, &s->options);
    if (s->emit_target) {
        puts_(pr, " EMIT TO ");
        quoted(pr, s->emit_target, strlen(s->emit_target), '\'');
    }
}

static void stmt(printer *pr, const sql_stmt *s)
{
    switch (s->kind) {
    case SQL_STMT_SELECT:
        select_(pr, s->select);
        break;
    case SQL_STMT_CREATE_STREAM:
        puts_(pr, "CREATE STREAM ");
        ident(pr, s->name);
        puts_(pr, " (");
        for (uint32_t i = 0; i < s->n_columns; i++) {
            const sql_column *c = &s->columns[i];
            if (i)
                puts_(pr, ", ");
            ident(pr, c->name);
            puts_(pr, " ");
            puts_(pr, sql_type_name(c->type));
            if (c->key)
                puts_(pr, " KEY");
            if (c->event_time)
                puts_(pr, " EVENT TIME");
        }
        puts_(pr, ")");
        options(pr, &s->options);
        break;
    case SQL_STMT_CREATE_RULE:
        puts_(pr, "CREATE RULE ");
        ident(pr, s->name);
        puts_(pr, " AS ");
        select_(pr, s->select);
        break;
    case SQL_STMT_DROP_STREAM:
    case SQL_STMT_DROP_RULE:
    case SQL_STMT_START_RULE:
    case SQL_STMT_STOP_RULE:
        puts_(pr, sql_stmt_kind_name(s->kind));
        puts_(pr, " ");
        ident(pr, s->name);
        break;
    case SQL_STMT_SHOW_STREAMS:
    case SQL_STMT_SHOW_RULES:
        puts_(pr, sql_stmt_kind_name(s->kind));
        break;
    case SQL_STMT_EXPLAIN:
        puts_(pr, "EXPLAIN ");
        stmt(pr, s->explained);
        break;
    default:
        pr->rc = pr->rc ? pr->rc : WEIR_EINVAL;
        break;
    }
}

int sql_print(const sql_stmt *s, weir_buf *out)
{
    printer pr = {.out = out};
    stmt(&pr, s);
    return pr.rc;
}

int sql_print_expr(const sql_node *n, weir_buf *out)
{
    printer pr = {.out = out};
    expr(&pr, n, true);
    return pr.rc;
}
