/* segment.c -- the on-disk format of the stream store, its codecs and the
 * one batch scanner that recovery, readers and the checker share.
 *
 * FILES
 *
 *   <store>/LOCK                     flock'ed by the process that has the store open
 *   <store>/<stream>/stream.meta     16 bytes: "WSTM" | u32 version (1) |
 *                                    u32 partitions | u32 CRC-32C of bytes 0..11
 *   <store>/<stream>/<p>/            one directory per partition, p = 0..N-1 in decimal
 *   <store>/<stream>/<p>/<base>.log  a segment: batches back to back; <base> is the
 *                                    offset of its first record as 20 decimal digits
 *   <store>/<stream>/<p>/<base>.idx  sparse offset index of that segment
 *   <store>/<stream>/<p>/<base>.tix  sparse time index of that segment
 *   <store>/#deleting.<stream>/      a stream being deleted (removed at the next open)
 *   *.tmp                            an atomic replacement in progress (removed)
 *   *.log.quarantine                 a segment cut off by recovery (kept for forensics,
 *                                    ignored otherwise)
 *
 * Every integer is little-endian. The segments of a partition cover
 * consecutive offset ranges: segment i+1's base is segment i's end. The
 * last segment is the active one; only it receives writes.
 *
 * BATCH (one per group commit per partition; at most 16 MiB)
 *
 *   off len field
 *    0   4  magic       0x31425357, the bytes "WSB1"
 *    4   4  crc         CRC-32C (Castagnoli) of bytes [8, length): the rest of
 *                       the header and every record
 *    8   4  length      bytes of the whole batch, header included
 *   12   2  version     1
 *   14   2  flags       0 (reserved: compression)
 *   16   8  base        offset of the first record
 *   24   4  count       records in the batch, >= 1
 *   28   4  reserved    0
 *   32   8  commit      T3: wall-clock ns when the writer wrote the batch
 *   40   8  min_ts      smallest ts of the records
 *   48   8  max_ts      largest ts of the records
 *   56   8  reserved    0
 *   64      count records:
 *            0  8  ts         event time, ns since the epoch (any value)
 *            8  8  arrival    T2, stamped by the caller
 *           16  4  key_len    <= 65535
 *           20  4  value_len  <= 8 MiB
 *           24     key bytes, then value bytes
 *
 * Record i of a batch has offset base + i and commit time `commit`.
 *
 * ENCRYPTION AT REST (flags bit 0, STREAM__BF_ENCRYPTED)
 *
 * A store opened with a key (stream_store_open_key) writes every batch
 * sealed: the 64-byte header stays as above, in the clear, with flag 1 and
 * `length` counting the sealed bytes; after it come
 *   64  24  nonce       random, per batch
 *   88   n  ciphertext  XChaCha20-Poly1305 of the records (n = their bytes)
 *   88+n 16 tag
 * with header bytes [8, 64) as associated data, so a header cannot be
 * altered or moved to another offset without the tag failing. The CRC
 * covers the sealed bytes, so torn writes and media damage are found
 * without the key, exactly as for plain batches (recovery and `weir check`
 * treat them the same). The key is a subkey of the node's master key
 * (base/secret.h); <store>/ENCRYPTION holds "WENC" | u32 version 1 | 16
 * bytes key check value | u32 CRC-32C of bytes 0..23, written when a store
 * is first opened with a key: a store with that file refuses to open
 * without the key or with another one. A batch that cannot be decrypted is
 * WEIR_EAUTH, never a truncation. What stays readable without the key: the
 * headers (offsets, record counts, commit times, min/max event time,
 * sizes), the indexes (positions, event-time bounds) and stream names;
 * record keys, values, per-record timestamps and arrival times are sealed.
 *
 * A batch is VALID when: magic, version, flags and the reserved fields are
 * as above; 88 <= length <= 16 MiB and it lies inside the file; count >= 1;
 * base < 2^62; the CRC matches; the count records exactly fill the bytes
 * after the header (no record runs past the end, no bytes are left over);
 * min_ts and max_ts equal the smallest and largest ts of the records; and
 * base equals the end offset of the batch before it (the segment's base for
 * the first batch). A record is returned to a reader only from a valid batch.
 *
 * INDEXES (derived data: never needed for correctness, rebuilt from the log)
 *
 *   .idx  8-byte entries  { u32 rel, u32 pos }
 *   .tix  24-byte entries { i64 pmax, i64 pmin, u32 rel, u32 pos }
 *
 * Entry k of both files describes the same batch: rel = its base minus the
 * segment base, pos = its position in the .log, pmax/pmin = the largest and
 * smallest ts of every record BEFORE that batch in the segment (INT64_MIN /
 * INT64_MAX for the first). A batch gets an entry when it is the first of
 * the segment or starts at least 16 KiB (STREAM__INDEX_INTERVAL) after the
 * batch of the previous entry; the writer, recovery and the checker apply
 * the same rule, so the index of a log is deterministic. pmax only grows
 * along the file, which makes the time seek a binary search: the last entry
 * with pmax < t precedes no record with ts >= t. Segments are at most 1 GiB
 * and 2^31 records so that pos and rel fit in 32 bits.
 *
 * DURABILITY ORDER
 *
 * The writer appends batches to the .log with pwritev at the end of the
 * committed bytes, then appends the index entries; it fsyncs (fdatasync)
 * only the .log for a commit. A roll fsyncs the old segment's .log, .idx
 * and .tix, creates the new segment's files and fsyncs the directory before
 * any record goes into them, so a crash can tear at most the tail of the
 * last segment. A new stream's directories and stream.meta are fsynced
 * before its first record is accepted.
 *
 * RECOVERY (stream_open, per partition)
 *
 *  1. Leftover *.tmp files and index files without a .log are removed.
 *  2. Segments are taken in base order. Each segment's index files are
 *     loaded and cut at the first entry that breaks the structural rules
 *     (stream__index_load); for the last segment every entry must also point
 *     at a batch header with the right base. Walking back from the last
 *     entry, the first entry whose batch is valid is the restart point (none:
 *     position 0).
 *  3. From the restart point the log is scanned to its end, batch by batch;
 *     missing index entries are added by the rule above. The first invalid
 *     batch -- torn, CRC failure, zeros, garbage -- and everything after it
 *     in the file is truncated (ftruncate + fsync). Unacknowledged writes
 *     are the only thing a crash can tear, so this drops nothing that was
 *     acknowledged under the stream's policy.
 *  4. A segment whose base is not the end of the one before it, and every
 *     segment after it, are renamed to *.log.quarantine (dense offsets
 *     matter more than keeping them visible); so are the segments after a
 *     non-last segment whose tail had to be truncated (media damage).
 *  5. Changed indexes are rewritten atomically. One wlog line per stream
 *     reports segments, records, bytes truncated, indexes rebuilt and
 *     segments quarantined.
 * Damage in the middle of an older segment is not found at open (that would
 * mean reading everything); readers report it as WEIR_ECORRUPT and skip it,
 * and stream_check_dir finds it.
 */
