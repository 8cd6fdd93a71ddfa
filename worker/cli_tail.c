/*
 * cli_tail.c — `xsell tail`: decode the cross-sell output topic as JSON
 * lines.
 *
 * A group-less consumer (no offsets committed, nothing shared with the
 * worker's group) reads every partition of --topic, from the end by default
 * or from the beginning with --from-beginning. Each CrossSellList record is
 * decoded and printed as one JSON object per line on stdout, flushed per
 * line so a pipe sees it at once:
 *
 *   {"list_id":"…","user_id":"…","generated_at":1700000000000,
 *    "trigger_event_id":"…","trigger_type":"ADD","trigger_items":["…"],
 *    "trigger_titles":["…"],"placement":"CART","experiment":null,"arm":null,
 *    "items":[{"item_id":"…","title":"…","score":1.5,
 *              "source":"BOUGHT_TOGETHER","because_of":["…"]}],
 *    "model_name":"…","model_version":"…"}
 *
 * Titles. Unless --no-catalog, the catalog topic is first read from the
 * beginning to its end (as it was when tail started) into an in-memory
 * map item_id -> title (last update wins). With a catalog, every item gets
 * "title" and the list gets "trigger_titles" (null where unknown); if the
 * catalog topic cannot be read, tail warns and prints lists without them.
 *
 * Framing. Lists and catalog records in single-object encoding decode with
 * the embedded schemas. Confluent-framed ones (byte 0, a 4-byte schema id;
 * the worker's output.framing = confluent) need the writer schema of their
 * id: from the Schema Registry (schema.registry.* of --config/--set, or
 * --registry URL), asked once per id and cached in the codec, with three
 * attempts 100/200 ms apart when it cannot be reached; or, offline, from
 * the schema.confluent.<id> files of the configuration (ItemUpdate ids for
 * the catalog). An id the registry does not have is remembered and its
 * records are reported as undecodable. With --config, the topics default
 * to the configuration's topics.output and topics.catalog.
 *
 * Records that do not decode are reported on stderr with topic, partition
 * and offset and skipped. --until-end stops once everything that was in the
 * topic at start has been read; --max N stops after N lists; otherwise tail
 * runs until SIGINT/SIGTERM. Exit status 0, 1 on a Kafka or output error,
 * 2 on usage errors.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "cli_common.h"
#include "xsell/codec.h"
#include "xsell/config.h"
#include "xsell/event.h"
#include "xsell/hash.h"
#include "xsell/json.h"
#include "xsell/kafka.h"
#include "xsell/registry.h"

#define TAIL_POLL_MS 200
#define CATALOG_LOAD_MS 60000
#define REGISTRY_ATTEMPTS 3
#define REGISTRY_BACKOFF_MS 100

/* ======================================================================== */
/* item_id -> title map (open addressing, linear probing, power-of-2 size)  */
/* ======================================================================== */

typedef struct title_slot {
    char *item_id; /* NULL = empty */
    char *title;   /* NULL = item known without a title */
} title_slot_t;

typedef struct title_map {
    title_slot_t *slots;
    size_t cap; /* 0 or a power of two */
    size_t n;
} title_map_t;

