/*
 * sketch.c — item state: SpaceSaving co-occurrence summaries, counts,
 * catalog flags, stored format and similarity measures. See
 * include/xsell/sketch.h for the design and the byte layout.
 */
#include "xsell/sketch.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "wire.h"

void xs_sketch_init(xs_item_t *it)
{
    memset(it, 0, sizeof(*it));
}

xs_ss_entry_t *xs_sketch_pairs(xs_item_t *it, xs_class_t cls, uint16_t *cap)
{
    if (cls == XS_CLASS_BOUGHT) {
        if (cap)
            *cap = XS_SKETCH_BOUGHT_CAP;
        return it->bought;
    }
    if (cap)
        *cap = XS_SKETCH_VIEWED_CAP;
    return it->viewed;
}

const xs_ss_entry_t *xs_sketch_pairs_const(const xs_item_t *it, xs_class_t cls)
{
    return cls == XS_CLASS_BOUGHT ? it->bought : it->viewed;
}

/* ---- position index ---------------------------------------------------------- */

static uint8_t *slots_of(xs_item_t *it, int cls, unsigned *mask)
{
    if (cls == XS_CLASS_BOUGHT) {
        *mask = XS_SKETCH_BOUGHT_SLOTS - 1;
        return it->slots_bought;
    }
    *mask = XS_SKETCH_VIEWED_SLOTS - 1;
    return it->slots_viewed;
}

static unsigned home_slot(uint64_t item, unsigned mask)
{
    return (unsigned)((item * UINT64_C(0x9e3779b97f4a7c15)) >> 40) & mask;
}

/* The slot holding `other`, or the empty slot where it would go. */
static unsigned slot_find(const xs_ss_entry_t *e, const uint8_t *sl, unsigned mask, uint64_t other)
{
    unsigned i = home_slot(other, mask);
    while (sl[i] && e[sl[i] - 1].item != other)
        i = (i + 1) & mask;
    return i;
}

static void index_build(xs_item_t *it)
{
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        unsigned mask;
        uint8_t *sl = slots_of(it, cls, &mask);
        const xs_ss_entry_t *e = xs_sketch_pairs_const(it, (xs_class_t)cls);
        memset(sl, 0, mask + 1);
        for (int i = 0; i < it->n_pairs[cls]; i++)
            sl[slot_find(e, sl, mask, e[i].item)] = (uint8_t)(i + 1);
    }
    it->indexed = true;
}

/* Removes `item` (present) by backward shift: no tombstones. */
static void slot_remove(const xs_ss_entry_t *e, uint8_t *sl, unsigned mask, uint64_t item)
{
    unsigned gap = slot_find(e, sl, mask, item);
    for (unsigned j = (gap + 1) & mask; sl[j]; j = (j + 1) & mask) {
        unsigned home = home_slot(e[sl[j] - 1].item, mask);
        bool in_range = gap <= j ? (home > gap && home <= j) : (home > gap || home <= j);
        if (!in_range) {
            sl[gap] = sl[j];
            gap = j;
        }
    }
    sl[gap] = 0;
}

static xs_top_t *tops_of(xs_item_t *it, xs_class_t cls, uint8_t **slot)
{
    if (cls == XS_CLASS_BOUGHT) {
        *slot = it->top_slot_bought;
        return it->top_bought;
    }
    *slot = it->top_slot_viewed;
    return it->top_viewed;
}

/* Drops the list entry of sketch position idx, if any. */
static void top_drop(xs_item_t *it, xs_class_t cls, int idx)
{
    uint8_t *slot;
    xs_top_t *t = tops_of(it, cls, &slot);
    int i = slot[idx] - 1, last = it->n_top[cls] - 1;
    if (i < 0)
        return;
    it->lists_changed = true;
    slot[idx] = 0;
    if (i != last) {
        t[i] = t[last];
        slot[t[i].idx] = (uint8_t)(i + 1);
    }
    it->n_top[cls] = (uint8_t)last;
    it->top_weak[cls] = 0;
}

/* b^-c for the decay (b = XS_SKETCH_DECAY_BASE), from a table filled once. */
#define DECAY_TABLE 512
static double decay_table[DECAY_TABLE];
static pthread_once_t decay_once = PTHREAD_ONCE_INIT;

static void decay_init(void)
{
    for (int c = 0; c < DECAY_TABLE; c++)
        decay_table[c] = pow(XS_SKETCH_DECAY_BASE, -(double)c);
}

