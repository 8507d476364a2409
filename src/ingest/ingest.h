/* ingest.h -- decode once, append: the one path by which readings enter
 * streams, whatever door they came through.
 *
 * The doors (the MQTT broker's ingest hook, the HTTP records and upload
 * resources, `weir import` through HTTP) hand raw payloads to this module.
 * It knows every defined stream (its definition, its record schema, its
 * MQTT source filter and its open stream store handle), decodes each payload
 * once into a typed record (record/), encodes it for storage and appends it
 * (stream/). What does not decode goes to the `$deadletter` stream with the
 * reason, is published to `$weir/deadletter/<stream>` through a callback the
 * node supplies, is counted and logged (rate-limited), and never stops
 * ingestion.
 *
 * A stream definition is a JSON object (the same from the config file, the
 * API and the catalog), documented in docs/streams.md:
 *
 *   {"name": "printers", "source": "mqtt:factory/+/printer/+/telemetry",
 *    "format": "json", "partitions": 4, "key": "device" | "topic:3",
 *    "timestamp": "ts", "time_format": "ms", "fields": {"temperature": "double"},
 *    "columns": ["a", "b"], "delimiter": ",", "retention": "14d",
 *    "retention_bytes": "10g", "sync": "always" | "interval=5ms" | "none",
 *    "segment_bytes": "64m", "segment_age": "1h"}
 *
 * Threads: everything here runs on the node's loop thread; appends return at
 * once and completion arrives through the store's callbacks on that thread.
 * Memory: one scratch arena and buffer per ingest, bounded, reset per
 * record.
 */
#ifndef WEIR_INGEST_INGEST_H
#define WEIR_INGEST_INGEST_H

#include "base/config.h"
#include "catalog/catalog.h"
#include "record/decode.h"
#include "stream/store.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ingest ingest;
typedef struct ingest_stream ingest_stream;

/* Publishes a message on the node's MQTT broker (for dead letters). */
typedef void (*ingest_publish_fn)(void *ctx, const char *topic, const void *payload, size_t len);

/* Completion of a durable append: status 0 when every record is durable. */
typedef void (*ingest_done_fn)(void *arg, int status);

/* Builds the registry over an open store and catalog (both borrowed). Creates
 * the `$deadletter` system stream. */
int ingest_new(stream_store *st, catalog *cat, ingest_publish_fn pub, void *pub_ctx,
               ingest **out);
void ingest_free(ingest *in);

/* Defines (or redefines with the same partition count) a stream from a JSON
 * definition; when persist, stores it in the catalog. On error returns
 * WEIR_EINVAL (bad definition), WEIR_EEXIST (a redefinition that changes the
 * partition count), or a store error, with a sentence in err. */
int ingest_define(ingest *in, json_t *def, const char *origin, bool persist, char *err,
                  size_t errlen, ingest_stream **out);
/* Defines the [stream.NAME] sections of a config file (origin "config"). */
int ingest_define_config(ingest *in, const config_object_kv *objects, char *err, size_t errlen);
/* Defines every stream kept in the catalog (at start-up). */
int ingest_load_catalog(ingest *in, char *err, size_t errlen);
/* Removes the stream, its files and its catalog entry. WEIR_ENOTFOUND. */
int ingest_drop(ingest *in, const char *name);

ingest_stream *ingest_find(ingest *in, const char *name);
/* Calls cb for every stream in name order. */
void ingest_foreach(ingest *in, void (*cb)(void *arg, ingest_stream *s), void *arg);
const char *ingest_stream_name(const ingest_stream *s);
stream *ingest_stream_store(ingest_stream *s);
const rec_schema *ingest_stream_schema(const ingest_stream *s);
/* A query running off the loop holds the stream so that it is not dropped
 * under it (ingest_drop answers WEIR_EBUSY meanwhile). */
void ingest_stream_hold(ingest_stream *s);
void ingest_stream_release(ingest_stream *s);

/* The definition plus live statistics, as a new JSON object. */
json_t *ingest_stream_json(ingest_stream *s);

/* The MQTT door: offers one PUBLISH to every stream whose source matches.
 * Returns WEIR_OK when no stream wants it (or nothing waits for
 * durability: QoS 0, want_done false), WEIR_EAGAIN when done(arg, status)
 * will be called exactly once when every append is durable, or an error
 * (WEIR_EFULL: a store pushes back) in which case nothing was appended. A
 * payload that does not decode is dead-lettered and counts as accepted. */
int ingest_mqtt(ingest *in, const uint8_t *topic, size_t topic_len, const uint8_t *payload,
                size_t payload_len, int64_t arrival_ns, bool want_done, ingest_done_fn done,
                void *arg);

/* Outcome of a batch (HTTP body, uploaded file). */
typedef struct ingest_result {
    uint32_t accepted;
    uint32_t rejected;
    json_t *errors;   /* array of {line, column, error}; first 100 only; owned by caller */
} ingest_result;

/* The HTTP/file door: decodes a whole body with schema `sc` (NULL: the
 * stream's own; a caller overriding the format or the time column passes a
 * copy) and appends every good record. Bad lines are reported to the caller
 * in res->errors (the first 100) and counted as rejected; unlike MQTT
 * payloads they are not dead-lettered, because the sender gets the answer
 * at once. Returns
 * WEIR_EAGAIN when done will be called once all appended records are
 * durable, WEIR_OK when nothing was appended, or an error (WEIR_EFULL,
 * WEIR_EINVAL for a body that is not of the format at all). */
int ingest_batch(ingest *in, ingest_stream *s, const rec_schema *sc, const uint8_t *body,
                 size_t n, int64_t arrival_ns, ingest_result *res, ingest_done_fn done,
                 void *arg);

/* Parses "json", "csv", "line" (also from a Content-Type). WEIR_EINVAL. */
int ingest_format_parse(const char *s, rec_format *out);

#endif
