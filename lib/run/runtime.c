/*
 * runtime.c — the processor runtime (see include/xsell/runtime.h): the
 * loop, the rebalance hooks, readiness and the gauges; the checkpoint
 * protocol is checkpoint.c, the routing router.c.
 *
 * Threads: the loop's thread runs everything here but the query entry
 * points (xs_runtime_lock, _next_partition, _healthy, _ready), which the
 * HTTP thread calls. The processor and the partition table are shared with
 * the queries under `mu`, which the loop holds per message (route, process,
 * publish), while a checkpoint starts, puts a step of its records and
 * finishes (not while waiting for the producer nor for the batch write) and
 * in the rebalance hooks, so a query waits at most for one message or one
 * step (a whole snapshot when a checkpoint is completed synchronously).
 */
#include "xsell/runtime.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xsell/changelog.h"
#include "xsell/checkpoint.h"
#include "xsell/global.h"
#include "xsell/kafka.h"
#include "xsell/log.h"
#include "xsell/obs.h"

/* Snapshot records the loop puts into the batch per turn while events come;
 * a turn without an event puts all that remain. */
#define XS_CP_STEP_RECORDS 128
/* A loop that has not turned for this long is reported unhealthy (a
 * checkpoint waits at most 60 s for the producer). */
#define XS_HEALTH_STALL_MS 120000.0
/* Longest wait of a query for the lock. */
#define XS_QUERY_LOCK_MS 5000
/* Records of the global tables read per loop turn. */
#define XS_GLOBAL_POLL_RECORDS 64
/* Budget of each metadata request of the start-up partition parity check. */
#define XS_PARITY_TIMEOUT_MS 5000

