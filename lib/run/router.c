/*
 * router.c — kinds, framings and dead letters of the worker's input and
 * output (see include/xsell/router.h).
 */
#include "xsell/router.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/codec.h"
#include "xsell/log.h"
#include "xsell/registry.h"
#include "schemas.h"

struct xs_router {
    const xs_config_t *cfg;
    xs_worker_metrics_t *metrics;
    xs_codec_t *codec;
    xs_event_limits_t limits;
    size_t max_message_bytes;
    size_t dlq_max_bytes; /* key + value a dead letter can carry (producer limit) */
    const char *topic_clicks, *topic_cart, *topic_catalog, *topic_output, *topic_dlq;
    char **bare_topics;
    size_t n_bare;
    xs_buf_t out;
    xs_router_stats_t st;

    /* Schema Registry (schema.registry.url; NULL without): unknown Confluent
     * ids of the input are fetched once (the codec then keeps them); ids the
     * registry does not know are remembered so a flood of them asks once. */
    xs_registry_t *registry;
    double registry_retry_max_ms;
    int32_t registry_missing[64];
    size_t n_registry_missing, registry_missing_next;
    bool out_confluent;       /* output.framing = confluent */
    int32_t out_schema_id;    /* CrossSellList's id in the registry, -1 until registered */
    char copy_headers[8][64]; /* output.headers.copy: trigger headers copied onto its list */
    int n_copy_headers;
};

/* ---- kinds ------------------------------------------------------------------------------ */

static bool is_bare(const xs_router_t *r, const char *topic)
{
    for (size_t i = 0; i < r->n_bare; i++)
        if (strcmp(r->bare_topics[i], topic) == 0)
            return true;
    return false;
}

static int topic_kind(const xs_router_t *r, const char *topic)
{
    if (!strcmp(topic, r->topic_clicks))
        return XS_KIND_CLICK;
    if (!strcmp(topic, r->topic_cart))
        return XS_KIND_CART;
    if (*r->topic_catalog && !strcmp(topic, r->topic_catalog))
        return XS_KIND_ITEM;
    return -1;
}

/* ---- dead letters ----------------------------------------------------------------------- */

xs_err_t xs_router_dead_letter(xs_router_t *r, xs_producer_t *p, const xs_msg_t *m,
                               const char *reason, const char *reason_class, char *errstr,
                               size_t errstr_size)
{
    char part[16], off[24];
    snprintf(part, sizeof(part), "%" PRId32, m->partition);
    snprintf(off, sizeof(off), "%" PRId64, m->offset);
    xs_header_t h[] = {
        {"xsell.reason", reason, strlen(reason)},
        {"xsell.source.topic", m->topic, strlen(m->topic)},
        {"xsell.source.partition", part, strlen(part)},
        {"xsell.source.offset", off, strlen(off)},
    };
    r->st.dlq++;
    xs_worker_metrics_dlq(r->metrics, reason_class);
    XS_DEBUG("dead letter", "topic=%s partition=%d offset=%" PRId64 " reason=\"%s\"", m->topic,
             m->partition, m->offset, reason);
    /* A record the producer cannot send (message.max.bytes) would stop the
     * partition for good: keep a prefix and the original value size instead. */
    size_t klen = m->key_len, vlen = m->value_len, n_h = XS_ARRAY_SIZE(h);
    char orig[24];
    xs_header_t ht[XS_ARRAY_SIZE(h) + 1];
    memcpy(ht, h, sizeof(h));
    if (klen + vlen > r->dlq_max_bytes) {
        klen = XS_MIN(klen, r->dlq_max_bytes / 2);
        vlen = XS_MIN(vlen, r->dlq_max_bytes - klen);
        snprintf(orig, sizeof(orig), "%zu", m->value_len);
        ht[n_h++] = (xs_header_t){"xsell.original.size", orig, strlen(orig)};
    }
    return xs_producer_send(p, r->topic_dlq, -1, m->key, klen, m->value, vlen, ht, n_h, errstr,
                            errstr_size);
}

/* ---- Schema Registry -------------------------------------------------------------------- */

typedef xs_err_t (*registry_call_fn)(xs_router_t *r, void *arg, char *errstr, size_t errstr_size);

