/*
 * xsell — Kafka glue for the changelog (changelog.h): a transactional
 * producer and a reader of one whole partition. Like kafka.h, only its
 * implementation (lib/io/kafka_txn.c) includes <librdkafka/rdkafka.h>.
 *
 * Transactional producer: one transactional.id per writer; _new runs
 * init_transactions, which fences an earlier producer of the same id and
 * aborts the transaction it left open (a writer killed mid-checkpoint).
 * One transaction at a time: begin, send (any number), commit or abort.
 * A message sent with an offset slot gets the offset the broker gave it
 * written there by the time commit returns. The producer may be used from
 * one thread at a time (the loop sends, the checkpoint writer commits; the
 * checkpoint protocol never overlaps them).
 *
 * Partition reader: reads one partition from its first offset up to its end
 * as of the read (with read_committed: up to the last stable offset, only
 * committed transactions, no aborted record), calling fn for each record.
 *
 * Errors are "kafka: <what>: <librdkafka message>" in errstr, as in kafka.h.
 */
#ifndef XSELL_KAFKA_TXN_H
#define XSELL_KAFKA_TXN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/kafka.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_kafka_txn xs_kafka_txn_t;

/* Creates the producer (acks=all, idempotence, the given transactional.id;
 * conf after these, except that transactional.id stays) and runs
 * init_transactions (up to timeout_ms). */
xs_kafka_txn_t *xs_kafka_txn_new(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                 const char *transactional_id, int timeout_ms, char *errstr,
                                 size_t errstr_size);
/* Aborts an open transaction (no wait) and releases. NULL is a no-op. */
void xs_kafka_txn_destroy(xs_kafka_txn_t *tp);

xs_err_t xs_kafka_txn_begin(xs_kafka_txn_t *tp, char *errstr, size_t errstr_size);
/* Queues one message to an explicit partition (value NULL: a tombstone);
 * waits while the local queue is full. offset: NULL, or where the broker's
 * offset for it is written (-1 until acknowledged). */
xs_err_t xs_kafka_txn_send(xs_kafka_txn_t *tp, const char *topic, int32_t partition,
                           const void *key, size_t key_len, const void *value, size_t value_len,
                           int64_t *offset, char *errstr, size_t errstr_size);
/* Serves delivery reports without blocking. */
void xs_kafka_txn_poll(xs_kafka_txn_t *tp);
/* Waits (up to timeout_ms) until every message sent is in the log, not yet
 * committed: read_uncommitted readers see it, read_committed ones do not. */
xs_err_t xs_kafka_txn_flush(xs_kafka_txn_t *tp, int timeout_ms, char *errstr, size_t errstr_size);
/* Flushes and commits (up to timeout_ms). On failure the transaction is
 * aborted when it can be and XS_ERR_KAFKA returned: nothing of it is
 * visible to read_committed readers. */
/* Adds input offsets (the next offset to consume of each partition) to the
 * open transaction, committed to the group with it (KIP-447): a group
 * membership whose generation has passed fails it (abortable: the
 * transaction is aborted), so a member that lost its partitions cannot
 * commit for them. */
xs_err_t xs_kafka_txn_send_offsets(xs_kafka_txn_t *tp, const xs_offset_t *offsets, size_t n,
                                   const xs_consumer_group_meta_t *gm, int timeout_ms, char *errstr,
                                   size_t errstr_size);
xs_err_t xs_kafka_txn_commit(xs_kafka_txn_t *tp, int timeout_ms, char *errstr, size_t errstr_size);
xs_err_t xs_kafka_txn_abort(xs_kafka_txn_t *tp, int timeout_ms, char *errstr, size_t errstr_size);
/* Whether a transaction is open (begun, not committed nor aborted). */
bool xs_kafka_txn_open(const xs_kafka_txn_t *tp);

/* One record of a partition read: fn returns non-zero to stop with
 * XS_ERR_INVALID (errstr: "stopped by the reader"). */
typedef int (*xs_kafka_txn_record_fn)(void *opaque, const xs_msg_t *m);
/* Progress, about once a second while reading: records and bytes so far,
 * and the end the read goes to. */
typedef void (*xs_kafka_txn_progress_fn)(void *opaque, uint64_t records, uint64_t bytes,
                                         int64_t end);

typedef struct xs_kafka_txn_read {
    const char *bootstrap;
    const xs_kv_t *conf; /* passed to librdkafka (group.id and the like are not needed) */
    size_t n_conf;
    const char *topic;
    int32_t partition;
    bool read_committed;
    int timeout_ms; /* longest wait without progress */
    xs_kafka_txn_record_fn fn;
    xs_kafka_txn_progress_fn progress; /* may be NULL */
    void *opaque;
} xs_kafka_txn_read_t;

/* Reads the partition from its first offset to its end (the high watermark,
 * or the last stable offset with read_committed, when the read starts).
 * *records, *bytes: what was read; *end the end offset reached. */
xs_err_t xs_kafka_txn_read_partition(const xs_kafka_txn_read_t *r, uint64_t *records,
                                     uint64_t *bytes, int64_t *end, char *errstr,
                                     size_t errstr_size);
/* The partition's high watermark (read_committed: the last stable offset);
 * -1 with errstr on failure. */
int64_t xs_kafka_txn_end_offset(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                const char *topic, int32_t partition, bool read_committed,
                                int timeout_ms, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
