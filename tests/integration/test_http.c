/*
 * The worker's operator surface against a running `xsell-worker` process:
 *
 *   - command line: --from-beginning refused on a non-empty state directory,
 *     config file then flags whatever their order (--print-config, secrets
 *     masked), file:line errors before anything starts;
 *   - a scenario (catalog, baskets, an A/B experiment) through the
 *     development broker; then clicks and a purchase carrying the list_id of
 *     published lists (one click duplicated, one citing an unknown list) and
 *     one undecodable message;
 *   - every endpoint over real HTTP (a small socket client, raw requests):
 *     /healthz, /readyz (503 before the group join, 200 once caught up),
 *     /metrics parsed by a strict Prometheus text-format parser and checked
 *     against what was produced and what the output topic holds, the user
 *     and item queries, and malformed requests (bad paths, placements, n,
 *     parameters, percent-encoding, UTF-8, overlong URLs, wrong methods,
 *     bodies, garbage request lines), after which the server still answers;
 *   - SIGTERM: final checkpoint, exit 0.
 *
 * Against the HTTP server alone (lib/io/http.c in-process, a service that is
 * always healthy and ready):
 *   - raw NUL and control bytes anywhere in the request line (method or
 *     target, before or after the '?') are a 400, as %00 is;
 *   - 80 slow clients each holding a connection open with an unfinished
 *     request (a byte every second, more connections than
 *     http.max.connections): /healthz still answers 200 within a second,
 *     five times in a row.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>
#include <cmocka.h>

#include "xsell/http.h"
#include "xsell/json.h"
#include "xsproc.h"
#include "xstest.h"

#define T0 INT64_C(1704067200000) /* 2024-01-01 */

static int64_t ts = T0;
static int seq;

/* ======================================================================== */
/* Processes                                                                */
/* ======================================================================== */

static const char *worker_bin(void)
{
    static char path[1024];
    const char *dir = getenv("XS_BIN_DIR");
    snprintf(path, sizeof(path), "%s/xsell-worker", dir && *dir ? dir : "build/bin");
    return path;
}

/* Starts argv with stdout and stderr into files; returns the pid. */
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

/* Waits up to timeout_s; SIGKILL after that. Returns the exit status (or
 * 128 + signal). */
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

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* ======================================================================== */
/* A small HTTP client                                                      */
/* ======================================================================== */

static char http_host[64];
static int http_port;

typedef struct http_resp {
    int status; /* 0: no status line (connection closed) */
    char *headers;
    char *body;
    xs_json_t *json; /* parsed body when it is JSON */
} http_resp_t;

static void resp_free(http_resp_t *r)
{
    free(r->headers);
    free(r->body);
    xs_json_free(r->json);
    memset(r, 0, sizeof(*r));
}

/* Sends raw bytes, reads until the server closes. */
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
            break; /* the server may answer (and close) before reading everything */
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
    return r;
}

static http_resp_t http_req(const char *method, const char *target)
{
    xs_buf_t b = {0};
    xs_buf_printf(&b, "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", method, target,
                  http_host, http_port);
    http_resp_t r = http_raw(b.data, b.len);
    xs_buf_free(&b);
    return r;
}

static http_resp_t http_get(const char *target)
{
    return http_req("GET", target);
}

static const char *jstr(const xs_json_t *obj, const char *key)
{
    const xs_json_t *v = obj ? xs_json_get(obj, key) : NULL;
    return v ? xs_json_string(v) : NULL;
}

/* Asserts an error answer: status, JSON {"error": non-empty, "status": N}. */
static void expect_error(const char *method, const char *target, int status)
{
    http_resp_t r = http_req(method, target);
    if (r.status != status)
        fail_msg("%s %.80s: status %d, expected %d (body %.200s)", method, target, r.status, status,
                 r.body);
    if (!r.json || !jstr(r.json, "error") || !*jstr(r.json, "error"))
        fail_msg("%s %.80s: no JSON error body: %.200s", method, target, r.body);
    assert_int_equal((int)xs_json_number(xs_json_get(r.json, "status")), status);
    resp_free(&r);
}

/* ======================================================================== */
/* A strict parser of the Prometheus text format 0.0.4                      */
/* ======================================================================== */

typedef struct sample {
    char name[128];
    char labels[512]; /* as written, e.g. topic="a",type="b" */
    double v;
} sample_t;

typedef struct prom {
    sample_t *s;
    int n;
    char typed[64][128]; /* families with a TYPE line */
    char types[64][16];  /* their types */
    int n_typed;
} prom_t;

static bool is_name(const char *s, size_t len, bool colon_ok)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                  (colon_ok && c == ':') || (i > 0 && c >= '0' && c <= '9');
        if (!ok)
            return false;
    }
    return true;
}

static bool parse_float(const char *s, size_t len, double *v)
{
    char tmp[64];
    if (len == 0 || len >= sizeof(tmp))
        return false;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    if (!strcmp(tmp, "+Inf") || !strcmp(tmp, "Inf"))
        return (*v = INFINITY), true;
    if (!strcmp(tmp, "-Inf"))
        return (*v = -INFINITY), true;
    if (!strcmp(tmp, "NaN"))
        return (*v = NAN), true;
    char *end = NULL;
    *v = strtod(tmp, &end);
    return end == tmp + len && isfinite(*v);
}

static int typed_index(const prom_t *p, const char *name)
{
    for (int i = 0; i < p->n_typed; i++)
        if (!strcmp(p->typed[i], name))
            return i;
    return -1;
}

