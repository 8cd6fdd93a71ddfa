/*
 * global.c — global item knowledge: the pair-delta batches every instance
 * publishes in its checkpoints' transactions and reads back, all of them,
 * into its item state; the catalog read in full (include/xsell/global.h).
 */
#include "xsell/global.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xsell/log.h"
#include "xsell/records.h"

/* Where the input the applied deltas cover is kept in the store: as the
 * offsets of a topic of this name (never a Kafka topic). */
#define XS_GLOBAL_COVER_PREFIX "xsell.covered:"
/* Largest part encoded before it is split further. */
#define XS_GLOBAL_PART_BYTES 900000
#define XS_GLOBAL_TIMEOUT_MS 10000

typedef struct cover {
    int64_t applied; /* next input offset the applied batches cover, -1 none */
    int64_t stored;  /* as of the last checkpoint */
    int64_t end;     /* the high watermark when the reader started */
} cover_t;

struct xs_global {
    xs_global_opts_t o;
    xs_global_process_fn process;
    void *process_opaque;
    char topic[256];
    char *user_topics[XS_CHANGELOG_MAX_TOPICS]; /* copies of opts.user_topics */
    xs_consumer_t *consumer;
    int n_partitions; /* of the input */
    cover_t *cover;   /* [user topic][partition] */
    char cover_topic[XS_CHANGELOG_MAX_TOPICS][300];
    xs_delta_batch_t in, out, part; /* scratch */
    xs_buf_t buf;                   /* the parts of one partition, encoded */
    size_t *lens;                   /* their lengths */
    size_t n_lens, cap_lens;
    uint64_t applied, published, entries;
    /* per batch applied: ms from its send (the record's timestamp) to here */
    int64_t *lags;
    size_t n_lags, cap_lags;
};

