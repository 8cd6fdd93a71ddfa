/*
 * engine_processor.c — the engine as a processor of the runtime (see
 * include/xsell/engine_processor.h).
 */
#include "xsell/engine_processor.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "xsell/log.h"
#include "xsell/settings.h"

struct xs_engine_processor {
    xs_processor_t proc;
    xs_engine_t *engine;
    xs_worker_metrics_t *metrics;
    char arm_names[XS_MAX_ARMS][32]; /* experiment arms, for labels; n_arms 0: "none" */
    const char *arms[XS_MAX_ARMS];
    int n_arms;
    uint64_t add_opportunities, add_hits; /* over the placements, since the start */
};

static xs_err_t ep_tombstone(xs_engine_processor_t *ep, const xs_input_t *in, char *errstr,
                             size_t errstr_size)
{
    const xs_msg_t *m = in->msg;
    xs_err_t err = xs_engine_delete_item(ep->engine, in->item_id, errstr, errstr_size);
    if (err)
        return err;
    xs_worker_metrics_tombstone(ep->metrics, m->topic);
    XS_DEBUG("catalog tombstone", "topic=%s partition=%d offset=%" PRId64, m->topic, m->partition,
             m->offset);
    return XS_OK;
}

static xs_err_t ep_process(void *self, const xs_input_t *in, xs_emit_t *emit, char *errstr,
                           size_t errstr_size)
{
    xs_engine_processor_t *ep = self;
    const xs_event_t *ev = &in->ev;
    xs_list_t list;
    xs_engine_stats_t es;
    bool has_list = false, duplicate = false;
    uint64_t dups = 0;
    if (in->route == XS_ROUTE_TOMBSTONE)
        return ep_tombstone(ep, in, errstr, errstr_size);
    xs_event_list_init(&list);
    /* a duplicate (the engine counts them) is not attributed */
    if (ev->list_id) {
        xs_engine_stats(ep->engine, &es);
        dups = es.duplicates;
    }
    xs_err_t err = xs_engine_process(ep->engine, (uint16_t)in->msg->partition, ev, &list, &has_list,
                                     errstr, errstr_size);
    if (err)
        goto out;
    if (ev->list_id) {
        xs_engine_stats(ep->engine, &es);
        duplicate = es.duplicates != dups;
    }
    xs_worker_metrics_event(ep->metrics, in->msg->topic, ev, duplicate);
    if (ev->kind == XS_KIND_CART && ev->type == XS_CART_ADD) {
        xs_add_outcome_t o;
        xs_engine_last_outcome(ep->engine, &o);
        const char *arm = o.arm >= 0 && o.arm < ep->n_arms ? ep->arm_names[o.arm] : "none";
        xs_worker_metrics_adds(ep->metrics, &o, arm);
        for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
            ep->add_opportunities += o.opportunities[pl];
            ep->add_hits += o.hits[pl];
        }
    }
    if (has_list && (err = xs_runtime_emit(emit, &list, errstr, errstr_size)) == XS_OK)
        xs_worker_metrics_list(ep->metrics, &list);
out:
    xs_event_list_clear(&list);
    return err;
}

static xs_err_t ep_snapshot_begin(void *self, xs_store_batch_t *batch, size_t *n_records,
                                  char *errstr, size_t errstr_size)
{
    xs_engine_processor_t *ep = self;
    return xs_engine_snapshot_begin(ep->engine, xs_store_batch_put_fn, batch, n_records, errstr,
                                    errstr_size);
}

static xs_err_t ep_snapshot_step(void *self, size_t max, bool *done, char *errstr,
                                 size_t errstr_size)
{
    xs_engine_processor_t *ep = self;
    return xs_engine_snapshot_step(ep->engine, max, done, errstr, errstr_size);
}

static void ep_checkpointed(void *self)
{
    xs_engine_processor_t *ep = self;
    xs_engine_trim(ep->engine);
}

