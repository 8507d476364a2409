/* config.c -- see config.h. */
#include "base/config.h"
#include "base/err.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { OPT_STR, OPT_SIZE, OPT_UINT, OPT_BOOL, OPT_DURATION } opt_type;

typedef struct opt {
    const char *section;
    const char *key;
    opt_type type;
    size_t offset;
    const char *def;
    const char *help;
} opt;

#define O(sec, key, type, field, def, help) {sec, key, type, offsetof(weir_config, field), def, help}

static const opt options[] = {
    O("node", "name", OPT_STR, node_name, "weir", "name of this node among its peers"),
    O("node", "data_dir", OPT_STR, data_dir, "./weir-data",
      "directory for the catalog, stream segments and MQTT snapshots"),
    O("node", "log_level", OPT_STR, log_level, "info", "debug, info, warn or error"),
    O("node", "peers", OPT_STR, node_peers, "",
      "other weir nodes this one may forward μ-service jobs to and move rules to: "
      "name=http://host:port, comma-separated (e.g. core=http://10.0.0.3:8080)"),
    O("mqtt", "listen", OPT_STR, mqtt_listen, "127.0.0.1:1883",
      "host:port of the MQTT/TCP listener; empty disables it"),
    O("mqtt", "max_packet_size", OPT_SIZE, mqtt_max_packet_size, "1m",
      "largest MQTT packet accepted (bigger ones close the connection with 0x95) and sent"),
    O("mqtt", "max_connections", OPT_UINT, mqtt_max_connections, "100000",
      "connections beyond this are refused with 'server unavailable'"),
    O("mqtt", "receive_maximum", OPT_UINT, mqtt_receive_maximum, "256",
      "QoS 1/2 messages in flight per client in each direction (also caps what is sent to "
      "3.1.1 clients and to 5.0 clients announcing more)"),
    O("mqtt", "max_queued_messages", OPT_UINT, mqtt_max_queued_messages, "1000",
      "QoS 1/2 messages queued per session while it is offline or its window is full; "
      "the oldest is dropped and counted when full"),
    O("mqtt", "max_queued_bytes", OPT_SIZE, mqtt_max_queued_bytes, "256m",
      "memory for all queued messages together; new QoS 1/2 messages for a full session are "
      "dropped and counted past it"),
    O("mqtt", "max_outbuf", OPT_SIZE, mqtt_max_outbuf, "4m",
      "unsent bytes per connection; past it QoS 0 messages to that client are dropped and "
      "QoS 1/2 wait in the session queue"),
    O("mqtt", "max_keepalive", OPT_UINT, mqtt_max_keepalive, "65535",
      "largest keep-alive in seconds; an MQTT 5 client asking for more is told the server "
      "keep-alive"),
    O("mqtt", "max_session_expiry", OPT_UINT, mqtt_max_session_expiry, "604800",
      "cap in seconds on the session expiry interval a client may ask for (0xFFFFFFFF "
      "requests are capped too)"),
    O("mqtt", "topic_alias_maximum", OPT_UINT, mqtt_topic_alias_maximum, "64",
      "topic aliases a client may define towards the broker (MQTT 5)"),
    O("mqtt", "max_subscriptions", OPT_UINT, mqtt_max_subscriptions, "1000",
      "subscriptions per session; more are refused with 'quota exceeded'"),
    O("mqtt", "retain_available", OPT_BOOL, mqtt_retain_available, "true",
      "whether retained messages are supported"),
    O("mqtt", "tls_listen", OPT_STR, mqtt_tls_listen, "127.0.0.1:8883",
      "host:port of the MQTT over TLS listener, started when [tls] cert is set; empty "
      "disables it"),
    O("mqtt", "deny", OPT_STR, mqtt_deny, "",
      "comma-separated topic filters nobody may publish or subscribe to"),
    O("mqtt", "autosave_interval", OPT_DURATION, mqtt_autosave_ms, "30s",
      "period of the snapshot of retained messages and persistent sessions; 0 = only at "
      "shutdown"),
    O("mqtt", "persistence", OPT_BOOL, mqtt_persistence, "true",
      "keep retained messages and persistent sessions across restarts"),
    O("http", "listen", OPT_STR, http_listen, "127.0.0.1:8080",
      "host:port of the HTTP listener (API, dashboard, MQTT over WebSocket at /mqtt); empty "
      "disables it"),
    O("http", "max_body", OPT_SIZE, http_max_body, "16m", "largest HTTP request body"),
    O("http", "tls", OPT_BOOL, http_tls, "false",
      "serve HTTPS (and WSS at /mqtt) instead of HTTP on http.listen, with the [tls] "
      "certificate"),
    O("tls", "cert", OPT_STR, tls_cert, "",
      "PEM certificate chain (leaf first) for MQTT over TLS and HTTPS; empty disables TLS; "
      "reloaded on SIGHUP"),
    O("tls", "key", OPT_STR, tls_key, "", "PEM private key of the certificate"),
    O("tls", "ca", OPT_STR, tls_ca, "",
      "PEM CA bundle that client certificates must chain to (needed for verify_client)"),
    O("tls", "min_version", OPT_STR, tls_min_version, "1.2", "oldest TLS version: 1.2 or 1.3"),
    O("tls", "verify_client", OPT_STR, tls_verify_client, "none",
      "client certificates: none, optional (verified when presented; CN = identity) or "
      "require"),
    O("storage", "encryption_key_file", OPT_STR, storage_encryption_key_file, "",
      "file with the 32-byte key that encrypts stream segments and the MQTT snapshot at "
      "rest (`weir keygen FILE`); empty = no encryption"),
    O("http", "live_buffer", OPT_SIZE, http_live_buffer, "1m",
      "per live-feed client: bound of unsent bytes (reading pauses at half of it)"),
    O("http", "live_slow", OPT_DURATION, http_live_slow_ms, "5s",
      "a live-feed client whose buffer stays full this long is disconnected (slow consumer)"),
    O("http", "web_root", OPT_STR, http_web_root, "",
      "development: serve the dashboard's files from this directory (e.g. web/), falling back "
      "to the embedded ones; empty serves the embedded files only"),
    O("demo", "enabled", OPT_BOOL, demo_enabled, "false",
      "the demo profile (weir serve --demo): a climate stream fed by a replay of the UCI file "
      "as 9 room devices; loopback listeners only"),
    O("demo", "file", OPT_STR, demo_file, "demo/data/uci_appliances_energydata_complete.csv.xz",
      "the CSV the demo replays (plain or .xz)"),
    O("demo", "speedup", OPT_UINT, demo_speedup, "600",
      "how many times faster than recorded the demo replays (600: a 10-minute row per second)"),
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

int config_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *s == '-')
        return WEIR_EINVAL;
    uint64_t mul = 1;
    switch (tolower((unsigned char)*end)) {
    case '\0':
        break;
    case 'k':
        mul = 1024ull;
        end++;
        break;
    case 'm':
        mul = 1024ull * 1024;
        end++;
        break;
    case 'g':
        mul = 1024ull * 1024 * 1024;
        end++;
        break;
    default:
        return WEIR_EINVAL;
    }
    if (tolower((unsigned char)*end) == 'b')
        end++;
    if (*end)
        return WEIR_EINVAL;
    if (v > UINT64_MAX / mul)
        return WEIR_EINVAL;
    *out = v * mul;
    return WEIR_OK;
}

