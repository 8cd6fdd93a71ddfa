/*
 * metrics.c — the metrics registry and the list attribution map (see
 * include/xsell/metrics.h for the model and its bounds).
 *
 * Layout: a fixed array of families; each family holds a growable array of
 * series (label values + one double). Lookups are linear: families have a
 * handful of series (topics x event types, placements x arms), and the cost
 * is one short scan under an uncontended mutex per update.
 *
 * Rendering follows text format 0.0.4: one "# HELP" and one "# TYPE" line
 * per family, then its samples, contiguous; label values escape \ " and
 * newline; HELP text escapes \ and newline; values are Go-style floats
 * (integers print without exponent, +Inf, -Inf, NaN).
 */
#include "xsell/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hmap.h"

#define XS_OVERFLOW_VALUE "_overflow"

typedef struct series {
    char *values[XS_METRICS_MAX_LABELS];
    double v;       /* counter, gauge; a histogram's sum */
    uint64_t *hist; /* histogram: per-bucket counts (not cumulative), n_bounds + 1 (+Inf) */
    uint64_t count; /* histogram: observations */
} series_t;

typedef struct family {
    char *name;
    char *help;
    xs_metric_type_t type;
    char *labels[XS_METRICS_MAX_LABELS];
    int n_labels;
    series_t *series;
    size_t n_series, cap_series;
    double *bounds; /* histogram: upper bounds, ascending, without +Inf */
    int n_bounds;
} family_t;

struct xs_metrics {
    pthread_mutex_t mu;
    family_t fam[XS_METRICS_MAX_FAMILIES];
    int n_fam;
    size_t max_series;
    int overflow_family;
};

/* ======================================================================== */
/* Private helpers                                                          */
/* ======================================================================== */

