/*
 * records.c — the codecs of the records that cross a stage boundary: the
 * pair-delta batch, the neighbour list and the catalog entry
 * (include/xsell/records.h; the byte layouts in docs/RECORDS.md).
 *
 * One rule set per record, checked twice: by the encoder before it writes
 * (so what encodes decodes) and by the decoder while it reads (so what
 * decodes is a record the encoder could have written). The decoder reads
 * with the bounds-checked reader of wire.h and checks every length against
 * the bytes that are there before it allocates, so arbitrary input costs at
 * most a few times its own size in memory (tests/fuzz/fuzz_records.c).
 */
#include "xsell/records.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"
#include "xsell/hash.h"

#define NAME_BATCH "pair-delta batch"
#define NAME_LIST "neighbour list"
#define NAME_CATALOG "catalog entry"

/* Smallest encodings, to bound a count by the bytes left before allocating. */
#define MIN_ENTRY_BYTES 12     /* USERS: kind, class, a, count, back */
#define MIN_ID_BYTES 2         /* varint length, one byte */
#define MIN_NEIGHBOUR_BYTES 14 /* item, id length 0, sim, count */

/* Catalog flags. */
#define CF_DELETED 0x01
#define CF_OUT_OF_STOCK 0x02
#define CF_REPURCHASABLE 0x04
#define CF_PRICE 0x08
#define CF_FROM 0x10
#define CF_UNTIL 0x20
#define CF_ALL 0x3f

/* ======================================================================== */
/* Private helpers                                                          */
/* ======================================================================== */

/* Decoding state: the reader, which record, and the first error. */
typedef struct dec {
    xs_wire_reader_t r;
    const uint8_t *start;
    const char *what;
    char *errstr;
    size_t errstr_size;
} dec_t;

static xs_err_t failv(char *errstr, size_t errstr_size, const char *what, const char *fmt,
                      va_list ap)
{
    char msg[192];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    xs_err_set(errstr, errstr_size, "%s: %s", what, msg);
    return XS_ERR_DECODE;
}

/* Writes "<record>: <message>" and returns err. */
__attribute__((format(printf, 3, 4))) static xs_err_t fail(dec_t *d, xs_err_t err, const char *fmt,
                                                           ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(d->errstr, d->errstr_size, d->what, fmt, ap);
    va_end(ap);
    return err;
}

__attribute__((format(printf, 5, 6))) static xs_err_t
efail(char *errstr, size_t errstr_size, const char *what, xs_err_t err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failv(errstr, errstr_size, what, fmt, ap);
    va_end(ap);
    return err;
}

static xs_err_t truncated(dec_t *d, const char *where)
{
    return fail(d, XS_ERR_DECODE, "truncated in %s (%zu bytes)", where,
                (size_t)(d->r.end - d->start));
}

static size_t left(const dec_t *d)
{
    return (size_t)(d->r.end - d->r.p);
}

/* The two leading bytes: version (1..max) and magic. */
static xs_err_t dec_head(dec_t *d, uint8_t max, uint8_t magic)
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

static xs_err_t dec_end(dec_t *d)
{
    if (d->r.bad)
        return truncated(d, "the end");
    if (d->r.p != d->r.end)
        return fail(d, XS_ERR_DECODE, "%zu trailing bytes after the record", left(d));
    return XS_OK;
}

/* A varint that must fit max. */
static bool get_bounded(dec_t *d, uint64_t max, uint64_t *v)
{
    *v = xs_wire_get_varint(&d->r);
    return !d->r.bad && *v <= max;
}

static int64_t get_i64(xs_wire_reader_t *r)
{
    return (int64_t)xs_wire_get_u64(r);
}

static xs_err_t put_i64(xs_buf_t *b, int64_t v)
{
    return xs_wire_u64(b, (uint64_t)v);
}

static xs_err_t put_f64(xs_buf_t *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return xs_wire_u64(b, u);
}

static double get_f64(xs_wire_reader_t *r)
{
    uint64_t u = xs_wire_get_u64(r);
    double v;
    memcpy(&v, &u, 8);
    return v;
}

