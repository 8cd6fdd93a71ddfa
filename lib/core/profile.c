/*
 * profile.c — user profiles: bounded decayed affinities, cart, exclusion
 * filters, dedup ring, last lists, and their versioned stored format. See
 * include/xsell/profile.h for the layout and invariants.
 */
#include "xsell/profile.h"

#include <math.h>
#include <string.h>

#include "wire.h"

void xs_profile_init(xs_profile_t *p)
{
    memset(p, 0, sizeof(*p));
}

/* ---- bfloat16 ------------------------------------------------------------------------- */

static uint16_t bf16_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    return (uint16_t)(u >> 16);
}

static float bf16_float(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* f rounded to the nearest bfloat16 (ties to even); finite stays finite. */
static float bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if (!isfinite(f))
        return f;
    uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    if ((r & 0x7f800000u) == 0x7f800000u) /* rounded up to infinity: the largest finite */
        r = (u & 0x80000000u) | 0x7f7f0000u;
    memcpy(&f, &r, sizeof(f));
    return f;
}

/* ---- Bloom filters -------------------------------------------------------------------- */

/* splitmix64 of the item hash: the filter's bit positions and the list
 * fingerprints come from different bits of it. */
static uint64_t mix(uint64_t x)
{
    x += UINT64_C(0x9e3779b97f4a7c15);
    x = (x ^ (x >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94d049bb133111eb);
    return x ^ (x >> 31);
}

void xs_profile_bloom_add(xs_bloom_t *b, uint64_t item)
{
    uint64_t z = mix(item);
    for (int k = 0; k < XS_PROFILE_BLOOM_K; k++) {
        unsigned bit = (unsigned)(z >> (8 * k)) & (XS_PROFILE_BLOOM_BYTES * 8 - 1);
        b->bits[bit >> 3] |= (uint8_t)(1u << (bit & 7));
    }
}

bool xs_profile_bloom_has(const xs_bloom_t *b, uint64_t item)
{
    uint64_t z = mix(item);
    for (int k = 0; k < XS_PROFILE_BLOOM_K; k++) {
        unsigned bit = (unsigned)(z >> (8 * k)) & (XS_PROFILE_BLOOM_BYTES * 8 - 1);
        if (!(b->bits[bit >> 3] & (1u << (bit & 7))))
            return false;
    }
    return true;
}

uint16_t xs_profile_fp(uint64_t item)
{
    return (uint16_t)(mix(item) >> 48);
}

/* ---- rebuy buckets -------------------------------------------------------------------- */

/* Keeps the buckets ordered by hi (then lo), so the layout is canonical. */
static void buckets_sort(xs_profile_t *p)
{
    for (int i = 1; i < p->n_buckets; i++)
        for (int k = i; k > 0; k--) {
            xs_rebuy_bucket_t *a = &p->rebuy[k - 1], *b = &p->rebuy[k];
            if (a->hi < b->hi || (a->hi == b->hi && a->lo <= b->lo))
                break;
            xs_rebuy_bucket_t t = *a;
            *a = *b;
            *b = t;
        }
}

static void bucket_drop(xs_profile_t *p, int i)
{
    memmove(&p->rebuy[i], &p->rebuy[i + 1], (size_t)(p->n_buckets - i - 1) * sizeof(p->rebuy[0]));
    p->n_buckets--;
    memset(&p->rebuy[p->n_buckets], 0, sizeof(p->rebuy[0]));
}

/*
 * Records that item was bought at t (and was evicted from the items): into
 * the bucket whose span stays within rebuy_ms with t, else a new bucket,
 * else (all in use and none expired) the bucket whose span grows least.
 * Never loses an item that a window <= rebuy_ms could need.
 */
static void rebuy_add(xs_profile_t *p, uint64_t item, int64_t t, int64_t now, int64_t rebuy_ms)
{
    if (rebuy_ms <= 0 || now - t >= rebuy_ms)
        return; /* outside every window */
    for (int i = p->n_buckets - 1; i >= 0; i--)
        if (now - p->rebuy[i].hi >= rebuy_ms)
            bucket_drop(p, i);
    int best = -1;
    int64_t best_span = 0;
    for (int i = 0; i < p->n_buckets; i++) {
        const xs_rebuy_bucket_t *b = &p->rebuy[i];
        int64_t lo = t < b->lo ? t : b->lo, hi = t > b->hi ? t : b->hi;
        if (best < 0 || hi - lo < best_span) {
            best = i;
            best_span = hi - lo;
        }
    }
    if ((best < 0 || best_span > rebuy_ms) && p->n_buckets < XS_PROFILE_REBUY_BUCKETS) {
        best = p->n_buckets++;
        p->rebuy[best] = (xs_rebuy_bucket_t){.lo = t, .hi = t};
    }
    xs_rebuy_bucket_t *b = &p->rebuy[best];
    if (t < b->lo)
        b->lo = t;
    if (t > b->hi)
        b->hi = t;
    xs_profile_bloom_add(&b->bloom, item);
    buckets_sort(p);
}

bool xs_profile_bought_within(const xs_profile_t *p, uint64_t item, int64_t now, int64_t window_ms)
{
    if (window_ms <= 0)
        return false;
    int k = xs_profile_find(p, item);
    if (k >= 0 && p->items[k].bought_ts && now - p->items[k].bought_ts < window_ms)
        return true;
    for (int i = 0; i < p->n_buckets; i++)
        if (now - p->rebuy[i].hi < window_ms && xs_profile_bloom_has(&p->rebuy[i].bloom, item))
            return true;
    return false;
}

void xs_profile_forget(xs_profile_t *p, int64_t rebuy_ms)
{
    int64_t cut = p->last_ts - XS_PROFILE_HORIZON_MS; /* kept: times > cut */
    int n = 0;
    for (int i = 0; i < p->n_items; i++)
        if (p->items[i].ts > cut)
            p->items[n++] = p->items[i];
    memset(&p->items[n], 0, (size_t)(p->n_items - n) * sizeof(p->items[0]));
    p->n_items = (uint8_t)n;
    n = 0;
    for (int i = 0; i < p->n_cats; i++)
        if (p->cats[i].ts > cut)
            p->cats[n++] = p->cats[i];
    memset(&p->cats[n], 0, (size_t)(p->n_cats - n) * sizeof(p->cats[0]));
    p->n_cats = (uint8_t)n;
    for (int i = 0; i < XS_PLACEMENT__COUNT; i++)
        if (p->last_list_hash[i] && p->last_list_ts[i] <= cut) {
            p->last_list_hash[i] = 0;
            p->last_list_ts[i] = 0;
            p->last_n[i] = 0;
            memset(p->last_fp[i], 0, sizeof(p->last_fp[i]));
        }
    for (int i = p->n_buckets - 1; i >= 0; i--) {
        if (p->last_ts - p->rebuy[i].hi >= rebuy_ms)
            bucket_drop(p, i);
        else if (p->rebuy[i].lo <= cut)
            p->rebuy[i].lo = cut + 1; /* lo only steers insertion: clamping it loses nothing */
    }
}

/* ---- last lists ----------------------------------------------------------------------- */

void xs_profile_set_last_list(xs_profile_t *p, int placement, uint32_t h, int64_t ts,
                              const uint64_t *items, int n)
{
    if (placement < 0 || placement >= XS_PLACEMENT__COUNT)
        return;
    p->last_list_hash[placement] = h;
    p->last_list_ts[placement] = h ? ts : 0;
    memset(p->last_fp[placement], 0, sizeof(p->last_fp[placement]));
    if (n > XS_PROFILE_SEEN)
        n = XS_PROFILE_SEEN;
    if (!h || n < 0)
        n = 0;
    for (int i = 0; i < n; i++)
        p->last_fp[placement][i] = xs_profile_fp(items[i]);
    p->last_n[placement] = (uint8_t)n;
}

int xs_profile_last_list_has(const xs_profile_t *p, int placement, uint64_t item)
{
    if (placement < 0 || placement >= XS_PLACEMENT__COUNT || !p->last_list_hash[placement])
        return -1;
    uint16_t fp = xs_profile_fp(item);
    for (int i = 0; i < p->last_n[placement]; i++)
        if (p->last_fp[placement][i] == fp)
            return 1;
    return 0;
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

/* Index of the entry to evict among v[0..n): lowest decayed score, then
 * oldest, then smallest id. */
static int weakest_of(const xs_profile_item_t *v, int n, int64_t now, double half_life_ms)
{
    int best = 0;
    float best_score = xs_profile_decay(v[0].score, v[0].ts, now, half_life_ms);
    for (int i = 1; i < n; i++) {
        const xs_profile_item_t *it = &v[i];
        float s = xs_profile_decay(it->score, it->ts, now, half_life_ms);
        const xs_profile_item_t *b = &v[best];
        if (s < best_score ||
            (s == best_score && (it->ts < b->ts || (it->ts == b->ts && it->item < b->item)))) {
            best = i;
            best_score = s;
        }
    }
    return best;
}

static int weakest_item(const xs_profile_t *p, int64_t now, double half_life_ms)
{
    return weakest_of(p->items, p->n_items, now, half_life_ms);
}

xs_signal_t xs_profile_touch(xs_profile_t *p, uint64_t item, xs_signal_t signal, float weight,
                             int64_t now, double half_life_ms, int64_t rebuy_ms)
{
    int i = xs_profile_find(p, item);
    xs_signal_t prev = XS_SIG_NONE;
    if (i < 0) {
        if (p->n_items == XS_PROFILE_MAX_ITEMS) {
            i = weakest_item(p, now, half_life_ms);
            if (p->items[i].bought_ts)
                rebuy_add(p, p->items[i].item, p->items[i].bought_ts, now, rebuy_ms);
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
    it->score = bf16_round(xs_profile_decay(it->score, it->ts, t, half_life_ms) + weight);
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
    c->score = bf16_round(xs_profile_decay(c->score, c->ts, t, half_life_ms) + weight);
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
        xs_profile_bloom_add(&p->cart_over, p->cart[0].item);
        if (p->n_over < UINT8_MAX)
            p->n_over++;
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
    memset(p->cart, 0, sizeof(p->cart));
    p->n_cart = 0;
    memset(&p->cart_over, 0, sizeof(p->cart_over));
    p->n_over = 0;
}

bool xs_profile_in_cart(const xs_profile_t *p, uint64_t item)
{
    for (int i = 0; i < p->n_cart; i++)
        if (p->cart[i].item == item)
            return true;
    return p->n_over && xs_profile_bloom_has(&p->cart_over, item);
}

/* ---- merge ---------------------------------------------------------------------------- */

/* Sum of two affinities as of t (bfloat16). */
static float score_sum(float a, int64_t a_ts, float b, int64_t b_ts, int64_t t, double hl)
{
    return bf16_round(xs_profile_decay(a, a_ts, t, hl) + xs_profile_decay(b, b_ts, t, hl));
}

void xs_profile_merge(xs_profile_t *p, const xs_profile_t *src, double half_life_ms,
                      int64_t rebuy_ms)
{
    int64_t now = src->last_ts > p->last_ts ? src->last_ts : p->last_ts;
    p->last_ts = now;
    uint64_t n_ev = (uint64_t)p->n_events + src->n_events;
    p->n_events = n_ev > UINT32_MAX ? UINT32_MAX : (uint32_t)n_ev;
    p->flags |= src->flags;

    /* items: the union, an item in both summed; then the weakest evicted
     * down to the cap, as xs_profile_touch() evicts (purchases to rebuy) */
    xs_profile_item_t u[2 * XS_PROFILE_MAX_ITEMS];
    int n = p->n_items;
    memcpy(u, p->items, (size_t)n * sizeof(u[0]));
    for (int i = 0; i < src->n_items; i++) {
        const xs_profile_item_t *s = &src->items[i];
        int k = 0;
        while (k < n && u[k].item != s->item)
            k++;
        if (k == n) {
            u[n++] = *s;
            continue;
        }
        xs_profile_item_t *d = &u[k];
        int64_t t = s->ts > d->ts ? s->ts : d->ts;
        d->score = score_sum(d->score, d->ts, s->score, s->ts, t, half_life_ms);
        d->ts = t;
        if (s->signal > d->signal)
            d->signal = s->signal;
        if (s->bought_ts > d->bought_ts)
            d->bought_ts = s->bought_ts;
    }
    while (n > XS_PROFILE_MAX_ITEMS) {
        int k = weakest_of(u, n, now, half_life_ms);
        if (u[k].bought_ts)
            rebuy_add(p, u[k].item, u[k].bought_ts, now, rebuy_ms);
        memmove(&u[k], &u[k + 1], (size_t)(n - k - 1) * sizeof(u[0]));
        n--;
    }
    memset(p->items, 0, sizeof(p->items));
    memcpy(p->items, u, (size_t)n * sizeof(u[0]));
    p->n_items = (uint8_t)n;

    /* categories: the same, the lowest evicted (as xs_profile_touch_cat()) */
    xs_profile_cat_t c[2 * XS_PROFILE_MAX_CATS];
    n = p->n_cats;
    memcpy(c, p->cats, (size_t)n * sizeof(c[0]));
    for (int i = 0; i < src->n_cats; i++) {
        const xs_profile_cat_t *s = &src->cats[i];
        int k = 0;
        while (k < n && c[k].cat != s->cat)
            k++;
        if (k == n) {
            c[n++] = *s;
            continue;
        }
        int64_t t = s->ts > c[k].ts ? s->ts : c[k].ts;
        c[k].score = score_sum(c[k].score, c[k].ts, s->score, s->ts, t, half_life_ms);
        c[k].ts = t;
    }
    while (n > XS_PROFILE_MAX_CATS) {
        int k = 0;
        float low = xs_profile_decay(c[0].score, c[0].ts, now, half_life_ms);
        for (int i = 1; i < n; i++) {
            float s = xs_profile_decay(c[i].score, c[i].ts, now, half_life_ms);
            if (s < low) {
                low = s;
                k = i;
            }
        }
        memmove(&c[k], &c[k + 1], (size_t)(n - k - 1) * sizeof(c[0]));
        n--;
    }
    memset(p->cats, 0, sizeof(p->cats));
    memcpy(p->cats, c, (size_t)n * sizeof(c[0]));
    p->n_cats = (uint8_t)n;

    /* cart: src's lines after p's (the oldest overflow into the filter),
     * and src's overflow filter joins p's */
    for (int i = 0; i < src->n_cart; i++)
        xs_profile_cart_add(p, src->cart[i].item, src->cart[i].qty);
    if (src->n_over) {
        for (int i = 0; i < XS_PROFILE_BLOOM_BYTES; i++)
            p->cart_over.bits[i] |= src->cart_over.bits[i];
        unsigned o = (unsigned)p->n_over + src->n_over;
        p->n_over = o > UINT8_MAX ? UINT8_MAX : (uint8_t)o;
    }

    /* rebuy buckets: each of src's (unexpired) into a free slot, else into
     * p's bucket whose span grows least (its filter ORed in, its span the
     * union: an item is found as long as before, or longer) */
    for (int i = p->n_buckets - 1; i >= 0; i--)
        if (now - p->rebuy[i].hi >= rebuy_ms)
            bucket_drop(p, i);
    for (int i = 0; i < src->n_buckets; i++) {
        const xs_rebuy_bucket_t *s = &src->rebuy[i];
        if (now - s->hi >= rebuy_ms)
            continue;
        if (p->n_buckets < XS_PROFILE_REBUY_BUCKETS) {
            p->rebuy[p->n_buckets++] = *s;
        } else {
            int best = 0;
            int64_t best_span = 0;
            for (int k = 0; k < p->n_buckets; k++) {
                const xs_rebuy_bucket_t *b = &p->rebuy[k];
                int64_t lo = s->lo < b->lo ? s->lo : b->lo, hi = s->hi > b->hi ? s->hi : b->hi;
                if (k == 0 || hi - lo < best_span) {
                    best = k;
                    best_span = hi - lo;
                }
            }
            xs_rebuy_bucket_t *b = &p->rebuy[best];
            if (s->lo < b->lo)
                b->lo = s->lo;
            if (s->hi > b->hi)
                b->hi = s->hi;
            for (int k = 0; k < XS_PROFILE_BLOOM_BYTES; k++)
                b->bloom.bits[k] |= s->bloom.bits[k];
        }
        buckets_sort(p);
    }

    /* last lists: per placement, the more recent record */
    for (int i = 0; i < XS_PLACEMENT__COUNT; i++)
        if (src->last_list_hash[i] &&
            (!p->last_list_hash[i] || src->last_list_ts[i] > p->last_list_ts[i])) {
            p->last_list_hash[i] = src->last_list_hash[i];
            p->last_list_ts[i] = src->last_list_ts[i];
            p->last_n[i] = src->last_n[i];
            memcpy(p->last_fp[i], src->last_fp[i], sizeof(p->last_fp[i]));
        }
    xs_profile_forget(p, rebuy_ms);
}

/* Times are stored as non-negative distances back from last_ts. */
static uint64_t back(int64_t last, int64_t ts)
{
    return last > ts ? (uint64_t)(last - ts) : 0;
}

static xs_err_t put_u32(xs_buf_t *out, uint32_t h)
{
    uint8_t b[4] = {(uint8_t)h, (uint8_t)(h >> 8), (uint8_t)(h >> 16), (uint8_t)(h >> 24)};
    return xs_buf_append(out, b, 4);
}

static xs_err_t put_u16(xs_buf_t *out, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    return xs_buf_append(out, b, 2);
}

#define SIG_BOUGHT 0x80

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
        err |= xs_buf_append_u8(out, (uint8_t)(it->signal | (it->bought_ts ? SIG_BOUGHT : 0)));
        err |= put_u16(out, bf16_bits(it->score));
        err |= xs_wire_varint(out, back(L, it->ts));
        if (it->bought_ts)
            err |= xs_wire_varint(out, back(L, it->bought_ts));
    }
    err |= xs_buf_append_u8(out, p->n_cats);
    for (int i = 0; i < p->n_cats; i++) {
        err |= xs_wire_u64(out, p->cats[i].cat);
        err |= put_u16(out, bf16_bits(p->cats[i].score));
        err |= xs_wire_varint(out, back(L, p->cats[i].ts));
    }
    err |= xs_buf_append_u8(out, p->n_cart);
    for (int i = 0; i < p->n_cart; i++) {
        err |= xs_wire_u64(out, p->cart[i].item);
        err |= xs_wire_varint(out, (uint64_t)(p->cart[i].qty < 0 ? 0 : p->cart[i].qty));
    }
    err |= xs_buf_append_u8(out, p->n_over);
    if (p->n_over)
        err |= xs_buf_append(out, p->cart_over.bits, XS_PROFILE_BLOOM_BYTES);
    err |= xs_buf_append_u8(out, p->n_buckets);
    for (int i = 0; i < p->n_buckets; i++) {
        const xs_rebuy_bucket_t *b = &p->rebuy[i];
        err |= xs_wire_varint(out, back(L, b->hi));
        err |= xs_wire_varint(out, back(b->hi, b->lo));
        err |= xs_buf_append(out, b->bloom.bits, XS_PROFILE_BLOOM_BYTES);
    }
    err |= xs_buf_append_u8(out, p->n_dedup);
    err |= xs_buf_append_u8(out, p->dedup_pos);
    for (int i = 0; i < p->n_dedup; i++)
        err |= put_u32(out, p->dedup[i]);
    for (int i = 0; i < XS_PLACEMENT__COUNT; i++) {
        uint32_t h = p->last_list_hash[i];
        err |= put_u32(out, h);
        if (!h)
            continue;
        err |= xs_wire_varint(out, back(L, p->last_list_ts[i]));
        err |= xs_buf_append_u8(out, p->last_n[i]);
        for (int k = 0; k < p->last_n[i]; k++)
            err |= put_u16(out, p->last_fp[i][k]);
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

static uint16_t get_u16(xs_wire_reader_t *r)
{
    uint16_t v = xs_wire_get_u8(r);
    return (uint16_t)(v | (uint16_t)xs_wire_get_u8(r) << 8);
}

static void get_bloom(xs_wire_reader_t *r, xs_bloom_t *b)
{
    for (int i = 0; i < XS_PROFILE_BLOOM_BYTES; i++)
        b->bits[i] = xs_wire_get_u8(r);
}

xs_err_t xs_profile_decode(xs_profile_t *p, const void *data, size_t len, char *errstr,
                           size_t errstr_size)
{
    xs_wire_reader_t r = {data, (const uint8_t *)data + len, false};
    xs_profile_init(p);
    if (len < 2 || r.p[0] != 'U') {
        xs_err_set(errstr, errstr_size, "not a user profile (bad magic)");
        return XS_ERR_DECODE;
    }
    if (r.p[1] > XS_PROFILE_VERSION) {
        xs_err_set(errstr, errstr_size,
                   "user profile format version %u is newer than this build (%u)", r.p[1],
                   XS_PROFILE_VERSION);
        return XS_ERR_VERSION;
    }
    if (r.p[1] < XS_PROFILE_VERSION) {
        xs_err_set(errstr, errstr_size,
                   "user profile format version %u is older than this build's (%u), which "
                   "keeps the cart and purchases beyond its caps in filters the old records "
                   "lack: rebuild the state (--reset-state --yes --from-beginning)",
                   r.p[1], XS_PROFILE_VERSION);
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
        uint8_t sig = xs_wire_get_u8(&r);
        it->signal = sig & (uint8_t)~SIG_BOUGHT;
        it->score = bf16_float(get_u16(&r));
        it->ts = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
        if (sig & SIG_BOUGHT) {
            it->bought_ts = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
            if (!it->bought_ts)
                r.bad = true; /* 0 means "never" */
        }
        if (it->signal > XS_SIG_PURCHASE || !isfinite(it->score))
            r.bad = true;
    }
    p->n_items = r.bad ? 0 : n;
    n = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_MAX_CATS)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++) {
        p->cats[i].cat = xs_wire_get_u64(&r);
        p->cats[i].score = bf16_float(get_u16(&r));
        p->cats[i].ts = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
        if (!isfinite(p->cats[i].score))
            r.bad = true;
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
    p->n_over = xs_wire_get_u8(&r);
    if (p->n_over)
        get_bloom(&r, &p->cart_over);
    n = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_REBUY_BUCKETS)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++) {
        xs_rebuy_bucket_t *b = &p->rebuy[i];
        b->hi = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
        b->lo = ts_back(&r, b->hi, xs_wire_get_varint(&r));
        get_bloom(&r, &b->bloom);
        if (i > 0 && (b->hi < p->rebuy[i - 1].hi ||
                      (b->hi == p->rebuy[i - 1].hi && b->lo < p->rebuy[i - 1].lo)))
            r.bad = true; /* not in canonical order */
    }
    p->n_buckets = r.bad ? 0 : n;
    n = xs_wire_get_u8(&r);
    p->dedup_pos = xs_wire_get_u8(&r);
    if (n > XS_PROFILE_DEDUP || p->dedup_pos >= XS_PROFILE_DEDUP)
        r.bad = true;
    for (int i = 0; i < n && !r.bad; i++)
        p->dedup[i] = get_u32(&r);
    p->n_dedup = r.bad ? 0 : n;
    for (int i = 0; i < XS_PLACEMENT__COUNT && !r.bad; i++) {
        p->last_list_hash[i] = get_u32(&r);
        if (!p->last_list_hash[i])
            continue;
        p->last_list_ts[i] = ts_back(&r, p->last_ts, xs_wire_get_varint(&r));
        n = xs_wire_get_u8(&r);
        if (n > XS_PROFILE_SEEN)
            r.bad = true;
        for (int k = 0; k < n && !r.bad; k++)
            p->last_fp[i][k] = get_u16(&r);
        p->last_n[i] = r.bad ? 0 : n;
    }
    if (r.bad || r.p != r.end) {
        xs_profile_init(p);
        xs_err_set(errstr, errstr_size, "corrupt user profile (%s)",
                   r.bad ? "truncated or out-of-range field" : "trailing bytes");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}
