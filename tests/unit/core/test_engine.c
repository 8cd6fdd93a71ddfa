/*
 * Engine tests: the user stage, item stage and scorer on hand-made
 * scenarios whose answers can be derived by hand.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/engine.h"
#include "xsengine.h"
#include "xsell/hash.h"
#include "xsell/sketch.h"

#define T0 XSE_T0

static xs_engine_t *camera_world(void)
{
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    char errstr[256];
    xs_engine_t *e = xs_engine_new(&o, errstr, sizeof(errstr));
    assert_non_null(e);
    const char *clt[] = {"camera", "lens", "tripod", NULL};
    const char *cl[] = {"camera", "lens", NULL};
    const char *cb[] = {"camera", "bag", NULL};
    const char *ss[] = {"socks", "shoes", NULL};
    const char *s[] = {"socks", NULL};
    char u[32];
    for (int i = 0; i < 4; i++) {
        snprintf(u, sizeof(u), "clt-%d", i);
        xse_basket(e, u, clt);
    }
    xse_basket(e, "cl-0", cl);
    xse_basket(e, "cb-0", cb);
    for (int i = 0; i < 6; i++) {
        snprintf(u, sizeof(u), "ss-%d", i);
        xse_basket(e, u, i < 3 ? ss : s);
    }
    return e;
}

static void test_camera_cart_list(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has = false;
    const char *cam[] = {"camera", NULL};
    xse_cart(e, "newbie", XS_CART_ADD, cam, &list, &has);
    assert_true(has);
    assert_int_equal(list.placement, XS_PLACEMENT_CART);
    assert_true(list.n_items >= 2);
    /* lens co-occurs with camera for 5 users, tripod for 4: both strongly associated. */
    assert_string_equal(list.items[0].item_id, "lens");
    assert_int_equal(list.items[0].source, XS_SOURCE_BOUGHT_TOGETHER);
    assert_string_equal(list.items[0].because_of[0], "camera");
    assert_string_equal(list.items[1].item_id, "tripod");
    assert_int_equal(list.items[1].source, XS_SOURCE_BOUGHT_TOGETHER);
    assert_true(list.items[0].score > list.items[1].score);
    /* bag co-occurs once only: below min_support it is never BOUGHT_TOGETHER. */
    for (int i = 0; i < list.n_items; i++) {
        assert_string_not_equal(list.items[i].item_id, "camera");
        if (strcmp(list.items[i].item_id, "bag") == 0)
            assert_int_equal(list.items[i].source, XS_SOURCE_TRENDING);
    }
    /* Deterministic list id: 32 hex chars. */
    assert_int_equal(strlen(list.list_id), 32);
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

/* The scorer reads the lists of model.max_context context items, the
 * heaviest first: the trigger (1.0) before the cart (0.8). */
static void test_max_context_bounds_the_context(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    const char *socks[] = {"socks", NULL}, *cam[] = {"camera", NULL};
    for (int max = 12; max >= 1; max -= 11) {
        xs_engine_params(e)->max_context = max;
        char user[32];
        snprintf(user, sizeof(user), "two-carts-%d", max);
        xs_list_t list;
        bool has = false;
        xse_cart(e, user, XS_CART_ADD, socks, &list, &has);
        xs_event_list_clear(&list);
        xse_cart(e, user, XS_CART_ADD, cam, &list, &has);
        assert_true(has);
        /* the trigger's neighbour is there whatever the bound (its rank
         * against socks' depends on the two pairs' similarities) */
        bool lens = false;
        for (int i = 0; i < list.n_items; i++)
            if (!strcmp(list.items[i].item_id, "lens")) {
                lens = list.items[i].source == XS_SOURCE_BOUGHT_TOGETHER;
                assert_string_equal(list.items[i].because_of[0], "camera");
            }
        assert_true(lens);
        if (max == 1)
            assert_string_equal(list.items[0].item_id, "lens");
        bool shoes = false;
        for (int i = 0; i < list.n_items; i++)
            if (!strcmp(list.items[i].item_id, "shoes")) {
                shoes = list.items[i].source == XS_SOURCE_BOUGHT_TOGETHER;
                if (shoes)
                    assert_string_equal(list.items[i].because_of[0], "socks");
            }
        assert_int_equal(shoes, max > 1); /* socks in the cart is the second context item */
        xs_event_list_clear(&list);
    }
    xs_engine_destroy(e);
}

