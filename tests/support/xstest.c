/*
 * Test support (see xstest.h). Failures abort the test through cmocka.
 */
#include "xstest.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>
#include <cmocka.h>

#include "xsell/store.h"
#include "xsell/worker.h"

char *xst_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/xsell-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    char *d = mkdtemp(path);
    assert_non_null(d);
    return strdup(d);
}

void xst_rmrf(const char *path)
{
    xs_store_destroy_dir(path, NULL, 0);
}

void xst_cart_event(xs_event_t *ev, const char *event_id, const char *user, xs_cart_type_t type,
                    int64_t ts, const char *const *items)
{
    xs_event_init(ev, XS_KIND_CART);
    ev->event_id = strdup(event_id);
    ev->user_id = strdup(user);
    ev->type = type;
    ev->ts = ts;
    for (int i = 0; items && items[i]; i++)
        assert_int_equal(xs_event_add_line(ev, items[i], 1, 9.99, true), XS_OK);
}

void xst_click_event(xs_event_t *ev, const char *event_id, const char *user, xs_click_type_t type,
                     int64_t ts, const char *item, const char *category)
{
    xs_event_init(ev, XS_KIND_CLICK);
    ev->event_id = strdup(event_id);
    ev->user_id = strdup(user);
    ev->type = type;
    ev->ts = ts;
    ev->item_id = item ? strdup(item) : NULL;
    ev->category = category ? strdup(category) : NULL;
}

void xst_item_event(xs_event_t *ev, const char *item, const char *title, const char *category,
                    bool in_stock, int64_t ts)
{
    xs_event_init(ev, XS_KIND_ITEM);
    ev->item_id = strdup(item);
    ev->title = title ? strdup(title) : NULL;
    ev->category = category ? strdup(category) : NULL;
    ev->in_stock = in_stock;
    ev->ts = ts;
}

void xst_produce_event(xs_producer_t *p, xs_codec_t *codec, const xs_event_t *ev)
{
    xs_buf_t b = {0};
    char errstr[512] = "";
    assert_int_equal(xs_codec_encode_event(codec, ev, &b), XS_OK);
    const char *topic = xst_topic(ev->kind == XS_KIND_CLICK  ? "xsell.clicks"
                                  : ev->kind == XS_KIND_CART ? "xsell.cart"
                                                             : "xsell.catalog");
    const char *key = ev->kind == XS_KIND_ITEM ? ev->item_id : ev->user_id;
    xs_err_t err = xs_producer_send(p, topic, -1, key, strlen(key), b.data, b.len, NULL, 0, errstr,
                                    sizeof(errstr));
    if (err)
        fail_msg("produce: %s", errstr);
    xs_buf_free(&b);
}

xs_config_t *xst_worker_config(const char *bootstrap, const char *state_dir, const char *group)
{
    xs_config_t *cfg = xs_config_new();
    char errstr[512];
    const char *kv[][2] = {
        {"kafka.bootstrap.servers", bootstrap},
        {"state.dir", state_dir},
        {"group.id", xst_group(group)},
        {"topics.clicks", xst_topic("xsell.clicks")},
        {"topics.cart", xst_topic("xsell.cart")},
        {"topics.catalog", xst_topic("xsell.catalog")},
        {"topics.output", xst_topic("xsell.cross-sell")},
        {"topics.dlq", xst_topic("xsell.dlq")},
        {"commit.interval.ms", "200"},
        {"log.progress.seconds", "0"},
        {"http.address", ""}, /* no HTTP server: tests must not bind a fixed port */
    };
    for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
        if (xs_config_set(cfg, kv[i][0], kv[i][1], "test", errstr, sizeof(errstr)))
            fail_msg("config: %s", errstr);
    return cfg;
}

xst_run_t xst_run_worker_until_end(const xs_config_t *cfg)
{
    char errstr[1024] = "";
    volatile sig_atomic_t stop = 0;
    xs_worker_opts_t wo = {.config = cfg, .until_end = true};
    xs_worker_t *w = xs_worker_new(&wo, errstr, sizeof(errstr));
    if (!w)
        fail_msg("worker: %s", errstr);
    if (xs_worker_run(w, &stop, errstr, sizeof(errstr)) != XS_OK)
        fail_msg("worker run: %s", errstr);
    xs_worker_stats_t st;
    xs_worker_stats(w, &st);
    xs_worker_destroy(w);
    return (xst_run_t){st.events, st.lists, st.dlq};
}

