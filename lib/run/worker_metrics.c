/*
 * worker_metrics.c — the worker's metric families and series (see
 * include/xsell/worker_metrics.h).
 */
#include "xsell/worker_metrics.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/metrics.h"

/* Metric families (ids in xs_worker_metrics.mid, see define_metrics). */
enum {
    M_EVENTS,
    M_DLQ,
    M_DECODE_ERRORS,
    M_LISTS,
    M_IMPRESSIONS,
    M_CLICKS,
    M_PURCHASES,
    M_REVENUE,
    M_UNATTRIBUTED,
    M_LAG,
    M_CHECKPOINTS,
    M_CP_LAST,
    M_CP_SECONDS,
    M_CACHE_RATIO,
    M_CACHE_HITS,
    M_CACHE_MISSES,
    M_ROCKSDB_BYTES,
    M_ASSIGNED,
    M_READY,
    M_WAL_DAMAGED,
    M_INPUT_LOST,
    M_ADD_OPPS,
    M_ADD_HITS,
    M_CHANGELOG_RECORDS,
    M_RESTORES,
    M_RESTORE_RECORDS,
    M_RESTORE_BYTES,
    M_RESTORING,
    M_DELTAS_PUBLISHED,
    M_DELTAS_APPLIED,
    M_DELTAS_ENTRIES,
    M_DELTAS_LAG,
    M__COUNT
};

/* Pair-delta batches: from the send to the apply (items.global). */
static const double lag_buckets[] = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,   2.5,
                                     5,    10,    30,   60,  300,  900, 3600};

struct xs_worker_metrics {
    xs_metrics_t *metrics;
    int mid[M__COUNT];
    xs_obs_t *obs; /* histograms, build info, process metrics, per-partition lag */
    xs_metrics_listmap_t *listmap;
    const char *topic_clicks, *topic_cart, *topic_catalog;
    char arm_names[XS_MAX_ARMS][32]; /* experiment arms, for labels; n_arms 0: "none" */
    int n_arms;
};

