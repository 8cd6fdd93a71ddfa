/*
 * xsell — dataset readers: turn public e-commerce datasets and user files
 * into xs_event_t streams in event-time order.
 *
 * Formats:
 *   online-retail  UCI Online Retail CSV (plain or .gz). Header
 *                  InvoiceNo,StockCode,Description,Quantity,InvoiceDate,
 *                  UnitPrice,CustomerID,Country. First one ItemUpdate per
 *                  StockCode (title = Description, price = UnitPrice), then
 *                  per invoice in time order: one CartEvent ADD per line,
 *                  then one PURCHASE with all lines. Rows without CustomerID,
 *                  cancelled invoices (InvoiceNo starting with C), lines with
 *                  quantity <= 0 and non-product codes (no digit in the
 *                  StockCode: POST, DOT, M, BANK CHARGES..., and C2, the
 *                  carriage charge) are skipped and counted. Duplicate codes
 *                  within an invoice become one line (quantities summed).
 *                  The catalog covers the codes of kept rows only.
 *   retailrocket   Either the Kaggle events.csv
 *                  (timestamp,visitorid,event,itemid[,transactionid]; view ->
 *                  PRODUCT_VIEW, addtocart -> ADD, transaction -> PURCHASE,
 *                  rows of one transaction grouped into one PURCHASE) or the
 *                  caserec subset (tab-separated visitorid/itemid/event files
 *                  named view_*, add_to_cart_*, purchase_*, or a directory
 *                  holding them): no timestamps, so users are replayed in a
 *                  seeded random order, each user's views, then cart adds,
 *                  then one purchase of all purchased items, with synthetic
 *                  event times one second apart.
 *   jsonl          One event per line using the schemas' field names, with
 *                  "kind": "click" | "cart" | "item" (inferred when absent:
 *                  "lines" -> cart, "user_id" or "session_id" -> click,
 *                  else item). "ts" is epoch milliseconds or an ISO-8601
 *                  UTC string (so are "available_from" and "available_until"
 *                  of an item). A click or cart event with a "session_id"
 *                  and no "user_id" gets the user id "session:<id>".
 *   baskets        One basket per line (items separated by commas when the
 *                  file has any comma, else by whitespace), replayed in file
 *                  order as user "basket-<n>": an ADD per item in basket
 *                  order, then a PURCHASE (of the last 24 items when the
 *                  basket holds more); synthetic times, baskets one minute
 *                  apart, the events of a basket 1 ms apart.
 *   yoochoose      RecSys Challenge 2015 clicks as session-rec prepares them:
 *                  tab-separated SessionId, ItemId, Time (epoch seconds with
 *                  millisecond decimals), header first, plain or .gz; several
 *                  files (train, test) are merged. One PRODUCT_VIEW per row,
 *                  user_id = session_id = SessionId, id
 *                  "yc-<session>-<item>-<ms>", delivered by (Time, file
 *                  order). Clicks only: no cart, no purchase.
 */
#ifndef XSELL_DATASET_H
#define XSELL_DATASET_H

#include <stdatomic.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/event.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xs_dataset_format {
    XS_FORMAT_ONLINE_RETAIL = 0,
    XS_FORMAT_RETAILROCKET,
    XS_FORMAT_JSONL,
    XS_FORMAT_BASKETS,
    XS_FORMAT_YOOCHOOSE,
    XS_FORMAT__COUNT
} xs_dataset_format_t;

int xs_dataset_format_from_name(const char *name); /* -1 when unknown */
const char *xs_dataset_format_name(xs_dataset_format_t fmt);

typedef struct xs_dataset_opts {
    uint64_t seed;       /* for seeded orders (retailrocket caserec); default 42 */
    uint64_t max_events; /* stop after this many events (0 = all) */
    /* When not NULL, set to the events delivered so far (relaxed stores), so
     * another thread can show the progress of a read. Default NULL. */
    _Atomic uint64_t *progress;
} xs_dataset_opts_t;

void xs_dataset_opts_default(xs_dataset_opts_t *opts);

typedef struct xs_dataset_stats {
    uint64_t rows;              /* input rows/lines read */
    uint64_t events;            /* events delivered to the callback */
    uint64_t catalog_events;    /* of which ItemUpdate */
    uint64_t skipped_no_user;   /* rows without a customer/user */
    uint64_t skipped_cancelled; /* cancelled invoices */
    uint64_t skipped_other;     /* non-product codes, quantity <= 0, ... */
    uint64_t bad_rows;          /* rows that did not parse (reported, skipped) */
} xs_dataset_stats_t;

/*
 * Called once per event, in event-time order. The event is owned by the
 * reader and cleared after the callback returns (copy what you keep). A
 * non-XS_OK return stops reading and is returned by xs_dataset_read().
 */
typedef xs_err_t (*xs_dataset_cb)(void *opaque, const xs_event_t *ev);

/*
 * Reads paths (files, or for retailrocket caserec a directory) in `fmt`.
 * stats may be NULL. Returns XS_ERR_IO / XS_ERR_DECODE with errstr
 * ("path:line: message") when a file cannot be read or is not the format.
 */
xs_err_t xs_dataset_read(xs_dataset_format_t fmt, const char *const *paths, size_t n_paths,
                         const xs_dataset_opts_t *opts, xs_dataset_cb cb, void *opaque,
                         xs_dataset_stats_t *stats, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
