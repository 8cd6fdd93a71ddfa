/*
 * user_stage.c — profile in, profile out, plus a batch of pair deltas and
 * the context for scoring (include/xsell/stages.h).
 *
 * Co-occurrence counting (Schelter et al., "Scalable similarity-based
 * neighborhood methods with MapReduce" and the incremental variant): when a
 * user newly interacts with item j, or upgrades it from view to cart or
 * purchase, each item i among the user's most recent kmax interactions
 * inside the time window forms one pair (i, j), counted once per user and
 * class. The user-side cut (kmax) bounds the work per event; the item side
 * is bounded by the item stage's summaries.
 */
#include "xsell/stages.h"

#include <stdlib.h>
#include <string.h>

#include "xsell/hash.h"

#define W_VIEW 1.0f
#define W_CART 3.0f
#define W_PURCHASE 5.0f

struct xs_user_stage {
    const xs_params_t *P; /* the learning parameters (borrowed) */
    int64_t rebuy_ms;
    xs_pair_delta_t *deltas;
    size_t n_deltas, cap_deltas;
    uint64_t *sales; /* the items of the event's cart adds and purchases */
    size_t n_sales, cap_sales;
};

xs_user_stage_t *xs_user_stage_new(const xs_params_t *P, int64_t rebuy_ms)
{
    xs_user_stage_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->P = P;
    s->rebuy_ms = rebuy_ms;
    return s;
}

void xs_user_stage_destroy(xs_user_stage_t *s)
{
    if (!s)
        return;
    free(s->deltas);
    free(s->sales);
    free(s);
}

static xs_err_t push_delta(xs_user_stage_t *s, uint64_t a, uint64_t b, xs_class_t cls)
{
    if (s->n_deltas == s->cap_deltas) {
        size_t cap = s->cap_deltas ? s->cap_deltas * 2 : 256;
        xs_pair_delta_t *d = realloc(s->deltas, cap * sizeof(*d));
        if (!d)
            return XS_ERR_NOMEM;
        s->deltas = d;
        s->cap_deltas = cap;
    }
    s->deltas[s->n_deltas++] = (xs_pair_delta_t){a, b, (uint8_t)cls};
    return XS_OK;
}

