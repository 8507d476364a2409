/* fuzz_auth_header.c -- the Authorization header of the HTTP door: the
 * Bearer scheme parser, the token parser, and the lookup of the token
 * against real users (auth_token_identity). Sometimes the real token is
 * spliced in so the success path runs. Checks: no crash or leak, and only
 * the real token is ever accepted. */
#include "auth_fixture.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static auth *a;
    if (!a)
        a = fixture_auth(false);
    char hdr[1024];
    size_t n = size < sizeof(hdr) - 1 ? size : sizeof(hdr) - 1;
    memcpy(hdr, data, n);
    hdr[n] = '\0';
    if (n && hdr[0] == '!') /* "Bearer <real token>" */
        snprintf(hdr, sizeof(hdr), "Bearer %s", fixture_token);
    size_t tn = 0;
    const char *tok = auth_bearer(hdr, &tn);
    if (!tok)
        return 0;
    if (tok < hdr || tok + tn > hdr + strlen(hdr))
        abort();
    char id[17], hash[65];
    int prc = auth_token_parse((const uint8_t *)tok, tn, id, hash);
    auth_identity *who = NULL;
    int rc = auth_token_identity(a, tok, tn, "10.0.0.1:1", &who);
    if (rc == 0) {
        if (prc != 0 || tn != AUTH_TOKEN_LEN || memcmp(tok, fixture_token, tn) != 0)
            abort(); /* accepted something other than the real token */
        if (auth_check(a, who, AUTH_ADMIN, NULL, 0) != 0)
            abort();
    }
    auth_identity_unref(who);
    return 0;
}
