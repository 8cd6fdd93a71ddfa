/*
 * scorer.c — builds a cross-sell list from what it reads: the user's
 * profile, the neighbour table (the items' records and their lists), the
 * catalog and the trending summary (include/xsell/stages.h). It writes
 * nothing but its own scratch and the list: stale lists are refreshed by
 * the item stage before it runs (xs_item_stage_refresh), and every record
 * is reached through the read-only xs_scorer_view_t.
 *
 * 1. Context (xs_scorer_context): trigger items, cart lines, purchases and
 *    views, weighted and decayed, the strongest max_context used.
 * 2. Candidates: the context items' neighbour lists (or, for an arm that
 *    ranks differently and in reference mode, their entries ranked now),
 *    summed by weight, plus a popularity prior.
 * 3. Rules and the category boost, best raw scores first, until no
 *    remaining candidate can enter the capped list; the category and family
 *    caps; the trending backfill.
 */
#include "xsell/stages.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/hash.h"

typedef struct candidate {
    uint64_t item;
    double score;
    double bv;    /* bought-together minus viewed-together contributions */
    double prior; /* the popularity prior's part of score */
    double final; /* score after the category boost (rules passed) */
    const xs_item_t *st;
    uint64_t family; /* looked up with the rules */
    float because_w[XS_BECAUSE_MAX];
    uint8_t because[XS_BECAUSE_MAX]; /* context positions, n_because used */
    uint8_t n_because;
} candidate_t;

/* A candidate's raw score and item, and its position, for the selection. */
typedef struct heap_ent {
    double score;
    uint64_t item;
    uint32_t pos;
} heap_ent_t;

struct xs_scorer {
    candidate_t *cands;
    size_t n_cands, cap_cands;
    /* candidate index: open addressing over positions in cands, valid where
     * cand_gen equals gen (so starting a list clears nothing) */
    uint32_t *cand_pos, *cand_gen;
    size_t cand_slots;
    uint32_t gen;
    heap_ent_t *heap; /* selection scratch, cap_cands each */
    uint32_t *fin;
    int trend_order[XS_TREND_CAP]; /* indexes by weight, descending; kept between lists */
    int n_trend_order;
    /* the list being scored */
    const xs_scorer_view_t *v;
    const xs_score_rules_t *rules;
    const xs_trending_t *tr;
    int64_t list_time;
};

xs_scorer_t *xs_scorer_new(void)
{
    return calloc(1, sizeof(xs_scorer_t));
}

void xs_scorer_destroy(xs_scorer_t *s)
{
    if (!s)
        return;
    free(s->cands);
    free(s->cand_pos);
    free(s->cand_gen);
    free(s->heap);
    free(s->fin);
    free(s);
}

void xs_scorer_ctx_add(xs_ctx_item_t *ctx, int *n, int cap, uint64_t item, double w, bool bought)
{
    for (int i = 0; i < *n; i++) {
        if (ctx[i].item == item) {
            if (w > ctx[i].w)
                ctx[i].w = w;
            ctx[i].bought &= bought;
            return;
        }
    }
    if (*n < cap)
        ctx[(*n)++] = (xs_ctx_item_t){item, w, bought};
}

