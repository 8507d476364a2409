/* ingest.c -- see ingest.h.
 *
 * Source matching uses the MQTT subscription tree with each stream as an
 * owner, so offering a PUBLISH to N streams costs one trie walk, not N
 * filter comparisons.
 *
 * Completion: every append call gets one store callback; an MQTT message or
 * an HTTP batch that touched several partitions or streams waits for all of
 * them through a small counter (ingest_wait) and reports once.
 */
#include "ingest/ingest.h"
#include "base/arena.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/err.h"
#include "base/wlog.h"
#include "mqtt/topic.h"
#include "record/record.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEADLETTER "$deadletter"
#define ARENA_MAX (16u << 20)     /* scratch per decoded record */
#define VALUE_MAX (8u << 20)      /* encoded record bound, as the store's */
#define MAX_ERRORS_REPORTED 100
#define BATCH_CHUNK 512           /* records per append call in a batch */
#define SEEN_MAX 64               /* distinct field names remembered per stream */
#define SEEN_NAME 64

struct ingest_stream {
    char *name;
    json_t *def;              /* normalised definition, owned */
    char *origin;
    stream *st;               /* borrowed from the store */
    rec_schema schema;        /* strings below are owned */
    char *ts_field, *ts_format, *key_field;
    rec_decl *decls;
    char **columns;
    char *source;             /* MQTT topic filter, or NULL */
    int key_topic_level;      /* 1-based topic level used as key; 0 = none */
    uint64_t accepted, rejected;
    /* Fields seen in this stream's records and their types, for schemaless
     * streams: what a user can chart and query (bounded; see SEEN_MAX). */
    struct seen_field {
        char name[SEEN_NAME];
        uint16_t len;
        rec_type type;
        bool mixed;           /* seen with more than one non-NULL type */
    } seen[SEEN_MAX];
    uint32_t n_seen;
    bool seen_full;
    uint32_t holds;           /* queries running off the loop */
    struct ingest_stream *next;
};

struct ingest {
    stream_store *store;
    catalog *cat;
    ingest_publish_fn pub;
    void *pub_ctx;
    ingest_stream *streams;   /* sorted by name */
    ingest_stream *deadletter;
    mqtt_subtree *sources;    /* MQTT source filters -> ingest_stream */
    arena scratch;
    weir_buf value;
    /* Matches of one MQTT message (tree callbacks must not append). */
    ingest_stream **hits;
    uint32_t n_hits, cap_hits;
};

static wlog_limit dead_limit;

/* ---- Waiting for several appends ---------------------------------------- */

typedef struct ingest_wait {
    uint32_t remaining;
    int status;
    ingest_done_fn done;
    void *arg;
} ingest_wait;

static void wait_release(ingest_wait *w)
{
    if (--w->remaining)
        return;
    if (w->done)
        w->done(w->arg, w->status);
    free(w);
}

static void on_appended(void *arg, int status, uint32_t partition, uint64_t first_offset)
{
    (void)partition;
    (void)first_offset;
    ingest_wait *w = arg;
    if (status && !w->status)
        w->status = status;
    wait_release(w);
}

/* ---- Definitions -------------------------------------------------------- */

static void stream_free(ingest_stream *s)
{
    if (!s)
        return;
    free(s->name);
    json_decref(s->def);
    free(s->origin);
    free(s->ts_field);
    free(s->ts_format);
    free(s->key_field);
    for (uint32_t i = 0; i < s->schema.n_decls; i++)
        free((char *)s->decls[i].name);
    free(s->decls);
    for (uint32_t i = 0; i < s->schema.n_csv_columns; i++)
        free(s->columns[i]);
    free(s->columns);
    free(s->source);
    free(s);
}

static bool name_valid(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > 128)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)n[i];
        if (!(isalnum(c) || c == '_' || c == '-' || c == '.' || (c == '$' && i == 0)))
            return false;
    }
    return true;
}

