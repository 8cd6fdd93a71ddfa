/*
 * Helpers shared by the operators' CLI commands and the worker binary:
 * a stop flag set by SIGINT/SIGTERM, number and list parsing with
 * messages that name the option, `-X key=value` collection for
 * librdkafka properties, resolving the bootstrap servers from --bootstrap
 * or a bootstrap file, and atomic file writes.
 *
 * Conventions. Functions that parse user input print nothing; they return
 * false / an xs_err_t and write a message into errstr, and the command
 * decides how to report it (usage errors exit 2). Every function named
 * xs_cli_*_free releases what the matching add/split allocated and leaves
 * the structure zeroed; freeing a zeroed structure is a no-op.
 */
#ifndef XSELL_CLI_COMMON_H
#define XSELL_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/kafka.h"

/* ---- signals ------------------------------------------------------------ */

/*
 * Installs SIGINT/SIGTERM handlers that set the stop flag (no SA_RESTART,
 * so blocking reads return EINTR) and ignores SIGPIPE (a closed stdout
 * pipe shows up as a write error instead of killing the process). A second
 * SIGINT/SIGTERM while stopping restores the default action, so an
 * impatient operator can still kill a stuck shutdown.
 */
void xs_cli_install_signals(void);
bool xs_cli_stopping(void);
/* Sets the stop flag (e.g. after a fatal error, to start a graceful stop). */
void xs_cli_request_stop(void);

/* ---- time --------------------------------------------------------------- */

int64_t xs_cli_now_ms(void); /* monotonic milliseconds */
/* Sleeps up to ms, returning early when the stop flag is set. */
void xs_cli_sleep_ms(int ms);

/* ---- numbers ------------------------------------------------------------ */

/* Parses a whole decimal integer in [min, max]. errstr: "--opt: 'x' is ..." */
bool xs_cli_parse_i64(const char *opt, const char *s, int64_t min, int64_t max, int64_t *out,
                      char *errstr, size_t errstr_size);
bool xs_cli_parse_u64(const char *opt, const char *s, uint64_t *out, char *errstr,
                      size_t errstr_size);
bool xs_cli_parse_int(const char *opt, const char *s, int min, int max, int *out, char *errstr,
                      size_t errstr_size);

/* ---- string lists ------------------------------------------------------- */

typedef struct xs_cli_strlist {
    char **v; /* owned strings */
    size_t n;
    size_t cap;
} xs_cli_strlist_t;

/* Appends a copy of s. */
xs_err_t xs_cli_strlist_add(xs_cli_strlist_t *list, const char *s);
/* Appends each non-empty, whitespace-trimmed element of a comma-separated s. */
xs_err_t xs_cli_strlist_split(xs_cli_strlist_t *list, const char *s);
void xs_cli_strlist_free(xs_cli_strlist_t *list);

/* ---- -X key=value (librdkafka properties) -------------------------------- */

typedef struct xs_cli_kvs {
    xs_kv_t *kv; /* key and value strings owned by the list */
    size_t n;
    size_t cap;
} xs_cli_kvs_t;

/* Adds one "key=value" argument (value may be empty; key may not). A later
 * value for the same key is simply appended: librdkafka applies the last. */
xs_err_t xs_cli_kvs_add(xs_cli_kvs_t *kvs, const char *arg, char *errstr, size_t errstr_size);
void xs_cli_kvs_free(xs_cli_kvs_t *kvs);

/* ---- bootstrap servers -------------------------------------------------- */

/*
 * Resolves the bootstrap servers: `bootstrap` when not NULL, else the first
 * line of `file` (trimmed), waiting up to wait_ms for the file to appear (a
 * development broker started just before writes it). Exactly one of the two
 * must be given. On success *out is a malloc'd string the caller frees.
 */
xs_err_t xs_cli_bootstrap(const char *bootstrap, const char *file, int wait_ms, char **out,
                          char *errstr, size_t errstr_size);

/* ---- files ---------------------------------------------------------------- */

/*
 * Writes data to path atomically: a temporary file in the same directory,
 * fsync'd, then renamed over path. Readers see the old file or the whole
 * new one, never a part.
 */
xs_err_t xs_cli_write_file_atomic(const char *path, const void *data, size_t len, char *errstr,
                                  size_t errstr_size);

#endif
