/*
 * codec_resolve.c — Avro schema resolution and a bounded body decoder.
 *
 * Why our own: Avro-C's resolved readers do not fill reader defaults for
 * fields the writer lacks, and its binary reader allocates whatever length
 * a message claims (a 4-byte varint can ask for gigabytes). Messages come
 * from Kafka and are hostile until proven otherwise, so the body is walked
 * here with every length and count checked against the bytes left.
 *
 * Resolution (Avro specification, "Schema Resolution") is compiled once per
 * writer schema into a tree of xs_rprog_t, one per (writer, reader) node
 * pair reached:
 *   R_PRIM    same primitive, or a promotion int->long/float/double,
 *             long->float/double, float->double, string<->bytes;
 *   R_RECORD  same unqualified name (record aliases are not used); writer fields
 *             matched by name or reader field alias; unmatched writer
 *             fields are skipped; reader fields the writer lacks take the
 *             reader default, converted to a value once at compile time
 *             (no default -> the writer is rejected);
 *   R_ENUM    writer symbol index -> reader index by name; an unknown
 *             symbol maps to the reader enum's default, or fails per
 *             message when it has none (the spec's rule);
 *   R_ARRAY   items resolved recursively;
 *   R_FIXED   same name and size;
 *   R_WUNION  writer union: one program per writer branch (NULL when that
 *             branch cannot be read: an error only if a message uses it);
 *   R_RUNION  reader union, writer not: the first reader branch of the same
 *             type (and name), else the first one the writer promotes to.
 * Reader maps are not supported (no reader schema has one); writer maps
 * are fine where they are skipped.
 *
 * Body encoding (Avro binary): int/long are zig-zag varints (at most 5/10
 * bytes), float/double little-endian IEEE, boolean one byte 0/1,
 * string/bytes a long length then the bytes, enum an int index, union a
 * long branch index then the value, array/map blocks of (long count
 * [, long byte size when count < 0], items) ending with count 0.
 *
 * Bounds: a string length must fit in the remaining bytes; an array block
 * count must be at most remaining / min_size(item), and items that take no
 * bytes (null, empty records) are capped at XS_ZERO_SIZE_ITEMS per message;
 * nesting is capped at XS_DECODE_MAX_DEPTH. Memory is thus a small multiple
 * of the message size. Array items are gathered in a temporary growable
 * buffer (the first XS_ARRAY_LOCAL_ITEMS on the stack, so a short array
 * costs no malloc) and copied into the pool once, so many one-item blocks
 * cost linear, not quadratic, memory.
 */
#include "codec_resolve.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XS_DECODE_MAX_DEPTH 64
#define XS_ZERO_SIZE_ITEMS 65536
#define XS_APOOL_CHUNK 4096
#define XS_ARRAY_LOCAL_ITEMS 16 /* array items gathered on the stack before any malloc */

/* ======================================================================== */
/* Pool                                                                     */
/* ======================================================================== */

struct xs_apool_chunk {
    xs_apool_chunk_t *next;
    size_t used, cap;
    max_align_t data[]; /* cap bytes */
};

void xs_codec_resolve_pool_init(xs_apool_t *pool, void *local, size_t local_size)
{
    uintptr_t a = (uintptr_t)local;
    uintptr_t aligned = (a + sizeof(max_align_t) - 1) & ~(uintptr_t)(sizeof(max_align_t) - 1);
    pool->head = NULL;
    pool->local = NULL;
    pool->local_used = pool->local_cap = 0;
    if (local && local_size > aligned - a) {
        pool->local = (unsigned char *)aligned;
        pool->local_cap = local_size - (aligned - a);
    }
}

