/* parser.c -- recursive-descent parser of weir's SQL dialect (grammar in
 * parser.h, tree in ast.h).
 *
 * The parser pulls tokens from the lexer through a three-token lookahead.
 * Every function returns NULL (or false) after the first error, which is
 * kept in p->rc / p->err; nothing after it overwrites it. Recursion is
 * bounded: each nested expression, each unary operator and each link of a
 * left-associative chain counts one level against max_depth, so the height
 * of any tree (and the recursion of the printer and of any planner walking
 * it) stays within a small multiple of max_depth.
 */
#include "sql/parser.h"

#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct parser {
    sql_lexer lx;
    sql_token la[3]; /* lookahead */
    int n_la;        /* valid entries of la */
    sql_token eof;   /* returned by peek after an error */
    arena *a;
    sql_error *err;
    int rc;          /* first error, WEIR_OK while none */
    int depth;       /* current nesting */
    int max_depth;
} parser;

/* ---- tables --------------------------------------------------------------- */

static const char *const reserved[] = {
    "SELECT", "FROM",  "WHERE", "GROUP",   "BY",     "HAVING",   "ORDER", "LIMIT",
    "AS",     "AND",   "OR",    "NOT",     "IS",     "NULL",     "TRUE",  "FALSE",
    "BETWEEN", "IN",   "LIKE",  "CASE",    "WHEN",   "THEN",     "ELSE",  "END",
    "CAST",   "JOIN",  "LEFT",  "INNER",   "OUTER",  "ON",       "WITHIN", "EMIT",
    "WITH",   "DISTINCT", "ASC", "DESC",
};

bool sql_is_reserved(const char *p, size_t n)
{
    sql_token t = {.kind = SQL_TOK_WORD, .p = p, .len = n};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (sql_tok_is(&t, reserved[i]))
            return true;
    return false;
}

static const struct {
    const char *word;
    sql_type type;
} type_words[] = {
    {"DOUBLE", SQL_TYPE_DOUBLE}, {"FLOAT", SQL_TYPE_DOUBLE},  {"INT", SQL_TYPE_INT},
    {"INTEGER", SQL_TYPE_INT},   {"BIGINT", SQL_TYPE_INT},    {"BOOL", SQL_TYPE_BOOL},
    {"BOOLEAN", SQL_TYPE_BOOL},  {"TEXT", SQL_TYPE_TEXT},     {"TIMESTAMP", SQL_TYPE_TIMESTAMP},
    {"JSON", SQL_TYPE_JSON},
};

/* ---- tokens and errors ---------------------------------------------------- */

static void fail(parser *p, const sql_token *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(parser *p, const sql_token *t, const char *fmt, ...)
{
    if (p->rc != WEIR_OK)
        return;
    p->rc = WEIR_EINVAL;
    if (p->err == NULL)
        return;
    p->err->line = t->line;
    p->err->column = t->column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err->msg, sizeof p->err->msg, fmt, ap);
    va_end(ap);
}

static const sql_token *peek(parser *p, int k)
{
    while (p->rc == WEIR_OK && p->n_la <= k) {
        int rc = sql_lex_next(&p->lx, &p->la[p->n_la], p->err);
        if (rc != WEIR_OK) {
            p->rc = rc;
            break;
        }
        p->n_la++;
    }
    if (p->rc != WEIR_OK)
        return &p->eof;
    return &p->la[k];
}

static sql_token next(parser *p)
{
    sql_token t = *peek(p, 0);
    if (p->rc == WEIR_OK) {
        memmove(&p->la[0], &p->la[1], sizeof p->la[0] * 2);
        p->n_la--;
    }
    return t;
}

static bool is_kw(parser *p, int k, const char *kw)
{
    return sql_tok_is(peek(p, k), kw);
}

static bool accept_kw(parser *p, const char *kw)
{
    if (!is_kw(p, 0, kw))
        return false;
    next(p);
    return true;
}

static bool accept(parser *p, sql_tok_kind k)
{
    if (peek(p, 0)->kind != k)
        return false;
    next(p);
    return true;
}

static void fail_expected(parser *p, const char *what, const char *where)
{
    char buf[64];
    const sql_token *t = peek(p, 0);
    fail(p, t, "expected %s%s%s, found %s", what, where[0] ? " " : "", where,
         sql_tok_describe(t, buf, sizeof buf));
}

static bool expect_kw(parser *p, const char *kw, const char *where)
{
    if (accept_kw(p, kw))
        return true;
    fail_expected(p, kw, where);
    return false;
}

static bool expect(parser *p, sql_tok_kind k, const char *what, const char *where)
{
    if (accept(p, k))
        return true;
    fail_expected(p, what, where);
    return false;
}

static bool enter(parser *p)
{
    if (p->rc != WEIR_OK)
        return false;
    if (++p->depth > p->max_depth) {
        const sql_token *t = peek(p, 0);
        fail(p, t, "expression nested too deeply (more than %d levels)", p->max_depth);
        p->rc = WEIR_ETOOBIG;
        return false;
    }
    return true;
}

/* ---- memory --------------------------------------------------------------- */

static void *alloc(parser *p, size_t n)
{
    if (p->rc != WEIR_OK)
        return NULL;
    void *m = arena_alloc(p->a, n);
    if (m == NULL) {
        const sql_token *t = peek(p, 0);
        fail(p, t, "statement too large for the parse memory");
        p->rc = arena_last_error(p->a) == WEIR_ENOMEM ? WEIR_ENOMEM : WEIR_ETOOBIG;
        return NULL;
    }
    memset(m, 0, n);
    return m;
}

/* Appends a zeroed element of size sz to the array *items (n used, *cap
 * allocated), growing it by doubling in the arena. */
static void *push(parser *p, void *items_, uint32_t *n, uint32_t *cap, size_t sz)
{
    void **items = items_;
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 4;
        void *m = alloc(p, (size_t)ncap * sz);
        if (m == NULL)
            return NULL;
        if (*n)
            memcpy(m, *items, (size_t)*n * sz);
        *items = m;
        *cap = ncap;
    }
    void *slot = (char *)*items + (size_t)(*n)++ * sz;
    memset(slot, 0, sz);
    return slot;
}

