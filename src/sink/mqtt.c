/* mqtt.c -- the mqtt: output: each row is published on the node's own
 * broker, on the topic its template gives (sink/template.h), with the JSON
 * payload of sink/payload.h.
 *
 * Options: qos (0, 1 or 2; default 0) and retain (default false).
 *
 * Publishing is synchronous on the loop thread through the env's publish
 * function: the broker copies the message into each subscriber's bounded
 * queue (its own full-queue policy applies, see mqtt/broker.h), so the sink
 * has no queue and is always writable. A row whose topic cannot be built
 * (a column the rule does not produce, an empty or too long topic) is
 * counted as failed, logged (rate-limited) and skipped; emit returns
 * WEIR_OK so that one odd row does not stop the rule.
 */
#include "base/err.h"
#include "base/wlog.h"
#include "sink/payload.h"
#include "sink/sink_int.h"
#include "sink/template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MQTT_SINK_MSG_MAX (16u << 20) /* one row's topic + payload */

typedef struct mqtt_sink {
    sink_base base;
    sink_env *env;
    sink_stats *st;
    sink_template *tpl;
    char *rule;
    char *target;
    int qos;
    bool retain;
    weir_buf topic, payload; /* reused scratch */
    char last_error[200];
} mqtt_sink;

static wlog_limit mqtt_sink_lim;

static int m_emit(void *sink, const eng_row *row, uint64_t seq)
{
    mqtt_sink *s = sink;
    size_t tlen;
    char err[200];
    buf_reset(&s->topic);
    buf_reset(&s->payload);
    int rc = sink_template_expand(s->tpl, row, &s->topic, &tlen, err, sizeof(err));
    if (rc == WEIR_OK && (rc = sink_payload_json(s->rule, row, seq, &s->payload)))
        snprintf(err, sizeof(err), "payload: %s", weir_strerror(rc));
    if (rc) {
        sink_inc(s->st->failed);
        snprintf(s->last_error, sizeof(s->last_error), "%s", err);
        wlog_limited(&mqtt_sink_lim, WLOG_WARN, "sink", "mqtt_row_failed",
                     "rule=%s seq=%llu error=\"%s\"", s->rule, (unsigned long long)seq, err);
        return WEIR_OK;
    }
    s->env->publish(s->env->publish_ctx, (const char *)buf_head(&s->topic), buf_head(&s->payload),
                    buf_used(&s->payload), s->qos, s->retain);
    sink_inc(s->st->sent);
    return WEIR_OK;
}

static bool m_writable(void *sink)
{
    return true;
}

static json_t *m_stats(void *sink)
{
    mqtt_sink *s = sink;
    json_t *o = json_pack("{ss ss si sb}", "type", "mqtt", "target", s->target, "qos", s->qos,
                          "retain", s->retain);
    if (!o)
        return NULL;
    sink_stats_json(s->st, o, false);
    if (s->last_error[0])
        json_object_set_new(o, "last_error", json_string(s->last_error));
    return o;
}

static void m_close(void *sink)
{
    mqtt_sink *s = sink;
    sink_template_free(s->tpl);
    buf_free(&s->topic);
    buf_free(&s->payload);
    free(s->rule);
    free(s->target);
    free(s);
}

static const sink_kind mqtt_kind = {m_emit, m_writable, m_stats, m_close};

int sink_mqtt_open(sink_env *e, const char *rule, const char *target, const json_t *options,
                   sink_base **out, char *err, size_t errlen)
{
    int rc;
    int64_t qos = 0;
    bool retain = false;
    if (!e->publish) {
        snprintf(err, errlen, "mqtt outputs are not available on this node");
        return WEIR_EUNSUPPORTED;
    }
    if ((rc = sink_opt_int(options, "qos", 0, 2, &qos, err, errlen)) ||
        (rc = sink_opt_bool(options, "retain", &retain, err, errlen)))
        return rc;
    mqtt_sink *s = calloc(1, sizeof(*s));
    if (!s)
        return WEIR_ENOMEM;
    s->base.kind = &mqtt_kind;
    s->env = e;
    s->qos = (int)qos;
    s->retain = retain;
    buf_init(&s->topic, SINK_TOPIC_MAX + 1);
    buf_init(&s->payload, MQTT_SINK_MSG_MAX);
    if ((rc = sink_template_parse(target, strlen(target), &s->tpl, err, errlen)))
        goto cleanup;
    rc = WEIR_ENOMEM;
    if (!(s->rule = strdup(rule)) || !(s->target = strdup(target)) ||
        !(s->st = sink_stats_get(e, rule)))
        goto cleanup;
    *out = &s->base;
    return WEIR_OK;
cleanup:
    m_close(s);
    return rc;
}
