/* window.c -- aggregation: GROUP BY without a window and the five windows.
 *
 * TUMBLING and HOPPING share one design: panes. Time is cut into panes of
 * gcd(size, advance) (the whole size for TUMBLING); a record is added to
 * exactly one pane of its group (O(1): the newest pane, or a sorted insert
 * when out of order), and a window [s, s + size), s a multiple of advance,
 * is the merge of its size/pane panes, computed once when the watermark
 * passes its end. next_close is the start of the first window not closed
 * yet; a record whose windows all start before it is late: within
 * `lateness` of a window's end it is added and the window's result is
 * emitted again with revision + 1 (the same window identity), beyond it the
 * record goes to the side output. Panes are dropped once every window
 * containing them is past end + lateness, and a group with no panes left is
 * freed, so state follows the live keys.
 *
 * SLIDING(size) emits one result per record over (ts - size, ts] of its
 * group, at once. Rows are kept per group sorted by ts; in order and when
 * every aggregate can remove, a running state adds the new row and removes
 * the rows that fell out (O(1) amortised); otherwise (out of order, min/max)
 * the result is rebuilt from the buffered rows of the interval.
 *
 * SESSION(gap) keeps per group the open sessions [first, last + gap); a
 * record joins every session it is within gap of, merging them (agg merge),
 * and a session closes when the watermark passes last + gap. A late record
 * that merges into a closed session (kept for `lateness`) re-emits it with
 * revision + 1 under the identity of its first emission.
 *
 * COUNT(n[, step]) keeps the last n rows per group (arrival order) and
 * emits, once n rows are there, every step rows, the aggregate of the last
 * n.
 */
#include "engine/rule_int.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0)))
        q--;
    return q;
}

/* The largest multiple of m that is <= t. */
static int64_t align_down(int64_t t, int64_t m)
{
    return floor_div(t, m) * m;
}

static int eval_fail(eng_rule *r, const sql_eval_error *ee)
{
    return eng_fail(r, WEIR_EINVAL, "%s", ee->msg[0] ? ee->msg : "evaluation failed");
}

static int state_fail(eng_rule *r, int rc)
{
    if (rc == WEIR_ETOOBIG)
        return eng_fail(r, rc, "the rule's state would pass max_state (%zu bytes)", r->max_state);
    return eng_fail(r, rc, "out of memory");
}

int eng_agg_init_state(eng_rule *r, unsigned char *state)
{
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        sql_eval_error ee = {{0}};
        const eng_agg_slot *s = &r->aggs[i];
        if (s->agg->init(state + s->offset, s->params, s->n_params, &ee))
            return eval_fail(r, &ee);
    }
    return WEIR_OK;
}

int eng_agg_results(eng_rule *r, const unsigned char *state, rec_value **out)
{
    rec_value *v = arena_alloc(&r->escratch, (r->n_aggs + 1) * sizeof(rec_value));
    if (!v)
        return eng_fail(r, WEIR_ENOMEM, "out of rule scratch memory");
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        sql_eval_error ee = {{0}};
        const eng_agg_slot *s = &r->aggs[i];
        if (s->agg->result(state + s->offset, &v[i], &r->escratch, &ee))
            return eval_fail(r, &ee);
    }
    *out = v;
    return WEIR_OK;
}

static int merge_state(eng_rule *r, unsigned char *dst, const unsigned char *src)
{
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        sql_eval_error ee = {{0}};
        const eng_agg_slot *s = &r->aggs[i];
        if (s->agg->merge(dst + s->offset, src + s->offset, &ee))
            return eval_fail(r, &ee);
    }
    return WEIR_OK;
}

/* The evaluated aggregate arguments of one row. */
typedef struct rowargs {
    rec_value *av;
    uint64_t pass;
} rowargs;

