/*
 * cli_order.c — `xsell bench order`: how much the neighbour lists depend on
 * the order and grouping in which an engine sees the same pairs, in
 * process (no broker): what items.global changes (docs/SCALING.md).
 *
 *   xsell bench order [--events N] [--partitions P] [--every K] [--chunk C]
 *                     [--exact] [--set key=value]... --dataset FORMAT FILE...
 *
 * The data set's first N events (default 40,000; the catalog's ItemUpdates
 * count, as `xsell produce --max-events` would load them) go to input
 * partitions by user with the producers' partitioner (input.partitioner:
 * consistent_random, CRC32 of the user id, as the worker's input topics
 * hold them; P, default 6). Four engines, with the worker's settings
 * (--set as the worker's configuration):
 *
 *   A    without defer_items, every event in input order;
 *   A'   without defer_items, the same users over 2 partitions, consumed in
 *        turn C events at a time (default 500, a fetch), the catalog first:
 *        the one worker, another interleaving;
 *   B    with defer_items (items.global), the events in input order; every
 *        K events (default 2,000, a checkpoint) each partition's deltas are
 *        taken and applied, partition 0 first;
 *   B'   as B, checkpoints every K/2 events, the partitions' batches
 *        applied last partition first.
 *
 * Printed, for A against each other engine and B against B': the mean
 * overlap of the items' top 10 bought-together neighbours, over the items
 * with 10 in the first engine (the neighbours of its stored list by
 * similarity, ties by the smaller item hash: as tests/integration/
 * test_global.c compares workers), overall and split by whether the
 * item's summary is full in A (176 entries: HeavyKeeper's decay has
 * replaced entries, in an order-dependent way) or not (its counts are
 * exact, the same in every engine); "identical in order" counts the top 10
 * equal entry by entry. The same from the whole summaries ranked at the end
 * (xs_engine_neighbours: every entry with the current counts, without the
 * neighbour's own count of the pair), and from the summaries' top 10
 * entries by count, with the number of A's entries that the other holds
 * with the same count. Then every engine's lists are ranked whole now
 * (xs_engine_rank_lists, as the item stage ranks a stale list) and the
 * stored lists compared again: what is left is the summaries' difference,
 * the rest was the lists' age (each entry's similarity is from the moment
 * it was last scored). With --exact the engines count pairs exactly (the
 * reference mode, no stored lists: ranked when read).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "xsell/config.h"
#include "xsell/dataset.h"
#include "xsell/engine.h"
#include "xsell/hash.h"
#include "xsell/kafka.h"
#include "xsell/settings.h"

#define TOP 10

typedef struct ord_events {
    xs_event_t *v;
    size_t n, cap;
    uint64_t max;
} ord_events_t;

static xs_err_t keep_event(void *opaque, const xs_event_t *ev)
{
    ord_events_t *s = opaque;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 4096;
        xs_event_t *v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return XS_ERR_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    xs_event_init(&s->v[s->n], ev->kind);
    xs_err_t err = xs_event_copy(&s->v[s->n], ev);
    if (!err)
        s->n++;
    return err;
}

static const char *user_of(const xs_event_t *ev)
{
    return ev->user_id ? ev->user_id : ev->session_id;
}

static uint16_t part_of(const char *partitioner, const xs_event_t *ev, int n_parts)
{
    const char *u = user_of(ev);
    if (ev->kind == XS_KIND_ITEM || !u || !*u)
        return 0;
    int32_t p = xs_producer_partition(partitioner, u, strlen(u), n_parts);
    return p < 0 ? 0 : (uint16_t)p;
}

typedef struct ord_run {
    const ord_events_t *ev;
    const xs_engine_opts_t *eo;
    const char *partitioner;
} ord_run_t;

static int process(xs_engine_t *e, uint16_t part, const xs_event_t *ev)
{
    xs_list_t list;
    bool has = false;
    char errstr[512] = "";
    xs_event_list_init(&list);
    xs_err_t err = xs_engine_process(e, part, ev, &list, &has, errstr, sizeof(errstr));
    xs_event_list_clear(&list);
    if (err)
        fprintf(stderr, "xsell bench order: process: %s\n", errstr);
    return err ? 1 : 0;
}

static xs_engine_t *engine_new(const xs_engine_opts_t *eo, bool defer)
{
    xs_engine_opts_t o = *eo;
    o.defer_items = defer;
    char errstr[512] = "";
    xs_engine_t *e = xs_engine_new(&o, errstr, sizeof(errstr));
    if (!e)
        fprintf(stderr, "xsell bench order: engine: %s\n", errstr);
    return e;
}

/* A: input order. */
static xs_engine_t *run_input_order(const ord_run_t *r, int n_parts)
{
    xs_engine_t *e = engine_new(r->eo, false);
    for (size_t i = 0; e && i < r->ev->n; i++)
        if (process(e, part_of(r->partitioner, &r->ev->v[i], n_parts), &r->ev->v[i])) {
            xs_engine_destroy(e);
            return NULL;
        }
    return e;
}

