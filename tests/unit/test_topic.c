/* test_topic.c -- topic validation, matching and the subscription tree.
 *
 * The spec tables run through all three matchers (mqtt_topic_matches, a
 * one-filter mqtt_subtree, a one-topic mqtt_retain) so they cannot drift
 * apart; the randomized test then holds the tree to the simple matcher on
 * thousands of filters. Owners are small integers cast to pointers: the tree
 * never dereferences them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "mqtt/retain.h"
#include "mqtt/topic.h"

#define U(s)        ((const uint8_t *)(s))
#define OWNER(i)    ((void *)(uintptr_t)(i))
#define OWNER_ID(p) ((size_t)(uintptr_t)(p))

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
    /* xorshift64*: deterministic, so a failure reproduces. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32) % n;
}

/* ---- Validation ----------------------------------------------------------- */

typedef struct vcase {
    const char *s;
    bool ok;
} vcase;

static void test_name_valid(void **state)
{
    static const vcase cases[] = {
        {"a", true},    {"/", true},           {"a/b", true},  {"a//b", true},
        {"/a/", true},  {"$SYS/broker", true}, {" ", true},    {"sport/tennis", true},
        {"", false},    {"+", false},          {"#", false},   {"a/+", false},
        {"a/#", false}, {"a+b", false},        {"a#b", false}, {"sport/tennis#", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const vcase *c = &cases[i];
        if (mqtt_topic_name_valid(U(c->s), strlen(c->s)) != c->ok)
            fail_msg("name \"%s\": expected %s", c->s, c->ok ? "valid" : "invalid");
    }
    uint8_t *big = malloc(MQTT_TOPIC_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', MQTT_TOPIC_MAX + 1);
    assert_true(mqtt_topic_name_valid(big, MQTT_TOPIC_MAX));
    assert_false(mqtt_topic_name_valid(big, MQTT_TOPIC_MAX + 1));
    free(big);
    (void)state;
}

static void test_filter_valid(void **state)
{
    static const vcase cases[] = {
        /* spec 4.7.1 */
        {"sport/tennis/player1/#", true},
        {"sport/#", true},
        {"#", true},
        {"sport/tennis/#", true},
        {"sport/tennis#", false},
        {"sport/tennis/#/ranking", false},
        {"+", true},
        {"+/tennis/#", true},
        {"sport+", false},
        {"sport/+/player1", true},
        {"/+", true},
        {"+/+", true},
        /* more */
        {"", false},
        {"/", true},
        {"//", true},
        {"a//b", true},
        {"+/+/+", true},
        {"+/#", true},
        {"/#", true},
        {"$SYS/#", true},
        {"$SYS/monitor/+", true},
        {"+sport", false},
        {"sport/+a", false},
        {"sport/a+/b", false},
        {"a/#/", false},
        {"##", false},
        {"++", false},
        {"#/", false},
        {"#/a", false},
        {"a/b#", false},
        /* shared subscriptions, spec 4.8.2 */
        {"$share/g/#", true},
        {"$share/group/sport/+/player1", true},
        {"$share/g//", true},
        {"$share/g/+", true},
        {"$share/g/$SYS/#", true},
        {"$share/g/$share/h/x", true},
        {"$share/", false},
        {"$share/g", false},
        {"$share//a", false},
        {"$share/g/", false},
        {"$share/g+/a", false},
        {"$share/+/a", false},
        {"$share/#/a", false},
        {"$share/g#/a", false},
        {"$share/g/a#", false},
        {"$share/g/#/a", false},
        /* not shared at all: ordinary filters */
        {"$share", true},
        {"$sharex/y", true},
        {"$shared/g/a", true},
        {"a/$share/g", true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const vcase *c = &cases[i];
        if (mqtt_topic_filter_valid(U(c->s), strlen(c->s)) != c->ok)
            fail_msg("filter \"%s\": expected %s", c->s, c->ok ? "valid" : "invalid");
    }
    uint8_t *big = malloc(MQTT_TOPIC_MAX + 1);
    assert_non_null(big);
    memset(big, '/', MQTT_TOPIC_MAX + 1);
    assert_true(mqtt_topic_filter_valid(big, MQTT_TOPIC_MAX));
    assert_false(mqtt_topic_filter_valid(big, MQTT_TOPIC_MAX + 1));
    free(big);
    (void)state;
}

static void check_split(const char *f, bool ok, const char *group, const char *filter)
{
    mqtt_bytes g = {0}, ff = {0};
    bool r = mqtt_topic_share_split(U(f), strlen(f), &g, &ff);
    if (r != ok)
        fail_msg("split \"%s\": expected %d", f, ok);
    if (!ok) {
        assert_null(g.data);
        assert_null(ff.data);
        return;
    }
    assert_int_equal(g.len, strlen(group));
    assert_memory_equal(g.data, group, g.len);
    assert_int_equal(ff.len, strlen(filter));
    assert_memory_equal(ff.data, filter, ff.len);
    assert_ptr_equal(g.data, U(f) + 7); /* points into the input */
}

static void test_share_split(void **state)
{
    check_split("$share/grp/a/b", true, "grp", "a/b");
    check_split("$share/g/#", true, "g", "#");
    check_split("$share/g//", true, "g", "/");
    check_split("$share/g/", true, "g", ""); /* structure only; invalid as a filter */
    check_split("$share//a", true, "", "a");
    check_split("$share/g", false, NULL, NULL);
    check_split("$share/", false, NULL, NULL);
    check_split("$share", false, NULL, NULL);
    check_split("$shared/g/a", false, NULL, NULL);
    check_split("a/b", false, NULL, NULL);
    check_split("#", false, NULL, NULL);
    (void)state;
}

/* ---- Matching: the spec examples through every matcher ------------------ */

typedef struct mcase {
    const char *filter;
    const char *topic;
    bool match;
} mcase;

static const mcase match_cases[] = {
    /* 4.7.1.2 multi-level wildcard */
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/tennis/player1/#", "sport/tennis/player2", false},
    {"sport/tennis/player1/#", "sport/tennis", false},
    {"sport/#", "sport", true},
    {"sport/#", "sport/", true},
    {"sport/#", "sports", false},
    {"sport/tennis/#", "sport/tennis", true},
    {"sport/tennis/#", "sport", false},
    {"#", "sport", true},
    {"#", "sport/tennis/player1", true},
    {"#", "/", true},
    {"#", "/finance", true},
    /* 4.7.1.3 single-level wildcard */
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+", "sport", true},
    {"+", "/finance", false},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+/+", "/", true},
    {"+", "/", false},
    {"+/tennis/#", "sport/tennis/player1", true},
    {"+/tennis/#", "sport/tennis", true},
    {"+/tennis/#", "sport/golf", false},
    {"sport/+/player1", "sport/tennis/player1", true},
    {"sport/+/player1", "sport//player1", true},
    {"sport/+/player1", "sport/tennis/player2", false},
    {"+/#", "a", true},
    {"/#", "/", true},
    {"/#", "/a/b", true},
    {"/#", "a", false},
    /* 4.7.2 topics beginning with $ */
    {"#", "$SYS/monitor/Clients", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"+/monitor/Clients", "x/monitor/Clients", true},
    {"$SYS/#", "$SYS/monitor/Clients", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"$SYS/#", "$SYS", true},
    {"+", "$SYS", false},
    {"+/#", "$SYS/a", false},
    {"a/#", "a/$b", true}, /* the rule is about the first level only */
    {"a/+", "a/$b", true},
    /* exact levels */
    {"a/b", "a/b", true},
    {"a/b", "a/bc", false},
    {"a/b", "a/b/", false},
    {"a/b", "a", false},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"ACCOUNTS", "Accounts", false},
    {"/", "/", true},
    {"//", "/", false},
};

static size_t n_calls;

static void count_cb(const mqtt_sub *sub, bool shared, void *arg)
{
    (void)sub;
    (void)shared;
    (void)arg;
    n_calls++;
}

static void count_msg(void *msg, void *arg)
{
    (void)msg;
    (void)arg;
    n_calls++;
}

static void test_matches_spec(void **state)
{
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const mcase *c = &match_cases[i];
        size_t fn = strlen(c->filter), tn = strlen(c->topic);
        assert_true(mqtt_topic_filter_valid(U(c->filter), fn));
        assert_true(mqtt_topic_name_valid(U(c->topic), tn));
        if (mqtt_topic_matches(U(c->filter), fn, U(c->topic), tn) != c->match)
            fail_msg("matches(\"%s\", \"%s\") != %d", c->filter, c->topic, c->match);

        mqtt_subtree *t = mqtt_subtree_new();
        assert_non_null(t);
        mqtt_sub sub = {.owner = OWNER(1)};
        assert_int_equal(mqtt_subtree_add(t, U(c->filter), fn, &sub, NULL), WEIR_OK);
        n_calls = 0;
        mqtt_subtree_match(t, U(c->topic), tn, count_cb, NULL, NULL);
        if (n_calls != (c->match ? 1u : 0u))
            fail_msg("subtree \"%s\" / \"%s\": %zu calls", c->filter, c->topic, n_calls);
        mqtt_subtree_free(t);

        mqtt_retain *r = mqtt_retain_new();
        assert_non_null(r);
        int err = -1;
        assert_null(mqtt_retain_set(r, U(c->topic), tn, OWNER(1), &err));
        assert_int_equal(err, WEIR_OK);
        n_calls = 0;
        mqtt_retain_match(r, U(c->filter), fn, count_msg, NULL);
        if (n_calls != (c->match ? 1u : 0u))
            fail_msg("retain \"%s\" / \"%s\": %zu calls", c->filter, c->topic, n_calls);
        mqtt_retain_free(r, NULL, NULL);
    }
    assert_false(mqtt_topic_matches(U("#"), 1, U(""), 0));
    assert_false(mqtt_topic_matches(U(""), 0, U("a"), 1));
    (void)state;
}

/* ---- Collecting callbacks -------------------------------------------------- */

typedef struct got {
    mqtt_sub sub;
    bool shared;
} got;

typedef struct collect {
    got v[4096];
    size_t n;
} collect;

static void collect_cb(const mqtt_sub *sub, bool shared, void *arg)
{
    collect *c = arg;
    assert_true(c->n < sizeof(c->v) / sizeof(c->v[0]));
    c->v[c->n++] = (got){*sub, shared};
}

static void match(mqtt_subtree *t, const char *topic, collect *c)
{
    c->n = 0;
    mqtt_subtree_match(t, U(topic), strlen(topic), collect_cb, NULL, c);
}

static int add(mqtt_subtree *t, const char *filter, size_t owner, uint8_t opts, uint32_t id,
               bool *existed)
{
    mqtt_sub s = {.owner = OWNER(owner), .options = opts, .sub_id = id};
    return mqtt_subtree_add(t, U(filter), strlen(filter), &s, existed);
}

static int del(mqtt_subtree *t, const char *filter, size_t owner)
{
    return mqtt_subtree_remove(t, U(filter), strlen(filter), OWNER(owner));
}

/* ---- Tree basics --------------------------------------------------------- */

static void test_add_replace_remove(void **state)
{
    mqtt_subtree *t = mqtt_subtree_new();
    assert_non_null(t);
    size_t base = mqtt_subtree_memory(t);
    assert_true(base > 0);
    collect *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    bool ex = true;

    assert_int_equal(add(t, "a/b", 1, 1, 7, &ex), WEIR_OK);
    assert_false(ex);
    assert_int_equal(mqtt_subtree_count(t), 1);
    assert_true(mqtt_subtree_memory(t) > base);
    match(t, "a/b", c);
    assert_int_equal(c->n, 1);
    assert_ptr_equal(c->v[0].sub.owner, OWNER(1));
    assert_int_equal(MQTT_SUBOPT_QOS(c->v[0].sub.options), 1);
    assert_int_equal(c->v[0].sub.sub_id, 7);
    assert_false(c->v[0].shared);

    /* Same owner, same filter: replaced in place. */
    assert_int_equal(add(t, "a/b", 1, 2 | MQTT_SUBOPT_NO_LOCAL, 9, &ex), WEIR_OK);
    assert_true(ex);
    assert_int_equal(mqtt_subtree_count(t), 1);
    match(t, "a/b", c);
    assert_int_equal(c->n, 1);
    assert_int_equal(c->v[0].sub.options, 2 | MQTT_SUBOPT_NO_LOCAL);
    assert_int_equal(c->v[0].sub.sub_id, 9);

    /* existed may be NULL. */
    assert_int_equal(add(t, "a/b", 2, 0, 0, NULL), WEIR_OK);
    assert_int_equal(mqtt_subtree_count(t), 2);
    /* The shared form of the same filter is a different subscription. */
    assert_int_equal(add(t, "$share/g/a/b", 1, 0, 0, &ex), WEIR_OK);
    assert_false(ex);
    assert_int_equal(add(t, "$share/h/a/b", 1, 0, 0, &ex), WEIR_OK);
    assert_false(ex);
    assert_int_equal(add(t, "$share/g/a/b", 1, 1, 0, &ex), WEIR_OK);
    assert_true(ex);
    assert_int_equal(mqtt_subtree_count(t), 4);
    match(t, "a/b", c);
    assert_int_equal(c->n, 4);

    /* Invalid filters change nothing. */
    ex = true;
    assert_int_equal(add(t, "a/#/b", 1, 0, 0, &ex), WEIR_ETOPIC);
    assert_false(ex);
    assert_int_equal(add(t, "", 1, 0, 0, NULL), WEIR_ETOPIC);
    assert_int_equal(add(t, "$share/g", 1, 0, 0, NULL), WEIR_ETOPIC);
    assert_int_equal(mqtt_subtree_count(t), 4);

    assert_int_equal(del(t, "a/b", 3), WEIR_ENOTFOUND);
    assert_int_equal(del(t, "a/c", 1), WEIR_ENOTFOUND);
    assert_int_equal(del(t, "a", 1), WEIR_ENOTFOUND);
    assert_int_equal(del(t, "a/b/c", 1), WEIR_ENOTFOUND);
    assert_int_equal(del(t, "$share/x/a/b", 1), WEIR_ENOTFOUND);
    assert_int_equal(del(t, "$share/g/a/b", 2), WEIR_ENOTFOUND);
    assert_int_equal(del(t, "a/+/#/", 1), WEIR_ENOTFOUND);
    assert_int_equal(mqtt_subtree_count(t), 4);

    assert_int_equal(del(t, "a/b", 1), WEIR_OK);
    assert_int_equal(del(t, "a/b", 1), WEIR_ENOTFOUND);
    match(t, "a/b", c);
    assert_int_equal(c->n, 3);
    assert_int_equal(del(t, "$share/g/a/b", 1), WEIR_OK);
    assert_int_equal(del(t, "$share/h/a/b", 1), WEIR_OK);
    assert_int_equal(del(t, "a/b", 2), WEIR_OK);
    assert_int_equal(mqtt_subtree_count(t), 0);
    assert_int_equal(mqtt_subtree_memory(t), base);
    match(t, "a/b", c);
    assert_int_equal(c->n, 0);

    /* An empty topic matches nothing, not even "#". */
    assert_int_equal(add(t, "#", 1, 0, 0, NULL), WEIR_OK);
    match(t, "", c);
    assert_int_equal(c->n, 0);

    free(c);
    mqtt_subtree_free(t);
    mqtt_subtree_free(NULL);
    (void)state;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* The sorted sub_ids of the last match. */
static void ids_of(const collect *c, uint32_t *ids)
{
    for (size_t i = 0; i < c->n; i++)
        ids[i] = c->v[i].sub.sub_id;
    qsort(ids, c->n, sizeof(*ids), cmp_u32);
}

static void test_overlap(void **state)
{
    mqtt_subtree *t = mqtt_subtree_new();
    collect *c = calloc(1, sizeof(*c));
    assert_non_null(t);
    assert_non_null(c);
    static const char *filters[] = {"a/+", "a/#", "+/b", "a/b", "#", "+/+", "a/b/#", "b/#"};
    for (uint32_t i = 0; i < 8; i++)
        assert_int_equal(add(t, filters[i], 1, 0, i + 1, NULL), WEIR_OK);
    assert_int_equal(add(t, "a/b", 2, 0, 100, NULL), WEIR_OK);

    uint32_t ids[16];
    match(t, "a/b", c); /* every filter but b/# */
    assert_int_equal(c->n, 8);
    ids_of(c, ids);
    static const uint32_t want_ab[] = {1, 2, 3, 4, 5, 6, 7, 100};
    assert_memory_equal(ids, want_ab, sizeof(want_ab));

    match(t, "a/c", c);
    assert_int_equal(c->n, 4);
    ids_of(c, ids);
    static const uint32_t want_ac[] = {1, 2, 5, 6};
    assert_memory_equal(ids, want_ac, sizeof(want_ac));

    match(t, "a", c); /* a/#, # */
    assert_int_equal(c->n, 2);
    ids_of(c, ids);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 5);

    match(t, "$SYS/b", c); /* nothing: every candidate starts with a wildcard */
    assert_int_equal(c->n, 0);
    free(c);
    mqtt_subtree_free(t);
    (void)state;
}

/* ---- Shared subscriptions ----------------------------------------------- */

static bool eligible_not(void *owner, void *arg)
{
    const bool *offline = arg;
    return !offline[OWNER_ID(owner)];
}

typedef struct picks {
    bool offline[8];
    size_t owner[16];
    bool shared[16];
    size_t n;
} picks;

static void picks_cb(const mqtt_sub *sub, bool shared, void *arg)
{
    picks *p = arg;
    p->owner[p->n] = OWNER_ID(sub->owner);
    p->shared[p->n] = shared;
    p->n++;
}

/* One publish; returns the single owner picked. */
static size_t pick(mqtt_subtree *t, picks *p)
{
    p->n = 0;
    mqtt_subtree_match(t, U("s/1"), 3, picks_cb, eligible_not, p);
    assert_int_equal(p->n, 1);
    assert_true(p->shared[0]);
    return p->owner[0];
}

static void test_shared_round_robin(void **state)
{
    mqtt_subtree *t = mqtt_subtree_new();
    assert_non_null(t);
    size_t base = mqtt_subtree_memory(t);
    picks p = {0};
    bool ex;
    for (size_t o = 1; o <= 3; o++) {
        assert_int_equal(add(t, "$share/g/s/+", o, 1, 0, &ex), WEIR_OK);
        assert_false(ex);
    }
    assert_int_equal(mqtt_subtree_count(t), 3);

    /* Plain rotation in join order. */
    static const size_t rot[] = {1, 2, 3, 1, 2, 3};
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(pick(t, &p), rot[i]);

    /* eligible == NULL: all eligible. */
    p.n = 0;
    mqtt_subtree_match(t, U("s/1"), 3, picks_cb, NULL, &p);
    assert_int_equal(p.n, 1);
    assert_int_equal(p.owner[0], 1);

    /* 2 offline: skipped, the rotation continues after the member picked. */
    p.offline[2] = true;
    static const size_t skip2[] = {3, 1, 3, 1};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pick(t, &p), skip2[i]);

    /* Only 2 online: picked every time. */
    p.offline[1] = p.offline[3] = true;
    p.offline[2] = false;
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(pick(t, &p), 2);

    /* Nobody online: round robin goes on regardless (cursor is after 2). */
    p.offline[2] = true;
    static const size_t none[] = {3, 1, 2, 3};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pick(t, &p), none[i]);
    memset(p.offline, 0, sizeof(p.offline));

    /* Re-subscribing keeps the place in the rotation. Cursor is now at 1. */
    assert_int_equal(add(t, "$share/g/s/+", 2, 2, 0, &ex), WEIR_OK);
    assert_true(ex);
    assert_int_equal(mqtt_subtree_count(t), 3);
    assert_int_equal(pick(t, &p), 1);
    assert_int_equal(pick(t, &p), 2);

    /* Removing the member due next hands the turn to the one after it. */
    assert_int_equal(del(t, "$share/g/s/+", 3), WEIR_OK);
    assert_int_equal(pick(t, &p), 1);
    /* Removing one before the cursor keeps the member due next. */
    assert_int_equal(add(t, "$share/g/s/+", 3, 0, 0, NULL), WEIR_OK); /* 1 2 3, next 2 */
    assert_int_equal(del(t, "$share/g/s/+", 1), WEIR_OK);             /* 2 3, next 2 */
    assert_int_equal(pick(t, &p), 2);
    assert_int_equal(pick(t, &p), 3);
    /* Removing the last member in order wraps the cursor. */
    assert_int_equal(pick(t, &p), 2); /* next is 3 */
    assert_int_equal(del(t, "$share/g/s/+", 3), WEIR_OK);
    assert_int_equal(pick(t, &p), 2);
    assert_int_equal(pick(t, &p), 2);

    /* Two groups and a plain subscriber: one call per group plus the plain
     * one; the same owner may be in both groups and subscribed plainly. */
    assert_int_equal(add(t, "$share/h/s/#", 2, 0, 0, NULL), WEIR_OK);
    assert_int_equal(add(t, "$share/h/s/#", 4, 0, 0, NULL), WEIR_OK);
    assert_int_equal(add(t, "s/1", 2, 0, 0, NULL), WEIR_OK);
    for (int round = 0; round < 2; round++) {
        p.n = 0;
        mqtt_subtree_match(t, U("s/1"), 3, picks_cb, NULL, &p);
        assert_int_equal(p.n, 3);
        size_t nshared = 0, h_owner = 0;
        for (size_t i = 0; i < p.n; i++) {
            nshared += p.shared[i];
            if (p.shared[i] && p.owner[i] != 2)
                h_owner = p.owner[i];
        }
        assert_int_equal(nshared, 2);
        assert_int_equal(h_owner, round == 0 ? 0 : 4); /* h picks 2 then 4 */
    }
    /* A topic only h matches. */
    p.n = 0;
    mqtt_subtree_match(t, U("s"), 1, picks_cb, NULL, &p);
    assert_int_equal(p.n, 1);
    assert_true(p.shared[0]);

    assert_int_equal(del(t, "$share/g/s/+", 2), WEIR_OK);
    assert_int_equal(del(t, "$share/h/s/#", 2), WEIR_OK);
    assert_int_equal(del(t, "$share/h/s/#", 4), WEIR_OK);
    assert_int_equal(del(t, "s/1", 2), WEIR_OK);
    assert_int_equal(mqtt_subtree_count(t), 0);
    assert_int_equal(mqtt_subtree_memory(t), base);
    mqtt_subtree_free(t);
    (void)state;
}