static int eval_args(eng_rule *r, const sql_row *row, rowargs *ra)
{
    arena *a = &r->scratch;
    ra->av = arena_alloc(a, (r->n_av + 1) * sizeof(rec_value));
    if (!ra->av)
        return eng_fail_mem(r);
    ra->pass = 0;
    sql_eval_error ee = {{0}};
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        const eng_agg_slot *s = &r->aggs[i];
        if (s->node->filter) {
            sql_tri t;
            if (sql_eval_cond(s->node->filter, row, &t, a, &ee))
                return eval_fail(r, &ee);
            if (t != SQL_TRUE) {
                for (int k = 0; k < s->agg->n_args; k++)
                    ra->av[s->arg0 + k] = sql_null();
                continue;
            }
        }
        ra->pass |= 1ull << i;
        for (int k = 0; k < s->agg->n_args; k++)
            if (sql_eval(s->node->kids[k], row, &ra->av[s->arg0 + k], a, &ee))
                return eval_fail(r, &ee);
    }
    return WEIR_OK;
}

static int add_args(eng_rule *r, unsigned char *state, const rec_value *av, uint64_t pass,
                    int64_t ts)
{
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        if (!(pass & (1ull << i)))
            continue;
        sql_eval_error ee = {{0}};
        const eng_agg_slot *s = &r->aggs[i];
        if (s->agg->add(state + s->offset, av + s->arg0, ts, &ee))
            return eval_fail(r, &ee);
    }
    return WEIR_OK;
}

static int remove_args(eng_rule *r, unsigned char *state, const rec_value *av, uint64_t pass,
                       int64_t ts)
{
    for (uint32_t i = 0; i < r->n_aggs; i++) {
        if (!(pass & (1ull << i)))
            continue;
        sql_eval_error ee = {{0}};
        const eng_agg_slot *s = &r->aggs[i];
        if (s->agg->remove(state + s->offset, av + s->arg0, ts, &ee))
            return eval_fail(r, &ee);
    }
    return WEIR_OK;
}

/* Results of state, then the group row. escratch must have been reset by
 * the caller (state may live in it). */
static int emit_state(eng_rule *r, const eng_group *g, const unsigned char *state, int64_t ws,
                      int64_t we, int64_t ts, uint64_t id, uint32_t rev)
{
    rec_value *av;
    int rc = eng_agg_results(r, state, &av);
    if (rc)
        return rc;
    return eng_emit_group(r, g, av, ws, we, ts, id, rev);
}

static unsigned char *tmp_state(eng_rule *r)
{
    unsigned char *st = arena_alloc(&r->escratch, r->state_size + 1);
    if (st && eng_agg_init_state(r, st))
        return NULL;
    return st;
}

/* ---- GROUP BY without a window --------------------------------------------- */

static int group_push(eng_rule *r, eng_group *g, const record *rec, const rowargs *ra)
{
    int rc;
    if (!g->state) {
        if ((rc = eng_state_add(r, r->state_size)))
            return state_fail(r, rc);
        g->state = malloc(r->state_size + 1);
        if (!g->state) {
            eng_state_sub(r, r->state_size);
            return state_fail(r, WEIR_ENOMEM);
        }
        if ((rc = eng_agg_init_state(r, g->state)))
            return rc;
    }
    if ((rc = add_args(r, g->state, ra->av, ra->pass, rec->ts)))
        return rc;
    arena_reset(&r->escratch);
    return emit_state(r, g, g->state, 0, 0, rec->ts, r->cur_id, 0);
}

/* ---- panes (TUMBLING, HOPPING) ------------------------------------------------ */

static inline unsigned char *pane_at(const eng_rule *r, const eng_group *g, uint32_t i)
{
    return g->panes + (size_t)(g->p_off + i) * r->pane_stride;
}

static inline int64_t pane_start(const unsigned char *p)
{
    int64_t s;
    memcpy(&s, p, 8);
    return s;
}

static inline uint32_t pane_count(const unsigned char *p)
{
    uint32_t c;
    memcpy(&c, p + 8, 4);
    return c;
}

static inline void pane_set(unsigned char *p, int64_t start, uint32_t count)
{
    memcpy(p, &start, 8);
    memcpy(p + 8, &count, 4);
}