/* A uniform number in [0, 1) that depends only on the arriving item and the
 * summary's total: the same input decays the same entries on every replay. */
static double decay_coin(uint64_t other, uint64_t total)
{
    uint64_t z = other ^ (total * UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53;
}

int xs_sketch_add_pair(xs_item_t *it, xs_class_t cls, uint64_t other)
{
    uint16_t cap;
    unsigned mask;
    xs_ss_entry_t *e = xs_sketch_pairs(it, cls, &cap);
    uint8_t *sl = slots_of(it, cls, &mask);
    if (!it->indexed)
        index_build(it);
    uint16_t n = it->n_pairs[cls];
    unsigned s = slot_find(e, sl, mask, other);
    uint64_t total = it->pair_total[cls]++;
    if (sl[s]) {
        xs_ss_entry_t *x = &e[sl[s] - 1];
        if (x->count < XS_SKETCH_COUNT_MAX)
            x->count++;
        return sl[s] - 1;
    }
    if (n < cap) {
        e[n] = (xs_ss_entry_t){other, 1, 0};
        sl[s] = (uint8_t)(n + 1);
        it->n_pairs[cls] = (uint16_t)(n + 1);
        return n;
    }
    /* Full: of the two entries at the positions `other` hashes to (its
     * buckets), the weaker (ties: the first) decays by one with probability
     * b^-count; at zero, `other` takes its place. */
    int p1, p2;
    xs_sketch_buckets(other, n, &p1, &p2);
    int min = e[p2].count < e[p1].count ? p2 : p1;
    uint32_t c = e[min].count;
    pthread_once(&decay_once, decay_init);
    if (c >= DECAY_TABLE || decay_coin(other, total) >= decay_table[c])
        return -1;
    if (c > 1) {
        e[min].count = c - 1;
        return -1;
    }
    slot_remove(e, sl, mask, e[min].item);
    top_drop(it, cls, min);
    e[min] = (xs_ss_entry_t){other, 1, 0};
    sl[slot_find(e, sl, mask, other)] = (uint8_t)(min + 1);
    return min;
}

const xs_top_t *xs_sketch_top(const xs_item_t *it, xs_class_t cls, int *n)
{
    *n = it->n_top[cls];
    return cls == XS_CLASS_BOUGHT ? it->top_bought : it->top_viewed;
}

int xs_sketch_top_cap(xs_class_t cls)
{
    return cls == XS_CLASS_BOUGHT ? XS_TOP_BOUGHT : XS_TOP_VIEWED;
}

/* a ranks below b: lower similarity, or equal and a larger item. */
static bool top_below(float sa, uint64_t ia, float sb, uint64_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

/* A similarity as stored: the upper 16 bits of the float (bfloat16: 8
 * significant bits, ~0.4 % apart), rounded to nearest even. */
static uint16_t sim_bits(float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    v += 0x7fff + ((v >> 16) & 1);
    return (uint16_t)(v >> 16);
}

static float sim_value(uint16_t b)
{
    uint32_t v = (uint32_t)b << 16;
    float f;
    memcpy(&f, &v, 4);
    return f;
}

void xs_sketch_top_set(xs_item_t *it, xs_class_t cls, int idx, double sim)
{
    uint8_t *slot;
    xs_top_t *t = tops_of(it, cls, &slot);
    int n = it->n_top[cls], cap = xs_sketch_top_cap(cls);
    float f = sim > 0 && sim < 3.3e38 ? sim_value(sim_bits((float)sim)) : 0;
    if (!(f > 0) || !(f <= 3.4e38f)) {
        top_drop(it, cls, idx);
        return;
    }
    uint64_t item = xs_sketch_pairs_const(it, cls)[idx].item;
    int w = it->top_weak[cls] - 1, i = slot[idx] - 1;
    if (i >= 0) { /* listed: update in place */
        float old = t[i].sim;
        if (f != old)
            it->lists_changed = true;
        t[i].sim = f;
        t[i].item = item;
        if (i == w ? f > old : (w >= 0 && top_below(f, item, t[w].sim, t[w].item)))
            it->top_weak[cls] = i == w ? 0 : (uint8_t)(i + 1);
        return;
    }
    if (n < cap) {
        t[n] = (xs_top_t){item, f, (uint8_t)idx};
        slot[idx] = (uint8_t)(n + 1);
        it->n_top[cls] = (uint8_t)(n + 1);
        it->lists_changed = true;
        if (n == 0 || (w >= 0 && top_below(f, item, t[w].sim, t[w].item)))
            it->top_weak[cls] = (uint8_t)(n + 1);
        else if (w < 0)
            it->top_weak[cls] = 0;
        return;
    }
    if (w < 0) { /* find the weakest */
        w = 0;
        for (int k = 1; k < n; k++)
            if (top_below(t[k].sim, t[k].item, t[w].sim, t[w].item))
                w = k;
    }
    if (top_below(t[w].sim, t[w].item, f, item)) {
        slot[t[w].idx] = 0;
        t[w] = (xs_top_t){item, f, (uint8_t)idx};
        slot[idx] = (uint8_t)(w + 1);
        it->lists_changed = true;
        it->top_weak[cls] = 0; /* the new entry may not be the weakest */
    } else {
        it->top_weak[cls] = (uint8_t)(w + 1);
    }
}

void xs_sketch_top_clear(xs_item_t *it, xs_class_t cls)
{
    uint8_t *slot;
    xs_top_t *t = tops_of(it, cls, &slot);
    for (int i = 0; i < it->n_top[cls]; i++)
        slot[t[i].idx] = 0;
    if (it->n_top[cls])
        it->lists_changed = true;
    it->n_top[cls] = 0;
    it->top_weak[cls] = 0;
}

uint32_t xs_sketch_pair_count(const xs_item_t *it, xs_class_t cls, uint64_t other, uint32_t *err)
{
    const xs_ss_entry_t *e = xs_sketch_pairs_const(it, cls);
    if (it->indexed) { /* read through the position index, which it leaves as it is */
        unsigned mask =
            cls == XS_CLASS_BOUGHT ? XS_SKETCH_BOUGHT_SLOTS - 1 : XS_SKETCH_VIEWED_SLOTS - 1;
        const uint8_t *sl = cls == XS_CLASS_BOUGHT ? it->slots_bought : it->slots_viewed;
        unsigned s = slot_find(e, sl, mask, other);
        if (err)
            *err = sl[s] ? e[sl[s] - 1].err : 0;
        return sl[s] ? e[sl[s] - 1].count : 0;
    }
    for (int i = 0; i < it->n_pairs[cls]; i++) {
        if (e[i].item == other) {
            if (err)
                *err = e[i].err;
            return e[i].count;
        }
    }
    if (err)
        *err = 0;
    return 0;
}

xs_err_t xs_sketch_encode(const xs_item_t *it, xs_buf_t *out)
{
    xs_err_t err = XS_OK;
    err |= xs_buf_append_u8(out, 'I');
    err |= xs_buf_append_u8(out, XS_ITEM_VERSION);
    err |= xs_buf_append_u8(out, it->flags);
    err |= xs_wire_u64(out, it->category);
    err |= xs_wire_varint(out, it->n_users[XS_CLASS_BOUGHT]);
    err |= xs_wire_varint(out, it->n_users[XS_CLASS_VIEWED]);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        const xs_ss_entry_t *e = xs_sketch_pairs_const(it, (xs_class_t)cls);
        err |= xs_wire_varint(out, it->n_pairs[cls]);
        for (int i = 0; i < it->n_pairs[cls]; i++) {
            err |= xs_wire_u64(out, e[i].item);
            err |= xs_wire_varint(out, e[i].count - e[i].err); /* the guaranteed count */
        }
        /* the lists: their own record since version 5 (xs_sketch_lists_encode) */
        err |= xs_buf_append_u8(out, it->sweep[cls]);
        err |= xs_wire_varint(out, it->pair_total[cls]);
    }
    err |= xs_wire_varint(out, it->scored_at);
    return err ? XS_ERR_NOMEM : XS_OK;
}

xs_err_t xs_sketch_decode(xs_item_t *it, const void *data, size_t len, char *errstr,
                          size_t errstr_size)
{
    xs_wire_reader_t r = {data, (const uint8_t *)data + len, false};
    xs_sketch_init(it);
    if (len < 2 || r.p[0] != 'I') {
        xs_err_set(errstr, errstr_size, "not an item sketch (bad magic)");
        return XS_ERR_DECODE;
    }
    if (r.p[1] > XS_ITEM_VERSION) {
        xs_err_set(errstr, errstr_size,
                   "item sketch format version %u is newer than this build (%u)", r.p[1],
                   XS_ITEM_VERSION);
        return XS_ERR_VERSION;
    }
    unsigned version = r.p[1];
    r.p += 2;
    it->flags = xs_wire_get_u8(&r);
    it->category = xs_wire_get_u64(&r);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        uint64_t v = xs_wire_get_varint(&r);
        it->n_users[cls] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    }
    for (int cls = 0; cls < XS_CLASS__COUNT && !r.bad; cls++) {
        uint16_t cap;
        xs_ss_entry_t *e = xs_sketch_pairs(it, (xs_class_t)cls, &cap);
        uint64_t n = xs_wire_get_varint(&r);
        if (n > cap) {
            r.bad = true;
            break;
        }
        for (uint64_t i = 0; i < n && !r.bad; i++) {
            e[i].item = xs_wire_get_u64(&r);
            uint64_t c = xs_wire_get_varint(&r), er = version < 4 ? xs_wire_get_varint(&r) : 0;
            if (c > (version < 4 ? UINT32_MAX : XS_SKETCH_COUNT_MAX) || er > c)
                r.bad = true;
            /* Older records' SpaceSaving error: the guaranteed count stays. */
            e[i].count = (uint32_t)(c - er > XS_SKETCH_COUNT_MAX ? XS_SKETCH_COUNT_MAX : c - er);
            e[i].err = 0;
            it->pair_total[cls] += c;
        }
        it->n_pairs[cls] = (uint16_t)n;
        if (version < 2)
            continue;
        if (version < 5) { /* the lists, by position (since 5: their own record) */
            uint64_t nt = xs_wire_get_varint(&r);
            if (nt > (uint64_t)xs_sketch_top_cap((xs_class_t)cls)) {
                r.bad = true;
                break;
            }
            xs_top_t *t = cls == XS_CLASS_BOUGHT ? it->top_bought : it->top_viewed;
            uint8_t seen[256 / 8] = {0};
            for (uint64_t i = 0; i < nt && !r.bad; i++) {
                uint8_t idx = xs_wire_get_u8(&r);
                uint16_t lo = xs_wire_get_u8(&r), hi = xs_wire_get_u8(&r);
                float f = sim_value((uint16_t)(lo | hi << 8));
                if (idx >= n || (seen[idx / 8] & (1u << (idx % 8))) || !(f > 0) ||
                    !(f <= 3.4e38f)) {
                    r.bad = true;
                    break;
                }
                seen[idx / 8] |= (uint8_t)(1u << (idx % 8));
                t[i] = (xs_top_t){e[idx].item, f, idx};
                (cls == XS_CLASS_BOUGHT ? it->top_slot_bought : it->top_slot_viewed)[idx] =
                    (uint8_t)(i + 1);
            }
            it->n_top[cls] = r.bad ? 0 : (uint8_t)nt;
        }
        it->sweep[cls] = xs_wire_get_u8(&r);
        if (it->sweep[cls] > n)
            r.bad = true;
        if (version >= 3) { /* older: SpaceSaving, whose counts sum to the total */
            uint64_t total = xs_wire_get_varint(&r);
            if (total < it->pair_total[cls])
                r.bad = true;
            it->pair_total[cls] = total;
        }
    }
    if (version >= 2 && !r.bad)
        it->scored_at = xs_wire_get_varint(&r);
    if (version < 3 && !r.bad) { /* ranked with other marginals: rank anew on first use */
        xs_sketch_top_clear(it, XS_CLASS_BOUGHT);
        xs_sketch_top_clear(it, XS_CLASS_VIEWED);
        it->scored_at = 0;
    }
    /* Lists decoded from the record (version 4) are not in a `neighbours`
     * record yet: changed, so that the engine stores them there. */
    it->lists_changed = version < 5 && (it->n_top[XS_CLASS_BOUGHT] || it->n_top[XS_CLASS_VIEWED]);
    if (r.bad || r.p != r.end) {
        xs_sketch_init(it);
        xs_err_set(errstr, errstr_size, "corrupt item sketch (%s)",
                   r.bad ? "truncated or out-of-range field" : "trailing bytes");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}

/* ---- the stored neighbour lists ------------------------------------------------ */

xs_err_t xs_sketch_lists_encode(const xs_item_t *it, uint64_t item, xs_buf_t *out)
{
    if (item == 0)
        return XS_ERR_INVALID;
    size_t at = out->len;
    xs_err_t err = XS_OK;
    err |= xs_buf_append_u8(out, XS_LISTS_MAGIC);
    err |= xs_buf_append_u8(out, XS_LISTS_VERSION);
    err |= xs_wire_u64(out, item);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        int nt = 0;
        const xs_top_t *t = xs_sketch_top(it, (xs_class_t)cls, &nt);
        const xs_ss_entry_t *e = xs_sketch_pairs_const(it, (xs_class_t)cls);
        err |= xs_wire_varint(out, (uint64_t)nt);
        for (int i = 0; i < nt; i++) {
            uint16_t b = sim_bits(t[i].sim); /* exact: t[i].sim went through sim_bits */
            err |= xs_wire_u64(out, e[t[i].idx].item);
            err |= xs_buf_append_u8(out, (uint8_t)b);
            err |= xs_buf_append_u8(out, (uint8_t)(b >> 8));
        }
    }
    if (err) {
        out->len = at;
        return XS_ERR_NOMEM;
    }
    return XS_OK;
}