#include "stream/streamInt.h"

#include "base/crc32c.h"
#include "base/err.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- Batch and record codecs --------------------------------------------- */

int stream__bhdr_decode(const uint8_t *p, stream__bhdr *h, const char **why)
{
    const char *w = NULL;
    if (stream__get32(p) != STREAM__BATCH_MAGIC)
        w = "bad magic";
    else if (stream__get32(p + 12) != STREAM__BATCH_VERSION &&
             stream__get32(p + 12) != (STREAM__BATCH_VERSION | STREAM__BF_ENCRYPTED << 16))
        w = "bad version or flags";
    else if (stream__get32(p + 28) != 0 || stream__get64(p + 56) != 0)
        w = "reserved field not zero";
    if (w)
        goto bad;
    h->crc = stream__get32(p + 4);
    h->length = stream__get32(p + 8);
    h->base = stream__get64(p + 16);
    h->count = stream__get32(p + 24);
    h->commit = (int64_t)stream__get64(p + 32);
    h->min_ts = (int64_t)stream__get64(p + 40);
    h->max_ts = (int64_t)stream__get64(p + 48);
    h->flags = (uint16_t)(stream__get32(p + 12) >> 16);
    uint32_t extra = (h->flags & STREAM__BF_ENCRYPTED) ? SECRET_OVERHEAD : 0;
    if (h->length < STREAM__BATCH_HDR + STREAM__REC_HDR + extra ||
        h->length > STREAM__BATCH_LIMIT)
        w = "bad length";
    else if (h->count == 0 ||
             (uint64_t)h->count * STREAM__REC_HDR > h->length - STREAM__BATCH_HDR - extra)
        w = "bad count";
    else if (h->base >= STREAM__MAX_BASE)
        w = "bad base offset";
    else if (h->min_ts > h->max_ts)
        w = "min_ts > max_ts";
    if (!w)
        return WEIR_OK;
bad:
    if (why)
        *why = w;
    return WEIR_ECORRUPT;
}

