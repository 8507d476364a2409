/* usvc_template.c -- see usvc_template.h. */
#include "http/usvc_template.h"
#include "base/buf.h"
#include "base/err.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SQL_MAX (64u << 10) /* a template statement is small; bound it anyway */
#define PATH_MAX_STEPS 16
#define FIELD_MAX 256

/* Retention of the ingest stream made for an MQTT input: the stream is the
 * rule's input buffer (and what makes a restarted rule resume where it
 * stopped), not the plant's archive, so it keeps one day. */
#define INPUT_RETENTION "1d"

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* ---- SQL text builder: everything from the client goes through q_ident or
 * q_string. ------------------------------------------------------------ */

typedef struct sb {
    weir_buf b;
    int rc;
} sb;

static void sb_add(sb *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_add(sb *s, const char *fmt, ...)
{
    if (s->rc)
        return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        s->rc = WEIR_ETOOBIG;
        return;
    }
    s->rc = buf_append(&s->b, tmp, (size_t)n);
}

static void sb_quoted(sb *s, const char *v, char q)
{
    if (s->rc)
        return;
    s->rc = buf_append(&s->b, &q, 1);
    for (const char *p = v; *p && !s->rc; p++) {
        s->rc = buf_append(&s->b, p, 1);
        if (*p == q && !s->rc)
            s->rc = buf_append(&s->b, &q, 1);
    }
    if (!s->rc)
        s->rc = buf_append(&s->b, &q, 1);
}

static void q_ident(sb *s, const char *v)
{
    sb_quoted(s, v, '"');
}

static void q_string(sb *s, const char *v)
{
    sb_quoted(s, v, '\'');
}

/* ---- small readers of the installation ---------------------------------- */

static const char *get_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

bool usvc_job_id_valid(const char *id)
{
    size_t n = 0;
    for (; id && id[n]; n++) {
        char c = id[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return n >= 1 && n <= USVC_JOB_ID_MAX;
}

int usvc_rule_name(const char *job_id, char *out, size_t n)
{
    if (!usvc_job_id_valid(job_id) || n < strlen(job_id) + 6)
        return WEIR_EINVAL;
    snprintf(out, n, "usvc_%s", job_id);
    for (char *p = out; *p; p++)
        if (*p == '-')
            *p = '_';
    return WEIR_OK;
}

int usvc_duration_ms(const json_t *v, int64_t *ms)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i <= 0 || i > INT64_C(365) * 86400000)
            return WEIR_EINVAL;
        *ms = (int64_t)i;
        return WEIR_OK;
    }
    const char *s = json_string_value(v);
    if (!s || !*s)
        return WEIR_EINVAL;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (end == s || n <= 0 || n > 365LL * 86400000)
        return WEIR_EINVAL;
    int64_t mul;
    if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "s") || !strcmp(end, " s"))
        mul = 1000;
    else if (!strcmp(end, "m") || !strcmp(end, " m"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else if (!strcmp(end, "d"))
        mul = 86400000;
    else
        return WEIR_EINVAL;
    if (n > 365LL * 86400000 / mul)
        return WEIR_EINVAL;
    *ms = (int64_t)n * mul;
    return WEIR_OK;
}

/* ---- endpoints ---------------------------------------------------------- */

static bool stream_name_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return false;
    }
    return n >= 1 && n <= 128;
}

static bool topic_ok(const char *t, bool filter)
{
    size_t n = strlen(t);
    if (n == 0 || n >= USVC_TOPIC_MAX || t[0] == '$')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)t[i];
        if (c < 0x20 || c == 0x7f)
            return false;
        if (c == '+' || c == '#') {
            if (!filter)
                return false;
            /* A wildcard fills a whole level; '#' only the last one. */
            if ((i > 0 && t[i - 1] != '/') || (i + 1 < n && t[i + 1] != '/'))
                return false;
            if (c == '#' && i + 1 != n)
                return false;
        }
    }
    return true;
}

