/*
 * xsell — the processing engine: user stage, item stage and scorer over a
 * bounded write-back cache of state. Pure C: no Kafka, no RocksDB, no Avro.
 *
 *   event ──> user stage ──pair deltas──> item stage
 *                 │                            │ (sketches, counts)
 *                 └──────> scorer <────────────┘ neighbours
 *                            │
 *                            └──> xs_list_t (CrossSellList)
 *
 * The stages are separate modules with plain data between them, their
 * contracts in xsell/stages.h (lib/core/user_stage.c, item_stage.c,
 * scorer.c): the user stage turns a profile and an event into a profile, a
 * batch of pair deltas and a context; the item stage turns pair-delta
 * batches into sketches, pair totals and neighbour lists; the scorer reads a
 * profile, the neighbour table, the catalog and trending and writes
 * nothing. The totals are passed explicitly. These are the seams along
 * which they can later run in different processes.
 *
 * State is read through an optional backend (the RocksDB store in the
 * worker, nothing in `xsell eval`): a cache miss calls backend.get; changes
 * stay in the cache, marked dirty, until xs_engine_flush() hands every dirty
 * record to a put callback (the worker writes them, together with the input
 * offsets, in one RocksDB WriteBatch). xs_engine_trim() then evicts clean
 * records, least recently used first, down to the cache budget.
 *
 * Keys (the same bytes the store uses):
 *   users  partition u16 BE + user hash u64 BE   -> xs_profile encoding
 *   items  item hash u64 BE                      -> xs_item encoding (summaries, counts)
 *   neighbours  item hash u64 BE                 -> 'T' 01 its lists (sketch.h; none when
 *                                                   empty)
 *   names  hash u64 BE                           -> 'N' 03 id, title, family, price, window
 *                                                   (xs_name_rec_t in store_records.h)
 *   meta   "globals"                             -> totals and trending summary
 * Only decay and windows in event time: replaying the same input gives the
 * same state and the same lists.
 *
 * Sessions: a click or cart event with a user_id and a session_id first
 * joins the profile of user XS_SESSION_USER_PREFIX + session_id of the same
 * partition, when there is one, into the user's (xs_profile_merge) and
 * deletes it (the flush puts a NULL value: a delete), before the event
 * applies. The join emits no pair deltas (the session's pairs were counted
 * with its events) and makes users_total one less. Sessions found without a
 * profile are remembered (4,096 slots) so later events of them read no
 * store; the slot is cleared when that profile is made.
 *
 * Neighbour lists: the item stage keeps each item's top neighbours per class
 * in its record (sketch.h, "Neighbour lists"), re-scored as pairs are
 * counted, by a round-robin sweep, and whole when the user total has doubled;
 * the scorer merges the context items' lists. The similarities read the pair
 * table: k11 the pair's guaranteed count, the marginals each item's pair
 * total, the total twice the pairs counted (meta "globals" version 2); the
 * kmax window samples pairs and marginals alike. The scorer adds to the
 * summed similarities a popularity prior (model.popularity_prior, see
 * lib/core/scorer.c) weighted by how concentrated recent demand is,
 * which the engine measures on its own stream. Lists are stored state that
 * depends only on the input, never on what was queried or when the engine
 * started. An experiment arm that ranks with another similarity, and the
 * exact reference mode, rank whole sketches from the current counts instead.
 */
#ifndef XSELL_ENGINE_H
#define XSELL_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/event.h"
#include "xsell/profile.h"
#include "xsell/records.h"
#include "xsell/sketch.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xs_cf {
    XS_CF_USERS = 0,
    XS_CF_ITEMS,
    XS_CF_NAMES,
    XS_CF_META,
    XS_CF_NEIGHBOURS, /* an item's neighbour lists (sketch.h), beside its `items` record */
    XS_CF__COUNT
} xs_cf_t;

const char *xs_engine_cf_name(xs_cf_t cf);

