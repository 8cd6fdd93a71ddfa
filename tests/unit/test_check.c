/*
 * Configuration checks (include/xsell/check.h): a file with three mistakes
 * of different kinds reports all three, and the checks the worker applies
 * at start beyond the key table (librdkafka and RocksDB passthrough keys,
 * bootstrap servers, experiment, Confluent schema files) each report theirs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "xsell/check.h"
#include "xsell/config.h"

typedef struct msgs {
    char v[16][1024];
    int n;
} msgs_t;

static void collect(void *opaque, const char *message)
{
    msgs_t *m = opaque;
    if (m->n < 16)
        snprintf(m->v[m->n], sizeof(m->v[0]), "%s", message);
    m->n++;
}

static bool has(const msgs_t *m, const char *needle)
{
    for (int i = 0; i < m->n && i < 16; i++)
        if (strstr(m->v[i], needle))
            return true;
    return false;
}

static char *write_conf(const char *text)
{
    char *path = strdup("/tmp/xsell-check-XXXXXX");
    assert_non_null(path);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static int check_file(const char *text, msgs_t *m)
{
    char *path = write_conf(text);
    xs_config_t *cfg = xs_config_new();
    assert_non_null(cfg);
    memset(m, 0, sizeof(*m));
    int bad = xs_config_load_file_all(cfg, path, collect, m);
    bad += xs_check_config(cfg, collect, m);
    for (int i = 0; i < m->n; i++)
        fprintf(stderr, "  %s\n", m->v[i]);
    xs_config_destroy(cfg);
    unlink(path);
    free(path);
    return bad;
}

/* A misspelt key (line 3), a value librdkafka rejects, a schema file that
 * does not exist: all three, not only the first. */
static void test_three_mistakes(void **state)
{
    (void)state;
    msgs_t m;
    int bad = check_file("kafka.bootstrap.servers = localhost:9092\n"
                         "# three mistakes follow\n"
                         "list.lenght.CART = 5\n"
                         "kafka.linger.ms = soon\n"
                         "schema.confluent.7 = CartEvent /nonexistent/cart.avsc\n",
                         &m);
    assert_int_equal(bad, 3);
    assert_int_equal(m.n, 3);
    assert_true(has(&m, ":3: unknown key 'list.lenght.CART'"));
    assert_true(has(&m, "kafka: config linger.ms=soon"));
    assert_true(has(&m, "schema.confluent.7: cannot open /nonexistent/cart.avsc"));
}

static void test_each_check(void **state)
{
    (void)state;
    msgs_t m;
    /* No mistakes: nothing reported. */
    assert_int_equal(check_file("kafka.bootstrap.servers = b:9092\n"
                                "kafka.linger.ms = 5\n"
                                "rocksdb.write_buffer_size = 1048576\n",
                                &m),
                     0);
    assert_int_equal(m.n, 0);
    /* Missing bootstrap, a RocksDB option RocksDB rejects, a bad value, a
     * secret librdkafka rejects (hidden), an experiment with a bad arm list,
     * a schema file that is not an Avro schema, Confluent output framing
     * without a registry. */
    char *notschema = write_conf("{\"type\": \"nope\"}");
    char text[2048];
    snprintf(text, sizeof(text),
             "rocksdb.write_buffer_size = huge\n"
             "list.length.CART = -4\n"
             "kafka.sasl.password.nope = hunter2\n"
             "experiment.name = x\n"
             "experiment.arms = a:50,b\n"
             "schema.confluent.3 = ClickEvent %s\n"
             "output.framing = confluent\n",
             notschema);
    int bad = check_file(text, &m);
    unlink(notschema);
    free(notschema);
    assert_int_equal(bad, 7);
    assert_int_equal(m.n, 7);
    assert_true(has(&m, "output.framing = confluent needs schema.registry.url"));
    assert_true(has(&m, "kafka.bootstrap.servers is not set"));
    assert_true(has(&m, "rocksdb.write_buffer_size"));
    assert_true(has(&m, ":2: "));
    assert_true(has(&m, "sasl.password.nope=(hidden)"));
    assert_false(has(&m, "hunter2"));
    assert_true(has(&m, "experiment"));
    assert_true(has(&m, "schema.confluent.3: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_mistakes),
        cmocka_unit_test(test_each_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
