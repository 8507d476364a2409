/* topic.c -- topic validation, matching and the subscription tree.
 *
 * See topic.h for the design. Invariants kept here:
 *
 *  - Every node except the root holds something: a subscription, a share
 *    group or a child. prune() restores this after every removal (and after
 *    a failed add), walking up through the parent pointers.
 *  - An array or table that becomes empty is freed, so a tree emptied of
 *    subscriptions uses exactly what mqtt_subtree_new allocated.
 *  - t->stack has room for depth_max + 2 frames, where depth_max is the
 *    largest number of levels of any filter added since the tree was last
 *    empty. A depth-first walk keeps at most one pending sibling per depth
 *    plus the two children just pushed, so match never runs out of stack
 *    and never allocates.
 */
#include "mqtt/topic.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

/* ==== Names and filters ================================================== */

#define SHARE_PREFIX     "$share/"
#define SHARE_PREFIX_LEN 7u

/* End of the level starting at pos: the index of the next '/' or n. */
static inline size_t level_end(const uint8_t *p, size_t pos, size_t n)
{
    const uint8_t *s = memchr(p + pos, '/', n - pos);
    return s ? (size_t)(s - p) : n;
}

static inline bool is_wild(const uint8_t *lv, size_t len, uint8_t c)
{
    return len == 1 && lv[0] == c;
}

bool mqtt_topic_name_valid(const uint8_t *t, size_t n)
{
    if (n == 0 || n > MQTT_TOPIC_MAX)
        return false;
    return !memchr(t, '+', n) && !memchr(t, '#', n);
}

/* A filter without the $share/ interpretation. */
static bool filter_plain_valid(const uint8_t *f, size_t n)
{
    if (n == 0 || n > MQTT_TOPIC_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = f[i];
        if (c != '+' && c != '#')
            continue;
        if (i > 0 && f[i - 1] != '/')
            return false;
        if (c == '#')
            return i + 1 == n;
        if (i + 1 < n && f[i + 1] != '/')
            return false;
    }
    return true;
}

bool mqtt_topic_share_split(const uint8_t *f, size_t n, mqtt_bytes *group, mqtt_bytes *filter)
{
    /* Capped so that the uint32_t lengths below cannot truncate; longer
     * filters are invalid anyway. */
    if (n < SHARE_PREFIX_LEN || n > MQTT_TOPIC_MAX || memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN))
        return false;
    const uint8_t *g = f + SHARE_PREFIX_LEN;
    const uint8_t *slash = memchr(g, '/', n - SHARE_PREFIX_LEN);
    if (!slash)
        return false;
    group->data = g;
    group->len = (uint32_t)(slash - g);
    filter->data = slash + 1;
    filter->len = (uint32_t)(f + n - (slash + 1));
    return true;
}

bool mqtt_topic_filter_valid(const uint8_t *f, size_t n)
{
    mqtt_bytes g, inner;
    if (n == 0 || n > MQTT_TOPIC_MAX)
        return false;
    if (n < SHARE_PREFIX_LEN || memcmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN))
        return filter_plain_valid(f, n);
    /* "$share/" promises a shared subscription; a malformed one is an
     * error, not an ordinary filter on a topic called "$share/...". */
    if (!mqtt_topic_share_split(f, n, &g, &inner))
        return false;
    if (g.len == 0 || memchr(g.data, '+', g.len) || memchr(g.data, '#', g.len))
        return false;
    return filter_plain_valid(inner.data, inner.len);
}

