/*
 * engine.c — the composition of the stages (include/xsell/stages.h) over a
 * bounded write-back cache. See include/xsell/engine.h for the design.
 *
 * What is here: the cache of user profiles, item records and names (with
 * the dirty lists, the snapshot and the LRU trim), the globals (totals and
 * trending, stored in meta "globals") and the order of the stages for one
 * event: the event's names, the user stage (lib/core/user_stage.c), the
 * item stage (lib/core/item_stage.c), the item stage's refresh of the lists
 * about to be read, the scorer (lib/core/scorer.c), the suppression of a
 * repeated list. Catalog updates and the read-only queries (recommend,
 * neighbours) are composed here too. The stages reach records only through
 * xs_item_access_t and xs_scorer_view_t, implemented below over the cache.
 *
 * Co-occurrence counting (Schelter et al., "Scalable similarity-based
 * neighborhood methods with MapReduce" and the incremental variant): when a
 * user newly interacts with item j, or upgrades it from view to cart or
 * purchase, each item i among the user's most recent kmax interactions
 * inside the time window forms one pair (i, j), counted once per user and
 * class. The user-side cut (kmax) bounds the work per event; the item side
 * is bounded by the fixed capacity of each summary (sketch.h: decaying
 * bucket entries, O(1) per pair), which plays the role of the fmax cut
 * (frequent items keep only their strongest neighbours, with counts that
 * are guaranteed lower bounds). The similarities' marginals are the pair
 * totals of the same sampled pairs (DESIGN.md, "Lessons measured").
 */
#include "xsell/engine.h"

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "delta_acc.h"
#include "hmap.h"
#include "wire.h"
#include "xsell/hash.h"
#include "xsell/records.h"
#include "xsell/stages.h"
#include "xsell/store_records.h"

#define NOSESS_SLOTS 4096 /* sessions known to have no profile (direct-mapped) */

typedef struct cached_user {
    uint64_t user;
    uint64_t tick;
    uint16_t partition;
    uint32_t dirty_ep; /* 0 clean; else the checkpoint epoch it turned dirty in */
    bool deleted;      /* joined into its user (a session's): flushed as a delete */
    xs_profile_t prof;
} cached_user_t;

typedef struct cached_item {
    uint64_t item;
    uint64_t tick;
    uint32_t dirty_ep;
    /* A `neighbours` record is stored for the item (it is written when
     * st.lists_changed, deleted when the lists became empty). */
    bool lists_stored;
    xs_item_t st;
    xs_hmap_t *exact; /* reference mode: per class, other item -> count */
} cached_item_t;

typedef struct cached_name {
    uint64_t h;
    uint64_t tick;
    uint32_t dirty_ep;
    char *id;
    char *title;
    uint64_t family; /* items: hash of ItemUpdate.family, 0 = none */
    double price;    /* items: ItemUpdate.price when has_price */
    bool has_price;
    int64_t avail_from, avail_until; /* items: the availability window, when has_... */
    bool has_from, has_until;
} cached_name_t;

typedef struct dirty_vec {
    void **v;
    size_t n, cap;
} dirty_vec_t;

enum { DIRTY_USERS, DIRTY_ITEMS, DIRTY_NAMES };

struct xs_engine {
    xs_params_t params;
    xs_experiment_t experiment;
    bool exact_pairs;
    xs_backend_t backend;
    bool has_backend;
    size_t cache_budget;
    char *model_name, *model_version;

    xs_hmap_t users, items, names;
    uint64_t tick;
    size_t cache_bytes;
    /* The dirty records of each map, so a checkpoint and the dirty-bytes
     * check cost O(dirty), not O(cache). A record is in its vector exactly
     * while it is dirty in the current epoch (dirty_ep == ep); when a
     * vector cannot grow, dirty_walk makes the next snapshot find the dirty
     * records by walking the maps. */
    dirty_vec_t dirty[3]; /* users, items, names */
    bool dirty_walk;
    uint32_t ep; /* the current checkpoint epoch, >= 1 */
    /* The snapshot in progress (xs_engine_snapshot_begin): the records dirty
     * in epoch snap_ep, handed to snap_put by xs_engine_snapshot_step() or,
     * when about to be read or changed first, by get_*(). */
    bool snap_active;
    uint32_t snap_ep;
    dirty_vec_t snap[3];
    size_t snap_at[3];
    xs_put_fn snap_put;
    void *snap_opaque;
    xs_buf_t snap_buf;

    /* globals (meta "globals"), passed to the stages that read or write them */
    xs_totals_t totals;
    xs_trending_t trending;

    /* the stages (their own scratch) and how they reach the cache */
    xs_user_stage_t *user_stage;
    xs_item_stage_t *item_stage;
    xs_scorer_t *scorer;
    xs_scorer_view_t view;
    xs_buf_t val;

    /* Map keys of session users known to have no profile, so an event with
     * both ids whose session never had one reads no store (join_session). A
     * slot is cleared when get_user() creates that user; all with the cache. */
    uint64_t *nosess;

    /* Deferred item side (opts.defer_items): per input partition, what its
     * events learnt since the last xs_engine_take_deltas(), pre-aggregated
     * (delta_acc.h); acc[p] NULL until partition p has some. */
    bool defer_items;
    xs_delta_acc_t **acc;
    size_t n_acc;
    xs_pair_delta_t *unit; /* xs_engine_apply_deltas: an entry as unit deltas */
    size_t cap_unit;

    xs_engine_stats_t st;
    int64_t rebuy_ms;         /* the longest rebuy window of the base and every arm */
    xs_add_outcome_t outcome; /* of the last xs_engine_process() */
    int64_t clock;            /* the latest event time processed (in memory) */
};

static void free_item(cached_item_t *c)
{
    if (c && c->exact) {
        for (int k = 0; k < XS_CLASS__COUNT; k++)
            xs_hmap_free(&c->exact[k]);
        free(c->exact);
    }
    free(c);
}

static const char *const cf_names[XS_CF__COUNT] = {"users", "items", "names", "meta", "neighbours"};

const char *xs_engine_cf_name(xs_cf_t cf)
{
    return (cf >= 0 && cf < XS_CF__COUNT) ? cf_names[cf] : "unknown";
}

void xs_engine_params_default(xs_params_t *p)
{
    memset(p, 0, sizeof(*p));
    p->half_life_hours = 24.0 * 30;
    p->window_hours = 24.0 * 30;
    p->kmax = 24;
    p->similarity = XS_SIM_LLR;
    p->llr_min = 3.84; /* chi-square 1 dof, p = 0.05 */
    p->min_support = 0;
    p->viewed_weight = 0.3;
    p->category_boost = 0.2;
    p->popularity_prior = 4.0;
    p->w_trigger = 1.0;
    p->w_cart = 0.8;
    p->w_purchase = 0.5;
    p->w_view = 0.3;
    p->max_context = 12;
    p->list_len[XS_PLACEMENT_PRODUCT_PAGE] = 4;
    p->list_len[XS_PLACEMENT_CART] = 6;
    p->list_len[XS_PLACEMENT_CHECKOUT] = 3;
    p->list_len[XS_PLACEMENT_POST_PURCHASE] = 6;
    p->category_cap = 2;
    p->family_cap = 1;
    p->family_exclude = true;
    p->rebuy_days = 30;
    p->suppress_minutes = 10;
    p->trending_backfill = true;
    p->popularity_only = false;
}

int xs_engine_experiment_arm(const xs_experiment_t *x, const char *user_id)
{
    if (!x || x->n_arms <= 0)
        return 0;
    xs_buf_t b = {0};
    xs_buf_append_str(&b, x->salt);
    xs_buf_append_u8(&b, 0);
    xs_buf_append_str(&b, user_id ? user_id : "");
    uint64_t h = b.data ? xs_hash(b.data, b.len) : 0;
    xs_buf_free(&b);
    double total = 0;
    for (int i = 0; i < x->n_arms; i++)
        total += x->arms[i].share > 0 ? x->arms[i].share : 0;
    if (total <= 0)
        return 0;
    double u = (double)(h >> 11) * 0x1.0p-53 * total, acc = 0;
    for (int i = 0; i < x->n_arms; i++) {
        acc += x->arms[i].share > 0 ? x->arms[i].share : 0;
        if (u < acc)
            return i;
    }
    return x->n_arms - 1;
}

void xs_engine_opts_default(xs_engine_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    xs_engine_params_default(&o->params);
    o->cache_bytes = (size_t)256 << 20;
}

size_t xs_engine_key_user(uint8_t out[10], uint16_t partition, uint64_t user)
{
    out[0] = (uint8_t)(partition >> 8);
    out[1] = (uint8_t)partition;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(user >> (56 - 8 * i));
    return 10;
}

size_t xs_engine_key_u64(uint8_t out[8], uint64_t h)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(h >> (56 - 8 * i));
    return 8;
}

static uint64_t user_map_key(uint16_t partition, uint64_t user)
{
    uint64_t k = user ^ ((uint64_t)partition * UINT64_C(0x9e3779b97f4a7c15));
    return k ? k : 1;
}

/* ---- globals ------------------------------------------------------------------ */

static xs_err_t encode_meta(const xs_engine_t *e, xs_buf_t *b)
{
    xs_globals_t g = {0};
    g.users_total = e->totals.users_total;
    g.users_bought = e->totals.users_bought;
    g.trend_ref = e->trending.ref;
    g.n_trend = e->trending.n;
    for (int i = 0; i < e->trending.n; i++) {
        g.trend_item[i] = e->trending.v[i].item;
        g.trend_weight[i] = e->trending.v[i].weight;
    }
    for (int c = 0; c < XS_CLASS__COUNT; c++)
        g.pairs_total[c] = e->totals.pairs_total[c];
    return xs_store_records_globals_encode(&g, b);
}