/* Model and rule parameters. xs_engine_params_default() documents the defaults. */
typedef struct xs_params {
    double half_life_hours;  /* affinity half-life (event time) */
    double window_hours;     /* co-occurrence window within a user's history */
    int kmax;                /* at most this many window items per new interaction */
    xs_sim_t similarity;     /* neighbour ranking */
    double llr_min;          /* LLR threshold for llr-cosine */
    int min_support;         /* minimum co-occurrence count for a neighbour (0: per item) */
    double viewed_weight;    /* weight of VIEWED_TOGETHER relative to BOUGHT_TOGETHER */
    bool normalize;          /* scale each context item's similarities to a maximum of 1 */
    double category_boost;   /* score *= 1 + boost * (category affinity / max affinity) */
    double popularity_prior; /* trending items join with this x best score x relative weight */
    double w_trigger, w_cart, w_purchase, w_view; /* context weights */
    int max_context;                              /* context items considered */
    int list_len[XS_PLACEMENT__COUNT];
    int category_cap;        /* max items per category in one list; 0 = no cap */
    int family_cap;          /* max items per product family in one list; 0 = no cap */
    bool family_exclude;     /* complements placements: no item of a context item's family */
    double rebuy_days;       /* do not suggest items bought within this many days (<= 365) */
    double suppress_minutes; /* identical list for the same placement not re-published */
    bool trending_backfill;  /* fill short lists with trending items */
    bool popularity_only;    /* control arm: trending items only */
} xs_params_t;

void xs_engine_params_default(xs_params_t *p);

/*
 * A/B experiment: each user is in exactly one arm, a pure function of
 * (salt, user_id): u = XXH3(salt NUL user_id) / 2^64 in [0, 1) against the
 * cumulative, normalised shares. An arm overrides the scoring parameters
 * (similarity, weights, rules, lengths, popularity_only); the learning
 * parameters (half_life_hours, window_hours, kmax) are shared by all arms
 * because they shape the one state every arm reads.
 */
#define XS_MAX_ARMS 8
typedef struct xs_arm {
    char name[32];
    double share;
    xs_params_t params;
} xs_arm_t;

typedef struct xs_experiment {
    char name[64];
    char salt[64];
    int n_arms;
    xs_arm_t arms[XS_MAX_ARMS];
} xs_experiment_t;

/* Index of the user's arm (0 when the experiment has no arms). */
int xs_engine_experiment_arm(const xs_experiment_t *x, const char *user_id);

typedef struct xs_backend {
    void *opaque;
    /* Looks a key up; sets *found. The value is appended to val (reset first). */
    xs_err_t (*get)(void *opaque, xs_cf_t cf, const void *key, size_t key_len, xs_buf_t *val,
                    bool *found, char *errstr, size_t errstr_size);
} xs_backend_t;

/* Receives one dirty record during xs_engine_flush(). val NULL (val_len 0):
 * delete the key (a session profile joined into its user's). */
typedef xs_err_t (*xs_put_fn)(void *opaque, xs_cf_t cf, const void *key, size_t key_len,
                              const void *val, size_t val_len);

typedef struct xs_engine xs_engine_t;

typedef struct xs_engine_opts {
    xs_params_t params;
    const xs_experiment_t *experiment; /* NULL or n_arms == 0: no experiment; copied */
    bool exact_pairs;                  /* reference mode: unbounded exact co-occurrence counts */
    const xs_backend_t *backend;       /* NULL: all state in memory, never evicted */
    size_t cache_bytes;                /* budget for cached records (0 = unbounded) */
    const char *model_name;            /* written on lists; default "xsell-cooc" */
    const char *model_version;         /* default "1" */
    bool defer_items; /* the item side comes from pair-delta batches ("Deferred item side") */
} xs_engine_opts_t;

void xs_engine_opts_default(xs_engine_opts_t *o);

/* NULL + errstr on failure. Copies opts (and the backend struct). */
xs_engine_t *xs_engine_new(const xs_engine_opts_t *opts, char *errstr, size_t errstr_size);
void xs_engine_destroy(xs_engine_t *e);

typedef struct xs_engine_stats {
    uint64_t events, duplicates, clicks, carts, item_updates;
    uint64_t pair_updates, lists, suppressed;
    uint64_t cache_hits, cache_misses;
    uint64_t cache_bytes, dirty_bytes;
    uint64_t users_cached, items_cached;
    uint64_t users_total, users_bought; /* distinct users seen (for LLR) */
    uint64_t sessions_joined; /* session profiles merged into a user's (xs_engine_process) */
    uint64_t deltas_bytes;    /* held by deltas not yet taken (defer_items); in dirty_bytes */
} xs_engine_stats_t;

