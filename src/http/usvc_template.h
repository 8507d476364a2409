/* usvc_template.h -- the rule templates of the μ-service API: a JSON
 * installation object in, a CREATE RULE statement out. Pure: no I/O, no
 * clock, no randomness (the caller supplies a job id when the installation
 * has none), so every translation is unit-tested and fuzzed.
 *
 * The shapes are those of the μ-service proxy of the IoT stream-processing
 * literature (installation, jobinfo and relocation objects); weir keeps
 * their field names and casing and documents where it had to choose
 * (docs/api.md, "Rule templates"):
 *
 *   {"headers":   {"runtime": "edge", "targetResource": "...", "jobType": "single-filter",
 *                  "jobId": "optional"},
 *    "jobConfig": {"connectors": {"inputEndpoint": "mqtt://host:1883/plant/+/temp",
 *                                 "outputEndpoint": "mqtt://host:1883/alerts/temp"},
 *                  "jobProps": {"condition": ">", "threshold": 30,
 *                               "fieldName": "temperature", "fieldJsonPath": "$.temperature"}}}
 *
 * Why a template becomes SQL text rather than a compiled rule: the rule
 * runtime stores a rule as its CREATE RULE text, so a template rule is an
 * ordinary rule (listed under /api/v1/rules, metrics, checkpoints), and the
 * installation object travels with it in the rule's options so that the
 * jobinfo can be rebuilt from the rule alone and the same installation
 * re-applied on another node (move).
 *
 * Every name that comes from the client reaches the SQL text only quoted
 * ("ident", 'literal', with the quote doubled), so an installation cannot
 * inject SQL: a template yields exactly the statement shape below or an
 * error.
 *
 *   single-filter     SELECT * [, <path> AS name] FROM in WHERE <value> <op> <threshold>
 *   sum-aggregation   SELECT [g,] sum(<value>) AS name_sum, count(*) AS "count" FROM in
 *   avg-aggregation     GROUP BY [g,] TUMBLING(size) | HOPPING(SIZE size, ADVANCE slide)
 *                       [HAVING name_x <op> <threshold>]
 *   single-join       SELECT l.key, <left> AS .., <right> AS .. FROM in AS l
 *                       JOIN in2 AS r ON l.k = r.k WITHIN size
 */
#ifndef WEIR_HTTP_USVC_TEMPLATE_H
#define WEIR_HTTP_USVC_TEMPLATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define USVC_JOB_ID_MAX 64  /* characters of a jobId: [A-Za-z0-9_-] */
#define USVC_NAME_MAX 96    /* rule and stream names derived from it */
#define USVC_TOPIC_MAX 1024 /* an MQTT topic (filter) of an endpoint */
#define USVC_MAX_INPUTS 2

/* jobStatus values of the paper; FAILED is weir's addition for a rule the
 * runtime failed (its error is in /api/v1/rules/{configFileName}). */
#define USVC_INSTALLED "INSTALLED"
#define USVC_RUNNING "RUNNING"
#define USVC_STOPPED "STOPPED"
#define USVC_UNINSTALLED "UNINSTALLED"
#define USVC_FAILED "FAILED"

/* A connector endpoint: an MQTT topic on the broker of the node that runs
 * the rule, or a weir stream. */
typedef enum { USVC_EP_MQTT, USVC_EP_STREAM } usvc_ep_kind;

typedef struct usvc_endpoint {
    usvc_ep_kind kind;
    char name[USVC_TOPIC_MAX]; /* the topic (filter), or the stream name */
} usvc_endpoint;

/* "mqtt://host[:port]/a/b", "mqtt:a/b" or "stream:name". input: the topic
 * may be a filter (+, #); an output topic may not. WEIR_EINVAL with a
 * sentence in err. */
int usvc_endpoint_parse(const char *s, bool input, usvc_endpoint *out, char *err, size_t errlen);

/* What an installation becomes. */
typedef struct usvc_job {
    char job_id[USVC_JOB_ID_MAX + 1];
    char job_type[32];
    char runtime[128];        /* headers.runtime as given; "" when absent */
    char rule[USVC_NAME_MAX]; /* usvc_<jobId, '-' as '_'>: the rule and configFileName */
    char *sql;                /* the CREATE RULE statement (owned) */
    /* Ingest streams to define before the rule (one per MQTT input), as
     * ingest definitions: [{"name", "source": "mqtt:<topic>", "format": "json", ...}]. */
    json_t *streams;
    /* The installation with headers.jobId set: what the rule's options keep
     * (under "usvc") and what a move sends to the target node. */
    json_t *installation;
} usvc_job;

/* Translates an installation object. job_id: used when the installation
 * has no headers.jobId (NULL then makes a missing jobId an error). Returns
 * WEIR_OK, or WEIR_EINVAL (unknown jobType, bad condition, missing or
 * mistyped field, bad endpoint; err says which field), WEIR_EUNSUPPORTED
 * (an endpoint scheme weir does not speak) or WEIR_ENOMEM. On error *out
 * holds nothing to free. */
int usvc_template_build(const json_t *installation, const char *job_id, usvc_job *out,
                        char *err, size_t errlen);
void usvc_job_free(usvc_job *j);

/* true for 1..USVC_JOB_ID_MAX of [A-Za-z0-9_-]. */
bool usvc_job_id_valid(const char *id);
/* The rule name of a job: "usvc_" + id with '-' as '_'. WEIR_EINVAL for an
 * invalid id. */
int usvc_rule_name(const char *job_id, char *out, size_t n);

/* The jobinfo object, exactly the paper's five fields. */
json_t *usvc_jobinfo(const char *runtime, const char *job_id, const char *job_type,
                     const char *status, const char *config_file_name);

/* The paper's jobStatus for a rule status of the runtime ("running",
 * "stopped", "failed"). */
const char *usvc_status_from_rule(const char *rule_status);

/* Reads the jobId of a jobinfo object (the body of uninstall / start / stop,
 * and relocation.jobInfo). Also accepts a jobinfo that has only
 * configFileName. WEIR_EINVAL with a sentence in err. */
int usvc_jobinfo_id(const json_t *jobinfo, char *job_id, size_t n, char *err, size_t errlen);

/* Durations of jobProps: a number of milliseconds, or a string with a
 * unit ("500ms", "5s", "1m", "2h", "1d"). WEIR_EINVAL. */
int usvc_duration_ms(const json_t *v, int64_t *ms);

#endif
