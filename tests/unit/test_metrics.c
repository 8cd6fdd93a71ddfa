/*
 * Metrics registry (exact text format 0.0.4 output, escaping, value
 * formatting, the series bound) and the list attribution map (ring
 * eviction of the oldest list, replays, malformed ids).
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

#include "xsell/metrics.h"

static char *render(xs_metrics_t *m)
{
    xs_buf_t b = {0};
    assert_int_equal(xs_metrics_render(m, &b), XS_OK);
    assert_int_equal(xs_buf_append_u8(&b, 0), XS_OK);
    return (char *)b.data;
}

static void test_render_exact(void **state)
{
    (void)state;
    xs_metrics_t *m = xs_metrics_new(0);
    assert_non_null(m);
    int ev = xs_metrics_define(m, "xsell_events_total", XS_METRIC_COUNTER, "Events.", "topic,type");
    int lag = xs_metrics_define(m, "xsell_lag", XS_METRIC_GAUGE, "Lag with \\ and\nnewline.", NULL);
    assert_true(ev >= 0 && lag >= 0);
    xs_metrics_add(m, ev, (const char *[]){"t1", "ADD"}, 1);
    xs_metrics_add(m, ev, (const char *[]){"t1", "ADD"}, 2);
    xs_metrics_add(m, ev, (const char *[]){"t\"2", "a\\b\nc"}, 1);
    xs_metrics_set(m, lag, NULL, -1);
    assert_true(xs_metrics_get(m, ev, (const char *[]){"t1", "ADD"}) == 3);
    assert_true(xs_metrics_get(m, ev, (const char *[]){"t1", "REMOVE"}) == 0);
    char *text = render(m);
    assert_string_equal(text, "# HELP xsell_metrics_overflow_total Label tuples folded into an "
                              "_overflow series (series limit reached).\n"
                              "# TYPE xsell_metrics_overflow_total counter\n"
                              "xsell_metrics_overflow_total 0\n"
                              "# HELP xsell_events_total Events.\n"
                              "# TYPE xsell_events_total counter\n"
                              "xsell_events_total{topic=\"t1\",type=\"ADD\"} 3\n"
                              "xsell_events_total{topic=\"t\\\"2\",type=\"a\\\\b\\nc\"} 1\n"
                              "# HELP xsell_lag Lag with \\\\ and\\nnewline.\n"
                              "# TYPE xsell_lag gauge\n"
                              "xsell_lag -1\n");
    free(text);
    xs_metrics_destroy(m);
}

static void test_values_and_definitions(void **state)
{
    (void)state;
    xs_metrics_t *m = xs_metrics_new(0);
    int g = xs_metrics_define(m, "g", XS_METRIC_GAUGE, "", "k");
    assert_int_equal(xs_metrics_define(m, "g", XS_METRIC_GAUGE, "", NULL), -1); /* duplicate */
    assert_int_equal(xs_metrics_define(m, "9bad", XS_METRIC_GAUGE, "", NULL), -1);
    assert_int_equal(xs_metrics_define(m, "bad-name", XS_METRIC_GAUGE, "", NULL), -1);
    assert_int_equal(xs_metrics_define(m, "ok", XS_METRIC_GAUGE, "", "a,b-c"), -1);
    assert_int_equal(xs_metrics_define(m, "ok2", XS_METRIC_GAUGE, "", "a,b,c,d,e,f,g"), -1);
    xs_metrics_set(m, g, (const char *[]){"half"}, 0.5);
    xs_metrics_set(m, g, (const char *[]){"inf"}, INFINITY);
    xs_metrics_set(m, g, (const char *[]){"ninf"}, -INFINITY);
    xs_metrics_set(m, g, (const char *[]){"nan"}, NAN);
    xs_metrics_set(m, g, (const char *[]){"big"}, 1e20);
    xs_metrics_set(m, g, (const char *[]){"tenth"}, 0.1);
    xs_metrics_add(m, 99, NULL, 1); /* invalid ids are ignored */
    char *text = render(m);
    assert_non_null(strstr(text, "g{k=\"half\"} 0.5\n"));
    assert_non_null(strstr(text, "g{k=\"inf\"} +Inf\n"));
    assert_non_null(strstr(text, "g{k=\"ninf\"} -Inf\n"));
    assert_non_null(strstr(text, "g{k=\"nan\"} NaN\n"));
    assert_non_null(strstr(text, "g{k=\"big\"} 1e+20\n"));
    assert_non_null(strstr(text, "g{k=\"tenth\"} 0.1\n"));
    assert_non_null(strstr(text, "# HELP g \n# TYPE g gauge\n"));
    free(text);
    xs_metrics_destroy(m);
}

