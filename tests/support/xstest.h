/*
 * Test support: temporary directories, event builders, producing encoded
 * events to the broker under test (the development broker, or a real Kafka:
 * xst_broker() below) and reading the output topic back.
 */
#ifndef XSELL_XSTEST_H
#define XSELL_XSTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "xsell/codec.h"
#include "xsell/config.h"
#include "xsell/event.h"
#include "xsell/kafka.h"

/* XS_ASAN: defined in the sanitizer build (gcc and clang), where the tests
 * that time or size themselves run smaller. */
#if defined(__SANITIZE_ADDRESS__)
#define XS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define XS_ASAN 1
#endif
#endif

/* mkdtemp under $TMPDIR (or /tmp); the caller frees and may remove it. */
char *xst_tmpdir(const char *tag);
void xst_rmrf(const char *path);

/* A cart event with one line per item (NULL-terminated list). */
void xst_cart_event(xs_event_t *ev, const char *event_id, const char *user, xs_cart_type_t type,
                    int64_t ts, const char *const *items);
void xst_click_event(xs_event_t *ev, const char *event_id, const char *user, xs_click_type_t type,
                     int64_t ts, const char *item, const char *category);
void xst_item_event(xs_event_t *ev, const char *item, const char *title, const char *category,
                    bool in_stock, int64_t ts);

/* Encodes and produces ev to its topic (clicks/cart/catalog by kind), key user or item. */
void xst_produce_event(xs_producer_t *p, xs_codec_t *codec, const xs_event_t *ev);

/* A worker config for the development broker. */
xs_config_t *xst_worker_config(const char *bootstrap, const char *state_dir, const char *group);

/* Runs an in-process worker with --until-end; returns its stats. */
typedef struct xst_run {
    uint64_t events, lists, dlq;
} xst_run_t;
xst_run_t xst_run_worker_until_end(const xs_config_t *cfg);
/* The reference run of the restore tests: the same input in process,
 * uninterrupted, without the changelog and with the product-family rule off
 * (as their workers), output to topic `output`; asserts it applied
 * n_events. */
void xst_run_reference(const char *bootstrap, const char *dir, const char *group,
                       const char *output, uint64_t n_events);

/* Reads every list of topic (group-less, from the beginning, until caught up). */
typedef struct xst_lists {
    xs_list_t *v;
    size_t n;
} xst_lists_t;
xst_lists_t xst_read_lists(const char *bootstrap, xs_codec_t *codec, const char *topic);
void xst_lists_free(xst_lists_t *l);
/* The list whose trigger event id is event_id, or NULL. */
const xs_list_t *xst_find_list(const xst_lists_t *l, const char *event_id);

/* A development broker with the default topics, `partitions` each. */
xs_devbroker_t *xst_devbroker(int partitions);

/*
 * The broker a test runs against. By default a development broker (the
 * mock, in-process). When XS_KAFKA_BOOTSTRAP (a bootstrap string) or
 * XS_KAFKA_BOOTSTRAP_FILE (a file holding one, written by
 * tests/kafka/kafka.sh start) is set, an external broker (a real Kafka),
 * shared with other tests: then every topic name and group id the test uses
 * goes through xst_topic()/xst_group(), which prefix them with a name unique
 * to this process ("<tag>-<pid>-<ms>."), and the topics are created through
 * the Admin API (replication 1, or 3 when XS_KAFKA_REPLICATION=3).
 * xst_topic("xsell.clicks") is "xsell.clicks" on the mock.
 */
typedef struct xst_broker xst_broker_t;
bool xst_external(void);
/* The default topics (clicks, cart, catalog, cross-sell, dlq), `partitions` each. */
xst_broker_t *xst_broker(const char *tag, int partitions);
/* Topics names[i] (unprefixed) with partitions[i] each. */
xst_broker_t *xst_broker_topics(const char *tag, const char *const *names, const int *partitions,
                                size_t n);
const char *xst_bootstrap(const xst_broker_t *b);
/* The development broker, NULL on an external broker. */
xs_devbroker_t *xst_broker_dev(const xst_broker_t *b);
void xst_broker_free(xst_broker_t *b);
/* The name this test uses for topic / group `name` (static storage, valid for the process). */
const char *xst_topic(const char *name);
const char *xst_group(const char *name);
/* Writes a worker config file setting topics.* to the test's names; returns its path (free). */
char *xst_topics_config(const char *dir);

#endif
