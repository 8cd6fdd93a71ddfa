/*
 * test_members.c — the membership record (include/xsell/members.h) and the
 * partition of a user id (xs_producer_partition), against reference
 * computations: CRC32 (Python's zlib.crc32) for consistent_random, Kafka's
 * Java murmur2 for murmur2_random, each modulo the partition count; and
 * the ownership rule of the membership table.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "xsell/kafka.h"
#include "xsell/members.h"

static const struct {
    const char *key;
    int32_t crc32_mod[3];   /* %2, %3, %12 of zlib.crc32(key) */
    int32_t murmur2_mod[3]; /* %2, %3, %12 of Java's murmur2(key) & 0x7fffffff */
} refs[] = {
    {"basket-39", {1, 0, 3}, {0, 1, 4}},    {"basket-40", {0, 2, 8}, {0, 0, 6}},
    {"u-7", {1, 1, 1}, {1, 0, 3}},          {"17850", {1, 0, 9}, {1, 1, 7}},
    {"session:s-9", {1, 2, 11}, {0, 2, 8}},
};

static void test_partition(void **state)
{
    (void)state;
    static const int32_t cnt[3] = {2, 3, 12};
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        size_t len = strlen(refs[i].key);
        for (int c = 0; c < 3; c++) {
            assert_int_equal(xs_producer_partition("consistent_random", refs[i].key, len, cnt[c]),
                             refs[i].crc32_mod[c]);
            assert_int_equal(xs_producer_partition("consistent", refs[i].key, len, cnt[c]),
                             refs[i].crc32_mod[c]);
            assert_int_equal(xs_producer_partition("murmur2_random", refs[i].key, len, cnt[c]),
                             refs[i].murmur2_mod[c]);
        }
    }
    assert_int_equal(xs_producer_partition("nosuch", "u-7", 3, 2), -1);
    assert_int_equal(xs_producer_partition("consistent_random", "", 0, 2), -1);
    assert_int_equal(xs_producer_partition("consistent_random", "u-7", 3, 0), -1);
}

static void test_record_round_trip(void **state)
{
    (void)state;
    const int32_t parts[] = {0, 3, 11};
    xs_buf_t b = {0};
    char url[256];
    uint64_t gen = 0;
    int64_t at = 0;
    int32_t *got = NULL;
    size_t n = 0;
    assert_int_equal(xs_members_encode(&b, "http://10.0.0.7:8080", 4, 1765130000123, parts, 3),
                     XS_OK);
    assert_int_equal(xs_members_decode(b.data, b.len, url, sizeof(url), &gen, &at, &got, &n),
                     XS_OK);
    assert_string_equal(url, "http://10.0.0.7:8080");
    assert_int_equal(gen, 4);
    assert_int_equal(at, 1765130000123);
    assert_int_equal(n, 3);
    assert_memory_equal(got, parts, sizeof(parts));
    free(got);
    /* no partitions */
    xs_buf_reset(&b);
    assert_int_equal(xs_members_encode(&b, "http://h:1", 1, 5, NULL, 0), XS_OK);
    assert_int_equal(xs_members_decode(b.data, b.len, url, sizeof(url), &gen, &at, &got, &n),
                     XS_OK);
    assert_int_equal(n, 0);
    assert_null(got);
    xs_buf_free(&b);
}

static void test_record_rejects(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        xs_err_t want;
    } cases[] = {
        {"xsell.members 2\nurl http://h:1\ngeneration 1\nassigned_at 5\npartitions 0\n",
         XS_ERR_VERSION},
        {"other 1\nurl http://h:1\ngeneration 1\nassigned_at 5\npartitions 0\n", XS_ERR_DECODE},
        {"xsell.members 1\nurl \ngeneration 1\nassigned_at 5\npartitions 0\n", XS_ERR_DECODE},
        {"xsell.members 1\nurl http://h:1\ngeneration x\nassigned_at 5\npartitions 0\n",
         XS_ERR_DECODE},
        {"xsell.members 1\nurl http://h:1\ngeneration 1\nassigned_at 5\npartitions 0 -1\n",
         XS_ERR_DECODE},
        {"xsell.members 1\nurl http://h:1\ngeneration 1\nassigned_at 5\npartitions 0  1\n",
         XS_ERR_DECODE},
        {"xsell.members 1\nurl http://h:1\ngeneration 1\nassigned_at 5\npartitions 99999\n",
         XS_ERR_DECODE},
        {"xsell.members 1\nurl http://h:1\ngeneration 1\nassigned_at 5\n", XS_ERR_DECODE},
        {"xsell.members 1\nurl http://h:1\ngeneration 1\nassigned_at 5\npartitions 1",
         XS_ERR_DECODE},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char url[256];
        uint64_t gen;
        int64_t at;
        int32_t *got = NULL;
        size_t n = 0;
        xs_err_t err = xs_members_decode(cases[i].text, strlen(cases[i].text), url, sizeof(url),
                                         &gen, &at, &got, &n);
        if (err != cases[i].want)
            print_error("case %zu: %d, want %d\n", i, (int)err, (int)cases[i].want);
        assert_int_equal(err, cases[i].want);
        assert_null(got);
    }
}

