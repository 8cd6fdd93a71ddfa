/*
 * wire — private helpers for the stored binary formats: LEB128 varints,
 * fixed little-endian integers and floats, with a bounds-checked reader.
 */
#ifndef XSELL_LIB_WIRE_H
#define XSELL_LIB_WIRE_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "xsell/common.h"

static inline xs_err_t xs_wire_varint(xs_buf_t *b, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    do {
        uint8_t c = v & 0x7f;
        v >>= 7;
        tmp[n++] = (uint8_t)(c | (v ? 0x80 : 0));
    } while (v);
    return xs_buf_append(b, tmp, n);
}

static inline xs_err_t xs_wire_u64(xs_buf_t *b, uint64_t v)
{
    uint8_t tmp[8];
    for (int i = 0; i < 8; i++)
        tmp[i] = (uint8_t)(v >> (8 * i));
    return xs_buf_append(b, tmp, 8);
}

static inline xs_err_t xs_wire_f32(xs_buf_t *b, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    uint8_t tmp[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return xs_buf_append(b, tmp, 4);
}

/* Reader: every getter fails (returns false) once the input is exhausted or
 * malformed, and sets r->bad; callers check r->bad once at the end. */
typedef struct xs_wire_reader {
    const uint8_t *p;
    const uint8_t *end;
    bool bad;
} xs_wire_reader_t;

static inline uint64_t xs_wire_get_varint(xs_wire_reader_t *r)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p >= r->end) {
            r->bad = true;
            return 0;
        }
        uint8_t c = *r->p++;
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80))
            return v;
    }
    r->bad = true;
    return 0;
}

static inline uint8_t xs_wire_get_u8(xs_wire_reader_t *r)
{
    if (r->p >= r->end) {
        r->bad = true;
        return 0;
    }
    return *r->p++;
}

static inline uint64_t xs_wire_get_u64(xs_wire_reader_t *r)
{
    if (r->end - r->p < 8) {
        r->bad = true;
        r->p = r->end;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    return v;
}

static inline float xs_wire_get_f32(xs_wire_reader_t *r)
{
    if (r->end - r->p < 4) {
        r->bad = true;
        r->p = r->end;
        return 0;
    }
    uint32_t v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 |
                 (uint32_t)r->p[3] << 24;
    r->p += 4;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

#endif
