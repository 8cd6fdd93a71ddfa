/*
 * kafka_txn.c — the Kafka glue of the changelog (see include/xsell/kafka_txn.h):
 * a transactional producer and a reader of one whole partition. Part of the
 * Kafka glue with kafka.c: these two files are the only ones that include
 * the librdkafka headers.
 *
 * Transactions (librdkafka's API, KIP-98): init_transactions once, then per
 * transaction begin_transaction, produce, commit_transaction, which flushes
 * (serving the delivery reports on the calling thread) and ends the
 * transaction. An error of a transactional call is one of: retriable (the
 * call may be repeated: we do, until the timeout), abortable (the
 * transaction is aborted here and the caller told), or fatal (the producer
 * is unusable: fenced by a newer instance of the same transactional.id,
 * for instance; every later call fails).
 *
 * The reader: a consumer without group, assigned the one partition at its
 * first offset, partition-EOF events on; the end is the high watermark (or
 * the last stable offset) queried before the read; it stops at the first
 * EOF at or past that end.
 */
#include "xsell/kafka_txn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "xsell/log.h"

#define XS_TXN_RETRY_MS 100

struct xs_kafka_txn {
    rd_kafka_t *rk;
    bool open;
    uint64_t failed;
    char first_failure[256];
};

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void txn_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    xs_log_level_t lvl = level <= 4 ? XS_LOG_WARN : level <= 6 ? XS_LOG_INFO : XS_LOG_DEBUG;
    if (strcmp(fac, "FAIL") == 0)
        lvl = XS_LOG_DEBUG;
    xs_log(lvl, "librdkafka", "client=%s facility=%s text=\"%s\"", rd_kafka_name(rk), fac, buf);
}

static xs_err_t conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                         size_t errstr_size)
{
    char rderr[512];
    if (rd_kafka_conf_set(conf, key, value, rderr, sizeof(rderr)) != RD_KAFKA_CONF_OK) {
        bool secret = strstr(key, "password") || strstr(key, "secret") || strstr(key, "key") ||
                      strstr(key, "sasl.jaas") || strstr(key, "sasl.oauthbearer.config");
        xs_err_set(errstr, errstr_size, "kafka: config %s=%s: %s", key, secret ? "(hidden)" : value,
                   secret ? "invalid value (hidden)" : rderr);
        return XS_ERR_CONFIG;
    }
    return XS_OK;
}

/* The bootstrap, the defaults (NULL-terminated pairs), the caller's conf,
 * then the pairs that must win (NULL-terminated). */
