/*
 * common.c — error strings, growable buffers, string helpers.
 */
#include "xsell/common.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_names[XS_ERR__COUNT] = {
    [XS_OK] = "success",
    [XS_ERR_NOMEM] = "out of memory",
    [XS_ERR_INVALID] = "invalid argument",
    [XS_ERR_IO] = "I/O error",
    [XS_ERR_DECODE] = "decode error",
    [XS_ERR_SCHEMA] = "schema error",
    [XS_ERR_VALIDATION] = "validation failed",
    [XS_ERR_TOO_LARGE] = "size limit exceeded",
    [XS_ERR_VERSION] = "unsupported format version",
    [XS_ERR_NOT_FOUND] = "not found",
    [XS_ERR_KAFKA] = "Kafka error",
    [XS_ERR_STORE] = "state store error",
    [XS_ERR_CONFIG] = "configuration error",
    [XS_ERR_EOF] = "end of input",
    [XS_ERR_NOSPACE] = "no space left on the state device",
    [XS_ERR_TIMEOUT] = "timed out",
    [XS_ERR_INPUT_LOST] = "input lost",
};

const char *xs_err_str(xs_err_t err)
{
    if ((int)err < 0 || err >= XS_ERR__COUNT)
        return "unknown error";
    return err_names[err];
}

void xs_err_set(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    if (!errstr || errstr_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

xs_err_t xs_buf_reserve(xs_buf_t *buf, size_t extra)
{
    if (buf->len + extra <= buf->cap)
        return XS_OK;
    size_t cap = buf->cap ? buf->cap : 64;
    while (cap < buf->len + extra) {
        if (cap > SIZE_MAX / 2)
            return XS_ERR_NOMEM;
        cap *= 2;
    }
    uint8_t *data = realloc(buf->data, cap);
    if (!data)
        return XS_ERR_NOMEM;
    buf->data = data;
    buf->cap = cap;
    return XS_OK;
}

xs_err_t xs_buf_append(xs_buf_t *buf, const void *data, size_t len)
{
    if (len == 0)
        return XS_OK;
    xs_err_t err = xs_buf_reserve(buf, len);
    if (err)
        return err;
    memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return XS_OK;
}

xs_err_t xs_buf_append_u8(xs_buf_t *buf, uint8_t v)
{
    return xs_buf_append(buf, &v, 1);
}

xs_err_t xs_buf_append_str(xs_buf_t *buf, const char *s)
{
    return xs_buf_append(buf, s, strlen(s));
}

xs_err_t xs_buf_printf(xs_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return XS_ERR_INVALID;
    xs_err_t err = xs_buf_reserve(buf, (size_t)n + 1);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return XS_OK;
}

void xs_buf_reset(xs_buf_t *buf)
{
    buf->len = 0;
}

void xs_buf_free(xs_buf_t *buf)
{
    free(buf->data);
    buf->data = NULL;
    buf->len = buf->cap = 0;
}

char *xs_str_ndup(const char *s, size_t len)
{
    char *p = malloc(len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *xs_str_dup(const char *s)
{
    return s ? xs_str_ndup(s, strlen(s)) : NULL;
}

bool xs_str_utf8_valid(const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            n = 1, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3, cp = c & 0x07;
        } else {
            return false; /* a continuation byte first, or 0xF8..0xFF */
        }
        for (size_t k = 1; k <= n; k++) {
            if (i + k >= len || (s[i + k] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        /* overlong forms, beyond U+10FFFF, UTF-16 surrogates */
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += n + 1;
    }
    return true;
}

bool xs_str_parse_i64(const char *s, int64_t *out)
{
    if (!*s || isspace((unsigned char)*s))
        return false;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}
