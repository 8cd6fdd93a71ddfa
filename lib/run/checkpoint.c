/*
 * checkpoint.c — the checkpoint protocol (see include/xsell/checkpoint.h
 * for the states and the invariants).
 *
 * Checkpoints run in steps, so that neither encoding the state nor waiting
 * for the producer nor the RocksDB write stalls the loop:
 *   start    (loop thread, none in flight) under mu: the next offset of
 *            every partition that moved goes into the batch (cp_offs keeps
 *            which) and the processor's snapshot begins: the state as it is
 *            at this instant; the producer is marked;
 *   snapshot (loop thread, a few records per loop turn, all of them on an
 *            idle turn) the processor puts the snapshot's records into the
 *            batch; a record an input is about to touch first is put right
 *            then, with its value at the start; then the loop waits, without
 *            blocking, for the producer to acknowledge everything sent
 *            before the mark (the outputs of the inputs in the snapshot);
 *   write    (writer thread) the batch, atomically;
 *   finish   (loop thread, the first loop turn after the write) under mu:
 *            the partitions' stored offsets move, they are committed to
 *            Kafka and the processor trims its cache.
 * So the batch is exactly the state after the inputs before the start, with
 * their offsets, and written only once their output is acknowledged. The
 * processor evicts only in its checkpointed callback, after the write, and
 * never a record still to be put, so nothing reads an old value from
 * RocksDB. Revocation, shutdown and dirty records over checkpoint.dirty.bytes
 * while one is in flight complete it on the loop thread first
 * (xs_checkpoint_drain; the last is the backpressure of a slow disk);
 * revocation and shutdown then run a whole checkpoint synchronously
 * (xs_checkpoint_run).
 */
#include "xsell/checkpoint.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xsell/changelog.h"
#include "xsell/global.h"
#include "xsell/log.h"
#include "xsell/runtime.h"

/* Checkpoint states: nothing in flight; the processor's snapshot is being
 * put into the batch and the producer's acknowledgements awaited, on the
 * loop; the writer writes the batch; written, finish due. */
enum { CP_IDLE, CP_SNAPSHOT, CP_WRITING, CP_WRITTEN };

typedef struct cp_offset {
    size_t part; /* index in parts (entries are never removed) */
    int64_t next;
} cp_offset_t;

typedef struct part {
    char *topic;
    int32_t partition;
    int64_t next;   /* next offset to consume (after what was applied) */
    int64_t stored; /* next offset in the last checkpoint */
    bool assigned;
    bool seen;   /* assigned before in this process (--from-beginning) */
    bool global; /* read in full by this instance (global.h): not the group's */
} part_t;

