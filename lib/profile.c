/*
 * profile.c — user profiles: bounded decayed affinities, cart, dedup ring,
 * and their versioned stored format. See include/xsell/profile.h for the
 * layout and invariants.
 */
#include "xsell/profile.h"

#include <math.h>
#include <string.h>

#include "wire.h"

void xs_profile_init(xs_profile_t *p)
{
    memset(p, 0, sizeof(*p));
}

float xs_profile_decay(float score, int64_t from, int64_t now, double half_life_ms)
{
    if (now <= from || half_life_ms <= 0)
        return score;
    return (float)(score * exp2(-(double)(now - from) / half_life_ms));
}

bool xs_profile_check_dedup(xs_profile_t *p, uint64_t event_hash)
{
    uint32_t h = (uint32_t)(event_hash ^ (event_hash >> 32));
    if (!h)
        h = 1;
    for (int i = 0; i < p->n_dedup; i++)
        if (p->dedup[i] == h)
            return true;
    p->dedup[p->dedup_pos] = h;
    p->dedup_pos = (uint8_t)((p->dedup_pos + 1) % XS_PROFILE_DEDUP);
    if (p->n_dedup < XS_PROFILE_DEDUP)
        p->n_dedup++;
    return false;
}

int xs_profile_find(const xs_profile_t *p, uint64_t item)
{
    for (int i = 0; i < p->n_items; i++)
        if (p->items[i].item == item)
            return i;
    return -1;
}

/* Index of the entry to evict: lowest decayed score, then oldest, then smallest id. */
static int weakest_item(const xs_profile_t *p, int64_t now, double half_life_ms)
{
    int best = 0;
    float best_score = xs_profile_decay(p->items[0].score, p->items[0].ts, now, half_life_ms);
    for (int i = 1; i < p->n_items; i++) {
        const xs_profile_item_t *it = &p->items[i];
        float s = xs_profile_decay(it->score, it->ts, now, half_life_ms);
        const xs_profile_item_t *b = &p->items[best];
        if (s < best_score ||
            (s == best_score && (it->ts < b->ts || (it->ts == b->ts && it->item < b->item)))) {
            best = i;
            best_score = s;
        }
    }
    return best;
}

xs_signal_t xs_profile_touch(xs_profile_t *p, uint64_t item, xs_signal_t signal, float weight,
                             int64_t now, double half_life_ms)
{
    int i = xs_profile_find(p, item);
    xs_signal_t prev = XS_SIG_NONE;
    if (i < 0) {
        if (p->n_items == XS_PROFILE_MAX_ITEMS) {
            i = weakest_item(p, now, half_life_ms);
        } else {
            i = p->n_items++;
        }
        p->items[i] = (xs_profile_item_t){.item = item, .ts = now};
    } else {
        prev = (xs_signal_t)p->items[i].signal;
    }
    xs_profile_item_t *it = &p->items[i];
    /* Event time may go backwards slightly across producers: never decay into the future. */
    int64_t t = now > it->ts ? now : it->ts;
    it->score = xs_profile_decay(it->score, it->ts, t, half_life_ms) + weight;
    it->ts = t;
    if (signal > it->signal)
        it->signal = (uint8_t)signal;
    if (signal == XS_SIG_PURCHASE)
        it->bought_ts = t;
    if (signal >= XS_SIG_CART)
        p->flags |= XS_PROFILE_F_BOUGHT;
    return prev;
}

void xs_profile_touch_cat(xs_profile_t *p, uint64_t cat, float weight, int64_t now,
                          double half_life_ms)
{
    if (!cat)
        return;
    int i = -1;
    for (int k = 0; k < p->n_cats; k++)
        if (p->cats[k].cat == cat)
            i = k;
    if (i < 0) {
        if (p->n_cats < XS_PROFILE_MAX_CATS) {
            i = p->n_cats++;
        } else {
            i = 0;
            float low = xs_profile_decay(p->cats[0].score, p->cats[0].ts, now, half_life_ms);
            for (int k = 1; k < p->n_cats; k++) {
                float s = xs_profile_decay(p->cats[k].score, p->cats[k].ts, now, half_life_ms);
                if (s < low) {
                    low = s;
                    i = k;
                }
            }
        }
        p->cats[i] = (xs_profile_cat_t){.cat = cat, .ts = now, .score = 0};
    }
    xs_profile_cat_t *c = &p->cats[i];
    int64_t t = now > c->ts ? now : c->ts;
    c->score = xs_profile_decay(c->score, c->ts, t, half_life_ms) + weight;
    c->ts = t;
}

