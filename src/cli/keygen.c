/* keygen.c -- `weir keygen FILE`: writes a new random 32-byte key for
 * encryption at rest ([storage] encryption_key_file), mode 0600, never
 * overwriting a file (losing a key loses the data it encrypted). */
#include "base/err.h"
#include "base/secret.h"
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

int cli_keygen(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: weir keygen FILE\n\n"
                "Writes 32 random bytes to FILE (created with mode 0600; an existing file is "
                "never overwritten)\nfor [storage] encryption_key_file. Keep a copy somewhere "
                "other than the data's backups:\nwithout it the encrypted data cannot be read.\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    char err[512];
    if (secret_key_generate(argv[1], err, sizeof(err))) {
        fprintf(stderr, "weir keygen: %s\n", err);
        return 1;
    }
    printf("wrote a new key to %s\n", argv[1]);
    return 0;
}
