/* fuzz_auth_cookie.c -- the Cookie header and the session behind it: the
 * cookie parser (auth_cookie_get) on arbitrary headers, then the session
 * lookup and the CSRF comparison. The input starts with a control byte:
 * bit 0 splices the real session id into the header. Checks: no crash or
 * leak, the parsed value lies inside the header, and only the real id
 * finds the session. */
#include "auth_fixture.h"

#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static auth *a;
    static char sid[AUTH_SESSION_ID_LEN + 1], csrf[AUTH_CSRF_LEN + 1];
    if (!a) {
        a = fixture_auth(false);
        auth_identity *fz = auth_identity_for(a, "fz", NULL);
        if (!fz || auth_session_new(a, fz, sid, csrf))
            abort();
        auth_identity_unref(fz);
    }
    if (!size)
        return 0;
    uint8_t ctl = data[0];
    char hdr[2048];
    size_t n = size - 1 < 1024 ? size - 1 : 1024;
    memcpy(hdr, data + 1, n);
    hdr[n] = '\0';
    if (ctl & 1) {
        size_t used = strlen(hdr);
        snprintf(hdr + used, sizeof(hdr) - used, "; weir_session=%s", sid);
    }
    char val[AUTH_SESSION_ID_LEN + 2];
    if (!auth_cookie_get(hdr, "weir_session", val, sizeof(val)))
        return 0;
    if (strlen(val) >= sizeof(val))
        abort();
    char got[AUTH_CSRF_LEN + 1];
    auth_identity *who = auth_session_get(a, val, got);
    if (who) {
        if (strcmp(val, sid) != 0 || strcmp(got, csrf) != 0)
            abort();
        if (!auth_secret_equal(got, csrf) || auth_secret_equal(hdr, csrf))
            abort();
    }
    auth_identity_unref(who);
    return 0;
}