static uint64_t zigzag(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static int64_t unzigzag(uint64_t u)
{
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* A string's rules: at most max bytes, well-formed UTF-8. */
static xs_err_t check_str(const char *what, const char *field, const char *s, size_t max,
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

static xs_err_t put_str(xs_buf_t *b, const char *s)
{
    size_t n = slen(s);
    xs_err_t err = xs_wire_varint(b, n);
    return err ? err : xs_buf_append(b, s, n);
}

/* Reads a string of at most max bytes into *out (NULL when empty). */
static xs_err_t get_str(dec_t *d, const char *field, size_t max, bool required, char **out)
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

static bool str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Grows *v (of *cap elements of size) to hold n + 1. */
static xs_err_t grow(void **v, size_t *cap, size_t n, size_t size)
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

/* ======================================================================== */
/* Pair-delta batch                                                         */
/* ======================================================================== */

static const char *const kind_names[XS_DELTA__COUNT] = {"pair", "users", "category", "trend"};

const char *xs_delta_batch_kind_name(int kind)
{
    return kind >= 0 && kind < XS_DELTA__COUNT ? kind_names[kind] : "?";
}

/* The entry rules (records.h, xs_delta_t), against the batch's ts. */
static xs_err_t delta_check(const xs_delta_t *x, int64_t ts, size_t i, char *errstr,
                            size_t errstr_size, xs_err_t code)
{
    const char *w = NAME_BATCH;
    if (x->kind >= XS_DELTA__COUNT)
        return efail(errstr, errstr_size, w, code, "entry %zu: unknown kind %u", i, x->kind);
    const char *k = kind_names[x->kind];
    if (!x->a)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): item key 0", i, k);
    if (x->last_ts > ts)
        return efail(errstr, errstr_size, w, code,
                     "entry %zu (%s): last_ts %lld after the batch's ts %lld", i, k,
                     (long long)x->last_ts, (long long)ts);
    bool has_cls = x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_USERS;
    if (has_cls && x->cls >= XS_RECORDS_CLASSES)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): class %u (0 or 1)", i, k,
                     x->cls);
    if (!has_cls && x->cls)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): class %u set", i, k, x->cls);
    if (has_cls && x->count == 0)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): count 0", i, k);
    if (!has_cls && x->count)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): count %u set", i, k, x->count);
    bool has_b = x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_CATEGORY;
    if (has_b && !x->b)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): second key 0", i, k);
    if (!has_b && x->b)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): second key set", i, k);
    if (x->kind == XS_DELTA_PAIR && x->a == x->b)
        return efail(errstr, errstr_size, w, code, "entry %zu (pair): an item paired with itself",
                     i);
    if (x->kind == XS_DELTA_TREND && !(isfinite(x->weight) && x->weight > 0))
        return efail(errstr, errstr_size, w, code, "entry %zu (trend): weight %g (> 0, finite)", i,
                     x->weight);
    if (x->kind != XS_DELTA_TREND && x->weight != 0)
        return efail(errstr, errstr_size, w, code, "entry %zu (%s): weight set", i, k);
    return XS_OK;
}

xs_err_t xs_delta_batch_add(xs_delta_batch_t *b, const xs_delta_t *d, char *errstr,
                            size_t errstr_size)
{
    if (b->n_entries >= XS_DELTA_BATCH_MAX_ENTRIES)
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_TOO_LARGE, "more than %d entries",
                     XS_DELTA_BATCH_MAX_ENTRIES);
    /* ts is checked by the encoder: the batch's ts may still grow */
    xs_err_t err = delta_check(d, INT64_MAX, b->n_entries, errstr, errstr_size, XS_ERR_INVALID);
    if (err)
        return err;
    if (grow((void **)&b->entries, &b->cap_entries, b->n_entries, sizeof(*d)))
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_NOMEM, "out of memory");
    b->entries[b->n_entries++] = *d;
    return XS_OK;
}

xs_err_t xs_delta_batch_add_id(xs_delta_batch_t *b, const char *id, char *errstr,
                               size_t errstr_size)
{
    if (b->n_ids >= XS_DELTA_BATCH_MAX_IDS)
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_TOO_LARGE, "more than %d ids",
                     XS_DELTA_BATCH_MAX_IDS);
    if (!id || !*id)
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_INVALID, "empty id");
    xs_err_t err = check_str(NAME_BATCH, "id", id, XS_RECORDS_ID_MAX, errstr, errstr_size);
    if (err)
        return err;
    if (grow((void **)&b->ids, &b->cap_ids, b->n_ids, sizeof(*b->ids)))
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_NOMEM, "out of memory");
    char *c = xs_str_dup(id);
    if (!c)
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_NOMEM, "out of memory");
    b->ids[b->n_ids++] = (xs_named_t){xs_hash_str(c), c};
    return XS_OK;
}

