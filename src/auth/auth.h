/* auth.h -- who is asking (authentication) and may they (authorisation):
 * the one module every door asks.
 *
 * Identities. Users and devices live in the catalog (schema v4, see
 * catalog/users.c): a role, an argon2id password hash, API tokens (a public
 * id and a hashed secret, with an expiry, revocable), and grants. auth keeps
 * an in-memory snapshot of them, rebuilt by auth_reload whenever the catalog
 * changed (the node polls SQLite's data_version, so `weir user` run next to
 * a live node takes effect within a tick). Nothing on a hot path touches the
 * catalog.
 *
 * Authentication: auth_authenticate turns what a transport saw into an
 * auth_identity:
 *   - a verified client certificate (cert_identity = its CN, set only by a
 *     TLS transport after verification): the user of that name;
 *   - a password that is an API token ("wt_<id>.<secret>"), with any or no
 *     user name: the token's user (BLAKE2b of the secret, constant-time
 *     compare; fast, answered at once);
 *   - a user name and password: argon2id (libsodium crypto_pwhash_str_verify,
 *     ~50-100 ms and 64 MiB) runs on libuv's thread pool and the answer comes
 *     later through the callback, on the loop, so the event loop never waits
 *     for it. Successful verifications are remembered for a while under a
 *     keyed hash of (user, password) with a per-process random key, so a
 *     reconnecting fleet costs one hash each, not one argon2id each; any
 *     change to users forgets them all;
 *   - nothing: anonymous, only when auth.anonymous is on AND the peer is on
 *     loopback (the demo / test profile, announced in the log at start-up).
 * Failures count per user name and per peer address; after
 * AUTH_BACKOFF_AFTER failures in a row either key is refused (WEIR_EBUSY)
 * for a delay that doubles with each further failure, up to
 * AUTH_BACKOFF_MAX_S, whatever the credentials; a success clears both.
 *
 * Authorisation: auth_check(a, id, action, resource, len) is the one
 * question every door asks: the MQTT broker for CONNECT, PUBLISH (topic)
 * and SUBSCRIBE (filter), the HTTP server for each route (the route table
 * names the action, see node.c), handlers for finer resources (a stream).
 * An identity carries its grants compiled at authentication time, with %u
 * and %c (client id) already substituted, so a check is a switch on the role
 * and, only for restricted roles, a walk over a few filters: no lookup, no
 * allocation, no lock. The roles and what they may do are the table in
 * docs/security.md; the configured deny list (mqtt.deny) applies to
 * everyone, admins included.
 *
 * Sessions (HTTP logins) are kept in memory only (a restart logs everyone
 * out): a random id (the cookie) and a random CSRF token per session, with
 * idle and absolute expiry, bounded in number (the oldest goes first).
 *
 * Threads: everything here runs on the loop thread, except the argon2id
 * work, which touches only copies.
 */
#ifndef WEIR_AUTH_H
#define WEIR_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct uv_loop_s uv_loop_t;
typedef struct catalog catalog;
typedef struct audit audit;

#define AUTH_BACKOFF_AFTER  5     /* failures in a row before refusals start */
#define AUTH_BACKOFF_MAX_S  300   /* longest refusal */
#define AUTH_NAME_MAX       64    /* user names: 1..64 bytes */
#define AUTH_SESSION_IDLE_S 1800  /* HTTP session idle timeout */
#define AUTH_SESSION_MAX_S  43200 /* HTTP session absolute lifetime */

typedef enum auth_role {
    AUTH_ROLE_NONE = 0,
    AUTH_ROLE_ADMIN,
    AUTH_ROLE_MANAGER,
    AUTH_ROLE_OPERATOR,
    AUTH_ROLE_VIEWER,
    AUTH_ROLE_SUPPLIER,
    AUTH_ROLE_DEVICE,
    AUTH_ROLE_ANONYMOUS, /* auth.anonymous on loopback: everything but mqtt.deny */
} auth_role;

/* What is asked. AUTH_ADMIN is 0 on purpose: an HTTP route added to the
 * table without a permission is admin-only, never open. */
typedef enum auth_action {
    AUTH_ADMIN = 0,     /* users, grants, tokens of others, the audit trail */
    AUTH_PUBLIC,        /* no identity needed: health, login */
    AUTH_ANY,           /* any identity: who am I, logout, own tokens, stream list */
    AUTH_METRICS,       /* /metrics: every role but device */
    AUTH_CONNECT,       /* MQTT CONNECT (after authentication) */
    AUTH_PUBLISH,       /* resource: topic name */
    AUTH_SUBSCRIBE,     /* resource: topic filter ($share/g/ prefix allowed) */
    AUTH_STREAM_READ,   /* resource: stream name (read records, series, query) */
    AUTH_STREAM_WRITE,  /* resource: stream name (append records, upload) */
    AUTH_STREAM_MANAGE, /* create and delete streams */
    AUTH_QUERY,         /* history SQL; resource: a stream it reads, NULL = any */
    AUTH_RULE_READ,
    AUTH_RULE_CONTROL, /* start and stop rules */
    AUTH_RULE_MANAGE,  /* create, change and delete rules */
    AUTH_ACTION__COUNT
} auth_action;

