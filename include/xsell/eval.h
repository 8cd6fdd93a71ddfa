/*
 * xsell — offline evaluation: prequential (test-then-train) replay of a
 * data set through the same engine code the worker runs, without Kafka.
 *
 * Events are applied in the data set's event-time order. At each cart ADD
 * that is not the first item of its basket (the user has added something
 * since their last purchase), before the engine learns from the event, the
 * CART list the user would get right now is computed (top k, default 10)
 * and the added item is looked up in it: HitRate@k is the share of such
 * points where it appears, MRR@k the mean reciprocal rank (0 when absent).
 * Catalog coverage is the share of distinct items of the data set that
 * appeared in at least one evaluated list.
 */
#ifndef XSELL_EVAL_H
#define XSELL_EVAL_H

#include <stdint.h>
#include "xsell/dataset.h"
#include "xsell/engine.h"

typedef struct xs_eval_result {
    char name[48];
    uint64_t events;    /* events replayed */
    uint64_t points;    /* evaluation points */
    uint64_t hits;
    double mrr_sum;
    uint64_t recommended_items; /* distinct items ever recommended */
    uint64_t catalog_items;     /* distinct items in the data set */
    double seconds;
    xs_footprint_t footprint;
} xs_eval_result_t;

double xs_eval_hitrate(const xs_eval_result_t *r);
double xs_eval_mrr(const xs_eval_result_t *r);
double xs_eval_coverage(const xs_eval_result_t *r);

/*
 * Replays the data set through a fresh engine made from engine_opts and
 * evaluates at every point. name labels the result.
 */
xs_err_t xs_eval_run(const char *name, const xs_engine_opts_t *engine_opts, int k,
                     xs_format_t fmt, const char *const *paths, size_t n_paths,
                     const xs_dataset_opts_t *dopts, xs_eval_result_t *res, char *errstr,
                     size_t errstr_size);

#endif