/* Room for one more pane at the end of the live range. */
static int pane_room(eng_rule *r, eng_group *g)
{
    if (g->p_off + g->p_n < g->p_cap)
        return WEIR_OK;
    if (g->p_off > 0) {
        memmove(g->panes, g->panes + (size_t)g->p_off * r->pane_stride,
                (size_t)g->p_n * r->pane_stride);
        g->p_off = 0;
        return WEIR_OK;
    }
    uint32_t cap = g->p_cap ? g->p_cap * 2 : 4;
    size_t delta = (size_t)(cap - g->p_cap) * r->pane_stride;
    int rc = eng_state_add(r, delta);
    if (rc)
        return state_fail(r, rc);
    unsigned char *np = realloc(g->panes, (size_t)cap * r->pane_stride);
    if (!np) {
        eng_state_sub(r, delta);
        return state_fail(r, WEIR_ENOMEM);
    }
    g->panes = np;
    g->p_cap = cap;
    return WEIR_OK;
}

/* The pane starting at ps, created (empty) in order when missing. */
static int pane_get(eng_rule *r, eng_group *g, int64_t ps, unsigned char **out)
{
    uint32_t i = g->p_n;
    while (i > 0 && pane_start(pane_at(r, g, i - 1)) > ps)
        i--;
    if (i > 0 && pane_start(pane_at(r, g, i - 1)) == ps) {
        *out = pane_at(r, g, i - 1);
        return WEIR_OK;
    }
    int rc = pane_room(r, g);
    if (rc)
        return rc;
    unsigned char *p = pane_at(r, g, i);
    if (i < g->p_n)
        memmove(p + r->pane_stride, p, (size_t)(g->p_n - i) * r->pane_stride);
    g->p_n++;
    pane_set(p, ps, 0);
    if ((rc = eng_agg_init_state(r, p + ENG_PANE_HDR))) {
        memmove(p, p + r->pane_stride, (size_t)(g->p_n - 1 - i) * r->pane_stride);
        g->p_n--;
        return rc;
    }
    *out = p;
    return WEIR_OK;
}

/* Merges the panes of window [s, s + size) into a fresh state in escratch;
 * *any tells whether it had rows. */
static int window_state(eng_rule *r, const eng_group *g, int64_t s, unsigned char **st, bool *any)
{
    *any = false;
    *st = tmp_state(r);
    if (!*st)
        return eng_fail(r, WEIR_ENOMEM, "out of rule scratch memory");
    int64_t e = s + r->win.size_ns;
    for (uint32_t i = 0; i < g->p_n; i++) {
        const unsigned char *p = pane_at(r, g, i);
        int64_t ps = pane_start(p);
        if (ps < s)
            continue;
        if (ps >= e)
            break;
        if (!pane_count(p))
            continue;
        *any = true;
        int rc = merge_state(r, *st, p + ENG_PANE_HDR);
        if (rc)
            return rc;
    }
    return WEIR_OK;
}

static bool window_has_rows(const eng_rule *r, const eng_group *g, int64_t s)
{
    int64_t e = s + r->win.size_ns;
    for (uint32_t i = 0; i < g->p_n; i++) {
        const unsigned char *p = pane_at(r, g, i);
        int64_t ps = pane_start(p);
        if (ps >= s && ps < e && pane_count(p))
            return true;
    }
    return false;
}

static eng_rev *rev_find(eng_group *g, int64_t s)
{
    for (uint32_t i = 0; i < g->n_revs; i++)
        if (g->revs[i].start == s)
            return &g->revs[i];
    return NULL;
}

static int rev_add(eng_rule *r, eng_group *g, int64_t s, uint32_t rev)
{
    if (g->n_revs == g->cap_revs) {
        uint32_t cap = g->cap_revs ? g->cap_revs * 2 : 4;
        size_t delta = (cap - g->cap_revs) * sizeof(eng_rev);
        int rc = eng_state_add(r, delta);
        if (rc)
            return state_fail(r, rc);
        eng_rev *nr = realloc(g->revs, cap * sizeof(eng_rev));
        if (!nr) {
            eng_state_sub(r, delta);
            return state_fail(r, WEIR_ENOMEM);
        }
        g->revs = nr;
        g->cap_revs = cap;
    }
    g->revs[g->n_revs++] = (eng_rev){s, rev};
    return WEIR_OK;
}

/* The first window start whose window is still open at watermark wm. */
static int64_t first_open(const eng_rule *r, int64_t wm)
{
    return align_down(wm - r->win.size_ns, r->win.advance_ns) + r->win.advance_ns;
}

