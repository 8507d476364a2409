/* route_auth.c -- the HTTP door's authentication (the gate every route
 * passes) and the identity resource:
 *
 *   POST   /api/v1/login                    {"username","password"} -> session cookie + CSRF token
 *   POST   /api/v1/logout                   ends the cookie's session
 *   GET    /api/v1/me                       who am I (and the session's CSRF token)
 *   GET    /api/v1/users                    users (admin)
 *   POST   /api/v1/users                    {"name","role","kind"?,"password"?} (admin)
 *   PUT    /api/v1/users/{name}             {"password"?,"role"?,"disabled"?} (admin; a
 *                                           user may change their own password,
 *                                           giving "current_password")
 *   DELETE /api/v1/users/{name}             (admin)
 *   GET    /api/v1/tokens                   own tokens (admins: all), never secrets
 *   POST   /api/v1/users/{name}/tokens      {"description"?,"expires_in"?} -> the token, once
 *   DELETE /api/v1/tokens/{id}              revoke (own, or admin)
 *   GET    /api/v1/grants                   (admin)
 *   POST   /api/v1/grants {"subject_kind","subject","resource_kind","pattern","access"} DELETE
 * /api/v1/grants                   same body without access
 *
 * Password hashing (argon2id) and verification run on libuv's thread pool;
 * the answer is given later (http_respond_later), so the loop never waits
 * for them. Catalog writes are single small transactions on the loop, like
 * stream definitions. Every change is audited and followed by a reload of
 * auth (api->auth_changed), which also closes MQTT connections whose
 * credentials are gone.
 */
#include "auth/audit.h"
#include "auth/auth.h"
#include "base/err.h"
#include "base/wlog.h"
#include "http/routes.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#define COOKIE_NAME          "weir_session"
#define PASSWORD_MIN         8
#define PASSWORD_MAX         1024
#define TOKEN_MAX_LIFETIME_S (10LL * 365 * 86400)
#define HDR_MAX              8192 /* a Cookie header carries other sites' cookies on the same host too */

/* ---- Helpers ------------------------------------------------------------ */

static bool peer_loopback(const char *peer)
{
    return peer &&
           (!strncmp(peer, "127.", 4) || !strncmp(peer, "[::1]", 5) || !strncmp(peer, "::1", 3) ||
            !strncmp(peer, "[::ffff:127.", 12) || !strncmp(peer, "::ffff:127.", 11));
}

static void release_identity(void *p)
{
    auth_identity_unref(p);
}

const auth_identity *http_identity(const http_request *r)
{
    return http_req_user(r);
}

static void respond_status(http_response *w, int status, const char *code, const char *msg)
{
    http_respond_json(w, status, json_pack("{s:s, s:s}", "error", msg, "code", code));
}

static void respond_auth_error(http_response *w, int rc)
{
    if (rc == WEIR_EBUSY) {
        http_resp_header(w, "Retry-After", "1");
        respond_status(w, 429, "EBUSY", "too many failed logins; try again later");
    } else if (rc == WEIR_EDENIED) {
        respond_status(w, 403, "EDENIED", "account disabled or not allowed");
    } else if (rc == WEIR_ENOMEM || rc == WEIR_EINTERNAL) {
        http_respond_error(w, rc, NULL);
    } else {
        http_resp_header(w, "WWW-Authenticate", "Bearer realm=\"weir\"");
        respond_status(w, 401, "EAUTH", "authentication required: log in or send a Bearer token");
    }
}

void http_audit(http_api_ctx *api, http_request *r, const char *action, const char *target, bool ok,
                const char *detail)
{
    audit_log(api->audit, auth_identity_name(http_identity(r)), http_req_peer(r), "http", action,
              target, ok, detail);
}

static bool state_changing(const char *m)
{
    return strcmp(m, "GET") != 0 && strcmp(m, "HEAD") != 0 && strcmp(m, "OPTIONS") != 0;
}

