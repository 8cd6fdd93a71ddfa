/*
 * test_eval.c — `xsell eval` measures the worker's path: a point is scored
 * against the list the engine published at the user's previous trigger, not
 * against a list asked for at the moment of the point; the live definition,
 * the popularity deciles and the popular items' exact LLR report, on small
 * JSONL replays whose figures are worked out by hand below.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xsell/eval.h"
#include "xsell/hash.h"

typedef struct text {
    char *s;
    size_t len, cap;
    int seq;
} text_t;

static void put(text_t *t, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        t->cap = (t->cap + (size_t)n + 1) * 2;
        t->s = realloc(t->s, t->cap);
        assert_non_null(t->s);
    }
}

/* A cart event of `type` by user u at second `sec` with the given items. */
static void cart(text_t *t, const char *type, const char *u, int sec, const char *items)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", items);
    put(t,
        "{\"kind\":\"cart\",\"event_id\":\"e%d\",\"user_id\":\"%s\",\"type\":\"%s\",\"ts\":%lld,"
        "\"lines\":[",
        ++t->seq, u, type, 1700000000000LL + sec * 1000LL);
    int i = 0;
    for (char *save = NULL, *it = strtok_r(buf, ",", &save); it; it = strtok_r(NULL, ",", &save))
        put(t, "%s{\"item_id\":\"%s\"}", i++ ? "," : "", it);
    put(t, "]}\n");
}

static void view(text_t *t, const char *u, int sec, const char *item)
{
    put(t,
        "{\"kind\":\"click\",\"event_id\":\"e%d\",\"user_id\":\"%s\",\"type\":\"PRODUCT_VIEW\","
        "\"item_id\":\"%s\",\"ts\":%lld}\n",
        ++t->seq, u, item, 1700000000000LL + sec * 1000LL);
}

static void run(text_t *t, bool popularity, xs_eval_result_t *res)
{
    char path[] = "/tmp/xs_eval_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, t->s, t->len), (ssize_t)t->len);
    close(fd);
    xs_engine_opts_t eo;
    xs_engine_opts_default(&eo);
    eo.cache_bytes = 0;
    eo.params.popularity_only = popularity;
    for (int p = 0; p < XS_PLACEMENT__COUNT; p++)
        eo.params.list_len[p] = 10;
    const char *paths[] = {path};
    char err[256] = "";
    xs_err_t rc = xs_eval_run("t", &eo, 10, XS_FORMAT_JSONL, paths, 1, NULL, res, err, sizeof(err));
    unlink(path);
    if (rc)
        fail_msg("xs_eval_run: %s", err);
}

/* xs_published_t, the definition shared with the worker's live metric. */
static void test_published_rank(void **state)
{
    (void)state;
    xs_list_t l;
    xs_event_list_init(&l);
    const char *ids[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++)
        l.items[i].item_id = strdup(ids[i]);
    l.n_items = 3;
    l.trigger_items[0] = strdup("t");
    l.n_trigger_items = 1;
    l.generated_at = 42;
    l.placement = XS_PLACEMENT_CART;
    xs_published_t p;
    xs_engine_published_note(&p, &l);
    xs_event_list_clear(&l);
    assert_int_equal(p.n_items, 3);
    assert_int_equal(p.placement, XS_PLACEMENT_CART);
    assert_int_equal(p.ts, 42);
    assert_true(p.trigger == xs_hash_str("t"));
    assert_int_equal(xs_engine_published_rank(&p, "a", 0), 1);
    assert_int_equal(xs_engine_published_rank(&p, "c", 0), 3);
    assert_int_equal(xs_engine_published_rank(&p, "c", 2), 0); /* beyond the first k */
    assert_int_equal(xs_engine_published_rank(&p, "c", 10), 3);
    assert_int_equal(xs_engine_published_rank(&p, "t", 0), 0);
    assert_int_equal(xs_engine_published_rank(&p, "", 0), 0);
}

/*
 * u adds C: its list is published then, when nobody has bought C or D yet,
 * so it holds the trending A and B only. Five shoppers then buy C with D.
 * When u adds D, the point is scored against the list of u's ADD C: a miss
 * (a list asked for now, as the evaluation did before, would hold D: a hit).
 * v then adds C (first item of its basket: no point, but its list, published
 * now, holds D) and D: a hit at rank 1 or 2.
 */
