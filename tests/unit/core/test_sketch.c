/*
 * Item sketch tests: SpaceSaving against exact counts on skewed streams
 * (error bounds and guaranteed heavy hitters), similarity measures against
 * hand-computed values, and the stored format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/sketch.h"
#include "xsell/store_records.h"

static uint64_t rng_state = 42;

static uint64_t rng(void)
{
    uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Zipf(s) over 1..n by inversion of a precomputed CDF. */
static uint64_t zipf(const double *cdf, int n)
{
    double u = (double)(rng() >> 11) * 0x1.0p-53;
    int lo = 0, hi = n - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (uint64_t)lo + 1;
}

static void check_spacesaving(double s, int n_items, int n_updates, int min_heavy)
{
    double *cdf = malloc(sizeof(double) * (size_t)n_items);
    uint32_t *exact = calloc((size_t)n_items + 1, sizeof(uint32_t));
    double total = 0;
    for (int i = 0; i < n_items; i++)
        total += 1.0 / pow(i + 1, s);
    double acc = 0;
    for (int i = 0; i < n_items; i++)
        cdf[i] = (acc += 1.0 / pow(i + 1, s) / total);
    xs_item_t *it = malloc(sizeof(*it));
    xs_sketch_init(it);
    for (int k = 0; k < n_updates; k++) {
        uint64_t x = zipf(cdf, n_items);
        exact[x]++;
        xs_sketch_add_pair(it, XS_CLASS_BOUGHT, x);
    }
    const xs_ss_entry_t *e = xs_sketch_pairs_const(it, XS_CLASS_BOUGHT);
    assert_int_equal(it->n_pairs[XS_CLASS_BOUGHT], XS_SKETCH_BOUGHT_CAP);
    uint64_t sum = 0;
    for (int i = 0; i < it->n_pairs[XS_CLASS_BOUGHT]; i++) {
        /* a count never over-estimates: a guaranteed lower bound, err 0 */
        assert_true(e[i].count - e[i].err <= exact[e[i].item]);
        assert_int_equal(e[i].err, 0);
        sum += e[i].count;
    }
    assert_true(sum <= (uint64_t)n_updates);
    /* the marginal is the stream length, whatever the sketch kept */
    assert_int_equal(xs_sketch_pair_total(it, XS_CLASS_BOUGHT), (uint64_t)n_updates);
    /* the min_heavy most frequent items (Zipf: items 1..min_heavy) are kept
     * with at least half their true count guaranteed */
    for (int r = 1; r <= min_heavy; r++) {
        uint32_t err;
        uint32_t c = xs_sketch_pair_count(it, XS_CLASS_BOUGHT, (uint64_t)r, &err);
        assert_true(c - err >= exact[r] / 2);
    }
    free(it);
    free(exact);
    free(cdf);
}

static void test_spacesaving_zipf_1_1(void **state)
{
    (void)state;
    check_spacesaving(1.1, 5000, 200000, 10);
}

static void test_spacesaving_zipf_0_8(void **state)
{
    (void)state;
    check_spacesaving(0.8, 20000, 200000, 3);
}

/*
 * A best seller's pair stream is flat: thousands of partners, the strongest
 * of which hold well under 1 % each (UCI's WHITE HANGING HEART T-LIGHT
 * HOLDER: ~88,000 pairs, its strongest partners a few hundred each). Its ten
 * strongest partners must be kept with a useful guaranteed count (at least
 * half the true one), and the sketch's ten strongest must be them. A
 * SpaceSaving summary of 160 entries cannot: its error N/m (~500) swamps
 * them (count 555 +- 547).
 */
static void test_popular_item_keeps_heavy_hitters(void **state)
{
    (void)state;
    enum { N_TAIL = 3000, N_HEAVY = 20, N_UPDATES = 88000 };
    uint32_t *exact = calloc(N_TAIL + N_HEAVY + 1, sizeof(uint32_t));
    xs_item_t *it = malloc(sizeof(*it));
    xs_sketch_init(it);
    /* heavy partner h (1..20) has share 0.5 % - (h - 1) * 0.016 %: 440 .. 170 pairs */
    double share[N_HEAVY + 1], heavy_total = 0;
    for (int h = 1; h <= N_HEAVY; h++)
        heavy_total += share[h] = 0.005 - (h - 1) * 0.00016;
    for (int k = 0; k < N_UPDATES; k++) {
        double u = (double)(rng() >> 11) * 0x1.0p-53, acc = 0;
        uint64_t x = 0;
        for (int h = 1; h <= N_HEAVY && !x; h++)
            if (u < (acc += share[h]))
                x = (uint64_t)h;
        if (!x) /* the tail: uniform, each ~ 25 pairs */
            x = N_HEAVY + 1 + rng() % N_TAIL;
        exact[x]++;
        xs_sketch_add_pair(it, XS_CLASS_BOUGHT, x);
    }
    for (int h = 1; h <= 10; h++) {
        uint32_t err;
        uint32_t c = xs_sketch_pair_count(it, XS_CLASS_BOUGHT, (uint64_t)h, &err);
        assert_true(c - err >= exact[h] / 2);
    }
    /* the sketch's ten largest guaranteed counts are the ten heaviest partners' */
    const xs_ss_entry_t *e = xs_sketch_pairs_const(it, XS_CLASS_BOUGHT);
    uint32_t tenth = 0;
    for (int h = 1; h <= 10; h++) {
        uint32_t err, c = xs_sketch_pair_count(it, XS_CLASS_BOUGHT, (uint64_t)h, &err);
        tenth = (h == 1 || c - err < tenth) ? c - err : tenth;
    }
    for (int i = 0; i < it->n_pairs[XS_CLASS_BOUGHT]; i++)
        if (e[i].item > N_HEAVY)
            assert_true(e[i].count - e[i].err < tenth);
    free(it);
    free(exact);
}

