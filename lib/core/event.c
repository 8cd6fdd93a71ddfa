/*
 * event.c — the decoded event model: enum names, lifecycle, validation.
 */
#include "xsell/event.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const click_names[XS_CLICK__COUNT] = {"PRODUCT_VIEW", "CATEGORY_VIEW", "SEARCH",
                                                         "RECOMMENDATION_CLICK", "OTHER"};
static const char *const cart_names[XS_CART__COUNT] = {"ADD", "REMOVE", "CHECKOUT", "PURCHASE"};
static const char *const placement_names[XS_PLACEMENT__COUNT] = {"PRODUCT_PAGE", "CART", "CHECKOUT",
                                                                 "POST_PURCHASE"};
static const char *const source_names[XS_SOURCE__COUNT] = {"BOUGHT_TOGETHER", "VIEWED_TOGETHER",
                                                           "PERSONAL", "TRENDING"};
static const char *const kind_names[XS_KIND__COUNT] = {"ClickEvent", "CartEvent", "ItemUpdate",
                                                       "CrossSellList"};

static const char *name_of(const char *const *names, int n, int v)
{
    return (v >= 0 && v < n) ? names[v] : "UNKNOWN";
}

static int value_of(const char *const *names, int n, const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return i;
    return -1;
}

const char *xs_event_click_type_name(xs_click_type_t t)
{
    return name_of(click_names, XS_CLICK__COUNT, (int)t);
}
const char *xs_event_cart_type_name(xs_cart_type_t t)
{
    return name_of(cart_names, XS_CART__COUNT, (int)t);
}
const char *xs_event_placement_name(xs_placement_t p)
{
    return name_of(placement_names, XS_PLACEMENT__COUNT, (int)p);
}
const char *xs_event_source_name(xs_source_t s)
{
    return name_of(source_names, XS_SOURCE__COUNT, (int)s);
}
const char *xs_event_kind_name(xs_event_kind_t k)
{
    return name_of(kind_names, XS_KIND__COUNT, (int)k);
}
int xs_event_click_type_from_name(const char *name)
{
    return value_of(click_names, XS_CLICK__COUNT, name);
}
int xs_event_cart_type_from_name(const char *name)
{
    return value_of(cart_names, XS_CART__COUNT, name);
}
int xs_event_placement_from_name(const char *name)
{
    return value_of(placement_names, XS_PLACEMENT__COUNT, name);
}
int xs_event_source_from_name(const char *name)
{
    return value_of(source_names, XS_SOURCE__COUNT, name);
}

void xs_event_init(xs_event_t *ev, xs_event_kind_t kind)
{
    memset(ev, 0, sizeof(*ev));
    ev->kind = kind;
    ev->in_stock = true;
}

void xs_event_clear(xs_event_t *ev)
{
    free(ev->event_id);
    free(ev->user_id);
    free(ev->session_id);
    free(ev->list_id);
    free(ev->item_id);
    free(ev->category);
    for (size_t i = 0; i < ev->n_lines; i++)
        free(ev->lines[i].item_id);
    free(ev->lines);
    free(ev->order_id);
    free(ev->currency);
    free(ev->title);
    free(ev->brand);
    free(ev->family);
    xs_event_init(ev, XS_KIND_CLICK);
}

xs_err_t xs_event_add_line(xs_event_t *ev, const char *item_id, int32_t quantity, double unit_price,
                           bool has_unit_price)
{
    /* Grow geometrically: capacity is the next power of two >= n_lines. */
    size_t n = ev->n_lines;
    if ((n & (n - 1)) == 0) {
        size_t cap = n ? n * 2 : 1;
        xs_line_t *lines = realloc(ev->lines, cap * sizeof(*lines));
        if (!lines)
            return XS_ERR_NOMEM;
        ev->lines = lines;
    }
    char *id = xs_str_dup(item_id ? item_id : "");
    if (!id)
        return XS_ERR_NOMEM;
    ev->lines[n] = (xs_line_t){id, quantity, unit_price, has_unit_price};
    ev->n_lines = n + 1;
    return XS_OK;
}

static xs_err_t dup_field(char **dst, const char *src)
{
    if (!src) {
        *dst = NULL;
        return XS_OK;
    }
    *dst = xs_str_dup(src);
    return *dst ? XS_OK : XS_ERR_NOMEM;
}

