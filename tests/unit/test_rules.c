/*
 * Query-time rules and anonymous shoppers (xs_engine_recommend_ex): the
 * filters and the boost of a storefront's query on hand-made scenarios, the
 * catalog metadata of each listed item, and the list of an anonymous cart
 * against the list the worker's path publishes for a shopper who adds the
 * same items; the catalog price kept in the names records (version 03)
 * across a flush and a reload, and a version 02 record still read; the
 * catalog's availability windows (ItemUpdate.available_from/_until) in
 * every list.
 */
#include <math.h>
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
#include "xsell/inspect.h"

#define T0 XSE_T0

static void item_update(xs_engine_t *e, const char *item, const char *title, const char *category,
                        double price)
{
    xs_event_t ev;
    xs_list_t list;
    bool has;
    xs_event_init(&ev, XS_KIND_ITEM);
    ev.item_id = strdup(item);
    ev.title = title ? strdup(title) : NULL;
    ev.category = category ? strdup(category) : NULL;
    ev.in_stock = true;
    ev.has_price = !isnan(price);
    ev.price = ev.has_price ? price : 0;
    ev.ts = xse_clock_ms;
    xs_event_list_init(&list);
    assert_int_equal(xs_engine_process(e, 0, &ev, &list, &has, NULL, 0), XS_OK);
    xs_event_clear(&ev);
}

static int rank_of(const xs_list_t *l, const char *item)
{
    for (int i = 0; i < l->n_items; i++)
        if (strcmp(l->items[i].item_id, item) == 0)
            return i + 1;
    return 0;
}

/* A phone bought with seven accessories by many shoppers (the more often,
 * the earlier in acc[]; the first six are its neighbours), in three
 * categories, with prices; charger-a without price. */
static const char *const acc[] = {"case-a",    "case-b",    "case-c",  "charger-a",
                                  "charger-b", "charger-c", "strap-a", NULL};
static const double acc_price[] = {5, 25, 8, NAN, 9, 30, 12};

static xs_engine_t *phone_world(void)
{
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.params.category_cap = 0;
    o.params.trending_backfill = false;
    o.params.popularity_prior = 0;
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    assert_non_null(e);
    for (int i = 0; acc[i]; i++) {
        char title[64];
        snprintf(title, sizeof(title), "Title of %s", acc[i]);
        item_update(e, acc[i], title,
                    acc[i][1] == 'a'   ? "cases"
                    : acc[i][1] == 'h' ? "chargers"
                                       : "straps",
                    acc_price[i]);
    }
    item_update(e, "phone", "A phone", "phones", 300);
    char u[32];
    for (int i = 0; i < 10; i++) {
        const char *b[9] = {"phone"};
        int n = 1;
        for (int k = 0; acc[k]; k++)
            if (i < 10 - k) /* acc[k] in 10 - k baskets */
                b[n++] = acc[k];
        b[n] = NULL;
        snprintf(u, sizeof(u), "p-%d", i);
        xse_basket(e, u, b);
        const char *other[] = {"noise", NULL};
        snprintf(u, sizeof(u), "n-%d", i);
        xse_basket(e, u, other);
    }
    return e;
}

static xs_list_t query(xs_engine_t *e, const char *user, const char *const *items, int n_items,
                       const xs_rules_t *rules, int n)
{
    xs_list_t l;
    char errstr[256] = "";
    xs_event_list_init(&l);
    xs_err_t err = xs_engine_recommend_ex(e, 0, user, items, n_items, XS_PLACEMENT_CART, n, rules,
                                          &l, errstr, sizeof(errstr));
    if (err)
        fail_msg("recommend_ex: %s", errstr);
    return l;
}