static xs_err_t define_metrics(xs_worker_metrics_t *wm)
{
    xs_metrics_t *m = wm->metrics;
    int *id = wm->mid;
    id[M_EVENTS] = xs_metrics_define(m, "xsell_events_total", XS_METRIC_COUNTER,
                                     "Events applied to the engine, by input topic and event type.",
                                     "topic,type");
    id[M_DECODE_ERRORS] =
        xs_metrics_define(m, "xsell_decode_errors_total", XS_METRIC_COUNTER,
                          "Input messages that did not decode, by topic.", "topic");
    id[M_DLQ] = xs_metrics_define(m, "xsell_dlq_messages_total", XS_METRIC_COUNTER,
                                  "Messages sent to the dead-letter topic, by reason "
                                  "(too_large, empty, decode, wrong_type, validation).",
                                  "reason");
    id[M_LISTS] = xs_metrics_define(m, "xsell_lists_published_total", XS_METRIC_COUNTER,
                                    "Cross-sell lists published, by placement and experiment arm.",
                                    "placement,arm");
    id[M_IMPRESSIONS] =
        xs_metrics_define(m, "xsell_impressions_total", XS_METRIC_COUNTER,
                          "Lists published (impressions), by experiment arm.", "arm");
    id[M_CLICKS] = xs_metrics_define(m, "xsell_attributed_clicks_total", XS_METRIC_COUNTER,
                                     "ClickEvents carrying the list_id of a published list, by "
                                     "the list's arm.",
                                     "arm");
    id[M_PURCHASES] = xs_metrics_define(m, "xsell_attributed_purchases_total", XS_METRIC_COUNTER,
                                        "PURCHASE CartEvents carrying the list_id of a published "
                                        "list, by the list's arm.",
                                        "arm");
    id[M_REVENUE] = xs_metrics_define(m, "xsell_attributed_revenue_total", XS_METRIC_COUNTER,
                                      "Sum of quantity * unit_price of attributed purchases, by "
                                      "the list's arm (currencies are not converted).",
                                      "arm");
    id[M_UNATTRIBUTED] = xs_metrics_define(m, "xsell_unattributed_events_total", XS_METRIC_COUNTER,
                                           "Clicks and purchases whose list_id is unknown or no "
                                           "longer remembered (metrics.attribution.lists).",
                                           "kind");
    id[M_ADD_OPPS] = xs_metrics_define(
        m, "xsell_list_add_opportunities_total", XS_METRIC_COUNTER,
        "Items added to a cart (ADD lines) by users with a remembered last list for the "
        "placement, by placement and the user's experiment arm.",
        "placement,arm");
    id[M_ADD_HITS] = xs_metrics_define(
        m, "xsell_list_add_hits_total", XS_METRIC_COUNTER,
        "Of those, items that were among the first 10 of the last list published to the user "
        "for the placement (hits / opportunities: a live HitRate@10).",
        "placement,arm");
    id[M_LAG] = xs_metrics_define(m, "xsell_consumer_lag_messages", XS_METRIC_GAUGE,
                                  "Messages behind the high watermark over the assigned "
                                  "partitions whose lag is known (never -1; "
                                  "xsell_consumer_lag_unknown_partitions counts the others).",
                                  NULL);
    id[M_ASSIGNED] = xs_metrics_define(m, "xsell_assigned_partitions", XS_METRIC_GAUGE,
                                       "Input partitions assigned to this worker.", NULL);
    id[M_READY] =
        xs_metrics_define(m, "xsell_ready", XS_METRIC_GAUGE,
                          "1 once caught up after the last assignment (as /readyz).", NULL);
    id[M_CHECKPOINTS] = xs_metrics_define(m, "xsell_checkpoints_total", XS_METRIC_COUNTER,
                                          "Checkpoints written.", NULL);
    id[M_CP_LAST] = xs_metrics_define(m, "xsell_checkpoint_last_duration_seconds", XS_METRIC_GAUGE,
                                      "Duration of the last checkpoint (producer flush and batch "
                                      "write).",
                                      NULL);
    id[M_CP_SECONDS] = xs_metrics_define(m, "xsell_checkpoint_duration_seconds_total",
                                         XS_METRIC_COUNTER, "Time spent in checkpoints.", NULL);
    id[M_CACHE_HITS] = xs_metrics_define(m, "xsell_cache_hits_total", XS_METRIC_COUNTER,
                                         "State reads served by the write-back cache.", NULL);
    id[M_CACHE_MISSES] = xs_metrics_define(m, "xsell_cache_misses_total", XS_METRIC_COUNTER,
                                           "State reads that went to RocksDB.", NULL);
    id[M_CACHE_RATIO] = xs_metrics_define(m, "xsell_cache_hit_ratio", XS_METRIC_GAUGE,
                                          "Cache hits / (hits + misses) since start.", NULL);
    id[M_ROCKSDB_BYTES] =
        xs_metrics_define(m, "xsell_rocksdb_size_bytes", XS_METRIC_GAUGE,
                          "Live SST files and memtables of the state store.", NULL);
    id[M_INPUT_LOST] = xs_metrics_define(m, "xsell_input_lost_messages_total", XS_METRIC_COUNTER,
                                         "Input messages deleted (by retention) before they were "
                                         "consumed, by topic and partition: skipped with "
                                         "input.offset.out_of_range=skip, else the worker stops.",
                                         "topic,partition");
    id[M_WAL_DAMAGED] = xs_metrics_define(m, "xsell_state_wal_damaged", XS_METRIC_GAUGE,
                                          "1 when this process started from a damaged RocksDB "
                                          "write-ahead log: the state went back to the last "
                                          "checkpoint before the damage, and the input after "
                                          "it is replayed.",
                                          NULL);
    id[M_CHANGELOG_RECORDS] = xs_metrics_define(
        m, "xsell_changelog_records_total", XS_METRIC_COUNTER,
        "Records written to the users changelog (changelog.enable): changed profiles and "
        "offsets records, in committed checkpoint transactions.",
        NULL);
    id[M_RESTORES] = xs_metrics_define(m, "xsell_restores_total", XS_METRIC_COUNTER,
                                       "Input partitions restored from the users changelog.", NULL);
    id[M_RESTORE_RECORDS] =
        xs_metrics_define(m, "xsell_restore_records_total", XS_METRIC_COUNTER,
                          "Changelog records read while restoring partitions.", NULL);
    id[M_RESTORE_BYTES] = xs_metrics_define(
        m, "xsell_restore_bytes_total", XS_METRIC_COUNTER,
        "Changelog bytes (keys and values) read while restoring partitions.", NULL);
    id[M_RESTORING] = xs_metrics_define(
        m, "xsell_restoring_partitions", XS_METRIC_GAUGE,
        "Input partitions being restored from the users changelog right now.", NULL);
    id[M_DELTAS_PUBLISHED] = xs_metrics_define(
        m, "xsell_pair_delta_batches_published_total", XS_METRIC_COUNTER,
        "Pair-delta batches (parts) this instance sent to the pair deltas topic in its "
        "checkpoints' transactions (items.global).",
        NULL);
    id[M_DELTAS_APPLIED] = xs_metrics_define(
        m, "xsell_pair_delta_batches_applied_total", XS_METRIC_COUNTER,
        "Pair-delta batches (parts, any instance's) read from the pair deltas topic and applied "
        "to this instance's item state (items.global).",
        NULL);
    id[M_DELTAS_ENTRIES] =
        xs_metrics_define(m, "xsell_pair_delta_entries_applied_total", XS_METRIC_COUNTER,
                          "Entries of the pair-delta batches applied (items.global).", NULL);
    id[M_DELTAS_LAG] = xs_metrics_define_histogram(
        m, "xsell_pair_delta_lag_seconds",
        "Per whole batch applied: from its send (the start of the checkpoint that took it) to "
        "its apply here (items.global); an event's deltas also wait for that checkpoint.",
        NULL, lag_buckets, XS_ARRAY_SIZE(lag_buckets));
    for (int i = 0; i < M__COUNT; i++)
        if (id[i] < 0)
            return XS_ERR_NOMEM;
    return XS_OK;
}

