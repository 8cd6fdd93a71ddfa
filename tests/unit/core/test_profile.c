/*
 * Profile tests: caps, decay, dedup, cart, and the stored format (round
 * trip, rejection of newer versions and corrupt bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/profile.h"

#define T0 INT64_C(1700000000000)
#define HOUR 3600000.0

static void test_decay_halves_per_half_life(void **state)
{
    (void)state;
    assert_true(fabsf(xs_profile_decay(8.0f, T0, T0, HOUR) - 8.0f) < 1e-6f);
    assert_true(fabsf(xs_profile_decay(8.0f, T0, T0 + 3600000, HOUR) - 4.0f) < 1e-5f);
    assert_true(fabsf(xs_profile_decay(8.0f, T0, T0 + 3 * 3600000, HOUR) - 1.0f) < 1e-5f);
    /* event time going backwards never inflates a score */
    assert_true(fabsf(xs_profile_decay(8.0f, T0, T0 - 3600000, HOUR) - 8.0f) < 1e-6f);
}

static void test_touch_accumulates_with_decay(void **state)
{
    (void)state;
    xs_profile_t p;
    xs_profile_init(&p);
    assert_int_equal(xs_profile_touch(&p, 42, XS_SIG_VIEW, 1.0f, T0, HOUR, 0), XS_SIG_NONE);
    assert_int_equal(xs_profile_touch(&p, 42, XS_SIG_CART, 3.0f, T0 + 3600000, HOUR, 0),
                     XS_SIG_VIEW);
    int i = xs_profile_find(&p, 42);
    assert_true(i >= 0);
    /* 1 decayed over one half-life, plus 3 */
    assert_true(fabsf(p.items[i].score - 3.5f) < 1e-5f);
    assert_int_equal(p.items[i].signal, XS_SIG_CART);
    assert_int_equal(p.items[i].bought_ts, 0);
    assert_int_equal(xs_profile_touch(&p, 42, XS_SIG_VIEW, 1.0f, T0 + 7200000, HOUR, 0),
                     XS_SIG_CART); /* the strongest signal is kept */
    assert_int_equal(p.items[i].signal, XS_SIG_CART);
    xs_profile_touch(&p, 42, XS_SIG_PURCHASE, 5.0f, T0 + 10800000, HOUR, 0);
    assert_int_equal(p.items[i].bought_ts, T0 + 10800000);
    assert_true(p.flags & XS_PROFILE_F_BOUGHT);
}

static void test_item_cap_evicts_weakest(void **state)
{
    (void)state;
    xs_profile_t p;
    xs_profile_init(&p);
    /* item 1 is strong; items 2..N weak; then more than the cap */
    xs_profile_touch(&p, 1, XS_SIG_PURCHASE, 100.0f, T0, HOUR * 1000, 0);
    for (uint64_t it = 2; it < 2 + 3 * XS_PROFILE_MAX_ITEMS; it++) {
        xs_profile_touch(&p, it, XS_SIG_VIEW, 1.0f, T0 + (int64_t)it, HOUR * 1000, 0);
        assert_true(p.n_items <= XS_PROFILE_MAX_ITEMS);
    }
    assert_int_equal(p.n_items, XS_PROFILE_MAX_ITEMS);
    assert_true(xs_profile_find(&p, 1) >= 0); /* the strong one survives */
    /* the newest weak item is there (ties evict the oldest first) */
    assert_true(xs_profile_find(&p, 1 + 3 * XS_PROFILE_MAX_ITEMS) >= 0);
    assert_int_equal(xs_profile_find(&p, 2), -1);
}

