/*
 * The storefront's HTTP surface against a running `xsell-worker` process on
 * the development broker:
 *
 *   - query-time rules on the list endpoints (exclude=, category=,
 *     exclude_category=, max_price=, boost_items= / boost_category= with
 *     boost=) and each item's title, category and price;
 *   - anonymous shoppers: GET /v1/cross-sell?items=...&placement= answers
 *     the list of a cart without user state, the same list as a shopper the
 *     worker does not know gets for the same trigger;
 *   - malformed rule parameters are a 400 with a reason;
 *   - POST /v1/events: a 404 unless enabled; the bearer token (missing,
 *     wrong, wrong by one byte of the same length: 401; right: 202); a
 *     batch with one invalid event is a 400 with the reason of each and
 *     nothing produced; a valid batch is produced to the input topics, the
 *     worker reads it and the shopper's list follows; bodies beyond
 *     http.events.max.bytes are a 413 (by Content-Length, and chunked);
 *     http.events.rate answers 429 beyond its bucket; a catalog event's
 *     availability window takes the item out of the lists;
 *   - every answer of these tests, recorded, validates against
 *     docs/openapi.yaml (tools/check_openapi.py, run last).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "xsell/http.h"
#include "xsell/json.h"
#include "xsproc.h"
#include "xstest.h"

#define T0 INT64_C(1704067200000) /* 2024-01-01 */

static int64_t ts = T0;
static int seq;

/* ======================================================================== */
/* Processes and a small HTTP client                                        */
/* ======================================================================== */

/* A file's text ("" when it does not exist). Caller frees. */
static char *slurp(const char *path)
{
    char *t = xsp_read_file(path, NULL);
    return t ? t : strdup("");
}

static char http_host[64];
static int http_port;

typedef struct http_resp {
    int status;
    char *headers;
    char *body;
    xs_json_t *json;
} http_resp_t;

static void resp_free(http_resp_t *r)
{
    free(r->headers);
    free(r->body);
    xs_json_free(r->json);
    memset(r, 0, sizeof(*r));
}

/* Every answer is recorded here (method, target, status, content type,
 * body, request body) for the OpenAPI check. */
static FILE *record;
static char record_path[700];

static void record_answer(const void *req, size_t len, const http_resp_t *r)
{
    if (!record || !r->status)
        return;
    const char *q = req, *sp1 = memchr(q, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - q)) : NULL;
    const char *hdr_end = memmem(q, len, "\r\n\r\n", 4);
    if (!sp1 || !sp2)
        return;
    const char *ct = strstr(r->headers, "Content-Type: ");
    size_t ct_len = ct ? strcspn(ct + 14, "\r\n") : 0;
    xs_buf_t b = {0};
    xs_buf_append_str(&b, "{\"method\":");
    xs_json_write_string(&b, q, (size_t)(sp1 - q));
    xs_buf_append_str(&b, ",\"target\":");
    xs_json_write_string(&b, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    xs_buf_printf(&b, ",\"status\":%d,\"content_type\":", r->status);
    xs_json_write_string(&b, ct ? ct + 14 : "", ct_len);
    xs_buf_append_str(&b, ",\"body\":");
    xs_json_write_string(&b, r->body, strlen(r->body));
    if (hdr_end && !memmem(q, (size_t)(hdr_end - q), "chunked", 7)) {
        xs_buf_append_str(&b, ",\"request_body\":");
        xs_json_write_string(&b, hdr_end + 4, len - (size_t)(hdr_end + 4 - q));
    }
    xs_buf_append_str(&b, "}\n");
    fwrite(b.data, 1, b.len, record);
    xs_buf_free(&b);
}

