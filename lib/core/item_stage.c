/*
 * item_stage.c — pair-delta batches in, item sketches, pair totals and
 * neighbour lists updated (include/xsell/stages.h).
 *
 * For each pair (a, b) of a batch both items' summaries count the other
 * (sketch.h, "Summaries"), the class's pair total grows by one, and the
 * neighbour lists follow: the entry just counted is re-scored, and one more
 * entry of each item (of its list when full, else of its sketch) by a
 * round-robin sweep, with the neighbours' current
 * pair totals; an item's lists are ranked anew from its whole sketch when
 * the pairs counted in all have doubled since it was last ranked whole
 * (before a pair is added to it, and before the scorer reads it:
 * xs_item_stage_refresh). In the exact reference mode the pairs are counted
 * exactly in hash maps and no list is kept: xs_item_stage_rank ranks the
 * entries when they are read.
 *
 * Similarities read the pair table: k11 the pair's guaranteed count, the
 * marginals each item's pair total, the total twice the pairs counted.
 */
#include "xsell/stages.h"

#include <stdlib.h>

#include "hmap.h"

struct xs_item_stage {
    const xs_params_t *P; /* the learning parameters (borrowed) */
    bool exact;
    xs_item_access_t acc;
    xs_ss_entry_t *exact_scratch;
    size_t cap_exact_scratch;
    xs_scored_t *sims; /* xs_item_stage_rank's result */
    size_t cap_sims;
};

xs_item_stage_t *xs_item_stage_new(const xs_params_t *P, bool exact, const xs_item_access_t *acc)
{
    xs_item_stage_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->P = P;
    s->exact = exact;
    s->acc = *acc;
    return s;
}

void xs_item_stage_destroy(xs_item_stage_t *s)
{
    if (!s)
        return;
    free(s->exact_scratch);
    free(s->sims);
    free(s);
}

static xs_err_t exact_add(xs_hmap_t *m, uint64_t other)
{
    uintptr_t c = (uintptr_t)xs_hmap_get(m, other);
    return xs_hmap_put(m, other, (void *)(c + 1));
}

const xs_ss_entry_t *xs_item_stage_pairs(xs_item_stage_t *s, const xs_item_t *it, xs_hmap_t *exact,
                                         xs_class_t cls, int *n)
{
    if (!s->exact) {
        *n = it->n_pairs[cls];
        return xs_sketch_pairs_const(it, cls);
    }
    const xs_hmap_t *m = &exact[cls];
    if (m->len > s->cap_exact_scratch) {
        xs_ss_entry_t *x = realloc(s->exact_scratch, m->len * sizeof(*x));
        if (!x) {
            *n = 0;
            return NULL;
        }
        s->exact_scratch = x;
        s->cap_exact_scratch = m->len;
    }
    int k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->ents[i].key)
            s->exact_scratch[k++] =
                (xs_ss_entry_t){m->ents[i].key, (uint32_t)(uintptr_t)m->ents[i].val, 0};
    *n = k;
    return s->exact_scratch;
}

/* The pair table's total for a class: every pair counted in both items. */
static double pair_n(const xs_totals_t *t, int cls)
{
    return 2.0 * (double)t->pairs_total[cls];
}

/*
 * The count a neighbour of an item needs: model.min_support, or, when that
 * is 0 (the default), a threshold from the item's own statistics: 2 for an
 * item with few partners that recur (fewer than SUPPORT_FEW_PARTNERS, and at
 * least twice as many pairs as partners: a small catalogue's item, where a
 * single co-occurrence is noise beside the repeated ones), 1 otherwise (a
 * long tail of partners, where single co-occurrences are the evidence: a
 * sparse catalogue's items, and the partners beyond a best seller's
 * strongest). Measured in docs/EVALUATION.md: on the five shared data sets
 * within 0.1 % of 1 everywhere, while 2 everywhere loses a third of the hits
 * on RetailRocket; in a small catalogue it keeps an item bought once with a
 * camera below the tripod bought with it four times.
 */
