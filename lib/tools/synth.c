/*
 * synth.c — the seeded synthetic clickstream (see include/xsell/synth.h for
 * the model).
 *
 * Each open session keeps a small queue of events it has decided to emit
 * next (the complement view after an anchor view, the ADDs of what was just
 * viewed); when the queue is empty it views another item, or ends with a
 * PURCHASE of its cart, or just ends. An ended session is replaced by a new
 * one in the same slot, so `open_sessions` sessions are always interleaved.
 */
#include "xsell/synth.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_CART 16
#define SESSION_QUEUE 8

typedef struct zipf {
    double s, hx1, hn, sv;
    uint64_t n;
} zipf_t;

typedef struct pending {
    uint32_t item; /* popularity rank */
    uint8_t type;  /* 0 view, 1 add */
} pending_t;

typedef struct session {
    uint64_t id;
    uint32_t user; /* popularity rank */
    uint32_t views_left;
    uint32_t cart[SESSION_CART];
    int n_cart;
    pending_t q[SESSION_QUEUE];
    int qh, qn;
} session_t;

struct xs_synth {
    xs_synth_opts_t o;
    uint64_t rng[4];
    zipf_t zu, zi;
    uint64_t user_mul, item_mul;
    uint64_t count, next_session;
    double step_ms;
    session_t *sessions;
};

/* ---- PRNG: splitmix64 seeding xoshiro256** --------------------------------- */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(xs_synth_t *s)
{
    uint64_t *r = s->rng;
    uint64_t out = rotl(r[1] * 5, 7) * 9, t = r[1] << 17;
    r[2] ^= r[0];
    r[3] ^= r[1];
    r[1] ^= r[2];
    r[0] ^= r[3];
    r[2] ^= t;
    r[3] = rotl(r[3], 45);
    return out;
}

/* Uniform in [0, 1). */
static double next_unit(xs_synth_t *s)
{
    return (double)(next_u64(s) >> 11) * 0x1.0p-53;
}

static uint32_t next_below(xs_synth_t *s, uint32_t n)
{
    return (uint32_t)(((next_u64(s) >> 32) * (uint64_t)n) >> 32);
}

/* ---- Zipf by rejection-inversion ------------------------------------------- */

static double helper1(double x)
{
    return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double helper2(double x)
{
    return fabs(x) > 1e-8 ? expm1(x) / x
                          : 1.0 + x * 0.5 * (1.0 + x * (1.0 / 3.0) * (1.0 + 0.25 * x));
}

static double zipf_h(const zipf_t *z, double x)
{
    return exp(-z->s * log(x));
}

static double zipf_hint(const zipf_t *z, double x)
{
    double lx = log(x);
    return helper2((1.0 - z->s) * lx) * lx;
}

static double zipf_hint_inv(const zipf_t *z, double x)
{
    double t = x * (1.0 - z->s);
    if (t < -1.0)
        t = -1.0;
    return exp(helper1(t) * x);
}

static void zipf_init(zipf_t *z, uint64_t n, double s)
{
    z->n = n;
    z->s = s;
    z->hx1 = zipf_hint(z, 1.5) - 1.0;
    z->hn = zipf_hint(z, (double)n + 0.5);
    z->sv = 2.0 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2.0));
}

/* A rank in [0, n): rank 0 is the most likely. */
static uint32_t zipf_draw(xs_synth_t *s, const zipf_t *z)
{
    for (;;) {
        double u = z->hn + next_unit(s) * (z->hx1 - z->hn);
        double x = zipf_hint_inv(z, u);
        double kd = floor(x + 0.5);
        if (kd < 1)
            kd = 1;
        else if (kd > (double)z->n)
            kd = (double)z->n;
        if (kd - x <= z->sv || u >= zipf_hint(z, kd + 0.5) - zipf_h(z, kd))
            return (uint32_t)kd - 1;
    }
}

/* ---- ids ----------------------------------------------------------------------- */