static rd_kafka_conf_t *conf_build(const char *bootstrap, const char *const *defaults,
                                   const xs_kv_t *kv, size_t n_kv, const char *const *forced,
                                   char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", bootstrap, errstr, errstr_size))
        goto fail;
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if (conf_set(conf, defaults[i], defaults[i + 1], errstr, errstr_size))
            goto fail;
    for (size_t i = 0; i < n_kv; i++)
        if (conf_set(conf, kv[i].key, kv[i].value, errstr, errstr_size))
            goto fail;
    for (size_t i = 0; forced && forced[i]; i += 2)
        if (conf_set(conf, forced[i], forced[i + 1], errstr, errstr_size))
            goto fail;
    rd_kafka_conf_set_log_cb(conf, txn_log_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Converts a transactional error (destroyed here); aborts on an abortable one. */
static xs_err_t txn_error(xs_kafka_txn_t *tp, rd_kafka_error_t *error, const char *what,
                          char *errstr, size_t errstr_size)
{
    xs_err_set(errstr, errstr_size, "kafka: %s: %s%s", what, rd_kafka_error_string(error),
               rd_kafka_error_is_fatal(error) ? " (fatal)" : "");
    bool abortable = rd_kafka_error_txn_requires_abort(error);
    rd_kafka_error_destroy(error);
    if (abortable && tp->open) {
        rd_kafka_error_t *e2 = rd_kafka_abort_transaction(tp->rk, 30000);
        if (e2) {
            XS_WARN("changelog transaction abort failed", "error=\"%s\"",
                    rd_kafka_error_string(e2));
            rd_kafka_error_destroy(e2);
        }
    }
    tp->open = false;
    return XS_ERR_KAFKA;
}

static void txn_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *rkm, void *opaque)
{
    xs_kafka_txn_t *tp = opaque;
    (void)rk;
    if (rkm->err) {
        if (tp->failed++ == 0)
            snprintf(tp->first_failure, sizeof(tp->first_failure), "delivery to %s [%d]: %s",
                     rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : "?", (int)rkm->partition,
                     rd_kafka_err2str(rkm->err));
        return;
    }
    if (rkm->_private)
        *(int64_t *)rkm->_private = rkm->offset;
}

xs_kafka_txn_t *xs_kafka_txn_new(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                 const char *transactional_id, int timeout_ms, char *errstr,
                                 size_t errstr_size)
{
    static const char *const defaults[] = {"linger.ms", "5", "compression.codec", "lz4", NULL};
    const char *forced[] = {
        "transactional.id", transactional_id, "enable.idempotence", "true", "acks", "all", NULL};
    char rderr[512];
    xs_kafka_txn_t *tp = calloc(1, sizeof(*tp));
    if (!tp) {
        xs_err_set(errstr, errstr_size, "kafka: transactional producer: out of memory");
        return NULL;
    }
    rd_kafka_conf_t *rkconf =
        conf_build(bootstrap, defaults, conf, n_conf, forced, errstr, errstr_size);
    if (!rkconf)
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, tp);
    rd_kafka_conf_set_dr_msg_cb(rkconf, txn_dr_cb);
    if (!(tp->rk = rd_kafka_new(RD_KAFKA_PRODUCER, rkconf, rderr, sizeof(rderr)))) {
        rd_kafka_conf_destroy(rkconf);
        xs_err_set(errstr, errstr_size, "kafka: create transactional producer: %s", rderr);
        goto fail;
    }
    rd_kafka_error_t *error = rd_kafka_init_transactions(tp->rk, timeout_ms);
    if (error) {
        txn_error(tp, error, "init transactions", errstr, errstr_size);
        goto fail;
    }
    return tp;
fail:
    xs_kafka_txn_destroy(tp);
    return NULL;
}

void xs_kafka_txn_destroy(xs_kafka_txn_t *tp)
{
    if (!tp)
        return;
    if (tp->rk) {
        if (tp->open) {
            rd_kafka_error_t *e = rd_kafka_abort_transaction(tp->rk, 5000);
            if (e)
                rd_kafka_error_destroy(e);
        }
        rd_kafka_destroy(tp->rk);
    }
    free(tp);
}

xs_err_t xs_kafka_txn_begin(xs_kafka_txn_t *tp, char *errstr, size_t errstr_size)
{
    rd_kafka_error_t *error = rd_kafka_begin_transaction(tp->rk);
    if (error)
        return txn_error(tp, error, "begin transaction", errstr, errstr_size);
    tp->open = true;
    tp->failed = 0;
    tp->first_failure[0] = 0;
    return XS_OK;
}

xs_err_t xs_kafka_txn_send(xs_kafka_txn_t *tp, const char *topic, int32_t partition,
                           const void *key, size_t key_len, const void *value, size_t value_len,
                           int64_t *offset, char *errstr, size_t errstr_size)
{
    if (offset)
        *offset = -1;
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            tp->rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value ? value_len : 0),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_OPAQUE(offset), RD_KAFKA_V_END);
        if (!err)
            return XS_OK;
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            xs_err_set(errstr, errstr_size, "kafka: produce to %s [%d]: %s", topic, (int)partition,
                       rd_kafka_err2str(err));
            return XS_ERR_KAFKA;
        }
        rd_kafka_poll(tp->rk, XS_TXN_RETRY_MS); /* backpressure */
    }
}

void xs_kafka_txn_poll(xs_kafka_txn_t *tp)
{
    rd_kafka_poll(tp->rk, 0);
}