static void test_rules_filter_and_boost(void **state)
{
    (void)state;
    xs_engine_t *e = phone_world();
    const char *phone[] = {"phone"};
    xs_rules_t R;

    /* No rule: the accessories in the order of their co-occurrence. */
    xs_list_t l = query(e, "someone", phone, 1, NULL, 4);
    assert_int_equal(l.n_items, 4);
    assert_int_equal(rank_of(&l, "case-a"), 1);
    assert_int_equal(rank_of(&l, "case-b"), 2);
    /* metadata of each item */
    assert_string_equal(l.items[0].title, "Title of case-a");
    assert_string_equal(l.items[0].category, "cases");
    assert_true(l.items[0].has_price);
    assert_true(l.items[0].price == 5);
    xs_event_list_clear(&l);

    /* exclude: gone, and the list is still full (the next candidates move up). */
    memset(&R, 0, sizeof(R));
    R.exclude[0] = "case-a";
    R.exclude[1] = "case-c";
    R.n_exclude = 2;
    l = query(e, "someone", phone, 1, &R, 4);
    assert_int_equal(l.n_items, 4);
    assert_int_equal(rank_of(&l, "case-a"), 0);
    assert_int_equal(rank_of(&l, "case-c"), 0);
    assert_int_equal(rank_of(&l, "case-b"), 1);
    xs_event_list_clear(&l);

    /* category: only chargers, all three of them, though cases rank higher. */
    memset(&R, 0, sizeof(R));
    R.category[0] = "chargers";
    R.n_category = 1;
    l = query(e, "someone", phone, 1, &R, 4);
    assert_int_equal(l.n_items, 3);
    for (int i = 0; i < l.n_items; i++)
        assert_string_equal(l.items[i].category, "chargers");
    xs_event_list_clear(&l);

    /* exclude_category: no case (and no phone): the three chargers. */
    memset(&R, 0, sizeof(R));
    R.exclude_category[0] = "cases";
    R.exclude_category[1] = "phones";
    R.n_exclude_category = 2;
    l = query(e, "someone", phone, 1, &R, 4);
    assert_int_equal(l.n_items, 3);
    assert_string_equal(l.items[0].item_id, "charger-a");
    assert_false(l.items[0].has_price);
    xs_event_list_clear(&l);

    /* max_price 9: case-a (5), case-c (8), charger-b (9); charger-a has no
     * price, so it cannot be shown to be under any budget. */
    memset(&R, 0, sizeof(R));
    R.has_max_price = true;
    R.max_price = 9;
    l = query(e, "someone", phone, 1, &R, 6);
    assert_int_equal(l.n_items, 3);
    for (int i = 0; i < l.n_items; i++)
        assert_true(l.items[i].has_price && l.items[i].price <= 9);
    assert_int_equal(rank_of(&l, "charger-b"), 3);
    xs_event_list_clear(&l);
    R.max_price = 1000;
    l = query(e, "someone", phone, 1, &R, 6);
    assert_int_equal(l.n_items, 5);
    assert_int_equal(rank_of(&l, "charger-a"), 0);
    xs_event_list_clear(&l);

    /* boost: charger-c, last of the seven, boosted x1000 comes first; a
     * boosted category moves all its items before the others. */
    memset(&R, 0, sizeof(R));
    R.boost_item[0] = "charger-c";
    R.n_boost_item = 1;
    R.boost = 1000;
    l = query(e, "someone", phone, 1, &R, 4);
    assert_int_equal(rank_of(&l, "charger-c"), 1);
    assert_int_equal(l.n_items, 4);
    xs_event_list_clear(&l);
    memset(&R, 0, sizeof(R));
    R.boost_category[0] = "chargers";
    R.n_boost_category = 1;
    R.boost = 1000;
    l = query(e, "someone", phone, 1, &R, 4);
    for (int i = 0; i < 3; i++)
        assert_string_equal(l.items[i].category, "chargers");
    xs_event_list_clear(&l);

    /* The worker's published lists never see a query's rules. */
    xs_list_t pub;
    bool has = false;
    const char *ph[] = {"phone", NULL};
    xse_cart(e, "shopper", XS_CART_ADD, ph, &pub, &has);
    assert_true(has);
    assert_int_equal(rank_of(&pub, "case-a"), 1);
    assert_null(pub.items[0].title); /* metadata is for queries only */
    xs_event_list_clear(&pub);
    xs_engine_destroy(e);
}

/* The trending backfill obeys the filters too. */
static void test_rules_hold_for_trending_backfill(void **state)
{
    (void)state;
    xs_engine_t *e = phone_world();
    xs_params_t *P = xs_engine_params(e);
    P->trending_backfill = true;
    const char *nothing[] = {"never-seen"};
    xs_rules_t R;
    memset(&R, 0, sizeof(R));
    R.category[0] = "cases";
    R.n_category = 1;
    xs_list_t l = query(e, NULL, nothing, 1, &R, 6);
    assert_true(l.n_items >= 1);
    for (int i = 0; i < l.n_items; i++) {
        assert_int_equal(l.items[i].source, XS_SOURCE_TRENDING);
        assert_string_equal(l.items[i].category, "cases");
    }
    xs_event_list_clear(&l);
    xs_engine_destroy(e);
}

