/* peek.h -- reading one field out of a stored record without decoding it.
 *
 * History scans (series over millions of records) need one number per
 * record. record_decode validates everything (UTF-8, JSON values, minimal
 * varints) because it is the door for bytes of unknown origin; the bytes a
 * scan reads come from the store, whose batches passed their CRC-32C, so
 * this walk only checks bounds: it never reads outside [p, p + n) and never
 * allocates, and a malformed encoding simply yields "not found". The
 * encoding is specified in record.h.
 */
#ifndef WEIR_RECORD_PEEK_H
#define WEIR_RECORD_PEEK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Finds field `name` and reads it as a double: INT and DOUBLE as numbers,
 * BOOL as 0/1, a STRING that is entirely a decimal number as that number.
 * False when absent, NULL, JSON, non-numeric or the bytes are malformed. */
bool record_peek_double(const uint8_t *p, size_t n, const char *name, size_t name_len,
                        double *out);

#endif
