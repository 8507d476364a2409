/* retain.c -- retained messages in a trie of topic levels; see retain.h.
 *
 * Invariants:
 *
 *  - Every node except the root holds a message or a child; removals prune
 *    back to this, so memory follows the number of messages.
 *  - r->stack has room for depth_max + 2 frames and r->path for path_max
 *    bytes, the most levels and bytes of any topic stored since the store
 *    was last empty. A walk has at most one frame per depth, and a topic is
 *    rebuilt for foreach from the parent pointers into r->path, so neither
 *    walk allocates.
 */
#include "mqtt/retain.h"
#include "base/err.h"
#include "mqtt/topic.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct rnode {
    struct rnode *parent; /* NULL for the root */
    mqtt__lmap kids;      /* children by level */
    void *msg;            /* retained message of this topic, or NULL */
    uint32_t lhash;       /* hash of level, to find this node in the parent's map */
    uint32_t len;         /* level length */
    uint8_t level[];      /* level bytes */
} rnode;

/* What a frame of the match walk is doing at its node. */
enum {
    WALK_VISIT, /* match the filter level at pos against this node's children */
    WALK_PLUS,  /* '+': visit each child in turn at pos (the next level) */
    WALK_ALL,   /* '#' or foreach: report every descendant */
};

typedef struct rframe {
    rnode *node;
    size_t pos;   /* filter offset of the next level; past the end when consumed */
    uint32_t it;  /* next child slot to look at (WALK_PLUS, WALK_ALL) */
    uint8_t mode; /* WALK_* */
} rframe;

struct mqtt_retain {
    rnode *root;      /* never holds a message: topic names are not empty */
    size_t count;     /* messages stored */
    size_t mem;       /* heap bytes of the store itself */
    rframe *stack;    /* walk stack, stack_cap frames */
    size_t stack_cap; /* >= depth_max + 2 */
    size_t depth_max; /* most levels of a stored topic since the store was empty */
    uint8_t *path;    /* foreach topic buffer, path_cap bytes */
    size_t path_cap;  /* >= the longest topic stored since the store was empty */
};

/* ==== Nodes ================================================================ */

static rnode *node_new(mqtt_retain *r, rnode *parent, const uint8_t *lv, uint32_t len,
                       uint32_t hash)
{
    rnode *nd = calloc(1, sizeof(*nd) + len);
    if (!nd)
        return NULL;
    nd->parent = parent;
    nd->len = len;
    nd->lhash = hash;
    if (len)
        memcpy(nd->level, lv, len);
    r->mem += sizeof(*nd) + len;
    return nd;
}

static void node_release(mqtt_retain *r, rnode *nd)
{
    mqtt__lmap_free(&nd->kids, &r->mem);
    r->mem -= sizeof(*nd) + nd->len;
    free(nd);
}

static void prune(mqtt_retain *r, rnode *nd)
{
    while (nd->parent && !nd->msg && !nd->kids.n) {
        rnode *p = nd->parent;
        mqtt__lmap_del(&p->kids, nd->level, nd->len, nd->lhash, &r->mem);
        node_release(r, nd);
        nd = p;
    }
}

static inline size_t level_end(const uint8_t *p, size_t pos, size_t n)
{
    const uint8_t *s = memchr(p + pos, '/', n - pos);
    return s ? (size_t)(s - p) : n;
}

static rnode *child_get(const rnode *nd, const uint8_t *lv, size_t len)
{
    if (!nd->kids.n)
        return NULL;
    return mqtt__lmap_get(&nd->kids, lv, (uint32_t)len, mqtt__level_hash(lv, len));
}

/* Walks topic t from the root, creating missing nodes when `create` (on OOM
 * pruning what it created); returns the topic's node or NULL. */
