/* test_usvc_template.c -- the μ-service rule templates (http/usvc_template.h):
 * every job type becomes the exact statement documented, every statement
 * parses with the SQL front end, and every malformed installation gets an
 * error that names the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/arena.h"
#include "base/err.h"
#include "http/usvc_template.h"
#include "sql/parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *load(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    if (!j)
        fail_msg("bad test JSON: %s: %s", je.text, text);
    return j;
}

/* Builds the job, checks the statement text and that it parses. */
static void expect_sql(const char *inst_text, const char *id, const char *want)
{
    json_t *inst = load(inst_text);
    usvc_job j;
    char err[256] = "";
    int rc = usvc_template_build(inst, id, &j, err, sizeof(err));
    if (rc)
        fail_msg("build failed: %s", err);
    if (strcmp(j.sql, want))
        fail_msg("statement\n got: %s\nwant: %s", j.sql, want);
    arena a;
    arena_init(&a, 1 << 20);
    sql_stmt *st = NULL;
    sql_error se;
    memset(&se, 0, sizeof(se));
    if (sql_parse(j.sql, strlen(j.sql), &a, &st, &se))
        fail_msg("does not parse: %s at %d:%d: %s", se.msg, se.line, se.column, j.sql);
    assert_int_equal(st->kind, SQL_STMT_CREATE_RULE);
    arena_free(&a);
    usvc_job_free(&j);
    json_decref(inst);
}

static void expect_error(const char *inst_text, int want_rc, const char *want_substr)
{
    json_t *inst = load(inst_text);
    usvc_job j;
    char err[256] = "";
    int rc = usvc_template_build(inst, "id1", &j, err, sizeof(err));
    if (rc != want_rc)
        fail_msg("rc %s, want %s (err: %s) for %s", weir_err_name(rc), weir_err_name(want_rc),
                 err, inst_text);
    if (!strstr(err, want_substr))
        fail_msg("error '%s' does not mention '%s'", err, want_substr);
    assert_null(j.sql);
    assert_null(j.streams);
    json_decref(inst);
}

#define FILTER(props)                                                                       \
    "{\"headers\":{\"runtime\":\"edge\",\"jobType\":\"single-filter\"},"                    \
    "\"jobConfig\":{\"connectors\":{\"inputEndpoint\":\"mqtt://127.0.0.1:1883/plant/+/t\"," \
    "\"outputEndpoint\":\"mqtt://127.0.0.1:1883/alerts/t\"},\"jobProps\":" props "}}"

static void test_filter(void **state)
{
    (void)state;
    expect_sql(FILTER("{\"condition\":\">\",\"threshold\":30,\"fieldName\":\"temperature\","
                      "\"fieldJsonPath\":\"$.temperature\"}"),
               "j1",
               "CREATE RULE \"usvc_j1\" AS SELECT * FROM \"usvc_j1_in\" WHERE \"temperature\" > "
               "30 EMIT TO 'mqtt:alerts/t'");
    /* A nested path is extracted with json_get and shown under fieldName. */
    expect_sql(FILTER("{\"condition\":\"<=\",\"threshold\":-2.5,\"fieldName\":\"t\","
                      "\"fieldJsonPath\":\"$.sensor.values[1]['deg C']\"}"),
               "a-b",
               "CREATE RULE \"usvc_a_b\" AS SELECT *, json_get(\"sensor\", 'values', 1, 'deg C') "
               "AS \"t\" FROM \"usvc_a_b_in\" WHERE json_get(\"sensor\", 'values', 1, 'deg C') "
               "<= -2.5 EMIT TO 'mqtt:alerts/t'");
    /* The paper's "=", and == / != ; a string threshold compares text. */
    expect_sql(FILTER("{\"condition\":\"=\",\"threshold\":\"it's\",\"fieldName\":\"state\"}"),
               "x", "CREATE RULE \"usvc_x\" AS SELECT * FROM \"usvc_x_in\" WHERE "
                    "CAST(\"state\" AS TEXT) = 'it''s' EMIT TO 'mqtt:alerts/t'");
    expect_sql(FILTER("{\"condition\":\"!=\",\"threshold\":1,\"fieldJsonPath\":\"$.a.b\"}"), "x",
               "CREATE RULE \"usvc_x\" AS SELECT *, json_get(\"a\", 'b') AS \"b\" FROM "
               "\"usvc_x_in\" WHERE json_get(\"a\", 'b') <> 1 EMIT TO 'mqtt:alerts/t'");
    expect_sql(FILTER("{\"condition\":\"==\",\"threshold\":1e20,\"fieldName\":\"v\"}"), "x",
               "CREATE RULE \"usvc_x\" AS SELECT * FROM \"usvc_x_in\" WHERE \"v\" = 1e+20 EMIT "
               "TO 'mqtt:alerts/t'");
    /* Identifiers that try to break out stay identifiers. */
    expect_sql(FILTER("{\"condition\":\">\",\"threshold\":0,\"fieldName\":\"a\\\" OR 1=1 --\"}"),
               "x", "CREATE RULE \"usvc_x\" AS SELECT * FROM \"usvc_x_in\" WHERE \"a\"\" OR 1=1 "
                    "--\" > 0 EMIT TO 'mqtt:alerts/t'");
}