static xs_err_t decode_meta(xs_engine_t *e, const uint8_t *p, size_t len, char *errstr,
                            size_t errstr_size)
{
    xs_globals_t g;
    char why[160];
    xs_err_t err = xs_store_records_globals_decode(&g, p, len, why, sizeof(why));
    if (err) {
        xs_err_set(errstr, errstr_size, "meta/globals: %s", why);
        return err;
    }
    if (g.version < 2) {
        xs_err_set(errstr, errstr_size,
                   "meta/globals: format version %d has no pair totals (version 2 has); "
                   "rebuild the state from the input (--reset-state --yes --from-beginning)",
                   g.version);
        return XS_ERR_VERSION;
    }
    e->totals.users_total = g.users_total;
    e->totals.users_bought = g.users_bought;
    e->trending.ref = g.trend_ref;
    e->trending.n = g.n_trend;
    for (int i = 0; i < g.n_trend; i++) {
        e->trending.v[i].item = g.trend_item[i];
        e->trending.v[i].weight = g.trend_weight[i];
    }
    for (int c = 0; c < XS_CLASS__COUNT; c++)
        e->totals.pairs_total[c] = g.pairs_total[c];
    return XS_OK;
}

/* ---- cache ------------------------------------------------------------------------ */

static xs_err_t backend_get(xs_engine_t *e, xs_cf_t cf, const void *key, size_t klen, bool *found,
                            char *errstr, size_t errstr_size)
{
    *found = false;
    if (!e->has_backend)
        return XS_OK;
    xs_buf_reset(&e->val);
    e->st.cache_misses++;
    return e->backend.get(e->backend.opaque, cf, key, klen, &e->val, found, errstr, errstr_size);
}

static xs_err_t dirty_push(dirty_vec_t *d, void *rec)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 1024;
        void **v = realloc(d->v, cap * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = rec;
    return XS_OK;
}

/* The dirty epoch of a record of map m. */
static uint32_t dirty_ep_of(int m, const void *rec)
{
    return m == DIRTY_USERS   ? ((const cached_user_t *)rec)->dirty_ep
           : m == DIRTY_ITEMS ? ((const cached_item_t *)rec)->dirty_ep
                              : ((const cached_name_t *)rec)->dirty_ep;
}

/* Marks a record dirty in the current epoch; it joins its map's vector. A
 * record of the snapshot in progress was handed over when get_*() found it,
 * before anything could change it, so it is clean (0) or current here. */
static void mark_dirty(xs_engine_t *e, int map, uint32_t *ep, void *rec)
{
    if (*ep == e->ep)
        return;
    *ep = e->ep;
    if (dirty_push(&e->dirty[map], rec) != XS_OK)
        e->dirty_walk = true; /* the next snapshot finds it by walking the maps */
}

static void user_dirty(xs_engine_t *e, cached_user_t *u)
{
    mark_dirty(e, DIRTY_USERS, &u->dirty_ep, u);
}

static void item_dirty(xs_engine_t *e, cached_item_t *c)
{
    mark_dirty(e, DIRTY_ITEMS, &c->dirty_ep, c);
}

static void name_dirty(xs_engine_t *e, cached_name_t *n)
{
    mark_dirty(e, DIRTY_NAMES, &n->dirty_ep, n);
}

static xs_err_t flush_one(int m, void *rec, xs_put_fn put, void *opaque, xs_buf_t *b);

/* A record of the snapshot in progress goes to it before it is used: the
 * snapshot holds the value it had when the snapshot began. */
static inline xs_err_t snap_touch(xs_engine_t *e, int map, uint32_t ep, void *rec)
{
    if (!ep || ep == e->ep)
        return XS_OK;
    return flush_one(map, rec, e->snap_put, e->snap_opaque, &e->snap_buf);
}

static xs_err_t get_user(xs_engine_t *e, uint16_t partition, uint64_t user, bool create,
                         cached_user_t **out, bool *is_new, char *errstr, size_t errstr_size)
{
    uint64_t mk = user_map_key(partition, user);
    cached_user_t *u = xs_hmap_get(&e->users, mk);
    *out = NULL;
    if (is_new)
        *is_new = false;
    if (create && e->nosess && e->nosess[mk % NOSESS_SLOTS] == mk)
        e->nosess[mk % NOSESS_SLOTS] = 0; /* about to exist */
    if (u) {
        xs_err_t err = snap_touch(e, DIRTY_USERS, u->dirty_ep, u);
        if (err)
            return err;
        e->st.cache_hits++;
        u->tick = ++e->tick;
        if (u->deleted) { /* deleted in the store once flushed: absent */
            if (!create)
                return XS_OK;
            u->deleted = false;
            xs_profile_init(&u->prof);
            if (is_new)
                *is_new = true;
        }
        *out = u;
        return XS_OK;
    }
    uint8_t key[10];
    size_t klen = xs_engine_key_user(key, partition, user);
    bool found;
    xs_err_t err = backend_get(e, XS_CF_USERS, key, klen, &found, errstr, errstr_size);
    if (err)
        return err;
    if (!found && !create)
        return XS_OK;
    u = malloc(sizeof(*u));
    if (!u)
        return XS_ERR_NOMEM;
    u->user = user;
    u->partition = partition;
    u->tick = ++e->tick;
    u->dirty_ep = 0;
    u->deleted = false;
    if (found) {
        char why[128];
        err = xs_profile_decode(&u->prof, e->val.data, e->val.len, why, sizeof(why));
        if (err) {
            xs_err_set(errstr, errstr_size, "users/%u/%016llx: %s", partition,
                       (unsigned long long)user, why);
            free(u);
            return err;
        }
    } else {
        xs_profile_init(&u->prof);
        if (is_new)
            *is_new = true;
    }
    if ((err = xs_hmap_put(&e->users, mk, u)) != XS_OK) {
        free(u);
        return err;
    }
    e->cache_bytes += sizeof(*u);
    *out = u;
    return XS_OK;
}

/* The neighbour lists of an item whose record (version 5 on) holds its
 * summaries only: from `neighbours`, mapped back to summary positions. One
 * lookup of the item, so not a second cache miss. */
static xs_err_t load_lists(xs_engine_t *e, cached_item_t *c, const uint8_t *key, size_t klen,
                           char *errstr, size_t errstr_size)
{
    bool found = false;
    char why[128];
    xs_buf_reset(&e->val);
    xs_err_t err = e->backend.get(e->backend.opaque, XS_CF_NEIGHBOURS, key, klen, &e->val, &found,
                                  errstr, errstr_size);
    if (err || !found) /* none: empty lists */
        return err;
    c->lists_stored = true;
    xs_item_lists_t *l = malloc(sizeof(*l));
    if (!l)
        return XS_ERR_NOMEM;
    if ((err = xs_sketch_lists_decode(l, e->val.data, e->val.len, why, sizeof(why))) == XS_OK &&
        l->item != c->item) {
        xs_err_set(why, sizeof(why), "the record is item %016llx's", (unsigned long long)l->item);
        err = XS_ERR_DECODE;
    }
    if (err)
        xs_err_set(errstr, errstr_size, "neighbours/%016llx: %s", (unsigned long long)c->item, why);
    else
        xs_sketch_lists_apply(&c->st, l);
    free(l);
    return err;
}

static xs_err_t get_item(xs_engine_t *e, uint64_t item, bool create, cached_item_t **out,
                         char *errstr, size_t errstr_size)
{
    cached_item_t *c = xs_hmap_get(&e->items, item);
    *out = NULL;
    if (c) {
        xs_err_t err = snap_touch(e, DIRTY_ITEMS, c->dirty_ep, c);
        if (err)
            return err;
        e->st.cache_hits++;
        c->tick = ++e->tick;
        *out = c;
        return XS_OK;
    }
    uint8_t key[8];
    size_t klen = xs_engine_key_u64(key, item);
    bool found;
    xs_err_t err = backend_get(e, XS_CF_ITEMS, key, klen, &found, errstr, errstr_size);
    if (err)
        return err;
    if (!found && !create)
        return XS_OK;
    c = malloc(sizeof(*c));
    if (!c)
        return XS_ERR_NOMEM;
    c->item = item;
    c->tick = ++e->tick;
    c->dirty_ep = 0;
    c->lists_stored = false;
    c->exact = NULL;
    if (e->exact_pairs && !(c->exact = calloc(XS_CLASS__COUNT, sizeof(xs_hmap_t)))) {
        free(c);
        return XS_ERR_NOMEM;
    }
    if (found) {
        char why[128];
        err = xs_sketch_decode(&c->st, e->val.data, e->val.len, why, sizeof(why));
        if (err) {
            xs_err_set(errstr, errstr_size, "items/%016llx: %s", (unsigned long long)item, why);
            free_item(c);
            return err;
        }
        if (xs_sketch_lists_apart(e->val.data, e->val.len) &&
            (err = load_lists(e, c, key, klen, errstr, errstr_size))) {
            free_item(c);
            return err;
        }
    } else {
        xs_sketch_init(&c->st);
    }
    if ((err = xs_hmap_put(&e->items, item, c)) != XS_OK) {
        free_item(c);
        return err;
    }
    e->cache_bytes += sizeof(*c);
    *out = c;
    return XS_OK;
}

static size_t name_bytes(const cached_name_t *n)
{
    return sizeof(*n) + (n->id ? strlen(n->id) + 1 : 0) + (n->title ? strlen(n->title) + 1 : 0);
}

static void free_name(cached_name_t *n)
{
    if (!n)
        return;
    free(n->id);
    free(n->title);
    free(n);
}

/* 'N' 03 | varint len id | varint len title | family u64 | u8 flags (1 price,
 * 2 available_from, 4 available_until) | [price f64] [from i64] [until i64]
 * (version 1: no family, 2: nothing after the family). */
static xs_err_t decode_name(cached_name_t *n, const uint8_t *p, size_t len)
{
    xs_name_rec_t rec = {0};
    xs_err_t err = xs_store_records_name_decode(&rec, p, len, NULL, 0);
    if (err)
        return err == XS_ERR_NOMEM ? err : XS_ERR_DECODE;
    n->id = rec.id;
    n->title = rec.title;
    n->family = rec.family;
    n->price = rec.price;
    n->has_price = rec.has_price;
    n->avail_from = rec.available_from;
    n->has_from = rec.has_from;
    n->avail_until = rec.available_until;
    n->has_until = rec.has_until;
    return XS_OK;
}

static xs_err_t encode_name(const cached_name_t *n, xs_buf_t *b)
{
    xs_name_rec_t rec = {.id = n->id,
                         .title = n->title,
                         .family = n->family,
                         .price = n->price,
                         .has_price = n->has_price,
                         .available_from = n->avail_from,
                         .has_from = n->has_from,
                         .available_until = n->avail_until,
                         .has_until = n->has_until};
    return xs_store_records_name_encode(&rec, b);
}

