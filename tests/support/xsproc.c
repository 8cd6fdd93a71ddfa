/*
 * Test support for the guarantee tests (see xsproc.h). Child processes are
 * started with posix_spawn (the test process runs librdkafka threads, so
 * no plain fork), their output appended to a log file the test can poll.
 */
#include "xsproc.h"
#include "xstest.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "xsell/dataset.h"
#include "xsell/event.h"
#include "xsell/store.h"

extern char **environ;

const char *xsp_bin(const char *name)
{
    static char path[1024];
    const char *dir = getenv("XS_BIN_DIR");
    if (!dir || !*dir)
        fail_msg("XS_BIN_DIR is not set (run the test through ctest)");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

int64_t xsp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void xsp_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

pid_t xsp_spawn(char *const argv[], const char *log_path)
{
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    posix_spawn_file_actions_init(&fa);
    if (log_path) {
        posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("spawn %s: %s", argv[0], strerror(rc));
    return pid;
}

bool xsp_wait(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = xsp_now_ms() + timeout_ms;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return true;
        if (r < 0)
            fail_msg("waitpid %d: %s", (int)pid, strerror(errno));
        if (xsp_now_ms() >= deadline)
            return false;
        xsp_sleep_ms(20);
    }
}

char *xsp_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t n = 0, cap = 0;
    if (!f)
        return NULL;
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 131072;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

bool xsp_wait_log(const char *path, const char *needle, pid_t pid, int timeout_ms)
{
    return xsp_wait_log_count(path, needle, 1, pid, timeout_ms);
}

bool xsp_wait_log_count(const char *path, const char *needle, int count, pid_t pid, int timeout_ms)
{
    int64_t deadline = xsp_now_ms() + timeout_ms;
    for (;;) {
        char *text = xsp_read_file(path, NULL);
        int seen = 0;
        for (const char *at = text; at && seen < count && (at = strstr(at, needle)); at++)
            seen++;
        bool found = seen >= count;
        free(text);
        if (found)
            return true;
        if (pid > 0 && kill(pid, 0) != 0)
            return false;
        if (pid > 0) {
            int st;
            if (waitpid(pid, &st, WNOHANG) == pid)
                fail_msg("process %d ended (status %d) before '%s' appeared in %s", (int)pid, st,
                         needle, path);
        }
        if (xsp_now_ms() >= deadline)
            return false;
        xsp_sleep_ms(20);
    }
}

int xsp_run(char *const argv[], const char *out_path)
{
    posix_spawn_file_actions_t fa;
    pid_t pid = -1;
    int status = 0;
    posix_spawn_file_actions_init(&fa);
    if (out_path)
        posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int rc = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        fail_msg("spawn %s: %s", argv[0], strerror(rc));
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail_msg("waitpid: %s", strerror(errno));
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

long xsp_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

int64_t xsp_stored_offset(const char *state_dir, const char *topic, int32_t partition)
{
    char errstr[512] = "";
    int64_t next = -1;
    bool found = false;
    xs_store_t *s = xs_store_open(state_dir, NULL, 0, true, errstr, sizeof(errstr));
    if (!s)
        fail_msg("open %s read-only: %s", state_dir, errstr);
    if (xs_store_get_offset(s, topic, partition, &next, &found, errstr, sizeof(errstr)))
        fail_msg("stored offset: %s", errstr);
    xs_store_close(s);
    return found ? next : -1;
}

char *xsp_dump(const char *state_dir, const char *out_path, size_t *len)
{
    char bin[1024];
    snprintf(bin, sizeof(bin), "%s", xsp_bin("xsell"));
    char *argv[] = {bin, "inspect", "--state", (char *)state_dir, "--dump", NULL};
    int rc = xsp_run(argv, out_path);
    if (rc != 0)
        fail_msg("xsell inspect --state %s --dump exited %d", state_dir, rc);
    char *text = xsp_read_file(out_path, len);
    assert_non_null(text);
    return text;
}

char *xsp_user_profiles(const char *dump, size_t len, size_t *out_len, size_t *n_users)
{
    char *out = malloc(len + 1);
    assert_non_null(out);
    size_t o = 0;
    *n_users = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(dump + i, '\n', len - i);
        size_t ll = nl ? (size_t)(nl - (dump + i)) + 1 : len - i;
        const char *line = dump + i;
        if (ll > 5 && memcmp(line, "user ", 5) == 0) {
            const char *sp = memchr(line + 5, ' ', ll - 5);
            bool last_list =
                sp && (size_t)(line + ll - sp) > 11 && memcmp(sp, " last_list ", 11) == 0;
            bool head = sp && (size_t)(line + ll - sp) > 9 && memcmp(sp, " last_ts=", 9) == 0;
            if (!last_list) {
                memcpy(out + o, line, ll);
                o += ll;
                *n_users += head;
            }
        }
        i += ll;
    }
    out[o] = 0;
    *out_len = o;
    return out;
}

pid_t xsp_start_worker(const char *bootstrap, const char *topics_conf, const char *dir,
                       const char *group, const char *const *args, const char *log)
{
    char bin[1024], bsset[512];
    snprintf(bin, sizeof(bin), "%s", xsp_bin("xsell-worker"));
    snprintf(bsset, sizeof(bsset), "kafka.bootstrap.servers=%s", bootstrap);
    const char *head[] = {bin,           "--config", topics_conf, "--set", bsset,
                          "--state-dir", dir,        "--group",   group};
    size_t n_head = sizeof(head) / sizeof(head[0]), n_args = 0;
    while (args && args[n_args])
        n_args++;
    char **argv = calloc(n_head + n_args + 1, sizeof(*argv));
    assert_non_null(argv);
    for (size_t i = 0; i < n_head; i++)
        argv[i] = (char *)head[i];
    for (size_t i = 0; i < n_args; i++)
        argv[n_head + i] = (char *)args[i];
    pid_t pid = xsp_spawn(argv, log);
    free(argv);
    return pid;
}

const char *xsp_data(const char *rel)
{
    static char path[2048];
    const char *dir = getenv("XS_DATA_DIR");
    assert_non_null(dir);
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    return path;
}

uint64_t xsp_env_u64(const char *name, uint64_t def)
{
    const char *v = getenv(name);
    return v && *v ? strtoull(v, NULL, 10) : def;
}

void xsp_assert_same_text(const char *what, const char *a, size_t la, const char *b, size_t lb)
{
    if (la == lb && memcmp(a, b, la) == 0)
        return;
    size_t i = 0, line_start = 0;
    int line = 1;
    while (i < la && i < lb && a[i] == b[i]) {
        if (a[i] == '\n') {
            line++;
            line_start = i + 1;
        }
        i++;
    }
    const char *ea = memchr(a + line_start, '\n', la - line_start);
    const char *eb = memchr(b + line_start, '\n', lb - line_start);
    int na = (int)((ea ? (size_t)(ea - a) : la) - line_start);
    int nb = (int)((eb ? (size_t)(eb - b) : lb) - line_start);
    fail_msg("%s differ (%zu vs %zu bytes), first at line %d:\n  < %.*s\n  > %.*s", what, la, lb,
             line, na > 300 ? 300 : na, a + line_start, nb > 300 ? 300 : nb, b + line_start);
}

/* ---- loading a data set -------------------------------------------------- */

typedef struct produce_ctx {
    xs_producer_t *p;
    xs_codec_t *codec;
    xs_buf_t buf;
    uint64_t n;
} produce_ctx_t;

static xs_err_t produce_cb(void *opaque, const xs_event_t *ev)
{
    produce_ctx_t *c = opaque;
    char errstr[512] = "";
    const char *topic = xst_topic(ev->kind == XS_KIND_CLICK  ? "xsell.clicks"
                                  : ev->kind == XS_KIND_CART ? "xsell.cart"
                                                             : "xsell.catalog");
    const char *key = ev->kind == XS_KIND_ITEM ? ev->item_id : ev->user_id;
    xs_buf_reset(&c->buf);
    if (xs_codec_encode_event(c->codec, ev, &c->buf) != XS_OK)
        fail_msg("encode event");
    if (xs_producer_send(c->p, topic, -1, key, strlen(key), c->buf.data, c->buf.len, NULL, 0,
                         errstr, sizeof(errstr)))
        fail_msg("produce: %s", errstr);
    c->n++;
    return XS_OK;
}

static const xs_kv_t dataset_conf[] = {
    {"compression.codec", "zstd"},
    {"linger.ms", "200"},
    {"batch.num.messages", "1000000"},
    {"batch.size", "100000000"},
};

uint64_t xsp_produce_dataset(const char *bootstrap, const char *format, const char *path,
                             uint64_t max_events)
{
    char errstr[512] = "";
    produce_ctx_t c = {0};
    xs_dataset_opts_t dopts;
    int fmt = xs_dataset_format_from_name(format);
    assert_true(fmt >= 0);
    c.codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(c.codec);
    c.p = xs_producer_new(bootstrap, dataset_conf, XS_ARRAY_SIZE(dataset_conf), errstr,
                          sizeof(errstr));
    if (!c.p)
        fail_msg("producer: %s", errstr);
    xs_dataset_opts_default(&dopts);
    dopts.max_events = max_events;
    const char *paths[] = {path};
    if (xs_dataset_read((xs_dataset_format_t)fmt, paths, 1, &dopts, produce_cb, &c, NULL, errstr,
                        sizeof(errstr)))
        fail_msg("read %s: %s", path, errstr);
    if (xs_producer_flush(c.p, 120000, errstr, sizeof(errstr)))
        fail_msg("flush: %s", errstr);
    xs_producer_destroy(c.p);
    xs_codec_destroy(c.codec);
    xs_buf_free(&c.buf);
    return c.n;
}

struct xsp_feed {
    xs_producer_t *p;
    xs_codec_t *codec;
    xs_buf_t data; /* key, then value, of every message */
    struct feed_msg {
        const char *topic;
        size_t key, key_len, val_len;
    } * m;
    size_t n, cap;
};

static xs_err_t feed_keep(void *opaque, const xs_event_t *ev)
{
    xsp_feed_t *f = opaque;
    const char *key = ev->kind == XS_KIND_ITEM ? ev->item_id : ev->user_id;
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4096;
        f->m = realloc(f->m, f->cap * sizeof(*f->m));
        assert_non_null(f->m);
    }
    struct feed_msg *m = &f->m[f->n++];
    m->topic = xst_topic(ev->kind == XS_KIND_CLICK  ? "xsell.clicks"
                         : ev->kind == XS_KIND_CART ? "xsell.cart"
                                                    : "xsell.catalog");
    m->key = f->data.len;
    m->key_len = strlen(key);
    assert_int_equal(xs_buf_append(&f->data, key, m->key_len), XS_OK);
    size_t before = f->data.len;
    if (xs_codec_encode_event(f->codec, ev, &f->data) != XS_OK)
        fail_msg("encode event");
    m->val_len = f->data.len - before;
    return XS_OK;
}

