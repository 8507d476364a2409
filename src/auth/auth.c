/* auth.c -- see auth.h. */
#include "auth/auth.h"
#include "base/err.h"
#include "base/wlog.h"
#include "mqtt/topic.h"

#include <stdlib.h>
#include <string.h>

struct auth {
    char **deny;      /* owned filter strings */
    size_t n_deny;
    bool allow_anonymous;
};

auth *auth_new(const char *deny_csv, bool allow_anonymous)
{
    auth *a = calloc(1, sizeof(*a));
    char *copy = NULL;
    if (!a)
        return NULL;
    a->allow_anonymous = allow_anonymous;
    if (!deny_csv || !*deny_csv)
        return a;
    copy = strdup(deny_csv);
    if (!copy)
        goto fail;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (!n)
            continue;
        if (!mqtt_topic_filter_valid((const uint8_t *)tok, n)) {
            wlog_error("auth", "config", "error=\"invalid deny filter\" filter=\"%s\"", tok);
            goto fail;
        }
        char **grown = realloc(a->deny, (a->n_deny + 1) * sizeof(*grown));
        if (!grown)
            goto fail;
        a->deny = grown;
        if (!(a->deny[a->n_deny] = strdup(tok)))
            goto fail;
        a->n_deny++;
    }
    free(copy);
    return a;
fail:
    free(copy);
    auth_free(a);
    return NULL;
}

void auth_free(auth *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n_deny; i++)
        free(a->deny[i]);
    free(a->deny);
    free(a);
}

size_t auth_deny_count(const auth *a)
{
    return a->n_deny;
}

/* True when every topic matched by filter `f` is matched by `outer`: the
 * filter is walked level by level as if it were a topic whose '+' and '#'
 * must themselves be covered by a wildcard of `outer`. */
static bool filter_inside(const uint8_t *f, size_t fn, const char *outer)
{
    size_t on = strlen(outer);
    size_t i = 0, j = 0;
    for (;;) {
        size_t fe = i, oe = j;
        while (fe < fn && f[fe] != '/')
            fe++;
        while (oe < on && outer[oe] != '/')
            oe++;
        size_t fl = fe - i, ol = oe - j;
        bool f_end = fe >= fn, o_end = oe >= on;
        if (ol == 1 && outer[j] == '#')
            return true;
        if (ol == 1 && outer[j] == '+') {
            if (fl == 1 && f[i] == '#')
                return false;
        } else if (fl != ol || memcmp(f + i, outer + j, fl) != 0) {
            return false;
        }
        if (f_end && o_end)
            return true;
        if (f_end) /* "a" is inside "a/#" */
            return oe + 2 == on && outer[oe + 1] == '#';
        if (o_end)
            return false;
        i = fe + 1;
        j = oe + 1;
    }
}

int auth_check(const auth *a, const auth_request *req)
{
    switch (req->action) {
    case AUTH_CONNECT:
        if (req->loopback || a->allow_anonymous)
            return WEIR_OK;
        return WEIR_EDENIED;
    case AUTH_PUBLISH:
        for (size_t i = 0; i < a->n_deny; i++)
            if (mqtt_topic_matches((const uint8_t *)a->deny[i], strlen(a->deny[i]), req->topic,
                                   req->topic_len))
                return WEIR_EDENIED;
        return WEIR_OK;
    case AUTH_SUBSCRIBE: {
        const uint8_t *f = req->topic;
        size_t n = req->topic_len;
        mqtt_bytes group, inner;
        if (mqtt_topic_share_split(f, n, &group, &inner)) {
            f = inner.data;
            n = inner.len;
        }
        for (size_t i = 0; i < a->n_deny; i++)
            if (filter_inside(f, n, a->deny[i]))
                return WEIR_EDENIED;
        return WEIR_OK;
    }
    }
    return WEIR_EDENIED;
}