static void test_cart_and_categories_are_capped(void **state)
{
    (void)state;
    xs_profile_t p;
    xs_profile_init(&p);
    for (uint64_t it = 1; it <= 100; it++)
        xs_profile_cart_add(&p, it, 1);
    assert_int_equal(p.n_cart, XS_PROFILE_MAX_CART);
    assert_true(xs_profile_in_cart(&p, 100));
    assert_int_equal(p.cart[0].item, 100 - XS_PROFILE_MAX_CART + 1); /* the newest lines */
    /* the older lines went to the overflow filter, which still finds every one */
    for (uint64_t it = 1; it <= 100; it++)
        assert_true(xs_profile_in_cart(&p, it));
    xs_profile_cart_clear(&p);
    assert_int_equal(p.n_cart, 0);
    for (uint64_t it = 1; it <= 100; it++) /* the filter goes with the cart */
        assert_false(xs_profile_in_cart(&p, it));
    xs_profile_cart_add(&p, 100, 2);
    xs_profile_cart_remove(&p, 100, 1);
    assert_true(xs_profile_in_cart(&p, 100));
    xs_profile_cart_remove(&p, 100, 2);
    assert_false(xs_profile_in_cart(&p, 100));
    for (uint64_t c = 1; c <= 50; c++)
        xs_profile_touch_cat(&p, c, (float)c, T0, HOUR);
    assert_int_equal(p.n_cats, XS_PROFILE_MAX_CATS);
    /* the strongest categories (largest weights) are the ones kept */
    for (int i = 0; i < p.n_cats; i++)
        assert_true(p.cats[i].cat > 50 - XS_PROFILE_MAX_CATS);
}

static void test_dedup_ring(void **state)
{
    (void)state;
    xs_profile_t p;
    xs_profile_init(&p);
    assert_false(xs_profile_check_dedup(&p, 1001));
    assert_true(xs_profile_check_dedup(&p, 1001));
    for (uint64_t h = 1; h <= XS_PROFILE_DEDUP; h++)
        xs_profile_check_dedup(&p, 5000 + h);
    /* pushed out of the ring by XS_PROFILE_DEDUP newer ids */
    assert_false(xs_profile_check_dedup(&p, 1001));
}

static void fill(xs_profile_t *p)
{
    xs_profile_init(p);
    for (uint64_t it = 1; it <= XS_PROFILE_MAX_ITEMS; it++)
        xs_profile_touch(p, it * UINT64_C(0x9e3779b97f4a7c15), (xs_signal_t)(1 + it % 3), (float)it,
                         T0 + (int64_t)it * 1000, HOUR, 0);
    for (uint64_t c = 1; c <= XS_PROFILE_MAX_CATS; c++)
        xs_profile_touch_cat(p, c * 77, 1.5f, T0 + (int64_t)c, HOUR);
    for (uint64_t it = 1; it <= XS_PROFILE_MAX_CART; it++)
        xs_profile_cart_add(p, it * 31, (int32_t)it);
    for (uint64_t h = 1; h <= XS_PROFILE_DEDUP + 3; h++)
        xs_profile_check_dedup(p, h * 12345);
    p->last_list_hash[XS_PLACEMENT_CART] = 0xdeadbeef;
    p->last_list_ts[XS_PLACEMENT_CART] = T0 + 5;
    p->last_ts = T0 + 100000;
    p->n_events = 1234;
}

static void test_round_trip_full_profile(void **state)
{
    (void)state;
    xs_profile_t a, b;
    xs_buf_t buf = {0};
    fill(&a);
    assert_int_equal(xs_profile_encode(&a, &buf), XS_OK);
    /* the stated bound: well under 1 KiB even when every part is full */
    assert_true(buf.len <= 1024);
    assert_int_equal(xs_profile_decode(&b, buf.data, buf.len, NULL, 0), XS_OK);
    assert_int_equal(a.n_items, b.n_items);
    for (int i = 0; i < a.n_items; i++) {
        assert_true(a.items[i].item == b.items[i].item);
        assert_int_equal(a.items[i].signal, b.items[i].signal);
        assert_true(a.items[i].score == b.items[i].score);
        assert_true(a.items[i].ts == b.items[i].ts);
        assert_true(a.items[i].bought_ts == b.items[i].bought_ts);
    }
    assert_int_equal(a.n_cats, b.n_cats);
    assert_int_equal(a.n_cart, b.n_cart);
    assert_memory_equal(a.cart, b.cart, sizeof(a.cart[0]) * a.n_cart);
    assert_int_equal(a.n_dedup, b.n_dedup);
    assert_int_equal(a.dedup_pos, b.dedup_pos);
    assert_memory_equal(a.dedup, b.dedup, sizeof(a.dedup));
    assert_int_equal(b.last_list_hash[XS_PLACEMENT_CART], 0xdeadbeef);
    assert_true(b.last_list_ts[XS_PLACEMENT_CART] == T0 + 5);
    assert_true(b.last_ts == a.last_ts);
    assert_int_equal(b.n_events, 1234);
    /* re-encoding the decoded profile gives the same bytes */
    xs_buf_t again = {0};
    assert_int_equal(xs_profile_encode(&b, &again), XS_OK);
    assert_int_equal(again.len, buf.len);
    assert_memory_equal(again.data, buf.data, buf.len);
    xs_buf_free(&again);
    xs_buf_free(&buf);
}

