/*
 * The stages' contracts (include/xsell/stages.h), each stage on its own
 * over records the test holds: the user stage's pair deltas, context and
 * totals; the item stage's sketches, pair totals and change reports; the
 * item stage's refresh of stale lists before the scorer reads them; a
 * scorer that leaves every record it reads as it was.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/hash.h"
#include "xsell/records.h" /* the wire records and the stages' contracts, together */
#include "xsell/stages.h"

#define T0 INT64_C(1700000000000)

/* ---- records held by the test ---------------------------------------------------- */

#define FK_MAX 1210
typedef struct fake {
    uint64_t key[FK_MAX];
    xs_item_t *it[FK_MAX];
    int n;
    int changed;
    xs_item_stage_t *stage; /* for the scorer view's rank */
    xs_totals_t *totals;
} fake_t;

static xs_item_t *fk_find(fake_t *f, uint64_t item)
{
    for (int i = 0; i < f->n; i++)
        if (f->key[i] == item)
            return f->it[i];
    return NULL;
}

static xs_err_t fk_get(void *opaque, uint64_t item, bool create, xs_item_t **it,
                       struct xs_hmap **exact, char *errstr, size_t errstr_size)
{
    fake_t *f = opaque;
    *it = fk_find(f, item);
    if (exact)
        *exact = NULL;
    if (!*it && create) {
        assert_true(f->n < FK_MAX);
        xs_item_t *x = malloc(sizeof(*x));
        assert_non_null(x);
        xs_sketch_init(x);
        f->key[f->n] = item;
        f->it[f->n++] = x;
        *it = x;
    }
    return XS_OK;
}

static void fk_changed(void *opaque, xs_item_t *it)
{
    ((fake_t *)opaque)->changed++;
}

static xs_err_t fv_item(void *opaque, uint64_t item, const xs_item_t **it, char *errstr,
                        size_t errstr_size)
{
    *it = fk_find(opaque, item);
    return XS_OK;
}

static int fv_entries(void *opaque, const xs_item_t *it, xs_class_t cls)
{
    return it->n_pairs[cls];
}

static xs_err_t fv_rank(void *opaque, const xs_item_t *it, xs_class_t cls, const xs_params_t *P,
                        const xs_scored_t **out, int *n, char *errstr, size_t errstr_size)
{
    fake_t *f = opaque;
    uint64_t key = 0;
    for (int i = 0; i < f->n; i++)
        if (f->it[i] == it)
            key = f->key[i];
    return xs_item_stage_rank(f->stage, it, key, NULL, cls, P, f->totals, out, n, errstr,
                              errstr_size);
}

static const char *const names[] = {"A", "B", "C"};

static xs_err_t fv_catalog(void *opaque, uint64_t h, xs_scorer_catalog_t *out, char *errstr,
                           size_t errstr_size)
{
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (xs_hash_str(names[i]) == h) {
            out->found = true;
            out->id = names[i];
        }
    return XS_OK;
}

static void fake_free(fake_t *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->it[i]);
}

/* ---- events ------------------------------------------------------------------------ */

static xs_user_out_t out;

static void apply(xs_user_stage_t *us, xs_profile_t *p, xs_event_kind_t kind, int type,
                  const char *item, const char *category, int64_t ts, const xs_params_t *P,
                  xs_totals_t *totals, xs_trending_t *tr)
{
    xs_event_t ev;
    xs_event_init(&ev, kind);
    ev.type = type;
    ev.event_id = xs_str_dup("e");
    ev.user_id = xs_str_dup("u");
    ev.ts = ts;
    if (kind == XS_KIND_CLICK) {
        ev.item_id = xs_str_dup(item);
        ev.category = category ? xs_str_dup(category) : NULL;
    } else {
        assert_int_equal(xs_event_add_line(&ev, item, 1, 0, false), XS_OK);
    }
    assert_int_equal(xs_user_stage_apply(us, p, &ev, P, totals, tr, &out), XS_OK);
    xs_event_clear(&ev);
}

static void expect_delta(size_t k, const char *a, const char *b, xs_class_t cls)
{
    assert_true(k < out.n_deltas);
    assert_true(out.deltas[k].a == xs_hash_str(a));
    assert_true(out.deltas[k].b == (b ? xs_hash_str(b) : 0));
    assert_int_equal(out.deltas[k].cls, cls);
}

/*
 * Views of A then B (B with a category), cart adds of A then B: the user
 * stage's deltas, context, placement, category hint, and the totals and
 * trending it was handed; then the item stage applies the batches.
 */
