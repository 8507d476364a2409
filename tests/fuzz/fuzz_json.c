/* fuzz_json.c -- libFuzzer target for rec_decode_json (src/record/decode.h).
 *
 * The input is decoded as one JSON payload, without a schema and with one
 * that names an event time, a key and typed fields, each time from an
 * exact-size heap copy. Accepted records must have every property of
 * record_check.h. The scanner is also checked against the jansson
 * reference decoder: both accept or both reject every input (but for a
 * jansson quirk with NUL bytes, see below), and when both
 * accept (and jansson did not have to read integers as reals) they give the
 * same fields. Finally the input runs through the batch splitter as NDJSON
 * or a JSON array.
 *
 * Seeds: tests/fuzz/corpus/fuzz_json/ (sensor readings, nesting, escapes,
 * numbers at the edges, and regressions).
 */
#include "record_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const rec_decl decls[] = {
    {"temperature", REC_DOUBLE}, {"seq", REC_INT}, {"serial", REC_STRING}, {"on", REC_BOOL},
    {"cfg", REC_JSON},
};
static const rec_schema with_schema = {
    .format = REC_FMT_JSON, .ts_field = "ts", .key_field = "device", .decls = decls, .n_decls = 5};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a, b;
    static bool init;
    if (!init) {
        arena_init(&a, 64 << 20);
        arena_init(&b, 64 << 20);
        init = true;
    }
    uint8_t *p = rc_copy(data, size);
    record r, ref;
    rec_error e, e2;

    arena_reset(&a);
    int rc = rec_decode_json(p, size, NULL, &a, &r, &e);
    if (rc == WEIR_OK)
        rc_check_record(&r);
    else
        rc_check_error(rc, &e, &r);

    /* Differential: the jansson reference. */
    arena_reset(&b);
    int rc2 = rec_decode_json_jansson(p, size, NULL, &b, &ref, &e2);
    /* jansson's lexer mistakes a NUL byte right after a number for the end
     * of its read buffer and skips it ({"a":6<NUL>} loads); a NUL byte is
     * never valid JSON, so only the other direction is checked then. */
    bool nul = size && memchr(p, 0, size) != NULL;
    if ((rc == WEIR_OK) != (rc2 == WEIR_OK) && !(nul && rc != WEIR_OK))
        fprintf(stderr, "scanner: %s (%s); jansson: %s (%s)\n", weir_err_name(rc), rc ? e.msg : "-",
                weir_err_name(rc2), rc2 ? e2.msg : "-");
    rc_check((rc == WEIR_OK) == (rc2 == WEIR_OK) || (nul && rc != WEIR_OK),
             "scanner and jansson agree on acceptance");
    if (rc == WEIR_OK && rc2 == WEIR_OK) {
        json_error_t je;
        json_t *plain = json_loadb((const char *)p, size, JSON_REJECT_DUPLICATES, &je);
        if (plain)
            rc_check(rc_fields_equal(&r, &ref, true), "scanner and jansson give the same fields");
        json_decref(plain);
    }

    /* With a schema. */
    arena_reset(&a);
    rc = rec_decode_json(p, size, &with_schema, &a, &r, &e);
    if (rc == WEIR_OK)
        rc_check_record(&r);
    else
        rc_check_error(rc, &e, &r);

    /* As a batch body. */
    uint32_t n = 0, ok = 0, bad = 0;
    rc = rec_batch_decode(REC_FMT_JSON, true, p, size, &with_schema, &a, rc_batch_cb, rc_batch_ecb,
                          &n, &ok, &bad);
    rc_check(rc == WEIR_OK || rc == WEIR_EMALFORMED, "batch result");
    rc_check(n == ok, "batch count");
    free(p);
    return 0;
}