xsp_feed_t *xsp_feed_load(const char *bootstrap, const char *format, const char *path,
                          uint64_t max_events)
{
    char errstr[512] = "";
    xsp_feed_t *f = calloc(1, sizeof(*f));
    xs_dataset_opts_t dopts;
    int fmt = xs_dataset_format_from_name(format);
    assert_non_null(f);
    assert_true(fmt >= 0);
    f->codec = xs_codec_new(errstr, sizeof(errstr));
    assert_non_null(f->codec);
    f->p = xs_producer_new(bootstrap, dataset_conf, XS_ARRAY_SIZE(dataset_conf), errstr,
                           sizeof(errstr));
    if (!f->p)
        fail_msg("producer: %s", errstr);
    xs_dataset_opts_default(&dopts);
    dopts.max_events = max_events;
    const char *paths[] = {path};
    if (xs_dataset_read((xs_dataset_format_t)fmt, paths, 1, &dopts, feed_keep, f, NULL, errstr,
                        sizeof(errstr)))
        fail_msg("read %s: %s", path, errstr);
    return f;
}

size_t xsp_feed_count(const xsp_feed_t *f)
{
    return f->n;
}

const char *xsp_feed_topic(const xsp_feed_t *f, size_t i)
{
    return i < f->n ? f->m[i].topic : NULL;
}

