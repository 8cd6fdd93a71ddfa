/*
 * Progress of the long-running operator commands (`xsell produce`, `xsell
 * eval`), always on stderr so stdout stays the command's result (a summary
 * line, JSON).
 *
 * Two shapes, chosen by isatty(2):
 *   - a terminal: one line rewritten in place ("\r...\033[K") every 250 ms,
 *     ended with a newline by xs_cli_progress_finish();
 *   - anything else (a log file, a pipe): a plain line every 5 s.
 * Both carry the same fields:
 *
 *     xsell produce: 120000 events, 61234 events/s, 40% of 300000, ETA 0:03
 *
 * the last two only when the total is known (e.g. --max-events; "ETA ?"
 * before the first event); `extra` text given to the print call is
 * appended after a comma. The environment
 * variable XSELL_PROGRESS_MS (milliseconds, > 0) overrides the interval of
 * both shapes (tests use a short one). A disabled progress (--quiet) prints
 * nothing.
 *
 * Not thread-safe: one thread owns a progress.
 */
#ifndef XSELL_CLI_PROGRESS_H
#define XSELL_CLI_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>

typedef struct xs_cli_progress {
    const char *what; /* "xsell produce"; not copied */
    const char *unit; /* "events"; not copied */
    uint64_t total;   /* 0 = unknown: no percentage, no ETA */
    bool enabled;
    bool tty;
    bool printed; /* a tty line is open (needs its newline) */
    int64_t interval_ms;
    int64_t started_ms; /* monotonic */
    int64_t last_ms;
} xs_cli_progress_t;

/* Starts the clock. quiet disables every line. */
void xs_cli_progress_init(xs_cli_progress_t *p, const char *what, const char *unit, uint64_t total,
                          bool quiet);
/* True when a line is due at `now` (xs_cli_now_ms()): cheap, call often. */
bool xs_cli_progress_due(const xs_cli_progress_t *p, int64_t now);
/* Prints the line for `done` units (extra may be NULL) and resets the interval. */
void xs_cli_progress_print(xs_cli_progress_t *p, uint64_t done, const char *extra, int64_t now);
/* The final line (count and mean rate; no percentage or ETA, as a run may
 * end short of its total): on a terminal it replaces the last one and gets
 * its newline; on a plain stream it is printed when the run lasted at least
 * one interval. */
void xs_cli_progress_finish(xs_cli_progress_t *p, uint64_t done, const char *extra);

#endif
