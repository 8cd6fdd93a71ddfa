/*
 * xsell — the group's membership table and user queries over the group:
 * which instance owns which input partition, and the forwarding of
 * GET /v1/users/{id}/cross-sell to the owner of the user's partition.
 *
 * Every instance of a consumer group publishes one membership record to a
 * compacted topic `<group.id>-members` (created by the worker when missing:
 * one partition, cleanup.policy=compact), keyed by its advertised HTTP base
 * URL (http.advertised; by default http://<the bound members.http.address>,
 * the worker's listener of forwarded queries), which is the instance's id. A thread re-reads the
 * runtime's assignment every refresh_ms and publishes a new record whenever the set of partitions
 * of the clicks topic it owns changes (and once at start); at a clean shutdown it publishes a
 * tombstone for its key. Every instance reads the whole topic (its own consumer, manual assignment
 * from the beginning, no group) into a table url -> record.
 *
 * Record value (text, UTF-8, one field a line; a reader skips a record of
 * another magic line or a newer version, counted and logged):
 *
 *     xsell.members 1                  magic and version
 *     url http://10.0.0.7:8080         advertised base URL (= the key)
 *     generation 4                     publications of this instance, from 1
 *     assigned_at 1765130000123        wall-clock ms of the assignment change
 *     partitions 0 3 5                 partitions of topics.clicks owned now
 *
 * Owner of a partition: among the records that claim it, the one with the
 * latest assigned_at, then the highest generation, then the greatest URL.
 * A dead instance (SIGKILL: no tombstone) keeps its claims until the group
 * gives its partitions to another instance, whose newer claim wins; the
 * rule assumes the instances' clocks agree to well under a rebalance (a
 * few seconds). A claim of this instance's own URL for a partition that
 * its runtime does not own (a record not yet superseded) is no owner.
 *
 * Owner of a user: the partition that the input producers' partitioner
 * (input.partitioner, librdkafka's consistent_random by default) gives the
 * user id among the clicks topic's partitions, as xs_producer_partition().
 *
 * Forwarding (xs_members_forward, on the HTTP server thread): a query
 * whose user's partition this worker owns, or that came with the header
 * X-Xsell-Forwarded (already forwarded once: never again, so no loop), is
 * answered here. Otherwise it is sent, path and query unchanged, to the
 * owner's URL (its listener of forwarded queries, a server thread of its
 * own, so two instances forwarding to each other never wait on each
 * other's thread) with X-Xsell-Forwarded: <this instance's URL>, and the
 * owner's status and body are the answer. No owner known: 503; the owner
 * does not answer within the timeouts (connect 500 ms, whole request
 * 2 s): 502; both JSON errors naming the partition, never the local
 * cold-start list (it would look like an answer for the user).
 *
 * Threads: xs_members_new starts the membership thread; xs_members_forward
 * and xs_members_render run on the HTTP server thread (one).
 * Ownership: _new/_destroy (NULL is a no-op); the options are borrowed for
 * the table's life.
 */
#ifndef XSELL_MEMBERS_H
#define XSELL_MEMBERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/runtime.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_members xs_members_t;

#define XS_MEMBERS_MAGIC "xsell.members"
#define XS_MEMBERS_VERSION 1
/* The request header of a forwarded query. */
#define XS_MEMBERS_FORWARDED_HEADER "X-Xsell-Forwarded"

typedef struct xs_members_opts {
    const char *bootstrap;
    const xs_kv_t *conf; /* kafka.* passthrough */
    size_t n_conf;
    const char *topic;       /* the membership topic, <group.id>-members */
    const char *input_topic; /* topics.clicks: the partitions claimed */
    const char *partitioner; /* input.partitioner */
    const char *self_url;    /* the advertised base URL, e.g. http://10.0.0.7:8080 */
    xs_runtime_t *runtime;   /* the assignment, read under its lock */
    int refresh_ms;          /* assignment check period; 0 = 500 */
} xs_members_opts_t;

/* Creates the topic when missing (a broker without the Admin API: left to
 * auto-creation, with a warning) and starts the membership thread. */
xs_members_t *xs_members_new(const xs_members_opts_t *opts, char *errstr, size_t errstr_size);
/* Publishes the tombstone of this instance (waits up to 5 s) and stops. */
void xs_members_destroy(xs_members_t *m);

/* The partition of a user id (-1 while the input topic's partition count is unknown). */
int32_t xs_members_partition_of(xs_members_t *m, const char *user_id);
/* The owner of partition p by the table (copies its URL); false when none
 * claims it (or only a stale claim of this instance). */
bool xs_members_owner(xs_members_t *m, int32_t p, char *url, size_t url_size);

/*
 * For GET /v1/users/{user_id}/cross-sell with the raw request target
 * `target` ("/v1/users/...?..."): false when the query is to be answered
 * here (this worker owns the user's partition, or forwarded); else true
 * with the answer in *status and body (the owner's, or a 502/503 error).
 */
bool xs_members_forward(xs_members_t *m, const char *user_id, const char *target, bool forwarded,
                        unsigned *status, xs_buf_t *body);

/* Appends the Prometheus text of the forwarding counters and the table. */
xs_err_t xs_members_render(xs_members_t *m, xs_buf_t *out);

/*
 * The table alone (what xs_members_t keeps under its lock; not
 * thread-safe): url -> the latest record of each instance.
 * xs_members_table_apply() applies one message of the topic (value NULL:
 * a tombstone); XS_ERR_INVALID for no key or a url that is not the key,
 * the decoder's error for a bad value (then the table is unchanged).
 * xs_members_table_owner() is the ownership rule above (self_url: this
 * instance, never its own owner; NULL: none).
 */
typedef struct xs_members_table xs_members_table_t;
xs_members_table_t *xs_members_table_new(void);
void xs_members_table_destroy(xs_members_table_t *t);
xs_err_t xs_members_table_apply(xs_members_table_t *t, const void *key, size_t key_len,
                                const void *value, size_t value_len);
bool xs_members_table_owner(const xs_members_table_t *t, int32_t p, const char *self_url, char *url,
                            size_t url_size);
size_t xs_members_table_size(const xs_members_table_t *t);

/* Encodes / decodes a record value (text above). decode: XS_ERR_VERSION
 * for a newer version, XS_ERR_DECODE for another magic or a malformed
 * record; *parts (caller frees) holds *n_parts partitions. */
xs_err_t xs_members_encode(xs_buf_t *out, const char *url, uint64_t generation, int64_t assigned_at,
                           const int32_t *parts, size_t n_parts);
xs_err_t xs_members_decode(const void *value, size_t len, char *url, size_t url_size,
                           uint64_t *generation, int64_t *assigned_at, int32_t **parts,
                           size_t *n_parts);

#ifdef __cplusplus
}
#endif
#endif
