/*
 * A broker killed under the worker: a three-node Apache Kafka cluster
 * (tests/kafka/kafka.sh start --nodes 3), every topic replicated three
 * times (min.insync.replicas=2), the input on one partition per topic (as
 * in the crash test: the state is then deterministic).
 *
 *   fault run:  the xsell-worker binary consumes while the input arrives in
 *               three slices; after its first checkpoints the broker that
 *               leads the cart partition is SIGKILLed, the second slice is
 *               produced while it is down, then it is restarted, the third
 *               slice produced, and the worker stopped with SIGTERM once its
 *               stored offsets reach the end of the input.
 *   reference:  an in-process worker reads the same input without fault
 *               into another state directory and output topic.
 * Asserts: the worker was running through the kill and the restart, its
 * stored offsets never went back, `xsell inspect --dump` of both states is
 * byte-identical (nothing lost, nothing counted twice), and the fault run's
 * output holds every list_id of the reference exactly once (missing 0,
 * duplicated 0, extra 0). Prints the figures.
 *
 * Needs Java and the broker's jars (label kafka); XS_SOURCE_DIR locates
 * kafka.sh. XS_CLUSTER_EVENTS overrides the number of events.
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
#include <unistd.h>
#include <cmocka.h>

#include "xsproc.h"
#include "xstest.h"

#ifdef XS_ASAN
#define N_EVENTS_DEFAULT 20000
#else
#define N_EVENTS_DEFAULT 40000
#endif
#define OUT_PARTITIONS 6

static char kafka_dir[600];

/* Runs kafka.sh with args; returns its first output line (malloc'd) or fails. */
static char *kafka_sh(const char *args)
{
    const char *src = getenv("XS_SOURCE_DIR");
    assert_non_null(src);
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "bash '%s/tests/kafka/kafka.sh' %s --dir '%s'", src, args,
             kafka_dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[1024] = "";
    if (!fgets(line, sizeof(line), p))
        line[0] = 0;
    int st = pclose(p);
    if (st != 0)
        fail_msg("%s: exit status %d", cmd, st);
    line[strcspn(line, "\r\n")] = 0;
    return strdup(line);
}

static void set(xs_config_t *cfg, const char *k, const char *v)
{
    char errstr[512];
    if (xs_config_set(cfg, k, v, "test", errstr, sizeof(errstr)))
        fail_msg("config %s: %s", k, errstr);
}

