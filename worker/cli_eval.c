/*
 * xsell eval — offline prequential evaluation of the engine on a data set,
 * side by side with the exact co-occurrence reference and popularity alone.
 *
 *   xsell eval --format FMT [--json] [--config FILE] [--set key=value]...
 *              [--k N] [--seed S] [--max-events N] [--quiet] FILE...
 *
 * The models run on their own threads; the main thread shows their progress
 * on stderr (cli_progress.h): the events replayed so far summed over the
 * models, with a percentage and an ETA when --max-events bounds the run.
 */
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cli_common.h"
#include "cli_progress.h"
#include "xsell/config.h"
#include "xsell/eval.h"
#include "xsell/json.h"
#include "xsell/settings.h"

typedef struct run {
    const char *name;
    xs_engine_opts_t eo;
    int k;
    xs_dataset_format_t fmt;
    const char *const *paths;
    size_t n_paths;
    xs_dataset_opts_t dopts;
    xs_eval_result_t res;
    xs_err_t err;
    char errstr[512];
    _Atomic uint64_t progress; /* events replayed so far (dopts.progress) */
    _Atomic bool done;         /* set by the run's thread when it returns */
} run_t;

static void *run_thread(void *arg)
{
    run_t *r = arg;
    r->err = xs_eval_run(r->name, &r->eo, r->k, r->fmt, r->paths, r->n_paths, &r->dopts, &r->res,
                         r->errstr, sizeof(r->errstr));
    atomic_store(&r->done, true);
    return NULL;
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: xsell eval --format online-retail|retailrocket|jsonl|baskets|yoochoose\n"
            "                  [--json] [--config FILE] [--set key=value]... [--k N] [--seed S]\n"
            "                  [--max-events N] [--threads N] [--models LIST] [--quiet] FILE...\n"
            "  --models LIST  subset of xsell,exact,popularity (default: all three)\n"
            "  -q, --quiet    no progress on stderr\n");
}

/* A JSON string (item ids are data: escape what JSON wants escaped). */
static void json_str(const char *v)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p == '"' || *p == '\\')
            printf("\\%c", *p);
        else if (*p < 0x20)
            printf("\\u%04x", *p);
        else
            putchar(*p);
    }
    putchar('"');
}

static void json_rate(const char *key, const xs_eval_rate_t *r)
{
    printf("\"%s\":{\"points\":%llu,\"hits\":%llu,\"hitrate\":%.6f,\"mrr\":%.6f}", key,
           (unsigned long long)r->points, (unsigned long long)r->hits, xs_eval_rate_hit(r),
           xs_eval_rate_mrr(r));
}

/* The popular items' list report, summarised. */
typedef struct top_summary {
    int items, with_k, empty;
    double mean_len, mean_overlap; /* overlap: share of the exact top k found */
    int overlap_items;
} top_summary_t;

static top_summary_t top_summary(const xs_eval_result_t *r, int k)
{
    top_summary_t s = {0};
    s.items = r->n_top;
    for (int i = 0; i < r->n_top; i++) {
        const xs_eval_top_item_t *t = &r->top[i];
        s.with_k += t->list_len >= k;
        s.empty += t->list_len == 0;
        s.mean_len += t->list_len;
        if (t->ref_len > 0) {
            s.mean_overlap += (double)t->overlap / t->ref_len;
            s.overlap_items++;
        }
    }
    if (s.items)
        s.mean_len /= s.items;
    if (s.overlap_items)
        s.mean_overlap /= s.overlap_items;
    return s;
}