int usvc_endpoint_parse(const char *s, bool input, usvc_endpoint *out, char *err, size_t errlen)
{
    const char *which = input ? "inputEndpoint" : "outputEndpoint";
    memset(out, 0, sizeof(*out));
    const char *topic = NULL;
    if (!s || !*s)
        return fail(err, errlen, WEIR_EINVAL, "jobConfig.connectors.%s is required", which);
    if (!strncmp(s, "mqtt://", 7) || !strncmp(s, "mqtts://", 8) || !strncmp(s, "tcp://", 6)) {
        const char *host = strstr(s, "://") + 3;
        const char *slash = strchr(host, '/');
        if (!slash || slash == host)
            return fail(err, errlen, WEIR_EINVAL,
                        "%s: expected mqtt://host[:port]/topic, got '%.200s'", which, s);
        topic = slash + 1;
    } else if (!strncmp(s, "mqtt:", 5)) {
        topic = s + 5;
    } else if (!strncmp(s, "stream:", 7)) {
        if (!stream_name_ok(s + 7) || s[7] == '$')
            return fail(err, errlen, WEIR_EINVAL,
                        "%s: '%.200s' is not a stream name (1-128 of A-Z a-z 0-9 _ - .)", which,
                        s + 7);
        out->kind = USVC_EP_STREAM;
        snprintf(out->name, sizeof(out->name), "%s", s + 7);
        return WEIR_OK;
    } else if (strstr(s, "://")) {
        return fail(err, errlen, WEIR_EUNSUPPORTED,
                    "%s: weir reads and writes MQTT topics (mqtt://host:port/topic) and streams "
                    "(stream:name), not '%.200s'",
                    which, s);
    } else {
        return fail(err, errlen, WEIR_EINVAL,
                    "%s: expected mqtt://host[:port]/topic, mqtt:topic or stream:name, got "
                    "'%.200s'",
                    which, s);
    }
    if (!topic_ok(topic, input))
        return fail(err, errlen, WEIR_EINVAL, "%s: '%.200s' is not a valid MQTT topic%s", which,
                    topic, input ? " filter" : " (no wildcards, not $-prefixed)");
    out->kind = USVC_EP_MQTT;
    snprintf(out->name, sizeof(out->name), "%s", topic);
    return WEIR_OK;
}

/* ---- fields: a name, or a JSON path $.a.b[0]['c d'] ----------------------- */

typedef struct path_step {
    bool index;
    long long i;
    char key[FIELD_MAX];
} path_step;

typedef struct field {
    int n;                      /* steps; 1 = a top-level column */
    path_step s[PATH_MAX_STEPS];
    char alias[FIELD_MAX];      /* output name */
} field;

static int parse_path(const char *p, field *f, char *err, size_t errlen, const char *what)
{
    const char *start = p;
    if (*p != '$')
        return fail(err, errlen, WEIR_EINVAL, "%s: a JSON path starts with '$', got '%.200s'",
                    what, start);
    p++;
    f->n = 0;
    while (*p) {
        if (f->n == PATH_MAX_STEPS)
            return fail(err, errlen, WEIR_EINVAL, "%s: more than %d steps", what,
                        PATH_MAX_STEPS);
        path_step *st = &f->s[f->n];
        memset(st, 0, sizeof(*st));
        size_t k = 0;
        if (*p == '.') {
            p++;
            while (*p && *p != '.' && *p != '[') {
                if (k + 1 >= sizeof(st->key))
                    return fail(err, errlen, WEIR_EINVAL, "%s: a step is too long", what);
                st->key[k++] = *p++;
            }
            if (!k)
                return fail(err, errlen, WEIR_EINVAL, "%s: empty step in '%.200s'", what,
                            start);
        } else if (*p == '[' && (p[1] == '\'' || p[1] == '"')) {
            char q = p[1];
            p += 2;
            while (*p && *p != q) {
                if (k + 1 >= sizeof(st->key))
                    return fail(err, errlen, WEIR_EINVAL, "%s: a step is too long", what);
                st->key[k++] = *p++;
            }
            if (*p != q || p[1] != ']' || !k)
                return fail(err, errlen, WEIR_EINVAL, "%s: bad ['key'] step in '%.200s'", what,
                            start);
            p += 2;
        } else if (*p == '[') {
            char *end;
            p++;
            if (*p < '0' || *p > '9')
                return fail(err, errlen, WEIR_EINVAL, "%s: bad [index] in '%.200s'", what,
                            start);
            long long v = strtoll(p, &end, 10);
            if (*end != ']' || v < 0 || v > 1000000)
                return fail(err, errlen, WEIR_EINVAL, "%s: bad [index] in '%.200s'", what,
                            start);
            if (f->n == 0)
                return fail(err, errlen, WEIR_EINVAL,
                            "%s: the event is a JSON object; the path must start with a key",
                            what);
            st->index = true;
            st->i = v;
            p = end + 1;
        } else {
            return fail(err, errlen, WEIR_EINVAL, "%s: unexpected '%c' in '%.200s'", what, *p,
                        start);
        }
        st->key[k] = '\0';
        f->n++;
    }
    if (f->n == 0)
        return fail(err, errlen, WEIR_EINVAL, "%s: '$' alone names no field", what);
    return WEIR_OK;
}

