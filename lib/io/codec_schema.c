/*
 * codec_schema.c — Avro schema model, Parsing Canonical Form, CRC-64-AVRO.
 *
 * What: parses an Avro schema document (JSON, via xs_json) into a graph of
 * xs_anode_t, resolving named-type references to full names, and writes
 * the schema's Parsing Canonical Form (Avro specification, "Parsing
 * Canonical Form for Schemas") whose CRC-64-AVRO is the fingerprint in the
 * single-object encoding header:
 *
 *     C3 01 | fp[0] ... fp[7] (little-endian CRC-64-AVRO of the PCF) | body
 *
 * Why not Avro-C: Avro-C keeps neither field defaults nor the source order
 * of attributes we need, and cannot produce the canonical form. Keeping
 * our own model also lets the decoder (codec_resolve.c) walk schemas with
 * plain pointers on the hot path. Avro-C still parses every schema too
 * (codec.c), so both implementations must accept it.
 *
 * Canonical form rules implemented (spec names):
 *   PRIMITIVES  {"type":"int"} -> "int" (other attributes such as
 *               logicalType are dropped);
 *   FULLNAMES   names replaced by full names, "namespace" dropped;
 *   STRIP       only type, name, fields, symbols, items, values, size kept;
 *   ORDER       name, type, fields, symbols, items, values, size;
 *   STRINGS     strings re-escaped minimally (xs_json_write_string);
 *   INTEGERS    fixed size written as a plain decimal integer;
 *   WHITESPACE  none.
 * A named type is written in full at its first occurrence (depth first)
 * and by its full name afterwards, as the spec's reference code does.
 *
 * CRC-64-AVRO is the Rabin fingerprint with EMPTY = 0xc15d213aa4d7a795,
 * computed bit by bit: it only runs when a schema is registered.
 */
#include "codec_schema.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/codec.h"

#define XS_CRC64_EMPTY 0xc15d213aa4d7a795ULL
#define XS_ASCHEMA_MAX_DEPTH 64

/* ======================================================================== */
/* CRC-64-AVRO                                                              */
/* ======================================================================== */

uint64_t xs_codec_schema_crc64(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint64_t fp = XS_CRC64_EMPTY;
    for (size_t i = 0; i < len; i++) {
        fp ^= p[i];
        for (int k = 0; k < 8; k++)
            fp = (fp >> 1) ^ (XS_CRC64_EMPTY & (0 - (fp & 1)));
    }
    return fp;
}

/* ======================================================================== */
/* Parser                                                                   */
/* ======================================================================== */

static const char *const type_names[] = {
    [XS_AT_NULL] = "null",   [XS_AT_BOOLEAN] = "boolean", [XS_AT_INT] = "int",
    [XS_AT_LONG] = "long",   [XS_AT_FLOAT] = "float",     [XS_AT_DOUBLE] = "double",
    [XS_AT_BYTES] = "bytes", [XS_AT_STRING] = "string",   [XS_AT_RECORD] = "record",
    [XS_AT_ENUM] = "enum",   [XS_AT_ARRAY] = "array",     [XS_AT_MAP] = "map",
    [XS_AT_UNION] = "union", [XS_AT_FIXED] = "fixed",
};

const char *xs_codec_schema_type_name(xs_atype_t t)
{
    return ((size_t)t < XS_ARRAY_SIZE(type_names)) ? type_names[t] : "?";
}

typedef struct pctx {
    xs_aschema_t *schema;
    char *errstr;
    size_t errstr_size;
} pctx_t;

static int primitive_of(const char *s)
{
    for (int t = XS_AT_NULL; t <= XS_AT_STRING; t++)
        if (strcmp(s, type_names[t]) == 0)
            return t;
    return -1;
}