/* Label tuples beyond max_series fold into one _overflow series. */
static void test_series_bound(void **state)
{
    (void)state;
    xs_metrics_t *m = xs_metrics_new(3);
    int c = xs_metrics_define(m, "c_total", XS_METRIC_COUNTER, "h", "id");
    char id[16];
    for (int i = 0; i < 100; i++) {
        snprintf(id, sizeof(id), "u%d", i);
        xs_metrics_add(m, c, (const char *[]){id}, 1);
    }
    assert_true(xs_metrics_get(m, c, (const char *[]){"u0"}) == 1);
    assert_true(xs_metrics_get(m, c, (const char *[]){"u2"}) == 1);
    assert_true(xs_metrics_get(m, c, (const char *[]){"u3"}) == 0);
    assert_true(xs_metrics_get(m, c, (const char *[]){"_overflow"}) == 97);
    char *text = render(m);
    assert_non_null(strstr(text, "xsell_metrics_overflow_total 97\n"));
    assert_null(strstr(text, "u50"));
    free(text);
    xs_metrics_destroy(m);
}

static void list_id(char out[33], unsigned i)
{
    snprintf(out, 33, "%016x%016x", i * 2654435761u + 1, i);
}

static void test_listmap_ring(void **state)
{
    (void)state;
    char id[33];
    xs_metrics_listmap_t *lm = xs_metrics_listmap_new(4);
    assert_non_null(lm);
    for (unsigned i = 0; i < 4; i++) {
        list_id(id, i);
        assert_int_equal(xs_metrics_listmap_put(lm, id, i % 2 ? "B" : NULL), XS_OK);
    }
    list_id(id, 0);
    assert_string_equal(xs_metrics_listmap_get(lm, id), "none");
    list_id(id, 1);
    assert_string_equal(xs_metrics_listmap_get(lm, id), "B");
    /* Republishing a remembered list (replay) does not take a new slot. */
    assert_int_equal(xs_metrics_listmap_put(lm, id, "B"), XS_OK);
    assert_int_equal(xs_metrics_listmap_len(lm), 4);
    /* A fifth list forgets the oldest (0), and only it. */
    list_id(id, 4);
    assert_int_equal(xs_metrics_listmap_put(lm, id, "A"), XS_OK);
    assert_int_equal(xs_metrics_listmap_len(lm), 4);
    assert_string_equal(xs_metrics_listmap_get(lm, id), "A");
    list_id(id, 0);
    assert_null(xs_metrics_listmap_get(lm, id));
    for (unsigned i = 1; i < 4; i++) {
        list_id(id, i);
        assert_non_null(xs_metrics_listmap_get(lm, id));
    }
    /* Many more: only the last four stay. */
    for (unsigned i = 5; i < 1000; i++) {
        list_id(id, i);
        assert_int_equal(xs_metrics_listmap_put(lm, id, "A"), XS_OK);
    }
    list_id(id, 995);
    assert_null(xs_metrics_listmap_get(lm, id));
    list_id(id, 996);
    assert_string_equal(xs_metrics_listmap_get(lm, id), "A");
    /* Malformed ids are neither stored nor found. */
    assert_int_equal(xs_metrics_listmap_put(lm, "not-a-list-id", "A"), XS_ERR_INVALID);
    assert_int_equal(xs_metrics_listmap_put(lm, "0123456789abcdef0123456789abcdeg", "A"),
                     XS_ERR_INVALID);
    assert_null(xs_metrics_listmap_get(lm, "not-a-list-id"));
    assert_null(xs_metrics_listmap_get(lm, NULL));
    xs_metrics_listmap_destroy(lm);
    xs_metrics_listmap_destroy(NULL);
}

