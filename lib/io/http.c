/*
 * http.c — the worker's HTTP endpoint over libmicrohttpd (see
 * include/xsell/http.h for the routes, the error model and the bounds).
 *
 * Request flow:
 *
 *   request line ──> uri_cb: copies the raw request-target (or marks it too
 *                    long) into a request context that MHD hands to every
 *                    later callback of the request
 *   headers      ──> on_request: method check, routing on the *raw* path
 *                    split at '/', strict percent-decoding of each segment
 *                    and of each query parameter, validation, then the
 *                    service callback and a JSON (or Prometheus) response
 *   completion   ──> on_completed: frees the request context
 *
 * Routing works on the raw target rather than on MHD's decoded path because
 * MHD's decoder silently keeps malformed escapes (%zz) and decodes %2F to a
 * path separator; decoding each segment here rejects the former with 400 and
 * lets ids contain '/'. Every response is built in one buffer and copied
 * into MHD; nothing is kept between requests.
 *
 * MHD runs one internal polling thread, so callbacks never run
 * concurrently; the service serialises with the worker on its own lock.
 *
 * Connection budget (probes must not starve): every connection is tracked
 * from MHD's connection notification; one with no request in progress
 * (still sending its request line and headers, however slowly, or idle
 * between keep-alive requests) is "waiting". When a new connection arrives
 * and fewer than max_connections / 8 (at least 1) slots are free, the
 * waiting connection that has waited longest is shut down (shutdown(2) on
 * its socket; MHD sees end-of-file and closes it). So a new connection, a
 * kubelet probe among them, is always accepted at once and answered as soon
 * as its request arrives, whatever other clients hold open; clients that
 * trickle bytes to hold slots lose them to newcomers.
 *
 * Raw NUL bytes: MHD 0.9.75 hands the request target to uri_cb as a C
 * string, so a NUL byte in the request line would cut it short unseen.
 * MHD leaves the request line in its connection buffer, method, target and
 * version in that order; on_request compares the distances between them
 * with the lengths of the strings it was given and answers 400 when a NUL
 * hid part of the line (both pointers are checked to lie in one short span
 * before anything between them is read).
 */
#include "xsell/http.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <math.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "xsell/event_json.h"
#include "xsell/json.h"
#include "xsell/log.h"

#define XS_HTTP_CONN_MEMORY (32 * 1024)
#define XS_HTTP_MAX_PARAMS 16
#define XS_HTTP_MAX_SEGMENTS 8
#define XS_HTTP_USER_MAX_N XS_LIST_MAX_ITEMS
#define XS_HTTP_ITEM_MAX_N 100
#define XS_HTTP_ITEM_DEFAULT_N 10

/* A connection, from MHD's STARTED to its CLOSED notification. */
typedef struct conn {
    struct conn *prev, *next;
    int fd;
    bool busy;    /* a request is being answered */
    bool shed;    /* shut down by the budget, not yet closed by MHD */
    double since; /* waiting since (connected or last answer), monotonic ms */
} conn_t;

struct xs_http {
    struct MHD_Daemon *daemon;
    xs_http_service_t svc;
    size_t max_id_len;
    int port;
    char address[300];
    /* Connection budget (MHD thread only). */
    conn_t *conns; /* oldest first */
    conn_t *conns_tail;
    unsigned n_open;   /* tracked connections not shed */
    unsigned max_open; /* shed the longest-waiting one above this */
    /* POST /v1/events */
    bool events;
    char *token;
    size_t token_len;
    size_t max_body;
    unsigned events_rate;
    double bucket;    /* events that may be accepted now */
    double bucket_ms; /* when the bucket was last filled, monotonic ms */
    char *shop_dir;   /* /shop/ static files, NULL: none */
};

/* Per-request context, created from the request line. */
typedef struct req {
    char *target; /* raw request-target; NULL when too long */
    size_t target_len;
    const char *raw; /* the target in MHD's buffer (compared, see on_request) */
    bool too_long;
    bool responded;
    bool body_started; /* POST: the headers were accepted, the body is being read */
    bool body_too_large;
    xs_buf_t body;
} req_t;

typedef struct param {
    char *key;
    char *value;
} param_t;

/* A response under construction. */
typedef struct resp {
    unsigned status;
    const char *content_type;
    const char *allow; /* Allow header of a 405 */
    bool www_auth;     /* WWW-Authenticate: Bearer (401) */
    bool retry_after;  /* Retry-After: 1 (429) */
    xs_buf_t body;
    const char *route; /* the route template, for the request duration metric; NULL: "other" */
} resp_t;

/* ======================================================================== */
/* Private helpers: decoding and validation                                 */
/* ======================================================================== */

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/*
 * Strict percent-decoding of s[0..len) into a new string. plus_space: '+'
 * means a space (query components). Rejects malformed escapes, NUL and
 * control characters, and invalid UTF-8, with a message in errstr.
 */
static char *decode_component(const char *s, size_t len, bool plus_space, char *errstr,
                              size_t errstr_size)
{
    char *out = malloc(len + 1);
    size_t n = 0;
    if (!out) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi = i + 1 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                xs_err_set(errstr, errstr_size, "invalid percent-encoding in the URL");
                goto fail;
            }
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        if (c < 0x20 || c == 0x7F) {
            xs_err_set(errstr, errstr_size, "control character in the URL");
            goto fail;
        }
        out[n++] = (char)c;
    }
    out[n] = '\0';
    if (!xs_str_utf8_valid(out, n)) {
        xs_err_set(errstr, errstr_size, "invalid UTF-8 in the URL");
        goto fail;
    }
    return out;
fail:
    free(out);
    return NULL;
}

static void params_free(param_t *p, int n)
{
    for (int i = 0; i < n; i++) {
        free(p[i].key);
        free(p[i].value);
    }
}