static void test_cold_start_gets_trending(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has = false;
    const char *unknown[] = {"brand-new-item", NULL};
    xse_cart(e, "cold", XS_CART_ADD, unknown, &list, &has);
    assert_true(has);
    assert_int_equal(list.n_items, 6);
    for (int i = 0; i < list.n_items; i++)
        assert_int_equal(list.items[i].source, XS_SOURCE_TRENDING);
    /* socks and camera were each added and bought by 6 users: the best sellers;
     * socks sold more recently, so they rank first under time decay. */
    assert_string_equal(list.items[0].item_id, "socks");
    assert_string_equal(list.items[1].item_id, "camera");
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

static void test_bought_item_not_suggested(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has = false;
    const char *lens[] = {"lens", NULL};
    const char *cam[] = {"camera", NULL};
    xse_basket(e, "buyer", lens);
    xse_cart(e, "buyer", XS_CART_ADD, cam, &list, &has);
    assert_true(has);
    for (int i = 0; i < list.n_items; i++)
        assert_string_not_equal(list.items[i].item_id, "lens");
    assert_string_equal(list.items[0].item_id, "tripod");
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

static void test_duplicate_event_ignored(void **state)
{
    (void)state;
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    xs_event_t ev;
    xs_event_init(&ev, XS_KIND_CART);
    ev.event_id = strdup("same");
    ev.user_id = strdup("u");
    ev.type = XS_CART_ADD;
    ev.ts = T0;
    xs_event_add_line(&ev, "x", 1, 0, false);
    xs_list_t list;
    bool has;
    xs_engine_stats_t st;
    for (int i = 0; i < 3; i++) {
        xs_event_list_init(&list);
        assert_int_equal(xs_engine_process(e, 0, &ev, &list, &has, NULL, 0), XS_OK);
        xs_event_list_clear(&list);
    }
    xs_engine_stats(e, &st);
    assert_int_equal(st.duplicates, 2);
    assert_int_equal(st.users_total, 1);
    xs_event_clear(&ev);
    xs_engine_destroy(e);
}

static void item_update(xs_engine_t *e, const char *item, const char *category, bool in_stock,
                        bool repurchasable, bool deleted)
{
    xs_event_t ev;
    xs_list_t list;
    bool has;
    xs_event_init(&ev, XS_KIND_ITEM);
    ev.item_id = strdup(item);
    ev.category = category ? strdup(category) : NULL;
    ev.in_stock = in_stock;
    ev.repurchasable = repurchasable;
    ev.deleted = deleted;
    ev.ts = xse_clock_ms;
    xs_event_list_init(&list);
    assert_int_equal(xs_engine_process(e, 0, &ev, &list, &has, NULL, 0), XS_OK);
    assert_false(has);
    xs_event_clear(&ev);
}

static bool list_has(const xs_list_t *l, const char *item)
{
    for (int i = 0; i < l->n_items; i++)
        if (strcmp(l->items[i].item_id, item) == 0)
            return true;
    return false;
}

static void test_out_of_stock_never_appears(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has;
    const char *cam[] = {"camera", NULL};
    item_update(e, "lens", NULL, false, false, false);
    xse_cart(e, "u1", XS_CART_ADD, cam, &list, &has);
    assert_true(has);
    assert_false(list_has(&list, "lens"));
    assert_string_equal(list.items[0].item_id, "tripod"); /* the next best complement */
    xs_event_list_clear(&list);
    /* deleted items never appear either, also not as trending backfill */
    item_update(e, "tripod", NULL, true, false, true);
    xse_cart(e, "u2", XS_CART_ADD, cam, &list, &has);
    assert_false(list_has(&list, "lens"));
    assert_false(list_has(&list, "tripod"));
    xs_event_list_clear(&list);
    /* back in stock: back in the list */
    item_update(e, "lens", NULL, true, false, false);
    xse_cart(e, "u3", XS_CART_ADD, cam, &list, &has);
    assert_string_equal(list.items[0].item_id, "lens");
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

static void test_repurchasable_item_comes_back(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has;
    const char *lens[] = {"lens", NULL};
    const char *cam[] = {"camera", NULL};
    item_update(e, "lens", NULL, true, true, false); /* consumable, e.g. film */
    xse_basket(e, "buyer", lens);
    xse_cart(e, "buyer", XS_CART_ADD, cam, &list, &has);
    assert_string_equal(list.items[0].item_id, "lens");
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

static void test_category_cap_holds(void **state)
{
    (void)state;
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.params.category_cap = 2;
    o.params.trending_backfill = false;
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    /* five accessories of one category and two of another, all bought with a phone */
    const char *acc[] = {"case-a", "case-b",    "case-c",    "case-d",
                         "case-e", "charger-a", "charger-b", NULL};
    for (int i = 0; acc[i]; i++)
        item_update(e, acc[i], i < 5 ? "cases" : "chargers", true, false, false);
    char u[32];
    for (int i = 0; i < 6; i++) {
        const char *b[] = {"phone", acc[0], acc[1], acc[2], acc[3], acc[4], acc[5], acc[6], NULL};
        snprintf(u, sizeof(u), "p-%d", i);
        xse_basket(e, u, b);
        const char *other[] = {"noise", NULL};
        snprintf(u, sizeof(u), "n-%d", i);
        xse_basket(e, u, other);
    }
    xs_list_t list;
    bool has;
    const char *phone[] = {"phone", NULL};
    xse_cart(e, "new", XS_CART_ADD, phone, &list, &has);
    assert_true(has);
    int cases = 0, chargers = 0;
    for (int i = 0; i < list.n_items; i++) {
        cases += strncmp(list.items[i].item_id, "case-", 5) == 0;
        chargers += strncmp(list.items[i].item_id, "charger-", 8) == 0;
    }
    assert_int_equal(cases, 2);
    assert_int_equal(chargers, 2);
    assert_int_equal(list.n_items, 4); /* six slots, but the cap leaves four */
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

static void test_control_arm_gets_popularity_only(void **state)
{
    (void)state;
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    xs_experiment_t x;
    memset(&x, 0, sizeof(x));
    snprintf(x.name, sizeof(x.name), "ab-1");
    snprintf(x.salt, sizeof(x.salt), "s1");
    x.n_arms = 2;
    snprintf(x.arms[0].name, sizeof(x.arms[0].name), "control");
    x.arms[0].share = 50;
    x.arms[0].params = o.params;
    x.arms[0].params.popularity_only = true;
    snprintf(x.arms[1].name, sizeof(x.arms[1].name), "cooc");
    x.arms[1].share = 50;
    x.arms[1].params = o.params;
    o.experiment = &x;
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    const char *clt[] = {"camera", "lens", "tripod", NULL};
    const char *s[] = {"socks", "shoes", NULL};
    char u[32];
    for (int i = 0; i < 8; i++) {
        snprintf(u, sizeof(u), "clt-%d", i);
        xse_basket(e, u, clt);
        snprintf(u, sizeof(u), "s-%d", i);
        xse_basket(e, u, s);
    }
    int seen[2] = {0, 0};
    const char *cam[] = {"camera", NULL};
    for (int i = 0; i < 40; i++) {
        snprintf(u, sizeof(u), "shopper-%d", i);
        int arm = xs_engine_experiment_arm(&x, u);
        assert_int_equal(arm, xs_engine_experiment_arm(&x, u)); /* a pure function */
        xs_list_t list;
        bool has;
        xse_cart(e, u, XS_CART_ADD, cam, &list, &has);
        assert_true(has);
        assert_string_equal(list.experiment, "ab-1");
        assert_string_equal(list.arm, x.arms[arm].name);
        for (int k = 0; k < list.n_items; k++) {
            if (arm == 0)
                assert_int_equal(list.items[k].source, XS_SOURCE_TRENDING);
        }
        if (arm == 1)
            assert_int_equal(list.items[0].source, XS_SOURCE_BOUGHT_TOGETHER);
        seen[arm]++;
        xs_event_list_clear(&list);
    }
    /* both arms get traffic (40 users, 50/50: both empty has probability 2^-39) */
    assert_true(seen[0] > 0 && seen[1] > 0);
    /* another salt reshuffles the assignment */
    xs_experiment_t y = x;
    snprintf(y.salt, sizeof(y.salt), "s2");
    int moved = 0;
    for (int i = 0; i < 40; i++) {
        snprintf(u, sizeof(u), "shopper-%d", i);
        moved += xs_engine_experiment_arm(&x, u) != xs_engine_experiment_arm(&y, u);
    }
    assert_true(moved > 0);
    xs_engine_destroy(e);
}

static void test_identical_list_suppressed(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has;
    const char *cam[] = {"camera", NULL};
    xs_engine_stats_t before, after;
    xse_cart(e, "u", XS_CART_ADD, cam, &list, &has);
    assert_true(has);
    xs_event_list_clear(&list);
    /* the same ADD again a minute later: same list, not re-published */
    xs_engine_stats(e, &before);
    xse_cart(e, "u", XS_CART_ADD, cam, &list, &has);
    assert_false(has);
    xs_engine_stats(e, &after);
    assert_int_equal(after.suppressed - before.suppressed, 1);
    xs_event_list_clear(&list);
    /* after the suppression interval (10 minutes) it is published again */
    xse_clock_ms += 11 * 60000;
    xse_cart(e, "u", XS_CART_ADD, cam, &list, &has);
    assert_true(has);
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

static void test_neighbours_query(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_neighbour_t *nb = NULL;
    int n = 0;
    xs_item_info_t info;
    assert_int_equal(xs_engine_neighbours(e, "camera", XS_CLASS_BOUGHT, 5, &nb, &n, &info, NULL, 0),
                     XS_OK);
    assert_true(info.found);
    assert_int_equal(info.n_users[XS_CLASS_BOUGHT], 6);
    assert_true(n >= 3);
    assert_string_equal(nb[0].item_id, "lens");
    assert_int_equal(nb[0].count, 5);
    assert_string_equal(nb[1].item_id, "tripod");
    assert_int_equal(nb[1].count, 4);
    assert_true(nb[0].similarity > nb[1].similarity);
    xs_engine_neighbours_free(nb, n);
    xs_engine_item_info_clear(&info);
    assert_int_equal(xs_engine_neighbours(e, "nope", XS_CLASS_BOUGHT, 5, &nb, &n, &info, NULL, 0),
                     XS_OK);
    assert_false(info.found);
    assert_int_equal(n, 0);
    xs_engine_destroy(e);
}

/* Flushing to a map and reloading through a backend gives the same lists. */
typedef struct kv_rec {
    int cf;
    uint8_t key[16];
    size_t klen;
    uint8_t *val;
    size_t vlen;
} kv_rec_t;

typedef struct kv_map {
    kv_rec_t recs[4096];
    int n;
} kv_map_t;

static xs_err_t map_put(void *opaque, xs_cf_t cf, const void *key, size_t klen, const void *val,
                        size_t vlen)
{
    kv_map_t *m = opaque;
    for (int i = 0; i < m->n; i++) {
        kv_rec_t *r = &m->recs[i];
        if (r->cf == (int)cf && r->klen == klen && !memcmp(r->key, key, klen)) {
            free(r->val);
            r->val = NULL;
            r->vlen = 0;
            if (!val) { /* a delete */
                *r = m->recs[--m->n];
                return XS_OK;
            }
            r->val = malloc(vlen);
            memcpy(r->val, val, vlen);
            r->vlen = vlen;
            return XS_OK;
        }
    }
    if (!val)
        return XS_OK;
    assert_true(m->n < 4096 && klen <= 16);
    kv_rec_t *r = &m->recs[m->n++];
    r->cf = (int)cf;
    memcpy(r->key, key, klen);
    r->klen = klen;
    r->val = malloc(vlen);
    memcpy(r->val, val, vlen);
    r->vlen = vlen;
    return XS_OK;
}

static xs_err_t map_get(void *opaque, xs_cf_t cf, const void *key, size_t klen, xs_buf_t *val,
                        bool *found, char *errstr, size_t errstr_size)
{
    kv_map_t *m = opaque;
    *found = false;
    for (int i = 0; i < m->n; i++) {
        kv_rec_t *r = &m->recs[i];
        if (r->cf == (int)cf && r->klen == klen && !memcmp(r->key, key, klen)) {
            *found = true;
            return xs_buf_append(val, r->val, r->vlen);
        }
    }
    return XS_OK;
}

static xs_err_t count_put(void *opaque, xs_cf_t cf, const void *key, size_t klen, const void *val,
                          size_t vlen)
{
    (void)key, (void)klen, (void)val, (void)vlen;
    ((int *)opaque)[cf]++;
    return XS_OK;
}

/* Lists are state: a query never changes them (nothing to flush after it),
 * an event that uses a stale list ranks it anew and stores it. */
static void test_queries_leave_lists_alone(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    int n[XS_CF__COUNT] = {0};
    assert_int_equal(xs_engine_flush(e, count_put, n, NULL, 0), XS_OK);
    assert_true(n[XS_CF_ITEMS] > 0);
    /* the camera's lists were ranked with 6 buyers; there are 12 users now */
    xs_list_t list;
    xs_event_list_init(&list);
    assert_int_equal(
        xs_engine_recommend(e, 0, "clt-0", "camera", XS_PLACEMENT_CART, 0, &list, NULL, 0), XS_OK);
    xs_event_list_clear(&list);
    memset(n, 0, sizeof(n));
    assert_int_equal(xs_engine_flush(e, count_put, n, NULL, 0), XS_OK);
    for (int cf = 0; cf < XS_CF__COUNT; cf++)
        assert_int_equal(n[cf], 0);
    bool has = false;
    const char *cam[] = {"camera", NULL};
    xse_cart(e, "newbie", XS_CART_ADD, cam, &list, &has);
    assert_true(has);
    assert_string_equal(list.items[0].item_id, "lens");
    xs_event_list_clear(&list);
    memset(n, 0, sizeof(n));
    assert_int_equal(xs_engine_flush(e, count_put, n, NULL, 0), XS_OK);
    assert_true(n[XS_CF_USERS] == 1);
    assert_true(n[XS_CF_ITEMS] >= 1); /* the camera, ranked anew (and its count) */
    xs_engine_destroy(e);
}

/* Stores into the kv_map_t and counts per column family in put_n; fails
 * once put_left calls have succeeded. */
static int put_left, put_n[XS_CF__COUNT];
static xs_err_t failing_put(void *opaque, xs_cf_t cf, const void *key, size_t klen, const void *val,
                            size_t vlen)
{
    if (put_left-- <= 0)
        return XS_ERR_IO;
    put_n[cf]++;
    return map_put(opaque, cf, key, klen, val, vlen);
}

static uint64_t dirty_bytes(const xs_engine_t *e)
{
    xs_engine_stats_t st;
    xs_engine_stats(e, &st);
    return st.dirty_bytes;
}

/* The engine lists records as they turn dirty: a flush hands each dirty
 * record exactly once, keeps what a failed put did not take, and evicted
 * records never linger in the lists (ASan checks the last part). */
static void test_flush_hands_each_dirty_record_once(void **state)
{
    (void)state;
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    kv_map_t *m = calloc(1, sizeof(*m));
    xs_backend_t be = {m, map_get};
    o.backend = &be;
    o.cache_bytes = 1; /* every trim evicts every clean record */
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    const char *cl[] = {"camera", "lens", NULL};
    xse_basket(e, "u-1", cl);
    xse_basket(e, "u-2", cl);
    assert_true(dirty_bytes(e) > 0);
    /* the globals, 2 users, 2 items, 2 names; the fourth put fails */
    memset(put_n, 0, sizeof(put_n));
    put_left = 3;
    assert_int_not_equal(xs_engine_flush(e, failing_put, m, NULL, 0), XS_OK);
    assert_int_equal(put_n[XS_CF_META], 1);
    assert_int_equal(put_n[XS_CF_USERS] + put_n[XS_CF_ITEMS] + put_n[XS_CF_NAMES], 2);
    assert_true(xs_engine_snapshot_active(e)); /* the rest is still to be put */
    put_left = 1000;
    assert_int_equal(xs_engine_flush(e, failing_put, m, NULL, 0), XS_OK);
    assert_int_equal(put_n[XS_CF_META], 1);
    assert_int_equal(put_n[XS_CF_USERS], 2);
    assert_int_equal(put_n[XS_CF_ITEMS], 2);
    assert_int_equal(put_n[XS_CF_NAMES], 2);
    assert_false(xs_engine_snapshot_active(e));
    assert_int_equal(dirty_bytes(e), 0);
    int n[XS_CF__COUNT] = {0};
    assert_int_equal(xs_engine_flush(e, count_put, n, NULL, 0), XS_OK);
    assert_int_equal(n[XS_CF_USERS] + n[XS_CF_ITEMS] + n[XS_CF_NAMES], 0);

    /* evicted, loaded again, dirtied again */
    xs_engine_trim(e);
    xs_engine_stats_t st;
    xs_engine_stats(e, &st);
    assert_int_equal(st.users_cached + st.items_cached, 0);
    const char *c[] = {"camera", NULL};
    xse_basket(e, "u-3", c); /* a new buyer of the camera: its count moves */
    memset(n, 0, sizeof(n));
    assert_int_equal(xs_engine_flush(e, count_put, n, NULL, 0), XS_OK);
    assert_int_equal(n[XS_CF_USERS], 1);
    assert_int_equal(n[XS_CF_ITEMS], 1);
    assert_int_equal(n[XS_CF_NAMES], 0);
    xs_engine_destroy(e);
    for (int i = 0; i < m->n; i++)
        free(m->recs[i].val);
    free(m);
}

static void kv_free(kv_map_t *m)
{
    for (int i = 0; i < m->n; i++)
        free(m->recs[i].val);
    free(m);
}

/* A snapshot holds the state at the instant it began, while events go on:
 * records those events change are put with their earlier value; it equals
 * a flush at that instant of an engine that saw the same events. */
static void test_snapshot_is_the_state_when_it_began(void **state)
{
    (void)state;
    int seq0 = xse_seq;
    int64_t clock0 = xse_clock_ms;
    xs_engine_t *ref = camera_world();
    xse_seq = seq0;
    xse_clock_ms = clock0;
    xs_engine_t *e = camera_world();
    kv_map_t *want = calloc(1, sizeof(*want)), *got = calloc(1, sizeof(*got));
    assert_int_equal(xs_engine_flush(ref, map_put, want, NULL, 0), XS_OK);
    size_t n = 0;
    bool done = false;
    assert_int_equal(xs_engine_snapshot_begin(e, map_put, got, &n, NULL, 0), XS_OK);
    assert_true(n > 10);
    assert_true(xs_engine_snapshot_active(e));
    assert_int_equal(xs_engine_snapshot_step(e, 1, &done, NULL, 0), XS_OK);
    assert_false(done);
    /* events that change records of the snapshot: the camera, the lens, clt-0 */
    xs_list_t list;
    bool has;
    const char *cam[] = {"camera", NULL}, *cb[] = {"camera", "bag", NULL};
    xse_cart(e, "newbie", XS_CART_ADD, cam, &list, &has);
    xs_event_list_clear(&list);
    xse_basket(e, "clt-0", cb);
    assert_true(xs_engine_snapshot_active(e));
    assert_int_equal(xs_engine_snapshot_step(e, 0, &done, NULL, 0), XS_OK);
    assert_true(done);
    assert_false(xs_engine_snapshot_active(e));
    assert_int_equal(got->n, want->n);
    for (int i = 0; i < want->n; i++) {
        const kv_rec_t *w = &want->recs[i];
        int k = 0;
        while (k < got->n && !(got->recs[k].cf == w->cf && got->recs[k].klen == w->klen &&
                               !memcmp(got->recs[k].key, w->key, w->klen)))
            k++;
        assert_true(k < got->n);
        assert_int_equal(got->recs[k].vlen, w->vlen);
        assert_memory_equal(got->recs[k].val, w->val, w->vlen);
    }
    /* what the events did is the next snapshot's */
    int c[XS_CF__COUNT] = {0};
    assert_int_equal(xs_engine_flush(e, count_put, c, NULL, 0), XS_OK);
    assert_int_equal(c[XS_CF_USERS], 2); /* newbie, clt-0 */
    assert_true(c[XS_CF_ITEMS] >= 2);    /* camera, bag */
    xs_engine_destroy(ref);
    xs_engine_destroy(e);
    kv_free(want);
    kv_free(got);
}

static void test_flush_and_reload(void **state)
{
    (void)state;
    kv_map_t *m = calloc(1, sizeof(*m));
    xs_engine_t *e = camera_world();
    assert_int_equal(xs_engine_flush(e, map_put, m, NULL, 0), XS_OK);
    assert_true(m->n > 10);
    xs_list_t a, b;
    bool has;
    const char *cam[] = {"camera", NULL};
    int saved_seq = xse_seq;
    int64_t saved_clock = xse_clock_ms;
    xse_cart(e, "newbie", XS_CART_ADD, cam, &a, &has);
    xs_engine_destroy(e);

    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    xs_backend_t be = {m, map_get};
    o.backend = &be;
    e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    xse_seq = saved_seq;
    xse_clock_ms = saved_clock;
    xse_cart(e, "newbie", XS_CART_ADD, cam, &b, &has);
    assert_int_equal(a.n_items, b.n_items);
    assert_string_equal(a.list_id, b.list_id);
    for (int i = 0; i < a.n_items; i++) {
        assert_string_equal(a.items[i].item_id, b.items[i].item_id);
        assert_true(a.items[i].score == b.items[i].score);
    }
    xs_event_list_clear(&a);
    xs_event_list_clear(&b);
    xs_engine_destroy(e);
    for (int i = 0; i < m->n; i++)
        free(m->recs[i].val);
    free(m);
}

/* Puts into the kv_map_t, counting puts and deletes per column family. */
static int put_count[XS_CF__COUNT], del_count[XS_CF__COUNT];
static xs_err_t track_put(void *opaque, xs_cf_t cf, const void *key, size_t klen, const void *val,
                          size_t vlen)
{
    (val ? put_count : del_count)[cf]++;
    return map_put(opaque, cf, key, klen, val, vlen);
}

static void track_flush(xs_engine_t *e, kv_map_t *m)
{
    memset(put_count, 0, sizeof(put_count));
    memset(del_count, 0, sizeof(del_count));
    assert_int_equal(xs_engine_flush(e, track_put, m, NULL, 0), XS_OK);
}

static bool kv_has(const kv_map_t *m, xs_cf_t cf, const char *item_id)
{
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str(item_id));
    for (int i = 0; i < m->n; i++)
        if (m->recs[i].cf == (int)cf && m->recs[i].klen == 8 && !memcmp(m->recs[i].key, key, 8))
            return true;
    return false;
}

/* An item's bought list as an engine reads it: "lens:2.5 ..." */
static void list_text(xs_engine_t *e, const char *item_id, char *out, size_t size)
{
    xs_neighbour_t *v = NULL;
    int n = 0;
    assert_int_equal(xs_engine_item_list(e, item_id, XS_CLASS_BOUGHT, 64, &v, &n, NULL, 0), XS_OK);
    out[0] = 0;
    for (int i = 0; i < n; i++) {
        size_t at = strlen(out);
        snprintf(out + at, size - at, "%s:%a ", v[i].item_id, v[i].similarity);
    }
    xs_engine_neighbours_free(v, n);
}

static xs_engine_t *engine_on(kv_map_t *m, xs_backend_t *be)
{
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    *be = (xs_backend_t){m, map_get};
    o.backend = be;
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    return e;
}

/* An item's `neighbours` record is written when its lists changed since
 * stored, not every time its summary is; none for empty lists; a stored one
 * whose lists became empty is deleted. The store stays exact: an engine
 * reading it has the lists of the one that wrote it. */
static void test_neighbours_record_only_when_lists_change(void **state)
{
    (void)state;
    kv_map_t *m = calloc(1, sizeof(*m));
    xs_backend_t be;
    xs_engine_t *e = engine_on(m, &be);
    const char *cl[] = {"camera", "lens", NULL}, *solo[] = {"solo", NULL},
               *cam[] = {"camera", NULL};
    xse_basket(e, "u-1", cl);
    xse_basket(e, "u-2", cl);
    xse_basket(e, "u-3", solo);
    track_flush(e, m);
    assert_int_equal(put_count[XS_CF_ITEMS], 3);
    assert_int_equal(put_count[XS_CF_NEIGHBOURS], 2); /* camera, lens: not solo */
    assert_true(kv_has(m, XS_CF_ITEMS, "solo"));
    assert_false(kv_has(m, XS_CF_NEIGHBOURS, "solo"));
    assert_true(kv_has(m, XS_CF_NEIGHBOURS, "camera"));

    /* a new buyer of the camera alone: its counts move, its lists do not */
    xse_basket(e, "u-4", cam);
    track_flush(e, m);
    assert_int_equal(put_count[XS_CF_ITEMS], 1);
    assert_int_equal(put_count[XS_CF_NEIGHBOURS] + del_count[XS_CF_NEIGHBOURS], 0);
    char live[512], stored[512];
    list_text(e, "camera", live, sizeof(live));
    assert_true(strlen(live) > 0);
    xs_backend_t be2;
    xs_engine_t *r = engine_on(m, &be2);
    list_text(r, "camera", stored, sizeof(stored));
    assert_string_equal(stored, live);
    xs_engine_destroy(r);
    xs_engine_destroy(e);

    /* the camera's stored lists name only an item its summary no longer
     * holds: they load empty; stored again (the camera changed), the record
     * is deleted */
    xs_item_t *it = malloc(sizeof(*it));
    xs_sketch_init(it);
    xs_sketch_add_pair(it, XS_CLASS_BOUGHT, xs_hash_str("ghost"));
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 1.0);
    xs_buf_t b = {0};
    assert_int_equal(xs_sketch_lists_encode(it, xs_hash_str("camera"), &b), XS_OK);
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str("camera"));
    assert_int_equal(map_put(m, XS_CF_NEIGHBOURS, key, 8, b.data, b.len), XS_OK);
    e = engine_on(m, &be);
    list_text(e, "camera", live, sizeof(live));
    assert_string_equal(live, "");
    xse_basket(e, "u-5", cam);
    track_flush(e, m);
    assert_int_equal(put_count[XS_CF_ITEMS], 1);
    assert_int_equal(put_count[XS_CF_NEIGHBOURS], 0);
    assert_int_equal(del_count[XS_CF_NEIGHBOURS], 1);
    assert_false(kv_has(m, XS_CF_NEIGHBOURS, "camera"));
    xs_engine_destroy(e);
    xs_buf_free(&b);
    free(it);
    kv_free(m);
}

/* ---- a session joins its user ------------------------------------------------------------ */

static const kv_rec_t *kv_find_rec(const kv_map_t *m, int cf, const uint8_t *key, size_t klen)
{
    for (int i = 0; i < m->n; i++)
        if (m->recs[i].cf == cf && m->recs[i].klen == klen && !memcmp(m->recs[i].key, key, klen))
            return &m->recs[i];
    return NULL;
}

/* Every record of a is in b with the same value, and the other way round. */
static void kv_assert_equal(const kv_map_t *a, const kv_map_t *b)
{
    assert_int_equal(a->n, b->n);
    for (int i = 0; i < a->n; i++) {
        const kv_rec_t *w = &a->recs[i], *g = kv_find_rec(b, w->cf, w->key, w->klen);
        assert_non_null(g);
        assert_int_equal(g->vlen, w->vlen);
        assert_memory_equal(g->val, w->val, w->vlen);
    }
}

static bool kv_has_user(const kv_map_t *m, const char *user_id)
{
    uint8_t key[10];
    size_t klen = xs_engine_key_user(key, 0, xs_hash_str(user_id));
    return kv_find_rec(m, XS_CF_USERS, key, klen) != NULL;
}

/* A shopper not logged in (events of user "session:s-1", as the readers
 * make them from a session_id alone) buys the lens and puts the tripod in
 * the cart; then logs in: the first event with both ids adds the camera. */
static void session_then_login(xs_engine_t *e, xs_list_t *login_list)
{
    const char *lens[] = {"lens", NULL}, *tripod[] = {"tripod", NULL}, *cam[] = {"camera", NULL};
    xs_list_t list;
    bool has;
    xse_basket(e, "session:s-1", lens);
    xse_cart(e, "session:s-1", XS_CART_ADD, tripod, &list, &has);
    xs_event_list_clear(&list);
    xse_cart_session(e, "alice", "s-1", XS_CART_ADD, cam, login_list, &has);
    assert_true(has);
}

/* The session's cart and purchases join the user's: alice's list for the
 * camera leaves out the lens (bought in the session, within rebuy_days) and
 * the tripod (in the session's cart), which a user without them gets first;
 * the session's profile is gone, in the cache and in the store. */
static void test_session_joins_user_on_login(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    const char *cam[] = {"camera", NULL};
    xs_list_t list;
    bool has, found = true;
    xse_cart(e, "bob", XS_CART_ADD, cam, &list, &has); /* no session: the complements */
    assert_string_equal(list.items[0].item_id, "lens");
    assert_string_equal(list.items[1].item_id, "tripod");
    xs_event_list_clear(&list);
    xs_engine_stats_t st0, st;
    xs_engine_stats(e, &st0);

    session_then_login(e, &list);
    assert_true(list.n_items > 0);
    assert_false(list_has(&list, "lens"));
    assert_false(list_has(&list, "tripod"));
    assert_false(list_has(&list, "camera"));
    xs_event_list_clear(&list);
    assert_int_equal(xs_engine_has_user(e, 0, "session:s-1", &found, NULL, 0), XS_OK);
    assert_false(found);
    assert_int_equal(xs_engine_has_user(e, 0, "alice", &found, NULL, 0), XS_OK);
    assert_true(found);
    xs_engine_stats(e, &st);
    assert_int_equal(st.sessions_joined, 1);
    assert_int_equal(st.users_total, st0.users_total + 1); /* alice; the session no more */
    /* the user's list asked for later excludes them too */
    xs_event_list_init(&list);
    assert_int_equal(xs_engine_recommend(e, 0, "alice", NULL, XS_PLACEMENT_CART, 6, &list, NULL, 0),
                     XS_OK);
    assert_true(list.n_items > 0);
    assert_false(list_has(&list, "lens"));
    assert_false(list_has(&list, "tripod"));
    xs_event_list_clear(&list);
    /* a new event of the session makes a new, empty session profile */
    const char *socks[] = {"socks", NULL};
    xse_cart(e, "session:s-1", XS_CART_ADD, socks, &list, &has);
    assert_true(has && list_has(&list, "lens"));
    xs_event_list_clear(&list);
    assert_int_equal(xs_engine_has_user(e, 0, "session:s-1", &found, NULL, 0), XS_OK);
    assert_true(found);
    xs_engine_destroy(e);
}

/* A login whose session had no profile yet, then events of that session,
 * then another login event: the second one joins it (the engine remembers
 * sessions without a profile only until one is made). */
static void test_session_made_after_a_login_still_joins(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    const char *cam[] = {"camera", NULL}, *lens[] = {"lens", NULL}, *bag[] = {"bag", NULL};
    xs_list_t list;
    bool has, found = true;
    xs_engine_stats_t st;
    xse_cart_session(e, "carol", "s-2", XS_CART_ADD, bag, &list, &has); /* no session profile yet */
    xs_event_list_clear(&list);
    xse_basket(e, "session:s-2", lens);
    xse_cart_session(e, "carol", "s-2", XS_CART_ADD, cam, &list, &has);
    assert_true(has && list.n_items > 0);
    assert_false(list_has(&list, "lens"));
    xs_event_list_clear(&list);
    xs_engine_stats(e, &st);
    assert_int_equal(st.sessions_joined, 1);
    assert_int_equal(xs_engine_has_user(e, 0, "session:s-2", &found, NULL, 0), XS_OK);
    assert_false(found);
    xs_engine_destroy(e);
}

/* Replay: the same events give the same records, whether the engine sees
 * them all in one run or restarts from a checkpoint taken before the login
 * (the session read back from the store, and deleted there). */
static void test_session_join_replays_exactly(void **state)
{
    (void)state;
    int seq0 = xse_seq;
    int64_t clock0 = xse_clock_ms;
    kv_map_t *a = calloc(1, sizeof(*a)), *b = calloc(1, sizeof(*b));
    xs_list_t la, lb;

    xs_engine_t *e = camera_world();
    session_then_login(e, &la);
    assert_int_equal(xs_engine_flush(e, map_put, a, NULL, 0), XS_OK);
    xs_engine_destroy(e);
    assert_true(kv_has_user(a, "alice"));
    assert_false(kv_has_user(a, "session:s-1"));

    xse_seq = seq0;
    xse_clock_ms = clock0;
    e = camera_world();
    const char *lens[] = {"lens", NULL}, *tripod[] = {"tripod", NULL}, *cam[] = {"camera", NULL};
    xs_list_t list;
    bool has;
    xse_basket(e, "session:s-1", lens);
    xse_cart(e, "session:s-1", XS_CART_ADD, tripod, &list, &has);
    xs_event_list_clear(&list);
    assert_int_equal(xs_engine_flush(e, map_put, b, NULL, 0), XS_OK); /* the checkpoint */
    xs_engine_destroy(e);
    assert_true(kv_has_user(b, "session:s-1"));
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    xs_backend_t be = {b, map_get};
    o.backend = &be;
    e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    xse_cart_session(e, "alice", "s-1", XS_CART_ADD, cam, &lb, &has);
    assert_true(has);
    assert_int_equal(xs_engine_flush(e, map_put, b, NULL, 0), XS_OK);
    xs_engine_destroy(e);
    assert_false(kv_has_user(b, "session:s-1"));

    assert_string_equal(la.list_id, lb.list_id);
    assert_int_equal(la.n_items, lb.n_items);
    for (int i = 0; i < la.n_items; i++)
        assert_string_equal(la.items[i].item_id, lb.items[i].item_id);
    kv_assert_equal(a, b); /* every record, the user's and the globals included */
    xs_event_list_clear(&la);
    xs_event_list_clear(&lb);
    kv_free(a);
    kv_free(b);
}

/* ---- exclusions for carts and histories of any length ---------------------------------- */

#define DAY INT64_C(86400000)

static void item_family(xs_engine_t *e, const char *item, const char *family)
{
    xs_event_t ev;
    xs_list_t list;
    bool has;
    xs_event_init(&ev, XS_KIND_ITEM);
    ev.item_id = strdup(item);
    ev.family = family ? strdup(family) : NULL;
    ev.in_stock = true;
    ev.ts = xse_clock_ms;
    xs_event_list_init(&list);
    assert_int_equal(xs_engine_process(e, 0, &ev, &list, &has, NULL, 0), XS_OK);
    xs_event_clear(&ev);
}

/* n items "i000".."i<n-1>"; shopper k buys k, k + 37, k + 74, ... (8 items,
 * mod n), so an item's neighbours lie 37 apart: a shopper who adds or buys
 * them in order meets neighbours of what she does now far back in her
 * history, beyond any fixed number of cart lines or profile items. */
static xs_engine_t *chain_world(int n)
{
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    char ids[8][16], u[32];
    for (int k = 0; k < n; k++) {
        const char *b[9];
        for (int j = 0; j < 8; j++) {
            snprintf(ids[j], sizeof(ids[j]), "i%03d", (k + 37 * j) % n);
            b[j] = ids[j];
        }
        b[8] = NULL;
        snprintf(u, sizeof(u), "chain-%d", k);
        xse_basket(e, u, b);
    }
    return e;
}

/* A cart of 200 items, added one by one: no list ever shows an item of it
 * (exact reference: the set added so far). */
static void test_cart_of_200_items_never_listed(void **state)
{
    (void)state;
    xs_engine_t *e = chain_world(220);
    char id[16];
    int listed = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(id, sizeof(id), "i%03d", i);
        const char *one[] = {id, NULL};
        xs_list_t list;
        bool has = false;
        xse_cart(e, "big", XS_CART_ADD, one, &list, &has);
        for (int k = 0; has && k < list.n_items; k++) {
            int x = -1;
            assert_int_equal(sscanf(list.items[k].item_id, "i%d", &x), 1);
            assert_true(x > i); /* never an item already in the cart */
            listed++;
        }
        xs_event_list_clear(&list);
    }
    assert_true(listed > 0); /* lists were not simply empty */
    xs_engine_destroy(e);
}

/* Purchases across 60 days, two a day: no list shows an item the user
 * bought less than rebuy_days (30) before the list (exact reference: the
 * purchase times); older purchases may come back. */
static void test_purchases_across_60_days_respect_rebuy(void **state)
{
    (void)state;
    xs_engine_t *e = chain_world(160);
    int64_t bought[160];
    for (int i = 0; i < 160; i++)
        bought[i] = -1;
    int64_t start = xse_clock_ms + DAY;
    int listed = 0, old_back = 0;
    char id[16];
    for (int i = 0; i < 120; i++) {
        xse_clock_ms = start + (int64_t)i * DAY / 2 - 60000; /* xse_cart() adds a minute */
        snprintf(id, sizeof(id), "i%03d", i);
        const char *one[] = {id, NULL};
        xs_list_t list;
        bool has = false;
        xse_cart(e, "buyer", XS_CART_PURCHASE, one, &list, &has);
        bought[i] = xse_clock_ms;
        for (int k = 0; has && k < list.n_items; k++) {
            int x = -1;
            assert_int_equal(sscanf(list.items[k].item_id, "i%d", &x), 1);
            if (bought[x] >= 0) {
                assert_true(xse_clock_ms - bought[x] >= 30 * DAY);
                old_back++;
            }
            listed++;
        }
        xs_event_list_clear(&list);
    }
    /* and a CART list after the last purchase */
    const char *other[] = {"i150", NULL};
    xs_list_t list;
    bool has = false;
    xse_cart(e, "buyer", XS_CART_ADD, other, &list, &has);
    assert_true(has);
    for (int k = 0; k < list.n_items; k++) {
        int x = -1;
        assert_int_equal(sscanf(list.items[k].item_id, "i%d", &x), 1);
        if (bought[x] >= 0)
            assert_true(xse_clock_ms - bought[x] >= 30 * DAY);
    }
    xs_event_list_clear(&list);
    print_message("lists after purchases: %d items, %d bought more than 30 days before\n", listed,
                  old_back);
    assert_true(listed > 0);
    xs_engine_destroy(e);
}

/* An adversarial user: thousands of events of every kind at times jumping
 * between 2000 and 2100, huge quantities, many categories, carts that never
 * end: the stored user record stays within XS_PROFILE_MAX_BYTES. */
static void test_user_record_bound_under_adversarial_events(void **state)
{
    (void)state;
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.params.rebuy_days = 365;
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    uint64_t x = 42;
    const int64_t lo = INT64_C(946684800000), hi = INT64_C(4102444800000);
    char errstr[256];
    for (int i = 0; i < 4000; i++) {
        x = x * UINT64_C(6364136223846793005) + 1442695040888963407u;
        uint32_t r = (uint32_t)(x >> 33);
        xs_event_t ev;
        char id[48], item[32], cat[32];
        int kind = r % 4;
        xs_event_init(&ev, kind == 0 ? XS_KIND_CLICK : XS_KIND_CART);
        snprintf(id, sizeof(id), "adv-%d", i);
        ev.event_id = strdup(id);
        ev.user_id = strdup("mallory");
        /* mostly recent, sometimes far back, sometimes a jump forward */
        int64_t span = (r >> 8) % 16 == 0 ? (hi - lo) : 400 * DAY;
        ev.ts = hi - (int64_t)((x >> 11) % (uint64_t)span);
        snprintf(item, sizeof(item), "adv-item-%u", (unsigned)((x >> 20) % 5000));
        if (kind == 0) {
            ev.type = XS_CLICK_PRODUCT_VIEW;
            ev.item_id = strdup(item);
            snprintf(cat, sizeof(cat), "adv-cat-%u", (unsigned)((x >> 40) % 300));
            ev.category = strdup(cat);
        } else {
            ev.type = kind == 3 && (r >> 4) % 8 == 0 ? XS_CART_PURCHASE : XS_CART_ADD;
            for (int l = 0; l < 1 + (int)((r >> 12) % 5); l++) {
                snprintf(item, sizeof(item), "adv-item-%u", (unsigned)((x >> (l * 7)) % 5000));
                xs_event_add_line(&ev, item, INT32_MAX, 0, false);
            }
        }
        xs_list_t list;
        bool has;
        xs_event_list_init(&list);
        assert_int_equal(xs_engine_process(e, 0, &ev, &list, &has, errstr, sizeof(errstr)), XS_OK);
        xs_event_list_clear(&list);
        xs_event_clear(&ev);
    }
    xs_footprint_t fp;
    xs_engine_footprint(e, &fp);
    print_message("adversarial user record: %llu bytes\n", (unsigned long long)fp.user_bytes_max);
    assert_true(fp.user_bytes_max <= XS_PROFILE_MAX_BYTES);
    xs_engine_destroy(e);
}

/* ---- product families --------------------------------------------------------------------- */

/* A cake stand bought with three colour variants of one lunch bag and a
 * candle holder. */
static xs_engine_t *family_world(int family_cap, bool family_exclude)
{
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.params.family_cap = family_cap;
    o.params.family_exclude = family_exclude;
    o.params.trending_backfill = false;
    o.params.category_cap = 0;
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    item_family(e, "85099B", "85099");
    item_family(e, "85099C", "85099");
    item_family(e, "85099F", "85099");
    item_family(e, "22423", "22423");
    item_family(e, "21733", "21733");
    char u[32];
    for (int i = 0; i < 6; i++) {
        const char *b[] = {"22423", "85099B", "85099C", "85099F", "21733", NULL};
        snprintf(u, sizeof(u), "fam-%d", i);
        xse_basket(e, u, b);
        const char *n[] = {"noise", NULL};
        snprintf(u, sizeof(u), "noise-%d", i);
        xse_basket(e, u, n);
    }
    return e;
}

static int count_prefix(const xs_list_t *l, const char *prefix)
{
    int n = 0;
    for (int i = 0; i < l->n_items; i++)
        n += strncmp(l->items[i].item_id, prefix, strlen(prefix)) == 0;
    return n;
}

static void view(xs_engine_t *e, const char *user, const char *item, xs_list_t *list, bool *has)
{
    xs_event_t ev;
    char id[64];
    xs_event_init(&ev, XS_KIND_CLICK);
    snprintf(id, sizeof(id), "ev-%d", ++xse_seq);
    ev.event_id = strdup(id);
    ev.user_id = strdup(user);
    ev.type = XS_CLICK_PRODUCT_VIEW;
    ev.item_id = strdup(item);
    ev.ts = (xse_clock_ms += 60000);
    xs_event_list_init(list);
    assert_int_equal(xs_engine_process(e, 0, &ev, list, has, NULL, 0), XS_OK);
    xs_event_clear(&ev);
}

static void test_family_rule(void **state)
{
    (void)state;
    for (int rule = 1; rule >= 0; rule--) {
        xs_engine_t *e = family_world(rule ? 1 : 0, rule);
        xs_list_t list;
        bool has = false;
        /* CART with the cake stand: at most one lunch bag colour */
        const char *stand[] = {"22423", NULL};
        xse_cart(e, "s1", XS_CART_ADD, stand, &list, &has);
        assert_true(has);
        assert_true(list_has(&list, "21733"));
        if (rule)
            assert_int_equal(count_prefix(&list, "85099"), 1);
        else
            assert_int_equal(count_prefix(&list, "85099"), 3);
        xs_event_list_clear(&list);
        /* CART with a lunch bag: complements only, no other colour of it */
        const char *bag[] = {"85099B", NULL};
        xse_cart(e, "s2", XS_CART_ADD, bag, &list, &has);
        assert_true(has);
        assert_true(list_has(&list, "22423"));
        assert_true(list_has(&list, "21733"));
        if (rule)
            assert_int_equal(count_prefix(&list, "85099"), 0);
        else
            assert_int_equal(count_prefix(&list, "85099"), 2);
        xs_event_list_clear(&list);
        /* ... nor of a lunch bag already in the cart (not the trigger) */
        const char *holder[] = {"21733", NULL};
        xse_cart(e, "s2", XS_CART_ADD, holder, &list, &has);
        assert_true(has);
        if (rule)
            assert_int_equal(count_prefix(&list, "85099"), 0);
        xs_event_list_clear(&list);
        /* PRODUCT_PAGE of a lunch bag: another colour may be shown, one */
        view(e, "s3", "85099B", &list, &has);
        assert_true(has);
        assert_int_equal(list.placement, XS_PLACEMENT_PRODUCT_PAGE);
        if (rule)
            assert_int_equal(count_prefix(&list, "85099"), 1);
        else
            assert_int_equal(count_prefix(&list, "85099"), 2);
        xs_event_list_clear(&list);
        xs_engine_destroy(e);
    }
}

/* ---- live quality signal ------------------------------------------------------------------ */

static void test_add_outcome_against_last_list(void **state)
{
    (void)state;
    xs_engine_t *e = camera_world();
    xs_list_t list;
    bool has = false;
    xs_add_outcome_t o;
    const char *cam[] = {"camera", NULL}, *lens[] = {"lens", NULL}, *other[] = {"unseen", NULL};
    xse_cart(e, "shopper", XS_CART_ADD, cam, &list, &has);
    xs_engine_last_outcome(e, &o);
    assert_int_equal(o.opportunities[XS_PLACEMENT_CART], 0); /* nothing shown before */
    assert_true(has && list_has(&list, "lens"));
    xs_event_list_clear(&list);
    xse_cart(e, "shopper", XS_CART_ADD, lens, &list, &has); /* from the list */
    xs_engine_last_outcome(e, &o);
    assert_int_equal(o.opportunities[XS_PLACEMENT_CART], 1);
    assert_int_equal(o.hits[XS_PLACEMENT_CART], 1);
    assert_int_equal(o.opportunities[XS_PLACEMENT_PRODUCT_PAGE], 0);
    assert_false(list_has(&list, "unseen"));
    xs_event_list_clear(&list);
    xse_cart(e, "shopper", XS_CART_ADD, other, &list, &has); /* not from it */
    xs_engine_last_outcome(e, &o);
    assert_int_equal(o.opportunities[XS_PLACEMENT_CART], 1);
    assert_int_equal(o.hits[XS_PLACEMENT_CART], 0);
    xs_event_list_clear(&list);
    xs_engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_camera_cart_list),
        cmocka_unit_test(test_cart_of_200_items_never_listed),
        cmocka_unit_test(test_purchases_across_60_days_respect_rebuy),
        cmocka_unit_test(test_user_record_bound_under_adversarial_events),
        cmocka_unit_test(test_family_rule),
        cmocka_unit_test(test_add_outcome_against_last_list),
        cmocka_unit_test(test_max_context_bounds_the_context),
        cmocka_unit_test(test_cold_start_gets_trending),
        cmocka_unit_test(test_bought_item_not_suggested),
        cmocka_unit_test(test_duplicate_event_ignored),
        cmocka_unit_test(test_flush_and_reload),
        cmocka_unit_test(test_neighbours_record_only_when_lists_change),
        cmocka_unit_test(test_flush_hands_each_dirty_record_once),
        cmocka_unit_test(test_snapshot_is_the_state_when_it_began),
        cmocka_unit_test(test_session_joins_user_on_login),
        cmocka_unit_test(test_session_join_replays_exactly),
        cmocka_unit_test(test_session_made_after_a_login_still_joins),
        cmocka_unit_test(test_queries_leave_lists_alone),
        cmocka_unit_test(test_out_of_stock_never_appears),
        cmocka_unit_test(test_repurchasable_item_comes_back),
        cmocka_unit_test(test_category_cap_holds),
        cmocka_unit_test(test_control_arm_gets_popularity_only),
        cmocka_unit_test(test_identical_list_suppressed),
        cmocka_unit_test(test_neighbours_query),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