/* Applies the record of url (generation, assigned_at, partitions). */
static void put(xs_members_table_t *t, const char *url, uint64_t gen, int64_t at,
                const int32_t *parts, size_t n)
{
    xs_buf_t b = {0};
    assert_int_equal(xs_members_encode(&b, url, gen, at, parts, n), XS_OK);
    assert_int_equal(xs_members_table_apply(t, url, strlen(url), b.data, b.len), XS_OK);
    xs_buf_free(&b);
}

static const char *owner(const xs_members_table_t *t, int32_t p, const char *self)
{
    static char url[256];
    return xs_members_table_owner(t, p, self, url, sizeof(url)) ? url : NULL;
}

/* The ownership rule: a stale claim (a dead instance's, no tombstone) never
 * wins over a newer one, whichever arrives first. */
static void test_owner_rule(void **state)
{
    (void)state;
    const int32_t p0[] = {0}, p01[] = {0, 1}, p1[] = {1};
    xs_members_table_t *t = xs_members_table_new();
    assert_non_null(t);
    assert_null(owner(t, 0, NULL));
    /* B owned 0 and 1, then died; A was given 0 later: A's claim wins */
    put(t, "http://b:1", 3, 1000, p01, 2);
    assert_string_equal(owner(t, 0, NULL), "http://b:1");
    put(t, "http://a:1", 1, 2000, p0, 1);
    assert_string_equal(owner(t, 0, NULL), "http://a:1");
    assert_string_equal(owner(t, 1, NULL), "http://b:1"); /* nobody newer claims 1 */
    /* the same records in the other order */
    xs_members_table_t *u = xs_members_table_new();
    put(u, "http://a:1", 1, 2000, p0, 1);
    put(u, "http://b:1", 3, 1000, p01, 2);
    assert_string_equal(owner(u, 0, NULL), "http://a:1");
    /* B comes back and claims 1 only: its new record replaces its old one */
    put(t, "http://b:1", 4, 3000, p1, 1);
    assert_string_equal(owner(t, 0, NULL), "http://a:1");
    assert_string_equal(owner(t, 1, NULL), "http://b:1");
    assert_int_equal(xs_members_table_size(t), 2);
    /* equal times: the higher generation, then the greater URL */
    put(t, "http://c:1", 9, 3000, p1, 1);
    assert_string_equal(owner(t, 1, NULL), "http://c:1");
    put(t, "http://d:1", 4, 3000, p1, 1);
    assert_string_equal(owner(t, 1, NULL), "http://c:1");
    /* a tombstone removes the instance; its partitions fall to older claims */
    assert_int_equal(xs_members_table_apply(t, "http://c:1", 10, NULL, 0), XS_OK);
    assert_string_equal(owner(t, 1, NULL), "http://d:1");
    /* this instance is never its own owner */
    assert_null(owner(t, 0, "http://a:1"));
    /* a record whose url is not its key, or that does not decode: no change */
    xs_buf_t b = {0};
    assert_int_equal(xs_members_encode(&b, "http://e:1", 1, 9000, p0, 1), XS_OK);
    assert_int_equal(xs_members_table_apply(t, "http://x:1", 10, b.data, b.len), XS_ERR_INVALID);
    assert_int_equal(xs_members_table_apply(t, "http://e:1", 10, "junk", 4), XS_ERR_DECODE);
    assert_int_equal(xs_members_table_apply(t, NULL, 0, b.data, b.len), XS_ERR_INVALID);
    assert_string_equal(owner(t, 0, NULL), "http://a:1");
    xs_buf_free(&b);
    xs_members_table_destroy(u);
    xs_members_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_partition),
        cmocka_unit_test(test_record_round_trip),
        cmocka_unit_test(test_record_rejects),
        cmocka_unit_test(test_owner_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