static bool valid_name(const char *s)
{
    if (!s || !((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_' ||
              (*s >= '0' && *s <= '9')))
            return false;
    return true;
}

/* A full name: dot-separated valid names. */
static bool valid_fullname(const char *s)
{
    char part[256];
    while (*s) {
        const char *dot = strchr(s, '.');
        size_t n = dot ? (size_t)(dot - s) : strlen(s);
        if (n == 0 || n >= sizeof(part))
            return false;
        memcpy(part, s, n);
        part[n] = '\0';
        if (!valid_name(part))
            return false;
        s += n;
        if (dot) {
            s++;
            if (!*s)
                return false;
        }
    }
    return true;
}

static xs_anode_t *node_new(pctx_t *c, xs_atype_t type)
{
    xs_anode_t *n = calloc(1, sizeof(*n));
    if (!n)
        return NULL;
    n->type = type;
    n->enum_default = -1;
    n->next_alloc = c->schema->nodes;
    c->schema->nodes = n;
    return n;
}

static xs_anode_t *find_named(pctx_t *c, const char *fullname)
{
    for (xs_anode_t *n = c->schema->nodes; n; n = n->next_alloc)
        if (n->fullname && strcmp(n->fullname, fullname) == 0)
            return n;
    return NULL;
}

static xs_anode_t *parse_type(pctx_t *c, const xs_json_t *j, const char *ns, int depth);

/* Builds the full name of a named type and registers it; NULL + error. */
static xs_anode_t *named_new(pctx_t *c, xs_atype_t type, const xs_json_t *j, const char *ns,
                             char **ns_out)
{
    const char *name = xs_json_string(xs_json_get(j, "name"));
    const xs_json_t *nsj = xs_json_get(j, "namespace");
    const char *own_ns = ns;
    xs_anode_t *n = NULL;
    char *full = NULL;
    if (!name) {
        xs_err_set(c->errstr, c->errstr_size, "%s without a \"name\"", type_names[type]);
        return NULL;
    }
    if (nsj && xs_json_type(nsj) == XS_JSON_STRING)
        own_ns = xs_json_string(nsj);
    else if (nsj && xs_json_type(nsj) != XS_JSON_NULL) {
        xs_err_set(c->errstr, c->errstr_size, "namespace of %s is not a string", name);
        return NULL;
    }
    if (strchr(name, '.') || !own_ns || !*own_ns) {
        full = xs_str_dup(name);
    } else {
        size_t a = strlen(own_ns), b = strlen(name);
        full = malloc(a + b + 2);
        if (full) {
            memcpy(full, own_ns, a);
            full[a] = '.';
            memcpy(full + a + 1, name, b + 1);
        }
    }
    if (!full) {
        xs_err_set(c->errstr, c->errstr_size, "out of memory");
        return NULL;
    }
    if (!valid_fullname(full)) {
        xs_err_set(c->errstr, c->errstr_size, "invalid name \"%s\"", full);
        free(full);
        return NULL;
    }
    const char *dot = strrchr(full, '.');
    if (primitive_of(dot ? dot + 1 : full) >= 0) {
        xs_err_set(c->errstr, c->errstr_size, "name \"%s\" redefines a primitive type", full);
        free(full);
        return NULL;
    }
    if (find_named(c, full)) {
        xs_err_set(c->errstr, c->errstr_size, "type \"%s\" defined twice", full);
        free(full);
        return NULL;
    }
    n = node_new(c, type);
    if (!n) {
        free(full);
        xs_err_set(c->errstr, c->errstr_size, "out of memory");
        return NULL;
    }
    n->fullname = full;
    dot = strrchr(full, '.');
    n->name = dot ? dot + 1 : full;
    /* The namespace for nested definitions: the full name's prefix. */
    if (ns_out) {
        *ns_out = dot ? xs_str_ndup(full, (size_t)(dot - full)) : xs_str_dup("");
        if (!*ns_out) {
            xs_err_set(c->errstr, c->errstr_size, "out of memory");
            return NULL;
        }
    }
    return n;
}

static xs_anode_t *parse_record(pctx_t *c, const xs_json_t *j, const char *ns, int depth)
{
    char *rec_ns = NULL;
    xs_anode_t *ret = NULL;
    xs_anode_t *n = named_new(c, XS_AT_RECORD, j, ns, &rec_ns);
    if (!n)
        goto out;
    const xs_json_t *fields = xs_json_get(j, "fields");
    if (xs_json_type(fields) != XS_JSON_ARRAY) {
        xs_err_set(c->errstr, c->errstr_size, "record %s without a \"fields\" array", n->fullname);
        goto out;
    }
    size_t nf = xs_json_size(fields);
    if (nf > 0 && !(n->fields = calloc(nf, sizeof(*n->fields)))) {
        xs_err_set(c->errstr, c->errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < nf; i++) {
        const xs_json_t *f = xs_json_at(fields, i);
        const char *fname = xs_json_string(xs_json_get(f, "name"));
        if (!fname || !valid_name(fname)) {
            xs_err_set(c->errstr, c->errstr_size, "record %s: field %zu has no valid name",
                       n->fullname, i);
            goto out;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->fields[k].name, fname) == 0) {
                xs_err_set(c->errstr, c->errstr_size, "record %s: duplicate field %s", n->fullname,
                           fname);
                goto out;
            }
        const xs_json_t *ft = xs_json_get(f, "type");
        if (!ft) {
            xs_err_set(c->errstr, c->errstr_size, "record %s: field %s has no type", n->fullname,
                       fname);
            goto out;
        }
        n->fields[i].name = fname;
        n->fields[i].deflt = xs_json_get(f, "default");
        const xs_json_t *al = xs_json_get(f, "aliases");
        n->fields[i].aliases = xs_json_type(al) == XS_JSON_ARRAY ? al : NULL;
        n->n_fields = i + 1;
        if (!(n->fields[i].type = parse_type(c, ft, rec_ns, depth + 1)))
            goto out;
    }
    n->n_fields = nf;
    ret = n;
out:
    free(rec_ns);
    return ret;
}

static xs_anode_t *parse_enum(pctx_t *c, const xs_json_t *j, const char *ns)
{
    xs_anode_t *n = named_new(c, XS_AT_ENUM, j, ns, NULL);
    if (!n)
        return NULL;
    const xs_json_t *syms = xs_json_get(j, "symbols");
    if (xs_json_type(syms) != XS_JSON_ARRAY || xs_json_size(syms) == 0) {
        xs_err_set(c->errstr, c->errstr_size, "enum %s without symbols", n->fullname);
        return NULL;
    }
    n->n_symbols = xs_json_size(syms);
    if (!(n->symbols = calloc(n->n_symbols, sizeof(*n->symbols)))) {
        xs_err_set(c->errstr, c->errstr_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < n->n_symbols; i++) {
        const char *s = xs_json_string(xs_json_at(syms, i));
        if (!s || !valid_name(s)) {
            xs_err_set(c->errstr, c->errstr_size, "enum %s: invalid symbol %zu", n->fullname, i);
            return NULL;
        }
        for (size_t k = 0; k < i; k++)
            if (strcmp(n->symbols[k], s) == 0) {
                xs_err_set(c->errstr, c->errstr_size, "enum %s: duplicate symbol %s", n->fullname,
                           s);
                return NULL;
            }
        n->symbols[i] = s;
    }
    const xs_json_t *d = xs_json_get(j, "default");
    if (d) {
        const char *ds = xs_json_string(d);
        for (size_t i = 0; ds && i < n->n_symbols; i++)
            if (strcmp(n->symbols[i], ds) == 0)
                n->enum_default = (int)i;
        if (n->enum_default < 0) {
            xs_err_set(c->errstr, c->errstr_size, "enum %s: default is not a symbol", n->fullname);
            return NULL;
        }
    }
    return n;
}

static xs_anode_t *parse_fixed(pctx_t *c, const xs_json_t *j, const char *ns)
{
    xs_anode_t *n = named_new(c, XS_AT_FIXED, j, ns, NULL);
    if (!n)
        return NULL;
    const char *t = xs_json_number_text(xs_json_get(j, "size"));
    char *end = NULL;
    errno = 0;
    unsigned long long sz = t ? strtoull(t, &end, 10) : 0;
    if (!t || *t == '-' || *end || errno || sz > (1u << 30)) {
        xs_err_set(c->errstr, c->errstr_size, "fixed %s: bad size", n->fullname);
        return NULL;
    }
    n->fixed_size = (size_t)sz;
    return n;
}

static xs_anode_t *parse_union(pctx_t *c, const xs_json_t *j, const char *ns, int depth)
{
    xs_anode_t *n = node_new(c, XS_AT_UNION);
    if (!n) {
        xs_err_set(c->errstr, c->errstr_size, "out of memory");
        return NULL;
    }
    size_t nb = xs_json_size(j);
    if (nb == 0) {
        xs_err_set(c->errstr, c->errstr_size, "empty union");
        return NULL;
    }
    if (!(n->branches = calloc(nb, sizeof(*n->branches)))) {
        xs_err_set(c->errstr, c->errstr_size, "out of memory");
        return NULL;
    }
    for (size_t i = 0; i < nb; i++) {
        xs_anode_t *b = parse_type(c, xs_json_at(j, i), ns, depth + 1);
        if (!b)
            return NULL;
        if (b->type == XS_AT_UNION) {
            xs_err_set(c->errstr, c->errstr_size, "union directly inside a union");
            return NULL;
        }
        for (size_t k = 0; k < i; k++) {
            const xs_anode_t *o = n->branches[k];
            if (o->type == b->type && (!b->fullname || strcmp(o->fullname, b->fullname) == 0)) {
                xs_err_set(c->errstr, c->errstr_size, "union has two %s branches",
                           b->fullname ? b->fullname : type_names[b->type]);
                return NULL;
            }
        }
        n->branches[i] = b;
        n->n_branches = i + 1;
    }
    return n;
}

static xs_anode_t *parse_type(pctx_t *c, const xs_json_t *j, const char *ns, int depth)
{
    if (depth > XS_ASCHEMA_MAX_DEPTH) {
        xs_err_set(c->errstr, c->errstr_size, "schema nested too deeply");
        return NULL;
    }
    switch (xs_json_type(j)) {
    case XS_JSON_STRING: {
        const char *s = xs_json_string(j);
        int prim = primitive_of(s);
        if (prim >= 0) {
            xs_anode_t *n = node_new(c, (xs_atype_t)prim);
            if (!n)
                xs_err_set(c->errstr, c->errstr_size, "out of memory");
            return n;
        }
        xs_anode_t *n = NULL;
        if (!strchr(s, '.') && ns && *ns) {
            char buf[512];
            if ((size_t)snprintf(buf, sizeof(buf), "%s.%s", ns, s) < sizeof(buf))
                n = find_named(c, buf);
        }
        if (!n)
            n = find_named(c, s);
        if (!n)
            xs_err_set(c->errstr, c->errstr_size, "unknown type \"%s\"", s);
        return n;
    }
    case XS_JSON_ARRAY:
        return parse_union(c, j, ns, depth);
    case XS_JSON_OBJECT: {
        const xs_json_t *tj = xs_json_get(j, "type");
        const char *t = xs_json_string(tj);
        if (!t) {
            /* {"type": {...}} or {"type": [...]}: a nested type definition. */
            if (tj && (xs_json_type(tj) == XS_JSON_OBJECT || xs_json_type(tj) == XS_JSON_ARRAY))
                return parse_type(c, tj, ns, depth + 1);
            xs_err_set(c->errstr, c->errstr_size, "type object without a \"type\"");
            return NULL;
        }
        if (strcmp(t, "record") == 0 || strcmp(t, "error") == 0)
            return parse_record(c, j, ns, depth);
        if (strcmp(t, "enum") == 0)
            return parse_enum(c, j, ns);
        if (strcmp(t, "fixed") == 0)
            return parse_fixed(c, j, ns);
        if (strcmp(t, "array") == 0 || strcmp(t, "map") == 0) {
            bool arr = t[0] == 'a';
            const xs_json_t *cj = xs_json_get(j, arr ? "items" : "values");
            if (!cj) {
                xs_err_set(c->errstr, c->errstr_size, "%s without \"%s\"", t,
                           arr ? "items" : "values");
                return NULL;
            }
            xs_anode_t *n = node_new(c, arr ? XS_AT_ARRAY : XS_AT_MAP);
            if (!n) {
                xs_err_set(c->errstr, c->errstr_size, "out of memory");
                return NULL;
            }
            n->child = parse_type(c, cj, ns, depth + 1);
            return n->child ? n : NULL;
        }
        /* {"type": "long", "logicalType": ...} or a reference to a named type. */
        return parse_type(c, tj, ns, depth + 1);
    }
    default:
        xs_err_set(c->errstr, c->errstr_size, "not a schema: expected a string, object or array");
        return NULL;
    }
}

/* Fewest bytes a body value of this type can take; bounds array counts. */
static size_t compute_min_size(xs_anode_t *n)
{
    size_t s = 0;
    if (n->busy == 2)
        return n->min_size;
    if (n->busy == 1)
        return 0; /* recursive reference: its size is counted where it starts */
    n->busy = 1;
    switch (n->type) {
    case XS_AT_NULL:
        s = 0;
        break;
    case XS_AT_FLOAT:
        s = 4;
        break;
    case XS_AT_DOUBLE:
        s = 8;
        break;
    case XS_AT_FIXED:
        s = n->fixed_size;
        break;
    case XS_AT_RECORD:
        for (size_t i = 0; i < n->n_fields; i++) {
            size_t f = compute_min_size(n->fields[i].type);
            s = (s + f < s) ? SIZE_MAX : s + f;
        }
        break;
    default:
        s = 1;
        break; /* a varint, a length or a union index */
    }
    /* Children of containers/unions still need their own sizes computed. */
    if (n->type == XS_AT_ARRAY || n->type == XS_AT_MAP)
        compute_min_size(n->child);
    for (size_t i = 0; i < n->n_branches; i++)
        compute_min_size(n->branches[i]);
    n->min_size = s;
    n->busy = 2;
    return s;
}

xs_err_t xs_codec_schema_parse(const char *json, size_t len, xs_aschema_t **out, char *errstr,
                               size_t errstr_size)
{
    xs_err_t err = XS_ERR_SCHEMA;
    char jerr[160];
    xs_aschema_t *schema = calloc(1, sizeof(*schema));
    pctx_t c = {.schema = schema, .errstr = errstr, .errstr_size = errstr_size};
    *out = NULL;
    if (!schema) {
        err = XS_ERR_NOMEM;
        goto out;
    }
    if (!(schema->doc = xs_json_parse(json, len, jerr, sizeof(jerr)))) {
        xs_err_set(errstr, errstr_size, "schema is not JSON: %s", jerr);
        goto out;
    }
    if (!(schema->root = parse_type(&c, schema->doc, "", 0)))
        goto out;
    for (xs_anode_t *n = schema->nodes; n; n = n->next_alloc)
        if (!n->busy)
            compute_min_size(n);
    *out = schema;
    schema = NULL;
    err = XS_OK;
out:
    xs_codec_schema_destroy(schema);
    return err;
}

void xs_codec_schema_destroy(xs_aschema_t *schema)
{
    if (!schema)
        return;
    xs_anode_t *n = schema->nodes;
    while (n) {
        xs_anode_t *next = n->next_alloc;
        free(n->fullname);
        free(n->fields);
        free(n->symbols);
        free(n->branches);
        free(n);
        n = next;
    }
    xs_json_free(schema->doc);
    free(schema);
}

/* ======================================================================== */
/* Parsing Canonical Form                                                   */
/* ======================================================================== */

typedef struct canon {
    xs_buf_t *out;
    const xs_anode_t **seen; /* named types already written */
    size_t n_seen, cap_seen;
} canon_t;

static xs_err_t put(canon_t *c, const char *s)
{
    return xs_buf_append_str(c->out, s);
}

static xs_err_t put_str(canon_t *c, const char *s)
{
    return xs_json_write_string(c->out, s, strlen(s));
}

static xs_err_t canon_node(canon_t *c, const xs_anode_t *n)
{
    xs_err_t err = XS_OK;
    if (n->fullname) {
        for (size_t i = 0; i < c->n_seen; i++)
            if (c->seen[i] == n)
                return put_str(c, n->fullname);
        if (c->n_seen == c->cap_seen) {
            size_t cap = c->cap_seen ? c->cap_seen * 2 : 8;
            const xs_anode_t **seen = realloc(c->seen, cap * sizeof(*seen));
            if (!seen)
                return XS_ERR_NOMEM;
            c->seen = seen;
            c->cap_seen = cap;
        }
        c->seen[c->n_seen++] = n;
        if ((err = put(c, "{\"name\":")) || (err = put_str(c, n->fullname)) ||
            (err = put(c, ",\"type\":")) || (err = put_str(c, type_names[n->type])))
            return err;
    }
    switch (n->type) {
    case XS_AT_RECORD:
        err = put(c, ",\"fields\":[");
        for (size_t i = 0; !err && i < n->n_fields; i++) {
            if (i > 0)
                err = put(c, ",");
            if (!err)
                err = put(c, "{\"name\":");
            if (!err)
                err = put_str(c, n->fields[i].name);
            if (!err)
                err = put(c, ",\"type\":");
            if (!err)
                err = canon_node(c, n->fields[i].type);
            if (!err)
                err = put(c, "}");
        }
        return err ? err : put(c, "]}");
    case XS_AT_ENUM:
        err = put(c, ",\"symbols\":[");
        for (size_t i = 0; !err && i < n->n_symbols; i++) {
            if (i > 0)
                err = put(c, ",");
            if (!err)
                err = put_str(c, n->symbols[i]);
        }
        return err ? err : put(c, "]}");
    case XS_AT_FIXED:
        return xs_buf_printf(c->out, ",\"size\":%zu}", n->fixed_size);
    case XS_AT_ARRAY:
    case XS_AT_MAP:
        err = put(c, n->type == XS_AT_ARRAY ? "{\"type\":\"array\",\"items\":"
                                            : "{\"type\":\"map\",\"values\":");
        if (!err)
            err = canon_node(c, n->child);
        return err ? err : put(c, "}");
    case XS_AT_UNION:
        err = put(c, "[");
        for (size_t i = 0; !err && i < n->n_branches; i++) {
            if (i > 0)
                err = put(c, ",");
            if (!err)
                err = canon_node(c, n->branches[i]);
        }
        return err ? err : put(c, "]");
    default:
        return put_str(c, type_names[n->type]);
    }
}

xs_err_t xs_codec_schema_canonical(const xs_aschema_t *schema, xs_buf_t *out)
{
    canon_t c = {.out = out};
    xs_err_t err = canon_node(&c, schema->root);
    free(c.seen);
    return err;
}

xs_err_t xs_codec_schema_canonical_form(const char *schema_json, xs_buf_t *out, char *errstr,
                                        size_t errstr_size)
{
    xs_aschema_t *schema = NULL;
    xs_err_t err = XS_ERR_INVALID;
    if (!schema_json || !out)
        goto out;
    err = xs_codec_schema_parse(schema_json, strlen(schema_json), &schema, errstr, errstr_size);
    if (err)
        goto out;
    if ((err = xs_codec_schema_canonical(schema, out)) || (err = xs_buf_append_u8(out, 0)))
        goto out;
    out->len--; /* NUL-terminated, but the terminator is not part of the form */
out:
    xs_codec_schema_destroy(schema);
    return err;
}
