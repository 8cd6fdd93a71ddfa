/*
 * xsell-worker — the streaming cross-sell worker.
 *
 *   xsell-worker [--config FILE] [--set key=value]... [--bootstrap B |
 *                --bootstrap-file F] [--state-dir D] [--group G]
 *                [--http ADDR] [--from-beginning] [--until-end]
 *                [--reset-state --yes] [--print-config]
 *
 * Flags override the config file (whatever their order on the command line).
 * --from-beginning replays every partition from its first offset; it needs
 * an empty state directory, or --reset-state (--yes when it is not empty). SIGINT/SIGTERM stop it
 * cleanly: a final checkpoint (the state and its offsets written once the producer acknowledged its
 * lists), then exit 0.
 *
 * Exit status (docs/GUARANTEES.md): 0 stopped cleanly; 1 failed (the log says
 * why; the next start replays from the last checkpoint); 2 bad command line
 * or configuration; 3 the state directory's device is full (nothing past the
 * last checkpoint stored; free space and restart); 4 --until-end gave up on
 * an unreachable broker (kafka.unreachable.timeout.ms); 5 input was deleted
 * before it was consumed and input.offset.out_of_range = fail.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/check.h"
#include "xsell/config.h"
#include "xsell/log.h"
#include "xsell/store.h"
#include "xsell/version.h"
#include "xsell/worker.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xsell-worker [--config FILE] [--set key=value]... [--bootstrap B | "
            "--bootstrap-file F]\n"
            "                    [--state-dir D] [--group G] [--http ADDR] [--from-beginning] "
            "[--until-end]\n"
            "                    [--reset-state --yes] [--print-config]\n"
            "       xsell-worker --version\n\n"
            "  --config FILE        key = value file (see docs/CONFIG.md)\n"
            "  --set key=value      override one key (repeatable)\n"
            "  --bootstrap B        same as --set kafka.bootstrap.servers=B\n"
            "  --bootstrap-file F   read the bootstrap string from F (as written by xsell "
            "devbroker)\n"
            "  --state-dir D        same as --set state.dir=D\n"
            "  --group G            same as --set group.id=G\n"
            "  --http ADDR          same as --set http.address=ADDR (host:port; port 0: any "
            "free port; '' disables)\n"
            "  --from-beginning     replay every partition from its first offset (needs an "
            "empty state directory\n"
            "                       or --reset-state)\n"
            "  --until-end          stop once everything in the assigned partitions at start "
            "is consumed\n"
            "  --reset-state        delete the state directory first (replay from the "
            "beginning); needs --yes\n"
            "                       when the directory is not empty\n"
            "  --print-config       print the effective configuration (secrets masked) and "
            "exit\n"
            "  --version            print the version, git commit and library versions and exit\n\n"
            "exit status: 0 ok, 1 failed, 2 usage or configuration, 3 state device full,\n"
            "             4 broker unreachable (--until-end), 5 input lost to retention\n");
}

/* The exit status of a failed run (see the top of the file). */
static int exit_status(xs_err_t err)
{
    switch (err) {
    case XS_ERR_NOSPACE:
        return 3;
    case XS_ERR_TIMEOUT:
        return 4;
    case XS_ERR_INPUT_LOST:
        return 5;
    default:
        return 1;
    }
}

static void print_error(void *opaque, const char *message)
{
    (void)opaque;
    fprintf(stderr, "xsell-worker: %s\n", message);
}

static char *read_line_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[4096];
    char *res = NULL;
    if (fgets(buf, sizeof(buf), f)) {
        buf[strcspn(buf, "\r\n")] = '\0';
        res = strdup(buf);
    }
    fclose(f);
    return res;
}