int config_parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return WEIR_EINVAL;
    int64_t mul;
    if (!*end || !strcmp(end, "s"))
        mul = 1000;
    else if (!strcmp(end, "ms"))
        mul = 1;
    else if (!strcmp(end, "m"))
        mul = 60000;
    else if (!strcmp(end, "h"))
        mul = 3600000;
    else if (!strcmp(end, "d"))
        mul = 86400000;
    else
        return WEIR_EINVAL;
    if (v > INT64_MAX / mul)
        return WEIR_EINVAL;
    *out = v * mul;
    return WEIR_OK;
}

int config_parse_bool(const char *s, bool *out)
{
    if (!strcasecmp(s, "true") || !strcasecmp(s, "yes") || !strcasecmp(s, "on") ||
        !strcmp(s, "1")) {
        *out = true;
        return WEIR_OK;
    }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "no") || !strcasecmp(s, "off") ||
        !strcmp(s, "0")) {
        *out = false;
        return WEIR_OK;
    }
    return WEIR_EINVAL;
}

int config_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    const char *h = s;
    size_t hl;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return WEIR_EINVAL;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return WEIR_EINVAL;
        hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= hostlen)
        return WEIR_EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || p < 0 || p > 65535)
        return WEIR_EINVAL;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = (int)p;
    return WEIR_OK;
}

static int opt_apply(weir_config *c, const opt *o, const char *value)
{
    void *field = (char *)c + o->offset;
    switch (o->type) {
    case OPT_STR: {
        char *dup = strdup(value);
        if (!dup)
            return WEIR_ENOMEM;
        free(*(char **)field);
        *(char **)field = dup;
        return WEIR_OK;
    }
    case OPT_SIZE:
        return config_parse_size(value, (uint64_t *)field);
    case OPT_UINT: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (errno || end == value || *end || *value == '-')
            return WEIR_EINVAL;
        *(uint64_t *)field = v;
        return WEIR_OK;
    }
    case OPT_BOOL:
        return config_parse_bool(value, (bool *)field);
    case OPT_DURATION:
        return config_parse_duration_ms(value, (int64_t *)field);
    }
    return WEIR_EINVAL;
}

static const opt *opt_find(const char *section, const char *key)
{
    const opt *found = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        if (strcmp(options[i].key, key))
            continue;
        if (section && strcmp(options[i].section, section))
            continue;
        if (found)
            return NULL; /* ambiguous without a section */
        found = &options[i];
    }
    return found;
}

int config_init(weir_config *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < N_OPTIONS; i++) {
        int rc = opt_apply(c, &options[i], options[i].def);
        if (rc) {
            config_free(c);
            return rc;
        }
    }
    return WEIR_OK;
}

