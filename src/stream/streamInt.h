/* streamInt.h -- internals of the stream store shared by its files
 * (the SQLite "btreeInt.h" habit): format constants and codecs (segment.c),
 * index files (index.c), recovery (recover.c), the writer thread
 * (writer.c), retention (retention.c), readers (reader.c), the checker
 * (check.c) and the store itself (store.c).
 *
 * Locks, and what each protects (never take two at once, except seg_mu
 * inside mu in retention and the writer's publish step -- always in that
 * order -- and cb_mu, which is only held while callbacks run):
 *   st->mu      appender state (pending batches, next offsets, failure
 *               flags), the writer's wake-up flags and requests, the
 *               completion and notification queues, the stream list;
 *   p->seg_mu   a partition's segment list and each segment's published
 *               state (what readers may see);
 *   st->cb_mu   (recursive) the watch lists.
 * Fields marked "writer" are touched only by the writer thread (or by the
 * opening thread before the stream is published to it).
 */
#ifndef WEIR_STREAM_STREAMINT_H
#define WEIR_STREAM_STREAMINT_H

#include "stream/store.h"
#include "base/secret.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

/* ---- Format (specified in segment.c) ------------------------------------ */

#define STREAM__BATCH_MAGIC    0x31425357u /* bytes "WSB1" */
#define STREAM__BATCH_VERSION  1
#define STREAM__BF_ENCRYPTED   0x0001u     /* batch flag: records sealed (segment.c) */
#define STREAM__CRYPT_FILE     "ENCRYPTION" /* key check of an encrypted store */
#define STREAM__BATCH_HDR      64
#define STREAM__REC_HDR        24
#define STREAM__BATCH_LIMIT    (16u << 20)  /* a longer batch is invalid */
#define STREAM__BATCH_TARGET   (1u << 20)   /* the appender starts a new batch past this */
#define STREAM__MAX_BASE       (1ull << 62) /* offsets stay far from overflow */
#define STREAM__INDEX_INTERVAL 16384u       /* bytes of log between index entries */
#define STREAM__IDX_ENTRY      8
#define STREAM__TIX_ENTRY      24
#define STREAM__SEG_MIN_BYTES  1024ull
#define STREAM__SEG_MAX_BYTES  (1ull << 30) /* positions are u32 in the indexes */
#define STREAM__SEG_MAX_RECS   (1ull << 31) /* relative offsets are u32 */
#define STREAM__NAME_MAX       128
#define STREAM__META_FILE      "stream.meta"
#define STREAM__META_MAGIC     0x4d545357u /* bytes "WSTM" */
#define STREAM__META_LEN       16
#define STREAM__KICK_BYTES     (256u << 10) /* a partition this full wakes the writer at once */
#define STREAM__READ_AHEAD     (256u << 10)
#define STREAM__RETENTION_NS   (1000 * 1000000LL) /* the writer's retention period */
#define STREAM__DELETING       "#deleting."