int main(int argc, char **argv)
{
    char errstr[1024] = "";
    int rc = 1;
    bool until_end = false, reset = false, yes = false, print = false, from_beginning = false;
    int bad_files = 0;
    xs_worker_t *w = NULL;
    xs_config_t *cfg = xs_config_new();
    if (!cfg)
        return 1;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--version")) {
            xs_version_print(stdout, "xsell-worker");
            rc = 0;
            goto out;
        }
    /* The config file first, so that every flag overrides it whatever the order. */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config") && i + 1 < argc)
            bad_files += xs_config_load_file_all(cfg, argv[++i], print_error, NULL);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *key = NULL;
        char *owned = NULL;
        xs_err_t err = XS_OK;
        if (!strcmp(a, "--config") && i + 1 < argc) {
            i++;
            continue;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--until-end")) {
            until_end = true;
            continue;
        } else if (!strcmp(a, "--from-beginning")) {
            from_beginning = true;
            continue;
        } else if (!strcmp(a, "--reset-state")) {
            reset = true;
            continue;
        } else if (!strcmp(a, "--yes")) {
            yes = true;
            continue;
        } else if (!strcmp(a, "--print-config")) {
            print = true;
            continue;
        } else if (i + 1 >= argc) {
            fprintf(stderr, "xsell-worker: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        } else if (!strcmp(a, "--set")) {
            err = xs_config_set_pair(cfg, argv[++i], "--set", errstr, sizeof(errstr));
        } else if (!strcmp(a, "--bootstrap")) {
            key = "kafka.bootstrap.servers";
        } else if (!strcmp(a, "--bootstrap-file")) {
            owned = read_line_file(argv[++i]);
            if (!owned) {
                fprintf(stderr, "xsell-worker: cannot read bootstrap file %s: %s\n", argv[i],
                        strerror(errno));
                rc = 2;
                goto out;
            }
            err = xs_config_set(cfg, "kafka.bootstrap.servers", owned, "--bootstrap-file", errstr,
                                sizeof(errstr));
            free(owned);
        } else if (!strcmp(a, "--state-dir")) {
            key = "state.dir";
        } else if (!strcmp(a, "--group")) {
            key = "group.id";
        } else if (!strcmp(a, "--http")) {
            key = "http.address";
        } else {
            fprintf(stderr, "xsell-worker: unknown option '%s'\n", a);
            usage(stderr);
            rc = 2;
            goto out;
        }
        if (key)
            err = xs_config_set(cfg, key, argv[++i], a, errstr, sizeof(errstr));
        if (err) {
            fprintf(stderr, "xsell-worker: %s\n", errstr);
            rc = 2;
            goto out;
        }
    }
    xs_log_set_level((xs_log_level_t)xs_log_level_from_name(xs_config_str(cfg, "log.level")));
    xs_log_set_format((xs_log_format_t)xs_log_format_from_name(xs_config_str(cfg, "log.format")));
    if (print) {
        if (bad_files) {
            rc = 2;
            goto out;
        }
        xs_config_dump(cfg, stdout);
        rc = 0;
        goto out;
    }
    /* Every check at once (the same as `xsell config --check`): all the
     * errors, not the first, before anything is opened. */
    int bad = bad_files + xs_check_config(cfg, print_error, NULL);
    if (bad) {
        fprintf(stderr, "xsell-worker: %d configuration error%s\n", bad, bad == 1 ? "" : "s");
        rc = 2;
        goto out;
    }
    const char *dir = xs_config_str(cfg, "state.dir");
    if (reset) {
        if (xs_store_dir_nonempty(dir) && !yes) {
            fprintf(stderr,
                    "xsell-worker: --reset-state would delete %s, which is not empty; "
                    "add --yes to confirm\n",
                    dir);
            rc = 2;
            goto out;
        }
        if (xs_store_destroy_dir(dir, errstr, sizeof(errstr))) {
            fprintf(stderr, "xsell-worker: %s\n", errstr);
            goto out;
        }
        XS_INFO("state reset", "state_dir=%s", dir);
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    if (from_beginning && !reset && xs_store_dir_nonempty(dir)) {
        fprintf(stderr,
                "xsell-worker: --from-beginning needs an empty state directory: %s "
                "holds state that would count every event twice; add --reset-state "
                "(and --yes) to rebuild it from scratch\n",
                dir);
        rc = 2;
        goto out;
    }
    xs_worker_opts_t wo = {.config = cfg, .until_end = until_end, .from_beginning = from_beginning};
    if (!(w = xs_worker_new(&wo, errstr, sizeof(errstr)))) {
        /* opening the store on a full device: the same status as a full device later */
        if (strstr(errstr, "No space left on device"))
            rc = exit_status(XS_ERR_NOSPACE);
        XS_ERROR("cannot start", "exit=%d error=\"%s\"", rc, errstr);
        goto out;
    }
    xs_err_t err = xs_worker_run(w, &stop_flag, errstr, sizeof(errstr));
    if (err == XS_ERR_NOSPACE) {
        rc = exit_status(err);
        XS_ERROR("state directory full",
                 "state_dir=%s exit=%d error=\"%s\" action=\"free space "
                 "on the device and restart: the worker resumes from its last checkpoint\"",
                 dir, rc, errstr);
        goto out;
    } else if (err != XS_OK) {
        rc = exit_status(err);
        XS_ERROR("worker failed", "exit=%d error=\"%s\"", rc, errstr);
        goto out;
    }
    rc = 0;
out:
    xs_worker_destroy(w);
    xs_config_destroy(cfg);
    return rc;
}
