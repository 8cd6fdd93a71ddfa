/*
 * The worker against a real Apache Kafka broker that loses input or goes
 * away (tests/kafka/kafka.sh starts a single-node KRaft broker of its own
 * here; without Java or the cached jars the tests are skipped, saying so,
 * and the program exits with status 77, which ctest reports as skipped).
 *
 * test_input_lost_to_retention: 1,000 cart events consumed and checkpointed;
 * 2,000 more produced; DeleteRecords moves the low watermark to 2,500 (as
 * retention would), so 1,500 of the events were never consumed.
 *   - default input.offset.out_of_range=fail: the worker stops with exit
 *     status 5, logs msg="input lost" ... lost=1500 policy=fail, and stores
 *     nothing past offset 1000;
 *   - skip: it logs lost=1500 policy=skip, counts
 *     xsell_input_lost_messages_total{topic=...,partition="0"} 1500, consumes
 *     the 500 events left, /readyz 200, and stores offset 3000.
 *
 * test_broker_unreachable: the broker is killed (SIGKILL);
 *   - a worker started while the broker is down: a warning
 *     msg="kafka brokers unreachable" and /readyz 503 saying so (not
 *     "catching up after assignment"); the broker restarted:
 *     msg="kafka brokers reachable", /readyz 200, every event consumed, exit
 *     0 on SIGTERM;
 *   - the broker killed again, `--until-end` with
 *     broker.unreachable.timeout.ms=6000: the warning, /readyz 503 saying so,
 *     and exit status 4 with the reason.
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

#define T0 INT64_C(1704067200000)

static char kafka_sh[1024], kafka_dir[600], bootstrap[512];
static bool have_kafka;

/* Runs kafka.sh CMD for our broker; its stdout into out (may be NULL). */
static int kafka(const char *cmd, char *out, size_t out_size)
{
    char line[4096];
    snprintf(line, sizeof(line), "bash '%s' %s --dir '%s' 2>>'%s/kafka-sh.log'", kafka_sh, cmd,
             kafka_dir, kafka_dir);
    FILE *p = popen(line, "r");
    if (!p)
        return -1;
    char buf[512] = "";
    if (!fgets(buf, sizeof(buf), p))
        buf[0] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (out)
        snprintf(out, out_size, "%s", buf);
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("XS_SOURCE_DIR");
    snprintf(kafka_sh, sizeof(kafka_sh), "%s/tests/kafka/kafka.sh", src ? src : ".");
    char *d = xst_tmpdir("broker-kafka");
    snprintf(kafka_dir, sizeof(kafka_dir), "%s", d);
    free(d);
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "start --owner %d", (int)getpid());
    if (access(kafka_sh, R_OK) != 0 || system("command -v java >/dev/null 2>&1") != 0 ||
        kafka(cmd, bootstrap, sizeof(bootstrap)) != 0 || !bootstrap[0]) {
        char tail[800];
        snprintf(tail, sizeof(tail), "tail -5 '%s/kafka-sh.log' >&2", kafka_dir);
        if (system(tail) != 0)
            fprintf(stderr, "(no kafka.sh log)\n");
        fprintf(stderr, "SKIPPED: no real Kafka broker (needs Java and tests/kafka/kafka.sh)\n");
        return 0;
    }
    have_kafka = true;
    setenv("XS_KAFKA_BOOTSTRAP", bootstrap, 1);
    fprintf(stderr, "real Kafka broker at %s\n", bootstrap);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (have_kafka)
        kafka("stop", NULL, 0);
    xst_rmrf(kafka_dir);
    return 0;
}

static void produce_carts(xs_producer_t *p, xs_codec_t *codec, int from, int to)
{
    char errstr[256];
    for (int i = from; i < to; i++) {
        char id[32], user[32], item[32];
        snprintf(id, sizeof(id), "add-%d", i);
        snprintf(user, sizeof(user), "u-%d", i % 97);
        snprintf(item, sizeof(item), "i-%d", i % 31);
        const char *one[] = {item, NULL};
        xs_event_t ev;
        xst_cart_event(&ev, id, user, XS_CART_ADD, T0 + i * 1000, one);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    assert_int_equal(xs_producer_flush(p, 30000, errstr, sizeof(errstr)), XS_OK);
}

typedef struct run {
    char state[700], cfg[700], log[700], port[700];
} run_t;

/* Starts xsell-worker with the test's topics, extra args (NULL-terminated). */
static pid_t worker(const run_t *r, const char *group, ...)
{
    char *argv[40];
    int n = 0;
    argv[n++] = (char *)xsp_bin("xsell-worker");
    argv[n++] = "--config";
    argv[n++] = (char *)r->cfg;
    argv[n++] = "--bootstrap";
    argv[n++] = bootstrap;
    argv[n++] = "--state-dir";
    argv[n++] = (char *)r->state;
    argv[n++] = "--group";
    argv[n++] = (char *)xst_group(group);
    argv[n++] = "--set";
    argv[n++] = "log.progress.seconds=0";
    va_list ap;
    va_start(ap, group);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL && n < 38;)
        argv[n++] = (char *)a;
    va_end(ap);
    argv[n] = NULL;
    unlink(r->log);
    return xsp_spawn(argv, r->log);
}

