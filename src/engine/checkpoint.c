/* checkpoint.c -- the whole state of a rule as portable bytes, and back.
 *
 * Format version 1, little endian, independent of struct layouts:
 *
 *   "WRCP" version:u8 sql_crc:u32 mode:u8
 *   have_ts:u8 max_ts:i64 wm:i64 have_close:u8 next_close:i64
 *   next_session:i64 next_left_check:i64 have_jsweep:u8 join_sweep:i64
 *   records_in records_out late errors: u64 each
 *   n_groups:u32 group*          (creation order)
 *   n_keys:u32 sfkey*            (state-function keys, creation order)
 *   [n_jkeys:u32 jgroup*]        (rules with a JOIN: the buffers per join key)
 *   crc32c:u32                   (of everything before it)
 *
 *   group  = vals mode-part
 *   vals   = n:u32 value*
 *   value  = type:u8, then BOOL u8 | INT i64 | DOUBLE 8 bytes |
 *            STRING/JSON len:u32 bytes | NULL nothing
 *   states = per aggregate: len:u32 bytes (sql_agg serialize)
 *   mode-part:
 *     GROUP    has:u8 [states]
 *     PANES    n:u32 (start:i64 count:u32 states)* n_revs:u32 (start:i64 rev:u32)*
 *     SLIDING, COUNT  seen:u64 n:u32 (ts:i64 pass:u64 value{n_av})*
 *              SLIDING then: has_run:u8 [run_lo:u32 states] (the running state)
 *     SESSION  n:u32 (start last id_start:i64 rev:u32 flags:u8 states)*
 *   jgroup = vals(1), per side: n:u32 (ts:i64 partition:u32 offset:u64 commit:i64
 *              matched:u8 sf:value{n_sf} key:vals(0 or 1 STRING) fields:n:u32 (name:len:u32 bytes value)*)*
 *   sfkey  = vals, per call site: n:u32 value{n} (oldest first) has:u8 change_ts:i64
 *
 * The sql_crc is the CRC-32C of the rule's canonical SQL: a checkpoint
 * restores only into the same rule text (WEIR_EINVAL otherwise). Every
 * length, count, time and order is checked; anything off is WEIR_ECORRUPT,
 * and the rule is then left with empty state (as freshly compiled).
 */
#include "engine/rule_int.h"
#include "base/crc32c.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

#define CP_VERSION 1
#define CP_TIME_MAX ENG_TIME_MAX

/* ---- writing ---------------------------------------------------------------- */

typedef struct wr {
    weir_buf *b;
    int rc;
} wr;

static void put(wr *w, const void *p, size_t n)
{
    if (!w->rc)
        w->rc = buf_append(w->b, p, n);
}

static void put_u8(wr *w, uint8_t v)
{
    put(w, &v, 1);
}

static void put_u32(wr *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(w, b, 4);
}

static void put_u64(wr *w, uint64_t v)
{
    put_u32(w, (uint32_t)v);
    put_u32(w, (uint32_t)(v >> 32));
}

static void put_i64(wr *w, int64_t v)
{
    put_u64(w, (uint64_t)v);
}

static void put_val(wr *w, const rec_value *v)
{
    put_u8(w, (uint8_t)v->type);
    switch (v->type) {
    case REC_BOOL: put_u8(w, v->u.b); break;
    case REC_INT: put_i64(w, v->u.i); break;
    case REC_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, &v->u.d, 8);
        put_u64(w, bits);
        break;
    }
    case REC_STRING:
    case REC_JSON:
        put_u32(w, v->u.s.len);
        put(w, v->u.s.p, v->u.s.len);
        break;
    default: break;
    }
}

static void put_vals(wr *w, const rec_value *v, uint32_t n)
{
    put_u32(w, n);
    for (uint32_t i = 0; i < n; i++)
        put_val(w, &v[i]);
}

static void put_states(wr *w, const eng_rule *r, const unsigned char *st)
{
    weir_buf tmp;
    buf_init(&tmp, 1u << 24);
    for (uint32_t i = 0; i < r->n_aggs && !w->rc; i++) {
        buf_reset(&tmp);
        int rc = r->aggs[i].agg->serialize(st + r->aggs[i].offset, &tmp);
        if (rc) {
            w->rc = rc;
            break;
        }
        put_u32(w, (uint32_t)buf_used(&tmp));
        put(w, buf_head(&tmp), buf_used(&tmp));
    }
    buf_free(&tmp);
}

