/*
 * Test support: temporary directories, event builders, producing encoded
 * events to the development broker and reading the output topic back.
 */
#ifndef XSELL_XSTEST_H
#define XSELL_XSTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "xsell/codec.h"
#include "xsell/config.h"
#include "xsell/event.h"
#include "xsell/kafka.h"

/* mkdtemp under $TMPDIR (or /tmp); the caller frees and may remove it. */
char *xst_tmpdir(const char *tag);
void xst_rmrf(const char *path);

/* A cart event with one line per item (NULL-terminated list). */
void xst_cart_event(xs_event_t *ev, const char *event_id, const char *user, xs_cart_type_t type,
                    int64_t ts, const char *const *items);
void xst_click_event(xs_event_t *ev, const char *event_id, const char *user,
                     xs_click_type_t type, int64_t ts, const char *item, const char *category);
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

#endif