xst_lists_t xst_read_lists(const char *bootstrap, xs_codec_t *codec, const char *topic)
{
    char errstr[512] = "";
    const char *topics[] = {topic};
    xs_consumer_opts_t co = {
        .bootstrap = bootstrap,
        .topics = topics,
        .n_topics = 1,
        .start_offset = XS_OFFSET_BEGINNING,
    };
    xs_consumer_t *c = xs_consumer_new(&co, errstr, sizeof(errstr));
    if (!c)
        fail_msg("consumer: %s", errstr);
    xst_lists_t out = {0};
    size_t cap = 0;
    for (int idle = 0; idle < 300;) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 100, &m, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF) {
            if (xs_consumer_caught_up(c))
                break;
            idle++;
            continue;
        }
        if (err)
            fail_msg("poll: %s", errstr);
        if (out.n == cap) {
            cap = cap ? cap * 2 : 64;
            out.v = realloc(out.v, cap * sizeof(*out.v));
        }
        xs_event_list_init(&out.v[out.n]);
        char reason[256];
        if (xs_codec_decode_list(codec, m.value, m.value_len, &out.v[out.n], reason,
                                 sizeof(reason)))
            fail_msg("decode list at offset %lld: %s", (long long)m.offset, reason);
        out.n++;
        if (xs_consumer_caught_up(c))
            break;
    }
    xs_consumer_destroy(c);
    return out;
}

void xst_lists_free(xst_lists_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        xs_event_list_clear(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

const xs_list_t *xst_find_list(const xst_lists_t *l, const char *event_id)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].trigger_event_id && strcmp(l->v[i].trigger_event_id, event_id) == 0)
            return &l->v[i];
    return NULL;
}

xs_devbroker_t *xst_devbroker(int partitions)
{
    char errstr[512] = "";
    xs_devbroker_t *db = xs_devbroker_new(1, errstr, sizeof(errstr));
    if (!db)
        fail_msg("devbroker: %s", errstr);
    const char *topics[] = {"xsell.clicks", "xsell.cart", "xsell.catalog", "xsell.cross-sell",
                            "xsell.dlq"};
    for (size_t i = 0; i < 5; i++)
        if (xs_devbroker_create_topic(db, topics[i], partitions, errstr, sizeof(errstr)))
            fail_msg("create topic %s: %s", topics[i], errstr);
    return db;
}

/* ---- the broker under test: mock or external -------------------------- */

struct xst_broker {
    xs_devbroker_t *db;
    char *bootstrap;
};

static char topic_prefix[128];

bool xst_external(void)
{
    const char *bs = getenv("XS_KAFKA_BOOTSTRAP");
    const char *file = getenv("XS_KAFKA_BOOTSTRAP_FILE");
    return (bs && *bs) || (file && *file);
}

static char *external_bootstrap(void)
{
    const char *bs = getenv("XS_KAFKA_BOOTSTRAP");
    if (bs && *bs)
        return strdup(bs);
    const char *file = getenv("XS_KAFKA_BOOTSTRAP_FILE");
    FILE *f = fopen(file, "r");
    if (!f)
        fail_msg("XS_KAFKA_BOOTSTRAP_FILE %s: cannot read it (is the broker up?)", file);
    char line[1024] = "";
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    if (!line[0])
        fail_msg("XS_KAFKA_BOOTSTRAP_FILE %s is empty", file);
    return strdup(line);
}

/* Interned: the same name gives the same pointer, valid for the whole process. */
static const char *prefixed(const char *name)
{
    static struct {
        char name[128], full[256];
    } tab[64];
    static size_t n;
    if (!topic_prefix[0])
        return name;
    char full[256];
    snprintf(full, sizeof(full), "%s%s", topic_prefix, name);
    for (size_t i = 0; i < n; i++)
        if (strcmp(tab[i].full, full) == 0)
            return tab[i].full;
    assert_true(n < 64);
    snprintf(tab[n].name, sizeof(tab[n].name), "%s", name);
    snprintf(tab[n].full, sizeof(tab[n].full), "%s", full);
    return tab[n++].full;
}

const char *xst_topic(const char *name)
{
    return prefixed(name);
}

