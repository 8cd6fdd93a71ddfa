/*
 * xsell: the names and globals records (include/xsell/store_records.h): one
 * codec each, for the engine and for `xsell inspect`.
 */
#include "xsell/store_records.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"

static void put_f64(xs_buf_t *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, 8);
    xs_wire_u64(b, v);
}

xs_err_t xs_store_records_name_encode(const xs_name_rec_t *n, xs_buf_t *b)
{
    size_t il = strlen(n->id), tl = n->title ? strlen(n->title) : 0;
    xs_buf_append_u8(b, 'N');
    xs_buf_append_u8(b, XS_NAME_VERSION);
    xs_wire_varint(b, il);
    xs_buf_append(b, n->id, il);
    xs_wire_varint(b, tl);
    if (tl)
        xs_buf_append(b, n->title, tl);
    xs_wire_u64(b, n->family);
    xs_buf_append_u8(
        b, (uint8_t)((n->has_price ? 1 : 0) | (n->has_from ? 2 : 0) | (n->has_until ? 4 : 0)));
    if (n->has_price)
        put_f64(b, n->price);
    if (n->has_from)
        xs_wire_u64(b, (uint64_t)n->available_from);
    if (n->has_until)
        xs_wire_u64(b, (uint64_t)n->available_until);
    return b->data ? XS_OK : XS_ERR_NOMEM;
}

xs_err_t xs_store_records_globals_encode(const xs_globals_t *g, xs_buf_t *b)
{
    xs_buf_append_u8(b, 'M');
    xs_buf_append_u8(b, XS_GLOBALS_VERSION);
    xs_wire_varint(b, g->users_total);
    xs_wire_varint(b, g->users_bought);
    xs_wire_u64(b, (uint64_t)g->trend_ref);
    xs_wire_varint(b, (uint64_t)g->n_trend);
    for (int i = 0; i < g->n_trend; i++) {
        xs_wire_u64(b, g->trend_item[i]);
        put_f64(b, g->trend_weight[i]);
    }
    for (int c = 0; c < 2; c++)
        xs_wire_varint(b, g->pairs_total[c]);
    return b->data ? XS_OK : XS_ERR_NOMEM;
}

void xs_store_records_name_rec_clear(xs_name_rec_t *n)
{
    free(n->id);
    free(n->title);
    n->id = NULL;
    n->title = NULL;
}

xs_err_t xs_store_records_name_decode(xs_name_rec_t *n, const void *data, size_t len, char *errstr,
                                      size_t errstr_size)
{
    const uint8_t *p = data;
    xs_wire_reader_t r = {p, p + len, false};
    char **dst[2] = {&n->id, &n->title};
    n->id = n->title = NULL;
    n->family = 0;
    n->has_price = n->has_from = n->has_until = false;
    n->price = 0;
    n->available_from = n->available_until = 0;
    if (len < 2 || p[0] != 'N') {
        xs_err_set(errstr, errstr_size, "not a name record (bad magic)");
        return XS_ERR_DECODE;
    }
    if (p[1] == 0) {
        xs_err_set(errstr, errstr_size, "corrupt name record (version 0)");
        return XS_ERR_DECODE;
    }
    if (p[1] > XS_NAME_VERSION) {
        xs_err_set(errstr, errstr_size, "name record version %u is newer than this build (%u)",
                   p[1], XS_NAME_VERSION);
        return XS_ERR_VERSION;
    }
    r.p += 2;
    for (int i = 0; i < 2; i++) {
        uint64_t l = xs_wire_get_varint(&r);
        if (r.bad || l > (uint64_t)(r.end - r.p)) {
            xs_store_records_name_rec_clear(n);
            xs_err_set(errstr, errstr_size, "corrupt name record (truncated)");
            return XS_ERR_DECODE;
        }
        if (i == 0 || l > 0) {
            if (!(*dst[i] = xs_str_ndup((const char *)r.p, (size_t)l))) {
                xs_store_records_name_rec_clear(n);
                xs_err_set(errstr, errstr_size, "out of memory");
                return XS_ERR_NOMEM;
            }
        }
        r.p += l;
    }
    if (p[1] >= 2)
        n->family = xs_wire_get_u64(&r);
    uint8_t flags = p[1] >= 3 ? xs_wire_get_u8(&r) : 0;
    if ((n->has_price = flags & 1)) {
        uint64_t v = xs_wire_get_u64(&r);
        memcpy(&n->price, &v, 8);
    }
    if ((n->has_from = flags & 2))
        n->available_from = (int64_t)xs_wire_get_u64(&r);
    if ((n->has_until = flags & 4))
        n->available_until = (int64_t)xs_wire_get_u64(&r);
    if (flags & ~7) {
        xs_store_records_name_rec_clear(n);
        xs_err_set(errstr, errstr_size, "corrupt name record (unknown flags 0x%02x)", flags);
        return XS_ERR_DECODE;
    }
    if (r.bad || r.p != r.end) {
        xs_store_records_name_rec_clear(n);
        xs_err_set(errstr, errstr_size, "corrupt name record (trailing bytes)");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}

xs_err_t xs_store_records_globals_decode(xs_globals_t *g, const void *data, size_t len,
                                         char *errstr, size_t errstr_size)
{
    const uint8_t *p = data;
    xs_wire_reader_t r = {p, p + len, false};
    memset(g, 0, sizeof(*g));
    if (len < 2 || p[0] != 'M') {
        xs_err_set(errstr, errstr_size, "not a globals record (bad magic)");
        return XS_ERR_DECODE;
    }
    if (p[1] == 0) {
        xs_err_set(errstr, errstr_size, "corrupt globals record (version 0)");
        return XS_ERR_DECODE;
    }
    if (p[1] > XS_GLOBALS_VERSION) {
        xs_err_set(errstr, errstr_size, "globals version %u is newer than this build (%u)", p[1],
                   XS_GLOBALS_VERSION);
        return XS_ERR_VERSION;
    }
    r.p += 2;
    g->users_total = xs_wire_get_varint(&r);
    g->users_bought = xs_wire_get_varint(&r);
    g->trend_ref = (int64_t)xs_wire_get_u64(&r);
    uint64_t n = xs_wire_get_varint(&r);
    if (n > XS_GLOBALS_TREND_CAP)
        r.bad = true;
    for (uint64_t i = 0; i < n && !r.bad; i++) {
        g->trend_item[i] = xs_wire_get_u64(&r);
        uint64_t v = xs_wire_get_u64(&r);
        memcpy(&g->trend_weight[i], &v, 8);
    }
    for (int c = 0; c < 2 && p[1] >= 2 && !r.bad; c++)
        g->pairs_total[c] = xs_wire_get_varint(&r);
    if (r.bad || r.p != r.end) {
        memset(g, 0, sizeof(*g));
        xs_err_set(errstr, errstr_size, "corrupt globals record (%s)",
                   r.bad ? "truncated or out-of-range field" : "trailing bytes");
        return XS_ERR_DECODE;
    }
    g->n_trend = (int)n;
    g->version = p[1];
    return XS_OK;
}
