/*
 * xsell — Kafka glue, the only files that include <librdkafka/rdkafka.h>:
 * lib/io/devbroker.c (xs_devbroker_*), producer.c (xs_producer_*),
 * consumer.c (xs_consumer_*) and kafka.c (xs_kafka_*: administration and
 * what the three share). One header for the four modules. kafka_txn.h
 * (the changelog's transactions and partition reads) is the fifth.
 *
 * Three handles:
 *   xs_devbroker_t  the development broker: librdkafka's mock cluster (its own
 *                   implementation of the Kafka protocol, served over TCP on
 *                   loopback), with topic creation and fault injection.
 *   xs_producer_t   an idempotent producer with delivery accounting and
 *                   backpressure (send blocks while the local queue is full).
 *   xs_consumer_t   a consumer, either in a consumer group (subscribe; the
 *                   caller decides each assigned partition's start offset)
 *                   or group-less (assign every partition of the topics).
 * Plus topic administration through the Admin API (create, describe) for
 * real clusters: `xsell topics`, the tests and the benchmarks on real Kafka.
 *
 * Configuration: every handle takes an array of xs_kv_t passed verbatim to
 * librdkafka (rd_kafka_conf_set) after xsell's defaults, so user values win.
 * Errors are written into errstr as "kafka: <what>: <librdkafka message>".
 * Ownership: _new returns a handle the caller releases with _destroy;
 * _destroy(NULL) is a no-op. Strings passed in are copied.
 */
#ifndef XSELL_KAFKA_H
#define XSELL_KAFKA_H

#include <stdint.h>
#include <stdbool.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_header {
    const char *name;
    const void *value;
    size_t len;
} xs_header_t;

/* ---- development broker ------------------------------------------------ */

typedef struct xs_devbroker xs_devbroker_t;

xs_devbroker_t *xs_devbroker_new(int brokers, char *errstr, size_t errstr_size);
void xs_devbroker_destroy(xs_devbroker_t *db);
/* "127.0.0.1:port,..." — valid until destroy. */
const char *xs_devbroker_bootstraps(const xs_devbroker_t *db);
xs_err_t xs_devbroker_create_topic(xs_devbroker_t *db, const char *topic, int partitions,
                                   char *errstr, size_t errstr_size);
/* Fault injection for tests. */
xs_err_t xs_devbroker_set_broker_down(xs_devbroker_t *db, int32_t broker_id, bool down);
/* Makes the next `cnt` requests of Kafka API `api_key` (e.g. 0 = Produce,
 * 1 = Fetch, 8 = OffsetCommit) fail with Kafka error code `kafka_err`. */
xs_err_t xs_devbroker_push_request_errors(xs_devbroker_t *db, int16_t api_key, size_t cnt,
                                          int kafka_err);

/* ---- producer ------------------------------------------------------------ */

typedef struct xs_producer xs_producer_t;

/* Defaults: enable.idempotence=true, acks=all, linger.ms=5, compression.codec=lz4. */
xs_producer_t *xs_producer_new(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                               char *errstr, size_t errstr_size);
/* Flushes (up to 30 s) and releases. */
void xs_producer_destroy(xs_producer_t *p);

/*
 * Queues one message (copied). partition -1 = partitioned by key, by the
 * partitioner of the handle's conf: librdkafka's default consistent_random
 * (CRC32 of the key modulo the partition count) unless conf sets
 * `partitioner` (Java clients use murmur2, librdkafka's murmur2_random).
 * xs_producer_partition() computes the same choice. When the local
 * queue is full it serves delivery reports and retries until there is room:
 * backpressure, never a drop. Returns XS_ERR_KAFKA for a permanent error
 * (unknown topic, message too large) with errstr set.
 */
xs_err_t xs_producer_send(xs_producer_t *p, const char *topic, int32_t partition, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          const xs_header_t *headers, size_t n_headers, char *errstr,
                          size_t errstr_size);
/*
 * The partition librdkafka's partitioner `partitioner` (a value of its
 * `partitioner` property: consistent_random, consistent, murmur2_random,
 * murmur2, fnv1a_random, fnv1a) gives a non-empty key among partition_cnt
 * partitions, as a producer configured with it does; -1 for an unknown
 * name, an empty key or partition_cnt < 1.
 */
int32_t xs_producer_partition(const char *partitioner, const void *key, size_t key_len,
                              int32_t partition_cnt);
/* Serves delivery reports without blocking. */
void xs_producer_poll(xs_producer_t *p);
/*
 * Waits until everything queued so far is acknowledged (or timeout_ms passes:
 * XS_ERR_KAFKA "flush timed out"). Returns XS_ERR_KAFKA if any delivery failed
 * since the previous flush (errstr says the first failure), else XS_OK.
 */
xs_err_t xs_producer_flush(xs_producer_t *p, int timeout_ms, char *errstr, size_t errstr_size);
/*
 * Marks, to wait for acknowledgements without blocking: after
 * xs_producer_mark(), xs_producer_marked_done() serves delivery reports
 * without blocking and sets *done once every message sent before the latest
 * mark has its report. Returns XS_ERR_KAFKA, like flush, if any delivery
 * failed since the previous flush or check, or on a fatal producer error.
 */
