/* fileio.h -- whole-file reads and crash-safe whole-file replacement.
 *
 * fileio_write_atomic writes to "<path>.tmp", fsyncs it, renames it over
 * <path> and fsyncs the directory, so after a crash the file is either the
 * old version or the new one, never a mix. It blocks on the disk: call it
 * from a worker thread, never from an event loop.
 */
#ifndef WEIR_BASE_FILEIO_H
#define WEIR_BASE_FILEIO_H

#include <stddef.h>
#include <stdint.h>

/* Returns WEIR_OK, WEIR_ENOTFOUND when the file does not exist, WEIR_EIO or
 * WEIR_ENOMEM. On success *data (caller frees) holds *len bytes; max bounds
 * the size accepted (WEIR_ETOOBIG beyond it). */
int fileio_read_all(const char *path, size_t max, uint8_t **data, size_t *len);

/* Returns WEIR_OK or WEIR_EIO (errno is left set for the log). */
int fileio_write_atomic(const char *path, const void *data, size_t len);

/* mkdir -p with mode 0750. WEIR_OK or WEIR_EIO. */
int fileio_mkdirs(const char *path);

#endif
