/*
 * Fencing (include/xsell/changelog.h, C5; docs/SCALING.md, "Rebalancing"):
 * a worker that lost its partitions while paused must not write its older
 * state over the new owner's.
 *
 *   input:   the UCI data (clicks and cart on 2 partitions), in three
 *            slices of a third of the user events each;
 *   A and B: two xsell-worker processes in one group with the users
 *            changelog; A checkpoints only on revocation and at shutdown
 *            (commit.interval.ms 10 minutes: state not checkpointed when
 *            it is paused), B every 200 ms;
 *   pause:   slice 1 processed by both; A stopped with SIGSTOP; slice 2
 *            produced; B is given A's partitions once A's session times
 *            out (session.timeout.ms 6 s), restores them and checkpoints
 *            slices 1-2; then A continued with SIGCONT: the group tells it
 *            that its assignment was lost.
 *   end:     slice 3 produced, B stopped (SIGTERM).
 *
 * Asserts:
 *   - A stops with an error that says its partitions were lost (exit
 *     status not 0);
 *   - every changelog partition's offsets records (the last record of each
 *     committed checkpoint) never go back: a checkpoint of A after the
 *     pause would write A's older offsets (and profiles) after B's, and a
 *     restore would then take A's;
 *   - B processed every event from where the changelog had them, and a
 *     third worker C, on an empty disk, restores both partitions from the
 *     changelog and finds nothing left to do: its user profiles equal an
 *     uninterrupted in-process run's (`xsell inspect --dump`, apart from
 *     the last_list lines, as in test_changelog).
 *
 * Without the lost-assignment check, A checkpoints on revocation after
 * the pause and the offsets go back; the transaction's commit of the input
 * offsets to the group (KIP-447) refuses a checkpoint of A that was begun
 * before it noticed (the fence for a pause in the middle of a checkpoint).
 *
 * On the real broker only (kafka_test_fencing): the development broker's
 * group coordinator and transactions are not the behaviour under test.
 * XS_FENCING_EVENTS overrides the number of events.
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
#include "xsell/changelog.h"
#include "xsell/kafka_txn.h"
#include "xsell/store.h"

#define N_EVENTS_DEFAULT 9000
#define IN_PARTITIONS 2
#define OUT_PARTITIONS 2

static pid_t start_worker(const char *bs, const char *dir, const char *topics_conf,
                          const char *group, const char *commit_ms, bool until_end, const char *log)
{
    char output[300], commit[64];
    snprintf(output, sizeof(output), "topics.output=%s", xst_topic("xsell.cross-sell"));
    snprintf(commit, sizeof(commit), "commit.interval.ms=%s", commit_ms);
    const char *args[] = {"--set",
                          output,
                          "--set",
                          "changelog.enable=true",
                          "--set",
                          commit,
                          "--set",
                          "kafka.session.timeout.ms=6000",
                          "--set",
                          "kafka.heartbeat.interval.ms=500",
                          "--set",
                          "log.progress.seconds=0",
                          "--set",
                          "http.address=",
                          "--set",
                          "list.family_cap=0",
                          "--set",
                          "list.family_exclude=false",
                          until_end ? "--until-end" : NULL,
                          NULL};
    return xsp_start_worker(bs, topics_conf, dir, group, args, log);
}

/* Sum of the stored next offsets of the clicks and cart partitions. */
static int64_t stored_sum(const char *dir)
{
    int64_t sum = 0;
    for (int p = 0; p < IN_PARTITIONS; p++) {
        int64_t a = xsp_stored_offset(dir, xst_topic("xsell.clicks"), p);
        int64_t b = xsp_stored_offset(dir, xst_topic("xsell.cart"), p);
        sum += XS_MAX(a, 0) + XS_MAX(b, 0);
    }
    return sum;
}

/* Lines of log after byte `from` holding needle. */
static int count_after(const char *log, size_t from, const char *needle)
{
    size_t len = 0;
    char *text = xsp_read_file(log, &len);
    int n = 0;
    for (const char *s = text && from < len ? text + from : ""; (s = strstr(s, needle)); s++)
        n++;
    free(text);
    return n;
}

/* The offsets records of one changelog partition, in log order. */
typedef struct walk {
    int n_records;   /* offsets records */
    int n_backwards; /* records with an offset below the one before */
    int64_t last[2]; /* clicks, cart */
    char first_back[300];
} walk_t;