/* Parses text; fails the test with the line on any violation. */
static prom_t prom_parse(const char *text)
{
    prom_t p = {0};
    int cap = 0, lineno = 0;
    char helped[64][128];
    int n_helped = 0;
    char current[128] = "";
    char done[64][128];
    int n_done = 0;
    size_t tlen = strlen(text);
    if (tlen == 0 || text[tlen - 1] != '\n')
        fail_msg("metrics: text does not end with a newline");
    for (const char *line = text; *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = (size_t)(nl - line);
        char buf[1024];
        lineno++;
        if (len >= sizeof(buf)) {
            fail_msg("metrics line %d: too long", lineno);
            len = sizeof(buf) - 1;
        }
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = nl + 1;
        if (len == 0)
            continue;
        if (buf[0] == '#') {
            char kw[8] = "", name[128] = "";
            int off = 0;
            if (sscanf(buf, "# %7s %127s %n", kw, name, &off) >= 2 &&
                (!strcmp(kw, "HELP") || !strcmp(kw, "TYPE"))) {
                if (!is_name(name, strlen(name), true))
                    fail_msg("metrics line %d: bad metric name in '%s'", lineno, buf);
                if (!strcmp(kw, "TYPE")) {
                    const char *type = buf + off;
                    if (strcmp(type, "counter") && strcmp(type, "gauge") &&
                        strcmp(type, "histogram") && strcmp(type, "summary") &&
                        strcmp(type, "untyped"))
                        fail_msg("metrics line %d: bad type '%s'", lineno, type);
                    if (typed_index(&p, name) >= 0)
                        fail_msg("metrics line %d: second TYPE for %s", lineno, name);
                    for (int i = 0; i < p.n; i++)
                        if (!strcmp(p.s[i].name, name))
                            fail_msg("metrics line %d: TYPE after samples of %s", lineno, name);
                    assert_true(p.n_typed < 64);
                    snprintf(p.types[p.n_typed], 16, "%s", type);
                    snprintf(p.typed[p.n_typed++], 128, "%s", name);
                } else {
                    for (int i = 0; i < n_helped; i++)
                        if (!strcmp(helped[i], name))
                            fail_msg("metrics line %d: second HELP for %s", lineno, name);
                    for (const char *c = buf + off; *c; c++)
                        if (*c == '\\' && c[1] != '\\' && c[1] != 'n')
                            fail_msg("metrics line %d: bad escape in HELP", lineno);
                        else if (*c == '\\')
                            c++;
                    assert_true(n_helped < 64);
                    snprintf(helped[n_helped++], 128, "%s", name);
                }
            }
            continue;
        }
        /* sample: name[{labels}] value [timestamp] */
        const char *c = buf;
        size_t nlen = strcspn(c, "{ ");
        if (!is_name(c, nlen, true) || nlen >= 128)
            fail_msg("metrics line %d: bad sample name: '%s'", lineno, buf);
        if (p.n == cap) {
            cap = cap ? cap * 2 : 64;
            p.s = realloc(p.s, (size_t)cap * sizeof(*p.s));
        }
        sample_t *s = &p.s[p.n];
        memset(s, 0, sizeof(*s));
        memcpy(s->name, c, nlen);
        c += nlen;
        if (*c == '{') {
            const char *start = ++c;
            while (*c != '}') {
                size_t ln = strcspn(c, "=");
                if (!is_name(c, ln, false) || c[ln] != '=' || c[ln + 1] != '"')
                    fail_msg("metrics line %d: bad label in '%s'", lineno, buf);
                c += ln + 2;
                while (*c != '"') {
                    if (!*c || *c == '\n')
                        fail_msg("metrics line %d: unterminated label value", lineno);
                    if (*c == '\\') {
                        if (c[1] != '\\' && c[1] != '"' && c[1] != 'n')
                            fail_msg("metrics line %d: bad escape in label value", lineno);
                        c++;
                    }
                    c++;
                }
                c++;
                if (*c == ',')
                    c++;
                else if (*c != '}')
                    fail_msg("metrics line %d: expected , or } in '%s'", lineno, buf);
            }
            size_t llen = (size_t)(c - start);
            if (llen >= sizeof(s->labels))
                fail_msg("metrics line %d: labels too long", lineno);
            memcpy(s->labels, start, llen);
            c++;
        }
        if (*c != ' ')
            fail_msg("metrics line %d: expected a space before the value", lineno);
        c++;
        size_t vlen = strcspn(c, " ");
        if (!parse_float(c, vlen, &s->v))
            fail_msg("metrics line %d: bad value in '%s'", lineno, buf);
        c += vlen;
        if (*c == ' ') {
            char *end = NULL;
            strtoll(c + 1, &end, 10);
            if (end == c + 1 || *end)
                fail_msg("metrics line %d: bad timestamp", lineno);
        }
        /* Families are contiguous, declared before use, series unique; a
         * histogram's samples are <family>_bucket (with le), _sum, _count. */
        char family[128];
        snprintf(family, sizeof(family), "%s", s->name);
        if (typed_index(&p, s->name) < 0) {
            static const char *const sfx[] = {"_bucket", "_sum", "_count"};
            size_t sl = strlen(s->name);
            for (int k = 0; k < 3; k++) {
                size_t fl = strlen(sfx[k]);
                if (sl > fl && !strcmp(s->name + sl - fl, sfx[k])) {
                    snprintf(family, sizeof(family), "%.*s", (int)(sl - fl), s->name);
                    int ti = typed_index(&p, family);
                    if (ti >= 0 && !strcmp(p.types[ti], "histogram"))
                        break;
                }
                snprintf(family, sizeof(family), "%s", s->name);
            }
            if (typed_index(&p, family) < 0)
                fail_msg("metrics line %d: sample of %s without TYPE", lineno, s->name);
            bool le = strstr(s->labels, "le=\"") != NULL;
            if (le != (strstr(s->name, "_bucket") != NULL))
                fail_msg("metrics line %d: le label on a non-bucket sample or a bucket without le",
                         lineno);
        }
        if (strcmp(current, family) != 0) {
            for (int i = 0; i < n_done; i++)
                if (!strcmp(done[i], family))
                    fail_msg("metrics line %d: samples of %s are not contiguous", lineno, family);
            if (*current) {
                assert_true(n_done < 64);
                snprintf(done[n_done++], 128, "%s", current);
            }
            snprintf(current, sizeof(current), "%s", family);
        }
        for (int i = 0; i < p.n; i++)
            if (!strcmp(p.s[i].name, s->name) && !strcmp(p.s[i].labels, s->labels))
                fail_msg("metrics line %d: duplicate series %s{%s}", lineno, s->name, s->labels);
        p.n++;
    }
    return p;
}

/* The value of one series; NAN when absent. */
static double prom_value(const prom_t *p, const char *name, const char *labels)
{
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->s[i].name, name) && !strcmp(p->s[i].labels, labels ? labels : ""))
            return p->s[i].v;
    return NAN;
}

/*
 * Checks every series of histogram `name`: cumulative buckets in ascending
 * le order that never decrease, the last one le="+Inf", equal to _count, a
 * _sum. Returns the total of the _count samples; *n_series the series seen.
 */
