/* group.c -- the group table of a rule: a chained hash map from key values
 * (the GROUP BY values, a record key for state functions, a join key) to a
 * group, plus the value copies and the memory accounting of all state.
 *
 * Chaining (not open addressing) so that groups can be removed when their
 * windows are gone without tombstones; a doubly linked list keeps creation
 * order, so that windows close in the same order whatever the hash, and a
 * restored rule emits exactly as the original would have. Each group is one
 * malloc (struct, key values, their strings, key text), counted in
 * state_bytes.
 */
#include "engine/rule_int.h"
#include "base/err.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

int eng_state_add(eng_rule *r, size_t delta)
{
    if (r->state_bytes + delta > r->max_state)
        return WEIR_ETOOBIG;
    r->state_bytes += delta;
    return WEIR_OK;
}

void eng_state_sub(eng_rule *r, size_t delta)
{
    r->state_bytes = delta > r->state_bytes ? 0 : r->state_bytes - delta;
}

static uint64_t hash_value(const rec_value *v)
{
    switch (v->type) {
    case REC_NULL: return 1;
    case REC_BOOL: return v->u.b ? 3 : 2;
    case REC_INT: return XXH3_64bits(&v->u.i, 8) ^ 4;
    case REC_DOUBLE: {
        double d = v->u.d;
        if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
            int64_t i = (int64_t)d;
            return XXH3_64bits(&i, 8) ^ 4; /* 2.0 groups with 2 */
        }
        return XXH3_64bits(&d, 8) ^ 5;
    }
    default: return XXH3_64bits(v->u.s.p, v->u.s.len) ^ (uint64_t)v->type;
    }
}

uint64_t eng_hash_vals(const rec_value *vals, uint32_t n)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (uint32_t i = 0; i < n; i++)
        h = (h ^ hash_value(&vals[i])) * 0x100000001b3ULL + (h >> 29);
    return h;
}

bool eng_val_same(const rec_value *a, const rec_value *b)
{
    if (a->type == REC_NULL || b->type == REC_NULL)
        return a->type == b->type;
    if (sql_is_number(a) && sql_is_number(b)) {
        if (a->type == REC_INT && b->type == REC_INT)
            return a->u.i == b->u.i;
        if (a->type == REC_DOUBLE && b->type == REC_DOUBLE)
            return a->u.d == b->u.d || (isnan(a->u.d) && isnan(b->u.d));
        int cmp = 1;
        bool unknown = false;
        if (sql_value_compare(a, b, &cmp, &unknown, NULL))
            return false;
        return cmp == 0;
    }
    if (a->type != b->type)
        return false;
    if (a->type == REC_BOOL)
        return a->u.b == b->u.b;
    return a->u.s.len == b->u.s.len && memcmp(a->u.s.p, b->u.s.p, a->u.s.len) == 0;
}

size_t eng_val_extra(const rec_value *v)
{
    return (v->type == REC_STRING || v->type == REC_JSON) ? v->u.s.len : 0;
}

rec_value eng_val_copy(const rec_value *v, char **dst)
{
    rec_value out = *v;
    if ((v->type == REC_STRING || v->type == REC_JSON)) {
        if (v->u.s.len)
            memcpy(*dst, v->u.s.p, v->u.s.len);
        out.u.s.p = *dst;
        *dst += v->u.s.len;
    }
    return out;
}

int eng_val_set(eng_rule *r, eng_val *dst, const rec_value *v)
{
    size_t need = eng_val_extra(v);
    if (need > dst->cap) {
        uint32_t cap = need < 32 ? 32 : (uint32_t)need;
        int rc = eng_state_add(r, cap);
        if (rc)
            return rc;
        char *m = malloc(cap);
        if (!m) {
            eng_state_sub(r, cap);
            return WEIR_ENOMEM;
        }
        eng_state_sub(r, dst->cap);
        free(dst->mem);
        dst->mem = m;
        dst->cap = cap;
    }
    char *p = dst->mem;
    dst->v = eng_val_copy(v, &p);
    return WEIR_OK;
}

