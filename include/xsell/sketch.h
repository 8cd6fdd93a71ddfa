/*
 * xsell — item state: occurrence counts, bounded co-occurrence sketches and
 * similarity measures. Pure C, no I/O.
 *
 * Each item keeps, per signal class (BOUGHT: cart or purchase; VIEWED: any
 * interaction), the number of distinct users who had it (n_bought,
 * n_viewed; shown, not used by the similarities), the number of pairs it
 * took part in (its pair total, the marginal of the pair table), and a
 * bounded summary of the items co-occurring with it.
 *
 * Summaries. A summary of capacity m holds at most m entries (item, count,
 * err). An arriving partner that has an entry increments it; while there
 * is room it gets a new entry with count 1; once full, it hashes to two
 * positions (its buckets, xs_sketch_buckets), and the weaker of the two
 * entries there decays by one with probability b^-count (b = 1.08); at
 * zero the arriving partner takes its place with count 1. This is
 * HeavyKeeper's count-with-exponential-decay (Gong et al., "HeavyKeeper: An
 * Accurate Algorithm for Finding Top-k Elephant Flows", USENIX ATC 2018),
 * with its d = 2 arrays folded into one. A count only grows with its own
 * partner's arrivals, so it never over-estimates: count is a guaranteed
 * lower bound of the pair count (err is 0; the field stays for the API),
 * exact since the entry last entered; a strong entry is practically never
 * decayed (1.08^-60 < 1 %), while a weak one (a tail partner) is decayed by
 * the tail's own arrivals and gives way. The coin is a hash of the
 * partner and the item's pair total, so the same input decays the same
 * entries: replay and restart give the same summary.
 *
 * Why not SpaceSaving (Metwally et al. 2005, this module until record
 * version 3): its error bound N/m is the whole problem for a best seller.
 * UCI's most-bought product takes part in ~88,000 pairs with thousands of
 * partners, its strongest a few hundred each (under 1 % of its stream):
 * with m = 160, N/m ~ 550 swamped them (entries like 555 +- 547, guaranteed
 * count ~8), so its list was empty. With the decay, the 100 most-bought UCI
 * products keep lists of 21 to 64 neighbours whose top 10 overlaps the exact
 * invoice-LLR top 10 by 7.6 of 10 on average (docs/EVALUATION.md);
 * tests/unit/core/test_sketch.c checks a synthetic stream of that shape against
 * exact counts.
 *
 * An update does not scan: an in-memory open-addressing index from item
 * to entry position (built lazily, never stored) finds the item in O(1),
 * and a full summary looks at two positions only: O(1) per update.
 *
 * Catalog fields (category, in stock, repurchasable, deleted) live here too,
 * because every scoring rule that needs them already reads this record.
 *
 * Neighbour lists. Besides the sketch, each class keeps the item's top
 * neighbours by similarity (at most XS_TOP_BOUGHT / XS_TOP_VIEWED), which is
 * what the scorer reads: it merges a few short lists per trigger instead of
 * ranking whole sketches. The item stage maintains them incrementally: every
 * time a pair (i, j) is counted, j's similarity in i's list is recomputed
 * from the counts of that moment (k11 the guaranteed count, n_i and n_j the
 * two items' pair totals, n twice the pairs counted in all: the pair table,
 * so the marginals come from the same sampled window as k11) and j
 * enters, moves within or leaves the list (xs_sketch_top_set). Counts move on
 * between co-occurrences, so each update also re-scores one more entry,
 * round robin from a stored cursor (`sweep`): of the list, over its slots,
 * when the list is full (a busy item re-scores its whole list every 64
 * updates; an entry outside it enters by ranking above the weakest, at its
 * own co-occurrence or when the list is ranked whole), else of the sketch
 * (an entry can become a neighbour without a co-occurrence of its own: the
 * item's support threshold or the pair totals moved). The sweep used to
 * go round the whole sketch (176 entries) always, so a full list's
 * similarities were ~3 times older; on UCI the top 10s of two input orders
 * agreed at 0.863 instead of 0.875 (`xsell bench order`, A/B), and
 * RetailRocket's HitRate was 0.0593 instead of 0.0613
 * (docs/EVALUATION.md). A quiet item is re-ranked
 * whole when the engine next uses it and the number of pairs counted has
 * doubled since it last was (`scored_at`): similarities such as LLR depend
 * on that total. All of this depends only on the input, so a list is a pure
 * function of it: replaying the input, or restarting from any checkpoint,
 * gives the same lists. Of the input in its order: the same pairs in
 * another order or grouping (items.global's batches) score the entries at
 * other moments, and near similarities swap; on UCI the top 10s of two
 * orders agree at 0.875-0.895, at 1.0 where the summary never filled once
 * both are ranked whole at the same moment (`xsell bench order`,
 * docs/SCALING.md). In memory a list entry refers to its sketch entry
 * by position; when the summary replaces an entry, the list drops it (an
 * arrival that is not kept changes no list). Stored, the lists are a
 * record of their own (the `neighbours` column family, below), by
 * neighbour key: encoding maps positions to keys, loading maps the keys
 * back through the summary (a key it no longer holds drops its entry).
 * Similarities are kept as bfloat16 (the upper half of a float: 8
 * significant bits, neighbours closer than ~0.4 % tie and are ordered by
 * item), in memory as on disk, so a reloaded list is the same list.
 *
 * Stored format (xs_sketch_encode), version 5, the `items` record: the
 * summaries and counts only (the lists are the `neighbours` record,
 * xs_sketch_lists_encode below; the checkpoint writes both records of a
 * changed item in the same WriteBatch):
 *   'I' | 05 | flags u8 | category u64 | varint n_bought | varint n_viewed |
 *   varint n_b | n_b x { item u64 | varint count } | sweep_b u8 |
 *   varint total_b |
 *   varint n_v | n_v x { item u64 | varint count } | sweep_v u8 |
 *   varint total_v |
 *   varint scored_at
 * total_x is the class's pair total (>= the sum of its counts); sweep_x the
 * list slot (a full list) or sketch position the re-scoring resumes at (a
 * value past the end starts again at the first); scored_at the pairs counted
 * when the lists were last ranked whole (both the item stage's, so they
 * stay with the summary). Counts saturate at 2^28 - 1, so a count takes at
 * most 4 bytes. Version 4 held the lists here, after each class's entries:
 *   varint t_x | t_x x { position u8 | similarity bf16 LE }
 * (before sweep_x); it still decodes, into summary and lists (marked
 * changed: they are in no `neighbours` record yet), and is written again as
 * version 5 and a `neighbours` record. Version 3 stored an
 * error beside each count (always 0 with the decaying summary); versions 1
 * and 2 (SpaceSaving, no totals: a total is then the sum of the counts,
 * exact for SpaceSaving) decode with their guaranteed counts (count -
 * error), empty lists and scored_at 0, so the engine ranks them anew, with
 * the pair-table marginals, on first use.
 * Each record stays under 4 KiB. An entry takes at most 8 + 4 = 12 bytes
 * (typically ~9), so with the capacities below an item record is at most
 * 3 + 8 + 5 + 5 + (2 + 176 x 12 + 1 + 10) + (2 + 128 x 12 + 1 + 10) + 10
 *   = 3,705 bytes (version 4, with its lists of 3 bytes an entry: 4,091),
 * and its `neighbours` record at most 1,292 bytes (10 bytes an entry:
 * the key instead of the position is what lets a list travel alone);
 * tests/unit/core/test_sketch.c fills every field to its widest and checks
 * exactly these. Together an item's two records take at most 4,997 bytes:
 * 906 more than version 4's one record, the neighbour keys of
 * self-contained lists (7 bytes an entry over a sketch position).
 *
 * Capacities, chosen with `xsell eval` on the five shared data sets
 * (docs/EVALUATION.md): 176 bought-together entries, with each pair
 * counted from both items' summaries (the item stage), keep the HitRate of
 * the exact, unbounded counts on UCI Online Retail (160 kept 0.999x of it,
 * 128 lost 0.8 % of its hits); 128 viewed-together entries (48 until version 3) are what the
 * view-heavy RetailRocket sessions need (48 kept 0.70x of the exact
 * reference's hits, 96 0.92x, 128 above it, with min_support 1). Lists of 64
 * per class keep the figures of ranking whole sketches (32 and 16 cost 10 %
 * of the hits on RetailRocket, whose shoppers have seen many of their
 * context items' best neighbours already).
 */