static void test_llr_hand_computed(void **state)
{
    (void)state;
    /* G^2 = 2 sum k ln(k / E): for (1,0,0,1) every expected count is 1/2. */
    assert_true(fabs(xs_sketch_llr(1, 0, 0, 1) - 4 * log(2)) < 1e-12);
    assert_true(fabs(xs_sketch_llr(10, 0, 0, 10) - 40 * log(2)) < 1e-9);
    /* independence gives 0 */
    assert_true(fabs(xs_sketch_llr(10, 20, 30, 60)) < 1e-9);
    /* (10, 20, 30, 40): N = 100, E = (12, 18, 28, 42) */
    double g =
        2 * (10 * log(10 / 12.0) + 20 * log(20 / 18.0) + 30 * log(30 / 28.0) + 40 * log(40 / 42.0));
    assert_true(fabs(xs_sketch_llr(10, 20, 30, 40) - g) < 1e-9);
    /* larger counts (beyond the x log x table) */
    double k[4] = {1200, 98800, 70000, 9000000};
    double n = k[0] + k[1] + k[2] + k[3];
    double r1 = k[0] + k[1], r2 = k[2] + k[3], c1 = k[0] + k[2], c2 = k[1] + k[3];
    double e[4] = {r1 * c1 / n, r1 * c2 / n, r2 * c1 / n, r2 * c2 / n};
    double g2 = 0;
    for (int i = 0; i < 4; i++)
        g2 += 2 * k[i] * log(k[i] / e[i]);
    assert_true(fabs(xs_sketch_llr(k[0], k[1], k[2], k[3]) - g2) / g2 < 1e-9);
}

static void test_similarities(void **state)
{
    (void)state;
    /* k11 = 10 users with both, n_i = 20, n_j = 40, N = 1000 */
    assert_true(fabs(xs_sketch_similarity(XS_SIM_COSINE, 10, 20, 40, 1000, 0) - 10 / sqrt(800)) <
                1e-12);
    assert_true(fabs(xs_sketch_similarity(XS_SIM_JACCARD, 10, 20, 40, 1000, 0) - 10.0 / 50) <
                1e-12);
    assert_true(fabs(xs_sketch_similarity(XS_SIM_LIFT, 10, 20, 40, 1000, 0) - 10.0 * 1000 / 800) <
                1e-9);
    assert_true(fabs(xs_sketch_similarity(XS_SIM_COUNT, 10, 20, 40, 1000, 0) - 10) < 1e-12);
    assert_true(fabs(xs_sketch_similarity(XS_SIM_LLR, 10, 20, 40, 1000, 0) -
                     xs_sketch_llr(10, 10, 30, 950)) < 1e-12);
    /* negative association: fewer together than expected (E = 20 * 500 / 1000 = 10) */
    assert_true(xs_sketch_similarity(XS_SIM_LLR, 2, 20, 500, 1000, 0) == 0);
    assert_true(xs_sketch_llr(2, 18, 498, 482) > 3.84); /* although G^2 itself is large */
    /* llr-cosine: cosine when significant, 0 otherwise */
    assert_true(fabs(xs_sketch_similarity(XS_SIM_LLR_COSINE, 10, 20, 40, 1000, 3.84) -
                     10 / sqrt(800)) < 1e-12);
    assert_true(xs_sketch_similarity(XS_SIM_LLR_COSINE, 1, 20, 40, 1000, 3.84) == 0);
    /* estimates larger than the marginals are clamped, not NaN */
    double v = xs_sketch_similarity(XS_SIM_LLR, 50, 20, 40, 30, 0);
    assert_false(isnan(v));
    assert_int_equal(xs_sketch_sim_from_name("llr-cosine"), XS_SIM_LLR_COSINE);
    assert_int_equal(xs_sketch_sim_from_name("nope"), -1);
}