bool mqtt_topic_matches(const uint8_t *f, size_t fn, const uint8_t *t, size_t tn)
{
    if (fn == 0 || tn == 0)
        return false;
    if ((f[0] == '+' || f[0] == '#') && t[0] == '$')
        return false;
    /* fi and ti are the starts of the current levels; a value past the end
     * (n + 1) means every level has been consumed. */
    size_t fi = 0, ti = 0;
    for (;;) {
        if (fi > fn)
            return ti > tn;
        size_t fe = level_end(f, fi, fn);
        if (is_wild(f + fi, fe - fi, '#'))
            return true; /* also when the topic is consumed: "a/#" matches "a" */
        if (ti > tn)
            return false;
        size_t te = level_end(t, ti, tn);
        if (!is_wild(f + fi, fe - fi, '+') &&
            (fe - fi != te - ti || memcmp(f + fi, t + ti, fe - fi)))
            return false;
        fi = fe + 1;
        ti = te + 1;
    }
}

/* ==== The level map ======================================================= */

/* Smallest table once the dense array overflows. */
#define LMAP_TABLE_MIN 16u

uint32_t mqtt__level_hash(const uint8_t *p, size_t n)
{
    return (uint32_t)XXH3_64bits(p, n);
}

static inline bool slot_is(const mqtt__lslot *s, const uint8_t *key, uint32_t len, uint32_t hash)
{
    return s->hash == hash && s->len == len && memcmp(mqtt__lslot_key(s), key, len) == 0;
}

/* Index of key in m, or UINT32_MAX. */
static inline uint32_t lmap_index(const mqtt__lmap *m, const uint8_t *key, uint32_t len,
                                  uint32_t hash)
{
    const mqtt__lslot *s = m->slot;
    if (m->cap <= MQTT__LMAP_DENSE) {
        for (uint32_t i = 0; i < m->n; i++)
            if (slot_is(&s[i], key, len, hash))
                return i;
        return UINT32_MAX;
    }
    uint32_t mask = m->cap - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        if (!s[i].val)
            return UINT32_MAX;
        if (slot_is(&s[i], key, len, hash))
            return i;
    }
}

static inline void *lmap_find(const mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash)
{
    uint32_t i = lmap_index(m, key, len, hash);
    return i == UINT32_MAX ? NULL : m->slot[i].val;
}

void *mqtt__lmap_get(const mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash)
{
    return lmap_find(m, key, len, hash);
}

/* Places s in a table of cap slots (a power of two, with a free slot). */
static void table_place(mqtt__lslot *slots, uint32_t cap, const mqtt__lslot *s)
{
    uint32_t mask = cap - 1, i = s->hash & mask;
    while (slots[i].val)
        i = (i + 1) & mask;
    slots[i] = *s;
}

/* Moves every entry into a new array of cap slots (dense or table). */
static int lmap_resize(mqtt__lmap *m, uint32_t cap, size_t *mem)
{
    mqtt__lslot *ns = calloc(cap, sizeof(*ns));
    if (!ns)
        return WEIR_ENOMEM;
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (!m->slot[i].val)
            continue;
        if (cap <= MQTT__LMAP_DENSE)
            ns[k++] = m->slot[i];
        else
            table_place(ns, cap, &m->slot[i]);
    }
    free(m->slot);
    *mem += (size_t)cap * sizeof(*ns);
    *mem -= (size_t)m->cap * sizeof(*ns);
    m->slot = ns;
    m->cap = cap;
    return WEIR_OK;
}

int mqtt__lmap_put(mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash, void *val,
                   size_t *mem)
{
    mqtt__lslot s = {.val = val, .hash = hash, .len = len};
    if (len > MQTT__LSLOT_INLINE)
        s.key.ptr = key;
    else if (len)
        memcpy(s.key.inl, key, len);
    if (m->cap <= MQTT__LMAP_DENSE && m->n < m->cap) {
        m->slot[m->n++] = s;
        return WEIR_OK;
    }
    if (m->cap <= MQTT__LMAP_DENSE || (m->n + 1) * 2 > m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 1;
        if (cap > MQTT__LMAP_DENSE && cap < LMAP_TABLE_MIN)
            cap = LMAP_TABLE_MIN;
        int rc = lmap_resize(m, cap, mem);
        if (rc)
            return rc;
        if (cap <= MQTT__LMAP_DENSE) {
            m->slot[m->n++] = s;
            return WEIR_OK;
        }
    }
    table_place(m->slot, m->cap, &s);
    m->n++;
    return WEIR_OK;
}

