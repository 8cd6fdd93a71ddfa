/*
 * inspect.c — decoders of the names/meta records and the text views of a
 * state directory (see include/xsell/inspect.h for the dump format).
 *
 * Everything here is formatting: records come from xs_store_iterate() /
 * xs_store_get(), are decoded with the same decoders the engine uses
 * (profiles, item sketches) or the ones below (names, globals), and are
 * printed. Nothing here writes to the store. The record formatter takes
 * arbitrary bytes (it is a fuzz target), so every length is checked
 * against the bytes that are there.
 */
#include "xsell/inspect.h"

#include "xsell/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "wire.h"
#include "xsell/hash.h"
#include "xsell/profile.h"
#include "xsell/sketch.h"

/* ======================================================================== */
/* Formatting helpers                                                       */
/* ======================================================================== */

static void put_hex(xs_buf_t *out, const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        char two[2] = {digits[p[i] >> 4], digits[p[i] & 15]};
        xs_buf_append(out, two, 2);
    }
}

/* A quoted string: printable ASCII as is, \" \\ and \xNN for everything else. */
static void put_quoted(xs_buf_t *out, const char *s, size_t len)
{
    xs_buf_append_u8(out, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            xs_buf_printf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            xs_buf_printf(out, "\\x%02x", c);
        else
            xs_buf_append_u8(out, c);
    }
    xs_buf_append_u8(out, '"');
}

static uint64_t be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static xs_err_t corrupt(xs_buf_t *out, xs_cf_t cf, const void *key, size_t key_len, const void *val,
                        size_t val_len, const char *why, xs_err_t err)
{
    xs_buf_printf(out, "%s CORRUPT key=", xs_engine_cf_name(cf));
    put_hex(out, key, key_len);
    xs_buf_printf(out, " reason=");
    put_quoted(out, why, strlen(why));
    xs_buf_printf(out, " value=");
    put_hex(out, val, val_len);
    xs_buf_append_u8(out, '\n');
    return err ? err : XS_ERR_DECODE;
}

static const char *const signal_names[] = {"none", "view", "cart", "purchase"};

static const char *signal_name(uint8_t s)
{
    return s < XS_ARRAY_SIZE(signal_names) ? signal_names[s] : "?";
}

/* ======================================================================== */
/* One record, canonical                                                    */
/* ======================================================================== */

static xs_err_t format_meta(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, xs_buf_t *out)
{
    char why[160] = "";
    if (kl == 6 && memcmp(k, "format", 6) == 0) {
        if (vl != 11 || v[0] != 'X' || v[1] != 'S')
            return corrupt(out, XS_CF_META, k, kl, v, vl, "bad format record", XS_ERR_DECODE);
        uint64_t seed = 0;
        for (int i = 0; i < 8; i++)
            seed |= (uint64_t)v[3 + i] << (8 * i);
        xs_buf_printf(out, "meta format version=%u seed=%016" PRIx64 "\n", v[2], seed);
        return XS_OK;
    }
    if (kl == 7 && memcmp(k, "globals", 7) == 0) {
        xs_globals_t *g = malloc(sizeof(*g));
        if (!g)
            return XS_ERR_NOMEM;
        xs_err_t err = xs_store_records_globals_decode(g, v, vl, why, sizeof(why));
        if (err) {
            free(g);
            return corrupt(out, XS_CF_META, k, kl, v, vl, why, err);
        }
        xs_buf_printf(out,
                      "meta globals users_total=%" PRIu64 " users_bought=%" PRIu64
                      " pairs_bought=%" PRIu64 " pairs_viewed=%" PRIu64 " trend_ref=%" PRId64
                      " trend_n=%d\n",
                      g->users_total, g->users_bought, g->pairs_total[0], g->pairs_total[1],
                      g->trend_ref, g->n_trend);
        for (int i = 0; i < g->n_trend; i++)
            xs_buf_printf(out, "meta globals trend %d item=%016" PRIx64 " weight=%a\n", i,
                          g->trend_item[i], g->trend_weight[i]);
        free(g);
        return XS_OK;
    }
    if (kl > 7 && memcmp(k, "offset/", 7) == 0) {
        /* offset/<topic>/<partition>: the partition follows the last '/'. */
        size_t slash = kl;
        while (slash > 7 && k[slash - 1] != '/')
            slash--;
        if (slash <= 8 || vl != 8)
            return corrupt(out, XS_CF_META, k, kl, v, vl, "bad offset record", XS_ERR_DECODE);
        xs_buf_printf(out, "meta offset topic=");
        put_quoted(out, (const char *)k + 7, slash - 8);
        xs_buf_printf(out, " partition=");
        put_quoted(out, (const char *)k + slash, kl - slash);
        xs_buf_printf(out, " next=%" PRId64 "\n", (int64_t)be64(v));
        return XS_OK;
    }
    xs_buf_printf(out, "meta other key=");
    put_quoted(out, (const char *)k, kl);
    xs_buf_printf(out, " value=");
    put_hex(out, v, vl);
    xs_buf_append_u8(out, '\n');
    return XS_OK;
}

