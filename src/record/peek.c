/* peek.c -- see peek.h. */
#include "record/peek.h"

#include <stdlib.h>
#include <string.h>

static bool varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

static bool number_text(const uint8_t *s, uint64_t len, double *out)
{
    char buf[64];
    if (len == 0 || len >= sizeof(buf))
        return false;
    memcpy(buf, s, len);
    buf[len] = '\0';
    char *end;
    double d = strtod(buf, &end);
    if (*end || end == buf)
        return false;
    *out = d;
    return true;
}

bool record_peek_double(const uint8_t *p, size_t n, const char *name, size_t name_len,
                        double *out)
{
    const uint8_t *end = p + n;
    uint64_t nf, len, iv;
    if (n < 2 || *p++ != 0x01 || !varint(&p, end, &nf))
        return false;
    for (uint64_t i = 0; i < nf; i++) {
        if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
            return false;
        bool match = len == name_len && !memcmp(p, name, name_len);
        p += len;
        if (p >= end)
            return false;
        uint8_t tag = *p++;
        switch (tag) {
        case 0x00:
            if (match)
                return false;
            break;
        case 0x01:
        case 0x02:
            if (match) {
                *out = tag == 0x02 ? 1.0 : 0.0;
                return true;
            }
            break;
        case 0x03:
            if (!varint(&p, end, &iv))
                return false;
            if (match) {
                int64_t x = (int64_t)(iv >> 1) ^ -(int64_t)(iv & 1);
                *out = (double)x;
                return true;
            }
            break;
        case 0x04:
            if (end - p < 8)
                return false;
            if (match) {
                uint64_t bits = 0;
                for (int k = 7; k >= 0; k--)
                    bits = (bits << 8) | p[k];
                memcpy(out, &bits, sizeof(*out));
                return true;
            }
            p += 8;
            break;
        case 0x05:
        case 0x06:
            if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
                return false;
            if (match)
                return tag == 0x05 && number_text(p, len, out);
            p += len;
            break;
        default:
            return false;
        }
    }
    return false;
}
