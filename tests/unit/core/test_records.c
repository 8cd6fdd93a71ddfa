/*
 * The records that cross a stage boundary (include/xsell/records.h,
 * docs/RECORDS.md): round trips at the edges (empty lists, the largest
 * counts, the longest ids, UTF-8 titles), the documented byte layout, and
 * the decoders' errors: every truncation, a newer version (the message names
 * both), trailing bytes, each limit, each field rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xsell/hash.h"
#include "xsell/records.h"

#define T0 INT64_C(1704067200000) /* 2024-01-01T00:00:00Z */

static char errstr[512];

/* A string of n bytes: "é" repeated (2 bytes each), then 'x' when n is odd. */
static char *long_id(size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    size_t i = 0;
    for (; i + 2 <= n; i += 2)
        memcpy(s + i, "\xc3\xa9", 2);
    if (i < n)
        s[i++] = 'x';
    s[i] = 0;
    return s;
}

static void add(xs_delta_batch_t *b, xs_delta_t d)
{
    assert_int_equal(xs_delta_batch_add(b, &d, errstr, sizeof(errstr)), XS_OK);
}

/* A batch with every kind of entry and the widest values. */
static void full_batch(xs_delta_batch_t *b)
{
    b->partition = UINT16_MAX;
    b->seq = UINT64_MAX;
    b->part = 6;
    b->n_parts = 7;
    b->ts = INT64_MAX;
    b->users_total_delta = INT64_MIN;
    b->users_bought_delta = INT64_MAX;
    uint64_t cam = xs_hash_str("camera"), lens = xs_hash_str("lens"), photo = xs_hash_str("photo");
    assert_int_equal(xs_delta_batch_add_id(b, "camera", errstr, sizeof(errstr)), XS_OK);
    assert_int_equal(xs_delta_batch_add_id(b, "Objektiv \xe2\x80\x94 50 mm \xf0\x9f\x93\xb7",
                                           errstr, sizeof(errstr)),
                     XS_OK);
    char *big = long_id(XS_RECORDS_ID_MAX);
    assert_int_equal(xs_delta_batch_add_id(b, big, errstr, sizeof(errstr)), XS_OK);
    free(big);
    add(b, (xs_delta_t){
               .kind = XS_DELTA_PAIR, .cls = 0, .a = cam, .b = lens, .count = 1, .last_ts = T0});
    add(b, (xs_delta_t){.kind = XS_DELTA_PAIR,
                        .cls = 1,
                        .a = UINT64_MAX,
                        .b = 1,
                        .count = UINT32_MAX,
                        .last_ts = INT64_MIN});
    add(b,
        (xs_delta_t){.kind = XS_DELTA_USERS, .cls = 1, .a = cam, .count = 3, .last_ts = INT64_MAX});
    add(b, (xs_delta_t){.kind = XS_DELTA_CATEGORY, .a = lens, .b = photo, .last_ts = -1});
    add(b, (xs_delta_t){.kind = XS_DELTA_TREND, .a = cam, .weight = 1.75, .last_ts = 0});
    add(b, (xs_delta_t){.kind = XS_DELTA_TREND, .a = lens, .weight = 0x1p-1000, .last_ts = T0});
}

static void full_list(xs_neighbour_list_t *l, int n)
{
    l->item = xs_hash_str("camera");
    l->id = strdup("camera");
    l->ts = T0;
    l->category = xs_hash_str("photo");
    for (int c = 0; c < 2; c++) {
        l->cls[c].n_users = c ? UINT32_MAX : 7;
        l->cls[c].pair_total = c ? UINT64_MAX : 123;
        l->cls[c].table = c ? UINT64_MAX : 4567;
        for (int k = 0; k < n; k++) {
            char id[32];
            snprintf(id, sizeof(id), "n%d-%d", c, k);
            float sim = c ? 1e30f / (float)(k + 1) : (float)(n - k) * 0.25f;
            assert_int_equal(xs_neighbour_list_add(l, c, xs_hash_str(id), k % 3 ? id : NULL, sim,
                                                   k ? (uint32_t)k : UINT32_MAX, errstr,
                                                   sizeof(errstr)),
                             XS_OK);
        }
    }
}

