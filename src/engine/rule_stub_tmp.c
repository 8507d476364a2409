/* rule_stub_tmp.c -- TEMPORARY stand-in for the rule engine (branch
 * wip-engine) so the runtime can be built and tested before it lands:
 * per-record projection of bare columns or *, no WHERE, no windows. It is
 * deleted by the merge of wip-engine. */
#include "base/err.h"
#include "engine/rule.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct eng_rule {
    char *inputs[1];
    char *target;
    uint32_t n_cols;
    char **cols; /* NULL entry: * */
    bool star;
    eng_rule_stats st;
};

int eng_rule_compile(const sql_stmt *stmt, eng_stream_lookup_fn lookup, void *lookup_arg,
                     const eng_limits *lim, eng_rule **out, sql_error *err)
{
    (void)lim;
    const sql_select *s = stmt->select;
    if (!s) {
        snprintf(err->msg, sizeof(err->msg), "not a query");
        err->line = stmt->line;
        err->column = stmt->column;
        return WEIR_EINVAL;
    }
    const char *tsf;
    if (!lookup(lookup_arg, s->from.stream, &tsf)) {
        snprintf(err->msg, sizeof(err->msg), "no stream named '%s'", s->from.stream);
        err->line = s->from.line;
        err->column = s->from.column;
        return WEIR_ENOTFOUND;
    }
    eng_rule *r = calloc(1, sizeof(*r));
    r->inputs[0] = strdup(s->from.stream);
    r->target = strdup(s->emit_target ? s->emit_target : "");
    r->cols = calloc(s->n_items + 1, sizeof(char *));
    for (uint32_t i = 0; i < s->n_items; i++) {
        const sql_node *e = s->items[i].expr;
        if (e->kind == SQL_N_STAR) {
            r->star = true;
        } else if (e->kind == SQL_N_IDENT) {
            r->cols[r->n_cols++] = strdup(e->name);
        } else {
            snprintf(err->msg, sizeof(err->msg), "stub engine: only columns");
            err->line = s->items[i].line;
            err->column = s->items[i].column;
            eng_rule_free(r);
            return WEIR_EUNSUPPORTED;
        }
    }
    *out = r;
    return WEIR_OK;
}

void eng_rule_free(eng_rule *r)
{
    if (!r)
        return;
    free(r->inputs[0]);
    free(r->target);
    for (uint32_t i = 0; i < r->n_cols; i++)
        free(r->cols[i]);
    free(r->cols);
    free(r);
}

uint32_t eng_rule_n_inputs(const eng_rule *r)
{
    (void)r;
    return 1;
}
const char *eng_rule_input(const eng_rule *r, uint32_t i)
{
    return i == 0 ? r->inputs[0] : NULL;
}
const char *eng_rule_target(const eng_rule *r)
{
    return r->target;
}
uint32_t eng_rule_n_cols(const eng_rule *r)
{
    return r->n_cols;
}
const char *eng_rule_col(const eng_rule *r, uint32_t i)
{
    return r->cols[i];
}

int eng_rule_push(eng_rule *r, const eng_input_rec *in, eng_emit_fn emit, void *emit_arg,
                  char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    const char *names[64];
    rec_value vals[64];
    char namebuf[64][64];
    uint32_t n = 0;
    r->st.records_in++;
    if (r->star) {
        for (uint32_t i = 0; i < in->rec->n_fields && n < 64; i++) {
            size_t l = in->rec->fields[i].name_len < 63 ? in->rec->fields[i].name_len : 63;
            memcpy(namebuf[n], in->rec->fields[i].name, l);
            namebuf[n][l] = 0;
            names[n] = namebuf[n];
            vals[n++] = in->rec->fields[i].v;
        }
    }
    for (uint32_t i = 0; i < r->n_cols && n < 64; i++) {
        const rec_value *v = record_get(in->rec, r->cols[i], strlen(r->cols[i]));
        names[n] = r->cols[i];
        if (v)
            vals[n++] = *v;
        else
            vals[n++] = (rec_value){.type = REC_NULL};
    }
    eng_row row = {.n_cols = n, .names = names, .vals = vals, .ts = in->rec->ts,
                   .key = in->rec->key, .key_len = in->rec->key_len,
                   .id = ((uint64_t)in->input << 60) ^ ((uint64_t)in->partition << 48) ^ in->offset,
                   .src_commit_ns = in->commit_ns};
    r->st.records_out++;
    return emit(emit_arg, &row);
}

int eng_rule_tick(eng_rule *r, int64_t now_ns, eng_emit_fn emit, void *emit_arg, char *err,
                  size_t errlen)
{
    (void)r, (void)now_ns, (void)emit, (void)emit_arg, (void)err, (void)errlen;
    return WEIR_OK;
}

void eng_rule_get_stats(const eng_rule *r, eng_rule_stats *out)
{
    *out = r->st;
}

int eng_rule_checkpoint(const eng_rule *r, weir_buf *out)
{
    return buf_append(out, &r->st, sizeof(r->st));
}

int eng_rule_restore(eng_rule *r, const uint8_t *p, size_t n)
{
    if (n != sizeof(r->st))
        return WEIR_ECORRUPT;
    memcpy(&r->st, p, n);
    return WEIR_OK;
}

int eng_rule_explain(const eng_rule *r, weir_buf *out)
{
    (void)r;
    return buf_append(out, "{\"stub\":true}", 13);
}
