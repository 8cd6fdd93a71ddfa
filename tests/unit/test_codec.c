/*
 * test_codec.c — Avro codec: canonical form and fingerprints, round trips,
 * framings, schema evolution, incompatible writers, hostile input.
 *
 * Messages from "other producers" are written here with Avro-C's generic
 * values and the producer's own schema, so the decoder is checked against
 * an independent encoder; malformed inputs are assembled byte by byte. The
 * list writer (direct, no Avro-C) is checked byte for byte against Avro-C's
 * generic values on random lists.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <avro.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/codec.h"
#include "schemas.h"

/*
 * Expected fingerprints. Obtained with a standalone Python script written
 * from the Avro specification's canonical-form rules and the table-driven
 * CRC-64-AVRO reference algorithm (not from this code). python3-avro
 * 1.11.1's own canonical_form agrees on schemas without logical types or
 * repeated named references; it keeps {"type":"long"} for a
 * timestamp-millis field and repeats a named type in full, both contrary
 * to the specification's PRIMITIVES rule and reference implementation.
 */
#define FP_EMPTY 0xc15d213aa4d7a795ULL
#define FP_INT 0x7275d51a3f395c8fULL /* canonical "int" */
#define FP_CLICK 0x298ca07f081c213dULL
#define FP_CART 0xec21391cfcb21acbULL
#define FP_ITEM 0x8869e53841c85668ULL   /* version 2: availability window */
#define FP_ITEM_1 0x3e067e6c6512e232ULL /* version 1 (schemas/previous/ItemUpdate_1.avsc) */
#define FP_LIST 0x42e174b61c6d3505ULL
#define FP_S1 0x58489cd2a7a01f4aULL

static const char *S1 =
    "{\"namespace\":\"a.b\",\"type\":\"record\",\"name\":\"R\",\"aliases\":[\"Q\"],\"doc\":\"d\","
    "\"fields\":[{\"name\":\"f\",\"default\":\"abcd\",\"type\":{\"type\":\"fixed\",\"size\":4,"
    "\"name\":\"F\",\"namespace\":\"c\"}},{\"name\":\"g\",\"type\":\"c.F\"},{\"name\":\"h\","
    "\"type\":{\"type\":\"map\",\"values\":{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"X\","
    "\"Y\"],\"doc\":\"e\"}}},{\"name\":\"i\",\"type\":[\"null\",\"R\"]},{\"name\":\"j\",\"type\":"
    "{\"type\":\"array\",\"items\":\"E\"}}]}";
static const char *S1_PCF =
    "{\"name\":\"a.b.R\",\"type\":\"record\",\"fields\":[{\"name\":\"f\",\"type\":{\"name\":"
    "\"c.F\",\"type\":\"fixed\",\"size\":4}},{\"name\":\"g\",\"type\":\"c.F\"},{\"name\":\"h\","
    "\"type\":{\"type\":\"map\",\"values\":{\"name\":\"a.b.E\",\"type\":\"enum\",\"symbols\":"
    "[\"X\",\"Y\"]}}},{\"name\":\"i\",\"type\":[\"null\",\"a.b.R\"]},{\"name\":\"j\",\"type\":"
    "{\"type\":\"array\",\"items\":\"a.b.E\"}}]}";

/* ClickEvent v2 from a newer producer: fields reordered, an extra field,
 * an extra enum symbol, ts as int, session_id not optional, no category. */
static const char *W_CLICK_V2 =
    "{\"type\":\"record\",\"name\":\"ClickEvent\",\"namespace\":\"com.other\",\"fields\":["
    "{\"name\":\"ts\",\"type\":\"int\"},"
    "{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"referrer\",\"type\":{\"type\":\"array\",\"items\":[\"null\",\"string\"]}},"
    "{\"name\":\"event_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"ClickType\",\"symbols\":"
    "[\"ZOOM\",\"SEARCH\",\"PRODUCT_VIEW\"]}},"
    "{\"name\":\"session_id\",\"type\":\"string\"},"
    "{\"name\":\"item_id\",\"type\":[\"null\",\"string\"]},"
    "{\"name\":\"list_id\",\"type\":[\"string\",\"null\"]}]}";

/* CartEvent v0: lines without quantity, unit_price as plain float, an
 * extra cart type symbol and no default for it in the reader. */