static int cmp_ctx(const void *a, const void *b)
{
    const xs_ctx_item_t *x = a, *y = b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Makes room for n candidates: the array, the selection scratch and an
 * index of at least 2n slots; starts a new generation of the index. */
static xs_err_t cand_begin(xs_scorer_t *s, size_t n)
{
    if (n > s->cap_cands) {
        size_t cap = s->cap_cands ? s->cap_cands : 256;
        while (cap < n)
            cap *= 2;
        candidate_t *c = realloc(s->cands, cap * sizeof(*c));
        if (c)
            s->cands = c;
        heap_ent_t *h = realloc(s->heap, cap * sizeof(*h));
        if (h)
            s->heap = h;
        uint32_t *f = realloc(s->fin, cap * sizeof(*f));
        if (f)
            s->fin = f;
        if (!c || !h || !f)
            return XS_ERR_NOMEM;
        s->cap_cands = cap;
    }
    if (s->cand_slots < 2 * s->cap_cands) {
        size_t slots = 2 * s->cap_cands;
        uint32_t *pos = malloc(slots * sizeof(*pos)), *gen = calloc(slots, sizeof(*gen));
        if (!pos || !gen) {
            free(pos);
            free(gen);
            return XS_ERR_NOMEM;
        }
        free(s->cand_pos);
        free(s->cand_gen);
        s->cand_pos = pos;
        s->cand_gen = gen;
        s->cand_slots = slots;
        s->gen = 0;
    }
    if (++s->gen == 0) { /* wrapped: forget every slot */
        memset(s->cand_gen, 0, s->cand_slots * sizeof(*s->cand_gen));
        s->gen = 1;
    }
    s->n_cands = 0;
    return XS_OK;
}

/* The candidate of item, added when new (cand_begin reserved the room). */
static candidate_t *cand_get(xs_scorer_t *s, uint64_t item)
{
    size_t mask = s->cand_slots - 1;
    for (size_t i = (size_t)((item * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & mask;;
         i = (i + 1) & mask) {
        if (s->cand_gen[i] != s->gen) {
            candidate_t *c = &s->cands[s->n_cands];
            c->item = item;
            c->score = c->bv = c->prior = 0;
            c->family = 0;
            c->n_because = 0;
            s->cand_gen[i] = s->gen;
            s->cand_pos[i] = (uint32_t)s->n_cands++;
            return c;
        }
        candidate_t *c = &s->cands[s->cand_pos[i]];
        if (c->item == item)
            return c;
    }
}

/* The trending entries by weight, descending (xs_trending_order, the
 * scorer's order kept between lists). */
static const int *trend_sort(xs_scorer_t *s)
{
    xs_trending_order(s->tr, s->trend_order, &s->n_trend_order);
    return s->trend_order;
}

/* a ranks before b by final score (ties: smaller item). */
static bool final_before(const candidate_t *a, const candidate_t *b)
{
    return a->final > b->final || (a->final == b->final && a->item < b->item);
}

static bool heap_before(const heap_ent_t *a, const heap_ent_t *b)
{
    return a->score > b->score || (a->score == b->score && a->item < b->item);
}

/* Keeps the XS_BECAUSE_MAX context items that contributed most (unordered;
 * because_sort orders them for output). ctx is a position in the context. */
static inline void because_add(candidate_t *c, int ctx, float w)
{
    int low = 0;
    for (int i = 0; i < c->n_because; i++) {
        if (c->because[i] == ctx) {
            c->because_w[i] += w;
            return;
        }
        if (c->because_w[i] < c->because_w[low])
            low = i;
    }
    if (c->n_because < XS_BECAUSE_MAX) {
        c->because[c->n_because] = (uint8_t)ctx;
        c->because_w[c->n_because++] = w;
    } else if (w > c->because_w[low]) {
        c->because[low] = (uint8_t)ctx;
        c->because_w[low] = w;
    }
}

/* Orders the because entries by contribution, descending (ties: context order). */
static void because_sort(candidate_t *c)
{
    for (int i = 1; i < c->n_because; i++)
        for (int k = i; k > 0; k--) {
            bool before =
                c->because_w[k] > c->because_w[k - 1] ||
                (c->because_w[k] == c->because_w[k - 1] && c->because[k] < c->because[k - 1]);
            if (!before)
                break;
            uint8_t t = c->because[k];
            c->because[k] = c->because[k - 1];
            c->because[k - 1] = t;
            float tw = c->because_w[k];
            c->because_w[k] = c->because_w[k - 1];
            c->because_w[k - 1] = tw;
        }
}

/* Adds the contribution of context position ctx to the candidate `item`. */
static inline void cand_add(xs_scorer_t *s, uint64_t item, double contrib, int cls, int ctx)
{
    candidate_t *cd = cand_get(s, item);
    cd->score += contrib;
    cd->bv += cls == XS_CLASS_BOUGHT ? contrib : -contrib;
    if (cd->n_because && cd->because[cd->n_because - 1] == ctx) /* its other class */
        cd->because_w[cd->n_because - 1] += (float)contrib;
    else
        because_add(cd, ctx, (float)contrib);
}

/* True when the rules let `item` appear for this user: in stock, not
 * deleted, not a context item (but a past purchase, left to the rebuy rule),
 * not in the cart (lines or overflow filter), not bought within rebuy_days
 * (items or rebuy filter) unless repurchasable. */
static bool allowed(const xs_params_t *P, const xs_profile_t *p, const xs_ctx_item_t *ctx,
                    int n_ctx, uint64_t item, const xs_item_t *st, int64_t now)
{
    if (st && (st->flags & (XS_ITEM_F_OUT_OF_STOCK | XS_ITEM_F_DELETED)))
        return false;
    for (int i = 0; i < n_ctx; i++)
        if (ctx[i].item == item && !ctx[i].bought)
            return false;
    if (!p)
        return true;
    if (xs_profile_in_cart(p, item))
        return false;
    if (!(st && (st->flags & XS_ITEM_F_REPURCHASABLE)) &&
        xs_profile_bought_within(p, item, now, (int64_t)ceil(P->rebuy_days * 86400e3)))
        return false;
    return true;
}

/* The item's product family (ItemUpdate.family hash), 0 when none is known. */
static xs_err_t family_of(xs_scorer_t *s, uint64_t item, uint64_t *fam, char *errstr,
                          size_t errstr_size)
{
    xs_scorer_catalog_t n;
    xs_err_t err = s->v->catalog(s->v->opaque, item, &n, errstr, errstr_size);
    *fam = !err && n.found ? n.family : 0;
    return err;
}

static bool family_in(const uint64_t *fams, int n, uint64_t fam)
{
    for (int k = 0; fam && k < n; k++)
        if (fams[k] == fam)
            return true;
    return false;
}

/* Whether the n picks (families fams) hold family_cap items of fam already. */
static bool family_full(const xs_params_t *P, const uint64_t *fams, int n, uint64_t fam)
{
    if (!fam || P->family_cap <= 0)
        return false;
    int same = 0;
    for (int k = 0; k < n; k++)
        same += fams[k] == fam;
    return same >= P->family_cap;
}

static xs_err_t set_str(char **dst, const char *s)
{
    *dst = xs_str_dup(s ? s : "");
    return *dst ? XS_OK : XS_ERR_NOMEM;
}

static xs_err_t name_of(xs_scorer_t *s, uint64_t h, char **dst, char *errstr, size_t errstr_size)
{
    xs_scorer_catalog_t n;
    xs_err_t err = s->v->catalog(s->v->opaque, h, &n, errstr, errstr_size);
    if (err)
        return err;
    if (n.found)
        return set_str(dst, n.id);
    char hex[24];
    snprintf(hex, sizeof(hex), "#%016llx", (unsigned long long)h);
    return set_str(dst, hex);
}

static bool hash_in(const uint64_t *v, int n, uint64_t h)
{
    for (int k = 0; k < n; k++)
        if (v[k] == h)
            return true;
    return false;
}

/* The query-time rules (s->rules, NULL: none), the catalog's availability
 * window (ItemUpdate.available_from / available_until: from <= s->list_time <
 * until) and the product family, for a candidate that passed allowed(), from
 * one catalog look-up: *pass, *factor the boost of its final score, *fam its
 * family (0 when none is known). */
static xs_err_t candidate_check(xs_scorer_t *s, uint64_t item, const xs_item_t *st, bool *pass,
                                double *factor, uint64_t *fam, char *errstr, size_t errstr_size)
{
    const xs_score_rules_t *R = s->rules;
    uint64_t cat = st ? st->category : 0;
    *pass = true;
    *factor = 1.0;
    *fam = 0;
    if (R && (hash_in(R->excl, R->n_excl, item) || (R->n_cat && !hash_in(R->cat, R->n_cat, cat)) ||
              (cat && hash_in(R->xcat, R->n_xcat, cat)))) {
        *pass = false;
        return XS_OK;
    }
    xs_scorer_catalog_t n;
    xs_err_t err = s->v->catalog(s->v->opaque, item, &n, errstr, errstr_size);
    if (err)
        return err;
    if (R && R->has_max_price && (!n.found || !n.has_price || !(n.price <= R->max_price))) {
        *pass = false;
        return XS_OK;
    }
    int64_t t = s->list_time;
    if (n.found && ((n.has_from && t < n.avail_from) || (n.has_until && t >= n.avail_until))) {
        *pass = false;
        return XS_OK;
    }
    *fam = n.found ? n.family : 0;
    if (R && (hash_in(R->bitem, R->n_bitem, item) || (cat && hash_in(R->bcat, R->n_bcat, cat))))
        *factor = R->boost;
    return XS_OK;
}

/* Whether the n picks (categories cats) hold category_cap items of cat already. */
static bool category_full(const xs_params_t *P, const uint64_t *cats, int n, uint64_t cat)
{
    if (!cat || P->category_cap <= 0)
        return false;
    int same = 0;
    for (int k = 0; k < n; k++)
        same += cats[k] == cat;
    return same >= P->category_cap;
}

int xs_scorer_context(const xs_params_t *P, const xs_profile_t *p, xs_ctx_item_t *ctx, int *n,
                      int64_t now)
{
    const int ctx_cap = XS_CTX_MAX;
    double hl = P->half_life_hours * 3600e3;
    int n_ctx = *n;
    if (p) {
        for (int i = 0; i < p->n_cart; i++)
            xs_scorer_ctx_add(ctx, &n_ctx, ctx_cap, p->cart[i].item, P->w_cart, false);
        for (int i = 0; i < p->n_items; i++) {
            const xs_profile_item_t *it = &p->items[i];
            double w = it->bought_ts ? P->w_purchase * xs_profile_decay(1, it->bought_ts, now, hl)
                                     : P->w_view * xs_profile_decay(1, it->ts, now, hl);
            xs_scorer_ctx_add(ctx, &n_ctx, ctx_cap, it->item, w, it->bought_ts != 0);
        }
    }
    /* insertion sort (small n; items are distinct, so the order is total) */
    for (int i = 1; i < n_ctx; i++) {
        xs_ctx_item_t t = ctx[i];
        int k = i;
        for (; k > 0 && cmp_ctx(&t, &ctx[k - 1]) < 0; k--)
            ctx[k] = ctx[k - 1];
        ctx[k] = t;
    }
    *n = n_ctx;
    return n_ctx < P->max_context ? n_ctx : P->max_context;
}

static void rules_hash(uint64_t *out, int *n_out, const char *const *v, int n)
{
    *n_out = 0;
    for (int i = 0; i < n && i < XS_RULES_MAX; i++)
        if (v[i] && *v[i])
            out[(*n_out)++] = xs_hash_str(v[i]);
}

void xs_scorer_rules(xs_score_rules_t *rc, const xs_rules_t *rules)
{
    memset(rc, 0, sizeof(*rc));
    rules_hash(rc->excl, &rc->n_excl, rules->exclude, rules->n_exclude);
    rules_hash(rc->cat, &rc->n_cat, rules->category, rules->n_category);
    rules_hash(rc->xcat, &rc->n_xcat, rules->exclude_category, rules->n_exclude_category);
    rules_hash(rc->bitem, &rc->n_bitem, rules->boost_item, rules->n_boost_item);
    rules_hash(rc->bcat, &rc->n_bcat, rules->boost_category, rules->n_boost_category);
    rc->has_max_price = rules->has_max_price;
    rc->max_price = rules->max_price;
    rc->boost = rules->boost > 0 ? rules->boost : 2.0;
}

static xs_err_t score(xs_scorer_t *s, const xs_score_in_t *in, xs_list_t *list, char *errstr,
                      size_t errstr_size)
{
    xs_err_t err = XS_OK;
    const xs_params_t *P = in->P;
    const xs_profile_t *p = in->p;
    const xs_ctx_item_t *ctx = in->ctx;
    const int n_ctx = in->n_ctx, n_use = in->n_use, n_want = in->n_want;
    const xs_placement_t placement = in->placement;
    const int64_t now = in->now;
    const bool lists = in->lists;
    const xs_scorer_view_t *v = s->v;
    double hl = P->half_life_hours * 3600e3;
    /* Placements that want complements (CART, CHECKOUT, POST_PURCHASE) show
     * nothing of the families of the trigger items and the cart lines: a
     * colour variant of what is in the cart is a substitute, not a
     * complement. PRODUCT_PAGE may (the shopper is still choosing). */
    uint64_t xfam[XS_CTX_MAX + XS_PROFILE_MAX_CART];
    int n_xfam = 0;
    if (P->family_exclude && placement != XS_PLACEMENT_PRODUCT_PAGE) {
        const int n_trig = in->n_trig;
        for (int i = 0; i < n_trig + (p ? p->n_cart : 0); i++) {
            uint64_t f = 0;
            if ((err = family_of(s, i < n_trig ? in->trig[i].item : p->cart[i - n_trig].item, &f,
                                 errstr, errstr_size)) != XS_OK)
                return err;
            if (f && !family_in(xfam, n_xfam, f))
                xfam[n_xfam++] = f;
        }
    }

    /* Neighbours: the items' lists (built by the item stage with the
     * learning parameters), or, for an arm that ranks differently and in
     * reference mode, every sketch entry ranked now (xs_item_stage_rank). */
    const xs_item_t *cis[XS_CTX_MAX];
    size_t bound = 0;
    if (!P->popularity_only) {
        for (int c = 0; c < n_use; c++) {
            if ((err = v->item(v->opaque, ctx[c].item, &cis[c], errstr, errstr_size)) != XS_OK)
                return err;
            if (!cis[c])
                continue;
            for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
                int n = 0;
                if (lists)
                    xs_sketch_top(cis[c], (xs_class_t)cls, &n);
                else
                    n = v->entries(v->opaque, cis[c], (xs_class_t)cls);
                bound += (size_t)n;
            }
        }
    }
    if ((err = cand_begin(s, bound + (size_t)s->tr->n + 1)) != XS_OK)
        return err;
    for (int c = 0; c < n_use && !P->popularity_only; c++) {
        const xs_item_t *ci = cis[c];
        if (!ci)
            continue;
        if (c + 1 < n_use && cis[c + 1]) { /* start loading the next item's lists */
            for (int q = 0; q < 8; q++) {
                __builtin_prefetch(&cis[c + 1]->top_bought[q * 4]);
                __builtin_prefetch(&cis[c + 1]->top_viewed[q * 4]);
            }
        }
        for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
            double cw = ctx[c].w * (cls == XS_CLASS_VIEWED ? P->viewed_weight : 1.0);
            if (cw <= 0)
                continue;
            if (lists) {
                int nt = 0;
                const xs_top_t *t = xs_sketch_top(ci, (xs_class_t)cls, &nt);
                double max_sim = 0;
                if (P->normalize)
                    for (int k = 0; k < nt; k++)
                        max_sim = t[k].sim > max_sim ? t[k].sim : max_sim;
                double scale = max_sim > 0 ? cw / max_sim : cw;
                for (int k = 0; k < nt; k++) {
                    if (k + 8 < nt)
                        __builtin_prefetch(&t[k + 8]); /* a few lines ahead */
                    cand_add(s, t[k].item, scale * t[k].sim, cls, c);
                }
                continue;
            }
            const xs_scored_t *sims = NULL;
            int n_sim = 0;
            if ((err = v->rank(v->opaque, ci, (xs_class_t)cls, P, &sims, &n_sim, errstr,
                               errstr_size)) != XS_OK)
                return err;
            double max_sim = 0;
            for (int k = 0; k < n_sim; k++)
                if (sims[k].sim > max_sim)
                    max_sim = sims[k].sim;
            double scale = P->normalize && max_sim > 0 ? cw / max_sim : cw;
            for (int k = 0; k < n_sim; k++)
                cand_add(s, sims[k].item, scale * sims[k].sim, cls, c);
        }
    }

    /* Popularity prior: the decayed best-sellers join the candidates with
     * popularity_prior x odds^2 x (their weight / the best-seller's) x the
     * best co-occurrence score. odds = s / (1 - s), s the share of the ten
     * best-sellers in the trending summary's total (SpaceSaving: the counts
     * sum to the decayed stream): how often a shopper's next item is a top
     * seller, measured by the engine on its own stream. Concentrated demand
     * (supermarket baskets, s ~ 0.33) gives the prior weight; a long tail
     * (s ~ 0.08) almost none. On the scale of the evidence whatever the
     * similarity measure, and only where there is evidence (a list without
     * any is the trending backfill's), once the summary is full (128 items
     * sold: before that, ten are no head). Measured: docs/EVALUATION.md. */
    if (P->popularity_prior > 0 && s->n_cands > 0 && s->tr->n == XS_TREND_CAP) {
        double best = 0, top = 0, all = 0, head = 0;
        for (size_t i = 0; i < s->n_cands; i++)
            best = s->cands[i].score > best ? s->cands[i].score : best;
        const int *order = trend_sort(s);
        for (int i = 0; i < s->tr->n; i++) {
            all += s->tr->v[order[i]].weight;
            head += i < 10 ? s->tr->v[order[i]].weight : 0;
        }
        top = s->tr->v[order[0]].weight;
        double share = all > 0 ? head / all : 0;
        double odds = share < 0.5 ? share / (1 - share) : 1.0;
        best *= odds * odds;
        for (int i = 0; i < s->tr->n && best > 0 && top > 0; i++) {
            candidate_t *cd = cand_get(s, s->tr->v[i].item);
            double w = P->popularity_prior * best * s->tr->v[i].weight / top;
            cd->score += w;
            cd->prior += w;
        }
    }

    /* Category boost and rules, best raw scores first. The boost multiplies
     * a score by at most 1 + category_boost, so once the best remaining raw
     * score, boosted at most, falls below the last pick of the capped list
     * built so far, no remaining candidate can enter it: the rules and the
     * boost (an item lookup each) run for the few candidates that can. */
    double max_cat = 0;
    if (p)
        for (int i = 0; i < p->n_cats; i++) {
            double a = xs_profile_decay(p->cats[i].score, p->cats[i].ts, now, hl);
            if (a > max_cat)
                max_cat = a;
        }
    double bmax = max_cat > 0 && P->category_boost > 0 ? P->category_boost : 0;
    double reach = (1.0 + bmax) * (1.0 + 1e-9);
    if (s->rules && s->rules->boost > 1)
        reach *= s->rules->boost; /* a boosted candidate may overtake the picks */
    candidate_t *cand = s->cands;
    heap_ent_t *buf = s->heap, prev = {0, 0, 0};
    const size_t batch = (size_t)n_want + 8; /* <= 28 <= cap_cands */
    uint32_t *fin = s->fin;
    size_t n_fin = 0, n_buf = 0, at = 0;
    bool have_prev = false;
    double last = -1; /* final score of the n_want-th pick, -1 while fewer */
    for (;;) {
        if (at == n_buf) {
            /* the next `batch` candidates by raw score, after the previous
             * batch: one pass each (most lists need one batch) */
            if (have_prev && n_buf < batch)
                break; /* the last batch took all that remained */
            n_buf = at = 0;
            for (size_t i = 0; i < s->n_cands; i++) {
                heap_ent_t x = {cand[i].score, cand[i].item, (uint32_t)i};
                if (have_prev && !heap_before(&prev, &x))
                    continue;
                if (n_buf == batch && !heap_before(&x, &buf[batch - 1]))
                    continue;
                size_t k = n_buf < batch ? n_buf++ : batch - 1;
                for (; k > 0 && heap_before(&x, &buf[k - 1]); k--)
                    buf[k] = buf[k - 1];
                buf[k] = x;
            }
            if (!n_buf)
                break;
            prev = buf[n_buf - 1];
            have_prev = true;
        }
        candidate_t *cd = &cand[buf[at++].pos];
        if (last >= 0 && cd->score * reach < last)
            break;
        const xs_item_t *st = NULL;
        if ((err = v->item(v->opaque, cd->item, &st, errstr, errstr_size)) != XS_OK)
            return err;
        if (!allowed(P, p, ctx, n_ctx, cd->item, st, now))
            continue;
        bool pass = true;
        double rule_factor = 1.0;
        if ((err = candidate_check(s, cd->item, st, &pass, &rule_factor, &cd->family, errstr,
                                   errstr_size)) != XS_OK)
            return err;
        if (!pass)
            continue;
        if (family_in(xfam, n_xfam, cd->family))
            continue;
        cd->final = cd->score;
        if (st && st->category && max_cat > 0 && P->category_boost > 0) {
            for (int k = 0; k < p->n_cats; k++)
                if (p->cats[k].cat == st->category)
                    cd->final *=
                        1.0 + P->category_boost *
                                  xs_profile_decay(p->cats[k].score, p->cats[k].ts, now, hl) /
                                  max_cat;
        }
        cd->final *= rule_factor;
        cd->st = st;
        /* insert into fin, ordered by final score */
        size_t k = n_fin++;
        for (; k > 0 && final_before(cd, &cand[fin[k - 1]]); k--)
            fin[k] = fin[k - 1];
        fin[k] = (uint32_t)(cd - cand);
        /* the capped list of what is final so far */
        uint64_t cats[XS_LIST_MAX_ITEMS], fams[XS_LIST_MAX_ITEMS];
        int picks = 0;
        last = -1;
        for (size_t i = 0; i < n_fin && picks < n_want; i++) {
            const candidate_t *f = &cand[fin[i]];
            uint64_t cat = f->st ? f->st->category : 0;
            if (category_full(P, cats, picks, cat) || family_full(P, fams, picks, f->family))
                continue;
            fams[picks] = f->family;
            cats[picks++] = cat;
            if (picks == n_want)
                last = f->final;
        }
    }

    /* Pick with the category and family caps. */
    uint64_t cats[XS_LIST_MAX_ITEMS], fams[XS_LIST_MAX_ITEMS];
    int n_out = 0;
    for (size_t i = 0; i < n_fin && n_out < n_want; i++) {
        candidate_t *cd = &cand[fin[i]];
        const xs_item_t *st = cd->st; /* looked up by the rules above */
        uint64_t cat = st ? st->category : 0;
        if (category_full(P, cats, n_out, cat) || family_full(P, fams, n_out, cd->family))
            continue;
        fams[n_out] = cd->family;
        xs_rec_t *r = &list->items[n_out];
        if ((err = name_of(s, cd->item, &r->item_id, errstr, errstr_size)) != XS_OK)
            return err;
        list->n_items = ++n_out;
        cats[n_out - 1] = cat;
        r->score = cd->final;
        r->source = cd->prior * 2 > cd->score ? XS_SOURCE_TRENDING
                    : cd->bv >= 0             ? XS_SOURCE_BOUGHT_TOGETHER
                                              : XS_SOURCE_VIEWED_TOGETHER;
        because_sort(cd);
        for (int k = 0; k < cd->n_because; k++) {
            if ((err =
                     name_of(s, ctx[cd->because[k]].item, &r->because_of[k], errstr, errstr_size)))
                return err;
            r->n_because = k + 1;
        }
    }
    s->n_cands = 0;

    /* Trending backfill (cold start, thin signal, control arm). */
    if (n_out < n_want && (P->trending_backfill || P->popularity_only) && s->tr->n > 0) {
        const int *order = trend_sort(s);
        double top = s->tr->v[order[0]].weight;
        for (int i = 0; i < s->tr->n && n_out < n_want; i++) {
            const xs_trend_entry_t *t = &s->tr->v[order[i]];
            bool dup = false;
            char *tmp = NULL;
            const xs_item_t *st = NULL;
            if ((err = v->item(v->opaque, t->item, &st, errstr, errstr_size)) != XS_OK)
                return err;
            if (!allowed(P, p, ctx, n_ctx, t->item, st, now))
                continue;
            bool pass = true;
            double rule_factor = 1.0;
            uint64_t fam = 0;
            if ((err = candidate_check(s, t->item, st, &pass, &rule_factor, &fam, errstr,
                                       errstr_size)) != XS_OK)
                return err;
            if (!pass)
                continue;
            if (family_in(xfam, n_xfam, fam))
                continue;
            if ((err = name_of(s, t->item, &tmp, errstr, errstr_size)) != XS_OK)
                return err;
            for (int k = 0; k < n_out && !dup; k++)
                dup = strcmp(list->items[k].item_id, tmp) == 0;
            uint64_t cat = st ? st->category : 0;
            dup = dup || category_full(P, cats, n_out, cat) || family_full(P, fams, n_out, fam);
            if (dup) {
                free(tmp);
                continue;
            }
            xs_rec_t *r = &list->items[n_out];
            r->item_id = tmp;
            r->score = top > 0 ? t->weight / top : 0;
            r->source = XS_SOURCE_TRENDING;
            cats[n_out] = cat;
            fams[n_out] = fam;
            list->n_items = ++n_out;
        }
    }
    list->placement = placement;
    return XS_OK;
}

xs_err_t xs_scorer_score(xs_scorer_t *s, const xs_scorer_view_t *v, const xs_score_in_t *in,
                         xs_list_t *list, char *errstr, size_t errstr_size)
{
    s->v = v;
    s->rules = in->rules;
    s->tr = in->trending;
    s->list_time = in->list_time;
    xs_err_t err = score(s, in, list, errstr, errstr_size);
    s->v = NULL;
    s->rules = NULL;
    s->tr = NULL;
    return err;
}