static void test_broker_killed_mid_run(void **state)
{
    (void)state;
    char errstr[1024] = "";
    int64_t t0 = xsp_now_ms();
    const char *data_dir = getenv("XS_DATA_DIR");
    assert_non_null(data_dir);
    char data[1024];
    snprintf(data, sizeof(data), "%s/uci-online-retail/online_retail.csv.gz", data_dir);
    const char *n_env = getenv("XS_CLUSTER_EVENTS");
    const uint64_t n_events = n_env ? strtoull(n_env, NULL, 10) : N_EVENTS_DEFAULT;

    /* Static: a failed assertion jumps out of the test, and the leak
     * checker then still finds the directory's name reachable. */
    static char *tmp;
    tmp = xst_tmpdir("cluster");
    snprintf(kafka_dir, sizeof(kafka_dir), "%s/kafka", tmp);
    char args[128];
    snprintf(args, sizeof(args), "start --nodes 3 --owner %ld", (long)getpid());
    char *bs = kafka_sh(args);
    int64_t t_up = xsp_now_ms();
    fprintf(stderr, "cluster test: 3 brokers at %s (%.1f s)\n", bs, (t_up - t0) / 1e3);
    setenv("XS_KAFKA_BOOTSTRAP", bs, 1);
    setenv("XS_KAFKA_REPLICATION", "3", 1);
    const char *names[] = {"xsell.clicks", "xsell.cart",           "xsell.catalog",
                           "xsell.dlq",    "xsell.cross-sell.ref", "xsell.cross-sell.fault"};
    const int partitions[] = {1, 1, 1, 1, OUT_PARTITIONS, OUT_PARTITIONS};
    xst_broker_t *broker = xst_broker_topics("cluster", names, partitions, XS_ARRAY_SIZE(names));
    xs_topic_info_t cart;
    /* A node that has not caught up with the new topics yet may fail the
     * request: retry for a while. */
    for (int i = 0;; i++) {
        if (xs_kafka_describe_topic(bs, NULL, 0, xst_topic("xsell.cart"), 10000, &cart, errstr,
                                    sizeof(errstr)) == XS_OK &&
            cart.partitions == 1 && cart.leader > 0)
            break;
        if (i == 50)
            fail_msg("describe %s: %s", xst_topic("xsell.cart"), errstr);
        xsp_sleep_ms(200);
    }
    assert_int_equal(cart.replication, 3);
    assert_true(cart.leader >= 1 && cart.leader <= 3);

    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    char dir_a[700], dir_b[700], log[700], dump_a[700], dump_b[700];
    snprintf(dir_a, sizeof(dir_a), "%s/state-ref", tmp);
    snprintf(dir_b, sizeof(dir_b), "%s/state-fault", tmp);
    snprintf(log, sizeof(log), "%s/worker.log", tmp);
    snprintf(dump_a, sizeof(dump_a), "%s/dump-ref.txt", tmp);
    snprintf(dump_b, sizeof(dump_b), "%s/dump-fault.txt", tmp);
    char *topics_conf = xst_topics_config(tmp);

    xsp_feed_t *feed = xsp_feed_load(bs, "online-retail", data, n_events);
    size_t n = xsp_feed_count(feed);
    assert_int_equal(n, n_events);
    int64_t end_cart = 0, end_catalog = 0;
    for (size_t i = 0; i < n; i++) {
        end_cart += strcmp(xsp_feed_topic(feed, i), xst_topic("xsell.cart")) == 0;
        end_catalog += strcmp(xsp_feed_topic(feed, i), xst_topic("xsell.catalog")) == 0;
    }
    size_t s1 = n / 3, s2 = 2 * n / 3;
    xsp_feed_produce(feed, 0, s1);

    /* Fault run. */
    char bsset[600], output[300];
    snprintf(bsset, sizeof(bsset), "kafka.bootstrap.servers=%s", bs);
    snprintf(output, sizeof(output), "topics.output=%s", xst_topic("xsell.cross-sell.fault"));
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s", xsp_bin("xsell-worker"));
    char *argv[] = {bin,
                    "--config",
                    topics_conf,
                    "--set",
                    bsset,
                    "--state-dir",
                    dir_b,
                    "--group",
                    (char *)xst_group("fault"),
                    "--set",
                    output,
                    "--set",
                    "commit.interval.ms=250",
                    "--set",
                    "log.progress.seconds=0",
                    "--set",
                    "http.address=",
                    "--set",
                    "list.family_cap=0", /* as in test_crash: see below */
                    "--set",
                    "list.family_exclude=false",
                    NULL};
    pid_t pid = xsp_spawn(argv, log);
    int status = 0;
    /* Kill once the worker has checkpointed some cart events (the state
     * directory is complete once partitions are assigned). */
    if (!xsp_wait_log(log, "partitions assigned", pid, 120000))
        fail_msg("no partition assignment within 120 s (log %s)", log);
    int64_t off_kill = -1;
    for (int i = 0; i < 1200 && off_kill <= 0; i++) {
        if (xsp_wait(pid, 0, &status))
            fail_msg("the worker ended (status %d) before the kill (log %s)", status, log);
        xsp_sleep_ms(100);
        off_kill = xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0);
    }
    if (off_kill <= 0)
        fail_msg("no cart offset checkpointed within 120 s (log %s)", log);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "kill %d", cart.leader);
    free(kafka_sh(cmd));
    int64_t t_kill = xsp_now_ms();
    fprintf(stderr,
            "cluster test: broker %d (leader of the cart partition) SIGKILLed, worker's "
            "stored cart offset %lld of %lld\n",
            cart.leader, (long long)off_kill, (long long)end_cart);
    xsp_feed_produce(feed, s1, s2);          /* while the broker is down */
    assert_false(xsp_wait(pid, 0, &status)); /* the worker goes on */
    xsp_sleep_ms(2000);
    fprintf(stderr,
            "cluster test: %.1f s after the kill, second slice produced, worker's stored "
            "cart offset %lld\n",
            (xsp_now_ms() - t_kill) / 1e3,
            (long long)xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0));
    snprintf(cmd, sizeof(cmd), "restart %d", cart.leader);
    free(kafka_sh(cmd));
    int64_t off_restart = xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0);
    fprintf(stderr,
            "cluster test: broker %d restarted %.1f s later, worker's stored cart offset "
            "%lld\n",
            cart.leader, (xsp_now_ms() - t_kill) / 1e3, (long long)off_restart);
    assert_true(off_restart >= off_kill);
    xsp_feed_produce(feed, s2, n);
    assert_false(xsp_wait(pid, 0, &status)); /* still running through the restart */

    int64_t deadline = xsp_now_ms() + 300000;
    while (xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0) < end_cart ||
           xsp_stored_offset(dir_b, xst_topic("xsell.catalog"), 0) < end_catalog) {
        if (xsp_wait(pid, 0, &status))
            fail_msg("the worker ended (status %d) before the end of the input (log %s)", status,
                     log);
        if (xsp_now_ms() > deadline)
            fail_msg("the worker did not reach the end of the input in 300 s (log %s)", log);
        xsp_sleep_ms(100);
    }
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_true(xsp_wait(pid, 60000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0), end_cart);
    int64_t t_fault = xsp_now_ms();

    /* Reference: the same input, no fault, in-process. */
    xs_config_t *cfg = xst_worker_config(bs, dir_a, "reference");
    set(cfg, "topics.output", xst_topic("xsell.cross-sell.ref"));
    /* The product-family rule is off in both runs: families come from the
     * catalog topic, which interleaves with the cart topic by arrival, not by
     * event time, so the lists (and the last-list fingerprints the profiles
     * keep) would depend on that interleaving (docs/GUARANTEES.md, known limit). */
    set(cfg, "list.family_cap", "0");
    set(cfg, "list.family_exclude", "false");
    xst_run_t ref = xst_run_worker_until_end(cfg);
    xs_config_destroy(cfg);
    assert_int_equal(ref.events, n_events);
    assert_int_equal(ref.dlq, 0);

    size_t la = 0, lb = 0;
    char *a = xsp_dump(dir_a, dump_a, &la);
    char *b = xsp_dump(dir_b, dump_b, &lb);
    assert_true(la > 10000);
    bool same = la == lb && memcmp(a, b, la) == 0;

    xsp_ids_t ids_ref = xsp_read_list_ids(bs, codec, xst_topic("xsell.cross-sell.ref"));
    xsp_ids_t ids_fault = xsp_read_list_ids(bs, codec, xst_topic("xsell.cross-sell.fault"));
    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < ids_ref.n; i++)
        missing += !xsp_ids_has(&ids_fault, ids_ref.v[i]);
    for (size_t i = 0; i < ids_fault.n; i++)
        extra += !xsp_ids_has(&ids_ref, ids_fault.v[i]);
    size_t duplicated = ids_fault.total - ids_fault.n;
    fprintf(stderr,
            "cluster test: events %llu, lists %llu (reference) / %zu messages, %zu distinct "
            "(fault run); dump identical: %s (%zu bytes); list_ids missing %zu, duplicated %zu, "
            "extra %zu\n",
            (unsigned long long)ref.events, (unsigned long long)ref.lists, ids_fault.total,
            ids_fault.n, same ? "yes" : "NO", la, missing, duplicated, extra);
    fprintf(stderr, "cluster test: start %.1f s, fault run %.1f s, reference and checks %.1f s\n",
            (t_up - t0) / 1e3, (t_fault - t_up) / 1e3, (xsp_now_ms() - t_fault) / 1e3);
    xsp_assert_same_text("state dumps (reference vs fault run)", a, la, b, lb);
    assert_int_equal(ids_ref.total, ref.lists);
    assert_int_equal(ids_ref.n, ids_ref.total);
    assert_int_equal(missing, 0);
    assert_int_equal(duplicated, 0);
    assert_int_equal(extra, 0);

    free(a);
    free(b);
    xsp_ids_free(&ids_ref);
    xsp_ids_free(&ids_fault);
    xsp_feed_free(feed);
    xs_codec_destroy(codec);
    xst_broker_free(broker);
    free(kafka_sh("stop"));
    free(bs);
    free(topics_conf);
    xst_rmrf(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broker_killed_mid_run),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