void stream__batch_seal(uint8_t *b, const stream__bhdr *h)
{
    stream__put32(b, STREAM__BATCH_MAGIC);
    stream__put32(b + 8, h->length);
    stream__put32(b + 12, STREAM__BATCH_VERSION);
    stream__put64(b + 16, h->base);
    stream__put32(b + 24, h->count);
    stream__put32(b + 28, 0);
    stream__put64(b + 32, (uint64_t)h->commit);
    stream__put64(b + 40, (uint64_t)h->min_ts);
    stream__put64(b + 48, (uint64_t)h->max_ts);
    stream__put64(b + 56, 0);
    stream__put32(b + 4, crc32c(b + 8, h->length - 8));
}

int stream__batch_crc_ok(const uint8_t *b, const stream__bhdr *h)
{
    return crc32c(b + 8, h->length - 8) == h->crc;
}

/* The records of a plain batch: framing and min/max ts. */
static int records_verify(const uint8_t *b, const stream__bhdr *h, const char **why)
{
    const char *w = NULL;
    size_t pos = STREAM__BATCH_HDR;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    for (uint32_t i = 0; i < h->count; i++) {
        if (h->length - pos < STREAM__REC_HDR) {
            w = "record header runs past the batch";
            goto bad;
        }
        int64_t ts = (int64_t)stream__get64(b + pos);
        uint64_t kl = stream__get32(b + pos + 16), vl = stream__get32(b + pos + 20);
        if (kl > STREAM_MAX_KEY || vl > STREAM_MAX_VALUE) {
            w = "record length over the limits";
            goto bad;
        }
        if (h->length - pos - STREAM__REC_HDR < kl + vl) {
            w = "record runs past the batch";
            goto bad;
        }
        pos += STREAM__REC_HDR + kl + vl;
        mn = ts < mn ? ts : mn;
        mx = ts > mx ? ts : mx;
    }
    if (pos != h->length)
        w = "bytes left over after the records";
    else if (mn != h->min_ts || mx != h->max_ts)
        w = "min_ts/max_ts do not match the records";
    if (!w)
        return WEIR_OK;
bad:
    if (why)
        *why = w;
    return WEIR_ECORRUPT;
}

int stream__batch_verify(const uint8_t *b, const stream__bhdr *h, const char **why)
{
    if (!stream__batch_crc_ok(b, h)) {
        if (why)
            *why = "CRC mismatch";
        return WEIR_ECORRUPT;
    }
    if (h->flags & STREAM__BF_ENCRYPTED) {
        if (why)
            *why = "encrypted batch";
        return WEIR_EAUTH;
    }
    return records_verify(b, h, why);
}

void stream__batch_seal_encrypted(const secret_key *k, const uint8_t *plain,
                                  const stream__bhdr *h, uint8_t *out)
{
    stream__bhdr e = *h;
    e.length = h->length + SECRET_OVERHEAD;
    stream__put32(out, STREAM__BATCH_MAGIC);
    stream__put32(out + 8, e.length);
    stream__put32(out + 12, STREAM__BATCH_VERSION | STREAM__BF_ENCRYPTED << 16);
    stream__put64(out + 16, e.base);
    stream__put32(out + 24, e.count);
    stream__put32(out + 28, 0);
    stream__put64(out + 32, (uint64_t)e.commit);
    stream__put64(out + 40, (uint64_t)e.min_ts);
    stream__put64(out + 48, (uint64_t)e.max_ts);
    stream__put64(out + 56, 0);
    secret_seal(k, out + 8, STREAM__BATCH_HDR - 8, plain + STREAM__BATCH_HDR,
                h->length - STREAM__BATCH_HDR, out + STREAM__BATCH_HDR);
    stream__put32(out + 4, crc32c(out + 8, e.length - 8));
}

