/*
 * service.c — the worker's HTTP service (see include/xsell/service.h): the
 * callbacks of the HTTP server (include/xsell/http.h) on the runtime, the
 * engine and the worker's metrics.
 */
#include "xsell/service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/codec.h"
#include "xsell/event.h"
#include "xsell/http.h"
#include "xsell/kafka.h"
#include "xsell/members.h"
#include "xsell/obs.h"

struct xs_service {
    const xs_config_t *cfg;
    xs_runtime_t *rt;
    xs_engine_t *engine;
    xs_worker_metrics_t *metrics;
    xs_event_limits_t limits;
    size_t max_message_bytes;
    const char *topic_clicks, *topic_cart, *topic_catalog;
    xs_http_t *http;
    /* POST /v1/events (http.events.enabled): the HTTP thread's own codec and producer */
    xs_codec_t *http_codec;
    xs_producer_t *http_producer;
    xs_members_t *members; /* members.enabled: queries over the group */
    xs_http_t *peer_http;  /* members.enabled: the listener of forwarded queries */
};

/* ---- the callbacks of the HTTP server (on the HTTP thread) ----------------------- */

static void svc_observe(void *opaque, const char *route, unsigned status, double seconds)
{
    xs_service_t *s = opaque;
    (void)status;
    xs_obs_http(xs_worker_metrics_obs(s->metrics), route, seconds);
}

static xs_err_t svc_metrics(void *opaque, xs_buf_t *out)
{
    xs_service_t *s = opaque;
    xs_err_t err = xs_worker_metrics_render(s->metrics, out);
    return err || !s->members ? err : xs_members_render(s->members, out);
}

static bool svc_user_forward(void *opaque, const char *user_id, const char *target, bool forwarded,
                             unsigned *status, xs_buf_t *body)
{
    xs_service_t *s = opaque;
    return s->members && xs_members_forward(s->members, user_id, target, forwarded, status, body);
}

static bool svc_healthy(void *opaque, char *reason, size_t reason_size)
{
    xs_service_t *s = opaque;
    return xs_runtime_healthy(s->rt, reason, reason_size);
}

static bool svc_ready(void *opaque, char *reason, size_t reason_size)
{
    xs_service_t *s = opaque;
    return xs_runtime_ready(s->rt, reason, reason_size);
}

static xs_err_t svc_cross_sell(void *opaque, const char *user_id, xs_placement_t placement,
                               const char *const *items, int n_items, int n,
                               const xs_rules_t *rules, xs_list_t *list, bool *known,
                               int *partition, char *errstr, size_t errstr_size)
{
    xs_service_t *s = opaque;
    xs_err_t err = xs_runtime_lock(s->rt, errstr, errstr_size);
    int32_t first = -1;
    *known = false;
    *partition = -1;
    if (err)
        return err;
    /* User state is keyed by input partition: look in each assigned one. */
    size_t cursor = 0;
    int32_t p;
    while (user_id && !*known && xs_runtime_next_partition(s->rt, &cursor, &p)) {
        if (first < 0)
            first = p;
        if ((err = xs_engine_has_user(s->engine, (uint16_t)p, user_id, known, errstr, errstr_size)))
            goto out;
        if (*known)
            *partition = p;
    }
    /* Unknown here: the cold-start list (trending items). */
    err = xs_engine_recommend_ex(s->engine, (uint16_t)(*known ? *partition : XS_MAX(first, 0)),
                                 user_id, items, n_items, placement, n, rules, list, errstr,
                                 errstr_size);
out:
    xs_runtime_unlock(s->rt);
    return err;
}

static xs_err_t svc_neighbours(void *opaque, const char *item_id, xs_class_t cls, int n,
                               xs_neighbour_t **out, int *n_out, xs_item_info_t *info, char *errstr,
                               size_t errstr_size)
{
    xs_service_t *s = opaque;
    xs_err_t err = xs_runtime_lock(s->rt, errstr, errstr_size);
    *out = NULL;
    *n_out = 0;
    if (err)
        return err;
    err = xs_engine_neighbours(s->engine, item_id, cls, n, out, n_out, info, errstr, errstr_size);
    xs_runtime_unlock(s->rt);
    return err;
}