static int emit_window(eng_rule *r, const eng_group *g, int64_t s, uint32_t rev, bool *any)
{
    arena_reset(&r->escratch);
    unsigned char *st;
    int rc = window_state(r, g, s, &st, any);
    if (rc || !*any)
        return rc;
    int64_t e = s + r->win.size_ns;
    return emit_state(r, g, st, s, e, e, eng_id_window(s, e, g->vals, g->n_vals, rev), rev);
}

static int panes_push(eng_rule *r, const record *rec, const rec_value *gv, uint64_t h,
                      const rowargs *ra)
{
    const int64_t size = r->win.size_ns, adv = r->win.advance_ns;
    int64_t ts = rec->ts;
    if (!r->have_close) {
        r->next_close = first_open(r, r->wm);
        r->have_close = true;
    }
    int64_t s_hi = align_down(ts, adv);
    int64_t s_lo = align_down(ts - size, adv) + adv;
    if (s_hi < r->next_close && s_hi + size + r->lateness <= r->wm)
        return eng_emit_late(r, rec);
    bool created;
    int rc;
    eng_group *g = eng_gtab_get(r, &r->groups, gv, r->n_group, h, &created, &rc);
    if (!g)
        return rc;
    /* Closed windows still within lateness: note what they were. */
    uint32_t n_late = 0, max_late = (uint32_t)(size / adv) + 1;
    int64_t *late_s = NULL;
    uint32_t *late_rev = NULL;
    if (s_lo < r->next_close) {
        late_s = arena_alloc(&r->scratch, max_late * sizeof(int64_t));
        late_rev = arena_alloc(&r->scratch, max_late * sizeof(uint32_t));
        if (!late_s || !late_rev)
            return eng_fail_mem(r);
    }
    for (int64_t s = s_lo; s <= s_hi && s < r->next_close && n_late < max_late; s += adv) {
        if (s + size + r->lateness <= r->wm)
            continue;
        eng_rev *rv = rev_find(g, s);
        late_s[n_late] = s;
        late_rev[n_late++] = rv ? rv->rev + 1 : window_has_rows(r, g, s) ? 1 : 0;
    }
    unsigned char *p;
    if ((rc = pane_get(r, g, align_down(ts, r->pane), &p)))
        return rc;
    if ((rc = add_args(r, p + ENG_PANE_HDR, ra->av, ra->pass, ts)))
        return rc;
    pane_set(p, pane_start(p), pane_count(p) + 1);
    for (uint32_t i = 0; i < n_late; i++) {
        eng_rev *rv = rev_find(g, late_s[i]);
        if (rv)
            rv->rev = late_rev[i];
        else if ((rc = rev_add(r, g, late_s[i], late_rev[i])))
            return rc;
        bool any;
        if ((rc = emit_window(r, g, late_s[i], late_rev[i], &any)))
            return rc;
    }
    return WEIR_OK;
}

/* Drops what no window within lateness needs; frees empty groups. */
static void panes_gc(eng_rule *r)
{
    const int64_t size = r->win.size_ns, adv = r->win.advance_ns;
    eng_group *g = r->groups.first;
    while (g) {
        eng_group *next = g->next;
        while (g->p_n) {
            int64_t last_s = align_down(pane_start(pane_at(r, g, 0)), adv);
            if (last_s >= r->next_close || last_s + size + r->lateness > r->wm)
                break;
            g->p_off++;
            g->p_n--;
        }
        if (g->p_n == 0)
            g->p_off = 0;
        for (uint32_t i = 0; i < g->n_revs;) {
            if (g->revs[i].start + size + r->lateness <= r->wm)
                g->revs[i] = g->revs[--g->n_revs];
            else
                i++;
        }
        if (g->p_n == 0 && g->n_revs == 0)
            eng_gtab_remove(r, &r->groups, g);
        g = next;
    }
}

