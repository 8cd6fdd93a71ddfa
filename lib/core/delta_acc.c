/*
 * delta_acc.c — the pre-aggregation of one input partition's pair deltas
 * between checkpoints (delta_acc.h), for xs_engine_take_deltas().
 */
#include "delta_acc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TREND_HALF_LIFE_MS (7 * 24 * 3600e3) /* the trending summary's (trending.c) */

void xs_delta_acc_clear(xs_delta_acc_t *a)
{
    free(a->v);
    free(a->slot);
    memset(a, 0, sizeof(*a));
}

static size_t slot_of(const xs_delta_acc_t *a, const xs_delta_t *d)
{
    uint64_t h = d->a * UINT64_C(0x9e3779b97f4a7c15);
    h ^= (d->b + ((uint64_t)d->kind << 8 | d->cls)) * UINT64_C(0xc2b2ae3d27d4eb4f);
    h ^= h >> 29;
    h *= UINT64_C(0x165667b19e3779f9);
    return (size_t)(h >> 20) & (a->n_slots - 1);
}

static bool same_key(const xs_delta_t *x, const xs_delta_t *y)
{
    return x->kind == y->kind && x->cls == y->cls && x->a == y->a && x->b == y->b;
}

/* Points the key of entry i (index + 1 in the table) at i. */
static void slot_set(xs_delta_acc_t *a, size_t i)
{
    size_t s = slot_of(a, &a->v[i]);
    while (a->slot[s] && !same_key(&a->v[a->slot[s] - 1], &a->v[i]))
        s = (s + 1) & (a->n_slots - 1);
    a->slot[s] = (uint32_t)(i + 1);
}

static xs_err_t grow(xs_delta_acc_t *a)
{
    if (a->n == a->cap) {
        if (a->cap >= UINT32_MAX / 2)
            return XS_ERR_TOO_LARGE;
        size_t cap = a->cap ? a->cap * 2 : 256;
        xs_delta_t *v = realloc(a->v, cap * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        a->v = v;
        a->cap = cap;
    }
    if (2 * (a->n + 1) > a->n_slots) { /* load at most 1/2 */
        size_t ns = a->n_slots ? a->n_slots * 2 : 512;
        uint32_t *slot = calloc(ns, sizeof(*slot));
        if (!slot)
            return XS_ERR_NOMEM;
        free(a->slot);
        a->slot = slot;
        a->n_slots = ns;
        /* in entry order: a key split by a full count maps to its last entry */
        for (size_t i = 0; i < a->n; i++)
            slot_set(a, i);
    }
    return XS_OK;
}

static void note_ts(xs_delta_acc_t *a, int64_t ts)
{
    if (!a->has_ts || ts > a->ts) {
        a->ts = ts;
        a->has_ts = true;
    }
}

xs_err_t xs_delta_acc_add(xs_delta_acc_t *a, const xs_delta_t *d0)
{
    xs_delta_t d = *d0;
    if (d.kind == XS_DELTA_PAIR && d.a > d.b) {
        d.a = d0->b;
        d.b = d0->a;
    }
    note_ts(a, d.last_ts);
    xs_delta_t *x = NULL;
    size_t s = 0;
    if (a->n_slots) {
        s = slot_of(a, &d);
        for (; a->slot[s]; s = (s + 1) & (a->n_slots - 1))
            if (same_key(&a->v[a->slot[s] - 1], &d)) {
                x = &a->v[a->slot[s] - 1];
                break;
            }
    }
    if (x &&
        (d.kind != XS_DELTA_PAIR && d.kind != XS_DELTA_USERS ? true
                                                             : x->count <= UINT32_MAX - d.count)) {
        if (d.kind == XS_DELTA_TREND) {
            double h = TREND_HALF_LIFE_MS;
            if (d.last_ts > x->last_ts)
                x->weight = x->weight * exp2((double)(x->last_ts - d.last_ts) / h) + d.weight;
            else
                x->weight += d.weight * exp2((double)(d.last_ts - x->last_ts) / h);
        } else {
            x->count += d.count;
        }
        if (d.last_ts > x->last_ts)
            x->last_ts = d.last_ts;
        return XS_OK;
    }
    xs_err_t err = grow(a); /* new, or a count that would overflow: a new entry */
    if (err)
        return err;
    a->v[a->n] = d;
    slot_set(a, a->n);
    a->n++;
    return XS_OK;
}

void xs_delta_acc_users(xs_delta_acc_t *a, int64_t total, int64_t bought, int64_t ts)
{
    if (!total && !bought)
        return;
    note_ts(a, ts);
    a->users_total += total;
    a->users_bought += bought;
}

bool xs_delta_acc_pending(const xs_delta_acc_t *a)
{
    return a->n > 0 || a->users_total || a->users_bought;
}

size_t xs_delta_acc_bytes(const xs_delta_acc_t *a)
{
    return a->cap * sizeof(*a->v) + a->n_slots * sizeof(*a->slot);
}
