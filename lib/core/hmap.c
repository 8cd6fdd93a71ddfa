/*
 * hmap.c — see hmap.h.
 */
#include "hmap.h"

#include <stdlib.h>

void xs_hmap_free(xs_hmap_t *m)
{
    free(m->ents);
    m->ents = NULL;
    m->cap = m->len = 0;
}

static size_t slot_of(const xs_hmap_t *m, uint64_t key)
{
    return xs_hmap_slot(m, key);
}

static xs_err_t grow(xs_hmap_t *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    xs_hmap_t n = {calloc(cap, sizeof(xs_hmap_ent_t)), cap, 0};
    if (!n.ents) {
        xs_hmap_free(&n);
        return XS_ERR_NOMEM;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->ents[i].key)
            continue;
        size_t j = slot_of(&n, m->ents[i].key);
        while (n.ents[j].key)
            j = (j + 1) & (cap - 1);
        n.ents[j].key = m->ents[i].key;
        n.ents[j].val = m->ents[i].val;
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
    while (m->ents[i].key && m->ents[i].key != key)
        i = (i + 1) & (m->cap - 1);
    if (!m->ents[i].key)
        m->len++;
    m->ents[i].key = key;
    m->ents[i].val = val;
    return XS_OK;
}

void *xs_hmap_del(xs_hmap_t *m, uint64_t key)
{
    if (!m->cap || !key)
        return NULL;
    size_t mask = m->cap - 1, i = slot_of(m, key);
    while (m->ents[i].key != key) {
        if (!m->ents[i].key)
            return NULL;
        i = (i + 1) & mask;
    }
    void *val = m->ents[i].val;
    /* Backward-shift deletion: move later entries of the cluster into the gap
     * when their home slot does not lie cyclically in (gap, j]. */
    size_t gap = i;
    for (size_t j = (i + 1) & mask; m->ents[j].key; j = (j + 1) & mask) {
        size_t home = slot_of(m, m->ents[j].key);
        bool in_range = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
        if (!in_range) {
            m->ents[gap].key = m->ents[j].key;
            m->ents[gap].val = m->ents[j].val;
            gap = j;
        }
    }
    m->ents[gap].key = 0;
    m->ents[gap].val = NULL;
    m->len--;
    return val;
}

size_t xs_hmap_bytes(const xs_hmap_t *m)
{
    return m->cap * sizeof(xs_hmap_ent_t);
}
