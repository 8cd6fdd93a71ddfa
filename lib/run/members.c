/*
 * members.c — the group's membership table and the forwarding of user
 * queries to their owner (see include/xsell/members.h for the protocol,
 * the record and the ownership rule).
 *
 * The membership thread owns the producer and the consumer of the topic:
 *
 *     every refresh_ms   lock the runtime, list the clicks partitions it
 *                        owns, unlock; changed (or first): publish a record
 *                        with generation + 1 and assigned_at = now, flush
 *     every turn         poll the membership topic (100 ms), apply records
 *                        and tombstones to the table (under `mu`)
 *     at stop            publish the tombstone of this instance, flush
 *
 * The HTTP server thread reads the table under `mu` and owns the HTTP
 * client; the counters are atomics.
 */
#include "xsell/members.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xsell/http_client.h"
#include "xsell/kafka.h"
#include "xsell/log.h"

#define XS_MEMBERS_URL_MAX 512
#define XS_MEMBERS_MAX_PARTS 65536
#define XS_MEMBERS_FLUSH_MS 5000
#define XS_MEMBERS_CONNECT_MS 500
#define XS_MEMBERS_REQUEST_MS 2000

typedef struct member {
    char url[XS_MEMBERS_URL_MAX];
    uint64_t generation;
    int64_t assigned_at;
    int32_t *parts;
    size_t n_parts;
} member_t;

struct xs_members {
    char *topic, *input_topic, *partitioner, *self_url, *bootstrap;
    const xs_kv_t *conf;
    size_t n_conf;
    xs_runtime_t *rt;
    int refresh_ms;
    xs_producer_t *producer;
    xs_consumer_t *consumer;
    xs_http_client_t *client; /* HTTP server thread */
    pthread_t thread;
    bool thread_started;
    atomic_bool stop;
    atomic_int n_partitions; /* of the input topic; 0: unknown yet */
    pthread_mutex_t mu;      /* the table */
    xs_members_table_t *table;
    /* this instance's last publication (membership thread) */
    int32_t *own;
    size_t n_own;
    bool published;
    uint64_t generation;
    atomic_uint_fast64_t forwarded, forward_failures, no_owner, skipped_records;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the record ---------------------------------------------------------------- */

xs_err_t xs_members_encode(xs_buf_t *out, const char *url, uint64_t generation, int64_t assigned_at,
                           const int32_t *parts, size_t n_parts)
{
    xs_err_t err = xs_buf_printf(
        out, "%s %d\nurl %s\ngeneration %" PRIu64 "\nassigned_at %" PRId64 "\npartitions",
        XS_MEMBERS_MAGIC, XS_MEMBERS_VERSION, url, generation, assigned_at);
    for (size_t i = 0; i < n_parts && !err; i++)
        err = xs_buf_printf(out, " %" PRId32, parts[i]);
    return err ? err : xs_buf_append_str(out, "\n");
}

/* The next line of [*s, end) into line (NUL-terminated); false at the end or when too long. */
static bool next_line(const char **s, const char *end, char *line, size_t size)
{
    if (*s >= end)
        return false;
    const char *nl = memchr(*s, '\n', (size_t)(end - *s));
    size_t len = (size_t)((nl ? nl : end) - *s);
    if (len >= size)
        return false;
    memcpy(line, *s, len);
    line[len] = '\0';
    *s = nl ? nl + 1 : end;
    return true;
}

xs_err_t xs_members_decode(const void *value, size_t len, char *url, size_t url_size,
                           uint64_t *generation, int64_t *assigned_at, int32_t **parts,
                           size_t *n_parts)
{
    const char *s = value, *end = s + len;
    char line[XS_MEMBERS_URL_MAX + 16];
    int version = 0, used = 0;
    *parts = NULL;
    *n_parts = 0;
    if (!next_line(&s, end, line, sizeof(line)) ||
        strncmp(line, XS_MEMBERS_MAGIC " ", sizeof(XS_MEMBERS_MAGIC)) != 0 ||
        sscanf(line + sizeof(XS_MEMBERS_MAGIC), "%d%n", &version, &used) != 1 ||
        line[sizeof(XS_MEMBERS_MAGIC) + (size_t)used] != '\0')
        return XS_ERR_DECODE;
    if (version > XS_MEMBERS_VERSION)
        return XS_ERR_VERSION;
    if (version < 1 || !next_line(&s, end, line, sizeof(line)) || strncmp(line, "url ", 4) ||
        strlen(line + 4) == 0 || strlen(line + 4) >= url_size)
        return XS_ERR_DECODE;
    snprintf(url, url_size, "%s", line + 4);
    if (!next_line(&s, end, line, sizeof(line)) ||
        sscanf(line, "generation %" SCNu64 "%n", generation, &used) != 1 || line[used] ||
        !next_line(&s, end, line, sizeof(line)) ||
        sscanf(line, "assigned_at %" SCNd64 "%n", assigned_at, &used) != 1 || line[used])
        return XS_ERR_DECODE;
    /* the partitions line may be long: parse it in place */
    const char *nl = s < end ? memchr(s, '\n', (size_t)(end - s)) : NULL;
    if (!nl || (size_t)(nl - s) < 10 || memcmp(s, "partitions", 10) != 0)
        return XS_ERR_DECODE;
    size_t cap = 0;
    for (const char *c = s + 10; c < nl; c++)
        cap += *c == ' ';
    if (cap > XS_MEMBERS_MAX_PARTS || (cap && !(*parts = calloc(cap, sizeof(**parts)))))
        return cap ? XS_ERR_NOMEM : XS_ERR_DECODE;
    for (const char *c = s + 10; c < nl;) {
        if (*c != ' ' || c + 1 >= nl || c[1] < '0' || c[1] > '9')
            goto bad;
        long v = 0;
        for (c++; c < nl && *c >= '0' && *c <= '9'; c++)
            if ((v = v * 10 + (*c - '0')) >= XS_MEMBERS_MAX_PARTS)
                goto bad;
        (*parts)[(*n_parts)++] = (int32_t)v;
    }
    return XS_OK;
bad:
    free(*parts);
    *parts = NULL;
    *n_parts = 0;
    return XS_ERR_DECODE;
}

/* ---- the table ----------------------------------------------------------------- */

struct xs_members_table {
    member_t *members;
    size_t n_members;
};

xs_members_table_t *xs_members_table_new(void)
{
    return calloc(1, sizeof(xs_members_table_t));
}

void xs_members_table_destroy(xs_members_table_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_members; i++)
        free(t->members[i].parts);
    free(t->members);
    free(t);
}

