/*
 * eval.c — prequential offline evaluation on the worker's path (see
 * include/xsell/eval.h for the definitions).
 *
 * Per event: the engine processes it exactly as the worker does; unless it
 * was a duplicate (dropped by the engine), the event is then scored against
 * the lists published before it, applied to the evaluation's own exact state
 * (cart, purchases, transactions), and the list it caused, if any, is checked
 * against that state and kept as the user's last list for its placement.
 * Everything is keyed by 64-bit hashes; items get a dense index for the
 * end-of-replay reports.
 */
#include "xsell/eval.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "xsell/hash.h"

typedef struct idx_vec {
    uint32_t *v;
    size_t n, cap;
} idx_vec_t;

typedef struct eval_user {
    uint32_t basket; /* purchases so far + 1 */
    int64_t now;     /* latest event time (the engine's clock for the user) */
    uint32_t list_basket[XS_PLACEMENT__COUNT]; /* basket of the last list; 0: none */
    xs_published_t *last[XS_PLACEMENT__COUNT];
    idx_vec_t basket_items; /* added or bought since the last purchase */
    idx_vec_t viewed;       /* every item viewed (click-only transactions) */
} eval_user_t;

typedef struct point {
    uint32_t trigger; /* item index + 1 of the list's trigger item, 0: none */
    uint8_t rank;     /* 0: miss */
    uint8_t kind;     /* 0 cart, 1 view */
} point_t;

typedef struct item_rec {
    char *id;
    uint32_t interactions; /* ADD lines + PRODUCT_VIEWs */
    uint32_t transactions;
    bool repurchasable;
    bool seen; /* named by a cart line or a click */
} item_rec_t;

typedef struct eval_ctx {
    xs_engine_t *engine;
    int k;
    double rebuy_ms;
    xs_eval_result_t *res;
    xs_hmap_t users;    /* user hash -> eval_user_t* */
    xs_hmap_t item_idx; /* item hash -> index + 1 */
    item_rec_t *items;
    size_t n_items, cap_items;
    xs_hmap_t cart;        /* pair(user, item) -> basket << 32 | quantity */
    xs_hmap_t bought;      /* pair(user, item) -> purchase time + 1 */
    xs_hmap_t in_tx;       /* pair(user, item) -> basket (dedup of basket_items) */
    xs_hmap_t viewed;      /* pair(user, item) -> 1 */
    xs_hmap_t recommended; /* item hash -> 1 */
    point_t *points;
    size_t n_points, cap_points;
    uint32_t *tx; /* closed transactions: item indices, each ended by UINT32_MAX */
    size_t n_tx, cap_tx;
    uint64_t n_transactions;
    char *errstr;
    size_t errstr_size;
} eval_ctx_t;

#define TX_END UINT32_MAX

static xs_err_t grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return XS_OK;
    size_t ncap = *cap ? *cap * 2 : 64;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*arr, ncap * elem);
    if (!p)
        return XS_ERR_NOMEM;
    *arr = p;
    *cap = ncap;
    return XS_OK;
}

static xs_err_t vec_push(idx_vec_t *v, uint32_t x)
{
    xs_err_t err = grow((void **)&v->v, &v->cap, v->n + 1, sizeof(*v->v));
    if (!err)
        v->v[v->n++] = x;
    return err;
}

/* A well-mixed non-zero key for (user, item). */
static uint64_t pair_key(uint64_t u, uint64_t i)
{
    uint64_t b[2] = {u, i};
    uint64_t h = xs_hash(b, sizeof(b));
    return h ? h : 1;
}

static xs_err_t mark(xs_hmap_t *m, uint64_t h)
{
    return h && !xs_hmap_get(m, h) ? xs_hmap_put(m, h, (void *)1) : XS_OK;
}

