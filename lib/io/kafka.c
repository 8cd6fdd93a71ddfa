/*
 * kafka.c — the Kafka glue (see include/xsell/kafka.h): the development
 * broker, an idempotent producer with delivery accounting, and a consumer
 * with caller-chosen start offsets and catch-up tracking.
 *
 * This is the only file that includes the librdkafka headers. Every
 * librdkafka error is converted here, where it enters, into an xs_err_t
 * plus "kafka: <what>: <librdkafka message>" in the caller's errstr.
 *
 * Threads. librdkafka runs its own broker threads, but every callback we
 * register that touches our state (delivery reports, rebalances, offset
 * commit results, errors) is served from the caller's thread inside
 * rd_kafka_poll / rd_kafka_flush / rd_kafka_consumer_poll. So the counters
 * and the partition table below need no locks, as long as one handle is
 * used from one thread (the documented rule for the whole API). The log
 * callback is the exception: it may run on librdkafka's threads and only
 * calls xs_log(), which writes one line per call.
 *
 * Development broker. rd_kafka_mock_cluster_new() needs an rd_kafka_t for
 * its bookkeeping; we create a producer handle that never produces. The
 * mock brokers listen on random loopback ports; the bootstrap string comes
 * from rd_kafka_mock_cluster_bootstraps(). Topics must be created through
 * the mock API (it has no CreateTopics). The sockets the mock brokers accept
 * take that handle's socket options: socket.nagle.disable is set on it, or
 * a response written right behind another waits for the client's delayed
 * ACK (~40 ms on loopback): a producer flush with two or more Produce
 * requests in flight took 40-45 ms instead of 0.1 ms.
 *
 * Producer. Delivery reports count delivered/failed messages, cumulatively
 * (xs_producer_delivered/failed) and since the last flush (what flush
 * reports, with the first failure's message). A full local queue
 * (RD_KAFKA_RESP_ERR__QUEUE_FULL) is backpressure: send serves delivery
 * reports for 100 ms and retries until there is room; nothing is dropped.
 * An idempotence fatal error (RD_KAFKA_RESP_ERR__FATAL) makes every later
 * send fail; pending delivery reports are still served by flush/destroy.
 *
 * Consumer. Both modes keep a table of assigned partitions:
 *
 *     topic, partition | start | lo, hi (at assignment) | position | caught
 *
 * `hi` is the high watermark queried when the partition was assigned;
 * `position` is the next offset to consume (offset + 1 of the last message
 * returned, or the partition-EOF offset). A partition is `caught` once
 * position >= hi, once a partition-EOF event arrives (position reached the
 * then-current end, which is >= hi), or right away when nothing was there
 * to read (hi == lo, hi == 0, start END, or an absolute start >= hi). The
 * flag latches: new messages arriving later do not un-catch a partition.
 * xs_consumer_caught_up() is false until the first assignment has arrived
 * (and again between an eager revoke and the next assignment).
 *
 * Group mode subscribes with a rebalance callback. For the eager protocol
 * (librdkafka 2.0.2's default range,roundrobin) an assignment replaces the
 * table and is applied with rd_kafka_assign(); with cooperative-sticky it is
 * incremental (rd_kafka_incremental_assign/unassign). hooks.on_assign picks
 * each new partition's start offset (preset to XS_OFFSET_STORED), and
 * hooks.on_revoke runs before the partition is unassigned. Group-less mode
 * reads metadata, assigns every partition of the topics at
 * opts->start_offset, and also offers each partition to hooks.on_assign
 * (preset to opts->start_offset) so a caller keeping offsets elsewhere can
 * seek; on_revoke runs for each partition at destroy.
 *
 * Admin. xs_kafka_create_topics / xs_kafka_describe_topic use a throw-away
 * producer handle and its own queue for the CreateTopics / DescribeConfigs
 * results; partitions, replicas and leaders come from a full metadata
 * request. A topic that CreateTopics reports is not usable until every
 * partition has a leader, so create polls metadata until then.
 */
#include "xsell/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "xsell/log.h"

#define XS_WATERMARK_TIMEOUT_MS 5000
#define XS_METADATA_TIMEOUT_MS 10000
#define XS_DESTROY_FLUSH_MS 30000

/* ======================================================================== */
/* Shared helpers                                                           */
/* ======================================================================== */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* librdkafka log lines (syslog levels) into our log format. */
static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    xs_log_level_t lvl = level <= 4 ? XS_LOG_WARN : level <= 6 ? XS_LOG_INFO : XS_LOG_DEBUG;
    /* Connection failures and disconnects are retried by librdkafka and
     * also reach error_cb; logging each attempt is noise. */
    if (strcmp(fac, "FAIL") == 0)
        lvl = XS_LOG_DEBUG;
    xs_log(lvl, "librdkafka", "client=%s facility=%s text=\"%s\"", rd_kafka_name(rk), fac, buf);
}

/* The development broker's bookkeeping handle has no bootstrap.servers on
 * purpose; librdkafka's warning about that is noise there. */
static void devbroker_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers"))
        level = 7;
    kafka_log_cb(rk, level, fac, buf);
}

/* Sets one property; on failure writes "kafka: config key=value: reason". */
static xs_err_t conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                         size_t errstr_size)
{
    char rderr[512];
    if (!key || !value) {
        xs_err_set(errstr, errstr_size, "kafka: config: NULL key or value");
        return XS_ERR_CONFIG;
    }
    if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        /* librdkafka's message may quote the value: hide both for secrets. */
        bool secret = strstr(key, "password") || strstr(key, "secret") || strstr(key, "key") ||
                      strstr(key, "sasl.jaas") || strstr(key, "sasl.oauthbearer.config");
        xs_err_set(errstr, errstr_size, "kafka: config %s=%s: %s", key, secret ? "(hidden)" : value,
                   secret ? "invalid value (hidden)" : rderr);
        return XS_ERR_CONFIG;
    }
    return XS_OK;
}

/* Applies defaults (NULL-terminated pairs) and then the caller's values. */
static xs_err_t conf_apply(rd_kafka_conf_t *conf, const char *const *defaults, const xs_kv_t *kv,
                           size_t n_kv, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if ((err = conf_set(conf, defaults[i], defaults[i + 1], errstr, errstr_size)) != XS_OK)
            return err;
    for (size_t i = 0; i < n_kv; i++)
        if ((err = conf_set(conf, kv[i].key, kv[i].value, errstr, errstr_size)) != XS_OK)
            return err;
    return XS_OK;
}

/*
 * Creates a handle of `type`; takes ownership of conf in every case (it is
 * destroyed on failure, handed to librdkafka on success).
 */
static rd_kafka_t *handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                              size_t errstr_size)
{
    char rderr[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        xs_err_set(errstr, errstr_size, "kafka: create %s: %s",
                   type == RD_KAFKA_PRODUCER ? "producer" : "consumer", rderr);
    }
    return rk;
}

/* ======================================================================== */
/* Development broker                                                       */
/* ======================================================================== */

struct xs_devbroker {
    rd_kafka_t *rk; /* bookkeeping handle required by the mock cluster */
    rd_kafka_mock_cluster_t *mcluster;
    int brokers;
};

