/*
 * stages.h — the three stages of the engine and what crosses between them.
 *
 *   event ──> user stage ──xs_pair_delta_t batch──> item stage
 *             (profile in,                           (sketches, pair totals,
 *              profile out)                           neighbour lists)
 *                 │ context                               │ neighbour table
 *                 └──────────────> scorer <───────────────┘
 *                                  (reads profile, neighbour table,
 *                                   catalog, trending; writes nothing)
 *
 * lib/core/engine.c composes them over its cache, in this order for one event:
 * user stage (xs_user_stage_apply) -> item stage (xs_item_stage_hint,
 * xs_item_stage_apply) -> the item stage refreshes the lists the scorer is
 * about to read (xs_item_stage_refresh) -> scorer (xs_scorer_score).
 * With the item side deferred (engine.h, "Deferred item side"), the arrow
 * from the user stage to the item stage is a pair-delta batch
 * (xsell/records.h) per input partition and checkpoint: the user stage is
 * given a copy of the totals and no trending (its sales are listed in
 * xs_user_out_t.sales), the engine pre-aggregates what it hands on, and
 * the item stage applies the batches when they come back (every
 * instance's), in the batch's entry order.
 *
 * Nothing is global: the totals (xs_totals_t) and the trending summary
 * (xs_trending_t) are passed to the stage that reads or writes them. A
 * stage owns only its scratch; records are reached through the access
 * callbacks below, which the engine implements over its write-back cache
 * (a lookup may load a record from the store: that is the cache's business,
 * not a change of state).
 *
 * Pure C, like the rest of the core: no I/O library.
 */
#ifndef XSELL_STAGES_H
#define XSELL_STAGES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/engine.h"
#include "xsell/event.h"
#include "xsell/profile.h"
#include "xsell/sketch.h"

