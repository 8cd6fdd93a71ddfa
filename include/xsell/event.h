/*
 * xsell — the decoded event model (pure C, no Avro).
 *
 * An xs_event_t is what the codec produces from a ClickEvent, CartEvent or
 * ItemUpdate record and what dataset readers produce from CSV/JSON lines.
 * Ownership: every string and the `lines` array belong to the event and are
 * released by xs_event_clear(). Optional string fields are NULL when absent.
 *
 * An xs_list_t is the model of a CrossSellList record (schemas/). Its
 * strings are owned by the list and released by xs_event_list_clear().
 */
#ifndef XSELL_EVENT_H
#define XSELL_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xs_event_kind {
    XS_KIND_CLICK = 0, /* ClickEvent */
    XS_KIND_CART,      /* CartEvent */
    XS_KIND_ITEM,      /* ItemUpdate (catalog) */
    XS_KIND_LIST,      /* CrossSellList (output) */
    XS_KIND__COUNT
} xs_event_kind_t;

/* ClickEvent.type; symbol order matches schemas/ClickEvent.avsc. */
typedef enum xs_click_type {
    XS_CLICK_PRODUCT_VIEW = 0,
    XS_CLICK_CATEGORY_VIEW,
    XS_CLICK_SEARCH,
    XS_CLICK_RECOMMENDATION_CLICK,
    XS_CLICK_OTHER, /* enum default: unknown symbols from newer writers */
    XS_CLICK__COUNT
} xs_click_type_t;

/* CartEvent.type; symbol order matches schemas/CartEvent.avsc. */
typedef enum xs_cart_type {
    XS_CART_ADD = 0,
    XS_CART_REMOVE,
    XS_CART_CHECKOUT,
    XS_CART_PURCHASE,
    XS_CART__COUNT
} xs_cart_type_t;

typedef enum xs_placement {
    XS_PLACEMENT_PRODUCT_PAGE = 0,
    XS_PLACEMENT_CART,
    XS_PLACEMENT_CHECKOUT,
    XS_PLACEMENT_POST_PURCHASE,
    XS_PLACEMENT__COUNT
} xs_placement_t;

typedef enum xs_source {
    XS_SOURCE_BOUGHT_TOGETHER = 0,
    XS_SOURCE_VIEWED_TOGETHER,
    XS_SOURCE_PERSONAL,
    XS_SOURCE_TRENDING,
    XS_SOURCE__COUNT
} xs_source_t;

const char *xs_event_click_type_name(xs_click_type_t t);
const char *xs_event_cart_type_name(xs_cart_type_t t);
const char *xs_event_placement_name(xs_placement_t p);
const char *xs_event_source_name(xs_source_t s);
const char *xs_event_kind_name(xs_event_kind_t k);
/* Name -> value; returns -1 when the name is unknown. */
int xs_event_click_type_from_name(const char *name);
int xs_event_cart_type_from_name(const char *name);
int xs_event_placement_from_name(const char *name);
int xs_event_source_from_name(const char *name);

typedef struct xs_line {
    char *item_id;     /* required */
    int32_t quantity;  /* default 1 */
    double unit_price; /* valid when has_unit_price */
    bool has_unit_price;
} xs_line_t;

typedef struct xs_event {
    xs_event_kind_t kind;
    int type; /* xs_click_type_t or xs_cart_type_t; unused for ITEM */

    /* ClickEvent and CartEvent */
    char *event_id;   /* required */
    char *user_id;    /* required */
    char *session_id; /* optional */
    char *list_id;    /* optional: attribution to a published list */
    int64_t ts;       /* event time, milliseconds since the Unix epoch */

    /* ClickEvent */
    char *item_id;  /* optional for clicks; required for ItemUpdate */
    char *category; /* optional (click, item update) */

    /* CartEvent */
    xs_line_t *lines; /* owned array of n_lines */
    size_t n_lines;
    char *order_id; /* optional */
    char *currency; /* optional */

    /* ItemUpdate (item_id above, ts above) */
    char *title;  /* optional */
    char *brand;  /* optional */
    char *family; /* optional (item update): product family, e.g. colour variants of one product */
    double price;
    bool has_price;
    /* availability window (ItemUpdate version 2): listed when from <= t < until */
    int64_t available_from, available_until; /* ms, valid when has_... */
    bool has_available_from, has_available_until;
    bool in_stock;      /* default true */
    bool repurchasable; /* default false */
    bool deleted;       /* default false */
} xs_event_t;