xs_devbroker_t *xs_devbroker_new(int brokers, char *errstr, size_t errstr_size)
{
    xs_devbroker_t *db = NULL;
    rd_kafka_conf_t *conf = NULL;
    char rderr[512];

    if (brokers < 1 || brokers > 64) {
        xs_err_set(errstr, errstr_size, "kafka: devbroker: broker count %d not in 1..64", brokers);
        return NULL;
    }
    db = calloc(1, sizeof(*db));
    if (!db) {
        xs_err_set(errstr, errstr_size, "kafka: devbroker: out of memory");
        return NULL;
    }
    db->brokers = brokers;
    conf = rd_kafka_conf_new();
    if (conf_set(conf, "client.id", "xsell-devbroker", errstr, errstr_size) != XS_OK ||
        conf_set(conf, "socket.nagle.disable", "true", errstr, errstr_size) != XS_OK) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_log_cb(conf, devbroker_log_cb);
    db->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rderr, sizeof(rderr));
    if (!db->rk) {
        rd_kafka_conf_destroy(conf);
        xs_err_set(errstr, errstr_size, "kafka: devbroker: %s", rderr);
    }
    conf = NULL; /* owned by rd_kafka_new, or destroyed above */
    if (!db->rk)
        goto fail;
    db->mcluster = rd_kafka_mock_cluster_new(db->rk, brokers);
    if (!db->mcluster) {
        xs_err_set(errstr, errstr_size,
                   "kafka: devbroker: could not start the mock cluster (%d brokers)", brokers);
        goto fail;
    }
    return db;

fail:
    xs_devbroker_destroy(db);
    return NULL;
}

void xs_devbroker_destroy(xs_devbroker_t *db)
{
    if (!db)
        return;
    if (db->mcluster)
        rd_kafka_mock_cluster_destroy(db->mcluster);
    if (db->rk)
        rd_kafka_destroy(db->rk);
    free(db);
}

const char *xs_devbroker_bootstraps(const xs_devbroker_t *db)
{
    return rd_kafka_mock_cluster_bootstraps(db->mcluster);
}

xs_err_t xs_devbroker_create_topic(xs_devbroker_t *db, const char *topic, int partitions,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rderr;
    int replication = XS_MIN(db->brokers, 3);

    if (!topic || !*topic || partitions < 1) {
        xs_err_set(errstr, errstr_size, "kafka: create topic %s: invalid name or partitions %d",
                   topic ? topic : "(null)", partitions);
        return XS_ERR_INVALID;
    }
    rderr = rd_kafka_mock_topic_create(db->mcluster, topic, partitions, replication);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: create topic %s: %s", topic,
                   rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

xs_err_t xs_devbroker_set_broker_down(xs_devbroker_t *db, int32_t broker_id, bool down)
{
    rd_kafka_resp_err_t rderr = down ? rd_kafka_mock_broker_set_down(db->mcluster, broker_id)
                                     : rd_kafka_mock_broker_set_up(db->mcluster, broker_id);
    if (rderr) {
        XS_WARN("devbroker fault injection failed", "broker=%d down=%d error=\"%s\"",
                (int)broker_id, (int)down, rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

xs_err_t xs_devbroker_push_request_errors(xs_devbroker_t *db, int16_t api_key, size_t cnt,
                                          int kafka_err)
{
    rd_kafka_resp_err_t *errs = NULL;
    if (cnt == 0)
        return XS_OK;
    errs = calloc(cnt, sizeof(*errs));
    if (!errs)
        return XS_ERR_NOMEM;
    for (size_t i = 0; i < cnt; i++)
        errs[i] = (rd_kafka_resp_err_t)kafka_err;
    rd_kafka_mock_push_request_errors_array(db->mcluster, api_key, cnt, errs);
    free(errs);
    return XS_OK;
}

/* ======================================================================== */
/* Producer                                                                 */
/* ======================================================================== */

struct xs_producer {
    rd_kafka_t *rk;
    uint64_t delivered; /* cumulative */
    uint64_t failed;    /* cumulative */
    uint64_t failed_since_flush;
    char first_failure[512]; /* first failure since the last flush */
    bool fatal;              /* idempotence fatal error raised */
    char fatal_msg[512];
    /* marks: a message carries the mark epoch it was sent in (its opaque);
     * unacknowledged messages sent before the latest mark / after it */
    uint64_t mark_epoch;
    uint64_t out_before, out_after;
};

static void producer_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    xs_producer_t *p = opaque;
    if ((uint64_t)(uintptr_t)rkm->_private < p->mark_epoch)
        p->out_before--;
    else
        p->out_after--;
    if (!rkm->err) {
        p->delivered++;
        return;
    }
    p->failed++;
    if (p->failed_since_flush++ == 0) {
        const char *topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?";
        if (rkm->partition >= 0)
            snprintf(p->first_failure, sizeof(p->first_failure), "delivery to %s[%d]: %s", topic,
                     (int)rkm->partition, rd_kafka_err2str(rkm->err));
        else
            snprintf(p->first_failure, sizeof(p->first_failure), "delivery to %s: %s", topic,
                     rd_kafka_err2str(rkm->err));
    }
}

static void consumer_brokers_down(xs_consumer_t *c, const char *reason);

/* Error callback shared by every handle. Only a producer's opaque is an
 * xs_producer_t; consumers see their fatal errors in rd_kafka_consumer_poll. */
static void handle_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        XS_ERROR("kafka fatal error", "client=%s error=\"%s\" reason=\"%s\"", rd_kafka_name(rk),
                 rd_kafka_err2str(orig), why);
        if (opaque && rd_kafka_type(rk) == RD_KAFKA_PRODUCER) {
            xs_producer_t *p = opaque;
            p->fatal = true;
            snprintf(p->fatal_msg, sizeof(p->fatal_msg), "%s", why);
        }
        return;
    }
    /* Every broker down: an outage worth a warning (once, until one answers
     * again; see xs_consumer_brokers_down()). */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        if (rd_kafka_type(rk) == RD_KAFKA_CONSUMER && opaque)
            consumer_brokers_down(opaque, reason);
        else
            XS_WARN("kafka brokers unreachable", "client=%s error=\"%s\"", rd_kafka_name(rk),
                    reason);
        return;
    }
    /* Connection churn is routine (broker restarts, idle disconnects);
     * librdkafka retries on its own. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE)
        XS_DEBUG("kafka transient error", "client=%s error=\"%s\"", rd_kafka_name(rk), reason);
    else
        XS_WARN("kafka error", "client=%s error=\"%s\"", rd_kafka_name(rk), reason);
}

xs_producer_t *xs_producer_new(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                               char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {
        "enable.idempotence", "true", "acks", "all", "linger.ms", "5",
        "compression.codec",  "lz4",  NULL};
    xs_producer_t *p = NULL;
    rd_kafka_conf_t *rkconf = NULL;

    if (!bootstrap || !*bootstrap) {
        xs_err_set(errstr, errstr_size, "kafka: producer: no bootstrap servers");
        return NULL;
    }
    p = calloc(1, sizeof(*p));
    if (!p) {
        xs_err_set(errstr, errstr_size, "kafka: producer: out of memory");
        return NULL;
    }
    rkconf = rd_kafka_conf_new();
    if (conf_set(rkconf, "bootstrap.servers", bootstrap, errstr, errstr_size) != XS_OK ||
        conf_apply(rkconf, defaults, conf, n_conf, errstr, errstr_size) != XS_OK)
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, p);
    rd_kafka_conf_set_dr_msg_cb(rkconf, producer_dr_cb);
    rd_kafka_conf_set_error_cb(rkconf, handle_error_cb);
    p->rk = handle_new(RD_KAFKA_PRODUCER, rkconf, errstr, errstr_size);
    rkconf = NULL; /* owned by handle_new */
    if (!p->rk)
        goto fail;
    return p;

fail:
    if (rkconf)
        rd_kafka_conf_destroy(rkconf);
    free(p);
    return NULL;
}