/* Calls fn until the registry answers: a registry that cannot be reached
 * (XS_ERR_IO) or refuses the credentials (XS_ERR_CONFIG: they may be fixed
 * in the registry) is asked again with exponential backoff from 100 ms up
 * to schema.registry.retry.max.ms, for as long as it takes. XS_ERR_EOF when
 * a stop was asked while waiting; any other answer is returned. */
static xs_err_t registry_retry(xs_router_t *r, const char *what, registry_call_fn fn, void *arg,
                               xs_router_wait_fn wait, void *wait_opaque, char *errstr,
                               size_t errstr_size)
{
    double backoff = 100;
    for (int attempt = 1;; attempt++) {
        xs_err_t err = fn(r, arg, errstr, errstr_size);
        if (err != XS_ERR_IO && err != XS_ERR_CONFIG) {
            if (attempt > 1)
                XS_INFO("schema registry back", "what=\"%s\" attempts=%d", what, attempt);
            return err;
        }
        XS_WARN("schema registry unavailable",
                "what=\"%s\" attempt=%d retry_in_ms=%.0f "
                "error=\"%s\"",
                what, attempt, backoff, errstr);
        if (!wait(wait_opaque, backoff))
            return XS_ERR_EOF;
        backoff = XS_MIN(backoff * 2, r->registry_retry_max_ms);
    }
}

typedef struct fetch_arg {
    int32_t id;
    char *schema;
} fetch_arg_t;

static xs_err_t fetch_call(xs_router_t *r, void *arg, char *errstr, size_t errstr_size)
{
    fetch_arg_t *a = arg;
    return xs_registry_schema_by_id(r->registry, a->id, &a->schema, errstr, errstr_size);
}

/*
 * A Confluent-framed value whose schema id the codec does not know has its
 * writer schema fetched from the registry and added, as the writer of the
 * topic's record kind (then the decode resolves it against xsell's reader
 * schema). An id the registry does not have, or a schema that does not
 * resolve, is left unknown: the message is dead-lettered by the decode as
 * any unknown id ("unknown schema id N"). XS_ERR_EOF: a stop was asked
 * while the registry was unavailable (the message is not applied, its
 * offset not stored).
 */
static xs_err_t resolve_schema(xs_router_t *r, const xs_msg_t *m, xs_router_wait_fn wait,
                               void *wait_opaque, char *errstr, size_t errstr_size)
{
    const uint8_t *v = m->value;
    int kind = topic_kind(r, m->topic);
    if (!r->registry || !v || m->value_len < 5 || v[0] != 0x00 || kind < 0 || is_bare(r, m->topic))
        return XS_OK;
    int32_t id =
        (int32_t)((uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4]);
    if (xs_codec_has_confluent_id(r->codec, id))
        return XS_OK;
    for (size_t i = 0; i < r->n_registry_missing; i++)
        if (r->registry_missing[i] == id)
            return XS_OK;
    char what[48], why[1024] = "";
    snprintf(what, sizeof(what), "schema id %d", (int)id);
    fetch_arg_t a = {id, NULL};
    xs_err_t err = registry_retry(r, what, fetch_call, &a, wait, wait_opaque, why, sizeof(why));
    if (err == XS_ERR_EOF || err == XS_ERR_NOMEM) {
        xs_err_set(errstr, errstr_size, "waiting for the schema registry: %s", why);
        return err;
    }
    if (!err)
        err = xs_codec_add_writer(r->codec, (xs_event_kind_t)kind, a.schema, id, why, sizeof(why));
    free(a.schema);
    if (err) {
        XS_WARN("schema id not usable", "topic=%s id=%d error=\"%s\"", m->topic, (int)id, why);
        r->registry_missing[r->registry_missing_next++ % XS_ARRAY_SIZE(r->registry_missing)] = id;
        if (r->n_registry_missing < XS_ARRAY_SIZE(r->registry_missing))
            r->n_registry_missing++;
        return XS_OK;
    }
    XS_INFO("schema fetched", "topic=%s id=%d kind=%s", m->topic, (int)id,
            xs_event_kind_name((xs_event_kind_t)kind));
    return XS_OK;
}

static xs_err_t register_call(xs_router_t *r, void *arg, char *errstr, size_t errstr_size)
{
    char subject[512];
    (void)arg;
    snprintf(subject, sizeof(subject), "%s-value", r->topic_output);
    return xs_registry_register(r->registry, subject, xs_schemas_text_CrossSellList,
                                &r->out_schema_id, errstr, errstr_size);
}