static bool is_stream_action(int act)
{
    return act == AUTH_STREAM_READ || act == AUTH_STREAM_WRITE || act == AUTH_QUERY;
}

/* ---- The gate ----------------------------------------------------------- */

int http_auth_gate(void *ctx, http_request *r, http_response *w, const http_route *route)
{
    http_api_ctx *api = ctx;
    auth *a = api->auth;
    if (!a || route->perm == AUTH_PUBLIC)
        return 0;
    char hdr[HDR_MAX];
    auth_identity *id = NULL;
    int rc = WEIR_EAUTH;
    const char *authz = http_req_header(r, "authorization", hdr, sizeof(hdr));
    if (authz) {
        size_t tn;
        const char *tok = auth_bearer(authz, &tn);
        rc = tok ? auth_token_identity(a, tok, tn, http_req_peer(r), &id) : WEIR_EAUTH;
    } else if (http_req_header(r, "cookie", hdr, sizeof(hdr))) {
        char sid[AUTH_SESSION_ID_LEN + 2], csrf[AUTH_CSRF_LEN + 1], sent[AUTH_CSRF_LEN + 2];
        if (auth_cookie_get(hdr, COOKIE_NAME, sid, sizeof(sid)) &&
            (id = auth_session_get(a, sid, csrf))) {
            rc = WEIR_OK;
            if (state_changing(http_req_method(r)) &&
                (!http_req_header(r, "x-csrf-token", sent, sizeof(sent)) ||
                 !auth_secret_equal(sent, csrf))) {
                auth_identity_unref(id);
                respond_status(w, 403, "EDENIED",
                               "missing or wrong X-CSRF-Token for a cookie session");
                return 1;
            }
        }
    }
    if (!id && !authz && auth_anonymous(a) && peer_loopback(http_req_peer(r))) {
        auth_credentials cr = {.door = AUTH_DOOR_HTTP, .peer = http_req_peer(r), .loopback = true};
        rc = auth_authenticate(a, &cr, &id, NULL, NULL);
    }
    if (rc || !id) {
        respond_auth_error(w, rc ? rc : WEIR_EAUTH);
        return 1;
    }
    int act = route->perm;
    const char *res = NULL;
    if (is_stream_action(act))
        res = http_req_param(r, 0);
    /* A query names its streams in the SQL: route_query checks them. */
    if (act == AUTH_QUERY)
        act = AUTH_ANY;
    if (auth_check(a, id, (auth_action)act, res, res ? strlen(res) : 0)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "not allowed: %s needs permission '%s'",
                 auth_role_name(auth_identity_role(id)), auth_action_name((auth_action)act));
        auth_identity_unref(id);
        respond_status(w, 403, "EDENIED", msg);
        return 1;
    }
    http_req_set_user(r, id, release_identity);
    return 0;
}

/* ---- Login and logout --------------------------------------------------- */

typedef struct login_job {
    http_later *later;
    http_api_ctx *api;
    bool tls;
} login_job;

static void login_answer(http_api_ctx *api, http_response *w, bool tls, int rc, auth_identity *id)
{
    if (rc || !id) {
        respond_auth_error(w, rc ? rc : WEIR_EAUTH);
        return;
    }
    char sid[AUTH_SESSION_ID_LEN + 1], csrf[AUTH_CSRF_LEN + 1], cookie[256];
    if (auth_session_new(api->auth, id, sid, csrf)) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    snprintf(cookie, sizeof(cookie),
             COOKIE_NAME "=%s; Path=/; HttpOnly; SameSite=Strict; "
                         "Max-Age=%d%s",
             sid, AUTH_SESSION_MAX_S, tls ? "; Secure" : "");
    http_resp_header(w, "Set-Cookie", cookie);
    http_resp_header(w, "Cache-Control", "no-store");
    http_respond_json(w, 200,
                      json_pack("{s:s, s:s, s:s, s:i, s:i}", "user", auth_identity_name(id), "role",
                                auth_role_name(auth_identity_role(id)), "csrf_token", csrf,
                                "idle_timeout_s", AUTH_SESSION_IDLE_S, "expires_in_s",
                                AUTH_SESSION_MAX_S));
}

