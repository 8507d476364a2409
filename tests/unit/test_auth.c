/* test_auth.c -- users in the catalog (schema v4), authentication without a
 * loop (argon2id answered at once), the roles x actions table of
 * auth_check, grants with %u and %c, tokens, sessions, back-off and the
 * header parsers the HTTP door uses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "auth/audit.h"
#include "auth/auth.h"
#include "base/err.h"
#include "catalog/catalog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char dir[256];

typedef struct fix {
    catalog *cat;
    auth *a;
    audit *au;
    int audited;
    char last_action[64];
} fix;

static void sink(void *ctx, const char *json, size_t len)
{
    fix *f = ctx;
    (void)len;
    f->audited++;
    const char *p = strstr(json, "\"action\":\"");
    if (p) {
        p += 10;
        size_t n = strcspn(p, "\"");
        snprintf(f->last_action, sizeof(f->last_action), "%.*s", (int)n, p);
    }
}

static void add_user(catalog *c, const char *name, const char *role, const char *pw)
{
    char hash[128];
    assert_int_equal(auth_password_hash(pw, strlen(pw), hash), WEIR_OK);
    assert_memory_equal(hash, "$argon2id$", 10);
    assert_int_equal(
        catalog_user_add(c, name, !strcmp(role, "device") ? "device" : "user", role, hash),
        WEIR_OK);
}

static int setup(void **state)
{
    snprintf(dir, sizeof(dir), "/tmp/weir-auth-XXXXXX");
    assert_non_null(mkdtemp(dir));
    fix *f = calloc(1, sizeof(*f));
    assert_int_equal(catalog_open(dir, &f->cat), WEIR_OK);
    assert_true(catalog_schema_version(f->cat) >= 4);
    add_user(f->cat, "ada", "admin", "ada-password");
    add_user(f->cat, "vic", "viewer", "vic-password");
    add_user(f->cat, "dev", "device", "dev-password");
    add_user(f->cat, "ops", "operator", "ops-password");
    catalog_grant g = {"role", "viewer", "stream", "plant1", "read"};
    assert_int_equal(catalog_grant_put(f->cat, &g), WEIR_OK);
    catalog_grant t = {"user", "vic", "topic", "plant1/%u/#", "read"};
    assert_int_equal(catalog_grant_put(f->cat, &t), WEIR_OK);
    catalog_grant c = {"user", "dev", "topic", "clients/%c/#", "readwrite"};
    assert_int_equal(catalog_grant_put(f->cat, &c), WEIR_OK);
    f->a = auth_new("secret/#", false);
    assert_non_null(f->a);
    assert_int_equal(auth_reload(f->a, f->cat), WEIR_OK);
    f->au = audit_new(sink, f);
    auth_set_audit(f->a, f->au);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fix *f = *state;
    auth_free(f->a);
    audit_free(f->au);
    catalog_close(f->cat);
    free(f);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    return system(cmd);
}

static auth_identity *login(fix *f, const char *user, const char *pw, const char *client_id,
                            int *rc)
{
    auth_credentials cr = {.door = AUTH_DOOR_MQTT,
                           .username = user,
                           .password = (const uint8_t *)pw,
                           .password_len = pw ? strlen(pw) : 0,
                           .client_id = client_id,
                           .peer = "10.1.2.3:4000"};
    auth_identity *id = NULL;
    *rc = auth_authenticate(f->a, &cr, &id, NULL, NULL);
    return id;
}

static void test_passwords(void **state)
{
    fix *f = *state;
    int rc;
    auth_identity *id = login(f, "ada", "ada-password", "c1", &rc);
    assert_int_equal(rc, WEIR_OK);
    assert_string_equal(auth_identity_name(id), "ada");
    assert_int_equal(auth_identity_role(id), AUTH_ROLE_ADMIN);
    assert_string_equal(f->last_action, "login");
    auth_identity_unref(id);
    assert_null(login(f, "ada", "wrong-password", "c1", &rc));
    assert_int_equal(rc, WEIR_EAUTH);
    assert_string_equal(f->last_action, "login.failed");
    assert_null(login(f, "nobody", "whatever-pw", "c1", &rc));
    assert_int_equal(rc, WEIR_EAUTH);
    /* No credentials: anonymous is off. */
    assert_null(login(f, NULL, NULL, "c1", &rc));
    assert_int_equal(rc, WEIR_EDENIED);
    /* The cache answers a repeated success. */
    id = login(f, "ada", "ada-password", "c1", &rc);
    assert_non_null(id);
    assert_true(auth_get_stats(f->a)->cache_hits >= 1);
    auth_identity_unref(id);
}