void xs_profile_cart_add(xs_profile_t *p, uint64_t item, int32_t qty)
{
    for (int i = 0; i < p->n_cart; i++) {
        if (p->cart[i].item == item) {
            int64_t q = (int64_t)p->cart[i].qty + qty;
            p->cart[i].qty = q > INT32_MAX ? INT32_MAX : (int32_t)q;
            return;
        }
    }
    if (p->n_cart == XS_PROFILE_MAX_CART) {
        memmove(&p->cart[0], &p->cart[1], (XS_PROFILE_MAX_CART - 1) * sizeof(p->cart[0]));
        p->n_cart--;
    }
    p->cart[p->n_cart++] = (xs_cart_line_t){item, qty};
}

void xs_profile_cart_remove(xs_profile_t *p, uint64_t item, int32_t qty)
{
    for (int i = 0; i < p->n_cart; i++) {
        if (p->cart[i].item != item)
            continue;
        p->cart[i].qty -= qty;
        if (p->cart[i].qty <= 0) {
            memmove(&p->cart[i], &p->cart[i + 1], (size_t)(p->n_cart - i - 1) * sizeof(p->cart[0]));
            p->n_cart--;
        }
        return;
    }
}

void xs_profile_cart_clear(xs_profile_t *p)
{
    p->n_cart = 0;
}

bool xs_profile_in_cart(const xs_profile_t *p, uint64_t item)
{
    for (int i = 0; i < p->n_cart; i++)
        if (p->cart[i].item == item)
            return true;
    return false;
}

/* Times are stored as non-negative distances back from last_ts. */
static uint64_t back(int64_t last, int64_t ts)
{
    return last > ts ? (uint64_t)(last - ts) : 0;
}

xs_err_t xs_profile_encode(const xs_profile_t *p, xs_buf_t *out)
{
    xs_err_t err = XS_OK;
    int64_t L = p->last_ts;
    err |= xs_buf_append_u8(out, 'U');
    err |= xs_buf_append_u8(out, XS_PROFILE_VERSION);
    err |= xs_buf_append_u8(out, p->flags);
    err |= xs_wire_varint(out, (uint64_t)(L < 0 ? 0 : L));
    err |= xs_wire_varint(out, p->n_events);
    err |= xs_buf_append_u8(out, p->n_items);
    for (int i = 0; i < p->n_items; i++) {
        const xs_profile_item_t *it = &p->items[i];
        err |= xs_wire_u64(out, it->item);
        err |= xs_buf_append_u8(out, it->signal);
        err |= xs_wire_f32(out, it->score);
        err |= xs_wire_varint(out, back(L, it->ts));
        err |= xs_wire_varint(out, it->bought_ts ? back(L, it->bought_ts) + 1 : 0);
    }
    err |= xs_buf_append_u8(out, p->n_cats);
    for (int i = 0; i < p->n_cats; i++) {
        err |= xs_wire_u64(out, p->cats[i].cat);
        err |= xs_wire_f32(out, p->cats[i].score);
        err |= xs_wire_varint(out, back(L, p->cats[i].ts));
    }
    err |= xs_buf_append_u8(out, p->n_cart);
    for (int i = 0; i < p->n_cart; i++) {
        err |= xs_wire_u64(out, p->cart[i].item);
        err |= xs_wire_varint(out, (uint64_t)(p->cart[i].qty < 0 ? 0 : p->cart[i].qty));
    }
    err |= xs_buf_append_u8(out, p->n_dedup);
    err |= xs_buf_append_u8(out, p->dedup_pos);
    for (int i = 0; i < p->n_dedup; i++) {
        uint32_t h = p->dedup[i];
        uint8_t b[4] = {(uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16), (uint8_t)(h >> 24)};
        err |= xs_buf_append(out, b, 4);
    }
    for (int i = 0; i < XS_PLACEMENT__COUNT; i++) {
        uint32_t h = p->last_list_hash[i];
        uint8_t b[4] = {(uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16), (uint8_t)(h >> 24)};
        err |= xs_buf_append(out, b, 4);
        err |= xs_wire_varint(out, h ? back(L, p->last_list_ts[i]) : 0);
    }
    return err ? XS_ERR_NOMEM : XS_OK;
}