/* Parses the query string; 0 or an HTTP status with errstr. */
static unsigned parse_query(const char *q, param_t *p, int *n_p, char *errstr, size_t errstr_size)
{
    *n_p = 0;
    while (q && *q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        if (len > 0) {
            const char *eq = memchr(q, '=', len);
            size_t klen = eq ? (size_t)(eq - q) : len;
            if (*n_p == XS_HTTP_MAX_PARAMS) {
                xs_err_set(errstr, errstr_size, "too many query parameters (max %d)",
                           XS_HTTP_MAX_PARAMS);
                return MHD_HTTP_BAD_REQUEST;
            }
            param_t *pp = &p[*n_p];
            pp->key = decode_component(q, klen, true, errstr, errstr_size);
            if (!pp->key)
                return MHD_HTTP_BAD_REQUEST;
            pp->value = eq ? decode_component(eq + 1, len - klen - 1, true, errstr, errstr_size)
                           : xs_str_dup("");
            if (!pp->value) {
                free(pp->key);
                return MHD_HTTP_BAD_REQUEST;
            }
            for (int i = 0; i < *n_p; i++)
                if (strcmp(p[i].key, pp->key) == 0) {
                    xs_err_set(errstr, errstr_size, "parameter '%s' given twice", pp->key);
                    free(pp->key);
                    free(pp->value);
                    return MHD_HTTP_BAD_REQUEST;
                }
            (*n_p)++;
        }
        q = amp ? amp + 1 : NULL;
    }
    return 0;
}

/* Checks that every parameter is in the allowed list ("a,b,c" or ""). */
static unsigned check_params(const param_t *p, int n, const char *const *allowed, char *errstr,
                             size_t errstr_size)
{
    for (int i = 0; i < n; i++) {
        bool ok = false;
        for (int k = 0; allowed && allowed[k] && !ok; k++)
            ok = strcmp(p[i].key, allowed[k]) == 0;
        if (!ok) {
            xs_err_set(errstr, errstr_size, "unknown parameter '%.64s'", p[i].key);
            return MHD_HTTP_BAD_REQUEST;
        }
    }
    return 0;
}

static const char *param_get(const param_t *p, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (strcmp(p[i].key, key) == 0)
            return p[i].value;
    return NULL;
}

/* n in [1, max]: digits only, no sign. */
static unsigned parse_n(const char *s, int max, int *n, char *errstr, size_t errstr_size)
{
    long v = 0;
    size_t len = s ? strlen(s) : 0;
    bool ok = len > 0 && len <= 6;
    for (size_t i = 0; ok && i < len; i++) {
        ok = s[i] >= '0' && s[i] <= '9';
        v = v * 10 + (s[i] - '0');
    }
    if (!ok || v < 1 || v > max) {
        xs_err_set(errstr, errstr_size, "n must be an integer in 1..%d", max);
        return MHD_HTTP_BAD_REQUEST;
    }
    *n = (int)v;
    return 0;
}

/* A client-supplied string made safe inside a quoted log field: at most
 * out_size - 1 bytes, quotes, backslashes and control bytes as '?'. */
static const char *log_safe(const char *s, char *out, size_t out_size)
{
    size_t n = 0;
    for (; s && *s && n + 1 < out_size; s++, n++) {
        unsigned char c = (unsigned char)*s;
        out[n] = c < 0x20 || c == 0x7F || c == '"' || c == '\\' ? '?' : (char)c;
    }
    out[n] = '\0';
    return out;
}

/* ======================================================================== */
/* Private helpers: responses                                               */
/* ======================================================================== */