/* Finds the name record of h; loads it; creates it from `id` when absent and id != NULL. */
static xs_err_t get_name(xs_engine_t *e, uint64_t h, const char *id, cached_name_t **out,
                         char *errstr, size_t errstr_size)
{
    cached_name_t *n = xs_hmap_get(&e->names, h);
    *out = NULL;
    if (n) {
        xs_err_t err = snap_touch(e, DIRTY_NAMES, n->dirty_ep, n);
        if (err)
            return err;
        n->tick = ++e->tick;
        *out = n;
        return XS_OK;
    }
    uint8_t key[8];
    size_t klen = xs_engine_key_u64(key, h);
    bool found;
    xs_err_t err = backend_get(e, XS_CF_NAMES, key, klen, &found, errstr, errstr_size);
    if (err)
        return err;
    if (!found && !id)
        return XS_OK;
    n = calloc(1, sizeof(*n));
    if (!n)
        return XS_ERR_NOMEM;
    n->h = h;
    n->tick = ++e->tick;
    if (found) {
        err = decode_name(n, e->val.data, e->val.len);
        if (err) {
            xs_err_set(errstr, errstr_size, "names/%016llx: corrupt value", (unsigned long long)h);
            free_name(n);
            return err;
        }
    } else {
        n->id = xs_str_dup(id);
        if (!n->id) {
            free_name(n);
            return XS_ERR_NOMEM;
        }
    }
    if ((err = xs_hmap_put(&e->names, h, n)) != XS_OK) {
        free_name(n);
        return err;
    }
    e->cache_bytes += name_bytes(n);
    if (!found)
        name_dirty(e, n);
    *out = n;
    return XS_OK;
}

static xs_err_t set_str(char **dst, const char *s)
{
    *dst = xs_str_dup(s ? s : "");
    return *dst ? XS_OK : XS_ERR_NOMEM;
}

static xs_err_t name_of(xs_engine_t *e, uint64_t h, char **dst, char *errstr, size_t errstr_size)
{
    cached_name_t *n = NULL;
    xs_err_t err = get_name(e, h, NULL, &n, errstr, errstr_size);
    if (err)
        return err;
    if (n)
        return set_str(dst, n->id);
    char hex[24];
    snprintf(hex, sizeof(hex), "#%016llx", (unsigned long long)h);
    return set_str(dst, hex);
}

/* ---- the stages' access to the cache --------------------------------------------------- */

static cached_item_t *item_of(const xs_item_t *it)
{
    return (cached_item_t *)((char *)it - offsetof(cached_item_t, st));
}

static xs_err_t acc_get(void *opaque, uint64_t item, bool create, xs_item_t **it, xs_hmap_t **exact,
                        char *errstr, size_t errstr_size)
{
    cached_item_t *c = NULL;
    xs_err_t err = get_item(opaque, item, create, &c, errstr, errstr_size);
    *it = c ? &c->st : NULL;
    if (exact)
        *exact = c ? c->exact : NULL;
    return err;
}

static void acc_changed(void *opaque, xs_item_t *it)
{
    item_dirty(opaque, item_of(it));
}

static xs_err_t view_item(void *opaque, uint64_t item, const xs_item_t **it, char *errstr,
                          size_t errstr_size)
{
    cached_item_t *c = NULL;
    xs_err_t err = get_item(opaque, item, false, &c, errstr, errstr_size);
    *it = c ? &c->st : NULL;
    return err;
}

static int view_entries(void *opaque, const xs_item_t *it, xs_class_t cls)
{
    xs_engine_t *e = opaque;
    return e->exact_pairs ? (int)item_of(it)->exact[cls].len : it->n_pairs[cls];
}

static xs_err_t view_rank(void *opaque, const xs_item_t *it, xs_class_t cls, const xs_params_t *P,
                          const xs_scored_t **out, int *n, char *errstr, size_t errstr_size)
{
    xs_engine_t *e = opaque;
    return xs_item_stage_rank(e->item_stage, it, item_of(it)->item, item_of(it)->exact, cls, P,
                              &e->totals, out, n, errstr, errstr_size);
}

static xs_err_t view_catalog(void *opaque, uint64_t h, xs_scorer_catalog_t *out, char *errstr,
                             size_t errstr_size)
{
    cached_name_t *n = NULL;
    xs_err_t err = get_name(opaque, h, NULL, &n, errstr, errstr_size);
    if (err || !n) {
        memset(out, 0, sizeof(*out));
        return err;
    }
    *out = (xs_scorer_catalog_t){.found = true,
                                 .id = n->id,
                                 .title = n->title,
                                 .family = n->family,
                                 .price = n->price,
                                 .has_price = n->has_price,
                                 .avail_from = n->avail_from,
                                 .avail_until = n->avail_until,
                                 .has_from = n->has_from,
                                 .has_until = n->has_until};
    return XS_OK;
}

/* ---- lifecycle ---------------------------------------------------------------------- */

xs_engine_t *xs_engine_new(const xs_engine_opts_t *opts, char *errstr, size_t errstr_size)
{
    xs_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->params = opts->params;
    e->ep = 1;
    if (opts->experiment)
        e->experiment = *opts->experiment;
    if (e->experiment.n_arms < 0 || e->experiment.n_arms > XS_MAX_ARMS) {
        xs_err_set(errstr, errstr_size, "experiment: 0..%d arms", XS_MAX_ARMS);
        free(e);
        return NULL;
    }
    e->exact_pairs = opts->exact_pairs;
    e->defer_items = opts->defer_items;
    if (opts->backend) {
        e->backend = *opts->backend;
        e->has_backend = true;
    }
    e->cache_budget = opts->cache_bytes;
    e->model_name = xs_str_dup(opts->model_name ? opts->model_name : "xsell-cooc");
    e->model_version = xs_str_dup(opts->model_version ? opts->model_version : "1");
    if (!e->model_name || !e->model_version) {
        xs_err_set(errstr, errstr_size, "out of memory");
        xs_engine_destroy(e);
        return NULL;
    }
    if (e->params.kmax < 1 || e->params.kmax > XS_PROFILE_MAX_ITEMS) {
        xs_err_set(errstr, errstr_size, "kmax must be within 1..%d", XS_PROFILE_MAX_ITEMS);
        xs_engine_destroy(e);
        return NULL;
    }
    /* Purchases evicted from a profile are kept for the longest window any arm applies. */
    double rebuy_days = e->params.rebuy_days;
    for (int a = 0; a < e->experiment.n_arms; a++)
        if (e->experiment.arms[a].params.rebuy_days > rebuy_days)
            rebuy_days = e->experiment.arms[a].params.rebuy_days;
    if (!(rebuy_days >= 0 && rebuy_days * 86400e3 < (double)XS_PROFILE_HORIZON_MS)) {
        xs_err_set(errstr, errstr_size, "rebuy_days must be within 0..%.0f",
                   (double)XS_PROFILE_HORIZON_MS / 86400e3);
        xs_engine_destroy(e);
        return NULL;
    }
    e->rebuy_ms = (int64_t)ceil(rebuy_days * 86400e3);
    const xs_item_access_t acc = {e, acc_get, acc_changed};
    e->view = (xs_scorer_view_t){e, view_item, view_entries, view_rank, view_catalog};
    e->user_stage = xs_user_stage_new(&e->params, e->rebuy_ms);
    e->item_stage = xs_item_stage_new(&e->params, e->exact_pairs, &acc);
    e->scorer = xs_scorer_new();
    if (!e->user_stage || !e->item_stage || !e->scorer) {
        xs_err_set(errstr, errstr_size, "out of memory");
        xs_engine_destroy(e);
        return NULL;
    }
    bool found = false;
    static const char gk[] = "globals";
    if (backend_get(e, XS_CF_META, gk, sizeof(gk) - 1, &found, errstr, errstr_size) != XS_OK ||
        (found && decode_meta(e, e->val.data, e->val.len, errstr, errstr_size) != XS_OK)) {
        xs_engine_destroy(e);
        return NULL;
    }
    return e;
}

static void free_all(xs_engine_t *e)
{
    for (size_t i = 0; i < e->users.cap; i++)
        if (e->users.ents[i].key)
            free(e->users.ents[i].val);
    for (size_t i = 0; i < e->items.cap; i++)
        if (e->items.ents[i].key)
            free_item(e->items.ents[i].val);
    for (size_t i = 0; i < e->names.cap; i++)
        if (e->names.ents[i].key)
            free_name(e->names.ents[i].val);
    for (int m = 0; m < 3; m++)
        e->dirty[m].n = e->snap[m].n = e->snap_at[m] = 0;
    e->dirty_walk = false;
    e->snap_active = false; /* abandoned: its records are gone */
    xs_hmap_free(&e->users);
    xs_hmap_free(&e->items);
    xs_hmap_free(&e->names);
    e->cache_bytes = 0;
    free(e->nosess);
    e->nosess = NULL;
}

static void drop_all_deltas(xs_engine_t *e)
{
    for (size_t i = 0; i < e->n_acc; i++)
        if (e->acc[i]) {
            xs_delta_acc_clear(e->acc[i]);
            free(e->acc[i]);
            e->acc[i] = NULL;
        }
}

static size_t deltas_bytes(const xs_engine_t *e)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_acc; i++)
        if (e->acc[i])
            n += sizeof(*e->acc[i]) + xs_delta_acc_bytes(e->acc[i]);
    return n;
}

void xs_engine_destroy(xs_engine_t *e)
{
    if (!e)
        return;
    free_all(e);
    for (int m = 0; m < 3; m++) {
        free(e->dirty[m].v);
        free(e->snap[m].v);
    }
    xs_buf_free(&e->snap_buf);
    drop_all_deltas(e);
    free(e->acc);
    free(e->unit);
    xs_user_stage_destroy(e->user_stage);
    xs_item_stage_destroy(e->item_stage);
    xs_scorer_destroy(e->scorer);
    xs_buf_free(&e->val);
    free(e->model_name);
    free(e->model_version);
    free(e);
}

void xs_engine_last_outcome(const xs_engine_t *e, xs_add_outcome_t *o)
{
    *o = e->outcome;
}

xs_params_t *xs_engine_params(xs_engine_t *e)
{
    return &e->params;
}

