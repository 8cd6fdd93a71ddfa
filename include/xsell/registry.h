/*
 * xsell — a client of the Confluent Schema Registry REST API (libcurl, as
 * the instances' HTTP client http_client.c, and jansson).
 *
 * Two calls, the ones a Kafka shop's registry answers (Confluent's, and
 * Apicurio Registry's Confluent-compatible API under /apis/ccompat/v7):
 *   GET  {url}/schemas/ids/{id}                 the writer schema of an id
 *   POST {url}/subjects/{subject}/versions      registers a schema, returns its id
 *                                               (the existing id when it is there)
 * Authentication: HTTP basic (user and password) or a bearer token; TLS:
 * a CA file, and a client certificate and key. Every request has a timeout.
 *
 * Errors tell a caller what to do: XS_ERR_NOT_FOUND when the registry
 * answered that the id or subject does not exist (a message with that id is
 * bad input), XS_ERR_IO when it could not be asked or failed (connection
 * refused, timeout, 5xx, 429: retry later, the message is not at fault),
 * XS_ERR_CONFIG for 401/403 (credentials), XS_ERR_SCHEMA when the answer or
 * the schema is not what the API promises.
 *
 * Not thread-safe: one handle per thread (the worker thread owns its).
 */
#ifndef XSELL_REGISTRY_H
#define XSELL_REGISTRY_H

#include <stdint.h>

#include "xsell/common.h"

typedef struct xs_registry xs_registry_t;

typedef struct xs_registry_opts {
    const char *url;           /* base URL, e.g. http://registry:8081; no trailing '/' needed */
    const char *user;          /* basic auth user, NULL or "" for none */
    const char *password;      /* basic auth password */
    const char *bearer_token;  /* Authorization: Bearer, NULL or "" for none */
    const char *ca_location;   /* TLS: CA bundle file, NULL for the system's */
    const char *cert_location; /* TLS client certificate (PEM), NULL for none */
    const char *key_location;  /* its private key (PEM) */
    long timeout_ms;           /* per request; 0 = 10000 */
} xs_registry_opts_t;

/* NULL with errstr on failure (bad URL scheme, out of memory). Copies opts. */
xs_registry_t *xs_registry_new(const xs_registry_opts_t *opts, char *errstr, size_t errstr_size);
void xs_registry_destroy(xs_registry_t *r); /* NULL is a no-op */

/* The schema text (JSON) of id into *schema (caller frees). */
xs_err_t xs_registry_schema_by_id(xs_registry_t *r, int32_t id, char **schema, char *errstr,
                                  size_t errstr_size);

/* Registers schema (JSON text) under subject; *id is the registry's id. */
xs_err_t xs_registry_register(xs_registry_t *r, const char *subject, const char *schema,
                              int32_t *id, char *errstr, size_t errstr_size);

#endif