static void resp_error(resp_t *r, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void resp_error(resp_t *r, unsigned status, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    xs_buf_reset(&r->body);
    r->status = status;
    r->content_type = "application/json";
    if (xs_buf_append_str(&r->body, "{\"error\":") ||
        xs_json_write_string(&r->body, msg, strlen(msg)) ||
        xs_buf_printf(&r->body, ",\"status\":%u}\n", status))
        xs_buf_reset(&r->body);
}

static xs_err_t json_str(xs_buf_t *b, const char *s)
{
    if (!s)
        return xs_buf_append_str(b, "null");
    return xs_json_write_string(b, s, strlen(s));
}

static xs_err_t json_num(xs_buf_t *b, double v)
{
    return xs_buf_printf(b, "%.6g", isfinite(v) ? v : 0.0);
}

static xs_err_t render_list(xs_buf_t *b, const xs_list_t *l, bool known, int partition)
{
    xs_err_t err = XS_OK;
    if ((err = xs_buf_append_str(b, "{\"user_id\":")) || (err = json_str(b, l->user_id)) ||
        (err = xs_buf_printf(b, ",\"known_user\":%s,\"partition\":", known ? "true" : "false")))
        return err;
    err = known ? xs_buf_printf(b, "%d", partition) : xs_buf_append_str(b, "null");
    if (err || (err = xs_buf_append_str(b, ",\"placement\":")) ||
        (err = json_str(b, xs_event_placement_name(l->placement))) ||
        (err = xs_buf_append_str(b, ",\"experiment\":")) || (err = json_str(b, l->experiment)) ||
        (err = xs_buf_append_str(b, ",\"arm\":")) || (err = json_str(b, l->arm)) ||
        (err = xs_buf_printf(b, ",\"generated_at\":%lld,\"items\":[", (long long)l->generated_at)))
        return err;
    for (int i = 0; i < l->n_items && !err; i++) {
        const xs_rec_t *r = &l->items[i];
        if ((err = xs_buf_append_str(b, i ? ",{\"item_id\":" : "{\"item_id\":")) ||
            (err = json_str(b, r->item_id)) || (err = xs_buf_append_str(b, ",\"score\":")) ||
            (err = json_num(b, r->score)) || (err = xs_buf_append_str(b, ",\"source\":")) ||
            (err = json_str(b, xs_event_source_name(r->source))) ||
            (err = xs_buf_append_str(b, ",\"title\":")) || (err = json_str(b, r->title)) ||
            (err = xs_buf_append_str(b, ",\"category\":")) || (err = json_str(b, r->category)) ||
            (err = xs_buf_append_str(b, ",\"price\":")) ||
            (err = r->has_price ? json_num(b, r->price) : xs_buf_append_str(b, "null")) ||
            (err = xs_buf_append_str(b, ",\"because_of\":[")))
            break;
        for (int k = 0; k < r->n_because && !err; k++)
            if (!(err = k ? xs_buf_append_u8(b, ',') : XS_OK))
                err = json_str(b, r->because_of[k]);
        if (!err)
            err = xs_buf_append_str(b, "]}");
    }
    if (err || (err = xs_buf_append_str(b, "],\"model\":{\"name\":")) ||
        (err = json_str(b, l->model_name)) || (err = xs_buf_append_str(b, ",\"version\":")) ||
        (err = json_str(b, l->model_version)))
        return err;
    return xs_buf_append_str(b, "}}\n");
}

static xs_err_t render_neighbours(xs_buf_t *b, const char *item_id, xs_class_t cls,
                                  const xs_item_info_t *info, const xs_neighbour_t *v, int n)
{
    xs_err_t err = XS_OK;
    if ((err = xs_buf_append_str(b, "{\"item_id\":")) || (err = json_str(b, item_id)) ||
        (err = xs_buf_append_str(b, ",\"title\":")) || (err = json_str(b, info->title)) ||
        (err = xs_buf_append_str(b, ",\"category\":")) || (err = json_str(b, info->category)) ||
        (err = xs_buf_append_str(b, ",\"price\":")) ||
        (err = info->has_price ? json_num(b, info->price) : xs_buf_append_str(b, "null")) ||
        (err = xs_buf_printf(b,
                             ",\"users\":{\"bought\":%u,\"viewed\":%u},\"in_stock\":%s,"
                             "\"deleted\":%s,\"repurchasable\":%s,\"class\":\"%s\","
                             "\"neighbours\":[",
                             info->n_users[XS_CLASS_BOUGHT], info->n_users[XS_CLASS_VIEWED],
                             info->flags & XS_ITEM_F_OUT_OF_STOCK ? "false" : "true",
                             info->flags & XS_ITEM_F_DELETED ? "true" : "false",
                             info->flags & XS_ITEM_F_REPURCHASABLE ? "true" : "false",
                             cls == XS_CLASS_BOUGHT ? "bought" : "viewed")))
        return err;
    for (int i = 0; i < n && !err; i++) {
        if ((err = xs_buf_append_str(b, i ? ",{\"item_id\":" : "{\"item_id\":")) ||
            (err = json_str(b, v[i].item_id)) || (err = xs_buf_append_str(b, ",\"title\":")) ||
            (err = json_str(b, v[i].title)) ||
            (err = xs_buf_printf(b, ",\"count\":%u,\"error\":%u,\"similarity\":", v[i].count,
                                 v[i].err)) ||
            (err = json_num(b, v[i].similarity)))
            break;
        err = xs_buf_append_u8(b, '}');
    }
    return err ? err : xs_buf_append_str(b, "]}\n");
}

/* ======================================================================== */
/* Private helpers: endpoints                                               */
/* ======================================================================== */

static void serve_probe(xs_http_t *h, bool ready, resp_t *r)
{
    char reason[256] = "";
    bool ok = false;
    if (ready)
        ok = h->svc.ready && h->svc.ready(h->svc.opaque, reason, sizeof(reason));
    else
        ok = h->svc.healthy && h->svc.healthy(h->svc.opaque, reason, sizeof(reason));
    r->status = ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    r->content_type = "application/json";
    if (xs_buf_printf(&r->body, "{\"status\":\"%s\"",
                      ok ? (ready ? "ready" : "ok") : (ready ? "not ready" : "unhealthy")) ||
        (!ok && (xs_buf_append_str(&r->body, ",\"reason\":") ||
                 json_str(&r->body, reason[0] ? reason : "unavailable"))) ||
        xs_buf_append_str(&r->body, "}\n"))
        resp_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
}

static void serve_metrics(xs_http_t *h, resp_t *r)
{
    r->status = MHD_HTTP_OK;
    r->content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (h->svc.metrics && h->svc.metrics(h->svc.opaque, &r->body) != XS_OK)
        resp_error(r, MHD_HTTP_INTERNAL_SERVER_ERROR, "metrics unavailable");
}

/* A comma-separated list parameter split in place (s is owned by the
 * caller): each element 1..max_len bytes, at most max elements. */
static unsigned split_list(const char *name, char *s, size_t max_len, const char **out, int max,
                           int *n_out, char *errstr, size_t errstr_size)
{
    *n_out = 0;
    for (char *tok = s; tok;) {
        char *comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        size_t len = strlen(tok);
        if (len == 0 || len > max_len) {
            xs_err_set(errstr, errstr_size, "%s: each comma-separated value must be 1..%zu bytes",
                       name, max_len);
            return MHD_HTTP_BAD_REQUEST;
        }
        if (*n_out == max) {
            xs_err_set(errstr, errstr_size, "%s: at most %d values", name, max);
            return MHD_HTTP_BAD_REQUEST;
        }
        out[(*n_out)++] = tok;
        tok = comma ? comma + 1 : NULL;
    }
    return 0;
}

/* A finite decimal number in [lo, hi] (no hex, no inf/nan). */
static unsigned parse_number(const char *name, const char *s, double lo, double hi, double *v,
                             char *errstr, size_t errstr_size)
{
    char *end = NULL;
    bool ok = s && *s && strlen(s) <= 32 && strspn(s, "0123456789.eE+-") == strlen(s);
    if (ok) {
        *v = strtod(s, &end);
        ok = end && *end == '\0' && isfinite(*v) && *v >= lo && *v <= hi;
    }
    if (!ok) {
        xs_err_set(errstr, errstr_size, "%s must be a number in %g..%g", name, lo, hi);
        return MHD_HTTP_BAD_REQUEST;
    }
    return 0;
}

/* The list parameters of the query into rules and items; the strings point
 * into *store (one allocation, freed by the caller). */
static unsigned parse_rules(xs_http_t *h, const param_t *p, int n_p, xs_rules_t *rules,
                            const char **items, int *n_items, char **store, char *errstr,
                            size_t errstr_size)
{
    static const char *const lists[] = {"exclude",     "category",       "exclude_category",
                                        "boost_items", "boost_category", "items"};
    size_t total = 0;
    for (int i = 0; i < n_p; i++)
        total += strlen(p[i].value) + 1;
    char *buf = malloc(total + 1), *at = buf;
    *store = buf;
    *n_items = 0;
    memset(rules, 0, sizeof(*rules));
    if (!buf) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    for (int k = 0; k < 6; k++) {
        const char *v = param_get(p, n_p, lists[k]);
        if (!v)
            continue;
        size_t len = strlen(v);
        memcpy(at, v, len + 1);
        const char **out = k == 0   ? rules->exclude
                           : k == 1 ? rules->category
                           : k == 2 ? rules->exclude_category
                           : k == 3 ? rules->boost_item
                           : k == 4 ? rules->boost_category
                                    : items;
        int *n_out = k == 0   ? &rules->n_exclude
                     : k == 1 ? &rules->n_category
                     : k == 2 ? &rules->n_exclude_category
                     : k == 3 ? &rules->n_boost_item
                     : k == 4 ? &rules->n_boost_category
                              : n_items;
        unsigned st =
            split_list(lists[k], at, h->max_id_len, out, XS_RULES_MAX, n_out, errstr, errstr_size);
        if (st)
            return st;
        at += len + 1;
    }
    const char *mp = param_get(p, n_p, "max_price");
    if (mp) {
        unsigned st =
            parse_number("max_price", mp, 0, 1e12, &rules->max_price, errstr, errstr_size);
        if (st)
            return st;
        rules->has_max_price = true;
    }
    const char *bs = param_get(p, n_p, "boost");
    if (bs) {
        unsigned st = parse_number("boost", bs, 0.001, 1000, &rules->boost, errstr, errstr_size);
        if (st)
            return st;
        if (!rules->n_boost_item && !rules->n_boost_category) {
            xs_err_set(errstr, errstr_size, "boost needs boost_items or boost_category");
            return MHD_HTTP_BAD_REQUEST;
        }
    }
    return 0;
}

/* GET /v1/users/{user}/cross-sell, and with user NULL GET /v1/cross-sell
 * (an anonymous shopper's list for the items= of a cart). */
static void serve_cross_sell(xs_http_t *h, const char *user, const param_t *p, int n_p,
                             const char *target, bool forwarded, resp_t *r)
{
    static const char *const allowed_user[] = {
        "placement", "n",           "item",           "exclude", "category", "exclude_category",
        "max_price", "boost_items", "boost_category", "boost",   NULL};
    static const char *const allowed_anon[] = {
        "placement", "n",           "items",          "exclude", "category", "exclude_category",
        "max_price", "boost_items", "boost_category", "boost",   NULL};
    char errstr[512] = "";
    char upper[32];
    unsigned st = check_params(p, n_p, user ? allowed_user : allowed_anon, errstr, sizeof(errstr));
    int n = 0, placement = XS_PLACEMENT_CART, partition = -1, n_items = 0;
    bool known = false;
    xs_list_t list;
    xs_rules_t *rules = calloc(1, sizeof(*rules));
    const char *items[XS_RULES_MAX];
    char *store = NULL;
    xs_event_list_init(&list);
    if (!rules) {
        xs_err_set(errstr, sizeof(errstr), "out of memory");
        st = MHD_HTTP_SERVICE_UNAVAILABLE;
    }
    if (st)
        goto fail;
    const char *pl = param_get(p, n_p, "placement");
    if (pl) {
        size_t len = strlen(pl);
        placement = -1;
        if (len < sizeof(upper)) {
            for (size_t i = 0; i <= len; i++)
                upper[i] = (char)toupper((unsigned char)pl[i]);
            placement = xs_event_placement_from_name(upper);
        }
        if (placement < 0) {
            xs_err_set(errstr, sizeof(errstr),
                       "placement must be one of PRODUCT_PAGE, CART, CHECKOUT, POST_PURCHASE");
            st = MHD_HTTP_BAD_REQUEST;
            goto fail;
        }
    }
    const char *ns = param_get(p, n_p, "n");
    if (ns && (st = parse_n(ns, XS_HTTP_USER_MAX_N, &n, errstr, sizeof(errstr))))
        goto fail;
    if ((st = parse_rules(h, p, n_p, rules, items, &n_items, &store, errstr, sizeof(errstr))))
        goto fail;
    const char *item = param_get(p, n_p, "item");
    if (item && (!*item || strlen(item) > h->max_id_len)) {
        xs_err_set(errstr, sizeof(errstr), "item must be 1..%zu bytes", h->max_id_len);
        st = MHD_HTTP_BAD_REQUEST;
        goto fail;
    }
    if (item) {
        items[0] = item;
        n_items = 1;
    }
    if (!user && n_items == 0) {
        xs_err_set(errstr, sizeof(errstr),
                   "items is required: the comma-separated item ids of the cart");
        st = MHD_HTTP_BAD_REQUEST;
        goto fail;
    }
    if (user && h->svc.user_forward &&
        h->svc.user_forward(h->svc.opaque, user, target, forwarded, &r->status, &r->body)) {
        r->content_type = "application/json";
        xs_event_list_clear(&list);
        free(rules);
        free(store);
        return;
    }
    if (!h->svc.cross_sell) {
        xs_err_set(errstr, sizeof(errstr), "queries are not available");
        st = MHD_HTTP_NOT_FOUND;
        goto fail;
    }
    xs_err_t err = h->svc.cross_sell(h->svc.opaque, user, (xs_placement_t)placement, items, n_items,
                                     n, rules, &list, &known, &partition, errstr, sizeof(errstr));
    if (err) {
        char safe[80];
        XS_WARN("http query failed", "user=\"%s\" error=\"%s\"",
                log_safe(user ? user : "(anonymous)", safe, sizeof(safe)), errstr);
        st = err == XS_ERR_IO ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    r->status = MHD_HTTP_OK;
    r->content_type = "application/json";
    if (render_list(&r->body, &list, known, partition) != XS_OK) {
        xs_err_set(errstr, sizeof(errstr), "out of memory");
        st = MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    xs_event_list_clear(&list);
    free(rules);
    free(store);
    return;
fail:
    xs_event_list_clear(&list);
    free(rules);
    free(store);
    resp_error(r, st, "%s", errstr);
}

static void serve_neighbours(xs_http_t *h, const char *item, const param_t *p, int n_p, resp_t *r)
{
    static const char *const allowed[] = {"class", "n", NULL};
    char errstr[512] = "";
    unsigned st = check_params(p, n_p, allowed, errstr, sizeof(errstr));
    int n = XS_HTTP_ITEM_DEFAULT_N, n_out = 0;
    xs_class_t cls = XS_CLASS_BOUGHT;
    xs_neighbour_t *v = NULL;
    xs_item_info_t info;
    memset(&info, 0, sizeof(info));
    if (st)
        goto fail;
    const char *cs = param_get(p, n_p, "class");
    if (cs && !strcasecmp(cs, "viewed")) {
        cls = XS_CLASS_VIEWED;
    } else if (cs && strcasecmp(cs, "bought") != 0) {
        xs_err_set(errstr, sizeof(errstr), "class must be bought or viewed");
        st = MHD_HTTP_BAD_REQUEST;
        goto fail;
    }
    const char *ns = param_get(p, n_p, "n");
    if (ns && (st = parse_n(ns, XS_HTTP_ITEM_MAX_N, &n, errstr, sizeof(errstr))))
        goto fail;
    if (!h->svc.neighbours) {
        xs_err_set(errstr, sizeof(errstr), "queries are not available");
        st = MHD_HTTP_NOT_FOUND;
        goto fail;
    }
    xs_err_t err =
        h->svc.neighbours(h->svc.opaque, item, cls, n, &v, &n_out, &info, errstr, sizeof(errstr));
    if (err) {
        char safe[80];
        XS_WARN("http query failed", "item=\"%s\" error=\"%s\"", log_safe(item, safe, sizeof(safe)),
                errstr);
        st = err == XS_ERR_IO ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    if (!info.found) {
        xs_err_set(errstr, sizeof(errstr), "unknown item");
        st = MHD_HTTP_NOT_FOUND;
        goto fail;
    }
    r->status = MHD_HTTP_OK;
    r->content_type = "application/json";
    if (render_neighbours(&r->body, item, cls, &info, v, n_out) != XS_OK) {
        xs_err_set(errstr, sizeof(errstr), "out of memory");
        st = MHD_HTTP_INTERNAL_SERVER_ERROR;
        goto fail;
    }
    xs_engine_neighbours_free(v, n_out);
    xs_engine_item_info_clear(&info);
    return;
fail:
    xs_engine_neighbours_free(v, n_out);
    xs_engine_item_info_clear(&info);
    resp_error(r, st, "%s", errstr);
}

/* ======================================================================== */
/* POST /v1/events                                                          */
/* ======================================================================== */

bool xs_http_token_equal(const char *given, size_t given_len, const char *want, size_t want_len)
{
    /* every byte of want is read whatever given holds: no early exit */
    unsigned char diff = given_len != want_len;
    for (size_t i = 0; i < want_len; i++)
        diff |= (unsigned char)(want[i] ^ (i < given_len ? given[i] : 0));
    return diff == 0 && want_len > 0;
}

static double mono_ms(void);

/* Takes n events from the rate bucket; false when there are not enough. */
static bool bucket_take(xs_http_t *h, size_t n)
{
    if (!h->events_rate)
        return true;
    double now = mono_ms();
    h->bucket += (now - h->bucket_ms) / 1e3 * h->events_rate;
    h->bucket_ms = now;
    if (h->bucket > h->events_rate)
        h->bucket = h->events_rate;
    if ((double)n > h->bucket)
        return false;
    h->bucket -= (double)n;
    return true;
}

static const char *kind_name(xs_event_kind_t k)
{
    return k == XS_KIND_CLICK ? "click" : k == XS_KIND_CART ? "cart" : "item";
}

/* Checks made before the body is read: 0 to read it, else the status (r filled). */
static unsigned events_precheck(xs_http_t *h, struct MHD_Connection *con, const char *target,
                                resp_t *r)
{
    if (strcmp(target, "/v1/events") != 0) {
        if (!strncmp(target, "/v1/events?", 11))
            resp_error(r, MHD_HTTP_BAD_REQUEST, "POST /v1/events takes no query parameters");
        else {
            resp_error(r, MHD_HTTP_METHOD_NOT_ALLOWED, "method POST not allowed (GET, HEAD)");
            r->allow = "GET, HEAD";
        }
        return r->status;
    }
    if (!h->events || !h->svc.event_check || !h->svc.events_publish) {
        resp_error(r, MHD_HTTP_NOT_FOUND,
                   "events over HTTP are not enabled (http.events.enabled, http.auth.token.file)");
        return r->status;
    }
    const char *auth = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) {
        resp_error(r, MHD_HTTP_UNAUTHORIZED, "missing bearer token (Authorization: Bearer ...)");
        r->www_auth = true;
        return r->status;
    }
    const char *tok = auth + 7;
    while (*tok == ' ')
        tok++;
    if (!xs_http_token_equal(tok, strlen(tok), h->token, h->token_len)) {
        resp_error(r, MHD_HTTP_UNAUTHORIZED, "wrong bearer token");
        r->www_auth = true;
        XS_WARN("http token rejected", "path=/v1/events");
        return r->status;
    }
    const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end = NULL;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end == cl || *end || v > h->max_body) {
            resp_error(r, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %zu bytes",
                       h->max_body);
            return r->status;
        }
    }
    return 0;
}

static void serve_events(xs_http_t *h, const xs_buf_t *body, resp_t *r)
{
    char why[512] = "";
    xs_event_t *evs = NULL;
    char **reasons = NULL;
    size_t n = 0, n_bad = 0;
    xs_json_t *root =
        body->len ? xs_json_parse((const char *)body->data, body->len, why, sizeof(why)) : NULL;
    if (!root) {
        resp_error(r, MHD_HTTP_BAD_REQUEST, "the body is not JSON: %s",
                   body->len ? why : "empty body");
        return;
    }
    const xs_json_t *arr =
        xs_json_type(root) == XS_JSON_OBJECT ? xs_json_get(root, "events") : root;
    if (!arr || xs_json_type(arr) != XS_JSON_ARRAY) {
        resp_error(r, MHD_HTTP_BAD_REQUEST, "expected {\"events\": [...]} or an array of events");
        goto out;
    }
    n = xs_json_size(arr);
    if (n == 0 || n > XS_HTTP_MAX_EVENTS) {
        resp_error(r, MHD_HTTP_BAD_REQUEST, "a batch holds 1..%d events, not %zu",
                   XS_HTTP_MAX_EVENTS, n);
        goto out;
    }
    evs = calloc(n, sizeof(*evs));
    reasons = calloc(n, sizeof(*reasons));
    if (!evs || !reasons) {
        resp_error(r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        why[0] = '\0';
        xs_err_t err = xs_event_json_decode(xs_json_at(arr, i), &evs[i], why, sizeof(why));
        if (err == XS_OK) {
            err = h->svc.event_check(h->svc.opaque, &evs[i], why, sizeof(why));
            if (err)
                xs_event_clear(&evs[i]);
        }
        if (err) {
            reasons[i] = xs_str_dup(why[0] ? why : xs_err_str(err));
            n_bad++;
        }
    }
    xs_buf_reset(&r->body);
    r->content_type = "application/json";
    if (n_bad) {
        r->status = MHD_HTTP_BAD_REQUEST;
        xs_buf_printf(&r->body,
                      "{\"error\":\"%zu of %zu events are invalid; nothing was produced\","
                      "\"status\":400,\"accepted\":0,\"results\":[",
                      n_bad, n);
        for (size_t i = 0; i < n; i++) {
            xs_buf_printf(&r->body, "%s{\"index\":%zu,\"status\":\"%s\"", i ? "," : "", i,
                          reasons[i] ? "invalid" : "valid");
            if (reasons[i]) {
                xs_buf_append_str(&r->body, ",\"reason\":");
                json_str(&r->body, reasons[i]);
            }
            xs_buf_append_u8(&r->body, '}');
        }
        xs_buf_append_str(&r->body, "]}\n");
        goto out;
    }
    if (!bucket_take(h, n)) {
        resp_error(r, MHD_HTTP_TOO_MANY_REQUESTS,
                   "more than http.events.rate = %u events per second; retry later",
                   h->events_rate);
        r->retry_after = true;
        goto out;
    }
    if (h->svc.events_publish(h->svc.opaque, evs, n, why, sizeof(why)) != XS_OK) {
        XS_WARN("http events not produced", "events=%zu error=\"%s\"", n, why);
        resp_error(r, MHD_HTTP_SERVICE_UNAVAILABLE,
                   "not every event was acknowledged by Kafka (%s); resend the batch: the "
                   "worker ignores event ids it has seen",
                   why);
        goto out;
    }
    r->status = MHD_HTTP_ACCEPTED;
    xs_buf_printf(&r->body, "{\"accepted\":%zu,\"results\":[", n);
    for (size_t i = 0; i < n; i++) {
        xs_buf_printf(&r->body, "%s{\"index\":%zu,\"status\":\"accepted\",\"kind\":\"%s\",\"key\":",
                      i ? "," : "", i, kind_name(evs[i].kind));
        json_str(&r->body, evs[i].kind == XS_KIND_ITEM ? evs[i].item_id : evs[i].user_id);
        xs_buf_append_u8(&r->body, '}');
    }
    xs_buf_append_str(&r->body, "]}\n");
out:
    for (size_t i = 0; evs && i < n; i++)
        xs_event_clear(&evs[i]);
    for (size_t i = 0; reasons && i < n; i++)
        free(reasons[i]);
    free(evs);
    free(reasons);
    xs_json_free(root);
}

/* GET /shop/{file}: a plain file name (letters, digits, '-', '_', one
 * '.'), a known extension, at most 1 MiB, from shop_dir. */
static void serve_static(xs_http_t *h, const char *name, resp_t *r)
{
    static const char *const types[][2] = {{".html", "text/html; charset=utf-8"},
                                           {".css", "text/css; charset=utf-8"},
                                           {".js", "text/javascript; charset=utf-8"},
                                           {".json", "application/json"},
                                           {".svg", "image/svg+xml"}};
    if (!h->shop_dir) {
        resp_error(r, MHD_HTTP_NOT_FOUND, "the demo shop is not served (http.shop.dir)");
        return;
    }
    if (!*name)
        name = "index.html";
    size_t len = strlen(name);
    const char *dot = strchr(name, '.');
    const char *type = NULL;
    bool ok =
        len < 64 && dot && dot != name && strchr(dot + 1, '.') == NULL &&
        strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") == len;
    for (size_t i = 0; ok && !type && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcmp(dot, types[i][0]))
            type = types[i][1];
    if (!ok || !type) {
        resp_error(r, MHD_HTTP_NOT_FOUND, "no such file");
        return;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s", h->shop_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        resp_error(r, MHD_HTTP_NOT_FOUND, "no such file");
        return;
    }
    char chunk[8192];
    size_t n;
    xs_buf_reset(&r->body);
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0 && r->body.len < 1024 * 1024)
        xs_buf_append(&r->body, chunk, n);
    fclose(f);
    r->status = MHD_HTTP_OK;
    r->content_type = type;
}

/* Routes a raw request-target ("/path?query") into r. */
static void route(xs_http_t *h, const char *target, bool forwarded, resp_t *r)
{
    char errstr[256] = "";
    char *seg[XS_HTTP_MAX_SEGMENTS] = {NULL};
    param_t params[XS_HTTP_MAX_PARAMS];
    int n_seg = 0, n_p = 0;
    unsigned st = 0;
    if (target[0] != '/') {
        resp_error(r, MHD_HTTP_BAD_REQUEST, "the request target must start with '/'");
        return;
    }
    const char *q = strchr(target, '?');
    size_t path_len = q ? (size_t)(q - target) : strlen(target);
    /* Segments after the leading '/', each decoded on its own. */
    for (size_t i = 1; i <= path_len;) {
        const char *s = target + i;
        const char *slash = memchr(s, '/', path_len - i);
        size_t len = slash ? (size_t)(slash - s) : path_len - i;
        if (n_seg == XS_HTTP_MAX_SEGMENTS) {
            st = MHD_HTTP_NOT_FOUND;
            xs_err_set(errstr, sizeof(errstr), "no such path");
            goto out;
        }
        if (!(seg[n_seg] = decode_component(s, len, false, errstr, sizeof(errstr)))) {
            st = MHD_HTTP_BAD_REQUEST;
            goto out;
        }
        n_seg++;
        i += len + 1;
    }
    if ((st = parse_query(q ? q + 1 : NULL, params, &n_p, errstr, sizeof(errstr))))
        goto out;
    if (n_seg >= 1 && !strcmp(seg[0], "shop")) {
        r->route = "/shop/";
        if (n_seg <= 2)
            serve_static(h, n_seg == 2 ? seg[1] : "", r);
        else
            resp_error(r, MHD_HTTP_NOT_FOUND, "no such file");
        goto out;
    }
    if (n_seg == 1 &&
        (!strcmp(seg[0], "metrics") || !strcmp(seg[0], "healthz") || !strcmp(seg[0], "readyz"))) {
        r->route = !strcmp(seg[0], "metrics")   ? "/metrics"
                   : !strcmp(seg[0], "healthz") ? "/healthz"
                                                : "/readyz";
        if ((st = check_params(params, n_p, NULL, errstr, sizeof(errstr))))
            goto out;
        if (!strcmp(seg[0], "metrics"))
            serve_metrics(h, r);
        else
            serve_probe(h, seg[0][0] == 'r', r);
    } else if (n_seg == 2 && !strcmp(seg[0], "v1") && !strcmp(seg[1], "cross-sell")) {
        r->route = "/v1/cross-sell";
        serve_cross_sell(h, NULL, params, n_p, target, forwarded, r);
    } else if (n_seg == 4 && !strcmp(seg[0], "v1") &&
               ((!strcmp(seg[1], "users") && !strcmp(seg[3], "cross-sell")) ||
                (!strcmp(seg[1], "items") && !strcmp(seg[3], "neighbours")))) {
        bool user = seg[1][0] == 'u';
        r->route = user ? "/v1/users/{id}/cross-sell" : "/v1/items/{id}/neighbours";
        if (!seg[2][0] || strlen(seg[2]) > h->max_id_len) {
            st = MHD_HTTP_BAD_REQUEST;
            xs_err_set(errstr, sizeof(errstr), "%s id must be 1..%zu bytes", user ? "user" : "item",
                       h->max_id_len);
            goto out;
        }
        if (user)
            serve_cross_sell(h, seg[2], params, n_p, target, forwarded, r);
        else
            serve_neighbours(h, seg[2], params, n_p, r);
    } else {
        st = MHD_HTTP_NOT_FOUND;
        xs_err_set(errstr, sizeof(errstr),
                   "no such path (try /metrics, /healthz, /readyz, "
                   "/v1/users/{id}/cross-sell, /v1/cross-sell, /v1/items/{id}/neighbours)");
    }
out:
    if (st)
        resp_error(r, st, "%s", errstr);
    params_free(params, n_p);
    for (int i = 0; i < n_seg; i++)
        free(seg[i]);
}

/* ======================================================================== */
/* MHD callbacks                                                            */
/* ======================================================================== */

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static bool has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7F)
            return true;
    return false;
}