#ifdef __cplusplus
extern "C" {
#endif

struct xs_hmap;

/* ---- globals ----------------------------------------------------------------- */

/* The totals the similarities and the user counts read (meta "globals"). */
typedef struct xs_totals {
    uint64_t users_total, users_bought;    /* distinct users, and those who bought */
    uint64_t pairs_total[XS_CLASS__COUNT]; /* pairs counted per class, both directions once */
    bool dirty;                            /* changed since the last checkpoint */
} xs_totals_t;

/* Trending items: a decayed SpaceSaving summary over items added to carts
 * and bought (lib/trending.c). Written by the user stage, read by the scorer. */
#define XS_TREND_CAP 128
typedef struct xs_trend_entry {
    uint64_t item;
    double weight; /* relative to ref */
} xs_trend_entry_t;

typedef struct xs_trending {
    xs_trend_entry_t v[XS_TREND_CAP];
    int n;
    int64_t ref;
    bool dirty; /* changed since the last checkpoint */
} xs_trending_t;

/* Counts one more sale of item at event time now (one-week half-life). */
void xs_trending_add(xs_trending_t *t, uint64_t item, int64_t now);
/* Counts sales of item that weigh `weight` (> 0) at event time ts: the
 * weight of a pair-delta batch's TREND entry at its last_ts (records.h).
 * xs_trending_add(t, item, now) is xs_trending_add_weight(t, item, 1, now). */
void xs_trending_add_weight(xs_trending_t *t, uint64_t item, double weight, int64_t ts);
/* The entries by weight, descending (ties: smaller item): order[0..t->n),
 * indexes into t->v. order holds the previous call's order and *n_order its
 * length (0 at first): kept between calls, the sort is about linear. The
 * result does not depend on what order held. */
void xs_trending_order(const xs_trending_t *t, int order[XS_TREND_CAP], int *n_order);

/* ---- user stage ---------------------------------------------------------------- */

/* One co-occurrence delta: the pair (a, b) counted once more in class cls;
 * b == 0: one more user of item a in class cls. */
typedef struct xs_pair_delta {
    uint64_t a, b;
    uint8_t cls;
} xs_pair_delta_t;

/* A context item of a list: weight, and whether it is only a past purchase
 * (then the rebuy rule decides whether it may be suggested). */
typedef struct xs_ctx_item {
    uint64_t item;
    double w;
    bool bought;
} xs_ctx_item_t;

#define XS_CTX_MAX 64

/* Adds item to a context (the larger weight wins for an item already in it). */
void xs_scorer_ctx_add(xs_ctx_item_t *ctx, int *n, int cap, uint64_t item, double w, bool bought);

typedef struct xs_user_stage xs_user_stage_t;

/*
 * P: the learning parameters (borrowed: they may change between events);
 * rebuy_ms: how long purchases evicted from a profile are kept.
 */
xs_user_stage_t *xs_user_stage_new(const xs_params_t *P, int64_t rebuy_ms);
void xs_user_stage_destroy(xs_user_stage_t *s);

/* What one event makes of a profile, besides the profile itself. */
typedef struct xs_user_out {
    /* For the item stage: the pair deltas, in order (borrowed from the
     * stage, valid until its next call), and a click's category for its
     * item (hint_item 0: none), which the item stage keeps when the catalog
     * has not described the item. */
    const xs_pair_delta_t *deltas;
    size_t n_deltas;
    uint64_t hint_item, hint_cat;
    /* The items of the event's cart adds and purchases, in order (borrowed
     * like deltas): what the stage counted in trending, or, when it was
     * given none, what a pair-delta batch carries as TREND entries. */
    const uint64_t *sales;
    size_t n_sales;
    /* For the scorer: whether the event asks for a list, its placement and
     * the trigger items (weight w_trigger of the scoring parameters). */
    bool trigger;
    xs_placement_t placement;
    xs_ctx_item_t ctx[XS_CTX_MAX];
    int n_ctx;
    /* The live quality signal of a cart ADD (xs_add_outcome_t). */
    uint32_t opportunities[XS_PLACEMENT__COUNT];
    uint32_t hits[XS_PLACEMENT__COUNT];
} xs_user_out_t;

/*
 * Applies a click or cart event (not a duplicate: the caller checked the
 * profile's dedup ring) to profile p: time, history, cart, categories,
 * purchases; counts a user who buys for the first time in totals and the
 * sales in trending (trending NULL: only listed in out->sales). SP: the scoring parameters of the
 * user's arm (the trigger weight). *out is overwritten. Errors: XS_ERR_INVALID (not a click or cart
 * event, or an unknown cart type), XS_ERR_NOMEM.
 */
xs_err_t xs_user_stage_apply(xs_user_stage_t *s, xs_profile_t *p, const xs_event_t *ev,
                             const xs_params_t *SP, xs_totals_t *totals, xs_trending_t *trending,
                             xs_user_out_t *out);

/* Joins session profile sp into its user's profile p (xs_profile_merge) and
 * empties sp; the session no longer counts as a distinct user in totals. */
void xs_user_stage_join(xs_user_stage_t *s, xs_profile_t *p, xs_profile_t *sp, xs_totals_t *totals);

/* ---- item stage ---------------------------------------------------------------- */

/* How the item stage reaches item records (the engine's cache). */
typedef struct xs_item_access {
    void *opaque;
    /* The record of item: *it NULL when absent and !create; *exact (may be
     * NULL to ignore) the reference mode's exact counts, XS_CLASS__COUNT
     * maps of other item -> count, NULL outside it. */
    xs_err_t (*get)(void *opaque, uint64_t item, bool create, xs_item_t **it,
                    struct xs_hmap **exact, char *errstr, size_t errstr_size);
    /* it (from get) changed: it goes to the next checkpoint. */
    void (*changed)(void *opaque, xs_item_t *it);
} xs_item_access_t;

typedef struct xs_item_stage xs_item_stage_t;

/* P: the learning parameters (borrowed); exact: reference mode (unbounded
 * exact counts, no lists); acc copied. */
xs_item_stage_t *xs_item_stage_new(const xs_params_t *P, bool exact, const xs_item_access_t *acc);
void xs_item_stage_destroy(xs_item_stage_t *s);

/* A click's category for item (xs_user_out_t.hint_*): kept when the item has
 * none and no catalog record. Creates the item. */
xs_err_t xs_item_stage_hint(xs_item_stage_t *s, uint64_t item, uint64_t cat, char *errstr,
                            size_t errstr_size);

/*
 * Applies a batch of pair deltas, in order: user counts, sketches, pair
 * totals (totals->pairs_total), and the neighbour lists of the items whose
 * sketches changed (re-ranked whole first when stale, the changed entries
 * and one entry of the round-robin sweep re-scored). Every item changed is
 * reported through acc->changed. *n_pairs: pair deltas applied.
 */
xs_err_t xs_item_stage_apply(xs_item_stage_t *s, const xs_pair_delta_t *d, size_t n,
                             xs_totals_t *totals, uint64_t *n_pairs, char *errstr,
                             size_t errstr_size);

/* Ranks an item's lists (item `self`) anew from its whole sketch and the
 * current counts, stale or not (xs_engine_rank_lists). Not in reference
 * mode. */
xs_err_t xs_item_stage_rescore(xs_item_stage_t *s, xs_item_t *it, uint64_t self,
                               const xs_totals_t *totals, char *errstr, size_t errstr_size);

/* Re-ranks whole the stale lists (ranked last at fewer than half of today's
 * pairs) of these items, before the scorer reads them. Unknown items are
 * skipped. Not in reference mode. */
xs_err_t xs_item_stage_refresh(xs_item_stage_t *s, const xs_ctx_item_t *items, int n,
                               const xs_totals_t *totals, char *errstr, size_t errstr_size);

/* One neighbour ranked now. */
typedef struct xs_scored {
    uint64_t item;
    double sim;
} xs_scored_t;

/* The co-occurrence entries of it in class cls: the sketch, or in reference
 * mode the exact counts (err 0) copied into the stage's scratch, valid until
 * its next call. */
const xs_ss_entry_t *xs_item_stage_pairs(xs_item_stage_t *s, const xs_item_t *it,
                                         struct xs_hmap *exact, xs_class_t cls, int *n);

/*
 * Read-only: the entries of it in class cls with similarity > 0 by the
 * parameters P (the neighbours' current pair totals, the entries' order),
 * for a scorer whose parameters rank otherwise than the lists, and the
 * reference mode. *out: the stage's scratch, valid until its next call.
 */
xs_err_t xs_item_stage_rank(xs_item_stage_t *s, const xs_item_t *it, uint64_t self,
                            struct xs_hmap *exact, xs_class_t cls, const xs_params_t *P,
                            const xs_totals_t *totals, const xs_scored_t **out, int *n,
                            char *errstr, size_t errstr_size);

/* The count a neighbour needs (model.min_support, or from the item's pairs
 * and partners when 0). */
uint32_t xs_item_stage_support_min(const xs_params_t *P, uint64_t pairs, int partners);

/* ---- scorer ---------------------------------------------------------------------- */

/* A catalog entry as the scorer reads it (strings borrowed until the next
 * lookup). */
typedef struct xs_scorer_catalog {
    bool found;
    const char *id; /* the original id string */
    const char *title;
    uint64_t family; /* hash of ItemUpdate.family, 0 = none */
    double price;
    bool has_price;
    int64_t avail_from, avail_until;
    bool has_from, has_until;
} xs_scorer_catalog_t;

/* What the scorer reads, read-only (the engine's cache). */
typedef struct xs_scorer_view {
    void *opaque;
    /* The neighbour table: the item's record (flags, category, lists); *it
     * NULL when unknown. */
    xs_err_t (*item)(void *opaque, uint64_t item, const xs_item_t **it, char *errstr,
                     size_t errstr_size);
    /* Where the scorer does not read the lists: the number of entries of
     * it in class cls, and the entries ranked now by P (xs_item_stage_rank). */
    int (*entries)(void *opaque, const xs_item_t *it, xs_class_t cls);
    xs_err_t (*rank)(void *opaque, const xs_item_t *it, xs_class_t cls, const xs_params_t *P,
                     const xs_scored_t **out, int *n, char *errstr, size_t errstr_size);
    /* The catalog: the entry of hash h (found false when none). */
    xs_err_t (*catalog)(void *opaque, uint64_t h, xs_scorer_catalog_t *out, char *errstr,
                        size_t errstr_size);
} xs_scorer_view_t;

/* Query-time rules (xs_rules_t) as hashes. */
typedef struct xs_score_rules {
    uint64_t excl[XS_RULES_MAX], cat[XS_RULES_MAX], xcat[XS_RULES_MAX];
    uint64_t bitem[XS_RULES_MAX], bcat[XS_RULES_MAX];
    int n_excl, n_cat, n_xcat, n_bitem, n_bcat;
    bool has_max_price;
    double max_price;
    double boost;
} xs_score_rules_t;

void xs_scorer_rules(xs_score_rules_t *out, const xs_rules_t *rules);

/*
 * The context of a list: the trigger items ctx[0..*n) (weight w_trigger, or
 * w_cart for a query's earlier items) and, from profile p (NULL: none), the
 * cart lines, purchases and views, decayed to now; sorted by weight,
 * descending (ties: item). At most XS_CTX_MAX. Returns how many the scorer
 * uses (P->max_context).
 */
int xs_scorer_context(const xs_params_t *P, const xs_profile_t *p, xs_ctx_item_t *ctx, int *n,
                      int64_t now);

typedef struct xs_score_in {
    const xs_params_t *P;      /* the scoring parameters (the arm's) */
    const xs_profile_t *p;     /* NULL: an anonymous shopper */
    const xs_ctx_item_t *trig; /* the trigger items, before xs_scorer_context */
    int n_trig;
    const xs_ctx_item_t *ctx; /* xs_scorer_context()'s */
    int n_ctx, n_use;
    bool lists; /* read the items' lists (else rank their entries now) */
    xs_placement_t placement;
    int n_want;
    int64_t now;                   /* the profile's time: decay, rebuy */
    int64_t list_time;             /* the time the availability windows are judged at */
    const xs_score_rules_t *rules; /* NULL: none */
    const xs_trending_t *trending;
} xs_score_in_t;

typedef struct xs_scorer xs_scorer_t;

xs_scorer_t *xs_scorer_new(void);
void xs_scorer_destroy(xs_scorer_t *s);

/* Fills list->items and list->placement from the view; changes nothing but
 * the scorer's scratch and the list. */
xs_err_t xs_scorer_score(xs_scorer_t *s, const xs_scorer_view_t *v, const xs_score_in_t *in,
                         xs_list_t *list, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
