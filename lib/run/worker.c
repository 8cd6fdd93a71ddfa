/*
 * worker.c — the streaming worker (see include/xsell/worker.h for the
 * checkpoint protocol and its guarantees).
 *
 * Threads: the worker thread runs the loop; the checkpoint writer writes
 * checkpoint batches to RocksDB; the HTTP server (when http.address is set)
 * answers on its own thread. The engine and the partition table are shared
 * with the HTTP queries under `mu`, which the worker holds per message
 * (process), while a checkpoint starts, puts a step of its records and
 * finishes (not while waiting for the producer nor for the batch write) and
 * in the rebalance hooks, so a query waits at most for one message or one
 * step (a whole snapshot when a checkpoint is completed synchronously).
 * Metrics live in a registry with its own lock; health and readiness are
 * atomics.
 *
 * Checkpoints run in steps, so that neither encoding the state nor waiting
 * for the producer nor the RocksDB write stalls the loop:
 *   start    (worker thread, none in flight) under mu: the next offset of
 *            every partition that moved goes into the batch (cp_offs keeps
 *            which) and the engine's snapshot begins: the state as it is
 *            at this instant (xs_engine_snapshot_begin); the producer is
 *            marked;
 *   snapshot (worker thread, a few records per loop turn, all of them on
 *            an idle turn) the engine puts the snapshot's records into the
 *            batch; a record an event is about to touch first is put right
 *            then, with its value at the start; then the loop waits, without
 *            blocking, for the producer to acknowledge everything sent
 *            before the mark (the lists of the events in the snapshot);
 *   write    (writer thread) the batch, atomically;
 *   finish   (worker thread, the first loop turn after the write) under mu:
 *            the partitions' stored offsets move, they are committed to
 *            Kafka and the engine trims its cache.
 * So the batch is exactly the state after the events before the start, with
 * their offsets, and written only once their output is acknowledged. The
 * engine evicts only in xs_engine_trim(), after the write, and never a
 * record still to be put, so nothing reads an old value from RocksDB.
 * Revocation, shutdown and dirty records over checkpoint.dirty.bytes while
 * one is in flight complete it on the worker thread first (checkpoint_drain;
 * the last is the backpressure of a slow disk); revocation and shutdown
 * then run a whole checkpoint synchronously (checkpoint()).
 */
#include "xsell/worker.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xsell/codec.h"
#include "xsell/engine.h"
#include "xsell/event.h"
#include "xsell/http.h"
#include "xsell/kafka.h"
#include "xsell/log.h"
#include "xsell/metrics.h"
#include "xsell/obs.h"
#include "xsell/registry.h"
#include "xsell/settings.h"
#include "xsell/sketch.h"
#include "xsell/store.h"
#include "schemas.h"

/* Checkpoint states: nothing in flight; the engine's snapshot is being put
 * into the batch and the producer's acknowledgements awaited, on the loop;
 * the writer writes the batch; written, finish due. */
enum { CP_IDLE, CP_SNAPSHOT, CP_WRITING, CP_WRITTEN };

/* Snapshot records the loop puts into the batch per turn while events come;
 * a turn without an event puts all that remain. */
#define XS_CP_STEP_RECORDS 128

typedef struct cp_offset {
    size_t part; /* index in parts (entries are never removed) */
    int64_t next;
} cp_offset_t;

typedef struct part {
    char *topic;
    int32_t partition;
    int64_t next;      /* next offset to consume (after what was applied) */
    int64_t stored;    /* next offset in the last checkpoint */
    bool assigned;
    bool seen;         /* assigned before in this process (--from-beginning) */
} part_t;

/* Metric families (ids in xs_worker.mid, see define_metrics). */
enum {
    M_EVENTS, M_DLQ, M_DECODE_ERRORS, M_LISTS, M_IMPRESSIONS, M_CLICKS, M_PURCHASES, M_REVENUE,
    M_UNATTRIBUTED, M_LAG, M_CHECKPOINTS, M_CP_LAST, M_CP_SECONDS, M_CACHE_RATIO, M_CACHE_HITS,
    M_CACHE_MISSES, M_ROCKSDB_BYTES, M_ASSIGNED, M_READY, M_WAL_DAMAGED, M_INPUT_LOST, M_ADD_OPPS,
    M_ADD_HITS, M__COUNT
};

/* A worker loop that has not turned for this long is reported unhealthy
 * (a checkpoint waits at most 60 s for the producer). */
#define XS_HEALTH_STALL_MS 120000.0
/* Longest wait of an HTTP query for the worker's lock. */
#define XS_QUERY_LOCK_MS 5000
/* Budget of each metadata request of the start-up partition parity check. */
#define XS_PARITY_TIMEOUT_MS 5000

struct xs_worker {
    const xs_config_t *cfg;
    bool until_end;
    xs_store_t *store;
    xs_engine_t *engine;
    xs_codec_t *codec;
    xs_producer_t *producer;
    xs_consumer_t *consumer;
    xs_batch_t *batch; /* the writer's while cp_state is CP_WRITING */
    xs_event_limits_t limits;
    size_t max_message_bytes;
    size_t dlq_max_bytes; /* key + value a dead letter can carry (producer limit) */
    const char *topic_clicks, *topic_cart, *topic_catalog, *topic_output, *topic_dlq;
    char **bare_topics;
    size_t n_bare;
    part_t *parts;
    size_t n_parts, cap_parts, part_hint;
    /* checkpoint in flight: the partitions it moves and their offsets */
    cp_offset_t *cp_offs;
    xs_offset_t *commit_offs;
    size_t n_cp_offs, cap_cp_offs;
    double cp_t0;
    bool state_sync;
    pthread_t writer;
    bool writer_on, cp_init, cp_stop;
    pthread_mutex_t cp_mu; /* cp_state, cp_stop, cp_err, cp_errstr */
    pthread_cond_t cp_cv;
    _Atomic int cp_state;
    xs_err_t cp_err;
    char cp_errstr[512];
    xs_buf_t out;
    xs_worker_stats_t st;
    xs_err_t hook_err; /* error raised inside a rebalance hook */
    char hook_errstr[640];
    size_t dirty_limit;
    bool failed; /* after a fatal error no checkpoint may store offsets */
    bool from_beginning;
    pthread_mutex_t mu; /* engine + parts, shared with HTTP queries */
    bool mu_init;
    xs_metrics_t *metrics;
    int mid[M__COUNT];
    xs_obs_t *obs; /* histograms, build info, process metrics, per-partition lag */

