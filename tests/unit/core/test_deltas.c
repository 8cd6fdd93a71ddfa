/*
 * The deferred item side (engine.h, "Deferred item side"): an engine with
 * defer_items runs the user stage and the scorer, keeps what the item stage
 * would have applied as per-partition pair deltas, and applies pair-delta
 * batches (its own and, in a consumer group, the other instances'). Checked
 * against an engine that applies the item side of each event at once, on a
 * synthetic stream of two input partitions: the same item state in the
 * exact reference mode, the same top-10 neighbours (overlap >= 0.9) in the
 * sketch mode, through the batch codec too; and the deferred engine's item
 * state does not move until a batch is applied.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/engine.h"
#include "xsell/hash.h"
#include "xsell/records.h"

#define T0 INT64_C(1700000000000)

/* ---- a synthetic stream ------------------------------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng_t;

static uint64_t rnd(rng_t *r)
{
    uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static double unif(rng_t *r)
{
    return (double)(rnd(r) >> 11) * 0x1.0p-53;
}

/* 0..n-1, small values more likely (about Zipf-like) */
static int skewed(rng_t *r, int n)
{
    double u = unif(r);
    int k = (int)(n * u * u * u);
    return k < n ? k : n - 1;
}

typedef struct stream {
    xs_event_t *ev;
    uint16_t *part;
    int n, cap;
} stream_t;

typedef struct world {
    int n_items, n_clusters, n_people;
} world_t;

static xs_event_t *next_event(stream_t *s, uint16_t part, xs_event_kind_t kind)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->ev = realloc(s->ev, (size_t)s->cap * sizeof(*s->ev));
        s->part = realloc(s->part, (size_t)s->cap * sizeof(*s->part));
        assert_non_null(s->ev);
        assert_non_null(s->part);
    }
    xs_event_t *ev = &s->ev[s->n];
    s->part[s->n++] = part;
    xs_event_init(ev, kind);
    return ev;
}

static void stream_free(stream_t *s)
{
    for (int i = 0; i < s->n; i++)
        xs_event_clear(&s->ev[i]);
    free(s->ev);
    free(s->part);
    memset(s, 0, sizeof(*s));
}

static char *fmt(const char *f, int x)
{
    char b[64];
    snprintf(b, sizeof(b), f, x);
    return strdup(b);
}

/* An item of person p's taste: mostly its cluster's (one category), some
 * best sellers of any cluster. */
static int pick_item(rng_t *r, const world_t *w, int p)
{
    int per = w->n_items / w->n_clusters;
    if (unif(r) < 0.8)
        return (p % w->n_clusters) * per + skewed(r, per);
    return skewed(r, w->n_items);
}

static void item_update(stream_t *s, const world_t *w, int item, int64_t ts)
{
    xs_event_t *ev = next_event(s, 0, XS_KIND_ITEM);
    ev->item_id = fmt("i-%d", item);
    ev->category = fmt("cat-%d", item / (w->n_items / w->n_clusters));
    ev->title = fmt("Item %d", item);
    ev->ts = ts;
}

/*
 * n events of people 0..n_people-1, person p in input partition p % 2 (its
 * session too): product views with the item's category, cart adds,
 * purchases of the cart, removals, and a few catalog updates. Every fifth
 * person starts as an anonymous session and logs in later (a session join).
 */