/* The text of a WORD, QIDENT or STRING token as a NUL-terminated arena copy;
 * *len gets its length when len is not NULL. */
static char *tok_text(parser *p, const sql_token *t, size_t *len)
{
    char *s = alloc(p, t->len + 1);
    if (s == NULL)
        return NULL;
    size_t n;
    if (t->kind == SQL_TOK_WORD) {
        memcpy(s, t->p, t->len);
        n = t->len;
    } else {
        n = sql_tok_unquote(t, s);
    }
    s[n] = 0;
    if (len)
        *len = n;
    return s;
}

static sql_node *node(parser *p, sql_node_kind k, const sql_token *at)
{
    sql_node *n = alloc(p, sizeof *n);
    if (n == NULL)
        return NULL;
    n->kind = k;
    n->line = at->line;
    n->column = at->column;
    return n;
}

static sql_node *node_at(parser *p, sql_node_kind k, const sql_node *at)
{
    sql_token t = {.line = at->line, .column = at->column};
    return node(p, k, &t);
}

static bool set_kids(parser *p, sql_node *n, uint32_t count)
{
    n->kids = alloc(p, sizeof(sql_node *) * (count ? count : 1));
    n->n_kids = count;
    return n->kids != NULL;
}

static sql_node *binary(parser *p, sql_op op, sql_node *l, sql_node *r)
{
    if (l == NULL || r == NULL)
        return NULL;
    sql_node *n = node_at(p, SQL_N_BINARY, l);
    if (n == NULL || !set_kids(p, n, 2))
        return NULL;
    n->op = op;
    n->kids[0] = l;
    n->kids[1] = r;
    return n;
}

/* An identifier: a bare word that is not reserved, or a "quoted" one. */
static bool at_ident(parser *p, int k)
{
    const sql_token *t = peek(p, k);
    return t->kind == SQL_TOK_QIDENT ||
           (t->kind == SQL_TOK_WORD && !sql_is_reserved(t->p, t->len));
}

static char *ident(parser *p, const char *what, const char *where)
{
    if (!at_ident(p, 0)) {
        fail_expected(p, what, where);
        return NULL;
    }
    sql_token t = next(p);
    return tok_text(p, &t, NULL);
}

/* ---- time literals -------------------------------------------------------- */

static const int64_t NS_PER_S = 1000000000;

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, size_t n, size_t *i, int count, int *out)
{
    int v = 0;
    for (int k = 0; k < count; k++) {
        if (*i >= n || s[*i] < '0' || s[*i] > '9')
            return false;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return true;
}

/* 'YYYY-MM-DD[(T| )HH:MM[:SS[.f{1,9}]]][Z|±HH:MM]' to ns since the epoch. */
static bool parse_timestamp(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, sec = 0;
    int64_t frac = 0;
    if (!digits(s, n, &i, 4, &y) || i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &mo) ||
        i >= n || s[i++] != '-' || !digits(s, n, &i, 2, &d))
        return false;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return false;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo == 2 && d == 29 && !leap)
        return false;
    int64_t off = 0;
    if (i < n && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
        i++;
        if (!digits(s, n, &i, 2, &h) || i >= n || s[i++] != ':' || !digits(s, n, &i, 2, &mi))
            return false;
        if (i < n && s[i] == ':') {
            i++;
            if (!digits(s, n, &i, 2, &sec))
                return false;
            if (i < n && s[i] == '.') {
                i++;
                int nd = 0;
                while (i < n && s[i] >= '0' && s[i] <= '9' && nd < 9) {
                    frac = frac * 10 + (s[i++] - '0');
                    nd++;
                }
                if (nd == 0)
                    return false;
                for (; nd < 9; nd++)
                    frac *= 10;
            }
        }
        if (h > 23 || mi > 59 || sec > 59)
            return false;
        if (i < n && (s[i] == 'Z' || s[i] == 'z')) {
            i++;
        } else if (i < n && (s[i] == '+' || s[i] == '-')) {
            int sign = s[i++] == '-' ? -1 : 1, oh, om;
            if (!digits(s, n, &i, 2, &oh))
                return false;
            if (i < n && s[i] == ':')
                i++;
            if (!digits(s, n, &i, 2, &om) || oh > 23 || om > 59)
                return false;
            off = sign * (int64_t)(oh * 3600 + om * 60);
        }
    }
    if (i != n)
        return false;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 +
                   sec - off;
    int64_t ns;
    if (__builtin_mul_overflow(secs, NS_PER_S, &ns) || __builtin_add_overflow(ns, frac, &ns))
        return false;
    *out = ns;
    return true;
}

static int64_t word_unit(const char *w, size_t n)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"nanosecond", 1},
        {"nanoseconds", 1},
        {"us", 1000},
        {"microsecond", 1000},
        {"microseconds", 1000},
        {"ms", 1000000},
        {"millisecond", 1000000},
        {"milliseconds", 1000000},
        {"s", NS_PER_S},
        {"sec", NS_PER_S},
        {"secs", NS_PER_S},
        {"second", NS_PER_S},
        {"seconds", NS_PER_S},
        {"m", 60 * NS_PER_S},
        {"min", 60 * NS_PER_S},
        {"mins", 60 * NS_PER_S},
        {"minute", 60 * NS_PER_S},
        {"minutes", 60 * NS_PER_S},
        {"h", 3600 * NS_PER_S},
        {"hour", 3600 * NS_PER_S},
        {"hours", 3600 * NS_PER_S},
        {"d", 86400 * NS_PER_S},
        {"day", 86400 * NS_PER_S},
        {"days", 86400 * NS_PER_S},
        {"w", 7 * 86400 * NS_PER_S},
        {"week", 7 * 86400 * NS_PER_S},
        {"weeks", 7 * 86400 * NS_PER_S},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strlen(units[i].name) != n)
            continue;
        size_t k = 0;
        while (k < n && (w[k] | 0x20) == units[i].name[k])
            k++;
        if (k == n)
            return units[i].ns;
    }
    return 0;
}