void *xs_codec_resolve_pool_alloc(xs_apool_t *pool, size_t size)
{
    if (size > SIZE_MAX - sizeof(max_align_t))
        return NULL;
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (size == 0)
        size = sizeof(max_align_t);
    if (pool->local && pool->local_cap - pool->local_used >= size) {
        void *p = pool->local + pool->local_used;
        pool->local_used += size;
        memset(p, 0, size);
        return p;
    }
    xs_apool_chunk_t *c = pool->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > XS_APOOL_CHUNK ? size : XS_APOOL_CHUNK;
        if (cap > SIZE_MAX - sizeof(*c))
            return NULL;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = pool->head;
        pool->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

void xs_codec_resolve_pool_free(xs_apool_t *pool)
{
    xs_apool_chunk_t *c = pool->head;
    while (c) {
        xs_apool_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    pool->head = NULL;
    pool->local_used = 0;
}

/* ======================================================================== */
/* Compiling a resolver                                                     */
/* ======================================================================== */

typedef enum rop { R_PRIM, R_RECORD, R_ENUM, R_ARRAY, R_FIXED, R_WUNION, R_RUNION } rop_t;

typedef struct xs_rprog xs_rprog_t;
struct xs_rprog {
    rop_t op;
    const xs_anode_t *w, *r;
    /* R_RECORD */
    int *wf_to_rf;         /* per writer field: reader field index or -1 (skip) */
    xs_rprog_t **wf_prog;  /* per writer field (NULL when skipped) */
    xs_aval_t *rf_default; /* per reader field; used where !rf_from_writer */
    bool *rf_from_writer;
    /* R_ENUM: per writer symbol, reader symbol index or -1 */
    int *sym_map;
    /* R_ARRAY, R_RUNION */
    xs_rprog_t *child;
    int rbranch; /* R_RUNION */
    /* R_WUNION: per writer branch, NULL when unreadable */
    xs_rprog_t **wb;
    xs_rprog_t *next_alloc;
};

struct xs_resolver {
    xs_rprog_t *root;
    xs_rprog_t *progs; /* ownership list */
    xs_apool_t pool;   /* default values */
};

typedef struct cctx {
    xs_resolver_t *res;
    char path[256];
    char *errstr;
    size_t errstr_size;
} cctx_t;

static void cerr(cctx_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cerr(cctx_t *c, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (c->path[0])
        xs_err_set(c->errstr, c->errstr_size, "field %s: %s", c->path, msg);
    else
        xs_err_set(c->errstr, c->errstr_size, "%s", msg);
}

static const char *tname(const xs_anode_t *n)
{
    return n->fullname ? n->fullname : xs_codec_schema_type_name(n->type);
}

int xs_codec_resolve_field_index(const xs_anode_t *record, const char *name)
{
    if (!record || record->type != XS_AT_RECORD)
        return -1;
    for (size_t i = 0; i < record->n_fields; i++)
        if (strcmp(record->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}

static bool promotable(xs_atype_t w, xs_atype_t r)
{
    if (w == r)
        return w <= XS_AT_STRING;
    switch (w) {
    case XS_AT_INT:
        return r == XS_AT_LONG || r == XS_AT_FLOAT || r == XS_AT_DOUBLE;
    case XS_AT_LONG:
        return r == XS_AT_FLOAT || r == XS_AT_DOUBLE;
    case XS_AT_FLOAT:
        return r == XS_AT_DOUBLE;
    case XS_AT_STRING:
        return r == XS_AT_BYTES;
    case XS_AT_BYTES:
        return r == XS_AT_STRING;
    default:
        return false;
    }
}

static bool json_array_has(const xs_json_t *arr, const char *s)
{
    for (size_t i = 0; i < xs_json_size(arr); i++) {
        const char *a = xs_json_string(xs_json_at(arr, i));
        if (a && strcmp(a, s) == 0)
            return true;
    }
    return false;
}

/* Same unqualified name (the spec's rule for records, enums and fixed). */
static bool names_match(const xs_anode_t *w, const xs_anode_t *r)
{
    return strcmp(w->name, r->name) == 0;
}

static xs_rprog_t *prog_new(cctx_t *c, rop_t op, const xs_anode_t *w, const xs_anode_t *r)
{
    xs_rprog_t *p = calloc(1, sizeof(*p));
    if (!p) {
        cerr(c, "out of memory");
        return NULL;
    }
    p->op = op;
    p->w = w;
    p->r = r;
    p->next_alloc = c->res->progs;
    c->res->progs = p;
    return p;
}

static xs_err_t default_value(cctx_t *c, const xs_anode_t *r, const xs_json_t *j, xs_aval_t *out,
                              int depth);

static xs_err_t default_record(cctx_t *c, const xs_anode_t *r, const xs_json_t *j, xs_aval_t *out,
                               int depth)
{
    if (xs_json_type(j) != XS_JSON_OBJECT) {
        cerr(c, "default for record %s is not an object", r->fullname);
        return XS_ERR_SCHEMA;
    }
    out->u.a.n = r->n_fields;
    out->u.a.v = xs_codec_resolve_pool_alloc(&c->res->pool, r->n_fields * sizeof(xs_aval_t));
    if (!out->u.a.v && r->n_fields) {
        cerr(c, "out of memory");
        return XS_ERR_NOMEM;
    }
    for (size_t i = 0; i < r->n_fields; i++) {
        const xs_json_t *fj = xs_json_get(j, r->fields[i].name);
        if (!fj)
            fj = r->fields[i].deflt;
        if (!fj) {
            cerr(c, "default for record %s lacks field %s", r->fullname, r->fields[i].name);
            return XS_ERR_SCHEMA;
        }
        xs_err_t err = default_value(c, r->fields[i].type, fj, &out->u.a.v[i], depth + 1);
        if (err)
            return err;
    }
    return XS_OK;
}

/* Converts a reader default (JSON) into a value of reader type r. */
static xs_err_t default_value(cctx_t *c, const xs_anode_t *r, const xs_json_t *j, xs_aval_t *out,
                              int depth)
{
    xs_json_type_t jt = xs_json_type(j);
    out->type = r->type;
    if (depth > XS_DECODE_MAX_DEPTH) {
        cerr(c, "default nested too deeply");
        return XS_ERR_SCHEMA;
    }
    switch (r->type) {
    case XS_AT_NULL:
        if (jt == XS_JSON_NULL)
            return XS_OK;
        break;
    case XS_AT_BOOLEAN:
        if (jt == XS_JSON_BOOL) {
            out->u.b = xs_json_bool(j);
            return XS_OK;
        }
        break;
    case XS_AT_INT:
    case XS_AT_LONG:
        if (jt == XS_JSON_NUMBER) {
            const char *t = xs_json_number_text(j);
            char *end = NULL;
            errno = 0;
            long long v = strtoll(t, &end, 10);
            if (*end || errno || (r->type == XS_AT_INT && (v < INT32_MIN || v > INT32_MAX))) {
                cerr(c, "default %s is not a valid %s", t, xs_codec_schema_type_name(r->type));
                return XS_ERR_SCHEMA;
            }
            out->u.l = v;
            return XS_OK;
        }
        break;
    case XS_AT_FLOAT:
    case XS_AT_DOUBLE:
        if (jt == XS_JSON_NUMBER) {
            out->u.d =
                r->type == XS_AT_FLOAT ? (double)(float)xs_json_number(j) : xs_json_number(j);
            return XS_OK;
        }
        break;
    case XS_AT_STRING:
    case XS_AT_BYTES:
    case XS_AT_FIXED:
        if (jt == XS_JSON_STRING) {
            out->u.s.p = xs_json_string(j);
            out->u.s.len = xs_json_string_len(j);
            if (r->type != XS_AT_STRING) {
                /* Bytes defaults are code points 0-255; only ASCII is supported here. */
                for (size_t i = 0; i < out->u.s.len; i++)
                    if ((unsigned char)out->u.s.p[i] >= 0x80) {
                        cerr(c, "non-ASCII bytes default is not supported");
                        return XS_ERR_SCHEMA;
                    }
                if (r->type == XS_AT_FIXED && out->u.s.len != r->fixed_size) {
                    cerr(c, "default for fixed %s has the wrong size", r->fullname);
                    return XS_ERR_SCHEMA;
                }
            }
            return XS_OK;
        }
        break;
    case XS_AT_ENUM:
        if (jt == XS_JSON_STRING) {
            for (size_t i = 0; i < r->n_symbols; i++)
                if (strcmp(r->symbols[i], xs_json_string(j)) == 0) {
                    out->u.e = (int)i;
                    return XS_OK;
                }
            cerr(c, "default \"%s\" is not a symbol of %s", xs_json_string(j), r->fullname);
            return XS_ERR_SCHEMA;
        }
        break;
    case XS_AT_ARRAY:
        if (jt == XS_JSON_ARRAY) {
            size_t n = xs_json_size(j);
            out->u.a.n = n;
            out->u.a.v = xs_codec_resolve_pool_alloc(&c->res->pool, n * sizeof(xs_aval_t));
            if (!out->u.a.v && n) {
                cerr(c, "out of memory");
                return XS_ERR_NOMEM;
            }
            for (size_t i = 0; i < n; i++) {
                xs_err_t err =
                    default_value(c, r->child, xs_json_at(j, i), &out->u.a.v[i], depth + 1);
                if (err)
                    return err;
            }
            return XS_OK;
        }
        break;
    case XS_AT_RECORD:
        return default_record(c, r, j, out, depth);
    case XS_AT_UNION:
        /* A union default is a value of the union's first branch. */
        out->u.un.branch = 0;
        out->u.un.v = xs_codec_resolve_pool_alloc(&c->res->pool, sizeof(xs_aval_t));
        if (!out->u.un.v) {
            cerr(c, "out of memory");
            return XS_ERR_NOMEM;
        }
        return default_value(c, r->branches[0], j, out->u.un.v, depth + 1);
    case XS_AT_MAP:
        cerr(c, "maps are not supported in reader schemas");
        return XS_ERR_SCHEMA;
    }
    cerr(c, "default does not match reader type %s", tname(r));
    return XS_ERR_SCHEMA;
}

static xs_rprog_t *compile(cctx_t *c, const xs_anode_t *w, const xs_anode_t *r, int depth);

static xs_rprog_t *compile_record(cctx_t *c, const xs_anode_t *w, const xs_anode_t *r, int depth)
{
    xs_rprog_t *p = prog_new(c, R_RECORD, w, r);
    if (!p)
        return NULL;
    size_t nw = w->n_fields, nr = r->n_fields;
    p->wf_to_rf = calloc(nw ? nw : 1, sizeof(*p->wf_to_rf));
    p->wf_prog = calloc(nw ? nw : 1, sizeof(*p->wf_prog));
    p->rf_from_writer = calloc(nr ? nr : 1, sizeof(*p->rf_from_writer));
    p->rf_default = xs_codec_resolve_pool_alloc(&c->res->pool, (nr ? nr : 1) * sizeof(xs_aval_t));
    if (!p->wf_to_rf || !p->wf_prog || !p->rf_from_writer || !p->rf_default) {
        cerr(c, "out of memory");
        return NULL;
    }
    size_t path_len = strlen(c->path);
    for (size_t i = 0; i < nw; i++) {
        const char *wname = w->fields[i].name;
        int ri = xs_codec_resolve_field_index(r, wname);
        for (size_t k = 0; ri < 0 && k < nr; k++)
            if (r->fields[k].aliases && json_array_has(r->fields[k].aliases, wname))
                ri = (int)k;
        if (ri >= 0 && p->rf_from_writer[ri])
            ri = -1; /* already filled by an earlier writer field: skip this one */
        p->wf_to_rf[i] = ri;
        if (ri < 0)
            continue;
        snprintf(c->path + path_len, sizeof(c->path) - path_len, "%s%s", path_len ? "." : "",
                 r->fields[ri].name);
        p->wf_prog[i] = compile(c, w->fields[i].type, r->fields[ri].type, depth + 1);
        if (!p->wf_prog[i])
            return NULL;
        c->path[path_len] = '\0';
        p->rf_from_writer[ri] = true;
    }
    for (size_t k = 0; k < nr; k++) {
        if (p->rf_from_writer[k])
            continue;
        snprintf(c->path + path_len, sizeof(c->path) - path_len, "%s%s", path_len ? "." : "",
                 r->fields[k].name);
        if (!r->fields[k].deflt) {
            cerr(c, "missing in the writer schema and the reader declares no default");
            return NULL;
        }
        if (default_value(c, r->fields[k].type, r->fields[k].deflt, &p->rf_default[k], 0))
            return NULL;
        c->path[path_len] = '\0';
    }
    return p;
}

static xs_rprog_t *compile(cctx_t *c, const xs_anode_t *w, const xs_anode_t *r, int depth)
{
    xs_rprog_t *p = NULL;
    if (depth > XS_DECODE_MAX_DEPTH) {
        cerr(c, "schemas nested too deeply");
        return NULL;
    }
    if (w->type == XS_AT_UNION) {
        if (!(p = prog_new(c, R_WUNION, w, r)))
            return NULL;
        if (!(p->wb = calloc(w->n_branches, sizeof(*p->wb)))) {
            cerr(c, "out of memory");
            return NULL;
        }
        size_t ok = 0;
        size_t path_len = strlen(c->path);
        char first_err[256] = "";
        for (size_t i = 0; i < w->n_branches; i++) {
            p->wb[i] = compile(c, w->branches[i], r, depth + 1);
            c->path[path_len] = '\0';
            if (p->wb[i])
                ok++;
            else if (!first_err[0] && c->errstr && c->errstr_size)
                snprintf(first_err, sizeof(first_err), "%s", c->errstr);
        }
        if (ok == 0) {
            xs_err_set(c->errstr, c->errstr_size, "%s", first_err);
            return NULL;
        }
        return p;
    }
    if (r->type == XS_AT_UNION) {
        int pick = -1;
        for (size_t i = 0; pick < 0 && i < r->n_branches; i++) {
            const xs_anode_t *b = r->branches[i];
            if (b->type == w->type && (!b->fullname || names_match(w, b)))
                pick = (int)i;
        }
        for (size_t i = 0; pick < 0 && i < r->n_branches; i++)
            if (promotable(w->type, r->branches[i]->type))
                pick = (int)i;
        if (pick < 0) {
            cerr(c, "writer %s matches no branch of the reader union", tname(w));
            return NULL;
        }
        if (!(p = prog_new(c, R_RUNION, w, r)))
            return NULL;
        p->rbranch = pick;
        p->child = compile(c, w, r->branches[pick], depth + 1);
        return p->child ? p : NULL;
    }
    if (w->type <= XS_AT_STRING || r->type <= XS_AT_STRING) {
        if (!promotable(w->type, r->type)) {
            cerr(c, "writer %s cannot be read as %s", tname(w), tname(r));
            return NULL;
        }
        return prog_new(c, R_PRIM, w, r);
    }
    if (w->type != r->type) {
        cerr(c, "writer %s cannot be read as %s", tname(w), tname(r));
        return NULL;
    }
    switch (r->type) {
    case XS_AT_RECORD:
    case XS_AT_ENUM:
    case XS_AT_FIXED:
        if (!names_match(w, r)) {
            cerr(c, "writer %s %s does not match reader %s", xs_codec_schema_type_name(w->type),
                 w->fullname, r->fullname);
            return NULL;
        }
        if (r->type == XS_AT_RECORD)
            return compile_record(c, w, r, depth);
        if (r->type == XS_AT_FIXED) {
            if (w->fixed_size != r->fixed_size) {
                cerr(c, "fixed %s: writer size %zu, reader size %zu", r->fullname, w->fixed_size,
                     r->fixed_size);
                return NULL;
            }
            return prog_new(c, R_FIXED, w, r);
        }
        if (!(p = prog_new(c, R_ENUM, w, r)))
            return NULL;
        if (!(p->sym_map = calloc(w->n_symbols, sizeof(*p->sym_map)))) {
            cerr(c, "out of memory");
            return NULL;
        }
        for (size_t i = 0; i < w->n_symbols; i++) {
            p->sym_map[i] = r->enum_default;
            for (size_t k = 0; k < r->n_symbols; k++)
                if (strcmp(w->symbols[i], r->symbols[k]) == 0)
                    p->sym_map[i] = (int)k;
        }
        return p;
    case XS_AT_ARRAY:
        if (!(p = prog_new(c, R_ARRAY, w, r)))
            return NULL;
        p->child = compile(c, w->child, r->child, depth + 1);
        return p->child ? p : NULL;
    default:
        cerr(c, "reader %s is not supported", tname(r));
        return NULL;
    }
}

xs_err_t xs_codec_resolve_new(const xs_aschema_t *writer, const xs_aschema_t *reader,
                              xs_resolver_t **out, char *errstr, size_t errstr_size)
{
    xs_resolver_t *res = calloc(1, sizeof(*res));
    xs_err_t err = XS_ERR_NOMEM;
    *out = NULL;
    if (!res)
        goto out;
    cctx_t c = {.res = res, .errstr = errstr, .errstr_size = errstr_size};
    if (!(res->root = compile(&c, writer->root, reader->root, 0))) {
        err = XS_ERR_SCHEMA;
        goto out;
    }
    *out = res;
    res = NULL;
    err = XS_OK;
out:
    xs_codec_resolve_destroy(res);
    return err;
}

void xs_codec_resolve_destroy(xs_resolver_t *res)
{
    if (!res)
        return;
    xs_rprog_t *p = res->progs;
    while (p) {
        xs_rprog_t *next = p->next_alloc;
        free(p->wf_to_rf);
        free(p->wf_prog);
        free(p->rf_from_writer);
        free(p->sym_map);
        free(p->wb);
        free(p);
        p = next;
    }
    xs_codec_resolve_pool_free(&res->pool);
    free(res);
}

/* ======================================================================== */
/* Decoding                                                                 */
/* ======================================================================== */

typedef struct dctx {
    const uint8_t *p, *end;
    xs_apool_t *pool;
    const char *field;  /* writer field being decoded, for reasons */
    size_t zero_budget; /* items of zero-size types still allowed */
    int depth;
    char *reason;
    size_t reason_size;
} dctx_t;

static xs_err_t derr(dctx_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static xs_err_t derr(dctx_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (d->reason && d->reason_size)
        vsnprintf(d->reason, d->reason_size, fmt, ap);
    va_end(ap);
    return XS_ERR_DECODE;
}

static const char *fname(const dctx_t *d)
{
    return d->field ? d->field : "(top level)";
}

static xs_err_t truncated(dctx_t *d)
{
    return derr(d, "truncated Avro body");
}

static xs_err_t read_long(dctx_t *d, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (d->p >= d->end)
            return truncated(d);
        uint8_t b = *d->p++;
        if (shift == 63 && b > 1)
            return derr(d, "bad varint for field %s", fname(d));
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
            return XS_OK;
        }
    }
    return derr(d, "bad varint for field %s", fname(d));
}

static xs_err_t read_int(dctx_t *d, int64_t *out)
{
    xs_err_t err = read_long(d, out);
    if (!err && (*out < INT32_MIN || *out > INT32_MAX))
        return derr(d, "int out of range for field %s", fname(d));
    return err;
}

static xs_err_t read_len(dctx_t *d, size_t *out)
{
    int64_t n = 0;
    xs_err_t err = read_long(d, &n);
    if (err)
        return err;
    if (n < 0)
        return derr(d, "negative length %" PRId64 " for field %s", n, fname(d));
    if ((uint64_t)n > (uint64_t)(d->end - d->p))
        return truncated(d);
    *out = (size_t)n;
    return XS_OK;
}

static double read_float(dctx_t *d, size_t n)
{
    uint8_t b[8];
    memcpy(b, d->p, n);
    d->p += n;
    if (n == 4) {
        uint32_t u =
            (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = u << 8 | b[i];
    double v;
    memcpy(&v, &u, 8);
    return v;
}

/*
 * Reads one array/map block header: the item count (0 ends the array).
 * Checks the count against what the remaining bytes can hold.
 */
static xs_err_t read_block(dctx_t *d, const xs_anode_t *item, bool is_map, size_t *count)
{
    int64_t n = 0;
    xs_err_t err = read_long(d, &n);
    if (err)
        return err;
    if (n < 0) {
        int64_t bytes = 0;
        if (n == INT64_MIN)
            return derr(d, "bad block count for field %s", fname(d));
        n = -n;
        if ((err = read_long(d, &bytes)))
            return err;
        if (bytes < 0 || (uint64_t)bytes > (uint64_t)(d->end - d->p))
            return derr(d, "bad block size for field %s", fname(d));
    }
    size_t per = item->min_size + (is_map ? 1 : 0);
    size_t left = (size_t)(d->end - d->p);
    if (per > 0) {
        if ((uint64_t)n > left / per)
            return derr(d, "array count %" PRId64 " exceeds the message for field %s", n, fname(d));
    } else {
        if ((uint64_t)n > d->zero_budget)
            return derr(d, "too many empty items (%" PRId64 ") for field %s", n, fname(d));
        d->zero_budget -= (size_t)n;
    }
    *count = (size_t)n;
    return XS_OK;
}

static xs_err_t skip(dctx_t *d, const xs_anode_t *w)
{
    xs_err_t err = XS_OK;
    int64_t v = 0;
    size_t n = 0;
    if (++d->depth > XS_DECODE_MAX_DEPTH)
        return derr(d, "value nested too deeply");
    switch (w->type) {
    case XS_AT_NULL:
        break;
    case XS_AT_BOOLEAN:
        if (d->p >= d->end)
            return truncated(d);
        if (*d->p > 1)
            return derr(d, "bad boolean for field %s", fname(d));
        d->p++;
        break;
    case XS_AT_INT:
        err = read_int(d, &v);
        break;
    case XS_AT_LONG:
        err = read_long(d, &v);
        break;
    case XS_AT_ENUM:
        if (!(err = read_int(d, &v)) && (v < 0 || (uint64_t)v >= w->n_symbols))
            err = derr(d, "bad enum index %" PRId64 " for field %s", v, fname(d));
        break;
    case XS_AT_FLOAT:
    case XS_AT_DOUBLE:
    case XS_AT_FIXED: {
        size_t k = w->type == XS_AT_FLOAT ? 4 : w->type == XS_AT_DOUBLE ? 8 : w->fixed_size;
        if ((size_t)(d->end - d->p) < k)
            return truncated(d);
        d->p += k;
        break;
    }
    case XS_AT_STRING:
    case XS_AT_BYTES:
        if (!(err = read_len(d, &n)))
            d->p += n;
        break;
    case XS_AT_RECORD: {
        const char *saved = d->field;
        for (size_t i = 0; !err && i < w->n_fields; i++) {
            d->field = w->fields[i].name;
            err = skip(d, w->fields[i].type);
        }
        if (!err)
            d->field = saved;
        break;
    }
    case XS_AT_ARRAY:
    case XS_AT_MAP:
        for (;;) {
            if ((err = read_block(d, w->child, w->type == XS_AT_MAP, &n)) || n == 0)
                break;
            for (size_t i = 0; !err && i < n; i++) {
                size_t klen = 0;
                if (w->type == XS_AT_MAP && !(err = read_len(d, &klen)))
                    d->p += klen;
                if (!err)
                    err = skip(d, w->child);
            }
            if (err)
                break;
        }
        break;
    case XS_AT_UNION:
        if ((err = read_long(d, &v)))
            break;
        if (v < 0 || (uint64_t)v >= w->n_branches)
            return derr(d, "bad union branch %" PRId64 " for field %s", v, fname(d));
        err = skip(d, w->branches[v]);
        break;
    }
    d->depth--;
    return err;
}

static xs_err_t decode(dctx_t *d, const xs_rprog_t *p, xs_aval_t *out);

static xs_err_t decode_prim(dctx_t *d, const xs_rprog_t *p, xs_aval_t *out)
{
    xs_err_t err = XS_OK;
    int64_t v = 0;
    size_t n = 0;
    xs_atype_t rt = p->r->type;
    out->type = rt;
    switch (p->w->type) {
    case XS_AT_NULL:
        return XS_OK;
    case XS_AT_BOOLEAN:
        if (d->p >= d->end)
            return truncated(d);
        if (*d->p > 1)
            return derr(d, "bad boolean for field %s", fname(d));
        out->u.b = *d->p++ == 1;
        return XS_OK;
    case XS_AT_INT:
    case XS_AT_LONG:
        err = p->w->type == XS_AT_INT ? read_int(d, &v) : read_long(d, &v);
        if (err)
            return err;
        if (rt == XS_AT_INT || rt == XS_AT_LONG)
            out->u.l = v;
        else if (rt == XS_AT_FLOAT)
            out->u.d = (double)(float)v;
        else
            out->u.d = (double)v;
        return XS_OK;
    case XS_AT_FLOAT:
    case XS_AT_DOUBLE: {
        size_t k = p->w->type == XS_AT_FLOAT ? 4 : 8;
        if ((size_t)(d->end - d->p) < k)
            return truncated(d);
        out->u.d = read_float(d, k);
        return XS_OK;
    }
    case XS_AT_STRING:
    case XS_AT_BYTES:
        if ((err = read_len(d, &n)))
            return err;
        out->u.s.p = (const char *)d->p;
        out->u.s.len = n;
        d->p += n;
        return XS_OK;
    default:
        return derr(d, "internal: bad primitive");
    }
}

static xs_err_t decode_array(dctx_t *d, const xs_rprog_t *p, xs_aval_t *out)
{
    xs_aval_t first[XS_ARRAY_LOCAL_ITEMS];
    xs_aval_t *tmp = first;
    size_t n = 0, cap = XS_ARRAY_LOCAL_ITEMS, count = 0;
    xs_err_t err = XS_OK;
    out->type = XS_AT_ARRAY;
    for (;;) {
        if ((err = read_block(d, p->w->child, false, &count)) || count == 0)
            break;
        if (n + count > cap) {
            size_t ncap = XS_MAX(cap * 2, n + count);
            xs_aval_t *grown = realloc(tmp == first ? NULL : tmp, ncap * sizeof(*grown));
            if (!grown) {
                err = derr(d, "out of memory");
                break;
            }
            if (tmp == first)
                memcpy(grown, first, n * sizeof(*grown));
            tmp = grown;
            cap = ncap;
        }
        for (size_t i = 0; !err && i < count; i++) {
            memset(&tmp[n], 0, sizeof(tmp[n]));
            err = decode(d, p->child, &tmp[n++]);
        }
        if (err)
            break;
    }
    if (!err && n > 0) {
        if (!(out->u.a.v = xs_codec_resolve_pool_alloc(d->pool, n * sizeof(xs_aval_t))))
            err = derr(d, "out of memory");
        else
            memcpy(out->u.a.v, tmp, n * sizeof(xs_aval_t));
        out->u.a.n = n;
    }
    if (tmp != first)
        free(tmp);
    return err;
}

static xs_err_t decode(dctx_t *d, const xs_rprog_t *p, xs_aval_t *out)
{
    xs_err_t err = XS_OK;
    int64_t v = 0;
    if (++d->depth > XS_DECODE_MAX_DEPTH)
        return derr(d, "value nested too deeply");
    switch (p->op) {
    case R_PRIM:
        err = decode_prim(d, p, out);
        break;
    case R_FIXED:
        out->type = XS_AT_FIXED;
        if ((size_t)(d->end - d->p) < p->w->fixed_size)
            return truncated(d);
        out->u.s.p = (const char *)d->p;
        out->u.s.len = p->w->fixed_size;
        d->p += p->w->fixed_size;
        break;
    case R_ENUM:
        out->type = XS_AT_ENUM;
        if ((err = read_int(d, &v)))
            break;
        if (v < 0 || (uint64_t)v >= p->w->n_symbols)
            return derr(d, "bad enum index %" PRId64 " for field %s", v, fname(d));
        if (p->sym_map[v] < 0)
            return derr(d, "unknown enum symbol %s for field %s", p->w->symbols[v], fname(d));
        out->u.e = p->sym_map[v];
        break;
    case R_ARRAY:
        err = decode_array(d, p, out);
        break;
    case R_RUNION:
        out->type = XS_AT_UNION;
        out->u.un.branch = p->rbranch;
        if (!(out->u.un.v = xs_codec_resolve_pool_alloc(d->pool, sizeof(xs_aval_t))))
            return derr(d, "out of memory");
        err = decode(d, p->child, out->u.un.v);
        break;
    case R_WUNION:
        if ((err = read_long(d, &v)))
            break;
        if (v < 0 || (uint64_t)v >= p->w->n_branches)
            return derr(d, "bad union branch %" PRId64 " for field %s", v, fname(d));
        if (!p->wb[v])
            return derr(d, "union branch %s of field %s does not match the reader",
                        tname(p->w->branches[v]), fname(d));
        err = decode(d, p->wb[v], out);
        break;
    case R_RECORD: {
        const xs_anode_t *w = p->w, *r = p->r;
        const char *saved = d->field;
        out->type = XS_AT_RECORD;
        out->u.a.n = r->n_fields;
        if (r->n_fields &&
            !(out->u.a.v = xs_codec_resolve_pool_alloc(d->pool, r->n_fields * sizeof(xs_aval_t))))
            return derr(d, "out of memory");
        for (size_t i = 0; !err && i < w->n_fields; i++) {
            d->field = w->fields[i].name;
            if (p->wf_to_rf[i] >= 0)
                err = decode(d, p->wf_prog[i], &out->u.a.v[p->wf_to_rf[i]]);
            else
                err = skip(d, w->fields[i].type);
        }
        if (err)
            break;
        d->field = saved;
        for (size_t k = 0; k < r->n_fields; k++)
            if (!p->rf_from_writer[k])
                out->u.a.v[k] = p->rf_default[k];
        break;
    }
    }
    d->depth--;
    return err;
}

xs_err_t xs_codec_resolve_decode(const xs_resolver_t *res, const uint8_t *data, size_t len,
                                 xs_apool_t *pool, xs_aval_t **out, char *reason,
                                 size_t reason_size)
{
    dctx_t d = {.p = data,
                .end = data + len,
                .pool = pool,
                .zero_budget = XS_ZERO_SIZE_ITEMS,
                .reason = reason,
                .reason_size = reason_size};
    xs_aval_t *v = xs_codec_resolve_pool_alloc(pool, sizeof(*v));
    *out = NULL;
    if (!v)
        return derr(&d, "out of memory");
    if (len == 0 && data == NULL)
        d.p = d.end = (const uint8_t *)"";
    xs_err_t err = decode(&d, res->root, v);
    if (err)
        return err;
    if (d.p != d.end)
        return derr(&d, "trailing garbage after Avro body (%zu bytes)", (size_t)(d.end - d.p));
    *out = v;
    return XS_OK;
}
