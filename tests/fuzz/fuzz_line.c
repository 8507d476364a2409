/* fuzz_line.c -- libFuzzer target for the line protocol decoder
 * (src/record/decode.h).
 *
 * The input is decoded as one line without a schema and with one that
 * names a key, an event-time field, a timestamp precision and typed fields
 * (each from an exact-size heap copy), then as a batch body of many lines.
 * Accepted records must have every property of record_check.h, start with
 * the "_measurement" field, and carry the default timestamp when the line
 * has none; errors must follow the decoder contract.
 *
 * Seeds: tests/fuzz/corpus/fuzz_line/ (lines with every value type and
 * escape, and regressions).
 */
#include "record_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const rec_decl decls[] = {
    {"value", REC_DOUBLE},
    {"count", REC_INT},
    {"serial", REC_STRING},
    {"on", REC_BOOL},
};
static const rec_schema with_schema = {.format = REC_FMT_LINE,
                                       .ts_field = "at",
                                       .ts_format = "ms",
                                       .key_field = "host",
                                       .decls = decls,
                                       .n_decls = 4};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    static bool init;
    if (!init) {
        arena_init(&a, 64 << 20);
        init = true;
    }
    uint8_t *p = rc_copy(data, size);
    const rec_schema *schemas[] = {NULL, &with_schema};
    for (int k = 0; k < 2; k++) {
        record r;
        rec_error e;
        arena_reset(&a);
        int rc = rec_decode_line(p, size, schemas[k], 4242, &a, &r, &e);
        if (rc == WEIR_OK) {
            rc_check(r.n_fields >= 2, "measurement and a field");
            rc_check(r.fields[0].name_len == 12 &&
                         memcmp(r.fields[0].name, "_measurement", 12) == 0,
                     "measurement first");
            rc_check_record(&r);
        } else {
            rc_check_error(rc, &e, &r);
            rc_check(e.line == 1 && e.column >= 1 && e.column <= size + 1, "error column");
        }
    }
    uint32_t n = 0, ok = 0, bad = 0;
    int rc = rec_batch_decode(REC_FMT_LINE, false, p, size, &with_schema, &a, rc_batch_cb,
                              rc_batch_ecb, &n, &ok, &bad);
    rc_check(rc == WEIR_OK && n == ok, "batch");
    free(p);
    return 0;
}