/* output.framing = confluent: CrossSellList registered under the output
 * topic's value subject (TopicNameStrategy) before the first list. */
static xs_err_t register_output(xs_router_t *r, xs_router_wait_fn wait, void *wait_opaque,
                                char *errstr, size_t errstr_size)
{
    if (!r->out_confluent || r->out_schema_id >= 0)
        return XS_OK;
    char why[1024] = "";
    xs_err_t err = registry_retry(r, "register CrossSellList", register_call, NULL, wait,
                                  wait_opaque, why, sizeof(why));
    if (err) {
        xs_err_set(errstr, errstr_size, "output.framing = confluent: %s", why);
        return err;
    }
    XS_INFO("output schema registered", "subject=%s-value id=%d", r->topic_output,
            (int)r->out_schema_id);
    return XS_OK;
}

xs_err_t xs_router_prepare(xs_router_t *r, const xs_msg_t *m, xs_router_wait_fn wait,
                           void *wait_opaque, char *errstr, size_t errstr_size)
{
    xs_err_t err = resolve_schema(r, m, wait, wait_opaque, errstr, errstr_size);
    if (!err)
        err = register_output(r, wait, wait_opaque, errstr, errstr_size);
    return err;
}

/* ---- routing ---------------------------------------------------------------------------- */

void xs_router_input_clear(xs_input_t *in)
{
    xs_event_clear(&in->ev);
    free(in->item_id);
    in->item_id = NULL;
}

/* A null value on the catalog topic (a tombstone: compaction's way to
 * delete a key) deletes the item named by the key. A tombstone whose key is
 * not an item id (missing, empty, too long, NUL or invalid UTF-8) goes to
 * the DLQ as a validation failure. */
static xs_err_t tombstone(xs_router_t *r, xs_producer_t *p, const xs_msg_t *m, xs_input_t *in,
                          char *errstr, size_t errstr_size)
{
    char reason[128] = "";
    if (!m->key || m->key_len == 0)
        snprintf(reason, sizeof(reason), "catalog tombstone without a key (item_id)");
    else if (m->key_len > r->limits.max_id_len)
        snprintf(reason, sizeof(reason), "catalog tombstone key too long (%zu > %zu bytes)",
                 m->key_len, r->limits.max_id_len);
    else if (memchr(m->key, 0, m->key_len) || !xs_str_utf8_valid(m->key, m->key_len))
        snprintf(reason, sizeof(reason), "catalog tombstone key is not valid UTF-8");
    if (*reason) {
        r->st.dlq_by_reason_validation++;
        return xs_router_dead_letter(r, p, m, reason, "validation", errstr, errstr_size);
    }
    if (!(in->item_id = xs_str_ndup(m->key, m->key_len)))
        return XS_ERR_NOMEM;
    in->route = XS_ROUTE_TOMBSTONE;
    return XS_OK;
}

xs_err_t xs_router_route(xs_router_t *r, xs_producer_t *p, const xs_msg_t *m, xs_input_t *in,
                         char *errstr, size_t errstr_size)
{
    xs_event_kind_t kind;
    xs_framing_t framing;
    char reason[256] = "";
    int expect = topic_kind(r, m->topic);
    in->msg = m;
    in->route = XS_ROUTE_DEAD;
    in->item_id = NULL;
    xs_event_init(&in->ev, XS_KIND_CLICK);
    if (m->value_len > r->max_message_bytes) {
        snprintf(reason, sizeof(reason), "message too large (%zu > %zu bytes)", m->value_len,
                 r->max_message_bytes);
        r->st.dlq_by_reason_size++;
        return xs_router_dead_letter(r, p, m, reason, "too_large", errstr, errstr_size);
    }
    if (!m->value && expect == XS_KIND_ITEM)
        return tombstone(r, p, m, in, errstr, errstr_size);
    if (!m->value || m->value_len == 0) {
        r->st.dlq_by_reason_decode++;
        return xs_router_dead_letter(r, p, m, "empty message", "empty", errstr, errstr_size);
    }
    if (xs_codec_decode(r->codec, m->value, m->value_len, is_bare(r, m->topic) ? expect : -1,
                        &in->ev, &kind, &framing, reason, sizeof(reason)) != XS_OK) {
        r->st.dlq_by_reason_decode++;
        xs_worker_metrics_decode_error(r->metrics, m->topic);
        return xs_router_dead_letter(r, p, m, reason, "decode", errstr, errstr_size);
    }
    if ((expect == XS_KIND_ITEM) != (kind == XS_KIND_ITEM) || kind == XS_KIND_LIST) {
        snprintf(reason, sizeof(reason), "unexpected %s record on topic %s",
                 xs_event_kind_name(kind), m->topic);
        r->st.dlq_by_reason_validation++;
        return xs_router_dead_letter(r, p, m, reason, "wrong_type", errstr, errstr_size);
    }
    if (xs_event_validate(&in->ev, &r->limits, reason, sizeof(reason)) != XS_OK) {
        r->st.dlq_by_reason_validation++;
        return xs_router_dead_letter(r, p, m, reason, "validation", errstr, errstr_size);
    }
    in->route = XS_ROUTE_EVENT;
    return XS_OK;
}