/* A field given as a plain name or a "$..." path (leftField, groupBy...). */
static int parse_field_spec(const char *spec, field *f, char *err, size_t errlen, const char *what)
{
    memset(f, 0, sizeof(*f));
    if (!spec || !*spec)
        return fail(err, errlen, WEIR_EINVAL, "jobProps.%s is required", what);
    if (strlen(spec) >= FIELD_MAX)
        return fail(err, errlen, WEIR_EINVAL, "jobProps.%s is too long", what);
    if (spec[0] == '$') {
        int rc = parse_path(spec, f, err, errlen, what);
        if (rc)
            return rc;
    } else {
        f->n = 1;
        snprintf(f->s[0].key, sizeof(f->s[0].key), "%s", spec);
    }
    /* The output name: the last key step. */
    for (int i = f->n - 1; i >= 0; i--)
        if (!f->s[i].index) {
            snprintf(f->alias, sizeof(f->alias), "%s", f->s[i].key);
            break;
        }
    return WEIR_OK;
}

/* fieldName and fieldJsonPath of jobProps: the path (when given) says where
 * the value is, the name (when given) what it is called in the output. */
static int parse_main_field(const json_t *props, field *f, char *err, size_t errlen)
{
    const json_t *jn = json_object_get(props, "fieldName");
    const json_t *jp = json_object_get(props, "fieldJsonPath");
    if ((jn && !json_is_string(jn)) || (jp && !json_is_string(jp)))
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.fieldName and jobProps.fieldJsonPath must be strings");
    const char *name = json_string_value(jn), *path = json_string_value(jp);
    if ((!name || !*name) && (!path || !*path))
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.fieldName or jobProps.fieldJsonPath is required");
    int rc;
    if (path && *path) {
        memset(f, 0, sizeof(*f));
        if (strlen(path) >= FIELD_MAX)
            return fail(err, errlen, WEIR_EINVAL, "jobProps.fieldJsonPath is too long");
        if ((rc = parse_path(path, f, err, errlen, "jobProps.fieldJsonPath")))
            return rc;
        if (name && *name) {
            if (strlen(name) >= FIELD_MAX)
                return fail(err, errlen, WEIR_EINVAL, "jobProps.fieldName is too long");
            snprintf(f->alias, sizeof(f->alias), "%s", name);
        } else {
            for (int i = f->n - 1; i >= 0; i--)
                if (!f->s[i].index) {
                    snprintf(f->alias, sizeof(f->alias), "%s", f->s[i].key);
                    break;
                }
        }
        return WEIR_OK;
    }
    return parse_field_spec(name, f, err, errlen, "fieldName");
}

/* The value expression: "col", or json_get("col", 'k', 1, ...), with an
 * optional qualifier (l./r. in joins). as_text reads it as text. */
