/* auth.h -- the one authorisation function every door asks.
 *
 * Each MQTT CONNECT, PUBLISH and SUBSCRIBE (and later each HTTP request)
 * becomes an auth_request and goes through auth_check. For now the policy is
 * small: anonymous clients are allowed from loopback (and from anywhere when
 * `allow_anonymous` is on), and a configured list of topic filters is denied
 * to everyone for both publish and subscribe. Users, roles and ACLs will fill
 * the same function without changing its callers.
 *
 * A subscription is denied when every topic it could match lies inside a
 * denied filter ("secret/+" inside "secret/#"); a broader subscription ("#")
 * is allowed because publishes into the denied space are themselves refused,
 * so nothing denied can reach it.
 */
#ifndef WEIR_AUTH_H
#define WEIR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum auth_action {
    AUTH_CONNECT = 0,
    AUTH_PUBLISH = 1,
    AUTH_SUBSCRIBE = 2,
} auth_action;

typedef struct auth_request {
    auth_action action;
    const char *client_id;   /* MQTT client identifier, NUL-terminated */
    const char *username;    /* NULL when anonymous */
    const uint8_t *password; /* NULL when absent; never logged */
    size_t password_len;
    bool loopback;           /* the peer address is a loopback address */
    const uint8_t *topic;    /* PUBLISH topic name or SUBSCRIBE filter */
    size_t topic_len;
} auth_request;

typedef struct auth auth; /* opaque policy */

/* Builds the policy. deny_csv is a comma-separated list of topic filters
 * (may be NULL or empty). Returns NULL on OOM or when a filter is invalid
 * (the reason goes to the log). */
auth *auth_new(const char *deny_csv, bool allow_anonymous);
void auth_free(auth *a);

/* WEIR_OK when allowed; WEIR_EDENIED (not authorised) or WEIR_EAUTH (bad
 * credentials) when not. Cheap enough for every PUBLISH: with an empty deny
 * list it is one branch. */
int auth_check(const auth *a, const auth_request *req);

/* Number of deny filters configured. */
size_t auth_deny_count(const auth *a);

#endif
