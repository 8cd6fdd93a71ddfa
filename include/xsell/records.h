/*
 * xsell — the records that cross a stage boundary: a pair-delta batch (user
 * stage -> item stage), a neighbour list (item stage -> every scorer) and a
 * catalog entry (catalog -> every scorer). Pure C: byte buffers, varints and
 * the id hash only; no Kafka, no Avro, no RocksDB.
 *
 *   user stage ──xs_delta_batch──> item stage ──xs_neighbour_list──> scorer
 *                                                catalog ──xs_catalog_entry──┘
 *
 * Why. Today the three stages run in one process and hand each other
 * pointers (engine.h): a neighbour-list entry is a position in its item's
 * sketch, the item stage reads the user stage's scratch array, the user
 * stage writes categories into item state. Run in different processes
 * (a consumer group, DESIGN.md "Scale-out"), they exchange bytes on Kafka
 * topics, and these are those bytes: each record is self-contained (item
 * keys with their string ids, similarities and counts, never positions),
 * versioned, bounded, and has one codec, here, used by everyone who writes
 * or reads it.
 *
 * Every record starts with the same two bytes:
 *
 *   version u8 | magic u8 ('D' batch, 'L' neighbour list, 'C' catalog entry)
 *
 * The version comes first so that a later version may change everything
 * after it: a reader meeting a version newer than it knows stops there with
 * XS_ERR_VERSION and a message naming both versions ("neighbour list
 * version 2 is newer than this build reads (1)"), never guesses. The byte
 * layouts, limits and the stage that writes and reads each record are in
 * docs/RECORDS.md; every decoder there is strict: a field out of its range,
 * a length past the input, a count above its limit, or a single byte after
 * the record is an error (XS_ERR_DECODE, XS_ERR_TOO_LARGE for a limit) with
 * a message in errstr, and the output is left empty. Encoders check the
 * same rules (XS_ERR_INVALID), so what encodes decodes.
 *
 * Keys are xs_hash_str() of the string id (hash.h); where a record carries
 * both, the decoder checks that they agree. Strings are UTF-8 without NUL
 * bytes.
 *
 * Ownership (one rule for the whole API): a record struct owns its arrays
 * and strings; zero-initialise it ({0}) before first use and release it
 * with its _clear(), which leaves it zeroed (clearing a zeroed record is a
 * no-op). A decoder clears its output first, so one struct can be decoded
 * into again and again. Encoders append to the caller's buffer and leave it
 * as it was on error. Adders copy their string arguments.
 */
#ifndef XSELL_RECORDS_H
#define XSELL_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Format versions this build writes, and the newest it reads. */
#define XS_DELTA_BATCH_VERSION 1
#define XS_NEIGHBOUR_LIST_VERSION 1
#define XS_CATALOG_ENTRY_VERSION 1

#define XS_DELTA_BATCH_MAGIC 'D'
#define XS_NEIGHBOUR_LIST_MAGIC 'L'
#define XS_CATALOG_ENTRY_MAGIC 'C'

/* Limits (docs/RECORDS.md, "Limits"). */
#define XS_RECORDS_ID_MAX 65536            /* bytes of an id: limits.max_id_len's maximum */
#define XS_RECORDS_TITLE_MAX 262144        /* bytes of a title: 4 x the longest id */
#define XS_DELTA_BATCH_MAX_ENTRIES 1048576 /* entries of one batch */
#define XS_DELTA_BATCH_MAX_IDS 1048576     /* string ids of one batch */
#define XS_NEIGHBOUR_LIST_MAX 256          /* neighbours per class (the engine keeps 64) */

/* The two co-occurrence classes of the records: the values of xs_class_t
 * (sketch.h), repeated here so that this header stands alone. */
#define XS_RECORDS_CLASSES 2 /* 0 bought together, 1 viewed together */

/* ---- pair-delta batch (user stage -> item stage) -------------------------- */