static int panes_advance(eng_rule *r)
{
    const int64_t size = r->win.size_ns, adv = r->win.advance_ns;
    if (!r->have_close) {
        if (!r->have_ts)
            return WEIR_OK;
        r->next_close = first_open(r, r->wm);
        r->have_close = true;
        return WEIR_OK;
    }
    if (r->next_close + size > r->wm)
        return WEIR_OK;
    int64_t limit = first_open(r, r->wm);
    while (r->next_close < limit) {
        int64_t s = r->next_close;
        int64_t min_next = INT64_MAX;
        for (eng_group *g = r->groups.first; g; g = g->next) {
            bool any;
            int rc = emit_window(r, g, s, 0, &any);
            if (rc)
                return rc;
            for (uint32_t i = 0; i < g->p_n; i++) {
                int64_t ps = pane_start(pane_at(r, g, i));
                if (ps >= s + adv) {
                    if (ps < min_next)
                        min_next = ps;
                    break;
                }
            }
        }
        r->next_close = s + adv;
        /* Skip the windows no group has a pane in. */
        int64_t cand = min_next == INT64_MAX ? limit : align_down(min_next - size, adv) + adv;
        if (cand > limit)
            cand = limit;
        if (cand > r->next_close)
            r->next_close = cand;
    }
    panes_gc(r);
    return WEIR_OK;
}

/* ---- entries (SLIDING, COUNT) -------------------------------------------------------- */

static int entry_new(eng_rule *r, const rowargs *ra, int64_t ts, eng_entry **out)
{
    size_t extra = 0;
    for (uint32_t i = 0; i < r->n_av; i++)
        extra += eng_val_extra(&ra->av[i]);
    size_t bytes = sizeof(eng_entry) + r->n_av * sizeof(rec_value) + extra;
    int rc = eng_state_add(r, bytes);
    if (rc)
        return state_fail(r, rc);
    eng_entry *e = malloc(bytes);
    if (!e) {
        eng_state_sub(r, bytes);
        return state_fail(r, WEIR_ENOMEM);
    }
    e->ts = ts;
    e->pass = ra->pass;
    e->bytes = bytes;
    char *dst = (char *)(e->av + r->n_av);
    for (uint32_t i = 0; i < r->n_av; i++)
        e->av[i] = eng_val_copy(&ra->av[i], &dst);
    *out = e;
    return WEIR_OK;
}

/* Inserts e at position pos (relative to e_off). */
static int entry_insert(eng_rule *r, eng_group *g, uint32_t pos, eng_entry *e)
{
    if (g->e_off + g->e_n == g->e_cap) {
        if (g->e_off > 0) {
            memmove(g->ents, g->ents + g->e_off, g->e_n * sizeof(eng_entry *));
            if (g->run_lo >= g->e_off)
                g->run_lo -= g->e_off;
            else
                g->run_valid = false;
            g->e_off = 0;
        } else {
            uint32_t cap = g->e_cap ? g->e_cap * 2 : 8;
            size_t delta = (cap - g->e_cap) * sizeof(eng_entry *);
            int rc = eng_state_add(r, delta);
            if (rc)
                return state_fail(r, rc);
            eng_entry **ne = realloc(g->ents, cap * sizeof(eng_entry *));
            if (!ne) {
                eng_state_sub(r, delta);
                return state_fail(r, WEIR_ENOMEM);
            }
            g->ents = ne;
            g->e_cap = cap;
        }
    }
    eng_entry **base = g->ents + g->e_off;
    if (pos < g->e_n)
        memmove(base + pos + 1, base + pos, (g->e_n - pos) * sizeof(eng_entry *));
    base[pos] = e;
    g->e_n++;
    return WEIR_OK;
}

static void entry_drop_front(eng_rule *r, eng_group *g)
{
    eng_entry *e = g->ents[g->e_off];
    eng_state_sub(r, e->bytes);
    free(e);
    g->e_off++;
    g->e_n--;
    if (g->e_n == 0) {
        g->e_off = 0;
        g->run_valid = false;
    }
}