xs_err_t xs_sketch_lists_decode(xs_item_lists_t *l, const void *data, size_t len, char *errstr,
                                size_t errstr_size)
{
    xs_wire_reader_t r = {data, (const uint8_t *)data + len, false};
    memset(l, 0, sizeof(*l));
    if (len < 2) {
        xs_err_set(errstr, errstr_size, "neighbour lists: truncated (%zu bytes)", len);
        return XS_ERR_DECODE;
    }
    if (r.p[0] != XS_LISTS_MAGIC) { /* first: another family's record is not a version */
        xs_err_set(errstr, errstr_size, "not neighbour lists (magic 0x%02x, expected '%c')", r.p[0],
                   XS_LISTS_MAGIC);
        return XS_ERR_DECODE;
    }
    if (r.p[1] == 0) {
        xs_err_set(errstr, errstr_size, "neighbour lists: version 0 is not a version");
        return XS_ERR_DECODE;
    }
    if (r.p[1] > XS_LISTS_VERSION) {
        xs_err_set(errstr, errstr_size,
                   "neighbour lists: version %u is newer than this build reads (%u)", r.p[1],
                   XS_LISTS_VERSION);
        return XS_ERR_VERSION;
    }
    r.p += 2;
    const char *why = NULL;
    l->item = xs_wire_get_u64(&r);
    if (!r.bad && l->item == 0)
        why = "item key 0";
    for (int cls = 0; cls < XS_CLASS__COUNT && !r.bad && !why; cls++) {
        const uint8_t *at = r.p;
        uint64_t n = xs_wire_get_varint(&r);
        if (!r.bad && r.p - at != 1 + (n >= 128)) { /* n <= 256: one byte, or two from 128 */
            why = "a count not in its shortest form";
            break;
        }
        if (n > (uint64_t)xs_sketch_top_cap((xs_class_t)cls)) {
            why = "more neighbours than the list holds";
            break;
        }
        if (n * 10 > (uint64_t)(r.end - r.p)) {
            r.bad = true;
            break;
        }
        for (uint64_t i = 0; i < n && !r.bad && !why; i++) {
            uint64_t k = xs_wire_get_u64(&r);
            uint16_t lo = xs_wire_get_u8(&r), hi = xs_wire_get_u8(&r);
            float f = sim_value((uint16_t)(lo | hi << 8));
            if (k == 0 || k == l->item)
                why = "neighbour key 0 or the list's item";
            else if (!(f > 0) || !(f <= 3.4e38f))
                why = "similarity not finite and positive";
            for (uint64_t j = 0; j < i && !why; j++)
                if (l->top[cls][j].item == k)
                    why = "a neighbour twice in a list";
            l->top[cls][i].item = k;
            l->top[cls][i].sim = f;
        }
        l->n[cls] = (uint8_t)n;
    }
    if (!why && !r.bad && r.p != r.end)
        why = "trailing bytes";
    if (r.bad || why) {
        memset(l, 0, sizeof(*l));
        xs_err_set(errstr, errstr_size, "corrupt neighbour lists (%s)",
                   why ? why : "truncated or out-of-range field");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}

int xs_sketch_lists_apply(xs_item_t *it, const xs_item_lists_t *l)
{
    int dropped = 0;
    if (!it->indexed)
        index_build(it);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        unsigned mask;
        uint8_t *slot;
        const uint8_t *sl = slots_of(it, cls, &mask);
        const xs_ss_entry_t *e = xs_sketch_pairs_const(it, (xs_class_t)cls);
        xs_top_t *t = tops_of(it, (xs_class_t)cls, &slot);
        int n = 0, cap = xs_sketch_top_cap((xs_class_t)cls);
        xs_sketch_top_clear(it, (xs_class_t)cls);
        for (int i = 0; i < l->n[cls] && i < cap; i++) {
            unsigned s = slot_find(e, sl, mask, l->top[cls][i].item);
            if (!sl[s] || slot[sl[s] - 1]) { /* not in the summary (or listed already) */
                dropped++;
                continue;
            }
            int idx = sl[s] - 1;
            t[n] = (xs_top_t){e[idx].item, l->top[cls][i].sim, (uint8_t)idx};
            slot[idx] = (uint8_t)(n + 1);
            n++;
        }
        it->n_top[cls] = (uint8_t)n;
    }
    it->lists_changed = dropped > 0; /* as stored, unless an entry was dropped */
    return dropped;
}