static title_slot_t *title_map_slot(title_slot_t *slots, size_t cap, const char *item_id)
{
    size_t i = (size_t)xs_hash_str(item_id) & (cap - 1);
    while (slots[i].item_id && strcmp(slots[i].item_id, item_id) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static xs_err_t title_map_grow(title_map_t *map)
{
    size_t cap = map->cap ? map->cap * 2 : 1024;
    title_slot_t *slots = calloc(cap, sizeof(*slots));
    if (!slots)
        return XS_ERR_NOMEM;
    for (size_t i = 0; i < map->cap; i++)
        if (map->slots[i].item_id)
            *title_map_slot(slots, cap, map->slots[i].item_id) = map->slots[i];
    free(map->slots);
    map->slots = slots;
    map->cap = cap;
    return XS_OK;
}

/* Sets item_id's title (copies both; title may be NULL). */
static xs_err_t title_map_put(title_map_t *map, const char *item_id, const char *title)
{
    title_slot_t *slot = NULL;
    char *title_copy = NULL;

    if ((map->n + 1) * 4 > map->cap * 3 && title_map_grow(map) != XS_OK)
        return XS_ERR_NOMEM;
    if (title && !(title_copy = xs_str_dup(title)))
        return XS_ERR_NOMEM;
    slot = title_map_slot(map->slots, map->cap, item_id);
    if (!slot->item_id) {
        if (!(slot->item_id = xs_str_dup(item_id))) {
            free(title_copy);
            return XS_ERR_NOMEM;
        }
        map->n++;
    }
    free(slot->title);
    slot->title = title_copy;
    return XS_OK;
}

static const char *title_map_get(const title_map_t *map, const char *item_id)
{
    const title_slot_t *slot = NULL;
    if (!map->cap || !item_id)
        return NULL;
    slot = title_map_slot(map->slots, map->cap, item_id);
    return slot->item_id ? slot->title : NULL;
}

static void title_map_free(title_map_t *map)
{
    for (size_t i = 0; i < map->cap; i++) {
        free(map->slots[i].item_id);
        free(map->slots[i].title);
    }
    free(map->slots);
    memset(map, 0, sizeof(*map));
}

/* ======================================================================== */
/* Command                                                                  */
/* ======================================================================== */

typedef struct tail_opts {
    const char *bootstrap;
    const char *topic;
    const char *catalog_topic; /* NULL: --no-catalog */
    bool from_beginning;
    bool until_end;
    bool text;     /* --format text */
    int placement; /* --placement filter, -1 = all */
    uint64_t max;
    const xs_kv_t *conf;
    size_t n_conf;
    xs_registry_t *registry; /* NULL without schema.registry.url */
} tail_opts_t;

/* ======================================================================== */
/* Confluent schema ids                                                     */
/* ======================================================================== */

/* Ids the registry answered it does not have (a ring: a flood of one bad id
 * asks once); owned by the command, so no globals. */
typedef struct missing_ids {
    int32_t id[64];
    size_t n, next;
} missing_ids_t;

/*
 * When data is Confluent-framed with an id the codec does not know, asks
 * the registry for its schema and adds it as the writer of `kind`. Says
 * nothing on success; the decode that follows reports what still fails.
 */
static void resolve_confluent_id(const tail_opts_t *o, xs_codec_t *codec, missing_ids_t *missing,
                                 const uint8_t *data, size_t len, xs_event_kind_t kind)
{
    char *schema = NULL;
    char errstr[512];
    xs_err_t err = XS_ERR_IO;
    int32_t id;

    if (!o->registry || !data || len < 5 || data[0] != 0x00)
        return;
    id = (int32_t)((uint32_t)data[1] << 24 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 8 |
                   data[4]);
    if (xs_codec_has_confluent_id(codec, id))
        return;
    for (size_t i = 0; i < missing->n; i++)
        if (missing->id[i] == id)
            return;
    for (int attempt = 0; attempt < REGISTRY_ATTEMPTS && !xs_cli_stopping(); attempt++) {
        if (attempt)
            xs_cli_sleep_ms(REGISTRY_BACKOFF_MS << (attempt - 1));
        err = xs_registry_schema_by_id(o->registry, id, &schema, errstr, sizeof(errstr));
        if (err != XS_ERR_IO)
            break;
    }
    if (err == XS_OK)
        err = xs_codec_add_writer(codec, kind, schema, id, errstr, sizeof(errstr));
    if (err != XS_OK) {
        fprintf(stderr, "xsell tail: schema id %" PRId32 ": %s\n", id, errstr);
        if (err != XS_ERR_IO) { /* the registry answered: do not ask again */
            missing->id[missing->next++ % XS_ARRAY_SIZE(missing->id)] = id;
            if (missing->n < XS_ARRAY_SIZE(missing->id))
                missing->n++;
        }
    }
    free(schema);
}

/* schema.confluent.<id> = <Kind> <file.avsc>: the offline map of ids. */
static xs_err_t add_static_schema(void *opaque, int32_t id, const char *kind, const char *path,
                                  char *errstr, size_t errstr_size)
{
    xs_codec_t *codec = opaque;
    int k = !strcmp(kind, "ClickEvent")   ? XS_KIND_CLICK
            : !strcmp(kind, "CartEvent")  ? XS_KIND_CART
            : !strcmp(kind, "ItemUpdate") ? XS_KIND_ITEM
                                          : -1;
    xs_buf_t b = {0};
    char chunk[4096];
    size_t n;
    xs_err_t err;
    FILE *f;

    if (k < 0) {
        xs_err_set(errstr, errstr_size, "schema.confluent.%d: unknown kind '%s'", id, kind);
        return XS_ERR_CONFIG;
    }
    if (!(f = fopen(path, "rb"))) {
        xs_err_set(errstr, errstr_size, "schema.confluent.%d: cannot open %s", id, path);
        return XS_ERR_IO;
    }
    err = XS_OK;
    while (err == XS_OK && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        err = xs_buf_append(&b, chunk, n);
    fclose(f);
    if (err == XS_OK)
        err = xs_buf_append_u8(&b, 0);
    if (err == XS_OK)
        err = xs_codec_add_writer(codec, (xs_event_kind_t)k, (const char *)b.data, id, errstr,
                                  errstr_size);
    else
        xs_err_set(errstr, errstr_size, "out of memory");
    xs_buf_free(&b);
    return err;
}

static void tail_usage(FILE *out)
{
    fprintf(out,
            "usage: xsell tail (--bootstrap B | --bootstrap-file F) [--topic T]\n"
            "                  [--from-beginning] [--until-end] [--max N]\n"
            "                  [--catalog-topic T | --no-catalog] [--config F] [--set k=v]...\n"
            "                  [--registry URL] [-X key=value ...]\n\n"
            "Prints the cross-sell lists of topic T as JSON lines.\n\n"
            "  --topic T            default xsell.cross-sell\n"
            "  --from-beginning     start at the oldest list (default: only new lists)\n"
            "  --until-end          stop once the lists present at start are printed\n"
            "  --max N              stop after N lists\n"
            "  --catalog-topic T    titles from this topic (default xsell.catalog)\n"
            "  --no-catalog         print no titles\n"
            "  --format json|text   one JSON object per list (default) or a readable block\n"
            "  --placement P        only lists of PRODUCT_PAGE, CART, CHECKOUT or POST_PURCHASE "
            "(any case)\n"
            "  --config F           the worker's configuration: topics.*, schema.registry.*,\n"
            "                       schema.confluent.* (Confluent-framed records)\n"
            "  --set key=value      one configuration setting (repeatable)\n"
            "  --registry URL       Schema Registry for Confluent schema ids\n"
            "                       (as --set schema.registry.url=URL)\n"
            "  -X key=value         librdkafka consumer property (repeatable)\n");
}

static void report_undecodable(const xs_msg_t *msg, const char *what, const char *reason)
{
    fprintf(stderr, "xsell tail: %s[%d]@%" PRId64 ": undecodable %s: %s\n", msg->topic,
            (int)msg->partition, msg->offset, what, reason);
}

/*
 * Reads the catalog topic from the beginning to its end into map. Returns
 * XS_OK when loaded, else an error (errstr set) and the caller goes on
 * without titles.
 */
static xs_err_t load_catalog(const tail_opts_t *o, xs_codec_t *codec, missing_ids_t *missing,
                             title_map_t *map, char *errstr, size_t errstr_size)
{
    xs_consumer_opts_t copts;
    xs_consumer_t *consumer = NULL;
    const char *topics[1] = {o->catalog_topic};
    int64_t deadline = xs_cli_now_ms() + CATALOG_LOAD_MS;
    uint64_t records = 0, bad = 0;
    xs_err_t ret = XS_OK;

    memset(&copts, 0, sizeof(copts));
    copts.bootstrap = o->bootstrap;
    copts.topics = topics;
    copts.n_topics = 1;
    copts.start_offset = XS_OFFSET_BEGINNING;
    copts.conf = o->conf;
    copts.n_conf = o->n_conf;
    consumer = xs_consumer_new(&copts, errstr, errstr_size);
    if (!consumer)
        return XS_ERR_KAFKA;

    while (!xs_consumer_caught_up(consumer) && !xs_cli_stopping()) {
        xs_msg_t msg;
        xs_event_t ev;
        xs_event_kind_t kind;
        xs_framing_t framing;
        char reason[256];
        xs_err_t err;

        if (xs_cli_now_ms() >= deadline) {
            xs_err_set(errstr, errstr_size,
                       "catalog %s: not at its end after %d s (%" PRIu64 " records read)",
                       o->catalog_topic, CATALOG_LOAD_MS / 1000, records);
            ret = XS_ERR_KAFKA;
            goto out;
        }
        err = xs_consumer_poll(consumer, TAIL_POLL_MS, &msg, errstr, errstr_size);
        if (err == XS_ERR_EOF)
            continue;
        if (err != XS_OK) {
            ret = err;
            goto out;
        }
        records++;
        if (!msg.value)
            continue; /* tombstone */
        resolve_confluent_id(o, codec, missing, msg.value, msg.value_len, XS_KIND_ITEM);
        xs_event_init(&ev, XS_KIND_ITEM);
        err = xs_codec_decode(codec, msg.value, msg.value_len, XS_KIND_ITEM, &ev, &kind, &framing,
                              reason, sizeof(reason));
        if (err != XS_OK) {
            if (bad++ < 20)
                report_undecodable(&msg, "catalog record", reason);
            xs_event_clear(&ev);
            continue;
        }
        if (kind == XS_KIND_ITEM && ev.item_id &&
            title_map_put(map, ev.item_id, ev.title) != XS_OK) {
            xs_event_clear(&ev);
            xs_err_set(errstr, errstr_size, "catalog: out of memory");
            ret = XS_ERR_NOMEM;
            goto out;
        }
        xs_event_clear(&ev);
    }
    fprintf(stderr, "xsell tail: catalog %s: %zu items from %" PRIu64 " records%s\n",
            o->catalog_topic, map->n, records, bad ? " (some undecodable)" : "");

out:
    xs_consumer_destroy(consumer);
    return ret;
}

static xs_err_t json_str(xs_buf_t *out, const char *s)
{
    return s ? xs_json_write_string(out, s, strlen(s)) : xs_buf_append_str(out, "null");
}

/* Appends one list as a JSON object (no newline). map NULL: no titles. */
/* A readable block: the trigger, then one line per suggestion with the
 * titles of the items it is suggested for. */
static xs_err_t list_to_text(xs_buf_t *out, const xs_list_t *l, const title_map_t *map)
{
    xs_err_t err = XS_OK;
    time_t secs = (time_t)(l->generated_at / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&secs, &tm);
    strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
    err |=
        xs_buf_printf(out, "%s list for user %s after %s %s (%s UTC)%s%s%s%s\n",
                      xs_event_placement_name(l->placement), l->user_id, l->trigger_type,
                      l->trigger_event_id, when, l->arm ? "  [" : "",
                      l->experiment ? l->experiment : "", l->arm ? "/" : "", l->arm ? l->arm : "");
    for (int i = 0; i < l->n_trigger_items; i++) {
        const char *t = map ? title_map_get(map, l->trigger_items[i]) : NULL;
        err |= xs_buf_printf(out, "  %s %s%s%s\n", i ? "   " : "for", l->trigger_items[i],
                             t ? "  " : "", t ? t : "");
    }
    if (l->n_items == 0)
        err |= xs_buf_printf(out, "  (no suggestions)\n");
    for (int i = 0; i < l->n_items; i++) {
        const xs_rec_t *r = &l->items[i];
        const char *t = map ? title_map_get(map, r->item_id) : NULL;
        err |= xs_buf_printf(out, "  %2d. %-40.40s %-16s %8.2f", i + 1, t ? t : r->item_id,
                             xs_event_source_name(r->source), r->score);
        for (int k = 0; k < r->n_because; k++) {
            const char *bt = map ? title_map_get(map, r->because_of[k]) : NULL;
            err |=
                xs_buf_printf(out, "%s%s", k ? ", " : "  because of ", bt ? bt : r->because_of[k]);
        }
        err |= xs_buf_append_u8(out, '\n');
    }
    err |= xs_buf_append_u8(out, '\n');
    return err ? XS_ERR_NOMEM : XS_OK;
}

static xs_err_t list_to_json(xs_buf_t *out, const xs_list_t *l, const title_map_t *map)
{
    xs_err_t err = XS_OK;
#define J(expr)                                                                                    \
    do {                                                                                           \
        if ((err = (expr)) != XS_OK)                                                               \
            return err;                                                                            \
    } while (0)

    J(xs_buf_append_str(out, "{\"list_id\":"));
    J(json_str(out, l->list_id));
    J(xs_buf_append_str(out, ",\"user_id\":"));
    J(json_str(out, l->user_id));
    J(xs_buf_printf(out, ",\"generated_at\":%" PRId64, l->generated_at));
    J(xs_buf_append_str(out, ",\"trigger_event_id\":"));
    J(json_str(out, l->trigger_event_id));
    J(xs_buf_append_str(out, ",\"trigger_type\":"));
    J(json_str(out, l->trigger_type));
    J(xs_buf_append_str(out, ",\"trigger_items\":["));
    for (int i = 0; i < l->n_trigger_items; i++) {
        if (i)
            J(xs_buf_append_u8(out, ','));
        J(json_str(out, l->trigger_items[i]));
    }
    J(xs_buf_append_u8(out, ']'));
    if (map) {
        J(xs_buf_append_str(out, ",\"trigger_titles\":["));
        for (int i = 0; i < l->n_trigger_items; i++) {
            if (i)
                J(xs_buf_append_u8(out, ','));
            J(json_str(out, title_map_get(map, l->trigger_items[i])));
        }
        J(xs_buf_append_u8(out, ']'));
    }
    J(xs_buf_append_str(out, ",\"placement\":"));
    J(json_str(out, xs_event_placement_name(l->placement)));
    J(xs_buf_append_str(out, ",\"experiment\":"));
    J(json_str(out, l->experiment));
    J(xs_buf_append_str(out, ",\"arm\":"));
    J(json_str(out, l->arm));
    J(xs_buf_append_str(out, ",\"items\":["));
    for (int i = 0; i < l->n_items; i++) {
        const xs_rec_t *r = &l->items[i];
        if (i)
            J(xs_buf_append_u8(out, ','));
        J(xs_buf_append_str(out, "{\"item_id\":"));
        J(json_str(out, r->item_id));
        if (map) {
            J(xs_buf_append_str(out, ",\"title\":"));
            J(json_str(out, title_map_get(map, r->item_id)));
        }
        if (isfinite(r->score))
            J(xs_buf_printf(out, ",\"score\":%.17g", r->score));
        else
            J(xs_buf_append_str(out, ",\"score\":null"));
        J(xs_buf_append_str(out, ",\"source\":"));
        J(json_str(out, xs_event_source_name(r->source)));
        J(xs_buf_append_str(out, ",\"because_of\":["));
        for (int b = 0; b < r->n_because; b++) {
            if (b)
                J(xs_buf_append_u8(out, ','));
            J(json_str(out, r->because_of[b]));
        }
        J(xs_buf_append_str(out, "]}"));
    }
    J(xs_buf_append_str(out, "],\"model_name\":"));
    J(json_str(out, l->model_name));
    J(xs_buf_append_str(out, ",\"model_version\":"));
    J(json_str(out, l->model_version));
    J(xs_buf_append_u8(out, '}'));
#undef J
    return XS_OK;
}

int xs_cli_tail(int argc, char **argv)
{
    enum {
        OPT_BOOTSTRAP = 256,
        OPT_BOOTSTRAP_FILE,
        OPT_TOPIC,
        OPT_FROM_BEGINNING,
        OPT_UNTIL_END,
        OPT_MAX,
        OPT_CATALOG,
        OPT_NO_CATALOG,
        OPT_FORMAT,
        OPT_PLACEMENT,
        OPT_CONFIG,
        OPT_SET,
        OPT_REGISTRY
    };
    static const struct option longopts[] = {
        {"bootstrap", required_argument, NULL, OPT_BOOTSTRAP},
        {"bootstrap-file", required_argument, NULL, OPT_BOOTSTRAP_FILE},
        {"topic", required_argument, NULL, OPT_TOPIC},
        {"from-beginning", no_argument, NULL, OPT_FROM_BEGINNING},
        {"until-end", no_argument, NULL, OPT_UNTIL_END},
        {"max", required_argument, NULL, OPT_MAX},
        {"catalog-topic", required_argument, NULL, OPT_CATALOG},
        {"no-catalog", no_argument, NULL, OPT_NO_CATALOG},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"placement", required_argument, NULL, OPT_PLACEMENT},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"set", required_argument, NULL, OPT_SET},
        {"registry", required_argument, NULL, OPT_REGISTRY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    tail_opts_t o;
    xs_cli_kvs_t kvs = {0};
    xs_codec_t *codec = NULL;
    xs_consumer_t *consumer = NULL;
    xs_consumer_opts_t copts;
    title_map_t map = {0};
    missing_ids_t missing = {0};
    xs_config_t *cfg = NULL;
    bool have_catalog = false, no_catalog = false, catalog_given = false, topic_given = false;
    bool config_given = false;
    const char *bootstrap_arg = NULL, *bootstrap_file = NULL;
    const char *topics[1];
    char *bootstrap = NULL;
    xs_buf_t line = {0};
    xs_list_t list;
    uint64_t printed = 0;
    char errstr[512];
    xs_err_t err;
    int opt, rc = 0;

    memset(&o, 0, sizeof(o));
    o.topic = "xsell.cross-sell";
    o.catalog_topic = "xsell.catalog";
    o.placement = -1;
    xs_event_list_init(&list);
    if (!(cfg = xs_config_new()))
        goto nomem;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "X:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_BOOTSTRAP:
            bootstrap_arg = optarg;
            break;
        case OPT_BOOTSTRAP_FILE:
            bootstrap_file = optarg;
            break;
        case OPT_TOPIC:
            o.topic = optarg;
            topic_given = true;
            break;
        case OPT_CONFIG:
            if (xs_config_load_file(cfg, optarg, errstr, sizeof(errstr)) != XS_OK)
                goto usage_error;
            config_given = true;
            break;
        case OPT_SET:
            if (xs_config_set_pair(cfg, optarg, "--set", errstr, sizeof(errstr)) != XS_OK)
                goto usage_error;
            config_given = true;
            break;
        case OPT_REGISTRY: {
            char pair[1024];
            snprintf(pair, sizeof(pair), "schema.registry.url=%s", optarg);
            if (xs_config_set_pair(cfg, pair, "--registry", errstr, sizeof(errstr)) != XS_OK)
                goto usage_error;
            break;
        }
        case OPT_FROM_BEGINNING:
            o.from_beginning = true;
            break;
        case OPT_UNTIL_END:
            o.until_end = true;
            break;
        case OPT_MAX:
            if (!xs_cli_parse_u64("--max", optarg, &o.max, errstr, sizeof(errstr)) || o.max == 0) {
                if (o.max == 0)
                    snprintf(errstr, sizeof(errstr), "--max: must be at least 1");
                goto usage_error;
            }
            break;
        case OPT_CATALOG:
            o.catalog_topic = optarg;
            catalog_given = true;
            break;
        case OPT_NO_CATALOG:
            no_catalog = true;
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") && strcmp(optarg, "text")) {
                snprintf(errstr, sizeof(errstr), "--format: '%s' is not json or text", optarg);
                goto usage_error;
            }
            o.text = !strcmp(optarg, "text");
            break;
        case OPT_PLACEMENT: {
            /* case-insensitive, like the HTTP API's placement parameter */
            char upper[32] = "";
            size_t len = strlen(optarg);
            for (size_t i = 0; len < sizeof(upper) && i <= len; i++)
                upper[i] = (char)toupper((unsigned char)optarg[i]);
            if ((o.placement = xs_event_placement_from_name(upper)) < 0) {
                snprintf(errstr, sizeof(errstr), "--placement: unknown placement '%s'", optarg);
                goto usage_error;
            }
            break;
        }
        case 'X':
            if ((err = xs_cli_kvs_add(&kvs, optarg, errstr, sizeof(errstr))) != XS_OK) {
                if (err == XS_ERR_NOMEM)
                    goto nomem;
                goto usage_error;
            }
            break;
        case 'h':
            tail_usage(stdout);
            goto out;
        default:
            tail_usage(stderr);
            rc = 2;
            goto out;
        }
    }
    if (optind < argc) {
        snprintf(errstr, sizeof(errstr), "unexpected argument '%s'", argv[optind]);
        goto usage_error;
    }
    if (no_catalog && catalog_given) {
        snprintf(errstr, sizeof(errstr), "--catalog-topic and --no-catalog exclude each other");
        goto usage_error;
    }
    if (config_given && !topic_given)
        o.topic = xs_config_str(cfg, "topics.output");
    if (config_given && !catalog_given)
        o.catalog_topic = xs_config_str(cfg, "topics.catalog");
    if (no_catalog)
        o.catalog_topic = NULL;
    o.conf = kvs.kv;
    o.n_conf = kvs.n;

    xs_cli_install_signals();
    if ((err = xs_cli_bootstrap(bootstrap_arg, bootstrap_file, 10000, &bootstrap, errstr,
                                sizeof(errstr))) != XS_OK) {
        if (err == XS_ERR_INVALID)
            goto usage_error;
        fprintf(stderr, "xsell tail: %s\n", errstr);
        rc = 1;
        goto out;
    }
    o.bootstrap = bootstrap;
    codec = xs_codec_new(errstr, sizeof(errstr));
    if (!codec) {
        fprintf(stderr, "xsell tail: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if (xs_config_each_confluent_schema(cfg, add_static_schema, codec, errstr, sizeof(errstr)) !=
        XS_OK) {
        fprintf(stderr, "xsell tail: %s\n", errstr);
        rc = 1;
        goto out;
    }
    if (*xs_config_str(cfg, "schema.registry.url")) {
        xs_registry_opts_t ro;
        xs_config_registry_opts(cfg, &ro);
        if (!(o.registry = xs_registry_new(&ro, errstr, sizeof(errstr)))) {
            fprintf(stderr, "xsell tail: %s\n", errstr);
            rc = 1;
            goto out;
        }
    }

    if (o.catalog_topic) {
        err = load_catalog(&o, codec, &missing, &map, errstr, sizeof(errstr));
        if (err == XS_OK)
            have_catalog = true;
        else if (!xs_cli_stopping())
            fprintf(stderr, "xsell tail: no titles: %s\n", errstr);
    }
    if (xs_cli_stopping())
        goto out;

    memset(&copts, 0, sizeof(copts));
    topics[0] = o.topic;
    copts.bootstrap = o.bootstrap;
    copts.topics = topics;
    copts.n_topics = 1;
    copts.start_offset = o.from_beginning ? XS_OFFSET_BEGINNING : XS_OFFSET_END;
    copts.conf = o.conf;
    copts.n_conf = o.n_conf;
    consumer = xs_consumer_new(&copts, errstr, sizeof(errstr));
    if (!consumer) {
        fprintf(stderr, "xsell tail: %s\n", errstr);
        rc = 1;
        goto out;
    }

    while (!xs_cli_stopping()) {
        xs_msg_t msg;
        char reason[256];

        if (o.until_end && xs_consumer_caught_up(consumer))
            break;
        err = xs_consumer_poll(consumer, TAIL_POLL_MS, &msg, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF)
            continue;
        if (err != XS_OK) {
            fprintf(stderr, "xsell tail: %s\n", errstr);
            rc = 1;
            break;
        }
        if (!msg.value)
            continue;
        xs_event_list_clear(&list);
        resolve_confluent_id(&o, codec, &missing, msg.value, msg.value_len, XS_KIND_LIST);
        if (xs_codec_decode_list(codec, msg.value, msg.value_len, &list, reason, sizeof(reason)) !=
            XS_OK) {
            report_undecodable(&msg, "CrossSellList", reason);
            continue;
        }
        if (o.placement >= 0 && (int)list.placement != o.placement)
            continue;
        xs_buf_reset(&line);
        if (o.text ? list_to_text(&line, &list, have_catalog ? &map : NULL) != XS_OK
                   : (list_to_json(&line, &list, have_catalog ? &map : NULL) != XS_OK ||
                      xs_buf_append_u8(&line, '\n') != XS_OK))
            goto nomem;
        if (fwrite(line.data, 1, line.len, stdout) != line.len || fflush(stdout) != 0) {
            if (errno != EPIPE) {
                fprintf(stderr, "xsell tail: stdout: %s\n", strerror(errno));
                rc = 1;
            }
            break;
        }
        if (o.max && ++printed >= o.max)
            break;
    }
    goto out;

nomem:
    fprintf(stderr, "xsell tail: out of memory\n");
    rc = 1;
    goto out;
usage_error:
    fprintf(stderr, "xsell tail: %s\n", errstr);
    tail_usage(stderr);
    rc = 2;
out:
    xs_consumer_destroy(consumer);
    xs_codec_destroy(codec);
    xs_registry_destroy(o.registry);
    xs_config_destroy(cfg);
    xs_event_list_clear(&list);
    title_map_free(&map);
    xs_buf_free(&line);
    xs_cli_kvs_free(&kvs);
    free(bootstrap);
    return rc;
}