void xs_producer_destroy(xs_producer_t *p)
{
    if (!p)
        return;
    if (p->rk) {
        char errstr[512];
        if (xs_producer_flush(p, XS_DESTROY_FLUSH_MS, errstr, sizeof(errstr)) != XS_OK)
            XS_WARN("producer closed with undelivered messages", "error=\"%s\" outq=%d", errstr,
                    rd_kafka_outq_len(p->rk));
        rd_kafka_destroy(p->rk);
    }
    free(p);
}

xs_err_t xs_producer_send(xs_producer_t *p, const char *topic, int32_t partition, const void *key,
                          size_t key_len, const void *value, size_t value_len,
                          const xs_header_t *headers, size_t n_headers, char *errstr,
                          size_t errstr_size)
{
    rd_kafka_vu_t fixed[7];
    rd_kafka_vu_t *vus = fixed;
    size_t n = 0;
    xs_err_t ret = XS_OK;

    if (p->fatal) {
        xs_err_set(errstr, errstr_size, "kafka: produce to %s: producer fatal error: %s", topic,
                   p->fatal_msg);
        return XS_ERR_KAFKA;
    }
    if (n_headers > 0) {
        vus = calloc(6 + n_headers, sizeof(*vus));
        if (!vus) {
            xs_err_set(errstr, errstr_size, "kafka: produce to %s: out of memory", topic);
            return XS_ERR_NOMEM;
        }
    }
    vus[n].vtype = RD_KAFKA_VTYPE_TOPIC;
    vus[n++].u.cstr = topic;
    vus[n].vtype = RD_KAFKA_VTYPE_PARTITION;
    vus[n++].u.i32 = partition < 0 ? RD_KAFKA_PARTITION_UA : partition;
    vus[n].vtype = RD_KAFKA_VTYPE_MSGFLAGS;
    vus[n++].u.i = RD_KAFKA_MSG_F_COPY;
    vus[n].vtype = RD_KAFKA_VTYPE_OPAQUE;
    vus[n++].u.ptr = (void *)(uintptr_t)p->mark_epoch;
    if (key) {
        vus[n].vtype = RD_KAFKA_VTYPE_KEY;
        vus[n].u.mem.ptr = (void *)key;
        vus[n++].u.mem.size = key_len;
    }
    vus[n].vtype = RD_KAFKA_VTYPE_VALUE;
    vus[n].u.mem.ptr = (void *)value;
    vus[n++].u.mem.size = value ? value_len : 0;
    for (size_t i = 0; i < n_headers; i++) {
        vus[n].vtype = RD_KAFKA_VTYPE_HEADER;
        vus[n].u.header.name = headers[i].name;
        vus[n].u.header.val = headers[i].value;
        vus[n++].u.header.size = (ssize_t)headers[i].len;
    }

    for (;;) {
        rd_kafka_error_t *error = rd_kafka_produceva(p->rk, vus, n);
        rd_kafka_resp_err_t code;
        if (!error) {
            p->out_after++;
            break;
        }
        code = rd_kafka_error_code(error);
        if (code == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_error_destroy(error);
            /* Backpressure: serve delivery reports until there is room. */
            rd_kafka_poll(p->rk, 100);
            if (p->fatal) {
                xs_err_set(errstr, errstr_size, "kafka: produce to %s: producer fatal error: %s",
                           topic, p->fatal_msg);
                ret = XS_ERR_KAFKA;
                goto out;
            }
            continue;
        }
        xs_err_set(errstr, errstr_size, "kafka: produce to %s: %s", topic,
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        ret = XS_ERR_KAFKA;
        goto out;
    }

out:
    if (vus != fixed)
        free(vus);
    return ret;
}

void xs_producer_poll(xs_producer_t *p)
{
    rd_kafka_poll(p->rk, 0);
}

xs_err_t xs_producer_flush(xs_producer_t *p, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rderr = rd_kafka_flush(p->rk, timeout_ms);
    xs_err_t ret = XS_OK;

    if (rderr == RD_KAFKA_RESP_ERR__TIMED_OUT) {
        xs_err_set(errstr, errstr_size,
                   "kafka: flush: flush timed out after %d ms (%d messages outstanding)",
                   timeout_ms, rd_kafka_outq_len(p->rk));
        ret = XS_ERR_KAFKA;
    } else if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: flush: %s", rd_kafka_err2str(rderr));
        ret = XS_ERR_KAFKA;
    }
    if (p->failed_since_flush > 0) {
        /* A delivery failure is the more useful message. */
        xs_err_set(errstr, errstr_size, "kafka: delivery: %llu message(s) failed, first: %s",
                   (unsigned long long)p->failed_since_flush, p->first_failure);
        p->failed_since_flush = 0;
        p->first_failure[0] = '\0';
        ret = XS_ERR_KAFKA;
    }
    return ret;
}

void xs_producer_mark(xs_producer_t *p)
{
    p->out_before += p->out_after;
    p->out_after = 0;
    p->mark_epoch++;
}

xs_err_t xs_producer_marked_done(xs_producer_t *p, bool *done, char *errstr, size_t errstr_size)
{
    rd_kafka_poll(p->rk, 0);
    *done = p->out_before == 0;
    if (p->fatal) {
        xs_err_set(errstr, errstr_size, "kafka: producer fatal error: %s", p->fatal_msg);
        return XS_ERR_KAFKA;
    }
    if (p->failed_since_flush > 0) {
        xs_err_set(errstr, errstr_size, "kafka: delivery: %llu message(s) failed, first: %s",
                   (unsigned long long)p->failed_since_flush, p->first_failure);
        p->failed_since_flush = 0;
        p->first_failure[0] = '\0';
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

int xs_producer_outq_len(xs_producer_t *p)
{
    return rd_kafka_outq_len(p->rk);
}

uint64_t xs_producer_delivered(const xs_producer_t *p)
{
    return p->delivered;
}

uint64_t xs_producer_failed(const xs_producer_t *p)
{
    return p->failed;
}

/* ======================================================================== */
/* Metadata                                                                 */
/* ======================================================================== */

/*
 * Partition count of `topic` from a full metadata request (a request for
 * one named topic could auto-create it on a real broker). Returns the count,
 * 0 when the topic is not (yet) known, -1 with errstr on a request error.
 */
static int metadata_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms, char *errstr,
                                    size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rderr;
    int count = 0;

    rderr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: metadata: %s", rd_kafka_err2str(rderr));
        return -1;
    }
    for (int i = 0; i < md->topic_cnt; i++) {
        if (strcmp(md->topics[i].topic, topic) != 0)
            continue;
        if (md->topics[i].err) {
            xs_err_set(errstr, errstr_size, "kafka: metadata for %s: %s", topic,
                       rd_kafka_err2str(md->topics[i].err));
            count = md->topics[i].err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ? 0 : -1;
        } else {
            count = md->topics[i].partition_cnt;
        }
        break;
    }
    rd_kafka_metadata_destroy(md);
    return count;
}

int xs_kafka_partition_count(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                             const char *topic, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    rd_kafka_t *rk = NULL;
    int count = -1;

    if (conf_set(rkconf, "bootstrap.servers", bootstrap ? bootstrap : "", errstr, errstr_size) !=
            XS_OK ||
        conf_apply(rkconf, NULL, conf, n_conf, errstr, errstr_size) != XS_OK) {
        rd_kafka_conf_destroy(rkconf);
        return -1;
    }
    rd_kafka_conf_set_error_cb(rkconf, handle_error_cb);
    rk = handle_new(RD_KAFKA_PRODUCER, rkconf, errstr, errstr_size);
    if (!rk)
        return -1;
    count = metadata_partition_count(rk, topic, timeout_ms, errstr, errstr_size);
    if (count == 0) {
        xs_err_set(errstr, errstr_size, "kafka: metadata: topic %s does not exist", topic);
        count = -1;
    }
    rd_kafka_destroy(rk);
    return count;
}

