/*
 * Compacted catalog test: a tombstone (null value, key item_id) on the
 * catalog topic deletes the item.
 *
 * On the development broker (one partition per topic, so each run's order
 * is the order produced), three runs of the in-process worker with
 * --until-end:
 *
 *   1. catalog updates for A, B (title, category, family, price) and C; 40 users
 *      put A then B in their cart, 20 put A then C; a probe user's ADD of A
 *      gets a list holding B (and C).
 *   2. a tombstone for B, and two tombstones whose key is not an item id
 *      (no key, invalid UTF-8): B is deleted (no title, family, price, category,
 *      flagged deleted, its counts kept), the two others are dead-lettered
 *      as validation failures; nothing else goes to the DLQ.
 *   3. another probe user's ADD of A: the list holds C, never B.
 *
 * Runtime: about 12 s (three group joins).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xstest.h"
#include "xsell/engine.h"
#include "xsell/hash.h"
#include "xsell/inspect.h"
#include "xsell/sketch.h"
#include "xsell/store.h"

#define T0 INT64_C(1704067200000)

static bool list_has(const xs_list_t *l, const char *item)
{
    for (int i = 0; i < l->n_items; i++)
        if (!strcmp(l->items[i].item_id, item))
            return true;
    return false;
}

static void add(xs_producer_t *p, xs_codec_t *codec, const char *id, const char *user,
                const char *item, int64_t ts)
{
    xs_event_t ev;
    const char *one[] = {item, NULL};
    xst_cart_event(&ev, id, user, XS_CART_ADD, ts, one);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
}

static xst_run_t run(const char *bs, const char *dir)
{
    char errstr[512] = "";
    xs_config_t *cfg = xst_worker_config(bs, dir, "catalog");
    const char *kv[][2] = {{"http.address", ""}};
    for (size_t i = 0; i < XS_ARRAY_SIZE(kv); i++)
        if (xs_config_set(cfg, kv[i][0], kv[i][1], "test", errstr, sizeof(errstr)))
            fail_msg("config: %s", errstr);
    xst_run_t r = xst_run_worker_until_end(cfg);
    xs_config_destroy(cfg);
    return r;
}

static const xs_list_t *probe_list(const char *bs, xs_codec_t *codec, const char *event_id,
                                   xst_lists_t *lists)
{
    *lists = xst_read_lists(bs, codec, xst_topic("xsell.cross-sell"));
    const xs_list_t *l = xst_find_list(lists, event_id);
    if (!l)
        fail_msg("no list for %s", event_id);
    fprintf(stderr, "%s:", event_id);
    for (int i = 0; i < l->n_items; i++)
        fprintf(stderr, " %s", l->items[i].item_id);
    fprintf(stderr, "\n");
    return l;
}

static void test_tombstone(void **state)
{
    (void)state;
    char errstr[1024] = "";
    xst_broker_t *db = xst_broker("catalog", 1);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(p);
    char *dir = xst_tmpdir("catalog");
    xs_event_t ev;
    char id[32], user[32];

    /* 1: the catalog, the training carts, a probe. */
    xst_item_event(&ev, "A", "Camera", "photo", true, T0);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    xst_item_event(&ev, "B", "Tripod", "photo", true, T0);
    ev.family = strdup("tripods");
    ev.price = 129.5;
    ev.has_price = true;
    ev.repurchasable = true;
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    xst_item_event(&ev, "C", "Camera bag", "bags", true, T0);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    int64_t ts = T0 + 1000;
    for (int i = 0; i < 60; i++) {
        snprintf(user, sizeof(user), "u-%d", i);
        snprintf(id, sizeof(id), "a-%d", i);
        add(p, codec, id, user, "A", ts += 1000);
        snprintf(id, sizeof(id), "x-%d", i);
        add(p, codec, id, user, i < 40 ? "B" : "C", ts += 1000);
    }
    add(p, codec, "probe-1", "probe-1", "A", ts += 1000);
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);
    xst_run_t r = run(bs, dir);
    assert_int_equal(r.events, 3 + 121);
    assert_int_equal(r.dlq, 0);
    xst_lists_t lists;
    const xs_list_t *l = probe_list(bs, codec, "probe-1", &lists);
    assert_true(list_has(l, "B"));
    assert_true(list_has(l, "C"));
    xst_lists_free(&lists);

    /* 2: tombstones. */
    const char *catalog = xst_topic("xsell.catalog");
    assert_int_equal(
        xs_producer_send(p, catalog, -1, "B", 1, NULL, 0, NULL, 0, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(
        xs_producer_send(p, catalog, -1, NULL, 0, NULL, 0, NULL, 0, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(
        xs_producer_send(p, catalog, -1, "\xff\xfe", 2, NULL, 0, NULL, 0, errstr, sizeof(errstr)),
        XS_OK);
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);
    r = run(bs, dir);
    assert_int_equal(r.events, 1);
    assert_int_equal(r.dlq, 2);

    /* B's stored state: deleted, catalog fields gone, counts kept. */
    xs_store_t *s = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    uint8_t key[8];
    xs_engine_key_u64(key, xs_hash_str("B"));
    xs_buf_t val = {0};
    bool found = false;
    assert_int_equal(xs_store_get(s, XS_CF_ITEMS, key, 8, &val, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found);
    xs_item_t *it = malloc(sizeof(*it));
    assert_non_null(it);
    assert_int_equal(xs_sketch_decode(it, val.data, val.len, errstr, sizeof(errstr)), XS_OK);
    assert_true(it->flags & XS_ITEM_F_DELETED);
    assert_false(it->flags & XS_ITEM_F_REPURCHASABLE);
    assert_true(it->category == 0);
    assert_true(it->n_users[XS_CLASS_BOUGHT] >= 40);
    free(it);
    xs_buf_reset(&val);
    assert_int_equal(xs_store_get(s, XS_CF_NAMES, key, 8, &val, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found);
    xs_name_rec_t n = {0};
    assert_int_equal(xs_store_records_name_decode(&n, val.data, val.len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_string_equal(n.id, "B");
    assert_null(n.title);
    assert_true(n.family == 0);
    assert_false(n.has_price);
    xs_store_records_name_rec_clear(&n);
    xs_buf_free(&val);
    xs_store_close(s);

    /* The two bad tombstones on the DLQ with their reasons. */
    const char *topics[] = {xst_topic("xsell.dlq")};
    xs_consumer_opts_t co = {
        .bootstrap = bs, .topics = topics, .n_topics = 1, .start_offset = XS_OFFSET_BEGINNING};
    xs_consumer_t *c = xs_consumer_new(&co, errstr, sizeof(errstr));
    if (!c)
        fail_msg("consumer: %s", errstr);
    int got = 0;
    for (int idle = 0; idle < 50 && got < 3;) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 100, &m, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF) {
            idle++;
            continue;
        }
        assert_int_equal(err, XS_OK);
        assert_null(m.value);
        got++;
    }
    assert_int_equal(got, 2);
    xs_consumer_destroy(c);

    /* 3: B is never suggested again. */
    add(p, codec, "probe-2", "probe-2", "A", ts += 1000);
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);
    r = run(bs, dir);
    assert_int_equal(r.events, 1);
    assert_int_equal(r.dlq, 0);
    l = probe_list(bs, codec, "probe-2", &lists);
    assert_false(list_has(l, "B"));
    assert_true(list_has(l, "C"));
    xst_lists_free(&lists);

    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    xst_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tombstone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
