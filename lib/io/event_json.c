/*
 * xsell: events from JSON objects, in the shape of `--format jsonl` (the
 * Avro schemas' field names): the reader of POST /v1/events and of the
 * jsonl data sets.
 */
#include "xsell/event_json.h"

#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/json.h"

static xs_err_t set_str(char **dst, const char *s)
{
    free(*dst);
    *dst = NULL;
    if (!s)
        return XS_OK;
    *dst = xs_str_dup(s);
    return *dst ? XS_OK : XS_ERR_NOMEM;
}

/* *out = the string member `key` (NULL when absent or null). */
static xs_err_t json_str(const xs_json_t *obj, const char *key, bool required, char **out,
                         char *why, size_t why_size)
{
    const xs_json_t *v = xs_json_get(obj, key);
    if (!v || xs_json_type(v) == XS_JSON_NULL) {
        if (required) {
            xs_err_set(why, why_size, "missing \"%s\"", key);
            return XS_ERR_DECODE;
        }
        return XS_OK;
    }
    if (xs_json_type(v) != XS_JSON_STRING) {
        xs_err_set(why, why_size, "\"%s\" must be a string", key);
        return XS_ERR_DECODE;
    }
    if (strlen(xs_json_string(v)) != xs_json_string_len(v)) {
        xs_err_set(why, why_size, "\"%s\" contains a NUL character", key);
        return XS_ERR_DECODE;
    }
    return set_str(out, xs_json_string(v));
}

static xs_err_t json_bool(const xs_json_t *obj, const char *key, bool *out, char *why,
                          size_t why_size)
{
    const xs_json_t *v = xs_json_get(obj, key);
    if (!v || xs_json_type(v) == XS_JSON_NULL)
        return XS_OK;
    if (xs_json_type(v) != XS_JSON_BOOL) {
        xs_err_set(why, why_size, "\"%s\" must be true or false", key);
        return XS_ERR_DECODE;
    }
    *out = xs_json_bool(v);
    return XS_OK;
}

/* Optional number; *has tells whether it was present. */
static xs_err_t json_num(const xs_json_t *obj, const char *key, double *out, bool *has, char *why,
                         size_t why_size)
{
    const xs_json_t *v = xs_json_get(obj, key);
    *has = false;
    if (!v || xs_json_type(v) == XS_JSON_NULL)
        return XS_OK;
    if (xs_json_type(v) != XS_JSON_NUMBER || !isfinite(xs_json_number(v))) {
        xs_err_set(why, why_size, "\"%s\" must be a number", key);
        return XS_ERR_DECODE;
    }
    *out = xs_json_number(v);
    *has = true;
    return XS_OK;
}

/* An integral JSON number within [lo, hi]. */
static bool json_int(const xs_json_t *v, int64_t lo, int64_t hi, int64_t *out)
{
    if (xs_json_type(v) != XS_JSON_NUMBER)
        return false;
    const char *text = xs_json_number_text(v);
    int64_t i = 0;
    if (text && xs_str_parse_i64(text, &i)) {
        /* exact */
    } else {
        double d = xs_json_number(v);
        if (!isfinite(d) || d != floor(d) || d < -9.2e18 || d > 9.2e18)
            return false;
        i = (int64_t)d;
    }
    if (i < lo || i > hi)
        return false;
    *out = i;
    return true;
}

/* A time field: epoch milliseconds or an ISO-8601 string; *has false when
 * absent or null (an error when required). */