/* ---- output ----------------------------------------------------------------------------- */

/* Rewrites a single-object encoded list (C3 01 + 8-byte fingerprint) into
 * the Confluent wire format (00 + 4-byte big-endian id); the body is the same. */
static void to_confluent(xs_buf_t *b, int32_t id)
{
    assert(b->len >= 10 && b->data[0] == 0xC3 && b->data[1] == 0x01);
    b->data[5] = 0x00; /* the 5 bytes before the body: 00 id(BE32) */
    b->data[6] = (uint8_t)(id >> 24);
    b->data[7] = (uint8_t)(id >> 16);
    b->data[8] = (uint8_t)(id >> 8);
    b->data[9] = (uint8_t)id;
    memmove(b->data, b->data + 5, b->len - 5);
    b->len -= 5;
}

xs_err_t xs_router_publish(xs_router_t *r, xs_producer_t *p, const xs_msg_t *trigger,
                           const xs_list_t *list, char *errstr, size_t errstr_size)
{
    xs_err_t err;
    xs_buf_reset(&r->out);
    if ((err = xs_codec_encode_list(r->codec, list, &r->out)) != XS_OK) {
        xs_err_set(errstr, errstr_size, "encode list: %s", xs_err_str(err));
        return err;
    }
    if (r->out_confluent)
        to_confluent(&r->out, r->out_schema_id);
    /* Headers: what the value is, then the trigger's trace headers. */
    xs_header_t h[3 + XS_ARRAY_SIZE(r->copy_headers)];
    size_t nh = 0;
    char sid[16];
    h[nh++] = (xs_header_t){"content-type", "application/vnd.apache.avro+binary", 34};
    h[nh++] = r->out_confluent ? (xs_header_t){"xsell.framing", "confluent", 9}
                               : (xs_header_t){"xsell.framing", "single-object", 13};
    if (r->out_confluent) {
        snprintf(sid, sizeof(sid), "%d", (int)r->out_schema_id);
        h[nh++] = (xs_header_t){"xsell.schema.id", sid, strlen(sid)};
    }
    for (int i = 0; i < r->n_copy_headers; i++) {
        const void *hv = NULL;
        size_t hl = 0;
        if (xs_kafka_msg_header(trigger, r->copy_headers[i], &hv, &hl))
            h[nh++] = (xs_header_t){r->copy_headers[i], hv, hv ? hl : 0};
    }
    return xs_producer_send(p, r->topic_output, -1, list->user_id, strlen(list->user_id),
                            r->out.data, r->out.len, h, nh, errstr, errstr_size);
}

void xs_router_stats(const xs_router_t *r, xs_router_stats_t *st)
{
    *st = r->st;
}

/* ---- setup ------------------------------------------------------------------------------ */

static xs_err_t add_confluent(void *opaque, int32_t id, const char *kind, const char *path,
                              char *errstr, size_t errstr_size)
{
    xs_router_t *r = opaque;
    int k = !strcmp(kind, "ClickEvent")   ? XS_KIND_CLICK
            : !strcmp(kind, "CartEvent")  ? XS_KIND_CART
            : !strcmp(kind, "ItemUpdate") ? XS_KIND_ITEM
                                          : -1;
    if (k < 0) {
        xs_err_set(errstr, errstr_size, "schema.confluent.%d: unknown kind '%s'", id, kind);
        return XS_ERR_CONFIG;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        xs_err_set(errstr, errstr_size, "schema.confluent.%d: cannot open %s", id, path);
        return XS_ERR_IO;
    }
    xs_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        xs_buf_append(&b, chunk, n);
    fclose(f);
    xs_buf_append_u8(&b, 0);
    xs_err_t err = xs_codec_add_writer(r->codec, (xs_event_kind_t)k, (const char *)b.data, id,
                                       errstr, errstr_size);
    xs_buf_free(&b);
    return err;
}