typedef enum xs_delta_kind {
    XS_DELTA_PAIR = 0,     /* `count` more co-occurrences of a and b in class cls */
    XS_DELTA_USERS = 1,    /* `count` more distinct users had a in class cls */
    XS_DELTA_CATEGORY = 2, /* a was clicked in category b: a's category when it has none
                              and no catalog entry says otherwise */
    XS_DELTA_TREND = 3,    /* a was added to a cart or bought: trending weight */
    XS_DELTA__COUNT
} xs_delta_kind_t;

/* Name of a kind ("pair", "users", "category", "trend"; "?" when unknown). */
const char *xs_delta_batch_kind_name(int kind);

/* One entry. Which fields a kind uses (the others are 0 and not encoded):
 *   PAIR      cls, a, b (a != b, both non-zero), count >= 1, last_ts
 *   USERS     cls, a, count >= 1, last_ts
 *   CATEGORY  a, b = the category's key, last_ts
 *   TREND     a, weight > 0 (finite), last_ts
 * last_ts is the latest event time of what the entry aggregates, at most
 * the batch's ts. TREND's weight is the trending summary's (one week's
 * half-life): each cart add or purchase at time t adds 2^((t - last_ts) /
 * 1 week), so one event at last_ts weighs 1. */
typedef struct xs_delta {
    uint8_t kind; /* xs_delta_kind_t */
    uint8_t cls;  /* PAIR, USERS: 0 bought, 1 viewed */
    uint64_t a, b;
    uint32_t count;
    double weight;
    int64_t last_ts;
} xs_delta_t;

/* A string id the batch names (key = xs_hash_str(id)): the items and
 * categories seen by the user stage, so that the item stage can publish
 * neighbour lists with ids. */
typedef struct xs_named {
    uint64_t key;
    char *id; /* owned, 1..XS_RECORDS_ID_MAX bytes of UTF-8 */
} xs_named_t;

/*
 * What the user stage learnt over one checkpoint interval of one input
 * partition, pre-aggregated, for the items of one item partition: the
 * source (partition, seq, part) identifies it, so that a reader applies
 * each batch once. A checkpoint's deltas too large for one message are
 * split into n_parts batches of the same seq.
 */
typedef struct xs_delta_batch {
    uint16_t partition;                            /* the input partition of the user stage */
    uint64_t seq;                                  /* its checkpoint sequence */
    uint32_t part, n_parts;                        /* part < n_parts; n_parts >= 1 */
    int64_t ts;                                    /* the latest event time of the entries */
    int64_t users_total_delta, users_bought_delta; /* change of the user counts (globals) */
    xs_named_t *ids;
    size_t n_ids, cap_ids;
    xs_delta_t *entries;
    size_t n_entries, cap_entries;
} xs_delta_batch_t;

/* Appends a copy of *d (checked as the encoder does). */
xs_err_t xs_delta_batch_add(xs_delta_batch_t *b, const xs_delta_t *d, char *errstr,
                            size_t errstr_size);
/* Appends the id (copied; its key computed). The caller adds each id once
 * (a repeat is carried as it is). */
xs_err_t xs_delta_batch_add_id(xs_delta_batch_t *b, const char *id, char *errstr,
                               size_t errstr_size);
xs_err_t xs_delta_batch_encode(const xs_delta_batch_t *b, xs_buf_t *out, char *errstr,
                               size_t errstr_size);
xs_err_t xs_delta_batch_decode(xs_delta_batch_t *b, const void *data, size_t len, char *errstr,
                               size_t errstr_size);
bool xs_delta_batch_equal(const xs_delta_batch_t *x, const xs_delta_batch_t *y);
void xs_delta_batch_clear(xs_delta_batch_t *b);
/*
 * Splitting a batch too large for one record or message: parts of at most
 * max_entries entries each (0: no limit), xs_delta_batch_n_parts() of them
 * (at least 1). xs_delta_batch_part() writes part `part` into *out (cleared
 * first): b's partition, seq and ts, part and n_parts, its entries in order,
 * the ids of b that they name (a, and b of a pair or a category), and b's
 * user deltas in part 0 only; applying the parts in order is applying b.
 * XS_ERR_INVALID: part out of range.
 */