static rnode *path_walk(mqtt_retain *r, const uint8_t *t, size_t n, bool create)
{
    rnode *nd = r->root;
    for (size_t pos = 0; pos <= n;) {
        size_t end = level_end(t, pos, n);
        const uint8_t *lv = t + pos;
        uint32_t len = (uint32_t)(end - pos);
        uint32_t h = mqtt__level_hash(lv, len);
        rnode *c = nd->kids.n ? mqtt__lmap_get(&nd->kids, lv, len, h) : NULL;
        if (!c && create) {
            c = node_new(r, nd, lv, len, h);
            if (c && mqtt__lmap_put(&nd->kids, c->level, c->len, h, c, &r->mem)) {
                node_release(r, c);
                c = NULL;
            }
            if (!c) {
                prune(r, nd);
                return NULL;
            }
        }
        if (!c)
            return NULL;
        nd = c;
        pos = end + 1;
    }
    return nd;
}

/* Grows the walk stack and the path buffer for a topic of n bytes and
 * `levels` levels. */
static int scratch_reserve(mqtt_retain *r, size_t levels, size_t n)
{
    if (levels + 2 > r->stack_cap) {
        size_t cap = r->stack_cap ? r->stack_cap * 2 : 16;
        if (cap < levels + 2)
            cap = levels + 2;
        rframe *s = realloc(r->stack, cap * sizeof(*s));
        if (!s)
            return WEIR_ENOMEM;
        r->mem += (cap - r->stack_cap) * sizeof(*s);
        r->stack = s;
        r->stack_cap = cap;
    }
    if (n > r->path_cap) {
        size_t cap = r->path_cap ? r->path_cap * 2 : 128;
        if (cap < n)
            cap = n;
        uint8_t *p = realloc(r->path, cap);
        if (!p)
            return WEIR_ENOMEM;
        r->mem += cap - r->path_cap;
        r->path = p;
        r->path_cap = cap;
    }
    return WEIR_OK;
}

static void scratch_drop(mqtt_retain *r)
{
    r->mem -= r->stack_cap * sizeof(*r->stack) + r->path_cap;
    free(r->stack);
    free(r->path);
    r->stack = NULL;
    r->path = NULL;
    r->stack_cap = r->path_cap = r->depth_max = 0;
}

/* ==== Public API ========================================================== */

mqtt_retain *mqtt_retain_new(void)
{
    mqtt_retain *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->mem = sizeof(*r);
    r->root = node_new(r, NULL, NULL, 0, 0);
    if (!r->root) {
        free(r);
        return NULL;
    }
    return r;
}

void mqtt_retain_free(mqtt_retain *r, void (*release)(void *msg, void *arg), void *arg)
{
    if (!r)
        return;
    /* Post-order through parent pointers, consuming child slots from the
     * end: no stack, whatever the depth (the maps are left inconsistent). */
    rnode *nd = r->root;
    while (nd) {
        mqtt__lmap *m = &nd->kids;
        while (m->cap && !m->slot[m->cap - 1].val)
            m->cap--;
        if (m->cap) {
            nd = m->slot[--m->cap].val;
            continue;
        }
        rnode *p = nd->parent;
        if (nd->msg && release)
            release(nd->msg, arg);
        free(m->slot);
        free(nd);
        nd = p;
    }
    free(r->stack);
    free(r->path);
    free(r);
}

void *mqtt_retain_set(mqtt_retain *r, const uint8_t *topic, size_t n, void *msg, int *err)
{
    int dummy;
    if (!err)
        err = &dummy;
    *err = WEIR_OK;
    if (!mqtt_topic_name_valid(topic, n)) {
        *err = WEIR_ETOPIC;
        return NULL;
    }
    if (!msg) {
        rnode *nd = path_walk(r, topic, n, false);
        if (!nd || !nd->msg)
            return NULL;
        void *old = nd->msg;
        nd->msg = NULL;
        prune(r, nd);
        if (--r->count == 0)
            scratch_drop(r);
        return old;
    }
    size_t levels = 1;
    for (const uint8_t *p = topic, *e = topic + n; (p = memchr(p, '/', (size_t)(e - p))); p++)
        levels++;
    rnode *nd = NULL;
    if (scratch_reserve(r, levels, n) || !(nd = path_walk(r, topic, n, true))) {
        *err = WEIR_ENOMEM;
        return NULL;
    }
    void *old = nd->msg;
    nd->msg = msg;
    if (!old)
        r->count++;
    if (levels > r->depth_max)
        r->depth_max = levels;
    return old;
}