static void print_json(const run_t *runs, int n, const char *fmt_name, int k)
{
    printf("{\"format\":\"%s\",\"k\":%d,\"results\":[", fmt_name, k);
    for (int i = 0; i < n; i++) {
        const xs_eval_result_t *r = &runs[i].res;
        printf("%s{\"model\":\"%s\",\"events\":%llu,\"points\":%llu,\"hits\":%llu,"
               "\"hitrate\":%.6f,\"mrr\":%.6f,\"placement\":\"%s\",\"coverage\":%.6f,"
               "\"events_per_s\":%.0f,"
               "\"bytes_per_item_avg\":%.1f,\"bytes_per_item_max\":%llu,"
               "\"bytes_per_user_avg\":%.1f,\"bytes_per_user_max\":%llu,\"users\":%llu,"
               "\"items\":%llu,",
               i ? "," : "", r->name, (unsigned long long)r->events, (unsigned long long)r->points,
               (unsigned long long)r->hits, xs_eval_hitrate(r), xs_eval_mrr(r),
               xs_event_placement_name(r->placement), xs_eval_coverage(r),
               r->seconds > 0 ? r->events / r->seconds : 0, r->footprint.item_bytes_avg,
               (unsigned long long)r->footprint.item_bytes_max, r->footprint.user_bytes_avg,
               (unsigned long long)r->footprint.user_bytes_max,
               (unsigned long long)r->footprint.users, (unsigned long long)r->footprint.items);
        json_rate("cart_points", &r->cart);
        putchar(',');
        json_rate("view_points", &r->view);
        printf(",\"live\":{");
        for (int p = 0; p < XS_PLACEMENT__COUNT; p++) {
            if (p)
                putchar(',');
            json_rate(xs_event_placement_name((xs_placement_t)p), &r->live[p]);
        }
        printf("},\"deciles\":[");
        for (int d = 0; d < XS_EVAL_DECILES; d++) {
            const xs_eval_decile_t *D = &r->deciles[d];
            printf("%s{\"decile\":%d,\"items\":%llu,\"interactions_min\":%llu,"
                   "\"interactions_max\":%llu,",
                   d ? "," : "", d + 1, (unsigned long long)D->items,
                   (unsigned long long)D->interactions_min,
                   (unsigned long long)D->interactions_max);
            json_rate("rate", &D->rate);
            putchar('}');
        }
        printf("],\"violations\":{");
        const xs_eval_violations_t *v = &r->viol;
        uint64_t tot[6] = {0};
        for (int p = 0; p < XS_PLACEMENT__COUNT; p++) {
            printf("%s\"%s\":{\"lists\":%llu,\"items\":%llu,\"in_cart_items\":%llu,"
                   "\"rebuy_items\":%llu,\"in_cart_lists\":%llu,\"rebuy_lists\":%llu}",
                   p ? "," : "", xs_event_placement_name((xs_placement_t)p),
                   (unsigned long long)v->lists[p], (unsigned long long)v->items[p],
                   (unsigned long long)v->in_cart_items[p], (unsigned long long)v->rebuy_items[p],
                   (unsigned long long)v->in_cart_lists[p], (unsigned long long)v->rebuy_lists[p]);
            tot[0] += v->lists[p];
            tot[1] += v->items[p];
            tot[2] += v->in_cart_items[p];
            tot[3] += v->rebuy_items[p];
            tot[4] += v->in_cart_lists[p];
            tot[5] += v->rebuy_lists[p];
        }
        printf(",\"total\":{\"lists\":%llu,\"items\":%llu,\"in_cart_items\":%llu,"
               "\"rebuy_items\":%llu,\"in_cart_lists\":%llu,\"rebuy_lists\":%llu}}",
               (unsigned long long)tot[0], (unsigned long long)tot[1], (unsigned long long)tot[2],
               (unsigned long long)tot[3], (unsigned long long)tot[4], (unsigned long long)tot[5]);
        top_summary_t s = top_summary(r, k);
        printf(",\"top_items\":{\"class\":\"%s\",\"transactions\":%llu,\"items\":%d,"
               "\"with_k\":%d,\"empty\":%d,\"mean_len\":%.3f,\"mean_overlap\":%.4f,"
               "\"list\":[",
               r->top_class == XS_CLASS_BOUGHT ? "bought" : "viewed",
               (unsigned long long)r->transactions, s.items, s.with_k, s.empty, s.mean_len,
               s.mean_overlap);
        for (int t = 0; t < r->n_top; t++) {
            const xs_eval_top_item_t *T = &r->top[t];
            printf("%s{\"item\":", t ? "," : "");
            json_str(T->item_id);
            printf(",\"transactions\":%u,\"list_len\":%d,\"ref_len\":%d,\"overlap\":%d}",
                   T->transactions, T->list_len, T->ref_len, T->overlap);
        }
        printf("]}}");
    }
    printf("]}\n");
}