static void test_user_then_item_stage(void **state)
{
    xs_params_t P;
    xs_engine_params_default(&P);
    xs_totals_t totals = {0};
    static xs_trending_t tr;
    memset(&tr, 0, sizeof(tr));
    xs_profile_t p;
    xs_profile_init(&p);
    xs_user_stage_t *us = xs_user_stage_new(&P, 30 * 86400000LL);
    fake_t f = {0};
    const xs_item_access_t acc = {&f, fk_get, fk_changed};
    xs_item_stage_t *is = xs_item_stage_new(&P, false, &acc);
    assert_non_null(us);
    assert_non_null(is);
    uint64_t n_pairs = 0;
    const uint64_t hA = xs_hash_str("A"), hB = xs_hash_str("B");

    apply(us, &p, XS_KIND_CLICK, XS_CLICK_PRODUCT_VIEW, "A", NULL, T0, &P, &totals, &tr);
    assert_int_equal(out.n_deltas, 1);
    expect_delta(0, "A", NULL, XS_CLASS_VIEWED);
    assert_true(out.trigger);
    assert_int_equal(out.placement, XS_PLACEMENT_PRODUCT_PAGE);
    assert_int_equal(out.n_ctx, 1);
    assert_true(out.ctx[0].item == hA);
    assert_true(out.hint_item == 0);
    assert_int_equal(xs_item_stage_apply(is, out.deltas, out.n_deltas, &totals, &n_pairs, NULL, 0),
                     XS_OK);

    apply(us, &p, XS_KIND_CLICK, XS_CLICK_PRODUCT_VIEW, "B", "shoes", T0 + 60000, &P, &totals, &tr);
    assert_int_equal(out.n_deltas, 2);
    expect_delta(0, "B", NULL, XS_CLASS_VIEWED);
    expect_delta(1, "A", "B", XS_CLASS_VIEWED);
    assert_true(out.hint_item == hB && out.hint_cat == xs_hash_str("shoes"));
    assert_int_equal(xs_item_stage_hint(is, out.hint_item, out.hint_cat, NULL, 0), XS_OK);
    assert_int_equal(xs_item_stage_apply(is, out.deltas, out.n_deltas, &totals, &n_pairs, NULL, 0),
                     XS_OK);
    assert_int_equal(totals.users_bought, 0);
    assert_int_equal(tr.n, 0);

    /* A from viewed to cart: a buyer now, A trending; B was only viewed, so no bought pair */
    apply(us, &p, XS_KIND_CART, XS_CART_ADD, "A", NULL, T0 + 120000, &P, &totals, &tr);
    assert_int_equal(out.n_deltas, 1);
    expect_delta(0, "A", NULL, XS_CLASS_BOUGHT);
    assert_int_equal(out.placement, XS_PLACEMENT_CART);
    assert_int_equal(totals.users_bought, 1);
    assert_true(totals.dirty && tr.dirty);
    assert_int_equal(tr.n, 1);
    assert_true(tr.v[0].item == hA);
    assert_int_equal(xs_item_stage_apply(is, out.deltas, out.n_deltas, &totals, &n_pairs, NULL, 0),
                     XS_OK);

    apply(us, &p, XS_KIND_CART, XS_CART_ADD, "B", NULL, T0 + 180000, &P, &totals, &tr);
    assert_int_equal(out.n_deltas, 2);
    expect_delta(0, "B", NULL, XS_CLASS_BOUGHT);
    expect_delta(1, "A", "B", XS_CLASS_BOUGHT);
    assert_int_equal(totals.users_bought, 1); /* one user, counted once */
    assert_int_equal(totals.users_total, 0);  /* the engine's, not the stage's */
    f.changed = 0;
    assert_int_equal(xs_item_stage_apply(is, out.deltas, out.n_deltas, &totals, &n_pairs, NULL, 0),
                     XS_OK);

    /* the item stage: counts, sketches, pair totals, the category hint, change reports */
    xs_item_t *a = fk_find(&f, hA), *b = fk_find(&f, hB);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(n_pairs, 2);
    assert_int_equal(totals.pairs_total[XS_CLASS_VIEWED], 1);
    assert_int_equal(totals.pairs_total[XS_CLASS_BOUGHT], 1);
    uint32_t err = 0;
    assert_int_equal(xs_sketch_pair_count(a, XS_CLASS_BOUGHT, hB, &err), 1);
    assert_int_equal(xs_sketch_pair_count(b, XS_CLASS_BOUGHT, hA, &err), 1);
    assert_int_equal(xs_sketch_pair_count(a, XS_CLASS_VIEWED, hB, &err), 1);
    assert_int_equal(a->n_users[XS_CLASS_BOUGHT], 1);
    assert_int_equal(b->n_users[XS_CLASS_VIEWED], 1);
    assert_true(b->category == xs_hash_str("shoes"));
    assert_true(f.changed >= 3); /* B's count, then A and B for the pair */

    /* a hint never overrides the catalog */
    b->flags |= XS_ITEM_F_CATALOG;
    b->category = 0;
    assert_int_equal(xs_item_stage_hint(is, hB, xs_hash_str("hats"), NULL, 0), XS_OK);
    assert_true(b->category == 0);

    xs_item_stage_destroy(is);
    xs_user_stage_destroy(us);
    fake_free(&f);
}

