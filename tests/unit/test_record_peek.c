/* test_record_peek.c -- record_peek_double agrees with record_decode on
 * every field of many encoded records, and never reads out of bounds on
 * truncated or damaged encodings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/buf.h"
#include "record/peek.h"
#include "record/record.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_agrees_with_decode(void **state)
{
    (void)state;
    srand(42);
    arena a;
    arena_init(&a, 1u << 20);
    weir_buf enc;
    buf_init(&enc, 0);
    for (int iter = 0; iter < 2000; iter++) {
        rec_field f[6];
        char names[6][16];
        int nf = 1 + rand() % 6;
        for (int i = 0; i < nf; i++) {
            snprintf(names[i], sizeof(names[i]), "f%d", i);
            f[i].name = names[i];
            f[i].name_len = (uint16_t)strlen(names[i]);
            switch (rand() % 6) {
            case 0:
                f[i].v = (rec_value){.type = REC_INT, .u.i = (int64_t)rand() - RAND_MAX / 2};
                break;
            case 1:
                f[i].v = (rec_value){.type = REC_DOUBLE, .u.d = (double)rand() / 7.0 - 1e5};
                break;
            case 2:
                f[i].v = (rec_value){.type = REC_BOOL, .u.b = rand() & 1};
                break;
            case 3:
                f[i].v = (rec_value){.type = REC_STRING, .u.s = {"12.5", 4}};
                break;
            case 4:
                f[i].v = (rec_value){.type = REC_STRING, .u.s = {"abc", 3}};
                break;
            default:
                f[i].v = (rec_value){.type = REC_NULL};
                break;
            }
        }
        record r = {.fields = f, .n_fields = (uint32_t)nf};
        buf_reset(&enc);
        assert_int_equal(record_encode(&r, &enc), 0);
        for (int i = 0; i < nf; i++) {
            double want, got;
            bool ok = rec_value_as_double(&f[i].v, &want);
            bool peeked = record_peek_double(buf_head(&enc), buf_used(&enc), names[i],
                                             strlen(names[i]), &got);
            assert_int_equal(ok, peeked);
            if (ok)
                assert_true(got == want);
        }
        double x;
        assert_false(record_peek_double(buf_head(&enc), buf_used(&enc), "nope", 4, &x));
        /* Every truncation: no crash, no read past the end (ASan checks). */
        for (size_t cut = 0; cut < buf_used(&enc); cut++) {
            uint8_t *copy = malloc(cut ? cut : 1);
            memcpy(copy, buf_head(&enc), cut);
            record_peek_double(copy, cut, names[nf - 1], strlen(names[nf - 1]), &x);
            free(copy);
        }
    }
    buf_free(&enc);
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agrees_with_decode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