/* ---- similarity ------------------------------------------------------------ */

static const char *const sim_names[XS_SIM__COUNT] = {"llr",        "cosine", "jaccard",   "lift",
                                                     "llr-cosine", "count",  "confidence"};

const char *xs_sketch_sim_name(xs_sim_t s)
{
    return (s >= 0 && s < XS_SIM__COUNT) ? sim_names[s] : "unknown";
}

int xs_sketch_sim_from_name(const char *name)
{
    for (int i = 0; i < XS_SIM__COUNT; i++)
        if (name && strcmp(name, sim_names[i]) == 0)
            return i;
    return -1;
}

/* x log x, from a table for small integers (counts usually are), filled
 * once (pthread_once) on first use. */
#define XLOGX_TABLE 65536
static double xlogx_table[XLOGX_TABLE];
static pthread_once_t xlogx_once = PTHREAD_ONCE_INIT;

static void xlogx_init(void)
{
    for (int i = 1; i < XLOGX_TABLE; i++)
        xlogx_table[i] = i * log((double)i);
}

static double xlogx(double x)
{
    if (x <= 0)
        return 0.0;
    if (x < XLOGX_TABLE && x == (double)(int)x) {
        pthread_once(&xlogx_once, xlogx_init);
        return xlogx_table[(int)x];
    }
    return x * log(x);
}