static int exit_status(pid_t pid, int timeout_ms)
{
    int st = 0;
    if (!xsp_wait(pid, timeout_ms, &st)) {
        kill(pid, SIGKILL);
        xsp_wait(pid, 5000, &st);
        fail_msg("the worker did not stop within %d ms", timeout_ms);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* GET http://<port file>/path into a new string (curl). */
static char *http_get(const run_t *r, const char *path, int *status)
{
    size_t len = 0;
    char *addr = xsp_read_file(r->port, &len);
    assert_non_null(addr);
    addr[strcspn(addr, "\r\n")] = 0;
    char cmd[1024], out[800];
    snprintf(out, sizeof(out), "%s.http", r->log);
    snprintf(cmd, sizeof(cmd), "curl -s -o '%s' -w '%%{http_code}' 'http://%s%s'", out, addr, path);
    free(addr);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char code[16] = "";
    if (!fgets(code, sizeof(code), p))
        code[0] = 0;
    pclose(p);
    *status = atoi(code);
    char *body = xsp_read_file(out, &len);
    return body ? body : strdup("");
}

static void run_init(run_t *r, const char *dir, const char *name)
{
    snprintf(r->state, sizeof(r->state), "%s/state", dir);
    snprintf(r->log, sizeof(r->log), "%s/%s.log", dir, name);
    snprintf(r->port, sizeof(r->port), "%s/%s.port", dir, name);
    char *cfg = xst_topics_config(dir);
    snprintf(r->cfg, sizeof(r->cfg), "%s", cfg);
    free(cfg);
}

static void must_log(const run_t *r, const char *needle)
{
    size_t len = 0;
    char *log = xsp_read_file(r->log, &len);
    if (!log || !strstr(log, needle))
        fail_msg("no '%s' in %s:\n%s", needle, r->log, log ? log : "(none)");
    free(log);
}

static void test_input_lost_to_retention(void **state)
{
    (void)state;
    if (!have_kafka)
        skip();
    char errstr[512] = "";
    xst_broker_t *b = xst_broker("retention", 1);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    xs_producer_t *p = xs_producer_new(xst_bootstrap(b), NULL, 0, errstr, sizeof(errstr));
    assert_non_null(codec);
    assert_non_null(p);
    char *dir = xst_tmpdir("retention");
    const char *cart = xst_topic("xsell.cart");
    run_t r;

    produce_carts(p, codec, 0, 1000);
    run_init(&r, dir, "first");
    pid_t pid = worker(&r, "g", "--set", "http.address=", "--until-end", NULL);
    assert_int_equal(exit_status(pid, 120000), 0);
    assert_int_equal(xsp_stored_offset(r.state, cart, 0), 1000);

    produce_carts(p, codec, 1000, 3000);
    if (xs_kafka_delete_records(bootstrap, NULL, 0, cart, 0, 2500, 30000, errstr, sizeof(errstr)))
        fail_msg("%s", errstr);
    fprintf(stderr, "stored offset 1000, records before 2500 deleted, high watermark 3000\n");

    run_init(&r, dir, "fail");
    pid = worker(&r, "g", "--set", "http.address=", "--until-end", NULL);
    int rc = exit_status(pid, 120000);
    fprintf(stderr, "policy fail: exit status %d\n", rc);
    assert_int_equal(rc, 5);
    must_log(&r, "msg=\"input lost\"");
    must_log(&r, "offset=1000 low_watermark=2500 lost=1500 policy=fail");
    assert_int_equal(xsp_stored_offset(r.state, cart, 0), 1000);

    run_init(&r, dir, "skip");
    char port_set[800];
    snprintf(port_set, sizeof(port_set), "http.port.file=%s", r.port);
    pid = worker(&r, "g", "--set", "input.offset.out_of_range=skip", "--http", "127.0.0.1:0",
                 "--set", port_set, NULL);
    int status = 0;
    char *body = NULL;
    for (int i = 0; i < 600 && status != 200; i++) {
        xsp_sleep_ms(100);
        if (access(r.port, R_OK) != 0)
            continue;
        free(body);
        body = http_get(&r, "/readyz", &status);
    }
    fprintf(stderr, "policy skip: /readyz %d %s\n", status, body ? body : "");
    free(body);
    assert_int_equal(status, 200);
    body = http_get(&r, "/metrics", &status);
    char want[400];
    snprintf(want, sizeof(want),
             "xsell_input_lost_messages_total{topic=\"%s\",partition=\"0\"} 1500", cart);
    if (!strstr(body, want))
        fail_msg("no '%s' in /metrics", want);
    free(body);
    kill(pid, SIGTERM);
    assert_int_equal(exit_status(pid, 60000), 0);
    must_log(&r, "offset=1000 low_watermark=2500 lost=1500 policy=skip");
    must_log(&r, "msg=\"worker stopped\" events=500 ");
    assert_int_equal(xsp_stored_offset(r.state, cart, 0), 3000);

    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(b);
    xst_rmrf(dir);
    free(dir);
}

/* /readyz once the worker loop has seen the outage (it samples the
 * consumer's state every turn, 100 ms at most): never another 503 reason
 * such as "catching up after assignment". */
static char *readyz_down(const run_t *r, int *status)
{
    char *body = NULL;
    for (int i = 0; i < 30; i++) {
        free(body);
        body = http_get(r, "/readyz", status);
        if (*status == 503 && strstr(body, "Kafka brokers unreachable"))
            break;
        if (strstr(body, "catching up after assignment"))
            fail_msg("/readyz says %s while the broker is down", body);
        xsp_sleep_ms(100);
    }
    return body;
}

static void test_broker_unreachable(void **state)
{
    (void)state;
    if (!have_kafka)
        skip();
    char errstr[512] = "";
    xst_broker_t *b = xst_broker("outage", 1);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    xs_producer_t *p = xs_producer_new(xst_bootstrap(b), NULL, 0, errstr, sizeof(errstr));
    assert_non_null(codec);
    assert_non_null(p);
    produce_carts(p, codec, 0, 200);
    xs_producer_destroy(p);
    char *dir = xst_tmpdir("outage");
    const char *cart = xst_topic("xsell.cart");
    run_t r;
    char port_set[800];

    /* a long-running worker started while the broker is down sees it come back */
    assert_int_equal(kafka("kill 1", NULL, 0), 0);
    fprintf(stderr, "broker killed\n");
    run_init(&r, dir, "comeback");
    snprintf(port_set, sizeof(port_set), "http.port.file=%s", r.port);
    pid_t pid = worker(&r, "g2", "--http", "127.0.0.1:0", "--set", port_set, NULL);
    if (!xsp_wait_log(r.log, "level=warn msg=\"kafka brokers unreachable\"", pid, 20000))
        must_log(&r, "level=warn msg=\"kafka brokers unreachable\"");
    int status = 0;
    char *body = readyz_down(&r, &status);
    fprintf(stderr, "/readyz while the broker is down: %d %s\n", status, body);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "Kafka brokers unreachable"));
    free(body);
    int64_t t0 = xsp_now_ms();
    assert_int_equal(kafka("restart 1", NULL, 0), 0);
    fprintf(stderr, "broker restarted in %lld ms\n", (long long)(xsp_now_ms() - t0));
    if (!xsp_wait_log(r.log, "msg=\"kafka brokers reachable\"", pid, 60000))
        must_log(&r, "msg=\"kafka brokers reachable\"");
    status = 0;
    for (int i = 0; i < 900 && status != 200; i++) {
        body = http_get(&r, "/readyz", &status);
        if (status != 200)
            xsp_sleep_ms(100);
        if (status == 200 || i == 899)
            fprintf(stderr, "/readyz after the restart: %d %s\n", status, body);
        free(body);
    }
    assert_int_equal(status, 200);
    kill(pid, SIGTERM);
    assert_int_equal(exit_status(pid, 60000), 0);
    assert_int_equal(xsp_stored_offset(r.state, cart, 0), 200);
    assert_int_equal(kafka("kill 1", NULL, 0), 0);
    fprintf(stderr, "broker killed again\n");

    /* --until-end gives up */
    run_init(&r, dir, "until-end");
    snprintf(port_set, sizeof(port_set), "http.port.file=%s", r.port);
    t0 = xsp_now_ms();
    pid = worker(&r, "g", "--until-end", "--set", "broker.unreachable.timeout.ms=6000", "--http",
                 "127.0.0.1:0", "--set", port_set, NULL);
    if (!xsp_wait_log(r.log, "level=warn msg=\"kafka brokers unreachable\"", pid, 20000))
        must_log(&r, "level=warn msg=\"kafka brokers unreachable\"");
    fprintf(stderr, "warning after %lld ms\n", (long long)(xsp_now_ms() - t0));
    body = readyz_down(&r, &status);
    fprintf(stderr, "/readyz while the broker is down: %d %s\n", status, body);
    assert_int_equal(status, 503);
    assert_non_null(strstr(body, "Kafka brokers unreachable"));
    free(body);
    int rc = exit_status(pid, 60000);
    fprintf(stderr, "--until-end: exit status %d after %lld ms\n", rc,
            (long long)(xsp_now_ms() - t0));
    assert_int_equal(rc, 4);
    must_log(&r, "no Kafka broker reachable for");

    xs_codec_destroy(codec);
    xst_broker_free(b);
    xst_rmrf(dir);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_input_lost_to_retention),
        cmocka_unit_test(test_broker_unreachable),
    };
    int failed = cmocka_run_group_tests(tests, setup, teardown);
    return failed ? failed : have_kafka ? 0 : 77; /* 77: skipped (ctest SKIP_RETURN_CODE) */
}
