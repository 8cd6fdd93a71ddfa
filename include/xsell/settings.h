/*
 * xsell — engine settings from the configuration: model and rule
 * parameters, and the A/B experiment with its arms' overrides. Shared by
 * the worker and `xsell eval`, so both run the same model.
 */
#ifndef XSELL_SETTINGS_H
#define XSELL_SETTINGS_H

#include "xsell/config.h"
#include "xsell/engine.h"

/* Fills params from the model.* and list.* keys. */
void xs_settings_params(const xs_config_t *cfg, xs_params_t *params);

/* Fills x from experiment.* keys (x->n_arms = 0 when experiment.name is empty).
 * XS_ERR_CONFIG + errstr for a malformed experiment.arms list. */
xs_err_t xs_settings_experiment(const xs_config_t *cfg, const xs_params_t *base, xs_experiment_t *x,
                                char *errstr, size_t errstr_size);

#endif