static xs_err_t split_bare(xs_router_t *r, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            char **t = realloc(r->bare_topics, (r->n_bare + 1) * sizeof(*t));
            if (!t)
                return XS_ERR_NOMEM;
            r->bare_topics = t;
            if (!(t[r->n_bare] = xs_str_ndup(p, len)))
                return XS_ERR_NOMEM;
            r->n_bare++;
        }
        p += len + (comma ? 1 : 0);
    }
    return XS_OK;
}

xs_router_t *xs_router_new(const xs_config_t *cfg, xs_worker_metrics_t *metrics, char *errstr,
                           size_t errstr_size)
{
    xs_router_t *r = calloc(1, sizeof(*r));
    if (!r) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    r->cfg = cfg;
    r->metrics = metrics;
    r->topic_clicks = xs_config_str(cfg, "topics.clicks");
    r->topic_cart = xs_config_str(cfg, "topics.cart");
    r->topic_catalog = xs_config_str(cfg, "topics.catalog");
    r->topic_output = xs_config_str(cfg, "topics.output");
    r->topic_dlq = xs_config_str(cfg, "topics.dlq");
    r->max_message_bytes = (size_t)xs_config_int(cfg, "limits.max_message_bytes");
    {
        /* librdkafka's message.max.bytes (default 1000000) less room for headers. */
        const char *mmb = xs_config_get_raw(cfg, "kafka.message.max.bytes");
        long long max = mmb ? atoll(mmb) : 1000000;
        r->dlq_max_bytes = max > 16384 ? (size_t)(max - 8192) : 8192;
    }
    xs_event_limits_default(&r->limits);
    r->limits.max_id_len = (size_t)xs_config_int(cfg, "limits.max_id_len");
    r->limits.max_lines = (size_t)xs_config_int(cfg, "limits.max_lines");
    r->limits.min_ts = xs_config_int(cfg, "limits.min_ts");
    r->limits.max_ts = xs_config_int(cfg, "limits.max_ts");
    if (split_bare(r, xs_config_str(cfg, "topics.bare")) != XS_OK) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (!(r->codec = xs_codec_new(errstr, errstr_size)))
        goto fail;
    if (xs_config_each_confluent_schema(cfg, add_confluent, r, errstr, errstr_size) != XS_OK)
        goto fail;
    {
        /* output.headers.copy: a comma-separated list of header names */
        const char *p = xs_config_str(cfg, "output.headers.copy");
        while (*p && r->n_copy_headers < (int)XS_ARRAY_SIZE(r->copy_headers)) {
            size_t len = strcspn(p, ",");
            while (len && p[0] == ' ')
                p++, len--;
            size_t l2 = len;
            while (l2 && p[l2 - 1] == ' ')
                l2--;
            if (l2 && l2 < sizeof(r->copy_headers[0]))
                snprintf(r->copy_headers[r->n_copy_headers++], sizeof(r->copy_headers[0]), "%.*s",
                         (int)l2, p);
            p += len + (p[len] == ',');
        }
    }
    r->out_schema_id = -1;
    r->out_confluent = !strcmp(xs_config_str(cfg, "output.framing"), "confluent");
    r->registry_retry_max_ms = (double)xs_config_int(cfg, "schema.registry.retry.max.ms");
    if (*xs_config_str(cfg, "schema.registry.url")) {
        xs_registry_opts_t ro;
        xs_config_registry_opts(cfg, &ro);
        if (!(r->registry = xs_registry_new(&ro, errstr, errstr_size)))
            goto fail;
    } else if (r->out_confluent) {
        xs_err_set(errstr, errstr_size, "output.framing = confluent needs schema.registry.url");
        goto fail;
    }
    return r;
fail:
    xs_router_destroy(r);
    return NULL;
}

void xs_router_destroy(xs_router_t *r)
{
    if (!r)
        return;
    xs_codec_destroy(r->codec);
    xs_registry_destroy(r->registry);
    for (size_t i = 0; i < r->n_bare; i++)
        free(r->bare_topics[i]);
    free(r->bare_topics);
    xs_buf_free(&r->out);
    free(r);
}
