/*
 * xsell — the HTTP endpoint of the worker (libmicrohttpd; lib/io/http.c is
 * the only file that includes <microhttpd.h>).
 *
 *   GET /metrics                              Prometheus text format 0.0.4
 *   GET /healthz                              200 while the worker loop runs, else 503
 *   GET /readyz                               200 once caught up after an assignment
 *   GET /v1/users/{id}/cross-sell?placement=CART&n=5&item=ID
 *                                             the list the user would get now (with
 *                                             members.enabled, from the instance that owns
 *                                             the user's partition: members.h)
 *   GET /v1/cross-sell?items=A,B&placement=CART&n=5
 *                                             the list of an anonymous cart
 *       both with the query-time rules exclude=, category=,
 *       exclude_category=, max_price=, boost_items=, boost_category=, boost=
 *       (xs_rules_t; comma-separated lists of up to XS_RULES_MAX values)
 *   GET /v1/items/{id}/neighbours?class=bought|viewed&n=10
 *                                             an item's ranked neighbours
 *   POST /v1/events                           a storefront's events (see below)
 *   GET /shop/, /shop/{file}                  the demo shop's static files (shop_dir:
 *                                             plain names, .html .css .js .svg .json)
 *
 * Query answers and errors are JSON; errors are {"error": "...", "status": N}
 * with a 4xx status for anything the client got wrong (unknown path or
 * parameter, bad placement, n out of range, overlong URL, invalid
 * percent-encoding or UTF-8, control characters, empty or overlong id) and
 * 405 for methods other than GET and HEAD; 503 when the service answers
 * XS_ERR_IO (busy: the worker did not release its lock in time), 500 for
 * other service errors. Parameters are strict: unknown
 * and repeated parameters are rejected. Names of placements and classes are
 * case-insensitive.
 *
 * NUL or control bytes anywhere in the request line (method or target,
 * raw or percent-encoded) are a 400.
 *
 * Bounds: one server thread (requests are served one at a time; the
 * queries are short), at most max_connections connections, of which 1/8
 * (at least 1) are kept free for newcomers by closing the connection that
 * has waited longest without a request in progress (slow clients cannot
 * starve the probes), a per-connection
 * memory pool of 32 KiB (request line and headers), URLs up to
 * XS_HTTP_MAX_URL bytes (longer: 414), no request bodies (every endpoint
 * is GET but POST /v1/events, whose body is bounded by max_body: a larger
 * Content-Length is a 413 before any byte is read, a chunked body is
 * discarded beyond it and answered 413), idle connections closed after
 * timeout_s.
 *
 * Write endpoints (POST /v1/events) require "Authorization: Bearer
 * <token>" (401 when missing or wrong, compared in constant time) and are
 * a 404 unless configured (events). A batch is {"events": [...]} (or a bare
 * array) of up to XS_HTTP_MAX_EVENTS objects in the shape of `xsell
 * produce --format jsonl`; every event is decoded and validated first, and
 * if any fails the answer is 400 with the reason of each and nothing is
 * produced; else the events are produced and acknowledged, 202 with a
 * status per event.
 *
 * The service callbacks run on the server thread; the worker implements
 * them under the lock it holds while it processes a message, so a query
 * sees the state between two messages.
 */
#ifndef XSELL_HTTP_H
#define XSELL_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include "xsell/common.h"
#include "xsell/engine.h"
#include "xsell/event.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XS_HTTP_MAX_URL 2048

/* What the server asks its owner. Every callback is optional (NULL: 404
 * for the queries, 503 for health and readiness, empty metrics). */