#ifndef XSELL_SKETCH_H
#define XSELL_SKETCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XS_SKETCH_BOUGHT_CAP 176
#define XS_SKETCH_VIEWED_CAP 128
#define XS_ITEM_VERSION 5
/* Counts saturate here (a varint of at most 4 bytes). */
#define XS_SKETCH_COUNT_MAX ((1u << 28) - 1)
/* Decay base of the summaries (HeavyKeeper's b). */
#define XS_SKETCH_DECAY_BASE 1.08
#ifndef XS_TOP_BOUGHT
#define XS_TOP_BOUGHT 64
#endif
#ifndef XS_TOP_VIEWED
#define XS_TOP_VIEWED 64
#endif

typedef enum xs_class { XS_CLASS_BOUGHT = 0, XS_CLASS_VIEWED = 1, XS_CLASS__COUNT } xs_class_t;

typedef struct xs_ss_entry {
    uint64_t item;
    uint32_t count;
    uint32_t err;
} xs_ss_entry_t;

#define XS_ITEM_F_OUT_OF_STOCK 0x01
#define XS_ITEM_F_REPURCHASABLE 0x02
#define XS_ITEM_F_DELETED 0x04
#define XS_ITEM_F_CATALOG 0x08 /* an ItemUpdate was seen */

/* Slots of the in-memory position indexes (powers of two, load <= 5/8 and 1/2). */
#define XS_SKETCH_BOUGHT_SLOTS 256
#define XS_SKETCH_VIEWED_SLOTS 256

