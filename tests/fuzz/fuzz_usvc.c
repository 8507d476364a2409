/* fuzz_usvc.c -- libFuzzer target for the μ-service installation parser
 * (src/http/usvc_template.h) and the peers list (src/http/peer_client.h).
 *
 * The input is a JSON installation object as a client would POST it to
 * /api/install. Whatever it contains, the translation either fails with a
 * documented error code and a message, or yields a CREATE RULE statement
 * that the SQL front end parses (so quoting never lets a field escape into
 * the statement), named after a valid jobId, with stream definitions that
 * carry a name and an mqtt: source. The same bytes are also read as a
 * node.peers list and as jobinfo / endpoint text.
 *
 * Seeds: tests/fuzz/corpus/fuzz_usvc/ (one installation per job type).
 */
#include "base/arena.h"
#include "base/err.h"
#include "http/peer_client.h"
#include "http/usvc_template.h"
#include "sql/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_usvc: check failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static arena a;
    static bool init;
    if (!init) {
        arena_init(&a, 16 << 20);
        init = true;
    }
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    /* As a peers list and as endpoints: no crash, sane results. */
    char url[PEER_URL_MAX], err[256];
    int rc = peer_lookup(text, "core", url, sizeof(url));
    check(rc == WEIR_OK || rc == WEIR_ENOTFOUND || rc == WEIR_EINVAL, "peer_lookup code");
    if (rc == WEIR_OK)
        check(!strncmp(url, "http://", 7) || !strncmp(url, "https://", 8), "peer URL scheme");
    usvc_endpoint ep;
    rc = usvc_endpoint_parse(text, true, &ep, err, sizeof(err));
    check(rc == WEIR_OK || rc == WEIR_EINVAL || rc == WEIR_EUNSUPPORTED, "endpoint code");

    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if (j) {
        char id[USVC_JOB_ID_MAX + 1];
        rc = usvc_jobinfo_id(j, id, sizeof(id), err, sizeof(err));
        check(rc == WEIR_OK ? usvc_job_id_valid(id) : rc == WEIR_EINVAL, "jobinfo id");
        usvc_job job;
        err[0] = '\0';
        rc = usvc_template_build(j, "fuzz-id", &job, err, sizeof(err));
        if (rc == WEIR_OK) {
            check(usvc_job_id_valid(job.job_id), "job id valid");
            check(!strncmp(job.rule, "usvc_", 5), "rule name");
            sql_stmt *st = NULL;
            sql_error se;
            arena_reset(&a);
            rc = sql_parse(job.sql, strlen(job.sql), &a, &st, &se);
            if (rc != WEIR_OK)
                fprintf(stderr, "statement does not parse: %s\n%s\n", se.msg, job.sql);
            check(rc == WEIR_OK, "the statement parses");
            check(st->kind == SQL_STMT_CREATE_RULE, "a CREATE RULE");
            size_t i;
            json_t *def;
            json_array_foreach(job.streams, i, def)
            {
                const char *src = json_string_value(json_object_get(def, "source"));
                check(json_string_value(json_object_get(def, "name")) != NULL, "stream name");
                check(src && !strncmp(src, "mqtt:", 5), "stream source");
            }
            usvc_job_free(&job);
        } else {
            check(rc == WEIR_EINVAL || rc == WEIR_EUNSUPPORTED || rc == WEIR_ENOMEM,
                  "documented error");
            check(err[0] != '\0', "an error message");
        }
        json_decref(j);
    }
    free(text);
    return 0;
}