void xs_engine_stats(const xs_engine_t *e, xs_engine_stats_t *st);

/*
 * Applies one validated event of input `partition` and, when the event is a
 * trigger (PRODUCT_VIEW, cart ADD/REMOVE, CHECKOUT, PURCHASE), builds its
 * cross-sell list into *list (caller inits/clears it) and sets *has_list.
 * Duplicate event ids (recently seen for that user) are ignored.
 * Errors: XS_ERR_STORE/XS_ERR_VERSION/XS_ERR_DECODE from state reads
 * (errstr says which key), XS_ERR_NOMEM.
 */
xs_err_t xs_engine_process(xs_engine_t *e, uint16_t partition, const xs_event_t *ev,
                           xs_list_t *list, bool *has_list, char *errstr, size_t errstr_size);

/*
 * Deletes an item, as a tombstone (a null value keyed by item_id) on the
 * compacted catalog topic asks: flagged deleted, so no list suggests it
 * again, and its catalog fields (title, family, category, stock,
 * repurchasable) dropped; its co-occurrence counts stay. A later ItemUpdate
 * lists it again. Counted as an item update. Errors as xs_engine_process().
 */
xs_err_t xs_engine_delete_item(xs_engine_t *e, const char *item_id, char *errstr,
                               size_t errstr_size);

/*
 * What the last xs_engine_process() saw at a cart ADD (zeros for any other
 * event, a duplicate included): per placement, the added lines for which a
 * last published list was remembered in the user's profile (opportunities)
 * and those whose item was among its first XS_PROFILE_SEEN items (hits;
 * 16-bit fingerprints: a false hit about 1 in 6,500). The definition of
 * xs_published_t below, at k = 10, kept within the profile's bytes (a whole
 * xs_published_t per placement would not fit in 1 KiB): the worker's
 * xsell_list_add_* metrics. The state read is the profile's, so it survives
 * restarts with the rest of the state. arm: the user's experiment arm, -1
 * without experiment or event.
 */
typedef struct xs_add_outcome {
    uint32_t opportunities[XS_PLACEMENT__COUNT];
    uint32_t hits[XS_PLACEMENT__COUNT];
    int arm;
} xs_add_outcome_t;

void xs_engine_last_outcome(const xs_engine_t *e, xs_add_outcome_t *o);

/*
 * Builds the list the user would get now for `placement`, without changing
 * state (HTTP queries, offline evaluation). trigger_item may be NULL.
 */
xs_err_t xs_engine_recommend(xs_engine_t *e, uint16_t partition, const char *user_id,
                             const char *trigger_item, xs_placement_t placement, int n,
                             xs_list_t *list, char *errstr, size_t errstr_size);

/*
 * Query-time rules: what a storefront asks of one list (the HTTP list
 * endpoints' exclude=, category=, exclude_category=, max_price=,
 * boost_items=, boost_category=, boost=). The scorer applies them to the
 * candidates together with the configured rules, before the category and
 * family caps and the length, so a filtered list is still full when enough
 * candidates pass; the trending backfill obeys the filters too.
 *   exclude            items never shown
 *   category           only items of these categories (ItemUpdate.category,
 *                      else a ClickEvent's); an item without one never passes
 *   exclude_category   no item of these categories
 *   max_price          only items whose catalog price (ItemUpdate.price) is
 *                      <= max_price; an item without a price never passes
 *   boost_item, boost_category
 *                      the final score of such an item is multiplied by
 *                      boost (0: 2.0; below 1 it demotes); the backfilled
 *                      trending items keep their own order
 * Strings are borrowed for the call. An all-zero struct is no rule.
 */
#define XS_RULES_MAX 64
typedef struct xs_rules {
    const char *exclude[XS_RULES_MAX];
    int n_exclude;
    const char *category[XS_RULES_MAX];
    int n_category;
    const char *exclude_category[XS_RULES_MAX];
    int n_exclude_category;
    bool has_max_price;
    double max_price;
    const char *boost_item[XS_RULES_MAX];
    int n_boost_item;
    const char *boost_category[XS_RULES_MAX];
    int n_boost_category;
    double boost;
} xs_rules_t;