void eng_val_free(eng_rule *r, eng_val *dst)
{
    eng_state_sub(r, dst->cap);
    free(dst->mem);
    dst->mem = NULL;
    dst->cap = 0;
    dst->v = sql_null();
}

void eng_gtab_init(eng_gtab *t)
{
    memset(t, 0, sizeof(*t));
}

eng_group *eng_gtab_find(eng_gtab *t, const rec_value *vals, uint32_t n, uint64_t h)
{
    if (!t->cap)
        return NULL;
    for (eng_group *g = t->buckets[h & (t->cap - 1)]; g; g = g->bnext) {
        if (g->hash != h || g->n_vals != n)
            continue;
        bool same = true;
        for (uint32_t k = 0; k < n && same; k++)
            same = eng_val_same(&g->vals[k], &vals[k]);
        if (same)
            return g;
    }
    return NULL;
}

static int grow(eng_rule *r, eng_gtab *t)
{
    size_t cap = t->cap ? t->cap * 2 : 64;
    int rc = eng_state_add(r, (cap - t->cap) * sizeof(eng_group *));
    if (rc)
        return rc;
    eng_group **nb = calloc(cap, sizeof(eng_group *));
    if (!nb) {
        eng_state_sub(r, (cap - t->cap) * sizeof(eng_group *));
        return WEIR_ENOMEM;
    }
    for (eng_group *g = t->first; g; g = g->next) {
        size_t i = g->hash & (cap - 1);
        g->bnext = nb[i];
        nb[i] = g;
    }
    free(t->buckets);
    t->buckets = nb;
    t->cap = cap;
    return WEIR_OK;
}

/* The text of a value for the key text ("a/3/true"). */
static size_t key_piece(const rec_value *v, char *buf, size_t cap)
{
    switch (v->type) {
    case REC_NULL: return (size_t)snprintf(buf, cap, "null");
    case REC_BOOL: return (size_t)snprintf(buf, cap, "%s", v->u.b ? "true" : "false");
    case REC_INT: return (size_t)snprintf(buf, cap, "%lld", (long long)v->u.i);
    case REC_DOUBLE: {
        char tmp[40];
        rec_format_double(v->u.d, tmp);
        return (size_t)snprintf(buf, cap, "%s", tmp);
    }
    default:
        if (buf && cap > v->u.s.len)
            memcpy(buf, v->u.s.p, v->u.s.len);
        return v->u.s.len;
    }
}

eng_group *eng_gtab_get(eng_rule *r, eng_gtab *t, const rec_value *vals, uint32_t n, uint64_t h,
                        bool *created, int *rc)
{
    *rc = WEIR_OK;
    *created = false;
    eng_group *g = eng_gtab_find(t, vals, n, h);
    if (g)
        return g;
    if (r->n_groups_open >= r->max_groups) {
        *rc = eng_fail(r, WEIR_ETOOBIG, "the rule has more than %u open groups (max_groups)",
                       r->max_groups);
        return NULL;
    }
    if ((t->n + 1) > t->cap && (*rc = grow(r, t))) {
        if (*rc == WEIR_ETOOBIG)
            eng_fail(r, *rc, "the rule's state would pass max_state (%zu bytes)", r->max_state);
        return NULL;
    }
    size_t extra = 0, ktext = 0;
    char tmp[64];
    for (uint32_t k = 0; k < n; k++) {
        extra += eng_val_extra(&vals[k]);
        ktext += key_piece(&vals[k], tmp, sizeof(tmp)) + 1;
    }
    size_t bytes = sizeof(eng_group) + n * sizeof(rec_value) + extra + ktext + 1;
    if ((*rc = eng_state_add(r, bytes))) {
        eng_fail(r, *rc, "the rule's state would pass max_state (%zu bytes)", r->max_state);
        return NULL;
    }
    g = calloc(1, bytes);
    if (!g) {
        eng_state_sub(r, bytes);
        *rc = eng_fail(r, WEIR_ENOMEM, "out of memory");
        return NULL;
    }
    g->bytes = bytes;
    g->hash = h;
    g->n_vals = n;
    g->vals = (rec_value *)(g + 1);
    char *dst = (char *)(g->vals + n);
    for (uint32_t k = 0; k < n; k++)
        g->vals[k] = eng_val_copy(&vals[k], &dst);
    char *kt = dst;
    size_t kl = 0;
    for (uint32_t k = 0; k < n; k++) {
        if (k)
            kt[kl++] = '/';
        kl += key_piece(&vals[k], kt + kl, ktext + 1 - kl);
    }
    kt[kl] = 0;
    g->keytext = kt;
    g->keylen = (uint32_t)kl;
    size_t i = h & (t->cap - 1);
    g->bnext = t->buckets[i];
    t->buckets[i] = g;
    g->prev = t->last;
    if (t->last)
        t->last->next = g;
    else
        t->first = g;
    t->last = g;
    t->n++;
    r->n_groups_open++;
    *created = true;
    return g;
}

