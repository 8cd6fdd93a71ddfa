/*
 * xsell — user profiles (preference vectors), pure C, no I/O.
 *
 * A profile holds, with a hard cap on every part:
 *   items   decayed affinity over the items the user interacted with, with the
 *           strongest signal seen (view < cart < purchase), the last
 *           interaction time and the last purchase time. It doubles as the
 *           interaction window for co-occurrence counting (entries within the
 *           time window, most recent kmax first). When full, the entry with the
 *           lowest decayed affinity is evicted; an evicted purchase goes to the
 *           rebuy filter.
 *   cats    decayed affinity over categories (top XS_PROFILE_MAX_CATS).
 *   cart    the current cart: the XS_PROFILE_MAX_CART most recent lines
 *           (item, quantity), and a Bloom filter of the older lines pushed
 *           out of it (the cart overflow), cleared with the cart.
 *   rebuy   time-bucketed Bloom filters of the purchases evicted from items:
 *           each bucket covers the purchase times [lo, hi] of what it holds;
 *           a bucket is dropped once hi is older than the rebuy horizon (the
 *           longest rebuy window of any arm), so it "ages out" in event time.
 *   dedup   a ring of 32-bit hashes of recent event ids (producer retries).
 *   last    per placement, the hash and time of the last list published
 *           (suppression of identical re-publication) and 16-bit fingerprints
 *           of its first XS_PROFILE_SEEN items (the live hit-rate signal: was
 *           an item added to the cart in the last list shown for a placement).
 * Affinity decays by half-life in event time, lazily: a score is stored with
 * the time it refers to and decayed when read (xs_profile_decay()). Scores
 * are kept as bfloat16 (8 significant bits), in memory as on disk, so a
 * reloaded profile is the same profile. Entries, lists and buckets older than
 * XS_PROFILE_HORIZON_MS (2^35 ms, about 398 days) behind the latest event are
 * forgotten (xs_profile_forget), which bounds every stored time distance.
 *
 * Exclusions never miss (no false negatives), whatever the length of the
 * cart or of the purchase history: xs_profile_in_cart() answers from the
 * lines and the overflow filter, xs_profile_bought_within() from the items'
 * exact purchase times and from the rebuy buckets whose hi is inside the
 * window. A Bloom filter answers "maybe" for some items never added (false
 * positives: about 1 % at 20 items in a filter, 10 % at 50, 70 % at 200),
 * which only makes the rule stricter; a bucket holds items bought up to one
 * horizon before its hi, so an evicted purchase is excluded for up to twice
 * the window. A line removed from the cart after it overflowed stays in the
 * filter until the cart is cleared (by a PURCHASE). A purchase evicted while
 * the longest window was shorter than it is now (list.rebuy_days raised
 * between runs) may have been left out: the new window holds for purchases
 * evicted after the change.
 *
 * Stored format (xs_profile_encode), version 2, little-endian; "back" is a
 * varint distance in ms before last_ts (< 2^35: at most 5 bytes):
 *
 *   +------+-----+-----------+----------+-------+
 *   | 'U'  | 02  | flags u8  | last_ts  | n_ev  |   varint last_ts (ms), varint n_ev
 *   +------+-----+-----------+----------+-------+
 *   | n_items u8 | n_items x { item u64 | sig u8 (bit 7: bought) | score bf16 |
 *   |            |   back ts | [back bought_ts, when bit 7] } |
 *   | n_cats u8  | n_cats x { cat u64 | score bf16 | back ts } |
 *   | n_cart u8  | n_cart x { item u64 | varint qty } |
 *   | n_over u8 (cart lines in the overflow filter, saturating; 0: none) | [32 bytes] |
 *   | n_buckets u8 | n_buckets x { back hi | varint (hi - lo) | 32 bytes } |
 *   | n_dedup u8 | dedup_pos u8 | n_dedup x u32 |
 *   | 4 x { list hash u32 (0 none) | [back list ts | n u8 | n x fp u16], when hash != 0 } |
 *
 * Worst case (event times are validated to 2000..2100, so last_ts takes 6
 * bytes): 14 + 1 + 24 x 21 + 1 + 8 x 15 + 1 + 8 x 13 + 33 + 1 + 2 x 42
 * + 34 + 4 x 30 = 1,017 bytes <= XS_PROFILE_MAX_BYTES (1 KiB).
 *
 * Version 1 (32 items with f32 scores, 24 cart lines, no filters, no
 * fingerprints, worst case about 1.3 KB) is not read: it is an
 * XS_ERR_VERSION that says to rebuild the state (--reset-state
 * --from-beginning), because its evicted purchases and cart lines are lost
 * and an exclusion read from it could miss. A value with another magic, a
 * newer version or trailing/missing bytes is rejected (XS_ERR_VERSION /
 * XS_ERR_DECODE), never half-read.
 */
