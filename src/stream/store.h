/* store.h -- the durable stream store: partitioned append-only logs that
 * never lose an acknowledged record.
 *
 * A store lives in one directory (the node passes <data_dir>/streams) and
 * holds named streams. A stream has N partitions; each partition is a dense
 * sequence of records numbered from offset 0. A record carries a key, an
 * event timestamp (ts), the arrival time stamped by the caller (T2), the
 * commit time stamped by the store when its batch is written (T3) and an
 * opaque value. The on-disk format and the recovery rule are specified at
 * the top of segment.c.
 *
 * Threads. The node's event loop thread calls the API; one writer thread
 * per store does every write(2), fsync(2), segment roll and retention
 * deletion, so the loop never blocks on disk writes or syncs. Appends made
 * during one loop iteration are handed to the writer together at the end of
 * the iteration (a uv_prepare and a uv_check handle), so they become one
 * write and one fsync per partition (group commit). Completion and watch
 * callbacks come back to the loop thread through a uv_async.
 *
 * Exceptions to "never blocks": stream_open recovers a stream from disk
 * (reads the tail of each segment, may truncate a torn tail and rewrite an
 * index) and creates its directories with fsync; stream_delete waits for
 * the writer to remove the files; stream_store_flush and stream_store_close
 * wait for the writer. Call them at start-up, shutdown or from a worker
 * thread when a stall of the loop matters. Readers use pread(2) on the
 * calling thread (normally served from the page cache).
 *
 * Offline mode: with loop == NULL (weir import, weir check) every append
 * wakes the writer at once, callbacks run on the writer thread, and the
 * caller uses stream_store_flush to wait.
 *
 * Re-entrancy: callbacks may append, open readers and add or remove
 * watches. They must not call stream_store_close (in either mode), nor --
 * in offline mode, where the writer thread runs them -- stream_store_flush,
 * stream_store_enforce_retention or stream_delete, which wait for the
 * writer.
 *
 * Bounded memory, and what happens when a bound is reached:
 *  - records appended but not yet written: max_pending_bytes per stream
 *    (encoded size: 24 bytes + key + value per record) -> stream_append
 *    returns WEIR_EFULL, nothing is appended, the caller applies
 *    back-pressure and retries after a done callback;
 *  - append calls with a callback that are not yet acknowledged:
 *    STREAM_MAX_INFLIGHT_ACKS per store -> WEIR_EFULL, as above;
 *  - one record: key <= STREAM_MAX_KEY bytes, value <= STREAM_MAX_VALUE bytes
 *    -> WEIR_ETOOBIG (an extension of the brief's WEIR_EINVAL, so the doors
 *    can answer "too large" rather than "invalid");
 *  - a reader holds at most one batch (<= 16 MiB) plus a 256 KiB read-ahead.
 */
#ifndef WEIR_STREAM_STORE_H
#define WEIR_STREAM_STORE_H

#include "base/secret.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define STREAM_MAX_PARTITIONS    1024u
#define STREAM_MAX_KEY           65535u
#define STREAM_MAX_VALUE         (8u << 20)
#define STREAM_MAX_INFLIGHT_ACKS (1u << 18)

typedef struct stream_store stream_store;
typedef struct stream stream;

typedef enum stream_sync {
    STREAM_SYNC_NONE = 0,     /* ack after write(2): survives a process crash, not a power cut */
    STREAM_SYNC_INTERVAL = 1, /* ack after the fsync that follows the write, at most every N ms */
    STREAM_SYNC_ALWAYS = 2,   /* ack after the fsync of the batch (one fsync per group commit) */
} stream_sync;

