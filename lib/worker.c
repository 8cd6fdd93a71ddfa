/*
 * worker.c — the streaming worker (see include/xsell/worker.h for the
 * checkpoint protocol and its guarantees).
 */
#include "xsell/worker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xsell/codec.h"
#include "xsell/engine.h"
#include "xsell/event.h"
#include "xsell/kafka.h"
#include "xsell/log.h"
#include "xsell/settings.h"
#include "xsell/sketch.h"
#include "xsell/store.h"

typedef struct part {
    char *topic;
    int32_t partition;
    int64_t next;      /* next offset to consume (after what was applied) */
    int64_t stored;    /* next offset in the last checkpoint */
    bool assigned;
} part_t;

struct xs_worker {
    const xs_config_t *cfg;
    bool until_end;
    xs_store_t *store;
    xs_engine_t *engine;
    xs_codec_t *codec;
    xs_producer_t *producer;
    xs_consumer_t *consumer;
    xs_batch_t *batch;
    xs_event_limits_t limits;
    size_t max_message_bytes;
    const char *topic_clicks, *topic_cart, *topic_catalog, *topic_output, *topic_dlq;
    char **bare_topics;
    size_t n_bare;
    part_t *parts;
    size_t n_parts, cap_parts;
    xs_buf_t out;
    xs_worker_stats_t st;
    xs_err_t hook_err; /* error raised inside a rebalance hook */
    char hook_errstr[640];
    size_t dirty_limit;
    bool failed; /* after a fatal error no checkpoint may store offsets */
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static part_t *find_part(xs_worker_t *w, const char *topic, int32_t partition, bool create)
{
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i].partition == partition && strcmp(w->parts[i].topic, topic) == 0)
            return &w->parts[i];
    if (!create)
        return NULL;
    if (w->n_parts == w->cap_parts) {
        size_t cap = w->cap_parts ? w->cap_parts * 2 : 16;
        part_t *p = realloc(w->parts, cap * sizeof(*p));
        if (!p)
            return NULL;
        w->parts = p;
        w->cap_parts = cap;
    }
    part_t *p = &w->parts[w->n_parts];
    p->topic = xs_strdup(topic);
    if (!p->topic)
        return NULL;
    p->partition = partition;
    p->next = p->stored = -1;
    p->assigned = false;
    w->n_parts++;
    return p;
}

/* ---- checkpoint ------------------------------------------------------------ */

static xs_err_t checkpoint(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    double t0 = now_ms();
    if (w->failed) {
        xs_errstr_set(errstr, errstr_size, "worker failed earlier: no checkpoint");
        return XS_ERR_INVALID;
    }
    xs_err_t err = xs_producer_flush(w->producer, 60000, errstr, errstr_size);
    if (err)
        return err; /* nothing written: a restart replays from the last checkpoint */
    xs_batch_clear(w->batch);
    if ((err = xs_engine_flush(w->engine, xs_batch_put_fn, w->batch, errstr, errstr_size)))
        return err;
    int moved = 0;
    for (size_t i = 0; i < w->n_parts; i++) {
        part_t *p = &w->parts[i];
        if (p->next >= 0 && p->next != p->stored) {
            xs_batch_put_offset(w->batch, p->topic, p->partition, p->next);
            moved++;
        }
    }
    if (xs_batch_count(w->batch) == 0)
        return XS_OK;
    if ((err = xs_store_write(w->store, w->batch, xs_config_bool(w->cfg, "state.sync"), errstr,
                              errstr_size)))
        return err;
    for (size_t i = 0; i < w->n_parts; i++) {
        part_t *p = &w->parts[i];
        if (p->next >= 0 && p->next != p->stored) {
            p->stored = p->next;
            if (p->assigned) {
                char e2[256];
                if (xs_consumer_commit(w->consumer, p->topic, p->partition, p->next, true, e2,
                                       sizeof(e2)))
                    XS_DEBUG("offset commit failed", "error=\"%s\"", e2);
            }
        }
    }
    xs_engine_trim(w->engine);
    w->st.checkpoints++;
    w->st.last_checkpoint_ms = now_ms() - t0;
    XS_DEBUG("checkpoint", "records=%d partitions=%d ms=%.1f", xs_batch_count(w->batch), moved,
             w->st.last_checkpoint_ms);
    return XS_OK;
}

