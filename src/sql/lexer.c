/* lexer.c -- tokens of weir's SQL dialect (rules in lexer.h). */
#include "sql/lexer.h"

#include "base/err.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sql__error_at(sql_error *err, int line, int column, const char *fmt, ...)
{
    if (err == NULL)
        return;
    err->line = line;
    err->column = column;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
}

void sql_lex_init(sql_lexer *lx, const char *text, size_t len)
{
    lx->text = text;
    lx->len = len;
    lx->pos = 0;
    lx->line = 1;
    lx->line_start = 0;
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int cur(const sql_lexer *lx, size_t ahead)
{
    size_t i = lx->pos + ahead;
    return i < lx->len ? (unsigned char)lx->text[i] : -1;
}

static int column_of(const sql_lexer *lx, size_t off)
{
    size_t c = off - lx->line_start + 1;
    return c > (size_t)INT32_MAX ? INT32_MAX : (int)c;
}

/* Length of the valid UTF-8 sequence at s[0..n) (not NUL), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    if (c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    unsigned cp = c & (0x3F >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Advances over one character (a UTF-8 sequence), keeping line counts.
 * WEIR_EINVAL on invalid UTF-8 or NUL. */
static int advance(sql_lexer *lx, sql_error *err)
{
    const unsigned char *s = (const unsigned char *)lx->text + lx->pos;
    size_t n = utf8_seq(s, lx->len - lx->pos);
    if (n == 0) {
        sql__error_at(err, lx->line, column_of(lx, lx->pos),
                      s[0] == 0 ? "NUL byte in the statement" : "invalid UTF-8 in the statement");
        return WEIR_EINVAL;
    }
    if (s[0] == '\n') {
        lx->line++;
        lx->line_start = lx->pos + 1;
    }
    lx->pos += n;
    return WEIR_OK;
}

static int skip_space(sql_lexer *lx, sql_error *err)
{
    for (;;) {
        int c = cur(lx, 0);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            advance(lx, err);
        } else if (c == '-' && cur(lx, 1) == '-') {
            while (lx->pos < lx->len && cur(lx, 0) != '\n') {
                int rc = advance(lx, err);
                if (rc != WEIR_OK)
                    return rc;
            }
        } else if (c == '/' && cur(lx, 1) == '*') {
            int line = lx->line, col = column_of(lx, lx->pos);
            lx->pos += 2;
            for (;;) {
                if (lx->pos >= lx->len) {
                    sql__error_at(err, line, col, "unterminated block comment");
                    return WEIR_EINVAL;
                }
                if (cur(lx, 0) == '*' && cur(lx, 1) == '/') {
                    lx->pos += 2;
                    break;
                }
                int rc = advance(lx, err);
                if (rc != WEIR_OK)
                    return rc;
            }
        } else {
            return WEIR_OK;
        }
    }
}

/* Nanoseconds per unit, or 0 for a word that is not a duration unit. */
static int64_t unit_ns(const char *p, size_t n)
{
    static const struct {
        const char *name;
        int64_t ns;
    } units[] = {
        {"ns", 1},
        {"us", 1000},
        {"ms", 1000000},
        {"s", 1000000000},
        {"m", 60 * (int64_t)1000000000},
        {"h", 3600 * (int64_t)1000000000},
        {"d", 86400 * (int64_t)1000000000},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == n && memcmp(units[i].name, p, n) == 0)
            return units[i].ns;
    return 0;
}

static int lex_number(sql_lexer *lx, sql_token *t, sql_error *err)
{
    size_t start = lx->pos;
    bool decimal = false;
    while (is_digit(cur(lx, 0)))
        lx->pos++;
    if (cur(lx, 0) == '.' && is_digit(cur(lx, 1))) {
        decimal = true;
        lx->pos++;
        while (is_digit(cur(lx, 0)))
            lx->pos++;
    }
    if ((cur(lx, 0) == 'e' || cur(lx, 0) == 'E') &&
        (is_digit(cur(lx, 1)) ||
         ((cur(lx, 1) == '+' || cur(lx, 1) == '-') && is_digit(cur(lx, 2))))) {
        decimal = true;
        lx->pos += 2;
        while (is_digit(cur(lx, 0)))
            lx->pos++;
    }
    size_t num_end = lx->pos;
    size_t unit_start = lx->pos;
    while (is_alpha(cur(lx, 0)) || is_digit(cur(lx, 0)))
        lx->pos++;
    t->p = lx->text + start;
    t->len = lx->pos - start;
    char tmp[64];
    size_t nlen = num_end - start;
    if (nlen >= sizeof tmp) {
        sql__error_at(err, t->line, t->column, "number too long");
        return WEIR_EINVAL;
    }
    memcpy(tmp, lx->text + start, nlen);
    tmp[nlen] = 0;
    if (lx->pos > unit_start) {
        int64_t unit = unit_ns(lx->text + unit_start, lx->pos - unit_start);
        if (unit == 0 || decimal) {
            sql__error_at(err, t->line, t->column,
                          "invalid number or duration '%.*s' (units: ns us ms s m h d)",
                          (int)(t->len > 40 ? 40 : t->len), t->p);
            return WEIR_EINVAL;
        }
        char *end;
        errno = 0;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (errno != 0 || v > (unsigned long long)(INT64_MAX / unit)) {
            sql__error_at(err, t->line, t->column, "duration out of range");
            return WEIR_EINVAL;
        }
        t->kind = SQL_TOK_DURATION;
        t->i = (int64_t)v * unit;
        return WEIR_OK;
    }
    char *end;
    errno = 0;
    if (decimal) {
        double d = strtod(tmp, &end);
        if (!isfinite(d)) {
            sql__error_at(err, t->line, t->column, "number out of range");
            return WEIR_EINVAL;
        }
        t->kind = SQL_TOK_DECIMAL;
        t->d = d;
    } else {
        unsigned long long v = strtoull(tmp, &end, 10);
        if (errno != 0 || v > (unsigned long long)INT64_MAX) {
            sql__error_at(err, t->line, t->column, "integer out of range");
            return WEIR_EINVAL;
        }
        t->kind = SQL_TOK_INT;
        t->i = (int64_t)v;
    }
    return WEIR_OK;
}