static const char *W_CART_V0 =
    "{\"type\":\"record\",\"name\":\"CartEvent\",\"fields\":["
    "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
    "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"CartEventType\",\"symbols\":"
    "[\"ADD\",\"REMOVE\",\"WISHLIST\",\"PURCHASE\",\"CHECKOUT\"]}},"
    "{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":{\"type\":\"record\",\"name\":"
    "\"CartLine\",\"fields\":[{\"name\":\"item_id\",\"type\":\"string\"},"
    "{\"name\":\"unit_price\",\"type\":\"float\"}]}}},"
    "{\"name\":\"ts\",\"type\":\"long\"}]}";

/* ItemUpdate v0: no flags, no title/brand/price. */
static const char *W_ITEM_V0 =
    "{\"type\":\"record\",\"name\":\"ItemUpdate\",\"fields\":["
    "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"category\",\"type\":\"string\"},"
    "{\"name\":\"ts\",\"type\":\"long\"}]}";

/* ---- helpers ----------------------------------------------------------- */

typedef void (*fill_fn)(avro_value_t *rec);

static void set_str(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f;
    assert_int_equal(avro_value_get_by_name(rec, name, &f, NULL), 0);
    assert_int_equal(avro_value_set_string(&f, s), 0);
}

static avro_value_t field(avro_value_t *rec, const char *name)
{
    avro_value_t f = {0};
    assert_int_equal(avro_value_get_by_name(rec, name, &f, NULL), 0);
    return f;
}

/* Writes a body with Avro-C and the given writer schema. */
static size_t avro_body(const char *schema_json, fill_fn fill, uint8_t *buf, size_t cap)
{
    avro_schema_t schema = NULL;
    avro_value_t v;
    if (avro_schema_from_json_length(schema_json, strlen(schema_json), &schema))
        fail_msg("Avro-C rejects test schema: %s", avro_strerror());
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    assert_non_null(iface);
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    fill(&v);
    avro_writer_t w = avro_writer_memory((const char *)buf, (int64_t)cap);
    assert_int_equal(avro_value_write(w, &v), 0);
    size_t n = (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
    return n;
}

static uint64_t fingerprint_of(const char *json)
{
    xs_buf_t pcf = {0};
    assert_int_equal(xs_codec_schema_canonical_form(json, &pcf, NULL, 0), XS_OK);
    uint64_t fp = xs_codec_schema_crc64(pcf.data, pcf.len);
    xs_buf_free(&pcf);
    return fp;
}

static size_t frame_so(uint64_t fp, const uint8_t *body, size_t n, uint8_t *out)
{
    out[0] = 0xC3;
    out[1] = 0x01;
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)(fp >> (8 * i));
    memcpy(out + 10, body, n);
    return n + 10;
}

static size_t frame_cf(int32_t id, const uint8_t *body, size_t n, uint8_t *out)
{
    out[0] = 0;
    out[1] = (uint8_t)((uint32_t)id >> 24);
    out[2] = (uint8_t)((uint32_t)id >> 16);
    out[3] = (uint8_t)((uint32_t)id >> 8);
    out[4] = (uint8_t)id;
    memcpy(out + 5, body, n);
    return n + 5;
}

static xs_codec_t *codec_new(void)
{
    char err[256] = "";
    xs_codec_t *c = xs_codec_new(err, sizeof(err));
    if (!c)
        fail_msg("xs_codec_new: %s", err);
    return c;
}

/* Decodes expecting success. */
static void decode_ok(xs_codec_t *c, const uint8_t *msg, size_t len, int bare_kind, xs_event_t *ev,
                      xs_framing_t want_framing)
{
    char reason[256] = "";
    xs_event_kind_t kind = XS_KIND__COUNT;
    xs_framing_t framing = (xs_framing_t)-1;
    xs_err_t err =
        xs_codec_decode(c, msg, len, bare_kind, ev, &kind, &framing, reason, sizeof(reason));
    if (err)
        fail_msg("decode failed: %s (%s)", xs_err_str(err), reason);
    assert_int_equal(kind, ev->kind);
    assert_int_equal(framing, want_framing);
}

/* Decodes expecting failure with code and a reason containing want. */
static void decode_bad(xs_codec_t *c, const uint8_t *msg, size_t len, int bare_kind, xs_err_t want,
                       const char *want_reason)
{
    char reason[256] = "";
    xs_event_t ev;
    xs_err_t err = xs_codec_decode(c, msg, len, bare_kind, &ev, NULL, NULL, reason, sizeof(reason));
    if (err != want || !strstr(reason, want_reason))
        fail_msg("want %s \"%s\", got %s \"%s\"", xs_err_str(want), want_reason, xs_err_str(err),
                 reason);
    /* Left cleared. */
    assert_null(ev.event_id);
    assert_null(ev.lines);
}

/* ---- canonical form and fingerprints ----------------------------------- */

static void test_fingerprints(void **state)
{
    (void)state;
    assert_true(xs_codec_schema_crc64("", 0) == FP_EMPTY);
    assert_true(xs_codec_schema_crc64("\"int\"", 5) == FP_INT);
    assert_true(fingerprint_of("{\"type\":\"int\",\"logicalType\":\"date\"}") == FP_INT);

    xs_codec_t *c = codec_new();
    assert_true(xs_codec_fingerprint(c, XS_KIND_CLICK) == FP_CLICK);
    assert_true(xs_codec_fingerprint(c, XS_KIND_CART) == FP_CART);
    assert_true(xs_codec_fingerprint(c, XS_KIND_ITEM) == FP_ITEM);
    assert_true(xs_codec_fingerprint(c, XS_KIND_LIST) == FP_LIST);
    xs_codec_destroy(c);

    xs_buf_t pcf = {0};
    char err[128] = "";
    assert_int_equal(xs_codec_schema_canonical_form(S1, &pcf, err, sizeof(err)), XS_OK);
    assert_string_equal((char *)pcf.data, S1_PCF);
    assert_true(xs_codec_schema_crc64(pcf.data, pcf.len) == FP_S1);
    xs_buf_free(&pcf);

    assert_int_equal(xs_codec_schema_canonical_form("{\"type\":\"record\",\"name\":\"X\"}", &pcf,
                                                    err, sizeof(err)),
                     XS_ERR_SCHEMA);
    assert_non_null(strstr(err, "fields"));
    assert_int_equal(xs_codec_schema_canonical_form("\"Nope\"", &pcf, err, sizeof(err)),
                     XS_ERR_SCHEMA);
    assert_non_null(strstr(err, "unknown type"));
    xs_buf_free(&pcf);
}

/* ---- round trips ------------------------------------------------------- */

static void roundtrip(xs_codec_t *c, const xs_event_t *in, xs_event_t *out)
{
    xs_buf_t buf = {0};
    assert_int_equal(xs_codec_encode_event(c, in, &buf), XS_OK);
    assert_true(buf.len > 10);
    assert_int_equal(buf.data[0], 0xC3);
    assert_int_equal(buf.data[1], 0x01);
    decode_ok(c, buf.data, buf.len, -1, out, XS_FRAMING_SINGLE_OBJECT);
    xs_buf_free(&buf);
}

static void test_roundtrip_click(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    xs_event_t in, out;
    xs_event_init(&in, XS_KIND_CLICK);
    in.type = XS_CLICK_RECOMMENDATION_CLICK;
    in.event_id = strdup("e-1");
    in.user_id = strdup("u-\xC3\xA9");
    in.session_id = strdup("s");
    in.list_id = strdup("0123456789abcdef0123456789abcdef");
    in.item_id = strdup("i-9");
    in.category = strdup("shoes");
    in.ts = 1700000000123LL;
    roundtrip(c, &in, &out);
    assert_int_equal(out.kind, XS_KIND_CLICK);
    assert_int_equal(out.type, XS_CLICK_RECOMMENDATION_CLICK);
    assert_string_equal(out.event_id, "e-1");
    assert_string_equal(out.user_id, "u-\xC3\xA9");
    assert_string_equal(out.session_id, "s");
    assert_string_equal(out.list_id, in.list_id);
    assert_string_equal(out.item_id, "i-9");
    assert_string_equal(out.category, "shoes");
    assert_true(out.ts == 1700000000123LL);
    xs_event_clear(&out);

    /* Optional fields absent. */
    free(in.session_id);
    free(in.list_id);
    free(in.item_id);
    free(in.category);
    in.session_id = in.list_id = in.item_id = in.category = NULL;
    in.type = XS_CLICK_SEARCH;
    in.ts = -5; /* negative zig-zag */
    roundtrip(c, &in, &out);
    assert_int_equal(out.type, XS_CLICK_SEARCH);
    assert_null(out.session_id);
    assert_null(out.list_id);
    assert_null(out.item_id);
    assert_null(out.category);
    assert_true(out.ts == -5);
    xs_event_clear(&out);

    /* A required field missing cannot be encoded. */
    xs_buf_t buf = {0};
    free(in.user_id);
    in.user_id = NULL;
    assert_int_equal(xs_codec_encode_event(c, &in, &buf), XS_ERR_INVALID);
    xs_buf_free(&buf);
    xs_event_clear(&in);
    xs_codec_destroy(c);
}

static void test_roundtrip_cart_and_item(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    xs_event_t in, out;
    xs_event_init(&in, XS_KIND_CART);
    in.type = XS_CART_PURCHASE;
    in.event_id = strdup("e-2");
    in.user_id = strdup("u-2");
    in.order_id = strdup("o-1");
    in.currency = strdup("EUR");
    in.ts = 1700000000000LL;
    assert_int_equal(xs_event_add_line(&in, "a", 2, 9.99, true), XS_OK);
    assert_int_equal(xs_event_add_line(&in, "b", -1, 0, false), XS_OK);
    assert_int_equal(xs_event_add_line(&in, "c", 2147483647, -0.5, true), XS_OK);
    roundtrip(c, &in, &out);
    assert_int_equal(out.kind, XS_KIND_CART);
    assert_int_equal(out.type, XS_CART_PURCHASE);
    assert_null(out.session_id);
    assert_string_equal(out.order_id, "o-1");
    assert_string_equal(out.currency, "EUR");
    assert_int_equal(out.n_lines, 3);
    assert_string_equal(out.lines[0].item_id, "a");
    assert_int_equal(out.lines[0].quantity, 2);
    assert_true(out.lines[0].has_unit_price && out.lines[0].unit_price == 9.99);
    assert_string_equal(out.lines[1].item_id, "b");
    assert_int_equal(out.lines[1].quantity, -1);
    assert_false(out.lines[1].has_unit_price);
    assert_int_equal(out.lines[2].quantity, 2147483647);
    assert_true(out.lines[2].unit_price == -0.5);
    xs_event_clear(&out);
    xs_event_clear(&in);

    /* A cart with no lines. */
    xs_event_init(&in, XS_KIND_CART);
    in.type = XS_CART_CHECKOUT;
    in.event_id = strdup("e-3");
    in.user_id = strdup("u-3");
    roundtrip(c, &in, &out);
    assert_int_equal(out.n_lines, 0);
    assert_int_equal(out.type, XS_CART_CHECKOUT);
    xs_event_clear(&out);
    xs_event_clear(&in);

    xs_event_init(&in, XS_KIND_ITEM);
    in.item_id = strdup("i-1");
    in.brand = strdup("acme");
    in.family = strdup("85099");
    in.price = 12.5;
    in.has_price = true;
    in.in_stock = false;
    in.repurchasable = true;
    in.deleted = false;
    in.ts = 42;
    roundtrip(c, &in, &out);
    assert_int_equal(out.kind, XS_KIND_ITEM);
    assert_string_equal(out.item_id, "i-1");
    assert_null(out.title);
    assert_null(out.category);
    assert_string_equal(out.brand, "acme");
    assert_string_equal(out.family, "85099");
    assert_true(out.has_price && out.price == 12.5);
    assert_false(out.in_stock);
    assert_true(out.repurchasable);
    assert_false(out.deleted);
    assert_true(out.ts == 42);
    xs_event_clear(&out);
    xs_event_clear(&in);
    xs_codec_destroy(c);
}

static void test_roundtrip_list(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    xs_list_t in, out;
    xs_event_list_init(&in);
    strcpy(in.list_id, "0123456789abcdef0123456789abcdef");
    in.user_id = strdup("u");
    in.generated_at = 99;
    in.trigger_event_id = strdup("e");
    in.trigger_type = strdup("ADD");
    in.trigger_items[in.n_trigger_items++] = strdup("t1");
    in.trigger_items[in.n_trigger_items++] = strdup("t2");
    in.placement = XS_PLACEMENT_CHECKOUT;
    in.arm = strdup("B");
    in.model_name = strdup("cooc");
    in.model_version = strdup("3");
    for (int i = 0; i < XS_LIST_MAX_ITEMS; i++) {
        char id[16];
        snprintf(id, sizeof(id), "r%d", i);
        in.items[i].item_id = strdup(id);
        in.items[i].score = 1.0 / (i + 1);
        in.items[i].source = (xs_source_t)(i % XS_SOURCE__COUNT);
        for (int k = 0; k < i % (XS_BECAUSE_MAX + 1); k++)
            in.items[i].because_of[in.items[i].n_because++] = strdup(k ? "t2" : "t1");
        in.n_items++;
    }
    xs_buf_t buf = {0};
    char reason[128] = "";
    assert_int_equal(xs_codec_encode_list(c, &in, &buf), XS_OK);
    assert_int_equal(xs_codec_decode_list(c, buf.data, buf.len, &out, reason, sizeof(reason)),
                     XS_OK);
    assert_string_equal(out.list_id, in.list_id);
    assert_string_equal(out.user_id, "u");
    assert_true(out.generated_at == 99);
    assert_string_equal(out.trigger_event_id, "e");
    assert_string_equal(out.trigger_type, "ADD");
    assert_int_equal(out.n_trigger_items, 2);
    assert_string_equal(out.trigger_items[1], "t2");
    assert_int_equal(out.placement, XS_PLACEMENT_CHECKOUT);
    assert_null(out.experiment);
    assert_string_equal(out.arm, "B");
    assert_int_equal(out.n_items, XS_LIST_MAX_ITEMS);
    for (int i = 0; i < XS_LIST_MAX_ITEMS; i++) {
        assert_string_equal(out.items[i].item_id, in.items[i].item_id);
        assert_true(out.items[i].score == in.items[i].score);
        assert_int_equal(out.items[i].source, in.items[i].source);
        assert_int_equal(out.items[i].n_because, in.items[i].n_because);
        for (int k = 0; k < out.items[i].n_because; k++)
            assert_string_equal(out.items[i].because_of[k], in.items[i].because_of[k]);
    }
    assert_string_equal(out.model_name, "cooc");
    assert_string_equal(out.model_version, "3");
    xs_event_list_clear(&out);

    /* A list is not an event, an event is not a list. */
    xs_event_t ev;
    assert_int_equal(
        xs_codec_decode(c, buf.data, buf.len, -1, &ev, NULL, NULL, reason, sizeof(reason)),
        XS_ERR_SCHEMA);
    xs_buf_reset(&buf);
    xs_event_init(&ev, XS_KIND_CLICK);
    ev.event_id = strdup("e");
    ev.user_id = strdup("u");
    assert_int_equal(xs_codec_encode_event(c, &ev, &buf), XS_OK);
    assert_int_equal(xs_codec_decode_list(c, buf.data, buf.len, &out, reason, sizeof(reason)),
                     XS_ERR_SCHEMA);
    assert_non_null(strstr(reason, "not a CrossSellList"));
    xs_event_clear(&ev);
    xs_buf_free(&buf);
    xs_event_list_clear(&in);
    xs_codec_destroy(c);
}

/* ---- the list writer against Avro-C -------------------------------------- */

static uint64_t rng_next(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* A random string of 0..max_len bytes, no NUL, any other byte value. */
static char *rand_str(uint64_t *x, size_t max_len)
{
    size_t n = rng_next(x) % (max_len + 1);
    char *s = malloc(n + 1);
    assert_non_null(s);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(1 + rng_next(x) % 255);
    s[n] = '\0';
    return s;
}

static void rand_list(uint64_t *x, xs_list_t *l)
{
    /* long strings exercise multi-byte length varints */
    size_t max_len = rng_next(x) % 3 == 0 ? 300 : 12;
    xs_event_list_init(l);
    for (int i = 0; i < 32; i++)
        l->list_id[i] = "0123456789abcdef"[rng_next(x) % 16];
    l->user_id = rand_str(x, max_len);
    l->generated_at = (int64_t)rng_next(x) >> (rng_next(x) % 64);
    l->trigger_event_id = rand_str(x, max_len);
    l->trigger_type = rand_str(x, max_len);
    l->n_trigger_items = (int)(rng_next(x) % (XS_TRIGGER_MAX_ITEMS + 1));
    for (int i = 0; i < l->n_trigger_items; i++)
        l->trigger_items[i] = rand_str(x, max_len);
    l->placement = (xs_placement_t)(rng_next(x) % XS_PLACEMENT__COUNT);
    l->experiment = rng_next(x) % 2 ? rand_str(x, max_len) : NULL;
    l->arm = rng_next(x) % 2 ? rand_str(x, max_len) : NULL;
    l->n_items = (int)(rng_next(x) % (XS_LIST_MAX_ITEMS + 1));
    for (int i = 0; i < l->n_items; i++) {
        xs_rec_t *r = &l->items[i];
        uint64_t bits = rng_next(x);
        r->item_id = rand_str(x, max_len);
        memcpy(&r->score, &bits, sizeof(r->score)); /* any bit pattern, NaNs too */
        r->source = (xs_source_t)(rng_next(x) % XS_SOURCE__COUNT);
        r->n_because = (int)(rng_next(x) % (XS_BECAUSE_MAX + 1));
        for (int k = 0; k < r->n_because; k++)
            r->because_of[k] = rand_str(x, max_len);
    }
    l->model_name = rand_str(x, max_len);
    l->model_version = rand_str(x, max_len);
}

static void av_set(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f = field(rec, name);
    assert_int_equal(avro_value_set_string(&f, s), 0);
}

static void av_opt(avro_value_t *rec, const char *name, const char *s)
{
    avro_value_t f = field(rec, name), b;
    assert_int_equal(avro_value_set_branch(&f, s ? 1 : 0, &b), 0);
    if (s)
        assert_int_equal(avro_value_set_string(&b, s), 0);
}

/* The list as Avro-C's generic values write it with the embedded schema, framed. */
static void list_avro_c(const xs_list_t *l, xs_buf_t *out)
{
    const char *json = xs_codec_schema_json(XS_KIND_LIST);
    avro_schema_t schema = NULL;
    avro_value_t v, f, e, trig, items, model;
    assert_int_equal(avro_schema_from_json_length(json, strlen(json), &schema), 0);
    avro_value_iface_t *iface = avro_generic_class_from_schema(schema);
    assert_non_null(iface);
    assert_int_equal(avro_generic_value_new(iface, &v), 0);
    av_set(&v, "list_id", l->list_id);
    av_set(&v, "user_id", l->user_id);
    f = field(&v, "generated_at");
    assert_int_equal(avro_value_set_long(&f, l->generated_at), 0);
    trig = field(&v, "trigger");
    av_set(&trig, "event_id", l->trigger_event_id);
    av_set(&trig, "type", l->trigger_type);
    f = field(&trig, "item_ids");
    for (int i = 0; i < l->n_trigger_items; i++) {
        assert_int_equal(avro_value_append(&f, &e, NULL), 0);
        assert_int_equal(avro_value_set_string(&e, l->trigger_items[i]), 0);
    }
    f = field(&v, "placement");
    assert_int_equal(avro_value_set_enum(
                         &f, avro_schema_enum_get_by_name(avro_value_get_schema(&f),
                                                          xs_event_placement_name(l->placement))),
                     0);
    av_opt(&v, "experiment", l->experiment);
    av_opt(&v, "arm", l->arm);
    items = field(&v, "items");
    for (int i = 0; i < l->n_items; i++) {
        avro_value_t it, because;
        assert_int_equal(avro_value_append(&items, &it, NULL), 0);
        av_set(&it, "item_id", l->items[i].item_id);
        f = field(&it, "score");
        assert_int_equal(avro_value_set_double(&f, l->items[i].score), 0);
        f = field(&it, "source");
        assert_int_equal(avro_value_set_enum(&f, avro_schema_enum_get_by_name(
                                                     avro_value_get_schema(&f),
                                                     xs_event_source_name(l->items[i].source))),
                         0);
        because = field(&it, "because_of");
        for (int k = 0; k < l->items[i].n_because; k++) {
            assert_int_equal(avro_value_append(&because, &e, NULL), 0);
            assert_int_equal(avro_value_set_string(&e, l->items[i].because_of[k]), 0);
        }
    }
    model = field(&v, "model");
    av_set(&model, "name", l->model_name);
    av_set(&model, "version", l->model_version);
    size_t size = 0;
    assert_int_equal(avro_value_sizeof(&v, &size), 0);
    assert_int_equal(xs_buf_reserve(out, 10 + size), XS_OK);
    out->len = frame_so(FP_LIST, (const uint8_t *)"", 0, out->data);
    avro_writer_t w = avro_writer_memory((const char *)out->data + 10, (int64_t)size);
    assert_int_equal(avro_value_write(w, &v), 0);
    out->len += (size_t)avro_writer_tell(w);
    avro_writer_free(w);
    avro_value_decref(&v);
    avro_value_iface_decref(iface);
    avro_schema_decref(schema);
}

/* xs_codec_encode_list writes lists directly: byte for byte what Avro-C's
 * generic values write; xs_codec_peek_list finds the list's identity. */
static void test_list_writer(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    xs_buf_t mine = {0}, ref = {0};
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    char reason[128] = "";
    for (int iter = 0; iter < 2000; iter++) {
        xs_list_t l;
        xs_list_ref_t id;
        rand_list(&x, &l);
        xs_buf_reset(&mine);
        xs_buf_reset(&ref);
        assert_int_equal(xs_codec_encode_list(c, &l, &mine), XS_OK);
        list_avro_c(&l, &ref);
        assert_int_equal(mine.len, ref.len);
        assert_memory_equal(mine.data, ref.data, ref.len);
        assert_int_equal(xs_codec_peek_list(c, mine.data, mine.len, &id, reason, sizeof(reason)),
                         XS_OK);
        assert_int_equal(id.list_id_len, 32);
        assert_memory_equal(id.list_id, l.list_id, 32);
        assert_int_equal(id.user_id_len, strlen(l.user_id));
        assert_memory_equal(id.user_id, l.user_id, id.user_id_len);
        assert_int_equal(id.trigger_event_id_len, strlen(l.trigger_event_id));
        assert_memory_equal(id.trigger_event_id, l.trigger_event_id, id.trigger_event_id_len);
        xs_event_list_clear(&l);
    }

    /* Appends after what out holds; refuses what Avro-C's path refused, out unchanged. */
    xs_list_t l;
    rand_list(&x, &l);
    xs_buf_reset(&mine);
    assert_int_equal(xs_buf_append(&mine, "ab", 2), XS_OK);
    assert_int_equal(xs_codec_encode_list(c, &l, &mine), XS_OK);
    xs_buf_reset(&ref);
    list_avro_c(&l, &ref);
    assert_int_equal(mine.len, 2 + ref.len);
    assert_memory_equal(mine.data + 2, ref.data, ref.len);
    size_t len = mine.len;
    char *saved = l.model_name;
    l.model_name = NULL;
    assert_int_equal(xs_codec_encode_list(c, &l, &mine), XS_ERR_INVALID);
    l.model_name = saved;
    int n_items = l.n_items;
    l.n_items = XS_LIST_MAX_ITEMS + 1;
    assert_int_equal(xs_codec_encode_list(c, &l, &mine), XS_ERR_INVALID);
    l.n_items = n_items;
    l.placement = XS_PLACEMENT__COUNT;
    assert_int_equal(xs_codec_encode_list(c, &l, &mine), XS_ERR_INVALID);
    l.placement = XS_PLACEMENT_CART;
    memset(l.list_id, 'f', sizeof(l.list_id)); /* not terminated */
    assert_int_equal(xs_codec_encode_list(c, &l, &mine), XS_ERR_INVALID);
    assert_int_equal(mine.len, len);
    xs_event_list_clear(&l);

    /* peek: the checks of decode_list */
    xs_list_ref_t id;
    assert_int_equal(xs_codec_peek_list(c, ref.data, ref.len - 1, &id, reason, sizeof(reason)),
                     XS_ERR_DECODE);
    assert_null(id.trigger_event_id);
    xs_event_t ev;
    xs_event_init(&ev, XS_KIND_CLICK);
    ev.event_id = strdup("e");
    ev.user_id = strdup("u");
    xs_buf_reset(&mine);
    assert_int_equal(xs_codec_encode_event(c, &ev, &mine), XS_OK);
    assert_int_equal(xs_codec_peek_list(c, mine.data, mine.len, &id, reason, sizeof(reason)),
                     XS_ERR_SCHEMA);
    assert_non_null(strstr(reason, "not a CrossSellList"));
    xs_event_clear(&ev);
    xs_buf_free(&mine);
    xs_buf_free(&ref);
    xs_codec_destroy(c);
}

/* Bodies written by python3-avro 1.11.1 (DatumWriter with the files in schemas/), an
 * independent encoder. Click: py-1, "u\u00e9", session null,
 * RECOMMENDATION_CLICK, item i-1, category null, list L1,
 * ts 1700000000123. Cart: py-2, u2, session s, PURCHASE, lines
 * [a x3 @2.5, b x-7 no price], order o, ts -1. */
static void test_python_interop(void **state)
{
    (void)state;
    static const uint8_t click[] = {0x08, 0x70, 0x79, 0x2d, 0x31, 0x06, 0x75, 0xc3, 0xa9,
                                    0x00, 0x06, 0x02, 0x06, 0x69, 0x2d, 0x31, 0x00, 0x02,
                                    0x04, 0x4c, 0x31, 0xf6, 0xa1, 0xab, 0xfe, 0xf9, 0x62};
    static const uint8_t cart[] = {0x08, 0x70, 0x79, 0x2d, 0x32, 0x04, 0x75, 0x32, 0x02,
                                   0x02, 0x73, 0x06, 0x04, 0x02, 0x61, 0x06, 0x02, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x40, 0x02, 0x62,
                                   0x0d, 0x00, 0x00, 0x02, 0x02, 0x6f, 0x00, 0x00, 0x01};
    xs_codec_t *c = codec_new();
    uint8_t msg[64];
    xs_event_t ev;
    size_t m = frame_so(FP_CLICK, click, sizeof(click), msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_SINGLE_OBJECT);
    assert_string_equal(ev.event_id, "py-1");
    assert_string_equal(ev.user_id, "u\xC3\xA9");
    assert_null(ev.session_id);
    assert_int_equal(ev.type, XS_CLICK_RECOMMENDATION_CLICK);
    assert_string_equal(ev.item_id, "i-1");
    assert_null(ev.category);
    assert_string_equal(ev.list_id, "L1");
    assert_true(ev.ts == 1700000000123LL);
    xs_event_clear(&ev);

    decode_ok(c, cart, sizeof(cart), XS_KIND_CART, &ev, XS_FRAMING_BARE);
    assert_string_equal(ev.event_id, "py-2");
    assert_string_equal(ev.session_id, "s");
    assert_int_equal(ev.type, XS_CART_PURCHASE);
    assert_int_equal(ev.n_lines, 2);
    assert_int_equal(ev.lines[0].quantity, 3);
    assert_true(ev.lines[0].has_unit_price && ev.lines[0].unit_price == 2.5);
    assert_string_equal(ev.lines[1].item_id, "b");
    assert_int_equal(ev.lines[1].quantity, -7);
    assert_false(ev.lines[1].has_unit_price);
    assert_string_equal(ev.order_id, "o");
    assert_null(ev.currency);
    assert_true(ev.ts == -1);
    xs_event_clear(&ev);

    /* Our encoder writes the same body bytes as python3-avro. */
    xs_event_init(&ev, XS_KIND_CLICK);
    ev.type = XS_CLICK_RECOMMENDATION_CLICK;
    ev.event_id = strdup("py-1");
    ev.user_id = strdup("u\xC3\xA9");
    ev.item_id = strdup("i-1");
    ev.list_id = strdup("L1");
    ev.ts = 1700000000123LL;
    xs_buf_t buf = {0};
    assert_int_equal(xs_codec_encode_event(c, &ev, &buf), XS_OK);
    assert_int_equal(buf.len, 10 + sizeof(click));
    assert_memory_equal(buf.data + 10, click, sizeof(click));
    xs_buf_free(&buf);
    xs_event_clear(&ev);
    xs_codec_destroy(c);
}

/* ---- framings ---------------------------------------------------------- */

static void fill_click_reader(avro_value_t *rec)
{
    avro_value_t f, b;
    set_str(rec, "event_id", "");
    set_str(rec, "user_id", "u-7");
    f = field(rec, "session_id");
    assert_int_equal(avro_value_set_branch(&f, 1, &b), 0);
    assert_int_equal(avro_value_set_string(&b, "s-7"), 0);
    f = field(rec, "type");
    assert_int_equal(avro_value_set_enum(&f, 2), 0); /* SEARCH */
    f = field(rec, "item_id");
    assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
    f = field(rec, "category");
    assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
    f = field(rec, "list_id");
    assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
    f = field(rec, "ts");
    assert_int_equal(avro_value_set_long(&f, 1234567), 0);
}

static void check_click_reader(const xs_event_t *ev)
{
    assert_string_equal(ev->event_id, "");
    assert_string_equal(ev->user_id, "u-7");
    assert_string_equal(ev->session_id, "s-7");
    assert_int_equal(ev->type, XS_CLICK_SEARCH);
    assert_null(ev->item_id);
    assert_true(ev->ts == 1234567);
}

static void test_framings(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    uint8_t body[256], msg[300];
    xs_event_t ev;
    char err[256] = "";
    size_t n =
        avro_body(xs_codec_schema_json(XS_KIND_CLICK), fill_click_reader, body, sizeof(body));
    /* The body starts with 00 (empty event_id): a bare body that looks Confluent. */
    assert_int_equal(body[0], 0x00);

    size_t m = frame_so(FP_CLICK, body, n, msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_SINGLE_OBJECT);
    check_click_reader(&ev);
    xs_event_clear(&ev);

    /* Confluent: unknown id first, then registered. */
    m = frame_cf(42, body, n, msg);
    decode_bad(c, msg, m, -1, XS_ERR_SCHEMA, "unknown schema id 42");
    assert_int_equal(xs_codec_add_writer(c, XS_KIND_CLICK, xs_codec_schema_json(XS_KIND_CLICK), 42,
                                         err, sizeof(err)),
                     XS_OK);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_CONFLUENT);
    check_click_reader(&ev);
    xs_event_clear(&ev);
    /* The same id again for the same schema is fine; for another schema it is not. */
    assert_int_equal(xs_codec_add_writer(c, XS_KIND_CLICK, xs_codec_schema_json(XS_KIND_CLICK), 42,
                                         err, sizeof(err)),
                     XS_OK);
    assert_int_equal(xs_codec_add_writer(c, XS_KIND_CLICK, W_CLICK_V2, 42, err, sizeof(err)),
                     XS_ERR_SCHEMA);
    assert_non_null(strstr(err, "42"));

    /* Bare: not allowed unless the caller says so. */
    decode_bad(c, body + 1, n - 1, -1, XS_ERR_DECODE, "not Avro");
    decode_ok(c, body, n, XS_KIND_CLICK, &ev, XS_FRAMING_BARE);
    check_click_reader(&ev);
    xs_event_clear(&ev);
    /* Bare with a different writer schema. */
    assert_int_equal(xs_codec_set_bare_writer(c, XS_KIND_ITEM, W_ITEM_V0, err, sizeof(err)), XS_OK);
    const uint8_t item_v0[] = {2, 'i', 4, 'c', 'a', 0x54};
    decode_ok(c, item_v0, sizeof(item_v0), XS_KIND_ITEM, &ev, XS_FRAMING_BARE);
    assert_string_equal(ev.item_id, "i");
    assert_string_equal(ev.category, "ca");
    assert_true(ev.ts == 42);
    assert_true(ev.in_stock);
    xs_event_clear(&ev);
    /* A bare-only writer is not found by its fingerprint. */
    m = frame_so(fingerprint_of(W_ITEM_V0), item_v0, sizeof(item_v0), msg);
    decode_bad(c, msg, m, -1, XS_ERR_SCHEMA, "unknown fingerprint");
    xs_codec_destroy(c);
}

/* ---- evolution --------------------------------------------------------- */

static void fill_click_v2(avro_value_t *rec)
{
    avro_value_t f, b, e;
    f = field(rec, "ts");
    assert_int_equal(avro_value_set_int(&f, -77), 0);
    set_str(rec, "user_id", "u-v2");
    f = field(rec, "referrer"); /* extra: an array of optional strings */
    assert_int_equal(avro_value_append(&f, &e, NULL), 0);
    assert_int_equal(avro_value_set_branch(&e, 1, &b), 0);
    assert_int_equal(avro_value_set_string(&b, "google"), 0);
    assert_int_equal(avro_value_append(&f, &e, NULL), 0);
    assert_int_equal(avro_value_set_branch(&e, 0, &b), 0);
    set_str(rec, "event_id", "e-v2");
    f = field(rec, "type");
    assert_int_equal(avro_value_set_enum(&f, 0), 0); /* ZOOM: unknown to the reader */
    set_str(rec, "session_id", "s-v2");
    f = field(rec, "item_id");
    assert_int_equal(avro_value_set_branch(&f, 1, &b), 0);
    assert_int_equal(avro_value_set_string(&b, "i-v2"), 0);
    f = field(rec, "list_id");
    assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
    assert_int_equal(avro_value_set_string(&b, "L"), 0);
}

static void test_evolution_click(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    uint8_t body[256], msg[300];
    char err[256] = "";
    xs_event_t ev;
    size_t n = avro_body(W_CLICK_V2, fill_click_v2, body, sizeof(body));
    uint64_t fp = fingerprint_of(W_CLICK_V2);
    size_t m = frame_so(fp, body, n, msg);

    char want[64];
    snprintf(want, sizeof(want), "unknown fingerprint 0x%016llx", (unsigned long long)fp);
    decode_bad(c, msg, m, -1, XS_ERR_SCHEMA, want);

    assert_int_equal(xs_codec_add_writer(c, XS_KIND_CLICK, W_CLICK_V2, 7, err, sizeof(err)), XS_OK);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_SINGLE_OBJECT);
    assert_string_equal(ev.event_id, "e-v2");
    assert_string_equal(ev.user_id, "u-v2");
    assert_string_equal(ev.session_id, "s-v2"); /* string -> ["null","string"] */
    assert_int_equal(ev.type, XS_CLICK_OTHER);  /* unknown symbol -> enum default */
    assert_string_equal(ev.item_id, "i-v2");
    assert_null(ev.category);             /* missing -> reader default null */
    assert_string_equal(ev.list_id, "L"); /* ["string","null"] -> ["null","string"] */
    assert_true(ev.ts == -77);            /* int -> long */
    xs_event_clear(&ev);

    /* The same body by Confluent id. */
    m = frame_cf(7, body, n, msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_CONFLUENT);
    assert_string_equal(ev.event_id, "e-v2");
    xs_event_clear(&ev);

    /* A known writer symbol maps by name, not by index (SEARCH is index 1 here). */
    uint8_t *type_at = NULL;
    for (size_t i = 10; i + 1 < m; i++)
        if (memcmp(msg + i,
                   "\x08"
                   "e-v2",
                   5) == 0)
            type_at = msg + i + 5;
    assert_non_null(type_at);
    assert_int_equal(*type_at, 0); /* zig-zag 0 = ZOOM */
    *type_at = 2;                  /* zig-zag 1 = SEARCH */
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_CONFLUENT);
    assert_int_equal(ev.type, XS_CLICK_SEARCH);
    xs_event_clear(&ev);
    *type_at = 6; /* index 3: out of range */
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "bad enum index 3 for field type");
    xs_codec_destroy(c);
}

