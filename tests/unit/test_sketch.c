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
    xs_item_init(it);
    for (int k = 0; k < n_updates; k++) {
        uint64_t x = zipf(cdf, n_items);
        exact[x]++;
        xs_item_add_pair(it, XS_CLASS_BOUGHT, x);
    }
    const xs_ss_entry_t *e = xs_item_pairs_const(it, XS_CLASS_BOUGHT);
    assert_int_equal(it->n_pairs[XS_CLASS_BOUGHT], XS_SKETCH_BOUGHT_CAP);
    uint64_t sum = 0;
    for (int i = 0; i < it->n_pairs[XS_CLASS_BOUGHT]; i++) {
        /* count over-estimates by at most err; err <= N/m */
        assert_true(e[i].count >= exact[e[i].item]);
        assert_true(e[i].count - e[i].err <= exact[e[i].item]);
        assert_true((double)e[i].err <= (double)n_updates / XS_SKETCH_BOUGHT_CAP);
        sum += e[i].count;
    }
    assert_int_equal(sum, (uint64_t)n_updates); /* counts add up to the stream length */
    /* every item more frequent than N/m is present */
    int heavy = 0;
    for (int x = 1; x <= n_items; x++) {
        if ((double)exact[x] > (double)n_updates / XS_SKETCH_BOUGHT_CAP) {
            heavy++;
            uint32_t err;
            assert_true(xs_item_pair_count(it, XS_CLASS_BOUGHT, (uint64_t)x, &err) > 0);
        }
    }
    assert_true(heavy >= min_heavy); /* skewed enough for the check to matter */
    /* the heavy hitters have a positive guaranteed count */
    for (int r = 1; r <= min_heavy; r++) {
        uint32_t err;
        uint32_t c = xs_item_pair_count(it, XS_CLASS_BOUGHT, (uint64_t)r, &err);
        assert_true(c - err > 0);
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

static void test_llr_hand_computed(void **state)
{
    (void)state;
    /* G^2 = 2 sum k ln(k / E): for (1,0,0,1) every expected count is 1/2. */
    assert_true(fabs(xs_llr(1, 0, 0, 1) - 4 * log(2)) < 1e-12);
    assert_true(fabs(xs_llr(10, 0, 0, 10) - 40 * log(2)) < 1e-9);
    /* independence gives 0 */
    assert_true(fabs(xs_llr(10, 20, 30, 60)) < 1e-9);
    /* (10, 20, 30, 40): N = 100, E = (12, 18, 28, 42) */
    double g = 2 * (10 * log(10 / 12.0) + 20 * log(20 / 18.0) + 30 * log(30 / 28.0) +
                    40 * log(40 / 42.0));
    assert_true(fabs(xs_llr(10, 20, 30, 40) - g) < 1e-9);
    /* larger counts (beyond the x log x table) */
    double k[4] = {1200, 98800, 70000, 9000000};
    double n = k[0] + k[1] + k[2] + k[3];
    double r1 = k[0] + k[1], r2 = k[2] + k[3], c1 = k[0] + k[2], c2 = k[1] + k[3];
    double e[4] = {r1 * c1 / n, r1 * c2 / n, r2 * c1 / n, r2 * c2 / n};
    double g2 = 0;
    for (int i = 0; i < 4; i++)
        g2 += 2 * k[i] * log(k[i] / e[i]);
    assert_true(fabs(xs_llr(k[0], k[1], k[2], k[3]) - g2) / g2 < 1e-9);
}

static void test_similarities(void **state)
{
    (void)state;
    /* k11 = 10 users with both, n_i = 20, n_j = 40, N = 1000 */
    assert_true(fabs(xs_similarity(XS_SIM_COSINE, 10, 20, 40, 1000, 0) - 10 / sqrt(800)) < 1e-12);
    assert_true(fabs(xs_similarity(XS_SIM_JACCARD, 10, 20, 40, 1000, 0) - 10.0 / 50) < 1e-12);
    assert_true(fabs(xs_similarity(XS_SIM_LIFT, 10, 20, 40, 1000, 0) - 10.0 * 1000 / 800) < 1e-9);
    assert_true(fabs(xs_similarity(XS_SIM_COUNT, 10, 20, 40, 1000, 0) - 10) < 1e-12);
    assert_true(fabs(xs_similarity(XS_SIM_LLR, 10, 20, 40, 1000, 0) -
                     xs_llr(10, 10, 30, 950)) < 1e-12);
    /* negative association: fewer together than expected (E = 20 * 500 / 1000 = 10) */
    assert_true(xs_similarity(XS_SIM_LLR, 2, 20, 500, 1000, 0) == 0);
    assert_true(xs_llr(2, 18, 498, 482) > 3.84); /* although G^2 itself is large */
    /* llr-cosine: cosine when significant, 0 otherwise */
    assert_true(fabs(xs_similarity(XS_SIM_LLR_COSINE, 10, 20, 40, 1000, 3.84) - 10 / sqrt(800)) <
                1e-12);
    assert_true(xs_similarity(XS_SIM_LLR_COSINE, 1, 20, 40, 1000, 3.84) == 0);
    /* estimates larger than the marginals are clamped, not NaN */
    double v = xs_similarity(XS_SIM_LLR, 50, 20, 40, 30, 0);
    assert_false(isnan(v));
    assert_int_equal(xs_sim_from_name("llr-cosine"), XS_SIM_LLR_COSINE);
    assert_int_equal(xs_sim_from_name("nope"), -1);
}

static void test_item_round_trip_and_bound(void **state)
{
    (void)state;
    xs_item_t *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
    xs_item_init(a);
    a->category = 0x1234567890abcdefULL;
    a->flags = XS_ITEM_F_CATALOG | XS_ITEM_F_REPURCHASABLE;
    a->n_users[XS_CLASS_BOUGHT] = 123456;
    a->n_users[XS_CLASS_VIEWED] = 4000000000u;
    /* fill both summaries to capacity with worst-case counts */
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++)
        for (int k = 0; k < 3 * XS_SKETCH_BOUGHT_CAP; k++)
            for (int r = 0; r < (k % 7) + 1; r++)
                xs_item_add_pair(a, (xs_class_t)cls, rng());
    xs_buf_t buf = {0};
    assert_int_equal(xs_item_encode(a, &buf), XS_OK);
    assert_true(buf.len <= 4096);
    assert_int_equal(xs_item_decode(b, buf.data, buf.len, NULL, 0), XS_OK);
    assert_true(b->category == a->category);
    assert_int_equal(b->flags, a->flags);
    assert_memory_equal(b->n_users, a->n_users, sizeof(a->n_users));
    assert_memory_equal(b->n_pairs, a->n_pairs, sizeof(a->n_pairs));
    assert_memory_equal(b->bought, a->bought, sizeof(a->bought[0]) * a->n_pairs[0]);
    assert_memory_equal(b->viewed, a->viewed, sizeof(a->viewed[0]) * a->n_pairs[1]);
    char errstr[128];
    buf.data[1] = XS_ITEM_VERSION + 1;
    assert_int_equal(xs_item_decode(b, buf.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_VERSION);
    buf.data[1] = XS_ITEM_VERSION;
    for (size_t n = 0; n < buf.len; n += 7)
        assert_int_not_equal(xs_item_decode(b, buf.data, n, NULL, 0), XS_OK);
    xs_buf_free(&buf);
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spacesaving_zipf_1_1),
        cmocka_unit_test(test_spacesaving_zipf_0_8),
        cmocka_unit_test(test_llr_hand_computed),
        cmocka_unit_test(test_similarities),
        cmocka_unit_test(test_item_round_trip_and_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