static int walk_record(void *opaque, const xs_msg_t *m)
{
    walk_t *w = opaque;
    if (m->key_len != strlen(XS_CHANGELOG_OFFSETS_KEY) ||
        memcmp(m->key, XS_CHANGELOG_OFFSETS_KEY, m->key_len) != 0)
        return 0;
    xs_offset_t offs[XS_CHANGELOG_MAX_TOPICS];
    char topics[XS_CHANGELOG_MAX_TOPICS][256];
    size_t n = 0;
    char e[256];
    assert_int_equal(
        xs_changelog_offsets_decode(m->value, m->value_len, offs, &n, topics, e, sizeof(e)), XS_OK);
    bool back = false;
    for (size_t i = 0; i < n; i++) {
        int t = strcmp(offs[i].topic, xst_topic("xsell.cart")) == 0;
        if (w->n_records && offs[i].offset < w->last[t]) {
            back = true;
            if (!w->first_back[0])
                snprintf(w->first_back, sizeof(w->first_back),
                         "%s [%d]: %lld after %lld (changelog offset %lld)", offs[i].topic,
                         (int)m->partition, (long long)offs[i].offset, (long long)w->last[t],
                         (long long)m->offset);
        }
        w->last[t] = offs[i].offset;
    }
    w->n_backwards += back;
    w->n_records++;
    return 0;
}