static xs_err_t put_delta(xs_buf_t *o, int64_t ts, const xs_delta_t *x)
{
    xs_err_t err = xs_buf_append_u8(o, x->kind);
    if (x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_USERS)
        err |= xs_buf_append_u8(o, x->cls);
    err |= xs_wire_u64(o, x->a);
    if (x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_CATEGORY)
        err |= xs_wire_u64(o, x->b);
    if (x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_USERS)
        err |= xs_wire_varint(o, x->count);
    if (x->kind == XS_DELTA_TREND)
        err |= put_f64(o, x->weight);
    err |= xs_wire_varint(o, (uint64_t)ts - (uint64_t)x->last_ts);
    return err ? XS_ERR_NOMEM : XS_OK;
}

xs_err_t xs_delta_batch_encode(const xs_delta_batch_t *b, xs_buf_t *out, char *errstr,
                               size_t errstr_size)
{
    const char *w = NAME_BATCH;
    if (b->n_parts == 0 || b->part >= b->n_parts)
        return efail(errstr, errstr_size, w, XS_ERR_INVALID, "part %u of %u", b->part, b->n_parts);
    if (b->n_entries > XS_DELTA_BATCH_MAX_ENTRIES)
        return efail(errstr, errstr_size, w, XS_ERR_TOO_LARGE, "%zu entries (limit %d)",
                     b->n_entries, XS_DELTA_BATCH_MAX_ENTRIES);
    if (b->n_ids > XS_DELTA_BATCH_MAX_IDS)
        return efail(errstr, errstr_size, w, XS_ERR_TOO_LARGE, "%zu ids (limit %d)", b->n_ids,
                     XS_DELTA_BATCH_MAX_IDS);
    xs_err_t err;
    for (size_t i = 0; i < b->n_ids; i++) {
        const xs_named_t *n = &b->ids[i];
        if (!n->id || !*n->id)
            return efail(errstr, errstr_size, w, XS_ERR_INVALID, "id %zu empty", i);
        if ((err = check_str(w, "id", n->id, XS_RECORDS_ID_MAX, errstr, errstr_size)))
            return err;
        if (n->key != xs_hash_str(n->id))
            return efail(errstr, errstr_size, w, XS_ERR_INVALID, "id %zu: key is not its hash", i);
    }
    for (size_t i = 0; i < b->n_entries; i++)
        if ((err = delta_check(&b->entries[i], b->ts, i, errstr, errstr_size, XS_ERR_INVALID)))
            return err;
    size_t start = out->len;
    err = xs_buf_append_u8(out, XS_DELTA_BATCH_VERSION);
    err |= xs_buf_append_u8(out, XS_DELTA_BATCH_MAGIC);
    err |= xs_wire_varint(out, b->partition);
    err |= xs_wire_varint(out, b->seq);
    err |= xs_wire_varint(out, b->part);
    err |= xs_wire_varint(out, b->n_parts);
    err |= put_i64(out, b->ts);
    err |= xs_wire_varint(out, zigzag(b->users_total_delta));
    err |= xs_wire_varint(out, zigzag(b->users_bought_delta));
    err |= xs_wire_varint(out, b->n_ids);
    for (size_t i = 0; i < b->n_ids && !err; i++)
        err |= put_str(out, b->ids[i].id);
    err |= xs_wire_varint(out, b->n_entries);
    for (size_t i = 0; i < b->n_entries && !err; i++)
        err |= put_delta(out, b->ts, &b->entries[i]);
    if (err) {
        out->len = start;
        return efail(errstr, errstr_size, w, XS_ERR_NOMEM, "out of memory");
    }
    return XS_OK;
}

