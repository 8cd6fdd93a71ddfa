/*
 * cli_progress.c — the progress line of `xsell produce` and `xsell eval`
 * (see cli_progress.h for the shapes and fields).
 */
#include "cli_progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "cli_common.h"

#define PROGRESS_TTY_MS 250
#define PROGRESS_PLAIN_MS 5000

void xs_cli_progress_init(xs_cli_progress_t *p, const char *what, const char *unit, uint64_t total,
                          bool quiet)
{
    const char *env = getenv("XSELL_PROGRESS_MS");
    char *end = NULL;
    long long ms = env ? strtoll(env, &end, 10) : 0;

    p->what = what;
    p->unit = unit;
    p->total = total;
    p->enabled = !quiet;
    p->tty = isatty(STDERR_FILENO) == 1;
    p->printed = false;
    p->interval_ms = p->tty ? PROGRESS_TTY_MS : PROGRESS_PLAIN_MS;
    if (env && end != env && *end == '\0' && ms > 0)
        p->interval_ms = ms;
    p->started_ms = p->last_ms = xs_cli_now_ms();
}

bool xs_cli_progress_due(const xs_cli_progress_t *p, int64_t now)
{
    return p->enabled && now - p->last_ms >= p->interval_ms;
}

/* "1:02:03" or "2:03": whole seconds, rounded up. */
static void format_eta(char *out, size_t size, double secs)
{
    uint64_t s = secs <= 0 ? 0 : (uint64_t)(secs + 0.999);
    if (s >= 3600)
        snprintf(out, size, "%" PRIu64 ":%02u:%02u", s / 3600, (unsigned)(s / 60 % 60),
                 (unsigned)(s % 60));
    else
        snprintf(out, size, "%u:%02u", (unsigned)(s / 60), (unsigned)(s % 60));
}

void xs_cli_progress_print(xs_cli_progress_t *p, uint64_t done, const char *extra, int64_t now)
{
    double secs = (double)(now - p->started_ms) / 1000.0;
    double rate = secs > 0 ? (double)done / secs : 0.0;
    char tail[96] = "";

    if (!p->enabled)
        return;
    if (p->total > 0) {
        uint64_t left = done < p->total ? p->total - done : 0;
        char eta[32] = "?";
        if (rate > 0)
            format_eta(eta, sizeof(eta), (double)left / rate);
        snprintf(tail, sizeof(tail), ", %.0f%% of %" PRIu64 ", ETA %s",
                 100.0 * (double)(done < p->total ? done : p->total) / (double)p->total, p->total,
                 eta);
    }
    fprintf(stderr, "%s%s: %" PRIu64 " %s, %.0f %s/s%s%s%s%s", p->tty ? "\r" : "", p->what, done,
            p->unit, rate, p->unit, tail, extra ? ", " : "", extra ? extra : "",
            p->tty ? "\033[K" : "\n");
    fflush(stderr);
    p->printed = p->tty;
    p->last_ms = now;
}

void xs_cli_progress_finish(xs_cli_progress_t *p, uint64_t done, const char *extra)
{
    int64_t now = xs_cli_now_ms();

    if (!p->enabled)
        return;
    p->total = 0; /* the final line: count and mean rate, no more ETA */
    if (p->tty) {
        if (p->printed || now - p->started_ms >= p->interval_ms) {
            xs_cli_progress_print(p, done, extra, now);
            fputc('\n', stderr);
        }
    } else if (now - p->started_ms >= p->interval_ms) {
        xs_cli_progress_print(p, done, extra, now);
    }
    p->printed = false;
}