typedef enum auth_method {
    AUTH_BY_ANONYMOUS = 0,
    AUTH_BY_PASSWORD,
    AUTH_BY_TOKEN,
    AUTH_BY_CERT,
    AUTH_BY_SESSION,
} auth_method;

typedef enum auth_door { AUTH_DOOR_MQTT = 0, AUTH_DOOR_HTTP = 1 } auth_door;

typedef struct auth auth;                   /* the policy and the user snapshot */
typedef struct auth_identity auth_identity; /* who; reference counted */

/* Counters (loop thread), exported by the node's metrics. */
typedef struct auth_stats {
    uint64_t logins_ok[2];       /* by door */
    uint64_t logins_failed[2];   /* bad credentials, by door */
    uint64_t backoff_refused[2]; /* refused without checking: back-off */
    uint64_t anonymous_refused[2];
    uint64_t verify_busy;                /* too many argon2id verifications pending */
    uint64_t cache_hits;                 /* passwords answered from the verification cache */
    uint64_t denied[AUTH_ACTION__COUNT]; /* auth_check refusals by action */
} auth_stats;

/* ---- The policy --------------------------------------------------------- */

/* Builds the policy. deny_csv: comma-separated topic filters nobody may
 * publish or subscribe to (may be NULL). anonymous: whether clients without
 * credentials are let in from loopback (never from elsewhere). Returns NULL
 * on OOM, when a filter is invalid or when libsodium fails to initialise
 * (the reason goes to the log). Starts with no users: see auth_reload. */
auth *auth_new(const char *deny_csv, bool anonymous);
void auth_free(auth *a);

/* With a loop, password verification runs on its thread pool and answers
 * later; without one (unit tests, fuzzing, the CLI) it answers at once. */
void auth_set_loop(auth *a, uv_loop_t *loop);
/* Where logins and failed logins are recorded (may be NULL). */
void auth_set_audit(auth *a, audit *au);
/* Default topic grants of the device role ("devices/%u/#" and
 * "devices/%u/cmd/#" unless set); copied. WEIR_ETOPIC when invalid. */
int auth_set_device_topics(auth *a, const char *publish, const char *subscribe);

/* Rebuilds the user snapshot from the catalog. Identities handed out
 * earlier keep what they were given; see auth_identity_current. */
int auth_reload(auth *a, catalog *cat);
/* Bumped by every auth_reload. */
uint64_t auth_generation(const auth *a);
size_t auth_deny_count(const auth *a);
bool auth_anonymous(const auth *a);
const auth_stats *auth_get_stats(const auth *a);

/* ---- Authentication ----------------------------------------------------- */

typedef struct auth_credentials {
    auth_door door;
    const char *username;    /* NULL when absent */
    const uint8_t *password; /* NULL when absent; never logged */
    size_t password_len;
    const char *client_id;     /* MQTT client identifier (for %c), or NULL */
    const char *peer;          /* "ip:port" or "[v6]:port", for back-off and audit */
    bool loopback;             /* the peer is a loopback address */
    const char *cert_identity; /* CN of a client certificate the TLS transport
                                  verified, or NULL: that user, no password */
} auth_credentials;

/* Called once on the loop with status WEIR_OK and a new identity (the
 * callee owns the reference), or an error and NULL. */
typedef void (*auth_done_fn)(void *arg, int status, auth_identity *id);

/* WEIR_OK with *out set (owned by the caller) when decided at once;
 * WEIR_EAGAIN when done(arg, ...) will be called later (argon2id on the
 * thread pool; arg must stay valid until then); otherwise an error and no
 * call: WEIR_EAUTH (bad user name, password or token), WEIR_EDENIED (no
 * credentials and anonymous access is off, or the account is disabled),
 * WEIR_EBUSY (back-off in force, or too many verifications pending),
 * WEIR_ENOMEM. Every outcome is counted and audited. */
int auth_authenticate(auth *a, const auth_credentials *cr, auth_identity **out, auth_done_fn done,
                      void *arg);

/* An HTTP Bearer token: like a token in auth_authenticate but without an
 * audit entry per request on success (failures are counted, backed off and
 * audited). WEIR_OK with *out, WEIR_EAUTH, WEIR_EDENIED, WEIR_EBUSY. */
int auth_token_identity(auth *a, const char *token, size_t n, const char *peer,
                        auth_identity **out);

/* ---- Identities --------------------------------------------------------- */