void xs_engine_stats(const xs_engine_t *e, xs_engine_stats_t *st)
{
    *st = e->st;
    st->cache_bytes = e->cache_bytes + xs_hmap_bytes(&e->users) + xs_hmap_bytes(&e->items) +
                      xs_hmap_bytes(&e->names);
    st->users_cached = e->users.len;
    st->items_cached = e->items.len;
    st->users_total = e->totals.users_total;
    st->users_bought = e->totals.users_bought;
    st->deltas_bytes = deltas_bytes(e);
    /* unknown after a failed allocation: over any bound, so a checkpoint comes */
    st->dirty_bytes = e->dirty_walk
                          ? SIZE_MAX
                          : e->dirty[DIRTY_USERS].n * sizeof(cached_user_t) +
                                e->dirty[DIRTY_ITEMS].n * sizeof(cached_item_t) + st->deltas_bytes;
}

static uint32_t list_hash(const xs_list_t *l)
{
    xs_buf_t b = {0};
    uint32_t h = 0;
    xs_buf_append_u8(&b, (uint8_t)l->placement);
    for (int i = 0; i < l->n_items; i++) {
        xs_buf_append_str(&b, l->items[i].item_id);
        xs_buf_append_u8(&b, 0);
    }
    if (b.data) {
        uint64_t x = xs_hash(b.data, b.len);
        h = (uint32_t)(x ^ (x >> 32));
    }
    xs_buf_free(&b);
    return h ? h : 1;
}

static xs_err_t fill_header(xs_engine_t *e, const xs_event_t *ev, xs_placement_t placement,
                            xs_list_t *list)
{
    xs_err_t err = XS_OK;
    xs_buf_t idb = {0};
    xs_buf_append_str(&idb, ev->event_id);
    xs_buf_append_u8(&idb, 0);
    xs_buf_append_str(&idb, xs_event_placement_name(placement));
    if (!idb.data)
        return XS_ERR_NOMEM;
    xs_hash_hex128(idb.data, idb.len, list->list_id);
    xs_buf_free(&idb);
    list->generated_at = ev->ts;
    list->placement = placement;
    err |= set_str(&list->user_id, ev->user_id);
    err |= set_str(&list->trigger_event_id, ev->event_id);
    err |= set_str(&list->trigger_type, ev->kind == XS_KIND_CLICK
                                            ? xs_event_click_type_name((xs_click_type_t)ev->type)
                                            : xs_event_cart_type_name((xs_cart_type_t)ev->type));
    if (ev->kind == XS_KIND_CLICK && ev->item_id) {
        err |= set_str(&list->trigger_items[0], ev->item_id);
        list->n_trigger_items = 1;
    }
    for (size_t i = 0; ev->kind == XS_KIND_CART && i < ev->n_lines &&
                       list->n_trigger_items < XS_TRIGGER_MAX_ITEMS;
         i++) {
        err |= set_str(&list->trigger_items[list->n_trigger_items], ev->lines[i].item_id);
        list->n_trigger_items++;
    }
    err |= set_str(&list->model_name, e->model_name);
    err |= set_str(&list->model_version, e->model_version);
    return err ? XS_ERR_NOMEM : XS_OK;
}

/* ---- events ---------------------------------------------------------------------------- */

static xs_err_t apply_item_update(xs_engine_t *e, const xs_event_t *ev, char *errstr,
                                  size_t errstr_size)
{
    uint64_t h = xs_hash_str(ev->item_id);
    cached_item_t *ci = NULL;
    cached_name_t *n = NULL;
    xs_err_t err = get_item(e, h, true, &ci, errstr, errstr_size);
    if (!err)
        err = get_name(e, h, ev->item_id, &n, errstr, errstr_size);
    if (err)
        return err;
    uint8_t f = XS_ITEM_F_CATALOG;
    f |= ev->in_stock ? 0 : XS_ITEM_F_OUT_OF_STOCK;
    f |= ev->repurchasable ? XS_ITEM_F_REPURCHASABLE : 0;
    f |= ev->deleted ? XS_ITEM_F_DELETED : 0;
    ci->st.flags = f;
    uint64_t fam = ev->family && *ev->family ? xs_hash_str(ev->family) : 0;
    if (n->family != fam) {
        n->family = fam;
        name_dirty(e, n);
    }
    if (n->has_price != ev->has_price || (ev->has_price && n->price != ev->price)) {
        n->has_price = ev->has_price;
        n->price = ev->has_price ? ev->price : 0;
        name_dirty(e, n);
    }
    int64_t from = ev->has_available_from ? ev->available_from : 0;
    int64_t until = ev->has_available_until ? ev->available_until : 0;
    if (n->has_from != ev->has_available_from || n->has_until != ev->has_available_until ||
        n->avail_from != from || n->avail_until != until) {
        n->has_from = ev->has_available_from;
        n->has_until = ev->has_available_until;
        n->avail_from = from;
        n->avail_until = until;
        name_dirty(e, n);
    }
    if (ev->category) {
        ci->st.category = xs_hash_str(ev->category);
        cached_name_t *cn = NULL;
        if ((err = get_name(e, ci->st.category, ev->category, &cn, errstr, errstr_size)))
            return err;
    }
    item_dirty(e, ci);
    if (ev->title && (!n->title || strcmp(n->title, ev->title) != 0)) {
        char *t = xs_str_dup(ev->title);
        if (!t)
            return XS_ERR_NOMEM;
        e->cache_bytes -= name_bytes(n);
        free(n->title);
        n->title = t;
        e->cache_bytes += name_bytes(n);
        name_dirty(e, n);
    }
    return XS_OK;
}

/* A tombstone on the compacted catalog topic: the item is deleted (the
 * rules never let it into a list again, as ItemUpdate.deleted) and what the
 * catalog said about it (title, family, category, stock, repurchasable) is
 * dropped. Its co-occurrence counts stay: they are the shoppers' history, and
 * a later ItemUpdate lists the item again with them. */
xs_err_t xs_engine_delete_item(xs_engine_t *e, const char *item_id, char *errstr,
                               size_t errstr_size)
{
    uint64_t h = xs_hash_str(item_id);
    cached_item_t *ci = NULL;
    cached_name_t *n = NULL;
    xs_err_t err = get_item(e, h, true, &ci, errstr, errstr_size);
    if (!err)
        err = get_name(e, h, item_id, &n, errstr, errstr_size);
    if (err)
        return err;
    memset(&e->outcome, 0, sizeof(e->outcome));
    e->outcome.arm = -1;
    e->st.events++;
    e->st.item_updates++;
    ci->st.flags = XS_ITEM_F_CATALOG | XS_ITEM_F_DELETED;
    ci->st.category = 0;
    item_dirty(e, ci);
    if (n->title || n->family || n->has_price || n->has_from || n->has_until) {
        e->cache_bytes -= name_bytes(n);
        free(n->title);
        n->title = NULL;
        n->family = 0;
        n->has_price = n->has_from = n->has_until = false;
        n->price = 0;
        n->avail_from = n->avail_until = 0;
        e->cache_bytes += name_bytes(n);
        name_dirty(e, n);
    }
    return XS_OK;
}

static xs_err_t remember_name(xs_engine_t *e, uint64_t h, const char *id, char *errstr,
                              size_t errstr_size)
{
    cached_name_t *n = NULL;
    return get_name(e, h, id, &n, errstr, errstr_size);
}

/*
 * The join of a session into its user: an event with both a user_id and a
 * session_id finds the profile of user "session:<session_id>" (the events
 * that had only the session id) in the same partition, merges it into the
 * user's (xs_profile_merge) and deletes it. No pair deltas: the session's
 * pairs were counted when its events came, and an item of the session met
 * again by the user is already in the profile, so it is not counted twice.
 * The session no longer counts as a distinct user (users_total, and
 * users_bought when both had bought). The delete and the merged profile go
 * into the same checkpoint as the event's offset.
 */
static xs_err_t join_session(xs_engine_t *e, uint16_t partition, const xs_event_t *ev,
                             cached_user_t *u, xs_totals_t *totals, char *errstr,
                             size_t errstr_size)
{
    static const char pre[] = XS_SESSION_USER_PREFIX;
    size_t pl = sizeof(pre) - 1, sl = strlen(ev->session_id);
    if (!sl || !strncmp(ev->user_id, pre, pl))
        return XS_OK; /* a session's own event, or a session that names another */
    char stack[320], *sid = pl + sl + 1 <= sizeof(stack) ? stack : malloc(pl + sl + 1);
    if (!sid)
        return XS_ERR_NOMEM;
    memcpy(sid, pre, pl);
    memcpy(sid + pl, ev->session_id, sl + 1);
    uint64_t sh = xs_hash_str(sid);
    if (sid != stack)
        free(sid);
    if (sh == u->user)
        return XS_OK;
    uint64_t mk = user_map_key(partition, sh);
    if (e->nosess && e->nosess[mk % NOSESS_SLOTS] == mk)
        return XS_OK;
    cached_user_t *s = NULL;
    xs_err_t err = get_user(e, partition, sh, false, &s, NULL, errstr, errstr_size);
    if (err)
        return err;
    if (!s) {
        if (!e->nosess && !(e->nosess = calloc(NOSESS_SLOTS, sizeof(*e->nosess))))
            return XS_OK; /* only a shortcut */
        e->nosess[mk % NOSESS_SLOTS] = mk;
        return XS_OK;
    }
    xs_user_stage_join(e->user_stage, &u->prof, &s->prof, totals);
    s->deleted = true;
    user_dirty(e, s);
    e->st.sessions_joined++;
    return XS_OK;
}

/* The names (id dictionary) of an event's ids: its category and item, or its
 * cart lines, as the user stage is going to read them. */
static xs_err_t event_names(xs_engine_t *e, const xs_event_t *ev, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    if (ev->kind == XS_KIND_CLICK) {
        uint64_t cat = xs_hash_str(ev->category);
        if (cat && (err = remember_name(e, cat, ev->category, errstr, errstr_size)))
            return err;
        if (ev->item_id &&
            (ev->type == XS_CLICK_PRODUCT_VIEW || ev->type == XS_CLICK_RECOMMENDATION_CLICK))
            err = remember_name(e, xs_hash_str(ev->item_id), ev->item_id, errstr, errstr_size);
        return err;
    }
    if (ev->type != XS_CART_ADD && ev->type != XS_CART_REMOVE && ev->type != XS_CART_CHECKOUT &&
        ev->type != XS_CART_PURCHASE)
        return XS_OK; /* the user stage says it is invalid */
    for (size_t i = 0; i < ev->n_lines && !err; i++) {
        uint64_t j = xs_hash_str(ev->lines[i].item_id);
        if (j)
            err = remember_name(e, j, ev->lines[i].item_id, errstr, errstr_size);
    }
    return err;
}