static const char *jstr(json_t *def, const char *key)
{
    json_t *v = json_object_get(def, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

static int parse_sync(const char *v, stream_opts *o)
{
    if (!strcmp(v, "always")) {
        o->sync = STREAM_SYNC_ALWAYS;
        return WEIR_OK;
    }
    if (!strcmp(v, "none")) {
        o->sync = STREAM_SYNC_NONE;
        return WEIR_OK;
    }
    if (!strncmp(v, "interval", 8)) {
        int64_t ms = 100;
        if (v[8] == '=' && config_parse_duration_ms(v + 9, &ms))
            return WEIR_EINVAL;
        if (v[8] && v[8] != '=')
            return WEIR_EINVAL;
        /* A bare number after '=' means milliseconds here. */
        if (v[8] == '=' && isdigit((unsigned char)v[strlen(v) - 1]))
            ms = strtoll(v + 9, NULL, 10);
        if (ms < 0 || ms > 60000)
            return WEIR_EINVAL;
        o->sync = STREAM_SYNC_INTERVAL;
        o->sync_interval_ms = (uint32_t)ms;
        return WEIR_OK;
    }
    return WEIR_EINVAL;
}

static const struct {
    const char *name;
    rec_type type;
} type_names[] = {
    {"double", REC_DOUBLE}, {"float", REC_DOUBLE}, {"int", REC_INT},  {"integer", REC_INT},
    {"bigint", REC_INT},    {"bool", REC_BOOL},    {"boolean", REC_BOOL}, {"text", REC_STRING},
    {"string", REC_STRING}, {"json", REC_JSON},
};

static int parse_type(const char *t, rec_type *out)
{
    for (size_t i = 0; i < sizeof(type_names) / sizeof(type_names[0]); i++)
        if (!strcasecmp(t, type_names[i].name)) {
            *out = type_names[i].type;
            return WEIR_OK;
        }
    return WEIR_EINVAL;
}

#define FAIL(...)                                                                              \
    do {                                                                                       \
        snprintf(err, errlen, __VA_ARGS__);                                                    \
        rc = WEIR_EINVAL;                                                                      \
        goto fail;                                                                             \
    } while (0)

/* Reads the storage options of a definition into o. */
static int def_opts(json_t *def, stream_opts *o, char *err, size_t errlen)
{
    int rc = WEIR_OK;
    stream_opts_default(o);
    json_t *p = json_object_get(def, "partitions");
    if (p) {
        if (!json_is_integer(p) || json_integer_value(p) < 1 ||
            json_integer_value(p) > STREAM_MAX_PARTITIONS)
            FAIL("partitions must be an integer from 1 to %u", STREAM_MAX_PARTITIONS);
        o->partitions = (uint32_t)json_integer_value(p);
    }
    const char *v;
    if ((v = jstr(def, "sync")) && parse_sync(v, o))
        FAIL("sync must be always, none or interval=<duration>, not '%s'", v);
    if ((v = jstr(def, "retention")) && strcmp(v, "none") &&
        config_parse_duration_ms(v, &o->retention_ms))
        FAIL("retention must be a duration such as 14d or none, not '%s'", v);
    if ((v = jstr(def, "retention_bytes")) && config_parse_size(v, &o->retention_bytes))
        FAIL("retention_bytes must be a size such as 10g, not '%s'", v);
    if ((v = jstr(def, "segment_bytes")) && config_parse_size(v, &o->segment_bytes))
        FAIL("segment_bytes must be a size such as 64m, not '%s'", v);
    if ((v = jstr(def, "segment_age")) && config_parse_duration_ms(v, &o->segment_ms))
        FAIL("segment_age must be a duration such as 1h, not '%s'", v);
fail:
    return rc;
}

/* Fills the record schema of s from its definition. */
static int def_schema(ingest_stream *s, json_t *def, char *err, size_t errlen)
{
    int rc = WEIR_OK;
    rec_schema *sc = &s->schema;
    const char *v = jstr(def, "format");
    if (v && ingest_format_parse(v, &sc->format))
        FAIL("format must be json, csv or line, not '%s'", v);
    if ((v = jstr(def, "timestamp")) && !(s->ts_field = strdup(v)))
        return WEIR_ENOMEM;
    if ((v = jstr(def, "time_format")) && !(s->ts_format = strdup(v)))
        return WEIR_ENOMEM;
    if ((v = jstr(def, "key"))) {
        if (!strncmp(v, "topic:", 6)) {
            s->key_topic_level = atoi(v + 6);
            if (s->key_topic_level < 1 || s->key_topic_level > 64)
                FAIL("key topic:N needs a level N from 1 to 64, not '%s'", v);
        } else if (!(s->key_field = strdup(v))) {
            return WEIR_ENOMEM;
        }
    }
    sc->ts_field = s->ts_field;
    sc->ts_format = s->ts_format;
    sc->key_field = s->key_field;
    if ((v = jstr(def, "delimiter"))) {
        if (strlen(v) != 1 && strcmp(v, "\\t"))
            FAIL("delimiter must be one character");
        sc->csv_delim = strcmp(v, "\\t") ? v[0] : '\t';
    }
    json_t *fields = json_object_get(def, "fields");
    if (fields) {
        if (!json_is_object(fields))
            FAIL("fields must be an object of name: type");
        s->decls = calloc(json_object_size(fields) + 1, sizeof(*s->decls));
        if (!s->decls)
            return WEIR_ENOMEM;
        const char *k;
        json_t *t;
        json_object_foreach(fields, k, t)
        {
            rec_decl *d = &s->decls[sc->n_decls];
            if (!json_is_string(t) || parse_type(json_string_value(t), &d->type))
                FAIL("field '%s': type must be double, int, bool, text or json", k);
            if (!(d->name = strdup(k)))
                return WEIR_ENOMEM;
            sc->n_decls++;
        }
        sc->decls = s->decls;
    }
    json_t *cols = json_object_get(def, "columns");
    if (cols) {
        if (!json_is_array(cols) || !json_array_size(cols))
            FAIL("columns must be a non-empty array of names");
        s->columns = calloc(json_array_size(cols), sizeof(char *));
        if (!s->columns)
            return WEIR_ENOMEM;
        size_t i;
        json_t *c;
        json_array_foreach(cols, i, c)
        {
            if (!json_is_string(c))
                FAIL("columns must be names");
            if (!(s->columns[i] = strdup(json_string_value(c))))
                return WEIR_ENOMEM;
            sc->n_csv_columns++;
        }
        sc->csv_columns = (const char *const *)s->columns;
    }
    const char *why = NULL;
    if (rec_schema_check(sc, &why))
        FAIL("%s", why ? why : "invalid schema");
fail:
    return rc;
}

static int def_source(ingest_stream *s, json_t *def, char *err, size_t errlen)
{
    int rc = WEIR_OK;
    const char *v = jstr(def, "source");
    if (!v || !strcmp(v, "http") || !*v)
        return WEIR_OK;
    if (strncmp(v, "mqtt:", 5))
        FAIL("source must be mqtt:<topic filter> or http, not '%s'", v);
    if (!mqtt_topic_filter_valid((const uint8_t *)v + 5, strlen(v + 5)))
        FAIL("source '%s' is not a valid MQTT topic filter", v);
    if (!(s->source = strdup(v + 5)))
        return WEIR_ENOMEM;
fail:
    return rc;
}

static void list_insert(ingest *in, ingest_stream *s)
{
    ingest_stream **pp = &in->streams;
    while (*pp && strcmp((*pp)->name, s->name) < 0)
        pp = &(*pp)->next;
    s->next = *pp;
    *pp = s;
}

static void list_remove(ingest *in, ingest_stream *s)
{
    for (ingest_stream **pp = &in->streams; *pp; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            return;
        }
}

static void unregister_source(ingest *in, ingest_stream *s)
{
    if (s->source)
        mqtt_subtree_remove(in->sources, (const uint8_t *)s->source, strlen(s->source), s);
}

int ingest_define(ingest *in, json_t *def, const char *origin, bool persist, char *err,
                  size_t errlen, ingest_stream **out)
{
    int rc = WEIR_OK;
    ingest_stream *s = NULL;
    char *text = NULL;
    const char *name = jstr(def, "name");
    if (!json_is_object(def) || !name || !name_valid(name))
        FAIL("a stream needs a name of 1-128 letters, digits, '_', '-' or '.'");
    if (name[0] == '$' && strcmp(origin, "system"))
        FAIL("names starting with '$' are reserved for weir's own streams");
    stream_opts o;
    if ((rc = def_opts(def, &o, err, errlen)))
        goto fail;
    ingest_stream *old = ingest_find(in, name);
    if (old && stream_partitions(old->st) != o.partitions)
        FAIL("stream '%s' has %u partitions; the count cannot change", name,
             stream_partitions(old->st));
    if (!(s = calloc(1, sizeof(*s))) || !(s->name = strdup(name)) || !(s->origin = strdup(origin)))
        goto oom;
    if ((rc = def_schema(s, def, err, errlen)) || (rc = def_source(s, def, err, errlen)))
        goto fail;
    rc = stream_open(in->store, name, &o, &s->st);
    if (rc) {
        snprintf(err, errlen, "cannot open stream '%s': %s", name, weir_strerror(rc));
        goto fail;
    }
    s->def = json_deep_copy(def);
    if (!s->def)
        goto oom;
    if (persist) {
        text = json_dumps(s->def, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
            goto oom;
        rc = catalog_stream_put(in->cat, name, text, origin);
        if (rc) {
            snprintf(err, errlen, "cannot store the definition: %s", weir_strerror(rc));
            goto fail;
        }
    }
    if (s->source) {
        mqtt_sub sub = {.owner = s, .options = 1};
        bool existed;
        if ((rc = mqtt_subtree_add(in->sources, (const uint8_t *)s->source, strlen(s->source),
                                   &sub, &existed)))
            goto fail;
    }
    if (old && old->holds) {
        snprintf(err, errlen, "stream '%s' is being queried; try again", name);
        rc = WEIR_EBUSY;
        goto fail;
    }
    if (old) {
        s->accepted = old->accepted;
        s->rejected = old->rejected;
        unregister_source(in, old);
        list_remove(in, old);
        if (in->deadletter == old)
            in->deadletter = s;
        stream_free(old);
    }
    list_insert(in, s);
    free(text);
    if (out)
        *out = s;
    return WEIR_OK;
oom:
    rc = WEIR_ENOMEM;
    snprintf(err, errlen, "out of memory");
fail:
    free(text);
    stream_free(s);
    return rc;
}

int ingest_drop(ingest *in, const char *name)
{
    ingest_stream *s = ingest_find(in, name);
    /* System streams ("$deadletter", the append-only "$audit") stay. */
    if (!s || s == in->deadletter || name[0] == '$')
        return s ? WEIR_EDENIED : WEIR_ENOTFOUND;
    if (s->holds)
        return WEIR_EBUSY;
    unregister_source(in, s);
    list_remove(in, s);
    int rc = stream_delete(in->store, name);
    int crc = catalog_stream_delete(in->cat, name);
    stream_free(s);
    return rc ? rc : (crc == WEIR_ENOTFOUND ? WEIR_OK : crc);
}

/* A [stream.NAME] section as a JSON definition: strings stay strings except
 * partitions (a number), fields ("a:double,b:int") and columns ("a,b"). */
static json_t *config_def(const config_object_kv *first, const char *name)
{
    json_t *def = json_pack("{s:s}", "name", name);
    for (const config_object_kv *kv = first; kv && def; kv = kv->next) {
        if (strcmp(kv->kind, "stream") || strcmp(kv->name, name))
            continue;
        json_t *v = NULL;
        if (!strcmp(kv->key, "partitions")) {
            v = json_integer(strtoll(kv->value, NULL, 10));
        } else if (!strcmp(kv->key, "fields") || !strcmp(kv->key, "columns")) {
            bool fields = kv->key[0] == 'f';
            v = fields ? json_object() : json_array();
            char *copy = strdup(kv->value), *save = NULL;
            for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
                 t = strtok_r(NULL, ",", &save)) {
                while (*t == ' ')
                    t++;
                char *colon = fields ? strchr(t, ':') : NULL;
                if (colon) {
                    *colon = '\0';
                    json_object_set_new(v, t, json_string(colon + 1));
                } else if (fields) {
                    json_object_set_new(v, t, json_string("?"));
                } else {
                    json_array_append_new(v, json_string(t));
                }
            }
            free(copy);
        } else {
            v = json_string(kv->value);
        }
        json_object_set_new(def, kv->key, v);
    }
    return def;
}

int ingest_define_config(ingest *in, const config_object_kv *objects, char *err, size_t errlen)
{
    for (const config_object_kv *kv = objects; kv; kv = kv->next) {
        if (strcmp(kv->kind, "stream"))
            continue;
        bool seen = false;
        for (const config_object_kv *p = objects; p != kv && !seen; p = p->next)
            seen = !strcmp(p->kind, "stream") && !strcmp(p->name, kv->name);
        if (seen)
            continue;
        json_t *def = config_def(objects, kv->name);
        if (!def)
            return WEIR_ENOMEM;
        char why[256];
        int rc = ingest_define(in, def, "config", true, why, sizeof(why), NULL);
        json_decref(def);
        if (rc) {
            snprintf(err, errlen, "[stream.%s]: %s", kv->name, why);
            return rc;
        }
    }
    return WEIR_OK;
}

typedef struct load_ctx {
    ingest *in;
    char *err;
    size_t errlen;
} load_ctx;

static int load_one(void *arg, const char *name, const char *text, const char *origin)
{
    load_ctx *lc = arg;
    json_error_t jerr;
    json_t *def = json_loads(text, 0, &jerr);
    if (!def) {
        snprintf(lc->err, lc->errlen, "stream '%s': stored definition unreadable", name);
        return WEIR_ECORRUPT;
    }
    char why[256];
    int rc = ingest_define(lc->in, def, origin, false, why, sizeof(why), NULL);
    json_decref(def);
    if (rc)
        snprintf(lc->err, lc->errlen, "stream '%s': %s", name, why);
    return rc;
}

int ingest_load_catalog(ingest *in, char *err, size_t errlen)
{
    load_ctx lc = {in, err, errlen};
    return catalog_stream_list(in->cat, load_one, &lc);
}

/* ---- Lifecycle ---------------------------------------------------------- */

int ingest_new(stream_store *st, catalog *cat, ingest_publish_fn pub, void *pub_ctx,
               ingest **out)
{
    ingest *in = calloc(1, sizeof(*in));
    if (!in)
        return WEIR_ENOMEM;
    in->store = st;
    in->cat = cat;
    in->pub = pub;
    in->pub_ctx = pub_ctx;
    arena_init(&in->scratch, ARENA_MAX);
    buf_init(&in->value, VALUE_MAX);
    in->sources = mqtt_subtree_new();
    if (!in->sources) {
        ingest_free(in);
        return WEIR_ENOMEM;
    }
    json_t *def = json_pack("{s:s, s:s, s:s, s:i, s:s}", "name", DEADLETTER, "format", "json",
                            "retention", "7d", "partitions", 1, "sync", "interval=100ms");
    char err[256];
    int rc = def ? ingest_define(in, def, "system", true, err, sizeof(err), &in->deadletter)
                 : WEIR_ENOMEM;
    json_decref(def);
    if (rc) {
        wlog_error("ingest", "deadletter", "error=\"%s\"", err);
        ingest_free(in);
        return rc;
    }
    *out = in;
    return WEIR_OK;
}

void ingest_free(ingest *in)
{
    if (!in)
        return;
    for (ingest_stream *s = in->streams, *next; s; s = next) {
        next = s->next;
        stream_free(s);
    }
    mqtt_subtree_free(in->sources);
    arena_free(&in->scratch);
    buf_free(&in->value);
    free(in->hits);
    free(in);
}

ingest_stream *ingest_find(ingest *in, const char *name)
{
    for (ingest_stream *s = in->streams; s; s = s->next)
        if (!strcmp(s->name, name))
            return s;
    return NULL;
}

void ingest_foreach(ingest *in, void (*cb)(void *arg, ingest_stream *s), void *arg)
{
    for (ingest_stream *s = in->streams, *next; s; s = next) {
        next = s->next;
        cb(arg, s);
    }
}

void ingest_stream_hold(ingest_stream *s)
{
    s->holds++;
}

void ingest_stream_release(ingest_stream *s)
{
    s->holds--;
}

const char *ingest_stream_name(const ingest_stream *s)
{
    return s->name;
}

stream *ingest_stream_store(ingest_stream *s)
{
    return s->st;
}

const rec_schema *ingest_stream_schema(const ingest_stream *s)
{
    return &s->schema;
}

static json_t *ns_time(int64_t ns)
{
    if (!ns)
        return json_null();
    char buf[64];
    time_t secs = (time_t)(ns / WEIR_NS_PER_S);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)((ns % WEIR_NS_PER_S) / WEIR_NS_PER_MS));
    return json_string(buf);
}