void config_free(weir_config *c)
{
    for (config_object_kv *kv = c->objects, *next; kv; kv = next) {
        next = kv->next;
        free(kv->kind);
        free(kv->name);
        free(kv->key);
        free(kv->value);
        free(kv);
    }
    c->objects = NULL;
    c->objects_tail = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].type == OPT_STR) {
            char **p = (char **)((char *)c + options[i].offset);
            free(*p);
            *p = NULL;
        }
}

int config_set(weir_config *c, const char *name, const char *value, char *err, size_t errlen)
{
    char section[64] = "";
    const char *key = name;
    const char *dot = strchr(name, '.');
    if (dot) {
        size_t n = (size_t)(dot - name);
        if (n >= sizeof(section)) {
            snprintf(err, errlen, "unknown option '%s'", name);
            return WEIR_EINVAL;
        }
        memcpy(section, name, n);
        section[n] = '\0';
        key = dot + 1;
    }
    const opt *o = opt_find(dot ? section : NULL, key);
    if (!o) {
        snprintf(err, errlen, "unknown option '%s'", name);
        return WEIR_EINVAL;
    }
    int rc = opt_apply(c, o, value);
    if (rc)
        snprintf(err, errlen, "bad value '%s' for %s.%s", value, o->section, o->key);
    return rc;
}

typedef struct load_ctx {
    weir_config *c;
    char *err;
    size_t errlen;
    const char *path;
    int rc;
} load_ctx;

static int object_add(weir_config *c, const char *section, const char *key, const char *value)
{
    const char *dot = strchr(section, '.');
    config_object_kv *kv = calloc(1, sizeof(*kv));
    if (!kv)
        return WEIR_ENOMEM;
    kv->kind = strndup(section, (size_t)(dot - section));
    kv->name = strdup(dot + 1);
    kv->key = strdup(key);
    kv->value = strdup(value);
    if (!kv->kind || !kv->name || !kv->key || !kv->value) {
        free(kv->kind);
        free(kv->name);
        free(kv->key);
        free(kv->value);
        free(kv);
        return WEIR_ENOMEM;
    }
    if (!c->objects_tail)
        c->objects_tail = &c->objects;
    *c->objects_tail = kv;
    c->objects_tail = &kv->next;
    return WEIR_OK;
}

static bool is_object_section(const char *section)
{
    static const char *const kinds[] = CONFIG_OBJECT_KINDS;
    const char *dot = strchr(section, '.');
    if (!dot || !dot[1])
        return false;
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
        if (strlen(kinds[i]) == (size_t)(dot - section) &&
            !strncmp(section, kinds[i], (size_t)(dot - section)))
            return true;
    return false;
}

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    load_ctx *lc = user;
    if (is_object_section(section)) {
        lc->rc = object_add(lc->c, section, name, value);
        return lc->rc == WEIR_OK;
    }
    const opt *o = opt_find(section, name);
    if (!o) {
        snprintf(lc->err, lc->errlen, "%s: unknown option [%s] %s", lc->path, section, name);
        lc->rc = WEIR_EINVAL;
        return 0;
    }
    if (opt_apply(lc->c, o, value)) {
        snprintf(lc->err, lc->errlen, "%s: bad value '%s' for [%s] %s", lc->path, value,
                 section, name);
        lc->rc = WEIR_EINVAL;
        return 0;
    }
    return 1;
}

int config_load_file(weir_config *c, const char *path, char *err, size_t errlen)
{
    load_ctx lc = {c, err, errlen, path, WEIR_OK};
    int r = ini_parse(path, on_ini, &lc);
    if (r == -1) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return WEIR_EIO;
    }
    if (lc.rc)
        return lc.rc;
    if (r > 0) {
        snprintf(err, errlen, "%s:%d: syntax error", path, r);
        return WEIR_EINVAL;
    }
    if (r < 0) {
        snprintf(err, errlen, "%s: out of memory", path);
        return WEIR_ENOMEM;
    }
    return WEIR_OK;
}

void config_print(const weir_config *c, FILE *f)
{
    const char *section = "";
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const opt *o = &options[i];
        if (strcmp(section, o->section)) {
            section = o->section;
            fprintf(f, "%s[%s]\n", i ? "\n" : "", section);
        }
        const void *field = (const char *)c + o->offset;
        fprintf(f, "# %s (default: %s)\n%s = ", o->help, *o->def ? o->def : "\"\"", o->key);
        switch (o->type) {
        case OPT_STR:
            fprintf(f, "%s\n", *(char *const *)field ? *(char *const *)field : "");
            break;
        case OPT_SIZE:
        case OPT_UINT:
            fprintf(f, "%llu\n", (unsigned long long)*(const uint64_t *)field);
            break;
        case OPT_BOOL:
            fprintf(f, "%s\n", *(const bool *)field ? "true" : "false");
            break;
        case OPT_DURATION:
            fprintf(f, "%lldms\n", (long long)*(const int64_t *)field);
            break;
        }
    }
}