typedef struct stream_opts {
    uint32_t partitions; /* 1..1024, fixed at creation (a reopen with another count is EINVAL) */
    stream_sync sync;    /* default STREAM_SYNC_ALWAYS */
    uint32_t sync_interval_ms; /* for INTERVAL (default 100; 0 = after every writer cycle) */
    uint64_t segment_bytes; /* roll when a segment would pass this (default 64 MiB; 1 KiB..1 GiB) */
    int64_t segment_ms;     /* roll when the segment's first batch was committed longer ago
                               than this (default 1 h); 0 = never */
    int64_t retention_ms;   /* delete whole segments whose newest ts is older; 0 = forever */
    uint64_t retention_bytes; /* per partition, delete oldest whole segments beyond; 0 = no limit */
    uint64_t max_pending_bytes; /* bound on appended-but-not-yet-written bytes per stream
                                   (default 64 MiB); append beyond -> WEIR_EFULL */
} stream_opts;

void stream_opts_default(stream_opts *o);

/* Opens (creating) the store directory and starts the writer thread. `loop`
 * is the node's event loop: completion and watch callbacks are delivered on
 * its thread. loop may be NULL for offline tools (see above). Only one
 * process may open a directory (an flock on <dir>/LOCK): WEIR_EBUSY
 * otherwise. Returns WEIR_OK, WEIR_EIO, WEIR_EBUSY or WEIR_ENOMEM. */
int stream_store_open(const char *dir, uv_loop_t *loop, stream_store **out);

/* Same, encrypted at rest with the node's master key (base/secret.h; the
 * store derives its own subkey and keeps it, `key` is not kept): every
 * batch written is sealed (format in segment.c). The first open with a key
 * writes <dir>/ENCRYPTION; afterwards opening without the key, or with
 * another, fails with WEIR_EAUTH and a log line that says which. Batches
 * written before encryption was enabled stay readable (and unencrypted)
 * until retention removes them. key NULL is stream_store_open. */
int stream_store_open_key(const char *dir, uv_loop_t *loop, const secret_key *key,
                          stream_store **out);

/* Writes and syncs everything pending (whatever the streams' policies),
 * delivers the outstanding done callbacks (status WEIR_OK, or the error of a
 * failed write) on the calling thread, stops the writer, closes the files
 * and frees every stream, watch and the store. All readers must have been
 * closed before. Appends made from callbacks during close fail with
 * WEIR_ESHUTDOWN.
 *
 * With a loop: call it on the loop thread before the loop is closed. It
 * calls uv_close on the store's three handles (an async, a prepare and a
 * check handle); their memory is released by the close callbacks, which
 * touch nothing else. The caller must therefore run the loop once more
 * after stream_store_close returns -- uv_run(loop, UV_RUN_DEFAULT), or
 * UV_RUN_NOWAIT until it returns 0 -- and only then call uv_loop_close,
 * which will then succeed (if nothing else of the caller is open). */
void stream_store_close(stream_store *st);

/* Blocks until every record appended before the call is written and
 * fsynced, whatever the stream's policy. Done callbacks of those records
 * are queued (loop mode: delivered by the loop after this returns; offline
 * mode: delivered before it returns). Never call it from a callback in
 * offline mode (the writer thread runs those). Returns WEIR_OK or the first
 * I/O error of a partition (WEIR_EIO). */
int stream_store_flush(stream_store *st);

/* Runs a retention pass on the writer thread now and waits for it (the
 * writer also runs one every second and after every segment roll). For
 * tests and for an operator's "apply retention" command. */
int stream_store_enforce_retention(stream_store *st);

/* Creates or opens a stream and recovers it from disk (see segment.c).
 * Names: [A-Za-z0-9_.-]{1,128} with an optional leading '$' for system
 * streams ("$deadletter"), except "." and "..". Opening a name already open
 * returns the same stream* and applies the new options (all but
 * `partitions`, which must match: WEIR_EINVAL otherwise). o may be NULL
 * for the defaults. Errors: WEIR_EINVAL, WEIR_ECORRUPT (data without a
 * valid stream.meta), WEIR_EIO, WEIR_ENOMEM. */
int stream_open(stream_store *st, const char *name, const stream_opts *o, stream **out);