json_t *ingest_stream_json(ingest_stream *s)
{
    stream_stats st;
    stream_get_stats(s->st, &st);
    json_t *o = json_deep_copy(s->def);
    if (!o)
        return NULL;
    json_object_set_new(o, "origin", json_string(s->origin));
    json_object_set_new(o, "records", json_integer((json_int_t)st.records));
    json_object_set_new(o, "bytes", json_integer((json_int_t)st.bytes));
    json_object_set_new(o, "segments", json_integer((json_int_t)st.segments));
    json_object_set_new(o, "first", ns_time(st.first_ts));
    json_object_set_new(o, "last", ns_time(st.last_ts));
    json_object_set_new(o, "partitions", json_integer(stream_partitions(s->st)));
    json_object_set_new(o, "accepted", json_integer((json_int_t)s->accepted));
    json_object_set_new(o, "rejected", json_integer((json_int_t)s->rejected));
    if (!json_object_get(o, "retention"))
        json_object_set_new(o, "retention", json_string("none"));
    json_t *seen = json_object();
    for (uint32_t i = 0; i < s->n_seen; i++)
        json_object_set_new(seen, s->seen[i].name,
                            json_string(s->seen[i].mixed ? "mixed"
                                                         : rec_type_name(s->seen[i].type)));
    json_object_set_new(o, "fields_seen", seen);
    if (s->seen_full)
        json_object_set_new(o, "fields_seen_truncated", json_true());
    return o;
}

