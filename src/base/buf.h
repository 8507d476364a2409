/* buf.h -- a growable byte buffer with a hard upper bound.
 *
 * Every buffer in weir has a limit so that no peer can make memory grow
 * without bound: an append that would pass `max` fails with WEIR_EFULL and
 * leaves the buffer unchanged. The caller owns the struct; buf_free releases
 * the bytes. Consumed bytes at the front are dropped with buf_consume, which
 * moves the rest down lazily (only when the dead prefix is large), so that a
 * read loop that consumes packet by packet stays O(n).
 */
#ifndef WEIR_BASE_BUF_H
#define WEIR_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct weir_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t off;    /* start of live bytes (bytes before it are consumed) */
    size_t len;    /* end of live bytes; live = data[off..len) */
    size_t cap;    /* allocated size of data */
    size_t max;    /* hard bound on live bytes; 0 means SIZE_MAX */
} weir_buf;

void buf_init(weir_buf *b, size_t max);
void buf_free(weir_buf *b);

/* Live bytes and their count. */
static inline uint8_t *buf_head(const weir_buf *b)
{
    return b->data + b->off;
}
static inline size_t buf_used(const weir_buf *b)
{
    return b->len - b->off;
}

/* Makes room for n more bytes; returns WEIR_OK, WEIR_EFULL (over max) or
 * WEIR_ENOMEM. */
int buf_reserve(weir_buf *b, size_t n);

/* Appends n bytes; same errors as buf_reserve. */
int buf_append(weir_buf *b, const void *p, size_t n);

/* Pointer to the free tail after buf_reserve(n); call buf_commit(n) after
 * writing into it. */
static inline uint8_t *buf_tail(weir_buf *b)
{
    return b->data + b->len;
}
static inline void buf_commit(weir_buf *b, size_t n)
{
    b->len += n;
}

/* Drops n bytes from the front. */
void buf_consume(weir_buf *b, size_t n);

/* Forgets all bytes but keeps the allocation. */
static inline void buf_reset(weir_buf *b)
{
    b->off = b->len = 0;
}

#endif