/* ---- rebalance hooks ------------------------------------------------------------ */

static void on_assign(void *opaque, const char *topic, int32_t partition, int64_t *offset)
{
    xs_worker_t *w = opaque;
    part_t *p = find_part(w, topic, partition, true);
    int64_t next = 0;
    bool found = false;
    char errstr[256];
    if (!p) {
        w->hook_err = XS_ERR_NOMEM;
        return;
    }
    if (xs_store_get_offset(w->store, topic, partition, &next, &found, errstr, sizeof(errstr))) {
        w->hook_err = XS_ERR_STORE;
        snprintf(w->hook_errstr, sizeof(w->hook_errstr), "%s", errstr);
        return;
    }
    p->assigned = true;
    p->stored = found ? next : -1;
    p->next = found ? next : -1;
    *offset = found ? next : XS_OFFSET_BEGINNING;
    XS_INFO("partition assigned", "topic=%s partition=%d start=%s%" PRId64, topic, partition,
            found ? "" : "beginning/", found ? next : 0);
}

static void on_revoke(void *opaque, const char *topic, int32_t partition)
{
    xs_worker_t *w = opaque;
    char errstr[512];
    if (!w->hook_err && checkpoint(w, errstr, sizeof(errstr)) != XS_OK) {
        w->hook_err = XS_ERR_KAFKA;
        snprintf(w->hook_errstr, sizeof(w->hook_errstr), "checkpoint on revoke: %s", errstr);
    }
    part_t *p = find_part(w, topic, partition, false);
    if (p) {
        p->assigned = false;
        p->next = p->stored = -1;
    }
    /* Another worker owns this partition now: its users must be re-read. */
    xs_engine_drop_cache(w->engine);
    XS_INFO("partition revoked", "topic=%s partition=%d", topic, partition);
}

/* ---- processing ---------------------------------------------------------------------- */

static bool is_bare(const xs_worker_t *w, const char *topic)
{
    for (size_t i = 0; i < w->n_bare; i++)
        if (strcmp(w->bare_topics[i], topic) == 0)
            return true;
    return false;
}

static int topic_kind(const xs_worker_t *w, const char *topic)
{
    if (!strcmp(topic, w->topic_clicks))
        return XS_KIND_CLICK;
    if (!strcmp(topic, w->topic_cart))
        return XS_KIND_CART;
    if (*w->topic_catalog && !strcmp(topic, w->topic_catalog))
        return XS_KIND_ITEM;
    return -1;
}

static xs_err_t dead_letter(xs_worker_t *w, const xs_msg_t *m, const char *reason,
                            char *errstr, size_t errstr_size)
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
    w->st.dlq++;
    XS_DEBUG("dead letter", "topic=%s partition=%d offset=%" PRId64 " reason=\"%s\"", m->topic,
             m->partition, m->offset, reason);
    return xs_producer_send(w->producer, w->topic_dlq, -1, m->key, m->key_len, m->value,
                            m->value_len, h, XS_ARRAY_SIZE(h), errstr, errstr_size);
}

