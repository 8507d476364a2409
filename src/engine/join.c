/* join.c -- the stream-stream interval join:
 *
 *   FROM a [LEFT] JOIN b ON a.k = b.k [AND cond] WITHIN d
 *
 * Rows of both inputs are buffered per join key (the first equality of ON
 * between an expression of a and one of b, evaluated on each side's own
 * record). A new row probes the other side's buffer of its key: every row
 * there whose event time is within d of it, and for which the rest of ON
 * and WHERE hold on the pair, gives one output row. So a pair is emitted
 * once, by whichever of its two rows arrives second, whatever the order.
 *
 * The pair is evaluated on a merged record: a's fields as "a.x", b's as
 * "b.x" (the planner rewrote qualified names to these), "a.ts"/"a.key"/
 * "b.ts"/"b.key" for the pseudo-columns, and every field also bare (a's
 * first) for unqualified names.
 *
 * Expiry is by watermark: a record whose partners would all be gone
 * (ts + d < watermark - lateness) is late (side output); buffered rows are
 * dropped once no acceptable record can match them (ts < watermark -
 * lateness - 2d). LEFT JOIN: a row of a that has matched nothing when the
 * watermark passes a.ts + d is emitted once with b's columns NULL (a late b
 * arriving within lateness afterwards still gives its pair). The scan for
 * such rows visits every key, so it runs at most every WITHIN/16 of event
 * time: an unmatched row may come out that much after its due time.
 *
 * Output identity: a hash of both input rows' (input, partition, offset),
 * or of a's alone with a marker for an unmatched LEFT row.
 */
#include "engine/rule_int.h"
#include "base/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

void eng_jrec_free(eng_rule *r, eng_jrec *j)
{
    if (!j)
        return;
    eng_state_sub(r, j->bytes);
    free(j);
}

