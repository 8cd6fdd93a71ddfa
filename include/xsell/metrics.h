/*
 * xsell — metrics: a small registry of counters and gauges with labels,
 * rendered in the Prometheus text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/):
 *
 *   # HELP xsell_events_total Events applied to the engine.
 *   # TYPE xsell_events_total counter
 *   xsell_events_total{topic="xsell.cart",type="ADD"} 42
 *
 * A family is declared once (name, type, help, label names); a series is
 * created on first use of a label-value tuple. Families without labels have
 * their single series from the start, so they render as 0 before anything
 * happens. Memory is bounded: a family keeps at most `max_series` series;
 * label tuples beyond that are folded into one series whose every label is
 * "_overflow" (and counted in xsell_metrics_overflow_total), so a hostile
 * stream cannot grow the registry. Callers should use bounded label values
 * anyway (enum names, arm names, topics), never ids or free text.
 *
 * Thread safety: every function may be called from any thread; one mutex
 * protects the registry (the worker updates, the HTTP thread renders).
 *
 * The attribution map (xs_metrics_listmap_t) remembers the arm of the last
 * `capacity` lists published, so clicks and purchases carrying a list_id
 * can be attributed to the list's experiment arm: a ring of list keys plus
 * a hash index; inserting into a full ring forgets the oldest list. Keys are
 * the first 64 bits of the 128-bit hex list_id. Not thread-safe (the worker
 * thread owns it).
 */
#ifndef XSELL_METRICS_H
#define XSELL_METRICS_H

#include <stddef.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xs_metric_type {
    XS_METRIC_COUNTER = 0,
    XS_METRIC_GAUGE,
    XS_METRIC_HISTOGRAM, /* declared with xs_metrics_define_histogram() */
} xs_metric_type_t;

#define XS_METRICS_MAX_LABELS 6
#define XS_METRICS_MAX_BUCKETS 32
#define XS_METRICS_MAX_FAMILIES 64

typedef struct xs_metrics xs_metrics_t;

/* max_series: per family (0 = 256). NULL on allocation failure. */
xs_metrics_t *xs_metrics_new(size_t max_series);
void xs_metrics_destroy(xs_metrics_t *m); /* NULL is a no-op */

/*
 * Declares a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*; labels is a
 * comma-separated list of label names ("topic,type") or NULL for none.
 * Returns the family id (>= 0), or -1 for an invalid name, too many labels
 * or families, or a duplicate name.
 */
int xs_metrics_define(xs_metrics_t *m, const char *name, xs_metric_type_t type, const char *help,
                      const char *labels);

/*
 * Declares a histogram family: bounds are the buckets' upper bounds,
 * strictly ascending and finite (+Inf is implied), at most
 * XS_METRICS_MAX_BUCKETS. Rendered as <name>_bucket{...,le="b"} (cumulative),
 * <name>_sum and <name>_count. -1 as xs_metrics_define(), or for bad bounds.
 */
int xs_metrics_define_histogram(xs_metrics_t *m, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t n_bounds);
/* One observation into the histogram series of `values` (NaN ignored). */
void xs_metrics_observe(xs_metrics_t *m, int family, const char *const *values, double v);
/* Creates the series of `values` at zero when missing, so it renders from the
 * start rather than after its first update. */
void xs_metrics_touch(xs_metrics_t *m, int family, const char *const *values);

/* Removes the series of `values` (families with labels only), e.g. a
 * partition no longer assigned; a later update creates it again. */
void xs_metrics_remove(xs_metrics_t *m, int family, const char *const *values);

/* Adds delta to (counter) or sets (gauge or counter) the series of `values`
 * (one string per label of the family; NULL values render as ""). Invalid
 * family ids are ignored. */
void xs_metrics_add(xs_metrics_t *m, int family, const char *const *values, double delta);
void xs_metrics_set(xs_metrics_t *m, int family, const char *const *values, double value);
/* The current value of a series (0 when it does not exist). */
double xs_metrics_get(xs_metrics_t *m, int family, const char *const *values);

/* Appends the whole registry in text format 0.0.4. */
xs_err_t xs_metrics_render(xs_metrics_t *m, xs_buf_t *out);

/* Content-Type of the rendered text. */
#define XS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- attribution map: list_id -> arm ------------------------------------ */

typedef struct xs_metrics_listmap xs_metrics_listmap_t;

xs_metrics_listmap_t *xs_metrics_listmap_new(size_t capacity); /* NULL on allocation failure */
void xs_metrics_listmap_destroy(xs_metrics_listmap_t *lm);     /* NULL is a no-op */
/* Remembers the arm (NULL or "" = no arm) of a published list. Lists whose
 * id is not 32 hex digits are ignored (XS_ERR_INVALID). */
xs_err_t xs_metrics_listmap_put(xs_metrics_listmap_t *lm, const char *list_id, const char *arm);
/* The arm of a remembered list ("none" for a list without arm), or NULL when
 * the list is unknown or already forgotten. The string lives as long as lm. */
const char *xs_metrics_listmap_get(const xs_metrics_listmap_t *lm, const char *list_id);
size_t xs_metrics_listmap_len(const xs_metrics_listmap_t *lm);

#ifdef __cplusplus
}
#endif
#endif