    /* Schema Registry (schema.registry.url; NULL without): unknown Confluent
     * ids of the input are fetched once (the codec then keeps them); ids the
     * registry does not know are remembered so a flood of them asks once. */
    xs_registry_t *registry;
    double registry_retry_max_ms;
    int32_t registry_missing[64];
    size_t n_registry_missing, registry_missing_next;
    bool out_confluent;    /* output.framing = confluent */
    int32_t out_schema_id; /* CrossSellList's id in the registry, -1 until registered */
    volatile sig_atomic_t *stop;
    char copy_headers[8][64]; /* output.headers.copy: trigger headers copied onto its list */
    int n_copy_headers;
    char arm_names[XS_MAX_ARMS][32]; /* experiment arms, for labels; n_arms 0: "none" */
    int n_arms;
    xs_listmap_t *listmap;
    xs_http_t *http;
    /* POST /v1/events (http.events.enabled): the HTTP thread's own codec and producer */
    xs_codec_t *http_codec;
    xs_producer_t *http_producer;
    atomic_bool running, ready;
    _Atomic double heartbeat_ms;
    /* why not ready (read by /readyz): brokers down for this long (0: up),
     * partitions assigned, input lost and the policy stops the worker */
    _Atomic double brokers_down_ms;
    atomic_int n_assigned;
    atomic_bool input_lost;
    bool skip_lost_input; /* input.offset.out_of_range = skip */
    double unreachable_timeout_ms;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static part_t *find_part(xs_worker_t *w, const char *topic, int32_t partition, bool create)
{
    /* Messages come in runs from one partition: try the last one found first. */
    if (w->part_hint < w->n_parts && w->parts[w->part_hint].partition == partition &&
        strcmp(w->parts[w->part_hint].topic, topic) == 0)
        return &w->parts[w->part_hint];
    for (size_t i = 0; i < w->n_parts; i++)
        if (w->parts[i].partition == partition && strcmp(w->parts[i].topic, topic) == 0) {
            w->part_hint = i;
            return &w->parts[i];
        }
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
    p->seen = false;
    w->n_parts++;
    return p;
}

/* ---- checkpoint ------------------------------------------------------------ */

/* The writer thread: writes each batch handed over by checkpoint_advance(). */
static void *cp_writer(void *arg)
{
    xs_worker_t *w = arg;
    pthread_mutex_lock(&w->cp_mu);
    for (;;) {
        while (atomic_load(&w->cp_state) != CP_WRITING && !w->cp_stop)
            pthread_cond_wait(&w->cp_cv, &w->cp_mu);
        if (atomic_load(&w->cp_state) != CP_WRITING)
            break; /* stopping, nothing in flight */
        pthread_mutex_unlock(&w->cp_mu);
        char e[sizeof(w->cp_errstr)] = "";
        xs_err_t err = xs_store_write(w->store, w->batch, w->state_sync, e, sizeof(e));
        pthread_mutex_lock(&w->cp_mu);
        w->cp_err = err;
        memcpy(w->cp_errstr, e, sizeof(e));
        atomic_store(&w->cp_state, CP_WRITTEN);
        pthread_cond_broadcast(&w->cp_cv);
    }
    pthread_mutex_unlock(&w->cp_mu);
    return NULL;
}

/* Waits for the batch in flight, if any, to be written. */
static void checkpoint_wait(xs_worker_t *w)
{
    if (!w->cp_init)
        return;
    pthread_mutex_lock(&w->cp_mu);
    while (atomic_load(&w->cp_state) == CP_WRITING)
        pthread_cond_wait(&w->cp_cv, &w->cp_mu);
    pthread_mutex_unlock(&w->cp_mu);
}

/* After the write: stored offsets, Kafka commit, cache trim (under mu). */
static xs_err_t checkpoint_finish(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    size_t n_commit = 0;
    if (atomic_load(&w->cp_state) != CP_WRITTEN)
        return XS_OK;
    atomic_store(&w->cp_state, CP_IDLE);
    if (w->cp_err) {
        xs_errstr_set(errstr, errstr_size, "%s", w->cp_errstr);
        xs_obs_checkpoint_failed(w->obs);
        return w->cp_err;
    }
    pthread_mutex_lock(&w->mu);
    for (size_t i = 0; i < w->n_cp_offs; i++) {
        part_t *p = &w->parts[w->cp_offs[i].part];
        p->stored = w->cp_offs[i].next;
        if (p->assigned)
            w->commit_offs[n_commit++] =
                (xs_offset_t){p->topic, p->partition, w->cp_offs[i].next};
    }
    char e2[256];
    if (xs_consumer_commit_offsets(w->consumer, w->commit_offs, n_commit, true, e2, sizeof(e2)))
        XS_DEBUG("offset commit failed", "error=\"%s\"", e2);
    xs_engine_trim(w->engine);
    pthread_mutex_unlock(&w->mu);
    w->st.checkpoints++;
    w->st.last_checkpoint_ms = now_ms() - w->cp_t0;
    xs_metrics_add(w->metrics, w->mid[M_CHECKPOINTS], NULL, 1);
    xs_metrics_set(w->metrics, w->mid[M_CP_LAST], NULL, w->st.last_checkpoint_ms / 1e3);
    xs_metrics_add(w->metrics, w->mid[M_CP_SECONDS], NULL, w->st.last_checkpoint_ms / 1e3);
    xs_obs_checkpoint(w->obs, w->st.last_checkpoint_ms / 1e3);
    XS_DEBUG("checkpoint", "records=%d partitions=%zu ms=%.1f", xs_batch_count(w->batch),
             w->n_cp_offs, w->st.last_checkpoint_ms);
    return XS_OK;
}

/* Room for every partition in cp_offs and commit_offs. */
static xs_err_t cp_offs_reserve(xs_worker_t *w)
{
    if (w->cap_cp_offs >= w->n_parts)
        return XS_OK;
    size_t cap = w->cap_parts;
    cp_offset_t *o = realloc(w->cp_offs, cap * sizeof(*o));
    if (!o)
        return XS_ERR_NOMEM;
    w->cp_offs = o;
    xs_offset_t *c = realloc(w->commit_offs, cap * sizeof(*c));
    if (!c)
        return XS_ERR_NOMEM;
    w->commit_offs = c;
    w->cap_cp_offs = cap;
    return XS_OK;
}

/*
 * Starts a checkpoint (none in flight): under mu, the next offset of every
 * partition that moved goes into the batch (cp_offs keeps which) and the
 * engine's snapshot begins; the producer is marked, so the batch is written
 * only once what the snapshot's events produced is acknowledged. *started
 * is false when there is nothing to write (no dirty record, no offset moved).
 */
static xs_err_t checkpoint_start(xs_worker_t *w, bool *started, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    size_t n_records = 0;
    *started = false;
    if (w->failed) {
        xs_errstr_set(errstr, errstr_size, "worker failed earlier: no checkpoint");
        return XS_ERR_INVALID;
    }
    pthread_mutex_lock(&w->mu);
    xs_batch_clear(w->batch);
    w->n_cp_offs = 0;
    if ((err = cp_offs_reserve(w))) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < w->n_parts; i++) {
        part_t *p = &w->parts[i];
        if (p->next >= 0 && p->next != p->stored) {
            xs_batch_put_offset(w->batch, p->topic, p->partition, p->next);
            w->cp_offs[w->n_cp_offs++] = (cp_offset_t){i, p->next};
        }
    }
    if ((err = xs_engine_snapshot_begin(w->engine, xs_batch_put_fn, w->batch, &n_records, errstr,
                                        errstr_size)))
        goto out;
    if (n_records || w->n_cp_offs) {
        xs_producer_mark(w->producer);
        w->cp_t0 = now_ms();
        atomic_store(&w->cp_state, CP_SNAPSHOT);
        *started = true;
    }
out:
    pthread_mutex_unlock(&w->mu);
    return err;
}

/* Puts up to max snapshot records (0: all) into the batch (under mu); once
 * all are in and the producer acknowledged everything before the mark (or,
 * with flush, after waiting for it), hands the batch to the writer thread
 * (or writes it here, with sync). */
static xs_err_t checkpoint_advance(xs_worker_t *w, size_t max, bool flush, bool sync,
                                   char *errstr, size_t errstr_size)
{
    bool done = false, acked = false;
    if (atomic_load(&w->cp_state) != CP_SNAPSHOT)
        return XS_OK;
    pthread_mutex_lock(&w->mu);
    xs_err_t err = xs_engine_snapshot_step(w->engine, max, &done, errstr, errstr_size);
    pthread_mutex_unlock(&w->mu);
    if (err)
        xs_obs_checkpoint_failed(w->obs);
    if (err || !done)
        return err;
    if (flush)
        err = xs_producer_flush(w->producer, 60000, errstr, errstr_size), acked = !err;
    else
        err = xs_producer_marked_done(w->producer, &acked, errstr, errstr_size);
    if (err)
        xs_obs_checkpoint_failed(w->obs);
    if (err || !acked)
        return err; /* nothing written: a restart replays from the last checkpoint */
    if (sync) {
        w->cp_err = xs_store_write(w->store, w->batch, w->state_sync, w->cp_errstr,
                                   sizeof(w->cp_errstr));
        atomic_store(&w->cp_state, CP_WRITTEN);
        return XS_OK;
    }
    pthread_mutex_lock(&w->cp_mu);
    atomic_store(&w->cp_state, CP_WRITING);
    pthread_cond_signal(&w->cp_cv);
    pthread_mutex_unlock(&w->cp_mu);
    return XS_OK;
}

/* Completes the checkpoint in flight, if any, on the calling thread. */
static xs_err_t checkpoint_drain(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    xs_err_t err = checkpoint_advance(w, 0, true, true, errstr, errstr_size);
    if (err)
        return err;
    checkpoint_wait(w);
    return checkpoint_finish(w, errstr, errstr_size);
}

/* A whole checkpoint on the calling thread (rebalance, shutdown, a dirty
 * state over its bound), after the one in flight. */
static xs_err_t checkpoint(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    bool started = false;
    xs_err_t err = checkpoint_drain(w, errstr, errstr_size);
    if (!err)
        err = checkpoint_start(w, &started, errstr, errstr_size);
    if (!err && started)
        err = checkpoint_drain(w, errstr, errstr_size);
    return err;
}

/* ---- rebalance hooks ------------------------------------------------------------ */

static void on_assign(void *opaque, const char *topic, int32_t partition, int64_t *offset)
{
    xs_worker_t *w = opaque;
    int64_t next = 0;
    bool found = false;
    char errstr[256];
    atomic_store(&w->ready, false);
    pthread_mutex_lock(&w->mu);
    part_t *p = find_part(w, topic, partition, true);
    if (!p) {
        w->hook_err = XS_ERR_NOMEM;
        goto out;
    }
    if (xs_store_get_offset(w->store, topic, partition, &next, &found, errstr, sizeof(errstr))) {
        w->hook_err = XS_ERR_STORE;
        snprintf(w->hook_errstr, sizeof(w->hook_errstr), "%s", errstr);
        goto out;
    }
    /* --from-beginning: the first assignment ignores stored offsets (the state
     * directory was empty at start); a later one resumes what this run stored. */
    if (w->from_beginning && !p->seen)
        found = false;
    p->seen = true;
    p->assigned = true;
    p->stored = found ? next : -1;
    p->next = found ? next : -1;
    *offset = found ? next : XS_OFFSET_BEGINNING;
    XS_INFO("partition assigned", "topic=%s partition=%d start=%s%" PRId64, topic, partition,
            found ? "" : "beginning/", found ? next : 0);
out:
    pthread_mutex_unlock(&w->mu);
}