/* A': the catalog first, then n_parts partitions in turn, chunk events each. */
static xs_engine_t *run_interleaved(const ord_run_t *r, int n_parts, size_t chunk)
{
    xs_engine_t *e = engine_new(r->eo, false);
    size_t *next = calloc((size_t)n_parts, sizeof(*next));
    if (!e || !next)
        goto fail;
    for (size_t i = 0; i < r->ev->n; i++)
        if (r->ev->v[i].kind == XS_KIND_ITEM && process(e, 0, &r->ev->v[i]))
            goto fail;
    for (bool more = true; more;) {
        more = false;
        for (int p = 0; p < n_parts; p++) {
            size_t taken = 0;
            size_t i = next[p];
            for (; i < r->ev->n && taken < chunk; i++) {
                const xs_event_t *ev = &r->ev->v[i];
                if (ev->kind == XS_KIND_ITEM || part_of(r->partitioner, ev, n_parts) != p)
                    continue;
                if (process(e, (uint16_t)p, ev))
                    goto fail;
                taken++;
            }
            next[p] = i;
            more |= i < r->ev->n;
        }
    }
    free(next);
    return e;
fail:
    free(next);
    xs_engine_destroy(e);
    return NULL;
}

static int take_apply(xs_engine_t *e, uint16_t p)
{
    xs_delta_batch_t b = {0};
    char errstr[512] = "";
    xs_err_t err = xs_engine_take_deltas(e, p, &b, errstr, sizeof(errstr));
    if (!err)
        err = xs_engine_apply_deltas(e, &b, errstr, sizeof(errstr));
    xs_delta_batch_clear(&b);
    if (err)
        fprintf(stderr, "xsell bench order: deltas: %s\n", errstr);
    return err ? 1 : 0;
}

/* B: deferred, every partition's deltas taken every `every` events. */
static xs_engine_t *run_deferred(const ord_run_t *r, int n_parts, size_t every, bool reverse)
{
    xs_engine_t *e = engine_new(r->eo, true);
    for (size_t i = 0; e && i < r->ev->n; i++) {
        if (process(e, part_of(r->partitioner, &r->ev->v[i], n_parts), &r->ev->v[i]))
            goto fail;
        if ((i + 1) % every == 0 || i + 1 == r->ev->n)
            for (int k = 0; k < n_parts; k++)
                if (take_apply(e, (uint16_t)(reverse ? n_parts - 1 - k : k)))
                    goto fail;
    }
    return e;
fail:
    xs_engine_destroy(e);
    return NULL;
}

/* ---- comparing ------------------------------------------------------------------- */

typedef struct ord_top {
    uint64_t h[TOP];
    int n;
} ord_top_t;

