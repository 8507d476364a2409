/* fuzz_sql.c -- libFuzzer target for the SQL front end (src/sql/parser.h).
 *
 * The input is parsed from an exact-size heap copy (so ASan sees any read
 * past the end). When it parses, the canonical print must parse again and
 * print identically (print is a fixed point after one round). When it does
 * not parse, the error code must be a documented one and the position must
 * be inside the text (1-based line and column). Every input also goes
 * through a small arena so that running out of parse memory is exercised.
 *
 * Seeds: tests/fuzz/corpus/fuzz_sql/ (statements of every kind).
 */
#include "base/arena.h"
#include "base/buf.h"
#include "base/err.h"
#include "sql/parser.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_sql: check failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    static bool init;
    if (!init) {
        arena_init(&a, 64 << 20);
        init = true;
    }
    char *p = malloc(size ? size : 1);
    if (size)
        memcpy(p, data, size);
    arena_reset(&a);
    sql_stmt *st = NULL;
    sql_error err;
    int rc = sql_parse(p, size, &a, &st, &err);
    if (rc == WEIR_OK) {
        check(st != NULL, "statement on success");
        weir_buf b1, b2;
        buf_init(&b1, 0);
        buf_init(&b2, 0);
        check(sql_print(st, &b1) == WEIR_OK, "print");
        sql_stmt *st2 = NULL;
        rc = sql_parse((const char *)buf_head(&b1), buf_used(&b1), &a, &st2, &err);
        if (rc != WEIR_OK)
            fprintf(stderr, "re-parse of [%.*s] failed at %d:%d: %s\n", (int)buf_used(&b1),
                    (const char *)buf_head(&b1), err.line, err.column, err.msg);
        check(rc == WEIR_OK, "parse(print(x)) succeeds");
        check(sql_print(st2, &b2) == WEIR_OK, "print again");
        if (buf_used(&b1) != buf_used(&b2) ||
            memcmp(buf_head(&b1), buf_head(&b2), buf_used(&b1)) != 0)
            fprintf(stderr, "first  [%.*s]\nsecond [%.*s]\n", (int)buf_used(&b1),
                    (const char *)buf_head(&b1), (int)buf_used(&b2), (const char *)buf_head(&b2));
        check(buf_used(&b1) == buf_used(&b2) &&
                  memcmp(buf_head(&b1), buf_head(&b2), buf_used(&b1)) == 0,
              "print(parse(print(x))) == print(x)");
        buf_free(&b1);
        buf_free(&b2);
    } else {
        check(st == NULL, "no statement on error");
        check(rc == WEIR_EINVAL || rc == WEIR_ETOOBIG, "error code");
        check(err.line >= 1 && err.column >= 1, "error position is 1-based");
        check(memchr(err.msg, 0, sizeof err.msg) != NULL && err.msg[0] != 0, "error message");
    }
    /* The same input in a tiny arena: success or a clean ETOOBIG. */
    arena small;
    arena_init(&small, 2048);
    rc = sql_parse(p, size, &small, &st, &err);
    check(rc == WEIR_OK || rc == WEIR_EINVAL || rc == WEIR_ETOOBIG, "error code (small arena)");
    arena_free(&small);
    free(p);
    return 0;
}
