/*
 * xsell — configuration: `key = value` files, one table of known keys.
 *
 * Every key xsell understands is declared once in the table in config.c
 * with its type, default, range and description; `xsell config --doc`
 * prints the table as Markdown (docs/CONFIG.md is generated from it).
 * Two prefixes pass straight through: `kafka.*` to librdkafka (prefix
 * stripped) and `rocksdb.*` to RocksDB's option parser. Keys of the form
 * `schema.confluent.<id>` map a Confluent schema id to `<Kind> <path.avsc>`.
 * Unknown keys and bad values are rejected with "file:line: message" before
 * anything starts. Later sets override earlier ones (file, then flags).
 * Values of keys whose name contains password, secret or sasl.jaas are
 * never printed (xs_config_dump masks them).
 */
#ifndef XSELL_CONFIG_H
#define XSELL_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_config xs_config_t;

xs_config_t *xs_config_new(void);
void xs_config_destroy(xs_config_t *cfg);

/* Sets one key (validated against the table). origin is e.g. "file.conf:12"
 * or "--set"; it prefixes the error message. */
xs_err_t xs_config_set(xs_config_t *cfg, const char *key, const char *value, const char *origin,
                       char *errstr, size_t errstr_size);
/* Parses "key=value" (as given to --set). */
xs_err_t xs_config_set_pair(xs_config_t *cfg, const char *pair, const char *origin, char *errstr,
                            size_t errstr_size);
/* Loads a file: blank lines and lines starting with # are ignored. */
xs_err_t xs_config_load_file(xs_config_t *cfg, const char *path, char *errstr, size_t errstr_size);

/* Receives one error message of a check that goes on after it (below). */
typedef void (*xs_report_fn)(void *opaque, const char *message);

/* Loads a file as xs_config_load_file() but goes on after a bad line: every
 * error ("file:line: message", or the open error) goes to report. Returns how
 * many; the good lines are set. */
int xs_config_load_file_all(xs_config_t *cfg, const char *path, xs_report_fn report, void *opaque);

/* Typed getters of table keys (the default when unset). Unknown keys abort:
 * they are programming errors. */
const char *xs_config_str(const xs_config_t *cfg, const char *key);
int64_t xs_config_int(const xs_config_t *cfg, const char *key);
double xs_config_double(const xs_config_t *cfg, const char *key);
bool xs_config_bool(const xs_config_t *cfg, const char *key);

/* The value set for any key (table, pass-through or pattern), or NULL when unset. */
const char *xs_config_get_raw(const xs_config_t *cfg, const char *key);

/* The scoring keys an experiment arm may override (experiment.arm.<arm>.<key>,
 * besides popularity_only); *n receives their number. */
const char *const *xs_config_arm_keys(size_t *n);

/* Pass-through entries for a prefix ("kafka." or "rocksdb."), prefix stripped.
 * The array and strings stay owned by cfg; valid until the next set. */
const xs_kv_t *xs_config_passthrough(const xs_config_t *cfg, const char *prefix, size_t *n);

/* Calls fn for each schema.confluent.<id> entry. */
typedef xs_err_t (*xs_config_schema_fn)(void *opaque, int32_t id, const char *kind,
                                        const char *path, char *errstr, size_t errstr_size);
xs_err_t xs_config_each_confluent_schema(const xs_config_t *cfg, xs_config_schema_fn fn,
                                         void *opaque, char *errstr, size_t errstr_size);

/* Writes the effective configuration (secrets masked), one "key = value" per line. */
void xs_config_dump(const xs_config_t *cfg, FILE *out);
/* The same as one JSON object {"key": "value", ...} (values as strings, secrets masked). */
xs_err_t xs_config_dump_json(const xs_config_t *cfg, xs_buf_t *out);
/* Writes the key table as Markdown. */
void xs_config_doc(FILE *out);

/* The schema registry client's options from the schema.registry.* keys
 * (the worker's router and `xsell tail` build their clients alike). */
struct xs_registry_opts;
void xs_config_registry_opts(const xs_config_t *cfg, struct xs_registry_opts *out);

#ifdef __cplusplus
}
#endif
#endif