static uint64_t gcd(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* A multiplier coprime with n: rank -> (rank * mul + 7) mod n is a bijection. */
static uint64_t coprime_mul(uint64_t n, uint64_t seed)
{
    uint64_t x = seed;
    if (n <= 2)
        return 1;
    for (;;) {
        uint64_t m = splitmix64(&x) % n;
        if (m > 1 && gcd(m, n) == 1)
            return m;
    }
}

static uint32_t user_id_of(const xs_synth_t *s, uint32_t rank)
{
    return (uint32_t)(((uint64_t)rank * s->user_mul + 7) % s->o.n_users);
}

static uint32_t item_id_of(const xs_synth_t *s, uint32_t rank)
{
    return (uint32_t)(((uint64_t)rank * s->item_mul + 7) % s->o.n_items);
}

static uint32_t category_of(const xs_synth_t *s, uint32_t item_id)
{
    uint64_t x = item_id ^ (s->o.seed << 32);
    return (uint32_t)(splitmix64(&x) % s->o.n_categories);
}

/* Rank of the complement of anchor rank r (< n_complements), never r. */
static uint32_t complement_of(const xs_synth_t *s, uint32_t r)
{
    uint64_t x = (s->o.seed * UINT64_C(0x2545f4914f6cdd1d)) ^ r;
    uint32_t c = (uint32_t)(splitmix64(&x) % s->o.n_items);
    return c == r ? (r + 1) % s->o.n_items : c;
}

static char *fmt_id(char prefix, uint64_t a, int has_b, uint64_t b)
{
    char tmp[48];
    if (has_b)
        snprintf(tmp, sizeof(tmp), "%c%llu-%llu", prefix, (unsigned long long)a,
                 (unsigned long long)b);
    else
        snprintf(tmp, sizeof(tmp), "%c%llu", prefix, (unsigned long long)a);
    return xs_str_dup(tmp);
}

/* ---- public API ------------------------------------------------------------------ */

void xs_synth_opts_default(xs_synth_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    o->seed = 1;
    o->n_events = 1000000;
    o->n_users = 1000000;
    o->n_items = 100000;
    o->n_categories = 500;
    o->zipf_users = 0.8;
    o->zipf_items = 1.0;
    o->views_per_session = 4;
    o->p_add = 0.25;
    o->p_purchase = 0.5;
    o->n_complements = 1000;
    o->p_complement = 0.5;
    o->open_sessions = 256;
    o->t0_ms = INT64_C(1704067200000);
    o->span_days = 30;
}

static void session_start(xs_synth_t *s, session_t *ss)
{
    memset(ss, 0, sizeof(*ss));
    ss->id = s->next_session++;
    ss->user = zipf_draw(s, &s->zu);
    /* geometric number of views with the configured mean, at least one */
    double p = 1.0 / s->o.views_per_session;
    uint32_t v = 1;
    while (v < 64 && next_unit(s) > p)
        v++;
    ss->views_left = v;
}

static void push(session_t *ss, uint32_t item, uint8_t type)
{
    if (ss->qn == SESSION_QUEUE)
        return;
    ss->q[(ss->qh + ss->qn) % SESSION_QUEUE] = (pending_t){item, type};
    ss->qn++;
}

xs_synth_t *xs_synth_new(const xs_synth_opts_t *opts, char *errstr, size_t errstr_size)
{
    xs_synth_t *s = NULL;
    if (!opts->n_users || !opts->n_items || !opts->n_categories || !opts->open_sessions ||
        opts->views_per_session < 1 || opts->zipf_users <= 0 || opts->zipf_items <= 0 ||
        opts->n_complements > opts->n_items || opts->span_days <= 0) {
        xs_err_set(errstr, errstr_size,
                   "synth: users, items, categories and sessions must be > 0, "
                   "views_per_session >= 1, exponents > 0, complements <= items");
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->sessions = calloc(opts->open_sessions, sizeof(*s->sessions)))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        xs_synth_destroy(s);
        return NULL;
    }
    s->o = *opts;
    uint64_t x = opts->seed;
    for (int i = 0; i < 4; i++)
        s->rng[i] = splitmix64(&x);
    zipf_init(&s->zu, opts->n_users, opts->zipf_users);
    zipf_init(&s->zi, opts->n_items, opts->zipf_items);
    s->user_mul = coprime_mul(opts->n_users, opts->seed ^ 0x75);
    s->item_mul = coprime_mul(opts->n_items, opts->seed ^ 0x69);
    s->step_ms = opts->n_events ? opts->span_days * 86400e3 / (double)opts->n_events : 0;
    for (uint32_t i = 0; i < opts->open_sessions; i++)
        session_start(s, &s->sessions[i]);
    return s;
}

void xs_synth_destroy(xs_synth_t *s)
{
    if (!s)
        return;
    free(s->sessions);
    free(s);
}

