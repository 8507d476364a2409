/* authn.c -- authentication: credentials to identities, back-off after
 * failures, the verification cache, API tokens and HTTP sessions (see
 * auth.h for the design). */
#include "auth/audit.h"
#include "auth/auth_int.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <uv.h>

static wlog_limit fail_limit;

/* ---- Passwords and tokens ----------------------------------------------- */

int auth_password_hash_cost(const char *password, size_t len, char out[128], unsigned long long ops,
                            size_t mem)
{
    if (crypto_pwhash_str(out, password, len, ops, mem) != 0)
        return WEIR_ENOMEM;
    return WEIR_OK;
}

int auth_password_hash(const char *password, size_t len, char out[128])
{
    return auth_password_hash_cost(password, len, out, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                   crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

bool auth_password_verify(const char *hash, const char *password, size_t len)
{
    return hash && crypto_pwhash_str_verify(hash, password, len) == 0;
}

bool auth_secret_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    return sodium_memcmp(a, b, n) == 0;
}

static void secret_hash_hex(const char *secret, size_t n, char out[65])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const uint8_t *)secret, n, NULL, 0);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

void auth_token_new(char token[AUTH_TOKEN_LEN + 1], char id[17], char secret_hash[65])
{
    uint8_t idb[8], sec[32];
    char secret[44];
    randombytes_buf(idb, sizeof(idb));
    randombytes_buf(sec, sizeof(sec));
    sodium_bin2hex(id, 17, idb, sizeof(idb));
    sodium_bin2base64(secret, sizeof(secret), sec, sizeof(sec),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    snprintf(token, AUTH_TOKEN_LEN + 1, "wt_%s.%s", id, secret);
    secret_hash_hex(secret, strlen(secret), secret_hash);
    sodium_memzero(sec, sizeof(sec));
    sodium_memzero(secret, sizeof(secret));
}

int auth_token_parse(const uint8_t *s, size_t n, char id[17], char secret_hash[65])
{
    if (n != AUTH_TOKEN_LEN || memcmp(s, "wt_", 3) != 0 || s[19] != '.')
        return WEIR_EMALFORMED;
    for (size_t i = 3; i < 19; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return WEIR_EMALFORMED;
    for (size_t i = 20; i < n; i++) {
        uint8_t ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return WEIR_EMALFORMED;
    }
    memcpy(id, s + 3, 16);
    id[16] = '\0';
    secret_hash_hex((const char *)s + 20, n - 20, secret_hash);
    return WEIR_OK;
}

/* ---- Header parsing (pure, fuzzed) -------------------------------------- */

bool auth_cookie_get(const char *header, const char *name, char *out, size_t outlen)
{
    size_t nn = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t seg = end ? (size_t)(end - p) : strlen(p);
        if (seg > nn && !memcmp(p, name, nn) && p[nn] == '=') {
            const char *v = p + nn + 1;
            size_t vn = seg - nn - 1;
            while (vn && (v[vn - 1] == ' ' || v[vn - 1] == '\t'))
                vn--;
            if (vn >= 2 && v[0] == '"' && v[vn - 1] == '"') {
                v++;
                vn -= 2;
            }
            if (vn + 1 > outlen)
                return false;
            memcpy(out, v, vn);
            out[vn] = '\0';
            return true;
        }
        p = end;
    }
    return false;
}

const char *auth_bearer(const char *header, size_t *len)
{
    if (!header)
        return NULL;
    while (*header == ' ')
        header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
        return NULL;
    const char *t = header + 6;
    while (*t == ' ' || *t == '\t')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (!n)
        return NULL;
    *len = n;
    return t;
}

/* ---- Back-off ----------------------------------------------------------- */

/* "a:<address>" without the port: "1.2.3.4:5" -> "1.2.3.4", "[::1]:5" ->
 * "::1". */
static void address_key(const char *peer, char *out, size_t n)
{
    if (!peer)
        peer = "?";
    const char *colon = strrchr(peer, ':');
    size_t len = colon ? (size_t)(colon - peer) : strlen(peer);
    if (peer[0] == '[' && len >= 2 && peer[len - 1] == ']') {
        peer++;
        len -= 2;
    }
    if (len > n - 3)
        len = n - 3;
    snprintf(out, n, "a:%.*s", (int)len, peer);
}

static auth_backoff *backoff_find(auth *a, const char *key, bool create)
{
    auth_backoff *stale = NULL;
    for (size_t i = 0; i < AUTH_BACKOFF_SLOTS; i++) {
        auth_backoff *b = &a->backoff[i];
        if (b->key[0] && !strcmp(b->key, key))
            return b;
        if (!stale || !b->key[0] || (stale->key[0] && b->last < stale->last))
            stale = b;
    }
    if (!create)
        return NULL;
    memset(stale, 0, sizeof(*stale));
    snprintf(stale->key, sizeof(stale->key), "%s", key);
    return stale;
}

static bool backoff_blocked(auth *a, const char *key)
{
    auth_backoff *b = backoff_find(a, key, false);
    return b && b->until > weir_mono_ns();
}

static void backoff_fail(auth *a, const char *key)
{
    auth_backoff *b = backoff_find(a, key, true);
    int64_t now = weir_mono_ns();
    b->failures++;
    b->last = now;
    if (b->failures >= AUTH_BACKOFF_AFTER) {
        uint32_t k = b->failures - AUTH_BACKOFF_AFTER;
        int64_t s = k >= 9 ? AUTH_BACKOFF_MAX_S : (int64_t)1 << k;
        if (s > AUTH_BACKOFF_MAX_S)
            s = AUTH_BACKOFF_MAX_S;
        b->until = now + s * WEIR_NS_PER_S;
    }
}

static void backoff_clear(auth *a, const char *key)
{
    auth_backoff *b = backoff_find(a, key, false);
    if (b)
        memset(b, 0, sizeof(*b));
}

/* ---- Verification cache ------------------------------------------------- */

static void cache_key(const auth *a, const char *user, const uint8_t *pw, size_t n, uint8_t out[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, a->cache_key, sizeof(a->cache_key), 32);
    crypto_generichash_update(&st, (const uint8_t *)user, strlen(user) + 1);
    crypto_generichash_update(&st, pw, n);
    crypto_generichash_final(&st, out, 32);
}

static bool cache_hit(auth *a, const uint8_t key[32])
{
    int64_t now = weir_mono_ns();
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
        auth_cache_entry *e = &a->cache[i];
        if (e->used && e->generation == a->generation && e->expires > now &&
            sodium_memcmp(e->key, key, 32) == 0)
            return true;
    }
    return false;
}