static inline void stream__put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void stream__put64(uint8_t *p, uint64_t v)
{
    stream__put32(p, (uint32_t)v);
    stream__put32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t stream__get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t stream__get64(const uint8_t *p)
{
    return (uint64_t)stream__get32(p) | (uint64_t)stream__get32(p + 4) << 32;
}

/* A decoded batch header. */
typedef struct stream__bhdr {
    uint32_t crc;    /* stored CRC-32C of bytes [8, length) */
    uint32_t length; /* whole batch, header included */
    uint32_t count;  /* records, >= 1 */
    uint64_t base;   /* offset of the first record */
    int64_t commit;  /* T3, wall ns when the writer wrote the batch */
    int64_t min_ts;  /* smallest ts of its records */
    int64_t max_ts;  /* largest ts of its records */
    uint16_t flags;  /* STREAM__BF_* */
} stream__bhdr;

/* Checks the fixed fields of a header (magic, version, flags, reserved,
 * length and count bounds, base range), not the CRC. WEIR_OK or
 * WEIR_ECORRUPT with *why set to a short reason. */
int stream__bhdr_decode(const uint8_t *p, stream__bhdr *h, const char **why);

/* Writes the header fields of h into b[0..64) and then the CRC of
 * b[8..h->length). */
void stream__batch_seal(uint8_t *b, const stream__bhdr *h);

/* Verifies a whole batch whose header decoded into h: the CRC, that the
 * count records exactly fill it, and that min_ts/max_ts match them. */
int stream__batch_verify(const uint8_t *b, const stream__bhdr *h, const char **why);

/* Encrypted batches (see ENCRYPTION AT REST in segment.c). `k` is the
 * store's stream subkey.
 * seal_encrypted: `plain` holds a batch of h->length bytes whose records
 * start at STREAM__BATCH_HDR (its header bytes are not read); writes the
 * sealed batch of h->length + SECRET_OVERHEAD bytes, header and CRC
 * included, into out.
 * open: `b` is a batch whose header decoded into h with the ENCRYPTED flag
 * and whose CRC matched; writes the plaintext batch (header with the
 * plaintext length and no flag, records) into out, of h->length -
 * SECRET_OVERHEAD bytes, and verifies its records. WEIR_OK, WEIR_EAUTH
 * (cannot be decrypted with this key) or WEIR_ECORRUPT. */
void stream__batch_seal_encrypted(const secret_key *k, const uint8_t *plain,
                                  const stream__bhdr *h, uint8_t *out);
int stream__batch_open(const secret_key *k, const uint8_t *b, const stream__bhdr *h,
                       uint8_t *out, const char **why);
/* Verifies the CRC of a batch whose header decoded into h. */
int stream__batch_crc_ok(const uint8_t *b, const stream__bhdr *h);

/* Decodes the record at p inside a verified batch into the key/value/ts
 * fields of out; returns its encoded size. */
size_t stream__rec_decode(const uint8_t *p, stream_rec *out);

/* "<dir>/<base as 20 digits><ext>"; ext is ".log", ".idx" or ".tix". */
void stream__seg_path(char *buf, size_t n, const char *dir, uint64_t base, const char *ext);

enum {
    STREAM__F_LOG = 1,
    STREAM__F_IDX,
    STREAM__F_TIX,
    STREAM__F_TMP,
    STREAM__F_QUAR,
    STREAM__F_OTHER
};
/* Classifies a file name in a partition directory; sets *base for the
 * first three kinds. */
int stream__seg_name_kind(const char *name, uint64_t *base);

/* Valid stream name? */
bool stream__name_ok(const char *name);

/* The stream.meta codec: 16 bytes. */
void stream__meta_encode(uint8_t out[STREAM__META_LEN], uint32_t partitions);
int stream__meta_decode(const uint8_t *p, size_t n, uint32_t *partitions);

/* ---- Sequential batch scanner (segment.c) --------------------------------
 * Reads a .log file from a position with a read-ahead buffer and yields one
 * validated batch at a time. Used by recovery, readers and the checker so
 * that there is one definition of "a valid batch". */
typedef struct stream__scan {
    int fd;               /* not owned */
    uint64_t pos;         /* file position of the next batch */
    uint64_t limit;       /* bytes of the file that may be read */
    uint64_t expect;      /* base offset the next batch must have; UINT64_MAX = any */
    uint8_t *buf;         /* read-ahead buffer */
    size_t cap;           /* its allocation */
    size_t have;          /* valid bytes in buf */
    uint64_t buf_pos;     /* file position of buf[0] */
    stream__bhdr h;       /* the batch just returned */
    uint64_t bpos;        /* its file position */
    const uint8_t *batch; /* its bytes (valid until the next call) */
    const char *why;      /* reason of the last WEIR_ECORRUPT or WEIR_EAUTH */
    const secret_key *key; /* stream subkey for encrypted batches; NULL = none */
    bool sealed_unverified; /* no key: accept sealed batches on their CRC (check) */
    uint8_t *pbuf;        /* decrypted batch */
    size_t pcap;
} stream__scan;

void stream__scan_init(stream__scan *sc, int fd, uint64_t pos, uint64_t limit, uint64_t expect);
/* Moves to another position, keeping the buffer allocation. */
void stream__scan_reset(stream__scan *sc, int fd, uint64_t pos, uint64_t expect);
/* Returns WEIR_OK with the next batch whose last offset is >= skip_below
 * (earlier ones are skipped after a header check only), WEIR_EAGAIN when
 * pos == limit, WEIR_ECORRUPT (sc->pos stays on the bad batch, sc->why
 * says why; a batch that runs past `limit` is corrupt), WEIR_EIO or
 * WEIR_ENOMEM. */
int stream__scan_next(stream__scan *sc, uint64_t skip_below);
void stream__scan_free(stream__scan *sc);

/* ---- Index files (index.c) ---------------------------------------------- */

/* One index entry: the .idx part (rel, pos) and the .tix part (pmax, pmin,
 * rel, pos) are written in lock step, one of each per indexed batch. */
typedef struct stream__ient {
    uint32_t rel; /* offset of the batch's first record minus the segment base */
    uint32_t pos; /* file position of the batch in the .log */
    int64_t pmax; /* largest ts of every record before this batch in the segment */
    int64_t pmin; /* smallest ts of every record before this batch in the segment */
} stream__ient;

typedef struct stream__ivec {
    stream__ient *v;
    size_t n, cap;
} stream__ivec;

int stream__ivec_push(stream__ivec *iv, const stream__ient *e);
void stream__ivec_free(stream__ivec *iv);

/* Is a batch at `pos` indexed, given the previous entry (have, last_pos)? */
static inline bool stream__index_due(bool have, uint64_t last_pos, uint64_t pos)
{
    return !have || pos - last_pos >= STREAM__INDEX_INTERVAL;
}

void stream__ient_encode(const stream__ient *e, uint8_t idx[STREAM__IDX_ENTRY],
                         uint8_t tix[STREAM__TIX_ENTRY]);

/* Problems found by stream__index_load (bit flags). */
enum {
    STREAM__IX_MISSING = 1, /* a file is missing */
    STREAM__IX_DAMAGED = 2, /* bad size, bad entry, the two files disagree */
};
/* Reads both index files of a segment and keeps the longest prefix of
 * entries that is structurally valid (first entry (0,0,MIN,MAX); rel and pos
 * strictly increasing with pos at least one interval apart; pmax
 * non-decreasing and pmin non-increasing; pos below log_size; both files
 * agree). *flags gets the problems. WEIR_OK or WEIR_ENOMEM/WEIR_EIO. */
int stream__index_load(const char *dir, uint64_t base, uint64_t log_size, stream__ivec *out,
                       int *flags);

/* Replaces both index files atomically (each written to .tmp, fsynced,
 * renamed). */
int stream__index_write(const char *dir, uint64_t base, const stream__ivec *iv);

/* Lookups on the files with pread (readers); only entries whose pos is
 * below `limit` count. WEIR_OK with *out, or WEIR_ENOTFOUND. */
int stream__index_find_offset(const char *dir, uint64_t base, uint64_t limit, uint32_t rel,
                              stream__ient *out);
int stream__index_find_time(const char *dir, uint64_t base, uint64_t limit, int64_t t,
                            stream__ient *out);
int stream__index_find_after(const char *dir, uint64_t base, uint64_t limit, uint64_t pos,
                             stream__ient *out);

/* ---- In-memory structures ----------------------------------------------- */

/* The done callback of one append call. */
typedef struct stream__ack {
    stream_done_cb cb;
    void *arg;
    uint64_t first; /* first offset of the call */
} stream__ack;

/* The acks of one batch: a chunk that moves, without allocating, from the
 * batch to the partition's wait list to the completion queue. */
typedef struct stream__acks {
    struct stream__acks *next;
    int status; /* set when complete */
    uint32_t partition;
    uint32_t n, cap;
    stream__ack *v;
} stream__acks;

/* A batch being filled by appenders, then written by the writer. */
typedef struct stream__batch {
    struct stream__batch *next;
    uint8_t *data;  /* STREAM__BATCH_HDR bytes of header room, then records */
    size_t len;     /* bytes used, header included */
    size_t cap;     /* bytes allocated */
    uint64_t base;  /* offset of the first record */
    uint32_t count; /* records */
    int64_t min_ts, max_ts;
    stream__acks *acks; /* callbacks of the appends ending here; NULL if none */
    uint8_t *enc;   /* writer: the sealed (encrypted) batch, or NULL */
    size_t enc_cap;
    size_t dlen;    /* writer: bytes on disk (len, or len + SECRET_OVERHEAD) */
} stream__batch;

/* One segment: <base>.log with its .idx and .tix. */
typedef struct stream__seg {
    uint64_t base;       /* offset of its first record, its file name */
    atomic_int refs;     /* the partition's list holds one, each reader in it one */
    atomic_bool deleted; /* retention removed it; readers move on */
    /* Published: under seg_mu. What readers may read. */
    uint64_t size;          /* committed bytes of the .log */
    uint64_t end;           /* committed end offset (exclusive) */
    int64_t min_ts, max_ts; /* over committed records; MAX/MIN when none */
    bool sealed;            /* rolled: nothing will be added */
    /* Writer. */
    uint64_t wsize, wend;
    int64_t wmin, wmax;
    bool wsealed;
    bool on_disk;         /* its files exist */
    int64_t first_commit; /* commit time of its first batch (0: empty); roll by age */
} stream__seg;

typedef struct stream__part {
    stream *s;
    uint32_t id;
    char *dir; /* <store>/<stream>/<id> */

    /* Appenders: under st->mu. */
    uint64_t next_offset; /* what the next appended record gets */
    stream__batch *pend_head, *pend_tail;
    uint64_t pend_bytes;             /* record bytes in the pending list */
    struct stream__part *dirty_next; /* in st->dirty */
    bool dirty;
    int failed;                       /* sticky WEIR_E* after a failed write/fsync */
    struct stream__part *notify_next; /* in st->notify */
    bool notify;

    /* Readers: under seg_mu. */
    uv_mutex_t seg_mu;
    stream__seg **segs; /* by base offset; the last is the active one */
    size_t nsegs, capsegs;
    _Atomic uint64_t visible_end; /* committed end */
    _Atomic uint64_t start;       /* first retained offset */

    /* Writer. */
    stream__batch *wq; /* batches taken this cycle */
    struct stream__part *work_next;
    struct stream__part *unsync_next; /* in the writer's list of unsynced partitions */
    bool unsynced;
    int64_t unsynced_since;           /* mono ns of the first unsynced write */
    int werr;                         /* writer's copy of `failed` */
    int log_fd, idx_fd, tix_fd;       /* of the active segment, -1 until opened */
    bool ihave;                       /* the active segment has an index entry */
    uint64_t ilast;                   /* position of its last entry */
    int64_t ipmax, ipmin;             /* over every record written to the active segment */
    stream__acks *await, *await_tail; /* written, waiting for fsync */
    uint32_t await_batches;
    bool vis_dirty;               /* written state not yet published */
    _Atomic uint64_t written_end; /* instrumentation: end offset written */
    _Atomic uint64_t synced_end;  /* instrumentation: end offset fsynced */
} stream__part;

struct stream_watch {
    stream *s;
    void (*cb)(void *arg, uint32_t partition, uint64_t end_offset);
    void *arg;
    struct stream_watch *next;
    bool dead; /* removed while callbacks ran; freed after */
};

struct stream {
    stream_store *st;
    char name[STREAM__NAME_MAX + 2];
    char *dir;
    uint32_t nparts;
    stream__part *parts;
    stream_opts opts;       /* under st->mu */
    stream_opts wopts;      /* writer's snapshot */
    uint64_t pending_bytes; /* under st->mu: appended, not yet written */
    bool deleting;          /* under st->mu */
    struct stream *next;    /* st->streams */
    stream_watch *watches;  /* under cb_mu */
    int watch_depth;        /* callbacks running */
    int watch_dead;         /* removed during them */
    atomic_int readers;
    atomic_int nwatches;
    _Atomic uint64_t n_fsyncs, n_writes, n_batches;
};

typedef struct stream__op {
    struct stream__op *next;
    stream *s; /* stream to delete */
    bool done;
    int result;
} stream__op;

typedef struct stream__loopres stream__loopres;

/* Test hooks: make the nth later operation of a kind fail. */
enum { STREAM__FAULT_WRITE, STREAM__FAULT_SYNC, STREAM__FAULT_ALLOC, STREAM__FAULT_N };

struct stream_store {
    char *dir;
    uv_loop_t *loop; /* NULL: offline mode */
    int lock_fd;
    stream__loopres *lr; /* the loop handles (loop mode) */
    bool want_kick;      /* loop thread: appends since the last kick */
    bool async_ref;      /* loop thread: the async handle is ref'd */

    uv_mutex_t mu;
    uv_cond_t cv;      /* the writer waits on it */
    uv_cond_t done_cv; /* flush, retention and delete waiters */
    stream *streams;
    stream__part *dirty; /* partitions with pending batches */
    bool kick, stop, closing;
    uint64_t flush_req, flush_done;
    uint64_t ret_req, ret_done;
    stream__op *ops;
    stream__batch *free_batches; /* recycled (up to 8) */
    unsigned nfree;
    stream__acks *compl_head, *compl_tail; /* completed acks to deliver */
    stream__part *notify;                  /* partitions whose committed end moved */
    uint64_t inflight_acks;                /* append calls with a callback not yet delivered */
    uint64_t outstanding;                  /* batches appended, not yet completed and delivered */
    uint64_t done_batches;                 /* completed since the last delivery */

    uv_thread_t writer;
    bool writer_started;
    stream__part *unsync;   /* writer: partitions with unsynced writes */
    int64_t next_retention; /* writer: mono ns */

    uv_mutex_t cb_mu;

    secret_key *key; /* stream subkey when encrypted at rest; NULL otherwise */

    _Atomic int64_t fault_after[STREAM__FAULT_N]; /* 0 = off; n = the nth call fails */
    _Atomic int fault_errno[STREAM__FAULT_N];
};

/* ---- Functions shared between the files --------------------------------- */

/* store.c: the key check file of an encrypted store (format in segment.c).
 * WEIR_OK when the store and the key agree (with `create`, writing the file
 * for a key on a store without one), WEIR_EAUTH when they do not (logged),
 * WEIR_ECORRUPT when the file is damaged. */
int stream__crypt_check(const char *dir, const secret_key *master, bool create);

/* writer.c */
void stream__writer_main(void *arg);
/* Seals the active segment (fsync, close) and starts an empty one at its
 * end; writer thread only. */
int stream__roll(stream__part *p);
void stream__part_close_files(stream__part *p);
/* Publishes the writer's segment state to readers (takes seg_mu). */
void stream__publish(stream__part *p);

/* store.c */
void stream__seg_unref(stream__seg *g);
void *stream__alloc(stream_store *st, size_t n);
void *stream__realloc(stream_store *st, void *p, size_t n);
bool stream__fault(stream_store *st, int kind, int *err);
void stream__deliver(stream_store *st);
/* uv_async_send to the loop (loop mode; any thread, under mu or not). */
void stream__wake_loop(stream_store *st);
/* rm -rf; best effort. */
int stream__remove_tree(const char *path);
/* Queues completed ack chunks and notifications (takes mu). */
void stream__complete(stream_store *st, stream__acks *acks, uint64_t batches);
void stream__notify(stream_store *st, stream__part *p);
void stream__acks_free(stream__acks *a);
void stream__batch_release(stream_store *st, stream__batch *b);

/* recover.c */
typedef struct stream__recov {
    uint64_t segments, records, bytes, truncated_bytes, rebuilt_indexes, quarantined;
} stream__recov;
int stream__recover_part(stream__part *p, stream__recov *rs);

/* retention.c */
void stream__retention_pass(stream_store *st);

/* Test hooks (tests include this header). */
void stream__fault_set(stream_store *st, int kind, int64_t nth, int err);
void stream__debug_ends(stream *s, uint32_t partition, uint64_t *written, uint64_t *synced);

#endif