/* ======================================================================== */
/* Consumer                                                                 */
/* ======================================================================== */

typedef struct xs_part {
    char *topic;
    int32_t partition;
    int64_t start;    /* librdkafka offset the partition was assigned at */
    int64_t lo, hi;   /* watermarks at assignment; hi < 0 unknown */
    int64_t position; /* next offset to consume; < 0 unknown */
    bool caught;
} xs_part_t;

struct xs_consumer {
    rd_kafka_t *rk;
    bool group;
    xs_consumer_hooks_t hooks;
    rd_kafka_message_t *last; /* returned by the last poll; released at the next */

    xs_part_t *parts;
    size_t n_parts, cap_parts;
    size_t hint; /* index of the last looked-up partition */
    bool have_assignment;

    uint64_t eof_events;
    uint64_t transient_errors;

    /* Broker connectivity (see xs_consumer_brokers_down()); set from the
     * error callback, which runs inside rd_kafka_consumer_poll(). */
    bool brokers_down;
    int64_t down_since, next_probe;
};

static int64_t to_rd_offset(int64_t off)
{
    switch (off) {
    case XS_OFFSET_BEGINNING:
        return RD_KAFKA_OFFSET_BEGINNING;
    case XS_OFFSET_END:
        return RD_KAFKA_OFFSET_END;
    case XS_OFFSET_STORED:
        return RD_KAFKA_OFFSET_STORED;
    default:
        return off < 0 ? RD_KAFKA_OFFSET_STORED : off;
    }
}

static xs_part_t *part_find(xs_consumer_t *c, const char *topic, int32_t partition)
{
    if (c->hint < c->n_parts && c->parts[c->hint].partition == partition &&
        strcmp(c->parts[c->hint].topic, topic) == 0)
        return &c->parts[c->hint];
    for (size_t i = 0; i < c->n_parts; i++)
        if (c->parts[i].partition == partition && strcmp(c->parts[i].topic, topic) == 0) {
            c->hint = i;
            return &c->parts[i];
        }
    return NULL;
}

static void part_remove(xs_consumer_t *c, const char *topic, int32_t partition)
{
    xs_part_t *pt = part_find(c, topic, partition);
    if (!pt)
        return;
    free(pt->topic);
    *pt = c->parts[--c->n_parts];
    c->hint = 0;
}

static void parts_clear(xs_consumer_t *c)
{
    for (size_t i = 0; i < c->n_parts; i++)
        free(c->parts[i].topic);
    c->n_parts = 0;
    c->hint = 0;
}

static void part_update_caught(xs_part_t *pt)
{
    if (!pt->caught && pt->hi >= 0 && pt->position >= pt->hi)
        pt->caught = true;
}

/*
 * Reads the low and high watermarks of every partition of `list` into lo[i]
 * and hi[i] (-1 where unknown): two ListOffsets rounds (earliest, latest)
 * for the whole list, one request per leader broker each, sharing one time
 * budget, instead of two round trips per partition. This runs in the
 * rebalance callback, on the thread that processes events, so its time is
 * bounded whatever the number of partitions or the state of the brokers.
 */
static void query_watermarks(xs_consumer_t *c, const rd_kafka_topic_partition_list_t *list,
                             int64_t *lo, int64_t *hi)
{
    for (int i = 0; i < list->cnt; i++)
        lo[i] = hi[i] = -1;
    if (list->cnt == 0)
        return;
    int64_t deadline = mono_ms() + XS_WATERMARK_TIMEOUT_MS;
    const char *why = NULL;
    for (int round = 0; round < 2; round++) {
        int64_t *out = round == 0 ? lo : hi;
        rd_kafka_topic_partition_list_t *q = rd_kafka_topic_partition_list_new(list->cnt);
        for (int i = 0; i < list->cnt; i++)
            rd_kafka_topic_partition_list_add(q, list->elems[i].topic, list->elems[i].partition)
                ->offset = round == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
        int64_t left = deadline - mono_ms();
        rd_kafka_resp_err_t rderr = RD_KAFKA_RESP_ERR__TIMED_OUT;
        if (left > 0)
            rderr = rd_kafka_offsets_for_times(c->rk, q, (int)left);
        /* q holds the partitions of list, in its order */
        for (int i = 0; i < list->cnt; i++) {
            const rd_kafka_topic_partition_t *r = &q->elems[i];
            if (!r->err && r->offset >= 0) /* a partition answered before a timeout counts */
                out[i] = r->offset;
            else if (!why)
                why = rd_kafka_err2str(rderr ? rderr : r->err);
        }
        rd_kafka_topic_partition_list_destroy(q);
    }
    int failed = 0;
    for (int i = 0; i < list->cnt; i++)
        failed += lo[i] < 0 || hi[i] < 0;
    if (failed)
        /* Not fatal: a partition-EOF event will still mark them caught up. */
        XS_WARN("could not read partition watermarks", "partitions=%d of=%d error=\"%s\"", failed,
                list->cnt, why ? why : "unknown");
}

/*
 * Adds a partition about to be assigned at `start` (librdkafka offset), with
 * its watermarks (-1: unknown), and derives what is known of position/caught.
 */
static xs_err_t part_add(xs_consumer_t *c, const char *topic, int32_t partition, int64_t start,
                         int64_t lo, int64_t hi)
{
    xs_part_t *pt = NULL;

    if (part_find(c, topic, partition))
        part_remove(c, topic, partition);
    if (c->n_parts == c->cap_parts) {
        size_t cap = c->cap_parts ? c->cap_parts * 2 : 16;
        xs_part_t *grown = realloc(c->parts, cap * sizeof(*grown));
        if (!grown)
            return XS_ERR_NOMEM;
        c->parts = grown;
        c->cap_parts = cap;
    }
    pt = &c->parts[c->n_parts];
    memset(pt, 0, sizeof(*pt));
    pt->topic = xs_str_dup(topic);
    if (!pt->topic)
        return XS_ERR_NOMEM;
    c->n_parts++;
    pt->partition = partition;
    pt->start = start;
    pt->position = -1;
    pt->lo = lo;
    pt->hi = hi;
    if (start >= 0)
        pt->position = start;
    else if (start == RD_KAFKA_OFFSET_BEGINNING && lo >= 0)
        pt->position = lo;
    else if (start == RD_KAFKA_OFFSET_END && hi >= 0)
        pt->position = hi;
    if (hi == 0 || (hi >= 0 && hi == lo) || start == RD_KAFKA_OFFSET_END)
        pt->caught = true;
    part_update_caught(pt);
    XS_DEBUG("partition assigned", "topic=%s partition=%d start=%lld lo=%lld hi=%lld", topic,
             (int)partition, (long long)start, (long long)lo, (long long)hi);
    return XS_OK;
}

/* Asks on_assign for each partition's start and records the partitions. */
static void assign_prepare(xs_consumer_t *c, rd_kafka_topic_partition_list_t *list, int64_t preset)
{
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t off = preset;
        if (c->hooks.on_assign)
            c->hooks.on_assign(c->hooks.opaque, tp->topic, tp->partition, &off);
        tp->offset = to_rd_offset(off);
    }
    size_t n = list->cnt > 0 ? (size_t)list->cnt : 0;
    int64_t *wm = n ? malloc(2 * n * sizeof(*wm)) : NULL;
    if (wm)
        query_watermarks(c, list, wm, wm + n);
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        if (part_add(c, tp->topic, tp->partition, tp->offset, wm ? wm[i] : -1,
                     wm ? wm[n + (size_t)i] : -1) != XS_OK)
            XS_ERROR("out of memory tracking partition", "topic=%s partition=%d", tp->topic,
                     (int)tp->partition);
    }
    free(wm);
}

