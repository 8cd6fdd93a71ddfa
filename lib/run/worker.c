/*
 * worker.c — the streaming worker: the composition of the processor
 * runtime (runtime.h, the loop; checkpoint.h, the checkpoint protocol), the
 * router (router.h: kinds, framings, dead letters), the engine processor
 * (engine_processor.h), the worker's metrics (worker_metrics.h) and the
 * HTTP service (service.h). See include/xsell/worker.h for what it
 * guarantees.
 */
#include "xsell/worker.h"

#include <stdlib.h>

#include "xsell/engine_processor.h"
#include "xsell/log.h"
#include "xsell/router.h"
#include "xsell/runtime.h"
#include "xsell/service.h"
#include "xsell/store.h"
#include "xsell/worker_metrics.h"

struct xs_worker {
    const xs_config_t *cfg;
    xs_worker_metrics_t *metrics;
    xs_store_t *store;
    xs_engine_processor_t *ep;
    xs_router_t *router;
    xs_runtime_t *rt;
    xs_service_t *service;
};

xs_worker_t *xs_worker_new(const xs_worker_opts_t *opts, char *errstr, size_t errstr_size)
{
    const xs_config_t *cfg = opts->config;
    xs_worker_t *w = calloc(1, sizeof(*w));
    if (!w) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    w->cfg = cfg;
    if (!(w->metrics = xs_worker_metrics_new(cfg))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (opts->from_beginning && xs_store_dir_nonempty(xs_config_str(cfg, "state.dir"))) {
        xs_err_set(errstr, errstr_size,
                   "--from-beginning needs an empty state directory (%s is not empty and "
                   "its state would count every event twice); use --reset-state to rebuild "
                   "from scratch",
                   xs_config_str(cfg, "state.dir"));
        goto fail;
    }
    size_t n_rocks = 0;
    const xs_kv_t *rocks = xs_config_passthrough(cfg, "rocksdb.", &n_rocks);
    w->store =
        xs_store_open(xs_config_str(cfg, "state.dir"), rocks, n_rocks, false, errstr, errstr_size);
    if (!w->store)
        goto fail;
    if (xs_store_wal_damage(w->store))
        XS_ERROR("state write-ahead log damaged",
                 "state_dir=%s error=\"%s\" action=\"recovered "
                 "to the last intact checkpoint; the input after it is consumed again\"",
                 xs_config_str(cfg, "state.dir"), xs_store_wal_damage(w->store));
    xs_worker_metrics_wal_damaged(w->metrics, xs_store_wal_damage(w->store) != NULL);
    if (!(w->ep = xs_engine_processor_new(cfg, w->store, w->metrics, errstr, errstr_size)))
        goto fail;
    int n_arms = 0;
    const char *const *arms = xs_engine_processor_arms(w->ep, &n_arms);
    if (xs_worker_metrics_start(w->metrics, arms, n_arms) != XS_OK) {
        xs_err_set(errstr, errstr_size, "out of memory (metrics)");
        goto fail;
    }
    if (!(w->router = xs_router_new(cfg, w->metrics, errstr, errstr_size)))
        goto fail;
    xs_runtime_opts_t ro = {
        .config = cfg,
        .processor = xs_engine_processor_callbacks(w->ep),
        .router = w->router,
        .metrics = w->metrics,
        .store = w->store,
        .until_end = opts->until_end,
        .from_beginning = opts->from_beginning,
    };
    if (!(w->rt = xs_runtime_new(&ro, errstr, errstr_size)))
        goto fail;
    xs_service_opts_t so = {
        .config = cfg,
        .runtime = w->rt,
        .engine = xs_engine_processor_engine(w->ep),
        .metrics = w->metrics,
    };
    if (!(w->service = xs_service_new(&so, errstr, errstr_size)))
        goto fail;
    return w;
fail:
    xs_worker_destroy(w);
    return NULL;
}

xs_err_t xs_worker_run(xs_worker_t *w, volatile sig_atomic_t *stop, char *errstr,
                       size_t errstr_size)
{
    return xs_runtime_run(w->rt, stop, errstr, errstr_size);
}

void xs_worker_stats(const xs_worker_t *w, xs_worker_stats_t *st)
{
    xs_runtime_stats(w->rt, st);
}

void xs_worker_destroy(xs_worker_t *w)
{
    if (!w)
        return;
    xs_service_destroy(w->service); /* first: no query may run past this point */
    xs_runtime_destroy(w->rt);      /* may checkpoint (on revocation) */
    xs_router_destroy(w->router);
    xs_engine_processor_destroy(w->ep);
    xs_store_close(w->store);
    xs_worker_metrics_destroy(w->metrics);
    free(w);
}
