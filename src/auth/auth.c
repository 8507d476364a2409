/* auth.c -- the policy, the user snapshot, identities and auth_check (see
 * auth.h). Authentication is in authn.c. */
#include "auth/auth_int.h"
#include "base/err.h"
#include "base/wlog.h"
#include "catalog/catalog.h"
#include "mqtt/topic.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const role_names[] = {
    [AUTH_ROLE_NONE] = "none",       [AUTH_ROLE_ADMIN] = "admin",
    [AUTH_ROLE_MANAGER] = "manager", [AUTH_ROLE_OPERATOR] = "operator",
    [AUTH_ROLE_VIEWER] = "viewer",   [AUTH_ROLE_SUPPLIER] = "supplier",
    [AUTH_ROLE_DEVICE] = "device",   [AUTH_ROLE_ANONYMOUS] = "anonymous",
};

static const char *const action_names[] = {
    [AUTH_ADMIN] = "admin",
    [AUTH_PUBLIC] = "public",
    [AUTH_ANY] = "any",
    [AUTH_METRICS] = "metrics",
    [AUTH_CONNECT] = "connect",
    [AUTH_PUBLISH] = "publish",
    [AUTH_SUBSCRIBE] = "subscribe",
    [AUTH_STREAM_READ] = "stream_read",
    [AUTH_STREAM_WRITE] = "stream_write",
    [AUTH_STREAM_MANAGE] = "stream_manage",
    [AUTH_QUERY] = "query",
    [AUTH_RULE_READ] = "rule_read",
    [AUTH_RULE_CONTROL] = "rule_control",
    [AUTH_RULE_MANAGE] = "rule_manage",
};

const char *auth_role_name(auth_role r)
{
    return (unsigned)r < sizeof(role_names) / sizeof(role_names[0]) ? role_names[r] : "none";
}

auth_role auth_role_parse(const char *s)
{
    if (!s)
        return AUTH_ROLE_NONE;
    for (int r = AUTH_ROLE_ADMIN; r <= AUTH_ROLE_DEVICE; r++)
        if (!strcmp(s, role_names[r]))
            return (auth_role)r;
    return AUTH_ROLE_NONE;
}

const char *auth_method_name(auth_method m)
{
    switch (m) {
    case AUTH_BY_ANONYMOUS:
        return "anonymous";
    case AUTH_BY_PASSWORD:
        return "password";
    case AUTH_BY_TOKEN:
        return "token";
    case AUTH_BY_CERT:
        return "certificate";
    case AUTH_BY_SESSION:
        return "session";
    }
    return "?";
}

const char *auth_action_name(auth_action act)
{
    return (unsigned)act < AUTH_ACTION__COUNT ? action_names[act] : "?";
}

bool auth_name_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AUTH_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '@' || ch == '-'))
            return false;
    }
    return true;
}

/* ---- Policy ------------------------------------------------------------- */

static int add_deny(auth *a, const char *tok)
{
    if (!mqtt_topic_filter_valid((const uint8_t *)tok, strlen(tok))) {
        wlog_error("auth", "config", "error=\"invalid deny filter\" filter=\"%s\"", tok);
        return WEIR_ETOPIC;
    }
    char **grown = realloc(a->deny, (a->n_deny + 1) * sizeof(*grown));
    if (!grown)
        return WEIR_ENOMEM;
    a->deny = grown;
    if (!(a->deny[a->n_deny] = strdup(tok)))
        return WEIR_ENOMEM;
    a->n_deny++;
    return WEIR_OK;
}

auth *auth_new(const char *deny_csv, bool anonymous)
{
    if (sodium_init() < 0) {
        wlog_error("auth", "sodium", "error=\"libsodium failed to initialise\"");
        return NULL;
    }
    auth *a = calloc(1, sizeof(*a));
    char *copy = NULL;
    if (!a)
        return NULL;
    a->anonymous = anonymous;
    a->hash_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    a->hash_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
    randombytes_buf(a->cache_key, sizeof(a->cache_key));
    if (auth_set_device_topics(a, NULL, NULL))
        goto fail;
    if (!deny_csv || !*deny_csv)
        return a;
    if (!(copy = strdup(deny_csv)))
        goto fail;
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t n = strlen(tok);
        while (n && tok[n - 1] == ' ')
            tok[--n] = '\0';
        if (n && add_deny(a, tok))
            goto fail;
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
    free(a->device_pub);
    free(a->device_sub);
    auth__db_free(&a->db);
    auth__sessions_free(a);
    sodium_memzero(a->cache, sizeof(a->cache));
    free(a);
}

void auth_set_loop(auth *a, uv_loop_t *loop)
{
    a->loop = loop;
}

