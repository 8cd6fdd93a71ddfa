/*
 * xsell — the streaming worker: consumer group on the input topics,
 * Avro decoding, the engine, RocksDB checkpoints and the output producer.
 *
 * Loop: poll a message; decode and validate it (failures go to the
 * dead-letter topic with the reason, and the partition moves on); apply it
 * to the engine; publish the list it triggered (key = user_id). Every
 * commit.interval.ms, or when the cache holds checkpoint.dirty.bytes of
 * dirty state, a checkpoint:
 *   1. flush the producer: every list caused so far is acknowledged;
 *   2. one RocksDB WriteBatch with every dirty record and the next offset of
 *      every partition that moved;
 *   3. commit the same offsets to Kafka (for lag monitoring only: on every
 *      assignment the worker seeks to the offsets stored in RocksDB).
 * A crash between 1 and 2 replays the tail on restart: the state is rebuilt
 * exactly and the lists republished with the same list_id (at least once).
 * The batch of step 2 is filled on the worker thread and written by a
 * checkpoint writer thread while the loop goes on; step 3 and the cache trim
 * follow on the worker thread once it is written, and the next checkpoint
 * waits for that. Revocation and shutdown checkpoint synchronously.
 *
 * Operations: when http.address is set, xs_worker_new() starts the HTTP
 * endpoint (include/xsell/http.h): /metrics, /healthz (the loop turns),
 * /readyz (caught up with what the partitions held at the last assignment)
 * and the queries, which run on the HTTP thread under a lock the worker
 * holds per message and per checkpoint write. A user query looks for the
 * user's profile in each assigned partition; a user unknown to this worker
 * gets the cold-start list (trending items), with "known_user": false.
 *
 * from_beginning: every partition's first assignment starts at the
 * beginning, whatever offsets are stored; xs_worker_new() refuses it unless
 * the state directory is empty (otherwise events would be counted twice).
 */
#ifndef XSELL_WORKER_H
#define XSELL_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/config.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_worker xs_worker_t;

typedef struct xs_worker_opts {
    const xs_config_t *config; /* borrowed for the worker's life */
    bool until_end;            /* stop once caught up with what was there at assignment */
    bool from_beginning;       /* replay every partition from its first offset */
} xs_worker_opts_t;

typedef struct xs_worker_stats {
    uint64_t messages, events, lists, dlq, checkpoints;
    uint64_t dlq_by_reason_decode, dlq_by_reason_validation, dlq_by_reason_size;
    double last_checkpoint_ms;
    int64_t lag; /* -1 unknown */
} xs_worker_stats_t;

xs_worker_t *xs_worker_new(const xs_worker_opts_t *opts, char *errstr, size_t errstr_size);
/* Runs until *stop becomes non-zero, --until-end is reached or a fatal error.
 * Ends with a final checkpoint. */
xs_err_t xs_worker_run(xs_worker_t *w, volatile sig_atomic_t *stop, char *errstr,
                       size_t errstr_size);
void xs_worker_stats(const xs_worker_t *w, xs_worker_stats_t *st);
void xs_worker_destroy(xs_worker_t *w);

#ifdef __cplusplus
}
#endif
#endif