/* Kept per batch for the lag's quantiles, up to this many. */
#define XS_GLOBAL_LAG_SAMPLES 1000000

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void note_lag(xs_global_t *g, int64_t lag)
{
    if (g->n_lags == g->cap_lags) {
        if (g->cap_lags >= XS_GLOBAL_LAG_SAMPLES)
            return;
        size_t cap = g->cap_lags ? 2 * g->cap_lags : 1024;
        int64_t *v = realloc(g->lags, cap * sizeof(*v));
        if (!v)
            return; /* a statistic: not worth failing for */
        g->lags = v;
        g->cap_lags = cap;
    }
    g->lags[g->n_lags++] = lag;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

const char *xs_global_deltas_topic_name(const xs_config_t *cfg, char *buf, size_t size)
{
    const char *t = xs_config_str(cfg, "items.deltas.topic");
    if (t && *t)
        snprintf(buf, size, "%s", t);
    else
        snprintf(buf, size, "%s-pair-deltas", xs_config_str(cfg, "group.id"));
    return buf;
}

static int user_topic_index(const xs_global_t *g, const char *topic)
{
    for (size_t i = 0; i < g->o.n_user_topics; i++)
        if (strcmp(g->o.user_topics[i], topic) == 0)
            return (int)i;
    return -1;
}

static cover_t *cover_of(xs_global_t *g, int t, int32_t partition)
{
    if (t < 0 || partition < 0 || partition >= g->n_partitions)
        return NULL;
    return &g->cover[(size_t)t * (size_t)g->n_partitions + (size_t)partition];
}

/* ---- publishing (the checkpoint's side) ------------------------------------------------ */

xs_err_t xs_global_publish(xs_global_t *g, int32_t partition, const xs_offset_t *offs, size_t n,
                           char *errstr, size_t errstr_size)
{
    const xs_processor_t *proc = g->o.processor;
    uint8_t key[4096];
    size_t key_len = xs_changelog_offsets_encode(offs, n, key, sizeof(key));
    if (!key_len) {
        xs_err_set(errstr, errstr_size, "pair deltas: offsets of partition %d too large",
                   (int)partition);
        return XS_ERR_TOO_LARGE;
    }
    xs_err_t err = proc->take_deltas(proc->self, partition, &g->out, errstr, errstr_size);
    if (err)
        return err;
    g->out.partition = (uint16_t)partition;
    g->out.seq = 0; /* the input position the batch brings the partition to */
    for (size_t i = 0; i < n; i++)
        g->out.seq += (uint64_t)offs[i].offset;
    size_t per = XS_GLOBAL_PART_ENTRIES;
    /* Encoded whole before anything is sent: a part too large (long ids)
     * makes the parts smaller. */
    for (;;) {
        uint32_t n_parts = (uint32_t)xs_delta_batch_n_parts(&g->out, per);
        bool fits = true;
        xs_buf_reset(&g->buf);
        g->n_lens = 0;
        for (uint32_t i = 0; i < n_parts && fits; i++) {
            size_t at = g->buf.len;
            if ((err = xs_delta_batch_part(&g->out, per, i, &g->part, errstr, errstr_size)) ||
                (err = xs_delta_batch_encode(&g->part, &g->buf, errstr, errstr_size)))
                return err;
            fits = g->buf.len - at <= XS_GLOBAL_PART_BYTES || per == 1;
            if (g->n_lens == g->cap_lens) {
                size_t cap = g->cap_lens ? g->cap_lens * 2 : 16;
                size_t *l = realloc(g->lens, cap * sizeof(*l));
                if (!l) {
                    xs_err_set(errstr, errstr_size, "out of memory");
                    return XS_ERR_NOMEM;
                }
                g->lens = l;
                g->cap_lens = cap;
            }
            g->lens[g->n_lens++] = g->buf.len - at;
        }
        if (fits)
            break;
        per = XS_MAX(per / 2, 1);
    }
    size_t at = 0;
    for (size_t i = 0; i < g->n_lens; i++) {
        if ((err = xs_changelog_send(g->o.cl, g->topic, partition, key, key_len,
                                     (const uint8_t *)g->buf.data + at, g->lens[i], errstr,
                                     errstr_size)))
            return err;
        at += g->lens[i];
    }
    g->published += g->n_lens;
    if (g->o.metrics)
        xs_worker_metrics_deltas_published(g->o.metrics, g->n_lens);
    XS_DEBUG("pair deltas published", "partition=%d entries=%zu parts=%zu bytes=%zu",
             (int)partition, g->out.n_entries, g->n_lens, g->buf.len);
    xs_delta_batch_clear(&g->out);
    xs_delta_batch_clear(&g->part);
    return XS_OK;
}

void xs_global_snapshot(xs_global_t *g, xs_store_batch_t *batch)
{
    for (size_t t = 0; t < g->o.n_user_topics; t++)
        for (int32_t p = 0; p < g->n_partitions; p++) {
            cover_t *c = cover_of(g, (int)t, p);
            if (c->applied >= 0 && c->applied != c->stored) {
                xs_store_batch_put_offset(batch, g->cover_topic[t], p, c->applied);
                c->stored = c->applied;
            }
        }
}

/* ---- reading ------------------------------------------------------------------------------ */

/* One record of the deltas topic: the batch applied, what it covers noted. */
static xs_err_t apply_record(xs_global_t *g, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    char e[512] = "";
    xs_offset_t offs[XS_CHANGELOG_MAX_TOPICS];
    char names[XS_CHANGELOG_MAX_TOPICS][256];
    size_t n = 0;
    xs_err_t err = xs_delta_batch_decode(&g->in, m->value, m->value_len, e, sizeof(e));
    if (!err)
        err = xs_changelog_offsets_decode(m->key, m->key_len, offs, &n, names, e, sizeof(e));
    if (err) {
        xs_err_set(errstr, errstr_size, "pair deltas %s [%d] offset %" PRId64 ": %s", m->topic,
                   (int)m->partition, m->offset, e);
        return err;
    }
    const xs_processor_t *proc = g->o.processor;
    pthread_mutex_lock(g->o.mu);
    err = proc->apply_deltas(proc->self, &g->in, errstr, errstr_size);
    if (!err)
        err = xs_checkpoint_consumed(g->o.cp, m->topic, m->partition, m->offset + 1);
    /* every part carries the offsets: the last one completes the batch */
    if (!err && g->in.part + 1 == g->in.n_parts)
        for (size_t i = 0; i < n; i++) {
            /* the record carries no partition: it is the deltas partition's */
            cover_t *c = cover_of(g, user_topic_index(g, offs[i].topic), m->partition);
            if (c && offs[i].offset > c->applied)
                c->applied = offs[i].offset;
        }
    pthread_mutex_unlock(g->o.mu);
    if (!err) {
        g->applied++;
        g->entries += g->in.n_entries;
        double lag_s = -1;
        if (m->timestamp > 0 && g->in.part + 1 == g->in.n_parts) {
            int64_t lag = wall_ms() - m->timestamp;
            note_lag(g, lag);
            lag_s = (double)XS_MAX(lag, 0) / 1e3;
        }
        if (g->o.metrics)
            xs_worker_metrics_deltas_applied(g->o.metrics, g->in.n_entries, lag_s);
    }
    return err;
}

xs_err_t xs_global_poll(xs_global_t *g, int max, bool *idle, char *errstr, size_t errstr_size)
{
    *idle = false;
    for (int i = 0; i < max; i++) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(g->consumer, 0, &m, errstr, errstr_size);
        if (err == XS_ERR_EOF) {
            *idle = i == 0;
            return XS_OK;
        }
        if (err)
            return err;
        if (strcmp(m.topic, g->topic) == 0)
            err = apply_record(g, &m, errstr, errstr_size);
        else
            err = g->process(g->process_opaque, &m, errstr, errstr_size);
        if (err)
            return err;
    }
    return XS_OK;
}

