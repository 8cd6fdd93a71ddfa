/*
 * Private: an Avro schema model parsed from JSON with xs_json (no avro.h).
 *
 * Used by the codec for the Parsing Canonical Form (fingerprints), the
 * reader schemas' field defaults, schema resolution and the bounded
 * decoder (codec_resolve.c). Named types are shared nodes, so a recursive
 * schema is a graph; every node is owned by its xs_aschema_t.
 */
#ifndef XSELL_LIB_CODEC_SCHEMA_H
#define XSELL_LIB_CODEC_SCHEMA_H

#include <stddef.h>
#include <stdint.h>
#include "xsell/common.h"
#include "xsell/json.h"

typedef enum xs_atype {
    XS_AT_NULL = 0,
    XS_AT_BOOLEAN,
    XS_AT_INT,
    XS_AT_LONG,
    XS_AT_FLOAT,
    XS_AT_DOUBLE,
    XS_AT_BYTES,
    XS_AT_STRING,
    XS_AT_RECORD,
    XS_AT_ENUM,
    XS_AT_ARRAY,
    XS_AT_MAP,
    XS_AT_UNION,
    XS_AT_FIXED,
} xs_atype_t;

typedef struct xs_anode xs_anode_t;

typedef struct xs_afield {
    const char *name; /* borrowed from the JSON tree */
    xs_anode_t *type;
    const xs_json_t *deflt;   /* NULL when the field declares no default */
    const xs_json_t *aliases; /* ARRAY of strings or NULL */
} xs_afield_t;

struct xs_anode {
    xs_atype_t type;
    char *fullname;      /* named types (record, enum, fixed) */
    const char *name;    /* unqualified name (points into fullname) */
    xs_afield_t *fields; /* RECORD */
    size_t n_fields;
    const char **symbols; /* ENUM (borrowed) */
    size_t n_symbols;
    int enum_default;      /* ENUM: symbol index or -1 */
    xs_anode_t *child;     /* ARRAY items, MAP values */
    xs_anode_t **branches; /* UNION */
    size_t n_branches;
    size_t fixed_size;      /* FIXED */
    size_t min_size;        /* fewest body bytes a value of this type takes */
    xs_anode_t *next_alloc; /* ownership list */
    int busy;               /* parse time: min_size 0 todo, 1 in progress, 2 done */
};

typedef struct xs_aschema {
    xs_json_t *doc; /* the parsed JSON; names/symbols/defaults point into it */
    xs_anode_t *root;
    xs_anode_t *nodes; /* every node, for freeing */
} xs_aschema_t;

/* Parses and checks a schema; XS_ERR_SCHEMA + errstr on failure. */
xs_err_t xs_codec_schema_parse(const char *json, size_t len, xs_aschema_t **out, char *errstr,
                               size_t errstr_size);
void xs_codec_schema_destroy(xs_aschema_t *schema); /* NULL is a no-op */

/* Appends the Parsing Canonical Form (not NUL-terminated). */
xs_err_t xs_codec_schema_canonical(const xs_aschema_t *schema, xs_buf_t *out);

const char *xs_codec_schema_type_name(xs_atype_t t);

#endif