static void make_stream(stream_t *s, const world_t *w, int n, uint64_t seed, int64_t *clock)
{
    rng_t r = {seed};
    int np = w->n_people;
    int(*cart)[4] = calloc((size_t)np, sizeof(*cart));
    int *n_cart = calloc((size_t)np, sizeof(*n_cart));
    int *events = calloc((size_t)np, sizeof(*events));
    assert_true(cart && n_cart && events);
    static int seq;
    for (int i = 0; i < n; i++) {
        int64_t ts = (*clock += 30000);
        if (unif(&r) < 0.01) {
            item_update(s, w, skewed(&r, w->n_items), ts);
            continue;
        }
        int p = skewed(&r, np);
        bool anon = p % 5 == 0 && events[p] < 6;
        double u = unif(&r);
        xs_event_t *ev;
        if (u < 0.62 || (u >= 0.85 && n_cart[p] == 0)) {
            ev = next_event(s, (uint16_t)(p % 2), XS_KIND_CLICK);
            ev->type = XS_CLICK_PRODUCT_VIEW;
            int it = pick_item(&r, w, p);
            ev->item_id = fmt("i-%d", it);
            ev->category = fmt("cat-%d", it / (w->n_items / w->n_clusters));
        } else if (u < 0.85 && n_cart[p] < 4) {
            ev = next_event(s, (uint16_t)(p % 2), XS_KIND_CART);
            ev->type = XS_CART_ADD;
            int it = pick_item(&r, w, p);
            cart[p][n_cart[p]++] = it;
            char *id = fmt("i-%d", it);
            assert_int_equal(xs_event_add_line(ev, id, 1, 0, false), XS_OK);
            free(id);
        } else if (u < 0.95 || n_cart[p] == 4) {
            ev = next_event(s, (uint16_t)(p % 2), XS_KIND_CART);
            ev->type = XS_CART_PURCHASE;
            for (int k = 0; k < n_cart[p]; k++) {
                char *id = fmt("i-%d", cart[p][k]);
                assert_int_equal(xs_event_add_line(ev, id, 1, 0, false), XS_OK);
                free(id);
            }
            n_cart[p] = 0;
        } else {
            ev = next_event(s, (uint16_t)(p % 2), XS_KIND_CART);
            ev->type = XS_CART_REMOVE;
            char *id = fmt("i-%d", cart[p][--n_cart[p]]);
            assert_int_equal(xs_event_add_line(ev, id, 1, 0, false), XS_OK);
            free(id);
        }
        events[p]++;
        ev->event_id = fmt("e-%d", ++seq);
        ev->ts = ts;
        if (p % 5 == 0) {
            ev->session_id = fmt("s-%d", p);
            ev->user_id = anon ? fmt(XS_SESSION_USER_PREFIX "s-%d", p) : fmt("u-%d", p);
        } else {
            ev->user_id = fmt("u-%d", p);
        }
    }
    free(cart);
    free(n_cart);
    free(events);
}

/* ---- engines ----------------------------------------------------------------------- */

static xs_engine_t *engine(bool exact, bool defer)
{
    xs_engine_opts_t o;
    xs_engine_opts_default(&o);
    o.exact_pairs = exact;
    o.defer_items = defer;
    o.params.category_cap = 0; /* lists show the rankings themselves */
    o.params.family_cap = 0;
    o.params.suppress_minutes = 0;
    char errstr[256];
    xs_engine_t *e = xs_engine_new(&o, errstr, sizeof(errstr));
    if (!e)
        fail_msg("xs_engine_new: %s", errstr);
    return e;
}

static void process(xs_engine_t *e, const stream_t *s, int i)
{
    xs_list_t list;
    bool has = false;
    char errstr[256] = "";
    xs_event_list_init(&list);
    xs_err_t err = xs_engine_process(e, s->part[i], &s->ev[i], &list, &has, errstr, sizeof(errstr));
    if (err)
        fail_msg("xs_engine_process: %s", errstr);
    xs_event_list_clear(&list);
}

static uint64_t n_entries_seen, n_deltas_seen;

/* Takes partition's deltas and applies them to each of the engines to[]
 * (through the codec when `wire`). */
static void take_apply(xs_engine_t *from, uint16_t partition, xs_engine_t **to, int n_to, bool wire)
{
    xs_delta_batch_t b = {0}, d = {0};
    char errstr[256] = "";
    if (xs_engine_take_deltas(from, partition, &b, errstr, sizeof(errstr)))
        fail_msg("take: %s", errstr);
    assert_int_equal(b.partition, partition);
    assert_false(xs_engine_has_deltas(from, partition));
    n_entries_seen += b.n_entries;
    for (size_t k = 0; k < b.n_entries; k++)
        n_deltas_seen += b.entries[k].kind <= XS_DELTA_USERS ? b.entries[k].count : 1;
    const xs_delta_batch_t *use = &b;
    if (wire) {
        xs_buf_t buf = {0};
        if (xs_delta_batch_encode(&b, &buf, errstr, sizeof(errstr)))
            fail_msg("encode: %s", errstr);
        if (xs_delta_batch_decode(&d, buf.data, buf.len, errstr, sizeof(errstr)))
            fail_msg("decode: %s", errstr);
        assert_true(xs_delta_batch_equal(&b, &d));
        xs_buf_free(&buf);
        use = &d;
    }
    for (int k = 0; k < n_to; k++)
        if (xs_engine_apply_deltas(to[k], use, errstr, sizeof(errstr)))
            fail_msg("apply: %s", errstr);
    xs_delta_batch_clear(&b);
    xs_delta_batch_clear(&d);
}