static xs_err_t get_delta(dec_t *d, int64_t ts, size_t i, xs_delta_t *x)
{
    xs_wire_reader_t *r = &d->r;
    *x = (xs_delta_t){0};
    x->kind = xs_wire_get_u8(r);
    if (!r->bad && x->kind >= XS_DELTA__COUNT)
        return fail(d, XS_ERR_DECODE, "entry %zu: unknown kind %u", i, x->kind);
    if (x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_USERS)
        x->cls = xs_wire_get_u8(r);
    x->a = xs_wire_get_u64(r);
    if (x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_CATEGORY)
        x->b = xs_wire_get_u64(r);
    if (x->kind == XS_DELTA_PAIR || x->kind == XS_DELTA_USERS) {
        uint64_t c;
        if (!get_bounded(d, UINT32_MAX, &c) && !r->bad)
            return fail(d, XS_ERR_DECODE, "entry %zu: count %llu over 2^32 - 1", i,
                        (unsigned long long)c);
        x->count = (uint32_t)c;
    }
    if (x->kind == XS_DELTA_TREND)
        x->weight = get_f64(r);
    uint64_t back = xs_wire_get_varint(r);
    if (r->bad) {
        char where[40];
        snprintf(where, sizeof(where), "entry %zu", i);
        return truncated(d, where);
    }
    /* ts - back must not go below INT64_MIN */
    if (back > (uint64_t)ts - (uint64_t)INT64_MIN)
        return fail(d, XS_ERR_DECODE, "entry %zu: time %llu ms before the batch's ts %lld", i,
                    (unsigned long long)back, (long long)ts);
    x->last_ts = (int64_t)((uint64_t)ts - back);
    return delta_check(x, ts, i, d->errstr, d->errstr_size, XS_ERR_DECODE);
}

xs_err_t xs_delta_batch_decode(xs_delta_batch_t *b, const void *data, size_t len, char *errstr,
                               size_t errstr_size)
{
    xs_delta_batch_clear(b);
    dec_t d = {{data, (const uint8_t *)data + len, false}, data, NAME_BATCH, errstr, errstr_size};
    xs_wire_reader_t *r = &d.r;
    xs_err_t err = dec_head(&d, XS_DELTA_BATCH_VERSION, XS_DELTA_BATCH_MAGIC);
    if (err)
        return err;
    uint64_t v;
    if (!get_bounded(&d, UINT16_MAX, &v)) {
        err = r->bad ? truncated(&d, "the source")
                     : fail(&d, XS_ERR_DECODE, "partition %llu over 65535", (unsigned long long)v);
        goto out;
    }
    b->partition = (uint16_t)v;
    b->seq = xs_wire_get_varint(r);
    uint64_t part = 0, n_parts = 0;
    if (!get_bounded(&d, UINT32_MAX, &part) || !get_bounded(&d, UINT32_MAX, &n_parts)) {
        err = r->bad ? truncated(&d, "the source")
                     : fail(&d, XS_ERR_DECODE, "part number over 2^32 - 1");
        goto out;
    }
    if (n_parts == 0 || part >= n_parts) {
        err = fail(&d, XS_ERR_DECODE, "part %llu of %llu", (unsigned long long)part,
                   (unsigned long long)n_parts);
        goto out;
    }
    b->part = (uint32_t)part;
    b->n_parts = (uint32_t)n_parts;
    b->ts = get_i64(r);
    b->users_total_delta = unzigzag(xs_wire_get_varint(r));
    b->users_bought_delta = unzigzag(xs_wire_get_varint(r));
    uint64_t n = xs_wire_get_varint(r);
    if (r->bad) {
        err = truncated(&d, "the header");
        goto out;
    }
    if (n > XS_DELTA_BATCH_MAX_IDS) {
        err = fail(&d, XS_ERR_TOO_LARGE, "%llu ids (limit %d)", (unsigned long long)n,
                   XS_DELTA_BATCH_MAX_IDS);
        goto out;
    }
    if (n > left(&d) / MIN_ID_BYTES) {
        err = truncated(&d, "the ids");
        goto out;
    }
    if (n && !(b->ids = calloc((size_t)n, sizeof(*b->ids)))) {
        err = fail(&d, XS_ERR_NOMEM, "out of memory");
        goto out;
    }
    b->cap_ids = (size_t)n;
    for (size_t i = 0; i < n; i++) {
        if ((err = get_str(&d, "id", XS_RECORDS_ID_MAX, true, &b->ids[i].id)))
            goto out;
        b->ids[i].key = xs_hash_str(b->ids[i].id);
        b->n_ids++;
    }
    n = xs_wire_get_varint(r);
    if (r->bad) {
        err = truncated(&d, "the entry count");
        goto out;
    }
    if (n > XS_DELTA_BATCH_MAX_ENTRIES) {
        err = fail(&d, XS_ERR_TOO_LARGE, "%llu entries (limit %d)", (unsigned long long)n,
                   XS_DELTA_BATCH_MAX_ENTRIES);
        goto out;
    }
    if (n > left(&d) / MIN_ENTRY_BYTES) {
        err = truncated(&d, "the entries");
        goto out;
    }
    if (n && !(b->entries = calloc((size_t)n, sizeof(*b->entries)))) {
        err = fail(&d, XS_ERR_NOMEM, "out of memory");
        goto out;
    }
    b->cap_entries = (size_t)n;
    for (size_t i = 0; i < n; i++) {
        if ((err = get_delta(&d, b->ts, i, &b->entries[i])))
            goto out;
        b->n_entries++;
    }
    err = dec_end(&d);
out:
    if (err)
        xs_delta_batch_clear(b);
    return err;
}

