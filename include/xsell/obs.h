/*
 * xsell — the worker's operational metrics beyond its counters: latency
 * histograms, build information, process metrics and per-partition
 * consumer lag, in the worker's metrics registry (metrics.h).
 *
 *   xsell_event_processing_seconds{topic}      histogram: one input message, decode to
 *                                              list handed to the producer (worker thread)
 *   xsell_event_to_publish_seconds             histogram: the triggering event's own timestamp
 *                                              (event time) to its list handed to the producer
 *   xsell_checkpoint_seconds                   histogram: checkpoint duration
 *   xsell_http_request_duration_seconds{route} histogram: request to answer queued, by route
 *                                              template ("other": unknown paths, refused requests)
 *   xsell_checkpoint_failures_total            checkpoints that failed (the worker then stops)
 *   xsell_checkpoint_last_success_timestamp_seconds
 *   xsell_consumer_partition_lag_messages{topic,partition}
 *                                              per assigned partition whose lag is known; no
 *                                              series while unknown (never -1)
 *   xsell_consumer_lag_unknown_partitions      assigned partitions whose lag is not known yet
 *   xsell_build_info{version,commit,librdkafka,rocksdb,avro} 1
 *   process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
 *   process_max_fds, process_start_time_seconds   (the Prometheus client conventions, /proc)
 *
 * Every series whose labels are known at start (each input topic, each
 * route) exists from the start at zero.
 */
#ifndef XSELL_OBS_H
#define XSELL_OBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/metrics.h"

typedef struct xs_obs xs_obs_t;

/* Defines the families in m (which must outlive the result) and creates the
 * series known at start. NULL when out of memory or out of families. */
xs_obs_t *xs_obs_new(xs_metrics_t *m, const char *const *input_topics, size_t n_topics);
void xs_obs_destroy(xs_obs_t *o); /* NULL is a no-op */

void xs_obs_event(xs_obs_t *o, const char *topic, double seconds);
/* A list handed to the producer for an event of time event_ts_ms (ms since the epoch). */
void xs_obs_published(xs_obs_t *o, int64_t event_ts_ms);
void xs_obs_checkpoint(xs_obs_t *o, double seconds);
void xs_obs_checkpoint_failed(xs_obs_t *o);
void xs_obs_http(xs_obs_t *o, const char *route, double seconds);
/* One partition's lag; lag < 0 (unknown, or no longer assigned) removes its series. */
void xs_obs_partition_lag(xs_obs_t *o, const char *topic, int32_t partition, int64_t lag);
void xs_obs_lag_unknown(xs_obs_t *o, int partitions);
/* Samples the process metrics from /proc (Linux; elsewhere they stay 0). */
void xs_obs_sample_process(xs_obs_t *o);

#endif
