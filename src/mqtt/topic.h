/* topic.h -- MQTT topic names and filters: validation, matching, and the
 * subscription tree the broker routes every PUBLISH through.
 *
 * Levels. A topic name or filter is a sequence of levels separated by '/';
 * a level may be empty ("a//b" has three levels, "/a" two, "a/" two). In a
 * filter '+' stands for exactly one level and '#' for zero or more trailing
 * levels, and each must be a whole level ('#' also the last one). Topics
 * whose first character is '$' are not matched by a filter that starts with
 * a wildcard (spec 4.7.2), so "#" never delivers "$SYS/...". A filter
 * "$share/<group>/<filter>" is a shared subscription (spec 4.8.2): each
 * matching message goes to one member of the group, not to all.
 *
 * The subscription tree is a trie with one node per filter level. A node
 * keeps its literal children in a level map (a dense array while small, an
 * open-addressing hash table keyed by XXH3 once it grows) and its '+' and
 * '#' children in dedicated slots, so routing a topic of L levels costs at
 * most three child probes per visited node and never scans siblings. The
 * subscriptions that end at a node sit in a growable array (with an owner
 * index once the array is large, so a filter everyone subscribes to does not
 * make subscribing quadratic); share groups hang off the node as a list,
 * each with its members in join order and a round-robin cursor.
 *
 * Matching allocates nothing and does not recurse: it walks the trie
 * depth-first with an explicit stack that add() sizes in advance to the
 * deepest node, so a 65535-level filter of slashes cannot overflow the C
 * stack. Removing a subscription prunes the nodes it leaves empty and
 * shrinks the tables that held them, so memory goes back to what it was.
 *
 * Not thread-safe: the broker owns the tree from one thread. Callbacks must
 * not modify the tree they are called from, nor match it again.
 */
#ifndef WEIR_MQTT_TOPIC_H
#define WEIR_MQTT_TOPIC_H

#include "mqtt/codec.h" /* mqtt_bytes, MQTT_SUBOPT_* */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest topic name or filter the protocol can carry (spec 4.7.3). */
#define MQTT_TOPIC_MAX 65535u

/* ---- Names and filters -------------------------------------------------- */

/* True when t[0..n) can be published to: 1..MQTT_TOPIC_MAX bytes without
 * '+' or '#'. UTF-8 validity is the codec's job and is not checked here. */
bool mqtt_topic_name_valid(const uint8_t *t, size_t n);

/* True when f[0..n) can be subscribed to: 1..MQTT_TOPIC_MAX bytes, '+' only
 * as a whole level, '#' only as a whole level and the last one. A filter
 * that starts with "$share/" must be "$share/<group>/<filter>" with a
 * non-empty group free of '+', '#' and '/', and a non-empty valid filter.
 * "$share" alone, or "$shared/x", is an ordinary filter. */
bool mqtt_topic_filter_valid(const uint8_t *f, size_t n);

/* Splits "$share/<group>/<filter>" into its group and filter (pointing into
 * f). Returns false, leaving the outputs untouched, when f does not start
 * with "$share/" or has no '/' after the group. It checks structure only;
 * whether the parts are valid is mqtt_topic_filter_valid's question. */
bool mqtt_topic_share_split(const uint8_t *f, size_t n, mqtt_bytes *group, mqtt_bytes *filter);

/* True when the non-shared filter f matches the topic name t (spec 4.7),
 * including "sport/#" matching "sport" and the '$' rule above. Both are
 * assumed valid; an empty one matches nothing. */
bool mqtt_topic_matches(const uint8_t *filter, size_t fn, const uint8_t *topic, size_t tn);

/* ---- The subscription tree ---------------------------------------------- */

/* One subscription as stored in the tree. */
typedef struct mqtt_sub {
    void *owner;     /* the subscriber (a session); the tree never dereferences it */
    uint8_t options; /* MQTT_SUBOPT_* byte: QoS, no-local, retain-as-published, retain handling */
    uint32_t sub_id; /* MQTT 5 subscription identifier, 0 when none */
} mqtt_sub;

typedef struct mqtt_subtree mqtt_subtree;

/* A new empty tree, or NULL on OOM. */
mqtt_subtree *mqtt_subtree_new(void);

/* Frees the tree and every subscription in it. NULL is allowed. Owners are
 * not touched. */
void mqtt_subtree_free(mqtt_subtree *t);

/* Adds or replaces owner's subscription to `filter` (a "$share/g/f" filter
 * joins group g of filter f). *existed (may be NULL) is set to true when it
 * replaced an existing subscription of the same owner to the same (group,
 * filter): options and sub_id are then overwritten in place and a share
 * member keeps its round-robin position. Returns WEIR_OK, WEIR_ETOPIC
 * (invalid filter) or WEIR_ENOMEM; on error the tree is unchanged. */