void mqtt__lmap_del(mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash, size_t *mem)
{
    uint32_t i = lmap_index(m, key, len, hash);
    if (i == UINT32_MAX)
        return;
    mqtt__lslot *s = m->slot;
    if (m->cap <= MQTT__LMAP_DENSE) {
        s[i] = s[m->n - 1];
        memset(&s[m->n - 1], 0, sizeof(*s));
    } else {
        /* Backward-shift deletion: pull later entries of the probe run into
         * the hole unless their home lies cyclically in (hole, j]. */
        uint32_t mask = m->cap - 1;
        for (uint32_t j = i;;) {
            j = (j + 1) & mask;
            if (!s[j].val)
                break;
            uint32_t home = s[j].hash & mask;
            bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!stays) {
                s[i] = s[j];
                i = j;
            }
        }
        memset(&s[i], 0, sizeof(*s));
    }
    if (--m->n == 0) {
        mqtt__lmap_free(m, mem);
        return;
    }
    if (m->cap > MQTT__LMAP_DENSE && m->n * 8 <= m->cap) {
        uint32_t cap = MQTT__LMAP_DENSE;
        if (m->n > MQTT__LMAP_DENSE) {
            cap = LMAP_TABLE_MIN;
            while (cap < m->n * 4)
                cap *= 2;
        }
        (void)lmap_resize(m, cap, mem); /* on failure the big table still works */
    }
}

void mqtt__lmap_free(mqtt__lmap *m, size_t *mem)
{
    free(m->slot);
    *mem -= (size_t)m->cap * sizeof(*m->slot);
    m->slot = NULL;
    m->n = m->cap = 0;
}

/* ==== Tree structures ==================================================== */

/* How a node hangs off its parent. */
enum { KIND_ROOT, KIND_LEVEL, KIND_PLUS, KIND_HASH };

/* Share groups use a linear member search: groups are worker pools of a
 * handful to a few hundred members, where a scan beats an index. */
typedef struct share {
    struct share *next; /* next group at the same node */
    mqtt_sub *m;        /* members in join order, which round robin follows */
    uint32_t n;         /* members in use */
    uint32_t cap;       /* members allocated */
    uint32_t cursor;    /* where the next pick starts searching (< n) */
    uint32_t len;       /* group name length */
    uint8_t name[];     /* group name, not NUL-terminated */
} share;

/* The fields match reads come first, together in 56 bytes; the rest is for
 * add and remove. */
typedef struct snode {
    struct snode *plus;   /* the '+' child, or NULL */
    struct snode *hash;   /* the '#' child, or NULL */
    mqtt__lmap kids;      /* literal children by level */
    mqtt_sub *subs;       /* non-shared subscriptions ending here, unordered */
    share *shares;        /* share groups of this filter */
    uint32_t nsubs;       /* subscriptions in use */
    uint32_t subcap;      /* subscriptions allocated */
    struct snode *parent; /* NULL for the root */
    uint32_t *oidx;       /* owner index: subs index + 1 per slot, 0 free; NULL when small */
    uint32_t ocap;        /* owner index size, a power of two */
    uint32_t lhash;       /* hash of level, to find this node in the parent's map */
    uint32_t len;         /* level length */
    uint8_t kind;         /* KIND_* */
    uint8_t level[];      /* level bytes */
} snode;

/* One pending visit of the depth-first match: node has matched the topic
 * levels before pos; pos > topic length means all of them. */
typedef struct mframe {
    snode *node;
    size_t pos;
} mframe;