static double prom_histogram(const prom_t *p, const char *name, int *n_series)
{
    char bucket[160], sum[160], count[160];
    snprintf(bucket, sizeof(bucket), "%s_bucket", name);
    snprintf(sum, sizeof(sum), "%s_sum", name);
    snprintf(count, sizeof(count), "%s_count", name);
    int ti = typed_index(p, name);
    if (ti < 0 || strcmp(p->types[ti], "histogram"))
        fail_msg("%s is not a histogram", name);
    double total = 0;
    *n_series = 0;
    for (int i = 0; i < p->n; i++) {
        if (strcmp(p->s[i].name, count))
            continue;
        const char *labels = p->s[i].labels;
        double c = p->s[i].v, prev = -1, prev_le = -INFINITY;
        int n_buckets = 0;
        bool inf = false;
        for (int k = 0; k < p->n; k++) {
            if (strcmp(p->s[k].name, bucket))
                continue;
            /* the bucket's labels without le must be this series' */
            char rest[512];
            const char *le = strstr(p->s[k].labels, "le=\"");
            assert_non_null(le);
            size_t pre = (size_t)(le - p->s[k].labels);
            snprintf(rest, sizeof(rest), "%.*s", (int)(pre ? pre - 1 : 0), p->s[k].labels);
            if (strcmp(rest, labels))
                continue;
            double bound;
            const char *v0 = le + 4;
            size_t vl = strcspn(v0, "\"");
            if (!parse_float(v0, vl, &bound))
                fail_msg("%s{%s}: bad le", bucket, p->s[k].labels);
            if (!(bound > prev_le))
                fail_msg("%s{%s}: le not ascending", bucket, labels);
            if (p->s[k].v < prev)
                fail_msg("%s{%s}: buckets not cumulative", bucket, labels);
            prev_le = bound;
            prev = p->s[k].v;
            inf = isinf(bound);
            n_buckets++;
        }
        if (n_buckets < 2 || !inf || prev != c)
            fail_msg("%s{%s}: %d buckets, last +Inf %d, +Inf %g != count %g", name, labels,
                     n_buckets, inf, prev, c);
        double sv = prom_value(p, sum, labels);
        if (isnan(sv) || sv < 0 || (c == 0 && sv != 0))
            fail_msg("%s{%s}: sum %g for count %g", name, labels, sv, c);
        total += c;
        (*n_series)++;
    }
    return total;
}

static double prom_sum(const prom_t *p, const char *name)
{
    double sum = 0;
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->s[i].name, name))
            sum += p->s[i].v;
    return sum;
}

static prom_t scrape(void)
{
    http_resp_t r = http_get("/metrics");
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.headers, "Content-Type: text/plain; version=0.0.4"));
    prom_t p = prom_parse(r.body);
    resp_free(&r);
    return p;
}

/* The label set topic="<the test's name of topic>"<rest> (static buffer). */
static const char *topic_label(const char *topic, const char *rest)
{
    static char buf[512];
    snprintf(buf, sizeof(buf), "topic=\"%s\"%s", xst_topic(topic), rest);
    return buf;
}

/* Scrapes until the events and dead letters reach the expected totals. */
static prom_t scrape_until(double events, double dlq, double ready)
{
    prom_t p = {0};
    for (int i = 0; i < 600; i++) {
        p = scrape();
        if (prom_sum(&p, "xsell_events_total") == events &&
            prom_sum(&p, "xsell_dlq_messages_total") == dlq &&
            prom_value(&p, "xsell_ready", NULL) == ready)
            return p;
        free(p.s);
        usleep(100000);
    }
    p = scrape();
    fail_msg("metrics never reached events=%g dlq=%g ready=%g (now %g, %g, %g)", events, dlq, ready,
             prom_sum(&p, "xsell_events_total"), prom_sum(&p, "xsell_dlq_messages_total"),
             prom_value(&p, "xsell_ready", NULL));
    return p;
}

/* Reads the output topic until it holds every list the metrics count as
 * published (delivery follows processing by a few milliseconds); *m is
 * replaced by the last scrape. */
static xst_lists_t read_published(const char *bs, xs_codec_t *codec, prom_t *m)
{
    xst_lists_t lists = {0};
    for (int i = 0; i < 100; i++) {
        lists = xst_read_lists(bs, codec, xst_topic("xsell.cross-sell"));
        if (lists.n > 0 && prom_sum(m, "xsell_lists_published_total") == (double)lists.n)
            return lists;
        xst_lists_free(&lists);
        usleep(100000);
        free(m->s);
        *m = scrape();
    }
    fail_msg("the output topic never held the %g lists counted as published",
             prom_sum(m, "xsell_lists_published_total"));
    return lists;
}

/* ======================================================================== */
/* Scenario                                                                 */
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

