/*
 * xsell — offline evaluation: prequential (test-then-train) replay of a
 * data set through the worker's own path, without Kafka.
 *
 * Events are applied in the data set's order with xs_engine_process(), the
 * call the worker makes for every message: the lists it returns are the
 * lists the worker would publish (same trigger, placement, rules and
 * suppression). The evaluation keeps, per user and placement, the last list
 * published (xs_published_t, the definition shared with the worker's live
 * metric, include/xsell/engine.h) and asks, before an event changes
 * anything, whether the item the user acts on was in it:
 *
 *   cart points   at each line of a cart ADD, when a CART list was published
 *                 to the user since their last purchase (so not the first
 *                 item of a basket): a hit at rank r when the added item is
 *                 the r-th item of the last CART list, i.e. the list of the
 *                 user's previous ADD (or REMOVE) in the basket.
 *   view points   at each PRODUCT_VIEW, when a PRODUCT_PAGE list was
 *                 published to the user since their last purchase: the
 *                 viewed item against the last PRODUCT_PAGE list (the list of
 *                 the previous view). The measure of click-only data.
 *
 * The headline HitRate@k / MRR@k are those of the cart points, or of the
 * view points when the data set has no cart point. Lists have length k
 * (the caller sets the placements' list lengths). Further:
 *   - the live definition (every ADD line, against the last list of each
 *     placement, whatever its age), as the worker's /metrics counts it;
 *   - the headline points by popularity decile of the trigger item of the
 *     list they were scored against (items ranked by interactions over the
 *     whole replay: cart ADD lines plus PRODUCT_VIEWs naming them);
 *   - rule violations, counted from the evaluation's own exact state, not
 *     the engine's bounded profile: items of a published list that are in
 *     the user's cart (added, not removed, since their last purchase), or
 *     that the user bought within rebuy_days of the list (items whose
 *     catalog entry says repurchasable excepted);
 *   - the neighbour lists of the most popular items (by transactions
 *     holding them) as the scorer reads them, against their exact top k by
 *     LLR over the transactions, computed here from every transaction: a
 *     transaction is what a user added or bought between two purchases,
 *     closed by the purchase (class bought), or, on data without purchases,
 *     what a user viewed (class viewed).
 */
#ifndef XSELL_EVAL_H
#define XSELL_EVAL_H

#include <stdint.h>
#include "xsell/dataset.h"
#include "xsell/engine.h"

#define XS_EVAL_DECILES 10
#define XS_EVAL_TOP_ITEMS 100

typedef struct xs_eval_rate {
    uint64_t points, hits;
    double mrr_sum;
} xs_eval_rate_t;

typedef struct xs_eval_decile {
    xs_eval_rate_t rate; /* headline points whose trigger item is in this decile */
    uint64_t items;      /* items in the decile */
    uint64_t interactions_min, interactions_max;
} xs_eval_decile_t;

typedef struct xs_eval_top_item {
    char item_id[64];
    uint32_t transactions; /* transactions holding the item */
    int list_len;          /* neighbours with similarity > 0 in the list the scorer reads */
    int ref_len;           /* positively associated items in the exact ranking, at most k */
    int overlap;           /* of the list's first k, how many are in the exact top k */
} xs_eval_top_item_t;

typedef struct xs_eval_violations {
    uint64_t lists[XS_PLACEMENT__COUNT];         /* lists published */
    uint64_t items[XS_PLACEMENT__COUNT];         /* items in them */
    uint64_t in_cart_items[XS_PLACEMENT__COUNT]; /* items in the user's cart */
    uint64_t rebuy_items[XS_PLACEMENT__COUNT];   /* items bought within rebuy_days */
    uint64_t in_cart_lists[XS_PLACEMENT__COUNT]; /* lists with at least one such item */
    uint64_t rebuy_lists[XS_PLACEMENT__COUNT];
} xs_eval_violations_t;

typedef struct xs_eval_result {
    char name[48];
    uint64_t events; /* events replayed */
    uint64_t points; /* headline evaluation points (cart, else view) */
    uint64_t hits;
    double mrr_sum;
    xs_placement_t placement;                  /* of the headline points */
    xs_eval_rate_t cart, view;                 /* the two kinds of points */
    xs_eval_rate_t live[XS_PLACEMENT__COUNT];  /* every ADD line, last list of each placement */
    xs_eval_decile_t deciles[XS_EVAL_DECILES]; /* 0: the most popular tenth of the items */
    xs_eval_violations_t viol;
    /* the most popular items' lists (not for popularity-only runs) */
    xs_class_t top_class;
    uint64_t transactions;
    int n_top;
    xs_eval_top_item_t top[XS_EVAL_TOP_ITEMS];
    uint64_t recommended_items; /* distinct items in lists scored at headline points */
    uint64_t catalog_items;     /* distinct items in the data set */
    double seconds;
    xs_footprint_t footprint;
} xs_eval_result_t;

double xs_eval_hitrate(const xs_eval_result_t *r);
double xs_eval_mrr(const xs_eval_result_t *r);
double xs_eval_coverage(const xs_eval_result_t *r);
double xs_eval_rate_hit(const xs_eval_rate_t *r);
double xs_eval_rate_mrr(const xs_eval_rate_t *r);

/*
 * Replays the data set through a fresh engine made from engine_opts and
 * evaluates at every point; k bounds the ranks counted (set the placements'
 * list lengths to k to score lists of k). name labels the result.
 */
xs_err_t xs_eval_run(const char *name, const xs_engine_opts_t *engine_opts, int k,
                     xs_dataset_format_t fmt, const char *const *paths, size_t n_paths,
                     const xs_dataset_opts_t *dopts, xs_eval_result_t *res, char *errstr,
                     size_t errstr_size);

#endif