static bool delta_eq(const xs_delta_t *x, const xs_delta_t *y)
{
    return x->kind == y->kind && x->cls == y->cls && x->a == y->a && x->b == y->b &&
           x->count == y->count && x->weight == y->weight && x->last_ts == y->last_ts;
}

bool xs_delta_batch_equal(const xs_delta_batch_t *x, const xs_delta_batch_t *y)
{
    if (x->partition != y->partition || x->seq != y->seq || x->part != y->part ||
        x->n_parts != y->n_parts || x->ts != y->ts ||
        x->users_total_delta != y->users_total_delta ||
        x->users_bought_delta != y->users_bought_delta || x->n_ids != y->n_ids ||
        x->n_entries != y->n_entries)
        return false;
    for (size_t i = 0; i < x->n_ids; i++)
        if (x->ids[i].key != y->ids[i].key || !str_eq(x->ids[i].id, y->ids[i].id))
            return false;
    for (size_t i = 0; i < x->n_entries; i++)
        if (!delta_eq(&x->entries[i], &y->entries[i]))
            return false;
    return true;
}

void xs_delta_batch_clear(xs_delta_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n_ids; i++)
        free(b->ids[i].id);
    free(b->ids);
    free(b->entries);
    memset(b, 0, sizeof(*b));
}

/* ======================================================================== */
/* Neighbour list                                                           */
/* ======================================================================== */

/* Whether x ranks strictly before y: similarity descending, then key. */
static bool ranks_before(const xs_neighbour_rec_t *x, const xs_neighbour_rec_t *y)
{
    return x->sim > y->sim || (x->sim == y->sim && x->item < y->item);
}

/* The rules of neighbour k of class c (records.h, xs_neighbour_rec_t). */
static xs_err_t neighbour_check(const xs_neighbour_list_t *l, int c, int k, char *errstr,
                                size_t errstr_size, xs_err_t code)
{
    const char *w = NAME_LIST;
    const xs_neighbour_rec_t *x = &l->cls[c].v[k];
    if (!x->item || x->item == l->item)
        return efail(errstr, errstr_size, w, code, "class %d neighbour %d: key %s", c, k,
                     x->item ? "is the list's item" : "0");
    if (x->id && (!*x->id || xs_hash_str(x->id) != x->item))
        return efail(errstr, errstr_size, w, code,
                     "class %d neighbour %d: id does not match its key", c, k);
    if (!(isfinite(x->sim) && x->sim > 0))
        return efail(errstr, errstr_size, w, code,
                     "class %d neighbour %d: similarity %g (> 0, finite)", c, k, (double)x->sim);
    if (x->count == 0)
        return efail(errstr, errstr_size, w, code, "class %d neighbour %d: count 0", c, k);
    if (k > 0 && !ranks_before(&l->cls[c].v[k - 1], x))
        return efail(errstr, errstr_size, w, code, "class %d neighbour %d: out of rank order", c,
                     k);
    for (int j = 0; j < k; j++)
        if (l->cls[c].v[j].item == x->item)
            return efail(errstr, errstr_size, w, code,
                         "class %d neighbour %d: the same item as neighbour %d", c, k, j);
    return XS_OK;
}

xs_err_t xs_neighbour_list_add(xs_neighbour_list_t *l, int cls, uint64_t item, const char *id,
                               float sim, uint32_t count, char *errstr, size_t errstr_size)
{
    if (cls < 0 || cls >= XS_RECORDS_CLASSES)
        return efail(errstr, errstr_size, NAME_LIST, XS_ERR_INVALID, "class %d (0 or 1)", cls);
    xs_neighbour_class_t *c = &l->cls[cls];
    if (c->n >= XS_NEIGHBOUR_LIST_MAX)
        return efail(errstr, errstr_size, NAME_LIST, XS_ERR_TOO_LARGE,
                     "more than %d neighbours in class %d", XS_NEIGHBOUR_LIST_MAX, cls);
    xs_err_t err = check_str(NAME_LIST, "neighbour id", id, XS_RECORDS_ID_MAX, errstr, errstr_size);
    if (err)
        return err;
    xs_neighbour_rec_t *v = realloc(c->v, (size_t)(c->n + 1) * sizeof(*v));
    char *dup = id ? xs_str_dup(id) : NULL;
    if (v)
        c->v = v;
    if (!v || (id && !dup)) {
        free(dup);
        return efail(errstr, errstr_size, NAME_LIST, XS_ERR_NOMEM, "out of memory");
    }
    c->v[c->n++] = (xs_neighbour_rec_t){item, dup, sim, count};
    return XS_OK;
}

