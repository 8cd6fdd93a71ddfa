/*
 * check.c — every configuration check the worker applies at start, all
 * errors reported (see include/xsell/check.h).
 */
#include "xsell/check.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/changelog.h"
#include "xsell/global.h"
#include "xsell/codec.h"
#include "xsell/kafka.h"
#include "xsell/settings.h"
#include "xsell/store.h"

typedef struct check {
    xs_report_fn report;
    void *opaque;
    xs_codec_t *codec;
    int bad;
} check_t;

static void count_report(void *opaque, const char *message)
{
    check_t *c = opaque;
    c->report(c->opaque, message);
    c->bad++;
}

/* The worker's add_confluent() without keeping anything: a known kind, a
 * readable file, a schema that resolves against xsell's reader schema. */
static xs_err_t check_schema(void *opaque, int32_t id, const char *kind, const char *path,
                             char *errstr, size_t errstr_size)
{
    check_t *c = opaque;
    char msg[1280];
    int k = !strcmp(kind, "ClickEvent")   ? XS_KIND_CLICK
            : !strcmp(kind, "CartEvent")  ? XS_KIND_CART
            : !strcmp(kind, "ItemUpdate") ? XS_KIND_ITEM
                                          : -1;
    (void)errstr;
    (void)errstr_size;
    if (k < 0) {
        snprintf(msg, sizeof(msg),
                 "schema.confluent.%d: unknown kind '%s' (ClickEvent, CartEvent or ItemUpdate)", id,
                 kind);
        count_report(c, msg);
        return XS_OK;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(msg, sizeof(msg), "schema.confluent.%d: cannot open %s: %s", id, path,
                 strerror(errno));
        count_report(c, msg);
        return XS_OK;
    }
    xs_buf_t b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        xs_buf_append(&b, chunk, n);
    fclose(f);
    xs_buf_append_u8(&b, 0);
    char why[1024] = "";
    if (c->codec && xs_codec_add_writer(c->codec, (xs_event_kind_t)k, (const char *)b.data, id, why,
                                        sizeof(why)) != XS_OK) {
        snprintf(msg, sizeof(msg), "schema.confluent.%d: %s: %s", id, path, why);
        count_report(c, msg);
    }
    xs_buf_free(&b);
    return XS_OK;
}

int xs_check_config(const xs_config_t *cfg, xs_report_fn report, void *opaque)
{
    check_t c = {report, opaque, NULL, 0};
    char errstr[1024] = "";
    size_t n = 0;

    const xs_kv_t *kconf = xs_config_passthrough(cfg, "kafka.", &n);
    bool bootstrap = false;
    for (size_t i = 0; i < n; i++)
        bootstrap |= !strcmp(kconf[i].key, "bootstrap.servers") && *kconf[i].value;
    if (!bootstrap)
        count_report(&c, "kafka.bootstrap.servers is not set (config file, --set or --bootstrap)");
    c.bad += xs_kafka_check_conf(kconf, n, report, opaque);

    const xs_kv_t *rocks = xs_config_passthrough(cfg, "rocksdb.", &n);
    c.bad += xs_store_check_options(rocks, n, report, opaque);

    xs_params_t params;
    xs_experiment_t experiment;
    xs_settings_params(cfg, &params);
    if (xs_settings_experiment(cfg, &params, &experiment, errstr, sizeof(errstr)) != XS_OK)
        count_report(&c, errstr);

    const char *url = xs_config_str(cfg, "schema.registry.url");
    if (*url && strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
        count_report(&c, "schema.registry.url must start with http:// or https://");
    if (!*url && !strcmp(xs_config_str(cfg, "output.framing"), "confluent"))
        count_report(&c, "output.framing = confluent needs schema.registry.url (the output "
                         "schema is registered there)");

    if (xs_config_bool(cfg, "changelog.enable")) {
        char topic[300], msg[512];
        const char *other[] = {"topics.clicks", "topics.cart", "topics.catalog", "topics.output",
                               "topics.dlq"};
        xs_changelog_topic_name(cfg, topic, sizeof(topic));
        for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
            if (!strcmp(topic, xs_config_str(cfg, other[i]))) {
                snprintf(msg, sizeof(msg), "changelog topic %s is also %s", topic, other[i]);
                count_report(&c, msg);
            }
        kconf = xs_config_passthrough(cfg, "kafka.", &n);
        for (size_t i = 0; i < n; i++)
            if (!strcmp(kconf[i].key, "transactional.id"))
                count_report(&c, "kafka.transactional.id with changelog.enable: set "
                                 "changelog.transactional.id (the changelog writer's own) instead");
    }

    if (xs_config_bool(cfg, "items.global")) {
        char topic[300], msg[512];
        const char *other[] = {"topics.clicks", "topics.cart", "topics.catalog", "topics.output",
                               "topics.dlq"};
        if (!xs_config_bool(cfg, "changelog.enable"))
            count_report(&c, "items.global needs changelog.enable = true (the pair deltas are "
                             "sent in the checkpoints' transactions)");
        xs_global_deltas_topic_name(cfg, topic, sizeof(topic));
        for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
            if (!strcmp(topic, xs_config_str(cfg, other[i]))) {
                snprintf(msg, sizeof(msg), "pair deltas topic %s is also %s", topic, other[i]);
                count_report(&c, msg);
            }
    }

    if (!(c.codec = xs_codec_new(errstr, sizeof(errstr))))
        count_report(&c, errstr);
    else if (xs_config_each_confluent_schema(cfg, check_schema, &c, errstr, sizeof(errstr)) !=
             XS_OK)
        count_report(&c, *errstr ? errstr : "schema.confluent.*: malformed value");
    xs_codec_destroy(c.codec);
    return c.bad;
}
