/* statefn.c -- state functions over the sequence of records of one key:
 *
 *   changes(x)           TRUE when x differs from its value in the previous
 *                        record of the same key; FALSE on the first record
 *   lag(x[, n])          x of the record n (default 1) records earlier for
 *                        this key; NULL before there were n
 *   time_since_change(x) event time (ns, INT) since x last changed for this
 *                        key (0 on the record where it changes); NULL until
 *                        it first changed
 *   changed_at(x)        the event time of that last change, or NULL
 *
 * The key is the record's key (the stream's KEY column), so no GROUP BY is
 * needed: one state per (call site, key), kept in a group table of its own
 * (r->sf_keys). Records are taken in the order they are pushed (offset
 * order per partition; a key lives in one partition), and every record is
 * taken, before WHERE, so `WHERE changes(x)` sees each change exactly once.
 * Two values are the same when SQL would call them equal (1 = 1.0) or both
 * are NULL. The evaluator gets the values through sql_row.pre_nodes.
 */
#include "engine/rule_int.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

void eng_sf_free(eng_rule *r, eng_group *g)
{
    if (!g->sf)
        return;
    for (uint32_t i = 0; i < r->n_sf; i++) {
        eng_sf_state *s = &g->sf[i];
        for (uint32_t k = 0; k < r->sf[i].depth; k++)
            eng_val_free(r, &s->ring[k]);
        free(s->ring);
        eng_state_sub(r, r->sf[i].depth * sizeof(eng_val));
    }
    free(g->sf);
    eng_state_sub(r, r->n_sf * sizeof(eng_sf_state));
    g->sf = NULL;
}

int eng_sf_alloc(eng_rule *r, eng_group *g)
{
    size_t bytes = r->n_sf * sizeof(eng_sf_state);
    for (uint32_t i = 0; i < r->n_sf; i++)
        bytes += r->sf[i].depth * sizeof(eng_val);
    int rc = eng_state_add(r, bytes);
    if (rc)
        return rc;
    g->sf = calloc(r->n_sf, sizeof(eng_sf_state));
    bool oom = !g->sf;
    for (uint32_t i = 0; !oom && i < r->n_sf; i++) {
        g->sf[i].ring = calloc(r->sf[i].depth, sizeof(eng_val));
        oom = !g->sf[i].ring;
    }
    if (oom) {
        if (g->sf)
            for (uint32_t i = 0; i < r->n_sf; i++)
                free(g->sf[i].ring);
        free(g->sf);
        g->sf = NULL;
        eng_state_sub(r, bytes);
        return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

static const eng_val *ring_newest(const eng_sf_state *s, uint32_t depth)
{
    return s->n ? &s->ring[(s->head + s->n - 1) % depth] : NULL;
}

static int ring_push(eng_rule *r, eng_sf_state *s, uint32_t depth, const rec_value *v)
{
    uint32_t slot;
    if (s->n < depth) {
        slot = (s->head + s->n) % depth;
        s->n++;
    } else {
        slot = s->head;
        s->head = (s->head + 1) % depth;
    }
    return eng_val_set(r, &s->ring[slot], v);
}

eng_group *eng_sf_group(eng_rule *r, const record *rec, int *rc)
{
    rec_value kv = rec->key_len ? sql_text(rec->key, rec->key_len) : sql_null();
    uint64_t h = eng_hash_vals(&kv, 1);
    bool created;
    eng_group *g = eng_gtab_get(r, &r->sf_keys, &kv, 1, h, &created, rc);
    if (!g)
        return NULL;
    if (!g->sf && (*rc = eng_sf_alloc(r, g))) {
        eng_gtab_remove(r, &r->sf_keys, g);
        *rc = eng_fail(r, *rc, "the rule's state would pass max_state (%zu bytes)", r->max_state);
        return NULL;
    }
    return g;
}

int eng_sf_eval(eng_rule *r, const record *rec, rec_value *pre)
{
    int rc;
    eng_group *g = eng_sf_group(r, rec, &rc);
    if (!g)
        return rc;
    sql_row row;
    eng_record_row(r, rec, r->cur ? r->cur->input : 0, &row, NULL);
    arena *a = &r->scratch;
    /* Evaluate every argument first, so that an error leaves the state alone. */
    rec_value *xs = arena_alloc(a, (r->n_sf + 1) * sizeof(rec_value));
    if (!xs)
        return eng_fail_mem(r);
    /* In a join, a record updates only the sites that read its side. */
    int side = r->sel->join && r->cur ? (int)r->cur->input : -1;
    for (uint32_t i = 0; i < r->n_sf; i++) {
        sql_eval_error ee = {{0}};
        xs[i] = sql_null();
        if (side >= 0 && r->sf[i].side != side)
            continue;
        if (sql_eval(r->sf[i].arg, &row, &xs[i], a, &ee))
            return eng_fail(r, WEIR_EINVAL, "%s", ee.msg);
    }
    for (uint32_t i = 0; i < r->n_sf; i++) {
        const eng_sf_site *site = &r->sf[i];
        if (side >= 0 && site->side != side) {
            pre[i] = sql_null();
            continue;
        }
        eng_sf_state *s = &g->sf[i];
        const rec_value *x = &xs[i];
        if (site->kind == ENG_SF_LAG) {
            pre[i] = s->n == site->depth ? s->ring[s->head].v : sql_null();
            /* The value must outlive the ring update below. */
            if (eng_val_extra(&pre[i])) {
                char *p = arena_alloc_bytes(a, pre[i].u.s.len);
                if (!p)
                    return eng_fail_mem(r);
                pre[i] = eng_val_copy(&pre[i], &p);
            }
            if ((rc = ring_push(r, s, site->depth, x)))
                return eng_fail(r, rc, "the rule's state would pass max_state");
            continue;
        }
        const eng_val *prev = ring_newest(s, site->depth);
        bool changed = prev && !eng_val_same(&prev->v, x);
        if (changed) {
            s->has_change = true;
            s->change_ts = rec->ts;
        }
        if (!prev || changed)
            if ((rc = ring_push(r, s, site->depth, x)))
                return eng_fail(r, rc, "the rule's state would pass max_state");
        switch (site->kind) {
        case ENG_SF_CHANGES: pre[i] = sql_bool(changed); break;
        case ENG_SF_SINCE:
            pre[i] = s->has_change ? sql_int(rec->ts - s->change_ts) : sql_null();
            break;
        default: pre[i] = s->has_change ? sql_int(s->change_ts) : sql_null(); break;
        }
    }
    return WEIR_OK;
}