/*
 * A stale neighbour list: the scorer reads it as it is and changes no
 * record it reads; xs_item_stage_refresh ranks it again, after which the
 * scorer finds the neighbour.
 */
static void test_refresh_then_score(void **state)
{
    xs_params_t P;
    xs_engine_params_default(&P);
    P.similarity = XS_SIM_COUNT;
    P.min_support = 1;
    xs_totals_t totals = {0};
    static xs_trending_t tr; /* empty: no prior, no backfill */
    memset(&tr, 0, sizeof(tr));
    fake_t f = {0};
    f.totals = &totals;
    const xs_item_access_t acc = {&f, fk_get, fk_changed};
    xs_item_stage_t *is = xs_item_stage_new(&P, false, &acc);
    f.stage = is;
    xs_scorer_t *sc = xs_scorer_new();
    assert_non_null(is);
    assert_non_null(sc);
    const uint64_t hA = xs_hash_str("A"), hB = xs_hash_str("B");
    const xs_pair_delta_t d[] = {
        {hA, 0, XS_CLASS_BOUGHT}, {hB, 0, XS_CLASS_BOUGHT}, {hA, hB, XS_CLASS_BOUGHT}};
    uint64_t n_pairs = 0;
    assert_int_equal(xs_item_stage_apply(is, d, 3, &totals, &n_pairs, NULL, 0), XS_OK);
    xs_item_t *a = fk_find(&f, hA);
    int nt = -1;
    xs_sketch_top(a, XS_CLASS_BOUGHT, &nt);
    assert_int_equal(nt, 1);
    /* stale: never ranked whole, and its list lost */
    xs_sketch_top_clear(a, XS_CLASS_BOUGHT);
    a->scored_at = 0;

    const xs_scorer_view_t v = {&f, fv_item, fv_entries, fv_rank, fv_catalog};
    xs_ctx_item_t trig[1] = {{hA, P.w_trigger, false}}, ctx[XS_CTX_MAX];
    int n_ctx = 1;
    memcpy(ctx, trig, sizeof(trig));
    xs_score_in_t in = {.P = &P,
                        .trig = trig,
                        .n_trig = 1,
                        .ctx = ctx,
                        .lists = true,
                        .placement = XS_PLACEMENT_PRODUCT_PAGE,
                        .n_want = 4,
                        .now = T0,
                        .list_time = T0,
                        .trending = &tr};
    in.n_use = xs_scorer_context(&P, NULL, ctx, &n_ctx, T0);
    in.n_ctx = n_ctx;
    assert_int_equal(in.n_use, 1);

    xs_item_t *before[2];
    for (int i = 0; i < 2; i++) {
        before[i] = malloc(sizeof(xs_item_t));
        assert_non_null(before[i]);
        memcpy(before[i], f.it[i], sizeof(xs_item_t));
    }
    xs_list_t list;
    xs_event_list_init(&list);
    assert_int_equal(xs_scorer_score(sc, &v, &in, &list, NULL, 0), XS_OK);
    assert_int_equal(list.n_items, 0); /* the stale list, read as it is */
    for (int i = 0; i < 2; i++)
        assert_memory_equal(before[i], f.it[i], sizeof(xs_item_t));
    xs_event_list_clear(&list);

    f.changed = 0;
    assert_int_equal(xs_item_stage_refresh(is, ctx, in.n_use, &totals, NULL, 0), XS_OK);
    assert_int_equal(f.changed, 1);
    assert_true(a->scored_at == totals.pairs_total[0] + totals.pairs_total[1]);
    xs_event_list_init(&list);
    assert_int_equal(xs_scorer_score(sc, &v, &in, &list, NULL, 0), XS_OK);
    assert_int_equal(list.n_items, 1);
    assert_string_equal(list.items[0].item_id, "B");
    assert_int_equal(list.items[0].source, XS_SOURCE_BOUGHT_TOGETHER);
    assert_int_equal(list.items[0].n_because, 1);
    assert_string_equal(list.items[0].because_of[0], "A");
    xs_event_list_clear(&list);

    /* fresh now: a second refresh ranks nothing */
    f.changed = 0;
    assert_int_equal(xs_item_stage_refresh(is, ctx, in.n_use, &totals, NULL, 0), XS_OK);
    assert_int_equal(f.changed, 0);

    /* ranked at read time (an arm with another measure): the same neighbour, nothing written */
    memcpy(before[0], a, sizeof(xs_item_t));
    in.lists = false;
    xs_event_list_init(&list);
    assert_int_equal(xs_scorer_score(sc, &v, &in, &list, NULL, 0), XS_OK);
    assert_int_equal(list.n_items, 1);
    assert_string_equal(list.items[0].item_id, "B");
    assert_memory_equal(before[0], a, sizeof(xs_item_t));
    xs_event_list_clear(&list);

    for (int i = 0; i < 2; i++)
        free(before[i]);
    xs_scorer_destroy(sc);
    xs_item_stage_destroy(is);
    fake_free(&f);
}

