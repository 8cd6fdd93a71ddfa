/*
 * hmap.c — see hmap.h.
 */
#include "hmap.h"

#include <stdlib.h>

void xs_hmap_free(xs_hmap_t *m)
{
    free(m->keys);
    free(m->vals);
    m->keys = NULL;
    m->vals = NULL;
    m->cap = m->len = 0;
}

static size_t slot_of(const xs_hmap_t *m, uint64_t key)
{
    return xs_hmap_slot(m, key);
}

static xs_err_t grow(xs_hmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    xs_hmap_t n = {calloc(cap, sizeof(uint64_t)), calloc(cap, sizeof(void *)), cap, 0};
    if (!n.keys || !n.vals) {
        xs_hmap_free(&n);
        return XS_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->keys[i])
            continue;
        size_t j = slot_of(&n, m->keys[i]);
        while (n.keys[j])
            j = (j + 1) & (cap - 1);
        n.keys[j] = m->keys[i];
        n.vals[j] = m->vals[i];
        n.len++;
    }
    xs_hmap_free(m);
    *m = n;
    return XS_OK;
}

xs_err_t xs_hmap_put(xs_hmap_t *m, uint64_t key, void *val)
{
    if (!key)
        return XS_ERR_INVALID;
    if ((m->len + 1) * 2 > m->cap) {
        xs_err_t err = grow(m);
        if (err)
            return err;
    }
    size_t i = slot_of(m, key);
    while (m->keys[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->len++;
    m->keys[i] = key;
    m->vals[i] = val;
    return XS_OK;
}

void *xs_hmap_del(xs_hmap_t *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    size_t mask = m->cap - 1, i = slot_of(m, key);
    while (m->keys[i] != key) {
        if (!m->keys[i])
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->vals[i];
    /* Backward-shift deletion: move later entries of the cluster into the gap
     * when their home slot does not lie cyclically in (gap, j]. */
    size_t gap = i;
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->keys[j]);
        bool in_range = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
        if (!in_range) {
            m->keys[gap] = m->keys[j];
            m->vals[gap] = m->vals[j];
            gap = j;
        }
    }
    m->keys[gap] = 0;
    m->vals[gap] = NULL;
    m->len--;
    return val;
}

size_t xs_hmap_bytes(const xs_hmap_t *m)
{
    return m->cap * (sizeof(uint64_t) + sizeof(void *));
}