/* ---- the deferred item side (opts.defer_items) ------------------------------------------- */

static xs_delta_acc_t *acc_for(xs_engine_t *e, uint16_t partition)
{
    if (partition >= e->n_acc) {
        size_t n = (size_t)partition + 1;
        xs_delta_acc_t **v = realloc(e->acc, n * sizeof(*v));
        if (!v)
            return NULL;
        memset(v + e->n_acc, 0, (n - e->n_acc) * sizeof(*v));
        e->acc = v;
        e->n_acc = n;
    }
    if (!e->acc[partition])
        e->acc[partition] = calloc(1, sizeof(xs_delta_acc_t));
    return e->acc[partition];
}

/* What the item stage would have applied for one event, merged into its
 * partition's deltas: the click's category hint, the pair deltas, the
 * sales, and the change of the totals (tot: the user stage's copy). */
static xs_err_t defer_event(xs_engine_t *e, uint16_t partition, const xs_user_out_t *uo,
                            const xs_totals_t *tot, int64_t now, char *errstr, size_t errstr_size)
{
    int64_t d_total = (int64_t)(tot->users_total - e->totals.users_total);
    int64_t d_bought = (int64_t)(tot->users_bought - e->totals.users_bought);
    if (!uo->hint_item && !uo->n_deltas && !uo->n_sales && !d_total && !d_bought)
        return XS_OK;
    xs_delta_acc_t *a = acc_for(e, partition);
    xs_err_t err = a ? XS_OK : XS_ERR_NOMEM;
    if (!err && uo->hint_item)
        err = xs_delta_acc_add(a, &(xs_delta_t){.kind = XS_DELTA_CATEGORY,
                                                .a = uo->hint_item,
                                                .b = uo->hint_cat,
                                                .last_ts = now});
    for (size_t i = 0; !err && i < uo->n_deltas; i++) {
        const xs_pair_delta_t *d = &uo->deltas[i];
        err = xs_delta_acc_add(a, &(xs_delta_t){.kind = d->b ? XS_DELTA_PAIR : XS_DELTA_USERS,
                                                .cls = d->cls,
                                                .a = d->a,
                                                .b = d->b,
                                                .count = 1,
                                                .last_ts = now});
    }
    for (size_t i = 0; !err && i < uo->n_sales; i++)
        err = xs_delta_acc_add(
            a, &(xs_delta_t){
                   .kind = XS_DELTA_TREND, .a = uo->sales[i], .weight = 1.0, .last_ts = now});
    if (!err)
        xs_delta_acc_users(a, d_total, d_bought, now);
    if (err)
        xs_err_set(errstr, errstr_size, "deltas of partition %u: %s", partition, xs_err_str(err));
    return err;
}

bool xs_engine_has_deltas(const xs_engine_t *e, uint16_t partition)
{
    return partition < e->n_acc && e->acc[partition] && xs_delta_acc_pending(e->acc[partition]);
}

static void acc_free(xs_engine_t *e, uint16_t partition)
{
    if (partition < e->n_acc && e->acc[partition]) {
        xs_delta_acc_clear(e->acc[partition]);
        free(e->acc[partition]);
        e->acc[partition] = NULL;
    }
}

void xs_engine_drop_deltas(xs_engine_t *e, uint16_t partition)
{
    acc_free(e, partition);
}