static void put_group(wr *w, const eng_rule *r, const eng_group *g)
{
    put_vals(w, g->vals, g->n_vals);
    switch (r->mode) {
    case ENG_MODE_GROUP:
        put_u8(w, g->state != NULL);
        if (g->state)
            put_states(w, r, g->state);
        break;
    case ENG_MODE_PANES:
        put_u32(w, g->p_n);
        for (uint32_t i = 0; i < g->p_n; i++) {
            const unsigned char *p = g->panes + (size_t)(g->p_off + i) * r->pane_stride;
            int64_t s;
            uint32_t c;
            memcpy(&s, p, 8);
            memcpy(&c, p + 8, 4);
            put_i64(w, s);
            put_u32(w, c);
            put_states(w, r, p + ENG_PANE_HDR);
        }
        put_u32(w, g->n_revs);
        for (uint32_t i = 0; i < g->n_revs; i++) {
            put_i64(w, g->revs[i].start);
            put_u32(w, g->revs[i].rev);
        }
        break;
    case ENG_MODE_SLIDING:
    case ENG_MODE_COUNT:
        put_u64(w, g->seen);
        put_u32(w, g->e_n);
        for (uint32_t i = 0; i < g->e_n; i++) {
            const eng_entry *e = g->ents[g->e_off + i];
            put_i64(w, e->ts);
            put_u64(w, e->pass);
            for (uint32_t k = 0; k < r->n_av; k++)
                put_val(w, &e->av[k]);
        }
        if (r->mode == ENG_MODE_SLIDING) {
            bool run = g->run && g->run_valid;
            put_u8(w, run);
            if (run) {
                put_u32(w, g->run_lo - g->e_off);
                put_states(w, r, g->run);
            }
        }
        break;
    case ENG_MODE_SESSION:
        put_u32(w, g->s_n);
        for (uint32_t i = 0; i < g->s_n; i++) {
            const eng_session *s = &g->sess[i];
            put_i64(w, s->start);
            put_i64(w, s->last);
            put_i64(w, s->id_start);
            put_u32(w, s->rev);
            put_u8(w, (uint8_t)((s->emitted ? 1 : 0) | (s->ever_emitted ? 2 : 0)));
            put_states(w, r, s->state);
        }
        break;
    default: break;
    }
}

static void put_jgroup(wr *w, const eng_rule *r, const eng_group *g)
{
    put_vals(w, g->vals, g->n_vals);
    for (int side = 0; side < 2; side++) {
        put_u32(w, g->jb[side].n);
        for (uint32_t i = 0; i < g->jb[side].n; i++) {
            const eng_jrec *j = g->jb[side].items[i];
            put_i64(w, j->ts);
            put_u32(w, j->partition);
            put_u64(w, j->offset);
            put_i64(w, j->commit_ns);
            put_u8(w, j->matched);
            for (uint32_t k = 0; k < r->n_sf; k++)
                put_val(w, &j->sf[k]);
            rec_value kv = sql_text(j->rec.key, j->rec.key_len);
            put_vals(w, &kv, j->rec.key ? 1 : 0);
            put_u32(w, j->rec.n_fields);
            for (uint32_t f = 0; f < j->rec.n_fields; f++) {
                put_u32(w, j->rec.fields[f].name_len);
                put(w, j->rec.fields[f].name, j->rec.fields[f].name_len);
                put_val(w, &j->rec.fields[f].v);
            }
        }
    }
}

