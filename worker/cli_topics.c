/*
 * xsell topics create|check — the worker's topics on a Kafka cluster,
 * through librdkafka's Admin API (a real broker: the development broker
 * has no CreateTopics; `xsell devbroker` creates its topics itself).
 *
 * The names come from the worker configuration (topics.clicks, .cart,
 * .catalog, .output, .dlq; --config FILE and --set k=v as for the worker),
 * so the command checks what a worker with that configuration will read
 * and write. kafka.* keys (SASL, SSL) go to librdkafka as for the worker.
 *
 *   create  creates the missing topics: clicks and cart with the same
 *           partition count (--partitions, default 8; both keyed by
 *           user_id, so one user's events of both kinds land on the same
 *           partition number), the catalog compacted (cleanup.policy=
 *           compact: the latest update per item_id is what matters), the
 *           output and the dead-letter topic; then runs the check.
 *   check   describes every topic and fails (exit 1) when one is missing,
 *           when clicks and cart differ in partition count, or when the
 *           catalog is not compacted. One line per topic on stdout.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "xsell/config.h"
#include "xsell/kafka.h"

#define TOPICS_TIMEOUT_MS 30000

static void usage(FILE *out)
{
    fprintf(out, "usage: xsell topics create|check (--bootstrap B | --bootstrap-file F)\n"
                 "                    [--config FILE]... [--set key=value]...\n"
                 "                    [--partitions N] [--replication R]\n"
                 "  topic names from topics.* of the configuration (defaults xsell.clicks, "
                 "xsell.cart,\n"
                 "  xsell.catalog, xsell.cross-sell, xsell.dlq)\n"
                 "  --partitions N       create: partitions of every topic (default 8)\n"
                 "  --replication R      create: replication factor (default: the broker's)\n");
}

enum { T_CLICKS, T_CART, T_CATALOG, T_OUTPUT, T_DLQ, T__COUNT };
static const char *const topic_keys[T__COUNT] = {"topics.clicks", "topics.cart", "topics.catalog",
                                                 "topics.output", "topics.dlq"};

/* Prints one line per topic; returns the number of problems found. */
static int check(const char *bs, const xs_kv_t *kconf, size_t n_kafka, const char *const *names)
{
    char errstr[512];
    int problems = 0;
    xs_topic_info_t info[T__COUNT];
    for (int t = 0; t < T__COUNT; t++) {
        memset(&info[t], 0, sizeof(info[t]));
        info[t].partitions = -1;
        if (!*names[t])
            continue; /* no catalog */
        if (xs_kafka_describe_topic(bs, kconf, n_kafka, names[t], TOPICS_TIMEOUT_MS, &info[t],
                                    errstr, sizeof(errstr)) != XS_OK) {
            fprintf(stderr, "xsell topics: %s: %s\n", names[t], errstr);
            problems++;
            continue;
        }
        if (info[t].partitions < 0) {
            printf("%-24s missing\n", names[t]);
            problems++;
            continue;
        }
        const char *verdict = "ok";
        if (t == T_CATALOG && !strstr(info[t].cleanup_policy, "compact")) {
            verdict = "NOT COMPACTED (cleanup.policy=compact expected)";
            problems++;
        }
        if (t == T_CART && info[T_CLICKS].partitions > 0 &&
            info[T_CART].partitions != info[T_CLICKS].partitions) {
            verdict = "PARTITION COUNT DIFFERS from the clicks topic (both keyed by user_id)";
            problems++;
        }
        printf("%-24s partitions=%d replication=%d cleanup.policy=%s  %s\n", names[t],
               info[t].partitions, info[t].replication,
               info[t].cleanup_policy[0] ? info[t].cleanup_policy : "?", verdict);
    }
    return problems;
}