/* Feeds events [from, to) to the normal engine r (NULL: none) and the
 * deferred d, which takes and applies both partitions' deltas every `every`
 * events and at the end. */
static void feed(xs_engine_t *r, xs_engine_t *d, const stream_t *s, int from, int to, int every,
                 bool wire)
{
    for (int i = from; i < to; i++) {
        if (r)
            process(r, s, i);
        process(d, s, i);
        if ((i - from + 1) % every == 0 || i + 1 == to)
            for (uint16_t p = 0; p < 2; p++)
                take_apply(d, p, &d, 1, wire);
    }
}

/* ---- comparing item state ------------------------------------------------------------- */

/* Every item's ranked neighbours by xs_engine_neighbours (the whole sketch or
 * the exact counts, ranked now), with the item's counts and catalog fields,
 * the totals, the pair updates, and the trending order, as one text. */
static char *item_state(xs_engine_t *e, const world_t *w)
{
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    out[0] = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(out + len, cap - len, __VA_ARGS__);                                      \
        assert_true(k_ >= 0);                                                                      \
        if (len + (size_t)k_ >= cap) {                                                             \
            cap = 2 * (len + (size_t)k_) + 1;                                                      \
            out = realloc(out, cap);                                                               \
            assert_non_null(out);                                                                  \
            k_ = snprintf(out + len, cap - len, __VA_ARGS__);                                      \
        }                                                                                          \
        len += (size_t)k_;                                                                         \
    } while (0)
    char errstr[256] = "";
    xs_engine_stats_t st;
    xs_engine_stats(e, &st);
    PUT("users %llu bought %llu pairs %llu\n", (unsigned long long)st.users_total,
        (unsigned long long)st.users_bought, (unsigned long long)st.pair_updates);
    for (int i = 0; i < w->n_items; i++) {
        char id[32];
        snprintf(id, sizeof(id), "i-%d", i);
        for (int c = 0; c < XS_CLASS__COUNT; c++) {
            xs_neighbour_t *v = NULL;
            int n = 0;
            xs_item_info_t info;
            if (xs_engine_neighbours(e, id, (xs_class_t)c, 1000, &v, &n, &info, errstr,
                                     sizeof(errstr)))
                fail_msg("neighbours: %s", errstr);
            PUT("%s/%d found %d users %u/%u flags %u cat %s title %s:", id, c, info.found,
                info.n_users[0], info.n_users[1], info.flags, info.category ? info.category : "-",
                info.title ? info.title : "-");
            for (int k = 0; k < n; k++)
                PUT(" %s:%u:%u:%.17g", v[k].item_id, v[k].count, v[k].err, v[k].similarity);
            PUT("\n");
            xs_engine_neighbours_free(v, n);
            xs_engine_item_info_clear(&info);
        }
    }
    xs_list_t list;
    xs_event_list_init(&list);
    if (xs_engine_recommend_ex(e, 0, NULL, NULL, 0, XS_PLACEMENT_CART, XS_LIST_MAX_ITEMS, NULL,
                               &list, errstr, sizeof(errstr)))
        fail_msg("recommend: %s", errstr);
    PUT("trending:");
    for (int k = 0; k < list.n_items; k++)
        PUT(" %s", list.items[k].item_id);
    PUT("\n");
    xs_event_list_clear(&list);
#undef PUT
    return out;
}