/* Histograms: exact rendering (cumulative buckets, +Inf, _sum, _count, le
 * after the other labels), a series touched at zero, bad bounds refused,
 * add/set ignored on a histogram, a removed series gone. */
static void test_histogram(void **state)
{
    (void)state;
    xs_metrics_t *m = xs_metrics_new(0);
    assert_non_null(m);
    const double b[] = {0.001, 0.5, 2};
    int h = xs_metrics_define_histogram(m, "lat_seconds", "Latency.", "route", b, 3);
    int h0 = xs_metrics_define_histogram(m, "cp_seconds", "Checkpoints.", NULL, b, 3);
    assert_true(h >= 0 && h0 >= 0);
    assert_int_equal(xs_metrics_define_histogram(m, "bad1", "", NULL, (double[]){1, 1}, 2), -1);
    assert_int_equal(xs_metrics_define_histogram(m, "bad2", "", NULL, (double[]){2, 1}, 2), -1);
    assert_int_equal(xs_metrics_define_histogram(m, "bad3", "", NULL, (double[]){INFINITY}, 1), -1);
    assert_int_equal(xs_metrics_define_histogram(m, "bad4", "", NULL, b, 0), -1);
    assert_int_equal(xs_metrics_define(m, "bad5", XS_METRIC_HISTOGRAM, "", NULL), -1);
    xs_metrics_touch(m, h, (const char *[]){"/b"});
    xs_metrics_observe(m, h, (const char *[]){"/a"}, 0.0005);
    xs_metrics_observe(m, h, (const char *[]){"/a"}, 0.001); /* le is inclusive */
    xs_metrics_observe(m, h, (const char *[]){"/a"}, 0.25);
    xs_metrics_observe(m, h, (const char *[]){"/a"}, 7);
    xs_metrics_observe(m, h, (const char *[]){"/a"}, NAN); /* ignored */
    xs_metrics_add(m, h, (const char *[]){"/a"}, 100);     /* ignored */
    xs_metrics_set(m, h, (const char *[]){"/a"}, 100);     /* ignored */
    xs_metrics_observe(m, h0, NULL, 1);
    xs_metrics_touch(m, h, (const char *[]){"/gone"});
    xs_metrics_remove(m, h, (const char *[]){"/gone"});
    char *text = render(m);
    const char *want = "# HELP lat_seconds Latency.\n"
                       "# TYPE lat_seconds histogram\n"
                       "lat_seconds_bucket{route=\"/b\",le=\"0.001\"} 0\n"
                       "lat_seconds_bucket{route=\"/b\",le=\"0.5\"} 0\n"
                       "lat_seconds_bucket{route=\"/b\",le=\"2\"} 0\n"
                       "lat_seconds_bucket{route=\"/b\",le=\"+Inf\"} 0\n"
                       "lat_seconds_sum{route=\"/b\"} 0\n"
                       "lat_seconds_count{route=\"/b\"} 0\n"
                       "lat_seconds_bucket{route=\"/a\",le=\"0.001\"} 2\n"
                       "lat_seconds_bucket{route=\"/a\",le=\"0.5\"} 3\n"
                       "lat_seconds_bucket{route=\"/a\",le=\"2\"} 3\n"
                       "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"
                       "lat_seconds_sum{route=\"/a\"} 7.2515\n"
                       "lat_seconds_count{route=\"/a\"} 4\n"
                       "# HELP cp_seconds Checkpoints.\n"
                       "# TYPE cp_seconds histogram\n"
                       "cp_seconds_bucket{le=\"0.001\"} 0\n"
                       "cp_seconds_bucket{le=\"0.5\"} 0\n"
                       "cp_seconds_bucket{le=\"2\"} 1\n"
                       "cp_seconds_bucket{le=\"+Inf\"} 1\n"
                       "cp_seconds_sum 1\n"
                       "cp_seconds_count 1\n";
    assert_non_null(strstr(text, want));
    assert_null(strstr(text, "/gone"));
    free(text);
    xs_metrics_destroy(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact), cmocka_unit_test(test_values_and_definitions),
        cmocka_unit_test(test_series_bound), cmocka_unit_test(test_listmap_ring),
        cmocka_unit_test(test_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