uint64_t xs_synth_count(const xs_synth_t *s)
{
    return s->count;
}

void xs_synth_complement(const xs_synth_t *s, uint32_t k, char *a, char *b)
{
    snprintf(a, 16, "i%u", item_id_of(s, k));
    snprintf(b, 16, "i%u", item_id_of(s, complement_of(s, k)));
}

static xs_err_t fill_common(xs_synth_t *s, const session_t *ss, xs_event_t *ev)
{
    ev->event_id = fmt_id('e', s->o.seed, 1, s->count);
    ev->user_id = fmt_id('u', user_id_of(s, ss->user), 0, 0);
    ev->session_id = fmt_id('s', ss->id, 0, 0);
    ev->ts = s->o.t0_ms + (int64_t)((double)s->count * s->step_ms);
    return ev->event_id && ev->user_id && ev->session_id ? XS_OK : XS_ERR_NOMEM;
}

static xs_err_t emit_view(xs_synth_t *s, session_t *ss, uint32_t rank, xs_event_t *ev)
{
    uint32_t id = item_id_of(s, rank);
    xs_event_init(ev, XS_KIND_CLICK);
    ev->type = XS_CLICK_PRODUCT_VIEW;
    ev->item_id = fmt_id('i', id, 0, 0);
    ev->category = fmt_id('c', category_of(s, id), 0, 0);
    if (!ev->item_id || !ev->category)
        return XS_ERR_NOMEM;
    return fill_common(s, ss, ev);
}

static xs_err_t emit_add(xs_synth_t *s, session_t *ss, uint32_t rank, xs_event_t *ev)
{
    char id[16];
    xs_event_init(ev, XS_KIND_CART);
    ev->type = XS_CART_ADD;
    snprintf(id, sizeof(id), "i%u", item_id_of(s, rank));
    if (xs_event_add_line(ev, id, 1, 0, false) != XS_OK)
        return XS_ERR_NOMEM;
    bool have = false;
    for (int i = 0; i < ss->n_cart; i++)
        have |= ss->cart[i] == rank;
    if (!have && ss->n_cart < SESSION_CART)
        ss->cart[ss->n_cart++] = rank;
    return fill_common(s, ss, ev);
}

static xs_err_t emit_purchase(xs_synth_t *s, session_t *ss, xs_event_t *ev)
{
    char id[16];
    xs_event_init(ev, XS_KIND_CART);
    ev->type = XS_CART_PURCHASE;
    for (int i = 0; i < ss->n_cart; i++) {
        snprintf(id, sizeof(id), "i%u", item_id_of(s, ss->cart[i]));
        if (xs_event_add_line(ev, id, 1, 0, false) != XS_OK)
            return XS_ERR_NOMEM;
    }
    return fill_common(s, ss, ev);
}

xs_err_t xs_synth_next(xs_synth_t *s, xs_event_t *ev)
{
    xs_err_t err = XS_OK;
    xs_event_init(ev, XS_KIND_CLICK);
    if (s->count >= s->o.n_events)
        return XS_ERR_EOF;
    session_t *ss = &s->sessions[next_below(s, s->o.open_sessions)];
    for (;;) {
        if (ss->qn > 0) {
            pending_t pd = ss->q[ss->qh];
            ss->qh = (ss->qh + 1) % SESSION_QUEUE;
            ss->qn--;
            err = pd.type ? emit_add(s, ss, pd.item, ev) : emit_view(s, ss, pd.item, ev);
            break;
        }
        if (ss->views_left > 0) {
            ss->views_left--;
            uint32_t r = zipf_draw(s, &s->zi);
            bool add = next_unit(s) < s->o.p_add;
            if (add)
                push(ss, r, 1);
            if (r < s->o.n_complements && next_unit(s) < s->o.p_complement) {
                uint32_t c = complement_of(s, r);
                push(ss, c, 0);
                if (add)
                    push(ss, c, 1);
            }
            err = emit_view(s, ss, r, ev);
            break;
        }
        if (ss->n_cart > 0 && next_unit(s) < s->o.p_purchase) {
            err = emit_purchase(s, ss, ev);
            session_start(s, ss);
            break;
        }
        session_start(s, ss);
    }
    if (err) {
        xs_event_clear(ev);
        return err;
    }
    s->count++;
    return XS_OK;
}