/* The counters whose labels are known at start exist from the start, at 0
 * (a rate() or an alert on them works before their first increment). */
static void touch_series(xs_worker_metrics_t *wm)
{
    xs_metrics_t *m = wm->metrics;
    for (int t = 0; t < XS_CLICK__COUNT; t++)
        xs_metrics_touch(
            m, wm->mid[M_EVENTS],
            (const char *[]){wm->topic_clicks, xs_event_click_type_name((xs_click_type_t)t)});
    for (int t = 0; t < XS_CART__COUNT; t++)
        xs_metrics_touch(
            m, wm->mid[M_EVENTS],
            (const char *[]){wm->topic_cart, xs_event_cart_type_name((xs_cart_type_t)t)});
    const char *in[] = {wm->topic_clicks, wm->topic_cart, wm->topic_catalog};
    for (size_t i = 0; i < XS_ARRAY_SIZE(in); i++)
        if (*in[i])
            xs_metrics_touch(m, wm->mid[M_DECODE_ERRORS], (const char *[]){in[i]});
    if (*wm->topic_catalog) {
        xs_metrics_touch(m, wm->mid[M_EVENTS], (const char *[]){wm->topic_catalog, "ITEM_UPDATE"});
        xs_metrics_touch(m, wm->mid[M_EVENTS], (const char *[]){wm->topic_catalog, "TOMBSTONE"});
    }
    const char *reasons[] = {"too_large", "empty", "decode", "wrong_type", "validation"};
    for (size_t i = 0; i < XS_ARRAY_SIZE(reasons); i++)
        xs_metrics_touch(m, wm->mid[M_DLQ], (const char *[]){reasons[i]});
    xs_metrics_touch(m, wm->mid[M_UNATTRIBUTED], (const char *[]){"click"});
    xs_metrics_touch(m, wm->mid[M_UNATTRIBUTED], (const char *[]){"purchase"});
    for (int a = 0; a < (wm->n_arms ? wm->n_arms : 1); a++) {
        const char *arm = wm->n_arms ? wm->arm_names[a] : "none";
        for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++)
            xs_metrics_touch(m, wm->mid[M_LISTS],
                             (const char *[]){xs_event_placement_name((xs_placement_t)pl), arm});
        int per_arm[] = {M_IMPRESSIONS, M_CLICKS, M_PURCHASES, M_REVENUE};
        for (size_t i = 0; i < XS_ARRAY_SIZE(per_arm); i++)
            xs_metrics_touch(m, wm->mid[per_arm[i]], (const char *[]){arm});
    }
}