xs_err_t xs_kafka_txn_flush(xs_kafka_txn_t *tp, int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(tp->rk, timeout_ms);
    if (err) {
        xs_err_set(errstr, errstr_size, "kafka: flush: %s", rd_kafka_err2str(err));
        return XS_ERR_KAFKA;
    }
    if (tp->failed) {
        xs_err_set(errstr, errstr_size, "kafka: %s", tp->first_failure);
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

xs_err_t xs_kafka_txn_send_offsets(xs_kafka_txn_t *tp, const xs_offset_t *offsets, size_t n,
                                   const xs_consumer_group_meta_t *gm, int timeout_ms, char *errstr,
                                   size_t errstr_size)
{
    if (!n || !gm)
        return XS_OK;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
    if (!list) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return XS_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, offsets[i].topic, offsets[i].partition)->offset =
            offsets[i].offset;
    int64_t deadline = mono_ms() + timeout_ms;
    rd_kafka_error_t *error = NULL;
    for (;;) {
        int left = (int)XS_MAX(deadline - mono_ms(), 1);
        error = rd_kafka_send_offsets_to_transaction(
            tp->rk, list, (const rd_kafka_consumer_group_metadata_t *)gm, left);
        if (!error || !rd_kafka_error_is_retriable(error) || mono_ms() >= deadline)
            break;
        rd_kafka_error_destroy(error);
    }
    rd_kafka_topic_partition_list_destroy(list);
    if (error)
        return txn_error(tp, error, "send offsets to transaction", errstr, errstr_size);
    return XS_OK;
}

xs_err_t xs_kafka_txn_commit(xs_kafka_txn_t *tp, int timeout_ms, char *errstr, size_t errstr_size)
{
    int64_t deadline = mono_ms() + timeout_ms;
    for (;;) {
        int left = (int)XS_MAX(deadline - mono_ms(), 1);
        rd_kafka_error_t *error = rd_kafka_commit_transaction(tp->rk, left);
        if (!error)
            break;
        if (rd_kafka_error_is_retriable(error) && mono_ms() < deadline) {
            rd_kafka_error_destroy(error);
            continue;
        }
        return txn_error(tp, error, "commit transaction", errstr, errstr_size);
    }
    tp->open = false;
    /* A failed delivery fails the commit; this is a second guard. */
    if (tp->failed) {
        xs_err_set(errstr, errstr_size, "kafka: transaction: %s", tp->first_failure);
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

xs_err_t xs_kafka_txn_abort(xs_kafka_txn_t *tp, int timeout_ms, char *errstr, size_t errstr_size)
{
    if (!tp->open)
        return XS_OK;
    rd_kafka_error_t *error = rd_kafka_abort_transaction(tp->rk, timeout_ms);
    tp->open = false;
    if (error) {
        xs_err_set(errstr, errstr_size, "kafka: abort transaction: %s",
                   rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return XS_ERR_KAFKA;
    }
    return XS_OK;
}

bool xs_kafka_txn_open(const xs_kafka_txn_t *tp)
{
    return tp->open;
}

/* ---- the partition reader --------------------------------------------------------------- */

static rd_kafka_t *reader_new(const char *bootstrap, const xs_kv_t *kv, size_t n_kv,
                              bool read_committed, char *errstr, size_t errstr_size)
{
    /* a short fetch wait: the read ends with an empty fetch at the end */
    static const char *const defaults[] = {"enable.auto.commit", "false", "fetch.wait.max.ms", "10",
                                           NULL};
    const char *forced[] = {"isolation.level",
                            read_committed ? "read_committed" : "read_uncommitted",
                            "enable.partition.eof",
                            "true",
                            "auto.offset.reset",
                            "earliest",
                            "group.id",
                            "xsell-partition-reader", /* required by the API, never joined */
                            NULL};
    char rderr[512];
    rd_kafka_conf_t *conf = conf_build(bootstrap, defaults, kv, n_kv, forced, errstr, errstr_size);
    if (!conf)
        return NULL;
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        xs_err_set(errstr, errstr_size, "kafka: create reader: %s", rderr);
    }
    return rk;
}

int64_t xs_kafka_txn_end_offset(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                const char *topic, int32_t partition, bool read_committed,
                                int timeout_ms, char *errstr, size_t errstr_size)
{
    int64_t lo = -1, hi = -1;
    rd_kafka_t *rk = reader_new(bootstrap, conf, n_conf, read_committed, errstr, errstr_size);
    if (!rk)
        return -1;
    rd_kafka_resp_err_t err =
        rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, timeout_ms);
    rd_kafka_destroy(rk);
    if (err) {
        xs_err_set(errstr, errstr_size, "kafka: end offset of %s [%d]: %s", topic, (int)partition,
                   rd_kafka_err2str(err));
        return -1;
    }
    return hi;
}

xs_err_t xs_kafka_txn_read_partition(const xs_kafka_txn_read_t *r, uint64_t *records,
                                     uint64_t *bytes, int64_t *end, char *errstr,
                                     size_t errstr_size)
{
    xs_err_t err = XS_OK;
    int64_t lo = -1, hi = -1;
    rd_kafka_topic_partition_list_t *list = NULL;
    *records = *bytes = 0;
    *end = 0;
    rd_kafka_t *rk =
        reader_new(r->bootstrap, r->conf, r->n_conf, r->read_committed, errstr, errstr_size);
    if (!rk)
        return XS_ERR_KAFKA;
    rd_kafka_resp_err_t rderr =
        rd_kafka_query_watermark_offsets(rk, r->topic, r->partition, &lo, &hi, r->timeout_ms);
    if (rderr) {
        xs_err_set(errstr, errstr_size, "kafka: watermarks of %s [%d]: %s", r->topic,
                   (int)r->partition, rd_kafka_err2str(rderr));
        err = XS_ERR_KAFKA;
        goto out;
    }
    *end = hi;
    if (hi <= lo)
        goto out; /* empty */
    list = rd_kafka_topic_partition_list_new(1);
    /* the first offset as an absolute one: no offset lookup before the fetch */
    rd_kafka_topic_partition_list_add(list, r->topic, r->partition)->offset = lo;
    if ((rderr = rd_kafka_assign(rk, list))) {
        xs_err_set(errstr, errstr_size, "kafka: assign %s [%d]: %s", r->topic, (int)r->partition,
                   rd_kafka_err2str(rderr));
        err = XS_ERR_KAFKA;
        goto out;
    }
    int64_t last_progress = mono_ms(), last_report = last_progress;
    for (;;) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(rk, 200);
        int64_t now = mono_ms();
        if (r->progress && now - last_report >= 1000) {
            r->progress(r->opaque, *records, *bytes, hi);
            last_report = now;
        }
        if (!rkm) {
            if (now - last_progress > r->timeout_ms) {
                xs_err_set(errstr, errstr_size,
                           "kafka: reading %s [%d]: no progress for %d ms at %llu records "
                           "(end %lld)",
                           r->topic, (int)r->partition, r->timeout_ms, (unsigned long long)*records,
                           (long long)hi);
                err = XS_ERR_TIMEOUT;
                break;
            }
            continue;
        }
        last_progress = now;
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            int64_t at = rkm->offset;
            rd_kafka_message_destroy(rkm);
            if (at >= hi) {
                *end = at;
                break;
            }
            continue;
        }
        if (rkm->err) {
            bool fatal = rkm->err == RD_KAFKA_RESP_ERR__FATAL ||
                         rkm->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
                         rkm->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART ||
                         rkm->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED;
            if (fatal) {
                xs_err_set(errstr, errstr_size, "kafka: reading %s [%d]: %s", r->topic,
                           (int)r->partition, rd_kafka_message_errstr(rkm));
                rd_kafka_message_destroy(rkm);
                err = XS_ERR_KAFKA;
                break;
            }
            XS_DEBUG("partition reader error (retrying)", "topic=%s partition=%d error=\"%s\"",
                     r->topic, (int)r->partition, rd_kafka_message_errstr(rkm));
            rd_kafka_message_destroy(rkm);
            continue;
        }
        xs_msg_t m = {
            .topic = r->topic,
            .partition = rkm->partition,
            .offset = rkm->offset,
            .key = rkm->key,
            .key_len = rkm->key_len,
            .value = rkm->payload,
            .value_len = rkm->len,
            .timestamp = -1,
            .native = rkm,
        };
        (*records)++;
        *bytes += rkm->key_len + rkm->len;
        int stop = r->fn(r->opaque, &m);
        int64_t next = rkm->offset + 1;
        rd_kafka_message_destroy(rkm);
        if (stop) {
            xs_err_set(errstr, errstr_size, "stopped by the reader");
            err = XS_ERR_INVALID;
            break;
        }
        if (next >= hi) {
            /* the last record before the end: control records (transaction
             * markers) may follow, the EOF event says where the end is */
            *end = next;
        }
    }
out:
    if (list)
        rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return err;
}