/* POST /v1/events, on the HTTP thread: the checks Kafka input gets (size of
 * the encoded message, xs_event_validate, a catalog topic for catalog
 * events), then produced to the input topics, keyed as producers key them. */
static xs_err_t svc_event_check(void *opaque, const xs_event_t *ev, char *reason,
                                size_t reason_size)
{
    xs_service_t *s = opaque;
    xs_buf_t b = {0};
    xs_err_t err = XS_OK;
    if (ev->kind == XS_KIND_ITEM && !*s->topic_catalog) {
        xs_err_set(reason, reason_size, "no catalog topic (topics.catalog is empty)");
        return XS_ERR_VALIDATION;
    }
    if (xs_event_validate(ev, &s->limits, reason, reason_size) != XS_OK)
        return XS_ERR_VALIDATION;
    if ((err = xs_codec_encode_event(s->http_codec, ev, &b)) != XS_OK) {
        xs_err_set(reason, reason_size, "cannot be encoded: %s", xs_err_str(err));
        err = XS_ERR_VALIDATION;
    } else if (b.len > s->max_message_bytes) {
        xs_err_set(reason, reason_size,
                   "message of %zu bytes is larger than limits.max_message_bytes (%zu)", b.len,
                   s->max_message_bytes);
        err = XS_ERR_TOO_LARGE;
    }
    xs_buf_free(&b);
    return err;
}

static xs_err_t svc_events_publish(void *opaque, const xs_event_t *evs, size_t n, char *errstr,
                                   size_t errstr_size)
{
    xs_service_t *s = opaque;
    xs_buf_t b = {0};
    xs_err_t err = XS_OK;
    for (size_t i = 0; i < n && !err; i++) {
        const xs_event_t *ev = &evs[i];
        const char *topic = ev->kind == XS_KIND_CLICK  ? s->topic_clicks
                            : ev->kind == XS_KIND_CART ? s->topic_cart
                                                       : s->topic_catalog;
        const char *key = ev->kind == XS_KIND_ITEM ? ev->item_id : ev->user_id;
        xs_buf_reset(&b);
        if ((err = xs_codec_encode_event(s->http_codec, ev, &b)) != XS_OK) {
            xs_err_set(errstr, errstr_size, "encode: %s", xs_err_str(err));
            break;
        }
        err = xs_producer_send(s->http_producer, topic, -1, key, strlen(key), b.data, b.len, NULL,
                               0, errstr, errstr_size);
    }
    xs_buf_free(&b);
    if (!err)
        err = xs_producer_flush(s->http_producer, 10000, errstr, errstr_size);
    return err ? XS_ERR_IO : XS_OK;
}

/* The bearer token of the write endpoints from http.auth.token.file: the
 * file's first line, at least 16 bytes. */
static char *read_token(const char *path, char *errstr, size_t errstr_size)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f) {
        xs_err_set(errstr, errstr_size, "http.auth.token.file %s: %s", path, strerror(errno));
        return NULL;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        buf[--len] = '\0';
    if (len < 16 || strchr(buf, ' ')) {
        xs_err_set(errstr, errstr_size,
                   "http.auth.token.file %s: the token (first line) must be at least 16 "
                   "bytes without spaces",
                   path);
        return NULL;
    }
    char *t = xs_str_dup(buf);
    memset(buf, 0, sizeof(buf));
    return t;
}

/* Writes the bound address to path (write + rename: readers never see half). */
static xs_err_t write_port_file(const char *path, const char *address, char *errstr,
                                size_t errstr_size)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", address) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        xs_err_set(errstr, errstr_size, "http.port.file %s: %s", path, strerror(errno));
        return XS_ERR_IO;
    }
    return XS_OK;
}