xs_worker_metrics_t *xs_worker_metrics_new(const xs_config_t *cfg)
{
    xs_worker_metrics_t *wm = calloc(1, sizeof(*wm));
    if (!wm)
        return NULL;
    wm->topic_clicks = xs_config_str(cfg, "topics.clicks");
    wm->topic_cart = xs_config_str(cfg, "topics.cart");
    wm->topic_catalog = xs_config_str(cfg, "topics.catalog");
    wm->metrics = xs_metrics_new(0);
    wm->listmap = xs_metrics_listmap_new((size_t)xs_config_int(cfg, "metrics.attribution.lists"));
    if (!wm->metrics || !wm->listmap || define_metrics(wm) != XS_OK) {
        xs_worker_metrics_destroy(wm);
        return NULL;
    }
    return wm;
}

void xs_worker_metrics_destroy(xs_worker_metrics_t *wm)
{
    if (!wm)
        return;
    xs_metrics_listmap_destroy(wm->listmap);
    xs_obs_destroy(wm->obs);
    xs_metrics_destroy(wm->metrics);
    free(wm);
}

xs_err_t xs_worker_metrics_start(xs_worker_metrics_t *wm, const char *const *arm_names, int n_arms)
{
    /* The live hit-rate series exist from the start, at 0, for every placement and arm. */
    wm->n_arms = XS_MIN(n_arms, XS_MAX_ARMS);
    for (int a = 0; a < wm->n_arms; a++)
        snprintf(wm->arm_names[a], sizeof(wm->arm_names[a]), "%s", arm_names[a]);
    for (int a = 0; a < (wm->n_arms ? wm->n_arms : 1); a++)
        for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
            const char *lv[] = {xs_event_placement_name((xs_placement_t)pl),
                                wm->n_arms ? wm->arm_names[a] : "none"};
            xs_metrics_add(wm->metrics, wm->mid[M_ADD_OPPS], lv, 0);
            xs_metrics_add(wm->metrics, wm->mid[M_ADD_HITS], lv, 0);
        }
    const char *in[] = {wm->topic_clicks, wm->topic_cart, wm->topic_catalog};
    if (!(wm->obs = xs_obs_new(wm->metrics, in, XS_ARRAY_SIZE(in))))
        return XS_ERR_NOMEM;
    touch_series(wm);
    return XS_OK;
}

xs_obs_t *xs_worker_metrics_obs(const xs_worker_metrics_t *wm)
{
    return wm->obs;
}

xs_err_t xs_worker_metrics_render(xs_worker_metrics_t *wm, xs_buf_t *out)
{
    return xs_metrics_render(wm->metrics, out);
}

/* Events by topic and type, and attribution of events that carry a list_id:
 * clicks and PURCHASE revenue (sum of quantity * unit_price over the lines
 * with a price, whatever the currency) go to the arm of the list they cite,
 * found in the bounded map of recently published lists. A duplicate (the
 * engine counted it as one) is not attributed. */