int mqtt_subtree_add(mqtt_subtree *t, const uint8_t *filter, size_t n, const mqtt_sub *sub,
                     bool *existed);

/* Removes owner's subscription to filter (shared form included). Returns
 * WEIR_OK or WEIR_ENOTFOUND (also for an invalid filter, which cannot be in
 * the tree). Nodes left empty are freed. Never fails otherwise. */
int mqtt_subtree_remove(mqtt_subtree *t, const uint8_t *filter, size_t n, void *owner);

/* Called once per delivery. `sub` points into the tree and is valid only
 * during the call. `shared` is true for the member picked from a group. */
typedef void (*mqtt_subtree_cb)(const mqtt_sub *sub, bool shared, void *arg);

/* Whether a share member can take a message now (its session is online and
 * has room, say). */
typedef bool (*mqtt_subtree_eligible)(void *owner, void *arg);

/* For a PUBLISH to `topic`: calls cb once for every matching non-shared
 * subscription (an owner with two overlapping filters gets two calls: the
 * broker merges them), and once per matching share group with ONE member
 * chosen round-robin: starting after the group's last pick, the first
 * member for which eligible(owner, arg) is true; if none is eligible, the
 * next member in round-robin order anyway (the message then waits in that
 * offline session's queue). eligible may be NULL (all eligible). Allocates
 * nothing. An empty or over-long (> MQTT_TOPIC_MAX) topic matches nothing. */
void mqtt_subtree_match(mqtt_subtree *t, const uint8_t *topic, size_t n, mqtt_subtree_cb cb,
                        mqtt_subtree_eligible eligible, void *arg);

/* Subscriptions stored, share members included. */
size_t mqtt_subtree_count(const mqtt_subtree *t);

/* Approximate heap bytes used by the tree, for metrics. */
size_t mqtt_subtree_memory(const mqtt_subtree *t);

/* ---- Internal: the level map, shared with retain.c ----------------------
 *
 * A map from one topic level (a byte string) to a child node. Levels of up
 * to 8 bytes (most of them: "factory", "temp", "s12") are kept inside the
 * slot, so a probe compares them without touching the child; longer keys are
 * borrowed: the slot points at the level bytes stored in the child itself,
 * which must outlive its slot. Up to
 * MQTT__LMAP_DENSE entries live in a dense array scanned linearly (one cache
 * line or two, cheaper than hashing into a table); beyond that the slots
 * form a power-of-two open-addressing table with linear probing, load at
 * most 1/2, and backward-shift deletion (no tombstones, so a map that
 * empties goes back to no allocation). Every slot carries the level's hash
 * and length, so a probe touches only the slot array until it finds a
 * candidate. Not for use outside the topic and retain modules. */

#define MQTT__LMAP_DENSE 4u

#define MQTT__LSLOT_INLINE 8u

typedef struct mqtt__lslot {
    union {
        const uint8_t *ptr;              /* len > MQTT__LSLOT_INLINE: borrowed */
        uint8_t inl[MQTT__LSLOT_INLINE]; /* otherwise: the bytes themselves */
    } key;
    void *val;     /* the child; NULL marks a free slot */
    uint32_t hash; /* mqtt__level_hash(key, len) */
    uint32_t len;  /* level length in bytes (0 for an empty level) */
} mqtt__lslot;

/* The level bytes of a slot. */
static inline const uint8_t *mqtt__lslot_key(const mqtt__lslot *s)
{
    return s->len > MQTT__LSLOT_INLINE ? s->key.ptr : s->key.inl;
}

typedef struct mqtt__lmap {
    mqtt__lslot *slot; /* cap slots; NULL when cap is 0 */
    uint32_t n;        /* entries in use */
    uint32_t cap;      /* 0, dense (1..MQTT__LMAP_DENSE) or a table (power of two > DENSE) */
} mqtt__lmap;

/* Hash of one level, as stored in mqtt__lslot.hash. */
uint32_t mqtt__level_hash(const uint8_t *p, size_t n);

/* The child stored under key, or NULL. */
void *mqtt__lmap_get(const mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash);

/* Stores val under key, which must not be present; a key longer than
 * MQTT__LSLOT_INLINE must stay valid while it is stored. `*mem` is adjusted by
 * the bytes allocated or freed. Returns WEIR_OK or WEIR_ENOMEM (map
 * unchanged). */
int mqtt__lmap_put(mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash, void *val,
                   size_t *mem);

/* Removes key if present; may shrink the map. Never fails: a shrink that
 * cannot allocate keeps the larger table. */
void mqtt__lmap_del(mqtt__lmap *m, const uint8_t *key, uint32_t len, uint32_t hash, size_t *mem);

/* Frees the slots (not the children). */
void mqtt__lmap_free(mqtt__lmap *m, size_t *mem);

/* Iteration: for (i = 0; i < m->cap; i++) if (m->slot[i].val) ... */

#endif
