/*
 * config.c — the configuration table, file parser and typed getters.
 * See include/xsell/config.h.
 */
#include "xsell/config.h"
#include "xsell/json.h"
#include "xsell/registry.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "xsell/http.h"

typedef enum { T_STR, T_INT, T_DOUBLE, T_BOOL, T_ENUM, T_ADDR } xs_ctype_t;

typedef struct key_def {
    const char *key;
    xs_ctype_t type;
    const char *def;
    double min, max;     /* T_INT, T_DOUBLE */
    const char *choices; /* T_ENUM: "a|b|c" */
    const char *desc;
} key_def_t;

#define GiB (1024.0 * 1024 * 1024)

static const key_def_t keys[] = {
    {"group.id", T_STR, "xsell", 0, 0, NULL,
     "Kafka consumer group of the workers (instances sharing it split the partitions)."},
    {"group.instance.id", T_STR, "", 0, 0, NULL,
     "Static membership (KIP-345): this instance's id in the group, unique in the group and "
     "stable across its restarts. A worker stopped and started again within "
     "kafka.session.timeout.ms (6000 by default) gets its partitions back and the other "
     "instances see no rebalance (a rolling restart); one that stays away longer is removed "
     "from the group when its session times out, and its partitions move then. Empty: "
     "dynamic membership (a stopped worker leaves the group at once and the others "
     "rebalance). See docs/SCALING.md, \"Rebalancing\"."},
    {"topics.clicks", T_STR, "xsell.clicks", 0, 0, NULL,
     "Input topic of ClickEvent records, keyed by user_id."},
    {"topics.cart", T_STR, "xsell.cart", 0, 0, NULL,
     "Input topic of CartEvent records, keyed by user_id; same partition count as "
     "topics.clicks so a user's events land on the same partition number."},
    {"topics.catalog", T_STR, "xsell.catalog", 0, 0, NULL,
     "Input topic of ItemUpdate records, keyed by item_id (empty: no catalog)."},
    {"topics.output", T_STR, "xsell.cross-sell", 0, 0, NULL,
     "Output topic of CrossSellList records, keyed by user_id."},
    {"topics.dlq", T_STR, "xsell.dlq", 0, 0, NULL,
     "Dead-letter topic: original bytes of rejected input with an xsell.reason header."},
    {"topics.bare", T_STR, "", 0, 0, NULL,
     "Comma-separated input topics whose messages are bare Avro bodies (no framing) written "
     "with the reader schema of the topic's kind."},
    {"output.framing", T_ENUM, "single-object", 0, 0, "single-object|confluent",
     "Framing of the output lists: Avro single-object encoding, or the Confluent wire format "
     "with CrossSellList registered in schema.registry.url under `<topics.output>-value` "
     "(TopicNameStrategy), readable by Kafka Connect, ksqlDB and any registry-aware consumer."},
    {"output.headers.copy", T_STR, "traceparent,tracestate", 0, 0, NULL,
     "Comma-separated header names (up to 8) copied from the triggering input message onto "
     "its list (W3C trace context by default). Every list also carries content-type "
     "(application/vnd.apache.avro+binary), xsell.framing and, with Confluent framing, "
     "xsell.schema.id."},
    {"schema.registry.url", T_STR, "", 0, 0, NULL,
     "Confluent Schema Registry REST API (e.g. http://registry:8081, or Apicurio's "
     "http://host:8080/apis/ccompat/v7): a Confluent-framed input message of an unknown id "
     "fetches that id's writer schema once (then cached); schema.confluent.<id> mappings still "
     "apply first, as an offline fallback. Empty: no registry."},
    {"schema.registry.basic.auth.user", T_STR, "", 0, 0, NULL, "Registry HTTP basic auth user."},
    {"schema.registry.basic.auth.password", T_STR, "", 0, 0, NULL,
     "Registry HTTP basic auth password (never printed)."},
    {"schema.registry.bearer.token", T_STR, "", 0, 0, NULL,
     "Registry bearer token (Authorization: Bearer; never printed); instead of basic auth."},
    {"schema.registry.ssl.ca.location", T_STR, "", 0, 0, NULL,
     "CA bundle (PEM) to verify an https registry; empty: the system's."},
    {"schema.registry.ssl.certificate.location", T_STR, "", 0, 0, NULL,
     "Client certificate (PEM) for the registry; empty: none."},
    {"schema.registry.ssl.key.location", T_STR, "", 0, 0, NULL,
     "Private key (PEM) of that certificate."},
    {"schema.registry.timeout.ms", T_INT, "10000", 100, 600000, NULL,
     "Timeout of one registry request."},
    {"schema.registry.retry.max.ms", T_INT, "30000", 100, 3600000, NULL,
     "A registry that cannot be reached (refused, timeout, 5xx) is retried with exponential "
     "backoff from 100 ms up to this interval, for as long as it takes: the message waiting "
     "for its schema is never dead-lettered because the registry blinked."},
    {"input.offset.out_of_range", T_ENUM, "fail", 0, 0, "fail|skip",
     "An input partition whose stored offset is below its low watermark (the input was "
     "deleted, e.g. by retention, before it was consumed): `fail` stops the worker (exit "
     "status 5), `skip` goes on from the low watermark; both log an error and count the lost "
     "messages in xsell_input_lost_messages_total."},
    {"broker.unreachable.timeout.ms", T_INT, "60000", 0, 86400000, NULL,
     "With --until-end: give up (exit status 4) once no Kafka broker has been reachable for "
     "this long; 0 waits forever."},
    {"state.dir", T_STR, "xsell-state", 0, 0, NULL, "RocksDB state directory."},
    {"changelog.enable", T_BOOL, "false", 0, 0, NULL,
     "Write every checkpoint's changed profiles and input offsets, in one Kafka transaction, "
     "to the compacted users changelog, and restore a partition assigned without (or with "
     "older) local state from it before processing (docs/SCALING.md). Needs a broker with "
     "transactions; off: user state stays on the local disk only (one instance per group, or "
     "a partition that moves is replayed from its first offset)."},
    {"changelog.topic", T_STR, "", 0, 0, NULL,
     "The users changelog topic; empty: <group.id>-users-changelog. Created when missing "
     "(cleanup.policy=compact, the input's partition count)."},
    {"changelog.transactional.id", T_STR, "", 0, 0, NULL,
     "Transactional id of the changelog writer, unique per instance and stable across its "
     "restarts (a restart fences the previous one and aborts what it left open); empty: "
     "<changelog topic>-<host name>-<hash of state.dir>."},
    {"items.global", T_BOOL, "false", 0, 0, NULL,
     "Global item knowledge for several instances in one group (docs/SCALING.md): every "
     "checkpoint also sends, in its changelog transaction, what its users taught about items "
     "(pre-aggregated pair deltas per input partition) to the pair deltas topic, and every "
     "instance reads that topic and the catalog in full into its item state. Needs "
     "changelog.enable=true. Off: an instance learns items from its own partitions only."},
    {"items.deltas.topic", T_STR, "", 0, 0, NULL,
     "With items.global: the pair deltas topic; empty: <group.id>-pair-deltas. Created when "
     "missing (the input's partition count, retention.ms=-1: an instance on an empty disk "
     "reads it from its start)."},
    {"changelog.restore.timeout.ms", T_INT, "60000", 1000, 3600000, NULL,
     "A restore (or the start of the changelog writer) fails after this long without "
     "progress."},
    {"state.sync", T_BOOL, "false", 0, 0, NULL,
     "fsync the RocksDB WAL at every checkpoint (survives power loss, not just crashes)."},
    {"commit.interval.ms", T_INT, "1000", 10, 3600000, NULL,
     "Checkpoint interval: the state at an instant and its offsets written in one batch "
     "once the producer acknowledged its lists, offsets committed to Kafka."},
    {"checkpoint.dirty.bytes", T_INT, "67108864", 4096, 64 * GiB, NULL,
     "Checkpoint early when this many bytes of cached state are dirty."},
    {"cache.max.bytes", T_INT, "536870912", 1048576, 1024 * GiB, NULL,
     "Budget of the write-back cache of profiles, sketches and names."},
    {"model.half_life.hours", T_DOUBLE, "720", 0.01, 1e6, NULL,
     "Half-life of user affinities (event time)."},
    {"model.window.hours", T_DOUBLE, "720", 0.01, 1e6, NULL,
     "Co-occurrence window: items a user touched within this time form pairs."},
    {"model.kmax", T_INT, "24", 1, 24, NULL,
     "At most this many recent items pair with a new interaction (work per event)."},
    {"model.similarity", T_ENUM, "llr", 0, 0, "llr|cosine|jaccard|lift|llr-cosine|count|confidence",
     "Neighbour ranking measure."},
    {"model.llr_min", T_DOUBLE, "3.84", 0, 1e9, NULL, "LLR threshold of llr-cosine."},
    {"model.min_support", T_INT, "0", 0, 1000000, NULL,
     "Minimum co-occurrence count (guaranteed lower bound) for a neighbour; 0: set per item "
     "from its own statistics (2 for an item with fewer than 32 partners that recur, at "
     "least twice as many pairs as partners; 1 otherwise: in a long tail single "
     "co-occurrences are the evidence)."},
    {"model.viewed_weight", T_DOUBLE, "0.3", 0, 10, NULL,
     "Weight of VIEWED_TOGETHER evidence relative to BOUGHT_TOGETHER."},
    {"model.normalize", T_BOOL, "false", 0, 0, NULL,
     "Scale each context item's neighbour similarities to a maximum of 1, so the context "
     "weights (trigger, cart, purchases, views) rather than the raw LLR magnitudes decide."},
    {"model.category_boost", T_DOUBLE, "0.2", 0, 10, NULL,
     "Score boost for candidates in the user's favourite categories."},
    {"model.popularity_prior", T_DOUBLE, "4", 0, 100, NULL,
     "Popularity prior: the decayed best-sellers join a list's candidates with this x odds^2 "
     "x the best co-occurrence score x their weight relative to the top seller; odds = s/(1-s), "
     "s the ten best-sellers' share of recent purchases (the engine measures it): weight where "
     "demand is concentrated, almost none in a long tail. 0: off."},
    {"model.max_context", T_INT, "12", 1, 64, NULL,
     "The scorer reads the neighbour lists of this many context items (trigger, cart, "
     "purchases, views; the heaviest first): the main cost per list (docs/BENCHMARKS.md)."},
    {"list.length.product_page", T_INT, "4", 0, 20, NULL, "Items on PRODUCT_PAGE lists."},
    {"list.length.cart", T_INT, "6", 0, 20, NULL, "Items on CART lists."},
    {"list.length.checkout", T_INT, "3", 0, 20, NULL, "Items on CHECKOUT lists."},
    {"list.length.post_purchase", T_INT, "6", 0, 20, NULL,
     "Items on POST_PURCHASE lists (post-purchase email)."},
    {"list.category_cap", T_INT, "2", 0, 20, NULL, "Max items per category in a list (0: no cap)."},
    {"list.family_cap", T_INT, "1", 0, 20, NULL,
     "Max items per product family (ItemUpdate.family: colour/print variants) in a list "
     "(0: no cap)."},
    {"list.family_exclude", T_BOOL, "true", 0, 0, NULL,
     "On CART, CHECKOUT and POST_PURCHASE lists (complements), no item of the family of a "
     "trigger item or of a cart line; PRODUCT_PAGE lists may show variants (family_cap applies)."},
    {"list.rebuy_days", T_DOUBLE, "30", 0, 365, NULL,
     "Items bought within this many days are not suggested (unless repurchasable), whatever "
     "the length of the purchase history (purchases beyond the profile's items are kept in "
     "time-bucketed Bloom filters)."},
    {"list.suppress_minutes", T_DOUBLE, "10", 0, 100000, NULL,
     "An identical list for the same user and placement is not re-published within this time."},
    {"list.trending_backfill", T_BOOL, "true", 0, 0, NULL,
     "Fill short lists (cold start) with trending items, marked TRENDING."},
    {"limits.max_message_bytes", T_INT, "1048576", 64, 64 * 1048576.0, NULL,
     "Input messages larger than this go to the dead-letter topic."},
    {"limits.max_id_len", T_INT, "256", 8, 65536, NULL, "Longest accepted id or string field."},
    {"limits.max_lines", T_INT, "1000", 1, 1000000, NULL, "Most lines accepted in one CartEvent."},
    {"limits.min_ts", T_INT, "946684800000", 0, 9e15, NULL,
     "Earliest accepted event time (ms since epoch; default 2000-01-01)."},
    {"limits.max_ts", T_INT, "4102444800000", 0, 9e15, NULL,
     "Latest accepted event time (ms since epoch; default 2100-01-01)."},
    {"experiment.name", T_STR, "", 0, 0, NULL,
     "A/B experiment written on every list (empty: no experiment)."},
    {"experiment.salt", T_STR, "xsell", 0, 0, NULL,
     "Salt of the arm assignment: arm = f(XXH3(salt, user_id)); change it to reshuffle."},
    {"experiment.arms", T_STR, "", 0, 0, NULL,
     "Arms and traffic shares, e.g. `control:10,cooc:90`. Each arm may override scoring "
     "keys with `experiment.arm.<arm>.<key>` (model.similarity, model.min_support, "
     "model.viewed_weight, model.category_boost, model.normalize, model.max_context, list.*) "
     "and `experiment.arm.<arm>.popularity_only = true` (a trending-only control arm)."},
    {"http.address", T_ADDR, "127.0.0.1:8080", 0, 0, NULL,
     "HTTP endpoint (/metrics, /healthz, /readyz, /v1 queries) as host:port or [v6]:port; "
     "loopback by default; port 0 picks a free port; empty: no HTTP server."},
    {"http.port.file", T_STR, "", 0, 0, NULL,
     "When set, the bound HTTP address (host:port, with the actual port) is written to this "
     "file once the server listens (for port 0)."},
    {"http.max.connections", T_INT, "64", 1, 10000, NULL,
     "Concurrent HTTP connections. When fewer than 1/8 of them (at least 1) are free, a new "
     "connection closes the one that has waited longest without a request in progress "
     "(slow or idle clients), so health probes always get a slot."},
    {"http.timeout.seconds", T_INT, "10", 1, 3600, NULL,
     "Idle HTTP connections are closed "
     "after this time."},
    {"http.events.enabled", T_BOOL, "false", 0, 0, NULL,
     "Serve POST /v1/events: JSON batches of click, cart and catalog events, validated as "
     "Kafka input is and produced as Avro to the input topics (needs http.auth.token.file)."},
    {"http.auth.token.file", T_STR, "", 0, 0, NULL,
     "File whose first line is the bearer token (at least 16 bytes) that write endpoints "
     "(POST /v1/events) require in `Authorization: Bearer <token>`; compared in constant time."},
    {"http.events.max.bytes", T_INT, "1048576", 1024, 67108864, NULL,
     "Largest POST /v1/events body; larger ones are answered 413 (a larger Content-Length "
     "before any byte is read)."},
    {"http.shop.dir", T_STR, "", 0, 0, NULL,
     "Directory of the demo shop's static pages, served under /shop/ (`shop/` in the source "
     "tree; `make demo-serve` sets it); empty: not served."},
    {"http.events.rate", T_INT, "1000", 0, 10000000, NULL,
     "Events per second accepted over HTTP (a token bucket holding one second's worth); "
     "batches beyond it are answered 429 with Retry-After; 0: no limit."},
    {"members.enabled", T_BOOL, "false", 0, 0, NULL,
     "Queries over the group (docs/ARCHITECTURE.md): publish this instance's partitions of "
     "topics.clicks and its http.advertised URL to the compacted topic `<group.id>-members` "
     "(created when missing), read every instance's, and forward GET "
     "/v1/users/{id}/cross-sell for a user of another instance's partition to it. Needs "
     "http.address."},
    {"members.http.address", T_ADDR, "", 0, 0, NULL,
     "With members.enabled: the listener of the queries other instances forward here (its "
     "own server thread; the queries, /healthz and /readyz), host:port. Empty: "
     "http.address's host, any free port."},
    {"http.advertised", T_STR, "", 0, 0, NULL,
     "Base URL other instances forward user queries to, the members.http.address listener "
     "as they reach it (e.g. http://10.0.0.7:8081); it is also the instance's id in "
     "`<group.id>-members`. Empty: http://<the bound members.http.address> (a wildcard "
     "address such as 0.0.0.0 is not reachable: set this then)."},
    {"input.partitioner", T_ENUM, "consistent_random", 0, 0,
     "consistent_random|consistent|murmur2_random|murmur2|fnv1a_random|fnv1a",
     "The partitioner of the producers of topics.clicks and topics.cart, by librdkafka's "
     "name: which partition, hence which instance, a user id belongs to. librdkafka's default "
     "(`xsell produce`, POST /v1/events) is consistent_random (CRC32 of the key); Java "
     "clients' default is murmur2_random."},
    {"metrics.attribution.lists", T_INT, "65536", 16, 16777216, NULL,
     "Published lists remembered (list_id -> arm, ring buffer, about 40 bytes each) to "
     "attribute clicks and purchases carrying a list_id to an experiment arm; older lists "
     "are forgotten and counted as unattributed."},
    {"log.level", T_ENUM, "info", 0, 0, "debug|info|warn|error", "Log level."},
    {"log.format", T_ENUM, "logfmt", 0, 0, "logfmt|json",
     "Log lines on stderr: logfmt (`ts level=info msg=\"...\" key=value`, values escaped) or "
     "json (one object per line: ts, level, msg, then the fields)."},
    {"log.progress.seconds", T_DOUBLE, "5", 0, 86400, NULL,
     "Interval of progress lines (events/s, lag); 0 disables."},
};