struct mqtt_subtree {
    snode *root;      /* never freed before the tree */
    size_t count;     /* subscriptions stored, share members included */
    size_t mem;       /* heap bytes, kept up to date by every allocation */
    mframe *stack;    /* match stack, stack_cap frames */
    size_t stack_cap; /* >= depth_max + 2 while the tree is not empty */
    size_t depth_max; /* most levels of a filter added since the tree was empty */
};

/* The owner index appears above OIDX_MIN subscriptions at one node and goes
 * away again at half that, so add/remove at a filter with 100k subscribers
 * stays O(1) without taxing the common node with one or two. */
#define OIDX_MIN 16u

/* ==== Nodes ================================================================ */

static snode *node_new(mqtt_subtree *t, snode *parent, uint8_t kind, const uint8_t *lv,
                       uint32_t len, uint32_t hash)
{
    snode *nd = calloc(1, sizeof(*nd) + len);
    if (!nd)
        return NULL;
    nd->parent = parent;
    nd->kind = kind;
    nd->len = len;
    nd->lhash = hash;
    if (len)
        memcpy(nd->level, lv, len);
    t->mem += sizeof(*nd) + len;
    return nd;
}

static bool node_empty(const snode *nd)
{
    return !nd->nsubs && !nd->shares && !nd->plus && !nd->hash && !nd->kids.n;
}

/* Frees nd and everything it owns except its children. */
static void node_release(mqtt_subtree *t, snode *nd)
{
    for (share *g = nd->shares, *next; g; g = next) {
        next = g->next;
        t->mem -= sizeof(*g) + g->len + (size_t)g->cap * sizeof(mqtt_sub);
        free(g->m);
        free(g);
    }
    t->mem -= (size_t)nd->subcap * sizeof(mqtt_sub) + (size_t)nd->ocap * sizeof(uint32_t);
    free(nd->subs);
    free(nd->oidx);
    mqtt__lmap_free(&nd->kids, &t->mem);
    t->mem -= sizeof(*nd) + nd->len;
    free(nd);
}

/* Frees nd and its ancestors for as long as they are empty. */
static void prune(mqtt_subtree *t, snode *nd)
{
    while (nd->kind != KIND_ROOT && node_empty(nd)) {
        snode *p = nd->parent;
        if (nd->kind == KIND_PLUS)
            p->plus = NULL;
        else if (nd->kind == KIND_HASH)
            p->hash = NULL;
        else
            mqtt__lmap_del(&p->kids, nd->level, nd->len, nd->lhash, &t->mem);
        node_release(t, nd);
        nd = p;
    }
}

/* The child of nd for one filter level, or NULL. */
static snode *child_get(const snode *nd, const uint8_t *lv, size_t len)
{
    if (is_wild(lv, len, '+'))
        return nd->plus;
    if (is_wild(lv, len, '#'))
        return nd->hash;
    if (!nd->kids.n)
        return NULL;
    return lmap_find(&nd->kids, lv, (uint32_t)len, mqtt__level_hash(lv, len));
}

static snode *child_get_or_add(mqtt_subtree *t, snode *nd, const uint8_t *lv, size_t len)
{
    snode *c = child_get(nd, lv, len);
    if (c)
        return c;
    if (is_wild(lv, len, '+'))
        return nd->plus = node_new(t, nd, KIND_PLUS, lv, 1, 0);
    if (is_wild(lv, len, '#'))
        return nd->hash = node_new(t, nd, KIND_HASH, lv, 1, 0);
    uint32_t h = mqtt__level_hash(lv, len);
    c = node_new(t, nd, KIND_LEVEL, lv, (uint32_t)len, h);
    if (!c)
        return NULL;
    if (mqtt__lmap_put(&nd->kids, c->level, c->len, h, c, &t->mem)) {
        node_release(t, c);
        return NULL;
    }
    return c;
}

/* Walks the (valid, non-shared) filter f from the root; creates missing
 * nodes when `create`. On OOM prunes what it created and returns NULL. */