void xsp_feed_produce(xsp_feed_t *f, size_t from, size_t to)
{
    char errstr[512] = "";
    for (size_t i = from; i < to && i < f->n; i++) {
        const struct feed_msg *m = &f->m[i];
        const uint8_t *k = f->data.data + m->key;
        if (xs_producer_send(f->p, m->topic, -1, k, m->key_len, k + m->key_len, m->val_len, NULL, 0,
                             errstr, sizeof(errstr)))
            fail_msg("produce: %s", errstr);
    }
    if (xs_producer_flush(f->p, 120000, errstr, sizeof(errstr)))
        fail_msg("flush: %s", errstr);
}

void xsp_feed_free(xsp_feed_t *f)
{
    if (!f)
        return;
    xs_producer_destroy(f->p);
    xs_codec_destroy(f->codec);
    xs_buf_free(&f->data);
    free(f->m);
    free(f);
}

/* ---- list ids --------------------------------------------------------------- */

static int cmp_id(const void *a, const void *b)
{
    const uint64_t *x = a, *y = b;
    if (x[0] != y[0])
        return x[0] < y[0] ? -1 : 1;
    return x[1] < y[1] ? -1 : x[1] > y[1];
}

static void parse_id(const char *hex, uint64_t out[2])
{
    char part[17];
    assert_int_equal(strlen(hex), 32);
    memcpy(part, hex, 16);
    part[16] = '\0';
    out[0] = strtoull(part, NULL, 16);
    out[1] = strtoull(hex + 16, NULL, 16);
}