static void revoke_notify(xs_consumer_t *c, const rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; list && i < list->cnt; i++)
        if (c->hooks.on_revoke)
            c->hooks.on_revoke(c->hooks.opaque, list->elems[i].topic, list->elems[i].partition);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *partitions, void *opaque)
{
    xs_consumer_t *c = opaque;
    bool cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t rderr = RD_KAFKA_RESP_ERR_NO_ERROR;

    switch (err) {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        if (!cooperative)
            parts_clear(c);
        assign_prepare(c, partitions, XS_OFFSET_STORED);
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, partitions);
        else
            rderr = rd_kafka_assign(rk, partitions);
        c->have_assignment = true;
        XS_INFO("partitions assigned", "count=%d total=%zu protocol=%s", partitions->cnt,
                c->n_parts, cooperative ? "cooperative" : "eager");
        break;

    case RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS:
        revoke_notify(c, partitions);
        if (cooperative) {
            error = rd_kafka_incremental_unassign(rk, partitions);
            for (int i = 0; i < partitions->cnt; i++)
                part_remove(c, partitions->elems[i].topic, partitions->elems[i].partition);
        } else {
            rderr = rd_kafka_assign(rk, NULL);
            parts_clear(c);
            c->have_assignment = false;
        }
        XS_INFO("partitions revoked", "count=%d lost=%d", partitions->cnt,
                (int)rd_kafka_assignment_lost(rk));
        break;

    default:
        XS_WARN("rebalance failed", "error=\"%s\"", rd_kafka_err2str(err));
        rd_kafka_assign(rk, NULL);
        parts_clear(c);
        c->have_assignment = false;
        break;
    }
    if (error) {
        XS_ERROR("applying the assignment failed", "error=\"%s\"", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (rderr) {
        XS_ERROR("applying the assignment failed", "error=\"%s\"", rd_kafka_err2str(rderr));
    }
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    if (err)
        XS_WARN("offset commit failed", "error=\"%s\"", rd_kafka_err2str(err));
    for (int i = 0; offsets && i < offsets->cnt; i++)
        if (offsets->elems[i].err)
            XS_WARN("offset commit failed", "topic=%s partition=%d offset=%lld error=\"%s\"",
                    offsets->elems[i].topic, (int)offsets->elems[i].partition,
                    (long long)offsets->elems[i].offset, rd_kafka_err2str(offsets->elems[i].err));
}

/* Group-less: assign every partition of every topic. */
static xs_err_t assign_all(xs_consumer_t *c, const xs_consumer_opts_t *opts, char *errstr,
                           size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t rderr;
    xs_err_t ret = XS_OK;

    list = rd_kafka_topic_partition_list_new((int)XS_MAX(opts->n_topics, 1));
    for (size_t t = 0; t < opts->n_topics; t++) {
        int64_t deadline = mono_ms() + XS_METADATA_TIMEOUT_MS;
        int count;
        for (;;) {
            count = metadata_partition_count(c->rk, opts->topics[t], XS_METADATA_TIMEOUT_MS, errstr,
                                             errstr_size);
            if (count >= 0 || mono_ms() >= deadline)
                break;
            /* Transient metadata error (leader not available...): retry. */
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (count == 0) {
            xs_err_set(errstr, errstr_size, "kafka: consumer: topic %s does not exist",
                       opts->topics[t]);
            ret = XS_ERR_KAFKA;
            goto out;
        }
        if (count < 0) {
            ret = XS_ERR_KAFKA;
            goto out;
        }
        for (int i = 0; i < count; i++)
            rd_kafka_topic_partition_list_add(list, opts->topics[t], i);
    }
    assign_prepare(c, list, opts->start_offset);
    rderr = rd_kafka_assign(c->rk, list);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: assign: %s", rd_kafka_err2str(rderr));
        ret = XS_ERR_KAFKA;
        goto out;
    }
    c->have_assignment = true;

out:
    rd_kafka_topic_partition_list_destroy(list);
    return ret;
}

xs_consumer_t *xs_consumer_new(const xs_consumer_opts_t *opts, char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {"enable.auto.commit",
                                           "false",
                                           "enable.auto.offset.store",
                                           "false",
                                           "auto.offset.reset",
                                           "earliest",
                                           "enable.partition.eof",
                                           "true",
                                           "session.timeout.ms",
                                           "6000",
                                           NULL};
    xs_consumer_t *c = NULL;
    rd_kafka_conf_t *rkconf = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    rd_kafka_resp_err_t rderr;
    char groupless_id[64];

    if (!opts || !opts->bootstrap || !*opts->bootstrap || opts->n_topics == 0 || !opts->topics) {
        xs_err_set(errstr, errstr_size, "kafka: consumer: bootstrap and topics are required");
        return NULL;
    }
    c = calloc(1, sizeof(*c));
    if (!c) {
        xs_err_set(errstr, errstr_size, "kafka: consumer: out of memory");
        return NULL;
    }
    c->group = opts->group_id != NULL;
    c->hooks = opts->hooks;

    if (!c->group) {
        /* librdkafka's assign() needs a group.id even though a consumer that
         * neither subscribes nor commits never uses it on the wire. */
        static unsigned groupless_seq;
        snprintf(groupless_id, sizeof(groupless_id), "xsell-groupless-%ld-%u", (long)getpid(),
                 ++groupless_seq);
    }
    rkconf = rd_kafka_conf_new();
    if (conf_set(rkconf, "bootstrap.servers", opts->bootstrap, errstr, errstr_size) != XS_OK ||
        conf_set(rkconf, "group.id", c->group ? opts->group_id : groupless_id, errstr,
                 errstr_size) != XS_OK ||
        conf_apply(rkconf, defaults, opts->conf, opts->n_conf, errstr, errstr_size) != XS_OK ||
        (opts->offset_reset_error &&
         conf_set(rkconf, "auto.offset.reset", "error", errstr, errstr_size) != XS_OK))
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, c);
    rd_kafka_conf_set_error_cb(rkconf, handle_error_cb);
    rd_kafka_conf_set_offset_commit_cb(rkconf, offset_commit_cb);
    if (c->group)
        rd_kafka_conf_set_rebalance_cb(rkconf, rebalance_cb);
    c->rk = handle_new(RD_KAFKA_CONSUMER, rkconf, errstr, errstr_size);
    rkconf = NULL; /* owned by handle_new */
    if (!c->rk)
        goto fail;
    /* Serve logs, errors and rebalances from rd_kafka_consumer_poll(). */
    rd_kafka_poll_set_consumer(c->rk);

    if (c->group) {
        subs = rd_kafka_topic_partition_list_new((int)opts->n_topics);
        for (size_t i = 0; i < opts->n_topics; i++)
            rd_kafka_topic_partition_list_add(subs, opts->topics[i], RD_KAFKA_PARTITION_UA);
        rderr = rd_kafka_subscribe(c->rk, subs);
        rd_kafka_topic_partition_list_destroy(subs);
        if (rderr) {
            xs_err_set(errstr, errstr_size, "kafka: subscribe: %s", rd_kafka_err2str(rderr));
            goto fail;
        }
    } else if (assign_all(c, opts, errstr, errstr_size) != XS_OK) {
        goto fail;
    }
    return c;

fail:
    if (rkconf)
        rd_kafka_conf_destroy(rkconf);
    xs_consumer_destroy(c);
    return NULL;
}