static xs_err_t json_time(const xs_json_t *obj, const char *key, bool required, int64_t *ts,
                          bool *has, char *why, size_t why_size)
{
    const xs_json_t *v = xs_json_get(obj, key);
    *has = false;
    if (!v || xs_json_type(v) == XS_JSON_NULL) {
        if (!required)
            return XS_OK;
        xs_err_set(why, why_size, "missing \"%s\"", key);
        return XS_ERR_DECODE;
    }
    if (xs_json_type(v) == XS_JSON_STRING) {
        if (!xs_event_time_parse(xs_json_string(v), ts)) {
            xs_err_set(why, why_size, "\"%s\" is not an ISO-8601 time like 2024-05-01T12:00:00Z",
                       key);
            return XS_ERR_DECODE;
        }
        *has = true;
        return XS_OK;
    }
    if (!json_int(v, INT64_MIN, INT64_MAX, ts)) {
        xs_err_set(why, why_size, "\"%s\" must be epoch milliseconds or an ISO-8601 string", key);
        return XS_ERR_DECODE;
    }
    *has = true;
    return XS_OK;
}

static xs_err_t json_ts(const xs_json_t *obj, int64_t *ts, char *why, size_t why_size)
{
    bool has = false;
    return json_time(obj, "ts", true, ts, &has, why, why_size);
}

static xs_err_t json_lines(const xs_json_t *obj, xs_event_t *ev, char *why, size_t why_size)
{
    xs_err_t err = XS_OK;
    const xs_json_t *arr = xs_json_get(obj, "lines");
    if (!arr || xs_json_type(arr) != XS_JSON_ARRAY) {
        xs_err_set(why, why_size, "\"lines\" must be an array");
        return XS_ERR_DECODE;
    }
    for (size_t i = 0; i < xs_json_size(arr); i++) {
        const xs_json_t *l = xs_json_at(arr, i);
        const xs_json_t *q = NULL;
        char *item = NULL;
        int64_t qty = 1;
        double price = 0;
        bool has_price = false;
        if (xs_json_type(l) != XS_JSON_OBJECT) {
            xs_err_set(why, why_size, "lines[%zu] must be an object", i);
            return XS_ERR_DECODE;
        }
        if ((err = json_str(l, "item_id", true, &item, why, why_size)) != XS_OK) {
            if (err == XS_ERR_DECODE) {
                char inner[128];
                snprintf(inner, sizeof(inner), "%s", why);
                xs_err_set(why, why_size, "lines[%zu]: %s", i, inner);
            }
            return err;
        }
        q = xs_json_get(l, "quantity");
        if (q && xs_json_type(q) != XS_JSON_NULL && !json_int(q, INT32_MIN, INT32_MAX, &qty)) {
            xs_err_set(why, why_size, "lines[%zu]: \"quantity\" must be a 32-bit integer", i);
            err = XS_ERR_DECODE;
        }
        if (!err)
            err = json_num(l, "unit_price", &price, &has_price, why, why_size);
        if (!err)
            err = xs_event_add_line(ev, item, (int32_t)qty, price, has_price);
        free(item);
        if (err)
            return err;
    }
    return XS_OK;
}

