/*
 * Engine test support: cart events fed straight to xs_engine_process() on a
 * shared event clock (each event 60 s after the previous, from
 * 2023-11-14 22:13:20 UTC) with event ids ev-1, ev-2, ... Failures abort
 * the test through cmocka.
 */
#ifndef XSELL_XSENGINE_H
#define XSELL_XSENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "xsell/engine.h"

#define XSE_T0 INT64_C(1700000000000)

/* The time of the last event; tests may set it (e.g. to jump days ahead). */
extern int64_t xse_clock_ms;
/* The number of the last event id; tests may save and restore it to replay. */
extern int xse_seq;

/* A cart event of user (and of session, when not NULL) with one line per
 * item; *list and *has_list receive the engine's answer. */
void xse_cart_session(xs_engine_t *e, const char *user, const char *session, xs_cart_type_t type,
                      const char **items, xs_list_t *list, bool *has_list);
void xse_cart(xs_engine_t *e, const char *user, xs_cart_type_t type, const char **items,
              xs_list_t *list, bool *has_list);
/* ADD each item, then PURCHASE them all; lists discarded. */
void xse_basket(xs_engine_t *e, const char *user, const char **items);

#endif