void xs_consumer_destroy(xs_consumer_t *c)
{
    if (!c)
        return;
    if (c->last) {
        rd_kafka_message_destroy(c->last);
        c->last = NULL;
    }
    if (c->rk) {
        rd_kafka_resp_err_t rderr;
        if (!c->group && c->have_assignment) {
            for (size_t i = 0; i < c->n_parts; i++)
                if (c->hooks.on_revoke)
                    c->hooks.on_revoke(c->hooks.opaque, c->parts[i].topic, c->parts[i].partition);
        }
        /* In group mode this leaves the group; rebalance_cb revokes. */
        rderr = rd_kafka_consumer_close(c->rk);
        if (rderr)
            XS_WARN("consumer close failed", "error=\"%s\"", rd_kafka_err2str(rderr));
        rd_kafka_destroy(c->rk);
    }
    parts_clear(c);
    free(c->parts);
    free(c);
}

/* The start of a broker outage (from the error callback). */
static void consumer_brokers_down(xs_consumer_t *c, const char *reason)
{
    if (c->brokers_down)
        return;
    c->brokers_down = true;
    c->down_since = mono_ms();
    c->next_probe = c->down_since + 1000;
    XS_WARN("kafka brokers unreachable", "client=%s error=\"%s\"", rd_kafka_name(c->rk), reason);
}

/* The end of a broker outage. */
static void brokers_back(xs_consumer_t *c)
{
    c->brokers_down = false;
    XS_INFO("kafka brokers reachable", "client=%s down_s=%.1f", rd_kafka_name(c->rk),
            (mono_ms() - c->down_since) / 1e3);
}

/* During an outage, asks for metadata every second (200 ms budget): the
 * first answer ends it, even when there is nothing to consume. */
static void probe_brokers(xs_consumer_t *c)
{
    const struct rd_kafka_metadata *md = NULL;
    c->next_probe = mono_ms() + 1000;
    if (rd_kafka_metadata(c->rk, 0, NULL, &md, 200) == RD_KAFKA_RESP_ERR_NO_ERROR)
        brokers_back(c);
    if (md)
        rd_kafka_metadata_destroy(md);
}

bool xs_consumer_brokers_down(xs_consumer_t *c, int64_t *down_ms)
{
    if (down_ms)
        *down_ms = c->brokers_down ? mono_ms() - c->down_since : 0;
    return c->brokers_down;
}

xs_err_t xs_consumer_watermarks(xs_consumer_t *c, const char *topic, int32_t partition, int64_t *lo,
                                int64_t *hi, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rderr =
        rd_kafka_query_watermark_offsets(c->rk, topic, partition, lo, hi, timeout_ms);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: watermarks of %s [%d]: %s", topic, (int)partition,
                   rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

/*
 * Assigns the partition again at offset: a partition whose fetcher stopped
 * (auto.offset.reset=error) refuses a seek. Cooperative: unassign and assign
 * it alone; eager: the whole assignment again, every other partition at its
 * position (the offset after the last message returned, or where it started).
 */
static rd_kafka_error_t *reassign_at(xs_consumer_t *c, const char *topic, int32_t partition,
                                     int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = NULL;
    rd_kafka_error_t *error = NULL;
    if (c->group && strcmp(rd_kafka_rebalance_protocol(c->rk), "COOPERATIVE") == 0) {
        l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
        if (!(error = rd_kafka_incremental_unassign(c->rk, l)))
            error = rd_kafka_incremental_assign(c->rk, l);
        rd_kafka_topic_partition_list_destroy(l);
        return error;
    }
    rd_kafka_resp_err_t rderr = rd_kafka_assignment(c->rk, &l);
    for (int i = 0; !rderr && i < l->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &l->elems[i];
        const xs_part_t *pt = part_find(c, tp->topic, tp->partition);
        if (tp->partition == partition && strcmp(tp->topic, topic) == 0)
            tp->offset = offset;
        else
            tp->offset = pt && pt->position >= 0 ? pt->position : pt ? pt->start : tp->offset;
    }
    if (!rderr)
        rderr = rd_kafka_assign(c->rk, l);
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    return rderr ? rd_kafka_error_new(rderr, "%s", rd_kafka_err2str(rderr)) : NULL;
}

xs_err_t xs_consumer_seek(xs_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                          char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = offset;
    xs_err_t ret = XS_OK;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(c->rk, l, 10000);
    if ((error && rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__STATE) ||
        (!error && l->elems[0].err == RD_KAFKA_RESP_ERR__STATE)) {
        if (error)
            rd_kafka_error_destroy(error);
        l->elems[0].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        error = reassign_at(c, topic, partition, offset);
    }
    if (error) {
        xs_err_set(errstr, errstr_size, "kafka: seek %s [%d] to %lld: %s", topic, (int)partition,
                   (long long)offset, rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        ret = XS_ERR_KAFKA;
    } else if (l->elems[0].err) {
        xs_err_set(errstr, errstr_size, "kafka: seek %s [%d] to %lld: %s", topic, (int)partition,
                   (long long)offset, rd_kafka_err2str(l->elems[0].err));
        ret = XS_ERR_KAFKA;
    }
    rd_kafka_topic_partition_list_destroy(l);
    xs_part_t *pt = part_find(c, topic, partition);
    if (!ret && pt) {
        pt->position = offset;
        pt->caught = false;
        part_update_caught(pt);
    }
    return ret;
}

/* Errors that will not go away by retrying. */
static bool consumer_error_is_fatal(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR__SSL:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

xs_err_t xs_consumer_poll(xs_consumer_t *c, int timeout_ms, xs_msg_t *msg, char *errstr,
                          size_t errstr_size)
{
    /* A negative timeout waits until a message or a fatal error. */
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : mono_ms() + timeout_ms;

    if (c->last) {
        rd_kafka_message_destroy(c->last);
        c->last = NULL;
    }
    for (;;) {
        int64_t left = deadline == INT64_MAX ? 1000 : deadline - mono_ms();
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(c->rk, (int)XS_MIN(XS_MAX(left, 0), 1000));
        const char *topic;
        xs_part_t *pt;

        if (!rkm) {
            if (c->brokers_down && mono_ms() >= c->next_probe)
                probe_brokers(c);
            if (mono_ms() >= deadline)
                return XS_ERR_EOF;
            continue;
        }
        topic = rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL;
        pt = topic ? part_find(c, topic, rkm->partition) : NULL;
        if (c->brokers_down && (!rkm->err || rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF))
            brokers_back(c); /* a fetch answered */

        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            c->eof_events++;
            if (pt) {
                pt->position = rkm->offset;
                pt->caught = true;
            }
            XS_DEBUG("partition end reached", "topic=%s partition=%d offset=%lld",
                     topic ? topic : "?", (int)rkm->partition, (long long)rkm->offset);
            rd_kafka_message_destroy(rkm);
        } else if (rkm->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && topic) {
            /* auto.offset.reset=error: the fetch offset is out of range */
            xs_err_set(errstr, errstr_size, "kafka: %s [%d] offset %lld: %s", topic,
                       (int)rkm->partition, (long long)rkm->offset, rd_kafka_message_errstr(rkm));
            c->last = rkm;
            memset(msg, 0, sizeof(*msg));
            msg->topic = topic;
            msg->partition = rkm->partition;
            msg->offset = rkm->offset;
            msg->timestamp = -1;
            return XS_ERR_INPUT_LOST;
        } else if (rkm->err) {
            if (consumer_error_is_fatal(rkm->err)) {
                char why[512];
                if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
                    rd_kafka_fatal_error(c->rk, why, sizeof(why));
                else
                    snprintf(why, sizeof(why), "%s", rd_kafka_message_errstr(rkm));
                xs_err_set(errstr, errstr_size, "kafka: consume%s%s: %s", topic ? " " : "",
                           topic ? topic : "", why);
                rd_kafka_message_destroy(rkm);
                return XS_ERR_KAFKA;
            }
            c->transient_errors++;
            XS_DEBUG("consumer error (retrying)", "topic=%s partition=%d error=\"%s\"",
                     topic ? topic : "-", (int)rkm->partition, rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
        } else {
            if (pt) {
                pt->position = rkm->offset + 1;
                part_update_caught(pt);
            }
            c->last = rkm;
            msg->topic = topic;
            msg->partition = rkm->partition;
            msg->offset = rkm->offset;
            msg->key = rkm->key;
            msg->key_len = rkm->key_len;
            msg->value = rkm->payload;
            msg->value_len = rkm->len;
            msg->native = rkm;
            {
                rd_kafka_timestamp_type_t tstype;
                int64_t ts = rd_kafka_message_timestamp(rkm, &tstype);
                msg->timestamp = tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? -1 : ts;
            }
            return XS_OK;
        }
        if (mono_ms() >= deadline)
            return XS_ERR_EOF;
    }
}

bool xs_consumer_caught_up(xs_consumer_t *c)
{
    if (!c->have_assignment)
        return false;
    for (size_t i = 0; i < c->n_parts; i++)
        if (!c->parts[i].caught)
            return false;
    return true;
}

int xs_consumer_assigned_count(xs_consumer_t *c)
{
    return (int)c->n_parts;
}

int64_t xs_consumer_lag(xs_consumer_t *c)
{
    int64_t lag = 0;
    if (!c->have_assignment)
        return -1;
    for (size_t i = 0; i < c->n_parts; i++) {
        xs_part_t *pt = &c->parts[i];
        int64_t lo = -1, hi = -1;
        /* Latest high watermark seen in fetch responses (no request). */
        if (rd_kafka_get_watermark_offsets(c->rk, pt->topic, pt->partition, &lo, &hi) || hi < 0)
            hi = pt->hi;
        if (hi < 0 || pt->position < 0)
            return -1;
        if (hi > pt->position)
            lag += hi - pt->position;
    }
    return lag;
}

int64_t xs_consumer_partition_lag(xs_consumer_t *c, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < c->n_parts; i++) {
        xs_part_t *pt = &c->parts[i];
        if (pt->partition != partition || strcmp(pt->topic, topic) != 0)
            continue;
        int64_t lo = -1, hi = -1;
        if (rd_kafka_get_watermark_offsets(c->rk, pt->topic, pt->partition, &lo, &hi) || hi < 0)
            hi = pt->hi;
        if (hi < 0 || pt->position < 0)
            return -1;
        return hi > pt->position ? hi - pt->position : 0;
    }
    return -1;
}

xs_err_t xs_consumer_commit(xs_consumer_t *c, const char *topic, int32_t partition, int64_t offset,
                            bool async, char *errstr, size_t errstr_size)
{
    xs_offset_t one = {topic, partition, offset};
    return xs_consumer_commit_offsets(c, &one, 1, async, errstr, errstr_size);
}

xs_err_t xs_consumer_commit_offsets(xs_consumer_t *c, const xs_offset_t *offsets, size_t n,
                                    bool async, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t rderr;
    xs_err_t ret = XS_OK;

    if (n == 0)
        return XS_OK;
    if (!c->group) {
        xs_err_set(errstr, errstr_size, "kafka: commit %s[%d]: consumer has no group.id",
                   offsets[0].topic, (int)offsets[0].partition);
        return XS_ERR_INVALID;
    }
    list = rd_kafka_topic_partition_list_new((int)n);
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, offsets[i].topic, offsets[i].partition)->offset =
            offsets[i].offset;
    rderr = rd_kafka_commit(c->rk, list, async ? 1 : 0);
    for (int i = 0; !rderr && !async && i < list->cnt; i++)
        rderr = list->elems[i].err;
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: commit %s[%d] offset %lld%s: %s", offsets[0].topic,
                   (int)offsets[0].partition, (long long)offsets[0].offset,
                   n > 1 ? " (and more)" : "", rd_kafka_err2str(rderr));
        ret = XS_ERR_KAFKA;
    }
    rd_kafka_topic_partition_list_destroy(list);
    return ret;
}