/* ---- Pruning and large nodes --------------------------------------------- */

static void shuffle(size_t *v, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = rnd((uint32_t)i), x = v[i - 1];
        v[i - 1] = v[j];
        v[j] = x;
    }
}

typedef struct hits {
    void *owner; /* the one to count */
    size_t n;
} hits;

static void hits_cb(const mqtt_sub *sub, bool shared, void *arg)
{
    hits *h = arg;
    (void)shared;
    h->n += sub->owner == h->owner;
}

static void test_prune(void **state)
{
    enum { N = 3000 };
    mqtt_subtree *t = mqtt_subtree_new();
    assert_non_null(t);
    size_t base = mqtt_subtree_memory(t);
    static char filters[N][48];
    static size_t order[N];
    for (size_t i = 0; i < N; i++) {
        switch (i % 6) {
        case 0:
            snprintf(filters[i], 48, "dev%zu/+/temp", i);
            break; /* wide root */
        case 1:
            snprintf(filters[i], 48, "site/%zu/#", i % 700);
            break; /* shared prefixes */
        case 2:
            snprintf(filters[i], 48, "bcast/all");
            break; /* one big node */
        case 3:
            snprintf(filters[i], 48, "$share/g%zu/jobs/+", i % 5);
            break;
        case 4:
            snprintf(filters[i], 48, "a/b/c/d/e/f/%zu", i);
            break; /* deep */
        default:
            snprintf(filters[i], 48, "#");
            break;
        }
        order[i] = i;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < N; i++)
            assert_int_equal(add(t, filters[i], i + 1, 0, 0, NULL), WEIR_OK);
        assert_int_equal(mqtt_subtree_count(t), N);
        size_t full = mqtt_subtree_memory(t);
        assert_true(full > base + N * sizeof(mqtt_sub));
        n_calls = 0;
        mqtt_subtree_match(t, U("bcast/all"), 9, count_cb, NULL, NULL);
        assert_int_equal(n_calls, N / 6 * 2); /* bcast/all and # */
        /* Pass 0 removes in insertion order, pass 1 at random. */
        if (pass)
            shuffle(order, N);
        static bool gone[N];
        memset(gone, 0, sizeof(gone));
        for (size_t k = 0; k < N; k++) {
            assert_int_equal(del(t, filters[order[k]], order[k] + 1), WEIR_OK);
            gone[order[k]] = true;
            if (k != N / 2)
                continue;
            /* Halfway: the root's big table has had hundreds of deletions
             * (and shrinks); every survivor must still be found. */
            for (size_t i = 0; i < N; i += 6) {
                char topic[48];
                snprintf(topic, sizeof(topic), "dev%zu/x/temp", i);
                hits h = {.owner = OWNER(i + 1)};
                mqtt_subtree_match(t, U(topic), strlen(topic), hits_cb, NULL, &h);
                assert_int_equal(h.n, gone[i] ? 0 : 1);
            }
        }
        assert_int_equal(mqtt_subtree_count(t), 0);
        assert_int_equal(mqtt_subtree_memory(t), base);
    }
    mqtt_subtree_free(t);
    (void)state;
}

