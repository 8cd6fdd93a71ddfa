/*
 * engine.c — user stage, item stage and scorer over a bounded write-back
 * cache. See include/xsell/engine.h for the design.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"
#include "wire.h"
#include "xsell/hash.h"

#define TREND_CAP 128
#define NOSESS_SLOTS 4096 /* sessions known to have no profile (direct-mapped) */
#define META_VERSION 2
#define W_VIEW 1.0f
#define W_CART 3.0f
#define W_PURCHASE 5.0f

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

typedef struct trend_entry {
    uint64_t item;
    double weight; /* relative to trend_ref */
} trend_entry_t;

typedef struct pair_delta {
    uint64_t a, b; /* b == 0: a count delta for item a */
    uint8_t cls;
} pair_delta_t;

typedef struct candidate {
    uint64_t item;
    double score;
    double bv;    /* bought-together minus viewed-together contributions */
    double prior; /* the popularity prior's part of score */
    double final; /* score after the category boost (rules passed) */
    const cached_item_t *st;
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

typedef struct sim {
    uint64_t item;
    double sim;
} sim_t;

typedef struct ctx_item {
    uint64_t item;
    double w;
    bool bought; /* only a past purchase: the rebuy rule decides, not the context rule */
} ctx_item_t;

/* Query-time rules as hashes (xs_rules_t compiled by xs_engine_recommend_ex). */
typedef struct rules_c {
    uint64_t excl[XS_RULES_MAX], cat[XS_RULES_MAX], xcat[XS_RULES_MAX];
    uint64_t bitem[XS_RULES_MAX], bcat[XS_RULES_MAX];
    int n_excl, n_cat, n_xcat, n_bitem, n_bcat;
    bool has_max_price;
    double max_price;
    double boost;
} rules_c_t;

struct xs_engine {
    xs_params_t params;
    xs_experiment_t experiment;
    bool exact_pairs;
    xs_ss_entry_t *exact_scratch;
    size_t cap_exact_scratch;
    sim_t *sims; /* scorer scratch: one context item's similarities */
    size_t cap_sims;
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

    /* globals (meta "globals") */
    uint64_t users_total, users_bought;
    uint64_t pairs_total[XS_CLASS__COUNT]; /* pairs counted per class, both directions once */
    trend_entry_t trend[TREND_CAP];
    int n_trend;
    int trend_order[TREND_CAP]; /* indexes by weight, descending; kept between lists */
    int n_trend_order;
    int64_t trend_ref;
    bool meta_dirty;

    /* scratch */
    pair_delta_t *deltas;
    size_t n_deltas, cap_deltas;
    candidate_t *cands;
    size_t n_cands, cap_cands;
    /* candidate index: open addressing over positions in cands, valid where
     * cand_gen equals gen (so starting a list clears nothing) */
    uint32_t *cand_pos, *cand_gen;
    size_t cand_slots;
    uint32_t gen;
    heap_ent_t *heap; /* selection scratch, cap_cands each */
    uint32_t *fin;
    xs_buf_t val;

    /* Map keys of session users known to have no profile, so an event with
     * both ids whose session never had one reads no store (join_session). A
     * slot is cleared when get_user() creates that user; all with the cache. */
    uint64_t *nosess;

    xs_engine_stats_t st;
    int64_t rebuy_ms;          /* the longest rebuy window of the base and every arm */
    xs_add_outcome_t outcome;  /* of the last xs_engine_process() */
    const rules_c_t *rules;    /* query-time rules of the list being scored, or NULL */
    int64_t clock;             /* the latest event time processed (in memory) */
    int64_t list_time;         /* the time the catalog's availability windows are judged at */
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

static const char *const cf_names[XS_CF__COUNT] = {"users", "items", "names", "meta"};

const char *xs_cf_name(xs_cf_t cf)
{
    return (cf >= 0 && cf < XS_CF__COUNT) ? cf_names[cf] : "unknown";
}

void xs_params_default(xs_params_t *p)
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

int xs_experiment_arm(const xs_experiment_t *x, const char *user_id)
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
    xs_params_default(&o->params);
    o->cache_bytes = (size_t)256 << 20;
}

size_t xs_key_user(uint8_t out[10], uint16_t partition, uint64_t user)
{
    out[0] = (uint8_t)(partition >> 8);
    out[1] = (uint8_t)partition;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(user >> (56 - 8 * i));
    return 10;
}

size_t xs_key_u64(uint8_t out[8], uint64_t h)
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

static void encode_f64(xs_buf_t *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    xs_wire_u64(b, v);
}

static double decode_f64(xs_wire_reader_t *r)
{
    uint64_t v = xs_wire_get_u64(r);
    double d;
    memcpy(&d, &v, 8);
    return d;
}

static xs_err_t encode_meta(const xs_engine_t *e, xs_buf_t *b)
{
    xs_buf_append_u8(b, 'M');
    xs_buf_append_u8(b, META_VERSION);
    xs_wire_varint(b, e->users_total);
    xs_wire_varint(b, e->users_bought);
    xs_wire_u64(b, (uint64_t)e->trend_ref);
    xs_wire_varint(b, (uint64_t)e->n_trend);
    for (int i = 0; i < e->n_trend; i++) {
        xs_wire_u64(b, e->trend[i].item);
        encode_f64(b, e->trend[i].weight);
    }
    for (int c = 0; c < XS_CLASS__COUNT; c++)
        xs_wire_varint(b, e->pairs_total[c]);
    return b->data ? XS_OK : XS_ERR_NOMEM;
}

static xs_err_t decode_meta(xs_engine_t *e, const uint8_t *p, size_t len, char *errstr,
                            size_t errstr_size)
{
    xs_wire_reader_t r = {p, p + len, false};
    if (len < 2 || p[0] != 'M') {
        xs_errstr_set(errstr, errstr_size, "meta/globals: bad magic");
        return XS_ERR_DECODE;
    }
    if (p[1] > META_VERSION) {
        xs_errstr_set(errstr, errstr_size, "meta/globals: format version %u is newer than %u", p[1],
                      META_VERSION);
        return XS_ERR_VERSION;
    }
    if (p[1] < 2) {
        xs_errstr_set(errstr, errstr_size,
                      "meta/globals: format version %u has no pair totals (version 2 has); "
                      "rebuild the state from the input (--reset-state --yes --from-beginning)",
                      p[1]);
        return XS_ERR_VERSION;
    }
    r.p += 2;
    e->users_total = xs_wire_get_varint(&r);
    e->users_bought = xs_wire_get_varint(&r);
    e->trend_ref = (int64_t)xs_wire_get_u64(&r);
    uint64_t n = xs_wire_get_varint(&r);
    if (n > TREND_CAP)
        r.bad = true;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        e->trend[i].item = xs_wire_get_u64(&r);
        e->trend[i].weight = decode_f64(&r);
    }
    for (int c = 0; c < XS_CLASS__COUNT; c++)
        e->pairs_total[c] = xs_wire_get_varint(&r);
    e->n_trend = r.bad ? 0 : (int)n;
    e->n_trend_order = 0;
    if (r.bad || r.p != r.end) {
        xs_errstr_set(errstr, errstr_size, "meta/globals: corrupt value");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}

/* Decayed SpaceSaving over bought items: weights grow as 2^(t/h) instead of
 * old weights shrinking, rescaled when they get large. */
static void trend_add(xs_engine_t *e, uint64_t item, int64_t now)
{
    const double h = 7 * 24 * 3600e3; /* one-week half-life */
    if (e->n_trend == 0 && e->trend_ref == 0)
        e->trend_ref = now;
    double w = exp2((double)(now - e->trend_ref) / h);
    if (w > 1e12 || w < 1e-12) {
        for (int i = 0; i < e->n_trend; i++)
            e->trend[i].weight /= w;
        e->trend_ref = now;
        w = 1.0;
    }
    int min = -1;
    for (int i = 0; i < e->n_trend; i++) {
        if (e->trend[i].item == item) {
            e->trend[i].weight += w;
            e->meta_dirty = true;
            return;
        }
        if (min < 0 || e->trend[i].weight <= e->trend[min].weight)
            min = i;
    }
    if (e->n_trend < TREND_CAP)
        e->trend[e->n_trend++] = (trend_entry_t){item, w};
    else
        e->trend[min] = (trend_entry_t){item, e->trend[min].weight + w};
    e->meta_dirty = true;
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
    size_t klen = xs_key_user(key, partition, user);
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
            xs_errstr_set(errstr, errstr_size, "users/%u/%016llx: %s", partition,
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
    size_t klen = xs_key_u64(key, item);
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
    c->exact = NULL;
    if (e->exact_pairs && !(c->exact = calloc(XS_CLASS__COUNT, sizeof(xs_hmap_t)))) {
        free(c);
        return XS_ERR_NOMEM;
    }
    if (found) {
        char why[128];
        err = xs_item_decode(&c->st, e->val.data, e->val.len, why, sizeof(why));
        if (err) {
            xs_errstr_set(errstr, errstr_size, "items/%016llx: %s", (unsigned long long)item, why);
            free_item(c);
            return err;
        }
    } else {
        xs_item_init(&c->st);
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
    xs_wire_reader_t r = {p, p + len, false};
    if (len < 2 || p[0] != 'N' || p[1] < 1 || p[1] > 3)
        return XS_ERR_DECODE;
    r.p += 2;
    char **dst[2] = {&n->id, &n->title};
    for (int i = 0; i < 2; i++) {
        uint64_t l = xs_wire_get_varint(&r);
        if (r.bad || l > (uint64_t)(r.end - r.p))
            return XS_ERR_DECODE;
        if (i == 0 || l > 0) {
            *dst[i] = xs_strndup((const char *)r.p, (size_t)l);
            if (!*dst[i])
                return XS_ERR_NOMEM;
        }
        r.p += l;
    }
    if (p[1] >= 2)
        n->family = xs_wire_get_u64(&r);
    if (p[1] >= 3) {
        uint8_t flags = xs_wire_get_u8(&r);
        if ((n->has_price = flags & 1))
            n->price = decode_f64(&r);
        if ((n->has_from = flags & 2))
            n->avail_from = (int64_t)xs_wire_get_u64(&r);
        if ((n->has_until = flags & 4))
            n->avail_until = (int64_t)xs_wire_get_u64(&r);
        if (flags & ~7)
            return XS_ERR_DECODE;
    }
    return !r.bad && r.p == r.end ? XS_OK : XS_ERR_DECODE;
}

static xs_err_t encode_name(const cached_name_t *n, xs_buf_t *b)
{
    size_t il = strlen(n->id), tl = n->title ? strlen(n->title) : 0;
    xs_buf_append_u8(b, 'N');
    xs_buf_append_u8(b, 3);
    xs_wire_varint(b, il);
    xs_buf_append(b, n->id, il);
    xs_wire_varint(b, tl);
    if (tl)
        xs_buf_append(b, n->title, tl);
    xs_wire_u64(b, n->family);
    xs_buf_append_u8(
        b, (uint8_t)((n->has_price ? 1 : 0) | (n->has_from ? 2 : 0) | (n->has_until ? 4 : 0)));
    if (n->has_price)
        encode_f64(b, n->price);
    if (n->has_from)
        xs_wire_u64(b, (uint64_t)n->avail_from);
    if (n->has_until)
        xs_wire_u64(b, (uint64_t)n->avail_until);
    return b->data ? XS_OK : XS_ERR_NOMEM;
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
    size_t klen = xs_key_u64(key, h);
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
            xs_errstr_set(errstr, errstr_size, "names/%016llx: corrupt value",
                          (unsigned long long)h);
            free_name(n);
            return err;
        }
    } else {
        n->id = xs_strdup(id);
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

/* ---- lifecycle ---------------------------------------------------------------------- */

xs_engine_t *xs_engine_new(const xs_engine_opts_t *opts, char *errstr, size_t errstr_size)
{
    xs_engine_t *e = calloc(1, sizeof(*e));
    if (!e) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    e->params = opts->params;
    e->ep = 1;
    if (opts->experiment)
        e->experiment = *opts->experiment;
    if (e->experiment.n_arms < 0 || e->experiment.n_arms > XS_MAX_ARMS) {
        xs_errstr_set(errstr, errstr_size, "experiment: 0..%d arms", XS_MAX_ARMS);
        free(e);
        return NULL;
    }
    e->exact_pairs = opts->exact_pairs;
    if (opts->backend) {
        e->backend = *opts->backend;
        e->has_backend = true;
    }
    e->cache_budget = opts->cache_bytes;
    e->model_name = xs_strdup(opts->model_name ? opts->model_name : "xsell-cooc");
    e->model_version = xs_strdup(opts->model_version ? opts->model_version : "1");
    if (!e->model_name || !e->model_version) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        xs_engine_destroy(e);
        return NULL;
    }
    if (e->params.kmax < 1 || e->params.kmax > XS_PROFILE_MAX_ITEMS) {
        xs_errstr_set(errstr, errstr_size, "kmax must be within 1..%d", XS_PROFILE_MAX_ITEMS);
        xs_engine_destroy(e);
        return NULL;
    }
    /* Purchases evicted from a profile are kept for the longest window any arm applies. */
    double rebuy_days = e->params.rebuy_days;
    for (int a = 0; a < e->experiment.n_arms; a++)
        if (e->experiment.arms[a].params.rebuy_days > rebuy_days)
            rebuy_days = e->experiment.arms[a].params.rebuy_days;
    if (!(rebuy_days >= 0 && rebuy_days * 86400e3 < (double)XS_PROFILE_HORIZON_MS)) {
        xs_errstr_set(errstr, errstr_size, "rebuy_days must be within 0..%.0f",
                      (double)XS_PROFILE_HORIZON_MS / 86400e3);
        xs_engine_destroy(e);
        return NULL;
    }
    e->rebuy_ms = (int64_t)ceil(rebuy_days * 86400e3);
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
    free(e->deltas);
    free(e->cands);
    free(e->cand_pos);
    free(e->cand_gen);
    free(e->heap);
    free(e->fin);
    free(e->exact_scratch);
    free(e->sims);
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
    st->users_total = e->users_total;
    st->users_bought = e->users_bought;
    /* unknown after a failed allocation: over any bound, so a checkpoint comes */
    st->dirty_bytes = e->dirty_walk ? SIZE_MAX
                                    : e->dirty[DIRTY_USERS].n * sizeof(cached_user_t) +
                                          e->dirty[DIRTY_ITEMS].n * sizeof(cached_item_t);
}

/* ---- user stage ---------------------------------------------------------------------- */

static xs_err_t push_delta(xs_engine_t *e, uint64_t a, uint64_t b, xs_class_t cls)
{
    if (e->n_deltas == e->cap_deltas) {
        size_t cap = e->cap_deltas ? e->cap_deltas * 2 : 256;
        pair_delta_t *d = realloc(e->deltas, cap * sizeof(*d));
        if (!d)
            return XS_ERR_NOMEM;
        e->deltas = d;
        e->cap_deltas = cap;
    }
    e->deltas[e->n_deltas++] = (pair_delta_t){a, b, (uint8_t)cls};
    return XS_OK;
}

/*
 * Applies one item interaction to the profile and emits pair deltas: the
 * window is computed before the touch, so j pairs with what came before it.
 */
static xs_err_t user_touch(xs_engine_t *e, xs_profile_t *p, uint64_t j, xs_signal_t sig,
                           float weight, int64_t now)
{
    const xs_params_t *P = &e->params;
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
            for (; k > 0 && (x.ts > win[k - 1].ts ||
                             (x.ts == win[k - 1].ts && x.item < win[k - 1].item));
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
    xs_signal_t prev = xs_profile_touch(p, j, sig, weight, now, hl, e->rebuy_ms);
    xs_err_t err = XS_OK;
    if (prev == XS_SIG_NONE) {
        err = push_delta(e, j, 0, XS_CLASS_VIEWED);
        for (int i = 0; i < n_win && !err; i++)
            err = push_delta(e, w_items[i], j, XS_CLASS_VIEWED);
    }
    if (!err && prev < XS_SIG_CART && sig >= XS_SIG_CART) {
        err = push_delta(e, j, 0, XS_CLASS_BOUGHT);
        for (int i = 0; i < n_win && !err; i++)
            if (w_sig[i] >= XS_SIG_CART)
                err = push_delta(e, w_items[i], j, XS_CLASS_BOUGHT);
        if (!was_bought_user) {
            e->users_bought++;
            e->meta_dirty = true;
        }
    }
    return err;
}

/* ---- item stage ------------------------------------------------------------------------ */

static xs_err_t exact_add(xs_hmap_t *m, uint64_t other)
{
    uintptr_t c = (uintptr_t)xs_hmap_get(m, other);
    return xs_hmap_put(m, other, (void *)(c + 1));
}

/* The co-occurrence entries of an item and class: the sketch, or in reference
 * mode the exact counts copied into scratch (err = 0). */
static const xs_ss_entry_t *pairs_of(xs_engine_t *e, const cached_item_t *ci, int cls, int *n)
{
    if (!e->exact_pairs) {
        *n = ci->st.n_pairs[cls];
        return xs_item_pairs_const(&ci->st, (xs_class_t)cls);
    }
    const xs_hmap_t *m = &ci->exact[cls];
    if (m->len > e->cap_exact_scratch) {
        xs_ss_entry_t *s = realloc(e->exact_scratch, m->len * sizeof(*s));
        if (!s) {
            *n = 0;
            return NULL;
        }
        e->exact_scratch = s;
        e->cap_exact_scratch = m->len;
    }
    int k = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->ents[i].key)
            e->exact_scratch[k++] = (xs_ss_entry_t){m->ents[i].key, (uint32_t)(uintptr_t)m->ents[i].val, 0};
    *n = k;
    return e->exact_scratch;
}

/* The pair table's total for a class: every pair counted in both items. */
static double pair_n(const xs_engine_t *e, int cls)
{
    return 2.0 * (double)e->pairs_total[cls];
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
static uint32_t support_min(const xs_params_t *P, uint64_t pairs, int partners)
{
    if (P->min_support > 0)
        return (uint32_t)P->min_support;
    return partners > 0 && partners < SUPPORT_FEW_PARTNERS && pairs >= 2 * (uint64_t)partners
               ? 2
               : 1;
}

/* Similarity of a sketch entry of item i (n_i pairs) with n_j, n_all. */
static double entry_sim(const xs_params_t *P, uint32_t min_sup, const xs_ss_entry_t *en,
                        double n_i, double n_j, double n_all)
{
    uint32_t cnt = en->count - en->err; /* guaranteed lower bound */
    if (cnt < min_sup)
        return 0;
    return xs_similarity(P->similarity, cnt, n_i, n_j, n_all, P->llr_min);
}

/* Re-ranks the entry at idx of it's list after a co-occurrence with j. */
static void top_update(const xs_engine_t *e, xs_item_t *it, xs_class_t cls, int idx, double n_j,
                       double n_all)
{
    const xs_ss_entry_t *en = &xs_item_pairs_const(it, cls)[idx];
    uint64_t n_i = xs_item_pair_total(it, cls);
    xs_item_top_set(it, cls, idx,
                    entry_sim(&e->params, support_min(&e->params, n_i, it->n_pairs[cls]), en,
                              (double)n_i, n_j, n_all));
}

/* Similarity of a sketch entry of it (of `partners` entries) with the
 * neighbour's current pair total (the entry's count when the neighbour is
 * unknown). */
static xs_err_t current_sim(xs_engine_t *e, const xs_params_t *P, const xs_item_t *it,
                            xs_class_t cls, int partners, const xs_ss_entry_t *en, double n_all,
                            double *sim, char *errstr, size_t errstr_size)
{
    cached_item_t *cj = NULL;
    xs_err_t err = get_item(e, en->item, false, &cj, errstr, errstr_size);
    if (err)
        return err;
    double n_j = cj ? (double)xs_item_pair_total(&cj->st, cls) : en->count - en->err;
    uint64_t n_i = xs_item_pair_total(it, cls);
    *sim = entry_sim(P, support_min(P, n_i, partners), en, (double)n_i, n_j, n_all);
    return XS_OK;
}

/* Re-scores the sketch entry at the item's sweep cursor (other than `skip`,
 * just scored) with its neighbour's current count, and advances the cursor. */
static xs_err_t sweep_one(xs_engine_t *e, xs_item_t *it, xs_class_t cls, int skip, double n_all,
                          char *errstr, size_t errstr_size)
{
    int n = it->n_pairs[cls], pos = it->sweep[cls];
    if (pos >= n)
        pos = 0;
    if (pos == skip && ++pos >= n)
        pos = 0;
    it->sweep[cls] = (uint8_t)(pos + 1 < n ? pos + 1 : 0);
    if (pos == skip)
        return XS_OK;
    const xs_ss_entry_t *en = &xs_item_pairs_const(it, cls)[pos];
    double sim = 0;
    xs_err_t err =
        current_sim(e, &e->params, it, cls, n, en, n_all, &sim, errstr, errstr_size);
    if (!err)
        xs_item_top_set(it, cls, pos, sim);
    return err;
}

/* Lists ranked whole last with fewer than half the users of now (or never). */
static bool lists_stale(const xs_engine_t *e, const cached_item_t *c)
{
    return e->pairs_total[0] + e->pairs_total[1] > 2 * c->st.scored_at;
}

/*
 * Ranks an item's lists anew from its whole sketch and the current counts of
 * its neighbours (sketch.h, "Neighbour lists").
 */
static xs_err_t rescore_all(xs_engine_t *e, cached_item_t *c, char *errstr, size_t errstr_size)
{
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        const xs_ss_entry_t *en = xs_item_pairs_const(&c->st, (xs_class_t)cls);
        double n_all = pair_n(e, cls);
        xs_item_top_clear(&c->st, (xs_class_t)cls);
        for (int k = 0; k < c->st.n_pairs[cls]; k++) {
            double sim = 0;
            xs_err_t err = current_sim(e, &e->params, &c->st, (xs_class_t)cls,
                                       c->st.n_pairs[cls], &en[k], n_all, &sim, errstr,
                                       errstr_size);
            if (err)
                return err;
            xs_item_top_set(&c->st, (xs_class_t)cls, k, sim);
        }
    }
    c->st.scored_at = e->pairs_total[0] + e->pairs_total[1];
    item_dirty(e, c);
    return XS_OK;
}

static xs_err_t item_stage(xs_engine_t *e, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    for (size_t k = 0; k < e->n_deltas && !err; k++) {
        const pair_delta_t *d = &e->deltas[k];
        cached_item_t *a = NULL, *b = NULL;
        if ((err = get_item(e, d->a, true, &a, errstr, errstr_size)) != XS_OK)
            break;
        if (!d->b) {
            if (a->st.n_users[d->cls] < UINT32_MAX)
                a->st.n_users[d->cls]++;
            item_dirty(e, a);
            continue;
        }
        if ((err = get_item(e, d->b, true, &b, errstr, errstr_size)) != XS_OK)
            break;
        if (e->exact_pairs) {
            if ((err = exact_add(&a->exact[d->cls], d->b)) ||
                (err = exact_add(&b->exact[d->cls], d->a)))
                break;
            a->st.pair_total[d->cls]++; /* the same marginals, exactly */
            b->st.pair_total[d->cls]++;
            e->pairs_total[d->cls]++;
            e->meta_dirty = true;
        } else {
            xs_class_t cls = (xs_class_t)d->cls;
            if ((lists_stale(e, a) && (err = rescore_all(e, a, errstr, errstr_size))) ||
                (lists_stale(e, b) && (err = rescore_all(e, b, errstr, errstr_size))))
                break;
            int ia = xs_item_add_pair(&a->st, cls, d->b);
            int ib = xs_item_add_pair(&b->st, cls, d->a);
            e->pairs_total[cls]++;
            e->meta_dirty = true;
            double n_all = pair_n(e, cls);
            if (ia >= 0)
                top_update(e, &a->st, cls, ia, (double)xs_item_pair_total(&b->st, cls), n_all);
            if (ib >= 0)
                top_update(e, &b->st, cls, ib, (double)xs_item_pair_total(&a->st, cls), n_all);
            if ((err = sweep_one(e, &a->st, cls, ia, n_all, errstr, errstr_size)) ||
                (err = sweep_one(e, &b->st, cls, ib, n_all, errstr, errstr_size)))
                break;
        }
        item_dirty(e, a);
        item_dirty(e, b);
        e->st.pair_updates++;
    }
    e->n_deltas = 0;
    return err;
}

/* ---- scorer ---------------------------------------------------------------------------- */

static void ctx_add_kind(ctx_item_t *ctx, int *n, int cap, uint64_t item, double w, bool bought)
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
        ctx[(*n)++] = (ctx_item_t){item, w, bought};
}

static void ctx_add(ctx_item_t *ctx, int *n, int cap, uint64_t item, double w)
{
    ctx_add_kind(ctx, n, cap, item, w, false);
}

static int cmp_ctx(const void *a, const void *b)
{
    const ctx_item_t *x = a, *y = b;
    if (x->w != y->w)
        return x->w > y->w ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Makes room for n candidates: the array, the selection scratch and an
 * index of at least 2n slots; starts a new generation of the index. */
static xs_err_t cand_begin(xs_engine_t *e, size_t n)
{
    if (n > e->cap_cands) {
        size_t cap = e->cap_cands ? e->cap_cands : 256;
        while (cap < n)
            cap *= 2;
        candidate_t *c = realloc(e->cands, cap * sizeof(*c));
        if (c)
            e->cands = c;
        heap_ent_t *h = realloc(e->heap, cap * sizeof(*h));
        if (h)
            e->heap = h;
        uint32_t *f = realloc(e->fin, cap * sizeof(*f));
        if (f)
            e->fin = f;
        if (!c || !h || !f)
            return XS_ERR_NOMEM;
        e->cap_cands = cap;
    }
    if (e->cand_slots < 2 * e->cap_cands) {
        size_t slots = 2 * e->cap_cands;
        uint32_t *pos = malloc(slots * sizeof(*pos)), *gen = calloc(slots, sizeof(*gen));
        if (!pos || !gen) {
            free(pos);
            free(gen);
            return XS_ERR_NOMEM;
        }
        free(e->cand_pos);
        free(e->cand_gen);
        e->cand_pos = pos;
        e->cand_gen = gen;
        e->cand_slots = slots;
        e->gen = 0;
    }
    if (++e->gen == 0) { /* wrapped: forget every slot */
        memset(e->cand_gen, 0, e->cand_slots * sizeof(*e->cand_gen));
        e->gen = 1;
    }
    e->n_cands = 0;
    return XS_OK;
}

/* The candidate of item, added when new (cand_begin reserved the room). */
static candidate_t *cand_get(xs_engine_t *e, uint64_t item)
{
    size_t mask = e->cand_slots - 1;
    for (size_t i = (size_t)((item * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & mask;;
         i = (i + 1) & mask) {
        if (e->cand_gen[i] != e->gen) {
            candidate_t *c = &e->cands[e->n_cands];
            c->item = item;
            c->score = c->bv = c->prior = 0;
            c->family = 0;
            c->n_because = 0;
            e->cand_gen[i] = e->gen;
            e->cand_pos[i] = (uint32_t)e->n_cands++;
            return c;
        }
        candidate_t *c = &e->cands[e->cand_pos[i]];
        if (c->item == item)
            return c;
    }
}

/* The trending entries by weight, descending: the previous order, extended
 * by new entries, then insertion-sorted: nearly sorted already, so this is
 * about linear. The order is total (items are distinct), so the result does
 * not depend on the start. */
static const int *trend_sort(xs_engine_t *e)
{
    int *order = e->trend_order;
    for (int i = e->n_trend_order; i < e->n_trend; i++)
        order[i] = i;
    e->n_trend_order = e->n_trend;
    for (int i = 1; i < e->n_trend; i++)
        for (int k = i; k > 0; k--) {
            const trend_entry_t *a = &e->trend[order[k]], *b = &e->trend[order[k - 1]];
            if (a->weight > b->weight || (a->weight == b->weight && a->item < b->item)) {
                int t = order[k];
                order[k] = order[k - 1];
                order[k - 1] = t;
            } else {
                break;
            }
        }
    return order;
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
static void because_add(candidate_t *c, int ctx, float w)
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
            bool before = c->because_w[k] > c->because_w[k - 1] ||
                          (c->because_w[k] == c->because_w[k - 1] &&
                           c->because[k] < c->because[k - 1]);
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
static inline void cand_add(xs_engine_t *e, uint64_t item, double contrib, int cls, int ctx)
{
    candidate_t *cd = cand_get(e, item);
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
static bool allowed(const xs_params_t *P, const xs_profile_t *p, const ctx_item_t *ctx, int n_ctx,
                    uint64_t item, const cached_item_t *st, int64_t now)
{
    if (st && (st->st.flags & (XS_ITEM_F_OUT_OF_STOCK | XS_ITEM_F_DELETED)))
        return false;
    for (int i = 0; i < n_ctx; i++)
        if (ctx[i].item == item && !ctx[i].bought)
            return false;
    if (!p)
        return true;
    if (xs_profile_in_cart(p, item))
        return false;
    if (!(st && (st->st.flags & XS_ITEM_F_REPURCHASABLE)) &&
        xs_profile_bought_within(p, item, now, (int64_t)ceil(P->rebuy_days * 86400e3)))
        return false;
    return true;
}

/* The item's product family (ItemUpdate.family hash), 0 when none is known. */
static xs_err_t family_of(xs_engine_t *e, uint64_t item, uint64_t *fam, char *errstr,
                          size_t errstr_size)
{
    cached_name_t *n = NULL;
    xs_err_t err = get_name(e, item, NULL, &n, errstr, errstr_size);
    *fam = n ? n->family : 0;
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
    *dst = xs_strdup(s ? s : "");
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

static bool hash_in(const uint64_t *v, int n, uint64_t h)
{
    for (int k = 0; k < n; k++)
        if (v[k] == h)
            return true;
    return false;
}

/* The query-time rules (e->rules, NULL: none) for a candidate that passed
 * allowed(): *pass, and *factor the boost of its final score. */
static xs_err_t rules_check(xs_engine_t *e, uint64_t item, const cached_item_t *st, bool *pass,
                            double *factor, char *errstr, size_t errstr_size)
{
    const rules_c_t *R = e->rules;
    uint64_t cat = st ? st->st.category : 0;
    *pass = true;
    *factor = 1.0;
    if (!R)
        return XS_OK;
    if (hash_in(R->excl, R->n_excl, item) || (R->n_cat && !hash_in(R->cat, R->n_cat, cat)) ||
        (cat && hash_in(R->xcat, R->n_xcat, cat))) {
        *pass = false;
        return XS_OK;
    }
    if (R->has_max_price) {
        cached_name_t *n = NULL;
        xs_err_t err = get_name(e, item, NULL, &n, errstr, errstr_size);
        if (err)
            return err;
        if (!n || !n->has_price || !(n->price <= R->max_price)) {
            *pass = false;
            return XS_OK;
        }
    }
    if (hash_in(R->bitem, R->n_bitem, item) || (cat && hash_in(R->bcat, R->n_bcat, cat)))
        *factor = R->boost;
    return XS_OK;
}

/* Whether the catalog's availability window (ItemUpdate.available_from /
 * available_until) admits item at e->list_time: from <= t < until. */
static xs_err_t window_check(xs_engine_t *e, uint64_t item, bool *ok, char *errstr,
                             size_t errstr_size)
{
    cached_name_t *n = NULL;
    *ok = true;
    xs_err_t err = get_name(e, item, NULL, &n, errstr, errstr_size);
    if (err || !n)
        return err;
    int64_t t = e->list_time;
    *ok = !(n->has_from && t < n->avail_from) && !(n->has_until && t >= n->avail_until);
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

/*
 * The scorer. ctx holds the trigger items already (weight w_trigger); the
 * profile adds cart, purchases and views. Fills list->items. With refresh
 * (event processing, never queries), context items whose lists are stale
 * are ranked anew and stored.
 */
static xs_err_t score(xs_engine_t *e, const xs_params_t *P, const xs_profile_t *p, ctx_item_t *ctx,
                      int n_ctx, xs_placement_t placement, int n_want, int64_t now, bool refresh,
                      xs_list_t *list, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    const int ctx_cap = 64;
    double hl = P->half_life_hours * 3600e3;
    /* Placements that want complements (CART, CHECKOUT, POST_PURCHASE) show
     * nothing of the families of the trigger items and the cart lines: a
     * colour variant of what is in the cart is a substitute, not a
     * complement. PRODUCT_PAGE may (the shopper is still choosing). */
    uint64_t xfam[64 + XS_PROFILE_MAX_CART];
    int n_xfam = 0;
    if (P->family_exclude && placement != XS_PLACEMENT_PRODUCT_PAGE) {
        for (int i = 0; i < n_ctx + (p ? p->n_cart : 0); i++) {
            uint64_t f = 0;
            if ((err = family_of(e, i < n_ctx ? ctx[i].item : p->cart[i - n_ctx].item, &f,
                                 errstr, errstr_size)) != XS_OK)
                return err;
            if (f && !family_in(xfam, n_xfam, f))
                xfam[n_xfam++] = f;
        }
    }
    if (p) {
        for (int i = 0; i < p->n_cart; i++)
            ctx_add(ctx, &n_ctx, ctx_cap, p->cart[i].item, P->w_cart);
        for (int i = 0; i < p->n_items; i++) {
            const xs_profile_item_t *it = &p->items[i];
            double w = it->bought_ts ? P->w_purchase * xs_profile_decay(1, it->bought_ts, now, hl)
                                     : P->w_view * xs_profile_decay(1, it->ts, now, hl);
            ctx_add_kind(ctx, &n_ctx, ctx_cap, it->item, w, it->bought_ts != 0);
        }
    }
    /* insertion sort (small n; items are distinct, so the order is total) */
    for (int i = 1; i < n_ctx; i++) {
        ctx_item_t t = ctx[i];
        int k = i;
        for (; k > 0 && cmp_ctx(&t, &ctx[k - 1]) < 0; k--)
            ctx[k] = ctx[k - 1];
        ctx[k] = t;
    }
    int n_use = n_ctx < P->max_context ? n_ctx : P->max_context;

    /* Neighbours: the items' lists (built by the item stage with the
     * learning parameters), or, for an arm that ranks differently and in
     * reference mode, every sketch entry ranked now. */
    const xs_params_t *LP = &e->params;
    bool lists = !e->exact_pairs && P->similarity == LP->similarity &&
                 P->llr_min == LP->llr_min && P->min_support == LP->min_support;
    cached_item_t *cis[64];
    size_t bound = 0;
    if (!P->popularity_only) {
        for (int c = 0; c < n_use; c++) {
            if ((err = get_item(e, ctx[c].item, false, &cis[c], errstr, errstr_size)) != XS_OK)
                return err;
            if (!cis[c])
                continue;
            if (lists && refresh && lists_stale(e, cis[c]) &&
                (err = rescore_all(e, cis[c], errstr, errstr_size)) != XS_OK)
                return err;
            for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
                int n = 0;
                if (lists)
                    xs_item_top(&cis[c]->st, (xs_class_t)cls, &n);
                else
                    pairs_of(e, cis[c], cls, &n);
                bound += (size_t)n;
            }
        }
    }
    if ((err = cand_begin(e, bound + (size_t)e->n_trend + 1)) != XS_OK)
        return err;
    for (int c = 0; c < n_use && !P->popularity_only; c++) {
        cached_item_t *ci = cis[c];
        if (!ci)
            continue;
        if (c + 1 < n_use && cis[c + 1]) { /* start loading the next item's lists */
            for (int q = 0; q < 8; q++) {
                __builtin_prefetch(&cis[c + 1]->st.top_bought[q * 4]);
                __builtin_prefetch(&cis[c + 1]->st.top_viewed[q * 4]);
            }
        }
        for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
            double cw = ctx[c].w * (cls == XS_CLASS_VIEWED ? P->viewed_weight : 1.0);
            if (cw <= 0)
                continue;
            if (lists) {
                int nt = 0;
                const xs_top_t *t = xs_item_top(&ci->st, (xs_class_t)cls, &nt);
                double max_sim = 0;
                if (P->normalize)
                    for (int k = 0; k < nt; k++)
                        max_sim = t[k].sim > max_sim ? t[k].sim : max_sim;
                double scale = max_sim > 0 ? cw / max_sim : cw;
                for (int k = 0; k < nt; k++) {
                    if (k + 8 < nt)
                        __builtin_prefetch(&t[k + 8]); /* a few lines ahead */
                    cand_add(e, t[k].item, scale * t[k].sim, cls, c);
                }
                continue;
            }
            int n_en = 0, n_sim = 0;
            double max_sim = 0;
            const xs_ss_entry_t *en = pairs_of(e, ci, cls, &n_en);
            double n_all = pair_n(e, cls);
            if ((size_t)n_en > e->cap_sims) {
                sim_t *v = realloc(e->sims, (size_t)n_en * sizeof(*v));
                if (!v)
                    return XS_ERR_NOMEM;
                e->sims = v;
                e->cap_sims = (size_t)n_en;
            }
            uint32_t min_sup = support_min(P, xs_item_pair_total(&ci->st, cls), n_en);
            for (int k = 0; k < n_en; k++) {
                if (en[k].count - en[k].err < min_sup)
                    continue;
                double sim = 0;
                if ((err = current_sim(e, P, &ci->st, (xs_class_t)cls, n_en, &en[k], n_all, &sim,
                                       errstr, errstr_size)) != XS_OK)
                    return err;
                if (sim <= 0)
                    continue;
                e->sims[n_sim++] = (sim_t){en[k].item, sim};
                if (sim > max_sim)
                    max_sim = sim;
            }
            double scale = P->normalize && max_sim > 0 ? cw / max_sim : cw;
            for (int k = 0; k < n_sim; k++)
                cand_add(e, e->sims[k].item, scale * e->sims[k].sim, cls, c);
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
    if (P->popularity_prior > 0 && e->n_cands > 0 && e->n_trend == TREND_CAP) {
        double best = 0, top = 0, all = 0, head = 0;
        for (size_t i = 0; i < e->n_cands; i++)
            best = e->cands[i].score > best ? e->cands[i].score : best;
        const int *order = trend_sort(e);
        for (int i = 0; i < e->n_trend; i++) {
            all += e->trend[order[i]].weight;
            head += i < 10 ? e->trend[order[i]].weight : 0;
        }
        top = e->trend[order[0]].weight;
        double share = all > 0 ? head / all : 0;
        double odds = share < 0.5 ? share / (1 - share) : 1.0;
        best *= odds * odds;
        for (int i = 0; i < e->n_trend && best > 0 && top > 0; i++) {
            candidate_t *cd = cand_get(e, e->trend[i].item);
            double w = P->popularity_prior * best * e->trend[i].weight / top;
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
            double s = xs_profile_decay(p->cats[i].score, p->cats[i].ts, now, hl);
            if (s > max_cat)
                max_cat = s;
        }
    double bmax = max_cat > 0 && P->category_boost > 0 ? P->category_boost : 0;
    double reach = (1.0 + bmax) * (1.0 + 1e-9);
    if (e->rules && e->rules->boost > 1)
        reach *= e->rules->boost; /* a boosted candidate may overtake the picks */
    candidate_t *cand = e->cands;
    heap_ent_t *buf = e->heap, prev = {0, 0, 0};
    const size_t batch = (size_t)n_want + 8; /* <= 28 <= cap_cands */
    uint32_t *fin = e->fin;
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
            for (size_t i = 0; i < e->n_cands; i++) {
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
        cached_item_t *st = NULL;
        if ((err = get_item(e, cd->item, false, &st, errstr, errstr_size)) != XS_OK)
            return err;
        if (!allowed(P, p, ctx, n_ctx, cd->item, st, now))
            continue;
        bool pass = true;
        double rule_factor = 1.0;
        if ((err = rules_check(e, cd->item, st, &pass, &rule_factor, errstr, errstr_size)) ||
            (pass && (err = window_check(e, cd->item, &pass, errstr, errstr_size))))
            return err;
        if (!pass)
            continue;
        if ((n_xfam || P->family_cap > 0) &&
            (err = family_of(e, cd->item, &cd->family, errstr, errstr_size)) != XS_OK)
            return err;
        if (family_in(xfam, n_xfam, cd->family))
            continue;
        cd->final = cd->score;
        if (st && st->st.category && max_cat > 0 && P->category_boost > 0) {
            for (int k = 0; k < p->n_cats; k++)
                if (p->cats[k].cat == st->st.category)
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
            uint64_t cat = f->st ? f->st->st.category : 0;
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
        const cached_item_t *st = cd->st; /* looked up by the rules above */
        uint64_t cat = st ? st->st.category : 0;
        if (category_full(P, cats, n_out, cat) || family_full(P, fams, n_out, cd->family))
            continue;
        fams[n_out] = cd->family;
        xs_rec_t *r = &list->items[n_out];
        if ((err = name_of(e, cd->item, &r->item_id, errstr, errstr_size)) != XS_OK)
            return err;
        list->n_items = ++n_out;
        cats[n_out - 1] = cat;
        r->score = cd->final;
        r->source = cd->prior * 2 > cd->score ? XS_SOURCE_TRENDING
                    : cd->bv >= 0           ? XS_SOURCE_BOUGHT_TOGETHER
                                            : XS_SOURCE_VIEWED_TOGETHER;
        because_sort(cd);
        for (int k = 0; k < cd->n_because; k++) {
            if ((err = name_of(e, ctx[cd->because[k]].item, &r->because_of[k], errstr,
                               errstr_size)))
                return err;
            r->n_because = k + 1;
        }
    }
    e->n_cands = 0;

    /* Trending backfill (cold start, thin signal, control arm). */
    if (n_out < n_want && (P->trending_backfill || P->popularity_only) && e->n_trend > 0) {
        const int *order = trend_sort(e);
        double top = e->trend[order[0]].weight;
        for (int i = 0; i < e->n_trend && n_out < n_want; i++) {
            const trend_entry_t *t = &e->trend[order[i]];
            bool dup = false;
            char *tmp = NULL;
            cached_item_t *st = NULL;
            if ((err = get_item(e, t->item, false, &st, errstr, errstr_size)) != XS_OK)
                return err;
            if (!allowed(P, p, ctx, n_ctx, t->item, st, now))
                continue;
            bool pass = true;
            double rule_factor = 1.0;
            if ((err = rules_check(e, t->item, st, &pass, &rule_factor, errstr, errstr_size)) ||
                (pass && (err = window_check(e, t->item, &pass, errstr, errstr_size))))
                return err;
            if (!pass)
                continue;
            uint64_t fam = 0;
            if ((n_xfam || P->family_cap > 0) &&
                (err = family_of(e, t->item, &fam, errstr, errstr_size)) != XS_OK)
                return err;
            if (family_in(xfam, n_xfam, fam))
                continue;
            if ((err = name_of(e, t->item, &tmp, errstr, errstr_size)) != XS_OK)
                return err;
            for (int k = 0; k < n_out && !dup; k++)
                dup = strcmp(list->items[k].item_id, tmp) == 0;
            uint64_t cat = st ? st->st.category : 0;
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
    xs_buf_append_str(&idb, xs_placement_name(placement));
    if (!idb.data)
        return XS_ERR_NOMEM;
    xs_hash128_hex(idb.data, idb.len, list->list_id);
    xs_buf_free(&idb);
    list->generated_at = ev->ts;
    list->placement = placement;
    err |= set_str(&list->user_id, ev->user_id);
    err |= set_str(&list->trigger_event_id, ev->event_id);
    err |= set_str(&list->trigger_type, ev->kind == XS_KIND_CLICK
                                            ? xs_click_type_name((xs_click_type_t)ev->type)
                                            : xs_cart_type_name((xs_cart_type_t)ev->type));
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
        char *t = xs_strdup(ev->title);
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
                             cached_user_t *u, char *errstr, size_t errstr_size)
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
    bool both_bought = (u->prof.flags & s->prof.flags & XS_PROFILE_F_BOUGHT) != 0;
    xs_profile_merge(&u->prof, &s->prof, e->params.half_life_hours * 3600e3, e->rebuy_ms);
    s->deleted = true;
    xs_profile_init(&s->prof);
    user_dirty(e, s);
    if (e->users_total)
        e->users_total--;
    if (both_bought && e->users_bought)
        e->users_bought--;
    e->meta_dirty = true;
    e->st.sessions_joined++;
    return XS_OK;
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

    const xs_params_t *P = &e->params; /* learning parameters */
    double hl = P->half_life_hours * 3600e3;
    int arm = e->experiment.n_arms > 0 ? xs_experiment_arm(&e->experiment, ev->user_id) : -1;
    const xs_params_t *SP = arm >= 0 ? &e->experiment.arms[arm].params : P; /* scoring */
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
    if (is_new) {
        e->users_total++;
        e->meta_dirty = true;
    }
    if (ev->session_id && (err = join_session(e, partition, ev, u, errstr, errstr_size)))
        return err;
    int64_t now = ev->ts > p->last_ts ? ev->ts : p->last_ts;
    p->last_ts = now;
    xs_profile_forget(p, e->rebuy_ms);
    if (p->n_events < UINT32_MAX)
        p->n_events++;
    e->outcome.arm = arm;

    /* --- user stage --- */
    ctx_item_t ctx[64];
    int n_ctx = 0;
    bool trigger = false;
    xs_placement_t placement = XS_PLACEMENT_CART;
    e->n_deltas = 0;
    if (ev->kind == XS_KIND_CLICK) {
        e->st.clicks++;
        uint64_t cat = xs_hash_str(ev->category);
        if (cat) {
            xs_profile_touch_cat(p, cat, W_VIEW, now, hl);
            if ((err = remember_name(e, cat, ev->category, errstr, errstr_size)))
                return err;
        }
        if (ev->item_id &&
            (ev->type == XS_CLICK_PRODUCT_VIEW || ev->type == XS_CLICK_RECOMMENDATION_CLICK)) {
            uint64_t j = xs_hash_str(ev->item_id);
            if ((err = remember_name(e, j, ev->item_id, errstr, errstr_size)))
                return err;
            if ((err = user_touch(e, p, j, XS_SIG_VIEW, W_VIEW, now)))
                return err;
            if (cat) {
                cached_item_t *ci = NULL;
                if ((err = get_item(e, j, true, &ci, errstr, errstr_size)))
                    return err;
                if (!ci->st.category && !(ci->st.flags & XS_ITEM_F_CATALOG)) {
                    ci->st.category = cat;
                    item_dirty(e, ci);
                }
            }
            ctx_add(ctx, &n_ctx, 64, j, SP->w_trigger);
            trigger = true;
            placement = XS_PLACEMENT_PRODUCT_PAGE;
        }
    } else {
        e->st.carts++;
        xs_signal_t sig = XS_SIG_CART;
        float w = W_CART;
        switch ((xs_cart_type_t)ev->type) {
        case XS_CART_ADD:
            placement = XS_PLACEMENT_CART;
            break;
        case XS_CART_REMOVE:
            placement = XS_PLACEMENT_CART;
            sig = XS_SIG_NONE;
            break;
        case XS_CART_CHECKOUT:
            placement = XS_PLACEMENT_CHECKOUT;
            break;
        case XS_CART_PURCHASE:
            placement = XS_PLACEMENT_POST_PURCHASE;
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
            if ((err = remember_name(e, j, l->item_id, errstr, errstr_size)))
                return err;
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
                    e->outcome.opportunities[pl]++;
                    e->outcome.hits[pl] += (uint32_t)has;
                }
                xs_profile_cart_add(p, j, l->quantity);
            }
            if ((err = user_touch(e, p, j, sig, w, now)))
                return err;
            if (ev->type == XS_CART_ADD || ev->type == XS_CART_PURCHASE)
                trend_add(e, j, now);
            if (ev->type != XS_CART_PURCHASE)
                ctx_add(ctx, &n_ctx, 64, j, SP->w_trigger);
        }
        if (ev->type == XS_CART_PURCHASE) {
            xs_profile_cart_clear(p);
            /* After a purchase the context is what was bought: complements of it. */
            for (size_t i = 0; i < ev->n_lines; i++)
                ctx_add(ctx, &n_ctx, 64, xs_hash_str(ev->lines[i].item_id), SP->w_trigger);
        }
        trigger = true;
    }

    /* --- item stage --- */
    if ((err = item_stage(e, errstr, errstr_size)) != XS_OK)
        return err;

    /* --- scorer --- */
    if (!trigger)
        return XS_OK;
    if ((err = fill_header(e, ev, placement, list)) != XS_OK)
        return err;
    if (arm >= 0 && ((err = set_str(&list->experiment, e->experiment.name)) ||
                     (err = set_str(&list->arm, e->experiment.arms[arm].name))))
        return err;
    int n_want = SP->list_len[placement];
    if (n_want > XS_LIST_MAX_ITEMS)
        n_want = XS_LIST_MAX_ITEMS;
    e->list_time = now; /* availability windows at the trigger's time */
    if ((err = score(e, SP, p, ctx, n_ctx, placement, n_want, now, true, list, errstr,
                     errstr_size)))
        return err;
    uint32_t h = list_hash(list);
    int64_t suppress = (int64_t)(SP->suppress_minutes * 60e3);
    if (p->last_list_hash[placement] == h && now - p->last_list_ts[placement] < suppress) {
        e->st.suppressed++;
        xs_list_clear(list);
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

static void rules_hash(uint64_t *out, int *n_out, const char *const *v, int n)
{
    *n_out = 0;
    for (int i = 0; i < n && i < XS_RULES_MAX; i++)
        if (v[i] && *v[i])
            out[(*n_out)++] = xs_hash_str(v[i]);
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
    int arm = user_id && e->experiment.n_arms > 0 ? xs_experiment_arm(&e->experiment, user_id) : -1;
    const xs_params_t *SP = arm >= 0 ? &e->experiment.arms[arm].params : &e->params;
    ctx_item_t ctx[64];
    int n_ctx = 0;
    if (n_items > XS_RULES_MAX)
        n_items = XS_RULES_MAX;
    for (int i = n_items - 1; i >= 0; i--) /* the trigger first, as on the worker's path */
        if (items[i] && *items[i])
            ctx_add(ctx, &n_ctx, 64, xs_hash_str(items[i]),
                    i == n_items - 1 ? SP->w_trigger : SP->w_cart);
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
    rules_c_t rc;
    memset(&rc, 0, sizeof(rc));
    if (rules) {
        rules_hash(rc.excl, &rc.n_excl, rules->exclude, rules->n_exclude);
        rules_hash(rc.cat, &rc.n_cat, rules->category, rules->n_category);
        rules_hash(rc.xcat, &rc.n_xcat, rules->exclude_category, rules->n_exclude_category);
        rules_hash(rc.bitem, &rc.n_bitem, rules->boost_item, rules->n_boost_item);
        rules_hash(rc.bcat, &rc.n_bcat, rules->boost_category, rules->n_boost_category);
        rc.has_max_price = rules->has_max_price;
        rc.max_price = rules->max_price;
        rc.boost = rules->boost > 0 ? rules->boost : 2.0;
        e->rules = &rc;
    }
    /* availability windows at the latest event time known: the shopper's, or
     * any processed event's (the clock is not stored: right after a restart
     * it starts from the shopper's or 0) */
    e->list_time = now > e->clock ? now : e->clock;
    err = score(e, SP, u ? &u->prof : NULL, ctx, n_ctx, placement, n, now, false, list, errstr,
                errstr_size);
    e->rules = NULL;
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

void xs_neighbours_free(xs_neighbour_t *v, int n)
{
    for (int i = 0; v && i < n; i++) {
        free(v[i].item_id);
        free(v[i].title);
    }
    free(v);
}

void xs_item_info_clear(xs_item_info_t *info)
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
        if (nm && nm->title && !(info->title = xs_strdup(nm->title)))
            return XS_ERR_NOMEM;
        if (nm && nm->has_price) {
            info->price = nm->price;
            info->has_price = true;
        }
        if (ci->st.category) {
            nm = NULL;
            if ((err = get_name(e, ci->st.category, NULL, &nm, errstr, errstr_size)))
                return err;
            if (nm && !(info->category = xs_strdup(nm->id)))
                return XS_ERR_NOMEM;
        }
    }
    int n_en = 0;
    const xs_ss_entry_t *en = pairs_of(e, ci, cls, &n_en);
    nb_sort_t *tmp = calloc(n_en ? (size_t)n_en : 1, sizeof(*tmp));
    if (!tmp)
        return XS_ERR_NOMEM;
    double n_all = pair_n(e, cls);
    double n_i = (double)xs_item_pair_total(&ci->st, cls);
    uint32_t min_sup = support_min(&e->params, xs_item_pair_total(&ci->st, cls), n_en);
    int m = 0;
    for (int k = 0; k < n_en; k++) {
        uint32_t cnt = en[k].count - en[k].err;
        cached_item_t *cj = NULL;
        if ((err = get_item(e, en[k].item, false, &cj, errstr, errstr_size)))
            break;
        double sim = cnt >= min_sup
                         ? xs_similarity(e->params.similarity, cnt, n_i,
                                         cj ? (double)xs_item_pair_total(&cj->st, cls) : cnt,
                                         n_all, e->params.llr_min)
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
        if (!err && nm && nm->title && !(v[k].title = xs_strdup(nm->title)))
            err = XS_ERR_NOMEM;
        if (!err)
            *n_out = k + 1;
    }
    free(tmp);
    if (err) {
        xs_neighbours_free(v, v ? m : 0); /* calloc'd: unfilled entries are NULL */
        *n_out = 0;
        return err;
    }
    *out = v;
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
    const xs_top_t *t = xs_item_top(&ci->st, cls, &nt);
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
        v[k].count = xs_item_pair_count(&ci->st, cls, sorted[k].item, &v[k].err);
        v[k].similarity = sorted[k].sim;
        err = name_of(e, sorted[k].item, &v[k].item_id, errstr, errstr_size);
        cached_name_t *nm = NULL;
        if (!err)
            err = get_name(e, sorted[k].item, NULL, &nm, errstr, errstr_size);
        if (!err && nm && nm->title && !(v[k].title = xs_strdup(nm->title)))
            err = XS_ERR_NOMEM;
    }
    if (err) {
        xs_neighbours_free(v, m);
        return err;
    }
    *out = v;
    *n_out = m;
    return XS_OK;
}

/* ---- the quality signal ---------------------------------------------------------------- */

void xs_published_note(xs_published_t *p, const xs_list_t *list)
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

int xs_published_rank(const xs_published_t *p, const char *item_id, int k)
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
            if (!(err = put(opaque, XS_CF_USERS, key, xs_key_user(key, u->partition, u->user), NULL,
                            0)))
                u->dirty_ep = 0;
        } else if (!(err = xs_profile_encode(&u->prof, b)) &&
            !(err = put(opaque, XS_CF_USERS, key, xs_key_user(key, u->partition, u->user),
                        b->data, b->len)))
            u->dirty_ep = 0;
    } else if (m == DIRTY_ITEMS) {
        cached_item_t *c = rec;
        if (!(err = xs_item_encode(&c->st, b)) &&
            !(err = put(opaque, XS_CF_ITEMS, key, xs_key_u64(key, c->item), b->data, b->len)))
            c->dirty_ep = 0;
    } else {
        cached_name_t *n = rec;
        if (!(err = encode_name(n, b)) &&
            !(err = put(opaque, XS_CF_NAMES, key, xs_key_u64(key, n->h), b->data, b->len)))
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
        xs_errstr_set(errstr, errstr_size, "snapshot: one is in progress already");
        return XS_ERR_INVALID;
    }
    if (e->dirty_walk && (err = dirty_rebuild(e)) != XS_OK) {
        xs_errstr_set(errstr, errstr_size, "snapshot: %s", xs_err2str(err));
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
    if (e->meta_dirty) { /* the globals, as they are now */
        static const char gk[] = "globals";
        xs_buf_reset(&e->snap_buf);
        if (!(err = encode_meta(e, &e->snap_buf)))
            err = put(opaque, XS_CF_META, gk, sizeof(gk) - 1, e->snap_buf.data, e->snap_buf.len);
        if (err)
            xs_errstr_set(errstr, errstr_size, "snapshot: %s", xs_err2str(err));
        else
            e->meta_dirty = false;
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
                    xs_errstr_set(errstr, errstr_size, "snapshot: %s", xs_err2str(err));
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
        xs_item_encode(&c->st, &b);
        fp->items++;
        ib += b.len + 8;
        if (b.len + 8 > fp->item_bytes_max)
            fp->item_bytes_max = b.len + 8;
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
}