#define SUPPORT_FEW_PARTNERS 32
uint32_t xs_item_stage_support_min(const xs_params_t *P, uint64_t pairs, int partners)
{
    if (P->min_support > 0)
        return (uint32_t)P->min_support;
    return partners > 0 && partners < SUPPORT_FEW_PARTNERS && pairs >= 2 * (uint64_t)partners ? 2
                                                                                              : 1;
}

/*
 * Similarity of a sketch entry of item i (n_i pairs) with n_j, n_all; back:
 * the neighbour's own summary's lower bound of the same pair count (0 when
 * not known). Both summaries hold a lower bound of one count, and the larger
 * is the better: a best seller's summary, with thousands of partners,
 * under-counts a middling partner whose own summary counts the pair exactly.
 */
static double entry_sim(const xs_params_t *P, uint32_t min_sup, const xs_ss_entry_t *en,
                        uint32_t back, double n_i, double n_j, double n_all)
{
    uint32_t cnt = en->count - en->err; /* guaranteed lower bound */
    if (back > cnt)
        cnt = back;
    if (cnt < min_sup)
        return 0;
    return xs_sketch_similarity(P->similarity, cnt, n_i, n_j, n_all, P->llr_min);
}

/* Re-ranks the entry at idx of it's list after a co-occurrence with j. */
static void top_update(const xs_item_stage_t *s, xs_item_t *it, xs_class_t cls, int idx, double n_j,
                       uint32_t back, double n_all)
{
    const xs_ss_entry_t *en = &xs_sketch_pairs_const(it, cls)[idx];
    uint64_t n_i = xs_sketch_pair_total(it, cls);
    xs_sketch_top_set(it, cls, idx,
                      entry_sim(s->P, xs_item_stage_support_min(s->P, n_i, it->n_pairs[cls]), en,
                                back, (double)n_i, n_j, n_all));
}

/* Similarity of a sketch entry of it (item `self`, of `partners` entries)
 * with the neighbour's current pair total (the entry's count when the
 * neighbour is unknown) and the neighbour's own count of the pair. */
static xs_err_t current_sim(xs_item_stage_t *s, const xs_params_t *P, const xs_item_t *it,
                            uint64_t self, xs_class_t cls, int partners, const xs_ss_entry_t *en,
                            double n_all, double *sim, char *errstr, size_t errstr_size)
{
    xs_item_t *cj = NULL;
    xs_err_t err = s->acc.get(s->acc.opaque, en->item, false, &cj, NULL, errstr, errstr_size);
    if (err)
        return err;
    double n_j = cj ? (double)xs_sketch_pair_total(cj, cls) : en->count - en->err;
    uint32_t back = 0;
    if (cj && self && !s->exact) {
        uint32_t e = 0, c = xs_sketch_pair_count(cj, cls, self, &e);
        back = c - e;
    }
    uint64_t n_i = xs_sketch_pair_total(it, cls);
    *sim = entry_sim(P, xs_item_stage_support_min(P, n_i, partners), en, back, (double)n_i, n_j,
                     n_all);
    return XS_OK;
}

/*
 * Re-scores one more entry with its neighbour's current count (not the
 * sketch entry `skip`, just scored), round robin from the item's cursor
 * (`sweep`), and advances the cursor: over the list's slots when the list
 * is full (an entry outside it enters only by ranking above its weakest:
 * at its own co-occurrence, or when the list is ranked whole), else over
 * the sketch's positions (an entry may become a neighbour without a
 * co-occurrence of its own: the support threshold or the pair total
 * moved).
 */
