/*
 * devbroker.c — the development broker (include/xsell/kafka.h).
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
 */
#include "xsell/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "kafka_client.h"
#include "xsell/log.h"

/* The development broker's bookkeeping handle has no bootstrap.servers on
 * purpose; librdkafka's warning about that is noise there. */
static void devbroker_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    if (strcmp(fac, "CONFWARN") == 0 && strstr(buf, "bootstrap.servers"))
        level = 7;
    xs_kafka_log_cb(rk, level, fac, buf);
}

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
    if (xs_kafka_conf_set(conf, "client.id", "xsell-devbroker", errstr, errstr_size) != XS_OK ||
        xs_kafka_conf_set(conf, "socket.nagle.disable", "true", errstr, errstr_size) != XS_OK) {
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
