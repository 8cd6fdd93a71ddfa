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
 *   - malformed rule parameters are a 400 with a reason.
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

#include "xsell/json.h"
#include "xstest.h"

#define T0 INT64_C(1704067200000) /* 2024-01-01 */

static int64_t ts = T0;
static int seq;

/* ======================================================================== */
/* Processes and a small HTTP client                                        */
/* ======================================================================== */

static const char *worker_bin(void)
{
    static char path[1024];
    const char *dir = getenv("XS_BIN_DIR");
    snprintf(path, sizeof(path), "%s/xsell-worker", dir && *dir ? dir : "build/bin");
    return path;
}

static pid_t spawn(char *const argv[], const char *out_path, const char *err_path)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fo = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int fe = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fo < 0 || fe < 0)
            _exit(127);
        dup2(fo, 1);
        dup2(fe, 2);
        execv(argv[0], argv);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid, int timeout_s)
{
    int status = 0;
    for (int i = 0; i < timeout_s * 10; i++) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        usleep(100000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    return -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return strdup("");
    xs_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        xs_buf_append(&b, chunk, n);
    xs_buf_append_u8(&b, 0);
    fclose(f);
    return (char *)b.data;
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
        r.headers = xs_strndup(text, (size_t)(sep - text));
        r.body = strdup(sep + 4);
        if (strstr(r.headers, "Content-Type: application/json"))
            r.json = xs_json_parse(r.body, strlen(r.body), NULL, 0);
    } else {
        r.headers = strdup("");
        r.body = strdup("");
    }
    free(text);
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
    } catalog[] = {{"camera", "Camera X100", "photo", 300},   {"lens", "Zoom lens 24-70", "photo", 120},
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

/* Starts a worker with HTTP on a free port and waits until it has read the
 * scenario (a known user is known). extra: more --set values, NULL-ended. */
static worker_t start_worker(const char *bs, const char *group, const char *const *extra)
{
    worker_t w = {0};
    w.dir = xst_tmpdir("storefront");
    char statedir[600], portfile[600], out[600], set_port[700];
    snprintf(statedir, sizeof(statedir), "%s/state", w.dir);
    snprintf(portfile, sizeof(portfile), "%s/http.addr", w.dir);
    snprintf(out, sizeof(out), "%s/worker.out", w.dir);
    snprintf(w.err, sizeof(w.err), "%s/worker.err", w.dir);
    snprintf(set_port, sizeof(set_port), "http.port.file=%s", portfile);
    char *topics_conf = xst_topics_config(w.dir);
    const char *argv[40] = {worker_bin(), "--config",     topics_conf,       "--bootstrap",
                            bs,           "--state-dir",  statedir,          "--group",
                            xst_group(group), "--http",   "127.0.0.1:0",     "--from-beginning",
                            "--set",      set_port,       "--set",           "log.progress.seconds=0",
                            "--set",      "commit.interval.ms=200"};
    int n = 18;
    for (int i = 0; extra && extra[i]; i++) {
        argv[n++] = "--set";
        argv[n++] = extra[i];
    }
    argv[n] = NULL;
    w.pid = spawn((char *const *)argv, out, w.err);
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
    assert_int_equal(wait_exit(w->pid, 60), 0);
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
    expect_status("/v1/cross-sell?placement=CART", 400);                 /* no items */
    expect_status("/v1/cross-sell?items=a,,b", 400);                     /* empty id */
    expect_status("/v1/cross-sell?items=camera&item=lens", 400);         /* user-only param */
    expect_status("/v1/users/u/cross-sell?max_price=cheap", 400);
    expect_status("/v1/users/u/cross-sell?max_price=-1", 400);
    expect_status("/v1/users/u/cross-sell?max_price=inf", 400);
    expect_status("/v1/users/u/cross-sell?boost=3", 400); /* boost of nothing */
    expect_status("/v1/users/u/cross-sell?boost_items=a&boost=0", 400);
    expect_status("/v1/users/u/cross-sell?exclude=", 400);

    stop_worker(&w);
    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_and_anonymous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