struct xs_checkpoint {
    xs_checkpoint_opts_t o;
    xs_store_batch_t *batch; /* the writer's while state is CP_WRITING */
    part_t *parts;
    size_t n_parts, cap_parts, part_hint;
    /* checkpoint in flight: the partitions it moves and their offsets */
    cp_offset_t *cp_offs;
    xs_offset_t *commit_offs;
    size_t n_cp_offs, cap_cp_offs;
    double t0;
    pthread_t writer;
    bool writer_on, init, stop;
    pthread_mutex_t mu; /* state, stop, err, errstr */
    pthread_cond_t cv;
    _Atomic int state;
    xs_err_t err;
    char errstr[512];
    bool failed; /* after a fatal error no checkpoint may store offsets */
    uint64_t count;
    double last_ms;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static part_t *find_part(xs_checkpoint_t *cp, const char *topic, int32_t partition, bool create)
{
    /* Messages come in runs from one partition: try the last one found first. */
    if (cp->part_hint < cp->n_parts && cp->parts[cp->part_hint].partition == partition &&
        strcmp(cp->parts[cp->part_hint].topic, topic) == 0)
        return &cp->parts[cp->part_hint];
    for (size_t i = 0; i < cp->n_parts; i++)
        if (cp->parts[i].partition == partition && strcmp(cp->parts[i].topic, topic) == 0) {
            cp->part_hint = i;
            return &cp->parts[i];
        }
    if (!create)
        return NULL;
    if (cp->n_parts == cp->cap_parts) {
        size_t cap = cp->cap_parts ? cp->cap_parts * 2 : 16;
        part_t *p = realloc(cp->parts, cap * sizeof(*p));
        if (!p)
            return NULL;
        cp->parts = p;
        cp->cap_parts = cap;
    }
    part_t *p = &cp->parts[cp->n_parts];
    p->topic = xs_str_dup(topic);
    if (!p->topic)
        return NULL;
    p->partition = partition;
    p->next = p->stored = -1;
    p->assigned = false;
    p->seen = false;
    p->global = false;
    cp->n_parts++;
    return p;
}

/* ---- the protocol ----------------------------------------------------------------------- */

/* The batch, after the changelog's transaction committed (invariant 7). */
static xs_err_t cp_write(xs_checkpoint_t *cp, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    if (cp->o.changelog &&
        (err = xs_changelog_commit(cp->o.changelog, cp->batch, errstr, errstr_size)) != XS_OK)
        return err;
    return xs_store_write(cp->o.store, cp->batch, cp->o.sync, errstr, errstr_size);
}

/* The writer thread: writes each batch handed over by xs_checkpoint_advance(). */
static void *cp_writer(void *arg)
{
    xs_checkpoint_t *cp = arg;
    pthread_mutex_lock(&cp->mu);
    for (;;) {
        while (atomic_load(&cp->state) != CP_WRITING && !cp->stop)
            pthread_cond_wait(&cp->cv, &cp->mu);
        if (atomic_load(&cp->state) != CP_WRITING)
            break; /* stopping, nothing in flight */
        pthread_mutex_unlock(&cp->mu);
        char e[sizeof(cp->errstr)] = "";
        xs_err_t err = cp_write(cp, e, sizeof(e));
        pthread_mutex_lock(&cp->mu);
        cp->err = err;
        memcpy(cp->errstr, e, sizeof(e));
        atomic_store(&cp->state, CP_WRITTEN);
        pthread_cond_broadcast(&cp->cv);
    }
    pthread_mutex_unlock(&cp->mu);
    return NULL;
}

void xs_checkpoint_wait(xs_checkpoint_t *cp)
{
    if (!cp || !cp->init)
        return;
    pthread_mutex_lock(&cp->mu);
    while (atomic_load(&cp->state) == CP_WRITING)
        pthread_cond_wait(&cp->cv, &cp->mu);
    pthread_mutex_unlock(&cp->mu);
}

xs_err_t xs_checkpoint_finish(xs_checkpoint_t *cp, char *errstr, size_t errstr_size)
{
    size_t n_commit = 0;
    xs_obs_t *obs = xs_worker_metrics_obs(cp->o.metrics);
    if (atomic_load(&cp->state) != CP_WRITTEN)
        return XS_OK;
    atomic_store(&cp->state, CP_IDLE);
    if (cp->err) {
        xs_err_set(errstr, errstr_size, "%s", cp->errstr);
        xs_obs_checkpoint_failed(obs);
        return cp->err;
    }
    pthread_mutex_lock(cp->o.mu);
    for (size_t i = 0; i < cp->n_cp_offs; i++) {
        part_t *p = &cp->parts[cp->cp_offs[i].part];
        p->stored = cp->cp_offs[i].next;
        if (p->assigned && !p->global)
            cp->commit_offs[n_commit++] =
                (xs_offset_t){p->topic, p->partition, cp->cp_offs[i].next};
    }
    char e2[256];
    if (xs_consumer_commit_offsets(cp->o.consumer, cp->commit_offs, n_commit, true, e2, sizeof(e2)))
        XS_DEBUG("offset commit failed", "error=\"%s\"", e2);
    cp->o.processor->checkpointed(cp->o.processor->self);
    pthread_mutex_unlock(cp->o.mu);
    cp->count++;
    cp->last_ms = now_ms() - cp->t0;
    xs_worker_metrics_checkpoint(cp->o.metrics, cp->last_ms / 1e3);
    XS_DEBUG("checkpoint", "records=%d partitions=%zu ms=%.1f", xs_store_batch_count(cp->batch),
             cp->n_cp_offs, cp->last_ms);
    return XS_OK;
}

/* Room for every partition in cp_offs and commit_offs. */
static xs_err_t cp_offs_reserve(xs_checkpoint_t *cp)
{
    if (cp->cap_cp_offs >= cp->n_parts)
        return XS_OK;
    size_t cap = cp->cap_parts;
    cp_offset_t *o = realloc(cp->cp_offs, cap * sizeof(*o));
    if (!o)
        return XS_ERR_NOMEM;
    cp->cp_offs = o;
    xs_offset_t *c = realloc(cp->commit_offs, cap * sizeof(*c));
    if (!c)
        return XS_ERR_NOMEM;
    cp->commit_offs = c;
    cp->cap_cp_offs = cap;
    return XS_OK;
}

/* Whether the i-th offset of the checkpoint is the first of its partition
 * number among the user topics' (the changelog keeps one record per input
 * partition). */
static bool cp_first_user_offset(const xs_checkpoint_t *cp, size_t i)
{
    xs_changelog_t *cl = cp->o.changelog;
    const part_t *p = &cp->parts[cp->cp_offs[i].part];
    if (p->global || !xs_changelog_user_topic(cl, p->topic))
        return false;
    for (size_t k = 0; k < i; k++) {
        const part_t *q = &cp->parts[cp->cp_offs[k].part];
        if (q->partition == p->partition && !q->global && xs_changelog_user_topic(cl, q->topic))
            return false;
    }
    return true;
}

/* The next offset of every user topic's partition `partition` as of the
 * start (moved: the checkpoint's; not moved: the one stored). */
static size_t cp_user_offsets(const xs_checkpoint_t *cp, int32_t partition,
                              xs_offset_t offs[XS_CHANGELOG_MAX_TOPICS])
{
    xs_changelog_t *cl = cp->o.changelog;
    size_t n = 0;
    for (size_t j = 0; j < cp->n_parts && n < XS_CHANGELOG_MAX_TOPICS; j++) {
        const part_t *q = &cp->parts[j];
        if (q->partition != partition || q->global || !xs_changelog_user_topic(cl, q->topic))
            continue;
        int64_t next = q->stored;
        for (size_t k = 0; k < cp->n_cp_offs; k++)
            if (cp->cp_offs[k].part == j)
                next = cp->cp_offs[k].next;
        if (next >= 0)
            offs[n++] = (xs_offset_t){q->topic, q->partition, next};
    }
    return n;
}

/* What a checkpoint sends per input partition that moved, with the next
 * offset of each user topic's partition of that number (cp_user_offsets). */
typedef xs_err_t (*cp_partition_fn)(xs_checkpoint_t *cp, int32_t partition, const xs_offset_t *offs,
                                    size_t n, char *errstr, size_t errstr_size);

static xs_err_t cp_each_moved_partition(xs_checkpoint_t *cp, cp_partition_fn fn, char *errstr,
                                        size_t errstr_size)
{
    for (size_t i = 0; i < cp->n_cp_offs; i++) {
        if (!cp_first_user_offset(cp, i))
            continue;
        int32_t partition = cp->parts[cp->cp_offs[i].part].partition;
        xs_offset_t offs[XS_CHANGELOG_MAX_TOPICS];
        size_t n = cp_user_offsets(cp, partition, offs);
        xs_err_t err = fn(cp, partition, offs, n, errstr, errstr_size);
        if (err)
            return err;
    }
    return XS_OK;
}

/* The offsets record of the partition (the users changelog). */
static xs_err_t cp_offsets_record(xs_checkpoint_t *cp, int32_t partition, const xs_offset_t *offs,
                                  size_t n, char *errstr, size_t errstr_size)
{
    return xs_changelog_offsets(cp->o.changelog, partition, offs, n, errstr, errstr_size);
}

/* With global item knowledge: the partition's pair deltas, in the
 * transaction, with the offsets they bring it to. */
static xs_err_t cp_deltas(xs_checkpoint_t *cp, int32_t partition, const xs_offset_t *offs, size_t n,
                          char *errstr, size_t errstr_size)
{
    return xs_global_publish(cp->o.global, partition, offs, n, errstr, errstr_size);
}

xs_err_t xs_checkpoint_start(xs_checkpoint_t *cp, bool *started, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    size_t n_records = 0;
    const xs_processor_t *proc = cp->o.processor;
    *started = false;
    if (cp->failed) {
        xs_err_set(errstr, errstr_size, "worker failed earlier: no checkpoint");
        return XS_ERR_INVALID;
    }
    pthread_mutex_lock(cp->o.mu);
    xs_store_batch_clear(cp->batch);
    cp->n_cp_offs = 0;
    if (cp->o.changelog &&
        (err = xs_changelog_begin(cp->o.changelog, cp->batch, errstr, errstr_size)) != XS_OK)
        goto out;
    if ((err = cp_offs_reserve(cp))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cp->n_parts; i++) {
        part_t *p = &cp->parts[i];
        if (p->next >= 0 && p->next != p->stored) {
            xs_store_batch_put_offset(cp->batch, p->topic, p->partition, p->next);
            cp->cp_offs[cp->n_cp_offs++] = (cp_offset_t){i, p->next};
        }
    }
    if ((err = proc->snapshot_begin(proc->self, cp->batch, &n_records, errstr, errstr_size)))
        goto out;
    if (cp->o.global) {
        xs_global_snapshot(cp->o.global, cp->batch);
        if ((err = cp_each_moved_partition(cp, cp_deltas, errstr, errstr_size)))
            goto out;
    }
    if (n_records || cp->n_cp_offs) {
        xs_producer_mark(cp->o.producer);
        cp->t0 = now_ms();
        atomic_store(&cp->state, CP_SNAPSHOT);
        *started = true;
    }
out:
    if (cp->o.changelog && !*started)
        xs_changelog_abort(cp->o.changelog); /* nothing to write, or failed */
    pthread_mutex_unlock(cp->o.mu);
    return err;
}

xs_err_t xs_checkpoint_advance(xs_checkpoint_t *cp, size_t max, bool flush, bool sync, char *errstr,
                               size_t errstr_size)
{
    bool done = false, acked = false;
    const xs_processor_t *proc = cp->o.processor;
    xs_obs_t *obs = xs_worker_metrics_obs(cp->o.metrics);
    if (atomic_load(&cp->state) != CP_SNAPSHOT)
        return XS_OK;
    pthread_mutex_lock(cp->o.mu);
    xs_err_t err = proc->snapshot_step(proc->self, max, &done, errstr, errstr_size);
    pthread_mutex_unlock(cp->o.mu);
    if (err)
        xs_obs_checkpoint_failed(obs);
    if (err || !done)
        return err;
    if (flush)
        err = xs_producer_flush(cp->o.producer, 60000, errstr, errstr_size), acked = !err;
    else
        err = xs_producer_marked_done(cp->o.producer, &acked, errstr, errstr_size);
    if (err)
        xs_obs_checkpoint_failed(obs);
    if (err || !acked)
        return err; /* nothing written: a restart replays from the last checkpoint */
    if (cp->o.changelog &&
        (err = cp_each_moved_partition(cp, cp_offsets_record, errstr, errstr_size)) != XS_OK) {
        xs_obs_checkpoint_failed(obs);
        return err;
    }
    if (sync) {
        cp->err = cp_write(cp, cp->errstr, sizeof(cp->errstr));
        atomic_store(&cp->state, CP_WRITTEN);
        return XS_OK;
    }
    pthread_mutex_lock(&cp->mu);
    atomic_store(&cp->state, CP_WRITING);
    pthread_cond_signal(&cp->cv);
    pthread_mutex_unlock(&cp->mu);
    return XS_OK;
}

xs_err_t xs_checkpoint_drain(xs_checkpoint_t *cp, char *errstr, size_t errstr_size)
{
    xs_err_t err = xs_checkpoint_advance(cp, 0, true, true, errstr, errstr_size);
    if (err)
        return err;
    xs_checkpoint_wait(cp);
    return xs_checkpoint_finish(cp, errstr, errstr_size);
}

xs_err_t xs_checkpoint_run(xs_checkpoint_t *cp, char *errstr, size_t errstr_size)
{
    bool started = false;
    xs_err_t err = xs_checkpoint_drain(cp, errstr, errstr_size);
    if (!err)
        err = xs_checkpoint_start(cp, &started, errstr, errstr_size);
    if (!err && started)
        err = xs_checkpoint_drain(cp, errstr, errstr_size);
    return err;
}

bool xs_checkpoint_busy(const xs_checkpoint_t *cp)
{
    return atomic_load(&cp->state) != CP_IDLE;
}

void xs_checkpoint_fail(xs_checkpoint_t *cp)
{
    cp->failed = true;
}

void xs_checkpoint_stats(const xs_checkpoint_t *cp, uint64_t *count, double *last_ms)
{
    *count = cp ? cp->count : 0;
    *last_ms = cp ? cp->last_ms : 0;
}

/* ---- the partition table ---------------------------------------------------------------- */

/* A partition assigned (global: read in full by this instance, global.h). */
static xs_err_t assign_part(xs_checkpoint_t *cp, const char *topic, int32_t partition, bool global,
                            int64_t *offset, bool *found, char *errstr, size_t errstr_size)
{
    int64_t next = 0;
    *found = false;
    part_t *p = find_part(cp, topic, partition, true);
    if (!p)
        return XS_ERR_NOMEM;
    if (xs_store_get_offset(cp->o.store, topic, partition, &next, found, errstr, errstr_size))
        return XS_ERR_STORE;
    /* --from-beginning: the first assignment ignores stored offsets (the state
     * directory was empty at start); a later one resumes what this run stored.
     * Not the global tables' (items.global refuses --from-beginning). */
    if (!global && cp->o.from_beginning && !p->seen)
        *found = false;
    p->global = global;
    p->seen = true;
    p->assigned = true;
    p->stored = *found ? next : -1;
    p->next = *found ? next : -1;
    *offset = *found ? next : XS_OFFSET_BEGINNING;
    return XS_OK;
}

xs_err_t xs_checkpoint_assign(xs_checkpoint_t *cp, const char *topic, int32_t partition,
                              int64_t *offset, bool *found, char *errstr, size_t errstr_size)
{
    return assign_part(cp, topic, partition, false, offset, found, errstr, errstr_size);
}

xs_err_t xs_checkpoint_assign_global(xs_checkpoint_t *cp, const char *topic, int32_t partition,
                                     int64_t *offset, bool *found, char *errstr, size_t errstr_size)
{
    return assign_part(cp, topic, partition, true, offset, found, errstr, errstr_size);
}

void xs_checkpoint_revoke(xs_checkpoint_t *cp, const char *topic, int32_t partition)
{
    part_t *p = find_part(cp, topic, partition, false);
    if (p) {
        p->assigned = false;
        p->next = p->stored = -1;
    }
}

xs_err_t xs_checkpoint_consumed(xs_checkpoint_t *cp, const char *topic, int32_t partition,
                                int64_t next)
{
    part_t *p = find_part(cp, topic, partition, true);
    if (!p)
        return XS_ERR_NOMEM;
    p->next = next;
    return XS_OK;
}

void xs_checkpoint_skip(xs_checkpoint_t *cp, const char *topic, int32_t partition, int64_t next)
{
    part_t *p = find_part(cp, topic, partition, false);
    if (p)
        p->next = next;
}

void xs_checkpoint_set_global(xs_checkpoint_t *cp, xs_global_t *global)
{
    cp->o.global = global;
}

size_t xs_checkpoint_n_partitions(const xs_checkpoint_t *cp)
{
    return cp->n_parts;
}

bool xs_checkpoint_partition(const xs_checkpoint_t *cp, size_t i, const char **topic,
                             int32_t *partition)
{
    *topic = cp->parts[i].topic;
    *partition = cp->parts[i].partition;
    return cp->parts[i].assigned && !cp->parts[i].global;
}

/* ---- setup ------------------------------------------------------------------------------ */

xs_checkpoint_t *xs_checkpoint_new(const xs_checkpoint_opts_t *opts, char *errstr,
                                   size_t errstr_size)
{
    xs_checkpoint_t *cp = calloc(1, sizeof(*cp));
    if (!cp) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    cp->o = *opts;
    if (!(cp->batch = xs_store_batch_new(cp->o.store))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&cp->mu, NULL) != 0) {
        xs_err_set(errstr, errstr_size, "cannot create a mutex");
        goto fail;
    }
    if (pthread_cond_init(&cp->cv, NULL) != 0) {
        pthread_mutex_destroy(&cp->mu);
        xs_err_set(errstr, errstr_size, "cannot create a condition variable");
        goto fail;
    }
    cp->init = true;
    if (pthread_create(&cp->writer, NULL, cp_writer, cp) != 0) {
        xs_err_set(errstr, errstr_size, "cannot start the checkpoint writer");
        goto fail;
    }
    cp->writer_on = true;
    return cp;
fail:
    xs_checkpoint_destroy(cp);
    return NULL;
}

void xs_checkpoint_destroy(xs_checkpoint_t *cp)
{
    if (!cp)
        return;
    if (cp->writer_on) {
        pthread_mutex_lock(&cp->mu);
        cp->stop = true; /* the writer finishes a batch in flight first */
        pthread_cond_broadcast(&cp->cv);
        pthread_mutex_unlock(&cp->mu);
        pthread_join(cp->writer, NULL);
    }
    if (cp->init) {
        pthread_cond_destroy(&cp->cv);
        pthread_mutex_destroy(&cp->mu);
    }
    xs_store_batch_destroy(cp->batch);
    for (size_t i = 0; i < cp->n_parts; i++)
        free(cp->parts[i].topic);
    free(cp->parts);
    free(cp->cp_offs);
    free(cp->commit_offs);
    free(cp);
}