/* '1 day', '5 minutes', '1h 30m', '250ms' to ns. */
static bool parse_interval(const char *s, size_t n, int64_t *out)
{
    size_t i = 0;
    int64_t total = 0;
    int parts = 0;
    for (;;) {
        while (i < n && s[i] == ' ')
            i++;
        if (i == n)
            break;
        if (s[i] < '0' || s[i] > '9')
            return false;
        int64_t v = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, s[i] - '0', &v))
                return false;
            i++;
        }
        while (i < n && s[i] == ' ')
            i++;
        size_t w = i;
        while (i < n && ((s[i] | 0x20) >= 'a' && (s[i] | 0x20) <= 'z'))
            i++;
        int64_t unit = word_unit(s + w, i - w);
        if (unit == 0 || __builtin_mul_overflow(v, unit, &v) ||
            __builtin_add_overflow(total, v, &total))
            return false;
        parts++;
    }
    if (parts == 0)
        return false;
    *out = total;
    return true;
}

/* ---- expressions ---------------------------------------------------------- */

static sql_node *parse_expr(parser *p);

static bool parse_type(parser *p, sql_type *out, const char *where)
{
    const sql_token *t = peek(p, 0);
    for (size_t i = 0; i < sizeof type_words / sizeof type_words[0]; i++) {
        if (sql_tok_is(t, type_words[i].word)) {
            *out = type_words[i].type;
            next(p);
            return true;
        }
    }
    fail_expected(p, "a type (DOUBLE, BIGINT, BOOLEAN, TEXT, TIMESTAMP, JSON)", where);
    return false;
}

/* A comma-separated list of expressions up to ')' (consumed), appended to
 * the kids of n after its first `first` kids. */
static bool parse_expr_list(parser *p, sql_node *n, const char *where)
{
    uint32_t cap = n->n_kids;
    for (;;) {
        sql_node *e = parse_expr(p);
        if (e == NULL)
            return false;
        sql_node **slot = push(p, &n->kids, &n->n_kids, &cap, sizeof *slot);
        if (slot == NULL)
            return false;
        *slot = e;
        if (accept(p, SQL_TOK_COMMA))
            continue;
        return expect(p, SQL_TOK_RPAREN, "',' or ')'", where);
    }
}

static sql_node *parse_case(parser *p, const sql_token *at)
{
    sql_node *n = node(p, SQL_N_CASE, at);
    if (n == NULL)
        return NULL;
    uint32_t cap = 0;
    if (!is_kw(p, 0, "WHEN")) {
        sql_node *op = parse_expr(p);
        sql_node **slot = op ? push(p, &n->kids, &n->n_kids, &cap, sizeof *slot) : NULL;
        if (slot == NULL)
            return NULL;
        *slot = op;
        n->has_operand = true;
    }
    if (!is_kw(p, 0, "WHEN")) {
        fail_expected(p, "WHEN", "in CASE");
        return NULL;
    }
    while (accept_kw(p, "WHEN")) {
        sql_node *w = parse_expr(p);
        if (w == NULL || !expect_kw(p, "THEN", "after the WHEN condition"))
            return NULL;
        sql_node *t = parse_expr(p);
        if (t == NULL)
            return NULL;
        sql_node **s1 = push(p, &n->kids, &n->n_kids, &cap, sizeof *s1);
        if (s1 == NULL)
            return NULL;
        *s1 = w;
        sql_node **s2 = push(p, &n->kids, &n->n_kids, &cap, sizeof *s2);
        if (s2 == NULL)
            return NULL;
        *s2 = t;
    }
    if (accept_kw(p, "ELSE")) {
        sql_node *e = parse_expr(p);
        sql_node **slot = e ? push(p, &n->kids, &n->n_kids, &cap, sizeof *slot) : NULL;
        if (slot == NULL)
            return NULL;
        *slot = e;
        n->has_else = true;
    }
    if (!expect_kw(p, "END", "to close CASE"))
        return NULL;
    return n;
}

static sql_node *parse_call(parser *p, const sql_token *name)
{
    sql_node *n = node(p, SQL_N_CALL, name);
    if (n == NULL || (n->name = tok_text(p, name, NULL)) == NULL)
        return NULL;
    next(p); /* ( */
    if (accept(p, SQL_TOK_STAR)) {
        n->star = true;
        if (!expect(p, SQL_TOK_RPAREN, "')'", "after '*'"))
            return NULL;
    } else if (accept(p, SQL_TOK_RPAREN)) {
        /* no arguments */
    } else {
        n->distinct = accept_kw(p, "DISTINCT");
        if (!parse_expr_list(p, n, "in the argument list"))
            return NULL;
    }
    if (is_kw(p, 0, "FILTER") && peek(p, 1)->kind == SQL_TOK_LPAREN) {
        next(p);
        next(p);
        if (!expect_kw(p, "WHERE", "after FILTER ("))
            return NULL;
        n->filter = parse_expr(p);
        if (n->filter == NULL || !expect(p, SQL_TOK_RPAREN, "')'", "after the FILTER condition"))
            return NULL;
    }
    return n;
}