/*
 * A best seller's summary under-counts a middling partner that its own
 * summary counts exactly: A is bought with M 6 times, and with 1,200
 * one-off partners around them, so A's decaying summary holds M with less
 * than 6 (3: the one-offs decayed it), while M's summary holds A at 6. A's list,
 * ranked whole, gives every entry the larger of the two summaries' counts
 * (similarity = count here): M's entry says 6.
 */
static void test_pair_count_from_both_summaries(void **state)
{
    (void)state;
    xs_params_t P;
    xs_engine_params_default(&P);
    P.similarity = XS_SIM_COUNT;
    P.min_support = 1;
    xs_totals_t totals = {0};
    static fake_t f;
    memset(&f, 0, sizeof(f));
    f.totals = &totals;
    const xs_item_access_t acc = {&f, fk_get, fk_changed};
    xs_item_stage_t *is = xs_item_stage_new(&P, false, &acc);
    assert_non_null(is);
    f.stage = is;
    const uint64_t hA = xs_hash_str("A"), hM = xs_hash_str("M");
    uint64_t n_pairs = 0;
    char id[32];
    for (int i = 0; i < 1200; i++) {
        snprintf(id, sizeof(id), "one-off %d", i);
        xs_pair_delta_t d = {hA, xs_hash_str(id), XS_CLASS_BOUGHT};
        if (i % 200 == 100) { /* six times with M, spread over the one-offs */
            xs_pair_delta_t m = {hA, hM, XS_CLASS_BOUGHT};
            assert_int_equal(xs_item_stage_apply(is, &m, 1, &totals, &n_pairs, NULL, 0), XS_OK);
        }
        assert_int_equal(xs_item_stage_apply(is, &d, 1, &totals, &n_pairs, NULL, 0), XS_OK);
    }
    xs_item_t *a = fk_find(&f, hA), *m = fk_find(&f, hM);
    assert_non_null(a);
    assert_non_null(m);
    uint32_t err = 0;
    assert_int_equal(xs_sketch_pair_count(m, XS_CLASS_BOUGHT, hA, &err) - err, 6);
    uint32_t in_a = xs_sketch_pair_count(a, XS_CLASS_BOUGHT, hM, &err) - err;
    assert_true(in_a > 0 && in_a < 6); /* the premise: A's summary holds M, under-counted */
    /* ranked whole (its pairs more than doubled since), then the list */
    const xs_ctx_item_t ctx[] = {{hA, 1.0, false}};
    a->scored_at = 0;
    assert_int_equal(xs_item_stage_refresh(is, ctx, 1, &totals, NULL, 0), XS_OK);
    int nt = 0;
    const xs_top_t *top = xs_sketch_top(a, XS_CLASS_BOUGHT, &nt);
    bool found = false;
    for (int k = 0; k < nt; k++)
        if (top[k].item == hM) {
            assert_float_equal(top[k].sim, 6.0, 1e-6);
            found = true;
        }
    assert_true(found);
    xs_item_stage_destroy(is);
    fake_free(&f);
}