static void on_revoke(void *opaque, const char *topic, int32_t partition)
{
    xs_worker_t *w = opaque;
    char errstr[512];
    if (!w->hook_err && checkpoint(w, errstr, sizeof(errstr)) != XS_OK) {
        w->hook_err = XS_ERR_KAFKA;
        snprintf(w->hook_errstr, sizeof(w->hook_errstr), "checkpoint on revoke: %s", errstr);
    }
    atomic_store(&w->ready, false);
    pthread_mutex_lock(&w->mu);
    part_t *p = find_part(w, topic, partition, false);
    if (p) {
        p->assigned = false;
        p->next = p->stored = -1;
    }
    /* Another worker owns this partition now: its users must be re-read. */
    xs_engine_drop_cache(w->engine);
    pthread_mutex_unlock(&w->mu);
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
                            const char *reason_class, char *errstr, size_t errstr_size)
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
    xs_metrics_add(w->metrics, w->mid[M_DLQ], (const char *[]){reason_class}, 1);
    XS_DEBUG("dead letter", "topic=%s partition=%d offset=%" PRId64 " reason=\"%s\"", m->topic,
             m->partition, m->offset, reason);
    /* A record the producer cannot send (message.max.bytes) would stop the
     * partition for good: keep a prefix and the original value size instead. */
    size_t klen = m->key_len, vlen = m->value_len, n_h = XS_ARRAY_SIZE(h);
    char orig[24];
    xs_header_t ht[XS_ARRAY_SIZE(h) + 1];
    memcpy(ht, h, sizeof(h));
    if (klen + vlen > w->dlq_max_bytes) {
        klen = XS_MIN(klen, w->dlq_max_bytes / 2);
        vlen = XS_MIN(vlen, w->dlq_max_bytes - klen);
        snprintf(orig, sizeof(orig), "%zu", m->value_len);
        ht[n_h++] = (xs_header_t){"xsell.original.size", orig, strlen(orig)};
    }
    return xs_producer_send(w->producer, w->topic_dlq, -1, m->key, klen, m->value, vlen, ht, n_h,
                            errstr, errstr_size);
}

/* ---- metrics -------------------------------------------------------------------------- */

/* Events by topic and type, and attribution of events that carry a list_id:
 * clicks and PURCHASE revenue (sum of quantity * unit_price over the lines
 * with a price, whatever the currency) go to the arm of the list they cite,
 * found in the bounded map of recently published lists. dups_before is the
 * engine's duplicate count before the event: a duplicate is not attributed. */
static void count_event(xs_worker_t *w, const char *topic, const xs_event_t *ev,
                        uint64_t dups_before)
{
    const char *type = ev->kind == XS_KIND_CLICK  ? xs_click_type_name((xs_click_type_t)ev->type)
                       : ev->kind == XS_KIND_CART ? xs_cart_type_name((xs_cart_type_t)ev->type)
                                                  : "ITEM_UPDATE";
    xs_metrics_add(w->metrics, w->mid[M_EVENTS], (const char *[]){topic, type}, 1);
    if (!ev->list_id || ev->kind == XS_KIND_ITEM)
        return;
    bool purchase = ev->kind == XS_KIND_CART && ev->type == XS_CART_PURCHASE;
    if (ev->kind != XS_KIND_CLICK && !purchase)
        return;
    xs_engine_stats_t es;
    xs_engine_stats(w->engine, &es);
    if (es.duplicates != dups_before)
        return;
    const char *arm = xs_listmap_get(w->listmap, ev->list_id);
    if (!arm) {
        xs_metrics_add(w->metrics, w->mid[M_UNATTRIBUTED],
                       (const char *[]){purchase ? "purchase" : "click"}, 1);
        return;
    }
    if (!purchase) {
        xs_metrics_add(w->metrics, w->mid[M_CLICKS], (const char *[]){arm}, 1);
        return;
    }
    double revenue = 0;
    for (size_t i = 0; i < ev->n_lines; i++)
        if (ev->lines[i].has_unit_price)
            revenue += ev->lines[i].quantity * ev->lines[i].unit_price;
    xs_metrics_add(w->metrics, w->mid[M_PURCHASES], (const char *[]){arm}, 1);
    xs_metrics_add(w->metrics, w->mid[M_REVENUE], (const char *[]){arm}, revenue);
}

/* The live quality signal: at a cart ADD, per placement, whether each added
 * item was on the last list published to the user for that placement. */
static void count_adds(xs_worker_t *w)
{
    xs_add_outcome_t o;
    xs_engine_last_outcome(w->engine, &o);
    const char *arm = o.arm >= 0 && o.arm < w->n_arms ? w->arm_names[o.arm] : "none";
    for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
        if (!o.opportunities[pl])
            continue;
        const char *lv[] = {xs_placement_name((xs_placement_t)pl), arm};
        xs_metrics_add(w->metrics, w->mid[M_ADD_OPPS], lv, o.opportunities[pl]);
        xs_metrics_add(w->metrics, w->mid[M_ADD_HITS], lv, o.hits[pl]);
    }
}

static void count_list(xs_worker_t *w, const xs_list_t *list)
{
    const char *arm = list->arm && *list->arm ? list->arm : "none";
    xs_metrics_add(w->metrics, w->mid[M_LISTS],
                   (const char *[]){xs_placement_name(list->placement), arm}, 1);
    xs_metrics_add(w->metrics, w->mid[M_IMPRESSIONS], (const char *[]){arm}, 1);
    xs_listmap_put(w->listmap, list->list_id, list->arm);
}

static xs_err_t define_metrics(xs_worker_t *w)
{
    xs_metrics_t *m = w->metrics;
    int *id = w->mid;
    id[M_EVENTS] = xs_metrics_define(m, "xsell_events_total", XS_METRIC_COUNTER,
                                   "Events applied to the engine, by input topic and event type.",
                                   "topic,type");
    id[M_DECODE_ERRORS] = xs_metrics_define(m, "xsell_decode_errors_total", XS_METRIC_COUNTER,
                                          "Input messages that did not decode, by topic.",
                                          "topic");
    id[M_DLQ] = xs_metrics_define(m, "xsell_dlq_messages_total", XS_METRIC_COUNTER,
                                "Messages sent to the dead-letter topic, by reason "
                                "(too_large, empty, decode, wrong_type, validation).",
                                "reason");
    id[M_LISTS] = xs_metrics_define(m, "xsell_lists_published_total", XS_METRIC_COUNTER,
                                  "Cross-sell lists published, by placement and experiment arm.",
                                  "placement,arm");
    id[M_IMPRESSIONS] = xs_metrics_define(m, "xsell_impressions_total", XS_METRIC_COUNTER,
                                        "Lists published (impressions), by experiment arm.",
                                        "arm");
    id[M_CLICKS] = xs_metrics_define(m, "xsell_attributed_clicks_total", XS_METRIC_COUNTER,
                                   "ClickEvents carrying the list_id of a published list, by "
                                   "the list's arm.",
                                   "arm");
    id[M_PURCHASES] = xs_metrics_define(m, "xsell_attributed_purchases_total", XS_METRIC_COUNTER,
                                      "PURCHASE CartEvents carrying the list_id of a published "
                                      "list, by the list's arm.",
                                      "arm");
    id[M_REVENUE] = xs_metrics_define(m, "xsell_attributed_revenue_total", XS_METRIC_COUNTER,
                                    "Sum of quantity * unit_price of attributed purchases, by "
                                    "the list's arm (currencies are not converted).",
                                    "arm");
    id[M_UNATTRIBUTED] = xs_metrics_define(m, "xsell_unattributed_events_total", XS_METRIC_COUNTER,
                                         "Clicks and purchases whose list_id is unknown or no "
                                         "longer remembered (metrics.attribution.lists).",
                                         "kind");
    id[M_ADD_OPPS] = xs_metrics_define(
        m, "xsell_list_add_opportunities_total", XS_METRIC_COUNTER,
        "Items added to a cart (ADD lines) by users with a remembered last list for the "
        "placement, by placement and the user's experiment arm.",
        "placement,arm");
    id[M_ADD_HITS] = xs_metrics_define(
        m, "xsell_list_add_hits_total", XS_METRIC_COUNTER,
        "Of those, items that were among the first 10 of the last list published to the user "
        "for the placement (hits / opportunities: a live HitRate@10).",
        "placement,arm");
    id[M_LAG] = xs_metrics_define(m, "xsell_consumer_lag_messages", XS_METRIC_GAUGE,
                                "Messages behind the high watermark over the assigned "
                                "partitions whose lag is known (never -1; "
                                "xsell_consumer_lag_unknown_partitions counts the others).",
                                NULL);
    id[M_ASSIGNED] = xs_metrics_define(m, "xsell_assigned_partitions", XS_METRIC_GAUGE,
                                     "Input partitions assigned to this worker.", NULL);
    id[M_READY] = xs_metrics_define(m, "xsell_ready", XS_METRIC_GAUGE,
                                  "1 once caught up after the last assignment (as /readyz).",
                                  NULL);
    id[M_CHECKPOINTS] = xs_metrics_define(m, "xsell_checkpoints_total", XS_METRIC_COUNTER,
                                        "Checkpoints written.", NULL);
    id[M_CP_LAST] = xs_metrics_define(m, "xsell_checkpoint_last_duration_seconds", XS_METRIC_GAUGE,
                                    "Duration of the last checkpoint (producer flush and batch "
                                    "write).",
                                    NULL);
    id[M_CP_SECONDS] = xs_metrics_define(m, "xsell_checkpoint_duration_seconds_total",
                                       XS_METRIC_COUNTER, "Time spent in checkpoints.", NULL);
    id[M_CACHE_HITS] = xs_metrics_define(m, "xsell_cache_hits_total", XS_METRIC_COUNTER,
                                       "State reads served by the write-back cache.", NULL);
    id[M_CACHE_MISSES] = xs_metrics_define(m, "xsell_cache_misses_total", XS_METRIC_COUNTER,
                                         "State reads that went to RocksDB.", NULL);
    id[M_CACHE_RATIO] = xs_metrics_define(m, "xsell_cache_hit_ratio", XS_METRIC_GAUGE,
                                        "Cache hits / (hits + misses) since start.", NULL);
    id[M_ROCKSDB_BYTES] = xs_metrics_define(m, "xsell_rocksdb_size_bytes", XS_METRIC_GAUGE,
                                          "Live SST files and memtables of the state store.",
                                          NULL);
    id[M_INPUT_LOST] = xs_metrics_define(m, "xsell_input_lost_messages_total", XS_METRIC_COUNTER,
                                         "Input messages deleted (by retention) before they were "
                                         "consumed, by topic and partition: skipped with "
                                         "input.offset.out_of_range=skip, else the worker stops.",
                                         "topic,partition");
    id[M_WAL_DAMAGED] = xs_metrics_define(m, "xsell_state_wal_damaged", XS_METRIC_GAUGE,
                                          "1 when this process started from a damaged RocksDB "
                                          "write-ahead log: the state went back to the last "
                                          "checkpoint before the damage, and the input after "
                                          "it is replayed.",
                                          NULL);
    for (int i = 0; i < M__COUNT; i++)
        if (id[i] < 0)
            return XS_ERR_NOMEM;
    return XS_OK;
}