static void cache_put(auth *a, const uint8_t key[32])
{
    auth_cache_entry *victim = &a->cache[0];
    for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
        auth_cache_entry *e = &a->cache[i];
        if (!e->used || e->generation != a->generation) {
            victim = e;
            break;
        }
        if (e->expires < victim->expires)
            victim = e;
    }
    memcpy(victim->key, key, 32);
    victim->generation = a->generation;
    victim->expires = weir_mono_ns() + (int64_t)AUTH_CACHE_TTL_S * WEIR_NS_PER_S;
    victim->used = true;
}

/* ---- Outcomes ----------------------------------------------------------- */

static const char *door_name(auth_door d)
{
    return d == AUTH_DOOR_HTTP ? "http" : "mqtt";
}

static void outcome(auth *a, auth_door door, const char *user, const char *peer, int rc,
                    const char *how)
{
    char akey[96], ukey[96];
    address_key(peer, akey, sizeof(akey));
    snprintf(ukey, sizeof(ukey), "u:%s", user ? user : "");
    if (rc == WEIR_OK) {
        a->stats.logins_ok[door]++;
        backoff_clear(a, akey);
        if (user && *user)
            backoff_clear(a, ukey);
        audit_log(a->audit, user, peer, door_name(door), "login", user, true, how);
        return;
    }
    a->stats.logins_failed[door]++;
    backoff_fail(a, akey);
    if (user && *user)
        backoff_fail(a, ukey);
    wlog_limited(&fail_limit, WLOG_WARN, "auth", "login_failed",
                 "door=%s user=\"%s\" peer=%s method=%s error=%s", door_name(door),
                 user ? user : "", peer ? peer : "?", how, weir_err_name(rc));
    audit_log(a->audit, user, peer, door_name(door), "login.failed", user, false, how);
}

/* ---- Argon2id off the loop ---------------------------------------------- */

