/*
 * libFuzzer target: the event decoder on arbitrary bytes.
 *
 * The first input byte picks how the topic is configured (bare framing
 * allowed for ClickEvent, CartEvent or ItemUpdate, or not at all); the rest
 * is the message value, decoded with xs_codec_decode() as the worker does
 * (single-object, Confluent with the reader schemas registered under ids
 * 1..3, or bare), then validated. The same bytes also go through
 * xs_codec_decode_list(). Properties checked beyond "no crash, no leak, no
 * undefined behaviour" (ASan + UBSan): a decoded event that validates
 * re-encodes, and the re-encoding decodes to an event that encodes to the
 * same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/codec.h"
#include "xsell/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static xs_codec_t *codec;

static xs_codec_t *get_codec(void)
{
    char errstr[256];
    if (codec)
        return codec;
    codec = xs_codec_new(errstr, sizeof(errstr));
    if (!codec)
        abort();
    for (int k = XS_KIND_CLICK; k <= XS_KIND_ITEM; k++)
        if (xs_codec_add_writer(codec, (xs_event_kind_t)k, xs_codec_schema_json((xs_event_kind_t)k),
                                k + 1, errstr, sizeof(errstr)) != XS_OK)
            abort();
    return codec;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xs_codec_t *c = get_codec();
    xs_event_t ev, ev2;
    xs_event_kind_t kind;
    xs_framing_t framing;
    xs_list_t list;
    xs_buf_t b1 = {0}, b2 = {0};
    xs_event_limits_t lim;
    char reason[256];
    if (size < 1)
        return 0;
    int bare = (int)(data[0] % 4) - 1; /* -1: no bare framing */
    data++;
    size--;
    xs_event_limits_default(&lim);
    if (xs_codec_decode(c, data, size, bare, &ev, &kind, &framing, reason, sizeof(reason)) ==
        XS_OK) {
        if (xs_event_validate(&ev, &lim, reason, sizeof(reason)) == XS_OK) {
            if (xs_codec_encode_event(c, &ev, &b1) != XS_OK)
                abort();
            if (xs_codec_decode(c, b1.data, b1.len, -1, &ev2, &kind, &framing, reason,
                                sizeof(reason)) != XS_OK)
                abort();
            if (xs_codec_encode_event(c, &ev2, &b2) != XS_OK || b1.len != b2.len ||
                memcmp(b1.data, b2.data, b1.len) != 0)
                abort();
            xs_event_clear(&ev2);
        }
        xs_event_clear(&ev);
    }
    xs_event_list_init(&list);
    if (xs_codec_decode_list(c, data, size, &list, reason, sizeof(reason)) == XS_OK)
        xs_event_list_clear(&list);
    xs_buf_free(&b1);
    xs_buf_free(&b2);
    return 0;
}