int xs_cli_topics(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, 'b'},
        {"bootstrap-file", required_argument, NULL, 'B'},
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"partitions", required_argument, NULL, 'p'},
        {"replication", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char errstr[1024] = "";
    const char *bootstrap = NULL, *bootstrap_file = NULL;
    int partitions = 8, replication = -1;
    int rc = 2;
    xs_config_t *cfg = xs_config_new();
    xs_cli_strlist_t sets = {0};
    char *bs = NULL;

    if (argc < 2 || (strcmp(argv[1], "create") != 0 && strcmp(argv[1], "check") != 0)) {
        usage(argc >= 2 && !strcmp(argv[1], "--help") ? stdout : stderr);
        rc = argc >= 2 && !strcmp(argv[1], "--help") ? 0 : 2;
        goto out;
    }
    bool create = !strcmp(argv[1], "create");
    optind = 2;
    int opt;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            bootstrap = optarg;
            break;
        case 'B':
            bootstrap_file = optarg;
            break;
        case 'c':
            if (xs_config_load_file(cfg, optarg, errstr, sizeof(errstr)) != XS_OK) {
                fprintf(stderr, "xsell topics: %s\n", errstr);
                goto out;
            }
            break;
        case 's':
            if (xs_cli_strlist_add(&sets, optarg) != XS_OK)
                goto out;
            break;
        case 'p':
            if (!xs_cli_parse_int("--partitions", optarg, 1, 100000, &partitions, errstr,
                                  sizeof(errstr))) {
                fprintf(stderr, "xsell topics: %s\n", errstr);
                goto out;
            }
            break;
        case 'r':
            if (!xs_cli_parse_int("--replication", optarg, 1, 100, &replication, errstr,
                                  sizeof(errstr))) {
                fprintf(stderr, "xsell topics: %s\n", errstr);
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            rc = 0;
            goto out;
        default:
            usage(stderr);
            goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "xsell topics: unexpected argument '%s'\n", argv[optind]);
        goto out;
    }
    /* --set after the files, whatever the order (as for the worker). */
    for (size_t i = 0; i < sets.n; i++)
        if (xs_config_set_pair(cfg, sets.v[i], "--set", errstr, sizeof(errstr)) != XS_OK) {
            fprintf(stderr, "xsell topics: %s\n", errstr);
            goto out;
        }
    if (bootstrap || bootstrap_file) {
        if (xs_cli_bootstrap(bootstrap, bootstrap_file, 10000, &bs, errstr, sizeof(errstr))) {
            fprintf(stderr, "xsell topics: %s\n", errstr);
            goto out;
        }
    } else {
        size_t n = 0;
        const xs_kv_t *kv = xs_config_passthrough(cfg, "kafka.", &n);
        for (size_t i = 0; i < n; i++)
            if (!strcmp(kv[i].key, "bootstrap.servers"))
                bs = strdup(kv[i].value);
        if (!bs) {
            fprintf(stderr, "xsell topics: --bootstrap, --bootstrap-file or "
                            "kafka.bootstrap.servers is required\n");
            goto out;
        }
    }

    const char *names[T__COUNT];
    for (int t = 0; t < T__COUNT; t++)
        names[t] = xs_config_str(cfg, topic_keys[t]);
    size_t n_kafka = 0;
    const xs_kv_t *kconf = xs_config_passthrough(cfg, "kafka.", &n_kafka);
    /* bootstrap.servers from the config would override --bootstrap: leave it out */
    xs_kv_t *kc = calloc(n_kafka ? n_kafka : 1, sizeof(*kc));
    size_t n_kc = 0;
    if (!kc) {
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < n_kafka; i++)
        if (strcmp(kconf[i].key, "bootstrap.servers") != 0)
            kc[n_kc++] = kconf[i];

    rc = 1;
    if (create) {
        static const xs_kv_t compact[] = {{"cleanup.policy", "compact"}};
        xs_topic_spec_t specs[T__COUNT];
        size_t n = 0;
        for (int t = 0; t < T__COUNT; t++) {
            if (!*names[t])
                continue;
            specs[n++] = (xs_topic_spec_t){names[t], partitions, replication,
                                           t == T_CATALOG ? compact : NULL, t == T_CATALOG};
        }
        if (xs_kafka_create_topics(bs, kc, n_kc, specs, n, TOPICS_TIMEOUT_MS, errstr,
                                   sizeof(errstr)) != XS_OK) {
            fprintf(stderr, "xsell topics: %s\n", errstr);
            free(kc);
            goto out;
        }
    }
    int problems = check(bs, kc, n_kc, names);
    free(kc);
    if (problems) {
        fprintf(stderr, "xsell topics: %d problem%s (see above)\n", problems,
                problems > 1 ? "s" : "");
        goto out;
    }
    rc = 0;

out:
    free(bs);
    xs_cli_strlist_free(&sets);
    xs_config_destroy(cfg);
    return rc;
}
