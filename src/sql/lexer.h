/* lexer.h -- tokens of weir's SQL dialect.
 *
 * The lexer turns statement text into tokens on demand (the parser keeps a
 * small lookahead). It is pure code: no I/O, no allocation; every token
 * points into the caller's text.
 *
 * Lexical rules:
 *   - whitespace separates tokens; `-- ...` runs to the end of the line and
 *     `/ * ... * /` (without the spaces) is a block comment (not nested);
 *   - words are [A-Za-z_][A-Za-z0-9_]*; keywords are words compared without
 *     regard to case (the parser decides which word is a keyword where);
 *   - "quoted identifiers" may hold any UTF-8 except NUL, `""` is one `"`;
 *   - 'strings' likewise, `''` is one `'`;
 *   - numbers: digits, optionally `.digits`, optionally an exponent
 *     `e[+-]digits` -> DECIMAL if there is a dot or exponent, INT otherwise
 *     (INT must fit int64); digits directly followed by a unit `ns us ms s m
 *     h d` are a DURATION in nanoseconds (5s, 250ms, 1d);
 *   - operators: ( ) , . ; * + - / % = <> != < <= > >= :: -> ->>.
 * The whole input must be valid UTF-8 without NUL bytes.
 *
 * Positions are 1-based; the column counts bytes from the start of the line.
 */
#ifndef WEIR_SQL_LEXER_H
#define WEIR_SQL_LEXER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A syntax (or size) error: where it is and what is wrong. */
typedef struct sql_error {
    int line;      /* 1-based line of the offending token, 0 when none */
    int column;    /* 1-based byte column of the offending token */
    char msg[160]; /* one sentence, NUL-terminated */
} sql_error;

typedef enum sql_tok_kind {
    SQL_TOK_EOF = 0,
    SQL_TOK_WORD,     /* bare word: identifier or keyword */
    SQL_TOK_QIDENT,   /* "quoted identifier" (text still escaped) */
    SQL_TOK_STRING,   /* 'string' (text still escaped) */
    SQL_TOK_INT,      /* integer, value in .i */
    SQL_TOK_DECIMAL,  /* decimal or exponent number, value in .d */
    SQL_TOK_DURATION, /* integer with a unit, nanoseconds in .i */
    SQL_TOK_LPAREN,
    SQL_TOK_RPAREN,
    SQL_TOK_COMMA,
    SQL_TOK_DOT,
    SQL_TOK_SEMI,
    SQL_TOK_STAR,
    SQL_TOK_PLUS,
    SQL_TOK_MINUS,
    SQL_TOK_SLASH,
    SQL_TOK_PERCENT,
    SQL_TOK_EQ,
    SQL_TOK_NE,       /* <> or != */
    SQL_TOK_LT,
    SQL_TOK_LE,
    SQL_TOK_GT,
    SQL_TOK_GE,
    SQL_TOK_DCOLON,   /* :: */
    SQL_TOK_ARROW,    /* -> */
    SQL_TOK_ARROW2,   /* ->> */
} sql_tok_kind;

typedef struct sql_token {
    sql_tok_kind kind;
    const char *p; /* the raw source bytes of the token (quotes included) */
    size_t len;    /* their count */
    int line;      /* 1-based */
    int column;    /* 1-based, in bytes */
    int64_t i;     /* SQL_TOK_INT value, SQL_TOK_DURATION nanoseconds */
    double d;      /* SQL_TOK_DECIMAL value */
} sql_token;

typedef struct sql_lexer {
    const char *text;       /* private: the statement */
    size_t len;             /* private: its length */
    size_t pos;             /* private: next byte to read */
    int line;               /* private: line of pos */
    size_t line_start;      /* private: offset of the first byte of that line */
} sql_lexer;

/* Starts lexing text[0..len). */
void sql_lex_init(sql_lexer *lx, const char *text, size_t len);

/* The next token into *tok (SQL_TOK_EOF at the end, repeatedly). WEIR_OK, or
 * WEIR_EINVAL with *err filled (bad character, unterminated string or
 * comment, number out of range, invalid UTF-8). */
int sql_lex_next(sql_lexer *lx, sql_token *tok, sql_error *err);

/* The token's bare word equals kw (upper case ASCII), ignoring case. */
bool sql_tok_is(const sql_token *t, const char *kw);

/* Decodes a STRING or QIDENT token (drops the quotes, folds the doubled
 * quote) into dst, which must hold t->len bytes; returns the length. */
size_t sql_tok_unquote(const sql_token *t, char *dst);

/* A short description of the token for messages: 'WHERE', end of input, ...
 * Writes at most n bytes (NUL included) into buf; returns buf. */
const char *sql_tok_describe(const sql_token *t, char *buf, size_t n);

/* Formats *err at (line, column); the message is printf-style. */
void sql__error_at(sql_error *err, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
