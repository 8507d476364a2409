/* fuzz_segment_crypt.c -- encrypted stream batches and sealed files as they
 * come off a disk someone else had: decoding must never crash, leak, or
 * return records that were not sealed with the key.
 *
 * Input: u8 mode | bytes. The key is fixed (32 bytes of 0x5a).
 *   mode bit 1: the bytes are a PLAIN batch (64-byte header, then records,
 *               any content); they are sealed with the key first, so the
 *               record parser behind the decryption gets fuzzed too;
 *               otherwise the bytes are taken as a sealed batch from disk.
 *   mode bit 0: the CRC is recomputed, so mutations get past it and reach
 *               the AEAD tag and the structure checks.
 *   mode bit 2: the bytes are also opened as a sealed file (the MQTT
 *               snapshot's secret_file_open).
 * Oracle: a batch that opens has records that exactly fill the plaintext
 * (stream__rec_decode walks it without leaving it); an input that was not
 * sealed here never opens (the tag would have to be forged).
 *
 * Seeds: tests/fuzz/corpus/fuzz_segment_crypt/ (plain batches with mode 2
 * and 3, made by tests/fuzz/make_crypt_seeds.py).
 */
#include "base/crc32c.h"
#include "base/err.h"
#include "base/secret.h"
#include "base/wlog.h"
#include "stream/streamInt.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static secret_key *g_key;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_key) {
        uint8_t raw[SECRET_KEY_BYTES];
        memset(raw, 0x5a, sizeof(raw));
        wlog_set_level(WLOG_OFF);
        if (secret_key_from_bytes(raw, &g_key))
            abort();
    }
    if (size < 1)
        return 0;
    uint8_t mode = data[0];
    data++;
    size--;
    if (size > STREAM__BATCH_LIMIT)
        return 0;
    size_t len;
    uint8_t *b;
    bool sealed_here = false;
    if ((mode & 2) && size >= STREAM__BATCH_HDR) {
        stream__bhdr h = {.length = (uint32_t)size,
                          .count = stream__get32(data + 24),
                          .base = stream__get64(data + 16) & (STREAM__MAX_BASE - 1),
                          .commit = (int64_t)stream__get64(data + 32),
                          .min_ts = (int64_t)stream__get64(data + 40),
                          .max_ts = (int64_t)stream__get64(data + 48)};
        len = size + SECRET_OVERHEAD;
        b = malloc(len);
        if (!b)
            return 0;
        stream__batch_seal_encrypted(g_key, data, &h, b);
        sealed_here = true;
    } else {
        len = size;
        b = malloc(len ? len : 1);
        if (!b)
            return 0;
        memcpy(b, data, len);
        if ((mode & 1) && len >= STREAM__BATCH_HDR) {
            uint32_t hl = stream__get32(b + 8);
            if (hl >= 8 && hl <= len)
                stream__put32(b + 4, crc32c(b + 8, hl - 8));
        }
    }
    stream__bhdr h;
    const char *why = NULL;
    if (len >= STREAM__BATCH_HDR && stream__bhdr_decode(b, &h, &why) == WEIR_OK &&
        h.length <= len && stream__batch_crc_ok(b, &h) && (h.flags & STREAM__BF_ENCRYPTED)) {
        size_t plen = h.length - SECRET_OVERHEAD;
        uint8_t *out = malloc(plen);
        if (!out)
            abort();
        int rc = stream__batch_open(g_key, b, &h, out, &why);
        if (rc == WEIR_OK) {
            if (!sealed_here)
                abort(); /* a forged tag */
            size_t pos = STREAM__BATCH_HDR;
            for (uint32_t i = 0; i < h.count; i++) {
                if (pos + STREAM__REC_HDR > plen)
                    abort();
                stream_rec r;
                pos += stream__rec_decode(out + pos, &r);
                if (pos > plen)
                    abort();
            }
            if (pos != plen)
                abort();
        } else if (rc != WEIR_EAUTH && rc != WEIR_ECORRUPT) {
            abort();
        }
        free(out);
    }
    free(b);
    if (mode & 4) {
        uint8_t *o = NULL;
        size_t ol = 0;
        if (secret_file_open(g_key, data, size, &o, &ol) == WEIR_OK)
            abort(); /* nothing here was sealed as a file */
        free(o);
    }
    return 0;
}