static void test_point_uses_previous_list(void **state)
{
    (void)state;
    text_t t = {0};
    int s = 0;
    char u[16];
    for (int i = 0; i < 5; i++) { /* one ADD of two lines: no point */
        snprintf(u, sizeof(u), "t%d", i);
        cart(&t, "ADD", u, s++, "A,B");
        cart(&t, "PURCHASE", u, s++, "A,B");
    }
    cart(&t, "ADD", "u", s++, "C");
    for (int i = 5; i < 10; i++) {
        snprintf(u, sizeof(u), "t%d", i);
        cart(&t, "ADD", u, s++, "C,D");
        cart(&t, "PURCHASE", u, s++, "C,D");
    }
    cart(&t, "ADD", "u", s++, "D");
    cart(&t, "ADD", "v", s++, "C");
    cart(&t, "ADD", "v", s++, "D");
    xs_eval_result_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run(&t, false, r);
    assert_int_equal(r->placement, XS_PLACEMENT_CART);
    assert_int_equal(r->cart.points, 2); /* u's D, v's D */
    assert_int_equal(r->cart.hits, 1);   /* v's only */
    assert_int_equal(r->points, 2);
    assert_int_equal(r->hits, 1);
    assert_true(r->mrr_sum >= 0.5 - 1e-9);
    assert_int_equal(r->view.points, 0);
    /* the live definition: the same two ADDs (others had no list yet) */
    assert_int_equal(r->live[XS_PLACEMENT_CART].points, 2);
    assert_int_equal(r->live[XS_PLACEMENT_CART].hits, 1);
    assert_int_equal(r->live[XS_PLACEMENT_POST_PURCHASE].points, 0);
    /* deciles: items by ADD lines, C 7, D 7 (C before D by id), A 5, B 5:
     * four items, so C is the first decile's, D the third's... both points
     * were scored against lists triggered by C */
    assert_int_equal(r->deciles[0].items, 1);
    assert_int_equal(r->deciles[0].interactions_max, 7);
    assert_int_equal(r->deciles[0].rate.points, 2);
    assert_int_equal(r->deciles[0].rate.hits, 1);
    free(r);
    free(t.s);
}

/*
 * The popular items' report. Nine purchases: {A,B} x3, {A,C}, {B,C},
 * {D,E} x2, {F} x2, so N = 9 transactions, A and B in 4, C D E F in 2.
 * Positively associated (k11 N > n_i n_j): A-B (27 > 16), A-C and B-C
 * (9 > 8), D-E (18 > 4). The open cart's ADDs pair A and D once. The
 * engine's support threshold is the item's own (model.min_support 0, few
 * partners): B pairs A three times and C once (4 pairs over 2 partners:
 * they recur, so it needs 2) and lists only A; E lists D (twice); A (5
 * pairs over 3 partners), C (2 over 2) and D (3 over 2) do not recur
 * enough, so single co-occurrences count: A lists B, C and D, C lists A
 * and B, D lists E and A. F lists nothing. An ADD never bought (user "open")
 * closes no transaction.
 */
static void test_top_items_exact_llr(void **state)
{
    (void)state;
    text_t t = {0};
    int s = 0;
    const char *baskets[] = {"A,B", "A,B", "A,B", "A,C", "B,C", "D,E", "D,E", "F", "F"};
    char u[16];
    for (size_t i = 0; i < sizeof(baskets) / sizeof(*baskets); i++) {
        snprintf(u, sizeof(u), "b%zu", i);
        cart(&t, "ADD", u, s++, baskets[i]);
        cart(&t, "PURCHASE", u, s++, baskets[i]);
    }
    cart(&t, "ADD", "open", s++, "A,D");
    xs_eval_result_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run(&t, false, r);
    assert_int_equal(r->top_class, XS_CLASS_BOUGHT);
    assert_int_equal(r->transactions, 9);
    assert_int_equal(r->n_top, 6);
    /* by transactions: A 4, B 4, C 2, D 2, E 2, F 2 (ties by id) */
    const char *order[] = {"A", "B", "C", "D", "E", "F"};
    const uint32_t tx[] = {4, 4, 2, 2, 2, 2};
    const int ref_len[] = {2, 2, 2, 1, 1, 0};
    for (int i = 0; i < 6; i++) {
        assert_string_equal(r->top[i].item_id, order[i]);
        assert_int_equal(r->top[i].transactions, tx[i]);
        assert_int_equal(r->top[i].ref_len, ref_len[i]);
        assert_true(r->top[i].overlap <= r->top[i].list_len);
        assert_true(r->top[i].overlap <= r->top[i].ref_len);
    }
    const int list_len[] = {3, 1, 2, 2, 1, 0};
    for (int i = 0; i < 6; i++)
        assert_int_equal(r->top[i].list_len, list_len[i]);
    free(r);
    free(t.s);
}