/* Thousands of owners on one filter: the owner index must agree with a
 * plain model through adds, replaces and removes in any order. */
static void test_many_owners(void **state)
{
    enum { OWNERS = 2000, OPS = 40000 };
    mqtt_subtree *t = mqtt_subtree_new();
    assert_non_null(t);
    size_t base = mqtt_subtree_memory(t);
    static bool in[OWNERS + 1];
    static uint32_t id[OWNERS + 1];
    static uint32_t seen[OWNERS + 1];
    size_t count = 0;
    for (size_t op = 0; op < OPS; op++) {
        size_t o = 1 + rnd(OWNERS);
        /* Bias towards adding for the first half, removing after. */
        bool adding = rnd(100) < (op < OPS / 2 ? 70u : 30u);
        if (adding) {
            bool ex;
            uint32_t sid = (uint32_t)op + 1;
            assert_int_equal(add(t, "bcast/all", o, 0, sid, &ex), WEIR_OK);
            assert_int_equal(ex, in[o]);
            count += !in[o];
            in[o] = true;
            id[o] = sid;
        } else {
            assert_int_equal(del(t, "bcast/all", o), in[o] ? WEIR_OK : WEIR_ENOTFOUND);
            count -= in[o];
            in[o] = false;
        }
        assert_int_equal(mqtt_subtree_count(t), count);
        if (op % 4000 == 0 || op == OPS - 1) {
            collect *c = calloc(1, sizeof(*c));
            assert_non_null(c);
            memset(seen, 0, sizeof(seen));
            c->n = 0;
            mqtt_subtree_match(t, U("bcast/all"), 9, collect_cb, NULL, c);
            assert_int_equal(c->n, count);
            for (size_t i = 0; i < c->n; i++) {
                size_t w = OWNER_ID(c->v[i].sub.owner);
                assert_true(in[w]);
                assert_int_equal(seen[w]++, 0);
                assert_int_equal(c->v[i].sub.sub_id, id[w]);
            }
            free(c);
        }
    }
    for (size_t o = 1; o <= OWNERS; o++)
        if (in[o])
            assert_int_equal(del(t, "bcast/all", o), WEIR_OK);
    assert_int_equal(mqtt_subtree_memory(t), base);
    mqtt_subtree_free(t);
    (void)state;
}