int ingest_format_parse(const char *s, rec_format *out)
{
    if (!strcmp(s, "json") || strstr(s, "application/json") || strstr(s, "ndjson") ||
        strstr(s, "jsonlines")) {
        *out = REC_FMT_JSON;
        return WEIR_OK;
    }
    if (!strcmp(s, "csv") || strstr(s, "text/csv") || strstr(s, "tab-separated")) {
        *out = REC_FMT_CSV;
        return WEIR_OK;
    }
    if (!strcmp(s, "line") || !strcmp(s, "influx") || strstr(s, "text/plain") ||
        strstr(s, "line-protocol")) {
        *out = REC_FMT_LINE;
        return WEIR_OK;
    }
    return WEIR_EINVAL;
}

/* ---- Appending ---------------------------------------------------------- */

/* The key of a record: its key field, else the configured topic level. */
static void record_key(const ingest_stream *s, const record *r, const uint8_t *topic,
                       size_t topic_len, const uint8_t **key, uint32_t *key_len)
{
    *key = (const uint8_t *)r->key;
    *key_len = r->key ? r->key_len : 0;
    if (*key_len || !s->key_topic_level || !topic)
        return;
    int level = 1;
    size_t start = 0;
    for (size_t i = 0; i <= topic_len; i++) {
        if (i == topic_len || topic[i] == '/') {
            if (level == s->key_topic_level) {
                *key = topic + start;
                *key_len = (uint32_t)(i - start);
                return;
            }
            level++;
            start = i + 1;
        }
    }
}