static xs_err_t start_http(xs_service_t *s, char *errstr, size_t errstr_size)
{
    const char *address = xs_config_str(s->cfg, "http.address");
    const char *port_file = xs_config_str(s->cfg, "http.port.file");
    const char *token_file = xs_config_str(s->cfg, "http.auth.token.file");
    char *token = NULL;
    if (!*address)
        return XS_OK;
    bool events = xs_config_bool(s->cfg, "http.events.enabled");
    if (events && !*token_file) {
        xs_err_set(errstr, errstr_size,
                   "http.events.enabled needs http.auth.token.file (write endpoints require "
                   "a bearer token)");
        return XS_ERR_CONFIG;
    }
    if (events && !(token = read_token(token_file, errstr, errstr_size)))
        return XS_ERR_CONFIG;
    xs_http_opts_t ho = {
        .address = address,
        .max_connections = (unsigned)xs_config_int(s->cfg, "http.max.connections"),
        .timeout_s = (unsigned)xs_config_int(s->cfg, "http.timeout.seconds"),
        .max_id_len = s->limits.max_id_len,
        .events = events,
        .auth_token = token,
        .max_body = (size_t)xs_config_int(s->cfg, "http.events.max.bytes"),
        .events_rate = (unsigned)xs_config_int(s->cfg, "http.events.rate"),
        .shop_dir = xs_config_str(s->cfg, "http.shop.dir"),
    };
    xs_http_service_t svc = {
        .opaque = s,
        .metrics = svc_metrics,
        .healthy = svc_healthy,
        .ready = svc_ready,
        .cross_sell = svc_cross_sell,
        .neighbours = svc_neighbours,
        .observe = svc_observe,
        .event_check = svc_event_check,
        .events_publish = svc_events_publish,
        .user_forward = svc_user_forward,
    };
    s->http = xs_http_new(&ho, &svc, errstr, errstr_size);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (!s->http)
        return XS_ERR_IO;
    if (*port_file)
        return write_port_file(port_file, xs_http_address(s->http), errstr, errstr_size);
    return XS_OK;
}

/*
 * members.enabled: the listener of forwarded queries, and the membership
 * table and the forwarding (members.h). Forwarded queries come to a server
 * of their own (its own thread), which answers every query itself: an
 * instance whose server thread waits for another's answer never holds up
 * a query forwarded to it (two instances forwarding to each other at once
 * would otherwise each wait for the other until the timeout). It serves
 * the queries, /healthz and /readyz; not POST /v1/events (whose codec and
 * producer are the main server thread's) and not /metrics.
 */
