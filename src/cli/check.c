/* check.c -- `weir check DIR`: verifies a data directory offline and
 * reports what it found, changing nothing: every stream segment and index
 * (CRC of every batch, offset continuity), the MQTT snapshot (its record
 * checksums) and the catalog (SQLite's integrity check). Exit status 0 when
 * clean, 1 when anything is damaged, 2 on usage errors. Run it on a stopped
 * node; a running node's files may be mid-write. */
#include "base/err.h"
#include "base/fileio.h"
#include "base/secret.h"
#include "auth/auth.h"
#include "cli/cli.h"
#include "mqtt/broker.h"
#include "stream/store.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void print_line(void *arg, const char *line)
{
    (void)arg;
    printf("  %s\n", line);
}

static int check_catalog(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/catalog.db", dir);
    struct stat st;
    if (stat(path, &st)) {
        printf("catalog: none\n");
        return 0;
    }
    sqlite3 *db = NULL;
    int problems = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        printf("catalog: cannot open %s: %s\n", path, db ? sqlite3_errmsg(db) : "?");
        sqlite3_close(db);
        return 1;
    }
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL) == SQLITE_OK) {
        while (sqlite3_step(q) == SQLITE_ROW) {
            const char *r = (const char *)sqlite3_column_text(q, 0);
            if (r && strcmp(r, "ok")) {
                printf("  catalog: %s\n", r);
                problems++;
            }
        }
    } else {
        printf("  catalog: %s\n", sqlite3_errmsg(db));
        problems++;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    printf("catalog: %s\n", problems ? "DAMAGED" : "ok");
    return problems;
}

static int check_snapshot(const char *dir, const secret_key *master)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/mqtt.snapshot", dir);
    uint8_t *data = NULL;
    size_t len = 0;
    int rc = fileio_read_all(path, 4ull << 30, &data, &len);
    if (rc == WEIR_ENOTFOUND) {
        printf("mqtt snapshot: none\n");
        return 0;
    }
    if (rc) {
        printf("mqtt snapshot: cannot read %s: %s\n", path, weir_strerror(rc));
        return 1;
    }
    if (secret_file_sealed(data, len)) {
        secret_key *k = NULL;
        uint8_t *plain = NULL;
        size_t plen = 0;
        rc = master ? secret_key_derive(master, SECRET_PURPOSE_SNAPSHOT, &k) : WEIR_EAUTH;
        if (!rc)
            rc = secret_file_open(k, data, len, &plain, &plen);
        secret_key_free(k);
        free(data);
        if (rc) {
            printf("mqtt snapshot: encrypted; %s\n",
                   master ? "cannot decrypt it: wrong key or damaged" : "not verified (no --key)");
            return master ? 1 : 0;
        }
        data = plain;
        len = plen;
    }
    /* Generous limits: the check must read whatever a node may have written. */
    mqtt_broker_config bc = {.max_packet_size = 268435455, .max_connections = 1,
                             .receive_maximum = 65535, .max_queued_messages = UINT32_MAX,
                             .max_queued_bytes = UINT64_MAX, .max_outbuf = 1,
                             .max_keepalive = 65535, .max_session_expiry = UINT32_MAX,
                             .topic_alias_maximum = 0, .max_subscriptions = UINT32_MAX,
                             .retain_available = true};
    auth *a = auth_new(NULL, false);
    mqtt_broker *b = a ? mqtt_broker_new(&bc, a) : NULL;
    rc = b ? mqtt_broker_restore(b, data, len) : WEIR_ENOMEM;
    mqtt_gauges g = {0};
    if (b)
        mqtt_broker_gauges(b, &g);
    printf("mqtt snapshot: %s (%llu retained, %llu sessions, %llu queued messages)\n",
           rc ? "DAMAGED" : "ok", (unsigned long long)g.retained,
           (unsigned long long)g.sessions, (unsigned long long)g.queued_messages);
    mqtt_broker_free(b);
    auth_free(a);
    free(data);
    return rc ? 1 : 0;
}

int cli_check(int argc, char **argv)
{
    const char *keyfile = NULL;
    if (argc == 4 && !strcmp(argv[1], "--key")) {
        keyfile = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: weir check [--key KEYFILE] DIR\n\n"
                "Verifies a stopped node's data directory and reports damage; changes "
                "nothing.\nWith --key (the [storage] encryption_key_file), encrypted data "
                "is decrypted and verified too.\n");
        return argc == 2 && !strcmp(argv[1], "--help") ? 0 : 2;
    }
    const char *dir = argv[1];
    secret_key *key = NULL;
    if (keyfile) {
        char err[512];
        if (secret_key_load(keyfile, &key, err, sizeof(err))) {
            fprintf(stderr, "weir check: %s\n", err);
            return 2;
        }
    }
    char streams[4200];
    snprintf(streams, sizeof(streams), "%s/streams", dir);
    int problems = 0;
    struct stat st;
    if (!stat(streams, &st)) {
        printf("streams: %s\n", streams);
        int n = stream_check_dir_key(streams, key, print_line, NULL);
        if (n < 0) {
            printf("streams: cannot read: %s\n", weir_strerror(n));
            problems++;
        } else {
            printf("streams: %s (%d problem%s)\n", n ? "DAMAGED" : "ok", n, n == 1 ? "" : "s");
            problems += n;
        }
    } else {
        printf("streams: none\n");
    }
    problems += check_snapshot(dir, key);
    secret_key_free(key);
    problems += check_catalog(dir);
    printf("%s\n", problems ? "result: problems found" : "result: clean");
    return problems ? 1 : 0;
}