static snode *path_walk(mqtt_subtree *t, const uint8_t *f, size_t n, bool create)
{
    snode *nd = t->root;
    for (size_t pos = 0; pos <= n;) {
        size_t end = level_end(f, pos, n);
        snode *c = create ? child_get_or_add(t, nd, f + pos, end - pos)
                          : child_get(nd, f + pos, end - pos);
        if (!c) {
            if (create)
                prune(t, nd);
            return NULL;
        }
        nd = c;
        pos = end + 1;
    }
    return nd;
}

static size_t level_count(const uint8_t *f, size_t n)
{
    size_t levels = 1;
    for (const uint8_t *p = f, *e = f + n; (p = memchr(p, '/', (size_t)(e - p))); p++)
        levels++;
    return levels;
}

static int stack_reserve(mqtt_subtree *t, size_t need)
{
    if (need <= t->stack_cap)
        return WEIR_OK;
    size_t cap = t->stack_cap ? t->stack_cap * 2 : 16;
    if (cap < need)
        cap = need;
    mframe *s = realloc(t->stack, cap * sizeof(*s));
    if (!s)
        return WEIR_ENOMEM;
    t->mem += (cap - t->stack_cap) * sizeof(*s);
    t->stack = s;
    t->stack_cap = cap;
    return WEIR_OK;
}

/* ==== Non-shared subscriptions and the owner index ======================== */

static inline uint32_t ptr_hash(const void *p)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (uint32_t)x;
}

/* Slot of owner in nd's index, or UINT32_MAX. */
static uint32_t oidx_slot(const snode *nd, const void *owner)
{
    uint32_t mask = nd->ocap - 1;
    for (uint32_t i = ptr_hash(owner) & mask; nd->oidx[i]; i = (i + 1) & mask)
        if (nd->subs[nd->oidx[i] - 1].owner == owner)
            return i;
    return UINT32_MAX;
}

static void oidx_place(uint32_t *idx, uint32_t cap, const void *owner, uint32_t sub)
{
    uint32_t mask = cap - 1, i = ptr_hash(owner) & mask;
    while (idx[i])
        i = (i + 1) & mask;
    idx[i] = sub + 1;
}

/* Rebuilds the index with cap slots (0 drops it). */
static int oidx_rebuild(mqtt_subtree *t, snode *nd, uint32_t cap)
{
    uint32_t *idx = NULL;
    if (cap) {
        idx = calloc(cap, sizeof(*idx));
        if (!idx)
            return WEIR_ENOMEM;
        for (uint32_t i = 0; i < nd->nsubs; i++)
            oidx_place(idx, cap, nd->subs[i].owner, i);
    }
    free(nd->oidx);
    t->mem += (size_t)cap * sizeof(*idx);
    t->mem -= (size_t)nd->ocap * sizeof(*idx);
    nd->oidx = idx;
    nd->ocap = cap;
    return WEIR_OK;
}

/* Backward-shift deletion of index slot i (see mqtt__lmap_del). */
static void oidx_delete(snode *nd, uint32_t i)
{
    uint32_t mask = nd->ocap - 1;
    for (uint32_t j = i;;) {
        j = (j + 1) & mask;
        if (!nd->oidx[j])
            break;
        uint32_t home = ptr_hash(nd->subs[nd->oidx[j] - 1].owner) & mask;
        bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            nd->oidx[i] = nd->oidx[j];
            i = j;
        }
    }
    nd->oidx[i] = 0;
}

static uint32_t subs_find(const snode *nd, const void *owner)
{
    if (nd->oidx) {
        uint32_t s = oidx_slot(nd, owner);
        return s == UINT32_MAX ? s : nd->oidx[s] - 1;
    }
    for (uint32_t i = 0; i < nd->nsubs; i++)
        if (nd->subs[i].owner == owner)
            return i;
    return UINT32_MAX;
}