static void test_item_round_trip_and_bound(void **state)
{
    (void)state;
    xs_item_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    xs_sketch_init(a);
    a->category = 0x1234567890abcdefULL;
    a->flags = XS_ITEM_F_CATALOG | XS_ITEM_F_REPURCHASABLE;
    a->n_users[XS_CLASS_BOUGHT] = UINT32_MAX;
    a->n_users[XS_CLASS_VIEWED] = 4000000000u;
    /* fill both summaries and lists to capacity, then every field to its
     * widest value: counts at their saturation, totals at 2^64 - 1 */
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++)
        for (int k = 0; k < 3 * XS_SKETCH_BOUGHT_CAP; k++)
            for (int r = 0; r < (k % 7) + 1; r++)
                xs_sketch_add_pair(a, (xs_class_t)cls, rng());
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        uint16_t cap;
        xs_ss_entry_t *en = xs_sketch_pairs(a, (xs_class_t)cls, &cap);
        assert_int_equal(a->n_pairs[cls], cap);
        for (int k = 0; k < a->n_pairs[cls]; k++) {
            en[k].count = XS_SKETCH_COUNT_MAX;
            xs_sketch_top_set(a, (xs_class_t)cls, k, 1.0 + k);
        }
        a->sweep[cls] = (uint8_t)(a->n_pairs[cls] - 1);
        a->pair_total[cls] = UINT64_MAX;
    }
    a->scored_at = UINT64_MAX;
    assert_int_equal(a->n_top[XS_CLASS_BOUGHT], XS_TOP_BOUGHT);
    assert_int_equal(a->n_top[XS_CLASS_VIEWED], XS_TOP_VIEWED);
    xs_buf_t buf = {0};
    assert_int_equal(xs_sketch_encode(a, &buf), XS_OK);
    print_message("worst-case item record: %zu bytes\n", buf.len);
    assert_int_equal(buf.len, 3705); /* the worst case stated in sketch.h */
    assert_true(buf.len <= 4096);
    assert_int_equal(xs_sketch_decode(b, buf.data, buf.len, NULL, 0), XS_OK);
    /* version 5: the lists are the neighbours record's, not the item's */
    assert_int_equal(b->n_top[XS_CLASS_BOUGHT], 0);
    assert_int_equal(b->n_top[XS_CLASS_VIEWED], 0);
    xs_buf_t lbuf = {0};
    xs_item_lists_t *l = malloc(sizeof(*l));
    assert_int_equal(xs_sketch_lists_encode(a, 5, &lbuf), XS_OK);
    assert_true(lbuf.len <= 4096);
    assert_int_equal(xs_sketch_lists_decode(l, lbuf.data, lbuf.len, NULL, 0), XS_OK);
    assert_int_equal(xs_sketch_lists_apply(b, l), 0);
    xs_buf_free(&lbuf);
    free(l);
    assert_true(b->category == a->category);
    assert_int_equal(b->flags, a->flags);
    assert_memory_equal(b->n_users, a->n_users, sizeof(a->n_users));
    assert_memory_equal(b->n_pairs, a->n_pairs, sizeof(a->n_pairs));
    assert_memory_equal(b->pair_total, a->pair_total, sizeof(a->pair_total));
    assert_memory_equal(b->bought, a->bought, sizeof(a->bought[0]) * a->n_pairs[0]);
    assert_memory_equal(b->viewed, a->viewed, sizeof(a->viewed[0]) * a->n_pairs[1]);
    assert_memory_equal(b->n_top, a->n_top, sizeof(a->n_top));
    assert_memory_equal(b->sweep, a->sweep, sizeof(a->sweep));
    assert_true(b->scored_at == UINT64_MAX);
    for (int i = 0; i < a->n_top[0]; i++) {
        assert_int_equal(b->top_bought[i].idx, a->top_bought[i].idx);
        assert_true(b->top_bought[i].sim == a->top_bought[i].sim);
        assert_true(b->top_bought[i].item == a->bought[a->top_bought[i].idx].item);
    }
    char errstr[128];
    buf.data[1] = XS_ITEM_VERSION + 1;
    assert_int_equal(xs_sketch_decode(b, buf.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_VERSION);
    buf.data[1] = XS_ITEM_VERSION;
    for (size_t n = 0; n < buf.len; n += 7)
        assert_int_not_equal(xs_sketch_decode(b, buf.data, n, NULL, 0), XS_OK);
    xs_buf_free(&buf);
    free(a);
    free(b);
}

/* The stored neighbour lists: full lists round-trip through keys and back to
 * the same positions, in the same order, at the bound sketch.h states; a
 * key the summary no longer holds drops its entry; the decoder is strict. */
