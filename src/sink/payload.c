/* payload.c -- see payload.h. The row and the reserved fields are put into
 * one record and written by record_to_json, so this file has no JSON
 * encoder of its own. */
#include "sink/payload.h"

#include "base/err.h"
#include "record/record.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#define META_MAX 7
#define STACK_FIELDS 32

static const char *const reserved[] = {"_rule", "_seq", "_ts", "_window_start", "_window_end",
                                       "_revision", "_late"};

static bool is_reserved(const char *name)
{
    if (name[0] != '_')
        return false;
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0)
            return true;
    return false;
}

/* Floor division so that times before 1970 round the same way as after. */
static int64_t ns_to_ms(int64_t ns)
{
    int64_t q = ns / 1000000, r = ns % 1000000;
    return (r < 0) ? q - 1 : q;
}

static void meta(rec_field *f, const char *name, rec_value v)
{
    f->name = name;
    f->name_len = (uint16_t)strlen(name);
    f->v = v;
}

int sink_payload_json(const char *rule, const eng_row *row, uint64_t seq, weir_buf *out)
{
    rec_field stack[STACK_FIELDS];
    rec_field *fs = stack;
    size_t want = (size_t)row->n_cols + META_MAX;
    if (want > STACK_FIELDS && !(fs = malloc(want * sizeof(*fs))))
        return WEIR_ENOMEM;
    int rc = WEIR_OK;
    uint32_t n = 0;
    for (uint32_t i = 0; i < row->n_cols; i++) {
        const char *name = row->names[i] ? row->names[i] : "";
        size_t len = strlen(name);
        if (len > UINT16_MAX) {
            rc = WEIR_EINVAL;
            goto cleanup;
        }
        if (is_reserved(name))
            continue;
        fs[n].name = name;
        fs[n].name_len = (uint16_t)len;
        fs[n].v = row->vals[i];
        n++;
    }
    rec_value v = {.type = REC_STRING};
    v.u.s.p = rule ? rule : "";
    v.u.s.len = (uint32_t)strlen(v.u.s.p);
    meta(&fs[n++], "_rule", v);
    /* _seq is an INT: a rule would need 2^63 rows to overflow it. */
    meta(&fs[n++], "_seq", (rec_value){.type = REC_INT, .u.i = (int64_t)(seq & INT64_MAX)});
    meta(&fs[n++], "_ts", (rec_value){.type = REC_INT, .u.i = ns_to_ms(row->ts)});
    if (row->window_end != 0 || row->window_start != 0) {
        meta(&fs[n++], "_window_start",
             (rec_value){.type = REC_INT, .u.i = ns_to_ms(row->window_start)});
        meta(&fs[n++], "_window_end",
             (rec_value){.type = REC_INT, .u.i = ns_to_ms(row->window_end)});
    }
    if (row->revision > 0)
        meta(&fs[n++], "_revision", (rec_value){.type = REC_INT, .u.i = row->revision});
    if (row->late)
        meta(&fs[n++], "_late", (rec_value){.type = REC_BOOL, .u.b = true});
    record r = {.fields = fs, .n_fields = n};
    rc = record_to_json(&r, out);
cleanup:
    if (fs != stack)
        free(fs);
    return rc;
}