static int subs_add(mqtt_subtree *t, snode *nd, const mqtt_sub *sub, bool *existed)
{
    uint32_t i = subs_find(nd, sub->owner);
    if (i != UINT32_MAX) {
        nd->subs[i] = *sub;
        *existed = true;
        return WEIR_OK;
    }
    if (nd->nsubs == nd->subcap) {
        uint32_t cap = nd->subcap ? nd->subcap * 2 : 1;
        mqtt_sub *s = realloc(nd->subs, cap * sizeof(*s));
        if (!s)
            return WEIR_ENOMEM;
        t->mem += (size_t)(cap - nd->subcap) * sizeof(*s);
        nd->subs = s;
        nd->subcap = cap;
    }
    /* Size the index before appending, so that failing leaves no trace. */
    uint32_t n = nd->nsubs + 1;
    if (n > OIDX_MIN && n * 2 > nd->ocap) {
        uint32_t cap = nd->ocap ? nd->ocap * 2 : 4 * OIDX_MIN;
        if (oidx_rebuild(t, nd, cap))
            return WEIR_ENOMEM;
    }
    nd->subs[nd->nsubs] = *sub;
    if (nd->oidx)
        oidx_place(nd->oidx, nd->ocap, sub->owner, nd->nsubs);
    nd->nsubs = n;
    return WEIR_OK;
}

static void subs_remove(mqtt_subtree *t, snode *nd, uint32_t i)
{
    uint32_t last = nd->nsubs - 1;
    if (nd->oidx) {
        oidx_delete(nd, oidx_slot(nd, nd->subs[i].owner));
        if (i != last)
            nd->oidx[oidx_slot(nd, nd->subs[last].owner)] = i + 1;
    }
    nd->subs[i] = nd->subs[last];
    nd->nsubs = last;
    if (nd->oidx && nd->nsubs <= OIDX_MIN / 2)
        (void)oidx_rebuild(t, nd, 0);
    else if (nd->oidx && nd->nsubs * 8 <= nd->ocap)
        (void)oidx_rebuild(t, nd, nd->ocap / 2); /* failing keeps the big one */
    if (nd->nsubs == 0) {
        free(nd->subs);
        t->mem -= (size_t)nd->subcap * sizeof(mqtt_sub);
        nd->subs = NULL;
        nd->subcap = 0;
    } else if (nd->subcap > 4 && nd->nsubs * 4 <= nd->subcap) {
        mqtt_sub *s = realloc(nd->subs, (nd->subcap / 2) * sizeof(*s));
        if (s) {
            t->mem -= (size_t)(nd->subcap / 2) * sizeof(*s);
            nd->subs = s;
            nd->subcap /= 2;
        }
    }
}

/* ==== Share groups ========================================================= */

static share *share_find(const snode *nd, const uint8_t *name, uint32_t len)
{
    for (share *g = nd->shares; g; g = g->next)
        if (g->len == len && memcmp(g->name, name, len) == 0)
            return g;
    return NULL;
}

static uint32_t share_member(const share *g, const void *owner)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->m[i].owner == owner)
            return i;
    return UINT32_MAX;
}

static int share_add(mqtt_subtree *t, snode *nd, mqtt_bytes name, const mqtt_sub *sub,
                     bool *existed)
{
    share *g = share_find(nd, name.data, name.len);
    if (g) {
        uint32_t i = share_member(g, sub->owner);
        if (i != UINT32_MAX) {
            g->m[i] = *sub;
            *existed = true;
            return WEIR_OK;
        }
    }
    bool created = false;
    if (!g) {
        g = calloc(1, sizeof(*g) + name.len);
        if (!g)
            return WEIR_ENOMEM;
        memcpy(g->name, name.data, name.len);
        g->len = name.len;
        t->mem += sizeof(*g) + name.len;
        created = true;
    }
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? g->cap * 2 : 2;
        mqtt_sub *m = realloc(g->m, cap * sizeof(*m));
        if (!m) {
            if (created) {
                t->mem -= sizeof(*g) + name.len;
                free(g);
            }
            return WEIR_ENOMEM;
        }
        t->mem += (size_t)(cap - g->cap) * sizeof(*m);
        g->m = m;
        g->cap = cap;
    }
    /* Appending after the cursor's position means a newcomer waits for its
     * turn instead of jumping the queue. */
    g->m[g->n++] = *sub;
    if (created) {
        g->next = nd->shares;
        nd->shares = g;
    }
    return WEIR_OK;
}

