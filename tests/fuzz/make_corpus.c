/*
 * Writes the seed corpora of the fuzz targets:
 *
 *   make_corpus DIR   ->  DIR/fuzz_decode/seed-*, DIR/fuzz_stored/seed-*  and
 *                         DIR/fuzz_records/seed-*
 *
 * fuzz_decode seeds: a selector byte (bare framing off / click / cart /
 * item) then a valid message: single-object click, cart and catalog
 * events, a CrossSellList, the same bodies in Confluent framing and bare.
 * fuzz_stored seeds: a family byte, a key-length byte, a key, then a
 * value: profiles and item sketches built with the real update functions,
 * a name record, a globals record, meta format and offset records.
 * fuzz_records seeds: the records that cross a stage boundary, built with
 * their encoders: pair-delta batches (every kind of entry; empty),
 * neighbour lists (ids known and not; empty) and catalog entries (every
 * field, a UTF-8 title; the id alone).
 * tests/fuzz/corpus/ holds the output of this program (small, checked in);
 * `make fuzz` regenerates it into the build directory as well.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "xsell/codec.h"
#include "xsell/event.h"
#include "xsell/hash.h"
#include "xsell/profile.h"
#include "xsell/records.h"
#include "xsell/sketch.h"

static int seq;

static int write_seed(const char *dir, const char *target, const void *a, size_t la, const void *b,
                      size_t lb)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_corpus: mkdir %s: %s\n", path, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof(path), "%s/%s/seed-%03d", dir, target, ++seq);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(a, 1, la, f) != la || (lb && fwrite(b, 1, lb, f) != lb) || fclose(f)) {
        fprintf(stderr, "make_corpus: cannot write %s\n", path);
        return 1;
    }
    return 0;
}

static int decode_seeds(const char *dir, xs_codec_t *codec)
{
    xs_event_t ev[3];
    xs_buf_t b = {0}, conf = {0};
    int rc = 0;
    xs_event_init(&ev[0], XS_KIND_CLICK);
    ev[0].event_id = strdup("e1");
    ev[0].user_id = strdup("u1");
    ev[0].session_id = strdup("s1");
    ev[0].type = XS_CLICK_PRODUCT_VIEW;
    ev[0].item_id = strdup("camera");
    ev[0].category = strdup("photo");
    ev[0].ts = 1704067200000;
    xs_event_init(&ev[1], XS_KIND_CART);
    ev[1].event_id = strdup("e2");
    ev[1].user_id = strdup("u1");
    ev[1].type = XS_CART_PURCHASE;
    ev[1].order_id = strdup("o1");
    ev[1].currency = strdup("EUR");
    ev[1].list_id = strdup("0123456789abcdef0123456789abcdef");
    ev[1].ts = 1704067260000;
    xs_event_add_line(&ev[1], "camera", 1, 499.0, true);
    xs_event_add_line(&ev[1], "lens", 2, 0, false);
    xs_event_init(&ev[2], XS_KIND_ITEM);
    ev[2].item_id = strdup("camera");
    ev[2].title = strdup("Camera X100");
    ev[2].category = strdup("photo");
    ev[2].brand = strdup("Acme");
    ev[2].price = 499.0;
    ev[2].has_price = true;
    ev[2].in_stock = true;
    ev[2].ts = 1704067200000;
    for (int k = 0; k < 3 && !rc; k++) {
        uint8_t sel_none = 0, sel_bare = (uint8_t)(k + 1);
        xs_buf_reset(&b);
        if (xs_codec_encode_event(codec, &ev[k], &b) != XS_OK || b.len < 10)
            return 1;
        rc |= write_seed(dir, "fuzz_decode", &sel_none, 1, b.data, b.len);
        /* Confluent framing, schema id k + 1 (registered by the target). */
        uint8_t hdr[5] = {0, 0, 0, 0, (uint8_t)(k + 1)};
        xs_buf_reset(&conf);
        xs_buf_append(&conf, hdr, 5);
        xs_buf_append(&conf, b.data + 10, b.len - 10);
        rc |= write_seed(dir, "fuzz_decode", &sel_none, 1, conf.data, conf.len);
        /* Bare body. */
        rc |= write_seed(dir, "fuzz_decode", &sel_bare, 1, b.data + 10, b.len - 10);
        xs_event_clear(&ev[k]);
    }
    xs_list_t list;
    xs_event_list_init(&list);
    strcpy(list.list_id, "0123456789abcdef0123456789abcdef");
    list.user_id = strdup("u1");
    list.trigger_event_id = strdup("e2");
    list.trigger_type = strdup("PURCHASE");
    list.trigger_items[0] = strdup("camera");
    list.n_trigger_items = 1;
    list.placement = XS_PLACEMENT_POST_PURCHASE;
    list.items[0].item_id = strdup("tripod");
    list.items[0].score = 1.5;
    list.items[0].because_of[0] = strdup("camera");
    list.items[0].n_because = 1;
    list.n_items = 1;
    list.model_name = strdup("xsell-cooc");
    list.model_version = strdup("1");
    list.generated_at = 1704067260000;
    xs_buf_reset(&b);
    if (xs_codec_encode_list(codec, &list, &b) != XS_OK)
        return 1;
    uint8_t sel_none = 0;
    rc |= write_seed(dir, "fuzz_decode", &sel_none, 1, b.data, b.len);
    xs_event_list_clear(&list);
    xs_buf_free(&b);
    xs_buf_free(&conf);
    return rc;
}