static xs_err_t format_name(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, xs_buf_t *out)
{
    char why[160] = "";
    xs_name_rec_t n = {0};
    if (kl != 8)
        return corrupt(out, XS_CF_NAMES, k, kl, v, vl, "key is not 8 bytes", XS_ERR_DECODE);
    xs_err_t err = xs_store_records_name_decode(&n, v, vl, why, sizeof(why));
    if (err)
        return corrupt(out, XS_CF_NAMES, k, kl, v, vl, why, err);
    xs_buf_printf(out, "name %016" PRIx64 " id=", be64(k));
    put_quoted(out, n.id, strlen(n.id));
    if (n.title) {
        xs_buf_printf(out, " title=");
        put_quoted(out, n.title, strlen(n.title));
    }
    if (n.family)
        xs_buf_printf(out, " family=%016" PRIx64, n.family);
    if (n.has_price)
        xs_buf_printf(out, " price=%.17g", n.price);
    if (n.has_from)
        xs_buf_printf(out, " available_from=%" PRId64, n.available_from);
    if (n.has_until)
        xs_buf_printf(out, " available_until=%" PRId64, n.available_until);
    xs_buf_append_u8(out, '\n');
    xs_store_records_name_rec_clear(&n);
    return XS_OK;
}

static xs_err_t format_item(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, xs_buf_t *out)
{
    char why[160] = "";
    if (kl != 8)
        return corrupt(out, XS_CF_ITEMS, k, kl, v, vl, "key is not 8 bytes", XS_ERR_DECODE);
    xs_item_t *it = malloc(sizeof(*it));
    if (!it)
        return XS_ERR_NOMEM;
    xs_err_t err = xs_sketch_decode(it, v, vl, why, sizeof(why));
    if (err) {
        free(it);
        return corrupt(out, XS_CF_ITEMS, k, kl, v, vl, why, err);
    }
    uint64_t h = be64(k);
    xs_buf_printf(out,
                  "item %016" PRIx64 " flags=0x%02x category=%016" PRIx64 " n_bought=%" PRIu32
                  " n_viewed=%" PRIu32 " pairs_bought=%u pairs_viewed=%u total_bought=%" PRIu64
                  " total_viewed=%" PRIu64 "\n",
                  h, it->flags, it->category, it->n_users[XS_CLASS_BOUGHT],
                  it->n_users[XS_CLASS_VIEWED], it->n_pairs[XS_CLASS_BOUGHT],
                  it->n_pairs[XS_CLASS_VIEWED], xs_sketch_pair_total(it, XS_CLASS_BOUGHT),
                  xs_sketch_pair_total(it, XS_CLASS_VIEWED));
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        const xs_ss_entry_t *e = xs_sketch_pairs_const(it, (xs_class_t)cls);
        for (int i = 0; i < it->n_pairs[cls]; i++)
            xs_buf_printf(out,
                          "item %016" PRIx64 " %s %d other=%016" PRIx64 " count=%" PRIu32
                          " err=%" PRIu32 "\n",
                          h, cls == XS_CLASS_BOUGHT ? "bought" : "viewed", i, e[i].item, e[i].count,
                          e[i].err);
        /* the neighbour list, in stored order, and where the sweep resumes */
        int nt = 0;
        const xs_top_t *t = xs_sketch_top(it, (xs_class_t)cls, &nt);
        for (int i = 0; i < nt; i++)
            xs_buf_printf(out, "item %016" PRIx64 " %s-list %d pos=%u sim=%.9g\n", h,
                          cls == XS_CLASS_BOUGHT ? "bought" : "viewed", i, t[i].idx,
                          (double)t[i].sim);
        xs_buf_printf(out, "item %016" PRIx64 " %s-sweep %u\n", h,
                      cls == XS_CLASS_BOUGHT ? "bought" : "viewed", it->sweep[cls]);
    }
    xs_buf_printf(out, "item %016" PRIx64 " scored_at=%" PRIu64 "\n", h, it->scored_at);
    free(it);
    return XS_OK;
}