void xs_worker_metrics_event(xs_worker_metrics_t *wm, const char *topic, const xs_event_t *ev,
                             bool duplicate)
{
    const char *type =
        ev->kind == XS_KIND_CLICK  ? xs_event_click_type_name((xs_click_type_t)ev->type)
        : ev->kind == XS_KIND_CART ? xs_event_cart_type_name((xs_cart_type_t)ev->type)
                                   : "ITEM_UPDATE";
    xs_metrics_add(wm->metrics, wm->mid[M_EVENTS], (const char *[]){topic, type}, 1);
    if (!ev->list_id || ev->kind == XS_KIND_ITEM)
        return;
    bool purchase = ev->kind == XS_KIND_CART && ev->type == XS_CART_PURCHASE;
    if (ev->kind != XS_KIND_CLICK && !purchase)
        return;
    if (duplicate)
        return;
    const char *arm = xs_metrics_listmap_get(wm->listmap, ev->list_id);
    if (!arm) {
        xs_metrics_add(wm->metrics, wm->mid[M_UNATTRIBUTED],
                       (const char *[]){purchase ? "purchase" : "click"}, 1);
        return;
    }
    if (!purchase) {
        xs_metrics_add(wm->metrics, wm->mid[M_CLICKS], (const char *[]){arm}, 1);
        return;
    }
    double revenue = 0;
    for (size_t i = 0; i < ev->n_lines; i++)
        if (ev->lines[i].has_unit_price)
            revenue += ev->lines[i].quantity * ev->lines[i].unit_price;
    xs_metrics_add(wm->metrics, wm->mid[M_PURCHASES], (const char *[]){arm}, 1);
    xs_metrics_add(wm->metrics, wm->mid[M_REVENUE], (const char *[]){arm}, revenue);
}

void xs_worker_metrics_tombstone(xs_worker_metrics_t *wm, const char *topic)
{
    xs_metrics_add(wm->metrics, wm->mid[M_EVENTS], (const char *[]){topic, "TOMBSTONE"}, 1);
}

/* The live quality signal: at a cart ADD, per placement, whether each added
 * item was on the last list published to the user for that placement. */
void xs_worker_metrics_adds(xs_worker_metrics_t *wm, const xs_add_outcome_t *o, const char *arm)
{
    for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
        if (!o->opportunities[pl])
            continue;
        const char *lv[] = {xs_event_placement_name((xs_placement_t)pl), arm};
        xs_metrics_add(wm->metrics, wm->mid[M_ADD_OPPS], lv, o->opportunities[pl]);
        xs_metrics_add(wm->metrics, wm->mid[M_ADD_HITS], lv, o->hits[pl]);
    }
}

void xs_worker_metrics_list(xs_worker_metrics_t *wm, const xs_list_t *list)
{
    const char *arm = list->arm && *list->arm ? list->arm : "none";
    xs_metrics_add(wm->metrics, wm->mid[M_LISTS],
                   (const char *[]){xs_event_placement_name(list->placement), arm}, 1);
    xs_metrics_add(wm->metrics, wm->mid[M_IMPRESSIONS], (const char *[]){arm}, 1);
    xs_metrics_listmap_put(wm->listmap, list->list_id, list->arm);
}

void xs_worker_metrics_dlq(xs_worker_metrics_t *wm, const char *reason_class)
{
    xs_metrics_add(wm->metrics, wm->mid[M_DLQ], (const char *[]){reason_class}, 1);
}

void xs_worker_metrics_decode_error(xs_worker_metrics_t *wm, const char *topic)
{
    xs_metrics_add(wm->metrics, wm->mid[M_DECODE_ERRORS], (const char *[]){topic}, 1);
}