typedef struct entry {
    char *key;
    char *value;
} entry_t;

struct xs_config {
    entry_t *entries;
    size_t n, cap;
    xs_kv_t *pt; /* passthrough scratch */
    size_t n_pt;
};

static const key_def_t *find_def(const char *key)
{
    for (size_t i = 0; i < XS_ARRAY_SIZE(keys); i++)
        if (strcmp(keys[i].key, key) == 0)
            return &keys[i];
    return NULL;
}

xs_config_t *xs_config_new(void)
{
    return calloc(1, sizeof(xs_config_t));
}

void xs_config_destroy(xs_config_t *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n; i++) {
        free(cfg->entries[i].key);
        free(cfg->entries[i].value);
    }
    free(cfg->entries);
    free(cfg->pt);
    free(cfg);
}

static bool parse_int(const char *s, int64_t *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s)
        return false;
    /* Size suffixes for convenience: k, m, g (binary). */
    int64_t mult = 1;
    if (*end == 'k' || *end == 'K')
        mult = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mult = 1024 * 1024, end++;
    else if (*end == 'g' || *end == 'G')
        mult = 1024 * 1024 * 1024, end++;
    if (*end)
        return false;
    if (v > INT64_MAX / mult || v < INT64_MIN / mult)
        return false;
    *out = v * mult;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes") || !strcmp(s, "on"))
        return (*out = true), true;
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no") || !strcmp(s, "off"))
        return (*out = false), true;
    return false;
}

