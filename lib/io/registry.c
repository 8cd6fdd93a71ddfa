/*
 * registry.c — Confluent Schema Registry REST client (see
 * include/xsell/registry.h): libcurl for HTTP(S), jansson for JSON.
 *
 * Each call is one blocking request on a reused easy handle (keep-alive to
 * the registry). Answers are read into a buffer capped at 4 MiB (a schema
 * is kilobytes); error bodies {"error_code": N, "message": "..."} are
 * quoted in errstr. Status mapping: 200 ok; 404 (40401 subject, 40403
 * schema not found) XS_ERR_NOT_FOUND; 401/403 XS_ERR_CONFIG; 409/422
 * (incompatible or invalid schema) XS_ERR_SCHEMA; anything else, and
 * transport failures, XS_ERR_IO (retryable).
 */
#include "xsell/registry.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XS_REGISTRY_MAX_BODY (4u << 20)

struct xs_registry {
    CURL *curl;
    char *url; /* without trailing '/' */
    char *user, *password, *bearer, *ca, *cert, *key;
    long timeout_ms;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static char *dup_or_null(const char *s)
{
    return s && *s ? xs_str_dup(s) : NULL;
}

xs_registry_t *xs_registry_new(const xs_registry_opts_t *o, char *errstr, size_t errstr_size)
{
    if (!o->url || (strncmp(o->url, "http://", 7) && strncmp(o->url, "https://", 8))) {
        xs_err_set(errstr, errstr_size,
                   "schema registry: url must start with http:// or https:// (got '%s')",
                   o->url ? o->url : "");
        return NULL;
    }
    pthread_once(&curl_once, curl_init_once);
    xs_registry_t *r = calloc(1, sizeof(*r));
    if (!r || !(r->url = xs_str_dup(o->url)) || !(r->curl = curl_easy_init())) {
        xs_err_set(errstr, errstr_size, "schema registry: out of memory");
        xs_registry_destroy(r);
        return NULL;
    }
    size_t n = strlen(r->url);
    while (n > 0 && r->url[n - 1] == '/')
        r->url[--n] = '\0';
    r->user = dup_or_null(o->user);
    r->password = dup_or_null(o->password);
    r->bearer = dup_or_null(o->bearer_token);
    r->ca = dup_or_null(o->ca_location);
    r->cert = dup_or_null(o->cert_location);
    r->key = dup_or_null(o->key_location);
    r->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
    return r;
}

void xs_registry_destroy(xs_registry_t *r)
{
    if (!r)
        return;
    if (r->curl)
        curl_easy_cleanup(r->curl);
    free(r->url);
    free(r->user);
    free(r->password);
    free(r->bearer);
    free(r->ca);
    free(r->cert);
    free(r->key);
    free(r);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *opaque)
{
    xs_buf_t *b = opaque;
    size_t n = size * nmemb;
    if (b->len + n > XS_REGISTRY_MAX_BODY || xs_buf_append(b, data, n) != XS_OK)
        return 0; /* aborts the transfer */
    return n;
}

/* The registry's own message of an error body, or the body's start. */
static void error_text(const xs_buf_t *body, char *out, size_t out_size)
{
    json_error_t je;
    json_t *j = body->len ? json_loadb((const char *)body->data, body->len, 0, &je) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "message")) : NULL;
    json_int_t code = j ? json_integer_value(json_object_get(j, "error_code")) : 0;
    if (msg)
        snprintf(out, out_size, "%s (error_code %lld)", msg, (long long)code);
    else
        snprintf(out, out_size, "%.*s", (int)(body->len < 200 ? body->len : 200),
                 body->len ? (const char *)body->data : "");
    for (char *p = out; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    json_decref(j);
}