/*
 * xs_engine_recommend() with context items and rules, and each item's
 * catalog metadata (title, category, price) in the list.
 *   user_id  NULL: an anonymous shopper (no profile read, the base
 *            parameters, no arm); else as xs_engine_recommend()
 *   items    the context: the last one weighs as the trigger of an event
 *            (w_trigger), the earlier ones as cart lines (w_cart), as on the
 *            worker's path when a shopper adds them to the cart in this
 *            order (at most XS_RULES_MAX; the first XS_TRIGGER_MAX_ITEMS
 *            are written as the list's trigger items)
 *   rules    NULL: none
 * Read-only, like xs_engine_recommend().
 */
xs_err_t xs_engine_recommend_ex(xs_engine_t *e, uint16_t partition, const char *user_id,
                                const char *const *items, int n_items, xs_placement_t placement,
                                int n, const xs_rules_t *rules, xs_list_t *list, char *errstr,
                                size_t errstr_size);

/* True (in *found) when the user has a profile in `partition`. */
xs_err_t xs_engine_has_user(xs_engine_t *e, uint16_t partition, const char *user_id, bool *found,
                            char *errstr, size_t errstr_size);

/* One neighbour of an item, as the scorer sees it. */
typedef struct xs_neighbour {
    char *item_id;     /* owned; free with xs_engine_neighbours_free */
    char *title;       /* owned, NULL when the catalog has none */
    uint32_t count;    /* co-occurrence estimate */
    uint32_t err;      /* over-estimation bound (0: count is a lower bound) */
    double similarity; /* by the configured measure (0: filtered out) */
} xs_neighbour_t;

typedef struct xs_item_info {
    bool found;
    uint32_t n_users[XS_CLASS__COUNT];
    uint8_t flags;
    char *title;    /* owned, may be NULL */
    char *category; /* owned, may be NULL */
    double price;   /* ItemUpdate.price, valid when has_price */
    bool has_price;
} xs_item_info_t;

/*
 * The top-n neighbours of item_id in class cls, ranked by similarity (ties:
 * count). *out is a malloc'd array of *n_out entries (caller frees with
 * xs_engine_neighbours_free). info (optional) receives the item's counts and catalog
 * fields; info->found is false for an unknown item.
 */
xs_err_t xs_engine_neighbours(xs_engine_t *e, const char *item_id, xs_class_t cls, int n,
                              xs_neighbour_t **out, int *n_out, xs_item_info_t *info, char *errstr,
                              size_t errstr_size);
void xs_engine_neighbours_free(xs_neighbour_t *v, int n);

/*
 * The neighbour list of item_id in class cls as the scorer reads it: the
 * item's stored list (similarity descending, then item hash ascending), or,
 * where the scorer ranks whole sketches (exact reference mode), every entry
 * with similarity > 0 ranked now. At most n entries; ownership as
 * xs_engine_neighbours (count/err are the sketch entry's). An unknown item
 * gives an empty list.
 */
xs_err_t xs_engine_item_list(xs_engine_t *e, const char *item_id, xs_class_t cls, int n,
                             xs_neighbour_t **out, int *n_out, char *errstr, size_t errstr_size);
/* Ranks the lists of every cached item anew from its whole sketch and the
 * current counts, as the item stage ranks a stale list (sketch.h,
 * "Neighbour lists"); a measurement (`xsell bench order`): the engine never
 * calls it, since ranking every item costs a lookup of every sketch entry's
 * neighbour. Not in the exact reference mode (no lists); items only in the
 * backend are not loaded. */
xs_err_t xs_engine_rank_lists(xs_engine_t *e, char *errstr, size_t errstr_size);
void xs_engine_item_info_clear(xs_item_info_t *info);

/* Hands every dirty record to put, then marks them clean (a snapshot in
 * progress is completed first). Costs O(dirty records): the engine lists
 * records as they turn dirty. */
xs_err_t xs_engine_flush(xs_engine_t *e, xs_put_fn put, void *opaque, char *errstr,
                         size_t errstr_size);

/*
 * A checkpoint spread over time. xs_engine_snapshot_begin() freezes the
 * state as it is: the globals go to put at once, and every record dirty at
 * this instant goes to put with the value it has now, either from
 * xs_engine_snapshot_step() or, when something (an event, a query) looks the
 * record up before that, right then, before it can change. What events do
 * afterwards belongs to the next snapshot. So the records put are exactly
 * the state at the instant of begin, as xs_engine_flush() at that instant
 * would have put them, while the caller goes on processing events.
 * *n_records counts what is to be put (0: nothing was dirty). put must stay
 * valid until the snapshot is done. Nothing is evicted while one is in
 * progress: eviction (xs_engine_trim) keeps dirty records, and these are.
 */
