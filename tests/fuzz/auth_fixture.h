/* auth_fixture.h -- the users the auth fuzz targets authenticate against:
 * a catalog in a temporary directory (removed at exit) with an admin "fz"
 * (password "fz-password"), a device "dv" (password "dv-password", grant
 * "clients/%c/#" readwrite) and one token of "fz" (fixture_token), all
 * hashed at the cheapest argon2id cost so that each input runs fast. */
#ifndef WEIR_FUZZ_AUTH_FIXTURE_H
#define WEIR_FUZZ_AUTH_FIXTURE_H

#include "auth/auth.h"
#include "catalog/catalog.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fixture_dir[64];
static char fixture_token[AUTH_TOKEN_LEN + 1];
static catalog *fixture_cat;

static void fixture_cleanup(void)
{
    char cmd[128];
    catalog_close(fixture_cat);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fixture_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fixture_dir);
}

static void fixture_user(const char *name, const char *role, const char *pw)
{
    char hash[128];
    if (auth_password_hash_cost(pw, strlen(pw), hash, crypto_pwhash_OPSLIMIT_MIN,
                                crypto_pwhash_MEMLIMIT_MIN) ||
        catalog_user_add(fixture_cat, name, "user", role, hash))
        abort();
}

/* A fresh policy over the fixture's users (the catalog is made once). */
static auth *fixture_auth(bool anonymous)
{
    if (!fixture_cat) {
        snprintf(fixture_dir, sizeof(fixture_dir), "/tmp/weir-fuzz-auth-XXXXXX");
        if (!mkdtemp(fixture_dir) || catalog_open(fixture_dir, &fixture_cat))
            abort();
        atexit(fixture_cleanup);
        fixture_user("fz", "admin", "fz-password");
        fixture_user("dv", "device", "dv-password");
        catalog_grant g = {"user", "dv", "topic", "clients/%c/#", "readwrite"};
        char id[17], hash[65];
        auth_token_new(fixture_token, id, hash);
        if (catalog_grant_put(fixture_cat, &g) ||
            catalog_token_add(fixture_cat, id, "fz", hash, "fuzz", 0))
            abort();
    }
    auth *a = auth_new("secret/#", anonymous);
    if (!a || auth_reload(a, fixture_cat))
        abort();
    auth_set_hash_cost(a, crypto_pwhash_OPSLIMIT_MIN, crypto_pwhash_MEMLIMIT_MIN);
    return a;
}

#endif