static void full_entry(xs_catalog_entry_t *e)
{
    e->id = strdup("camera-\xe6\x97\xa5\xe6\x9c\xac");
    e->title = strdup("Kamera \xc3\x9c"
                      "ber \xe2\x80\x9cX100\xe2\x80\x9d \xf0\x9f\x93\xb7");
    e->category = strdup("photo");
    e->family = strdup("x100");
    e->ts = T0;
    e->in_stock = true;
    e->repurchasable = true;
    e->has_price = e->has_from = e->has_until = true;
    e->price = 499.99;
    e->available_from = INT64_MIN;
    e->available_until = INT64_MAX;
}

/* Encodes x, decodes it into y, checks equality and that y encodes to the
 * same bytes; leaves the encoding in out. */
#define ROUND_TRIP(type, x, out)                                                                   \
    do {                                                                                           \
        type y_ = {0};                                                                             \
        xs_buf_t again_ = {0};                                                                     \
        assert_int_equal(type##_encode_(x, out), XS_OK);                                           \
        assert_int_equal(type##_decode_(&y_, (out)->data, (out)->len), XS_OK);                     \
        assert_true(type##_equal_(x, &y_));                                                        \
        assert_int_equal(type##_encode_(&y_, &again_), XS_OK);                                     \
        assert_int_equal(again_.len, (out)->len);                                                  \
        assert_memory_equal(again_.data, (out)->data, (out)->len);                                 \
        type##_clear_(&y_);                                                                        \
        xs_buf_free(&again_);                                                                      \
    } while (0)

/* Adapters with one signature per record, for the macros and loops. */
typedef xs_delta_batch_t batch_t;
typedef xs_neighbour_list_t list_t;
typedef xs_catalog_entry_t entry_t;
static xs_err_t batch_t_encode_(const batch_t *x, xs_buf_t *o)
{
    return xs_delta_batch_encode(x, o, errstr, sizeof(errstr));
}
static xs_err_t batch_t_decode_(batch_t *x, const void *p, size_t n)
{
    return xs_delta_batch_decode(x, p, n, errstr, sizeof(errstr));
}
static bool batch_t_equal_(const batch_t *x, const batch_t *y)
{
    return xs_delta_batch_equal(x, y);
}
static void batch_t_clear_(batch_t *x)
{
    xs_delta_batch_clear(x);
}
static xs_err_t list_t_encode_(const list_t *x, xs_buf_t *o)
{
    return xs_neighbour_list_encode(x, o, errstr, sizeof(errstr));
}
static xs_err_t list_t_decode_(list_t *x, const void *p, size_t n)
{
    return xs_neighbour_list_decode(x, p, n, errstr, sizeof(errstr));
}
static bool list_t_equal_(const list_t *x, const list_t *y)
{
    return xs_neighbour_list_equal(x, y);
}
static void list_t_clear_(list_t *x)
{
    xs_neighbour_list_clear(x);
}
static xs_err_t entry_t_encode_(const entry_t *x, xs_buf_t *o)
{
    return xs_catalog_entry_encode(x, o, errstr, sizeof(errstr));
}
static xs_err_t entry_t_decode_(entry_t *x, const void *p, size_t n)
{
    return xs_catalog_entry_decode(x, p, n, errstr, sizeof(errstr));
}
static bool entry_t_equal_(const entry_t *x, const entry_t *y)
{
    return xs_catalog_entry_equal(x, y);
}
static void entry_t_clear_(entry_t *x)
{
    xs_catalog_entry_clear(x);
}

/* Decodes bytes with the decoder of record r (0 batch, 1 list, 2 entry);
 * checks that a failure leaves the output empty and says why. */
static xs_err_t decode_any(int r, const void *p, size_t n)
{
    xs_err_t err;
    errstr[0] = 0;
    if (r == 0) {
        batch_t b = {0}, zero = {0};
        err = batch_t_decode_(&b, p, n);
        if (err)
            assert_memory_equal(&b, &zero, sizeof(b));
        xs_delta_batch_clear(&b);
    } else if (r == 1) {
        list_t l = {0}, zero = {0};
        err = list_t_decode_(&l, p, n);
        if (err)
            assert_memory_equal(&l, &zero, sizeof(l));
        xs_neighbour_list_clear(&l);
    } else {
        entry_t e = {0}, zero = {0};
        err = entry_t_decode_(&e, p, n);
        if (err)
            assert_memory_equal(&e, &zero, sizeof(e));
        xs_catalog_entry_clear(&e);
    }
    if (err)
        assert_true(errstr[0] != 0);
    return err;
}

/* One sample encoding of each record (freed by the caller). */
static void samples(xs_buf_t out[3])
{
    batch_t b = {0};
    list_t l = {0};
    entry_t e = {0};
    full_batch(&b);
    full_list(&l, 5);
    full_entry(&e);
    assert_int_equal(batch_t_encode_(&b, &out[0]), XS_OK);
    assert_int_equal(list_t_encode_(&l, &out[1]), XS_OK);
    assert_int_equal(entry_t_encode_(&e, &out[2]), XS_OK);
    xs_delta_batch_clear(&b);
    xs_neighbour_list_clear(&l);
    xs_catalog_entry_clear(&e);
}

/* ---- round trips ----------------------------------------------------------- */

static void test_batch_round_trip(void **state)
{
    (void)state;
    batch_t b = {0};
    xs_buf_t out = {0};
    full_batch(&b);
    ROUND_TRIP(batch_t, &b, &out);
    assert_true(out.len > XS_RECORDS_ID_MAX);
    xs_delta_batch_clear(&b);
    xs_delta_batch_clear(&b); /* a cleared batch clears again */
    /* empty: the source only */
    b.n_parts = 1;
    xs_buf_reset(&out);
    ROUND_TRIP(batch_t, &b, &out);
    static const uint8_t empty[] = {1, 'D', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(out.len, sizeof(empty));
    assert_memory_equal(out.data, empty, sizeof(empty));
    xs_buf_free(&out);
}

/* The layout of docs/RECORDS.md, byte for byte. */
static void test_batch_layout(void **state)
{
    (void)state;
    batch_t b = {0};
    xs_buf_t out = {0};
    b.partition = 3;
    b.seq = 300;
    b.n_parts = 1;
    b.ts = 1000;
    b.users_total_delta = 2;
    b.users_bought_delta = -1;
    assert_int_equal(xs_delta_batch_add_id(&b, "ab", errstr, sizeof(errstr)), XS_OK);
    add(&b, (xs_delta_t){.kind = XS_DELTA_PAIR,
                         .cls = 1,
                         .a = 0x0102030405060708,
                         .b = 9,
                         .count = 2,
                         .last_ts = 990});
    add(&b, (xs_delta_t){.kind = XS_DELTA_USERS, .cls = 0, .a = 5, .count = 1, .last_ts = 1000});
    add(&b, (xs_delta_t){.kind = XS_DELTA_CATEGORY, .a = 5, .b = 6, .last_ts = 999});
    add(&b, (xs_delta_t){.kind = XS_DELTA_TREND, .a = 5, .weight = 2.0, .last_ts = 1000});
    assert_int_equal(batch_t_encode_(&b, &out), XS_OK);
    static const uint8_t want[] = {
        1,    'D',  3,   0xac, 0x02, 0, 1,    /* version, magic, partition, seq 300, part 0 of 1 */
        0xe8, 0x03, 0,   0,    0,    0, 0, 0, /* ts 1000 */
        4,    1,                              /* users +2, -1 (zigzag) */
        1,    2,    'a', 'b',                 /* one id */
        4,                                    /* four entries */
        0,    1,    8,   7,    6,    5, 4, 3, 2, 1, 9, 0, 0, 0, 0, 0, 0,    0, 2, 10, /* pair */
        1,    0,    5,   0,    0,    0, 0, 0, 0, 0, 1, 0,                             /* users */
        2,    5,    0,   0,    0,    0, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0,    1,        /* category */
        3,    5,    0,   0,    0,    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x40, 0, /* trend 2.0 */
    };
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    xs_delta_batch_clear(&b);
    xs_buf_free(&out);
}

static void test_list_round_trip(void **state)
{
    (void)state;
    list_t l = {0};
    xs_buf_t out = {0};
    full_list(&l, XS_NEIGHBOUR_LIST_MAX);
    ROUND_TRIP(list_t, &l, &out);
    xs_neighbour_list_clear(&l);
    /* empty lists, unknown id */
    l.item = 42;
    xs_buf_reset(&out);
    ROUND_TRIP(list_t, &l, &out);
    static const uint8_t want[] = {1, 'L', 42, 0, 0, 0, 0, 0, 0, 0, /* version, magic, item */
                                   0,                               /* no id */
                                   0, 0,   0,  0, 0, 0, 0, 0,       /* ts */
                                   0, 0,   0,  0, 0, 0, 0, 0,       /* category */
                                   0, 0,   0,  0, 0, 0, 0, 0};      /* two empty classes */
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    /* one neighbour, its id, similarity and count */
    assert_int_equal(
        xs_neighbour_list_add(&l, 0, xs_hash_str("b"), "b", 0.5f, 3, errstr, sizeof(errstr)),
        XS_OK);
    xs_buf_reset(&out);
    ROUND_TRIP(list_t, &l, &out);
    uint64_t hb = xs_hash_str("b");
    uint8_t nb[15];
    for (int i = 0; i < 8; i++)
        nb[i] = (uint8_t)(hb >> (8 * i));
    nb[8] = 1;
    nb[9] = 'b';
    memcpy(nb + 10, (const uint8_t[]){0, 0, 0, 0x3f}, 4); /* 0.5f */
    nb[14] = 3;
    assert_int_equal(out.len, sizeof(want) + sizeof(nb));
    assert_memory_equal(out.data + 31, nb, sizeof(nb)); /* after class 0's counts */
    xs_neighbour_list_clear(&l);
    xs_buf_free(&out);
}

static void test_catalog_round_trip(void **state)
{
    (void)state;
    entry_t e = {0};
    xs_buf_t out = {0};
    full_entry(&e);
    ROUND_TRIP(entry_t, &e, &out);
    /* the longest title and ids */
    free(e.title);
    free(e.id);
    e.title = long_id(XS_RECORDS_TITLE_MAX);
    e.id = long_id(XS_RECORDS_ID_MAX);
    xs_buf_reset(&out);
    ROUND_TRIP(entry_t, &e, &out);
    /* a NaN price travels bit for bit */
    uint64_t bits = UINT64_C(0x7ff8000000000123);
    memcpy(&e.price, &bits, 8);
    xs_buf_reset(&out);
    ROUND_TRIP(entry_t, &e, &out);
    xs_catalog_entry_clear(&e);
    /* the id alone: out of stock, nothing optional; an empty title is none */
    e.id = strdup("a");
    e.title = strdup("");
    e.ts = -5;
    e.deleted = true;
    xs_buf_reset(&out);
    ROUND_TRIP(entry_t, &e, &out);
    static const uint8_t want[] = {1,    'C',  0xfb, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0x03, 1,    'a',  0,    0,    0};
    assert_int_equal(out.len, sizeof(want));
    assert_memory_equal(out.data, want, sizeof(want));
    entry_t d = {0};
    assert_int_equal(entry_t_decode_(&d, out.data, out.len), XS_OK);
    assert_null(d.title);
    assert_false(d.in_stock);
    assert_true(d.deleted);
    xs_catalog_entry_clear(&d);
    xs_catalog_entry_clear(&e);
    xs_buf_free(&out);
}

/* ---- errors ---------------------------------------------------------------- */

/* Every proper prefix of every record is an error, not a crash, not OK. */
static void test_truncated_at_every_length(void **state)
{
    (void)state;
    xs_buf_t s[3] = {{0}};
    samples(s);
    for (int r = 0; r < 3; r++) {
        for (size_t n = 0; n < s[r].len; n++) {
            /* a copy of exactly n bytes, so ASan sees any read past it */
            uint8_t *p = malloc(n ? n : 1);
            memcpy(p, s[r].data, n);
            xs_err_t err = decode_any(r, p, n);
            if (err == XS_OK)
                fail_msg("record %d: a prefix of %zu of %zu bytes decoded", r, n, s[r].len);
            free(p);
        }
        assert_int_equal(decode_any(r, s[r].data, s[r].len), XS_OK);
        xs_buf_free(&s[r]);
    }
    /* the messages say so */
    xs_buf_t l = {0};
    list_t x = {0};
    full_list(&x, 3);
    assert_int_equal(list_t_encode_(&x, &l), XS_OK);
    assert_int_equal(decode_any(1, l.data, l.len - 1), XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "neighbour list: truncated"));
    xs_neighbour_list_clear(&x);
    xs_buf_free(&l);
}

static void test_newer_version(void **state)
{
    (void)state;
    xs_buf_t s[3] = {{0}};
    samples(s);
    static const char *const want[3] = {
        "pair-delta batch: version 2 is newer than this build reads (1)",
        "neighbour list: version 2 is newer than this build reads (1)",
        "catalog entry: version 2 is newer than this build reads (1)"};
    for (int r = 0; r < 3; r++) {
        s[r].data[0] = 2;
        assert_int_equal(decode_any(r, s[r].data, s[r].len), XS_ERR_VERSION);
        assert_string_equal(errstr, want[r]);
        s[r].data[0] = 0xff;
        assert_int_equal(decode_any(r, s[r].data, s[r].len), XS_ERR_VERSION);
        assert_non_null(strstr(errstr, "version 255 is newer than this build reads (1)"));
        /* even when nothing else follows */
        assert_int_equal(decode_any(r, s[r].data, 1), XS_ERR_VERSION);
        s[r].data[0] = 0;
        assert_int_equal(decode_any(r, s[r].data, s[r].len), XS_ERR_DECODE);
        assert_non_null(strstr(errstr, "version 0 is not a version"));
        xs_buf_free(&s[r]);
    }
}

static void test_trailing_bytes(void **state)
{
    (void)state;
    xs_buf_t s[3] = {{0}};
    samples(s);
    static const char *const name[3] = {"pair-delta batch", "neighbour list", "catalog entry"};
    for (int r = 0; r < 3; r++) {
        xs_buf_append_u8(&s[r], 0);
        assert_int_equal(decode_any(r, s[r].data, s[r].len), XS_ERR_DECODE);
        char want[96];
        snprintf(want, sizeof(want), "%s: 1 trailing bytes after the record", name[r]);
        assert_string_equal(errstr, want);
        xs_buf_append(&s[r], "xyz", 3);
        assert_int_equal(decode_any(r, s[r].data, s[r].len), XS_ERR_DECODE);
        assert_non_null(strstr(errstr, "4 trailing bytes"));
        xs_buf_free(&s[r]);
    }
}

/* A record of one kind given to another decoder: the magic says no. */
static void test_wrong_magic(void **state)
{
    (void)state;
    xs_buf_t s[3] = {{0}};
    samples(s);
    for (int r = 0; r < 3; r++) {
        int other = (r + 1) % 3;
        assert_int_equal(decode_any(other, s[r].data, s[r].len), XS_ERR_DECODE);
        assert_non_null(strstr(errstr, "(magic 0x"));
        xs_buf_free(&s[r]);
    }
}

/* Counts above the limits: XS_ERR_TOO_LARGE from the decoder before it
 * allocates, and from the encoder and the adders. */
static void test_limits(void **state)
{
    (void)state;
    /* a batch header claiming the limit + 1 ids */
    uint8_t hdr[32] = {1, 'D', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    size_t n = 16;
    uint64_t v = XS_DELTA_BATCH_MAX_IDS + 1;
    for (; v >= 0x80; v >>= 7)
        hdr[n++] = (uint8_t)(v | 0x80);
    hdr[n++] = (uint8_t)v;
    assert_int_equal(decode_any(0, hdr, n), XS_ERR_TOO_LARGE);
    assert_non_null(strstr(errstr, "1048577 ids (limit 1048576)"));
    /* the limit itself is only too many for the bytes that follow */
    hdr[n - 1] = (uint8_t)(XS_DELTA_BATCH_MAX_IDS >> 14);
    hdr[n - 2] = 0x80;
    hdr[n - 3] = 0x80;
    assert_int_equal(decode_any(0, hdr, n), XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "truncated in the ids"));
    /* entries */
    static const uint8_t ents[] = {1, 'D', 0, 0, 0, 1, 0, 0,    0,    0,
                                   0, 0,   0, 0, 0, 0, 0, 0x81, 0x80, 0x40};
    assert_int_equal(decode_any(0, ents, sizeof(ents)), XS_ERR_TOO_LARGE);
    assert_non_null(strstr(errstr, "entries (limit 1048576)"));

    /* a neighbour list claiming 257 neighbours */
    list_t l = {0};
    xs_buf_t out = {0};
    full_list(&l, 0);
    assert_int_equal(list_t_encode_(&l, &out), XS_OK);
    /* class 0's count is the byte before class 1's four counts... rebuild */
    xs_buf_reset(&out);
    l.cls[0].n_users = 0;
    l.cls[0].pair_total = 0;
    l.cls[0].table = 0;
    l.cls[1] = l.cls[0];
    assert_int_equal(list_t_encode_(&l, &out), XS_OK);
    /* item 8 | id 1+6 | ts 8 | category 8, then class 0: 0 0 0 | n */
    size_t at = 2 + 8 + 7 + 8 + 8 + 3;
    assert_int_equal(out.data[at], 0);
    uint8_t big[128];
    memcpy(big, out.data, at);
    big[at] = 0x81; /* 257 */
    big[at + 1] = 0x02;
    memset(big + at + 2, 0, sizeof(big) - at - 2);
    assert_int_equal(decode_any(1, big, sizeof(big)), XS_ERR_TOO_LARGE);
    assert_non_null(strstr(errstr, "class 0: 257 neighbours (limit 256)"));
    xs_buf_free(&out);
    /* the adder stops at the limit */
    xs_neighbour_list_clear(&l);
    full_list(&l, XS_NEIGHBOUR_LIST_MAX);
    assert_int_equal(xs_neighbour_list_add(&l, 0, 12345, NULL, 1e-30f, 1, errstr, sizeof(errstr)),
                     XS_ERR_TOO_LARGE);
    xs_neighbour_list_clear(&l);

    /* an id one byte too long: the adder, the encoder, the decoder */
    char *id = long_id(XS_RECORDS_ID_MAX + 1);
    batch_t b = {0};
    assert_int_equal(xs_delta_batch_add_id(&b, id, errstr, sizeof(errstr)), XS_ERR_TOO_LARGE);
    assert_non_null(strstr(errstr, "id too long (65537 > 65536 bytes)"));
    entry_t e = {0};
    e.id = id;
    assert_int_equal(entry_t_encode_(&e, &out), XS_ERR_TOO_LARGE);
    assert_int_equal(out.len, 0);
    e.id = long_id(XS_RECORDS_ID_MAX);
    assert_int_equal(entry_t_encode_(&e, &out), XS_OK);
    /* grow the id's length by one in place: 65536 = 80 80 04 -> 65537 = 81 80 04 */
    assert_int_equal(out.data[11], 0x80);
    out.data[11] = 0x81;
    xs_buf_append_u8(&out, 'x');
    assert_int_equal(decode_any(2, out.data, out.len), XS_ERR_TOO_LARGE);
    assert_non_null(strstr(errstr, "catalog entry: id too long (65537 > 65536 bytes)"));
    free(id);
    xs_catalog_entry_clear(&e);
    xs_buf_free(&out);
    /* a title one byte too long */
    e.id = strdup("a");
    e.title = long_id(XS_RECORDS_TITLE_MAX + 1);
    assert_int_equal(entry_t_encode_(&e, &out), XS_ERR_TOO_LARGE);
    assert_non_null(strstr(errstr, "title too long"));
    xs_catalog_entry_clear(&e);
    xs_buf_free(&out);
}

/* Decodes a valid encoding with the byte at `at` changed to v (and at2 to
 * v2) and checks the error message. */
static void expect_bad2(int r, const xs_buf_t *valid, size_t at, uint8_t v, size_t at2, uint8_t v2,
                        const char *msg)
{
    uint8_t *p = malloc(valid->len);
    memcpy(p, valid->data, valid->len);
    p[at] = v;
    p[at2] = v2;
    xs_err_t err = decode_any(r, p, valid->len);
    if (err == XS_OK || !strstr(errstr, msg))
        fail_msg("record %d, byte %zu = 0x%02x: want \"%s\", got %d \"%s\"", r, at, v, msg, err,
                 errstr);
    free(p);
}

static void expect_bad(int r, const xs_buf_t *valid, size_t at, uint8_t v, const char *msg)
{
    expect_bad2(r, valid, at, v, at, v, msg);
}

/* The field rules, in the decoder and in the encoder. */
static void test_field_rules(void **state)
{
    (void)state;
    /* batch: a pair entry at a known offset */
    batch_t b = {0};
    xs_buf_t out = {0};
    b.n_parts = 1;
    b.ts = 1000;
    add(&b,
        (xs_delta_t){.kind = XS_DELTA_PAIR, .cls = 1, .a = 7, .b = 9, .count = 2, .last_ts = 990});
    assert_int_equal(batch_t_encode_(&b, &out), XS_OK);
    size_t e0 = 18; /* header 17 bytes + entry count */
    expect_bad(0, &out, e0, 4, "entry 0: unknown kind 4");
    expect_bad(0, &out, e0 + 1, 2, "entry 0 (pair): class 2 (0 or 1)");
    expect_bad(0, &out, e0 + 10, 7, "entry 0 (pair): an item paired with itself");
    expect_bad(0, &out, e0 + 2, 0, "entry 0 (pair): item key 0");
    expect_bad(0, &out, e0 + 18, 0, "entry 0 (pair): count 0");
    expect_bad(0, &out, 5, 0, "part 0 of 0");
    expect_bad(0, &out, 4, 1, "part 1 of 1");
    /* the same rules in the encoder */
    b.entries[0].b = 7;
    xs_buf_reset(&out);
    assert_int_equal(batch_t_encode_(&b, &out), XS_ERR_INVALID);
    assert_int_equal(out.len, 0);
    b.entries[0].b = 9;
    b.entries[0].last_ts = 1001;
    assert_int_equal(batch_t_encode_(&b, &out), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "last_ts 1001 after the batch's ts 1000"));
    xs_delta_t bad = {.kind = XS_DELTA_TREND, .a = 1, .weight = NAN};
    assert_int_equal(xs_delta_batch_add(&b, &bad, errstr, sizeof(errstr)), XS_ERR_INVALID);
    bad = (xs_delta_t){.kind = XS_DELTA_USERS, .a = 1, .b = 2, .count = 1};
    assert_int_equal(xs_delta_batch_add(&b, &bad, errstr, sizeof(errstr)), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "second key set"));
    assert_int_equal(xs_delta_batch_add_id(&b, "\xc3", errstr, sizeof(errstr)), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "not valid UTF-8"));
    xs_delta_batch_clear(&b);
    xs_buf_reset(&out);
    /* a time before INT64_MIN */
    static const uint8_t early[] = {1, 'D', 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, 0,
                                    0, 0,   1, 1, 0, 5, 0, 0, 0, 0, 0, 0, 0, 1,    1};
    assert_int_equal(decode_any(0, early, sizeof(early)), XS_ERR_DECODE);
    assert_non_null(strstr(errstr, "before the batch's ts"));

    /* neighbour list: two neighbours, ids known */
    list_t l = {0};
    l.item = xs_hash_str("a");
    l.id = strdup("a");
    assert_int_equal(
        xs_neighbour_list_add(&l, 0, xs_hash_str("b"), "b", 2.0f, 1, errstr, sizeof(errstr)),
        XS_OK);
    assert_int_equal(
        xs_neighbour_list_add(&l, 0, xs_hash_str("c"), "c", 1.0f, 1, errstr, sizeof(errstr)),
        XS_OK);
    assert_int_equal(list_t_encode_(&l, &out), XS_OK);
    size_t n0 = 2 + 8 + 2 + 8 + 8 + 4; /* first neighbour */
    expect_bad(1, &out, 11, 'z', "id does not match the item key");
    expect_bad(1, &out, n0 + 9, 'z', "class 0 neighbour 0: id does not match its key");
    expect_bad(1, &out, n0 + 13, 0x3f, "class 0 neighbour 1: out of rank order");  /* 2.0 -> 0.5 */
    expect_bad2(1, &out, n0 + 12, 0xc0, n0 + 13, 0x7f, "neighbour 0: similarity"); /* NaN */
    expect_bad2(1, &out, n0 + 12, 0x80, n0 + 13, 0x7f, "neighbour 0: similarity"); /* inf */
    expect_bad(1, &out, n0 + 13, 0xc0, "neighbour 0: similarity");                 /* -2.0 */
    expect_bad(1, &out, n0 + 14, 0, "class 0 neighbour 0: count 0");
    expect_bad(1, &out, n0 + 15 + 13, 0x40, "class 0 neighbour 1: out of rank order"); /* 1 -> 2 */
    expect_bad(1, &out, n0 + 9, 0xff, "neighbour id is not valid UTF-8");
    expect_bad(1, &out, 2, 0, "id does not match the item key");
    /* the encoder: rank order, self, duplicates */
    xs_neighbour_rec_t t = l.cls[0].v[0];
    l.cls[0].v[0] = l.cls[0].v[1];
    l.cls[0].v[1] = t;
    xs_buf_reset(&out);
    assert_int_equal(list_t_encode_(&l, &out), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "out of rank order"));
    l.cls[0].v[1].item = l.cls[0].v[0].item;
    free(l.cls[0].v[1].id);
    l.cls[0].v[1].id = NULL;
    l.cls[0].v[1].sim = 0.5f;
    assert_int_equal(list_t_encode_(&l, &out), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "the same item as neighbour 0"));
    l.cls[0].v[1].item = l.item;
    assert_int_equal(list_t_encode_(&l, &out), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "is the list's item"));
    xs_neighbour_list_clear(&l);

    /* catalog entry */
    entry_t e = {0};
    e.id = strdup("a");
    e.title = strdup("t");
    assert_int_equal(entry_t_encode_(&e, &out), XS_OK);
    expect_bad(2, &out, 10, 0x40, "unknown flags 0x40");
    expect_bad(2, &out, 11, 0, "empty id");
    expect_bad(2, &out, 14, 0xc0, "title is not valid UTF-8");
    expect_bad(2, &out, 14, 0, "title contains a NUL byte");
    free(e.id);
    e.id = NULL;
    assert_int_equal(entry_t_encode_(&e, &out), XS_ERR_INVALID);
    assert_non_null(strstr(errstr, "empty id"));
    xs_catalog_entry_clear(&e);
    xs_buf_free(&out);
}

