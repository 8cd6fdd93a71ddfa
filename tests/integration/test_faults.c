/*
 * Broker-fault test: no state lost or counted twice when brokers go down
 * and requests fail mid-run.
 *
 * Input: the first 60,000 UCI Online Retail events on a 3-broker mock
 * cluster (one input partition per topic, replication 3). Fault run: the
 * xsell-worker binary (state B, xsell.cross-sell.fault) while the test, for
 * 16 rounds (8 in the sanitizer build), produces the next slice of the input (the first slice, with
 * the catalog, before the worker starts) and then, in rotation, takes a
 * broker down for 1 s, or makes the next 3 Produce requests fail with
 * REQUEST_TIMED_OUT, the next 3 Fetch requests with NOT_LEADER_OR_FOLLOWER,
 * or the next 3 OffsetCommit requests with COORDINATOR_NOT_AVAILABLE, and
 * waits 700 ms: every fault meets a worker busy with fresh input, however
 * fast it is. Once the worker has applied every event it gets SIGTERM.
 * Reference: an in-process worker without faults on the whole input (state
 * A, xsell.cross-sell.ref). Asserts: the worker exits 0; `xsell inspect
 * --dump` of A and B are byte-identical (no event lost, none applied
 * twice); the fault run published exactly the reference's list ids, each
 * once (the idempotent producer's retries create no duplicates). Runtime:
 * about 20-40 s.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "xsproc.h"
#include "xstest.h"

#define N_EVENTS 60000
#ifdef XS_ASAN
#define FAULT_ROUNDS 8 /* the sanitizer build: each round's faults, half the rounds */
#else
#define FAULT_ROUNDS 16
#endif