/*
 * Click-only data: each view is scored against the PRODUCT_PAGE list of the
 * previous view; the transactions are the users' viewed sets. Six sessions
 * view P then Q, six X then Y, then w views X then Y: 13 points (every
 * second view). From s2 on, X's list holds Y (seen together twice, more
 * often than chance), so at least s3's, s4's, s5's and w's views hit.
 */
static void test_view_points(void **state)
{
    (void)state;
    text_t t = {0};
    int s = 0;
    char u[16];
    for (int i = 0; i < 6; i++) {
        snprintf(u, sizeof(u), "p%d", i);
        view(&t, u, s++, "P");
        view(&t, u, s++, "Q");
    }
    for (int i = 0; i < 6; i++) {
        snprintf(u, sizeof(u), "s%d", i);
        view(&t, u, s++, "X");
        view(&t, u, s++, "Y");
    }
    view(&t, "w", s++, "X");
    view(&t, "w", s++, "Y");
    xs_eval_result_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run(&t, false, r);
    assert_int_equal(r->placement, XS_PLACEMENT_PRODUCT_PAGE);
    assert_int_equal(r->cart.points, 0);
    assert_int_equal(r->view.points, 13);
    assert_int_equal(r->points, 13);
    assert_true(r->hits >= 4);
    assert_int_equal(r->top_class, XS_CLASS_VIEWED);
    assert_int_equal(r->transactions, 13);
    free(r);
    free(t.s);
}

/* ---- violations, recounted naively from the lists the engine publishes ---- */

#define NV_MAX 4096
typedef struct naive {
    xs_engine_t *engine;
    struct {
        char user[16], item[16];
        int qty;
        int64_t bought; /* 0: never */
    } e[NV_MAX];
    int n;
    int64_t now;
    uint64_t lists, items, in_cart, rebuy, in_cart_lists, rebuy_lists;
} naive_t;

static int nv_find(naive_t *v, const char *u, const char *it)
{
    for (int i = 0; i < v->n; i++)
        if (!strcmp(v->e[i].user, u) && !strcmp(v->e[i].item, it))
            return i;
    assert_true(v->n < NV_MAX);
    snprintf(v->e[v->n].user, sizeof(v->e[0].user), "%s", u);
    snprintf(v->e[v->n].item, sizeof(v->e[0].item), "%s", it);
    v->e[v->n].qty = 0;
    v->e[v->n].bought = 0;
    return v->n++;
}

static xs_err_t nv_event(void *opaque, const xs_event_t *ev)
{
    naive_t *v = opaque;
    xs_list_t l;
    bool has = false;
    xs_event_list_init(&l);
    assert_int_equal(xs_engine_process(v->engine, 0, ev, &l, &has, NULL, 0), XS_OK);
    if (ev->kind != XS_KIND_CART) {
        xs_event_list_clear(&l);
        return XS_OK;
    }
    if (ev->ts > v->now) /* one shopper at a time in this replay: the user's clock */
        v->now = ev->ts;
    for (size_t i = 0; i < ev->n_lines; i++) {
        int k = nv_find(v, ev->user_id, ev->lines[i].item_id);
        if (ev->type == XS_CART_ADD)
            v->e[k].qty += ev->lines[i].quantity;
        if (ev->type == XS_CART_PURCHASE)
            v->e[k].bought = v->now;
    }
    if (ev->type == XS_CART_PURCHASE)
        for (int k = 0; k < v->n; k++)
            if (!strcmp(v->e[k].user, ev->user_id))
                v->e[k].qty = 0;
    if (has) {
        bool c = false, r = false;
        v->lists++;
        for (int i = 0; i < l.n_items; i++) {
            int k = nv_find(v, ev->user_id, l.items[i].item_id);
            v->items++;
            if (v->e[k].qty > 0) {
                v->in_cart++;
                c = true;
            }
            if (v->e[k].bought && v->now - v->e[k].bought < 30 * 86400000LL) {
                v->rebuy++;
                r = true;
            }
        }
        v->in_cart_lists += c;
        v->rebuy_lists += r;
    }
    xs_event_list_clear(&l);
    return XS_OK;
}