/* Decodes one JSON object into ev; why receives the reason on failure. */
static xs_err_t jsonl_event(const xs_json_t *obj, xs_event_t *ev, char *why, size_t why_size)
{
    xs_err_t err = XS_OK;
    char *kind_name = NULL, *type_name = NULL;
    int kind = -1;

    if (xs_json_type(obj) != XS_JSON_OBJECT) {
        xs_err_set(why, why_size, "expected a JSON object");
        return XS_ERR_DECODE;
    }
    if ((err = json_str(obj, "kind", false, &kind_name, why, why_size)) != XS_OK)
        goto out;
    if (kind_name) {
        if (strcmp(kind_name, "click") == 0 || strcmp(kind_name, "ClickEvent") == 0)
            kind = XS_KIND_CLICK;
        else if (strcmp(kind_name, "cart") == 0 || strcmp(kind_name, "CartEvent") == 0)
            kind = XS_KIND_CART;
        else if (strcmp(kind_name, "item") == 0 || strcmp(kind_name, "ItemUpdate") == 0)
            kind = XS_KIND_ITEM;
        if (kind < 0) {
            xs_err_set(why, why_size, "unknown \"kind\" \"%s\" (click, cart or item)", kind_name);
            err = XS_ERR_DECODE;
            goto out;
        }
    } else {
        kind = xs_json_get(obj, "lines")                                       ? XS_KIND_CART
               : xs_json_get(obj, "user_id") || xs_json_get(obj, "session_id") ? XS_KIND_CLICK
                                                                               : XS_KIND_ITEM;
    }
    xs_event_init(ev, (xs_event_kind_t)kind);
    if ((err = json_ts(obj, &ev->ts, why, why_size)) != XS_OK)
        goto out;

    if (kind == XS_KIND_ITEM) {
        bool has = false;
        if ((err = json_str(obj, "item_id", true, &ev->item_id, why, why_size)) ||
            (err = json_str(obj, "title", false, &ev->title, why, why_size)) ||
            (err = json_str(obj, "category", false, &ev->category, why, why_size)) ||
            (err = json_str(obj, "brand", false, &ev->brand, why, why_size)) ||
            (err = json_str(obj, "family", false, &ev->family, why, why_size)) ||
            (err = json_num(obj, "price", &ev->price, &has, why, why_size)) ||
            (err = json_bool(obj, "in_stock", &ev->in_stock, why, why_size)) ||
            (err = json_bool(obj, "repurchasable", &ev->repurchasable, why, why_size)) ||
            (err = json_bool(obj, "deleted", &ev->deleted, why, why_size)) ||
            (err = json_time(obj, "available_from", false, &ev->available_from,
                             &ev->has_available_from, why, why_size)) ||
            (err = json_time(obj, "available_until", false, &ev->available_until,
                             &ev->has_available_until, why, why_size)))
            goto out;
        ev->has_price = has;
        goto out;
    }

    if ((err = json_str(obj, "event_id", true, &ev->event_id, why, why_size)) ||
        (err = json_str(obj, "user_id", false, &ev->user_id, why, why_size)) ||
        (err = json_str(obj, "session_id", false, &ev->session_id, why, why_size)) ||
        (err = json_str(obj, "list_id", false, &ev->list_id, why, why_size)) ||
        (err = json_str(obj, "type", true, &type_name, why, why_size)))
        goto out;
    /* A shopper who is not logged in: the session is the user ("session:<id>"). */
    if (!ev->user_id && ev->session_id) {
        size_t len = strlen(XS_SESSION_USER_PREFIX) + strlen(ev->session_id) + 1;
        if (!(ev->user_id = malloc(len))) {
            err = XS_ERR_NOMEM;
            goto out;
        }
        snprintf(ev->user_id, len, "%s%s", XS_SESSION_USER_PREFIX, ev->session_id);
    }
    if (!ev->user_id) {
        xs_err_set(why, why_size, "missing \"user_id\" (or \"session_id\")");
        err = XS_ERR_DECODE;
        goto out;
    }
    ev->type = kind == XS_KIND_CLICK ? xs_event_click_type_from_name(type_name)
                                     : xs_event_cart_type_from_name(type_name);
    if (ev->type < 0) {
        xs_err_set(why, why_size, "unknown %s type \"%s\"",
                   kind == XS_KIND_CLICK ? "click" : "cart", type_name);
        err = XS_ERR_DECODE;
        goto out;
    }
    if (kind == XS_KIND_CLICK) {
        if ((err = json_str(obj, "item_id", false, &ev->item_id, why, why_size)) ||
            (err = json_str(obj, "category", false, &ev->category, why, why_size)))
            goto out;
    } else {
        if ((err = json_str(obj, "order_id", false, &ev->order_id, why, why_size)) ||
            (err = json_str(obj, "currency", false, &ev->currency, why, why_size)) ||
            (err = json_lines(obj, ev, why, why_size)))
            goto out;
    }
out:
    free(kind_name);
    free(type_name);
    return err;
}

xs_err_t xs_event_json_decode(const xs_json_t *obj, xs_event_t *ev, char *why, size_t why_size)
{
    xs_event_init(ev, XS_KIND_CLICK);
    xs_err_t err = jsonl_event(obj, ev, why, why_size);
    if (err)
        xs_event_clear(ev);
    return err;
}
