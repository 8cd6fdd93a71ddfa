/*
 * version.c — build information (see include/xsell/version.h).
 */
#include "xsell/version.h"

#include "build_info.h"
#include "xsell/kafka.h"

void xs_version_build_info(xs_build_info_t *bi)
{
    bi->version = XS_BUILD_VERSION;
    bi->commit = XS_BUILD_COMMIT;
    bi->librdkafka = xs_kafka_version();
    bi->rocksdb = XS_BUILD_ROCKSDB;
    bi->avro = XS_BUILD_AVRO;
}

void xs_version_print(FILE *out, const char *prog)
{
    xs_build_info_t bi;
    xs_version_build_info(&bi);
    fprintf(out,
            "%s %s (commit %s)\n"
            "librdkafka %s\n"
            "RocksDB %s (compiled against)\n"
            "Avro-C %s (compiled against)\n",
            prog, bi.version, bi.commit, bi.librdkafka, bi.rocksdb, bi.avro);
}