/* A 65535-byte filter of slashes is 65536 levels; neither matching nor
 * freeing may recurse that deep. */
static void test_deep(void **state)
{
    mqtt_subtree *t = mqtt_subtree_new();
    assert_non_null(t);
    size_t base = mqtt_subtree_memory(t);
    size_t n = MQTT_TOPIC_MAX;
    uint8_t *slashes = malloc(n);
    uint8_t *pluses = malloc(n);
    uint8_t *topic = malloc(n);
    assert_non_null(slashes);
    assert_non_null(pluses);
    assert_non_null(topic);
    memset(slashes, '/', n);
    /* "+/+/.../+" and "a/a/.../a": 32768 levels each. */
    for (size_t i = 0; i < n; i++)
        pluses[i] = topic[i] = (i % 2) ? '/' : 0;
    for (size_t i = 0; i < n; i += 2) {
        pluses[i] = '+';
        topic[i] = 'a';
    }
    mqtt_sub s = {.owner = OWNER(1)};
    assert_int_equal(mqtt_subtree_add(t, slashes, n, &s, NULL), WEIR_OK);
    assert_int_equal(mqtt_subtree_add(t, pluses, n, &s, NULL), WEIR_OK);
    n_calls = 0;
    mqtt_subtree_match(t, slashes, n, count_cb, NULL, NULL);
    assert_int_equal(n_calls, 1);
    n_calls = 0;
    mqtt_subtree_match(t, topic, n, count_cb, NULL, NULL);
    assert_int_equal(n_calls, 1);
    assert_true(mqtt_topic_matches(pluses, n, topic, n));
    assert_int_equal(mqtt_subtree_remove(t, pluses, n, OWNER(1)), WEIR_OK);
    assert_int_equal(mqtt_subtree_remove(t, slashes, n, OWNER(1)), WEIR_OK);
    assert_int_equal(mqtt_subtree_memory(t), base);
    /* And freeing a deep tree without removing first. */
    assert_int_equal(mqtt_subtree_add(t, slashes, n, &s, NULL), WEIR_OK);
    assert_int_equal(mqtt_subtree_add(t, pluses, n, &s, NULL), WEIR_OK);
    mqtt_subtree_free(t);
    free(slashes);
    free(pluses);
    free(topic);
    (void)state;
}