static xs_err_t format_user(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, xs_buf_t *out)
{
    char why[160] = "";
    if (kl != 10)
        return corrupt(out, XS_CF_USERS, k, kl, v, vl, "key is not 10 bytes", XS_ERR_DECODE);
    xs_profile_t *p = malloc(sizeof(*p));
    if (!p)
        return XS_ERR_NOMEM;
    xs_err_t err = xs_profile_decode(p, v, vl, why, sizeof(why));
    if (err) {
        free(p);
        return corrupt(out, XS_CF_USERS, k, kl, v, vl, why, err);
    }
    char id[32];
    snprintf(id, sizeof(id), "%u/%016" PRIx64, (unsigned)(k[0] << 8 | k[1]), be64(k + 2));
    xs_buf_printf(out,
                  "user %s last_ts=%" PRId64 " n_events=%" PRIu32
                  " flags=0x%02x items=%u cats=%u cart=%u dedup=%u dedup_pos=%u\n",
                  id, p->last_ts, p->n_events, p->flags, p->n_items, p->n_cats, p->n_cart,
                  p->n_dedup, p->dedup_pos);
    for (int i = 0; i < p->n_items; i++) {
        const xs_profile_item_t *it = &p->items[i];
        xs_buf_printf(out,
                      "user %s item %d h=%016" PRIx64 " signal=%u score=%a ts=%" PRId64
                      " bought_ts=%" PRId64 "\n",
                      id, i, it->item, it->signal, (double)it->score, it->ts, it->bought_ts);
    }
    for (int i = 0; i < p->n_cats; i++)
        xs_buf_printf(out, "user %s cat %d h=%016" PRIx64 " score=%a ts=%" PRId64 "\n", id, i,
                      p->cats[i].cat, (double)p->cats[i].score, p->cats[i].ts);
    for (int i = 0; i < p->n_cart; i++)
        xs_buf_printf(out, "user %s cart %d h=%016" PRIx64 " qty=%" PRId32 "\n", id, i,
                      p->cart[i].item, p->cart[i].qty);
    if (p->n_over) {
        xs_buf_printf(out, "user %s cart_over n=%u bits=", id, p->n_over);
        put_hex(out, p->cart_over.bits, sizeof(p->cart_over.bits));
        xs_buf_append_u8(out, '\n');
    }
    for (int i = 0; i < p->n_buckets; i++) {
        xs_buf_printf(out, "user %s rebuy %d lo=%" PRId64 " hi=%" PRId64 " bits=", id, i,
                      p->rebuy[i].lo, p->rebuy[i].hi);
        put_hex(out, p->rebuy[i].bloom.bits, sizeof(p->rebuy[i].bloom.bits));
        xs_buf_append_u8(out, '\n');
    }
    for (int i = 0; i < p->n_dedup; i++)
        xs_buf_printf(out, "user %s dedup %d %08" PRIx32 "\n", id, i, p->dedup[i]);
    for (int i = 0; i < XS_PLACEMENT__COUNT; i++) {
        xs_buf_printf(out, "user %s last_list %s hash=%08" PRIx32 " ts=%" PRId64 " seen=", id,
                      xs_event_placement_name((xs_placement_t)i), p->last_list_hash[i],
                      p->last_list_ts[i]);
        for (int f = 0; f < p->last_n[i]; f++)
            xs_buf_printf(out, "%s%04x", f ? "," : "", p->last_fp[i][f]);
        xs_buf_append_u8(out, '\n');
    }
    free(p);
    return XS_OK;
}

static xs_err_t format_lists(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl,
                             xs_buf_t *out)
{
    char why[160] = "";
    if (kl != 8)
        return corrupt(out, XS_CF_NEIGHBOURS, k, kl, v, vl, "key is not 8 bytes", XS_ERR_DECODE);
    xs_item_lists_t *l = malloc(sizeof(*l));
    if (!l)
        return XS_ERR_NOMEM;
    xs_err_t err = xs_sketch_lists_decode(l, v, vl, why, sizeof(why));
    uint64_t h = be64(k);
    if (!err && l->item != h) {
        snprintf(why, sizeof(why), "the record is item %016" PRIx64 "'s", l->item);
        err = XS_ERR_DECODE;
    }
    if (err) {
        free(l);
        return corrupt(out, XS_CF_NEIGHBOURS, k, kl, v, vl, why, err);
    }
    /* the lists in stored order, by neighbour key */
    xs_buf_printf(out, "neighbours %016" PRIx64 " bought=%u viewed=%u\n", h, l->n[XS_CLASS_BOUGHT],
                  l->n[XS_CLASS_VIEWED]);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++)
        for (int i = 0; i < l->n[cls]; i++)
            xs_buf_printf(out,
                          "neighbours %016" PRIx64 " %s-list %d other=%016" PRIx64 " sim=%.9g\n", h,
                          cls == XS_CLASS_BOUGHT ? "bought" : "viewed", i, l->top[cls][i].item,
                          (double)l->top[cls][i].sim);
    free(l);
    return XS_OK;
}

xs_err_t xs_inspect_format_record(xs_cf_t cf, const void *key, size_t key_len, const void *val,
                                  size_t val_len, xs_buf_t *out)
{
    switch (cf) {
    case XS_CF_META:
        return format_meta(key, key_len, val, val_len, out);
    case XS_CF_NAMES:
        return format_name(key, key_len, val, val_len, out);
    case XS_CF_ITEMS:
        return format_item(key, key_len, val, val_len, out);
    case XS_CF_USERS:
        return format_user(key, key_len, val, val_len, out);
    case XS_CF_NEIGHBOURS:
        return format_lists(key, key_len, val, val_len, out);
    default:
        return XS_ERR_INVALID;
    }
}

/* ======================================================================== */
/* Dump                                                                     */
/* ======================================================================== */

typedef struct dump_ctx {
    xs_cf_t cf;
    FILE *out;
    xs_buf_t line;
    uint64_t records, corrupt;
    xs_err_t fatal;
} dump_ctx_t;

static int dump_one(void *opaque, const void *key, size_t key_len, const void *val, size_t val_len)
{
    dump_ctx_t *d = opaque;
    xs_buf_reset(&d->line);
    xs_err_t err = xs_inspect_format_record(d->cf, key, key_len, val, val_len, &d->line);
    if (err == XS_ERR_NOMEM) {
        d->fatal = err;
        return 1;
    }
    d->records++;
    if (err)
        d->corrupt++;
    if (d->line.len && fwrite(d->line.data, 1, d->line.len, d->out) != d->line.len) {
        d->fatal = XS_ERR_IO;
        return 1;
    }
    return 0;
}