size_t xs_members_table_size(const xs_members_table_t *t)
{
    return t->n_members;
}

static void table_remove(xs_members_table_t *t, const char *url)
{
    for (size_t i = 0; i < t->n_members; i++)
        if (!strcmp(t->members[i].url, url)) {
            free(t->members[i].parts);
            t->members[i] = t->members[--t->n_members];
            return;
        }
}

/* Takes ownership of parts. */
static xs_err_t table_put(xs_members_table_t *t, const char *url, uint64_t generation,
                          int64_t assigned_at, int32_t *parts, size_t n_parts)
{
    table_remove(t, url);
    member_t *grown = realloc(t->members, (t->n_members + 1) * sizeof(*grown));
    if (!grown) {
        free(parts);
        return XS_ERR_NOMEM;
    }
    t->members = grown;
    member_t *e = &t->members[t->n_members++];
    snprintf(e->url, sizeof(e->url), "%s", url);
    e->generation = generation;
    e->assigned_at = assigned_at;
    e->parts = parts;
    e->n_parts = n_parts;
    return XS_OK;
}

xs_err_t xs_members_table_apply(xs_members_table_t *t, const void *key, size_t key_len,
                                const void *value, size_t value_len)
{
    char k[XS_MEMBERS_URL_MAX], url[XS_MEMBERS_URL_MAX];
    uint64_t generation = 0;
    int64_t assigned_at = 0;
    int32_t *parts = NULL;
    size_t n_parts = 0;
    if (!key || key_len == 0 || key_len >= sizeof(k))
        return XS_ERR_INVALID;
    memcpy(k, key, key_len);
    k[key_len] = '\0';
    if (!value) { /* tombstone: the instance left */
        table_remove(t, k);
        return XS_OK;
    }
    xs_err_t err = xs_members_decode(value, value_len, url, sizeof(url), &generation, &assigned_at,
                                     &parts, &n_parts);
    if (!err && strcmp(url, k) != 0)
        err = XS_ERR_INVALID;
    if (err) {
        free(parts);
        return err;
    }
    return table_put(t, url, generation, assigned_at, parts, n_parts);
}

static bool claims(const member_t *e, int32_t p)
{
    for (size_t i = 0; i < e->n_parts; i++)
        if (e->parts[i] == p)
            return true;
    return false;
}