static bool valid_name(const char *s, bool colon_ok)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++) {
        char c = *p;
        bool alpha =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon_ok && c == ':');
        if (!alpha && !(p != s && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static void family_clear(family_t *f)
{
    free(f->name);
    free(f->help);
    for (int i = 0; i < f->n_labels; i++)
        free(f->labels[i]);
    for (size_t i = 0; i < f->n_series; i++) {
        for (int k = 0; k < f->n_labels; k++)
            free(f->series[i].values[k]);
        free(f->series[i].hist);
    }
    free(f->series);
    free(f->bounds);
    memset(f, 0, sizeof(*f));
}

static bool same_values(const family_t *f, const series_t *s, const char *const *values)
{
    for (int k = 0; k < f->n_labels; k++) {
        const char *v = values && values[k] ? values[k] : "";
        if (strcmp(s->values[k], v) != 0)
            return false;
    }
    return true;
}

static series_t *append_series(family_t *f, const char *const *values, bool overflow)
{
    if (f->n_series == f->cap_series) {
        size_t cap = f->cap_series ? f->cap_series * 2 : 4;
        series_t *s = realloc(f->series, cap * sizeof(*s));
        if (!s)
            return NULL;
        f->series = s;
        f->cap_series = cap;
    }
    series_t *s = &f->series[f->n_series];
    memset(s, 0, sizeof(*s));
    if (f->type == XS_METRIC_HISTOGRAM &&
        !(s->hist = calloc((size_t)f->n_bounds + 1, sizeof(*s->hist))))
        return NULL;
    for (int k = 0; k < f->n_labels; k++) {
        const char *v = overflow ? XS_OVERFLOW_VALUE : values && values[k] ? values[k] : "";
        if (!(s->values[k] = xs_str_dup(v))) {
            for (int j = 0; j < k; j++)
                free(s->values[j]);
            free(s->hist);
            return NULL;
        }
    }
    f->n_series++;
    return s;
}

/* The series of values, created when missing; NULL when out of memory.
 * Called with the mutex held. */
static series_t *find_series(xs_metrics_t *m, int family, const char *const *values)
{
    family_t *f = &m->fam[family];
    for (size_t i = 0; i < f->n_series; i++)
        if (same_values(f, &f->series[i], values))
            return &f->series[i];
    if (f->n_series < m->max_series)
        return append_series(f, values, false);
    /* Bounded: fold every further tuple into the overflow series. */
    if (family != m->overflow_family && m->overflow_family >= 0) {
        family_t *of = &m->fam[m->overflow_family];
        if (of->n_series > 0)
            of->series[0].v += 1;
    }
    for (size_t i = 0; i < f->n_series; i++) {
        bool all = true;
        for (int k = 0; k < f->n_labels && all; k++)
            all = strcmp(f->series[i].values[k], XS_OVERFLOW_VALUE) == 0;
        if (all)
            return &f->series[i];
    }
    return append_series(f, NULL, true);
}

static bool valid_family(const xs_metrics_t *m, int family)
{
    return m && family >= 0 && family < m->n_fam;
}

static xs_err_t write_escaped(xs_buf_t *out, const char *s, bool quote)
{
    xs_err_t err = XS_OK;
    for (const char *p = s; *p && !err; p++) {
        if (*p == '\\')
            err = xs_buf_append_str(out, "\\\\");
        else if (*p == '\n')
            err = xs_buf_append_str(out, "\\n");
        else if (quote && *p == '"')
            err = xs_buf_append_str(out, "\\\"");
        else
            err = xs_buf_append_u8(out, (uint8_t)*p);
    }
    return err;
}

static xs_err_t write_value(xs_buf_t *out, double v)
{
    if (isnan(v))
        return xs_buf_append_str(out, "NaN");
    if (isinf(v))
        return xs_buf_append_str(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 1e15)
        return xs_buf_printf(out, "%.0f", v);
    char tmp[40];
    snprintf(tmp, sizeof(tmp), "%.15g", v);
    if (strtod(tmp, NULL) != v)
        snprintf(tmp, sizeof(tmp), "%.17g", v);
    return xs_buf_append_str(out, tmp);
}

/* ======================================================================== */
/* Registry API                                                             */
/* ======================================================================== */

xs_metrics_t *xs_metrics_new(size_t max_series)
{
    xs_metrics_t *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    m->max_series = max_series ? max_series : 256;
    m->overflow_family = -1;
    m->overflow_family = xs_metrics_define(
        m, "xsell_metrics_overflow_total", XS_METRIC_COUNTER,
        "Label tuples folded into an _overflow series (series limit reached).", NULL);
    if (m->overflow_family < 0) {
        xs_metrics_destroy(m);
        return NULL;
    }
    return m;
}

void xs_metrics_destroy(xs_metrics_t *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->n_fam; i++)
        family_clear(&m->fam[i]);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int define(xs_metrics_t *m, const char *name, xs_metric_type_t type, const char *help,
                  const char *labels, const double *bounds, size_t n_bounds)
{
    int id = -1;
    if (!m || !valid_name(name, true))
        return -1;
    if (type == XS_METRIC_HISTOGRAM) {
        if (n_bounds == 0 || n_bounds > XS_METRICS_MAX_BUCKETS)
            return -1;
        for (size_t i = 0; i < n_bounds; i++)
            if (!isfinite(bounds[i]) || (i && !(bounds[i] > bounds[i - 1])))
                return -1;
    }
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_fam; i++)
        if (strcmp(m->fam[i].name, name) == 0)
            goto out;
    if (m->n_fam == XS_METRICS_MAX_FAMILIES)
        goto out;
    family_t *f = &m->fam[m->n_fam];
    memset(f, 0, sizeof(*f));
    f->type = type;
    f->name = xs_str_dup(name);
    f->help = xs_str_dup(help ? help : "");
    if (!f->name || !f->help)
        goto fail;
    if (type == XS_METRIC_HISTOGRAM) {
        if (!(f->bounds = malloc(n_bounds * sizeof(*f->bounds))))
            goto fail;
        memcpy(f->bounds, bounds, n_bounds * sizeof(*f->bounds));
        f->n_bounds = (int)n_bounds;
    }
    for (const char *p = labels; p && *p;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (f->n_labels == XS_METRICS_MAX_LABELS)
            goto fail;
        if (!(f->labels[f->n_labels] = xs_str_ndup(p, len)))
            goto fail;
        f->n_labels++;
        if (!valid_name(f->labels[f->n_labels - 1], false))
            goto fail;
        p += len + (comma ? 1 : 0);
    }
    if (f->n_labels == 0 && !append_series(f, NULL, false))
        goto fail;
    id = m->n_fam++;
    goto out;
fail:
    family_clear(f);
out:
    pthread_mutex_unlock(&m->mu);
    return id;
}

int xs_metrics_define(xs_metrics_t *m, const char *name, xs_metric_type_t type, const char *help,
                      const char *labels)
{
    if (type == XS_METRIC_HISTOGRAM)
        return -1;
    return define(m, name, type, help, labels, NULL, 0);
}

int xs_metrics_define_histogram(xs_metrics_t *m, const char *name, const char *help,
                                const char *labels, const double *bounds, size_t n_bounds)
{
    return define(m, name, XS_METRIC_HISTOGRAM, help, labels, bounds, n_bounds);
}

void xs_metrics_observe(xs_metrics_t *m, int family, const char *const *values, double v)
{
    if (!valid_family(m, family) || m->fam[family].type != XS_METRIC_HISTOGRAM || isnan(v))
        return;
    pthread_mutex_lock(&m->mu);
    family_t *f = &m->fam[family];
    series_t *s = find_series(m, family, values);
    if (s) {
        int b = 0;
        while (b < f->n_bounds && v > f->bounds[b])
            b++;
        s->hist[b]++;
        s->count++;
        s->v += v;
    }
    pthread_mutex_unlock(&m->mu);
}

void xs_metrics_touch(xs_metrics_t *m, int family, const char *const *values)
{
    if (!valid_family(m, family))
        return;
    pthread_mutex_lock(&m->mu);
    find_series(m, family, values);
    pthread_mutex_unlock(&m->mu);
}

void xs_metrics_remove(xs_metrics_t *m, int family, const char *const *values)
{
    if (!valid_family(m, family))
        return;
    pthread_mutex_lock(&m->mu);
    family_t *f = &m->fam[family];
    for (size_t i = 0; f->n_labels && i < f->n_series; i++)
        if (same_values(f, &f->series[i], values)) {
            for (int k = 0; k < f->n_labels; k++)
                free(f->series[i].values[k]);
            free(f->series[i].hist);
            f->series[i] = f->series[--f->n_series];
            break;
        }
    pthread_mutex_unlock(&m->mu);
}

void xs_metrics_add(xs_metrics_t *m, int family, const char *const *values, double delta)
{
    if (!valid_family(m, family))
        return;
    pthread_mutex_lock(&m->mu);
    series_t *s =
        m->fam[family].type == XS_METRIC_HISTOGRAM ? NULL : find_series(m, family, values);
    if (s)
        s->v += delta;
    pthread_mutex_unlock(&m->mu);
}

void xs_metrics_set(xs_metrics_t *m, int family, const char *const *values, double value)
{
    if (!valid_family(m, family))
        return;
    pthread_mutex_lock(&m->mu);
    series_t *s =
        m->fam[family].type == XS_METRIC_HISTOGRAM ? NULL : find_series(m, family, values);
    if (s)
        s->v = value;
    pthread_mutex_unlock(&m->mu);
}

double xs_metrics_get(xs_metrics_t *m, int family, const char *const *values)
{
    double v = 0;
    if (!valid_family(m, family))
        return 0;
    pthread_mutex_lock(&m->mu);
    family_t *f = &m->fam[family];
    for (size_t i = 0; i < f->n_series; i++)
        if (same_values(f, &f->series[i], values)) {
            v = f->series[i].v;
            break;
        }
    pthread_mutex_unlock(&m->mu);
    return v;
}

/* name + suffix + {labels[, le="bound"]} + ' ' */
static xs_err_t write_sample_head(xs_buf_t *out, const family_t *f, const series_t *s,
                                  const char *suffix, const char *le)
{
    xs_err_t err = xs_buf_printf(out, "%s%s", f->name, suffix);
    int n = 0;
    for (int k = 0; k < f->n_labels && !err; k++, n++) {
        if ((err = xs_buf_printf(out, "%s%s=\"", k ? "," : "{", f->labels[k])) ||
            (err = write_escaped(out, s->values[k], true)))
            break;
        err = xs_buf_append_u8(out, '"');
    }
    if (!err && le)
        err = xs_buf_printf(out, "%sle=\"%s\"", n ? "," : "{", le);
    if (!err && (n || le))
        err = xs_buf_append_u8(out, '}');
    if (!err)
        err = xs_buf_append_u8(out, ' ');
    return err;
}

static xs_err_t write_histogram(xs_buf_t *out, const family_t *f, const series_t *s)
{
    xs_err_t err = XS_OK;
    uint64_t cum = 0;
    for (int b = 0; b <= f->n_bounds && !err; b++) {
        char le[40] = "+Inf";
        if (b < f->n_bounds) {
            xs_buf_t tmp = {0};
            if (write_value(&tmp, f->bounds[b]) == XS_OK && tmp.len < sizeof(le)) {
                memcpy(le, tmp.data, tmp.len);
                le[tmp.len] = '\0';
            }
            xs_buf_free(&tmp);
        }
        cum += s->hist[b];
        if (!(err = write_sample_head(out, f, s, "_bucket", le)))
            err = xs_buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    if (!err && !(err = write_sample_head(out, f, s, "_sum", NULL)) &&
        !(err = write_value(out, s->v)) && !(err = xs_buf_append_u8(out, '\n')) &&
        !(err = write_sample_head(out, f, s, "_count", NULL)))
        err = xs_buf_printf(out, "%llu\n", (unsigned long long)s->count);
    return err;
}

xs_err_t xs_metrics_render(xs_metrics_t *m, xs_buf_t *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    xs_err_t err = XS_OK;
    pthread_mutex_lock(&m->mu);
    for (int i = 0; i < m->n_fam && !err; i++) {
        const family_t *f = &m->fam[i];
        if ((err = xs_buf_printf(out, "# HELP %s ", f->name)) ||
            (err = write_escaped(out, f->help, false)) ||
            (err = xs_buf_printf(out, "\n# TYPE %s %s\n", f->name, type_names[f->type])))
            break;
        for (size_t s = 0; s < f->n_series && !err && f->type == XS_METRIC_HISTOGRAM; s++)
            err = write_histogram(out, f, &f->series[s]);
        for (size_t s = 0; s < f->n_series && !err && f->type != XS_METRIC_HISTOGRAM; s++) {
            err = xs_buf_append_str(out, f->name);
            for (int k = 0; k < f->n_labels && !err; k++) {
                if ((err = xs_buf_printf(out, "%s%s=\"", k ? "," : "{", f->labels[k])) ||
                    (err = write_escaped(out, f->series[s].values[k], true)))
                    break;
                err = xs_buf_append_str(out, k + 1 == f->n_labels ? "\"}" : "\"");
            }
            if (!err && !(err = xs_buf_append_u8(out, ' ')) &&
                !(err = write_value(out, f->series[s].v)))
                err = xs_buf_append_u8(out, '\n');
        }
    }
    pthread_mutex_unlock(&m->mu);
    return err;
}

/* ======================================================================== */
/* Attribution map                                                          */
/* ======================================================================== */

#define XS_LISTMAP_MAX_ARMS 16

struct xs_metrics_listmap {
    xs_hmap_t index; /* list key -> (arm index + 1) */
    uint64_t *ring;  /* list keys, oldest at head when full */
    size_t cap, head, len;
    char *arms[XS_LISTMAP_MAX_ARMS + 1]; /* [0] = "none" */
    int n_arms;
};

/* First 64 bits of a 32-hex-digit list id; 0 when malformed. */
static uint64_t list_key(const char *list_id)
{
    uint64_t k = 0;
    if (!list_id || strlen(list_id) != 32)
        return 0;
    for (int i = 0; i < 32; i++) {
        char c = list_id[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return 0;
        if (i < 16)
            k = k << 4 | (uint64_t)d;
    }
    return k ? k : 1; /* 0 is the map's empty marker */
}

xs_metrics_listmap_t *xs_metrics_listmap_new(size_t capacity)
{
    xs_metrics_listmap_t *lm = calloc(1, sizeof(*lm));
    if (!lm)
        return NULL;
    lm->cap = capacity ? capacity : 1;
    lm->ring = calloc(lm->cap, sizeof(*lm->ring));
    lm->arms[0] = xs_str_dup("none");
    lm->n_arms = 1;
    if (!lm->ring || !lm->arms[0]) {
        xs_metrics_listmap_destroy(lm);
        return NULL;
    }
    return lm;
}

void xs_metrics_listmap_destroy(xs_metrics_listmap_t *lm)
{
    if (!lm)
        return;
    xs_hmap_free(&lm->index);
    free(lm->ring);
    for (int i = 0; i < lm->n_arms; i++)
        free(lm->arms[i]);
    free(lm);
}

static int arm_index(xs_metrics_listmap_t *lm, const char *arm)
{
    if (!arm || !*arm)
        return 0;
    for (int i = 1; i < lm->n_arms; i++)
        if (strcmp(lm->arms[i], arm) == 0)
            return i;
    if (lm->n_arms == XS_LISTMAP_MAX_ARMS + 1)
        return -1;
    if (!(lm->arms[lm->n_arms] = xs_str_dup(arm)))
        return -1;
    return lm->n_arms++;
}

xs_err_t xs_metrics_listmap_put(xs_metrics_listmap_t *lm, const char *list_id, const char *arm)
{
    uint64_t key = list_key(list_id);
    if (!key)
        return XS_ERR_INVALID;
    int a = arm_index(lm, arm);
    if (a < 0)
        return XS_ERR_TOO_LARGE;
    if (xs_hmap_get(&lm->index, key)) /* republished (replay): keep its place */
        return XS_OK;
    if (lm->len == lm->cap) {
        xs_hmap_del(&lm->index, lm->ring[lm->head]);
        lm->len--;
        lm->head = (lm->head + 1) % lm->cap;
    }
    xs_err_t err = xs_hmap_put(&lm->index, key, (void *)(uintptr_t)(a + 1));
    if (err)
        return err;
    lm->ring[(lm->head + lm->len) % lm->cap] = key;
    lm->len++;
    return XS_OK;
}

const char *xs_metrics_listmap_get(const xs_metrics_listmap_t *lm, const char *list_id)
{
    uint64_t key = list_key(list_id);
    if (!key)
        return NULL;
    uintptr_t v = (uintptr_t)xs_hmap_get(&lm->index, key);
    return v ? lm->arms[v - 1] : NULL;
}

size_t xs_metrics_listmap_len(const xs_metrics_listmap_t *lm)
{
    return lm->len;
}
