/*
 * cli_devbroker.c — `xsell devbroker`: the development Kafka broker.
 *
 * Runs librdkafka's mock cluster (an in-process implementation of the Kafka
 * protocol served over TCP on loopback) in this process, creates xsell's
 * topics, and publishes the bootstrap string:
 *   - on stdout, one line, flushed (for `bs=$(xsell devbroker | head -1)`);
 *   - in --bootstrap-file F, written atomically (temporary file + rename) so
 *     a script polling for F never reads half a line. F is removed on exit,
 *     so a stale file never points at a dead broker.
 * Then it waits for SIGINT/SIGTERM and exits 0.
 *
 * The mock's limits (librdkafka 2.0.2) apply: random ports, no admin API
 * (topics exist only if created here), about 5 MiB / 100k message sets
 * kept per partition, no compaction, and a group join waits
 * session.timeout.ms - 1 s.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_common.h"
#include "xsell/kafka.h"
#include "xsell/log.h"

#define DEFAULT_TOPICS "xsell.clicks,xsell.cart,xsell.catalog,xsell.cross-sell,xsell.dlq"

static void devbroker_usage(FILE *out)
{
    fprintf(out, "usage: xsell devbroker [--brokers N] [--partitions P] [--topics a,b,c]\n"
                 "                       [--bootstrap-file F]\n\n"
                 "Runs the development Kafka broker (librdkafka mock cluster) on loopback\n"
                 "until SIGINT/SIGTERM. Prints the bootstrap servers on stdout.\n\n"
                 "  --brokers N          mock brokers (default 1)\n"
                 "  --partitions P       partitions per topic (default 8)\n"
                 "  --topics LIST        comma-separated topics to create\n"
                 "                       (default " DEFAULT_TOPICS ")\n"
                 "  --bootstrap-file F   also write the bootstrap servers to F (atomically);\n"
                 "                       F is removed on exit\n");
}

int xs_cli_devbroker(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'}, {"partitions", required_argument, NULL, 'p'},
        {"topics", required_argument, NULL, 't'},  {"bootstrap-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    xs_devbroker_t *db = NULL;
    xs_cli_strlist_t topics = {0};
    xs_buf_t line = {0};
    const char *bootstrap_file = NULL;
    const char *bootstraps = NULL;
    bool wrote_file = false;
    int brokers = 1, partitions = 8;
    char errstr[512];
    int opt, rc = 0;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b':
            if (!xs_cli_parse_int("--brokers", optarg, 1, 16, &brokers, errstr, sizeof(errstr)))
                goto usage_error;
            break;
        case 'p':
            if (!xs_cli_parse_int("--partitions", optarg, 1, 1024, &partitions, errstr,
                                  sizeof(errstr)))
                goto usage_error;
            break;
        case 't':
            if (xs_cli_strlist_split(&topics, optarg) != XS_OK)
                goto nomem;
            break;
        case 'f':
            bootstrap_file = optarg;
            break;
        case 'h':
            devbroker_usage(stdout);
            goto out;
        default:
            devbroker_usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (optind < argc) {
        snprintf(errstr, sizeof(errstr), "unexpected argument '%s'", argv[optind]);
        goto usage_error;
    }
    if (topics.n == 0 && xs_cli_strlist_split(&topics, DEFAULT_TOPICS) != XS_OK)
        goto nomem;

    xs_cli_install_signals();
    db = xs_devbroker_new(brokers, errstr, sizeof(errstr));
    if (!db) {
        fprintf(stderr, "xsell devbroker: %s\n", errstr);
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < topics.n; i++) {
        if (xs_devbroker_create_topic(db, topics.v[i], partitions, errstr, sizeof(errstr)) !=
            XS_OK) {
            fprintf(stderr, "xsell devbroker: %s\n", errstr);
            rc = 1;
            goto out;
        }
    }
    bootstraps = xs_devbroker_bootstraps(db);
    if (xs_buf_printf(&line, "%s\n", bootstraps) != XS_OK)
        goto nomem;
    if (bootstrap_file) {
        if (xs_cli_write_file_atomic(bootstrap_file, line.data, line.len, errstr, sizeof(errstr)) !=
            XS_OK) {
            fprintf(stderr, "xsell devbroker: %s\n", errstr);
            rc = 1;
            goto out;
        }
        wrote_file = true;
    }
    fputs((const char *)line.data, stdout);
    fflush(stdout);
    XS_INFO("devbroker running", "bootstrap=%s brokers=%d partitions=%d topics=%zu pid=%ld",
            bootstraps, brokers, partitions, topics.n, (long)getpid());

    while (!xs_cli_stopping())
        xs_cli_sleep_ms(200);
    XS_INFO("devbroker stopping", NULL);
    goto out;

nomem:
    fprintf(stderr, "xsell devbroker: out of memory\n");
    rc = 1;
    goto out;
usage_error:
    fprintf(stderr, "xsell devbroker: %s\n", errstr);
    devbroker_usage(stderr);
    rc = 2;
out:
    if (wrote_file)
        unlink(bootstrap_file);
    xs_devbroker_destroy(db);
    xs_buf_free(&line);
    xs_cli_strlist_free(&topics);
    return rc;
}