/*
 * Each pair counted re-scores one more entry of each item's list, round
 * robin (the sweep): after as many pairs as the list has entries, every
 * entry's similarity is from the current counts, however many more
 * entries the sketch holds. A (cosine, so a neighbour's pair total counts)
 * is bought once with each of 170 partners (a 170-entry sketch; its list
 * holds the first 64, at sketch positions 0..63), every partner then 10
 * times with X (its pair total 1 -> 11: its cosine with A a third of what
 * A's list says), then A 70 times with Z, the sweep starting at sketch
 * position 64. A's list entries then say the partners' current cosines, up
 * to A's own 70 new pairs (sqrt(240 / 170) = 1.19 at most); an entry not
 * re-scored since the partners' pairs with X says 3.3 times too much. A
 * sweep of the sketch would have re-scored 70 of its 106 unlisted entries
 * and none of the listed.
 */
static void test_sweep_refreshes_the_list(void **state)
{
    (void)state;
    xs_params_t P;
    xs_engine_params_default(&P);
    P.similarity = XS_SIM_COSINE;
    P.min_support = 1;
    xs_totals_t totals = {0};
    static fake_t f;
    memset(&f, 0, sizeof(f));
    f.totals = &totals;
    const xs_item_access_t acc = {&f, fk_get, fk_changed};
    xs_item_stage_t *is = xs_item_stage_new(&P, false, &acc);
    assert_non_null(is);
    f.stage = is;
    uint64_t n_pairs = 0;
    const uint64_t hA = xs_hash_str("A"), hX = xs_hash_str("X"), hZ = xs_hash_str("Z");
    /* 10,000 pairs elsewhere first: A's lists are ranked whole at its first
     * pair and not again (the pairs in all do not double) */
    xs_pair_delta_t bc = {xs_hash_str("B"), xs_hash_str("C"), XS_CLASS_BOUGHT};
    for (int i = 0; i < 10000; i++)
        assert_int_equal(xs_item_stage_apply(is, &bc, 1, &totals, &n_pairs, NULL, 0), XS_OK);
    uint64_t partner[170];
    char id[32];
    for (int k = 0; k < 170; k++) {
        snprintf(id, sizeof(id), "partner %d", k);
        partner[k] = xs_hash_str(id);
        xs_pair_delta_t d = {hA, partner[k], XS_CLASS_BOUGHT};
        assert_int_equal(xs_item_stage_apply(is, &d, 1, &totals, &n_pairs, NULL, 0), XS_OK);
    }
    xs_item_t *a = fk_find(&f, hA);
    assert_non_null(a);
    uint64_t scored_at = a->scored_at;
    for (int r = 0; r < 10; r++)
        for (int k = 0; k < 170; k++) {
            xs_pair_delta_t d = {partner[k], hX, XS_CLASS_BOUGHT};
            assert_int_equal(xs_item_stage_apply(is, &d, 1, &totals, &n_pairs, NULL, 0), XS_OK);
        }
    /* the sweep's cursor past the 64 listed entries, at the first of the
     * 106 others (sketch positions 64..169), as a longer history may leave it */
    a->sweep[XS_CLASS_BOUGHT] = 64;
    for (int i = 0; i < 70; i++) {
        xs_pair_delta_t d = {hA, hZ, XS_CLASS_BOUGHT};
        assert_int_equal(xs_item_stage_apply(is, &d, 1, &totals, &n_pairs, NULL, 0), XS_OK);
    }
    assert_true(a->scored_at == scored_at); /* never ranked whole again */
    assert_int_equal(a->n_pairs[XS_CLASS_BOUGHT], 171);
    int nt = 0;
    const xs_top_t *top = xs_sketch_top(a, XS_CLASS_BOUGHT, &nt);
    assert_int_equal(nt, XS_TOP_BOUGHT);
    double n_a = (double)xs_sketch_pair_total(a, XS_CLASS_BOUGHT), worst = 0;
    int stale = 0;
    for (int k = 0; k < nt; k++) {
        if (top[k].item == hZ)
            continue;
        xs_item_t *p = fk_find(&f, top[k].item);
        assert_non_null(p);
        assert_int_equal(xs_sketch_pair_total(p, XS_CLASS_BOUGHT), 11);
        double now = 1.0 / sqrt(n_a * 11.0), ratio = top[k].sim / now;
        if (ratio > worst)
            worst = ratio;
        stale += ratio >= 1.3;
    }
    print_message("list entries: at most %.2f times the current cosine (%d of %d 1.3 times or "
                  "more)\n",
                  worst, stale, nt);
    assert_true(worst >= 1.0 && worst < 1.3);
    xs_item_stage_destroy(is);
    fake_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_user_then_item_stage),
        cmocka_unit_test(test_refresh_then_score),
        cmocka_unit_test(test_pair_count_from_both_summaries),
        cmocka_unit_test(test_sweep_refreshes_the_list),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