/* The lists an anonymous shopper gets for each item as the trigger. */
static char *lists_of(xs_engine_t *e, const world_t *w)
{
    size_t cap = (size_t)w->n_items * 400 + 1, len = 0;
    char *out = calloc(1, cap);
    char errstr[256] = "";
    assert_non_null(out);
    for (int i = 0; i < w->n_items; i++) {
        char id[32];
        snprintf(id, sizeof(id), "i-%d", i);
        const char *items[1] = {id};
        xs_list_t list;
        xs_event_list_init(&list);
        if (xs_engine_recommend_ex(e, 0, NULL, items, 1, XS_PLACEMENT_CART, 6, NULL, &list, errstr,
                                   sizeof(errstr)))
            fail_msg("recommend: %s", errstr);
        len += (size_t)snprintf(out + len, cap - len, "%s:", id);
        for (int k = 0; k < list.n_items; k++)
            len += (size_t)snprintf(out + len, cap - len, " %s", list.items[k].item_id);
        len += (size_t)snprintf(out + len, cap - len, "\n");
        assert_true(len < cap);
        xs_event_list_clear(&list);
    }
    return out;
}

/* The first line where two texts differ, for the failure message. */
static void assert_same_text(const char *what, const char *a, const char *b)
{
    if (!strcmp(a, b))
        return;
    int line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++;
        b++;
    }
    fail_msg("%s differ at line %d:\n  normal:   %.300s\n  deferred: %.300s", what, line, la, lb);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* Exact reference mode: deferring the item side and applying every
 * partition's batches gives the item state of applying it per event. */
static void test_exact_mode_same_item_state(void **state)
{
    (void)state;
    const world_t w = {.n_items = 100, .n_clusters = 10, .n_people = 400};
    stream_t s = {0};
    int64_t clock = T0;
    make_stream(&s, &w, 12000, 42, &clock);
    xs_engine_t *r = engine(true, false), *d = engine(true, true);
    n_entries_seen = n_deltas_seen = 0;
    feed(r, d, &s, 0, s.n, 1000, false);
    print_message("exact: %d events, batches of %llu entries for %llu deltas\n", s.n,
                  (unsigned long long)n_entries_seen, (unsigned long long)n_deltas_seen);
    assert_true(n_entries_seen < n_deltas_seen); /* pre-aggregated */
    xs_engine_stats_t sr;
    xs_engine_stats(r, &sr);
    assert_true(sr.pair_updates > 10000);
    assert_true(sr.sessions_joined > 0);
    char *a = item_state(r, &w), *b = item_state(d, &w);
    assert_same_text("item states", a, b);
    free(a);
    free(b);
    a = lists_of(r, &w);
    b = lists_of(d, &w);
    assert_same_text("lists", a, b);
    free(a);
    free(b);
    xs_engine_destroy(r);
    xs_engine_destroy(d);
    stream_free(&s);
}

/* Top-10 overlap of item i's stored lists (what the scorer reads) in r and d. */
static double overlap10(xs_engine_t *r, xs_engine_t *d, const char *id, xs_class_t c, int *n_ref)
{
    xs_neighbour_t *vr = NULL, *vd = NULL;
    int nr = 0, nd = 0;
    char errstr[256] = "";
    if (xs_engine_item_list(r, id, c, 10, &vr, &nr, errstr, sizeof(errstr)) ||
        xs_engine_item_list(d, id, c, 10, &vd, &nd, errstr, sizeof(errstr)))
        fail_msg("item list: %s", errstr);
    int common = 0;
    for (int i = 0; i < nr; i++)
        for (int k = 0; k < nd; k++)
            if (!strcmp(vr[i].item_id, vd[k].item_id))
                common++;
    *n_ref = nr;
    xs_engine_neighbours_free(vr, nr);
    xs_engine_neighbours_free(vd, nd);
    return nr ? (double)common / nr : 1.0;
}

