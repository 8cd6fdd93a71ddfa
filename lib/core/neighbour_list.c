/*
 * neighbour_list.c — the neighbour list codec (include/xsell/records.h; the byte layout in
 * docs/RECORDS.md; the rules shared by the three records in records_codec.h).
 */
#include "xsell/records.h"

#include <math.h>

#include "xsell/hash.h"
#include "records_codec.h"

#define NAME_LIST "neighbour list"

/* Smallest encoding of a neighbour, to bound a count by the bytes left. */
#define MIN_NEIGHBOUR_BYTES 14 /* item, id length 0, sim, count */

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