xs_err_t xs_neighbour_list_encode(const xs_neighbour_list_t *l, xs_buf_t *out, char *errstr,
                                  size_t errstr_size)
{
    const char *w = NAME_LIST;
    xs_err_t err;
    if (!l->item)
        return efail(errstr, errstr_size, w, XS_ERR_INVALID, "item key 0");
    if ((err = check_str(w, "id", l->id, XS_RECORDS_ID_MAX, errstr, errstr_size)))
        return err;
    if (l->id && (!*l->id || xs_hash_str(l->id) != l->item))
        return efail(errstr, errstr_size, w, XS_ERR_INVALID, "id does not match the item key");
    for (int c = 0; c < XS_RECORDS_CLASSES; c++) {
        if (l->cls[c].n < 0 || l->cls[c].n > XS_NEIGHBOUR_LIST_MAX)
            return efail(errstr, errstr_size, w, XS_ERR_TOO_LARGE,
                         "class %d: %d neighbours (limit %d)", c, l->cls[c].n,
                         XS_NEIGHBOUR_LIST_MAX);
        for (int k = 0; k < l->cls[c].n; k++)
            if ((err = check_str(w, "neighbour id", l->cls[c].v[k].id, XS_RECORDS_ID_MAX, errstr,
                                 errstr_size)) ||
                (err = neighbour_check(l, c, k, errstr, errstr_size, XS_ERR_INVALID)))
                return err;
    }
    size_t start = out->len;
    err = xs_buf_append_u8(out, XS_NEIGHBOUR_LIST_VERSION);
    err |= xs_buf_append_u8(out, XS_NEIGHBOUR_LIST_MAGIC);
    err |= xs_wire_u64(out, l->item);
    err |= put_str(out, l->id);
    err |= put_i64(out, l->ts);
    err |= xs_wire_u64(out, l->category);
    for (int c = 0; c < XS_RECORDS_CLASSES && !err; c++) {
        const xs_neighbour_class_t *k = &l->cls[c];
        err |= xs_wire_varint(out, k->n_users);
        err |= xs_wire_varint(out, k->pair_total);
        err |= xs_wire_varint(out, k->table);
        err |= xs_wire_varint(out, (uint64_t)k->n);
        for (int i = 0; i < k->n && !err; i++) {
            err |= xs_wire_u64(out, k->v[i].item);
            err |= put_str(out, k->v[i].id);
            err |= xs_wire_f32(out, k->v[i].sim);
            err |= xs_wire_varint(out, k->v[i].count);
        }
    }
    if (err) {
        out->len = start;
        return efail(errstr, errstr_size, w, XS_ERR_NOMEM, "out of memory");
    }
    return XS_OK;
}