bool xs_global_read_up(xs_global_t *g)
{
    return xs_consumer_caught_up(g->consumer);
}

bool xs_global_caught_up(xs_global_t *g)
{
    if (!xs_consumer_caught_up(g->consumer))
        return false;
    for (size_t t = 0; t < g->o.n_user_topics; t++)
        for (int32_t p = 0; p < g->n_partitions; p++) {
            const cover_t *c = cover_of(g, (int)t, p);
            if (c->end > 0 && c->applied < c->end) {
                XS_DEBUG("deltas behind the input",
                         "topic=%s partition=%d covered=%" PRId64 " end=%" PRId64,
                         g->o.user_topics[t], (int)p, c->applied, c->end);
                return false;
            }
        }
    return true;
}

int64_t xs_global_lag_ms(xs_global_t *g, double q)
{
    if (!g || !g->n_lags)
        return -1;
    qsort(g->lags, g->n_lags, sizeof(*g->lags), cmp_i64);
    size_t i = (size_t)(q * (double)(g->n_lags - 1) + 0.5);
    return g->lags[XS_MIN(i, g->n_lags - 1)];
}

void xs_global_stats(const xs_global_t *g, uint64_t *applied, uint64_t *published,
                     uint64_t *entries)
{
    *applied = g ? g->applied : 0;
    *published = g ? g->published : 0;
    *entries = g ? g->entries : 0;
}

/* ---- setup -------------------------------------------------------------------------------- */

/* The reader's partitions start at the offsets of the last checkpoint. */
static void on_assign(void *opaque, const char *topic, int32_t partition, int64_t *offset)
{
    xs_global_t *g = opaque;
    char errstr[256];
    bool found = false;
    pthread_mutex_lock(g->o.mu);
    if (xs_checkpoint_assign_global(g->o.cp, topic, partition, offset, &found, errstr,
                                    sizeof(errstr)))
        XS_ERROR("global table offset", "topic=%s partition=%d error=\"%s\"", topic, (int)partition,
                 errstr);
    pthread_mutex_unlock(g->o.mu);
    XS_INFO("global partition", "topic=%s partition=%d start=%s%" PRId64, topic, (int)partition,
            found ? "" : "beginning/", found ? *offset : 0);
}

static xs_err_t ensure_topic(xs_global_t *g, char *errstr, size_t errstr_size)
{
    const xs_global_opts_t *o = &g->o;
    char why[512] = "";
    int have = xs_kafka_partition_count(o->bootstrap, o->kafka_conf, o->n_kafka_conf, g->topic,
                                        XS_GLOBAL_TIMEOUT_MS, why, sizeof(why));
    if (have <= 0) {
        static const xs_kv_t cfgs[] = {{"cleanup.policy", "delete"}, {"retention.ms", "-1"}};
        xs_topic_spec_t spec = {g->topic, g->n_partitions, 0, cfgs, 2};
        char why2[512] = "";
        xs_err_t err = xs_kafka_create_topics(o->bootstrap, o->kafka_conf, o->n_kafka_conf, &spec,
                                              1, XS_GLOBAL_TIMEOUT_MS, why2, sizeof(why2));
        if (err) {
            xs_err_set(errstr, errstr_size,
                       "pair deltas topic %s does not exist and could not be created (%s): "
                       "create it with %d partitions and retention.ms=-1 (on the development "
                       "broker: xsell devbroker --topics ...,%s)",
                       g->topic, why2, g->n_partitions, g->topic);
            return err;
        }
        have = xs_kafka_partition_count(o->bootstrap, o->kafka_conf, o->n_kafka_conf, g->topic,
                                        XS_GLOBAL_TIMEOUT_MS, why, sizeof(why));
        XS_INFO("pair deltas topic created", "topic=%s partitions=%d retention_ms=-1", g->topic,
                have);
    }
    if (have < g->n_partitions) {
        xs_err_set(errstr, errstr_size,
                   "pair deltas topic %s has %d partitions, fewer than input topic %s (%d): the "
                   "batches of input partition p go to its partition p",
                   g->topic, have, o->user_topics[0], g->n_partitions);
        return XS_ERR_CONFIG;
    }
    return XS_OK;
}

/* What the applied deltas covered at the last checkpoint, and the input's
 * ends now (what `--until-end` waits for). */