static xs_err_t sweep_one(xs_item_stage_t *s, xs_item_t *it, uint64_t self, xs_class_t cls,
                          int skip, double n_all, char *errstr, size_t errstr_size)
{
    int nt = 0, n = it->n_pairs[cls];
    const xs_top_t *t = xs_sketch_top(it, cls, &nt);
    bool list = nt == xs_sketch_top_cap(cls);
    int m = list ? nt : n, at = it->sweep[cls];
    if (m == 0)
        return XS_OK;
    if (at >= m)
        at = 0;
    if ((list ? t[at].idx : at) == skip && ++at >= m)
        at = 0;
    it->sweep[cls] = (uint8_t)(at + 1 < m ? at + 1 : 0);
    int pos = list ? t[at].idx : at;
    if (pos == skip)
        return XS_OK;
    const xs_ss_entry_t *en = &xs_sketch_pairs_const(it, cls)[pos];
    double sim = 0;
    xs_err_t err = current_sim(s, s->P, it, self, cls, n, en, n_all, &sim, errstr, errstr_size);
    if (!err)
        xs_sketch_top_set(it, cls, pos, sim);
    return err;
}

/* Lists ranked whole last with fewer than half the pairs of now (or never). */
static bool lists_stale(const xs_totals_t *t, const xs_item_t *it)
{
    return t->pairs_total[0] + t->pairs_total[1] > 2 * it->scored_at;
}

/*
 * Ranks an item's lists anew from its whole sketch and the current counts of
 * its neighbours (sketch.h, "Neighbour lists").
 */
static xs_err_t rescore_all(xs_item_stage_t *s, xs_item_t *it, uint64_t self, const xs_totals_t *t,
                            char *errstr, size_t errstr_size)
{
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        const xs_ss_entry_t *en = xs_sketch_pairs_const(it, (xs_class_t)cls);
        double n_all = pair_n(t, cls);
        xs_sketch_top_clear(it, (xs_class_t)cls);
        for (int k = 0; k < it->n_pairs[cls]; k++) {
            double sim = 0;
            xs_err_t err = current_sim(s, s->P, it, self, (xs_class_t)cls, it->n_pairs[cls], &en[k],
                                       n_all, &sim, errstr, errstr_size);
            if (err)
                return err;
            xs_sketch_top_set(it, (xs_class_t)cls, k, sim);
        }
    }
    it->scored_at = t->pairs_total[0] + t->pairs_total[1];
    s->acc.changed(s->acc.opaque, it);
    return XS_OK;
}

xs_err_t xs_item_stage_hint(xs_item_stage_t *s, uint64_t item, uint64_t cat, char *errstr,
                            size_t errstr_size)
{
    xs_item_t *it = NULL;
    xs_err_t err = s->acc.get(s->acc.opaque, item, true, &it, NULL, errstr, errstr_size);
    if (err)
        return err;
    if (!it->category && !(it->flags & XS_ITEM_F_CATALOG)) {
        it->category = cat;
        s->acc.changed(s->acc.opaque, it);
    }
    return XS_OK;
}

