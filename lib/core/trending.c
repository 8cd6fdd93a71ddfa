/*
 * trending.c — the trending items: a decayed SpaceSaving summary over the
 * items added to carts and bought (XS_TREND_CAP entries). Instead of old
 * weights shrinking, new ones grow as 2^(t/h) from the reference time, and
 * all are rescaled when they get large. Written by the user stage, read by
 * the scorer (the backfill and the popularity prior), stored with the
 * totals in meta "globals".
 */
#include "xsell/stages.h"

#include <math.h>

void xs_trending_add(xs_trending_t *t, uint64_t item, int64_t now)
{
    xs_trending_add_weight(t, item, 1.0, now);
}

void xs_trending_add_weight(xs_trending_t *t, uint64_t item, double weight, int64_t ts)
{
    const double h = 7 * 24 * 3600e3; /* one-week half-life */
    if (t->n == 0 && t->ref == 0)
        t->ref = ts;
    double s = exp2((double)(ts - t->ref) / h);
    if (s > 1e12 || s < 1e-12) {
        for (int i = 0; i < t->n; i++)
            t->v[i].weight /= s;
        t->ref = ts;
        s = 1.0;
    }
    double w = weight * s;
    int min = -1;
    for (int i = 0; i < t->n; i++) {
        if (t->v[i].item == item) {
            t->v[i].weight += w;
            t->dirty = true;
            return;
        }
        if (min < 0 || t->v[i].weight <= t->v[min].weight)
            min = i;
    }
    if (t->n < XS_TREND_CAP)
        t->v[t->n++] = (xs_trend_entry_t){item, w};
    else
        t->v[min] = (xs_trend_entry_t){item, t->v[min].weight + w};
    t->dirty = true;
}

/* The previous order, extended by new entries, then insertion-sorted: nearly
 * sorted already, so this is about linear. The order is total (items are
 * distinct), so the result does not depend on the start. */
void xs_trending_order(const xs_trending_t *t, int order[XS_TREND_CAP], int *n_order)
{
    if (*n_order > t->n)
        *n_order = 0;
    for (int i = *n_order; i < t->n; i++)
        order[i] = i;
    *n_order = t->n;
    for (int i = 1; i < t->n; i++)
        for (int k = i; k > 0; k--) {
            const xs_trend_entry_t *a = &t->v[order[k]], *b = &t->v[order[k - 1]];
            if (a->weight > b->weight || (a->weight == b->weight && a->item < b->item)) {
                int x = order[k];
                order[k] = order[k - 1];
                order[k - 1] = x;
            } else {
                break;
            }
        }
}