/* The counters whose labels are known at start exist from the start, at 0
 * (a rate() or an alert on them works before their first increment). */
static void touch_series(xs_worker_t *w)
{
    xs_metrics_t *m = w->metrics;
    for (int t = 0; t < XS_CLICK__COUNT; t++)
        xs_metrics_touch(m, w->mid[M_EVENTS],
                         (const char *[]){w->topic_clicks, xs_click_type_name((xs_click_type_t)t)});
    for (int t = 0; t < XS_CART__COUNT; t++)
        xs_metrics_touch(m, w->mid[M_EVENTS],
                         (const char *[]){w->topic_cart, xs_cart_type_name((xs_cart_type_t)t)});
    const char *in[] = {w->topic_clicks, w->topic_cart, w->topic_catalog};
    for (size_t i = 0; i < XS_ARRAY_SIZE(in); i++)
        if (*in[i])
            xs_metrics_touch(m, w->mid[M_DECODE_ERRORS], (const char *[]){in[i]});
    if (*w->topic_catalog) {
        xs_metrics_touch(m, w->mid[M_EVENTS], (const char *[]){w->topic_catalog, "ITEM_UPDATE"});
        xs_metrics_touch(m, w->mid[M_EVENTS], (const char *[]){w->topic_catalog, "TOMBSTONE"});
    }
    const char *reasons[] = {"too_large", "empty", "decode", "wrong_type", "validation"};
    for (size_t i = 0; i < XS_ARRAY_SIZE(reasons); i++)
        xs_metrics_touch(m, w->mid[M_DLQ], (const char *[]){reasons[i]});
    xs_metrics_touch(m, w->mid[M_UNATTRIBUTED], (const char *[]){"click"});
    xs_metrics_touch(m, w->mid[M_UNATTRIBUTED], (const char *[]){"purchase"});
    for (int a = 0; a < (w->n_arms ? w->n_arms : 1); a++) {
        const char *arm = w->n_arms ? w->arm_names[a] : "none";
        for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++)
            xs_metrics_touch(m, w->mid[M_LISTS],
                             (const char *[]){xs_placement_name((xs_placement_t)pl), arm});
        int per_arm[] = {M_IMPRESSIONS, M_CLICKS, M_PURCHASES, M_REVENUE};
        for (size_t i = 0; i < XS_ARRAY_SIZE(per_arm); i++)
            xs_metrics_touch(m, w->mid[per_arm[i]], (const char *[]){arm});
    }
}

/* Gauges that are sampled rather than counted; on the worker thread. */
static void refresh_gauges(xs_worker_t *w)
{
    xs_engine_stats_t es;
    pthread_mutex_lock(&w->mu);
    xs_engine_stats(w->engine, &es);
    pthread_mutex_unlock(&w->mu);
    w->st.lag = xs_consumer_lag(w->consumer);
    /* Per partition; the total over the partitions whose lag is known, and
     * how many are not known (never -1). */
    int64_t known = 0;
    int unknown = 0;
    for (size_t i = 0; i < w->n_parts; i++) {
        part_t *p = &w->parts[i];
        int64_t lag = p->assigned ? xs_consumer_partition_lag(w->consumer, p->topic, p->partition)
                                  : -1;
        xs_obs_partition_lag(w->obs, p->topic, p->partition, lag);
        if (lag >= 0)
            known += lag;
        else if (p->assigned)
            unknown++;
    }
    xs_metrics_set(w->metrics, w->mid[M_LAG], NULL, (double)known);
    xs_obs_lag_unknown(w->obs, unknown);
    xs_obs_sample_process(w->obs);
    xs_metrics_set(w->metrics, w->mid[M_ASSIGNED], NULL, xs_consumer_assigned_count(w->consumer));
    xs_metrics_set(w->metrics, w->mid[M_READY], NULL, atomic_load(&w->ready) ? 1 : 0);
    xs_metrics_set(w->metrics, w->mid[M_CACHE_HITS], NULL, (double)es.cache_hits);
    xs_metrics_set(w->metrics, w->mid[M_CACHE_MISSES], NULL, (double)es.cache_misses);
    uint64_t reads = es.cache_hits + es.cache_misses;
    xs_metrics_set(w->metrics, w->mid[M_CACHE_RATIO], NULL,
                   reads ? (double)es.cache_hits / (double)reads : 0);
    xs_metrics_set(w->metrics, w->mid[M_ROCKSDB_BYTES], NULL, (double)xs_store_size_bytes(w->store));
}

/* ---- processing (continued) ------------------------------------------------------------ */

/* Sleeps ms in small steps, keeping the loop's heartbeat fresh (a wait on
 * the registry is not a stalled worker); false when a stop was asked. */
static bool wait_ms(xs_worker_t *w, double ms)
{
    for (double t0 = now_ms(); now_ms() - t0 < ms;) {
        if (w->stop && *w->stop)
            return false;
        atomic_store(&w->heartbeat_ms, now_ms());
        xs_producer_poll(w->producer);
        usleep(20000);
    }
    return !(w->stop && *w->stop);
}

typedef xs_err_t (*registry_call_fn)(xs_worker_t *w, void *arg, char *errstr, size_t errstr_size);

/* Calls fn until the registry answers: a registry that cannot be reached
 * (XS_ERR_IO) or refuses the credentials (XS_ERR_CONFIG: they may be fixed
 * in the registry) is asked again with exponential backoff from 100 ms up
 * to schema.registry.retry.max.ms, for as long as it takes. XS_ERR_EOF when
 * a stop was asked while waiting; any other answer is returned. */
static xs_err_t registry_retry(xs_worker_t *w, const char *what, registry_call_fn fn, void *arg,
                               char *errstr, size_t errstr_size)
{
    double backoff = 100;
    for (int attempt = 1;; attempt++) {
        xs_err_t err = fn(w, arg, errstr, errstr_size);
        if (err != XS_ERR_IO && err != XS_ERR_CONFIG) {
            if (attempt > 1)
                XS_INFO("schema registry back", "what=\"%s\" attempts=%d", what, attempt);
            return err;
        }
        XS_WARN("schema registry unavailable", "what=\"%s\" attempt=%d retry_in_ms=%.0f "
                "error=\"%s\"", what, attempt, backoff, errstr);
        if (!wait_ms(w, backoff))
            return XS_ERR_EOF;
        backoff = XS_MIN(backoff * 2, w->registry_retry_max_ms);
    }
}

typedef struct fetch_arg {
    int32_t id;
    char *schema;
} fetch_arg_t;

static xs_err_t fetch_call(xs_worker_t *w, void *arg, char *errstr, size_t errstr_size)
{
    fetch_arg_t *a = arg;
    return xs_registry_schema_by_id(w->registry, a->id, &a->schema, errstr, errstr_size);
}