static void test_filter_streams_and_ids(void **state)
{
    (void)state;
    json_t *inst = load(FILTER("{\"condition\":\">\",\"threshold\":1,\"fieldName\":\"v\"}"));
    usvc_job j;
    char err[256];
    /* No jobId anywhere and none supplied: an error. */
    assert_int_equal(usvc_template_build(inst, NULL, &j, err, sizeof(err)), WEIR_EINVAL);
    assert_int_equal(usvc_template_build(inst, "0f3c-77", &j, err, sizeof(err)), WEIR_OK);
    assert_string_equal(j.job_id, "0f3c-77");
    assert_string_equal(j.rule, "usvc_0f3c_77");
    assert_string_equal(j.runtime, "edge");
    assert_string_equal(j.job_type, "single-filter");
    assert_int_equal(json_array_size(j.streams), 1);
    json_t *def = json_array_get(j.streams, 0);
    assert_string_equal(json_string_value(json_object_get(def, "name")), "usvc_0f3c_77_in");
    assert_string_equal(json_string_value(json_object_get(def, "source")), "mqtt:plant/+/t");
    assert_string_equal(json_string_value(json_object_get(def, "format")), "json");
    /* The kept installation carries the jobId; the caller's object is untouched. */
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(j.installation, "headers"), "jobId")),
                        "0f3c-77");
    assert_null(json_object_get(json_object_get(inst, "headers"), "jobId"));
    usvc_job_free(&j);
    json_decref(inst);

    /* A jobId in the installation wins over the supplied one. */
    inst = load("{\"headers\":{\"jobType\":\"single-filter\",\"jobId\":\"mine\"},"
                "\"jobConfig\":{\"connectors\":{\"inputEndpoint\":\"stream:raw\","
                "\"outputEndpoint\":\"stream:hot\"},\"jobProps\":{\"condition\":\">\","
                "\"threshold\":1,\"fieldName\":\"v\"}}}");
    assert_int_equal(usvc_template_build(inst, "other", &j, err, sizeof(err)), WEIR_OK);
    assert_string_equal(j.job_id, "mine");
    assert_string_equal(j.runtime, "");
    assert_int_equal(json_array_size(j.streams), 0); /* a stream input needs none */
    assert_string_equal(j.sql, "CREATE RULE \"usvc_mine\" AS SELECT * FROM \"raw\" WHERE \"v\" "
                               "> 1 EMIT TO 'stream:hot'");
    usvc_job_free(&j);
    json_decref(inst);
}

#define AGG(type, props)                                                                      \
    "{\"headers\":{\"runtime\":\"core\",\"jobType\":\"" type "\"},"                           \
    "\"jobConfig\":{\"connectors\":{\"inputEndpoint\":\"mqtt:plant/p1/t\","                   \
    "\"outputEndpoint\":\"mqtt:stats/t\"},\"jobProps\":" props "}}"

