/*
 * libFuzzer target: the decoders of the records that cross a stage boundary
 * (include/xsell/records.h) on arbitrary bytes.
 *
 * The input goes whole to each of the three decoders (the pair-delta batch,
 * the neighbour list, the catalog entry); their magic bytes pick at most one.
 * Properties beyond "no crash, no leak, no undefined behaviour": a failed
 * decode leaves its output empty and says why; a record that decodes
 * encodes (the encoder and the decoder check the same rules), the encoding
 * decodes to an equal record (xs_*_equal), and that one encodes to the same
 * bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/records.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char errstr[256];

static void same_or_abort(const xs_buf_t *a, const xs_buf_t *b)
{
    if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
        abort();
}

/* A failed decode: an empty output and a message. */
static void failed_or_abort(const void *rec, size_t n)
{
    static const uint8_t
        zero[sizeof(xs_delta_batch_t) + sizeof(xs_neighbour_list_t) + sizeof(xs_catalog_entry_t)];
    if (memcmp(rec, zero, n) != 0 || !errstr[0])
        abort();
}

#define FUZZ_ONE(type, prefix)                                                                     \
    static void fuzz_##prefix(const uint8_t *data, size_t size)                                    \
    {                                                                                              \
        type x = {0}, y = {0};                                                                     \
        xs_buf_t b1 = {0}, b2 = {0};                                                               \
        errstr[0] = 0;                                                                             \
        if (xs_##prefix##_decode(&x, data, size, errstr, sizeof(errstr)) != XS_OK) {               \
            failed_or_abort(&x, sizeof(x));                                                        \
            return;                                                                                \
        }                                                                                          \
        if (xs_##prefix##_encode(&x, &b1, errstr, sizeof(errstr)) != XS_OK ||                      \
            xs_##prefix##_decode(&y, b1.data, b1.len, errstr, sizeof(errstr)) != XS_OK ||          \
            !xs_##prefix##_equal(&x, &y) ||                                                        \
            xs_##prefix##_encode(&y, &b2, errstr, sizeof(errstr)) != XS_OK)                        \
            abort();                                                                               \
        same_or_abort(&b1, &b2);                                                                   \
        xs_##prefix##_clear(&x);                                                                   \
        xs_##prefix##_clear(&y);                                                                   \
        xs_buf_free(&b1);                                                                          \
        xs_buf_free(&b2);                                                                          \
    }

FUZZ_ONE(xs_delta_batch_t, delta_batch)
FUZZ_ONE(xs_neighbour_list_t, neighbour_list)
FUZZ_ONE(xs_catalog_entry_t, catalog_entry)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_delta_batch(data, size);
    fuzz_neighbour_list(data, size);
    fuzz_catalog_entry(data, size);
    return 0;
}
