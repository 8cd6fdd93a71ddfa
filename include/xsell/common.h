/*
 * xsell — common definitions: the error enum, growable byte buffers and
 * helpers every module uses. One header for three small modules of the
 * core: lib/core/err.c (xs_err_*), buf.c (xs_buf_*) and str.c (xs_str_*).
 *
 * Error convention (one rule for the whole API): functions that can fail
 * return xs_err_t; XS_OK is 0. Functions that have more to say write a
 * human-readable message into a caller-supplied `errstr` buffer of
 * `errstr_size` bytes (always NUL-terminated when errstr_size > 0).
 */
#ifndef XSELL_COMMON_H
#define XSELL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum xs_err {
    XS_OK = 0,
    XS_ERR_NOMEM,      /* allocation failed */
    XS_ERR_INVALID,    /* invalid argument or usage */
    XS_ERR_IO,         /* file or system I/O failed */
    XS_ERR_DECODE,     /* bytes do not decode (Avro, JSON, CSV, stored format) */
    XS_ERR_SCHEMA,     /* unknown schema, fingerprint or schema id; schemas incompatible */
    XS_ERR_VALIDATION, /* decoded but fails validation (missing/absurd fields) */
    XS_ERR_TOO_LARGE,  /* a size limit was exceeded */
    XS_ERR_VERSION,    /* stored value of a newer format version than this code */
    XS_ERR_NOT_FOUND,  /* looked-up thing does not exist */
    XS_ERR_KAFKA,      /* librdkafka reported an error */
    XS_ERR_STORE,      /* RocksDB reported an error */
    XS_ERR_CONFIG,     /* bad configuration */
    XS_ERR_EOF,        /* end of input */
    XS_ERR_NOSPACE,    /* the state store's device is full (RocksDB NoSpace) */
    XS_ERR_TIMEOUT,    /* gave up waiting (e.g. for an unreachable broker) */
    XS_ERR_INPUT_LOST, /* input deleted before it was consumed (offset out of range) */
    XS_ERR__COUNT
} xs_err_t;

/* Static, never NULL. */
const char *xs_err_str(xs_err_t err);

/* Writes a formatted message into errstr (may be NULL or size 0). */
void xs_err_set(char *errstr, size_t errstr_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * Growable byte buffer. Zero-initialise ({0}) before first use; release
 * with xs_buf_free(). data is NULL until something is appended.
 */
typedef struct xs_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
} xs_buf_t;

xs_err_t xs_buf_reserve(xs_buf_t *buf, size_t extra);
xs_err_t xs_buf_append(xs_buf_t *buf, const void *data, size_t len);
xs_err_t xs_buf_append_u8(xs_buf_t *buf, uint8_t v);
xs_err_t xs_buf_append_str(xs_buf_t *buf, const char *s);
xs_err_t xs_buf_printf(xs_buf_t *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void xs_buf_reset(xs_buf_t *buf); /* len = 0, keeps memory */
void xs_buf_free(xs_buf_t *buf);  /* releases memory; buf is zeroed */

/* A whole decimal int64 in s (no blanks, no trailing characters). */
bool xs_str_parse_i64(const char *s, int64_t *out);

/* A configuration pair passed through to a library (librdkafka, RocksDB). */
typedef struct xs_kv {
    const char *key;
    const char *value;
} xs_kv_t;

/* strdup of (s, len) with NUL termination; NULL on allocation failure. */
char *xs_str_ndup(const char *s, size_t len);
char *xs_str_dup(const char *s); /* NULL in, NULL out */

/* true when s[0..len) is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * encoded UTF-16 surrogates, nothing above U+10FFFF). */
bool xs_str_utf8_valid(const char *s, size_t len);

#define XS_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define XS_MIN(a, b) ((a) < (b) ? (a) : (b))
#define XS_MAX(a, b) ((a) > (b) ? (a) : (b))

#ifdef __cplusplus
}
#endif
#endif