xs_err_t xs_consumer_pause_all(xs_consumer_t *c, bool pause)
{
    rd_kafka_topic_partition_list_t *list = NULL;
    rd_kafka_resp_err_t rderr;

    rderr = rd_kafka_assignment(c->rk, &list);
    if (rderr) {
        XS_WARN("could not read the assignment", "error=\"%s\"", rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    rderr =
        pause ? rd_kafka_pause_partitions(c->rk, list) : rd_kafka_resume_partitions(c->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (rderr) {
        XS_WARN(pause ? "pause failed" : "resume failed", "error=\"%s\"", rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

/* ======================================================================== */
/* Topic administration (Admin API)                                         */
/* ======================================================================== */

/* A producer handle for Admin requests and metadata (it never produces). */
static rd_kafka_t *admin_handle(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    if (conf_set(rkconf, "bootstrap.servers", bootstrap ? bootstrap : "", errstr, errstr_size) !=
            XS_OK ||
        conf_apply(rkconf, NULL, conf, n_conf, errstr, errstr_size) != XS_OK) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(rkconf, handle_error_cb);
    return handle_new(RD_KAFKA_PRODUCER, rkconf, errstr, errstr_size);
}

/* Waits for the result event of an Admin request on q (NULL on timeout). */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return NULL;
        rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)XS_MIN(left, 1000));
        if (!ev)
            continue;
        if (rd_kafka_event_type(ev) == type)
            return ev;
        rd_kafka_event_destroy(ev);
    }
}

/* Fills info from a full metadata request; partitions -1 when the topic does not exist. */
static xs_err_t describe_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                  xs_topic_info_t *info, char *errstr, size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rderr = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: metadata: %s", rd_kafka_err2str(rderr));
        return XS_ERR_KAFKA;
    }
    info->partitions = -1;
    info->replication = -1;
    info->leader = -1;
    info->leaderless = 0;
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];
        if (strcmp(t->topic, topic) != 0 || t->err)
            continue;
        info->partitions = t->partition_cnt;
        for (int p = 0; p < t->partition_cnt; p++) {
            if (p == 0) {
                info->replication = t->partitions[p].replica_cnt;
                info->leader = t->partitions[p].leader;
            }
            if (t->partitions[p].err || t->partitions[p].leader < 0)
                info->leaderless++;
        }
    }
    rd_kafka_metadata_destroy(md);
    return XS_OK;
}