static bool in_choices(const char *choices, const char *v)
{
    size_t len = strlen(v);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t l = bar ? (size_t)(bar - p) : strlen(p);
        if (l == len && strncmp(p, v, l) == 0)
            return true;
        if (!bar)
            break;
        p = bar + 1;
    }
    return false;
}

/* Scoring keys (settings.c applies them to the base parameters and to each arm's). */
static const char *const scoring_keys[] = {
    "model.similarity",    "model.llr_min",          "model.min_support",
    "model.viewed_weight", "model.category_boost",   "model.normalize",
    "model.max_context",   "model.popularity_prior", "list.length.product_page",
    "list.length.cart",    "list.length.checkout",   "list.length.post_purchase",
    "list.category_cap",   "list.family_cap",        "list.family_exclude",
    "list.rebuy_days",     "list.suppress_minutes",  "list.trending_backfill"};

const char *const *xs_config_arm_keys(size_t *n)
{
    *n = XS_ARRAY_SIZE(scoring_keys);
    return scoring_keys;
}

static xs_err_t validate(const char *key, const char *value, const char *origin, char *errstr,
                         size_t errstr_size)
{
    const char *o = origin ? origin : "config";
    if (!strncmp(key, "kafka.", 6) || !strncmp(key, "rocksdb.", 8)) {
        if (!key[strncmp(key, "kafka.", 6) ? 8 : 6]) {
            xs_err_set(errstr, errstr_size, "%s: empty key after prefix in '%s'", o, key);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    }
    if (!strncmp(key, "experiment.arm.", 15)) {
        const char *arm = key + 15, *dot = strchr(arm, '.');
        if (!dot || dot == arm || dot - arm >= 32) {
            xs_err_set(errstr, errstr_size, "%s: '%s': expected experiment.arm.<arm>.<key>", o,
                       key);
            return XS_ERR_CONFIG;
        }
        const char *param = dot + 1;
        if (!strcmp(param, "popularity_only")) {
            bool b;
            if (!parse_bool(value, &b)) {
                xs_err_set(errstr, errstr_size, "%s: %s: '%s' is not a boolean", o, key, value);
                return XS_ERR_CONFIG;
            }
            return XS_OK;
        }
        size_t n_arm_keys = 0;
        const char *const *arm_keys = xs_config_arm_keys(&n_arm_keys);
        for (size_t i = 0; i < n_arm_keys; i++)
            if (!strcmp(param, arm_keys[i]))
                return validate(param, value, origin, errstr, errstr_size);
        xs_err_set(errstr, errstr_size, "%s: '%s': an arm cannot override '%s'", o, key, param);
        return XS_ERR_CONFIG;
    }
    if (!strncmp(key, "schema.confluent.", 17)) {
        int64_t id;
        char kind[64], path[4];
        if (!parse_int(key + 17, &id) || id < 0 || id > INT32_MAX) {
            xs_err_set(errstr, errstr_size, "%s: '%s': schema id must be a non-negative integer", o,
                       key);
            return XS_ERR_CONFIG;
        }
        if (sscanf(value, "%63s %3s", kind, path) != 2) {
            xs_err_set(errstr, errstr_size,
                       "%s: %s: expected '<ClickEvent|CartEvent|ItemUpdate> <file.avsc>'", o, key);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    }
    const key_def_t *d = find_def(key);
    if (!d) {
        xs_err_set(errstr, errstr_size, "%s: unknown key '%s'", o, key);
        return XS_ERR_CONFIG;
    }
    int64_t iv;
    double dv;
    bool bv;
    switch (d->type) {
    case T_STR:
        return XS_OK;
    case T_INT:
        if (!parse_int(value, &iv)) {
            xs_err_set(errstr, errstr_size, "%s: %s: '%s' is not an integer", o, key, value);
            return XS_ERR_CONFIG;
        }
        if ((double)iv < d->min || (double)iv > d->max) {
            xs_err_set(errstr, errstr_size, "%s: %s: %" PRId64 " is out of range [%.0f, %.0f]", o,
                       key, iv, d->min, d->max);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    case T_DOUBLE:
        if (!parse_double(value, &dv)) {
            xs_err_set(errstr, errstr_size, "%s: %s: '%s' is not a number", o, key, value);
            return XS_ERR_CONFIG;
        }
        if (dv < d->min || dv > d->max) {
            xs_err_set(errstr, errstr_size, "%s: %s: %g is out of range [%g, %g]", o, key, dv,
                       d->min, d->max);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    case T_BOOL:
        if (!parse_bool(value, &bv)) {
            xs_err_set(errstr, errstr_size, "%s: %s: '%s' is not a boolean (true/false)", o, key,
                       value);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    case T_ADDR: {
        char host[256];
        int port;
        if (*value && !xs_http_split_address(value, host, sizeof(host), &port)) {
            xs_err_set(errstr, errstr_size,
                       "%s: %s: '%s' is not host:port ([v6]:port for IPv6, port 0..65535, "
                       "empty to disable)",
                       o, key, value);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    }
    case T_ENUM:
        if (!in_choices(d->choices, value)) {
            xs_err_set(errstr, errstr_size, "%s: %s: '%s' is not one of %s", o, key, value,
                       d->choices);
            return XS_ERR_CONFIG;
        }
        return XS_OK;
    }
    return XS_OK;
}

xs_err_t xs_config_set(xs_config_t *cfg, const char *key, const char *value, const char *origin,
                       char *errstr, size_t errstr_size)
{
    xs_err_t err = validate(key, value, origin, errstr, errstr_size);
    if (err)
        return err;
    for (size_t i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->entries[i].key, key) == 0) {
            char *v = xs_str_dup(value);
            if (!v)
                return XS_ERR_NOMEM;
            free(cfg->entries[i].value);
            cfg->entries[i].value = v;
            return XS_OK;
        }
    }
    if (cfg->n == cfg->cap) {
        size_t cap = cfg->cap ? cfg->cap * 2 : 32;
        entry_t *e = realloc(cfg->entries, cap * sizeof(*e));
        if (!e)
            return XS_ERR_NOMEM;
        cfg->entries = e;
        cfg->cap = cap;
    }
    entry_t *e = &cfg->entries[cfg->n];
    e->key = xs_str_dup(key);
    e->value = xs_str_dup(value);
    if (!e->key || !e->value) {
        free(e->key);
        free(e->value);
        return XS_ERR_NOMEM;
    }
    cfg->n++;
    return XS_OK;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static xs_err_t set_line(xs_config_t *cfg, char *line, const char *origin, char *errstr,
                         size_t errstr_size)
{
    char *eq = strchr(line, '=');
    if (!eq) {
        xs_err_set(errstr, errstr_size, "%s: expected 'key = value'", origin);
        return XS_ERR_CONFIG;
    }
    *eq = '\0';
    char *key = trim(line), *value = trim(eq + 1);
    if (!*key) {
        xs_err_set(errstr, errstr_size, "%s: missing key before '='", origin);
        return XS_ERR_CONFIG;
    }
    return xs_config_set(cfg, key, value, origin, errstr, errstr_size);
}

xs_err_t xs_config_set_pair(xs_config_t *cfg, const char *pair, const char *origin, char *errstr,
                            size_t errstr_size)
{
    char *copy = xs_str_dup(pair);
    if (!copy)
        return XS_ERR_NOMEM;
    xs_err_t err = set_line(cfg, copy, origin, errstr, errstr_size);
    free(copy);
    return err;
}

xs_err_t xs_config_load_file(xs_config_t *cfg, const char *path, char *errstr, size_t errstr_size)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        xs_err_set(errstr, errstr_size, "%s: %s", path, strerror(errno));
        return XS_ERR_IO;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0;
    xs_err_t err = XS_OK;
    while (!err && (len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        err = set_line(cfg, s, origin, errstr, errstr_size);
    }
    free(line);
    fclose(f);
    return err;
}

int xs_config_load_file_all(xs_config_t *cfg, const char *path, xs_report_fn report, void *opaque)
{
    char errstr[1024];
    FILE *f = fopen(path, "r");
    if (!f) {
        xs_err_set(errstr, sizeof(errstr), "%s: %s", path, strerror(errno));
        report(opaque, errstr);
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, bad = 0;
    while (getline(&line, &cap, f) >= 0) {
        lineno++;
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        char origin[512];
        snprintf(origin, sizeof(origin), "%s:%d", path, lineno);
        errstr[0] = '\0';
        xs_err_t err = set_line(cfg, s, origin, errstr, sizeof(errstr));
        if (err == XS_ERR_NOMEM) {
            report(opaque, "out of memory");
            bad++;
            break;
        }
        if (err) {
            report(opaque, errstr);
            bad++;
        }
    }
    free(line);
    fclose(f);
    return bad;
}

static const char *lookup(const xs_config_t *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->entries[i].key, key) == 0)
            return cfg->entries[i].value;
    const key_def_t *d = find_def(key);
    if (!d) {
        fprintf(stderr, "xsell: internal error: unknown config key %s\n", key);
        abort();
    }
    return d->def;
}

const char *xs_config_str(const xs_config_t *cfg, const char *key)
{
    return lookup(cfg, key);
}

int64_t xs_config_int(const xs_config_t *cfg, const char *key)
{
    int64_t v = 0;
    parse_int(lookup(cfg, key), &v);
    return v;
}

double xs_config_double(const xs_config_t *cfg, const char *key)
{
    double v = 0;
    parse_double(lookup(cfg, key), &v);
    return v;
}

bool xs_config_bool(const xs_config_t *cfg, const char *key)
{
    bool v = false;
    parse_bool(lookup(cfg, key), &v);
    return v;
}

const xs_kv_t *xs_config_passthrough(const xs_config_t *cfg, const char *prefix, size_t *n)
{
    xs_config_t *c = (xs_config_t *)cfg;
    size_t plen = strlen(prefix);
    free(c->pt);
    c->pt = calloc(cfg->n ? cfg->n : 1, sizeof(*c->pt));
    c->n_pt = 0;
    for (size_t i = 0; c->pt && i < cfg->n; i++)
        if (strncmp(cfg->entries[i].key, prefix, plen) == 0)
            c->pt[c->n_pt++] = (xs_kv_t){cfg->entries[i].key + plen, cfg->entries[i].value};
    *n = c->n_pt;
    return c->pt;
}

xs_err_t xs_config_each_confluent_schema(const xs_config_t *cfg, xs_config_schema_fn fn,
                                         void *opaque, char *errstr, size_t errstr_size)
{
    for (size_t i = 0; i < cfg->n; i++) {
        const entry_t *e = &cfg->entries[i];
        if (strncmp(e->key, "schema.confluent.", 17) != 0)
            continue;
        char kind[64], path[4096];
        if (sscanf(e->value, "%63s %4095s", kind, path) != 2)
            return XS_ERR_CONFIG;
        xs_err_t err =
            fn(opaque, (int32_t)strtol(e->key + 17, NULL, 10), kind, path, errstr, errstr_size);
        if (err)
            return err;
    }
    return XS_OK;
}

const char *xs_config_get_raw(const xs_config_t *cfg, const char *key)
{
    for (size_t i = 0; i < cfg->n; i++)
        if (strcmp(cfg->entries[i].key, key) == 0)
            return cfg->entries[i].value;
    return NULL;
}

static bool is_secret(const char *key)
{
    return strstr(key, "password") || strstr(key, "secret") || strstr(key, "sasl.jaas") ||
           strstr(key, "sasl.oauthbearer.config") || strstr(key, "ssl.key.pem") ||
           strstr(key, "token");
}

/* One "key": "value" member (value masked for secrets). */
static xs_err_t json_member(xs_buf_t *out, bool first, const char *key, const char *value)
{
    xs_err_t err = first ? XS_OK : xs_buf_append_u8(out, ',');
    if (!err)
        err = xs_json_write_string(out, key, strlen(key));
    if (!err)
        err = xs_buf_append_u8(out, ':');
    if (!err)
        err = is_secret(key) && *value ? xs_json_write_string(out, "********", 8)
                                       : xs_json_write_string(out, value, strlen(value));
    return err;
}

xs_err_t xs_config_dump_json(const xs_config_t *cfg, xs_buf_t *out)
{
    xs_err_t err = xs_buf_append_u8(out, '{');
    for (size_t i = 0; !err && i < XS_ARRAY_SIZE(keys); i++)
        err = json_member(out, i == 0, keys[i].key, lookup(cfg, keys[i].key));
    for (size_t i = 0; !err && i < cfg->n; i++)
        if (!find_def(cfg->entries[i].key))
            err = json_member(out, false, cfg->entries[i].key, cfg->entries[i].value);
    return err ? err : xs_buf_append_u8(out, '}');
}

void xs_config_dump(const xs_config_t *cfg, FILE *out)
{
    for (size_t i = 0; i < XS_ARRAY_SIZE(keys); i++)
        fprintf(out, "%s = %s\n", keys[i].key,
                is_secret(keys[i].key) && *lookup(cfg, keys[i].key) ? "********"
                                                                    : lookup(cfg, keys[i].key));
    for (size_t i = 0; i < cfg->n; i++)
        if (!find_def(cfg->entries[i].key))
            fprintf(out, "%s = %s\n", cfg->entries[i].key,
                    is_secret(cfg->entries[i].key) ? "********" : cfg->entries[i].value);
}

void xs_config_doc(FILE *out)
{
    static const char *const tn[] = {"string", "integer", "number", "boolean", "enum", "address"};
    fprintf(out, "# xsell configuration\n\n"
                 "Generated by `xsell config --doc` from the key table in lib/run/config.c.\n\n"
                 "Files hold `key = value` lines; `#` starts a comment line. Unknown keys and "
                 "bad values are rejected with `file:line: message`. Flags (`--set key=value`) "
                 "override the file. Integers accept k/m/g suffixes (binary).\n\n"
                 "| key | type | default | range | description |\n"
                 "|---|---|---|---|---|\n");
    for (size_t i = 0; i < XS_ARRAY_SIZE(keys); i++) {
        const key_def_t *d = &keys[i];
        char range[128] = "";
        if (d->type == T_INT || d->type == T_DOUBLE)
            snprintf(range, sizeof(range), "%g … %g", d->min, d->max);
        else if (d->type == T_ENUM)
            snprintf(range, sizeof(range), "%s", d->choices);
        fprintf(out, "| `%s` | %s | `%s` | %s | %s |\n", d->key, tn[d->type], d->def, range,
                d->desc);
    }
    fprintf(out,
            "| `kafka.*` | string | | | Passed to librdkafka without the prefix, e.g. "
            "`kafka.bootstrap.servers`, `kafka.security.protocol`, `kafka.sasl.*`, "
            "`kafka.ssl.*`. |\n"
            "| `rocksdb.*` | string | | | Passed to RocksDB's option-string parser without "
            "the prefix, e.g. `rocksdb.write_buffer_size`. |\n"
            "| `schema.confluent.<id>` | string | | | `<ClickEvent\\|CartEvent\\|ItemUpdate> "
            "<path.avsc>`: the writer schema registered under Confluent schema id `<id>`. |\n");
}

void xs_config_registry_opts(const xs_config_t *cfg, xs_registry_opts_t *out)
{
    *out = (xs_registry_opts_t){
        .url = xs_config_str(cfg, "schema.registry.url"),
        .user = xs_config_str(cfg, "schema.registry.basic.auth.user"),
        .password = xs_config_str(cfg, "schema.registry.basic.auth.password"),
        .bearer_token = xs_config_str(cfg, "schema.registry.bearer.token"),
        .ca_location = xs_config_str(cfg, "schema.registry.ssl.ca.location"),
        .cert_location = xs_config_str(cfg, "schema.registry.ssl.certificate.location"),
        .key_location = xs_config_str(cfg, "schema.registry.ssl.key.location"),
        .timeout_ms = (long)xs_config_int(cfg, "schema.registry.timeout.ms"),
    };
}