static void fill_cart_v0(avro_value_t *rec)
{
    avro_value_t f, line, p;
    set_str(rec, "event_id", "e-c0");
    set_str(rec, "user_id", "u-c0");
    f = field(rec, "type");
    assert_int_equal(avro_value_set_enum(&f, 4), 0); /* CHECKOUT, index 2 in the reader */
    f = field(rec, "lines");
    for (int i = 0; i < 2; i++) {
        assert_int_equal(avro_value_append(&f, &line, NULL), 0);
        set_str(&line, "item_id", i ? "y" : "x");
        p = field(&line, "unit_price");
        assert_int_equal(avro_value_set_float(&p, i ? 0.25f : 1.5f), 0);
    }
    p = field(rec, "ts");
    assert_int_equal(avro_value_set_long(&p, 5), 0);
}

static void test_evolution_cart_and_item(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    uint8_t body[256], msg[300];
    char err[256] = "";
    xs_event_t ev;
    assert_int_equal(xs_codec_add_writer(c, XS_KIND_CART, W_CART_V0, -1, err, sizeof(err)), XS_OK);
    size_t n = avro_body(W_CART_V0, fill_cart_v0, body, sizeof(body));
    size_t m = frame_so(fingerprint_of(W_CART_V0), body, n, msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_SINGLE_OBJECT);
    assert_int_equal(ev.type, XS_CART_CHECKOUT);
    assert_null(ev.session_id);
    assert_int_equal(ev.n_lines, 2);
    assert_string_equal(ev.lines[0].item_id, "x");
    assert_int_equal(ev.lines[0].quantity, 1); /* reader default */
    assert_true(ev.lines[0].has_unit_price);   /* float -> ["null","double"] */
    assert_true(ev.lines[0].unit_price == 1.5);
    assert_string_equal(ev.lines[1].item_id, "y");
    assert_int_equal(ev.lines[1].quantity, 1);
    assert_true(ev.lines[1].unit_price == 0.25);
    xs_event_clear(&ev);

    /* WISHLIST is unknown to the reader, whose enum has no default. */
    uint8_t *type_at = msg + 10 + 5 + 5; /* after "e-c0" and "u-c0" */
    assert_int_equal(*type_at, 8);       /* zig-zag 4 */
    *type_at = 4;                        /* index 2 = WISHLIST */
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "unknown enum symbol WISHLIST for field type");

    /* ItemUpdate v0 by Confluent id: flags take the reader defaults. */
    assert_int_equal(xs_codec_add_writer(c, XS_KIND_ITEM, W_ITEM_V0, 100, err, sizeof(err)), XS_OK);
    const uint8_t item_v0[] = {2, 'i', 4, 'c', 'a', 0x54};
    m = frame_cf(100, item_v0, sizeof(item_v0), msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_CONFLUENT);
    assert_true(ev.in_stock);
    assert_false(ev.repurchasable);
    assert_false(ev.deleted);
    assert_false(ev.has_price);
    assert_null(ev.title);
    assert_null(ev.family); /* an old writer without it: the reader's default */
    assert_string_equal(ev.category, "ca");
    xs_event_clear(&ev);
    xs_codec_destroy(c);
}