/* Sketch mode, through the batch codec: the same top-10 neighbours. */
static void test_sketch_mode_top10_overlap(void **state)
{
    (void)state;
    const world_t w = {.n_items = 600, .n_clusters = 20, .n_people = 3000};
    stream_t s = {0};
    int64_t clock = T0;
    make_stream(&s, &w, 60000, 7, &clock);
    xs_engine_t *r = engine(false, false), *d = engine(false, true);
    feed(r, d, &s, 0, s.n, 5000, true);
    double sum[XS_CLASS__COUNT] = {0}, min[XS_CLASS__COUNT] = {1, 1};
    int n[XS_CLASS__COUNT] = {0};
    for (int i = 0; i < w.n_items; i++) {
        char id[32];
        snprintf(id, sizeof(id), "i-%d", i);
        for (int c = 0; c < XS_CLASS__COUNT; c++) {
            int nr = 0;
            double o = overlap10(r, d, id, (xs_class_t)c, &nr);
            if (nr < 10)
                continue;
            sum[c] += o;
            n[c]++;
            if (o < min[c])
                min[c] = o;
        }
    }
    for (int c = 0; c < XS_CLASS__COUNT; c++) {
        print_message("sketch, class %d: %d items with 10 neighbours, top-10 overlap mean %.4f "
                      "min %.2f\n",
                      c, n[c], sum[c] / n[c], min[c]);
        assert_true(n[c] > w.n_items / 2);
        assert_true(sum[c] / n[c] >= 0.9);
    }
    xs_engine_stats_t sr, sd;
    xs_engine_stats(r, &sr);
    xs_engine_stats(d, &sd);
    assert_int_equal(sr.pair_updates, sd.pair_updates); /* every pair delta arrived */
    assert_int_equal(sr.users_total, sd.users_total);
    assert_int_equal(sr.users_bought, sd.users_bought);
    xs_engine_destroy(r);
    xs_engine_destroy(d);
    stream_free(&s);
}

static xs_err_t discard_put(void *opaque, xs_cf_t cf, const void *key, size_t key_len,
                            const void *val, size_t val_len)
{
    (void)opaque, (void)cf, (void)key, (void)key_len, (void)val, (void)val_len;
    return XS_OK;
}

/* A deferred engine's item state, lists included, stays as it is until a
 * batch is applied; a dropped partition's deltas are gone, the others apply
 * as the normal engine would have. */
