/*
 * xsell — a seeded synthetic clickstream for benchmarks (pure C, no I/O).
 *
 * The stream is a sequence of shopping sessions, interleaved: a fixed
 * number of sessions are open at a time and each next event comes from one
 * of them chosen at random, so users' events interleave as they do on a
 * real storefront. A session belongs to a user drawn from a Zipf law over
 * n_users (a few heavy users, a long tail of one-off visitors); it views a
 * few items (PRODUCT_VIEW with the item's category), adds some of them to
 * the cart (ADD) and ends, with some probability, with a PURCHASE of the
 * cart. Items are drawn from a Zipf law over n_items.
 *
 * Planted complements: the first n_complements items by popularity rank
 * each have one complement (another item, fixed by the seed); when a
 * session views such an item it also views its complement with probability
 * p_complement, and adds it to the cart together with the anchor. A good
 * engine finds these pairs among its top bought-together neighbours
 * (xs_synth_complement() gives the ground truth).
 *
 * Determinism: the generator uses its own PRNG (xoshiro256** seeded with
 * splitmix64), never rand(); the same options give the same events on any
 * machine with IEEE-754 doubles. Zipf draws use rejection-inversion
 * (Hörmann and Derflinger, "Rejection-inversion to generate variates from
 * monotone discrete distributions", 1996): O(1) per draw, no tables, so a
 * billion-item catalogue costs nothing. Popularity ranks are scattered over
 * the id space by a fixed bijection, so hot ids are not "u0000001".
 *
 * Ids: users "u<n>", items "i<n>", categories "c<n>", events "e<seed>-<n>";
 * event times start at t0_ms and advance by a fixed step so that the
 * stream spans span_days of event time.
 */
#ifndef XSELL_SYNTH_H
#define XSELL_SYNTH_H

#include <stdint.h>
#include "xsell/common.h"
#include "xsell/event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_synth_opts {
    uint64_t seed;            /* default 1 */
    uint64_t n_events;        /* events to generate; default 1,000,000 */
    uint32_t n_users;         /* default 1,000,000 */
    uint32_t n_items;         /* default 100,000 */
    uint32_t n_categories;    /* default 500 */
    double zipf_users;        /* exponent; default 0.8 */
    double zipf_items;        /* exponent; default 1.0 */
    double views_per_session; /* mean (geometric); default 4 */
    double p_add;             /* a viewed item is added to the cart; default 0.25 */
    double p_purchase;        /* a session with a cart ends with a purchase; default 0.5 */
    uint32_t n_complements;   /* planted complement pairs; default 1000 */
    double p_complement;      /* complement viewed (and added with the anchor); default 0.5 */
    uint32_t open_sessions;   /* sessions interleaved; default 256 */
    int64_t t0_ms;            /* first event time; default 2024-01-01 */
    double span_days;         /* event time covered by the stream; default 30 */
} xs_synth_opts_t;

void xs_synth_opts_default(xs_synth_opts_t *o);

typedef struct xs_synth xs_synth_t;

/* NULL + errstr on bad options or out of memory. Copies opts. */
xs_synth_t *xs_synth_new(const xs_synth_opts_t *opts, char *errstr, size_t errstr_size);
void xs_synth_destroy(xs_synth_t *s); /* NULL is a no-op */

/*
 * The next event into *ev (initialised here; the caller clears it with
 * xs_event_clear). XS_ERR_EOF after n_events events, XS_ERR_NOMEM.
 */
xs_err_t xs_synth_next(xs_synth_t *s, xs_event_t *ev);

/* Events generated so far. */
uint64_t xs_synth_count(const xs_synth_t *s);

/*
 * Planted pair number k (0 <= k < n_complements): writes the anchor's and
 * the complement's item ids (NUL-terminated) into a and b (>= 16 bytes).
 */
void xs_synth_complement(const xs_synth_t *s, uint32_t k, char *a, char *b);

#ifdef __cplusplus
}
#endif
#endif
