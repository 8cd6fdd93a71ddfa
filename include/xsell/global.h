/*
 * xsell — global item knowledge (items.global, docs/SCALING.md): what every
 * instance of a consumer group learns about items, from every instance's
 * users, and the catalog, read in full by every instance.
 *
 *   instance A (user partitions of A)        instance B (user partitions of B)
 *     user stage: pair deltas, pre-            user stage: ...
 *     aggregated per checkpoint and
 *     input partition p
 *        │ in the checkpoint's changelog transaction (changelog.h):
 *        ▼ one pair-delta batch (records.h) per partition p that moved,
 *   <group.id>-pair-deltas, partition p  ◄──────────────┘
 *        │ read in full (every partition, read_committed) by every
 *        ▼ instance, A and B alike, its own batches included
 *   item stage of each instance: sketches, counts, neighbour lists ──> scorer
 *
 * The catalog topic is read in full by every instance the same way (not
 * split by the consumer group): every instance knows every title.
 *
 * Exactly once. A batch is sent in the transaction of the checkpoint whose
 * user state and input offsets it belongs to, so it is visible to the
 * read_committed readers exactly when that checkpoint is (C1 of
 * changelog.h): a checkpoint that never commits leaves no batch, and the
 * input it covered is replayed (by this instance or by the one that
 * restores the partition from the changelog) and makes the batch again.
 * Every instance stores, in its own checkpoints, how far it has read each
 * deltas and catalog partition (with the other offsets, never committed to
 * the group), so a restart resumes where its item state is. An instance on
 * an empty disk reads the deltas topic from its start: the topic is
 * created with retention.ms=-1 (its size is the pre-aggregated history, far
 * below the input's).
 *
 * Record on the deltas topic, partition p (the input partition the batch
 * is of; explicit, not the key's hash):
 *   key    the changelog's offsets record of p (changelog.h): the next input
 *          offset of every user topic's partition p as of the checkpoint,
 *          i.e. what the instance's item state covers once the batch is
 *          applied (`--until-end` waits for it);
 *   value  a pair-delta batch (records.h, docs/RECORDS.md), part `part` of
 *          `n_parts` of what partition p's inputs of that checkpoint taught.
 * A checkpoint that moved partition p publishes at least one batch for it,
 * empty when its inputs taught nothing.
 *
 * Threads: everything here runs on the loop's thread; the processor is
 * called with the runtime's lock held.
 */
#ifndef XSELL_GLOBAL_H
#define XSELL_GLOBAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/changelog.h"
#include "xsell/checkpoint.h"
#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/kafka.h"
#include "xsell/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Entries per batch part (a part of this many entries stays well below
 * Kafka's default 1 MB message size). */
#define XS_GLOBAL_PART_ENTRIES 8192

typedef struct xs_global xs_global_t;

/* Processes one catalog record as the runtime does one of its own topics
 * (route, the processor, the offset), taking the lock. */
typedef xs_err_t (*xs_global_process_fn)(void *opaque, const xs_msg_t *m, char *errstr,
                                         size_t errstr_size);

typedef struct xs_global_opts {
    const xs_config_t *config;
    const xs_processor_t *processor;
    xs_checkpoint_t *cp; /* the deltas and catalog partitions' offsets */
    xs_changelog_t *cl;  /* the transaction the batches go into (required) */
    pthread_mutex_t *mu; /* the runtime's lock */
    xs_store_t *store;
    xs_worker_metrics_t *metrics; /* NULL: none */
    const char *bootstrap;
    const xs_kv_t *kafka_conf;
    size_t n_kafka_conf;
    const char *const *user_topics; /* clicks and cart */
    size_t n_user_topics;
    const char *catalog_topic; /* NULL or empty: none */
} xs_global_opts_t;

/* The deltas topic's name for cfg (items.deltas.topic, or
 * "<group.id>-pair-deltas"), into buf. */
const char *xs_global_deltas_topic_name(const xs_config_t *cfg, char *buf, size_t size);

/* Creates the deltas topic when missing (the input's partition count,
 * retention.ms=-1; one with fewer partitions is refused) and the reader of
 * the deltas and catalog topics (every partition, read_committed), from
 * the offsets of the last checkpoint. */
xs_global_t *xs_global_new(const xs_global_opts_t *opts, xs_global_process_fn process,
                           void *process_opaque, char *errstr, size_t errstr_size);
void xs_global_destroy(xs_global_t *g); /* NULL is a no-op */

/* The checkpoint's side (under the lock, its transaction open): input
 * partition `partition` moved to offs (n offsets, one per user topic):
 * takes the partition's deltas from the processor and sends them, split in
 * parts, to the deltas topic. */
xs_err_t xs_global_publish(xs_global_t *g, int32_t partition, const xs_offset_t *offs, size_t n,
                           char *errstr, size_t errstr_size);

/* The checkpoint's side, at its start (under the lock): what the applied
 * batches cover, where it moved, into batch (kept with the offsets). */
void xs_global_snapshot(xs_global_t *g, xs_store_batch_t *batch);

/* Reads and applies up to max records (takes the lock per record); *idle
 * when nothing was there. A batch that does not decode is a fatal error
 * (the topic is the instances' own: nothing else writes it). */
xs_err_t xs_global_poll(xs_global_t *g, int max, bool *idle, char *errstr, size_t errstr_size);

/* Whether the deltas and the catalog are read up to where they ended when
 * the reader started (readiness: lists are scored from them). */
bool xs_global_read_up(xs_global_t *g);

/* `--until-end`: whether the catalog is read to its end and the deltas
 * applied cover the input as it was when the reader started (every user
 * topic's partition up to its high watermark then). */
bool xs_global_caught_up(xs_global_t *g);

/* The lag of the batches applied (whole batches, any instance's): from the
 * send (the record's timestamp, at the start of the checkpoint that sent
 * it) to the apply here, in ms; quantile q in [0, 1]; -1 when none. An
 * event's deltas also wait, before the send, for the checkpoint: up to
 * commit.interval.ms. */
int64_t xs_global_lag_ms(xs_global_t *g, double q);

/* Batches applied and published, and entries applied, since the start. */
void xs_global_stats(const xs_global_t *g, uint64_t *applied, uint64_t *published,
                     uint64_t *entries);

#ifdef __cplusplus
}
#endif
#endif