static http_resp_t http_raw(const void *req, size_t len)
{
    http_resp_t r = {0};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    inet_pton(AF_INET, http_host, &sa.sin_addr);
    struct timeval tv = {.tv_sec = 15};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        fail_msg("connect %s:%d: %s", http_host, http_port, strerror(errno));
    for (size_t off = 0; off < len;) {
        ssize_t n = send(fd, (const char *)req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    xs_buf_t b = {0};
    char chunk[8192];
    ssize_t n;
    while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0)
        xs_buf_append(&b, chunk, (size_t)n);
    close(fd);
    xs_buf_append_u8(&b, 0);
    char *text = (char *)b.data;
    int major = 0, minor = 0;
    if (text && sscanf(text, "HTTP/%d.%d %d", &major, &minor, &r.status) != 3)
        r.status = 0;
    char *sep = text ? strstr(text, "\r\n\r\n") : NULL;
    if (sep) {
        r.headers = xs_str_ndup(text, (size_t)(sep - text));
        r.body = strdup(sep + 4);
        if (strstr(r.headers, "Content-Type: application/json"))
            r.json = xs_json_parse(r.body, strlen(r.body), NULL, 0);
    } else {
        r.headers = strdup("");
        r.body = strdup("");
    }
    free(text);
    record_answer(req, len, &r);
    return r;
}

static http_resp_t http_get(const char *target)
{
    xs_buf_t b = {0};
    xs_buf_printf(&b, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", target,
                  http_host, http_port);
    http_resp_t r = http_raw(b.data, b.len);
    xs_buf_free(&b);
    return r;
}

static http_resp_t http_post(const char *target, const char *auth, const char *body)
{
    xs_buf_t b = {0};
    xs_buf_printf(&b, "POST %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n", target, http_host,
                  http_port);
    if (auth)
        xs_buf_printf(&b, "Authorization: %s\r\n", auth);
    xs_buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                  strlen(body), body);
    http_resp_t r = http_raw(b.data, b.len);
    xs_buf_free(&b);
    return r;
}

static const char *jstr(const xs_json_t *obj, const char *key)
{
    const xs_json_t *v = obj ? xs_json_get(obj, key) : NULL;
    return v ? xs_json_string(v) : NULL;
}

/* GET target, expect 200 and a list; returns the response (items in r.json). */
static http_resp_t get_list(const char *target)
{
    http_resp_t r = http_get(target);
    if (r.status != 200 || !r.json || !xs_json_get(r.json, "items"))
        fail_msg("GET %s: status %d body %.300s", target, r.status, r.body);
    return r;
}

static const xs_json_t *items_of(const http_resp_t *r)
{
    return xs_json_get(r->json, "items");
}

static int rank_of(const http_resp_t *r, const char *item)
{
    const xs_json_t *a = items_of(r);
    for (size_t i = 0; i < xs_json_size(a); i++)
        if (!strcmp(jstr(xs_json_at(a, i), "item_id"), item))
            return (int)i + 1;
    return 0;
}

static void expect_status(const char *target, int status)
{
    http_resp_t r = http_get(target);
    if (r.status != status || !r.json || !jstr(r.json, "error"))
        fail_msg("GET %s: status %d (expected %d), body %.200s", target, r.status, status, r.body);
    resp_free(&r);
}

/* ======================================================================== */
/* The scenario                                                             */
/* ======================================================================== */