static sql_node *parse_primary(parser *p)
{
    const sql_token *t = peek(p, 0);
    if (p->rc != WEIR_OK)
        return NULL;
    sql_token tok = *t;
    sql_node *n;
    switch (tok.kind) {
    case SQL_TOK_INT:
    case SQL_TOK_DECIMAL:
        next(p);
        if ((n = node(p, SQL_N_LITERAL, &tok)) == NULL)
            return NULL;
        if (tok.kind == SQL_TOK_INT) {
            n->value.type = REC_INT;
            n->value.u.i = tok.i;
        } else {
            n->value.type = REC_DOUBLE;
            n->value.u.d = tok.d;
        }
        return n;
    case SQL_TOK_DURATION:
        next(p);
        if ((n = node(p, SQL_N_DURATION, &tok)) == NULL)
            return NULL;
        n->ns = tok.i;
        return n;
    case SQL_TOK_STRING: {
        next(p);
        if ((n = node(p, SQL_N_LITERAL, &tok)) == NULL)
            return NULL;
        size_t len;
        char *s = tok_text(p, &tok, &len);
        if (s == NULL)
            return NULL;
        if (len > UINT32_MAX) {
            fail(p, &tok, "string literal too long");
            return NULL;
        }
        n->value.type = REC_STRING;
        n->value.u.s.p = s;
        n->value.u.s.len = (uint32_t)len;
        return n;
    }
    case SQL_TOK_LPAREN:
        next(p);
        n = parse_expr(p);
        if (n == NULL || !expect(p, SQL_TOK_RPAREN, "')'", "to close '('"))
            return NULL;
        return n;
    case SQL_TOK_WORD:
        if (sql_tok_is(&tok, "NULL") || sql_tok_is(&tok, "TRUE") || sql_tok_is(&tok, "FALSE")) {
            next(p);
            if ((n = node(p, SQL_N_LITERAL, &tok)) == NULL)
                return NULL;
            if (!sql_tok_is(&tok, "NULL")) {
                n->value.type = REC_BOOL;
                n->value.u.b = sql_tok_is(&tok, "TRUE");
            }
            return n;
        }
        if ((sql_tok_is(&tok, "INTERVAL") || sql_tok_is(&tok, "TIMESTAMP")) &&
            peek(p, 1)->kind == SQL_TOK_STRING) {
            bool interval = sql_tok_is(&tok, "INTERVAL");
            next(p);
            sql_token s = next(p);
            n = node(p, interval ? SQL_N_DURATION : SQL_N_TIMESTAMP, &tok);
            size_t len;
            char *text = n ? tok_text(p, &s, &len) : NULL;
            if (text == NULL)
                return NULL;
            if (interval ? !parse_interval(text, len, &n->ns) : !parse_timestamp(text, len, &n->ns)) {
                char buf[64];
                fail(p, &s, interval ? "invalid interval %s (e.g. '5 minutes', '1 day', '250ms')"
                                     : "invalid timestamp %s (e.g. '2024-01-01T00:00:00Z')",
                     sql_tok_describe(&s, buf, sizeof buf));
                return NULL;
            }
            return n;
        }
        if (sql_tok_is(&tok, "CASE")) {
            next(p);
            return parse_case(p, &tok);
        }
        if (sql_tok_is(&tok, "CAST")) {
            next(p);
            if (!expect(p, SQL_TOK_LPAREN, "'('", "after CAST"))
                return NULL;
            sql_node *x = parse_expr(p);
            if (x == NULL || !expect_kw(p, "AS", "in CAST"))
                return NULL;
            if ((n = node(p, SQL_N_CAST, &tok)) == NULL || !set_kids(p, n, 1))
                return NULL;
            n->kids[0] = x;
            if (!parse_type(p, &n->type, "in CAST") ||
                !expect(p, SQL_TOK_RPAREN, "')'", "to close CAST"))
                return NULL;
            return n;
        }
        if (!sql_is_reserved(tok.p, tok.len) && peek(p, 1)->kind == SQL_TOK_LPAREN) {
            next(p);
            return parse_call(p, &tok);
        }
        /* fall through */
    case SQL_TOK_QIDENT: {
        if (!at_ident(p, 0))
            break;
        next(p);
        if ((n = node(p, SQL_N_IDENT, &tok)) == NULL || (n->name = tok_text(p, &tok, NULL)) == NULL)
            return NULL;
        if (accept(p, SQL_TOK_DOT)) {
            if (peek(p, 0)->kind == SQL_TOK_STAR) {
                fail(p, peek(p, 0), "'%s.*' is only allowed in the select list", n->name);
                return NULL;
            }
            n->qualifier = n->name;
            n->name = ident(p, "a column name", "after '.'");
            if (n->name == NULL)
                return NULL;
        }
        return n;
    }
    default:
        break;
    }
    fail_expected(p, "an expression", "");
    return NULL;
}

static sql_node *parse_postfix(parser *p)
{
    sql_node *n = parse_primary(p);
    int saved = p->depth;
    while (n != NULL) {
        const sql_token *t = peek(p, 0);
        if (t->kind == SQL_TOK_DCOLON) {
            if (!enter(p))
                return NULL;
            next(p);
            sql_node *c = node_at(p, SQL_N_CAST, n);
            if (c == NULL || !set_kids(p, c, 1))
                return NULL;
            c->kids[0] = n;
            if (!parse_type(p, &c->type, "after '::'"))
                return NULL;
            n = c;
        } else if (t->kind == SQL_TOK_ARROW || t->kind == SQL_TOK_ARROW2) {
            if (!enter(p))
                return NULL;
            sql_op op = t->kind == SQL_TOK_ARROW ? SQL_OP_JSON_GET : SQL_OP_JSON_TEXT;
            next(p);
            n = binary(p, op, n, parse_primary(p));
        } else {
            break;
        }
    }
    p->depth = saved;
    return n;
}

static sql_node *parse_unary(parser *p)
{
    const sql_token *t = peek(p, 0);
    if (t->kind != SQL_TOK_MINUS && t->kind != SQL_TOK_PLUS)
        return parse_postfix(p);
    sql_token tok = next(p);
    if (!enter(p))
        return NULL;
    sql_node *x = parse_unary(p);
    p->depth--;
    if (x == NULL || tok.kind == SQL_TOK_PLUS)
        return x;
    sql_node *n = node(p, SQL_N_UNARY, &tok);
    if (n == NULL || !set_kids(p, n, 1))
        return NULL;
    n->op = SQL_OP_NEG;
    n->kids[0] = x;
    return n;
}