/* ItemUpdate version 2 adds the availability window; what producers wrote
 * with version 1 (its fingerprint) still decodes, without a window. */
static void fill_item_v1(avro_value_t *rec)
{
    avro_value_t f, b;
    set_str(rec, "item_id", "old-item");
    static const char *const nulls[] = {"title", "category", "brand", "family"};
    for (int i = 0; i < 4; i++) {
        f = field(rec, nulls[i]);
        assert_int_equal(avro_value_set_branch(&f, 0, &b), 0);
    }
    f = field(rec, "price");
    assert_int_equal(avro_value_set_branch(&f, 1, &b), 0);
    assert_int_equal(avro_value_set_double(&b, 4.5), 0);
    f = field(rec, "ts");
    assert_int_equal(avro_value_set_long(&f, 77), 0);
}

static void test_item_versions(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    uint8_t body[256], msg[300];
    xs_event_t in, ev;
    assert_true(fingerprint_of(xs_schemas_text_ItemUpdate_1) == FP_ITEM_1);
    size_t n = avro_body(xs_schemas_text_ItemUpdate_1, fill_item_v1, body, sizeof(body));
    size_t m = frame_so(FP_ITEM_1, body, n, msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_SINGLE_OBJECT);
    assert_string_equal(ev.item_id, "old-item");
    assert_true(ev.has_price && ev.price == 4.5);
    assert_true(ev.ts == 77);
    assert_false(ev.has_available_from);
    assert_false(ev.has_available_until);
    xs_event_clear(&ev);

    /* version 2 round trip: both bounds, one bound, none */
    for (int k = 0; k < 3; k++) {
        xs_event_init(&in, XS_KIND_ITEM);
        in.item_id = strdup("new-item");
        in.ts = 1000;
        in.has_available_from = k < 2;
        in.available_from = 1700000000000LL;
        in.has_available_until = k == 0;
        in.available_until = 1800000000000LL;
        roundtrip(c, &in, &ev);
        assert_int_equal(ev.has_available_from, k < 2);
        assert_int_equal(ev.has_available_until, k == 0);
        if (k < 2)
            assert_true(ev.available_from == 1700000000000LL);
        if (k == 0)
            assert_true(ev.available_until == 1800000000000LL);
        xs_event_clear(&ev);
        xs_event_clear(&in);
    }
    xs_codec_destroy(c);
}