static void test_aggregations(void **state)
{
    (void)state;
    expect_sql(AGG("sum-aggregation", "{\"fieldName\":\"kwh\",\"windowSize\":5000}"), "s",
               "CREATE RULE \"usvc_s\" AS SELECT sum(\"kwh\") AS \"kwh_sum\", count(*) AS "
               "\"count\" FROM \"usvc_s_in\" GROUP BY TUMBLING(5000ms) EMIT TO 'mqtt:stats/t'");
    expect_sql(AGG("avg-aggregation", "{\"fieldName\":\"t\",\"fieldJsonPath\":\"$.m.t\","
                                      "\"windowSize\":\"5s\",\"windowSlide\":\"1s\","
                                      "\"groupBy\":\"device\",\"condition\":\">\","
                                      "\"threshold\":30}"),
               "a",
               "CREATE RULE \"usvc_a\" AS SELECT \"device\" AS \"device\", avg(json_get(\"m\", "
               "'t')) AS \"t_avg\", count(*) AS \"count\" FROM \"usvc_a_in\" GROUP BY "
               "\"device\", HOPPING(SIZE 5000ms, ADVANCE 1000ms) HAVING \"t_avg\" > 30 EMIT TO "
               "'mqtt:stats/t'");
    /* A slide equal to the size is tumbling. */
    expect_sql(AGG("avg-aggregation", "{\"fieldName\":\"t\",\"windowSize\":\"1m\","
                                      "\"windowSlide\":60000}"),
               "a", "CREATE RULE \"usvc_a\" AS SELECT avg(\"t\") AS \"t_avg\", count(*) AS "
                    "\"count\" FROM \"usvc_a_in\" GROUP BY TUMBLING(60000ms) EMIT TO "
                    "'mqtt:stats/t'");
}

static void test_join(void **state)
{
    (void)state;
    const char *inst =
        "{\"headers\":{\"runtime\":\"core\",\"jobType\":\"single-join\"},"
        "\"jobConfig\":{\"connectors\":{\"inputEndpoint\":[\"mqtt:line/sensor\","
        "\"stream:valves\"],\"outputEndpoint\":\"stream:sensor_valve\"},"
        "\"jobProps\":{\"joinKey\":\"device\",\"leftField\":\"$.p.bar\",\"rightField\":\"open\","
        "\"windowSize\":\"2s\"}}}";
    expect_sql(inst, "jn",
               "CREATE RULE \"usvc_jn\" AS SELECT l.\"device\" AS \"device\", json_get(l.\"p\", "
               "'bar') AS \"bar\", r.\"open\" AS \"open\" FROM \"usvc_jn_in\" AS l JOIN "
               "\"valves\" AS r ON l.\"device\" = r.\"device\" WITHIN 2000ms EMIT TO "
               "'stream:sensor_valve'");
    /* Same names on both sides get prefixed; distinct keys per side. */
    expect_sql("{\"headers\":{\"jobType\":\"single-join\"},\"jobConfig\":{\"connectors\":{"
               "\"inputEndpoint\":[\"mqtt:a\",\"mqtt:b\"],\"outputEndpoint\":\"mqtt:c\"},"
               "\"jobProps\":{\"leftKey\":\"id\",\"rightKey\":\"dev\",\"leftField\":\"v\","
               "\"rightField\":\"v\",\"windowSize\":100}}}",
               "k",
               "CREATE RULE \"usvc_k\" AS SELECT l.\"id\" AS \"id\", l.\"v\" AS \"left_v\", "
               "r.\"v\" AS \"right_v\" FROM \"usvc_k_in\" AS l JOIN \"usvc_k_in2\" AS r ON "
               "l.\"id\" = r.\"dev\" WITHIN 100ms EMIT TO 'mqtt:c'");
    json_t *j = load(inst);
    usvc_job job;
    char err[200];
    assert_int_equal(usvc_template_build(j, "jn", &job, err, sizeof(err)), WEIR_OK);
    assert_int_equal(json_array_size(job.streams), 1); /* only the MQTT side */
    usvc_job_free(&job);
    json_decref(j);
}