/* Produces the camera/socks scenario; returns the number of events. */
static int produce_scenario(xs_producer_t *p, xs_codec_t *codec, int *purchases)
{
    const char *catalog[][2] = {{"camera", "Camera X100"},   {"lens", "Zoom lens 24-70"},
                                {"tripod", "Travel tripod"}, {"bag", "Camera bag"},
                                {"socks", "Wool socks"},     {"shoes", "Running shoes"}};
    int n = 0;
    for (size_t i = 0; i < 6; i++, n++) {
        xs_event_t ev;
        xst_item_event(&ev, catalog[i][0], catalog[i][1], "photo", true, T0);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    const char *clt[] = {"camera", "lens", "tripod", NULL};
    const char *cl[] = {"camera", "lens", NULL};
    const char *cb[] = {"camera", "bag", NULL};
    const char *ss[] = {"socks", "shoes", NULL};
    char user[32];
    *purchases = 0;
    for (int i = 0; i < 4; i++, (*purchases)++) {
        snprintf(user, sizeof(user), "clt-%d", i);
        n += produce_basket(p, codec, user, clt);
    }
    n += produce_basket(p, codec, "cl-0", cl);
    n += produce_basket(p, codec, "cb-0", cb);
    *purchases += 2;
    for (int i = 0; i < 6; i++, (*purchases)++) {
        snprintf(user, sizeof(user), "ss-%d", i);
        n += produce_basket(p, codec, user, ss);
    }
    return n;
}

/* ======================================================================== */
/* Tests                                                                    */
/* ======================================================================== */

static void test_command_line(void **state)
{
    (void)state;
    char *dir = xst_tmpdir("http-cli");
    char conf[600], out[600], err[600], statedir[600], marker[700];
    snprintf(conf, sizeof(conf), "%s/xsell.conf", dir);
    snprintf(out, sizeof(out), "%s/out", dir);
    snprintf(err, sizeof(err), "%s/err", dir);
    snprintf(statedir, sizeof(statedir), "%s/state", dir);

    /* File first, then flags, whatever the order on the command line. */
    write_file(conf, "commit.interval.ms = 500\n"
                     "http.address = 127.0.0.1:9999\n"
                     "log.level = warn\n"
                     "kafka.sasl.password = s3cret-xyz\n");
    char *argv1[] = {
        (char *)worker_bin(), "--set", "commit.interval.ms=700", "--http", "127.0.0.1:0",
        "--config",           conf,    "--print-config",         NULL};
    assert_int_equal(wait_exit(spawn(argv1, out, err), 30), 0);
    char *text = slurp(out);
    assert_non_null(strstr(text, "commit.interval.ms = 700\n"));
    assert_non_null(strstr(text, "http.address = 127.0.0.1:0\n"));
    assert_non_null(strstr(text, "log.level = warn\n"));
    assert_non_null(strstr(text, "kafka.sasl.password = ********\n"));
    assert_null(strstr(text, "s3cret"));
    free(text);

    /* A bad file is rejected with file:line before anything starts. */
    write_file(conf, "log.level = info\nhttp.adress = 127.0.0.1:1\n");
    char *argv2[] = {(char *)worker_bin(), "--config", conf, "--state-dir", statedir, NULL};
    assert_int_equal(wait_exit(spawn(argv2, out, err), 30), 2);
    text = slurp(err);
    char expect[700];
    snprintf(expect, sizeof(expect), "%s:2: unknown key 'http.adress'", conf);
    assert_non_null(strstr(text, expect));
    free(text);
    struct stat st;
    assert_int_not_equal(stat(statedir, &st), 0); /* nothing was created */

    char *argv3[] = {(char *)worker_bin(), "--http", "localhost", "--state-dir", statedir, NULL};
    assert_int_equal(wait_exit(spawn(argv3, out, err), 30), 2);
    text = slurp(err);
    assert_non_null(strstr(text, "--http: http.address: 'localhost' is not host:port"));
    free(text);

    /* --from-beginning on a non-empty state directory: refused. */
    mkdir(statedir, 0755);
    snprintf(marker, sizeof(marker), "%s/CURRENT", statedir);
    write_file(marker, "x\n");
    char *argv4[] = {
        (char *)worker_bin(), "--bootstrap", "127.0.0.1:1", "--state-dir", statedir, "--http", "",
        "--from-beginning",   NULL};
    assert_int_equal(wait_exit(spawn(argv4, out, err), 30), 2);
    text = slurp(err);
    assert_non_null(strstr(text, "--from-beginning needs an empty state directory"));
    free(text);
    assert_int_equal(stat(marker, &st), 0); /* untouched */

    /* ... and --reset-state still wants --yes for a non-empty directory. */
    char *argv5[] = {
        (char *)worker_bin(), "--bootstrap",   "127.0.0.1:1", "--state-dir", statedir, "--http", "",
        "--from-beginning",   "--reset-state", NULL};
    assert_int_equal(wait_exit(spawn(argv5, out, err), 30), 2);
    text = slurp(err);
    assert_non_null(strstr(text, "add --yes to confirm"));
    free(text);
    assert_int_equal(stat(marker, &st), 0);

    xst_rmrf(dir);
    free(dir);
}

/*
 * The histograms (structure, and counts that match what happened: every
 * input message timed, every list published timed from its event, every
 * checkpoint timed, the scrapes so far timed on their route), build_info
 * (one series, 1, the labels `xsell-worker --version` prints), the process
 * metrics, and the per-partition lag (one series per assigned partition,
 * summing to the total; none unknown).
 */
static void check_observability(const prom_t *m, double messages, double lists)
{
    int n;
    double c = prom_histogram(m, "xsell_event_processing_seconds", &n);
    fprintf(stderr, "processing histogram: %d series, count %g (messages %g)\n", n, c, messages);
    assert_int_equal(n, 3);
    assert_true(c == messages);
    c = prom_histogram(m, "xsell_event_to_publish_seconds", &n);
    assert_int_equal(n, 1);
    assert_true(c == lists);
    assert_true(prom_value(m, "xsell_event_to_publish_seconds_sum", NULL) > 0);
    c = prom_histogram(m, "xsell_checkpoint_seconds", &n);
    assert_int_equal(n, 1);
    assert_true(c == prom_value(m, "xsell_checkpoints_total", NULL));
    assert_true(prom_value(m, "xsell_checkpoint_last_success_timestamp_seconds", NULL) > 1.7e9);
    assert_true(prom_value(m, "xsell_checkpoint_failures_total", NULL) == 0);
    prom_histogram(m, "xsell_http_request_duration_seconds", &n);
    assert_true(n >= 6); /* every route from the start */
    assert_true(prom_value(m, "xsell_http_request_duration_seconds_count", "route=\"/metrics\"") >=
                1);
    assert_true(prom_value(m, "xsell_http_request_duration_seconds_count",
                           "route=\"/v1/users/{id}/cross-sell\"") == 0);

    /* build_info: the labels of `xsell-worker --version`. */
    char dir_out[] = "/tmp/xsell-version-XXXXXX";
    int fd = mkstemp(dir_out);
    assert_true(fd >= 0);
    close(fd);
    char *argv[] = {(char *)worker_bin(), "--version", NULL};
    assert_int_equal(wait_exit(spawn(argv, dir_out, "/dev/null"), 30), 0);
    char *text = slurp(dir_out);
    unlink(dir_out);
    char version[64], commit[64], rdk[64], rocks[64], avro[64];
    assert_int_equal(sscanf(text,
                            "xsell-worker %63s (commit %63[^)]) librdkafka %63s RocksDB %63s "
                            "(compiled against) Avro-C %63s",
                            version, commit, rdk, rocks, avro),
                     5);
    free(text);
    char labels[512];
    snprintf(labels, sizeof(labels),
             "version=\"%s\",commit=\"%s\",librdkafka=\"%s\",rocksdb=\"%s\",avro=\"%s\"", version,
             commit, rdk, rocks, avro);
    fprintf(stderr, "build_info{%s}\n", labels);
    assert_true(prom_value(m, "xsell_build_info", labels) == 1);
    int n_build = 0;
    for (int i = 0; i < m->n; i++)
        n_build += !strcmp(m->s[i].name, "xsell_build_info");
    assert_int_equal(n_build, 1);

    /* Process metrics. */
    assert_true(prom_value(m, "process_cpu_seconds_total", NULL) > 0);
    assert_true(prom_value(m, "process_resident_memory_bytes", NULL) > 1e6);
    double fds = prom_value(m, "process_open_fds", NULL);
    assert_true(fds >= 3 && fds <= prom_value(m, "process_max_fds", NULL));
    double start = prom_value(m, "process_start_time_seconds", NULL);
    assert_true(start > 1.7e9 && start <= (double)time(NULL) + 1);

    /* Lag per partition: 3 topics x 2 partitions, known, summing to the total. */
    int n_part = 0;
    double sum = 0;
    for (int i = 0; i < m->n; i++)
        if (!strcmp(m->s[i].name, "xsell_consumer_partition_lag_messages")) {
            assert_true(m->s[i].v >= 0);
            sum += m->s[i].v;
            n_part++;
        }
    assert_int_equal(n_part, 6);
    assert_true(sum == prom_value(m, "xsell_consumer_lag_messages", NULL));
    assert_true(prom_value(m, "xsell_consumer_lag_unknown_partitions", NULL) == 0);
}

static void test_endpoints(void **state)
{
    (void)state;
    char errstr[512] = "";
    xst_broker_t *db = xst_broker("http", 2);
    const char *bs = xst_bootstrap(db);
    xs_codec_t *codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(codec);
    xs_producer_t *p = xs_producer_new(bs, NULL, 0, errstr, sizeof(errstr));
    assert_non_null(p);
    char *dir = xst_tmpdir("http");
    char statedir[600], portfile[600], out[600], err[600];
    snprintf(statedir, sizeof(statedir), "%s/state", dir);
    snprintf(portfile, sizeof(portfile), "%s/http.addr", dir);
    snprintf(out, sizeof(out), "%s/worker.out", dir);
    snprintf(err, sizeof(err), "%s/worker.err", dir);

    int purchases = 0;
    int n_events = produce_scenario(p, codec, &purchases);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);

    char set_port[700];
    snprintf(set_port, sizeof(set_port), "http.port.file=%s", portfile);
    char *topics_conf = xst_topics_config(dir);
    char *argv[] = {(char *)worker_bin(),
                    "--config",
                    topics_conf,
                    "--bootstrap",
                    (char *)bs,
                    "--state-dir",
                    statedir,
                    "--group",
                    (char *)xst_group("http-test"),
                    "--http",
                    "127.0.0.1:0",
                    "--from-beginning",
                    "--set",
                    set_port,
                    "--set",
                    "log.progress.seconds=0",
                    "--set",
                    "commit.interval.ms=200",
                    "--set",
                    "experiment.name=exp1",
                    "--set",
                    "experiment.arms=a:50,b:50",
                    NULL};
    pid_t pid = spawn(argv, out, err);

    /* The bound address appears once the server listens (before the join). */
    char *addr = NULL;
    for (int i = 0; i < 300 && !(addr && *addr); i++) {
        free(addr);
        usleep(50000);
        addr = slurp(portfile);
    }
    if (!addr || sscanf(addr, "%63[^:]:%d", http_host, &http_port) != 2 || http_port <= 0) {
        char *log = slurp(err);
        fail_msg("no bound address in %s; worker log:\n%s", portfile, log);
    }
    free(addr);

    http_resp_t r = http_get("/healthz");
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "ok");
    resp_free(&r);
    /* The group join takes about 5 s: not ready yet. */
    r = http_get("/readyz");
    assert_int_equal(r.status, 503);
    assert_string_equal(jstr(r.json, "status"), "not ready");
    assert_non_null(jstr(r.json, "reason"));
    resp_free(&r);

    prom_t m = scrape_until(n_events, 0, 1);
    /* The live hit-rate counters exist for every placement and arm from the start. */
    for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++)
        for (int a = 0; a < 2; a++) {
            char lv[128];
            snprintf(lv, sizeof(lv), "placement=\"%s\",arm=\"%s\"",
                     xs_event_placement_name((xs_placement_t)pl), a ? "b" : "a");
            assert_false(isnan(prom_value(&m, "xsell_list_add_opportunities_total", lv)));
            assert_false(isnan(prom_value(&m, "xsell_list_add_hits_total", lv)));
        }
    /* no product page was ever shown, so no add could come from one */
    assert_true(prom_value(&m, "xsell_list_add_opportunities_total",
                           "placement=\"PRODUCT_PAGE\",arm=\"a\"") == 0);
    r = http_get("/readyz");
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "status"), "ready");
    resp_free(&r);

    /* Attribution: two clicks on one published list (one of them sent twice:
     * a duplicate is not counted again), a purchase citing it, a click citing
     * a list we never published, and one message that does not decode. */
    xst_lists_t lists = read_published(bs, codec, &m);
    free(m.s);
    const xs_list_t *cited = &lists.v[0];
    assert_non_null(cited->arm);
    char expect_arm[64];
    snprintf(expect_arm, sizeof(expect_arm), "%s", cited->arm);
    xs_event_t ev;
    for (int i = 0; i < 3; i++) {
        xst_click_event(&ev, i < 2 ? "click-1" : "click-2", cited->user_id,
                        XS_CLICK_RECOMMENDATION_CLICK, ts += 60000, "lens", NULL);
        ev.list_id = strdup(cited->list_id);
        xst_produce_event(p, codec, &ev);
        xs_event_clear(&ev);
    }
    xst_click_event(&ev, "click-unknown", cited->user_id, XS_CLICK_RECOMMENDATION_CLICK,
                    ts += 60000, "lens", NULL);
    ev.list_id = strdup("0123456789abcdef0123456789abcdef");
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    xst_cart_event(&ev, "buy-from-list", cited->user_id, XS_CART_PURCHASE, ts += 60000, NULL);
    assert_int_equal(xs_event_add_line(&ev, "lens", 2, 9.99, true), XS_OK);
    assert_int_equal(xs_event_add_line(&ev, "tripod", 1, 5.0, true), XS_OK);
    assert_int_equal(xs_event_add_line(&ev, "bag", 3, 0, false), XS_OK); /* no price */
    ev.list_id = strdup(cited->list_id);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    assert_int_equal(xs_producer_send(p, xst_topic("xsell.clicks"), -1, "k", 1, "\xC3\x01garbage",
                                      9, NULL, 0, errstr, sizeof(errstr)),
                     XS_OK);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    n_events += 5;
    purchases += 1;
    xst_lists_free(&lists);

    m = scrape_until(n_events, 1, 1);
    lists = read_published(bs, codec, &m);
    char labels[256];
    assert_true(prom_value(&m, "xsell_events_total",
                           topic_label("xsell.cart", ",type=\"PURCHASE\"")) == purchases);
    assert_true(prom_value(&m, "xsell_events_total",
                           topic_label("xsell.catalog", ",type=\"ITEM_UPDATE\"")) == 6);
    assert_true(prom_value(&m, "xsell_events_total",
                           topic_label("xsell.clicks", ",type=\"RECOMMENDATION_CLICK\"")) == 4);
    assert_true(prom_value(&m, "xsell_dlq_messages_total", "reason=\"decode\"") == 1);
    assert_true(prom_value(&m, "xsell_decode_errors_total", topic_label("xsell.clicks", "")) == 1);
    /* Lists by placement and arm: exactly what the output topic holds. */
    assert_true(prom_sum(&m, "xsell_lists_published_total") == (double)lists.n);
    assert_true(prom_sum(&m, "xsell_impressions_total") == (double)lists.n);
    for (size_t i = 0; i < lists.n; i++) {
        int same = 0, same_arm = 0;
        for (size_t k = 0; k < lists.n; k++) {
            same_arm += strcmp(lists.v[k].arm, lists.v[i].arm) == 0;
            same += lists.v[k].placement == lists.v[i].placement &&
                    strcmp(lists.v[k].arm, lists.v[i].arm) == 0;
        }
        snprintf(labels, sizeof(labels), "placement=\"%s\",arm=\"%s\"",
                 xs_event_placement_name(lists.v[i].placement), lists.v[i].arm);
        assert_true(prom_value(&m, "xsell_lists_published_total", labels) == same);
        snprintf(labels, sizeof(labels), "arm=\"%s\"", lists.v[i].arm);
        assert_true(prom_value(&m, "xsell_impressions_total", labels) == same_arm);
    }
    snprintf(labels, sizeof(labels), "arm=\"%s\"", expect_arm);
    assert_true(prom_value(&m, "xsell_attributed_clicks_total", labels) == 2);
    assert_true(prom_sum(&m, "xsell_attributed_clicks_total") == 2);
    assert_true(prom_value(&m, "xsell_attributed_purchases_total", labels) == 1);
    assert_true(fabs(prom_value(&m, "xsell_attributed_revenue_total", labels) - 24.98) < 1e-9);
    assert_true(prom_value(&m, "xsell_unattributed_events_total", "kind=\"click\"") == 1);
    /* Series present from the start, at zero. */
    assert_true(prom_value(&m, "xsell_unattributed_events_total", "kind=\"purchase\"") == 0);
    assert_true(prom_value(&m, "xsell_dlq_messages_total", "reason=\"too_large\"") == 0);
    assert_true(prom_value(&m, "xsell_decode_errors_total", topic_label("xsell.cart", "")) == 0);
    assert_true(prom_value(&m, "xsell_events_total",
                           topic_label("xsell.catalog", ",type=\"TOMBSTONE\"")) == 0);
    for (int pl = 0; pl < XS_PLACEMENT__COUNT; pl++) {
        snprintf(labels, sizeof(labels), "placement=\"%s\",arm=\"%s\"",
                 xs_event_placement_name((xs_placement_t)pl), expect_arm);
        assert_false(isnan(prom_value(&m, "xsell_lists_published_total", labels)));
    }
    /* Gauges and checkpoints. */
    assert_true(prom_value(&m, "xsell_assigned_partitions", NULL) == 6);
    assert_true(prom_value(&m, "xsell_ready", NULL) == 1);
    double lag = prom_value(&m, "xsell_consumer_lag_messages", NULL);
    assert_true(lag >= 0 && lag <= 5);
    assert_true(prom_value(&m, "xsell_checkpoints_total", NULL) >= 1);
    assert_true(prom_value(&m, "xsell_checkpoint_duration_seconds_total", NULL) > 0);
    double ratio = prom_value(&m, "xsell_cache_hit_ratio", NULL);
    assert_true(ratio > 0 && ratio <= 1);
    assert_true(prom_value(&m, "xsell_cache_hits_total", NULL) > 0);
    assert_true(prom_value(&m, "xsell_rocksdb_size_bytes", NULL) > 0);
    assert_true(prom_value(&m, "xsell_metrics_overflow_total", NULL) == 0);
    check_observability(&m, n_events + 1, (double)lists.n);

    free(m.s);
    xst_lists_free(&lists);

    /* Item query: lens then tripod, bought with the camera by 5 and 4 shoppers. */
    r = http_get("/v1/items/camera/neighbours");
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    assert_string_equal(jstr(r.json, "item_id"), "camera");
    assert_string_equal(jstr(r.json, "title"), "Camera X100");
    assert_string_equal(jstr(r.json, "class"), "bought");
    assert_true(xs_json_bool(xs_json_get(r.json, "in_stock")));
    const xs_json_t *nb = xs_json_get(r.json, "neighbours");
    assert_true(xs_json_size(nb) >= 2);
    assert_string_equal(jstr(xs_json_at(nb, 0), "item_id"), "lens");
    assert_int_equal((int)xs_json_number(xs_json_get(xs_json_at(nb, 0), "count")), 5);
    assert_string_equal(jstr(xs_json_at(nb, 1), "item_id"), "tripod");
    assert_int_equal((int)xs_json_number(xs_json_get(xs_json_at(nb, 1), "count")), 4);
    assert_true(xs_json_number(xs_json_get(xs_json_at(nb, 0), "similarity")) >=
                xs_json_number(xs_json_get(xs_json_at(nb, 1), "similarity")));
    resp_free(&r);
    r = http_get("/v1/items/camera/neighbours?class=VIEWED&n=1");
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "class"), "viewed");
    assert_int_equal(xs_json_size(xs_json_get(r.json, "neighbours")), 1);
    resp_free(&r);
    expect_error("GET", "/v1/items/no-such-item/neighbours", 404);

    /* User query: a known shopper who bought camera + lens, on the camera's
     * page: tripod (bought with the camera by 4) comes first, the camera
     * and the lens never. */
    r = http_get("/v1/users/cl-0/cross-sell?placement=product_page&item=camera&n=3");
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    assert_string_equal(jstr(r.json, "user_id"), "cl-0");
    assert_true(xs_json_bool(xs_json_get(r.json, "known_user")));
    int part = (int)xs_json_number(xs_json_get(r.json, "partition"));
    assert_true(part == 0 || part == 1);
    assert_string_equal(jstr(r.json, "placement"), "PRODUCT_PAGE");
    assert_string_equal(jstr(r.json, "experiment"), "exp1");
    assert_non_null(jstr(r.json, "arm"));
    const xs_json_t *items = xs_json_get(r.json, "items");
    assert_true(xs_json_size(items) >= 1 && xs_json_size(items) <= 3);
    assert_string_equal(jstr(xs_json_at(items, 0), "item_id"), "tripod");
    assert_string_equal(jstr(xs_json_at(items, 0), "source"), "BOUGHT_TOGETHER");
    for (size_t i = 0; i < xs_json_size(items); i++) {
        assert_string_not_equal(jstr(xs_json_at(items, i), "item_id"), "camera");
        assert_string_not_equal(jstr(xs_json_at(items, i), "item_id"), "lens");
    }
    resp_free(&r);
    /* An unknown user gets the cold-start list: trending items only. */
    r = http_get("/v1/users/never-seen%20user/cross-sell?placement=CART");
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "user_id"), "never-seen user");
    assert_false(xs_json_bool(xs_json_get(r.json, "known_user")));
    assert_int_equal(xs_json_type(xs_json_get(r.json, "partition")), XS_JSON_NULL);
    items = xs_json_get(r.json, "items");
    assert_true(xs_json_size(items) >= 1 && xs_json_size(items) <= 6);
    for (size_t i = 0; i < xs_json_size(items); i++)
        assert_string_equal(jstr(xs_json_at(items, i), "source"), "TRENDING");
    resp_free(&r);

    /* Malformed requests: 4xx with a JSON error, never a crash. */
    expect_error("GET", "/", 404);
    expect_error("GET", "/nope", 404);
    expect_error("GET", "/metrics/", 404);
    expect_error("GET", "/v1/users/cl-0", 404);
    expect_error("GET", "/v1/users/cl-0/cross-sell/extra", 404);
    expect_error("GET", "/v1/items/camera/neighbors", 404);
    expect_error("GET", "/a/b/c/d/e/f/g/h/i/j/k", 404);
    expect_error("GET", "/v1/users//cross-sell", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?placement=BASKET", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?placement=", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?n=0", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?n=21", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?n=-1", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?n=abc", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?n=99999999999999999999", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?n=3&n=4", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?colour=red", 400);
    expect_error("GET", "/v1/items/camera/neighbours?n=101", 400);
    expect_error("GET", "/v1/items/camera/neighbours?class=liked", 400);
    expect_error("GET", "/healthz?verbose=1", 400);
    expect_error("GET", "/v1/users/%zz/cross-sell", 400);
    expect_error("GET", "/v1/users/abc%4/cross-sell", 400);
    expect_error("GET", "/v1/users/abc%/cross-sell", 400);
    expect_error("GET", "/v1/users/a%00b/cross-sell", 400);
    expect_error("GET", "/v1/users/a%0Ab/cross-sell", 400);
    expect_error("GET", "/v1/users/%C3%28/cross-sell", 400);    /* invalid UTF-8 */
    expect_error("GET", "/v1/users/%ED%A0%80/cross-sell", 400); /* surrogate */
    expect_error("GET", "/v1/users/cl-0/cross-sell?item=%zz", 400);
    expect_error("GET", "/v1/users/cl-0/cross-sell?placement=CART%", 400);
    expect_error("GET", "http://example.com/healthz", 400);
    char big[4200];
    memset(big, 0, sizeof(big));
    strcpy(big, "/v1/users/");
    memset(big + 10, 'u', 300);
    strcat(big, "/cross-sell");
    expect_error("GET", big, 400); /* id longer than limits.max_id_len */
    memset(big + 10, 'u', 3000);
    strcpy(big + 3010, "/cross-sell");
    expect_error("GET", big, 414);
    expect_error("POST", "/metrics", 405);
    expect_error("DELETE", "/v1/items/camera/neighbours", 405);
    expect_error("PUT", "/v1/users/cl-0/cross-sell", 405);
    r = http_req("OPTIONS", "/healthz");
    assert_int_equal(r.status, 405);
    assert_non_null(strstr(r.headers, "Allow: GET, HEAD"));
    resp_free(&r);

    /* HEAD: headers only. */
    r = http_req("HEAD", "/metrics");
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "");
    resp_free(&r);
    /* HTTP/1.0 */
    const char *old = "GET /healthz HTTP/1.0\r\n\r\n";
    r = http_raw(old, strlen(old));
    assert_int_equal(r.status, 200);
    resp_free(&r);

    /* Hostile transport: a request line beyond the connection's memory, a
     * body on a POST, a huge body, garbage, an unfinished request. */
    size_t huge_len = 100000;
    char *huge = malloc(huge_len + 64);
    memcpy(huge, "GET /", 5);
    memset(huge + 5, 'a', huge_len);
    strcpy(huge + 5 + huge_len, " HTTP/1.1\r\nHost: x\r\n\r\n");
    r = http_raw(huge, strlen(huge));
    assert_true(r.status == 0 || (r.status >= 400 && r.status < 500));
    resp_free(&r);
    free(huge);
    const char *post = "POST /v1/users/x/cross-sell HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                       "Connection: close\r\n\r\nhello";
    r = http_raw(post, strlen(post));
    assert_int_equal(r.status, 405);
    assert_non_null(r.json);
    resp_free(&r);
    size_t body_len = 2 * 1024 * 1024;
    char *bigpost = malloc(body_len + 256);
    int hl = snprintf(bigpost, 256,
                      "PUT /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %zu\r\n\r\n", body_len);
    memset(bigpost + hl, 'x', body_len);
    r = http_raw(bigpost, (size_t)hl + body_len);
    assert_true(r.status == 0 || r.status == 405 || r.status == 413);
    resp_free(&r);
    free(bigpost);
    const char *garbage[] = {"GARBAGE\r\n\r\n",
                             "GET\r\n\r\n",
                             "\r\n\r\n\r\n",
                             "GET /healthz HTTP/9.9\r\n\r\n",
                             "GET /healthz HTTP/1.1\r\n",
                             "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"};
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        r = http_raw(garbage[i], strlen(garbage[i]));
        assert_true(r.status == 0 || (r.status >= 400 && r.status < 600));
        resp_free(&r);
    }
    /* Still serving. */
    r = http_get("/healthz");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    m = scrape();
    assert_true(prom_sum(&m, "xsell_events_total") == n_events);
    free(m.s);

    /* The live quality signal, deterministically (last, so the counts above
     * stay the scenario's): a new shopper adds the
     * camera (a CART list is published: lens first), then the lens (on that
     * list: an opportunity and a hit), then a kettle (not on it: an
     * opportunity only). */
    m = scrape_until(n_events, 1, 1);
    lists = read_published(bs, codec, &m);
    double opps0 = prom_sum(&m, "xsell_list_add_opportunities_total");
    double hits0 = prom_sum(&m, "xsell_list_add_hits_total");
    assert_true(opps0 > 0 && hits0 <= opps0); /* the scenario's shoppers */
    free(m.s);
    size_t n_lists0 = lists.n;
    xst_lists_free(&lists);
    const char *camera1[] = {"camera", NULL}, *lens1[] = {"lens", NULL},
               *kettle1[] = {"kettle", NULL};
    xst_cart_event(&ev, "live-1", "live-shopper", XS_CART_ADD, ts += 60000, camera1);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    n_events += 1;
    m = scrape_until(n_events, 1, 1);
    assert_true(prom_sum(&m, "xsell_list_add_opportunities_total") ==
                opps0); /* nothing shown yet */
    lists = read_published(bs, codec, &m);
    assert_int_equal(lists.n, n_lists0 + 1);
    const xs_list_t *shown = NULL; /* lists come partition by partition */
    for (size_t i = 0; i < lists.n; i++)
        if (!strcmp(lists.v[i].user_id, "live-shopper")) {
            assert_null(shown);
            shown = &lists.v[i];
        }
    assert_non_null(shown);
    assert_int_equal(shown->placement, XS_PLACEMENT_CART);
    assert_string_equal(shown->items[0].item_id, "lens");
    char live_labels[128];
    snprintf(live_labels, sizeof(live_labels), "placement=\"CART\",arm=\"%s\"", shown->arm);
    double opps_arm = prom_value(&m, "xsell_list_add_opportunities_total", live_labels);
    double hits_arm = prom_value(&m, "xsell_list_add_hits_total", live_labels);
    free(m.s);
    xst_lists_free(&lists);
    xst_cart_event(&ev, "live-2", "live-shopper", XS_CART_ADD, ts += 60000, lens1);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    xst_cart_event(&ev, "live-3", "live-shopper", XS_CART_ADD, ts += 60000, kettle1);
    xst_produce_event(p, codec, &ev);
    xs_event_clear(&ev);
    assert_int_equal(xs_producer_flush(p, 10000, errstr, sizeof(errstr)), XS_OK);
    n_events += 2;
    m = scrape_until(n_events, 1, 1);
    assert_true(prom_value(&m, "xsell_list_add_opportunities_total", live_labels) == opps_arm + 2);
    assert_true(prom_value(&m, "xsell_list_add_hits_total", live_labels) == hits_arm + 1);
    assert_true(prom_sum(&m, "xsell_list_add_opportunities_total") == opps0 + 2);
    assert_true(prom_sum(&m, "xsell_list_add_hits_total") == hits0 + 1);
    free(m.s);

    /* SIGTERM: final checkpoint, exit 0. */
    kill(pid, SIGTERM);
    int rc = wait_exit(pid, 60);
    if (rc != 0) {
        char *log = slurp(err);
        fail_msg("worker exit %d; log:\n%s", rc, log);
    }
    char *log = slurp(err);
    assert_non_null(strstr(log, "msg=\"http listening\" address=127.0.0.1:"));
    assert_non_null(strstr(log, "msg=\"worker stopped\""));
    free(log);

    xs_producer_destroy(p);
    xs_codec_destroy(codec);
    xst_broker_free(db);
    free(topics_conf);
    xst_rmrf(dir);
    free(dir);
}