static void share_remove(mqtt_subtree *t, snode *nd, share *g, uint32_t i)
{
    memmove(&g->m[i], &g->m[i + 1], (size_t)(g->n - i - 1) * sizeof(*g->m));
    g->n--;
    /* Keep pointing at the member that was due next. */
    if (i < g->cursor)
        g->cursor--;
    if (g->cursor >= g->n)
        g->cursor = 0;
    if (g->n) {
        if (g->cap > 4 && g->n * 4 <= g->cap) {
            mqtt_sub *m = realloc(g->m, (g->cap / 2) * sizeof(*m));
            if (m) {
                t->mem -= (size_t)(g->cap / 2) * sizeof(*m);
                g->m = m;
                g->cap /= 2;
            }
        }
        return;
    }
    share **pp = &nd->shares;
    while (*pp != g)
        pp = &(*pp)->next;
    *pp = g->next;
    t->mem -= sizeof(*g) + g->len + (size_t)g->cap * sizeof(*g->m);
    free(g->m);
    free(g);
}

/* Round robin from the cursor: the first eligible member, or the one due
 * next when none is. */
static const mqtt_sub *share_pick(share *g, mqtt_subtree_eligible eligible, void *arg)
{
    uint32_t pick = g->cursor;
    if (eligible) {
        for (uint32_t k = 0, i = g->cursor; k < g->n; k++) {
            if (eligible(g->m[i].owner, arg)) {
                pick = i;
                break;
            }
            if (++i == g->n)
                i = 0;
        }
    }
    g->cursor = pick + 1 == g->n ? 0 : pick + 1;
    return &g->m[pick];
}

/* ==== Public tree API ===================================================== */

mqtt_subtree *mqtt_subtree_new(void)
{
    mqtt_subtree *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->mem = sizeof(*t);
    t->root = node_new(t, NULL, KIND_ROOT, NULL, 0, 0);
    if (!t->root) {
        free(t);
        return NULL;
    }
    return t;
}

void mqtt_subtree_free(mqtt_subtree *t)
{
    if (!t)
        return;
    /* Post-order through the parent pointers, consuming each node's child
     * slots from the end, so that freeing needs no stack however deep the
     * tree is. The maps are left inconsistent, which no one sees. */
    snode *nd = t->root;
    while (nd) {
        snode *c = NULL;
        if (nd->plus) {
            c = nd->plus;
            nd->plus = NULL;
        } else if (nd->hash) {
            c = nd->hash;
            nd->hash = NULL;
        } else {
            mqtt__lmap *m = &nd->kids;
            while (m->cap && !m->slot[m->cap - 1].val)
                m->cap--;
            if (m->cap)
                c = m->slot[--m->cap].val;
        }
        if (c) {
            nd = c;
            continue;
        }
        snode *p = nd->parent;
        node_release(t, nd);
        nd = p;
    }
    free(t->stack);
    free(t);
}

int mqtt_subtree_add(mqtt_subtree *t, const uint8_t *filter, size_t n, const mqtt_sub *sub,
                     bool *existed)
{
    bool ex = false;
    if (existed)
        *existed = false;
    if (!mqtt_topic_filter_valid(filter, n))
        return WEIR_ETOPIC;
    mqtt_bytes group = {0}, f = {filter, (uint32_t)n};
    bool shared = mqtt_topic_share_split(filter, n, &group, &f);
    size_t levels = level_count(f.data, f.len);
    int rc = stack_reserve(t, levels + 2);
    if (rc)
        return rc;
    snode *nd = path_walk(t, f.data, f.len, true);
    if (!nd)
        return WEIR_ENOMEM;
    rc = shared ? share_add(t, nd, group, sub, &ex) : subs_add(t, nd, sub, &ex);
    if (rc) {
        prune(t, nd);
        return rc;
    }
    if (!ex)
        t->count++;
    if (levels > t->depth_max)
        t->depth_max = levels;
    if (existed)
        *existed = ex;
    return WEIR_OK;
}