/* Removes the stream and its files. Records not yet written are dropped:
 * their done callbacks get WEIR_ENOTFOUND. Fails with WEIR_EBUSY while a
 * reader or a watch of the stream is open, WEIR_ENOTFOUND when no such
 * stream is open. The stream* is invalid afterwards. The directory is first
 * renamed to "#deleting.<name>" so that a crash half-way never leaves a
 * half-deleted stream behind (the leftover is removed at the next open). */
int stream_delete(stream_store *st, const char *name);

const char *stream_name(const stream *s);
uint32_t stream_partitions(const stream *s);

/* XXH3-64 of the key modulo the partition count; an empty key -> 0. */
uint32_t stream_partition_for(const stream *s, const uint8_t *key, size_t n);

typedef struct stream_rec_in {
    const uint8_t *key;
    uint32_t key_len;
    int64_t ts;      /* event time, ns since the epoch */
    int64_t arrival; /* T2, stamped by the caller */
    const uint8_t *value;
    uint32_t value_len;
} stream_rec_in;

/* Called once per append call, on the loop thread (offline: the writer
 * thread), when all its records are durable under the stream's policy
 * (ALWAYS: after fsync; INTERVAL: after the fsync following the write;
 * NONE: after write(2)), or with an error: WEIR_EIO (a write or fsync
 * failed), WEIR_ENOTFOUND (the stream was deleted). On error none of the
 * records is acknowledged-durable; on disk a prefix of them may exist (a
 * torn batch is truncated by the next recovery, a whole one is kept), so
 * after a restart an unacknowledged record may be present: producers that
 * retry get at-least-once. After a write or fsync error the partition is
 * failed: its pending and later appends fail with WEIR_EIO until the store
 * is reopened and recovery re-reads what is on disk (the page cache cannot
 * be trusted after a failed fsync). */
typedef void (*stream_done_cb)(void *arg, int status, uint32_t partition, uint64_t first_offset);

/* Copies the n >= 1 records into the partition's pending batch and returns
 * at once with the offset the first WILL have (dense: the i-th gets
 * first_offset + i). cb may be NULL; first_offset may be NULL. All or none
 * of the records are appended. Thread: the loop thread (offline: any single
 * thread). Errors: WEIR_EFULL (pending bound, see above), WEIR_EINVAL,
 * WEIR_ETOOBIG (a record over the limits), WEIR_EIO (partition failed),
 * WEIR_ENOMEM, WEIR_ESHUTDOWN (store closing). */
int stream_append(stream *s, uint32_t partition, const stream_rec_in *recs, size_t n,
                  stream_done_cb cb, void *arg, uint64_t *first_offset);

/* ---- Reading ------------------------------------------------------------ */

typedef enum {
    STREAM_POS_EARLIEST, /* the first retained record */
    STREAM_POS_LATEST,   /* the current end: only records committed from now on */
    STREAM_POS_OFFSET,   /* value = offset; clamped into [start, end] */
    STREAM_POS_TIME,     /* value = ts in ns, see below */
} stream_pos_kind;

typedef struct stream_rec {
    uint32_t partition;
    uint64_t offset;
    int64_t ts, arrival, commit;
    const uint8_t *key;
    uint32_t key_len;
    const uint8_t *value;
    uint32_t value_len;
} stream_rec;

typedef struct stream_reader stream_reader;

/* Opens a reader of one partition. It may be used from any one thread at a
 * time, concurrently with the writer and with other readers.
 *
 * STREAM_POS_TIME: ts need not grow with the offset, so "the first record at
 * or after t" is defined as the record with the LOWEST OFFSET among the
 * retained records whose ts >= t; the reader starts there and then returns
 * every following record in offset order, whatever its ts (records after it
 * with ts < t are returned too). If no committed record has ts >= t the
 * reader is positioned at the end (as LATEST). The seek never skips such a
 * record: segments are kept with their max ts, and the time index stores,
 * per indexed batch, the max ts of every record before it in the segment,
 * so the seek picks the first segment whose max ts >= t, the last index
 * entry whose max-before < t, and scans from there.
 *
 * Readers see only committed records (written for NONE/INTERVAL, fsynced
 * for ALWAYS), never a torn one. Errors: WEIR_EINVAL, WEIR_ENOMEM. */