void auth_set_hash_cost(auth *a, unsigned long long ops, size_t mem)
{
    a->hash_ops = ops;
    a->hash_mem = mem;
}

void auth_set_audit(auth *a, audit *au)
{
    a->audit = au;
}

int auth_set_device_topics(auth *a, const char *publish, const char *subscribe)
{
    if (!publish || !*publish)
        publish = "devices/%u/#";
    if (!subscribe || !*subscribe)
        subscribe = "devices/%u/cmd/#";
    if (!mqtt_topic_filter_valid((const uint8_t *)publish, strlen(publish)) ||
        !mqtt_topic_filter_valid((const uint8_t *)subscribe, strlen(subscribe)))
        return WEIR_ETOPIC;
    char *p = strdup(publish), *s = strdup(subscribe);
    if (!p || !s) {
        free(p);
        free(s);
        return WEIR_ENOMEM;
    }
    free(a->device_pub);
    free(a->device_sub);
    a->device_pub = p;
    a->device_sub = s;
    return WEIR_OK;
}

size_t auth_deny_count(const auth *a)
{
    return a->n_deny;
}

bool auth_anonymous(const auth *a)
{
    return a->anonymous;
}

uint64_t auth_generation(const auth *a)
{
    return a->generation;
}

const auth_stats *auth_get_stats(const auth *a)
{
    return &a->stats;
}

/* ---- The user snapshot -------------------------------------------------- */

void auth__db_free(auth_db *db)
{
    for (size_t i = 0; i < db->n_users; i++) {
        free(db->users[i].name);
        if (db->users[i].hash) {
            sodium_memzero(db->users[i].hash, strlen(db->users[i].hash));
            free(db->users[i].hash);
        }
    }
    free(db->users);
    for (size_t i = 0; i < db->n_tokens; i++)
        free(db->tokens[i].user);
    free(db->tokens);
    for (size_t i = 0; i < db->n_grants; i++) {
        free(db->grants[i].subject);
        free(db->grants[i].pattern);
    }
    free(db->grants);
    memset(db, 0, sizeof(*db));
}

static int load_user(void *arg, const catalog_user *u)
{
    auth_db *db = arg;
    auth_role r = auth_role_parse(u->role);
    if (r == AUTH_ROLE_NONE)
        return WEIR_OK; /* the schema forbids it; skip rather than fail start-up */
    auth_user *grown = realloc(db->users, (db->n_users + 1) * sizeof(*grown));
    if (!grown)
        return WEIR_ENOMEM;
    db->users = grown;
    auth_user *x = &db->users[db->n_users];
    memset(x, 0, sizeof(*x));
    x->name = strdup(u->name);
    x->hash = u->password_hash ? strdup(u->password_hash) : NULL;
    if (!x->name || (u->password_hash && !x->hash)) {
        free(x->name);
        free(x->hash);
        return WEIR_ENOMEM;
    }
    x->role = r;
    x->device = u->kind && !strcmp(u->kind, "device");
    x->disabled = u->disabled != 0;
    db->n_users++;
    return WEIR_OK;
}

static int load_token(void *arg, const catalog_token *t)
{
    auth_db *db = arg;
    if (strlen(t->id) != 16 || strlen(t->secret_hash) != 64)
        return WEIR_OK;
    auth_token_rec *grown = realloc(db->tokens, (db->n_tokens + 1) * sizeof(*grown));
    if (!grown)
        return WEIR_ENOMEM;
    db->tokens = grown;
    auth_token_rec *x = &db->tokens[db->n_tokens];
    memcpy(x->id, t->id, 17);
    memcpy(x->hash, t->secret_hash, 65);
    x->expires_at = t->expires_at;
    x->revoked = t->revoked != 0;
    if (!(x->user = strdup(t->user)))
        return WEIR_ENOMEM;
    db->n_tokens++;
    return WEIR_OK;
}

static int load_grant(void *arg, const catalog_grant *g)
{
    auth_db *db = arg;
    auth_grant_rec *grown = realloc(db->grants, (db->n_grants + 1) * sizeof(*grown));
    if (!grown)
        return WEIR_ENOMEM;
    db->grants = grown;
    auth_grant_rec *x = &db->grants[db->n_grants];
    x->for_role = !strcmp(g->subject_kind, "role");
    x->kind = !strcmp(g->resource_kind, "topic") ? AUTH_RULE_TOPIC : AUTH_RULE_STREAM;
    x->access = (uint8_t)((strstr(g->access, "read") ? AUTH_ACC_READ : 0) |
                          (strstr(g->access, "write") ? AUTH_ACC_WRITE : 0));
    x->subject = strdup(g->subject);
    x->pattern = strdup(g->pattern);
    if (!x->subject || !x->pattern) {
        free(x->subject);
        free(x->pattern);
        return WEIR_ENOMEM;
    }
    db->n_grants++;
    return WEIR_OK;
}

