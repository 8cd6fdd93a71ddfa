/*
 * xsell — the worker's metrics: the families of the Prometheus registry
 * (metrics.h) the worker reports, with the operational ones of obs.h.
 *
 * One place defines every family the worker exposes (names, help, labels),
 * creates at zero the series whose labels are known at start (a rate() or
 * an alert on them works before their first increment), and turns what the
 * runtime, the router and the engine processor observe into series:
 * events by topic and type, dead letters by reason, lists by placement and
 * arm, attribution of clicks and purchases to the arm of the list they cite
 * (a bounded map of recently published lists, metrics.attribution.lists),
 * the live add hit rate, checkpoints, lag, cache and store gauges.
 *
 * Threads: the registry has its own lock; every function may be called on
 * the worker thread, and xs_worker_metrics_render() on the HTTP thread.
 * Ownership: _new/_destroy; _destroy(NULL) is a no-op.
 */
#ifndef XSELL_WORKER_METRICS_H
#define XSELL_WORKER_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/engine.h"
#include "xsell/event.h"
#include "xsell/obs.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_worker_metrics xs_worker_metrics_t;

/* Defines the families (topics.* and metrics.attribution.lists from cfg,
 * borrowed for the result's life). NULL when out of memory. */
xs_worker_metrics_t *xs_worker_metrics_new(const xs_config_t *cfg);
void xs_worker_metrics_destroy(xs_worker_metrics_t *wm);

/* Creates the series known at start, at zero, for the experiment's arms
 * (n_arms 0: the arm "none"), and the operational metrics of obs.h. */
xs_err_t xs_worker_metrics_start(xs_worker_metrics_t *wm, const char *const *arm_names, int n_arms);

/* The operational metrics (histograms, per-partition lag), NULL before start. */
xs_obs_t *xs_worker_metrics_obs(const xs_worker_metrics_t *wm);

/* The exposition text (GET /metrics). */
xs_err_t xs_worker_metrics_render(xs_worker_metrics_t *wm, xs_buf_t *out);

/* An event applied, by topic and type; a click or a purchase citing a
 * published list is attributed to its arm unless it was a duplicate. */
void xs_worker_metrics_event(xs_worker_metrics_t *wm, const char *topic, const xs_event_t *ev,
                             bool duplicate);
/* A catalog tombstone applied. */
void xs_worker_metrics_tombstone(xs_worker_metrics_t *wm, const char *topic);
/* The add outcome of a cart ADD; arm is the user's arm ("none" without). */
void xs_worker_metrics_adds(xs_worker_metrics_t *wm, const xs_add_outcome_t *o, const char *arm);
/* A list published (remembered for attribution). */
void xs_worker_metrics_list(xs_worker_metrics_t *wm, const xs_list_t *list);
/* A dead letter, by reason class (too_large, empty, decode, wrong_type, validation). */
void xs_worker_metrics_dlq(xs_worker_metrics_t *wm, const char *reason_class);
void xs_worker_metrics_decode_error(xs_worker_metrics_t *wm, const char *topic);
void xs_worker_metrics_input_lost(xs_worker_metrics_t *wm, const char *topic, int32_t partition,
                                  int64_t lost);
void xs_worker_metrics_wal_damaged(xs_worker_metrics_t *wm, bool damaged);
/* A checkpoint written, its duration. */
/* items.global: pair-delta batch parts sent; one part applied (entries,
 * and for a whole batch its lag from the send in seconds, else < 0). */
void xs_worker_metrics_deltas_published(xs_worker_metrics_t *wm, uint64_t parts);
void xs_worker_metrics_deltas_applied(xs_worker_metrics_t *wm, uint64_t entries, double lag_s);
/* Records written to the users changelog (a committed checkpoint). */
void xs_worker_metrics_changelog(xs_worker_metrics_t *wm, uint64_t records);
/* Restore progress: partitions restoring now, changelog records and bytes
 * read since the last call, and whether a partition's restore completed. */
void xs_worker_metrics_restore(xs_worker_metrics_t *wm, int restoring, uint64_t records,
                               uint64_t bytes, bool restored);
void xs_worker_metrics_checkpoint(xs_worker_metrics_t *wm, double seconds);

/* The sampled gauges. */
typedef struct xs_worker_gauges {
    int64_t lag_known; /* over the assigned partitions whose lag is known */
    int assigned;
    bool ready;
    uint64_t cache_hits, cache_misses;
    uint64_t store_bytes;
} xs_worker_gauges_t;
void xs_worker_metrics_gauges(xs_worker_metrics_t *wm, const xs_worker_gauges_t *g);
/* xsell_ready at once (as /readyz), not at the next sample of the gauges. */
void xs_worker_metrics_ready(xs_worker_metrics_t *wm, bool ready);

#ifdef __cplusplus
}
#endif
#endif
