/*
 * catalog_entry.c — the catalog entry codec (include/xsell/records.h; the byte layout in
 * docs/RECORDS.md; the rules shared by the three records in records_codec.h).
 */
#include "xsell/records.h"

#include "records_codec.h"

#define NAME_CATALOG "catalog entry"

/* Catalog flags. */
#define CF_DELETED 0x01
#define CF_OUT_OF_STOCK 0x02
#define CF_REPURCHASABLE 0x04
#define CF_PRICE 0x08
#define CF_FROM 0x10
#define CF_UNTIL 0x20
#define CF_ALL 0x3f

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