xs_err_t xs_engine_snapshot_begin(xs_engine_t *e, xs_put_fn put, void *opaque, size_t *n_records,
                                  char *errstr, size_t errstr_size);
/* Puts up to max of the snapshot's records (0: all); *done once all are. */
xs_err_t xs_engine_snapshot_step(xs_engine_t *e, size_t max, bool *done, char *errstr,
                                 size_t errstr_size);
bool xs_engine_snapshot_active(const xs_engine_t *e);
/* Evicts clean records (LRU) until the cache is within its budget. */
void xs_engine_trim(xs_engine_t *e);
/* Drops every cached record (dirty ones too): after a rebalance the store is the truth.
 * Pending deltas (defer_items) are dropped too: their events are processed again. */
void xs_engine_drop_cache(xs_engine_t *e);

/* Stored sizes of the cached records (encoded as they would be stored; an
 * item's: its `items` and `neighbours` records, keys included). */
typedef struct xs_footprint {
    uint64_t users, items;
    double user_bytes_avg, item_bytes_avg;
    uint64_t user_bytes_max, item_bytes_max;
    uint64_t exact_pairs; /* reference mode: co-occurrence entries held */
} xs_footprint_t;
void xs_engine_footprint(xs_engine_t *e, xs_footprint_t *fp);

/*
 * The quality signal, one definition for `xsell eval` and the worker's live
 * metric: when a user adds item x to the cart, the opportunity for a
 * placement is the last list published to that user for that placement (the
 * list of the user's latest trigger event for it; a suppressed list is
 * identical to it), and it is a hit at rank r when x is its r-th item.
 * xs_published_t keeps what that needs of a published list (about 180
 * bytes): note every list as it is published, look the added item up before
 * the ADD is processed (the ADD publishes the next list).
 */
typedef struct xs_published {
    uint64_t items[XS_LIST_MAX_ITEMS]; /* item hashes (xs_hash_str), in list order */
    uint64_t trigger;                  /* hash of the list's first trigger item, 0: none */
    int64_t ts;                        /* generated_at */
    uint8_t n_items;
    uint8_t placement;
} xs_published_t;

void xs_engine_published_note(xs_published_t *p, const xs_list_t *list);
/* 1-based rank of item_id in p (of its first k items when k > 0), 0 when absent. */
int xs_engine_published_rank(const xs_published_t *p, const char *item_id, int k);

/*
 * Deferred item side (opts.defer_items; DESIGN.md "Scale-out", docs/SCALING.md).
 * Several instances in one consumer group each own some input partitions,
 * but item knowledge must be global. With defer_items, xs_engine_process()
 * still runs the user stage (profile, dedup, sessions) and the scorer for
 * the event, but the item side is not applied locally: what the item stage
 * would have applied is merged into the input partition's pending deltas,
 * pre-aggregated as pair-delta batch entries (xsell/records.h):
 *   PAIR      a pair delta (a < b in the entry), count summed
 *   USERS     a new distinct user of an item in a class, count summed
 *   CATEGORY  a click's category for its item (one entry per item, category)
 *   TREND     a cart add or purchase: trending weight (records.h)
 * and the change of users_total (new users, minus session joins) and
 * users_bought. Entries keep the order in which they were first seen.
 * xs_engine_take_deltas() moves them into a batch, which every instance
 * (this one included) applies with xs_engine_apply_deltas(); until then the
 * scorer reads the item state as it was (sketches, counts, lists, totals,
 * trending change only through batches; the item stage's refresh of a stale
 * list before the scorer reads it still runs, as it re-ranks what is
 * there). Local still, as without defer_items: the profiles, the id
 * dictionary (names: every id an event names is remembered, so lists and
 * titles resolve locally; a batch carries the ids its entries name, so the
 * other instances learn them too), catalog updates (xs_engine_process of an
 * ItemUpdate, xs_engine_delete_item: every instance reads the whole
 * catalog) and the list rules (suppression, the rebuy rule, dedup).
 *
 * Memory: per input partition, one pending entry (56 to 112 bytes with its
 * table slots and the arrays' doubling) per distinct (kind, class, a, b)
 * since the last take, so at
 * most what the partition's events of one checkpoint interval produce;
 * counted in stats deltas_bytes and dirty_bytes, so a checkpoint triggered
 * by dirty bytes bounds it.
 *
 * In the exact reference mode, applying every partition's batches gives
 * the same counts, pair totals, user totals and neighbour rankings as
 * processing the events without defer_items (counting commutes); trending
 * agrees up to rounding while it holds at most XS_TREND_CAP items. In the
 * sketch mode, the order of arrivals changes the lists: the moments their
 * similarities are computed at, and full summaries (HeavyKeeper's decay).
 * The top-10 neighbours of an item overlap >= 0.9 on the synthetic stream
 * of tests/unit/core/test_deltas.c, 0.875 on 40,000 UCI events with deltas
 * every 2,000 (0.93 with every list ranked whole at the end:
 * `xsell bench order`, docs/SCALING.md).
 * A click's category: the first one applied for an item without a catalog
 * entry wins, as in process order; with batches that is the first batch's,
 * and a click that came before the catalog described the item (without a
 * category) but whose batch is applied after it leaves the item without
 * one, where process order kept the click's.
 */

