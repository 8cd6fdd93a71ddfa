/*
 * xsell — a small JSON reader (DOM) and writer helpers.
 *
 * Used for the jsonl dataset format, Avro schema documents (canonical form
 * and field defaults) and HTTP/CLI output. The parser is strict RFC 8259
 * with a nesting limit (XS_JSON_MAX_DEPTH) so hostile input cannot exhaust
 * the stack. A parsed tree is owned by its root: xs_json_free(root) frees
 * everything; getters return borrowed pointers into the tree.
 */
#ifndef XSELL_JSON_H
#define XSELL_JSON_H

#include <stddef.h>
#include <stdbool.h>
#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define XS_JSON_MAX_DEPTH 64

typedef enum xs_json_type {
    XS_JSON_NULL = 0,
    XS_JSON_BOOL,
    XS_JSON_NUMBER,
    XS_JSON_STRING,
    XS_JSON_ARRAY,
    XS_JSON_OBJECT,
} xs_json_type_t;

typedef struct xs_json xs_json_t;

/* Parses text[0..len). NULL + errstr ("line 3 col 7: expected ','") on error. */
xs_json_t *xs_json_parse(const char *text, size_t len, char *errstr, size_t errstr_size);
void xs_json_free(xs_json_t *root); /* NULL is a no-op */

xs_json_type_t xs_json_type(const xs_json_t *v);
bool xs_json_bool(const xs_json_t *v);     /* false unless BOOL true */
double xs_json_number(const xs_json_t *v); /* 0 unless NUMBER */
/* The source text of a NUMBER (for exact int64 parsing); NULL otherwise. */
const char *xs_json_number_text(const xs_json_t *v);
const char *xs_json_string(const xs_json_t *v); /* NUL-terminated UTF-8; NULL unless STRING */
size_t xs_json_string_len(const xs_json_t *v);  /* may contain \u0000 */
size_t xs_json_size(const xs_json_t *v);        /* elements of ARRAY / members of OBJECT */
const xs_json_t *xs_json_at(const xs_json_t *v,
                            size_t i);                    /* ARRAY element or OBJECT member value */
const char *xs_json_key_at(const xs_json_t *v, size_t i); /* OBJECT member key (in source order) */
const xs_json_t *xs_json_get(const xs_json_t *obj, const char *key); /* NULL when absent */

/* Appends s[0..len) as a quoted, escaped JSON string. */
xs_err_t xs_json_write_string(xs_buf_t *out, const char *s, size_t len);
/* Appends v re-serialised compactly (no whitespace), members in source order. */
xs_err_t xs_json_write(xs_buf_t *out, const xs_json_t *v);

#ifdef __cplusplus
}
#endif
#endif