static void test_anonymous_loopback_only(void **state)
{
    (void)state;
    auth *a = auth_new(NULL, true);
    auth_identity *id = NULL;
    auth_credentials cr = {.peer = "127.0.0.1:5", .loopback = true};
    assert_int_equal(auth_authenticate(a, &cr, &id, NULL, NULL), WEIR_OK);
    assert_int_equal(auth_identity_role(id), AUTH_ROLE_ANONYMOUS);
    assert_int_equal(auth_check(a, id, AUTH_ADMIN, NULL, 0), WEIR_OK);
    assert_int_equal(auth_check(a, id, AUTH_STREAM_WRITE, "$audit", 6), WEIR_EDENIED);
    auth_identity_unref(id);
    cr.loopback = false;
    cr.peer = "192.168.1.9:5";
    assert_int_equal(auth_authenticate(a, &cr, &id, NULL, NULL), WEIR_EDENIED);
    auth_free(a);
}

#define T(s) (s), strlen(s)

static void test_roles_and_grants(void **state)
{
    fix *f = *state;
    int rc;
    auth *a = f->a;
    auth_identity *vic = auth_identity_for(a, "vic", "vc");
    auth_identity *ops = auth_identity_for(a, "ops", "oc");
    auth_identity *ada = auth_identity_for(a, "ada", "ac");
    auth_identity *dev = login(f, "dev", "dev-password", "dev-01", &rc);
    assert_non_null(vic);
    assert_non_null(dev);
    /* Streams. */
    assert_int_equal(auth_check(a, vic, AUTH_STREAM_READ, T("plant1")), WEIR_OK);
    assert_int_equal(auth_check(a, vic, AUTH_STREAM_READ, T("plant2")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, vic, AUTH_STREAM_WRITE, T("plant1")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, ops, AUTH_STREAM_READ, T("plant2")), WEIR_OK);
    assert_int_equal(auth_check(a, ops, AUTH_STREAM_MANAGE, NULL, 0), WEIR_EDENIED);
    assert_int_equal(auth_check(a, ops, AUTH_RULE_CONTROL, NULL, 0), WEIR_OK);
    assert_int_equal(auth_check(a, ops, AUTH_RULE_MANAGE, NULL, 0), WEIR_EDENIED);
    assert_int_equal(auth_check(a, ops, AUTH_STREAM_READ, T("$audit")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, ada, AUTH_STREAM_READ, T("$audit")), WEIR_OK);
    assert_int_equal(auth_check(a, NULL, AUTH_ANY, NULL, 0), WEIR_EDENIED);
    assert_int_equal(auth_check(a, NULL, AUTH_PUBLIC, NULL, 0), WEIR_OK);
    /* Topics: %u for the viewer, defaults and %c for the device. */
    assert_int_equal(auth_check(a, vic, AUTH_SUBSCRIBE, T("plant1/vic/#")), WEIR_OK);
    assert_int_equal(auth_check(a, vic, AUTH_SUBSCRIBE, T("plant1/vic/+/t")), WEIR_OK);
    assert_int_equal(auth_check(a, vic, AUTH_SUBSCRIBE, T("$share/g/plant1/vic/x")), WEIR_OK);
    assert_int_equal(auth_check(a, vic, AUTH_SUBSCRIBE, T("plant1/+/#")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, vic, AUTH_PUBLISH, T("plant1/vic/x")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, dev, AUTH_PUBLISH, T("devices/dev/temp")), WEIR_OK);
    assert_int_equal(auth_check(a, dev, AUTH_PUBLISH, T("devices/other/temp")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, dev, AUTH_SUBSCRIBE, T("devices/dev/cmd/#")), WEIR_OK);
    assert_int_equal(auth_check(a, dev, AUTH_SUBSCRIBE, T("devices/dev/#")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, dev, AUTH_PUBLISH, T("clients/dev-01/x")), WEIR_OK);
    assert_int_equal(auth_check(a, dev, AUTH_PUBLISH, T("clients/dev-02/x")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, dev, AUTH_METRICS, NULL, 0), WEIR_EDENIED);
    /* The deny list binds admins too. */
    assert_int_equal(auth_check(a, ada, AUTH_PUBLISH, T("secret/x")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, ada, AUTH_SUBSCRIBE, T("secret/+")), WEIR_EDENIED);
    assert_int_equal(auth_check(a, ada, AUTH_SUBSCRIBE, T("#")), WEIR_OK);
    assert_true(auth_get_stats(a)->denied[AUTH_PUBLISH] >= 3);
    auth_identity_unref(dev);
    /* A client id with wildcards must not widen "clients/%c/#". */
    dev = login(f, "dev", "dev-password", "a/#", &rc);
    assert_non_null(dev);
    assert_int_equal(auth_check(a, dev, AUTH_PUBLISH, T("clients/a/x")), WEIR_EDENIED);
    auth_identity_unref(dev);
    auth_identity_unref(vic);
    auth_identity_unref(ops);
    auth_identity_unref(ada);
}