static xs_err_t load_cover(xs_global_t *g, char *errstr, size_t errstr_size)
{
    for (size_t t = 0; t < g->o.n_user_topics; t++) {
        snprintf(g->cover_topic[t], sizeof(g->cover_topic[t]), "%s%s", XS_GLOBAL_COVER_PREFIX,
                 g->o.user_topics[t]);
        for (int32_t p = 0; p < g->n_partitions; p++) {
            cover_t *c = cover_of(g, (int)t, p);
            int64_t next = -1, lo = -1, hi = -1;
            bool found = false;
            if (xs_store_get_offset(g->o.store, g->cover_topic[t], p, &next, &found, errstr,
                                    errstr_size))
                return XS_ERR_STORE;
            c->applied = c->stored = found ? next : -1;
            char e[256] = "";
            if (xs_consumer_watermarks(g->consumer, g->o.user_topics[t], p, &lo, &hi,
                                       XS_GLOBAL_TIMEOUT_MS, e, sizeof(e)) != XS_OK) {
                XS_WARN("input end unknown", "topic=%s partition=%d error=\"%s\"",
                        g->o.user_topics[t], (int)p, e);
                hi = -1;
            }
            c->end = hi;
        }
    }
    return XS_OK;
}

xs_global_t *xs_global_new(const xs_global_opts_t *opts, xs_global_process_fn process,
                           void *process_opaque, char *errstr, size_t errstr_size)
{
    xs_kv_t *conf = NULL;
    xs_global_t *g = calloc(1, sizeof(*g));
    if (!g) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    g->o = *opts;
    g->process = process;
    g->process_opaque = process_opaque;
    xs_global_deltas_topic_name(opts->config, g->topic, sizeof(g->topic));
    if (!opts->cl) {
        xs_err_set(errstr, errstr_size,
                   "items.global needs changelog.enable=true: the pair deltas are sent in the "
                   "checkpoints' transactions");
        goto fail;
    }
    if (opts->n_user_topics == 0 || opts->n_user_topics > XS_CHANGELOG_MAX_TOPICS) {
        xs_err_set(errstr, errstr_size, "items.global: %zu user topics", opts->n_user_topics);
        goto fail;
    }
    for (size_t i = 0; i < opts->n_user_topics; i++)
        if (!(g->user_topics[i] = xs_str_dup(opts->user_topics[i]))) {
            xs_err_set(errstr, errstr_size, "out of memory");
            goto fail;
        }
    g->o.user_topics = (const char *const *)g->user_topics;
    char why[512] = "";
    g->n_partitions =
        xs_kafka_partition_count(opts->bootstrap, opts->kafka_conf, opts->n_kafka_conf,
                                 opts->user_topics[0], XS_GLOBAL_TIMEOUT_MS, why, sizeof(why));
    if (g->n_partitions <= 0) {
        xs_err_set(errstr, errstr_size,
                   "items.global: the partition count of input topic %s is unknown (%s): the "
                   "pair deltas topic is sized after it",
                   opts->user_topics[0], why[0] ? why : "no such topic");
        goto fail;
    }
    if (ensure_topic(g, errstr, errstr_size))
        goto fail;
    if (!(g->cover = calloc((size_t)g->n_partitions * opts->n_user_topics, sizeof(*g->cover)))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    /* the reader: every partition of the deltas and catalog topics, only
     * what committed transactions wrote */
    if (!(conf = calloc(opts->n_kafka_conf + 1, sizeof(*conf)))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    memcpy(conf, opts->kafka_conf, opts->n_kafka_conf * sizeof(*conf));
    conf[opts->n_kafka_conf] = (xs_kv_t){"isolation.level", "read_committed"};
    const char *topics[2] = {g->topic, opts->catalog_topic};
    xs_consumer_opts_t co = {
        .bootstrap = opts->bootstrap,
        .topics = topics,
        .n_topics = opts->catalog_topic && *opts->catalog_topic ? 2 : 1,
        .start_offset = XS_OFFSET_BEGINNING,
        .conf = conf,
        .n_conf = opts->n_kafka_conf + 1,
        .hooks = {g, on_assign, NULL},
        .offset_reset_error = true,
    };
    if (!(g->consumer = xs_consumer_new(&co, errstr, errstr_size)))
        goto fail;
    free(conf);
    conf = NULL;
    if (load_cover(g, errstr, errstr_size))
        goto fail;
    XS_INFO("items global", "deltas_topic=%s partitions=%d catalog=%s", g->topic, g->n_partitions,
            opts->catalog_topic && *opts->catalog_topic ? opts->catalog_topic : "(none)");
    return g;
fail:
    free(conf);
    xs_global_destroy(g);
    return NULL;
}

void xs_global_destroy(xs_global_t *g)
{
    if (!g)
        return;
    xs_consumer_destroy(g->consumer);
    free(g->cover);
    xs_delta_batch_clear(&g->in);
    xs_delta_batch_clear(&g->out);
    xs_delta_batch_clear(&g->part);
    xs_buf_free(&g->buf);
    free(g->lens);
    free(g->lags);
    for (size_t i = 0; i < XS_CHANGELOG_MAX_TOPICS; i++)
        free(g->user_topics[i]);
    free(g);
}
