/* crc32c.h -- CRC-32C (Castagnoli), the checksum of everything weir writes
 * to disk. Uses the SSE4.2 crc32 instruction when the CPU has it (checked
 * once at run time) and a slicing table otherwise; both give identical
 * results. crc32c_update(0, p, n) is the CRC of p[0..n). */
#ifndef WEIR_BASE_CRC32C_H
#define WEIR_BASE_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);

static inline uint32_t crc32c(const void *data, size_t n)
{
    return crc32c_update(0, data, n);
}

#endif
