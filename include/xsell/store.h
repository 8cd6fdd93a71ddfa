/*
 * xsell — the state store: one RocksDB database per worker with the column
 * families users, items, names, meta and neighbours (see engine.h for the
 * keys). The only module of the program that includes <rocksdb/c.h> (a test,
 * tests/unit/test_store_upgrade.c, uses it to write a directory of the
 * layout before `neighbours`). A read-write open creates a missing family; a
 * read-only open opens the families the directory has, and one it lacks
 * reads as empty (xs_store_get: not found; xs_store_iterate: no records).
 *
 * Exactly-once state: the worker puts every dirty record of a checkpoint and
 * the next input offset of each partition ("offset/<topic>/<partition>" in
 * meta, int64 big-endian) into one xs_store_batch_t and writes it atomically, so
 * the stored offsets always describe exactly the state stored with them.
 *
 * meta "format" holds the store format: 'X' 'S' version(u8) seed(u64 LE); a
 * store written by a newer format is refused with a clear error.
 *   version 1: families users, items, names, meta; item records (sketch.h)
 *              up to version 4, an item's neighbour lists inside its record;
 *   version 2: and `neighbours`: item records version 5 (summaries and
 *              counts), the lists in the item's `neighbours` record.
 * A read-write open of a version 1 store creates the family and rewrites the
 * marker as 2 (its version 4 item records still decode, and are written as
 * version 5 when they change); from then on a build of version 1 refuses it:
 * read-only with "state store format version 2 is newer than this build
 * (1)", read-write with RocksDB's "Column families not opened: neighbours".
 * A read-only open leaves a version 1 store as it is.
 */
#ifndef XSELL_STORE_H
#define XSELL_STORE_H

#include <stdbool.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/engine.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XS_STORE_FORMAT_VERSION 2

typedef struct xs_store xs_store_t;
typedef struct xs_store_batch xs_store_batch_t;

/*
 * Opens (creating when missing unless read_only) the database in dir.
 * opts are "rocksdb.*" config entries with the prefix stripped, applied with
 * RocksDB's option-string parser (e.g. {"write_buffer_size", "67108864"}).
 *
 * Write-ahead log recovery: point-in-time (RocksDB's kPointInTimeRecovery,
 * chosen here; rocksdb.wal_recovery_mode overrides it). Every checkpoint is
 * one WriteBatch, one WAL record, so replaying the WAL up to its first
 * damaged record restores the state of an earlier checkpoint with the
 * offsets that go with it, and the worker replays the input from there;
 * skipping damaged records (kSkipAnyCorruptedRecords) would apply later
 * checkpoints over a missing one, and absolute consistency would refuse to
 * start after a torn last write. A writable open first tries absolute
 * consistency, which reports any damage (checksum mismatch, truncated
 * record) and opens nothing; only then is the store opened point-in-time,
 * and xs_store_wal_damage() returns RocksDB's report.
 */
xs_store_t *xs_store_open(const char *dir, const xs_kv_t *opts, size_t n_opts, bool read_only,
                          char *errstr, size_t errstr_size);
void xs_store_close(xs_store_t *s); /* NULL is a no-op */
/*
 * Checks rocksdb.* passthrough pairs (prefix stripped) with RocksDB's option
 * parser, one pair at a time, without opening anything: report(opaque,
 * message) for each pair it rejects. Returns how many.
 */
int xs_store_check_options(const xs_kv_t *opts, size_t n_opts,
                           void (*report)(void *opaque, const char *message), void *opaque);
/* NULL, or what RocksDB found damaged in the write-ahead log at open (the
 * store then holds the state of the last checkpoint before the damage). */
const char *xs_store_wal_damage(const xs_store_t *s);

/* A missing key is *found = false, not an error. The value is appended to val. */
xs_err_t xs_store_get(xs_store_t *s, xs_cf_t cf, const void *key, size_t key_len, xs_buf_t *val,
                      bool *found, char *errstr, size_t errstr_size);

/* The engine backend reading from this store. */
void xs_store_backend(xs_store_t *s, xs_backend_t *backend);

/* A batch for writes into s (which must outlive it). */
xs_store_batch_t *xs_store_batch_new(xs_store_t *s);
void xs_store_batch_destroy(xs_store_batch_t *b);
void xs_store_batch_clear(xs_store_batch_t *b);
/* val NULL: a delete of the key. */
xs_err_t xs_store_batch_put(xs_store_batch_t *b, xs_cf_t cf, const void *key, size_t key_len,
                            const void *val, size_t val_len);
/* xs_put_fn adapter: opaque is the xs_store_batch_t. */
xs_err_t xs_store_batch_put_fn(void *opaque, xs_cf_t cf, const void *key, size_t key_len,
                               const void *val, size_t val_len);
/* fn (NULL: none) also receives every later put of b, after it is in b; its
 * error is the put's (the changelog sends the checkpoint's records with it). */
void xs_store_batch_tap(xs_store_batch_t *b, xs_put_fn fn, void *opaque);
void xs_store_batch_put_offset(xs_store_batch_t *b, const char *topic, int32_t partition,
                               int64_t next);
size_t xs_store_batch_bytes(const xs_store_batch_t *b);
int xs_store_batch_count(const xs_store_batch_t *b);

/* Writes the batch atomically (sync = fsync the WAL). */
xs_err_t xs_store_write(xs_store_t *s, xs_store_batch_t *b, bool sync, char *errstr,
                        size_t errstr_size);

/* Next offset stored for (topic, partition); *found = false when none. */
xs_err_t xs_store_get_offset(xs_store_t *s, const char *topic, int32_t partition, int64_t *next,
                             bool *found, char *errstr, size_t errstr_size);

/* Calls fn for every record of cf in key order; a non-zero return stops. */
typedef int (*xs_store_iter_fn)(void *opaque, const void *key, size_t key_len, const void *val,
                                size_t val_len);
xs_err_t xs_store_iterate(xs_store_t *s, xs_cf_t cf, xs_store_iter_fn fn, void *opaque,
                          char *errstr, size_t errstr_size);

/* Compacts every column family (footprint measurements). */
void xs_store_compact(xs_store_t *s);
/* Live SST bytes + memtables of all column families (approximate). */
uint64_t xs_store_size_bytes(xs_store_t *s);
/* SST bytes of one column family (after xs_store_compact(): its size on disk). */
uint64_t xs_store_cf_sst_bytes(xs_store_t *s, xs_cf_t cf);
/* True when the directory exists and holds anything. */
bool xs_store_dir_nonempty(const char *dir);
/* Removes a state directory recursively (replay from scratch). */
xs_err_t xs_store_destroy_dir(const char *dir, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
