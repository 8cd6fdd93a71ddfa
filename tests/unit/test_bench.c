/*
 * The synthetic workload generator and smoke runs of `xsell bench core`
 * and `xsell bench e2e`: the generator is deterministic and produces the
 * documented event mix; the bench prints one JSON object with its figures,
 * and the e2e bench counts and measures every message. No timing is asserted
 * (benchmarks print figures; they are not timed tests).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/hash.h"
#include "xsell/synth.h"

static uint64_t stream_digest(uint64_t seed, uint64_t n, uint64_t counts[4])
{
    xs_synth_opts_t o;
    xs_synth_opts_default(&o);
    o.seed = seed;
    o.n_events = n;
    o.n_users = 5000;
    o.n_items = 2000;
    xs_synth_t *s = xs_synth_new(&o, NULL, 0);
    assert_non_null(s);
    uint64_t h = 0;
    xs_event_t ev;
    int64_t last_ts = 0;
    while (xs_synth_next(s, &ev) == XS_OK) {
        assert_true(ev.ts >= last_ts);
        last_ts = ev.ts;
        h = h * 31 + xs_hash_str(ev.event_id) + xs_hash_str(ev.user_id);
        if (ev.kind == XS_KIND_CLICK) {
            counts[0]++;
            assert_non_null(ev.item_id);
            h += xs_hash_str(ev.item_id);
        } else {
            counts[ev.type == XS_CART_ADD ? 1 : ev.type == XS_CART_PURCHASE ? 2 : 3]++;
            assert_true(ev.n_lines > 0);
            for (size_t i = 0; i < ev.n_lines; i++)
                h += xs_hash_str(ev.lines[i].item_id);
        }
        xs_event_clear(&ev);
    }
    assert_int_equal(xs_synth_count(s), n);
    xs_synth_destroy(s);
    return h;
}

static void test_synth_deterministic(void **state)
{
    (void)state;
    uint64_t a[4] = {0}, b[4] = {0}, c[4] = {0};
    uint64_t ha = stream_digest(7, 20000, a), hb = stream_digest(7, 20000, b);
    uint64_t hc = stream_digest(8, 20000, c);
    assert_true(ha == hb);
    assert_memory_equal(a, b, sizeof(a));
    assert_true(ha != hc);
    /* views dominate, some adds, fewer purchases, nothing else */
    assert_true(a[0] > a[1] && a[1] > a[2] && a[2] > 0);
    assert_int_equal(a[3], 0);
}

/* Runs `XS_BIN_DIR/xsell bench ARGS` (stderr dropped), asserts it exits 0,
 * and returns what it printed in out (one JSON object with --json). */
static void run_bench(const char *bin, const char *args, char *out, size_t size)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "%s/xsell bench %s 2>/dev/null", bin, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = 0;
    assert_int_equal(pclose(f), 0);
    assert_true(out[0] == '{' && strchr(out, '}'));
}

static void test_bench_core_json(void **state)
{
    (void)state;
    const char *bin = getenv("XS_BIN_DIR");
    if (!bin)
        skip();
    char out[8192];
    run_bench(bin, "core --json --events 20000 --users 2000 --items 500 --seed 3", out,
              sizeof(out));
    const char *fields[] = {"\"mode\":\"core\"",           "\"events\":20000",
                            "\"events_per_s\":",           "\"lists_per_s\":",
                            "\"rss_peak_bytes\":",         "\"user_bytes_encoded_avg\":",
                            "\"item_bytes_encoded_avg\":", "\"planted_recall_at5\":"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!strstr(out, fields[i]))
            fail_msg("missing %s in: %s", fields[i], out);
}

/* Runs `xsell bench core --json --digest` with extra arguments; returns the
 * digest (16 hex chars) in out. */
static void bench_digest(const char *bin, const char *extra, char out[17])
{
    char args[512], buf[8192];
    snprintf(args, sizeof(args),
             "core --json --digest --events 20000 --users 2000 --items 500 --seed 3 %s", extra);
    run_bench(bin, args, buf, sizeof(buf));
    const char *d = strstr(buf, "\"lists_digest\":\"");
    if (!d)
        fail_msg("no lists_digest in: %s", buf);
    d += strlen("\"lists_digest\":\"");
    assert_true(strlen(d) > 16 && d[16] == '"');
    memcpy(out, d, 16);
    out[16] = 0;
}

/* The digest is the lists': the same run gives the same digest, a setting
 * that changes the lists changes it. */
static void test_bench_digest(void **state)
{
    (void)state;
    const char *bin = getenv("XS_BIN_DIR");
    if (!bin)
        skip();
    char a[17], b[17], c[17];
    bench_digest(bin, "", a);
    bench_digest(bin, "", b);
    bench_digest(bin, "--set model.max_context=1", c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
}

/* Runs `xsell bench order` on the first 12,000 UCI events (the catalog's
 * 3,659 ItemUpdates and 8,341 cart events) with extra arguments; the
 * printed text in out. */
static bool bench_order(const char *extra, char *out, size_t size)
{
    const char *bin = getenv("XS_BIN_DIR"), *data = getenv("XS_DATA_DIR");
    if (!bin || !data)
        return false;
    char cmd[2048];
    snprintf(cmd, sizeof(cmd),
             "%s/xsell bench order --events 12000 %s --dataset online-retail "
             "%s/uci-online-retail/online_retail.csv.gz 2>&1",
             bin, extra, data);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, size - 1, f);
    out[n] = 0;
    if (pclose(f) != 0)
        fail_msg("%s: %s", cmd, out);
    return true;
}