/* The dense index of an item (created on first sight). */
static xs_err_t item_of(eval_ctx_t *c, const char *id, uint32_t *idx)
{
    uint64_t h = xs_hash_str(id);
    uintptr_t v = (uintptr_t)xs_hmap_get(&c->item_idx, h);
    if (v) {
        *idx = (uint32_t)(v - 1);
        return XS_OK;
    }
    xs_err_t err = grow((void **)&c->items, &c->cap_items, c->n_items + 1, sizeof(*c->items));
    if (err)
        return err;
    item_rec_t *r = &c->items[c->n_items];
    memset(r, 0, sizeof(*r));
    if (!(r->id = xs_str_dup(id)))
        return XS_ERR_NOMEM;
    if ((err = xs_hmap_put(&c->item_idx, h, (void *)(uintptr_t)(c->n_items + 1))) != XS_OK) {
        free(r->id);
        return err;
    }
    *idx = (uint32_t)c->n_items++;
    return XS_OK;
}

static xs_err_t user_of(eval_ctx_t *c, uint64_t uh, eval_user_t **out)
{
    eval_user_t *u = xs_hmap_get(&c->users, uh);
    if (!u) {
        if (!(u = calloc(1, sizeof(*u))))
            return XS_ERR_NOMEM;
        u->basket = 1;
        xs_err_t err = xs_hmap_put(&c->users, uh, u);
        if (err) {
            free(u);
            return err;
        }
    }
    *out = u;
    return XS_OK;
}

static void rate_add(xs_eval_rate_t *r, int rank)
{
    r->points++;
    if (rank > 0) {
        r->hits++;
        r->mrr_sum += 1.0 / rank;
    }
}

/* Scores one point of `kind` against the user's last list of `pl`. */
static xs_err_t score_point(eval_ctx_t *c, const eval_user_t *u, xs_placement_t pl,
                            const char *item, int kind)
{
    const xs_published_t *p = u->last[pl];
    if (!p || u->list_basket[pl] != u->basket)
        return XS_OK;
    int rank = xs_engine_published_rank(p, item, c->k);
    rate_add(kind == 0 ? &c->res->cart : &c->res->view, rank);
    xs_err_t err = grow((void **)&c->points, &c->cap_points, c->n_points + 1, sizeof(*c->points));
    if (err)
        return err;
    uint32_t trig = 0;
    uintptr_t v = (uintptr_t)xs_hmap_get(&c->item_idx, p->trigger);
    if (p->trigger && v)
        trig = (uint32_t)v;
    c->points[c->n_points++] = (point_t){trig, (uint8_t)rank, (uint8_t)kind};
    int n = c->k < p->n_items ? c->k : p->n_items;
    for (int i = 0; i < n && !err; i++)
        err = mark(&c->recommended, p->items[i]);
    return err;
}

/* Adds item idx to the user's open transaction (once). */
static xs_err_t tx_open_add(eval_ctx_t *c, eval_user_t *u, uint64_t uh, uint64_t ih, uint32_t idx)
{
    uint64_t key = pair_key(uh, ih);
    if ((uintptr_t)xs_hmap_get(&c->in_tx, key) == u->basket)
        return XS_OK;
    xs_err_t err = xs_hmap_put(&c->in_tx, key, (void *)(uintptr_t)u->basket);
    if (!err)
        err = vec_push(&u->basket_items, idx);
    return err;
}

static xs_err_t tx_close(eval_ctx_t *c, const idx_vec_t *v)
{
    if (v->n == 0)
        return XS_OK;
    xs_err_t err = grow((void **)&c->tx, &c->cap_tx, c->n_tx + v->n + 1, sizeof(*c->tx));
    if (err)
        return err;
    memcpy(c->tx + c->n_tx, v->v, v->n * sizeof(*v->v));
    c->n_tx += v->n;
    c->tx[c->n_tx++] = TX_END;
    c->n_transactions++;
    return XS_OK;
}

