/*
 * xsell — the operators' command-line tool. `xsell help` lists commands.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "xsell/version.h"

static const struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"devbroker", xs_cli_devbroker, "run the development Kafka broker (librdkafka mock cluster)"},
    {"produce", xs_cli_produce, "load a dataset or JSON-lines file into the input topics"},
    {"topics", xs_cli_topics, "create or check the worker's topics on a Kafka cluster (Admin API)"},
    {"tail", xs_cli_tail, "decode the cross-sell output topic as JSON lines"},
    {"eval", xs_cli_eval, "offline prequential evaluation against exact and popularity baselines"},
    {"bench", xs_cli_bench, "benchmarks: engine alone, with RocksDB state, end to end on a broker"},
    {"schemas", xs_cli_schemas, "print the Avro schemas' single-object fingerprints"},
    {"inspect", xs_cli_inspect, "inspect a state directory: a user, an item, or a canonical dump"},
    {"config", xs_cli_config, "print the configuration reference or check a config file"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: xsell COMMAND [OPTIONS]   (xsell COMMAND --help for options)\n"
                 "       xsell --version\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        xs_version_print(stdout, "xsell");
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "xsell: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