static void field_expr(sb *s, const char *qual, const field *f, bool as_text)
{
    if (f->n > 1)
        sb_add(s, "%s(", as_text ? "json_get_text" : "json_get");
    else if (as_text)
        sb_add(s, "CAST(");
    if (qual)
        sb_add(s, "%s.", qual);
    q_ident(s, f->s[0].key);
    for (int i = 1; i < f->n; i++) {
        sb_add(s, ", ");
        if (f->s[i].index)
            sb_add(s, "%lld", f->s[i].i);
        else
            q_string(s, f->s[i].key);
    }
    if (f->n > 1)
        sb_add(s, ")");
    else if (as_text)
        sb_add(s, " AS TEXT)");
}

/* ---- condition and threshold -------------------------------------------- */

typedef struct cond {
    const char *op;     /* SQL operator */
    const json_t *thr;  /* number or string */
} cond;

static int parse_cond(const json_t *props, bool required, cond *c, char *err, size_t errlen)
{
    static const struct {
        const char *in, *sql;
    } ops[] = {
        {">", ">"},   {">=", ">="}, {"<", "<"},   {"<=", "<="},
        {"=", "="},   {"==", "="},  {"!=", "<>"}, {"<>", "<>"},
    };
    const json_t *jc = json_object_get(props, "condition");
    const json_t *jt = json_object_get(props, "threshold");
    memset(c, 0, sizeof(*c));
    if (!jc && !jt && !required)
        return WEIR_OK;
    if (!jc)
        return fail(err, errlen, WEIR_EINVAL, "jobProps.condition is required");
    if (!json_is_string(jc))
        return fail(err, errlen, WEIR_EINVAL, "jobProps.condition must be a string");
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(json_string_value(jc), ops[i].in))
            c->op = ops[i].sql;
    if (!c->op)
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.condition: '%.40s' is not one of > >= < <= = == != <>",
                    json_string_value(jc));
    if (!jt)
        return fail(err, errlen, WEIR_EINVAL, "jobProps.threshold is required");
    if (!json_is_number(jt) && !json_is_string(jt))
        return fail(err, errlen, WEIR_EINVAL, "jobProps.threshold must be a number or a string");
    if (json_is_string(jt) && json_string_length(jt) > 1024)
        return fail(err, errlen, WEIR_EINVAL, "jobProps.threshold is too long");
    if (json_is_string(jt) && strlen(json_string_value(jt)) != json_string_length(jt))
        return fail(err, errlen, WEIR_EINVAL, "jobProps.threshold contains a NUL character");
    c->thr = jt;
    return WEIR_OK;
}

static void threshold_literal(sb *s, const json_t *t)
{
    if (json_is_integer(t)) {
        sb_add(s, "%" PRId64, (int64_t)json_integer_value(t));
    } else if (json_is_real(t)) {
        /* %.17g round-trips; make sure the lexer sees a decimal. */
        char tmp[64];
        snprintf(tmp, sizeof(tmp), "%.17g", json_real_value(t));
        if (!strpbrk(tmp, ".eEn"))
            strcat(tmp, ".0");
        sb_add(s, "%s", tmp);
    } else {
        q_string(s, json_string_value(t));
    }
}

/* ---- windows ------------------------------------------------------------- */

static int parse_window(const json_t *props, int64_t *size_ms, int64_t *slide_ms, char *err,
                        size_t errlen)
{
    const json_t *js = json_object_get(props, "windowSize");
    if (!js)
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.windowSize is required (milliseconds, or \"5s\")");
    if (usvc_duration_ms(js, size_ms))
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.windowSize: expected a positive number of milliseconds or a "
                    "duration like \"5s\", \"500ms\", \"1m\"");
    *slide_ms = *size_ms;
    const json_t *jl = json_object_get(props, "windowSlide");
    if (jl && !json_is_null(jl)) {
        if (usvc_duration_ms(jl, slide_ms))
            return fail(err, errlen, WEIR_EINVAL,
                        "jobProps.windowSlide: expected a positive number of milliseconds or a "
                        "duration like \"1s\"");
        if (*slide_ms > *size_ms)
            return fail(err, errlen, WEIR_EINVAL,
                        "jobProps.windowSlide (%" PRId64 " ms) is longer than windowSize (%" PRId64
                        " ms)",
                        *slide_ms, *size_ms);
    }
    return WEIR_OK;
}