static void test_errors(void **state)
{
    (void)state;
    expect_error("[]", WEIR_EINVAL, "JSON object");
    expect_error("{\"jobConfig\":{}}", WEIR_EINVAL, "headers");
    expect_error("{\"headers\":{\"jobType\":\"single-filter\"}}", WEIR_EINVAL, "jobConfig");
    expect_error(FILTER("{}"), WEIR_EINVAL, "fieldName");
    expect_error(
        "{\"headers\":{\"jobType\":\"pattern-cep\"},\"jobConfig\":{\"connectors\":{},"
        "\"jobProps\":{}}}",
        WEIR_EINVAL, "unknown jobType 'pattern-cep'");
    expect_error("{\"headers\":{},\"jobConfig\":{\"connectors\":{},\"jobProps\":{}}}",
                 WEIR_EINVAL, "headers.jobType");
    expect_error(FILTER("{\"condition\":\"~\",\"threshold\":1,\"fieldName\":\"v\"}"), WEIR_EINVAL,
                 "jobProps.condition");
    expect_error(FILTER("{\"threshold\":1,\"fieldName\":\"v\"}"), WEIR_EINVAL,
                 "jobProps.condition is required");
    expect_error(FILTER("{\"condition\":\">\",\"fieldName\":\"v\"}"), WEIR_EINVAL,
                 "jobProps.threshold is required");
    expect_error(FILTER("{\"condition\":\">\",\"threshold\":[1],\"fieldName\":\"v\"}"),
                 WEIR_EINVAL, "threshold must be");
    expect_error(FILTER("{\"condition\":\">\",\"threshold\":1,\"fieldJsonPath\":\"a.b\"}"),
                 WEIR_EINVAL, "starts with '$'");
    expect_error(FILTER("{\"condition\":\">\",\"threshold\":1,\"fieldJsonPath\":\"$\"}"),
                 WEIR_EINVAL, "names no field");
    expect_error(FILTER("{\"condition\":\">\",\"threshold\":1,\"fieldJsonPath\":\"$.a..b\"}"),
                 WEIR_EINVAL, "empty step");
    expect_error(FILTER("{\"condition\":\">\",\"threshold\":1,\"fieldJsonPath\":\"$[0]\"}"),
                 WEIR_EINVAL, "must start with a key");
    expect_error(AGG("avg-aggregation", "{\"fieldName\":\"t\"}"), WEIR_EINVAL,
                 "windowSize is required");
    expect_error(AGG("avg-aggregation", "{\"fieldName\":\"t\",\"windowSize\":\"5 parsecs\"}"),
                 WEIR_EINVAL, "windowSize");
    expect_error(AGG("avg-aggregation", "{\"fieldName\":\"t\",\"windowSize\":-5}"), WEIR_EINVAL,
                 "windowSize");
    expect_error(AGG("sum-aggregation",
                     "{\"fieldName\":\"t\",\"windowSize\":1000,\"windowSlide\":2000}"),
                 WEIR_EINVAL, "longer than windowSize");
    expect_error("{\"headers\":{\"jobType\":\"single-join\"},\"jobConfig\":{\"connectors\":{"
                 "\"inputEndpoint\":\"mqtt:a\",\"outputEndpoint\":\"mqtt:c\"},\"jobProps\":{}}}",
                 WEIR_EINVAL, "array of two");
    expect_error("{\"headers\":{\"jobType\":\"single-join\"},\"jobConfig\":{\"connectors\":{"
                 "\"inputEndpoint\":[\"mqtt:a\",\"mqtt:b\"],\"outputEndpoint\":\"mqtt:c\"},"
                 "\"jobProps\":{\"leftField\":\"v\",\"rightField\":\"w\",\"windowSize\":1}}}",
                 WEIR_EINVAL, "joinKey");
    /* Endpoints. */
    expect_error("{\"headers\":{\"jobType\":\"single-filter\"},\"jobConfig\":{\"connectors\":{"
                 "\"inputEndpoint\":\"amqp://rabbit/q\",\"outputEndpoint\":\"mqtt:c\"},"
                 "\"jobProps\":{\"condition\":\">\",\"threshold\":1,\"fieldName\":\"v\"}}}",
                 WEIR_EUNSUPPORTED, "inputEndpoint");
    expect_error("{\"headers\":{\"jobType\":\"single-filter\"},\"jobConfig\":{\"connectors\":{"
                 "\"inputEndpoint\":\"mqtt:a\",\"outputEndpoint\":\"mqtt:alerts/#\"},"
                 "\"jobProps\":{\"condition\":\">\",\"threshold\":1,\"fieldName\":\"v\"}}}",
                 WEIR_EINVAL, "outputEndpoint");
    expect_error("{\"headers\":{\"jobType\":\"single-filter\"},\"jobConfig\":{\"connectors\":{"
                 "\"outputEndpoint\":\"mqtt:x\"},"
                 "\"jobProps\":{\"condition\":\">\",\"threshold\":1,\"fieldName\":\"v\"}}}",
                 WEIR_EINVAL, "inputEndpoint is required");
    expect_error("{\"headers\":{\"jobType\":\"single-filter\",\"jobId\":\"a b\"},"
                 "\"jobConfig\":{\"connectors\":{\"inputEndpoint\":\"mqtt:a\","
                 "\"outputEndpoint\":\"mqtt:x\"},\"jobProps\":{\"condition\":\">\","
                 "\"threshold\":1,\"fieldName\":\"v\"}}}",
                 WEIR_EINVAL, "jobId");
    expect_error("{\"headers\":{\"jobType\":\"single-filter\"},\"jobConfig\":{\"connectors\":{"
                 "\"inputEndpoint\":\"mqtt:a/b#\",\"outputEndpoint\":\"mqtt:x\"},"
                 "\"jobProps\":{\"condition\":\">\",\"threshold\":1,\"fieldName\":\"v\"}}}",
                 WEIR_EINVAL, "not a valid MQTT topic");
    expect_error("{\"headers\":{\"jobType\":\"single-filter\"},\"jobConfig\":{\"connectors\":{"
                 "\"inputEndpoint\":\"stream:$deadletter\",\"outputEndpoint\":\"mqtt:x\"},"
                 "\"jobProps\":{\"condition\":\">\",\"threshold\":1,\"fieldName\":\"v\"}}}",
                 WEIR_EINVAL, "not a stream name");
}

