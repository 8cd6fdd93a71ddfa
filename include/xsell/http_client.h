/*
 * xsell — a small HTTP GET client (libcurl), for one instance asking
 * another: the worker forwards a user query to the instance that owns the
 * user's partition (include/xsell/members.h).
 *
 * Every request has a connect timeout and a total timeout, so a dead or
 * stuck peer costs at most those; redirects are not followed. Not
 * thread-safe: one handle per thread (the HTTP server thread owns its).
 *
 * Ownership: _new/_destroy (NULL is a no-op).
 */
#ifndef XSELL_HTTP_CLIENT_H
#define XSELL_HTTP_CLIENT_H

#include <stddef.h>

#include "xsell/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct xs_http_client xs_http_client_t;

/* Longest answer body kept (a larger one is an error). */
#define XS_HTTP_CLIENT_MAX_BODY (1024 * 1024)

xs_http_client_t *xs_http_client_new(int connect_timeout_ms, int timeout_ms, char *errstr,
                                     size_t errstr_size);
void xs_http_client_destroy(xs_http_client_t *hc);

/*
 * GET url with one extra request header ("Name: value", NULL: none). On an
 * answer (any status) returns XS_OK with *status and *body (appended to;
 * the caller frees it); XS_ERR_IO when no answer came (refused, timed out,
 * too large), errstr says why.
 */
xs_err_t xs_http_client_get(xs_http_client_t *hc, const char *url, const char *header,
                            unsigned *status, xs_buf_t *body, char *errstr, size_t errstr_size);

#ifdef __cplusplus
}
#endif
#endif
