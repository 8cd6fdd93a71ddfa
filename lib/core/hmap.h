/*
 * hmap — private open-addressing hash map from 64-bit keys to pointers.
 *
 * Keys are already well-mixed hashes (XXH3), so the slot is the key masked
 * by the table size. Linear probing; deletion by backward shift, so there are
 * no tombstones and lookups stay short. Key 0 marks an empty slot and must
 * not be inserted. The load factor is kept at or below 1/2.
 * The map does not own the values.
 */
#ifndef XSELL_LIB_HMAP_H
#define XSELL_LIB_HMAP_H

#include <stddef.h>
#include <stdint.h>
#include "xsell/common.h"

typedef struct xs_hmap_ent {
    uint64_t key; /* 0: empty */
    void *val;
} xs_hmap_ent_t;

typedef struct xs_hmap {
    xs_hmap_ent_t *ents; /* key and value side by side: one cache line per probe */
    size_t cap;          /* power of two, or 0 */
    size_t len;
} xs_hmap_t;

/* Zero-initialise ({0}) before use. */
void xs_hmap_free(xs_hmap_t *m);
static inline size_t xs_hmap_slot(const xs_hmap_t *m, uint64_t key)
{
    /* Fold the high bits in: keys are hashes, but tests use small keys. */
    uint64_t h = key ^ (key >> 29) ^ (key >> 47);
    h *= UINT64_C(0x9e3779b97f4a7c15);
    return (size_t)(h >> 17) & (m->cap - 1);
}

/* The value of key, or NULL (inline: the engine's hottest call). */
static inline void *xs_hmap_get(const xs_hmap_t *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    for (size_t i = xs_hmap_slot(m, key);; i = (i + 1) & (m->cap - 1)) {
        if (m->ents[i].key == key)
            return m->ents[i].val;
        if (!m->ents[i].key)
            return NULL;
    }
}
/* Inserts or replaces. */
xs_err_t xs_hmap_put(xs_hmap_t *m, uint64_t key, void *val);
/* Removes and returns the value, or NULL. */
void *xs_hmap_del(xs_hmap_t *m, uint64_t key);
/* Iteration: for (size_t i = 0; i < m->cap; i++) if (m->ents[i].key) ... */
size_t xs_hmap_bytes(const xs_hmap_t *m);

#endif
