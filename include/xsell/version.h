/*
 * xsell — what this build is: its version, the git commit it was built from
 * and the versions of the libraries it uses. `--version` of both binaries
 * and the xsell_build_info metric print the same strings.
 *
 * librdkafka's version is the one loaded at run time (rd_kafka_version_str());
 * RocksDB and Avro-C have no run-time version call in their C APIs, so theirs
 * are the versions the build was compiled against (pkg-config).
 */
#ifndef XSELL_VERSION_H
#define XSELL_VERSION_H

#include <stdio.h>

typedef struct xs_build_info {
    const char *version; /* "0.1.0" */
    const char *commit;  /* short git commit, "-dirty" appended for a modified tree; "unknown" */
    const char *librdkafka;
    const char *rocksdb;
    const char *avro;
} xs_build_info_t;

/* Static strings, valid for the process. */
void xs_version_build_info(xs_build_info_t *bi);

/* Prints "<prog> <version> (commit <commit>)" and one line per library. */
void xs_version_print(FILE *out, const char *prog);

#endif