xs_err_t xs_event_copy(xs_event_t *dst, const xs_event_t *src)
{
    *dst = *src;
    dst->lines = NULL;
    dst->n_lines = 0;
    char **d[] = {&dst->event_id, &dst->user_id,  &dst->session_id, &dst->list_id,
                  &dst->item_id,  &dst->category, &dst->order_id,   &dst->currency,
                  &dst->title,    &dst->brand,    &dst->family};
    const char *s[] = {src->event_id, src->user_id,  src->session_id, src->list_id,
                       src->item_id,  src->category, src->order_id,   src->currency,
                       src->title,    src->brand,    src->family};
    for (size_t i = 0; i < XS_ARRAY_SIZE(d); i++)
        *d[i] = NULL;
    xs_err_t err = XS_OK;
    for (size_t i = 0; i < XS_ARRAY_SIZE(d) && !err; i++)
        err = dup_field(d[i], s[i]);
    for (size_t i = 0; i < src->n_lines && !err; i++)
        err = xs_event_add_line(dst, src->lines[i].item_id, src->lines[i].quantity,
                                src->lines[i].unit_price, src->lines[i].has_unit_price);
    if (err)
        xs_event_clear(dst);
    return err;
}

void xs_event_limits_default(xs_event_limits_t *lim)
{
    lim->max_id_len = 256;
    lim->max_lines = 1000;
    lim->min_ts = INT64_C(946684800000);  /* 2000-01-01T00:00:00Z */
    lim->max_ts = INT64_C(4102444800000); /* 2100-01-01T00:00:00Z */
    lim->max_quantity = 1000000;
}

static xs_err_t check_str(const char *name, const char *v, bool required, size_t max, char *reason,
                          size_t reason_size)
{
    if (!v) {
        if (!required)
            return XS_OK;
        xs_err_set(reason, reason_size, "missing %s", name);
        return XS_ERR_VALIDATION;
    }
    size_t len = strlen(v);
    if (len == 0 && required) {
        xs_err_set(reason, reason_size, "empty %s", name);
        return XS_ERR_VALIDATION;
    }
    if (len > max) {
        xs_err_set(reason, reason_size, "%s too long (%zu > %zu bytes)", name, len, max);
        return XS_ERR_TOO_LARGE;
    }
    if (!xs_str_utf8_valid(v, len)) {
        xs_err_set(reason, reason_size, "%s is not valid UTF-8", name);
        return XS_ERR_VALIDATION;
    }
    return XS_OK;
}

xs_err_t xs_event_validate(const xs_event_t *ev, const xs_event_limits_t *lim, char *reason,
                           size_t reason_size)
{
    size_t max = lim->max_id_len;
    xs_err_t err;
#define CHECK(name, v, req)                                                                        \
    do {                                                                                           \
        if ((err = check_str(name, v, req, max, reason, reason_size)) != XS_OK)                    \
            return err;                                                                            \
    } while (0)

    if (ev->kind == XS_KIND_ITEM) {
        CHECK("item_id", ev->item_id, true);
        CHECK("category", ev->category, false);
        /* Titles may legitimately be longer than ids. */
        if (ev->title && strlen(ev->title) > 4 * max) {
            xs_err_set(reason, reason_size, "title too long (%zu > %zu bytes)", strlen(ev->title),
                       4 * max);
            return XS_ERR_TOO_LARGE;
        }
        if (ev->title && !xs_str_utf8_valid(ev->title, strlen(ev->title))) {
            xs_err_set(reason, reason_size, "title is not valid UTF-8");
            return XS_ERR_VALIDATION;
        }
        CHECK("brand", ev->brand, false);
        CHECK("family", ev->family, false);
    } else if (ev->kind == XS_KIND_CLICK || ev->kind == XS_KIND_CART) {
        CHECK("event_id", ev->event_id, true);
        CHECK("user_id", ev->user_id, true);
        CHECK("session_id", ev->session_id, false);
        CHECK("list_id", ev->list_id, false);
        if (ev->kind == XS_KIND_CLICK) {
            CHECK("item_id", ev->item_id,
                  ev->type == XS_CLICK_PRODUCT_VIEW || ev->type == XS_CLICK_RECOMMENDATION_CLICK);
            CHECK("category", ev->category, false);
            if (ev->type < 0 || ev->type >= XS_CLICK__COUNT) {
                xs_err_set(reason, reason_size, "bad click type %d", ev->type);
                return XS_ERR_VALIDATION;
            }
        } else {
            if (ev->type < 0 || ev->type >= XS_CART__COUNT) {
                xs_err_set(reason, reason_size, "bad cart type %d", ev->type);
                return XS_ERR_VALIDATION;
            }
            CHECK("order_id", ev->order_id, false);
            CHECK("currency", ev->currency, false);
            if (ev->n_lines > lim->max_lines) {
                xs_err_set(reason, reason_size, "too many lines (%zu > %zu)", ev->n_lines,
                           lim->max_lines);
                return XS_ERR_TOO_LARGE;
            }
            if (ev->n_lines == 0 && (ev->type == XS_CART_ADD || ev->type == XS_CART_REMOVE ||
                                     ev->type == XS_CART_PURCHASE)) {
                xs_err_set(reason, reason_size, "no lines in %s",
                           xs_event_cart_type_name(ev->type));
                return XS_ERR_VALIDATION;
            }
            for (size_t i = 0; i < ev->n_lines; i++) {
                CHECK("lines.item_id", ev->lines[i].item_id, true);
                int32_t q = ev->lines[i].quantity;
                if (q <= 0 || q > lim->max_quantity) {
                    xs_err_set(reason, reason_size, "quantity out of range (%" PRId32 ")", q);
                    return XS_ERR_VALIDATION;
                }
            }
        }
    } else {
        xs_err_set(reason, reason_size, "unexpected record kind %d", (int)ev->kind);
        return XS_ERR_VALIDATION;
    }
#undef CHECK
    if (ev->ts < lim->min_ts || ev->ts > lim->max_ts) {
        xs_err_set(reason, reason_size, "timestamp out of range (%" PRId64 ")", ev->ts);
        return XS_ERR_VALIDATION;
    }
    if (ev->kind == XS_KIND_ITEM) {
        if (ev->has_available_from &&
            (ev->available_from < lim->min_ts || ev->available_from > lim->max_ts)) {
            xs_err_set(reason, reason_size, "available_from out of range (%" PRId64 ")",
                       ev->available_from);
            return XS_ERR_VALIDATION;
        }
        if (ev->has_available_until &&
            (ev->available_until < lim->min_ts || ev->available_until > lim->max_ts)) {
            xs_err_set(reason, reason_size, "available_until out of range (%" PRId64 ")",
                       ev->available_until);
            return XS_ERR_VALIDATION;
        }
        if (ev->has_available_from && ev->has_available_until &&
            ev->available_until <= ev->available_from) {
            xs_err_set(reason, reason_size,
                       "empty availability window (available_until %" PRId64
                       " <= available_from %" PRId64 ")",
                       ev->available_until, ev->available_from);
            return XS_ERR_VALIDATION;
        }
    }
    return XS_OK;
}

