/*
 * Adversarial-input test: memory stays within the configured budget.
 *
 * Input on 8-partition topics: a CartEvent with 100,000 lines (1.4 MB),
 * ClickEvents whose event_id, user_id or item_id is a 1,000,000-byte
 * string, then one PRODUCT_VIEW from each of 1,000,000 distinct users
 * (200,000 in the sanitizer build, where each event costs ~4x more).
 * The xsell-worker binary runs with a 32 MiB cache budget, 8 MiB dirty
 * bound, 16 MiB librdkafka queues and 8 MiB RocksDB write buffers; the
 * test samples its VmRSS (/proc/<pid>/status) every 100 ms.
 * Asserts: the worker exits 0 with every user applied and the 4 hostile
 * messages dead-lettered; peak RSS stays under the budget below (the
 * configured caches and queues plus a fixed allowance for code,
 * allocator and RocksDB/librdkafka internals); and RSS does not grow with
 * the number of users: the peak of the last quarter of the run (counted
 * from the partition assignment: the group join before it is idle) is
 * within 48 MiB of the peak of the second quarter (a per-user leak of even
 * 100 bytes would add ~75 MiB).
 * Runtime: about 90-120 s (normal build).
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
#include "xsell/store.h"

#ifdef XS_ASAN
#define N_USERS 200000
#define RSS_BUDGET_MB 900 /* ASan's shadow memory and quarantine */
#else
#define N_USERS 1000000
/* 32 cache + 16 consumer queue + 16 producer queue + 5 x 2 x 8 memtables
 * + ~100 fixed (code, RocksDB block cache and table readers, librdkafka) */
#define RSS_BUDGET_MB 256
#endif
#define T0 INT64_C(1704067200000)
#define HUGE_ID 1000000

static int count_user(void *opaque, const void *key, size_t key_len, const void *val,
                      size_t val_len)
{
    (void)key;
    (void)key_len;
    (void)val;
    (void)val_len;
    (*(uint64_t *)opaque)++;
    return 0;
}