static uint32_t get_u32(xs_wire_reader_t *r)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t)xs_wire_get_u8(r) << (8 * i);
    return v;
}

/* The time `d` (a stored distance) before last; a distance reaching back past
 * the epoch is corrupt (the encoder never writes one: times are >= 0). */
static int64_t ts_back(xs_wire_reader_t *r, int64_t last, uint64_t d)
{
    if (d > (uint64_t)last) {
        r->bad = true;
        return 0;
    }
    return last - (int64_t)d;
}

xs_err_t xs_profile_decode(xs_profile_t *p, const void *data, size_t len, char *errstr,
                           size_t errstr_size)
{
    xs_wire_reader_t r = {data, (const uint8_t *)data + len, false};
    xs_profile_init(p);
    if (len < 2 || r.p[0] != 'U') {
        xs_errstr_set(errstr, errstr_size, "not a user profile (bad magic)");
        return XS_ERR_DECODE;
    }
    if (r.p[1] > XS_PROFILE_VERSION) {
        xs_errstr_set(errstr, errstr_size,
                      "user profile format version %u is newer than this build (%u)", r.p[1],
                      XS_PROFILE_VERSION);
        return XS_ERR_VERSION;
    }
    r.p += 2;
    p->flags = xs_wire_get_u8(&r);
    uint64_t L = xs_wire_get_varint(&r);
    if (L > INT64_MAX)
        r.bad = true;
    p->last_ts = (int64_t)L;
    uint64_t nev = xs_wire_get_varint(&r);
    p->n_events = nev > UINT32_MAX ? UINT32_MAX : (uint32_t)nev;
    uint8_t n = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_MAX_ITEMS)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++) {
        xs_profile_item_t *it = &p->items[i];
        it->item = xs_wire_get_u64(&r);
        it->signal = xs_wire_get_u8(&r);
        it->score = xs_wire_get_f32(&r);
        it->ts = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
        uint64_t b = xs_wire_get_varint(&r);
        it->bought_ts = b ? ts_back(&r, p->last_ts, b - 1) : 0;
        if (it->signal > XS_SIG_PURCHASE || !isfinite(it->score))
            r.bad = true;
    }
    p->n_items = r.bad ? 0 : n;
    n = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_MAX_CATS)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++) {
        p->cats[i].cat = xs_wire_get_u64(&r);
        p->cats[i].score = xs_wire_get_f32(&r);
        p->cats[i].ts = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
    }
    p->n_cats = r.bad ? 0 : n;
    n = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_MAX_CART)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++) {
        p->cart[i].item = xs_wire_get_u64(&r);
        uint64_t q = xs_wire_get_varint(&r);
        p->cart[i].qty = q > INT32_MAX ? INT32_MAX : (int32_t)q;
    }
    p->n_cart = r.bad ? 0 : n;
    n = xs_wire_get_u8(&r);
    p->dedup_pos = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_DEDUP || p->dedup_pos >= XS_PROFILE_DEDUP)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++)
        p->dedup[i] = get_u32(&r);
    p->n_dedup = r.bad ? 0 : n;
    for (int i = 0; i < XS_PLACEMENT__COUNT && !r.bad; i++) {
        p->last_list_hash[i] = get_u32(&r);
        p->last_list_ts[i] = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
    }
    if (r.bad || r.p != r.end) {
        xs_profile_init(p);
        xs_errstr_set(errstr, errstr_size, "corrupt user profile (%s)",
                      r.bad ? "truncated or out-of-range field" : "trailing bytes");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}