int eng_rule_checkpoint(const eng_rule *r, weir_buf *out)
{
    size_t start = buf_used(out);
    wr w = {out, WEIR_OK};
    put(&w, "WRCP", 4);
    put_u8(&w, CP_VERSION);
    put_u32(&w, r->sql_crc);
    put_u8(&w, (uint8_t)r->mode);
    put_u8(&w, r->have_ts);
    put_i64(&w, r->max_ts);
    put_i64(&w, r->wm);
    put_u8(&w, r->have_close);
    put_i64(&w, r->next_close);
    put_i64(&w, r->next_session);
    put_i64(&w, r->next_left_check);
    put_u8(&w, r->have_jsweep);
    put_i64(&w, r->join_sweep);
    put_u64(&w, r->records_in);
    put_u64(&w, r->records_out);
    put_u64(&w, r->late);
    put_u64(&w, r->errors);
    put_u32(&w, (uint32_t)r->groups.n);
    for (const eng_group *g = r->groups.first; g; g = g->next)
        put_group(&w, r, g);
    put_u32(&w, (uint32_t)r->sf_keys.n);
    for (const eng_group *g = r->sf_keys.first; g; g = g->next) {
        put_vals(&w, g->vals, g->n_vals);
        for (uint32_t i = 0; i < r->n_sf; i++) {
            const eng_sf_state *s = &g->sf[i];
            uint32_t depth = r->sf[i].depth;
            put_u32(&w, s->n);
            for (uint32_t k = 0; k < s->n; k++)
                put_val(&w, &s->ring[(s->head + k) % depth].v);
            put_u8(&w, s->has_change);
            put_i64(&w, s->change_ts);
        }
    }
    if (r->sel->join) {
        put_u32(&w, (uint32_t)r->jgroups.n);
        for (const eng_group *g = r->jgroups.first; g; g = g->next)
            put_jgroup(&w, r, g);
    }
    if (!w.rc)
        put_u32(&w, crc32c(buf_head(out) + start, buf_used(out) - start));
    if (w.rc) {
        out->len = out->off + start;
        return w.rc;
    }
    return WEIR_OK;
}

/* ---- reading ------------------------------------------------------------------- */

typedef struct rd {
    const uint8_t *p, *end;
    bool bad;
} rd;

static bool need(rd *d, size_t n)
{
    if (d->bad || (size_t)(d->end - d->p) < n) {
        d->bad = true;
        return false;
    }
    return true;
}

static uint8_t get_u8(rd *d)
{
    return need(d, 1) ? *d->p++ : 0;
}

static uint32_t get_u32(rd *d)
{
    if (!need(d, 4))
        return 0;
    uint32_t v = (uint32_t)d->p[0] | (uint32_t)d->p[1] << 8 | (uint32_t)d->p[2] << 16 |
                 (uint32_t)d->p[3] << 24;
    d->p += 4;
    return v;
}

static uint64_t get_u64(rd *d)
{
    uint64_t lo = get_u32(d);
    return lo | (uint64_t)get_u32(d) << 32;
}

static int64_t get_time(rd *d)
{
    int64_t t = (int64_t)get_u64(d);
    if (t < -CP_TIME_MAX || t > CP_TIME_MAX)
        d->bad = true;
    return t;
}

/* A count of items each at least `min` bytes, so that a huge count fails
 * before anything is allocated for it. */
static uint32_t get_count(rd *d, size_t min)
{
    uint32_t n = get_u32(d);
    if (min && n > (size_t)(d->end - d->p) / min)
        d->bad = true;
    return d->bad ? 0 : n;
}

/* Values point into the checkpoint bytes (copied by whoever keeps them). */
static rec_value get_val(rd *d)
{
    rec_value v = sql_null();
    uint8_t t = get_u8(d);
    switch (t) {
    case REC_NULL: break;
    case REC_BOOL: {
        uint8_t b = get_u8(d);
        if (b > 1)
            d->bad = true;
        v = sql_bool(b);
        break;
    }
    case REC_INT: v = sql_int((int64_t)get_u64(d)); break;
    case REC_DOUBLE: {
        uint64_t bits = get_u64(d);
        double x;
        memcpy(&x, &bits, 8);
        v = sql_double(x);
        break;
    }
    case REC_STRING:
    case REC_JSON: {
        uint32_t n = get_u32(d);
        if (!need(d, n))
            break;
        v.type = (rec_type)t;
        v.u.s.p = (const char *)d->p;
        v.u.s.len = n;
        d->p += n;
        break;
    }
    default: d->bad = true;
    }
    return v;
}