static void print_table(const run_t *runs, int n, const char *fmt_name, int k)
{
    const xs_eval_result_t *x = &runs[0].res;
    printf("data set: %s, %llu events, %llu evaluation points (%s lists: %s), %llu items, "
           "k = %d\n\n",
           fmt_name, (unsigned long long)x->events, (unsigned long long)x->points,
           xs_event_placement_name(x->placement),
           x->placement == XS_PLACEMENT_CART ? "cart ADDs after the first of a basket"
                                             : "PRODUCT_VIEWs after the first",
           (unsigned long long)x->catalog_items, k);
    printf("%-28s %10s %8s %9s %10s %16s %16s\n", "model", "HitRate@k", "MRR@k", "coverage",
           "events/s", "bytes/item avg|max", "bytes/user avg|max");
    for (int i = 0; i < n; i++) {
        const xs_eval_result_t *r = &runs[i].res;
        printf("%-28s %10.4f %8.4f %9.4f %10.0f %9.0f|%-6llu %9.0f|%-6llu\n", r->name,
               xs_eval_hitrate(r), xs_eval_mrr(r), xs_eval_coverage(r),
               r->seconds > 0 ? r->events / r->seconds : 0, r->footprint.item_bytes_avg,
               (unsigned long long)r->footprint.item_bytes_max, r->footprint.user_bytes_avg,
               (unsigned long long)r->footprint.user_bytes_max);
    }
    if (n == 3) {
        double hx = xs_eval_hitrate(&runs[0].res), hr = xs_eval_hitrate(&runs[1].res),
               hp = xs_eval_hitrate(&runs[2].res);
        printf("\nxsell / popularity HitRate: %.2fx   xsell / exact reference: %.3f\n",
               hp > 0 ? hx / hp : 0, hr > 0 ? hx / hr : 0);
        printf("(bytes/item of the reference row are its sketch records; it counts with %llu "
               "exact co-occurrence entries instead)\n",
               (unsigned long long)runs[1].res.footprint.exact_pairs);
    }
    printf("\nHitRate@k by popularity decile of the trigger item (1 = most popular tenth):\n");
    printf("%-28s", "model");
    for (int d = 0; d < XS_EVAL_DECILES; d++)
        printf(" %6d", d + 1);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("%-28s", runs[i].res.name);
        for (int d = 0; d < XS_EVAL_DECILES; d++)
            printf(" %6.3f", xs_eval_rate_hit(&runs[i].res.deciles[d].rate));
        printf("\n");
    }
    printf("%-28s", "(points)");
    for (int d = 0; d < XS_EVAL_DECILES; d++)
        printf(" %6llu", (unsigned long long)x->deciles[d].rate.points);
    printf("\n\nat every cart ADD, against the last list of each placement (the live metric):\n");
    for (int i = 0; i < n; i++) {
        printf("%-28s", runs[i].res.name);
        for (int p = 0; p < XS_PLACEMENT__COUNT; p++)
            printf("  %s %.4f (%llu)", xs_event_placement_name((xs_placement_t)p),
                   xs_eval_rate_hit(&runs[i].res.live[p]),
                   (unsigned long long)runs[i].res.live[p].points);
        printf("\n");
    }
    printf("\nrule violations in published lists (exact cart and purchases kept by eval):\n");
    for (int i = 0; i < n; i++) {
        const xs_eval_violations_t *v = &runs[i].res.viol;
        uint64_t l = 0, it = 0, ci = 0, ri = 0, cl = 0, rl = 0;
        for (int p = 0; p < XS_PLACEMENT__COUNT; p++) {
            l += v->lists[p];
            it += v->items[p];
            ci += v->in_cart_items[p];
            ri += v->rebuy_items[p];
            cl += v->in_cart_lists[p];
            rl += v->rebuy_lists[p];
        }
        printf("%-28s %llu lists, %llu items: in cart %llu items (%llu lists), bought within "
               "rebuy_days %llu items (%llu lists)\n",
               runs[i].res.name, (unsigned long long)l, (unsigned long long)it,
               (unsigned long long)ci, (unsigned long long)cl, (unsigned long long)ri,
               (unsigned long long)rl);
    }
    printf("\nthe %d most popular items' %s neighbour lists (as the scorer reads them) against "
           "their exact top %d by LLR over %llu transactions:\n",
           x->n_top, x->top_class == XS_CLASS_BOUGHT ? "bought" : "viewed", k,
           (unsigned long long)x->transactions);
    for (int i = 0; i < n; i++) {
        if (runs[i].res.n_top == 0)
            continue;
        top_summary_t s = top_summary(&runs[i].res, k);
        printf("%-28s %d of %d with >= %d neighbours, %d empty, mean length %.1f, mean overlap "
               "of the top %d %.3f\n",
               runs[i].res.name, s.with_k, s.items, k, s.empty, s.mean_len, k, s.mean_overlap);
    }
}