/* True when partition has deltas to take (entries, or a change of the totals). */
bool xs_engine_has_deltas(const xs_engine_t *e, uint16_t partition);

/*
 * Moves partition's pending deltas into *out (cleared first with
 * xs_delta_batch_clear; the caller clears it after use): out->partition =
 * partition, seq 0, part 0, n_parts 1 (the caller sets seq to its
 * checkpoint's, and splits the batch into parts with xs_delta_batch_part()
 * when it is too large for one message: entries can exceed
 * XS_DELTA_BATCH_MAX_ENTRIES), ts the latest
 * event time of the deltas, the user deltas, the entries in first-seen
 * order, and the ids of every key the entries name (a, and b of PAIR and
 * CATEGORY) that the engine knows, in the order the entries first name them.
 * Nothing pending: no entries, no ids, user deltas 0, ts 0. Take at the
 * checkpoint's instant (with xs_engine_snapshot_begin, between events), so
 * that the batch is exactly the events up to the checkpoint's offsets.
 * Errors (reading a name: XS_ERR_STORE, ...; XS_ERR_NOMEM): *out empty, the
 * deltas stay pending.
 */
xs_err_t xs_engine_take_deltas(xs_engine_t *e, uint16_t partition, xs_delta_batch_t *out,
                               char *errstr, size_t errstr_size);

/* Discards partition's pending deltas: it was revoked, or is restored from
 * a checkpoint, and its events after that checkpoint will be processed
 * again. xs_engine_drop_cache() discards every partition's. */
void xs_engine_drop_deltas(xs_engine_t *e, uint16_t partition);

/*
 * Applies one batch to the local item state as xs_engine_process() applies
 * the item side of its events: the ids into the names, the user deltas into
 * the totals, then the entries in order (PAIR and USERS as `count` single
 * pair deltas to the item stage, CATEGORY as a click's category, TREND into
 * trending at the entry's last_ts). What changes goes to the next
 * checkpoint like any change; pair deltas count in stats pair_updates. The
 * engine's clock (the latest event time known, at which queries judge
 * availability windows) moves on to the batch's ts.
 * Works with or without defer_items. The batch is checked whole first
 * (XS_ERR_INVALID, nothing applied: a decoded batch always passes); errors
 * while applying as xs_engine_process(). The caller applies each batch
 * (partition, seq, part) once.
 */
xs_err_t xs_engine_apply_deltas(xs_engine_t *e, const xs_delta_batch_t *b, char *errstr,
                                size_t errstr_size);

/* Exposes a parameter set by arm name for experiments (see config). */
xs_params_t *xs_engine_params(xs_engine_t *e);

/* Key helpers (big-endian), shared with the store and inspect tools. */
size_t xs_engine_key_user(uint8_t out[10], uint16_t partition, uint64_t user);
size_t xs_engine_key_u64(uint8_t out[8], uint64_t h);

#ifdef __cplusplus
}
#endif
#endif