/* ---- the job ------------------------------------------------------------- */

void usvc_job_free(usvc_job *j)
{
    if (!j)
        return;
    free(j->sql);
    json_decref(j->streams);
    json_decref(j->installation);
    memset(j, 0, sizeof(*j));
}

/* The name of input i in FROM/JOIN: its stream, made for an MQTT topic. */
static int add_input(usvc_job *j, const usvc_endpoint *ep, int i, char *name, size_t n)
{
    if (ep->kind == USVC_EP_STREAM) {
        snprintf(name, n, "%s", ep->name);
        return WEIR_OK;
    }
    snprintf(name, n, "%s_in%s", j->rule, i ? "2" : "");
    char source[USVC_TOPIC_MAX + 8];
    snprintf(source, sizeof(source), "mqtt:%s", ep->name);
    json_t *def = json_pack("{s:s, s:s, s:s, s:s}", "name", name, "source", source, "format",
                            "json", "retention", INPUT_RETENTION);
    if (!def || json_array_append_new(j->streams, def))
        return WEIR_ENOMEM;
    return WEIR_OK;
}

static int build_filter(sb *s, const json_t *props, const char *in, char *err, size_t errlen)
{
    field f;
    cond c;
    int rc;
    if ((rc = parse_main_field(props, &f, err, errlen)) ||
        (rc = parse_cond(props, true, &c, err, errlen)))
        return rc;
    sb_add(s, "SELECT *");
    if (f.n > 1) {
        sb_add(s, ", ");
        field_expr(s, NULL, &f, false);
        sb_add(s, " AS ");
        q_ident(s, f.alias);
    }
    sb_add(s, " FROM ");
    q_ident(s, in);
    sb_add(s, " WHERE ");
    field_expr(s, NULL, &f, json_is_string(c.thr));
    sb_add(s, " %s ", c.op);
    threshold_literal(s, c.thr);
    return WEIR_OK;
}

static int build_agg(sb *s, const json_t *props, const char *in, const char *fn, char *err,
                     size_t errlen)
{
    field f, g;
    cond c;
    int64_t size, slide;
    int rc;
    bool grouped = false;
    if ((rc = parse_main_field(props, &f, err, errlen)) ||
        (rc = parse_cond(props, false, &c, err, errlen)) ||
        (rc = parse_window(props, &size, &slide, err, errlen)))
        return rc;
    if (c.thr && json_is_string(c.thr))
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.threshold of an aggregation must be a number");
    const json_t *jg = json_object_get(props, "groupBy");
    if (jg && !json_is_null(jg)) {
        if (!json_is_string(jg))
            return fail(err, errlen, WEIR_EINVAL, "jobProps.groupBy must be a field name");
        if ((rc = parse_field_spec(json_string_value(jg), &g, err, errlen, "groupBy")))
            return rc;
        grouped = true;
    }
    char alias[FIELD_MAX + 8];
    snprintf(alias, sizeof(alias), "%s_%s", f.alias, fn);
    sb_add(s, "SELECT ");
    if (grouped) {
        field_expr(s, NULL, &g, false);
        sb_add(s, " AS ");
        q_ident(s, g.alias);
        sb_add(s, ", ");
    }
    sb_add(s, "%s(", fn);
    field_expr(s, NULL, &f, false);
    sb_add(s, ") AS ");
    q_ident(s, alias);
    sb_add(s, ", count(*) AS \"count\" FROM ");
    q_ident(s, in);
    sb_add(s, " GROUP BY ");
    if (grouped) {
        field_expr(s, NULL, &g, false);
        sb_add(s, ", ");
    }
    if (slide == size)
        sb_add(s, "TUMBLING(%" PRId64 "ms)", size);
    else
        sb_add(s, "HOPPING(SIZE %" PRId64 "ms, ADVANCE %" PRId64 "ms)", size, slide);
    if (c.op) {
        sb_add(s, " HAVING ");
        q_ident(s, alias);
        sb_add(s, " %s ", c.op);
        threshold_literal(s, c.thr);
    }
    return WEIR_OK;
}