double xs_sketch_llr(double k11, double k12, double k21, double k22)
{
    /* H(rows) + H(cols) - H(table); the xlogx(N) terms of the three cancel
     * to one. */
    double n = k11 + k12 + k21 + k22;
    double g = 2.0 * (xlogx(n) - xlogx(k11 + k12) - xlogx(k21 + k22) - xlogx(k11 + k21) -
                      xlogx(k12 + k22) + xlogx(k11) + xlogx(k12) + xlogx(k21) + xlogx(k22));
    return g > 0 ? g : 0.0;
}

double xs_sketch_similarity(xs_sim_t sim, double k11, double n_i, double n_j, double n,
                            double llr_min)
{
    /* Sketch counts are estimates: clamp them into a consistent table. */
    if (k11 <= 0 || n_i <= 0 || n_j <= 0)
        return 0.0;
    if (k11 > n_i)
        k11 = n_i;
    if (k11 > n_j)
        k11 = n_j;
    if (n < n_i + n_j - k11)
        n = n_i + n_j - k11;
    switch (sim) {
    case XS_SIM_LLR:
        /* G^2 is large for avoidance too: only positive association counts. */
        if (k11 * n < n_i * n_j)
            return 0.0;
        return xs_sketch_llr(k11, n_i - k11, n_j - k11, n - n_i - n_j + k11);
    case XS_SIM_COSINE:
        return k11 / sqrt(n_i * n_j);
    case XS_SIM_JACCARD:
        return k11 / (n_i + n_j - k11);
    case XS_SIM_LIFT:
        return k11 * n / (n_i * n_j);
    case XS_SIM_LLR_COSINE:
        if (k11 * n < n_i * n_j ||
            xs_sketch_llr(k11, n_i - k11, n_j - k11, n - n_i - n_j + k11) < llr_min)
            return 0.0;
        return k11 / sqrt(n_i * n_j);
    case XS_SIM_COUNT:
        return k11;
    case XS_SIM_CONFIDENCE:
        return k11 / n_i;
    default:
        return 0.0;
    }
}