/* Decoding into a struct that holds a record replaces it, with no leak. */
static void test_decode_reuses_output(void **state)
{
    (void)state;
    xs_buf_t s[3] = {{0}};
    samples(s);
    batch_t b = {0};
    list_t l = {0};
    entry_t e = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(batch_t_decode_(&b, s[0].data, s[0].len), XS_OK);
        assert_int_equal(list_t_decode_(&l, s[1].data, s[1].len), XS_OK);
        assert_int_equal(entry_t_decode_(&e, s[2].data, s[2].len), XS_OK);
    }
    assert_int_equal(b.n_entries, 6);
    assert_int_equal(l.cls[1].n, 5);
    assert_string_equal(e.family, "x100");
    /* a failed decode leaves it empty */
    assert_int_not_equal(batch_t_decode_(&b, s[0].data, 3), XS_OK);
    assert_int_equal(b.n_entries, 0);
    assert_null(b.entries);
    xs_delta_batch_clear(&b);
    xs_neighbour_list_clear(&l);
    xs_catalog_entry_clear(&e);
    for (int r = 0; r < 3; r++)
        xs_buf_free(&s[r]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_batch_layout),
        cmocka_unit_test(test_list_round_trip),
        cmocka_unit_test(test_catalog_round_trip),
        cmocka_unit_test(test_truncated_at_every_length),
        cmocka_unit_test(test_newer_version),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_decode_reuses_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