/* ---- Randomized: the tree against the one-filter matcher ------------------ */

static const char *const alphabet[] = {"a", "b", "c", "", "$s", "dd", "a b"};
#define N_ALPHA (sizeof(alphabet) / sizeof(alphabet[0]))

/* A random filter (wildcards allowed) or topic name of 1..5 levels, never
 * the empty string (one empty level), which is neither. */
static void random_topic(char *out, bool filter)
{
    size_t levels = 1 + rnd(5), len = 0;
    out[0] = 0;
    if (levels == 1 && rnd(2))
        levels = 2; /* more than one level more often, for '#' and '+' */
    for (size_t l = 0; l < levels; l++) {
        const char *lv = alphabet[rnd(N_ALPHA)];
        if (filter) {
            uint32_t r = rnd(100);
            if (r < 20)
                lv = "+";
            else if (r < 30 && l == levels - 1)
                lv = "#";
        }
        len += (size_t)sprintf(out + len, "%s%s", l ? "/" : "", lv);
    }
    if (len == 0)
        random_topic(out, filter);
}

typedef struct rentry {
    char filter[64]; /* inner filter */
    char group[16];  /* "" when not shared */
    char full[96];   /* as subscribed */
    bool live;
} rentry;

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Two shared entries are in the same group iff they have the same group
 * name and inner filter, that is the same "$share/g/f" text. */