xs_err_t xs_inspect_dump(xs_store_t *s, FILE *out, char *errstr, size_t errstr_size)
{
    static const xs_cf_t order[] = {XS_CF_META, XS_CF_NAMES, XS_CF_ITEMS, XS_CF_NEIGHBOURS,
                                    XS_CF_USERS};
    dump_ctx_t d = {.out = out};
    xs_err_t err = XS_OK;
    fprintf(out, "# xsell state dump v1\n");
    for (size_t i = 0; i < XS_ARRAY_SIZE(order) && !err; i++) {
        d.cf = order[i];
        err = xs_store_iterate(s, order[i], dump_one, &d, errstr, errstr_size);
        if (!err && d.fatal) {
            err = d.fatal;
            xs_err_set(errstr, errstr_size, "dump: %s", xs_err_str(err));
        }
    }
    if (!err)
        fprintf(out, "# records=%" PRIu64 " corrupt=%" PRIu64 "\n", d.records, d.corrupt);
    if (!err && fflush(out) != 0) {
        err = XS_ERR_IO;
        xs_err_set(errstr, errstr_size, "dump: write failed");
    }
    if (!err && d.corrupt) {
        err = XS_ERR_DECODE;
        xs_err_set(errstr, errstr_size, "%" PRIu64 " corrupt record(s), see CORRUPT lines",
                   d.corrupt);
    }
    xs_buf_free(&d.line);
    return err;
}

/* ======================================================================== */
/* Human-readable views                                                     */
/* ======================================================================== */

/* The id (and title) of a hash from the names family, or "#<hex>". */
static void print_name(xs_store_t *s, uint64_t h, FILE *out, bool with_title)
{
    uint8_t key[8];
    xs_buf_t val = {0};
    bool found = false;
    xs_name_rec_t n = {0};
    xs_engine_key_u64(key, h);
    if (xs_store_get(s, XS_CF_NAMES, key, 8, &val, &found, NULL, 0) == XS_OK && found &&
        xs_store_records_name_decode(&n, val.data, val.len, NULL, 0) == XS_OK) {
        fprintf(out, "%s", n.id);
        if (with_title && n.title)
            fprintf(out, " (%s)", n.title);
    } else {
        fprintf(out, "#%016" PRIx64, h);
    }
    xs_store_records_name_rec_clear(&n);
    xs_buf_free(&val);
}

static void format_time(int64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(buf, size, "%" PRId64, ms);
}

typedef struct find_user_ctx {
    uint64_t user;
    uint16_t *parts;
    size_t n, cap;
    bool nomem;
} find_user_ctx_t;

static int find_user(void *opaque, const void *key, size_t key_len, const void *val, size_t val_len)
{
    find_user_ctx_t *f = opaque;
    const uint8_t *k = key;
    (void)val;
    (void)val_len;
    if (key_len != 10 || be64(k + 2) != f->user)
        return 0;
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        uint16_t *p = realloc(f->parts, cap * sizeof(*p));
        if (!p) {
            f->nomem = true;
            return 1;
        }
        f->parts = p;
        f->cap = cap;
    }
    f->parts[f->n++] = (uint16_t)(k[0] << 8 | k[1]);
    return 0;
}

/* The partitions holding a profile of user_id (f->parts, sorted by key). */
static xs_err_t find_user_parts(xs_store_t *s, const char *user_id, find_user_ctx_t *f,
                                char *errstr, size_t errstr_size)
{
    xs_err_t err;
    f->user = xs_hash_str(user_id);
    if ((err = xs_store_iterate(s, XS_CF_USERS, find_user, f, errstr, errstr_size)))
        return err;
    if (f->nomem) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return XS_ERR_NOMEM;
    }
    if (f->n == 0) {
        xs_err_set(errstr, errstr_size, "user '%s' (hash %016" PRIx64 ") is in no partition",
                   user_id, f->user);
        return XS_ERR_NOT_FOUND;
    }
    return XS_OK;
}