/* One neighbour-list entry. */
typedef struct xs_top {
    uint64_t item; /* the sketch entry's item (not stored: derived from idx) */
    float sim;     /* > 0 */
    uint8_t idx;   /* position of the sketch entry */
} xs_top_t;

typedef struct xs_item {
    uint64_t category; /* hash of the category string, 0 = none */
    uint32_t n_users[XS_CLASS__COUNT];
    uint64_t scored_at; /* users in total when the lists were last ranked whole */
    uint8_t flags;
    uint16_t n_pairs[XS_CLASS__COUNT];
    xs_ss_entry_t bought[XS_SKETCH_BOUGHT_CAP];
    xs_ss_entry_t viewed[XS_SKETCH_VIEWED_CAP];
    uint8_t n_top[XS_CLASS__COUNT];
    uint8_t sweep[XS_CLASS__COUNT]; /* next list slot (full list) or sketch position */
    xs_top_t top_bought[XS_TOP_BOUGHT];
    xs_top_t top_viewed[XS_TOP_VIEWED];
    /* Not stored: item -> position + 1 (0 empty), valid when `indexed`.
     * Code that writes the entry arrays directly must clear `indexed`. */
    bool indexed;
    uint8_t slots_bought[XS_SKETCH_BOUGHT_SLOTS];
    uint8_t slots_viewed[XS_SKETCH_VIEWED_SLOTS];
    /* Not stored, always valid: sketch position -> list slot + 1 (0: not
     * listed), and the list's weakest slot + 1 (0: unknown). */
    uint8_t top_slot_bought[XS_SKETCH_BOUGHT_CAP];
    uint8_t top_slot_viewed[XS_SKETCH_VIEWED_CAP];
    uint8_t top_weak[XS_CLASS__COUNT];
    /* Not stored: set by every change of a list (an entry added, dropped
     * or moved, a similarity changed; setting the same one is no change),
     * cleared by its owner once the lists are stored (the engine writes the
     * `neighbours` record only when set). xs_sketch_init clears it. */
    bool lists_changed;
    /* Stored: the number of pairs the item took part in, per class (every
     * xs_sketch_add_pair, kept or not): its marginal in the pair table. */
    uint64_t pair_total[XS_CLASS__COUNT];
} xs_item_t;