/*
 * false when a raw NUL byte cut the method or the target short. In MHD's
 * buffer the request line is "method\0[spaces]target\0version": the target
 * begins right after the method's terminator and any spaces, and the
 * version right after the target's terminator. A NUL inside the method or
 * the target makes a string shorter than its span.
 */
static bool request_line_whole(const char *method, const char *target, size_t target_len,
                               const char *version)
{
    uintptr_t m = (uintptr_t)method, t = (uintptr_t)target, v = (uintptr_t)version;
    size_t span = XS_HTTP_CONN_MEMORY;
    if (!target)
        return true;
    if (m < t && t - m <= span) {
        for (uintptr_t p = m + strlen(method) + 1; p < t; p++)
            if (*(const char *)p != ' ')
                return false;
    }
    if (t < v && v - t <= span && v - t - 1 != target_len)
        return false;
    return true;
}

static conn_t *conn_of(struct MHD_Connection *con)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(con, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* MHD's connection notifications: keeps the budget (see the top of the file). */
static void on_connection(void *cls, struct MHD_Connection *con, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    xs_http_t *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_t *c = calloc(1, sizeof(*c));
        *socket_context = c;
        if (!c || !ci)
            return;
        c->fd = ci->connect_fd;
        c->since = mono_ms();
        c->prev = h->conns_tail;
        if (h->conns_tail)
            h->conns_tail->next = c;
        else
            h->conns = c;
        h->conns_tail = c;
        h->n_open++;
        while (h->n_open > h->max_open) {
            conn_t *oldest = NULL;
            for (conn_t *x = h->conns; x; x = x->next)
                if (x != c && !x->busy && !x->shed && (!oldest || x->since < oldest->since))
                    oldest = x;
            if (!oldest)
                break; /* every other connection has a request in progress */
            shutdown(oldest->fd, SHUT_RDWR);
            oldest->shed = true;
            h->n_open--;
            XS_DEBUG("http connection shed", "waited_ms=%.0f open=%u", mono_ms() - oldest->since,
                     h->n_open);
        }
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        conn_t *c = *socket_context;
        if (!c)
            return;
        if (c->prev)
            c->prev->next = c->next;
        else
            h->conns = c->next;
        if (c->next)
            c->next->prev = c->prev;
        else
            h->conns_tail = c->prev;
        if (!c->shed)
            h->n_open--;
        free(c);
        *socket_context = NULL;
    }
}