const char *xst_group(const char *name)
{
    return prefixed(name);
}

char *xst_topics_config(const char *dir)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/topics.conf", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "topics.clicks = %s\n", xst_topic("xsell.clicks"));
    fprintf(f, "topics.cart = %s\n", xst_topic("xsell.cart"));
    fprintf(f, "topics.catalog = %s\n", xst_topic("xsell.catalog"));
    fprintf(f, "topics.output = %s\n", xst_topic("xsell.cross-sell"));
    fprintf(f, "topics.dlq = %s\n", xst_topic("xsell.dlq"));
    fclose(f);
    return strdup(path);
}

xst_broker_t *xst_broker_topics(const char *tag, const char *const *names, const int *partitions,
                                size_t n)
{
    char errstr[512] = "";
    xst_broker_t *b = calloc(1, sizeof(*b));
    assert_non_null(b);
    if (!xst_external()) {
        topic_prefix[0] = 0;
        b->db = xs_devbroker_new(1, errstr, sizeof(errstr));
        if (!b->db)
            fail_msg("devbroker: %s", errstr);
        for (size_t i = 0; i < n; i++)
            if (xs_devbroker_create_topic(b->db, names[i], partitions[i], errstr, sizeof(errstr)))
                fail_msg("create topic %s: %s", names[i], errstr);
        b->bootstrap = strdup(xs_devbroker_bootstraps(b->db));
        return b;
    }
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(topic_prefix, sizeof(topic_prefix), "%s-%ld-%lld.", tag, (long)getpid(),
             (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    b->bootstrap = external_bootstrap();
    fprintf(stderr, "external broker %s, topics and groups prefixed %s\n", b->bootstrap,
            topic_prefix);
    const char *rf_env = getenv("XS_KAFKA_REPLICATION");
    int rf = rf_env ? atoi(rf_env) : 1;
    xs_topic_spec_t *specs = calloc(n, sizeof(*specs));
    char(*full)[256] = calloc(n, sizeof(*full));
    assert_non_null(specs);
    assert_non_null(full);
    static const xs_kv_t compact[] = {{"cleanup.policy", "compact"}};
    for (size_t i = 0; i < n; i++) {
        snprintf(full[i], sizeof(full[i]), "%s", xst_topic(names[i]));
        bool catalog = strcmp(names[i], "xsell.catalog") == 0;
        specs[i] = (xs_topic_spec_t){full[i], partitions[i], rf, catalog ? compact : NULL,
                                     catalog ? 1 : 0};
    }
    if (xs_kafka_create_topics(b->bootstrap, NULL, 0, specs, n, 30000, errstr, sizeof(errstr)))
        fail_msg("create topics on %s: %s", b->bootstrap, errstr);
    free(specs);
    free(full);
    return b;
}

xst_broker_t *xst_broker(const char *tag, int partitions)
{
    const char *names[] = {"xsell.clicks", "xsell.cart", "xsell.catalog", "xsell.cross-sell",
                           "xsell.dlq"};
    int parts[] = {partitions, partitions, partitions, partitions, partitions};
    return xst_broker_topics(tag, names, parts, 5);
}

const char *xst_bootstrap(const xst_broker_t *b)
{
    return b->bootstrap;
}

xs_devbroker_t *xst_broker_dev(const xst_broker_t *b)
{
    return b->db;
}

void xst_broker_free(xst_broker_t *b)
{
    if (!b)
        return;
    xs_devbroker_destroy(b->db);
    free(b->bootstrap);
    free(b);
}

void xst_run_reference(const char *bootstrap, const char *dir, const char *group,
                       const char *output, uint64_t n_events)
{
    xs_config_t *cfg = xst_worker_config(bootstrap, dir, group);
    char e[256];
    assert_int_equal(xs_config_set(cfg, "topics.output", output, "test", e, sizeof(e)), XS_OK);
    assert_int_equal(xs_config_set(cfg, "list.family_cap", "0", "test", e, sizeof(e)), XS_OK);
    assert_int_equal(xs_config_set(cfg, "list.family_exclude", "false", "test", e, sizeof(e)),
                     XS_OK);
    xst_run_t ref = xst_run_worker_until_end(cfg);
    xs_config_destroy(cfg);
    assert_int_equal(ref.events, n_events);
}