void xs_sketch_init(xs_item_t *it);
/* Entries of a class and the class capacity. */
xs_ss_entry_t *xs_sketch_pairs(xs_item_t *it, xs_class_t cls, uint16_t *cap);
const xs_ss_entry_t *xs_sketch_pairs_const(const xs_item_t *it, xs_class_t cls);

/* Counts one more co-occurrence of `other` (see "Summaries"); returns the
 * position of its entry, or -1 when it is not kept (a full summary whose
 * bucket entry only decayed). When it replaces an entry, the neighbour list
 * drops the replaced one. */
int xs_sketch_add_pair(xs_item_t *it, xs_class_t cls, uint64_t other);

/* The number of pairs counted into a class's summary (its marginal). */
static inline uint64_t xs_sketch_pair_total(const xs_item_t *it, xs_class_t cls)
{
    return it->pair_total[cls];
}

/* The two positions (buckets) of a full summary of n entries that `other`
 * may take (sketch.h, "Summaries"). */
static inline void xs_sketch_buckets(uint64_t other, int n, int *p1, int *p2)
{
    uint64_t h = other * UINT64_C(0xd6e8feb86659fd93);
    *p1 = (int)((h >> 32) % (uint64_t)n);
    *p2 = (int)((h & 0xffffffffu) % (uint64_t)n);
}

/* The neighbour list of a class (unordered). */
const xs_top_t *xs_sketch_top(const xs_item_t *it, xs_class_t cls, int *n);
/* List capacity of a class. */
int xs_sketch_top_cap(xs_class_t cls);
/*
 * Sets the similarity of the sketch entry at position idx: sim <= 0 removes
 * it from the list; otherwise it is updated, added, or replaces the list's
 * weakest entry when it ranks above it (order: similarity descending, then
 * item ascending).
 */
void xs_sketch_top_set(xs_item_t *it, xs_class_t cls, int idx, double sim);
/* Empties the list of a class. */
void xs_sketch_top_clear(xs_item_t *it, xs_class_t cls);
/* Count estimate and error for `other` (0, 0 when absent). */
uint32_t xs_sketch_pair_count(const xs_item_t *it, xs_class_t cls, uint64_t other, uint32_t *err);

xs_err_t xs_sketch_encode(const xs_item_t *it, xs_buf_t *out);
xs_err_t xs_sketch_decode(xs_item_t *it, const void *data, size_t len, char *errstr,
                          size_t errstr_size);

/* ---- the stored neighbour lists (the `neighbours` record) ---------------------- */

/*
 * Stored format (xs_sketch_lists_encode), version 1, the `neighbours` record:
 *   'T' | 01 | item u64 |
 *   varint t_b | t_b x { neighbour u64 | similarity bf16 LE } |
 *   varint t_v | t_v x { neighbour u64 | similarity bf16 LE }
 * Magic first, then version, as the store's other records ('I' items, 'U'
 * users, 'N' names, 'M' meta globals): each family's magic is its own, so a
 * record read from the wrong family is "not neighbour lists", never a version
 * or a field misread. Strict: item and neighbours non-zero, a neighbour not
 * the item and at most once per class, t_x at most the class's list capacity
 * and in its shortest form, a similarity finite and positive, no trailing
 * bytes. At most 2 + 8 + 2 x (1 + 64 x 10) = 1,292 bytes
 * (tests/unit/core/test_sketch.c checks it). The item is the record's key
 * too: kept inside so that a record stands alone and one stored under
 * another item's key is an error, not another item's lists.
 * The engine stores an item's record only when its lists changed since it
 * last stored them (`lists_changed`), and none for empty lists (it deletes
 * the record when stored lists became empty): no record means empty lists.
 */

