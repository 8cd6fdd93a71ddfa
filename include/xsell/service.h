/*
 * xsell — the worker's HTTP service (include/xsell/http.h has the routes):
 * /metrics, /healthz (the loop turns), /readyz (caught up with what the
 * partitions held at the last assignment), the queries, POST /v1/events and
 * the storefront under /shop/, when http.address is set.
 *
 * The queries run on the HTTP thread under the runtime's lock, which the
 * loop holds per message and per checkpoint step. A user query looks for
 * the user's profile in each assigned partition; a user unknown to this
 * worker gets the cold-start list (trending items), with "known_user":
 * false. POST /v1/events (http.events.enabled, with the bearer token of
 * http.auth.token.file) checks what Kafka input gets checked for and
 * produces to the input topics, with the service's own codec and producer.
 *
 * With members.enabled (include/xsell/members.h) a user query for a
 * partition another instance owns is forwarded to it, and a second server
 * (members.http.address, its own thread) answers the queries forwarded
 * here.
 *
 * Ownership: _new/_destroy (NULL is a no-op); everything in the options is
 * borrowed for the service's life. xs_service_destroy() returns once no
 * request runs any more.
 */
#ifndef XSELL_SERVICE_H
#define XSELL_SERVICE_H

#include "xsell/common.h"
#include "xsell/config.h"
#include "xsell/engine.h"
#include "xsell/runtime.h"
#include "xsell/worker_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_service xs_service_t;

typedef struct xs_service_opts {
    const xs_config_t *config;
    xs_runtime_t *runtime;        /* the lock, the partitions, health and readiness */
    xs_engine_t *engine;          /* queried under the runtime's lock */
    xs_worker_metrics_t *metrics; /* /metrics and the request durations */
} xs_service_opts_t;

/* Starts the HTTP server when http.address is set (else returns a service
 * that serves nothing); writes the bound address to http.port.file. */
xs_service_t *xs_service_new(const xs_service_opts_t *opts, char *errstr, size_t errstr_size);
void xs_service_destroy(xs_service_t *s);

#ifdef __cplusplus
}
#endif
#endif
