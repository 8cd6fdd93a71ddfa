/*
 * Crash test: exactly-once state and at-least-once, deterministic output
 * under SIGKILL.
 *
 * Input: the first 200,000 events of the UCI Online Retail data set (3,659
 * catalog updates, 196,341 cart events), on ONE input partition per topic
 * (user state is per partition and item state depends on how partitions
 * interleave, see DESIGN.md "Deterministic replay"). The producer
 * compresses with zstd in large batches so the whole input stays within
 * the mock broker's 5 MiB per partition. Output topics have 16 partitions
 * so the mock's retention keeps every list (checked: every output
 * partition is read from offset 0 without gaps).
 *
 *   reference run: an in-process worker consumes everything without
 *                  interruption (default cache) into state A, lists to
 *                  xsell.cross-sell.ref.
 *   crash run:     the xsell-worker binary on state B, lists to
 *                  xsell.cross-sell.crash, with a 1 MiB cache and a small
 *                  dirty-bytes bound (constant eviction and re-reads from
 *                  RocksDB), a 250 ms checkpoint interval, and a NEW
 *                  consumer group at every start, so Kafka has no committed
 *                  offset to fall back on: the only way to resume correctly
 *                  is to seek to the offsets stored in RocksDB. Each start
 *                  is SIGKILLed at a random moment (seeded; at least 7
 *                  kills that land mid-stream), then one start is stopped
 *                  with SIGTERM (must exit 0), then a last start runs to the
 *                  end (--until-end).
 * Both runs turn the product-family rule off (list.family_cap=0,
 * list.family_exclude=false): families come from the catalog topic, which
 * interleaves with the cart topic by arrival, not by event time, so lists
 * that read them would depend on that interleaving, which differs between an
 * in-process and a separate worker (stock flags and categories would too;
 * UCI has neither).
 * Asserts: `xsell inspect --dump` of A and B are byte-identical; every
 * list_id of the reference run appears in the crash run's output and the
 * crash run publishes no list_id the reference did not (determinism);
 * stored offsets advance monotonically across kills.
 * Runtime (2 cores): about 100 s in the normal build (80,000 events); the
 * ASan+UBSan build runs the same test on the first 40,000 events with at
 * least 3 mid-stream kills (7 in the normal build).
 * XS_CRASH_EVENTS overrides the count. On a real Kafka broker (ctest's
 * kafka_test_crash, XS_KAFKA_BOOTSTRAP_FILE) the same test runs on topics
 * and groups of its own (xstest.h).
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
#include <time.h>
#include <cmocka.h>

#include "xsproc.h"
#include "xstest.h"
#include "xsell/store.h"

#ifdef XS_ASAN
#define N_EVENTS_DEFAULT 40000 /* the sanitizer build: same test, 4x slower per event */
#else
#define N_EVENTS_DEFAULT 80000
#endif
#ifdef XS_ASAN
/* the sanitizer build: its purpose is memory errors, and each start costs seconds */
#define MIN_KILLS 3
#else
#define MIN_KILLS 7
#endif
#define OUT_PARTITIONS 16

static unsigned rng_state;

static unsigned rng_next(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) & 0xffffff;
}

static xst_broker_t *crash_broker(void)
{
    const char *names[] = {"xsell.clicks", "xsell.cart",           "xsell.catalog",
                           "xsell.dlq",    "xsell.cross-sell.ref", "xsell.cross-sell.crash"};
    const int partitions[] = {1, 1, 1, 1, OUT_PARTITIONS, OUT_PARTITIONS};
    return xst_broker_topics("crash", names, partitions, XS_ARRAY_SIZE(names));
}

static void set(xs_config_t *cfg, const char *k, const char *v)
{
    char errstr[512];
    if (xs_config_set(cfg, k, v, "test", errstr, sizeof(errstr)))
        fail_msg("config %s: %s", k, errstr);
}

/* Starts one crash-run worker; returns its pid. */
static pid_t start_worker(const char *bs, const char *dir, const char *topics_conf, int run,
                          bool until_end, const char *log)
{
    char name[32], group[256], output[300];
    snprintf(name, sizeof(name), "crash-%d", run);
    snprintf(group, sizeof(group), "%s", xst_group(name));
    snprintf(output, sizeof(output), "topics.output=%s", xst_topic("xsell.cross-sell.crash"));
    const char *args[] = {"--set",
                          output,
                          "--set",
                          "commit.interval.ms=250",
                          "--set",
                          "cache.max.bytes=1048576",
                          "--set",
                          "checkpoint.dirty.bytes=262144",
                          "--set",
                          "log.progress.seconds=0",
                          "--set",
                          "log.level=debug", /* checkpoint lines */
                          "--set",
                          "http.address=",
                          "--set",
                          "list.family_cap=0", /* see the top of the file */
                          "--set",
                          "list.family_exclude=false",
                          until_end ? "--until-end" : NULL,
                          NULL};
    return xsp_start_worker(bs, topics_conf, dir, group, args, log);
}

