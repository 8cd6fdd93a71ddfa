/*
 * Configuration table: file parsing with file:line errors, every value type
 * and its range, the override order (file, then later lines, then --set),
 * the kafka.* / rocksdb.* pass-through, masking of secrets in the dump, and
 * the generated reference.
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

#include "xsell/config.h"
#include "xsell/settings.h"

static char conf_path[256];

/* Writes text to a fresh temporary file (path in conf_path). */
static const char *write_conf(const char *text)
{
    snprintf(conf_path, sizeof(conf_path), "/tmp/xsell-test-config-XXXXXX");
    int fd = mkstemp(conf_path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return conf_path;
}

static void test_defaults(void **state)
{
    (void)state;
    xs_config_t *cfg = xs_config_new();
    assert_string_equal(xs_config_str(cfg, "http.address"), "127.0.0.1:8080");
    assert_string_equal(xs_config_str(cfg, "http.port.file"), "");
    assert_int_equal(xs_config_int(cfg, "commit.interval.ms"), 1000);
    assert_int_equal(xs_config_int(cfg, "metrics.attribution.lists"), 65536);
    assert_true(xs_config_bool(cfg, "list.trending_backfill"));
    assert_true(xs_config_double(cfg, "model.llr_min") > 3.83 &&
                xs_config_double(cfg, "model.llr_min") < 3.85);
    assert_null(xs_config_get_raw(cfg, "http.address"));
    xs_config_destroy(cfg);
}

static void test_file_unknown_key_has_file_line(void **state)
{
    (void)state;
    char errstr[512] = "", expect[400];
    xs_config_t *cfg = xs_config_new();
    const char *path = write_conf("# comment\n\ngroup.id = g1\nmodel.kmaxx = 3\n");
    assert_int_equal(xs_config_load_file(cfg, path, errstr, sizeof(errstr)), XS_ERR_CONFIG);
    snprintf(expect, sizeof(expect), "%s:4: unknown key 'model.kmaxx'", path);
    assert_string_equal(errstr, expect);
    unlink(path);

    path = write_conf("group.id = g1\njust some words\n");
    assert_int_equal(xs_config_load_file(cfg, path, errstr, sizeof(errstr)), XS_ERR_CONFIG);
    snprintf(expect, sizeof(expect), "%s:2: expected 'key = value'", path);
    assert_string_equal(errstr, expect);
    unlink(path);

    path = write_conf("  = value\n");
    assert_int_equal(xs_config_load_file(cfg, path, errstr, sizeof(errstr)), XS_ERR_CONFIG);
    snprintf(expect, sizeof(expect), "%s:1: missing key before '='", path);
    assert_string_equal(errstr, expect);
    unlink(path);

    assert_int_equal(xs_config_load_file(cfg, "/nonexistent/xsell.conf", errstr, sizeof(errstr)),
                     XS_ERR_IO);
    assert_non_null(strstr(errstr, "/nonexistent/xsell.conf: "));
    xs_config_destroy(cfg);
}

/* A bad value on line 2 of a file: the error names file:2 and the key. */
static void expect_bad_line(const char *line, const char *fragment)
{
    char errstr[512] = "", text[512], prefix[300];
    xs_config_t *cfg = xs_config_new();
    snprintf(text, sizeof(text), "group.id = ok\n%s\n", line);
    const char *path = write_conf(text);
    xs_err_t err = xs_config_load_file(cfg, path, errstr, sizeof(errstr));
    if (err != XS_ERR_CONFIG || !strstr(errstr, fragment))
        fail_msg("'%s': got err %d '%s', expected '%s'", line, err, errstr, fragment);
    snprintf(prefix, sizeof(prefix), "%s:2: ", path);
    assert_memory_equal(errstr, prefix, strlen(prefix));
    unlink(path);
    xs_config_destroy(cfg);
}

static void test_bad_values_of_every_type(void **state)
{
    (void)state;
    /* integer */
    expect_bad_line("commit.interval.ms = soon", "commit.interval.ms: 'soon' is not an integer");
    expect_bad_line("commit.interval.ms = 12x", "is not an integer");
    expect_bad_line("commit.interval.ms = 9",
                    "commit.interval.ms: 9 is out of range [10, 3600000]");
    expect_bad_line("commit.interval.ms = 3600001", "out of range");
    expect_bad_line("model.kmax = 25", "model.kmax: 25 is out of range [1, 24]");
    expect_bad_line("cache.max.bytes = 99999999999999999999", "is not an integer");
    expect_bad_line("http.max.connections = 0", "out of range [1, 10000]");
    expect_bad_line("metrics.attribution.lists = 8", "out of range");
    /* number */
    expect_bad_line("model.half_life.hours = fast", "'fast' is not a number");
    expect_bad_line("model.half_life.hours = nan", "is not a number");
    expect_bad_line("model.viewed_weight = 10.5",
                    "model.viewed_weight: 10.5 is out of range [0, 10]");
    expect_bad_line("model.viewed_weight = -0.1", "out of range");
    /* boolean */
    expect_bad_line("state.sync = maybe", "state.sync: 'maybe' is not a boolean");
    /* enum */
    expect_bad_line("model.similarity = pearson",
                    "model.similarity: 'pearson' is not one of llr|cosine|jaccard|lift");
    expect_bad_line("log.level = verbose", "'verbose' is not one of debug|info|warn|error");
    /* address */
    expect_bad_line("http.address = localhost", "http.address: 'localhost' is not host:port");
    expect_bad_line("http.address = 127.0.0.1:65536", "is not host:port");
    expect_bad_line("http.address = 127.0.0.1:", "is not host:port");
    expect_bad_line("http.address = :8080", "is not host:port");
    expect_bad_line("http.address = ::1:8080", "is not host:port");
    expect_bad_line("http.address = [::1]8080", "is not host:port");
    expect_bad_line("http.address = 127.0.0.1:80a", "is not host:port");
    /* patterns and prefixes */
    expect_bad_line("kafka. = x", "empty key after prefix");
    expect_bad_line("rocksdb. = x", "empty key after prefix");
    expect_bad_line("experiment.arm.a.model.kmax = 3", "an arm cannot override 'model.kmax'");
    expect_bad_line("experiment.arm.a.model.similarity = pearson", "is not one of");
    expect_bad_line("experiment.arm.a.popularity_only = perhaps", "is not a boolean");
    expect_bad_line("model.max_context = 0", "out of range [1, 64]");
    expect_bad_line("experiment.arm.a.model.max_context = 65", "out of range [1, 64]");
    expect_bad_line("schema.confluent.x1 = CartEvent a.avsc", "schema id must be a non-negative");
    expect_bad_line("schema.confluent.7 = CartEvent",
                    "expected '<ClickEvent|CartEvent|ItemUpdate>");
}

static void test_good_values(void **state)
{
    (void)state;
    char errstr[512] = "";
    xs_config_t *cfg = xs_config_new();
    const char *ok[][2] = {
        {"http.address", "[::1]:0"},
        {"http.address", "0.0.0.0:9100"},
        {"http.address", "localhost:8080"},
        {"http.address", ""},
        {"cache.max.bytes", "64m"},
        {"state.sync", "yes"},
        {"model.similarity", "llr-cosine"},
        {"model.viewed_weight", "0"},
        {"experiment.arm.b.list.length.cart", "3"},
        {"model.max_context", "6"},
        {"experiment.name", "context"},
        {"experiment.arms", "a:50,b:50"},
        {"experiment.arm.b.model.max_context", "2"},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (xs_config_set(cfg, ok[i][0], ok[i][1], "test", errstr, sizeof(errstr)) != XS_OK)
            fail_msg("%s = %s rejected: %s", ok[i][0], ok[i][1], errstr);
    assert_string_equal(xs_config_str(cfg, "http.address"), "");
    assert_int_equal(xs_config_int(cfg, "cache.max.bytes"), 64 * 1024 * 1024);
    assert_true(xs_config_bool(cfg, "state.sync"));
    xs_params_t P;
    xs_experiment_t x;
    xs_settings_params(cfg, &P);
    assert_int_equal(P.max_context, 6);
    assert_int_equal(xs_settings_experiment(cfg, &P, &x, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(x.n_arms, 2);
    assert_int_equal(x.arms[0].params.max_context, 6);
    assert_int_equal(x.arms[1].params.max_context, 2);
    assert_int_equal(x.arms[1].params.list_len[XS_PLACEMENT_CART], 3);
    xs_config_destroy(cfg);
}

/* Later lines override earlier ones, and --set (applied after the file)
 * overrides the file; a bad --set names its origin. */
static void test_override_order(void **state)
{
    (void)state;
    char errstr[512] = "";
    xs_config_t *cfg = xs_config_new();
    const char *path = write_conf("commit.interval.ms = 500\n"
                                  "log.level = warn\n"
                                  "commit.interval.ms = 600\n"
                                  "http.address = 127.0.0.1:9000\n");
    assert_int_equal(xs_config_load_file(cfg, path, errstr, sizeof(errstr)), XS_OK);
    unlink(path);
    assert_int_equal(xs_config_int(cfg, "commit.interval.ms"), 600);
    assert_string_equal(xs_config_str(cfg, "http.address"), "127.0.0.1:9000");
    assert_int_equal(
        xs_config_set_pair(cfg, "commit.interval.ms = 700", "--set", errstr, sizeof(errstr)),
        XS_OK);
    assert_int_equal(xs_config_set_pair(cfg, "http.address=", "--set", errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(xs_config_int(cfg, "commit.interval.ms"), 700);
    assert_string_equal(xs_config_str(cfg, "http.address"), "");
    assert_string_equal(xs_config_str(cfg, "log.level"), "warn"); /* untouched by --set */
    assert_int_equal(xs_config_set_pair(cfg, "model.kmax=0", "--set", errstr, sizeof(errstr)),
                     XS_ERR_CONFIG);
    assert_string_equal(errstr, "--set: model.kmax: 0 is out of range [1, 24]");
    assert_int_equal(xs_config_int(cfg, "model.kmax"), 24); /* a rejected value changes nothing */
    assert_int_equal(xs_config_set_pair(cfg, "no-equals-sign", "--set", errstr, sizeof(errstr)),
                     XS_ERR_CONFIG);
    assert_string_equal(errstr, "--set: expected 'key = value'");
    xs_config_destroy(cfg);
}

static void test_passthrough_prefixes(void **state)
{
    (void)state;
    char errstr[512] = "";
    xs_config_t *cfg = xs_config_new();
    const char *path = write_conf("kafka.bootstrap.servers = b1:9092,b2:9092\n"
                                  "kafka.security.protocol = SASL_SSL\n"
                                  "kafka.sasl.username = xsell\n"
                                  "rocksdb.write_buffer_size = 67108864\n"
                                  "kafka.security.protocol = SSL\n");
    assert_int_equal(xs_config_load_file(cfg, path, errstr, sizeof(errstr)), XS_OK);
    unlink(path);
    size_t n = 0;
    const xs_kv_t *kv = xs_config_passthrough(cfg, "kafka.", &n);
    assert_int_equal(n, 3);
    assert_string_equal(kv[0].key, "bootstrap.servers");
    assert_string_equal(kv[0].value, "b1:9092,b2:9092");
    assert_string_equal(kv[1].key, "security.protocol");
    assert_string_equal(kv[1].value, "SSL"); /* the later line won */
    assert_string_equal(kv[2].key, "sasl.username");
    kv = xs_config_passthrough(cfg, "rocksdb.", &n);
    assert_int_equal(n, 1);
    assert_string_equal(kv[0].key, "write_buffer_size");
    assert_string_equal(kv[0].value, "67108864");
    assert_string_equal(xs_config_get_raw(cfg, "kafka.sasl.username"), "xsell");
    xs_config_destroy(cfg);
}

static void test_secrets_masked_in_dump(void **state)
{
    (void)state;
    char errstr[512] = "";
    char *text = NULL;
    size_t len = 0;
    xs_config_t *cfg = xs_config_new();
    const char *kv[][2] = {
        {"kafka.sasl.username", "alice"},
        {"kafka.sasl.password", "hunter2-pw"},
        {"kafka.ssl.key.password", "keypass-42"},
        {"kafka.sasl.oauthbearer.client.secret", "oauth-secret-9"},
        {"kafka.sasl.oauthbearer.config", "principal=x secret=oauth-cfg-7"},
        {"kafka.sasl.jaas.config", "org.apache...PlainLoginModule password=jaas-pw-5"},
        {"kafka.ssl.key.pem", "-----BEGIN PRIVATE KEY----- pem-body-3"},
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        assert_int_equal(xs_config_set(cfg, kv[i][0], kv[i][1], "t", errstr, sizeof(errstr)),
                         XS_OK);
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    xs_config_dump(cfg, f);
    fclose(f);
    assert_non_null(strstr(text, "kafka.sasl.username = alice\n"));
    assert_non_null(strstr(text, "kafka.sasl.password = ********\n"));
    assert_non_null(strstr(text, "http.address = 127.0.0.1:8080\n"));
    const char *secrets[] = {"hunter2",   "keypass", "oauth-secret",
                             "oauth-cfg", "jaas-pw", "pem-body"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(text, secrets[i]))
            fail_msg("secret '%s' printed by xs_config_dump:\n%s", secrets[i], text);
    free(text);
    xs_config_destroy(cfg);
}

static void test_doc_lists_every_key(void **state)
{
    (void)state;
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    xs_config_doc(f);
    fclose(f);
    assert_non_null(strstr(text, "| `http.address` | address | `127.0.0.1:8080` |"));
    assert_non_null(strstr(text, "| `http.port.file` | string |"));
    assert_non_null(strstr(text, "| `metrics.attribution.lists` | integer | `65536` | 16 …"));
    assert_non_null(strstr(text, "| `model.similarity` | enum | `llr` | llr|cosine"));
    assert_non_null(strstr(text, "| `kafka.*` |"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_unknown_key_has_file_line),
        cmocka_unit_test(test_bad_values_of_every_type),
        cmocka_unit_test(test_good_values),
        cmocka_unit_test(test_override_order),
        cmocka_unit_test(test_passthrough_prefixes),
        cmocka_unit_test(test_secrets_masked_in_dump),
        cmocka_unit_test(test_doc_lists_every_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
