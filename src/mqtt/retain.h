/* retain.h -- retained messages by topic name.
 *
 * The broker keeps the last retained PUBLISH of every topic and replays the
 * ones a new subscription's filter matches (spec 3.3.1.3). Messages are
 * opaque pointers owned by the caller (a refcounted broker message): the
 * store only holds them and hands them back when replaced, deleted or freed.
 *
 * Storage is a trie of topic levels, the mirror image of the subscription
 * tree: there the tree holds filters and a topic walks it, here the tree
 * holds topic names and a filter walks it. A literal filter level is one
 * hash probe (the level map of topic.h), '+' visits every child of a node,
 * '#' the whole subtree, so a match touches only the branches that can
 * match and never the whole store. Like the subscription tree, walks use an
 * explicit stack sized in advance (no allocation, no recursion, any depth),
 * and deleting a message frees the nodes it leaves empty.
 *
 * Not thread-safe. Callbacks must not modify the store they are called from.
 */
#ifndef WEIR_MQTT_RETAIN_H
#define WEIR_MQTT_RETAIN_H

#include <stddef.h>
#include <stdint.h>

typedef struct mqtt_retain mqtt_retain;

/* A new empty store, or NULL on OOM. */
mqtt_retain *mqtt_retain_new(void);

/* Frees the store; release (may be NULL) is called once for every stored
 * message. NULL r is allowed. */
void mqtt_retain_free(mqtt_retain *r, void (*release)(void *msg, void *arg), void *arg);

/* Stores msg under topic (a topic NAME, no wildcards) and returns the
 * message it replaces (the caller releases it) or NULL. msg == NULL deletes.
 * Sets *err (may be NULL) to WEIR_OK, or on failure to WEIR_ENOMEM or
 * WEIR_ETOPIC (topic empty, over MQTT_TOPIC_MAX of topic.h, or with a
 * wildcard: the broker validates first, this keeps the trie sound); on
 * failure nothing changed and the return is NULL. Deleting never fails. */
void *mqtt_retain_set(mqtt_retain *r, const uint8_t *topic, size_t n, void *msg, int *err);

/* Calls cb for every retained message whose topic matches the (non-shared)
 * filter, with the '$' rule ("#" does not replay "$SYS/..."). Walks only
 * the matching branches; allocates nothing. */
void mqtt_retain_match(mqtt_retain *r, const uint8_t *filter, size_t n,
                       void (*cb)(void *msg, void *arg), void *arg);

/* Calls cb for every stored message with its topic (valid during the call
 * only), in no particular order; for snapshots. */
void mqtt_retain_foreach(mqtt_retain *r,
                         void (*cb)(const uint8_t *topic, size_t n, void *msg, void *arg),
                         void *arg);

/* Messages stored. */
size_t mqtt_retain_count(const mqtt_retain *r);

/* Approximate heap bytes used by the store (not the messages), for metrics. */
size_t mqtt_retain_memory(const mqtt_retain *r);

#endif