static const char *group_key(const rentry *e)
{
    return e->full;
}

static void compare_all(mqtt_subtree *t, const rentry *es, size_t n, size_t topics)
{
    collect *c = calloc(1, sizeof(*c));
    size_t *want = calloc(n, sizeof(*want)), *have = calloc(n, sizeof(*have));
    const char **wkeys = calloc(n, sizeof(*wkeys)), **hkeys = calloc(n, sizeof(*hkeys));
    assert_non_null(c);
    assert_true(want && have && wkeys && hkeys);
    char topic[64];
    size_t total = 0, total_shared = 0;
    for (size_t k = 0; k < topics; k++) {
        random_topic(topic, false);
        size_t tn = strlen(topic), nw = 0, nwk = 0;
        for (size_t i = 0; i < n; i++) {
            if (!es[i].live ||
                !mqtt_topic_matches(U(es[i].filter), strlen(es[i].filter), U(topic), tn))
                continue;
            if (es[i].group[0])
                wkeys[nwk++] = group_key(&es[i]);
            else
                want[nw++] = i + 1;
        }
        qsort(want, nw, sizeof(*want), cmp_size);
        qsort(wkeys, nwk, sizeof(*wkeys), cmp_key);
        size_t u = 0; /* distinct groups */
        for (size_t i = 0; i < nwk; i++)
            if (!u || strcmp(wkeys[u - 1], wkeys[i]))
                wkeys[u++] = wkeys[i];
        nwk = u;

        c->n = 0;
        mqtt_subtree_match(t, U(topic), tn, collect_cb, NULL, c);
        size_t nh = 0, nhk = 0;
        for (size_t i = 0; i < c->n; i++) {
            size_t o = OWNER_ID(c->v[i].sub.owner);
            assert_true(o >= 1 && o <= n && es[o - 1].live);
            assert_int_equal(c->v[i].sub.sub_id, o); /* the right entry's data */
            if (c->v[i].shared) {
                assert_true(es[o - 1].group[0]);
                hkeys[nhk++] = group_key(&es[o - 1]);
            } else {
                assert_false(es[o - 1].group[0]);
                have[nh++] = o;
            }
        }
        qsort(have, nh, sizeof(*have), cmp_size);
        qsort(hkeys, nhk, sizeof(*hkeys), cmp_key);
        if (nh != nw || memcmp(have, want, nw * sizeof(*want)))
            fail_msg("topic \"%s\": %zu plain deliveries, brute force says %zu", topic, nh, nw);
        /* Exactly one delivery per matching group. */
        assert_int_equal(nhk, nwk);
        for (size_t i = 0; i < nwk; i++)
            assert_string_equal(hkeys[i], wkeys[i]);
        total += nh;
        total_shared += nhk;
    }
    /* The comparison would be vacuous otherwise. */
    assert_true(total > topics);
    assert_true(total_shared > topics / 10);
    if (getenv("WEIR_TEST_VERBOSE"))
        printf("%zu topics: %zu plain, %zu shared deliveries\n", topics, total, total_shared);
    free(c);
    free(want);
    free(have);
    free(wkeys);
    free(hkeys);
}