int mqtt_subtree_remove(mqtt_subtree *t, const uint8_t *filter, size_t n, void *owner)
{
    if (!mqtt_topic_filter_valid(filter, n))
        return WEIR_ENOTFOUND;
    mqtt_bytes group = {0}, f = {filter, (uint32_t)n};
    bool shared = mqtt_topic_share_split(filter, n, &group, &f);
    snode *nd = path_walk(t, f.data, f.len, false);
    if (!nd)
        return WEIR_ENOTFOUND;
    if (shared) {
        share *g = share_find(nd, group.data, group.len);
        uint32_t i = g ? share_member(g, owner) : UINT32_MAX;
        if (i == UINT32_MAX)
            return WEIR_ENOTFOUND;
        share_remove(t, nd, g, i);
    } else {
        uint32_t i = subs_find(nd, owner);
        if (i == UINT32_MAX)
            return WEIR_ENOTFOUND;
        subs_remove(t, nd, i);
    }
    t->count--;
    prune(t, nd);
    if (t->count == 0) {
        /* Forget the deepest filter so one long-gone deep subscription does
         * not pin its stack for ever. */
        free(t->stack);
        t->mem -= t->stack_cap * sizeof(*t->stack);
        t->stack = NULL;
        t->stack_cap = 0;
        t->depth_max = 0;
    }
    return WEIR_OK;
}

static inline void emit(snode *nd, mqtt_subtree_cb cb, mqtt_subtree_eligible eligible, void *arg)
{
    for (uint32_t i = 0; i < nd->nsubs; i++)
        cb(&nd->subs[i], false, arg);
    for (share *g = nd->shares; g; g = g->next)
        cb(share_pick(g, eligible, arg), true, arg);
}

void mqtt_subtree_match(mqtt_subtree *t, const uint8_t *topic, size_t n, mqtt_subtree_cb cb,
                        mqtt_subtree_eligible eligible, void *arg)
{
    if (n == 0 || n > MQTT_TOPIC_MAX || t->count == 0)
        return;
    snode *root = t->root;
    /* Wildcards at the first level do not match "$SYS/..." (spec 4.7.2). */
    bool dollar = topic[0] == '$';
    mframe *st = t->stack;
    size_t sp = 0;
    st[sp++] = (mframe){root, 0};
    while (sp) {
        mframe fr = st[--sp];
        snode *nd = fr.node;
        if (fr.pos > n) {
            emit(nd, cb, eligible, arg);
            if (nd->hash) /* "sport/#" matches "sport" */
                emit(nd->hash, cb, eligible, arg);
            continue;
        }
        bool wild = !(dollar && nd == root);
        if (nd->hash && wild)
            emit(nd->hash, cb, eligible, arg);
        size_t end = level_end(topic, fr.pos, n);
        if (nd->plus && wild)
            st[sp++] = (mframe){nd->plus, end + 1};
        if (nd->kids.n) {
            const uint8_t *lv = topic + fr.pos;
            uint32_t len = (uint32_t)(end - fr.pos);
            snode *c = lmap_find(&nd->kids, lv, len, mqtt__level_hash(lv, len));
            if (c)
                st[sp++] = (mframe){c, end + 1};
        }
    }
}

size_t mqtt_subtree_count(const mqtt_subtree *t)
{
    return t->count;
}

size_t mqtt_subtree_memory(const mqtt_subtree *t)
{
    return t->mem;
}