static xs_err_t process(xs_worker_t *w, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    xs_event_t ev;
    xs_list_t list;
    xs_event_kind_t kind;
    xs_framing_t framing;
    char reason[256] = "";
    xs_err_t err = XS_OK;
    int expect = topic_kind(w, m->topic);
    xs_event_init(&ev, XS_KIND_CLICK);
    xs_list_init(&list);
    w->st.messages++;
    if (m->value_len > w->max_message_bytes) {
        snprintf(reason, sizeof(reason), "message too large (%zu > %zu bytes)", m->value_len,
                 w->max_message_bytes);
        w->st.dlq_by_reason_size++;
        err = dead_letter(w, m, reason, errstr, errstr_size);
        goto out;
    }
    if (!m->value || m->value_len == 0) {
        w->st.dlq_by_reason_decode++;
        err = dead_letter(w, m, "empty message", errstr, errstr_size);
        goto out;
    }
    if (xs_codec_decode(w->codec, m->value, m->value_len, is_bare(w, m->topic) ? expect : -1, &ev,
                        &kind, &framing, reason, sizeof(reason)) != XS_OK) {
        w->st.dlq_by_reason_decode++;
        err = dead_letter(w, m, reason, errstr, errstr_size);
        goto out;
    }
    if ((expect == XS_KIND_ITEM) != (kind == XS_KIND_ITEM) || kind == XS_KIND_LIST) {
        snprintf(reason, sizeof(reason), "unexpected %s record on topic %s", xs_kind_name(kind),
                 m->topic);
        w->st.dlq_by_reason_validation++;
        err = dead_letter(w, m, reason, errstr, errstr_size);
        goto out;
    }
    if (xs_event_validate(&ev, &w->limits, reason, sizeof(reason)) != XS_OK) {
        w->st.dlq_by_reason_validation++;
        err = dead_letter(w, m, reason, errstr, errstr_size);
        goto out;
    }
    bool has_list = false;
    if ((err = xs_engine_process(w->engine, (uint16_t)m->partition, &ev, &list, &has_list, errstr,
                                 errstr_size)) != XS_OK)
        goto out;
    w->st.events++;
    if (has_list) {
        xs_buf_reset(&w->out);
        if ((err = xs_codec_encode_list(w->codec, &list, &w->out)) != XS_OK) {
            xs_errstr_set(errstr, errstr_size, "encode list: %s", xs_err2str(err));
            goto out;
        }
        if ((err = xs_producer_send(w->producer, w->topic_output, -1, list.user_id,
                                    strlen(list.user_id), w->out.data, w->out.len, NULL, 0,
                                    errstr, errstr_size)))
            goto out;
        w->st.lists++;
    }
out:
    xs_event_clear(&ev);
    xs_list_clear(&list);
    if (!err) {
        part_t *p = find_part(w, m->topic, m->partition, true);
        if (!p)
            return XS_ERR_NOMEM;
        p->next = m->offset + 1;
    }
    return err;
}

/* ---- setup ------------------------------------------------------------------------ */

static xs_err_t add_confluent(void *opaque, int32_t id, const char *kind, const char *path,
                              char *errstr, size_t errstr_size)
{
    xs_worker_t *w = opaque;
    int k = !strcmp(kind, "ClickEvent")   ? XS_KIND_CLICK
            : !strcmp(kind, "CartEvent")  ? XS_KIND_CART
            : !strcmp(kind, "ItemUpdate") ? XS_KIND_ITEM
                                          : -1;
    if (k < 0) {
        xs_errstr_set(errstr, errstr_size, "schema.confluent.%d: unknown kind '%s'", id, kind);
        return XS_ERR_CONFIG;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        xs_errstr_set(errstr, errstr_size, "schema.confluent.%d: cannot open %s", id, path);
        return XS_ERR_IO;
    }
    xs_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        xs_buf_append(&b, chunk, n);
    fclose(f);
    xs_buf_append_u8(&b, 0);
    xs_err_t err = xs_codec_add_writer(w->codec, (xs_event_kind_t)k, (const char *)b.data, id,
                                       errstr, errstr_size);
    xs_buf_free(&b);
    return err;
}

static xs_err_t split_bare(xs_worker_t *w, const char *list)
{
    const char *p = list;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len) {
            char **t = realloc(w->bare_topics, (w->n_bare + 1) * sizeof(*t));
            if (!t)
                return XS_ERR_NOMEM;
            w->bare_topics = t;
            if (!(t[w->n_bare] = xs_strndup(p, len)))
                return XS_ERR_NOMEM;
            w->n_bare++;
        }
        p += len + (comma ? 1 : 0);
    }
    return XS_OK;
}