void xs_producer_mark(xs_producer_t *p);
xs_err_t xs_producer_marked_done(xs_producer_t *p, bool *done, char *errstr, size_t errstr_size);
/* Messages queued but not yet acknowledged. */
int xs_producer_outq_len(xs_producer_t *p);
uint64_t xs_producer_delivered(const xs_producer_t *p);
uint64_t xs_producer_failed(const xs_producer_t *p);

/* ---- consumer ------------------------------------------------------------ */

typedef struct xs_consumer xs_consumer_t;

#define XS_OFFSET_BEGINNING (-2)
#define XS_OFFSET_END (-1)
#define XS_OFFSET_STORED (-1000) /* Kafka's committed offset (or auto.offset.reset) */

/*
 * Assignment hook: called for each newly assigned partition (in group-less
 * mode too, with *offset preset to opts->start_offset)
 * before any of its messages is returned; the hook sets *offset to where
 * consumption must start (an absolute offset, XS_OFFSET_BEGINNING,
 * XS_OFFSET_END or XS_OFFSET_STORED). `on_revoke` is called for each
 * partition taken away, before it is unassigned. Either may be NULL.
 */
typedef struct xs_consumer_hooks {
    void *opaque;
    void (*on_assign)(void *opaque, const char *topic, int32_t partition, int64_t *offset);
    void (*on_revoke)(void *opaque, const char *topic, int32_t partition);
} xs_consumer_hooks_t;

typedef struct xs_consumer_opts {
    const char *bootstrap;
    const char *group_id;      /* NULL: group-less, every partition assigned */
    const char *const *topics; /* n_topics names */
    size_t n_topics;
    int64_t start_offset; /* group-less start: XS_OFFSET_BEGINNING or XS_OFFSET_END */
    const xs_kv_t *conf;  /* passed to librdkafka after the defaults */
    size_t n_conf;
    xs_consumer_hooks_t hooks;
    /* auto.offset.reset=error (whatever conf says): an offset out of range
     * (below the low watermark: deleted by retention) is returned by
     * xs_consumer_poll() as XS_ERR_INPUT_LOST instead of a silent reset. */
    bool offset_reset_error;
    /* Group mode: the first n_copartitioned topics are co-partitioned
     * (keyed alike, same partition count): partition p of each must be
     * assigned to the same member. Checked after every assignment; an
     * assignor that splits them (cooperative-sticky, roundrobin: they
     * balance partition counts, not partition numbers) makes every later
     * xs_consumer_poll() fail with XS_ERR_CONFIG. 0: no check. */
    size_t n_copartitioned;
    /* Group mode: group.instance.id (static membership: a member that
     * closes sends no LeaveGroup, and one that rejoins with the same id
     * within session.timeout.ms gets its partitions back without a
     * rebalance); NULL or empty: dynamic membership. conf may set it too. */
    const char *group_instance_id;
} xs_consumer_opts_t;

/* Defaults: enable.auto.commit=false, enable.auto.offset.store=false,
 * auto.offset.reset=earliest, enable.partition.eof=true,
 * session.timeout.ms=6000 (the mock broker's group join waits for it). */
xs_consumer_t *xs_consumer_new(const xs_consumer_opts_t *opts, char *errstr, size_t errstr_size);
/* Closes (leaves the group, revoking partitions through on_revoke) and releases. */
void xs_consumer_destroy(xs_consumer_t *c);

typedef struct xs_msg {
    const char *topic;
    int32_t partition;
    int64_t offset;
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
    int64_t timestamp;  /* message timestamp (ms), -1 if none */
    const void *native; /* the librdkafka message (headers), NULL when none */
} xs_msg_t;

/* The value of the last header `name` of a polled message (valid as the
 * message); false when it has none. value may be NULL for a null header. */
bool xs_kafka_msg_header(const xs_msg_t *m, const char *name, const void **value, size_t *len);

/*
 * Waits up to timeout_ms for the next message. Returns XS_OK with *msg
 * filled (valid until the next poll or destroy), XS_ERR_EOF when the
 * timeout passed without a message (not an error), or XS_ERR_KAFKA for a
 * fatal consumer error. Partition-EOF and transient broker errors are
 * handled inside (counted, logged at debug) and never returned. With
 * offset_reset_error, XS_ERR_INPUT_LOST: the partition's fetch offset is out
 * of range; msg->topic, partition and offset (the offset asked for) say
 * which, the partition stops until xs_consumer_seek().
 */
xs_err_t xs_consumer_poll(xs_consumer_t *c, int timeout_ms, xs_msg_t *msg, char *errstr,
                          size_t errstr_size);

/*
 * True once the consumer has an assignment and, for every assigned
 * partition, its position has reached the high watermark that partition had
 * when it was assigned (i.e. everything that was there has been consumed).
 */
bool xs_consumer_caught_up(xs_consumer_t *c);

/* Number of partitions currently assigned. */
int xs_consumer_assigned_count(xs_consumer_t *c);