typedef struct xs_http_service {
    void *opaque;
    /* Appends the Prometheus text. */
    xs_err_t (*metrics)(void *opaque, xs_buf_t *out);
    /* true when healthy / ready; otherwise a short reason. */
    bool (*healthy)(void *opaque, char *reason, size_t reason_size);
    bool (*ready)(void *opaque, char *reason, size_t reason_size);
    /*
     * Fills *list (initialised by the caller) with the list user_id would
     * get now (user_id NULL: an anonymous shopper, no user state), as
     * xs_engine_recommend_ex(): items[0..n_items) the context (the last one
     * the trigger; none: n_items 0), n = 0 the placement's length, rules
     * the query-time rules (never NULL). Sets *known (the user has a
     * profile here) and *partition (-1 when unknown or anonymous).
     */
    xs_err_t (*cross_sell)(void *opaque, const char *user_id, xs_placement_t placement,
                           const char *const *items, int n_items, int n, const xs_rules_t *rules,
                           xs_list_t *list, bool *known, int *partition, char *errstr,
                           size_t errstr_size);
    /* As xs_engine_neighbours(). */
    xs_err_t (*neighbours)(void *opaque, const char *item_id, xs_class_t cls, int n,
                           xs_neighbour_t **out, int *n_out, xs_item_info_t *info, char *errstr,
                           size_t errstr_size);
    /* Told of every answered request: the route template ("/metrics",
     * "/v1/users/{id}/cross-sell", ...; "other" for unknown paths and
     * requests refused before routing), the status and the seconds from the
     * request to the answer queued. */
    void (*observe)(void *opaque, const char *route, unsigned status, double seconds);
    /*
     * POST /v1/events. event_check validates one event exactly as input
     * from Kafka is validated (XS_ERR_INVALID with the reason the
     * dead-letter topic would get); events_publish produces checked events
     * as Avro to their input topics, keyed by user (catalog: by item), and
     * waits for the broker's acknowledgements (XS_ERR_IO: not all were).
     */
    /*
     * Before GET /v1/users/{id}/cross-sell (its parameters checked) is
     * answered here: true when another instance answers it, with *status
     * and the JSON body set (include/xsell/members.h). target is the raw
     * request-target; forwarded: the request carries X-Xsell-Forwarded.
     */
    bool (*user_forward)(void *opaque, const char *user_id, const char *target, bool forwarded,
                         unsigned *status, xs_buf_t *body);
    xs_err_t (*event_check)(void *opaque, const xs_event_t *ev, char *reason, size_t reason_size);
    xs_err_t (*events_publish)(void *opaque, const xs_event_t *evs, size_t n, char *errstr,
                               size_t errstr_size);
} xs_http_service_t;

typedef struct xs_http_opts {
    const char *address;      /* "host:port", "[v6]:port"; port 0 = any free port */
    unsigned max_connections; /* 0 = 64 */
    unsigned timeout_s;       /* idle connection timeout; 0 = 10 */
    size_t max_id_len;        /* longest user or item id; 0 = 256 */
    bool events;              /* serve POST /v1/events (else it is a 404) */
    const char *auth_token;   /* bearer token of the write endpoints (copied); required with
                                 events */
    size_t max_body;          /* longest request body (413 beyond); 0 = 1 MiB */
    unsigned events_rate;     /* events per second accepted over HTTP (a token bucket holding
                                 one second's worth; 429 beyond); 0 = no limit */
    const char *shop_dir;     /* static files served under /shop/ (the demo shop; copied);
                                 NULL or "": none */
} xs_http_opts_t;

#define XS_HTTP_MAX_EVENTS 1000 /* events in one POST /v1/events batch */

/* Constant-time comparison of a presented secret with the expected one: the
 * time depends on the expected length only, never on where they differ. */
bool xs_http_token_equal(const char *given, size_t given_len, const char *want, size_t want_len);

typedef struct xs_http xs_http_t;

/* Starts serving (the service struct is copied; opaque must outlive the
 * server). NULL + errstr when the address is malformed or cannot be bound. */
xs_http_t *xs_http_new(const xs_http_opts_t *opts, const xs_http_service_t *svc, char *errstr,
                       size_t errstr_size);
/* Stops serving: waits for the request in progress, closes connections. */
void xs_http_destroy(xs_http_t *h); /* NULL is a no-op */
/* The bound address as "host:port" with the actual port. */
const char *xs_http_address(const xs_http_t *h);
int xs_http_port(const xs_http_t *h);

/* Splits "host:port" / "[v6]:port" into host (brackets removed) and port.
 * false when malformed. */
bool xs_http_split_address(const char *address, char *host, size_t host_size, int *port);

#ifdef __cplusplus
}
#endif
#endif