static void test_incompatible_writers(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    char err[256] = "";
    static const struct {
        xs_event_kind_t kind;
        const char *schema;
        const char *want;
    } cases[] = {
        /* CartLine.item_id missing and without a default. */
        {XS_KIND_CART,
         "{\"type\":\"record\",\"name\":\"CartEvent\",\"fields\":["
         "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
         "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"CartEventType\","
         "\"symbols\":[\"ADD\"]}},{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":"
         "{\"type\":\"record\",\"name\":\"CartLine\",\"fields\":[{\"name\":\"sku\",\"type\":"
         "\"string\"}]}}},{\"name\":\"ts\",\"type\":\"long\"}]}",
         "field lines.item_id: missing in the writer schema and the reader declares no default"},
        /* ts as a string. */
        {XS_KIND_ITEM,
         "{\"type\":\"record\",\"name\":\"ItemUpdate\",\"fields\":["
         "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"ts\",\"type\":\"string\"}]}",
         "field ts: writer string cannot be read as long"},
        /* long cannot be narrowed to int. */
        {XS_KIND_CART,
         "{\"type\":\"record\",\"name\":\"CartEvent\",\"fields\":["
         "{\"name\":\"event_id\",\"type\":\"string\"},{\"name\":\"user_id\",\"type\":\"string\"},"
         "{\"name\":\"type\",\"type\":{\"type\":\"enum\",\"name\":\"CartEventType\","
         "\"symbols\":[\"ADD\"]}},{\"name\":\"lines\",\"type\":{\"type\":\"array\",\"items\":"
         "{\"type\":\"record\",\"name\":\"CartLine\",\"fields\":[{\"name\":\"item_id\",\"type\":"
         "\"string\"},{\"name\":\"quantity\",\"type\":\"long\"}]}}},"
         "{\"name\":\"ts\",\"type\":\"long\"}]}",
         "field lines.quantity: writer long cannot be read as int"},
        /* A record of another name. */
        {XS_KIND_ITEM, "{\"type\":\"record\",\"name\":\"Product\",\"fields\":[]}",
         "does not match reader io.xsell.ItemUpdate"},
        /* No branch of a writer union fits. */
        {XS_KIND_ITEM,
         "{\"type\":\"record\",\"name\":\"ItemUpdate\",\"fields\":["
         "{\"name\":\"item_id\",\"type\":[\"null\",\"int\"]},{\"name\":\"ts\",\"type\":\"long\"}]}",
         "field item_id: writer"},
        {XS_KIND_ITEM, "{\"type\":\"record\",", "not JSON"},
        {XS_KIND_ITEM,
         "{\"type\":\"record\",\"name\":\"ItemUpdate\",\"fields\":[{\"name\":\"x\","
         "\"type\":\"Missing\"}]}",
         "unknown type \"Missing\""},
    };
    for (size_t i = 0; i < XS_ARRAY_SIZE(cases); i++) {
        err[0] = '\0';
        xs_err_t rc =
            xs_codec_add_writer(c, cases[i].kind, cases[i].schema, (int32_t)i, err, sizeof(err));
        if (rc != XS_ERR_SCHEMA || !strstr(err, cases[i].want))
            fail_msg("case %zu: got %s \"%s\", want \"%s\"", i, xs_err_str(rc), err, cases[i].want);
    }
    /* Nothing was registered: the ids are still unknown. */
    uint8_t msg[] = {0, 0, 0, 0, 1, 2, 'a', 0};
    decode_bad(c, msg, sizeof(msg), -1, XS_ERR_SCHEMA, "unknown schema id 1");
    xs_codec_destroy(c);
}