static void test_endpoints_and_jobinfo(void **state)
{
    (void)state;
    usvc_endpoint ep;
    char err[200];
    assert_int_equal(usvc_endpoint_parse("mqtt://edge:1883/a/+/c", true, &ep, err, sizeof(err)),
                     WEIR_OK);
    assert_int_equal(ep.kind, USVC_EP_MQTT);
    assert_string_equal(ep.name, "a/+/c");
    assert_int_equal(usvc_endpoint_parse("mqtt://edge:1883", true, &ep, err, sizeof(err)),
                     WEIR_EINVAL);
    assert_int_equal(usvc_endpoint_parse("stream:ab.c-d_e", false, &ep, err, sizeof(err)),
                     WEIR_OK);
    assert_int_equal(ep.kind, USVC_EP_STREAM);
    assert_string_equal(ep.name, "ab.c-d_e");

    json_t *ji = usvc_jobinfo("edge", "j-1", "single-filter", USVC_INSTALLED, "usvc_j_1");
    assert_int_equal(json_object_size(ji), 5);
    char *txt = json_dumps(ji, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(txt, "{\"configFileName\":\"usvc_j_1\",\"jobId\":\"j-1\",\"jobStatus\":"
                             "\"INSTALLED\",\"jobType\":\"single-filter\",\"runtime\":\"edge\"}");
    free(txt);
    char id[80];
    assert_int_equal(usvc_jobinfo_id(ji, id, sizeof(id), err, sizeof(err)), WEIR_OK);
    assert_string_equal(id, "j-1");
    json_object_del(ji, "jobId");
    assert_int_equal(usvc_jobinfo_id(ji, id, sizeof(id), err, sizeof(err)), WEIR_OK);
    assert_string_equal(id, "j_1");
    json_object_del(ji, "configFileName");
    assert_int_equal(usvc_jobinfo_id(ji, id, sizeof(id), err, sizeof(err)), WEIR_EINVAL);
    json_decref(ji);

    assert_string_equal(usvc_status_from_rule("running"), USVC_RUNNING);
    assert_string_equal(usvc_status_from_rule("stopped"), USVC_STOPPED);
    assert_string_equal(usvc_status_from_rule("failed"), USVC_FAILED);

    int64_t ms;
    json_t *v = json_string("250ms");
    assert_int_equal(usvc_duration_ms(v, &ms), WEIR_OK);
    assert_int_equal(ms, 250);
    json_decref(v);
    v = json_string("2h");
    assert_int_equal(usvc_duration_ms(v, &ms), WEIR_OK);
    assert_int_equal(ms, 7200000);
    json_decref(v);
    v = json_real(1.5);
    assert_int_equal(usvc_duration_ms(v, &ms), WEIR_EINVAL);
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_filter),
        cmocka_unit_test(test_filter_streams_and_ids),
        cmocka_unit_test(test_aggregations),
        cmocka_unit_test(test_join),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_endpoints_and_jobinfo),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
