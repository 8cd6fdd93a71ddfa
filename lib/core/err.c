/*
 * err.c — the error enum's strings and the caller's errstr buffer
 * (include/xsell/common.h).
 */
#include "xsell/common.h"

#include <stdarg.h>
#include <stdio.h>

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