struct xs_runtime {
    const xs_config_t *cfg;
    const xs_processor_t *proc;
    xs_router_t *router;
    xs_worker_metrics_t *metrics;
    xs_obs_t *obs;
    xs_store_t *store;
    bool until_end;
    const char *topic_clicks, *topic_cart, *topic_catalog;
    xs_producer_t *producer;
    xs_consumer_t *consumer;
    xs_checkpoint_t *cp;
    xs_changelog_t *cl;  /* NULL: changelog.enable=false */
    xs_global_t *global; /* NULL: items.global=false */
    bool from_beginning;
    xs_runtime_stats_t st; /* messages, events, lists, lag */
    xs_err_t hook_err;     /* error raised inside a rebalance hook */
    char hook_errstr[640];
    size_t dirty_limit;
    pthread_mutex_t mu; /* processor + partition table, shared with queries */
    bool mu_init;
    volatile sig_atomic_t *stop;
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

struct xs_emit {
    xs_runtime_t *rt;
    const xs_input_t *in;
    bool emitted;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Ready or not, for /readyz and xsell_ready alike (the loop's thread). */
static void set_ready(xs_runtime_t *rt, bool ready)
{
    atomic_store(&rt->ready, ready);
    if (rt->metrics)
        xs_worker_metrics_ready(rt->metrics, ready);
}

/* ---- rebalance hooks ------------------------------------------------------------ */

/* A restore in the assignment hook is the loop's work: the loop is alive. */
static void restore_heartbeat(void *opaque)
{
    xs_runtime_t *rt = opaque;
    atomic_store(&rt->heartbeat_ms, now_ms());
}

/* Whether the other user topic's partition of this number is assigned
 * already: it restored the partition's state and offsets (one restore per
 * partition number: a second one could replace the state under the offsets
 * the first partition was assigned at). */
static bool partner_assigned(xs_runtime_t *rt, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < xs_checkpoint_n_partitions(rt->cp); i++) {
        const char *t;
        int32_t p;
        if (xs_checkpoint_partition(rt->cp, i, &t, &p) && p == partition && strcmp(t, topic) &&
            xs_changelog_user_topic(rt->cl, t))
            return true;
    }
    return false;
}

static void on_assign(void *opaque, const char *topic, int32_t partition, int64_t *offset)
{
    xs_runtime_t *rt = opaque;
    bool found = false;
    char errstr[256];
    if (!rt->cp)
        return; /* not started (a failed start closing the consumer) */
    set_ready(rt, false);
    if (rt->cl && !rt->from_beginning && !rt->hook_err && xs_changelog_user_topic(rt->cl, topic) &&
        !partner_assigned(rt, topic, partition)) {
        /* before the stored offsets are read: they may come from the changelog */
        bool restored = false;
        char e[600];
        xs_err_t rerr = xs_changelog_restore(rt->cl, partition, &restored, e, sizeof(e));
        if (rerr) {
            rt->hook_err = rerr;
            snprintf(rt->hook_errstr, sizeof(rt->hook_errstr), "restore: %s", e);
        }
    }
    pthread_mutex_lock(&rt->mu);
    xs_err_t err =
        xs_checkpoint_assign(rt->cp, topic, partition, offset, &found, errstr, sizeof(errstr));
    if (err) {
        rt->hook_err = err;
        if (err != XS_ERR_NOMEM)
            snprintf(rt->hook_errstr, sizeof(rt->hook_errstr), "%s", errstr);
        goto out;
    }
    XS_INFO("partition assigned", "topic=%s partition=%d start=%s%" PRId64, topic, partition,
            found ? "" : "beginning/", found ? *offset : 0);
    if (rt->proc->assigned)
        rt->proc->assigned(rt->proc->self, topic, partition);
out:
    pthread_mutex_unlock(&rt->mu);
}

static void on_revoke(void *opaque, const char *topic, int32_t partition)
{
    xs_runtime_t *rt = opaque;
    char errstr[512];
    if (!rt->cp)
        return; /* not started: nothing was consumed */
    if (rt->cl && !rt->hook_err && xs_consumer_assignment_lost(rt->consumer)) {
        /* Another instance may own the partition already and have restored
         * it: a checkpoint now would write this one's older state over its
         * (changelog.h, C5). The state since the last checkpoint is dropped
         * with the process; a restart rejoins and restores. Without the
         * changelog a checkpoint writes the local store only, as before. */
        rt->hook_err = XS_ERR_KAFKA;
        snprintf(rt->hook_errstr, sizeof(rt->hook_errstr),
                 "partitions lost: the group gave them to another instance (this one's session "
                 "timed out, session.timeout.ms: a pause or a network split); stopping without a "
                 "checkpoint (a restart rejoins the group and restores its partitions)");
    }
    if (!rt->hook_err && xs_checkpoint_run(rt->cp, errstr, sizeof(errstr)) != XS_OK) {
        rt->hook_err = XS_ERR_KAFKA;
        snprintf(rt->hook_errstr, sizeof(rt->hook_errstr), "checkpoint on revoke: %s", errstr);
    }
    set_ready(rt, false);
    pthread_mutex_lock(&rt->mu);
    xs_checkpoint_revoke(rt->cp, topic, partition);
    /* Another worker owns this partition now: its state must be re-read. */
    if (rt->proc->revoked)
        rt->proc->revoked(rt->proc->self, topic, partition);
    pthread_mutex_unlock(&rt->mu);
    XS_INFO("partition revoked", "topic=%s partition=%d", topic, partition);
}

/* ---- processing ---------------------------------------------------------------------- */

xs_err_t xs_runtime_emit(xs_emit_t *emit, const xs_list_t *list, char *errstr, size_t errstr_size)
{
    xs_runtime_t *rt = emit->rt;
    emit->emitted = true;
    xs_err_t err =
        xs_router_publish(rt->router, rt->producer, emit->in->msg, list, errstr, errstr_size);
    if (err)
        return err;
    rt->st.lists++;
    xs_obs_published(rt->obs, emit->in->ev.ts);
    return XS_OK;
}

/* One message (under mu): routed, processed, its partition moved on. */
static xs_err_t process(xs_runtime_t *rt, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    xs_input_t in;
    xs_emit_t emit = {rt, &in, false};
    rt->st.messages++;
    xs_err_t err = xs_router_route(rt->router, rt->producer, m, &in, errstr, errstr_size);
    if (!err && in.route != XS_ROUTE_DEAD) {
        err = rt->proc->process(rt->proc->self, &in, &emit, errstr, errstr_size);
        if (!err || emit.emitted) /* applied, even if what it triggered was not sent */
            rt->st.events++;
    }
    xs_router_input_clear(&in);
    if (!err)
        err = xs_checkpoint_consumed(rt->cp, m->topic, m->partition, m->offset + 1);
    return err;
}

static bool wait_ms(void *opaque, double ms);

/* A catalog record read by the global reader: as one of the group's. */
static xs_err_t global_process(void *opaque, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    xs_runtime_t *rt = opaque;
    xs_msg_t msg = *m;
    xs_err_t err = xs_router_prepare(rt->router, &msg, wait_ms, rt, errstr, errstr_size);
    if (err)
        return err;
    double t0 = now_ms();
    pthread_mutex_lock(&rt->mu);
    err = process(rt, &msg, errstr, errstr_size);
    pthread_mutex_unlock(&rt->mu);
    xs_obs_event(rt->obs, msg.topic, (now_ms() - t0) / 1e3);
    return err;
}

/* Gauges that are sampled rather than counted; on the loop's thread. */
static void refresh_gauges(xs_runtime_t *rt)
{
    xs_processor_stats_t ps = {0};
    pthread_mutex_lock(&rt->mu);
    rt->proc->stats(rt->proc->self, &ps);
    pthread_mutex_unlock(&rt->mu);
    rt->st.lag = xs_consumer_lag(rt->consumer);
    /* Per partition; the total over the partitions whose lag is known, and
     * how many are not known (never -1). */
    int64_t known = 0;
    int unknown = 0;
    for (size_t i = 0; i < xs_checkpoint_n_partitions(rt->cp); i++) {
        const char *topic;
        int32_t partition;
        bool assigned = xs_checkpoint_partition(rt->cp, i, &topic, &partition);
        int64_t lag = assigned ? xs_consumer_partition_lag(rt->consumer, topic, partition) : -1;
        xs_obs_partition_lag(rt->obs, topic, partition, lag);
        if (lag >= 0)
            known += lag;
        else if (assigned)
            unknown++;
    }
    xs_obs_lag_unknown(rt->obs, unknown);
    xs_obs_sample_process(rt->obs);
    xs_worker_gauges_t g = {
        .lag_known = known,
        .assigned = xs_consumer_assigned_count(rt->consumer),
        .ready = atomic_load(&rt->ready),
        .cache_hits = ps.cache_hits,
        .cache_misses = ps.cache_misses,
        .store_bytes = xs_store_size_bytes(rt->store),
    };
    xs_worker_metrics_gauges(rt->metrics, &g);
}

/* Sleeps ms in small steps, keeping the loop's heartbeat fresh (a wait on
 * the registry is not a stalled worker); false when a stop was asked. */
static bool wait_ms(void *opaque, double ms)
{
    xs_runtime_t *rt = opaque;
    for (double t0 = now_ms(); now_ms() - t0 < ms;) {
        if (rt->stop && *rt->stop)
            return false;
        atomic_store(&rt->heartbeat_ms, now_ms());
        xs_producer_poll(rt->producer);
        usleep(20000);
    }
    return !(rt->stop && *rt->stop);
}

/*
 * An assigned partition's stored offset is below its low watermark (input
 * deleted before it was consumed; the consumer stopped the partition). Logs
 * and counts the lost messages; with skip, goes on from the low watermark,
 * else returns XS_ERR_INPUT_LOST (the loop stops, exit status 5).
 */
static xs_err_t input_lost(xs_runtime_t *rt, const xs_msg_t *m, char *errstr, size_t errstr_size)
{
    int64_t lo = -1, hi = -1;
    char e[256] = "";
    xs_err_t err =
        xs_consumer_watermarks(rt->consumer, m->topic, m->partition, &lo, &hi, 10000, e, sizeof(e));
    int64_t lost = !err && lo > m->offset ? lo - m->offset : -1;
    if (lost > 0)
        xs_worker_metrics_input_lost(rt->metrics, m->topic, m->partition, lost);
    if (!rt->skip_lost_input || lost <= 0) {
        /* with skip too when there is nothing to skip to: the watermark is
         * unknown, or the offset is past the end (a topic recreated) */
        atomic_store(&rt->input_lost, true);
        XS_ERROR("input lost",
                 "topic=%s partition=%d offset=%" PRId64 " low_watermark=%" PRId64 " lost=%" PRId64
                 " policy=%s action=\"stopping: the input from offset %" PRId64
                 " on is not there: rebuild the state from what is left "
                 "(--reset-state --from-beginning)%s\"",
                 m->topic, (int)m->partition, m->offset, lo, lost,
                 rt->skip_lost_input ? "skip" : "fail", m->offset,
                 rt->skip_lost_input ? "" : " or set input.offset.out_of_range=skip");
        xs_err_set(errstr, errstr_size,
                   "input lost: %s [%d] offset %" PRId64 " is below the low watermark %" PRId64
                   "%s%s",
                   m->topic, (int)m->partition, m->offset, lo, err ? ": " : "", err ? e : "");
        return XS_ERR_INPUT_LOST;
    }
    XS_ERROR("input lost",
             "topic=%s partition=%d offset=%" PRId64 " low_watermark=%" PRId64 " lost=%" PRId64
             " policy=skip action=\"skipped to the low watermark\"",
             m->topic, (int)m->partition, m->offset, lo, lost);
    if ((err = xs_consumer_seek(rt->consumer, m->topic, m->partition, lo, errstr, errstr_size)))
        return err;
    pthread_mutex_lock(&rt->mu);
    xs_checkpoint_skip(rt->cp, m->topic, m->partition, lo); /* stored even if nothing follows */
    pthread_mutex_unlock(&rt->mu);
    return XS_OK;
}

/* Whether the dirty state exceeds checkpoint.dirty.bytes (the processor
 * keeps its dirty records listed, so this costs no walk of its state). */
static bool dirty_over(xs_runtime_t *rt)
{
    xs_processor_stats_t ps = {0};
    pthread_mutex_lock(&rt->mu);
    rt->proc->stats(rt->proc->self, &ps);
    pthread_mutex_unlock(&rt->mu);
    return ps.dirty_bytes > rt->dirty_limit;
}

xs_err_t xs_runtime_run(xs_runtime_t *rt, volatile sig_atomic_t *stop, char *errstr,
                        size_t errstr_size)
{
    double interval = (double)xs_config_int(rt->cfg, "commit.interval.ms");
    double progress = xs_config_double(rt->cfg, "log.progress.seconds") * 1e3;
    double last_cp = now_ms(), last_progress = last_cp, t_start = last_cp;
    double last_gauges = 0;
    uint64_t last_events = 0;
    xs_err_t err = XS_OK;
    atomic_store(&rt->heartbeat_ms, last_cp);
    atomic_store(&rt->running, true);
    rt->stop = stop;
    XS_INFO("worker started", "state_dir=%s group=%s until_end=%s",
            xs_config_str(rt->cfg, "state.dir"), xs_config_str(rt->cfg, "group.id"),
            rt->until_end ? "true" : "false");
    bool global_idle = true;
    while (!*stop) {
        xs_msg_t m;
        /* while a checkpoint is in flight, or the global tables have more,
         * turn often enough to move them on */
        bool busy = xs_checkpoint_busy(rt->cp);
        err = xs_consumer_poll(rt->consumer,
                               !global_idle ? 0
                               : busy       ? 2
                                            : 100,
                               &m, errstr, errstr_size);
        bool idle = err == XS_ERR_EOF;
        if (rt->hook_err) {
            err = rt->hook_err;
            xs_err_set(errstr, errstr_size, "%s", rt->hook_errstr);
            break;
        }
        if (err == XS_OK &&
            (err = xs_router_prepare(rt->router, &m, wait_ms, rt, errstr, errstr_size)) != XS_OK) {
            if (err == XS_ERR_EOF) { /* stopped while waiting for the registry */
                err = XS_OK;
                break;
            }
            break;
        }
        if (err == XS_OK) {
            double t0 = now_ms();
            pthread_mutex_lock(&rt->mu);
            err = process(rt, &m, errstr, errstr_size);
            pthread_mutex_unlock(&rt->mu);
            xs_obs_event(rt->obs, m.topic, (now_ms() - t0) / 1e3);
            if (err != XS_OK)
                break;
        } else if (err == XS_ERR_INPUT_LOST) {
            if ((err = input_lost(rt, &m, errstr, errstr_size)) != XS_OK)
                break;
        } else if (err != XS_ERR_EOF) {
            break;
        }
        err = XS_OK;
        if (rt->global) {
            if ((err = xs_global_poll(rt->global, XS_GLOBAL_POLL_RECORDS, &global_idle, errstr,
                                      errstr_size)) != XS_OK)
                break;
            idle = idle && global_idle;
        }
        {
            int64_t down = 0;
            bool brokers_down = xs_consumer_brokers_down(rt->consumer, &down);
            atomic_store(&rt->brokers_down_ms, brokers_down ? XS_MAX((double)down, 1.0) : 0.0);
            atomic_store(&rt->n_assigned, xs_consumer_assigned_count(rt->consumer));
            if (rt->until_end && rt->unreachable_timeout_ms > 0 &&
                (double)down >= rt->unreachable_timeout_ms) {
                xs_err_set(errstr, errstr_size,
                           "--until-end: no Kafka broker reachable for %.0f s "
                           "(broker.unreachable.timeout.ms)",
                           (double)down / 1e3);
                err = XS_ERR_TIMEOUT;
                break;
            }
        }
        xs_producer_poll(rt->producer);
        double t = now_ms();
        atomic_store(&rt->heartbeat_ms, t);
        if (!atomic_load(&rt->ready) && xs_consumer_caught_up(rt->consumer) &&
            (!rt->global || xs_global_read_up(rt->global))) {
            set_ready(rt, true);
            XS_INFO("ready", "events=%" PRIu64 " partitions=%d", rt->st.events,
                    xs_consumer_assigned_count(rt->consumer));
        }
        if (t - last_gauges >= 1000) {
            refresh_gauges(rt);
            last_gauges = t;
        }
        if ((err = xs_checkpoint_advance(rt->cp, idle ? 0 : XS_CP_STEP_RECORDS, false, false,
                                         errstr, errstr_size)) != XS_OK ||
            (err = xs_checkpoint_finish(rt->cp, errstr, errstr_size)) != XS_OK)
            break;
        bool over = dirty_over(rt);
        /* over the bound with one in flight (a slow disk): wait for it */
        if (over && xs_checkpoint_busy(rt->cp) &&
            (err = xs_checkpoint_drain(rt->cp, errstr, errstr_size)) != XS_OK)
            break;
        if ((over || t - last_cp >= interval) && !xs_checkpoint_busy(rt->cp)) {
            bool started = false;
            if ((err = xs_checkpoint_start(rt->cp, &started, errstr, errstr_size)) != XS_OK)
                break;
            last_cp = now_ms();
        }
        if (progress > 0 && t - last_progress >= progress) {
            xs_runtime_stats_t st;
            rt->st.lag = xs_consumer_lag(rt->consumer);
            xs_runtime_stats(rt, &st);
            XS_INFO("progress",
                    "events=%" PRIu64 " events_per_s=%.0f lists=%" PRIu64 " dlq=%" PRIu64
                    " lag=%" PRId64,
                    rt->st.events, (rt->st.events - last_events) / ((t - last_progress) / 1e3),
                    rt->st.lists, st.dlq, rt->st.lag);
            last_events = rt->st.events;
            last_progress = t;
        }
        if (rt->until_end && xs_consumer_caught_up(rt->consumer) &&
            (!rt->global || xs_global_caught_up(rt->global))) {
            XS_INFO("caught up", "events=%" PRIu64, rt->st.events);
            break;
        }
    }
    xs_err_t cerr = XS_OK;
    char cstr[512] = "";
    xs_checkpoint_wait(rt->cp); /* a batch in flight was filled before any failure */
    if (!err)
        err = xs_checkpoint_finish(rt->cp, errstr, errstr_size);
    if (err)
        xs_checkpoint_fail(rt->cp);
    if (!err)
        cerr = xs_checkpoint_run(rt->cp, cstr, sizeof(cstr));
    else
        /* Still serve delivery reports, but do not store offsets past a failure. */
        xs_producer_flush(rt->producer, 10000, NULL, 0);
    if (!err && cerr) {
        err = cerr;
        xs_err_set(errstr, errstr_size, "final checkpoint: %s", cstr);
    }
    double secs = (now_ms() - t_start) / 1e3;
    if (rt->global) {
        uint64_t applied = 0, published = 0, entries = 0;
        xs_global_stats(rt->global, &applied, &published, &entries);
        XS_INFO("pair deltas",
                "batches_published=%" PRIu64 " batches_applied=%" PRIu64 " entries_applied=%" PRIu64
                " lag_ms_p50=%" PRId64 " lag_ms_p99=%" PRId64 " lag_ms_max=%" PRId64,
                published, applied, entries, xs_global_lag_ms(rt->global, 0.5),
                xs_global_lag_ms(rt->global, 0.99), xs_global_lag_ms(rt->global, 1.0));
    }
    atomic_store(&rt->running, false);
    set_ready(rt, false);
    refresh_gauges(rt);
    xs_runtime_stats_t st;
    xs_runtime_stats(rt, &st);
    XS_INFO("worker stopped",
            "events=%" PRIu64 " lists=%" PRIu64 " dlq=%" PRIu64 " checkpoints=%" PRIu64
            " seconds=%.1f events_per_s=%.0f status=%s",
            st.events, st.lists, st.dlq, st.checkpoints, secs, secs > 0 ? rt->st.events / secs : 0,
            err ? "error" : "ok");
    return err;
}

/* ---- queries (on other threads) ------------------------------------------------- */

xs_err_t xs_runtime_lock(xs_runtime_t *rt, char *errstr, size_t errstr_size)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += XS_QUERY_LOCK_MS / 1000;
    int rc = pthread_mutex_timedlock(&rt->mu, &ts);
    if (rc == 0)
        return XS_OK;
    xs_err_set(errstr, errstr_size, "worker busy: %s", rc == ETIMEDOUT ? "timed out" : "lock");
    return XS_ERR_IO;
}

void xs_runtime_unlock(xs_runtime_t *rt)
{
    pthread_mutex_unlock(&rt->mu);
}

bool xs_runtime_next_partition(xs_runtime_t *rt, size_t *cursor, int32_t *partition)
{
    size_t n = xs_checkpoint_n_partitions(rt->cp);
    for (size_t i = *cursor; i < n; i++) {
        const char *topic, *t2;
        int32_t p, p2;
        bool dup = false;
        if (!xs_checkpoint_partition(rt->cp, i, &topic, &p))
            continue;
        /* one partition number of several topics: once */
        for (size_t k = 0; k < i && !dup; k++)
            dup = xs_checkpoint_partition(rt->cp, k, &t2, &p2) && p2 == p;
        if (dup)
            continue;
        *cursor = i + 1;
        *partition = p;
        return true;
    }
    *cursor = n;
    return false;
}

bool xs_runtime_assigned(xs_runtime_t *rt, const char *topic, int32_t partition)
{
    size_t n = xs_checkpoint_n_partitions(rt->cp);
    for (size_t i = 0; i < n; i++) {
        const char *t;
        int32_t p;
        if (xs_checkpoint_partition(rt->cp, i, &t, &p) && p == partition && !strcmp(t, topic))
            return true;
    }
    return false;
}

bool xs_runtime_healthy(xs_runtime_t *rt, char *reason, size_t reason_size)
{
    if (!atomic_load(&rt->running)) {
        xs_err_set(reason, reason_size, "worker loop not running");
        return false;
    }
    double idle = now_ms() - atomic_load(&rt->heartbeat_ms);
    if (idle > XS_HEALTH_STALL_MS) {
        xs_err_set(reason, reason_size, "worker loop stalled for %.0f s", idle / 1e3);
        return false;
    }
    return true;
}

bool xs_runtime_ready(xs_runtime_t *rt, char *reason, size_t reason_size)
{
    double down = atomic_load(&rt->brokers_down_ms);
    if (atomic_load(&rt->running) && atomic_load(&rt->ready))
        return true;
    if (!atomic_load(&rt->running))
        xs_err_set(reason, reason_size, "not running");
    else if (atomic_load(&rt->input_lost))
        xs_err_set(reason, reason_size,
                   "input lost to retention (input.offset.out_of_range "
                   "= fail): stopping");
    else if (down > 0)
        xs_err_set(reason, reason_size, "Kafka brokers unreachable for %.0f s", down / 1e3);
    else if (xs_changelog_restoring(rt->cl) > 0)
        xs_err_set(reason, reason_size, "restoring %d partition(s) from the changelog",
                   xs_changelog_restoring(rt->cl));
    else if (atomic_load(&rt->n_assigned) == 0)
        xs_err_set(reason, reason_size, "no partitions assigned yet (joining the group)");
    else
        xs_err_set(reason, reason_size, "catching up after assignment");
    return false;
}

/* ---- setup ------------------------------------------------------------------------ */

/*
 * The click and cart topics are both keyed by user and must have the same
 * partition count, so that one user's events of both kinds land on the same
 * partition number and so in the same worker's state. Refuses to start when
 * the broker's metadata shows different counts; a topic not (yet) known or
 * a metadata failure is left to the consumer (it waits for it).
 */
static xs_err_t check_input_parity(xs_runtime_t *rt, const char *bootstrap, const xs_kv_t *kconf,
                                   size_t n_kafka, char *errstr, size_t errstr_size)
{
    char why[512];
    int clicks = xs_kafka_partition_count(bootstrap, kconf, n_kafka, rt->topic_clicks,
                                          XS_PARITY_TIMEOUT_MS, why, sizeof(why));
    int cart = clicks > 0 ? xs_kafka_partition_count(bootstrap, kconf, n_kafka, rt->topic_cart,
                                                     XS_PARITY_TIMEOUT_MS, why, sizeof(why))
                          : -1;
    if (clicks > 0 && cart > 0 && clicks != cart) {
        xs_err_set(errstr, errstr_size,
                   "input topics %s (%d partitions) and %s (%d partitions) must have the same "
                   "partition count: both are keyed by user_id and one user's events must land "
                   "on the same partition number (`xsell topics check` reports the topics)",
                   rt->topic_clicks, clicks, rt->topic_cart, cart);
        return XS_ERR_CONFIG;
    }
    return XS_OK;
}

xs_runtime_t *xs_runtime_new(const xs_runtime_opts_t *opts, char *errstr, size_t errstr_size)
{
    const xs_config_t *cfg = opts->config;
    xs_runtime_t *rt = calloc(1, sizeof(*rt));
    if (!rt) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rt->cfg = cfg;
    rt->proc = opts->processor;
    rt->router = opts->router;
    rt->metrics = opts->metrics;
    rt->obs = xs_worker_metrics_obs(opts->metrics);
    rt->store = opts->store;
    rt->until_end = opts->until_end;
    rt->from_beginning = opts->from_beginning;
    if (pthread_mutex_init(&rt->mu, NULL) != 0) {
        xs_err_set(errstr, errstr_size, "cannot create a mutex");
        free(rt);
        return NULL;
    }
    rt->mu_init = true;
    rt->topic_clicks = xs_config_str(cfg, "topics.clicks");
    rt->topic_cart = xs_config_str(cfg, "topics.cart");
    rt->topic_catalog = xs_config_str(cfg, "topics.catalog");
    rt->dirty_limit = (size_t)xs_config_int(cfg, "checkpoint.dirty.bytes");
    rt->skip_lost_input = !strcmp(xs_config_str(cfg, "input.offset.out_of_range"), "skip");
    rt->unreachable_timeout_ms = (double)xs_config_int(cfg, "broker.unreachable.timeout.ms");

    size_t n_kafka = 0;
    const xs_kv_t *kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
    const char *bootstrap = NULL;
    for (size_t i = 0; i < n_kafka; i++)
        if (!strcmp(kconf[i].key, "bootstrap.servers"))
            bootstrap = kconf[i].value;
    if (!bootstrap) {
        xs_err_set(errstr, errstr_size,
                   "kafka.bootstrap.servers is not set (config file, --set or --bootstrap)");
        goto fail;
    }
    if (!(rt->producer = xs_producer_new(bootstrap, kconf, n_kafka, errstr, errstr_size)))
        goto fail;
    if (check_input_parity(rt, bootstrap, kconf, n_kafka, errstr, errstr_size) != XS_OK)
        goto fail;
    const char *topics[3];
    size_t n_topics = 0;
    topics[n_topics++] = rt->topic_clicks;
    topics[n_topics++] = rt->topic_cart;
    bool global = xs_config_bool(cfg, "items.global");
    if (*rt->topic_catalog && !global) /* global: read in full, not split by the group */
        topics[n_topics++] = rt->topic_catalog;
    kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
    if (global && opts->from_beginning) {
        xs_err_set(errstr, errstr_size,
                   "items.global: --from-beginning would send the pair deltas of the replayed "
                   "input again, and every instance of the group would count them twice; "
                   "rebuild under a new group.id (new changelog and pair deltas topics) "
                   "instead");
        goto fail;
    }
    if (global && !(rt->proc->take_deltas && rt->proc->apply_deltas)) {
        xs_err_set(errstr, errstr_size, "items.global: processor %s has no global item knowledge",
                   rt->proc->name);
        goto fail;
    }
    if (xs_config_bool(cfg, "changelog.enable")) {
        xs_changelog_opts_t clo = {
            .config = cfg,
            .store = opts->store,
            .metrics = opts->metrics,
            .bootstrap = bootstrap,
            .kafka_conf = kconf,
            .n_kafka_conf = n_kafka,
            .topics = topics,
            .n_topics = 2, /* clicks and cart: keyed by user */
            .progress = restore_heartbeat,
            .progress_opaque = rt,
        };
        if (!(rt->cl = xs_changelog_new(&clo, errstr, errstr_size)))
            goto fail;
    }
    xs_consumer_opts_t co = {
        .bootstrap = bootstrap,
        .group_id = xs_config_str(cfg, "group.id"),
        .topics = topics,
        .n_topics = n_topics,
        .start_offset = XS_OFFSET_BEGINNING,
        .conf = kconf,
        .n_conf = n_kafka,
        .hooks = {rt, on_assign, on_revoke},
        .offset_reset_error = true,
        .n_copartitioned = 2, /* clicks and cart: keyed by user */
        .group_instance_id = xs_config_str(cfg, "group.instance.id"),
    };
    if (!(rt->consumer = xs_consumer_new(&co, errstr, errstr_size)))
        goto fail;
    if (rt->cl)
        xs_changelog_set_group(rt->cl, rt->consumer);
    xs_checkpoint_opts_t cpo = {
        .store = opts->store,
        .sync = xs_config_bool(cfg, "state.sync"),
        .producer = rt->producer,
        .consumer = rt->consumer,
        .processor = opts->processor,
        .mu = &rt->mu,
        .metrics = opts->metrics,
        .from_beginning = opts->from_beginning,
        .changelog = rt->cl,
    };
    if (!(rt->cp = xs_checkpoint_new(&cpo, errstr, errstr_size)))
        goto fail;
    if (global) {
        xs_global_opts_t go = {
            .config = cfg,
            .processor = opts->processor,
            .cp = rt->cp,
            .cl = rt->cl,
            .mu = &rt->mu,
            .store = opts->store,
            .metrics = opts->metrics,
            .bootstrap = bootstrap,
            .kafka_conf = kconf,
            .n_kafka_conf = n_kafka,
            .user_topics = topics,
            .n_user_topics = 2,
            .catalog_topic = rt->topic_catalog,
        };
        if (!(rt->global = xs_global_new(&go, global_process, rt, errstr, errstr_size)))
            goto fail;
        xs_checkpoint_set_global(rt->cp, rt->global);
    }
    return rt;
fail:
    xs_runtime_destroy(rt);
    return NULL;
}

void xs_runtime_stats(const xs_runtime_t *rt, xs_runtime_stats_t *st)
{
    xs_router_stats_t rs;
    *st = rt->st;
    xs_router_stats(rt->router, &rs);
    st->dlq = rs.dlq;
    st->dlq_by_reason_decode = rs.dlq_by_reason_decode;
    st->dlq_by_reason_validation = rs.dlq_by_reason_validation;
    st->dlq_by_reason_size = rs.dlq_by_reason_size;
    xs_checkpoint_stats(rt->cp, &st->checkpoints, &st->last_checkpoint_ms);
}

void xs_runtime_destroy(xs_runtime_t *rt)
{
    if (!rt)
        return;
    xs_consumer_destroy(rt->consumer); /* may checkpoint (on_revoke) */
    xs_global_destroy(rt->global);
    xs_checkpoint_destroy(rt->cp); /* the writer finishes a batch in flight first */
    xs_changelog_destroy(rt->cl);
    xs_producer_destroy(rt->producer);
    if (rt->mu_init)
        pthread_mutex_destroy(&rt->mu);
    free(rt);
}
