/*
 * xsell — the users changelog: user state that moves with its partition
 * (docs/SCALING.md). Every checkpoint also writes, in one Kafka transaction,
 * the user records it changed and, per input partition it moved, an offsets
 * record to a compacted topic; an instance assigned a partition it has no
 * (or older) local state for restores the partition from that topic before
 * processing it.
 *
 * Topic: changelog.topic, by default "<group.id>-users-changelog", created
 * by the worker when missing (cleanup.policy=compact, the input's partition
 * count). The record of a user of input partition p goes to changelog
 * partition p (explicit), so one changelog partition is one input
 * partition's state:
 *
 *   key                             value
 *   users key (10 bytes):           the stored profile record, as in RocksDB
 *     partition u16 BE | user u64     (a null value: the profile deleted)
 *   "xsell.offsets" (13 bytes)      offsets record (below)
 *
 * Offsets record (version 1), the next input offset of every user-keyed
 * input topic's partition p as of the checkpoint:
 *
 *   +-----+-----+---------+-------+---------------------------------------------+
 *   | 'X' | 'O' | version | n u8  | n x (topic len u16 BE, topic, next i64 BE)  |
 *   +-----+-----+---------+-------+---------------------------------------------+
 *
 * Protocol (with checkpoint.h; the invariants are numbered there, the
 * changelog's here):
 *
 *   xs_checkpoint_start     -> xs_changelog_begin: a transaction begins and
 *                              every users record put into the batch is also
 *                              sent (the batch's tap), as the snapshot goes;
 *   xs_checkpoint_advance   -> xs_changelog_offsets, once the snapshot is in
 *                              and the lists acknowledged: one offsets record
 *                              per input partition that moved, the last
 *                              record of the partition in the transaction;
 *   writer thread           -> xs_changelog_commit, THEN the local batch is
 *                              written (with the changelog offset of each
 *                              offsets record, meta "changelog/<topic>/<p>").
 *
 *   C1. A checkpoint's changelog records are committed in one transaction or
 *       not at all; readers use read_committed, so a restore reads whole
 *       checkpoints only.
 *   C2. The local batch is written only after its transaction committed: the
 *       changelog is never behind the local store (for a partition this
 *       instance writes), only ahead of it by the one checkpoint whose local
 *       write a crash prevented.
 *   C3. Reading a changelog partition to its end and keeping the last value
 *       of each key gives the state of the last committed checkpoint and its
 *       offsets (a user record is written at every checkpoint that changed
 *       it; compaction only drops values that have a later one). A
 *       transaction's offsets record of a partition is its last record
 *       there, so users records after the last offsets record are of a
 *       transaction not committed: the restore drops them (only a broker
 *       without transaction isolation shows them).
 *   C4. Restore (xs_changelog_restore, on assignment, before the partition's
 *       first input): when the changelog's offsets are ahead of the local
 *       ones (or there are no local ones), the partition's local users are
 *       replaced by the changelog's and the offsets set to its offsets, in
 *       one RocksDB WriteBatch: the partition's state and offsets are then
 *       exactly one checkpoint's.
 *   C5. Only the partitions' owner writes them: each transaction also
 *       commits its input offsets to the consumer group (KIP-447), with the
 *       group membership as of its begin; once the group has given the
 *       partitions to another member (this one's session timed out: a long
 *       pause), the coordinator refuses it and the transaction is aborted.
 *       A member told that its assignment was lost does not checkpoint on
 *       revocation at all (runtime.c): it stops, its state since the last
 *       checkpoint is dropped, and the new owner processes that input again.
 *
 * Threads: begin, the tap, offsets and restore run on the loop's thread;
 * commit on the checkpoint writer's, while the loop does not touch the
 * changelog (the checkpoint is WRITING). xs_changelog_restoring() may be
 * read from any thread.
 */
#ifndef XSELL_CHANGELOG_H
#define XSELL_CHANGELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/kafka.h"
#include "xsell/store.h"
#include "xsell/worker_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XS_CHANGELOG_OFFSETS_KEY "xsell.offsets"
#define XS_CHANGELOG_OFFSETS_VERSION 1
#define XS_CHANGELOG_MAX_TOPICS 8

typedef struct xs_changelog xs_changelog_t;

