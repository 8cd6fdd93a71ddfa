/*
 * xsell — the engine as a processor of the runtime (runtime.h).
 *
 * Each input goes through xs_engine_process() (an event) or
 * xs_engine_delete_item() (a catalog tombstone) on the input's partition;
 * the list an event triggers is emitted; the engine's dirty records go into
 * each checkpoint (xs_engine_snapshot_begin/_step), its cache is trimmed
 * after the write and dropped when a partition is revoked (another worker
 * owns its users now). Events, attribution and the add hit rate are counted
 * in the worker's metrics.
 *
 * Ownership: _new/_destroy (NULL is a no-op); the processor owns its engine.
 */
#ifndef XSELL_ENGINE_PROCESSOR_H
#define XSELL_ENGINE_PROCESSOR_H

#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/engine.h"
#include "xsell/runtime.h"
#include "xsell/store.h"
#include "xsell/worker_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_engine_processor xs_engine_processor_t;

/* The engine with the settings of cfg (engine.*, experiment.*, cache.max.bytes)
 * on the store's state; cfg, store and metrics are borrowed for its life. */
xs_engine_processor_t *xs_engine_processor_new(const xs_config_t *cfg, xs_store_t *store,
                                               xs_worker_metrics_t *metrics, char *errstr,
                                               size_t errstr_size);
void xs_engine_processor_destroy(xs_engine_processor_t *ep);

/* The processor's callbacks, valid for its life. */
const xs_processor_t *xs_engine_processor_callbacks(const xs_engine_processor_t *ep);
/* The engine, for queries (under the runtime's lock). */
xs_engine_t *xs_engine_processor_engine(const xs_engine_processor_t *ep);
/* The experiment's arm names (n 0: no experiment). */
const char *const *xs_engine_processor_arms(const xs_engine_processor_t *ep, int *n);

#ifdef __cplusplus
}
#endif
#endif
