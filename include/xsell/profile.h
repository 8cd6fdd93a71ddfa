/*
 * xsell — user profiles (preference vectors), pure C, no I/O.
 *
 * A profile holds, with a hard cap on every part:
 *   items   decayed affinity over the items the user interacted with, with the
 *           strongest signal seen (view < cart < purchase), the last
 *           interaction time and the last purchase time. It doubles as the
 *           interaction window for co-occurrence counting (entries within the
 *           time window, most recent kmax first). When full, the entry with the
 *           lowest decayed affinity is evicted.
 *   cats    decayed affinity over categories (top XS_PROFILE_MAX_CATS).
 *   cart    the current cart (item, quantity).
 *   dedup   a ring of 32-bit hashes of recent event ids (producer retries).
 *   last    per placement, the hash and time of the last list published
 *           (suppression of identical re-publication).
 * Affinity decays by half-life in event time, lazily: a score is stored with
 * the time it refers to and decayed when read (xs_profile_decay()).
 *
 * Stored format (xs_profile_encode), version 1, little-endian:
 *
 *   +------+-----+-----------+----------+-------+
 *   | 'U'  | 01  | flags u8  | last_ts  | n_ev  |   varint last_ts (ms), varint n_ev
 *   +------+-----+-----------+----------+-------+
 *   | n_items u8 | n_items x { item u64 | signal u8 | score f32 |
 *   |            |   varint (last_ts - ts) | varint bought: 0 none, else last_ts - bought_ts + 1 } |
 *   | n_cats u8  | n_cats x { cat u64 | score f32 | varint (last_ts - ts) } |
 *   | n_cart u8  | n_cart x { item u64 | varint qty } |
 *   | n_dedup u8 | dedup_pos u8 | n_dedup x u32 |
 *   | 4 x { list hash u32 (0 none) | varint (last_ts - list ts) } |
 *
 * A value with another magic, a newer version or trailing/missing bytes is
 * rejected (XS_ERR_VERSION / XS_ERR_DECODE), never half-read.
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

#define XS_PROFILE_MAX_ITEMS 32
#define XS_PROFILE_MAX_CATS 8
#define XS_PROFILE_MAX_CART 24
#define XS_PROFILE_DEDUP 8
#define XS_PROFILE_VERSION 1

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

#define XS_PROFILE_F_BOUGHT 0x01 /* the user has had a cart/purchase signal */

typedef struct xs_profile {
    int64_t last_ts;   /* latest event time applied */
    uint32_t n_events; /* events applied (saturating) */
    uint8_t flags;
    uint8_t n_items, n_cats, n_cart, n_dedup, dedup_pos;
    xs_profile_item_t items[XS_PROFILE_MAX_ITEMS];
    xs_profile_cat_t cats[XS_PROFILE_MAX_CATS];
    xs_cart_line_t cart[XS_PROFILE_MAX_CART];
    uint32_t dedup[XS_PROFILE_DEDUP];
    uint32_t last_list_hash[XS_PLACEMENT__COUNT];
    int64_t last_list_ts[XS_PLACEMENT__COUNT];
} xs_profile_t;

void xs_profile_init(xs_profile_t *p);

/* score * 2^-((now - from) / half_life_ms); no growth when now < from. */
float xs_profile_decay(float score, int64_t from, int64_t now, double half_life_ms);

/* True when event_hash is in the dedup ring; otherwise records it and returns false. */
bool xs_profile_check_dedup(xs_profile_t *p, uint64_t event_hash);

/* Index of item in p->items, or -1. */
int xs_profile_find(const xs_profile_t *p, uint64_t item);

/*
 * Records an interaction: the affinity becomes decayed(old) + weight, the
 * signal the max of old and `signal`, ts = now (bought_ts = now when signal
 * is PURCHASE). Returns the previous signal (XS_SIG_NONE when the item was
 * not in the profile). When the profile is full the entry with the lowest
 * decayed affinity (ties: oldest, then smallest id) is evicted first.
 */
xs_signal_t xs_profile_touch(xs_profile_t *p, uint64_t item, xs_signal_t signal, float weight,
                             int64_t now, double half_life_ms);

void xs_profile_touch_cat(xs_profile_t *p, uint64_t cat, float weight, int64_t now,
                          double half_life_ms);

/* Cart: add qty (new line when absent; when full the oldest line is dropped),
 * remove qty (line removed at <= 0), clear. */
void xs_profile_cart_add(xs_profile_t *p, uint64_t item, int32_t qty);
void xs_profile_cart_remove(xs_profile_t *p, uint64_t item, int32_t qty);
void xs_profile_cart_clear(xs_profile_t *p);
bool xs_profile_in_cart(const xs_profile_t *p, uint64_t item);

/* Appends the stored form to out. */
xs_err_t xs_profile_encode(const xs_profile_t *p, xs_buf_t *out);
/* Decodes; errstr says what is wrong. */
xs_err_t xs_profile_decode(xs_profile_t *p, const void *data, size_t len, char *errstr,
                           size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