typedef struct xs_changelog_opts {
    const xs_config_t *config;    /* changelog.*, group.id, state.dir (borrowed) */
    xs_store_t *store;            /* borrowed */
    xs_worker_metrics_t *metrics; /* borrowed; NULL: no metrics */
    const char *bootstrap;
    const xs_kv_t *kafka_conf; /* kafka.* passthrough (prefix stripped) */
    size_t n_kafka_conf;
    const char *const *topics; /* the user-keyed input topics (clicks, cart) */
    size_t n_topics;
    /* called about once a second during a restore (the loop's heartbeat) */
    void (*progress)(void *opaque);
    void *progress_opaque;
} xs_changelog_opts_t;

/* The changelog topic's name for cfg (changelog.topic or the derived one),
 * into buf. */
const char *xs_changelog_topic_name(const xs_config_t *cfg, char *buf, size_t size);

/* Creates the topic when missing (refuses one with fewer partitions than
 * the input), starts the transactional producer (fencing an earlier one of
 * the same changelog.transactional.id). */
xs_changelog_t *xs_changelog_new(const xs_changelog_opts_t *opts, char *errstr, size_t errstr_size);
void xs_changelog_destroy(xs_changelog_t *cl); /* NULL is a no-op */
/* The group consumer whose input the offsets records carry (borrowed; NULL:
 * none): each transaction also commits those offsets to the group, with the
 * membership as of its begin, so that the group coordinator refuses the
 * transaction of a member that lost its partitions (C5). */
void xs_changelog_set_group(xs_changelog_t *cl, xs_consumer_t *consumer);

const char *xs_changelog_topic(const xs_changelog_t *cl);
/* Whether topic is one of the user-keyed input topics. */
bool xs_changelog_user_topic(const xs_changelog_t *cl, const char *topic);

/* ---- the checkpoint's side ---------------------------------------------------------- */

/* Begins the checkpoint's transaction; the users records put into batch
 * from now on are sent too (until commit or abort). */
xs_err_t xs_changelog_begin(xs_changelog_t *cl, xs_store_batch_t *batch, char *errstr,
                            size_t errstr_size);
/* Sends the offsets record of input partition `partition`: n offsets (the
 * next offset of each user topic's partition `partition`). */
xs_err_t xs_changelog_offsets(xs_changelog_t *cl, int32_t partition, const xs_offset_t *offsets,
                              size_t n, char *errstr, size_t errstr_size);
/* Sends one more record, to any topic, in the open transaction (the pair
 * deltas of global.h). */
xs_err_t xs_changelog_send(xs_changelog_t *cl, const char *topic, int32_t partition,
                           const void *key, size_t key_len, const void *val, size_t val_len,
                           char *errstr, size_t errstr_size);
/* Commits the transaction (the writer thread), then puts into batch where
 * each offsets record landed. On failure nothing may be written locally. */
xs_err_t xs_changelog_commit(xs_changelog_t *cl, xs_store_batch_t *batch, char *errstr,
                             size_t errstr_size);
/* Aborts an open transaction (a failed checkpoint). */
void xs_changelog_abort(xs_changelog_t *cl);

/* ---- the restore's side ------------------------------------------------------------- */

/*
 * Input partition `partition` is assigned: restores it from the changelog
 * when the changelog's offsets are ahead of the local ones (C4); *restored
 * says whether it did. Logs and counts the progress. Call before the
 * partition's stored offsets are read, once per partition number (not
 * again for the other user topic's partition of the same number). Waits
 * first, 2 s at most, for the partition's last stable offset to reach its
 * end (the markers of a transaction the previous owner just committed).
 */
xs_err_t xs_changelog_restore(xs_changelog_t *cl, int32_t partition, bool *restored, char *errstr,
                              size_t errstr_size);
/* Partitions being restored right now (any thread). */
int xs_changelog_restoring(const xs_changelog_t *cl);

/* ---- the offsets record (exposed for tests) ------------------------------------------ */

/* Encodes n (<= XS_CHANGELOG_MAX_TOPICS) offsets into buf; returns its length, 0 when it
 * does not fit. */
size_t xs_changelog_offsets_encode(const xs_offset_t *offsets, size_t n, uint8_t *buf, size_t size);
/* Decodes: topics point into buf. XS_ERR_DECODE / XS_ERR_VERSION. */
xs_err_t xs_changelog_offsets_decode(const uint8_t *buf, size_t len, xs_offset_t *offsets,
                                     size_t *n, char topics[][256], char *errstr,
                                     size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