bool xs_members_table_owner(const xs_members_table_t *t, int32_t p, const char *self_url, char *url,
                            size_t url_size)
{
    const member_t *best = NULL;
    for (size_t i = 0; i < t->n_members; i++) {
        const member_t *e = &t->members[i];
        if (!claims(e, p))
            continue;
        if (!best || e->assigned_at > best->assigned_at ||
            (e->assigned_at == best->assigned_at &&
             (e->generation > best->generation ||
              (e->generation == best->generation && strcmp(e->url, best->url) > 0))))
            best = e;
    }
    if (!best || (self_url && !strcmp(best->url, self_url)))
        return false;
    snprintf(url, url_size, "%s", best->url);
    return true;
}

bool xs_members_owner(xs_members_t *m, int32_t p, char *url, size_t url_size)
{
    pthread_mutex_lock(&m->mu);
    bool found = xs_members_table_owner(m->table, p, m->self_url, url, url_size);
    pthread_mutex_unlock(&m->mu);
    return found;
}

static void apply(xs_members_t *m, const xs_msg_t *msg)
{
    pthread_mutex_lock(&m->mu);
    xs_err_t err =
        xs_members_table_apply(m->table, msg->key, msg->key_len, msg->value, msg->value_len);
    pthread_mutex_unlock(&m->mu);
    if (err) {
        atomic_fetch_add(&m->skipped_records, 1);
        XS_WARN("membership record skipped", "topic=%s offset=%" PRId64 " error=\"%s\"", m->topic,
                msg->offset,
                err == XS_ERR_INVALID ? "no key, or the record's url differs from its key"
                                      : xs_err_str(err));
    } else if (!msg->value) {
        XS_INFO("group member left", "topic=%s offset=%" PRId64, m->topic, msg->offset);
    }
}

/* ---- the membership thread ------------------------------------------------------ */

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Publishes this instance's record when its clicks partitions changed. */
static void refresh(xs_members_t *m)
{
    char errstr[512];
    int n = atomic_load(&m->n_partitions);
    if (n <= 0) {
        n = xs_kafka_partition_count(m->bootstrap, m->conf, m->n_conf, m->input_topic, 5000, errstr,
                                     sizeof(errstr));
        if (n <= 0)
            return;
        atomic_store(&m->n_partitions, n);
    }
    int32_t *now = calloc((size_t)n, sizeof(*now));
    size_t n_now = 0;
    if (!now || xs_runtime_lock(m->rt, errstr, sizeof(errstr)) != XS_OK) {
        free(now);
        return; /* busy: next time */
    }
    for (int32_t p = 0; p < n; p++)
        if (xs_runtime_assigned(m->rt, m->input_topic, p))
            now[n_now++] = p;
    xs_runtime_unlock(m->rt);
    qsort(now, n_now, sizeof(*now), cmp_i32);
    if (m->published && n_now == m->n_own && !memcmp(now, m->own, n_now * sizeof(*now))) {
        free(now);
        return;
    }
    xs_buf_t value = {0};
    uint64_t generation = m->generation + 1;
    xs_err_t err = xs_members_encode(&value, m->self_url, generation, wall_ms(), now, n_now);
    if (!err)
        err = xs_producer_send(m->producer, m->topic, -1, m->self_url, strlen(m->self_url),
                               value.data, value.len, NULL, 0, errstr, sizeof(errstr));
    if (!err)
        err = xs_producer_flush(m->producer, XS_MEMBERS_FLUSH_MS, errstr, sizeof(errstr));
    xs_buf_free(&value);
    if (err) {
        XS_WARN("membership record not published", "topic=%s error=\"%s\" action=\"retried\"",
                m->topic, err == XS_ERR_NOMEM ? "out of memory" : errstr);
        free(now);
        return;
    }
    free(m->own);
    m->own = now;
    m->n_own = n_now;
    m->published = true;
    m->generation = generation;
    XS_INFO("membership published", "topic=%s url=%s generation=%" PRIu64 " partitions=%zu",
            m->topic, m->self_url, generation, n_now);
}

static void *run(void *arg)
{
    xs_members_t *m = arg;
    char errstr[512];
    struct timespec last = {0};
    while (!atomic_load(&m->stop)) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        double since = (t.tv_sec - last.tv_sec) * 1e3 + (t.tv_nsec - last.tv_nsec) / 1e6;
        if (since >= m->refresh_ms) {
            refresh(m);
            last = t;
        }
        xs_msg_t msg;
        xs_err_t err = xs_consumer_poll(m->consumer, 100, &msg, errstr, sizeof(errstr));
        if (err == XS_OK)
            apply(m, &msg);
        else if (err != XS_ERR_EOF)
            XS_WARN("membership topic", "topic=%s error=\"%s\"", m->topic, errstr);
    }
    return NULL;
}