static int build_join(sb *s, const json_t *props, const char *in1, const char *in2, char *err,
                      size_t errlen)
{
    field lk, rk, lf, rf;
    int64_t size, slide;
    int rc;
    const char *jk = get_str(props, "joinKey");
    const char *lks = get_str(props, "leftKey"), *rks = get_str(props, "rightKey");
    if (!jk && (!lks || !rks))
        return fail(err, errlen, WEIR_EINVAL,
                    "jobProps.joinKey (or leftKey and rightKey) is required for single-join");
    if ((rc = parse_field_spec(lks ? lks : jk, &lk, err, errlen, lks ? "leftKey" : "joinKey")) ||
        (rc = parse_field_spec(rks ? rks : jk, &rk, err, errlen, rks ? "rightKey" : "joinKey")) ||
        (rc = parse_field_spec(get_str(props, "leftField"), &lf, err, errlen, "leftField")) ||
        (rc = parse_field_spec(get_str(props, "rightField"), &rf, err, errlen, "rightField")) ||
        (rc = parse_window(props, &size, &slide, err, errlen)))
        return rc;
    if (!strcmp(lf.alias, rf.alias) || !strcmp(lf.alias, lk.alias) ||
        !strcmp(rf.alias, lk.alias)) {
        /* Same names on both sides: prefix them so that the output columns
         * stay distinct. */
        char t[FIELD_MAX];
        snprintf(t, sizeof(t), "left_%.*s", FIELD_MAX - 8, lf.alias);
        memcpy(lf.alias, t, sizeof(t));
        snprintf(t, sizeof(t), "right_%.*s", FIELD_MAX - 8, rf.alias);
        memcpy(rf.alias, t, sizeof(t));
    }
    sb_add(s, "SELECT ");
    field_expr(s, "l", &lk, false);
    sb_add(s, " AS ");
    q_ident(s, lk.alias);
    sb_add(s, ", ");
    field_expr(s, "l", &lf, false);
    sb_add(s, " AS ");
    q_ident(s, lf.alias);
    sb_add(s, ", ");
    field_expr(s, "r", &rf, false);
    sb_add(s, " AS ");
    q_ident(s, rf.alias);
    sb_add(s, " FROM ");
    q_ident(s, in1);
    sb_add(s, " AS l JOIN ");
    q_ident(s, in2);
    sb_add(s, " AS r ON ");
    field_expr(s, "l", &lk, false);
    sb_add(s, " = ");
    field_expr(s, "r", &rk, false);
    sb_add(s, " WITHIN %" PRId64 "ms", size);
    return WEIR_OK;
}

/* Reads connectors.inputEndpoint: a string, or for single-join an array of
 * two strings. */
static int parse_inputs(const json_t *conn, bool join, usvc_endpoint *eps, int *n, char *err,
                        size_t errlen)
{
    const json_t *in = json_object_get(conn, "inputEndpoint");
    int rc;
    if (join) {
        if (!json_is_array(in) || json_array_size(in) != 2)
            return fail(err, errlen, WEIR_EINVAL,
                        "single-join: jobConfig.connectors.inputEndpoint must be an array of two "
                        "endpoints (left, right)");
        for (int i = 0; i < 2; i++) {
            const json_t *e = json_array_get(in, (size_t)i);
            if (!json_is_string(e))
                return fail(err, errlen, WEIR_EINVAL,
                            "jobConfig.connectors.inputEndpoint[%d] must be a string", i);
            if ((rc = usvc_endpoint_parse(json_string_value(e), true, &eps[i], err, errlen)))
                return rc;
        }
        if (eps[0].kind == eps[1].kind && !strcmp(eps[0].name, eps[1].name))
            return fail(err, errlen, WEIR_EINVAL,
                        "single-join: the two inputEndpoints must differ");
        *n = 2;
        return WEIR_OK;
    }
    if (in && !json_is_string(in))
        return fail(err, errlen, WEIR_EINVAL,
                    "jobConfig.connectors.inputEndpoint must be a string");
    if ((rc = usvc_endpoint_parse(json_string_value(in), true, &eps[0], err, errlen)))
        return rc;
    *n = 1;
    return WEIR_OK;
}