/* Remembers the fields and types a record shows (first SEEN_MAX names). */
static void note_fields(ingest_stream *s, const record *r)
{
    for (uint32_t i = 0; i < r->n_fields; i++) {
        const rec_field *f = &r->fields[i];
        uint32_t j = 0;
        while (j < s->n_seen && (s->seen[j].len != f->name_len ||
                                 memcmp(s->seen[j].name, f->name, f->name_len)))
            j++;
        if (j < s->n_seen) {
            if (f->v.type != REC_NULL && s->seen[j].type != f->v.type) {
                if (s->seen[j].type == REC_NULL ||
                    (s->seen[j].type == REC_INT && f->v.type == REC_DOUBLE))
                    s->seen[j].type = f->v.type;
                else if (!(s->seen[j].type == REC_DOUBLE && f->v.type == REC_INT))
                    s->seen[j].mixed = true;
            }
            continue;
        }
        if (s->n_seen == SEEN_MAX || f->name_len >= SEEN_NAME) {
            s->seen_full = true;
            continue;
        }
        memcpy(s->seen[s->n_seen].name, f->name, f->name_len);
        s->seen[s->n_seen].name[f->name_len] = '\0';
        s->seen[s->n_seen].len = f->name_len;
        /* An INT seen first may later carry decimals: report such a field as
         * double once it does (handled above), int until then. */
        s->seen[s->n_seen].type = f->v.type;
        s->seen[s->n_seen].mixed = false;
        s->n_seen++;
    }
}