static int lex_quoted(sql_lexer *lx, sql_token *t, char q, sql_error *err)
{
    size_t start = lx->pos;
    lx->pos++;
    for (;;) {
        if (lx->pos >= lx->len) {
            sql__error_at(err, t->line, t->column, "unterminated %s",
                          q == '\'' ? "string" : "quoted identifier");
            return WEIR_EINVAL;
        }
        if (cur(lx, 0) == q) {
            if (cur(lx, 1) == q) {
                lx->pos += 2;
                continue;
            }
            lx->pos++;
            break;
        }
        int rc = advance(lx, err);
        if (rc != WEIR_OK)
            return rc;
    }
    t->kind = q == '\'' ? SQL_TOK_STRING : SQL_TOK_QIDENT;
    t->p = lx->text + start;
    t->len = lx->pos - start;
    if (q == '"' && t->len == 2) {
        sql__error_at(err, t->line, t->column, "empty quoted identifier");
        return WEIR_EINVAL;
    }
    return WEIR_OK;
}

int sql_lex_next(sql_lexer *lx, sql_token *t, sql_error *err)
{
    memset(t, 0, sizeof *t);
    int rc = skip_space(lx, err);
    if (rc != WEIR_OK)
        return rc;
    t->line = lx->line;
    t->column = column_of(lx, lx->pos);
    t->p = lx->text + lx->pos;
    if (lx->pos >= lx->len) {
        t->kind = SQL_TOK_EOF;
        return WEIR_OK;
    }
    int c = cur(lx, 0);
    if (is_alpha(c)) {
        while (is_alpha(cur(lx, 0)) || is_digit(cur(lx, 0)))
            lx->pos++;
        t->kind = SQL_TOK_WORD;
        t->len = (size_t)(lx->text + lx->pos - t->p);
        return WEIR_OK;
    }
    if (is_digit(c))
        return lex_number(lx, t, err);
    if (c == '\'' || c == '"')
        return lex_quoted(lx, t, (char)c, err);
    static const struct {
        const char *s;
        sql_tok_kind k;
    } ops[] = {
        {"->>", SQL_TOK_ARROW2}, {"->", SQL_TOK_ARROW}, {"::", SQL_TOK_DCOLON},
        {"<>", SQL_TOK_NE},      {"!=", SQL_TOK_NE},    {"<=", SQL_TOK_LE},
        {">=", SQL_TOK_GE},      {"(", SQL_TOK_LPAREN}, {")", SQL_TOK_RPAREN},
        {",", SQL_TOK_COMMA},    {".", SQL_TOK_DOT},    {";", SQL_TOK_SEMI},
        {"*", SQL_TOK_STAR},     {"+", SQL_TOK_PLUS},   {"-", SQL_TOK_MINUS},
        {"/", SQL_TOK_SLASH},    {"%", SQL_TOK_PERCENT}, {"=", SQL_TOK_EQ},
        {"<", SQL_TOK_LT},       {">", SQL_TOK_GT},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        size_t n = strlen(ops[i].s);
        if (lx->len - lx->pos >= n && memcmp(lx->text + lx->pos, ops[i].s, n) == 0) {
            lx->pos += n;
            t->kind = ops[i].k;
            t->len = n;
            return WEIR_OK;
        }
    }
    /* Report invalid UTF-8 as such; anything else is an unexpected character. */
    size_t n = utf8_seq((const unsigned char *)lx->text + lx->pos, lx->len - lx->pos);
    if (n == 0)
        return advance(lx, err);
    sql__error_at(err, t->line, t->column, "unexpected character '%.*s'", (int)n, t->p);
    return WEIR_EINVAL;
}

bool sql_tok_is(const sql_token *t, const char *kw)
{
    if (t->kind != SQL_TOK_WORD)
        return false;
    size_t n = strlen(kw);
    if (n != t->len)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = t->p[i];
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c != kw[i])
            return false;
    }
    return true;
}

size_t sql_tok_unquote(const sql_token *t, char *dst)
{
    char q = t->p[0];
    size_t o = 0;
    for (size_t i = 1; i + 1 < t->len; i++) {
        dst[o++] = t->p[i];
        if (t->p[i] == q)
            i++;
    }
    return o;
}

const char *sql_tok_describe(const sql_token *t, char *buf, size_t n)
{
    if (t->kind == SQL_TOK_EOF) {
        snprintf(buf, n, "end of input");
    } else {
        size_t len = t->len;
        const char *dots = "";
        if (len > 40) {
            len = 40;
            /* Do not cut a UTF-8 sequence in half. */
            while (len > 0 && ((unsigned char)t->p[len] & 0xC0) == 0x80)
                len--;
            dots = "...";
        }
        snprintf(buf, n, "'%.*s%s'", (int)len, t->p, dots);
    }
    return buf;
}