xs_err_t xs_kafka_create_topics(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                const xs_topic_spec_t *topics, size_t n, int timeout_ms,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = admin_handle(bootstrap, conf, n_conf, errstr, errstr_size);
    if (!rk)
        return XS_ERR_KAFKA;
    xs_err_t ret = XS_OK;
    char rderr[512];
    rd_kafka_NewTopic_t **nt = calloc(n ? n : 1, sizeof(*nt));
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_event_t *ev = NULL;
    if (!nt) {
        xs_err_set(errstr, errstr_size, "kafka: create topics: out of memory");
        ret = XS_ERR_NOMEM;
        goto out;
    }
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, NULL, 0);
    for (size_t i = 0; i < n; i++) {
        nt[i] = rd_kafka_NewTopic_new(topics[i].name, topics[i].partitions,
                                      topics[i].replication > 0 ? topics[i].replication : -1, rderr,
                                      sizeof(rderr));
        if (!nt[i]) {
            xs_err_set(errstr, errstr_size, "kafka: create topic %s: %s", topics[i].name, rderr);
            ret = XS_ERR_INVALID;
            goto out;
        }
        for (size_t k = 0; k < topics[i].n_configs; k++)
            if (rd_kafka_NewTopic_set_config(nt[i], topics[i].configs[k].key,
                                             topics[i].configs[k].value)) {
                xs_err_set(errstr, errstr_size, "kafka: create topic %s: bad config %s",
                           topics[i].name, topics[i].configs[k].key);
                ret = XS_ERR_INVALID;
                goto out;
            }
    }
    rd_kafka_CreateTopics(rk, nt, n, opts, q);
    ev = admin_wait(q, RD_KAFKA_EVENT_CREATETOPICS_RESULT, timeout_ms + 5000);
    if (!ev || rd_kafka_event_error(ev)) {
        xs_err_set(errstr, errstr_size, "kafka: create topics: %s",
                   ev ? rd_kafka_event_error_string(ev) : "timed out");
        ret = XS_ERR_KAFKA;
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t err = rd_kafka_topic_result_error(res[i]);
        if (err == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            XS_INFO("topic exists", "topic=%s", rd_kafka_topic_result_name(res[i]));
        } else if (err) {
            const char *why = rd_kafka_topic_result_error_string(res[i]);
            xs_err_set(errstr, errstr_size, "kafka: create topic %s: %s",
                       rd_kafka_topic_result_name(res[i]), why ? why : rd_kafka_err2str(err));
            ret = XS_ERR_KAFKA;
            goto out;
        } else {
            XS_INFO("topic created", "topic=%s", rd_kafka_topic_result_name(res[i]));
        }
    }
    /* Created is not yet usable: wait until every partition has a leader. */
    for (size_t i = 0; i < n; i++) {
        int64_t deadline = mono_ms() + timeout_ms;
        xs_topic_info_t info;
        for (;;) {
            if (describe_metadata(rk, topics[i].name, timeout_ms, &info, errstr, errstr_size) ==
                    XS_OK &&
                info.partitions > 0 && info.leaderless == 0)
                break;
            if (mono_ms() >= deadline) {
                xs_err_set(errstr, errstr_size,
                           "kafka: create topic %s: no leader for every partition after %d ms",
                           topics[i].name, timeout_ms);
                ret = XS_ERR_KAFKA;
                goto out;
            }
            struct timespec ts = {0, 100 * 1000000L};
            nanosleep(&ts, NULL);
        }
    }

out:
    if (ev)
        rd_kafka_event_destroy(ev);
    for (size_t i = 0; nt && i < n; i++)
        if (nt[i])
            rd_kafka_NewTopic_destroy(nt[i]);
    free(nt);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    return ret;
}

xs_err_t xs_kafka_describe_topic(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                 const char *topic, int timeout_ms, xs_topic_info_t *info,
                                 char *errstr, size_t errstr_size)
{
    memset(info, 0, sizeof(*info));
    info->partitions = -1;
    rd_kafka_t *rk = admin_handle(bootstrap, conf, n_conf, errstr, errstr_size);
    if (!rk)
        return XS_ERR_KAFKA;
    xs_err_t ret = describe_metadata(rk, topic, timeout_ms, info, errstr, errstr_size);
    if (ret != XS_OK || info->partitions < 0)
        goto out;

    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_ConfigResource_t *cr = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_DescribeConfigs(rk, &cr, 1, opts, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DESCRIBECONFIGS_RESULT, timeout_ms + 5000);
    if (!ev || rd_kafka_event_error(ev)) {
        xs_err_set(errstr, errstr_size, "kafka: describe configs of %s: %s", topic,
                   ev ? rd_kafka_event_error_string(ev) : "timed out");
        ret = XS_ERR_KAFKA;
    } else {
        size_t n_res = 0, n_cfg = 0;
        const rd_kafka_ConfigResource_t **res = rd_kafka_DescribeConfigs_result_resources(
            rd_kafka_event_DescribeConfigs_result(ev), &n_res);
        for (size_t i = 0; i < n_res && ret == XS_OK; i++) {
            if (rd_kafka_ConfigResource_error(res[i])) {
                xs_err_set(errstr, errstr_size, "kafka: describe configs of %s: %s", topic,
                           rd_kafka_ConfigResource_error_string(res[i]));
                ret = XS_ERR_KAFKA;
                break;
            }
            const rd_kafka_ConfigEntry_t **cfg = rd_kafka_ConfigResource_configs(res[i], &n_cfg);
            for (size_t k = 0; k < n_cfg; k++) {
                const char *name = rd_kafka_ConfigEntry_name(cfg[k]);
                const char *value = rd_kafka_ConfigEntry_value(cfg[k]);
                if (name && value && strcmp(name, "cleanup.policy") == 0)
                    snprintf(info->cleanup_policy, sizeof(info->cleanup_policy), "%s", value);
            }
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_ConfigResource_destroy(cr);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
out:
    rd_kafka_destroy(rk);
    return ret;
}

xs_err_t xs_kafka_delete_records(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                 const char *topic, int32_t partition, int64_t before,
                                 int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = admin_handle(bootstrap, conf, n_conf, errstr, errstr_size);
    if (!rk)
        return XS_ERR_KAFKA;
    xs_err_t ret = XS_OK;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, topic, partition)->offset = before;
    rd_kafka_DeleteRecords_t *dr = rd_kafka_DeleteRecords_new(l);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, NULL, 0);
    rd_kafka_DeleteRecords(rk, &dr, 1, opts, q);
    rd_kafka_event_t *ev = admin_wait(q, RD_KAFKA_EVENT_DELETERECORDS_RESULT, timeout_ms + 5000);
    if (!ev || rd_kafka_event_error(ev)) {
        xs_err_set(errstr, errstr_size, "kafka: delete records: %s",
                   ev ? rd_kafka_event_error_string(ev) : "timed out");
        ret = XS_ERR_KAFKA;
    } else {
        const rd_kafka_topic_partition_list_t *res =
            rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
        if (!res || res->cnt != 1 || res->elems[0].err) {
            xs_err_set(errstr, errstr_size, "kafka: delete records of %s [%d]: %s", topic,
                       (int)partition,
                       res && res->cnt == 1 ? rd_kafka_err2str(res->elems[0].err) : "no result");
            ret = XS_ERR_KAFKA;
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteRecords_destroy(dr);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(rk);
    return ret;
}

/* ---- versions and offline checks ------------------------------------------------------- */

const char *xs_kafka_version(void)
{
    return rd_kafka_version_str();
}

int xs_kafka_check_conf(const xs_kv_t *conf, size_t n_conf,
                        void (*report)(void *opaque, const char *message), void *opaque)
{
    int bad = 0;
    for (size_t i = 0; i < n_conf; i++) {
        char errstr[1024];
        rd_kafka_conf_t *c = rd_kafka_conf_new();
        if (!c) {
            report(opaque, "kafka: out of memory");
            return bad + 1;
        }
        if (conf_set(c, conf[i].key, conf[i].value, errstr, sizeof(errstr)) != XS_OK) {
            report(opaque, errstr);
            bad++;
        }
        rd_kafka_conf_destroy(c);
    }
    return bad;
}

bool xs_kafka_msg_header(const xs_msg_t *m, const char *name, const void **value, size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;
    if (!m->native || rd_kafka_message_headers((rd_kafka_message_t *)m->native, &hdrs) || !hdrs)
        return false;
    return rd_kafka_header_get_last(hdrs, name, value, len) == RD_KAFKA_RESP_ERR_NO_ERROR;
}