/* Applies a cart or click event to the exact state, scoring its points first. */
static xs_err_t observe(eval_ctx_t *c, const xs_event_t *ev, eval_user_t *u, uint64_t uh)
{
    xs_err_t err = XS_OK;
    if (ev->ts > u->now)
        u->now = ev->ts;
    if (ev->kind == XS_KIND_CLICK) {
        if (!ev->item_id || !*ev->item_id || ev->type != XS_CLICK_PRODUCT_VIEW)
            return XS_OK;
        uint32_t idx = 0;
        if ((err = item_of(c, ev->item_id, &idx)) != XS_OK)
            return err;
        if ((err = score_point(c, u, XS_PLACEMENT_PRODUCT_PAGE, ev->item_id, 1)) != XS_OK)
            return err;
        c->items[idx].interactions++;
        c->items[idx].seen = true;
        uint64_t key = pair_key(uh, xs_hash_str(ev->item_id));
        if (!xs_hmap_get(&c->viewed, key)) {
            if ((err = xs_hmap_put(&c->viewed, key, (void *)1)) ||
                (err = vec_push(&u->viewed, idx)))
                return err;
        }
        return XS_OK;
    }
    for (size_t i = 0; i < ev->n_lines && !err; i++) {
        const xs_line_t *l = &ev->lines[i];
        uint64_t ih = xs_hash_str(l->item_id);
        if (!ih)
            continue;
        uint32_t idx = 0;
        if ((err = item_of(c, l->item_id, &idx)) != XS_OK)
            return err;
        c->items[idx].seen = true;
        uint64_t key = pair_key(uh, ih);
        uintptr_t cv = (uintptr_t)xs_hmap_get(&c->cart, key);
        int64_t qty = cv && (uint32_t)(cv >> 32) == u->basket ? (int64_t)(cv & 0xffffffffu) : 0;
        switch ((xs_cart_type_t)ev->type) {
        case XS_CART_ADD:
            if ((err = score_point(c, u, XS_PLACEMENT_CART, l->item_id, 0)) != XS_OK)
                return err;
            for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++)
                if (u->last[pl])
                    rate_add(&c->res->live[pl],
                             xs_engine_published_rank(u->last[pl], l->item_id, c->k));
            c->items[idx].interactions++;
            qty += l->quantity > 0 ? l->quantity : 1;
            if (qty > INT32_MAX)
                qty = INT32_MAX;
            err =
                xs_hmap_put(&c->cart, key, (void *)(((uintptr_t)u->basket << 32) | (uintptr_t)qty));
            if (!err)
                err = tx_open_add(c, u, uh, ih, idx);
            break;
        case XS_CART_REMOVE:
            qty -= l->quantity > 0 ? l->quantity : qty;
            if (qty <= 0)
                xs_hmap_del(&c->cart, key);
            else
                err = xs_hmap_put(&c->cart, key,
                                  (void *)(((uintptr_t)u->basket << 32) | (uintptr_t)qty));
            break;
        case XS_CART_PURCHASE:
            err = xs_hmap_put(&c->bought, key, (void *)(uintptr_t)(u->now + 1));
            if (!err)
                err = tx_open_add(c, u, uh, ih, idx);
            break;
        default:
            break;
        }
    }
    if (!err && ev->type == XS_CART_PURCHASE) {
        err = tx_close(c, &u->basket_items);
        u->basket_items.n = 0;
        u->basket++; /* the cart is empty: every entry of an older basket is stale */
    }
    return err;
}

/* Counts the published list's rule violations against the exact state. */
static void check_list(eval_ctx_t *c, const xs_list_t *l, const eval_user_t *u, uint64_t uh)
{
    xs_eval_violations_t *v = &c->res->viol;
    int pl = l->placement;
    bool in_cart = false, rebuy = false;
    v->lists[pl]++;
    for (int i = 0; i < l->n_items; i++) {
        uint64_t ih = xs_hash_str(l->items[i].item_id);
        uint64_t key = pair_key(uh, ih);
        uintptr_t cv = (uintptr_t)xs_hmap_get(&c->cart, key);
        v->items[pl]++;
        if (cv && (uint32_t)(cv >> 32) == u->basket && (cv & 0xffffffffu) > 0) {
            v->in_cart_items[pl]++;
            in_cart = true;
        }
        uintptr_t bt = (uintptr_t)xs_hmap_get(&c->bought, key);
        uintptr_t ix = (uintptr_t)xs_hmap_get(&c->item_idx, ih);
        bool repurchasable = ix && c->items[ix - 1].repurchasable;
        if (bt && !repurchasable && u->now - (int64_t)(bt - 1) < (int64_t)c->rebuy_ms) {
            v->rebuy_items[pl]++;
            rebuy = true;
        }
    }
    v->in_cart_lists[pl] += in_cart;
    v->rebuy_lists[pl] += rebuy;
}

