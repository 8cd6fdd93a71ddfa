/*
 * xsell — the checkpoint protocol: a processor's changed state and the
 * input offsets it reflects, in one RocksDB WriteBatch, written off the
 * loop. Any processor of the runtime (runtime.h) uses this one
 * implementation; docs/GUARANTEES.md says what it promises and which tests
 * prove it.
 *
 * States (one checkpoint in flight at most) and the function that makes
 * each transition:
 *
 *            xs_checkpoint_start()            xs_checkpoint_advance()
 *   IDLE ──────────────────────────> SNAPSHOT ───────────────────────> WRITING
 *    ^   offsets of the partitions     │  records put a few per turn;     │
 *    │   that moved + the processor's  │  then the producer's acks of     │ writer
 *    │   snapshot begins; producer     │  everything before the mark      │ thread:
 *    │   marked                        │  (sync: written right here) ─┐   │ the batch,
 *    │                                                                │   │ atomically
 *    │        xs_checkpoint_finish()                                  v   v
 *    └──────────────────────────────────────────────────────────── WRITTEN
 *       stored offsets move, committed to Kafka (lag monitoring only),
 *       the processor trims its cache (checkpointed)
 *
 * Invariants:
 *   1. The batch is the state at one instant between two inputs: every
 *      record dirty then, with its value then, and the next offset of every
 *      partition that moved before then.
 *   2. It is written only once the producer acknowledged every message sent
 *      before that instant (the outputs of the inputs it covers).
 *   3. Offsets and state are written together or not at all (one
 *      WriteBatch); a crash before the write replays from the previous one.
 *   4. The processor evicts only after the write (checkpointed), so nothing
 *      is read back older than the batch.
 *   5. After a fatal error (xs_checkpoint_fail) no offset is stored.
 *   6. Revocation and shutdown complete the one in flight, then run a whole
 *      one synchronously (xs_checkpoint_run); dirty state over its bound
 *      while one is in flight waits for it (xs_checkpoint_drain).
 *   7. With a changelog (changelog.h, C1-C4), the checkpoint is also one
 *      Kafka transaction, begun at start, its offsets records sent once the
 *      snapshot is in and the lists acknowledged, committed by the writer
 *      before the batch is written.
 *
 * The partition table (next offset consumed, offset last stored, assigned)
 * lives here too: the offsets are half of a checkpoint. It is shared with
 * queries under the runtime's lock (mu): functions marked "under mu" expect
 * the caller to hold it; start, advance and finish take it themselves.
 * Threads: the loop's thread calls everything; the writer thread only
 * writes batches.
 */
#ifndef XSELL_CHECKPOINT_H
#define XSELL_CHECKPOINT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/kafka.h"
#include "xsell/store.h"
#include "xsell/worker_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_checkpoint xs_checkpoint_t;
typedef struct xs_processor xs_processor_t; /* runtime.h */
typedef struct xs_changelog xs_changelog_t; /* changelog.h */
typedef struct xs_global xs_global_t;       /* global.h */

typedef struct xs_checkpoint_opts {
    xs_store_t *store;               /* borrowed */
    bool sync;                       /* state.sync: fsync every batch */
    xs_producer_t *producer;         /* marked and awaited (borrowed) */
    xs_consumer_t *consumer;         /* offsets committed to (borrowed) */
    const xs_processor_t *processor; /* its snapshot goes into the batch (borrowed) */
    pthread_mutex_t *mu;             /* the lock shared with queries */
    xs_worker_metrics_t *metrics;    /* borrowed */
    bool from_beginning;             /* first assignment ignores stored offsets */
    /* NULL, or every checkpoint also goes to this changelog (changelog.h:
     * its transaction commits before the batch is written) */
    xs_changelog_t *changelog;
    /* NULL, or global item knowledge (global.h, with a changelog): every
     * checkpoint also sends, in its transaction, the pair deltas of each
     * input partition that moved, and stores what the applied ones cover */
    xs_global_t *global;
} xs_checkpoint_opts_t;