static void test_crash_recovery(void **state)
{
    (void)state;
    char errstr[1024] = "";
    int64_t t0 = xsp_now_ms();
    const char *data_dir = getenv("XS_DATA_DIR");
    assert_non_null(data_dir);
    char data[1024];
    snprintf(data, sizeof(data), "%s/uci-online-retail/online_retail.csv.gz", data_dir);
    const char *seed_env = getenv("XS_CRASH_SEED");
    rng_state = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    fprintf(stderr, "crash test: seed %u (XS_CRASH_SEED to repeat)\n", rng_state);

    const char *n_env = getenv("XS_CRASH_EVENTS");
    const uint64_t N_EVENTS = n_env ? strtoull(n_env, NULL, 10) : N_EVENTS_DEFAULT;
    xst_broker_t *db = crash_broker();
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    char *tmp = xst_tmpdir("crash");
    char *topics_conf = xst_topics_config(tmp);
    char dir_a[600], dir_b[600], log[600], dump_a[600], dump_b[600];
    snprintf(dir_a, sizeof(dir_a), "%s/state-ref", tmp);
    snprintf(dir_b, sizeof(dir_b), "%s/state-crash", tmp);
    snprintf(dump_a, sizeof(dump_a), "%s/dump-ref.txt", tmp);
    snprintf(dump_b, sizeof(dump_b), "%s/dump-crash.txt", tmp);

    uint64_t produced = xsp_produce_dataset(bs, "online-retail", data, N_EVENTS);
    assert_int_equal(produced, N_EVENTS);
    int64_t t_produced = xsp_now_ms();

    /* Reference: uninterrupted, in-process. */
    xs_config_t *cfg = xst_worker_config(bs, dir_a, "reference");
    set(cfg, "topics.output", xst_topic("xsell.cross-sell.ref"));
    set(cfg, "commit.interval.ms", "1000");
    set(cfg, "http.address", "");
    set(cfg, "list.family_cap", "0"); /* see the top of the file */
    set(cfg, "list.family_exclude", "false");
    xst_run_t ref = xst_run_worker_until_end(cfg);
    xs_config_destroy(cfg);
    assert_int_equal(ref.events, N_EVENTS); /* nothing lost to retention, nothing rejected */
    assert_int_equal(ref.dlq, 0);
    int64_t end_cart = xsp_stored_offset(dir_a, xst_topic("xsell.cart"), 0);
    int64_t end_catalog = xsp_stored_offset(dir_a, xst_topic("xsell.catalog"), 0);
    assert_int_equal(end_cart + end_catalog, N_EVENTS);
    int64_t t_ref = xsp_now_ms();

    /* Crash run. */
    int kills = 0, mid = 0, run = 0;
    int64_t last_off = -1;
    while (mid < MIN_KILLS) {
        snprintf(log, sizeof(log), "%s/worker-%d.log", tmp, run);
        pid_t pid = start_worker(bs, dir_b, topics_conf, run, false, log);
        if (!xsp_wait_log(log, "partitions assigned", pid, 60000))
            fail_msg("run %d: no partition assignment within 60 s (log %s)", run, log);
        /* Every fourth start dies during start-up (first fetch, producer
         * init, first checkpoint); the others after 1-3 checkpoints, at a
         * random moment of steady processing. Counting checkpoints (each
         * at most commit.interval.ms or checkpoint.dirty.bytes of input)
         * rather than waiting a fixed time keeps what one start consumes
         * bounded however fast the worker is, so the kills stay mid-stream. */
        bool startup = run % 4 == 3;
        int checkpoints = 1 + (int)(rng_next() % 3);
        if (!startup && !xsp_wait_log_count(log, "msg=\"checkpoint\"", checkpoints, pid, 60000))
            fail_msg("run %d: not %d checkpoints within 60 s (log %s)", run, checkpoints, log);
        int delay = startup ? (int)(rng_next() % 700) : (int)(rng_next() % 200);
        xsp_sleep_ms(delay);
        int status = 0;
        assert_false(xsp_wait(pid, 0, &status)); /* still running: not finished, not failed */
        assert_int_equal(kill(pid, SIGKILL), 0);
        assert_true(xsp_wait(pid, 30000, &status));
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
        kills++;
        int64_t off = xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0);
        assert_true(off >= last_off); /* a checkpoint is never undone */
        if (!startup && off > last_off && off < end_cart)
            mid++;
        else if (off >= end_cart)
            fail_msg("the input was fully processed after %d kills (%d mid-stream): "
                     "kills came too late",
                     kills, mid);
        if (startup)
            fprintf(stderr,
                    "crash test: run %d killed %d ms after assignment, stored cart "
                    "offset %lld\n",
                    run, delay, (long long)off);
        else
            fprintf(stderr,
                    "crash test: run %d killed %d ms after checkpoint %d, stored cart "
                    "offset %lld\n",
                    run, delay, checkpoints, (long long)off);
        last_off = off;
        run++;
    }

    /* Graceful stop: SIGTERM mid-stream is a final checkpoint and exit 0. */
    snprintf(log, sizeof(log), "%s/worker-%d.log", tmp, run);
    pid_t pid = start_worker(bs, dir_b, topics_conf, run, false, log);
    assert_true(xsp_wait_log(log, "partitions assigned", pid, 60000));
    xsp_sleep_ms(300);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    assert_true(xsp_wait(pid, 60000, &status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(xsp_wait_log(log, "status=ok", 0, 1000));
    int64_t off_term = xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0);
    assert_true(off_term >= last_off);
    fprintf(stderr, "crash test: run %d stopped by SIGTERM, exit 0, stored cart offset %lld\n", run,
            (long long)off_term);
    run++;

    /* Last start: to the end. */
    snprintf(log, sizeof(log), "%s/worker-%d.log", tmp, run);
    pid = start_worker(bs, dir_b, topics_conf, run, true, log);
    if (!xsp_wait(pid, 600000, &status))
        fail_msg("final run did not finish within 600 s (log %s)", log);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(xsp_stored_offset(dir_b, xst_topic("xsell.cart"), 0), end_cart);
    assert_int_equal(xsp_stored_offset(dir_b, xst_topic("xsell.catalog"), 0), end_catalog);
    int64_t t_crash = xsp_now_ms();

    /* Same state, byte for byte. */
    size_t la = 0, lb = 0;
    char *a = xsp_dump(dir_a, dump_a, &la);
    char *b = xsp_dump(dir_b, dump_b, &lb);
    assert_true(la > 100000);
    xsp_assert_same_text("state dumps (reference vs crash run)", a, la, b, lb);

    /* Every list of the reference run, and nothing else. */
    xsp_ids_t ids_ref = xsp_read_list_ids(bs, codec, xst_topic("xsell.cross-sell.ref"));
    xsp_ids_t ids_crash = xsp_read_list_ids(bs, codec, xst_topic("xsell.cross-sell.crash"));
    assert_int_equal(ids_ref.total, ref.lists);
    assert_int_equal(ids_ref.n, ids_ref.total); /* one list per trigger */
    size_t missing = 0, extra = 0;
    for (size_t i = 0; i < ids_ref.n; i++)
        missing += !xsp_ids_has(&ids_crash, ids_ref.v[i]);
    for (size_t i = 0; i < ids_crash.n; i++)
        extra += !xsp_ids_has(&ids_ref, ids_crash.v[i]);
    fprintf(stderr,
            "crash test: %d SIGKILLs (%d mid-stream) + 1 SIGTERM; reference lists %zu; crash-run "
            "messages %zu (%zu distinct, %zu republished); missing %zu, extra %zu; dump %zu "
            "bytes\n",
            kills, mid, ids_ref.n, ids_crash.total, ids_crash.n, ids_crash.total - ids_crash.n,
            missing, extra, la);
    fprintf(stderr,
            "crash test: produce %.1f s, reference %.1f s, crash runs %.1f s, checks %.1f s\n",
            (t_produced - t0) / 1e3, (t_ref - t_produced) / 1e3, (t_crash - t_ref) / 1e3,
            (xsp_now_ms() - t_crash) / 1e3);
    assert_int_equal(missing, 0);
    assert_int_equal(extra, 0);

    free(a);
    free(b);
    xsp_ids_free(&ids_ref);
    xsp_ids_free(&ids_crash);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    free(topics_conf);
    xst_rmrf(tmp);
    free(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_recovery),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