static void test_tokens(void **state)
{
    fix *f = *state;
    char token[AUTH_TOKEN_LEN + 1], id[17], hash[65], id2[17], hash2[65];
    auth_token_new(token, id, hash);
    assert_int_equal(strlen(token), AUTH_TOKEN_LEN);
    assert_int_equal(auth_token_parse((const uint8_t *)token, strlen(token), id2, hash2), WEIR_OK);
    assert_string_equal(id, id2);
    assert_string_equal(hash, hash2);
    assert_null(strstr(hash, token + 20)); /* only the hash is kept */
    assert_int_equal(auth_token_parse((const uint8_t *)"wt_x", 4, id2, hash2), WEIR_EMALFORMED);
    assert_int_equal(catalog_token_add(f->cat, id, "vic", hash, "t", 0), WEIR_OK);
    assert_int_equal(auth_reload(f->a, f->cat), WEIR_OK);
    auth_identity *who = NULL;
    assert_int_equal(auth_token_identity(f->a, token, strlen(token), "1.2.3.4:5", &who), WEIR_OK);
    assert_string_equal(auth_identity_name(who), "vic");
    assert_int_equal(auth_identity_method(who), AUTH_BY_TOKEN);
    assert_true(auth_identity_current(f->a, who));
    /* Revoked: refused at once, and the identity is no longer current. */
    assert_int_equal(catalog_token_revoke(f->cat, id), WEIR_OK);
    assert_int_equal(auth_reload(f->a, f->cat), WEIR_OK);
    assert_false(auth_identity_current(f->a, who));
    auth_identity_unref(who);
    assert_int_equal(auth_token_identity(f->a, token, strlen(token), "1.2.3.4:5", &who),
                     WEIR_EAUTH);
    /* Expired. */
    auth_token_new(token, id, hash);
    assert_int_equal(catalog_token_add(f->cat, id, "vic", hash, "", (long long)time(NULL) - 1),
                     WEIR_OK);
    assert_int_equal(auth_reload(f->a, f->cat), WEIR_OK);
    assert_int_equal(auth_token_identity(f->a, token, strlen(token), "1.2.3.4:5", &who),
                     WEIR_EAUTH);
}

static void test_backoff(void **state)
{
    fix *f = *state;
    int rc;
    for (int i = 0; i < AUTH_BACKOFF_AFTER; i++) {
        assert_null(login(f, "vic", "bad-password", "c", &rc));
        assert_int_equal(rc, WEIR_EAUTH);
    }
    assert_null(login(f, "vic", "vic-password", "c", &rc));
    assert_int_equal(rc, WEIR_EBUSY);
    assert_int_equal(auth_get_stats(f->a)->backoff_refused[AUTH_DOOR_MQTT], 1);
}

static void test_sessions(void **state)
{
    fix *f = *state;
    auth_identity *ada = auth_identity_for(f->a, "ada", NULL);
    char cookie[AUTH_SESSION_ID_LEN + 1], csrf[AUTH_CSRF_LEN + 1], csrf2[AUTH_CSRF_LEN + 1];
    assert_int_equal(auth_session_new(f->a, ada, cookie, csrf), WEIR_OK);
    auth_identity_unref(ada);
    auth_identity *s = auth_session_get(f->a, cookie, csrf2);
    assert_non_null(s);
    assert_string_equal(csrf, csrf2);
    auth_identity_unref(s);
    assert_null(auth_session_get(f->a, "nope", NULL));
    auth_session_end_user(f->a, "ada");
    assert_null(auth_session_get(f->a, cookie, NULL));
}

static void test_parsers(void **state)
{
    (void)state;
    char v[64];
    assert_true(auth_cookie_get("a=1; weir_session=abc; b=2", "weir_session", v, sizeof(v)));
    assert_string_equal(v, "abc");
    assert_true(auth_cookie_get("weir_session=\"q\"", "weir_session", v, sizeof(v)));
    assert_string_equal(v, "q");
    assert_false(auth_cookie_get("xweir_session=abc", "weir_session", v, sizeof(v)));
    assert_false(auth_cookie_get("", "weir_session", v, sizeof(v)));
    assert_false(auth_cookie_get("weir_session=0123456789", "weir_session", v, 4));
    size_t n;
    const char *t = auth_bearer("Bearer  wt_abc ", &n);
    assert_non_null(t);
    assert_int_equal(n, 6);
    assert_non_null(auth_bearer("bearer x", &n));
    assert_null(auth_bearer("Basic eA==", &n));
    assert_null(auth_bearer("Bearer", &n));
    assert_null(auth_bearer("Bearer   ", &n));
    assert_true(auth_name_valid("a.b-c_d@e"));
    assert_false(auth_name_valid("a/b"));
    assert_false(auth_name_valid("a+"));
    assert_false(auth_name_valid(""));
    assert_int_equal(auth_role_parse("viewer"), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_role_parse("anonymous"), AUTH_ROLE_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_passwords, setup, teardown),
        cmocka_unit_test(test_anonymous_loopback_only),
        cmocka_unit_test_setup_teardown(test_roles_and_grants, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tokens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions, setup, teardown),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