void xs_worker_metrics_input_lost(xs_worker_metrics_t *wm, const char *topic, int32_t partition,
                                  int64_t lost)
{
    char part[16];
    snprintf(part, sizeof(part), "%d", (int)partition);
    xs_metrics_add(wm->metrics, wm->mid[M_INPUT_LOST], (const char *[]){topic, part}, (double)lost);
}

void xs_worker_metrics_wal_damaged(xs_worker_metrics_t *wm, bool damaged)
{
    xs_metrics_set(wm->metrics, wm->mid[M_WAL_DAMAGED], NULL, damaged ? 1 : 0);
}

void xs_worker_metrics_changelog(xs_worker_metrics_t *wm, uint64_t records)
{
    xs_metrics_add(wm->metrics, wm->mid[M_CHANGELOG_RECORDS], NULL, (double)records);
}

void xs_worker_metrics_restore(xs_worker_metrics_t *wm, int restoring, uint64_t records,
                               uint64_t bytes, bool restored)
{
    xs_metrics_set(wm->metrics, wm->mid[M_RESTORING], NULL, restoring);
    xs_metrics_add(wm->metrics, wm->mid[M_RESTORE_RECORDS], NULL, (double)records);
    xs_metrics_add(wm->metrics, wm->mid[M_RESTORE_BYTES], NULL, (double)bytes);
    if (restored)
        xs_metrics_add(wm->metrics, wm->mid[M_RESTORES], NULL, 1);
}

void xs_worker_metrics_deltas_published(xs_worker_metrics_t *wm, uint64_t parts)
{
    xs_metrics_add(wm->metrics, wm->mid[M_DELTAS_PUBLISHED], NULL, (double)parts);
}

void xs_worker_metrics_deltas_applied(xs_worker_metrics_t *wm, uint64_t entries, double lag_s)
{
    xs_metrics_add(wm->metrics, wm->mid[M_DELTAS_APPLIED], NULL, 1);
    xs_metrics_add(wm->metrics, wm->mid[M_DELTAS_ENTRIES], NULL, (double)entries);
    if (lag_s >= 0)
        xs_metrics_observe(wm->metrics, wm->mid[M_DELTAS_LAG], NULL, lag_s);
}

void xs_worker_metrics_checkpoint(xs_worker_metrics_t *wm, double seconds)
{
    xs_metrics_add(wm->metrics, wm->mid[M_CHECKPOINTS], NULL, 1);
    xs_metrics_set(wm->metrics, wm->mid[M_CP_LAST], NULL, seconds);
    xs_metrics_add(wm->metrics, wm->mid[M_CP_SECONDS], NULL, seconds);
    xs_obs_checkpoint(wm->obs, seconds);
}

void xs_worker_metrics_ready(xs_worker_metrics_t *wm, bool ready)
{
    xs_metrics_set(wm->metrics, wm->mid[M_READY], NULL, ready ? 1 : 0);
}

void xs_worker_metrics_gauges(xs_worker_metrics_t *wm, const xs_worker_gauges_t *g)
{
    xs_metrics_set(wm->metrics, wm->mid[M_LAG], NULL, (double)g->lag_known);
    xs_metrics_set(wm->metrics, wm->mid[M_ASSIGNED], NULL, g->assigned);
    xs_metrics_set(wm->metrics, wm->mid[M_READY], NULL, g->ready ? 1 : 0);
    xs_metrics_set(wm->metrics, wm->mid[M_CACHE_HITS], NULL, (double)g->cache_hits);
    xs_metrics_set(wm->metrics, wm->mid[M_CACHE_MISSES], NULL, (double)g->cache_misses);
    uint64_t reads = g->cache_hits + g->cache_misses;
    xs_metrics_set(wm->metrics, wm->mid[M_CACHE_RATIO], NULL,
                   reads ? (double)g->cache_hits / (double)reads : 0);
    xs_metrics_set(wm->metrics, wm->mid[M_ROCKSDB_BYTES], NULL, (double)g->store_bytes);
}
