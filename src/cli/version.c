/* version.c -- `weir version`: the version and the libraries it runs on. */
#include "cli/cli.h"

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <uv.h>

int cli_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("weir %s\n", WEIR_VERSION);
    printf("  libuv %s, libwebsockets %s, %s, SQLite %s, jansson %s\n", uv_version_string(),
           lws_get_library_version(), OpenSSL_version(OPENSSL_VERSION), sqlite3_libversion(),
           JANSSON_VERSION);
    return 0;
}