typedef enum ord_view {
    VIEW_LIST = 0, /* the stored list (xs_engine_item_list) */
    VIEW_RANKED,   /* the whole summary ranked now (xs_engine_neighbours) */
    VIEW_COUNT,    /* the summary's entries by count */
} ord_view_t;

typedef struct ord_nb {
    uint64_t h;
    uint32_t count;
} ord_nb_t;

static int cmp_count(const void *a, const void *b)
{
    const ord_nb_t *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* An item's whole summary (entries, counts) or its top 10 by a view. */
static int top_of(xs_engine_t *e, const char *id, ord_view_t view, ord_top_t *t, ord_nb_t **all,
                  size_t *cap_all, int *n_all)
{
    xs_neighbour_t *v = NULL;
    int n = 0;
    char errstr[512] = "";
    xs_err_t err = view == VIEW_LIST ? xs_engine_item_list(e, id, XS_CLASS_BOUGHT, TOP, &v, &n,
                                                           errstr, sizeof(errstr))
                                     : xs_engine_neighbours(e, id, XS_CLASS_BOUGHT, 100000, &v, &n,
                                                            NULL, errstr, sizeof(errstr));
    if (err) {
        fprintf(stderr, "xsell bench order: %s: %s\n", id, errstr);
        return 1;
    }
    t->n = 0;
    if (view == VIEW_COUNT) {
        if ((size_t)n > *cap_all) {
            ord_nb_t *x = realloc(*all, (size_t)n * sizeof(*x));
            if (!x) {
                xs_engine_neighbours_free(v, n);
                return 1;
            }
            *all = x;
            *cap_all = (size_t)n;
        }
        ord_nb_t *w = *all;
        for (int k = 0; k < n; k++)
            w[k] = (ord_nb_t){xs_hash_str(v[k].item_id), v[k].count - v[k].err};
        *n_all = n;
        qsort(w, (size_t)n, sizeof(*w), cmp_count);
        for (int k = 0; k < n && k < TOP; k++)
            t->h[t->n++] = w[k].h;
    } else {
        for (int k = 0; k < n && t->n < TOP; k++)
            if (v[k].similarity > 0)
                t->h[t->n++] = xs_hash_str(v[k].item_id);
    }
    xs_engine_neighbours_free(v, n);
    return 0;
}

static int common_of(const ord_top_t *a, const ord_top_t *b)
{
    int c = 0;
    for (int i = 0; i < a->n; i++)
        for (int k = 0; k < b->n; k++)
            c += a->h[i] == b->h[k];
    return c;
}

typedef struct ord_cmp {
    double sum, sum_full;
    size_t n, identical, n_full;
    size_t entries_a, entries_shared;
} ord_cmp_t;

static int cmp_entries(const void *a, const void *b)
{
    const ord_nb_t *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

/* Mean top-10 overlap of a and b by a view, over items with 10 in a. */
static int compare(xs_engine_t *a, xs_engine_t *b, char **ids, const bool *full, size_t n_ids,
                   ord_view_t view, ord_cmp_t *c)
{
    memset(c, 0, sizeof(*c));
    size_t cap_a = 0, cap_b = 0;
    ord_nb_t *ea = NULL, *eb = NULL;
    for (size_t i = 0; i < n_ids; i++) {
        ord_top_t ta, tb;
        int na = 0, nb = 0;
        if (top_of(a, ids[i], view, &ta, &ea, &cap_a, &na) ||
            top_of(b, ids[i], view, &tb, &eb, &cap_b, &nb))
            goto fail;
        if (view == VIEW_COUNT) { /* entries held by both summaries */
            qsort(eb, (size_t)nb, sizeof(*eb), cmp_entries);
            for (int k = 0; k < na; k++) {
                const ord_nb_t *x = bsearch(&ea[k], eb, (size_t)nb, sizeof(*eb), cmp_entries);
                c->entries_shared += x && x->count == ea[k].count;
            }
            c->entries_a += (size_t)na;
        }
        if (ta.n < TOP)
            continue;
        int common = common_of(&ta, &tb);
        c->sum += (double)common / TOP;
        c->n++;
        if (full[i]) {
            c->sum_full += (double)common / TOP;
            c->n_full++;
        }
        c->identical += common == TOP && tb.n == TOP && !memcmp(ta.h, tb.h, sizeof(ta.h));
    }
    free(ea);
    free(eb);
    return 0;
fail:
    free(ea);
    free(eb);
    return 1;
}

/* Prints the first n_views views' comparisons of a and b. */
static int report(const char *what, xs_engine_t *a, xs_engine_t *b, char **ids, const bool *full,
                  size_t n_ids, int n_views)
{
    static const char *names[] = {"stored lists", "summaries ranked now", "summaries by count"};
    for (int v = 0; v < n_views; v++) {
        ord_cmp_t c;
        if (compare(a, b, ids, full, n_ids, (ord_view_t)v, &c))
            return 1;
        printf("%-6s %-22s top-%d overlap %.4f over %zu items (identical in order: %zu); full "
               "summaries %.4f over %zu, others %.4f over %zu",
               what, names[v], TOP, c.n ? c.sum / (double)c.n : 0, c.n, c.identical,
               c.n_full ? c.sum_full / (double)c.n_full : 0, c.n_full,
               c.n > c.n_full ? (c.sum - c.sum_full) / (double)(c.n - c.n_full) : 0,
               c.n - c.n_full);
        if (v == VIEW_COUNT)
            printf("; entries with the same count %zu of %zu", c.entries_shared, c.entries_a);
        printf("\n");
    }
    return 0;
}

int xs_cli_order_bench(int argc, char **argv)
{
    char errstr[1024] = "";
    int rc = 2, n_parts = 6, fmt = -1;
    uint64_t n_events = 40000, every = 2000, chunk = 500;
    bool exact = false;
    xs_cli_strlist_t files = {0};
    ord_events_t ev = {0};
    char **ids = NULL;
    bool *full = NULL;
    size_t n_ids = 0;
    xs_engine_t *e[4] = {0};
    xs_config_t *cfg = xs_config_new();
    if (!cfg)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            printf(
                "usage: xsell bench order [--events N] [--partitions P] [--every K] [--chunk C]\n"
                "                         [--exact] [--set key=value]... --dataset FORMAT "
                "FILE...\n");
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--events") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &n_events, errstr, sizeof(errstr)))
                goto bad;
        } else if (!strcmp(a, "--every") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &every, errstr, sizeof(errstr)))
                goto bad;
            if (every < 2) {
                snprintf(errstr, sizeof(errstr), "--every: at least 2");
                goto bad;
            }
        } else if (!strcmp(a, "--chunk") && more) {
            if (!xs_cli_parse_u64(a, argv[++i], &chunk, errstr, sizeof(errstr)))
                goto bad;
            if (!chunk) {
                snprintf(errstr, sizeof(errstr), "--chunk: at least 1");
                goto bad;
            }
        } else if (!strcmp(a, "--partitions") && more) {
            if (!xs_cli_parse_int(a, argv[++i], 1, 256, &n_parts, errstr, sizeof(errstr)))
                goto bad;
        } else if (!strcmp(a, "--exact")) {
            exact = true;
        } else if (!strcmp(a, "--set") && more) {
            if (xs_config_set_pair(cfg, argv[++i], "--set", errstr, sizeof(errstr)) != XS_OK)
                goto bad;
        } else if (!strcmp(a, "--dataset") && more) {
            if ((fmt = xs_dataset_format_from_name(argv[++i])) < 0) {
                snprintf(errstr, sizeof(errstr), "--dataset: unknown format '%s'", argv[i]);
                goto bad;
            }
        } else if (a[0] != '-' && fmt >= 0) {
            if (xs_cli_strlist_add(&files, a) != XS_OK) {
                rc = 1;
                goto out;
            }
        } else {
            snprintf(errstr, sizeof(errstr), "unknown or incomplete option '%s'", a);
            goto bad;
        }
    }
    if (fmt < 0 || files.n == 0) {
        snprintf(errstr, sizeof(errstr), "--dataset FORMAT FILE... is required");
        goto bad;
    }
    rc = 1;
    xs_dataset_opts_t dopts;
    xs_dataset_opts_default(&dopts);
    dopts.max_events = n_events;
    if (xs_dataset_read((xs_dataset_format_t)fmt, (const char *const *)files.v, files.n, &dopts,
                        keep_event, &ev, NULL, errstr, sizeof(errstr))) {
        fprintf(stderr, "xsell bench order: %s\n", errstr);
        goto out;
    }
    ids = calloc(ev.n ? ev.n : 1, sizeof(*ids));
    if (!ids)
        goto out;
    for (size_t i = 0; i < ev.n; i++)
        if (ev.v[i].kind == XS_KIND_ITEM && ev.v[i].item_id)
            ids[n_ids++] = ev.v[i].item_id;
    xs_engine_opts_t eo;
    xs_engine_opts_default(&eo);
    xs_settings_params(cfg, &eo.params);
    eo.exact_pairs = exact;
    ord_run_t r = {&ev, &eo, xs_config_str(cfg, "input.partitioner")};
    printf("xsell bench order: %zu events, %zu catalog items, %d partitions, deltas every %" PRIu64
           " events, %s\n",
           ev.n, n_ids, n_parts, every, exact ? "exact counts" : "summaries");
    if (!(e[0] = run_input_order(&r, n_parts)) || !(e[1] = run_interleaved(&r, 2, chunk)) ||
        !(e[2] = run_deferred(&r, n_parts, every, false)) ||
        !(e[3] = run_deferred(&r, n_parts, every / 2, true)))
        goto out;
    if (!(full = calloc(n_ids ? n_ids : 1, sizeof(*full))))
        goto out;
    for (size_t i = 0; i < n_ids; i++) { /* A's summary of the item is full */
        xs_neighbour_t *v = NULL;
        int n = 0;
        if (xs_engine_neighbours(e[0], ids[i], XS_CLASS_BOUGHT, 100000, &v, &n, NULL, errstr,
                                 sizeof(errstr)))
            goto out;
        full[i] = n >= XS_SKETCH_BOUGHT_CAP && !exact;
        xs_engine_neighbours_free(v, n);
    }
    if (report("A/A'", e[0], e[1], ids, full, n_ids, 3) ||
        report("A/B", e[0], e[2], ids, full, n_ids, 3) ||
        report("A/B'", e[0], e[3], ids, full, n_ids, 3) ||
        report("B/B'", e[2], e[3], ids, full, n_ids, 3))
        goto out;
    /* the same summaries, every list ranked whole now: what is left is theirs */
    for (int k = 0; k < 4; k++)
        if (xs_engine_rank_lists(e[k], errstr, sizeof(errstr))) {
            fprintf(stderr, "xsell bench order: ranking the lists: %s\n", errstr);
            goto out;
        }
    printf("every list ranked whole now (xs_engine_rank_lists):\n");
    if (report("A/A'", e[0], e[1], ids, full, n_ids, 1) ||
        report("A/B", e[0], e[2], ids, full, n_ids, 1) ||
        report("A/B'", e[0], e[3], ids, full, n_ids, 1) ||
        report("B/B'", e[2], e[3], ids, full, n_ids, 1))
        goto out;
    rc = 0;
    goto out;
bad:
    fprintf(stderr, "xsell bench order: %s\n", errstr);
out:
    for (int k = 0; k < 4; k++)
        xs_engine_destroy(e[k]);
    for (size_t i = 0; i < ev.n; i++)
        xs_event_clear(&ev.v[i]);
    free(ev.v);
    free(ids);
    free(full);
    xs_cli_strlist_free(&files);
    xs_config_destroy(cfg);
    return rc;
}