typedef struct verify_job {
    uv_work_t req;
    auth *a;
    auth_door door;
    char user[AUTH_NAME_MAX + 1];
    char peer[80];
    char *client_id;
    char *hash;        /* copy; NULL for an unknown user (a dummy hash runs) */
    uint8_t *password; /* copy, wiped */
    size_t password_len;
    uint8_t ckey[32];
    unsigned long long ops; /* dummy hash cost */
    size_t mem;
    bool ok;
    auth_done_fn done;
    void *arg;
} verify_job;

static void verify_work(uv_work_t *req)
{
    verify_job *j = req->data;
    if (j->hash) {
        j->ok = crypto_pwhash_str_verify(j->hash, (const char *)j->password, j->password_len) == 0;
    } else {
        /* Same cost for an unknown user, so timing does not tell names. */
        char dummy[crypto_pwhash_STRBYTES];
        if (crypto_pwhash_str(dummy, (const char *)j->password, j->password_len, j->ops, j->mem) !=
            0)
            dummy[0] = 0;
        j->ok = false;
    }
}

static void verify_free(verify_job *j)
{
    sodium_memzero(j->password, j->password_len);
    free(j->password);
    free(j->hash);
    free(j->client_id);
    free(j);
}

/* Back on the loop: the account may have changed meanwhile; the password is
 * accepted only against the hash that is still current. */
static int verify_finish(verify_job *j, auth_identity **out)
{
    auth *a = j->a;
    const auth_user *u = auth__user_find(a, j->user);
    int rc = WEIR_EAUTH;
    *out = NULL;
    if (j->ok && u && u->hash && j->hash && !strcmp(u->hash, j->hash)) {
        if (u->disabled) {
            rc = WEIR_EDENIED;
        } else {
            *out = auth__identity_build(a, u, AUTH_BY_PASSWORD, j->client_id);
            rc = *out ? WEIR_OK : WEIR_ENOMEM;
            if (!rc)
                cache_put(a, j->ckey);
        }
    }
    if (rc != WEIR_ENOMEM)
        outcome(a, j->door, j->user, j->peer, rc, "password");
    return rc;
}

static void verify_after(uv_work_t *req, int status)
{
    verify_job *j = req->data;
    j->a->pending--;
    auth_identity *id = NULL;
    int rc = status ? WEIR_EINTERNAL : verify_finish(j, &id);
    j->done(j->arg, rc, id);
    verify_free(j);
}

/* ---- auth_authenticate -------------------------------------------------- */

static int by_token(auth *a, const auth_credentials *cr, auth_identity **out)
{
    char id[17], h[65];
    if (auth_token_parse(cr->password, cr->password_len, id, h))
        return WEIR_EAUTH;
    const auth_token_rec *t = auth__token_find(a, id);
    if (!t || !auth_secret_equal(t->hash, h) || t->revoked ||
        (t->expires_at && t->expires_at <= (long long)time(NULL)))
        return WEIR_EAUTH;
    if (cr->username && *cr->username && strcmp(cr->username, t->user) != 0)
        return WEIR_EAUTH;
    const auth_user *u = auth__user_find(a, t->user);
    if (!u)
        return WEIR_EAUTH;
    if (u->disabled)
        return WEIR_EDENIED;
    if (!(*out = auth__identity_build(a, u, AUTH_BY_TOKEN, cr->client_id)))
        return WEIR_ENOMEM;
    memcpy((*out)->token_id, id, sizeof(id));
    (*out)->expires_at = t->expires_at;
    return WEIR_OK;
}

static bool looks_like_token(const auth_credentials *cr)
{
    return cr->password && cr->password_len == AUTH_TOKEN_LEN && !memcmp(cr->password, "wt_", 3);
}

