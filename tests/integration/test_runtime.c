/*
 * The processor runtime with a processor other than the engine: a counter
 * of events per user, on the development broker (or a real Kafka), a real
 * RocksDB store and the real router.
 *
 *   1. 40 cart and click events of 4 users, a message that does not decode
 *      and an empty one; the runtime runs with until_end. The processor sees
 *      exactly the 40 events (never a dead letter: the router sends the two
 *      to the DLQ), and the final checkpoint holds, in one batch, the
 *      processor's records (meta "count/<user>") and the next offset of both
 *      input partitions.
 *   2. A second runtime on the same store and group: it starts from the
 *      stored offsets, so the processor sees nothing again.
 *
 * Runtime: about 8 s (two group joins).
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
#include "xsell/router.h"
#include "xsell/runtime.h"
#include "xsell/store.h"
#include "xsell/worker_metrics.h"

#define T0 INT64_C(1704067200000)
#define N_USERS 4

/* The counter: events per user since start, and which changed since the
 * last checkpoint. */
typedef struct counter {
    uint64_t count[N_USERS];
    bool dirty[N_USERS];
    int not_events;  /* inputs that were not events (must stay 0) */
    int checkpoints; /* batches written */
    xs_store_batch_t *batch;
} counter_t;

static int user_index(const char *user_id)
{
    int i = user_id && !strncmp(user_id, "user-", 5) ? atoi(user_id + 5) : -1;
    return i >= 0 && i < N_USERS ? i : -1;
}

static xs_err_t c_process(void *self, const xs_input_t *in, xs_emit_t *emit, char *errstr,
                          size_t errstr_size)
{
    counter_t *c = self;
    (void)emit;
    int u = in->route == XS_ROUTE_EVENT ? user_index(in->ev.user_id) : -1;
    if (u < 0) {
        c->not_events++;
        return XS_OK;
    }
    (void)errstr;
    (void)errstr_size;
    c->count[u]++;
    c->dirty[u] = true;
    return XS_OK;
}

static xs_err_t c_snapshot_begin(void *self, xs_store_batch_t *batch, size_t *n_records,
                                 char *errstr, size_t errstr_size)
{
    counter_t *c = self;
    (void)errstr;
    (void)errstr_size;
    *n_records = 0;
    for (int u = 0; u < N_USERS; u++)
        if (c->dirty[u]) {
            char key[32], val[32];
            snprintf(key, sizeof(key), "count/user-%d", u);
            snprintf(val, sizeof(val), "%llu", (unsigned long long)c->count[u]);
            xs_err_t err =
                xs_store_batch_put(batch, XS_CF_META, key, strlen(key), val, strlen(val));
            if (err)
                return err;
            c->dirty[u] = false;
            ++*n_records;
        }
    return XS_OK;
}

static xs_err_t c_snapshot_step(void *self, size_t max, bool *done, char *errstr,
                                size_t errstr_size)
{
    (void)self;
    (void)max;
    (void)errstr;
    (void)errstr_size;
    *done = true; /* everything went in at the start */
    return XS_OK;
}

static void c_checkpointed(void *self)
{
    counter_t *c = self;
    c->checkpoints++;
}

static void c_stats(void *self, xs_processor_stats_t *st)
{
    (void)self;
    memset(st, 0, sizeof(*st));
}

static xs_runtime_stats_t run(const char *bs, const char *dir, counter_t *c)
{
    char errstr[1024] = "";
    xs_config_t *cfg = xst_worker_config(bs, dir, "runtime");
    assert_int_equal(xs_config_set(cfg, "http.address", "", "test", errstr, sizeof(errstr)), XS_OK);
    xs_worker_metrics_t *wm = xs_worker_metrics_new(cfg);
    assert_non_null(wm);
    assert_int_equal(xs_worker_metrics_start(wm, NULL, 0), XS_OK);
    xs_store_t *store = xs_store_open(dir, NULL, 0, false, errstr, sizeof(errstr));
    if (!store)
        fail_msg("store: %s", errstr);
    xs_router_t *router = xs_router_new(cfg, wm, errstr, sizeof(errstr));
    if (!router)
        fail_msg("router: %s", errstr);
    xs_processor_t proc = {
        .name = "counter",
        .self = c,
        .process = c_process,
        .snapshot_begin = c_snapshot_begin,
        .snapshot_step = c_snapshot_step,
        .checkpointed = c_checkpointed,
        .stats = c_stats,
    };
    xs_runtime_opts_t ro = {
        .config = cfg,
        .processor = &proc,
        .router = router,
        .metrics = wm,
        .store = store,
        .until_end = true,
    };
    xs_runtime_t *rt = xs_runtime_new(&ro, errstr, sizeof(errstr));
    if (!rt)
        fail_msg("runtime: %s", errstr);
    volatile sig_atomic_t stop = 0;
    if (xs_runtime_run(rt, &stop, errstr, sizeof(errstr)) != XS_OK)
        fail_msg("run: %s", errstr);
    xs_runtime_stats_t st;
    xs_runtime_stats(rt, &st);
    xs_runtime_destroy(rt);
    xs_router_destroy(router);
    xs_store_close(store);
    xs_worker_metrics_destroy(wm);
    xs_config_destroy(cfg);
    return st;
}

