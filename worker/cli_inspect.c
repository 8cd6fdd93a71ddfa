/*
 * cli_inspect.c — `xsell inspect`: read a worker's state directory.
 *
 *   xsell inspect --state DIR --dump
 *   xsell inspect --state DIR [--half-life-hours H] [--json] user ID
 *   xsell inspect --state DIR [--top N] [--json] item ID
 *
 * The store is opened read-only (RocksDB allows this next to a running
 * worker; the view is the last state the worker wrote). --dump prints the
 * canonical text of every record (format in include/xsell/inspect.h), so
 * `diff <(xsell inspect --state a --dump) <(xsell inspect --state b --dump)`
 * compares two state directories. Exit status: 0 ok, 1 runtime failure
 * (store cannot be opened, a record is corrupt, user/item not found), 2
 * usage error.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "xsell/inspect.h"
#include "xsell/store.h"

static void inspect_usage(FILE *out)
{
    fprintf(out, "usage: xsell inspect --state DIR --dump\n"
                 "       xsell inspect --state DIR [--half-life-hours H] [--json] user ID\n"
                 "       xsell inspect --state DIR [--top N] [--json] item ID\n\n"
                 "  --state DIR            the worker's state directory (opened read-only)\n"
                 "  --dump                 canonical sorted text of every record (for diff)\n"
                 "  --half-life-hours H    affinity half-life for decayed views (default 720,\n"
                 "                         as model.half_life.hours)\n"
                 "  --top N                neighbours shown per signal (default 10)\n"
                 "  --json                 the user or item as one JSON object (an item with its\n"
                 "                         whole neighbour lists)\n");
}

int xs_cli_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"state", required_argument, NULL, 's'},
        {"dump", no_argument, NULL, 'd'},
        {"half-life-hours", required_argument, NULL, 'l'},
        {"top", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = NULL;
    bool dump = false, json = false;
    double half_life = 720;
    int top = 10, opt, rc = 0;
    char errstr[1024] = "";
    xs_store_t *store = NULL;
    xs_err_t err = XS_OK;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            dir = optarg;
            break;
        case 'd':
            dump = true;
            break;
        case 'l': {
            char *end = NULL;
            half_life = strtod(optarg, &end);
            if (!end || *end || !(half_life > 0)) {
                snprintf(errstr, sizeof(errstr), "--half-life-hours: '%s' is not a positive number",
                         optarg);
                goto usage_error;
            }
            break;
        }
        case 't':
            if (!xs_cli_parse_int("--top", optarg, 1, 1000, &top, errstr, sizeof(errstr)))
                goto usage_error;
            break;
        case 'j':
            json = true;
            break;
        case 'h':
            inspect_usage(stdout);
            goto out;
        default:
            inspect_usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (!dir) {
        snprintf(errstr, sizeof(errstr), "--state DIR is required");
        goto usage_error;
    }
    int rest = argc - optind;
    bool view_user = rest == 2 && !strcmp(argv[optind], "user");
    bool view_item = rest == 2 && !strcmp(argv[optind], "item");
    if (dump == (view_user || view_item) || (dump && rest != 0)) {
        snprintf(errstr, sizeof(errstr), "give either --dump or one of: user ID, item ID");
        goto usage_error;
    }
    if (json && dump) {
        snprintf(errstr, sizeof(errstr), "--json goes with user ID or item ID");
        goto usage_error;
    }
    if (!xs_store_dir_nonempty(dir)) {
        fprintf(stderr, "xsell inspect: %s is not a state directory (missing or empty)\n", dir);
        rc = 1;
        goto out;
    }
    if (!(store = xs_store_open(dir, NULL, 0, true, errstr, sizeof(errstr)))) {
        fprintf(stderr, "xsell inspect: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if (dump)
        err = xs_inspect_dump(store, stdout, errstr, sizeof(errstr));
    else if (view_user && json)
        err = xs_inspect_user_json(store, argv[optind + 1], half_life, stdout, errstr,
                                   sizeof(errstr));
    else if (view_user)
        err = xs_inspect_user(store, argv[optind + 1], half_life, stdout, errstr, sizeof(errstr));
    else if (json)
        err = xs_inspect_item_json(store, argv[optind + 1], top, stdout, errstr, sizeof(errstr));
    else
        err = xs_inspect_item(store, argv[optind + 1], top, stdout, errstr, sizeof(errstr));
    if (err) {
        fflush(stdout);
        fprintf(stderr, "xsell inspect: %s\n", errstr);
        rc = 1;
    }
    goto out;

usage_error:
    fprintf(stderr, "xsell inspect: %s\n", errstr);
    inspect_usage(stderr);
    rc = 2;
out:
    xs_store_close(store);
    return rc;
}
