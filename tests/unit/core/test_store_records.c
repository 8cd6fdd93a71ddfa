/*
 * The names and globals records (store_records.h): the one codec the engine
 * stores them with and `xsell inspect` reads them with. Round trips, the
 * older versions the store may still hold, and what is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "xsell/store_records.h"

static void test_name_round_trip(void **state)
{
    (void)state;
    xs_name_rec_t in = {.id = "85123A",
                        .title = "WHITE HANGING HEART T-LIGHT HOLDER",
                        .family = 0x1234567890abcdefULL,
                        .price = 2.55,
                        .has_price = true,
                        .available_until = 1700000000000,
                        .has_until = true};
    xs_buf_t b = {0};
    assert_int_equal(xs_store_records_name_encode(&in, &b), XS_OK);
    assert_int_equal(b.data[0], 'N');
    assert_int_equal(b.data[1], XS_NAME_VERSION);
    xs_name_rec_t out = {0};
    char errstr[128];
    assert_int_equal(xs_store_records_name_decode(&out, b.data, b.len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_string_equal(out.id, in.id);
    assert_string_equal(out.title, in.title);
    assert_true(out.family == in.family);
    assert_true(out.has_price && out.price == 2.55);
    assert_false(out.has_from);
    assert_true(out.has_until && out.available_until == 1700000000000);
    xs_store_records_name_rec_clear(&out);

    /* No title, nothing flagged: the shortest version 3 record. */
    xs_name_rec_t bare = {.id = "u1"};
    xs_buf_reset(&b);
    assert_int_equal(xs_store_records_name_encode(&bare, &b), XS_OK);
    assert_int_equal(b.len, 2 + 1 + 2 + 1 + 8 + 1);
    assert_int_equal(xs_store_records_name_decode(&out, b.data, b.len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_string_equal(out.id, "u1");
    assert_null(out.title);
    xs_store_records_name_rec_clear(&out);

    /* Every shorter prefix and one trailing byte are refused, and leave nothing owned. */
    xs_buf_reset(&b);
    assert_int_equal(xs_store_records_name_encode(&in, &b), XS_OK);
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(xs_store_records_name_decode(&out, b.data, n, errstr, sizeof(errstr)),
                         XS_ERR_DECODE);
        assert_null(out.id);
        assert_null(out.title);
    }
    xs_buf_append_u8(&b, 0);
    assert_int_equal(xs_store_records_name_decode(&out, b.data, b.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "trailing"));
    xs_buf_free(&b);
}

static void test_name_versions(void **state)
{
    (void)state;
    char errstr[128];
    xs_name_rec_t out = {0};
    /* Version 1: id and title only (family 0). */
    const uint8_t v1[] = {'N', 1, 2, 'i', '1', 3, 'T', 'i', 't'};
    assert_int_equal(xs_store_records_name_decode(&out, v1, sizeof(v1), errstr, sizeof(errstr)),
                     XS_OK);
    assert_string_equal(out.id, "i1");
    assert_string_equal(out.title, "Tit");
    assert_true(out.family == 0 && !out.has_price);
    xs_store_records_name_rec_clear(&out);
    /* A newer version is named as such; version 0 never existed. */
    const uint8_t v4[] = {'N', 4, 2, 'i', '1', 0};
    assert_int_equal(xs_store_records_name_decode(&out, v4, sizeof(v4), errstr, sizeof(errstr)),
                     XS_ERR_VERSION);
    assert_non_null(strstr(errstr, "version 4 is newer"));
    const uint8_t v0[] = {'N', 0, 2, 'i', '1', 0};
    assert_int_equal(xs_store_records_name_decode(&out, v0, sizeof(v0), errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    /* Unknown flags. */
    const uint8_t flags[] = {'N', 3, 1, 'i', 0, 0, 0, 0, 0, 0, 0, 0, 0, 8};
    assert_int_equal(
        xs_store_records_name_decode(&out, flags, sizeof(flags), errstr, sizeof(errstr)),
        XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "flags"));
}

static void test_globals_round_trip(void **state)
{
    (void)state;
    static xs_globals_t in, out;
    memset(&in, 0, sizeof(in));
    in.users_total = 4372;
    in.users_bought = 4339;
    in.pairs_total[0] = 1u << 30;
    in.pairs_total[1] = 7;
    in.trend_ref = -5;
    in.n_trend = XS_GLOBALS_TREND_CAP;
    for (int i = 0; i < in.n_trend; i++) {
        in.trend_item[i] = 0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1);
        in.trend_weight[i] = 1.0 / (i + 1);
    }
    xs_buf_t b = {0};
    char errstr[128];
    assert_int_equal(xs_store_records_globals_encode(&in, &b), XS_OK);
    assert_int_equal(xs_store_records_globals_decode(&out, b.data, b.len, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(out.version, XS_GLOBALS_VERSION);
    out.version = 0;
    assert_memory_equal(&in, &out, sizeof(in));

    /* Version 1 had no pair totals: it decodes, and says it is version 1. */
    b.data[1] = 1;
    assert_int_equal(
        xs_store_records_globals_decode(&out, b.data, b.len - 2 * 5 + 1, errstr, sizeof(errstr)),
        XS_ERR_DECODE); /* a cut in the middle */
    xs_buf_t old = {0};
    xs_globals_t one = {.users_total = 3, .users_bought = 2, .n_trend = 0};
    assert_int_equal(xs_store_records_globals_encode(&one, &old), XS_OK);
    old.data[1] = 1;
    old.len -= 2; /* two one-byte varints of zero pair totals */
    assert_int_equal(
        xs_store_records_globals_decode(&out, old.data, old.len, errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(out.version, 1);
    assert_true(out.users_total == 3 && out.pairs_total[0] == 0);

    /* Newer, too many trending entries, trailing bytes. */
    old.data[1] = XS_GLOBALS_VERSION + 1;
    assert_int_equal(
        xs_store_records_globals_decode(&out, old.data, old.len, errstr, sizeof(errstr)),
        XS_ERR_VERSION);
    b.data[1] = XS_GLOBALS_VERSION;
    xs_buf_append_u8(&b, 0);
    assert_int_equal(xs_store_records_globals_decode(&out, b.data, b.len, errstr, sizeof(errstr)),
                     XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "trailing"));
    xs_buf_free(&b);
    xs_buf_free(&old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_round_trip),
        cmocka_unit_test(test_name_versions),
        cmocka_unit_test(test_globals_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