int stream__batch_open(const secret_key *k, const uint8_t *b, const stream__bhdr *h,
                       uint8_t *out, const char **why)
{
    if (!(h->flags & STREAM__BF_ENCRYPTED) || h->length < STREAM__BATCH_HDR + SECRET_OVERHEAD) {
        if (why)
            *why = "not an encrypted batch";
        return WEIR_ECORRUPT;
    }
    if (!k) {
        if (why)
            *why = "the batch is encrypted and no encryption key is configured";
        return WEIR_EAUTH;
    }
    if (secret_open(k, b + 8, STREAM__BATCH_HDR - 8, b + STREAM__BATCH_HDR,
                    h->length - STREAM__BATCH_HDR, out + STREAM__BATCH_HDR)) {
        if (why)
            *why = "cannot decrypt the batch: wrong encryption key or tampered data";
        return WEIR_EAUTH;
    }
    stream__bhdr p = *h;
    p.length = h->length - SECRET_OVERHEAD;
    p.flags = 0;
    memcpy(out, b, STREAM__BATCH_HDR);
    stream__put32(out + 8, p.length);
    stream__put32(out + 12, STREAM__BATCH_VERSION);
    return records_verify(out, &p, why);
}

size_t stream__rec_decode(const uint8_t *p, stream_rec *out)
{
    out->ts = (int64_t)stream__get64(p);
    out->arrival = (int64_t)stream__get64(p + 8);
    out->key_len = stream__get32(p + 16);
    out->value_len = stream__get32(p + 20);
    out->key = p + STREAM__REC_HDR;
    out->value = out->key + out->key_len;
    return STREAM__REC_HDR + (size_t)out->key_len + out->value_len;
}

/* ---- Names --------------------------------------------------------------- */

void stream__seg_path(char *buf, size_t n, const char *dir, uint64_t base, const char *ext)
{
    snprintf(buf, n, "%s/%020" PRIu64 "%s", dir, base, ext);
}

int stream__seg_name_kind(const char *name, uint64_t *base)
{
    size_t len = strlen(name);
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0)
        return STREAM__F_TMP;
    if (len > 15 && strcmp(name + len - 15, ".log.quarantine") == 0)
        return STREAM__F_QUAR;
    if (len != 24)
        return STREAM__F_OTHER;
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return STREAM__F_OTHER;
        uint64_t d = (uint64_t)(name[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return STREAM__F_OTHER;
        v = v * 10 + d;
    }
    *base = v;
    if (strcmp(name + 20, ".log") == 0)
        return STREAM__F_LOG;
    if (strcmp(name + 20, ".idx") == 0)
        return STREAM__F_IDX;
    if (strcmp(name + 20, ".tix") == 0)
        return STREAM__F_TIX;
    return STREAM__F_OTHER;
}

