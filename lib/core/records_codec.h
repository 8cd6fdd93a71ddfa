/*
 * records_codec.h — private to the core: what the three record codecs
 * (delta_batch.c, neighbour_list.c, catalog_entry.c; include/xsell/records.h,
 * docs/RECORDS.md) share: the decoding state, error messages
 * ("<record>: <message>"), the two-byte header, and the field readers and
 * writers over wire.h.
 *
 * One rule set per record, checked twice: by the encoder before it writes
 * (so what encodes decodes) and by the decoder while it reads (so what
 * decodes is a record the encoder could have written). The decoder reads
 * with the bounds-checked reader of wire.h and checks every length against
 * the bytes that are there before it allocates, so arbitrary input costs at
 * most a few times its own size in memory (tests/fuzz/fuzz_records.c).
 */
#ifndef XSELL_LIB_RECORDS_CODEC_H
#define XSELL_LIB_RECORDS_CODEC_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "xsell/records.h"

/* Decoding state: the reader, which record, and the first error. */
typedef struct dec {
    xs_wire_reader_t r;
    const uint8_t *start;
    const char *what;
    char *errstr;
    size_t errstr_size;
} dec_t;

static inline xs_err_t failv(char *errstr, size_t errstr_size, const char *what, const char *fmt,
                             va_list ap)
{
    char msg[192];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    xs_err_set(errstr, errstr_size, "%s: %s", what, msg);
    return XS_ERR_DECODE;
}

/* Writes "<record>: <message>" and returns err. */
__attribute__((format(printf, 3, 4))) static inline xs_err_t fail(dec_t *d, xs_err_t err,
                                                                  const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(d->errstr, d->errstr_size, d->what, fmt, ap);
    va_end(ap);
    return err;
}

__attribute__((format(printf, 5, 6))) static inline xs_err_t
efail(char *errstr, size_t errstr_size, const char *what, xs_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(errstr, errstr_size, what, fmt, ap);
    va_end(ap);
    return err;
}

static inline xs_err_t truncated(dec_t *d, const char *where)
{
    return fail(d, XS_ERR_DECODE, "truncated in %s (%zu bytes)", where,
                (size_t)(d->r.end - d->start));
}

static inline size_t left(const dec_t *d)
{
    return (size_t)(d->r.end - d->r.p);
}

/* The two leading bytes: version (1..max) and magic. */
static inline xs_err_t dec_head(dec_t *d, uint8_t max, uint8_t magic)
{
    if (d->r.p >= d->r.end)
        return fail(d, XS_ERR_DECODE, "empty input");
    uint8_t v = d->r.p[0];
    if (v == 0)
        return fail(d, XS_ERR_DECODE, "version 0 is not a version (corrupt or not a record)");
    if (v > max)
        return fail(d, XS_ERR_VERSION, "version %u is newer than this build reads (%u)", v, max);
    if (left(d) < 2)
        return truncated(d, "the header");
    if (d->r.p[1] != magic)
        return fail(d, XS_ERR_DECODE, "not a %s (magic 0x%02x, expected '%c')", d->what, d->r.p[1],
                    magic);
    d->r.p += 2;
    return XS_OK;
}

static inline xs_err_t dec_end(dec_t *d)
{
    if (d->r.bad)
        return truncated(d, "the end");
    if (d->r.p != d->r.end)
        return fail(d, XS_ERR_DECODE, "%zu trailing bytes after the record", left(d));
    return XS_OK;
}

/* A varint that must fit max. */
static inline bool get_bounded(dec_t *d, uint64_t max, uint64_t *v)
{
    *v = xs_wire_get_varint(&d->r);
    return !d->r.bad && *v <= max;
}

static inline int64_t get_i64(xs_wire_reader_t *r)
{
    return (int64_t)xs_wire_get_u64(r);
}

static inline xs_err_t put_i64(xs_buf_t *b, int64_t v)
{
    return xs_wire_u64(b, (uint64_t)v);
}

static inline xs_err_t put_f64(xs_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return xs_wire_u64(b, u);
}

static inline double get_f64(xs_wire_reader_t *r)
{
    uint64_t u = xs_wire_get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static inline uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static inline int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static inline size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* A string's rules: at most max bytes, well-formed UTF-8. */
static inline xs_err_t check_str(const char *what, const char *field, const char *s, size_t max,
                                 char *errstr, size_t errstr_size)
{
    size_t n = slen(s);
    if (n > max)
        return efail(errstr, errstr_size, what, XS_ERR_TOO_LARGE, "%s too long (%zu > %zu bytes)",
                     field, n, max);
    if (n && !xs_str_utf8_valid(s, n))
        return efail(errstr, errstr_size, what, XS_ERR_INVALID, "%s is not valid UTF-8", field);
    return XS_OK;
}

static inline xs_err_t put_str(xs_buf_t *b, const char *s)
{
    size_t n = slen(s);
    xs_err_t err = xs_wire_varint(b, n);
    return err ? err : xs_buf_append(b, s, n);
}

/* Reads a string of at most max bytes into *out (NULL when empty). */
static inline xs_err_t get_str(dec_t *d, const char *field, size_t max, bool required, char **out)
{
    *out = NULL;
    uint64_t n = xs_wire_get_varint(&d->r);
    if (d->r.bad || n > left(d))
        return truncated(d, field);
    if (n > max)
        return fail(d, XS_ERR_TOO_LARGE, "%s too long (%llu > %zu bytes)", field,
                    (unsigned long long)n, max);
    if (n == 0) {
        if (required)
            return fail(d, XS_ERR_DECODE, "empty %s", field);
        return XS_OK;
    }
    if (!xs_str_utf8_valid((const char *)d->r.p, (size_t)n))
        return fail(d, XS_ERR_DECODE, "%s is not valid UTF-8", field);
    if (memchr(d->r.p, 0, (size_t)n)) /* strings are C strings in memory */
        return fail(d, XS_ERR_DECODE, "%s contains a NUL byte", field);
    if (!(*out = xs_str_ndup((const char *)d->r.p, (size_t)n)))
        return fail(d, XS_ERR_NOMEM, "out of memory");
    d->r.p += n;
    return XS_OK;
}

static inline bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Grows *v (of *cap elements of size) to hold n + 1. */
static inline xs_err_t grow(void **v, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return XS_OK;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*v, c * size);
    if (!p)
        return XS_ERR_NOMEM;
    *v = p;
    *cap = c;
    return XS_OK;
}

#endif
