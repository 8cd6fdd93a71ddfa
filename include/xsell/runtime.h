/*
 * xsell — the processor runtime: the loop every processor runs in.
 *
 *   poll ──> route ──> processor ──> publish ──> checkpoint
 *   (Kafka)  (router.h: kinds,  (process one   (emit: the    (checkpoint.h: the
 *            framings, dead     input, emit    router frames processor's state and
 *            letters)           outputs)       and sends)    the offsets, one batch)
 *
 * The runtime owns the loop, the consumer group and its rebalances, the
 * producer, the checkpoint protocol and the lock shared with queries; a
 * processor fills in the callbacks below and never copies the loop. One
 * message at a time: the router makes it an input (an event, a catalog
 * tombstone, or a dead letter the processor never sees), the processor
 * applies it and emits what it triggered, the runtime publishes it and
 * moves the partition's next offset. Every commit.interval.ms, or when the
 * processor's dirty state exceeds checkpoint.dirty.bytes, a checkpoint of
 * the state at that instant (checkpoint.h); revocation and shutdown
 * checkpoint synchronously. With changelog.enable, every checkpoint is also
 * a transaction to the users changelog, and a clicks or cart partition
 * assigned without (or with older) local state is restored from it before
 * its stored offsets are read (changelog.h, docs/SCALING.md).
 *
 * Threads: the loop runs on the caller of xs_runtime_run(); queries on
 * other threads take the lock (xs_runtime_lock), which the loop holds per
 * message, while a checkpoint starts, puts a step of its records and
 * finishes, and in the rebalance hooks. Health and readiness are atomics.
 */
#ifndef XSELL_RUNTIME_H
#define XSELL_RUNTIME_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/event.h"
#include "xsell/records.h"
#include "xsell/router.h"
#include "xsell/store.h"
#include "xsell/worker_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_runtime xs_runtime_t;

/* What a processor hands to the runtime for one input: see xs_runtime_emit(). */
typedef struct xs_emit xs_emit_t;

typedef struct xs_processor_stats {
    uint64_t dirty_bytes; /* state changed since the last checkpoint */
    uint64_t cache_hits, cache_misses;
} xs_processor_stats_t;

/*
 * A processor: a struct of callbacks on self. Every callback runs on the
 * loop's thread with the runtime's lock held (queries on other threads see
 * the processor between two callbacks). Errors are fatal: the runtime stops
 * without storing offsets past the failure.
 */
typedef struct xs_processor {
    const char *name;
    void *self;
    /* Applies one routed input (XS_ROUTE_EVENT or XS_ROUTE_TOMBSTONE; in->msg
     * has its topic, partition and offset) and emits what it triggered. */
    xs_err_t (*process)(void *self, const xs_input_t *in, xs_emit_t *emit, char *errstr,
                        size_t errstr_size);
    /* Checkpoint: freeze the changed state as it is now and count its records
     * (they go into batch, a few per step, or at once when something is about
     * to change them); put up to max of them (0: all), *done when all are in;
     * the batch is written: records may now be evicted. */
    xs_err_t (*snapshot_begin)(void *self, xs_store_batch_t *batch, size_t *n_records, char *errstr,
                               size_t errstr_size);
    xs_err_t (*snapshot_step)(void *self, size_t max, bool *done, char *errstr, size_t errstr_size);
    void (*checkpointed)(void *self);
    /* Rebalance (NULL: nothing to do); revoked runs after the checkpoint. */
    void (*assigned)(void *self, const char *topic, int32_t partition);
    void (*revoked)(void *self, const char *topic, int32_t partition);
    void (*stats)(void *self, xs_processor_stats_t *st);
    /* Global item knowledge (items.global, global.h; NULL without): moves
     * what the inputs of user partition `partition` taught about items since
     * the last call into *out (cleared first), at a checkpoint's start; and
     * applies one batch read from the deltas topic (any instance's, this
     * one's included) to the item state. */
    xs_err_t (*take_deltas)(void *self, int32_t partition, xs_delta_batch_t *out, char *errstr,
                            size_t errstr_size);
    xs_err_t (*apply_deltas)(void *self, const xs_delta_batch_t *b, char *errstr,
                             size_t errstr_size);
} xs_processor_t;

/* Publishes a list triggered by the input being processed (keyed by its
 * user_id, framed by the router). The runtime counts it. */
xs_err_t xs_runtime_emit(xs_emit_t *emit, const xs_list_t *list, char *errstr, size_t errstr_size);

typedef struct xs_runtime_opts {
    const xs_config_t *config; /* borrowed for the runtime's life, as are: */
    const xs_processor_t *processor;
    xs_router_t *router;
    xs_worker_metrics_t *metrics;
    xs_store_t *store;
    bool until_end;      /* stop once caught up with what was there at assignment */
    bool from_beginning; /* replay every partition from its first offset */
} xs_runtime_opts_t;

typedef struct xs_runtime_stats {
    uint64_t messages, events, lists, dlq, checkpoints;
    uint64_t dlq_by_reason_decode, dlq_by_reason_validation, dlq_by_reason_size;
    double last_checkpoint_ms;
    int64_t lag; /* -1 unknown */
} xs_runtime_stats_t;

/* Creates the producer, checks the input topics' partition parity, joins the
 * consumer group and starts the checkpoint writer. */
xs_runtime_t *xs_runtime_new(const xs_runtime_opts_t *opts, char *errstr, size_t errstr_size);
/* Runs until *stop becomes non-zero, until_end is reached or a fatal error.
 * Ends with a final checkpoint. */
xs_err_t xs_runtime_run(xs_runtime_t *rt, volatile sig_atomic_t *stop, char *errstr,
                        size_t errstr_size);
void xs_runtime_stats(const xs_runtime_t *rt, xs_runtime_stats_t *st);
/* Leaves the group (a last checkpoint on revocation), stops the writer. */
void xs_runtime_destroy(xs_runtime_t *rt);

/* ---- for queries, on other threads -------------------------------------------------- */

/* Takes the lock, waiting a bounded time (the loop may be blocked on Kafka
 * backpressure while it holds it): XS_ERR_IO "worker busy" then. */
xs_err_t xs_runtime_lock(xs_runtime_t *rt, char *errstr, size_t errstr_size);
void xs_runtime_unlock(xs_runtime_t *rt);
/* Under the lock: the next assigned partition number (each once) after
 * *cursor (start at 0); false past the last. */
bool xs_runtime_next_partition(xs_runtime_t *rt, size_t *cursor, int32_t *partition);
/* Under the lock: whether this worker has partition `partition` of `topic`. */
bool xs_runtime_assigned(xs_runtime_t *rt, const char *topic, int32_t partition);
/* /healthz and /readyz: false with the reason. */
bool xs_runtime_healthy(xs_runtime_t *rt, char *reason, size_t reason_size);
bool xs_runtime_ready(xs_runtime_t *rt, char *reason, size_t reason_size);

#ifdef __cplusplus
}
#endif
#endif
