/* test_retain.c -- the retained-message store.
 *
 * Messages are small integers cast to pointers (the store never
 * dereferences them), so a test can tell which ones came back. The spec
 * matching table itself runs in test_topic.c through all three matchers;
 * here the store is checked against mqtt_topic_matches on random data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "mqtt/retain.h"
#include "mqtt/topic.h"

#define U(s)      ((const uint8_t *)(s))
#define MSG(i)    ((void *)(uintptr_t)(i))
#define MSG_ID(p) ((size_t)(uintptr_t)(p))

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32) % n;
}

static void *set(mqtt_retain *r, const char *topic, size_t msg, int *err)
{
    return mqtt_retain_set(r, U(topic), strlen(topic), msg ? MSG(msg) : NULL, err);
}

/* The ids of the messages a filter matches, sorted, into ids; returns how
 * many. */
typedef struct ids {
    size_t v[8192];
    size_t n;
} ids;

static void ids_cb(void *msg, void *arg)
{
    ids *s = arg;
    assert_true(s->n < sizeof(s->v) / sizeof(s->v[0]));
    s->v[s->n++] = MSG_ID(msg);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

static size_t match(mqtt_retain *r, const char *filter, ids *s)
{
    s->n = 0;
    mqtt_retain_match(r, U(filter), strlen(filter), ids_cb, s);
    qsort(s->v, s->n, sizeof(s->v[0]), cmp_size);
    return s->n;
}

static void test_set_replace_delete(void **state)
{
    mqtt_retain *r = mqtt_retain_new();
    assert_non_null(r);
    size_t base = mqtt_retain_memory(r);
    int err = -1;

    assert_null(set(r, "a/b", 1, &err));
    assert_int_equal(err, WEIR_OK);
    assert_int_equal(mqtt_retain_count(r), 1);
    assert_true(mqtt_retain_memory(r) > base);
    /* Replace returns the old message for the caller to release. */
    assert_ptr_equal(set(r, "a/b", 2, &err), MSG(1));
    assert_int_equal(err, WEIR_OK);
    assert_int_equal(mqtt_retain_count(r), 1);
    /* A prefix and an extension are different topics. */
    assert_null(set(r, "a", 3, NULL));
    assert_null(set(r, "a/b/c", 4, NULL));
    assert_null(set(r, "a/b/", 5, NULL));
    assert_int_equal(mqtt_retain_count(r), 4);

    ids *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    assert_int_equal(match(r, "a/b", s), 1);
    assert_int_equal(s->v[0], 2);

    /* Delete returns the message; deleting again or an unknown topic is a
     * quiet NULL. */
    assert_ptr_equal(set(r, "a/b", 0, &err), MSG(2));
    assert_int_equal(err, WEIR_OK);
    assert_null(set(r, "a/b", 0, &err));
    assert_int_equal(err, WEIR_OK);
    assert_null(set(r, "x/y", 0, &err));
    assert_null(set(r, "a/b/c/d", 0, &err));
    assert_int_equal(err, WEIR_OK);
    assert_int_equal(mqtt_retain_count(r), 3);
    assert_int_equal(match(r, "a/b", s), 0);
    assert_int_equal(match(r, "a/b/c", s), 1); /* the node below survived */

    /* Names with wildcards or empty are refused and change nothing. */
    assert_null(set(r, "a/+", 9, &err));
    assert_int_equal(err, WEIR_ETOPIC);
    assert_null(set(r, "#", 9, &err));
    assert_int_equal(err, WEIR_ETOPIC);
    assert_null(set(r, "", 9, &err));
    assert_int_equal(err, WEIR_ETOPIC);
    assert_int_equal(mqtt_retain_count(r), 3);

    assert_ptr_equal(set(r, "a", 0, NULL), MSG(3));
    assert_ptr_equal(set(r, "a/b/c", 0, NULL), MSG(4));
    assert_ptr_equal(set(r, "a/b/", 0, NULL), MSG(5));
    assert_int_equal(mqtt_retain_count(r), 0);
    assert_int_equal(mqtt_retain_memory(r), base);
    assert_int_equal(match(r, "#", s), 0);
    free(s);
    mqtt_retain_free(r, NULL, NULL);
    mqtt_retain_free(NULL, NULL, NULL);
    (void)state;
}

static void test_match_wildcards(void **state)
{
    static const char *topics[] = {
        "sport",                        /* 1 */
        "sport/tennis",                 /* 2 */
        "sport/tennis/player1",         /* 3 */
        "sport/tennis/player1/ranking", /* 4 */
        "sport/tennis/player2",         /* 5 */
        "sport/",                       /* 6 */
        "/finance",                     /* 7 */
        "$SYS/monitor/Clients",         /* 8 */
        "$SYS",                         /* 9 */
        "x/monitor/Clients",            /* 10 */
        "/",                            /* 11 */
        "a/$b",                         /* 12 */
    };
    typedef struct {
        const char *filter;
        size_t want[12];
    } fcase;
    static const fcase cases[] = {
        {"#", {1, 2, 3, 4, 5, 6, 7, 10, 11, 12}},
        {"sport/#", {1, 2, 3, 4, 5, 6}},
        {"sport/tennis/player1/#", {3, 4}},
        {"sport/tennis/+", {3, 5}},
        {"sport/+", {2, 6}},
        {"+", {1}}, /* not $SYS */
        {"+/+", {2, 6, 7, 11, 12}},
        {"/+", {7, 11}},
        {"+/monitor/Clients", {10}},
        {"$SYS/#", {8, 9}},
        {"$SYS/monitor/+", {8}},
        {"+/#", {1, 2, 3, 4, 5, 6, 7, 10, 11, 12}},
        {"/#", {7, 11}},
        {"a/+", {12}},
        {"sport/tennis/player1", {3}},
        {"sport/tennis/player3", {0}},
        {"nope/#", {0}},
        {"+/+/+/+", {4}},
        {"+/+/+/+/+", {0}},
    };
    mqtt_retain *r = mqtt_retain_new();
    assert_non_null(r);
    for (size_t i = 0; i < 12; i++)
        assert_null(set(r, topics[i], i + 1, NULL));
    ids *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        size_t nw = 0;
        while (nw < 12 && cases[k].want[nw])
            nw++;
        match(r, cases[k].filter, s);
        if (s->n != nw || memcmp(s->v, cases[k].want, nw * sizeof(size_t)))
            fail_msg("filter \"%s\": %zu messages, want %zu", cases[k].filter, s->n, nw);
    }
    free(s);
    mqtt_retain_free(r, NULL, NULL);
    (void)state;
}