/* Encodes r into in->value and describes it as a store record. */
static int prepare(ingest *in, ingest_stream *s, const record *r, const uint8_t *topic,
                   size_t topic_len, int64_t arrival, stream_rec_in *rec)
{
    note_fields(s, r);
    buf_reset(&in->value);
    int rc = record_encode(r, &in->value);
    if (rc)
        return rc;
    memset(rec, 0, sizeof(*rec));
    record_key(s, r, topic, topic_len, &rec->key, &rec->key_len);
    rec->ts = r->ts ? r->ts : arrival;
    rec->arrival = arrival;
    rec->value = buf_head(&in->value);
    rec->value_len = (uint32_t)buf_used(&in->value);
    return WEIR_OK;
}

/* Keeps a payload that did not decode, with why, and tells subscribers. */
static void dead_letter(ingest *in, ingest_stream *s, const uint8_t *topic, size_t topic_len,
                        const uint8_t *payload, size_t n, const rec_error *e, int64_t arrival)
{
    s->rejected++;
    wlog_limited(&dead_limit, WLOG_WARN, "ingest", "dead_letter",
                 "stream=%s line=%u column=%u error=\"%s\"", s->name, e->line, e->column, e->msg);
    json_t *j = json_pack("{s:s, s:s#, s:s, s:i, s:i, s:s#}", "stream", s->name, "topic",
                          topic ? (const char *)topic : "", topic ? (int)topic_len : 0, "error",
                          e->msg, "line", (json_int_t)e->line, "column", (json_int_t)e->column,
                          "payload", (const char *)payload, (int)(n > 4096 ? 4096 : n));
    if (!j) /* a payload that is not UTF-8: keep its length only */
        j = json_pack("{s:s, s:s, s:i}", "stream", s->name, "error", e->msg, "bytes",
                      (json_int_t)n);
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return;
    if (in->deadletter && s != in->deadletter) {
        arena_reset(&in->scratch);
        record r;
        rec_error e2;
        if (!rec_decode_json((const uint8_t *)text, strlen(text), &in->deadletter->schema,
                             &in->scratch, &r, &e2)) {
            stream_rec_in rec;
            if (!prepare(in, in->deadletter, &r, NULL, 0, arrival, &rec)) {
                rec.key = (const uint8_t *)s->name;
                rec.key_len = (uint32_t)strlen(s->name);
                stream_append(in->deadletter->st, 0, &rec, 1, NULL, NULL, NULL);
            }
        }
    }
    if (in->pub) {
        char t[256];
        snprintf(t, sizeof(t), "$weir/deadletter/%s", s->name);
        in->pub(in->pub_ctx, t, text, strlen(text));
    }
    free(text);
}

