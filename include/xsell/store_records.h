/*
 * xsell: the engine's stored records besides profiles (profile.h) and item
 * sketches (sketch.h): the names record of an item or user (its string id
 * and an item's catalog fields) and the meta "globals" record. One codec
 * each, used by the engine to load and store them and by `xsell inspect`
 * (and the fuzz target fuzz_stored) to read them.
 */
#ifndef XSELL_STORE_RECORDS_H
#define XSELL_STORE_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* names value: 'N' 03 | varint len | id | varint len | title (len 0: none) |
 * family u64 (hash of the item's product family, 0: none) | u8 flags (1: a
 * price follows, 2: available_from, 4: available_until) | price f64
 * (ItemUpdate.price, little-endian IEEE 754) | available_from i64 |
 * available_until i64 (ms, little-endian), each only when flagged.
 * Version 01 had no family (family 0), 02 nothing after the family; both
 * still decode. */
#define XS_NAME_VERSION 3
typedef struct xs_name_rec {
    char *id;    /* owned */
    char *title; /* owned, NULL when none */
    uint64_t family;
    double price; /* valid when has_price */
    bool has_price;
    int64_t available_from, available_until; /* valid when has_from / has_until */
    bool has_from, has_until;
} xs_name_rec_t;

/* Appends the record (version XS_NAME_VERSION); id must not be NULL. */
xs_err_t xs_store_records_name_encode(const xs_name_rec_t *n, xs_buf_t *out);
/* On success *n owns its strings (xs_store_records_name_rec_clear); on failure *n is
 * empty and errstr says why: XS_ERR_VERSION for a newer version,
 * XS_ERR_DECODE for anything else that is not such a record. */
xs_err_t xs_store_records_name_decode(xs_name_rec_t *n, const void *data, size_t len, char *errstr,
                                      size_t errstr_size);
void xs_store_records_name_rec_clear(xs_name_rec_t *n);

/* meta "globals": 'M' 02 | varint users_total | varint users_bought |
 * trend_ref u64 LE | varint n | n x { item u64 LE | weight f64 LE } |
 * varint pairs_bought | varint pairs_viewed (version 2: the pair table's
 * totals; version 1, without them, decodes with 0 and version 1 in
 * `version`: the engine refuses it, inspect shows it). */
#define XS_GLOBALS_VERSION 2
#define XS_GLOBALS_TREND_CAP 128
typedef struct xs_globals {
    int version; /* of the decoded record */
    uint64_t users_total, users_bought;
    uint64_t pairs_total[2]; /* pairs counted per class (bought, viewed) */
    int64_t trend_ref;
    int n_trend;
    uint64_t trend_item[XS_GLOBALS_TREND_CAP];
    double trend_weight[XS_GLOBALS_TREND_CAP];
} xs_globals_t;

/* Appends the record (version XS_GLOBALS_VERSION); n_trend <= the cap. */
xs_err_t xs_store_records_globals_encode(const xs_globals_t *g, xs_buf_t *out);
/* On failure *g is zeroed and errstr says why (XS_ERR_VERSION: newer). */
xs_err_t xs_store_records_globals_decode(xs_globals_t *g, const void *data, size_t len,
                                         char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
