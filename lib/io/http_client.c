/*
 * http_client.c — the HTTP GET client (include/xsell/http_client.h) on one
 * libcurl easy handle, reused between requests (its connections too).
 */
#include "xsell/http_client.h"

#include <pthread.h>
#include <stdlib.h>

#include <curl/curl.h>

struct xs_http_client {
    CURL *curl;
    long connect_timeout_ms, timeout_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

xs_http_client_t *xs_http_client_new(int connect_timeout_ms, int timeout_ms, char *errstr,
                                     size_t errstr_size)
{
    pthread_once(&curl_once, curl_init_once);
    xs_http_client_t *hc = calloc(1, sizeof(*hc));
    if (!hc || !(hc->curl = curl_easy_init())) {
        xs_err_set(errstr, errstr_size, "http client: out of memory");
        free(hc);
        return NULL;
    }
    hc->connect_timeout_ms = connect_timeout_ms > 0 ? connect_timeout_ms : 1000;
    hc->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
    return hc;
}

void xs_http_client_destroy(xs_http_client_t *hc)
{
    if (!hc)
        return;
    curl_easy_cleanup(hc->curl);
    free(hc);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    xs_buf_t *b = opaque;
    size_t n = size * nmemb;
    if (b->len + n > XS_HTTP_CLIENT_MAX_BODY || xs_buf_append(b, data, n) != XS_OK)
        return 0; /* aborts the transfer */
    return n;
}

xs_err_t xs_http_client_get(xs_http_client_t *hc, const char *url, const char *header,
                            unsigned *status, xs_buf_t *body, char *errstr, size_t errstr_size)
{
    CURL *c = hc->curl;
    struct curl_slist *hdrs = NULL;
    xs_err_t ret = XS_OK;
    long code = 0;
    *status = 0;
    curl_easy_reset(c);
    if (header && !(hdrs = curl_slist_append(NULL, header))) {
        xs_err_set(errstr, errstr_size, "http client: out of memory");
        return XS_ERR_NOMEM;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, hc->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, hc->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    if (hdrs)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        xs_err_set(errstr, errstr_size, "GET %s: %s", url, curl_easy_strerror(rc));
        ret = XS_ERR_IO;
    } else {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        *status = (unsigned)code;
    }
    curl_slist_free_all(hdrs);
    return ret;
}
