/* config.h -- the node's configuration: one table, three sources.
 *
 * Every option is one row of the table in config.c: section, key, type,
 * default (as text, parsed by the same code as the file) and a help line.
 * Values come from, in increasing precedence: the defaults, the INI file
 * (read with libinih), and command-line flags that call config_set. `weir
 * serve --print-config` prints the table, which docs/operations.md mirrors.
 *
 * Sizes accept suffixes k, m, g (powers of 1024); durations accept ms, s, m,
 * h, d (a bare number is seconds). Strings are owned by the weir_config and
 * released by config_free.
 */
#ifndef WEIR_BASE_CONFIG_H
#define WEIR_BASE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* One key of a named object section such as [stream.printers]: objects
 * (streams, later rules and users) are defined in the file as sections whose
 * name is "<kind>.<name>"; their keys are validated by the module that owns
 * the kind, not by the option table. */
typedef struct config_object_kv {
    char *kind;  /* "stream" */
    char *name;  /* "printers" */
    char *key;   /* "source" */
    char *value; /* "mqtt:factory/+/printer/+/telemetry" */
    struct config_object_kv *next; /* file order */
} config_object_kv;

typedef struct weir_config {
    /* [node] */
    char *node_name;          /* name of this node among its peers */
    char *data_dir;           /* where the catalog, logs and snapshots live */
    char *log_level;          /* debug | info | warn | error */
    char *node_peers;         /* "name=http://host:port,..." other nodes (rule moves) */
    /* [mqtt] */
    char *mqtt_listen;        /* host:port of the MQTT/TCP listener; "" disables */
    uint64_t mqtt_max_packet_size;   /* largest packet accepted and sent */
    uint64_t mqtt_max_connections;   /* further CONNECTs get "server busy" */
    uint64_t mqtt_receive_maximum;   /* QoS 1/2 in flight per direction per client */
    uint64_t mqtt_max_queued_messages; /* per offline/slow session */
    uint64_t mqtt_max_queued_bytes;  /* all sessions' queued payloads together */
    uint64_t mqtt_max_outbuf;        /* per-connection unsent bytes before QoS 0 drops */
    uint64_t mqtt_max_keepalive;     /* seconds; larger client values are lowered (5.0) */
    uint64_t mqtt_max_session_expiry; /* seconds; cap on what clients ask for */
    uint64_t mqtt_topic_alias_maximum; /* aliases a client may set towards us */
    uint64_t mqtt_max_subscriptions; /* per session */
    bool mqtt_retain_available;
    char *mqtt_deny;                 /* comma-separated topic filters denied to all */
    int64_t mqtt_autosave_ms;        /* snapshot period for retained + sessions; 0 = only at exit */
    bool mqtt_persistence;           /* keep retained messages and sessions across restarts */
    /* [http] */
    char *http_listen;        /* host:port of the HTTP listener; "" disables */
    uint64_t http_max_body;   /* largest request body */
    bool http_tls;            /* serve HTTPS and WSS on http.listen with [tls] */
    /* [mqtt] over TLS */
    char *mqtt_tls_listen;    /* host:port of the MQTT/TLS listener; used when [tls] cert is set */
    /* [tls] */
    char *tls_cert;           /* PEM certificate chain; "" disables TLS */
    char *tls_key;            /* PEM private key */
    char *tls_ca;             /* PEM CA bundle that signs client certificates */
    char *tls_min_version;    /* 1.2 | 1.3 */
    char *tls_verify_client;  /* none | optional | require */
    /* [storage] */
    char *storage_encryption_key_file; /* 32-byte key; "" = no encryption at rest */
    uint64_t http_live_buffer; /* per live-feed client: bound of unsent bytes */
    int64_t http_live_slow_ms; /* live feed: full this long = slow consumer */
    char *http_web_root;      /* serve the dashboard from this directory (development); "" = embedded */
    /* [demo] */
    bool demo_enabled;        /* weir serve --demo */
    char *demo_file;          /* CSV replayed by the demo */
    uint64_t demo_speedup;    /* replay speed-up */
    config_object_kv *objects; /* owned list of object-section keys, file order */
    config_object_kv **objects_tail;
} weir_config;

/* Fills `c` with the defaults. Returns WEIR_OK or WEIR_ENOMEM. */
int config_init(weir_config *c);
void config_free(weir_config *c);

/* Reads an INI file over the current values. On error returns a weir_err
 * and writes "file:line: reason" into err. */
int config_load_file(weir_config *c, const char *path, char *err, size_t errlen);

/* Sets one option by "section.key" (or just "key" when unique). */
int config_set(weir_config *c, const char *name, const char *value, char *err, size_t errlen);

/* Kinds of object sections the file may contain ("stream"); a section
 * "[<kind>.<name>]" of another kind is an error. */
#define CONFIG_OBJECT_KINDS {"stream"}

/* Prints every option with its current value and help, as INI. */
void config_print(const weir_config *c, FILE *f);

/* Parsers shared with the rest of weir. Return WEIR_OK or WEIR_EINVAL. */
int config_parse_size(const char *s, uint64_t *out);
int config_parse_duration_ms(const char *s, int64_t *out);
int config_parse_bool(const char *s, bool *out);
/* Splits "host:port" ("[v6]:port" too); host is copied into host[hostlen]. */
int config_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