/*
 * Before a message is processed (outside the lock): a Confluent-framed value
 * whose schema id the codec does not know has its writer schema fetched from
 * the registry and added, as the writer of the topic's record kind (then the
 * decode resolves it against xsell's reader schema). An id the registry does
 * not have, or a schema that does not resolve, is left unknown: the message
 * is dead-lettered by the decode as any unknown id ("unknown schema id N").
 * XS_ERR_EOF: a stop was asked while the registry was unavailable (the
 * message is not applied, its offset not stored).
 */
static xs_err_t resolve_schema(xs_worker_t *w, const xs_msg_t *m, char *errstr,
                               size_t errstr_size)
{
    const uint8_t *v = m->value;
    int kind = topic_kind(w, m->topic);
    if (!w->registry || !v || m->value_len < 5 || v[0] != 0x00 || kind < 0 || is_bare(w, m->topic))
        return XS_OK;
    int32_t id = (int32_t)((uint32_t)v[1] << 24 | (uint32_t)v[2] << 16 | (uint32_t)v[3] << 8 | v[4]);
    if (xs_codec_has_confluent_id(w->codec, id))
        return XS_OK;
    for (size_t i = 0; i < w->n_registry_missing; i++)
        if (w->registry_missing[i] == id)
            return XS_OK;
    char what[48], why[1024] = "";
    snprintf(what, sizeof(what), "schema id %d", (int)id);
    fetch_arg_t a = {id, NULL};
    xs_err_t err = registry_retry(w, what, fetch_call, &a, why, sizeof(why));
    if (err == XS_ERR_EOF || err == XS_ERR_NOMEM) {
        xs_errstr_set(errstr, errstr_size, "waiting for the schema registry: %s", why);
        return err;
    }
    if (!err)
        err = xs_codec_add_writer(w->codec, (xs_event_kind_t)kind, a.schema, id, why, sizeof(why));
    free(a.schema);
    if (err) {
        XS_WARN("schema id not usable", "topic=%s id=%d error=\"%s\"", m->topic, (int)id, why);
        w->registry_missing[w->registry_missing_next++ % XS_ARRAY_SIZE(w->registry_missing)] = id;
        if (w->n_registry_missing < XS_ARRAY_SIZE(w->registry_missing))
            w->n_registry_missing++;
        return XS_OK;
    }
    XS_INFO("schema fetched", "topic=%s id=%d kind=%s", m->topic, (int)id,
            xs_kind_name((xs_event_kind_t)kind));
    return XS_OK;
}

static xs_err_t register_call(xs_worker_t *w, void *arg, char *errstr, size_t errstr_size)
{
    char subject[512];
    (void)arg;
    snprintf(subject, sizeof(subject), "%s-value", w->topic_output);
    return xs_registry_register(w->registry, subject, xs_schema_text_CrossSellList,
                                &w->out_schema_id, errstr, errstr_size);
}

/* output.framing = confluent: CrossSellList registered under the output
 * topic's value subject (TopicNameStrategy) before the first list. */
static xs_err_t register_output(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    if (!w->out_confluent || w->out_schema_id >= 0)
        return XS_OK;
    char why[1024] = "";
    xs_err_t err = registry_retry(w, "register CrossSellList", register_call, NULL, why,
                                  sizeof(why));
    if (err) {
        xs_errstr_set(errstr, errstr_size, "output.framing = confluent: %s", why);
        return err;
    }
    XS_INFO("output schema registered", "subject=%s-value id=%d", w->topic_output,
            (int)w->out_schema_id);
    return XS_OK;
}

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

/* A null value on the catalog topic (a tombstone: compaction's way to
 * delete a key) deletes the item named by the key. A tombstone whose key is
 * not an item id (missing, empty, too long, NUL or invalid UTF-8) goes to
 * the DLQ as a validation failure. */