static sql_node *parse_mul(parser *p)
{
    sql_node *n = parse_unary(p);
    int saved = p->depth;
    while (n != NULL) {
        sql_tok_kind k = peek(p, 0)->kind;
        sql_op op = k == SQL_TOK_STAR ? SQL_OP_MUL : k == SQL_TOK_SLASH ? SQL_OP_DIV
                  : k == SQL_TOK_PERCENT ? SQL_OP_MOD : SQL_OP_NONE;
        if (op == SQL_OP_NONE || !enter(p))
            break;
        next(p);
        n = binary(p, op, n, parse_unary(p));
    }
    p->depth = saved;
    return p->rc == WEIR_OK ? n : NULL;
}

static sql_node *parse_add(parser *p)
{
    sql_node *n = parse_mul(p);
    int saved = p->depth;
    while (n != NULL) {
        sql_tok_kind k = peek(p, 0)->kind;
        sql_op op = k == SQL_TOK_PLUS ? SQL_OP_ADD : k == SQL_TOK_MINUS ? SQL_OP_SUB : SQL_OP_NONE;
        if (op == SQL_OP_NONE || !enter(p))
            break;
        next(p);
        n = binary(p, op, n, parse_mul(p));
    }
    p->depth = saved;
    return p->rc == WEIR_OK ? n : NULL;
}

static sql_op cmp_op(sql_tok_kind k)
{
    switch (k) {
    case SQL_TOK_EQ: return SQL_OP_EQ;
    case SQL_TOK_NE: return SQL_OP_NE;
    case SQL_TOK_LT: return SQL_OP_LT;
    case SQL_TOK_LE: return SQL_OP_LE;
    case SQL_TOK_GT: return SQL_OP_GT;
    case SQL_TOK_GE: return SQL_OP_GE;
    default: return SQL_OP_NONE;
    }
}

static sql_node *parse_cmp(parser *p)
{
    sql_node *n = parse_add(p);
    int saved = p->depth;
    while (n != NULL && p->rc == WEIR_OK) {
        sql_op op = cmp_op(peek(p, 0)->kind);
        if (op != SQL_OP_NONE) {
            if (!enter(p))
                break;
            next(p);
            n = binary(p, op, n, parse_add(p));
            continue;
        }
        if (is_kw(p, 0, "IS")) {
            if (!enter(p))
                break;
            next(p);
            sql_node *x = node_at(p, SQL_N_IS_NULL, n);
            if (x == NULL || !set_kids(p, x, 1))
                return NULL;
            x->negated = accept_kw(p, "NOT");
            if (!expect_kw(p, "NULL", x->negated ? "after IS NOT" : "after IS"))
                return NULL;
            x->kids[0] = n;
            n = x;
            continue;
        }
        int k = is_kw(p, 0, "NOT") ? 1 : 0;
        bool between = is_kw(p, k, "BETWEEN"), in = is_kw(p, k, "IN"), like = is_kw(p, k, "LIKE");
        if (!between && !in && !like)
            break;
        if (!enter(p))
            break;
        next(p);
        if (k)
            next(p);
        sql_node *x = node_at(p, between ? SQL_N_BETWEEN : in ? SQL_N_IN : SQL_N_LIKE, n);
        if (x == NULL)
            return NULL;
        x->negated = k == 1;
        if (between) {
            if (!set_kids(p, x, 3))
                return NULL;
            x->kids[0] = n;
            if ((x->kids[1] = parse_add(p)) == NULL || !expect_kw(p, "AND", "in BETWEEN") ||
                (x->kids[2] = parse_add(p)) == NULL)
                return NULL;
        } else if (in) {
            if (!set_kids(p, x, 1))
                return NULL;
            x->kids[0] = n;
            if (!expect(p, SQL_TOK_LPAREN, "'('", "after IN") ||
                !parse_expr_list(p, x, "in the IN list"))
                return NULL;
        } else {
            if (!set_kids(p, x, 2))
                return NULL;
            x->kids[0] = n;
            if ((x->kids[1] = parse_add(p)) == NULL)
                return NULL;
        }
        n = x;
    }
    p->depth = saved;
    return p->rc == WEIR_OK ? n : NULL;
}

static sql_node *parse_not(parser *p)
{
    if (!is_kw(p, 0, "NOT"))
        return parse_cmp(p);
    sql_token tok = next(p);
    if (!enter(p))
        return NULL;
    sql_node *x = parse_not(p);
    p->depth--;
    sql_node *n = x ? node(p, SQL_N_UNARY, &tok) : NULL;
    if (n == NULL || !set_kids(p, n, 1))
        return NULL;
    n->op = SQL_OP_NOT;
    n->kids[0] = x;
    return n;
}

static sql_node *parse_and(parser *p)
{
    sql_node *n = parse_not(p);
    int saved = p->depth;
    while (n != NULL && is_kw(p, 0, "AND") && enter(p)) {
        next(p);
        n = binary(p, SQL_OP_AND, n, parse_not(p));
    }
    p->depth = saved;
    return p->rc == WEIR_OK ? n : NULL;
}

static sql_node *parse_or(parser *p)
{
    sql_node *n = parse_and(p);
    int saved = p->depth;
    while (n != NULL && is_kw(p, 0, "OR") && enter(p)) {
        next(p);
        n = binary(p, SQL_OP_OR, n, parse_and(p));
    }
    p->depth = saved;
    return p->rc == WEIR_OK ? n : NULL;
}

static sql_node *parse_expr(parser *p)
{
    if (!enter(p))
        return NULL;
    sql_node *n = parse_or(p);
    p->depth--;
    return p->rc == WEIR_OK ? n : NULL;
}

/* ---- clauses -------------------------------------------------------------- */

/* A duration for windows and WITHIN: 5s or INTERVAL '5 seconds'; > 0. */
static bool parse_duration(parser *p, int64_t *ns, const char *where)
{
    const sql_token *t = peek(p, 0);
    sql_token at = *t;
    if (t->kind != SQL_TOK_DURATION &&
        !(sql_tok_is(t, "INTERVAL") && peek(p, 1)->kind == SQL_TOK_STRING)) {
        fail_expected(p, "a duration (like 5s or INTERVAL '5 seconds')", where);
        return false;
    }
    sql_node *n = parse_primary(p);
    if (n == NULL)
        return false;
    if (n->ns <= 0) {
        fail(p, &at, "the duration %s must be positive", where);
        return false;
    }
    *ns = n->ns;
    return true;
}

