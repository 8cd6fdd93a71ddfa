/*
 * Test support for the guarantee tests: worker processes (spawn, wait,
 * kill, RSS), loading a data set into the development broker, reading the
 * list ids of an output topic with a retention check, stored offsets and
 * state dumps. Failures abort the test through cmocka.
 */
#ifndef XSELL_XSPROC_H
#define XSELL_XSPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xsell/codec.h"
#include "xsell/kafka.h"

/* $XS_BIN_DIR/<name> (XS_BIN_DIR is set by ctest). Static buffer. */
const char *xsp_bin(const char *name);
/* Milliseconds on the monotonic clock. */
int64_t xsp_now_ms(void);
void xsp_sleep_ms(int ms);

/* Starts argv[0] (a path) with stdout and stderr appended to log_path. */
pid_t xsp_spawn(char *const argv[], const char *log_path);
/* Waits up to timeout_ms; true with *status (waitpid status) when it ended. */
bool xsp_wait(pid_t pid, int timeout_ms, int *status);
/* True once file `path` contains `needle`; polls until timeout_ms, or until
 * pid (when > 0) has exited. */
bool xsp_wait_log(const char *path, const char *needle, pid_t pid, int timeout_ms);
/* The same, once `needle` occurs at least `count` times. */
bool xsp_wait_log_count(const char *path, const char *needle, int count, pid_t pid, int timeout_ms);
/* Runs argv to completion with stdout to out_path; returns the exit code (-1 signal). */
int xsp_run(char *const argv[], const char *out_path);
/* Whole file, NUL-terminated; *len without the NUL. Caller frees. */
char *xsp_read_file(const char *path, size_t *len);
/* VmRSS of a live process in KiB, -1 when it has gone. */
long xsp_rss_kb(pid_t pid);

/* Next offset stored in the state directory for (topic, partition), -1 when none. */
int64_t xsp_stored_offset(const char *state_dir, const char *topic, int32_t partition);
/* Runs `xsell inspect --state dir --dump` into out_path; asserts exit 0. Returns the text. */
char *xsp_dump(const char *state_dir, const char *out_path, size_t *len);
/* The user lines of a dump without the last_list ones (the fingerprints of
 * the lists last published, which depend on item knowledge); *n_users: the
 * users. NUL-terminated, caller frees. */
char *xsp_user_profiles(const char *dump, size_t len, size_t *out_len, size_t *n_users);

/*
 * Starts xsell-worker with --config topics_conf, the bootstrap, --state-dir
 * dir and --group group, then args (NULL-terminated: "--set", "k=v", flags
 * such as "--until-end"), output to log.
 */
pid_t xsp_start_worker(const char *bootstrap, const char *topics_conf, const char *dir,
                       const char *group, const char *const *args, const char *log);

/* $XS_DATA_DIR/rel (XS_DATA_DIR is set by ctest). Static buffer. */
const char *xsp_data(const char *rel);
/* The environment variable name as a number, def when unset. */
uint64_t xsp_env_u64(const char *name, uint64_t def);

/* Dumps both state directories (into dump_ref, dump_run) and fails unless
 * their user profiles (xsp_user_profiles) are the same, of more than
 * min_users users; says so on stderr, prefixed with tag. */
void xsp_assert_same_profiles(const char *tag, const char *dir_ref, const char *dump_ref,
                              const char *dir_run, const char *dump_run, size_t min_users);

/* Fails the test with the first differing line when the two texts differ. */
void xsp_assert_same_text(const char *what, const char *a, size_t la, const char *b, size_t lb);

/* Produces up to max_events of a data set (zstd, large batches: ~15 bytes per
 * event, so 200k events fit the mock's 5 MiB per partition). Returns the count. */
uint64_t xsp_produce_dataset(const char *bootstrap, const char *format, const char *path,
                             uint64_t max_events);

/*
 * A data set read once and held as encoded messages, produced in slices (to
 * keep a worker busy for as long as a test needs, whatever its speed). Same
 * topics, keys and producer settings as xsp_produce_dataset().
 */
typedef struct xsp_feed xsp_feed_t;
xsp_feed_t *xsp_feed_load(const char *bootstrap, const char *format, const char *path,
                          uint64_t max_events);
size_t xsp_feed_count(const xsp_feed_t *f);
/* The topic of message i. */
const char *xsp_feed_topic(const xsp_feed_t *f, size_t i);
/* Produces messages [from, to) and flushes. */
void xsp_feed_produce(xsp_feed_t *f, size_t from, size_t to);
void xsp_feed_free(xsp_feed_t *f);

/* The list ids found in an output topic, sorted; total counts duplicates. */
typedef struct xsp_ids {
    uint64_t (*v)[2];
    size_t n;     /* distinct */
    size_t total; /* messages read */
} xsp_ids_t;
/*
 * Reads every message of topic (all partitions, from the beginning, until
 * caught up) and decodes it as a CrossSellList. Asserts that nothing was
 * lost to the mock's retention: every partition is read from offset 0
 * without gaps.
 */
xsp_ids_t xsp_read_list_ids(const char *bootstrap, xs_codec_t *codec, const char *topic);
bool xsp_ids_has(const xsp_ids_t *ids, const uint64_t id[2]);
void xsp_ids_free(xsp_ids_t *ids);

#endif