static void ep_revoked(void *self, const char *topic, int32_t partition)
{
    xs_engine_processor_t *ep = self;
    (void)topic;
    /* Another worker owns this partition now: its users must be re-read,
     * and deltas not taken by the revocation's checkpoint (an assignment
     * lost) are of input that will be replayed there. */
    xs_engine_drop_cache(ep->engine);
    xs_engine_drop_deltas(ep->engine, (uint16_t)partition);
}

static xs_err_t ep_take_deltas(void *self, int32_t partition, xs_delta_batch_t *out, char *errstr,
                               size_t errstr_size)
{
    xs_engine_processor_t *ep = self;
    return xs_engine_take_deltas(ep->engine, (uint16_t)partition, out, errstr, errstr_size);
}

static xs_err_t ep_apply_deltas(void *self, const xs_delta_batch_t *b, char *errstr,
                                size_t errstr_size)
{
    xs_engine_processor_t *ep = self;
    return xs_engine_apply_deltas(ep->engine, b, errstr, errstr_size);
}

static void ep_stats(void *self, xs_processor_stats_t *st)
{
    xs_engine_processor_t *ep = self;
    xs_engine_stats_t es;
    xs_engine_stats(ep->engine, &es);
    st->dirty_bytes = es.dirty_bytes;
    st->cache_hits = es.cache_hits;
    st->cache_misses = es.cache_misses;
}

xs_engine_processor_t *xs_engine_processor_new(const xs_config_t *cfg, xs_store_t *store,
                                               xs_worker_metrics_t *metrics, char *errstr,
                                               size_t errstr_size)
{
    xs_engine_processor_t *ep = calloc(1, sizeof(*ep));
    if (!ep) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    ep->metrics = metrics;
    xs_backend_t backend;
    xs_store_backend(store, &backend);
    xs_engine_opts_t eo;
    xs_experiment_t experiment;
    xs_engine_opts_default(&eo);
    xs_settings_params(cfg, &eo.params);
    if (xs_settings_experiment(cfg, &eo.params, &experiment, errstr, errstr_size) != XS_OK)
        goto fail;
    eo.experiment = &experiment;
    eo.backend = &backend;
    eo.cache_bytes = (size_t)xs_config_int(cfg, "cache.max.bytes");
    eo.defer_items = xs_config_bool(cfg, "items.global");
    if (!(ep->engine = xs_engine_new(&eo, errstr, errstr_size)))
        goto fail;
    ep->n_arms = experiment.n_arms;
    for (int a = 0; a < experiment.n_arms; a++) {
        snprintf(ep->arm_names[a], sizeof(ep->arm_names[a]), "%s", experiment.arms[a].name);
        ep->arms[a] = ep->arm_names[a];
    }
    ep->proc = (xs_processor_t){
        .name = "engine",
        .self = ep,
        .process = ep_process,
        .snapshot_begin = ep_snapshot_begin,
        .snapshot_step = ep_snapshot_step,
        .checkpointed = ep_checkpointed,
        .revoked = ep_revoked,
        .stats = ep_stats,
        .take_deltas = ep_take_deltas,
        .apply_deltas = ep_apply_deltas,
    };
    return ep;
fail:
    xs_engine_processor_destroy(ep);
    return NULL;
}

void xs_engine_processor_destroy(xs_engine_processor_t *ep)
{
    if (!ep)
        return;
    if (ep->add_opportunities)
        XS_INFO("list add hits",
                "opportunities=%" PRIu64 " hits=%" PRIu64 " hit_rate=%.4f "
                "what=\"cart adds of an item in the last list published for the user and "
                "placement, since the start (xsell_list_add_hits_total)\"",
                ep->add_opportunities, ep->add_hits,
                (double)ep->add_hits / (double)ep->add_opportunities);
    xs_engine_destroy(ep->engine);
    free(ep);
}

const xs_processor_t *xs_engine_processor_callbacks(const xs_engine_processor_t *ep)
{
    return &ep->proc;
}

xs_engine_t *xs_engine_processor_engine(const xs_engine_processor_t *ep)
{
    return ep->engine;
}

const char *const *xs_engine_processor_arms(const xs_engine_processor_t *ep, int *n)
{
    *n = ep->n_arms;
    return ep->arms;
}