static void test_item_lists_round_trip(void **state)
{
    (void)state;
    xs_item_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    xs_sketch_init(a);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        for (int k = 0; k < 3 * XS_SKETCH_BOUGHT_CAP; k++)
            for (int r = 0; r < (k % 7) + 1; r++)
                xs_sketch_add_pair(a, (xs_class_t)cls, rng());
        for (int k = 0; k < a->n_pairs[cls]; k++)
            xs_sketch_top_set(a, (xs_class_t)cls, k, 1.0 + (k * 7919) % 1000);
    }
    assert_int_equal(a->n_top[XS_CLASS_BOUGHT], XS_TOP_BOUGHT);
    assert_int_equal(a->n_top[XS_CLASS_VIEWED], XS_TOP_VIEWED);
    xs_buf_t buf = {0}, buf2 = {0};
    assert_int_equal(xs_sketch_lists_encode(a, 0, &buf), XS_ERR_INVALID);
    assert_int_equal(buf.len, 0);
    assert_int_equal(xs_sketch_lists_encode(a, 77, &buf), XS_OK);
    print_message("worst-case lists record: %zu bytes\n", buf.len);
    assert_int_equal(buf.len, 1292); /* the worst case stated in sketch.h */
    assert_int_equal(buf.data[0], 'T');
    assert_int_equal(buf.data[1], XS_LISTS_VERSION);
    xs_item_lists_t *l = malloc(sizeof(*l));
    char errstr[128];
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, errstr, sizeof(errstr)), XS_OK);
    assert_true(l->item == 77);
    /* onto the summary alone (lists cleared): the same lists, same order */
    memcpy(b, a, sizeof(*a));
    xs_sketch_top_clear(b, XS_CLASS_BOUGHT);
    xs_sketch_top_clear(b, XS_CLASS_VIEWED);
    b->indexed = false;
    assert_int_equal(xs_sketch_lists_apply(b, l), 0);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        int na, nb;
        const xs_top_t *ta = xs_sketch_top(a, (xs_class_t)cls, &na);
        const xs_top_t *tb = xs_sketch_top(b, (xs_class_t)cls, &nb);
        assert_int_equal(na, nb);
        for (int i = 0; i < na; i++) {
            assert_int_equal(ta[i].idx, tb[i].idx);
            assert_true(ta[i].item == tb[i].item);
            assert_true(ta[i].sim == tb[i].sim);
        }
    }
    assert_int_equal(xs_sketch_lists_encode(b, 77, &buf2), XS_OK);
    assert_int_equal(buf2.len, buf.len);
    assert_memory_equal(buf2.data, buf.data, buf.len);
    /* the summary lost a listed neighbour: its entry drops, the rest stay */
    uint64_t gone = a->bought[a->top_bought[3].idx].item;
    xs_item_t *c = malloc(sizeof(*c));
    xs_sketch_init(c);
    for (int i = 0; i < a->n_pairs[XS_CLASS_BOUGHT]; i++)
        if (a->bought[i].item != gone)
            xs_sketch_add_pair(c, XS_CLASS_BOUGHT, a->bought[i].item);
    assert_int_equal(xs_sketch_lists_apply(c, l), 1 + XS_TOP_VIEWED);
    assert_int_equal(c->n_top[XS_CLASS_BOUGHT], XS_TOP_BOUGHT - 1);
    assert_int_equal(c->n_top[XS_CLASS_VIEWED], 0);
    for (int i = 0; i < c->n_top[XS_CLASS_BOUGHT]; i++)
        assert_true(c->bought[c->top_bought[i].idx].item == c->top_bought[i].item);
    /* strict: every proper prefix, a trailing byte, a newer version, version
     * 0, another magic, key 0, a neighbour twice, a zero similarity */
    for (size_t n = 0; n < buf.len; n++)
        assert_int_equal(xs_sketch_lists_decode(l, buf.data, n, NULL, 0), XS_ERR_DECODE);
    xs_buf_append_u8(&buf, 0);
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, NULL, 0), XS_ERR_DECODE);
    assert_int_equal(l->n[0], 0);
    buf.len--;
    buf.data[1] = XS_LISTS_VERSION + 1;
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_VERSION);
    assert_non_null(strstr(errstr, "version 2 is newer than this build reads (1)"));
    buf.data[1] = 0;
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, NULL, 0), XS_ERR_DECODE);
    buf.data[1] = XS_LISTS_VERSION;
    buf.data[0] = 'I';
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, NULL, 0), XS_ERR_DECODE);
    buf.data[0] = 'T';
    memcpy(buf2.data, buf.data, buf.len);
    memset(buf2.data + 2, 0, 8); /* the list's item */
    assert_int_equal(xs_sketch_lists_decode(l, buf2.data, buf.len, NULL, 0), XS_ERR_DECODE);
    memcpy(buf2.data, buf.data, buf.len);
    memcpy(buf2.data + 11 + 10, buf2.data + 11, 8); /* entry 1's key = entry 0's */
    assert_int_equal(xs_sketch_lists_decode(l, buf2.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "twice"));
    /* a count in more bytes than it needs (0 as 80 00) would not encode back */
    static const uint8_t overlong[] = {'T', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0};
    assert_int_equal(xs_sketch_lists_decode(l, overlong, sizeof(overlong), errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "shortest form"));
    assert_int_equal(xs_sketch_lists_decode(l, overlong, 2 + 8, NULL, 0), XS_ERR_DECODE);
    static const uint8_t empty[] = {'T', 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(xs_sketch_lists_decode(l, empty, sizeof(empty), NULL, 0), XS_OK);
    memcpy(buf2.data, buf.data, buf.len);
    buf2.data[11 + 8] = buf2.data[11 + 9] = 0; /* entry 0's similarity 0 */
    assert_int_equal(xs_sketch_lists_decode(l, buf2.data, buf.len, NULL, 0), XS_ERR_DECODE);
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, NULL, 0), XS_OK);
    xs_buf_free(&buf);
    xs_buf_free(&buf2);
    free(l);
    free(a);
    free(b);
    free(c);
}

/* The store's records each have their own magic: a record read from another
 * family (a names record by the neighbours decoder, a neighbours record by
 * the names or items decoder) is a clear error, not a version or fields
 * misread. */