/* The next child of fr's node from slot fr->it, skipping '$' levels under
 * the root when the walk came from a wildcard; NULL when there is none. */
static rnode *next_child(rframe *fr, bool skip_dollar)
{
    const mqtt__lmap *m = &fr->node->kids;
    while (fr->it < m->cap) {
        const mqtt__lslot *s = &m->slot[fr->it++];
        if (!s->val)
            continue;
        if (skip_dollar && s->len && mqtt__lslot_key(s)[0] == '$')
            continue;
        return s->val;
    }
    return NULL;
}

void mqtt_retain_match(mqtt_retain *r, const uint8_t *filter, size_t n,
                       void (*cb)(void *msg, void *arg), void *arg)
{
    if (n == 0 || n > MQTT_TOPIC_MAX || r->count == 0)
        return;
    rframe *st = r->stack;
    size_t sp = 0;
    st[sp++] = (rframe){.node = r->root, .pos = 0, .mode = WALK_VISIT};
    while (sp) {
        rframe *fr = &st[sp - 1];
        rnode *nd = fr->node;
        /* The '$' rule: wildcards at the first level skip "$..." topics. */
        bool skip = nd == r->root;
        rnode *c;
        switch (fr->mode) {
        case WALK_VISIT: {
            if (fr->pos > n) {
                if (nd->msg)
                    cb(nd->msg, arg);
                sp--;
                break;
            }
            size_t end = level_end(filter, fr->pos, n);
            size_t len = end - fr->pos;
            const uint8_t *lv = filter + fr->pos;
            if (len == 1 && lv[0] == '#') {
                if (nd->msg) /* "sport/#" matches "sport" */
                    cb(nd->msg, arg);
                *fr = (rframe){.node = nd, .mode = WALK_ALL};
            } else if (len == 1 && lv[0] == '+') {
                *fr = (rframe){.node = nd, .pos = end + 1, .mode = WALK_PLUS};
            } else {
                sp--;
                if ((c = child_get(nd, lv, len)))
                    st[sp++] = (rframe){.node = c, .pos = end + 1, .mode = WALK_VISIT};
            }
            break;
        }
        case WALK_PLUS:
            if (!(c = next_child(fr, skip)))
                sp--;
            else
                st[sp++] = (rframe){.node = c, .pos = fr->pos, .mode = WALK_VISIT};
            break;
        default: /* WALK_ALL */
            if (!(c = next_child(fr, skip))) {
                sp--;
                break;
            }
            if (c->msg)
                cb(c->msg, arg);
            st[sp++] = (rframe){.node = c, .mode = WALK_ALL};
            break;
        }
    }
}

/* Writes nd's full topic into r->path and returns its length. */
static size_t topic_of(mqtt_retain *r, const rnode *nd)
{
    size_t n = 0;
    for (const rnode *p = nd; p->parent; p = p->parent)
        n += p->len + 1;
    n--; /* n separators for n + 1 levels */
    size_t end = n;
    for (const rnode *p = nd; p->parent; p = p->parent) {
        end -= p->len;
        if (p->len)
            memcpy(r->path + end, p->level, p->len);
        if (end)
            r->path[--end] = '/';
    }
    return n;
}

void mqtt_retain_foreach(mqtt_retain *r,
                         void (*cb)(const uint8_t *topic, size_t n, void *msg, void *arg),
                         void *arg)
{
    if (r->count == 0)
        return;
    rframe *st = r->stack;
    size_t sp = 0;
    st[sp++] = (rframe){.node = r->root, .mode = WALK_ALL};
    while (sp) {
        rnode *c = next_child(&st[sp - 1], false);
        if (!c) {
            sp--;
            continue;
        }
        if (c->msg)
            cb(r->path, topic_of(r, c), c->msg, arg);
        st[sp++] = (rframe){.node = c, .mode = WALK_ALL};
    }
}

size_t mqtt_retain_count(const mqtt_retain *r)
{
    return r->count;
}

size_t mqtt_retain_memory(const mqtt_retain *r)
{
    return r->mem;
}
