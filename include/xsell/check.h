/*
 * xsell — the configuration checks the worker applies at start, all of them,
 * reporting every error rather than the first: `xsell config --check FILE`
 * and xsell-worker (before it opens anything) run the same function.
 *
 * Beyond what xs_config_set() checks per key (known key, type, range): the
 * librdkafka passthrough keys (kafka.*, each through librdkafka's own
 * parser), the RocksDB passthrough keys (rocksdb.*, RocksDB's option
 * parser), kafka.bootstrap.servers set, the experiment (arms list and
 * overrides), and every schema.confluent.<id> mapping (a known record kind,
 * a readable file holding an Avro schema that resolves against xsell's).
 * Nothing connects to a broker or opens the state directory.
 */
#ifndef XSELL_CHECK_H
#define XSELL_CHECK_H

#include "xsell/config.h"

/* Calls report once per error; returns the number of errors (0: the worker
 * would accept this configuration). */
int xs_check_config(const xs_config_t *cfg, xs_report_fn report, void *opaque);

#endif