static bool parse_count(parser *p, int64_t *v, const char *where)
{
    const sql_token *t = peek(p, 0);
    if (t->kind != SQL_TOK_INT || t->i <= 0) {
        fail_expected(p, "a positive integer", where);
        return false;
    }
    *v = next(p).i;
    return true;
}

static const struct {
    const char *word;
    sql_window_kind kind;
} window_words[] = {
    {"TUMBLING", SQL_WIN_TUMBLING}, {"HOPPING", SQL_WIN_HOPPING}, {"SLIDING", SQL_WIN_SLIDING},
    {"SESSION", SQL_WIN_SESSION},   {"COUNT", SQL_WIN_COUNT},
};

static sql_window_kind window_at(parser *p)
{
    if (peek(p, 1)->kind != SQL_TOK_LPAREN)
        return SQL_WIN_NONE;
    for (size_t i = 0; i < sizeof window_words / sizeof window_words[0]; i++)
        if (is_kw(p, 0, window_words[i].word))
            return window_words[i].kind;
    return SQL_WIN_NONE;
}

static bool parse_window(parser *p, sql_window *w)
{
    w->kind = window_at(p);
    next(p);
    next(p);
    switch (w->kind) {
    case SQL_WIN_TUMBLING:
    case SQL_WIN_SLIDING:
        accept_kw(p, "SIZE");
        if (!parse_duration(p, &w->size_ns, "for the window size"))
            return false;
        break;
    case SQL_WIN_HOPPING:
        accept_kw(p, "SIZE");
        if (!parse_duration(p, &w->size_ns, "for the window size") ||
            !expect(p, SQL_TOK_COMMA, "','", "after the HOPPING size"))
            return false;
        accept_kw(p, "ADVANCE");
        if (!parse_duration(p, &w->advance_ns, "for the window advance"))
            return false;
        break;
    case SQL_WIN_SESSION:
        accept_kw(p, "GAP");
        if (!parse_duration(p, &w->size_ns, "for the session gap"))
            return false;
        break;
    case SQL_WIN_COUNT:
        if (!parse_count(p, &w->count, "for the COUNT window size"))
            return false;
        if (accept(p, SQL_TOK_COMMA) && !parse_count(p, &w->count_advance, "for the COUNT window advance"))
            return false;
        break;
    default:
        return false;
    }
    return expect(p, SQL_TOK_RPAREN, "')'", "to close the window");
}

static bool parse_options(parser *p, sql_options *o)
{
    if (!expect(p, SQL_TOK_LPAREN, "'('", "after WITH"))
        return false;
    uint32_t cap = 0;
    for (;;) {
        sql_token k = *peek(p, 0);
        if (k.kind != SQL_TOK_WORD && k.kind != SQL_TOK_QIDENT) {
            fail_expected(p, "an option name", "in WITH");
            return false;
        }
        next(p);
        char *key = tok_text(p, &k, NULL);
        if (key == NULL)
            return false;
        if (o->n == SQL_MAX_OPTIONS) {
            fail(p, &k, "more than %d options", SQL_MAX_OPTIONS);
            return false;
        }
        for (uint32_t i = 0; i < o->n; i++) {
            if (strcmp(o->items[i].key, key) == 0) {
                fail(p, &k, "option '%.60s' given twice", key);
                return false;
            }
        }
        if (!expect(p, SQL_TOK_EQ, "'='", "after the option name"))
            return false;
        sql_token v = *peek(p, 0);
        bool neg = false;
        if (v.kind == SQL_TOK_MINUS &&
            (peek(p, 1)->kind == SQL_TOK_INT || peek(p, 1)->kind == SQL_TOK_DECIMAL)) {
            neg = true;
            next(p);
        } else if (!(v.kind == SQL_TOK_STRING || v.kind == SQL_TOK_INT ||
                     v.kind == SQL_TOK_DECIMAL || v.kind == SQL_TOK_DURATION ||
                     sql_tok_is(&v, "TRUE") || sql_tok_is(&v, "FALSE") ||
                     sql_tok_is(&v, "NULL"))) {
            fail_expected(p, "a literal value", "for the option");
            return false;
        }
        sql_node *val = parse_primary(p);
        if (val == NULL)
            return false;
        if (neg) {
            if (val->value.type == REC_INT)
                val->value.u.i = -val->value.u.i;
            else
                val->value.u.d = -val->value.u.d;
            val->line = v.line;
            val->column = v.column;
        }
        sql_option *opt = push(p, &o->items, &o->n, &cap, sizeof *opt);
        if (opt == NULL)
            return false;
        opt->key = key;
        opt->value = val;
        opt->line = k.line;
        opt->column = k.column;
        if (accept(p, SQL_TOK_COMMA))
            continue;
        return expect(p, SQL_TOK_RPAREN, "',' or ')'", "in WITH");
    }
}

static bool parse_source(parser *p, sql_source *s, const char *where)
{
    const sql_token *t = peek(p, 0);
    s->line = t->line;
    s->column = t->column;
    if ((s->stream = ident(p, "a stream name", where)) == NULL)
        return false;
    if (accept_kw(p, "AS")) {
        s->alias = ident(p, "an alias", "after AS");
        return s->alias != NULL;
    }
    if (at_ident(p, 0))
        s->alias = ident(p, "an alias", "");
    return p->rc == WEIR_OK;
}

