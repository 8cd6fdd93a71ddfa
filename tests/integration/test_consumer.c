/*
 * Consumer test: the watermarks read at assignment, partition by partition.
 *
 * A 3-broker development cluster (leaders spread over the brokers, so the
 * watermark requests go to several brokers) and a topic of 8 partitions
 * holding 0, 4, 7, ..., 22 messages. The consumer runs group-less with
 * partition-EOF events off, so it can only know it has caught up from the
 * high watermarks it read when the partitions were assigned. Asserts: the
 * lag right after assignment is every message after the start offsets;
 * xs_consumer_caught_up() stays false until the very last message is
 * consumed and turns true with it (a watermark given to the wrong
 * partition, or one missing, breaks one or the other); every message is
 * consumed once. Once from the beginning, once from offset 1 of every
 * non-empty partition (set by the assignment hook). Runtime: a few seconds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "xstest.h"

#define N_PARTS 8
#define TOPIC "wm"

static int count_of(int32_t p)
{
    return p == 0 ? 0 : 3 * p + 1;
}

static void start_at_one(void *opaque, const char *topic, int32_t partition, int64_t *offset)
{
    (void)opaque;
    (void)topic;
    if (count_of(partition) > 0)
        *offset = 1;
}

static void consume_all(const char *bootstrap, bool from_one)
{
    char errstr[512] = "";
    const char *topics[] = {TOPIC};
    const xs_kv_t conf[] = {{"enable.partition.eof", "false"}};
    xs_consumer_opts_t o = {0};
    o.bootstrap = bootstrap;
    o.topics = topics;
    o.n_topics = 1;
    o.start_offset = XS_OFFSET_BEGINNING;
    o.conf = conf;
    o.n_conf = 1;
    if (from_one)
        o.hooks.on_assign = start_at_one;
    xs_consumer_t *c = xs_consumer_new(&o, errstr, sizeof(errstr));
    if (!c)
        fail_msg("consumer: %s", errstr);

    int expect[N_PARTS], total = 0;
    for (int32_t p = 0; p < N_PARTS; p++) {
        expect[p] = count_of(p) - (from_one && count_of(p) > 0 ? 1 : 0);
        total += expect[p];
    }
    assert_int_equal(xs_consumer_assigned_count(c), N_PARTS);
    assert_int_equal(xs_consumer_lag(c), total);
    assert_false(xs_consumer_caught_up(c));

    int got[N_PARTS] = {0}, n = 0, idle = 0;
    while (n < total && idle < 100) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 100, &m, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF) {
            idle++;
            continue;
        }
        if (err)
            fail_msg("poll: %s", errstr);
        idle = 0;
        assert_true(m.partition >= 0 && m.partition < N_PARTS);
        assert_int_equal(m.offset, count_of(m.partition) - expect[m.partition] + got[m.partition]);
        got[m.partition]++;
        n++;
        if (n < total)
            assert_false(xs_consumer_caught_up(c));
    }
    assert_int_equal(n, total);
    for (int32_t p = 0; p < N_PARTS; p++)
        assert_int_equal(got[p], expect[p]);
    assert_true(xs_consumer_caught_up(c));
    assert_int_equal(xs_consumer_lag(c), 0);
    xs_consumer_destroy(c);
}

static void test_watermarks_per_partition(void **state)
{
    (void)state;
    char errstr[512] = "";
    xs_devbroker_t *db = xs_devbroker_new(3, errstr, sizeof(errstr));
    if (!db)
        fail_msg("devbroker: %s", errstr);
    if (xs_devbroker_create_topic(db, TOPIC, N_PARTS, errstr, sizeof(errstr)))
        fail_msg("create topic: %s", errstr);
    const char *bs = xs_devbroker_bootstraps(db);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    if (!p)
        fail_msg("producer: %s", errstr);
    for (int32_t part = 0; part < N_PARTS; part++)
        for (int i = 0; i < count_of(part); i++) {
            char v[32];
            int len = snprintf(v, sizeof(v), "%d/%d", part, i);
            if (xs_producer_send(p, TOPIC, part, NULL, 0, v, (size_t)len, NULL, 0, errstr,
                                 sizeof(errstr)))
                fail_msg("send: %s", errstr);
        }
    if (xs_producer_flush(p, 10000, errstr, sizeof(errstr)))
        fail_msg("flush: %s", errstr);
    xs_producer_destroy(p);

    consume_all(bs, false);
    consume_all(bs, true);
    xs_devbroker_destroy(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watermarks_per_partition),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