static void test_rejects_newer_version_and_corruption(void **state)
{
    (void)state;
    xs_profile_t a, b;
    xs_buf_t buf = {0};
    char errstr[128];
    fill(&a);
    assert_int_equal(xs_profile_encode(&a, &buf), XS_OK);
    buf.data[1] = XS_PROFILE_VERSION + 1;
    assert_int_equal(xs_profile_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_VERSION);
    assert_non_null(strstr(errstr, "newer"));
    buf.data[1] = XS_PROFILE_VERSION;
    buf.data[0] = 'I';
    assert_int_equal(xs_profile_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    buf.data[0] = 'U';
    /* every truncation is an error, never a partial profile */
    for (size_t n = 0; n < buf.len; n++)
        assert_int_not_equal(xs_profile_decode(&b, buf.data, n, NULL, 0), XS_OK);
    /* trailing garbage too */
    xs_buf_append_u8(&buf, 0);
    assert_int_equal(xs_profile_decode(&b, buf.data, buf.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    xs_buf_free(&buf);
}

#define DAY INT64_C(86400000)

/* Purchases across 60 days, two a day, each evicting older ones from the 24
 * items: every purchase less than rebuy_days old is still found (exact
 * reference: the purchase times), before and after a round trip through
 * the stored form; only older ones may be reported as not bought. */
static void test_rebuy_window_holds_for_long_histories(void **state)
{
    (void)state;
    const int64_t rebuy = 30 * DAY;
    xs_profile_t *p = calloc(1, sizeof(*p)), *q = calloc(1, sizeof(*q));
    assert_non_null(p);
    assert_non_null(q);
    xs_profile_init(p);
    int64_t bought[120];
    int64_t now = T0;
    for (int i = 0; i < 120; i++) {
        now = T0 + (int64_t)i * DAY / 2;
        bought[i] = now;
        p->last_ts = now;
        xs_profile_forget(p, rebuy);
        /* views in between push purchases out of the items */
        xs_profile_touch(p, 5000 + (uint64_t)i, XS_SIG_VIEW, 9.0f, now, HOUR * 24 * 30, rebuy);
        xs_profile_touch(p, 1000 + (uint64_t)i, XS_SIG_PURCHASE, 1.0f, now, HOUR * 24 * 30, rebuy);
    }
    assert_true(p->n_items <= XS_PROFILE_MAX_ITEMS);
    assert_true(p->n_buckets >= 1);
    xs_buf_t buf = {0};
    assert_int_equal(xs_profile_encode(p, &buf), XS_OK);
    assert_int_equal(xs_profile_decode(q, buf.data, buf.len, NULL, 0), XS_OK);
    int older_back = 0;
    for (int i = 0; i < 120; i++) {
        bool within = now - bought[i] < rebuy;
        bool a = xs_profile_bought_within(p, 1000 + (uint64_t)i, now, rebuy);
        bool b = xs_profile_bought_within(q, 1000 + (uint64_t)i, now, rebuy);
        if (within) {
            assert_true(a);
            assert_true(b);
        }
        assert_int_equal(a, b);
        older_back += !within && !a;
    }
    print_message("purchases older than the window reported free: %d of 60\n", older_back);
    /* a shorter window of another arm is within the kept one */
    for (int i = 0; i < 120; i++)
        if (now - bought[i] < 7 * DAY)
            assert_true(xs_profile_bought_within(q, 1000 + (uint64_t)i, now, 7 * DAY));
    /* the buckets age out in event time: one window after the last purchase
     * nothing is excluded any more, and the filters are gone */
    q->last_ts = now + rebuy;
    xs_profile_forget(q, rebuy);
    assert_int_equal(q->n_buckets, 0);
    for (int i = 0; i < 120; i++)
        assert_false(xs_profile_bought_within(q, 1000 + (uint64_t)i, now + rebuy, rebuy));
    xs_buf_free(&buf);
    free(p);
    free(q);
}

/* A cart of 200 lines: every one is in the cart (no false negatives). */
static void test_cart_of_200_lines_is_all_in_cart(void **state)
{
    (void)state;
    xs_profile_t p;
    xs_profile_init(&p);
    for (uint64_t it = 1; it <= 200; it++)
        xs_profile_cart_add(&p, it * UINT64_C(0x9e3779b97f4a7c15), 1);
    xs_buf_t buf = {0};
    xs_profile_t q;
    assert_int_equal(xs_profile_encode(&p, &buf), XS_OK);
    assert_int_equal(xs_profile_decode(&q, buf.data, buf.len, NULL, 0), XS_OK);
    int fp = 0;
    for (uint64_t it = 1; it <= 200; it++)
        assert_true(xs_profile_in_cart(&q, it * UINT64_C(0x9e3779b97f4a7c15)));
    for (uint64_t it = 1000; it < 2000; it++)
        fp += xs_profile_in_cart(&q, it);
    /* false positives: a 256-bit filter with 192 items answers "maybe" often */
    print_message("cart overflow filter, 192 items: %d of 1000 others reported in cart\n", fp);
    assert_true(fp < 1000);
    xs_buf_free(&buf);
}

/* The adversarial worst case: every part full, every time distance as long
 * as the profile keeps (just inside the horizon), the latest event time
 * allowed (2100), saturated counters: the record stays within 1 KiB. */
static void worst_case(xs_profile_t *pp, uint64_t salt)
{
    const int64_t last = INT64_C(4102444800000), rebuy = 365 * DAY;
    const int64_t far = last - XS_PROFILE_HORIZON_MS + 1;
#define p (*pp)
    xs_profile_init(&p);
    p.last_ts = last;
    p.n_events = UINT32_MAX;
    p.flags = 0xff;
    for (int i = 0; i < XS_PROFILE_MAX_ITEMS; i++)
        p.items[p.n_items++] = (xs_profile_item_t){.item = ~(uint64_t)i ^ salt,
                                                   .ts = far,
                                                   .bought_ts = far,
                                                   .score = 3e38f,
                                                   .signal = XS_SIG_PURCHASE};
    for (int i = 0; i < XS_PROFILE_MAX_CATS; i++)
        p.cats[p.n_cats++] =
            (xs_profile_cat_t){.cat = ~(uint64_t)i ^ salt, .ts = far, .score = 3e38f};
    for (int i = 0; i < XS_PROFILE_MAX_CART; i++)
        p.cart[p.n_cart++] = (xs_cart_line_t){.item = ~(uint64_t)i ^ salt, .qty = INT32_MAX};
    p.n_over = 255;
    memset(p.cart_over.bits, 0xff, sizeof(p.cart_over.bits));
    for (int i = 0; i < XS_PROFILE_REBUY_BUCKETS; i++) {
        p.rebuy[i].hi = last - rebuy + 1 + i;
        p.rebuy[i].lo = far;
        memset(p.rebuy[i].bloom.bits, 0xff, sizeof(p.rebuy[i].bloom.bits));
    }
    p.n_buckets = XS_PROFILE_REBUY_BUCKETS;
    for (int i = 0; i < XS_PROFILE_DEDUP; i++)
        xs_profile_check_dedup(&p, (uint64_t)i + 1 + salt);
    for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
        uint64_t items[XS_PROFILE_SEEN];
        for (int k = 0; k < XS_PROFILE_SEEN; k++)
            items[k] = (uint64_t)(pl * 100 + k) ^ salt;
        xs_profile_set_last_list(&p, pl, 0xffffffffu, far, items, XS_PROFILE_SEEN);
    }
#undef p
}

/* A session's worst case merged into a user's worst case (no item, category
 * or cart line in common): every cap holds and the record stays within the
 * bound. */
static void test_merge_of_two_worst_cases_within_1kib(void **state)
{
    (void)state;
    const int64_t rebuy = 365 * DAY;
    xs_profile_t p, s;
    worst_case(&p, 0);
    worst_case(&s, UINT64_C(0x5555000000000000));
    xs_profile_merge(&p, &s, HOUR * 24 * 30, rebuy);
    assert_int_equal(p.n_items, XS_PROFILE_MAX_ITEMS);
    assert_int_equal(p.n_cats, XS_PROFILE_MAX_CATS);
    assert_int_equal(p.n_cart, XS_PROFILE_MAX_CART);
    assert_int_equal(p.n_buckets, XS_PROFILE_REBUY_BUCKETS);
    assert_int_equal(p.n_over, 255);
    assert_int_equal(p.n_events, UINT32_MAX);
    xs_buf_t buf = {0};
    assert_int_equal(xs_profile_encode(&p, &buf), XS_OK);
    print_message("worst-case merged user record: %zu bytes\n", buf.len);
    assert_true(buf.len <= XS_PROFILE_MAX_BYTES);
    xs_profile_t q;
    assert_int_equal(xs_profile_decode(&q, buf.data, buf.len, NULL, 0), XS_OK);
    xs_buf_free(&buf);
}

/* Merging a session into a user loses no exclusion of either: every cart
 * line (lines and overflow) is in the merged cart, every purchase within
 * the rebuy window is found; an item of both is summed; caps hold. */
static void test_merge_keeps_every_exclusion(void **state)
{
    (void)state;
    const int64_t rebuy = 30 * DAY;
    const double hl = HOUR * 24 * 30;
    xs_profile_t *p = calloc(1, sizeof(*p)), *s = calloc(1, sizeof(*s));
    assert_non_null(p);
    assert_non_null(s);
    xs_profile_init(p);
    xs_profile_init(s);
    int64_t now = T0;
    /* user: 40 purchases over 20 days among views; 12 cart lines */
    for (int i = 0; i < 40; i++) {
        now = T0 + (int64_t)i * DAY / 2;
        p->last_ts = now;
        xs_profile_forget(p, rebuy);
        xs_profile_touch(p, 5000 + (uint64_t)i, XS_SIG_VIEW, 9.0f, now, hl, rebuy);
        xs_profile_touch(p, 1000 + (uint64_t)i, XS_SIG_PURCHASE, 1.0f, now, hl, rebuy);
    }
    for (uint64_t it = 0; it < 12; it++)
        xs_profile_cart_add(p, 3000 + it, 1);
    xs_profile_touch(p, 42, XS_SIG_VIEW, 20.0f, now, hl, rebuy);
    xs_profile_touch_cat(p, 7, 1.0f, now, hl);
    int64_t user_now = now;
    /* session: later, 30 purchases among views; 10 cart lines */
    for (int i = 0; i < 30; i++) {
        now = user_now + (int64_t)(i + 1) * DAY / 4;
        s->last_ts = now;
        xs_profile_forget(s, rebuy);
        xs_profile_touch(s, 6000 + (uint64_t)i, XS_SIG_VIEW, 9.0f, now, hl, rebuy);
        xs_profile_touch(s, 2000 + (uint64_t)i, XS_SIG_PURCHASE, 1.0f, now, hl, rebuy);
    }
    for (uint64_t it = 0; it < 10; it++)
        xs_profile_cart_add(s, 4000 + it, 2);
    xs_profile_touch(s, 42, XS_SIG_CART, 20.0f, now, hl, rebuy);
    xs_profile_touch_cat(s, 7, 2.0f, now, hl);
    uint32_t n_ev = p->n_events + s->n_events;
    xs_profile_merge(p, s, hl, rebuy);
    assert_int_equal(p->last_ts, now);
    assert_int_equal(p->n_events, n_ev);
    assert_true(p->n_items <= XS_PROFILE_MAX_ITEMS);
    assert_true(p->n_cart <= XS_PROFILE_MAX_CART);
    assert_true(p->n_buckets <= XS_PROFILE_REBUY_BUCKETS);
    for (uint64_t it = 0; it < 12; it++)
        assert_true(xs_profile_in_cart(p, 3000 + it));
    for (uint64_t it = 0; it < 10; it++)
        assert_true(xs_profile_in_cart(p, 4000 + it));
    for (int i = 0; i < 40; i++)
        if (now - (T0 + (int64_t)i * DAY / 2) < rebuy)
            assert_true(xs_profile_bought_within(p, 1000 + (uint64_t)i, now, rebuy));
    for (int i = 0; i < 30; i++)
        assert_true(xs_profile_bought_within(p, 2000 + (uint64_t)i, now, rebuy));
    int k = xs_profile_find(p, 42);
    assert_true(k >= 0);
    assert_int_equal(p->items[k].signal, XS_SIG_CART);
    assert_true(p->items[k].score > 30.0f); /* 20 + the user's 20 decayed by < 8 days */
    assert_int_equal(p->n_cats, 1);
    assert_true(p->cats[0].score > 2.0f);
    /* and the same after a round trip */
    xs_buf_t buf = {0};
    xs_profile_t *q = calloc(1, sizeof(*q));
    assert_int_equal(xs_profile_encode(p, &buf), XS_OK);
    assert_int_equal(xs_profile_decode(q, buf.data, buf.len, NULL, 0), XS_OK);
    for (uint64_t it = 0; it < 10; it++)
        assert_true(xs_profile_in_cart(q, 4000 + it));
    for (int i = 0; i < 30; i++)
        assert_true(xs_profile_bought_within(q, 2000 + (uint64_t)i, now, rebuy));
    xs_buf_free(&buf);
    free(p);
    free(s);
    free(q);
}

static void test_worst_case_record_within_1kib(void **state)
{
    (void)state;
    const int64_t last = INT64_C(4102444800000), rebuy = 365 * DAY;
    const int64_t far = last - XS_PROFILE_HORIZON_MS + 1;
    xs_profile_t p;
    xs_profile_init(&p);
    p.last_ts = last;
    p.n_events = UINT32_MAX;
    p.flags = 0xff;
    for (int i = 0; i < XS_PROFILE_MAX_ITEMS; i++)
        p.items[p.n_items++] = (xs_profile_item_t){.item = ~(uint64_t)i,
                                                   .ts = far,
                                                   .bought_ts = far,
                                                   .score = 3e38f,
                                                   .signal = XS_SIG_PURCHASE};
    for (int i = 0; i < XS_PROFILE_MAX_CATS; i++)
        p.cats[p.n_cats++] = (xs_profile_cat_t){.cat = ~(uint64_t)i, .ts = far, .score = 3e38f};
    for (int i = 0; i < XS_PROFILE_MAX_CART; i++)
        p.cart[p.n_cart++] = (xs_cart_line_t){.item = ~(uint64_t)i, .qty = INT32_MAX};
    p.n_over = 255;
    memset(p.cart_over.bits, 0xff, sizeof(p.cart_over.bits));
    for (int i = 0; i < XS_PROFILE_REBUY_BUCKETS; i++) {
        p.rebuy[i].hi = last - rebuy + 1 + i;
        p.rebuy[i].lo = far;
        memset(p.rebuy[i].bloom.bits, 0xff, sizeof(p.rebuy[i].bloom.bits));
    }
    p.n_buckets = XS_PROFILE_REBUY_BUCKETS;
    for (int i = 0; i < XS_PROFILE_DEDUP; i++)
        xs_profile_check_dedup(&p, (uint64_t)i + 1);
    assert_int_equal(p.n_dedup, XS_PROFILE_DEDUP);
    for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
        uint64_t items[XS_PROFILE_SEEN];
        for (int k = 0; k < XS_PROFILE_SEEN; k++)
            items[k] = (uint64_t)(pl * 100 + k);
        xs_profile_set_last_list(&p, pl, 0xffffffffu, far, items, XS_PROFILE_SEEN);
    }
    xs_profile_forget(&p, rebuy); /* keeps all of it: everything is just inside */
    assert_int_equal(p.n_items, XS_PROFILE_MAX_ITEMS);
    assert_int_equal(p.n_buckets, XS_PROFILE_REBUY_BUCKETS);
    xs_buf_t buf = {0};
    assert_int_equal(xs_profile_encode(&p, &buf), XS_OK);
    print_message("worst-case user record: %zu bytes\n", buf.len);
    assert_true(buf.len <= XS_PROFILE_MAX_BYTES);
    assert_int_equal(buf.len, 1017); /* the worst case stated in profile.h */
    xs_profile_t q;
    assert_int_equal(xs_profile_decode(&q, buf.data, buf.len, NULL, 0), XS_OK);
    /* one millisecond further back is forgotten */
    p.last_ts++;
    xs_profile_forget(&p, rebuy);
    assert_int_equal(p.n_items, 0);
    assert_int_equal(p.n_cats, 0);
    xs_buf_free(&buf);
}

/* Version 1 records are refused with a clear error, not misread. */
static void test_version_1_is_a_clear_error(void **state)
{
    (void)state;
    const uint8_t v1[] = {'U', 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    xs_profile_t p;
    char errstr[256] = "";
    assert_int_equal(xs_profile_decode(&p, v1, sizeof(v1), errstr, sizeof(errstr)), XS_ERR_VERSION);
    assert_non_null(strstr(errstr, "older"));
    assert_non_null(strstr(errstr, "--reset-state"));
}

/* The last list per placement: fingerprints of its first items. */
static void test_last_list_fingerprints(void **state)
{
    (void)state;
    xs_profile_t p;
    xs_profile_init(&p);
    assert_int_equal(xs_profile_last_list_has(&p, XS_PLACEMENT_CART, 7), -1);
    uint64_t items[12];
    for (int i = 0; i < 12; i++)
        items[i] = 100 + (uint64_t)i;
    xs_profile_set_last_list(&p, XS_PLACEMENT_CART, 0x1234, T0, items, 12);
    for (int i = 0; i < XS_PROFILE_SEEN; i++)
        assert_int_equal(xs_profile_last_list_has(&p, XS_PLACEMENT_CART, items[i]), 1);
    assert_int_equal(xs_profile_last_list_has(&p, XS_PLACEMENT_CART, 111), 0); /* 12th */
    assert_int_equal(xs_profile_last_list_has(&p, XS_PLACEMENT_CART, 5), 0);
    assert_int_equal(xs_profile_last_list_has(&p, XS_PLACEMENT_CHECKOUT, 100), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decay_halves_per_half_life),
        cmocka_unit_test(test_touch_accumulates_with_decay),
        cmocka_unit_test(test_item_cap_evicts_weakest),
        cmocka_unit_test(test_cart_and_categories_are_capped),
        cmocka_unit_test(test_dedup_ring),
        cmocka_unit_test(test_rebuy_window_holds_for_long_histories),
        cmocka_unit_test(test_cart_of_200_lines_is_all_in_cart),
        cmocka_unit_test(test_worst_case_record_within_1kib),
        cmocka_unit_test(test_merge_of_two_worst_cases_within_1kib),
        cmocka_unit_test(test_merge_keeps_every_exclusion),
        cmocka_unit_test(test_version_1_is_a_clear_error),
        cmocka_unit_test(test_last_list_fingerprints),
        cmocka_unit_test(test_round_trip_full_profile),
        cmocka_unit_test(test_rejects_newer_version_and_corruption),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