static int sliding_push(eng_rule *r, const record *rec, const rec_value *gv, uint64_t h,
                        const rowargs *ra)
{
    const int64_t size = r->win.size_ns;
    int64_t ts = rec->ts;
    if (ts < r->wm - r->lateness)
        return eng_emit_late(r, rec);
    bool created;
    int rc;
    eng_group *g = eng_gtab_get(r, &r->groups, gv, r->n_group, h, &created, &rc);
    if (!g)
        return rc;
    eng_entry *e;
    if ((rc = entry_new(r, ra, ts, &e)))
        return rc;
    uint32_t pos = g->e_n;
    while (pos > 0 && g->ents[g->e_off + pos - 1]->ts > ts)
        pos--;
    bool in_order = pos == g->e_n;
    if ((rc = entry_insert(r, g, pos, e))) {
        eng_state_sub(r, e->bytes);
        free(e);
        return rc;
    }
    arena_reset(&r->escratch);
    const unsigned char *st;
    if (in_order && r->all_remove) {
        if (!g->run) {
            if ((rc = eng_state_add(r, r->state_size)))
                return state_fail(r, rc);
            g->run = malloc(r->state_size + 1);
            if (!g->run) {
                eng_state_sub(r, r->state_size);
                return state_fail(r, WEIR_ENOMEM);
            }
            g->run_valid = false;
        }
        uint32_t end = g->e_off + g->e_n;
        if (!g->run_valid) {
            if ((rc = eng_agg_init_state(r, g->run)))
                return rc;
            uint32_t i = g->e_off;
            while (i < end - 1 && g->ents[i]->ts <= ts - size)
                i++;
            g->run_lo = i;
            for (; i < end - 1; i++)
                if ((rc = add_args(r, g->run, g->ents[i]->av, g->ents[i]->pass, g->ents[i]->ts)))
                    return rc;
            g->run_valid = true;
        }
        if ((rc = add_args(r, g->run, e->av, e->pass, ts)))
            return rc;
        while (g->run_lo < end && g->ents[g->run_lo]->ts <= ts - size) {
            eng_entry *x = g->ents[g->run_lo++];
            if ((rc = remove_args(r, g->run, x->av, x->pass, x->ts)))
                return rc;
        }
        st = g->run;
    } else {
        if (!in_order)
            g->run_valid = false;
        unsigned char *t = tmp_state(r);
        if (!t)
            return eng_fail(r, WEIR_ENOMEM, "out of rule scratch memory");
        for (uint32_t i = 0; i < g->e_n; i++) {
            eng_entry *x = g->ents[g->e_off + i];
            if (x->ts <= ts - size)
                continue;
            if (x->ts > ts)
                break;
            if ((rc = add_args(r, t, x->av, x->pass, x->ts)))
                return rc;
        }
        st = t;
    }
    uint64_t id = eng_id_window(ts - size, ts, g->vals, g->n_vals, 0) ^ r->cur_id;
    if ((rc = emit_state(r, g, st, ts - size, ts, ts, id, 0)))
        return rc;
    /* Rows no accepted record can see any more. */
    int64_t horizon = r->wm - r->lateness - size;
    while (g->e_n && g->ents[g->e_off]->ts <= horizon &&
           (!g->run_valid || g->e_off < g->run_lo))
        entry_drop_front(r, g);
    return WEIR_OK;
}

static int sliding_advance(eng_rule *r)
{
    /* Now and then (every size of event time) sweep groups gone quiet. */
    if (!r->have_close) {
        r->have_close = true;
        r->next_close = r->wm;
        return WEIR_OK;
    }
    if (r->wm - r->next_close < r->win.size_ns)
        return WEIR_OK;
    r->next_close = r->wm;
    int64_t horizon = r->wm - r->lateness - r->win.size_ns;
    eng_group *g = r->groups.first;
    while (g) {
        eng_group *next = g->next;
        while (g->e_n && g->ents[g->e_off]->ts <= horizon) {
            if (g->run_valid && g->e_off >= g->run_lo)
                g->run_valid = false; /* rebuilt on the next record */
            entry_drop_front(r, g);
        }
        if (g->e_n == 0)
            eng_gtab_remove(r, &r->groups, g);
        g = next;
    }
    return WEIR_OK;
}

