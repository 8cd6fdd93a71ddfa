/*
 * Private to lib/io: what the Kafka clients (devbroker.c, producer.c,
 * consumer.c) share, defined in kafka.c. Only these files include
 * librdkafka's headers.
 */
#ifndef XSELL_LIB_KAFKA_CLIENT_H
#define XSELL_LIB_KAFKA_CLIENT_H

#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "xsell/common.h"

/* CLOCK_MONOTONIC in milliseconds. */
int64_t xs_kafka_mono_ms(void);

/* librdkafka log lines (syslog levels) into our log format. */
void xs_kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf);

/* Sets one property; on failure writes "kafka: config key=value: reason". */
xs_err_t xs_kafka_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, char *errstr,
                           size_t errstr_size);
/* Applies defaults (NULL-terminated pairs) and then the caller's values. */
xs_err_t xs_kafka_conf_apply(rd_kafka_conf_t *conf, const char *const *defaults, const xs_kv_t *kv,
                             size_t n_kv, char *errstr, size_t errstr_size);

/* Creates a handle of `type` with xs_kafka_log_cb; takes ownership of conf
 * in every case (destroyed on failure, handed to librdkafka on success). */
rd_kafka_t *xs_kafka_handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, char *errstr,
                                size_t errstr_size);

/* The error callback of every handle: a fatal error logged as an error,
 * every broker down as a warning, connection churn at debug level, the rest
 * as warnings. opaque is not used. */
void xs_kafka_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque);

/*
 * Partition count of `topic` from a full metadata request (a request for
 * one named topic could auto-create it on a real broker). Returns the count,
 * 0 when the topic is not (yet) known, -1 with errstr on a request error.
 */
int xs_kafka_metadata_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                      char *errstr, size_t errstr_size);

#endif