static xs_err_t tombstone(xs_worker_t *w, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    char reason[128] = "";
    if (!m->key || m->key_len == 0)
        snprintf(reason, sizeof(reason), "catalog tombstone without a key (item_id)");
    else if (m->key_len > w->limits.max_id_len)
        snprintf(reason, sizeof(reason), "catalog tombstone key too long (%zu > %zu bytes)",
                 m->key_len, w->limits.max_id_len);
    else if (memchr(m->key, 0, m->key_len) || !xs_utf8_valid(m->key, m->key_len))
        snprintf(reason, sizeof(reason), "catalog tombstone key is not valid UTF-8");
    if (*reason) {
        w->st.dlq_by_reason_validation++;
        return dead_letter(w, m, reason, "validation", errstr, errstr_size);
    }
    char *item = xs_strndup(m->key, m->key_len);
    if (!item)
        return XS_ERR_NOMEM;
    xs_err_t err = xs_engine_delete_item(w->engine, item, errstr, errstr_size);
    free(item);
    if (err)
        return err;
    w->st.events++;
    xs_metrics_add(w->metrics, w->mid[M_EVENTS], (const char *[]){m->topic, "TOMBSTONE"}, 1);
    XS_DEBUG("catalog tombstone", "topic=%s partition=%d offset=%" PRId64, m->topic,
             m->partition, m->offset);
    return XS_OK;
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
        err = dead_letter(w, m, reason, "too_large", errstr, errstr_size);
        goto out;
    }
    if (!m->value && expect == XS_KIND_ITEM) {
        err = tombstone(w, m, errstr, errstr_size);
        goto out;
    }
    if (!m->value || m->value_len == 0) {
        w->st.dlq_by_reason_decode++;
        err = dead_letter(w, m, "empty message", "empty", errstr, errstr_size);
        goto out;
    }
    if (xs_codec_decode(w->codec, m->value, m->value_len, is_bare(w, m->topic) ? expect : -1, &ev,
                        &kind, &framing, reason, sizeof(reason)) != XS_OK) {
        w->st.dlq_by_reason_decode++;
        xs_metrics_add(w->metrics, w->mid[M_DECODE_ERRORS], (const char *[]){m->topic}, 1);
        err = dead_letter(w, m, reason, "decode", errstr, errstr_size);
        goto out;
    }
    if ((expect == XS_KIND_ITEM) != (kind == XS_KIND_ITEM) || kind == XS_KIND_LIST) {
        snprintf(reason, sizeof(reason), "unexpected %s record on topic %s", xs_kind_name(kind),
                 m->topic);
        w->st.dlq_by_reason_validation++;
        err = dead_letter(w, m, reason, "wrong_type", errstr, errstr_size);
        goto out;
    }
    if (xs_event_validate(&ev, &w->limits, reason, sizeof(reason)) != XS_OK) {
        w->st.dlq_by_reason_validation++;
        err = dead_letter(w, m, reason, "validation", errstr, errstr_size);
        goto out;
    }
    bool has_list = false;
    uint64_t dups = 0;
    if (ev.list_id) {
        xs_engine_stats_t es;
        xs_engine_stats(w->engine, &es);
        dups = es.duplicates;
    }
    if ((err = xs_engine_process(w->engine, (uint16_t)m->partition, &ev, &list, &has_list, errstr,
                                 errstr_size)) != XS_OK)
        goto out;
    w->st.events++;
    count_event(w, m->topic, &ev, dups);
    if (ev.kind == XS_KIND_CART && ev.type == XS_CART_ADD)
        count_adds(w);
    if (has_list) {
        xs_buf_reset(&w->out);
        if ((err = xs_codec_encode_list(w->codec, &list, &w->out)) != XS_OK) {
            xs_errstr_set(errstr, errstr_size, "encode list: %s", xs_err2str(err));
            goto out;
        }
        if (w->out_confluent)
            to_confluent(&w->out, w->out_schema_id);
        /* Headers: what the value is, then the trigger's trace headers. */
        xs_header_t h[3 + XS_ARRAY_SIZE(w->copy_headers)];
        size_t nh = 0;
        char sid[16];
        h[nh++] = (xs_header_t){"content-type", "application/vnd.apache.avro+binary", 34};
        h[nh++] = w->out_confluent ? (xs_header_t){"xsell.framing", "confluent", 9}
                                   : (xs_header_t){"xsell.framing", "single-object", 13};
        if (w->out_confluent) {
            snprintf(sid, sizeof(sid), "%d", (int)w->out_schema_id);
            h[nh++] = (xs_header_t){"xsell.schema.id", sid, strlen(sid)};
        }
        for (int i = 0; i < w->n_copy_headers; i++) {
            const void *hv = NULL;
            size_t hl = 0;
            if (xs_msg_header(m, w->copy_headers[i], &hv, &hl))
                h[nh++] = (xs_header_t){w->copy_headers[i], hv, hv ? hl : 0};
        }
        if ((err = xs_producer_send(w->producer, w->topic_output, -1, list.user_id,
                                    strlen(list.user_id), w->out.data, w->out.len, h, nh,
                                    errstr, errstr_size)))
            goto out;
        w->st.lists++;
        count_list(w, &list);
        xs_obs_published(w->obs, ev.ts);
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

/* ---- HTTP service (called on the HTTP thread) ------------------------------------- */

static void svc_observe(void *opaque, const char *route, unsigned status, double seconds)
{
    xs_worker_t *w = opaque;
    (void)status;
    xs_obs_http(w->obs, route, seconds);
}

static xs_err_t svc_metrics(void *opaque, xs_buf_t *out)
{
    xs_worker_t *w = opaque;
    return xs_metrics_render(w->metrics, out);
}

static bool svc_healthy(void *opaque, char *reason, size_t reason_size)
{
    xs_worker_t *w = opaque;
    if (!atomic_load(&w->running)) {
        xs_errstr_set(reason, reason_size, "worker loop not running");
        return false;
    }
    double idle = now_ms() - atomic_load(&w->heartbeat_ms);
    if (idle > XS_HEALTH_STALL_MS) {
        xs_errstr_set(reason, reason_size, "worker loop stalled for %.0f s", idle / 1e3);
        return false;
    }
    return true;
}

static bool svc_ready(void *opaque, char *reason, size_t reason_size)
{
    xs_worker_t *w = opaque;
    double down = atomic_load(&w->brokers_down_ms);
    if (atomic_load(&w->running) && atomic_load(&w->ready))
        return true;
    if (!atomic_load(&w->running))
        xs_errstr_set(reason, reason_size, "not running");
    else if (atomic_load(&w->input_lost))
        xs_errstr_set(reason, reason_size, "input lost to retention (input.offset.out_of_range "
                                           "= fail): stopping");
    else if (down > 0)
        xs_errstr_set(reason, reason_size, "Kafka brokers unreachable for %.0f s", down / 1e3);
    else if (atomic_load(&w->n_assigned) == 0)
        xs_errstr_set(reason, reason_size, "no partitions assigned yet (joining the group)");
    else
        xs_errstr_set(reason, reason_size, "catching up after assignment");
    return false;
}

/*
 * An assigned partition's stored offset is below its low watermark (input
 * deleted before it was consumed; the consumer stopped the partition). Logs
 * and counts the lost messages; with skip, goes on from the low watermark,
 * else returns XS_ERR_INPUT_LOST (the worker stops, exit status 5).
 */
static xs_err_t input_lost(xs_worker_t *w, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    int64_t lo = -1, hi = -1;
    char e[256] = "", part[16];
    xs_err_t err = xs_consumer_watermarks(w->consumer, m->topic, m->partition, &lo, &hi, 10000, e,
                                          sizeof(e));
    int64_t lost = !err && lo > m->offset ? lo - m->offset : -1;
    snprintf(part, sizeof(part), "%d", (int)m->partition);
    if (lost > 0)
        xs_metrics_add(w->metrics, w->mid[M_INPUT_LOST], (const char *[]){m->topic, part},
                       (double)lost);
    if (!w->skip_lost_input || lost <= 0) {
        /* with skip too when there is nothing to skip to: the watermark is
         * unknown, or the offset is past the end (a topic recreated) */
        atomic_store(&w->input_lost, true);
        XS_ERROR("input lost", "topic=%s partition=%d offset=%" PRId64 " low_watermark=%" PRId64
                 " lost=%" PRId64 " policy=%s action=\"stopping: the input from offset %" PRId64
                 " on is not there: rebuild the state from what is left "
                 "(--reset-state --from-beginning)%s\"",
                 m->topic, (int)m->partition, m->offset, lo, lost,
                 w->skip_lost_input ? "skip" : "fail", m->offset,
                 w->skip_lost_input ? "" : " or set input.offset.out_of_range=skip");
        xs_errstr_set(errstr, errstr_size, "input lost: %s [%d] offset %" PRId64
                      " is below the low watermark %" PRId64 "%s%s", m->topic, (int)m->partition,
                      m->offset, lo, err ? ": " : "", err ? e : "");
        return XS_ERR_INPUT_LOST;
    }
    XS_ERROR("input lost", "topic=%s partition=%d offset=%" PRId64 " low_watermark=%" PRId64
             " lost=%" PRId64 " policy=skip action=\"skipped to the low watermark\"",
             m->topic, (int)m->partition, m->offset, lo, lost);
    if ((err = xs_consumer_seek(w->consumer, m->topic, m->partition, lo, errstr, errstr_size)))
        return err;
    pthread_mutex_lock(&w->mu);
    part_t *p = find_part(w, m->topic, m->partition, false);
    if (p)
        p->next = lo; /* the next checkpoint stores it even if nothing follows */
    pthread_mutex_unlock(&w->mu);
    return XS_OK;
}

/* Takes mu, waiting at most XS_QUERY_LOCK_MS (the worker may be blocked on
 * Kafka backpressure while it holds it). */
static xs_err_t query_lock(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += XS_QUERY_LOCK_MS / 1000;
    int rc = pthread_mutex_timedlock(&w->mu, &ts);
    if (rc == 0)
        return XS_OK;
    xs_errstr_set(errstr, errstr_size, "worker busy: %s", rc == ETIMEDOUT ? "timed out" : "lock");
    return XS_ERR_IO;
}

static xs_err_t svc_cross_sell(void *opaque, const char *user_id, xs_placement_t placement,
                               const char *const *items, int n_items, int n,
                               const xs_rules_t *rules, xs_list_t *list, bool *known,
                               int *partition, char *errstr, size_t errstr_size)
{
    xs_worker_t *w = opaque;
    xs_err_t err = query_lock(w, errstr, errstr_size);
    int32_t first = -1;
    *known = false;
    *partition = -1;
    if (err)
        return err;
    /* User state is keyed by input partition: look in each assigned one. */
    for (size_t i = 0; user_id && i < w->n_parts && !*known; i++) {
        const part_t *p = &w->parts[i];
        bool dup = false;
        if (!p->assigned)
            continue;
        for (size_t k = 0; k < i && !dup; k++)
            dup = w->parts[k].assigned && w->parts[k].partition == p->partition;
        if (dup)
            continue;
        if (first < 0)
            first = p->partition;
        if ((err = xs_engine_has_user(w->engine, (uint16_t)p->partition, user_id, known, errstr,
                                      errstr_size)))
            goto out;
        if (*known)
            *partition = p->partition;
    }
    /* Unknown here: the cold-start list (trending items). */
    err = xs_engine_recommend_ex(w->engine, (uint16_t)(*known ? *partition : XS_MAX(first, 0)),
                                 user_id, items, n_items, placement, n, rules, list, errstr,
                                 errstr_size);
out:
    pthread_mutex_unlock(&w->mu);
    return err;
}

static xs_err_t svc_neighbours(void *opaque, const char *item_id, xs_class_t cls, int n,
                               xs_neighbour_t **out, int *n_out, xs_item_info_t *info,
                               char *errstr, size_t errstr_size)
{
    xs_worker_t *w = opaque;
    xs_err_t err = query_lock(w, errstr, errstr_size);
    *out = NULL;
    *n_out = 0;
    if (err)
        return err;
    err = xs_engine_neighbours(w->engine, item_id, cls, n, out, n_out, info, errstr, errstr_size);
    pthread_mutex_unlock(&w->mu);
    return err;
}

/* POST /v1/events, on the HTTP thread: the checks Kafka input gets (size of
 * the encoded message, xs_event_validate, a catalog topic for catalog
 * events), then produced to the input topics, keyed as producers key them. */
static xs_err_t svc_event_check(void *opaque, const xs_event_t *ev, char *reason,
                                size_t reason_size)
{
    xs_worker_t *w = opaque;
    xs_buf_t b = {0};
    xs_err_t err = XS_OK;
    if (ev->kind == XS_KIND_ITEM && !*w->topic_catalog) {
        xs_errstr_set(reason, reason_size, "no catalog topic (topics.catalog is empty)");
        return XS_ERR_VALIDATION;
    }
    if (xs_event_validate(ev, &w->limits, reason, reason_size) != XS_OK)
        return XS_ERR_VALIDATION;
    if ((err = xs_codec_encode_event(w->http_codec, ev, &b)) != XS_OK) {
        xs_errstr_set(reason, reason_size, "cannot be encoded: %s", xs_err2str(err));
        err = XS_ERR_VALIDATION;
    } else if (b.len > w->max_message_bytes) {
        xs_errstr_set(reason, reason_size,
                      "message of %zu bytes is larger than limits.max_message_bytes (%zu)", b.len,
                      w->max_message_bytes);
        err = XS_ERR_TOO_LARGE;
    }
    xs_buf_free(&b);
    return err;
}

static xs_err_t svc_events_publish(void *opaque, const xs_event_t *evs, size_t n, char *errstr,
                                   size_t errstr_size)
{
    xs_worker_t *w = opaque;
    xs_buf_t b = {0};
    xs_err_t err = XS_OK;
    for (size_t i = 0; i < n && !err; i++) {
        const xs_event_t *ev = &evs[i];
        const char *topic = ev->kind == XS_KIND_CLICK  ? w->topic_clicks
                            : ev->kind == XS_KIND_CART ? w->topic_cart
                                                       : w->topic_catalog;
        const char *key = ev->kind == XS_KIND_ITEM ? ev->item_id : ev->user_id;
        xs_buf_reset(&b);
        if ((err = xs_codec_encode_event(w->http_codec, ev, &b)) != XS_OK) {
            xs_errstr_set(errstr, errstr_size, "encode: %s", xs_err2str(err));
            break;
        }
        err = xs_producer_send(w->http_producer, topic, -1, key, strlen(key), b.data, b.len, NULL,
                               0, errstr, errstr_size);
    }
    xs_buf_free(&b);
    if (!err)
        err = xs_producer_flush(w->http_producer, 10000, errstr, errstr_size);
    return err ? XS_ERR_IO : XS_OK;
}

/* The bearer token of the write endpoints from http.auth.token.file: the
 * file's first line, at least 16 bytes. */
static char *read_token(const char *path, char *errstr, size_t errstr_size)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f) {
        xs_errstr_set(errstr, errstr_size, "http.auth.token.file %s: %s", path, strerror(errno));
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
        xs_errstr_set(errstr, errstr_size,
                      "http.auth.token.file %s: the token (first line) must be at least 16 "
                      "bytes without spaces",
                      path);
        return NULL;
    }
    char *t = xs_strdup(buf);
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
        xs_errstr_set(errstr, errstr_size, "http.port.file %s: %s", path, strerror(errno));
        return XS_ERR_IO;
    }
    return XS_OK;
}