#ifndef XSELL_PROFILE_H
#define XSELL_PROFILE_H

#include <stdbool.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XS_PROFILE_MAX_ITEMS 24
#define XS_PROFILE_MAX_CATS 8
#define XS_PROFILE_MAX_CART 8
#define XS_PROFILE_DEDUP 8
#define XS_PROFILE_SEEN 10        /* fingerprints kept of the last list per placement */
#define XS_PROFILE_BLOOM_BYTES 32 /* 256 bits per filter */
#define XS_PROFILE_BLOOM_K 3      /* bits set per item */
#define XS_PROFILE_REBUY_BUCKETS 2
#define XS_PROFILE_HORIZON_MS (INT64_C(1) << 35)
#define XS_PROFILE_MAX_BYTES 1024 /* stored size, worst case */
#define XS_PROFILE_VERSION 2

typedef enum xs_signal {
    XS_SIG_NONE = 0,
    XS_SIG_VIEW = 1,
    XS_SIG_CART = 2,
    XS_SIG_PURCHASE = 3,
} xs_signal_t;

typedef struct xs_profile_item {
    uint64_t item;
    int64_t ts;        /* last interaction, ms event time */
    int64_t bought_ts; /* last purchase, 0 when never */
    float score;       /* affinity as of ts */
    uint8_t signal;    /* strongest xs_signal_t seen */
} xs_profile_item_t;

typedef struct xs_profile_cat {
    uint64_t cat;
    int64_t ts;
    float score;
} xs_profile_cat_t;

typedef struct xs_cart_line {
    uint64_t item;
    int32_t qty;
} xs_cart_line_t;

/* A Bloom filter of XS_PROFILE_BLOOM_BYTES * 8 bits, XS_PROFILE_BLOOM_K bits per item. */
typedef struct xs_bloom {
    uint8_t bits[XS_PROFILE_BLOOM_BYTES];
} xs_bloom_t;

void xs_profile_bloom_add(xs_bloom_t *b, uint64_t item);
bool xs_profile_bloom_has(const xs_bloom_t *b, uint64_t item);

/* Purchases with times in [lo, hi], evicted from the items. */
typedef struct xs_rebuy_bucket {
    int64_t lo, hi;
    xs_bloom_t bloom;
} xs_rebuy_bucket_t;

#define XS_PROFILE_F_BOUGHT 0x01 /* the user has had a cart/purchase signal */

typedef struct xs_profile {
    int64_t last_ts;   /* latest event time applied */
    uint32_t n_events; /* events applied (saturating) */
    uint8_t flags;
    uint8_t n_items, n_cats, n_cart, n_dedup, dedup_pos;
    uint8_t n_over;    /* cart lines pushed into cart_over (saturating); 0: filter empty */
    uint8_t n_buckets; /* rebuy buckets in use, newest (largest hi) last */
    xs_profile_item_t items[XS_PROFILE_MAX_ITEMS];
    xs_profile_cat_t cats[XS_PROFILE_MAX_CATS];
    xs_cart_line_t cart[XS_PROFILE_MAX_CART];
    xs_bloom_t cart_over;
    xs_rebuy_bucket_t rebuy[XS_PROFILE_REBUY_BUCKETS];
    uint32_t dedup[XS_PROFILE_DEDUP];
    uint32_t last_list_hash[XS_PLACEMENT__COUNT];
    int64_t last_list_ts[XS_PLACEMENT__COUNT];
    uint8_t last_n[XS_PLACEMENT__COUNT]; /* fingerprints held of that list */
    uint16_t last_fp[XS_PLACEMENT__COUNT][XS_PROFILE_SEEN];
} xs_profile_t;

void xs_profile_init(xs_profile_t *p);

/* score * 2^-((now - from) / half_life_ms); no growth when now < from. */
float xs_profile_decay(float score, int64_t from, int64_t now, double half_life_ms);