static void login_done(void *arg, int status, auth_identity *id)
{
    login_job *j = arg;
    http_response *w = http_later_response(j->later);
    if (w)
        login_answer(j->api, w, j->tls, status, id);
    auth_identity_unref(id);
    http_later_done(j->later);
    free(j);
}

void http_route_login(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    if (!api->auth) {
        http_respond_error(w, WEIR_EUNSUPPORTED, "authentication is not configured");
        return;
    }
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_t *j = json_loadb((const char *)body, n, 0, NULL);
    const char *user = json_string_value(json_object_get(j, "username"));
    const char *pw = json_string_value(json_object_get(j, "password"));
    if (!user || !pw) {
        json_decref(j);
        http_respond_error(w, WEIR_EINVAL, "body must be {\"username\": ..., \"password\": ...}");
        return;
    }
    login_job *job = calloc(1, sizeof(*job));
    if (!job) {
        json_decref(j);
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    job->api = api;
    job->tls = http_req_tls(r) != 0;
    auth_credentials cr = {.door = AUTH_DOOR_HTTP,
                           .username = user,
                           .password = (const uint8_t *)pw,
                           .password_len = strlen(pw),
                           .peer = http_req_peer(r),
                           .loopback = peer_loopback(http_req_peer(r))};
    auth_identity *id = NULL;
    /* The later handle first: the verdict may need it. */
    job->later = http_respond_later(w);
    if (!job->later) {
        free(job);
        json_decref(j);
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    int rc = auth_authenticate(api->auth, &cr, &id, login_done, job);
    sodium_memzero((void *)pw, strlen(pw));
    json_decref(j);
    if (rc == WEIR_EAGAIN)
        return;
    login_done(job, rc, id);
}

void http_route_logout(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    char hdr[HDR_MAX], sid[AUTH_SESSION_ID_LEN + 2];
    if (http_req_header(r, "cookie", hdr, sizeof(hdr)) &&
        auth_cookie_get(hdr, COOKIE_NAME, sid, sizeof(sid)))
        auth_session_end(api->auth, sid);
    http_audit(api, r, "logout", auth_identity_name(http_identity(r)), true, NULL);
    http_resp_header(w, "Set-Cookie",
                     COOKIE_NAME "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    http_respond_json(w, 200, json_pack("{s:b}", "ok", 1));
}

void http_route_me(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const auth_identity *id = http_identity(r);
    json_t *o = json_pack("{s:s, s:s, s:s}", "user", auth_identity_name(id), "role",
                          auth_role_name(auth_identity_role(id)), "method",
                          auth_method_name(auth_identity_method(id)));
    char hdr[HDR_MAX], sid[AUTH_SESSION_ID_LEN + 2], csrf[AUTH_CSRF_LEN + 1];
    if (o && http_req_header(r, "cookie", hdr, sizeof(hdr)) &&
        auth_cookie_get(hdr, COOKIE_NAME, sid, sizeof(sid))) {
        auth_identity *s = auth_session_get(api->auth, sid, csrf);
        if (s)
            json_object_set_new(o, "csrf_token", json_string(csrf));
        auth_identity_unref(s);
    }
    http_respond_json(w, 200, o);
}

/* ---- Users -------------------------------------------------------------- */

static void changed(http_api_ctx *api)
{
    if (api->auth_changed)
        api->auth_changed(api);
}

static int add_user_json(void *arg, const catalog_user *u)
{
    json_array_append_new(arg,
                          json_pack("{s:s, s:s, s:s, s:b, s:b, s:s}", "name", u->name, "kind",
                                    u->kind, "role", u->role, "password", u->password_hash != NULL,
                                    "disabled", u->disabled, "created_at", u->created_at));
    return 0;
}

void http_route_users_list(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    http_api_ctx *api = ctx;
    json_t *arr = json_array();
    int rc = catalog_user_list(api->catalog, add_user_json, arr);
    if (rc) {
        json_decref(arr);
        http_respond_error(w, rc, NULL);
        return;
    }
    http_respond_json(w, 200, json_pack("{s:o}", "users", arr));
}

/* A create or update that may need a password hashed off the loop. */
typedef struct user_job {
    uv_work_t req;
    http_api_ctx *api;
    http_later *later;
    bool create;
    char name[AUTH_NAME_MAX + 1];
    char kind[8];
    char role[16];  /* "" = unchanged */
    int disabled;   /* -1 = unchanged */
    char *password; /* NULL = unchanged / none; wiped */
    char *current;  /* a user changing their own password: the old one */
    bool generated; /* the password was generated: return it once */
    char hash[128];
    int hash_rc;
    char who[AUTH_NAME_MAX + 1];
    char peer[80];
} user_job;

static void wipe_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

static void user_job_free(user_job *j)
{
    wipe_free(j->password);
    wipe_free(j->current);
    sodium_memzero(j->hash, sizeof(j->hash));
    free(j);
}

static void user_hash_work(uv_work_t *req)
{
    user_job *j = req->data;
    j->hash_rc = auth_password_hash(j->password, strlen(j->password), j->hash);
}

static int user_apply(user_job *j, char *detail, size_t dn)
{
    catalog *cat = j->api->catalog;
    const char *hash = j->password ? j->hash : NULL;
    int rc;
    if (j->create) {
        snprintf(detail, dn, "kind=%s role=%s", j->kind, j->role);
        return catalog_user_add(cat, j->name, j->kind, j->role, hash);
    }
    size_t off = 0;
    detail[0] = '\0';
    if (hash) {
        if ((rc = catalog_user_set_password(cat, j->name, hash)))
            return rc;
        off += (size_t)snprintf(detail + off, dn - off, "password changed ");
        auth_session_end_user(j->api->auth, j->name);
    }
    if (j->role[0]) {
        if ((rc = catalog_user_set_role(cat, j->name, j->role)))
            return rc;
        off += (size_t)snprintf(detail + off, dn - off, "role=%s ", j->role);
    }
    if (j->disabled >= 0) {
        if ((rc = catalog_user_set_disabled(cat, j->name, j->disabled)))
            return rc;
        snprintf(detail + off, dn - off, "disabled=%d", j->disabled);
    }
    return WEIR_OK;
}

static void user_finish(user_job *j, http_response *w)
{
    char detail[160];
    int rc = j->hash_rc ? j->hash_rc : user_apply(j, detail, sizeof(detail));
    const char *action = j->create ? "user.create" : j->password ? "user.password" : "user.update";
    if (!j->create && !j->password && j->role[0])
        action = "user.role";
    if (rc == WEIR_OK) {
        audit_log(j->api->audit, j->who, j->peer, "http", action, j->name, true, detail);
        changed(j->api);
    }
    if (!w)
        return;
    if (rc == WEIR_EEXIST) {
        http_respond_error(w, rc, "a user with that name exists");
    } else if (rc == WEIR_ENOTFOUND) {
        http_respond_error(w, rc, "no such user");
    } else if (rc) {
        http_respond_error(w, rc, NULL);
    } else {
        json_t *o = json_pack("{s:s}", "name", j->name);
        if (o && j->generated)
            json_object_set_new(o, "password", json_string(j->password));
        http_resp_header(w, "Cache-Control", "no-store");
        http_respond_json(w, j->create ? 201 : 200, o);
    }
}

static void user_hash_after(uv_work_t *req, int status)
{
    user_job *j = req->data;
    if (status)
        j->hash_rc = WEIR_EINTERNAL;
    http_api_ctx *api = j->api;
    user_finish(j, http_later_response(j->later));
    http_later_done(j->later);
    api->jobs--;
    if (api->jobs == 0 && api->on_jobs_idle)
        api->on_jobs_idle(api->idle_arg);
    user_job_free(j);
}

/* Hashes the new password on the thread pool; the answer goes through
 * j->later (taken by the caller). */
static void user_queue_hash(user_job *j)
{
    j->req.data = j;
    if (uv_queue_work(j->api->loop, &j->req, user_hash_work, user_hash_after)) {
        http_response *w = http_later_response(j->later);
        if (w)
            http_respond_error(w, WEIR_EINTERNAL, NULL);
        http_later_done(j->later);
        user_job_free(j);
        return;
    }
    j->api->jobs++;
}

/* The verdict on the old password of a user changing their own. */
static void user_current_checked(void *arg, int status, auth_identity *id)
{
    user_job *j = arg;
    auth_identity_unref(id);
    wipe_free(j->current);
    j->current = NULL;
    if (status) {
        http_response *w = http_later_response(j->later);
        if (w && status == WEIR_EAUTH)
            respond_status(w, 403, "EAUTH", "current_password is wrong");
        else if (w)
            respond_auth_error(w, status);
        http_later_done(j->later);
        user_job_free(j);
        return;
    }
    user_queue_hash(j);
}

static void user_run(http_api_ctx *api, http_request *r, http_response *w, user_job *j)
{
    j->api = api;
    snprintf(j->who, sizeof(j->who), "%s", auth_identity_name(http_identity(r)));
    snprintf(j->peer, sizeof(j->peer), "%s", http_req_peer(r));
    if (!j->password) {
        user_finish(j, w);
        user_job_free(j);
        return;
    }
    if (!(j->later = http_respond_later(w))) {
        http_respond_error(w, WEIR_ENOMEM, NULL);
        user_job_free(j);
        return;
    }
    if (j->current) {
        /* Proves it is the user, not someone holding their session. A
         * wrong one counts as a failed login (back-off). */
        auth_credentials cr = {.door = AUTH_DOOR_HTTP,
                               .username = j->name,
                               .password = (const uint8_t *)j->current,
                               .password_len = strlen(j->current),
                               .peer = j->peer};
        auth_identity *id = NULL;
        int rc = auth_authenticate(api->auth, &cr, &id, user_current_checked, j);
        if (rc != WEIR_EAGAIN)
            user_current_checked(j, rc, id);
        return;
    }
    user_queue_hash(j);
}

static char *generate_password(void)
{
    uint8_t b[18];
    char *out = malloc(25);
    if (!out)
        return NULL;
    randombytes_buf(b, sizeof(b));
    sodium_bin2base64(out, 25, b, sizeof(b), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(b, sizeof(b));
    return out;
}

/* Validates and copies a password from JSON; error message or NULL. */
static const char *take_password(json_t *v, user_job *j)
{
    const char *pw = json_string_value(v);
    if (!pw)
        return "password must be a string";
    size_t n = strlen(pw);
    if (n < PASSWORD_MIN || n > PASSWORD_MAX)
        return "password must be 8 to 1024 bytes";
    if (!(j->password = strdup(pw)))
        return "out of memory";
    return NULL;
}

void http_route_users_create(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_t *b = json_loadb((const char *)body, n, 0, NULL);
    user_job *j = calloc(1, sizeof(*j));
    const char *err = NULL;
    if (!j) {
        json_decref(b);
        http_respond_error(w, WEIR_ENOMEM, NULL);
        return;
    }
    j->create = true;
    j->disabled = -1;
    const char *name = json_string_value(json_object_get(b, "name"));
    const char *role = json_string_value(json_object_get(b, "role"));
    const char *kind = json_string_value(json_object_get(b, "kind"));
    json_t *pw = json_object_get(b, "password");
    if (!kind)
        kind = role && !strcmp(role, "device") ? "device" : "user";
    if (!name || !auth_name_valid(name))
        err = "name must be 1 to 64 of [A-Za-z0-9_.@-]";
    else if (auth_role_parse(role) == AUTH_ROLE_NONE)
        err = "role must be admin, manager, operator, viewer, supplier or device";
    else if (strcmp(kind, "user") && strcmp(kind, "device"))
        err = "kind must be user or device";
    else if (pw && !json_is_null(pw))
        err = take_password(pw, j);
    else if (!(j->password = generate_password()))
        err = "out of memory";
    else
        j->generated = true;
    if (err) {
        json_decref(b);
        user_job_free(j);
        http_respond_error(w, WEIR_EINVAL, err);
        return;
    }
    snprintf(j->name, sizeof(j->name), "%s", name);
    snprintf(j->role, sizeof(j->role), "%s", role);
    snprintf(j->kind, sizeof(j->kind), "%s", kind);
    json_decref(b);
    user_run(api, r, w, j);
}

void http_route_user_update(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const char *name = http_req_param(r, 0);
    const auth_identity *me = http_identity(r);
    bool admin = auth_check(api->auth, me, AUTH_ADMIN, NULL, 0) == WEIR_OK;
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_t *b = json_loadb((const char *)body, n, 0, NULL);
    user_job *j = calloc(1, sizeof(*j));
    const char *err = NULL;
    int code = WEIR_EINVAL;
    if (!j || !b || !json_is_object(b)) {
        json_decref(b);
        free(j);
        http_respond_error(w, j ? WEIR_EINVAL : WEIR_ENOMEM, "body must be a JSON object");
        return;
    }
    j->disabled = -1;
    json_t *pw = json_object_get(b, "password");
    const char *role = json_string_value(json_object_get(b, "role"));
    json_t *dis = json_object_get(b, "disabled");
    bool self = name && !strcmp(name, auth_identity_name(me));
    if (!admin && (!self || role || dis)) {
        err = "only admins change other users, roles or the disabled flag";
        code = WEIR_EDENIED;
    } else if (role && auth_role_parse(role) == AUTH_ROLE_NONE) {
        err = "unknown role";
    } else if (dis && !json_is_boolean(dis)) {
        err = "disabled must be true or false";
    } else if (pw && !admin && !json_is_string(json_object_get(b, "current_password"))) {
        err = "changing your own password needs current_password";
    } else if (pw) {
        err = take_password(pw, j);
        if (!err && !admin &&
            !(j->current = strdup(json_string_value(json_object_get(b, "current_password")))))
            err = "out of memory";
    } else if (!role && !dis) {
        err = "nothing to change (password, role, disabled)";
    }
    if (err) {
        json_decref(b);
        user_job_free(j);
        http_respond_error(w, code, err);
        return;
    }
    snprintf(j->name, sizeof(j->name), "%s", name);
    if (role)
        snprintf(j->role, sizeof(j->role), "%s", role);
    if (dis)
        j->disabled = json_is_true(dis);
    json_decref(b);
    user_run(api, r, w, j);
}

void http_route_user_delete(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const char *name = http_req_param(r, 0);
    const auth_identity *me = http_identity(r);
    if (!strcmp(name, auth_identity_name(me))) {
        http_respond_error(w, WEIR_EINVAL, "you cannot delete yourself");
        return;
    }
    int rc = catalog_user_delete(api->catalog, name);
    if (rc) {
        http_respond_error(w, rc, rc == WEIR_ENOTFOUND ? "no such user" : NULL);
        return;
    }
    auth_session_end_user(api->auth, name);
    http_audit(api, r, "user.delete", name, true, NULL);
    changed(api);
    http_respond(w, 204, NULL, NULL, 0);
}

/* ---- Tokens ------------------------------------------------------------- */

typedef struct token_list {
    json_t *arr;
    const char *only; /* NULL: all */
} token_list;

static int add_token_json(void *arg, const catalog_token *t)
{
    token_list *l = arg;
    if (l->only && strcmp(l->only, t->user))
        return 0;
    long long now = (long long)time(NULL);
    json_array_append_new(
        l->arr, json_pack("{s:s, s:s, s:s, s:I, s:b, s:b, s:s}", "id", t->id, "user", t->user,
                          "description", t->description, "expires_at", (json_int_t)t->expires_at,
                          "revoked", t->revoked, "expired", t->expires_at && t->expires_at <= now,
                          "created_at", t->created_at));
    return 0;
}

void http_route_tokens_list(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const auth_identity *me = http_identity(r);
    bool admin = auth_check(api->auth, me, AUTH_ADMIN, NULL, 0) == WEIR_OK;
    token_list l = {json_array(), admin ? NULL : auth_identity_name(me)};
    int rc = catalog_token_list(api->catalog, add_token_json, &l);
    if (rc) {
        json_decref(l.arr);
        http_respond_error(w, rc, NULL);
        return;
    }
    http_respond_json(w, 200, json_pack("{s:o}", "tokens", l.arr));
}

void http_route_user_token_create(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const char *name = http_req_param(r, 0);
    const auth_identity *me = http_identity(r);
    bool admin = auth_check(api->auth, me, AUTH_ADMIN, NULL, 0) == WEIR_OK;
    if (!admin && strcmp(name, auth_identity_name(me))) {
        respond_status(w, 403, "EDENIED", "only admins create tokens for other users");
        return;
    }
    if (auth_identity_role(me) == AUTH_ROLE_ANONYMOUS && !admin) {
        respond_status(w, 403, "EDENIED", "anonymous clients have no tokens");
        return;
    }
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_t *b = n ? json_loadb((const char *)body, n, 0, NULL) : json_object();
    const char *desc = json_string_value(json_object_get(b, "description"));
    json_t *exp = json_object_get(b, "expires_in");
    long long expires_at = 0;
    if (exp) {
        long long s = json_integer_value(exp);
        if (!json_is_integer(exp) || s <= 0 || s > TOKEN_MAX_LIFETIME_S) {
            json_decref(b);
            http_respond_error(w, WEIR_EINVAL, "expires_in must be seconds, 1 to 10 years");
            return;
        }
        expires_at = (long long)time(NULL) + s;
    }
    char token[AUTH_TOKEN_LEN + 1], id[17], hash[65];
    auth_token_new(token, id, hash);
    int rc = catalog_token_add(api->catalog, id, name, hash, desc, expires_at);
    json_decref(b);
    if (rc) {
        sodium_memzero(token, sizeof(token));
        http_respond_error(w, rc == WEIR_EINVAL ? WEIR_ENOTFOUND : rc,
                           rc == WEIR_EINVAL ? "no such user" : NULL);
        return;
    }
    char detail[64];
    snprintf(detail, sizeof(detail), "id=%s expires_at=%lld", id, expires_at);
    http_audit(api, r, "token.create", name, true, detail);
    changed(api);
    http_resp_header(w, "Cache-Control", "no-store");
    http_respond_json(w, 201,
                      json_pack("{s:s, s:s, s:s, s:I}", "id", id, "user", name, "token", token,
                                "expires_at", (json_int_t)expires_at));
    sodium_memzero(token, sizeof(token));
}

typedef struct token_owner {
    const char *id;
    char user[AUTH_NAME_MAX + 1];
} token_owner;

static int find_owner(void *arg, const catalog_token *t)
{
    token_owner *o = arg;
    if (strcmp(o->id, t->id))
        return 0;
    snprintf(o->user, sizeof(o->user), "%s", t->user);
    return 1;
}

void http_route_token_revoke(http_request *r, http_response *w, void *ctx)
{
    http_api_ctx *api = ctx;
    const auth_identity *me = http_identity(r);
    bool admin = auth_check(api->auth, me, AUTH_ADMIN, NULL, 0) == WEIR_OK;
    token_owner o = {.id = http_req_param(r, 0)};
    catalog_token_list(api->catalog, find_owner, &o);
    if (!o.user[0] || (!admin && strcmp(o.user, auth_identity_name(me)))) {
        http_respond_error(w, WEIR_ENOTFOUND, "no such token");
        return;
    }
    int rc = catalog_token_revoke(api->catalog, o.id);
    if (rc) {
        http_respond_error(w, rc, NULL);
        return;
    }
    char detail[40];
    snprintf(detail, sizeof(detail), "id=%s", o.id);
    http_audit(api, r, "token.revoke", o.user, true, detail);
    changed(api);
    http_respond(w, 204, NULL, NULL, 0);
}

/* ---- Grants ------------------------------------------------------------- */

static int add_grant_json(void *arg, const catalog_grant *g)
{
    json_array_append_new(arg,
                          json_pack("{s:s, s:s, s:s, s:s, s:s}", "subject_kind", g->subject_kind,
                                    "subject", g->subject, "resource_kind", g->resource_kind,
                                    "pattern", g->pattern, "access", g->access));
    return 0;
}

void http_route_grants_list(http_request *r, http_response *w, void *ctx)
{
    (void)r;
    http_api_ctx *api = ctx;
    json_t *arr = json_array();
    int rc = catalog_grant_list(api->catalog, add_grant_json, arr);
    if (rc) {
        json_decref(arr);
        http_respond_error(w, rc, NULL);
        return;
    }
    http_respond_json(w, 200, json_pack("{s:o}", "grants", arr));
}

/* Reads and validates a grant from the body; message on error. */
static const char *grant_from(json_t *b, catalog_grant *g, bool need_access)
{
    g->subject_kind = json_string_value(json_object_get(b, "subject_kind"));
    g->subject = json_string_value(json_object_get(b, "subject"));
    g->resource_kind = json_string_value(json_object_get(b, "resource_kind"));
    g->pattern = json_string_value(json_object_get(b, "pattern"));
    g->access = json_string_value(json_object_get(b, "access"));
    if (!g->subject_kind || (strcmp(g->subject_kind, "role") && strcmp(g->subject_kind, "user")))
        return "subject_kind must be role or user";
    if (!g->subject || (!strcmp(g->subject_kind, "role") ? auth_role_parse(g->subject) == 0
                                                         : !auth_name_valid(g->subject)))
        return "subject must be a role name or a user name";
    if (!g->resource_kind ||
        (strcmp(g->resource_kind, "stream") && strcmp(g->resource_kind, "topic")))
        return "resource_kind must be stream or topic";
    if (!g->pattern || !*g->pattern || strlen(g->pattern) > 256)
        return "pattern must be 1 to 256 bytes";
    if (need_access && (!g->access || (strcmp(g->access, "read") && strcmp(g->access, "write") &&
                                       strcmp(g->access, "readwrite"))))
        return "access must be read, write or readwrite";
    return NULL;
}

static void grant_change(http_request *r, http_response *w, void *ctx, bool put)
{
    http_api_ctx *api = ctx;
    size_t n;
    const uint8_t *body = http_req_body(r, &n);
    json_t *b = json_loadb((const char *)body, n, 0, NULL);
    catalog_grant g;
    const char *err = grant_from(b, &g, put);
    if (err) {
        json_decref(b);
        http_respond_error(w, WEIR_EINVAL, err);
        return;
    }
    int rc = put ? catalog_grant_put(api->catalog, &g) : catalog_grant_delete(api->catalog, &g);
    if (rc) {
        json_decref(b);
        http_respond_error(w, rc, rc == WEIR_ENOTFOUND ? "no such grant" : NULL);
        return;
    }
    char target[300], detail[300];
    snprintf(target, sizeof(target), "%s:%s", g.subject_kind, g.subject);
    snprintf(detail, sizeof(detail), "%s %s %s", g.resource_kind, g.pattern, put ? g.access : "");
    http_audit(api, r, put ? "grant.put" : "grant.delete", target, true, detail);
    json_decref(b);
    changed(api);
    http_respond_json(w, put ? 201 : 200, json_pack("{s:b}", "ok", 1));
}

void http_route_grants_put(http_request *r, http_response *w, void *ctx)
{
    grant_change(r, w, ctx, true);
}

void http_route_grants_delete(http_request *r, http_response *w, void *ctx)
{
    grant_change(r, w, ctx, false);
}