static int decode_one(const ingest_stream *s, const uint8_t *p, size_t n, int64_t arrival,
                      arena *a, record *r, rec_error *e)
{
    switch (s->schema.format) {
    case REC_FMT_JSON:
        return rec_decode_json(p, n, &s->schema, a, r, e);
    case REC_FMT_LINE:
        return rec_decode_line(p, n, &s->schema, arrival, a, r, e);
    case REC_FMT_CSV: {
        /* An MQTT payload of CSV is one line under the declared columns. */
        rec_csv *csv = NULL;
        int rc = rec_csv_new(&s->schema, &csv);
        if (!rc) {
            size_t len = n;
            while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
                len--;
            rc = rec_csv_line(csv, p, len, a, r, e);
        } else {
            memset(e, 0, sizeof(*e));
            e->code = rc;
            snprintf(e->msg, sizeof(e->msg), "CSV over MQTT needs the stream's columns");
        }
        rec_csv_free(csv);
        return rc;
    }
    }
    return WEIR_EINVAL;
}

static void on_source(const mqtt_sub *sub, bool shared, void *arg)
{
    (void)shared;
    ingest *in = arg;
    if (in->n_hits == in->cap_hits) {
        uint32_t cap = in->cap_hits ? in->cap_hits * 2 : 8;
        ingest_stream **h = realloc(in->hits, cap * sizeof(*h));
        if (!h)
            return;
        in->hits = h;
        in->cap_hits = cap;
    }
    in->hits[in->n_hits++] = sub->owner;
}

int ingest_mqtt(ingest *in, const uint8_t *topic, size_t topic_len, const uint8_t *payload,
                size_t payload_len, int64_t arrival_ns, bool want_done, ingest_done_fn done,
                void *arg)
{
    in->n_hits = 0;
    mqtt_subtree_match(in->sources, topic, topic_len, on_source, NULL, in);
    if (!in->n_hits)
        return WEIR_OK;
    ingest_wait *w = NULL;
    if (want_done) {
        if (!(w = calloc(1, sizeof(*w))))
            return WEIR_ENOMEM;
        w->remaining = 1; /* released at the end, after every append was made */
        w->done = done;
        w->arg = arg;
    }
    int rc = WEIR_OK;
    for (uint32_t i = 0; i < in->n_hits; i++) {
        ingest_stream *s = in->hits[i];
        arena_reset(&in->scratch);
        record r;
        rec_error e;
        memset(&e, 0, sizeof(e));
        if (decode_one(s, payload, payload_len, arrival_ns, &in->scratch, &r, &e)) {
            dead_letter(in, s, topic, topic_len, payload, payload_len, &e, arrival_ns);
            continue;
        }
        stream_rec_in rec;
        if ((rc = prepare(in, s, &r, topic, topic_len, arrival_ns, &rec)))
            break;
        uint32_t part = stream_partition_for(s->st, rec.key, rec.key_len);
        if (w)
            w->remaining++;
        rc = stream_append(s->st, part, &rec, 1, w ? on_appended : NULL, w, NULL);
        if (rc) {
            if (w)
                w->remaining--;
            break;
        }
        s->accepted++;
    }
    if (!w)
        return rc;
    if (rc) {
        /* Appends already made complete later and report then; this message
         * is refused now, so its done must not also fire. */
        w->done = NULL;
        wait_release(w);
        return rc;
    }
    if (w->remaining == 1) {
        free(w); /* nothing was appended (all dead-lettered) */
        return WEIR_OK;
    }
    wait_release(w);
    return WEIR_EAGAIN;
}

/* ---- Batches ------------------------------------------------------------ */

typedef struct batch_ctx {
    ingest *in;
    ingest_stream *s;
    int64_t arrival;
    ingest_result *res;
    ingest_wait *w;
    const uint8_t *body;
    int rc;
    /* Records of the current chunk, per partition, encoded back to back. */
    weir_buf enc;
    stream_rec_in *recs;
    uint32_t *parts;
    uint32_t n;
} batch_ctx;