void xs_event_list_init(xs_list_t *list)
{
    memset(list, 0, sizeof(*list));
}

void xs_event_list_clear(xs_list_t *list)
{
    free(list->user_id);
    free(list->trigger_event_id);
    free(list->trigger_type);
    for (int i = 0; i < list->n_trigger_items; i++)
        free(list->trigger_items[i]);
    free(list->experiment);
    free(list->arm);
    for (int i = 0; i < list->n_items; i++) {
        free(list->items[i].item_id);
        free(list->items[i].title);
        free(list->items[i].category);
        for (int j = 0; j < list->items[i].n_because; j++)
            free(list->items[i].because_of[j]);
    }
    free(list->model_name);
    free(list->model_version);
    xs_event_list_init(list);
}

/* ======================================================================
 * Private: time
 * ====================================================================== */

static bool is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return days[m - 1] + (m == 2 && is_leap(y));
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian, y >= 1). */
static int64_t days_since_epoch(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t p = y - 1; /* leap years in [1, y) minus those in [1, 1970) */
    int64_t leaps = p / 4 - p / 100 + p / 400 - (1969 / 4 - 1969 / 100 + 1969 / 400);
    return (y - 1970) * 365 + leaps + before[m - 1] + (m > 2 && is_leap(y)) + (d - 1);
}

/* Reads exactly n digits at *p. */
static bool digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

bool xs_event_time_parse(const char *s, int64_t *ms)
{
    const char *p = s;
    int y, mo, d, h, mi, sec = 0, frac = 0;
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d) || (*p != ' ' && *p != 'T'))
        return false;
    p++;
    if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
        return false;
    if (*p == ':') {
        p++;
        if (!digits(&p, 2, &sec))
            return false;
        if (*p == '.') {
            p++;
            int n = 0;
            while (isdigit((unsigned char)*p)) {
                if (n < 3)
                    frac = frac * 10 + (*p - '0');
                n++;
                p++;
            }
            if (n == 0)
                return false;
            for (; n < 3; n++)
                frac *= 10;
        }
    }
    int64_t offset_min = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1, oh, om;
        if (!digits(&p, 2, &oh))
            return false;
        if (*p == ':')
            p++;
        if (!digits(&p, 2, &om) || oh > 23 || om > 59)
            return false;
        offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0' || y < 1 || mo < 1 || mo > 12 || d < 1 || d > month_days(y, mo) || h > 23 ||
        mi > 59 || sec > 60)
        return false;
    int64_t secs = days_since_epoch(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset_min * 60;
    *ms = secs * 1000 + frac;
    return true;
}
