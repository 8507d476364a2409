/* arena.h -- a bump allocator for per-request and per-batch scratch memory.
 *
 * Parsing a payload makes many small allocations that all die together (the
 * fields of one record, its strings); an arena hands them out by bumping a
 * pointer and frees them all at once, as nginx pools and h2o_mem_pool_t do.
 *
 * Memory comes in chunks kept on a list. The first chunk is 4 KiB (or the
 * bound, if smaller); each next chunk doubles the previous one, or is exactly
 * as big as a large request needs. Every byte malloc'd for chunks, chunk
 * headers included, counts against the bound given to arena_init, so no
 * input can make one arena grow past it: an allocation that would pass the
 * bound returns NULL and arena_last_error says WEIR_ETOOBIG (NULL from malloc
 * itself says WEIR_ENOMEM). A failed allocation changes nothing else; the
 * arena stays usable.
 *
 * arena_reset forgets every allocation but keeps the first chunk, so a loop
 * that resets between records reuses the same memory without calling malloc
 * once the first chunk is big enough. arena_free releases everything.
 *
 * The struct is caller-allocated (it lives on the stack or inside a
 * connection); its fields are private to arena.c.
 */
#ifndef WEIR_BASE_ARENA_H
#define WEIR_BASE_ARENA_H

#include <stddef.h>

typedef struct arena_chunk arena_chunk;

typedef struct arena {
    arena_chunk *head;  /* private: the chunk being bumped (newest); list runs to older ones */
    arena_chunk *first; /* private: the oldest chunk, the one arena_reset keeps */
    size_t total;       /* private: bytes malloc'd for all chunks, headers included */
    size_t max;         /* private: bound on total */
    int last_err;       /* private: why the last allocation failed, 0 if none did */
} arena;

/* Prepares an empty arena that will never hold more than max_bytes (0 means
 * no bound). Allocates nothing. */
void arena_init(arena *a, size_t max_bytes);

/* n bytes aligned for any type (max_align_t), or NULL when the bound would
 * be passed or malloc fails. arena_alloc(a, 0) returns a non-NULL pointer
 * that must not be dereferenced. */
void *arena_alloc(arena *a, size_t n);

/* n bytes with no alignment promise; for byte strings, so that they do not
 * waste padding. NULL as arena_alloc. */
void *arena_alloc_bytes(arena *a, size_t n);

/* A copy of p[0..n) followed by a NUL byte, or NULL. */
char *arena_strdup(arena *a, const char *p, size_t n);

/* A copy of p[0..n), or NULL. */
void *arena_memdup(arena *a, const void *p, size_t n);

/* Forgets every allocation and frees every chunk but the first. */
void arena_reset(arena *a);

/* Frees every chunk; the arena is empty and usable again afterwards. */
void arena_free(arena *a);

/* Bytes currently malloc'd for the arena (what the bound limits). */
size_t arena_footprint(const arena *a);

/* WEIR_ETOOBIG or WEIR_ENOMEM for the last failed allocation, WEIR_OK when
 * none failed since arena_init/reset/free. */
int arena_last_error(const arena *a);

#endif