/* ---- foreach and free ---------------------------------------------------- */

typedef struct seen {
    char topic[16][32];
    size_t msg[16];
    size_t n;
} seen;

static void seen_cb(const uint8_t *topic, size_t n, void *msg, void *arg)
{
    seen *s = arg;
    assert_true(s->n < 16 && n < 32);
    memcpy(s->topic[s->n], topic, n);
    s->topic[s->n][n] = 0;
    s->msg[s->n++] = MSG_ID(msg);
}

static void test_foreach(void **state)
{
    static const char *topics[] = {"a", "a/b", "/", "a//b", "a/", "$SYS/x", "//", "b/c/d/e"};
    enum { N = sizeof(topics) / sizeof(topics[0]) };
    mqtt_retain *r = mqtt_retain_new();
    assert_non_null(r);
    for (size_t i = 0; i < N; i++)
        assert_null(set(r, topics[i], i + 1, NULL));
    seen s = {0};
    mqtt_retain_foreach(r, seen_cb, &s);
    assert_int_equal(s.n, N);
    bool found[N] = {0};
    for (size_t k = 0; k < s.n; k++) {
        size_t i = s.msg[k] - 1;
        assert_true(i < N);
        assert_false(found[i]);
        found[i] = true;
        assert_string_equal(s.topic[k], topics[i]);
    }
    /* Delete some, foreach again. */
    assert_ptr_equal(set(r, "a", 0, NULL), MSG(1));
    assert_ptr_equal(set(r, "//", 0, NULL), MSG(7));
    s.n = 0;
    mqtt_retain_foreach(r, seen_cb, &s);
    assert_int_equal(s.n, N - 2);
    mqtt_retain_free(r, NULL, NULL);
    (void)state;
}

static void release_cb(void *msg, void *arg)
{
    size_t *released = arg;
    released[MSG_ID(msg)]++;
}

static void test_free_releases(void **state)
{
    enum { N = 500 };
    mqtt_retain *r = mqtt_retain_new();
    assert_non_null(r);
    char t[32];
    for (size_t i = 1; i <= N; i++) {
        snprintf(t, sizeof(t), "f/%zu/%zu", i % 7, i);
        assert_null(set(r, t, i, NULL));
    }
    static size_t released[N + 1];
    mqtt_retain_free(r, release_cb, released);
    for (size_t i = 1; i <= N; i++)
        assert_int_equal(released[i], 1);
    (void)state;
}

/* 65536 levels: match, foreach and free must not recurse, and foreach
 * rebuilds the topic byte for byte. */
typedef struct deep_seen {
    const uint8_t *want; /* the deep topic */
    size_t deep;         /* times it was reported intact */
    size_t x;            /* times "x" was reported */
} deep_seen;

static void deep_cb(const uint8_t *topic, size_t n, void *msg, void *arg)
{
    deep_seen *d = arg;
    if (MSG_ID(msg) == 1) {
        assert_int_equal(n, MQTT_TOPIC_MAX);
        assert_memory_equal(topic, d->want, n);
        d->deep++;
    } else {
        assert_int_equal(n, 1);
        assert_memory_equal(topic, "x", 1);
        d->x++;
    }
}