static xs_err_t on_event(void *opaque, const xs_event_t *ev)
{
    eval_ctx_t *c = opaque;
    xs_err_t err = XS_OK;
    xs_engine_stats_t before, after;
    xs_list_t list;
    bool has = false;
    c->res->events++;
    xs_engine_stats(c->engine, &before);
    xs_event_list_init(&list);
    err = xs_engine_process(c->engine, 0, ev, &list, &has, c->errstr, c->errstr_size);
    if (err)
        goto out;
    xs_engine_stats(c->engine, &after);
    if (after.duplicates != before.duplicates)
        goto out; /* the engine dropped it: so does the evaluation */
    if (ev->kind == XS_KIND_ITEM) {
        uint32_t idx = 0;
        if ((err = item_of(c, ev->item_id, &idx)) == XS_OK)
            c->items[idx].repurchasable = ev->repurchasable;
        goto out;
    }
    uint64_t uh = xs_hash_str(ev->user_id);
    eval_user_t *u = NULL;
    if (!uh)
        goto out;
    if ((err = user_of(c, uh, &u)) != XS_OK || (err = observe(c, ev, u, uh)) != XS_OK)
        goto out;
    if (has) {
        int pl = list.placement;
        check_list(c, &list, u, uh);
        if (!u->last[pl] && !(u->last[pl] = malloc(sizeof(*u->last[pl])))) {
            err = XS_ERR_NOMEM;
            goto out;
        }
        xs_engine_published_note(u->last[pl], &list);
        u->list_basket[pl] = u->basket;
    }
out:
    xs_event_list_clear(&list);
    return err;
}

/* ---- end-of-replay reports -------------------------------------------------------------- */

/* An item in a ranking: by count descending, then id (bytewise). */
typedef struct rank_ent {
    uint32_t count;
    uint32_t item;
    const char *id;
    double llr; /* the exact reference's order comes first when set */
} rank_ent_t;

static int cmp_rank(const void *a, const void *b)
{
    const rank_ent_t *x = a, *y = b;
    if (x->llr != y->llr)
        return x->llr > y->llr ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->id, y->id);
}

static xs_err_t popularity_deciles(eval_ctx_t *c)
{
    xs_eval_result_t *r = c->res;
    rank_ent_t *order = NULL;
    uint32_t *decile = NULL;
    size_t n = 0;
    if (c->n_items == 0)
        return XS_OK;
    order = malloc(c->n_items * sizeof(*order));
    decile = malloc(c->n_items * sizeof(*decile));
    if (!order || !decile) {
        free(order);
        free(decile);
        return XS_ERR_NOMEM;
    }
    for (size_t i = 0; i < c->n_items; i++) {
        decile[i] = UINT32_MAX;
        if (c->items[i].interactions)
            order[n++] = (rank_ent_t){c->items[i].interactions, (uint32_t)i, c->items[i].id, 0};
    }
    qsort(order, n, sizeof(*order), cmp_rank);
    for (size_t i = 0; i < n; i++) {
        uint32_t d = (uint32_t)(i * XS_EVAL_DECILES / n);
        xs_eval_decile_t *D = &r->deciles[d];
        uint32_t x = order[i].count;
        decile[order[i].item] = d;
        if (D->items++ == 0)
            D->interactions_max = x;
        D->interactions_min = x;
    }
    int kind = r->placement == XS_PLACEMENT_CART ? 0 : 1;
    for (size_t i = 0; i < c->n_points; i++) {
        const point_t *p = &c->points[i];
        if (p->kind != kind || !p->trigger || decile[p->trigger - 1] == UINT32_MAX)
            continue;
        rate_add(&r->deciles[decile[p->trigger - 1]].rate, p->rank);
    }
    free(order);
    free(decile);
    return XS_OK;
}

