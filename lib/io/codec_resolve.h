/*
 * Private: Avro schema resolution and the bounded body decoder (no avro.h).
 *
 * A resolver is compiled once per (writer schema, reader schema) pair and
 * decodes a body written with the writer schema into a tree of xs_aval_t
 * shaped like the *reader* schema: records hold their reader fields in
 * reader order (missing ones filled from reader defaults), enums hold the
 * reader symbol index, unions of the reader hold the reader branch.
 * Strings and bytes in the tree are borrowed: they point into the message
 * (or into the reader schema's JSON for defaults), so the tree is only
 * valid while both are.
 */
#ifndef XSELL_LIB_CODEC_RESOLVE_H
#define XSELL_LIB_CODEC_RESOLVE_H

#include <stddef.h>
#include <stdint.h>
#include "codec_schema.h"

typedef struct xs_aval xs_aval_t;
struct xs_aval {
    xs_atype_t type; /* the reader type */
    union {
        bool b;
        int64_t l; /* INT, LONG */
        double d;  /* FLOAT, DOUBLE */
        struct {
            const char *p;
            size_t len;
        } s;   /* STRING, BYTES, FIXED (borrowed, not NUL-terminated) */
        int e; /* ENUM: reader symbol index */
        struct {
            xs_aval_t *v;
            size_t n;
        } a; /* RECORD: reader fields in reader order; ARRAY: items */
        struct {
            int branch; /* reader branch */
            xs_aval_t *v;
        } un; /* UNION */
    } u;
};

/*
 * A bump allocator: everything is released at once by xs_codec_resolve_pool_free(). A
 * zeroed pool ({0}) allocates every chunk; xs_codec_resolve_pool_init() gives it a first
 * region of the caller's (on its stack, say), used before any malloc, so
 * the tree of a typical message costs no allocation at all.
 */
typedef struct xs_apool_chunk xs_apool_chunk_t;
typedef struct xs_apool {
    xs_apool_chunk_t *head;
    unsigned char *local; /* the caller's region (never freed here), or NULL */
    size_t local_used, local_cap;
} xs_apool_t;

void xs_codec_resolve_pool_init(xs_apool_t *pool, void *local, size_t local_size);
void *xs_codec_resolve_pool_alloc(xs_apool_t *pool, size_t size); /* zeroed; NULL on failure */
void xs_codec_resolve_pool_free(xs_apool_t *pool);                /* pool is reusable afterwards */

typedef struct xs_resolver xs_resolver_t;

/*
 * Compiles the resolution of writer against reader. The schemas must
 * outlive the resolver. XS_ERR_SCHEMA + errstr ("field lines.quantity:
 * writer string cannot be read as int") when incompatible.
 */
xs_err_t xs_codec_resolve_new(const xs_aschema_t *writer, const xs_aschema_t *reader,
                              xs_resolver_t **out, char *errstr, size_t errstr_size);
void xs_codec_resolve_destroy(xs_resolver_t *res); /* NULL is a no-op */

/*
 * Decodes exactly len bytes of body. The tree is allocated from pool.
 * XS_ERR_DECODE + reason on malformed input; never allocates more than a
 * small multiple of len. Safe to call concurrently on one resolver.
 */
xs_err_t xs_codec_resolve_decode(const xs_resolver_t *res, const uint8_t *data, size_t len,
                                 xs_apool_t *pool, xs_aval_t **out, char *reason,
                                 size_t reason_size);

/* Reader field index by name in a reader record node; -1 when absent. */
int xs_codec_resolve_field_index(const xs_anode_t *record, const char *name);

#endif