static int produce_basket(xs_producer_t *p, xs_codec_t *codec, const char *user,
                          const char *const *items)
{
    char id[64];
    xs_event_t ev;
    int n = 0;
    for (int i = 0; items[i]; i++, n++) {
        const char *one[] = {items[i], NULL};
        snprintf(id, sizeof(id), "e%d", ++seq);
        xst_cart_event(&ev, id, user, XS_CART_ADD, ts += 60000, one);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    snprintf(id, sizeof(id), "e%d", ++seq);
    xst_cart_event(&ev, id, user, XS_CART_PURCHASE, ts += 60000, items);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    return n + 1;
}

/* A camera shop: six catalog items with categories and prices (shoes
 * without a price), camera baskets and sock baskets. */
static void produce_shop(xs_producer_t *p, xs_codec_t *codec)
{
    static const struct {
        const char *id, *title, *category;
        double price;
    } catalog[] = {
        {"camera", "Camera X100", "photo", 300},   {"lens", "Zoom lens 24-70", "photo", 120},
        {"tripod", "Travel tripod", "photo", 40},  {"bag", "Camera bag", "bags", 25},
        {"strap", "Camera strap", "bags", 12},     {"socks", "Wool socks", "clothes", 5},
        {"shoes", "Running shoes", "clothes", NAN}};
    for (size_t i = 0; i < sizeof(catalog) / sizeof(catalog[0]); i++) {
        xs_event_t ev;
        xst_item_event(&ev, catalog[i].id, catalog[i].title, catalog[i].category, true, T0);
        ev.has_price = !isnan(catalog[i].price);
        ev.price = ev.has_price ? catalog[i].price : 0;
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    const char *clt[] = {"camera", "lens", "tripod", "bag", NULL};
    const char *cl[] = {"camera", "lens", "strap", NULL};
    const char *cb[] = {"camera", "bag", "strap", NULL};
    const char *ss[] = {"socks", "shoes", NULL};
    char user[32];
    for (int i = 0; i < 4; i++) {
        snprintf(user, sizeof(user), "clt-%d", i);
        produce_basket(p, codec, user, clt);
        snprintf(user, sizeof(user), "cl-%d", i);
        produce_basket(p, codec, user, i < 2 ? cl : cb);
        snprintf(user, sizeof(user), "ss-%d", i);
        produce_basket(p, codec, user, ss);
    }
}

typedef struct worker {
    pid_t pid;
    char *dir;
    char err[600];
} worker_t;

/* The worker of the running test: killed at exit when an assertion ended
 * the test before stop_worker(). */
static pid_t live_worker;

static void kill_live_worker(void)
{
    if (live_worker > 0) {
        kill(live_worker, SIGKILL);
        waitpid(live_worker, NULL, 0);
        live_worker = 0;
    }
}

/* Starts a worker with HTTP on a free port and waits until it has read the
 * scenario (a known user is known). extra: more --set values, NULL-ended. */
static worker_t start_worker(const char *bs, const char *group, const char *const *extra)
{
    worker_t w = {0};
    w.dir = xst_tmpdir("storefront");
    char statedir[600], portfile[600], set_port[700];
    snprintf(statedir, sizeof(statedir), "%s/state", w.dir);
    snprintf(portfile, sizeof(portfile), "%s/http.addr", w.dir);
    snprintf(w.err, sizeof(w.err), "%s/worker.err", w.dir);
    snprintf(set_port, sizeof(set_port), "http.port.file=%s", portfile);
    char *topics_conf = xst_topics_config(w.dir);
    const char *argv[40] = {xsp_bin("xsell-worker"),
                            "--config",
                            topics_conf,
                            "--bootstrap",
                            bs,
                            "--state-dir",
                            statedir,
                            "--group",
                            xst_group(group),
                            "--http",
                            "127.0.0.1:0",
                            "--from-beginning",
                            "--set",
                            set_port,
                            "--set",
                            "log.progress.seconds=0",
                            "--set",
                            "commit.interval.ms=200"};
    int n = 18;
    for (int i = 0; extra && extra[i]; i++) {
        argv[n++] = "--set";
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    kill_live_worker(); /* a previous test's, if it failed */
    w.pid = xsp_spawn((char *const *)argv, w.err);
    live_worker = w.pid;
    free(topics_conf);
    char *addr = NULL;
    for (int i = 0; i < 300 && !(addr && *addr); i++) {
        free(addr);
        usleep(50000);
        addr = slurp(portfile);
    }
    if (!addr || sscanf(addr, "%63[^:]:%d", http_host, &http_port) != 2 || http_port <= 0)
        fail_msg("no bound address; worker log:\n%s", slurp(w.err));
    free(addr);
    bool known = false;
    for (int i = 0; i < 300 && !known; i++) {
        http_resp_t r = http_get("/readyz"); /* caught up with what the partitions held */
        known = r.status == 200;
        resp_free(&r);
        if (known) {
            r = http_get("/v1/users/ss-3/cross-sell");
            const xs_json_t *k = r.json ? xs_json_get(r.json, "known_user") : NULL;
            known = k && xs_json_bool(k);
            resp_free(&r);
        }
        if (!known)
            usleep(100000);
    }
    if (!known)
        fail_msg("the worker did not read the scenario; log:\n%s", slurp(w.err));
    return w;
}

static void stop_worker(worker_t *w)
{
    kill(w->pid, SIGTERM);
    int status = 0;
    if (!xsp_wait(w->pid, 60000, &status))
        fail_msg("the worker did not stop within 60 s"); /* killed at exit */
    live_worker = 0;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    xst_rmrf(w->dir);
    free(w->dir);
}

/* ======================================================================== */
/* Tests                                                                    */
/* ======================================================================== */

static void test_rules_and_anonymous(void **state)
{
    (void)state;
    char errstr[512] = "";
    xst_broker_t *db = xst_broker("storefront", 2);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(codec);
    assert_non_null(p);
    produce_shop(p, codec);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    const char *extra[] = {"list.category_cap=0", NULL};
    worker_t w = start_worker(bs, "storefront-rules", extra);

    /* No rule: the camera's complements, with their catalog fields. */
    http_resp_t r = get_list("/v1/users/newbie/cross-sell?item=camera&n=4");
    const xs_json_t *first = xs_json_at(items_of(&r), 0);
    assert_string_equal(jstr(first, "item_id"), "strap");
    assert_string_equal(jstr(first, "title"), "Camera strap");
    assert_string_equal(jstr(first, "category"), "bags");
    assert_true(xs_json_number(xs_json_get(first, "price")) == 12);
    assert_int_equal(rank_of(&r, "tripod"), 4);
    resp_free(&r);

    /* exclude */
    r = get_list("/v1/users/newbie/cross-sell?item=camera&n=4&exclude=strap,bag");
    assert_int_equal(rank_of(&r, "strap"), 0);
    assert_int_equal(rank_of(&r, "bag"), 0);
    assert_int_equal(rank_of(&r, "lens"), 1);
    assert_true(xs_json_size(items_of(&r)) >= 2);
    resp_free(&r);

    /* category: bags only; exclude_category: no photo */
    r = get_list("/v1/users/newbie/cross-sell?item=camera&n=4&category=bags");
    assert_int_equal(xs_json_size(items_of(&r)), 2);
    for (size_t i = 0; i < xs_json_size(items_of(&r)); i++)
        assert_string_equal(jstr(xs_json_at(items_of(&r), i), "category"), "bags");
    resp_free(&r);
    r = get_list("/v1/users/newbie/cross-sell?item=camera&n=6&exclude_category=photo");
    assert_true(xs_json_size(items_of(&r)) >= 2);
    for (size_t i = 0; i < xs_json_size(items_of(&r)); i++)
        assert_string_not_equal(jstr(xs_json_at(items_of(&r), i), "category"), "photo");
    resp_free(&r);

    /* max_price: every item priced and within; shoes (no price) never */
    r = get_list("/v1/users/newbie/cross-sell?item=camera&n=6&max_price=30");
    assert_true(xs_json_size(items_of(&r)) >= 2);
    for (size_t i = 0; i < xs_json_size(items_of(&r)); i++) {
        const xs_json_t *pr = xs_json_get(xs_json_at(items_of(&r), i), "price");
        assert_int_equal(xs_json_type(pr), XS_JSON_NUMBER);
        assert_true(xs_json_number(pr) <= 30);
    }
    assert_int_equal(rank_of(&r, "shoes"), 0);
    resp_free(&r);

    /* boost: the tripod, fourth, comes first; boosting photo puts lens and tripod first */
    r = get_list("/v1/users/newbie/cross-sell?item=camera&n=4&boost_items=tripod&boost=1000");
    assert_int_equal(rank_of(&r, "tripod"), 1);
    resp_free(&r);
    r = get_list("/v1/users/newbie/cross-sell?item=camera&n=4&boost_category=photo&boost=10");
    assert_int_equal(rank_of(&r, "lens"), 1);
    assert_int_equal(rank_of(&r, "tripod"), 2);
    resp_free(&r);

    /* Anonymous cart: the same list as a shopper the worker does not know
     * gets for the same trigger, no user id; rules apply the same way. */
    for (int k = 0; k < 2; k++) {
        http_resp_t a = get_list(k ? "/v1/cross-sell?items=camera&placement=cart&exclude=lens"
                                   : "/v1/cross-sell?items=camera&placement=CART");
        http_resp_t u = get_list(k ? "/v1/users/nobody/cross-sell?item=camera&exclude=lens"
                                   : "/v1/users/nobody/cross-sell?item=camera");
        assert_int_equal(xs_json_type(xs_json_get(a.json, "user_id")), XS_JSON_NULL);
        assert_int_equal(xs_json_type(xs_json_get(a.json, "known_user")), XS_JSON_BOOL);
        assert_false(xs_json_bool(xs_json_get(a.json, "known_user")));
        assert_int_equal(xs_json_size(items_of(&a)), xs_json_size(items_of(&u)));
        assert_true(xs_json_size(items_of(&a)) >= 3);
        for (size_t i = 0; i < xs_json_size(items_of(&a)); i++)
            assert_string_equal(jstr(xs_json_at(items_of(&a), i), "item_id"),
                                jstr(xs_json_at(items_of(&u), i), "item_id"));
        assert_int_equal(rank_of(&a, "camera"), 0);
        if (k)
            assert_int_equal(rank_of(&a, "lens"), 0);
        else
            assert_string_equal(jstr(xs_json_at(items_of(&a), 0), "source"), "BOUGHT_TOGETHER");
        resp_free(&a);
        resp_free(&u);
    }
    /* a cart of two: nothing of the cart is listed */
    r = get_list("/v1/cross-sell?items=camera,lens&placement=CHECKOUT");
    assert_int_equal(rank_of(&r, "camera"), 0);
    assert_int_equal(rank_of(&r, "lens"), 0);
    assert_true(xs_json_size(items_of(&r)) >= 1);
    resp_free(&r);

    /* Malformed rules: 400 with a reason. */
    expect_status("/v1/cross-sell?placement=CART", 400);         /* no items */
    expect_status("/v1/cross-sell?items=a,,b", 400);             /* empty id */
    expect_status("/v1/cross-sell?items=camera&item=lens", 400); /* user-only param */
    expect_status("/v1/users/u/cross-sell?max_price=cheap", 400);
    expect_status("/v1/users/u/cross-sell?max_price=-1", 400);
    expect_status("/v1/users/u/cross-sell?max_price=inf", 400);
    expect_status("/v1/users/u/cross-sell?boost=3", 400); /* boost of nothing */
    expect_status("/v1/users/u/cross-sell?boost_items=a&boost=0", 400);
    expect_status("/v1/users/u/cross-sell?exclude=", 400);

    /* The other endpoints, for the OpenAPI check. */
    r = http_get("/v1/items/camera/neighbours?n=3");
    assert_int_equal(r.status, 200);
    assert_true(xs_json_number(xs_json_get(r.json, "price")) == 300);
    resp_free(&r);
    expect_status("/v1/items/no-such-item/neighbours", 404);
    expect_status("/v1/items/camera/neighbours?class=sideways", 400);
    r = http_get("/metrics");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    r = http_get("/healthz");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    expect_status("/shop/", 404); /* http.shop.dir not set */
    expect_status("/no/such/path", 404);

    /* Events over HTTP are off unless configured. */
    r = http_post("/v1/events", "Bearer whatever-token-0123456789", "{\"events\":[]}");
    assert_int_equal(r.status, 404);
    resp_free(&r);

    stop_worker(&w);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
}

#define TOKEN "s3cret-token-0123456789abcdef"

static char *click_json(const char *event_id, const char *user, const char *item, int64_t t)
{
    xs_buf_t b = {0};
    xs_buf_printf(&b,
                  "{\"kind\":\"click\",\"event_id\":\"%s\",\"user_id\":\"%s\","
                  "\"type\":\"PRODUCT_VIEW\",\"item_id\":\"%s\",\"ts\":%lld}",
                  event_id, user, item, (long long)t);
    xs_buf_append_u8(&b, 0);
    return (char *)b.data;
}

/* The partition of key among n, as the producer chooses it (librdkafka's
 * default consistent_random partitioner: CRC-32 of the key modulo n). */
static int key_partition(const char *key, int n)
{
    uint32_t c = 0xffffffffu;
    for (const unsigned char *d = (const unsigned char *)key; *d; d++) {
        c ^= *d;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ 0xedb88320u : c >> 1;
    }
    return (int)((c ^ 0xffffffffu) % (uint32_t)n);
}

static bool user_known(const char *user)
{
    char target[256];
    snprintf(target, sizeof(target), "/v1/users/%s/cross-sell", user);
    http_resp_t r = http_get(target);
    const xs_json_t *k = r.json ? xs_json_get(r.json, "known_user") : NULL;
    bool known = k && xs_json_bool(k);
    resp_free(&r);
    return known;
}

static void test_events_over_http(void **state)
{
    (void)state;
    char errstr[512] = "";
    xst_broker_t *db = xst_broker("storefront-ev", 2);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(codec);
    assert_non_null(p);
    produce_shop(p, codec);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    char *tdir = xst_tmpdir("storefront-token");
    char token_file[600], set_token[700];
    snprintf(token_file, sizeof(token_file), "%s/token", tdir);
    FILE *f = fopen(token_file, "w");
    assert_non_null(f);
    fputs(TOKEN "\n", f);
    fclose(f);
    snprintf(set_token, sizeof(set_token), "http.auth.token.file=%s", token_file);
    char set_shop[700];
    const char *src = getenv("XS_SOURCE_DIR");
    snprintf(set_shop, sizeof(set_shop), "http.shop.dir=%s/shop", src && *src ? src : ".");
    const char *extra[] = {"http.events.enabled=true", set_token, "http.events.max.bytes=8192",
                           "http.events.rate=50",      set_shop,  NULL};
    worker_t w = start_worker(bs, "storefront-events", extra);
    int64_t t = ts + 3600000;
    char *c1 = click_json("web-e1", "web-1", "camera", t);
    xs_buf_t batch = {0};
    xs_buf_printf(&batch,
                  "{\"events\":[%s,{\"kind\":\"cart\",\"event_id\":\"web-e2\","
                  "\"user_id\":\"web-1\",\"type\":\"ADD\",\"lines\":[{\"item_id\":"
                  "\"camera\",\"quantity\":1,\"unit_price\":300}],\"ts\":%lld}]}",
                  c1, (long long)(t + 1000));
    xs_buf_append_u8(&batch, 0);
    const char *body = (const char *)batch.data;

    /* Write endpoints need the bearer token. */
    http_resp_t r = http_post("/v1/events", NULL, body);
    assert_int_equal(r.status, 401);
    assert_non_null(strstr(r.headers, "WWW-Authenticate: Bearer"));
    resp_free(&r);
    r = http_post("/v1/events", "Bearer wrong", body);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    char same_len[] = "Bearer " TOKEN;
    same_len[sizeof(same_len) - 2] ^= 1; /* the last byte differs */
    r = http_post("/v1/events", same_len, body);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    r = http_post("/v1/events", "Basic " TOKEN, body);
    assert_int_equal(r.status, 401);
    resp_free(&r);
    assert_false(user_known("web-1"));

    /* One invalid event: 400, the reason of each, nothing produced. */
    xs_buf_t bad = {0};
    char *g1 = click_json("ghost-e1", "ghost", "camera", t);
    char *g2 = click_json("ghost-e2", "ghost", "camera", 1000); /* 1970: before limits.min_ts */
    xs_buf_printf(&bad, "{\"events\":[%s,%s,{\"kind\":\"click\",\"user_id\":\"ghost\"}]}", g1, g2);
    xs_buf_append_u8(&bad, 0);
    r = http_post("/v1/events", "Bearer " TOKEN, (const char *)bad.data);
    assert_int_equal(r.status, 400);
    assert_non_null(r.json);
    const xs_json_t *res = xs_json_get(r.json, "results");
    assert_int_equal(xs_json_size(res), 3);
    assert_string_equal(jstr(xs_json_at(res, 0), "status"), "valid");
    assert_string_equal(jstr(xs_json_at(res, 1), "status"), "invalid");
    assert_non_null(strstr(jstr(xs_json_at(res, 1), "reason"), "timestamp out of range"));
    assert_string_equal(jstr(xs_json_at(res, 2), "status"), "invalid");
    assert_non_null(jstr(xs_json_at(res, 2), "reason"));
    resp_free(&r);
    r = http_post("/v1/events", "Bearer " TOKEN, "this is not json");
    assert_int_equal(r.status, 400);
    resp_free(&r);

    /* The right token: 202, each event accepted, keyed by user. */
    r = http_post("/v1/events", "Bearer " TOKEN, body);
    if (r.status != 202)
        fail_msg("POST /v1/events: %d %s", r.status, r.body);
    assert_int_equal((int)xs_json_number(xs_json_get(r.json, "accepted")), 2);
    res = xs_json_get(r.json, "results");
    assert_string_equal(jstr(xs_json_at(res, 0), "status"), "accepted");
    assert_string_equal(jstr(xs_json_at(res, 1), "kind"), "cart");
    assert_string_equal(jstr(xs_json_at(res, 1), "key"), "web-1");
    resp_free(&r);
    /* The worker reads them from Kafka: the shopper is known, the camera in
     * the cart is not listed, its complements are. */
    bool known = false;
    for (int i = 0; i < 100 && !(known = user_known("web-1")); i++)
        usleep(100000);
    assert_true(known);
    r = get_list("/v1/users/web-1/cross-sell?placement=CART");
    assert_int_equal(rank_of(&r, "camera"), 0);
    assert_true(rank_of(&r, "strap") > 0);
    resp_free(&r);
    assert_false(user_known("ghost")); /* the rejected batch produced nothing */

    /* A catalog event with an availability window (ItemUpdate version 2):
     * the tripod, from a day after everything so far, leaves every list;
     * an empty window is refused with its reason. */
    char item_ev[1024];
    snprintf(item_ev, sizeof(item_ev),
             "{\"events\":[{\"kind\":\"item\",\"item_id\":\"tripod\",\"title\":\"Travel "
             "tripod\",\"category\":\"photo\",\"price\":40,\"available_from\":%lld,"
             "\"ts\":%lld}]}",
             (long long)(t + 86400000), (long long)(t + 1500));
    r = get_list("/v1/cross-sell?items=camera&n=6");
    assert_true(rank_of(&r, "tripod") > 0);
    resp_free(&r);
    r = http_post("/v1/events", "Bearer " TOKEN, item_ev);
    assert_int_equal(r.status, 202);
    assert_string_equal(jstr(xs_json_at(xs_json_get(r.json, "results"), 0), "key"), "tripod");
    resp_free(&r);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        r = get_list("/v1/cross-sell?items=camera&n=6");
        gone = rank_of(&r, "tripod") == 0 && xs_json_size(items_of(&r)) > 0;
        resp_free(&r);
        if (!gone)
            usleep(100000);
    }
    assert_true(gone);
    snprintf(item_ev, sizeof(item_ev),
             "[{\"kind\":\"item\",\"item_id\":\"bag\",\"available_from\":%lld,"
             "\"available_until\":%lld,\"ts\":%lld}]",
             (long long)(t + 1000), (long long)(t + 1000), (long long)t);
    r = http_post("/v1/events", "Bearer " TOKEN, item_ev);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(jstr(xs_json_at(xs_json_get(r.json, "results"), 0), "reason"),
                           "empty availability window"));
    resp_free(&r);

    /* A shopper not logged in: a session_id and no user_id is the session's profile. */
    char anon[512];
    snprintf(anon, sizeof(anon),
             "{\"events\":[{\"kind\":\"cart\",\"event_id\":\"anon-1\",\"session_id\":\"s-42\","
             "\"type\":\"ADD\",\"lines\":[{\"item_id\":\"camera\"}],\"ts\":%lld}]}",
             (long long)(t + 2000));
    r = http_post("/v1/events", "Bearer " TOKEN, anon);
    assert_int_equal(r.status, 202);
    assert_string_equal(jstr(xs_json_at(xs_json_get(r.json, "results"), 0), "key"), "session:s-42");
    resp_free(&r);
    for (int i = 0; i < 100 && !(known = user_known("session:s-42")); i++)
        usleep(100000);
    assert_true(known);
    r = get_list("/v1/users/session:s-42/cross-sell");
    assert_int_equal(rank_of(&r, "camera"), 0);
    assert_true(rank_of(&r, "strap") > 0);
    resp_free(&r);

    /* The shopper logs in: the first event with both ids joins the session's
     * profile (its cart: the camera) into the user's and deletes it. Both
     * keys must be on one input partition: a user id that is. */
    char login[32];
    for (int i = 0;; i++) {
        snprintf(login, sizeof(login), "shopper-%d", i);
        if (key_partition(login, 2) == key_partition("session:s-42", 2))
            break;
    }
    snprintf(anon, sizeof(anon),
             "{\"events\":[{\"kind\":\"click\",\"event_id\":\"login-1\",\"user_id\":\"%s\","
             "\"session_id\":\"s-42\",\"type\":\"PRODUCT_VIEW\",\"item_id\":\"strap\","
             "\"ts\":%lld}]}",
             login, (long long)(t + 3000));
    r = http_post("/v1/events", "Bearer " TOKEN, anon);
    assert_int_equal(r.status, 202);
    resp_free(&r);
    known = false;
    for (int i = 0; i < 100 && !(known = user_known(login)); i++)
        usleep(100000);
    assert_true(known);
    assert_false(user_known("session:s-42"));
    r = get_list("/v1/users/session:s-42/cross-sell"); /* back to a stranger's list */
    assert_false(xs_json_bool(xs_json_get(r.json, "known_user")));
    resp_free(&r);
    char target[64];
    snprintf(target, sizeof(target), "/v1/users/%s/cross-sell", login);
    r = get_list(target);
    assert_true(xs_json_size(items_of(&r)) > 0);
    assert_int_equal(rank_of(&r, "camera"), 0); /* in the cart the session had */
    resp_free(&r);

    /* Bodies beyond http.events.max.bytes (8192): 413. */
    char *big = malloc(10000);
    memset(big, ' ', 9999);
    big[9999] = 0;
    memcpy(big, "{\"events\":[", 11);
    r = http_post("/v1/events", "Bearer " TOKEN, big);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    xs_buf_t chunked = {0};
    xs_buf_printf(&chunked,
                  "POST /v1/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                  "Authorization: Bearer " TOKEN "\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 10; i++)
        xs_buf_printf(&chunked, "3e8\r\n%.*s\r\n", 1000, big);
    xs_buf_printf(&chunked, "0\r\n\r\n");
    r = http_raw(chunked.data, chunked.len);
    assert_int_equal(r.status, 413);
    resp_free(&r);
    free(big);
    xs_buf_free(&chunked);

    /* http.events.rate = 50 per second: a batch of 60 is a 429. */
    xs_buf_t many = {0};
    xs_buf_append_str(&many, "{\"events\":[");
    for (int i = 0; i < 60; i++) {
        char id[32];
        snprintf(id, sizeof(id), "many-%d", i);
        char *c = click_json(id, "many", "lens", t + i);
        xs_buf_printf(&many, "%s%s", i ? "," : "", c);
        free(c);
    }
    xs_buf_append_str(&many, "]}");
    xs_buf_append_u8(&many, 0);
    r = http_post("/v1/events", "Bearer " TOKEN, (const char *)many.data);
    assert_int_equal(r.status, 429);
    assert_non_null(strstr(r.headers, "Retry-After: 1"));
    resp_free(&r);

    /* GET on the write endpoint: 405 */
    r = http_get("/v1/events");
    assert_int_equal(r.status, 405);
    resp_free(&r);

    /* The shop's static files: only plain names of known types. */
    r = http_get("/shop/");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/html"));
    assert_non_null(strstr(r.body, "shop.js"));
    resp_free(&r);
    r = http_get("/shop/shop.css");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/css"));
    resp_free(&r);
    expect_status("/shop/..%2Findex.html", 404);
    expect_status("/shop/.hidden.js", 404);
    expect_status("/shop/index.html.bak", 404);
    expect_status("/shop/a/index.html", 404);
    expect_status("/shop/missing.html", 404);

    stop_worker(&w);
    xs_buf_free(&many);
    xs_buf_free(&batch);
    xs_buf_free(&bad);
    free(c1);
    free(g1);
    free(g2);
    xst_rmrf(tdir);
    free(tdir);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
}

/* The token comparison: equal only when every byte and the length match. */
static void test_token_equal(void **state)
{
    (void)state;
    const char *want = "0123456789abcdef";
    assert_true(xs_http_token_equal(want, 16, want, 16));
    assert_false(xs_http_token_equal("0123456789abcdeF", 16, want, 16));
    assert_false(xs_http_token_equal("1123456789abcdef", 16, want, 16));
    assert_false(xs_http_token_equal(want, 15, want, 16));                /* a prefix */
    assert_false(xs_http_token_equal("0123456789abcdef0", 17, want, 16)); /* longer */
    assert_false(xs_http_token_equal("", 0, want, 16));
    assert_false(xs_http_token_equal("", 0, "", 0)); /* no token: nothing matches */
}

/* Every answer recorded above validates against docs/openapi.yaml. */
static void test_answers_match_openapi(void **state)
{
    (void)state;
    assert_non_null(record);
    fclose(record);
    record = NULL;
    const char *src = getenv("XS_SOURCE_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 %s/tools/check_openapi.py %s/docs/openapi.yaml %s",
             src && *src ? src : ".", src && *src ? src : ".", record_path);
    int rc = system(cmd);
    assert_int_equal(rc, 0);
}

int main(void)
{
    char *dir = xst_tmpdir("storefront-answers");
    snprintf(record_path, sizeof(record_path), "%s/answers.jsonl", dir);
    record = fopen(record_path, "w");
    atexit(kill_live_worker);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_equal),
        cmocka_unit_test(test_events_over_http),
        cmocka_unit_test(test_rules_and_anonymous),
        cmocka_unit_test(test_answers_match_openapi),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (!failed)
        xst_rmrf(dir);
    free(dir);
    return failed;
}