/* Starts the writer thread. */
xs_checkpoint_t *xs_checkpoint_new(const xs_checkpoint_opts_t *opts, char *errstr,
                                   size_t errstr_size);
/* Stops the writer (it finishes a batch in flight first). NULL is a no-op. */
void xs_checkpoint_destroy(xs_checkpoint_t *cp);

/* IDLE -> SNAPSHOT (none in flight); *started is false when there is
 * nothing to write (no dirty record, no offset moved). */
xs_err_t xs_checkpoint_start(xs_checkpoint_t *cp, bool *started, char *errstr, size_t errstr_size);
/* Puts up to max snapshot records (0: all) into the batch; once all are in
 * and the producer acknowledged everything before the mark (flush: waits
 * for it), hands the batch to the writer (sync: writes it here). */
xs_err_t xs_checkpoint_advance(xs_checkpoint_t *cp, size_t max, bool flush, bool sync, char *errstr,
                               size_t errstr_size);
/* WRITTEN -> IDLE: stored offsets, Kafka commit, the processor's trim. */
xs_err_t xs_checkpoint_finish(xs_checkpoint_t *cp, char *errstr, size_t errstr_size);
/* Waits for the batch in flight, if any, to be written. */
void xs_checkpoint_wait(xs_checkpoint_t *cp);
/* Completes the checkpoint in flight, if any, on the calling thread. */
xs_err_t xs_checkpoint_drain(xs_checkpoint_t *cp, char *errstr, size_t errstr_size);
/* A whole checkpoint on the calling thread, after the one in flight. */
xs_err_t xs_checkpoint_run(xs_checkpoint_t *cp, char *errstr, size_t errstr_size);
/* Whether one is in flight (not IDLE). */
bool xs_checkpoint_busy(const xs_checkpoint_t *cp);
/* After a fatal error: no later checkpoint may store offsets (invariant 5). */
void xs_checkpoint_fail(xs_checkpoint_t *cp);

/* Checkpoints written and the duration of the last one. */
void xs_checkpoint_stats(const xs_checkpoint_t *cp, uint64_t *count, double *last_ms);

/* ---- the partition table --------------------------------------------------------------- */

/* Under mu: a partition assigned; *offset is where to start (the stored
 * offset, or XS_OFFSET_BEGINNING without one or on the first assignment
 * with from_beginning), *found whether one was stored and used. */
xs_err_t xs_checkpoint_assign(xs_checkpoint_t *cp, const char *topic, int32_t partition,
                              int64_t *offset, bool *found, char *errstr, size_t errstr_size);
/* Under mu: a partition of a topic read in full by this instance (global.h),
 * not the group's: its offsets are stored in the checkpoints, never
 * committed to the group, and it is not listed as assigned below. */
xs_err_t xs_checkpoint_assign_global(xs_checkpoint_t *cp, const char *topic, int32_t partition,
                                     int64_t *offset, bool *found, char *errstr,
                                     size_t errstr_size);
/* Under mu: a partition revoked (its offsets are forgotten). */
void xs_checkpoint_revoke(xs_checkpoint_t *cp, const char *topic, int32_t partition);
/* Under mu: the input up to next (exclusive) is applied. */
xs_err_t xs_checkpoint_consumed(xs_checkpoint_t *cp, const char *topic, int32_t partition,
                                int64_t next);
/* Under mu: a known partition goes on from next (input skipped); the next
 * checkpoint stores it even if nothing follows. */
void xs_checkpoint_skip(xs_checkpoint_t *cp, const char *topic, int32_t partition, int64_t next);
/* Sets opts.global (created after the checkpoint: it needs its table). */
void xs_checkpoint_set_global(xs_checkpoint_t *cp, xs_global_t *global);
/* Under mu: the partitions known (entries are never removed); the i-th one,
 * true when it is assigned. */
size_t xs_checkpoint_n_partitions(const xs_checkpoint_t *cp);
bool xs_checkpoint_partition(const xs_checkpoint_t *cp, size_t i, const char **topic,
                             int32_t *partition);

#ifdef __cplusplus
}
#endif
#endif