static xs_err_t push_sale(xs_user_stage_t *s, uint64_t item)
{
    if (s->n_sales == s->cap_sales) {
        size_t cap = s->cap_sales ? s->cap_sales * 2 : 64;
        uint64_t *v = realloc(s->sales, cap * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        s->sales = v;
        s->cap_sales = cap;
    }
    s->sales[s->n_sales++] = item;
    return XS_OK;
}

/*
 * Applies one item interaction to the profile and emits pair deltas: the
 * window is computed before the touch, so j pairs with what came before it.
 */
static xs_err_t user_touch(xs_user_stage_t *s, xs_profile_t *p, uint64_t j, xs_signal_t sig,
                           float weight, int64_t now, xs_totals_t *totals)
{
    const xs_params_t *P = s->P;
    double hl = P->half_life_hours * 3600e3;
    int found = xs_profile_find(p, j);
    xs_signal_t before = found < 0 ? XS_SIG_NONE : (xs_signal_t)p->items[found].signal;
    bool pairs = before == XS_SIG_NONE || (before < XS_SIG_CART && sig >= XS_SIG_CART);
    /* The window (only when pairs are due): the kmax most recent other items
     * within the time window, most recent first (ties: smaller item first). */
    struct win_ent {
        int64_t ts;
        uint64_t item;
        uint8_t sig;
    } win[XS_PROFILE_MAX_ITEMS];
    int n_win = 0;
    if (pairs) {
        int64_t horizon = now - (int64_t)(P->window_hours * 3600e3);
        for (int i = 0; i < p->n_items; i++) {
            const xs_profile_item_t *it = &p->items[i];
            if (it->item == j || it->ts < horizon)
                continue;
            struct win_ent x = {it->ts, it->item, it->signal};
            int k = n_win++;
            for (; k > 0 &&
                   (x.ts > win[k - 1].ts || (x.ts == win[k - 1].ts && x.item < win[k - 1].item));
                 k--)
                win[k] = win[k - 1];
            win[k] = x;
        }
    }
    if (n_win > P->kmax)
        n_win = P->kmax;
    uint64_t w_items[XS_PROFILE_MAX_ITEMS];
    uint8_t w_sig[XS_PROFILE_MAX_ITEMS];
    for (int i = 0; i < n_win; i++) {
        w_items[i] = win[i].item;
        w_sig[i] = win[i].sig;
    }
    bool was_bought_user = p->flags & XS_PROFILE_F_BOUGHT;
    xs_signal_t prev = xs_profile_touch(p, j, sig, weight, now, hl, s->rebuy_ms);
    xs_err_t err = XS_OK;
    if (prev == XS_SIG_NONE) {
        err = push_delta(s, j, 0, XS_CLASS_VIEWED);
        for (int i = 0; i < n_win && !err; i++)
            err = push_delta(s, w_items[i], j, XS_CLASS_VIEWED);
    }
    if (!err && prev < XS_SIG_CART && sig >= XS_SIG_CART) {
        err = push_delta(s, j, 0, XS_CLASS_BOUGHT);
        for (int i = 0; i < n_win && !err; i++)
            if (w_sig[i] >= XS_SIG_CART)
                err = push_delta(s, w_items[i], j, XS_CLASS_BOUGHT);
        if (!was_bought_user) {
            totals->users_bought++;
            totals->dirty = true;
        }
    }
    return err;
}

static void ctx_add(xs_user_out_t *out, uint64_t item, double w)
{
    xs_scorer_ctx_add(out->ctx, &out->n_ctx, XS_CTX_MAX, item, w, false);
}

xs_err_t xs_user_stage_apply(xs_user_stage_t *s, xs_profile_t *p, const xs_event_t *ev,
                             const xs_params_t *SP, xs_totals_t *totals, xs_trending_t *trending,
                             xs_user_out_t *out)
{
    xs_err_t err = XS_OK;
    double hl = s->P->half_life_hours * 3600e3;
    memset(out, 0, sizeof(*out));
    out->placement = XS_PLACEMENT_CART;
    s->n_deltas = 0;
    s->n_sales = 0;
    if (ev->kind != XS_KIND_CLICK && ev->kind != XS_KIND_CART)
        return XS_ERR_INVALID;
    int64_t now = ev->ts > p->last_ts ? ev->ts : p->last_ts;
    p->last_ts = now;
    xs_profile_forget(p, s->rebuy_ms);
    if (p->n_events < UINT32_MAX)
        p->n_events++;

    if (ev->kind == XS_KIND_CLICK) {
        uint64_t cat = xs_hash_str(ev->category);
        if (cat)
            xs_profile_touch_cat(p, cat, W_VIEW, now, hl);
        if (ev->item_id &&
            (ev->type == XS_CLICK_PRODUCT_VIEW || ev->type == XS_CLICK_RECOMMENDATION_CLICK)) {
            uint64_t j = xs_hash_str(ev->item_id);
            if ((err = user_touch(s, p, j, XS_SIG_VIEW, W_VIEW, now, totals)))
                goto out;
            if (cat) {
                out->hint_item = j;
                out->hint_cat = cat;
            }
            ctx_add(out, j, SP->w_trigger);
            out->trigger = true;
            out->placement = XS_PLACEMENT_PRODUCT_PAGE;
        }
        goto out;
    }
    xs_signal_t sig = XS_SIG_CART;
    float w = W_CART;
    switch ((xs_cart_type_t)ev->type) {
    case XS_CART_ADD:
        out->placement = XS_PLACEMENT_CART;
        break;
    case XS_CART_REMOVE:
        out->placement = XS_PLACEMENT_CART;
        sig = XS_SIG_NONE;
        break;
    case XS_CART_CHECKOUT:
        out->placement = XS_PLACEMENT_CHECKOUT;
        break;
    case XS_CART_PURCHASE:
        out->placement = XS_PLACEMENT_POST_PURCHASE;
        sig = XS_SIG_PURCHASE;
        w = W_PURCHASE;
        break;
    default:
        return XS_ERR_INVALID;
    }
    for (size_t i = 0; i < ev->n_lines; i++) {
        const xs_line_t *l = &ev->lines[i];
        uint64_t j = xs_hash_str(l->item_id);
        if (!j)
            continue;
        if (ev->type == XS_CART_REMOVE) {
            xs_profile_cart_remove(p, j, l->quantity);
            continue;
        }
        if (ev->type == XS_CART_ADD) {
            /* The live quality signal: was the added item on the last
             * list shown to the user for each placement? */
            for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
                int has = xs_profile_last_list_has(p, pl, j);
                if (has < 0)
                    continue;
                out->opportunities[pl]++;
                out->hits[pl] += (uint32_t)has;
            }
            xs_profile_cart_add(p, j, l->quantity);
        }
        if ((err = user_touch(s, p, j, sig, w, now, totals)))
            goto out;
        if (ev->type == XS_CART_ADD || ev->type == XS_CART_PURCHASE) {
            if (trending)
                xs_trending_add(trending, j, now);
            if ((err = push_sale(s, j)))
                goto out;
        }
        if (ev->type != XS_CART_PURCHASE)
            ctx_add(out, j, SP->w_trigger);
    }
    if (ev->type == XS_CART_PURCHASE) {
        xs_profile_cart_clear(p);
        /* After a purchase the context is what was bought: complements of it. */
        for (size_t i = 0; i < ev->n_lines; i++)
            ctx_add(out, xs_hash_str(ev->lines[i].item_id), SP->w_trigger);
    }
    out->trigger = true;
out:
    out->deltas = s->deltas;
    out->n_deltas = s->n_deltas;
    out->sales = s->sales;
    out->n_sales = s->n_sales;
    return err;
}

void xs_user_stage_join(xs_user_stage_t *s, xs_profile_t *p, xs_profile_t *sp, xs_totals_t *totals)
{
    bool both_bought = (p->flags & sp->flags & XS_PROFILE_F_BOUGHT) != 0;
    xs_profile_merge(p, sp, s->P->half_life_hours * 3600e3, s->rebuy_ms);
    xs_profile_init(sp);
    if (totals->users_total)
        totals->users_total--;
    if (both_bought && totals->users_bought)
        totals->users_bought--;
    totals->dirty = true;
}