static bool parse_select_item(parser *p, sql_select_item *it)
{
    sql_token t = *peek(p, 0);
    it->line = t.line;
    it->column = t.column;
    if (t.kind == SQL_TOK_STAR) {
        next(p);
        it->expr = node(p, SQL_N_STAR, &t);
        return it->expr != NULL;
    }
    if (at_ident(p, 0) && peek(p, 1)->kind == SQL_TOK_DOT && peek(p, 2)->kind == SQL_TOK_STAR) {
        next(p);
        next(p);
        next(p);
        it->expr = node(p, SQL_N_STAR, &t);
        return it->expr != NULL && (it->expr->qualifier = tok_text(p, &t, NULL)) != NULL;
    }
    if ((it->expr = parse_expr(p)) == NULL)
        return false;
    if (accept_kw(p, "AS")) {
        it->alias = ident(p, "an alias", "after AS");
        return it->alias != NULL;
    }
    if (at_ident(p, 0))
        it->alias = ident(p, "an alias", "");
    return p->rc == WEIR_OK;
}

static sql_select *parse_select(parser *p, bool rule)
{
    sql_token at = *peek(p, 0);
    if (!expect_kw(p, "SELECT", rule ? "after AS" : ""))
        return NULL;
    sql_select *s = alloc(p, sizeof *s);
    if (s == NULL)
        return NULL;
    s->line = at.line;
    s->column = at.column;
    s->distinct = accept_kw(p, "DISTINCT");
    uint32_t cap = 0;
    do {
        sql_select_item *it = push(p, &s->items, &s->n_items, &cap, sizeof *it);
        if (it == NULL || !parse_select_item(p, it))
            return NULL;
    } while (accept(p, SQL_TOK_COMMA));
    if (!expect_kw(p, "FROM", "after the select list") ||
        !parse_source(p, &s->from, "after FROM"))
        return NULL;

    const sql_token *t = peek(p, 0);
    if (is_kw(p, 0, "JOIN") || is_kw(p, 0, "LEFT") || is_kw(p, 0, "INNER")) {
        sql_join *j = alloc(p, sizeof *j);
        if (j == NULL)
            return NULL;
        j->line = t->line;
        j->column = t->column;
        if (accept_kw(p, "LEFT")) {
            j->left = true;
            accept_kw(p, "OUTER");
        } else {
            accept_kw(p, "INNER");
        }
        if (!expect_kw(p, "JOIN", "") || !parse_source(p, &j->right, "after JOIN") ||
            !expect_kw(p, "ON", "after the joined stream") || (j->on = parse_expr(p)) == NULL ||
            !expect_kw(p, "WITHIN", "after the join condition") ||
            !parse_duration(p, &j->within_ns, "after WITHIN"))
            return NULL;
        s->join = j;
    }
    if (accept_kw(p, "WHERE") && (s->where = parse_expr(p)) == NULL)
        return NULL;
    if (accept_kw(p, "GROUP")) {
        if (!expect_kw(p, "BY", "after GROUP"))
            return NULL;
        cap = 0;
        bool have_window = false;
        do {
            t = peek(p, 0);
            sql_token gt = *t;
            sql_group_item *g = push(p, &s->group, &s->n_group, &cap, sizeof *g);
            if (g == NULL)
                return NULL;
            g->line = gt.line;
            g->column = gt.column;
            if (window_at(p) != SQL_WIN_NONE) {
                if (have_window) {
                    fail(p, &gt, "only one window is allowed in GROUP BY");
                    return NULL;
                }
                have_window = true;
                if (!parse_window(p, &g->window))
                    return NULL;
            } else if ((g->expr = parse_expr(p)) == NULL) {
                return NULL;
            }
        } while (accept(p, SQL_TOK_COMMA));
    }
    if (accept_kw(p, "HAVING") && (s->having = parse_expr(p)) == NULL)
        return NULL;
    if (accept_kw(p, "ORDER")) {
        if (!expect_kw(p, "BY", "after ORDER"))
            return NULL;
        cap = 0;
        do {
            sql_order_item *o = push(p, &s->order, &s->n_order, &cap, sizeof *o);
            if (o == NULL || (o->expr = parse_expr(p)) == NULL)
                return NULL;
            if (accept_kw(p, "DESC"))
                o->desc = true;
            else
                accept_kw(p, "ASC");
        } while (accept(p, SQL_TOK_COMMA));
    }
    if (accept_kw(p, "LIMIT")) {
        if (peek(p, 0)->kind != SQL_TOK_INT) {
            fail_expected(p, "an integer", "after LIMIT");
            return NULL;
        }
        s->has_limit = true;
        s->limit = next(p).i;
    }
    if (!rule) {
        if (is_kw(p, 0, "WITH") || is_kw(p, 0, "EMIT")) {
            char buf[64];
            fail(p, peek(p, 0), "%s belongs to CREATE RULE, not to a plain SELECT",
                 sql_tok_describe(peek(p, 0), buf, sizeof buf));
            return NULL;
        }
        return s;
    }
    if (accept_kw(p, "WITH") && !parse_options(p, &s->options))
        return NULL;
    if (!expect_kw(p, "EMIT", "after the rule's SELECT") || !expect_kw(p, "TO", "after EMIT"))
        return NULL;
    sql_token target = *peek(p, 0);
    if (target.kind != SQL_TOK_STRING) {
        fail_expected(p, "a target string like 'mqtt:alerts/{device}'", "after EMIT TO");
        return NULL;
    }
    next(p);
    size_t len;
    if ((s->emit_target = tok_text(p, &target, &len)) == NULL)
        return NULL;
    if (len == 0) {
        fail(p, &target, "the EMIT target is empty");
        return NULL;
    }
    return s;
}