/* In hooks.on_revoke: true when the group took the partitions away without
 * this member's part (its session timed out: a pause or a broker outage
 * longer than session.timeout.ms); another member may own them already. */
bool xs_consumer_assignment_lost(xs_consumer_t *c);

/*
 * The consumer's group membership as of now (group id, generation, member
 * id), for a transaction that commits input offsets on the group's behalf
 * (xs_kafka_txn_send_offsets): the group coordinator refuses the commit of a
 * member whose generation has passed. NULL: out of memory or no group.
 * Any thread. Free with xs_consumer_group_meta_free (NULL is a no-op).
 */
typedef struct xs_consumer_group_meta xs_consumer_group_meta_t;
xs_consumer_group_meta_t *xs_consumer_group_meta(xs_consumer_t *c);
void xs_consumer_group_meta_free(xs_consumer_group_meta_t *gm);

/*
 * Broker connectivity, as librdkafka reports it: true while every broker is
 * down (from "all brokers are down" until a broker answers again; logged at
 * warn once per outage, and its end at info); *down_ms: for how long.
 */
bool xs_consumer_brokers_down(xs_consumer_t *c, int64_t *down_ms);

/* The partition's low and high watermarks now (a ListOffsets round trip). */
xs_err_t xs_consumer_watermarks(xs_consumer_t *c, const char *topic, int32_t partition, int64_t *lo,
                                int64_t *hi, int timeout_ms, char *errstr, size_t errstr_size);
/* Moves an assigned partition's fetch position to offset (and restarts a stopped one). */
xs_err_t xs_consumer_seek(xs_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                          char *errstr, size_t errstr_size);

/* Deletes the records of a partition below `before` (Admin DeleteRecords; the
 * low watermark becomes `before`), as retention would. Real brokers only. */
xs_err_t xs_kafka_delete_records(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                 const char *topic, int32_t partition, int64_t before,
                                 int timeout_ms, char *errstr, size_t errstr_size);

/* Sum over assigned partitions of (high watermark - position); -1 unknown. */
int64_t xs_consumer_lag(xs_consumer_t *c);
/* The same for one partition; -1 when unknown or not assigned. */
int64_t xs_consumer_partition_lag(xs_consumer_t *c, const char *topic, int32_t partition);

/* Commits `offset` (the next offset to consume) for one partition. */
xs_err_t xs_consumer_commit(xs_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                            bool async, char *errstr, size_t errstr_size);

/* One partition's next offset to consume, for xs_consumer_commit_offsets(). */
typedef struct xs_offset {
    const char *topic;
    int32_t partition;
    int64_t offset;
} xs_offset_t;

/* Commits the offsets of n partitions in one request (n == 0: nothing to do). */
xs_err_t xs_consumer_commit_offsets(xs_consumer_t *c, const xs_offset_t *offsets, size_t n,
                                    bool async, char *errstr, size_t errstr_size);

/* Pauses / resumes fetching of every assigned partition (backpressure). */
xs_err_t xs_consumer_pause_all(xs_consumer_t *c, bool pause);

/* Number of partitions of `topic` as seen in metadata, or -1. */
int xs_kafka_partition_count(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                             const char *topic, int timeout_ms, char *errstr, size_t errstr_size);

/* ---- topic administration (Admin API; real brokers, not the mock) -------- */

typedef struct xs_topic_spec {
    const char *name;
    int partitions;
    int replication;        /* <= 0: the broker's default.replication.factor */
    const xs_kv_t *configs; /* topic configs, e.g. cleanup.policy=compact */
    size_t n_configs;
} xs_topic_spec_t;

/*
 * Creates the topics (CreateTopics) and waits until every partition of each
 * has a leader. A topic that exists already is left as it is (not an error:
 * xs_kafka_describe_topic() tells what it is).
 */
xs_err_t xs_kafka_create_topics(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                const xs_topic_spec_t *topics, size_t n, int timeout_ms,
                                char *errstr, size_t errstr_size);

typedef struct xs_topic_info {
    int partitions;          /* -1: no such topic */
    int replication;         /* replicas of partition 0 */
    int leader;              /* broker id of partition 0's leader, -1 none */
    int leaderless;          /* partitions without a leader right now */
    char cleanup_policy[32]; /* "delete", "compact", "compact,delete" */
} xs_topic_info_t;

/* Metadata plus DescribeConfigs of one topic; XS_OK with partitions -1 when it does not exist. */
xs_err_t xs_kafka_describe_topic(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                 const char *topic, int timeout_ms, xs_topic_info_t *info,
                                 char *errstr, size_t errstr_size);

/* The version of the librdkafka loaded at run time ("2.0.2"). */
const char *xs_kafka_version(void);

/*
 * Checks kafka.* passthrough pairs (prefix stripped) with librdkafka's own
 * parser, without connecting: report(opaque, message) for each pair it
 * rejects (secret values hidden as in the worker's errors). Returns how many.
 */
int xs_kafka_check_conf(const xs_kv_t *conf, size_t n_conf,
                        void (*report)(void *opaque, const char *message), void *opaque);

#ifdef __cplusplus
}
#endif
#endif
