/* arena.c -- see arena.h. */
#include "base/arena.h"
#include "base/err.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_FIRST_CHUNK 4096u
#define ARENA_ALIGN       alignof(max_align_t)

struct arena_chunk {
    arena_chunk *next; /* the older chunk */
    size_t size;       /* usable bytes in data */
    size_t used;       /* bytes handed out from data */
    alignas(max_align_t) unsigned char data[];
};

void arena_init(arena *a, size_t max_bytes)
{
    memset(a, 0, sizeof(*a));
    a->max = max_bytes ? max_bytes : SIZE_MAX;
}

/* Adds a chunk able to serve `need` bytes at any alignment; NULL (with
 * last_err set) when that would pass the bound. */
static arena_chunk *arena__grow(arena *a, size_t need)
{
    const size_t hdr = sizeof(arena_chunk);
    size_t budget = a->max - a->total;
    if (budget <= hdr || need > budget - hdr) {
        a->last_err = WEIR_ETOOBIG;
        return NULL;
    }
    size_t size = a->head ? a->head->size * 2 : ARENA_FIRST_CHUNK;
    if (size < need)
        size = need;
    /* Never ask for more than the bound leaves, even if the doubling would. */
    if (size > budget - hdr)
        size = budget - hdr;
    arena_chunk *c = malloc(hdr + size);
    if (!c) {
        a->last_err = WEIR_ENOMEM;
        return NULL;
    }
    c->next = a->head;
    c->size = size;
    c->used = 0;
    a->head = c;
    if (!a->first)
        a->first = c;
    a->total += hdr + size;
    return c;
}

static void *arena__alloc(arena *a, size_t n, size_t align)
{
    arena_chunk *c = a->head;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off <= c->size && n <= c->size - off) {
            c->used = off + n;
            return c->data + off;
        }
    }
    /* A fresh chunk's data is max-aligned, so `n` bytes always fit. */
    c = arena__grow(a, n ? n : 1);
    if (!c)
        return NULL;
    c->used = n;
    return c->data;
}

void *arena_alloc(arena *a, size_t n)
{
    return arena__alloc(a, n, ARENA_ALIGN);
}

void *arena_alloc_bytes(arena *a, size_t n)
{
    return arena__alloc(a, n, 1);
}

char *arena_strdup(arena *a, const char *p, size_t n)
{
    if (n == SIZE_MAX)
        return NULL;
    char *s = arena__alloc(a, n + 1, 1);
    if (!s)
        return NULL;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

void *arena_memdup(arena *a, const void *p, size_t n)
{
    void *s = arena__alloc(a, n, 1);
    if (s && n)
        memcpy(s, p, n);
    return s;
}

void arena_reset(arena *a)
{
    arena_chunk *c = a->head;
    while (c && c != a->first) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = a->first;
    a->total = 0;
    if (a->first) {
        a->first->used = 0;
        a->total = sizeof(arena_chunk) + a->first->size;
    }
    a->last_err = WEIR_OK;
}

void arena_free(arena *a)
{
    arena_chunk *c = a->head;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = a->first = NULL;
    a->total = 0;
    a->last_err = WEIR_OK;
}

size_t arena_footprint(const arena *a)
{
    return a->total;
}

int arena_last_error(const arena *a)
{
    return a->last_err;
}