xs_err_t xs_neighbour_list_decode(xs_neighbour_list_t *l, const void *data, size_t len,
                                  char *errstr, size_t errstr_size)
{
    xs_neighbour_list_clear(l);
    dec_t d = {{data, (const uint8_t *)data + len, false}, data, NAME_LIST, errstr, errstr_size};
    xs_wire_reader_t *r = &d.r;
    xs_err_t err = dec_head(&d, XS_NEIGHBOUR_LIST_VERSION, XS_NEIGHBOUR_LIST_MAGIC);
    if (err)
        return err;
    l->item = xs_wire_get_u64(r);
    if (r->bad) {
        err = truncated(&d, "the item key");
        goto out;
    }
    if (!l->item) {
        err = fail(&d, XS_ERR_DECODE, "item key 0");
        goto out;
    }
    if ((err = get_str(&d, "id", XS_RECORDS_ID_MAX, false, &l->id)))
        goto out;
    if (l->id && xs_hash_str(l->id) != l->item) {
        err = fail(&d, XS_ERR_DECODE, "id does not match the item key");
        goto out;
    }
    l->ts = get_i64(r);
    l->category = xs_wire_get_u64(r);
    for (int c = 0; c < XS_RECORDS_CLASSES; c++) {
        xs_neighbour_class_t *k = &l->cls[c];
        uint64_t nu = 0, n = 0;
        if (!get_bounded(&d, UINT32_MAX, &nu) && !r->bad) {
            err = fail(&d, XS_ERR_DECODE, "class %d: n_users %llu over 2^32 - 1", c,
                       (unsigned long long)nu);
            goto out;
        }
        k->n_users = (uint32_t)nu;
        k->pair_total = xs_wire_get_varint(r);
        k->table = xs_wire_get_varint(r);
        n = xs_wire_get_varint(r);
        if (r->bad) {
            err = truncated(&d, "a class's counts");
            goto out;
        }
        if (n > XS_NEIGHBOUR_LIST_MAX) {
            err = fail(&d, XS_ERR_TOO_LARGE, "class %d: %llu neighbours (limit %d)", c,
                       (unsigned long long)n, XS_NEIGHBOUR_LIST_MAX);
            goto out;
        }
        if (n > left(&d) / MIN_NEIGHBOUR_BYTES) {
            err = truncated(&d, "the neighbours");
            goto out;
        }
        if (n && !(k->v = calloc((size_t)n, sizeof(*k->v)))) {
            err = fail(&d, XS_ERR_NOMEM, "out of memory");
            goto out;
        }
        for (int i = 0; i < (int)n; i++) {
            xs_neighbour_rec_t *x = &k->v[i];
            x->item = xs_wire_get_u64(r);
            k->n++;
            if ((err = get_str(&d, "neighbour id", XS_RECORDS_ID_MAX, false, &x->id)))
                goto out;
            x->sim = xs_wire_get_f32(r);
            uint64_t cnt = 0;
            if (!get_bounded(&d, UINT32_MAX, &cnt) && !r->bad) {
                err = fail(&d, XS_ERR_DECODE, "class %d neighbour %d: count over 2^32 - 1", c, i);
                goto out;
            }
            if (r->bad) {
                err = truncated(&d, "a neighbour");
                goto out;
            }
            x->count = (uint32_t)cnt;
            if ((err = neighbour_check(l, c, i, errstr, errstr_size, XS_ERR_DECODE)))
                goto out;
        }
    }
    err = dec_end(&d);
out:
    if (err)
        xs_neighbour_list_clear(l);
    return err;
}

bool xs_neighbour_list_equal(const xs_neighbour_list_t *x, const xs_neighbour_list_t *y)
{
    if (x->item != y->item || !str_eq(x->id, y->id) || x->ts != y->ts || x->category != y->category)
        return false;
    for (int c = 0; c < XS_RECORDS_CLASSES; c++) {
        const xs_neighbour_class_t *a = &x->cls[c], *b = &y->cls[c];
        if (a->n_users != b->n_users || a->pair_total != b->pair_total || a->table != b->table ||
            a->n != b->n)
            return false;
        for (int k = 0; k < a->n; k++)
            if (a->v[k].item != b->v[k].item || !str_eq(a->v[k].id, b->v[k].id) ||
                memcmp(&a->v[k].sim, &b->v[k].sim, sizeof(float)) != 0 ||
                a->v[k].count != b->v[k].count)
                return false;
    }
    return true;
}

void xs_neighbour_list_clear(xs_neighbour_list_t *l)
{
    if (!l)
        return;
    free(l->id);
    for (int c = 0; c < XS_RECORDS_CLASSES; c++) {
        for (int k = 0; k < l->cls[c].n; k++)
            free(l->cls[c].v[k].id);
        free(l->cls[c].v);
    }
    memset(l, 0, sizeof(*l));
}

/* ======================================================================== */
/* Catalog entry                                                            */
/* ======================================================================== */