/* An anonymous cart (items a, b, c) gets the list the worker's path
 * publishes for a new shopper who adds a, b, c in this order: the same
 * scorer, context weights and rules, no user state. */
static void test_anonymous_cart_is_the_worker_list(void **state)
{
    (void)state;
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    xs_engine_t *e = xs_engine_new(&o, NULL, 0);
    const char *b1[] = {"camera", "lens", "tripod", "bag", NULL};
    const char *b2[] = {"tripod", "flash", "card", NULL};
    const char *b3[] = {"lens", "filter", "card", "bag", NULL};
    const char *b4[] = {"socks", "shoes", NULL};
    char u[32];
    for (int i = 0; i < 24; i++) {
        snprintf(u, sizeof(u), "b-%d", i);
        xse_basket(e, u, i % 4 == 0 ? b1 : i % 4 == 1 ? b2 : i % 4 == 2 ? b3 : b4);
    }
    const char *adds[] = {"camera", "tripod", "card"};
    xs_list_t pub;
    bool has = false;
    for (int k = 0; k < 3; k++) {
        const char *one[] = {adds[k], NULL};
        xse_cart(e, "fresh", XS_CART_ADD, one, &pub, &has);
        assert_true(has);
        xs_list_t anon = query(e, NULL, adds, k + 1, NULL, 0);
        assert_null(anon.user_id);
        assert_int_equal(anon.n_items, pub.n_items);
        for (int i = 0; i < pub.n_items; i++) {
            assert_string_equal(anon.items[i].item_id, pub.items[i].item_id);
            assert_true(fabs(anon.items[i].score - pub.items[i].score) < 1e-9);
            assert_int_equal(anon.items[i].source, pub.items[i].source);
        }
        for (int i = 0; i <= k; i++)
            assert_int_equal(rank_of(&anon, adds[i]), 0); /* nothing in the cart */
        xs_event_list_clear(&anon);
        xs_event_list_clear(&pub);
    }
    /* not the cold start: an anonymous cart with a camera gets its complements */
    const char *cam[] = {"camera"};
    xs_list_t anon = query(e, NULL, cam, 1, NULL, 0);
    assert_true(anon.n_items > 0);
    assert_int_not_equal(anon.items[0].source, XS_SOURCE_TRENDING);
    xs_event_list_clear(&anon);
    xs_engine_destroy(e);
}

/* ---- the names record's price: stored, reloaded; version 02 still read ---- */

#define KV_MAX 4096
typedef struct kv {
    int n;
    xs_cf_t cf[KV_MAX];
    uint8_t key[KV_MAX][16];
    size_t klen[KV_MAX];
    xs_buf_t val[KV_MAX];
} kv_t;

static xs_err_t kv_put(void *opaque, xs_cf_t cf, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    kv_t *kv = opaque;
    int i = 0;
    for (; i < kv->n; i++)
        if (kv->cf[i] == cf && kv->klen[i] == klen && !memcmp(kv->key[i], key, klen))
            break;
    if (!val) { /* a delete: the last record takes its place */
        if (i < kv->n) {
            xs_buf_t t = kv->val[i];
            kv->n--;
            kv->cf[i] = kv->cf[kv->n];
            kv->klen[i] = kv->klen[kv->n];
            memcpy(kv->key[i], kv->key[kv->n], sizeof(kv->key[i]));
            kv->val[i] = kv->val[kv->n];
            kv->val[kv->n] = t;
        }
        return XS_OK;
    }
    if (i == kv->n) {
        assert_true(kv->n < KV_MAX && klen <= 16);
        kv->n++;
        kv->cf[i] = cf;
        kv->klen[i] = klen;
        memcpy(kv->key[i], key, klen);
    }
    xs_buf_reset(&kv->val[i]);
    return xs_buf_append(&kv->val[i], val, vlen);
}