static void test_deep(void **state)
{
    mqtt_retain *r = mqtt_retain_new();
    assert_non_null(r);
    size_t base = mqtt_retain_memory(r);
    size_t n = MQTT_TOPIC_MAX;
    uint8_t *slashes = malloc(n);
    ids *s = calloc(1, sizeof(*s));
    assert_non_null(slashes);
    assert_non_null(s);
    memset(slashes, '/', n);
    assert_null(mqtt_retain_set(r, slashes, n, MSG(1), NULL));
    assert_null(set(r, "x", 2, NULL));
    assert_int_equal(match(r, "#", s), 2);
    assert_int_equal(match(r, "/#", s), 1);
    assert_int_equal(match(r, "+/#", s), 2);
    assert_int_equal(match(r, "+", s), 1);
    s->n = 0;
    mqtt_retain_match(r, slashes, n, ids_cb, s);
    assert_int_equal(s->n, 1);
    assert_int_equal(s->v[0], 1);

    deep_seen d = {.want = slashes};
    mqtt_retain_foreach(r, deep_cb, &d);
    assert_int_equal(d.deep, 1);
    assert_int_equal(d.x, 1);

    assert_ptr_equal(mqtt_retain_set(r, slashes, n, NULL, NULL), MSG(1));
    assert_ptr_equal(set(r, "x", 0, NULL), MSG(2));
    assert_int_equal(mqtt_retain_memory(r), base);
    /* Freeing a deep store without deleting first. */
    assert_null(mqtt_retain_set(r, slashes, n, MSG(1), NULL));
    mqtt_retain_free(r, NULL, NULL);
    free(s);
    free(slashes);
    (void)state;
}

/* ---- Randomized: the store against the one-filter matcher ---------------- */

static const char *const alphabet[] = {"a", "b", "c", "", "$s", "dd"};
#define N_ALPHA (sizeof(alphabet) / sizeof(alphabet[0]))

static void random_topic(char *out, bool filter)
{
    size_t levels = 1 + rnd(5), len = 0;
    if (levels == 1 && rnd(2))
        levels = 2;
    out[0] = 0;
    for (size_t l = 0; l < levels; l++) {
        const char *lv = alphabet[rnd(N_ALPHA)];
        if (filter) {
            uint32_t x = rnd(100);
            if (x < 25)
                lv = "+";
            else if (x < 40 && l == levels - 1)
                lv = "#";
        }
        len += (size_t)sprintf(out + len, "%s%s", l ? "/" : "", lv);
    }
    if (len == 0)
        random_topic(out, filter);
}

static void compare_all(mqtt_retain *r, char (*topics)[32], const size_t *msg, size_t n,
                        size_t filters)
{
    ids *have = calloc(1, sizeof(*have));
    size_t *want = calloc(n, sizeof(*want));
    assert_non_null(have);
    assert_non_null(want);
    char f[32];
    size_t total = 0;
    for (size_t k = 0; k < filters; k++) {
        random_topic(f, true);
        size_t fn = strlen(f), nw = 0;
        for (size_t i = 0; i < n; i++)
            if (msg[i] && mqtt_topic_matches(U(f), fn, U(topics[i]), strlen(topics[i])))
                want[nw++] = msg[i];
        qsort(want, nw, sizeof(*want), cmp_size);
        match(r, f, have);
        if (have->n != nw || memcmp(have->v, want, nw * sizeof(*want)))
            fail_msg("filter \"%s\": %zu messages, brute force says %zu", f, have->n, nw);
        total += nw;
    }
    assert_true(total > filters); /* not vacuous */
    free(have);
    free(want);
}

static void test_random_vs_bruteforce(void **state)
{
    enum { N = 3000, FILTERS = 3000 };
    /* Distinct topics, so each has one message id. */
    static char topics[N][32];
    static size_t msg[N];
    mqtt_retain *r = mqtt_retain_new();
    assert_non_null(r);
    size_t base = mqtt_retain_memory(r);
    size_t n = 0;
    while (n < N) {
        random_topic(topics[n], false);
        bool dup = false;
        for (size_t i = 0; i < n && !dup; i++)
            dup = strcmp(topics[i], topics[n]) == 0;
        if (dup) /* about 9300 possible topics: this ends quickly */
            continue;
        msg[n] = n + 1;
        assert_null(set(r, topics[n], msg[n], NULL));
        n++;
    }
    assert_int_equal(mqtt_retain_count(r), n);
    compare_all(r, topics, msg, n, FILTERS);

    /* Replace a third, delete a third, compare again. */
    size_t live = n;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = rnd(3);
        if (x == 0) {
            assert_ptr_equal(set(r, topics[i], msg[i] + N, NULL), MSG(msg[i]));
            msg[i] += N;
        } else if (x == 1) {
            assert_ptr_equal(set(r, topics[i], 0, NULL), MSG(msg[i]));
            msg[i] = 0;
            live--;
        }
    }
    assert_int_equal(mqtt_retain_count(r), live);
    compare_all(r, topics, msg, n, FILTERS);

    for (size_t i = 0; i < n; i++)
        if (msg[i])
            assert_ptr_equal(set(r, topics[i], 0, NULL), MSG(msg[i]));
    assert_int_equal(mqtt_retain_count(r), 0);
    assert_int_equal(mqtt_retain_memory(r), base);
    mqtt_retain_free(r, NULL, NULL);
    (void)state;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_replace_delete),
        cmocka_unit_test(test_match_wildcards),
        cmocka_unit_test(test_foreach),
        cmocka_unit_test(test_free_releases),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_random_vs_bruteforce),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
