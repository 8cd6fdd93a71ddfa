/*
 * End-to-end scenario on the development broker (librdkafka's mock cluster,
 * over TCP), or on a real Kafka broker (ctest's kafka_test_scenario:
 * XS_KAFKA_BOOTSTRAP_FILE, see xstest.h), a real RocksDB state directory and
 * real Avro:
 *
 *   phase 1: four shoppers buy camera + lens + tripod, one buys camera +
 *            lens, one camera + bag, six buy socks (three with shoes); the
 *            worker consumes everything (--until-end) and checkpoints;
 *   phase 2: a new shopper adds a camera to the cart; a new worker process
 *            state resumes from the offsets stored in RocksDB, processes
 *            only that event and publishes the shopper's CART list.
 * The output topic is read back and decoded; the list must start with
 * lens then tripod (bought together with the camera by 5 and 4 of the 7
 * camera buyers), never contain the camera itself, and carry bag (one
 * co-purchase, below the minimum support) only as a TRENDING backfill.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/settings.h"
#include "xstest.h"

#define T0 INT64_C(1704067200000) /* 2024-01-01 */

static int64_t ts = T0;
static int seq;

static void produce_basket(xs_producer_t *p, xs_codec_t *codec, const char *user,
                           const char *const *items)
{
    char id[64];
    xs_event_t ev;
    for (int i = 0; items[i]; i++) {
        const char *one[] = {items[i], NULL};
        snprintf(id, sizeof(id), "e%d", ++seq);
        xst_cart_event(&ev, id, user, XS_CART_ADD, ts += 60000, one);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    snprintf(id, sizeof(id), "e%d", ++seq);
    xst_cart_event(&ev, id, user, XS_CART_PURCHASE, ts += 60000, items);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
}

static void test_camera_scenario(void **state)
{
    (void)state;
    char errstr[512] = "";
    xst_broker_t *db = xst_broker("scenario", 4);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(p);
    char *dir = xst_tmpdir("scenario");

    /* Catalog: titles for the tail and the demo. */
    const char *catalog[][2] = {{"camera", "Camera X100"},   {"lens", "Zoom lens 24-70"},
                                {"tripod", "Travel tripod"}, {"bag", "Camera bag"},
                                {"socks", "Wool socks"},     {"shoes", "Running shoes"}};
    for (size_t i = 0; i < 6; i++) {
        xs_event_t ev;
        xst_item_event(&ev, catalog[i][0], catalog[i][1], NULL, true, T0);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    const char *clt[] = {"camera", "lens", "tripod", NULL};
    const char *cl[] = {"camera", "lens", NULL};
    const char *cb[] = {"camera", "bag", NULL};
    const char *ss[] = {"socks", "shoes", NULL};
    const char *s[] = {"socks", NULL};
    char user[32];
    int n_events = 6;
    for (int i = 0; i < 4; i++) {
        snprintf(user, sizeof(user), "clt-%d", i);
        produce_basket(p, codec, user, clt);
        n_events += 4;
    }
    produce_basket(p, codec, "cl-0", cl);
    produce_basket(p, codec, "cb-0", cb);
    n_events += 6;
    for (int i = 0; i < 6; i++) {
        snprintf(user, sizeof(user), "ss-%d", i);
        produce_basket(p, codec, user, i < 3 ? ss : s);
        n_events += i < 3 ? 3 : 2;
    }
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);

    xs_config_t *cfg = xst_worker_config(bs, dir, "scenario");
    xst_run_t r1 = xst_run_worker_until_end(cfg);
    assert_int_equal(r1.events, n_events);
    assert_int_equal(r1.dlq, 0);
    assert_true(r1.lists > 0);

    /* Phase 2: the new shopper. */
    const char *cam[] = {"camera", NULL};
    xs_event_t ev;
    xst_cart_event(&ev, "newbie-add-camera", "newbie", XS_CART_ADD, ts += 60000, cam);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    xst_run_t r2 = xst_run_worker_until_end(cfg);
    assert_int_equal(r2.events, 1); /* resumed from the stored offsets */
    assert_int_equal(r2.lists, 1);

    xst_lists_t lists = xst_read_lists(bs, codec, xst_topic("xsell.cross-sell"));
    assert_int_equal(lists.n, r1.lists + r2.lists);
    const xs_list_t *l = xst_find_list(&lists, "newbie-add-camera");
    assert_non_null(l);
    assert_string_equal(l->user_id, "newbie");
    assert_int_equal(l->placement, XS_PLACEMENT_CART);
    assert_string_equal(l->trigger_type, "ADD");
    assert_int_equal(l->n_trigger_items, 1);
    assert_string_equal(l->trigger_items[0], "camera");
    assert_int_equal(l->n_items, 5); /* the five other catalog items */
    assert_string_equal(l->items[0].item_id, "lens");
    assert_int_equal(l->items[0].source, XS_SOURCE_BOUGHT_TOGETHER);
    assert_int_equal(l->items[0].n_because, 1);
    assert_string_equal(l->items[0].because_of[0], "camera");
    assert_string_equal(l->items[1].item_id, "tripod");
    assert_int_equal(l->items[1].source, XS_SOURCE_BOUGHT_TOGETHER);
    assert_true(l->items[0].score > l->items[1].score);
    for (int i = 2; i < l->n_items; i++)
        assert_int_equal(l->items[i].source, XS_SOURCE_TRENDING);
    bool bag = false;
    for (int i = 0; i < l->n_items; i++) {
        assert_string_not_equal(l->items[i].item_id, "camera");
        bag |= strcmp(l->items[i].item_id, "bag") == 0;
    }
    assert_true(bag);
    assert_int_equal(strlen(l->list_id), 32);

    xst_lists_free(&lists);
    xs_config_destroy(cfg);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    xst_rmrf(dir);
    free(dir);
}

/*
 * Rules through the whole pipeline: the catalog topic marks the lens out of
 * stock and sets categories, the configuration runs an A/B experiment with
 * a popularity-only control arm; lists read back from the output topic.
 */
static void test_rules_and_experiment_end_to_end(void **state)
{
    (void)state;
    char errstr[512] = "";
    xst_broker_t *db = xst_broker("rules", 2);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(codec);
    assert_non_null(p);
    char *dir = xst_tmpdir("rules");
    const char *clt[] = {"camera", "lens", "tripod", NULL};
    const char *ss[] = {"socks", "shoes", NULL};
    char user[32];
    for (int i = 0; i < 6; i++) {
        snprintf(user, sizeof(user), "clt-%d", i);
        produce_basket(p, codec, user, clt);
        snprintf(user, sizeof(user), "ss-%d", i);
        produce_basket(p, codec, user, ss);
    }
    xs_event_t ev;
    xst_item_event(&ev, "lens", "Zoom lens", "optics", false, ts);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);

    xs_config_t *cfg = xst_worker_config(bs, dir, "rules");
    const char *kv[][2] = {{"experiment.name", "xsell-vs-popular"},
                           {"experiment.salt", "2024-q1"},
                           {"experiment.arms", "control:50,cooc:50"},
                           {"experiment.arm.control.popularity_only", "true"}};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(xs_config_set(cfg, kv[i][0], kv[i][1], "test", errstr, sizeof(errstr)),
                         XS_OK);
    xst_run_t r1 = xst_run_worker_until_end(cfg);
    assert_int_equal(r1.dlq, 0);

    /* New shoppers add a camera: half of them (by hash) in each arm. */
    const char *cam[] = {"camera", NULL};
    char id[64];
    for (int i = 0; i < 12; i++) {
        snprintf(user, sizeof(user), "new-%d", i);
        snprintf(id, sizeof(id), "new-%d-add", i);
        xst_cart_event(&ev, id, user, XS_CART_ADD, ts += 60000, cam);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    xst_run_t r2 = xst_run_worker_until_end(cfg);
    assert_int_equal(r2.events, 12);

    xs_experiment_t x;
    xs_params_t base;
    xs_settings_params(cfg, &base);
    assert_int_equal(xs_settings_experiment(cfg, &base, &x, errstr, sizeof(errstr)), XS_OK);
    xst_lists_t lists = xst_read_lists(bs, codec, xst_topic("xsell.cross-sell"));
    int arms[2] = {0, 0};
    for (int i = 0; i < 12; i++) {
        snprintf(id, sizeof(id), "new-%d-add", i);
        snprintf(user, sizeof(user), "new-%d", i);
        const xs_list_t *l = xst_find_list(&lists, id);
        assert_non_null(l);
        assert_string_equal(l->experiment, "xsell-vs-popular");
        int arm = xs_engine_experiment_arm(&x, user);
        assert_string_equal(l->arm, arm == 0 ? "control" : "cooc");
        arms[arm]++;
        for (int k = 0; k < l->n_items; k++) {
            /* out of stock: never, in either arm */
            assert_string_not_equal(l->items[k].item_id, "lens");
            if (arm == 0)
                assert_int_equal(l->items[k].source, XS_SOURCE_TRENDING);
        }
        if (arm == 1) {
            assert_string_equal(l->items[0].item_id, "tripod");
            assert_int_equal(l->items[0].source, XS_SOURCE_BOUGHT_TOGETHER);
        }
    }
    assert_true(arms[0] > 0 && arms[1] > 0);
    xst_lists_free(&lists);
    xs_config_destroy(cfg);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    xst_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_camera_scenario),
        cmocka_unit_test(test_rules_and_experiment_end_to_end),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