static xs_err_t kv_get(void *opaque, xs_cf_t cf, const void *key, size_t klen, xs_buf_t *val,
                       bool *found, char *errstr, size_t errstr_size)
{
    (void)errstr;
    (void)errstr_size;
    kv_t *kv = opaque;
    xs_buf_reset(val);
    *found = false;
    for (int i = 0; i < kv->n; i++)
        if (kv->cf[i] == cf && kv->klen[i] == klen && !memcmp(kv->key[i], key, klen)) {
            *found = true;
            return xs_buf_append(val, kv->val[i].data, kv->val[i].len);
        }
    return XS_OK;
}

static const xs_buf_t *kv_find(const kv_t *kv, xs_cf_t cf, uint64_t h)
{
    uint8_t key[8];
    xs_engine_key_u64(key, h);
    for (int i = 0; i < kv->n; i++)
        if (kv->cf[i] == cf && kv->klen[i] == 8 && !memcmp(kv->key[i], key, 8))
            return &kv->val[i];
    return NULL;
}

static void test_price_is_stored(void **state)
{
    (void)state;
    kv_t *kv = calloc(1, sizeof(*kv));
    assert_non_null(kv);
    xs_engine_t *e = phone_world();
    char errstr[256] = "";
    assert_int_equal(xs_engine_flush(e, kv_put, kv, errstr, sizeof(errstr)), XS_OK);
    xs_engine_destroy(e);

    /* The record as stored: version 03, and inspect's decoder reads the price. */
    const xs_buf_t *v = kv_find(kv, XS_CF_NAMES, xs_hash_str("case-b"));
    assert_non_null(v);
    assert_int_equal(v->data[0], 'N');
    assert_int_equal(v->data[1], 3);
    xs_name_rec_t nr = {0};
    assert_int_equal(xs_store_records_name_decode(&nr, v->data, v->len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_string_equal(nr.id, "case-b");
    assert_true(nr.has_price && nr.price == 25);
    xs_store_records_name_rec_clear(&nr);
    v = kv_find(kv, XS_CF_NAMES, xs_hash_str("charger-a")); /* no price */
    assert_int_equal(xs_store_records_name_decode(&nr, v->data, v->len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_false(nr.has_price);
    xs_store_records_name_rec_clear(&nr);

    /* case-a's record rewritten as version 02 (before prices):
     * 'N' 02 | id | title | family. */
    uint8_t old[64] = {'N', 2, 6, 'c', 'a', 's', 'e', '-', 'a', 5, 'T', 'i', 't', 'l', 'e'};
    size_t old_len = 15 + 8; /* family 0 */
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str("case-a"));
    assert_int_equal(kv_put(kv, XS_CF_NAMES, key, 8, old, old_len), XS_OK);
    assert_int_equal(xs_store_records_name_decode(&nr, old, old_len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_string_equal(nr.title, "Title");
    assert_false(nr.has_price);
    xs_store_records_name_rec_clear(&nr);

    /* A new engine over the stored records: the prices come back (case-a's
     * version 02 record: its title, no price). */
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.params.category_cap = 0;
    o.params.trending_backfill = false;
    o.params.popularity_prior = 0;
    xs_backend_t be = {kv, kv_get};
    o.backend = &be;
    e = xs_engine_new(&o, errstr, sizeof(errstr));
    assert_non_null(e);
    const char *phone[] = {"phone"};
    xs_list_t l = query(e, "someone", phone, 1, NULL, 6);
    assert_int_equal(rank_of(&l, "case-a"), 1);
    for (int i = 0; i < l.n_items; i++) {
        int k = 0;
        while (acc[k] && strcmp(acc[k], l.items[i].item_id))
            k++;
        assert_non_null(acc[k]);
        if (k == 0) {
            assert_string_equal(l.items[i].title, "Title");
            assert_false(l.items[i].has_price);
            continue;
        }
        assert_int_equal(l.items[i].has_price, !isnan(acc_price[k]));
        if (l.items[i].has_price)
            assert_true(l.items[i].price == acc_price[k]);
    }
    assert_int_equal(l.n_items, 6);
    xs_event_list_clear(&l);
    xs_engine_destroy(e);
    for (int i = 0; i < kv->n; i++)
        xs_buf_free(&kv->val[i]);
    free(kv);
}

/* ---- availability windows --------------------------------------------- */

static void item_window(xs_engine_t *e, const char *item, int k, bool has_from, int64_t from,
                        bool has_until, int64_t until)
{
    xs_event_t ev;
    xs_list_t list;
    bool has;
    char title[64];
    xs_event_init(&ev, XS_KIND_ITEM);
    snprintf(title, sizeof(title), "Title of %s", item);
    ev.item_id = strdup(item);
    ev.title = strdup(title);
    ev.category = strdup(item[1] == 'a' ? "cases" : "chargers");
    ev.has_price = !isnan(acc_price[k]);
    ev.price = ev.has_price ? acc_price[k] : 0;
    ev.has_available_from = has_from;
    ev.available_from = from;
    ev.has_available_until = has_until;
    ev.available_until = until;
    ev.ts = xse_clock_ms;
    xs_event_list_init(&list);
    assert_int_equal(xs_engine_process(e, 0, &ev, &list, &has, NULL, 0), XS_OK);
    xs_event_clear(&ev);
}

static void test_availability_windows(void **state)
{
    (void)state;
    const int64_t day = 86400000;
    xs_engine_t *e = phone_world();
    int64_t t = xse_clock_ms;
    item_window(e, "case-a", 0, true, t + 10 * day, false, 0); /* not yet */
    item_window(e, "case-b", 1, false, 0, true, t - 1);        /* no longer */
    item_window(e, "case-c", 2, true, t - day, true, t + day); /* now */
    const char *ph[] = {"phone", NULL};
    const char *phone[] = {"phone"};
    xs_list_t pub, q;
    bool has = false;
    /* the worker's path: windows at the trigger's time */
    xse_cart(e, "w-1", XS_CART_ADD, ph, &pub, &has);
    assert_true(has);
    assert_int_equal(rank_of(&pub, "case-a"), 0);
    assert_int_equal(rank_of(&pub, "case-b"), 0);
    assert_int_equal(rank_of(&pub, "case-c"), 1);
    xs_event_list_clear(&pub);
    /* queries: an anonymous cart (the latest event time processed) and a user */
    q = query(e, NULL, phone, 1, NULL, 6);
    assert_int_equal(rank_of(&q, "case-a"), 0);
    assert_int_equal(rank_of(&q, "case-b"), 0);
    assert_int_equal(rank_of(&q, "case-c"), 1);
    assert_int_equal(q.n_items, 4);
    xs_event_list_clear(&q);
    /* eleven days on: case-a has come, case-c has gone */
    xse_clock_ms += 11 * day;
    xse_cart(e, "w-2", XS_CART_ADD, ph, &pub, &has);
    assert_int_equal(rank_of(&pub, "case-a"), 1);
    assert_int_equal(rank_of(&pub, "case-b"), 0);
    assert_int_equal(rank_of(&pub, "case-c"), 0);
    xs_event_list_clear(&pub);
    q = query(e, "w-1", phone, 1, NULL, 6); /* w-1's own last event is older: the engine's time */
    assert_int_equal(rank_of(&q, "case-a"), 1);
    assert_int_equal(rank_of(&q, "case-c"), 0);
    xs_event_list_clear(&q);
    /* a catalog update without a window lifts it */
    item_window(e, "case-b", 1, false, 0, false, 0);
    q = query(e, NULL, phone, 1, NULL, 6);
    assert_int_equal(rank_of(&q, "case-b"), 2);
    xs_event_list_clear(&q);
    xs_engine_destroy(e);
}

/* The trending backfill obeys the windows too. */
static void test_availability_in_backfill(void **state)
{
    (void)state;
    xs_engine_t *e = phone_world();
    xs_engine_params(e)->trending_backfill = true;
    item_window(e, "case-a", 0, true, xse_clock_ms + 86400000, false, 0);
    const char *nothing[] = {"never-seen"};
    xs_list_t q = query(e, NULL, nothing, 1, NULL, 20);
    assert_true(q.n_items >= 5);
    assert_int_equal(rank_of(&q, "case-a"), 0);
    for (int i = 0; i < q.n_items; i++)
        assert_int_equal(q.items[i].source, XS_SOURCE_TRENDING);
    xs_event_list_clear(&q);
    xs_engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_filter_and_boost),
        cmocka_unit_test(test_rules_hold_for_trending_backfill),
        cmocka_unit_test(test_anonymous_cart_is_the_worker_list),
        cmocka_unit_test(test_price_is_stored),
        cmocka_unit_test(test_availability_windows),
        cmocka_unit_test(test_availability_in_backfill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
