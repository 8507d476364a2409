/* fuzz_csv.c -- libFuzzer target for the CSV decoder (src/record/decode.h).
 *
 * The input is read three ways: line by line through rec_csv_header and
 * rec_csv_line (first line the header, each line from an exact-size heap
 * copy), as a batch body with a header and a schema naming event time, key
 * and typed fields, and as a header-less TSV batch with schema columns (the
 * DEBS layout). Accepted records must have every property of
 * record_check.h; errors must follow the decoder contract.
 *
 * Seeds: tests/fuzz/corpus/fuzz_csv/ (lines of the UCI and DEBS files,
 * quoting corner cases, and regressions).
 */
#include "record_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const rec_decl decls[] = {
    {"n", REC_INT}, {"d", REC_DOUBLE}, {"s", REC_STRING}, {"b", REC_BOOL}, {"j", REC_JSON},
};
static const rec_schema with_header = {
    .format = REC_FMT_CSV, .ts_field = "t", .key_field = "k", .decls = decls, .n_decls = 5};
static const char *const tsv_columns[] = {"ts", "index", "mf01", "note"};
static const rec_schema tsv = {.format = REC_FMT_CSV,
                               .ts_field = "ts",
                               .key_field = "index",
                               .csv_delim = '\t',
                               .csv_columns = tsv_columns,
                               .n_csv_columns = 4};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    static bool init;
    if (!init) {
        arena_init(&a, 64 << 20);
        init = true;
    }
    rec_csv *c;
    rc_check(rec_csv_new(&with_header, &c) == WEIR_OK, "rec_csv_new");
    size_t pos = 0;
    bool header = true;
    while (pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - data) + 1 : size;
        uint8_t *line = rc_copy(data + pos, end - pos);
        rec_error e;
        if (header) {
            int rc = rec_csv_header(c, line, end - pos, &e);
            rc_check(rc == WEIR_OK || rc == WEIR_EMALFORMED || rc == WEIR_EUTF8 ||
                         rc == WEIR_ETOOBIG,
                     "header result");
            header = rc != WEIR_OK;
        } else {
            record r;
            arena_reset(&a);
            int rc = rec_csv_line(c, line, end - pos, &a, &r, &e);
            if (rc == WEIR_OK) {
                rc_check(r.n_fields == rec_csv_columns(c), "one field per column");
                rc_check_record(&r);
            } else {
                rc_check_error(rc, &e, &r);
            }
        }
        free(line);
        pos = end;
    }
    rec_csv_free(c);

    uint8_t *p = rc_copy(data, size);
    uint32_t n = 0, ok = 0, bad = 0;
    int rc = rec_batch_decode(REC_FMT_CSV, false, p, size, &with_header, &a, rc_batch_cb,
                              rc_batch_ecb, &n, &ok, &bad);
    rc_check(rc == WEIR_OK || rc == WEIR_EMALFORMED, "batch result");
    rc_check(n == ok, "batch count");
    rc = rec_batch_decode(REC_FMT_CSV, false, p, size, &tsv, &a, rc_batch_cb, rc_batch_ecb, &n, &ok,
                          &bad);
    rc_check(rc == WEIR_OK, "tsv batch result");
    free(p);
    return 0;
}