static int batch_flush(batch_ctx *b)
{
    /* One append call per partition run keeps offsets dense per call. */
    uint32_t i = 0;
    while (i < b->n && !b->rc) {
        uint32_t j = i;
        while (j < b->n && b->parts[j] == b->parts[i])
            j++;
        b->w->remaining++;
        int rc = stream_append(b->s->st, b->parts[i], &b->recs[i], j - i, on_appended, b->w, NULL);
        if (rc) {
            b->w->remaining--;
            b->rc = rc;
        } else {
            b->s->accepted += j - i;
        }
        i = j;
    }
    b->n = 0;
    buf_reset(&b->enc);
    return b->rc;
}

static int batch_record(void *arg, const record *r)
{
    batch_ctx *b = arg;
    stream_rec_in rec;
    int rc = prepare(b->in, b->s, r, NULL, 0, b->arrival, &rec);
    if (rc) {
        b->rc = rc;
        return 1;
    }
    /* Copy key and value into the chunk buffer; pointers are fixed up at
     * flush time because the buffer may move while it grows. */
    size_t off = buf_used(&b->enc);
    if (buf_append(&b->enc, rec.key, rec.key_len) ||
        buf_append(&b->enc, rec.value, rec.value_len)) {
        b->rc = WEIR_ENOMEM;
        return 1;
    }
    rec.key = (const uint8_t *)(uintptr_t)off;
    rec.value = (const uint8_t *)(uintptr_t)(off + rec.key_len);
    b->parts[b->n] = stream_partition_for(b->s->st, buf_head(&b->enc) + off, rec.key_len);
    b->recs[b->n++] = rec;
    if (b->n == BATCH_CHUNK) {
        for (uint32_t i = 0; i < b->n; i++) {
            b->recs[i].key = buf_head(&b->enc) + (uintptr_t)b->recs[i].key;
            b->recs[i].value = buf_head(&b->enc) + (uintptr_t)b->recs[i].value;
        }
        if (batch_flush(b))
            return 1;
    }
    return 0;
}

static void batch_error(void *arg, const rec_error *e)
{
    batch_ctx *b = arg;
    b->s->rejected++;
    if (b->res->errors && json_array_size(b->res->errors) < MAX_ERRORS_REPORTED)
        json_array_append_new(b->res->errors,
                              json_pack("{s:i, s:i, s:s}", "line", (json_int_t)e->line, "column",
                                        (json_int_t)e->column, "error", e->msg));
    wlog_limited(&dead_limit, WLOG_WARN, "ingest", "rejected",
                 "stream=%s line=%u column=%u error=\"%s\"", b->s->name, e->line, e->column,
                 e->msg);
}

int ingest_batch(ingest *in, ingest_stream *s, const rec_schema *sc, const uint8_t *body,
                 size_t n, int64_t arrival_ns, ingest_result *res, ingest_done_fn done,
                 void *arg)
{
    batch_ctx b = {.in = in, .s = s, .arrival = arrival_ns, .res = res, .body = body};
    memset(res, 0, sizeof(*res));
    res->errors = json_array();
    buf_init(&b.enc, 0);
    b.recs = calloc(BATCH_CHUNK, sizeof(*b.recs));
    b.parts = calloc(BATCH_CHUNK, sizeof(*b.parts));
    b.w = calloc(1, sizeof(*b.w));
    int rc = WEIR_OK;
    if (!b.recs || !b.parts || !b.w || !res->errors) {
        free(b.w);
        rc = WEIR_ENOMEM;
        goto cleanup;
    }
    b.w->remaining = 1;
    b.w->done = done;
    b.w->arg = arg;
    arena batch_arena;
    arena_init(&batch_arena, ARENA_MAX);
    /* A JSON body may be an array or NDJSON; rec_batch_decode tells. */
    rc = rec_batch_decode(sc ? sc->format : s->schema.format, true, body, n, sc ? sc : &s->schema,
                          &batch_arena, batch_record, batch_error, &b, &res->accepted,
                          &res->rejected);
    arena_free(&batch_arena);
    if (!rc && !b.rc && b.n) {
        for (uint32_t i = 0; i < b.n; i++) {
            b.recs[i].key = buf_head(&b.enc) + (uintptr_t)b.recs[i].key;
            b.recs[i].value = buf_head(&b.enc) + (uintptr_t)b.recs[i].value;
        }
        batch_flush(&b);
    }
    if (!rc)
        rc = b.rc;
    if (rc) {
        b.w->done = NULL; /* the caller answers the error now */
        wait_release(b.w);
        goto cleanup;
    }
    if (b.w->remaining == 1) {
        free(b.w);
        rc = WEIR_OK;
        goto cleanup;
    }
    wait_release(b.w);
    rc = WEIR_EAGAIN;
cleanup:
    buf_free(&b.enc);
    free(b.recs);
    free(b.parts);
    return rc;
}