/* One request; on 200 *out holds the parsed body (caller decrefs). */
static xs_err_t request(xs_registry_t *r, const char *path, const char *post, json_t **out,
                        char *errstr, size_t errstr_size)
{
    CURL *c = r->curl;
    xs_buf_t body = {0};
    struct curl_slist *hdrs = NULL;
    char url[4096], auth[4200], why[512];
    xs_err_t err = XS_OK;
    long status = 0;
    *out = NULL;
    snprintf(url, sizeof(url), "%s%s", r->url, path);
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, r->timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    hdrs = curl_slist_append(hdrs, "Accept: application/vnd.schemaregistry.v1+json, "
                                   "application/json");
    if (post) {
        hdrs = curl_slist_append(hdrs, "Content-Type: application/vnd.schemaregistry.v1+json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
    }
    if (r->bearer) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", r->bearer);
        hdrs = curl_slist_append(hdrs, auth);
    } else if (r->user) {
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(c, CURLOPT_USERNAME, r->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, r->password ? r->password : "");
    }
    if (r->ca)
        curl_easy_setopt(c, CURLOPT_CAINFO, r->ca);
    if (r->cert)
        curl_easy_setopt(c, CURLOPT_SSLCERT, r->cert);
    if (r->key)
        curl_easy_setopt(c, CURLOPT_SSLKEY, r->key);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        xs_err_set(errstr, errstr_size, "schema registry %s: %s", url, curl_easy_strerror(rc));
        err = XS_ERR_IO;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        error_text(&body, why, sizeof(why));
        xs_err_set(errstr, errstr_size, "schema registry %s: HTTP %ld: %s", url, status, why);
        err = status == 404                    ? XS_ERR_NOT_FOUND
              : status == 401 || status == 403 ? XS_ERR_CONFIG
              : status == 409 || status == 422 ? XS_ERR_SCHEMA
                                               : XS_ERR_IO;
        goto out;
    }
    json_error_t je;
    if (!(*out = json_loadb(body.len ? (const char *)body.data : "", body.len, 0, &je))) {
        xs_err_set(errstr, errstr_size, "schema registry %s: answer is not JSON: %s", url, je.text);
        err = XS_ERR_SCHEMA;
    }
out:
    curl_slist_free_all(hdrs);
    xs_buf_free(&body);
    return err;
}

xs_err_t xs_registry_schema_by_id(xs_registry_t *r, int32_t id, char **schema, char *errstr,
                                  size_t errstr_size)
{
    char path[64];
    json_t *j = NULL;
    *schema = NULL;
    snprintf(path, sizeof(path), "/schemas/ids/%d", (int)id);
    xs_err_t err = request(r, path, NULL, &j, errstr, errstr_size);
    if (err)
        return err;
    const char *type = json_string_value(json_object_get(j, "schemaType"));
    const char *s = json_string_value(json_object_get(j, "schema"));
    if (type && strcmp(type, "AVRO") != 0) {
        xs_err_set(errstr, errstr_size, "schema id %d is a %s schema, not Avro", (int)id, type);
        err = XS_ERR_SCHEMA;
    } else if (!s) {
        xs_err_set(errstr, errstr_size, "schema registry: no \"schema\" in the answer for id %d",
                   (int)id);
        err = XS_ERR_SCHEMA;
    } else if (!(*schema = xs_str_dup(s))) {
        err = XS_ERR_NOMEM;
    }
    json_decref(j);
    return err;
}

xs_err_t xs_registry_register(xs_registry_t *r, const char *subject, const char *schema,
                              int32_t *id, char *errstr, size_t errstr_size)
{
    char path[1024];
    json_t *j = NULL;
    char *esc = curl_easy_escape(r->curl, subject, 0);
    if (!esc)
        return XS_ERR_NOMEM;
    snprintf(path, sizeof(path), "/subjects/%s/versions", esc);
    curl_free(esc);
    json_t *req = json_pack("{s:s}", "schema", schema);
    char *post = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!post)
        return XS_ERR_NOMEM;
    xs_err_t err = request(r, path, post, &j, errstr, errstr_size);
    free(post);
    if (err)
        return err;
    json_t *v = json_object_get(j, "id");
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX) {
        xs_err_set(errstr, errstr_size, "schema registry: no id in the answer for subject %s",
                   subject);
        err = XS_ERR_SCHEMA;
    } else {
        *id = (int32_t)json_integer_value(v);
    }
    json_decref(j);
    return err;
}
