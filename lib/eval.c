/*
 * eval.c — prequential offline evaluation (see include/xsell/eval.h).
 */
#include "xsell/eval.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hmap.h"
#include "xsell/hash.h"

typedef struct eval_ctx {
    xs_engine_t *engine;
    int k;
    xs_eval_result_t *res;
    xs_hmap_t basket;      /* user hash -> items added since the last purchase (as count) */
    xs_hmap_t seen;        /* item hash -> 1: the data set's catalog */
    xs_hmap_t recommended; /* item hash -> 1 */
    char *errstr;
    size_t errstr_size;
} eval_ctx_t;

static xs_err_t mark(xs_hmap_t *m, uint64_t h)
{
    return h && !xs_hmap_get(m, h) ? xs_hmap_put(m, h, (void *)1) : XS_OK;
}

static xs_err_t evaluate(eval_ctx_t *c, const xs_event_t *ev, const char *target)
{
    xs_list_t list;
    xs_list_init(&list);
    xs_err_t err = xs_engine_recommend(c->engine, 0, ev->user_id, NULL, XS_PLACEMENT_CART, c->k,
                                       &list, c->errstr, c->errstr_size);
    if (!err) {
        c->res->points++;
        for (int i = 0; i < list.n_items; i++) {
            if (!err)
                err = mark(&c->recommended, xs_hash_str(list.items[i].item_id));
            if (strcmp(list.items[i].item_id, target) == 0) {
                c->res->hits++;
                c->res->mrr_sum += 1.0 / (i + 1);
            }
        }
    }
    xs_list_clear(&list);
    return err;
}

static xs_err_t on_event(void *opaque, const xs_event_t *ev)
{
    eval_ctx_t *c = opaque;
    xs_err_t err = XS_OK;
    c->res->events++;
    if (ev->kind == XS_KIND_CART) {
        uint64_t u = xs_hash_str(ev->user_id);
        uintptr_t n = u ? (uintptr_t)xs_hmap_get(&c->basket, u) : 0;
        for (size_t i = 0; i < ev->n_lines && !err; i++)
            err = mark(&c->seen, xs_hash_str(ev->lines[i].item_id));
        if (!err && ev->type == XS_CART_ADD && ev->n_lines > 0) {
            if (n > 0)
                err = evaluate(c, ev, ev->lines[0].item_id);
            if (!err && u)
                err = xs_hmap_put(&c->basket, u, (void *)(n + ev->n_lines));
        } else if (!err && ev->type == XS_CART_PURCHASE && u) {
            xs_hmap_del(&c->basket, u);
        }
    } else if (ev->kind == XS_KIND_CLICK && ev->item_id) {
        err = mark(&c->seen, xs_hash_str(ev->item_id));
    }
    if (err)
        return err;
    xs_list_t list;
    bool has = false;
    xs_list_init(&list);
    err = xs_engine_process(c->engine, 0, ev, &list, &has, c->errstr, c->errstr_size);
    xs_list_clear(&list);
    return err;
}

xs_err_t xs_eval_run(const char *name, const xs_engine_opts_t *engine_opts, int k,
                     xs_format_t fmt, const char *const *paths, size_t n_paths,
                     const xs_dataset_opts_t *dopts, xs_eval_result_t *res, char *errstr,
                     size_t errstr_size)
{
    eval_ctx_t c = {0};
    struct timespec t0, t1;
    memset(res, 0, sizeof(*res));
    snprintf(res->name, sizeof(res->name), "%s", name);
    c.engine = xs_engine_new(engine_opts, errstr, errstr_size);
    if (!c.engine)
        return XS_ERR_INVALID;
    c.k = k;
    c.res = res;
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    xs_err_t err = xs_dataset_read(fmt, paths, n_paths, dopts, on_event, &c, NULL, errstr,
                                   errstr_size);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    res->seconds = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    res->recommended_items = c.recommended.len;
    res->catalog_items = c.seen.len;
    if (!err)
        xs_engine_footprint(c.engine, &res->footprint);
    xs_engine_destroy(c.engine);
    xs_hmap_free(&c.basket);
    xs_hmap_free(&c.seen);
    xs_hmap_free(&c.recommended);
    return err;
}

double xs_eval_hitrate(const xs_eval_result_t *r)
{
    return r->points ? (double)r->hits / r->points : 0;
}

double xs_eval_mrr(const xs_eval_result_t *r)
{
    return r->points ? r->mrr_sum / r->points : 0;
}

double xs_eval_coverage(const xs_eval_result_t *r)
{
    return r->catalog_items ? (double)r->recommended_items / r->catalog_items : 0;
}