/* Appends key's id to out->ids when the engine knows it and it is not there yet. */
static xs_err_t take_id(xs_engine_t *e, xs_hmap_t *seen, uint64_t key, xs_delta_batch_t *out,
                        char *errstr, size_t errstr_size)
{
    if (!key || xs_hmap_get(seen, key))
        return XS_OK;
    xs_err_t err = xs_hmap_put(seen, key, (void *)1);
    cached_name_t *n = NULL;
    if (!err)
        err = get_name(e, key, NULL, &n, errstr, errstr_size);
    if (err || !n || !n->id || !*n->id)
        return err;
    if (out->n_ids == out->cap_ids) {
        size_t cap = out->cap_ids ? out->cap_ids * 2 : 64;
        xs_named_t *v = realloc(out->ids, cap * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        out->ids = v;
        out->cap_ids = cap;
    }
    char *id = xs_str_dup(n->id);
    if (!id)
        return XS_ERR_NOMEM;
    out->ids[out->n_ids++] = (xs_named_t){key, id};
    return XS_OK;
}

xs_err_t xs_engine_take_deltas(xs_engine_t *e, uint16_t partition, xs_delta_batch_t *out,
                               char *errstr, size_t errstr_size)
{
    xs_delta_batch_clear(out);
    out->partition = partition;
    out->n_parts = 1;
    xs_delta_acc_t *a = partition < e->n_acc ? e->acc[partition] : NULL;
    if (!a || !xs_delta_acc_pending(a))
        return XS_OK;
    xs_err_t err = XS_OK;
    xs_hmap_t seen = {0};
    if (a->n && !(out->entries = malloc(a->n * sizeof(*out->entries))))
        err = XS_ERR_NOMEM;
    for (size_t i = 0; !err && i < a->n; i++) {
        const xs_delta_t *d = &a->v[i];
        out->entries[out->n_entries++] = *d;
        out->cap_entries = out->n_entries;
        if (!(err = take_id(e, &seen, d->a, out, errstr, errstr_size)) &&
            (d->kind == XS_DELTA_PAIR || d->kind == XS_DELTA_CATEGORY))
            err = take_id(e, &seen, d->b, out, errstr, errstr_size);
    }
    xs_hmap_free(&seen);
    if (err) { /* the deltas stay for the next try */
        if (err == XS_ERR_NOMEM)
            xs_err_set(errstr, errstr_size, "deltas of partition %u: out of memory", partition);
        xs_delta_batch_clear(out);
        out->partition = partition;
        out->n_parts = 1;
        return err;
    }
    out->ts = a->ts;
    out->users_total_delta = a->users_total;
    out->users_bought_delta = a->users_bought;
    acc_free(e, partition);
    return XS_OK;
}

/* The unit deltas of `count` co-occurrences (b 0: users) applied in chunks. */
static xs_err_t apply_counted(xs_engine_t *e, uint64_t a, uint64_t b, uint8_t cls, uint32_t count,
                              char *errstr, size_t errstr_size)
{
    size_t chunk = count < 4096 ? count : 4096;
    if (chunk > e->cap_unit) {
        xs_pair_delta_t *v = realloc(e->unit, chunk * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        e->unit = v;
        e->cap_unit = chunk;
    }
    for (size_t i = 0; i < chunk; i++)
        e->unit[i] = (xs_pair_delta_t){a, b, cls};
    xs_err_t err = XS_OK;
    for (uint32_t left = count; !err && left > 0;) {
        size_t n = left < chunk ? left : chunk;
        err = xs_item_stage_apply(e->item_stage, e->unit, n, &e->totals, &e->st.pair_updates,
                                  errstr, errstr_size);
        left -= (uint32_t)n;
    }
    return err;
}

static void add_total(uint64_t *t, int64_t d)
{
    if (d >= 0)
        *t += (uint64_t)d;
    else
        *t = (uint64_t)-d >= *t ? 0 : *t - (uint64_t)-d;
}

xs_err_t xs_engine_apply_deltas(xs_engine_t *e, const xs_delta_batch_t *b, char *errstr,
                                size_t errstr_size)
{
    /* checked whole first: a batch is applied entirely or not at all */
    for (size_t i = 0; i < b->n_entries; i++) {
        const xs_delta_t *d = &b->entries[i];
        bool counted = d->kind == XS_DELTA_PAIR || d->kind == XS_DELTA_USERS;
        if (d->kind >= XS_DELTA__COUNT || !d->a || (counted && d->cls >= XS_CLASS__COUNT) ||
            (counted && !d->count) || (d->kind == XS_DELTA_PAIR && (!d->b || d->b == d->a)) ||
            (d->kind == XS_DELTA_CATEGORY && !d->b) ||
            (d->kind == XS_DELTA_TREND && !(isfinite(d->weight) && d->weight > 0))) {
            xs_err_set(errstr, errstr_size,
                       "pair-delta batch of partition %u, seq %llu: entry %zu (%s) is invalid",
                       b->partition, (unsigned long long)b->seq, i,
                       xs_delta_batch_kind_name(d->kind));
            return XS_ERR_INVALID;
        }
    }
    for (size_t i = 0; i < b->n_ids; i++)
        if (!b->ids[i].id || !*b->ids[i].id || xs_hash_str(b->ids[i].id) != b->ids[i].key) {
            xs_err_set(errstr, errstr_size,
                       "pair-delta batch of partition %u, seq %llu: id %zu does not match its key",
                       b->partition, (unsigned long long)b->seq, i);
            return XS_ERR_INVALID;
        }
    xs_err_t err = XS_OK;
    for (size_t i = 0; !err && i < b->n_ids; i++)
        err = remember_name(e, b->ids[i].key, b->ids[i].id, errstr, errstr_size);
    if (!err && (b->users_total_delta || b->users_bought_delta)) {
        add_total(&e->totals.users_total, b->users_total_delta);
        add_total(&e->totals.users_bought, b->users_bought_delta);
        e->totals.dirty = true;
    }
    for (size_t i = 0; !err && i < b->n_entries; i++) {
        const xs_delta_t *d = &b->entries[i];
        switch ((xs_delta_kind_t)d->kind) {
        case XS_DELTA_PAIR:
        case XS_DELTA_USERS:
            err = apply_counted(e, d->a, d->kind == XS_DELTA_PAIR ? d->b : 0, d->cls, d->count,
                                errstr, errstr_size);
            break;
        case XS_DELTA_CATEGORY:
            err = xs_item_stage_hint(e->item_stage, d->a, d->b, errstr, errstr_size);
            break;
        case XS_DELTA_TREND:
            xs_trending_add_weight(&e->trending, d->a, d->weight, d->last_ts);
            break;
        default:
            break;
        }
    }
    if (!err && b->n_entries && b->ts > e->clock)
        e->clock = b->ts;
    return err;
}

/* Whether the scorer with parameters SP reads the items' lists, which the
 * item stage ranks with the learning parameters (else it ranks the entries
 * now: an arm that ranks differently, and the reference mode). */
static bool reads_lists(const xs_engine_t *e, const xs_params_t *SP)
{
    const xs_params_t *LP = &e->params;
    return !e->exact_pairs && SP->similarity == LP->similarity && SP->llr_min == LP->llr_min &&
           SP->min_support == LP->min_support;
}

xs_err_t xs_engine_process(xs_engine_t *e, uint16_t partition, const xs_event_t *ev,
                           xs_list_t *list, bool *has_list, char *errstr, size_t errstr_size)
{
    *has_list = false;
    memset(&e->outcome, 0, sizeof(e->outcome));
    e->outcome.arm = -1;
    e->st.events++;
    if (ev->ts > e->clock)
        e->clock = ev->ts;
    if (ev->kind == XS_KIND_ITEM) {
        e->st.item_updates++;
        return apply_item_update(e, ev, errstr, errstr_size);
    }
    if (ev->kind != XS_KIND_CLICK && ev->kind != XS_KIND_CART)
        return XS_ERR_INVALID;

    int arm = e->experiment.n_arms > 0 ? xs_engine_experiment_arm(&e->experiment, ev->user_id) : -1;
    const xs_params_t *SP = arm >= 0 ? &e->experiment.arms[arm].params : &e->params; /* scoring */
    uint64_t uh = xs_hash_str(ev->user_id);
    cached_user_t *u = NULL;
    bool is_new = false;
    xs_err_t err = get_user(e, partition, uh, true, &u, &is_new, errstr, errstr_size);
    if (err)
        return err;
    xs_profile_t *p = &u->prof;
    if (xs_profile_check_dedup(p, xs_hash_str(ev->event_id))) {
        e->st.duplicates++;
        return XS_OK;
    }
    user_dirty(e, u);
    /* Deferred item side: the user stage changes a copy of the totals and
     * no trending; the difference goes to the partition's deltas. */
    xs_totals_t defer_totals, *T = &e->totals;
    if (e->defer_items) {
        defer_totals = e->totals;
        T = &defer_totals;
    }
    if (is_new) {
        T->users_total++;
        T->dirty = true;
    }
    if (ev->session_id && (err = join_session(e, partition, ev, u, T, errstr, errstr_size)))
        return err;
    e->outcome.arm = arm;
    if (ev->kind == XS_KIND_CLICK)
        e->st.clicks++;
    else
        e->st.carts++;

    /* --- user stage: profile in, profile out, pair deltas and context --- */
    xs_user_out_t uo;
    if ((err = event_names(e, ev, errstr, errstr_size)) ||
        (err = xs_user_stage_apply(e->user_stage, p, ev, SP, T,
                                   e->defer_items ? NULL : &e->trending, &uo)))
        return err;
    memcpy(e->outcome.opportunities, uo.opportunities, sizeof(uo.opportunities));
    memcpy(e->outcome.hits, uo.hits, sizeof(uo.hits));
    int64_t now = p->last_ts;

    /* --- item stage: the deltas into sketches, counts and lists; or, when
     * deferred, into the partition's deltas for the next batch --- */
    if (e->defer_items) {
        if ((err = defer_event(e, partition, &uo, &defer_totals, now, errstr, errstr_size)))
            return err;
    } else if ((uo.hint_item && (err = xs_item_stage_hint(e->item_stage, uo.hint_item, uo.hint_cat,
                                                          errstr, errstr_size))) ||
               (err = xs_item_stage_apply(e->item_stage, uo.deltas, uo.n_deltas, &e->totals,
                                          &e->st.pair_updates, errstr, errstr_size)))
        return err;

    /* --- scorer --- */
    if (!uo.trigger)
        return XS_OK;
    xs_placement_t placement = uo.placement;
    if ((err = fill_header(e, ev, placement, list)) != XS_OK)
        return err;
    if (arm >= 0 && ((err = set_str(&list->experiment, e->experiment.name)) ||
                     (err = set_str(&list->arm, e->experiment.arms[arm].name))))
        return err;
    int n_want = SP->list_len[placement];
    if (n_want > XS_LIST_MAX_ITEMS)
        n_want = XS_LIST_MAX_ITEMS;
    xs_ctx_item_t ctx[XS_CTX_MAX];
    int n_ctx = uo.n_ctx;
    memcpy(ctx, uo.ctx, (size_t)n_ctx * sizeof(*ctx));
    xs_score_in_t in = {.P = SP,
                        .p = p,
                        .trig = uo.ctx,
                        .n_trig = uo.n_ctx,
                        .ctx = ctx,
                        .lists = reads_lists(e, SP),
                        .placement = placement,
                        .n_want = n_want,
                        .now = now,
                        .list_time = now, /* availability windows at the trigger's time */
                        .trending = &e->trending};
    in.n_use = xs_scorer_context(SP, p, ctx, &n_ctx, now);
    in.n_ctx = n_ctx;
    /* the lists the scorer is about to read, ranked whole where stale */
    if (in.lists && !SP->popularity_only &&
        (err =
             xs_item_stage_refresh(e->item_stage, ctx, in.n_use, &e->totals, errstr, errstr_size)))
        return err;
    if ((err = xs_scorer_score(e->scorer, &e->view, &in, list, errstr, errstr_size)))
        return err;
    uint32_t h = list_hash(list);
    int64_t suppress = (int64_t)(SP->suppress_minutes * 60e3);
    if (p->last_list_hash[placement] == h && now - p->last_list_ts[placement] < suppress) {
        e->st.suppressed++;
        xs_event_list_clear(list);
        return XS_OK;
    }
    uint64_t shown[XS_PROFILE_SEEN];
    int n_shown = 0;
    for (int i = 0; i < list->n_items && n_shown < XS_PROFILE_SEEN; i++)
        shown[n_shown++] = xs_hash_str(list->items[i].item_id);
    xs_profile_set_last_list(p, placement, h, now, shown, n_shown);
    e->st.lists++;
    *has_list = true;
    return XS_OK;
}

xs_err_t xs_engine_recommend(xs_engine_t *e, uint16_t partition, const char *user_id,
                             const char *trigger_item, xs_placement_t placement, int n,
                             xs_list_t *list, char *errstr, size_t errstr_size)
{
    const char *items[1] = {trigger_item};
    return xs_engine_recommend_ex(e, partition, user_id, items,
                                  trigger_item && *trigger_item ? 1 : 0, placement, n, NULL, list,
                                  errstr, errstr_size);
}

/* Title, category and price of each item of a list (queries only). */
static xs_err_t list_metadata(xs_engine_t *e, xs_list_t *list, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    for (int i = 0; i < list->n_items; i++) {
        xs_rec_t *r = &list->items[i];
        uint64_t h = xs_hash_str(r->item_id);
        cached_name_t *n = NULL;
        cached_item_t *st = NULL;
        if ((err = get_name(e, h, NULL, &n, errstr, errstr_size)))
            return err;
        if (n && n->title && (err = set_str(&r->title, n->title)))
            return err;
        if (n && n->has_price) {
            r->price = n->price;
            r->has_price = true;
        }
        if ((err = get_item(e, h, false, &st, errstr, errstr_size)))
            return err;
        if (st && st->st.category) {
            cached_name_t *cn = NULL;
            if ((err = get_name(e, st->st.category, NULL, &cn, errstr, errstr_size)))
                return err;
            if (cn && (err = set_str(&r->category, cn->id)))
                return err;
        }
    }
    return XS_OK;
}

xs_err_t xs_engine_recommend_ex(xs_engine_t *e, uint16_t partition, const char *user_id,
                                const char *const *items, int n_items, xs_placement_t placement,
                                int n, const xs_rules_t *rules, xs_list_t *list, char *errstr,
                                size_t errstr_size)
{
    cached_user_t *u = NULL;
    xs_err_t err = XS_OK;
    if (user_id &&
        (err = get_user(e, partition, xs_hash_str(user_id), false, &u, NULL, errstr, errstr_size)))
        return err;
    int arm = user_id && e->experiment.n_arms > 0
                  ? xs_engine_experiment_arm(&e->experiment, user_id)
                  : -1;
    const xs_params_t *SP = arm >= 0 ? &e->experiment.arms[arm].params : &e->params;
    xs_ctx_item_t trig[XS_CTX_MAX], ctx[XS_CTX_MAX];
    int n_trig = 0;
    if (n_items > XS_RULES_MAX)
        n_items = XS_RULES_MAX;
    for (int i = n_items - 1; i >= 0; i--) /* the trigger first, as on the worker's path */
        if (items[i] && *items[i])
            xs_scorer_ctx_add(trig, &n_trig, XS_CTX_MAX, xs_hash_str(items[i]),
                              i == n_items - 1 ? SP->w_trigger : SP->w_cart, false);
    int64_t now = u ? u->prof.last_ts : 0;
    if (n <= 0 || n > XS_LIST_MAX_ITEMS)
        n = SP->list_len[placement];
    if (n > XS_LIST_MAX_ITEMS)
        n = XS_LIST_MAX_ITEMS;
    if (user_id && (err = set_str(&list->user_id, user_id)) != XS_OK)
        return err;
    if (arm >= 0 && ((err = set_str(&list->experiment, e->experiment.name)) ||
                     (err = set_str(&list->arm, e->experiment.arms[arm].name))))
        return err;
    list->generated_at = now;
    for (int i = 0; i < n_items && list->n_trigger_items < XS_TRIGGER_MAX_ITEMS; i++) {
        if (!items[i] || !*items[i])
            continue;
        if ((err = set_str(&list->trigger_items[list->n_trigger_items], items[i])) != XS_OK)
            return err;
        list->n_trigger_items++;
    }
    if ((err = set_str(&list->model_name, e->model_name)) ||
        (err = set_str(&list->model_version, e->model_version)))
        return err;
    xs_score_rules_t rc;
    if (rules)
        xs_scorer_rules(&rc, rules);
    const xs_profile_t *p = u ? &u->prof : NULL;
    int n_ctx = n_trig;
    memcpy(ctx, trig, (size_t)n_trig * sizeof(*ctx));
    xs_score_in_t in = {.P = SP,
                        .p = p,
                        .trig = trig,
                        .n_trig = n_trig,
                        .ctx = ctx,
                        .lists = reads_lists(e, SP),
                        .placement = placement,
                        .n_want = n,
                        .now = now,
                        .rules = rules ? &rc : NULL,
                        .trending = &e->trending};
    in.n_use = xs_scorer_context(SP, p, ctx, &n_ctx, now);
    in.n_ctx = n_ctx;
    /* availability windows at the latest event time known: the shopper's, or
     * any processed event's (the clock is not stored: right after a restart
     * it starts from the shopper's or 0) */
    in.list_time = now > e->clock ? now : e->clock;
    /* A query changes nothing: stale lists are read as they are. */
    err = xs_scorer_score(e->scorer, &e->view, &in, list, errstr, errstr_size);
    if (!err)
        err = list_metadata(e, list, errstr, errstr_size);
    return err;
}

xs_err_t xs_engine_has_user(xs_engine_t *e, uint16_t partition, const char *user_id, bool *found,
                            char *errstr, size_t errstr_size)
{
    cached_user_t *u = NULL;
    xs_err_t err =
        get_user(e, partition, xs_hash_str(user_id), false, &u, NULL, errstr, errstr_size);
    *found = u != NULL;
    return err;
}

typedef struct nb_sort {
    uint64_t item;
    uint32_t count, err;
    double sim;
} nb_sort_t;

static int cmp_nb(const void *a, const void *b)
{
    const nb_sort_t *x = a, *y = b;
    if (x->sim != y->sim)
        return x->sim > y->sim ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

void xs_engine_neighbours_free(xs_neighbour_t *v, int n)
{
    for (int i = 0; v && i < n; i++) {
        free(v[i].item_id);
        free(v[i].title);
    }
    free(v);
}

void xs_engine_item_info_clear(xs_item_info_t *info)
{
    free(info->title);
    free(info->category);
    memset(info, 0, sizeof(*info));
}

xs_err_t xs_engine_neighbours(xs_engine_t *e, const char *item_id, xs_class_t cls, int n,
                              xs_neighbour_t **out, int *n_out, xs_item_info_t *info, char *errstr,
                              size_t errstr_size)
{
    *out = NULL;
    *n_out = 0;
    if (info)
        memset(info, 0, sizeof(*info));
    if (cls < 0 || cls >= XS_CLASS__COUNT || n < 0)
        return XS_ERR_INVALID;
    uint64_t h = xs_hash_str(item_id);
    cached_item_t *ci = NULL;
    xs_err_t err = get_item(e, h, false, &ci, errstr, errstr_size);
    if (err || !ci)
        return err;
    if (info) {
        cached_name_t *nm = NULL;
        info->found = true;
        memcpy(info->n_users, ci->st.n_users, sizeof(info->n_users));
        info->flags = ci->st.flags;
        if ((err = get_name(e, h, NULL, &nm, errstr, errstr_size)))
            return err;
        if (nm && nm->title && !(info->title = xs_str_dup(nm->title)))
            return XS_ERR_NOMEM;
        if (nm && nm->has_price) {
            info->price = nm->price;
            info->has_price = true;
        }
        if (ci->st.category) {
            nm = NULL;
            if ((err = get_name(e, ci->st.category, NULL, &nm, errstr, errstr_size)))
                return err;
            if (nm && !(info->category = xs_str_dup(nm->id)))
                return XS_ERR_NOMEM;
        }
    }
    int n_en = 0;
    const xs_ss_entry_t *en = xs_item_stage_pairs(e->item_stage, &ci->st, ci->exact, cls, &n_en);
    nb_sort_t *tmp = calloc(n_en ? (size_t)n_en : 1, sizeof(*tmp));
    if (!tmp)
        return XS_ERR_NOMEM;
    double n_all = 2.0 * (double)e->totals.pairs_total[cls]; /* every pair in both items */
    double n_i = (double)xs_sketch_pair_total(&ci->st, cls);
    uint32_t min_sup =
        xs_item_stage_support_min(&e->params, xs_sketch_pair_total(&ci->st, cls), n_en);
    int m = 0;
    for (int k = 0; k < n_en; k++) {
        uint32_t cnt = en[k].count - en[k].err;
        cached_item_t *cj = NULL;
        if ((err = get_item(e, en[k].item, false, &cj, errstr, errstr_size)))
            break;
        double sim =
            cnt >= min_sup
                ? xs_sketch_similarity(e->params.similarity, cnt, n_i,
                                       cj ? (double)xs_sketch_pair_total(&cj->st, cls) : cnt, n_all,
                                       e->params.llr_min)
                : 0;
        tmp[m++] = (nb_sort_t){en[k].item, en[k].count, en[k].err, sim};
    }
    if (!err && m > 1)
        qsort(tmp, (size_t)m, sizeof(*tmp), cmp_nb);
    if (m > n)
        m = n;
    xs_neighbour_t *v = err ? NULL : calloc(m ? (size_t)m : 1, sizeof(*v));
    if (!err && !v)
        err = XS_ERR_NOMEM;
    for (int k = 0; !err && k < m; k++) {
        v[k].count = tmp[k].count;
        v[k].err = tmp[k].err;
        v[k].similarity = tmp[k].sim;
        err = name_of(e, tmp[k].item, &v[k].item_id, errstr, errstr_size);
        cached_name_t *nm = NULL;
        if (!err)
            err = get_name(e, tmp[k].item, NULL, &nm, errstr, errstr_size);
        if (!err && nm && nm->title && !(v[k].title = xs_str_dup(nm->title)))
            err = XS_ERR_NOMEM;
        if (!err)
            *n_out = k + 1;
    }
    free(tmp);
    if (err) {
        xs_engine_neighbours_free(v, v ? m : 0); /* calloc'd: unfilled entries are NULL */
        *n_out = 0;
        return err;
    }
    *out = v;
    return XS_OK;
}

xs_err_t xs_engine_rank_lists(xs_engine_t *e, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < e->items.cap; i++) {
        if (!e->items.ents[i].key)
            continue;
        cached_item_t *c = e->items.ents[i].val;
        xs_err_t err =
            xs_item_stage_rescore(e->item_stage, &c->st, c->item, &e->totals, errstr, errstr_size);
        if (err)
            return err;
    }
    return XS_OK;
}

xs_err_t xs_engine_item_list(xs_engine_t *e, const char *item_id, xs_class_t cls, int n,
                             xs_neighbour_t **out, int *n_out, char *errstr, size_t errstr_size)
{
    *out = NULL;
    *n_out = 0;
    if (cls < 0 || cls >= XS_CLASS__COUNT || n < 0)
        return XS_ERR_INVALID;
    if (e->exact_pairs) {
        /* the scorer ranks every pair now: xs_engine_neighbours' ranking, > 0 only */
        xs_err_t err =
            xs_engine_neighbours(e, item_id, cls, n, out, n_out, NULL, errstr, errstr_size);
        while (!err && *n_out > 0 && (*out)[*n_out - 1].similarity <= 0) {
            (*n_out)--;
            free((*out)[*n_out].item_id);
            free((*out)[*n_out].title);
            (*out)[*n_out] = (xs_neighbour_t){0};
        }
        return err;
    }
    cached_item_t *ci = NULL;
    xs_err_t err = get_item(e, xs_hash_str(item_id), false, &ci, errstr, errstr_size);
    if (err || !ci)
        return err;
    int nt = 0;
    const xs_top_t *t = xs_sketch_top(&ci->st, cls, &nt);
    xs_top_t sorted[XS_TOP_BOUGHT > XS_TOP_VIEWED ? XS_TOP_BOUGHT : XS_TOP_VIEWED];
    memcpy(sorted, t, (size_t)nt * sizeof(*t));
    for (int i = 1; i < nt; i++)
        for (int k = i;
             k > 0 && (sorted[k].sim > sorted[k - 1].sim ||
                       (sorted[k].sim == sorted[k - 1].sim && sorted[k].item < sorted[k - 1].item));
             k--) {
            xs_top_t x = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = x;
        }
    int m = nt < n ? nt : n;
    xs_neighbour_t *v = calloc(m ? (size_t)m : 1, sizeof(*v));
    if (!v)
        return XS_ERR_NOMEM;
    for (int k = 0; !err && k < m; k++) {
        v[k].count = xs_sketch_pair_count(&ci->st, cls, sorted[k].item, &v[k].err);
        v[k].similarity = sorted[k].sim;
        err = name_of(e, sorted[k].item, &v[k].item_id, errstr, errstr_size);
        cached_name_t *nm = NULL;
        if (!err)
            err = get_name(e, sorted[k].item, NULL, &nm, errstr, errstr_size);
        if (!err && nm && nm->title && !(v[k].title = xs_str_dup(nm->title)))
            err = XS_ERR_NOMEM;
    }
    if (err) {
        xs_engine_neighbours_free(v, m);
        return err;
    }
    *out = v;
    *n_out = m;
    return XS_OK;
}

/* ---- the quality signal ---------------------------------------------------------------- */

void xs_engine_published_note(xs_published_t *p, const xs_list_t *list)
{
    memset(p, 0, sizeof(*p));
    int n = list->n_items < XS_LIST_MAX_ITEMS ? list->n_items : XS_LIST_MAX_ITEMS;
    for (int i = 0; i < n; i++)
        p->items[i] = xs_hash_str(list->items[i].item_id);
    p->n_items = (uint8_t)n;
    p->trigger = list->n_trigger_items > 0 ? xs_hash_str(list->trigger_items[0]) : 0;
    p->ts = list->generated_at;
    p->placement = (uint8_t)list->placement;
}

int xs_engine_published_rank(const xs_published_t *p, const char *item_id, int k)
{
    uint64_t h = xs_hash_str(item_id);
    int n = k > 0 && k < p->n_items ? k : p->n_items;
    for (int i = 0; h && i < n; i++)
        if (p->items[i] == h)
            return i + 1;
    return 0;
}

/* ---- checkpoint ------------------------------------------------------------------------ */

/* Rebuilds the dirty vectors from the maps (after a vector could not grow). */
static xs_err_t dirty_rebuild(xs_engine_t *e)
{
    xs_hmap_t *maps[3] = {&e->users, &e->items, &e->names};
    for (int m = 0; m < 3; m++) {
        dirty_vec_t *d = &e->dirty[m];
        d->n = 0;
        for (size_t i = 0; i < maps[m]->cap; i++) {
            void *v = maps[m]->ents[i].key ? maps[m]->ents[i].val : NULL;
            if (v && dirty_ep_of(m, v) == e->ep && dirty_push(d, v) != XS_OK)
                return XS_ERR_NOMEM;
        }
    }
    e->dirty_walk = false;
    return XS_OK;
}

/* Encodes one dirty record of map m and hands it to put; clean once put. */
static xs_err_t flush_one(int m, void *rec, xs_put_fn put, void *opaque, xs_buf_t *b)
{
    uint8_t key[10];
    xs_err_t err;
    xs_buf_reset(b);
    if (m == DIRTY_USERS) {
        cached_user_t *u = rec;
        if (u->deleted) {
            if (!(err = put(opaque, XS_CF_USERS, key,
                            xs_engine_key_user(key, u->partition, u->user), NULL, 0)))
                u->dirty_ep = 0;
        } else if (!(err = xs_profile_encode(&u->prof, b)) &&
                   !(err = put(opaque, XS_CF_USERS, key,
                               xs_engine_key_user(key, u->partition, u->user), b->data, b->len)))
            u->dirty_ep = 0;
    } else if (m == DIRTY_ITEMS) {
        cached_item_t *c = rec;
        /* The item's records into the same batch: its summary; its lists
         * only when they changed since stored, none when empty (deleting
         * the stored one when they became so). */
        size_t klen = xs_engine_key_u64(key, c->item);
        bool lists = c->st.n_top[XS_CLASS_BOUGHT] || c->st.n_top[XS_CLASS_VIEWED];
        if (!(err = xs_sketch_encode(&c->st, b)) &&
            !(err = put(opaque, XS_CF_ITEMS, key, klen, b->data, b->len))) {
            xs_buf_reset(b);
            if (c->st.lists_changed && lists) {
                if (!(err = xs_sketch_lists_encode(&c->st, c->item, b)) &&
                    !(err = put(opaque, XS_CF_NEIGHBOURS, key, klen, b->data, b->len)))
                    c->lists_stored = true;
            } else if (c->st.lists_changed && c->lists_stored) {
                if (!(err = put(opaque, XS_CF_NEIGHBOURS, key, klen, NULL, 0)))
                    c->lists_stored = false;
            }
            if (!err) {
                c->st.lists_changed = false;
                c->dirty_ep = 0;
            }
        }
    } else {
        cached_name_t *n = rec;
        if (!(err = encode_name(n, b)) &&
            !(err = put(opaque, XS_CF_NAMES, key, xs_engine_key_u64(key, n->h), b->data, b->len)))
            n->dirty_ep = 0;
    }
    return err;
}

xs_err_t xs_engine_snapshot_begin(xs_engine_t *e, xs_put_fn put, void *opaque, size_t *n_records,
                                  char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    *n_records = 0;
    if (e->snap_active) {
        xs_err_set(errstr, errstr_size, "snapshot: one is in progress already");
        return XS_ERR_INVALID;
    }
    if (e->dirty_walk && (err = dirty_rebuild(e)) != XS_OK) {
        xs_err_set(errstr, errstr_size, "snapshot: %s", xs_err_str(err));
        return err;
    }
    /* the current vectors become the snapshot's; the epoch moves on */
    for (int m = 0; m < 3; m++) {
        dirty_vec_t t = e->snap[m];
        e->snap[m] = e->dirty[m];
        e->dirty[m] = t;
        e->dirty[m].n = 0;
        e->snap_at[m] = 0;
        *n_records += e->snap[m].n;
    }
    e->snap_ep = e->ep;
    if (++e->ep == 0)
        e->ep = 1; /* after 4 billion checkpoints; no record is older than one epoch */
    e->snap_put = put;
    e->snap_opaque = opaque;
    e->snap_active = *n_records > 0;
    if (e->totals.dirty || e->trending.dirty) { /* the globals, as they are now */
        static const char gk[] = "globals";
        xs_buf_reset(&e->snap_buf);
        if (!(err = encode_meta(e, &e->snap_buf)))
            err = put(opaque, XS_CF_META, gk, sizeof(gk) - 1, e->snap_buf.data, e->snap_buf.len);
        if (err)
            xs_err_set(errstr, errstr_size, "snapshot: %s", xs_err_str(err));
        else
            e->totals.dirty = e->trending.dirty = false;
        ++*n_records;
    }
    return err;
}

xs_err_t xs_engine_snapshot_step(xs_engine_t *e, size_t max, bool *done, char *errstr,
                                 size_t errstr_size)
{
    xs_err_t err = XS_OK;
    size_t n = 0;
    for (int m = 0; m < 3 && e->snap_active; m++) {
        dirty_vec_t *d = &e->snap[m];
        while (e->snap_at[m] < d->n && (!max || n < max)) {
            void *rec = d->v[e->snap_at[m]];
            /* not the snapshot's any more: handed over when an event touched it */
            if (dirty_ep_of(m, rec) == e->snap_ep) {
                if ((err = flush_one(m, rec, e->snap_put, e->snap_opaque, &e->snap_buf))) {
                    xs_err_set(errstr, errstr_size, "snapshot: %s", xs_err_str(err));
                    return err;
                }
                n++;
            }
            e->snap_at[m]++;
        }
        if (e->snap_at[m] < d->n)
            break;
    }
    if (e->snap_active && e->snap_at[DIRTY_NAMES] == e->snap[DIRTY_NAMES].n &&
        e->snap_at[DIRTY_ITEMS] == e->snap[DIRTY_ITEMS].n &&
        e->snap_at[DIRTY_USERS] == e->snap[DIRTY_USERS].n) {
        for (int m = 0; m < 3; m++)
            e->snap[m].n = e->snap_at[m] = 0;
        e->snap_active = false;
    }
    *done = !e->snap_active;
    return err;
}

bool xs_engine_snapshot_active(const xs_engine_t *e)
{
    return e->snap_active;
}

xs_err_t xs_engine_flush(xs_engine_t *e, xs_put_fn put, void *opaque, char *errstr,
                         size_t errstr_size)
{
    size_t n = 0;
    bool done = false;
    xs_err_t err = XS_OK;
    if (e->snap_active) /* finish the one in progress first */
        err = xs_engine_snapshot_step(e, 0, &done, errstr, errstr_size);
    if (!err)
        err = xs_engine_snapshot_begin(e, put, opaque, &n, errstr, errstr_size);
    if (!err)
        err = xs_engine_snapshot_step(e, 0, &done, errstr, errstr_size);
    return err;
}

typedef struct evict_ref {
    uint64_t tick;
    uint64_t key;
    uint8_t map; /* 0 users, 1 items, 2 names */
} evict_ref_t;

static int cmp_evict(const void *a, const void *b)
{
    const evict_ref_t *x = a, *y = b;
    return x->tick < y->tick ? -1 : x->tick > y->tick;
}

void xs_engine_trim(xs_engine_t *e)
{
    if (!e->cache_budget || e->cache_bytes <= e->cache_budget)
        return;
    size_t n = 0, cap = e->users.len + e->items.len + e->names.len;
    evict_ref_t *refs = malloc((cap ? cap : 1) * sizeof(*refs));
    if (!refs)
        return;
    xs_hmap_t *maps[3] = {&e->users, &e->items, &e->names};
    for (int m = 0; m < 3; m++) {
        for (size_t i = 0; i < maps[m]->cap; i++) {
            if (!maps[m]->ents[i].key)
                continue;
            void *v = maps[m]->ents[i].val;
            bool dirty = dirty_ep_of(m, v) != 0;
            uint64_t tick = m == 0   ? ((cached_user_t *)v)->tick
                            : m == 1 ? ((cached_item_t *)v)->tick
                                     : ((cached_name_t *)v)->tick;
            if (!dirty)
                refs[n++] = (evict_ref_t){tick, maps[m]->ents[i].key, (uint8_t)m};
        }
    }
    qsort(refs, n, sizeof(*refs), cmp_evict);
    size_t target = e->cache_budget - e->cache_budget / 10;
    for (size_t i = 0; i < n && e->cache_bytes > target; i++) {
        void *v = xs_hmap_del(maps[refs[i].map], refs[i].key);
        if (refs[i].map == 0) {
            e->cache_bytes -= sizeof(cached_user_t);
            free(v);
        } else if (refs[i].map == 1) {
            e->cache_bytes -= sizeof(cached_item_t);
            free_item(v);
        } else {
            e->cache_bytes -= name_bytes(v);
            free_name(v);
        }
    }
    free(refs);
}

void xs_engine_footprint(xs_engine_t *e, xs_footprint_t *fp)
{
    xs_buf_t b = {0};
    uint64_t ub = 0, ib = 0;
    memset(fp, 0, sizeof(*fp));
    for (size_t i = 0; i < e->users.cap; i++) {
        if (!e->users.ents[i].key || ((cached_user_t *)e->users.ents[i].val)->deleted)
            continue;
        xs_buf_reset(&b);
        xs_profile_encode(&((cached_user_t *)e->users.ents[i].val)->prof, &b);
        fp->users++;
        ub += b.len + 10; /* + key */
        if (b.len + 10 > fp->user_bytes_max)
            fp->user_bytes_max = b.len + 10;
    }
    for (size_t i = 0; i < e->items.cap; i++) {
        if (!e->items.ents[i].key)
            continue;
        const cached_item_t *c = e->items.ents[i].val;
        xs_buf_reset(&b);
        xs_sketch_encode(&c->st, &b);
        size_t keys = 8;
        if (c->st.n_top[XS_CLASS_BOUGHT] || c->st.n_top[XS_CLASS_VIEWED]) {
            xs_sketch_lists_encode(&c->st, c->item, &b); /* its second record */
            keys += 8;
        }
        fp->items++;
        ib += b.len + keys;
        if (b.len + keys > fp->item_bytes_max)
            fp->item_bytes_max = b.len + keys;
        for (int k = 0; c->exact && k < XS_CLASS__COUNT; k++)
            fp->exact_pairs += c->exact[k].len;
    }
    xs_buf_free(&b);
    fp->user_bytes_avg = fp->users ? (double)ub / fp->users : 0;
    fp->item_bytes_avg = fp->items ? (double)ib / fp->items : 0;
}

void xs_engine_drop_cache(xs_engine_t *e)
{
    free_all(e);
    drop_all_deltas(e); /* their events are processed again from the checkpoint */
}