int usvc_template_build(const json_t *inst, const char *job_id, usvc_job *out, char *err,
                        size_t errlen)
{
    memset(out, 0, sizeof(*out));
    sb s = {.rc = 0};
    buf_init(&s.b, SQL_MAX);
    usvc_endpoint in[USVC_MAX_INPUTS], outp;
    char in_name[USVC_MAX_INPUTS][USVC_TOPIC_MAX];
    int n_in = 0;
    int rc;

    if (!json_is_object(inst)) {
        rc = fail(err, errlen, WEIR_EINVAL, "the installation must be a JSON object");
        goto cleanup;
    }
    const json_t *headers = json_object_get(inst, "headers");
    const json_t *config = json_object_get(inst, "jobConfig");
    if (!json_is_object(headers)) {
        rc = fail(err, errlen, WEIR_EINVAL, "headers is required (an object)");
        goto cleanup;
    }
    if (!json_is_object(config)) {
        rc = fail(err, errlen, WEIR_EINVAL, "jobConfig is required (an object)");
        goto cleanup;
    }
    const json_t *conn = json_object_get(config, "connectors");
    const json_t *props = json_object_get(config, "jobProps");
    if (!json_is_object(conn)) {
        rc = fail(err, errlen, WEIR_EINVAL, "jobConfig.connectors is required (an object)");
        goto cleanup;
    }
    if (!json_is_object(props)) {
        rc = fail(err, errlen, WEIR_EINVAL, "jobConfig.jobProps is required (an object)");
        goto cleanup;
    }

    /* headers */
    const json_t *jr = json_object_get(headers, "runtime");
    if (jr && !json_is_null(jr) && !json_is_string(jr)) {
        rc = fail(err, errlen, WEIR_EINVAL, "headers.runtime must be a string (a node name)");
        goto cleanup;
    }
    if (json_string_length(jr) >= sizeof(out->runtime)) {
        rc = fail(err, errlen, WEIR_EINVAL, "headers.runtime is too long");
        goto cleanup;
    }
    snprintf(out->runtime, sizeof(out->runtime), "%s",
             json_is_string(jr) ? json_string_value(jr) : "");
    const char *type = get_str(headers, "jobType");
    if (!type) {
        rc = fail(err, errlen, WEIR_EINVAL, "headers.jobType is required");
        goto cleanup;
    }
    bool filter = !strcmp(type, "single-filter");
    bool sum = !strcmp(type, "sum-aggregation"), avg = !strcmp(type, "avg-aggregation");
    bool join = !strcmp(type, "single-join");
    if (!filter && !sum && !avg && !join) {
        rc = fail(err, errlen, WEIR_EINVAL,
                  "unknown jobType '%.64s' (known: single-filter, sum-aggregation, "
                  "avg-aggregation, single-join)",
                  type);
        goto cleanup;
    }
    snprintf(out->job_type, sizeof(out->job_type), "%s", type);
    const json_t *jid = json_object_get(headers, "jobId");
    if (!jid)
        jid = json_object_get(inst, "jobId");
    const char *id = jid ? json_string_value(jid) : job_id;
    if (jid && !json_is_string(jid)) {
        rc = fail(err, errlen, WEIR_EINVAL, "headers.jobId must be a string");
        goto cleanup;
    }
    if (!id || !usvc_job_id_valid(id)) {
        rc = fail(err, errlen, WEIR_EINVAL,
                  "headers.jobId must be 1-%d of A-Z a-z 0-9 _ -", USVC_JOB_ID_MAX);
        goto cleanup;
    }
    snprintf(out->job_id, sizeof(out->job_id), "%s", id);
    usvc_rule_name(out->job_id, out->rule, sizeof(out->rule));

    /* connectors */
    if ((rc = parse_inputs(conn, join, in, &n_in, err, errlen)))
        goto cleanup;
    const json_t *jo = json_object_get(conn, "outputEndpoint");
    if (jo && !json_is_string(jo)) {
        rc = fail(err, errlen, WEIR_EINVAL,
                  "jobConfig.connectors.outputEndpoint must be a string");
        goto cleanup;
    }
    if ((rc = usvc_endpoint_parse(json_string_value(jo), false, &outp, err, errlen)))
        goto cleanup;
    if (!(out->streams = json_array())) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    for (int i = 0; i < n_in; i++) {
        if ((rc = add_input(out, &in[i], i, in_name[i], sizeof(in_name[i]))))
            goto cleanup;
        if (outp.kind == USVC_EP_STREAM && !strcmp(outp.name, in_name[i])) {
            rc = fail(err, errlen, WEIR_EINVAL,
                      "outputEndpoint is the rule's own input stream '%s'", in_name[i]);
            goto cleanup;
        }
    }

    /* the statement */
    sb_add(&s, "CREATE RULE ");
    q_ident(&s, out->rule);
    sb_add(&s, " AS ");
    if (filter)
        rc = build_filter(&s, props, in_name[0], err, errlen);
    else if (sum || avg)
        rc = build_agg(&s, props, in_name[0], sum ? "sum" : "avg", err, errlen);
    else
        rc = build_join(&s, props, in_name[0], in_name[1], err, errlen);
    if (rc)
        goto cleanup;
    sb_add(&s, " EMIT TO ");
    char target[USVC_TOPIC_MAX + 8];
    snprintf(target, sizeof(target), "%s:%s", outp.kind == USVC_EP_MQTT ? "mqtt" : "stream",
             outp.name);
    q_string(&s, target);
    if (!s.rc)
        s.rc = buf_append(&s.b, "", 1);
    if (s.rc) {
        rc = s.rc == WEIR_ENOMEM ? WEIR_ENOMEM
                                 : fail(err, errlen, WEIR_EINVAL, "the installation is too large");
        goto cleanup;
    }
    out->sql = (char *)s.b.data; /* nothing was consumed: the text starts at data */
    memset(&s.b, 0, sizeof(s.b)); /* ownership moves to the job */

    /* the installation as kept, with its jobId */
    if (!(out->installation = json_deep_copy(inst))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    json_t *h = json_object_get(out->installation, "headers");
    if (json_object_set_new(h, "jobId", json_string(out->job_id))) {
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    json_object_del(out->installation, "jobId");
    rc = WEIR_OK;

cleanup:
    buf_free(&s.b);
    if (rc)
        usvc_job_free(out);
    return rc;
}

/* ---- jobinfo ------------------------------------------------------------- */

json_t *usvc_jobinfo(const char *runtime, const char *job_id, const char *job_type,
                     const char *status, const char *config_file_name)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:s}", "runtime", runtime, "jobId", job_id, "jobType",
                     job_type, "jobStatus", status, "configFileName", config_file_name);
}

const char *usvc_status_from_rule(const char *st)
{
    if (st && !strcmp(st, "running"))
        return USVC_RUNNING;
    if (st && !strcmp(st, "failed"))
        return USVC_FAILED;
    return USVC_STOPPED;
}

int usvc_jobinfo_id(const json_t *ji, char *job_id, size_t n, char *err, size_t errlen)
{
    if (!json_is_object(ji))
        return fail(err, errlen, WEIR_EINVAL, "expected a jobinfo object");
    const char *id = get_str(ji, "jobId");
    if (!id) {
        /* configFileName is the rule name usvc_<id>: accept it alone. */
        const char *cf = get_str(ji, "configFileName");
        if (cf && !strncmp(cf, "usvc_", 5))
            id = cf + 5;
    }
    if (!id)
        return fail(err, errlen, WEIR_EINVAL, "jobinfo.jobId is required");
    if (!usvc_job_id_valid(id) || strlen(id) >= n)
        return fail(err, errlen, WEIR_EINVAL, "jobinfo.jobId must be 1-%d of A-Z a-z 0-9 _ -",
                    USVC_JOB_ID_MAX);
    snprintf(job_id, n, "%s", id);
    return WEIR_OK;
}