/* The most popular items' lists against their exact top k by LLR. */
static xs_err_t top_items(eval_ctx_t *c)
{
    xs_eval_result_t *r = c->res;
    xs_err_t err = XS_OK;
    size_t n = 0, n_top = 0;
    uint32_t *counts = NULL;
    int32_t *top_of = NULL;
    rank_ent_t *order = NULL, *ref = NULL;
    if (c->n_items == 0 || c->n_transactions == 0)
        return XS_OK;
    order = malloc(c->n_items * sizeof(*order));
    top_of = malloc(c->n_items * sizeof(*top_of));
    ref = malloc(c->n_items * sizeof(*ref));
    if (!order || !top_of || !ref) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < c->n_items; i++)
        c->items[i].transactions = 0;
    for (size_t i = 0; i < c->n_tx; i++)
        if (c->tx[i] != TX_END)
            c->items[c->tx[i]].transactions++;
    for (size_t i = 0; i < c->n_items; i++) {
        top_of[i] = -1;
        if (c->items[i].transactions)
            order[n++] = (rank_ent_t){c->items[i].transactions, (uint32_t)i, c->items[i].id, 0};
    }
    qsort(order, n, sizeof(*order), cmp_rank);
    n_top = n < XS_EVAL_TOP_ITEMS ? n : XS_EVAL_TOP_ITEMS;
    for (size_t t = 0; t < n_top; t++)
        top_of[order[t].item] = (int32_t)t;
    counts = calloc(n_top * c->n_items, sizeof(*counts));
    if (!counts) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    /* exact co-occurrence of each top item with every item, one pass */
    for (size_t s = 0; s < c->n_tx;) {
        size_t e = s;
        while (c->tx[e] != TX_END)
            e++;
        for (size_t a = s; a < e; a++) {
            int32_t t = top_of[c->tx[a]];
            if (t < 0)
                continue;
            for (size_t b = s; b < e; b++)
                if (b != a)
                    counts[(size_t)t * c->n_items + c->tx[b]]++;
        }
        s = e + 1;
    }
    double N = (double)c->n_transactions;
    r->transactions = c->n_transactions;
    for (size_t t = 0; t < n_top; t++) {
        uint32_t it = order[t].item;
        double n_i = c->items[it].transactions;
        size_t m = 0;
        for (size_t j = 0; j < c->n_items; j++) {
            uint32_t k11 = counts[t * c->n_items + j];
            if (!k11 || j == it)
                continue;
            double n_j = c->items[j].transactions;
            if ((double)k11 * N <= n_i * n_j)
                continue; /* not positively associated */
            double llr = xs_sketch_llr(k11, n_i - k11, n_j - k11, N - n_i - n_j + k11);
            ref[m++] = (rank_ent_t){k11, (uint32_t)j, c->items[j].id, llr};
        }
        qsort(ref, m, sizeof(*ref), cmp_rank);
        xs_eval_top_item_t *T = &r->top[t];
        snprintf(T->item_id, sizeof(T->item_id), "%s", c->items[it].id);
        T->transactions = c->items[it].transactions;
        T->ref_len = (int)(m < (size_t)c->k ? m : (size_t)c->k);
        xs_neighbour_t *nb = NULL;
        int n_nb = 0;
        if ((err = xs_engine_item_list(c->engine, c->items[it].id, r->top_class, 1000, &nb, &n_nb,
                                       c->errstr, c->errstr_size)) != XS_OK)
            goto out;
        T->list_len = n_nb;
        for (int q = 0; q < n_nb && q < c->k; q++)
            for (int z = 0; z < T->ref_len; z++)
                if (strcmp(nb[q].item_id, ref[z].id) == 0) {
                    T->overlap++;
                    break;
                }
        xs_engine_neighbours_free(nb, n_nb);
    }
    r->n_top = (int)n_top;