#define XS_LISTS_VERSION 1
#define XS_LISTS_MAGIC 'T'
#define XS_TOP_MAX (XS_TOP_BOUGHT > XS_TOP_VIEWED ? XS_TOP_BOUGHT : XS_TOP_VIEWED)

/* One item's neighbour lists, self-contained: neighbours by key, not by
 * sketch position, so a list stands alone (inspect, a reader without the
 * summary). In the order of the in-memory list (unordered). */
typedef struct xs_item_lists {
    uint64_t item; /* the list's item (key), non-zero */
    uint8_t n[XS_CLASS__COUNT];
    struct {
        uint64_t item; /* non-zero, not the list's item, once per class */
        float sim;     /* > 0, finite, a bfloat16 value */
    } top[XS_CLASS__COUNT][XS_TOP_MAX];
} xs_item_lists_t;

/* Encodes the lists of `it`, the item with key `item` (non-zero): each
 * entry's position becomes its neighbour's key. XS_ERR_INVALID for item 0. */
xs_err_t xs_sketch_lists_encode(const xs_item_t *it, uint64_t item, xs_buf_t *out);
/* Decodes a lists record; strict (see the format above). On error `l` is
 * left empty and errstr says why. */
xs_err_t xs_sketch_lists_decode(xs_item_lists_t *l, const void *data, size_t len, char *errstr,
                                size_t errstr_size);
/* Whether an item record (xs_sketch_encode's bytes) leaves its lists to the
 * `neighbours` record: version 5 on. Older records hold them (version 4) or
 * have none to keep (1 to 3). */
static inline bool xs_sketch_lists_apart(const void *data, size_t len)
{
    return len >= 2 && ((const uint8_t *)data)[1] >= 5;
}
/* Replaces the lists of `it` (its summary decoded already) with `l`: each
 * neighbour's key maps back to its summary position; a key the summary no
 * longer holds drops its entry (as when the summary replaces an entry).
 * Returns the number of entries dropped; `lists_changed` is left set
 * exactly when one was (the lists then differ from the stored `l`). */
int xs_sketch_lists_apply(xs_item_t *it, const xs_item_lists_t *l);

/* ---- similarity ----------------------------------------------------------- */

typedef enum xs_sim {
    XS_SIM_LLR = 0,    /* Dunning's log-likelihood ratio (G^2) */
    XS_SIM_COSINE,     /* k11 / sqrt(n_i n_j) */
    XS_SIM_JACCARD,    /* k11 / (n_i + n_j - k11) */
    XS_SIM_LIFT,       /* k11 N / (n_i n_j) */
    XS_SIM_LLR_COSINE, /* cosine, for pairs whose LLR passes the threshold */
    XS_SIM_COUNT,      /* raw co-occurrence count */
    XS_SIM_CONFIDENCE, /* k11 / n_i: P(j | i), association-rule confidence */
    XS_SIM__COUNT
} xs_sim_t;

const char *xs_sketch_sim_name(xs_sim_t s);
int xs_sketch_sim_from_name(const char *name); /* -1 when unknown */

/*
 * Dunning's G^2 for the 2x2 table (k11 both, k12 i without j, k21 j without i,
 * k22 neither), computed with entropies: 2 (H(rows) + H(cols) - H(table))
 * on unnormalised counts (x log x). Never negative.
 */
double xs_sketch_llr(double k11, double k12, double k21, double k22);

/*
 * Similarity of i and j from k11 (users with both), n_i, n_j (users with
 * each) and n (all users). Inputs are clamped into a consistent table.
 * LLR and LLR-cosine score 0 for negatively associated pairs (k11 below its
 * expectation n_i n_j / n); for XS_SIM_LLR_COSINE, pairs with LLR < llr_min score 0.
 */
double xs_sketch_similarity(xs_sim_t sim, double k11, double n_i, double n_j, double n,
                            double llr_min);

#ifdef __cplusplus
}
#endif
#endif