static int stored_seed(const char *dir, uint8_t cf, const void *key, size_t klen, const void *val,
                       size_t vlen)
{
    uint8_t hdr[2 + 16];
    hdr[0] = cf;
    hdr[1] = (uint8_t)klen;
    memcpy(hdr + 2, key, klen);
    return write_seed(dir, "fuzz_stored", hdr, 2 + klen, val, vlen);
}

static int stored_seeds(const char *dir)
{
    int rc = 0;
    xs_buf_t b = {0};
    uint8_t key10[10] = {0, 3, 1, 2, 3, 4, 5, 6, 7, 8}, key8[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    double hl = 720 * 3600e3;
    /* Profiles: small and full. */
    for (int variant = 0; variant < 2 && !rc; variant++) {
        xs_profile_t p;
        xs_profile_init(&p);
        int n = variant ? 40 : 3;
        for (int i = 0; i < n; i++) {
            int64_t now = 1704067200000 + i * 60000;
            p.last_ts = now;
            xs_profile_touch(&p, 1000 + (uint64_t)i, (xs_signal_t)(1 + i % 3), 1.0f + i, now, hl,
                             INT64_C(30) * 86400000);
            xs_profile_touch_cat(&p, 50 + (uint64_t)(i % 10), 1.0f, now, hl);
            xs_profile_cart_add(&p, 1000 + (uint64_t)i, 1 + i % 4);
            xs_profile_check_dedup(&p, 777 + (uint64_t)i);
        }
        /* the full one has cart overflow and rebuy filters too */
        uint64_t shown[XS_PROFILE_SEEN] = {1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009};
        xs_profile_set_last_list(&p, 1, 0xabcdef, p.last_ts - 1000, shown, variant ? 9 : 2);
        xs_buf_reset(&b);
        if (xs_profile_encode(&p, &b) != XS_OK)
            return 1;
        rc |= stored_seed(dir, 0, key10, 10, b.data, b.len);
    }
    /* Item sketches: with and without evictions. */
    for (int variant = 0; variant < 2 && !rc; variant++) {
        xs_item_t it;
        xs_sketch_init(&it);
        it.flags = variant ? 0x0f : 0x08;
        it.category = 0x1234;
        it.n_users[0] = 10;
        it.n_users[1] = 20;
        int n = variant ? 300 : 5;
        for (int i = 0; i < n; i++) {
            xs_sketch_add_pair(&it, XS_CLASS_BOUGHT, 2000 + (uint64_t)(i % 150));
            xs_sketch_add_pair(&it, XS_CLASS_VIEWED, 3000 + (uint64_t)(i % 70));
        }
        xs_buf_reset(&b);
        if (xs_sketch_encode(&it, &b) != XS_OK)
            return 1;
        rc |= stored_seed(dir, 1, key8, 8, b.data, b.len);
        /* its neighbour lists */
        for (int cls = 0; cls < XS_CLASS__COUNT; cls++)
            for (int i = 0; i < it.n_pairs[cls] && i < 10; i++)
                xs_sketch_top_set(&it, (xs_class_t)cls, i, 1.0 + i);
        xs_buf_reset(&b);
        if (xs_sketch_lists_encode(&it, UINT64_C(0x0102030405060708), &b) != XS_OK)
            return 1;
        rc |= stored_seed(dir, 4, key8, 8, b.data, b.len);
    }
    /* A name with a title: 'N' 1 varint len id varint len title. */
    static const uint8_t name[] = {'N', 1,   6,   'c', 'a', 'm', 'e', 'r', 'a', 11, 'C',
                                   'a', 'm', 'e', 'r', 'a', ' ', 'X', '1', '0', '0'};
    rc |= stored_seed(dir, 2, key8, 8, name, sizeof(name));
    /* Globals with two trend entries. */
    static const uint8_t globals[] = {
        'M', 1, 100, 40, 0x00, 0x1c, 0xb8, 0x17, 0x8c, 0x01, 0x00, 0x00, 2,    1,    0,
        0,   0, 0,   0,  0,    0,    0,    0,    0,    0,    0,    0,    0xf0, 0x3f, 2,
        0,   0, 0,   0,  0,    0,    0,    0,    0,    0,    0,    0,    0,    0x00, 0x40};
    rc |= stored_seed(dir, 3, "globals", 7, globals, sizeof(globals));
    uint8_t format[11] = {'X', 'S', 1};
    for (int i = 0; i < 8; i++)
        format[3 + i] = (uint8_t)((uint64_t)XS_HASH_SEED >> (8 * i));
    rc |= stored_seed(dir, 3, "format", 6, format, sizeof(format));
    static const uint8_t off[8] = {0, 0, 0, 0, 0, 1, 0xe0, 0x00};
    rc |= stored_seed(dir, 3, "offset/x/0", 10, off, sizeof(off));
    xs_buf_free(&b);
    return rc;
}

static int record_seed(const char *dir, const xs_buf_t *b)
{
    return b->len ? write_seed(dir, "fuzz_records", b->data, b->len, NULL, 0) : 1;
}

static int records_seeds(const char *dir)
{
    int rc = 0;
    xs_buf_t b = {0};
    uint64_t cam = xs_hash_str("camera"), lens = xs_hash_str("lens"),
             tripod = xs_hash_str("tripod"), photo = xs_hash_str("photo");
    /* Pair-delta batches: every kind of entry, and the source alone. */
    xs_delta_batch_t batch = {0};
    batch.partition = 3;
    batch.seq = 42;
    batch.n_parts = 1;
    batch.ts = 1704067260000;
    batch.users_total_delta = 2;
    batch.users_bought_delta = -1;
    const xs_delta_t d[] = {
        {.kind = XS_DELTA_PAIR, .cls = 0, .a = cam, .b = lens, .count = 2, .last_ts = batch.ts},
        {.kind = XS_DELTA_PAIR, .cls = 1, .a = lens, .b = tripod, .count = 1, .last_ts = 0},
        {.kind = XS_DELTA_USERS, .cls = 1, .a = cam, .count = 3, .last_ts = batch.ts},
        {.kind = XS_DELTA_CATEGORY, .a = tripod, .b = photo, .last_ts = batch.ts - 1},
        {.kind = XS_DELTA_TREND, .a = cam, .weight = 1.5, .last_ts = batch.ts},
    };
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        rc |= xs_delta_batch_add(&batch, &d[i], NULL, 0) != XS_OK;
    if (batch.n_entries > 1)
        batch.entries[1].last_ts = batch.ts - 60000;
    rc |= xs_delta_batch_add_id(&batch, "camera", NULL, 0) != XS_OK;
    rc |= xs_delta_batch_add_id(&batch, "Stativ \xc3\xbc", NULL, 0) != XS_OK;
    rc |= xs_delta_batch_encode(&batch, &b, NULL, 0) != XS_OK;
    rc |= record_seed(dir, &b);
    xs_delta_batch_clear(&batch);
    batch.n_parts = 1;
    xs_buf_reset(&b);
    rc |= xs_delta_batch_encode(&batch, &b, NULL, 0) != XS_OK;
    rc |= record_seed(dir, &b);
    /* Neighbour lists: two classes with ids known and not, and empty. */
    xs_neighbour_list_t l = {0};
    l.item = cam;
    l.id = strdup("camera");
    l.ts = 1704067260000;
    l.category = photo;
    l.cls[0] = (xs_neighbour_class_t){.n_users = 7, .pair_total = 30, .table = 400};
    l.cls[1] = (xs_neighbour_class_t){.n_users = 20, .pair_total = 90, .table = 2000};
    rc |= xs_neighbour_list_add(&l, 0, lens, "lens", 3.5f, 4, NULL, 0) != XS_OK;
    rc |= xs_neighbour_list_add(&l, 0, tripod, NULL, 1.25f, 2, NULL, 0) != XS_OK;
    rc |= xs_neighbour_list_add(&l, 1, tripod, "tripod", 0.5f, 9, NULL, 0) != XS_OK;
    xs_buf_reset(&b);
    rc |= xs_neighbour_list_encode(&l, &b, NULL, 0) != XS_OK;
    rc |= record_seed(dir, &b);
    xs_neighbour_list_clear(&l);
    l.item = lens;
    xs_buf_reset(&b);
    rc |= xs_neighbour_list_encode(&l, &b, NULL, 0) != XS_OK;
    rc |= record_seed(dir, &b);
    /* Catalog entries: every field; the id alone, deleted. */
    xs_catalog_entry_t c = {0};
    c.id = strdup("camera");
    c.title = strdup("Kamera X100 \xe2\x80\x94 \xe6\x97\xa5\xe6\x9c\xac");
    c.category = strdup("photo");
    c.family = strdup("x100");
    c.ts = 1704067200000;
    c.in_stock = c.repurchasable = true;
    c.has_price = c.has_from = c.has_until = true;
    c.price = 499.0;
    c.available_from = 1704067200000;
    c.available_until = 1735689600000;
    xs_buf_reset(&b);
    rc |= xs_catalog_entry_encode(&c, &b, NULL, 0) != XS_OK;
    rc |= record_seed(dir, &b);
    xs_catalog_entry_clear(&c);
    c.id = strdup("lens");
    c.deleted = true;
    c.ts = 1704067300000;
    xs_buf_reset(&b);
    rc |= xs_catalog_entry_encode(&c, &b, NULL, 0) != XS_OK;
    rc |= record_seed(dir, &b);
    xs_catalog_entry_clear(&c);
    xs_buf_free(&b);
    return rc;
}

int main(int argc, char **argv)
{
    char errstr[256];
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    if (mkdir(argv[1], 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_corpus: mkdir %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "make_corpus: %s\n", errstr);
        return 1;
    }
    int rc = decode_seeds(argv[1], codec) | stored_seeds(argv[1]) | records_seeds(argv[1]);
    xs_codec_destroy(codec);
    return rc;
}