static void test_broker_faults(void **state)
{
    (void)state;
    char errstr[1024] = "";
    int64_t t0 = xsp_now_ms();
    char data[1024];
    snprintf(data, sizeof(data), "%s/uci-online-retail/online_retail.csv.gz",
             getenv("XS_DATA_DIR") ? getenv("XS_DATA_DIR") : "../shared/data");
    xs_devbroker_t *db = xs_devbroker_new(3, errstr, sizeof(errstr));
    if (!db)
        fail_msg("devbroker: %s", errstr);
    const struct {
        const char *name;
        int partitions;
    } topics[] = {{"xsell.clicks", 1}, {"xsell.cart", 1},           {"xsell.catalog", 1},
                  {"xsell.dlq", 1},    {"xsell.cross-sell.ref", 8}, {"xsell.cross-sell.fault", 8}};
    for (size_t i = 0; i < XS_ARRAY_SIZE(topics); i++)
        if (xs_devbroker_create_topic(db, topics[i].name, topics[i].partitions, errstr,
                                      sizeof(errstr)))
            fail_msg("create %s: %s", topics[i].name, errstr);
    const char *bs = xs_devbroker_bootstraps(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    char *tmp = xst_tmpdir("faults");
    char dir_a[600], dir_b[600], log[600], dump_a[600], dump_b[600];
    snprintf(dir_a, sizeof(dir_a), "%s/state-ref", tmp);
    snprintf(dir_b, sizeof(dir_b), "%s/state-fault", tmp);
    snprintf(log, sizeof(log), "%s/worker.log", tmp);
    snprintf(dump_a, sizeof(dump_a), "%s/dump-ref.txt", tmp);
    snprintf(dump_b, sizeof(dump_b), "%s/dump-fault.txt", tmp);
    xsp_feed_t *feed = xsp_feed_load(bs, "online-retail", data, N_EVENTS);
    size_t n_feed = xsp_feed_count(feed);
    assert_int_equal(n_feed, N_EVENTS);
    /* one slice before the start, with the whole catalog (it comes first, as
     * the reference sees it), then one slice per round */
    size_t slice = n_feed / (FAULT_ROUNDS + 1), fed = 0;
    while (fed < n_feed && !strcmp(xsp_feed_topic(feed, fed), "xsell.catalog"))
        fed++;
    fed = XS_MAX(fed, slice);
    slice = (n_feed - fed) / FAULT_ROUNDS;
    xsp_feed_produce(feed, 0, fed);

    char bin[1024], bsset[512];
    snprintf(bin, sizeof(bin), "%s", xsp_bin("xsell-worker"));
    snprintf(bsset, sizeof(bsset), "kafka.bootstrap.servers=%s", bs);
    char *argv[] = {bin, "--set", bsset, "--state-dir", dir_b, "--group", "faults", "--set",
                    "topics.output=xsell.cross-sell.fault", "--set", "commit.interval.ms=20",
                    "--set", "http.address=", "--set", "log.progress.seconds=1",
                    /* families come from the catalog topic, which interleaves with
                     * the cart topic by arrival: lists reading them would depend on
                     * it (test_crash.c says more) */
                    "--set", "list.family_cap=0", "--set", "list.family_exclude=false", NULL};
    pid_t pid = xsp_spawn(argv, log);
    assert_true(xsp_wait_log(log, "partitions assigned", pid, 60000));
    int status = 0, round = 0, downs = 0, pushes = 0;
    bool ended = false;
    /* A bounded burst of faults, each right after a slice of input, then a
     * quiet tail in which the worker catches up by itself. */
    while (round < FAULT_ROUNDS && !ended) {
        int32_t broker = 1 + round % 3;
        size_t to = round == FAULT_ROUNDS - 1 ? n_feed : fed + slice;
        xsp_feed_produce(feed, fed, to);
        fed = to;
        switch (round % 4) {
        case 0:
            assert_int_equal(xs_devbroker_set_broker_down(db, broker, true), XS_OK);
            xsp_sleep_ms(1000);
            assert_int_equal(xs_devbroker_set_broker_down(db, broker, false), XS_OK);
            downs++;
            break;
        case 1:
            xs_devbroker_push_request_errors(db, 0 /* Produce */, 3, 7 /* REQUEST_TIMED_OUT */);
            pushes++;
            break;
        case 2:
            xs_devbroker_push_request_errors(db, 1 /* Fetch */, 3, 6 /* NOT_LEADER */);
            pushes++;
            break;
        default:
            xs_devbroker_push_request_errors(db, 8 /* OffsetCommit */, 3,
                                             15 /* COORDINATOR_NOT_AVAILABLE */);
            pushes++;
            break;
        }
        round++;
        ended = xsp_wait(pid, 700, &status);
    }
    for (int b = 1; b <= 3; b++)
        xs_devbroker_set_broker_down(db, b, false);
    xsp_feed_free(feed);
    /* the worker ran through every fault (it only stops on SIGTERM) */
    if (ended)
        fail_msg("the worker ended during the faults (status %d, log %s)", status, log);
    assert_int_equal(round, FAULT_ROUNDS);
    assert_true(downs >= 2);
    char done[64];
    snprintf(done, sizeof(done), "events=%d events_per_s", N_EVENTS);
    if (!xsp_wait_log(log, done, pid, 300000)) {
        kill(pid, SIGKILL);
        fail_msg("the worker did not apply every event within 300 s after the faults (log %s)",
                 log);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    if (!xsp_wait(pid, 120000, &status)) {
        kill(pid, SIGKILL);
        fail_msg("the worker did not stop within 120 s of SIGTERM (log %s)", log);
    }
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);

    xs_config_t *cfg = xst_worker_config(bs, dir_a, "faults-ref");
    if (xs_config_set(cfg, "topics.output", "xsell.cross-sell.ref", "test", errstr,
                      sizeof(errstr)) ||
        xs_config_set(cfg, "http.address", "", "test", errstr, sizeof(errstr)) ||
        xs_config_set(cfg, "list.family_cap", "0", "test", errstr, sizeof(errstr)) ||
        xs_config_set(cfg, "list.family_exclude", "false", "test", errstr, sizeof(errstr)))
        fail_msg("config: %s", errstr);
    xst_run_t ref = xst_run_worker_until_end(cfg);
    xs_config_destroy(cfg);
    assert_int_equal(ref.events, N_EVENTS);

    size_t la = 0, lb = 0;
    char *a = xsp_dump(dir_a, dump_a, &la);
    char *b = xsp_dump(dir_b, dump_b, &lb);
    xsp_assert_same_text("state dumps (reference vs faults)", a, la, b, lb);
    xsp_ids_t ids_ref = xsp_read_list_ids(bs, codec, "xsell.cross-sell.ref");
    xsp_ids_t ids_fault = xsp_read_list_ids(bs, codec, "xsell.cross-sell.fault");
    assert_int_equal(ids_ref.total, ref.lists);
    size_t missing = 0;
    for (size_t i = 0; i < ids_ref.n; i++)
        missing += !xsp_ids_has(&ids_fault, ids_ref.v[i]);
    fprintf(stderr,
            "faults: %d broker outages, %d request-error bursts; reference lists %zu, fault run "
            "%zu messages (%zu distinct), missing %zu; %.1f s\n",
            downs, pushes, ids_ref.n, ids_fault.total, ids_fault.n, missing,
            (xsp_now_ms() - t0) / 1e3);
    assert_int_equal(missing, 0);
    assert_int_equal(ids_fault.n, ids_ref.n);
    assert_int_equal(ids_fault.total, ids_fault.n);

    free(a);
    free(b);
    xsp_ids_free(&ids_ref);
    xsp_ids_free(&ids_fault);
    xs_codec_destroy(codec);
    xs_devbroker_destroy(db);
    xst_rmrf(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
