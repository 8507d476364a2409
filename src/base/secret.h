/* secret.h -- the node's encryption key and authenticated encryption of
 * small and large blobs (libsodium), for encryption at rest.
 *
 * One master key per node: 32 random bytes in a file named by
 * [storage] encryption_key_file (`weir keygen FILE` writes one; so does
 * `head -c 32 /dev/urandom > FILE`). The file holds either the 32 raw bytes
 * or 64 hexadecimal digits (a trailing newline is allowed). The key lives in
 * sodium_malloc'ed memory (guard pages, mlock'ed where allowed, wiped on
 * free) and never goes to the log.
 *
 * The master key is never used directly: each purpose derives its own
 * subkey with crypto_kdf_derive_from_key, so the stream store and the
 * catalog never share an AEAD key and a blob of one cannot be opened as
 * the other:
 *   SECRET_PURPOSE_STREAM   stream segment batches (src/stream/)
 *   SECRET_PURPOSE_CATALOG  secrets kept in the catalog (src/auth/, catalog/)
 *   SECRET_PURPOSE_SNAPSHOT the MQTT snapshot (retained messages, sessions)
 *   SECRET_PURPOSE_CHECK    the key check value written next to encrypted
 *                           data, so a wrong key is reported as such
 *
 * Sealing is XChaCha20-Poly1305 (IETF) with a random 192-bit nonce per call:
 * random nonces of that size never repeat in practice, so no counter state
 * has to survive crashes. A sealed blob is nonce(24) | ciphertext | tag(16);
 * `ad` (associated data, e.g. a batch header) is authenticated but not
 * stored. Opening fails with WEIR_EAUTH, never with garbage, when the key,
 * the blob or the ad differ.
 *
 * For catalog code (the auth helper's password hashes and tokens):
 *   secret_key *k;  secret_key_derive(master, SECRET_PURPOSE_CATALOG, &k);
 *   secret_seal(k, ad, adlen, plain, n, out)  with out of n + SECRET_OVERHEAD
 *   secret_open(k, ad, adlen, blob, m, out)   with out of m - SECRET_OVERHEAD
 * Use the row's primary key (user name) as ad so a sealed value cannot be
 * moved to another row unnoticed.
 */
#ifndef WEIR_BASE_SECRET_H
#define WEIR_BASE_SECRET_H

#include <stddef.h>
#include <stdint.h>

#define SECRET_KEY_BYTES 32
#define SECRET_NONCE_BYTES 24
#define SECRET_TAG_BYTES 16
#define SECRET_OVERHEAD (SECRET_NONCE_BYTES + SECRET_TAG_BYTES)
#define SECRET_CHECK_BYTES 16

typedef enum secret_purpose {
    SECRET_PURPOSE_STREAM = 1,
    SECRET_PURPOSE_CATALOG = 2,
    SECRET_PURPOSE_SNAPSHOT = 3,
    SECRET_PURPOSE_CHECK = 4,
} secret_purpose;

typedef struct secret_key secret_key; /* opaque; in protected memory */

/* Initialises libsodium once (thread-safe, idempotent). WEIR_OK or
 * WEIR_EINTERNAL. Every other call does it too. */
int secret_init(void);

/* Reads a key file (32 raw bytes or 64 hex digits). On error returns
 * WEIR_EIO / WEIR_EINVAL / WEIR_ENOMEM with a reason in err. Logs a warning
 * when the file is readable by group or others. */
int secret_key_load(const char *path, secret_key **out, char *err, size_t errlen);

/* Builds a key from 32 bytes (tests, fuzzers). */
int secret_key_from_bytes(const uint8_t raw[SECRET_KEY_BYTES], secret_key **out);

/* Derives the subkey of one purpose. */
int secret_key_derive(const secret_key *master, secret_purpose p, secret_key **out);

/* Wipes and frees; NULL is a no-op. */
void secret_key_free(secret_key *k);

/* Writes a new random key (32 raw bytes) to path, created with mode 0600;
 * refuses to overwrite (WEIR_EEXIST). */
int secret_key_generate(const char *path, char *err, size_t errlen);

/* A value that identifies the key without revealing it (keyed BLAKE2b of a
 * fixed string under the CHECK subkey of `master`). Stored next to encrypted
 * data so that opening with another key fails with a clear message. */
int secret_key_check_value(const secret_key *master, uint8_t out[SECRET_CHECK_BYTES]);

/* out receives n + SECRET_OVERHEAD bytes. WEIR_OK. */
int secret_seal(const secret_key *k, const uint8_t *ad, size_t adlen, const uint8_t *in,
                size_t n, uint8_t *out);

/* out receives n - SECRET_OVERHEAD bytes. WEIR_OK, WEIR_EMALFORMED (shorter
 * than the overhead) or WEIR_EAUTH (wrong key, damaged or moved blob). */
int secret_open(const secret_key *k, const uint8_t *ad, size_t adlen, const uint8_t *in,
                size_t n, uint8_t *out);

/* Whole files (the MQTT snapshot): "WSE1" | nonce | ciphertext | tag, with
 * the magic as associated data. secret_file_sealed tells a sealed file from
 * a plain one by its magic. seal/open allocate *out (caller frees);
 * open returns WEIR_EAUTH for a wrong key or damaged file. */
#define SECRET_FILE_MAGIC "WSE1"
int secret_file_sealed(const uint8_t *d, size_t n);
int secret_file_seal(const secret_key *k, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *outlen);
int secret_file_open(const secret_key *k, const uint8_t *in, size_t n, uint8_t **out,
                     size_t *outlen);

#endif