void eng_group_free_state(eng_rule *r, eng_group *g)
{
    size_t freed = 0;
    if (g->state) {
        free(g->state);
        freed += r->state_size;
        g->state = NULL;
    }
    if (g->panes) {
        free(g->panes);
        freed += (size_t)g->p_cap * r->pane_stride;
        g->panes = NULL;
        g->p_n = g->p_off = g->p_cap = 0;
    }
    if (g->revs) {
        free(g->revs);
        freed += g->cap_revs * sizeof(eng_rev);
        g->revs = NULL;
        g->n_revs = g->cap_revs = 0;
    }
    if (g->ents) {
        for (uint32_t i = 0; i < g->e_n; i++) {
            freed += g->ents[g->e_off + i]->bytes;
            free(g->ents[g->e_off + i]);
        }
        free(g->ents);
        freed += g->e_cap * sizeof(eng_entry *);
        g->ents = NULL;
        g->e_n = g->e_off = g->e_cap = 0;
    }
    if (g->run) {
        free(g->run);
        freed += r->state_size;
        g->run = NULL;
    }
    if (g->sess) {
        for (uint32_t i = 0; i < g->s_n; i++)
            free(g->sess[i].state);
        freed += g->s_n * r->state_size + g->s_cap * sizeof(eng_session);
        free(g->sess);
        g->sess = NULL;
        g->s_n = g->s_cap = 0;
    }
    for (int s = 0; s < 2; s++) {
        eng_jbuf *b = &g->jb[s];
        for (uint32_t i = 0; i < b->n; i++)
            eng_jrec_free(r, b->items[i]);
        free(b->items);
        freed += b->cap * sizeof(eng_jrec *);
        memset(b, 0, sizeof(*b));
    }
    eng_state_sub(r, freed);
    if (g->sf)
        eng_sf_free(r, g);
}

void eng_gtab_remove(eng_rule *r, eng_gtab *t, eng_group *g)
{
    eng_group **pp = &t->buckets[g->hash & (t->cap - 1)];
    while (*pp != g)
        pp = &(*pp)->bnext;
    *pp = g->bnext;
    if (g->prev)
        g->prev->next = g->next;
    else
        t->first = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        t->last = g->prev;
    t->n--;
    if (r->n_groups_open)
        r->n_groups_open--;
    eng_group_free_state(r, g);
    eng_state_sub(r, g->bytes);
    free(g);
}

void eng_gtab_clear(eng_rule *r, eng_gtab *t)
{
    while (t->first)
        eng_gtab_remove(r, t, t->first);
    eng_state_sub(r, t->cap * sizeof(eng_group *));
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}