auth_identity *auth_identity_ref(auth_identity *id);
void auth_identity_unref(auth_identity *id);
const char *auth_identity_name(const auth_identity *id); /* "" when anonymous */
auth_role auth_identity_role(const auth_identity *id);
auth_method auth_identity_method(const auth_identity *id);
/* False when the account behind the identity was deleted, disabled, changed
 * role, or (token identities) the token expired or was revoked since it was
 * made: long-lived connections are closed when this turns false. */
bool auth_identity_current(const auth *a, const auth_identity *id);
/* When only the grants changed since id was made (the account is still
 * valid for it): a new identity with the current grants, same method, for
 * client_id; NULL otherwise (then close what id opened). Lets a grant
 * change take effect on live connections and sessions without logging
 * anyone out. */
auth_identity *auth_identity_renew(auth *a, const auth_identity *id, const char *client_id);
/* An identity for a name in the current snapshot, without credentials (the
 * node itself acting for a user; tests). NULL when unknown or disabled. */
auth_identity *auth_identity_for(auth *a, const char *name, const char *client_id);

/* ---- Authorisation ------------------------------------------------------ */

/* WEIR_OK when allowed, WEIR_EDENIED when not (and counted). id NULL is
 * allowed only AUTH_PUBLIC. resource is as the action says (a topic, a
 * filter, a stream name), len its length in bytes; it may be NULL. */
int auth_check(auth *a, const auth_identity *id, auth_action act, const char *resource, size_t len);

/* ---- Names -------------------------------------------------------------- */

const char *auth_role_name(auth_role r);
/* AUTH_ROLE_NONE for an unknown name ("anonymous" is not a storable role). */
auth_role auth_role_parse(const char *s);
const char *auth_method_name(auth_method m);
const char *auth_action_name(auth_action act);
/* 1..64 bytes of [A-Za-z0-9_.@-]. */
bool auth_name_valid(const char *s);

/* ---- Passwords and tokens ----------------------------------------------- */

/* argon2id hash string of a password (crypto_pwhash_str, interactive
 * limits) into out (crypto_pwhash_STRBYTES = 128 bytes). Slow: not on the
 * loop. WEIR_ENOMEM when libsodium cannot allocate its memory. */
int auth_password_hash(const char *password, size_t len, char out[128]);
/* The same with explicit argon2id costs (tests and fuzzing only: a hash
 * made with crypto_pwhash_OPSLIMIT_MIN / MEMLIMIT_MIN verifies in
 * microseconds and protects nothing). */
int auth_password_hash_cost(const char *password, size_t len, char out[128], unsigned long long ops,
                            size_t mem);
/* Cost of the dummy hash run for unknown users (default: interactive).
 * Tests and fuzzing lower it together with their users' hashes. */
void auth_set_hash_cost(auth *a, unsigned long long ops, size_t mem);
bool auth_password_verify(const char *hash, const char *password, size_t len);

/* A new token: writes the whole token for the user to out (shown once,
 * AUTH_TOKEN_LEN + 1 bytes), its public id (17) and the hex hash of its
 * secret to store (65). */
#define AUTH_TOKEN_LEN 63
void auth_token_new(char token[AUTH_TOKEN_LEN + 1], char id[17], char secret_hash[65]);
/* Splits "wt_<16 hex id>.<43 base64url>" into id and the secret's hex hash.
 * WEIR_EMALFORMED when it is not a token. Pure: fuzzed. */
int auth_token_parse(const uint8_t *s, size_t n, char id[17], char secret_hash[65]);

/* ---- HTTP sessions ------------------------------------------------------ */

#define AUTH_SESSION_ID_LEN 43 /* base64url of 32 random bytes */
#define AUTH_CSRF_LEN       43

/* Starts a session for id (takes a reference). Writes the cookie value and
 * the CSRF token (NUL-terminated). */
int auth_session_new(auth *a, auth_identity *id, char cookie[AUTH_SESSION_ID_LEN + 1],
                     char csrf[AUTH_CSRF_LEN + 1]);
/* The session's identity (a new reference) and its CSRF token (copied into
 * csrf when not NULL), or NULL when unknown or expired. Touches the idle
 * timer. */
auth_identity *auth_session_get(auth *a, const char *cookie, char csrf[AUTH_CSRF_LEN + 1]);
void auth_session_end(auth *a, const char *cookie);
/* Ends every session of a user (password changed, deleted). */
void auth_session_end_user(auth *a, const char *name);

/* Finds "name=value" in a Cookie header and copies the value (NUL) into
 * out; false when absent or longer than outlen - 1. Pure: fuzzed. */
bool auth_cookie_get(const char *header, const char *name, char *out, size_t outlen);
/* Splits "Bearer <token>" (case-insensitive scheme, spaces); returns a
 * pointer to the token inside header and its length, or NULL. Pure. */
const char *auth_bearer(const char *header, size_t *len);

/* Constant-time comparison of two NUL-terminated secrets. */
bool auth_secret_equal(const char *a, const char *b);

#endif
