/*
 * buf.c — growable byte buffers (xs_buf_t, include/xsell/common.h).
 */
#include "xsell/common.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