static int count_push(eng_rule *r, const record *rec, const rec_value *gv, uint64_t h,
                      const rowargs *ra)
{
    bool created;
    int rc;
    eng_group *g = eng_gtab_get(r, &r->groups, gv, r->n_group, h, &created, &rc);
    if (!g)
        return rc;
    eng_entry *e;
    if ((rc = entry_new(r, ra, rec->ts, &e)))
        return rc;
    if ((rc = entry_insert(r, g, g->e_n, e))) {
        eng_state_sub(r, e->bytes);
        free(e);
        return rc;
    }
    if (g->e_n > (uint64_t)r->win.count)
        entry_drop_front(r, g);
    g->seen++;
    uint64_t n = (uint64_t)r->win.count, step = (uint64_t)r->win.count_advance;
    if (g->seen < n || (g->seen - n) % step != 0)
        return WEIR_OK;
    arena_reset(&r->escratch);
    unsigned char *t = tmp_state(r);
    if (!t)
        return eng_fail(r, WEIR_ENOMEM, "out of rule scratch memory");
    for (uint32_t i = 0; i < g->e_n; i++) {
        eng_entry *x = g->ents[g->e_off + i];
        if ((rc = add_args(r, t, x->av, x->pass, x->ts)))
            return rc;
    }
    int64_t ws = g->ents[g->e_off]->ts, we = g->ents[g->e_off + g->e_n - 1]->ts;
    uint64_t id = eng_id_window((int64_t)g->seen, (int64_t)n, g->vals, g->n_vals, 0);
    return emit_state(r, g, t, ws, we, we, id, 0);
}

/* ---- sessions ---------------------------------------------------------------- */

static int session_emit(eng_rule *r, eng_group *g, eng_session *s)
{
    arena_reset(&r->escratch);
    if (!s->ever_emitted)
        s->id_start = s->start;
    int64_t end = s->last + r->win.size_ns;
    uint32_t rev = s->rev;
    s->rev++;
    s->emitted = s->ever_emitted = true;
    return emit_state(r, g, s->state, s->start, end, end,
                      eng_id_window(s->id_start, 0, g->vals, g->n_vals, rev), rev);
}

static void session_note(eng_rule *r, const eng_session *s)
{
    int64_t t = s->last + r->win.size_ns + (s->emitted ? r->lateness : 0);
    if (t < r->next_session)
        r->next_session = t;
}

static int session_push(eng_rule *r, const record *rec, const rec_value *gv, uint64_t h,
                        const rowargs *ra)
{
    const int64_t gap = r->win.size_ns;
    int64_t ts = rec->ts;
    eng_group *g = eng_gtab_find(&r->groups, gv, r->n_group, h);
    uint32_t lo = 0, hi = 0; /* touching sessions [lo, hi) */
    if (g) {
        while (lo < g->s_n && !(ts < g->sess[lo].last + gap))
            lo++;
        hi = lo;
        while (hi < g->s_n && ts > g->sess[hi].start - gap)
            hi++;
    }
    if (lo == hi && ts + gap + r->lateness <= r->wm)
        return eng_emit_late(r, rec);
    int rc;
    if (!g) {
        bool created;
        g = eng_gtab_get(r, &r->groups, gv, r->n_group, h, &created, &rc);
        if (!g)
            return rc;
    }
    eng_session *s;
    if (lo == hi) {
        /* A new session at position lo. */
        if (g->s_n == g->s_cap) {
            uint32_t cap = g->s_cap ? g->s_cap * 2 : 2;
            size_t delta = (cap - g->s_cap) * sizeof(eng_session);
            if ((rc = eng_state_add(r, delta)))
                return state_fail(r, rc);
            eng_session *ns = realloc(g->sess, cap * sizeof(eng_session));
            if (!ns) {
                eng_state_sub(r, delta);
                return state_fail(r, WEIR_ENOMEM);
            }
            g->sess = ns;
            g->s_cap = cap;
        }
        if ((rc = eng_state_add(r, r->state_size)))
            return state_fail(r, rc);
        unsigned char *st = malloc(r->state_size + 1);
        if (!st) {
            eng_state_sub(r, r->state_size);
            return state_fail(r, WEIR_ENOMEM);
        }
        if ((rc = eng_agg_init_state(r, st))) {
            free(st);
            eng_state_sub(r, r->state_size);
            return rc;
        }
        memmove(&g->sess[lo + 1], &g->sess[lo], (g->s_n - lo) * sizeof(eng_session));
        g->s_n++;
        s = &g->sess[lo];
        memset(s, 0, sizeof(*s));
        s->start = s->last = ts;
        s->state = st;
    } else {
        s = &g->sess[lo];
        for (uint32_t i = lo + 1; i < hi; i++) {
            eng_session *o = &g->sess[i];
            if ((rc = merge_state(r, s->state, o->state)))
                return rc;
            if (o->ever_emitted && (!s->ever_emitted || o->rev > s->rev)) {
                if (!s->ever_emitted)
                    s->id_start = o->id_start;
                s->rev = o->rev;
                s->ever_emitted = true;
            }
            if (o->last > s->last)
                s->last = o->last;
            free(o->state);
            eng_state_sub(r, r->state_size);
        }
        memmove(&g->sess[lo + 1], &g->sess[hi], (g->s_n - hi) * sizeof(eng_session));
        g->s_n -= hi - lo - 1;
        if (ts < s->start)
            s->start = ts;
        if (ts > s->last)
            s->last = ts;
    }
    if ((rc = add_args(r, s->state, ra->av, ra->pass, ts)))
        return rc;
    s->emitted = false;
    session_note(r, s);
    return WEIR_OK;
}