static int user_cmp(const void *x, const void *y)
{
    return strcmp(((const auth_user *)x)->name, ((const auth_user *)y)->name);
}

/* FNV-1a over the grants that apply to u, in catalog order. */
static uint64_t grants_fingerprint(const auth_db *db, const auth_user *u)
{
    uint64_t h = 1469598103934665603ull;
    const char *role = auth_role_name(u->role);
    for (size_t i = 0; i < db->n_grants; i++) {
        const auth_grant_rec *g = &db->grants[i];
        if (strcmp(g->subject, g->for_role ? role : u->name))
            continue;
        uint8_t head[2] = {g->kind, g->access};
        for (size_t k = 0; k < 2; k++)
            h = (h ^ head[k]) * 1099511628211ull;
        for (const char *p = g->pattern; *p; p++)
            h = (h ^ (uint8_t)*p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull;
    }
    return h;
}

int auth_reload(auth *a, catalog *cat)
{
    auth_db db = {0};
    int rc = catalog_user_list(cat, load_user, &db);
    if (!rc)
        rc = catalog_token_list(cat, load_token, &db);
    if (!rc)
        rc = catalog_grant_list(cat, load_grant, &db);
    if (rc) {
        wlog_error("auth", "reload", "error=\"%s\"", weir_strerror(rc));
        auth__db_free(&db);
        return rc;
    }
    if (db.n_users)
        qsort(db.users, db.n_users, sizeof(*db.users), user_cmp);
    for (size_t i = 0; i < db.n_users; i++)
        db.users[i].grants_fp = grants_fingerprint(&db, &db.users[i]);
    auth__db_free(&a->db);
    a->db = db;
    a->generation++;
    /* Verified passwords may belong to changed accounts: forget them all. */
    sodium_memzero(a->cache, sizeof(a->cache));
    wlog_debug("auth", "reload", "users=%zu tokens=%zu grants=%zu generation=%llu", db.n_users,
               db.n_tokens, db.n_grants, (unsigned long long)a->generation);
    return WEIR_OK;
}

const auth_user *auth__user_find(const auth *a, const char *name)
{
    if (!name)
        return NULL;
    auth_user key = {.name = (char *)name};
    if (!a->db.n_users)
        return NULL;
    return bsearch(&key, a->db.users, a->db.n_users, sizeof(key), user_cmp);
}

const auth_token_rec *auth__token_find(const auth *a, const char *id)
{
    for (size_t i = 0; i < a->db.n_tokens; i++)
        if (!strcmp(a->db.tokens[i].id, id))
            return &a->db.tokens[i];
    return NULL;
}

/* ---- Identities --------------------------------------------------------- */

auth_identity *auth_identity_ref(auth_identity *id)
{
    if (id)
        id->refs++;
    return id;
}

void auth_identity_unref(auth_identity *id)
{
    if (!id || --id->refs)
        return;
    for (size_t i = 0; i < id->n_rules; i++)
        free(id->rules[i].pattern);
    free(id->rules);
    free(id->hash);
    free(id);
}

const char *auth_identity_name(const auth_identity *id)
{
    return id ? id->name : "";
}

auth_role auth_identity_role(const auth_identity *id)
{
    return id ? id->role : AUTH_ROLE_NONE;
}

auth_method auth_identity_method(const auth_identity *id)
{
    return id ? id->method : AUTH_BY_ANONYMOUS;
}

auth_identity *auth__identity_anonymous(void)
{
    auth_identity *id = calloc(1, sizeof(*id));
    if (!id)
        return NULL;
    id->refs = 1;
    id->role = AUTH_ROLE_ANONYMOUS;
    id->method = AUTH_BY_ANONYMOUS;
    return id;
}

/* Substitutes %u and %c in pattern. NULL (rule skipped) when a value is
 * missing or would widen the pattern: a client id with '+', '#' or '/'
 * must not turn "clients/%c/#" into someone else's subtree. */
static char *substitute(const char *pattern, const char *user, const char *client_id)
{
    size_t n = 0;
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && (p[1] == 'u' || p[1] == 'c')) {
            const char *v = p[1] == 'u' ? user : client_id;
            if (!v || !*v || strpbrk(v, "+#/"))
                return NULL;
            n += strlen(v);
            p++;
        } else {
            n++;
        }
    }
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const char *p = pattern; *p; p++) {
        if (p[0] == '%' && (p[1] == 'u' || p[1] == 'c')) {
            const char *v = p[1] == 'u' ? user : client_id;
            size_t vn = strlen(v);
            memcpy(o, v, vn);
            o += vn;
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return out;
}

static int add_rule(auth_identity *id, uint8_t kind, uint8_t access, const char *pattern,
                    const char *client_id)
{
    char *p = substitute(pattern, id->name, client_id);
    if (!p)
        return WEIR_OK; /* not applicable to this connection */
    size_t n = strlen(p);
    if (n > UINT16_MAX || (kind == AUTH_RULE_TOPIC && !mqtt_topic_filter_valid((uint8_t *)p, n))) {
        free(p);
        return WEIR_OK;
    }
    auth_rule *grown = realloc(id->rules, (id->n_rules + 1) * sizeof(*grown));
    if (!grown) {
        free(p);
        return WEIR_ENOMEM;
    }
    id->rules = grown;
    id->rules[id->n_rules++] = (auth_rule){kind, access, (uint16_t)n, p};
    return WEIR_OK;
}

auth_identity *auth__identity_build(auth *a, const auth_user *u, auth_method m,
                                    const char *client_id)
{
    auth_identity *id = calloc(1, sizeof(*id));
    if (!id)
        return NULL;
    id->refs = 1;
    id->role = u->role;
    id->method = m;
    id->grants_fp = u->grants_fp;
    snprintf(id->name, sizeof(id->name), "%s", u->name);
    if (u->hash && !(id->hash = strdup(u->hash)))
        goto fail;
    int rc = WEIR_OK;
    if (u->role == AUTH_ROLE_DEVICE) {
        rc |= add_rule(id, AUTH_RULE_TOPIC, AUTH_ACC_WRITE, a->device_pub, client_id);
        rc |= add_rule(id, AUTH_RULE_TOPIC, AUTH_ACC_READ, a->device_sub, client_id);
    }
    const char *role = auth_role_name(u->role);
    for (size_t i = 0; i < a->db.n_grants && !rc; i++) {
        const auth_grant_rec *g = &a->db.grants[i];
        if (!strcmp(g->subject, g->for_role ? role : u->name))
            rc = add_rule(id, g->kind, g->access, g->pattern, client_id);
    }
    if (rc)
        goto fail;
    return id;
fail:
    auth_identity_unref(id);
    return NULL;
}

auth_identity *auth_identity_for(auth *a, const char *name, const char *client_id)
{
    const auth_user *u = auth__user_find(a, name);
    if (!u || u->disabled)
        return NULL;
    return auth__identity_build(a, u, AUTH_BY_SESSION, client_id);
}

/* Whether the account behind id still stands as id knew it, grants aside. */
static bool account_valid(const auth *a, const auth_identity *id, const auth_user **out)
{
    const auth_user *u = auth__user_find(a, id->name);
    *out = u;
    if (!u || u->disabled || u->role != id->role)
        return false;
    if (id->method == AUTH_BY_TOKEN) {
        const auth_token_rec *t = auth__token_find(a, id->token_id);
        if (!t || t->revoked || (t->expires_at && t->expires_at <= (long long)time(NULL)))
            return false;
    }
    if (id->method == AUTH_BY_PASSWORD && (!u->hash || !id->hash || strcmp(u->hash, id->hash) != 0))
        return false; /* the password changed */
    return true;
}

bool auth_identity_current(const auth *a, const auth_identity *id)
{
    if (!id)
        return false;
    if (id->role == AUTH_ROLE_ANONYMOUS)
        return a->anonymous;
    const auth_user *u;
    return account_valid(a, id, &u) && u->grants_fp == id->grants_fp;
}

auth_identity *auth_identity_renew(auth *a, const auth_identity *id, const char *client_id)
{
    const auth_user *u;
    if (!id || id->role == AUTH_ROLE_ANONYMOUS || !account_valid(a, id, &u))
        return NULL;
    auth_identity *n = auth__identity_build(a, u, id->method, client_id);
    if (n) {
        memcpy(n->token_id, id->token_id, sizeof(n->token_id));
        n->expires_at = id->expires_at;
    }
    return n;
}

/* ---- Authorisation ------------------------------------------------------ */

/* True when every topic matched by filter `f` is matched by `outer`: the
 * filter is walked level by level as if it were a topic whose '+' and '#'
 * must themselves be covered by a wildcard of `outer`. */
bool auth__filter_inside(const uint8_t *f, size_t fn, const char *outer, size_t on)
{
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

static bool topic_rules(const auth_identity *id, bool publish, const uint8_t *t, size_t n)
{
    for (size_t i = 0; i < id->n_rules; i++) {
        const auth_rule *r = &id->rules[i];
        if (r->kind != AUTH_RULE_TOPIC)
            continue;
        if (publish) {
            if ((r->access & AUTH_ACC_WRITE) &&
                mqtt_topic_matches((const uint8_t *)r->pattern, r->len, t, n))
                return true;
        } else if ((r->access & AUTH_ACC_READ) && auth__filter_inside(t, n, r->pattern, r->len)) {
            return true;
        }
    }
    return false;
}

static bool stream_rules(const auth_identity *id, unsigned access, const char *s, size_t n)
{
    for (size_t i = 0; i < id->n_rules; i++) {
        const auth_rule *r = &id->rules[i];
        if (r->kind != AUTH_RULE_STREAM || !(r->access & access))
            continue;
        /* "*" is every user stream; "plant1.*" a prefix; else exact. */
        if (r->len && r->pattern[r->len - 1] == '*') {
            if (n >= (size_t)(r->len - 1) && !memcmp(s, r->pattern, r->len - 1u) && s[0] != '$')
                return true;
        } else if (n == r->len && !memcmp(s, r->pattern, n)) {
            return true;
        }
    }
    return false;
}

static bool denied_topic(const auth *a, bool publish, const uint8_t *t, size_t n)
{
    if (publish) {
        for (size_t i = 0; i < a->n_deny; i++)
            if (mqtt_topic_matches((const uint8_t *)a->deny[i], strlen(a->deny[i]), t, n))
                return true;
        return false;
    }
    for (size_t i = 0; i < a->n_deny; i++)
        if (auth__filter_inside(t, n, a->deny[i], strlen(a->deny[i])))
            return true;
    return false;
}

static bool allowed(const auth *a, const auth_identity *id, auth_action act, const char *res,
                    size_t len)
{
    if (act == AUTH_PUBLIC)
        return true;
    if (!id)
        return false;
    auth_role r = id->role;
    bool top = r == AUTH_ROLE_ADMIN || r == AUTH_ROLE_ANONYMOUS;
    bool mgr = top || r == AUTH_ROLE_MANAGER;
    bool readall = mgr || r == AUTH_ROLE_OPERATOR;
    switch (act) {
    case AUTH_PUBLIC:
    case AUTH_ANY:
    case AUTH_CONNECT:
        return true;
    case AUTH_ADMIN:
        return top;
    case AUTH_METRICS:
        return r != AUTH_ROLE_DEVICE;
    case AUTH_PUBLISH:
    case AUTH_SUBSCRIBE: {
        bool pub = act == AUTH_PUBLISH;
        const uint8_t *t = (const uint8_t *)res;
        size_t n = len;
        if (!t)
            return false;
        mqtt_bytes group, inner;
        if (!pub && mqtt_topic_share_split(t, n, &group, &inner)) {
            t = inner.data;
            n = inner.len;
        }
        if (a->n_deny && denied_topic(a, pub, t, n))
            return false;
        if (mgr || (!pub && readall))
            return true;
        return topic_rules(id, pub, t, n);
    }
    case AUTH_STREAM_READ:
    case AUTH_QUERY:
        if (!res)
            return act == AUTH_QUERY ? readall : false;
        if (res[0] == '$') /* system streams: $audit is for admins only */
            return len == 6 && !memcmp(res, "$audit", 6) ? top : readall;
        return readall || stream_rules(id, AUTH_ACC_READ, res, len);
    case AUTH_STREAM_WRITE:
        if (!res || res[0] == '$')
            return false;
        return mgr || stream_rules(id, AUTH_ACC_WRITE, res, len);
    case AUTH_STREAM_MANAGE:
    case AUTH_RULE_MANAGE:
        return mgr;
    case AUTH_RULE_READ:
    case AUTH_RULE_CONTROL:
        return readall;
    case AUTH_ACTION__COUNT:
        break;
    }
    return false;
}

int auth_check(auth *a, const auth_identity *id, auth_action act, const char *resource, size_t len)
{
    /* The fast path: an unrestricted identity and no deny list is two
     * branches for every PUBLISH. */
    if (id &&
        (id->role == AUTH_ROLE_ADMIN || id->role == AUTH_ROLE_ANONYMOUS ||
         id->role == AUTH_ROLE_MANAGER) &&
        act == AUTH_PUBLISH && !a->n_deny)
        return WEIR_OK;
    if (allowed(a, id, act, resource, len))
        return WEIR_OK;
    if ((unsigned)act < AUTH_ACTION__COUNT)
        a->stats.denied[act]++;
    return WEIR_EDENIED;
}
