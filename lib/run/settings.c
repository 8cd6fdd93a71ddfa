/*
 * settings.c — engine parameters and experiments from the configuration.
 */
#include "xsell/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/sketch.h"

/* Applies one scoring key (config name) to params; the value is valid. */
static void apply(xs_params_t *P, const char *key, const char *v)
{
    if (!strcmp(key, "model.similarity"))
        P->similarity = (xs_sim_t)xs_sketch_sim_from_name(v);
    else if (!strcmp(key, "model.llr_min"))
        P->llr_min = atof(v);
    else if (!strcmp(key, "model.min_support"))
        P->min_support = atoi(v);
    else if (!strcmp(key, "model.viewed_weight"))
        P->viewed_weight = atof(v);
    else if (!strcmp(key, "model.normalize"))
        P->normalize =
            !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on");
    else if (!strcmp(key, "model.category_boost"))
        P->category_boost = atof(v);
    else if (!strcmp(key, "model.popularity_prior"))
        P->popularity_prior = atof(v);
    else if (!strcmp(key, "model.max_context"))
        P->max_context = atoi(v);
    else if (!strcmp(key, "list.length.product_page"))
        P->list_len[XS_PLACEMENT_PRODUCT_PAGE] = atoi(v);
    else if (!strcmp(key, "list.length.cart"))
        P->list_len[XS_PLACEMENT_CART] = atoi(v);
    else if (!strcmp(key, "list.length.checkout"))
        P->list_len[XS_PLACEMENT_CHECKOUT] = atoi(v);
    else if (!strcmp(key, "list.length.post_purchase"))
        P->list_len[XS_PLACEMENT_POST_PURCHASE] = atoi(v);
    else if (!strcmp(key, "list.category_cap"))
        P->category_cap = atoi(v);
    else if (!strcmp(key, "list.family_cap"))
        P->family_cap = atoi(v);
    else if (!strcmp(key, "list.family_exclude"))
        P->family_exclude =
            !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on");
    else if (!strcmp(key, "list.rebuy_days"))
        P->rebuy_days = atof(v);
    else if (!strcmp(key, "list.suppress_minutes"))
        P->suppress_minutes = atof(v);
    else if (!strcmp(key, "list.trending_backfill"))
        P->trending_backfill =
            !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on");
    else if (!strcmp(key, "popularity_only"))
        P->popularity_only =
            !strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on");
}

void xs_settings_params(const xs_config_t *cfg, xs_params_t *P)
{
    xs_engine_params_default(P);
    P->half_life_hours = xs_config_double(cfg, "model.half_life.hours");
    P->window_hours = xs_config_double(cfg, "model.window.hours");
    P->kmax = (int)xs_config_int(cfg, "model.kmax");
    size_t n_keys = 0;
    const char *const *keys = xs_config_arm_keys(&n_keys);
    for (size_t i = 0; i < n_keys; i++)
        apply(P, keys[i], xs_config_str(cfg, keys[i]));
}

xs_err_t xs_settings_experiment(const xs_config_t *cfg, const xs_params_t *base, xs_experiment_t *x,
                                char *errstr, size_t errstr_size)
{
    memset(x, 0, sizeof(*x));
    const char *name = xs_config_str(cfg, "experiment.name");
    if (!*name)
        return XS_OK;
    snprintf(x->name, sizeof(x->name), "%s", name);
    snprintf(x->salt, sizeof(x->salt), "%s", xs_config_str(cfg, "experiment.salt"));
    const char *p = xs_config_str(cfg, "experiment.arms");
    if (!*p) {
        xs_err_set(errstr, errstr_size,
                   "experiment.arms: an experiment needs arms, e.g. "
                   "control:10,cooc:90");
        return XS_ERR_CONFIG;
    }
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char item[128];
        if (len == 0 || len >= sizeof(item) || x->n_arms == XS_MAX_ARMS) {
            xs_err_set(errstr, errstr_size,
                       "experiment.arms: expected up to %d entries 'name:share'", XS_MAX_ARMS);
            return XS_ERR_CONFIG;
        }
        memcpy(item, p, len);
        item[len] = '\0';
        char *colon = strchr(item, ':');
        char *end = NULL;
        double share = colon ? strtod(colon + 1, &end) : -1;
        if (!colon || colon == item || colon - item >= 32 || !end || *end || share <= 0) {
            xs_err_set(errstr, errstr_size,
                       "experiment.arms: '%s' is not 'name:share' with a positive share", item);
            return XS_ERR_CONFIG;
        }
        *colon = '\0';
        xs_arm_t *arm = &x->arms[x->n_arms++];
        memcpy(arm->name, item, (size_t)(colon - item) + 1);
        arm->share = share;
        arm->params = *base;
        char key[160];
        size_t n_keys = 0;
        const char *const *keys = xs_config_arm_keys(&n_keys);
        for (size_t i = 0; i < n_keys; i++) {
            snprintf(key, sizeof(key), "experiment.arm.%s.%s", arm->name, keys[i]);
            const char *v = xs_config_get_raw(cfg, key);
            if (v)
                apply(&arm->params, keys[i], v);
        }
        snprintf(key, sizeof(key), "experiment.arm.%s.popularity_only", arm->name);
        const char *v = xs_config_get_raw(cfg, key);
        if (v)
            apply(&arm->params, "popularity_only", v);
        p += len + (comma ? 1 : 0);
    }
    return XS_OK;
}