static void test_counter_processor(void **state)
{
    (void)state;
    char errstr[1024] = "";
    xst_broker_t *db = xst_broker("runtime", 1);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(p);
    char *dir = xst_tmpdir("runtime");
    xs_event_t ev;
    char id[32], user[32], item[32];
    uint64_t want[N_USERS] = {0};
    int n_cart = 0, n_clicks = 0;
    for (int i = 0; i < 40; i++) {
        int u = (i * 7) % N_USERS;
        snprintf(id, sizeof(id), "e-%d", i);
        snprintf(user, sizeof(user), "user-%d", u);
        snprintf(item, sizeof(item), "item-%d", i % 5);
        if (i % 3) {
            const char *one[] = {item, NULL};
            xst_cart_event(&ev, id, user, XS_CART_ADD, T0 + i * 1000, one);
            n_cart++;
        } else {
            xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0 + i * 1000, item, "cat");
            n_clicks++;
        }
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
        want[u]++;
    }
    /* Two dead letters: garbage on the clicks topic, an empty cart message. */
    const char *clicks = xst_topic("xsell.clicks"), *cart = xst_topic("xsell.cart");
    assert_int_equal(xs_producer_send(p, clicks, -1, "user-0", 6, "\x01\x02garbage", 9, NULL, 0,
                                      errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(
        xs_producer_send(p, cart, -1, "user-1", 6, "", 0, NULL, 0, errstr, sizeof(errstr)), XS_OK);
    n_clicks++;
    n_cart++;
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);

    /* 1: every event reaches the processor, no dead letter does. */
    counter_t c = {0};
    xs_runtime_stats_t st = run(bs, dir, &c);
    fprintf(stderr,
            "messages=%llu events=%llu dlq=%llu checkpoints=%llu (processor: %d) "
            "not_events=%d\n",
            (unsigned long long)st.messages, (unsigned long long)st.events,
            (unsigned long long)st.dlq, (unsigned long long)st.checkpoints, c.checkpoints,
            c.not_events);
    assert_int_equal(st.messages, 42);
    assert_int_equal(st.events, 40);
    assert_int_equal(st.dlq, 2);
    assert_int_equal(c.not_events, 0);
    assert_true(c.checkpoints >= 1);
    assert_int_equal(st.checkpoints, (uint64_t)c.checkpoints);
    for (int u = 0; u < N_USERS; u++)
        assert_int_equal(c.count[u], want[u]);

    /* The store: the processor's records and the offsets, from the same batches. */
    xs_store_t *store = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!store)
        fail_msg("store: %s", errstr);
    for (int u = 0; u < N_USERS; u++) {
        char key[32], val[32];
        xs_buf_t b = {0};
        bool found = false;
        snprintf(key, sizeof(key), "count/user-%d", u);
        assert_int_equal(
            xs_store_get(store, XS_CF_META, key, strlen(key), &b, &found, errstr, sizeof(errstr)),
            XS_OK);
        assert_true(found);
        snprintf(val, sizeof(val), "%llu", (unsigned long long)want[u]);
        assert_int_equal(b.len, strlen(val));
        assert_memory_equal(b.data, val, b.len);
        xs_buf_free(&b);
    }
    int64_t next = -1;
    bool found = false;
    assert_int_equal(xs_store_get_offset(store, clicks, 0, &next, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found);
    assert_int_equal(next, n_clicks);
    assert_int_equal(xs_store_get_offset(store, cart, 0, &next, &found, errstr, sizeof(errstr)),
                     XS_OK);
    assert_true(found);
    assert_int_equal(next, n_cart);
    xs_store_close(store);

    /* 2: a restart resumes at the stored offsets: nothing is processed twice. */
    counter_t c2 = {0};
    st = run(bs, dir, &c2);
    assert_int_equal(st.messages, 0);
    assert_int_equal(st.events, 0);
    for (int u = 0; u < N_USERS; u++)
        assert_int_equal(c2.count[u], 0);

    xst_rmrf(dir);
    free(dir);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_processor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
