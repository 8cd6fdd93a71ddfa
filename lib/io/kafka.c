/*
 * kafka.c — the Kafka glue (see include/xsell/kafka.h): what the three
 * clients share (configuration, handles, logging, the error callback,
 * metadata; private header kafka_client.h), topic administration, and the
 * offline checks. The clients have a file each: devbroker.c (the
 * development broker), producer.c (an idempotent producer with delivery
 * accounting) and consumer.c (a consumer with caller-chosen start offsets
 * and catch-up tracking).
 *
 * These four files and kafka_txn.c are the only ones that include the
 * librdkafka headers.
 * Every librdkafka error is converted there, where it enters, into an
 * xs_err_t plus "kafka: <what>: <librdkafka message>" in the caller's errstr.
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

#include "kafka_client.h"
#include "xsell/log.h"

/* ======================================================================== */
/* Shared by the clients (kafka_client.h)                                   */
/* ======================================================================== */

int64_t xs_kafka_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* librdkafka log lines (syslog levels) into our log format. */
void xs_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    xs_log_level_t lvl = level <= 4 ? XS_LOG_WARN : level <= 6 ? XS_LOG_INFO : XS_LOG_DEBUG;
    /* Connection failures and disconnects are retried by librdkafka and
     * also reach error_cb; logging each attempt is noise. */
    if (strcmp(fac, "FAIL") == 0)
        lvl = XS_LOG_DEBUG;
    xs_log(lvl, "librdkafka", "client=%s facility=%s text=\"%s\"", rd_kafka_name(rk), fac, buf);
}

/* Sets one property; on failure writes "kafka: config key=value: reason". */
xs_err_t xs_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
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
xs_err_t xs_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *defaults, const xs_kv_t *kv,
                             size_t n_kv, char *errstr, size_t errstr_size)
{
    xs_err_t err = XS_OK;
    for (size_t i = 0; defaults && defaults[i]; i += 2)
        if ((err = xs_kafka_conf_set(conf, defaults[i], defaults[i + 1], errstr, errstr_size)) !=
            XS_OK)
            return err;
    for (size_t i = 0; i < n_kv; i++)
        if ((err = xs_kafka_conf_set(conf, kv[i].key, kv[i].value, errstr, errstr_size)) != XS_OK)
            return err;
    return XS_OK;
}

/*
 * Creates a handle of `type`; takes ownership of conf in every case (it is
 * destroyed on failure, handed to librdkafka on success).
 */
rd_kafka_t *xs_kafka_handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                                size_t errstr_size)
{
    char rderr[512];
    rd_kafka_t *rk = NULL;
    rd_kafka_conf_set_log_cb(conf, xs_kafka_log_cb);
    rk = rd_kafka_new(type, conf, rderr, sizeof(rderr));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        xs_err_set(errstr, errstr_size, "kafka: create %s: %s",
                   type == RD_KAFKA_PRODUCER ? "producer" : "consumer", rderr);
    }
    return rk;
}

/* The error callback of every handle; a producer's and a consumer's handle
 * theirs first (producer.c, consumer.c). */
void xs_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, why, sizeof(why));
        XS_ERROR("kafka fatal error", "client=%s error=\"%s\" reason=\"%s\"", rd_kafka_name(rk),
                 rd_kafka_err2str(orig), why);
        return;
    }
    /* Every broker down: an outage worth a warning (a consumer's comes
     * once per outage, consumer.c). */
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
        XS_WARN("kafka brokers unreachable", "client=%s error=\"%s\"", rd_kafka_name(rk), reason);
        return;
    }
    /* Connection churn is routine (broker restarts, idle disconnects);
     * librdkafka retries on its own. */
    if (err == RD_KAFKA_RESP_ERR__TRANSPORT || err == RD_KAFKA_RESP_ERR__RESOLVE)
        XS_DEBUG("kafka transient error", "client=%s error=\"%s\"", rd_kafka_name(rk), reason);
    else
        XS_WARN("kafka error", "client=%s error=\"%s\"", rd_kafka_name(rk), reason);
}

/* ======================================================================== */
/* Metadata                                                                 */
/* ======================================================================== */

/*
 * Partition count of `topic` from a full metadata request (a request for
 * one named topic could auto-create it on a real broker). Returns the count,
 * 0 when the topic is not (yet) known, -1 with errstr on a request error.
 */
int xs_kafka_metadata_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                      char *errstr, size_t errstr_size)
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

    if (xs_kafka_conf_set(rkconf, "bootstrap.servers", bootstrap ? bootstrap : "", errstr,
                          errstr_size) != XS_OK ||
        xs_kafka_conf_apply(rkconf, NULL, conf, n_conf, errstr, errstr_size) != XS_OK) {
        rd_kafka_conf_destroy(rkconf);
        return -1;
    }
    rd_kafka_conf_set_error_cb(rkconf, xs_kafka_error_cb);
    rk = xs_kafka_handle_new(RD_KAFKA_PRODUCER, rkconf, errstr, errstr_size);
    if (!rk)
        return -1;
    count = xs_kafka_metadata_partition_count(rk, topic, timeout_ms, errstr, errstr_size);
    if (count == 0) {
        xs_err_set(errstr, errstr_size, "kafka: metadata: topic %s does not exist", topic);
        count = -1;
    }
    rd_kafka_destroy(rk);
    return count;
}

/* ======================================================================== */
/* Topic administration (Admin API)                                         */
/* ======================================================================== */

/* A producer handle for Admin requests and metadata (it never produces). */
static rd_kafka_t *admin_handle(const char *bootstrap, const xs_kv_t *conf, size_t n_conf,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *rkconf = rd_kafka_conf_new();
    if (xs_kafka_conf_set(rkconf, "bootstrap.servers", bootstrap ? bootstrap : "", errstr,
                          errstr_size) != XS_OK ||
        xs_kafka_conf_apply(rkconf, NULL, conf, n_conf, errstr, errstr_size) != XS_OK) {
        rd_kafka_conf_destroy(rkconf);
        return NULL;
    }
    rd_kafka_conf_set_error_cb(rkconf, xs_kafka_error_cb);
    return xs_kafka_handle_new(RD_KAFKA_PRODUCER, rkconf, errstr, errstr_size);
}

/* Waits for the result event of an Admin request on q (NULL on timeout). */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, rd_kafka_event_type_t type, int timeout_ms)
{
    int64_t deadline = xs_kafka_mono_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - xs_kafka_mono_ms();
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
        int64_t deadline = xs_kafka_mono_ms() + timeout_ms;
        xs_topic_info_t info;
        for (;;) {
            if (describe_metadata(rk, topics[i].name, timeout_ms, &info, errstr, errstr_size) ==
                    XS_OK &&
                info.partitions > 0 && info.leaderless == 0)
                break;
            if (xs_kafka_mono_ms() >= deadline) {
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
        if (xs_kafka_conf_set(c, conf[i].key, conf[i].value, errstr, sizeof(errstr)) != XS_OK) {
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