static void test_deferred_state_waits_for_batches(void **state)
{
    (void)state;
    const world_t w = {.n_items = 100, .n_clusters = 10, .n_people = 300};
    stream_t s = {0};
    int64_t clock = T0;
    make_stream(&s, &w, 6000, 3, &clock);
    int warm = 3000;
    xs_engine_t *d = engine(true, true), *r = engine(true, false);
    char errstr[256] = "";
    feed(NULL, d, &s, 0, warm, warm, false);
    for (int i = 0; i < warm; i++)
        process(r, &s, i);
    char *before = item_state(d, &w), *lists_before = lists_of(d, &w), *ref = item_state(r, &w);
    assert_same_text("after the warm-up", ref, before);
    free(ref);

    xs_delta_batch_t b = {0};
    assert_int_equal(xs_engine_take_deltas(d, 5, &b, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(b.n_entries, 0); /* nothing pending */
    assert_int_equal(b.n_ids, 0);
    assert_int_equal(b.users_total_delta, 0);
    assert_int_equal(b.users_bought_delta, 0);
    assert_int_equal(b.partition, 5);

    /* the catalog applies locally at once (every instance reads it whole):
     * its updates come after the look at the deferred state */
    int lists = 0;
    for (int i = warm; i < s.n; i++) {
        if (s.ev[i].kind == XS_KIND_ITEM)
            continue;
        xs_list_t list;
        bool has = false;
        xs_event_list_init(&list);
        assert_int_equal(
            xs_engine_process(d, s.part[i], &s.ev[i], &list, &has, errstr, sizeof(errstr)), XS_OK);
        lists += has;
        xs_event_list_clear(&list);
    }
    assert_true(lists > 1000); /* the scorer still answers each trigger */
    assert_true(xs_engine_has_deltas(d, 0));
    assert_true(xs_engine_has_deltas(d, 1));
    assert_false(xs_engine_has_deltas(d, 2));
    xs_engine_stats_t st;
    xs_engine_stats(d, &st);
    assert_true(st.deltas_bytes > 0);
    /* pending deltas count as dirty bytes (a checkpoint bounds them); a
     * flush writes the records and leaves the deltas to the take */
    assert_int_equal(xs_engine_flush(d, discard_put, NULL, errstr, sizeof(errstr)), XS_OK);
    xs_engine_stats(d, &st);
    assert_true(st.deltas_bytes > 0);
    assert_int_equal(st.dirty_bytes, st.deltas_bytes);
    assert_true(xs_engine_has_deltas(d, 0));
    char *after = item_state(d, &w), *lists_after = lists_of(d, &w);
    assert_same_text("deferred item states", before, after);
    assert_same_text("deferred lists", lists_before, lists_after);
    free(after);
    free(lists_after);

    for (int i = warm; i < s.n; i++)
        if (s.ev[i].kind == XS_KIND_ITEM)
            process(d, &s, i);
    /* partition 1 is revoked: its deltas are dropped; partition 0's apply */
    xs_engine_drop_deltas(d, 1);
    assert_false(xs_engine_has_deltas(d, 1));
    assert_int_equal(xs_engine_take_deltas(d, 1, &b, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(b.n_entries, 0);
    assert_int_equal(b.users_total_delta, 0);
    xs_delta_batch_clear(&b);
    take_apply(d, 0, &d, 1, true);
    for (int i = warm; i < s.n; i++)
        if (s.part[i] == 0 || s.ev[i].kind == XS_KIND_ITEM)
            process(r, &s, i);
    after = item_state(d, &w);
    ref = item_state(r, &w);
    assert_true(strcmp(before, after) != 0);
    assert_same_text("partition 0's batch applied", ref, after);
    free(after);
    free(ref);
    free(before);
    free(lists_before);
    xs_engine_destroy(d);
    xs_engine_destroy(r);
    stream_free(&s);
}

/* A batch from one deferred engine applied by another engine (not
 * deferred): the receiving side of a consumer group. */
static void test_batch_applies_on_another_instance(void **state)
{
    (void)state;
    const world_t w = {.n_items = 60, .n_clusters = 6, .n_people = 200};
    stream_t s = {0};
    int64_t clock = T0;
    make_stream(&s, &w, 4000, 11, &clock);
    xs_engine_t *a = engine(true, true), *b = engine(true, true), *r = engine(true, false);
    xs_engine_t *both[2];
    /* a owns partition 0, b partition 1; both read the catalog and every batch */
    for (int i = 0; i < s.n; i++) {
        process(r, &s, i);
        if (s.ev[i].kind == XS_KIND_ITEM) {
            process(a, &s, i);
            process(b, &s, i);
        } else {
            process(s.part[i] == 0 ? a : b, &s, i);
        }
        if ((i + 1) % 700 == 0 || i + 1 == s.n) {
            both[0] = a;
            both[1] = b;
            take_apply(a, 0, both, 2, true);
            take_apply(b, 1, both, 2, true);
        }
    }
    char *x = item_state(r, &w), *y = item_state(a, &w), *z = item_state(b, &w);
    assert_same_text("instance a's item state", x, y);
    assert_same_text("instance b's item state", x, z);
    free(x);
    free(y);
    free(z);
    xs_engine_destroy(a);
    xs_engine_destroy(b);
    xs_engine_destroy(r);
    stream_free(&s);
}

/* A checkpoint's batch split into parts (each through the codec) applies as
 * the whole batch does, and as the events themselves. */
static void test_parts_apply_as_the_whole(void **state)
{
    (void)state;
    const world_t w = {.n_items = 80, .n_clusters = 8, .n_people = 300};
    stream_t s = {0};
    int64_t clock = T0;
    make_stream(&s, &w, 5000, 5, &clock);
    xs_engine_t *d = engine(true, true), *r = engine(true, false);
    xs_engine_t *whole = engine(true, false), *parts = engine(true, true);
    char errstr[256] = "";
    for (int i = 0; i < s.n; i++) {
        process(d, &s, i);
        process(r, &s, i);
        if (s.ev[i].kind == XS_KIND_ITEM) { /* the catalog: every instance */
            process(whole, &s, i);
            process(parts, &s, i);
        }
    }
    for (uint16_t p = 0; p < 2; p++) {
        xs_delta_batch_t b = {0}, part = {0}, dec = {0};
        assert_int_equal(xs_engine_take_deltas(d, p, &b, errstr, sizeof(errstr)), XS_OK);
        b.seq = 7;
        assert_int_equal(xs_engine_apply_deltas(whole, &b, errstr, sizeof(errstr)), XS_OK);
        size_t n_parts = xs_delta_batch_n_parts(&b, 500);
        assert_true(n_parts >= 4);
        assert_int_equal(n_parts, (b.n_entries + 499) / 500);
        size_t n_entries = 0;
        for (uint32_t k = 0; k < n_parts; k++) {
            assert_int_equal(xs_delta_batch_part(&b, 500, k, &part, errstr, sizeof(errstr)), XS_OK);
            assert_int_equal(part.part, k);
            assert_int_equal(part.n_parts, n_parts);
            assert_int_equal(part.seq, 7);
            assert_true(part.n_entries <= 500);
            assert_true(part.n_ids < b.n_ids);
            assert_int_equal(part.users_total_delta, k ? 0 : b.users_total_delta);
            n_entries += part.n_entries;
            xs_buf_t buf = {0};
            assert_int_equal(xs_delta_batch_encode(&part, &buf, errstr, sizeof(errstr)), XS_OK);
            assert_int_equal(xs_delta_batch_decode(&dec, buf.data, buf.len, errstr, sizeof(errstr)),
                             XS_OK);
            xs_buf_free(&buf);
            assert_int_equal(xs_engine_apply_deltas(parts, &dec, errstr, sizeof(errstr)), XS_OK);
        }
        assert_int_equal(n_entries, b.n_entries);
        assert_int_equal(
            xs_delta_batch_part(&b, 500, (uint32_t)n_parts, &part, errstr, sizeof(errstr)),
            XS_ERR_INVALID);
        xs_delta_batch_clear(&b);
        xs_delta_batch_clear(&part);
        xs_delta_batch_clear(&dec);
    }
    char *x = item_state(r, &w), *y = item_state(whole, &w), *z = item_state(parts, &w);
    assert_same_text("one batch per partition", x, y);
    assert_same_text("batches in parts", x, z);
    free(x);
    free(y);
    free(z);
    x = lists_of(r, &w);
    z = lists_of(parts, &w);
    assert_same_text("lists from parts", x, z);
    free(x);
    free(z);
    xs_engine_destroy(d);
    xs_engine_destroy(r);
    xs_engine_destroy(whole);
    xs_engine_destroy(parts);
    stream_free(&s);
}

/* A batch that does not hold together is refused whole. */
static void test_invalid_batch_refused(void **state)
{
    (void)state;
    xs_engine_t *e = engine(true, false);
    xs_delta_batch_t b = {0};
    char errstr[256] = "";
    b.n_parts = 1;
    b.users_total_delta = 5;
    b.ts = T0;
    assert_int_equal(xs_delta_batch_add_id(&b, "i-1", errstr, sizeof(errstr)), XS_OK);
    xs_delta_t ok = {
        .kind = XS_DELTA_USERS, .cls = 0, .a = xs_hash_str("i-1"), .count = 2, .last_ts = T0};
    assert_int_equal(xs_delta_batch_add(&b, &ok, errstr, sizeof(errstr)), XS_OK);
    b.entries[0].count = 0; /* as no decoder would let through */
    assert_int_equal(xs_engine_apply_deltas(e, &b, errstr, sizeof(errstr)), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "entry 0 (users)"));
    xs_engine_stats_t st;
    xs_engine_stats(e, &st);
    assert_int_equal(st.users_total, 0); /* nothing applied */
    b.entries[0].count = 2;
    assert_int_equal(xs_engine_apply_deltas(e, &b, errstr, sizeof(errstr)), XS_OK);
    xs_engine_stats(e, &st);
    assert_int_equal(st.users_total, 5);
    xs_item_info_t info;
    xs_neighbour_t *v = NULL;
    int n = 0;
    assert_int_equal(
        xs_engine_neighbours(e, "i-1", XS_CLASS_BOUGHT, 5, &v, &n, &info, errstr, sizeof(errstr)),
        XS_OK);
    assert_true(info.found);
    assert_int_equal(info.n_users[XS_CLASS_BOUGHT], 2);
    xs_engine_neighbours_free(v, n);
    xs_engine_item_info_clear(&info);
    xs_delta_batch_clear(&b);
    xs_engine_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_mode_same_item_state),
        cmocka_unit_test(test_sketch_mode_top10_overlap),
        cmocka_unit_test(test_deferred_state_waits_for_batches),
        cmocka_unit_test(test_batch_applies_on_another_instance),
        cmocka_unit_test(test_parts_apply_as_the_whole),
        cmocka_unit_test(test_invalid_batch_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