eng_jrec *eng_jrec_copy(eng_rule *r, const record *rec, const rec_value *sf, int *rc)
{
    size_t bytes = sizeof(eng_jrec) + rec->n_fields * sizeof(rec_field) + rec->key_len +
                   r->n_sf * sizeof(rec_value);
    for (uint32_t i = 0; i < rec->n_fields; i++)
        bytes += rec->fields[i].name_len + eng_val_extra(&rec->fields[i].v);
    for (uint32_t i = 0; sf && i < r->n_sf; i++)
        bytes += eng_val_extra(&sf[i]);
    if ((*rc = eng_state_add(r, bytes))) {
        eng_fail(r, *rc, "the rule's state would pass max_state (%zu bytes)", r->max_state);
        return NULL;
    }
    eng_jrec *j = calloc(1, bytes);
    if (!j) {
        eng_state_sub(r, bytes);
        *rc = eng_fail(r, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    j->bytes = bytes;
    j->ts = rec->ts;
    j->rec.ts = rec->ts;
    j->rec.n_fields = rec->n_fields;
    j->sf = (rec_value *)(j + 1);
    j->rec.fields = (rec_field *)(j->sf + r->n_sf);
    char *dst = (char *)(j->rec.fields + rec->n_fields);
    for (uint32_t i = 0; i < r->n_sf; i++)
        j->sf[i] = sf ? eng_val_copy(&sf[i], &dst) : sql_null();
    for (uint32_t i = 0; i < rec->n_fields; i++) {
        rec_field *f = &j->rec.fields[i];
        f->name_len = rec->fields[i].name_len;
        memcpy(dst, rec->fields[i].name, f->name_len);
        f->name = dst;
        dst += f->name_len;
        f->v = eng_val_copy(&rec->fields[i].v, &dst);
    }
    if (rec->key_len) {
        memcpy(dst, rec->key, rec->key_len);
        j->rec.key = dst;
        j->rec.key_len = rec->key_len;
    }
    return j;
}

int eng_jbuf_push(eng_rule *r, eng_jbuf *b, eng_jrec *j)
{
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 4;
        size_t delta = (cap - b->cap) * sizeof(eng_jrec *);
        int rc = eng_state_add(r, delta);
        if (rc)
            return rc;
        eng_jrec **ni = realloc(b->items, cap * sizeof(eng_jrec *));
        if (!ni) {
            eng_state_sub(r, delta);
            return WEIR_ENOMEM;
        }
        b->items = ni;
        b->cap = cap;
    }
    b->items[b->n++] = j;
    return WEIR_OK;
}

static int add_field(arena *a, rec_field *f, const char *pfx, const char *name, size_t nlen,
                     rec_value v)
{
    size_t pl = pfx ? strlen(pfx) + 1 : 0;
    if (nlen + pl > 65535)
        return WEIR_ETOOBIG;
    char *s = arena_alloc_bytes(a, pl + nlen + 1);
    if (!s)
        return WEIR_ENOMEM;
    if (pfx) {
        memcpy(s, pfx, pl - 1);
        s[pl - 1] = '.';
    }
    memcpy(s + pl, name, nlen);
    s[pl + nlen] = 0;
    f->name = s;
    f->name_len = (uint16_t)(pl + nlen);
    f->v = v;
    return WEIR_OK;
}

/* The merged record of a pair (b may be NULL); *n_qual receives how many
 * leading fields are the qualified copies of the inputs' fields. */
static int merge_recs(eng_rule *r, const record *ra, const record *rb, record *out,
                      uint32_t *n_qual)
{
    arena *a = &r->scratch;
    const record *sides[2] = {ra, rb};
    uint32_t total = 8;
    for (int s = 0; s < 2; s++)
        if (sides[s])
            total += 2 * sides[s]->n_fields;
    rec_field *f = arena_alloc(a, total * sizeof(rec_field));
    if (!f)
        return eng_fail_mem(r);
    uint32_t n = 0;
    for (int s = 0; s < 2; s++) {
        if (!sides[s])
            continue;
        const char *tsf = r->ts_fields[s];
        size_t tsl = tsf ? strlen(tsf) : 0;
        for (uint32_t i = 0; i < sides[s]->n_fields; i++) {
            const rec_field *x = &sides[s]->fields[i];
            /* The stream's event-time field reads as the event time (ns). */
            rec_value v = tsf && x->name_len == tsl && memcmp(x->name, tsf, tsl) == 0
                              ? sql_int(sides[s]->ts)
                              : x->v;
            if (add_field(a, &f[n++], r->aliases[s], x->name, x->name_len, v))
                return eng_fail_mem(r);
        }
    }
    *n_qual = n;
    for (int s = 0; s < 2; s++) {
        if (!sides[s])
            continue;
        const record *x = sides[s];
        if (!record_get(x, "ts", 2) &&
            add_field(a, &f[n++], r->aliases[s], "ts", 2, sql_int(x->ts)))
            return eng_fail_mem(r);
        if (!record_get(x, "key", 3) &&
            add_field(a, &f[n++], r->aliases[s], "key", 3,
                      x->key_len ? sql_text(x->key, x->key_len) : sql_null()))
            return eng_fail_mem(r);
    }
    uint32_t bare0 = n;
    for (int s = 0; s < 2; s++) {
        if (!sides[s])
            continue;
        for (uint32_t i = 0; i < sides[s]->n_fields; i++) {
            const rec_field *x = &sides[s]->fields[i];
            bool dup = false;
            for (uint32_t k = bare0; k < n && !dup; k++)
                dup = f[k].name_len == x->name_len && memcmp(f[k].name, x->name, x->name_len) == 0;
            if (!dup) {
                f[n] = *x;
                f[n++].v = f[(s == 1 && sides[0] ? sides[0]->n_fields : 0) + i].v;
            }
        }
    }
    memset(out, 0, sizeof(*out));
    out->fields = f;
    out->n_fields = n;
    out->ts = ra ? ra->ts : rb->ts;
    out->key = ra ? ra->key : rb->key;
    out->key_len = ra ? ra->key_len : rb->key_len;
    return WEIR_OK;
}

static uint64_t pair_id(const eng_jrec *a, const eng_jrec *b)
{
    uint64_t ids[2] = {eng_id_record(0, a->partition, a->offset, 0),
                       b ? eng_id_record(1, b->partition, b->offset, 0) : 0x4c454654ull};
    return XXH3_64bits(ids, sizeof(ids));
}

/* Evaluates and emits the pair (b NULL: an unmatched LEFT row). *hit tells
 * whether the conditions held. */
static int emit_pair(eng_rule *r, const eng_jrec *ja, const eng_jrec *jb, bool *hit)
{
    *hit = false;
    record m;
    uint32_t n_qual = 0;
    int rc = merge_recs(r, &ja->rec, jb ? &jb->rec : NULL, &m, &n_qual);
    if (rc)
        return rc;
    rec_value *pre = NULL;
    if (r->n_sf) {
        pre = arena_alloc(&r->scratch, r->n_sf * sizeof(rec_value));
        if (!pre)
            return eng_fail_mem(r);
        for (uint32_t i = 0; i < r->n_sf; i++)
            pre[i] = r->sf[i].side == 0 ? ja->sf[i] : jb ? jb->sf[i] : sql_null();
    }
    sql_row row;
    eng_record_row(r, &m, 0, &row, pre);
    row.ts_field = NULL;
    sql_eval_error ee = {{0}};
    const sql_node *conds[2] = {jb ? r->jextra : NULL, r->sel->where};
    for (int i = 0; i < 2; i++) {
        if (!conds[i])
            continue;
        sql_tri t;
        if (sql_eval_cond(conds[i], &row, &t, &r->scratch, &ee))
            return eng_fail(r, WEIR_EINVAL, "%s", ee.msg);
        if (t != SQL_TRUE)
            return WEIR_OK;
    }
    *hit = true;
    if (r->join_agg) {
        /* The pair is one row of the aggregation, at the later event time. */
        m.ts = jb && jb->ts > ja->ts ? jb->ts : ja->ts;
        row.ts = m.ts;
        uint64_t saved = r->cur_id;
        r->cur_id = pair_id(ja, jb);
        rc = eng_window_push_row(r, &row, &m);
        r->cur_id = saved;
        return rc;
    }
    record star;
    const record *star_rec = &star;
    if (r->star_side < 0) {
        star = m;
        star.n_fields = n_qual;
    } else {
        const eng_jrec *js = r->star_side == 0 ? ja : jb;
        if (js)
            star_rec = &js->rec;
        else
            memset(&star, 0, sizeof(star));
    }
    int64_t ts = jb && jb->ts > ja->ts ? jb->ts : ja->ts;
    return eng_project_emit(r, &row, star_rec, ja->rec.key_len ? ja->rec.key : NULL,
                            ja->rec.key_len, ts, pair_id(ja, jb));
}

int eng_join_push(eng_rule *r, const record *rec, const rec_value *pre)
{
    const eng_input_rec *in = r->cur;
    uint32_t side = in->input;
    if (rec->ts + r->within < r->wm - r->lateness)
        return eng_emit_late(r, rec);
    sql_row row;
    eng_record_row(r, rec, side, &row, NULL);
    rec_value kv;
    sql_eval_error ee = {{0}};
    if (sql_eval(r->jkey[side], &row, &kv, &r->scratch, &ee))
        return eng_fail(r, WEIR_EINVAL, "%s", ee.msg);
    int rc;
    eng_jrec *j = eng_jrec_copy(r, rec, pre, &rc);
    if (!j)
        return rc;
    j->partition = in->partition;
    j->offset = in->offset;
    j->commit_ns = in->commit_ns;
    uint64_t h = eng_hash_vals(&kv, 1);
    bool created;
    eng_group *g = eng_gtab_get(r, &r->jgroups, &kv, 1, h, &created, &rc);
    if (!g) {
        eng_jrec_free(r, j);
        return rc;
    }
    if (kv.type != REC_NULL) {
        eng_jbuf *other = &g->jb[1 - side];
        for (uint32_t i = 0; i < other->n; i++) {
            eng_jrec *o = other->items[i];
            int64_t dt = o->ts > j->ts ? o->ts - j->ts : j->ts - o->ts;
            if (dt > r->within)
                continue;
            eng_jrec *ja = side == 0 ? j : o, *jb = side == 0 ? o : j;
            bool hit;
            if ((rc = emit_pair(r, ja, jb, &hit))) {
                eng_jrec_free(r, j);
                return rc;
            }
            if (hit)
                ja->matched = true;
        }
    }
    if ((rc = eng_jbuf_push(r, &g->jb[side], j))) {
        eng_jrec_free(r, j);
        return eng_fail(r, rc, "the rule's state would pass max_state (%zu bytes)",
                        r->max_state);
    }
    if (side == 0 && r->left_join && !j->matched && j->ts + r->within < r->next_left_check)
        r->next_left_check = j->ts + r->within;
    return WEIR_OK;
}

int eng_join_advance(eng_rule *r)
{
    bool left_due = r->left_join && r->wm >= r->next_left_check;
    if (!r->have_jsweep) {
        r->have_jsweep = true;
        r->join_sweep = r->wm;
    }
    bool sweep = r->wm - r->join_sweep >= r->within;
    if (!left_due && !sweep)
        return WEIR_OK;
    if (sweep)
        r->join_sweep = r->wm;
    int64_t horizon = r->wm - r->lateness - 2 * r->within;
    r->next_left_check = INT64_MAX;
    eng_group *g = r->jgroups.first;
    while (g) {
        eng_group *next = g->next;
        for (int s = 0; s < 2; s++) {
            eng_jbuf *b = &g->jb[s];
            uint32_t k = 0;
            for (uint32_t i = 0; i < b->n; i++) {
                eng_jrec *j = b->items[i];
                if (s == 0 && r->left_join && !j->matched) {
                    if (j->ts + r->within <= r->wm) {
                        arena_reset(&r->scratch);
                        bool hit;
                        int rc = emit_pair(r, j, NULL, &hit);
                        if (rc)
                            return rc;
                        j->matched = true;
                    } else if (j->ts + r->within < r->next_left_check) {
                        r->next_left_check = j->ts + r->within;
                    }
                }
                if (j->ts < horizon && (s == 1 || !r->left_join || j->matched)) {
                    eng_jrec_free(r, j);
                    continue;
                }
                b->items[k++] = j;
            }
            b->n = k;
        }
        if (g->jb[0].n == 0 && g->jb[1].n == 0)
            eng_gtab_remove(r, &r->jgroups, g);
        g = next;
    }
    /* Scan for unmatched LEFT rows at most every WITHIN/16 of event time,
     * not on every record: each scan visits every key. */
    int64_t step = r->within / 16 > 0 ? r->within / 16 : 1;
    if (r->next_left_check != INT64_MAX && r->next_left_check < r->wm + step)
        r->next_left_check = r->wm + step;
    return WEIR_OK;
}