static void test_lost_partitions_write_nothing(void **state)
{
    (void)state;
    char errstr[1024] = "";
    char data[1024];
    snprintf(data, sizeof(data), "%s", xsp_data("uci-online-retail/online_retail.csv.gz"));
    const uint64_t n_events = xsp_env_u64("XS_FENCING_EVENTS", N_EVENTS_DEFAULT);

    static char *tmp;
    tmp = xst_tmpdir("fencing");
    const char *names[] = {"xsell.clicks", "xsell.cart", "xsell.catalog", "xsell.dlq",
                           "xsell.cross-sell"};
    const int partitions[] = {IN_PARTITIONS, IN_PARTITIONS, 1, 1, OUT_PARTITIONS};
    xst_broker_t *broker = xst_broker_topics("fencing", names, partitions, XS_ARRAY_SIZE(names));
    const char *bs = xst_bootstrap(broker);
    char group[256], cl_topic[300];
    snprintf(group, sizeof(group), "%s", xst_group("fencing"));
    snprintf(cl_topic, sizeof(cl_topic), "%s-users-changelog", group);

    char dir_a[700], dir_b[700], dir_c[700], dir_ref[700], log_a[700], log_b[700], log_c[700];
    char dump_ref[700], dump_c[700];
    snprintf(dir_a, sizeof(dir_a), "%s/state-a", tmp);
    snprintf(dir_b, sizeof(dir_b), "%s/state-b", tmp);
    snprintf(dir_c, sizeof(dir_c), "%s/state-c", tmp);
    snprintf(dir_ref, sizeof(dir_ref), "%s/state-ref", tmp);
    snprintf(log_a, sizeof(log_a), "%s/a.log", tmp);
    snprintf(log_b, sizeof(log_b), "%s/b.log", tmp);
    snprintf(log_c, sizeof(log_c), "%s/c.log", tmp);
    snprintf(dump_ref, sizeof(dump_ref), "%s/dump-ref.txt", tmp);
    snprintf(dump_c, sizeof(dump_c), "%s/dump-c.txt", tmp);
    char *topics_conf = xst_topics_config(tmp);

    xsp_feed_t *feed = xsp_feed_load(bs, "online-retail", data, n_events);
    size_t n = xsp_feed_count(feed);
    assert_int_equal(n, n_events);
    /* the slices: a third of the user events each (the catalog comes first) */
    size_t n_user = 0, s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++)
        n_user += strcmp(xsp_feed_topic(feed, i), xst_topic("xsell.catalog")) != 0;
    int64_t user_events_s2 = 0; /* clicks and cart events in slices 1-2 */
    for (size_t i = 0, u = 0; i < n; i++) {
        u += strcmp(xsp_feed_topic(feed, i), xst_topic("xsell.catalog")) != 0;
        if (!s1 && u == n_user / 3)
            s1 = i + 1;
        if (!s2 && u == 2 * n_user / 3) {
            s2 = i + 1;
            user_events_s2 = (int64_t)u;
        }
    }
    assert_true(s1 > 0 && s2 > s1);
    int status = 0;

    /* B, then A: one input partition each */
    pid_t pid_b = start_worker(bs, dir_b, topics_conf, group, "200", false, log_b);
    if (!xsp_wait_log(log_b, "partitions assigned", pid_b, 120000))
        fail_msg("B: no partition assignment within 120 s (log %s)", log_b);
    pid_t pid_a = start_worker(bs, dir_a, topics_conf, group, "600000", false, log_a);
    if (!xsp_wait_log(log_a, "partitions assigned", pid_a, 120000) ||
        !xsp_wait_log_count(log_b, "partitions assigned", 2, pid_b, 120000))
        fail_msg("no shared assignment within 120 s (logs %s, %s)", log_a, log_b);
    xsp_feed_produce(feed, 0, s1);
    if (!xsp_wait_log(log_a, "msg=\"ready\"", pid_a, 120000))
        fail_msg("A not ready within 120 s (log %s)", log_a);
    xsp_sleep_ms(2000); /* A has processed its share of slice 1, not checkpointed */

    /* A paused; B takes A's partitions over and checkpoints slices 1-2 */
    assert_int_equal(kill(pid_a, SIGSTOP), 0);
    size_t a_mark = 0;
    free(xsp_read_file(log_a, &a_mark));
    xsp_feed_produce(feed, s1, s2);
    if (!xsp_wait_log_count(log_b, "partitions assigned", 3, pid_b, 60000))
        fail_msg("B was not given A's partitions within 60 s (log %s)", log_b);
    int64_t at_b = 0;
    for (int i = 0; i < 600 && (at_b = stored_sum(dir_b)) < user_events_s2; i++)
        xsp_sleep_ms(100);
    fprintf(stderr,
            "fencing test: A paused; B owns all partitions, checkpointed %lld of %lld user "
            "events\n",
            (long long)at_b, (long long)user_events_s2);
    assert_int_equal(at_b, user_events_s2);

    /* A continued: told its assignment was lost, it stops without writing */
    assert_int_equal(kill(pid_a, SIGCONT), 0);
    int a_status = 0;
    bool a_ended = xsp_wait(pid_a, 60000, &a_status);
    if (!a_ended) {
        kill(pid_a, SIGKILL);
        xsp_wait(pid_a, 10000, &status);
    }
    int lost = count_after(log_a, a_mark, "partitions lost");
    fprintf(stderr,
            "fencing test: A after SIGCONT: ended %s (exit status %d), \"partitions lost\" in "
            "its log %d time(s)\n",
            a_ended ? "yes" : "no (killed after 60 s)",
            a_ended && WIFEXITED(a_status) ? WEXITSTATUS(a_status) : -1, lost);

    /* slice 3; B stopped */
    xsp_feed_produce(feed, s2, n);
    xsp_sleep_ms(1500);
    assert_int_equal(kill(pid_b, SIGTERM), 0);
    if (!xsp_wait(pid_b, 120000, &status))
        fail_msg("B did not stop within 120 s (log %s)", log_b);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    /* the offsets records never go back */
    int backwards = 0, records = 0;
    char first_back[300] = "";
    for (int p = 0; p < IN_PARTITIONS; p++) {
        walk_t w = {0};
        xs_kafka_txn_read_t r = {
            .bootstrap = bs,
            .topic = cl_topic,
            .partition = p,
            .read_committed = true,
            .timeout_ms = 30000,
            .fn = walk_record,
            .opaque = &w,
        };
        uint64_t nrec = 0, nbytes = 0;
        int64_t end = 0;
        assert_int_equal(
            xs_kafka_txn_read_partition(&r, &nrec, &nbytes, &end, errstr, sizeof(errstr)), XS_OK);
        backwards += w.n_backwards;
        records += w.n_records;
        if (!first_back[0] && w.first_back[0])
            snprintf(first_back, sizeof(first_back), "%s", w.first_back);
    }
    fprintf(stderr, "fencing test: changelog: %d offsets records, %d going back%s%s\n", records,
            backwards, first_back[0] ? ": first " : "", first_back);

    /* C on an empty disk, --until-end: restores, finds the input done */
    pid_t pid_c = start_worker(bs, dir_c, topics_conf, group, "200", true, log_c);
    if (!xsp_wait(pid_c, 300000, &status))
        fail_msg("C did not finish within 300 s (log %s)", log_c);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    assert_true(a_ended);
    assert_true(WIFEXITED(a_status) && WEXITSTATUS(a_status) != 0);
    assert_true(lost >= 1);
    assert_true(records > 2);
    assert_int_equal(backwards, 0);
    xst_run_reference(bs, dir_ref, "fencing-reference", xst_topic("xsell.cross-sell"), n_events);
    xsp_assert_same_profiles("fencing test", dir_ref, dump_ref, dir_c, dump_c, 100);

    xsp_feed_free(feed);
    xst_broker_free(broker);
    free(topics_conf);
    xst_rmrf(tmp);
    free(tmp);
}

int main(void)
{
    if (!xst_external()) { /* ctest: skipped */
        fprintf(stderr, "test_fencing: on the real broker only (kafka_test_fencing)\n");
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_partitions_write_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