xs_err_t xs_inspect_user(xs_store_t *s, const char *user_id, double half_life_hours, FILE *out,
                         char *errstr, size_t errstr_size)
{
    find_user_ctx_t f = {0};
    xs_buf_t val = {0};
    xs_profile_t *p = NULL;
    xs_err_t err = find_user_parts(s, user_id, &f, errstr, errstr_size);
    double hl = half_life_hours * 3600e3;
    char t1[40], t2[40];
    if (err)
        goto out;
    if (!(p = malloc(sizeof(*p)))) {
        err = XS_ERR_NOMEM;
        xs_err_set(errstr, errstr_size, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < f.n; i++) {
        uint8_t key[10];
        bool found = false;
        xs_buf_reset(&val);
        xs_engine_key_user(key, f.parts[i], f.user);
        if ((err = xs_store_get(s, XS_CF_USERS, key, 10, &val, &found, errstr, errstr_size)))
            goto out;
        if (!found)
            continue;
        if ((err = xs_profile_decode(p, val.data, val.len, errstr, errstr_size)))
            goto out;
        int64_t now = p->last_ts;
        format_time(now, t1, sizeof(t1));
        fprintf(out, "user %s  partition %u  hash %016" PRIx64 "\n", user_id, f.parts[i], f.user);
        fprintf(out, "  last event %s  events %" PRIu32 "  %s\n", t1, p->n_events,
                (p->flags & XS_PROFILE_F_BOUGHT) ? "has bought" : "has not bought");
        fprintf(out, "  item affinities (decayed to the last event, half-life %g h):\n",
                half_life_hours);
        for (int k = 0; k < p->n_items; k++) {
            const xs_profile_item_t *it = &p->items[k];
            format_time(it->ts, t1, sizeof(t1));
            fprintf(out, "    %8.4f  %-8s  last %s  ", xs_profile_decay(it->score, it->ts, now, hl),
                    signal_name(it->signal), t1);
            print_name(s, it->item, out, true);
            fputc('\n', out);
        }
        fprintf(out, "  category affinities:\n");
        for (int k = 0; k < p->n_cats; k++) {
            fprintf(out, "    %8.4f  ", xs_profile_decay(p->cats[k].score, p->cats[k].ts, now, hl));
            print_name(s, p->cats[k].cat, out, false);
            fputc('\n', out);
        }
        fprintf(out, "  cart (%u lines%s):\n", p->n_cart,
                p->n_over ? ", and older lines in the overflow filter" : "");
        for (int k = 0; k < p->n_cart; k++) {
            fprintf(out, "    %6" PRId32 " x ", p->cart[k].qty);
            print_name(s, p->cart[k].item, out, true);
            fputc('\n', out);
        }
        fprintf(out, "  purchases:\n");
        for (int k = 0; k < p->n_items; k++) {
            if (!p->items[k].bought_ts)
                continue;
            format_time(p->items[k].bought_ts, t1, sizeof(t1));
            fprintf(out, "    %s  ", t1);
            print_name(s, p->items[k].item, out, true);
            fputc('\n', out);
        }
        for (int k = 0; k < p->n_buckets; k++) {
            format_time(p->rebuy[k].lo, t1, sizeof(t1));
            format_time(p->rebuy[k].hi, t2, sizeof(t2));
            fprintf(out, "    and older purchases bought %s .. %s (rebuy filter)\n", t1, t2);
        }
        fprintf(out, "  recent event ids remembered: %u\n", p->n_dedup);
        fprintf(out, "  last lists:\n");
        for (int k = 0; k < XS_PLACEMENT__COUNT; k++) {
            if (!p->last_list_hash[k])
                continue;
            format_time(p->last_list_ts[k], t2, sizeof(t2));
            fprintf(out, "    %-13s %s  hash %08" PRIx32 "\n",
                    xs_event_placement_name((xs_placement_t)k), t2, p->last_list_hash[k]);
        }
    }
out:
    free(p);
    free(f.parts);
    xs_buf_free(&val);
    return err;
}

typedef struct nb_row {
    uint64_t item;
    uint32_t count, err;
} nb_row_t;

static int cmp_row(const void *a, const void *b)
{
    const nb_row_t *x = a, *y = b;
    uint32_t lx = x->count - x->err, ly = y->count - y->err;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

/* Both item views: the item's record and the globals. *it, *other (scratch for
 * neighbours' records) and *g are allocated here and freed by the caller. */
static xs_err_t load_item(xs_store_t *s, const char *item_id, uint64_t h, xs_item_t **it,
                          xs_item_t **other, xs_globals_t **g, char *errstr, size_t errstr_size)
{
    static const char gk[] = "globals";
    uint8_t key[8];
    xs_buf_t val = {0};
    bool found = false;
    xs_err_t err;
    xs_engine_key_u64(key, h);
    if ((err = xs_store_get(s, XS_CF_ITEMS, key, 8, &val, &found, errstr, errstr_size)))
        goto out;
    if (!found) {
        err = XS_ERR_NOT_FOUND;
        xs_err_set(errstr, errstr_size, "item '%s' (hash %016" PRIx64 ") has no record", item_id,
                   h);
        goto out;
    }
    if (!(*it = malloc(sizeof(**it))) || !(*other = malloc(sizeof(**other))) ||
        !(*g = calloc(1, sizeof(**g)))) {
        err = XS_ERR_NOMEM;
        xs_err_set(errstr, errstr_size, "out of memory");
        goto out;
    }
    if ((err = xs_sketch_decode(*it, val.data, val.len, errstr, errstr_size)))
        goto out;
    if (xs_sketch_lists_apart(val.data, val.len)) { /* the lists, as the engine loads them */
        xs_item_lists_t *l = malloc(sizeof(*l));
        xs_buf_reset(&val);
        if (!l) {
            err = XS_ERR_NOMEM;
            xs_err_set(errstr, errstr_size, "out of memory");
            goto out;
        }
        if (!(err = xs_store_get(s, XS_CF_NEIGHBOURS, key, 8, &val, &found, errstr, errstr_size)) &&
            found && !(err = xs_sketch_lists_decode(l, val.data, val.len, errstr, errstr_size))) {
            if (l->item != h) {
                err = XS_ERR_DECODE;
                xs_err_set(errstr, errstr_size,
                           "neighbours/%016" PRIx64 ": the record is item %016" PRIx64 "'s", h,
                           l->item);
            } else {
                xs_sketch_lists_apply(*it, l);
            }
        }
        free(l);
        if (err)
            goto out;
    }
    xs_buf_reset(&val);
    if ((err = xs_store_get(s, XS_CF_META, gk, sizeof(gk) - 1, &val, &found, errstr, errstr_size)))
        goto out;
    if (found &&
        (err = xs_store_records_globals_decode(*g, val.data, val.len, errstr, errstr_size)))
        goto out;
out:
    xs_buf_free(&val);
    return err;
}

/* The sketch's entries of one class, by guaranteed count; returns how many. */
static int sketch_rows(const xs_item_t *it, xs_class_t cls, nb_row_t *rows)
{
    const xs_ss_entry_t *e = xs_sketch_pairs_const(it, cls);
    int n = it->n_pairs[cls];
    for (int i = 0; i < n; i++)
        rows[i] = (nb_row_t){e[i].item, e[i].count, e[i].err};
    qsort(rows, (size_t)n, sizeof(rows[0]), cmp_row);
    return n;
}

/* A sketch entry's LLR as the item stage computes it: over the pair table (the
 * item's and the neighbour's pair totals, twice the pairs counted). */
static double row_llr(xs_store_t *s, const xs_item_t *it, const xs_globals_t *g, xs_class_t cls,
                      const nb_row_t *row, xs_item_t *other)
{
    uint8_t key[8];
    xs_buf_t val = {0};
    bool found = false;
    double n_j = row->count - row->err;
    xs_engine_key_u64(key, row->item);
    if (xs_store_get(s, XS_CF_ITEMS, key, 8, &val, &found, NULL, 0) == XS_OK && found &&
        xs_sketch_decode(other, val.data, val.len, NULL, 0) == XS_OK)
        n_j = (double)xs_sketch_pair_total(other, cls);
    xs_buf_free(&val);
    return xs_sketch_similarity(XS_SIM_LLR, row->count - row->err,
                                (double)xs_sketch_pair_total(it, cls), n_j,
                                2.0 * (double)g->pairs_total[cls], 0);
}

/* The stored neighbour list (what the scorer reads), best first; returns its length. */
static int sorted_top(const xs_item_t *it, xs_class_t cls, xs_top_t *sorted)
{
    int nt = 0;
    const xs_top_t *t = xs_sketch_top(it, cls, &nt);
    memcpy(sorted, t, (size_t)nt * sizeof(*t));
    for (int i = 1; i < nt; i++)
        for (int k = i;
             k > 0 && (sorted[k].sim > sorted[k - 1].sim ||
                       (sorted[k].sim == sorted[k - 1].sim && sorted[k].item < sorted[k - 1].item));
             k--) {
            xs_top_t x = sorted[k];
            sorted[k] = sorted[k - 1];
            sorted[k - 1] = x;
        }
    return nt;
}

xs_err_t xs_inspect_item(xs_store_t *s, const char *item_id, int top, FILE *out, char *errstr,
                         size_t errstr_size)
{
    uint64_t h = xs_hash_str(item_id);
    xs_item_t *it = NULL, *other = NULL;
    xs_globals_t *g = NULL;
    nb_row_t rows[XS_SKETCH_BOUGHT_CAP + XS_SKETCH_VIEWED_CAP];
    xs_err_t err;
    if ((err = load_item(s, item_id, h, &it, &other, &g, errstr, errstr_size)))
        goto out;
    fprintf(out, "item ");
    print_name(s, h, out, true);
    fprintf(out, "  hash %016" PRIx64 "\n", h);
    fprintf(out, "  users: bought %" PRIu32 " of %" PRIu64 ", viewed %" PRIu32 " of %" PRIu64 "\n",
            it->n_users[XS_CLASS_BOUGHT], g->users_bought, it->n_users[XS_CLASS_VIEWED],
            g->users_total);
    fprintf(out, "  pairs: bought %" PRIu64 " of %" PRIu64 ", viewed %" PRIu64 " of %" PRIu64 "\n",
            xs_sketch_pair_total(it, XS_CLASS_BOUGHT), 2 * g->pairs_total[0],
            xs_sketch_pair_total(it, XS_CLASS_VIEWED), 2 * g->pairs_total[1]);
    fprintf(out, "  catalog:%s%s%s%s\n", (it->flags & XS_ITEM_F_CATALOG) ? " listed" : " unlisted",
            (it->flags & XS_ITEM_F_OUT_OF_STOCK) ? ", out of stock" : ", in stock",
            (it->flags & XS_ITEM_F_REPURCHASABLE) ? ", repurchasable" : "",
            (it->flags & XS_ITEM_F_DELETED) ? ", deleted" : "");
    fprintf(out, "  category: ");
    if (it->category)
        print_name(s, it->category, out, false);
    else
        fprintf(out, "-");
    fputc('\n', out);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        int n = sketch_rows(it, (xs_class_t)cls, rows);
        fprintf(out, "  %s together (%d tracked, top %d):\n",
                cls == XS_CLASS_BOUGHT ? "bought" : "viewed", n, XS_MIN(n, top));
        fprintf(out, "    %7s %5s %7s %9s  item\n", "count", "err", ">=", "llr");
        for (int i = 0; i < n && i < top; i++) {
            double llr = row_llr(s, it, g, (xs_class_t)cls, &rows[i], other);
            fprintf(out, "    %7" PRIu32 " %5" PRIu32 " %7" PRIu32 " %9.2f  ", rows[i].count,
                    rows[i].err, rows[i].count - rows[i].err, llr);
            print_name(s, rows[i].item, out, true);
            fputc('\n', out);
        }
        xs_top_t sorted[XS_TOP_BOUGHT > XS_TOP_VIEWED ? XS_TOP_BOUGHT : XS_TOP_VIEWED];
        int nt = sorted_top(it, (xs_class_t)cls, sorted);
        fprintf(out, "  %s neighbour list (%d, as the scorer reads it):\n",
                cls == XS_CLASS_BOUGHT ? "bought" : "viewed", nt);
        for (int i = 0; i < nt && i < top; i++) {
            fprintf(out, "    %9.2f  ", (double)sorted[i].sim);
            print_name(s, sorted[i].item, out, true);
            fputc('\n', out);
        }
    }
    fprintf(out, "  lists last ranked whole at %" PRIu64 " users\n", it->scored_at);
    err = XS_OK;
out:
    free(it);
    free(other);
    free(g);
    return err;
}

/* A name record's id (and title) as JSON members ("<member>":...[, "title":...|null]). */
static void json_named(xs_store_t *s, uint64_t h, const char *member, bool with_title, FILE *out)
{
    uint8_t key[8];
    xs_buf_t val = {0}, js = {0};
    bool found = false;
    xs_name_rec_t n = {0};
    char hex[24];
    const char *id = hex, *title = NULL;
    snprintf(hex, sizeof(hex), "#%016" PRIx64, h);
    xs_engine_key_u64(key, h);
    if (xs_store_get(s, XS_CF_NAMES, key, 8, &val, &found, NULL, 0) == XS_OK && found &&
        xs_store_records_name_decode(&n, val.data, val.len, NULL, 0) == XS_OK) {
        id = n.id;
        title = n.title;
    }
    xs_json_write_string(&js, id, strlen(id));
    fprintf(out, "\"%s\":%.*s", member, (int)js.len, js.data ? (const char *)js.data : "\"\"");
    xs_buf_reset(&js);
    if (with_title) {
        if (title && xs_json_write_string(&js, title, strlen(title)) == XS_OK && js.data)
            fprintf(out, ",\"title\":%.*s", (int)js.len, (const char *)js.data);
        else
            fprintf(out, ",\"title\":null");
    }
    xs_store_records_name_rec_clear(&n);
    xs_buf_free(&val);
    xs_buf_free(&js);
}

static void json_name(xs_store_t *s, uint64_t h, FILE *out)
{
    json_named(s, h, "item", true, out);
}

xs_err_t xs_inspect_user_json(xs_store_t *s, const char *user_id, double half_life_hours, FILE *out,
                              char *errstr, size_t errstr_size)
{
    find_user_ctx_t f = {0};
    xs_buf_t val = {0}, js = {0};
    xs_profile_t *p = NULL;
    xs_err_t err = find_user_parts(s, user_id, &f, errstr, errstr_size);
    double hl = half_life_hours * 3600e3;
    bool first = true;
    if (err)
        goto out;
    if (!(p = malloc(sizeof(*p))) || xs_json_write_string(&js, user_id, strlen(user_id)) != XS_OK) {
        err = XS_ERR_NOMEM;
        xs_err_set(errstr, errstr_size, "out of memory");
        goto out;
    }
    fprintf(out,
            "{\"user\":%.*s,\"hash\":\"%016" PRIx64 "\",\"half_life_hours\":%.6g,"
            "\"partitions\":[",
            (int)js.len, (const char *)js.data, f.user, half_life_hours);
    for (size_t i = 0; i < f.n; i++) {
        uint8_t key[10];
        bool found = false;
        xs_buf_reset(&val);
        xs_engine_key_user(key, f.parts[i], f.user);
        if ((err = xs_store_get(s, XS_CF_USERS, key, 10, &val, &found, errstr, errstr_size)))
            goto out;
        if (!found)
            continue;
        if ((err = xs_profile_decode(p, val.data, val.len, errstr, errstr_size)))
            goto out;
        int64_t now = p->last_ts;
        fprintf(out,
                "%s{\"partition\":%u,\"last_event_ms\":%" PRId64 ",\"events\":%" PRIu32
                ",\"has_bought\":%s,\"items\":[",
                first ? "" : ",", f.parts[i], now, p->n_events,
                (p->flags & XS_PROFILE_F_BOUGHT) ? "true" : "false");
        first = false;
        for (int k = 0; k < p->n_items; k++) {
            const xs_profile_item_t *it = &p->items[k];
            fprintf(out, "%s{", k ? "," : "");
            json_name(s, it->item, out);
            fprintf(out, ",\"signal\":\"%s\",\"affinity\":%.6g,\"last_ms\":%" PRId64 "}",
                    signal_name(it->signal), xs_profile_decay(it->score, it->ts, now, hl), it->ts);
        }
        fprintf(out, "],\"categories\":[");
        for (int k = 0; k < p->n_cats; k++) {
            fprintf(out, "%s{", k ? "," : "");
            json_named(s, p->cats[k].cat, "category", false, out);
            fprintf(out, ",\"affinity\":%.6g}",
                    xs_profile_decay(p->cats[k].score, p->cats[k].ts, now, hl));
        }
        fprintf(out, "],\"cart\":[");
        for (int k = 0; k < p->n_cart; k++) {
            fprintf(out, "%s{", k ? "," : "");
            json_name(s, p->cart[k].item, out);
            fprintf(out, ",\"qty\":%" PRId32 "}", p->cart[k].qty);
        }
        fprintf(out, "],\"cart_overflow\":%s,\"purchases\":[", p->n_over ? "true" : "false");
        bool any = false;
        for (int k = 0; k < p->n_items; k++) {
            if (!p->items[k].bought_ts)
                continue;
            fprintf(out, "%s{", any ? "," : "");
            any = true;
            json_name(s, p->items[k].item, out);
            fprintf(out, ",\"bought_ms\":%" PRId64 "}", p->items[k].bought_ts);
        }
        fprintf(out, "],\"rebuy_buckets\":[");
        for (int k = 0; k < p->n_buckets; k++)
            fprintf(out, "%s{\"from_ms\":%" PRId64 ",\"to_ms\":%" PRId64 "}", k ? "," : "",
                    p->rebuy[k].lo, p->rebuy[k].hi);
        fprintf(out, "],\"dedup_ids\":%u,\"last_lists\":[", p->n_dedup);
        any = false;
        for (int k = 0; k < XS_PLACEMENT__COUNT; k++) {
            if (!p->last_list_hash[k])
                continue;
            fprintf(out,
                    "%s{\"placement\":\"%s\",\"ts_ms\":%" PRId64 ",\"hash\":\"%08" PRIx32 "\"}",
                    any ? "," : "", xs_event_placement_name((xs_placement_t)k), p->last_list_ts[k],
                    p->last_list_hash[k]);
            any = true;
        }
        fprintf(out, "]}");
    }
    fprintf(out, "]}\n");
out:
    free(p);
    free(f.parts);
    xs_buf_free(&val);
    xs_buf_free(&js);
    return err;
}

xs_err_t xs_inspect_item_json(xs_store_t *s, const char *item_id, int top, FILE *out, char *errstr,
                              size_t errstr_size)
{
    uint64_t h = xs_hash_str(item_id);
    xs_item_t *it = NULL, *other = NULL;
    xs_globals_t *g = NULL;
    nb_row_t rows[XS_SKETCH_BOUGHT_CAP + XS_SKETCH_VIEWED_CAP];
    xs_err_t err;
    if ((err = load_item(s, item_id, h, &it, &other, &g, errstr, errstr_size)))
        goto out;
    fputc('{', out);
    json_name(s, h, out);
    fprintf(out,
            ",\"users\":{\"bought\":%" PRIu32 ",\"bought_total\":%" PRIu64 ",\"viewed\":%" PRIu32
            ",\"viewed_total\":%" PRIu64 "}",
            it->n_users[XS_CLASS_BOUGHT], g->users_bought, it->n_users[XS_CLASS_VIEWED],
            g->users_total);
    for (int cls = 0; cls < XS_CLASS__COUNT; cls++) {
        const char *cname = cls == XS_CLASS_BOUGHT ? "bought" : "viewed";
        /* the stored neighbour list, what the scorer reads, best first */
        xs_top_t sorted[XS_TOP_BOUGHT > XS_TOP_VIEWED ? XS_TOP_BOUGHT : XS_TOP_VIEWED];
        int nt = sorted_top(it, (xs_class_t)cls, sorted);
        fprintf(out, ",\"%s_list\":[", cname);
        for (int i = 0; i < nt; i++) {
            fprintf(out, "%s{", i ? "," : "");
            json_name(s, sorted[i].item, out);
            fprintf(out, ",\"similarity\":%.6g}", (double)sorted[i].sim);
        }
        fputc(']', out);
        /* the sketch's top entries by guaranteed count */
        int n = sketch_rows(it, (xs_class_t)cls, rows);
        fprintf(out, ",\"%s_sketch\":{\"tracked\":%d,\"top\":[", cname, n);
        for (int i = 0; i < n && i < top; i++) {
            double llr = row_llr(s, it, g, (xs_class_t)cls, &rows[i], other);
            fprintf(out, "%s{", i ? "," : "");
            json_name(s, rows[i].item, out);
            fprintf(out, ",\"count\":%" PRIu32 ",\"err\":%" PRIu32 ",\"llr\":%.4f}", rows[i].count,
                    rows[i].err, llr);
        }
        fprintf(out, "]}");
    }
    fprintf(out, ",\"scored_at\":%" PRIu64 "}\n", it->scored_at);
    err = XS_OK;
out:
    free(it);
    free(other);
    free(g);
    return err;
}