/* ======================================================================== */
/* The HTTP server alone: raw bytes in the request line, slow clients       */
/* ======================================================================== */

static bool svc_always(void *opaque, char *reason, size_t reason_size)
{
    (void)opaque;
    (void)reason;
    (void)reason_size;
    return true;
}

static xs_http_t *start_bare_server(void)
{
    char errstr[256] = "";
    xs_http_opts_t o = {.address = "127.0.0.1:0"}; /* 64 connections, 10 s idle timeout */
    xs_http_service_t svc = {.healthy = svc_always, .ready = svc_always};
    xs_http_t *h = xs_http_new(&o, &svc, errstr, sizeof(errstr));
    if (!h)
        fail_msg("http: %s", errstr);
    snprintf(http_host, sizeof(http_host), "127.0.0.1");
    http_port = xs_http_port(h);
    return h;
}

static void test_request_line_raw_bytes(void **state)
{
    (void)state;
    xs_http_t *h = start_bare_server();
    static const struct {
        const char *line; /* request line without CRLF */
        size_t len;
        int status;
    } cases[] = {
#define L(s, st) {s, sizeof(s) - 1, st}
        L("GET /healthz HTTP/1.1", 200),        L("GET /healthz?x=1 HTTP/1.1", 400),
        L("GET /healthz%00?x=1 HTTP/1.1", 400), L("GET /healthz\0?x=1 HTTP/1.1", 400),
        L("GET /healthz\0 HTTP/1.1", 400),      L("GET /healthz?\0 HTTP/1.1", 400),
        L("GET \0/healthz HTTP/1.1", 400),      L("GET\0 /healthz HTTP/1.1", 400),
        L("GE\0T /healthz HTTP/1.1", 400),      L("GET /v1/items/a\0b/neighbours HTTP/1.1", 400),
        L("GET /healthz\x01 HTTP/1.1", 400),    L("GET /healthz\x1b[2J HTTP/1.1", 400),
        L("GET /healthz\x7f HTTP/1.1", 400),    L("GET /healthz\t HTTP/1.1", 400),
        L("GET /healthz\r?x HTTP/1.1", 400),    L("GET /readyz?a=\x02 HTTP/1.1", 400),
        L("GE\x01T /healthz HTTP/1.1", 400),    L("GET\x7f /healthz HTTP/1.1", 400),
        L("GET /readyz HTTP/1.1", 200),
#undef L
    };
    for (size_t i = 0; i < XS_ARRAY_SIZE(cases); i++) {
        xs_buf_t b = {0};
        xs_buf_append(&b, cases[i].line, cases[i].len);
        xs_buf_append_str(&b, "\r\nHost: x\r\nConnection: close\r\n\r\n");
        http_resp_t r = http_raw(b.data, b.len);
        if (r.status != cases[i].status)
            fail_msg("case %zu: status %d, want %d (body %s)", i, r.status, cases[i].status,
                     r.body);
        if (r.status == 400)
            assert_non_null(r.json); /* our JSON error, not MHD's page */
        resp_free(&r);
        xs_buf_free(&b);
    }
    http_resp_t r = http_get("/healthz");
    assert_int_equal(r.status, 200);
    resp_free(&r);
    xs_http_destroy(h);
}