static void *uri_cb(void *cls, const char *uri, struct MHD_Connection *con)
{
    (void)cls;
    (void)con;
    req_t *rq = calloc(1, sizeof(*rq));
    if (!rq)
        return NULL;
    size_t len = uri ? strlen(uri) : 0;
    rq->raw = uri;
    rq->target_len = len;
    if (len > XS_HTTP_MAX_URL) {
        rq->too_long = true;
    } else {
        rq->target = xs_str_ndup(uri ? uri : "", len);
    }
    return rq;
}

static void on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    conn_t *c = conn_of(con);
    if (c) {
        c->busy = false;
        c->since = mono_ms();
    }
    req_t *rq = *con_cls;
    if (rq) {
        free(rq->target);
        xs_buf_free(&rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static enum MHD_Result send_resp(struct MHD_Connection *con, resp_t *r)
{
    struct MHD_Response *mr = MHD_create_response_from_buffer(
        r->body.len, r->body.len ? r->body.data : (void *)"", MHD_RESPMEM_MUST_COPY);
    if (!mr)
        return MHD_NO;
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->allow)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->www_auth)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"xsell\"");
    if (r->retry_after)
        MHD_add_response_header(mr, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    enum MHD_Result ret = MHD_queue_response(con, r->status, mr);
    MHD_destroy_response(mr);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *con, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)url;
    (void)upload_data;
    xs_http_t *h = cls;
    req_t *rq = *con_cls;
    resp_t r = {.status = MHD_HTTP_OK, .content_type = "application/json"};
    double t0 = mono_ms();
    if (rq && rq->responded) {
        *upload_data_size = 0; /* a body after the answer: discarded */
        return MHD_YES;
    }
    if (rq && rq->body_started) {
        /* POST /v1/events: the body arrives in pieces, then a call without */
        if (*upload_data_size > 0) {
            if (!rq->body_too_large && rq->body.len + *upload_data_size <= h->max_body)
                xs_buf_append(&rq->body, upload_data, *upload_data_size);
            else
                rq->body_too_large = true; /* the rest is read and discarded */
            *upload_data_size = 0;
            return MHD_YES;
        }
        r.route = "/v1/events";
        if (rq->body_too_large)
            resp_error(&r, MHD_HTTP_CONTENT_TOO_LARGE, "request body larger than %zu bytes",
                       h->max_body);
        else
            serve_events(h, &rq->body, &r);
        goto answer;
    }
    conn_t *c = conn_of(con);
    if (c)
        c->busy = true;
    if (!rq || (!rq->too_long && !rq->target)) {
        resp_error(&r, MHD_HTTP_SERVICE_UNAVAILABLE, "out of memory");
    } else if (has_control(method) ||
               !request_line_whole(method, rq->raw, rq->target_len, version)) {
        resp_error(&r, MHD_HTTP_BAD_REQUEST, "NUL or control character in the request line");
    } else if (!strcmp(method, MHD_HTTP_METHOD_POST) && !rq->too_long) {
        if (!strcmp(rq->target, "/v1/events"))
            r.route = "/v1/events";
        if (events_precheck(h, con, rq->target, &r) == 0) {
            rq->body_started = true; /* read the body (next calls) */
            return MHD_YES;
        }
    } else if ((!strcmp(method, MHD_HTTP_METHOD_GET) || !strcmp(method, MHD_HTTP_METHOD_HEAD)) &&
               rq->target && !strcmp(rq->target, "/v1/events")) {
        resp_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s not allowed (POST)", method);
        r.allow = "POST";
    } else if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
               strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        char safe[20];
        resp_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "method %s not allowed (GET, HEAD)",
                   log_safe(method, safe, sizeof(safe)));
        r.allow = "GET, HEAD";
    } else if (rq->too_long) {
        resp_error(&r, MHD_HTTP_URI_TOO_LONG, "URL longer than %d bytes", XS_HTTP_MAX_URL);
    } else {
        route(h, rq->target,
              MHD_lookup_connection_value(con, MHD_HEADER_KIND, "X-Xsell-Forwarded") != NULL, &r);
    }