/* ---- hostile input ----------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    char err[256] = "";
    /* A valid ClickEvent body: "e", "u", null, PRODUCT_VIEW, null, null, null, ts 1. */
    const uint8_t good[] = {2, 'e', 2, 'u', 0, 0, 0, 0, 0, 2};
    uint8_t msg[64];
    size_t m = frame_so(FP_CLICK, good, sizeof(good), msg);
    xs_event_t ev;
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_SINGLE_OBJECT);
    assert_int_equal(ev.type, XS_CLICK_PRODUCT_VIEW);
    xs_event_clear(&ev);

    /* Every truncation of the good message fails cleanly. */
    for (size_t cut = 0; cut < m; cut++) {
        char reason[128] = "";
        xs_err_t rc = xs_codec_decode(c, msg, cut, -1, &ev, NULL, NULL, reason, sizeof(reason));
        assert_true(rc == XS_ERR_DECODE || rc == XS_ERR_SCHEMA);
        assert_true(reason[0] != '\0');
    }

    struct {
        uint8_t body[16];
        size_t len;
        const char *want;
    } bodies[] = {
        {{2, 'e', 2, 'u', 0, 0, 0, 0, 0, 2, 0xFF},
         11,
         "trailing garbage after Avro body (1 bytes)"},
        {{2, 'e', 2, 'u', 0, 0, 0, 0, 0}, 9, "truncated Avro body"},
        {{3, 'e', 2, 'u', 0, 0, 0, 0, 0, 2}, 10, "negative length -2 for field event_id"},
        {{0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 'e'}, 6, "truncated Avro body"}, /* 2 GB string */
        {{2, 'e', 2, 'u', 10, 0, 0, 0, 0, 2}, 10, "bad union branch 5 for field session_id"},
        {{2, 'e', 2, 'u', 1, 0, 0, 0, 0, 2}, 10, "bad union branch -1 for field session_id"},
        {{2, 'e', 2, 'u', 0, 10, 0, 0, 0, 2}, 10, "bad enum index 5 for field type"},
        {{2, 'e', 2, 'u', 0, 0x80, 0x80, 0x80, 0x80, 0x10}, 10, "int out of range for field type"},
        {{2, 'e', 2, 'u', 0, 0, 0, 0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80},
         16,
         "truncated Avro body"},
    };
    for (size_t i = 0; i < XS_ARRAY_SIZE(bodies); i++) {
        m = frame_so(FP_CLICK, bodies[i].body, bodies[i].len, msg);
        decode_bad(c, msg, m, -1, XS_ERR_DECODE, bodies[i].want);
    }
    /* An 11-byte varint. */
    uint8_t longvar[] = {2,    'e',  2,    'u',  0,    0,    0,    0,    0,    0xFF,
                         0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01};
    m = frame_so(FP_CLICK, longvar, sizeof(longvar), msg);
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "bad varint for field ts");

    /* Framing errors. */
    decode_bad(c, NULL, 0, -1, XS_ERR_DECODE, "empty message");
    decode_bad(c, (const uint8_t *)"\xC3\x01\x01", 3, -1, XS_ERR_DECODE,
               "truncated single-object header");
    decode_bad(c, (const uint8_t *)"\x00\x00", 2, -1, XS_ERR_DECODE, "truncated Confluent header");
    decode_bad(c, (const uint8_t *)"{\"json\":1}", 10, -1, XS_ERR_DECODE,
               "not Avro: no magic byte and topic is not bare");
    m = frame_so(0x0123456789abcdefULL, good, sizeof(good), msg);
    decode_bad(c, msg, m, -1, XS_ERR_SCHEMA, "unknown fingerprint 0x0123456789abcdef");
    decode_bad(c, good, sizeof(good), XS_KIND_CART, XS_ERR_DECODE, "");

    /* Huge array counts: cart lines claiming 2^31 items, and an array of
     * zero-byte items (nulls) in an extra field claiming 2^62. */
    const uint8_t cart[] = {2, 'e', 2, 'u', 0, 0, 0xFE, 0xFF, 0xFF, 0xFF, 0x0F, 2, 'a', 2, 0};
    m = frame_so(FP_CART, cart, sizeof(cart), msg);
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "exceeds the message for field lines");

    static const char *W_NULLS =
        "{\"type\":\"record\",\"name\":\"ItemUpdate\",\"fields\":["
        "{\"name\":\"item_id\",\"type\":\"string\"},{\"name\":\"pad\",\"type\":{\"type\":"
        "\"array\",\"items\":\"null\"}},{\"name\":\"ts\",\"type\":\"long\"}]}";
    assert_int_equal(xs_codec_add_writer(c, XS_KIND_ITEM, W_NULLS, 9, err, sizeof(err)), XS_OK);
    const uint8_t nulls_ok[] = {2, 'i', 6, 0, 2}; /* three nulls */
    m = frame_cf(9, nulls_ok, sizeof(nulls_ok), msg);
    decode_ok(c, msg, m, -1, &ev, XS_FRAMING_CONFLUENT);
    assert_true(ev.ts == 1);
    xs_event_clear(&ev);
    const uint8_t nulls_bad[] = {2,    'i',  0xFE, 0xFF, 0xFF, 0xFF, 0xFF,
                                 0xFF, 0xFF, 0xFF, 0x7F, 0,    2};
    m = frame_cf(9, nulls_bad, sizeof(nulls_bad), msg);
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "too many empty items");
    /* Negative block count with a byte size that lies. */
    const uint8_t neg_block[] = {2, 'i', 1, 0x7E, 0, 2};
    m = frame_cf(9, neg_block, sizeof(neg_block), msg);
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "bad block size for field pad");

    /* A NUL inside an id is refused. */
    const uint8_t nul_id[] = {4, 'e', 0, 2, 'u', 0, 0, 0, 0, 0, 2};
    m = frame_so(FP_CLICK, nul_id, sizeof(nul_id), msg);
    decode_bad(c, msg, m, -1, XS_ERR_DECODE, "NUL byte in field event_id");

    /* Invalid arguments. */
    assert_int_equal(
        xs_codec_decode(c, good, sizeof(good), XS_KIND_LIST, &ev, NULL, NULL, err, sizeof(err)),
        XS_ERR_INVALID);
    xs_codec_destroy(c);
    xs_codec_destroy(NULL);
}