#define N_SLOW 80

typedef struct slow_clients {
    int fd[N_SLOW];
    volatile int stop;
} slow_clients_t;

/* Every second, one more byte of an endless header on every connection. */
static void *slow_loop(void *arg)
{
    slow_clients_t *sc = arg;
    while (!sc->stop) {
        for (int i = 0; i < N_SLOW; i++)
            if (sc->fd[i] >= 0)
                (void)send(sc->fd[i], "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        for (int t = 0; t < 10 && !sc->stop; t++)
            usleep(100 * 1000);
    }
    return NULL;
}

static void test_probes_under_slow_clients(void **state)
{
    (void)state;
    xs_http_t *h = start_bare_server();
    slow_clients_t sc = {.stop = 0};
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)http_port)};
    inet_pton(AF_INET, http_host, &sa.sin_addr);
    for (int i = 0; i < N_SLOW; i++) {
        sc.fd[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_true(sc.fd[i] >= 0);
        if (connect(sc.fd[i], (struct sockaddr *)&sa, sizeof(sa)) != 0)
            fail_msg("connect: %s", strerror(errno));
        static const char head[] = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        assert_true(send(sc.fd[i], head, sizeof(head) - 1, MSG_NOSIGNAL) > 0);
    }
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, slow_loop, &sc), 0);
    sleep(3); /* the server has seen every slow client and their first bytes */
    double worst = 0;
    for (int k = 0; k < 5; k++) {
        int64_t t0 = xsp_now_ms();
        http_resp_t r = http_get(k % 2 ? "/readyz" : "/healthz");
        double ms = (double)(xsp_now_ms() - t0);
        worst = ms > worst ? ms : worst;
        fprintf(stderr, "probe %d under %d slow clients: status %d in %.0f ms\n", k, N_SLOW,
                r.status, ms);
        assert_int_equal(r.status, 200);
        assert_true(ms < 1000);
        resp_free(&r);
        usleep(500 * 1000);
    }
    sc.stop = 1;
    pthread_join(th, NULL);
    for (int i = 0; i < N_SLOW; i++)
        close(sc.fd[i]);
    fprintf(stderr, "probes under %d slow clients: worst %.0f ms\n", N_SLOW, worst);
    xs_http_destroy(h);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_line_raw_bytes),
        cmocka_unit_test(test_probes_under_slow_clients),
        cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_endpoints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