static int session_advance(eng_rule *r)
{
    if (r->wm < r->next_session)
        return WEIR_OK;
    const int64_t gap = r->win.size_ns;
    r->next_session = INT64_MAX;
    eng_group *g = r->groups.first;
    while (g) {
        eng_group *next = g->next;
        for (uint32_t i = 0; i < g->s_n;) {
            eng_session *s = &g->sess[i];
            if (!s->emitted && s->last + gap <= r->wm) {
                int rc = session_emit(r, g, s);
                if (rc)
                    return rc;
            }
            if (s->emitted && s->last + gap + r->lateness <= r->wm) {
                free(s->state);
                eng_state_sub(r, r->state_size);
                memmove(s, s + 1, (g->s_n - i - 1) * sizeof(eng_session));
                g->s_n--;
                continue;
            }
            session_note(r, s);
            i++;
        }
        if (g->s_n == 0)
            eng_gtab_remove(r, &r->groups, g);
        g = next;
    }
    return WEIR_OK;
}

/* ---- dispatch ---------------------------------------------------------------- */

int eng_window_push(eng_rule *r, const record *rec, const rec_value *pre)
{
    sql_row row;
    eng_record_row(r, rec, r->cur->input, &row, pre);
    sql_eval_error ee = {{0}};
    if (r->sel->where) {
        sql_tri t;
        if (sql_eval_cond(r->sel->where, &row, &t, &r->scratch, &ee))
            return eval_fail(r, &ee);
        if (t != SQL_TRUE)
            return WEIR_OK;
    }
    return eng_window_push_row(r, &row, rec);
}

int eng_window_push_row(eng_rule *r, const sql_row *rowp, const record *rec)
{
    const sql_row row = *rowp;
    arena *a = &r->scratch;
    sql_eval_error ee = {{0}};
    rec_value *gv = arena_alloc(a, (r->n_group + 1) * sizeof(rec_value));
    if (!gv)
        return eng_fail_mem(r);
    for (uint32_t i = 0; i < r->n_group; i++)
        if (sql_eval(r->group_nodes[i], &row, &gv[i], a, &ee))
            return eval_fail(r, &ee);
    uint64_t h = eng_hash_vals(gv, r->n_group);
    rowargs ra;
    int rc = eval_args(r, &row, &ra);
    if (rc)
        return rc;
    switch (r->mode) {
    case ENG_MODE_GROUP: {
        bool created;
        eng_group *g = eng_gtab_get(r, &r->groups, gv, r->n_group, h, &created, &rc);
        if (!g)
            return rc;
        return group_push(r, g, rec, &ra);
    }
    case ENG_MODE_PANES: return panes_push(r, rec, gv, h, &ra);
    case ENG_MODE_SLIDING: return sliding_push(r, rec, gv, h, &ra);
    case ENG_MODE_SESSION: return session_push(r, rec, gv, h, &ra);
    case ENG_MODE_COUNT: return count_push(r, rec, gv, h, &ra);
    default: return eng_fail(r, WEIR_EINTERNAL, "not an aggregating rule");
    }
}

int eng_window_advance(eng_rule *r)
{
    switch (r->mode) {
    case ENG_MODE_PANES: return panes_advance(r);
    case ENG_MODE_SLIDING: return sliding_advance(r);
    case ENG_MODE_SESSION: return session_advance(r);
    default: return WEIR_OK;
    }
}