bool stream__name_ok(const char *name)
{
    if (!name)
        return false;
    const char *p = name[0] == '$' ? name + 1 : name;
    size_t n = strlen(p);
    if (n < 1 || n > STREAM__NAME_MAX)
        return false;
    if (strcmp(p, ".") == 0 || strcmp(p, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

void stream__meta_encode(uint8_t out[STREAM__META_LEN], uint32_t partitions)
{
    stream__put32(out, STREAM__META_MAGIC);
    stream__put32(out + 4, 1);
    stream__put32(out + 8, partitions);
    stream__put32(out + 12, crc32c(out, 12));
}

int stream__meta_decode(const uint8_t *p, size_t n, uint32_t *partitions)
{
    if (n != STREAM__META_LEN || stream__get32(p) != STREAM__META_MAGIC ||
        stream__get32(p + 4) != 1 || stream__get32(p + 12) != crc32c(p, 12))
        return WEIR_ECORRUPT;
    uint32_t np = stream__get32(p + 8);
    if (np < 1 || np > STREAM_MAX_PARTITIONS)
        return WEIR_ECORRUPT;
    *partitions = np;
    return WEIR_OK;
}

/* ---- Scanner ------------------------------------------------------------- */

void stream__scan_init(stream__scan *sc, int fd, uint64_t pos, uint64_t limit, uint64_t expect)
{
    memset(sc, 0, sizeof(*sc));
    sc->fd = fd;
    sc->pos = pos;
    sc->limit = limit;
    sc->expect = expect;
}

void stream__scan_reset(stream__scan *sc, int fd, uint64_t pos, uint64_t expect)
{
    if (fd != sc->fd)
        sc->have = 0; /* the buffer belongs to another file */
    sc->fd = fd;
    sc->pos = pos;
    sc->expect = expect;
    sc->batch = NULL;
}

void stream__scan_free(stream__scan *sc)
{
    free(sc->buf);
    sc->buf = NULL;
    sc->cap = sc->have = 0;
    free(sc->pbuf);
    sc->pbuf = NULL;
    sc->pcap = 0;
}

/* Makes file bytes [pos, pos+n) available in the buffer; the caller has
 * checked pos + n <= limit. Reads ahead up to STREAM__READ_AHEAD. */
static int scan_fill(stream__scan *sc, uint64_t pos, size_t n, const uint8_t **out)
{
    if (pos >= sc->buf_pos && pos + n <= sc->buf_pos + sc->have) {
        *out = sc->buf + (pos - sc->buf_pos);
        return WEIR_OK;
    }
    uint64_t want = n > STREAM__READ_AHEAD ? n : STREAM__READ_AHEAD;
    if (want > sc->limit - pos)
        want = sc->limit - pos;
    if (want > sc->cap) {
        uint8_t *nb = realloc(sc->buf, (size_t)want);
        if (!nb)
            return WEIR_ENOMEM;
        sc->buf = nb;
        sc->cap = (size_t)want;
    }
    sc->have = 0;
    sc->buf_pos = pos;
    while (sc->have < n) {
        ssize_t r =
            pread(sc->fd, sc->buf + sc->have, (size_t)want - sc->have, (off_t)(pos + sc->have));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return WEIR_EIO;
        if (r == 0)
            return WEIR_ECORRUPT; /* the file is shorter than its limit said */
        sc->have += (size_t)r;
    }
    *out = sc->buf;
    return WEIR_OK;
}

int stream__scan_next(stream__scan *sc, uint64_t skip_below)
{
    for (;;) {
        sc->batch = NULL;
        if (sc->pos >= sc->limit)
            return WEIR_EAGAIN;
        const uint8_t *p;
        if (sc->limit - sc->pos < STREAM__BATCH_HDR) {
            sc->why = "truncated batch header";
            return WEIR_ECORRUPT;
        }
        int rc = scan_fill(sc, sc->pos, STREAM__BATCH_HDR, &p);
        if (rc == WEIR_ECORRUPT)
            sc->why = "file shorter than expected";
        if (rc)
            return rc;
        stream__bhdr h;
        if (stream__bhdr_decode(p, &h, &sc->why))
            return WEIR_ECORRUPT;
        if (h.length > sc->limit - sc->pos) {
            sc->why = "batch runs past the end of the file";
            return WEIR_ECORRUPT;
        }
        if (sc->expect != UINT64_MAX && h.base != sc->expect) {
            sc->why = "base offset breaks continuity";
            return WEIR_ECORRUPT;
        }
        if (h.base + h.count <= skip_below) {
            /* Before the wanted offset: trust the header enough to step over
             * it. The next header's continuity check catches a wrong length,
             * and nothing from this batch is returned. */
            sc->pos += h.length;
            sc->expect = h.base + h.count;
            continue;
        }
        rc = scan_fill(sc, sc->pos, h.length, &p);
        if (rc == WEIR_ECORRUPT)
            sc->why = "file shorter than expected";
        if (rc)
            return rc;
        if (!stream__batch_crc_ok(p, &h)) {
            sc->why = "CRC mismatch";
            return WEIR_ECORRUPT;
        }
        if ((h.flags & STREAM__BF_ENCRYPTED) && !sc->key && sc->sealed_unverified) {
            /* p stays the sealed bytes: the caller only wants positions. */
        } else if (h.flags & STREAM__BF_ENCRYPTED) {
            size_t plen = h.length - SECRET_OVERHEAD;
            if (plen > sc->pcap) {
                uint8_t *nb = realloc(sc->pbuf, plen);
                if (!nb)
                    return WEIR_ENOMEM;
                sc->pbuf = nb;
                sc->pcap = plen;
            }
            if ((rc = stream__batch_open(sc->key, p, &h, sc->pbuf, &sc->why)))
                return rc;
            p = sc->pbuf;
        } else if (records_verify(p, &h, &sc->why)) {
            return WEIR_ECORRUPT;
        }
        sc->h = h;
        sc->bpos = sc->pos;
        sc->batch = p;
        sc->pos += h.length;
        sc->expect = h.base + h.count;
        return WEIR_OK;
    }
}
