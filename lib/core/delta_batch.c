/*
 * delta_batch.c — the pair-delta batch codec (include/xsell/records.h; the byte layout in
 * docs/RECORDS.md; the rules shared by the three records in records_codec.h).
 */
#include "xsell/records.h"

#include <math.h>

#include "hmap.h"
#include "xsell/hash.h"
#include "records_codec.h"

#define NAME_BATCH "pair-delta batch"

/* Smallest encodings, to bound a count by the bytes left before allocating. */
#define MIN_ENTRY_BYTES 12 /* USERS: kind, class, a, count, back */
#define MIN_ID_BYTES 2     /* varint length, one byte */

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

size_t xs_delta_batch_n_parts(const xs_delta_batch_t *b, size_t max_entries)
{
    if (!max_entries || b->n_entries <= max_entries)
        return 1;
    return (b->n_entries + max_entries - 1) / max_entries;
}

/* Appends b's id of key (ix: key -> index + 1 in b->ids) to out once. */
static xs_err_t part_id(const xs_delta_batch_t *b, const xs_hmap_t *ix, xs_hmap_t *done,
                        uint64_t key, xs_delta_batch_t *out)
{
    uintptr_t i = key ? (uintptr_t)xs_hmap_get(ix, key) : 0;
    if (!i || xs_hmap_get(done, key))
        return XS_OK;
    if (xs_hmap_put(done, key, (void *)1) ||
        grow((void **)&out->ids, &out->cap_ids, out->n_ids, sizeof(*out->ids)))
        return XS_ERR_NOMEM;
    char *c = xs_str_dup(b->ids[i - 1].id);
    if (!c)
        return XS_ERR_NOMEM;
    out->ids[out->n_ids++] = (xs_named_t){key, c};
    return XS_OK;
}

xs_err_t xs_delta_batch_part(const xs_delta_batch_t *b, size_t max_entries, uint32_t part,
                             xs_delta_batch_t *out, char *errstr, size_t errstr_size)
{
    xs_delta_batch_clear(out);
    size_t n_parts = xs_delta_batch_n_parts(b, max_entries);
    if (part >= n_parts || n_parts > UINT32_MAX)
        return efail(errstr, errstr_size, NAME_BATCH, XS_ERR_INVALID,
                     "part %u of %zu (at most %zu entries each)", part, n_parts, max_entries);
    size_t first = max_entries ? (size_t)part * max_entries : 0;
    size_t n = n_parts == 1 ? b->n_entries : max_entries;
    if (first + n > b->n_entries)
        n = b->n_entries - first;
    out->partition = b->partition;
    out->seq = b->seq;
    out->part = part;
    out->n_parts = (uint32_t)n_parts;
    out->ts = b->ts;
    if (part == 0) { /* applied once */
        out->users_total_delta = b->users_total_delta;
        out->users_bought_delta = b->users_bought_delta;
    }
    xs_err_t err = XS_OK;
    xs_hmap_t ix = {0}, done = {0};
    for (size_t i = 0; i < b->n_ids && !err; i++)
        if (b->ids[i].key && !xs_hmap_get(&ix, b->ids[i].key))
            err = xs_hmap_put(&ix, b->ids[i].key, (void *)(uintptr_t)(i + 1));
    if (!err && n && !(out->entries = malloc(n * sizeof(*out->entries))))
        err = XS_ERR_NOMEM;
    for (size_t i = first; i < first + n && !err; i++) {
        const xs_delta_t *d = &b->entries[i];
        out->entries[out->n_entries++] = *d;
        out->cap_entries = out->n_entries;
        err = part_id(b, &ix, &done, d->a, out);
        if (!err && (d->kind == XS_DELTA_PAIR || d->kind == XS_DELTA_CATEGORY))
            err = part_id(b, &ix, &done, d->b, out);
    }
    xs_hmap_free(&ix);
    xs_hmap_free(&done);
    if (err) {
        xs_delta_batch_clear(out);
        return efail(errstr, errstr_size, NAME_BATCH, err, "out of memory");
    }
    return XS_OK;
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