xsp_ids_t xsp_read_list_ids(const char *bootstrap, xs_codec_t *codec, const char *topic)
{
    char errstr[512] = "";
    const char *topics[] = {topic};
    int n_parts =
        xs_kafka_partition_count(bootstrap, NULL, 0, topic, 10000, errstr, sizeof(errstr));
    if (n_parts <= 0)
        fail_msg("partitions of %s: %s", topic, errstr);
    int64_t *next = calloc((size_t)n_parts, sizeof(*next));
    assert_non_null(next);
    xs_consumer_opts_t co = {
        .bootstrap = bootstrap,
        .topics = topics,
        .n_topics = 1,
        .start_offset = XS_OFFSET_BEGINNING,
    };
    xs_consumer_t *c = xs_consumer_new(&co, errstr, sizeof(errstr));
    if (!c)
        fail_msg("consumer: %s", errstr);
    xsp_ids_t ids = {0};
    size_t cap = 0;
    xs_list_t list;
    for (int idle = 0; idle < 600;) {
        xs_msg_t m;
        xs_err_t err = xs_consumer_poll(c, 100, &m, errstr, sizeof(errstr));
        if (err == XS_ERR_EOF) {
            if (xs_consumer_caught_up(c))
                break;
            idle++;
            continue;
        }
        if (err)
            fail_msg("poll %s: %s", topic, errstr);
        assert_true(m.partition >= 0 && m.partition < n_parts);
        if (m.offset != next[m.partition])
            fail_msg("%s[%d]: read offset %lld, expected %lld: lists were lost (mock retention?)",
                     topic, (int)m.partition, (long long)m.offset, (long long)next[m.partition]);
        next[m.partition] = m.offset + 1;
        char reason[256];
        xs_event_list_init(&list);
        if (xs_codec_decode_list(codec, m.value, m.value_len, &list, reason, sizeof(reason)))
            fail_msg("decode list %s[%d]@%lld: %s", topic, (int)m.partition, (long long)m.offset,
                     reason);
        if (ids.total == cap) {
            cap = cap ? cap * 2 : 4096;
            ids.v = realloc(ids.v, cap * sizeof(*ids.v));
            assert_non_null(ids.v);
        }
        parse_id(list.list_id, ids.v[ids.total]);
        ids.total++;
        xs_event_list_clear(&list);
        if (xs_consumer_caught_up(c))
            break;
    }
    assert_true(xs_consumer_caught_up(c));
    xs_consumer_destroy(c);
    free(next);
    if (ids.total)
        qsort(ids.v, ids.total, sizeof(*ids.v), cmp_id);
    for (size_t i = 0; i < ids.total; i++)
        if (ids.n == 0 || cmp_id(ids.v[ids.n - 1], ids.v[i]) != 0) {
            ids.v[ids.n][0] = ids.v[i][0];
            ids.v[ids.n][1] = ids.v[i][1];
            ids.n++;
        }
    return ids;
}

bool xsp_ids_has(const xsp_ids_t *ids, const uint64_t id[2])
{
    return ids->n && bsearch(id, ids->v, ids->n, sizeof(*ids->v), cmp_id) != NULL;
}

void xsp_ids_free(xsp_ids_t *ids)
{
    free(ids->v);
    memset(ids, 0, sizeof(*ids));
}

void xsp_assert_same_profiles(const char *tag, const char *dir_ref, const char *dump_ref,
                              const char *dir_run, const char *dump_run, size_t min_users)
{
    size_t la = 0, lb = 0, pa = 0, pb = 0, ua = 0, ub = 0;
    char *a = xsp_dump(dir_ref, dump_ref, &la);
    char *b = xsp_dump(dir_run, dump_run, &lb);
    char *prof_a = xsp_user_profiles(a, la, &pa, &ua);
    char *prof_b = xsp_user_profiles(b, lb, &pb, &ub);
    fprintf(stderr,
            "%s: user profiles: %zu (reference) / %zu (restored run), %zu / %zu bytes of profile "
            "lines; identical: %s\n",
            tag, ua, ub, pa, pb, pa == pb && memcmp(prof_a, prof_b, pa) == 0 ? "yes" : "NO");
    assert_true(ua > min_users);
    xsp_assert_same_text("user profiles (reference vs restored)", prof_a, pa, prof_b, pb);
    free(prof_a);
    free(prof_b);
    free(a);
    free(b);
}
