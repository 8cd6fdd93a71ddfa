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

void xs_item_init(xs_item_t *it)
{
    memset(it, 0, sizeof(*it));
}

xs_ss_entry_t *xs_item_pairs(xs_item_t *it, xs_class_t cls, uint16_t *cap)
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

const xs_ss_entry_t *xs_item_pairs_const(const xs_item_t *it, xs_class_t cls)
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
static unsigned slot_find(const xs_ss_entry_t *e, const uint8_t *sl, unsigned mask,
                          uint64_t other)
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
        const xs_ss_entry_t *e = xs_item_pairs_const(it, (xs_class_t)cls);
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

void xs_item_add_pair(xs_item_t *it, xs_class_t cls, uint64_t other)
{
    uint16_t cap;
    unsigned mask;
    xs_ss_entry_t *e = xs_item_pairs(it, cls, &cap);
    uint8_t *sl = slots_of(it, cls, &mask);
    if (!it->indexed)
        index_build(it);
    uint16_t n = it->n_pairs[cls];
    unsigned s = slot_find(e, sl, mask, other);
    if (sl[s]) {
        xs_ss_entry_t *x = &e[sl[s] - 1];
        if (x->count < UINT32_MAX)
            x->count++;
        return;
    }
    if (n < cap) {
        e[n] = (xs_ss_entry_t){other, 1, 0};
        sl[s] = (uint8_t)(n + 1);
        it->n_pairs[cls] = (uint16_t)(n + 1);
        return;
    }
    /* Replace the minimum; ties go to the later entry (the most recently
     * replaced minimum). Only this case scans. */
    int min = n - 1;
    for (int i = n - 2; i >= 0; i--)
        if (e[i].count < e[min].count)
            min = i;
    uint32_t c = e[min].count;
    slot_remove(e, sl, mask, e[min].item);
    e[min] = (xs_ss_entry_t){other, c < UINT32_MAX ? c + 1 : c, c};
    sl[slot_find(e, sl, mask, other)] = (uint8_t)(min + 1);
}

uint32_t xs_item_pair_count(const xs_item_t *it, xs_class_t cls, uint64_t other, uint32_t *err)
{
    const xs_ss_entry_t *e = xs_item_pairs_const(it, cls);
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

xs_err_t xs_item_encode(const xs_item_t *it, xs_buf_t *out)
{
    xs_err_t err = XS_OK;
    err |= xs_buf_append_u8(out, 'I');
    err |= xs_buf_append_u8(out, XS_ITEM_VERSION);
    err |= xs_buf_append_u8(out, it->flags);
    err |= xs_wire_u64(out, it->category);
    err |= xs_wire_varint(out, it->n_users[XS_CLASS_BOUGHT]);
    err |= xs_wire_varint(out, it->n_users[XS_CLASS_VIEWED]);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        const xs_ss_entry_t *e = xs_item_pairs_const(it, (xs_class_t)cls);
        err |= xs_wire_varint(out, it->n_pairs[cls]);
        for (int i = 0; i < it->n_pairs[cls]; i++) {
            err |= xs_wire_u64(out, e[i].item);
            err |= xs_wire_varint(out, e[i].count);
            err |= xs_wire_varint(out, e[i].err);
        }
    }
    return err ? XS_ERR_NOMEM : XS_OK;
}

xs_err_t xs_item_decode(xs_item_t *it, const void *data, size_t len, char *errstr,
                        size_t errstr_size)
{
    xs_wire_reader_t r = {data, (const uint8_t *)data + len, false};
    xs_item_init(it);
    if (len < 2 || r.p[0] != 'I') {
        xs_errstr_set(errstr, errstr_size, "not an item sketch (bad magic)");
        return XS_ERR_DECODE;
    }
    if (r.p[1] > XS_ITEM_VERSION) {
        xs_errstr_set(errstr, errstr_size,
                      "item sketch format version %u is newer than this build (%u)", r.p[1],
                      XS_ITEM_VERSION);
        return XS_ERR_VERSION;
    }
    r.p += 2;
    it->flags = xs_wire_get_u8(&r);
    it->category = xs_wire_get_u64(&r);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        uint64_t v = xs_wire_get_varint(&r);
        it->n_users[cls] = v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
    }
    for (int cls = 0; cls < XS_CLASS__COUNT && !r.bad; cls++) {
        uint16_t cap;
        xs_ss_entry_t *e = xs_item_pairs(it, (xs_class_t)cls, &cap);
        uint64_t n = xs_wire_get_varint(&r);
        if (n > cap) {
            r.bad = true;
            break;
        }
        for (uint64_t i = 0; i < n && !r.bad; i++) {
            e[i].item = xs_wire_get_u64(&r);
            uint64_t c = xs_wire_get_varint(&r), er = xs_wire_get_varint(&r);
            if (c > UINT32_MAX || er > c)
                r.bad = true;
            e[i].count = (uint32_t)c;
            e[i].err = (uint32_t)er;
        }
        it->n_pairs[cls] = (uint16_t)n;
    }
    if (r.bad || r.p != r.end) {
        xs_item_init(it);
        xs_errstr_set(errstr, errstr_size, "corrupt item sketch (%s)",
                      r.bad ? "truncated or out-of-range field" : "trailing bytes");
        return XS_ERR_DECODE;
    }
    return XS_OK;
}

/* ---- similarity ------------------------------------------------------------ */

static const char *const sim_names[XS_SIM__COUNT] = {"llr",  "cosine",     "jaccard",   "lift",
                                                     "llr-cosine", "count", "confidence"};

const char *xs_sim_name(xs_sim_t s)
{
    return (s >= 0 && s < XS_SIM__COUNT) ? sim_names[s] : "unknown";
}

int xs_sim_from_name(const char *name)
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

double xs_llr(double k11, double k12, double k21, double k22)
{
    /* H(rows) + H(cols) - H(table); the xlogx(N) terms of the three cancel
     * to one. */
    double n = k11 + k12 + k21 + k22;
    double g = 2.0 * (xlogx(n) - xlogx(k11 + k12) - xlogx(k21 + k22) - xlogx(k11 + k21) -
                      xlogx(k12 + k22) + xlogx(k11) + xlogx(k12) + xlogx(k21) + xlogx(k22));
    return g > 0 ? g : 0.0;
}

double xs_similarity(xs_sim_t sim, double k11, double n_i, double n_j, double n, double llr_min)
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
        return xs_llr(k11, n_i - k11, n_j - k11, n - n_i - n_j + k11);
    case XS_SIM_COSINE:
        return k11 / sqrt(n_i * n_j);
    case XS_SIM_JACCARD:
        return k11 / (n_i + n_j - k11);
    case XS_SIM_LIFT:
        return k11 * n / (n_i * n_j);
    case XS_SIM_LLR_COSINE:
        if (k11 * n < n_i * n_j || xs_llr(k11, n_i - k11, n_j - k11, n - n_i - n_j + k11) < llr_min)
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