/* A deterministic mutation loop: nothing may crash or leak (run under ASan). */
static void test_mutations(void **state)
{
    (void)state;
    xs_codec_t *c = codec_new();
    xs_event_t ev;
    xs_list_t list;
    xs_event_init(&ev, XS_KIND_CART);
    ev.type = XS_CART_ADD;
    ev.event_id = strdup("event");
    ev.user_id = strdup("user");
    ev.session_id = strdup("session");
    assert_int_equal(xs_event_add_line(&ev, "item-a", 3, 1.25, true), XS_OK);
    assert_int_equal(xs_event_add_line(&ev, "item-b", 1, 0, false), XS_OK);
    xs_buf_t buf = {0};
    assert_int_equal(xs_codec_encode_event(c, &ev, &buf), XS_OK);
    xs_event_clear(&ev);
    uint8_t *msg = malloc(buf.len);
    assert_non_null(msg);
    uint32_t seed = 12345;
    size_t ok = 0;
    for (int iter = 0; iter < 20000; iter++) {
        memcpy(msg, buf.data, buf.len);
        int flips = 1 + iter % 3;
        for (int k = 0; k < flips; k++) {
            seed = seed * 1103515245u + 12345u;
            size_t at = 10 + (seed >> 8) % (buf.len - 10);
            seed = seed * 1103515245u + 12345u;
            msg[at] = (uint8_t)(seed >> 16);
        }
        char reason[128];
        xs_err_t rc = xs_codec_decode(c, msg, buf.len, iter % 2 ? XS_KIND_CART : -1, &ev, NULL,
                                      NULL, reason, sizeof(reason));
        if (rc == XS_OK) {
            ok++;
            xs_event_clear(&ev);
        } else {
            assert_true(rc == XS_ERR_DECODE || rc == XS_ERR_SCHEMA);
        }
        if (xs_codec_decode_list(c, msg, buf.len, &list, reason, sizeof(reason)) == XS_OK)
            xs_event_list_clear(&list);
    }
    assert_true(ok > 0); /* some mutations (in string bytes) stay decodable */
    free(msg);
    xs_buf_free(&buf);
    xs_codec_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprints),
        cmocka_unit_test(test_roundtrip_click),
        cmocka_unit_test(test_roundtrip_cart_and_item),
        cmocka_unit_test(test_roundtrip_list),
        cmocka_unit_test(test_list_writer),
        cmocka_unit_test(test_python_interop),
        cmocka_unit_test(test_framings),
        cmocka_unit_test(test_evolution_click),
        cmocka_unit_test(test_evolution_cart_and_item),
        cmocka_unit_test(test_item_versions),
        cmocka_unit_test(test_incompatible_writers),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