int xs_cli_eval(int argc, char **argv)
{
    char errstr[1024] = "";
    int rc = 2, fmt = -1, k = 10, threads = 2;
    const char *models = "xsell,exact,popularity";
    bool json = false, quiet = false;
    xs_cli_progress_t progress;
    xs_config_t *cfg = xs_config_new();
    xs_dataset_opts_t dopts;
    xs_dataset_opts_default(&dopts);
    xs_cli_strlist_t files = {0};
    if (!cfg)
        return 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool more = i + 1 < argc;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (!strcmp(a, "--json")) {
            json = true;
        } else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
            quiet = true;
        } else if (!strcmp(a, "--format") && more) {
            fmt = xs_dataset_format_from_name(argv[++i]);
            if (fmt < 0) {
                fprintf(stderr, "xsell eval: unknown format '%s'\n", argv[i]);
                goto out;
            }
        } else if (!strcmp(a, "--config") && more) {
            if (xs_config_load_file(cfg, argv[++i], errstr, sizeof(errstr))) {
                fprintf(stderr, "xsell eval: %s\n", errstr);
                goto out;
            }
        } else if (!strcmp(a, "--set") && more) {
            if (xs_config_set_pair(cfg, argv[++i], "--set", errstr, sizeof(errstr))) {
                fprintf(stderr, "xsell eval: %s\n", errstr);
                goto out;
            }
        } else if (!strcmp(a, "--models") && more) {
            models = argv[++i];
        } else if (!strcmp(a, "--k") && more) {
            if (!xs_cli_parse_int("--k", argv[++i], 1, XS_LIST_MAX_ITEMS, &k, errstr,
                                  sizeof(errstr))) {
                fprintf(stderr, "xsell eval: %s\n", errstr);
                goto out;
            }
        } else if (!strcmp(a, "--threads") && more) {
            if (!xs_cli_parse_int("--threads", argv[++i], 1, 3, &threads, errstr, sizeof(errstr))) {
                fprintf(stderr, "xsell eval: %s\n", errstr);
                goto out;
            }
        } else if (!strcmp(a, "--seed") && more) {
            if (!xs_cli_parse_u64("--seed", argv[++i], &dopts.seed, errstr, sizeof(errstr))) {
                fprintf(stderr, "xsell eval: %s\n", errstr);
                goto out;
            }
        } else if (!strcmp(a, "--max-events") && more) {
            if (!xs_cli_parse_u64("--max-events", argv[++i], &dopts.max_events, errstr,
                                  sizeof(errstr))) {
                fprintf(stderr, "xsell eval: %s\n", errstr);
                goto out;
            }
        } else if (a[0] == '-' && a[1]) {
            fprintf(stderr, "xsell eval: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            goto out;
        } else if (xs_cli_strlist_add(&files, a) != XS_OK) {
            rc = 1;
            goto out;
        }
    }
    if (fmt < 0 || files.n == 0) {
        usage(stderr);
        goto out;
    }
    xs_params_t base;
    xs_settings_params(cfg, &base);
    run_t runs[3];
    memset(runs, 0, sizeof(runs));
    const char *names[3] = {"xsell", "exact co-occurrence (ref)", "popularity (trending)"};
    for (int r = 0; r < 3; r++) {
        runs[r].name = names[r];
        xs_engine_opts_default(&runs[r].eo);
        runs[r].eo.params = base;
        runs[r].eo.cache_bytes = 0; /* everything in memory */
        runs[r].k = k;
        runs[r].fmt = (xs_dataset_format_t)fmt;
        runs[r].paths = (const char *const *)files.v;
        runs[r].n_paths = files.n;
        runs[r].dopts = dopts;
    }
    for (int r = 0; r < 3; r++) /* the worker publishes lists of list.length.*: k each */
        for (int p = 0; p < XS_PLACEMENT__COUNT; p++)
            runs[r].eo.params.list_len[p] = k;
    runs[1].eo.exact_pairs = true;
    runs[2].eo.params.popularity_only = true;
    /* Keep the selected models, in the fixed order xsell, exact, popularity. */
    static const char *const keys[3] = {"xsell", "exact", "popularity"};
    int n_runs = 0;
    for (int r = 0; r < 3; r++) {
        const char *p = strstr(models, keys[r]);
        size_t kl = strlen(keys[r]);
        if (p && (p == models || p[-1] == ',') && (p[kl] == '\0' || p[kl] == ','))
            runs[n_runs++] = runs[r];
    }
    if (n_runs == 0) {
        fprintf(stderr, "xsell eval: --models takes a comma-separated subset of "
                        "xsell,exact,popularity\n");
        goto out;
    }
    for (int r = 0; r < n_runs; r++) {
        atomic_init(&runs[r].progress, 0);
        atomic_init(&runs[r].done, false);
        runs[r].dopts.progress = &runs[r].progress;
    }
    xs_cli_progress_init(&progress, "xsell eval", "events", dopts.max_events * (uint64_t)n_runs,
                         quiet);
    /* Up to `threads` runs at a time: each has its own engine and reader;
     * this thread shows their progress until they return. */
    uint64_t replayed = 0;
    for (int start = 0; start < n_runs; start += threads) {
        pthread_t th[3];
        int n = 0;
        for (int r = start; r < n_runs && r < start + threads; r++) {
            if (pthread_create(&th[n], NULL, run_thread, &runs[r]) != 0) {
                fprintf(stderr, "xsell eval: cannot start a thread\n");
                for (int t = 0; t < n; t++)
                    pthread_join(th[t], NULL);
                rc = 1;
                goto out;
            }
            n++;
        }
        for (;;) {
            bool all_done = true;
            for (int r = start; r < start + n; r++)
                all_done = all_done && atomic_load(&runs[r].done);
            replayed = 0;
            for (int r = 0; r < n_runs; r++)
                replayed += atomic_load_explicit(&runs[r].progress, memory_order_relaxed);
            if (all_done)
                break;
            int64_t now = xs_cli_now_ms();
            if (xs_cli_progress_due(&progress, now))
                xs_cli_progress_print(&progress, replayed, NULL, now);
            xs_cli_sleep_ms(progress.interval_ms < 50 ? (int)progress.interval_ms : 50);
        }
        for (int t = 0; t < n; t++)
            pthread_join(th[t], NULL);
    }
    xs_cli_progress_finish(&progress, replayed, NULL);
    for (int r = 0; r < n_runs; r++)
        if (runs[r].err) {
            fprintf(stderr, "xsell eval: %s: %s\n", runs[r].name, runs[r].errstr);
            rc = 1;
            goto out;
        }
    if (json)
        print_json(runs, n_runs, xs_dataset_format_name((xs_dataset_format_t)fmt), k);
    else
        print_table(runs, n_runs, xs_dataset_format_name((xs_dataset_format_t)fmt), k);
    rc = 0;
out:
    xs_cli_strlist_free(&files);
    xs_config_destroy(cfg);
    return rc;
}
