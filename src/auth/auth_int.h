/* auth_int.h -- auth's internals shared by auth.c (policy, user snapshot,
 * identities, checks), authn.c (credentials, back-off, verification cache,
 * sessions) and tests. Nothing outside src/auth/ includes it. */
#ifndef WEIR_AUTH_INT_H
#define WEIR_AUTH_INT_H

#include "auth/auth.h"

#include <stdint.h>

#define AUTH_ACC_READ  1u
#define AUTH_ACC_WRITE 2u
enum { AUTH_RULE_STREAM = 1, AUTH_RULE_TOPIC = 2 };

#define AUTH_BACKOFF_SLOTS 1024 /* keys remembered; the stalest is reused */
#define AUTH_CACHE_SLOTS   256  /* verified (user, password) pairs remembered */
#define AUTH_CACHE_TTL_S   600
#define AUTH_MAX_PENDING   32 /* argon2id verifications in flight */
#define AUTH_MAX_SESSIONS  4096

/* A grant compiled for one identity: %u and %c already substituted. */
typedef struct auth_rule {
    uint8_t kind;   /* AUTH_RULE_* */
    uint8_t access; /* AUTH_ACC_* bits */
    uint16_t len;
    char *pattern; /* owned by the identity */
} auth_rule;

struct auth_identity {
    uint32_t refs;
    auth_role role;
    auth_method method;
    char name[AUTH_NAME_MAX + 1];
    char token_id[17];    /* AUTH_BY_TOKEN */
    long long expires_at; /* token expiry, unix s; 0 = never */
    char *hash;           /* password hash it was verified against (for currency) */
    uint64_t grants_fp;   /* fingerprint of the grants compiled in */
    size_t n_rules;
    auth_rule *rules;
};

typedef struct auth_user {
    char *name;
    auth_role role;
    bool device;
    bool disabled;
    char *hash;         /* NULL: no password login */
    uint64_t grants_fp; /* fingerprint of the grants that apply (role + own) */
} auth_user;

typedef struct auth_token_rec {
    char id[17];
    char hash[65];
    char *user;
    long long expires_at;
    bool revoked;
} auth_token_rec;

typedef struct auth_grant_rec {
    bool for_role; /* subject is a role name, else a user name */
    char *subject;
    uint8_t kind; /* AUTH_RULE_* */
    uint8_t access;
    char *pattern;
} auth_grant_rec;

typedef struct auth_db {
    auth_user *users; /* sorted by name */
    size_t n_users;
    auth_token_rec *tokens;
    size_t n_tokens;
    auth_grant_rec *grants;
    size_t n_grants;
} auth_db;

typedef struct auth_backoff {
    char key[96]; /* "u:<name>" or "a:<address>"; "" = free */
    uint32_t failures;
    int64_t until; /* monotonic ns before which attempts are refused */
    int64_t last;  /* monotonic ns of the last failure */
} auth_backoff;

typedef struct auth_cache_entry {
    uint8_t key[32]; /* keyed BLAKE2b of user \0 password */
    uint64_t generation;
    int64_t expires; /* monotonic ns */
    bool used;
} auth_cache_entry;

typedef struct auth_session {
    char id[AUTH_SESSION_ID_LEN + 1];
    char csrf[AUTH_CSRF_LEN + 1];
    auth_identity *who;
    int64_t created, touched; /* monotonic ns */
} auth_session;

struct auth {
    char **deny;
    size_t n_deny;
    bool anonymous;
    uv_loop_t *loop;
    audit *audit;
    char *device_pub, *device_sub;
    auth_db db;
    uint64_t generation;
    auth_stats stats;
    auth_backoff backoff[AUTH_BACKOFF_SLOTS];
    auth_cache_entry cache[AUTH_CACHE_SLOTS];
    uint8_t cache_key[32];
    unsigned pending;
    unsigned long long hash_ops; /* cost of the dummy hash for unknown users */
    size_t hash_mem;
    auth_session *sessions;
    size_t n_sessions;
};

/* auth.c */
const auth_user *auth__user_find(const auth *a, const char *name);
const auth_token_rec *auth__token_find(const auth *a, const char *id);
/* A new identity for user u (one reference), grants compiled. */
auth_identity *auth__identity_build(auth *a, const auth_user *u, auth_method m,
                                    const char *client_id);
auth_identity *auth__identity_anonymous(void);
void auth__db_free(auth_db *db);
bool auth__filter_inside(const uint8_t *f, size_t fn, const char *outer, size_t on);

/* authn.c */
void auth__sessions_free(auth *a);

#endif