static xs_err_t start_http(xs_worker_t *w, char *errstr, size_t errstr_size)
{
    const char *address = xs_config_str(w->cfg, "http.address");
    const char *port_file = xs_config_str(w->cfg, "http.port.file");
    const char *token_file = xs_config_str(w->cfg, "http.auth.token.file");
    char *token = NULL;
    if (!*address)
        return XS_OK;
    bool events = xs_config_bool(w->cfg, "http.events.enabled");
    if (events && !*token_file) {
        xs_errstr_set(errstr, errstr_size,
                      "http.events.enabled needs http.auth.token.file (write endpoints require "
                      "a bearer token)");
        return XS_ERR_CONFIG;
    }
    if (events && !(token = read_token(token_file, errstr, errstr_size)))
        return XS_ERR_CONFIG;
    xs_http_opts_t ho = {
        .address = address,
        .max_connections = (unsigned)xs_config_int(w->cfg, "http.max.connections"),
        .timeout_s = (unsigned)xs_config_int(w->cfg, "http.timeout.seconds"),
        .max_id_len = w->limits.max_id_len,
        .events = events,
        .auth_token = token,
        .max_body = (size_t)xs_config_int(w->cfg, "http.events.max.bytes"),
        .events_rate = (unsigned)xs_config_int(w->cfg, "http.events.rate"),
        .shop_dir = xs_config_str(w->cfg, "http.shop.dir"),
    };
    xs_http_service_t svc = {
        .opaque = w,
        .metrics = svc_metrics,
        .healthy = svc_healthy,
        .ready = svc_ready,
        .cross_sell = svc_cross_sell,
        .neighbours = svc_neighbours,
        .observe = svc_observe,
        .event_check = svc_event_check,
        .events_publish = svc_events_publish,
    };
    w->http = xs_http_new(&ho, &svc, errstr, errstr_size);
    if (token) {
        memset(token, 0, strlen(token));
        free(token);
    }
    if (!w->http)
        return XS_ERR_IO;
    if (*port_file)
        return write_port_file(port_file, xs_http_address(w->http), errstr, errstr_size);
    return XS_OK;
}

/*
 * The click and cart topics are both keyed by user and must have the same
 * partition count, so that one user's events of both kinds land on the same
 * partition number and so in the same worker's state. Refuses to start when
 * the broker's metadata shows different counts; a topic not (yet) known or
 * a metadata failure is left to the consumer (it waits for it).
 */
static xs_err_t check_input_parity(xs_worker_t *w, const char *bootstrap, const xs_kv_t *kconf,
                                   size_t n_kafka, char *errstr, size_t errstr_size)
{
    char why[512];
    int clicks = xs_kafka_partition_count(bootstrap, kconf, n_kafka, w->topic_clicks,
                                          XS_PARITY_TIMEOUT_MS, why, sizeof(why));
    int cart = clicks > 0 ? xs_kafka_partition_count(bootstrap, kconf, n_kafka, w->topic_cart,
                                                     XS_PARITY_TIMEOUT_MS, why, sizeof(why))
                          : -1;
    if (clicks > 0 && cart > 0 && clicks != cart) {
        xs_errstr_set(errstr, errstr_size,
                      "input topics %s (%d partitions) and %s (%d partitions) must have the same "
                      "partition count: both are keyed by user_id and one user's events must land "
                      "on the same partition number (`xsell topics check` reports the topics)",
                      w->topic_clicks, clicks, w->topic_cart, cart);
        return XS_ERR_CONFIG;
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
    w->from_beginning = opts->from_beginning;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        xs_errstr_set(errstr, errstr_size, "cannot create a mutex");
        free(w);
        return NULL;
    }
    w->mu_init = true;
    w->metrics = xs_metrics_new(0);
    w->listmap = xs_listmap_new((size_t)xs_config_int(cfg, "metrics.attribution.lists"));
    if (!w->metrics || !w->listmap || define_metrics(w) != XS_OK) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (w->from_beginning && xs_store_dir_nonempty(xs_config_str(cfg, "state.dir"))) {
        xs_errstr_set(errstr, errstr_size,
                      "--from-beginning needs an empty state directory (%s is not empty and "
                      "its state would count every event twice); use --reset-state to rebuild "
                      "from scratch",
                      xs_config_str(cfg, "state.dir"));
        goto fail;
    }
    w->topic_clicks = xs_config_str(cfg, "topics.clicks");
    w->topic_cart = xs_config_str(cfg, "topics.cart");
    w->topic_catalog = xs_config_str(cfg, "topics.catalog");
    w->topic_output = xs_config_str(cfg, "topics.output");
    w->topic_dlq = xs_config_str(cfg, "topics.dlq");
    w->max_message_bytes = (size_t)xs_config_int(cfg, "limits.max_message_bytes");
    {
        /* librdkafka's message.max.bytes (default 1000000) less room for headers. */
        const char *mmb = xs_config_get_raw(cfg, "kafka.message.max.bytes");
        long long max = mmb ? atoll(mmb) : 1000000;
        w->dlq_max_bytes = max > 16384 ? (size_t)(max - 8192) : 8192;
    }
    w->dirty_limit = (size_t)xs_config_int(cfg, "checkpoint.dirty.bytes");
    w->state_sync = xs_config_bool(cfg, "state.sync");
    w->skip_lost_input = !strcmp(xs_config_str(cfg, "input.offset.out_of_range"), "skip");
    w->unreachable_timeout_ms = (double)xs_config_int(cfg, "broker.unreachable.timeout.ms");
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
    if (xs_store_wal_damage(w->store)) {
        XS_ERROR("state write-ahead log damaged", "state_dir=%s error=\"%s\" action=\"recovered "
                 "to the last intact checkpoint; the input after it is consumed again\"",
                 xs_config_str(cfg, "state.dir"), xs_store_wal_damage(w->store));
        xs_metrics_set(w->metrics, w->mid[M_WAL_DAMAGED], NULL, 1);
    } else {
        xs_metrics_set(w->metrics, w->mid[M_WAL_DAMAGED], NULL, 0);
    }
    if (!(w->batch = xs_batch_new(w->store))) {
        xs_errstr_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&w->cp_mu, NULL) != 0) {
        xs_errstr_set(errstr, errstr_size, "cannot create a mutex");
        goto fail;
    }
    if (pthread_cond_init(&w->cp_cv, NULL) != 0) {
        pthread_mutex_destroy(&w->cp_mu);
        xs_errstr_set(errstr, errstr_size, "cannot create a condition variable");
        goto fail;
    }
    w->cp_init = true;
    if (pthread_create(&w->writer, NULL, cp_writer, w) != 0) {
        xs_errstr_set(errstr, errstr_size, "cannot start the checkpoint writer");
        goto fail;
    }
    w->writer_on = true;
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
    /* The live hit-rate series exist from the start, at 0, for every placement and arm. */
    w->n_arms = experiment.n_arms;
    for (int a = 0; a < experiment.n_arms; a++)
        snprintf(w->arm_names[a], sizeof(w->arm_names[a]), "%s", experiment.arms[a].name);
    for (int a = 0; a < (w->n_arms ? w->n_arms : 1); a++)
        for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
            const char *lv[] = {xs_placement_name((xs_placement_t)pl),
                                w->n_arms ? w->arm_names[a] : "none"};
            xs_metrics_add(w->metrics, w->mid[M_ADD_OPPS], lv, 0);
            xs_metrics_add(w->metrics, w->mid[M_ADD_HITS], lv, 0);
        }
    {
        const char *in[] = {w->topic_clicks, w->topic_cart, w->topic_catalog};
        if (!(w->obs = xs_obs_new(w->metrics, in, XS_ARRAY_SIZE(in)))) {
            xs_errstr_set(errstr, errstr_size, "out of memory (metrics)");
            goto fail;
        }
        touch_series(w);
    }
    if (!(w->codec = xs_codec_new(errstr, errstr_size)))
        goto fail;
    if (xs_config_each_confluent_schema(cfg, add_confluent, w, errstr, errstr_size) != XS_OK)
        goto fail;
    {
        /* output.headers.copy: a comma-separated list of header names */
        const char *p = xs_config_str(cfg, "output.headers.copy");
        while (*p && w->n_copy_headers < (int)XS_ARRAY_SIZE(w->copy_headers)) {
            size_t len = strcspn(p, ",");
            while (len && p[0] == ' ')
                p++, len--;
            size_t l2 = len;
            while (l2 && p[l2 - 1] == ' ')
                l2--;
            if (l2 && l2 < sizeof(w->copy_headers[0]))
                snprintf(w->copy_headers[w->n_copy_headers++], sizeof(w->copy_headers[0]),
                         "%.*s", (int)l2, p);
            p += len + (p[len] == ',');
        }
    }
    w->out_schema_id = -1;
    w->out_confluent = !strcmp(xs_config_str(cfg, "output.framing"), "confluent");
    w->registry_retry_max_ms = (double)xs_config_int(cfg, "schema.registry.retry.max.ms");
    if (*xs_config_str(cfg, "schema.registry.url")) {
        xs_registry_opts_t ro = {
            .url = xs_config_str(cfg, "schema.registry.url"),
            .user = xs_config_str(cfg, "schema.registry.basic.auth.user"),
            .password = xs_config_str(cfg, "schema.registry.basic.auth.password"),
            .bearer_token = xs_config_str(cfg, "schema.registry.bearer.token"),
            .ca_location = xs_config_str(cfg, "schema.registry.ssl.ca.location"),
            .cert_location = xs_config_str(cfg, "schema.registry.ssl.certificate.location"),
            .key_location = xs_config_str(cfg, "schema.registry.ssl.key.location"),
            .timeout_ms = (long)xs_config_int(cfg, "schema.registry.timeout.ms"),
        };
        if (!(w->registry = xs_registry_new(&ro, errstr, errstr_size)))
            goto fail;
    } else if (w->out_confluent) {
        xs_errstr_set(errstr, errstr_size, "output.framing = confluent needs schema.registry.url");
        goto fail;
    }

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
    if (check_input_parity(w, bootstrap, kconf, n_kafka, errstr, errstr_size) != XS_OK)
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
        .offset_reset_error = true,
    };
    if (!(w->consumer = xs_consumer_new(&co, errstr, errstr_size)))
        goto fail;
    if (xs_config_bool(cfg, "http.events.enabled") && *xs_config_str(cfg, "http.address")) {
        kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
        if (!(w->http_codec = xs_codec_new(errstr, errstr_size)) ||
            !(w->http_producer = xs_producer_new(bootstrap, kconf, n_kafka, errstr, errstr_size)))
            goto fail;
    }
    if (start_http(w, errstr, errstr_size) != XS_OK)
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

