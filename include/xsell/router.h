/*
 * xsell — the router: what an input message is and where it goes.
 *
 * Kinds: the topic names the record kind (topics.clicks: ClickEvent,
 * topics.cart: CartEvent, topics.catalog: ItemUpdate; a null value there is
 * a tombstone that deletes the item named by the key).
 * Framing: a value is Avro in one of three framings, told apart by its first
 * bytes: single-object encoding (C3 01 + the writer schema's fingerprint),
 * the Confluent wire format (00 + the writer schema's registry id; ids the
 * codec does not know are fetched once from the Schema Registry when
 * schema.registry.url is set, or given by schema.confluent.<id>), or bare
 * Avro binary on the topics of topics.bare (the topic's kind is the writer).
 * Lists go out single-object encoded or, with output.framing = confluent,
 * in the Confluent wire format under the id CrossSellList is registered
 * with (subject <topics.output>-value), with the headers content-type,
 * xsell.framing, xsell.schema.id and the trigger's output.headers.copy.
 * Dead letters: a message that is too large, empty, does not decode, is of
 * the wrong kind for its topic or fails xs_event_validate() goes to
 * topics.dlq, with its key and value (truncated to what the producer can
 * send, xsell.original.size then says the value's size) and the headers
 * xsell.reason, xsell.source.topic, .partition and .offset; the partition
 * moves on. Each is counted by reason class (too_large, empty, decode,
 * wrong_type, validation).
 *
 * Ownership: _new/_destroy (NULL is a no-op); the router owns its codec and
 * its registry client; producers are borrowed per call. Not thread-safe:
 * one router per thread.
 */
#ifndef XSELL_ROUTER_H
#define XSELL_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/event.h"
#include "xsell/kafka.h"
#include "xsell/worker_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_router xs_router_t;

typedef enum xs_route {
    XS_ROUTE_EVENT,     /* a decoded, validated event (ev) */
    XS_ROUTE_TOMBSTONE, /* a catalog tombstone of item_id */
    XS_ROUTE_DEAD       /* dead-lettered: nothing to process */
} xs_route_t;

/* One input message, routed. */
typedef struct xs_input {
    const xs_msg_t *msg; /* topic, partition, offset, key, headers (borrowed) */
    xs_route_t route;
    xs_event_t ev; /* XS_ROUTE_EVENT */
    char *item_id; /* XS_ROUTE_TOMBSTONE */
} xs_input_t;

/* Releases what xs_router_route() put into in. */
void xs_router_input_clear(xs_input_t *in);

typedef struct xs_router_stats {
    uint64_t dlq, dlq_by_reason_decode, dlq_by_reason_validation, dlq_by_reason_size;
} xs_router_stats_t;

/* cfg and metrics are borrowed for the router's life. */
xs_router_t *xs_router_new(const xs_config_t *cfg, xs_worker_metrics_t *metrics, char *errstr,
                           size_t errstr_size);
void xs_router_destroy(xs_router_t *r);

/* A wait of ms milliseconds while the registry is unavailable; false when a
 * stop was asked. */
typedef bool (*xs_router_wait_fn)(void *opaque, double ms);

/*
 * Before a message is routed (outside any lock): a Confluent-framed value
 * whose schema id the codec does not know has its writer schema fetched
 * from the registry (then the decode resolves it against xsell's reader
 * schema; an id the registry does not have is dead-lettered by the decode
 * as any unknown id); with output.framing = confluent, CrossSellList is
 * registered before the first list. A registry that cannot be reached is
 * asked again with exponential backoff (wait) for as long as it takes.
 * XS_ERR_EOF: a stop was asked while waiting.
 */
xs_err_t xs_router_prepare(xs_router_t *r, const xs_msg_t *m, xs_router_wait_fn wait,
                           void *wait_opaque, char *errstr, size_t errstr_size);

/* Routes m into *in (in->msg = m): an event, a tombstone, or dead-lettered
 * through p. An error is one of the producer (the message is not done). */
xs_err_t xs_router_route(xs_router_t *r, xs_producer_t *p, const xs_msg_t *m, xs_input_t *in,
                         char *errstr, size_t errstr_size);

/* Publishes a list triggered by the message trigger, keyed by user_id. */
xs_err_t xs_router_publish(xs_router_t *r, xs_producer_t *p, const xs_msg_t *trigger,
                           const xs_list_t *list, char *errstr, size_t errstr_size);

/* Sends m to the dead-letter topic with reason (counted under reason_class). */
xs_err_t xs_router_dead_letter(xs_router_t *r, xs_producer_t *p, const xs_msg_t *m,
                               const char *reason, const char *reason_class, char *errstr,
                               size_t errstr_size);

void xs_router_stats(const xs_router_t *r, xs_router_stats_t *st);

#ifdef __cplusplus
}
#endif
#endif
