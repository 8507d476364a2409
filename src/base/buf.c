/* buf.c -- see buf.h. */
#include "base/buf.h"
#include "base/err.h"

#include <stdlib.h>
#include <string.h>

void buf_init(weir_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max ? max : SIZE_MAX;
}

void buf_free(weir_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->off = b->len = b->cap = 0;
}

int buf_reserve(weir_buf *b, size_t n)
{
    size_t used = buf_used(b);
    if (n > b->max - used)
        return WEIR_EFULL;
    if (b->len + n <= b->cap)
        return WEIR_OK;
    /* Reclaim the consumed prefix before growing. */
    if (b->off > 0) {
        memmove(b->data, b->data + b->off, used);
        b->off = 0;
        b->len = used;
        if (b->len + n <= b->cap)
            return WEIR_OK;
    }
    size_t want = b->cap ? b->cap : 256;
    while (want < used + n)
        want *= 2;
    if (want > b->max && b->max != SIZE_MAX)
        want = b->max > used + n ? b->max : used + n;
    uint8_t *p = realloc(b->data, want);
    if (!p)
        return WEIR_ENOMEM;
    b->data = p;
    b->cap = want;
    return WEIR_OK;
}

int buf_append(weir_buf *b, const void *p, size_t n)
{
    int rc = buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return WEIR_OK;
}

void buf_consume(weir_buf *b, size_t n)
{
    if (n >= buf_used(b)) {
        b->off = b->len = 0;
        return;
    }
    b->off += n;
}