/* Whether the dirty records exceed checkpoint.dirty.bytes (the engine keeps
 * its dirty records listed, so this costs no walk of the cache). */
static bool dirty_over(xs_worker_t *w)
{
    xs_engine_stats_t es;
    pthread_mutex_lock(&w->mu);
    xs_engine_stats(w->engine, &es);
    pthread_mutex_unlock(&w->mu);
    return es.dirty_bytes > w->dirty_limit;
}

xs_err_t xs_worker_run(xs_worker_t *w, volatile sig_atomic_t *stop, char *errstr,
                       size_t errstr_size)
{
    double interval = (double)xs_config_int(w->cfg, "commit.interval.ms");
    double progress = xs_config_double(w->cfg, "log.progress.seconds") * 1e3;
    double last_cp = now_ms(), last_progress = last_cp, t_start = last_cp;
    double last_gauges = 0;
    uint64_t last_events = 0;
    xs_err_t err = XS_OK;
    atomic_store(&w->heartbeat_ms, last_cp);
    atomic_store(&w->running, true);
    w->stop = stop;
    XS_INFO("worker started", "state_dir=%s group=%s until_end=%s",
            xs_config_str(w->cfg, "state.dir"), xs_config_str(w->cfg, "group.id"),
            w->until_end ? "true" : "false");
    while (!*stop) {
        xs_msg_t m;
        /* while a checkpoint is in flight, turn often enough to move it on */
        int cp = atomic_load(&w->cp_state);
        err = xs_consumer_poll(w->consumer, cp == CP_IDLE ? 100 : 2, &m, errstr, errstr_size);
        bool idle = err == XS_ERR_EOF;
        if (w->hook_err) {
            err = w->hook_err;
            xs_errstr_set(errstr, errstr_size, "%s", w->hook_errstr);
            break;
        }
        if (err == XS_OK && ((err = resolve_schema(w, &m, errstr, errstr_size)) != XS_OK ||
                             (err = register_output(w, errstr, errstr_size)) != XS_OK)) {
            if (err == XS_ERR_EOF) { /* stopped while waiting for the registry */
                err = XS_OK;
                break;
            }
            break;
        }
        if (err == XS_OK) {
            double t0 = now_ms();
            pthread_mutex_lock(&w->mu);
            err = process(w, &m, errstr, errstr_size);
            pthread_mutex_unlock(&w->mu);
            xs_obs_event(w->obs, m.topic, (now_ms() - t0) / 1e3);
            if (err != XS_OK)
                break;
        } else if (err == XS_ERR_INPUT_LOST) {
            if ((err = input_lost(w, &m, errstr, errstr_size)) != XS_OK)
                break;
        } else if (err != XS_ERR_EOF) {
            break;
        }
        err = XS_OK;
        {
            int64_t down = 0;
            bool brokers_down = xs_consumer_brokers_down(w->consumer, &down);
            atomic_store(&w->brokers_down_ms, brokers_down ? XS_MAX((double)down, 1.0) : 0.0);
            atomic_store(&w->n_assigned, xs_consumer_assigned_count(w->consumer));
            if (w->until_end && w->unreachable_timeout_ms > 0 &&
                (double)down >= w->unreachable_timeout_ms) {
                xs_errstr_set(errstr, errstr_size,
                              "--until-end: no Kafka broker reachable for %.0f s "
                              "(broker.unreachable.timeout.ms)",
                              (double)down / 1e3);
                err = XS_ERR_TIMEOUT;
                break;
            }
        }
        xs_producer_poll(w->producer);
        double t = now_ms();
        atomic_store(&w->heartbeat_ms, t);
        if (!atomic_load(&w->ready) && xs_consumer_caught_up(w->consumer)) {
            atomic_store(&w->ready, true);
            XS_INFO("ready", "events=%" PRIu64 " partitions=%d", w->st.events,
                    xs_consumer_assigned_count(w->consumer));
        }
        if (t - last_gauges >= 1000) {
            refresh_gauges(w);
            last_gauges = t;
        }
        if ((err = checkpoint_advance(w, idle ? 0 : XS_CP_STEP_RECORDS, false, false, errstr,
                                      errstr_size)) != XS_OK ||
            (err = checkpoint_finish(w, errstr, errstr_size)) != XS_OK)
            break;
        bool over = dirty_over(w);
        /* over the bound with one in flight (a slow disk): wait for it */
        if (over && atomic_load(&w->cp_state) != CP_IDLE &&
            (err = checkpoint_drain(w, errstr, errstr_size)) != XS_OK)
            break;
        if ((over || t - last_cp >= interval) && atomic_load(&w->cp_state) == CP_IDLE) {
            bool started = false;
            if ((err = checkpoint_start(w, &started, errstr, errstr_size)) != XS_OK)
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
    checkpoint_wait(w); /* a batch in flight was filled before any failure */
    if (!err)
        err = checkpoint_finish(w, errstr, errstr_size);
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
    atomic_store(&w->running, false);
    atomic_store(&w->ready, false);
    refresh_gauges(w);
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
    xs_http_destroy(w->http); /* first: no query may run past this point */
    xs_consumer_destroy(w->consumer); /* may checkpoint (on_revoke) */
    if (w->writer_on) {
        pthread_mutex_lock(&w->cp_mu);
        w->cp_stop = true; /* the writer finishes a batch in flight first */
        pthread_cond_broadcast(&w->cp_cv);
        pthread_mutex_unlock(&w->cp_mu);
        pthread_join(w->writer, NULL);
    }
    if (w->cp_init) {
        pthread_cond_destroy(&w->cp_cv);
        pthread_mutex_destroy(&w->cp_mu);
    }
    xs_producer_destroy(w->producer);
    xs_codec_destroy(w->codec);
    xs_producer_destroy(w->http_producer);
    xs_codec_destroy(w->http_codec);
    xs_engine_destroy(w->engine);
    xs_batch_destroy(w->batch);
    xs_store_close(w->store);
    for (size_t i = 0; i < w->n_parts; i++)
        free(w->parts[i].topic);
    free(w->parts);
    free(w->cp_offs);
    free(w->commit_offs);
    for (size_t i = 0; i < w->n_bare; i++)
        free(w->bare_topics[i]);
    free(w->bare_topics);
    xs_buf_free(&w->out);
    xs_listmap_destroy(w->listmap);
    xs_obs_destroy(w->obs);
    xs_registry_destroy(w->registry);
    xs_metrics_destroy(w->metrics);
    if (w->mu_init)
        pthread_mutex_destroy(&w->mu);
    free(w);
}