out:
    free(order);
    free(top_of);
    free(ref);
    free(counts);
    return err;
}

xs_err_t xs_eval_run(const char *name, const xs_engine_opts_t *engine_opts, int k,
                     xs_dataset_format_t fmt, const char *const *paths, size_t n_paths,
                     const xs_dataset_opts_t *dopts, xs_eval_result_t *res, char *errstr,
                     size_t errstr_size)
{
    eval_ctx_t c = {0};
    struct timespec t0, t1;
    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", name);
    c.engine = xs_engine_new(engine_opts, errstr, errstr_size);
    if (!c.engine)
        return XS_ERR_INVALID;
    c.k = k > 0 && k <= XS_LIST_MAX_ITEMS ? k : XS_LIST_MAX_ITEMS;
    c.rebuy_ms = engine_opts->params.rebuy_days * 86400e3;
    c.res = res;
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    xs_err_t err =
        xs_dataset_read(fmt, paths, n_paths, dopts, on_event, &c, NULL, errstr, errstr_size);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    bool cart = res->cart.points > 0;
    const xs_eval_rate_t *h = cart ? &res->cart : &res->view;
    res->placement = cart ? XS_PLACEMENT_CART : XS_PLACEMENT_PRODUCT_PAGE;
    res->points = h->points;
    res->hits = h->hits;
    res->mrr_sum = h->mrr_sum;
    res->recommended_items = c.recommended.len;
    res->catalog_items = 0;
    for (size_t i = 0; i < c.n_items; i++)
        res->catalog_items += c.items[i].seen;
    if (!err)
        err = popularity_deciles(&c);
    if (!err && c.n_transactions == 0) {
        /* no purchase: a user's views are a transaction */
        for (size_t i = 0; i < c.users.cap && !err; i++)
            if (c.users.ents[i].key)
                err = tx_close(&c, &((eval_user_t *)c.users.ents[i].val)->viewed);
        res->top_class = XS_CLASS_VIEWED;
    } else {
        res->top_class = XS_CLASS_BOUGHT;
    }
    if (!err && !engine_opts->params.popularity_only)
        err = top_items(&c);
    if (!err)
        xs_engine_footprint(c.engine, &res->footprint);
    xs_engine_destroy(c.engine);
    for (size_t i = 0; i < c.users.cap; i++) {
        eval_user_t *u = c.users.ents[i].key ? c.users.ents[i].val : NULL;
        if (!u)
            continue;
        for (int p = 0; p < XS_PLACEMENT__COUNT; p++)
            free(u->last[p]);
        free(u->basket_items.v);
        free(u->viewed.v);
        free(u);
    }
    for (size_t i = 0; i < c.n_items; i++)
        free(c.items[i].id);
    free(c.items);
    free(c.points);
    free(c.tx);
    xs_hmap_free(&c.users);
    xs_hmap_free(&c.item_idx);
    xs_hmap_free(&c.cart);
    xs_hmap_free(&c.bought);
    xs_hmap_free(&c.in_tx);
    xs_hmap_free(&c.viewed);
    xs_hmap_free(&c.recommended);
    return err;
}

double xs_eval_rate_hit(const xs_eval_rate_t *r)
{
    return r->points ? (double)r->hits / r->points : 0;
}

double xs_eval_rate_mrr(const xs_eval_rate_t *r)
{
    return r->points ? r->mrr_sum / r->points : 0;
}

double xs_eval_hitrate(const xs_eval_result_t *r)
{
    return r->points ? (double)r->hits / r->points : 0;
}

double xs_eval_mrr(const xs_eval_result_t *r)
{
    return r->points ? r->mrr_sum / r->points : 0;
}

double xs_eval_coverage(const xs_eval_result_t *r)
{
    return r->catalog_items ? (double)r->recommended_items / r->catalog_items : 0;
}