size_t xs_delta_batch_n_parts(const xs_delta_batch_t *b, size_t max_entries);
xs_err_t xs_delta_batch_part(const xs_delta_batch_t *b, size_t max_entries, uint32_t part,
                             xs_delta_batch_t *out, char *errstr, size_t errstr_size);

/* ---- neighbour list (item stage -> scorers) ------------------------------- */

typedef struct xs_neighbour_rec {
    uint64_t item;  /* key, non-zero, not the list's item */
    char *id;       /* owned; NULL when the item stage does not know the id */
    float sim;      /* > 0, finite */
    uint32_t count; /* the pair's guaranteed co-occurrence count (k11), >= 1 */
} xs_neighbour_rec_t;

/* Per class: the counts the scorer and the similarities read, and the
 * ranked neighbours (similarity descending, then key ascending). */
typedef struct xs_neighbour_class {
    uint32_t n_users;    /* distinct users who had the item in this class */
    uint64_t pair_total; /* the item's pairs counted (its marginal, n_i) */
    uint64_t table;      /* the pair table's total the similarities used (n) */
    int n;
    xs_neighbour_rec_t *v; /* n entries */
} xs_neighbour_class_t;

/* One item's published state: the compacted item-neighbours topic keeps
 * the latest per item. */
typedef struct xs_neighbour_list {
    uint64_t item;     /* key, non-zero */
    char *id;          /* owned; NULL when unknown, else xs_hash_str(id) == item */
    int64_t ts;        /* the latest event time applied to the item */
    uint64_t category; /* the category the item stage knows (catalog or click), 0 none */
    xs_neighbour_class_t cls[XS_RECORDS_CLASSES];
} xs_neighbour_list_t;

/* Appends a neighbour to class cls (copies id; NULL: unknown). The caller
 * appends in rank order; the encoder checks it. */
xs_err_t xs_neighbour_list_add(xs_neighbour_list_t *l, int cls, uint64_t item, const char *id,
                               float sim, uint32_t count, char *errstr, size_t errstr_size);
xs_err_t xs_neighbour_list_encode(const xs_neighbour_list_t *l, xs_buf_t *out, char *errstr,
                                  size_t errstr_size);
xs_err_t xs_neighbour_list_decode(xs_neighbour_list_t *l, const void *data, size_t len,
                                  char *errstr, size_t errstr_size);
bool xs_neighbour_list_equal(const xs_neighbour_list_t *x, const xs_neighbour_list_t *y);
void xs_neighbour_list_clear(xs_neighbour_list_t *l);

/* ---- catalog entry (catalog -> every instance) ----------------------------- */

/* What the engine keeps of an ItemUpdate (schemas/ItemUpdate.avsc; brand is
 * not kept). Strings are NULL when absent; an empty string is absent too. */
typedef struct xs_catalog_entry {
    char *id;       /* owned, required */
    char *title;    /* owned or NULL, at most XS_RECORDS_TITLE_MAX bytes */
    char *category; /* owned or NULL */
    char *family;   /* owned or NULL */
    int64_t ts;     /* ItemUpdate.ts */
    bool in_stock, repurchasable, deleted;
    bool has_price, has_from, has_until;
    double price; /* carried bit for bit */
    int64_t available_from, available_until;
} xs_catalog_entry_t;

xs_err_t xs_catalog_entry_encode(const xs_catalog_entry_t *c, xs_buf_t *out, char *errstr,
                                 size_t errstr_size);
xs_err_t xs_catalog_entry_decode(xs_catalog_entry_t *c, const void *data, size_t len, char *errstr,
                                 size_t errstr_size);
bool xs_catalog_entry_equal(const xs_catalog_entry_t *x, const xs_catalog_entry_t *y);
void xs_catalog_entry_clear(xs_catalog_entry_t *c);

#ifdef __cplusplus
}
#endif
#endif