int auth_authenticate(auth *a, const auth_credentials *cr, auth_identity **out, auth_done_fn done,
                      void *arg)
{
    *out = NULL;
    auth_door door = cr->door == AUTH_DOOR_HTTP ? AUTH_DOOR_HTTP : AUTH_DOOR_MQTT;
    const char *user = cr->username && *cr->username ? cr->username : NULL;

    /* A certificate the transport verified names the user; nothing else is
     * asked (the TLS configuration decides whom it trusts). */
    if (cr->cert_identity) {
        const auth_user *u = auth__user_find(a, cr->cert_identity);
        int rc = !u ? WEIR_EAUTH : u->disabled ? WEIR_EDENIED : WEIR_OK;
        if (!rc && !(*out = auth__identity_build(a, u, AUTH_BY_CERT, cr->client_id)))
            return WEIR_ENOMEM;
        outcome(a, door, cr->cert_identity, cr->peer, rc, "certificate");
        return rc;
    }
    if (!user && !cr->password) {
        if (a->anonymous && cr->loopback) {
            *out = auth__identity_anonymous();
            return *out ? WEIR_OK : WEIR_ENOMEM;
        }
        a->stats.anonymous_refused[door]++;
        wlog_limited(&fail_limit, WLOG_INFO, "auth", "anonymous_refused", "door=%s peer=%s",
                     door_name(door), cr->peer ? cr->peer : "?");
        return WEIR_EDENIED;
    }
    /* Tokens first: a 256-bit secret cannot be guessed, so back-off would
     * only lock a service with a valid token out of an address where
     * someone else mistyped a password (one NAT, one office). */
    if (looks_like_token(cr)) {
        int rc = by_token(a, cr, out);
        if (rc != WEIR_ENOMEM)
            outcome(a, door, *out ? (*out)->name : user, cr->peer, rc, "token");
        return rc;
    }
    char akey[96], ukey[96];
    address_key(cr->peer, akey, sizeof(akey));
    snprintf(ukey, sizeof(ukey), "u:%s", user ? user : "");
    if (backoff_blocked(a, akey) || (user && backoff_blocked(a, ukey))) {
        a->stats.backoff_refused[door]++;
        wlog_limited(&fail_limit, WLOG_WARN, "auth", "backoff", "door=%s user=\"%s\" peer=%s",
                     door_name(door), user ? user : "", cr->peer ? cr->peer : "?");
        return WEIR_EBUSY;
    }
    if (!user || !cr->password || !auth_name_valid(user)) {
        outcome(a, door, user, cr->peer, WEIR_EAUTH, "password");
        return WEIR_EAUTH;
    }
    const auth_user *u = auth__user_find(a, user);
    uint8_t ckey[32];
    cache_key(a, user, cr->password, cr->password_len, ckey);
    if (u && u->hash && !u->disabled && cache_hit(a, ckey)) {
        a->stats.cache_hits++;
        if (!(*out = auth__identity_build(a, u, AUTH_BY_PASSWORD, cr->client_id)))
            return WEIR_ENOMEM;
        outcome(a, door, user, cr->peer, WEIR_OK, "password");
        return WEIR_OK;
    }
    if (a->pending >= AUTH_MAX_PENDING) {
        a->stats.verify_busy++;
        return WEIR_EBUSY;
    }
    verify_job *j = calloc(1, sizeof(*j));
    if (!j)
        return WEIR_ENOMEM;
    j->a = a;
    j->door = door;
    snprintf(j->user, sizeof(j->user), "%s", user);
    snprintf(j->peer, sizeof(j->peer), "%s", cr->peer ? cr->peer : "?");
    memcpy(j->ckey, ckey, sizeof(ckey));
    j->ops = a->hash_ops;
    j->mem = a->hash_mem;
    j->password_len = cr->password_len;
    j->password = malloc(cr->password_len + 1);
    j->hash = u && u->hash ? strdup(u->hash) : NULL;
    j->client_id = cr->client_id ? strdup(cr->client_id) : NULL;
    if (!j->password || (u && u->hash && !j->hash) || (cr->client_id && !j->client_id)) {
        verify_free(j);
        return WEIR_ENOMEM;
    }
    memcpy(j->password, cr->password, cr->password_len);
    j->password[cr->password_len] = '\0';
    j->done = done;
    j->arg = arg;
    j->req.data = j;
    if (!a->loop || !done) {
        /* No loop (CLI, tests, fuzzing): answer now. */
        verify_work(&j->req);
        int rc = verify_finish(j, out);
        verify_free(j);
        return rc;
    }
    if (uv_queue_work(a->loop, &j->req, verify_work, verify_after)) {
        verify_free(j);
        return WEIR_EINTERNAL;
    }
    a->pending++;
    return WEIR_EAGAIN;
}