static int get_vals(rd *d, arena *a, rec_value **out, uint32_t *n)
{
    *n = get_count(d, 1);
    *out = arena_alloc(a, (*n + 1) * sizeof(rec_value));
    if (!*out)
        return WEIR_ENOMEM;
    for (uint32_t i = 0; i < *n && !d->bad; i++)
        (*out)[i] = get_val(d);
    return d->bad ? WEIR_ECORRUPT : WEIR_OK;
}

static int get_states(rd *d, eng_rule *r, unsigned char *st)
{
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        uint32_t n = get_u32(d);
        if (!need(d, n))
            return WEIR_ECORRUPT;
        if (r->aggs[i].agg->deserialize(st + r->aggs[i].offset, d->p, n))
            return WEIR_ECORRUPT;
        d->p += n;
    }
    return WEIR_OK;
}

static int alloc_state(eng_rule *r, unsigned char **st)
{
    if (eng_state_add(r, r->state_size))
        return WEIR_ETOOBIG;
    *st = calloc(1, r->state_size + 1);
    if (!*st) {
        eng_state_sub(r, r->state_size);
        return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

static int get_group(rd *d, eng_rule *r)
{
    arena *a = &r->scratch;
    rec_value *vals;
    uint32_t nv;
    int rc = get_vals(d, a, &vals, &nv);
    if (rc)
        return rc;
    uint32_t want = r->n_group;
    if (r->mode == ENG_MODE_JOIN)
        return WEIR_ECORRUPT; /* a plain join keeps no groups */
    if (nv != want)
        return WEIR_ECORRUPT;
    bool created;
    eng_group *g = eng_gtab_get(r, &r->groups, vals, nv, eng_hash_vals(vals, nv), &created, &rc);
    if (!g)
        return rc;
    if (!created)
        return WEIR_ECORRUPT; /* the same key twice */
    switch (r->mode) {
    case ENG_MODE_GROUP: {
        uint8_t has = get_u8(d);
        if (has > 1)
            return WEIR_ECORRUPT;
        if (has) {
            if ((rc = alloc_state(r, &g->state)))
                return rc;
            if ((rc = get_states(d, r, g->state)))
                return rc;
        }
        break;
    }
    case ENG_MODE_PANES: {
        uint32_t n = get_count(d, 12);
        if (n) {
            size_t bytes = (size_t)n * r->pane_stride;
            if (eng_state_add(r, bytes))
                return WEIR_ETOOBIG;
            g->panes = calloc(n, r->pane_stride);
            if (!g->panes) {
                eng_state_sub(r, bytes);
                return WEIR_ENOMEM;
            }
            g->p_cap = n;
        }
        int64_t prev = INT64_MIN;
        for (uint32_t i = 0; i < n; i++) {
            unsigned char *p = g->panes + (size_t)i * r->pane_stride;
            int64_t s = get_time(d);
            uint32_t c = get_u32(d);
            if (d->bad || s <= prev || s % r->pane != 0)
                return WEIR_ECORRUPT;
            prev = s;
            memcpy(p, &s, 8);
            memcpy(p + 8, &c, 4);
            g->p_n = i + 1;
            if ((rc = get_states(d, r, p + ENG_PANE_HDR)))
                return rc;
        }
        uint32_t nr = get_count(d, 12);
        if (nr) {
            if (eng_state_add(r, nr * sizeof(eng_rev)))
                return WEIR_ETOOBIG;
            g->revs = calloc(nr, sizeof(eng_rev));
            if (!g->revs) {
                eng_state_sub(r, nr * sizeof(eng_rev));
                return WEIR_ENOMEM;
            }
            g->cap_revs = nr;
        }
        for (uint32_t i = 0; i < nr; i++) {
            g->revs[i].start = get_time(d);
            g->revs[i].rev = get_u32(d);
            g->n_revs = i + 1;
        }
        break;
    }
    case ENG_MODE_SLIDING:
    case ENG_MODE_COUNT: {
        g->seen = get_u64(d);
        uint32_t n = get_count(d, 16);
        if (r->mode == ENG_MODE_COUNT && n > (uint64_t)r->win.count)
            return WEIR_ECORRUPT;
        if (n) {
            if (eng_state_add(r, n * sizeof(eng_entry *)))
                return WEIR_ETOOBIG;
            g->ents = calloc(n, sizeof(eng_entry *));
            if (!g->ents) {
                eng_state_sub(r, n * sizeof(eng_entry *));
                return WEIR_ENOMEM;
            }
            g->e_cap = n;
        }
        int64_t prev = INT64_MIN;
        rec_value *av = arena_alloc(a, (r->n_av + 1) * sizeof(rec_value));
        if (!av)
            return WEIR_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            int64_t ts = get_time(d);
            uint64_t pass = get_u64(d);
            for (uint32_t k = 0; k < r->n_av; k++)
                av[k] = get_val(d);
            if (d->bad || (r->mode == ENG_MODE_SLIDING && ts < prev))
                return WEIR_ECORRUPT;
            prev = ts;
            size_t extra = 0;
            for (uint32_t k = 0; k < r->n_av; k++)
                extra += eng_val_extra(&av[k]);
            size_t bytes = sizeof(eng_entry) + r->n_av * sizeof(rec_value) + extra;
            if (eng_state_add(r, bytes))
                return WEIR_ETOOBIG;
            eng_entry *e = malloc(bytes);
            if (!e) {
                eng_state_sub(r, bytes);
                return WEIR_ENOMEM;
            }
            e->ts = ts;
            e->pass = pass;
            e->bytes = bytes;
            char *dst = (char *)(e->av + r->n_av);
            for (uint32_t k = 0; k < r->n_av; k++)
                e->av[k] = eng_val_copy(&av[k], &dst);
            g->ents[i] = e;
            g->e_n = i + 1;
        }
        if (r->mode == ENG_MODE_SLIDING) {
            uint8_t run = get_u8(d);
            if (run > 1)
                return WEIR_ECORRUPT;
            if (run) {
                uint32_t lo = get_u32(d);
                if (d->bad || lo > g->e_n)
                    return WEIR_ECORRUPT;
                if ((rc = alloc_state(r, &g->run)))
                    return rc;
                if ((rc = get_states(d, r, g->run)))
                    return rc;
                g->run_lo = lo;
                g->run_valid = true;
            }
        }
        break;
    }
    case ENG_MODE_SESSION: {
        uint32_t n = get_count(d, 29);
        if (!n)
            return WEIR_ECORRUPT;
        if (eng_state_add(r, n * sizeof(eng_session)))
            return WEIR_ETOOBIG;
        g->sess = calloc(n, sizeof(eng_session));
        if (!g->sess) {
            eng_state_sub(r, n * sizeof(eng_session));
            return WEIR_ENOMEM;
        }
        g->s_cap = n;
        int64_t prev_end = INT64_MIN;
        for (uint32_t i = 0; i < n; i++) {
            eng_session *s = &g->sess[i];
            s->start = get_time(d);
            s->last = get_time(d);
            s->id_start = get_time(d);
            s->rev = get_u32(d);
            uint8_t fl = get_u8(d);
            if (d->bad || fl > 3 || s->last < s->start || s->start < prev_end)
                return WEIR_ECORRUPT;
            s->emitted = fl & 1;
            s->ever_emitted = (fl & 2) != 0;
            prev_end = s->last + r->win.size_ns;
            if ((rc = alloc_state(r, &s->state)))
                return rc;
            g->s_n = i + 1;
            if ((rc = get_states(d, r, s->state)))
                return rc;
        }
        break;
    }
    default: return WEIR_ECORRUPT;
    }
    return d->bad ? WEIR_ECORRUPT : WEIR_OK;
}

static int get_jgroup(rd *d, eng_rule *r)
{
    arena *a = &r->scratch;
    rec_value *vals;
    uint32_t nv;
    int rc = get_vals(d, a, &vals, &nv);
    if (rc)
        return rc;
    if (nv != 1)
        return WEIR_ECORRUPT;
    bool created;
    eng_group *g =
        eng_gtab_get(r, &r->jgroups, vals, nv, eng_hash_vals(vals, nv), &created, &rc);
    if (!g)
        return rc;
    if (!created)
        return WEIR_ECORRUPT;
    for (int side = 0; side < 2; side++) {
        uint32_t n = get_count(d, 33);
        for (uint32_t i = 0; i < n; i++) {
            record rec;
            memset(&rec, 0, sizeof(rec));
            int64_t ts = get_time(d);
            uint32_t part = get_u32(d);
            uint64_t off = get_u64(d);
            int64_t commit = (int64_t)get_u64(d);
            uint8_t matched = get_u8(d);
            rec_value *sf = arena_alloc(a, (r->n_sf + 1) * sizeof(rec_value));
            if (!sf)
                return WEIR_ENOMEM;
            for (uint32_t k = 0; k < r->n_sf; k++)
                sf[k] = get_val(d);
            rec_value *kv;
            uint32_t nk;
            if ((rc = get_vals(d, a, &kv, &nk)))
                return rc;
            if (matched > 1 || nk > 1 || (nk && (kv[0].type != REC_STRING ||
                                                 kv[0].u.s.len > UINT16_MAX)))
                return WEIR_ECORRUPT;
            if (nk) {
                rec.key = kv[0].u.s.p;
                rec.key_len = (uint16_t)kv[0].u.s.len;
            }
            rec.n_fields = get_count(d, 5);
            rec.fields = arena_alloc(a, (rec.n_fields + 1) * sizeof(rec_field));
            if (!rec.fields)
                return WEIR_ENOMEM;
            for (uint32_t f = 0; f < rec.n_fields; f++) {
                uint32_t nl = get_u32(d);
                if (nl > UINT16_MAX || !need(d, nl))
                    return WEIR_ECORRUPT;
                rec.fields[f].name = (const char *)d->p;
                rec.fields[f].name_len = (uint16_t)nl;
                d->p += nl;
                rec.fields[f].v = get_val(d);
            }
            if (d->bad)
                return WEIR_ECORRUPT;
            rec.ts = ts;
            eng_jrec *j = eng_jrec_copy(r, &rec, sf, &rc);
            if (!j)
                return rc;
            j->partition = part;
            j->offset = off;
            j->commit_ns = commit;
            j->matched = matched;
            if ((rc = eng_jbuf_push(r, &g->jb[side], j))) {
                eng_jrec_free(r, j);
                return rc;
            }
        }
    }
    return d->bad ? WEIR_ECORRUPT : WEIR_OK;
}

static int get_sfkey(rd *d, eng_rule *r)
{
    rec_value *vals;
    uint32_t nv;
    int rc = get_vals(d, &r->scratch, &vals, &nv);
    if (rc)
        return rc;
    if (nv != 1 || (vals[0].type != REC_STRING && vals[0].type != REC_NULL))
        return WEIR_ECORRUPT;
    bool created;
    eng_group *g =
        eng_gtab_get(r, &r->sf_keys, vals, 1, eng_hash_vals(vals, 1), &created, &rc);
    if (!g)
        return rc;
    if (!created)
        return WEIR_ECORRUPT;
    if ((rc = eng_sf_alloc(r, g)))
        return rc;
    for (uint32_t i = 0; i < r->n_sf; i++) {
        eng_sf_state *s = &g->sf[i];
        uint32_t n = get_u32(d);
        if (d->bad || n > r->sf[i].depth)
            return WEIR_ECORRUPT;
        for (uint32_t k = 0; k < n; k++) {
            rec_value v = get_val(d);
            if (d->bad)
                return WEIR_ECORRUPT;
            if ((rc = eng_val_set(r, &s->ring[k], &v)))
                return rc;
        }
        s->n = n;
        s->head = 0;
        uint8_t has = get_u8(d);
        s->change_ts = get_time(d);
        if (has > 1)
            return WEIR_ECORRUPT;
        s->has_change = has;
    }
    return d->bad ? WEIR_ECORRUPT : WEIR_OK;
}

static void reset_state(eng_rule *r)
{
    eng_gtab_clear(r, &r->groups);
    eng_gtab_clear(r, &r->sf_keys);
    eng_gtab_clear(r, &r->jgroups);
    r->have_jsweep = false;
    r->join_sweep = 0;
    r->have_ts = false;
    r->max_ts = r->wm = INT64_MIN;
    r->have_close = false;
    r->next_close = 0;
    r->next_session = INT64_MAX;
    r->next_left_check = INT64_MAX;
    r->records_in = r->records_out = r->late = r->errors = 0;
    r->n_groups_open = 0;
}

int eng_rule_restore(eng_rule *r, const uint8_t *p, size_t n)
{
    if (n < 4 + 1 + 4 + 4 || memcmp(p, "WRCP", 4) != 0)
        return WEIR_ECORRUPT;
    uint32_t want = (uint32_t)p[n - 4] | (uint32_t)p[n - 3] << 8 | (uint32_t)p[n - 2] << 16 |
                    (uint32_t)p[n - 1] << 24;
    if (crc32c(p, n - 4) != want)
        return WEIR_ECORRUPT;
    rd d = {p + 4, p + n - 4, false};
    if (get_u8(&d) != CP_VERSION)
        return WEIR_ECORRUPT;
    if (get_u32(&d) != r->sql_crc)
        return WEIR_EINVAL;
    if (get_u8(&d) != (uint8_t)r->mode)
        return WEIR_ECORRUPT;
    reset_state(r);
    arena_reset(&r->scratch);
    int rc = WEIR_OK;
    uint8_t have_ts = get_u8(&d);
    int64_t max_ts = (int64_t)get_u64(&d), wm = (int64_t)get_u64(&d);
    uint8_t have_close = get_u8(&d);
    int64_t next_close = get_time(&d);
    int64_t next_session = (int64_t)get_u64(&d);
    int64_t next_left = (int64_t)get_u64(&d);
    uint8_t have_jsweep = get_u8(&d);
    int64_t join_sweep = get_time(&d);
    r->records_in = get_u64(&d);
    r->records_out = get_u64(&d);
    r->late = get_u64(&d);
    r->errors = get_u64(&d);
    if (d.bad || have_ts > 1 || have_close > 1 || have_jsweep > 1) {
        rc = WEIR_ECORRUPT;
        goto fail;
    }
    if (have_ts) {
        bool ok = max_ts >= -CP_TIME_MAX && max_ts <= CP_TIME_MAX && wm >= -CP_TIME_MAX &&
                  wm <= CP_TIME_MAX;
        if (!ok) {
            rc = WEIR_ECORRUPT;
            goto fail;
        }
    } else if (max_ts != INT64_MIN || wm != INT64_MIN || have_close) {
        rc = WEIR_ECORRUPT;
        goto fail;
    }
    if ((next_session != INT64_MAX && (next_session < -CP_TIME_MAX || next_session > CP_TIME_MAX)) ||
        (next_left != INT64_MAX && (next_left < -CP_TIME_MAX || next_left > CP_TIME_MAX)) ||
        (r->mode == ENG_MODE_PANES && next_close % r->win.advance_ns != 0)) {
        rc = WEIR_ECORRUPT;
        goto fail;
    }
    r->have_ts = have_ts;
    r->max_ts = max_ts;
    r->wm = wm;
    r->have_close = have_close;
    r->next_close = next_close;
    r->next_session = next_session;
    r->next_left_check = next_left;
    r->have_jsweep = have_jsweep;
    r->join_sweep = join_sweep;
    uint32_t ng = get_count(&d, 4);
    for (uint32_t i = 0; i < ng && !rc; i++)
        rc = get_group(&d, r);
    if (rc)
        goto fail;
    uint32_t nk = get_count(&d, 4);
    for (uint32_t i = 0; i < nk && !rc; i++)
        rc = get_sfkey(&d, r);
    if (rc)
        goto fail;
    if (r->sel->join) {
        uint32_t nj = get_count(&d, 4);
        for (uint32_t i = 0; i < nj && !rc; i++)
            rc = get_jgroup(&d, r);
        if (rc)
            goto fail;
    }
    if (d.bad || d.p != d.end) {
        rc = WEIR_ECORRUPT;
        goto fail;
    }
    arena_reset(&r->scratch);
    return WEIR_OK;
fail:
    reset_state(r);
    arena_reset(&r->scratch);
    return rc == WEIR_ENOMEM || rc == WEIR_ETOOBIG ? rc : WEIR_ECORRUPT;
}