xs_worker_t *xs_worker_new(const xs_worker_opts_t *opts, char *errstr, size_t errstr_size)
{
    const xs_config_t *cfg = opts->config;
    xs_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    w->until_end = opts->until_end;
    w->topic_clicks = xs_config_str(cfg, "topics.clicks");
    w->topic_cart = xs_config_str(cfg, "topics.cart");
    w->topic_catalog = xs_config_str(cfg, "topics.catalog");
    w->topic_output = xs_config_str(cfg, "topics.output");
    w->topic_dlq = xs_config_str(cfg, "topics.dlq");
    w->max_message_bytes = (size_t)xs_config_int(cfg, "limits.max_message_bytes");
    w->dirty_limit = (size_t)xs_config_int(cfg, "checkpoint.dirty.bytes");
    xs_event_limits_default(&w->limits);
    w->limits.max_id_len = (size_t)xs_config_int(cfg, "limits.max_id_len");
    w->limits.max_lines = (size_t)xs_config_int(cfg, "limits.max_lines");
    w->limits.min_ts = xs_config_int(cfg, "limits.min_ts");
    w->limits.max_ts = xs_config_int(cfg, "limits.max_ts");
    if (split_bare(w, xs_config_str(cfg, "topics.bare")) != XS_OK) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        goto fail;
    }

    size_t n_rocks = 0, n_kafka = 0;
    const xs_kv_t *rocks = xs_config_passthrough(cfg, "rocksdb.", &n_rocks);
    w->store = xs_store_open(xs_config_str(cfg, "state.dir"), rocks, n_rocks, false, errstr,
                             errstr_size);
    if (!w->store)
        goto fail;
    if (!(w->batch = xs_batch_new(w->store))) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    xs_backend_t backend;
    xs_store_backend(w->store, &backend);
    xs_engine_opts_t eo;
    xs_experiment_t experiment;
    xs_engine_opts_default(&eo);
    xs_settings_params(cfg, &eo.params);
    if (xs_settings_experiment(cfg, &eo.params, &experiment, errstr, errstr_size) != XS_OK)
        goto fail;
    eo.experiment = &experiment;
    eo.backend = &backend;
    eo.cache_bytes = (size_t)xs_config_int(cfg, "cache.max.bytes");
    if (!(w->engine = xs_engine_new(&eo, errstr, errstr_size)))
        goto fail;
    if (!(w->codec = xs_codec_new(errstr, errstr_size)))
        goto fail;
    if (xs_config_each_confluent_schema(cfg, add_confluent, w, errstr, errstr_size) != XS_OK)
        goto fail;

    const xs_kv_t *kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
    const char *bootstrap = NULL;
    for (size_t i = 0; i < n_kafka; i++)
        if (!strcmp(kconf[i].key, "bootstrap.servers"))
            bootstrap = kconf[i].value;
    if (!bootstrap) {
        xs_errstr_set(errstr, errstr_size,
                      "kafka.bootstrap.servers is not set (config file, --set or --bootstrap)");
        goto fail;
    }
    if (!(w->producer = xs_producer_new(bootstrap, kconf, n_kafka, errstr, errstr_size)))
        goto fail;
    const char *topics[3];
    size_t n_topics = 0;
    topics[n_topics++] = w->topic_clicks;
    topics[n_topics++] = w->topic_cart;
    if (*w->topic_catalog)
        topics[n_topics++] = w->topic_catalog;
    kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
    xs_consumer_opts_t co = {
        .bootstrap = bootstrap,
        .group_id = xs_config_str(cfg, "group.id"),
        .topics = topics,
        .n_topics = n_topics,
        .start_offset = XS_OFFSET_BEGINNING,
        .conf = kconf,
        .n_conf = n_kafka,
        .hooks = {w, on_assign, on_revoke},
    };
    if (!(w->consumer = xs_consumer_new(&co, errstr, errstr_size)))
        goto fail;
    return w;
fail:
    xs_worker_destroy(w);
    return NULL;
}

void xs_worker_stats(const xs_worker_t *w, xs_worker_stats_t *st)
{
    *st = w->st;
}

