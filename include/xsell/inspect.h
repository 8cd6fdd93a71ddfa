/*
 * xsell — reading a state directory for people and for diff: the decoders
 * of the records the engine stores in `names` and `meta`, and the text
 * views behind `xsell inspect`. Pure formatting over xs_store_iterate() and
 * the stored-format decoders (xs_profile_decode, xs_sketch_decode,
 * xs_sketch_lists_decode); RocksDB
 * stays inside store.c.
 *
 * The dump (xs_inspect_dump) is canonical: one line per fact, records in
 * column-family order (meta, names, items, neighbours, users) and, inside a family, in
 * RocksDB key order (bytewise); fields inside a record in stored order
 * (the order is part of the state: SpaceSaving slots, profile slots).
 * Hashes are printed as 16 hex digits, integers in decimal, floats with %a
 * (exact: two dumps are equal iff the decoded values are bit-identical),
 * strings quoted with C escapes for anything outside printable ASCII. Two
 * state directories hold the same state iff their dumps are byte-equal,
 * so `diff` shows exactly what differs.
 *
 *   meta "format" X S 1 seed           -> meta format version=1 seed=...
 *   meta "globals"                     -> meta globals users_total=... + one line per trend slot
 *   meta "offset/<topic>/<partition>"  -> meta offset topic=... partition=... next=...
 *   names <hash>                       -> name <hash> id="..." title="..."
 *   items <hash>                       -> item <hash> ... + one line per sketch entry
 *   neighbours <hash>                  -> neighbours <hash> bought=.. viewed=.. + one line
 *                                         per list entry (neighbour key, similarity)
 *   users <partition><hash>            -> user <partition>/<hash> ... + one line per slot
 *
 * A record that does not decode is printed as `<cf> CORRUPT key=<hex>
 * reason="..." value=<hex>` and makes the dump return XS_ERR_DECODE after
 * printing everything else.
 */
#ifndef XSELL_INSPECT_H
#define XSELL_INSPECT_H

#include <stdint.h>
#include <stdio.h>
#include "xsell/common.h"
#include "xsell/engine.h"
#include "xsell/store_records.h"
#include "xsell/store.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- decoders of the engine's names and meta records ---------------------- */

/* ---- formatting ----------------------------------------------------------- */

/*
 * Appends the canonical dump lines of one stored record (cf, key, value) to
 * out. Returns XS_OK, or XS_ERR_DECODE/XS_ERR_VERSION after appending a
 * CORRUPT line. Never reads outside the given bytes (fuzzed).
 */
xs_err_t xs_inspect_format_record(xs_cf_t cf, const void *key, size_t key_len, const void *val,
                                  size_t val_len, xs_buf_t *out);

/* The whole store, canonical (see above). XS_ERR_DECODE when a record is corrupt. */
xs_err_t xs_inspect_dump(xs_store_t *s, FILE *out, char *errstr, size_t errstr_size);

/*
 * Human-readable view of a user: every partition holding a profile of
 * user_id, with affinities decayed to the profile's last event time
 * (half_life_hours as configured in model.half_life.hours), categories,
 * cart, purchases, dedup ring and last lists. XS_ERR_NOT_FOUND when no
 * partition has the user.
 */
xs_err_t xs_inspect_user(xs_store_t *s, const char *user_id, double half_life_hours, FILE *out,
                         char *errstr, size_t errstr_size);
/*
 * The same as one JSON object on one line: "user", "hash" (16 hex digits),
 * "half_life_hours", and "partitions", one object per partition holding the
 * user: "partition", "last_event_ms", "events", "has_bought", "items"
 * (item, title, signal, affinity decayed to the last event, last_ms),
 * "categories" (category, affinity), "cart" (item, title, qty),
 * "cart_overflow", "purchases" (item, title, bought_ms), "rebuy_buckets"
 * (from_ms, to_ms), "dedup_ids" and "last_lists" (placement, ts_ms, hash).
 * Times are epoch milliseconds. An item whose name record is missing is
 * "#<hex hash>" with a null title.
 */
xs_err_t xs_inspect_user_json(xs_store_t *s, const char *user_id, double half_life_hours, FILE *out,
                              char *errstr, size_t errstr_size);

/*
 * Human-readable view of an item: users per signal, catalog flags, title,
 * category, and the top `top` neighbours of each class by count with their
 * SpaceSaving error bound, guaranteed lower bound and LLR.
 * XS_ERR_NOT_FOUND when the item has no record.
 */
xs_err_t xs_inspect_item(xs_store_t *s, const char *item_id, int top, FILE *out, char *errstr,
                         size_t errstr_size);
/*
 * The same as one JSON object on one line: "item", "title", "users"
 * (bought, bought_total, viewed, viewed_total), per class "<class>_list"
 * (the whole stored neighbour list the scorer reads, best first: item,
 * title, similarity) and "<class>_sketch" (tracked, and the top `top`
 * entries by guaranteed count: item, title, count, err, llr).
 */
xs_err_t xs_inspect_item_json(xs_store_t *s, const char *item_id, int top, FILE *out, char *errstr,
                              size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