answer:
    if (rq)
        rq->responded = true;
    enum MHD_Result ret = send_resp(con, &r);
    if (h->svc.observe)
        h->svc.observe(h->svc.opaque, r.route ? r.route : "other", r.status,
                       (mono_ms() - t0) / 1e3);
    char safe_method[20], safe_target[160];
    XS_DEBUG(
        "http request", "method=\"%s\" target=\"%s\" status=%u ms=%.2f",
        log_safe(method, safe_method, sizeof(safe_method)),
        log_safe(rq && rq->target ? rq->target : "(too long)", safe_target, sizeof(safe_target)),
        r.status, mono_ms() - t0);
    xs_buf_free(&r.body);
    return ret;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    msg[strcspn(msg, "\r\n")] = '\0';
    for (char *p = msg; *p; p++)
        if (*p == '"')
            *p = '\'';
    XS_DEBUG("libmicrohttpd", "text=\"%s\"", msg);
}

/* ======================================================================== */
/* Public API                                                               */
/* ======================================================================== */

bool xs_http_split_address(const char *address, char *host, size_t host_size, int *port)
{
    const char *colon = NULL, *h0 = address, *h1 = NULL;
    if (!address || !*address)
        return false;
    if (address[0] == '[') {
        const char *rb = strchr(address, ']');
        if (!rb || rb[1] != ':')
            return false;
        h0 = address + 1;
        h1 = rb;
        colon = rb + 1;
    } else {
        colon = strrchr(address, ':');
        if (!colon || memchr(address, ':', (size_t)(colon - address)))
            return false; /* IPv6 needs brackets */
        h1 = colon;
    }
    size_t hl = (size_t)(h1 - h0);
    if (hl == 0 || hl >= host_size)
        return false;
    const char *ps = colon + 1;
    long v = 0;
    if (!*ps || strlen(ps) > 5)
        return false;
    for (const char *p = ps; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return false;
    memcpy(host, h0, hl);
    host[hl] = '\0';
    *port = (int)v;
    return true;
}

xs_http_t *xs_http_new(const xs_http_opts_t *opts, const xs_http_service_t *svc, char *errstr,
                       size_t errstr_size)
{
    char host[256], portstr[8];
    int port = 0;
    struct addrinfo hints, *ai = NULL;
    xs_http_t *h = NULL;
    if (!xs_http_split_address(opts->address, host, sizeof(host), &port)) {
        xs_err_set(errstr, errstr_size, "http: address '%s' is not host:port",
                   opts->address ? opts->address : "");
        goto fail;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host, portstr, &hints, &ai);
    if (gai != 0 || !ai) {
        xs_err_set(errstr, errstr_size, "http: cannot resolve '%s': %s", host, gai_strerror(gai));
        goto fail;
    }
    if (!(h = calloc(1, sizeof(*h)))) {
        xs_err_set(errstr, errstr_size, "http: out of memory");
        goto fail;
    }
    h->svc = *svc;
    h->max_id_len = opts->max_id_len ? opts->max_id_len : 256;
    h->events = opts->events;
    h->max_body = opts->max_body ? opts->max_body : 1024 * 1024;
    h->events_rate = opts->events_rate;
    if (opts->shop_dir && *opts->shop_dir && !(h->shop_dir = xs_str_dup(opts->shop_dir))) {
        xs_err_set(errstr, errstr_size, "http: out of memory");
        goto fail;
    }
    h->bucket = opts->events_rate;
    h->bucket_ms = mono_ms();
    if (h->events) {
        if (!opts->auth_token || !*opts->auth_token) {
            xs_err_set(errstr, errstr_size, "http: events need a bearer token");
            goto fail;
        }
        if (!(h->token = xs_str_dup(opts->auth_token))) {
            xs_err_set(errstr, errstr_size, "http: out of memory");
            goto fail;
        }
        h->token_len = strlen(h->token);
    }
    unsigned max_conn = opts->max_connections ? opts->max_connections : 64;
    unsigned reserve = max_conn / 8 ? max_conn / 8 : 1;
    h->max_open = max_conn > reserve ? max_conn - reserve : max_conn;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_SOCK_ADDR, ai->ai_addr, MHD_OPTION_URI_LOG_CALLBACK, uri_cb, h,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        h, MHD_OPTION_CONNECTION_LIMIT, max_conn, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)(opts->timeout_s ? opts->timeout_s : 10), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)XS_HTTP_CONN_MEMORY, MHD_OPTION_END);
    if (!h->daemon) {
        xs_err_set(errstr, errstr_size, "http: cannot listen on %s (address in use or not local?)",
                   opts->address);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di && di->port ? di->port : port;
    snprintf(h->address, sizeof(h->address), ai->ai_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host,
             h->port);
    freeaddrinfo(ai);
    XS_INFO("http listening", "address=%s", h->address);
    return h;
fail:
    if (ai)
        freeaddrinfo(ai);
    xs_http_destroy(h);
    return NULL;
}

void xs_http_destroy(xs_http_t *h)
{
    if (!h)
        return;
    if (h->daemon)
        MHD_stop_daemon(h->daemon);
    if (h->token)
        memset(h->token, 0, h->token_len);
    free(h->token);
    free(h->shop_dir);
    free(h);
}

const char *xs_http_address(const xs_http_t *h)
{
    return h->address;
}

int xs_http_port(const xs_http_t *h)
{
    return h->port;
}
