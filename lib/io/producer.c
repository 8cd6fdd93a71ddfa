/*
 * producer.c — the producer (include/xsell/kafka.h).
 *
 * Producer. Delivery reports count delivered/failed messages, cumulatively
 * (xs_producer_delivered/failed) and since the last flush (what flush
 * reports, with the first failure's message). A full local queue
 * (RD_KAFKA_RESP_ERR__QUEUE_FULL) is backpressure: send serves delivery
 * reports for 100 ms and retries until there is room; nothing is dropped.
 * An idempotence fatal error (RD_KAFKA_RESP_ERR__FATAL) makes every later
 * send fail; pending delivery reports are still served by flush/destroy.
 */
#include "xsell/kafka.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "kafka_client.h"
#include "xsell/log.h"

#define XS_DESTROY_FLUSH_MS 30000

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

/* Error callback: an idempotence fatal error makes every later send fail
 * (the rest as for every handle, xs_kafka_error_cb). */
static void producer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    xs_producer_t *p = opaque;
    xs_kafka_error_cb(rk, err, reason, NULL);
    if (err == RD_KAFKA_RESP_ERR__FATAL && p) {
        p->fatal = true;
        rd_kafka_fatal_error(rk, p->fatal_msg, sizeof(p->fatal_msg));
    }
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
    if (xs_kafka_conf_set(rkconf, "bootstrap.servers", bootstrap, errstr, errstr_size) != XS_OK ||
        xs_kafka_conf_apply(rkconf, defaults, conf, n_conf, errstr, errstr_size) != XS_OK)
        goto fail;
    rd_kafka_conf_set_opaque(rkconf, p);
    rd_kafka_conf_set_dr_msg_cb(rkconf, producer_dr_cb);
    rd_kafka_conf_set_error_cb(rkconf, producer_error_cb);
    p->rk = xs_kafka_handle_new(RD_KAFKA_PRODUCER, rkconf, errstr, errstr_size);
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

int32_t xs_producer_partition(const char *partitioner, const void *key, size_t key_len,
                              int32_t partition_cnt)
{
    /* With a non-empty key none of them touches the topic handle (the
     * *_random ones only pick a random partition for a NULL key). */
    static const struct {
        const char *name;
        int32_t (*fn)(const rd_kafka_topic_t *, const void *, size_t, int32_t, void *, void *);
    } parts[] = {
        {"consistent_random", rd_kafka_msg_partitioner_consistent_random},
        {"consistent", rd_kafka_msg_partitioner_consistent},
        {"murmur2_random", rd_kafka_msg_partitioner_murmur2_random},
        {"murmur2", rd_kafka_msg_partitioner_murmur2},
        {"fnv1a_random", rd_kafka_msg_partitioner_fnv1a_random},
        {"fnv1a", rd_kafka_msg_partitioner_fnv1a},
    };
    if (!partitioner || !key || key_len == 0 || partition_cnt < 1)
        return -1;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++)
        if (!strcmp(parts[i].name, partitioner))
            return parts[i].fn(NULL, key, key_len, partition_cnt, NULL, NULL);
    return -1;
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