static void test_random_vs_bruteforce(void **state)
{
    enum { N = 4000, TOPICS = 3000 };
    rentry *es = calloc(N, sizeof(*es));
    assert_non_null(es);
    mqtt_subtree *t = mqtt_subtree_new();
    assert_non_null(t);
    size_t base = mqtt_subtree_memory(t);
    for (size_t i = 0; i < N; i++) {
        rentry *e = &es[i];
        random_topic(e->filter, true);
        if (rnd(10) == 0) {
            snprintf(e->group, sizeof(e->group), "g%u", rnd(3));
            snprintf(e->full, sizeof(e->full), "$share/%s/%s", e->group, e->filter);
        } else {
            snprintf(e->full, sizeof(e->full), "%s", e->filter);
        }
        mqtt_sub s = {.owner = OWNER(i + 1), .sub_id = (uint32_t)(i + 1)};
        bool ex;
        assert_int_equal(mqtt_subtree_add(t, U(e->full), strlen(e->full), &s, &ex), WEIR_OK);
        assert_false(ex);
        e->live = true;
    }
    assert_int_equal(mqtt_subtree_count(t), N);
    compare_all(t, es, N, TOPICS);

    /* Remove a random half and compare again. */
    size_t live = N;
    for (size_t i = 0; i < N; i++) {
        if (rnd(2))
            continue;
        assert_int_equal(mqtt_subtree_remove(t, U(es[i].full), strlen(es[i].full), OWNER(i + 1)),
                         WEIR_OK);
        es[i].live = false;
        live--;
    }
    assert_int_equal(mqtt_subtree_count(t), live);
    compare_all(t, es, N, TOPICS);

    for (size_t i = 0; i < N; i++)
        if (es[i].live)
            assert_int_equal(
                mqtt_subtree_remove(t, U(es[i].full), strlen(es[i].full), OWNER(i + 1)), WEIR_OK);
    assert_int_equal(mqtt_subtree_count(t), 0);
    assert_int_equal(mqtt_subtree_memory(t), base);
    mqtt_subtree_free(t);
    free(es);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_valid),           cmocka_unit_test(test_filter_valid),
        cmocka_unit_test(test_share_split),          cmocka_unit_test(test_matches_spec),
        cmocka_unit_test(test_add_replace_remove),   cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_shared_round_robin),   cmocka_unit_test(test_prune),
        cmocka_unit_test(test_many_owners),          cmocka_unit_test(test_deep),
        cmocka_unit_test(test_random_vs_bruteforce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
