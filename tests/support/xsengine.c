/*
 * xsengine.c — engine test support (xsengine.h).
 */
#include "xsengine.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

int64_t xse_clock_ms = XSE_T0;
int xse_seq;

void xse_cart_session(xs_engine_t *e, const char *user, const char *session, xs_cart_type_t type,
                      const char **items, xs_list_t *list, bool *has_list)
{
    xs_event_t ev;
    char id[64];
    char errstr[256] = "";
    xs_event_init(&ev, XS_KIND_CART);
    snprintf(id, sizeof(id), "ev-%d", ++xse_seq);
    ev.event_id = strdup(id);
    ev.user_id = strdup(user);
    ev.session_id = session ? strdup(session) : NULL;
    ev.type = type;
    ev.ts = (xse_clock_ms += 60000);
    for (int i = 0; items[i]; i++)
        assert_int_equal(xs_event_add_line(&ev, items[i], 1, 0, false), XS_OK);
    xs_event_list_init(list);
    xs_err_t err = xs_engine_process(e, 0, &ev, list, has_list, errstr, sizeof(errstr));
    if (err)
        fail_msg("xs_engine_process: %s", errstr);
    xs_event_clear(&ev);
}

void xse_cart(xs_engine_t *e, const char *user, xs_cart_type_t type, const char **items,
              xs_list_t *list, bool *has_list)
{
    xse_cart_session(e, user, NULL, type, items, list, has_list);
}

void xse_basket(xs_engine_t *e, const char *user, const char **items)
{
    xs_list_t list;
    bool has;
    for (int i = 0; items[i]; i++) {
        const char *one[2] = {items[i], NULL};
        xse_cart(e, user, XS_CART_ADD, one, &list, &has);
        xs_event_list_clear(&list);
    }
    xse_cart(e, user, XS_CART_PURCHASE, items, &list, &has);
    xs_event_list_clear(&list);
}
