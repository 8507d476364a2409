/* fuzz_record.c -- libFuzzer target for the storage encoding
 * (record_decode / record_encode / record_to_json, src/record/record.h).
 *
 * The input is decoded from an exact-size heap copy. When it decodes, the
 * encoding must be canonical -- record_encode gives back exactly the input
 * bytes -- and the record must have every property of record_check.h
 * (its JSON form is valid to jansson and reads back to the same record). A
 * decode into a tiny arena may only fail for want of room. When the input
 * does not decode, the error must be one of the documented codes.
 *
 * Seeds: tests/fuzz/corpus/fuzz_record/ (encodings of records with every
 * type, written by tests/fuzz/make_record_seeds.py, and regressions).
 */
#include "record_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    static bool init;
    if (!init) {
        arena_init(&a, 64 << 20);
        init = true;
    }
    uint8_t *p = rc_copy(data, size);
    record r;
    arena_reset(&a);
    int rc = record_decode(p, size, &a, &r);
    if (rc == WEIR_OK) {
        weir_buf b;
        buf_init(&b, 0);
        rc_check(record_encode(&r, &b) == WEIR_OK, "encode");
        rc_check(buf_used(&b) == size && memcmp(buf_head(&b), p, size) == 0,
                 "encode(decode(x)) == x");
        buf_free(&b);
        rc_check_record(&r);
    } else {
        rc_check(rc == WEIR_EMALFORMED || rc == WEIR_EVERSION, "decode error code");
        rc_check(r.fields == NULL && r.n_fields == 0, "record zeroed on error");
    }
    arena tiny;
    arena_init(&tiny, 256);
    int rc2 = record_decode(p, size, &tiny, &r);
    rc_check(rc2 == rc || rc2 == WEIR_ETOOBIG, "tiny arena");
    arena_free(&tiny);
    free(p);
    return 0;
}