/* The figures of line `what` (e.g. "A/B    stored lists") of the section
 * after `section` (NULL: the first): overlap, items, identical, the
 * overlap of the items whose summary is not full in A, and their number. */
static void order_line(const char *out, const char *section, const char *what, double *overlap,
                       int *items, int *identical, double *others, int *n_others)
{
    const char *p = section ? strstr(out, section) : out;
    assert_non_null(p);
    p = strstr(p, what);
    if (!p)
        fail_msg("no line '%s' in: %s", what, out);
    double full = 0;
    int n_full = 0;
    if (sscanf(strstr(p, "top-10 overlap"),
               "top-10 overlap %lf over %d items (identical in order: %d); full summaries %lf "
               "over %d, others %lf over %d",
               overlap, items, identical, &full, &n_full, others, n_others) != 7)
        fail_msg("cannot read '%s' in: %s", what, out);
}

/* `xsell bench order` on real data: in the exact reference mode the lists
 * of the engine that applies the item side per event and of the deferred
 * one (items.global's path) are identical, item by item; in the sketch
 * mode, once every list is ranked whole now, the items whose summaries
 * never filled (exact counts, the same in every engine) have identical top
 * 10s whatever the order of the input, and the stored lists before that
 * agree less (their similarities are from the moments they were scored). */
static void test_bench_order(void **state)
{
    (void)state;
    static char out[16384];
    if (!bench_order("--exact", out, sizeof(out)))
        skip();
    double o = 0, others = 0;
    int n = 0, same = 0, n_others = 0;
    order_line(out, NULL, "A/B    stored lists", &o, &n, &same, &others, &n_others);
    assert_true(n > 500);
    assert_int_equal(same, n);
    order_line(out, NULL, "A/B'   stored lists", &o, &n, &same, &others, &n_others);
    assert_int_equal(same, n);
    order_line(out, NULL, "A/A'   stored lists", &o, &n, &same, &others, &n_others);
    assert_int_equal(same, n);

    bench_order("", out, sizeof(out));
    const char *ranked = "every list ranked whole now";
    double before = 0;
    int n_before = 0;
    order_line(out, NULL, "A/B    stored lists", &before, &n_before, &same, &others, &n_others);
    assert_true(n_before > 500 && n_others > 100);
    print_message("A/B: stored lists %.4f over %d items\n", before, n_before);
    for (int k = 0; k < 4; k++) {
        const char *what[] = {"A/A'   stored lists", "A/B    stored lists", "A/B'   stored lists",
                              "B/B'   stored lists"};
        order_line(out, ranked, what[k], &o, &n, &same, &others, &n_others);
        print_message("%s ranked whole now: %.4f, summaries not full %.4f over %d\n", what[k], o,
                      others, n_others);
        assert_true(n_others > 100);
        assert_true(others == 1.0);
    }
    order_line(out, ranked, "A/B    stored lists", &o, &n, &same, &others, &n_others);
    assert_true(o > before);
}

/* The integer after `"key":` in the part of the JSON object that follows
 * `after` (a field name that opens a sub-object), or -1. */
static long long json_int(const char *json, const char *after, const char *key)
{
    const char *p = strstr(json, after);
    char k[128];
    snprintf(k, sizeof(k), "\"%s\":", key);
    p = p ? strstr(p, k) : NULL;
    return p ? strtoll(p + strlen(k), NULL, 10) : -1;
}

/* A small e2e run on the development broker: every event goes through the
 * passthrough (its two input topics) and is measured; the worker's lists
 * arrive and are measured; both phases report. No timing is asserted. */
static void test_bench_e2e_json(void **state)
{
    (void)state;
    const char *bin = getenv("XS_BIN_DIR");
    if (!bin)
        skip();
    char out[8192];
    run_bench(bin,
              "e2e --json --e2e-events 3000 --rate 2000 --rate-seconds 1 --partitions 2 "
              "--users 2000 --items 500",
              out, sizeof(out));
    /* the passthrough: all 3,000 (clicks and carts) delivered and measured */
    assert_int_equal(json_int(out, "\"passthrough\"", "delivered"), 3000);
    assert_int_equal(json_int(out, "\"passthrough\"", "n"), 3000);
    assert_int_equal(json_int(out, "\"latency_ms_at_fixed_rate\"", "n"), 2000);
    /* xsell: every event processed, lists for most, each list measured */
    assert_int_equal(json_int(out, "\"xsell_max_rate\"", "events"), 3000);
    long long lists = json_int(out, "\"xsell_max_rate\"", "lists");
    assert_true(lists > 1500 && lists <= 3000);
    assert_int_equal(json_int(out, "\"xsell_max_rate\"", "n"), lists);
    long long fixed = json_int(out, "\"xsell_fixed_rate\"", "lists");
    assert_true(fixed > 1000 && fixed <= 2000);
    assert_int_equal(json_int(out, "\"xsell_fixed_rate\"", "n"), fixed);
    const char *fields[] = {"\"ratio_vs_passthrough\":", "\"p99\":", "\"rss_peak_bytes\":"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (!strstr(out, fields[i]))
            fail_msg("missing %s in: %s", fields[i], out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synth_deterministic), cmocka_unit_test(test_bench_core_json),
        cmocka_unit_test(test_bench_digest),        cmocka_unit_test(test_bench_e2e_json),
        cmocka_unit_test(test_bench_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
