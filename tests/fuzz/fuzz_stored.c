/*
 * libFuzzer target: the stored-format decoders on arbitrary bytes.
 *
 * Input layout: byte 0 picks the column family (users, items, names, meta,
 * neighbours), byte 1 the key length (0..15), then the key, then the value.
 * The value goes through the decoder of its family (xs_profile_decode,
 * xs_sketch_decode, xs_store_records_name_decode, xs_store_records_globals_decode,
 * xs_sketch_lists_decode) and the whole record through xs_inspect_format_record(), the canonical
 * dump formatter. Properties beyond "no crash, no leak, no undefined behaviour": a value that
 * decodes re-encodes, and decoding that encoding and encoding again gives the same bytes (the
 * stored formats are stable under round trips). Neighbour lists that decode, applied onto a summary
 * holding their keys, drop nothing and encode to the input's bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/inspect.h"
#include "xsell/profile.h"
#include "xsell/sketch.h"

static void fuzz_lists(const uint8_t *v, size_t n)
{
    static xs_item_lists_t l;
    static xs_item_t it;
    xs_buf_t b = {0};
    if (xs_sketch_lists_decode(&l, v, n, NULL, 0) == XS_OK) {
        xs_sketch_init(&it);
        for (int cls = 0; cls < XS_CLASS__COUNT; cls++)
            for (int i = 0; i < l.n[cls]; i++)
                if (xs_sketch_add_pair(&it, (xs_class_t)cls, l.top[cls][i].item) != i)
                    abort();
        if (xs_sketch_lists_apply(&it, &l) != 0 ||
            xs_sketch_lists_encode(&it, l.item, &b) != XS_OK || b.len != n ||
            memcmp(b.data, v, n) != 0)
            abort();
    }
    xs_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_or_abort(const xs_buf_t *a, const xs_buf_t *b)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
        abort();
}

static void fuzz_profile(const uint8_t *v, size_t n)
{
    static xs_profile_t p, q;
    xs_buf_t b1 = {0}, b2 = {0};
    if (xs_profile_decode(&p, v, n, NULL, 0) == XS_OK) {
        if (xs_profile_encode(&p, &b1) != XS_OK ||
            xs_profile_decode(&q, b1.data, b1.len, NULL, 0) != XS_OK ||
            xs_profile_encode(&q, &b2) != XS_OK)
            abort();
        same_or_abort(&b1, &b2);
    }
    xs_buf_free(&b1);
    xs_buf_free(&b2);
}

static void fuzz_item(const uint8_t *v, size_t n)
{
    static xs_item_t it, it2;
    xs_buf_t b1 = {0}, b2 = {0};
    if (xs_sketch_decode(&it, v, n, NULL, 0) == XS_OK) {
        if (xs_sketch_encode(&it, &b1) != XS_OK ||
            xs_sketch_decode(&it2, b1.data, b1.len, NULL, 0) != XS_OK ||
            xs_sketch_encode(&it2, &b2) != XS_OK)
            abort();
        same_or_abort(&b1, &b2);
    }
    xs_buf_free(&b1);
    xs_buf_free(&b2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xs_buf_t out = {0};
    if (size < 2)
        return 0;
    xs_cf_t cf = (xs_cf_t)(data[0] % XS_CF__COUNT);
    size_t klen = data[1] % 16;
    data += 2;
    size -= 2;
    if (klen > size)
        klen = size;
    const uint8_t *key = data, *val = data + klen;
    size_t vlen = size - klen;
    switch (cf) {
    case XS_CF_USERS:
        fuzz_profile(val, vlen);
        break;
    case XS_CF_ITEMS:
        fuzz_item(val, vlen);
        break;
    case XS_CF_NEIGHBOURS:
        fuzz_lists(val, vlen);
        break;
    case XS_CF_NAMES: {
        xs_name_rec_t n = {0};
        if (xs_store_records_name_decode(&n, val, vlen, NULL, 0) == XS_OK && !n.id)
            abort();
        xs_store_records_name_rec_clear(&n);
        break;
    }
    default: {
        static xs_globals_t g;
        xs_store_records_globals_decode(&g, val, vlen, NULL, 0);
        break;
    }
    }
    xs_inspect_format_record(cf, key, klen, val, vlen, &out);
    xs_buf_free(&out);
    return 0;
}