xs_err_t xs_item_stage_apply(xs_item_stage_t *s, const xs_pair_delta_t *deltas, size_t n_deltas,
                             xs_totals_t *totals, uint64_t *n_pairs, char *errstr,
                             size_t errstr_size)
{
    xs_err_t err = XS_OK;
    const xs_item_access_t *acc = &s->acc;
    for (size_t k = 0; k < n_deltas && !err; k++) {
        const xs_pair_delta_t *d = &deltas[k];
        xs_item_t *a = NULL, *b = NULL;
        xs_hmap_t *xa = NULL, *xb = NULL;
        if ((err = acc->get(acc->opaque, d->a, true, &a, &xa, errstr, errstr_size)) != XS_OK)
            break;
        if (!d->b) {
            if (a->n_users[d->cls] < UINT32_MAX)
                a->n_users[d->cls]++;
            acc->changed(acc->opaque, a);
            continue;
        }
        if ((err = acc->get(acc->opaque, d->b, true, &b, &xb, errstr, errstr_size)) != XS_OK)
            break;
        if (s->exact) {
            if ((err = exact_add(&xa[d->cls], d->b)) || (err = exact_add(&xb[d->cls], d->a)))
                break;
            a->pair_total[d->cls]++; /* the same marginals, exactly */
            b->pair_total[d->cls]++;
            totals->pairs_total[d->cls]++;
            totals->dirty = true;
        } else {
            xs_class_t cls = (xs_class_t)d->cls;
            if ((lists_stale(totals, a) &&
                 (err = rescore_all(s, a, d->a, totals, errstr, errstr_size))) ||
                (lists_stale(totals, b) &&
                 (err = rescore_all(s, b, d->b, totals, errstr, errstr_size))))
                break;
            int ia = xs_sketch_add_pair(a, cls, d->b);
            int ib = xs_sketch_add_pair(b, cls, d->a);
            totals->pairs_total[cls]++;
            totals->dirty = true;
            double n_all = pair_n(totals, cls);
            /* each side's summary counts the pair too: the other's lower bound */
            uint32_t ca = ia >= 0 ? xs_sketch_pairs_const(a, cls)[ia].count -
                                        xs_sketch_pairs_const(a, cls)[ia].err
                                  : 0;
            uint32_t cb = ib >= 0 ? xs_sketch_pairs_const(b, cls)[ib].count -
                                        xs_sketch_pairs_const(b, cls)[ib].err
                                  : 0;
            if (ia >= 0)
                top_update(s, a, cls, ia, (double)xs_sketch_pair_total(b, cls), cb, n_all);
            if (ib >= 0)
                top_update(s, b, cls, ib, (double)xs_sketch_pair_total(a, cls), ca, n_all);
            if ((err = sweep_one(s, a, d->a, cls, ia, n_all, errstr, errstr_size)) ||
                (err = sweep_one(s, b, d->b, cls, ib, n_all, errstr, errstr_size)))
                break;
        }
        acc->changed(acc->opaque, a);
        acc->changed(acc->opaque, b);
        (*n_pairs)++;
    }
    return err;
}

xs_err_t xs_item_stage_rescore(xs_item_stage_t *s, xs_item_t *it, uint64_t self,
                               const xs_totals_t *totals, char *errstr, size_t errstr_size)
{
    return s->exact ? XS_OK : rescore_all(s, it, self, totals, errstr, errstr_size);
}

xs_err_t xs_item_stage_refresh(xs_item_stage_t *s, const xs_ctx_item_t *items, int n,
                               const xs_totals_t *totals, char *errstr, size_t errstr_size)
{
    for (int c = 0; c < n && !s->exact; c++) {
        xs_item_t *it = NULL;
        xs_err_t err =
            s->acc.get(s->acc.opaque, items[c].item, false, &it, NULL, errstr, errstr_size);
        if (err)
            return err;
        if (it && lists_stale(totals, it) &&
            (err = rescore_all(s, it, items[c].item, totals, errstr, errstr_size)) != XS_OK)
            return err;
    }
    return XS_OK;
}

xs_err_t xs_item_stage_rank(xs_item_stage_t *s, const xs_item_t *it, uint64_t self,
                            xs_hmap_t *exact, xs_class_t cls, const xs_params_t *P,
                            const xs_totals_t *totals, const xs_scored_t **out, int *n_out,
                            char *errstr, size_t errstr_size)
{
    int n_en = 0, n_sim = 0;
    const xs_ss_entry_t *en = xs_item_stage_pairs(s, it, exact, cls, &n_en);
    double n_all = pair_n(totals, cls);
    *out = NULL;
    *n_out = 0;
    if ((size_t)n_en > s->cap_sims) {
        xs_scored_t *v = realloc(s->sims, (size_t)n_en * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        s->sims = v;
        s->cap_sims = (size_t)n_en;
    }
    uint32_t min_sup = xs_item_stage_support_min(P, xs_sketch_pair_total(it, cls), n_en);
    for (int k = 0; k < n_en; k++) {
        if (en[k].count - en[k].err < min_sup)
            continue;
        double sim = 0;
        xs_err_t err =
            current_sim(s, P, it, self, cls, n_en, &en[k], n_all, &sim, errstr, errstr_size);
        if (err)
            return err;
        if (sim <= 0)
            continue;
        s->sims[n_sim++] = (xs_scored_t){en[k].item, sim};
    }
    *out = s->sims;
    *n_out = n_sim;
    return XS_OK;
}