/*
 * Forty best sellers; one shopper fills a cart with all forty (more than
 * the profile's 24 cart lines and 32 items), buys them, then, a day later,
 * adds five other items. The evaluation's
 * counts from its own exact state equal a plain recount over the lists the
 * engine publishes, whatever the engine's rules let through.
 */
static void test_violations_recount(void **state)
{
    (void)state;
    text_t t = {0};
    int s = 0;
    char u[16], items[512];
    for (int b = 0; b < 8; b++) { /* the best sellers, bought in baskets of four */
        for (int k = 0; k < 10; k++) {
            snprintf(u, sizeof(u), "t%d-%d", b, k);
            snprintf(items, sizeof(items), "I%d,I%d,I%d,I%d", 4 * k + 1, 4 * k + 2, 4 * k + 3,
                     4 * k + 4);
            cart(&t, "ADD", u, s++, items);
            cart(&t, "PURCHASE", u, s++, items);
        }
    }
    items[0] = '\0';
    for (int i = 1; i <= 40; i++) {
        char one[8];
        snprintf(one, sizeof(one), "I%d", i);
        cart(&t, "ADD", "big", s++, one);
        snprintf(items + strlen(items), sizeof(items) - strlen(items), "%sI%d", i > 1 ? "," : "",
                 i);
    }
    cart(&t, "PURCHASE", "big", s++, items);
    s += 86400;
    for (int i = 0; i < 5; i++) {
        char one[8];
        snprintf(one, sizeof(one), "J%d", i);
        cart(&t, "ADD", "big", s++, one);
    }
    xs_eval_result_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    run(&t, false, r);

    char path[] = "/tmp/xs_eval_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, t.s, t.len), (ssize_t)t.len);
    close(fd);
    naive_t *v = calloc(1, sizeof(*v));
    assert_non_null(v);
    xs_engine_opts_t eo;
    xs_engine_opts_default(&eo);
    eo.cache_bytes = 0;
    for (int p = 0; p < XS_PLACEMENT__COUNT; p++)
        eo.params.list_len[p] = 10;
    v->engine = xs_engine_new(&eo, NULL, 0);
    assert_non_null(v->engine);
    const char *paths[] = {path};
    assert_int_equal(xs_dataset_read(XS_FORMAT_JSONL, paths, 1, NULL, nv_event, v, NULL, NULL, 0),
                     XS_OK);
    unlink(path);
    xs_engine_destroy(v->engine);

    uint64_t lists = 0, items_n = 0, in_cart = 0, rebuy = 0, in_cart_lists = 0, rebuy_lists = 0;
    for (int p = 0; p < XS_PLACEMENT__COUNT; p++) {
        lists += r->viol.lists[p];
        items_n += r->viol.items[p];
        in_cart += r->viol.in_cart_items[p];
        rebuy += r->viol.rebuy_items[p];
        in_cart_lists += r->viol.in_cart_lists[p];
        rebuy_lists += r->viol.rebuy_lists[p];
    }
    print_message("lists %llu items %llu: in cart %llu (%llu lists), rebuy %llu (%llu lists)\n",
                  (unsigned long long)v->lists, (unsigned long long)v->items,
                  (unsigned long long)v->in_cart, (unsigned long long)v->in_cart_lists,
                  (unsigned long long)v->rebuy, (unsigned long long)v->rebuy_lists);
    assert_true(v->lists > 0 && v->items > 0);
    assert_int_equal(lists, v->lists);
    assert_int_equal(items_n, v->items);
    assert_int_equal(in_cart, v->in_cart);
    assert_int_equal(rebuy, v->rebuy);
    assert_int_equal(in_cart_lists, v->in_cart_lists);
    assert_int_equal(rebuy_lists, v->rebuy_lists);
    free(v);
    free(r);
    free(t.s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_published_rank),      cmocka_unit_test(test_point_uses_previous_list),
        cmocka_unit_test(test_top_items_exact_llr), cmocka_unit_test(test_view_points),
        cmocka_unit_test(test_violations_recount),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