int auth_token_identity(auth *a, const char *token, size_t n, const char *peer, auth_identity **out)
{
    *out = NULL;
    char akey[96];
    address_key(peer, akey, sizeof(akey));
    if (backoff_blocked(a, akey)) {
        a->stats.backoff_refused[AUTH_DOOR_HTTP]++;
        return WEIR_EBUSY;
    }
    auth_credentials cr = {.door = AUTH_DOOR_HTTP,
                           .password = (const uint8_t *)token,
                           .password_len = n,
                           .peer = peer};
    int rc = by_token(a, &cr, out);
    if (rc && rc != WEIR_ENOMEM) {
        /* Counted and logged (rate-limited) but neither backed off nor
         * audited: a token's secret is 256 random bits, so guessing is
         * hopeless, while a service still holding a revoked token would
         * otherwise lock out its whole address and flood the trail. */
        a->stats.logins_failed[AUTH_DOOR_HTTP]++;
        wlog_limited(&fail_limit, WLOG_WARN, "auth", "token_refused", "door=http peer=%s error=%s",
                     peer ? peer : "?", weir_err_name(rc));
    }
    return rc;
}

/* ---- HTTP sessions ------------------------------------------------------ */

void auth__sessions_free(auth *a)
{
    for (size_t i = 0; i < a->n_sessions; i++)
        auth_identity_unref(a->sessions[i].who);
    free(a->sessions);
    a->sessions = NULL;
    a->n_sessions = 0;
}

static void session_drop(auth *a, size_t i)
{
    auth_identity_unref(a->sessions[i].who);
    a->sessions[i] = a->sessions[--a->n_sessions];
}

static void random_b64(char *out, size_t outlen)
{
    uint8_t b[32];
    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(out, outlen, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(b, sizeof(b));
}

int auth_session_new(auth *a, auth_identity *id, char cookie[AUTH_SESSION_ID_LEN + 1],
                     char csrf[AUTH_CSRF_LEN + 1])
{
    if (!a->sessions && !(a->sessions = calloc(AUTH_MAX_SESSIONS, sizeof(*a->sessions))))
        return WEIR_ENOMEM;
    if (a->n_sessions == AUTH_MAX_SESSIONS) {
        size_t oldest = 0;
        for (size_t i = 1; i < a->n_sessions; i++)
            if (a->sessions[i].touched < a->sessions[oldest].touched)
                oldest = i;
        session_drop(a, oldest);
    }
    auth_session *s = &a->sessions[a->n_sessions++];
    random_b64(s->id, sizeof(s->id));
    random_b64(s->csrf, sizeof(s->csrf));
    s->who = auth_identity_ref(id);
    s->created = s->touched = weir_mono_ns();
    memcpy(cookie, s->id, sizeof(s->id));
    memcpy(csrf, s->csrf, sizeof(s->csrf));
    return WEIR_OK;
}

static auth_session *session_find(auth *a, const char *cookie, size_t *idx)
{
    if (!cookie || strlen(cookie) != AUTH_SESSION_ID_LEN)
        return NULL;
    for (size_t i = 0; i < a->n_sessions; i++)
        if (sodium_memcmp(a->sessions[i].id, cookie, AUTH_SESSION_ID_LEN) == 0) {
            *idx = i;
            return &a->sessions[i];
        }
    return NULL;
}

auth_identity *auth_session_get(auth *a, const char *cookie, char csrf[AUTH_CSRF_LEN + 1])
{
    size_t i;
    auth_session *s = session_find(a, cookie, &i);
    if (!s)
        return NULL;
    int64_t now = weir_mono_ns();
    if (now - s->touched > (int64_t)AUTH_SESSION_IDLE_S * WEIR_NS_PER_S ||
        now - s->created > (int64_t)AUTH_SESSION_MAX_S * WEIR_NS_PER_S) {
        session_drop(a, i);
        return NULL;
    }
    if (!auth_identity_current(a, s->who)) {
        /* Grants changed: the session goes on with the new ones; anything
         * else (password, role, deletion): it ends. */
        auth_identity *renewed = auth_identity_renew(a, s->who, NULL);
        if (!renewed) {
            session_drop(a, i);
            return NULL;
        }
        auth_identity_unref(s->who);
        s->who = renewed;
    }
    s->touched = now;
    if (csrf)
        memcpy(csrf, s->csrf, sizeof(s->csrf));
    return auth_identity_ref(s->who);
}

void auth_session_end(auth *a, const char *cookie)
{
    size_t i;
    if (session_find(a, cookie, &i))
        session_drop(a, i);
}

void auth_session_end_user(auth *a, const char *name)
{
    for (size_t i = 0; i < a->n_sessions;) {
        if (!strcmp(a->sessions[i].who->name, name))
            session_drop(a, i);
        else
            i++;
    }
}