void xs_event_init(xs_event_t *ev, xs_event_kind_t kind);
void xs_event_clear(xs_event_t *ev); /* frees members, re-inits to kind CLICK */
/* Appends a line; copies item_id. */
xs_err_t xs_event_add_line(xs_event_t *ev, const char *item_id, int32_t quantity, double unit_price,
                           bool has_unit_price);
/* Deep copy; dst must be uninitialised or cleared. */
xs_err_t xs_event_copy(xs_event_t *dst, const xs_event_t *src);

/* Limits applied by xs_event_validate(). */
typedef struct xs_event_limits {
    size_t max_id_len;    /* any id / string field; default 256 */
    size_t max_lines;     /* cart lines; default 1000 */
    int64_t min_ts;       /* default 2000-01-01 */
    int64_t max_ts;       /* default 2100-01-01 */
    int32_t max_quantity; /* default 1000000 */
} xs_event_limits_t;

void xs_event_limits_default(xs_event_limits_t *lim);

/*
 * Checks required fields and limits. On failure returns XS_ERR_VALIDATION
 * (or XS_ERR_TOO_LARGE) and writes a short machine-friendly reason such as
 * "missing user_id" or "too many lines (12000 > 1000)" into reason.
 * Every string field (ids, category, title, brand, currency) must be
 * well-formed UTF-8 ("user_id is not valid UTF-8"): xsell stores them and
 * publishes them in Avro strings, which strict readers decode as UTF-8.
 */
xs_err_t xs_event_validate(const xs_event_t *ev, const xs_event_limits_t *lim, char *reason,
                           size_t reason_size);

/* ---- CrossSellList ---------------------------------------------------- */

#define XS_LIST_MAX_ITEMS 20
#define XS_BECAUSE_MAX 3
#define XS_TRIGGER_MAX_ITEMS 8

typedef struct xs_rec {
    char *item_id;
    double score;
    xs_source_t source;
    char *because_of[XS_BECAUSE_MAX];
    int n_because;
    /* Catalog metadata, filled for queries (xs_engine_recommend_ex), never
     * encoded in the Avro CrossSellList: owned, NULL when unknown. */
    char *title;
    char *category;
    double price; /* valid when has_price */
    bool has_price;
} xs_rec_t;

typedef struct xs_list {
    char list_id[33]; /* 32 hex chars, deterministic from the trigger */
    char *user_id;
    int64_t generated_at; /* event time of the trigger, ms */
    char *trigger_event_id;
    char *trigger_type; /* e.g. "PRODUCT_VIEW", "ADD", "PURCHASE" */
    char *trigger_items[XS_TRIGGER_MAX_ITEMS];
    int n_trigger_items;
    xs_placement_t placement;
    char *experiment; /* optional */
    char *arm;        /* optional */
    xs_rec_t items[XS_LIST_MAX_ITEMS];
    int n_items;
    char *model_name;
    char *model_version;
} xs_list_t;

void xs_event_list_init(xs_list_t *list);
void xs_event_list_clear(xs_list_t *list); /* frees members, re-inits */

/* The user id of a click or cart event that carries a session_id and no
 * user_id (a shopper not logged in): the session's own profile. An event
 * with both ids keeps both; the engine joins that profile into the user's
 * (xs_engine_process). */
#define XS_SESSION_USER_PREFIX "session:"

/*
 * "YYYY-MM-DD[ T]HH:MM[:SS[.fff...]][Z|+HH:MM|-HH:MM|+HHMM]" -> epoch ms in
 * *ms. Without a zone the time is taken as UTC; fractions finer than a
 * millisecond are truncated. False when s is not such a time.
 */
bool xs_event_time_parse(const char *s, int64_t *ms);

#ifdef __cplusplus
}
#endif
#endif