static void test_item_lists_other_families(void **state)
{
    (void)state;
    char errstr[160];
    xs_buf_t names = {0}, lists = {0};
    xs_name_rec_t n = {.id = "camera", .title = "Camera", .family = 7};
    assert_int_equal(xs_store_records_name_encode(&n, &names), XS_OK);
    xs_item_t *it = malloc(sizeof(*it));
    xs_sketch_init(it);
    xs_sketch_add_pair(it, XS_CLASS_BOUGHT, 0x11);
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 2.0);
    assert_int_equal(xs_sketch_lists_encode(it, 0x44, &lists), XS_OK);
    xs_item_lists_t *l = malloc(sizeof(*l));
    assert_int_equal(xs_sketch_lists_decode(l, names.data, names.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_string_equal(errstr, "not neighbour lists (magic 0x4e, expected 'T')");
    assert_int_equal(
        xs_store_records_name_decode(&n, lists.data, lists.len, errstr, sizeof(errstr)),
        XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "not a name record"));
    assert_null(n.id);
    assert_int_equal(xs_sketch_decode(it, lists.data, lists.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "not an item sketch"));
    xs_buf_reset(&names);
    assert_int_equal(xs_sketch_encode(it, &names), XS_OK); /* an items record */
    assert_int_equal(xs_sketch_lists_decode(l, names.data, names.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_string_equal(errstr, "not neighbour lists (magic 0x49, expected 'T')");
    xs_buf_free(&names);
    xs_buf_free(&lists);
    free(l);
    free(it);
}

/* lists_changed: set by every change of a list, and only by one (the
 * engine writes an item's neighbours record only when it is set). */
static void test_item_lists_changed(void **state)
{
    (void)state;
    xs_item_t *it = malloc(sizeof(*it));
    xs_sketch_init(it);
    assert_false(it->lists_changed);
    for (int k = 0; k < 4; k++)
        xs_sketch_add_pair(it, XS_CLASS_BOUGHT, 0x10 + (uint64_t)k);
    assert_false(it->lists_changed);                /* the summary is not the lists */
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 2.0); /* added */
    assert_true(it->lists_changed);
    it->lists_changed = false;
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 2.0); /* the same similarity */
    assert_false(it->lists_changed);
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 2.001); /* the same bfloat16 */
    assert_false(it->lists_changed);
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 2.5); /* another */
    assert_true(it->lists_changed);
    it->lists_changed = false;
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 1, 0); /* not listed, stays out */
    xs_sketch_top_clear(it, XS_CLASS_VIEWED);     /* empty already */
    assert_false(it->lists_changed);
    xs_sketch_top_set(it, XS_CLASS_BOUGHT, 0, 0); /* dropped */
    assert_true(it->lists_changed);
    /* a full list: a stronger entry replaces the weakest, a weaker one
     * changes nothing */
    xs_item_t *b = malloc(sizeof(*b));
    xs_sketch_init(b);
    for (int k = 0; k < XS_TOP_BOUGHT + 2; k++) {
        xs_sketch_add_pair(b, XS_CLASS_BOUGHT, 0x100 + (uint64_t)k);
        if (k < XS_TOP_BOUGHT)
            xs_sketch_top_set(b, XS_CLASS_BOUGHT, k, 10.0 + k);
    }
    b->lists_changed = false;
    xs_sketch_top_set(b, XS_CLASS_BOUGHT, XS_TOP_BOUGHT, 1.0);
    assert_false(b->lists_changed);
    xs_sketch_top_set(b, XS_CLASS_BOUGHT, XS_TOP_BOUGHT + 1, 1000.0);
    assert_true(b->lists_changed);
    b->lists_changed = false;
    xs_sketch_top_clear(b, XS_CLASS_BOUGHT);
    assert_true(b->lists_changed);
    /* a summary entry replaced while listed: its list entry drops */
    xs_sketch_init(b);
    for (int k = 0; k < XS_SKETCH_VIEWED_CAP; k++)
        xs_sketch_add_pair(b, XS_CLASS_VIEWED, 0x1000 + (uint64_t)k);
    for (int k = 0; k < XS_SKETCH_VIEWED_CAP && b->n_top[XS_CLASS_VIEWED] < XS_TOP_VIEWED; k++)
        xs_sketch_top_set(b, XS_CLASS_VIEWED, k, 1.0);
    b->lists_changed = false;
    uint64_t x = 0x900000;
    int at = -1;
    while (at < 0 || !b->lists_changed) { /* entries of count 1 are replaced */
        at = xs_sketch_add_pair(b, XS_CLASS_VIEWED, x++);
        if (at >= 0 && !b->lists_changed)
            assert_true(at >= XS_TOP_VIEWED); /* an unlisted one */
    }
    assert_true(at < XS_TOP_VIEWED);
    free(b);
    free(it);
}

/* A version 2 record (SpaceSaving, no pair totals, lists ranked with the
 * old marginals) decodes: its total is the sum of its counts (exact for
 * SpaceSaving), its lists are dropped and scored_at is 0, so the engine
 * ranks it anew; version 3 refuses a total below the sum of its counts. */
