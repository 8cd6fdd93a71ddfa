/*
 * xsell — the streaming worker: consumer group on the input topics,
 * Avro decoding, the engine, RocksDB checkpoints and the output producer.
 *
 * Loop: poll a message; decode and validate it (failures go to the
 * dead-letter topic with the reason, and the partition moves on); apply it
 * to the engine; publish the list it triggered (key = user_id). Every
 * commit.interval.ms, or when the cache holds checkpoint.dirty.bytes of
 * dirty state, a checkpoint of the state at that instant:
 *   1. the engine's snapshot of every dirty record and the next offset of
 *      every partition that moved go into one RocksDB WriteBatch;
 *   2. once every list caused so far is acknowledged by the producer, the
 *      batch is written;
 *   3. the same offsets are committed to Kafka (for lag monitoring only: on
 *      every assignment the worker seeks to the offsets stored in RocksDB).
 * A crash before 2 completes replays the tail on restart: the state is
 * rebuilt exactly and the lists republished with the same list_id (at
 * least once). None of it stalls the loop: the snapshot is put into the
 * batch a few records per loop turn (a record an event is about to change
 * goes in first, with its value at the snapshot's instant), the producer's
 * acknowledgements are awaited without blocking, the batch is written by a
 * checkpoint writer thread; step 3 and the cache trim follow on the worker
 * thread once it is written. The next checkpoint starts after that; dirty
 * state over its bound while one is in flight waits for it (backpressure).
 * Revocation and shutdown checkpoint synchronously.
 *
 * Operations: when http.address is set, xs_worker_new() starts the HTTP
 * endpoint (include/xsell/http.h): /metrics, /healthz (the loop turns),
 * /readyz (caught up with what the partitions held at the last assignment)
 * and the queries, which run on the HTTP thread under a lock the worker
 * holds per message and per checkpoint step. A user query looks for the
 * user's profile in each assigned partition; a user unknown to this worker
 * gets the cold-start list (trending items), with "known_user": false.
 *
 * from_beginning: every partition's first assignment starts at the
 * beginning, whatever offsets are stored; xs_worker_new() refuses it unless
 * the state directory is empty (otherwise events would be counted twice).
 *
 * The worker is a composition: the processor runtime (runtime.h) runs the
 * engine processor (engine_processor.h) with the router (router.h) and the
 * checkpoint protocol (checkpoint.h); the worker's metrics
 * (worker_metrics.h) and the HTTP service (service.h) sit beside them.
 */
#ifndef XSELL_WORKER_H
#define XSELL_WORKER_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_worker xs_worker_t;

typedef struct xs_worker_opts {
    const xs_config_t *config; /* borrowed for the worker's life */
    bool until_end;            /* stop once caught up with what was there at assignment */
    bool from_beginning;       /* replay every partition from its first offset */
} xs_worker_opts_t;

/* messages, events, lists, dlq (by reason), checkpoints, last checkpoint, lag */
typedef xs_runtime_stats_t xs_worker_stats_t;

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