static bool dirty_over(xs_worker_t *w)
{
    if ((w->st.events & 1023) != 0)
        return false;
    xs_engine_stats_t es;
    xs_engine_stats(w->engine, &es);
    return es.dirty_bytes > w->dirty_limit;
}

xs_err_t xs_worker_run(xs_worker_t *w, volatile sig_atomic_t *stop, char *errstr,
                       size_t errstr_size)
{
    double interval = (double)xs_config_int(w->cfg, "commit.interval.ms");
    double progress = xs_config_double(w->cfg, "log.progress.seconds") * 1e3;
    double last_cp = now_ms(), last_progress = last_cp, t_start = last_cp;
    uint64_t last_events = 0;
    xs_err_t err = XS_OK;
    XS_INFO("worker started", "state_dir=%s group=%s until_end=%s",
            xs_config_str(w->cfg, "state.dir"), xs_config_str(w->cfg, "group.id"),
            w->until_end ? "true" : "false");
    while (!*stop) {
        xs_msg_t m;
        err = xs_consumer_poll(w->consumer, 100, &m, errstr, errstr_size);
        if (w->hook_err) {
            err = w->hook_err;
            xs_errstr_set(errstr, errstr_size, "%s", w->hook_errstr);
            break;
        }
        if (err == XS_OK) {
            if ((err = process(w, &m, errstr, errstr_size)) != XS_OK)
                break;
        } else if (err != XS_ERR_EOF) {
            break;
        }
        err = XS_OK;
        xs_producer_poll(w->producer);
        double t = now_ms();
        if (t - last_cp >= interval || dirty_over(w)) {
            if ((err = checkpoint(w, errstr, errstr_size)) != XS_OK)
                break;
            last_cp = now_ms();
        }
        if (progress > 0 && t - last_progress >= progress) {
            w->st.lag = xs_consumer_lag(w->consumer);
            XS_INFO("progress", "events=%" PRIu64 " events_per_s=%.0f lists=%" PRIu64
                    " dlq=%" PRIu64 " lag=%" PRId64,
                    w->st.events, (w->st.events - last_events) / ((t - last_progress) / 1e3),
                    w->st.lists, w->st.dlq, w->st.lag);
            last_events = w->st.events;
            last_progress = t;
        }
        if (w->until_end && xs_consumer_caught_up(w->consumer)) {
            XS_INFO("caught up", "events=%" PRIu64, w->st.events);
            break;
        }
    }
    xs_err_t cerr = XS_OK;
    char cstr[512] = "";
    w->failed = err != XS_OK;
    if (!err)
        cerr = checkpoint(w, cstr, sizeof(cstr));
    else
        /* Still serve delivery reports, but do not store offsets past a failure. */
        xs_producer_flush(w->producer, 10000, NULL, 0);
    if (!err && cerr) {
        err = cerr;
        xs_errstr_set(errstr, errstr_size, "final checkpoint: %s", cstr);
    }
    double secs = (now_ms() - t_start) / 1e3;
    w->st.lag = xs_consumer_lag(w->consumer);
    XS_INFO("worker stopped", "events=%" PRIu64 " lists=%" PRIu64 " dlq=%" PRIu64
            " checkpoints=%" PRIu64 " seconds=%.1f events_per_s=%.0f status=%s",
            w->st.events, w->st.lists, w->st.dlq, w->st.checkpoints, secs,
            secs > 0 ? w->st.events / secs : 0, err ? "error" : "ok");
    return err;
}

void xs_worker_destroy(xs_worker_t *w)
{
    if (!w)
        return;
    xs_consumer_destroy(w->consumer);
    xs_producer_destroy(w->producer);
    xs_codec_destroy(w->codec);
    xs_engine_destroy(w->engine);
    xs_batch_destroy(w->batch);
    xs_store_close(w->store);
    for (size_t i = 0; i < w->n_parts; i++)
        free(w->parts[i].topic);
    free(w->parts);
    for (size_t i = 0; i < w->n_bare; i++)
        free(w->bare_topics[i]);
    free(w->bare_topics);
    xs_buf_free(&w->out);
    free(w);
}