/* ---- public -------------------------------------------------------------------- */

xs_members_t *xs_members_new(const xs_members_opts_t *o, char *errstr, size_t errstr_size)
{
    xs_members_t *m = calloc(1, sizeof(*m));
    if (!m) {
        xs_err_set(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->mu, NULL);
    m->conf = o->conf;
    m->n_conf = o->n_conf;
    m->rt = o->runtime;
    m->refresh_ms = o->refresh_ms > 0 ? o->refresh_ms : 500;
    if (!(m->table = xs_members_table_new()) || !(m->topic = xs_str_dup(o->topic)) ||
        !(m->input_topic = xs_str_dup(o->input_topic)) ||
        !(m->partitioner = xs_str_dup(o->partitioner)) ||
        !(m->self_url = xs_str_dup(o->self_url)) || !(m->bootstrap = xs_str_dup(o->bootstrap))) {
        xs_err_set(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (strlen(m->self_url) >= XS_MEMBERS_URL_MAX || strchr(m->self_url, '\n')) {
        xs_err_set(errstr, errstr_size, "http.advertised: a URL of up to %d bytes on one line",
                   XS_MEMBERS_URL_MAX - 1);
        goto fail;
    }
    /* The topic: compacted, one partition (a few records per instance). */
    const xs_kv_t compact[] = {{"cleanup.policy", "compact"}};
    xs_topic_spec_t spec = {.name = m->topic, .partitions = 1, .configs = compact, .n_configs = 1};
    char why[512];
    if (xs_kafka_create_topics(m->bootstrap, m->conf, m->n_conf, &spec, 1, 10000, why,
                               sizeof(why)) != XS_OK)
        XS_WARN("membership topic not created", "topic=%s error=\"%s\" action=\"%s\"", m->topic,
                why, "left to the broker's auto-creation");
    if (!(m->producer = xs_producer_new(m->bootstrap, m->conf, m->n_conf, errstr, errstr_size)))
        goto fail;
    const char *topics[1] = {m->topic};
    xs_consumer_opts_t co = {
        .bootstrap = m->bootstrap,
        .topics = topics,
        .n_topics = 1,
        .start_offset = XS_OFFSET_BEGINNING,
        .conf = m->conf,
        .n_conf = m->n_conf,
    };
    if (!(m->consumer = xs_consumer_new(&co, errstr, errstr_size)) ||
        !(m->client = xs_http_client_new(XS_MEMBERS_CONNECT_MS, XS_MEMBERS_REQUEST_MS, errstr,
                                         errstr_size)))
        goto fail;
    if (pthread_create(&m->thread, NULL, run, m) != 0) {
        xs_err_set(errstr, errstr_size, "cannot start the membership thread");
        goto fail;
    }
    m->thread_started = true;
    XS_INFO("membership started", "topic=%s url=%s partitioner=%s", m->topic, m->self_url,
            m->partitioner);
    return m;
fail:
    xs_members_destroy(m);
    return NULL;
}

void xs_members_destroy(xs_members_t *m)
{
    if (!m)
        return;
    if (m->thread_started) {
        char errstr[512];
        atomic_store(&m->stop, true);
        pthread_join(m->thread, NULL);
        /* the tombstone: this instance answers no more */
        if (xs_producer_send(m->producer, m->topic, -1, m->self_url, strlen(m->self_url), NULL, 0,
                             NULL, 0, errstr, sizeof(errstr)) != XS_OK ||
            xs_producer_flush(m->producer, XS_MEMBERS_FLUSH_MS, errstr, sizeof(errstr)) != XS_OK)
            XS_WARN("membership tombstone not published", "topic=%s error=\"%s\"", m->topic,
                    errstr);
        else
            XS_INFO("membership withdrawn", "topic=%s url=%s", m->topic, m->self_url);
    }
    xs_http_client_destroy(m->client);
    xs_consumer_destroy(m->consumer);
    xs_producer_destroy(m->producer);
    xs_members_table_destroy(m->table);
    free(m->own);
    free(m->topic);
    free(m->input_topic);
    free(m->partitioner);
    free(m->self_url);
    free(m->bootstrap);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

int32_t xs_members_partition_of(xs_members_t *m, const char *user_id)
{
    int n = atomic_load(&m->n_partitions);
    return n > 0 ? xs_producer_partition(m->partitioner, user_id, strlen(user_id), n) : -1;
}

/* A JSON error answer (the HTTP server's shape). */
static void error_answer(xs_buf_t *body, unsigned *status, unsigned st, const char *msg)
{
    xs_buf_reset(body);
    xs_buf_append_str(body, "{\"error\":\"");
    for (const char *c = msg; *c; c++) {
        if (*c == '"' || *c == '\\')
            xs_buf_append_u8(body, '\\');
        if ((unsigned char)*c >= 0x20)
            xs_buf_append_u8(body, (uint8_t)*c);
    }
    xs_buf_printf(body, "\",\"status\":%u}\n", st);
    *status = st;
}

bool xs_members_forward(xs_members_t *m, const char *user_id, const char *target, bool forwarded,
                        unsigned *status, xs_buf_t *body)
{
    char errstr[512], owner[XS_MEMBERS_URL_MAX], msg[1024];
    if (forwarded)
        return false;
    int32_t p = xs_members_partition_of(m, user_id);
    if (p < 0)
        return false; /* the input topic is not known yet: answered here */
    if (xs_runtime_lock(m->rt, errstr, sizeof(errstr)) == XS_OK) {
        bool mine = xs_runtime_assigned(m->rt, m->input_topic, p);
        xs_runtime_unlock(m->rt);
        if (mine)
            return false;
    } /* busy: the local answer would wait as long; ask the owner */
    if (!xs_members_owner(m, p, owner, sizeof(owner))) {
        atomic_fetch_add(&m->no_owner, 1);
        snprintf(msg, sizeof(msg),
                 "no live instance of the group is known to own partition %d of %s (the user's); "
                 "retry after the group's rebalance",
                 (int)p, m->input_topic);
        error_answer(body, status, 503, msg);
        return true;
    }
    char url[XS_MEMBERS_URL_MAX + 4096], header[XS_MEMBERS_URL_MAX + 64];
    size_t n = strlen(owner);
    while (n > 0 && owner[n - 1] == '/')
        owner[--n] = '\0';
    snprintf(url, sizeof(url), "%s%s", owner, target);
    snprintf(header, sizeof(header), "%s: %s", XS_MEMBERS_FORWARDED_HEADER, m->self_url);
    xs_buf_reset(body);
    if (xs_http_client_get(m->client, url, header, status, body, errstr, sizeof(errstr)) != XS_OK) {
        atomic_fetch_add(&m->forward_failures, 1);
        XS_WARN("forwarded query failed", "owner=%s partition=%d error=\"%s\"", owner, (int)p,
                errstr);
        snprintf(msg, sizeof(msg), "the owner of partition %d of %s (%s) did not answer: %s",
                 (int)p, m->input_topic, owner, errstr);
        error_answer(body, status, 502, msg);
        return true;
    }
    atomic_fetch_add(&m->forwarded, 1);
    return true;
}

xs_err_t xs_members_render(xs_members_t *m, xs_buf_t *out)
{
    size_t n_members;
    pthread_mutex_lock(&m->mu);
    n_members = xs_members_table_size(m->table);
    pthread_mutex_unlock(&m->mu);
    return xs_buf_printf(
        out,
        "# HELP xsell_http_forwarded_total User queries forwarded to the instance owning the "
        "user's partition and answered by it.\n"
        "# TYPE xsell_http_forwarded_total counter\n"
        "xsell_http_forwarded_total %" PRIuFAST64 "\n"
        "# HELP xsell_http_forward_failures_total Forwarded user queries the owner did not "
        "answer (502).\n"
        "# TYPE xsell_http_forward_failures_total counter\n"
        "xsell_http_forward_failures_total %" PRIuFAST64 "\n"
        "# HELP xsell_http_forward_no_owner_total User queries of a partition no known "
        "instance owns (503).\n"
        "# TYPE xsell_http_forward_no_owner_total counter\n"
        "xsell_http_forward_no_owner_total %" PRIuFAST64 "\n"
        "# HELP xsell_members Instances in the membership table.\n"
        "# TYPE xsell_members gauge\n"
        "xsell_members %zu\n"
        "# HELP xsell_members_skipped_total Membership records skipped (malformed or newer).\n"
        "# TYPE xsell_members_skipped_total counter\n"
        "xsell_members_skipped_total %" PRIuFAST64 "\n",
        atomic_load(&m->forwarded), atomic_load(&m->forward_failures), atomic_load(&m->no_owner),
        n_members, atomic_load(&m->skipped_records));
}