static void test_adversarial_memory(void **state)
{
    (void)state;
    char errstr[1024] = "";
    int64_t t0 = xsp_now_ms();
    xs_devbroker_t *db = xst_devbroker(8);
    const char *bs = xs_devbroker_bootstraps(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    static const xs_kv_t pconf[] = {{"message.max.bytes", "20000000"},
                                    {"compression.codec", "zstd"},
                                    {"linger.ms", "100"},
                                    {"batch.num.messages", "1000000"},
                                    {"batch.size", "50000000"}};
    xs_producer_t *p = xs_producer_new(bs, pconf, XS_ARRAY_SIZE(pconf), errstr, sizeof(errstr));
    if (!p)
        fail_msg("producer: %s", errstr);
    char *dir = xst_tmpdir("adversarial");
    char log[600];
    snprintf(log, sizeof(log), "%s/worker.log", dir);
    xs_event_t ev;

    /* A 100,000-line cart. */
    xst_cart_event(&ev, "huge-cart", "hoarder", XS_CART_ADD, T0, NULL);
    for (int i = 0; i < 100000; i++) {
        char item[16];
        snprintf(item, sizeof(item), "h-%d", i);
        assert_int_equal(xs_event_add_line(&ev, item, 1, 1.0, true), XS_OK);
    }
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    /* Megabyte ids. */
    char *huge = malloc(HUGE_ID + 1);
    assert_non_null(huge);
    memset(huge, 'x', HUGE_ID);
    huge[HUGE_ID] = '\0';
    xst_click_event(&ev, huge, "u-huge-event", XS_CLICK_PRODUCT_VIEW, T0, "it-1", NULL);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    xst_click_event(&ev, "e-huge-user", huge, XS_CLICK_PRODUCT_VIEW, T0, "it-1", NULL);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    xst_click_event(&ev, "e-huge-item", "u-huge-item", XS_CLICK_PRODUCT_VIEW, T0, huge, NULL);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    free(huge);
    /* Distinct users. */
    for (int i = 0; i < N_USERS; i++) {
        char id[32], user[32], item[32];
        snprintf(id, sizeof(id), "e-%d", i);
        snprintf(user, sizeof(user), "u-%d", i);
        snprintf(item, sizeof(item), "it-%d", i % 1000);
        xst_click_event(&ev, id, user, XS_CLICK_PRODUCT_VIEW, T0 + i, item, NULL);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    if (xs_producer_flush(p, 120000, errstr, sizeof(errstr)))
        fail_msg("flush: %s", errstr);
    xs_producer_destroy(p);
    int64_t t_produced = xsp_now_ms();

    char bin[1024], bsset[512];
    snprintf(bin, sizeof(bin), "%s", xsp_bin("xsell-worker"));
    snprintf(bsset, sizeof(bsset), "kafka.bootstrap.servers=%s", bs);
    char *argv[] = {bin,
                    "--set",
                    bsset,
                    "--state-dir",
                    dir,
                    "--group",
                    "adversarial",
                    "--set",
                    "cache.max.bytes=33554432",
                    "--set",
                    "checkpoint.dirty.bytes=8388608",
                    "--set",
                    "kafka.queued.max.messages.kbytes=16384",
                    "--set",
                    "kafka.queue.buffering.max.kbytes=16384",
                    "--set",
                    "rocksdb.write_buffer_size=8388608",
                    "--set",
                    "rocksdb.max_write_buffer_number=2",
                    "--set",
                    "http.address=",
                    "--set",
                    "log.progress.seconds=2",
                    "--until-end",
                    NULL};
#ifdef XS_ASAN
    /* ASan keeps freed blocks in a quarantine (256 MiB by default) before
     * reuse, which would look like growth: keep it small for this run. */
    {
        char opts[1024];
        const char *old = getenv("ASAN_OPTIONS");
        snprintf(opts, sizeof(opts), "%s%squarantine_size_mb=16", old ? old : "",
                 old && *old ? ":" : "");
        setenv("ASAN_OPTIONS", opts, 1);
    }
#endif
    pid_t pid = xsp_spawn(argv, log);
    long *samples = NULL;
    size_t n = 0, cap = 0;
    int status = 0;
    bool assigned = false;
    while (!xsp_wait(pid, 100, &status)) {
        long kb = xsp_rss_kb(pid);
        if (kb < 0)
            continue;
        /* the quarters count from the assignment: the group join (~3 s)
         * before it would otherwise be a good part of a fast run */
        if (!assigned) {
            char *text = xsp_read_file(log, NULL);
            assigned = text && strstr(text, "partitions assigned");
            free(text);
            if (!assigned)
                continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            samples = realloc(samples, cap * sizeof(*samples));
            assert_non_null(samples);
        }
        samples[n++] = kb;
        if (xsp_now_ms() - t0 > 580000) {
            kill(pid, SIGKILL);
            fail_msg("worker did not finish in time (log %s)", log);
        }
    }
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("worker exited %d (log %s)", WEXITSTATUS(status), log);
    assert_true(n >= 8);
    long peak = 0, q2 = 0, q4 = 0;
    for (size_t i = 0; i < n; i++) {
        peak = samples[i] > peak ? samples[i] : peak;
        if (i >= n / 4 && i < n / 2 && samples[i] > q2)
            q2 = samples[i];
        if (i >= 3 * n / 4 && samples[i] > q4)
            q4 = samples[i];
    }
    char *text = xsp_read_file(log, NULL);
    assert_non_null(text);
    char want[96];
    snprintf(want, sizeof(want), "msg=\"worker stopped\" events=%d ", N_USERS);
    if (!strstr(text, want))
        fail_msg("worker log lacks '%s' (log %s)", want, log);
    assert_non_null(strstr(strstr(text, want), " dlq=4 "));
    free(text);
    uint64_t users = 0;
    xs_store_t *s = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open: %s", errstr);
    assert_int_equal(xs_store_iterate(s, XS_CF_USERS, count_user, &users, errstr, sizeof(errstr)),
                     XS_OK);
    xs_store_close(s);
    fprintf(stderr,
            "adversarial: %d users (+ 100k-line cart, 3 megabyte ids dead-lettered), %llu "
            "profiles stored; RSS peak %ld MiB (budget %d), 2nd-quarter peak %ld MiB, "
            "last-quarter peak %ld MiB; produce %.1f s, worker %.1f s\n",
            N_USERS, (unsigned long long)users, peak / 1024, RSS_BUDGET_MB, q2 / 1024, q4 / 1024,
            (t_produced - t0) / 1e3, (xsp_now_ms() - t_produced) / 1e3);
    assert_int_equal(users, N_USERS);
    assert_true(peak / 1024 <= RSS_BUDGET_MB);
    assert_true(q4 - q2 <= 48 * 1024);

    free(samples);
    xs_codec_destroy(codec);
    xs_devbroker_destroy(db);
    xst_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adversarial_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