/* True when event_hash is in the dedup ring; otherwise records it and returns false. */
bool xs_profile_check_dedup(xs_profile_t *p, uint64_t event_hash);

/* Index of item in p->items, or -1. */
int xs_profile_find(const xs_profile_t *p, uint64_t item);

/*
 * Records an interaction: the affinity becomes decayed(old) + weight (rounded
 * to bfloat16), the signal the max of old and `signal`, ts = now (bought_ts =
 * now when signal is PURCHASE). Returns the previous signal (XS_SIG_NONE when
 * the item was not in the profile). When the profile is full the entry with
 * the lowest decayed affinity (ties: oldest, then smallest id) is evicted
 * first; when it had been bought less than rebuy_ms (the longest rebuy
 * window in use, < XS_PROFILE_HORIZON_MS) before now, it goes to the rebuy
 * filter, so xs_profile_bought_within() still finds it.
 */
xs_signal_t xs_profile_touch(xs_profile_t *p, uint64_t item, xs_signal_t signal, float weight,
                             int64_t now, double half_life_ms, int64_t rebuy_ms);

/*
 * Forgets what no rule can need any more: items, categories and list
 * records older than XS_PROFILE_HORIZON_MS before p->last_ts, and rebuy
 * buckets whose newest purchase is rebuy_ms or more before it. Call after
 * moving last_ts forward.
 */
void xs_profile_forget(xs_profile_t *p, int64_t rebuy_ms);

/* True when item may have been bought less than window_ms before now (never
 * false for an item that was, when window_ms <= the rebuy_ms it was evicted
 * with). */
bool xs_profile_bought_within(const xs_profile_t *p, uint64_t item, int64_t now, int64_t window_ms);

/* The 16-bit fingerprint of an item in the last-list records. */
uint16_t xs_profile_fp(uint64_t item);
/* Remembers the first XS_PROFILE_SEEN of the n items of the list published
 * for placement (hash h, at ts). */
void xs_profile_set_last_list(xs_profile_t *p, int placement, uint32_t h, int64_t ts,
                              const uint64_t *items, int n);
/* -1: no list remembered for placement; 1: item was (by fingerprint) among
 * the first XS_PROFILE_SEEN items of the last list published; 0: it was not. */
int xs_profile_last_list_has(const xs_profile_t *p, int placement, uint64_t item);

void xs_profile_touch_cat(xs_profile_t *p, uint64_t cat, float weight, int64_t now,
                          double half_life_ms);

/* Cart: add qty (new line when absent; when full the oldest line goes to the
 * overflow filter), remove qty (line removed at <= 0; an item only in the
 * filter stays there), clear (lines and filter). in_cart: in a line or,
 * maybe, in the filter (no false negatives). */
void xs_profile_cart_add(xs_profile_t *p, uint64_t item, int32_t qty);
void xs_profile_cart_remove(xs_profile_t *p, uint64_t item, int32_t qty);
void xs_profile_cart_clear(xs_profile_t *p);
bool xs_profile_in_cart(const xs_profile_t *p, uint64_t item);

/*
 * Merges src into p (a session's profile into its user's, xs_engine_process):
 * last_ts the later of the two, event counts added, flags ORed; items and
 * categories the union, an entry held by both summed as of its later time,
 * then the weakest evicted down to the caps as xs_profile_touch() and
 * xs_profile_touch_cat() evict (an evicted purchase goes to the rebuy
 * filter); src's cart lines added after p's (the oldest overflow into the
 * filter) and src's overflow filter ORed into p's; src's unexpired rebuy
 * buckets into free slots, else ORed into p's bucket whose span grows least
 * (an item stays excluded at least as long as before); per placement the
 * more recent last-list record. The dedup ring stays p's. Every cap holds,
 * so the stored worst case above holds too; no exclusion that p or src made
 * is lost (no false negatives). Bounded work: O(XS_PROFILE_MAX_ITEMS^2).
 */
void xs_profile_merge(xs_profile_t *p, const xs_profile_t *src, double half_life_ms,
                      int64_t rebuy_ms);

/* Appends the stored form to out. */
xs_err_t xs_profile_encode(const xs_profile_t *p, xs_buf_t *out);
/* Decodes; errstr says what is wrong. */
xs_err_t xs_profile_decode(xs_profile_t *p, const void *data, size_t len, char *errstr,
                           size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