xs_err_t xs_catalog_entry_encode(const xs_catalog_entry_t *c, xs_buf_t *out, char *errstr,
                                 size_t errstr_size)
{
    const char *w = NAME_CATALOG;
    xs_err_t err;
    if (!c->id || !*c->id)
        return efail(errstr, errstr_size, w, XS_ERR_INVALID, "empty id");
    if ((err = check_str(w, "id", c->id, XS_RECORDS_ID_MAX, errstr, errstr_size)) ||
        (err = check_str(w, "title", c->title, XS_RECORDS_TITLE_MAX, errstr, errstr_size)) ||
        (err = check_str(w, "category", c->category, XS_RECORDS_ID_MAX, errstr, errstr_size)) ||
        (err = check_str(w, "family", c->family, XS_RECORDS_ID_MAX, errstr, errstr_size)))
        return err;
    uint8_t flags =
        (uint8_t)((c->deleted ? CF_DELETED : 0) | (c->in_stock ? 0 : CF_OUT_OF_STOCK) |
                  (c->repurchasable ? CF_REPURCHASABLE : 0) | (c->has_price ? CF_PRICE : 0) |
                  (c->has_from ? CF_FROM : 0) | (c->has_until ? CF_UNTIL : 0));
    size_t start = out->len;
    err = xs_buf_append_u8(out, XS_CATALOG_ENTRY_VERSION);
    err |= xs_buf_append_u8(out, XS_CATALOG_ENTRY_MAGIC);
    err |= put_i64(out, c->ts);
    err |= xs_buf_append_u8(out, flags);
    err |= put_str(out, c->id);
    err |= put_str(out, c->title);
    err |= put_str(out, c->category);
    err |= put_str(out, c->family);
    if (c->has_price)
        err |= put_f64(out, c->price);
    if (c->has_from)
        err |= put_i64(out, c->available_from);
    if (c->has_until)
        err |= put_i64(out, c->available_until);
    if (err) {
        out->len = start;
        return efail(errstr, errstr_size, w, XS_ERR_NOMEM, "out of memory");
    }
    return XS_OK;
}

xs_err_t xs_catalog_entry_decode(xs_catalog_entry_t *c, const void *data, size_t len, char *errstr,
                                 size_t errstr_size)
{
    xs_catalog_entry_clear(c);
    dec_t d = {{data, (const uint8_t *)data + len, false}, data, NAME_CATALOG, errstr, errstr_size};
    xs_wire_reader_t *r = &d.r;
    xs_err_t err = dec_head(&d, XS_CATALOG_ENTRY_VERSION, XS_CATALOG_ENTRY_MAGIC);
    if (err)
        return err;
    c->ts = get_i64(r);
    uint8_t flags = xs_wire_get_u8(r);
    if (r->bad) {
        err = truncated(&d, "the header");
        goto out;
    }
    if (flags & ~CF_ALL) {
        err = fail(&d, XS_ERR_DECODE, "unknown flags 0x%02x", flags & ~CF_ALL);
        goto out;
    }
    c->deleted = flags & CF_DELETED;
    c->in_stock = !(flags & CF_OUT_OF_STOCK);
    c->repurchasable = flags & CF_REPURCHASABLE;
    c->has_price = flags & CF_PRICE;
    c->has_from = flags & CF_FROM;
    c->has_until = flags & CF_UNTIL;
    if ((err = get_str(&d, "id", XS_RECORDS_ID_MAX, true, &c->id)) ||
        (err = get_str(&d, "title", XS_RECORDS_TITLE_MAX, false, &c->title)) ||
        (err = get_str(&d, "category", XS_RECORDS_ID_MAX, false, &c->category)) ||
        (err = get_str(&d, "family", XS_RECORDS_ID_MAX, false, &c->family)))
        goto out;
    if (c->has_price)
        c->price = get_f64(r);
    if (c->has_from)
        c->available_from = get_i64(r);
    if (c->has_until)
        c->available_until = get_i64(r);
    err = dec_end(&d);
out:
    if (err)
        xs_catalog_entry_clear(c);
    return err;
}

bool xs_catalog_entry_equal(const xs_catalog_entry_t *x, const xs_catalog_entry_t *y)
{
    return str_eq(x->id, y->id) && str_eq(x->title, y->title) && str_eq(x->category, y->category) &&
           str_eq(x->family, y->family) && x->ts == y->ts && x->in_stock == y->in_stock &&
           x->repurchasable == y->repurchasable && x->deleted == y->deleted &&
           x->has_price == y->has_price && x->has_from == y->has_from &&
           x->has_until == y->has_until &&
           (!x->has_price || memcmp(&x->price, &y->price, sizeof(double)) == 0) &&
           (!x->has_from || x->available_from == y->available_from) &&
           (!x->has_until || x->available_until == y->available_until);
}

void xs_catalog_entry_clear(xs_catalog_entry_t *c)
{
    if (!c)
        return;
    free(c->id);
    free(c->title);
    free(c->category);
    free(c->family);
    memset(c, 0, sizeof(*c));
}