int stream_reader_open(stream *s, uint32_t partition, stream_pos_kind kind, int64_t value,
                       stream_reader **out);

/* Returns WEIR_OK and the next record in *out (pointers valid until the next
 * call or close), WEIR_EAGAIN at the current end (call again after a watch
 * callback), or WEIR_ECORRUPT when the next batch fails its CRC or
 * structure: it is never returned; the position stays at its first offset,
 * and the next call skips to the next readable batch (the offsets in
 * between are lost for this reader). A reader whose position was deleted
 * by retention moves to the new start offset. WEIR_EIO when a file cannot
 * be read. */
int stream_reader_next(stream_reader *r, stream_rec *out);

uint64_t stream_reader_position(const stream_reader *r); /* the next offset */
void stream_reader_close(stream_reader *r);

/* ---- Tailing ------------------------------------------------------------- */

/* cb(arg, partition, end_offset) runs on the loop thread (offline: the
 * writer thread) whenever records of a partition commit (after write for
 * NONE/INTERVAL, after fsync for ALWAYS); end_offset is the new committed
 * end. Notifications coalesce: one call may cover many batches. Returns
 * NULL on ENOMEM. A callback may add or remove watches (itself included). */
typedef struct stream_watch stream_watch;
stream_watch *stream_watch_add(stream *s,
                               void (*cb)(void *arg, uint32_t partition, uint64_t end_offset),
                               void *arg);
void stream_watch_remove(stream_watch *w);

/* ---- Metadata ------------------------------------------------------------ */

typedef struct stream_stats {
    uint64_t records;  /* retained committed records, all partitions */
    uint64_t bytes;    /* bytes of their segment files (.log) */
    int64_t first_ts;  /* smallest ts of a retained record (0 when empty) */
    int64_t last_ts;   /* largest ts of a retained record (0 when empty) */
    uint64_t segments; /* segments, the active one of each partition included */
    /* Extensions: counters since the stream was opened in this process. */
    uint64_t fsyncs;  /* commit fsyncs of .log files (roll and close syncs not counted) */
    uint64_t writes;  /* write calls of batches to .log files */
    uint64_t batches; /* batches written */
} stream_stats;

/* Over all partitions, from in-memory metadata (no disk access). */
void stream_get_stats(stream *s, stream_stats *out);
uint64_t stream_end_offset(stream *s, uint32_t partition);   /* committed end */
uint64_t stream_start_offset(stream *s, uint32_t partition); /* first retained offset */

/* A lower bound of the ts of every committed record at or after `offset`
 * in the partition (the smallest min ts of the segments holding such
 * records); INT64_MAX when there is none. Lets a time-ordered scan stop
 * early without reading the rest. From in-memory metadata; any thread. */
int64_t stream_min_ts_from(stream *s, uint32_t partition, uint64_t offset);

/* Offline verification for `weir check DIR`: walks every stream, partition
 * and segment, verifies every batch's CRC and structure, offset continuity
 * and both indexes, and reports each finding through cb (one line each),
 * modifying nothing. Returns the number of problems (0 = clean), or a
 * negative weir_err when DIR itself cannot be read. */
int stream_check_dir(const char *dir, void (*cb)(void *arg, const char *line), void *arg);
/* Same for an encrypted store: with the master key every sealed batch is
 * decrypted and verified; without it (key NULL) sealed batches are checked
 * up to their CRC and one line says the contents were not verified. */
int stream_check_dir_key(const char *dir, const secret_key *key,
                         void (*cb)(void *arg, const char *line), void *arg);

#endif