static bool parse_create_stream(parser *p, sql_stmt *st)
{
    if ((st->name = ident(p, "a stream name", "after CREATE STREAM")) == NULL ||
        !expect(p, SQL_TOK_LPAREN, "'('", "after the stream name"))
        return false;
    uint32_t cap = 0;
    bool have_key = false, have_time = false;
    do {
        sql_token at = *peek(p, 0);
        if (st->n_columns == SQL_MAX_COLUMNS) {
            fail(p, &at, "more than %d columns", SQL_MAX_COLUMNS);
            return false;
        }
        sql_column *c = push(p, &st->columns, &st->n_columns, &cap, sizeof *c);
        if (c == NULL || (c->name = ident(p, "a column name", "in CREATE STREAM")) == NULL ||
            !parse_type(p, &c->type, "after the column name"))
            return false;
        c->line = at.line;
        c->column = at.column;
        for (uint32_t i = 0; i + 1 < st->n_columns; i++) {
            if (strcmp(st->columns[i].name, c->name) == 0) {
                fail(p, &at, "column '%.60s' defined twice", c->name);
                return false;
            }
        }
        for (;;) {
            sql_token t = *peek(p, 0);
            if (accept_kw(p, "KEY")) {
                if (have_key) {
                    fail(p, &t, "a stream has at most one KEY column");
                    return false;
                }
                have_key = c->key = true;
            } else if (accept_kw(p, "EVENT")) {
                if (!expect_kw(p, "TIME", "after EVENT"))
                    return false;
                if (have_time) {
                    fail(p, &t, "a stream has at most one EVENT TIME column");
                    return false;
                }
                have_time = c->event_time = true;
            } else {
                break;
            }
        }
    } while (accept(p, SQL_TOK_COMMA));
    if (!expect(p, SQL_TOK_RPAREN, "',' or ')'", "in the column list"))
        return false;
    if (accept_kw(p, "WITH") && !parse_options(p, &st->options))
        return false;
    return true;
}

static sql_stmt *parse_stmt(parser *p, bool top);

static bool parse_stmt_body(parser *p, sql_stmt *st, bool top)
{
    sql_token t = *peek(p, 0);
    if (is_kw(p, 0, "SELECT")) {
        st->kind = SQL_STMT_SELECT;
        return (st->select = parse_select(p, false)) != NULL;
    }
    if (accept_kw(p, "EXPLAIN")) {
        st->kind = SQL_STMT_EXPLAIN;
        if (!top) {
            fail(p, &t, "EXPLAIN cannot be nested");
            return false;
        }
        if (!is_kw(p, 0, "SELECT") && !(is_kw(p, 0, "CREATE") && is_kw(p, 1, "RULE"))) {
            fail_expected(p, "SELECT or CREATE RULE", "after EXPLAIN");
            return false;
        }
        return (st->explained = parse_stmt(p, false)) != NULL;
    }
    if (accept_kw(p, "CREATE")) {
        if (accept_kw(p, "STREAM")) {
            st->kind = SQL_STMT_CREATE_STREAM;
            return parse_create_stream(p, st);
        }
        if (!expect_kw(p, "RULE", "or STREAM after CREATE"))
            return false;
        st->kind = SQL_STMT_CREATE_RULE;
        return (st->name = ident(p, "a rule name", "after CREATE RULE")) != NULL &&
               expect_kw(p, "AS", "after the rule name") &&
               (st->select = parse_select(p, true)) != NULL;
    }
    static const struct {
        const char *verb, *object;
        sql_stmt_kind kind;
        bool named;
    } simple[] = {
        {"DROP", "STREAM", SQL_STMT_DROP_STREAM, true},
        {"DROP", "RULE", SQL_STMT_DROP_RULE, true},
        {"START", "RULE", SQL_STMT_START_RULE, true},
        {"STOP", "RULE", SQL_STMT_STOP_RULE, true},
        {"SHOW", "STREAMS", SQL_STMT_SHOW_STREAMS, false},
        {"SHOW", "RULES", SQL_STMT_SHOW_RULES, false},
    };
    for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
        if (!is_kw(p, 0, simple[i].verb) || !is_kw(p, 1, simple[i].object))
            continue;
        next(p);
        next(p);
        st->kind = simple[i].kind;
        if (simple[i].named) {
            char where[32];
            snprintf(where, sizeof where, "after %s %s", simple[i].verb, simple[i].object);
            return (st->name = ident(p, "a name", where)) != NULL;
        }
        return true;
    }
    static const struct {
        const char *verb, *want;
    } verbs[] = {
        {"DROP", "STREAM or RULE"}, {"SHOW", "STREAMS or RULES"}, {"START", "RULE"}, {"STOP", "RULE"},
    };
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++) {
        if (accept_kw(p, verbs[i].verb)) {
            char where[16];
            snprintf(where, sizeof where, "after %s", verbs[i].verb);
            fail_expected(p, verbs[i].want, where);
            return false;
        }
    }
    fail_expected(p, "a statement (SELECT, CREATE, DROP, SHOW, START, STOP, EXPLAIN)", "");
    return false;
}

static sql_stmt *parse_stmt(parser *p, bool top)
{
    const sql_token *t = peek(p, 0);
    sql_stmt *st = alloc(p, sizeof *st);
    if (st == NULL)
        return NULL;
    st->line = t->line;
    st->column = t->column;
    return parse_stmt_body(p, st, top) ? st : NULL;
}

int sql_parse_limited(const char *text, size_t len, size_t max_len, int max_depth, arena *a,
                      sql_stmt **out, sql_error *err)
{
    *out = NULL;
    if (err != NULL)
        memset(err, 0, sizeof *err);
    if (len > max_len) {
        sql__error_at(err, 1, 1, "statement longer than %zu bytes", max_len);
        return WEIR_ETOOBIG;
    }
    parser p = {.a = a, .err = err, .max_depth = max_depth};
    sql_lex_init(&p.lx, text, len);
    p.eof.line = 1;
    p.eof.column = 1;
    sql_stmt *st = parse_stmt(&p, true);
    if (st != NULL) {
        accept(&p, SQL_TOK_SEMI);
        if (peek(&p, 0)->kind != SQL_TOK_EOF)
            fail_expected(&p, "end of statement", "");
    }
    if (p.rc == WEIR_OK && st == NULL)
        p.rc = WEIR_EINTERNAL;
    if (p.rc != WEIR_OK)
        return p.rc;
    *out = st;
    return WEIR_OK;
}

int sql_parse(const char *text, size_t len, arena *a, sql_stmt **out, sql_error *err)
{
    return sql_parse_limited(text, len, SQL_MAX_TEXT, SQL_MAX_DEPTH, a, out, err);
}