static void test_item_version_2_migrates(void **state)
{
    (void)state;
    static const uint8_t v2[] = {'I',  2, XS_ITEM_F_CATALOG,
                                 0,    0, 0,
                                 0,    0, 0,
                                 0,    0, /* flags, category */
                                 7,    3, /* n_bought, n_viewed */
                                 2,       /* bought entries */
                                 0x11, 0, 0,
                                 0,    0, 0,
                                 0,    0, 9,
                                 2, /* item 0x11: 9 +- 2 */
                                 0x22, 0, 0,
                                 0,    0, 0,
                                 0,    0, 4,
                                 0, /* item 0x22: 4 */
                                 1,    0, 0x80,
                                 0x3f,       /* list: position 0, sim 1.0 */
                                 1,          /* sweep */
                                 0,    0, 0, /* viewed: none, no list, sweep */
                                 5};         /* scored_at */
    xs_item_t *it = malloc(sizeof(*it));
    char errstr[128];
    assert_int_equal(xs_sketch_decode(it, v2, sizeof(v2), errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(it->n_pairs[XS_CLASS_BOUGHT], 2);
    /* 9 +- 2 keeps its guaranteed count: 7, error 0 (version 4 stores no error) */
    assert_int_equal(it->bought[0].count, 7);
    assert_int_equal(it->bought[0].err, 0);
    assert_int_equal(xs_sketch_pair_total(it, XS_CLASS_BOUGHT), 13);
    assert_int_equal(xs_sketch_pair_total(it, XS_CLASS_VIEWED), 0);
    assert_int_equal(it->n_top[XS_CLASS_BOUGHT], 0);
    assert_true(it->scored_at == 0);
    /* re-encoded as the current version, with the total; a total below the
     * counts is corrupt */
    xs_buf_t buf = {0};
    assert_int_equal(xs_sketch_encode(it, &buf), XS_OK);
    assert_int_equal(buf.data[1], XS_ITEM_VERSION);
    xs_item_t *b = malloc(sizeof(*b));
    assert_int_equal(xs_sketch_decode(b, buf.data, buf.len, NULL, 0), XS_OK);
    assert_int_equal(xs_sketch_pair_total(b, XS_CLASS_BOUGHT), 13);
    size_t at = 3 + 8 + 2 + 1 + 2 * 9 + 1; /* after the bought entries and sweep */
    assert_int_equal(buf.data[at], 13);
    buf.data[at] = 10; /* below 7 + 4 */
    assert_int_equal(xs_sketch_decode(b, buf.data, buf.len, NULL, 0), XS_ERR_DECODE);
    xs_buf_free(&buf);
    free(b);
    free(it);
}

/* A version 4 record (lists by sketch position, inside the item record)
 * decodes into summary and lists; written again it is version 5 without
 * them, and the neighbours record carries them back to the same positions. */
static void test_item_version_4_lists(void **state)
{
    (void)state;
    static const uint8_t v4[] = {'I',  4,    XS_ITEM_F_CATALOG,
                                 0,    0,    0,
                                 0,    0,    0,
                                 0,    0, /* flags, category */
                                 7,    3, /* n_bought, n_viewed */
                                 2,       /* bought entries */
                                 0x11, 0,    0,
                                 0,    0,    0,
                                 0,    0,    9, /* item 0x11: 9 */
                                 0x22, 0,    0,
                                 0,    0,    0,
                                 0,    0,    4, /* item 0x22: 4 */
                                 2,    1,    0x80,
                                 0x3f, 0,    0x00,
                                 0x40,     /* list: 0x22 sim 1.0, 0x11 sim 2.0 */
                                 1,    13, /* sweep, total */
                                 1,    0x33, 0,
                                 0,    0,    0,
                                 0,    0,    0,
                                 2, /* viewed: item 0x33: 2 */
                                 1,    0,    0x40,
                                 0x40,    /* list: 0x33 sim 3.0 */
                                 0,    2, /* sweep, total */
                                 5};      /* scored_at */
    xs_item_t *it = malloc(sizeof(*it)), *b = malloc(sizeof(*b));
    char errstr[128];
    /* the version 4 decoder refuses duplicate or out-of-range positions and
     * bad similarities (the bought list: its count at 32, entries at 33, 36) */
    uint8_t bad[sizeof(v4)];
    memcpy(bad, v4, sizeof(v4));
    bad[36] = bad[33]; /* second position = first */
    assert_int_equal(xs_sketch_decode(b, bad, sizeof(bad), NULL, 0), XS_ERR_DECODE);
    bad[36] = 2; /* out of range: two entries */
    assert_int_equal(xs_sketch_decode(b, bad, sizeof(bad), NULL, 0), XS_ERR_DECODE);
    bad[36] = 0;
    memset(&bad[37], 0xff, 2); /* a NaN similarity */
    assert_int_equal(xs_sketch_decode(b, bad, sizeof(bad), NULL, 0), XS_ERR_DECODE);
    memcpy(bad, v4, sizeof(v4));
    bad[36] = 0;
    assert_int_equal(xs_sketch_decode(b, bad, sizeof(bad), NULL, 0), XS_OK);
    assert_int_equal(xs_sketch_decode(it, v4, sizeof(v4), errstr, sizeof(errstr)), XS_OK);
    assert_true(it->lists_changed); /* not in a neighbours record yet */
    assert_int_equal(it->n_top[XS_CLASS_BOUGHT], 2);
    assert_int_equal(it->top_bought[0].idx, 1);
    assert_true(it->top_bought[0].item == 0x22 && it->top_bought[0].sim == 1.0f);
    assert_true(it->top_bought[1].item == 0x11 && it->top_bought[1].sim == 2.0f);
    assert_int_equal(it->n_top[XS_CLASS_VIEWED], 1);
    assert_true(it->top_viewed[0].item == 0x33 && it->top_viewed[0].sim == 3.0f);
    assert_true(it->scored_at == 5);
    assert_int_equal(xs_sketch_pair_total(it, XS_CLASS_BOUGHT), 13);
    xs_buf_t buf = {0}, lbuf = {0};
    assert_int_equal(xs_sketch_encode(it, &buf), XS_OK);
    assert_int_equal(buf.data[1], 5);
    assert_int_equal(buf.len, sizeof(v4) - 1 - 6 - 1 - 3); /* no list fields */
    assert_int_equal(xs_sketch_lists_encode(it, 0x44, &lbuf), XS_OK);
    xs_item_lists_t *l = malloc(sizeof(*l));
    assert_int_equal(xs_sketch_decode(b, buf.data, buf.len, NULL, 0), XS_OK);
    assert_int_equal(b->n_top[XS_CLASS_BOUGHT], 0);
    assert_false(b->lists_changed);
    assert_int_equal(xs_sketch_lists_decode(l, lbuf.data, lbuf.len, NULL, 0), XS_OK);
    assert_int_equal(xs_sketch_lists_apply(b, l), 0);
    assert_false(b->lists_changed); /* as stored */
    assert_int_equal(b->n_top[XS_CLASS_BOUGHT], 2);
    assert_memory_equal(b->top_bought, it->top_bought, 2 * sizeof(it->top_bought[0]));
    assert_int_equal(b->n_top[XS_CLASS_VIEWED], 1);
    assert_memory_equal(b->top_viewed, it->top_viewed, sizeof(it->top_viewed[0]));
    assert_true(b->scored_at == 5);
    xs_buf_free(&buf);
    xs_buf_free(&lbuf);
    free(l);
    free(b);
    free(it);
}

/* The summary as sketch.h specifies it, without the position index:
 * linear search; when full, the weaker of the arriving item's two buckets
 * decays by one with probability 1.08^-count (the coin: SplitMix64's
 * finaliser of item ^ total * golden ratio) and is replaced at zero. */
typedef struct ref_ss {
    xs_ss_entry_t e[XS_SKETCH_VIEWED_CAP];
    int n;
    uint64_t total;
} ref_ss_t;

static double ref_coin(uint64_t x, uint64_t total)
{
    uint64_t z = x ^ (total * UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

static void ref_add(ref_ss_t *r, uint64_t x)
{
    uint64_t total = r->total++;
    for (int i = 0; i < r->n; i++)
        if (r->e[i].item == x) {
            r->e[i].count++;
            return;
        }
    if (r->n < XS_SKETCH_VIEWED_CAP) {
        r->e[r->n++] = (xs_ss_entry_t){x, 1, 0};
        return;
    }
    uint64_t h = x * UINT64_C(0xd6e8feb86659fd93);
    int p1 = (int)((h >> 32) % (uint64_t)r->n), p2 = (int)((h & 0xffffffffu) % (uint64_t)r->n);
    int min = r->e[p2].count < r->e[p1].count ? p2 : p1;
    uint32_t c = r->e[min].count;
    if (ref_coin(x, total) >= pow(XS_SKETCH_DECAY_BASE, -(double)c))
        return;
    if (c > 1)
        r->e[min].count = c - 1;
    else
        r->e[min] = (xs_ss_entry_t){x, 1, 0};
}

/* The indexed summary decays and replaces exactly the entries the
 * specification's linear version does, and the position returned is the
 * updated entry's (-1: not kept). */
static void test_min_search_matches_full_scan(void **state)
{
    (void)state;
    enum { N_ITEMS = 2000 };
    double cdf[N_ITEMS], total = 0, acc = 0;
    for (int i = 0; i < N_ITEMS; i++)
        total += 1.0 / pow(i + 1, 0.9);
    for (int i = 0; i < N_ITEMS; i++)
        cdf[i] = (acc += 1.0 / pow(i + 1, 0.9) / total);
    xs_item_t *it = malloc(sizeof(*it));
    ref_ss_t *ref = calloc(1, sizeof(*ref));
    xs_sketch_init(it);
    for (int k = 0; k < 200000; k++) {
        uint64_t x = zipf(cdf, N_ITEMS);
        ref_add(ref, x);
        int pos = xs_sketch_add_pair(it, XS_CLASS_VIEWED, x);
        assert_true(pos < 0 || it->viewed[pos].item == x);
        if (k % 997 == 0) {
            assert_int_equal(it->n_pairs[XS_CLASS_VIEWED], ref->n);
            assert_memory_equal(it->viewed, ref->e, sizeof(ref->e[0]) * (size_t)ref->n);
        }
    }
    assert_memory_equal(it->viewed, ref->e, sizeof(ref->e[0]) * (size_t)ref->n);
    /* xs_sketch_pair_count reads through the index the updates built, and
     * without it (a decoded record) by a scan: the same counts either way,
     * for every item the stream had (most no longer held: 0). */
    assert_true(it->indexed);
    xs_item_t *cold = malloc(sizeof(*cold));
    memcpy(cold, it, sizeof(*cold));
    cold->indexed = false;
    int held = 0;
    for (uint64_t x = 1; x <= N_ITEMS; x++) {
        uint32_t e1 = 7, e2 = 7, c = xs_sketch_pair_count(it, XS_CLASS_VIEWED, x, &e1);
        assert_int_equal(c, xs_sketch_pair_count(cold, XS_CLASS_VIEWED, x, &e2));
        assert_int_equal(e1, e2);
        held += c > 0;
    }
    assert_int_equal(held, it->n_pairs[XS_CLASS_VIEWED]);
    free(cold);
    free(ref);
    free(it);
}

/* Neighbour lists: capacity, order, removal, and entries replaced in the sketch. */
static void test_top_lists(void **state)
{
    (void)state;
    xs_item_t *it = malloc(sizeof(*it));
    xs_sketch_init(it);
    for (uint64_t x = 1; x <= XS_SKETCH_VIEWED_CAP; x++)
        xs_sketch_add_pair(it, XS_CLASS_VIEWED, x);
    /* more candidates than room: the best XS_TOP_VIEWED stay */
    for (int k = 0; k < XS_SKETCH_VIEWED_CAP; k++)
        xs_sketch_top_set(it, XS_CLASS_VIEWED, k, (double)(k % 20) + 1);
    int n = 0;
    const xs_top_t *t = xs_sketch_top(it, XS_CLASS_VIEWED, &n);
    assert_int_equal(n, XS_TOP_VIEWED);
    double lowest = 1e9;
    for (int i = 0; i < n; i++) {
        assert_true(t[i].item == it->viewed[t[i].idx].item);
        lowest = t[i].sim < lowest ? t[i].sim : lowest;
    }
    /* the kept ones are the best: the weakest kept is the XS_TOP_VIEWED-th best */
    int better = 0;
    for (int k = 0; k < XS_SKETCH_VIEWED_CAP; k++)
        better += (double)(k % 20) + 1 > lowest;
    assert_true(better < XS_TOP_VIEWED);
    assert_true(lowest > 1);
    /* an update changes the similarity in place; <= 0 removes */
    int idx = t[0].idx;
    xs_sketch_top_set(it, XS_CLASS_VIEWED, idx, 100);
    t = xs_sketch_top(it, XS_CLASS_VIEWED, &n);
    assert_int_equal(n, XS_TOP_VIEWED);
    assert_true(t[0].sim == 100);
    xs_sketch_top_set(it, XS_CLASS_VIEWED, idx, 0);
    t = xs_sketch_top(it, XS_CLASS_VIEWED, &n);
    assert_int_equal(n, XS_TOP_VIEWED - 1);
    for (int i = 0; i < n; i++)
        assert_int_not_equal(t[i].idx, idx);
    /* a weaker entry does not displace a full list's weakest; a stronger one does */
    xs_sketch_top_set(it, XS_CLASS_VIEWED, idx, 1);
    assert_int_equal(it->n_top[XS_CLASS_VIEWED], XS_TOP_VIEWED);
    int outside = -1;
    for (int k = 0; k < XS_SKETCH_VIEWED_CAP && outside < 0; k++) {
        bool in = false;
        for (int i = 0; i < n; i++)
            in |= it->top_viewed[i].idx == k;
        if (!in)
            outside = k;
    }
    assert_true(outside >= 0);
    xs_sketch_top_set(it, XS_CLASS_VIEWED, outside, 0.5);
    t = xs_sketch_top(it, XS_CLASS_VIEWED, &n);
    assert_int_equal(n, XS_TOP_VIEWED);
    for (int i = 0; i < n; i++)
        assert_true(t[i].sim >= 1);
    /* new items decay the sketch's minimum (count 1 here) until one replaces
     * it: the list forgets that entry */
    int before = it->n_top[XS_CLASS_VIEWED];
    int pos = -1;
    for (uint64_t x = 999999; pos < 0; x++) {
        pos = xs_sketch_add_pair(it, XS_CLASS_VIEWED, x);
        assert_true(pos < 0 || it->viewed[pos].item == x);
    }
    bool listed = false;
    t = xs_sketch_top(it, XS_CLASS_VIEWED, &n);
    for (int i = 0; i < n; i++) {
        listed |= t[i].idx == pos;
        assert_true(t[i].item == it->viewed[t[i].idx].item);
    }
    assert_false(listed);
    assert_true(n == before || n == before - 1);
    /* stored (summary and lists records) and loaded, the same list */
    xs_buf_t buf = {0};
    assert_int_equal(xs_sketch_encode(it, &buf), XS_OK);
    xs_item_t *b = malloc(sizeof(*b));
    assert_int_equal(xs_sketch_decode(b, buf.data, buf.len, NULL, 0), XS_OK);
    xs_buf_reset(&buf);
    assert_int_equal(xs_sketch_lists_encode(it, 1, &buf), XS_OK);
    xs_item_lists_t *l = malloc(sizeof(*l));
    assert_int_equal(xs_sketch_lists_decode(l, buf.data, buf.len, NULL, 0), XS_OK);
    assert_int_equal(xs_sketch_lists_apply(b, l), 0);
    free(l);
    assert_int_equal(b->n_top[XS_CLASS_VIEWED], n);
    assert_memory_equal(b->top_viewed, it->top_viewed, sizeof(it->top_viewed[0]) * (size_t)n);
    xs_buf_free(&buf);
    free(b);
    free(it);
}

/* The list update of before the position map and the cached weakest entry:
 * linear scans. */
typedef struct ref_top {
    xs_top_t t[XS_TOP_BOUGHT];
    int n;
} ref_top_t;

static bool ref_below(const xs_top_t *a, const xs_top_t *b)
{
    return a->sim < b->sim || (a->sim == b->sim && a->item > b->item);
}

static void ref_drop(ref_top_t *r, int idx)
{
    for (int i = 0; i < r->n; i++)
        if (r->t[i].idx == idx) {
            r->t[i] = r->t[--r->n];
            return;
        }
}

static void ref_set(ref_top_t *r, int idx, uint64_t item, float f)
{
    if (!(f > 0)) {
        ref_drop(r, idx);
        return;
    }
    int low = -1;
    xs_top_t x = {item, f, (uint8_t)idx};
    for (int i = 0; i < r->n; i++) {
        if (r->t[i].idx == idx) {
            r->t[i] = x;
            return;
        }
        if (low < 0 || ref_below(&r->t[i], &r->t[low]))
            low = i;
    }
    if (r->n < XS_TOP_BOUGHT)
        r->t[r->n++] = x;
    else if (ref_below(&r->t[low], &x))
        r->t[low] = x;
}

/* Random updates, removals and sketch replacements: the same list, entry for
 * entry and in the same order, as the linear-scan version. */
static void test_top_list_matches_reference(void **state)
{
    (void)state;
    xs_item_t *it = malloc(sizeof(*it));
    ref_top_t *ref = calloc(1, sizeof(*ref));
    xs_sketch_init(it);
    for (int k = 0; k < 300000; k++) {
        uint64_t r = rng();
        /* a few hundred items with skew, so that the sketch replaces entries */
        uint64_t x = 1 + (r % 7 == 0 ? r % 600 : r % 90);
        uint64_t before[XS_SKETCH_BOUGHT_CAP];
        int n_before = it->n_pairs[XS_CLASS_BOUGHT];
        for (int i = 0; i < n_before; i++)
            before[i] = it->bought[i].item;
        int pos = xs_sketch_add_pair(it, XS_CLASS_BOUGHT, x);
        if (pos < 0)
            continue; /* not kept: the list is unchanged */
        if (pos < n_before && before[pos] != x)
            ref_drop(ref, pos); /* replaced in the sketch */
        /* sims from a small set, so that ties happen; 1 in 10 removes */
        double sim = (r >> 20) % 10 == 0 ? 0 : (double)((r >> 24) % 40 + 1);
        xs_sketch_top_set(it, XS_CLASS_BOUGHT, pos, sim);
        ref_set(ref, pos, x, (float)sim);
        int n = 0;
        const xs_top_t *t = xs_sketch_top(it, XS_CLASS_BOUGHT, &n);
        assert_int_equal(n, ref->n);
        for (int i = 0; i < n; i++) {
            assert_int_equal(t[i].idx, ref->t[i].idx);
            assert_true(t[i].item == ref->t[i].item);
            assert_true(t[i].sim == ref->t[i].sim);
            assert_true(it->bought[t[i].idx].item == t[i].item);
        }
    }
    free(ref);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spacesaving_zipf_1_1),
        cmocka_unit_test(test_spacesaving_zipf_0_8),
        cmocka_unit_test(test_popular_item_keeps_heavy_hitters),
        cmocka_unit_test(test_item_version_2_migrates),
        cmocka_unit_test(test_item_version_4_lists),
        cmocka_unit_test(test_llr_hand_computed),
        cmocka_unit_test(test_similarities),
        cmocka_unit_test(test_item_round_trip_and_bound),
        cmocka_unit_test(test_item_lists_round_trip),
        cmocka_unit_test(test_item_lists_other_families),
        cmocka_unit_test(test_item_lists_changed),
        cmocka_unit_test(test_min_search_matches_full_scan),
        cmocka_unit_test(test_top_lists),
        cmocka_unit_test(test_top_list_matches_reference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