static xs_err_t start_members(xs_service_t *s, char *errstr, size_t errstr_size)
{
    char peer_address[300];
    const char *pa = xs_config_str(s->cfg, "members.http.address");
    if (*pa) {
        snprintf(peer_address, sizeof(peer_address), "%s", pa);
    } else { /* http.address's host, any free port */
        const char *a = xs_config_str(s->cfg, "http.address");
        const char *colon = strrchr(a, ':');
        int host_len = colon ? (int)(colon - a) : (int)strlen(a);
        snprintf(peer_address, sizeof(peer_address), "%.*s:0", host_len, a);
    }
    xs_http_opts_t ho = {
        .address = peer_address,
        .max_connections = (unsigned)xs_config_int(s->cfg, "http.max.connections"),
        .timeout_s = (unsigned)xs_config_int(s->cfg, "http.timeout.seconds"),
        .max_id_len = s->limits.max_id_len,
    };
    xs_http_service_t svc = {
        .opaque = s,
        .healthy = svc_healthy,
        .ready = svc_ready,
        .cross_sell = svc_cross_sell,
        .neighbours = svc_neighbours,
    };
    if (!(s->peer_http = xs_http_new(&ho, &svc, errstr, errstr_size)))
        return XS_ERR_IO;

    size_t n_kafka = 0;
    const xs_kv_t *kconf = xs_config_passthrough(s->cfg, "kafka.", &n_kafka);
    const char *bootstrap = NULL;
    for (size_t i = 0; i < n_kafka; i++)
        if (!strcmp(kconf[i].key, "bootstrap.servers"))
            bootstrap = kconf[i].value;
    char topic[512], url[512];
    snprintf(topic, sizeof(topic), "%s-members", xs_config_str(s->cfg, "group.id"));
    const char *advertised = xs_config_str(s->cfg, "http.advertised");
    if (*advertised)
        snprintf(url, sizeof(url), "%s", advertised);
    else
        snprintf(url, sizeof(url), "http://%s", xs_http_address(s->peer_http));
    xs_members_opts_t mo = {
        .bootstrap = bootstrap,
        .conf = kconf,
        .n_conf = n_kafka,
        .topic = topic,
        .input_topic = s->topic_clicks,
        .partitioner = xs_config_str(s->cfg, "input.partitioner"),
        .self_url = url,
        .runtime = s->rt,
    };
    s->members = xs_members_new(&mo, errstr, errstr_size);
    return s->members ? XS_OK : XS_ERR_KAFKA;
}

xs_service_t *xs_service_new(const xs_service_opts_t *opts, char *errstr, size_t errstr_size)
{
    const xs_config_t *cfg = opts->config;
    xs_service_t *s = calloc(1, sizeof(*s));
    if (!s) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->rt = opts->runtime;
    s->engine = opts->engine;
    s->metrics = opts->metrics;
    s->topic_clicks = xs_config_str(cfg, "topics.clicks");
    s->topic_cart = xs_config_str(cfg, "topics.cart");
    s->topic_catalog = xs_config_str(cfg, "topics.catalog");
    s->max_message_bytes = (size_t)xs_config_int(cfg, "limits.max_message_bytes");
    xs_event_limits_default(&s->limits);
    s->limits.max_id_len = (size_t)xs_config_int(cfg, "limits.max_id_len");
    s->limits.max_lines = (size_t)xs_config_int(cfg, "limits.max_lines");
    s->limits.min_ts = xs_config_int(cfg, "limits.min_ts");
    s->limits.max_ts = xs_config_int(cfg, "limits.max_ts");
    if (xs_config_bool(cfg, "http.events.enabled") && *xs_config_str(cfg, "http.address")) {
        size_t n_kafka = 0;
        const xs_kv_t *kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
        const char *bootstrap = NULL;
        for (size_t i = 0; i < n_kafka; i++)
            if (!strcmp(kconf[i].key, "bootstrap.servers"))
                bootstrap = kconf[i].value;
        if (!(s->http_codec = xs_codec_new(errstr, errstr_size)) ||
            !(s->http_producer = xs_producer_new(bootstrap, kconf, n_kafka, errstr, errstr_size)))
            goto fail;
    }
    if (xs_config_bool(cfg, "members.enabled") && !*xs_config_str(cfg, "http.address")) {
        xs_err_set(errstr, errstr_size,
                   "members.enabled needs http.address (the instances forward queries over HTTP)");
        goto fail;
    }
    if (start_http(s, errstr, errstr_size) != XS_OK ||
        (s->http && xs_config_bool(cfg, "members.enabled") &&
         start_members(s, errstr, errstr_size) != XS_OK))
        goto fail;
    return s;
fail:
    xs_service_destroy(s);
    return NULL;
}

void xs_service_destroy(xs_service_t *s)
{
    if (!s)
        return;
    xs_http_destroy(s->http);       /* first: no query may run past this point */
    xs_members_destroy(s->members); /* its tombstone: forward here no more */
    xs_http_destroy(s->peer_http);
    xs_producer_destroy(s->http_producer);
    xs_codec_destroy(s->http_codec);
    free(s);
}
